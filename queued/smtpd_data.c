/*
 * smtpd_data.c - mail transactions and the DATA reader.
 *
 * Content is stored un-stuffed with canonical CRLF line ends, after a
 * Received header (RFC 5321 4.4) that we prepend.  Problems found while
 * reading (too big, a line over 1000 octets, NUL) do not abort the
 * stream: they are recorded in tx->error and reported after the final
 * dot, so client and server stay in step (OpenSMTPD tx->error style).
 *
 * Line-end policy (also in queued(8)):
 *  - end of data is only CRLF "." CRLF: a "." line ended by a bare LF, or
 *    following a line ended by a bare LF, is content (this closes the
 *    "SMTP smuggling" hole between hops that disagree);
 *  - a bare LF ending a content line, and a bare CR inside one, are
 *    stored as CRLF (normalised, as Postfix does by default), so what we
 *    relay later is always canonical.
 *
 * Bodies stay in memory up to SMTPD_SPILL_AT octets; past that they move
 * to an unlinked file in <state_dir>/tmp that store_msg_add() reads.
 */
#include "smtpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "log.h"
#include "xalloc.h"

#define SMTPD_FLUSH_AT (64 * 1024) /* spilled bodies are written in chunks this big */

/* smtpd_tx_new - an empty transaction bound to the session. */
struct smtpd_tx *smtpd_tx_new(struct smtpd_session *s)
{
    struct smtpd_tx *tx = xcalloc(1, sizeof(*tx));

    tx->sess_id = s->id;
    tx->site = xstrdup(s->site);
    tx->client_addr = xstrdup(s->addr);
    tx->client_helo = xstrdup(s->helo);
    tx->body_fd = -1;
    tx->prev_crlf = true;
    return tx;
}

/* smtpd_tx_free - release a transaction and everything it owns. */
void smtpd_tx_free(struct smtpd_tx *tx)
{
    size_t i;

    if (tx == NULL)
        return;
    for (i = 0; i < tx->nrcpts; i++) {
        free(tx->rcpts[i].addr);
        free(tx->rcpts[i].domain);
        free(tx->rcpts[i].orcpt);
    }
    free(tx->rcpts);
    free(tx->site);
    free(tx->client_addr);
    free(tx->client_helo);
    free(tx->sender);
    free(tx->envid);
    if (tx->body != NULL)
        evbuffer_free(tx->body);
    if (tx->body_fd >= 0)
        close(tx->body_fd);
    free(tx);
}

/* smtpd_tx_drop - free the session's transaction, if any. */
void smtpd_tx_drop(struct smtpd_session *s)
{
    smtpd_tx_free(s->tx);
    s->tx = NULL;
}

/* smtpd_received - prepend our trace header (RFC 5321 4.4, RFC 3848). */
static void smtpd_received(struct smtpd_session *s, struct smtpd_tx *tx)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    size_t before = evbuffer_get_length(tx->body);

    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
    evbuffer_add_printf(tx->body, "Received: from %s ([%s])\r\n\tby %s (holdmx) with %s", s->helo,
                        s->addr, s->hostname,
                        s->esmtp ? (s->tls ? "ESMTPS" : "ESMTP") : (s->tls ? "SMTPS" : "SMTP"));
    if (s->tls)
        evbuffer_add_printf(tx->body, "\r\n\t(%s)", s->tls_desc);
    if (tx->nrcpts == 1)
        evbuffer_add_printf(tx->body, "\r\n\tfor <%s>", tx->rcpts[0].addr);
    evbuffer_add_printf(tx->body, "; %s\r\n", date);
    tx->body_len += evbuffer_get_length(tx->body) - before;
}

