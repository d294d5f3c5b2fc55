/*
 * test_store_api.c - cmocka tests of every storage/ API call against a
 * real LMDB environment in a fresh mkdtemp directory (removed afterwards):
 * open/close, domains, accounts, site flags, message add (iovec and file
 * body), get, piecewise body read, iteration, flags, move, delete,
 * counters, room check, claims, outcomes, notes, expiry, leases, schema
 * version and corrupt records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hm_testutil.h"
#include "store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fx {
    char dir[64];
    struct store *st;
};

/* setup - fresh directory and store. */
static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (hm_test_mkdtemp(f->dir, sizeof(f->dir), NULL, "store_api") == NULL) {
        free(f);
        return -1;
    }
    if ((f->st = hm_test_store_open(f->dir, 1 << 20, 64 << 20)) == NULL) {
        hm_test_rmdir(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* teardown - close and remove. */
static int teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->st);
    hm_test_rmdir(f->dir);
    free(f);
    return 0;
}

/* add_msg - add one message with the given recipients and a memory body; its id. */
static store_msgid_t add_msg(struct store *st, const char *site, const char *sender,
                             const char *const *rcpts, size_t n, const char *body, int64_t arrival)
{
    store_msgid_t id = 0;

    assert_int_equal(hm_test_msg_add(st, site, sender, rcpts, n, body, arrival, &id), STORE_OK);
    assert_true(id > 0);
    return id;
}

/* put_domain - create a held domain with defaults. */
static void put_domain(struct store *st, const char *name, int64_t hold, int64_t warn,
                       uint64_t maxq)
{
    struct store_domain d;

    hm_test_domain_init(&d, name);
    d.hold_time = hold;
    d.delay_warning = warn;
    d.max_queue = maxq;
    assert_int_equal(store_domain_put(st, &d, true), STORE_OK);
}

/* count_cb - count iterated items. */
static int count_cb(const struct store_domain *d, void *arg)
{
    (void)d;
    (*(int *)arg)++;
    return 0;
}

/* test_domains - put/get/iterate/delete, create_only, case folding. */
static void test_domains(void **state)
{
    struct fx *f = *state;
    struct store_domain d, g;
    int n = 0;

    put_domain(f->st, "Customer.Example", -1, -1, 0);
    put_domain(f->st, "other.example", 3600, 0, 5);
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "customer.example");
    assert_int_equal(store_domain_put(f->st, &d, true), STORE_EXISTS);
    assert_int_equal(store_domain_get(f->st, "CUSTOMER.example", &g), STORE_OK);
    assert_string_equal(g.name, "customer.example");
    assert_string_equal(g.site, "default");
    assert_true(g.etrn_enabled);
    assert_int_equal(g.hold_time, -1);
    assert_true(g.created > 0);
    snprintf(g.route, sizeof(g.route), "[127.0.0.1]:2526");
    assert_int_equal(store_domain_put(f->st, &g, false), STORE_OK);
    assert_int_equal(store_domain_get(f->st, "customer.example", &d), STORE_OK);
    assert_string_equal(d.route, "[127.0.0.1]:2526");
    assert_int_equal(store_domain_get(f->st, "nope.example", &d), STORE_NOTFOUND);
    assert_int_equal(store_domain_get(f->st, "", &d), STORE_INVAL);
    assert_int_equal(store_domain_iter(f->st, count_cb, &n), STORE_OK);
    assert_int_equal(n, 2);
    add_msg(f->st, "default", "a@b.example", (const char *[]){"u@other.example"}, 1, "x\r\n", 1);
    assert_int_equal(store_domain_del(f->st, "other.example"), STORE_NOTEMPTY);
    assert_int_equal(store_domain_del(f->st, "customer.example"), STORE_OK);
    assert_int_equal(store_domain_del(f->st, "customer.example"), STORE_NOTFOUND);
}

/* domain_many_cb - check name order and count. */
static int domain_many_cb(const struct store_domain *d, void *arg)
{
    char *prev = arg;

    assert_true(strcmp(prev, d->name) < 0);
    snprintf(prev, STORE_DOMAIN_MAX, "%s", d->name);
    return 0;
}

/* test_domain_iter_batches - more domains than one batch, in order. */
static void test_domain_iter_batches(void **state)
{
    struct fx *f = *state;
    char prev[STORE_DOMAIN_MAX] = "";
    char name[64];

    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof(name), "d%03d.example", i);
        put_domain(f->st, name, -1, -1, 0);
    }
    assert_int_equal(store_domain_iter(f->st, domain_many_cb, prev), STORE_OK);
    assert_string_equal(prev, "d149.example");
}

/* acct_cb - count accounts. */
static int acct_cb(const struct store_account *a, void *arg)
{
    assert_non_null(a->domains);
    (*(int *)arg)++;
    return 0;
}

