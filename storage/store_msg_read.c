/*
 * store_msg_read.c - reading messages back: store_msg_get(),
 * store_body_read() and store_msg_iter().
 *
 * Every call uses short read transactions.  store_msg_iter() works in
 * batches of STORE_ITER_BATCH messages: it collects a batch in one read
 * transaction, ends it, and only then runs the caller's callback, so the
 * callback never runs inside a transaction and may take its time.
 *  - with a domain: the (msgid, idx) pairs of the domain's pending
 *    recipients (plus subdomains: a key-prefix range of by_domain) are
 *    collected first, sorted, and visited oldest first; cost is the
 *    domain's mail, never the whole queue;
 *  - with only a site: the by_site duplicates of the site (messages with a
 *    pending recipient);
 *  - with neither: every message record in id order (including messages
 *    kept only for a pending DSN note).
 */
#include "store_private.h"

#include <stdlib.h>
#include <string.h>

#define STORE_ITER_BATCH 64

/*
 * store_rcpts_load - every recipient of m as a malloc'd array.  The array
 * grows as records are found, so a corrupt nrcpts in the envelope costs
 * one failed lookup, never a huge allocation.
 */
int store_rcpts_load(struct store_tx *tx, const struct store_msg_rec *m,
                     struct store_rcpt_info **out, size_t *n)
{
    struct store_rcpt_info *a = NULL, *grown = NULL;
    struct store_rcpt_rec r;
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    for (uint32_t i = 0; i < m->i.nrcpts; i++) {
        int rc = store_rcpt_load(tx, m->i.id, i, &r);

        if (rc == STORE_OK && (grown = store_grow(a, &cap, i, sizeof(*a), 8)) == NULL)
            rc = STORE_IO;
        if (rc != STORE_OK) {
            free(a);
            if (rc == STORE_NOTFOUND)
                store_set_error(tx->st, "message %010llX: recipient %u missing",
                                (unsigned long long)m->i.id, (unsigned)i);
            return rc == STORE_NOTFOUND ? STORE_CORRUPT : rc;
        }
        a = grown;
        a[i] = r.i;
    }
    if (a == NULL && (a = calloc(1, sizeof(*a))) == NULL)
        return STORE_IO;
    *out = a;
    *n = m->i.nrcpts;
    return STORE_OK;
}

struct store_get_job {
    store_msgid_t id;
    struct store_msg_info *info;
    struct store_rcpt_info **rcpts;
    size_t *nrcpts;
};

/* store_msg_get_tx - read the envelope and optionally the recipients. */
static int store_msg_get_tx(struct store_tx *tx, void *arg)
{
    struct store_get_job *j = arg;
    struct store_msg_rec m;
    int rc = store_msg_load(tx, j->id, &m);

    if (rc != STORE_OK)
        return rc;
    if (j->info)
        *j->info = m.i;
    if (j->rcpts)
        return store_rcpts_load(tx, &m, j->rcpts, j->nrcpts);
    return STORE_OK;
}

/* store_msg_get - envelope and (if rcpts != NULL) a malloc'd recipient array. */
int store_msg_get(struct store *st, store_msgid_t id, struct store_msg_info *info,
                  struct store_rcpt_info **rcpts, size_t *nrcpts)
{
    struct store_get_job j = {id, info, rcpts, nrcpts};

    if (rcpts && nrcpts == NULL)
        return STORE_INVAL;
    return store_txn_run(st, false, store_msg_get_tx, &j);
}

struct store_body_job {
    store_msgid_t id;
    uint64_t offset;
    uint8_t *buf;
    size_t len, got;
};

/* store_body_chunk - fetch chunk c and check its size against the body length. */
static int store_body_chunk(struct store_tx *tx, const struct store_msg_rec *m, uint32_t c,
                            MDB_val *v)
{
    uint8_t k[12];
    uint64_t start = (uint64_t)c * STORE_CHUNK_SIZE, want;
    int rc;

    store_rkey(k, m->i.id, c);
    want = m->i.size - start > STORE_CHUNK_SIZE ? STORE_CHUNK_SIZE : m->i.size - start;
    rc = store_tx_get(tx, STORE_DB_BODY, k, sizeof(k), v);
    if (rc == STORE_NOTFOUND || (rc == STORE_OK && v->mv_size != want)) {
        store_set_error(tx->st, "message %010llX: body chunk %u missing or wrong size",
                        (unsigned long long)m->i.id, (unsigned)c);
        return STORE_CORRUPT;
    }
    return rc;
}

