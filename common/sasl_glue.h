/*
 * sasl_glue.h - Cyrus SASL (libsasl2) set-up and secret storage shared by
 * turnd and queuectl.
 *
 * sasl_glue_init() initialises libsasl2 once per process with two
 * callbacks: SASL_CB_LOG (to log_*, peer text sanitised, never a secret)
 * and, when cf->sasl_conf_dir is set, SASL_CB_GETCONFPATH, so libsasl2
 * reads <sasl_conf_dir>/<sasl_app>.conf.  That file chooses the backend,
 * e.g. for sasldb:
 *
 *     pwcheck_method: auxprop
 *     auxprop_plugin: sasldb
 *     sasldb_path: /var/lib/holdmx/sasldb2
 *     mech_list: CRAM-MD5 PLAIN LOGIN
 *
 * Always set mech_list (otherwise every installed mechanism is offered,
 * ANONYMOUS included) and sasldb_path (otherwise libsasl2 silently uses
 * /etc/sasldb2).  LDAP or SQL auxprop plugins work unchanged.
 *
 * Realm: every secret is stored and looked up in the realm cf->sasl_realm
 * (default "holdmx"): an account "alice" is the sasldb entry "alice@holdmx",
 * so `saslpasswd2 -p -c -u holdmx -f <sasldb> alice` is equivalent to
 * `queuectl account set alice --password-stdin`.  After authentication,
 * libsasl2 reports the user as "alice@holdmx"; sasl_glue_account_name()
 * maps that back to the account name "alice".
 *
 * The SASL service name is "smtp" (SASL_GLUE_SERVICE).
 */
#ifndef HM_SASL_GLUE_H
#define HM_SASL_GLUE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

#define SASL_GLUE_SERVICE "smtp"

/* sasl_glue_status - outcome of the secret-storage calls. */
enum sasl_glue_status {
    SASL_GLUE_OK = 0,
    SASL_GLUE_NOUSER, /* delete of a user that has no secret */
    SASL_GLUE_FAIL,   /* anything else; err says what */
};

/*
 * sasl_glue_init - initialise libsasl2 for this process (server side when
 * server is true, else client side only).  Idempotent: later calls return
 * true at once.  false with a sentence in err on failure.
 */
bool sasl_glue_init(const struct conf *cf, bool server, char *err, size_t errlen);

/* sasl_glue_done - release libsasl2's global state (sasl_done). */
void sasl_glue_done(void);

/*
 * sasl_glue_setpass - store pass (passlen bytes, need not be NUL-terminated)
 * as the secret of user in realm cf->sasl_realm, creating the entry or
 * replacing the old secret.  The secret is never logged or kept.
 */
int sasl_glue_setpass(const struct conf *cf, const char *user, const char *pass, size_t passlen,
                      char *err, size_t errlen);

/*
 * sasl_glue_delpass - remove the secret of user (sasl_setpass with
 * SASL_SET_DISABLE, as saslpasswd2 -d does).  SASL_GLUE_NOUSER when there
 * was none.
 */
int sasl_glue_delpass(const struct conf *cf, const char *user, char *err, size_t errlen);

/*
 * sasl_glue_account_name - the account name for an authenticated
 * SASL_USERNAME: "alice@holdmx" -> "alice" when realm is "holdmx"
 * (case-insensitive); any other name is copied unchanged.  false if it
 * does not fit in out.
 */
bool sasl_glue_account_name(const char *sasl_username, const char *realm, char *out, size_t len);

#endif
