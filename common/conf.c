/*
 * conf.c - load and check holdmx.conf (see conf.h and holdmx.conf(5)).
 *
 * inih drives the parse, but through our own line reader (ini_parse_stream)
 * because Debian's libinih is built without INI_HANDLER_LINENO, with a
 * 200-byte line buffer and without a handler call for a section header that
 * has no keys.  The reader therefore counts lines, strips "; comment" tails
 * itself (whatever ini_allow_inline_comments says), recognises section
 * headers (so an empty [site x] still exists), reports lines that are not
 * "key = value", and hands long values to the handler on the side.
 *
 * Keys are described by two tables (global and per site) of {name, type,
 * offset, limits}; one setter per type converts and range-checks a value.
 * After the file is read, conf_check_*() look at the whole: TLS files,
 * hostnames, listeners used twice, map sizes.  Every problem is one line
 * "FILE:LINE: message (hint: ...)"; nothing stops at the first problem.
 *
 * Ownership: everything hanging off struct conf is malloc'd here and freed
 * by conf_free(), which is safe on a half-filled or zeroed struct.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "log.h"
#include "xalloc.h"

#define CONF_LINE_MAX  4096 /* longest physical line we accept */
#define CONF_SHOWN_MAX 64   /* longest piece of the file quoted in a message */

/* conf_type - how a key's value is converted and where it is stored. */
enum conf_type {
    CONF_T_PATH,       /* char *, relative to the file's directory */
    CONF_T_WORD,       /* char *, no blanks, no '@' (realm, app name) */
    CONF_T_SERVERS,    /* char *, "ip[:port],..." for c-ares */
    CONF_T_ADDR,       /* struct conf_addr */
    CONF_T_METRICS,    /* struct conf_addr + metrics_enabled; "" = off */
    CONF_T_PORT,       /* uint16_t */
    CONF_T_DURATION,   /* int64_t seconds */
    CONF_T_SIZE,       /* uint64_t bytes */
    CONF_T_COUNT,      /* uint64_t, plain number */
    CONF_T_INT,        /* int */
    CONF_T_BOOL,       /* bool */
    CONF_T_ETRN_REPLY, /* enum conf_etrn_reply */
    CONF_T_PLAIN,      /* enum conf_plain_policy */
    CONF_T_HOSTNAME,   /* char[CONF_HOST_MAX] */
    CONF_T_ADDRLIST,   /* struct conf_addr * + count (next field) */
};

/* conf_key - one configuration key. */
struct conf_key {
    const char *name;
    enum conf_type type;
    size_t off;  /* offset in struct conf or struct conf_site */
    size_t noff; /* CONF_T_ADDRLIST: offset of the count */
    int64_t min, max;
    const char *hint; /* what a good value looks like */
};

#define G(f) offsetof(struct conf, f)
#define S(f) offsetof(struct conf_site, f)

static const struct conf_key conf_global_keys[] = {
    {"state_dir", CONF_T_PATH, G(state_dir), 0, 0, 0, "a directory, e.g. /var/lib/holdmx"},
    {"sasl_app", CONF_T_WORD, G(sasl_app), 0, 0, 0, "a name such as holdmx"},
    {"sasl_conf_dir", CONF_T_PATH, G(sasl_conf_dir), 0, 0, 0, "the directory of <sasl_app>.conf"},
    {"sasl_realm", CONF_T_WORD, G(sasl_realm), 0, 0, 0, "a word such as holdmx"},
    {"bounce_relay", CONF_T_ADDR, G(bounce_relay), 0, 0, 0, "e.g. [127.0.0.1]:25"},
    {"dns_servers", CONF_T_SERVERS, G(dns_servers), 0, 0, 0, "e.g. 127.0.0.1:5353,[::1]:53"},
    {"delivery_port", CONF_T_PORT, G(delivery_port), 0, 1, 65535, "a port 1-65535"},
    {"metrics_listen", CONF_T_METRICS, G(metrics_listen), 0, 0, 0, "e.g. 127.0.0.1:9325"},
    {"hold_time", CONF_T_DURATION, G(hold_time), 0, 1, INT64_MAX, "e.g. 7d, 12h, 90m"},
    {"delay_warning", CONF_T_DURATION, G(delay_warning), 0, 0, INT64_MAX, "e.g. 1d, or 0 = never"},
    {"max_message_size", CONF_T_SIZE, G(max_message_size), 0, 1024, INT64_MAX, "e.g. 50M"},
    {"map_size", CONF_T_SIZE, G(map_size), 0, 1048576, INT64_MAX, "e.g. 64M (at least 1M)"},
    {"map_size_max", CONF_T_SIZE, G(map_size_max), 0, 1048576, INT64_MAX, "e.g. 8G"},
    {"max_connections", CONF_T_INT, G(max_connections), 0, 1, 1000000, "a number 1-1000000"},
    {"max_connections_per_ip", CONF_T_INT, G(max_connections_per_ip), 0, 1, 1000000,
     "a number 1-1000000"},
    {"max_recipients", CONF_T_INT, G(max_recipients), 0, 1, 1000000, "a number 1-1000000"},
    {"max_errors", CONF_T_INT, G(max_errors), 0, 1, 1000, "a number 1-1000"},
    {"smtp_timeout", CONF_T_DURATION, G(smtp_timeout), 0, 1, 86400, "e.g. 300 or 5m (max 1d)"},
    {"data_timeout", CONF_T_DURATION, G(data_timeout), 0, 1, 86400, "e.g. 180 or 3m (max 1d)"},
    {"atrn_total_timeout", CONF_T_DURATION, G(atrn_total_timeout), 0, 1, 7 * 86400,
     "e.g. 1h (max 7d)"},
    {"etrn_reply", CONF_T_ETRN_REPLY, G(etrn_reply), 0, 0, 0, "250 or count"},
    {"etrn_rate_per_client", CONF_T_INT, G(etrn_rate_per_client), 0, 0, 1000000,
     "ETRNs per minute, 0 = no limit"},
    {"etrn_domain_interval", CONF_T_DURATION, G(etrn_domain_interval), 0, 0, INT64_MAX,
     "e.g. 0 or 5m"},
    {"delivery_concurrency", CONF_T_INT, G(delivery_concurrency), 0, 1, 1000, "a number 1-1000"},
    {"turnd_path", CONF_T_PATH, G(turnd_path), 0, 0, 0, "the turnd program"},
    {"start_turnd", CONF_T_BOOL, G(start_turnd), 0, 0, 0, "yes or no"},
};

