/*
 * store_msg.c - message envelopes and bodies: the envelope record codec and
 * store_msg_add(), the group commit.
 *
 * store_msg_add() writes a whole batch in one write transaction committed
 * with LMDB's default (fully synchronous) flags.  Each message is written
 * in a nested transaction so that one message refused for its own reason
 * (STORE_LIMIT from a domain quota checked at commit, STORE_INVAL, a short
 * body file, or STORE_FULL once the map cannot grow any more) is rolled
 * back alone while the rest of the batch commits.  A MAP_FULL that can
 * still be cured by growing the map restarts the whole batch instead.
 * Bodies are written chunk by chunk with MDB_RESERVE straight from the
 * caller's iovec or file (pread), so no second copy of the body is made.
 */
#include "store_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define STORE_META_NEXTID "next_msgid"

/* store_msg_encode - the envelope record. */
static void store_msg_encode(struct store_wbuf *w, const struct store_msg_rec *m)
{
    const struct store_msg_info *i = &m->i;

    store_wb_u8(w, STORE_REC_VERSION);
    store_wb_u32(w, i->flags);
    store_wb_u64(w, (uint64_t)i->arrival);
    store_wb_u64(w, i->size);
    store_wb_u8(w, (unsigned)i->body_type);
    store_wb_u8(w, (unsigned)i->ret);
    store_wb_u32(w, i->nrcpts);
    store_wb_u32(w, m->npending);
    store_wb_str(w, i->site);
    store_wb_str(w, i->sender);
    store_wb_str(w, i->envid);
    store_wb_str(w, i->client_addr);
    store_wb_str(w, i->client_helo);
}

/* store_msg_decode_val - parse an envelope record; false when malformed. */
bool store_msg_decode_val(const MDB_val *v, store_msgid_t id, struct store_msg_rec *m)
{
    struct store_rbuf r;
    struct store_msg_info *i = &m->i;

    memset(m, 0, sizeof(*m));
    store_rb_init(&r, v);
    if (!store_rb_version(&r))
        return false;
    i->id = id;
    i->flags = store_rb_u32(&r);
    i->arrival = (int64_t)store_rb_u64(&r);
    i->size = store_rb_u64(&r);
    i->body_type = (int)store_rb_u8(&r);
    i->ret = (int)store_rb_u8(&r);
    i->nrcpts = store_rb_u32(&r);
    m->npending = store_rb_u32(&r);
    store_rb_str(&r, i->site, sizeof(i->site));
    store_rb_str(&r, i->sender, sizeof(i->sender));
    store_rb_str(&r, i->envid, sizeof(i->envid));
    store_rb_str(&r, i->client_addr, sizeof(i->client_addr));
    store_rb_str(&r, i->client_helo, sizeof(i->client_helo));
    return store_rb_end(&r) && i->nrcpts <= STORE_RCPTS_MAX && m->npending <= i->nrcpts &&
           i->body_type <= STORE_BODY_8BITMIME && i->ret <= STORE_RET_HDRS;
}

/* store_msg_load - read and decode a message's envelope. */
int store_msg_load(struct store_tx *tx, store_msgid_t id, struct store_msg_rec *m)
{
    uint8_t k[8];
    MDB_val v;
    int rc;

    store_be64(k, id);
    if ((rc = store_tx_get(tx, STORE_DB_MSG, k, sizeof(k), &v)) != STORE_OK)
        return rc;
    if (!store_msg_decode_val(&v, id, m)) {
        store_set_error(tx->st, "message %010llX: envelope record corrupt", (unsigned long long)id);
        return STORE_CORRUPT;
    }
    return STORE_OK;
}

/* store_msg_save - encode and store a message's envelope. */
int store_msg_save(struct store_tx *tx, const struct store_msg_rec *m)
{
    struct store_wbuf w;
    uint8_t k[8];
    int rc;

    store_be64(k, m->i.id);
    store_wb_init(&w);
    store_msg_encode(&w, m);
    rc = w.oom ? STORE_IO : store_tx_put(tx, STORE_DB_MSG, k, sizeof(k), w.p, w.len, 0);
    store_wb_free(&w);
    return rc;
}

