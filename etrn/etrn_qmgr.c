/*
 * etrn_qmgr.c - the queue manager step: lease recovery, hold expiry,
 * delay warnings and DSN delivery to bounce_relay.
 *
 * etrn_qmgr_tick() recovers leases of dead or late owners, lets the store
 * expire held mail (failure notes; expired recipients count as bounced
 * in the metrics) and queue delay warnings (delay notes), then takes the
 * oldest pending notes, builds each DSN (dsn.c) and delivers it with dlv_start_mem() to
 * bounce_relay using the null sender.  A note is marked done only when the relay accepted the DSN
 * (or refused it permanently, which is logged); otherwise it stays for a
 * later tick.  A note never has two deliveries in flight at once, and at
 * most ETRN_DSN_MAX_INFLIGHT DSNs are in flight.
 * Ownership: the engine's list owns each struct etrn_dsn, which owns the
 * DSN text, its mx query and its connection until the dlv engine has it.
 */
#include "dsn.h"
#include "etrn_int.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* etrn_dsn - one DSN on its way to bounce_relay. */
struct etrn_dsn {
    struct etrn_engine *e;
    store_msgid_t msgid;
    int kind;
    char qid[STORE_ID_LEN];
    char sender[STORE_ADDR_MAX];
    char *text;
    size_t len;
    struct mx_query *mxq;
    struct mx_target *targets;
    size_t ntargets;
    size_t target;
    struct bufferevent *bev;
    struct dlv_session *dlv;
    char peer[DNS_NAME_MAX + 80];
    struct etrn_dsn *next;
};

static void etrn_dsn_try(struct etrn_dsn *d);

/* etrn_dsn_free - unlink and free one DSN delivery. */
static void etrn_dsn_free(struct etrn_dsn *d)
{
    struct etrn_dsn **pp = &d->e->dsns;

    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = d->next;
        d->e->ndsns--;
    }
    if (d->mxq)
        mx_cancel(d->mxq);
    if (d->bev)
        bufferevent_free(d->bev);
    free(d->targets);
    free(d->text);
    free(d);
}

/* etrn_dsn_inflight - a delivery for (msgid, kind) is running. */
static bool etrn_dsn_inflight(const struct etrn_engine *e, store_msgid_t msgid, int kind)
{
    for (const struct etrn_dsn *d = e->dsns; d; d = d->next)
        if (d->msgid == msgid && d->kind == kind)
            return true;
    return false;
}

/* etrn_dsn_note_done - the note is settled: tell the store. */
static void etrn_dsn_note_done(struct etrn_engine *e, store_msgid_t msgid, int kind)
{
    int rc = store_note_done(e->st, msgid, kind);

    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        log_error("qmgr: marking notification done: %s", store_strerror(rc));
}

/* etrn_dsn_done - the relay answered (or the session failed). */
static void etrn_dsn_done(struct dlv_session *s, const struct dlv_result *r, void *arg)
{
    struct etrn_dsn *d = arg;
    const char *what = d->kind == STORE_NOTE_FAILED ? "non-delivery" : "delay";
    char sender[LOG_PEER_MAX + 1];

    (void)s;
    d->dlv = NULL;
    log_printable(sender, sizeof(sender), d->sender, strlen(d->sender));
    if (r->delivered == 1) {
        log_info("%s: sender %s notification to <%s> handed to %s", d->qid, what, sender, d->peer);
        etrn_dsn_note_done(d->e, d->msgid, d->kind);
    } else if (r->failed == 1) {
        log_error("%s: bounce relay %s refused the %s notification to <%s>; dropped", d->qid,
                  d->peer, what, sender);
        etrn_dsn_note_done(d->e, d->msgid, d->kind);
    } else {
        log_warn("%s: %s notification to <%s> not delivered (%s); will retry", d->qid, what, sender,
                 r->reason[0] ? r->reason : "deferred");
    }
    etrn_dsn_free(d);
}

