/*
 * store_notes.c - notifications (failure DSNs and delay warnings) and
 * store_expire(), the queue manager's hold-time / delay-warning step.
 *
 * A note is keyed msgid(8) kind(1) and lists the recipient indexes it
 * reports; a later failure of another recipient of the same message is
 * appended to the pending note, so one DSN covers them.  While a note is
 * pending its message is kept even if every recipient is final.  Notes are
 * never queued for the null sender, nor for a recipient whose DSN NOTIFY
 * excludes the kind (NOTIFY absent = FAILURE and DELAY).
 *
 * store_expire() walks messages oldest first (msgid order: ids grow with
 * arrival) in batches of STORE_EXPIRE_BATCH, one write transaction each,
 * and stops at the first message younger than the *smallest* deadline any
 * rule could apply: min(default hold, default warning, and the lower
 * bounds "min_hold"/"min_warn" in meta of every per-domain override ever
 * set).  So a domain with a *longer* hold time than the default cannot
 * make the walk stop too early (its messages are simply not yet due when
 * visited), and one with a *shorter* override lowers the bound.  The
 * bounds are only lowered, never raised (a deleted or raised override
 * leaves a conservative bound: more visiting, never a missed deadline).
 * Cost: messages older than the bound, not the whole queue; messages
 * already warned but not yet expired are visited again on every call (a
 * per-message due index would remove that; not needed at our volumes).
 * Arrival times are supplied by the caller and may be out of id order by
 * the few seconds a group commit spans; such a message is handled on the
 * next call.  A recipient leased by a live owner is not expired while its
 * delivery runs.  A message or note whose records cannot be decoded is
 * skipped with a warning (store_expire, store_note_next) instead of
 * blocking everything behind it; the operator deletes it.
 */
#include "store_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_NKEY_LEN      9
#define STORE_EXPIRE_BATCH  256
#define STORE_EXPIRE_REASON "hold time expired"

/* store_nkey - note key: msgid(8) kind(1). */
static void store_nkey(uint8_t k[STORE_NKEY_LEN], store_msgid_t id, int kind)
{
    store_be64(k, id);
    k[8] = (uint8_t)kind;
}

/* store_notify_wants - does a recipient's NOTIFY ask for this kind of note? */
bool store_notify_wants(unsigned notify, int kind)
{
    if (notify & STORE_NOTIFY_NEVER)
        return false;
    if (notify == 0)
        return true;
    return (notify & (kind == STORE_NOTE_FAILED ? STORE_NOTIFY_FAILURE : STORE_NOTIFY_DELAY)) != 0;
}

/* store_note_decode - the recipient index list of a note (malloc'd). */
static int store_note_decode(struct store_tx *tx, const MDB_val *v, uint32_t **idx, size_t *n)
{
    struct store_rbuf r;
    uint32_t cnt = 0;

    *idx = NULL;
    *n = 0;
    store_rb_init(&r, v);
    if (store_rb_version(&r))
        cnt = store_rb_u32(&r);
    if (r.bad || (size_t)cnt * 4 != r.len - r.off) {
        store_set_error(tx->st, "note record corrupt");
        return STORE_CORRUPT;
    }
    if ((*idx = malloc((cnt ? cnt : 1) * sizeof(**idx))) == NULL)
        return STORE_IO;
    for (uint32_t i = 0; i < cnt; i++)
        (*idx)[i] = store_rb_u32(&r);
    *n = cnt;
    return STORE_OK;
}

