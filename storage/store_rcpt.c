/*
 * store_rcpt.c - recipient records and leases: the recipient codec,
 * owner identity, store_claim(), store_lease_renew/release/recover().
 *
 * A lease is held in two places changed together: the recipient record
 * (state LEASED, owner pid, start token, expiry) and a leases index entry
 * owner(pid, start) -> msgid+idx, so that renewing, releasing and
 * recovering touch only leased recipients.  An owner is alive while
 * kill(pid, 0) does not fail with ESRCH and /proc/<pid>/stat still shows
 * the same start time (a recycled pid is a different owner).  Claims are
 * write transactions, and LMDB has a single writer, so two processes can
 * never lease the same recipient.
 */
#include "store_private.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STORE_OKEY_LEN 12 /* pid(4) start(8) */

/* store_rcpt_encode - the recipient record. */
static void store_rcpt_encode(struct store_wbuf *w, const struct store_rcpt_rec *r)
{
    const struct store_rcpt_info *i = &r->i;

    store_wb_u8(w, STORE_REC_VERSION);
    store_wb_u8(w, (unsigned)i->state);
    store_wb_u8(w, i->notify);
    store_wb_u8(w, i->delay_warned);
    store_wb_u32(w, i->attempts);
    store_wb_u64(w, (uint64_t)i->last_attempt);
    store_wb_u32(w, (uint32_t)i->lease_pid);
    store_wb_u64(w, r->lease_start);
    store_wb_u64(w, (uint64_t)i->lease_expiry);
    store_wb_str(w, i->addr);
    store_wb_str(w, i->domain);
    store_wb_str(w, i->orcpt);
    store_wb_str(w, i->last_reply);
}

/* store_rcpt_decode - parse a recipient record; false when malformed. */
static bool store_rcpt_decode(const MDB_val *v, store_msgid_t id, uint32_t idx,
                              struct store_rcpt_rec *r)
{
    struct store_rbuf b;
    struct store_rcpt_info *i = &r->i;
    unsigned warned;

    memset(r, 0, sizeof(*r));
    store_rb_init(&b, v);
    if (!store_rb_version(&b))
        return false;
    i->msgid = id;
    i->idx = idx;
    i->state = (int)store_rb_u8(&b);
    i->notify = store_rb_u8(&b);
    warned = store_rb_u8(&b);
    i->delay_warned = warned != 0;
    i->attempts = store_rb_u32(&b);
    i->last_attempt = (int64_t)store_rb_u64(&b);
    i->lease_pid = (pid_t)store_rb_u32(&b);
    r->lease_start = store_rb_u64(&b);
    i->lease_expiry = (int64_t)store_rb_u64(&b);
    store_rb_str(&b, i->addr, sizeof(i->addr));
    store_rb_str(&b, i->domain, sizeof(i->domain));
    store_rb_str(&b, i->orcpt, sizeof(i->orcpt));
    store_rb_str(&b, i->last_reply, sizeof(i->last_reply));
    return store_rb_end(&b) && i->state <= STORE_RCPT_FAILED && warned <= 1 && i->domain[0] != '\0';
}

/* store_rcpt_load - read and decode one recipient. */
int store_rcpt_load(struct store_tx *tx, store_msgid_t id, uint32_t idx, struct store_rcpt_rec *r)
{
    uint8_t k[STORE_RKEY_LEN];
    MDB_val v;
    int rc;

    store_rkey(k, id, idx);
    if ((rc = store_tx_get(tx, STORE_DB_RCPT, k, sizeof(k), &v)) != STORE_OK)
        return rc;
    if (!store_rcpt_decode(&v, id, idx, r)) {
        store_set_error(tx->st, "message %010llX: recipient %u record corrupt",
                        (unsigned long long)id, (unsigned)idx);
        return STORE_CORRUPT;
    }
    return STORE_OK;
}

/* store_rcpt_save - encode and store one recipient. */
int store_rcpt_save(struct store_tx *tx, const struct store_rcpt_rec *r)
{
    struct store_wbuf w;
    uint8_t k[STORE_RKEY_LEN];
    int rc;

    store_rkey(k, r->i.msgid, r->i.idx);
    store_wb_init(&w);
    store_rcpt_encode(&w, r);
    rc = w.oom ? STORE_IO : store_tx_put(tx, STORE_DB_RCPT, k, sizeof(k), w.p, w.len, 0);
    store_wb_free(&w);
    return rc;
}

