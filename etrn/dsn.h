/*
 * dsn.h - RFC 3464 delivery status notifications (bounces, delay warnings).
 *
 * dsn_build() turns one store note (a message and the recipients it
 * reports) into the full text of a multipart/report message, CRLF line
 * ends, ready for dlv_start_mem() with the null sender.  The original
 * message is read through a callback so the builder can be unit-tested
 * without the store; dsn_build_note() wires it to store_body_read.
 */
#ifndef HM_DSN_H
#define HM_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define DSN_FULL_MAX (1024 * 1024) /* larger originals are returned as headers only */

/* dsn_read_fn - read original body bytes from off; 0 = ok (*got 0 at end). */
typedef int (*dsn_read_fn)(void *arg, uint64_t off, void *buf, size_t len, size_t *got);

struct dsn_input {
    const char *hostname;                /* Reporting-MTA, MAILER-DAEMON@hostname */
    int kind;                            /* STORE_NOTE_FAILED or STORE_NOTE_DELAYED */
    const struct store_msg_info *info;   /* the original envelope */
    const struct store_rcpt_info *rcpts; /* the recipients to report */
    size_t nrcpts;
    int64_t now;         /* Date: */
    int64_t retry_until; /* Will-Retry-Until for delays; 0 = omit */
    dsn_read_fn read;    /* original body */
    void *read_arg;
    size_t full_max; /* 0 = DSN_FULL_MAX */
};

enum dsn_result {
    DSN_BUILT = 0, /* *out holds the report */
    DSN_NONE,      /* nothing to send: null sender or every NOTIFY excludes it */
    DSN_ERROR,     /* the original could not be read */
};

/* dsn_build - the report text in *out (malloc'd, *len bytes, NUL-terminated). */
int dsn_build(const struct dsn_input *in, char **out, size_t *len);

/* dsn_build_note - dsn_build for a store note, reading the body from st. */
int dsn_build_note(struct store *st, const struct store_note *note, const char *hostname,
                   int64_t now, int64_t retry_until, char **out, size_t *len);

/* dsn_wants - true when rcpt asked for (or by default gets) a DSN of kind. */
bool dsn_wants(const struct store_rcpt_info *rcpt, int kind);

#endif