/* test_accounts - put/get/may/iterate/delete. */
static void test_accounts(void **state)
{
    struct fx *f = *state;
    struct store_account a = {.name = "alice", .domains = "Customer.Example, other.example"};
    struct store_account g;
    int n = 0;

    assert_int_equal(store_account_put(f->st, &a, true), STORE_OK);
    assert_int_equal(store_account_put(f->st, &a, true), STORE_EXISTS);
    assert_int_equal(store_account_get(f->st, "alice", &g), STORE_OK);
    assert_string_equal(g.domains, "customer.example, other.example");
    assert_true(g.created > 0);
    store_account_release(&g);
    assert_true(store_account_may(f->st, "alice", "CUSTOMER.example"));
    assert_true(store_account_may(f->st, "alice", "other.example"));
    assert_false(store_account_may(f->st, "alice", "example"));
    assert_false(store_account_may(f->st, "bob", "other.example"));
    snprintf(a.name, sizeof(a.name), "bob");
    a.domains = "bob.example";
    assert_int_equal(store_account_put(f->st, &a, false), STORE_OK);
    assert_int_equal(store_account_iter(f->st, acct_cb, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_account_del(f->st, "alice"), STORE_OK);
    assert_int_equal(store_account_del(f->st, "alice"), STORE_NOTFOUND);
    assert_int_equal(store_account_get(f->st, "alice", &g), STORE_NOTFOUND);
}

/* test_sites - flags default to 0, set, get. */
static void test_sites(void **state)
{
    struct fx *f = *state;
    unsigned fl = 99;

    assert_int_equal(store_site_flags_get(f->st, "default", &fl), STORE_OK);
    assert_int_equal(fl, 0);
    assert_int_equal(store_site_flags_set(f->st, "default", STORE_SITE_PAUSED), STORE_OK);
    assert_int_equal(store_site_flags_get(f->st, "default", &fl), STORE_OK);
    assert_int_equal(fl, STORE_SITE_PAUSED);
    assert_int_equal(store_site_flags_set(f->st, "", 0), STORE_INVAL);
}

/* test_msg_add_get - envelope and recipients round-trip; invalid input. */
static void test_msg_add_get(void **state)
{
    struct fx *f = *state;
    struct store_rcpt_in r[2] = {{.addr = "u1@Customer.Example",
                                  .notify = STORE_NOTIFY_FAILURE,
                                  .orcpt = "rfc822;u1@customer.example"},
                                 {.addr = "u2@other.example"}};
    struct iovec iov[2] = {{"hello ", 6}, {"world\r\n", 7}};
    struct store_msg_in m = {.site = "default",
                             .sender = "s@sender.example",
                             .arrival = 1000,
                             .rcpts = r,
                             .nrcpts = 2,
                             .iov = iov,
                             .iovcnt = 2,
                             .body_fd = -1,
                             .body_len = 13,
                             .envid = "ENV1",
                             .ret = STORE_RET_HDRS,
                             .body_type = STORE_BODY_8BITMIME,
                             .declared_size = 13};
    struct store_msg_in bad = m;
    const struct store_msg_in *batch[2] = {&m, &bad};
    store_msgid_t ids[2];
    int status[2];
    struct store_msg_info info;
    struct store_rcpt_info *ri;
    size_t nr;

    bad.nrcpts = 0;
    assert_int_equal(store_msg_add(f->st, batch, 2, ids, status), STORE_OK);
    assert_int_equal(status[0], STORE_OK);
    assert_int_equal(status[1], STORE_INVAL);
    assert_int_equal(store_msg_get(f->st, ids[0], &info, &ri, &nr), STORE_OK);
    assert_int_equal(info.id, ids[0]);
    assert_string_equal(info.sender, "s@sender.example");
    assert_string_equal(info.envid, "ENV1");
    assert_string_equal(info.site, "default");
    assert_int_equal(info.size, 13);
    assert_int_equal(info.arrival, 1000);
    assert_int_equal(info.ret, STORE_RET_HDRS);
    assert_int_equal(info.body_type, STORE_BODY_8BITMIME);
    assert_int_equal(info.nrcpts, 2);
    assert_int_equal(nr, 2);
    assert_string_equal(ri[0].addr, "u1@Customer.Example");
    assert_string_equal(ri[0].domain, "customer.example");
    assert_string_equal(ri[0].orcpt, "rfc822;u1@customer.example");
    assert_int_equal(ri[0].notify, STORE_NOTIFY_FAILURE);
    assert_int_equal(ri[1].state, STORE_RCPT_HELD);
    free(ri);
    assert_int_equal(store_msg_get(f->st, ids[0] + 100, &info, NULL, NULL), STORE_NOTFOUND);
    r[1].addr = "no-domain";
    assert_int_equal(store_msg_add(f->st, batch, 1, ids, status), STORE_OK);
    assert_int_equal(status[0], STORE_INVAL);
}

/* test_body_fd_piecewise - a 200 KiB body from a file read back in odd pieces. */
static void test_body_fd_piecewise(void **state)
{
    struct fx *f = *state;
    size_t len = 200 * 1024 + 17, got, off = 0;
    char *body = malloc(len), *back = malloc(len), path[128];
    struct store_rcpt_in r = {.addr = "u@customer.example"};
    struct store_msg_in m = {
        .site = "default", .sender = "", .rcpts = &r, .nrcpts = 1, .body_len = len};
    const struct store_msg_in *mp = &m;
    store_msgid_t id;
    int status, fd;

    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + i % 23);
    snprintf(path, sizeof(path), "%s/body", f->dir);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, body, len), (ssize_t)len);
    m.body_fd = fd;
    assert_int_equal(store_msg_add(f->st, &mp, 1, &id, &status), STORE_OK);
    assert_int_equal(status, STORE_OK);
    for (int i = 0; i < 1000 && off < len; i++) {
        assert_int_equal(store_body_read(f->st, id, off, back + off, 7777, &got), STORE_OK);
        assert_true(got > 0);
        off += got;
    }
    assert_int_equal(off, len);
    assert_memory_equal(body, back, len);
    assert_int_equal(store_body_read(f->st, id, len, back, 10, &got), STORE_OK);
    assert_int_equal(got, 0);
    m.body_len = len + 10; /* file too short */
    assert_int_equal(store_msg_add(f->st, &mp, 1, &id, &status), STORE_OK);
    assert_int_equal(status, STORE_IO);
    close(fd);
    unlink(path);
    free(body);
    free(back);
}

