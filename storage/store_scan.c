/*
 * store_scan.c - batched walk of a name-keyed sub-database (store_scan.h).
 *
 * The walk owns one heap array of ops->batch decoded records.  Each read
 * transaction first releases the previous batch, positions at the first
 * key after the last name seen (MDB_SET_RANGE, skipping an exact match),
 * and decodes up to ops->batch records.  On any error the partial batch is
 * released inside the transaction callback, so nothing leaks when
 * store_txn_run() retries or gives up.
 */
#include "store_scan.h"

#include <stdlib.h>
#include <string.h>

struct store_scan {
    const struct store_scan_ops *ops;
    char after[STORE_SCAN_NAME_MAX]; /* last name seen ("" = start) */
    unsigned char *batch;            /* ops->batch records of ops->elem_size */
    size_t n;                        /* decoded records in batch */
    bool done;                       /* the last batch reached the end */
};

/* store_scan_elem - the i-th record of the batch. */
static void *store_scan_elem(const struct store_scan *sc, size_t i)
{
    return sc->batch + i * sc->ops->elem_size;
}

/* store_scan_release - release what the batch's records own; empty it. */
static void store_scan_release(struct store_scan *sc)
{
    if (sc->ops->release != NULL)
        for (size_t i = 0; i < sc->n; i++)
            sc->ops->release(store_scan_elem(sc, i));
    sc->n = 0;
}

/* store_scan_remember - copy the last record's name into sc->after. */
static void store_scan_remember(struct store_scan *sc)
{
    const char *name = (const char *)store_scan_elem(sc, sc->n - 1) + sc->ops->name_off;
    size_t len = strnlen(name, sizeof(sc->after) - 1);

    memcpy(sc->after, name, len);
    sc->after[len] = '\0';
}

/* store_scan_first - position cur at the first key after sc->after. */
static int store_scan_first(struct store_scan *sc, MDB_cursor *cur, MDB_val *k, MDB_val *v)
{
    size_t alen = strlen(sc->after);
    int mrc;

    k->mv_size = alen;
    k->mv_data = sc->after;
    mrc = alen ? mdb_cursor_get(cur, k, v, MDB_SET_RANGE) : mdb_cursor_get(cur, k, v, MDB_FIRST);
    if (mrc == 0 && k->mv_size == alen && memcmp(k->mv_data, sc->after, alen) == 0)
        mrc = mdb_cursor_get(cur, k, v, MDB_NEXT);
    return mrc;
}

/* store_scan_tx - read the next batch after sc->after. */
static int store_scan_tx(struct store_tx *tx, void *arg)
{
    struct store_scan *sc = arg;
    const struct store_scan_ops *ops = sc->ops;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = store_tx_cursor(tx, ops->db, &cur), mrc;

    store_scan_release(sc);
    if (rc != STORE_OK)
        return rc;
    for (mrc = store_scan_first(sc, cur, &k, &v); mrc == 0 && sc->n < ops->batch;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!ops->decode(&k, &v, store_scan_elem(sc, sc->n))) {
            store_set_error(tx->st, "%s record corrupt", ops->what);
            rc = STORE_CORRUPT;
            break;
        }
        sc->n++;
    }
    mdb_cursor_close(cur);
    sc->done = mrc == MDB_NOTFOUND;
    if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = store_tx_rc(tx, mrc, ops->what);
    if (rc != STORE_OK)
        store_scan_release(sc);
    else if (sc->n)
        store_scan_remember(sc);
    return rc;
}

/* store_scan_names - every record of ops->db in key order, in batches. */
int store_scan_names(struct store *st, const struct store_scan_ops *ops,
                     int (*visit)(const void *elem, void *arg), void *arg)
{
    struct store_scan sc = {.ops = ops};
    int rc = STORE_OK, stop = 0;

    if ((sc.batch = calloc(ops->batch, ops->elem_size)) == NULL)
        return STORE_IO;
    while (rc == STORE_OK && !stop && !sc.done) {
        rc = store_txn_run(st, false, store_scan_tx, &sc);
        for (size_t i = 0; rc == STORE_OK && !stop && i < sc.n; i++)
            stop = visit(store_scan_elem(&sc, i), arg);
        if (sc.n == 0)
            break;
    }
    store_scan_release(&sc);
    free(sc.batch);
    return rc;
}
