/*
 * fuzz_store.c - fuzz target for the storage record decoders
 * (storage/store_codec.c readers, the envelope and recipient decoders of
 * store_msg.c and store_rcpt.c) reached through the public read API.
 *
 * Input: a sequence of records, each a 2-byte big-endian length and that
 * many bytes.  The first is written raw with store_debug_put() as the
 * envelope of message 1, the next ones (at most FUZZ_STORE_RCPTS) as its
 * recipients 0, 1, ...; the keys the input does not supply are deleted.
 * Then store_msg_get() and store_body_read() read the message back.  A
 * corrupt record must give STORE_CORRUPT (never a crash, an over-read or
 * a huge allocation); a record that decodes must give NUL-terminated
 * strings and exactly nrcpts recipients.  The LMDB environment lives in a
 * temp directory under $TMPDIR (default /tmp), removed at exit.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#include "fuzz_common.h"

#define FUZZ_STORE_RCPTS 6

/* fuzz_store_env - the environment every input is written into. */
static struct {
    char dir[256];
    struct store *st;
} fst;

/* fuzz_store_rm - nftw callback removing one entry. */
static int fuzz_store_rm(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* fuzz_store_teardown - close the store and remove its directory (atexit). */
static void fuzz_store_teardown(void)
{
    store_close(fst.st);
    fst.st = NULL;
    nftw(fst.dir, fuzz_store_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* fuzz_store_setup - a fresh environment in a private temp directory. */
static void fuzz_store_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    struct store_opts so = {0};
    char err[256];

    snprintf(fst.dir, sizeof(fst.dir), "%s/hm-fuzz-store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    fuzz_assert(mkdtemp(fst.dir) != NULL);
    so.dir = fst.dir;
    so.map_size = 8u << 20;
    so.map_size_max = 32u << 20;
    fuzz_assert(store_open(&fst.st, &so, err, sizeof(err)) == STORE_OK);
    atexit(fuzz_store_teardown);
}

/* fuzz_store_key - the big-endian key of message 1 (8 bytes) or its recipient idx (12). */
static size_t fuzz_store_key(uint8_t k[12], bool rcpt, uint32_t idx)
{
    memset(k, 0, 12);
    k[7] = 1;
    if (!rcpt)
        return 8;
    k[8] = (uint8_t)(idx >> 24);
    k[9] = (uint8_t)(idx >> 16);
    k[10] = (uint8_t)(idx >> 8);
    k[11] = (uint8_t)idx;
    return 12;
}

/* fuzz_store_write - put the input's records, delete the ones it lacks. */
static void fuzz_store_write(const uint8_t *data, size_t size)
{
    uint8_t k[12];
    size_t off = 0, klen;
    int rec;

    for (rec = 0; rec <= FUZZ_STORE_RCPTS; rec++) {
        size_t n = 0;
        bool have = size - off >= 2;

        if (have) {
            n = ((size_t)data[off] << 8) | data[off + 1];
            off += 2;
            if (n > size - off)
                n = size - off;
        }
        klen = fuzz_store_key(k, rec > 0, rec > 0 ? (uint32_t)rec - 1 : 0);
        /* LMDB refuses empty values: an empty record is written as absent. */
        store_debug_put(fst.st, rec == 0 ? "msg" : "rcpt", k, klen,
                        have && n > 0 ? data + off : NULL, n);
        off += n;
    }
}

/* fuzz_store_check_info - a decoded envelope has terminated strings. */
static void fuzz_store_check_info(const struct store_msg_info *m)
{
    fuzz_assert(m->id == 1);
    fuzz_assert(memchr(m->site, '\0', sizeof(m->site)) != NULL);
    fuzz_assert(memchr(m->sender, '\0', sizeof(m->sender)) != NULL);
    fuzz_assert(memchr(m->envid, '\0', sizeof(m->envid)) != NULL);
    fuzz_assert(memchr(m->client_addr, '\0', sizeof(m->client_addr)) != NULL);
    fuzz_assert(memchr(m->client_helo, '\0', sizeof(m->client_helo)) != NULL);
}

/* fuzz_store_check_rcpt - a decoded recipient has terminated strings and its index. */
static void fuzz_store_check_rcpt(const struct store_rcpt_info *r, uint32_t idx)
{
    fuzz_assert(r->msgid == 1 && r->idx == idx);
    fuzz_assert(memchr(r->addr, '\0', sizeof(r->addr)) != NULL);
    fuzz_assert(memchr(r->domain, '\0', sizeof(r->domain)) != NULL && r->domain[0] != '\0');
    fuzz_assert(memchr(r->orcpt, '\0', sizeof(r->orcpt)) != NULL);
    fuzz_assert(memchr(r->last_reply, '\0', sizeof(r->last_reply)) != NULL);
}

/* LLVMFuzzerTestOneInput - store the records, read the message back. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store_msg_info info;
    struct store_rcpt_info *rcpts = NULL;
    size_t n = 0, got = 0, i;
    char body[64];
    int rc;

    if (fst.st == NULL)
        fuzz_store_setup();
    fuzz_store_write(data, size);
    rc = store_msg_get(fst.st, 1, &info, &rcpts, &n);
    fuzz_assert(rc == STORE_OK || rc == STORE_CORRUPT || rc == STORE_NOTFOUND);
    if (getenv("FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "store_msg_get: %d, %zu recipients\n", rc, n);
    if (rc == STORE_OK) {
        fuzz_store_check_info(&info);
        fuzz_assert(n == info.nrcpts && n <= FUZZ_STORE_RCPTS);
        for (i = 0; i < n; i++)
            fuzz_store_check_rcpt(&rcpts[i], (uint32_t)i);
        free(rcpts);
    }
    rc = store_body_read(fst.st, 1, 0, body, sizeof(body), &got);
    fuzz_assert(got <= sizeof(body));
    return 0;
}

/* Built-in seeds must be strings: these only reach the length checks. */
static const char *const fuzz_store_seeds[] FUZZ_SEEDS = {"", "\x01", "\x01\x01\x01",
                                                          "\x7f\x7f garbage"};

FUZZ_MAIN(fuzz_store_seeds)