struct iter_acc {
    int msgs, rcpts;
    store_msgid_t last;
};

/* iter_cb - count and check order. */
static int iter_cb(const struct store_msg_info *m, const struct store_rcpt_info *r, size_t nr,
                   void *arg)
{
    struct iter_acc *a = arg;

    (void)r;
    assert_true(m->id > a->last);
    a->last = m->id;
    a->msgs++;
    a->rcpts += (int)nr;
    return 0;
}

/* test_iter_counts - filters and counters. */
static void test_iter_counts(void **state)
{
    struct fx *f = *state;
    struct store_filter fd = {.domain = "example.com"},
                        fs = {.domain = "example.com", .subdomains = true};
    struct store_filter fsite = {.site = "b"};
    struct iter_acc a = {0};
    struct store_counts c;

    add_msg(f->st, "a", "s@x", (const char *[]){"u@example.com", "v@sub.example.com"}, 2, "1", 10);
    add_msg(f->st, "b", "s@x", (const char *[]){"u@sub.example.com"}, 1, "22", 20);
    add_msg(f->st, "b", "s@x", (const char *[]){"u@examplex.com", "w@example.com"}, 2, "333", 30);
    assert_int_equal(store_msg_iter(f->st, &fd, iter_cb, &a), STORE_OK);
    assert_int_equal(a.msgs, 2);
    assert_int_equal(a.rcpts, 2);
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_msg_iter(f->st, &fs, iter_cb, &a), STORE_OK);
    assert_int_equal(a.msgs, 3);
    assert_int_equal(a.rcpts, 4);
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_msg_iter(f->st, &fsite, iter_cb, &a), STORE_OK);
    assert_int_equal(a.msgs, 2);
    assert_int_equal(a.rcpts, 3);
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_msg_iter(f->st, NULL, iter_cb, &a), STORE_OK);
    assert_int_equal(a.msgs, 3);
    assert_int_equal(store_domain_counts(f->st, "Example.com", &c), STORE_OK);
    assert_int_equal(c.messages, 2);
    assert_int_equal(c.bytes, 4);
    assert_int_equal(c.oldest, 10);
    assert_int_equal(store_site_counts(f->st, "b", &c), STORE_OK);
    assert_int_equal(c.messages, 2);
    assert_int_equal(c.bytes, 5);
    assert_int_equal(c.oldest, 20);
    assert_int_equal(store_domain_counts(f->st, "none.example", &c), STORE_OK);
    assert_int_equal(c.messages, 0);
    assert_int_equal(c.oldest, 0);
}

/* test_flags_move_delete - operator actions keep counters right. */
static void test_flags_move_delete(void **state)
{
    struct fx *f = *state;
    store_msgid_t id = add_msg(f->st, "a", "s@x", (const char *[]){"u@d.example"}, 1, "abc", 5);
    struct store_msg_info info;
    struct store_counts c;

    assert_int_equal(store_msg_set_flags(f->st, id, STORE_MSG_HOLD, 0), STORE_OK);
    assert_int_equal(store_msg_get(f->st, id, &info, NULL, NULL), STORE_OK);
    assert_int_equal(info.flags, STORE_MSG_HOLD);
    assert_int_equal(store_msg_set_flags(f->st, id, 0, STORE_MSG_HOLD), STORE_OK);
    assert_int_equal(store_msg_get(f->st, id, &info, NULL, NULL), STORE_OK);
    assert_int_equal(info.flags, 0);
    assert_int_equal(store_msg_move_site(f->st, id, "b"), STORE_OK);
    assert_int_equal(store_site_counts(f->st, "a", &c), STORE_OK);
    assert_int_equal(c.messages, 0);
    assert_int_equal(store_site_counts(f->st, "b", &c), STORE_OK);
    assert_int_equal(c.messages, 1);
    assert_int_equal(c.bytes, 3);
    assert_int_equal(store_msg_delete(f->st, id), STORE_OK);
    assert_int_equal(store_msg_delete(f->st, id), STORE_NOTFOUND);
    assert_int_equal(store_site_counts(f->st, "b", &c), STORE_OK);
    assert_int_equal(c.messages, 0);
    assert_int_equal(store_domain_counts(f->st, "d.example", &c), STORE_OK);
    assert_int_equal(c.messages, 0);
    assert_int_equal(store_domain_del(f->st, "d.example"), STORE_NOTFOUND);
}