/* store_body_read_tx - copy body bytes from the chunks covering the range. */
static int store_body_read_tx(struct store_tx *tx, void *arg)
{
    struct store_body_job *j = arg;
    struct store_msg_rec m;
    uint64_t off = j->offset;
    int rc = store_msg_load(tx, j->id, &m);

    j->got = 0;
    if (rc != STORE_OK)
        return rc;
    while (j->got < j->len && off < m.i.size) {
        MDB_val v;
        uint32_t c = (uint32_t)(off / STORE_CHUNK_SIZE);
        size_t in = (size_t)(off % STORE_CHUNK_SIZE), n;

        if ((rc = store_body_chunk(tx, &m, c, &v)) != STORE_OK)
            return rc;
        n = v.mv_size - in;
        if (n > j->len - j->got)
            n = j->len - j->got;
        memcpy(j->buf + j->got, (const uint8_t *)v.mv_data + in, n);
        j->got += n;
        off += n;
    }
    return STORE_OK;
}

/* store_body_read - read up to len body bytes from offset; *got = 0 at the end. */
int store_body_read(struct store *st, store_msgid_t id, uint64_t offset, void *buf, size_t len,
                    size_t *got)
{
    struct store_body_job j = {id, offset, buf, len, 0};
    int rc = store_txn_run(st, false, store_body_read_tx, &j);

    *got = rc == STORE_OK ? j.got : 0;
    return rc;
}

/* ------------------------------------------------------------------ */
/* store_msg_iter                                                     */

/* One (msgid, recipient index) pair from the domain index. */
struct store_pair {
    store_msgid_t id;
    uint32_t idx;
};

struct store_iter {
    const struct store_filter *f;
    char rkey[STORE_RKEY_MAX];
    size_t rklen;
    struct store_pair *pairs; /* domain mode */
    size_t npairs, cap, pos;
    store_msgid_t next_id; /* site / all modes: first id of the next batch */
    bool done;
    /* the current batch */
    struct store_msg_info info[STORE_ITER_BATCH];
    struct store_rcpt_info *rcpts[STORE_ITER_BATCH];
    size_t nr[STORE_ITER_BATCH];
    size_t n;
};