/* store_msg_nextid - allocate the next message id from meta. */
static int store_msg_nextid(struct store_tx *tx, store_msgid_t *id)
{
    MDB_val v;
    struct store_rbuf r;
    struct store_wbuf w;
    int rc = store_tx_get(tx, STORE_DB_META, STORE_META_NEXTID, strlen(STORE_META_NEXTID), &v);

    *id = 1;
    if (rc == STORE_OK) {
        store_rb_init(&r, &v);
        if (!store_rb_version(&r) || (*id = store_rb_u64(&r), !store_rb_end(&r)) || *id == 0) {
            store_set_error(tx->st, "message id counter corrupt");
            return STORE_CORRUPT;
        }
    } else if (rc != STORE_NOTFOUND) {
        return rc;
    }
    store_wb_init(&w);
    store_wb_u8(&w, STORE_REC_VERSION);
    store_wb_u64(&w, *id + 1);
    rc = w.oom ? STORE_IO
               : store_tx_put(tx, STORE_DB_META, STORE_META_NEXTID, strlen(STORE_META_NEXTID), w.p,
                              w.len, 0);
    store_wb_free(&w);
    return rc;
}

/* store_msg_check_in - validate one incoming message. */
static int store_msg_check_in(const struct store_msg_in *in)
{
    if (in == NULL || in->nrcpts == 0 || in->rcpts == NULL || in->nrcpts > STORE_RCPTS_MAX ||
        store_name_check(in->site, STORE_SITE_MAX) != STORE_OK || in->sender == NULL ||
        strlen(in->sender) >= STORE_ADDR_MAX ||
        (in->envid && strlen(in->envid) >= STORE_PARAM_MAX) ||
        (in->client_addr && strlen(in->client_addr) >= 64) ||
        (in->client_helo && strlen(in->client_helo) >= STORE_DOMAIN_MAX))
        return STORE_INVAL;
    if (in->body_fd < 0 && in->body_len > 0 && in->iov == NULL)
        return STORE_INVAL;
    for (size_t i = 0; i < in->nrcpts; i++) {
        const char *a = in->rcpts[i].addr, *at = a ? strrchr(a, '@') : NULL;

        if (at == NULL || at == a || strlen(a) >= STORE_ADDR_MAX ||
            store_name_check(at + 1, STORE_DOMAIN_MAX) != STORE_OK ||
            (in->rcpts[i].orcpt && strlen(in->rcpts[i].orcpt) >= STORE_PARAM_MAX))
            return STORE_INVAL;
    }
    return STORE_OK;
}

/* Where the body comes from while it is copied chunk by chunk. */
struct store_body_src {
    const struct store_msg_in *in;
    int iov_i;       /* current iovec */
    size_t iov_off;  /* offset inside it */
    uint64_t fd_off; /* next pread offset */
};

/* store_body_fill - copy n body bytes into dst from the iovec or the file. */
static int store_body_fill(struct store_tx *tx, struct store_body_src *s, uint8_t *dst, size_t n)
{
    const struct store_msg_in *in = s->in;

    while (n > 0) {
        size_t take;

        if (in->body_fd >= 0) {
            ssize_t got = pread(in->body_fd, dst, n, (off_t)s->fd_off);

            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                store_set_error(tx->st, "body file shorter than %llu bytes",
                                (unsigned long long)in->body_len);
                return STORE_IO;
            }
            take = (size_t)got;
            s->fd_off += take;
        } else {
            if (s->iov_i >= in->iovcnt) {
                store_set_error(tx->st, "body iovec shorter than body_len");
                return STORE_INVAL;
            }
            take = in->iov[s->iov_i].iov_len - s->iov_off;
            if (take > n)
                take = n;
            memcpy(dst, (const uint8_t *)in->iov[s->iov_i].iov_base + s->iov_off, take);
            s->iov_off += take;
            if (s->iov_off == in->iov[s->iov_i].iov_len) {
                s->iov_i++;
                s->iov_off = 0;
            }
        }
        dst += take;
        n -= take;
    }
    return STORE_OK;
}

