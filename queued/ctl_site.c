/*
 * ctl_site.c - "queuectl site ...": list, pause, resume, drain, delete.
 *
 * Sites are defined in the configuration file; the store only keeps their
 * runtime flags (paused, draining) and the mail.  So "site list" joins the
 * two, "pause"/"resume" go through queued's control socket when it runs
 * (and write the store directly when it does not: queued reads the flag at
 * MAIL/RCPT time either way), and "delete" checks that the site is empty
 * and owns no held domain, closes it in the store and reminds the operator
 * to remove its [site] section.  "drain" is in ctl_drain.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "ctl_client.h"
#include "ctl_nouns.h"
#include "tls.h"
#include "xalloc.h"

/* ctl_site_doms - held domains of one site (names kept for JSON). */
struct ctl_site_doms {
    const char *site;
    size_t n;
    char **names;
    size_t cap;
};

/* ctl_site_doms_cb - store_domain_iter: collect the site's domains. */
static int ctl_site_doms_cb(const struct store_domain *d, void *arg)
{
    struct ctl_site_doms *c = arg;

    if (strcmp(d->site, c->site) != 0)
        return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->names = xrealloc(c->names, c->cap * sizeof(*c->names));
    }
    c->names[c->n++] = xstrdup(d->name);
    return 0;
}

/* ctl_site_doms_free - release the names. */
static void ctl_site_doms_free(struct ctl_site_doms *c)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        free(c->names[i]);
    free(c->names);
}

/* ctl_site_flags_text - "paused,draining" or "-". */
static const char *ctl_site_flags_text(unsigned flags)
{
    if ((flags & STORE_SITE_PAUSED) && (flags & STORE_SITE_DRAINING))
        return "paused,draining";
    if (flags & STORE_SITE_DRAINING)
        return "draining";
    return (flags & STORE_SITE_PAUSED) ? "paused" : "-";
}

/* ctl_site_addrs_json - a JSON array of listener addresses. */
static void ctl_site_addrs_json(FILE *f, const struct conf_addr *a, int n)
{
    char buf[CONF_HOST_MAX + 16];
    int i;

    fputc('[', f);
    for (i = 0; i < n; i++) {
        if (i > 0)
            fputc(',', f);
        ctl_json_str(f, conf_format_addr(&a[i], buf, sizeof(buf)));
    }
    fputc(']', f);
}

/* ctl_site_addrs_text - listener addresses separated by commas. */
static void ctl_site_addrs_text(FILE *f, const struct conf_addr *a, int n)
{
    char buf[CONF_HOST_MAX + 16];
    int i;

    for (i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? "," : "", conf_format_addr(&a[i], buf, sizeof(buf)));
    if (n == 0)
        fputc('-', f);
}

/* ctl_site_one - print one site (JSON object or text block). */
static void ctl_site_one(struct store *st, const struct conf_site *s, bool json, bool first)
{
    struct ctl_site_doms d = {s->name, 0, NULL, 0};
    struct store_counts c = {0, 0, 0};
    char subj[512] = "", fpr[128] = "", err[256] = "", sz[16], age[16];
    unsigned flags = 0;
    bool cert = s->tls_cert != NULL &&
                tls_cert_info(s->tls_cert, subj, sizeof(subj), fpr, sizeof(fpr), err, sizeof(err));
    size_t i;

    store_site_counts(st, s->name, &c);
    store_site_flags_get(st, s->name, &flags);
    store_domain_iter(st, ctl_site_doms_cb, &d);
    if (json) {
        fputs(first ? "\n{\"name\":" : ",\n{\"name\":", stdout);
        ctl_json_str(stdout, s->name);
        fputs(",\"hostname\":", stdout);
        ctl_json_str(stdout, s->hostname);
        fputs(",\"smtp_listen\":", stdout);
        ctl_site_addrs_json(stdout, s->smtp_listen, s->n_smtp_listen);
        fputs(",\"odmr_listen\":", stdout);
        ctl_site_addrs_json(stdout, s->odmr_listen, s->n_odmr_listen);
        fputs(",\"tls_cert\":", stdout);
        if (s->tls_cert != NULL)
            ctl_json_str(stdout, s->tls_cert);
        else
            fputs("null", stdout);
        fputs(",\"tls_subject\":", stdout);
        ctl_json_str(stdout, cert ? subj : "");
        fputs(",\"tls_sha256\":", stdout);
        ctl_json_str(stdout, cert ? fpr : "");
        printf(",\"paused\":%s,\"draining\":%s,\"messages\":%llu,\"bytes\":%llu,\"oldest\":%lld,"
               "\"domains\":[",
               (flags & STORE_SITE_PAUSED) ? "true" : "false",
               (flags & STORE_SITE_DRAINING) ? "true" : "false", (unsigned long long)c.messages,
               (unsigned long long)c.bytes, (long long)c.oldest);
        for (i = 0; i < d.n; i++) {
            fputs(i ? "," : "", stdout);
            ctl_json_str(stdout, d.names[i]);
        }
        fputs("]}", stdout);
    } else {
        printf("%s%s (%s)\n  smtp:     ", first ? "" : "\n", s->name, s->hostname);
        ctl_site_addrs_text(stdout, s->smtp_listen, s->n_smtp_listen);
        printf("\n  odmr:     ");
        ctl_site_addrs_text(stdout, s->odmr_listen, s->n_odmr_listen);
        printf("\n  tls:      %s\n", s->tls_cert != NULL ? s->tls_cert : "- (no STARTTLS)");
        if (s->tls_cert != NULL)
            printf("  subject:  %s\n  sha256:   %s\n", cert ? subj : err, cert ? fpr : "-");
        printf("  state:    %s\n  domains:  %zu", ctl_site_flags_text(flags), d.n);
        for (i = 0; i < d.n && i < 5; i++)
            printf("%s%s", i ? ", " : " (", d.names[i]);
        printf("%s\n", d.n > 5 ? ", ...)" : d.n > 0 ? ")" : "");
        printf("  queued:   %llu message%s, %s, oldest %s\n", (unsigned long long)c.messages,
               c.messages == 1 ? "" : "s", ctl_human_size(c.bytes, sz, sizeof(sz)),
               c.oldest ? ctl_human_age(time(NULL) - c.oldest, age, sizeof(age)) : "-");
    }
    ctl_site_doms_free(&d);
}

