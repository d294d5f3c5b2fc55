/*
 * tls.c - OpenSSL contexts and libevent TLS filters for STARTTLS.
 *
 * Server contexts are made once per site at start (and again on reload);
 * SSL objects keep a reference on their SSL_CTX, so a context may be freed
 * while sessions made from it still run.  Client contexts do not verify
 * the peer (opportunistic TLS for MX delivery).  Nothing here logs: errors
 * come back as text in the caller's buffer.
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* tls_init - library initialisation (idempotent). */
void tls_init(void)
{
    static bool done;

    if (done)
        return;
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
    done = true;
}

/* tls_err - the first queued OpenSSL error (or what) into err. */
static void tls_err(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char ebuf[256] = "";

    if (err == NULL || errlen == 0)
        return;
    if (e != 0)
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
    snprintf(err, errlen, "%s%s%s%s%s", what, file ? " " : "", file ? file : "", e ? ": " : "",
             ebuf);
    ERR_clear_error();
}

/* tls_ctx_common - protocol floor and options shared by both directions. */
static void tls_ctx_common(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
}

/* tls_server_ctx_new - context for cert/key files; NULL with a reason in err. */
struct ssl_ctx_st *tls_server_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx;

    tls_init();
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_err(err, errlen, "cannot create TLS context", NULL);
        return NULL;
    }
    tls_ctx_common(ctx);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_err(err, errlen, "cannot load certificate", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key ? key : cert, SSL_FILETYPE_PEM) != 1) {
        tls_err(err, errlen, "cannot load private key", key ? key : cert);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_err(err, errlen, "private key does not match certificate", cert);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* tls_client_ctx_new - context for outbound STARTTLS (no verification). */
struct ssl_ctx_st *tls_client_ctx_new(char *err, size_t errlen)
{
    SSL_CTX *ctx;

    tls_init();
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        tls_err(err, errlen, "cannot create TLS client context", NULL);
        return NULL;
    }
    tls_ctx_common(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

/* tls_ctx_free - drop our reference on a context (NULL allowed). */
void tls_ctx_free(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

/* tls_wrap - put a TLS filter of the given role on top of under. */
static struct bufferevent *tls_wrap(struct event_base *base, struct bufferevent *under,
                                    SSL_CTX *ctx, enum bufferevent_ssl_state role, const char *sni)
{
    struct bufferevent *bev;
    SSL *ssl;

    if (ctx == NULL || under == NULL)
        return NULL;
    if (evbuffer_get_length(bufferevent_get_output(under)) != 0)
        return NULL;
    ssl = SSL_new(ctx);
    if (ssl == NULL)
        return NULL;
    if (sni != NULL && *sni != '\0')
        SSL_set_tlsext_host_name(ssl, sni);
    bev = bufferevent_openssl_filter_new(base, under, ssl, role, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    /* A peer closing without close_notify is reported as a plain EOF. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* tls_wrap_server - accept a TLS handshake on top of under. */
struct bufferevent *tls_wrap_server(struct event_base *base, struct bufferevent *under,
                                    struct ssl_ctx_st *ctx)
{
    return tls_wrap(base, under, ctx, BUFFEREVENT_SSL_ACCEPTING, NULL);
}

/* tls_wrap_client - start a client TLS handshake on top of under. */
struct bufferevent *tls_wrap_client(struct event_base *base, struct bufferevent *under,
                                    struct ssl_ctx_st *ctx, const char *sni)
{
    return tls_wrap(base, under, ctx, BUFFEREVENT_SSL_CONNECTING, sni);
}

/* tls_is_active - true when bev is a TLS filter whose handshake finished. */
bool tls_is_active(struct bufferevent *bev)
{
    SSL *ssl;

    if (bev == NULL)
        return false;
    ssl = bufferevent_openssl_get_ssl(bev);
    return ssl != NULL && SSL_is_init_finished(ssl);
}

/* tls_describe - "TLSv1.3:TLS_AES_256_GCM_SHA384:256" for Received/logs. */
const char *tls_describe(struct bufferevent *bev, char *buf, size_t len)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    const SSL_CIPHER *c;
    int bits = 0;

    if (len == 0)
        return buf;
    if (ssl == NULL || (c = SSL_get_current_cipher(ssl)) == NULL) {
        snprintf(buf, len, "none");
        return buf;
    }
    SSL_CIPHER_get_bits(c, &bits);
    snprintf(buf, len, "%s:%s:%d", SSL_get_version(ssl), SSL_CIPHER_get_name(c), bits);
    return buf;
}

/* tls_fingerprint - SHA-256 of the DER certificate as "AA:BB:...". */
static bool tls_fingerprint(X509 *x, char *fpr, size_t flen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    size_t o = 0;

    if (X509_digest(x, EVP_sha256(), md, &n) != 1)
        return false;
    if (flen < (size_t)n * 3)
        return false;
    for (i = 0; i < n; i++) {
        snprintf(fpr + o, flen - o, "%02X%s", md[i], i + 1 < n ? ":" : "");
        o += i + 1 < n ? 3 : 2;
    }
    return true;
}

/* tls_cert_info - subject and SHA-256 fingerprint (hex with colons) of a PEM file. */
bool tls_cert_info(const char *cert_file, char *subject, size_t slen, char *fpr, size_t flen,
                   char *err, size_t errlen)
{
    FILE *fp;
    X509 *x;
    bool ok;

    tls_init();
    fp = fopen(cert_file, "r");
    if (fp == NULL) {
        if (err && errlen)
            snprintf(err, errlen, "cannot open %s", cert_file);
        return false;
    }
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    if (x == NULL) {
        tls_err(err, errlen, "no PEM certificate in", cert_file);
        return false;
    }
    if (subject && slen)
        X509_NAME_oneline(X509_get_subject_name(x), subject, (int)slen);
    ok = fpr == NULL || tls_fingerprint(x, fpr, flen);
    if (!ok && err && errlen)
        snprintf(err, errlen, "cannot compute fingerprint of %s", cert_file);
    X509_free(x);
    return ok;
}