/* store_iter_pair_cmp - order pairs by message id, then recipient index. */
static int store_iter_pair_cmp(const void *a, const void *b)
{
    const struct store_pair *x = a, *y = b;

    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* store_iter_pair_push - append one by_domain entry's pair (growing the array). */
static int store_iter_pair_push(struct store_tx *tx, const uint8_t *v, bool *stop_key, void *arg)
{
    struct store_iter *it = arg;
    struct store_pair *p = store_grow(it->pairs, &it->cap, it->npairs, sizeof(*p), 256);

    (void)tx;
    (void)stop_key;
    if (p == NULL)
        return STORE_IO;
    it->pairs = p;
    it->pairs[it->npairs].id = store_get_be64(v);
    it->pairs[it->npairs++].idx = store_get_be32(v + 8);
    return STORE_OK;
}

/* store_iter_collect_tx - collect the domain's (and subdomains') pairs. */
static int store_iter_collect_tx(struct store_tx *tx, void *arg)
{
    struct store_iter *it = arg;
    int rc;

    it->npairs = 0;
    rc = store_index_walk(tx, it->rkey, it->rklen, it->f->subdomains, store_iter_pair_push, it);
    if (rc == STORE_OK && it->npairs > 1)
        qsort(it->pairs, it->npairs, sizeof(*it->pairs), store_iter_pair_cmp);
    return rc;
}

/* store_iter_site_ok - true when the message passes the site filter. */
static bool store_iter_site_ok(const struct store_iter *it, const struct store_msg_rec *m)
{
    return it->f->site == NULL || strcmp(it->f->site, m->i.site) == 0;
}

/* store_iter_add - load message id into the batch (all or only listed rcpts). */
static int store_iter_add(struct store_tx *tx, struct store_iter *it, store_msgid_t id,
                          const struct store_pair *p, size_t np)
{
    struct store_msg_rec m;
    size_t b = it->n;
    int rc = store_msg_load(tx, id, &m);

    if (rc == STORE_NOTFOUND || (rc == STORE_OK && !store_iter_site_ok(it, &m)))
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    it->info[b] = m.i;
    if (p == NULL) {
        if ((rc = store_rcpts_load(tx, &m, &it->rcpts[b], &it->nr[b])) != STORE_OK)
            return rc;
    } else {
        if ((it->rcpts[b] = calloc(np, sizeof(**it->rcpts))) == NULL)
            return STORE_IO;
        it->nr[b] = 0;
        for (size_t i = 0; i < np; i++) {
            struct store_rcpt_rec r;

            rc = store_rcpt_load(tx, id, p[i].idx, &r);
            if (rc == STORE_OK)
                it->rcpts[b][it->nr[b]++] = r.i;
            else if (rc != STORE_NOTFOUND)
                return free(it->rcpts[b]), it->rcpts[b] = NULL, rc;
        }
    }
    it->n++;
    return STORE_OK;
}

/* store_iter_batch_domain - next batch from the collected pairs. */
static int store_iter_batch_domain(struct store_tx *tx, struct store_iter *it)
{
    while (it->n < STORE_ITER_BATCH && it->pos < it->npairs) {
        size_t end = it->pos;
        int rc;

        while (end < it->npairs && it->pairs[end].id == it->pairs[it->pos].id)
            end++;
        rc = store_iter_add(tx, it, it->pairs[it->pos].id, &it->pairs[it->pos], end - it->pos);
        if (rc != STORE_OK)
            return rc;
        it->pos = end;
    }
    it->done = it->pos >= it->npairs;
    return STORE_OK;
}

/* store_iter_batch_keys - next batch of ids from by_site (site) or msg (all). */
static int store_iter_batch_keys(struct store_tx *tx, struct store_iter *it)
{
    bool site = it->f->site != NULL;
    MDB_cursor *cur;
    uint8_t idk[8];
    MDB_val k, v;
    int rc = store_tx_cursor(tx, site ? STORE_DB_BY_SITE : STORE_DB_MSG, &cur), mrc;

    if (rc != STORE_OK)
        return rc;
    store_be64(idk, it->next_id);
    if (site) {
        k = (MDB_val){strlen(it->f->site), (void *)it->f->site};
        v = (MDB_val){8, idk};
        mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    } else {
        k = (MDB_val){8, idk};
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    while (mrc == 0 && it->n < STORE_ITER_BATCH && rc == STORE_OK) {
        const MDB_val *idv = site ? &v : &k;

        if (idv->mv_size != 8) {
            store_set_error(tx->st, "message key of wrong size");
            rc = STORE_CORRUPT;
            break;
        }
        it->next_id = store_get_be64(idv->mv_data) + 1;
        rc = store_iter_add(tx, it, it->next_id - 1, NULL, 0);
        mrc = mdb_cursor_get(cur, &k, &v, site ? MDB_NEXT_DUP : MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (mrc == MDB_NOTFOUND)
        it->done = true;
    else if (rc == STORE_OK && mrc != 0)
        rc = store_tx_rc(tx, mrc, "iterate");
    return rc;
}

/* store_iter_batch_release - free the batch's recipient arrays. */
static void store_iter_batch_release(struct store_iter *it)
{
    for (size_t i = 0; i < it->n; i++) {
        free(it->rcpts[i]);
        it->rcpts[i] = NULL;
    }
    it->n = 0;
}

/* store_iter_batch_tx - fill one batch in one read transaction. */
static int store_iter_batch_tx(struct store_tx *tx, void *arg)
{
    struct store_iter *it = arg;
    int rc;

    store_iter_batch_release(it);
    rc = it->f->domain ? store_iter_batch_domain(tx, it) : store_iter_batch_keys(tx, it);
    if (rc != STORE_OK)
        store_iter_batch_release(it);
    return rc;
}

/* store_iter_run - batches until done or the callback stops. */
static int store_iter_run(struct store *st, struct store_iter *it,
                          int (*cb)(const struct store_msg_info *m, const struct store_rcpt_info *r,
                                    size_t nr, void *arg),
                          void *arg)
{
    int rc = STORE_OK, stop = 0;

    while (rc == STORE_OK && !stop && !it->done) {
        rc = store_txn_run(st, false, store_iter_batch_tx, it);
        for (size_t i = 0; rc == STORE_OK && !stop && i < it->n; i++)
            stop = cb(&it->info[i], it->rcpts[i], it->nr[i], arg);
        store_iter_batch_release(it);
    }
    return rc;
}

/* store_msg_iter - every matching message, oldest first, in short transactions. */
int store_msg_iter(struct store *st, const struct store_filter *f,
                   int (*cb)(const struct store_msg_info *m, const struct store_rcpt_info *r,
                             size_t nr, void *arg),
                   void *arg)
{
    static const struct store_filter none = {0};
    struct store_iter *it = calloc(1, sizeof(*it));
    int rc = STORE_OK;

    if (it == NULL)
        return STORE_IO;
    it->f = f ? f : &none;
    if (it->f->domain) {
        if ((it->rklen = store_domain_rkey(it->f->domain, it->rkey)) == 0)
            rc = STORE_INVAL;
        else
            rc = store_txn_run(st, false, store_iter_collect_tx, it);
    }
    if (rc == STORE_OK)
        rc = store_iter_run(st, it, cb, arg);
    free(it->pairs);
    free(it);
    return rc;
}