/* test_room_quota - domain max_queue at room check and at commit. */
static void test_room_quota(void **state)
{
    struct fx *f = *state;
    struct store_rcpt_in r = {.addr = "u@q.example"};
    struct iovec iov = {"b", 1};
    struct store_msg_in m = {.site = "default",
                             .sender = "s@x",
                             .rcpts = &r,
                             .nrcpts = 1,
                             .iov = &iov,
                             .iovcnt = 1,
                             .body_fd = -1,
                             .body_len = 1};
    const struct store_msg_in *batch[3] = {&m, &m, &m};
    store_msgid_t ids[3];
    int status[3];

    put_domain(f->st, "q.example", -1, -1, 2);
    assert_int_equal(store_room_check(f->st, "default", 0, 0, "q.example", 100), STORE_OK);
    assert_int_equal(store_msg_add(f->st, batch, 3, ids, status), STORE_OK);
    assert_int_equal(status[0], STORE_OK);
    assert_int_equal(status[1], STORE_OK);
    assert_int_equal(status[2], STORE_LIMIT);
    assert_int_equal(ids[2], 0);
    assert_int_equal(store_room_check(f->st, "default", 0, 0, "q.example", 100), STORE_LIMIT);
    assert_int_equal(store_room_check(f->st, "default", 2, 0, "other.example", 1), STORE_LIMIT);
    assert_int_equal(store_room_check(f->st, "default", 0, 2, "other.example", 1), STORE_LIMIT);
    assert_int_equal(store_room_check(f->st, "default", 0, 0, NULL, (uint64_t)1 << 40), STORE_FULL);
}

/* test_claim_outcome_notes - claim, outcomes, failure note, message removal. */
static void test_claim_outcome_notes(void **state)
{
    struct fx *f = *state;
    store_msgid_t id =
        add_msg(f->st, "default", "s@sender.example",
                (const char *[]){"a@c.example", "b@c.example", "x@other.example"}, 3, "body", 100);
    store_msgid_t nul = add_msg(f->st, "default", "", (const char *[]){"z@c.example"}, 1, "b", 101);
    const char *doms[] = {"c.example"};
    struct store_owner me, other = {.pid = 1, .start = 1};
    struct store_claim *c, *c2;
    struct store_outcome o[3];
    struct store_note *notes;
    struct store_rcpt_info *ri;
    size_t nn, nr, rec;
    int st[3];

    store_owner_self(&me);
    assert_true(me.start > 0);
    assert_int_equal(store_claim(f->st, doms, 1, false, &me, 60, 0, &c), STORE_OK);
    assert_int_equal(c->nmsgs, 2);
    assert_int_equal(c->nrcpts, 3);
    assert_int_equal(c->msgs[0].info.id, id);
    assert_int_equal(c->msgs[0].nrcpts, 2);
    assert_int_equal(c->msgs[0].rcpts[0].state, STORE_RCPT_LEASED);
    /* nothing left to claim; other domain untouched */
    assert_int_equal(store_claim(f->st, doms, 1, false, &me, 60, 0, &c2), STORE_OK);
    assert_int_equal(c2->nmsgs, 0);
    store_claim_free(c2);
    assert_int_equal(store_lease_renew(f->st, &me, 120), STORE_OK);
    o[0] = (struct store_outcome){id, 0, STORE_OUT_DELIVERED, "250 ok"};
    o[1] = (struct store_outcome){id, 1, STORE_OUT_FAILED, "550 no such user"};
    o[2] = (struct store_outcome){nul, 0, STORE_OUT_FAILED, "550 nope"};
    assert_int_equal(store_outcome_apply(f->st, &other, o, 1, st), STORE_OK);
    assert_int_equal(st[0], STORE_BUSY);
    assert_int_equal(store_outcome_apply(f->st, &me, o, 3, st), STORE_OK);
    assert_int_equal(st[0], STORE_OK);
    assert_int_equal(st[1], STORE_OK);
    assert_int_equal(st[2], STORE_OK);
    /* the null-sender message is gone, no note for it */
    assert_int_equal(store_msg_get(f->st, nul, NULL, NULL, NULL), STORE_NOTFOUND);
    assert_int_equal(store_note_next(f->st, 10, &notes, &nn), STORE_OK);
    assert_int_equal(nn, 1);
    assert_int_equal(notes[0].msgid, id);
    assert_int_equal(notes[0].kind, STORE_NOTE_FAILED);
    assert_int_equal(notes[0].nrcpts, 1);
    assert_string_equal(notes[0].rcpts[0].addr, "b@c.example");
    assert_string_equal(notes[0].rcpts[0].last_reply, "550 no such user");
    store_note_free(notes, nn);
    assert_int_equal(store_msg_get(f->st, id, NULL, &ri, &nr), STORE_OK);
    assert_int_equal(ri[0].state, STORE_RCPT_DELIVERED);
    assert_int_equal(ri[0].attempts, 1);
    assert_int_equal(ri[1].state, STORE_RCPT_FAILED);
    assert_int_equal(ri[2].state, STORE_RCPT_HELD);
    free(ri);
    /* a deferred outcome puts a recipient back */
    store_claim_free(c);
    doms[0] = "other.example";
    assert_int_equal(store_claim(f->st, doms, 1, false, &me, 60, 0, &c), STORE_OK);
    assert_int_equal(c->nrcpts, 1);
    store_claim_free(c);
    o[0] = (struct store_outcome){id, 2, STORE_OUT_DEFERRED, "451 later"};
    assert_int_equal(store_outcome_apply(f->st, &me, o, 1, st), STORE_OK);
    assert_int_equal(st[0], STORE_OK);
    assert_int_equal(store_claim(f->st, doms, 1, false, &me, 60, 0, &c), STORE_OK);
    assert_int_equal(c->nrcpts, 1);
    assert_int_equal(c->msgs[0].rcpts[0].attempts, 1);
    store_claim_free(c);
    assert_int_equal(store_lease_release(f->st, &me), STORE_OK);
    assert_int_equal(store_lease_recover(f->st, time(NULL), &rec), STORE_OK);
    assert_int_equal(rec, 0);
    assert_int_equal(store_claim(f->st, doms, 1, false, &me, 60, 0, &c), STORE_OK);
    assert_int_equal(c->nrcpts, 1);
    store_claim_free(c);
    o[0] = (struct store_outcome){id, 2, STORE_OUT_DELIVERED, "250 ok"};
    assert_int_equal(store_outcome_apply(f->st, &me, o, 1, st), STORE_OK);
    /* all final, note still pending: the message stays until note_done */
    assert_int_equal(store_msg_get(f->st, id, NULL, NULL, NULL), STORE_OK);
    assert_int_equal(store_note_done(f->st, id, STORE_NOTE_FAILED), STORE_OK);
    assert_int_equal(store_msg_get(f->st, id, NULL, NULL, NULL), STORE_NOTFOUND);
    assert_int_equal(store_note_next(f->st, 10, &notes, &nn), STORE_OK);
    assert_int_equal(nn, 0);
    store_note_free(notes, nn);
}

