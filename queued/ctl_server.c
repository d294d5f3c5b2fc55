/*
 * ctl_server.c - the control socket server inside queued.
 *
 * Listener: evconnlistener on an AF_UNIX socket bound under umask 0177 (mode 0600).
 * Each connection is a bufferevent with a line_reader (CTL_LINE_MAX), an
 * idle timeout and an explicit state (reading / closing).  Requests are
 * dispatched through one command table; every reply is one line.  The
 * server owns its connections; ctl_server_stop() frees them all.
 *
 * STATS is how turnd's counters reach queued's /metrics: turnd sends the
 * deltas since its last acknowledged push ("STATS atrn_250=1
 * auth_failures=2 sessions_odmr=0"); metrics_stats_apply() checks every
 * word against the metric table and adds them all or none.
 */
#include "ctl_server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_client.h"
#include "etrn.h"
#include "line.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "xalloc.h"

#define CTL_OUT_MAX (64 * 1024) /* unread replies before we stop reading */

enum ctl_conn_state {
    CTL_CONN_READING = 0, /* waiting for request lines */
    CTL_CONN_CLOSING,     /* last reply queued; close once it is written */
};

struct ctl_conn {
    struct ctl_server *srv;
    struct bufferevent *bev;
    struct line_reader lr;
    enum ctl_conn_state state;
    struct ctl_conn *next;
};

struct ctl_server {
    struct event_base *base;
    const struct conf *cf;
    struct store *st;
    struct etrn_engine *etrn;
    struct evconnlistener *lev;
    char *path;
    struct ctl_conn *conns;
    int nconns;
};

typedef void (*ctl_cmd_fn)(struct ctl_server *s, const char *arg, char *reply, size_t len);

/* ctl_arg_kind - what a request takes after its name. */
enum ctl_arg_kind {
    CTL_ARG_NONE = 0, /* nothing */
    CTL_ARG_WORD,     /* one printable word (domain, site) */
    CTL_ARG_LIST,     /* one or more printable words separated by spaces */
};

struct ctl_cmd {
    const char *name;
    enum ctl_arg_kind arg;
    ctl_cmd_fn fn;
};

/* ctl_server_close_conn - unlink and free one connection. */
static void ctl_server_close_conn(struct ctl_conn *c)
{
    struct ctl_conn **pp;

    for (pp = &c->srv->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->srv->nconns--;
    metrics_session_close(METRIC_PROTO_CONTROL);
    bufferevent_free(c->bev);
    free(c);
}

/* ctl_conn_enter_state - the only writer of c->state. */
static void ctl_conn_enter_state(struct ctl_conn *c, enum ctl_conn_state st)
{
    c->state = st;
    if (st == CTL_CONN_CLOSING) {
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            ctl_server_close_conn(c);
    }
}

/* ctl_site_ok - the site named arg exists in the configuration. */
static bool ctl_site_ok(struct ctl_server *s, const char *site, char *reply, size_t len)
{
    char clean[LOG_PEER_MAX + 1];

    if (conf_site_find(s->cf, site) != NULL)
        return true;
    snprintf(reply, len, "ERR unknown site %s: not in %s",
             log_printable(clean, sizeof(clean), site, strlen(site)),
             s->cf->path != NULL ? s->cf->path : "the configuration");
    return false;
}

/* ctl_flags_change - set/clear site flags in the store; reply ERR on failure. */
static bool ctl_flags_change(struct ctl_server *s, const char *site, unsigned set, unsigned clear,
                             char *reply, size_t len)
{
    unsigned flags = 0;
    int rc = store_site_flags_get(s->st, site, &flags);

    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        snprintf(reply, len, "ERR store: %s", store_strerror(rc));
        return false;
    }
    flags = (flags | set) & ~clear;
    rc = store_site_flags_set(s->st, site, flags);
    if (rc != STORE_OK) {
        snprintf(reply, len, "ERR store: %s", store_strerror(rc));
        return false;
    }
    return true;
}

/* ctl_cmd_ping - liveness check. */
static void ctl_cmd_ping(struct ctl_server *s, const char *arg, char *reply, size_t len)
{
    (void)s;
    (void)arg;
    snprintf(reply, len, "OK pong");
}

/* ctl_cmd_quit - reply and close (handled by the caller's state change). */
static void ctl_cmd_quit(struct ctl_server *s, const char *arg, char *reply, size_t len)
{
    (void)s;
    (void)arg;
    snprintf(reply, len, "OK bye");
}

