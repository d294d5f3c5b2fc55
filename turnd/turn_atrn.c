/*
 * turn_atrn.c - ATRN (RFC 2645) and authenticated TURN: the reversal.
 *
 * ATRN [d1,d2,...]: 530 before AUTH (dispatcher gate); 501 on syntax (a
 * domain needs two labels of letters, digits and inner hyphens; blanks
 * after commas and any case are accepted); no argument means every domain
 * of the account; 450 4.7.1 (logged) if ANY requested domain is not the
 * account's; 453 4.3.0 when nothing is held for the set (no reversal, the
 * session stays authenticated); 451 4.3.0 when mail exists but another run
 * holds its leases; otherwise the recipients are claimed with a lease
 * (store_claim, owner = this process), "250 OK now reversing the
 * connection" is written as the single last server line, and once it has
 * been flushed the bufferevent - TLS filter included - passes to the dlv
 * engine, which waits for the customer's 220 and delivers.
 *
 * TURN: 502 without AUTH (RFC 821 refusal); after AUTH like a bare ATRN,
 * except that TURN has no "no mail" reply: with nothing to deliver turnd
 * still answers 250 and runs the minimal exchange of turn_empty.c.
 *
 * Leases: the claim's leases are renewed by the server's renewal timer;
 * when the engine is done, every outcome has been written, and what was not
 * acknowledged has been deferred (stays held).
 *
 * Metrics: every ATRN/TURN reply with a code of the ATRN family is counted
 * with metrics_atrn_reply (530 in the dispatcher); recipients returned by
 * turn_atrn_unclaim count as deferred.
 */
#include "turn_session.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlv.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#define TURN_ATRN_DOMAINS_MAX 1000

