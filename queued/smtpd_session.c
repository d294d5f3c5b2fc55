/*
 * smtpd_session.c - the SMTP server object and the life of one session.
 *
 * A session is born in smtpd_accept() (after the connection caps), sends
 * the greeting and then reads lines: commands go to the command table
 * (smtpd_cmd.c), content lines to the DATA reader (smtpd_data.c).  The
 * state machine is in enum smtpd_state; smtpd_enter_state() is the only
 * writer of s->state and sets the read timeout of the new state.
 *
 * A session is never freed from inside command processing: smtpd_close()
 * only queues the end, and the session is freed from a libevent callback
 * once its last reply has been written (or after a bounded wait), or when
 * the peer goes away.  So handlers may always touch s after any call.
 */
#include "smtpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "xalloc.h"

#define SMTPD_READ_HWM      (64 * 1024) /* input buffered at most (lines are shorter) */
#define SMTPD_CLOSE_POLL_MS 50          /* waiting for the last reply to leave */
#define SMTPD_CLOSE_POLLS   100         /* ... at most 5 s */

static void smtpd_readcb(struct bufferevent *bev, void *arg);
static void smtpd_writecb(struct bufferevent *bev, void *arg);
static void smtpd_eventcb(struct bufferevent *bev, short what, void *arg);
static void smtpd_session_free(struct smtpd_session *s);

/* smtpd_state_name - for debug traces. */
static const char *smtpd_state_name(enum smtpd_state st)
{
    static const char *const names[] = {"CONNECTED", "HELO",     "MAIL", "RCPT",   "DATA",
                                        "COMMIT",    "STARTTLS", "TLS",  "CLOSING"};
    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* smtpd_timeout_set - the read timeout that belongs to the session's state. */
static void smtpd_timeout_set(struct smtpd_session *s)
{
    const struct conf *cf = s->sd->cf;
    struct timeval rd = {0, 0}, wr = {0, 0};
    int64_t secs = s->state == SMTPD_S_DATA ? cf->data_timeout : cf->smtp_timeout;

    rd.tv_sec = secs > 0 ? (time_t)secs : 300;
    wr.tv_sec = rd.tv_sec;
    if (s->state == SMTPD_S_COMMIT)
        bufferevent_set_timeouts(s->bev, NULL, &wr);
    else
        bufferevent_set_timeouts(s->bev, &rd, &wr);
}

/* smtpd_enter_state - the only writer of s->state. */
void smtpd_enter_state(struct smtpd_session *s, enum smtpd_state state)
{
    enum smtpd_state old = s->state;

    if (old == SMTPD_S_CLOSING)
        return; /* nothing leaves CLOSING */
    s->state = state;
    if (log_verbose() > 1)
        log_debug("session %llu: %s -> %s", (unsigned long long)s->id, smtpd_state_name(old),
                  smtpd_state_name(state));
    if (state == SMTPD_S_DATA) {
        line_reader_init(&s->lr, SMTPD_TEXT_MAX + 1); /* + the transparency dot */
    } else if (old == SMTPD_S_DATA) {
        line_reader_init(&s->lr, SMTPD_LINE_MAX);
    }
    switch (state) {
    case SMTPD_S_COMMIT:
    case SMTPD_S_STARTTLS:
        bufferevent_disable(s->bev, EV_READ);
        break;
    case SMTPD_S_CLOSING:
        bufferevent_disable(s->bev, EV_READ);
        return;
    default:
        bufferevent_enable(s->bev, EV_READ);
        break;
    }
    smtpd_timeout_set(s);
}

/* smtpd_reply - queue one reply line (CRLF added) and remember its code. */
void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
    char buf[SMTPD_LINE_MAX + 64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 3)
        n = (int)sizeof(buf) - 3;
    s->last_code = atoi(buf);
    buf[n++] = '\r';
    buf[n++] = '\n';
    bufferevent_write(s->bev, buf, (size_t)n);
    if (log_verbose() > 1) {
        char safe[LOG_PEER_MAX + 1];
        log_debug("session %llu: > %s", (unsigned long long)s->id,
                  log_printable(safe, sizeof(safe), buf, (size_t)n - 2));
    }
}

