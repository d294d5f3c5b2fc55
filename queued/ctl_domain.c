/*
 * ctl_domain.c - queuectl domain add|set|show|list|delete|export|import.
 *
 * Held domains live in the store (store_domain_*); the site a domain
 * belongs to must be configured in holdmx.conf.  Options shared by add,
 * set and import are turned into a struct store_domain by one function
 * (ctl_domain_apply), so the three accept exactly the same values.
 *
 * Export writes one line per domain:
 *   NAME site=SITE etrn=yes|no route=ROUTE|- hold_time=DUR|default
 *        delay_warning=DUR|default max_queue=N
 * and import reads the same lines back (idempotent upsert).  Import checks
 * every line before changing anything: one bad line changes nothing.
 */
#include "ctl.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>

#include "ctl_out.h"
#include "xalloc.h"

/* ctl_domain_opts - the option values of add/set (strings as typed). */
struct ctl_domain_opts {
    const char *site, *route, *hold, *warn, *maxq;
    bool site_given, no_etrn, etrn, route_given, hold_given, warn_given, maxq_given;
};

/* ctl_domain_name - the one positional NAME, validated into out. */
static int ctl_domain_name(size_t npos, char **pos, char *out, size_t len)
{
    char why[160], shown[LOG_PEER_MAX + 1];

    if (npos != 1) {
        ctl_err("a domain name is needed");
        return EX_USAGE;
    }
    if (!ctl_domain_norm(pos[0], out, len, why, sizeof(why))) {
        log_printable(shown, sizeof(shown), pos[0], strlen(pos[0]));
        ctl_err("bad domain name \"%s\": %s", shown, why);
        return EX_DATAERR;
    }
    return EX_OK;
}

/* ctl_domain_duration - "default" -> -1, else a duration; false if bad. */
static bool ctl_domain_duration(const char *v, int64_t *out)
{
    int64_t d;

    if (strcmp(v, "default") == 0 || strcmp(v, "-1") == 0) {
        *out = -1;
        return true;
    }
    if ((d = conf_parse_duration(v)) < 0)
        return false;
    *out = d;
    return true;
}

/* ctl_domain_route - "" / "-" / "dns" clear the route; else host:port or [addr]:port. */
static bool ctl_domain_route(const char *v, char *out, size_t len)
{
    struct conf_addr a;

    if (v[0] == '\0' || strcmp(v, "-") == 0 || strcasecmp(v, "dns") == 0) {
        out[0] = '\0';
        return true;
    }
    if (!conf_parse_addr(v, &a) || strlen(v) >= len)
        return false;
    snprintf(out, len, "%s", v);
    return true;
}

/* ctl_domain_count - a message count: digits, 0 = no limit. */
static bool ctl_domain_count(const char *v, uint64_t *out)
{
    char *end;

    if (!isdigit((unsigned char)v[0]))
        return false;
    errno = 0;
    *out = strtoull(v, &end, 10);
    return errno == 0 && *end == '\0';
}

/* ctl_domain_apply - the given options onto d; prints the first problem. */
static int ctl_domain_apply(const struct ctl *c, const struct ctl_domain_opts *o,
                            struct store_domain *d)
{
    if (o->etrn && o->no_etrn) {
        ctl_err("--etrn and --no-etrn contradict each other");
        return EX_USAGE;
    }
    if (o->site_given) {
        if (!ctl_site_check(c, o->site))
            return EX_DATAERR;
        snprintf(d->site, sizeof(d->site), "%s", o->site);
    }
    if (o->etrn || o->no_etrn)
        d->etrn_enabled = o->etrn;
    if (o->route_given && !ctl_domain_route(o->route, d->route, sizeof(d->route))) {
        ctl_err("bad --route \"%.100s\" (hint: [203.0.113.7]:25 for an address, "
                "mx.customer.example:25 for a name, \"dns\" for MX lookup)",
                o->route);
        return EX_DATAERR;
    }
    if (o->hold_given && (!ctl_domain_duration(o->hold, &d->hold_time) || d->hold_time == 0)) {
        ctl_err("bad --hold-time \"%.100s\" (hint: e.g. 14d, 36h, or default)", o->hold);
        return EX_DATAERR;
    }
    if (o->warn_given && !ctl_domain_duration(o->warn, &d->delay_warning)) {
        ctl_err("bad --delay-warning \"%.100s\" (hint: e.g. 1d, 0 = never, or default)", o->warn);
        return EX_DATAERR;
    }
    if (o->maxq_given && !ctl_domain_count(o->maxq, &d->max_queue)) {
        ctl_err("bad --max-queue \"%.100s\" (hint: a number of messages, 0 = no limit)", o->maxq);
        return EX_DATAERR;
    }
    return EX_OK;
}

