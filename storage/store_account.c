/*
 * store_account.c - accounts: who may collect which domains.
 *
 * An account record holds its comma-separated, lower-case domain list and
 * creation time; the name is the key.  store_account_get() hands out a
 * malloc'd domain list (store_account_release()).
 */
#include "store_private.h"
#include "store_scan.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STORE_ACCOUNT_BATCH 64

/* store_account_release - free what store_account_get() allocated. */
void store_account_release(struct store_account *a)
{
    if (a == NULL)
        return;
    free(a->domains);
    a->domains = NULL;
}

/* store_account_decode - parse an account record (domains malloc'd). */
static bool store_account_decode(const MDB_val *k, const MDB_val *v, struct store_account *a)
{
    struct store_rbuf r;

    memset(a, 0, sizeof(*a));
    if (k->mv_size == 0 || k->mv_size >= sizeof(a->name) || memchr(k->mv_data, 0, k->mv_size))
        return false;
    memcpy(a->name, k->mv_data, k->mv_size);
    store_rb_init(&r, v);
    if (!store_rb_version(&r))
        return false;
    a->domains = store_rb_strdup(&r);
    a->created = (int64_t)store_rb_u64(&r);
    if (!store_rb_end(&r)) {
        store_account_release(a);
        return false;
    }
    return true;
}

struct store_account_job {
    const struct store_account *in;
    char name[STORE_ACCOUNT_MAX];
    bool create_only;
    struct store_account *out;
};

/* store_account_load - read one account into j->out. */
static int store_account_load(struct store_tx *tx, const char *name, struct store_account *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = store_tx_get(tx, STORE_DB_ACCOUNTS, name, k.mv_size, &v);

    if (rc != STORE_OK)
        return rc;
    if (!store_account_decode(&k, &v, out)) {
        store_set_error(tx->st, "account record %.100s corrupt", name);
        return STORE_CORRUPT;
    }
    return STORE_OK;
}

/* store_account_put_tx - create or replace an account. */
static int store_account_put_tx(struct store_tx *tx, void *arg)
{
    struct store_account_job *j = arg;
    struct store_account old;
    struct store_wbuf w;
    char *low = NULL;
    int64_t created = j->in->created;
    int rc = store_account_load(tx, j->name, &old);

    if (rc == STORE_OK) {
        store_account_release(&old);
        if (j->create_only)
            return STORE_EXISTS;
        if (created == 0)
            created = old.created;
    } else if (rc != STORE_NOTFOUND && rc != STORE_CORRUPT) {
        return rc;
    }
    if (created == 0)
        created = (int64_t)store_now();
    if (j->in->domains && (low = strdup(j->in->domains)) == NULL)
        return STORE_IO;
    for (char *p = low; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    store_wb_init(&w);
    store_wb_u8(&w, STORE_REC_VERSION);
    store_wb_str(&w, low);
    store_wb_u64(&w, (uint64_t)created);
    rc = w.oom ? STORE_INVAL
               : store_tx_put(tx, STORE_DB_ACCOUNTS, j->name, strlen(j->name), w.p, w.len, 0);
    store_wb_free(&w);
    free(low);
    return rc;
}

/* store_account_put - create (create_only) or create/replace an account. */
int store_account_put(struct store *st, const struct store_account *a, bool create_only)
{
    struct store_account_job j = {.in = a, .create_only = create_only};

    if (a == NULL || store_name_check(a->name, STORE_ACCOUNT_MAX) != STORE_OK)
        return STORE_INVAL;
    memcpy(j.name, a->name, strlen(a->name) + 1);
    return store_txn_run(st, true, store_account_put_tx, &j);
}

/* store_account_get_tx - read one account. */
static int store_account_get_tx(struct store_tx *tx, void *arg)
{
    struct store_account_job *j = arg;

    return store_account_load(tx, j->name, j->out);
}

/* store_account_get - read an account; out->domains is malloc'd. */
int store_account_get(struct store *st, const char *name, struct store_account *out)
{
    struct store_account_job j = {.out = out};

    memset(out, 0, sizeof(*out));
    if (store_name_check(name, STORE_ACCOUNT_MAX) != STORE_OK)
        return STORE_INVAL;
    memcpy(j.name, name, strlen(name) + 1);
    return store_txn_run(st, false, store_account_get_tx, &j);
}

/* store_account_del_tx - delete one account. */
static int store_account_del_tx(struct store_tx *tx, void *arg)
{
    struct store_account_job *j = arg;

    return store_tx_del(tx, STORE_DB_ACCOUNTS, j->name, strlen(j->name), NULL, 0);
}

/* store_account_del - delete an account (STORE_NOTFOUND if absent). */
int store_account_del(struct store *st, const char *name)
{
    struct store_account_job j = {0};

    if (store_name_check(name, STORE_ACCOUNT_MAX) != STORE_OK)
        return STORE_INVAL;
    memcpy(j.name, name, strlen(name) + 1);
    return store_txn_run(st, true, store_account_del_tx, &j);
}

/* store_account_decode_any - store_account_decode() for store_scan_names(). */
static bool store_account_decode_any(const MDB_val *k, const MDB_val *v, void *elem)
{
    return store_account_decode(k, v, elem);
}

/* store_account_release_any - store_account_release() for store_scan_names(). */
static void store_account_release_any(void *elem)
{
    store_account_release(elem);
}

static const struct store_scan_ops store_account_scan = {
    .db = STORE_DB_ACCOUNTS,
    .what = "account",
    .elem_size = sizeof(struct store_account),
    .name_off = offsetof(struct store_account, name),
    .batch = STORE_ACCOUNT_BATCH,
    .decode = store_account_decode_any,
    .release = store_account_release_any,
};

struct store_account_visit {
    int (*cb)(const struct store_account *a, void *arg);
    void *arg;
};

/* store_account_visit - hand one scanned record to the caller's typed callback. */
static int store_account_visit(const void *elem, void *arg)
{
    struct store_account_visit *vis = arg;

    return vis->cb(elem, vis->arg);
}

/* store_account_iter - every account in name order; cb returns non-zero to stop. */
int store_account_iter(struct store *st, int (*cb)(const struct store_account *a, void *arg),
                       void *arg)
{
    struct store_account_visit vis = {cb, arg};

    return store_scan_names(st, &store_account_scan, store_account_visit, &vis);
}

/* store_account_list_has - is domain an item of the comma-separated list? */
static bool store_account_list_has(const char *list, const char *domain)
{
    size_t dl = strlen(domain);

    while (list && *list) {
        const char *end = strchr(list, ',');
        size_t n = end ? (size_t)(end - list) : strlen(list);

        while (n && isspace((unsigned char)*list))
            list++, n--;
        while (n && isspace((unsigned char)list[n - 1]))
            n--;
        if (n == dl && strncasecmp(list, domain, n) == 0)
            return true;
        list = end ? end + 1 : NULL;
    }
    return false;
}

/* store_account_may - true when account may collect domain (case-insensitive). */
bool store_account_may(struct store *st, const char *account, const char *domain)
{
    struct store_account a;
    bool ok;

    if (domain == NULL || domain[0] == '\0' || store_account_get(st, account, &a) != STORE_OK)
        return false;
    ok = store_account_list_has(a.domains, domain);
    store_account_release(&a);
    return ok;
}
