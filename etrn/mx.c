/*
 * mx.c - MX selection (RFC 5321 5.1, RFC 7505) and target resolution.
 *
 * struct mx_query walks: [route literal] | [route host -> A/AAAA] |
 * MX -> (implicit MX | null MX | sort, shuffle, prune names) -> A/AAAA of
 * every remaining host in parallel -> prune hosts resolving to our own
 * addresses -> targets.  The query owns its DNS request ids (cancelled in
 * mx_cancel) and calls back from a zero timer or a DNS callback, so never
 * from inside mx_resolve().
 */
#include "mx.h"
#include "log.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MX_HOSTS_MAX 20 /* MX hosts looked at per domain */

/* mx_outcome_name - text for logs. */
const char *mx_outcome_name(int outcome)
{
    static const char *const names[] = {"ok", "hold (we are the best MX)", "null MX",
                                        "no such domain", "temporary failure"};
    return outcome >= 0 && outcome <= MX_TEMP ? names[outcome] : "unknown";
}

/* mx_route_parse - "[addr]:port", "[addr]", "host:port", "host"; false if malformed. */
bool mx_route_parse(const char *route, char *host, size_t hostsz, uint16_t *port, bool *literal)
{
    const char *end, *colon;
    size_t hl;

    *port = 0;
    *literal = route[0] == '[';
    if (*literal) {
        end = strchr(route, ']');
        if (end == NULL)
            return false;
        hl = (size_t)(end - route - 1);
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] != '\0' && colon == NULL)
            return false;
        route++;
    } else {
        colon = strrchr(route, ':');
        hl = colon ? (size_t)(colon - route) : strlen(route);
    }
    if (hl == 0 || hl >= hostsz)
        return false;
    memcpy(host, route, hl);
    host[hl] = '\0';
    if (!*literal && strchr(host, ':') != NULL)
        return false; /* bare IPv6 must be bracketed */
    if (colon != NULL) {
        char *e;
        unsigned long p = strtoul(colon + 1, &e, 10);
        if (colon[1] == '\0' || *e != '\0' || p == 0 || p > 65535)
            return false;
        *port = (uint16_t)p;
    }
    if (*literal) {
        unsigned char buf[16];
        if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
            return false;
    }
    return true;
}

/* mx_is_self_name - host (with or without the trailing dot) is one of our names. */
static bool mx_is_self_name(const struct mx_self *self, const char *host)
{
    size_t hl = strlen(host);

    if (hl > 0 && host[hl - 1] == '.')
        hl--;
    for (size_t i = 0; self && i < self->nnames; i++)
        if (strlen(self->names[i]) == hl && strncasecmp(self->names[i], host, hl) == 0)
            return true;
    return false;
}

/* mx_pref_cmp - qsort order: preference only (ties shuffled afterwards). */
static int mx_pref_cmp(const void *a, const void *b)
{
    const struct dns_mx_rec *x = a, *y = b;
    return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* mx_rand - default random source. */
static unsigned mx_rand(void *arg)
{
    (void)arg;
    return (unsigned)random();
}

/* mx_prune_pref - drop every record with preference >= pref; returns the new count. */
size_t mx_prune_pref(struct dns_mx_rec *recs, size_t n, unsigned pref)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        if (recs[i].pref < pref)
            recs[k++] = recs[i];
    return k;
}

/* mx_select - order recs in place and prune them; see mx.h. */
int mx_select(struct dns_mx_rec *recs, size_t *n, int status, const struct mx_self *self,
              unsigned (*rnd)(void *), void *rnd_arg)
{
    bool self_found = false;
    unsigned self_pref = 0;

    if (status == DNS_NULLMX || (*n == 1 && recs[0].pref == 0 &&
                                 (recs[0].host[0] == '\0' || strcmp(recs[0].host, ".") == 0)))
        return MX_NULLMX;
    if (rnd == NULL)
        rnd = mx_rand;
    qsort(recs, *n, sizeof(*recs), mx_pref_cmp);
    for (size_t i = 0; i < *n;) {
        size_t j = i;
        while (j < *n && recs[j].pref == recs[i].pref)
            j++;
        for (size_t k = j - 1; k > i; k--) { /* Fisher-Yates within [i, j) */
            size_t r = i + rnd(rnd_arg) % (k - i + 1);
            struct dns_mx_rec t = recs[k];
            recs[k] = recs[r];
            recs[r] = t;
        }
        i = j;
    }
    for (size_t i = 0; i < *n; i++) {
        if (mx_is_self_name(self, recs[i].host) && (!self_found || recs[i].pref < self_pref)) {
            self_found = true;
            self_pref = recs[i].pref;
        }
    }
    if (self_found)
        *n = mx_prune_pref(recs, *n, self_pref);
    /* Records naming the root besides a real null MX are useless. */
    {
        size_t k = 0;
        for (size_t i = 0; i < *n; i++)
            if (recs[i].host[0] != '\0' && strcmp(recs[i].host, ".") != 0)
                recs[k++] = recs[i];
        *n = k;
    }
    if (*n == 0)
        return self_found ? MX_HOLD : MX_TEMP;
    return MX_OK;
}

