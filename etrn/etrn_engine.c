/*
 * etrn_engine.c - the ETRN engine object and etrn_kick() policy.
 *
 * etrn_kick() answers at once: it maps the node to held domains (exact,
 * or the domain and its subdomains for "@domain"), checks the site, the
 * per-domain etrn_enabled flag, the per-client rate (etrn_rate_per_client
 * ETRNs per minute) and the per-domain interval (etrn_domain_interval),
 * refuses a second concurrent run of a domain, counts the waiting mail and
 * starts the runs (etrn_run.c) without waiting for them.
 *
 * The engine owns its resolver, its client TLS context, the rate and
 * interval tables, and every run and DSN delivery it started; cf and st
 * are borrowed and must outlive it.
 */
#include "etrn.h"
#include "etrn_int.h"
#include "log.h"
#include "tls.h"
#include "xalloc.h"

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* etrn_status_name - text of an enum etrn_status. */
const char *etrn_status_name(int status)
{
    static const char *const names[] = {"started", "nothing", "running", "disabled",
                                        "unknown", "rate",    "error"};
    return status >= 0 && status <= ETRN_ERROR ? names[status] : "invalid";
}

/* etrn_now - the wall clock in seconds. */
int64_t etrn_now(void)
{
    return (int64_t)time(NULL);
}

/* etrn_self_rebuild - our names (site hostnames) and listen addresses from cf. */
static void etrn_self_rebuild(struct etrn_engine *e)
{
    const struct conf *cf = e->cf;
    size_t na = 0;

    free(e->self_names);
    free(e->self_addrs);
    e->self_names = xcalloc((size_t)cf->nsites + 1, sizeof(char *));
    e->nself_names = 0;
    for (int i = 0; i < cf->nsites; i++) {
        if (cf->sites[i].hostname[0])
            e->self_names[e->nself_names++] = cf->sites[i].hostname;
        na += (size_t)cf->sites[i].n_smtp_listen + (size_t)cf->sites[i].n_odmr_listen;
    }
    e->self_addrs = xcalloc(na + 1, sizeof(char *));
    e->nself_addrs = 0;
    for (int i = 0; i < cf->nsites; i++) {
        for (int k = 0; k < cf->sites[i].n_smtp_listen; k++)
            e->self_addrs[e->nself_addrs++] = cf->sites[i].smtp_listen[k].host;
        for (int k = 0; k < cf->sites[i].n_odmr_listen; k++)
            e->self_addrs[e->nself_addrs++] = cf->sites[i].odmr_listen[k].host;
    }
}

/* etrn_self - the relay-rule identity from the configuration. */
void etrn_self(const struct etrn_engine *e, struct mx_self *self)
{
    self->names = e->self_names;
    self->nnames = e->nself_names;
    self->addrs = e->self_addrs;
    self->naddrs = e->nself_addrs;
}

/* etrn_hostname - our name for site (its hostname; else the first site's; else "localhost"). */
const char *etrn_hostname(const struct etrn_engine *e, const char *site)
{
    const struct conf_site *s = site ? conf_site_find(e->cf, site) : NULL;

    if (s && s->hostname[0])
        return s->hostname;
    if (e->cf->nsites > 0 && e->cf->sites[0].hostname[0])
        return e->cf->sites[0].hostname;
    return "localhost";
}

/* etrn_dns - the resolver, created on first use; NULL if c-ares failed. */
struct dns_resolver *etrn_dns(struct etrn_engine *e)
{
    char err[256];

    if (e->dns != NULL && e->dns_stale && e->nruns == 0 && e->ndsns == 0) {
        dns_free(e->dns);
        e->dns = NULL;
    }
    if (e->dns == NULL) {
        e->dns_stale = false;
        e->dns = dns_new(e->base, e->cf->dns_servers, err, sizeof(err));
        if (e->dns == NULL)
            log_error("etrn: resolver unavailable: %s", err);
    }
    return e->dns;
}