/* turn_label_ok - one label: letters/digits, inner hyphens, 1..63 chars. */
static bool turn_label_ok(const char *p, size_t n)
{
    if (n == 0 || n > 63 || !isalnum((unsigned char)p[0]) || !isalnum((unsigned char)p[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '-')
            return false;
    return true;
}

/* turn_domain_valid - RFC 2645 ABNF domain: at least two valid labels. */
bool turn_domain_valid(const char *d)
{
    size_t labels = 0, len = strlen(d);

    if (len == 0 || len >= STORE_DOMAIN_MAX)
        return false;
    while (*d != '\0') {
        size_t n = strcspn(d, ".");

        if (!turn_label_ok(d, n))
            return false;
        labels++;
        d += n;
        if (*d == '.') {
            d++;
            if (*d == '\0')
                return false;
        }
    }
    return labels >= 2;
}

/*
 * turn_atrn_unclaim - a claim that never reached the engine (the customer
 * left between our 250 and its flush): defer exactly its recipients, so
 * they are held again at once.  store_lease_release() is not used because
 * it would also free the leases of this process's other reversed sessions.
 */
static void turn_atrn_unclaim(struct turn_server *srv, const struct store_claim *c)
{
    struct store_outcome *o = xcalloc(c->nrcpts + 1, sizeof(*o));
    int *status = xcalloc(c->nrcpts + 1, sizeof(*status));
    size_t n = 0;
    int r;

    for (size_t i = 0; i < c->nmsgs; i++)
        for (size_t j = 0; j < c->msgs[i].nrcpts && n < c->nrcpts; j++) {
            o[n].msgid = c->msgs[i].rcpts[j].msgid;
            o[n].idx = c->msgs[i].rcpts[j].idx;
            o[n].kind = STORE_OUT_DEFERRED;
            o[n].reply = "customer disconnected before the reversal";
            n++;
        }
    r = n > 0 ? store_outcome_apply(srv->st, &srv->owner, o, n, status) : STORE_OK;
    if (r != STORE_OK)
        log_error("returning %zu unclaimed recipient(s): %s", n, store_strerror(r));
    for (size_t i = 0; r == STORE_OK && i < n; i++)
        if (status[i] == STORE_OK)
            metrics_inc(METRIC_DEFERRED_RCPTS);
    free(status);
    free(o);
}

/* turn_atrn_release - free the domain list and any claim not handed over. */
void turn_atrn_release(struct turn_session *s)
{
    for (size_t i = 0; i < s->ndomains; i++)
        free(s->domains[i]);
    free(s->domains);
    s->domains = NULL;
    s->ndomains = 0;
    if (s->claim != NULL) {
        turn_atrn_unclaim(s->srv, s->claim);
        store_claim_free(s->claim);
        s->claim = NULL;
    }
}

/* turn_atrn_add - append d (lower-cased) unless present. */
static void turn_atrn_add(struct turn_session *s, const char *d, size_t n)
{
    char *copy = xstrndup(d, n);

    for (char *p = copy; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (size_t i = 0; i < s->ndomains; i++)
        if (strcmp(s->domains[i], copy) == 0) {
            free(copy);
            return;
        }
    s->domains = xrealloc(s->domains, (s->ndomains + 1) * sizeof(*s->domains));
    s->domains[s->ndomains++] = copy;
}

/* turn_atrn_parse - "d1,d2, d3" into s->domains; false on a syntax error. */
static bool turn_atrn_parse(struct turn_session *s, const char *arg)
{
    const char *p = arg;

    while (*p != '\0') {
        size_t n;
        char *one;
        bool ok;

        while (*p == ' ')
            p++;
        n = strcspn(p, ", ");
        one = xstrndup(p, n);
        ok = turn_domain_valid(one);
        free(one);
        if (!ok || s->ndomains >= TURN_ATRN_DOMAINS_MAX)
            return false;
        turn_atrn_add(s, p, n);
        p += n;
        while (*p == ' ')
            p++;
        if (*p == ',') {
            p++;
            if (*p == '\0')
                return false;
        } else if (*p != '\0') {
            return false;
        }
    }
    return s->ndomains > 0;
}

/* turn_atrn_account_domains - every domain of the account; false on a store error. */
static bool turn_atrn_account_domains(struct turn_session *s)
{
    struct store_account a;
    const char *p;

    memset(&a, 0, sizeof(a));
    if (store_account_get(s->srv->st, s->account, &a) != STORE_OK)
        return false;
    for (p = a.domains != NULL ? a.domains : ""; *p != '\0';) {
        size_t n = strcspn(p, ",");

        if (n > 0 && n < STORE_DOMAIN_MAX && s->ndomains < TURN_ATRN_DOMAINS_MAX)
            turn_atrn_add(s, p, n);
        p += n;
        if (*p == ',')
            p++;
    }
    store_account_release(&a);
    return true;
}

/* turn_atrn_unauthorized - the first requested domain the account may not collect. */
static const char *turn_atrn_unauthorized(struct turn_session *s)
{
    for (size_t i = 0; i < s->ndomains; i++)
        if (!store_account_may(s->srv->st, s->account, s->domains[i]))
            return s->domains[i];
    return NULL;
}

/* turn_atrn_pending - messages held for the set (0 when none, -1 on error). */
static int64_t turn_atrn_pending(struct turn_session *s)
{
    uint64_t total = 0;

    for (size_t i = 0; i < s->ndomains; i++) {
        struct store_counts c;
        int r = store_domain_counts(s->srv->st, s->domains[i], &c);

        if (r == STORE_NOTFOUND)
            continue;
        if (r != STORE_OK) {
            log_error("counts for %s: %s", s->domains[i], store_strerror(r));
            return -1;
        }
        total += c.messages;
    }
    return (int64_t)total;
}

/* turn_atrn_claim - lease the set's held recipients; STORE_* status. */
static int turn_atrn_claim(struct turn_session *s)
{
    int r = store_claim(s->srv->st, (const char *const *)s->domains, s->ndomains, false,
                        &s->srv->owner, TURN_LEASE_TTL, 0, &s->claim);

    if (r != STORE_OK) {
        log_error("claim for %s: %s", s->account, store_strerror(r));
        s->claim = NULL;
    }
    return r;
}

/* turn_atrn_refuse - reply without reversing; the session stays authenticated. */
static int turn_atrn_refuse(struct turn_session *s, const char *reply)
{
    turn_atrn_release(s);
    metrics_atrn_reply(atoi(reply));
    turn_reply(s, "%s", reply);
    return TURN_NEXT_CONT;
}

/* turn_atrn_reverse - 250 (single line) and wait for it to be flushed. */
static int turn_atrn_reverse(struct turn_session *s)
{
    char doms[512];

    log_info("%s user=%s domains=%s from %s: reversing, %zu message(s), %zu recipient(s)",
             s->is_turn ? "turn" : "atrn", s->account, turn_domains_text(s, doms, sizeof(doms)),
             s->peer, s->claim != NULL ? s->claim->nmsgs : 0,
             s->claim != NULL ? s->claim->nrcpts : 0);
    turn_enter_state(s, TURN_S_REVERSING);
    bufferevent_disable(s->bev, EV_READ); /* the customer's 220 waits for the engine */
    metrics_atrn_reply(250);
    turn_reply(s, "250 OK now reversing the connection");
    return TURN_NEXT_STOP;
}

/* turn_atrn_run - common part of ATRN and TURN once s->domains is known. */
static int turn_atrn_run(struct turn_session *s)
{
    const char *bad = turn_atrn_unauthorized(s);
    int64_t pending;

    if (bad != NULL) {
        log_warn("%s refused user=%s domain=%s from %s: not the account's domain",
                 s->is_turn ? "turn" : "atrn", s->account, bad, s->peer);
        return turn_atrn_refuse(s, "450 4.7.1 ATRN request refused");
    }
    pending = turn_atrn_pending(s);
    if (pending < 0)
        return turn_atrn_refuse(s, "451 4.3.0 Unable to process ATRN request now");
    if (pending == 0 && !s->is_turn) {
        log_info("atrn user=%s from %s: no mail", s->account, s->peer);
        return turn_atrn_refuse(s, "453 4.3.0 You have no mail");
    }
    if (pending > 0 && turn_atrn_claim(s) != STORE_OK)
        return turn_atrn_refuse(s, "451 4.3.0 Unable to process ATRN request now");
    if (s->claim != NULL && s->claim->nmsgs == 0) {
        store_claim_free(s->claim);
        s->claim = NULL;
        if (!s->is_turn) {
            log_info("atrn user=%s from %s: mail held by another run", s->account, s->peer);
            return turn_atrn_refuse(s, "451 4.3.0 Unable to process ATRN request now");
        }
    }
    return turn_atrn_reverse(s);
}

/* turn_atrn_cmd - the ATRN command (authenticated: checked by the dispatcher). */
int turn_atrn_cmd(struct turn_session *s, const char *arg)
{
    s->is_turn = false;
    turn_atrn_release(s);
    if (*arg == '\0') {
        if (!turn_atrn_account_domains(s))
            return turn_atrn_refuse(s, "451 4.3.0 Unable to process ATRN request now");
        if (s->ndomains == 0)
            return turn_atrn_refuse(s, "450 4.7.1 ATRN request refused: no domains");
    } else if (!turn_atrn_parse(s, arg)) {
        turn_atrn_release(s);
        metrics_atrn_reply(501);
        turn_reply(s, "501 5.5.4 Syntax: ATRN [domain[,domain...]]");
        return TURN_NEXT_CONT;
    }
    return turn_atrn_run(s);
}

/* turn_atrn_turn_cmd - TURN: 502 unless authenticated; then all the account's domains. */
int turn_atrn_turn_cmd(struct turn_session *s, const char *arg)
{
    if (s->account[0] == '\0') {
        log_info("turn refused (not authenticated) from %s", s->peer);
        turn_reply(s, "502 5.5.1 TURN not allowed");
        return TURN_NEXT_CONT;
    }
    if (*arg != '\0') {
        metrics_atrn_reply(501);
        turn_reply(s, "501 5.5.4 Syntax: TURN");
        return TURN_NEXT_CONT;
    }
    s->is_turn = true;
    turn_atrn_release(s);
    if (!turn_atrn_account_domains(s))
        return turn_atrn_refuse(s, "451 4.3.0 Unable to process TURN request now");
    return turn_atrn_run(s);
}

/* turn_atrn_done - the engine finished: log the counts, end the session. */
static void turn_atrn_done(struct dlv_session *d, const struct dlv_result *r, void *arg)
{
    struct turn_session *s = arg;
    char doms[512], reason[LOG_PEER_MAX + 1];

    (void)d;
    log_printable(reason, sizeof(reason), r->reason, strlen(r->reason));
    log_info("%s done user=%s domains=%s from %s: delivered=%zu deferred=%zu failed=%zu "
             "session=%s%s%s elapsed=%llds",
             s->is_turn ? "turn" : "atrn", s->account, turn_domains_text(s, doms, sizeof(doms)),
             s->peer, r->delivered, r->deferred, r->failed, r->session_ok ? "ok" : "failed",
             r->reason[0] ? " reason=" : "", r->reason[0] ? reason : "",
             (long long)((int64_t)time(NULL) - s->reversed_at));
    s->dlv = NULL;
    s->dlv_finished = true;
    if (!s->in_handoff)
        turn_session_free(s);
}

/* turn_atrn_flushed - our 250 left: hand bev and claim to the dlv engine. */
int turn_atrn_flushed(struct turn_session *s)
{
    struct bufferevent *bev = s->bev;
    struct store_claim *claim = s->claim;
    struct dlv_opts o;

    turn_enter_state(s, TURN_S_REVERSED);
    s->reversed_at = (int64_t)time(NULL);
    if (claim == NULL) {
        turn_empty_start(s);
        return TURN_NEXT_STOP;
    }
    dlv_opts_default(&o);
    o.helo_name = s->site->hostname;
    o.tls_active = s->tls_on;
    o.total_timeout = (int)(s->cf->atrn_total_timeout > 0 ? s->cf->atrn_total_timeout : 3600);
    o.peer_name = s->peer;
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_set_timeouts(bev, NULL, NULL);
    s->bev = NULL;
    s->claim = NULL;
    s->in_handoff = true;
    s->dlv = dlv_start_claim(bufferevent_get_base(bev), bev, s->srv->st, &s->srv->owner, claim, &o,
                             turn_atrn_done, s);
    s->in_handoff = false;
    if (s->dlv_finished || s->dlv == NULL) {
        s->dlv = NULL;
        turn_session_free(s);
        return TURN_NEXT_GONE;
    }
    return TURN_NEXT_STOP;
}
