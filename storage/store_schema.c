/*
 * store_schema.c - the queue schema as code: the fixed table of LMDB
 * sub-databases and the schema version record.
 *
 * Schema (version 1).  All numeric keys are fixed-width big-endian so that
 * LMDB's memcmp order is numeric order.  Every record value begins with a
 * version byte (STORE_REC_VERSION) and is decoded by store_codec.c, which
 * rejects short, long or otherwise malformed records with STORE_CORRUPT.
 *
 *   meta       "schema"      -> version byte, u32 schema version
 *              "next_msgid"  -> version byte, u64 next message id (monotonic)
 *              "min_hold", "min_warn" -> version byte, u64: lower bounds of
 *                               the per-domain hold_time / delay_warning
 *                               overrides ever set (see store_notes.c)
 *   msg        msgid(8)      -> envelope: flags, arrival, size, body type,
 *                               RET, nrcpts, npending (held+leased rcpts),
 *                               site, sender, ENVID, client addr and HELO
 *   body       msgid(8) chunk(4) -> raw bytes, STORE_CHUNK_SIZE per chunk,
 *                               written with MDB_RESERVE
 *   rcpt       msgid(8) idx(4) -> recipient: state, NOTIFY, delay_warned,
 *                               attempts, last attempt, lease pid / start
 *                               token / expiry, address, domain, ORCPT,
 *                               last reply
 *   by_domain  reversed domain ("com.example.") -> msgid(8) idx(4)
 *              DUPSORT|DUPFIXED; one entry per *pending* (held or leased)
 *              recipient.  Duplicates sort by msgid, i.e. by age, so a
 *              domain's mail is an MDB_SET/MDB_NEXT_DUP walk, its oldest
 *              message is the first duplicate, and "domain plus subdomains"
 *              is a key-prefix range walk ("com.example.sub." sorts right
 *              after "com.example.", and "com.examplex." is not a prefix).
 *   by_site    site name -> msgid(8) DUPSORT|DUPFIXED; messages with at
 *              least one pending recipient
 *   domains    domain name -> domain record (site, route, hold time, ...)
 *   accounts   account name -> account record (domain list)
 *   sites      site name -> site record (runtime flags)
 *   counters   'd' domain | 's' site -> messages, bytes.  A message counts
 *              for a domain while it has a pending recipient in it, for a
 *              site while it has any pending recipient.  Changed in the same
 *              transaction as the records; "oldest" comes from the first
 *              duplicate of by_domain / by_site.
 *   leases     owner pid(4) start(8) -> msgid(8) idx(4) DUPSORT|DUPFIXED;
 *              lets renew/release/recover touch only leased recipients
 *   notes      msgid(8) kind(1) -> note: list of u32 recipient indexes.  A
 *              message with a pending note is kept after all recipients are
 *              final, so the DSN can still be built from it.
 *
 * A message is removed (envelope, body, recipients, index entries) in the
 * transaction in which its last recipient becomes final and no note is
 * pending, or in which its last note is marked done.
 */
#include "store_private.h"

#include <string.h>

const struct store_dbdef store_dbdefs[STORE_DB_COUNT] = {
    [STORE_DB_META] = {"meta", 0},
    [STORE_DB_MSG] = {"msg", 0},
    [STORE_DB_BODY] = {"body", 0},
    [STORE_DB_RCPT] = {"rcpt", 0},
    [STORE_DB_BY_DOMAIN] = {"by_domain", MDB_DUPSORT | MDB_DUPFIXED},
    [STORE_DB_BY_SITE] = {"by_site", MDB_DUPSORT | MDB_DUPFIXED},
    [STORE_DB_DOMAINS] = {"domains", 0},
    [STORE_DB_ACCOUNTS] = {"accounts", 0},
    [STORE_DB_SITES] = {"sites", 0},
    [STORE_DB_COUNTERS] = {"counters", 0},
    [STORE_DB_LEASES] = {"leases", MDB_DUPSORT | MDB_DUPFIXED},
    [STORE_DB_NOTES] = {"notes", 0},
};

#define STORE_META_SCHEMA "schema"

/* store_schema_version - the schema version this code writes. */
unsigned store_schema_version(void)
{
    return STORE_SCHEMA_VERSION;
}

