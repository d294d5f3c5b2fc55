/*
 * turn_session.c - one customer connection on an ODMR port: the server-side
 * state machine and the ODMR command table.
 *
 * States (turn_enter_state() is the only writer):
 *   INITIAL -> AUTH_IN_PROGRESS -> AUTHENTICATED -> REVERSING -> REVERSED
 *   and CLOSING from anywhere.  STARTTLS goes back to INITIAL.
 * One table lists every command (EHLO, HELO, AUTH, ATRN, TURN, ETRN,
 * STARTTLS, NOOP, RSET, QUIT); anything else is 502 5.5.1 (RFC 2645 5.4).
 * The dispatcher applies the generic gates: line length (8 KiB here, for
 * long ATRN lists), NUL bytes, AUTH required, the error limit, and the
 * synchronisation points (bytes pipelined after STARTTLS, ATRN or TURN
 * are discarded and logged).  Failed AUTH answers 535 only after a delay
 * that grows per client address (turn_penalty.c), on a timer.
 *
 * Metrics: open sessions (ODMR gauge), failed AUTHs, ATRN refused with 530
 * and local ETRN refusals are counted here, ATRN replies in turn_atrn.c;
 * turn_stats.c pushes them to queued.
 *
 * Ownership: the session owns its bufferevent, SASL context, ETRN request
 * and pending claim; turn_session_free() releases whatever is left.  After
 * the reversal the bufferevent belongs to the dlv engine (turn_atrn.c).
 */
#include "turn_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dlv.h"
#include "etrn.h"
#include "etrn_clnt.h"
#include "log.h"
#include "metrics.h"
#include "sasl_glue.h"
#include "tls.h"
#include "xalloc.h"

#define TURN_OUTPUT_MAX 65536 /* stop reading while this much output is unsent */
#define TURN_F_SYNC     0x1u  /* last in a pipelined group: discard what follows */
#define TURN_F_AUTH     0x2u  /* needs a successful AUTH (else 530) */

struct turn_cmd {
    const char *verb;
    int (*fn)(struct turn_session *s, const char *arg);
    unsigned flags;
};

static int turn_cmd_ehlo(struct turn_session *s, const char *arg);
static int turn_cmd_helo(struct turn_session *s, const char *arg);
static int turn_cmd_auth(struct turn_session *s, const char *arg);
static int turn_cmd_etrn(struct turn_session *s, const char *arg);
static int turn_cmd_starttls(struct turn_session *s, const char *arg);
static int turn_cmd_noop(struct turn_session *s, const char *arg);
static int turn_cmd_rset(struct turn_session *s, const char *arg);
static int turn_cmd_quit(struct turn_session *s, const char *arg);
static void turn_session_drive(struct turn_session *s);

static const struct turn_cmd turn_cmds[] = {
    {"EHLO", turn_cmd_ehlo, 0},
    {"HELO", turn_cmd_helo, 0},
    {"AUTH", turn_cmd_auth, 0},
    {"ATRN", turn_atrn_cmd, TURN_F_SYNC | TURN_F_AUTH},
    {"TURN", turn_atrn_turn_cmd, TURN_F_SYNC},
    {"ETRN", turn_cmd_etrn, TURN_F_AUTH},
    {"STARTTLS", turn_cmd_starttls, TURN_F_SYNC},
    {"NOOP", turn_cmd_noop, 0},
    {"RSET", turn_cmd_rset, 0},
    {"QUIT", turn_cmd_quit, 0},
    {NULL, NULL, 0},
};

/* turn_state_name - printable state for logs. */
const char *turn_state_name(int state)
{
    static const char *names[] = {"INITIAL",   "AUTH_IN_PROGRESS", "AUTHENTICATED",
                                  "REVERSING", "REVERSED",         "CLOSING"};

    if (state < 0 || state > TURN_S_CLOSING)
        return "?";
    return names[state];
}

/* turn_enter_state - the only writer of s->state; traces transitions. */
void turn_enter_state(struct turn_session *s, int state)
{
    if (s->state != state)
        log_debug("session %s: %s -> %s", s->peer, turn_state_name(s->state),
                  turn_state_name(state));
    s->state = state;
}

