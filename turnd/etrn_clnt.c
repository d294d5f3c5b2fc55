/*
 * etrn_clnt.c - asynchronous ETRN request to queued's control socket.
 *
 * The connection is a nonblocking AF_UNIX socket wrapped in a bufferevent;
 * the request line is queued at once (the kernel accepts it after the
 * connect completes) and the single reply line is parsed with
 * etrn_clnt_parse().  Any failure - refused connect, EOF, timeout, a line
 * longer than ETRN_CLNT_LINE_MAX or an unknown status name - ends the
 * request with ETRN_CLNT_UNAVAILABLE.  The stub owns its bufferevent and
 * frees itself after calling done.
 */
#include "etrn_clnt.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "etrn.h"
#include "log.h"
#include "turn_stats.h"
#include "xalloc.h"

#define ETRN_CLNT_LINE_MAX 256

struct etrn_clnt {
    struct bufferevent *bev;
    etrn_clnt_done_fn done;
    void *arg;
};

/* etrn_clnt_finish - report once and free the request. */
static void etrn_clnt_finish(struct etrn_clnt *c, int status, size_t pending)
{
    etrn_clnt_done_fn done = c->done;
    void *arg = c->arg;

    etrn_clnt_cancel(c);
    done(status, pending, arg);
}

/* etrn_clnt_parse - "<status-name> <pending>" -> enum etrn_status + count. */
bool etrn_clnt_parse(const char *line, int *status, size_t *pending)
{
    char name[64];
    unsigned long long n = 0;
    int i;

    if (sscanf(line, "%63s %llu", name, &n) < 1)
        return false;
    for (i = ETRN_STARTED; i <= ETRN_ERROR; i++) {
        const char *known = etrn_status_name(i);

        if (known != NULL && strcasecmp(known, name) == 0) {
            *status = i;
            *pending = (size_t)n;
            return true;
        }
    }
    return false;
}

/* etrn_clnt_read_cb - one reply line completes the request. */
static void etrn_clnt_read_cb(struct bufferevent *bev, void *arg)
{
    struct etrn_clnt *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = 0, pending = 0;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
    int status = ETRN_CLNT_UNAVAILABLE;

    if (line == NULL) {
        if (evbuffer_get_length(in) > ETRN_CLNT_LINE_MAX)
            etrn_clnt_finish(c, ETRN_CLNT_UNAVAILABLE, 0);
        return;
    }
    if (!etrn_clnt_parse(line, &status, &pending)) {
        char clean[LOG_PEER_MAX + 1];

        log_warn("control socket: unexpected ETRN reply \"%s\"",
                 log_printable(clean, sizeof(clean), line, len));
        status = ETRN_CLNT_UNAVAILABLE;
    }
    free(line);
    etrn_clnt_finish(c, status, pending);
}

/* etrn_clnt_event_cb - EOF, error or timeout before the reply. */
static void etrn_clnt_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        etrn_clnt_finish(arg, ETRN_CLNT_UNAVAILABLE, 0);
}

/*
 * etrn_clnt_connect - nonblocking connect to the unix socket path; -1 when
 * impossible now.  Also used by turn_stats.c (declared in turn_stats.h).
 */
int etrn_clnt_connect(const char *path)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path))
        return -1;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS &&
         errno != EAGAIN)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* etrn_clnt_request - connect, send the request line, wait for the reply. */
struct etrn_clnt *etrn_clnt_request(struct event_base *base, const char *state_dir,
                                    const char *domain, bool subdomains, const char *client,
                                    int timeout, etrn_clnt_done_fn done, void *arg)
{
    struct timeval tv = {timeout > 0 ? timeout : 10, 0};
    char *path = xasprintf("%s/control", state_dir);
    int fd = etrn_clnt_connect(path);
    struct etrn_clnt *c;

    free(path);
    if (fd < 0)
        return NULL;
    c = xcalloc(1, sizeof(*c));
    c->done = done;
    c->arg = arg;
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, etrn_clnt_read_cb, NULL, etrn_clnt_event_cb, c);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    bufferevent_write(c->bev, "ETRN ", 5);
    if (subdomains)
        bufferevent_write(c->bev, "@", 1);
    bufferevent_write(c->bev, domain, strlen(domain));
    if (client != NULL && client[0] != '\0' && strpbrk(client, " \r\n") == NULL) {
        bufferevent_write(c->bev, " ", 1);
        bufferevent_write(c->bev, client, strlen(client));
    }
    bufferevent_write(c->bev, "\n", 1);
    return c;
}

/* etrn_clnt_cancel - free the request without reporting. */
void etrn_clnt_cancel(struct etrn_clnt *c)
{
    if (c == NULL)
        return;
    bufferevent_free(c->bev);
    free(c);
}
