/*
 * store_counters.c - per-domain and per-site counters, the pending
 * recipient indexes, and store_room_check().
 *
 * Counters (messages, bytes) change in the same transaction as the
 * records they count.  A message counts once for each domain in which it
 * has a pending (held or leased) recipient, and once for its site while it
 * has any pending recipient.  "oldest" is not stored: it is the arrival of
 * the message of the first duplicate in by_domain / by_site (ids grow with
 * time), one cursor step.
 */
#include "store_private.h"

#include <stdio.h>
#include <string.h>

#define STORE_CKEY_MAX (STORE_DOMAIN_MAX + 1)

/* store_ckey - counters key: kind byte + name. */
static size_t store_ckey(char kind, const char *name, char k[STORE_CKEY_MAX])
{
    size_t n = strlen(name);

    if (n >= STORE_DOMAIN_MAX)
        n = STORE_DOMAIN_MAX - 1;
    k[0] = kind;
    memcpy(k + 1, name, n);
    return n + 1;
}

/* store_counter_get - current counters (0, 0 when never counted). */
int store_counter_get(struct store_tx *tx, char kind, const char *name, uint64_t *msgs,
                      uint64_t *bytes)
{
    char k[STORE_CKEY_MAX];
    size_t kl = store_ckey(kind, name, k);
    struct store_rbuf r;
    MDB_val v;
    int rc = store_tx_get(tx, STORE_DB_COUNTERS, k, kl, &v);

    *msgs = *bytes = 0;
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    store_rb_init(&r, &v);
    if (store_rb_version(&r)) {
        *msgs = store_rb_u64(&r);
        *bytes = store_rb_u64(&r);
    }
    if (!store_rb_end(&r)) {
        store_set_error(tx->st, "counter record of %c:%.100s corrupt", kind, name);
        return STORE_CORRUPT;
    }
    return STORE_OK;
}

/* store_counter_add - add deltas (clamped at 0); deleted when both reach 0. */
int store_counter_add(struct store_tx *tx, char kind, const char *name, int64_t dmsgs,
                      int64_t dbytes)
{
    char k[STORE_CKEY_MAX];
    size_t kl = store_ckey(kind, name, k);
    uint64_t msgs, bytes;
    struct store_wbuf w;
    int rc = store_counter_get(tx, kind, name, &msgs, &bytes);

    if (rc != STORE_OK)
        return rc;
    msgs = dmsgs < 0 && (uint64_t)-dmsgs > msgs ? 0 : msgs + (uint64_t)dmsgs;
    bytes = dbytes < 0 && (uint64_t)-dbytes > bytes ? 0 : bytes + (uint64_t)dbytes;
    if (msgs == 0 && bytes == 0) {
        rc = store_tx_del(tx, STORE_DB_COUNTERS, k, kl, NULL, 0);
        return rc == STORE_NOTFOUND ? STORE_OK : rc;
    }
    store_wb_init(&w);
    store_wb_u8(&w, STORE_REC_VERSION);
    store_wb_u64(&w, msgs);
    store_wb_u64(&w, bytes);
    rc = w.oom ? STORE_IO : store_tx_put(tx, STORE_DB_COUNTERS, k, kl, w.p, w.len, 0);
    store_wb_free(&w);
    return rc;
}

/* store_index_add - by_domain entry of a pending recipient. */
int store_index_add(struct store_tx *tx, const struct store_rcpt_rec *r)
{
    char rk[STORE_RKEY_MAX];
    uint8_t v[STORE_RKEY_LEN];
    size_t rl = store_domain_rkey(r->i.domain, rk);

    if (rl == 0)
        return STORE_INVAL;
    store_rkey(v, r->i.msgid, r->i.idx);
    return store_tx_put(tx, STORE_DB_BY_DOMAIN, rk, rl, v, sizeof(v), 0);
}

/* store_index_key_dups - fn for every duplicate of the cursor's current key. */
static int store_index_key_dups(struct store_tx *tx, MDB_cursor *cur, store_index_fn fn, void *arg)
{
    MDB_val k, v;
    bool stop = false;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST_DUP), rc;

    for (; mrc == 0 && !stop; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != STORE_RKEY_LEN) {
            store_set_error(tx->st, "domain index entry of wrong size");
            return STORE_CORRUPT;
        }
        if ((rc = fn(tx, v.mv_data, &stop, arg)) != STORE_OK)
            return rc;
    }
    return mrc == 0 || mrc == MDB_NOTFOUND ? STORE_OK : store_tx_rc(tx, mrc, "by_domain");
}

/*
 * store_index_walk - fn for every by_domain entry of reversed domain key rk
 * and, with subdomains, of every key rk is a prefix of; key by key in order.
 */
