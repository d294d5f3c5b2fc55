/*
 * test_store_lease.c - leases across real processes sharing one LMDB
 * environment: two processes claiming the same domain concurrently never
 * lease one recipient twice and together cover every recipient; leases of
 * a SIGKILLed owner and expired leases are recovered.
 *
 * Every child is forked before any environment is opened in it, records
 * nothing but its own pid in the parent, and is killed/waited by pid only.
 * Every loop is bounded in count and time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hm_testutil.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NMSG      240
#define DOMAIN    "race.example"
#define LEASE_MAP (4u << 20) /* initial map; grows to the store default */

/* populate - NMSG messages; message i has 1 + i%3 recipients in DOMAIN. */
static size_t populate(struct store *st)
{
    size_t total = 0;

    for (int i = 0; i < NMSG; i++) {
        static const char *addrs[] = {"a@" DOMAIN, "b@" DOMAIN, "c@" DOMAIN};
        size_t n = 1 + (size_t)i % 3;
        struct store_rcpt_in r[4];
        struct store_msg_in m = {.site = "default",
                                 .sender = "s@x",
                                 .arrival = i + 1,
                                 .rcpts = r,
                                 .nrcpts = n + 1,
                                 .body_fd = -1};
        const struct store_msg_in *mp = &m;
        store_msgid_t id;
        int status;

        for (size_t k = 0; k < n; k++)
            r[k] = (struct store_rcpt_in){.addr = addrs[k]};
        r[n] = (struct store_rcpt_in){.addr = "x@other.example"};
        assert_int_equal(store_msg_add(st, &mp, 1, &id, &status), STORE_OK);
        assert_int_equal(status, STORE_OK);
        total += n;
    }
    return total;
}

/* claimer - child body: claim in small steps, report every leased rcpt. */
static int claimer(const char *dir, int startfd, int outfd, int releasefd)
{
    const char *doms[] = {DOMAIN};
    struct store_owner me;
    struct store *st;
    char c;
    time_t t0 = time(NULL);

    if (read(startfd, &c, 1) != 1 || (st = hm_test_store_open(dir, LEASE_MAP, 0)) == NULL)
        return 2;
    store_owner_self(&me);
    for (int i = 0; i < 10000 && time(NULL) - t0 < 30; i++) {
        struct store_claim *cl;

        if (store_claim(st, doms, 1, false, &me, 600, 2, &cl) != STORE_OK)
            return 3;
        for (size_t m = 0; m < cl->nmsgs; m++)
            for (size_t k = 0; k < cl->msgs[m].nrcpts; k++) {
                uint8_t rec[12];
                uint64_t id = cl->msgs[m].rcpts[k].msgid;

                memcpy(rec, &id, 8);
                memcpy(rec + 8, &cl->msgs[m].rcpts[k].idx, 4);
                if (write(outfd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
                    return 4;
            }
        if (cl->nmsgs == 0) {
            store_claim_free(cl);
            break;
        }
        store_claim_free(cl);
        usleep(500); /* let the other claimer in: both must really compete */
    }
    close(outfd);
    store_close(st);
    /* stay alive (leases stay live) until the parent has read everything */
    (void)!read(releasefd, &c, 1);
    return 0;
}

/* drain - read both children's pipes until EOF (bounded by time). */
static size_t drain(int fds[2], uint8_t *buf, size_t cap, size_t per[2])
{
    size_t len = 0;
    int open_fds = 2;
    time_t t0 = time(NULL);

    while (open_fds > 0 && time(NULL) - t0 < 60) {
        struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};

        if (poll(p, 2, 1000) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            ssize_t n;

            if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            n = read(fds[i], buf + len, cap - len);
            if (n <= 0) {
                close(fds[i]);
                fds[i] = -1;
                open_fds--;
            } else {
                len += (size_t)n;
                per[i] += (size_t)n;
            }
        }
    }
    return len;
}

/* rec_cmp - order 12-byte records. */
static int rec_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 12);
}