/* test_hold_and_max_msgs - held messages are skipped; max_msgs honoured. */
static void test_hold_and_max_msgs(void **state)
{
    struct fx *f = *state;
    const char *doms[] = {"h.example"};
    struct store_owner me;
    struct store_claim *c;
    store_msgid_t id1 =
        add_msg(f->st, "default", "s@x", (const char *[]){"a@h.example"}, 1, "1", 1);

    add_msg(f->st, "default", "s@x", (const char *[]){"a@h.example", "b@sub.h.example"}, 2, "2", 2);
    add_msg(f->st, "default", "s@x", (const char *[]){"a@h.example"}, 1, "3", 3);
    store_owner_self(&me);
    assert_int_equal(store_msg_set_flags(f->st, id1, STORE_MSG_HOLD, 0), STORE_OK);
    assert_int_equal(store_claim(f->st, doms, 1, true, &me, 60, 1, &c), STORE_OK);
    assert_int_equal(c->nmsgs, 1);
    assert_int_equal(c->msgs[0].info.id, id1 + 1);
    assert_int_equal(c->msgs[0].nrcpts, 2);
    store_claim_free(c);
    assert_int_equal(store_claim(f->st, doms, 1, true, &me, 60, 0, &c), STORE_OK);
    assert_int_equal(c->nmsgs, 1);
    assert_int_equal(c->msgs[0].info.id, id1 + 2);
    store_claim_free(c);
}

/* test_expire - delay warning once, hold expiry, overrides, null sender. */
static void test_expire(void **state)
{
    struct fx *f = *state;
    int64_t now = 1000000;
    size_t exp, warn;
    struct store_note *notes;
    size_t nn;
    struct store_rcpt_info *ri;
    size_t nr;
    store_msgid_t a, b, c, d;

    put_domain(f->st, "short.example", 100, 50, 0);
    put_domain(f->st, "long.example", 100000, 0, 0);
    a = add_msg(f->st, "default", "s@x", (const char *[]){"u@short.example"}, 1, "a", now - 60);
    b = add_msg(f->st, "default", "s@x", (const char *[]){"u@long.example"}, 1, "b", now - 5000);
    c = add_msg(f->st, "default", "", (const char *[]){"u@short.example"}, 1, "c", now - 200);
    d = add_msg(f->st, "default", "s@x", (const char *[]){"u@dflt.example"}, 1, "d", now - 10);
    (void)d;
    /* defaults: hold 1000 s, warn 500 s */
    assert_int_equal(store_expire(f->st, now, 1000, 500, &exp, &warn), STORE_OK);
    /* a: warned (age 60 >= 50); b: long domain, no warn, not expired;
       c: null sender expired (age 200 >= 100) without a note; d: too young */
    assert_int_equal(exp, 1);
    assert_int_equal(warn, 1);
    assert_int_equal(store_msg_get(f->st, c, NULL, NULL, NULL), STORE_NOTFOUND);
    assert_int_equal(store_note_next(f->st, 10, &notes, &nn), STORE_OK);
    assert_int_equal(nn, 1);
    assert_int_equal(notes[0].msgid, a);
    assert_int_equal(notes[0].kind, STORE_NOTE_DELAYED);
    store_note_free(notes, nn);
    /* warned only once */
    assert_int_equal(store_expire(f->st, now + 1, 1000, 500, &exp, &warn), STORE_OK);
    assert_int_equal(warn, 0);
    assert_int_equal(exp, 0);
    assert_int_equal(store_note_done(f->st, a, STORE_NOTE_DELAYED), STORE_OK);
    /* later: a expires with a failure note; b still held */
    assert_int_equal(store_expire(f->st, now + 100, 1000, 500, &exp, &warn), STORE_OK);
    assert_int_equal(exp, 1);
    assert_int_equal(store_msg_get(f->st, a, NULL, &ri, &nr), STORE_OK);
    assert_int_equal(ri[0].state, STORE_RCPT_FAILED);
    assert_string_equal(ri[0].last_reply, "hold time expired");
    free(ri);
    assert_int_equal(store_msg_get(f->st, b, NULL, &ri, &nr), STORE_OK);
    assert_int_equal(ri[0].state, STORE_RCPT_HELD);
    assert_false(ri[0].delay_warned);
    free(ri);
    assert_int_equal(store_note_next(f->st, 10, &notes, &nn), STORE_OK);
    assert_int_equal(nn, 1);
    assert_int_equal(notes[0].kind, STORE_NOTE_FAILED);
    store_note_free(notes, nn);
}

