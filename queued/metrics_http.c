/*
 * metrics_http.c - GET /metrics for Prometheus, served by evhttp inside
 * queued.
 *
 * Each scrape renders the process counters (metrics_write) and then reads
 * queue gauges from the store: per configured site and per held domain
 * with mail waiting.  Rendering goes through an open_memstream buffer that
 * is copied into the evhttp reply and freed.  Only GET and HEAD of
 * /metrics are answered; everything else gets 404/405.
 */
#include "metrics_http.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etrn.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

struct metrics_http {
    struct evhttp *http;
    const struct conf *cf;
    struct store *st;
};

/* metrics_http_domains - growable list of held domain names. */
struct metrics_http_domains {
    char **names;
    size_t n, cap;
};

/* metrics_http_etrn_status - map an etrn_status to its outcome counter. */
void metrics_http_etrn_status(int etrn_status)
{
    switch (etrn_status) {
    case ETRN_STARTED:
        metrics_inc(METRIC_ETRN_STARTED);
        break;
    case ETRN_NOTHING:
        metrics_inc(METRIC_ETRN_NOTHING);
        break;
    case ETRN_RUNNING:
        metrics_inc(METRIC_ETRN_RUNNING);
        break;
    case ETRN_DISABLED:
    case ETRN_UNKNOWN:
        metrics_inc(METRIC_ETRN_DENIED);
        break;
    case ETRN_RATE:
        metrics_inc(METRIC_ETRN_RATE);
        break;
    default:
        metrics_inc(METRIC_ETRN_ERROR);
        break;
    }
}

/* metrics_http_label - a label value with \, " and newline escaped. */
static void metrics_http_label(FILE *f, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

/* metrics_http_gauge_head - HELP and TYPE of one gauge family. */
static void metrics_http_gauge_head(FILE *f, const char *name, const char *help)
{
    fprintf(f, "# HELP holdmx_%s %s\n# TYPE holdmx_%s gauge\n", name, help, name);
}

/* metrics_http_sample - one "holdmx_NAME{KEY="VAL"} V" line. */
static void metrics_http_sample(FILE *f, const char *name, const char *key, const char *val,
                                double v)
{
    fprintf(f, "holdmx_%s{%s=\"", name, key);
    metrics_http_label(f, val);
    fprintf(f, "\"} %.17g\n", v);
}

/* metrics_http_collect - store_domain_iter callback: remember the name. */
static int metrics_http_collect(const struct store_domain *d, void *arg)
{
    struct metrics_http_domains *l = arg;

    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->names = xrealloc(l->names, l->cap * sizeof(*l->names));
    }
    l->names[l->n++] = xstrdup(d->name);
    return 0;
}

/* metrics_http_sites - queue gauges per configured site. */
static void metrics_http_sites(FILE *f, const struct conf *cf, struct store *st, int64_t now)
{
    static const char *const names[3] = {"queue_messages", "queue_bytes",
                                         "queue_oldest_age_seconds"};
    static const char *const helps[3] = {"Messages held, by site.", "Bytes held, by site.",
                                         "Age of the oldest held message, by site."};
    struct store_counts *c = xcalloc((size_t)cf->nsites + 1, sizeof(*c));
    bool *ok = xcalloc((size_t)cf->nsites + 1, sizeof(*ok));
    int k, i;

    for (i = 0; i < cf->nsites; i++)
        ok[i] = store_site_counts(st, cf->sites[i].name, &c[i]) == STORE_OK;
    for (k = 0; k < 3; k++) {
        metrics_http_gauge_head(f, names[k], helps[k]);
        for (i = 0; i < cf->nsites; i++) {
            double v;

            if (!ok[i])
                continue;
            v = k == 0   ? (double)c[i].messages
                : k == 1 ? (double)c[i].bytes
                         : (c[i].oldest ? (double)(now - c[i].oldest) : 0);
            metrics_http_sample(f, names[k], "site", cf->sites[i].name, v);
        }
    }
    free(ok);
    free(c);
}