/* turn_vreply - queue one reply line (CRLF added) on the session's live bufferevent. */
static void __attribute__((format(printf, 2, 0)))
turn_vreply(struct turn_session *s, const char *fmt, va_list ap)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);

    evbuffer_add_vprintf(out, fmt, ap);
    evbuffer_add(out, "\r\n", 2);
}

/* turn_reply - queue one reply line (CRLF added). */
void turn_reply(struct turn_session *s, const char *fmt, ...)
{
    va_list ap;

    if (s->bev == NULL)
        return;
    va_start(ap, fmt);
    turn_vreply(s, fmt, ap);
    va_end(ap);
}

/* turn_session_close - send a last reply, stop reading, free once flushed. */
int turn_session_close(struct turn_session *s, const char *fmt, ...)
{
    struct timeval tv = {30, 0};
    va_list ap;

    if (s->bev == NULL) {
        turn_session_free(s);
        return TURN_NEXT_GONE;
    }
    if (fmt != NULL) {
        va_start(ap, fmt);
        turn_vreply(s, fmt, ap);
        va_end(ap);
    }
    turn_enter_state(s, TURN_S_CLOSING);
    bufferevent_disable(s->bev, EV_READ);
    bufferevent_set_timeouts(s->bev, NULL, &tv);
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
        turn_session_free(s);
        return TURN_NEXT_GONE;
    }
    return TURN_NEXT_STOP;
}

/* turn_session_free - release everything the session still owns. */
void turn_session_free(struct turn_session *s)
{
    if (s->etrn != NULL)
        etrn_clnt_cancel(s->etrn);
    if (s->delay_ev != NULL)
        event_free(s->delay_ev);
    if (s->empty != NULL)
        turn_empty_free(s->empty);
    turn_sasl_free(s->sasl);
    turn_atrn_release(s);
    if (s->bev != NULL)
        bufferevent_free(s->bev);
    log_info("disconnect from %s state=%s%s%s", s->peer, turn_state_name(s->state),
             s->account[0] ? " user=" : "", s->account);
    turn_server_session_gone(s->srv, s);
    metrics_session_close(METRIC_PROTO_ODMR);
    turn_gen_unref(s->gen);
    free(s);
}

/* turn_session_next - iteration over the server's session list. */
struct turn_session *turn_session_next(struct turn_session *s)
{
    return s->next;
}

/* turn_suspend - stop reading commands (and bytes) until turn_resume(). */
static void turn_suspend(struct turn_session *s)
{
    s->suspended = true;
    if (s->bev != NULL)
        bufferevent_disable(s->bev, EV_READ); /* bounded input while we wait */
}

/* turn_resume - read again and process what is already buffered. */
static void turn_resume(struct turn_session *s)
{
    s->suspended = false;
    if (s->bev != NULL)
        bufferevent_enable(s->bev, EV_READ);
    turn_session_drive(s);
}

/* turn_plain_ok - may PLAIN/LOGIN be used on this connection now? */
static bool turn_plain_ok(const struct turn_session *s)
{
    return s->tls_on || (s->site->auth_plain == CONF_PLAIN_LOOPBACK && s->loopback);
}

/* turn_session_sasl - the connection's SASL context, created on first use. */
static struct turn_sasl *turn_session_sasl(struct turn_session *s)
{
    if (s->sasl == NULL)
        s->sasl = turn_sasl_create(s->site->hostname, s->cf->sasl_realm, s->sasl_local,
                                   s->sasl_remote, turn_plain_ok(s));
    return s->sasl;
}

/* turn_count_error - one more junk/error command; 421 at the limit. */
static int turn_count_error(struct turn_session *s)
{
    int max = s->cf->max_errors > 0 ? s->cf->max_errors : 10;

    if (++s->errors >= (unsigned)max) {
        log_warn("too many errors from %s", s->peer);
        return turn_session_close(s, "421 4.7.0 %s Error: too many errors", s->site->hostname);
    }
    return TURN_NEXT_CONT;
}

/* ------------------------------------------------------------------ */
/* Commands                                                           */