/* test_env_info - map info and reader check. */
static void test_env_info(void **state)
{
    struct fx *f = *state;
    struct store_envinfo ei;
    int cleared = -1;

    assert_int_equal(store_env_info(f->st, &ei), STORE_OK);
    assert_true(ei.map_size >= 1 << 20);
    assert_int_equal(ei.map_size_max, 64 << 20);
    assert_true(ei.map_used > 0 && ei.map_used <= ei.map_size);
    assert_int_equal(ei.max_readers, 126);
    assert_int_equal(store_reader_check(f->st, &cleared), STORE_OK);
    assert_int_equal(cleared, 0);
    assert_int_equal(store_schema_version(), 1);
    assert_string_equal(store_rcpt_state_name(STORE_RCPT_LEASED), "leased");
}

/* test_status_ids - status texts and queue id round trips. */
static void test_status_ids(void **state)
{
    char buf[STORE_ID_LEN];
    store_msgid_t id;

    (void)state;
    assert_string_equal(store_strerror(STORE_FULL), "queue storage full");
    assert_string_equal(store_strerror(12345), "unknown status");
    assert_string_equal(store_id_format(0x4F2A9C, buf), "00004F2A9C");
    assert_true(store_id_parse(buf, &id));
    assert_int_equal(id, 0x4F2A9C);
    assert_true(store_id_parse("ffffffffffffffff", &id));
    assert_int_equal(id, UINT64_MAX);
    assert_false(store_id_parse("", &id));
    assert_false(store_id_parse("12G4", &id));
    assert_false(store_id_parse("11112222333344445", &id));
}

/* test_version_newer - a schema record from the future gives STORE_VERSION. */
static void test_version_newer(void **state)
{
    struct fx *f = *state;
    uint8_t rec[5] = {1, 0, 0, 0, 99};
    struct store_opts o = {.dir = f->dir};
    char err[256] = "";
    struct store *st2;

    assert_int_equal(store_debug_put(f->st, "meta", "schema", 6, rec, sizeof(rec)), STORE_OK);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(&st2, &o, err, sizeof(err)), STORE_VERSION);
    assert_null(st2);
    assert_non_null(strstr(err, "newer"));
    /* a read-only open says the same */
    o.readonly = true;
    assert_int_equal(store_open(&st2, &o, err, sizeof(err)), STORE_VERSION);
}

/* test_schema_corrupt - an undecodable schema record gives STORE_CORRUPT. */
static void test_schema_corrupt(void **state)
{
    struct fx *f = *state;
    uint8_t rec[3] = {1, 2, 3};
    char err[256] = "";
    struct store_opts o = {.dir = f->dir};
    struct store *st2;

    assert_int_equal(store_debug_put(f->st, "meta", "schema", 6, rec, sizeof(rec)), STORE_OK);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(&st2, &o, err, sizeof(err)), STORE_CORRUPT);
    assert_true(strlen(err) > 0);
}

/* test_record_corrupt - damaged records decode to STORE_CORRUPT, never a crash. */
static void test_record_corrupt(void **state)
{
    struct fx *f = *state;
    store_msgid_t id =
        add_msg(f->st, "default", "s@x", (const char *[]){"u@k.example"}, 1, "zz", 1);
    uint8_t key[12], junk[40];
    const char *doms[] = {"k.example"};
    struct store_owner me;
    struct store_claim *c;
    struct store_msg_info info;
    struct store_rcpt_info *ri;
    size_t nr, got;
    char buf[8];

    store_owner_self(&me);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 1);
    for (int i = 7; i >= 0; i--)
        key[7 - i] = (uint8_t)(id >> (i * 8));
    memset(key + 8, 0, 4);
    /* a recipient record of garbage */
    assert_int_equal(store_debug_put(f->st, "rcpt", key, 12, junk, sizeof(junk)), STORE_OK);
    assert_int_equal(store_msg_get(f->st, id, &info, &ri, &nr), STORE_CORRUPT);
    assert_int_equal(store_claim(f->st, doms, 1, false, &me, 60, 0, &c), STORE_CORRUPT);
    assert_null(c);
    /* a truncated envelope */
    assert_int_equal(store_debug_put(f->st, "msg", key, 8, junk, 5), STORE_OK);
    assert_int_equal(store_msg_get(f->st, id, &info, NULL, NULL), STORE_CORRUPT);
    assert_int_equal(store_body_read(f->st, id, 0, buf, sizeof(buf), &got), STORE_CORRUPT);
    assert_true(strlen(store_last_error(f->st)) > 0);
    /* a wrong-size body chunk */
    id = add_msg(f->st, "default", "s@x", (const char *[]){"u@k2.example"}, 1, "abcdef", 2);
    for (int i = 7; i >= 0; i--)
        key[7 - i] = (uint8_t)(id >> (i * 8));
    assert_int_equal(store_debug_put(f->st, "body", key, 12, "ab", 2), STORE_OK);
    assert_int_equal(store_body_read(f->st, id, 0, buf, sizeof(buf), &got), STORE_CORRUPT);
    /* the operator can still delete it */
    assert_int_equal(store_msg_delete(f->st, id), STORE_OK);
}

