/*
 * test_store_index.c - the domain and site indexes and counters checked
 * against a brute-force scan of every record, on random data.
 *
 * Random messages (1-6 recipients over domains with subdomains, three
 * sites) are added in random group-commit batches, then random claims,
 * outcomes, deletes and site moves are applied.  After each round, for
 * every domain (exact and with subdomains) and site, store_msg_iter with
 * that filter and store_domain_counts/store_site_counts must equal what a
 * scan of all messages (store_msg_iter without filter) computes.  The seed
 * is printed so a failure can be replayed (HM_STORE_SEED=...).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hm_testutil.h"
#include "store.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NDOM   9
#define NSITE  3
#define MAXMSG 400

static const char *doms[NDOM] = {"a.example", "sub.a.example", "x.sub.a.example",
                                 "b.example", "ab.example",    "example",
                                 "c.test",    "sub.c.test",    "a.examplea"};
static const char *sites[NSITE] = {"default", "s1", "s2"};

/* Brute-force view: per message, per recipient pending flag and domain. */
struct bf_msg {
    store_msgid_t id;
    char site[STORE_SITE_MAX];
    uint64_t size;
    int64_t arrival;
    size_t nr;
    int dom[8];
    bool pending[8];
};

struct bf {
    struct bf_msg m[MAXMSG];
    size_t n;
};

/* dom_index - index of a domain name in doms[]. */
static int dom_index(const char *d)
{
    for (int i = 0; i < NDOM; i++)
        if (strcmp(doms[i], d) == 0)
            return i;
    fail_msg("unknown domain %s", d);
    return -1;
}

/* scan_cb - record one message of the full scan. */
static int scan_cb(const struct store_msg_info *m, const struct store_rcpt_info *r, size_t nr,
                   void *arg)
{
    struct bf *b = arg;
    struct bf_msg *x;

    assert_true(b->n < MAXMSG);
    x = &b->m[b->n++];
    memset(x, 0, sizeof(*x));
    x->id = m->id;
    snprintf(x->site, sizeof(x->site), "%s", m->site);
    x->size = m->size;
    x->arrival = m->arrival;
    x->nr = nr;
    assert_int_equal(nr, m->nrcpts);
    for (size_t i = 0; i < nr; i++) {
        assert_int_equal(r[i].idx, i);
        x->dom[i] = dom_index(r[i].domain);
        x->pending[i] = r[i].state == STORE_RCPT_HELD || r[i].state == STORE_RCPT_LEASED;
    }
    return 0;
}

/* under - is domain index d equal to, or (with sub) a subdomain of, base? */
static bool under(int d, int base, bool sub)
{
    size_t ld = strlen(doms[d]), lb = strlen(doms[base]);

    if (d == base)
        return true;
    return sub && ld > lb + 1 && strcmp(doms[d] + ld - lb, doms[base]) == 0 &&
           doms[d][ld - lb - 1] == '.';
}

struct got {
    const struct bf *b;
    int base;
    bool sub;
    const char *site;
    size_t msgs, rcpts;
    store_msgid_t last;
};

/* find - the brute-force record of a message id. */
static const struct bf_msg *find(const struct bf *b, store_msgid_t id)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->m[i].id == id)
            return &b->m[i];
    return NULL;
}

/* filt_cb - every iterated message/recipient must be expected. */
static int filt_cb(const struct store_msg_info *m, const struct store_rcpt_info *r, size_t nr,
                   void *arg)
{
    struct got *g = arg;
    const struct bf_msg *x = find(g->b, m->id);

    assert_non_null(x);
    assert_true(m->id > g->last);
    g->last = m->id;
    g->msgs++;
    if (g->site)
        assert_string_equal(m->site, g->site);
    for (size_t i = 0; i < nr; i++) {
        if (g->base >= 0) {
            assert_true(under(dom_index(r[i].domain), g->base, g->sub));
            assert_true(x->pending[r[i].idx]);
        }
        g->rcpts++;
    }
    return 0;
}

/* check_domain - iterate one domain filter and compare with the scan. */
static void check_domain(struct store *st, const struct bf *b, int base, bool sub)
{
    struct store_filter f = {.domain = doms[base], .subdomains = sub};
    struct got g = {.b = b, .base = base, .sub = sub};
    size_t msgs = 0, rcpts = 0, ex_msgs_exact = 0;
    uint64_t bytes = 0;
    int64_t oldest = 0;
    struct store_counts c;

    for (size_t i = 0; i < b->n; i++) {
        bool any = false, exact = false;

        for (size_t k = 0; k < b->m[i].nr; k++)
            if (b->m[i].pending[k] && under(b->m[i].dom[k], base, sub)) {
                any = true;
                rcpts++;
                exact |= b->m[i].dom[k] == base;
            }
        msgs += any;
        if (exact) {
            ex_msgs_exact++;
            bytes += b->m[i].size;
            if (oldest == 0)
                oldest = b->m[i].arrival;
        }
    }
    assert_int_equal(store_msg_iter(st, &f, filt_cb, &g), STORE_OK);
    assert_int_equal(g.msgs, msgs);
    assert_int_equal(g.rcpts, rcpts);
    assert_int_equal(store_domain_counts(st, doms[base], &c), STORE_OK);
    assert_int_equal(c.messages, ex_msgs_exact);
    assert_int_equal(c.bytes, bytes);
    assert_int_equal(c.oldest, oldest);
}

