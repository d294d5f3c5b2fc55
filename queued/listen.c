/*
 * listen.c - the SMTP listeners of every site.
 *
 * One evconnlistener per smtp_listen address (SO_REUSEADDR, close on
 * exec).  Each listener knows its site by name and hands sockets to
 * smtpd_accept().  On reload, a listener whose address is still configured
 * is moved into the new set (its site may change) instead of being closed
 * and bound again, so clients never see a refused connection; the new set
 * is built completely before anything of the old one is touched.
 */
#include "smtpd.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "log.h"
#include "xalloc.h"

#define LISTEN_BACKLOG    128
#define LISTEN_RETRY_SECS 1 /* pause after accept() failed (EMFILE, ENFILE, ENOBUFS) */

struct listen_one {
    struct evconnlistener *lev;
    struct event *retry_ev; /* re-enables the listener after an accept() failure */
    struct conf_addr addr;
    char site[CONF_NAME_MAX];
    struct smtpd *sd;
};

struct listen_set {
    struct listen_one **items;
    int n;
};

/* listen_accept_cb - a new connection for this listener's site. */
static void listen_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    struct listen_one *lo = arg;

    (void)lev;
    smtpd_accept(lo->sd, lo->site, fd, sa, salen);
}

/* listen_retry_cb - accept again after the pause. */
static void listen_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct listen_one *lo = arg;

    (void)fd;
    (void)what;
    evconnlistener_enable(lo->lev);
}

/*
 * listen_error_cb - accept() failed (e.g. out of descriptors): log and
 * pause this listener for a second instead of spinning on the error.
 */
static void listen_error_cb(struct evconnlistener *lev, void *arg)
{
    struct listen_one *lo = arg;
    struct timeval tv = {LISTEN_RETRY_SECS, 0};
    char buf[CONF_HOST_MAX + 16];

    log_warn("accept on %s: %s; pausing %d s", conf_format_addr(&lo->addr, buf, sizeof(buf)),
             evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), LISTEN_RETRY_SECS);
    evconnlistener_disable(lev);
    evtimer_add(lo->retry_ev, &tv);
}

/* listen_bind - a bound listener for one address; NULL + err on failure. */
static struct evconnlistener *listen_bind(struct event_base *base, const struct conf_addr *a,
                                          void *arg, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct evconnlistener *lev = NULL;
    char port[8], buf[CONF_HOST_MAX + 16];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", (unsigned)a->port);
    rc = getaddrinfo(a->host[0] ? a->host : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s",
                 conf_format_addr(a, buf, sizeof(buf)), gai_strerror(rc));
        return NULL;
    }
    for (ai = res; ai != NULL && lev == NULL; ai = ai->ai_next)
        lev = evconnlistener_new_bind(base, listen_accept_cb, arg,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
                                          LEV_OPT_REUSEABLE,
                                      LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    if (lev == NULL)
        snprintf(err, errlen, "cannot listen on %s: %s (hint: is another server using it?)",
                 conf_format_addr(a, buf, sizeof(buf)), strerror(errno));
    freeaddrinfo(res);
    return lev;
}

/* listen_same - same configured endpoint. */
static bool listen_same(const struct conf_addr *a, const struct conf_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* listen_take - move prev's listener for address a (if any) out of prev. */
static struct listen_one *listen_take(struct listen_set *prev, const struct conf_addr *a)
{
    int i;

    for (i = 0; prev != NULL && i < prev->n; i++) {
        struct listen_one *lo = prev->items[i];
        if (lo != NULL && listen_same(&lo->addr, a)) {
            prev->items[i] = NULL;
            return lo;
        }
    }
    return NULL;
}

/* listen_one_free - close one listener. */
static void listen_one_free(struct listen_one *lo)
{
    if (lo == NULL)
        return;
    if (lo->retry_ev != NULL)
        event_free(lo->retry_ev);
    if (lo->lev != NULL)
        evconnlistener_free(lo->lev);
    free(lo);
}

/* listen_undo - give reused listeners back to prev, close the new ones. */
static void listen_undo(struct listen_set *ls, struct listen_set *prev, bool *reused)
{
    int i, j;

    for (i = 0; i < ls->n; i++) {
        if (!reused[i]) {
            listen_one_free(ls->items[i]);
            continue;
        }
        for (j = 0; j < prev->n; j++)
            if (prev->items[j] == NULL) {
                prev->items[j] = ls->items[i];
                break;
            }
    }
    free(ls->items);
    free(ls);
}

/* listen_count - smtp_listen addresses in cf. */
static int listen_count(const struct conf *cf)
{
    int i, n = 0;

    for (i = 0; i < cf->nsites; i++)
        n += cf->sites[i].n_smtp_listen;
    return n;
}

/* listen_add - bind or reuse the listener of one address of site cs. */
static bool listen_add(struct event_base *base, struct listen_set *ls, struct listen_set *prev,
                       bool *reused, const struct conf_site *cs, const struct conf_addr *a,
                       struct smtpd *sd, char *err, size_t errlen)
{
    struct listen_one *lo = listen_take(prev, a);
    char buf[CONF_HOST_MAX + 16];

    reused[ls->n] = lo != NULL;
    if (lo == NULL) {
        lo = xcalloc(1, sizeof(*lo));
        lo->lev = listen_bind(base, a, lo, err, errlen);
        if (lo->lev == NULL) {
            free(lo);
            return false;
        }
        lo->retry_ev = evtimer_new(base, listen_retry_cb, lo);
        log_info("listening on %s for site %s", conf_format_addr(a, buf, sizeof(buf)), cs->name);
    }
    lo->addr = *a;
    lo->sd = sd;
    snprintf(lo->site, sizeof(lo->site), "%s", cs->name);
    evconnlistener_set_error_cb(lo->lev, listen_error_cb);
    ls->items[ls->n++] = lo;
    return true;
}

/* listen_open - bind every smtp_listen address of cf (reusing prev's sockets). */
struct listen_set *listen_open(struct event_base *base, const struct conf *cf, struct smtpd *sd,
                               struct listen_set *prev, char *err, size_t errlen)
{
    struct listen_set *ls = xcalloc(1, sizeof(*ls));
    int total = listen_count(cf), i, j;
    bool *reused = xcalloc((size_t)total + 1, sizeof(*reused));

    ls->items = xcalloc((size_t)total + 1, sizeof(*ls->items));
    for (i = 0; i < cf->nsites; i++) {
        const struct conf_site *cs = &cf->sites[i];
        for (j = 0; j < cs->n_smtp_listen; j++) {
            if (!listen_add(base, ls, prev, reused, cs, &cs->smtp_listen[j], sd, err, errlen)) {
                listen_undo(ls, prev, reused);
                free(reused);
                return NULL;
            }
        }
    }
    free(reused);
    return ls;
}

/* listen_disable - stop accepting without closing. */
void listen_disable(struct listen_set *ls)
{
    int i;

    for (i = 0; ls != NULL && i < ls->n; i++) {
        if (ls->items[i] == NULL)
            continue;
        evconnlistener_disable(ls->items[i]->lev);
        evtimer_del(ls->items[i]->retry_ev);
    }
}

/* listen_close - close every listener still owned by ls and free it. */
void listen_close(struct listen_set *ls)
{
    int i;

    if (ls == NULL)
        return;
    for (i = 0; i < ls->n; i++)
        listen_one_free(ls->items[i]);
    free(ls->items);
    free(ls);
}
