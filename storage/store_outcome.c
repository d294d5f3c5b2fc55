/*
 * store_outcome.c - recording delivery outcomes of leased recipients.
 *
 * store_outcome_apply() applies a batch of outcomes in one transaction.
 * Only a recipient leased by the given owner is changed (a lease lost to
 * expiry and recovery must not be overwritten by a late outcome):
 *   DELIVERED -> final; DEFERRED -> back to held, attempts + 1;
 *   FAILED    -> final, and a failure note is queued unless the sender is
 *                null or the recipient's NOTIFY excludes failures.
 * A message whose recipients are all final and that has no pending note
 * is removed in the same transaction.
 */
#include "store_private.h"

#include <stdio.h>
#include <string.h>

struct store_outcome_job {
    const struct store_owner *owner;
    const struct store_outcome *o;
    size_t n;
    int *status;
    int64_t now;
};

/* store_outcome_one - apply one outcome; *st receives its own status. */
static int store_outcome_one(struct store_tx *tx, struct store_outcome_job *j,
                             const struct store_outcome *o, int *st)
{
    struct store_msg_rec m;
    struct store_rcpt_rec r;
    int rc = store_rcpt_load(tx, o->msgid, o->idx, &r);

    *st = STORE_BUSY;
    if (rc == STORE_NOTFOUND ||
        (rc == STORE_OK && !store_lease_held_by(&r, j->owner->pid, j->owner->start)))
        return STORE_OK;
    if (rc != STORE_OK || (rc = store_msg_load(tx, o->msgid, &m)) != STORE_OK)
        return rc;
    r.i.attempts++;
    r.i.last_attempt = j->now;
    snprintf(r.i.last_reply, sizeof(r.i.last_reply), "%s", o->reply ? o->reply : "");
    switch (o->kind) {
    case STORE_OUT_DELIVERED:
        rc = store_rcpt_finalise(tx, &m, &r, STORE_RCPT_DELIVERED);
        break;
    case STORE_OUT_FAILED:
        rc = store_rcpt_fail(tx, &m, &r);
        break;
    case STORE_OUT_DEFERRED:
        if ((rc = store_lease_drop(tx, &r)) == STORE_OK)
            rc = store_rcpt_enter_state(tx, &r, STORE_RCPT_HELD);
        break;
    default:
        *st = STORE_INVAL;
        return STORE_OK;
    }
    if (rc != STORE_OK || (rc = store_rcpt_save(tx, &r)) != STORE_OK ||
        (rc = store_msg_save(tx, &m)) != STORE_OK)
        return rc;
    *st = STORE_OK;
    return store_msg_maybe_done(tx, o->msgid);
}

/* store_outcome_tx - the outcome batch transaction. */
static int store_outcome_tx(struct store_tx *tx, void *arg)
{
    struct store_outcome_job *j = arg;

    for (size_t i = 0; i < j->n; i++) {
        int st, rc = store_outcome_one(tx, j, &j->o[i], &st);

        if (rc != STORE_OK)
            return rc;
        if (j->status)
            j->status[i] = st;
    }
    return STORE_OK;
}

/* store_outcome_apply - record n outcomes of recipients leased by owner. */
int store_outcome_apply(struct store *st, const struct store_owner *owner,
                        const struct store_outcome *o, size_t n, int *status)
{
    struct store_outcome_job j = {owner, o, n, status, (int64_t)store_now()};

    if (owner == NULL || (n && o == NULL))
        return STORE_INVAL;
    return store_txn_run(st, true, store_outcome_tx, &j);
}
