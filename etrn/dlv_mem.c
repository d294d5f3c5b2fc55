/*
 * dlv_mem.c - the in-memory message source of the SMTP client engine.
 *
 * dlv_start_mem() copies one struct dlv_mem_msg (sender, recipients,
 * body) so the caller may free its own copy at once; outcomes are only
 * counted (and logged by the engine), since there is no store record.
 * Used for DSNs sent to bounce_relay.  A body with 8-bit bytes (a DSN
 * quoting an 8BITMIME original) is sent with BODY=8BITMIME, so it needs a
 * relay that offers 8BITMIME (the engine's policy: no downgrading).
 */
#include "dlv.h"
#include "dlv_src.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* dlv_mem - the source context: a private copy of one message. */
struct dlv_mem {
    char *sender;
    char **rcpts;
    size_t nrcpts;
    char *body;
    size_t body_len;
    bool eightbit; /* some byte >= 0x80: declare BODY=8BITMIME */
};

/* dlv_mem_nmsgs - always one message. */
static size_t dlv_mem_nmsgs(void *ctx)
{
    (void)ctx;
    return 1;
}

/* dlv_mem_msg - the envelope; DSNs have no queue id, SIZE is the body length. */
static void dlv_mem_msg(void *ctx, size_t i, struct dlv_src_msg *out)
{
    struct dlv_mem *m = ctx;

    (void)i;
    memset(out, 0, sizeof(*out));
    strcpy(out->qid, "-");
    out->sender = m->sender;
    out->size = m->body_len;
    out->body_type = m->eightbit ? STORE_BODY_8BITMIME : STORE_BODY_NONE;
    out->ret = STORE_RET_NONE;
    out->nrcpts = m->nrcpts;
}

/* dlv_mem_rcpt - recipient j, without DSN parameters. */
static void dlv_mem_rcpt(void *ctx, size_t i, size_t j, struct dlv_src_rcpt *out)
{
    struct dlv_mem *m = ctx;

    (void)i;
    memset(out, 0, sizeof(*out));
    out->addr = m->rcpts[j];
}

/* dlv_mem_read - copy body bytes from off. */
static int dlv_mem_read(void *ctx, size_t i, uint64_t off, void *buf, size_t len, size_t *got)
{
    struct dlv_mem *m = ctx;

    (void)i;
    *got = 0;
    if (off >= m->body_len)
        return 0;
    *got = m->body_len - off < len ? m->body_len - (size_t)off : len;
    memcpy(buf, m->body + off, *got);
    return 0;
}

/* dlv_mem_apply - nothing to record: the engine's result counts are the outcome. */
static void dlv_mem_apply(void *ctx, size_t i, const int *kinds, const char *const *replies)
{
    (void)ctx;
    (void)i;
    (void)kinds;
    (void)replies;
}

/* dlv_mem_free - release the copy. */
static void dlv_mem_free(void *ctx)
{
    struct dlv_mem *m = ctx;

    for (size_t j = 0; j < m->nrcpts; j++)
        free(m->rcpts[j]);
    free(m->rcpts);
    free(m->sender);
    free(m->body);
    free(m);
}

static const struct dlv_src_ops dlv_mem_ops = {
    dlv_mem_nmsgs, dlv_mem_msg, dlv_mem_rcpt, dlv_mem_read, dlv_mem_apply, dlv_mem_free,
};

/* dlv_start_mem - deliver one in-memory message (a DSN) on bev. */
struct dlv_session *dlv_start_mem(struct event_base *base, struct bufferevent *bev,
                                  const struct dlv_mem_msg *msg, const struct dlv_opts *opts,
                                  dlv_done_fn done, void *arg)
{
    struct dlv_mem *m = xcalloc(1, sizeof(*m));

    m->sender = xstrdup(msg->sender ? msg->sender : "");
    m->nrcpts = msg->nrcpts;
    m->rcpts = xcalloc(msg->nrcpts ? msg->nrcpts : 1, sizeof(*m->rcpts));
    for (size_t j = 0; j < msg->nrcpts; j++)
        m->rcpts[j] = xstrdup(msg->rcpts[j]);
    m->body_len = msg->body_len;
    m->body = xmalloc(msg->body_len ? msg->body_len : 1);
    if (msg->body_len)
        memcpy(m->body, msg->body, msg->body_len);
    for (size_t i = 0; i < msg->body_len && !m->eightbit; i++)
        m->eightbit = (unsigned char)msg->body[i] >= 0x80;
    return dlv_start_src(base, bev, &dlv_mem_ops, m, opts, done, arg);
}
