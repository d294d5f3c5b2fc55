/*
 * store_txn.c - the single place where LMDB transactions begin, commit and
 * abort, plus thin get/put/del wrappers that map LMDB codes to statuses.
 *
 * store_txn_run() runs a callback inside one transaction and hides LMDB's
 * recoverable conditions (in the spirit of Postfix's slmdb):
 *  - MDB_MAP_FULL (from any call or the commit): abort, double the map up
 *    to map_size_max with mdb_env_set_mapsize() and run the callback again
 *    from scratch; at the limit the result is STORE_FULL and nothing of the
 *    transaction is kept;
 *  - MDB_MAP_RESIZED (another process grew the map): adopt its size with
 *    mdb_env_set_mapsize(env, 0) and retry;
 *  - MDB_READERS_FULL: clear stale reader slots (or wait 10 ms) and retry.
 * Retries are bounded.  Callbacks must therefore be idempotent up to the
 * point where they return, which they are because all their effects are in
 * the aborted transaction.  No transaction outlives store_txn_run().
 */
#include "store_private.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STORE_TXN_RETRIES 40

/* store_set_error - remember a (sanitised) sentence for store_last_error(). */
void store_set_error(struct store *st, const char *fmt, ...)
{
    char raw[sizeof(st->errbuf)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    /* names in the text may come from peers: callers log this string */
    log_printable(st->errbuf, sizeof(st->errbuf), raw, strlen(raw));
}

/* store_now - the current time in seconds. */
uint64_t store_now(void)
{
    return (uint64_t)time(NULL);
}

/*
 * store_tx_rc - map an LMDB result to a status, remembering MAP_FULL so the
 * runner can grow the map.  what names the operation for store_last_error.
 */
int store_tx_rc(struct store_tx *tx, int rc, const char *what)
{
    if (rc == 0)
        return STORE_OK;
    if (rc == MDB_NOTFOUND)
        return STORE_NOTFOUND;
    tx->mdb_rc = rc;
    if (rc == MDB_MAP_FULL || rc == ENOSPC) {
        tx->map_full = rc == MDB_MAP_FULL;
        store_set_error(tx->st, "%s: %s", what, mdb_strerror(rc));
        return STORE_FULL;
    }
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_BAD_VALSIZE)
        return store_set_error(tx->st, "%s: %s", what, mdb_strerror(rc)), STORE_CORRUPT;
    store_set_error(tx->st, "%s: %s", what, mdb_strerror(rc));
    return STORE_IO;
}

/* store_txn_adopt_size - take over a map size set by another process. */
static void store_txn_adopt_size(struct store *st)
{
    MDB_envinfo ei;

    if (mdb_env_set_mapsize(st->env, 0) == 0 && mdb_env_info(st->env, &ei) == 0)
        st->map_size = ei.me_mapsize;
}

/*
 * store_txn_grow - double the map after MDB_MAP_FULL (bounded by the
 * maximum); false at the limit.  Called with no transaction open.  (Not
 * adopting the size recorded on disk first: until our grown size is
 * committed that record is smaller than our map and would shrink it.)
 */
static bool store_txn_grow(struct store *st)
{
    uint64_t next;
    int rc;

    if (st->map_size >= st->map_size_max)
        return false;
    next = st->map_size * 2;
    if (next > st->map_size_max || next < st->map_size)
        next = st->map_size_max;
    if ((rc = mdb_env_set_mapsize(st->env, (size_t)next)) != 0) {
        store_set_error(st, "grow map to %llu bytes: %s", (unsigned long long)next,
                        mdb_strerror(rc));
        return false;
    }
    st->map_size = next;
    return true;
}

/* store_txn_begin - begin a transaction; LMDB code. */
static int store_txn_begin(struct store *st, bool write, MDB_txn **txn)
{
    int rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, txn);
    int dead;

    if (rc == MDB_MAP_RESIZED)
        store_txn_adopt_size(st);
    else if (rc == MDB_READERS_FULL && mdb_reader_check(st->env, &dead) == 0 && dead == 0)
        usleep(10000); /* every slot is in use by a live reader: give it time */
    return rc;
}

