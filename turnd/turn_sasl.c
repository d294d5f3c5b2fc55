/*
 * turn_sasl.c - libsasl2 server glue for turnd's AUTH command.
 *
 * One sasl_conn_t per turn_sasl context.  The context is created with the
 * site's hostname as serverFQDN and cf->sasl_realm as user_realm, so sasldb
 * keys are "user@<realm>" (saslpasswd2 -u <realm>).  Security properties:
 * no SASL security layer (max_ssf 0: TLS is the only protection), never
 * anonymous, and no plaintext mechanisms unless the caller allows them (TLS
 * active, or the site's loopback exception).  Base64 goes through libsasl2's
 * own sasl_encode64/sasl_decode64.  Payloads are never logged here.
 */
#include "turn_sasl.h"

#include <ctype.h>
#include <sasl/sasl.h>
#include <sasl/saslutil.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "sasl_glue.h"
#include "xalloc.h"

#define TURN_SASL_MECHS_MAX 512
/* Longest LOGIN user name passed on: account names are < 256 octets, plus "@realm". */
#define TURN_SASL_USER_MAX 512

struct turn_sasl {
    sasl_conn_t *conn;
    char offered[TURN_SASL_MECHS_MAX]; /* " A B C " with guard blanks */
    char known[TURN_SASL_MECHS_MAX];
    bool login_user; /* LOGIN: the next client data is the user name */
};

/*
 * turn_sasl_app - process-lifetime copy of the SASL application name.
 * libsasl2 keeps the appname pointer given to sasl_server_init() and reads
 * it again in every sasl_server_new(); a reload frees the old struct conf,
 * so the name handed over must outlive every configuration generation.
 */
static char *turn_sasl_app;

/* turn_sasl_init - process-wide libsasl2 server set-up through common/sasl_glue. */
bool turn_sasl_init(const struct conf *cf, char *err, size_t errlen)
{
    struct conf lasting = *cf;

    if (turn_sasl_app == NULL)
        turn_sasl_app = xstrdup(cf->sasl_app != NULL ? cf->sasl_app : "holdmx");
    lasting.sasl_app = turn_sasl_app;
    return sasl_glue_init(&lasting, true, err, errlen);
}

/* turn_sasl_shutdown - the counterpart of turn_sasl_init. */
void turn_sasl_shutdown(void)
{
    sasl_glue_done();
    free(turn_sasl_app);
    turn_sasl_app = NULL;
}

/* turn_sasl_is_plaintext - PLAIN and LOGIN carry the password in the clear. */
bool turn_sasl_is_plaintext(const char *mech)
{
    return strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0;
}

/* turn_sasl_secprops - set security flags; plaintext allowed or not. */
static int turn_sasl_secprops(sasl_conn_t *conn, bool plain_ok)
{
    sasl_security_properties_t sp;

    memset(&sp, 0, sizeof(sp));
    sp.min_ssf = 0;
    sp.max_ssf = 0; /* no SASL security layer */
    sp.maxbufsize = 0;
    sp.security_flags = SASL_SEC_NOANONYMOUS | (plain_ok ? 0 : SASL_SEC_NOPLAINTEXT);
    return sasl_setprop(conn, SASL_SEC_PROPS, &sp);
}

/* turn_sasl_list - " MECH1 MECH2 " (guard blanks) for the current secprops. */
static void turn_sasl_list(sasl_conn_t *conn, char *out, size_t outlen)
{
    const char *list = NULL;
    unsigned len = 0;
    int count = 0;

    snprintf(out, outlen, " ");
    if (sasl_listmech(conn, NULL, " ", " ", " ", &list, &len, &count) == SASL_OK && list)
        snprintf(out, outlen, "%s", list);
}

