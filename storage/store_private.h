/*
 * store_private.h - internals shared by the storage/ files; never included
 * outside storage/ (it pulls in lmdb.h).
 *
 * struct store is the per-process handle: the LMDB environment, the fixed
 * table of sub-database handles (see store_schema.c for the schema prose),
 * the current and maximum map size and the last error text.  Transactions
 * are only begun, committed and aborted by store_txn_run() (store_txn.c);
 * every other file writes callbacks that receive a struct store_tx.
 */
#ifndef HM_STORE_PRIVATE_H
#define HM_STORE_PRIVATE_H

#include "store.h"

#include "log.h"

#include <lmdb.h>

#if MDB_VERSION_MAJOR == 0 && MDB_VERSION_MINOR == 9 && MDB_VERSION_PATCH < 14
#error "holdmx needs LMDB 0.9.14 or newer"
#endif

/* Sub-databases: the schema as code (names in store_schema.c). */
enum store_dbi {
    STORE_DB_META,      /* "schema" -> version record; "next_msgid" -> u64 */
    STORE_DB_MSG,       /* msgid -> envelope record */
    STORE_DB_BODY,      /* msgid + chunk number -> raw body bytes */
    STORE_DB_RCPT,      /* msgid + idx -> recipient record */
    STORE_DB_BY_DOMAIN, /* reversed domain -> msgid + idx (pending rcpts) */
    STORE_DB_BY_SITE,   /* site -> msgid (messages with pending rcpts) */
    STORE_DB_DOMAINS,   /* domain name -> domain record */
    STORE_DB_ACCOUNTS,  /* account name -> account record */
    STORE_DB_SITES,     /* site name -> site flags record */
    STORE_DB_COUNTERS,  /* 'd'|'s' + name -> counters record */
    STORE_DB_LEASES,    /* owner (pid + start) -> msgid + idx */
    STORE_DB_NOTES,     /* msgid + kind -> note record (rcpt idx list) */
    STORE_DB_COUNT
};

struct store_dbdef {
    const char *name;
    unsigned flags; /* MDB_DUPSORT etc., without MDB_CREATE */
};
extern const struct store_dbdef store_dbdefs[STORE_DB_COUNT];

#define STORE_SCHEMA_VERSION 1u
#define STORE_REC_VERSION    1u           /* first byte of every record */
#define STORE_CHUNK_SIZE     (64u * 1024) /* body chunk */
#define STORE_RKEY_MAX       (STORE_DOMAIN_MAX + 2)

struct store {
    MDB_env *env;
    MDB_dbi dbi[STORE_DB_COUNT];
    uint64_t map_size;
    uint64_t map_size_max;
    unsigned max_readers;
    bool readonly;
    char errbuf[256];
};

/* One running transaction, as seen by a store_txn_run() callback. */
struct store_tx {
    struct store *st;
    MDB_txn *txn;
    bool write;
    bool map_full; /* an LMDB call hit MDB_MAP_FULL: grow and retry */
    int mdb_rc;    /* last LMDB error seen by store_tx_rc() */
};

typedef int (*store_tx_fn)(struct store_tx *tx, void *arg);

/* store_txn.c */
int store_txn_run(struct store *st, bool write, store_tx_fn fn, void *arg);
int store_tx_rc(struct store_tx *tx, int rc, const char *what);
int store_tx_child(struct store_tx *tx, struct store_tx *child);
int store_tx_child_end(struct store_tx *child, bool commit);
void store_set_error(struct store *st, const char *fmt, ...) HM_PRINTF(2, 3);
int store_tx_get(struct store_tx *tx, int db, const void *k, size_t kl, MDB_val *v);
int store_tx_put(struct store_tx *tx, int db, const void *k, size_t kl, const void *v, size_t vl,
                 unsigned flags);
int store_tx_del(struct store_tx *tx, int db, const void *k, size_t kl, const void *v, size_t vl);
int store_tx_cursor(struct store_tx *tx, int db, MDB_cursor **cur);
uint64_t store_now(void);

/* store_schema.c */
int store_schema_open_dbis(struct store_tx *tx);
int store_schema_check(struct store_tx *tx);
int store_meta_u64_get(struct store_tx *tx, const char *key, uint64_t *v, bool *found);
int store_meta_u64_put(struct store_tx *tx, const char *key, uint64_t v);
#define STORE_META_MIN_HOLD "min_hold"
#define STORE_META_MIN_WARN "min_warn"

/* store_codec.c: versioned records and fixed-width keys */
/*
 * store_grow - arr with room for element n (capacity doubles from first);
 * *cap is updated; NULL on out of memory, arr then unchanged and valid.
 */