/* store_schema_open_dbis - open (or create) every sub-database. */
int store_schema_open_dbis(struct store_tx *tx)
{
    for (int i = 0; i < STORE_DB_COUNT; i++) {
        unsigned flags = store_dbdefs[i].flags | (tx->write ? MDB_CREATE : 0);
        int rc = mdb_dbi_open(tx->txn, store_dbdefs[i].name, flags, &tx->st->dbi[i]);

        if (rc == MDB_NOTFOUND) {
            store_set_error(tx->st, "sub-database %s missing (queue not initialised?)",
                            store_dbdefs[i].name);
            return STORE_IO;
        }
        if (rc != 0)
            return store_tx_rc(tx, rc, store_dbdefs[i].name);
    }
    return STORE_OK;
}

/* store_schema_write - store our schema version record. */
static int store_schema_write(struct store_tx *tx)
{
    struct store_wbuf w;
    int rc;

    store_wb_init(&w);
    store_wb_u8(&w, STORE_REC_VERSION);
    store_wb_u32(&w, STORE_SCHEMA_VERSION);
    rc = w.oom ? STORE_IO
               : store_tx_put(tx, STORE_DB_META, STORE_META_SCHEMA, strlen(STORE_META_SCHEMA), w.p,
                              w.len, 0);
    store_wb_free(&w);
    return rc;
}

/* store_schema_empty - true when no message was ever stored. */
static int store_schema_empty(struct store_tx *tx, bool *empty)
{
    MDB_stat ms;
    int rc = mdb_stat(tx->txn, tx->st->dbi[STORE_DB_MSG], &ms);

    if (rc != 0)
        return store_tx_rc(tx, rc, "stat msg");
    *empty = ms.ms_entries == 0;
    return STORE_OK;
}

/* store_schema_check - validate the schema record; initialise an empty env. */
int store_schema_check(struct store_tx *tx)
{
    MDB_val v;
    struct store_rbuf r;
    uint32_t version;
    bool empty = false;
    int rc = store_tx_get(tx, STORE_DB_META, STORE_META_SCHEMA, strlen(STORE_META_SCHEMA), &v);

    if (rc == STORE_NOTFOUND) {
        if ((rc = store_schema_empty(tx, &empty)) != STORE_OK)
            return rc;
        if (!empty) {
            store_set_error(tx->st, "queue holds messages but has no schema record");
            return STORE_CORRUPT;
        }
        if (!tx->write) {
            store_set_error(tx->st, "queue not initialised (open it read-write once)");
            return STORE_IO;
        }
        return store_schema_write(tx);
    }
    if (rc != STORE_OK)
        return rc;
    store_rb_init(&r, &v);
    if (!store_rb_version(&r) || (version = store_rb_u32(&r), !store_rb_end(&r))) {
        store_set_error(tx->st, "schema record cannot be decoded");
        return STORE_CORRUPT;
    }
    if (version > STORE_SCHEMA_VERSION) {
        store_set_error(tx->st,
                        "queue schema version %u is newer than this holdmx (%u): "
                        "run a newer holdmx or restore a matching queue",
                        (unsigned)version, STORE_SCHEMA_VERSION);
        return STORE_VERSION;
    }
    return STORE_OK;
}

/* store_meta_u64_get - a u64 meta record; *found false when absent. */
int store_meta_u64_get(struct store_tx *tx, const char *key, uint64_t *v, bool *found)
{
    MDB_val val;
    struct store_rbuf r;
    int rc = store_tx_get(tx, STORE_DB_META, key, strlen(key), &val);

    *v = 0;
    *found = rc == STORE_OK;
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    store_rb_init(&r, &val);
    if (store_rb_version(&r))
        *v = store_rb_u64(&r);
    if (!store_rb_end(&r)) {
        store_set_error(tx->st, "meta record %s corrupt", key);
        return STORE_CORRUPT;
    }
    return STORE_OK;
}

/* store_meta_u64_put - store a u64 meta record. */
int store_meta_u64_put(struct store_tx *tx, const char *key, uint64_t v)
{
    struct store_wbuf w;
    int rc;

    store_wb_init(&w);
    store_wb_u8(&w, STORE_REC_VERSION);
    store_wb_u64(&w, v);
    rc = w.oom ? STORE_IO : store_tx_put(tx, STORE_DB_META, key, strlen(key), w.p, w.len, 0);
    store_wb_free(&w);
    return rc;
}
