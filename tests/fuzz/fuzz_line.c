/*
 * fuzz_line.c - fuzz target for common/line.c line framing on evbuffers.
 *
 * Input: byte 0 picks the reader limit (1..512), byte 1 seeds the split
 * points, the rest is the byte stream.  The stream is framed twice: once
 * appended whole, once appended in pseudo-random pieces with every line
 * taken out after each piece.  Checked: framing never depends on how the
 * input arrived (same lines, flags and LINE_TOOLONG events in the same
 * order), no line is longer than the limit, the out buffer of exactly
 * max + 1 bytes is never overrun (ASan), and the raw octet counts add up
 * to what was consumed.  Each run owns its buffers and frees them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "line.h"

#include "fuzz_common.h"

#define FUZZ_LINE_EVENTS 4096 /* framing events recorded per run at most */

/* fuzz_line_trace - what one framing pass produced. */
struct fuzz_line_trace {
    uint32_t hash[FUZZ_LINE_EVENTS]; /* per event: status, flags, length and content */
    size_t n;
    size_t raw;      /* octets reported consumed */
    size_t consumed; /* octets actually drained from the buffer */
};

/* fuzz_line_hash - FNV-1a over a framing event. */
static uint32_t fuzz_line_hash(int st, unsigned flags, const char *p, size_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)st ^ (flags << 8) ^ ((uint32_t)n << 12);
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

/* fuzz_line_drain - take every complete line out of in, recording it. */
static void fuzz_line_drain(struct line_reader *lr, struct evbuffer *in, char *out,
                            struct fuzz_line_trace *t)
{
    size_t len = 0, raw, before;
    unsigned flags = 0;
    int st, guard;

    for (guard = 0; guard < 100000; guard++) {
        before = evbuffer_get_length(in);
        st = line_read(lr, in, out, &len, &flags, &raw);
        fuzz_assert(before - evbuffer_get_length(in) == raw);
        t->raw += raw;
        t->consumed += before - evbuffer_get_length(in);
        if (st == LINE_NONE)
            return;
        fuzz_assert(st == LINE_OK || st == LINE_TOOLONG);
        if (st == LINE_OK) {
            fuzz_assert(len + 1 + ((flags & LINE_F_CRLF) ? 1 : 0) <= lr->max);
            fuzz_assert(out[len] == '\0');
            fuzz_assert(((flags & LINE_F_NUL) != 0) == (memchr(out, '\0', len) != NULL));
        }
        if (t->n < FUZZ_LINE_EVENTS)
            t->hash[t->n++] =
                fuzz_line_hash(st, st == LINE_OK ? flags : 0, out, st == LINE_OK ? len : 0);
    }
    fuzz_assert(!"line_read never ran dry");
}

/* fuzz_line_pass - frame data[0..n) with the given split seed (0 = in one piece). */
static void fuzz_line_pass(size_t max, const uint8_t *data, size_t n, uint32_t seed,
                           struct fuzz_line_trace *t)
{
    struct evbuffer *in = evbuffer_new();
    struct line_reader lr;
    char *out = malloc(max + 1);
    size_t off = 0;

    fuzz_assert(in != NULL && out != NULL);
    line_reader_init(&lr, max);
    memset(t, 0, sizeof(*t));
    while (off < n) {
        size_t piece = n - off;

        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            piece = 1 + (seed >> 16) % (max + 3);
            if (piece > n - off)
                piece = n - off;
        }
        evbuffer_add(in, data + off, piece);
        off += piece;
        fuzz_line_drain(&lr, in, out, t);
    }
    fuzz_assert(t->consumed + evbuffer_get_length(in) == n);
    evbuffer_free(in);
    free(out);
}

/* LLVMFuzzerTestOneInput - frame one input whole and in pieces, compare. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_line_trace whole, split;
    size_t max;

    if (size < 2)
        return 0;
    max = 1 + (size_t)data[0] * 2; /* 1..511: short limits reach the overflow paths */
    fuzz_line_pass(max, data + 2, size - 2, 0, &whole);
    fuzz_line_pass(max, data + 2, size - 2, (uint32_t)data[1] + 1, &split);
    fuzz_assert(whole.n == split.n);
    fuzz_assert(memcmp(whole.hash, split.hash, whole.n * sizeof(whole.hash[0])) == 0);
    fuzz_assert(whole.raw == split.raw && whole.consumed == split.consumed);
    return 0;
}

static const char *const fuzz_line_seeds[] FUZZ_SEEDS = {
    "\x10\x03HELO a\r\nMAIL FROM:<>\r\n",
    "\x04\x07"
    "abc\r\nabcd\r\nabcdefgh\nx\r\n",
    "\x02\x01\r\r\n\n\n\r",
    "\x20\x05with\0nul\r\nbare\rcr\r\npartial",
};

FUZZ_MAIN(fuzz_line_seeds)
