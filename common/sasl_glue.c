/*
 * sasl_glue.c - libsasl2 initialisation and secret storage (see sasl_glue.h).
 *
 * libsasl2 keeps process-wide state: sasl_glue_init() runs once and keeps a
 * copy of the configuration directory for the GETCONFPATH callback.
 * sasl_glue_setpass()/sasl_glue_delpass() open a short-lived server
 * connection with user_realm = cf->sasl_realm, call sasl_setpass() and
 * dispose of it; the secret only passes through.
 *
 * Log lines from libsasl2 may contain user names sent by peers, so they go
 * through log_printable().  Levels above SASL_LOG_DEBUG (TRACE, PASS) are
 * dropped: PASS traces may contain secrets.
 */
#include "sasl_glue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sasl/sasl.h>

#include "log.h"
#include "xalloc.h"

static bool sasl_glue_ready;    /* sasl_*_init done */
static bool sasl_glue_server;   /* ... on the server side */
static char *sasl_glue_confdir; /* GETCONFPATH answer, NULL = default */

/* sasl_glue_log - SASL_CB_LOG: libsasl2 and plugin messages to our log. */
static int sasl_glue_log(void *ctx, int level, const char *msg)
{
    char safe[512];

    (void)ctx;
    if (msg == NULL || level > SASL_LOG_DEBUG)
        return SASL_OK;
    log_printable(safe, sizeof(safe), msg, strlen(msg));
    switch (level) {
    case SASL_LOG_ERR:
        log_error("sasl: %s", safe);
        break;
    case SASL_LOG_FAIL:
    case SASL_LOG_WARN:
        log_warn("sasl: %s", safe);
        break;
    default: /* NOTE ("setpass succeeded for ...") and DEBUG */
        log_debug("sasl: %s", safe);
        break;
    }
    return SASL_OK;
}

/*
 * sasl_glue_confpath - SASL_CB_GETCONFPATH: where <sasl_app>.conf lives.
 * sasl.h says the library frees the string, but libsasl2 (server.c
 * load_config, 2.1.27/2.1.28) only reads it and never frees it (it even
 * substitutes a literal "" for NULL), so we hand out our own long-lived
 * copy; a strdup here leaks once per process.
 */
static int sasl_glue_confpath(void *ctx, char **path)
{
    (void)ctx;
    if (sasl_glue_confdir == NULL)
        return SASL_FAIL;
    *path = sasl_glue_confdir;
    return SASL_OK;
}

/* sasl_glue_callbacks - the process-wide callback list (static: libsasl2 keeps the pointer). */
static sasl_callback_t *sasl_glue_callbacks(void)
{
    static sasl_callback_t cbs[3];
    int n = 0;

    cbs[n++] = (sasl_callback_t){SASL_CB_LOG, (int (*)(void))(void (*)(void))sasl_glue_log, NULL};
    if (sasl_glue_confdir != NULL)
        cbs[n++] = (sasl_callback_t){SASL_CB_GETCONFPATH,
                                     (int (*)(void))(void (*)(void))sasl_glue_confpath, NULL};
    cbs[n] = (sasl_callback_t){SASL_CB_LIST_END, NULL, NULL};
    return cbs;
}

/* sasl_glue_app - the application name given to libsasl2 (lives until exit). */
static char *sasl_glue_app;

/* sasl_glue_init - initialise libsasl2 once for this process. */
bool sasl_glue_init(const struct conf *cf, bool server, char *err, size_t errlen)
{
    int r;

    if (sasl_glue_ready)
        return true;
    free(sasl_glue_confdir);
    sasl_glue_confdir = cf->sasl_conf_dir != NULL ? xstrdup(cf->sasl_conf_dir) : NULL;
    /* libsasl2 keeps the application name pointer for the process's life
     * (it is read again by every sasl_server_new): give it a copy that a
     * configuration reload cannot free. */
    if (sasl_glue_app == NULL)
        sasl_glue_app = xstrdup(cf->sasl_app != NULL ? cf->sasl_app : "holdmx");
    if (server)
        r = sasl_server_init(sasl_glue_callbacks(), sasl_glue_app);
    else
        r = sasl_client_init(sasl_glue_callbacks());
    if (r != SASL_OK) {
        snprintf(err, errlen, "cannot initialise Cyrus SASL (%s): %s",
                 server ? "sasl_server_init" : "sasl_client_init", sasl_errstring(r, NULL, NULL));
        return false;
    }
    sasl_glue_ready = true;
    sasl_glue_server = server;
    return true;
}

