/*
 * metrics_http.h - queued's Prometheus endpoint: GET /metrics on
 * cf->metrics_listen (evhttp on queued's event loop).
 *
 * The page holds this process's counters (common/metrics.h) and gauges
 * read from the store at scrape time: messages/bytes/oldest per site and
 * per held domain, and the LMDB map usage.  turnd's counters live in the
 * turnd process and are not exported.
 */
#ifndef HM_METRICS_HTTP_H
#define HM_METRICS_HTTP_H

#include <stddef.h>

#include "conf.h"
#include "store.h"

struct event_base;
struct metrics_http;

/*
 * metrics_http_start - listen on cf->metrics_listen.  Returns NULL with
 * err[0] == '\0' when metrics are disabled (no metrics_listen), NULL with
 * a sentence in err when the address cannot be bound.  cf and st must
 * outlive the server.
 */
struct metrics_http *metrics_http_start(struct event_base *base, const struct conf *cf,
                                        struct store *st, char *err, size_t errlen);
/* metrics_http_set_conf - use a reloaded configuration (site list). */
void metrics_http_set_conf(struct metrics_http *m, const struct conf *cf);
/* metrics_http_stop - close the listener and free m (NULL is fine). */
void metrics_http_stop(struct metrics_http *m);

/* metrics_http_etrn_status - count one ETRN outcome (an enum etrn_status). */
void metrics_http_etrn_status(int etrn_status);

/* metrics_http_render - the whole /metrics page into f (tests, queuectl). */
void metrics_http_render(FILE *f, const struct conf *cf, struct store *st);

#endif