/* ctl_domain_parse - options and NAME of add/set. */
static int ctl_domain_parse(int argc, char **argv, struct ctl_domain_opts *o, char *name,
                            size_t len)
{
    const struct ctl_opt opts[] = {
        {"site", CTL_OPT_VALUE, &o->site, &o->site_given},
        {"no-etrn", CTL_OPT_FLAG, NULL, &o->no_etrn},
        {"etrn", CTL_OPT_FLAG, NULL, &o->etrn},
        {"route", CTL_OPT_VALUE, &o->route, &o->route_given},
        {"hold-time", CTL_OPT_VALUE, &o->hold, &o->hold_given},
        {"delay-warning", CTL_OPT_VALUE, &o->warn, &o->warn_given},
        {"max-queue", CTL_OPT_VALUE, &o->maxq, &o->maxq_given},
    };
    char *pos[2];
    size_t npos;
    int rc;

    memset(o, 0, sizeof(*o));
    if ((rc = ctl_args(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), pos, 2, &npos)) != EX_OK)
        return rc;
    return ctl_domain_name(npos, pos, name, len);
}

/* ctl_domain_add - create a held domain. */
int ctl_domain_add(struct ctl *c, int argc, char **argv)
{
    struct ctl_domain_opts o;
    struct store_domain d;
    int rc, r;

    memset(&d, 0, sizeof(d));
    if ((rc = ctl_domain_parse(argc, argv, &o, d.name, sizeof(d.name))) != EX_OK)
        return rc;
    if (!o.site_given) {
        o.site = "default";
        o.site_given = true;
    }
    d.etrn_enabled = true;
    d.hold_time = -1;
    d.delay_warning = -1;
    d.created = (int64_t)time(NULL);
    if ((rc = ctl_domain_apply(c, &o, &d)) != EX_OK || (rc = ctl_store(c, true)) != EX_OK)
        return rc;
    r = store_domain_put(c->st, &d, true);
    if (r == STORE_EXISTS) {
        ctl_err("domain %s exists already (hint: change it with queuectl domain set %s ...)",
                d.name, d.name);
        return EX_DATAERR;
    }
    if (r != STORE_OK) {
        ctl_err("cannot add domain %s: %s", d.name, store_strerror(r));
        return ctl_store_exit(r);
    }
    printf("domain %s added (site %s)\n", d.name, d.site);
    return EX_OK;
}

/* ctl_domain_set - change some settings of an existing domain. */
int ctl_domain_set(struct ctl *c, int argc, char **argv)
{
    struct ctl_domain_opts o;
    struct store_domain d;
    char name[STORE_DOMAIN_MAX];
    int rc, r;

    if ((rc = ctl_domain_parse(argc, argv, &o, name, sizeof(name))) != EX_OK)
        return rc;
    if ((rc = ctl_store(c, true)) != EX_OK)
        return rc;
    if ((r = store_domain_get(c->st, name, &d)) != STORE_OK) {
        if (r == STORE_NOTFOUND)
            ctl_err("no domain %s (hint: queuectl domain add %s --site SITE)", name, name);
        else
            ctl_err("cannot read domain %s: %s", name, store_strerror(r));
        return ctl_store_exit(r);
    }
    if ((rc = ctl_domain_apply(c, &o, &d)) != EX_OK)
        return rc;
    if ((r = store_domain_put(c->st, &d, false)) != STORE_OK) {
        ctl_err("cannot change domain %s: %s", name, store_strerror(r));
        return ctl_store_exit(r);
    }
    printf("domain %s changed\n", name);
    return EX_OK;
}