/* store_txn_once - one attempt; returns a status, *retry when worth retrying. */
static int store_txn_once(struct store *st, bool write, store_tx_fn fn, void *arg, bool *retry)
{
    struct store_tx tx = {.st = st, .write = write};
    int rc, status;

    *retry = false;
    if ((rc = store_txn_begin(st, write, &tx.txn)) != 0) {
        *retry = rc == MDB_MAP_RESIZED || rc == MDB_READERS_FULL;
        return store_tx_rc(&tx, rc, "begin transaction");
    }
    status = fn(&tx, arg);
    if (status != STORE_OK || tx.map_full) {
        mdb_txn_abort(tx.txn);
        if (tx.map_full)
            *retry = store_txn_grow(st);
        return tx.map_full ? STORE_FULL : status;
    }
    /* commit also ends a read-only txn and keeps DB handles it opened */
    if ((rc = mdb_txn_commit(tx.txn)) != 0) {
        status = store_tx_rc(&tx, rc, "commit");
        if (tx.map_full)
            *retry = store_txn_grow(st);
    }
    return status;
}

/* store_txn_run - run fn in a (write) transaction with the retries above. */
int store_txn_run(struct store *st, bool write, store_tx_fn fn, void *arg)
{
    int status = STORE_IO;
    bool retry = true;

    if (write && st->readonly) {
        store_set_error(st, "queue opened read-only");
        return STORE_INVAL;
    }
    for (int i = 0; i < STORE_TXN_RETRIES && retry; i++)
        status = store_txn_once(st, write, fn, arg, &retry);
    return status;
}

/* store_tx_child - begin a nested write transaction (for per-message rollback). */
int store_tx_child(struct store_tx *tx, struct store_tx *child)
{
    int rc;

    *child = (struct store_tx){.st = tx->st, .write = true};
    rc = mdb_txn_begin(tx->st->env, tx->txn, 0, &child->txn);
    return store_tx_rc(tx, rc, "begin nested transaction");
}

/* store_tx_child_end - commit or abort a nested transaction. */
int store_tx_child_end(struct store_tx *child, bool commit)
{
    int rc;

    if (!commit || child->map_full) {
        mdb_txn_abort(child->txn);
        return STORE_OK;
    }
    rc = mdb_txn_commit(child->txn);
    return store_tx_rc(child, rc, "commit nested transaction");
}

/* store_tx_get - look up a key; STORE_NOTFOUND when absent. */
int store_tx_get(struct store_tx *tx, int db, const void *k, size_t kl, MDB_val *v)
{
    MDB_val key = {kl, (void *)k};

    return store_tx_rc(tx, mdb_get(tx->txn, tx->st->dbi[db], &key, v), store_dbdefs[db].name);
}

/* store_tx_put - store a key/value pair. */
int store_tx_put(struct store_tx *tx, int db, const void *k, size_t kl, const void *v, size_t vl,
                 unsigned flags)
{
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    int rc = mdb_put(tx->txn, tx->st->dbi[db], &key, &val, flags);

    if (rc == MDB_KEYEXIST)
        return STORE_EXISTS;
    return store_tx_rc(tx, rc, store_dbdefs[db].name);
}

/* store_tx_del - delete a key (or one duplicate when v != NULL). */
int store_tx_del(struct store_tx *tx, int db, const void *k, size_t kl, const void *v, size_t vl)
{
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};

    return store_tx_rc(tx, mdb_del(tx->txn, tx->st->dbi[db], &key, v ? &val : NULL),
                       store_dbdefs[db].name);
}

/* store_tx_cursor - open a cursor (closed by the caller before returning). */
int store_tx_cursor(struct store_tx *tx, int db, MDB_cursor **cur)
{
    return store_tx_rc(tx, mdb_cursor_open(tx->txn, tx->st->dbi[db], cur), "cursor");
}