/* turn_cmd_ehlo - the ODMR extension list (AUTH and ATRN are mandatory). */
static int turn_cmd_ehlo(struct turn_session *s, const char *arg)
{
    char mechs[512] = "";
    struct turn_sasl *sasl;

    if (*arg == '\0') {
        turn_reply(s, "501 5.5.4 Syntax: EHLO hostname");
        return turn_count_error(s);
    }
    snprintf(s->helo, sizeof(s->helo), "%s", arg);
    sasl = turn_session_sasl(s);
    if (sasl != NULL)
        turn_sasl_mechs(sasl, mechs, sizeof(mechs));
    turn_reply(s, "250-%s", s->site->hostname);
    if (mechs[0] != '\0') {
        turn_reply(s, "250-AUTH %s", mechs);
        if (sasl != NULL && turn_sasl_offers(sasl, "LOGIN"))
            turn_reply(s, "250-AUTH=LOGIN %s", mechs);
    }
    turn_reply(s, "250-ATRN");
    turn_reply(s, "250-TURN");
    turn_reply(s, "250-ETRN");
    if (s->gen->tls[s->site_idx] != NULL && !s->tls_on)
        turn_reply(s, "250-STARTTLS");
    turn_reply(s, "250-ENHANCEDSTATUSCODES");
    turn_reply(s, "250 8BITMIME");
    return TURN_NEXT_CONT;
}

/* turn_cmd_helo - plain HELO: just the name. */
static int turn_cmd_helo(struct turn_session *s, const char *arg)
{
    if (*arg == '\0') {
        turn_reply(s, "501 5.5.4 Syntax: HELO hostname");
        return turn_count_error(s);
    }
    snprintf(s->helo, sizeof(s->helo), "%s", arg);
    turn_reply(s, "250 %s", s->site->hostname);
    return TURN_NEXT_CONT;
}

/* turn_cmd_noop - 250. */
static int turn_cmd_noop(struct turn_session *s, const char *arg)
{
    (void)arg;
    turn_reply(s, "250 2.0.0 OK");
    return TURN_NEXT_CONT;
}

/* turn_cmd_rset - nothing to reset outside AUTH; 250. */
static int turn_cmd_rset(struct turn_session *s, const char *arg)
{
    (void)arg;
    turn_reply(s, "250 2.0.0 OK");
    return TURN_NEXT_CONT;
}

/* turn_cmd_quit - 221 and close. */
static int turn_cmd_quit(struct turn_session *s, const char *arg)
{
    (void)arg;
    s->quitting = true;
    return turn_session_close(s, "221 2.0.0 %s closing connection", s->site->hostname);
}

/* ------------------------------------------------------------------ */
/* AUTH                                                               */

/* turn_auth_reset - forget the SASL exchange; the next AUTH starts fresh. */
static void turn_auth_reset(struct turn_session *s)
{
    turn_sasl_free(s->sasl);
    s->sasl = NULL;
    s->mech[0] = '\0';
    turn_enter_state(s, TURN_S_INITIAL);
}

/* turn_auth_delay_cb - the failure delay ran out: 535, maybe close. */
static void turn_auth_delay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct turn_session *s = arg;

    (void)fd;
    (void)what;
    if (s->auth_fails >= TURN_AUTH_FAIL_MAX) {
        turn_reply(s, "535 5.7.8 Authentication credentials invalid");
        turn_session_close(s, "421 4.7.0 %s Error: too many failed authentications",
                           s->site->hostname);
        return;
    }
    turn_reply(s, "535 5.7.8 Authentication credentials invalid");
    turn_resume(s);
}

/* turn_auth_failed - log, count, and answer 535 after the address's delay. */
static int turn_auth_failed(struct turn_session *s, const char *why)
{
    char detail[LOG_PEER_MAX + 1];
    const char *d = why != NULL ? why : s->sasl != NULL ? turn_sasl_detail(s->sasl) : "";
    int delay = turn_penalty_fail(s->srv->penalty, s->ip, (int64_t)time(NULL));
    struct timeval tv = {delay, 0};

    log_printable(detail, sizeof(detail), d, strlen(d));
    log_warn("auth failed from %s mech=%s delay=%ds (%s)", s->peer, s->mech, delay, detail);
    metrics_inc(METRIC_AUTH_FAILURES);
    s->auth_fails++;
    turn_auth_reset(s);
    if (s->delay_ev == NULL)
        s->delay_ev = evtimer_new(bufferevent_get_base(s->bev), turn_auth_delay_cb, s);
    turn_suspend(s);
    evtimer_add(s->delay_ev, &tv);
    return TURN_NEXT_STOP;
}