/* ctl_site_list - "site list [--json]". */
static int ctl_site_list(const struct conf *cf, int argc, char **argv)
{
    bool json = ctl_has_flag(argc, argv, 2, "--json");
    struct store *st;
    int rc = ctl_store_open(cf, true, &st), i;

    if (rc != 0)
        return rc;
    if (json)
        fputs("{\"sites\":[", stdout);
    for (i = 0; i < cf->nsites; i++)
        ctl_site_one(st, &cf->sites[i], json, i == 0);
    if (json)
        fputs("\n]}\n", stdout);
    store_close(st);
    return 0;
}

/* ctl_site_known - site is configured; prints the fix when not. */
static bool ctl_site_known(const struct conf *cf, const char *site)
{
    if (conf_site_find(cf, site) != NULL)
        return true;
    fprintf(stderr, "queuectl: no site \"%s\" in %s (see queuectl site list)\n", site, cf->path);
    return false;
}

/* ctl_site_pause - "site pause|resume NAME": socket first, store if queued is down. */
static int ctl_site_pause(const struct conf *cf, int argc, char **argv)
{
    bool pause = strcmp(argv[1], "pause") == 0;
    char req[STORE_SITE_MAX + 16], reply[512];
    unsigned flags = 0;
    struct store *st;
    int rc, call;

    if (argc < 3) {
        fprintf(stderr, "usage: queuectl site %s NAME\n", argv[1]);
        return EX_USAGE;
    }
    if (!ctl_site_known(cf, argv[2]))
        return EX_NOINPUT;
    snprintf(req, sizeof(req), "%s %s", pause ? "PAUSE" : "RESUME", argv[2]);
    rc = call = ctl_client_call(cf, req, reply, sizeof(reply), 10000);
    if (rc == CTL_CALL_OK && !ctl_client_ok(reply)) {
        fprintf(stderr, "queuectl: queued refused: %s\n", reply);
        return EX_SOFTWARE;
    }
    if (rc != CTL_CALL_OK) {
        if ((rc = ctl_store_open(cf, false, &st)) != 0)
            return rc;
        store_site_flags_get(st, argv[2], &flags);
        flags =
            pause ? flags | STORE_SITE_PAUSED : flags & ~(STORE_SITE_PAUSED | STORE_SITE_DRAINING);
        rc = store_site_flags_set(st, argv[2], flags);
        store_close(st);
        if (rc != STORE_OK) {
            fprintf(stderr, "queuectl: cannot change site %s: %s\n", argv[2], store_strerror(rc));
            return EX_IOERR;
        }
    }
    printf("site %s %s%s\n", argv[2],
           pause ? "paused: new mail gets 421/451" : "resumed: accepting mail",
           call == CTL_CALL_OK ? "" : " (queued is not running; recorded in the store)");
    return 0;
}