/* test_readonly - a read-only handle reads and refuses writes. */
static void test_readonly(void **state)
{
    struct fx *f = *state;
    struct store_opts o = {.dir = f->dir, .readonly = true};
    struct store *ro;
    char err[256];
    struct store_domain d;

    put_domain(f->st, "ro.example", -1, -1, 0);
    if (store_open(&ro, &o, err, sizeof(err)) != STORE_OK)
        fail_msg("read-only open: %s", err);
    assert_int_equal(store_domain_get(ro, "ro.example", &d), STORE_OK);
    assert_int_equal(store_domain_del(ro, "ro.example"), STORE_INVAL);
    store_close(ro);
}

/* test_bounce - operator bounce: pending recipients fail, one note. */
static void test_bounce(void **state)
{
    struct fx *f = *state;
    store_msgid_t id = add_msg(f->st, "default", "s@x.example",
                               (const char *[]){"a@b.example", "c@d.example"}, 2, "m", 1);
    const char *doms[] = {"b.example"};
    struct store_owner me;
    struct store_claim *c;
    struct store_note *notes;
    struct store_counts cnt;
    size_t nn, failed;

    store_owner_self(&me);
    assert_int_equal(store_claim(f->st, doms, 1, false, &me, 0, 0, &c), STORE_INVAL);
    assert_int_equal(store_claim(f->st, doms, 1, false, &me, 60, 0, &c), STORE_OK);
    store_claim_free(c);
    assert_int_equal(store_msg_bounce(f->st, id, NULL, &failed), STORE_OK);
    assert_int_equal(failed, 2);
    assert_int_equal(store_msg_bounce(f->st, id, NULL, &failed), STORE_OK);
    assert_int_equal(failed, 0);
    assert_int_equal(store_note_next(f->st, 5, &notes, &nn), STORE_OK);
    assert_int_equal(nn, 1);
    assert_int_equal(notes[0].nrcpts, 2);
    assert_string_equal(notes[0].rcpts[1].last_reply, "bounced by the operator");
    store_note_free(notes, nn);
    assert_int_equal(store_domain_counts(f->st, "b.example", &cnt), STORE_OK);
    assert_int_equal(cnt.messages, 0);
    assert_int_equal(store_note_done(f->st, id, STORE_NOTE_FAILED), STORE_OK);
    assert_int_equal(store_msg_get(f->st, id, NULL, NULL, NULL), STORE_NOTFOUND);
    assert_int_equal(store_msg_bounce(f->st, id, NULL, &failed), STORE_NOTFOUND);
}

/* poke_cb - iteration callback that only counts. */
static int poke_cb(const struct store_msg_info *m, const struct store_rcpt_info *r, size_t nr,
                   void *arg)
{
    (void)m;
    (void)r;
    (void)nr;
    (*(int *)arg)++;
    return 0;
}

/* poke_dcb - domain iteration callback that only counts. */
static int poke_dcb(const struct store_domain *d, void *arg)
{
    (void)d;
    (*(int *)arg)++;
    return 0;
}

/* poke_acb - account iteration callback that only counts. */
static int poke_acb(const struct store_account *a, void *arg)
{
    (void)a;
    (*(int *)arg)++;
    return 0;
}

/* status_ok - a status a damaged store may legitimately return. */
static bool status_ok(int rc)
{
    return rc == STORE_OK || rc == STORE_NOTFOUND || rc == STORE_CORRUPT || rc == STORE_BUSY;
}

