/*
 * dsn.c - RFC 3464 multipart/report builder for bounces and delay warnings.
 *
 * Layout: top-level headers (From MAILER-DAEMON, To the sender,
 * Auto-Submitted: auto-replied), part 1 text/plain for humans, part 2
 * message/delivery-status (per-message then per-recipient fields), part 3
 * the original as message/rfc822 (failures, RET=FULL or unspecified, up
 * to full_max bytes) or its header section as text/rfc822-headers (RET=HDRS,
 * delay warnings, larger messages).  Never built for the null sender.
 * The text is assembled in an evbuffer and returned as one malloc'd block.
 */
#include "dsn.h"
#include "xalloc.h"

#include <event2/buffer.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DSN_HEADERS_MAX (64 * 1024) /* header section read for text/rfc822-headers */
#define DSN_READ_CHUNK  (64 * 1024)

/* dsn_date - RFC 5322 date-time of t in UTC. */
static const char *dsn_date(int64_t t, char *buf, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

/* dsn_wants - true when rcpt asked for (or by default gets) a DSN of kind. */
bool dsn_wants(const struct store_rcpt_info *rcpt, int kind)
{
    if (rcpt->notify & STORE_NOTIFY_NEVER)
        return false;
    if (rcpt->notify == 0)
        return true; /* RFC 3461: absent NOTIFY = FAILURE (delays too, as most MTAs do) */
    return (rcpt->notify &
            (kind == STORE_NOTE_DELAYED ? STORE_NOTIFY_DELAY : STORE_NOTIFY_FAILURE)) != 0;
}

/* dsn_clean - copy s without CR, LF and other controls (header safety). */
static void dsn_clean(char *out, size_t outsz, const char *s)
{
    size_t k = 0;

    for (; *s && k + 1 < outsz; s++)
        out[k++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? ' ' : *s;
    out[k] = '\0';
}

/* dsn_status - the RFC 3463 status for a recipient: from the reply, forced to the kind's class. */
static void dsn_status(const char *reply, int kind, char *out, size_t outsz)
{
    char want = kind == STORE_NOTE_FAILED ? '5' : '4';
    const char *p = reply;

    /* "550 5.1.1 ...": the enhanced code after the basic one; "4.4.2 ...": at the start. */
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
        isdigit((unsigned char)p[2]) && p[3] == ' ')
        p += 4;
    if ((p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.' &&
        isdigit((unsigned char)p[2])) {
        size_t n = strspn(p, "0123456789.");
        if (n < 12 && n >= 5) {
            snprintf(out, outsz, "%c%.*s", want, (int)n - 1, p + 1);
            return;
        }
    }
    if (kind == STORE_NOTE_FAILED)
        snprintf(out, outsz, "%s", strstr(reply, "expired") ? "5.4.7" : "5.0.0");
    else
        snprintf(out, outsz, "4.4.1");
}

/* dsn_read_all - up to max+1 bytes of the original (to tell "fits" from "too big"). */
static int dsn_read_all(const struct dsn_input *in, size_t max, char **buf, size_t *len)
{
    size_t cap = max + 1, n = 0;
    char *b = xmalloc(cap);

    while (n < cap) {
        size_t got = 0, want = cap - n < DSN_READ_CHUNK ? cap - n : DSN_READ_CHUNK;
        if (in->read(in->read_arg, n, b + n, want, &got) != 0) {
            free(b);
            return -1;
        }
        if (got == 0)
            break;
        n += got;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* dsn_header_len - length of the header section (up to and including the blank line). */
static size_t dsn_header_len(const char *b, size_t n)
{
    if (n >= 2 && b[0] == '\r' && b[1] == '\n')
        return 2;
    for (size_t i = 0; i + 3 < n; i++)
        if (memcmp(b + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return n;
}

/* dsn_human - part 1: what happened, in English. */
static void dsn_human(struct evbuffer *o, const struct dsn_input *in, const char *qid)
{
    char line[STORE_REPLY_MAX], addr[STORE_ADDR_MAX];

    if (in->kind == STORE_NOTE_FAILED)
        evbuffer_add_printf(o,
                            "This is the mail system at host %s.\r\n\r\n"
                            "Your message could not be delivered to one or more recipients.\r\n"
                            "It is attached below (queue id %s).\r\n\r\n",
                            in->hostname, qid);
    else
        evbuffer_add_printf(o,
                            "This is the mail system at host %s.\r\n\r\n"
                            "####################################################\r\n"
                            "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO      #\r\n"
                            "# RESEND YOUR MESSAGE.                             #\r\n"
                            "####################################################\r\n\r\n"
                            "Your message (queue id %s) is still being held for the\r\n"
                            "recipients below, whose mail server has not collected it yet.\r\n\r\n",
                            in->hostname, qid);
    for (size_t i = 0; i < in->nrcpts; i++) {
        if (!dsn_wants(&in->rcpts[i], in->kind))
            continue;
        dsn_clean(addr, sizeof(addr), in->rcpts[i].addr);
        dsn_clean(line, sizeof(line), in->rcpts[i].last_reply);
        evbuffer_add_printf(o, "<%s>: %s\r\n", addr, line[0] ? line : "no delivery attempt yet");
    }
}

/* dsn_status_part - part 2: message/delivery-status. */
static void dsn_status_part(struct evbuffer *o, const struct dsn_input *in)
{
    char date[64], buf[STORE_REPLY_MAX], st[16];

    evbuffer_add_printf(o, "Reporting-MTA: dns; %s\r\n", in->hostname);
    if (in->info->envid[0]) {
        dsn_clean(buf, sizeof(buf), in->info->envid);
        evbuffer_add_printf(o, "Original-Envelope-Id: %s\r\n", buf);
    }
    evbuffer_add_printf(o, "Arrival-Date: %s\r\n", dsn_date(in->info->arrival, date, sizeof(date)));
    for (size_t i = 0; i < in->nrcpts; i++) {
        const struct store_rcpt_info *r = &in->rcpts[i];
        if (!dsn_wants(r, in->kind))
            continue;
        dsn_clean(buf, sizeof(buf), r->addr);
        evbuffer_add_printf(o, "\r\nFinal-Recipient: rfc822; %s\r\n", buf);
        if (r->orcpt[0]) {
            dsn_clean(buf, sizeof(buf), r->orcpt);
            evbuffer_add_printf(o, "Original-Recipient: %s\r\n", buf);
        }
        evbuffer_add_printf(o, "Action: %s\r\n",
                            in->kind == STORE_NOTE_FAILED ? "failed" : "delayed");
        dsn_status(r->last_reply, in->kind, st, sizeof(st));
        evbuffer_add_printf(o, "Status: %s\r\n", st);
        if (r->last_reply[0]) {
            dsn_clean(buf, sizeof(buf), r->last_reply);
            if (isdigit((unsigned char)buf[0]) && isdigit((unsigned char)buf[1]) &&
                isdigit((unsigned char)buf[2]))
                evbuffer_add_printf(o, "Diagnostic-Code: smtp; %s\r\n", buf);
            else
                evbuffer_add_printf(o, "Diagnostic-Code: X-holdmx; %s\r\n", buf);
        }
        if (r->last_attempt > 0)
            evbuffer_add_printf(o, "Last-Attempt-Date: %s\r\n",
                                dsn_date(r->last_attempt, date, sizeof(date)));
        if (in->kind == STORE_NOTE_DELAYED && in->retry_until > 0)
            evbuffer_add_printf(o, "Will-Retry-Until: %s\r\n",
                                dsn_date(in->retry_until, date, sizeof(date)));
    }
}

/* dsn_original_part - part 3: the whole original or its headers. */
static int dsn_original_part(struct evbuffer *o, const struct dsn_input *in, const char *boundary)
{
    size_t max = in->full_max ? in->full_max : DSN_FULL_MAX;
    bool full = in->kind == STORE_NOTE_FAILED && in->info->ret != STORE_RET_HDRS;
    char *body = NULL;
    size_t n = 0;

    /* Read enough for the whole original and, should it be too big, its headers. */
    if (dsn_read_all(in, full && max > DSN_HEADERS_MAX ? max : DSN_HEADERS_MAX, &body, &n) != 0)
        return -1;
    if (full && n > max)
        full = false;
    if (!full)
        n = dsn_header_len(body, n > DSN_HEADERS_MAX ? DSN_HEADERS_MAX : n);
    evbuffer_add_printf(o, "\r\n--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n\r\n",
                        boundary, full ? "Undelivered Message" : "Message Headers",
                        full ? "message/rfc822" : "text/rfc822-headers");
    evbuffer_add(o, body, n);
    if (n < 2 || memcmp(body + n - 2, "\r\n", 2) != 0)
        evbuffer_add(o, "\r\n", 2);
    free(body);
    return 0;
}

/* dsn_build - the report text in *out (malloc'd, *len bytes, NUL-terminated). */
int dsn_build(const struct dsn_input *in, char **out, size_t *len)
{
    char qid[STORE_ID_LEN], date[64], boundary[96], to[STORE_ADDR_MAX];
    struct evbuffer *o;
    size_t wanted = 0;
    int rc = DSN_BUILT;

    if (in->info->sender[0] == '\0')
        return DSN_NONE;
    for (size_t i = 0; i < in->nrcpts; i++)
        wanted += dsn_wants(&in->rcpts[i], in->kind);
    if (wanted == 0)
        return DSN_NONE;
    store_id_format(in->info->id, qid);
    snprintf(boundary, sizeof(boundary), "%s.%lld.%d/%s", qid, (long long)in->now, in->kind,
             in->hostname);
    dsn_clean(to, sizeof(to), in->info->sender);
    o = evbuffer_new();
    evbuffer_add_printf(o,
                        "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n"
                        "To: <%s>\r\n"
                        "Subject: %s\r\n"
                        "Date: %s\r\n"
                        "Message-ID: <%s.%lld.%d@%s>\r\n"
                        "Auto-Submitted: auto-replied\r\n"
                        "MIME-Version: 1.0\r\n"
                        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                        "\tboundary=\"%s\"\r\n"
                        "\r\n"
                        "This is a MIME-encapsulated message.\r\n"
                        "\r\n--%s\r\n"
                        "Content-Description: Notification\r\n"
                        "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
                        in->hostname, to,
                        in->kind == STORE_NOTE_FAILED ? "Undelivered Mail Returned to Sender"
                                                      : "Delayed Mail (still being held)",
                        dsn_date(in->now, date, sizeof(date)), qid, (long long)in->now, in->kind,
                        in->hostname, boundary, boundary);
    dsn_human(o, in, qid);
    evbuffer_add_printf(o,
                        "\r\n--%s\r\nContent-Description: Delivery report\r\n"
                        "Content-Type: message/delivery-status\r\n\r\n",
                        boundary);
    dsn_status_part(o, in);
    if (dsn_original_part(o, in, boundary) != 0) {
        rc = DSN_ERROR;
    } else {
        evbuffer_add_printf(o, "\r\n--%s--\r\n", boundary);
        *len = evbuffer_get_length(o);
        *out = xmalloc(*len + 1);
        evbuffer_remove(o, *out, *len);
        (*out)[*len] = '\0';
    }
    evbuffer_free(o);
    return rc;
}

/* dsn_store_arg - what dsn_store_read needs to find the body. */
struct dsn_store_arg {
    struct store *st;
    store_msgid_t id;
};

/* dsn_store_read - read original body bytes from the store. */
static int dsn_store_read(void *arg, uint64_t off, void *buf, size_t len, size_t *got)
{
    struct dsn_store_arg *a = arg;

    return store_body_read(a->st, a->id, off, buf, len, got) == STORE_OK ? 0 : -1;
}

/* dsn_build_note - dsn_build for a store note, reading the body from st. */
int dsn_build_note(struct store *st, const struct store_note *note, const char *hostname,
                   int64_t now, int64_t retry_until, char **out, size_t *len)
{
    struct dsn_store_arg a = {st, note->msgid};
    struct dsn_input in = {
        .hostname = hostname,
        .kind = note->kind,
        .info = &note->info,
        .rcpts = note->rcpts,
        .nrcpts = note->nrcpts,
        .now = now,
        .retry_until = retry_until,
        .read = dsn_store_read,
        .read_arg = &a,
    };

    return dsn_build(&in, out, len);
}
