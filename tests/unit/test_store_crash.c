/*
 * test_store_crash.c - the store under resource exhaustion and crashes.
 *
 * test_map_full: a 1 MiB map that may grow to 2 MiB fills up; writes then
 * fail cleanly with STORE_FULL (the batch's other messages still commit),
 * earlier messages stay intact, deletes work, and adds work again.
 *
 * test_kill_during_commit: a child adds messages in group commits as fast
 * as it can and writes each id to a pipe only after store_msg_add()
 * returned; the parent SIGKILLs it at a random moment, reopens the
 * environment and checks that every reported message is present with its
 * exact body and that the counters match a recount.  Three rounds on the
 * same environment.  The child's pid is the only one killed.
 *
 * test_map_resized: another process grows the map while our handle is
 * open; our reads and writes adopt the new size (MDB_MAP_RESIZED).
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
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NDOM 4
static const char *doms[NDOM] = {"one.example", "two.example", "sub.one.example", "x.test"};

/* fill_body - deterministic body bytes for sequence number seq. */
static void fill_body(char *b, size_t len, unsigned seq)
{
    for (size_t i = 0; i < len; i++)
        b[i] = (char)('A' + (seq * 7 + i) % 53);
}

/* body_len_of - deterministic body length for sequence number seq. */
static size_t body_len_of(unsigned seq)
{
    return 100 + (seq * 2654435761u) % 30000;
}

/* add_seq - add messages with sequence numbers seq..seq+n-1 in one commit. */
static int add_seq(struct store *st, unsigned seq, size_t n, store_msgid_t *ids, int *status)
{
    struct store_rcpt_in r[8][2];
    struct store_msg_in m[8];
    const struct store_msg_in *mp[8] = {NULL};
    struct iovec iov[8];
    char envid[8][32], *bodies[8];
    int rc;

    for (size_t i = 0; i < n; i++) {
        unsigned s = seq + (unsigned)i;
        size_t len = body_len_of(s);
        static char addr[8][2][64];

        bodies[i] = malloc(len);
        fill_body(bodies[i], len, s);
        iov[i] = (struct iovec){bodies[i], len};
        snprintf(envid[i], sizeof(envid[i]), "seq-%u", s);
        snprintf(addr[i][0], sizeof(addr[i][0]), "u@%s", doms[s % NDOM]);
        snprintf(addr[i][1], sizeof(addr[i][1]), "v@%s", doms[(s / 3) % NDOM]);
        r[i][0] = (struct store_rcpt_in){.addr = addr[i][0]};
        r[i][1] = (struct store_rcpt_in){.addr = addr[i][1]};
        m[i] = (struct store_msg_in){.site = "default",
                                     .sender = "s@x",
                                     .envid = envid[i],
                                     .arrival = s,
                                     .rcpts = r[i],
                                     .nrcpts = 2,
                                     .iov = &iov[i],
                                     .iovcnt = 1,
                                     .body_fd = -1,
                                     .body_len = len};
        mp[i] = &m[i];
    }
    rc = store_msg_add(st, mp, n, ids, status);
    for (size_t i = 0; i < n; i++)
        free(bodies[i]);
    return rc;
}

/* check_msg - message id has the envelope and exact body of its sequence. */
static void check_msg(struct store *st, store_msgid_t id)
{
    struct store_msg_info info;
    unsigned seq;
    size_t len, got, off = 0;
    char *want, *have;

    assert_int_equal(store_msg_get(st, id, &info, NULL, NULL), STORE_OK);
    assert_int_equal(sscanf(info.envid, "seq-%u", &seq), 1);
    len = body_len_of(seq);
    assert_int_equal(info.size, len);
    want = malloc(len);
    have = malloc(len);
    fill_body(want, len, seq);
    for (int i = 0; i < 100 && off < len; i++) {
        assert_int_equal(store_body_read(st, id, off, have + off, len - off, &got), STORE_OK);
        assert_true(got > 0);
        off += got;
    }
    assert_int_equal(off, len);
    assert_memory_equal(want, have, len);
    free(want);
    free(have);
}

