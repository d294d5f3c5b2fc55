/*
 * store_domain.c - held domains: record codec, put/get/delete/iterate.
 *
 * Domain names are keys in lower case.  Iteration reads batches of
 * STORE_DOMAIN_BATCH records per short read transaction and calls the
 * callback outside any transaction.  Setting a hold_time or delay_warning
 * override lowers the meta lower bounds "min_hold" / "min_warn" that let
 * store_expire() stop early (see store_notes.c); deleting a domain never
 * raises them, so they stay valid lower bounds.
 */
#include "store_private.h"
#include "store_scan.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define STORE_DOMAIN_BATCH 64

/* store_domain_encode - the domain record (the name is the key). */
static void store_domain_encode(struct store_wbuf *w, const struct store_domain *d)
{
    store_wb_u8(w, STORE_REC_VERSION);
    store_wb_str(w, d->site);
    store_wb_u8(w, d->etrn_enabled);
    store_wb_str(w, d->route);
    store_wb_u64(w, (uint64_t)d->hold_time);
    store_wb_u64(w, (uint64_t)d->delay_warning);
    store_wb_u64(w, d->max_queue);
    store_wb_u64(w, (uint64_t)d->created);
}

/* store_domain_decode - parse a domain record; false when malformed. */
static bool store_domain_decode(const MDB_val *k, const MDB_val *v, struct store_domain *d)
{
    struct store_rbuf r;
    unsigned etrn;

    memset(d, 0, sizeof(*d));
    if (k->mv_size == 0 || k->mv_size >= sizeof(d->name) || memchr(k->mv_data, 0, k->mv_size))
        return false;
    memcpy(d->name, k->mv_data, k->mv_size);
    store_rb_init(&r, v);
    if (!store_rb_version(&r))
        return false;
    store_rb_str(&r, d->site, sizeof(d->site));
    etrn = store_rb_u8(&r);
    d->etrn_enabled = etrn != 0;
    store_rb_str(&r, d->route, sizeof(d->route));
    d->hold_time = (int64_t)store_rb_u64(&r);
    d->delay_warning = (int64_t)store_rb_u64(&r);
    d->max_queue = store_rb_u64(&r);
    d->created = (int64_t)store_rb_u64(&r);
    return store_rb_end(&r) && etrn <= 1;
}

/* store_domain_load - read one domain (name already lower case). */
int store_domain_load(struct store_tx *tx, const char *name, struct store_domain *d)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = store_tx_get(tx, STORE_DB_DOMAINS, name, k.mv_size, &v);

    if (rc != STORE_OK)
        return rc;
    if (!store_domain_decode(&k, &v, d)) {
        store_set_error(tx->st, "domain record %.100s corrupt", name);
        return STORE_CORRUPT;
    }
    return STORE_OK;
}

/* store_domain_lower_bound - lower a meta bound to v when v is an override. */
static int store_domain_lower_bound(struct store_tx *tx, const char *key, int64_t v)
{
    uint64_t cur;
    bool found;
    int rc;

    if (v <= 0)
        return STORE_OK; /* -1 = default, 0 = never: no earlier deadline */
    if ((rc = store_meta_u64_get(tx, key, &cur, &found)) != STORE_OK)
        return rc;
    if (found && cur <= (uint64_t)v)
        return STORE_OK;
    return store_meta_u64_put(tx, key, (uint64_t)v);
}

struct store_domain_job {
    struct store_domain d;
    bool create_only;
    struct store_domain *out;
};

/* store_domain_put_tx - create or replace a domain record. */
static int store_domain_put_tx(struct store_tx *tx, void *arg)
{
    struct store_domain_job *j = arg;
    struct store_domain old;
    struct store_wbuf w;
    int rc = store_domain_load(tx, j->d.name, &old);

    if (rc == STORE_OK && j->create_only)
        return STORE_EXISTS;
    if (rc != STORE_OK && rc != STORE_NOTFOUND && rc != STORE_CORRUPT)
        return rc;
    if (rc == STORE_OK && j->d.created == 0)
        j->d.created = old.created;
    if (j->d.created == 0)
        j->d.created = (int64_t)store_now();
    if ((rc = store_domain_lower_bound(tx, STORE_META_MIN_HOLD, j->d.hold_time)) != STORE_OK ||
        (rc = store_domain_lower_bound(tx, STORE_META_MIN_WARN, j->d.delay_warning)) != STORE_OK)
        return rc;
    store_wb_init(&w);
    store_domain_encode(&w, &j->d);
    rc = w.oom ? STORE_IO
               : store_tx_put(tx, STORE_DB_DOMAINS, j->d.name, strlen(j->d.name), w.p, w.len, 0);
    store_wb_free(&w);
    return rc;
}

