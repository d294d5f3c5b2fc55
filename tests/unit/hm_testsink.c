/*
 * hm_testsink.c - the in-test SMTP sink server (see hm_testsink.h).
 *
 * One listener, one struct hm_sink_conn per accepted connection, all on
 * the caller's event_base.  Connections are freed when the peer closes,
 * after QUIT, on drop_after_body and in hm_sink_free.
 */
#include "hm_testsink.h"
#include "tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HM_SINK_MAX_CONNS 64
#define HM_SINK_LINE_MAX  4096

struct hm_sink;

struct hm_sink_conn {
    struct hm_sink *sink;
    struct bufferevent *bev;
    struct event *greet_ev;
    bool greeted;
    bool in_data;
    bool closing;
    bool dead_after_dot;
    bool tls;         /* STARTTLS done */
    bool tls_pending; /* 220 to STARTTLS queued: wrap once it is written */
    struct hm_sink_msg txn;
    bool have_mail;
};

struct hm_sink {
    struct event_base *base;
    struct hm_sink_cfg cfg;
    struct evconnlistener *lis;
    uint16_t port;
    struct hm_sink_conn *conns[HM_SINK_MAX_CONNS];
    struct hm_sink_msg *msgs;
    size_t nmsgs;
    char *transcript;
    size_t transcript_len;
    unsigned connections;
    bool early_talk;
    size_t max_batch;
};

/* hm_sink_cfg_default - plain ESMTP with PIPELINING, 8BITMIME and DSN. */
void hm_sink_cfg_default(struct hm_sink_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->addr = "127.0.0.1";
    cfg->pipelining = true;
    cfg->eightbitmime = true;
    cfg->dsn = true;
    cfg->drop_after_body = -1;
}

/* hm_sink_msg_clear - free one transaction's strings. */
static void hm_sink_msg_clear(struct hm_sink_msg *m)
{
    free(m->mail_line);
    free(m->sender);
    for (size_t i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i]);
    free(m->rcpts);
    free(m->raw);
    free(m->body);
    memset(m, 0, sizeof(*m));
}

/* hm_sink_append - grow a byte buffer by n bytes (always NUL-terminated). */
static void hm_sink_append(char **buf, size_t *len, const char *p, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    if (*buf == NULL)
        abort();
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* hm_sink_conn_free - close one connection. */
static void hm_sink_conn_free(struct hm_sink_conn *c)
{
    for (size_t i = 0; i < HM_SINK_MAX_CONNS; i++)
        if (c->sink->conns[i] == c)
            c->sink->conns[i] = NULL;
    if (c->greet_ev)
        event_free(c->greet_ev);
    bufferevent_free(c->bev);
    hm_sink_msg_clear(&c->txn);
    free(c);
}

/* hm_sink_reply - send a reply text (CRLF added). */
static void hm_sink_reply(struct hm_sink_conn *c, const char *text)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\r\n", 2);
}

/* hm_sink_ehlo - the capability list from the configuration. */
static void hm_sink_ehlo(struct hm_sink_conn *c)
{
    const struct hm_sink_cfg *k = &c->sink->cfg;
    char line[64];

    hm_sink_reply(c, "250-sink.test hello");
    if (k->pipelining)
        hm_sink_reply(c, "250-PIPELINING");
    if (k->size_adv) {
        if (k->size_max)
            snprintf(line, sizeof(line), "250-SIZE %llu", (unsigned long long)k->size_max);
        else
            snprintf(line, sizeof(line), "250-SIZE");
        hm_sink_reply(c, line);
    }
    if (k->eightbitmime)
        hm_sink_reply(c, "250-8BITMIME");
    if (k->dsn)
        hm_sink_reply(c, "250-DSN");
    if (k->tls_ctx && !c->tls)
        hm_sink_reply(c, "250-STARTTLS");
    hm_sink_reply(c, "250 ENHANCEDSTATUSCODES");
}

/* hm_sink_addr_arg - the address between < and > after the colon (malloc'd). */
static char *hm_sink_addr_arg(const char *line)
{
    const char *lt = strchr(line, '<'), *gt = lt ? strchr(lt, '>') : NULL;

    if (lt == NULL || gt == NULL)
        return NULL;
    return strndup(lt + 1, (size_t)(gt - lt - 1));
}