/* smtpd_output_pending - octets not yet handed to the kernel. */
static size_t smtpd_output_pending(struct smtpd_session *s)
{
    struct bufferevent *under = bufferevent_get_underlying(s->bev);
    size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));

    if (under != NULL)
        n += evbuffer_get_length(bufferevent_get_output(under));
    return n;
}

/* smtpd_close_poll - free a CLOSING session once its output is gone. */
static void smtpd_close_poll(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd_session *s = arg;
    struct timeval tv = {0, SMTPD_CLOSE_POLL_MS * 1000};

    (void)fd;
    (void)what;
    if (smtpd_output_pending(s) == 0 || ++s->close_polls > SMTPD_CLOSE_POLLS) {
        smtpd_session_free(s);
        return;
    }
    evtimer_add(s->close_ev, &tv);
}

/* smtpd_close - end the session after the replies queued so far. */
void smtpd_close(struct smtpd_session *s)
{
    struct timeval now = {0, 0};

    if (s->state == SMTPD_S_CLOSING)
        return;
    smtpd_enter_state(s, SMTPD_S_CLOSING);
    evtimer_add(s->close_ev, &now);
}

/* smtpd_site - the current configuration of the session's site (NULL if dropped). */
const struct conf_site *smtpd_site(const struct smtpd_session *s)
{
    return conf_site_find(s->sd->cf, s->site);
}

/* smtpd_session_find - a live session by id (NULL when it has gone). */
struct smtpd_session *smtpd_session_find(struct smtpd *sd, uint64_t id)
{
    struct smtpd_session *s;

    TAILQ_FOREACH(s, &sd->sessions, link)
    {
        if (s->id == id)
            return s;
    }
    return NULL;
}

/* smtpd_tls_ctx - the STARTTLS context of site, or NULL. */
struct ssl_ctx_st *smtpd_tls_ctx(struct smtpd *sd, const char *site)
{
    int i;

    for (i = 0; i < sd->ntls; i++)
        if (strcmp(sd->tls[i].site, site) == 0)
            return sd->tls[i].ctx;
    return NULL;
}

/* smtpd_log_disconnect - Postfix-style per-command counters. */
static void smtpd_log_disconnect(struct smtpd_session *s)
{
    char buf[512];
    size_t o = 0;
    int i, n = smtpd_cmd_count();
    unsigned total = 0;

    buf[0] = '\0';
    for (i = 0; i < n && i < SMTPD_NCOUNTERS; i++) {
        if (s->counts[i] == 0)
            continue;
        total += s->counts[i];
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %s=%u", smtpd_cmd_name(i), s->counts[i]);
        if (o >= sizeof(buf))
            break;
    }
    log_info("disconnect from [%s]%s commands=%u", s->addr, buf, total);
}

/* smtpd_session_free - unlink and release everything the session owns. */
static void smtpd_session_free(struct smtpd_session *s)
{
    struct smtpd *sd = s->sd;

    smtpd_log_disconnect(s);
    metrics_session_close(METRIC_PROTO_SMTP);
    TAILQ_REMOVE(&sd->sessions, s, link);
    sd->nsessions--;
    smtpd_tx_free(s->tx);
    if (s->bev != NULL)
        bufferevent_free(s->bev);
    event_free(s->close_ev);
    free(s);
}

/* smtpd_process - handle every complete line buffered, as the state allows. */
static void smtpd_process(struct smtpd_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t len, raw;
    unsigned flags;
    int st;

    while (s->state <= SMTPD_S_DATA) {
        st = line_read(&s->lr, in, s->line, &len, &flags, &raw);
        if (st == LINE_NONE)
            break;
        if (s->state == SMTPD_S_DATA) {
            smtpd_data_line(s, st, s->line, len, flags, raw);
        } else if (st == LINE_TOOLONG) {
            smtpd_cmd_toolong(s);
        } else {
            smtpd_cmd_dispatch(s, s->line, len, flags);
        }
    }
}

