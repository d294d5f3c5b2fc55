/*
 * dlv_client.c - the SMTP client state machine behind dlv.h.
 *
 * One struct dlv_session drives one connection (a bufferevent it owns)
 * through GREETING -> EHLO [-> HELO] [-> STARTTLS -> EHLO] and then, for
 * each message of its source (dlv_src.h), MAIL -> RCPT... -> DATA -> BODY
 * -> DOT [-> RSET], and finally QUIT.  The state only changes in
 * dlv_enter_state(), which also arms the RFC 5321 4.5.3.2 timeouts.
 *
 * Replies are assembled line by line (a multi-line reply is one reply);
 * with PIPELINING the MAIL, RCPT and DATA commands of a message go out in
 * one write and the replies are counted back against them.  The body is
 * read from the source in DLV_CHUNK pieces and dot-stuffed into the
 * output buffer only while it holds less than DLV_OUT_HIGH bytes (the
 * write watermark callback refills it), so memory stays bounded.
 *
 * Outcomes are collected per message and handed to the source once the
 * message is finished (one store transaction per message).  Any loss of
 * the connection or timeout defers every recipient not yet final.
 * Ownership: the session owns bev, the source context and its copies of
 * the option strings; dlv_finish() frees the bufferevent, then calls done
 * exactly once, then frees the session.
 *
 * 8BITMIME policy: a message received as BODY=8BITMIME is not sent to a
 * peer that does not advertise 8BITMIME (we do not downgrade); its
 * recipients fail with 554 5.6.3 so the sender gets a DSN (RFC 6152).
 */
#include "dlv.h"
#include "dlv_src.h"
#include "log.h"
#include "tls.h"
#include "xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DLV_CHUNK           (64 * 1024)  /* body bytes read from the source at a time */
#define DLV_OUT_HIGH        (256 * 1024) /* stop filling the output buffer above this */
#define DLV_LINE_MAX        4096         /* a longer reply line is a protocol error */
#define DLV_REPLY_LINES_MAX 200          /* a longer multi-line reply is a protocol error */
#define DLV_QUIT_WAIT       10           /* seconds to wait for 221 */

#define DLV_CAP_PIPELINING 0x01u
#define DLV_CAP_SIZE       0x02u
#define DLV_CAP_8BITMIME   0x04u
#define DLV_CAP_DSN        0x08u
#define DLV_CAP_STARTTLS   0x10u

/* Per-recipient progress besides the final STORE_OUT_* kinds. */
#define DLV_K_PENDING  (-1) /* nothing known yet */
#define DLV_K_ACCEPTED (-2) /* RCPT 2xx, waiting for the end of data */

enum dlv_state {
    DLV_S_GREETING = 0,
    DLV_S_EHLO,
    DLV_S_HELO,
    DLV_S_STARTTLS,
    DLV_S_MAIL,
    DLV_S_RCPT,
    DLV_S_DATA,
    DLV_S_BODY,
    DLV_S_DOT,
    DLV_S_RSET,
    DLV_S_QUIT,
    DLV_S_DONE,
};

static const char *const dlv_state_names[] = {
    "GREETING", "EHLO", "HELO", "STARTTLS", "MAIL", "RCPT",
    "DATA",     "BODY", "DOT",  "RSET",     "QUIT", "DONE",
};

/* What we were doing, for "lost connection with X while ..." reasons. */
static const char *const dlv_state_while[] = {
    "receiving the initial server greeting",
    "performing the EHLO handshake",
    "performing the HELO handshake",
    "performing STARTTLS",
    "sending MAIL FROM",
    "sending RCPT TO",
    "sending DATA command",
    "sending message body",
    "sending end of data -- message may be sent more than once",
    "sending RSET",
    "sending QUIT",
    "finishing",
};

/* dlv_reply - one complete (possibly multi-line) server reply. */
struct dlv_reply {
    int code;
    size_t nlines;
    char text[STORE_REPLY_MAX]; /* "250 first line text second line ..." */
};