/* hm_sink_rcpt - the per-recipient policy by local part. */
static void hm_sink_rcpt(struct hm_sink_conn *c, const char *line)
{
    char *a = hm_sink_addr_arg(line);

    if (!c->have_mail || a == NULL) {
        hm_sink_reply(c, "503 5.5.1 need MAIL");
        free(a);
        return;
    }
    if (strncasecmp(a, "defer", 5) == 0) {
        hm_sink_reply(c, "451 4.2.0 mailbox busy, try later");
        free(a);
    } else if (strncasecmp(a, "reject", 6) == 0) {
        hm_sink_reply(c, "550 5.1.1 no such user");
        free(a);
    } else {
        c->txn.rcpts = realloc(c->txn.rcpts, (c->txn.nrcpts + 1) * sizeof(char *));
        c->txn.rcpts[c->txn.nrcpts++] = a;
        hm_sink_reply(c, "250 2.1.5 ok");
    }
}

/* hm_sink_mail - MAIL FROM with the sender policy. */
static void hm_sink_mail(struct hm_sink_conn *c, const char *line)
{
    char *a = hm_sink_addr_arg(line);

    if (a == NULL || c->have_mail) {
        hm_sink_reply(c, "503 5.5.1 bad sequence");
        free(a);
        return;
    }
    if (strncasecmp(a, "rejectmail", 10) == 0) {
        hm_sink_reply(c, "550 5.7.1 sender refused");
        free(a);
        return;
    }
    if (strncasecmp(a, "defermail", 9) == 0) {
        hm_sink_reply(c, "451 4.3.0 sender deferred");
        free(a);
        return;
    }
    hm_sink_msg_clear(&c->txn);
    c->txn.sender = a;
    c->txn.tls = c->tls;
    c->txn.mail_line = strdup(line);
    c->have_mail = true;
    hm_sink_reply(c, "250 2.1.0 ok");
}

/* hm_sink_data - DATA: 354 when there are recipients (or the configured code). */
static void hm_sink_data(struct hm_sink_conn *c)
{
    char line[64];
    int code = c->sink->cfg.data_code ? c->sink->cfg.data_code : 354;

    if (!c->have_mail || c->txn.nrcpts == 0) {
        hm_sink_reply(c, "554 5.5.1 no valid recipients");
        return;
    }
    if (code != 354) {
        snprintf(line, sizeof(line), "%d %d.3.0 data refused", code, code / 100);
        hm_sink_reply(c, line);
        return;
    }
    hm_sink_reply(c, "354 end with <CRLF>.<CRLF>");
    c->in_data = true;
}

/* hm_sink_end_data - the final dot: record the message (on 2xx) and reply. */
static void hm_sink_end_data(struct hm_sink_conn *c)
{
    struct hm_sink *s = c->sink;
    int code = s->cfg.dot_code ? s->cfg.dot_code : 250;
    char line[64];

    c->in_data = false;
    c->have_mail = false;
    if (s->cfg.silent_after_dot) {
        c->dead_after_dot = true;
        return;
    }
    if (code / 100 == 2) {
        s->msgs = realloc(s->msgs, (s->nmsgs + 1) * sizeof(*s->msgs));
        s->msgs[s->nmsgs++] = c->txn;
        memset(&c->txn, 0, sizeof(c->txn));
        snprintf(line, sizeof(line), "%d 2.0.0 queued as SINK%zu", code, s->nmsgs);
    } else {
        hm_sink_msg_clear(&c->txn);
        snprintf(line, sizeof(line), "%d %d.6.0 message refused", code, code / 100);
    }
    hm_sink_reply(c, line);
}

/* hm_sink_data_line - one line of message data; returns false when the connection was dropped. */
static bool hm_sink_data_line(struct hm_sink_conn *c, const char *line, size_t len)
{
    struct hm_sink_msg *m = &c->txn;
    long drop = c->sink->cfg.drop_after_body;

    if (len == 1 && line[0] == '.') {
        hm_sink_end_data(c);
        return true;
    }
    hm_sink_append(&m->raw, &m->raw_len, line, len);
    hm_sink_append(&m->raw, &m->raw_len, "\r\n", 2);
    if (line[0] == '.')
        hm_sink_append(&m->body, &m->body_len, line + 1, len - 1);
    else
        hm_sink_append(&m->body, &m->body_len, line, len);
    hm_sink_append(&m->body, &m->body_len, "\r\n", 2);
    if (drop >= 0 && (long)m->raw_len >= drop) {
        hm_sink_conn_free(c);
        return false;
    }
    return true;
}