/* turn_auth_done - SASL succeeded: select the account, 235. */
static int turn_auth_done(struct turn_session *s)
{
    const char *user = turn_sasl_username(s->sasl);
    char name[STORE_ACCOUNT_MAX], clean[STORE_ACCOUNT_MAX];
    struct store_account acct;
    int r;

    if (user == NULL || !sasl_glue_account_name(user, s->cf->sasl_realm, name, sizeof(name)))
        name[0] = '\0';
    log_printable(clean, sizeof(clean), name, strlen(name));
    memset(&acct, 0, sizeof(acct));
    /* only names that log as themselves: s->account appears in log lines as is */
    r = name[0] != '\0' && strcmp(clean, name) == 0 ? store_account_get(s->srv->st, name, &acct)
                                                    : STORE_NOTFOUND;
    if (r == STORE_NOTFOUND)
        return turn_auth_failed(s, "authenticated, but no such account");
    if (r != STORE_OK) {
        log_error("account lookup user=%s: %s", clean, store_strerror(r));
        turn_auth_reset(s);
        turn_reply(s, "454 4.7.0 Temporary authentication failure");
        return TURN_NEXT_CONT;
    }
    store_account_release(&acct);
    snprintf(s->account, sizeof(s->account), "%s", name);
    log_info("auth ok user=%s mech=%s from %s", clean, s->mech, s->peer);
    turn_sasl_free(s->sasl);
    s->sasl = NULL;
    turn_enter_state(s, TURN_S_AUTHENTICATED);
    turn_reply(s, "235 2.7.0 Authentication successful");
    return TURN_NEXT_CONT;
}

/* turn_auth_status - map a turn_sasl status to the reply and next state. */
static int turn_auth_status(struct turn_session *s, int st, char *challenge)
{
    switch (st) {
    case TURN_SASL_MORE:
        turn_enter_state(s, TURN_S_AUTH_IN_PROGRESS);
        turn_reply(s, "334 %s", challenge != NULL ? challenge : "");
        free(challenge);
        return TURN_NEXT_CONT;
    case TURN_SASL_DONE:
        return turn_auth_done(s);
    case TURN_SASL_FORM:
        turn_auth_reset(s);
        turn_reply(s, "501 5.5.2 Cannot decode response");
        return turn_count_error(s);
    case TURN_SASL_TEMP:
        log_warn("auth temporary failure from %s mech=%s", s->peer, s->mech);
        turn_auth_reset(s);
        turn_reply(s, "454 4.7.0 Temporary authentication failure");
        return TURN_NEXT_CONT;
    case TURN_SASL_NOMECH:
        turn_auth_reset(s);
        turn_reply(s, "504 5.5.4 Unrecognized authentication mechanism");
        return turn_count_error(s);
    default:
        return turn_auth_failed(s, NULL);
    }
}