/* store_note_put - write a note with the given recipient indexes. */
static int store_note_put(struct store_tx *tx, const uint8_t *k, const uint32_t *idx, size_t n)
{
    struct store_wbuf w;
    int rc;

    store_wb_init(&w);
    store_wb_u8(&w, STORE_REC_VERSION);
    store_wb_u32(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        store_wb_u32(&w, idx[i]);
    rc = w.oom ? STORE_IO : store_tx_put(tx, STORE_DB_NOTES, k, STORE_NKEY_LEN, w.p, w.len, 0);
    store_wb_free(&w);
    return rc;
}

/* store_note_add - queue (or extend) the note of kind for recipient idx of m. */
int store_note_add(struct store_tx *tx, const struct store_msg_rec *m, uint32_t idx, int kind)
{
    uint8_t k[STORE_NKEY_LEN];
    uint32_t *list = NULL, *grown;
    size_t n = 0;
    MDB_val v;
    int rc;

    store_nkey(k, m->i.id, kind);
    rc = store_tx_get(tx, STORE_DB_NOTES, k, sizeof(k), &v);
    if (rc == STORE_OK && (rc = store_note_decode(tx, &v, &list, &n)) != STORE_OK)
        return rc;
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (list[i] == idx) {
            free(list);
            return STORE_OK;
        }
    if ((grown = realloc(list, (n + 1) * sizeof(*list))) == NULL) {
        free(list);
        return STORE_IO;
    }
    grown[n++] = idx;
    rc = store_note_put(tx, k, grown, n);
    free(grown);
    return rc;
}

/*
 * store_rcpt_fail - finalise pending recipient r as FAILED and queue its
 * failure note unless the sender is null or its NOTIFY excludes failures.
 */
int store_rcpt_fail(struct store_tx *tx, struct store_msg_rec *m, struct store_rcpt_rec *r)
{
    int rc = store_rcpt_finalise(tx, m, r, STORE_RCPT_FAILED);

    if (rc != STORE_OK || m->i.sender[0] == '\0' ||
        !store_notify_wants(r->i.notify, STORE_NOTE_FAILED))
        return rc;
    return store_note_add(tx, m, r->i.idx, STORE_NOTE_FAILED);
}

/* store_notes_pending - does message id have any pending note? */
int store_notes_pending(struct store_tx *tx, store_msgid_t id, bool *any)
{
    uint8_t k[STORE_NKEY_LEN];
    MDB_cursor *cur;
    MDB_val key = {sizeof(k), k}, v;
    int rc = store_tx_cursor(tx, STORE_DB_NOTES, &cur), mrc;

    *any = false;
    if (rc != STORE_OK)
        return rc;
    store_nkey(k, id, 0);
    mrc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
    *any = mrc == 0 && key.mv_size == STORE_NKEY_LEN && store_get_be64(key.mv_data) == id;
    mdb_cursor_close(cur);
    return mrc == 0 || mrc == MDB_NOTFOUND ? STORE_OK : store_tx_rc(tx, mrc, "notes");
}

/* store_notes_remove - delete every note of message id. */
int store_notes_remove(struct store_tx *tx, store_msgid_t id)
{
    const int kinds[] = {STORE_NOTE_FAILED, STORE_NOTE_DELAYED};

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        uint8_t k[STORE_NKEY_LEN];
        int rc;

        store_nkey(k, id, kinds[i]);
        rc = store_tx_del(tx, STORE_DB_NOTES, k, sizeof(k), NULL, 0);
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            return rc;
    }
    return STORE_OK;
}

/* ------------------------------------------------------------------ */
/* Reading and finishing notes                                        */

struct store_note_job {
    size_t max;
    struct store_note *notes;
    size_t n;
    store_msgid_t id;
    int kind;
};

/* store_note_free - free an array from store_note_next(). */
void store_note_free(struct store_note *notes, size_t n)
{
    if (notes == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(notes[i].rcpts);
    free(notes);
}

/* store_note_fill - one note: envelope and the reported recipients. */
static int store_note_fill(struct store_tx *tx, const MDB_val *k, const MDB_val *v,
                           struct store_note *out)
{
    struct store_msg_rec m;
    uint32_t *idx;
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    out->msgid = store_get_be64(k->mv_data);
    out->kind = ((const uint8_t *)k->mv_data)[8];
    if ((rc = store_note_decode(tx, v, &idx, &n)) != STORE_OK)
        return rc;
    if ((rc = store_msg_load(tx, out->msgid, &m)) != STORE_OK ||
        (out->rcpts = calloc(n ? n : 1, sizeof(*out->rcpts))) == NULL) {
        free(idx);
        return rc == STORE_NOTFOUND ? STORE_CORRUPT : rc != STORE_OK ? rc : STORE_IO;
    }
    out->info = m.i;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        struct store_rcpt_rec r;

        if ((rc = store_rcpt_load(tx, out->msgid, idx[i], &r)) == STORE_OK)
            out->rcpts[out->nrcpts++] = r.i;
    }
    free(idx);
    return rc == STORE_NOTFOUND ? STORE_CORRUPT : rc;
}