int store_index_walk(struct store_tx *tx, const char *rk, size_t rl, bool subdomains,
                     store_index_fn fn, void *arg)
{
    MDB_cursor *cur;
    MDB_val k = {rl, (void *)rk}, v;
    int rc = store_tx_cursor(tx, STORE_DB_BY_DOMAIN, &cur), mrc;

    if (rc != STORE_OK)
        return rc;
    mrc = mdb_cursor_get(cur, &k, &v, subdomains ? MDB_SET_RANGE : MDB_SET_KEY);
    while (mrc == 0 && k.mv_size >= rl && memcmp(k.mv_data, rk, rl) == 0) {
        if ((rc = store_index_key_dups(tx, cur, fn, arg)) != STORE_OK || !subdomains)
            break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP);
    }
    mdb_cursor_close(cur);
    if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = store_tx_rc(tx, mrc, "by_domain");
    return rc;
}

/* store_domain_has_pending - does message id still have a pending rcpt in rk? */
static int store_domain_has_pending(struct store_tx *tx, const char *rk, size_t rl,
                                    store_msgid_t id, bool *has)
{
    uint8_t probe[STORE_RKEY_LEN];
    MDB_cursor *cur;
    MDB_val k = {rl, (void *)rk}, v = {sizeof(probe), probe};
    int rc = store_tx_cursor(tx, STORE_DB_BY_DOMAIN, &cur), mrc;

    if (rc != STORE_OK)
        return rc;
    store_rkey(probe, id, 0);
    mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    *has = mrc == 0 && v.mv_size == STORE_RKEY_LEN && store_get_be64(v.mv_data) == id;
    mdb_cursor_close(cur);
    return mrc == 0 || mrc == MDB_NOTFOUND ? STORE_OK : store_tx_rc(tx, mrc, "by_domain");
}

/*
 * store_rcpt_finalise - a pending recipient leaves the pending set (becomes
 * DELIVERED or FAILED, or its message is deleted): index entries, lease and
 * counters follow.  The caller saves r and m afterwards.
 */
int store_rcpt_finalise(struct store_tx *tx, struct store_msg_rec *m, struct store_rcpt_rec *r,
                        int state)
{
    char rk[STORE_RKEY_MAX];
    uint8_t v[STORE_RKEY_LEN], idk[8];
    size_t rl = store_domain_rkey(r->i.domain, rk);
    bool has = false;
    int rc;

    if (r->i.state == STORE_RCPT_LEASED && (rc = store_lease_drop(tx, r)) != STORE_OK)
        return rc;
    if ((rc = store_rcpt_enter_state(tx, r, state)) != STORE_OK)
        return rc;
    store_rkey(v, r->i.msgid, r->i.idx);
    rc = store_tx_del(tx, STORE_DB_BY_DOMAIN, rk, rl, v, sizeof(v));
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return rc;
    if ((rc = store_domain_has_pending(tx, rk, rl, m->i.id, &has)) != STORE_OK)
        return rc;
    if (!has && (rc = store_counter_add(tx, 'd', r->i.domain, -1, -(int64_t)m->i.size)) != 0)
        return rc;
    if (m->npending > 0 && --m->npending == 0) {
        store_be64(idk, m->i.id);
        rc = store_tx_del(tx, STORE_DB_BY_SITE, m->i.site, strlen(m->i.site), idk, sizeof(idk));
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            return rc;
        return store_counter_add(tx, 's', m->i.site, -1, -(int64_t)m->i.size);
    }
    return STORE_OK;
}

/* store_oldest - arrival of the message of the first duplicate of key in db. */
static int store_oldest(struct store_tx *tx, int db, const void *key, size_t kl, int64_t *oldest)
{
    MDB_cursor *cur;
    MDB_val k = {kl, (void *)key}, v;
    struct store_msg_rec m;
    int rc = store_tx_cursor(tx, db, &cur), mrc;

    *oldest = 0;
    if (rc != STORE_OK)
        return rc;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    if (mrc == 0)
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST_DUP);
    mdb_cursor_close(cur);
    if (mrc == MDB_NOTFOUND)
        return STORE_OK;
    if (mrc != 0)
        return store_tx_rc(tx, mrc, "oldest");
    if (v.mv_size < 8)
        return STORE_CORRUPT;
    rc = store_msg_load(tx, store_get_be64(v.mv_data), &m);
    if (rc == STORE_OK)
        *oldest = m.i.arrival;
    return rc == STORE_NOTFOUND ? STORE_CORRUPT : rc;
}

struct store_counts_job {
    char kind;
    const char *name;
    struct store_counts *out;
};