/* turn_cmd_auth - "AUTH mech [initial-response]". */
static int turn_cmd_auth(struct turn_session *s, const char *arg)
{
    char mech[64], init[TURN_ODMR_LINE_MAX], extra[2];
    struct turn_sasl *sasl;
    char *challenge = NULL;
    int n;

    if (s->account[0] != '\0') {
        turn_reply(s, "503 5.5.1 Error: already authenticated");
        return turn_count_error(s);
    }
    n = sscanf(arg, "%63s %8191s %1s", mech, init, extra);
    if (n < 1 || n > 2 || strlen(mech) >= sizeof(s->mech)) {
        turn_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        return turn_count_error(s);
    }
    sasl = turn_session_sasl(s);
    if (sasl == NULL) {
        turn_reply(s, "454 4.7.0 Temporary authentication failure");
        return TURN_NEXT_CONT;
    }
    if (!turn_sasl_offers(sasl, mech)) {
        if (turn_sasl_known(sasl, mech)) {
            turn_reply(s, "504 5.7.11 Mechanism %s needs TLS (use STARTTLS first)",
                       turn_sasl_is_plaintext(mech) ? mech : "requested");
            return turn_count_error(s);
        }
        turn_reply(s, "504 5.5.4 Unrecognized authentication mechanism");
        return turn_count_error(s);
    }
    snprintf(s->mech, sizeof(s->mech), "%s", mech);
    for (char *p = s->mech; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    if (n == 2 && strcmp(init, "=") == 0)
        init[0] = '\0';
    n = turn_sasl_first(sasl, s->mech, n == 2 ? init : NULL, &challenge);
    return turn_auth_status(s, n, challenge);
}

/* turn_auth_response - one line while AUTH_IN_PROGRESS ("*" cancels). */
static int turn_auth_response(struct turn_session *s, const char *line)
{
    char *challenge = NULL;

    if (strcmp(line, "*") == 0) {
        turn_auth_reset(s);
        turn_reply(s, "501 5.0.0 Authentication cancelled");
        return TURN_NEXT_CONT;
    }
    return turn_auth_status(s, turn_sasl_next(s->sasl, line, &challenge), challenge);
}

/* ------------------------------------------------------------------ */
/* ETRN (authenticated customers; forwarded to queued)                */

/* turn_etrn_done - queued answered: map the status to RFC 1985. */
static void turn_etrn_done(int status, size_t pending, void *arg)
{
    struct turn_session *s = arg;
    const char *node = s->etrn_node;
    bool counts = s->cf->etrn_reply == CONF_ETRN_REPLY_COUNT;

    s->etrn = NULL;
    log_info("etrn %s user=%s from %s: %s", node, s->account, s->peer,
             status == ETRN_CLNT_UNAVAILABLE ? "unavailable" : etrn_status_name(status));
    if (status == ETRN_STARTED && counts)
        turn_reply(s, "253 2.0.0 OK, %zu pending messages for node %s started", pending, node);
    else if (status == ETRN_NOTHING && counts)
        turn_reply(s, "251 2.0.0 OK, no messages waiting for node %s", node);
    else if (status == ETRN_STARTED || status == ETRN_NOTHING || status == ETRN_RUNNING)
        turn_reply(s, "250 2.0.0 OK, queuing for node %s started", node);
    else if (status == ETRN_DISABLED || status == ETRN_UNKNOWN)
        turn_reply(s, "459 4.7.1 Node %s not allowed: not available for ETRN", node);
    else
        turn_reply(s, "458 4.3.0 Unable to queue messages for node %s", node);
    turn_resume(s);
}

/* the "@domain" check: the first held subdomain the account does not own */
struct turn_etrn_scope {
    struct turn_session *s;
    const char *dom;
    size_t len;
    char foreign[STORE_DOMAIN_MAX];
};

/* turn_etrn_scope_cb - store_domain_iter callback: stop at a foreign subdomain. */
static int turn_etrn_scope_cb(const struct store_domain *d, void *arg)
{
    struct turn_etrn_scope *sc = arg;
    size_t dl = strlen(d->name);

    if (dl <= sc->len + 1 || d->name[dl - sc->len - 1] != '.' ||
        strcasecmp(d->name + dl - sc->len, sc->dom) != 0)
        return 0;
    if (store_account_may(sc->s->srv->st, sc->s->account, d->name))
        return 0;
    snprintf(sc->foreign, sizeof(sc->foreign), "%s", d->name);
    return 1;
}

/*
 * turn_etrn_sub_ok - "ETRN @dom" flushes every held subdomain of dom too:
 * allowed only when the account owns each of them.  False after a reply.
 */
static bool turn_etrn_sub_ok(struct turn_session *s, const char *dom)
{
    struct turn_etrn_scope sc = {.s = s, .dom = dom, .len = strlen(dom)};
    int r = store_domain_iter(s->srv->st, turn_etrn_scope_cb, &sc);

    if (r != STORE_OK) {
        log_error("etrn %s user=%s: listing domains: %s", s->etrn_node, s->account,
                  store_strerror(r));
        metrics_inc(METRIC_ETRN_ERROR);
        turn_reply(s, "458 4.3.0 Unable to queue messages for node %s", s->etrn_node);
        return false;
    }
    if (sc.foreign[0] == '\0')
        return true;
    log_warn("etrn refused user=%s node=%s from %s: subdomain %s is not the account's", s->account,
             s->etrn_node, s->peer, sc.foreign);
    metrics_inc(METRIC_ETRN_DENIED);
    turn_reply(s, "459 5.7.1 Node %s not allowed: not all of its subdomains are yours",
               s->etrn_node);
    return false;
}

/* turn_cmd_etrn - "ETRN [@]domain" for one of the account's domains. */
static int turn_cmd_etrn(struct turn_session *s, const char *arg)
{
    bool sub = arg[0] == '@';
    const char *dom = sub ? arg + 1 : arg;

    if (*arg == '\0') {
        turn_reply(s, "500 5.5.2 Syntax: ETRN domain");
        return turn_count_error(s);
    }
    if (arg[0] == '#') {
        turn_reply(s, "459 5.7.1 Node %.255s not allowed: queue names are not accepted", arg);
        return TURN_NEXT_CONT;
    }
    if (strlen(dom) >= STORE_DOMAIN_MAX || !turn_domain_valid(dom)) {
        turn_reply(s, "501 5.5.4 Syntax error in parameters");
        return turn_count_error(s);
    }
    snprintf(s->etrn_node, sizeof(s->etrn_node), "%s", arg);
    if (!store_account_may(s->srv->st, s->account, dom)) {
        log_warn("etrn refused user=%s node=%s from %s: not the account's domain", s->account,
                 s->etrn_node, s->peer);
        metrics_inc(METRIC_ETRN_DENIED);
        turn_reply(s, "459 5.7.1 Node %s not allowed: not your domain", s->etrn_node);
        return TURN_NEXT_CONT;
    }
    if (sub && !turn_etrn_sub_ok(s, dom))
        return TURN_NEXT_CONT;
    s->etrn = etrn_clnt_request(bufferevent_get_base(s->bev), s->cf->state_dir, dom, sub, s->ip,
                                TURN_ETRN_TIMEOUT, turn_etrn_done, s);
    if (s->etrn == NULL) {
        log_warn("etrn %s: queued control socket unavailable", s->etrn_node);
        metrics_inc(METRIC_ETRN_ERROR);
        turn_reply(s, "458 4.3.0 Unable to queue messages for node %s", s->etrn_node);
        return TURN_NEXT_CONT;
    }
    turn_suspend(s);
    return TURN_NEXT_STOP;
}

/* ------------------------------------------------------------------ */
/* STARTTLS                                                           */

/* turn_cmd_starttls - 220, then wrap once the reply has been flushed. */
static int turn_cmd_starttls(struct turn_session *s, const char *arg)
{
    if (s->gen->tls[s->site_idx] == NULL) {
        turn_reply(s, "502 5.5.1 Error: STARTTLS not available");
        return turn_count_error(s);
    }
    if (s->tls_on) {
        turn_reply(s, "503 5.5.1 Error: TLS already active");
        return turn_count_error(s);
    }
    if (*arg != '\0') {
        turn_reply(s, "501 5.5.4 Syntax: STARTTLS");
        return turn_count_error(s);
    }
    if (s->account[0] != '\0') {
        turn_reply(s, "503 5.5.1 Error: STARTTLS after AUTH");
        return turn_count_error(s);
    }
    turn_reply(s, "220 2.0.0 Ready to start TLS");
    s->tls_pending = true;
    turn_suspend(s); /* the ClientHello must reach the TLS filter, not our buffer */
    return TURN_NEXT_STOP;
}

static void turn_session_read_cb(struct bufferevent *bev, void *arg);
static void turn_session_write_cb(struct bufferevent *bev, void *arg);
static void turn_session_event_cb(struct bufferevent *bev, short what, void *arg);

/* turn_starttls_wrap - the 220 left: install the TLS filter, back to INITIAL. */
static void turn_starttls_wrap(struct turn_session *s)
{
    struct bufferevent *tls;

    s->tls_pending = false;
    tls = tls_wrap_server(bufferevent_get_base(s->bev), s->bev, s->gen->tls[s->site_idx]);
    if (tls == NULL) {
        log_warn("TLS setup failed for %s", s->peer);
        turn_session_close(s, NULL);
        return;
    }
    s->bev = tls;
    s->tls_on = true;
    s->suspended = false;
    s->helo[0] = '\0';
    turn_auth_reset(s); /* mechanisms change under TLS */
    bufferevent_setcb(s->bev, turn_session_read_cb, turn_session_write_cb, turn_session_event_cb,
                      s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    log_debug("STARTTLS with %s", s->peer);
}

/* ------------------------------------------------------------------ */
/* Dispatcher                                                         */

/* turn_discard_pipelined - a synchronisation point: drop what follows. */
static void turn_discard_pipelined(struct turn_session *s, const char *verb)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t n = evbuffer_get_length(in);

    if (n == 0)
        return;
    evbuffer_drain(in, n);
    log_warn("%zu bytes pipelined after %s from %s discarded", n, verb, s->peer);
}

/* turn_dispatch - look up the verb and apply the generic gates. */
static int turn_dispatch(struct turn_session *s, char *line)
{
    const struct turn_cmd *c;
    char *arg = line + strcspn(line, " ");

    if (*arg != '\0')
        *arg++ = '\0';
    while (*arg == ' ')
        arg++;
    for (c = turn_cmds; c->verb != NULL; c++)
        if (strcasecmp(c->verb, line) == 0)
            break;
    if (c->verb == NULL) {
        /* not the text: it is often an AUTH payload pipelined past a refusal */
        log_debug("unknown command from %s (%zu bytes)", s->peer, strlen(line));
        turn_reply(s, "502 5.5.1 Error: command not implemented");
        return turn_count_error(s);
    }
    if (c->flags & TURN_F_SYNC)
        turn_discard_pipelined(s, c->verb);
    if ((c->flags & TURN_F_AUTH) && s->account[0] == '\0') {
        if (c->fn == turn_atrn_cmd)
            metrics_atrn_reply(530);
        turn_reply(s, "530 5.7.0 Authentication required");
        return turn_count_error(s);
    }
    return c->fn(s, arg);
}

/* turn_read_line - next complete line (malloc'd, no EOL) or NULL; *toolong on overflow. */
static char *turn_read_line(struct evbuffer *in, bool *toolong, bool *hasnul)
{
    size_t eol_len = 0, len;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    char *line;

    *toolong = false;
    *hasnul = false;
    if (p.pos < 0) {
        *toolong = evbuffer_get_length(in) > TURN_ODMR_LINE_MAX;
        return NULL;
    }
    len = (size_t)p.pos;
    if (len > TURN_ODMR_LINE_MAX) {
        *toolong = true;
        return NULL;
    }
    line = xmalloc(len + 1);
    evbuffer_remove(in, line, len);
    evbuffer_drain(in, eol_len);
    line[len] = '\0';
    *hasnul = memchr(line, '\0', len) != NULL;
    return line;
}

/* turn_session_step - process one line in the current state. */
static int turn_session_step(struct turn_session *s, char *line)
{
    if (s->state == TURN_S_AUTH_IN_PROGRESS)
        return turn_auth_response(s, line);
    return turn_dispatch(s, line);
}

/* turn_session_drive - read and process lines while the state allows it. */
static void turn_session_drive(struct turn_session *s)
{
    for (unsigned i = 0; i < 10000; i++) {
        struct evbuffer *in;
        bool toolong, hasnul;
        char *line;
        int r;

        if (s->suspended || s->bev == NULL ||
            (s->state != TURN_S_INITIAL && s->state != TURN_S_AUTH_IN_PROGRESS &&
             s->state != TURN_S_AUTHENTICATED))
            return;
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > TURN_OUTPUT_MAX) {
            s->out_blocked = true; /* a client that does not read its replies */
            bufferevent_disable(s->bev, EV_READ);
            return;
        }
        in = bufferevent_get_input(s->bev);
        line = turn_read_line(in, &toolong, &hasnul);
        if (line == NULL) {
            if (toolong) {
                log_warn("line too long from %s", s->peer);
                turn_session_close(s, "500 5.5.6 Error: line too long");
            }
            return;
        }
        if (hasnul) {
            free(line);
            if (s->state == TURN_S_AUTH_IN_PROGRESS)
                turn_auth_reset(s);
            turn_reply(s, "500 5.5.2 Error: NUL byte in command");
            if (turn_count_error(s) == TURN_NEXT_GONE)
                return;
            continue;
        }
        r = turn_session_step(s, line);
        free(line);
        if (r != TURN_NEXT_CONT)
            return;
    }
}

