/*
 * fuzz_dlv.c - fuzz target for the SMTP client engine (etrn/dlv_client.c):
 * the reply parser (dlv_reply_add: codes, continuation lines, line and
 * line-count limits), EHLO keyword handling and every reply-driven state
 * transition (greeting, EHLO/HELO fallback, MAIL, RCPT, DATA, the dot,
 * RSET, QUIT), driven through the public dlv_start_mem() entry point.
 *
 * Each input is what the server says.  The engine gets one end of a
 * libevent bufferevent pair (in process, no socket; deferred callbacks
 * like a real connection) and delivers one in-memory message with two
 * recipients and a body that needs dot-stuffing.  The input is written
 * into the other end one line at a time with loop passes in between (what
 * the engine sends is read and dropped); then that end is freed, which the
 * engine sees as the connection closing.  Checked: done is called exactly
 * once, within bounded loop passes, and its counts cover both recipients
 * at most once each; sanitizers catch the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dlv.h"
#include "log.h"

#include "fuzz_common.h"

#define FUZZ_DLV_PASSES 4   /* loop passes after each line */
#define FUZZ_DLV_END    200 /* loop passes for done after the close */

/* fuzz_dlv_run - one session's observable outcome. */
struct fuzz_dlv_run {
    int done_calls;
    struct dlv_result res;
};

static struct event_base *fuzz_dlv_base;

/* fuzz_dlv_done - the engine's completion callback. */
static void fuzz_dlv_done(struct dlv_session *s, const struct dlv_result *r, void *arg)
{
    struct fuzz_dlv_run *run = arg;

    (void)s;
    run->done_calls++;
    run->res = *r;
}

/* fuzz_dlv_pump - run the loop passes times, dropping what the engine sent. */
static void fuzz_dlv_pump(struct bufferevent *server, int passes)
{
    int i;

    for (i = 0; i < passes; i++) {
        event_base_loop(fuzz_dlv_base, EVLOOP_NONBLOCK);
        if (server != NULL) {
            struct evbuffer *in = bufferevent_get_input(server);
            evbuffer_drain(in, evbuffer_get_length(in));
        }
    }
}

/* LLVMFuzzerTestOneInput - one client session against a server that says data[]. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const rcpts[] = {"u@example.org", "v@example.org"};
    static const char body[] = "Subject: t\r\n\r\n.leading dot\r\n..two\r\nend\r\n";
    struct dlv_mem_msg msg = {"sender@example.net", rcpts, 2, body, sizeof(body) - 1};
    struct fuzz_dlv_run run = {0};
    struct bufferevent *pair[2];
    struct dlv_opts opts;
    size_t off = 0;
    int i;

    if (fuzz_dlv_base == NULL) {
        log_open("fuzz_dlv", true);
        fuzz_dlv_base = event_base_new();
        fuzz_assert(fuzz_dlv_base != NULL);
    }
    fuzz_assert(bufferevent_pair_new(fuzz_dlv_base, BEV_OPT_DEFER_CALLBACKS, pair) == 0);
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    dlv_opts_default(&opts);
    opts.helo_name = "fuzz.example";
    opts.peer_name = "fuzz[127.0.0.1]:25";
    fuzz_assert(dlv_start_mem(fuzz_dlv_base, pair[0], &msg, &opts, fuzz_dlv_done, &run) != NULL);
    fuzz_dlv_pump(pair[1], FUZZ_DLV_PASSES);
    while (off < size && run.done_calls == 0) {
        const uint8_t *lf = memchr(data + off, '\n', size - off);
        size_t piece = lf != NULL ? (size_t)(lf - (data + off)) + 1 : size - off;

        bufferevent_write(pair[1], data + off, piece);
        off += piece;
        fuzz_dlv_pump(pair[1], FUZZ_DLV_PASSES);
    }
    bufferevent_flush(pair[1], EV_WRITE, BEV_FINISHED); /* the engine sees EOF */
    bufferevent_free(pair[1]);
    for (i = 0; i < FUZZ_DLV_END && run.done_calls == 0; i++)
        fuzz_dlv_pump(NULL, 1);
    fuzz_assert(run.done_calls == 1);
    fuzz_assert(run.res.delivered + run.res.deferred + run.res.failed <= 2);
    fuzz_assert(memchr(run.res.reason, '\0', sizeof(run.res.reason)) != NULL);
    fuzz_dlv_pump(NULL, 2); /* let the engine's own deferred frees run */
    return 0;
}

static const char *const fuzz_dlv_seeds[] FUZZ_SEEDS = {
    "220 mx ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 DSN\r\n"
    "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n",
    "220 mx\r\n500 no ehlo\r\n250 helo ok\r\n250 ok\r\n550 no such user\r\n250 ok\r\n354 go\r\n"
    "250 ok\r\n221 bye\r\n",
    "220-mx slow\r\n220 greeting\r\n250 mx\r\n451 try later\r\n250 reset\r\n221 bye\r\n",
    "554 go away\r\n221 bye\r\n",
    "220 mx\r\n250-mx\r\n250 SIZE 10\r\n",
    "220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n452 full\r\n250 ok\r\n221 x\r\n",
    "22\r\n",
    "220 mx\r\n250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n250 ok\r\n421 closing\r\n",
    "2200 bad\r\n",
};

FUZZ_MAIN(fuzz_dlv_seeds)