/* ctl_domain_dur_text - a stored duration for humans ("default (7d)", "never", "14d"). */
static char *ctl_domain_dur_text(int64_t v, int64_t dflt, bool zero_never, char *buf, size_t len)
{
    char d[32];

    if (v < 0)
        snprintf(buf, len, "default (%s)",
                 dflt == 0 && zero_never ? "never" : ctl_out_fmt_duration(dflt, d, sizeof(d)));
    else if (v == 0 && zero_never)
        snprintf(buf, len, "never");
    else
        ctl_out_fmt_duration(v, buf, len);
    return buf;
}

/* ctl_domain_json - one domain as a JSON object (key NULL inside arrays). */
static void ctl_domain_json(struct ctl_out_json *j, const struct ctl *c,
                            const struct store_domain *d, const struct store_counts *n)
{
    ctl_out_json_open(j, NULL, '{');
    ctl_out_json_str(j, "name", d->name);
    ctl_out_json_str(j, "site", d->site);
    ctl_out_json_bool(j, "etrn", d->etrn_enabled);
    ctl_out_json_str(j, "route", d->route[0] != '\0' ? d->route : NULL);
    ctl_out_json_int(j, "hold_time", d->hold_time < 0 ? c->cf.hold_time : d->hold_time);
    ctl_out_json_bool(j, "hold_time_default", d->hold_time < 0);
    ctl_out_json_int(j, "delay_warning",
                     d->delay_warning < 0 ? c->cf.delay_warning : d->delay_warning);
    ctl_out_json_bool(j, "delay_warning_default", d->delay_warning < 0);
    ctl_out_json_uint(j, "max_queue", d->max_queue);
    ctl_out_json_int(j, "created", d->created);
    ctl_out_json_uint(j, "messages", n->messages);
    ctl_out_json_uint(j, "bytes", n->bytes);
    ctl_out_json_int(j, "oldest", n->oldest);
    ctl_out_json_close(j, '}');
}

/* ctl_domain_print - one domain as "key: value" lines. */
static void ctl_domain_print(const struct ctl *c, const struct store_domain *d,
                             const struct store_counts *n)
{
    char b1[64], b2[64], b3[64];
    int64_t now = (int64_t)time(NULL);

    printf("%-15s %s\n", "domain:", d->name);
    printf("%-15s %s%s\n", "site:", d->site,
           conf_site_find(&c->cf, d->site) ? "" : "  (not in the configuration!)");
    printf("%-15s %s\n", "etrn:", d->etrn_enabled ? "yes" : "no (ETRN gets 459)");
    printf("%-15s %s\n", "route:", d->route[0] != '\0' ? d->route : "DNS (MX, then A/AAAA)");
    printf("%-15s %s\n",
           "hold_time:", ctl_domain_dur_text(d->hold_time, c->cf.hold_time, false, b1, sizeof(b1)));
    printf("%-15s %s\n", "delay_warning:",
           ctl_domain_dur_text(d->delay_warning, c->cf.delay_warning, true, b1, sizeof(b1)));
    if (d->max_queue == 0)
        printf("%-15s %s\n", "max_queue:", "no limit");
    else
        printf("%-15s %" PRIu64 " messages\n", "max_queue:", d->max_queue);
    printf("%-15s %s\n", "created:", ctl_out_fmt_time(d->created, b1, sizeof(b1)));
    printf("%-15s %" PRIu64 " messages, %s, oldest %s\n", "queued:", n->messages,
           ctl_out_fmt_size(n->bytes, b2, sizeof(b2)),
           n->oldest > 0 ? ctl_out_fmt_age(now - n->oldest, b3, sizeof(b3)) : "-");
}