/* turn_sasl_create - new server context with the offered/known lists computed. */
struct turn_sasl *turn_sasl_create(const char *hostname, const char *realm, const char *local,
                                   const char *remote, bool plain_ok)
{
    struct turn_sasl *s = xcalloc(1, sizeof(*s));
    int r;

    r = sasl_server_new(SASL_GLUE_SERVICE, hostname, realm, local, remote, NULL, 0, &s->conn);
    if (r != SASL_OK) {
        log_error("sasl_server_new: %s", sasl_errstring(r, NULL, NULL));
        free(s);
        return NULL;
    }
    if (turn_sasl_secprops(s->conn, true) != SASL_OK) {
        turn_sasl_free(s);
        return NULL;
    }
    turn_sasl_list(s->conn, s->known, sizeof(s->known));
    if (turn_sasl_secprops(s->conn, plain_ok) != SASL_OK) {
        turn_sasl_free(s);
        return NULL;
    }
    turn_sasl_list(s->conn, s->offered, sizeof(s->offered));
    return s;
}

/* turn_sasl_free - dispose of the libsasl2 connection and the context. */
void turn_sasl_free(struct turn_sasl *s)
{
    if (s == NULL)
        return;
    if (s->conn != NULL)
        sasl_dispose(&s->conn);
    free(s);
}

/* turn_sasl_in_list - case-insensitive word search in a " A B " list. */
static bool turn_sasl_in_list(const char *list, const char *mech)
{
    size_t n = strlen(mech);
    const char *p = list;

    if (n == 0 || strchr(mech, ' ') != NULL)
        return false;
    while ((p = strchr(p, ' ')) != NULL) {
        p++;
        if (strncasecmp(p, mech, n) == 0 && p[n] == ' ')
            return true;
    }
    return false;
}

/* turn_sasl_mechs - the offered list without guard blanks. */
void turn_sasl_mechs(struct turn_sasl *s, char *out, size_t outlen)
{
    const char *p = s->offered;
    size_t n;

    while (*p == ' ')
        p++;
    n = strlen(p);
    while (n > 0 && p[n - 1] == ' ')
        n--;
    snprintf(out, outlen, "%.*s", (int)n, p);
}

/* turn_sasl_offers - mech is offered on this connection. */
bool turn_sasl_offers(struct turn_sasl *s, const char *mech)
{
    return turn_sasl_in_list(s->offered, mech);
}

/* turn_sasl_known - mech exists in libsasl2's configuration. */
bool turn_sasl_known(struct turn_sasl *s, const char *mech)
{
    return turn_sasl_in_list(s->known, mech);
}

/* turn_sasl_map - libsasl2 result code -> turn_sasl_status. */
static int turn_sasl_map(int r)
{
    switch (r) {
    case SASL_OK:
        return TURN_SASL_DONE;
    case SASL_CONTINUE:
        return TURN_SASL_MORE;
    case SASL_BADPROT:
    case SASL_BADPARAM:
        return TURN_SASL_FORM;
    case SASL_NOMECH:
    case SASL_TOOWEAK:
    case SASL_ENCRYPT:
        return TURN_SASL_NOMECH;
    case SASL_TRYAGAIN:
    case SASL_UNAVAIL:
    case SASL_NOMEM:
        return TURN_SASL_TEMP;
    default:
        return TURN_SASL_FAIL; /* BADAUTH, NOUSER, NOAUTHZ, FAIL, ... */
    }
}

/* turn_sasl_decode - base64 text -> malloc'd bytes; false when undecodable. */
static bool turn_sasl_decode(const char *b64, char **out, unsigned *outlen)
{
    size_t inlen = strlen(b64);
    unsigned max = (unsigned)(inlen / 4 * 3 + 4);

    *out = xmalloc(max);
    *outlen = 0;
    if (inlen == 0)
        return true;
    if (inlen % 4 != 0 || sasl_decode64(b64, (unsigned)inlen, *out, max, outlen) != SASL_OK) {
        free(*out);
        *out = NULL;
        return false;
    }
    return true;
}

