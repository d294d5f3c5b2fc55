/*
 * metrics.c - the process-global metric values and their Prometheus text.
 *
 * One static struct holds everything; the daemons are single-threaded so
 * the functions need no locking.  Names, help texts and labels come from
 * the tables below so the exposition and the enum cannot drift apart.
 */
#include "metrics.h"

#include <string.h>

#define METRICS_NBUCKETS 9

/* metrics_counter_desc - how one counter is exposed. */
struct metrics_counter_desc {
    const char *family; /* without holdmx_ and _total */
    const char *help;
    const char *label; /* "name=\"value\"" or NULL */
};

static const struct metrics_counter_desc metrics_counters[METRIC_COUNT] = {
    [METRIC_ACCEPTED_MESSAGES] = {"accepted_messages", "Messages accepted and committed.", NULL},
    [METRIC_ACCEPTED_BYTES] = {"accepted_bytes", "Bytes of accepted messages.", NULL},
    [METRIC_DELIVERED_RCPTS] = {"delivered_recipients", "Recipients delivered.", NULL},
    [METRIC_DEFERRED_RCPTS] = {"deferred_recipients", "Recipient delivery attempts deferred.",
                               NULL},
    [METRIC_BOUNCED_RCPTS] = {"bounced_recipients", "Recipients failed (bounced).", NULL},
    [METRIC_ETRN_STARTED] = {"etrn_requests", "ETRN requests by outcome.", "outcome=\"started\""},
    [METRIC_ETRN_NOTHING] = {"etrn_requests", NULL, "outcome=\"nothing\""},
    [METRIC_ETRN_RUNNING] = {"etrn_requests", NULL, "outcome=\"running\""},
    [METRIC_ETRN_DENIED] = {"etrn_requests", NULL, "outcome=\"denied\""},
    [METRIC_ETRN_RATE] = {"etrn_requests", NULL, "outcome=\"rate\""},
    [METRIC_ETRN_ERROR] = {"etrn_requests", NULL, "outcome=\"error\""},
    [METRIC_ATRN_250] = {"atrn_requests", "ATRN requests by reply code.", "code=\"250\""},
    [METRIC_ATRN_450] = {"atrn_requests", NULL, "code=\"450\""},
    [METRIC_ATRN_451] = {"atrn_requests", NULL, "code=\"451\""},
    [METRIC_ATRN_453] = {"atrn_requests", NULL, "code=\"453\""},
    [METRIC_ATRN_530] = {"atrn_requests", NULL, "code=\"530\""},
    [METRIC_ATRN_501] = {"atrn_requests", NULL, "code=\"501\""},
    [METRIC_AUTH_FAILURES] = {"auth_failures", "Failed SASL authentications.", NULL},
};

static const char *const metrics_proto_names[METRIC_PROTO_COUNT] = {"smtp", "odmr", "control"};

/* upper bounds of the commit latency buckets, in seconds */
static const double metrics_bounds[METRICS_NBUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.010,
                                                        0.025,  0.050, 0.100, 0.250};

static struct {
    uint64_t counter[METRIC_COUNT];
    int64_t sessions[METRIC_PROTO_COUNT];
    uint64_t bucket[METRICS_NBUCKETS]; /* non-cumulative */
    uint64_t commits;
    double commit_sum;
} metrics_v;

/* metrics_inc - add one to counter id. */
void metrics_inc(enum metric_id id)
{
    metrics_add(id, 1);
}

/* metrics_add - add n to counter id (out-of-range ids are ignored). */
void metrics_add(enum metric_id id, uint64_t n)
{
    if ((unsigned)id < METRIC_COUNT)
        metrics_v.counter[id] += n;
}

/* metrics_get - current value of counter id. */
uint64_t metrics_get(enum metric_id id)
{
    return (unsigned)id < METRIC_COUNT ? metrics_v.counter[id] : 0;
}