/*
 * store_rcpt_enter_state - the one writer of a recipient's state.  Legal:
 * held -> leased, leased -> leased (re-lease of a dead/expired owner),
 * leased -> held, held|leased -> delivered|failed.  A final recipient never
 * changes again; an illegal transition means a damaged record or a bug and
 * gives STORE_CORRUPT without touching the record.
 */
int store_rcpt_enter_state(struct store_tx *tx, struct store_rcpt_rec *r, int state)
{
    int from = r->i.state;
    bool pending = from == STORE_RCPT_HELD || from == STORE_RCPT_LEASED;
    bool ok = pending && (state != STORE_RCPT_HELD || from == STORE_RCPT_LEASED);

    if (!ok || state < STORE_RCPT_HELD || state > STORE_RCPT_FAILED) {
        store_set_error(tx->st, "message %010llX: recipient %u: illegal state change %s -> %s",
                        (unsigned long long)r->i.msgid, (unsigned)r->i.idx,
                        store_rcpt_state_name(from), store_rcpt_state_name(state));
        return STORE_CORRUPT;
    }
    if (state != STORE_RCPT_LEASED) {
        r->i.lease_pid = 0;
        r->i.lease_expiry = 0;
        r->lease_start = 0;
    }
    r->i.state = state;
    return STORE_OK;
}

/* store_proc_start - start time of pid from /proc/<pid>/stat (0 if unknown). */
static uint64_t store_proc_start(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long start = 0;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL)
        return 0;
    /* after "pid (comm)" come fields 3..; starttime is field 22 */
    for (int field = 2; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p + 1, "%llu", &start) != 1)
        return 0;
    return start;
}

/* store_owner_self - this process's owner identity. */
void store_owner_self(struct store_owner *o)
{
    o->pid = getpid();
    o->start = store_proc_start(o->pid);
}

/* store_owner_probe - is the process (pid, start token) still running? */
static bool store_owner_probe(pid_t pid, uint64_t start)
{
    uint64_t now_start;

    if (pid <= 0)
        return false;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return false;
    now_start = store_proc_start(pid);
    return now_start == 0 || now_start == start;
}

/*
 * store_owner_alive - store_owner_probe() with a per-call cache (c may be
 * NULL), so a walk over many leases of one owner reads /proc once.
 */
bool store_owner_alive(struct store_alive_cache *c, pid_t pid, uint64_t start)
{
    bool alive;

    for (unsigned i = 0; c && i < c->n; i++)
        if (c->pid[i] == pid && c->start[i] == start)
            return c->alive[i];
    alive = store_owner_probe(pid, start);
    if (c && c->n < STORE_ALIVE_CACHE) {
        c->pid[c->n] = pid;
        c->start[c->n] = start;
        c->alive[c->n++] = alive;
    }
    return alive;
}

/*
 * store_lease_stale - has r's lease (state LEASED) run out: expired at now
 * or its owner gone?  The owner is only probed when the lease has not expired.
 */
bool store_lease_stale(struct store_alive_cache *c, const struct store_rcpt_rec *r, int64_t now)
{
    return r->i.lease_expiry < now || !store_owner_alive(c, r->i.lease_pid, r->lease_start);
}

/* store_lease_held_by - is r leased by the owner (pid, start token)? */
bool store_lease_held_by(const struct store_rcpt_rec *r, pid_t pid, uint64_t start)
{
    return r->i.state == STORE_RCPT_LEASED && r->i.lease_pid == pid && r->lease_start == start;
}

/* store_okey - the leases index key of an owner. */
static void store_okey(uint8_t k[STORE_OKEY_LEN], pid_t pid, uint64_t start)
{
    store_be32(k, (uint32_t)pid);
    store_be64(k + 4, start);
}