struct dlv_session {
    struct event_base *base;
    struct bufferevent *bev;
    const struct dlv_src_ops *ops;
    void *ctx;
    struct dlv_opts opts; /* string members point at the copies below */
    char *helo_name;
    char *peer_name;
    dlv_done_fn done;
    void *arg;
    enum dlv_state state;
    bool finishing;
    bool tls_on;
    bool ehlo_ok; /* EHLO (or HELO) succeeded */
    unsigned caps;
    unsigned caps_pending; /* collected while an EHLO reply is being read */
    uint64_t size_max;     /* peer SIZE limit, 0 = none */
    uint64_t size_pending;
    struct dlv_reply rep; /* reply being assembled */
    struct event *total_ev;
    struct event *kick_ev; /* processes input that was there before we started */
    /* messages */
    size_t nmsgs;
    size_t cur;
    bool msg_active;
    struct dlv_src_msg msg;
    int *kinds;
    char **replies;
    size_t *order; /* order[k] = recipient of the k-th RCPT sent */
    size_t rcpt_sent;
    size_t rcpt_replied;
    size_t accepted;
    bool pipe_txn;    /* MAIL/RCPT/DATA of this message went out together */
    bool mail_failed; /* MAIL (or a local check) already settled every recipient */
    bool abandon;     /* 354 without accepted recipients: dot sent to close DATA */
    uint64_t body_off;
    bool body_bol;
    bool body_eof;
    char *chunk;
    struct dlv_result res;
};

static void dlv_read_cb(struct bufferevent *bev, void *arg);
static void dlv_write_cb(struct bufferevent *bev, void *arg);
static void dlv_event_cb(struct bufferevent *bev, short what, void *arg);
static void dlv_next_msg(struct dlv_session *s);
static void dlv_finish(struct dlv_session *s);

/* dlv_tv - a timeval of sec seconds. */
static struct timeval dlv_tv(int sec)
{
    struct timeval tv = {.tv_sec = sec > 0 ? sec : 1, .tv_usec = 0};
    return tv;
}

/* dlv_enter_state - the only writer of s->state; arms that state's timeouts. */
static void dlv_enter_state(struct dlv_session *s, enum dlv_state st)
{
    struct timeval rd, wr;
    int rsec = s->opts.command_timeout;

    log_debug("dlv %s: %s -> %s", s->peer_name, dlv_state_names[s->state], dlv_state_names[st]);
    s->state = st;
    if (st == DLV_S_DONE || s->bev == NULL)
        return;
    switch (st) {
    case DLV_S_GREETING:
        rsec = s->opts.greeting_timeout;
        break;
    case DLV_S_DATA:
        rsec = s->opts.data_init_timeout;
        break;
    case DLV_S_DOT:
        rsec = s->opts.data_term_timeout;
        break;
    case DLV_S_QUIT:
        rsec = s->opts.command_timeout < DLV_QUIT_WAIT ? s->opts.command_timeout : DLV_QUIT_WAIT;
        break;
    default:
        break;
    }
    wr = dlv_tv(st == DLV_S_BODY ? s->opts.data_block_timeout : s->opts.command_timeout);
    rd = dlv_tv(rsec);
    bufferevent_set_timeouts(s->bev, st == DLV_S_BODY ? NULL : &rd, &wr);
}

/* dlv_send - queue one command line (CRLF added). */
static void dlv_send(struct dlv_session *s, const char *fmt, ...)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    va_list ap;

    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
}

/* dlv_kind_of - the store outcome a reply code means for a recipient. */
static int dlv_kind_of(int code)
{
    if (code >= 200 && code < 300)
        return STORE_OUT_DELIVERED;
    if (code >= 500 && code < 600)
        return STORE_OUT_FAILED;
    return STORE_OUT_DEFERRED;
}

/* dlv_refusal_kind - the outcome a refused command means: failed on 5xx, else deferred. */
static int dlv_refusal_kind(int code)
{
    return dlv_kind_of(code) == STORE_OUT_FAILED ? STORE_OUT_FAILED : STORE_OUT_DEFERRED;
}

/* dlv_safe_addr - true when an address can go on a command line as is. */
static bool dlv_safe_addr(const char *a)
{
    for (; *a; a++) {
        unsigned char c = (unsigned char)*a;
        if (c < 0x21 || c == 0x7f || c == '<' || c == '>')
            return false;
    }
    return true;
}

/* dlv_rcpt_set - record recipient j's outcome kind and reply text. */
static void dlv_rcpt_set(struct dlv_session *s, size_t j, int kind, const char *reply)
{
    s->kinds[j] = kind;
    free(s->replies[j]);
    s->replies[j] = xstrdup(reply);
}

/* dlv_settle_open - give kind to every accepted (and, unless accepted_only, pending) recipient. */
static void dlv_settle_open(struct dlv_session *s, int kind, const char *reply, bool accepted_only)
{
    for (size_t j = 0; j < s->msg.nrcpts; j++) {
        if (s->kinds[j] == DLV_K_ACCEPTED || (!accepted_only && s->kinds[j] == DLV_K_PENDING))
            dlv_rcpt_set(s, j, kind, reply);
    }
}