/* turn_session_read_cb - input arrived. */
static void turn_session_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    turn_session_drive(arg);
}

/* turn_session_write_cb - output drained: finish STARTTLS, reversal or close. */
static void turn_session_write_cb(struct bufferevent *bev, void *arg)
{
    struct turn_session *s = arg;

    (void)bev;
    if (s->state == TURN_S_CLOSING)
        turn_session_free(s);
    else if (s->out_blocked) {
        s->out_blocked = false;
        turn_resume(s);
    } else if (s->tls_pending)
        turn_starttls_wrap(s);
    else if (s->state == TURN_S_REVERSING)
        turn_atrn_flushed(s);
}

/* turn_session_event_cb - EOF, errors and idle timeouts. */
static void turn_session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct turn_session *s = arg;

    (void)bev;
    if ((what & BEV_EVENT_TIMEOUT) && s->state != TURN_S_CLOSING) {
        log_info("timeout from %s state=%s", s->peer, turn_state_name(s->state));
        turn_session_close(s, "421 4.4.2 %s Error: timeout exceeded", s->site->hostname);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (s->state != TURN_S_CLOSING)
            log_info("lost connection from %s state=%s", s->peer, turn_state_name(s->state));
        turn_session_free(s);
    }
}

/*
 * turn_sockaddr_text - "ip" and "port" of a socket address.  The listener's
 * per-address connection count uses the same text, so the count taken at
 * accept is the one released when the session ends.
 */