/* mx_host - one MX host being resolved. */
struct mx_host {
    struct mx_query *q;
    struct dns_mx_rec rec;
    uint64_t dns_id;
    bool done;
    int status;
    struct dns_addr_rec *addrs;
    size_t naddrs;
};

struct mx_query {
    struct dns_resolver *r;
    char domain[DNS_NAME_MAX];
    uint16_t port;
    struct mx_self self;
    mx_done_fn cb;
    void *arg;
    uint64_t mx_id;
    struct mx_host *hosts;
    size_t nhosts;
    size_t pending;
    struct event *later; /* literal routes and bad routes: answer from the loop */
    int later_outcome;
    char later_why[DNS_NAME_MAX + 64];
    struct mx_target literal;
};

/* mx_strv_dup - deep copy of n strings (the query outlives a configuration reload). */
static const char **mx_strv_dup(const char *const *v, size_t n)
{
    const char **out = xcalloc(n ? n : 1, sizeof(*out));

    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

/* mx_strv_free - free an mx_strv_dup copy. */
static void mx_strv_free(const char *const *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free((char *)v[i]);
    free((void *)v);
}

/* mx_query_free - cancel outstanding DNS requests and free q. */
static void mx_query_free(struct mx_query *q)
{
    mx_strv_free(q->self.names, q->self.nnames);
    mx_strv_free(q->self.addrs, q->self.naddrs);
    if (q->mx_id)
        dns_cancel(q->r, q->mx_id);
    for (size_t i = 0; i < q->nhosts; i++) {
        if (!q->hosts[i].done)
            dns_cancel(q->r, q->hosts[i].dns_id);
        free(q->hosts[i].addrs);
    }
    free(q->hosts);
    if (q->later)
        event_free(q->later);
    free(q);
}

/* mx_finish - report once and free. */
static void mx_finish(struct mx_query *q, int outcome, const struct mx_target *t, size_t n,
                      const char *why)
{
    q->cb(q->arg, outcome, t, n, why);
    mx_query_free(q);
}

/* mx_is_self_addr - text is one of our listen addresses. */
static bool mx_is_self_addr(const struct mx_self *self, const char *text)
{
    for (size_t i = 0; i < self->naddrs; i++)
        if (strcmp(self->addrs[i], text) == 0)
            return true;
    return false;
}

/* mx_set_port - put port into a resolved address. */
static void mx_set_port(struct dns_addr_rec *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

/* mx_hosts_done - every host resolved: prune our own addresses, build the targets. */
static void mx_hosts_done(struct mx_query *q)
{
    unsigned self_pref = 0;
    bool self_found = false, any_temp = false;
    struct mx_target *t;
    size_t nt = 0, cap = 0;
    char why[DNS_NAME_MAX + 80];

    for (size_t i = 0; i < q->nhosts; i++) {
        struct mx_host *h = &q->hosts[i];
        if (h->status == DNS_TEMP)
            any_temp = true;
        for (size_t k = 0; k < h->naddrs; k++)
            if (mx_is_self_addr(&q->self, h->addrs[k].text) &&
                (!self_found || h->rec.pref < self_pref)) {
                self_found = true;
                self_pref = h->rec.pref;
            }
        cap += h->naddrs;
    }
    t = xcalloc(cap ? cap : 1, sizeof(*t));
    for (size_t i = 0; i < q->nhosts; i++) {
        struct mx_host *h = &q->hosts[i];
        if (self_found && h->rec.pref >= self_pref)
            continue;
        for (size_t k = 0; k < h->naddrs; k++) {
            snprintf(t[nt].host, sizeof(t[nt].host), "%s", h->rec.host);
            t[nt].pref = h->rec.pref;
            t[nt].addr = h->addrs[k];
            t[nt].port = q->port;
            mx_set_port(&t[nt].addr, q->port);
            nt++;
        }
    }
    if (nt > 0) {
        mx_finish(q, MX_OK, t, nt, NULL);
    } else if (self_found) {
        mx_finish(q, MX_HOLD, NULL, 0, "we are the best MX host");
    } else {
        snprintf(why, sizeof(why), "%s address of the MX hosts of %s",
                 any_temp ? "temporary failure looking up the" : "no", q->domain);
        /* No address for any target: keep the mail held and try later. */
        mx_finish(q, MX_TEMP, NULL, 0, why);
    }
    free(t);
}

/* mx_addr_cb - addresses of one MX host; the last one completes the query. */
static void mx_addr_cb(void *arg, int status, const struct dns_addr_rec *a, size_t n)
{
    struct mx_host *h = arg;
    struct mx_query *q = h->q;

    h->done = true;
    h->status = status;
    if (status == DNS_OK && n > 0) {
        h->addrs = xcalloc(n, sizeof(*a));
        memcpy(h->addrs, a, n * sizeof(*a));
        h->naddrs = n;
    }
    if (--q->pending == 0)
        mx_hosts_done(q);
}

/* mx_lookup_hosts - resolve recs[0..n) in parallel. */
static void mx_lookup_hosts(struct mx_query *q, const struct dns_mx_rec *recs, size_t n)
{
    if (n > MX_HOSTS_MAX)
        n = MX_HOSTS_MAX;
    q->hosts = xcalloc(n, sizeof(*q->hosts));
    q->nhosts = n;
    q->pending = n;
    for (size_t i = 0; i < n; i++) {
        q->hosts[i].q = q;
        q->hosts[i].rec = recs[i];
    }
    for (size_t i = 0; i < n; i++)
        q->hosts[i].dns_id = dns_addr(q->r, q->hosts[i].rec.host, mx_addr_cb, &q->hosts[i]);
}

/* mx_mx_cb - the MX answer: null MX, implicit MX, or select and resolve the hosts. */
static void mx_mx_cb(void *arg, int status, const struct dns_mx_rec *mx, size_t n)
{
    struct mx_query *q = arg;
    struct dns_mx_rec *recs;
    char why[DNS_NAME_MAX + 64];
    int rc;

    q->mx_id = 0;
    if (status == DNS_NONAME || status == DNS_TEMP) {
        snprintf(why, sizeof(why), "%s looking up MX of %s", dns_status_name(status), q->domain);
        mx_finish(q, status == DNS_NONAME ? MX_NONAME : MX_TEMP, NULL, 0, why);
        return;
    }
    if (status == DNS_NODATA || n == 0) {
        struct dns_mx_rec implicit = {.pref = 0};
        snprintf(implicit.host, sizeof(implicit.host), "%s", q->domain);
        mx_lookup_hosts(q, &implicit, 1);
        return;
    }
    recs = xcalloc(n, sizeof(*recs));
    memcpy(recs, mx, n * sizeof(*recs));
    rc = mx_select(recs, &n, status, &q->self, NULL, NULL);
    if (rc == MX_OK) {
        mx_lookup_hosts(q, recs, n);
    } else {
        snprintf(why, sizeof(why), "%s for %s", mx_outcome_name(rc), q->domain);
        mx_finish(q, rc, NULL, 0, why);
    }
    free(recs);
}

/* mx_later_cb - answers known without DNS, delivered from the loop. */
static void mx_later_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mx_query *q = arg;

    (void)fd;
    (void)what;
    if (q->later_outcome == MX_OK)
        mx_finish(q, MX_OK, &q->literal, 1, NULL);
    else
        mx_finish(q, q->later_outcome, NULL, 0, q->later_why);
}

/* mx_answer_later - schedule mx_later_cb with outcome. */
static void mx_answer_later(struct mx_query *q, int outcome)
{
    struct timeval now = {0, 0};

    q->later_outcome = outcome;
    q->later = evtimer_new(dns_base(q->r), mx_later_cb, q);
    evtimer_add(q->later, &now);
}

/* mx_literal - fill q->literal from a numeric address. */
static bool mx_literal(struct mx_query *q, const char *host)
{
    struct mx_target *t = &q->literal;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr.ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr.ss;

    snprintf(t->host, sizeof(t->host), "%s", host);
    snprintf(t->addr.text, sizeof(t->addr.text), "%.63s", host);
    t->port = q->port;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        t->addr.len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        t->addr.len = sizeof(*s6);
    } else {
        return false;
    }
    mx_set_port(&t->addr, q->port);
    return true;
}