/* dlv_log_rcpt - the Postfix-style line for one recipient's outcome. */
static void dlv_log_rcpt(struct dlv_session *s, size_t j)
{
    static const char *const status[] = {"sent", "deferred", "bounced"};
    char addr[LOG_PEER_MAX + 1], reply[LOG_PEER_MAX + 1];
    struct dlv_src_rcpt r;
    long long delay = s->msg.arrival > 0 ? (long long)(time(NULL) - s->msg.arrival) : 0;
    int k = s->kinds[j];

    s->ops->rcpt(s->ctx, s->cur, j, &r);
    log_printable(addr, sizeof(addr), r.addr, strlen(r.addr));
    log_printable(reply, sizeof(reply), s->replies[j], strlen(s->replies[j]));
    log_info("%s: to=<%s>, relay=%s, delay=%lld, status=%s (%s)", s->msg.qid, addr, s->peer_name,
             delay, status[k], reply);
}

/* dlv_msg_end - finalise the current message: log, count, apply, free. */
static void dlv_msg_end(struct dlv_session *s, const char *lost)
{
    if (!s->msg_active)
        return;
    dlv_settle_open(s, STORE_OUT_DEFERRED, lost ? lost : "4.4.2 no reply from server", false);
    for (size_t j = 0; j < s->msg.nrcpts; j++) {
        dlv_log_rcpt(s, j);
        if (s->kinds[j] == STORE_OUT_DELIVERED)
            s->res.delivered++;
        else if (s->kinds[j] == STORE_OUT_FAILED)
            s->res.failed++;
        else
            s->res.deferred++;
    }
    s->ops->apply(s->ctx, s->cur, s->kinds, (const char *const *)s->replies);
    for (size_t j = 0; j < s->msg.nrcpts; j++)
        free(s->replies[j]);
    free(s->replies);
    free(s->kinds);
    free(s->order);
    s->replies = NULL;
    s->kinds = NULL;
    s->order = NULL;
    s->msg_active = false;
    s->cur++;
}

/* dlv_msg_load - make message s->cur current with every recipient pending. */
static void dlv_msg_load(struct dlv_session *s)
{
    size_t n;

    memset(&s->msg, 0, sizeof(s->msg));
    s->ops->msg(s->ctx, s->cur, &s->msg);
    n = s->msg.nrcpts ? s->msg.nrcpts : 1;
    s->kinds = xcalloc(n, sizeof(*s->kinds));
    s->replies = xcalloc(n, sizeof(*s->replies));
    s->order = xcalloc(n, sizeof(*s->order));
    for (size_t j = 0; j < s->msg.nrcpts; j++)
        s->kinds[j] = DLV_K_PENDING;
    s->msg_active = true;
    s->rcpt_sent = s->rcpt_replied = s->accepted = 0;
    s->mail_failed = s->abandon = s->pipe_txn = false;
    s->body_off = 0;
    s->body_bol = true;
    s->body_eof = false;
}

/* dlv_defer_all - defer the current and every remaining message with reason. */
static void dlv_defer_all(struct dlv_session *s, const char *reason)
{
    if (s->msg_active)
        dlv_msg_end(s, reason);
    while (s->cur < s->nmsgs) {
        dlv_msg_load(s);
        dlv_msg_end(s, reason);
    }
}

/* dlv_fail - the connection is unusable: defer what is open, close, report. */
static void dlv_fail(struct dlv_session *s, const char *why)
{
    char reason[STORE_REPLY_MAX];

    snprintf(reason, sizeof(reason), "%s", why);
    if (s->res.reason[0] == '\0')
        snprintf(s->res.reason, sizeof(s->res.reason), "%s", reason);
    dlv_defer_all(s, reason);
    dlv_finish(s);
}

/* dlv_fail_lost - dlv_fail with "<what> with <peer> while <state>". */
static void dlv_fail_lost(struct dlv_session *s, const char *what)
{
    char reason[STORE_REPLY_MAX];

    snprintf(reason, sizeof(reason), "4.4.2 %s with %.200s while %s", what, s->peer_name,
             dlv_state_while[s->state]);
    dlv_fail(s, reason);
}

/* dlv_quit - session level refusal with a live connection: defer the rest and QUIT. */
static void dlv_quit(struct dlv_session *s, const char *reason)
{
    if (reason != NULL) {
        if (s->res.reason[0] == '\0')
            snprintf(s->res.reason, sizeof(s->res.reason), "%s", reason);
        dlv_defer_all(s, reason);
    } else {
        s->res.session_ok = s->ehlo_ok;
    }
    dlv_send(s, "QUIT");
    dlv_enter_state(s, DLV_S_QUIT);
}