void turn_sockaddr_text(const struct sockaddr *sa, char *ip, size_t iplen, int *port)
{
    *port = 0;
    snprintf(ip, iplen, "unknown");
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(in6->sin6_port);
    }
}

/* turn_is_loopback - 127.0.0.0/8 or ::1. */
static bool turn_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

/* turn_session_addrs - fill the address texts used by logs and libsasl2. */
static void turn_session_addrs(struct turn_session *s, int fd, const struct sockaddr *sa)
{
    struct sockaddr_storage ls;
    socklen_t lslen = sizeof(ls);
    char lip[64];
    int port, lport = 0;

    turn_sockaddr_text(sa, s->ip, sizeof(s->ip), &port);
    snprintf(s->peer, sizeof(s->peer), "[%s]:%d", s->ip, port);
    snprintf(s->sasl_remote, sizeof(s->sasl_remote), "%s;%d", s->ip, port);
    snprintf(lip, sizeof(lip), "unknown");
    if (getsockname(fd, (struct sockaddr *)&ls, &lslen) == 0)
        turn_sockaddr_text((struct sockaddr *)&ls, lip, sizeof(lip), &lport);
    snprintf(s->sasl_local, sizeof(s->sasl_local), "%s;%d", lip, lport);
    s->loopback = turn_is_loopback(sa);
}