/* store_body_write - store the body in STORE_CHUNK_SIZE chunks via MDB_RESERVE. */
static int store_body_write(struct store_tx *tx, store_msgid_t id, const struct store_msg_in *in)
{
    struct store_body_src src = {.in = in};
    uint64_t left = in->body_len;
    uint32_t chunk = 0;

    while (left > 0) {
        uint8_t k[12];
        size_t n = left > STORE_CHUNK_SIZE ? STORE_CHUNK_SIZE : (size_t)left;
        MDB_val key = {sizeof(k), k}, val = {n, NULL};
        int rc;

        store_rkey(k, id, chunk++);
        rc = mdb_put(tx->txn, tx->st->dbi[STORE_DB_BODY], &key, &val, MDB_RESERVE);
        if (rc != 0)
            return store_tx_rc(tx, rc, "body");
        if ((rc = store_body_fill(tx, &src, val.mv_data, n)) != STORE_OK)
            return rc;
        left -= n;
    }
    return STORE_OK;
}

/* store_msg_domain_of - lower-cased domain of a recipient address. */
static void store_msg_domain_of(const char *addr, char dom[STORE_DOMAIN_MAX])
{
    store_lower(dom, strrchr(addr, '@') + 1, STORE_DOMAIN_MAX);
}

/* store_msg_first_in_domain - true when rcpt i is the first one of its domain. */
static bool store_msg_first_in_domain(const struct store_msg_in *in, size_t i)
{
    const char *d = strrchr(in->rcpts[i].addr, '@') + 1;

    for (size_t j = 0; j < i; j++)
        if (strcasecmp(strrchr(in->rcpts[j].addr, '@') + 1, d) == 0)
            return false;
    return true;
}

/* store_msg_quota - STORE_LIMIT when a recipient domain's max_queue is reached. */
static int store_msg_quota(struct store_tx *tx, const struct store_msg_in *in)
{
    for (size_t i = 0; i < in->nrcpts; i++) {
        char dom[STORE_DOMAIN_MAX];
        struct store_domain d;
        uint64_t msgs, bytes;
        int rc;

        if (!store_msg_first_in_domain(in, i))
            continue;
        store_msg_domain_of(in->rcpts[i].addr, dom);
        rc = store_domain_load(tx, dom, &d);
        if (rc == STORE_NOTFOUND || (rc == STORE_OK && d.max_queue == 0))
            continue;
        if (rc != STORE_OK)
            return rc;
        if ((rc = store_counter_get(tx, 'd', dom, &msgs, &bytes)) != STORE_OK)
            return rc;
        if (msgs >= d.max_queue)
            return STORE_LIMIT;
    }
    return STORE_OK;
}