/* test_map_full - STORE_FULL at the limit; consistent and usable after. */
static void test_map_full(void **state)
{
    char dir[64] = "/tmp/hm_store_full_XXXXXX";
    store_msgid_t ids[4], kept[200];
    int status[4], rc = STORE_OK;
    size_t nkept = 0, nfull = 0;
    struct store *st;
    struct store_envinfo ei;
    struct store_counts c;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_non_null(st = hm_test_store_open(dir, 1 << 20, 2 << 20));
    for (unsigned seq = 1; seq < 400 && nfull < 3; seq += 2) {
        rc = add_seq(st, seq, 2, ids, status);
        assert_true(rc == STORE_OK || rc == STORE_FULL);
        for (int i = 0; i < 2; i++) {
            if (rc == STORE_OK && status[i] == STORE_OK) {
                assert_true(nkept < 200);
                kept[nkept++] = ids[i];
            } else {
                assert_int_equal(rc == STORE_OK ? status[i] : rc, STORE_FULL);
                nfull++;
            }
        }
    }
    assert_true(nfull >= 3);
    assert_true(nkept > 10);
    assert_int_equal(store_env_info(st, &ei), STORE_OK);
    assert_int_equal(ei.map_size, 2 << 20);
    assert_int_equal(store_room_check(st, "default", 0, 0, NULL, 30000), STORE_FULL);
    for (size_t i = 0; i < nkept; i++)
        check_msg(st, kept[i]);
    /* delete half, then adds work again */
    for (size_t i = 0; i < nkept; i += 2)
        assert_int_equal(store_msg_delete(st, kept[i]), STORE_OK);
    assert_int_equal(store_room_check(st, "default", 0, 0, NULL, 30000), STORE_OK);
    assert_int_equal(add_seq(st, 1001, 2, ids, status), STORE_OK);
    assert_int_equal(status[0], STORE_OK);
    assert_int_equal(status[1], STORE_OK);
    check_msg(st, ids[0]);
    check_msg(st, ids[1]);
    for (size_t i = 1; i < nkept; i += 2)
        check_msg(st, kept[i]);
    assert_int_equal(store_site_counts(st, "default", &c), STORE_OK);
    assert_int_equal(c.messages, nkept / 2 + 2);
    store_close(st);
    /* reopen: still consistent */
    assert_non_null(st = hm_test_store_open(dir, 1 << 20, 2 << 20));
    check_msg(st, ids[0]);
    store_close(st);
    hm_test_rmdir(dir);
}

/* writer - child: add messages forever (bounded), report ids after commit. */
static int writer(const char *dir, int outfd, unsigned seq0)
{
    struct store *st = hm_test_store_open(dir, 1 << 20, 256 << 20);
    time_t t0 = time(NULL);

    if (st == NULL)
        return 2;
    for (unsigned seq = seq0; seq < seq0 + 100000 && time(NULL) - t0 < 30;) {
        store_msgid_t ids[8];
        int status[8];
        size_t n = 1 + seq % 5;

        if (add_seq(st, seq, n, ids, status) != STORE_OK)
            return 3;
        for (size_t i = 0; i < n; i++)
            if (status[i] != STORE_OK || write(outfd, &ids[i], sizeof(ids[i])) != sizeof(ids[i]))
                return 4;
        seq += (unsigned)n;
    }
    return 0;
}

struct recount {
    uint64_t msgs[NDOM], bytes[NDOM];
    uint64_t site_msgs, site_bytes;
};

/* recount_cb - add one message to the recount. */
static int recount_cb(const struct store_msg_info *m, const struct store_rcpt_info *r, size_t nr,
                      void *arg)
{
    struct recount *rc = arg;
    bool seen[NDOM] = {false};

    rc->site_msgs++;
    rc->site_bytes += m->size;
    for (size_t i = 0; i < nr; i++)
        for (int d = 0; d < NDOM; d++)
            if (strcmp(r[i].domain, doms[d]) == 0 && !seen[d]) {
                seen[d] = true;
                rc->msgs[d]++;
                rc->bytes[d] += m->size;
            }
    return 0;
}

/* check_counters - stored counters equal a recount from the records. */
static void check_counters(struct store *st)
{
    struct recount rc;
    struct store_counts c;

    memset(&rc, 0, sizeof(rc));
    assert_int_equal(store_msg_iter(st, NULL, recount_cb, &rc), STORE_OK);
    for (int d = 0; d < NDOM; d++) {
        assert_int_equal(store_domain_counts(st, doms[d], &c), STORE_OK);
        assert_int_equal(c.messages, rc.msgs[d]);
        assert_int_equal(c.bytes, rc.bytes[d]);
    }
    assert_int_equal(store_site_counts(st, "default", &c), STORE_OK);
    assert_int_equal(c.messages, rc.site_msgs);
    assert_int_equal(c.bytes, rc.site_bytes);
}