/* store_counts_tx - counters plus the oldest arrival. */
static int store_counts_tx(struct store_tx *tx, void *arg)
{
    struct store_counts_job *j = arg;
    char rk[STORE_RKEY_MAX];
    size_t rl;
    int rc = store_counter_get(tx, j->kind, j->name, &j->out->messages, &j->out->bytes);

    if (rc != STORE_OK)
        return rc;
    if (j->kind == 's')
        return store_oldest(tx, STORE_DB_BY_SITE, j->name, strlen(j->name), &j->out->oldest);
    rl = store_domain_rkey(j->name, rk);
    return store_oldest(tx, STORE_DB_BY_DOMAIN, rk, rl, &j->out->oldest);
}

/* store_domain_counts - a domain's pending messages, bytes and oldest arrival. */
int store_domain_counts(struct store *st, const char *domain, struct store_counts *out)
{
    char low[STORE_DOMAIN_MAX];
    struct store_counts_job j = {'d', low, out};

    memset(out, 0, sizeof(*out));
    if (store_name_check(domain, STORE_DOMAIN_MAX) != STORE_OK)
        return STORE_INVAL;
    store_lower(low, domain, sizeof(low));
    return store_txn_run(st, false, store_counts_tx, &j);
}

/* store_site_counts - a site's pending messages, bytes and oldest arrival. */
int store_site_counts(struct store *st, const char *site, struct store_counts *out)
{
    struct store_counts_job j = {'s', site, out};

    memset(out, 0, sizeof(*out));
    if (store_name_check(site, STORE_SITE_MAX) != STORE_OK)
        return STORE_INVAL;
    return store_txn_run(st, false, store_counts_tx, &j);
}

struct store_room_job {
    const char *site, *domain;
    uint64_t site_max_msgs, site_max_bytes, size;
    uint64_t free_pages;
};

/* store_room_free_pages - pages on LMDB's free list (reusable space). */
static int store_room_free_pages(struct store_tx *tx, uint64_t *pages)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(tx->txn, 0, &cur);

    *pages = 0;
    if (mrc != 0)
        return store_tx_rc(tx, mrc, "free list");
    while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0)
        if (v.mv_size >= sizeof(size_t)) {
            size_t n;

            memcpy(&n, v.mv_data, sizeof(n)); /* an IDL: count first */
            *pages += n;
        }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? STORE_OK : store_tx_rc(tx, mrc, "free list");
}

/* store_room_tx - quota checks plus the free-list size. */
static int store_room_tx(struct store_tx *tx, void *arg)
{
    struct store_room_job *j = arg;
    struct store_domain d;
    uint64_t msgs, bytes;
    int rc;

    if (j->domain) {
        rc = store_domain_load(tx, j->domain, &d);
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            return rc;
        if (rc == STORE_OK && d.max_queue &&
            ((rc = store_counter_get(tx, 'd', d.name, &msgs, &bytes)) != STORE_OK ||
             msgs >= d.max_queue))
            return rc == STORE_OK ? STORE_LIMIT : rc;
    }
    if (j->site && (j->site_max_msgs || j->site_max_bytes)) {
        if ((rc = store_counter_get(tx, 's', j->site, &msgs, &bytes)) != STORE_OK)
            return rc;
        if ((j->site_max_msgs && msgs >= j->site_max_msgs) ||
            (j->site_max_bytes && bytes + j->size > j->site_max_bytes))
            return STORE_LIMIT;
    }
    return store_room_free_pages(tx, &j->free_pages);
}

/* store_room_check - may a message of size bytes be accepted now? */
int store_room_check(struct store *st, const char *site, uint64_t site_max_msgs,
                     uint64_t site_max_bytes, const char *domain, uint64_t size)
{
    struct store_room_job j = {site, domain, site_max_msgs, site_max_bytes, size, 0};
    char low[STORE_DOMAIN_MAX];
    struct store_envinfo ei;
    MDB_stat ms;
    uint64_t used, need;
    int rc;

    if (domain) {
        if (store_name_check(domain, STORE_DOMAIN_MAX) != STORE_OK)
            return STORE_INVAL;
        store_lower(low, domain, sizeof(low));
        j.domain = low;
    }
    if ((rc = store_txn_run(st, false, store_room_tx, &j)) != STORE_OK)
        return rc;
    if ((rc = store_env_info(st, &ei)) != STORE_OK || mdb_env_stat(st->env, &ms) != 0)
        return rc != STORE_OK ? rc : STORE_IO;
    used =
        ei.map_used - (j.free_pages * ms.ms_psize < ei.map_used ? j.free_pages * ms.ms_psize : 0);
    need = 2 * size + st->map_size_max / 32; /* margin: index and record pages */
    return used + need > st->map_size_max ? STORE_FULL : STORE_OK;
}