/*
 * ctl_kick - etrn_kick for "domain", "@domain" or "#site" on behalf of
 * client (NULL = the operator, not rate-limited); returns the status.
 */
static int ctl_kick(struct ctl_server *s, const char *arg, const char *client, size_t *pending)
{
    *pending = 0;
    if (s->etrn == NULL)
        return ETRN_ERROR;
    if (arg[0] == '#')
        return etrn_kick_site(s->etrn, arg + 1, client, pending);
    if (arg[0] == '@')
        return etrn_kick(s->etrn, arg + 1, true, NULL, client, pending);
    return etrn_kick(s->etrn, arg, false, NULL, client, pending);
}

/*
 * ctl_cmd_etrn - turnd's stub, "ETRN node [client]": "<status name>
 * <pending>".  client is the customer's address, rate-limited like an
 * ETRN on the SMTP port.
 */
static void ctl_cmd_etrn(struct ctl_server *s, const char *arg, char *reply, size_t len)
{
    char node[STORE_DOMAIN_MAX + 1];
    const char *client = strchr(arg, ' ');
    size_t n = client != NULL ? (size_t)(client - arg) : strlen(arg), pending;
    int st;

    if (n >= sizeof(node) || (client != NULL && strchr(client + 1, ' ') != NULL)) {
        snprintf(reply, len, "ERR usage: ETRN [@|#]node [client]");
        return;
    }
    memcpy(node, arg, n);
    node[n] = '\0';
    st = ctl_kick(s, node, client != NULL ? client + 1 : NULL, &pending);

    metrics_http_etrn_status(st); /* turnd's customers' ETRN requests */
    snprintf(reply, len, "%s %zu", etrn_status_name(st), pending);
}

/* ctl_cmd_stats - "STATS name=value ...": add another process's counter deltas. */
static void ctl_cmd_stats(struct ctl_server *s, const char *arg, char *reply, size_t len)
{
    char why[128];

    (void)s;
    if (!metrics_stats_apply(arg, 1u << METRIC_PROTO_ODMR, why, sizeof(why))) {
        snprintf(reply, len, "ERR %s", why);
        return;
    }
    snprintf(reply, len, "OK");
}

/* ctl_kick_reply - "OK|ERR <status name> <pending>" for an operator's kick. */
static void ctl_kick_reply(int st, size_t pending, char *reply, size_t len)
{
    snprintf(reply, len, "%s %s %zu",
             st == ETRN_STARTED || st == ETRN_NOTHING || st == ETRN_RUNNING ? "OK" : "ERR",
             etrn_status_name(st), pending);
}

/* ctl_cmd_flush - "queuectl queue flush DOMAIN". */
static void ctl_cmd_flush(struct ctl_server *s, const char *arg, char *reply, size_t len)
{
    size_t pending;
    int st;

    if (s->etrn == NULL) {
        snprintf(reply, len, "ERR error queued runs without a delivery engine");
        return;
    }
    st = ctl_kick(s, arg, NULL, &pending);
    ctl_kick_reply(st, pending, reply, len);
}

/* ctl_cmd_pause - mark a site paused (new mail gets 421/451). */
static void ctl_cmd_pause(struct ctl_server *s, const char *arg, char *reply, size_t len)
{
    if (!ctl_site_ok(s, arg, reply, len) ||
        !ctl_flags_change(s, arg, STORE_SITE_PAUSED, 0, reply, len))
        return;
    log_info("control: site %s paused", arg);
    snprintf(reply, len, "OK paused %s", arg);
}

/* ctl_cmd_resume - clear a site's paused and draining flags. */
static void ctl_cmd_resume(struct ctl_server *s, const char *arg, char *reply, size_t len)
{
    if (!ctl_site_ok(s, arg, reply, len) ||
        !ctl_flags_change(s, arg, 0, STORE_SITE_PAUSED | STORE_SITE_DRAINING, reply, len))
        return;
    log_info("control: site %s resumed", arg);
    snprintf(reply, len, "OK resumed %s", arg);
}

/* ctl_cmd_drain_start - pause + draining, then an ETRN run of every domain of the site. */
static void ctl_cmd_drain_start(struct ctl_server *s, const char *arg, char *reply, size_t len)
{
    char site[STORE_SITE_MAX + 2];
    size_t pending;
    int st;

    if (!ctl_flags_change(s, arg, STORE_SITE_PAUSED | STORE_SITE_DRAINING, 0, reply, len))
        return;
    snprintf(site, sizeof(site), "#%s", arg);
    st = ctl_kick(s, site, NULL, &pending);
    log_info("control: drain of site %s started: %s, %zu waiting", arg, etrn_status_name(st),
             pending);
    ctl_kick_reply(st, pending, reply, len);
}