static const struct conf_key conf_site_keys[] = {
    {"hostname", CONF_T_HOSTNAME, S(hostname), 0, 0, 0, "a host name such as mx.isp.example"},
    {"smtp_listen", CONF_T_ADDRLIST, S(smtp_listen), S(n_smtp_listen), 1, 65535,
     "host:port or [v6]:port, comma-separated"},
    {"odmr_listen", CONF_T_ADDRLIST, S(odmr_listen), S(n_odmr_listen), 1, 65535,
     "host:port or [v6]:port, comma-separated"},
    {"tls_cert", CONF_T_PATH, S(tls_cert), 0, 0, 0, "a PEM certificate file"},
    {"tls_key", CONF_T_PATH, S(tls_key), 0, 0, 0, "a PEM private key file"},
    {"auth_plain", CONF_T_PLAIN, S(auth_plain), 0, 0, 0, "tls or loopback"},
    {"max_queue", CONF_T_COUNT, S(max_queue), 0, 0, INT64_MAX, "messages, 0 = no limit"},
    {"max_queue_bytes", CONF_T_SIZE, S(max_queue_bytes), 0, 0, INT64_MAX, "e.g. 10G, 0 = no limit"},
};

#define CONF_NGLOBAL (sizeof(conf_global_keys) / sizeof(conf_global_keys[0]))
#define CONF_NSITE   (sizeof(conf_site_keys) / sizeof(conf_site_keys[0]))

/* conf_state - which part of the file the reader is in. */
enum conf_state {
    CONF_IN_GLOBAL = 0, /* before the first section */
    CONF_IN_SITE,       /* in a [site NAME] section: p->site is its index */
    CONF_IN_BAD,        /* in a section that was reported: its keys are ignored */
};

/* conf_site_lines - where each key of one site was set (0 = not set). */
struct conf_site_lines {
    int line[CONF_NSITE];
};

/* conf_parse - the state of one conf_load(). */
struct conf_parse {
    struct conf *cf;
    FILE *errs;
    const char *file; /* as given, for messages */
    char *dir;        /* absolute directory of the file */
    FILE *fp;
    int lineno;
    int nerr;
    enum conf_state state;  /* written by conf_enter_state() only */
    int site;               /* CONF_IN_SITE: index in cf->sites, else -1 */
    bool default_from_file; /* [site default] was in the file */
    int global_line[CONF_NGLOBAL];
    struct conf_site_lines *site_lines; /* parallel to cf->sites */
    const char *long_value;             /* value too long for inih's buffer */
    char *buf;                          /* the current physical line */
};

