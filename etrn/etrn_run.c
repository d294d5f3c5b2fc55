/*
 * etrn_run.c - one domain's queue run: resolve, claim, connect, deliver.
 *
 * States (etrn_run_enter_state is the only writer):
 *   RESOLVING  mx_resolve() of the route or MX (never blocks the loop)
 *   DELIVERING a claim of up to ETRN_CLAIM_BATCH messages (store_claim,
 *              leased to this process) is split over up to
 *              delivery_concurrency workers; each worker tries
 *              the targets in order (connection refused or timed out ->
 *              next target) and hands the connected socket to the dlv
 *              engine with its share of the claim
 *              When every worker finished, a full batch with nothing
 *              deferred starts another round (new claim, new connections);
 *              a deferral ends the run so a failing customer cannot loop.
 *   DONE       the last round finished; the run is logged and freed
 * A worker that runs out of targets defers its recipients ("4.4.1 ...");
 * a null MX fails them with 556 5.1.10; "we are the best MX", NXDOMAIN
 * and DNS trouble claim nothing: the mail simply stays held (hold-queue
 * domains bounce only when their hold time expires).
 * Ownership: the engine's run list owns runs; a run owns its mx query,
 * its workers and their claim shares until dlv_start_claim takes them.
 */
#include "etrn_int.h"
#include "log.h"
#include "xalloc.h"

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum etrn_run_state { ETRN_RUN_RESOLVING, ETRN_RUN_DELIVERING, ETRN_RUN_DONE };

static const char *const etrn_run_state_names[] = {"RESOLVING", "DELIVERING", "DONE"};

struct etrn_run;

/* etrn_worker - one connection's share of a run. */
struct etrn_worker {
    struct etrn_run *run;
    struct store_claim *claim; /* until handed to the dlv engine */
    size_t target;             /* index of the target being tried */
    struct bufferevent *bev;   /* while connecting */
    struct dlv_session *dlv;   /* while delivering */
    bool finished;
    char peer[DNS_NAME_MAX + 80];
};

struct etrn_run {
    struct etrn_engine *e;
    uint64_t id;
    struct store_domain dom;
    enum etrn_run_state state;
    struct mx_query *mxq;
    struct mx_target *targets;
    size_t ntargets;
    struct etrn_worker *workers;
    size_t nworkers;
    size_t nfinished;
    bool aborting;
    bool starting; /* workers being started: do not free on a synchronous finish */
    size_t delivered, deferred, failed;
    bool round_full;        /* the last claim hit ETRN_CLAIM_BATCH */
    size_t deferred_before; /* r->deferred when the round started */
    unsigned rounds;
    int64_t started;
    struct etrn_run *next;
};

static void etrn_worker_try(struct etrn_worker *w);
static void etrn_run_deliver(struct etrn_run *r, int outcome);

/* etrn_run_enter_state - the only writer of run->state. */
static void etrn_run_enter_state(struct etrn_run *r, enum etrn_run_state st)
{
    log_debug("etrn run %s: %s -> %s", r->dom.name, etrn_run_state_names[r->state],
              etrn_run_state_names[st]);
    r->state = st;
}

/* etrn_run_active - a run for domain is in progress. */
bool etrn_run_active(const struct etrn_engine *e, const char *domain)
{
    for (const struct etrn_run *r = e->runs; r; r = r->next)
        if (strcmp(r->dom.name, domain) == 0)
            return true;
    return false;
}

/* etrn_run_free - unlink and free a finished run. */
static void etrn_run_free(struct etrn_run *r)
{
    struct etrn_run **pp = &r->e->runs;

    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = r->next;
        r->e->nruns--;
    }
    if (r->mxq)
        mx_cancel(r->mxq);
    for (size_t i = 0; i < r->nworkers; i++) {
        if (r->workers[i].bev)
            bufferevent_free(r->workers[i].bev);
        store_claim_free(r->workers[i].claim);
    }
    free(r->workers);
    free(r->targets);
    free(r);
}