void *store_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first);
struct store_wbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};
struct store_rbuf {
    const uint8_t *p;
    size_t len, off;
    bool bad;
};
void store_wb_init(struct store_wbuf *w);
void store_wb_free(struct store_wbuf *w);
void store_wb_u8(struct store_wbuf *w, unsigned v);
void store_wb_u32(struct store_wbuf *w, uint32_t v);
void store_wb_u64(struct store_wbuf *w, uint64_t v);
void store_wb_str(struct store_wbuf *w, const char *s);
void store_rb_init(struct store_rbuf *r, const MDB_val *v);
unsigned store_rb_u8(struct store_rbuf *r);
uint32_t store_rb_u32(struct store_rbuf *r);
uint64_t store_rb_u64(struct store_rbuf *r);
void store_rb_str(struct store_rbuf *r, char *out, size_t outsz);
char *store_rb_strdup(struct store_rbuf *r);
bool store_rb_version(struct store_rbuf *r);
bool store_rb_end(struct store_rbuf *r);
void store_be64(uint8_t *p, uint64_t v);
uint64_t store_get_be64(const uint8_t *p);
void store_be32(uint8_t *p, uint32_t v);
uint32_t store_get_be32(const uint8_t *p);
#define STORE_RKEY_LEN 12 /* msgid + idx */
void store_rkey(uint8_t k[STORE_RKEY_LEN], store_msgid_t id, uint32_t idx);
size_t store_domain_rkey(const char *domain, char out[STORE_RKEY_MAX]);
int store_name_check(const char *s, size_t max);
void store_lower(char *dst, const char *src, size_t dstsz);

/* Internal recipient record: the public info plus the lease start token. */
struct store_rcpt_rec {
    struct store_rcpt_info i;
    uint64_t lease_start;
};
/* Internal envelope: public info plus the pending recipient count. */
struct store_msg_rec {
    struct store_msg_info i;
    uint32_t npending;
};
bool store_msg_decode_val(const MDB_val *v, store_msgid_t id, struct store_msg_rec *m);
int store_msg_load(struct store_tx *tx, store_msgid_t id, struct store_msg_rec *m);
int store_msg_save(struct store_tx *tx, const struct store_msg_rec *m);
int store_rcpt_load(struct store_tx *tx, store_msgid_t id, uint32_t idx, struct store_rcpt_rec *r);
int store_rcpt_save(struct store_tx *tx, const struct store_rcpt_rec *r);
int store_rcpts_load(struct store_tx *tx, const struct store_msg_rec *m,
                     struct store_rcpt_info **out, size_t *n);
int store_msg_remove(struct store_tx *tx, store_msgid_t id);
int store_msg_maybe_done(struct store_tx *tx, store_msgid_t id);

/* store_counters.c */
int store_counter_add(struct store_tx *tx, char kind, const char *name, int64_t dmsgs,
                      int64_t dbytes);
int store_counter_get(struct store_tx *tx, char kind, const char *name, uint64_t *msgs,
                      uint64_t *bytes);
int store_rcpt_finalise(struct store_tx *tx, struct store_msg_rec *m, struct store_rcpt_rec *r,
                        int state);
int store_index_add(struct store_tx *tx, const struct store_rcpt_rec *r);
/* One by_domain entry (msgid + idx); setting *stop_key skips the rest of its key. */
typedef int (*store_index_fn)(struct store_tx *tx, const uint8_t *v, bool *stop_key, void *arg);
int store_index_walk(struct store_tx *tx, const char *rk, size_t rl, bool subdomains,
                     store_index_fn fn, void *arg);

/* store_rcpt.c */
int store_rcpt_enter_state(struct store_tx *tx, struct store_rcpt_rec *r, int state);
/* Liveness answers remembered for the length of one call. */
#define STORE_ALIVE_CACHE 8
struct store_alive_cache {
    pid_t pid[STORE_ALIVE_CACHE];
    uint64_t start[STORE_ALIVE_CACHE];
    bool alive[STORE_ALIVE_CACHE];
    unsigned n;
};
bool store_owner_alive(struct store_alive_cache *c, pid_t pid, uint64_t start);
bool store_lease_stale(struct store_alive_cache *c, const struct store_rcpt_rec *r, int64_t now);
bool store_lease_held_by(const struct store_rcpt_rec *r, pid_t pid, uint64_t start);
int store_lease_drop(struct store_tx *tx, const struct store_rcpt_rec *r);

/* store_domain.c */
int store_domain_load(struct store_tx *tx, const char *name, struct store_domain *d);

/* store_notes.c */
int store_note_add(struct store_tx *tx, const struct store_msg_rec *m, uint32_t idx, int kind);
int store_notes_pending(struct store_tx *tx, store_msgid_t id, bool *any);
int store_notes_remove(struct store_tx *tx, store_msgid_t id);
bool store_notify_wants(unsigned notify, int kind);
int store_rcpt_fail(struct store_tx *tx, struct store_msg_rec *m, struct store_rcpt_rec *r);

#endif
