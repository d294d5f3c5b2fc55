/*
 * dlv_claim.c - the store-claim message source of the SMTP client engine.
 *
 * dlv_start_claim() hands a struct store_claim (recipients leased by
 * owner) to the engine.  Bodies are read piecewise with store_body_read;
 * each message's outcomes are written in one store_outcome_apply call,
 * and the recipients the store accepted are counted in the process's
 * delivered / deferred / bounced metrics (this is the one place where both
 * ETRN runs and turnd's reversed sessions record delivery outcomes).
 * The claim is freed with store_claim_free when the session ends.
 */
#include "dlv.h"
#include "dlv_src.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* dlv_claim_src - the source context. */
struct dlv_claim_src {
    struct store *st;
    struct store_owner owner;
    struct store_claim *claim;
};

/* dlv_claim_nmsgs - messages in the claim. */
static size_t dlv_claim_nmsgs(void *ctx)
{
    struct dlv_claim_src *c = ctx;

    return c->claim->nmsgs;
}

/* dlv_claim_msg - envelope view of message i. */
static void dlv_claim_msg(void *ctx, size_t i, struct dlv_src_msg *out)
{
    struct dlv_claim_src *c = ctx;
    const struct store_claim_msg *m = &c->claim->msgs[i];

    memset(out, 0, sizeof(*out));
    store_id_format(m->info.id, out->qid);
    out->sender = m->info.sender;
    out->size = m->info.size;
    out->body_type = m->info.body_type;
    out->ret = m->info.ret;
    out->envid = m->info.envid;
    out->arrival = m->info.arrival;
    out->nrcpts = m->nrcpts;
}

/* dlv_claim_rcpt - claimed recipient j of message i. */
static void dlv_claim_rcpt(void *ctx, size_t i, size_t j, struct dlv_src_rcpt *out)
{
    struct dlv_claim_src *c = ctx;
    const struct store_rcpt_info *r = &c->claim->msgs[i].rcpts[j];

    out->addr = r->addr;
    out->notify = r->notify;
    out->orcpt = r->orcpt;
}

/* dlv_claim_read - body bytes from the store. */
static int dlv_claim_read(void *ctx, size_t i, uint64_t off, void *buf, size_t len, size_t *got)
{
    struct dlv_claim_src *c = ctx;
    int rc = store_body_read(c->st, c->claim->msgs[i].info.id, off, buf, len, got);

    if (rc != STORE_OK) {
        log_error("dlv: reading body of message %llu: %s",
                  (unsigned long long)c->claim->msgs[i].info.id, store_strerror(rc));
        return -1;
    }
    return 0;
}

/* dlv_claim_count - count the outcomes the store recorded (status STORE_OK) in the metrics. */
void dlv_claim_count(const struct store_outcome *o, const int *status, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (status[j] != STORE_OK)
            continue;
        if (o[j].kind == STORE_OUT_DELIVERED)
            metrics_inc(METRIC_DELIVERED_RCPTS);
        else if (o[j].kind == STORE_OUT_FAILED)
            metrics_inc(METRIC_BOUNCED_RCPTS);
        else
            metrics_inc(METRIC_DEFERRED_RCPTS);
    }
}

/* dlv_claim_apply - one transaction with every recipient's outcome of message i. */
static void dlv_claim_apply(void *ctx, size_t i, const int *kinds, const char *const *replies)
{
    struct dlv_claim_src *c = ctx;
    const struct store_claim_msg *m = &c->claim->msgs[i];
    struct store_outcome *o;
    int rc, *status;

    if (m->nrcpts == 0)
        return;
    o = xcalloc(m->nrcpts, sizeof(*o));
    status = xcalloc(m->nrcpts, sizeof(*status));
    for (size_t j = 0; j < m->nrcpts; j++) {
        o[j].msgid = m->info.id;
        o[j].idx = m->rcpts[j].idx;
        o[j].kind = kinds[j];
        o[j].reply = replies[j] ? replies[j] : "";
    }
    rc = store_outcome_apply(c->st, &c->owner, o, m->nrcpts, status);
    if (rc == STORE_OK) {
        dlv_claim_count(o, status, m->nrcpts);
    } else {
        char qid[STORE_ID_LEN];
        log_error("%s: recording delivery outcomes failed: %s (leases will expire)",
                  store_id_format(m->info.id, qid), store_strerror(rc));
    }
    free(status);
    free(o);
}

/* dlv_claim_free_ctx - free the claim and the context. */
static void dlv_claim_free_ctx(void *ctx)
{
    struct dlv_claim_src *c = ctx;

    store_claim_free(c->claim);
    free(c);
}

static const struct dlv_src_ops dlv_claim_ops = {
    dlv_claim_nmsgs, dlv_claim_msg,   dlv_claim_rcpt,
    dlv_claim_read,  dlv_claim_apply, dlv_claim_free_ctx,
};

/* dlv_start_claim - deliver a claim on bev; the engine owns bev and claim from now on. */
struct dlv_session *dlv_start_claim(struct event_base *base, struct bufferevent *bev,
                                    struct store *st, const struct store_owner *owner,
                                    struct store_claim *claim, const struct dlv_opts *opts,
                                    dlv_done_fn done, void *arg)
{
    struct dlv_claim_src *c = xcalloc(1, sizeof(*c));

    c->st = st;
    c->owner = *owner;
    c->claim = claim;
    return dlv_start_src(base, bev, &dlv_claim_ops, c, opts, done, arg);
}