/* ctl_domain_show - one domain, human or --json. */
int ctl_domain_show(struct ctl *c, int argc, char **argv)
{
    bool json = false;
    const struct ctl_opt opts[] = {{"json", CTL_OPT_FLAG, NULL, &json}};
    struct store_domain d;
    struct store_counts n;
    char name[STORE_DOMAIN_MAX], *pos[2];
    size_t npos;
    int rc, r;

    if ((rc = ctl_args(argc, argv, opts, 1, pos, 2, &npos)) != EX_OK ||
        (rc = ctl_domain_name(npos, pos, name, sizeof(name))) != EX_OK ||
        (rc = ctl_store(c, false)) != EX_OK)
        return rc;
    if ((r = store_domain_get(c->st, name, &d)) != STORE_OK) {
        if (r == STORE_NOTFOUND)
            ctl_err("no domain %s (hint: queuectl domain list shows the held domains)", name);
        else
            ctl_err("cannot read domain %s: %s", name, store_strerror(r));
        return ctl_store_exit(r);
    }
    memset(&n, 0, sizeof(n));
    if ((r = store_domain_counts(c->st, name, &n)) != STORE_OK && r != STORE_NOTFOUND)
        ctl_err("warning: cannot count the mail of %s: %s", name, store_strerror(r));
    if (json) {
        struct ctl_out_json j;
        ctl_out_json_init(&j, stdout);
        ctl_domain_json(&j, c, &d, &n);
    } else {
        ctl_domain_print(c, &d, &n);
    }
    return EX_OK;
}

/* ctl_domain_vec - every domain, copied out of the iteration. */
struct ctl_domain_vec {
    struct store_domain *v;
    size_t n;
};

/* ctl_domain_collect - store_domain_iter callback: append a copy. */
static int ctl_domain_collect(const struct store_domain *d, void *arg)
{
    struct ctl_domain_vec *vec = arg;

    vec->v = xrealloc(vec->v, sizeof(*vec->v) * (vec->n + 1));
    vec->v[vec->n++] = *d;
    return 0;
}

/* ctl_domain_all - every domain in name order; a sysexits code. */
static int ctl_domain_all(struct ctl *c, struct ctl_domain_vec *vec)
{
    int r;

    memset(vec, 0, sizeof(*vec));
    if ((r = store_domain_iter(c->st, ctl_domain_collect, vec)) != STORE_OK) {
        ctl_err("cannot list the domains: %s", store_strerror(r));
        free(vec->v);
        vec->v = NULL;
        return ctl_store_exit(r);
    }
    return EX_OK;
}

/* ctl_domain_row - one table row for domain list (defaults marked with '*'). */
static void ctl_domain_row(struct ctl_out_table *t, const struct ctl *c,
                           const struct store_domain *d, const struct store_counts *n, int64_t now)
{
    char hold[32], warn[32], maxq[32], msgs[32], size[32], age[32];
    const char *row[10];

    ctl_out_fmt_duration(d->hold_time < 0 ? c->cf.hold_time : d->hold_time, hold, sizeof(hold) - 1);
    if (d->hold_time < 0)
        strcat(hold, "*");
    ctl_out_fmt_duration(d->delay_warning < 0 ? c->cf.delay_warning : d->delay_warning, warn,
                         sizeof(warn) - 1);
    if (d->delay_warning < 0)
        strcat(warn, "*");
    snprintf(maxq, sizeof(maxq), "%" PRIu64, d->max_queue);
    snprintf(msgs, sizeof(msgs), "%" PRIu64, n->messages);
    row[0] = d->name;
    row[1] = d->site;
    row[2] = d->etrn_enabled ? "yes" : "no";
    row[3] = d->route[0] != '\0' ? d->route : "dns";
    row[4] = hold;
    row[5] = warn;
    row[6] = d->max_queue == 0 ? "-" : maxq;
    row[7] = msgs;
    row[8] = n->messages > 0 ? ctl_out_fmt_size(n->bytes, size, sizeof(size)) : "-";
    row[9] = n->oldest > 0 ? ctl_out_fmt_age(now - n->oldest, age, sizeof(age)) : "-";
    ctl_out_table_row(t, row);
}