/* store_note_next_tx - read up to max notes, oldest first. */
static int store_note_next_tx(struct store_tx *tx, void *arg)
{
    struct store_note_job *j = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = store_tx_cursor(tx, STORE_DB_NOTES, &cur), mrc;

    store_note_free(j->notes, j->n);
    j->notes = NULL;
    j->n = 0;
    if (rc != STORE_OK)
        return rc;
    if ((j->notes = calloc(j->max, sizeof(*j->notes))) == NULL)
        rc = STORE_IO;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == STORE_OK && mrc == 0 && j->n < j->max;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != STORE_NKEY_LEN) {
            rc = STORE_CORRUPT;
            break;
        }
        rc = store_note_fill(tx, &k, &v, &j->notes[j->n]);
        if (rc == STORE_OK) {
            j->n++;
        } else {
            free(j->notes[j->n].rcpts);
            j->notes[j->n].rcpts = NULL;
        }
        if (rc == STORE_CORRUPT) { /* do not let one bad note block every DSN */
            log_warn("queue: note of message %010llX skipped: %s",
                     (unsigned long long)store_get_be64(k.mv_data), tx->st->errbuf);
            rc = STORE_OK;
        }
    }
    mdb_cursor_close(cur);
    if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = store_tx_rc(tx, mrc, "notes");
    return rc;
}

/* store_note_next - up to max pending notes (oldest first); malloc'd array. */
int store_note_next(struct store *st, size_t max, struct store_note **notes, size_t *n)
{
    struct store_note_job j = {.max = max};
    int rc;

    *notes = NULL;
    *n = 0;
    if (max == 0)
        return STORE_OK;
    rc = store_txn_run(st, false, store_note_next_tx, &j);
    if (rc != STORE_OK) {
        store_note_free(j.notes, j.n);
        return rc;
    }
    *notes = j.notes;
    *n = j.n;
    return STORE_OK;
}

/* store_note_done_tx - drop the note; remove its message if finished. */
static int store_note_done_tx(struct store_tx *tx, void *arg)
{
    struct store_note_job *j = arg;
    uint8_t k[STORE_NKEY_LEN];
    int rc;

    store_nkey(k, j->id, j->kind);
    if ((rc = store_tx_del(tx, STORE_DB_NOTES, k, sizeof(k), NULL, 0)) != STORE_OK)
        return rc;
    rc = store_msg_maybe_done(tx, j->id);
    return rc == STORE_CORRUPT ? STORE_OK : rc; /* a damaged message stays for the operator */
}

/* store_note_done - the DSN for (msgid, kind) was handed to the relay. */
int store_note_done(struct store *st, store_msgid_t msgid, int kind)
{
    struct store_note_job j = {.id = msgid, .kind = kind};

    if (kind != STORE_NOTE_FAILED && kind != STORE_NOTE_DELAYED)
        return STORE_INVAL;
    return store_txn_run(st, true, store_note_done_tx, &j);
}

/* ------------------------------------------------------------------ */
/* store_expire                                                       */

struct store_expire_job {
    int64_t now, default_hold, default_warn;
    int64_t bound;         /* smallest deadline of any rule */
    store_msgid_t next_id; /* first id of the next batch */
    store_msgid_t start;   /* first id of the batch being run */
    bool done;
    size_t expired, warned; /* totals over committed batches */
    size_t b_expired, b_warned;
    struct store_alive_cache alive;
};