/* mx_resolve - targets for domain (route "" = DNS); port used unless the route has one. */
struct mx_query *mx_resolve(struct dns_resolver *r, const char *domain, const char *route,
                            uint16_t port, const struct mx_self *self, mx_done_fn cb, void *arg)
{
    struct mx_query *q = xcalloc(1, sizeof(*q));
    char host[DNS_NAME_MAX];
    uint16_t rport = 0;
    bool literal = false;

    q->r = r;
    snprintf(q->domain, sizeof(q->domain), "%s", domain);
    q->port = port;
    if (self) {
        q->self.names = mx_strv_dup(self->names, self->nnames);
        q->self.nnames = self->nnames;
        q->self.addrs = mx_strv_dup(self->addrs, self->naddrs);
        q->self.naddrs = self->naddrs;
    }
    q->cb = cb;
    q->arg = arg;
    if (route && route[0]) {
        if (!mx_route_parse(route, host, sizeof(host), &rport, &literal)) {
            /* A bad route is a configuration problem: keep the mail held, say why. */
            snprintf(q->later_why, sizeof(q->later_why), "malformed route for %.200s", domain);
            mx_answer_later(q, MX_TEMP);
            return q;
        }
        if (rport)
            q->port = rport;
        if (literal && mx_literal(q, host)) {
            mx_answer_later(q, MX_OK);
            return q;
        }
        {
            struct dns_mx_rec rec = {.pref = 0};
            snprintf(rec.host, sizeof(rec.host), "%s", host);
            mx_lookup_hosts(q, &rec, 1);
        }
        return q;
    }
    q->mx_id = dns_mx(r, domain, mx_mx_cb, q);
    return q;
}

/* mx_cancel - stop; the callback will not run.  q is freed. */
void mx_cancel(struct mx_query *q)
{
    if (q != NULL)
        mx_query_free(q);
}