/* ctl_site_delete_check - refuse while the site holds mail or domains. */
static int ctl_site_delete_check(struct store *st, const char *site)
{
    struct ctl_site_doms d = {site, 0, NULL, 0};
    struct store_counts c = {0, 0, 0};
    char sz[16];
    int rc = store_site_counts(st, site, &c);

    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        fprintf(stderr, "queuectl: cannot count site %s: %s\n", site, store_strerror(rc));
        return EX_IOERR;
    }
    if (c.messages > 0) {
        fprintf(stderr,
                "queuectl: site %s still holds %llu message%s (%s): empty it first with "
                "\"queuectl site drain %s --move-to SITE\" (or --export DIR, or no "
                "option to deliver), then delete again\n",
                site, (unsigned long long)c.messages, c.messages == 1 ? "" : "s",
                ctl_human_size(c.bytes, sz, sizeof(sz)), site);
        return EX_TEMPFAIL;
    }
    store_domain_iter(st, ctl_site_doms_cb, &d);
    rc = d.n;
    if (d.n > 0)
        fprintf(stderr,
                "queuectl: %zu held domain%s (%s%s) still belong%s to site %s: move them "
                "with \"queuectl site drain %s --move-to SITE\" or \"queuectl domain set "
                "DOMAIN --site SITE\"\n",
                d.n, d.n == 1 ? "" : "s", d.names[0], d.n > 1 ? ", ..." : "", d.n == 1 ? "s" : "",
                site, site);
    ctl_site_doms_free(&d);
    return rc > 0 ? EX_TEMPFAIL : 0;
}

/* ctl_site_delete - "site delete NAME". */
static int ctl_site_delete(const struct conf *cf, int argc, char **argv)
{
    const struct conf_site *cs;
    struct store *st;
    unsigned flags = 0;
    int rc;

    if (argc < 3) {
        fprintf(stderr, "usage: queuectl site delete NAME\n");
        return EX_USAGE;
    }
    if (strcmp(argv[2], "default") == 0) {
        fprintf(stderr, "queuectl: the site \"default\" always exists and cannot be deleted\n");
        return EX_USAGE;
    }
    cs = conf_site_find(cf, argv[2]);
    if ((rc = ctl_store_open(cf, false, &st)) != 0)
        return rc;
    if (cs == NULL && store_site_flags_get(st, argv[2], &flags) == STORE_NOTFOUND) {
        struct store_counts c = {0, 0, 0};

        if (store_site_counts(st, argv[2], &c) != STORE_OK || c.messages == 0) {
            store_close(st);
            fprintf(stderr, "queuectl: no site \"%s\" in %s or in the queue\n", argv[2], cf->path);
            return EX_NOINPUT;
        }
    }
    rc = ctl_site_delete_check(st, argv[2]);
    if (rc == 0)
        rc = store_site_flags_set(st, argv[2], cs != NULL ? STORE_SITE_PAUSED : 0) == STORE_OK
                 ? 0
                 : EX_IOERR;
    store_close(st);
    if (rc == 0 && cs != NULL)
        printf("site %s is empty and now closed (paused). It is still configured: remove its "
               "[site %s] section (%s line %d) and reload queued (SIGHUP) to stop its "
               "listeners\n",
               argv[2], argv[2], cf->path, cs->line);
    else if (rc == 0)
        printf("site %s deleted (it held no mail; its runtime flags are cleared)\n", argv[2]);
    return rc;
}

/* ctl_site_usage - the verbs of "site". */
static int ctl_site_usage(void)
{
    fprintf(stderr, "usage: queuectl site list [--json]\n"
                    "       queuectl site pause|resume NAME\n"
                    "       queuectl site drain NAME [--move-to SITE | --export DIR]\n"
                    "       queuectl site delete NAME\n");
    return EX_USAGE;
}

/* ctl_site_drain_verb - adapter for the verb table. */
static int ctl_site_drain_verb(const struct conf *cf, int argc, char **argv)
{
    return ctl_site_drain(cf, argc, argv);
}

/* ctl_site_main - dispatch "site VERB ...". */
int ctl_site_main(const struct conf *cf, int argc, char **argv)
{
    static const struct {
        const char *verb;
        int (*fn)(const struct conf *, int, char **);
    } verbs[] = {
        {"list", ctl_site_list},        {"pause", ctl_site_pause},   {"resume", ctl_site_pause},
        {"drain", ctl_site_drain_verb}, {"delete", ctl_site_delete},
    };
    size_t i;

    if (argc < 2)
        return ctl_site_usage();
    for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(argv[1], verbs[i].verb) == 0)
            return verbs[i].fn(cf, argc, argv);
    fprintf(stderr, "queuectl: unknown verb \"site %s\"\n", argv[1]);
    return ctl_site_usage();
}