/* test_fuzz_records - random bytes in random records never crash a call. */
static void test_fuzz_records(void **state)
{
    struct fx *f = *state;
    static const char *dbs[] = {"msg",   "rcpt",  "domains",   "accounts", "counters",
                                "notes", "sites", "by_domain", "leases",   "body"};
    const char *doms[] = {"f.example"};
    const char *env = getenv("HM_STORE_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    store_msgid_t ids[8];
    struct store_owner me;

    printf("seed %u\n", seed);
    srand(seed);
    store_owner_self(&me);
    put_domain(f->st, "f.example", 10, 5, 0);
    assert_int_equal(
        store_account_put(f->st, &(struct store_account){.name = "acc", .domains = "f.example"},
                          true),
        STORE_OK);
    for (int i = 0; i < 8; i++)
        ids[i] = add_msg(f->st, "default", "s@x", (const char *[]){"a@f.example", "b@f.example"}, 2,
                         "body", i + 1);
    for (int round = 0; round < 150; round++) {
        const char *db = dbs[rand() % 10];
        uint8_t key[64], val[96];
        size_t kl, vl = (size_t)rand() % sizeof(val);
        store_msgid_t id = ids[rand() % 8];
        struct store_msg_info info;
        struct store_rcpt_info *ri = NULL;
        struct store_claim *c = NULL;
        struct store_note *notes = NULL;
        struct store_counts cnt;
        struct store_domain d;
        size_t nr = 0, nn = 0, got, e1, e2;
        char buf[16];
        int n = 0;

        for (size_t k = 0; k < sizeof(val); k++)
            val[k] = (uint8_t)rand();
        if (rand() % 2)
            val[0] = 1; /* pass the version byte check, fail deeper */
        for (int b = 7; b >= 0; b--)
            key[7 - b] = (uint8_t)(id >> (b * 8));
        memset(key + 8, 0, 4);
        key[11] = (uint8_t)(rand() % 2);
        kl = strcmp(db, "msg") == 0 ? 8 : strcmp(db, "notes") == 0 ? 9 : 12;
        if (strcmp(db, "notes") == 0)
            key[8] = 1;
        if (strcmp(db, "domains") == 0 || strcmp(db, "by_domain") == 0)
            kl = (size_t)snprintf((char *)key, sizeof(key), "%s",
                                  db[0] == 'd' ? "f.example" : "example.f.");
        if (strcmp(db, "accounts") == 0)
            kl = (size_t)snprintf((char *)key, sizeof(key), "acc");
        if (strcmp(db, "counters") == 0)
            kl = (size_t)snprintf((char *)key, sizeof(key), "df.example");
        if (strcmp(db, "sites") == 0)
            kl = (size_t)snprintf((char *)key, sizeof(key), "default");
        if (store_debug_put(f->st, db, key, kl, val, vl ? vl : 1) != STORE_OK)
            continue; /* e.g. a DUPFIXED size mismatch: LMDB refused it */
        assert_true(status_ok(store_msg_get(f->st, id, &info, &ri, &nr)));
        free(ri);
        assert_true(status_ok(store_body_read(f->st, id, 0, buf, sizeof(buf), &got)));
        assert_true(status_ok(store_msg_iter(f->st, NULL, poke_cb, &n)));
        assert_true(status_ok(
            store_msg_iter(f->st, &(struct store_filter){.domain = "f.example", .subdomains = true},
                           poke_cb, &n)));
        assert_true(status_ok(store_domain_counts(f->st, "f.example", &cnt)));
        assert_true(status_ok(store_domain_get(f->st, "f.example", &d)));
        assert_true(status_ok(store_domain_iter(f->st, poke_dcb, &n)));
        assert_true(status_ok(store_account_iter(f->st, poke_acb, &n)));
        (void)store_account_may(f->st, "acc", "f.example");
        assert_true(status_ok(store_claim(f->st, doms, 1, true, &me, 60, 0, &c)));
        store_claim_free(c);
        assert_true(status_ok(store_lease_release(f->st, &me)));
        assert_true(status_ok(store_note_next(f->st, 4, &notes, &nn)));
        store_note_free(notes, nn);
        assert_true(status_ok(store_expire(f->st, 100, 1000, 500, &e1, &e2)));
        assert_true(status_ok(store_room_check(f->st, "default", 0, 0, "f.example", 1)));
    }
}

/* test_corrupt_skips - expiry and notes go on past a damaged message. */
static void test_corrupt_skips(void **state)
{
    struct fx *f = *state;
    store_msgid_t bad =
        add_msg(f->st, "default", "s@x", (const char *[]){"u@e.example"}, 1, "a", 1);
    store_msgid_t good =
        add_msg(f->st, "default", "s@x", (const char *[]){"u@e.example"}, 1, "b", 2);
    uint8_t key[9], junk[3] = {1, 0, 0};
    struct store_note *notes;
    size_t nn, exp, warn;

    for (int i = 7; i >= 0; i--)
        key[7 - i] = (uint8_t)(bad >> (i * 8));
    key[8] = STORE_NOTE_FAILED;
    assert_int_equal(store_debug_put(f->st, "msg", key, 8, junk, sizeof(junk)), STORE_OK);
    assert_int_equal(store_debug_put(f->st, "notes", key, 9, junk, sizeof(junk)), STORE_OK);
    assert_int_equal(store_expire(f->st, 10000, 100, 0, &exp, &warn), STORE_OK);
    assert_int_equal(exp, 1); /* the good message expired */
    assert_int_equal(store_note_next(f->st, 10, &notes, &nn), STORE_OK);
    assert_int_equal(nn, 1);
    assert_int_equal(notes[0].msgid, good);
    store_note_free(notes, nn);
    assert_int_equal(store_note_done(f->st, bad, STORE_NOTE_FAILED), STORE_OK);
}

/* main - run the API tests. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_iter_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msg_add_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_fd_piecewise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flags_move_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_room_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_outcome_notes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_and_max_msgs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_info, setup, teardown),
        cmocka_unit_test(test_status_ids),
        cmocka_unit_test_setup_teardown(test_version_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_skips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fuzz_records, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