/* dlv_finish - free the connection, call done once, free the session. */
static void dlv_finish(struct dlv_session *s)
{
    if (s->finishing)
        return;
    s->finishing = true;
    dlv_enter_state(s, DLV_S_DONE);
    if (s->bev != NULL)
        bufferevent_free(s->bev);
    s->bev = NULL;
    if (s->total_ev != NULL)
        event_free(s->total_ev);
    if (s->kick_ev != NULL)
        event_free(s->kick_ev);
    s->ops->free(s->ctx);
    s->done(s, &s->res, s->arg);
    free(s->chunk);
    free(s->helo_name);
    free(s->peer_name);
    free(s);
}

/* dlv_send_mail - the MAIL FROM command with the parameters the peer supports. */
static void dlv_send_mail(struct dlv_session *s)
{
    char params[STORE_PARAM_MAX + 80] = "";
    size_t n = 0;

    if (s->caps & DLV_CAP_SIZE)
        n += snprintf(params + n, sizeof(params) - n, " SIZE=%" PRIu64, s->msg.size);
    if ((s->caps & DLV_CAP_8BITMIME) && s->msg.body_type == STORE_BODY_8BITMIME)
        n += snprintf(params + n, sizeof(params) - n, " BODY=8BITMIME");
    if ((s->caps & DLV_CAP_DSN) && s->msg.ret != STORE_RET_NONE)
        n += snprintf(params + n, sizeof(params) - n, " RET=%s",
                      s->msg.ret == STORE_RET_HDRS ? "HDRS" : "FULL");
    if ((s->caps & DLV_CAP_DSN) && s->msg.envid && s->msg.envid[0] && dlv_safe_addr(s->msg.envid))
        snprintf(params + n, sizeof(params) - n, " ENVID=%s", s->msg.envid);
    dlv_send(s, "MAIL FROM:<%s>%s", s->msg.sender, params);
}

/* dlv_send_rcpt - RCPT TO for recipient j, with NOTIFY/ORCPT when the peer has DSN. */
static void dlv_send_rcpt(struct dlv_session *s, size_t j)
{
    char params[STORE_PARAM_MAX + 64] = "";
    struct dlv_src_rcpt r;
    size_t n = 0;

    s->ops->rcpt(s->ctx, s->cur, j, &r);
    if ((s->caps & DLV_CAP_DSN) && r.notify != 0) {
        if (r.notify & STORE_NOTIFY_NEVER) {
            n += snprintf(params + n, sizeof(params) - n, " NOTIFY=NEVER");
        } else {
            const char *sep = " NOTIFY=";
            static const struct {
                unsigned bit;
                const char *name;
            } bits[] = {{STORE_NOTIFY_SUCCESS, "SUCCESS"},
                        {STORE_NOTIFY_FAILURE, "FAILURE"},
                        {STORE_NOTIFY_DELAY, "DELAY"}};
            for (size_t b = 0; b < 3; b++) {
                if (r.notify & bits[b].bit) {
                    n += snprintf(params + n, sizeof(params) - n, "%s%s", sep, bits[b].name);
                    sep = ",";
                }
            }
        }
    }
    if ((s->caps & DLV_CAP_DSN) && r.orcpt && r.orcpt[0] && dlv_safe_addr(r.orcpt))
        snprintf(params + n, sizeof(params) - n, " ORCPT=%s", r.orcpt);
    dlv_send(s, "RCPT TO:<%s>%s", r.addr, params);
    s->order[s->rcpt_sent++] = j;
}

/* dlv_local_checks - settle recipients we must not send (unsafe, too big, 8-bit). */
static bool dlv_local_checks(struct dlv_session *s)
{
    const char *why = NULL;
    char buf[STORE_REPLY_MAX];
    size_t usable = 0;

    if (!dlv_safe_addr(s->msg.sender)) {
        why = "501 5.1.7 invalid sender address";
    } else if ((s->caps & DLV_CAP_SIZE) && s->size_max > 0 && s->msg.size > s->size_max) {
        snprintf(buf, sizeof(buf),
                 "552 5.3.4 message size %" PRIu64 " exceeds the fixed maximum %" PRIu64 " of %s",
                 s->msg.size, s->size_max, s->peer_name);
        why = buf;
    } else if (s->msg.body_type == STORE_BODY_8BITMIME && !(s->caps & DLV_CAP_8BITMIME)) {
        why = "554 5.6.3 8-bit message and the server does not support 8BITMIME";
    }
    if (why != NULL) {
        dlv_settle_open(s, STORE_OUT_FAILED, why, false);
        return false;
    }
    for (size_t j = 0; j < s->msg.nrcpts; j++) {
        struct dlv_src_rcpt r;
        s->ops->rcpt(s->ctx, s->cur, j, &r);
        if (!dlv_safe_addr(r.addr))
            dlv_rcpt_set(s, j, STORE_OUT_FAILED, "501 5.1.3 invalid recipient address");
        else
            usable++;
    }
    return usable > 0;
}

