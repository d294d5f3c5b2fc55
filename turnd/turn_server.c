/*
 * turn_server.c - turnd's listeners and process-wide state.
 *
 * One evconnlistener per odmr_listen address of every site.  Accepting
 * applies the connection caps (cf->max_connections in all,
 * cf->max_connections_per_ip per client address; over the cap the client
 * gets "421 4.7.0" and is closed).  A configuration generation (turn_gen)
 * bundles a loaded struct conf with the sites' TLS server contexts; SIGHUP
 * loads a new one and only swaps it in when it is valid, and listeners are
 * rebuilt only when the set of addresses changed.  A timer renews the
 * leases of running reversals.  Shutdown closes the listeners, aborts every
 * session (reversed runs defer what was not acknowledged, so mail stays
 * held) and releases whatever lease this process still has.  The metrics
 * pusher (turn_stats.c) runs on the same loop and pushes once more when
 * the loop has ended.
 */
#include "turnd.h"

#include <errno.h>
#include <signal.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"
#include "turn_session.h"
#include "turn_stats.h"
#include "xalloc.h"

/* turn_gen_log_errors - conf_load's problems, one log line each. */
static void turn_gen_log_errors(char *text)
{
    char *save = NULL;

    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        log_error("%s", line);
}

/* turn_gen_tls - server contexts of the sites that have a certificate. */
static bool turn_gen_tls(struct turn_gen *g, char *err, size_t errlen)
{
    g->tls = xcalloc((size_t)g->cf.nsites + 1, sizeof(*g->tls));
    for (int i = 0; i < g->cf.nsites; i++) {
        const struct conf_site *site = &g->cf.sites[i];
        char why[256] = "";

        if (site->tls_cert == NULL)
            continue;
        tls_init();
        g->tls[i] = tls_server_ctx_new(site->tls_cert, site->tls_key, why, sizeof(why));
        if (g->tls[i] == NULL) {
            snprintf(err, errlen, "site %s: TLS certificate %s: %s", site->name, site->tls_cert,
                     why);
            return false;
        }
    }
    return true;
}

/* turn_gen_free - release a generation (refs must be zero). */
static void turn_gen_free(struct turn_gen *g)
{
    if (g->tls != NULL)
        for (int i = 0; i < g->cf.nsites; i++)
            if (g->tls[i] != NULL)
                tls_ctx_free(g->tls[i]);
    free(g->tls);
    conf_free(&g->cf);
    free(g);
}

/* turn_gen_load - read path into a new generation; NULL + err on failure. */
struct turn_gen *turn_gen_load(const char *path, char *err, size_t errlen)
{
    struct turn_gen *g = xcalloc(1, sizeof(*g));
    char *text = NULL;
    size_t textlen = 0;
    FILE *errs = open_memstream(&text, &textlen);
    int problems;

    if (errs == NULL)
        log_fatal("open_memstream: %s", strerror(errno));
    problems = conf_load(path, &g->cf, errs);
    fclose(errs);
    if (problems != 0) {
        turn_gen_log_errors(text);
        snprintf(err, errlen, "%s: %d configuration problem(s)", path, problems);
        free(text);
        turn_gen_free(g);
        return NULL;
    }
    free(text);
    if (!turn_gen_tls(g, err, errlen)) {
        turn_gen_free(g);
        return NULL;
    }
    g->refs = 1;
    return g;
}

/* turn_gen_ref - one more user of g. */
struct turn_gen *turn_gen_ref(struct turn_gen *g)
{
    g->refs++;
    return g;
}

/* turn_gen_unref - one user less; the last one frees it. */
void turn_gen_unref(struct turn_gen *g)
{
    if (g != NULL && --g->refs == 0)
        turn_gen_free(g);
}

/* turn_site_index - position of the site called name, or -1. */
int turn_site_index(const struct conf *cf, const char *name)
{
    for (int i = 0; i < cf->nsites; i++)
        if (strcmp(cf->sites[i].name, name) == 0)
            return i;
    return -1;
}

/* turn_ipcount_find - the counter of ip (created when create is set). */
static struct turn_ipcount *turn_ipcount_find(struct turn_server *srv, const char *ip, bool create)
{
    for (int i = 0; i < srv->nips; i++)
        if (strcmp(srv->ips[i].ip, ip) == 0)
            return &srv->ips[i];
    if (!create)
        return NULL;
    srv->ips = xrealloc(srv->ips, (size_t)(srv->nips + 1) * sizeof(*srv->ips));
    memset(&srv->ips[srv->nips], 0, sizeof(srv->ips[0]));
    snprintf(srv->ips[srv->nips].ip, sizeof(srv->ips[0].ip), "%s", ip);
    return &srv->ips[srv->nips++];
}