/* store_msg_rcpts_write - recipient records, index entries and domain counters. */
static int store_msg_rcpts_write(struct store_tx *tx, const struct store_msg_rec *m,
                                 const struct store_msg_in *in)
{
    for (size_t i = 0; i < in->nrcpts; i++) {
        struct store_rcpt_rec r;
        int rc;

        memset(&r, 0, sizeof(r));
        r.i.msgid = m->i.id;
        r.i.idx = (uint32_t)i;
        snprintf(r.i.addr, sizeof(r.i.addr), "%s", in->rcpts[i].addr);
        store_msg_domain_of(in->rcpts[i].addr, r.i.domain);
        snprintf(r.i.orcpt, sizeof(r.i.orcpt), "%s", in->rcpts[i].orcpt ? in->rcpts[i].orcpt : "");
        r.i.notify = in->rcpts[i].notify & 0xfu;
        r.i.state = STORE_RCPT_HELD; /* initial state, before any transition */
        if ((rc = store_rcpt_save(tx, &r)) != STORE_OK || (rc = store_index_add(tx, &r)) != 0)
            return rc;
        if (store_msg_first_in_domain(in, i) &&
            (rc = store_counter_add(tx, 'd', r.i.domain, 1, (int64_t)m->i.size)) != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

/* store_msg_write - every record of one message (inside its nested txn). */
static int store_msg_write(struct store_tx *tx, const struct store_msg_in *in, store_msgid_t *id)
{
    struct store_msg_rec m;
    uint8_t k[8];
    int rc;

    if ((rc = store_msg_quota(tx, in)) != STORE_OK || (rc = store_msg_nextid(tx, id)) != STORE_OK)
        return rc;
    memset(&m, 0, sizeof(m));
    m.i.id = *id;
    snprintf(m.i.site, sizeof(m.i.site), "%s", in->site);
    snprintf(m.i.sender, sizeof(m.i.sender), "%s", in->sender);
    snprintf(m.i.envid, sizeof(m.i.envid), "%s", in->envid ? in->envid : "");
    snprintf(m.i.client_addr, sizeof(m.i.client_addr), "%s",
             in->client_addr ? in->client_addr : "");
    snprintf(m.i.client_helo, sizeof(m.i.client_helo), "%s",
             in->client_helo ? in->client_helo : "");
    m.i.arrival = in->arrival;
    m.i.size = in->body_len;
    m.i.body_type = in->body_type >= 0 && in->body_type <= STORE_BODY_8BITMIME ? in->body_type : 0;
    m.i.ret = in->ret >= 0 && in->ret <= STORE_RET_HDRS ? in->ret : 0;
    m.i.nrcpts = (uint32_t)in->nrcpts;
    m.npending = m.i.nrcpts;
    store_be64(k, *id);
    if ((rc = store_msg_save(tx, &m)) != STORE_OK ||
        (rc = store_body_write(tx, *id, in)) != STORE_OK ||
        (rc = store_msg_rcpts_write(tx, &m, in)) != STORE_OK ||
        (rc = store_tx_put(tx, STORE_DB_BY_SITE, m.i.site, strlen(m.i.site), k, sizeof(k), 0)) !=
            STORE_OK)
        return rc;
    return store_counter_add(tx, 's', m.i.site, 1, (int64_t)m.i.size);
}

struct store_add_job {
    const struct store_msg_in *const *msgs;
    size_t n;
    store_msgid_t *ids;
    int *status;
};

/* store_msg_add_one - one message in a nested transaction; sets its status. */
static int store_msg_add_one(struct store_tx *tx, const struct store_msg_in *in, store_msgid_t *id,
                             int *status)
{
    struct store_tx child;
    int rc;

    *id = 0;
    if ((*status = store_msg_check_in(in)) != STORE_OK)
        return STORE_OK;
    if ((rc = store_tx_child(tx, &child)) != STORE_OK)
        return rc;
    rc = store_msg_write(&child, in, id);
    if (rc == STORE_OK)
        rc = store_tx_child_end(&child, true);
    else
        store_tx_child_end(&child, false);
    if (child.map_full && tx->st->map_size < tx->st->map_size_max) {
        tx->map_full = true; /* grow and redo the whole batch */
        return STORE_FULL;
    }
    if ((rc == STORE_IO || rc == STORE_CORRUPT) && (child.mdb_rc != 0 || rc == STORE_CORRUPT))
        return rc; /* an environment problem fails the batch; a short body does not */
    *status = rc;
    if (rc != STORE_OK)
        *id = 0;
    return STORE_OK;
}

/* store_msg_add_tx - the group commit transaction. */
static int store_msg_add_tx(struct store_tx *tx, void *arg)
{
    struct store_add_job *j = arg;

    for (size_t i = 0; i < j->n; i++) {
        int rc = store_msg_add_one(tx, j->msgs[i], &j->ids[i], &j->status[i]);

        if (rc != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

/* store_msg_add - commit n messages in one transaction (group commit). */
int store_msg_add(struct store *st, const struct store_msg_in *const *msgs, size_t n,
                  store_msgid_t *ids, int *status)
{
    struct store_add_job j = {msgs, n, ids, status};
    int rc;

    if (n == 0)
        return STORE_OK;
    rc = store_txn_run(st, true, store_msg_add_tx, &j);
    if (rc != STORE_OK) {
        for (size_t i = 0; i < n; i++) {
            ids[i] = 0;
            status[i] = rc;
        }
    }
    return rc;
}
