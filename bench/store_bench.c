/*
 * store_bench.c - measure the group commit of the holdmx queue store.
 *
 * Opens a store in a fresh temporary directory (or -d DIR's parent), then
 * times store_msg_add() commits (full fsync, LMDB default flags) of a
 * batch of 1 message and of 64 messages, each message 4 KiB with two
 * recipients, repeated -n times (default 200).  Prints median and p90
 * commit latency in milliseconds and the throughput in messages per
 * second (batch size / mean commit time).  The directory is removed at
 * the end.  Usage: store_bench [-n reps] [-s body_bytes] [-t tmpdir]
 */
#include "store.h"
/* The temp-dir and store-open helpers are shared with the unit tests. */
#include "../tests/unit/hm_testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_BATCH 64

struct bench_cfg {
    int reps;
    size_t body;
    const char *tmp;
};

/* bench_now_ms - monotonic time in milliseconds. */
static double bench_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* bench_cmp - order doubles. */
static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* bench_batch - time reps commits of batch messages; print the figures. */
static int bench_batch(struct store *st, const struct bench_cfg *cfg, size_t batch, char *body)
{
    struct store_rcpt_in r[2] = {{.addr = "user1@customer.example"},
                                 {.addr = "user2@other.example"}};
    struct iovec iov = {body, cfg->body};
    struct store_msg_in m = {.site = "default",
                             .sender = "sender@example.org",
                             .rcpts = r,
                             .nrcpts = 2,
                             .iov = &iov,
                             .iovcnt = 1,
                             .body_fd = -1,
                             .body_len = cfg->body,
                             .client_addr = "127.0.0.1",
                             .client_helo = "bench.example"};
    const struct store_msg_in *mp[BENCH_MAX_BATCH];
    store_msgid_t ids[BENCH_MAX_BATCH];
    int status[BENCH_MAX_BATCH];
    double *t = calloc((size_t)cfg->reps, sizeof(*t)), sum = 0;

    if (t == NULL)
        return 1;
    for (size_t i = 0; i < batch; i++)
        mp[i] = &m;
    for (int i = 0; i < cfg->reps; i++) {
        double t0 = bench_now_ms();
        int rc;

        m.arrival = (int64_t)time(NULL);
        rc = store_msg_add(st, mp, batch, ids, status);
        t[i] = bench_now_ms() - t0;
        sum += t[i];
        if (rc != STORE_OK || status[0] != STORE_OK) {
            fprintf(stderr, "store_msg_add: %s (%s)\n", store_strerror(rc ? rc : status[0]),
                    store_last_error(st));
            free(t);
            return 1;
        }
    }
    qsort(t, (size_t)cfg->reps, sizeof(*t), bench_cmp);
    printf("batch %2zu x %zu B: median %.2f ms  p90 %.2f ms  %.0f msgs/s\n", batch, cfg->body,
           t[cfg->reps / 2], t[(cfg->reps * 9) / 10], (double)batch * cfg->reps / (sum / 1e3));
    free(t);
    return 0;
}

/* bench_args - parse the command line. */
static int bench_args(int argc, char **argv, struct bench_cfg *cfg)
{
    int c;

    while ((c = getopt(argc, argv, "n:s:t:h")) != -1) {
        switch (c) {
        case 'n':
            cfg->reps = atoi(optarg);
            break;
        case 's':
            cfg->body = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            cfg->tmp = optarg;
            break;
        default:
            fprintf(stderr, "usage: store_bench [-n reps] [-s body_bytes] [-t tmpdir]\n");
            return -1;
        }
    }
    return cfg->reps > 0 && cfg->body > 0 ? 0 : -1;
}

/* main - open a temporary store, run both batch sizes, clean up. */
int main(int argc, char **argv)
{
    struct bench_cfg cfg = {.reps = 200, .body = 4096, .tmp = "/tmp"};
    char dir[512], *body;
    struct store *st;
    int rc;

    if (bench_args(argc, argv, &cfg) != 0)
        return 64;
    if (hm_test_mkdtemp(dir, sizeof(dir), cfg.tmp, "store_bench") == NULL)
        return 1;
    if ((body = malloc(cfg.body)) == NULL) {
        hm_test_rmdir(dir);
        return 1;
    }
    memset(body, 'x', cfg.body);
    if ((st = hm_test_store_open(dir, 256ull << 20, 8ull << 30)) == NULL) {
        hm_test_rmdir(dir);
        free(body);
        return 1;
    }
    printf("store_bench: %d commits per batch size, fsync on, dir %s\n", cfg.reps, dir);
    rc = bench_batch(st, &cfg, 1, body) || bench_batch(st, &cfg, BENCH_MAX_BATCH, body);
    store_close(st);
    hm_test_rmdir(dir);
    free(body);
    return rc;
}