/* etrn_connect - a bufferevent connecting to t (NULL if the socket call failed at once). */
struct bufferevent *etrn_connect(struct etrn_engine *e, const struct mx_target *t)
{
    struct bufferevent *bev = bufferevent_socket_new(e->base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct timeval tv = {ETRN_CONNECT_TIMEOUT, 0};

    if (bev == NULL)
        return NULL;
    bufferevent_set_timeouts(bev, NULL, &tv);
    if (bufferevent_socket_connect(bev, (const struct sockaddr *)&t->addr.ss, (int)t->addr.len) !=
        0) {
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}

/* etrn_renew_cb - keep our claim leases alive while runs are active. */
static void etrn_renew_cb(evutil_socket_t fd, short what, void *arg)
{
    struct etrn_engine *e = arg;
    int rc;

    (void)fd;
    (void)what;
    if (e->nruns == 0)
        return;
    rc = store_lease_renew(e->st, &e->owner, ETRN_LEASE_TTL);
    if (rc != STORE_OK)
        log_warn("etrn: renewing leases: %s", store_strerror(rc));
}

/* etrn_engine_new - on base, delivering from st with cf's settings. */
struct etrn_engine *etrn_engine_new(struct event_base *base, struct store *st,
                                    const struct conf *cf)
{
    struct etrn_engine *e = xcalloc(1, sizeof(*e));
    struct timeval tv = {ETRN_RENEW_EVERY, 0};
    char err[256];

    e->base = base;
    e->st = st;
    e->cf = cf;
    e->next_id = 1;
    store_owner_self(&e->owner);
    etrn_self_rebuild(e);
    tls_init();
    e->tls_ctx = tls_client_ctx_new(err, sizeof(err));
    if (e->tls_ctx == NULL)
        log_warn("etrn: no client TLS context (%s): deliveries without STARTTLS", err);
    e->renew_ev = event_new(base, -1, EV_PERSIST, etrn_renew_cb, e);
    event_add(e->renew_ev, &tv);
    return e;
}

/* etrn_engine_set_conf - after a reload (cf outlives the engine). */
void etrn_engine_set_conf(struct etrn_engine *e, const struct conf *cf)
{
    e->cf = cf;
    etrn_self_rebuild(e);
    /* The resolver follows dns_servers: recreated by etrn_dns() once nothing uses it. */
    e->dns_stale = true;
}

/* etrn_shutdown - stop starting runs; abort active ones (mail stays held). */
void etrn_shutdown(struct etrn_engine *e)
{
    e->shutting_down = true;
    etrn_run_abort_all(e);
    etrn_dsn_abort_all(e);
}

/* etrn_engine_free - shut down and release everything. */
void etrn_engine_free(struct etrn_engine *e)
{
    if (e == NULL)
        return;
    etrn_shutdown(e);
    while (e->rates) {
        struct etrn_rate *r = e->rates;
        e->rates = r->next;
        free(r);
    }
    while (e->lasts) {
        struct etrn_last *l = e->lasts;
        e->lasts = l->next;
        free(l);
    }
    if (e->dns)
        dns_free(e->dns);
    if (e->tls_ctx)
        tls_ctx_free(e->tls_ctx);
    event_free(e->renew_ev);
    free(e->self_names);
    free(e->self_addrs);
    free(e);
}

/* etrn_active_runs - runs in progress (for metrics and shutdown). */
size_t etrn_active_runs(const struct etrn_engine *e)
{
    return e->nruns;
}

/* etrn_rate_hit - count one ETRN of client; true when over the per-minute limit. */
static bool etrn_rate_hit(struct etrn_engine *e, const char *client)
{
    int64_t now = etrn_now();
    int limit = e->cf->etrn_rate_per_client;
    struct etrn_rate **pp = &e->rates, *r = NULL;

    if (client == NULL || limit <= 0)
        return false;
    while (*pp) { /* forget clients quiet for a minute; find this one */
        if (now - (*pp)->window >= 60) {
            struct etrn_rate *old = *pp;
            *pp = old->next;
            free(old);
            e->nrates--;
            continue;
        }
        if (strcmp((*pp)->client, client) == 0)
            r = *pp;
        pp = &(*pp)->next;
    }
    if (r == NULL) {
        if (e->nrates >= ETRN_RATE_MAX_CLIENTS)
            return true; /* table full: refuse rather than grow without bound */
        r = xcalloc(1, sizeof(*r));
        snprintf(r->client, sizeof(r->client), "%s", client);
        r->window = now;
        r->next = e->rates;
        e->rates = r;
        e->nrates++;
    }
    return ++r->count > limit;
}

/* etrn_interval_blocked - the domain's last run started less than etrn_domain_interval ago. */
static bool etrn_interval_blocked(struct etrn_engine *e, const char *domain, bool record)
{
    int64_t now = etrn_now();
    struct etrn_last *l;

    for (l = e->lasts; l; l = l->next)
        if (strcmp(l->domain, domain) == 0)
            break;
    if (!record)
        return l && e->cf->etrn_domain_interval > 0 &&
               now - l->started < e->cf->etrn_domain_interval;
    if (l == NULL) {
        l = xcalloc(1, sizeof(*l));
        snprintf(l->domain, sizeof(l->domain), "%s", domain);
        l->next = e->lasts;
        e->lasts = l;
    }
    l->started = now;
    return false;
}

/* etrn_match - domains a kick applies to, collected by store_domain_iter. */
struct etrn_match {
    const char *name; /* node, lower case */
    size_t name_len;
    bool subdomains;
    const char *site; /* NULL = any; for "#site" every domain of site */
    bool whole_site;
    struct store_domain *doms;
    size_t n, cap;
};

/* etrn_match_cb - keep d when it is the node, a subdomain of it, or on the site. */
static int etrn_match_cb(const struct store_domain *d, void *arg)
{
    struct etrn_match *m = arg;
    size_t dl = strlen(d->name);
    bool hit;

    if (m->site && strcmp(d->site, m->site) != 0)
        return 0;
    if (m->whole_site)
        hit = true;
    else
        hit = strcmp(d->name, m->name) == 0 ||
              (m->subdomains && dl > m->name_len + 1 && d->name[dl - m->name_len - 1] == '.' &&
               strcmp(d->name + dl - m->name_len, m->name) == 0);
    if (!hit)
        return 0;
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 8;
        m->doms = xrealloc(m->doms, m->cap * sizeof(*m->doms));
    }
    m->doms[m->n++] = *d;
    return 0;
}

/* etrn_norm - lower-case node without a trailing dot; false if empty or too long. */
static bool etrn_norm(const char *in, char *out, size_t outsz)
{
    size_t n = strlen(in);

    if (n > 0 && in[n - 1] == '.')
        n--;
    if (n == 0 || n >= outsz)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[n] = '\0';
    return true;
}

/* etrn_kick_domains - apply interval/running/pending checks and start runs. */
static int etrn_kick_domains(struct etrn_engine *e, const struct etrn_match *m, size_t *pending)
{
    size_t total = 0, started = 0, running = 0, blocked = 0, enabled = 0;

    for (size_t i = 0; i < m->n; i++) {
        const struct store_domain *d = &m->doms[i];
        struct store_counts c;
        int rc;

        if (!d->etrn_enabled)
            continue;
        enabled++;
        if (etrn_run_active(e, d->name)) {
            running++;
            continue;
        }
        if (etrn_interval_blocked(e, d->name, false)) {
            blocked++;
            continue;
        }
        rc = store_domain_counts(e->st, d->name, &c);
        if (rc != STORE_OK) {
            log_error("etrn: counting mail of %s: %s", d->name, store_strerror(rc));
            return ETRN_ERROR;
        }
        if (c.messages == 0)
            continue;
        total += c.messages;
        etrn_interval_blocked(e, d->name, true);
        etrn_run_start(e, d);
        started++;
    }
    if (pending)
        *pending = total;
    if (enabled == 0)
        return ETRN_DISABLED;
    if (started > 0)
        return ETRN_STARTED;
    if (running > 0)
        return ETRN_RUNNING;
    if (blocked > 0)
        return ETRN_RATE;
    return ETRN_NOTHING;
}

/* etrn_kick_match - the common path of etrn_kick and etrn_kick_site. */
static int etrn_kick_match(struct etrn_engine *e, struct etrn_match *m, const char *client,
                           size_t *pending, const char *what)
{
    char shown[LOG_PEER_MAX + 1];
    size_t total = 0;
    int rc;

    if (pending)
        *pending = 0;
    if (e->shutting_down)
        return ETRN_ERROR;
    if (etrn_rate_hit(e, client)) {
        log_warn("etrn: rate limit reached for client %s",
                 log_printable(shown, sizeof(shown), client, strlen(client)));
        return ETRN_RATE;
    }
    if (!m->whole_site) {
        struct store_domain d;
        rc = store_domain_get(e->st, m->name, &d);
        if (rc == STORE_OK) {
            etrn_match_cb(&d, m); /* checks the site */
        } else if (rc != STORE_NOTFOUND) {
            log_error("etrn: looking up %s: %s", m->name, store_strerror(rc));
            return ETRN_ERROR;
        }
    }
    if (m->whole_site || m->subdomains) {
        struct etrn_match sub = *m;
        sub.doms = NULL;
        sub.n = sub.cap = 0;
        rc = store_domain_iter(e->st, etrn_match_cb, &sub);
        if (rc != STORE_OK) {
            free(sub.doms);
            log_error("etrn: listing domains: %s", store_strerror(rc));
            return ETRN_ERROR;
        }
        /* The exact name was collected above: take only proper subdomains. */
        for (size_t i = 0; i < sub.n; i++)
            if (m->whole_site || strcmp(sub.doms[i].name, m->name) != 0)
                etrn_match_cb(&sub.doms[i], m);
        free(sub.doms);
    }
    if (m->n == 0) {
        log_info("etrn: %s: not a domain held here",
                 log_printable(shown, sizeof(shown), what, strlen(what)));
        return ETRN_UNKNOWN;
    }
    rc = etrn_kick_domains(e, m, &total);
    if (pending)
        *pending = total;
    log_info("etrn: %s%s%s: %s (%zu pending)", m->whole_site ? "#" : "", m->subdomains ? "@" : "",
             log_printable(shown, sizeof(shown), what, strlen(what)), etrn_status_name(rc), total);
    return rc;
}

/* etrn_kick - start a run for domain (with subdomains for "@domain"). */
int etrn_kick(struct etrn_engine *e, const char *domain, bool subdomains, const char *site,
              const char *client, size_t *pending)
{
    char name[STORE_DOMAIN_MAX];
    struct etrn_match m = {0};
    int rc;

    if (pending)
        *pending = 0;
    if (domain == NULL || !etrn_norm(domain, name, sizeof(name)))
        return ETRN_UNKNOWN;
    m.name = name;
    m.name_len = strlen(name);
    m.subdomains = subdomains;
    m.site = site;
    rc = etrn_kick_match(e, &m, client, pending, name);
    free(m.doms);
    return rc;
}

/* etrn_kick_site - "ETRN #site": every held domain of site. */
int etrn_kick_site(struct etrn_engine *e, const char *site, const char *client, size_t *pending)
{
    struct etrn_match m = {0};
    int rc;

    if (pending)
        *pending = 0;
    if (site == NULL || site[0] == '\0')
        return ETRN_UNKNOWN;
    m.name = "";
    m.site = site;
    m.whole_site = true;
    rc = etrn_kick_match(e, &m, client, pending, site);
    free(m.doms);
    return rc;
}