/* dlv_next_rcpt - index of the next recipient still to be sent, or nrcpts. */
static size_t dlv_next_rcpt(struct dlv_session *s, size_t from)
{
    while (from < s->msg.nrcpts && s->kinds[from] != DLV_K_PENDING)
        from++;
    return from;
}

/* dlv_start_txn - begin message s->cur: MAIL, or MAIL+RCPTs+DATA when pipelining. */
static void dlv_start_txn(struct dlv_session *s)
{
    dlv_send_mail(s);
    s->pipe_txn = (s->caps & DLV_CAP_PIPELINING) != 0;
    if (s->pipe_txn) {
        for (size_t j = dlv_next_rcpt(s, 0); j < s->msg.nrcpts; j = dlv_next_rcpt(s, j + 1))
            dlv_send_rcpt(s, j);
        dlv_send(s, "DATA");
    }
    dlv_enter_state(s, DLV_S_MAIL);
}

/* dlv_next_msg - start the next message that needs the wire, or QUIT. */
static void dlv_next_msg(struct dlv_session *s)
{
    while (s->cur < s->nmsgs) {
        dlv_msg_load(s);
        if (s->msg.nrcpts > 0 && dlv_local_checks(s)) {
            dlv_start_txn(s);
            return;
        }
        dlv_msg_end(s, NULL);
    }
    dlv_quit(s, NULL);
}

/* dlv_rset - after a failed transaction: finish the message and RSET. */
static void dlv_rset(struct dlv_session *s)
{
    dlv_msg_end(s, NULL);
    dlv_send(s, "RSET");
    dlv_enter_state(s, DLV_S_RSET);
}

/* dlv_dot_stuff - append n body bytes to out, doubling a '.' at each line start. */
void dlv_dot_stuff(struct evbuffer *out, const char *p, size_t n, bool *bol)
{
    size_t i = 0;

    while (i < n) {
        const char *nl;
        size_t end;

        if (*bol && p[i] == '.')
            evbuffer_add(out, ".", 1);
        nl = memchr(p + i, '\n', n - i);
        end = nl ? (size_t)(nl - p) + 1 : n;
        evbuffer_add(out, p + i, end - i);
        *bol = nl != NULL;
        i = end;
    }
}

/* dlv_body_fill - top up the output with stuffed body, the dot at the end; 1 = session gone. */
static int dlv_body_fill(struct dlv_session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);

    while (!s->body_eof && evbuffer_get_length(out) < DLV_OUT_HIGH) {
        size_t got = 0;
        if (s->ops->read(s->ctx, s->cur, s->body_off, s->chunk, DLV_CHUNK, &got) != 0) {
            /* Close without the dot: the server must discard the partial message. */
            dlv_fail(s, "4.3.0 local error reading the message body");
            return 1;
        }
        if (got == 0) {
            s->body_eof = true;
            break;
        }
        dlv_dot_stuff(out, s->chunk, got, &s->body_bol);
        s->body_off += got;
    }
    if (!s->body_eof)
        return 0;
    if (!s->body_bol)
        evbuffer_add(out, "\r\n", 2);
    evbuffer_add(out, ".\r\n", 3);
    bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
    dlv_enter_state(s, DLV_S_DOT);
    return 0;
}

/* dlv_on_greeting - 220 starts the session; anything else ends it. */
static int dlv_on_greeting(struct dlv_session *s, const struct dlv_reply *r)
{
    if (r->code != 220) {
        char reason[STORE_REPLY_MAX];
        snprintf(reason, sizeof(reason), "host %s refused to talk to me: %.400s", s->peer_name,
                 r->text);
        dlv_quit(s, reason);
        return 0;
    }
    s->caps_pending = 0;
    dlv_send(s, "EHLO %s", s->helo_name);
    dlv_enter_state(s, DLV_S_EHLO);
    return 0;
}

