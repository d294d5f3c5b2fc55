/*
 * dns.c - c-ares glue: sockets and timers on a libevent event_base.
 *
 * c-ares tells us which sockets to watch through ARES_OPT_SOCK_STATE_CB;
 * each gets a persistent event that calls ares_process_fd(), and one timer
 * follows ares_timeout().  (c-ares 1.18 has no ares_process_fds.)
 *
 * Requests (struct dns_req) live in a registry list keyed by id.  The
 * c-ares callback only stores the outcome and arms the request's zero
 * timer; the user callback runs from that timer, so it never runs inside
 * the caller's dns_mx()/dns_addr() nor inside c-ares.  A cancelled request
 * stays in the registry until c-ares is done with it, then is freed
 * silently.  Ownership: the resolver owns every request.
 */
#include "dns.h"
#include "log.h"
#include "xalloc.h"

#include <ares.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define DNS_TIMEOUT_MS 2000
#define DNS_TRIES      2

/* dns_sock - one socket c-ares asked us to watch. */
struct dns_sock {
    ares_socket_t fd;
    struct event *ev;
    struct dns_sock *next;
};

enum dns_kind { DNS_REQ_MX, DNS_REQ_ADDR };

/* dns_req - one request, from dns_mx/dns_addr to its callback. */
struct dns_req {
    uint64_t id;
    struct dns_resolver *r;
    enum dns_kind kind;
    dns_mx_fn mx_cb;
    dns_addr_fn addr_cb;
    void *arg;
    bool cancelled;
    int status;
    struct dns_mx_rec *mx;
    struct dns_addr_rec *addrs;
    size_t n;
    struct event *fire;
    struct dns_req *next;
};

struct dns_resolver {
    struct event_base *base;
    ares_channel ch;
    struct event *timer;
    struct dns_sock *socks;
    struct dns_req *reqs;
    uint64_t next_id;
    bool destroying;
};

static int dns_lib_refs;

/* dns_status_name - text for logs. */
const char *dns_status_name(int status)
{
    static const char *const names[] = {"ok", "no such domain", "no records", "null MX",
                                        "temporary DNS failure"};
    return status >= 0 && status <= DNS_TEMP ? names[status] : "unknown";
}

/* dns_base - the event_base the resolver runs on. */
struct event_base *dns_base(const struct dns_resolver *r)
{
    return r->base;
}

/* dns_timer_update - follow c-ares's next timeout. */
static void dns_timer_update(struct dns_resolver *r)
{
    struct timeval tv, *tvp;

    if (r->destroying)
        return;
    tvp = ares_timeout(r->ch, NULL, &tv);
    if (tvp != NULL)
        evtimer_add(r->timer, tvp);
    else
        evtimer_del(r->timer);
}

/* dns_io_cb - a watched socket is readable or writable. */
static void dns_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns_resolver *r = arg;

    ares_process_fd(r->ch, (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
    dns_timer_update(r);
}

/* dns_timer_cb - let c-ares retry or time out queries. */
static void dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns_resolver *r = arg;

    (void)fd;
    (void)what;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_timer_update(r);
}

/* dns_sock_state_cb - c-ares wants fd watched for reading/writing, or not at all. */
static void dns_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_resolver *r = data;
    struct dns_sock **pp = &r->socks, *s;

    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    s = *pp;
    if (!readable && !writable) {
        if (s != NULL) {
            *pp = s->next;
            event_free(s->ev);
            free(s);
        }
        return;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->next = r->socks;
        r->socks = s;
    } else {
        event_free(s->ev);
    }
    s->ev =
        event_new(r->base, fd, EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0),
                  dns_io_cb, r);
    event_add(s->ev, NULL);
}

/* dns_new - a resolver on base; servers NULL = the system configuration. */
struct dns_resolver *dns_new(struct event_base *base, const char *servers, char *err, size_t errlen)
{
    struct dns_resolver *r = xcalloc(1, sizeof(*r));
    struct ares_options o;
    int rc;

