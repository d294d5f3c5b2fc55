/*
 * etrn_int.h - internals shared by etrn_engine.c (policy, kicks),
 * etrn_run.c (one domain's queue run) and etrn_qmgr.c (the queue
 * manager step and DSN deliveries).  Not for other directories.
 */
#ifndef HM_ETRN_INT_H
#define HM_ETRN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "dlv.h"
#include "dns.h"
#include "etrn.h"
#include "mx.h"
#include "store.h"

#define ETRN_LEASE_TTL        600 /* seconds a claim lease lasts without renewal */
#define ETRN_RENEW_EVERY      120 /* renewal period while runs are active */
#define ETRN_CONNECT_TIMEOUT  30  /* seconds per connection attempt */
#define ETRN_RATE_MAX_CLIENTS 4096
#define ETRN_DSN_MAX_INFLIGHT 4
#define ETRN_NOTES_PER_TICK   16
#define ETRN_CLAIM_BATCH      500 /* messages claimed per round of a run (bounds memory) */

struct etrn_run;
struct etrn_dsn;

/* etrn_rate - ETRNs of one client in the current minute. */
struct etrn_rate {
    char client[64];
    int64_t window;
    int count;
    struct etrn_rate *next;
};

/* etrn_last - when a domain's last run started (etrn_domain_interval). */
struct etrn_last {
    char domain[STORE_DOMAIN_MAX];
    int64_t started;
    struct etrn_last *next;
};

struct etrn_engine {
    struct event_base *base;
    struct store *st;
    const struct conf *cf;
    struct dns_resolver *dns;
    struct ssl_ctx_st *tls_ctx;
    struct store_owner owner;
    struct etrn_run *runs;
    size_t nruns;
    struct etrn_rate *rates;
    size_t nrates;
    struct etrn_last *lasts;
    struct etrn_dsn *dsns;
    size_t ndsns;
    struct event *renew_ev;
    bool shutting_down;
    bool dns_stale; /* dns_servers may have changed: recreate the resolver when idle */
    uint64_t next_id;
    /* self names and addresses for the relay rule, rebuilt from cf */
    const char **self_names;
    size_t nself_names;
    const char **self_addrs;
    size_t nself_addrs;
};

/* etrn_run_start - begin an asynchronous run for one held domain. */
void etrn_run_start(struct etrn_engine *e, const struct store_domain *d);
/* etrn_run_active - a run for domain is in progress. */
bool etrn_run_active(const struct etrn_engine *e, const char *domain);
/* etrn_run_abort_all - abort every run (shutdown); outcomes deferred, leases released. */
void etrn_run_abort_all(struct etrn_engine *e);

/* etrn_dsn_abort_all - stop DSN deliveries in flight (notes stay queued). */
void etrn_dsn_abort_all(struct etrn_engine *e);

/* etrn_hostname - our name for site (its hostname; else the first site's; else "localhost"). */
const char *etrn_hostname(const struct etrn_engine *e, const char *site);
/* etrn_dns - the resolver, created on first use; NULL if c-ares failed. */
struct dns_resolver *etrn_dns(struct etrn_engine *e);
/* etrn_self - the relay-rule identity from the configuration. */
void etrn_self(const struct etrn_engine *e, struct mx_self *self);
/* etrn_connect - a bufferevent connecting to t (NULL if the socket call failed at once). */
struct bufferevent *etrn_connect(struct etrn_engine *e, const struct mx_target *t);
/* etrn_now - the wall clock in seconds. */
int64_t etrn_now(void);

#endif