/* turn_session_start - new connection: greeting and first read. */
void turn_session_start(struct turn_server *srv, int fd, const struct sockaddr *sa, int salen,
                        const char *site)
{
    struct turn_session *s = xcalloc(1, sizeof(*s));
    struct timeval tv;

    (void)salen;
    s->srv = srv;
    s->gen = turn_gen_ref(srv->gen);
    s->cf = &s->gen->cf;
    s->site_idx = turn_site_index(s->cf, site);
    if (s->site_idx < 0)
        s->site_idx = 0;
    s->site = &s->cf->sites[s->site_idx];
    turn_session_addrs(s, fd, sa);
    s->next = srv->sessions;
    if (srv->sessions != NULL)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    metrics_session_open(METRIC_PROTO_ODMR);
    s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL) {
        close(fd);
        turn_session_free(s);
        return;
    }
    tv.tv_sec = s->cf->smtp_timeout > 0 ? s->cf->smtp_timeout : 300;
    tv.tv_usec = 0;
    bufferevent_set_timeouts(s->bev, &tv, &tv);
    bufferevent_setcb(s->bev, turn_session_read_cb, turn_session_write_cb, turn_session_event_cb,
                      s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    log_info("connect from %s site=%s", s->peer, s->site->name);
    turn_reply(s, "220 %s ESMTP holdmx ODMR", s->site->hostname);
}

/* turn_session_abort - shutdown: stop the reversed run (mail stays held) or hang up. */
void turn_session_abort(struct turn_session *s, const char *why)
{
    if (s->dlv != NULL) {
        dlv_abort(s->dlv, why);
        return;
    }
    if (s->bev != NULL && !s->tls_on) {
        static const char msg[] = "421 4.3.2 Service shutting down\r\n";

        send(bufferevent_getfd(s->bev), msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    turn_session_free(s);
}

/* turn_domains_text - "a.test,b.test" of the session's ATRN domains. */
const char *turn_domains_text(struct turn_session *s, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < s->ndomains && used + 1 < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? "," : "", s->domains[i]);

        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}