/* store_domain_put - create (create_only) or create/replace a held domain. */
int store_domain_put(struct store *st, const struct store_domain *d, bool create_only)
{
    struct store_domain_job j = {.create_only = create_only};

    if (d == NULL || store_name_check(d->name, STORE_DOMAIN_MAX) != STORE_OK ||
        memchr(d->site, 0, sizeof(d->site)) == NULL ||
        memchr(d->route, 0, sizeof(d->route)) == NULL || d->hold_time < -1 || d->delay_warning < -1)
        return STORE_INVAL;
    j.d = *d;
    store_lower(j.d.name, d->name, sizeof(j.d.name));
    return store_txn_run(st, true, store_domain_put_tx, &j);
}

/* store_domain_get_tx - read one domain. */
static int store_domain_get_tx(struct store_tx *tx, void *arg)
{
    struct store_domain_job *j = arg;

    return store_domain_load(tx, j->d.name, j->out);
}

/* store_domain_get - read a held domain (name case-insensitive). */
int store_domain_get(struct store *st, const char *name, struct store_domain *out)
{
    struct store_domain_job j = {.out = out};

    if (store_name_check(name, STORE_DOMAIN_MAX) != STORE_OK)
        return STORE_INVAL;
    store_lower(j.d.name, name, sizeof(j.d.name));
    return store_txn_run(st, false, store_domain_get_tx, &j);
}

/* store_domain_del_tx - delete unless the domain still holds mail. */
static int store_domain_del_tx(struct store_tx *tx, void *arg)
{
    struct store_domain_job *j = arg;
    char rk[STORE_RKEY_MAX];
    size_t rl = store_domain_rkey(j->d.name, rk);
    MDB_val v;
    int rc = store_tx_get(tx, STORE_DB_BY_DOMAIN, rk, rl, &v);

    if (rc == STORE_OK)
        return STORE_NOTEMPTY;
    if (rc != STORE_NOTFOUND)
        return rc;
    return store_tx_del(tx, STORE_DB_DOMAINS, j->d.name, strlen(j->d.name), NULL, 0);
}

/* store_domain_del - delete a held domain; STORE_NOTEMPTY while mail is held. */
int store_domain_del(struct store *st, const char *name)
{
    struct store_domain_job j = {0};

    if (store_name_check(name, STORE_DOMAIN_MAX) != STORE_OK)
        return STORE_INVAL;
    store_lower(j.d.name, name, sizeof(j.d.name));
    return store_txn_run(st, true, store_domain_del_tx, &j);
}

/* store_domain_decode_any - store_domain_decode() for store_scan_names(). */
static bool store_domain_decode_any(const MDB_val *k, const MDB_val *v, void *elem)
{
    return store_domain_decode(k, v, elem);
}

static const struct store_scan_ops store_domain_scan = {
    .db = STORE_DB_DOMAINS,
    .what = "domain",
    .elem_size = sizeof(struct store_domain),
    .name_off = offsetof(struct store_domain, name),
    .batch = STORE_DOMAIN_BATCH,
    .decode = store_domain_decode_any,
};

struct store_domain_visit {
    int (*cb)(const struct store_domain *d, void *arg);
    void *arg;
};

/* store_domain_visit - hand one scanned record to the caller's typed callback. */
static int store_domain_visit(const void *elem, void *arg)
{
    struct store_domain_visit *vis = arg;

    return vis->cb(elem, vis->arg);
}

/* store_domain_iter - every domain in name order; cb returns non-zero to stop. */
int store_domain_iter(struct store *st, int (*cb)(const struct store_domain *d, void *arg),
                      void *arg)
{
    struct store_domain_visit vis = {cb, arg};

    return store_scan_names(st, &store_domain_scan, store_domain_visit, &vis);
}