/* dlv_ehlo_line - note one EHLO keyword line ("250-PIPELINING"). */
static void dlv_ehlo_line(struct dlv_session *s, const char *kw)
{
    if (strncasecmp(kw, "PIPELINING", 10) == 0 && (kw[10] == '\0' || kw[10] == ' ')) {
        s->caps_pending |= DLV_CAP_PIPELINING;
    } else if (strncasecmp(kw, "SIZE", 4) == 0 && (kw[4] == '\0' || kw[4] == ' ')) {
        s->caps_pending |= DLV_CAP_SIZE;
        s->size_pending = kw[4] == ' ' ? strtoull(kw + 5, NULL, 10) : 0;
    } else if (strcasecmp(kw, "8BITMIME") == 0) {
        s->caps_pending |= DLV_CAP_8BITMIME;
    } else if (strcasecmp(kw, "DSN") == 0) {
        s->caps_pending |= DLV_CAP_DSN;
    } else if (strcasecmp(kw, "STARTTLS") == 0) {
        s->caps_pending |= DLV_CAP_STARTTLS;
    }
}

/* dlv_on_ehlo - capabilities known: STARTTLS first if wanted, then the messages. */
static int dlv_on_ehlo(struct dlv_session *s, const struct dlv_reply *r)
{
    if (r->code >= 500 && r->code < 600 && s->state == DLV_S_EHLO) {
        dlv_send(s, "HELO %s", s->helo_name);
        dlv_enter_state(s, DLV_S_HELO);
        return 0;
    }
    if (r->code < 200 || r->code >= 300) {
        char reason[STORE_REPLY_MAX];
        snprintf(reason, sizeof(reason), "host %s refused %s: %.400s", s->peer_name,
                 dlv_state_names[s->state], r->text);
        dlv_quit(s, reason);
        return 0;
    }
    s->ehlo_ok = true;
    s->caps = s->state == DLV_S_EHLO ? s->caps_pending : 0;
    s->size_max = s->state == DLV_S_EHLO ? s->size_pending : 0;
    if (!s->tls_on && s->opts.starttls && s->opts.tls_ctx && (s->caps & DLV_CAP_STARTTLS)) {
        dlv_send(s, "STARTTLS");
        dlv_enter_state(s, DLV_S_STARTTLS);
        return 0;
    }
    dlv_next_msg(s);
    return 0;
}

/* dlv_on_starttls - 220: put the TLS filter on and say EHLO again; else go on in clear. */
static int dlv_on_starttls(struct dlv_session *s, const struct dlv_reply *r)
{
    struct bufferevent *tls;

    if (r->code != 220) {
        log_info("dlv %s: STARTTLS refused, continuing without TLS", s->peer_name);
        dlv_next_msg(s);
        return 0;
    }
    /* Plaintext the server sent after its 220 must not be trusted. */
    evbuffer_drain(bufferevent_get_input(s->bev),
                   evbuffer_get_length(bufferevent_get_input(s->bev)));
    tls = tls_wrap_client(s->base, s->bev, s->opts.tls_ctx, NULL);
    if (tls == NULL) {
        dlv_fail(s, "4.7.5 TLS setup failed");
        return 1;
    }
    s->bev = tls;
    s->tls_on = true;
    s->ehlo_ok = false;
    s->caps = 0;
    bufferevent_setcb(tls, dlv_read_cb, dlv_write_cb, dlv_event_cb, s);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
    s->caps_pending = 0;
    dlv_send(s, "EHLO %s", s->helo_name);
    dlv_enter_state(s, DLV_S_EHLO);
    return 1; /* stop reading lines from the old bufferevent */
}

/* dlv_on_mail - MAIL reply: a refusal settles every recipient of the message. */
static int dlv_on_mail(struct dlv_session *s, const struct dlv_reply *r)
{
    size_t j;

    if (r->code < 200 || r->code >= 300) {
        dlv_settle_open(s, dlv_refusal_kind(r->code), r->text, false);
        s->mail_failed = true;
        if (!s->pipe_txn) {
            dlv_rset(s);
            return 0;
        }
    }
    dlv_enter_state(s, DLV_S_RCPT);
    if (!s->pipe_txn) {
        j = dlv_next_rcpt(s, 0);
        dlv_send_rcpt(s, j);
    }
    return 0;
}

/* dlv_rcpt_index - the recipient the k-th RCPT reply belongs to (nrcpts if none). */
static size_t dlv_rcpt_index(struct dlv_session *s, size_t k)
{
    return k < s->rcpt_sent ? s->order[k] : s->msg.nrcpts;
}