/* conf_err - report one problem at line (0 = no line) and count it. */
static void conf_err(struct conf_parse *p, int line, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conf_err(struct conf_parse *p, int line, const char *hint, const char *fmt, ...)
{
    va_list ap;

    p->nerr++;
    if (p->errs == NULL)
        return;
    if (line > 0)
        fprintf(p->errs, "%s:%d: ", p->file, line);
    else
        fprintf(p->errs, "%s: ", p->file);
    va_start(ap, fmt);
    vfprintf(p->errs, fmt, ap);
    va_end(ap);
    if (hint != NULL)
        fprintf(p->errs, " (hint: %s)", hint);
    fputc('\n', p->errs);
}

/* conf_shown - text from the file made safe and short for a message. */
static char *conf_shown(char out[CONF_SHOWN_MAX], const char *s)
{
    size_t len = strlen(s);

    log_printable(out, CONF_SHOWN_MAX - 3, s, len);
    if (len > CONF_SHOWN_MAX - 4)
        strcat(out, "...");
    return out;
}

/* ------------------------------------------------------------------ */
/* Value parsers (public)                                             */

/* conf_parse_u64 - a plain decimal number without sign; false on overflow or junk. */
static bool conf_parse_u64(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;

    if (!isdigit((unsigned char)*s))
        return false;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *end = s;
    *out = v;
    return true;
}

/* conf_parse_duration - "90", "90s", "15m", "12h", "7d", "2w" -> seconds; -1 if bad. */
int64_t conf_parse_duration(const char *s)
{
    uint64_t v, mul = 1;
    const char *end;

    if (s == NULL || !conf_parse_u64(s, &end, &v))
        return -1;
    switch (*end) {
    case '\0':
    case 's':
        break;
    case 'm':
        mul = 60;
        break;
    case 'h':
        mul = 3600;
        break;
    case 'd':
        mul = 86400;
        break;
    case 'w':
        mul = 7 * 86400;
        break;
    default:
        return -1;
    }
    if (*end != '\0' && end[1] != '\0')
        return -1;
    if (v > (uint64_t)INT64_MAX / mul)
        return -1;
    return (int64_t)(v * mul);
}

/* conf_parse_size - "1024", "64k", "50M", "8G", "1T" (powers of 1024) -> bytes. */
bool conf_parse_size(const char *s, uint64_t *out)
{
    uint64_t v, mul = 1;
    const char *end;

    if (s == NULL || !conf_parse_u64(s, &end, &v))
        return false;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mul = 1ull << 10;
        break;
    case 'm':
    case 'M':
        mul = 1ull << 20;
        break;
    case 'g':
    case 'G':
        mul = 1ull << 30;
        break;
    case 't':
    case 'T':
        mul = 1ull << 40;
        break;
    default:
        return false;
    }
    if (*end != '\0' && end[1] != '\0')
        return false;
    if (v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

/* conf_valid_hostname - LDH labels of 1-63 characters, at most 253 in all. */
static bool conf_valid_hostname(const char *h)
{
    size_t len = strlen(h), label = 0;

    if (len == 0 || len > 253 || h[0] == '.' || h[0] == '-')
        return false;
    for (const char *c = h; *c != '\0'; c++) {
        if (*c == '.') {
            if (label == 0 || c[-1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
            return false;
        if (++label > 63)
            return false;
    }
    return h[len - 1] != '-';
}

/* conf_valid_host - an IPv4/IPv6 literal or a host name. */
static bool conf_valid_host(const char *h, bool bracketed)
{
    unsigned char bin[16];

    if (strchr(h, ':') != NULL)
        return bracketed && inet_pton(AF_INET6, h, bin) == 1;
    if (inet_pton(AF_INET, h, bin) == 1)
        return true;
    return conf_valid_hostname(h);
}

/* conf_parse_port - "1".."65535", digits only. */
static bool conf_parse_port(const char *s, uint16_t *out)
{
    uint64_t v;
    const char *end;

    if (!conf_parse_u64(s, &end, &v) || *end != '\0' || v < 1 || v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* conf_parse_addr - "host:port", "[host]:port", "[v6]:port"; false if bad. */
bool conf_parse_addr(const char *s, struct conf_addr *out)
{
    struct conf_addr a;
    const char *colon, *hs;
    size_t hl;

    if (s == NULL)
        return false;
    memset(&a, 0, sizeof(a));
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return false;
        hs = s + 1;
        hl = (size_t)(close - hs);
        colon = close + 1;
        a.bracketed = true;
    } else {
        colon = strchr(s, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL)
            return false;
        hs = s;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof(a.host))
        return false;
    memcpy(a.host, hs, hl);
    a.host[hl] = '\0';
    if (!conf_valid_host(a.host, a.bracketed) || !conf_parse_port(colon + 1, &a.port))
        return false;
    *out = a;
    return true;
}

/* conf_format_addr - the inverse of conf_parse_addr, for messages and logs. */
const char *conf_format_addr(const struct conf_addr *a, char *buf, size_t len)
{
    if (a->bracketed || strchr(a->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%u", a->host, (unsigned)a->port);
    else
        snprintf(buf, len, "%s:%u", a->host, (unsigned)a->port);
    return buf;
}

/* ------------------------------------------------------------------ */
/* Setters: one per value type                                        */

/* conf_path - value resolved against the configuration file's directory (malloc'd). */
static char *conf_path(const struct conf_parse *p, const char *v)
{
    if (v[0] == '/' || p->dir == NULL)
        return xstrdup(v);
    return xasprintf("%s/%s", p->dir, v);
}

/* conf_set_string - replace a malloc'd string field. */
static void conf_set_string(char **field, char *v)
{
    free(*field);
    *field = v;
}

/* conf_valid_word - printable, no blanks, no '@', not empty, at most 255 bytes. */
static bool conf_valid_word(const char *v)
{
    if (*v == '\0' || strlen(v) > 255)
        return false;
    for (; *v != '\0'; v++)
        if (!isgraph((unsigned char)*v) || *v == '@')
            return false;
    return true;
}

/* conf_valid_servers - "ip[:port]" items separated by commas, c-ares style. */
static bool conf_valid_servers(const char *v)
{
    if (*v == '\0' || strlen(v) > 1024)
        return false;
    for (const char *c = v; *c != '\0'; c++)
        if (!isxdigit((unsigned char)*c) && strchr(".:[],%", *c) == NULL)
            return false;
    return strstr(v, ",,") == NULL && v[0] != ',' && v[strlen(v) - 1] != ',';
}

/* conf_set_addrlist - a comma-separated list of endpoints. */
static bool conf_set_addrlist(struct conf_parse *p, const char *v, struct conf_addr **list, int *n)
{
    char *copy = xstrdup(v), *save = NULL, *item;
    bool ok = true;

    free(*list);
    *list = NULL;
    *n = 0;
    for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        struct conf_addr a;
        while (isspace((unsigned char)*item))
            item++;
        for (char *e = item + strlen(item); e > item && isspace((unsigned char)e[-1]); e--)
            e[-1] = '\0';
        if (!conf_parse_addr(item, &a)) {
            ok = false;
            continue;
        }
        a.line = p->lineno;
        *list = xrealloc(*list, sizeof(**list) * (size_t)(*n + 1));
        (*list)[(*n)++] = a;
    }
    free(copy);
    return ok && *n > 0;
}

/* conf_bool - yes/no/true/false/on/off/1/0; -1 if none of those. */
static int conf_bool(const char *v)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* conf_set_number - the numeric types, range-checked against k->min/max. */
static bool conf_set_number(const struct conf_key *k, void *field, const char *v)
{
    uint64_t u;
    const char *end;
    int64_t d;

    switch (k->type) {
    case CONF_T_PORT:
        return conf_parse_port(v, (uint16_t *)field);
    case CONF_T_DURATION:
        d = conf_parse_duration(v);
        if (d < k->min || d > k->max)
            return false;
        *(int64_t *)field = d;
        return true;
    case CONF_T_SIZE:
        if (!conf_parse_size(v, &u) || u < (uint64_t)k->min || u > (uint64_t)k->max)
            return false;
        *(uint64_t *)field = u;
        return true;
    case CONF_T_COUNT:
    case CONF_T_INT:
        if (!conf_parse_u64(v, &end, &u) || *end != '\0' || u < (uint64_t)k->min ||
            u > (uint64_t)k->max)
            return false;
        if (k->type == CONF_T_INT)
            *(int *)field = (int)u;
        else
            *(uint64_t *)field = u;
        return true;
    default:
        return false;
    }
}

/* conf_set_enum - booleans and the two keyword types. */
static bool conf_set_enum(const struct conf_key *k, void *field, const char *v)
{
    int b;

    switch (k->type) {
    case CONF_T_BOOL:
        if ((b = conf_bool(v)) < 0)
            return false;
        *(bool *)field = b == 1;
        return true;
    case CONF_T_ETRN_REPLY:
        if (strcmp(v, "250") == 0)
            *(enum conf_etrn_reply *)field = CONF_ETRN_REPLY_250;
        else if (strcasecmp(v, "count") == 0)
            *(enum conf_etrn_reply *)field = CONF_ETRN_REPLY_COUNT;
        else
            return false;
        return true;
    case CONF_T_PLAIN:
        if (strcasecmp(v, "tls") == 0)
            *(enum conf_plain_policy *)field = CONF_PLAIN_TLS_ONLY;
        else if (strcasecmp(v, "loopback") == 0)
            *(enum conf_plain_policy *)field = CONF_PLAIN_LOOPBACK;
        else
            return false;
        return true;
    default:
        return false;
    }
}

/* conf_set_text - the string-like types. */
static bool conf_set_text(struct conf_parse *p, const struct conf_key *k, void *field,
                          const char *v)
{
    switch (k->type) {
    case CONF_T_PATH:
        if (*v == '\0' || strlen(v) > PATH_MAX)
            return false;
        conf_set_string(field, conf_path(p, v));
        return true;
    case CONF_T_WORD:
        if (!conf_valid_word(v))
            return false;
        conf_set_string(field, xstrdup(v));
        return true;
    case CONF_T_SERVERS:
        if (!conf_valid_servers(v))
            return false;
        conf_set_string(field, xstrdup(v));
        return true;
    case CONF_T_HOSTNAME:
        if (!conf_valid_hostname(v) || strlen(v) >= CONF_HOST_MAX)
            return false;
        snprintf(field, CONF_HOST_MAX, "%s", v);
        return true;
    default:
        return false;
    }
}

/* conf_set_value - convert v for key k into the field at base + k->off. */
static bool conf_set_value(struct conf_parse *p, const struct conf_key *k, void *base,
                           const char *v)
{
    void *field = (char *)base + k->off;
    struct conf_addr a;

    switch (k->type) {
    case CONF_T_ADDR:
        if (!conf_parse_addr(v, &a))
            return false;
        a.line = p->lineno;
        *(struct conf_addr *)field = a;
        return true;
    case CONF_T_METRICS:
        if (*v == '\0') {
            p->cf->metrics_enabled = false;
            return true;
        }
        if (!conf_parse_addr(v, &a))
            return false;
        a.line = p->lineno;
        *(struct conf_addr *)field = a;
        p->cf->metrics_enabled = true;
        return true;
    case CONF_T_ADDRLIST:
        return conf_set_addrlist(p, v, field, (int *)((char *)base + k->noff));
    case CONF_T_PORT:
    case CONF_T_DURATION:
    case CONF_T_SIZE:
    case CONF_T_COUNT:
    case CONF_T_INT:
        return conf_set_number(k, field, v);
    case CONF_T_BOOL:
    case CONF_T_ETRN_REPLY:
    case CONF_T_PLAIN:
        return conf_set_enum(k, field, v);
    default:
        return conf_set_text(p, k, field, v);
    }
}

/* ------------------------------------------------------------------ */
/* Sections and keys                                                  */

/* conf_default_hostname - this machine's name, or "localhost". */
static void conf_default_hostname(char *out, size_t len)
{
    char h[CONF_HOST_MAX];

    if (gethostname(h, sizeof(h)) == 0) {
        h[sizeof(h) - 1] = '\0';
        if (conf_valid_hostname(h)) {
            snprintf(out, len, "%s", h);
            return;
        }
    }
    snprintf(out, len, "localhost");
}

/* conf_site_add - append an empty site called name (line = its header). */
static int conf_site_add(struct conf_parse *p, const char *name, int line)
{
    struct conf *cf = p->cf;
    struct conf_site *s;

    cf->sites = xrealloc(cf->sites, sizeof(*cf->sites) * (size_t)(cf->nsites + 1));
    p->site_lines = xrealloc(p->site_lines, sizeof(*p->site_lines) * (size_t)(cf->nsites + 1));
    s = &cf->sites[cf->nsites];
    memset(s, 0, sizeof(*s));
    memset(&p->site_lines[cf->nsites], 0, sizeof(p->site_lines[0]));
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->line = line;
    s->auth_plain = CONF_PLAIN_TLS_ONLY;
    return cf->nsites++;
}

/* conf_enter_state - the one writer of p->state (and p->site with it). */
static void conf_enter_state(struct conf_parse *p, enum conf_state state, int site)
{
    p->state = state;
    p->site = state == CONF_IN_SITE ? site : -1;
}

/* conf_valid_site_name - letters, digits, '.', '_', '-'; shorter than CONF_NAME_MAX. */
static bool conf_valid_site_name(const char *n)
{
    size_t len = strlen(n);

    if (len == 0 || len >= CONF_NAME_MAX)
        return false;
    for (; *n != '\0'; n++)
        if (!isalnum((unsigned char)*n) && strchr("._-", *n) == NULL)
            return false;
    return true;
}

/* conf_section - a "[...]" header: open a site or report a bad section. */
static void conf_section(struct conf_parse *p, const char *sec)
{
    const char *name;
    const struct conf_site *old;
    char shown[CONF_SHOWN_MAX];

    conf_enter_state(p, CONF_IN_BAD, -1);
    if (strncmp(sec, "site", 4) != 0 || !isspace((unsigned char)sec[4])) {
        conf_err(p, p->lineno, "sections are [site NAME] only; global keys go before them",
                 "unknown section [%s]", conf_shown(shown, sec));
        return;
    }
    for (name = sec + 4; isspace((unsigned char)*name); name++)
        ;
    if (!conf_valid_site_name(name)) {
        conf_err(p, p->lineno, "use letters, digits, '.', '_' and '-', at most 63",
                 "bad site name \"%s\"", conf_shown(shown, name));
        return;
    }
    if ((old = conf_site_find(p->cf, name)) != NULL) {
        conf_err(p, p->lineno, "merge the two sections", "duplicate site \"%s\" (first on line %d)",
                 name, old->line);
        return;
    }
    if (strcmp(name, "default") == 0)
        p->default_from_file = true;
    conf_enter_state(p, CONF_IN_SITE, conf_site_add(p, name, p->lineno));
}

/* conf_key_find - the key called name in a table, or NULL. */
static const struct conf_key *conf_key_find(const struct conf_key *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

/* conf_key_line - the line where the key called name was set (0 = not set). */
static int conf_key_line(const struct conf_key *t, size_t n, const int *lines, const char *name)
{
    const struct conf_key *k = conf_key_find(t, n, name);

    return k != NULL ? lines[k - t] : 0;
}

/* conf_key_report_bad - the message for a value that did not convert. */
static void conf_key_report_bad(struct conf_parse *p, const struct conf_key *k, const char *v)
{
    char shown[CONF_SHOWN_MAX];

    conf_err(p, p->lineno, k->hint, "bad value for %s: \"%s\"", k->name, conf_shown(shown, v));
}

/* conf_handler - inih callback: one "name = value" line. */
static int conf_handler(void *user, const char *section, const char *name, const char *value)
{
    struct conf_parse *p = user;
    const struct conf_key *k;
    int *seen;
    void *base;
    char shown[CONF_SHOWN_MAX];

    (void)section; /* tracked by conf_reader, which also sees empty sections */
    if (p->long_value != NULL)
        value = p->long_value;
    if (p->state == CONF_IN_BAD)
        return 1;
    if (p->state == CONF_IN_GLOBAL) {
        k = conf_key_find(conf_global_keys, CONF_NGLOBAL, name);
        if (k == NULL && conf_key_find(conf_site_keys, CONF_NSITE, name) != NULL) {
            conf_err(p, p->lineno, "put it inside a [site NAME] section", "\"%s\" is a site key",
                     conf_shown(shown, name));
            return 1;
        }
        seen = k ? &p->global_line[k - conf_global_keys] : NULL;
        base = p->cf;
    } else {
        k = conf_key_find(conf_site_keys, CONF_NSITE, name);
        if (k == NULL && conf_key_find(conf_global_keys, CONF_NGLOBAL, name) != NULL) {
            conf_err(p, p->lineno, "global keys go before the first [site] section",
                     "\"%s\" is a global key, not a site key", conf_shown(shown, name));
            return 1;
        }
        seen = k ? &p->site_lines[p->site].line[k - conf_site_keys] : NULL;
        base = &p->cf->sites[p->site];
    }
    if (k == NULL) {
        conf_err(p, p->lineno, "see holdmx.conf(5) for the valid keys", "unknown key \"%s\"",
                 conf_shown(shown, name));
        return 1;
    }
    if (*seen != 0) {
        conf_err(p, p->lineno, "remove one of them", "duplicate key \"%s\" (first on line %d)",
                 name, *seen);
        return 1;
    }
    *seen = p->lineno;
    if (!conf_set_value(p, k, base, value))
        conf_key_report_bad(p, k, value);
    return 1;
}

/* conf_strip_comment - cut "; comment" (';' at the start or after a blank) and trailing blanks. */
static void conf_strip_comment(char *s)
{
    char *e;

    for (char *c = s; *c != '\0'; c++) {
        if ((*c == ';' || *c == '#') && (c == s || isspace((unsigned char)c[-1]))) {
            if (*c == '#' && c != s)
                continue; /* '#' is a comment only at the start of a line */
            *c = '\0';
            break;
        }
    }
    for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
        e[-1] = '\0';
}

/* conf_read_physical - the next line into p->buf without its newline; false at EOF. */
static bool conf_read_physical(struct conf_parse *p, bool *too_long)
{
    size_t n = 0;
    int c;

    *too_long = false;
    while ((c = getc(p->fp)) != EOF && c != '\n') {
        if (n + 1 < CONF_LINE_MAX)
            p->buf[n++] = (char)c;
        else
            *too_long = true;
    }
    if (c == EOF && n == 0 && !*too_long)
        return false;
    p->buf[n] = '\0';
    if (n > 0 && p->buf[n - 1] == '\r')
        p->buf[n - 1] = '\0';
    p->lineno++;
    return true;
}

/* conf_split - check a key line; returns the start of the key or NULL (reported). */
static char *conf_split(struct conf_parse *p, char *s, char **value)
{
    char *sep = strpbrk(s, "=:"), *e;

    if (sep == NULL || sep == s) {
        conf_err(p, p->lineno, "write key = value", "not a \"key = value\" line");
        return NULL;
    }
    *sep = '\0';
    for (e = sep; e > s && isspace((unsigned char)e[-1]); e--)
        e[-1] = '\0';
    for (*value = sep + 1; isspace((unsigned char)**value); (*value)++)
        ;
    return s;
}

/* conf_put_line - "key=value\n" into line; the caller checked that it fits. */
static void conf_put_line(char *line, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value);

    memcpy(line, key, kl);
    line[kl] = '=';
    memcpy(line + kl + 1, value, vl);
    line[kl + 1 + vl] = '\n';
    line[kl + 2 + vl] = '\0';
}

/* conf_line_for_inih - reduce one physical line to what inih should see in line. */
static void conf_line_for_inih(struct conf_parse *p, char *line, int num)
{
    char *s = p->buf, *key, *value;

    line[0] = '\0';
    p->long_value = NULL;
    if (p->lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
        s += 3; /* UTF-8 byte order mark */
    while (isspace((unsigned char)*s))
        s++; /* indentation is allowed; there are no continuation lines */
    conf_strip_comment(s);
    if (*s == '\0')
        return;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (close == NULL || close[1] != '\0') {
            conf_err(p, p->lineno, "write [site NAME]", "bad section header");
            conf_enter_state(p, CONF_IN_BAD, -1);
            return;
        }
        *close = '\0';
        conf_section(p, s + 1);
        return;
    }
    if ((key = conf_split(p, s, &value)) == NULL)
        return;
    if (strlen(key) + strlen(value) + 3 > (size_t)num) {
        if (strlen(key) + 4 > (size_t)num) {
            conf_err(p, p->lineno, NULL, "key too long");
            return;
        }
        p->long_value = value; /* conf_handler takes it from here */
        value = "";
    }
    conf_put_line(line, key, value);
}

/* conf_reader - inih's fgets-like reader: one cleaned line per call. */
static char *conf_reader(char *line, int num, void *stream)
{
    struct conf_parse *p = stream;
    bool too_long;

    if (num < 8 || !conf_read_physical(p, &too_long))
        return NULL;
    if (too_long) {
        conf_err(p, p->lineno, "split the value or shorten it", "line longer than %d bytes",
                 CONF_LINE_MAX - 1);
        snprintf(line, (size_t)num, "\n");
        return line;
    }
    conf_line_for_inih(p, line, num);
    if (line[0] == '\0')
        snprintf(line, (size_t)num, "\n");
    return line;
}

/* ------------------------------------------------------------------ */
/* Whole-file checks                                                  */

/* conf_is_wildcard - an address that listens on every interface. */
static bool conf_is_wildcard(const char *h)
{
    return strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "*") == 0;
}

/* conf_addr_clash - would two listeners take the same address and port? */
static bool conf_addr_clash(const struct conf_addr *a, const struct conf_addr *b)
{
    bool v6a = strchr(a->host, ':') != NULL, v6b = strchr(b->host, ':') != NULL;

    if (a->port != b->port)
        return false;
    if (strcasecmp(a->host, b->host) == 0)
        return true;
    return v6a == v6b && (conf_is_wildcard(a->host) || conf_is_wildcard(b->host));
}

/* conf_listener - one listener in the flattened list used by conf_check_listeners. */
struct conf_listener {
    const struct conf_site *site;
    const char *key;
    const struct conf_addr *addr;
};

/* conf_listeners - every listener of every site, in configuration order (malloc'd). */
static struct conf_listener *conf_listeners(const struct conf *cf, int *n)
{
    struct conf_listener *l = NULL;

    *n = 0;
    for (int k = 0; k < 2 * cf->nsites; k++) {
        /* built-in sites first: a clash is reported on the file's line */
        const struct conf_site *s = &cf->sites[k % cf->nsites];
        if ((k < cf->nsites) != (s->line == 0))
            continue;
        int total = s->n_smtp_listen + s->n_odmr_listen;
        l = xrealloc(l, sizeof(*l) * (size_t)(*n + total + 1));
        for (int j = 0; j < s->n_smtp_listen; j++)
            l[(*n)++] = (struct conf_listener){s, "smtp_listen", &s->smtp_listen[j]};
        for (int j = 0; j < s->n_odmr_listen; j++)
            l[(*n)++] = (struct conf_listener){s, "odmr_listen", &s->odmr_listen[j]};
    }
    return l;
}

/* conf_report_clash - "site B key ADDR is already used by site A (line N)". */
static void conf_report_clash(struct conf_parse *p, const struct conf_listener *now,
                              const struct conf_listener *first)
{
    char addr[CONF_HOST_MAX + 16], where[64];

    conf_format_addr(now->addr, addr, sizeof(addr));
    if (first->addr->line > 0)
        snprintf(where, sizeof(where), "line %d", first->addr->line);
    else
        snprintf(where, sizeof(where), "built in");
    conf_err(p, now->addr->line,
             first->site->line == 0
                 ? "the built-in site \"default\" uses it; add a [site default] section"
                 : "give each site its own address or port",
             "site \"%s\" %s %s is already used by site \"%s\" (%s)", now->site->name, now->key,
             addr, first->site->name, where);
}

/* conf_check_listeners - no two listeners (any sites, any kind) on one address:port. */
static void conf_check_listeners(struct conf_parse *p)
{
    int n;
    struct conf_listener *l = conf_listeners(p->cf, &n);

    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++) {
            if (conf_addr_clash(l[i].addr, l[j].addr)) {
                conf_report_clash(p, &l[i], &l[j]);
                break;
            }
        }
    }
    free(l);
}

/* conf_readable_file - is path an existing regular file we can read? */
static bool conf_readable_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* conf_check_tls - certificate and key come together and exist. */
static void conf_check_tls(struct conf_parse *p, const struct conf_site *s,
                           const struct conf_site_lines *sl)
{
    const int lc = conf_key_line(conf_site_keys, CONF_NSITE, sl->line, "tls_cert");
    const int lk = conf_key_line(conf_site_keys, CONF_NSITE, sl->line, "tls_key");

    if (s->tls_cert != NULL && s->tls_key == NULL)
        conf_err(p, lc, "add tls_key = FILE next to tls_cert",
                 "site \"%s\" has tls_cert but no tls_key", s->name);
    if (s->tls_key != NULL && s->tls_cert == NULL)
        conf_err(p, lk, "add tls_cert = FILE next to tls_key",
                 "site \"%s\" has tls_key but no tls_cert", s->name);
    if (s->tls_cert != NULL && !conf_readable_file(s->tls_cert))
        conf_err(p, lc, "relative paths are taken from the directory of this file",
                 "site \"%s\" tls_cert %s: %s", s->name, s->tls_cert,
                 access(s->tls_cert, F_OK) == 0 ? "not a readable file" : "no such file");
    if (s->tls_key != NULL && !conf_readable_file(s->tls_key))
        conf_err(p, lk, "relative paths are taken from the directory of this file",
                 "site \"%s\" tls_key %s: %s", s->name, s->tls_key,
                 access(s->tls_key, F_OK) == 0 ? "not a readable file" : "no such file");
}

/* conf_check_sites - per-site completeness: hostname, listeners, TLS. */
static void conf_check_sites(struct conf_parse *p)
{
    for (int i = 0; i < p->cf->nsites; i++) {
        const struct conf_site *s = &p->cf->sites[i];
        if (s->line == 0)
            continue; /* built in: complete by construction */
        if (s->hostname[0] == '\0' &&
            conf_key_line(conf_site_keys, CONF_NSITE, p->site_lines[i].line, "hostname") == 0)
            conf_err(p, s->line, "add hostname = mx.example.net (the name in the 220 greeting)",
                     "site \"%s\" has no hostname", s->name);
        if (s->n_smtp_listen == 0 && s->n_odmr_listen == 0 &&
            conf_key_line(conf_site_keys, CONF_NSITE, p->site_lines[i].line, "smtp_listen") == 0 &&
            conf_key_line(conf_site_keys, CONF_NSITE, p->site_lines[i].line, "odmr_listen") == 0)
            conf_err(p, s->line, "add smtp_listen and/or odmr_listen",
                     "site \"%s\" has no listener", s->name);
        conf_check_tls(p, s, &p->site_lines[i]);
    }
}

/* conf_check_global - relations between global keys. */
static void conf_check_global(struct conf_parse *p)
{
    struct conf *cf = p->cf;
    int lmax = conf_key_line(conf_global_keys, CONF_NGLOBAL, p->global_line, "map_size_max");
    int lmin = conf_key_line(conf_global_keys, CONF_NGLOBAL, p->global_line, "map_size");

    if (cf->map_size > cf->map_size_max)
        conf_err(p, lmax ? lmax : lmin, "map_size_max must be at least map_size",
                 "map_size (%" PRIu64 ") is larger than map_size_max (%" PRIu64 ")", cf->map_size,
                 cf->map_size_max);
}

/* ------------------------------------------------------------------ */
/* Defaults, load, free                                               */

/* conf_defaults - the built-in values of every global key. */
static void conf_defaults(struct conf *cf)
{
    memset(cf, 0, sizeof(*cf));
    cf->state_dir = xstrdup("/var/lib/holdmx");
    cf->sasl_app = xstrdup("holdmx");
    cf->sasl_realm = xstrdup("holdmx");
    conf_parse_addr("[127.0.0.1]:25", &cf->bounce_relay);
    cf->delivery_port = 25;
    cf->hold_time = 7 * 86400;
    cf->delay_warning = 86400;
    cf->max_message_size = 50ull << 20;
    cf->map_size = 64ull << 20;
    cf->map_size_max = 8ull << 30;
    cf->max_connections = 200;
    cf->max_connections_per_ip = 20;
    cf->max_recipients = 1000;
    cf->max_errors = 10;
    cf->smtp_timeout = 300;
    cf->data_timeout = 180;
    cf->atrn_total_timeout = 3600;
    cf->etrn_reply = CONF_ETRN_REPLY_250;
    cf->etrn_rate_per_client = 30;
    cf->etrn_domain_interval = 0;
    cf->delivery_concurrency = 4;
    cf->start_turnd = true;
}

/* conf_builtin_default - the site "default" when the file has none. */
static void conf_builtin_default(struct conf_parse *p)
{
    int idx = conf_site_add(p, "default", 0);
    struct conf_site *s = &p->cf->sites[idx];

    conf_default_hostname(s->hostname, sizeof(s->hostname));
    s->smtp_listen = xmalloc(sizeof(*s->smtp_listen));
    conf_parse_addr("127.0.0.1:2525", s->smtp_listen);
    s->n_smtp_listen = 1;
    s->odmr_listen = xmalloc(sizeof(*s->odmr_listen));
    conf_parse_addr("127.0.0.1:3366", s->odmr_listen);
    s->n_odmr_listen = 1;
}

/* conf_file_dir - absolute directory of file (malloc'd), or NULL. */
static char *conf_file_dir(const char *file)
{
    char *copy = xstrdup(file), *slash = strrchr(copy, '/'), *abs;

    if (slash == NULL)
        snprintf(copy, strlen(copy) + 1, ".");
    else if (slash == copy)
        slash[1] = '\0';
    else
        *slash = '\0';
    abs = realpath(copy, NULL);
    free(copy);
    return abs;
}

/* conf_load - read and check file into *cf; returns the number of problems. */
int conf_load(const char *file, struct conf *cf, FILE *errs)
{
    struct conf_parse p;

    conf_defaults(cf);
    memset(&p, 0, sizeof(p));
    p.cf = cf;
    p.errs = errs;
    p.file = file;
    conf_enter_state(&p, CONF_IN_GLOBAL, -1);
    cf->path = xstrdup(file);
    if ((p.fp = fopen(file, "r")) == NULL) {
        conf_err(&p, 0, "give the right file with -c FILE", "cannot open: %s", strerror(errno));
        conf_builtin_default(&p);
        free(p.site_lines);
        return p.nerr;
    }
    p.dir = conf_file_dir(file);
    p.buf = xmalloc(CONF_LINE_MAX);
    if (ini_parse_stream(conf_reader, &p, conf_handler, &p) != 0 && p.nerr == 0)
        conf_err(&p, p.lineno, NULL, "syntax error");
    if (ferror(p.fp))
        conf_err(&p, p.lineno, NULL, "read error: %s", strerror(errno));
    fclose(p.fp);
    if (!p.default_from_file)
        conf_builtin_default(&p);
    conf_check_global(&p);
    conf_check_sites(&p);
    conf_check_listeners(&p);
    free(p.buf);
    free(p.dir);
    free(p.site_lines);
    return p.nerr;
}

/* conf_free - release everything conf_load() allocated (safe on a zeroed struct). */
void conf_free(struct conf *cf)
{
    if (cf == NULL)
        return;
    free(cf->path);
    free(cf->state_dir);
    free(cf->sasl_app);
    free(cf->sasl_conf_dir);
    free(cf->sasl_realm);
    free(cf->dns_servers);
    free(cf->turnd_path);
    for (int i = 0; i < cf->nsites; i++) {
        free(cf->sites[i].smtp_listen);
        free(cf->sites[i].odmr_listen);
        free(cf->sites[i].tls_cert);
        free(cf->sites[i].tls_key);
    }
    free(cf->sites);
    memset(cf, 0, sizeof(*cf));
}

/* conf_site_find - the site called name, or NULL. */
const struct conf_site *conf_site_find(const struct conf *cf, const char *name)
{
    for (int i = 0; i < cf->nsites; i++)
        if (strcmp(cf->sites[i].name, name) == 0)
            return &cf->sites[i];
    return NULL;
}
