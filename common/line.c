/*
 * line.c - line framing on libevent input buffers.
 *
 * Lines end at LF.  A CR right before the LF makes the line CRLF
 * terminated; any other CR is reported as a bare CR.  At most lr->max
 * octets are ever copied out of the buffer per call, so a peer that never
 * sends a newline costs bounded memory (the caller also caps the
 * bufferevent's read high-water mark).
 */
#include "line.h"

#include <string.h>

#include <event2/buffer.h>

#define LINE_SKIP_CHUNK 4096

/* line_reader_init - a reader for lines of at most max octets incl. CRLF. */
void line_reader_init(struct line_reader *lr, size_t max)
{
    lr->max = max;
    lr->overflow = false;
}

/* line_pending - true when in holds unread input. */
bool line_pending(struct evbuffer *in)
{
    return evbuffer_get_length(in) > 0;
}

/* line_skip - drop the rest of an over-long line; true once its LF was seen. */
static bool line_skip(struct evbuffer *in, size_t *raw)
{
    char chunk[LINE_SKIP_CHUNK];
    size_t total = 0;

    for (;;) {
        ev_ssize_t n = evbuffer_copyout(in, chunk, sizeof(chunk));
        char *lf;

        if (n <= 0)
            break;
        lf = memchr(chunk, '\n', (size_t)n);
        if (lf != NULL) {
            size_t take = (size_t)(lf - chunk) + 1;
            evbuffer_drain(in, take);
            total += take;
            if (raw)
                *raw += total;
            return true;
        }
        evbuffer_drain(in, (size_t)n);
        total += (size_t)n;
    }
    if (raw)
        *raw += total;
    return false;
}

/* line_flags - classify a line's content and terminator. */
static unsigned line_flags(const char *p, size_t n, bool crlf)
{
    unsigned flags = crlf ? LINE_F_CRLF : 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] == '\0')
            flags |= LINE_F_NUL;
        else if (p[i] == '\r')
            flags |= LINE_F_BARECR;
    }
    return flags;
}

/* line_read - take the next complete line out of in. */
int line_read(struct line_reader *lr, struct evbuffer *in, char *out, size_t *len, unsigned *flags,
              size_t *raw)
{
    ev_ssize_t n;
    char *lf;
    size_t linelen;
    bool crlf;

    if (raw)
        *raw = 0;
    if (lr->overflow) {
        if (!line_skip(in, raw))
            return LINE_NONE;
        lr->overflow = false;
        return LINE_TOOLONG;
    }
    n = evbuffer_copyout(in, out, lr->max);
    if (n <= 0)
        return LINE_NONE;
    lf = memchr(out, '\n', (size_t)n);
    if (lf == NULL) {
        if ((size_t)n < lr->max)
            return LINE_NONE;
        /* No newline within max octets: drop what we have, then skip on. */
        evbuffer_drain(in, (size_t)n);
        if (raw)
            *raw = (size_t)n;
        lr->overflow = true;
        if (!line_skip(in, raw))
            return LINE_NONE;
        lr->overflow = false;
        return LINE_TOOLONG;
    }
    linelen = (size_t)(lf - out);
    evbuffer_drain(in, linelen + 1);
    if (raw)
        *raw = linelen + 1;
    crlf = linelen > 0 && out[linelen - 1] == '\r';
    if (crlf)
        linelen--;
    out[linelen] = '\0';
    *len = linelen;
    *flags = line_flags(out, linelen, crlf);
    return LINE_OK;
}