/* hm_sink_command - one command line; returns false when the connection is gone. */
static bool hm_sink_command(struct hm_sink_conn *c, const char *line, size_t len)
{
    struct hm_sink *s = c->sink;

    hm_sink_append(&s->transcript, &s->transcript_len, line, len);
    hm_sink_append(&s->transcript, &s->transcript_len, "\n", 1);
    if (strncasecmp(line, "EHLO", 4) == 0) {
        if (s->cfg.ehlo_reject)
            hm_sink_reply(c, "502 5.5.2 EHLO not implemented");
        else
            hm_sink_ehlo(c);
    } else if (strncasecmp(line, "HELO", 4) == 0) {
        hm_sink_reply(c, "250 sink.test");
    } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
        hm_sink_mail(c, line);
    } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
        hm_sink_rcpt(c, line);
    } else if (strcasecmp(line, "DATA") == 0) {
        hm_sink_data(c);
    } else if (strcasecmp(line, "RSET") == 0) {
        hm_sink_msg_clear(&c->txn);
        c->have_mail = false;
        hm_sink_reply(c, "250 2.0.0 reset");
    } else if (strcasecmp(line, "NOOP") == 0) {
        hm_sink_reply(c, "250 2.0.0 ok");
    } else if (strcasecmp(line, "STARTTLS") == 0 && s->cfg.tls_ctx && !c->tls) {
        hm_sink_reply(c, "220 2.0.0 ready to start TLS");
        c->tls_pending = true;
        c->have_mail = false;
    } else if (strcasecmp(line, "QUIT") == 0) {
        hm_sink_reply(c, "221 2.0.0 bye");
        c->closing = true;
    } else {
        hm_sink_reply(c, "500 5.5.2 unknown command");
    }
    return true;
}

/* hm_sink_read_cb - process every complete line, in order. */
static void hm_sink_read_cb(struct bufferevent *bev, void *arg)
{
    struct hm_sink_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t batch = 0, len;
    char *line;

    if (!c->greeted)
        c->sink->early_talk = true;
    while (!c->closing && !c->tls_pending &&
           (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT)) != NULL) {
        bool alive;
        if (c->dead_after_dot) {
            free(line);
            continue;
        }
        if (c->in_data) {
            alive = hm_sink_data_line(c, line, len);
        } else {
            batch++;
            alive = hm_sink_command(c, line, len);
        }
        free(line);
        if (!alive)
            return;
    }
    if (batch > c->sink->max_batch)
        c->sink->max_batch = batch;
    if (evbuffer_get_length(in) > HM_SINK_LINE_MAX * 4)
        hm_sink_conn_free(c);
}

static void hm_sink_write_cb(struct bufferevent *bev, void *arg);
static void hm_sink_event_cb(struct bufferevent *bev, short what, void *arg);

/* hm_sink_start_tls - the 220 went out: put the server TLS filter on. */
static void hm_sink_start_tls(struct hm_sink_conn *c)
{
    struct bufferevent *tls;

    c->tls_pending = false;
    tls = tls_wrap_server(c->sink->base, c->bev, c->sink->cfg.tls_ctx);
    if (tls == NULL) {
        hm_sink_conn_free(c);
        return;
    }
    c->bev = tls;
    c->tls = true;
    bufferevent_setcb(tls, hm_sink_read_cb, hm_sink_write_cb, hm_sink_event_cb, c);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* hm_sink_write_cb - after QUIT's 221 went out, close; after STARTTLS's 220, wrap. */
static void hm_sink_write_cb(struct bufferevent *bev, void *arg)
{
    struct hm_sink_conn *c = arg;

    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (c->closing)
        hm_sink_conn_free(c);
    else if (c->tls_pending)
        hm_sink_start_tls(c);
}

/* hm_sink_event_cb - the client closed or failed. */
static void hm_sink_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        hm_sink_conn_free(arg);
}