/* turn_sasl_encode - server data -> malloc'd base64 text (empty data = ""). */
static char *turn_sasl_encode(const char *data, unsigned len)
{
    unsigned max = (len + 2) / 3 * 4 + 1, got = 0;
    char *out = xmalloc(max);

    out[0] = '\0';
    if (len > 0 && sasl_encode64(data, len, out, max, &got) != SASL_OK)
        log_panic("sasl_encode64 failed for %u bytes", len);
    out[got] = '\0';
    return out;
}

/* turn_sasl_result - common tail of first/next: map and build the challenge. */
static int turn_sasl_result(int r, const char *sout, unsigned soutlen, char **challenge)
{
    int st = turn_sasl_map(r);

    *challenge = NULL;
    if (st == TURN_SASL_MORE)
        *challenge = turn_sasl_encode(sout, sout != NULL ? soutlen : 0);
    return st;
}

/*
 * turn_sasl_login_bad_user - true when this client data is a LOGIN user
 * name that can never log in: empty, TURN_SASL_USER_MAX octets or more, or
 * with a byte outside printable ASCII (account names are letters, digits
 * and "._+-", optionally with "@realm").  libsasl2's LOGIN plugin loses its
 * copy of the password whenever it cannot canonicalise the name (empty,
 * over ~1017 octets, some control characters), a leak any client could
 * repeat, so such names are refused here, before libsasl2.  Consumes the
 * "user name comes next" mark either way.
 */
static bool turn_sasl_login_bad_user(struct turn_sasl *s, const char *in, unsigned inlen)
{
    bool user = s->login_user;

    s->login_user = false;
    if (!user)
        return false;
    if (inlen == 0 || inlen >= TURN_SASL_USER_MAX)
        return true;
    for (unsigned i = 0; i < inlen; i++)
        if (!isgraph((unsigned char)in[i]))
            return true;
    return false;
}

/* turn_sasl_first - sasl_server_start with the optional initial response. */
int turn_sasl_first(struct turn_sasl *s, const char *mech, const char *init_b64, char **challenge)
{
    const char *sout = NULL;
    unsigned soutlen = 0, inlen = 0;
    char *in = NULL;
    int r;

    *challenge = NULL;
    if (!turn_sasl_offers(s, mech))
        return TURN_SASL_NOMECH;
    if (init_b64 != NULL && !turn_sasl_decode(init_b64, &in, &inlen))
        return TURN_SASL_FORM;
    s->login_user = strcasecmp(mech, "LOGIN") == 0;
    if (s->login_user && init_b64 != NULL && turn_sasl_login_bad_user(s, in, inlen)) {
        free(in);
        return TURN_SASL_FAIL;
    }
    r = sasl_server_start(s->conn, mech, in, inlen, &sout, &soutlen);
    free(in);
    return turn_sasl_result(r, sout, soutlen, challenge);
}

/* turn_sasl_next - sasl_server_step with one decoded client response. */
int turn_sasl_next(struct turn_sasl *s, const char *resp_b64, char **challenge)
{
    const char *sout = NULL;
    unsigned soutlen = 0, inlen = 0;
    char *in = NULL;
    int r;

    *challenge = NULL;
    if (!turn_sasl_decode(resp_b64, &in, &inlen))
        return TURN_SASL_FORM;
    if (turn_sasl_login_bad_user(s, in, inlen)) {
        free(in);
        return TURN_SASL_FAIL;
    }
    r = sasl_server_step(s->conn, in, inlen, &sout, &soutlen);
    free(in);
    return turn_sasl_result(r, sout, soutlen, challenge);
}

/* turn_sasl_username - the authenticated identity (SASL_USERNAME). */
const char *turn_sasl_username(struct turn_sasl *s)
{
    const void *who = NULL;

    if (sasl_getprop(s->conn, SASL_USERNAME, &who) != SASL_OK)
        return NULL;
    return who;
}

/* turn_sasl_detail - sasl_errdetail of the connection. */
const char *turn_sasl_detail(struct turn_sasl *s)
{
    const char *d = sasl_errdetail(s->conn);

    return d != NULL ? d : "";
}
