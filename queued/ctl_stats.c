/*
 * ctl_stats.c - "queuectl stats [--json]": what the queue holds, per site
 * and per held domain (messages, bytes, oldest), plus LMDB map usage.
 *
 * Read-only: works with the daemons up or down.  Domains without mail are
 * counted but not listed, so an ISP with 100,000 domains gets a short
 * report; --json lists the same rows.  Also holds ctl_nouns_usage().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "ctl_client.h"
#include "ctl_nouns.h"
#include "xalloc.h"

/* ctl_stats_row - one domain with mail. */
struct ctl_stats_row {
    char name[STORE_DOMAIN_MAX];
    char site[STORE_SITE_MAX];
    struct store_counts c;
};

/* ctl_stats_ctx - rows collected from the domain table. */
struct ctl_stats_ctx {
    struct ctl_stats_row *rows;
    size_t n, cap, ndomains;
};

/* ctl_stats_dom_cb - store_domain_iter: remember every domain name and site. */
static int ctl_stats_dom_cb(const struct store_domain *d, void *arg)
{
    struct ctl_stats_ctx *c = arg;

    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->rows = xrealloc(c->rows, c->cap * sizeof(*c->rows));
    }
    memset(&c->rows[c->n], 0, sizeof(c->rows[c->n]));
    snprintf(c->rows[c->n].name, sizeof(c->rows[c->n].name), "%s", d->name);
    snprintf(c->rows[c->n].site, sizeof(c->rows[c->n].site), "%s", d->site);
    c->n++;
    return 0;
}

/* ctl_stats_counts_json - "messages/bytes/oldest" members. */
static void ctl_stats_counts_json(const struct store_counts *c)
{
    char t[32];

    printf("\"messages\":%llu,\"bytes\":%llu,\"oldest\":", (unsigned long long)c->messages,
           (unsigned long long)c->bytes);
    if (c->oldest)
        ctl_json_str(stdout, ctl_iso_time(c->oldest, t, sizeof(t)));
    else
        fputs("null", stdout);
}

/* ctl_stats_text_row - one aligned human row. */
static void ctl_stats_text_row(const char *kind, const char *name, const char *site,
                               const struct store_counts *c, int64_t now)
{
    char sz[16], age[16];

    printf("%-6s %-32s %-10s %8llu %7s %6s\n", kind, name, site, (unsigned long long)c->messages,
           ctl_human_size(c->bytes, sz, sizeof(sz)),
           c->oldest ? ctl_human_age(now - c->oldest, age, sizeof(age)) : "-");
}

/* ctl_stats_print - the report from collected counts. */
static void ctl_stats_print(const struct conf *cf, const struct store_counts *sc,
                            const struct ctl_stats_ctx *d, const struct store_envinfo *ei,
                            bool json)
{
    int64_t now = time(NULL);
    size_t i, shown = 0;
    int s;

    if (!json)
        printf("%-6s %-32s %-10s %8s %7s %6s\n", "", "NAME", "SITE", "MESSAGES", "BYTES", "OLDEST");
    else
        fputs("{\"sites\":[", stdout);
    for (s = 0; s < cf->nsites; s++) {
        if (json) {
            fputs(s ? ",{\"name\":" : "{\"name\":", stdout);
            ctl_json_str(stdout, cf->sites[s].name);
            fputc(',', stdout);
            ctl_stats_counts_json(&sc[s]);
            fputc('}', stdout);
        } else {
            ctl_stats_text_row("site", cf->sites[s].name, "", &sc[s], now);
        }
    }
    if (json)
        fputs("],\"domains\":[", stdout);
    for (i = 0; i < d->n; i++) {
        if (d->rows[i].c.messages == 0)
            continue;
        if (json) {
            fputs(shown ? ",{\"name\":" : "{\"name\":", stdout);
            ctl_json_str(stdout, d->rows[i].name);
            fputs(",\"site\":", stdout);
            ctl_json_str(stdout, d->rows[i].site);
            fputc(',', stdout);
            ctl_stats_counts_json(&d->rows[i].c);
            fputc('}', stdout);
        } else {
            ctl_stats_text_row("domain", d->rows[i].name, d->rows[i].site, &d->rows[i].c, now);
        }
        shown++;
    }
    if (json)
        printf("],\"domains_total\":%zu,\"map_used\":%llu,\"map_max\":%llu}\n", d->n,
               (unsigned long long)ei->map_used, (unsigned long long)ei->map_size_max);
    else {
        char a[16], b[16];

        printf("-- %zu held domain%s, %zu with mail; store %s of %s used\n", d->n,
               d->n == 1 ? "" : "s", shown, ctl_human_size(ei->map_used, a, sizeof(a)),
               ctl_human_size(ei->map_size_max, b, sizeof(b)));
    }
}

/* ctl_stats_main - "stats [--json]". */
int ctl_stats_main(const struct conf *cf, int argc, char **argv)
{
    bool json = ctl_has_flag(argc, argv, 1, "--json");
    struct ctl_stats_ctx d = {NULL, 0, 0, 0};
    struct store_envinfo ei;
    struct store_counts *sc;
    struct store *st;
    size_t i;
    int rc, s;

    if (argc > 1 && !json) {
        fprintf(stderr, "usage: queuectl stats [--json]\n");
        return EX_USAGE;
    }
    if ((rc = ctl_store_open(cf, true, &st)) != 0)
        return rc;
    memset(&ei, 0, sizeof(ei));
    sc = xcalloc((size_t)cf->nsites + 1, sizeof(*sc));
    for (s = 0; s < cf->nsites; s++)
        store_site_counts(st, cf->sites[s].name, &sc[s]);
    rc = store_domain_iter(st, ctl_stats_dom_cb, &d);
    for (i = 0; rc == STORE_OK && i < d.n; i++)
        store_domain_counts(st, d.rows[i].name, &d.rows[i].c);
    store_env_info(st, &ei);
    store_close(st);
    if (rc == STORE_OK)
        ctl_stats_print(cf, sc, &d, &ei, json);
    else
        fprintf(stderr, "queuectl: cannot read the domain table: %s\n", store_strerror(rc));
    free(sc);
    free(d.rows);
    return rc == STORE_OK ? 0 : EX_IOERR;
}

/* ctl_nouns_usage - usage lines of queue, stats and site. */
void ctl_nouns_usage(FILE *f)
{
    fputs("  queue list [--site S] [--domain D] [--json]\n"
          "  queue show ID [--json]\n"
          "  queue hold|release|delete|bounce ID | --domain D\n"
          "  queue flush DOMAIN\n"
          "  queue export --domain D DIR [--delete]\n"
          "  stats [--json]\n"
          "  site list [--json]\n"
          "  site pause|resume NAME\n"
          "  site drain NAME [--move-to SITE | --export DIR]\n"
          "  site delete NAME\n",
          f);
}