    if (dns_lib_refs++ == 0 && (rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
        dns_lib_refs--;
        free(r);
        return NULL;
    }
    memset(&o, 0, sizeof(o));
    o.flags = ARES_FLAG_NOSEARCH;
    o.timeout = DNS_TIMEOUT_MS;
    o.tries = DNS_TRIES;
    o.lookups = (char *)"b";
    o.sock_state_cb = dns_sock_state_cb;
    o.sock_state_cb_data = r;
    rc = ares_init_options(&r->ch, &o,
                           ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
                               ARES_OPT_SOCK_STATE_CB);
    if (rc == ARES_SUCCESS && servers && *servers)
        rc = ares_set_servers_ports_csv(r->ch, servers);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares channel%s%s: %s", servers ? " for " : "",
                 servers ? servers : "", ares_strerror(rc));
        if (r->ch)
            ares_destroy(r->ch);
        if (--dns_lib_refs == 0)
            ares_library_cleanup();
        free(r);
        return NULL;
    }
    r->base = base;
    r->timer = evtimer_new(base, dns_timer_cb, r);
    r->next_id = 1;
    return r;
}

/* dns_req_free - unlink and free one request. */
static void dns_req_free(struct dns_req *q)
{
    struct dns_req **pp = &q->r->reqs;

    while (*pp && *pp != q)
        pp = &(*pp)->next;
    if (*pp)
        *pp = q->next;
    event_free(q->fire);
    free(q->mx);
    free(q->addrs);
    free(q);
}

/* dns_free - destroy the channel; pending requests are dropped without callbacks. */
void dns_free(struct dns_resolver *r)
{
    if (r == NULL)
        return;
    r->destroying = true;
    for (struct dns_req *q = r->reqs; q; q = q->next)
        q->cancelled = true;
    ares_destroy(r->ch); /* calls every pending c-ares callback (EDESTRUCTION) */
    while (r->reqs)
        dns_req_free(r->reqs);
    while (r->socks) {
        struct dns_sock *s = r->socks;
        r->socks = s->next;
        event_free(s->ev);
        free(s);
    }
    event_free(r->timer);
    if (--dns_lib_refs == 0)
        ares_library_cleanup();
    free(r);
}

/* dns_fire_cb - deliver a finished request to its user, then free it. */
static void dns_fire_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns_req *q = arg;

    (void)fd;
    (void)what;
    if (!q->cancelled) {
        if (q->kind == DNS_REQ_MX)
            q->mx_cb(q->arg, q->status, q->mx, q->n);
        else
            q->addr_cb(q->arg, q->status, q->addrs, q->n);
    }
    dns_req_free(q);
}

/* dns_req_answered - c-ares finished: schedule the user callback (or drop it). */
static void dns_req_answered(struct dns_req *q, int status)
{
    struct timeval now = {0, 0};

    q->status = status;
    if (q->r->destroying)
        return;
    evtimer_add(q->fire, &now);
}

/* dns_map - c-ares status to a delivery-level outcome. */
static int dns_map(int ares_status)
{
    switch (ares_status) {
    case ARES_SUCCESS:
        return DNS_OK;
    case ARES_ENOTFOUND:
        return DNS_NONAME;
    case ARES_ENODATA:
        return DNS_NODATA;
    default:
        return DNS_TEMP; /* ESERVFAIL, ECONNREFUSED (REFUSED), ETIMEOUT, ... */
    }
}

/* dns_req_new - register a request of kind. */
static struct dns_req *dns_req_new(struct dns_resolver *r, enum dns_kind kind, void *arg)
{
    struct dns_req *q = xcalloc(1, sizeof(*q));

    q->id = r->next_id++;
    q->r = r;
    q->kind = kind;
    q->arg = arg;
    q->fire = evtimer_new(r->base, dns_fire_cb, q);
    q->next = r->reqs;
    r->reqs = q;
    return q;
}

