/*
 * turn_empty.c - the reversed exchange of a TURN with nothing to deliver.
 *
 * TURN has no "no mail" reply (RFC 821), so turnd answers 250 and, as the
 * SMTP client now, waits for the customer's 220 (multi-line and slow
 * allowed), sends EHLO, then QUIT, and closes after the 221 (or EOF).
 * This keeps old Microsoft-style clients happy without a delivery job.
 * States: GREETING -> EHLO -> QUIT -> DONE; turn_empty_enter() is the
 * only writer.  The session keeps its bufferevent throughout.
 */
#include "turn_session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

#define TURN_EMPTY_LINE_MAX 2048
#define TURN_EMPTY_TIMEOUT  300

enum turn_empty_state {
    TURN_E_GREETING = 0, /* waiting for the customer's 220 */
    TURN_E_EHLO,         /* EHLO sent */
    TURN_E_QUIT,         /* QUIT sent */
    TURN_E_DONE,
};

struct turn_empty {
    int state;
};

/* turn_empty_enter - the only writer of the exchange state. */
static void turn_empty_enter(struct turn_session *s, int state)
{
    log_debug("turn %s: empty exchange %d -> %d", s->peer, s->empty->state, state);
    s->empty->state = state;
}

/* turn_empty_free - release the exchange state. */
void turn_empty_free(struct turn_empty *e)
{
    free(e);
}

/* turn_empty_finish - log and end the session. */
static void turn_empty_finish(struct turn_session *s, const char *how)
{
    log_info("turn done user=%s from %s: nothing to deliver (%s)", s->account, s->peer, how);
    turn_empty_enter(s, TURN_E_DONE);
    turn_session_free(s);
}

/* turn_empty_reply - one complete final reply line arrived: next step. */
static bool turn_empty_reply(struct turn_session *s, const char *line)
{
    switch (s->empty->state) {
    case TURN_E_GREETING:
        if (line[0] != '2') {
            turn_empty_finish(s, "greeting refused");
            return false;
        }
        turn_reply(s, "EHLO %s", s->site->hostname);
        turn_empty_enter(s, TURN_E_EHLO);
        return true;
    case TURN_E_EHLO:
        turn_reply(s, "QUIT");
        turn_empty_enter(s, TURN_E_QUIT);
        return true;
    default:
        turn_empty_finish(s, "quit");
        return false;
    }
}

/* turn_empty_read_cb - collect reply lines; "xyz-" lines continue. */
static void turn_empty_read_cb(struct bufferevent *bev, void *arg)
{
    struct turn_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (unsigned i = 0; i < 1000; i++) {
        size_t len = 0;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        bool more;

        if (line == NULL) {
            if (evbuffer_get_length(in) > TURN_EMPTY_LINE_MAX)
                turn_empty_finish(s, "reply line too long");
            return;
        }
        if (len < 3 || (len > 3 && line[3] == '-')) {
            free(line);
            continue;
        }
        more = turn_empty_reply(s, line);
        free(line);
        if (!more)
            return;
    }
}

/* turn_empty_event_cb - EOF/timeout/error ends the exchange. */
static void turn_empty_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        turn_empty_finish(arg, (what & BEV_EVENT_TIMEOUT) ? "timeout" : "connection closed");
}

/* turn_empty_start - after the flushed 250: become the client. */
void turn_empty_start(struct turn_session *s)
{
    struct timeval tv = {TURN_EMPTY_TIMEOUT, 0};

    s->empty = xcalloc(1, sizeof(*s->empty));
    turn_empty_enter(s, TURN_E_GREETING);
    bufferevent_set_timeouts(s->bev, &tv, &tv);
    bufferevent_setcb(s->bev, turn_empty_read_cb, NULL, turn_empty_event_cb, s);
    bufferevent_enable(s->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
        turn_empty_read_cb(s->bev, s);
}