/* test_two_claimers - concurrent claims: no duplicates, full coverage. */
static void test_two_claimers(void **state)
{
    char dir[64] = "/tmp/hm_store_lease_XXXXXX";
    int start[2], release[2], out[2][2], fds[2];
    pid_t pids[2];
    size_t total, len, cap = NMSG * 3 * 12 + 64;
    uint8_t *buf = malloc(cap);
    struct store *st;
    struct store_counts c;
    size_t per[2] = {0, 0};

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_non_null(st = hm_test_store_open(dir, LEASE_MAP, 0));
    total = populate(st);
    store_close(st);
    assert_int_equal(pipe(start), 0);
    assert_int_equal(pipe(release), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe(out[i]), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(out[i][0]);
            close(start[1]);
            close(release[1]);
            _exit(claimer(dir, start[0], out[i][1], release[0]));
        }
        close(out[i][1]);
        fds[i] = out[i][0];
    }
    close(start[0]);
    close(release[0]);
    assert_int_equal(write(start[1], "gg", 2), 2);
    len = drain(fds, buf, cap, per);
    close(release[1]);
    for (int i = 0; i < 2; i++) {
        int status = -1;

        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    close(start[1]);
    assert_int_equal(len % 12, 0);
    assert_int_equal(len / 12, total);
    printf("claimed %zu and %zu recipients\n", per[0] / 12, per[1] / 12);
    assert_true(per[0] > 0 && per[1] > 0); /* both really competed */
    qsort(buf, len / 12, 12, rec_cmp);
    for (size_t i = 1; i < len / 12; i++)
        assert_true(memcmp(buf + (i - 1) * 12, buf + i * 12, 12) != 0);
    /* the counters did not move: leased is still pending */
    assert_non_null(st = hm_test_store_open(dir, LEASE_MAP, 0));
    assert_int_equal(store_domain_counts(st, DOMAIN, &c), STORE_OK);
    assert_int_equal(c.messages, NMSG);
    store_close(st);
    hm_test_rmdir(dir);
    free(buf);
}

/* test_killed_owner - a SIGKILLed owner's leases are recovered. */
static void test_killed_owner(void **state)
{
    char dir[64] = "/tmp/hm_store_kill_XXXXXX";
    const char *doms[] = {DOMAIN};
    int p[2], status;
    pid_t pid;
    struct store *st;
    struct store_claim *cl;
    struct store_owner me;
    size_t total, rec = 0, got = 0;
    char c;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_non_null(st = hm_test_store_open(dir, LEASE_MAP, 0));
    total = populate(st);
    store_close(st);
    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store_owner o;
        struct store *cs = hm_test_store_open(dir, LEASE_MAP, 0);

        close(p[0]);
        store_owner_self(&o);
        if (cs == NULL || store_claim(cs, doms, 1, false, &o, 3600, 0, &cl) != STORE_OK)
            _exit(2);
        (void)!write(p[1], "c", 1);
        for (int i = 0; i < 600; i++) /* until killed, at most 60 s */
            usleep(100000);
        _exit(0);
    }
    close(p[1]);
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    assert_non_null(st = hm_test_store_open(dir, LEASE_MAP, 0));
    store_owner_self(&me);
    /* while the owner lives, nothing can be claimed */
    assert_int_equal(store_claim(st, doms, 1, false, &me, 60, 0, &cl), STORE_OK);
    assert_int_equal(cl->nrcpts, 0);
    store_claim_free(cl);
    assert_int_equal(store_lease_recover(st, time(NULL), &rec), STORE_OK);
    assert_int_equal(rec, 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(store_lease_recover(st, time(NULL), &rec), STORE_OK);
    assert_int_equal(rec, total);
    assert_int_equal(store_lease_recover(st, time(NULL), &rec), STORE_OK);
    assert_int_equal(rec, 0);
    assert_int_equal(store_claim(st, doms, 1, false, &me, 60, 0, &cl), STORE_OK);
    got = cl->nrcpts;
    store_claim_free(cl);
    assert_int_equal(got, total);
    store_close(st);
    hm_test_rmdir(dir);
}

/* test_expired_lease - an expired lease of a live owner is recovered. */
static void test_expired_lease(void **state)
{
    char dir[64] = "/tmp/hm_store_exp_XXXXXX";
    const char *doms[] = {DOMAIN};
    struct store *st;
    struct store_claim *cl;
    struct store_owner me;
    struct store_rcpt_info *ri;
    size_t total, rec, nr;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_non_null(st = hm_test_store_open(dir, LEASE_MAP, 0));
    total = populate(st);
    store_owner_self(&me);
    assert_int_equal(store_claim(st, doms, 1, false, &me, 100, 0, &cl), STORE_OK);
    assert_int_equal(cl->nrcpts, total);
    store_claim_free(cl);
    assert_int_equal(store_lease_recover(st, time(NULL), &rec), STORE_OK);
    assert_int_equal(rec, 0);
    assert_int_equal(store_lease_recover(st, time(NULL) + 1000, &rec), STORE_OK);
    assert_int_equal(rec, total);
    assert_int_equal(store_msg_get(st, 1, NULL, &ri, &nr), STORE_OK);
    assert_int_equal(ri[0].state, STORE_RCPT_HELD);
    assert_int_equal(ri[0].lease_pid, 0);
    free(ri);
    store_close(st);
    hm_test_rmdir(dir);
}

/* main - run the lease tests. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_claimers),
        cmocka_unit_test(test_killed_owner),
        cmocka_unit_test(test_expired_lease),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