/* etrn_dsn_event - connection to the relay established or failed. */
static void etrn_dsn_event(struct bufferevent *bev, short what, void *arg)
{
    struct etrn_dsn *d = arg;
    const char *rcpts[1];
    struct dlv_mem_msg m;
    struct dlv_opts o;

    if (!(what & BEV_EVENT_CONNECTED)) {
        log_warn("qmgr: connect to bounce relay %s failed", d->peer);
        bufferevent_free(bev);
        d->bev = NULL;
        d->target++;
        etrn_dsn_try(d);
        return;
    }
    d->bev = NULL;
    rcpts[0] = d->sender;
    m.sender = "";
    m.rcpts = rcpts;
    m.nrcpts = 1;
    m.body = d->text;
    m.body_len = d->len;
    dlv_opts_default(&o);
    o.helo_name = etrn_hostname(d->e, NULL);
    o.peer_name = d->peer;
    o.starttls = false; /* the relay is the local MTA */
    d->dlv = dlv_start_mem(d->e->base, bev, &m, &o, etrn_dsn_done, d);
}

/* etrn_dsn_try - connect to the current relay target; give up (retry next tick) when none left. */
static void etrn_dsn_try(struct etrn_dsn *d)
{
    while (d->target < d->ntargets) {
        const struct mx_target *t = &d->targets[d->target];
        snprintf(d->peer, sizeof(d->peer), "%s[%s]:%u", t->host, t->addr.text, t->port);
        d->bev = etrn_connect(d->e, t);
        if (d->bev) {
            bufferevent_setcb(d->bev, NULL, NULL, etrn_dsn_event, d);
            return;
        }
        d->target++;
    }
    log_warn("%s: bounce relay unreachable; notification kept for the next run", d->qid);
    etrn_dsn_free(d);
}

/* etrn_dsn_resolved - the relay's addresses. */
static void etrn_dsn_resolved(void *arg, int outcome, const struct mx_target *t, size_t n,
                              const char *why)
{
    struct etrn_dsn *d = arg;

    d->mxq = NULL;
    if (outcome != MX_OK || n == 0) {
        log_warn("%s: bounce relay: %s; notification kept", d->qid, why ? why : "no address");
        etrn_dsn_free(d);
        return;
    }
    d->targets = xcalloc(n, sizeof(*t));
    memcpy(d->targets, t, n * sizeof(*t));
    d->ntargets = n;
    etrn_dsn_try(d);
}

/* etrn_relay_route - bounce_relay as a route string for mx_resolve. */
static void etrn_relay_route(const struct conf_addr *a, char *out, size_t outsz)
{
    unsigned char buf[16];
    bool literal = inet_pton(AF_INET, a->host, buf) == 1 || inet_pton(AF_INET6, a->host, buf) == 1;

    if (literal)
        snprintf(out, outsz, "[%.*s]:%u", (int)(outsz > 16 ? outsz - 16 : 0), a->host, a->port);
    else
        snprintf(out, outsz, "%.*s:%u", (int)(outsz > 16 ? outsz - 16 : 0), a->host, a->port);
}

/* etrn_hold_until - when the note's mail expires: arrival + the domain's hold time (or the
 * default). */
static int64_t etrn_hold_until(struct etrn_engine *e, const struct store_note *n)
{
    struct store_domain d;
    int64_t hold = e->cf->hold_time;

    if (n->nrcpts > 0 && store_domain_get(e->st, n->rcpts[0].domain, &d) == STORE_OK &&
        d.hold_time >= 0)
        hold = d.hold_time;
    return n->info.arrival + hold;
}