/* metrics_http_domain_gauges - messages/bytes per held domain that has mail. */
static void metrics_http_domain_gauges(FILE *f, struct store *st)
{
    struct metrics_http_domains l = {NULL, 0, 0};
    struct store_counts *c;
    size_t i;

    store_domain_iter(st, metrics_http_collect, &l);
    c = xcalloc(l.n + 1, sizeof(*c));
    for (i = 0; i < l.n; i++)
        if (store_domain_counts(st, l.names[i], &c[i]) != STORE_OK)
            c[i].messages = 0;
    metrics_http_gauge_head(f, "domain_messages", "Messages held, by domain (domains with mail).");
    for (i = 0; i < l.n; i++)
        if (c[i].messages > 0)
            metrics_http_sample(f, "domain_messages", "domain", l.names[i], (double)c[i].messages);
    metrics_http_gauge_head(f, "domain_bytes", "Bytes held, by domain (domains with mail).");
    for (i = 0; i < l.n; i++)
        if (c[i].messages > 0)
            metrics_http_sample(f, "domain_bytes", "domain", l.names[i], (double)c[i].bytes);
    metrics_http_gauge_head(f, "domains", "Held domains configured in the store.");
    fprintf(f, "holdmx_domains %zu\n", l.n);
    for (i = 0; i < l.n; i++)
        free(l.names[i]);
    free(l.names);
    free(c);
}

/* metrics_http_env - LMDB map usage gauges. */
static void metrics_http_env(FILE *f, struct store *st)
{
    struct store_envinfo ei;

    if (store_env_info(st, &ei) != STORE_OK)
        return;
    metrics_http_gauge_head(f, "store_map_used_bytes", "Bytes of the LMDB map in use.");
    fprintf(f, "holdmx_store_map_used_bytes %llu\n", (unsigned long long)ei.map_used);
    metrics_http_gauge_head(f, "store_map_max_bytes", "Largest size the LMDB map may grow to.");
    fprintf(f, "holdmx_store_map_max_bytes %llu\n", (unsigned long long)ei.map_size_max);
}

/* metrics_http_render - the whole /metrics page. */
void metrics_http_render(FILE *f, const struct conf *cf, struct store *st)
{
    metrics_write(f);
    if (st == NULL)
        return;
    metrics_http_sites(f, cf, st, (int64_t)time(NULL));
    metrics_http_domain_gauges(f, st);
    metrics_http_env(f, st);
}

/* metrics_http_cb - answer one request. */
static void metrics_http_cb(struct evhttp_request *req, void *arg)
{
    struct metrics_http *m = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *out;
    char *page = NULL;
    size_t len = 0;
    FILE *f;

    if (uri == NULL || (strcmp(uri, "/metrics") != 0 && strncmp(uri, "/metrics?", 9) != 0)) {
        evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_send_error(req, HTTP_BADMETHOD, "GET only");
        return;
    }
    f = open_memstream(&page, &len);
    if (f == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    metrics_http_render(f, m->cf, m->st);
    fclose(f);
    out = evbuffer_new();
    evbuffer_add(out, page, len);
    free(page);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
}

/* metrics_http_start - see metrics_http.h. */
struct metrics_http *metrics_http_start(struct event_base *base, const struct conf *cf,
                                        struct store *st, char *err, size_t errlen)
{
    struct metrics_http *m;
    char addr[CONF_HOST_MAX + 16];

    if (errlen > 0)
        err[0] = '\0';
    if (!cf->metrics_enabled || cf->metrics_listen.port == 0)
        return NULL;
    m = xcalloc(1, sizeof(*m));
    m->cf = cf;
    m->st = st;
    m->http = evhttp_new(base);
    if (m->http == NULL ||
        evhttp_bind_socket(m->http, cf->metrics_listen.host, cf->metrics_listen.port) != 0) {
        snprintf(err, errlen, "metrics_listen %s: cannot listen (address in use or invalid?)",
                 conf_format_addr(&cf->metrics_listen, addr, sizeof(addr)));
        if (m->http != NULL)
            evhttp_free(m->http);
        free(m);
        return NULL;
    }
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_timeout(m->http, 10);
    evhttp_set_max_headers_size(m->http, 8192);
    evhttp_set_max_body_size(m->http, 1024);
    evhttp_set_gencb(m->http, metrics_http_cb, m);
    log_info("metrics on http://%s/metrics",
             conf_format_addr(&cf->metrics_listen, addr, sizeof(addr)));
    return m;
}

/* metrics_http_set_conf - use a reloaded configuration. */
void metrics_http_set_conf(struct metrics_http *m, const struct conf *cf)
{
    if (m != NULL)
        m->cf = cf;
}

/* metrics_http_stop - close and free. */
void metrics_http_stop(struct metrics_http *m)
{
    if (m == NULL)
        return;
    evhttp_free(m->http);
    free(m);
}
