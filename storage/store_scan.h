/*
 * store_scan.h - batched walk of a name-keyed sub-database (held domains,
 * accounts), shared by store_domain.c and store_account.c.  Internal to
 * storage/ (it uses lmdb.h types through store_private.h).
 *
 * A walk reads at most ops->batch records per short read transaction into
 * a private array, leaves the transaction, then hands each record to
 * ops->visit outside any transaction, so a callback may call back into
 * the store.  The next batch resumes after the last name seen.  Records
 * that own memory are released through ops->release after their visit.
 */
#ifndef HM_STORE_SCAN_H
#define HM_STORE_SCAN_H

#include "store_private.h"

#define STORE_SCAN_NAME_MAX 256 /* longest key incl. NUL (domain and account names) */

/* store_scan_ops - what one kind of name-keyed record looks like. */
struct store_scan_ops {
    int db;           /* enum store_dbi */
    const char *what; /* "domain", "account": error texts */
    size_t elem_size; /* sizeof the decoded record */
    size_t name_off;  /* offsetof the record's NUL-terminated name (its key) */
    size_t batch;     /* records per read transaction */
    bool (*decode)(const MDB_val *k, const MDB_val *v, void *elem);
    void (*release)(void *elem); /* NULL when decoded records own nothing */
};

/*
 * store_scan_names - every record of ops->db in key order; visit returns
 * non-zero to stop.  STORE_OK, STORE_IO (out of memory), STORE_CORRUPT or
 * an LMDB error mapped by store_tx_rc().
 */
int store_scan_names(struct store *st, const struct store_scan_ops *ops,
                     int (*visit)(const void *elem, void *arg), void *arg);

#endif
