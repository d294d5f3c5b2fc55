/*
 * store_msg_ops.c - operator actions on one message (flags, delete, move
 * to another site) and removal of a finished message.
 *
 * store_msg_remove() is the one routine that deletes a message: every
 * still-pending recipient first leaves the pending set through
 * store_rcpt_finalise() (so indexes, leases and counters stay right), then
 * recipient records, body chunks, notes and the envelope are deleted.
 */
#include "store_private.h"

#include <stdio.h>
#include <string.h>

/* store_msg_remove_rcpts - finalise and delete every recipient record. */
static int store_msg_remove_rcpts(struct store_tx *tx, struct store_msg_rec *m)
{
    for (uint32_t i = 0; i < m->i.nrcpts; i++) {
        struct store_rcpt_rec r;
        uint8_t k[STORE_RKEY_LEN];
        int rc = store_rcpt_load(tx, m->i.id, i, &r);

        if (rc == STORE_OK && (r.i.state == STORE_RCPT_HELD || r.i.state == STORE_RCPT_LEASED) &&
            (rc = store_rcpt_finalise(tx, m, &r, STORE_RCPT_FAILED)) != STORE_OK)
            return rc;
        if (rc != STORE_OK && rc != STORE_NOTFOUND && rc != STORE_CORRUPT)
            return rc;
        store_rkey(k, m->i.id, i);
        rc = store_tx_del(tx, STORE_DB_RCPT, k, sizeof(k), NULL, 0);
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            return rc;
    }
    return STORE_OK;
}

/* store_msg_remove_body - delete every body chunk. */
static int store_msg_remove_body(struct store_tx *tx, const struct store_msg_rec *m)
{
    uint64_t nchunks = (m->i.size + STORE_CHUNK_SIZE - 1) / STORE_CHUNK_SIZE;

    for (uint64_t c = 0; c < nchunks; c++) {
        uint8_t k[12];
        int rc;

        store_rkey(k, m->i.id, (uint32_t)c);
        rc = store_tx_del(tx, STORE_DB_BODY, k, sizeof(k), NULL, 0);
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            return rc;
    }
    return STORE_OK;
}

/* store_msg_remove - delete a message and everything that refers to it. */
int store_msg_remove(struct store_tx *tx, store_msgid_t id)
{
    struct store_msg_rec m;
    uint8_t k[8];
    int rc = store_msg_load(tx, id, &m);

    if (rc != STORE_OK)
        return rc;
    if ((rc = store_msg_remove_rcpts(tx, &m)) != STORE_OK ||
        (rc = store_msg_remove_body(tx, &m)) != STORE_OK ||
        (rc = store_notes_remove(tx, id)) != STORE_OK)
        return rc;
    store_be64(k, id);
    return store_tx_del(tx, STORE_DB_MSG, k, sizeof(k), NULL, 0);
}

/* store_msg_maybe_done - remove the message if nothing is pending any more. */
int store_msg_maybe_done(struct store_tx *tx, store_msgid_t id)
{
    struct store_msg_rec m;
    bool notes;
    int rc = store_msg_load(tx, id, &m);

    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK || m.npending > 0)
        return rc;
    if ((rc = store_notes_pending(tx, id, &notes)) != STORE_OK || notes)
        return rc;
    return store_msg_remove(tx, id);
}

struct store_ops_job {
    store_msgid_t id;
    unsigned set, clear;
    const char *site;
    const char *reason;
    size_t count;
};

/* store_msg_flags_tx - change the message flags. */
static int store_msg_flags_tx(struct store_tx *tx, void *arg)
{
    struct store_ops_job *j = arg;
    struct store_msg_rec m;
    int rc = store_msg_load(tx, j->id, &m);

    if (rc != STORE_OK)
        return rc;
    m.i.flags = (m.i.flags | j->set) & ~j->clear;
    return store_msg_save(tx, &m);
}

/* store_msg_set_flags - set and clear STORE_MSG_* flags of one message. */
int store_msg_set_flags(struct store *st, store_msgid_t id, unsigned set, unsigned clear)
{
    struct store_ops_job j = {.id = id, .set = set, .clear = clear};

    return store_txn_run(st, true, store_msg_flags_tx, &j);
}