/* turn_ipcount_drop - one connection of ip ended. */
static void turn_ipcount_drop(struct turn_server *srv, const char *ip)
{
    struct turn_ipcount *c = turn_ipcount_find(srv, ip, false);

    if (c == NULL)
        return;
    if (--c->n <= 0) {
        *c = srv->ips[srv->nips - 1];
        srv->nips--;
    }
}

/* turn_refuse - over a cap: one 421 line (best effort) and close. */
static void turn_refuse(int fd, const char *why)
{
    static const char msg[] = "421 4.7.0 Error: too many connections\r\n";

    log_warn("connection refused: %s", why);
    (void)!send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
}

/* turn_accept_cb - new connection on an ODMR listener. */
static void turn_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    struct turn_listener *l = arg;
    struct turn_server *srv = l->srv;
    const struct conf *cf = &srv->gen->cf;
    struct turn_ipcount *c;
    char ip[64];
    int port;

    (void)lev;
    turn_sockaddr_text(sa, ip, sizeof(ip), &port);
    if (srv->stopping) {
        close(fd);
        return;
    }
    if (cf->max_connections > 0 && srv->nsessions >= cf->max_connections) {
        turn_refuse(fd, "max_connections reached");
        return;
    }
    c = turn_ipcount_find(srv, ip, true);
    if (cf->max_connections_per_ip > 0 && c->n >= cf->max_connections_per_ip) {
        char why[128];

        snprintf(why, sizeof(why), "max_connections_per_ip reached for [%s]", ip);
        if (c->n == 0)
            turn_ipcount_drop(srv, ip);
        turn_refuse(fd, why);
        return;
    }
    c->n++;
    evutil_make_socket_nonblocking(fd);
    turn_session_start(srv, fd, sa, salen, l->site);
}

/* turn_server_session_gone - unlink s, release its connection counts. */
void turn_server_session_gone(struct turn_server *srv, struct turn_session *s)
{
    /* turn_session_start() linked s at the head; the back links make this O(1) */
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    srv->nsessions--;
    turn_ipcount_drop(srv, s->ip);
    if (srv->stopping && srv->nsessions == 0)
        event_base_loopbreak(srv->base);
}