/* ctl_domain_list - every domain with its queue, human or --json. */
int ctl_domain_list(struct ctl *c, int argc, char **argv)
{
    static const char *const heads[] = {"DOMAIN", "SITE", "ETRN",   "ROUTE", "HOLD",
                                        "WARN",   "MAXQ", "QUEUED", "SIZE",  "OLDEST"};
    bool json = false;
    const struct ctl_opt opts[] = {{"json", CTL_OPT_FLAG, NULL, &json}};
    struct ctl_domain_vec vec;
    struct ctl_out_table t;
    struct ctl_out_json j;
    size_t npos;
    char *pos[1];
    int64_t now = (int64_t)time(NULL);
    int rc;

    if ((rc = ctl_args(argc, argv, opts, 1, pos, 0, &npos)) != EX_OK ||
        (rc = ctl_store(c, false)) != EX_OK || (rc = ctl_domain_all(c, &vec)) != EX_OK)
        return rc;
    ctl_out_json_init(&j, stdout);
    ctl_out_table_init(&t, 10, heads);
    if (json)
        ctl_out_json_open(&j, NULL, '[');
    for (size_t i = 0; i < vec.n; i++) {
        struct store_counts n;
        memset(&n, 0, sizeof(n));
        (void)store_domain_counts(c->st, vec.v[i].name, &n);
        if (json) {
            ctl_domain_json(&j, c, &vec.v[i], &n);
            continue;
        }
        ctl_domain_row(&t, c, &vec.v[i], &n, now);
    }
    if (json)
        ctl_out_json_close(&j, ']');
    else if (vec.n == 0)
        printf("no held domains (hint: queuectl domain add NAME --site SITE)\n");
    else {
        ctl_out_table_print(stdout, &t);
        printf("(* = the configured default)\n");
    }
    ctl_out_table_free(&t);
    free(vec.v);
    return EX_OK;
}

/* ctl_domain_delete - remove a domain that holds no mail. */
int ctl_domain_delete(struct ctl *c, int argc, char **argv)
{
    char name[STORE_DOMAIN_MAX], *pos[2], size[32];
    struct store_counts n;
    size_t npos;
    int rc, r;

    if ((rc = ctl_args(argc, argv, NULL, 0, pos, 2, &npos)) != EX_OK ||
        (rc = ctl_domain_name(npos, pos, name, sizeof(name))) != EX_OK ||
        (rc = ctl_store(c, true)) != EX_OK)
        return rc;
    r = store_domain_del(c->st, name);
    if (r == STORE_NOTFOUND) {
        ctl_err("no domain %s (hint: queuectl domain list shows the held domains)", name);
        return EX_DATAERR;
    }
    if (r == STORE_NOTEMPTY) {
        memset(&n, 0, sizeof(n));
        (void)store_domain_counts(c->st, name, &n);
        ctl_err("domain %s still holds %" PRIu64 " message%s (%s); nothing was deleted "
                "(hint: deliver them with queuectl queue flush %s, or move them away with "
                "queuectl site drain SITE --move-to OTHER or --export DIR, then retry)",
                name, n.messages, n.messages == 1 ? "" : "s",
                ctl_out_fmt_size(n.bytes, size, sizeof(size)), name);
        return EX_UNAVAILABLE;
    }
    if (r != STORE_OK) {
        ctl_err("cannot delete domain %s: %s", name, store_strerror(r));
        return ctl_store_exit(r);
    }
    printf("domain %s deleted\n", name);
    return EX_OK;
}

