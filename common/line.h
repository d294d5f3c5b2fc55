/*
 * line.h - line framing on libevent input buffers (SMTP, ODMR).
 *
 * A line_reader takes one line at a time out of an evbuffer without ever
 * buffering more than its limit: a line longer than the limit is consumed
 * and dropped up to its newline and reported once as LINE_TOOLONG, so the
 * stream stays in sync (OpenSMTPD tx->error style).  The terminator is
 * removed; flags say how the line was terminated (CRLF or bare LF) and
 * whether it contained NUL bytes or bare CRs, so every protocol decides
 * its own policy.  The reader holds no memory: it can live inside any
 * session struct and needs no cleanup.
 */
#ifndef HM_LINE_H
#define HM_LINE_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

enum line_status {
    LINE_NONE = 0, /* no complete line buffered yet */
    LINE_OK,       /* a line was returned */
    LINE_TOOLONG,  /* a line over the limit was consumed and dropped */
};

#define LINE_F_CRLF   0x1u /* terminated by CRLF (else by a bare LF) */
#define LINE_F_NUL    0x2u /* contains a NUL byte */
#define LINE_F_BARECR 0x4u /* contains a CR not followed by LF */

struct line_reader {
    size_t max;    /* longest accepted line in octets, terminator included */
    bool overflow; /* dropping the rest of an over-long line */
};

/* line_reader_init - a reader for lines of at most max octets incl. CRLF. */
void line_reader_init(struct line_reader *lr, size_t max);

/*
 * line_read - take the next line out of in.  On LINE_OK the line (without
 * its terminator, NUL-terminated; it may contain NULs) is in out, its
 * length in *len, and *flags holds LINE_F_* bits.  out must hold max + 1
 * bytes.  *raw receives the octets consumed from in (may be NULL).
 */
int line_read(struct line_reader *lr, struct evbuffer *in, char *out, size_t *len, unsigned *flags,
              size_t *raw);

/* line_pending - true when in holds at least one more complete line or partial input. */
bool line_pending(struct evbuffer *in);

#endif