/* store_expire_bound - the smallest deadline: default and override bounds. */
static int store_expire_bound(struct store_tx *tx, struct store_expire_job *j)
{
    const char *keys[] = {STORE_META_MIN_HOLD, STORE_META_MIN_WARN};
    int64_t b = -1;

    if (j->default_hold > 0)
        b = j->default_hold;
    if (j->default_warn > 0 && (b < 0 || j->default_warn < b))
        b = j->default_warn;
    for (size_t i = 0; i < 2; i++) {
        uint64_t v;
        bool found;
        int rc = store_meta_u64_get(tx, keys[i], &v, &found);

        if (rc != STORE_OK)
            return rc;
        if (found && v > 0 && (b < 0 || (int64_t)v < b))
            b = (int64_t)v;
    }
    j->bound = b;
    return STORE_OK;
}

/* store_expire_rules - hold and warning periods for a recipient's domain. */
static int store_expire_rules(struct store_tx *tx, const struct store_expire_job *j,
                              const char *domain, int64_t *hold, int64_t *warn)
{
    struct store_domain d;
    int rc = store_domain_load(tx, domain, &d);

    *hold = j->default_hold;
    *warn = j->default_warn;
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    if (d.hold_time >= 0)
        *hold = d.hold_time;
    if (d.delay_warning >= 0)
        *warn = d.delay_warning;
    return STORE_OK;
}

/* store_expire_rcpt - apply the rules to one pending recipient. */
static int store_expire_rcpt(struct store_tx *tx, struct store_expire_job *j,
                             struct store_msg_rec *m, struct store_rcpt_rec *r)
{
    int64_t hold, warn, age = j->now - m->i.arrival;
    bool nullsender = m->i.sender[0] == '\0';
    int rc = store_expire_rules(tx, j, r->i.domain, &hold, &warn);

    if (rc != STORE_OK)
        return rc;
    if (hold > 0 && age >= hold) {
        if (r->i.state == STORE_RCPT_LEASED && !store_lease_stale(&j->alive, r, j->now))
            return STORE_OK; /* being delivered right now */
        if ((rc = store_rcpt_fail(tx, m, r)) != STORE_OK)
            return rc;
        snprintf(r->i.last_reply, sizeof(r->i.last_reply), "%s", STORE_EXPIRE_REASON);
        r->i.last_attempt = j->now;
        j->b_expired++;
        return store_rcpt_save(tx, r);
    }
    if (warn > 0 && age >= warn && !r->i.delay_warned) {
        r->i.delay_warned = true;
        if (!nullsender && store_notify_wants(r->i.notify, STORE_NOTE_DELAYED)) {
            if ((rc = store_note_add(tx, m, r->i.idx, STORE_NOTE_DELAYED)) != STORE_OK)
                return rc;
            j->b_warned++;
        }
        return store_rcpt_save(tx, r);
    }
    return STORE_OK;
}

/* store_expire_msg - apply the rules to every pending recipient of a message. */
static int store_expire_msg(struct store_tx *tx, struct store_expire_job *j, store_msgid_t id)
{
    struct store_msg_rec m;
    int rc = store_msg_load(tx, id, &m);

    if (rc != STORE_OK || m.npending == 0)
        return rc == STORE_NOTFOUND ? STORE_OK : rc;
    for (uint32_t i = 0; i < m.i.nrcpts; i++) {
        struct store_rcpt_rec r;

        rc = store_rcpt_load(tx, id, i, &r);
        if (rc == STORE_NOTFOUND)
            continue;
        if (rc != STORE_OK)
            return rc;
        if (r.i.state != STORE_RCPT_HELD && r.i.state != STORE_RCPT_LEASED)
            continue;
        if ((rc = store_expire_rcpt(tx, j, &m, &r)) != STORE_OK)
            return rc;
    }
    if ((rc = store_msg_save(tx, &m)) != STORE_OK)
        return rc;
    return store_msg_maybe_done(tx, id);
}

/*
 * store_expire_one - one message in a nested transaction, so that a
 * damaged record met half-way leaves that message untouched (and is
 * skipped with a warning) while the rest of the batch goes on.
 */
