/*
 * tls.h - OpenSSL contexts and libevent TLS filters for STARTTLS.
 *
 * Each site with tls_cert/tls_key gets one server SSL_CTX; the delivery
 * engine uses one client SSL_CTX (opportunistic TLS, no verification, as
 * for MX delivery without DANE).  STARTTLS is done by wrapping the
 * plaintext bufferevent in a bufferevent_openssl filter; the returned
 * filter owns (and frees) the underlying bufferevent.
 */
#ifndef HM_TLS_H
#define HM_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct ssl_ctx_st;
struct bufferevent;
struct event_base;

/* tls_init - library initialisation (idempotent). */
void tls_init(void);

/* tls_server_ctx_new - context for cert/key files; NULL with a reason in err. */
struct ssl_ctx_st *tls_server_ctx_new(const char *cert, const char *key, char *err, size_t errlen);
/* tls_client_ctx_new - context for outbound STARTTLS. */
struct ssl_ctx_st *tls_client_ctx_new(char *err, size_t errlen);
void tls_ctx_free(struct ssl_ctx_st *ctx);

/*
 * tls_wrap_server / tls_wrap_client - start a TLS handshake on top of
 * under (which must have no pending output).  The filter takes ownership
 * of under (BEV_OPT_CLOSE_ON_FREE).  Returns NULL on failure (under is
 * then still owned by the caller).
 */
struct bufferevent *tls_wrap_server(struct event_base *base, struct bufferevent *under,
                                    struct ssl_ctx_st *ctx);
struct bufferevent *tls_wrap_client(struct event_base *base, struct bufferevent *under,
                                    struct ssl_ctx_st *ctx, const char *sni);

/* tls_is_active - true when bev is a TLS filter whose handshake finished. */
bool tls_is_active(struct bufferevent *bev);
/* tls_describe - "TLSv1.3:TLS_AES_256_GCM_SHA384:256" for Received/logs. */
const char *tls_describe(struct bufferevent *bev, char *buf, size_t len);

/* tls_cert_info - subject and SHA-256 fingerprint (hex with colons) of a PEM file. */
bool tls_cert_info(const char *cert_file, char *subject, size_t slen, char *fpr, size_t flen,
                   char *err, size_t errlen);

#endif