/* smtpd_resume - continue with input that arrived while the session waited. */
void smtpd_resume(struct smtpd_session *s)
{
    smtpd_process(s);
}

/* smtpd_readcb - new input. */
static void smtpd_readcb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    smtpd_process(arg);
}

/* smtpd_tls_begin - the 220 went out: put the TLS filter on. */
static void smtpd_tls_begin(struct smtpd_session *s)
{
    struct ssl_ctx_st *ctx = smtpd_tls_ctx(s->sd, s->site);
    struct bufferevent *under = s->bev, *tls;

    tls = ctx ? tls_wrap_server(s->sd->base, under, ctx) : NULL;
    if (tls == NULL) {
        log_warn("STARTTLS from [%s]: cannot set up TLS", s->addr);
        smtpd_close(s);
        return;
    }
    s->bev = tls;
    bufferevent_enable(under, EV_READ | EV_WRITE);
    bufferevent_setcb(tls, smtpd_readcb, smtpd_writecb, smtpd_eventcb, s);
    bufferevent_setwatermark(tls, EV_READ, 0, SMTPD_READ_HWM);
    smtpd_enter_state(s, SMTPD_S_TLS);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* smtpd_tls_done - handshake complete: forget everything, wait for EHLO. */
static void smtpd_tls_done(struct smtpd_session *s)
{
    s->tls = true;
    tls_describe(s->bev, s->tls_desc, sizeof(s->tls_desc));
    log_info("STARTTLS from [%s]: %s", s->addr, s->tls_desc);
    s->helo[0] = '\0';
    s->esmtp = false;
    smtpd_tx_drop(s);
    smtpd_enter_state(s, SMTPD_S_CONNECTED);
    smtpd_process(s);
}

/* smtpd_starttls - STARTTLS accepted: drop pipelined plaintext, say 220. */
void smtpd_starttls(struct smtpd_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t junk = evbuffer_get_length(in);

    if (junk > 0) { /* CVE-2011-0411: never carry plaintext into TLS */
        log_warn("[%s]: %zu octets pipelined after STARTTLS discarded", s->addr, junk);
        evbuffer_drain(in, junk);
    }
    smtpd_reply(s, "220 2.0.0 Ready to start TLS");
    smtpd_enter_state(s, SMTPD_S_STARTTLS);
}

/* smtpd_writecb - output drained: start a pending TLS handshake or finish closing. */
static void smtpd_writecb(struct bufferevent *bev, void *arg)
{
    struct smtpd_session *s = arg;

    (void)bev;
    if (s->state == SMTPD_S_STARTTLS && smtpd_output_pending(s) == 0)
        smtpd_tls_begin(s);
    else if (s->state == SMTPD_S_CLOSING && smtpd_output_pending(s) == 0)
        smtpd_session_free(s);
}

/* smtpd_eventcb - EOF, error, timeout or a finished TLS handshake. */
static void smtpd_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct smtpd_session *s = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        if (s->state == SMTPD_S_TLS)
            smtpd_tls_done(s);
        return;
    }
    if (s->state == SMTPD_S_CLOSING) {
        smtpd_session_free(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        log_info("timeout after %s from [%s]", s->where, s->addr);
        smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->hostname);
        smtpd_close(s);
        return;
    }
    if (s->state == SMTPD_S_TLS)
        log_info("TLS handshake failed with [%s]", s->addr);
    else
        log_info("lost connection after %s from [%s]", s->where, s->addr);
    smtpd_session_free(s);
}

/* smtpd_addr_text - printable IP of a socket address. */
static void smtpd_addr_text(const struct sockaddr *sa, char *out, size_t outsz)
{
    const void *src = NULL;

    if (sa->sa_family == AF_INET)
        src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        src = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (src == NULL || inet_ntop(sa->sa_family, src, out, (socklen_t)outsz) == NULL)
        snprintf(out, outsz, "unknown");
}

