/*
 * conf.h - holdmx.conf: the one configuration file of every program.
 *
 * The file is INI (parsed with inih).  Global keys come first, then one
 * [site NAME] section per site; the site "default" always exists (it is
 * created with built-in defaults when the file has no such section).
 * See contrib/holdmx.conf and holdmx.conf(5) for every key.
 *
 * conf_load() collects every problem instead of stopping at the first one:
 * unknown keys, bad values (ports, durations such as "7d", sizes such as
 * "50M"), certificate files that do not exist, and two sites listening on
 * the same address:port.  Each problem is one line "FILE:LINE: message
 * (hint: ...)" written to the error stream.  Relative paths in the file are
 * taken relative to the directory of the file.
 */
#ifndef HM_CONF_H
#define HM_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONF_NAME_MAX 64    /* site names */
#define CONF_HOST_MAX 256   /* host names */

/* conf_addr - one "host:port", "[ipv6]:port" or "[host]:port" endpoint. */
struct conf_addr {
    char host[CONF_HOST_MAX]; /* literal address or name, no brackets */
    uint16_t port;
    bool bracketed;           /* "[...]": do not look up MX (routes) */
    int line;                 /* where it was configured (0 = default) */
};

/* conf_auth_plain - when PLAIN/LOGIN may be offered without TLS. */
enum conf_plain_policy {
    CONF_PLAIN_TLS_ONLY = 0, /* default, RFC 4954 */
    CONF_PLAIN_LOOPBACK,     /* also on loopback connections (tests) */
};

/* conf_etrn_reply - RFC 1985 reply policy (protocols.md 1.4 and 6.1). */
enum conf_etrn_reply {
    CONF_ETRN_REPLY_250 = 0, /* default: always "250 queuing started" */
    CONF_ETRN_REPLY_COUNT,   /* 251 when nothing waits, 253 with count */
};

struct conf_site {
    char name[CONF_NAME_MAX];
    char hostname[CONF_HOST_MAX];
    struct conf_addr *smtp_listen;
    int n_smtp_listen;
    struct conf_addr *odmr_listen;
    int n_odmr_listen;
    char *tls_cert;            /* NULL: no STARTTLS on this site */
    char *tls_key;
    enum conf_plain_policy auth_plain;
    uint64_t max_queue;        /* messages the site may hold; 0 = no limit */
    uint64_t max_queue_bytes;  /* bytes the site may hold; 0 = no limit */
    int line;                  /* line of the [site] header (0 = built in) */
};

struct conf {
    char *path;                /* the file that was read */
    char *state_dir;           /* LMDB environment, control socket, spool */
    char *sasl_app;            /* Cyrus SASL application name */
    char *sasl_conf_dir;       /* where <sasl_app>.conf lives; NULL = libsasl2 default */
    char *sasl_realm;          /* realm of sasldb entries (default "holdmx") */
    struct conf_addr bounce_relay; /* DSNs and delay warnings go here */
    char *dns_servers;         /* "ip:port,..." for c-ares; NULL = system */
    uint16_t delivery_port;    /* port for ETRN deliveries (25) */
    struct conf_addr metrics_listen; /* port 0 = disabled */
    bool metrics_enabled;
    int64_t hold_time;         /* seconds; default for domains (7d) */
    int64_t delay_warning;     /* seconds; 0 = never (1d) */
    uint64_t max_message_size; /* bytes (50 MiB) */
    uint64_t map_size;         /* initial LMDB map size (64M) */
    uint64_t map_size_max;     /* LMDB map never grows past this (8G) */
    int max_connections;       /* simultaneous SMTP/ODMR sessions (200) */
    int max_connections_per_ip;/* per client address (20) */
    int max_recipients;        /* per message (1000) */
    int max_errors;            /* junk/error commands before 421 (10) */
    int64_t smtp_timeout;      /* server idle timeout, seconds (300) */
    int64_t data_timeout;      /* per DATA block, seconds (180) */
    int64_t atrn_total_timeout;/* whole reversed session limit (3600) */
    enum conf_etrn_reply etrn_reply;
    int etrn_rate_per_client;  /* ETRNs per client per minute (30) */
    int64_t etrn_domain_interval; /* min seconds between runs of one domain (0) */
    int delivery_concurrency;  /* connections per destination (4) */
    char *turnd_path;          /* turnd binary queued starts; NULL = next to queued */
    bool start_turnd;          /* queued supervises turnd (yes) */
    struct conf_site *sites;
    int nsites;
};

/*
 * conf_load - read and check FILE into *cf.  Every problem is written to
 * errs (one line each).  Returns the number of problems: 0 = valid.  On
 * success *cf owns its memory; release it with conf_free() either way.
 */
int conf_load(const char *file, struct conf *cf, FILE *errs);

/* conf_free - release everything conf_load() allocated. */
void conf_free(struct conf *cf);

/* conf_site_find - the site called name, or NULL. */
const struct conf_site *conf_site_find(const struct conf *cf, const char *name);

/* conf_parse_duration - "90", "90s", "15m", "12h", "7d", "2w" -> seconds; -1 if bad. */
int64_t conf_parse_duration(const char *s);
/* conf_parse_size - "1024", "64k", "50M", "8G" -> bytes; returns false if bad. */
bool conf_parse_size(const char *s, uint64_t *out);
/* conf_parse_addr - "host:port", "[host]:port", "[v6]:port"; false if bad. */
bool conf_parse_addr(const char *s, struct conf_addr *out);
/* conf_format_addr - the inverse, for messages and logs. */
const char *conf_format_addr(const struct conf_addr *a, char *buf, size_t len);

#endif