/* smtpd_data_begin - 354, then content lines go to smtpd_data_line(). */
void smtpd_data_begin(struct smtpd_session *s)
{
    struct smtpd_tx *tx = s->tx;

    tx->body = evbuffer_new();
    tx->arrival = (int64_t)time(NULL);
    tx->prev_crlf = true;
    smtpd_received(s, tx);
    smtpd_enter_state(s, SMTPD_S_DATA);
    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* smtpd_spill_write - move the in-memory body to the spill file; SMTPD_TXE_IO on failure. */
static void smtpd_spill_write(struct smtpd_tx *tx)
{
    while (evbuffer_get_length(tx->body) > 0) {
        struct evbuffer_iovec v;
        ssize_t n = 0; /* stays 0 (failure) when nothing can be peeked */

        if (evbuffer_peek(tx->body, -1, NULL, &v, 1) >= 1)
            n = write(tx->body_fd, v.iov_base, v.iov_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_error("cannot write spill file: %s", strerror(errno));
            tx->error |= SMTPD_TXE_IO;
            return;
        }
        evbuffer_drain(tx->body, (size_t)n);
    }
}

/* smtpd_spill - past SMTPD_SPILL_AT: open the unlinked file and write out. */
static void smtpd_spill(struct smtpd_session *s, struct smtpd_tx *tx)
{
    size_t mem = evbuffer_get_length(tx->body);

    if (tx->error)
        return;
    if (tx->body_fd < 0 && mem >= SMTPD_SPILL_AT) {
        char path[sizeof(s->sd->tmpdir) + 32];

        snprintf(path, sizeof(path), "%s/body.XXXXXX", s->sd->tmpdir);
        tx->body_fd = mkstemp(path);
        if (tx->body_fd < 0) {
            log_error("cannot create spill file in %s: %s", s->sd->tmpdir, strerror(errno));
            tx->error |= SMTPD_TXE_IO;
            return;
        }
        unlink(path);
    }
    if (tx->body_fd >= 0 && mem >= SMTPD_FLUSH_AT)
        smtpd_spill_write(tx);
}

/* smtpd_data_store - append one content line (already un-stuffed) plus CRLF. */
static void smtpd_data_store(struct smtpd_session *s, struct smtpd_tx *tx, const char *p, size_t n)
{
    size_t i, start = 0;
    uint64_t max = s->sd->cf->max_message_size;

    for (i = 0; i < n; i++) { /* a bare CR becomes CRLF */
        if (p[i] != '\r')
            continue;
        evbuffer_add(tx->body, p + start, i - start);
        evbuffer_add(tx->body, "\r\n", 2);
        start = i + 1;
    }
    evbuffer_add(tx->body, p + start, n - start);
    evbuffer_add(tx->body, "\r\n", 2);
    tx->body_len += n + 2;
    if (max > 0 && tx->body_len > max) {
        tx->error |= SMTPD_TXE_SIZE;
        evbuffer_drain(tx->body, evbuffer_get_length(tx->body));
        return;
    }
    smtpd_spill(s, tx);
}

/* smtpd_data_error_reply - the reply for a transaction that went wrong. */
static void smtpd_data_error_reply(struct smtpd_session *s, unsigned error)
{
    if (error & SMTPD_TXE_SIZE)
        smtpd_reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
    else if (error & SMTPD_TXE_LINE)
        smtpd_reply(s, "500 5.5.0 Line too long");
    else if (error & SMTPD_TXE_NUL)
        smtpd_reply(s, "550 5.6.0 Message content contains NUL characters");
    else
        smtpd_reply(s, "451 4.3.0 Error: local error in processing");
}

/* smtpd_data_end - the final dot: reply an error now, or hand over to the commit. */
static void smtpd_data_end(struct smtpd_session *s)
{
    struct smtpd_tx *tx = s->tx;

    s->where = "END-OF-MESSAGE";
    if (tx->error == 0 && tx->body_fd >= 0)
        smtpd_spill_write(tx);
    if (tx->error != 0) {
        log_info("[%s]: message refused after DATA (error 0x%x, %llu octets)", s->addr, tx->error,
                 (unsigned long long)tx->body_len);
        smtpd_data_error_reply(s, tx->error);
        smtpd_tx_drop(s);
        smtpd_enter_state(s, SMTPD_S_HELO);
        return;
    }
    smtpd_commit_enqueue(s);
}

/* smtpd_data_line - one content line (or an over-long one that was dropped). */
void smtpd_data_line(struct smtpd_session *s, int lstatus, const char *line, size_t len,
                     unsigned flags, size_t raw)
{
    struct smtpd_tx *tx = s->tx;
    bool crlf = (flags & LINE_F_CRLF) != 0;

    if (lstatus == LINE_TOOLONG) {
        tx->error |= SMTPD_TXE_LINE;
        tx->prev_crlf = true;
        return;
    }
    if (len == 1 && line[0] == '.' && crlf && tx->prev_crlf) {
        smtpd_data_end(s);
        return;
    }
    tx->prev_crlf = crlf;
    if (raw - (line[0] == '.' ? 1 : 0) + (crlf ? 0 : 1) > SMTPD_TEXT_MAX)
        tx->error |= SMTPD_TXE_LINE;
    if (flags & LINE_F_NUL)
        tx->error |= SMTPD_TXE_NUL;
    if (tx->error)
        return;                      /* keep reading to the dot, store nothing more */
    if (line[0] == '.' && len > 1) { /* RFC 5321 4.5.2 transparency */
        line++;
        len--;
    }
    smtpd_data_store(s, tx, line, len);
}