/* etrn_run_finish - log the run's totals and free it (unless an abort is walking it). */
static void etrn_run_finish(struct etrn_run *r)
{
    etrn_run_enter_state(r, ETRN_RUN_DONE);
    log_info("etrn: run for %s finished: delivered=%zu, deferred=%zu, failed=%zu, rounds=%u, "
             "time=%llds",
             r->dom.name, r->delivered, r->deferred, r->failed, r->rounds,
             (long long)(etrn_now() - r->started));
    if (!r->aborting && !r->starting)
        etrn_run_free(r);
}

/* etrn_settle_claim - one outcome for every recipient of claim, one transaction per message. */
static void etrn_settle_claim(struct etrn_run *r, struct store_claim *c, int kind, const char *why)
{
    static const char *const status[] = {"sent", "deferred", "bounced"};

    for (size_t i = 0; c && i < c->nmsgs; i++) {
        struct store_claim_msg *m = &c->msgs[i];
        struct store_outcome *o = xcalloc(m->nrcpts ? m->nrcpts : 1, sizeof(*o));
        int *st = xcalloc(m->nrcpts ? m->nrcpts : 1, sizeof(*st));
        char qid[STORE_ID_LEN];
        int rc;

        store_id_format(m->info.id, qid);
        for (size_t j = 0; j < m->nrcpts; j++) {
            char addr[LOG_PEER_MAX + 1];
            o[j].msgid = m->info.id;
            o[j].idx = m->rcpts[j].idx;
            o[j].kind = kind;
            o[j].reply = why;
            log_info("%s: to=<%s>, relay=none, delay=%lld, status=%s (%s)", qid,
                     log_printable(addr, sizeof(addr), m->rcpts[j].addr, strlen(m->rcpts[j].addr)),
                     (long long)(etrn_now() - m->info.arrival), status[kind], why);
        }
        rc = store_outcome_apply(r->e->st, &r->e->owner, o, m->nrcpts, st);
        if (rc != STORE_OK)
            log_error("%s: recording outcomes: %s", qid, store_strerror(rc));
        else
            dlv_claim_count(o, st, m->nrcpts);
        if (kind == STORE_OUT_FAILED)
            r->failed += m->nrcpts;
        else
            r->deferred += m->nrcpts;
        free(st);
        free(o);
    }
}

/* etrn_run_next_round - the round is over: claim the next batch, or end the run. */
static void etrn_run_next_round(struct etrn_run *r)
{
    bool more = r->round_full && r->deferred == r->deferred_before && !r->aborting &&
                !r->starting && !r->e->shutting_down;

    if (!more) {
        etrn_run_finish(r);
        return;
    }
    for (size_t i = 0; i < r->nworkers; i++)
        store_claim_free(r->workers[i].claim); /* all NULL: every worker finished */
    free(r->workers);
    r->workers = NULL;
    r->nworkers = r->nfinished = 0;
    etrn_run_deliver(r, MX_OK);
}

/* etrn_worker_finished - one worker is done; the last one ends the round. */
static void etrn_worker_finished(struct etrn_worker *w)
{
    struct etrn_run *r = w->run;

    w->finished = true;
    if (++r->nfinished == r->nworkers)
        etrn_run_next_round(r);
}

/* etrn_worker_done - the dlv engine finished this worker's share. */
static void etrn_worker_done(struct dlv_session *s, const struct dlv_result *res, void *arg)
{
    struct etrn_worker *w = arg;
    struct etrn_run *r = w->run;

    (void)s;
    w->dlv = NULL;
    r->delivered += res->delivered;
    r->deferred += res->deferred;
    r->failed += res->failed;
    if (!res->session_ok && res->reason[0])
        log_info("etrn: %s via %s: %s", r->dom.name, w->peer, res->reason);
    etrn_worker_finished(w);
}