/* turn_listen_one - bind one address for site; false when it fails. */
static bool turn_listen_one(struct turn_server *srv, const struct conf_addr *a, const char *site)
{
    struct addrinfo hints, *res = NULL;
    char port[16], text[CONF_HOST_MAX + 16];
    struct turn_listener *l;
    int r;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", a->port);
    conf_format_addr(a, text, sizeof(text));
    r = getaddrinfo(a->host[0] ? a->host : NULL, port, &hints, &res);
    if (r != 0) {
        log_error("odmr_listen %s: %s", text, gai_strerror(r));
        return false;
    }
    l = xcalloc(1, sizeof(*l)); /* stable address: it is the callback argument */
    l->srv = srv;
    snprintf(l->site, sizeof(l->site), "%s", site);
    l->lev = evconnlistener_new_bind(srv->base, turn_accept_cb, l,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128, res->ai_addr,
                                     (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (l->lev == NULL) {
        log_error("odmr_listen %s (site %s): cannot listen: %s", text, site, strerror(errno));
        free(l);
        return false;
    }
    srv->lis = xrealloc(srv->lis, (size_t)(srv->nlis + 1) * sizeof(*srv->lis));
    srv->lis[srv->nlis++] = l;
    log_info("listening on %s for site %s", text, site);
    return true;
}

/* turn_server_unlisten - close every listener. */
static void turn_server_unlisten(struct turn_server *srv)
{
    for (int i = 0; i < srv->nlis; i++) {
        evconnlistener_free(srv->lis[i]->lev);
        free(srv->lis[i]);
    }
    free(srv->lis);
    srv->lis = NULL;
    srv->nlis = 0;
}

/* turn_server_listen - listeners for every site's odmr_listen; returns how many failed. */
int turn_server_listen(struct turn_server *srv)
{
    const struct conf *cf = &srv->gen->cf;
    int failed = 0;

    for (int i = 0; i < cf->nsites; i++)
        for (int j = 0; j < cf->sites[i].n_odmr_listen; j++)
            if (!turn_listen_one(srv, &cf->sites[i].odmr_listen[j], cf->sites[i].name))
                failed++;
    if (srv->nlis == 0 && failed == 0)
        log_warn("no site has an odmr_listen address: turnd has nothing to do");
    return failed;
}

/* turn_renew_cb - keep the leases of running reversals alive. */
static void turn_renew_cb(evutil_socket_t fd, short what, void *arg)
{
    struct turn_server *srv = arg;
    int r;

    (void)fd;
    (void)what;
    if (srv->sessions == NULL)
        return;
    r = store_lease_renew(srv->st, &srv->owner, TURN_LEASE_TTL);
    if (r != STORE_OK)
        log_error("lease renewal: %s", store_strerror(r));
}

/* turn_signal_cb - SIGTERM/SIGINT: shut down; SIGHUP: reload. */
static void turn_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct turn_server *srv = arg;

    (void)what;
    if (sig == SIGHUP)
        turn_server_reload(srv);
    else
        turn_server_shutdown(srv);
}

/* turn_server_init - wire the server to base; gen and st are taken over. */
bool turn_server_init(struct turn_server *srv, struct event_base *base, const char *conf_path,
                      struct turn_gen *gen, struct store *st)
{
    struct timeval tv = {TURN_LEASE_RENEW, 0};

    memset(srv, 0, sizeof(*srv));
    srv->base = base;
    srv->conf_path = xstrdup(conf_path);
    srv->gen = gen;
    srv->st = st;
    store_owner_self(&srv->owner);
    srv->penalty = turn_penalty_new();
    srv->renew_ev = event_new(base, -1, EV_PERSIST, turn_renew_cb, srv);
    srv->sig_term = evsignal_new(base, SIGTERM, turn_signal_cb, srv);
    srv->sig_int = evsignal_new(base, SIGINT, turn_signal_cb, srv);
    srv->sig_hup = evsignal_new(base, SIGHUP, turn_signal_cb, srv);
    if (srv->renew_ev == NULL || srv->sig_term == NULL || srv->sig_int == NULL ||
        srv->sig_hup == NULL)
        return false;
    if (!turn_stats_start(base, gen->cf.state_dir))
        return false;
    event_add(srv->renew_ev, &tv);
    event_add(srv->sig_term, NULL);
    event_add(srv->sig_int, NULL);
    event_add(srv->sig_hup, NULL);
    return true;
}

/* turn_same_listen - do two configurations listen on the same addresses? */
static bool turn_same_listen(const struct conf *a, const struct conf *b)
{
    if (a->nsites != b->nsites)
        return false;
    for (int i = 0; i < a->nsites; i++) {
        const struct conf_site *x = &a->sites[i], *y = &b->sites[i];

        if (strcmp(x->name, y->name) != 0 || x->n_odmr_listen != y->n_odmr_listen)
            return false;
        for (int j = 0; j < x->n_odmr_listen; j++)
            if (strcmp(x->odmr_listen[j].host, y->odmr_listen[j].host) != 0 ||
                x->odmr_listen[j].port != y->odmr_listen[j].port)
                return false;
    }
    return true;
}

/* turn_server_reload - SIGHUP: swap in a valid new configuration. */
void turn_server_reload(struct turn_server *srv)
{
    char err[512] = "";
    struct turn_gen *g = turn_gen_load(srv->conf_path, err, sizeof(err));
    bool same;

    if (g == NULL) {
        log_error("reload refused, keeping the running configuration: %s", err);
        return;
    }
    same = turn_same_listen(&srv->gen->cf, &g->cf);
    turn_gen_unref(srv->gen);
    srv->gen = g;
    if (!same) {
        turn_server_unlisten(srv);
        turn_server_listen(srv);
    }
    log_info("configuration reloaded from %s%s", srv->conf_path,
             same ? "" : " (listeners rebuilt)");
}

/* turn_server_shutdown - stop accepting, abort sessions, release leases. */
void turn_server_shutdown(struct turn_server *srv)
{
    struct timeval grace = {5, 0};
    struct turn_session *s, *next;

    if (srv->stopping)
        return;
    srv->stopping = true;
    log_info("shutting down: %d session(s)", srv->nsessions);
    turn_server_unlisten(srv);
    for (s = srv->sessions; s != NULL; s = next) {
        next = turn_session_next(s); /* abort frees s, never another session */
        turn_session_abort(s, "turnd shutting down");
    }
    if (srv->nsessions == 0)
        event_base_loopbreak(srv->base);
    else
        event_base_loopexit(srv->base, &grace);
}

/* turn_server_free - after the loop: release leases and everything else. */
void turn_server_free(struct turn_server *srv)
{
    int r;

    turn_stats_flush();
    turn_stats_stop();
    r = store_lease_release(srv->st, &srv->owner);
    if (r != STORE_OK)
        log_error("lease release at exit: %s", store_strerror(r));
    turn_server_unlisten(srv);
    if (srv->renew_ev)
        event_free(srv->renew_ev);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->sig_hup)
        event_free(srv->sig_hup);
    turn_penalty_free(srv->penalty);
    free(srv->ips);
    free(srv->conf_path);
    turn_gen_unref(srv->gen);
    srv->gen = NULL;
}