/* store_lease_drop - remove r's entry from the leases index. */
int store_lease_drop(struct store_tx *tx, const struct store_rcpt_rec *r)
{
    uint8_t ok[STORE_OKEY_LEN], rk[STORE_RKEY_LEN];
    int rc;

    store_okey(ok, r->i.lease_pid, r->lease_start);
    store_rkey(rk, r->i.msgid, r->i.idx);
    rc = store_tx_del(tx, STORE_DB_LEASES, ok, sizeof(ok), rk, sizeof(rk));
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* store_lease_set - lease r to owner until expiry (record and index). */
static int store_lease_set(struct store_tx *tx, struct store_rcpt_rec *r,
                           const struct store_owner *o, int64_t expiry)
{
    uint8_t ok[STORE_OKEY_LEN], rk[STORE_RKEY_LEN];
    int rc;

    if (r->i.state == STORE_RCPT_LEASED && (rc = store_lease_drop(tx, r)) != STORE_OK)
        return rc;
    if ((rc = store_rcpt_enter_state(tx, r, STORE_RCPT_LEASED)) != STORE_OK)
        return rc;
    r->i.lease_pid = o->pid;
    r->lease_start = o->start;
    r->i.lease_expiry = expiry;
    store_okey(ok, o->pid, o->start);
    store_rkey(rk, r->i.msgid, r->i.idx);
    if ((rc = store_tx_put(tx, STORE_DB_LEASES, ok, sizeof(ok), rk, sizeof(rk), 0)) != STORE_OK)
        return rc;
    return store_rcpt_save(tx, r);
}

/* ------------------------------------------------------------------ */
/* Claims                                                             */

struct store_claim_job {
    const char *const *domains;
    size_t ndomains;
    bool subdomains;
    const struct store_owner *owner;
    int64_t now, ttl;
    size_t max_msgs;
    struct store_claim *c;
    struct store_msg_rec m; /* the message last looked at */
    bool have_m;
    store_msgid_t max_id; /* highest claimed message id */
    size_t msgs_cap;      /* allocated entries of c->msgs */
    struct store_alive_cache alive;
};

/* store_claim_free - free a claim result. */
void store_claim_free(struct store_claim *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nmsgs; i++)
        free(c->msgs[i].rcpts);
    free(c->msgs);
    free(c);
}

/* store_claim_find - the result entry of message id, or NULL. */
static struct store_claim_msg *store_claim_find(struct store_claim_job *j, store_msgid_t id)
{
    struct store_claim *c = j->c;

    if (id > j->max_id)
        return NULL; /* ids are claimed in ascending order within a key */
    for (size_t i = c->nmsgs; i > 0; i--)
        if (c->msgs[i - 1].info.id == id)
            return &c->msgs[i - 1];
    return NULL;
}

/* store_claim_new_msg - append a result entry for message m; NULL = no memory. */
static struct store_claim_msg *store_claim_new_msg(struct store_claim_job *j,
                                                   const struct store_msg_rec *m)
{
    struct store_claim *c = j->c;
    struct store_claim_msg *cm;

    if ((cm = store_grow(c->msgs, &j->msgs_cap, c->nmsgs, sizeof(*cm), 16)) == NULL)
        return NULL;
    c->msgs = cm;
    cm = &c->msgs[c->nmsgs];
    memset(cm, 0, sizeof(*cm));
    cm->info = m->i;
    if ((cm->rcpts = calloc(m->i.nrcpts ? m->i.nrcpts : 1, sizeof(*cm->rcpts))) == NULL)
        return NULL;
    c->nmsgs++;
    if (m->i.id > j->max_id)
        j->max_id = m->i.id;
    return cm;
}

/* store_claim_ok - may this recipient be leased now? */
static bool store_claim_ok(struct store_claim_job *j, const struct store_rcpt_rec *r)
{
    if (r->i.state == STORE_RCPT_HELD)
        return true;
    return r->i.state == STORE_RCPT_LEASED && store_lease_stale(&j->alive, r, j->now);
}

/*
 * store_claim_one - lease one recipient from the index.  Once max_msgs
 * messages are claimed only further recipients of those messages are
 * taken; *stop_key says the rest of this index key cannot contain any.
 */