/* smtpd_refuse - say 421 on a socket we will not serve, then close it. */
static void smtpd_refuse(evutil_socket_t fd, const char *host, const char *ip, const char *why)
{
    char buf[CONF_HOST_MAX + 64];
    int n = snprintf(buf, sizeof(buf), "421 4.7.0 %s Error: too many connections\r\n", host);

    log_warn("connect from [%s]: refused, %s", ip, why);
    if (n > 0 && send(fd, buf, (size_t)n, MSG_NOSIGNAL) < 0)
        log_debug("421 to [%s] not sent: %s", ip, strerror(errno));
    evutil_closesocket(fd);
}

/* smtpd_ip_sessions - live sessions from one client address. */
static int smtpd_ip_sessions(struct smtpd *sd, const char *ip)
{
    struct smtpd_session *s;
    int n = 0;

    TAILQ_FOREACH(s, &sd->sessions, link)
    {
        if (strcmp(s->addr, ip) == 0)
            n++;
    }
    return n;
}

/* smtpd_accept - take over an accepted socket for site (closed on refusal). */
void smtpd_accept(struct smtpd *sd, const char *site, evutil_socket_t fd, const struct sockaddr *sa,
                  int salen)
{
    const struct conf_site *cs = conf_site_find(sd->cf, site);
    struct smtpd_session *s;
    char ip[64];

    (void)salen;
    smtpd_addr_text(sa, ip, sizeof(ip));
    if (sd->stopping || cs == NULL) {
        evutil_closesocket(fd);
        return;
    }
    if (sd->cf->max_connections > 0 && sd->nsessions >= (size_t)sd->cf->max_connections) {
        smtpd_refuse(fd, cs->hostname, ip, "max_connections reached");
        return;
    }
    if (sd->cf->max_connections_per_ip > 0 &&
        smtpd_ip_sessions(sd, ip) >= sd->cf->max_connections_per_ip) {
        smtpd_refuse(fd, cs->hostname, ip, "max_connections_per_ip reached");
        return;
    }
    s = xcalloc(1, sizeof(*s));
    s->bev = bufferevent_socket_new(sd->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL) {
        log_error("connect from [%s]: cannot create a buffer event", ip);
        evutil_closesocket(fd);
        free(s);
        return;
    }
    s->sd = sd;
    s->id = ++sd->next_id;
    snprintf(s->site, sizeof(s->site), "%s", cs->name);
    snprintf(s->hostname, sizeof(s->hostname), "%s", cs->hostname);
    snprintf(s->addr, sizeof(s->addr), "%s", ip);
    s->where = "CONNECT";
    s->close_ev = evtimer_new(sd->base, smtpd_close_poll, s);
    line_reader_init(&s->lr, SMTPD_LINE_MAX);
    TAILQ_INSERT_TAIL(&sd->sessions, s, link);
    sd->nsessions++;
    metrics_session_open(METRIC_PROTO_SMTP);
    log_info("connect from [%s] to site %s", ip, s->site);
    bufferevent_setcb(s->bev, smtpd_readcb, smtpd_writecb, smtpd_eventcb, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, SMTPD_READ_HWM);
    smtpd_enter_state(s, SMTPD_S_CONNECTED); /* xcalloc left state at CONNECTED */
    bufferevent_enable(s->bev, EV_WRITE);
    smtpd_reply(s, "220 %s ESMTP holdmx", s->hostname);
}

/* smtpd_tls_load - a TLS slot for every site with a certificate. */
static int smtpd_tls_load(const struct conf *cf, struct smtpd_tls_slot **out, int *nout, char *err,
                          size_t errlen)
{
    struct smtpd_tls_slot *slots = xcalloc((size_t)cf->nsites + 1, sizeof(*slots));
    int i, n = 0;

    for (i = 0; i < cf->nsites; i++) {
        const struct conf_site *cs = &cf->sites[i];
        char why[256] = "";

        if (cs->tls_cert == NULL)
            continue;
        slots[n].ctx = tls_server_ctx_new(cs->tls_cert, cs->tls_key, why, sizeof(why));
        if (slots[n].ctx == NULL) {
            snprintf(err, errlen, "site %s: %s", cs->name, why);
            while (n-- > 0)
                tls_ctx_free(slots[n].ctx);
            free(slots);
            return -1;
        }
        snprintf(slots[n].site, sizeof(slots[n].site), "%s", cs->name);
        n++;
    }
    *out = slots;
    *nout = n;
    return 0;
}

