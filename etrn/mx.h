/*
 * mx.h - choosing where a held domain's mail goes (RFC 5321 5.1).
 *
 * Pure parts (table-tested): mx_route_parse() reads a per-domain static
 * route, mx_select() orders MX records (preference, equal preferences
 * shuffled), recognises a null MX and applies the relay rule (drop our
 * own names and everything at or above our best preference).
 *
 * mx_resolve() is the asynchronous whole: a route overrides DNS ("[addr]"
 * is used as is, "host" gets A/AAAA only); otherwise MX, or the implicit
 * MX (the domain's own A/AAAA) when there are no MX records, then the
 * addresses of every MX host, pruning hosts that resolve to our own
 * listen addresses.  The callback runs once, on the loop, never inside
 * mx_resolve(); mx_cancel() suppresses it.
 */
#ifndef HM_MX_H
#define HM_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns.h"

enum mx_outcome {
    MX_OK = 0, /* targets to try, best first */
    MX_HOLD,   /* we are the best MX (dial-up domain): keep the mail held */
    MX_NULLMX, /* RFC 7505: fail with 556 5.1.10, no A fallback */
    MX_NONAME, /* the domain does not exist (NXDOMAIN) */
    MX_TEMP,   /* DNS trouble or no usable address: try later */
};

const char *mx_outcome_name(int outcome);

/* mx_self - what counts as "us" for the relay rule. */
struct mx_self {
    const char *const *names; /* our host names (every site's hostname) */
    size_t nnames;
    const char *const *addrs; /* our listen addresses, as text */
    size_t naddrs;
};

/* mx_target - one address to connect to, in order. */
struct mx_target {
    char host[DNS_NAME_MAX]; /* MX host name (or the literal) */
    unsigned pref;
    struct dns_addr_rec addr; /* port set */
    uint16_t port;
};

/* mx_route_parse - "[addr]:port", "[addr]", "host:port", "host"; false if malformed. */
bool mx_route_parse(const char *route, char *host, size_t hostsz, uint16_t *port, bool *literal);

/*
 * mx_select - order recs in place and prune them; *n is updated.  status
 * is the MX lookup's dns_status.  rnd (may be NULL = rand) shuffles equal
 * preferences.  Returns MX_OK (recs[0..*n) remain), MX_HOLD, MX_NULLMX.
 */
int mx_select(struct dns_mx_rec *recs, size_t *n, int status, const struct mx_self *self,
              unsigned (*rnd)(void *), void *rnd_arg);

/* mx_prune_pref - drop every record with preference >= pref; returns the new count. */
size_t mx_prune_pref(struct dns_mx_rec *recs, size_t n, unsigned pref);

struct mx_query;
typedef void (*mx_done_fn)(void *arg, int outcome, const struct mx_target *t, size_t n,
                           const char *why);

/* mx_resolve - targets for domain (route "" = DNS); port used unless the route has one. */
struct mx_query *mx_resolve(struct dns_resolver *r, const char *domain, const char *route,
                            uint16_t port, const struct mx_self *self, mx_done_fn cb, void *arg);
/* mx_cancel - stop; the callback will not run.  q is freed. */
void mx_cancel(struct mx_query *q);

#endif
