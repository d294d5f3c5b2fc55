/*
 * metrics.h - process-global counters, gauges and one histogram for
 * Prometheus.
 *
 * Every daemon process has its own set (plain integers: the daemons are
 * single-threaded event loops).  queued exposes its set on /metrics
 * (queued/metrics_http.c); turnd pushes its counter deltas and its ODMR
 * session gauge to queued with the control socket verb STATS (the line
 * format is made and checked here, see metrics_stats_format/apply).
 * Nothing here allocates; metrics_write() renders the text exposition
 * format 0.0.4 (holdmx_ prefix, _total suffix on counters).
 */
#ifndef HM_METRICS_H
#define HM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* metric_id - the counters. */
enum metric_id {
    METRIC_ACCEPTED_MESSAGES = 0, /* messages committed after DATA */
    METRIC_ACCEPTED_BYTES,        /* their sizes */
    METRIC_DELIVERED_RCPTS,       /* recipients delivered (2xx) */
    METRIC_DEFERRED_RCPTS,        /* recipients deferred (4xx / lost) */
    METRIC_BOUNCED_RCPTS,         /* recipients failed (5xx, expiry, operator) */
    METRIC_ETRN_STARTED,          /* ETRN requests by outcome */
    METRIC_ETRN_NOTHING,
    METRIC_ETRN_RUNNING,
    METRIC_ETRN_DENIED,
    METRIC_ETRN_RATE,
    METRIC_ETRN_ERROR,
    METRIC_ATRN_250, /* ATRN requests by reply code */
    METRIC_ATRN_450,
    METRIC_ATRN_451,
    METRIC_ATRN_453,
    METRIC_ATRN_530,
    METRIC_ATRN_501,
    METRIC_AUTH_FAILURES, /* failed SASL authentications */
    METRIC_COUNT
};

/* metric_proto - protocols whose open sessions are a gauge. */
enum metric_proto {
    METRIC_PROTO_SMTP = 0,
    METRIC_PROTO_ODMR,
    METRIC_PROTO_CONTROL,
    METRIC_PROTO_COUNT
};

/* metrics_inc - add one to counter id. */
void metrics_inc(enum metric_id id);
/* metrics_add - add n to counter id. */
void metrics_add(enum metric_id id, uint64_t n);
/* metrics_get - current value of counter id (tests, queuectl). */
uint64_t metrics_get(enum metric_id id);
/* metrics_atrn_reply - count one ATRN reply code (250/450/451/453/530/501). */
void metrics_atrn_reply(int code);
/* metrics_observe_commit - one store commit that took seconds. */
void metrics_observe_commit(double seconds);
/* metrics_session_open / metrics_session_close - the open-sessions gauge. */
void metrics_session_open(enum metric_proto proto);
void metrics_session_close(enum metric_proto proto);
/* metrics_sessions - current value of the open-sessions gauge of proto. */
int64_t metrics_sessions(enum metric_proto proto);
/* metrics_session_set - set the gauge of proto (a value pushed by another process). */
void metrics_session_set(enum metric_proto proto, int64_t n);

/* STATS lines: "name=value name=value ..." (names: metrics_stat_name, "sessions_<proto>"). */
#define METRICS_STATS_DELTA_MAX 1000000000000ULL /* largest counter delta in one line */
#define METRICS_STATS_GAUGE_MAX 1000000ULL       /* largest gauge value */

/* metrics_stat_name - the STATS name of counter id ("auth_failures", "atrn_250"), or NULL. */
const char *metrics_stat_name(enum metric_id id);
/*
 * metrics_stats_apply - check every word of args (counter deltas by STATS
 * name; "sessions_<proto>=N" absolute, only for protos in gauge_mask, bit
 * 1u << proto) and, only when all are valid, add/set them.  Unknown or
 * repeated names, non-decimal or too large values give false and a short
 * reason in err; nothing is applied then.
 */
bool metrics_stats_apply(const char *args, unsigned gauge_mask, char *err, size_t errlen);
/*
 * metrics_stats_format - the words of a STATS line into buf (NUL-terminated,
 * without "STATS "): "sessions_<gauge_proto>=N" first (gauge_proto
 * METRIC_PROTO_COUNT = none), then "name=delta" for every counter whose
 * value differs from base[id].  Words that do not fit are left out.
 * sent[id] receives the value each counter is reported at (base[id] when
 * left out); after the receiver said OK, copy sent into base.  Returns
 * strlen(buf).
 */
size_t metrics_stats_format(char *buf, size_t len, const uint64_t *base, uint64_t *sent,
                            int gauge_proto);

/* metrics_reset - every value back to zero (tests). */
void metrics_reset(void);

/* metrics_write - the process's metrics in Prometheus text format to f. */
void metrics_write(FILE *f);

#endif
