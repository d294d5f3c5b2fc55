/*
 * store_env.c - opening and closing the LMDB environment, environment
 * information and stale reader cleanup.
 *
 * One struct store per process, opened after fork().  store_open() creates
 * the directory, sets the map size, reader and sub-database limits, opens
 * every sub-database and validates (or writes) the schema record in one
 * transaction.  The map size in use may be larger than opts.map_size when
 * the environment was grown earlier (by us or another process): LMDB keeps
 * the larger size, and so does st->map_size.
 */
#include "store_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STORE_DEF_MAP     (64ull << 20)
#define STORE_DEF_MAP_MAX (8ull << 30)
#define STORE_DEF_READERS 126u

/* store_open_tx - open the sub-databases and check the schema. */
static int store_open_tx(struct store_tx *tx, void *arg)
{
    int rc = store_schema_open_dbis(tx);

    (void)arg;
    if (rc != STORE_OK)
        return rc;
    return store_schema_check(tx);
}

/* store_env_create - create and configure the LMDB environment. */
static int store_env_create(struct store *st, const struct store_opts *opts)
{
    int rc;
    MDB_envinfo ei;

    if ((rc = mdb_env_create(&st->env)) != 0)
        goto fail;
    if ((rc = mdb_env_set_maxdbs(st->env, STORE_DB_COUNT + 2)) != 0 ||
        (rc = mdb_env_set_maxreaders(st->env, st->max_readers)) != 0 ||
        (rc = mdb_env_set_mapsize(st->env, (size_t)st->map_size)) != 0)
        goto fail;
    if (!opts->readonly && mkdir(opts->dir, 0700) != 0 && errno != EEXIST) {
        rc = errno;
        goto fail;
    }
    rc = mdb_env_open(st->env, opts->dir, opts->readonly ? MDB_RDONLY : 0, 0600);
    if (rc != 0)
        goto fail;
    if (mdb_env_info(st->env, &ei) == 0 && ei.me_mapsize > st->map_size)
        st->map_size = ei.me_mapsize;
    return STORE_OK;
fail:
    store_set_error(st, "open queue %s: %s", opts->dir, mdb_strerror(rc));
    return rc == MDB_VERSION_MISMATCH || rc == MDB_INVALID ? STORE_CORRUPT : STORE_IO;
}

/* store_open - open (creating and initialising when empty) the environment. */
int store_open(struct store **out, const struct store_opts *opts, char *err, size_t errlen)
{
    struct store *st;
    int rc;

    *out = NULL;
    if (opts == NULL || opts->dir == NULL || opts->dir[0] == '\0') {
        snprintf(err, errlen, "no queue directory given");
        return STORE_INVAL;
    }
    if ((st = calloc(1, sizeof(*st))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return STORE_IO;
    }
    st->map_size = opts->map_size ? opts->map_size : STORE_DEF_MAP;
    st->map_size_max = opts->map_size_max ? opts->map_size_max : STORE_DEF_MAP_MAX;
    if (st->map_size_max < st->map_size)
        st->map_size_max = st->map_size;
    st->max_readers = opts->max_readers ? opts->max_readers : STORE_DEF_READERS;
    st->readonly = opts->readonly;
    rc = store_env_create(st, opts);
    if (rc == STORE_OK) {
        st->readonly = false; /* the open transaction may need to write */
        rc = store_txn_run(st, !opts->readonly, store_open_tx, NULL);
        st->readonly = opts->readonly;
    }
    if (rc != STORE_OK) {
        snprintf(err, errlen, "%s", st->errbuf[0] ? st->errbuf : store_strerror(rc));
        store_close(st);
        return rc;
    }
    *out = st;
    return STORE_OK;
}

/* store_close - close the environment and free the handle. */
void store_close(struct store *st)
{
    if (st == NULL)
        return;
    if (st->env)
        mdb_env_close(st->env);
    free(st);
}

/* store_last_error - detail of the last error in this handle. */
const char *store_last_error(const struct store *st)
{
    return st->errbuf[0] ? st->errbuf : "no error";
}

/* store_env_info - map size, use and reader slots. */
int store_env_info(struct store *st, struct store_envinfo *out)
{
    MDB_envinfo ei;
    MDB_stat ms;
    int rc;

    if ((rc = mdb_env_info(st->env, &ei)) != 0 || (rc = mdb_env_stat(st->env, &ms)) != 0) {
        store_set_error(st, "env info: %s", mdb_strerror(rc));
        return STORE_IO;
    }
    out->map_size = ei.me_mapsize;
    out->map_used = ((uint64_t)ei.me_last_pgno + 1) * ms.ms_psize;
    out->map_size_max = st->map_size_max;
    out->readers = ei.me_numreaders;
    out->max_readers = ei.me_maxreaders;
    return STORE_OK;
}

/* store_reader_check - clear reader slots of dead processes. */
int store_reader_check(struct store *st, int *cleared)
{
    int dead = 0, rc = mdb_reader_check(st->env, &dead);

    if (cleared)
        *cleared = dead;
    if (rc != 0) {
        store_set_error(st, "reader check: %s", mdb_strerror(rc));
        return STORE_IO;
    }
    return STORE_OK;
}

struct store_poke {
    int db;
    const void *k, *v;
    size_t kl, vl;
};

/* store_debug_put_tx - the raw write of store_debug_put. */
static int store_debug_put_tx(struct store_tx *tx, void *arg)
{
    struct store_poke *p = arg;

    if (p->v == NULL)
        return store_tx_del(tx, p->db, p->k, p->kl, NULL, 0);
    return store_tx_put(tx, p->db, p->k, p->kl, p->v, p->vl, 0);
}

/* store_debug_put - write (or delete when val is NULL) a raw record: tests only. */
int store_debug_put(struct store *st, const char *db, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
    struct store_poke p = {.k = key, .kl = klen, .v = val, .vl = vlen, .db = -1};

    for (int i = 0; i < STORE_DB_COUNT; i++)
        if (strcmp(store_dbdefs[i].name, db) == 0)
            p.db = i;
    if (p.db < 0 || klen == 0)
        return STORE_INVAL;
    return store_txn_run(st, true, store_debug_put_tx, &p);
}
