/*
 * turn_stats.c - periodic STATS push of turnd's metrics to queued.
 *
 * States (turn_stats_enter_state is the only writer):
 *   IDLE      nothing in flight; the timer starts the next push
 *   PUSHING   a STATS line was queued on a nonblocking connection to
 *             <state_dir>/control; waiting for queued's one-line reply
 * "OK" makes the values of the push the new base; anything else (refused
 * connection, EOF, timeout, "ERR ...") keeps the old base, so the same
 * deltas plus whatever came since go out next time.  The connection code
 * is etrn_clnt.c's.  Process-global state: turnd has one event loop.
 * Ownership: the pusher owns its timer and the bufferevent of the push in
 * flight; turn_stats_stop() frees both.
 */
#include "turn_stats.h"
#include "etrn_clnt.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#define TURN_STATS_REPLY_MAX 256

enum turn_stats_state { TURN_STATS_IDLE = 0, TURN_STATS_PUSHING };

static struct {
    struct event_base *base;
    char *path; /* <state_dir>/control */
    struct event *timer;
    struct bufferevent *bev; /* the push in flight */
    enum turn_stats_state state;
    bool final;                   /* the shutdown push: break the loop when done */
    bool unreachable;             /* already logged that queued is not answering */
    uint64_t acked[METRIC_COUNT]; /* values queued has acknowledged */
    uint64_t sent[METRIC_COUNT];  /* values in the push in flight */
} turn_stats_v;

/* turn_stats_enter_state - the only writer of the state; IDLE frees the connection. */
static void turn_stats_enter_state(enum turn_stats_state st)
{
    turn_stats_v.state = st;
    if (st == TURN_STATS_IDLE && turn_stats_v.bev != NULL) {
        bufferevent_free(turn_stats_v.bev);
        turn_stats_v.bev = NULL;
    }
    if (st == TURN_STATS_IDLE && turn_stats_v.final)
        event_base_loopbreak(turn_stats_v.base);
}

/* turn_stats_finish - end of a push: acknowledged when ok. */
static void turn_stats_finish(bool ok, const char *why)
{
    if (ok) {
        memcpy(turn_stats_v.acked, turn_stats_v.sent, sizeof(turn_stats_v.acked));
        turn_stats_v.unreachable = false;
    } else if (!turn_stats_v.unreachable) {
        log_warn("metrics push to %s failed (%s); keeping the counts for the next try",
                 turn_stats_v.path, why);
        turn_stats_v.unreachable = true;
    }
    turn_stats_enter_state(TURN_STATS_IDLE);
}

/* turn_stats_read_cb - queued's reply line. */
static void turn_stats_read_cb(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = 0;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
    char clean[LOG_PEER_MAX + 1];

    (void)arg;
    if (line == NULL) {
        if (evbuffer_get_length(in) > TURN_STATS_REPLY_MAX)
            turn_stats_finish(false, "reply too long");
        return;
    }
    if (len >= 2 && strncmp(line, "OK", 2) == 0) {
        turn_stats_finish(true, NULL);
    } else {
        log_printable(clean, sizeof(clean), line, len);
        turn_stats_finish(false, clean);
    }
    free(line);
}

/* turn_stats_event_cb - EOF, error or timeout before the reply. */
static void turn_stats_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)arg;
    if (what & BEV_EVENT_TIMEOUT)
        turn_stats_finish(false, "no reply in time");
    else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        turn_stats_finish(false, "connection closed");
}

/* turn_stats_push - send the deltas since the last acknowledged push (if idle). */
static void turn_stats_push(void)
{
    static const char verb[] = "STATS ";
    struct timeval tv = {TURN_STATS_TIMEOUT, 0};
    char words[TURN_STATS_LINE_MAX - sizeof(verb)];
    int fd;

    if (turn_stats_v.state != TURN_STATS_IDLE || turn_stats_v.path == NULL)
        return;
    metrics_stats_format(words, sizeof(words), turn_stats_v.acked, turn_stats_v.sent,
                         METRIC_PROTO_ODMR);
    fd = etrn_clnt_connect(turn_stats_v.path);
    if (fd < 0) {
        turn_stats_finish(false, "queued's control socket is not answering");
        return;
    }
    turn_stats_v.bev = bufferevent_socket_new(turn_stats_v.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (turn_stats_v.bev == NULL) {
        close(fd);
        turn_stats_finish(false, "out of memory");
        return;
    }
    turn_stats_enter_state(TURN_STATS_PUSHING);
    bufferevent_setcb(turn_stats_v.bev, turn_stats_read_cb, NULL, turn_stats_event_cb, NULL);
    bufferevent_set_timeouts(turn_stats_v.bev, &tv, &tv);
    bufferevent_enable(turn_stats_v.bev, EV_READ | EV_WRITE);
    bufferevent_write(turn_stats_v.bev, verb, sizeof(verb) - 1);
    bufferevent_write(turn_stats_v.bev, words, strlen(words));
    bufferevent_write(turn_stats_v.bev, "\n", 1);
}

/* turn_stats_timer_cb - the periodic push. */
static void turn_stats_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    turn_stats_push();
}

/* turn_stats_start - see turn_stats.h. */
bool turn_stats_start(struct event_base *base, const char *state_dir)
{
    struct timeval tv = {TURN_STATS_PERIOD, 0};

    turn_stats_stop();
    turn_stats_v.base = base;
    turn_stats_v.path = xasprintf("%s/control", state_dir != NULL ? state_dir : ".");
    turn_stats_v.timer = event_new(base, -1, EV_PERSIST, turn_stats_timer_cb, NULL);
    if (turn_stats_v.timer == NULL || event_add(turn_stats_v.timer, &tv) != 0) {
        turn_stats_stop();
        return false;
    }
    return true;
}

/* turn_stats_flush - the shutdown push: run the loop until it ends or 2 seconds pass. */
void turn_stats_flush(void)
{
    struct timeval limit = {2, 0};

    if (turn_stats_v.base == NULL)
        return;
    turn_stats_enter_state(TURN_STATS_IDLE); /* a push cut short by the loop's end */
    turn_stats_v.unreachable = true;         /* queued may be stopping too: no warning */
    turn_stats_push();
    if (turn_stats_v.state != TURN_STATS_PUSHING)
        return;
    turn_stats_v.final = true;
    event_base_loopexit(turn_stats_v.base, &limit);
    event_base_dispatch(turn_stats_v.base);
    turn_stats_v.final = false;
}

/* turn_stats_stop - free the timer, any push in flight and the path. */
void turn_stats_stop(void)
{
    turn_stats_v.final = false;
    turn_stats_enter_state(TURN_STATS_IDLE);
    if (turn_stats_v.timer != NULL)
        event_free(turn_stats_v.timer);
    turn_stats_v.timer = NULL;
    free(turn_stats_v.path);
    turn_stats_v.path = NULL;
    turn_stats_v.base = NULL;
}
