/*
 * turn_sasl.h - turnd's narrow wrapper around the Cyrus SASL server (libsasl2).
 *
 * Shaped like Postfix's xsasl: create / first / next / username / free, with
 * a small status vocabulary that the AUTH command maps to SMTP replies
 * (RFC 4954): MORE -> 334, DONE -> 235, FORM -> 501, FAIL -> 535,
 * TEMP -> 454, NOMECH -> 504.  Challenges and responses cross this
 * interface base64-encoded, exactly as they travel on the wire; nothing
 * outside this file sees a sasl_conn_t.
 *
 * turn_sasl_init() is called once per process (libsasl2 keeps global state);
 * it is common/sasl_glue's sasl_glue_init() on the server side, which makes
 * libsasl2 read <sasl_conf_dir>/<sasl_app>.conf and log through log_*.  A
 * reload cannot move the SASL configuration directory; restart for that.
 */
#ifndef HM_TURN_SASL_H
#define HM_TURN_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

enum turn_sasl_status {
    TURN_SASL_DONE = 0, /* authenticated: 235 */
    TURN_SASL_MORE,     /* send the challenge: 334 */
    TURN_SASL_FORM,     /* malformed client data (base64, protocol): 501 */
    TURN_SASL_FAIL,     /* bad credentials: 535 */
    TURN_SASL_TEMP,     /* backend trouble: 454 */
    TURN_SASL_NOMECH,   /* mechanism unknown or not allowed here: 504 */
};

struct turn_sasl;

/* turn_sasl_init - process-wide libsasl2 server initialisation; false + err on failure. */
bool turn_sasl_init(const struct conf *cf, char *err, size_t errlen);
/* turn_sasl_shutdown - release libsasl2's global state. */
void turn_sasl_shutdown(void);

/*
 * turn_sasl_create - one server context for one connection.  local and
 * remote are "ip;port" texts (libsasl2's format); plain_ok says whether
 * plaintext mechanisms (PLAIN, LOGIN) may be used.  NULL on failure.
 */
struct turn_sasl *turn_sasl_create(const char *hostname, const char *realm, const char *local,
                                   const char *remote, bool plain_ok);
/* turn_sasl_free - dispose of the context (NULL is fine). */
void turn_sasl_free(struct turn_sasl *s);

/*
 * turn_sasl_mechs - the space-separated mechanisms this context offers
 * (never ANONYMOUS; PLAIN/LOGIN only when plain_ok).  Empty when none.
 */
void turn_sasl_mechs(struct turn_sasl *s, char *out, size_t outlen);
/* turn_sasl_offers - true when mech (case-insensitive) is in turn_sasl_mechs(). */
bool turn_sasl_offers(struct turn_sasl *s, const char *mech);
/* turn_sasl_known - true when libsasl2 has mech at all (even if not offered here). */
bool turn_sasl_known(struct turn_sasl *s, const char *mech);

/*
 * turn_sasl_first - start mech; init_b64 is the initial response (NULL = none,
 * "" = present but empty, i.e. "=" on the wire).  On MORE, *challenge is a
 * malloc'd base64 string (possibly empty) for the 334 line; else NULL.
 */
int turn_sasl_first(struct turn_sasl *s, const char *mech, const char *init_b64, char **challenge);
/* turn_sasl_next - feed one base64 response line; same contract as first. */
int turn_sasl_next(struct turn_sasl *s, const char *resp_b64, char **challenge);

/* turn_sasl_username - SASL_USERNAME after DONE, or NULL. */
const char *turn_sasl_username(struct turn_sasl *s);
/* turn_sasl_detail - libsasl2's detail text of the last failure (for logs). */
const char *turn_sasl_detail(struct turn_sasl *s);

/* turn_sasl_is_plaintext - true for mechanisms that send the password in the clear. */
bool turn_sasl_is_plaintext(const char *mech);

#endif