/* metrics_atrn_reply - map an ATRN reply code to its counter. */
void metrics_atrn_reply(int code)
{
    static const int codes[] = {250, 450, 451, 453, 530, 501};
    size_t i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i] == code)
            metrics_inc((enum metric_id)(METRIC_ATRN_250 + i));
}

/* metrics_observe_commit - put one commit duration into the histogram. */
void metrics_observe_commit(double seconds)
{
    int i;

    if (!(seconds >= 0))
        seconds = 0;
    metrics_v.commits++;
    metrics_v.commit_sum += seconds;
    for (i = 0; i < METRICS_NBUCKETS; i++) {
        if (seconds <= metrics_bounds[i]) {
            metrics_v.bucket[i]++;
            break;
        }
    }
}

/* metrics_session_open - one more open session of proto. */
void metrics_session_open(enum metric_proto proto)
{
    if ((unsigned)proto < METRIC_PROTO_COUNT)
        metrics_v.sessions[proto]++;
}

/* metrics_session_close - one session of proto ended (never below zero). */
void metrics_session_close(enum metric_proto proto)
{
    if ((unsigned)proto < METRIC_PROTO_COUNT && metrics_v.sessions[proto] > 0)
        metrics_v.sessions[proto]--;
}

/* metrics_reset - every value back to zero. */
void metrics_reset(void)
{
    memset(&metrics_v, 0, sizeof(metrics_v));
}

/* metrics_write_counters - the counter families with HELP/TYPE once each. */
static void metrics_write_counters(FILE *f)
{
    int i;

    for (i = 0; i < METRIC_COUNT; i++) {
        const struct metrics_counter_desc *d = &metrics_counters[i];

        if (d->help != NULL) {
            fprintf(f, "# HELP holdmx_%s_total %s\n", d->family, d->help);
            fprintf(f, "# TYPE holdmx_%s_total counter\n", d->family);
        }
        if (d->label != NULL)
            fprintf(f, "holdmx_%s_total{%s} %llu\n", d->family, d->label,
                    (unsigned long long)metrics_v.counter[i]);
        else
            fprintf(f, "holdmx_%s_total %llu\n", d->family,
                    (unsigned long long)metrics_v.counter[i]);
    }
}

/* metrics_write_sessions - the open sessions gauge per protocol. */
static void metrics_write_sessions(FILE *f)
{
    int i;

    fprintf(f, "# HELP holdmx_sessions_open Sessions currently open, by protocol.\n");
    fprintf(f, "# TYPE holdmx_sessions_open gauge\n");
    for (i = 0; i < METRIC_PROTO_COUNT; i++)
        fprintf(f, "holdmx_sessions_open{proto=\"%s\"} %lld\n", metrics_proto_names[i],
                (long long)metrics_v.sessions[i]);
}

/* metrics_write_histogram - the commit latency histogram (cumulative buckets). */
static void metrics_write_histogram(FILE *f)
{
    uint64_t cum = 0;
    int i;

    fprintf(f, "# HELP holdmx_commit_seconds Latency of queue store commits.\n");
    fprintf(f, "# TYPE holdmx_commit_seconds histogram\n");
    for (i = 0; i < METRICS_NBUCKETS; i++) {
        cum += metrics_v.bucket[i];
        fprintf(f, "holdmx_commit_seconds_bucket{le=\"%g\"} %llu\n", metrics_bounds[i],
                (unsigned long long)cum);
    }
    fprintf(f, "holdmx_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
            (unsigned long long)metrics_v.commits);
    fprintf(f, "holdmx_commit_seconds_sum %.9g\n", metrics_v.commit_sum);
    fprintf(f, "holdmx_commit_seconds_count %llu\n", (unsigned long long)metrics_v.commits);
}

/* metrics_write - everything this process counts, in exposition format 0.0.4. */
void metrics_write(FILE *f)
{
    metrics_write_counters(f);
    metrics_write_sessions(f);
    metrics_write_histogram(f);
}
