/*
 * dns.h - the asynchronous resolver: c-ares on the daemon's event_base.
 *
 * Only DNS is consulted (never /etc/hosts, no search list).  Results are
 * delivery-level outcomes, not c-ares codes: DNS_OK, DNS_NONAME (NXDOMAIN),
 * DNS_NODATA (the name exists without such records), DNS_NULLMX (RFC 7505)
 * and DNS_TEMP (timeout, SERVFAIL, REFUSED: try again later).
 *
 * Every request gets an id.  Its callback runs on the loop thread, exactly
 * once, never from inside dns_mx()/dns_addr(), unless the request was
 * cancelled with dns_cancel() first (then it never runs).  dns_free()
 * drops pending requests without calling them.  No c-ares type leaks out.
 */
#ifndef HM_DNS_H
#define HM_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns_resolver;

enum dns_status {
    DNS_OK = 0,
    DNS_NONAME, /* NXDOMAIN: permanent */
    DNS_NODATA, /* no records of that type */
    DNS_NULLMX, /* "MX 0 ." */
    DNS_TEMP,   /* try later */
};

#define DNS_NAME_MAX 256

/* dns_mx_rec - one MX record, in wire order (not sorted). */
struct dns_mx_rec {
    unsigned pref;
    char host[DNS_NAME_MAX]; /* "" for the root (null MX) */
};

/* dns_addr_rec - one address of a host. */
struct dns_addr_rec {
    struct sockaddr_storage ss; /* port 0 */
    socklen_t len;
    char text[64]; /* "127.0.0.3", "::1" */
};

typedef void (*dns_mx_fn)(void *arg, int status, const struct dns_mx_rec *mx, size_t n);
typedef void (*dns_addr_fn)(void *arg, int status, const struct dns_addr_rec *a, size_t n);

const char *dns_status_name(int status);

/*
 * dns_new - a resolver on base.  servers: "ip:port,..." (c-ares csv) or
 * NULL for the system's resolv.conf.  NULL with a reason in err on failure.
 */
struct dns_resolver *dns_new(struct event_base *base, const char *servers, char *err,
                             size_t errlen);
void dns_free(struct dns_resolver *r);
/* dns_base - the event_base the resolver runs on. */
struct event_base *dns_base(const struct dns_resolver *r);

/* dns_mx - MX records of domain; returns the request id (never 0). */
uint64_t dns_mx(struct dns_resolver *r, const char *domain, dns_mx_fn cb, void *arg);
/* dns_addr - A and AAAA records of host (a numeric address is returned as is). */
uint64_t dns_addr(struct dns_resolver *r, const char *host, dns_addr_fn cb, void *arg);
/* dns_cancel - the request's callback will not be called. */
void dns_cancel(struct dns_resolver *r, uint64_t id);

#endif
