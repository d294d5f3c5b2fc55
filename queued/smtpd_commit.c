/*
 * smtpd_commit.c - group commit: many sessions' messages, one LMDB commit.
 *
 * At the end of DATA a session gives its transaction to the batch and
 * waits (state COMMIT, reading paused).  The first entry activates a
 * zero-timeout event; when the loop gets to it, every message that
 * arrived meanwhile is written with ONE store_msg_add() call (one fsync),
 * and only then does each session get its 250 (or 452/451).  Entries
 * carry the session id, not a pointer: a session that went away while
 * waiting is simply not found, its message is dropped (the client never
 * saw a 250, so it will send it again) and nothing dangles.
 */
#include "smtpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "log.h"
#include "metrics.h"
#include "xalloc.h"

/* smtpd_commit_enqueue - park the session's transaction in the batch. */
void smtpd_commit_enqueue(struct smtpd_session *s)
{
    struct smtpd *sd = s->sd;

    if (sd->npending == sd->apending) {
        sd->apending = sd->apending ? sd->apending * 2 : 16;
        sd->pending = xrealloc(sd->pending, sd->apending * sizeof(*sd->pending));
    }
    sd->pending[sd->npending++] = s->tx;
    s->tx = NULL;
    smtpd_enter_state(s, SMTPD_S_COMMIT);
    if (sd->npending == 1)
        event_active(sd->commit_ev, EV_TIMEOUT, 0);
}

/* smtpd_commit_fill - the store's view of one transaction. */
static void smtpd_commit_fill(struct smtpd_tx *tx, struct store_msg_in *m, struct store_rcpt_in *r,
                              struct iovec *iov)
{
    size_t i;

    memset(m, 0, sizeof(*m));
    for (i = 0; i < tx->nrcpts; i++) {
        r[i].addr = tx->rcpts[i].addr;
        r[i].notify = tx->rcpts[i].notify;
        r[i].orcpt = tx->rcpts[i].orcpt;
    }
    m->site = tx->site;
    m->sender = tx->sender;
    m->declared_size = tx->declared_size;
    m->body_type = tx->body_type;
    m->ret = tx->ret;
    m->envid = tx->envid;
    m->client_addr = tx->client_addr;
    m->client_helo = tx->client_helo;
    m->arrival = tx->arrival;
    m->rcpts = r;
    m->nrcpts = tx->nrcpts;
    m->body_len = tx->body_len;
    m->body_fd = tx->body_fd;
    if (tx->body_fd < 0) {
        iov->iov_len = evbuffer_get_length(tx->body);
        iov->iov_base = evbuffer_pullup(tx->body, -1);
        m->iov = iov;
        m->iovcnt = 1;
    }
}

/* smtpd_commit_log - the Postfix-style lines of an accepted message. */
static void smtpd_commit_log(const struct smtpd_tx *tx, const char *qid)
{
    char safe[LOG_PEER_MAX + 1];
    size_t i;

    log_info("%s: client=[%s], helo=%s", qid, tx->client_addr,
             log_printable(safe, sizeof(safe), tx->client_helo, strlen(tx->client_helo)));
    log_info("%s: from=<%s>, size=%llu, nrcpt=%zu, site=%s", qid,
             log_printable(safe, sizeof(safe), tx->sender, strlen(tx->sender)),
             (unsigned long long)tx->body_len, tx->nrcpts, tx->site);
    for (i = 0; i < tx->nrcpts; i++)
        log_info("%s: to=<%s>, status=held", qid,
                 log_printable(safe, sizeof(safe), tx->rcpts[i].addr, strlen(tx->rcpts[i].addr)));
}

/* smtpd_commit_reply - tell one session how its message fared. */
static void smtpd_commit_reply(struct smtpd *sd, struct smtpd_tx *tx, int status, store_msgid_t id)
{
    struct smtpd_session *s = smtpd_session_find(sd, tx->sess_id);
    char qid[STORE_ID_LEN];

    if (status == STORE_OK) {
        store_id_format(id, qid);
        smtpd_commit_log(tx, qid);
        metrics_inc(METRIC_ACCEPTED_MESSAGES);
        metrics_add(METRIC_ACCEPTED_BYTES, tx->body_len);
    } else {
        log_warn("message from [%s] not queued: %s", tx->client_addr, store_strerror(status));
    }
    if (s == NULL || s->state != SMTPD_S_COMMIT)
        return;
    if (status == STORE_OK)
        smtpd_reply(s, "250 2.0.0 Ok: queued as %s", qid);
    else if (status == STORE_FULL || status == STORE_LIMIT)
        smtpd_reply(s, "452 4.3.1 Insufficient system storage");
    else
        smtpd_reply(s, "451 4.3.0 Error: local error in processing");
    smtpd_enter_state(s, SMTPD_S_HELO);
    smtpd_resume(s);
}

/* smtpd_commit_live - drop batch entries whose session has gone; returns the rest. */
static size_t smtpd_commit_live(struct smtpd *sd, struct smtpd_tx **batch, size_t n)
{
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        if (smtpd_session_find(sd, batch[i]->sess_id) == NULL) {
            log_info("lost connection after END-OF-MESSAGE from [%s]: message dropped",
                     batch[i]->client_addr);
            smtpd_tx_free(batch[i]);
            continue;
        }
        batch[k++] = batch[i];
    }
    return k;
}

/* smtpd_commit_run - commit the whole batch with one store_msg_add() and reply. */
void smtpd_commit_run(struct smtpd *sd)
{
    struct smtpd_tx **batch = sd->pending;
    size_t n = sd->npending, i, nr = 0, k;
    const struct store_msg_in **msgs;
    struct store_msg_in *m;
    struct store_rcpt_in *r;
    struct iovec *iov;
    store_msgid_t *ids;
    int *status, rc;
    struct timespec t0, t1;

    /* Take the batch: replies may resume sessions that queue the next one. */
    sd->pending = NULL;
    sd->npending = sd->apending = 0;
    n = smtpd_commit_live(sd, batch, n);
    if (n == 0) {
        free(batch);
        return;
    }
    for (i = 0; i < n; i++)
        nr += batch[i]->nrcpts;
    msgs = xcalloc(n + 1, sizeof(*msgs));
    m = xcalloc(n + 1, sizeof(*m));
    r = xcalloc(nr + 1, sizeof(*r));
    iov = xcalloc(n + 1, sizeof(*iov));
    ids = xcalloc(n + 1, sizeof(*ids));
    status = xcalloc(n + 1, sizeof(*status));
    for (i = 0, k = 0; i < n; k += batch[i]->nrcpts, i++) {
        smtpd_commit_fill(batch[i], &m[i], &r[k], &iov[i]);
        msgs[i] = &m[i];
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = store_msg_add(sd->st, msgs, n, ids, status);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    metrics_observe_commit((double)(t1.tv_sec - t0.tv_sec) +
                           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (rc != STORE_OK)
        log_error("group commit of %zu messages failed: %s", n, store_strerror(rc));
    for (i = 0; i < n; i++) {
        smtpd_commit_reply(sd, batch[i], rc == STORE_OK ? status[i] : rc, ids[i]);
        smtpd_tx_free(batch[i]);
    }
    if (n > 1)
        log_debug("group commit: %zu messages", n);
    free(batch);
    free(msgs);
    free(m);
    free(r);
    free(iov);
    free(ids);
    free(status);
}