static int store_expire_one(struct store_tx *tx, struct store_expire_job *j, store_msgid_t id)
{
    struct store_tx child;
    size_t e = j->b_expired, w = j->b_warned;
    int rc = store_tx_child(tx, &child);

    if (rc != STORE_OK)
        return rc;
    rc = store_expire_msg(&child, j, id);
    if (rc == STORE_OK) {
        /* a commit frees the child transaction whatever its result */
        if ((rc = store_tx_child_end(&child, true)) == STORE_OK)
            return STORE_OK;
    } else {
        store_tx_child_end(&child, false);
    }
    j->b_expired = e;
    j->b_warned = w;
    if (child.map_full) {
        tx->map_full = true;
        return STORE_FULL;
    }
    if (rc == STORE_CORRUPT) {
        log_warn("queue: %s; expiry skips the message", tx->st->errbuf);
        return STORE_OK;
    }
    return rc;
}

/* store_expire_ids - the next batch of old enough message ids. */
static int store_expire_ids(struct store_tx *tx, struct store_expire_job *j, store_msgid_t *ids,
                            size_t *n)
{
    uint8_t k0[8];
    MDB_cursor *cur;
    MDB_val k = {sizeof(k0), k0}, v;
    struct store_msg_rec m;
    int rc = store_tx_cursor(tx, STORE_DB_MSG, &cur), mrc;

    *n = 0;
    if (rc != STORE_OK)
        return rc;
    store_be64(k0, j->next_id);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0 && *n < STORE_EXPIRE_BATCH;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        store_msgid_t id = k.mv_size == 8 ? store_get_be64(k.mv_data) : 0;

        if (id == 0 || !store_msg_decode_val(&v, id, &m)) {
            /* one damaged message must not stop expiry of all later ones */
            log_warn("queue: message %010llX: envelope record corrupt; expiry skips it "
                     "(queuectl queue delete it)",
                     (unsigned long long)id);
            j->next_id = id + 1;
            continue;
        }
        if (m.i.arrival > j->now - j->bound) {
            j->done = true; /* every later message is younger still */
            break;
        }
        ids[(*n)++] = id;
        j->next_id = id + 1;
    }
    mdb_cursor_close(cur);
    if (mrc == MDB_NOTFOUND)
        j->done = true;
    else if (rc == STORE_OK && mrc != 0)
        rc = store_tx_rc(tx, mrc, "msg");
    return rc;
}

/* store_expire_tx - one batch: find due messages, then change them. */
static int store_expire_tx(struct store_tx *tx, void *arg)
{
    struct store_expire_job *j = arg;
    store_msgid_t ids[STORE_EXPIRE_BATCH];
    size_t n;
    int rc;

    j->b_expired = j->b_warned = 0;
    j->done = false;
    j->alive.n = 0;
    j->next_id = j->start; /* a retried batch starts over */
    if ((rc = store_expire_bound(tx, j)) != STORE_OK)
        return rc;
    if (j->bound < 0) {
        j->done = true;
        return STORE_OK;
    }
    if ((rc = store_expire_ids(tx, j, ids, &n)) != STORE_OK)
        return rc;
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        rc = store_expire_one(tx, j, ids[i]);
    return rc;
}

/* store_expire - fail recipients past their hold time, queue delay warnings. */
int store_expire(struct store *st, int64_t now, int64_t default_hold, int64_t default_warn,
                 size_t *expired, size_t *warned)
{
    struct store_expire_job j = {
        .now = now, .default_hold = default_hold, .default_warn = default_warn, .next_id = 0};
    int rc = STORE_OK;

    while (rc == STORE_OK && !j.done) {
        j.start = j.next_id;
        rc = store_txn_run(st, true, store_expire_tx, &j);
        if (rc == STORE_OK) {
            j.expired += j.b_expired;
            j.warned += j.b_warned;
        }
    }
    if (expired)
        *expired = j.expired;
    if (warned)
        *warned = j.warned;
    return rc;
}