/* hm_sink_greet - send the (possibly multi-line) greeting. */
static void hm_sink_greet(evutil_socket_t fd, short what, void *arg)
{
    struct hm_sink_conn *c = arg;
    const char *g = c->sink->cfg.greeting ? c->sink->cfg.greeting : "220 sink.test ESMTP\r\n";

    (void)fd;
    (void)what;
    c->greeted = true;
    evbuffer_add(bufferevent_get_output(c->bev), g, strlen(g));
}

/* hm_sink_accept_cb - a new connection: greet now or after the delay. */
static void hm_sink_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                              int salen, void *arg)
{
    struct hm_sink *s = arg;
    struct hm_sink_conn *c = calloc(1, sizeof(*c));
    size_t slot;

    (void)l;
    (void)sa;
    (void)salen;
    for (slot = 0; slot < HM_SINK_MAX_CONNS && s->conns[slot]; slot++)
        ;
    if (c == NULL || slot == HM_SINK_MAX_CONNS) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    s->connections++;
    c->sink = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    s->conns[slot] = c;
    bufferevent_setcb(c->bev, hm_sink_read_cb, hm_sink_write_cb, hm_sink_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->greet_ev = evtimer_new(s->base, hm_sink_greet, c);
    {
        struct timeval tv = {s->cfg.greeting_delay_ms / 1000,
                             (s->cfg.greeting_delay_ms % 1000) * 1000};
        evtimer_add(c->greet_ev, &tv);
    }
}

/* hm_sink_new - listen on cfg->addr, port 0; NULL on failure. */
struct hm_sink *hm_sink_new(struct event_base *base, const struct hm_sink_cfg *cfg)
{
    struct hm_sink *s = calloc(1, sizeof(*s));
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    if (s == NULL)
        return NULL;
    s->base = base;
    s->cfg = *cfg;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    if (inet_pton(AF_INET, cfg->addr ? cfg->addr : "127.0.0.1", &sin.sin_addr) != 1) {
        free(s);
        return NULL;
    }
    s->lis = evconnlistener_new_bind(base, hm_sink_accept_cb, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                     (struct sockaddr *)&sin, sizeof(sin));
    if (s->lis == NULL) {
        free(s);
        return NULL;
    }
    getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&sin, &sl);
    s->port = ntohs(sin.sin_port);
    return s;
}

/* hm_sink_free - close the listener, every connection and the records. */
void hm_sink_free(struct hm_sink *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < HM_SINK_MAX_CONNS; i++)
        if (s->conns[i])
            hm_sink_conn_free(s->conns[i]);
    evconnlistener_free(s->lis);
    for (size_t i = 0; i < s->nmsgs; i++)
        hm_sink_msg_clear(&s->msgs[i]);
    free(s->msgs);
    free(s->transcript);
    free(s);
}

/* hm_sink_port - the port the OS picked. */
uint16_t hm_sink_port(const struct hm_sink *s)
{
    return s->port;
}

/* hm_sink_count - accepted transactions. */
size_t hm_sink_count(const struct hm_sink *s)
{
    return s->nmsgs;
}

/* hm_sink_get - accepted transaction i. */
const struct hm_sink_msg *hm_sink_get(const struct hm_sink *s, size_t i)
{
    return i < s->nmsgs ? &s->msgs[i] : NULL;
}

/* hm_sink_transcript - the command lines received. */
const char *hm_sink_transcript(const struct hm_sink *s)
{
    return s->transcript ? s->transcript : "";
}

/* hm_sink_connections - connections accepted. */
unsigned hm_sink_connections(const struct hm_sink *s)
{
    return s->connections;
}

/* hm_sink_early_talk - a client spoke before the greeting. */
bool hm_sink_early_talk(const struct hm_sink *s)
{
    return s->early_talk;
}

/* hm_sink_max_batch - most commands that arrived in one read. */
size_t hm_sink_max_batch(const struct hm_sink *s)
{
    return s->max_batch;
}

/* hm_sink_count_cmd - commands in the transcript starting with verb. */
size_t hm_sink_count_cmd(const struct hm_sink *s, const char *verb)
{
    size_t n = 0, vl = strlen(verb);
    const char *p = hm_sink_transcript(s);

    while (*p) {
        const char *nl = strchr(p, '\n');
        if (strncasecmp(p, verb, vl) == 0)
            n++;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return n;
}