static int store_claim_one(struct store_tx *tx, const uint8_t *pv, bool *stop_key, void *arg)
{
    struct store_claim_job *j = arg;
    store_msgid_t id = store_get_be64(pv);
    struct store_claim_msg *cm = store_claim_find(j, id);
    bool full = j->max_msgs && j->c->nmsgs >= j->max_msgs;
    struct store_rcpt_rec r;
    int rc;

    if (full && cm == NULL) {
        *stop_key = id > j->max_id;
        return STORE_OK;
    }
    if (!j->have_m || j->m.i.id != id) {
        j->have_m = false;
        if ((rc = store_msg_load(tx, id, &j->m)) != STORE_OK)
            return rc == STORE_NOTFOUND ? STORE_OK : rc; /* stale entry */
        j->have_m = true;
    }
    if (j->m.i.flags & STORE_MSG_HOLD)
        return STORE_OK;
    if ((rc = store_rcpt_load(tx, id, store_get_be32(pv + 8), &r)) != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_OK : rc;
    if (!store_claim_ok(j, &r))
        return STORE_OK;
    if (cm == NULL && (cm = store_claim_new_msg(j, &j->m)) == NULL)
        return STORE_IO;
    if ((rc = store_lease_set(tx, &r, j->owner, j->now + j->ttl)) != STORE_OK)
        return rc;
    cm->rcpts[cm->nrcpts++] = r.i;
    j->c->nrcpts++;
    return STORE_OK;
}

/* store_claim_domain - claim in one domain (and its subdomains if asked). */
static int store_claim_domain(struct store_tx *tx, struct store_claim_job *j, const char *domain)
{
    char rk[STORE_RKEY_MAX];
    size_t rl = store_domain_rkey(domain, rk);

    if (rl == 0)
        return STORE_INVAL;
    return store_index_walk(tx, rk, rl, j->subdomains, store_claim_one, j);
}

/* store_claim_tx - the claim transaction (restartable: resets its result). */
static int store_claim_tx(struct store_tx *tx, void *arg)
{
    struct store_claim_job *j = arg;
    int rc = STORE_OK;

    store_claim_free(j->c);
    if ((j->c = calloc(1, sizeof(*j->c))) == NULL)
        return STORE_IO;
    j->have_m = false;
    j->max_id = 0;
    j->msgs_cap = 0;
    j->alive.n = 0;
    for (size_t i = 0; i < j->ndomains && rc == STORE_OK; i++)
        rc = store_claim_domain(tx, j, j->domains[i]);
    return rc;
}

/* store_claim - atomically lease held recipients of the given domains. */
int store_claim(struct store *st, const char *const *domains, size_t ndomains, bool subdomains,
                const struct store_owner *owner, int64_t ttl, size_t max_msgs,
                struct store_claim **out)
{
    struct store_claim_job j = {.domains = domains,
                                .ndomains = ndomains,
                                .subdomains = subdomains,
                                .owner = owner,
                                .now = (int64_t)store_now(),
                                .ttl = ttl,
                                .max_msgs = max_msgs};
    int rc;

    *out = NULL;
    if (owner == NULL || owner->pid <= 0 || ttl <= 0 || (ndomains && domains == NULL))
        return STORE_INVAL;
    rc = store_txn_run(st, true, store_claim_tx, &j);
    if (rc != STORE_OK) {
        store_claim_free(j.c);
        return rc;
    }
    *out = j.c;
    return STORE_OK;
}

/* ------------------------------------------------------------------ */
/* Renew, release, recover                                            */

/* One leases index entry. */
struct store_lease_ent {
    uint8_t okey[STORE_OKEY_LEN];
    uint8_t rkey[STORE_RKEY_LEN];
};

struct store_lease_job {
    const struct store_owner *owner; /* NULL: every owner (recover) */
    int64_t now, ttl;
    int op; /* 0 renew, 1 release, 2 recover */
    size_t count;
    struct store_lease_ent *ents;
    size_t nents, cap;
    struct store_alive_cache alive;
};

/* store_lease_push - remember one index entry. */
static int store_lease_push(struct store_lease_job *j, const MDB_val *k, const MDB_val *v)
{
    struct store_lease_ent *e;

    if (k->mv_size != STORE_OKEY_LEN || v->mv_size != STORE_RKEY_LEN)
        return STORE_CORRUPT;
    if ((e = store_grow(j->ents, &j->cap, j->nents, sizeof(*e), 64)) == NULL)
        return STORE_IO;
    j->ents = e;
    memcpy(j->ents[j->nents].okey, k->mv_data, STORE_OKEY_LEN);
    memcpy(j->ents[j->nents++].rkey, v->mv_data, STORE_RKEY_LEN);
    return STORE_OK;
}

/* store_lease_collect - the entries of one owner, or of all owners. */
static int store_lease_collect(struct store_tx *tx, struct store_lease_job *j)
{
    uint8_t ok[STORE_OKEY_LEN];
    MDB_cursor *cur;
    MDB_val k = {sizeof(ok), ok}, v;
    int rc = store_tx_cursor(tx, STORE_DB_LEASES, &cur), mrc;

    if (rc != STORE_OK)
        return rc;
    j->nents = 0;
    if (j->owner) {
        store_okey(ok, j->owner->pid, j->owner->start);
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    } else {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    for (; mrc == 0 && rc == STORE_OK;
         mrc = mdb_cursor_get(cur, &k, &v, j->owner ? MDB_NEXT_DUP : MDB_NEXT))
        rc = store_lease_push(j, &k, &v);
    mdb_cursor_close(cur);
    if (rc == STORE_CORRUPT)
        store_set_error(tx->st, "lease index entry of wrong size");
    if (rc == STORE_OK && mrc != MDB_NOTFOUND)
        rc = store_tx_rc(tx, mrc, "leases");
    return rc;
}

/* store_lease_apply - renew, release or recover one leased recipient. */
static int store_lease_apply(struct store_tx *tx, struct store_lease_job *j,
                             const struct store_lease_ent *e)
{
    struct store_rcpt_rec r;
    pid_t pid = (pid_t)store_get_be32(e->okey);
    uint64_t start = store_get_be64(e->okey + 4);
    int rc = store_rcpt_load(tx, store_get_be64(e->rkey), store_get_be32(e->rkey + 8), &r);
    bool mine;

    if (rc == STORE_NOTFOUND)
        memset(&r, 0, sizeof(r)); /* stale index entry: just drop it */
    else if (rc != STORE_OK)
        return rc;
    mine = store_lease_held_by(&r, pid, start);
    if (mine && j->op == 0) {
        r.i.lease_expiry = j->now + j->ttl;
        j->count++;
        return store_rcpt_save(tx, &r);
    }
    if (mine && j->op == 2 && !store_lease_stale(&j->alive, &r, j->now))
        return STORE_OK;
    rc = store_tx_del(tx, STORE_DB_LEASES, e->okey, STORE_OKEY_LEN, e->rkey, STORE_RKEY_LEN);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return rc;
    if (!mine)
        return STORE_OK; /* stale index entry */
    if ((rc = store_rcpt_enter_state(tx, &r, STORE_RCPT_HELD)) != STORE_OK)
        return rc;
    j->count++;
    return store_rcpt_save(tx, &r);
}

/* store_lease_tx - collect then apply (never modify under an open cursor). */
static int store_lease_tx(struct store_tx *tx, void *arg)
{
    struct store_lease_job *j = arg;
    int rc = store_lease_collect(tx, j);

    j->count = 0;
    j->alive.n = 0;
    for (size_t i = 0; rc == STORE_OK && i < j->nents; i++)
        rc = store_lease_apply(tx, j, &j->ents[i]);
    return rc;
}

/* store_lease_run - run one lease operation. */
static int store_lease_run(struct store *st, struct store_lease_job *j)
{
    int rc = store_txn_run(st, true, store_lease_tx, j);

    free(j->ents);
    return rc;
}

/* store_lease_renew - push the expiry of every lease of owner to now + ttl. */
int store_lease_renew(struct store *st, const struct store_owner *owner, int64_t ttl)
{
    struct store_lease_job j = {.owner = owner, .now = (int64_t)store_now(), .ttl = ttl, .op = 0};

    return owner ? store_lease_run(st, &j) : STORE_INVAL;
}

/* store_lease_release - every lease of owner back to held (attempts unchanged). */
int store_lease_release(struct store *st, const struct store_owner *owner)
{
    struct store_lease_job j = {.owner = owner, .op = 1};

    return owner ? store_lease_run(st, &j) : STORE_INVAL;
}

/* store_lease_recover - expired leases and leases of dead owners back to held. */
int store_lease_recover(struct store *st, int64_t now, size_t *recovered)
{
    struct store_lease_job j = {.now = now, .op = 2};
    int rc = store_lease_run(st, &j);

    if (recovered)
        *recovered = rc == STORE_OK ? j.count : 0;
    return rc;
}