/* ctl_cmd_drain_end - clear draining (the site stays paused). */
static void ctl_cmd_drain_end(struct ctl_server *s, const char *arg, char *reply, size_t len)
{
    if (!ctl_flags_change(s, arg, STORE_SITE_PAUSED, STORE_SITE_DRAINING, reply, len))
        return;
    snprintf(reply, len, "OK drained %s", arg);
}

static const struct ctl_cmd ctl_cmds[] = {
    {"PING", CTL_ARG_NONE, ctl_cmd_ping},
    {"QUIT", CTL_ARG_NONE, ctl_cmd_quit},
    {"ETRN", CTL_ARG_LIST, ctl_cmd_etrn},
    {"FLUSH", CTL_ARG_WORD, ctl_cmd_flush},
    {"PAUSE", CTL_ARG_WORD, ctl_cmd_pause},
    {"RESUME", CTL_ARG_WORD, ctl_cmd_resume},
    {"DRAIN-START", CTL_ARG_WORD, ctl_cmd_drain_start},
    {"DRAIN-END", CTL_ARG_WORD, ctl_cmd_drain_end},
    {"STATS", CTL_ARG_LIST, ctl_cmd_stats},
};

/*
 * ctl_arg_ok - the argument fits kind: printable ASCII, one word within
 * store limits (CTL_ARG_WORD) or words separated by spaces (CTL_ARG_LIST).
 */
static bool ctl_arg_ok(const char *arg, enum ctl_arg_kind kind)
{
    size_t n = strlen(arg);
    const char *p;

    if (n == 0 || (kind == CTL_ARG_WORD && n >= STORE_DOMAIN_MAX))
        return false;
    for (p = arg; *p != '\0'; p++)
        if ((*p <= ' ' && !(kind == CTL_ARG_LIST && *p == ' ')) || *p >= 0x7f)
            return false;
    return true;
}

/* ctl_dispatch - run one request line; returns true when the connection should close. */
static bool ctl_dispatch(struct ctl_server *s, char *line, char *reply, size_t len)
{
    char *arg = strchr(line, ' ');
    size_t i;

    if (arg != NULL)
        *arg++ = '\0';
    for (i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++) {
        const struct ctl_cmd *c = &ctl_cmds[i];

        if (strcasecmp(c->name, line) != 0)
            continue;
        if (c->arg != CTL_ARG_NONE && (arg == NULL || !ctl_arg_ok(arg, c->arg))) {
            snprintf(reply, len, "ERR %s needs %s", c->name,
                     c->arg == CTL_ARG_WORD ? "one argument" : "name=value arguments");
            return false;
        }
        if (c->arg == CTL_ARG_NONE && arg != NULL && arg[0] != '\0') {
            snprintf(reply, len, "ERR %s takes no argument", c->name);
            return false;
        }
        c->fn(s, arg != NULL ? arg : "", reply, len);
        return c->fn == ctl_cmd_quit;
    }
    snprintf(reply, len, "ERR unknown request (try PING, FLUSH, PAUSE, RESUME, ETRN, STATS)");
    return false;
}

/* ctl_conn_reply - queue one response line. */
static void ctl_conn_reply(struct ctl_conn *c, const char *reply)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    evbuffer_add(out, reply, strlen(reply));
    evbuffer_add(out, "\n", 1);
}

/*
 * ctl_conn_backlogged - a client that does not read its replies: stop
 * reading its requests until the output drains (write_cb resumes).
 */
static bool ctl_conn_backlogged(struct ctl_conn *c)
{
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) < CTL_OUT_MAX)
        return false;
    bufferevent_disable(c->bev, EV_READ);
    return true;
}

/* ctl_conn_read_cb - handle every complete request line. */
static void ctl_conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct ctl_conn *c = arg;
    char line[CTL_LINE_MAX + 1], reply[CTL_LINE_MAX];
    size_t len, raw;
    unsigned flags;
    int rc;

    while (c->state == CTL_CONN_READING && !ctl_conn_backlogged(c) &&
           (rc = line_read(&c->lr, bufferevent_get_input(bev), line, &len, &flags, &raw)) !=
               LINE_NONE) {
        bool close_after = false;

        if (rc == LINE_TOOLONG) {
            snprintf(reply, sizeof(reply), "ERR line too long (max %d octets)", CTL_LINE_MAX);
            close_after = true;
        } else if (flags & LINE_F_NUL) {
            snprintf(reply, sizeof(reply), "ERR NUL byte in request");
        } else {
            close_after = ctl_dispatch(c->srv, line, reply, sizeof(reply));
        }
        ctl_conn_reply(c, reply);
        if (close_after) {
            ctl_conn_enter_state(c, CTL_CONN_CLOSING); /* may free c */
            return;
        }
    }
}