/* dlv_on_rcpt - one RCPT reply; after the last one: DATA (or RSET when none accepted). */
static int dlv_on_rcpt(struct dlv_session *s, const struct dlv_reply *r)
{
    size_t j = dlv_rcpt_index(s, s->rcpt_replied++);

    if (j < s->msg.nrcpts && !s->mail_failed) {
        if (r->code >= 200 && r->code < 300) {
            dlv_rcpt_set(s, j, DLV_K_ACCEPTED, r->text);
            s->accepted++;
        } else {
            dlv_rcpt_set(s, j, dlv_kind_of(r->code), r->text);
        }
    }
    if (s->rcpt_replied < s->rcpt_sent)
        return 0;
    if (!s->pipe_txn) {
        size_t next = dlv_next_rcpt(s, j + 1);
        if (next < s->msg.nrcpts) {
            dlv_send_rcpt(s, next);
            return 0;
        }
        if (s->accepted == 0) {
            dlv_rset(s);
            return 0;
        }
        dlv_send(s, "DATA");
    }
    dlv_enter_state(s, DLV_S_DATA);
    return 0;
}

/* dlv_on_data - 354 starts the body; a refusal settles the accepted recipients. */
static int dlv_on_data(struct dlv_session *s, const struct dlv_reply *r)
{
    if (r->code == 354 && (s->accepted == 0 || s->mail_failed)) {
        /* Pipelined DATA accepted although nothing else was: close it empty. */
        s->abandon = true;
        evbuffer_add(bufferevent_get_output(s->bev), ".\r\n", 3);
        dlv_enter_state(s, DLV_S_DOT);
        return 0;
    }
    if (r->code == 354) {
        bufferevent_setwatermark(s->bev, EV_WRITE, DLV_CHUNK, 0);
        dlv_enter_state(s, DLV_S_BODY);
        return dlv_body_fill(s);
    }
    if (!s->mail_failed)
        dlv_settle_open(s, dlv_refusal_kind(r->code), r->text, true);
    dlv_rset(s);
    return 0;
}

/* dlv_on_dot - the reply to the end of data decides the accepted recipients. */
static int dlv_on_dot(struct dlv_session *s, const struct dlv_reply *r)
{
    if (s->abandon) {
        dlv_rset(s);
        return 0;
    }
    dlv_settle_open(s, dlv_kind_of(r->code), r->text, true);
    if (r->code >= 200 && r->code < 300) {
        dlv_msg_end(s, NULL);
        dlv_next_msg(s);
    } else {
        dlv_rset(s);
    }
    return 0;
}

/* dlv_on_body_reply - a reply before our dot: the server gave up on the data. */
static int dlv_on_body_reply(struct dlv_session *s, const struct dlv_reply *r)
{
    dlv_settle_open(s, dlv_refusal_kind(r->code), r->text, true);
    dlv_msg_end(s, NULL);
    dlv_fail(s, r->text);
    return 1;
}

/* dlv_on_reply - dispatch one complete reply by state; 1 = stop reading. */
static int dlv_on_reply(struct dlv_session *s, const struct dlv_reply *r)
{
    switch (s->state) {
    case DLV_S_GREETING:
        return dlv_on_greeting(s, r);
    case DLV_S_EHLO:
    case DLV_S_HELO:
        return dlv_on_ehlo(s, r);
    case DLV_S_STARTTLS:
        return dlv_on_starttls(s, r);
    case DLV_S_MAIL:
        return dlv_on_mail(s, r);
    case DLV_S_RCPT:
        return dlv_on_rcpt(s, r);
    case DLV_S_DATA:
        return dlv_on_data(s, r);
    case DLV_S_BODY:
        return dlv_on_body_reply(s, r);
    case DLV_S_DOT:
        return dlv_on_dot(s, r);
    case DLV_S_RSET:
        dlv_next_msg(s);
        return 0;
    case DLV_S_QUIT:
        dlv_finish(s);
        return 1;
    case DLV_S_DONE:
        return 1;
    }
    return 1;
}