/* etrn_worker_event - the connection attempt finished. */
static void etrn_worker_event(struct bufferevent *bev, short what, void *arg)
{
    struct etrn_worker *w = arg;
    struct etrn_run *r = w->run;
    struct dlv_opts o;

    if (!(what & BEV_EVENT_CONNECTED)) {
        log_info("etrn: %s: connect to %s failed%s", r->dom.name, w->peer,
                 (what & BEV_EVENT_TIMEOUT) ? " (timeout)" : "");
        bufferevent_free(bev);
        w->bev = NULL;
        w->target++;
        etrn_worker_try(w);
        return;
    }
    w->bev = NULL;
    dlv_opts_default(&o);
    o.helo_name = etrn_hostname(r->e, r->dom.site);
    o.peer_name = w->peer;
    o.starttls = r->e->tls_ctx != NULL;
    o.tls_ctx = r->e->tls_ctx;
    {
        struct store_claim *c = w->claim;
        w->claim = NULL;
        w->dlv =
            dlv_start_claim(r->e->base, bev, r->e->st, &r->e->owner, c, &o, etrn_worker_done, w);
    }
}

/* etrn_worker_try - connect to the current target, or give up when none is left. */
static void etrn_worker_try(struct etrn_worker *w)
{
    struct etrn_run *r = w->run;

    while (w->target < r->ntargets) {
        const struct mx_target *t = &r->targets[w->target];
        snprintf(w->peer, sizeof(w->peer), "%s[%s]:%u", t->host, t->addr.text, t->port);
        w->bev = etrn_connect(r->e, t);
        if (w->bev != NULL) {
            bufferevent_setcb(w->bev, NULL, NULL, etrn_worker_event, w);
            return;
        }
        log_info("etrn: %s: cannot connect to %s", r->dom.name, w->peer);
        w->target++;
    }
    etrn_settle_claim(r, w->claim, STORE_OUT_DEFERRED,
                      "4.4.1 no destination host accepted the connection");
    store_claim_free(w->claim);
    w->claim = NULL;
    etrn_worker_finished(w);
}

/* etrn_split - divide claim c into k shares (whole messages, round robin); c is consumed. */
static void etrn_split(struct store_claim *c, struct store_claim **shares, size_t k)
{
    for (size_t s = 0; s < k; s++) {
        shares[s] = xcalloc(1, sizeof(**shares));
        shares[s]->msgs = xcalloc(c->nmsgs / k + 1, sizeof(*c->msgs));
    }
    for (size_t i = 0; i < c->nmsgs; i++) {
        struct store_claim *sh = shares[i % k];
        sh->msgs[sh->nmsgs++] = c->msgs[i];
        sh->nrcpts += c->msgs[i].nrcpts;
    }
    c->nmsgs = 0; /* the rcpts arrays now belong to the shares */
    store_claim_free(c);
}

/* etrn_run_deliver - claim the domain's held recipients and start the workers. */
static void etrn_run_deliver(struct etrn_run *r, int outcome)
{
    const char *dom = r->dom.name;
    struct store_claim *c = NULL, **shares;
    size_t k, nmsgs;
    int rc;

    rc = store_claim(r->e->st, &dom, 1, false, &r->e->owner, ETRN_LEASE_TTL, ETRN_CLAIM_BATCH, &c);
    if (rc != STORE_OK || c == NULL || c->nmsgs == 0) {
        if (rc != STORE_OK)
            log_error("etrn: claiming mail of %s: %s", dom, store_strerror(rc));
        store_claim_free(c);
        etrn_run_finish(r);
        return;
    }
    if (outcome == MX_NULLMX) {
        etrn_settle_claim(r, c, STORE_OUT_FAILED, "556 5.1.10 recipient address has null MX");
        store_claim_free(c);
        etrn_run_finish(r);
        return;
    }
    k = r->e->cf->delivery_concurrency > 0 ? (size_t)r->e->cf->delivery_concurrency : 1;
    if (k > c->nmsgs)
        k = c->nmsgs;
    nmsgs = c->nmsgs;
    r->round_full = nmsgs >= ETRN_CLAIM_BATCH;
    r->deferred_before = r->deferred;
    r->rounds++;
    shares = xcalloc(k, sizeof(*shares));
    etrn_split(c, shares, k);
    r->workers = xcalloc(k, sizeof(*r->workers));
    r->nworkers = k;
    for (size_t i = 0; i < k; i++) {
        r->workers[i].run = r;
        r->workers[i].claim = shares[i];
    }
    free(shares);
    etrn_run_enter_state(r, ETRN_RUN_DELIVERING);
    log_info("etrn: run for %s: %zu message(s) over %zu connection(s), first target %s[%s]:%u", dom,
             nmsgs, k, r->targets[0].host, r->targets[0].addr.text, r->targets[0].port);
    r->starting = true;
    for (size_t i = 0; i < k; i++)
        etrn_worker_try(&r->workers[i]);
    r->starting = false;
    if (r->state == ETRN_RUN_DONE)
        etrn_run_free(r);
}