/* etrn_dsn_start - build and send the DSN of one note. */
static void etrn_dsn_start(struct etrn_engine *e, const struct store_note *n, int64_t now)
{
    struct etrn_dsn *d;
    struct dns_resolver *dns;
    char route[CONF_HOST_MAX + 16], qid[STORE_ID_LEN];
    char *text = NULL;
    size_t len = 0;
    int64_t until = etrn_hold_until(e, n);
    int rc;

    store_id_format(n->msgid, qid);
    rc = dsn_build_note(e->st, n, etrn_hostname(e, n->info.site), now, until, &text, &len);
    if (rc == DSN_NONE) {
        log_info("%s: no notification needed (null sender or NOTIFY)", qid);
        etrn_dsn_note_done(e, n->msgid, n->kind);
        return;
    }
    if (rc != DSN_BUILT) {
        log_error("%s: cannot build the notification (body unreadable); kept", qid);
        return;
    }
    dns = etrn_dns(e);
    if (dns == NULL) {
        free(text);
        return;
    }
    d = xcalloc(1, sizeof(*d));
    d->e = e;
    d->msgid = n->msgid;
    d->kind = n->kind;
    snprintf(d->qid, sizeof(d->qid), "%s", qid);
    snprintf(d->sender, sizeof(d->sender), "%s", n->info.sender);
    d->text = text;
    d->len = len;
    d->next = e->dsns;
    e->dsns = d;
    e->ndsns++;
    etrn_relay_route(&e->cf->bounce_relay, route, sizeof(route));
    d->mxq = mx_resolve(dns, "bounce_relay", route, e->cf->bounce_relay.port, NULL,
                        etrn_dsn_resolved, d);
}

/* etrn_qmgr_notes - start DSNs for pending notes not already in flight. */
static void etrn_qmgr_notes(struct etrn_engine *e, int64_t now)
{
    struct store_note *notes = NULL;
    size_t n = 0;
    int rc;

    if (e->cf->bounce_relay.host[0] == '\0' || e->cf->bounce_relay.port == 0)
        return;
    if (e->ndsns >= ETRN_DSN_MAX_INFLIGHT)
        return;
    rc = store_note_next(e->st, ETRN_NOTES_PER_TICK, &notes, &n);
    if (rc != STORE_OK) {
        log_error("qmgr: reading notifications: %s", store_strerror(rc));
        return;
    }
    for (size_t i = 0; i < n && e->ndsns < ETRN_DSN_MAX_INFLIGHT; i++)
        if (!etrn_dsn_inflight(e, notes[i].msgid, notes[i].kind))
            etrn_dsn_start(e, &notes[i], now);
    store_note_free(notes, n);
}

/* etrn_qmgr_tick - one queue manager pass (call every few seconds). */
void etrn_qmgr_tick(struct etrn_engine *e)
{
    int64_t now = etrn_now();
    size_t recovered = 0, expired = 0, warned = 0;
    int rc;

    if (e->shutting_down)
        return;
    rc = store_lease_recover(e->st, now, &recovered);
    if (rc != STORE_OK)
        log_error("qmgr: lease recovery: %s", store_strerror(rc));
    else if (recovered)
        log_info("qmgr: %zu recipients back to held from dead or expired leases", recovered);
    rc = store_expire(e->st, now, e->cf->hold_time, e->cf->delay_warning, &expired, &warned);
    if (rc != STORE_OK)
        log_error("qmgr: expiry: %s", store_strerror(rc));
    else
        metrics_add(METRIC_BOUNCED_RCPTS, expired); /* "failed (5xx, expiry, operator)" */
    if (rc == STORE_OK && (expired || warned))
        log_info("qmgr: %zu recipients expired, %zu delay warnings queued", expired, warned);
    etrn_qmgr_notes(e, now);
}

/* etrn_dsn_abort_all - stop DSN deliveries in flight (notes stay queued). */
void etrn_dsn_abort_all(struct etrn_engine *e)
{
    for (size_t guard = 0; e->dsns && guard < 1000; guard++) {
        struct etrn_dsn *d = e->dsns;
        if (d->dlv)
            dlv_abort(d->dlv, "4.3.2 mail system shutting down"); /* frees d */
        else
            etrn_dsn_free(d);
    }
}