/* ctl_domain_export_line - one round-trippable line. */
static void ctl_domain_export_line(FILE *f, const struct store_domain *d)
{
    char hold[32], warn[32];

    fprintf(f, "%s site=%s etrn=%s route=%s hold_time=%s delay_warning=%s max_queue=%" PRIu64 "\n",
            d->name, d->site, d->etrn_enabled ? "yes" : "no", d->route[0] ? d->route : "-",
            d->hold_time < 0 ? "default" : ctl_out_fmt_duration(d->hold_time, hold, sizeof(hold)),
            d->delay_warning < 0 ? "default"
                                 : ctl_out_fmt_duration(d->delay_warning, warn, sizeof(warn)),
            d->max_queue);
}

/* ctl_domain_export - every domain as text on stdout. */
int ctl_domain_export(struct ctl *c, int argc, char **argv)
{
    struct ctl_domain_vec vec;
    char *pos[1], stamp[64];
    size_t npos;
    int rc;

    if ((rc = ctl_args(argc, argv, NULL, 0, pos, 0, &npos)) != EX_OK ||
        (rc = ctl_store(c, false)) != EX_OK || (rc = ctl_domain_all(c, &vec)) != EX_OK)
        return rc;
    printf("# holdmx held domains, %zu, exported %s; load with: queuectl domain import FILE\n",
           vec.n, ctl_out_fmt_time((int64_t)time(NULL), stamp, sizeof(stamp)));
    for (size_t i = 0; i < vec.n; i++)
        ctl_domain_export_line(stdout, &vec.v[i]);
    free(vec.v);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        ctl_err("cannot write the export: %s", strerror(errno));
        return EX_IOERR;
    }
    return EX_OK;
}

/* ctl_import_pair - one "key=value" word of an import line onto o. */
static bool ctl_import_pair(char *word, struct ctl_domain_opts *o)
{
    char *eq = strchr(word, '=');

    if (eq == NULL)
        return false;
    *eq = '\0';
    if (strcmp(word, "site") == 0) {
        o->site = eq + 1;
        o->site_given = true;
    } else if (strcmp(word, "etrn") == 0) {
        if (strcmp(eq + 1, "yes") == 0)
            o->etrn = true;
        else if (strcmp(eq + 1, "no") == 0)
            o->no_etrn = true;
        else
            return false;
    } else if (strcmp(word, "route") == 0) {
        o->route = eq + 1;
        o->route_given = true;
    } else if (strcmp(word, "hold_time") == 0) {
        o->hold = eq + 1;
        o->hold_given = true;
    } else if (strcmp(word, "delay_warning") == 0) {
        o->warn = eq + 1;
        o->warn_given = true;
    } else if (strcmp(word, "max_queue") == 0) {
        o->maxq = eq + 1;
        o->maxq_given = true;
    } else {
        return false;
    }
    return true;
}

/* ctl_import_line - parse one line into d; false (reported) if bad. */
static bool ctl_import_line(const struct ctl *c, char *line, const char *file, int lineno,
                            struct store_domain *d)
{
    struct ctl_domain_opts o;
    char *save = NULL, *word = strtok_r(line, " \t", &save), why[160];

    memset(&o, 0, sizeof(o));
    memset(d, 0, sizeof(*d));
    d->etrn_enabled = true;
    d->hold_time = -1;
    d->delay_warning = -1;
    snprintf(d->site, sizeof(d->site), "default");
    if (!ctl_domain_norm(word, d->name, sizeof(d->name), why, sizeof(why))) {
        fprintf(stderr, "%s:%d: bad domain name \"%.100s\": %s\n", file, lineno, word, why);
        return false;
    }
    while ((word = strtok_r(NULL, " \t", &save)) != NULL) {
        if (!ctl_import_pair(word, &o)) {
            fprintf(stderr,
                    "%s:%d: bad field \"%.100s\" (hint: site= etrn= route= hold_time= "
                    "delay_warning= max_queue=, as written by queuectl domain export)\n",
                    file, lineno, word);
            return false;
        }
    }
    if (ctl_domain_apply(c, &o, d) != EX_OK) {
        fprintf(stderr, "%s:%d: domain %s not imported (see the message above)\n", file, lineno,
                d->name);
        return false;
    }
    return true;
}

