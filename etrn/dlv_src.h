/*
 * dlv_src.h - where the SMTP client engine gets its messages (internal).
 *
 * The engine in dlv_client.c does not know whether it is sending a store
 * claim (dlv_claim.c: bodies read with store_body_read, outcomes written
 * with store_outcome_apply) or one in-memory DSN (dlv_mem.c).  A source
 * is a small table of operations plus its context; the engine owns the
 * context after dlv_src_*_new and releases it with ops->free.
 */
#ifndef HM_DLV_SRC_H
#define HM_DLV_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlv.h"
#include "store.h"

/* dlv_src_msg - the envelope of message i as the engine needs it. */
struct dlv_src_msg {
    char qid[STORE_ID_LEN]; /* queue id for logs ("-" for DSNs) */
    const char *sender;     /* "" = null reverse path */
    uint64_t size;          /* body length in bytes */
    int body_type;          /* enum store_body_type */
    int ret;                /* enum store_ret */
    const char *envid;      /* NULL or "" = none */
    int64_t arrival;        /* for delay= in logs */
    size_t nrcpts;
};

/* dlv_src_rcpt - recipient j of message i. */
struct dlv_src_rcpt {
    const char *addr;
    unsigned notify;   /* STORE_NOTIFY_* (0 = not given) */
    const char *orcpt; /* NULL or "" = none */
};

/* dlv_src_ops - a message source: read-only views plus one outcome sink. */
struct dlv_src_ops {
    size_t (*nmsgs)(void *ctx);
    void (*msg)(void *ctx, size_t i, struct dlv_src_msg *out);
    void (*rcpt)(void *ctx, size_t i, size_t j, struct dlv_src_rcpt *out);
    /* read - body bytes of message i from off; 0 = ok (*got 0 at end), -1 = error. */
    int (*read)(void *ctx, size_t i, uint64_t off, void *buf, size_t len, size_t *got);
    /* apply - final outcomes (STORE_OUT_*) and replies of message i's recipients. */
    void (*apply)(void *ctx, size_t i, const int *kinds, const char *const *replies);
    void (*free)(void *ctx);
};

/* dlv_start_src - the engine's common entry: deliver everything src holds on bev. */
struct dlv_session *dlv_start_src(struct event_base *base, struct bufferevent *bev,
                                  const struct dlv_src_ops *ops, void *ctx,
                                  const struct dlv_opts *opts, dlv_done_fn done, void *arg);

/* dlv_dot_stuff - append n body bytes to out, doubling a '.' at each line start (*bol). */
struct evbuffer;
void dlv_dot_stuff(struct evbuffer *out, const char *p, size_t n, bool *bol);

#endif