/* store_msg_delete_tx - the delete transaction. */
static int store_msg_delete_tx(struct store_tx *tx, void *arg)
{
    return store_msg_remove(tx, ((struct store_ops_job *)arg)->id);
}

/* store_msg_delete - remove a message and all its records (counters kept right). */
int store_msg_delete(struct store *st, store_msgid_t id)
{
    struct store_ops_job j = {.id = id};

    return store_txn_run(st, true, store_msg_delete_tx, &j);
}

/* store_msg_move_tx - re-home a message: by_site entry and site counters. */
static int store_msg_move_tx(struct store_tx *tx, void *arg)
{
    struct store_ops_job *j = arg;
    struct store_msg_rec m;
    uint8_t k[8];
    int rc = store_msg_load(tx, j->id, &m);

    if (rc != STORE_OK || strcmp(m.i.site, j->site) == 0)
        return rc;
    store_be64(k, m.i.id);
    if (m.npending > 0) {
        rc = store_tx_del(tx, STORE_DB_BY_SITE, m.i.site, strlen(m.i.site), k, sizeof(k));
        if ((rc != STORE_OK && rc != STORE_NOTFOUND) ||
            (rc = store_counter_add(tx, 's', m.i.site, -1, -(int64_t)m.i.size)) != STORE_OK ||
            (rc = store_tx_put(tx, STORE_DB_BY_SITE, j->site, strlen(j->site), k, sizeof(k), 0)) !=
                STORE_OK ||
            (rc = store_counter_add(tx, 's', j->site, 1, (int64_t)m.i.size)) != STORE_OK)
            return rc;
    }
    snprintf(m.i.site, sizeof(m.i.site), "%s", j->site);
    return store_msg_save(tx, &m);
}

/* store_msg_move_site - re-home a message to another site atomically. */
int store_msg_move_site(struct store *st, store_msgid_t id, const char *site)
{
    struct store_ops_job j = {.id = id, .site = site};

    if (store_name_check(site, STORE_SITE_MAX) != STORE_OK)
        return STORE_INVAL;
    return store_txn_run(st, true, store_msg_move_tx, &j);
}

/* store_msg_bounce_rcpt - fail one pending recipient and queue its note. */
static int store_msg_bounce_rcpt(struct store_tx *tx, struct store_ops_job *j,
                                 struct store_msg_rec *m, struct store_rcpt_rec *r)
{
    int rc = store_rcpt_fail(tx, m, r);

    if (rc != STORE_OK)
        return rc;
    snprintf(r->i.last_reply, sizeof(r->i.last_reply), "%s", j->reason);
    r->i.last_attempt = (int64_t)store_now();
    j->count++;
    return store_rcpt_save(tx, r);
}

/* store_msg_bounce_tx - fail every pending recipient of one message. */
static int store_msg_bounce_tx(struct store_tx *tx, void *arg)
{
    struct store_ops_job *j = arg;
    struct store_msg_rec m;
    int rc = store_msg_load(tx, j->id, &m);

    j->count = 0;
    for (uint32_t i = 0; rc == STORE_OK && i < m.i.nrcpts; i++) {
        struct store_rcpt_rec r;

        rc = store_rcpt_load(tx, j->id, i, &r);
        if (rc == STORE_OK && (r.i.state == STORE_RCPT_HELD || r.i.state == STORE_RCPT_LEASED))
            rc = store_msg_bounce_rcpt(tx, j, &m, &r);
    }
    if (rc != STORE_OK || (rc = store_msg_save(tx, &m)) != STORE_OK)
        return rc;
    return store_msg_maybe_done(tx, j->id);
}

/* store_msg_bounce - every pending recipient FAILED with reason (notes queued). */
int store_msg_bounce(struct store *st, store_msgid_t id, const char *reason, size_t *failed)
{
    struct store_ops_job j = {.id = id, .reason = reason ? reason : "bounced by the operator"};
    int rc = store_txn_run(st, true, store_msg_bounce_tx, &j);

    if (failed)
        *failed = rc == STORE_OK ? j.count : 0;
    return rc;
}