/* smtpd_tls_unload - drop every slot (running TLS sessions keep their own reference). */
static void smtpd_tls_unload(struct smtpd_tls_slot *slots, int n)
{
    int i;

    for (i = 0; i < n; i++)
        tls_ctx_free(slots[i].ctx);
    free(slots);
}

/* smtpd_tmpdir - <state_dir>/tmp for spilled bodies, created 0700. */
static int smtpd_tmpdir(struct smtpd *sd, const struct conf *cf, char *err, size_t errlen)
{
    snprintf(sd->tmpdir, sizeof(sd->tmpdir), "%s/tmp", cf->state_dir);
    if (mkdir(sd->tmpdir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", sd->tmpdir, strerror(errno));
        return -1;
    }
    return 0;
}

/* smtpd_commit_cb - the zero-timeout group-commit event. */
static void smtpd_commit_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    smtpd_commit_run(arg);
}

/* smtpd_new - the SMTP server for cf on base. */
struct smtpd *smtpd_new(struct event_base *base, struct store *st, struct etrn_engine *etrn,
                        const struct conf *cf, char *err, size_t errlen)
{
    struct smtpd *sd = xcalloc(1, sizeof(*sd));

    sd->base = base;
    sd->st = st;
    sd->etrn = etrn;
    sd->cf = cf;
    TAILQ_INIT(&sd->sessions);
    tls_init();
    if (smtpd_tmpdir(sd, cf, err, errlen) < 0 ||
        smtpd_tls_load(cf, &sd->tls, &sd->ntls, err, errlen) < 0) {
        free(sd);
        return NULL;
    }
    sd->commit_ev = event_new(base, -1, 0, smtpd_commit_cb, sd);
    return sd;
}

/* smtpd_set_conf - switch to a reloaded cf. */
int smtpd_set_conf(struct smtpd *sd, const struct conf *cf, char *err, size_t errlen)
{
    struct smtpd_tls_slot *slots;
    int n;

    if (smtpd_tls_load(cf, &slots, &n, err, errlen) < 0)
        return -1;
    smtpd_tls_unload(sd->tls, sd->ntls);
    sd->tls = slots;
    sd->ntls = n;
    sd->cf = cf;
    return 0;
}

/* smtpd_shutdown - commit what is pending, say 421 to everyone, accept no more. */
void smtpd_shutdown(struct smtpd *sd)
{
    struct smtpd_session *s;

    sd->stopping = true;
    if (sd->npending > 0)
        smtpd_commit_run(sd);
    TAILQ_FOREACH(s, &sd->sessions, link)
    {
        if (s->state == SMTPD_S_CLOSING)
            continue;
        if (s->state == SMTPD_S_DATA || s->state == SMTPD_S_MAIL || s->state == SMTPD_S_RCPT)
            log_info("shutdown: transaction of [%s] aborted", s->addr);
        if (s->state != SMTPD_S_TLS && s->state != SMTPD_S_STARTTLS)
            smtpd_reply(s, "421 4.3.2 %s Service shutting down, closing transmission channel",
                        s->hostname);
        smtpd_close(s);
    }
}

/* smtpd_session_count - live sessions. */
size_t smtpd_session_count(const struct smtpd *sd)
{
    return sd->nsessions;
}

/* smtpd_free - free every remaining session and the server itself. */
void smtpd_free(struct smtpd *sd)
{
    size_t i;

    if (sd == NULL)
        return;
    while (!TAILQ_EMPTY(&sd->sessions))
        smtpd_session_free(TAILQ_FIRST(&sd->sessions));
    for (i = 0; i < sd->npending; i++)
        smtpd_tx_free(sd->pending[i]);
    free(sd->pending);
    event_free(sd->commit_ev);
    smtpd_tls_unload(sd->tls, sd->ntls);
    free(sd);
}