/* sasl_glue_done - release libsasl2's global state. */
void sasl_glue_done(void)
{
    if (sasl_glue_ready)
        sasl_done();
    sasl_glue_ready = false;
    free(sasl_glue_confdir);
    sasl_glue_confdir = NULL;
}

/* sasl_glue_conn - a server connection for account administration, or NULL + err. */
static sasl_conn_t *sasl_glue_conn(const struct conf *cf, char *err, size_t errlen)
{
    sasl_conn_t *conn = NULL;
    int r;

    if (!sasl_glue_init(cf, true, err, errlen))
        return NULL;
    if (!sasl_glue_server) {
        snprintf(err, errlen, "Cyrus SASL was initialised for the client side only");
        return NULL;
    }
    r = sasl_server_new(SASL_GLUE_SERVICE, NULL, cf->sasl_realm, NULL, NULL, NULL, 0, &conn);
    if (r != SASL_OK) {
        snprintf(err, errlen, "sasl_server_new: %s", sasl_errstring(r, NULL, NULL));
        return NULL;
    }
    return conn;
}

/* sasl_glue_fail - err text for a failed sasl_setpass. */
static int sasl_glue_fail(sasl_conn_t *conn, const char *what, int r, char *err, size_t errlen)
{
    const char *detail = sasl_errdetail(conn);

    snprintf(err, errlen,
             "%s: %s%s%s (hint: check sasl_conf_dir/<sasl_app>.conf: "
             "pwcheck_method, auxprop_plugin, sasldb_path, and that the "
             "database is writable)",
             what, sasl_errstring(r, NULL, NULL), detail != NULL ? ": " : "",
             detail != NULL ? detail : "");
    return SASL_GLUE_FAIL;
}

/* sasl_glue_setpass - create or replace the secret of user. */
int sasl_glue_setpass(const struct conf *cf, const char *user, const char *pass, size_t passlen,
                      char *err, size_t errlen)
{
    sasl_conn_t *conn;
    int r, status = SASL_GLUE_OK;

    if (passlen == 0 || passlen > 1024) {
        snprintf(err, errlen, "the password must be 1 to 1024 bytes long");
        return SASL_GLUE_FAIL;
    }
    if ((conn = sasl_glue_conn(cf, err, errlen)) == NULL)
        return SASL_GLUE_FAIL;
    r = sasl_setpass(conn, user, pass, (unsigned)passlen, NULL, 0, SASL_SET_CREATE);
    if (r == SASL_NOCHANGE || r == SASL_BADPARAM)
        r = sasl_setpass(conn, user, pass, (unsigned)passlen, NULL, 0, 0); /* exists: replace */
    if (r != SASL_OK)
        status = sasl_glue_fail(conn, "cannot store the password", r, err, errlen);
    sasl_dispose(&conn);
    return status;
}

/* sasl_glue_delpass - remove the secret of user, as saslpasswd2 -d does. */
int sasl_glue_delpass(const struct conf *cf, const char *user, char *err, size_t errlen)
{
    sasl_conn_t *conn;
    int r, status = SASL_GLUE_OK;

    if ((conn = sasl_glue_conn(cf, err, errlen)) == NULL)
        return SASL_GLUE_FAIL;
    r = sasl_setpass(conn, user, NULL, 0, NULL, 0, SASL_SET_DISABLE);
    if (r == SASL_NOUSER) {
        snprintf(err, errlen, "no secret stored for this user");
        status = SASL_GLUE_NOUSER;
    } else if (r != SASL_OK) {
        status = sasl_glue_fail(conn, "cannot delete the password", r, err, errlen);
    }
    sasl_dispose(&conn);
    return status;
}

/* sasl_glue_account_name - "alice@realm" -> "alice" when realm is ours. */
bool sasl_glue_account_name(const char *sasl_username, const char *realm, char *out, size_t len)
{
    const char *at = strrchr(sasl_username, '@');
    size_t n = strlen(sasl_username);

    if (at != NULL && realm != NULL && strcasecmp(at + 1, realm) == 0)
        n = (size_t)(at - sasl_username);
    if (n == 0 || n >= len)
        return false;
    memcpy(out, sasl_username, n);
    out[n] = '\0';
    return true;
}