/* read_ids - read reported ids until EOF (bounded by time). */
static size_t read_ids(int fd, store_msgid_t *ids, size_t cap)
{
    size_t n = 0, part = 0;
    uint8_t *p = (uint8_t *)ids;
    time_t t0 = time(NULL);

    while (time(NULL) - t0 < 30 && n < cap) {
        ssize_t got = read(fd, p + part, cap * sizeof(*ids) - part);

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        part += (size_t)got;
        n = part / sizeof(*ids);
    }
    return n;
}

/* test_kill_during_commit - durable means durable, across SIGKILL. */
static void test_kill_during_commit(void **state)
{
    char dir[64] = "/tmp/hm_store_crash_XXXXXX";
    size_t cap = 400000, n, total = 0;
    store_msgid_t *ids = malloc(cap * sizeof(*ids));
    struct store *st;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

    (void)state;
    srand(seed);
    printf("seed %u\n", seed);
    assert_non_null(mkdtemp(dir));
    for (int round = 0; round < 3; round++) {
        int p[2], status;
        pid_t pid;

        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            _exit(writer(dir, p[1], (unsigned)round * 1000000u + 1));
        }
        close(p[1]);
        /* wait for the first durable message (at most 20 s), then kill at random */
        assert_true(poll(&(struct pollfd){p[0], POLLIN, 0}, 1, 20000) == 1);
        usleep(50000 + (useconds_t)(rand() % 400000));
        assert_int_equal(kill(pid, SIGKILL), 0);
        n = read_ids(p[0], ids + total, cap - total);
        close(p[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        printf("round %d: %zu messages reported durable\n", round, n);
        assert_true(n > 0);
        assert_non_null(st = hm_test_store_open(dir, 1 << 20, 256 << 20));
        total += n;
        for (size_t i = 0; i < total; i++) /* this round's and every earlier one */
            check_msg(st, ids[i]);
        check_counters(st);
        store_close(st);
    }
    hm_test_rmdir(dir);
    free(ids);
}

/* grower - child: open the shared env and grow its map well past 1 MiB. */
static int grower(const char *dir, int startfd, int outfd)
{
    struct store *st;
    char c;

    if (read(startfd, &c, 1) != 1 || (st = hm_test_store_open(dir, 1 << 20, 64 << 20)) == NULL)
        return 2;
    for (unsigned seq = 5000; seq < 5300; seq += 4) {
        store_msgid_t ids[4];
        int status[4];

        if (add_seq(st, seq, 4, ids, status) != STORE_OK || status[3] != STORE_OK)
            return 3;
        if (write(outfd, ids, sizeof(ids)) != sizeof(ids))
            return 4;
    }
    store_close(st);
    return 0;
}

/* test_map_resized - another process grows the map under an open handle. */
static void test_map_resized(void **state)
{
    char dir[64] = "/tmp/hm_store_resz_XXXXXX";
    int start[2], out[2], status;
    store_msgid_t ids[400], mine[2];
    int st2[2];
    struct store *st;
    struct store_envinfo ei;
    size_t n;
    pid_t pid;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(pipe(start), 0);
    assert_int_equal(pipe(out), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(start[1]);
        close(out[0]);
        _exit(grower(dir, start[0], out[1]));
    }
    close(start[0]);
    close(out[1]);
    assert_non_null(st = hm_test_store_open(dir, 1 << 20, 64 << 20));
    assert_int_equal(add_seq(st, 1, 2, mine, st2), STORE_OK);
    assert_int_equal(write(start[1], "g", 1), 1);
    n = read_ids(out[0], ids, 400);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(start[1]);
    close(out[0]);
    assert_int_equal(n, 300);
    /* our handle still maps 1 MiB: reads and writes must adopt the new size */
    for (size_t i = 0; i < n; i++)
        check_msg(st, ids[i]);
    check_msg(st, mine[0]);
    assert_int_equal(add_seq(st, 9000, 2, mine, st2), STORE_OK);
    assert_int_equal(st2[1], STORE_OK);
    check_msg(st, mine[1]);
    assert_int_equal(store_env_info(st, &ei), STORE_OK);
    assert_true(ei.map_size > (1 << 20));
    check_counters(st);
    store_close(st);
    hm_test_rmdir(dir);
}

/* main - run the crash tests. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_full),
        cmocka_unit_test(test_kill_during_commit),
        cmocka_unit_test(test_map_resized),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