/* etrn_run_resolved - the destination is known (or not). */
static void etrn_run_resolved(void *arg, int outcome, const struct mx_target *t, size_t n,
                              const char *why)
{
    struct etrn_run *r = arg;

    r->mxq = NULL;
    if (outcome == MX_OK && n > 0) {
        r->targets = xcalloc(n, sizeof(*t));
        memcpy(r->targets, t, n * sizeof(*t));
        r->ntargets = n;
        etrn_run_deliver(r, outcome);
        return;
    }
    if (outcome == MX_NULLMX) {
        etrn_run_deliver(r, outcome);
        return;
    }
    if (outcome == MX_HOLD)
        log_info("etrn: %s: we are its best MX host; mail stays held (set a route for ETRN)",
                 r->dom.name);
    else
        log_warn("etrn: %s: %s; mail stays held", r->dom.name,
                 why ? why : mx_outcome_name(outcome));
    etrn_run_finish(r);
}

/* etrn_run_start - begin an asynchronous run for one held domain. */
void etrn_run_start(struct etrn_engine *e, const struct store_domain *d)
{
    struct etrn_run *r = xcalloc(1, sizeof(*r));
    struct dns_resolver *dns = etrn_dns(e);
    struct mx_self self;

    r->e = e;
    r->id = e->next_id++;
    r->dom = *d;
    r->started = etrn_now();
    r->state = ETRN_RUN_RESOLVING;
    r->next = e->runs;
    e->runs = r;
    e->nruns++;
    if (dns == NULL) {
        log_warn("etrn: %s: no resolver; mail stays held", d->name);
        etrn_run_finish(r);
        return;
    }
    etrn_self(e, &self);
    r->mxq = mx_resolve(dns, d->name, d->route, e->cf->delivery_port ? e->cf->delivery_port : 25,
                        &self, etrn_run_resolved, r);
}

/* etrn_run_abort - stop one run now: sessions aborted (deferred), claims released. */
static void etrn_run_abort(struct etrn_run *r)
{
    r->aborting = true;
    if (r->mxq) {
        mx_cancel(r->mxq);
        r->mxq = NULL;
    }
    for (size_t i = 0; i < r->nworkers; i++) {
        struct etrn_worker *w = &r->workers[i];
        if (w->dlv)
            dlv_abort(w->dlv, "4.3.2 mail system shutting down");
        if (w->bev) {
            bufferevent_free(w->bev);
            w->bev = NULL;
        }
    }
    etrn_run_free(r); /* unstarted claim shares are freed; their leases are released below */
}

/* etrn_run_abort_all - abort every run (shutdown); outcomes deferred, leases released. */
void etrn_run_abort_all(struct etrn_engine *e)
{
    bool any = e->runs != NULL;
    int rc;

    while (e->runs)
        etrn_run_abort(e->runs);
    if (any && (rc = store_lease_release(e->st, &e->owner)) != STORE_OK)
        log_warn("etrn: releasing leases: %s", store_strerror(rc));
}