/* dlv_reply_add - fold one reply line into s->rep; 1 = complete, -1 = malformed. */
static int dlv_reply_add(struct dlv_session *s, const char *line, size_t len)
{
    struct dlv_reply *r = &s->rep;
    size_t used;
    int code;

    if (len < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-'))
        return -1;
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (r->nlines == 0) {
        r->code = code;
        s->caps_pending = 0;
        s->size_pending = 0;
        snprintf(r->text, sizeof(r->text), "%.*s", (int)len, line);
    } else {
        used = strlen(r->text);
        if (used + 2 < sizeof(r->text))
            snprintf(r->text + used, sizeof(r->text) - used, " %.*s", (int)(len > 4 ? len - 4 : 0),
                     line + 4);
        /* The first EHLO line is the server's name; keywords follow. */
        if (s->state == DLV_S_EHLO)
            dlv_ehlo_line(s, len > 4 ? line + 4 : "");
    }
    r->nlines++;
    if (r->nlines > DLV_REPLY_LINES_MAX)
        return -1;
    if (len > 3 && line[3] == '-')
        return 0;
    r->code = code;
    return 1;
}

/* dlv_process_input - read every complete reply line available; stop when the session ends. */
static void dlv_process_input(struct dlv_session *s)
{
    struct bufferevent *bev = s->bev;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t len;

    while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
        int rc = len > DLV_LINE_MAX ? -1 : dlv_reply_add(s, line, len);
        if (rc < 0) {
            char shown[LOG_PEER_MAX + 1];
            log_warn("dlv %s: malformed reply \"%s\"", s->peer_name,
                     log_printable(shown, sizeof(shown), line, len));
            free(line);
            dlv_fail_lost(s, "protocol error");
            return;
        }
        free(line);
        if (rc == 0)
            continue;
        {
            struct dlv_reply r = s->rep;
            s->rep.nlines = 0;
            if (dlv_on_reply(s, &r) != 0)
                return;
        }
    }
    if (evbuffer_get_length(in) > DLV_LINE_MAX)
        dlv_fail_lost(s, "reply line too long");
}

/* dlv_read_cb - bufferevent read callback. */
static void dlv_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    dlv_process_input(arg);
}

/* dlv_write_cb - output drained below the low watermark: refill the body. */
static void dlv_write_cb(struct bufferevent *bev, void *arg)
{
    struct dlv_session *s = arg;

    (void)bev;
    if (s->state == DLV_S_BODY)
        (void)dlv_body_fill(s);
}

/* dlv_event_cb - EOF, errors and timeouts end the session; after QUIT that is normal. */
static void dlv_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct dlv_session *s = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED)
        return;
    if (s->state == DLV_S_QUIT) {
        dlv_finish(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        dlv_fail_lost(s, "conversation timed out");
    else
        dlv_fail_lost(s, "lost connection");
}

/* dlv_total_cb - the whole-session limit (ATRN) ran out. */
static void dlv_total_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dlv_abort(arg, "4.4.2 session time limit exceeded");
}

/* dlv_kick_cb - handle input that arrived before the engine took the connection. */
static void dlv_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dlv_session *s = arg;

    (void)fd;
    (void)what;
    if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
        dlv_process_input(s);
}

/* dlv_start_src - see dlv_src.h. */
struct dlv_session *dlv_start_src(struct event_base *base, struct bufferevent *bev,
                                  const struct dlv_src_ops *ops, void *ctx,
                                  const struct dlv_opts *opts, dlv_done_fn done, void *arg)
{
    struct dlv_session *s = xcalloc(1, sizeof(*s));
    struct timeval now = {0, 0};

    s->base = base;
    s->bev = bev;
    s->ops = ops;
    s->ctx = ctx;
    s->opts = *opts;
    s->helo_name = xstrdup(opts->helo_name ? opts->helo_name : "localhost");
    s->peer_name = xstrdup(opts->peer_name ? opts->peer_name : "peer");
    s->opts.helo_name = s->helo_name;
    s->opts.peer_name = s->peer_name;
    s->done = done;
    s->arg = arg;
    s->tls_on = opts->tls_active;
    s->nmsgs = ops->nmsgs(ctx);
    s->chunk = xmalloc(DLV_CHUNK);
    s->state = DLV_S_GREETING;
    bufferevent_setcb(bev, dlv_read_cb, dlv_write_cb, dlv_event_cb, s);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    dlv_enter_state(s, DLV_S_GREETING);
    if (opts->total_timeout > 0) {
        struct timeval tv = dlv_tv(opts->total_timeout);
        s->total_ev = evtimer_new(base, dlv_total_cb, s);
        evtimer_add(s->total_ev, &tv);
    }
    s->kick_ev = evtimer_new(base, dlv_kick_cb, s);
    evtimer_add(s->kick_ev, &now);
    return s;
}

/* dlv_abort - stop now: unacknowledged recipients are deferred; done is called. */
void dlv_abort(struct dlv_session *s, const char *reason)
{
    if (s == NULL || s->finishing)
        return;
    dlv_fail(s, reason ? reason : "4.3.2 delivery aborted");
}