/* dns_mx_answer - ares_query callback for MX. */
static void dns_mx_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_req *q = arg;
    struct ares_mx_reply *head = NULL;
    size_t n = 0, i = 0;

    (void)timeouts;
    if (status == ARES_SUCCESS)
        status = ares_parse_mx_reply(abuf, alen, &head);
    if (status != ARES_SUCCESS) {
        dns_req_answered(q, dns_map(status));
        return;
    }
    for (struct ares_mx_reply *m = head; m; m = m->next)
        n++;
    q->mx = xcalloc(n ? n : 1, sizeof(*q->mx));
    for (struct ares_mx_reply *m = head; m; m = m->next, i++) {
        q->mx[i].pref = m->priority;
        snprintf(q->mx[i].host, sizeof(q->mx[i].host), "%s",
                 strcmp(m->host, ".") == 0 ? "" : m->host);
    }
    q->n = n;
    ares_free_data(head);
    if (n == 0)
        dns_req_answered(q, DNS_NODATA);
    else if (n == 1 && q->mx[0].pref == 0 && q->mx[0].host[0] == '\0')
        dns_req_answered(q, DNS_NULLMX);
    else
        dns_req_answered(q, DNS_OK);
}

/* dns_mx - MX records of domain. */
uint64_t dns_mx(struct dns_resolver *r, const char *domain, dns_mx_fn cb, void *arg)
{
    struct dns_req *q = dns_req_new(r, DNS_REQ_MX, arg);
    uint64_t id = q->id;

    q->mx_cb = cb;
    ares_query(r->ch, domain, 1 /* C_IN */, 15 /* T_MX */, dns_mx_answer, q);
    dns_timer_update(r);
    return id;
}

/* dns_addr_answer - ares_getaddrinfo callback. */
static void dns_addr_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct dns_req *q = arg;
    size_t n = 0, i = 0;

    (void)timeouts;
    if (status != ARES_SUCCESS || res == NULL) {
        if (res)
            ares_freeaddrinfo(res);
        dns_req_answered(q, dns_map(status == ARES_SUCCESS ? ARES_ENODATA : status));
        return;
    }
    for (struct ares_addrinfo_node *a = res->nodes; a; a = a->ai_next)
        n++;
    q->addrs = xcalloc(n ? n : 1, sizeof(*q->addrs));
    for (struct ares_addrinfo_node *a = res->nodes; a; a = a->ai_next) {
        struct dns_addr_rec *d = &q->addrs[i];
        const void *src;
        if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) || a->ai_addrlen > sizeof(d->ss))
            continue;
        memcpy(&d->ss, a->ai_addr, a->ai_addrlen);
        d->len = a->ai_addrlen;
        src = a->ai_family == AF_INET
                  ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                  : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        inet_ntop(a->ai_family, src, d->text, sizeof(d->text));
        i++;
    }
    q->n = i;
    ares_freeaddrinfo(res);
    dns_req_answered(q, i ? DNS_OK : DNS_NODATA);
}

/* dns_addr - A and AAAA records of host. */
uint64_t dns_addr(struct dns_resolver *r, const char *host, dns_addr_fn cb, void *arg)
{
    struct dns_req *q = dns_req_new(r, DNS_REQ_ADDR, arg);
    struct ares_addrinfo_hints h;
    uint64_t id = q->id;

    q->addr_cb = cb;
    memset(&h, 0, sizeof(h));
    h.ai_family = AF_UNSPEC;
    h.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(r->ch, host, NULL, &h, dns_addr_answer, q);
    dns_timer_update(r);
    return id;
}

/* dns_cancel - the request's callback will not be called. */
void dns_cancel(struct dns_resolver *r, uint64_t id)
{
    for (struct dns_req *q = r->reqs; q; q = q->next) {
        if (q->id == id) {
            q->cancelled = true;
            return;
        }
    }
}