/* ctl_conn_write_cb - a closing connection ends once its reply is out. */
static void ctl_conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct ctl_conn *c = arg;

    if (c->state == CTL_CONN_CLOSING) {
        ctl_server_close_conn(c);
        return;
    }
    if (!(bufferevent_get_enabled(bev) & EV_READ)) {
        bufferevent_enable(bev, EV_READ);
        ctl_conn_read_cb(bev, c);
    }
}

/* ctl_conn_event_cb - EOF, error or idle timeout. */
static void ctl_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        ctl_server_close_conn(arg);
}

/* ctl_accept_cb - a new client (refused politely above CTL_MAX_CONNS). */
static void ctl_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    static const char busy[] = "ERR too many control connections, try again\n";
    struct ctl_server *s = arg;
    struct timeval tv = {CTL_IDLE_SECS, 0};
    struct ctl_conn *c;

    (void)lev;
    (void)sa;
    (void)salen;
    if (s->nconns >= CTL_MAX_CONNS) {
        (void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        free(c);
        return;
    }
    line_reader_init(&c->lr, CTL_LINE_MAX);
    c->next = s->conns;
    s->conns = c;
    s->nconns++;
    metrics_session_open(METRIC_PROTO_CONTROL);
    bufferevent_setcb(c->bev, ctl_conn_read_cb, ctl_conn_write_cb, ctl_conn_event_cb, c);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    ctl_conn_enter_state(c, CTL_CONN_READING);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ctl_stale_check - remove a stale socket file; false if another queued answers. */
static bool ctl_stale_check(const struct sockaddr_un *sun, char *err, size_t errlen)
{
    struct stat sb;
    int fd;

    if (lstat(sun->sun_path, &sb) < 0) {
        if (errno == ENOENT)
            return true;
        snprintf(err, errlen, "%s: %s", sun->sun_path, strerror(errno));
        return false;
    }
    if (!S_ISSOCK(sb.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket: move it away", sun->sun_path);
        return false;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0) {
        close(fd);
        snprintf(err, errlen,
                 "another queued answers on %s: stop it first (two daemons must not share %s)",
                 sun->sun_path, "a state_dir");
        return false;
    }
    if (fd >= 0)
        close(fd);
    if (unlink(sun->sun_path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove stale %s: %s", sun->sun_path, strerror(errno));
        return false;
    }
    return true;
}

/* ctl_bind - the listening socket at path, mode 0600; -1 with err. */
static int ctl_bind(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    mode_t old;
    int fd, rc;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "control socket path %s is too long: use a shorter state_dir", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if (!ctl_stale_check(&sun, err, errlen))
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    old = umask(0177);
    rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0 || listen(fd, 16) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ctl_server_start - see ctl_server.h. */
struct ctl_server *ctl_server_start(struct event_base *base, const struct conf *cf,
                                    struct store *st, struct etrn_engine *etrn, char *err,
                                    size_t errlen)
{
    struct ctl_server *s = xcalloc(1, sizeof(*s));
    int fd;

    s->base = base;
    s->cf = cf;
    s->st = st;
    s->etrn = etrn;
    s->path = ctl_client_path(cf);
    fd = ctl_bind(s->path, err, errlen);
    if (fd < 0) {
        free(s->path);
        free(s);
        return NULL;
    }
    s->lev = evconnlistener_new(base, ctl_accept_cb, s, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (s->lev == NULL) {
        snprintf(err, errlen, "cannot watch %s", s->path);
        close(fd);
        unlink(s->path);
        free(s->path);
        free(s);
        return NULL;
    }
    log_info("control socket %s ready", s->path);
    return s;
}

/* ctl_server_set_conf - use a reloaded configuration. */
void ctl_server_set_conf(struct ctl_server *s, const struct conf *cf)
{
    if (s != NULL)
        s->cf = cf;
}

/* ctl_server_stop - close everything and remove the socket file. */
void ctl_server_stop(struct ctl_server *s)
{
    if (s == NULL)
        return;
    while (s->conns != NULL)
        ctl_server_close_conn(s->conns);
    evconnlistener_free(s->lev);
    unlink(s->path);
    free(s->path);
    free(s);
}
