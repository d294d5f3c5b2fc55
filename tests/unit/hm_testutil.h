/*
 * hm_testutil.h - shared helpers for tests and benchmarks that need a real
 * LMDB store in a private temporary directory.
 *
 * Header-only (static inline) so that any unit test, and bench/ programs
 * via a relative include, can use it without a CMake change or a link
 * dependency on cmocka.  The store directories are flat (LMDB's data.mdb
 * and lock.mdb plus whatever the store writes next to them), so removal
 * never recurses.  Nothing here aborts: failures are reported on stderr
 * and returned, so callers decide whether to assert or exit.
 *
 * Test data helpers fill in the store's defaults (held domains go to site
 * "default"), so a test only spells out what it is about.
 */
#ifndef HM_TESTUTIL_H
#define HM_TESTUTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conf.h"
#include "store.h"

/* hm_test_mkdtemp - make parent/hm_<tag>_XXXXXX in buf; buf or NULL. */
static inline char *hm_test_mkdtemp(char *buf, size_t len, const char *parent, const char *tag)
{
    int n = snprintf(buf, len, "%s/hm_%s_XXXXXX", parent ? parent : "/tmp", tag);

    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "hm_test_mkdtemp: directory name too long\n");
        return NULL;
    }
    if (mkdtemp(buf) == NULL) {
        perror("mkdtemp");
        return NULL;
    }
    return buf;
}

/* hm_test_rmdir - remove a flat directory and every file in it. */
static inline void hm_test_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/*
 * hm_test_store_open - open the store in dir with an initial map of map
 * octets growing up to max (0 = the store's default); NULL with the reason
 * on stderr on failure.
 */
static inline struct store *hm_test_store_open(const char *dir, uint64_t map, uint64_t max)
{
    struct store_opts o = {.dir = dir, .map_size = map, .map_size_max = max};
    struct store *st = NULL;
    char err[256];

    if (store_open(&st, &o, err, sizeof(err)) != STORE_OK) {
        fprintf(stderr, "store_open %s: %s\n", dir, err);
        return NULL;
    }
    return st;
}

#define HM_TEST_RCPTS_MAX 16

/*
 * hm_test_conf_init - an otherwise empty configuration with one site
 * "default" (hostname mx.isp.test) held in *site, which must outlive cf.
 */
static inline void hm_test_conf_init(struct conf *cf, struct conf_site *site)
{
    memset(site, 0, sizeof(*site));
    snprintf(site->name, sizeof(site->name), "default");
    snprintf(site->hostname, sizeof(site->hostname), "mx.isp.test");
    memset(cf, 0, sizeof(*cf));
    cf->sites = site;
    cf->nsites = 1;
}

/* hm_test_domain_init - a held domain on site "default", ETRN on, default hold and warning. */
static inline void hm_test_domain_init(struct store_domain *d, const char *name)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    snprintf(d->site, sizeof(d->site), "default");
    d->etrn_enabled = true;
    d->hold_time = -1;
    d->delay_warning = -1;
}

/*
 * hm_test_msg_add - one message from sender to rcpts[0..n) on site, body
 * from memory, arrived at arrival.  STORE_OK with *id set,
 * else the store's or the message's failing status.
 */
static inline int hm_test_msg_add(struct store *st, const char *site, const char *sender,
                                  const char *const *rcpts, size_t n, const char *body,
                                  int64_t arrival, store_msgid_t *id)
{
    struct store_rcpt_in r[HM_TEST_RCPTS_MAX];
    struct iovec iov = {(void *)body, strlen(body)};
    struct store_msg_in m = {.site = site,
                             .sender = sender,
                             .arrival = arrival,
                             .rcpts = r,
                             .nrcpts = n,
                             .iov = &iov,
                             .iovcnt = 1,
                             .body_fd = -1,
                             .body_len = strlen(body),
                             .client_addr = "127.0.0.1",
                             .client_helo = "mta.test"};
    const struct store_msg_in *mp = &m;
    int rc, status = -1;

    if (n == 0 || n > HM_TEST_RCPTS_MAX)
        return STORE_INVAL;
    for (size_t i = 0; i < n; i++)
        r[i] = (struct store_rcpt_in){.addr = rcpts[i]};
    rc = store_msg_add(st, &mp, 1, id, &status);
    return rc != STORE_OK ? rc : status;
}

#endif
