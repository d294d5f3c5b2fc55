/*
 * store_site.c - runtime site flags (paused, draining).
 *
 * Site addresses, certificates and limits live in the configuration; the
 * store only keeps the flags queuectl changes at run time, one tiny record
 * per site.  A site without a record has flags 0.
 */
#include "store_private.h"

#include <string.h>

struct store_site_job {
    const char *site;
    unsigned flags;
};

/* store_site_get_tx - read a site's flags (0 when it has no record). */
static int store_site_get_tx(struct store_tx *tx, void *arg)
{
    struct store_site_job *j = arg;
    struct store_rbuf r;
    MDB_val v;
    int rc = store_tx_get(tx, STORE_DB_SITES, j->site, strlen(j->site), &v);

    j->flags = 0;
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    store_rb_init(&r, &v);
    if (store_rb_version(&r))
        j->flags = store_rb_u32(&r);
    if (!store_rb_end(&r)) {
        store_set_error(tx->st, "site record %.64s corrupt", j->site);
        return STORE_CORRUPT;
    }
    return STORE_OK;
}

/* store_site_flags_get - a site's runtime flags (0 for a site never set). */
int store_site_flags_get(struct store *st, const char *site, unsigned *flags)
{
    struct store_site_job j = {site, 0};
    int rc;

    *flags = 0;
    if (store_name_check(site, STORE_SITE_MAX) != STORE_OK)
        return STORE_INVAL;
    rc = store_txn_run(st, false, store_site_get_tx, &j);
    *flags = j.flags;
    return rc;
}

/* store_site_set_tx - write a site's flags. */
static int store_site_set_tx(struct store_tx *tx, void *arg)
{
    struct store_site_job *j = arg;
    struct store_wbuf w;
    int rc;

    store_wb_init(&w);
    store_wb_u8(&w, STORE_REC_VERSION);
    store_wb_u32(&w, j->flags);
    rc = w.oom ? STORE_IO
               : store_tx_put(tx, STORE_DB_SITES, j->site, strlen(j->site), w.p, w.len, 0);
    store_wb_free(&w);
    return rc;
}

/* store_site_flags_set - replace a site's runtime flags. */
int store_site_flags_set(struct store *st, const char *site, unsigned flags)
{
    struct store_site_job j = {site, flags};

    if (store_name_check(site, STORE_SITE_MAX) != STORE_OK)
        return STORE_INVAL;
    return store_txn_run(st, true, store_site_set_tx, &j);
}