/* check_site - iterate one site and compare with the scan. */
static void check_site(struct store *st, const struct bf *b, const char *site)
{
    struct store_filter f = {.site = site};
    struct got g = {.b = b, .base = -1, .site = site};
    size_t msgs = 0;
    uint64_t bytes = 0;
    int64_t oldest = 0;
    struct store_counts c;

    for (size_t i = 0; i < b->n; i++) {
        bool any = false;

        for (size_t k = 0; k < b->m[i].nr; k++)
            any |= b->m[i].pending[k];
        if (any && strcmp(b->m[i].site, site) == 0) {
            msgs++;
            bytes += b->m[i].size;
            if (oldest == 0)
                oldest = b->m[i].arrival;
        }
    }
    assert_int_equal(store_msg_iter(st, &f, filt_cb, &g), STORE_OK);
    assert_int_equal(g.msgs, msgs);
    assert_int_equal(store_site_counts(st, site, &c), STORE_OK);
    assert_int_equal(c.messages, msgs);
    assert_int_equal(c.bytes, bytes);
    assert_int_equal(c.oldest, oldest);
}

/* check_all - full scan, then every domain and site filter. */
static void check_all(struct store *st, struct bf *b)
{
    b->n = 0;
    assert_int_equal(store_msg_iter(st, NULL, scan_cb, b), STORE_OK);
    for (int d = 0; d < NDOM; d++) {
        check_domain(st, b, d, false);
        check_domain(st, b, d, true);
    }
    for (int s = 0; s < NSITE; s++)
        check_site(st, b, sites[s]);
}

/* add_random - add a random batch of messages. */
static void add_random(struct store *st, int64_t *clock, size_t count)
{
    struct store_rcpt_in r[16][6];
    char addr[16][6][64];
    char body[16][300];
    struct iovec iov[16];
    struct store_msg_in m[16];
    const struct store_msg_in *mp[16];
    store_msgid_t ids[16];
    int status[16];

    assert_true(count <= 16);
    for (size_t i = 0; i < count; i++) {
        size_t nr = 1 + (size_t)rand() % 6, len = (size_t)rand() % sizeof(body[i]);

        for (size_t k = 0; k < nr; k++) {
            snprintf(addr[i][k], sizeof(addr[i][k]), "u%zu@%s", k, doms[rand() % NDOM]);
            r[i][k] = (struct store_rcpt_in){.addr = addr[i][k]};
        }
        memset(body[i], 'x', len);
        iov[i] = (struct iovec){body[i], len};
        m[i] = (struct store_msg_in){.site = sites[rand() % NSITE],
                                     .sender = "s@x.example",
                                     .arrival = ++*clock,
                                     .rcpts = r[i],
                                     .nrcpts = nr,
                                     .iov = &iov[i],
                                     .iovcnt = 1,
                                     .body_fd = -1,
                                     .body_len = len};
        mp[i] = &m[i];
    }
    assert_int_equal(store_msg_add(st, mp, count, ids, status), STORE_OK);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(status[i], STORE_OK);
}

/* churn - random claims with outcomes, deletes and moves. */
static void churn(struct store *st, const struct bf *b)
{
    struct store_owner me;
    struct store_claim *c;
    const char *d[1];
    struct store_outcome o[64];
    size_t no = 0;

    store_owner_self(&me);
    d[0] = doms[rand() % NDOM];
    assert_int_equal(store_claim(st, d, 1, rand() % 2, &me, 60, (size_t)rand() % 5, &c), STORE_OK);
    for (size_t i = 0; i < c->nmsgs; i++)
        for (size_t k = 0; k < c->msgs[i].nrcpts && no < 64; k++)
            o[no++] = (struct store_outcome){c->msgs[i].info.id, c->msgs[i].rcpts[k].idx,
                                             rand() % 3, "250 whatever"};
    store_claim_free(c);
    assert_int_equal(store_outcome_apply(st, &me, o, no, NULL), STORE_OK);
    assert_int_equal(store_lease_release(st, &me), STORE_OK);
    if (b->n > 0 && rand() % 3 == 0) {
        int rc = store_msg_delete(st, b->m[rand() % b->n].id);

        assert_true(rc == STORE_OK || rc == STORE_NOTFOUND); /* b may be stale */
    }
    if (b->n > 0 && rand() % 3 == 0) {
        int rc = store_msg_move_site(st, b->m[rand() % b->n].id, sites[rand() % NSITE]);

        assert_true(rc == STORE_OK || rc == STORE_NOTFOUND);
    }
}

/* test_index_vs_scan - random rounds of adds and churn, checked each round. */
static void test_index_vs_scan(void **state)
{
    char dir[64] = "/tmp/hm_store_idx_XXXXXX";
    struct store *st;
    struct bf *b = calloc(1, sizeof(*b));
    const char *env = getenv("HM_STORE_SEED");
    unsigned seed =
        env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
    int64_t clock = 1000;

    (void)state;
    printf("seed %u\n", seed);
    srand(seed);
    assert_non_null(mkdtemp(dir));
    assert_non_null(st = hm_test_store_open(dir, 1 << 20, 0));
    for (int round = 0; round < 12; round++) {
        for (int k = 0; k < 4; k++)
            add_random(st, &clock, 1 + (size_t)rand() % 8);
        check_all(st, b);
        for (int k = 0; k < 8; k++)
            churn(st, b);
        check_all(st, b);
    }
    store_close(st);
    hm_test_rmdir(dir);
    free(b);
}

/* main - run the index test. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_vs_scan),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