/* ctl_import_read - every line of f into *vec; the number of bad lines. */
static int ctl_import_read(const struct ctl *c, FILE *f, const char *file,
                           struct ctl_domain_vec *vec)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, bad = 0;
    struct store_domain d;

    memset(vec, 0, sizeof(*vec));
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *s = line;
        lineno++;
        while (len > 0 && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        if (!ctl_import_line(c, s, file, lineno, &d)) {
            bad++;
            continue;
        }
        ctl_domain_collect(&d, vec);
    }
    free(line);
    return bad;
}

/* ctl_domain_same - would writing new change nothing? */
static bool ctl_domain_same(const struct store_domain *a, const struct store_domain *b)
{
    return strcmp(a->site, b->site) == 0 && a->etrn_enabled == b->etrn_enabled &&
           strcmp(a->route, b->route) == 0 && a->hold_time == b->hold_time &&
           a->delay_warning == b->delay_warning && a->max_queue == b->max_queue;
}

/* ctl_import_apply - upsert every parsed domain; a sysexits code. */
static int ctl_import_apply(struct ctl *c, const struct ctl_domain_vec *vec)
{
    size_t added = 0, changed = 0, same = 0;

    for (size_t i = 0; i < vec->n; i++) {
        struct store_domain d = vec->v[i], old;
        int r = store_domain_get(c->st, d.name, &old);
        bool existed = r == STORE_OK;
        if (existed && ctl_domain_same(&old, &d)) {
            same++;
            continue;
        }
        d.created = existed ? old.created : (int64_t)time(NULL);
        if ((r = store_domain_put(c->st, &d, false)) != STORE_OK) {
            ctl_err("cannot import domain %s: %s (%zu domains were imported before it)", d.name,
                    store_strerror(r), added + changed);
            return ctl_store_exit(r);
        }
        if (existed)
            changed++;
        else
            added++;
    }
    printf("imported %zu domains: %zu added, %zu changed, %zu unchanged\n", vec->n, added, changed,
           same);
    return EX_OK;
}

/* ctl_domain_import - read an export file (or "-" = stdin) and upsert it. */
int ctl_domain_import(struct ctl *c, int argc, char **argv)
{
    struct ctl_domain_vec vec;
    char *pos[2];
    size_t npos;
    FILE *f;
    int rc, bad;

    if ((rc = ctl_args(argc, argv, NULL, 0, pos, 1, &npos)) != EX_OK)
        return rc;
    if (npos != 1) {
        ctl_err("the file to import is needed (\"-\" = standard input)");
        return EX_USAGE;
    }
    f = strcmp(pos[0], "-") == 0 ? stdin : fopen(pos[0], "r");
    if (f == NULL) {
        ctl_err("cannot open %s: %s", pos[0], strerror(errno));
        return EX_NOINPUT;
    }
    bad = ctl_import_read(c, f, pos[0], &vec);
    if (f != stdin)
        fclose(f);
    if (bad > 0) {
        ctl_err("%d bad line%s in %s; nothing was imported (hint: fix them and run the import "
                "again; it is safe to repeat)",
                bad, bad == 1 ? "" : "s", pos[0]);
        free(vec.v);
        return EX_DATAERR;
    }
    if ((rc = ctl_store(c, true)) == EX_OK)
        rc = ctl_import_apply(c, &vec);
    free(vec.v);
    return rc;
}
