/*
 * metrics.c - the process-global metric values and their Prometheus text.
 *
 * One static struct holds everything; the daemons are single-threaded so
 * the functions need no locking.  Names, help texts and labels come from
 * the tables below so the exposition and the enum cannot drift apart.
 *
 * STATS lines carry one process's values to another (turnd pushes its
 * counters to queued over the control socket): metrics_stats_format()
 * writes "name=delta" words for what changed since a base snapshot,
 * metrics_stats_apply() validates a whole line against the same table and
 * adds it all or nothing.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_NBUCKETS 9

/* metrics_counter_desc - how one counter is exposed. */
struct metrics_counter_desc {
    const char *family; /* without holdmx_ and _total */
    const char *help;
    const char *label; /* "name=\"value\"" or NULL */
    const char *stat;  /* name in a control-socket STATS line */
};

static const struct metrics_counter_desc metrics_counters[METRIC_COUNT] = {
    [METRIC_ACCEPTED_MESSAGES] = {"accepted_messages", "Messages accepted and committed.", NULL,
                                  "accepted_messages"},
    [METRIC_ACCEPTED_BYTES] = {"accepted_bytes", "Bytes of accepted messages.", NULL,
                               "accepted_bytes"},
    [METRIC_DELIVERED_RCPTS] = {"delivered_recipients", "Recipients delivered.", NULL,
                                "delivered_recipients"},
    [METRIC_DEFERRED_RCPTS] = {"deferred_recipients", "Recipient delivery attempts deferred.", NULL,
                               "deferred_recipients"},
    [METRIC_BOUNCED_RCPTS] = {"bounced_recipients", "Recipients failed (bounced).", NULL,
                              "bounced_recipients"},
    [METRIC_ETRN_STARTED] = {"etrn_requests", "ETRN requests by outcome.", "outcome=\"started\"",
                             "etrn_started"},
    [METRIC_ETRN_NOTHING] = {"etrn_requests", NULL, "outcome=\"nothing\"", "etrn_nothing"},
    [METRIC_ETRN_RUNNING] = {"etrn_requests", NULL, "outcome=\"running\"", "etrn_running"},
    [METRIC_ETRN_DENIED] = {"etrn_requests", NULL, "outcome=\"denied\"", "etrn_denied"},
    [METRIC_ETRN_RATE] = {"etrn_requests", NULL, "outcome=\"rate\"", "etrn_rate"},
    [METRIC_ETRN_ERROR] = {"etrn_requests", NULL, "outcome=\"error\"", "etrn_error"},
    [METRIC_ATRN_250] = {"atrn_requests", "ATRN requests by reply code.", "code=\"250\"",
                         "atrn_250"},
    [METRIC_ATRN_450] = {"atrn_requests", NULL, "code=\"450\"", "atrn_450"},
    [METRIC_ATRN_451] = {"atrn_requests", NULL, "code=\"451\"", "atrn_451"},
    [METRIC_ATRN_453] = {"atrn_requests", NULL, "code=\"453\"", "atrn_453"},
    [METRIC_ATRN_530] = {"atrn_requests", NULL, "code=\"530\"", "atrn_530"},
    [METRIC_ATRN_501] = {"atrn_requests", NULL, "code=\"501\"", "atrn_501"},
    [METRIC_AUTH_FAILURES] = {"auth_failures", "Failed SASL authentications.", NULL,
                              "auth_failures"},
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

/* metrics_sessions - current open sessions of proto (0 when out of range). */
int64_t metrics_sessions(enum metric_proto proto)
{
    return (unsigned)proto < METRIC_PROTO_COUNT ? metrics_v.sessions[proto] : 0;
}

/* metrics_session_set - the gauge of proto as reported by another process. */
void metrics_session_set(enum metric_proto proto, int64_t n)
{
    if ((unsigned)proto < METRIC_PROTO_COUNT)
        metrics_v.sessions[proto] = n < 0 ? 0 : n;
}

/* metrics_stat_name - the STATS name of counter id, or NULL. */
const char *metrics_stat_name(enum metric_id id)
{
    return (unsigned)id < METRIC_COUNT ? metrics_counters[id].stat : NULL;
}

/* metrics_stats_number - a decimal value <= max from [p, p + n); false if not one. */
static bool metrics_stats_number(const char *p, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        if (v > (max - (uint64_t)(p[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

/* metrics_stats_slot - index of name: counters first, then the gauges; -1 if unknown. */
static int metrics_stats_slot(const char *name, size_t n, unsigned gauge_mask)
{
    for (int i = 0; i < METRIC_COUNT; i++)
        if (strlen(metrics_counters[i].stat) == n && memcmp(metrics_counters[i].stat, name, n) == 0)
            return i;
    for (int i = 0; i < METRIC_PROTO_COUNT; i++) {
        size_t pl = strlen(metrics_proto_names[i]);

        if ((gauge_mask & (1u << i)) && n == 9 + pl && memcmp(name, "sessions_", 9) == 0 &&
            memcmp(name + 9, metrics_proto_names[i], pl) == 0)
            return METRIC_COUNT + i;
    }
    return -1;
}

/* metrics_stats_word - parse one "name=value" of length n into slot/value; false + err. */
static bool metrics_stats_word(const char *w, size_t n, unsigned gauge_mask, int *slot,
                               uint64_t *value, char *err, size_t errlen)
{
    const char *eq = memchr(w, '=', n);
    size_t nl = eq != NULL ? (size_t)(eq - w) : n;

    *slot = eq != NULL ? metrics_stats_slot(w, nl, gauge_mask) : -1;
    if (*slot < 0) {
        snprintf(err, errlen, "unknown metric %.*s", (int)(nl > 64 ? 64 : nl), w);
        return false;
    }
    if (!metrics_stats_number(
            eq + 1, n - nl - 1,
            *slot < METRIC_COUNT ? METRICS_STATS_DELTA_MAX : METRICS_STATS_GAUGE_MAX, value)) {
        snprintf(err, errlen, "bad value for %.*s", (int)nl, w);
        return false;
    }
    return true;
}

/* metrics_stats_apply - validate a whole STATS argument list, then apply it. */
bool metrics_stats_apply(const char *args, unsigned gauge_mask, char *err, size_t errlen)
{
    enum { NSLOTS = METRIC_COUNT + METRIC_PROTO_COUNT };
    uint64_t val[NSLOTS];
    bool seen[NSLOTS] = {false};
    const char *p = args;
    size_t words = 0;

    for (size_t guard = 0; *p != '\0' && guard < NSLOTS + 1; guard++) {
        size_t n;
        int slot;
        uint64_t v;

        p += strspn(p, " ");
        n = strcspn(p, " ");
        if (n == 0)
            break;
        words++;
        if (!metrics_stats_word(p, n, gauge_mask, &slot, &v, err, errlen))
            return false;
        if (seen[slot]) {
            snprintf(err, errlen, "metric %.*s given twice", (int)n, p);
            return false;
        }
        seen[slot] = true;
        val[slot] = v;
        p += n;
    }
    if (words == 0 || *p != '\0') {
        snprintf(err, errlen, words == 0 ? "no values" : "too many values");
        return false;
    }
    for (int i = 0; i < NSLOTS; i++) {
        if (!seen[i])
            continue;
        if (i < METRIC_COUNT)
            metrics_add((enum metric_id)i, val[i]);
        else
            metrics_session_set((enum metric_proto)(i - METRIC_COUNT), (int64_t)val[i]);
    }
    return true;
}

/* metrics_stats_gauge - "sessions_<proto>=N" (clamped to what a receiver accepts) into buf. */
static size_t metrics_stats_gauge(char *buf, size_t len, int proto)
{
    int64_t v = metrics_v.sessions[proto];
    int n;

    if (v > (int64_t)METRICS_STATS_GAUGE_MAX)
        v = (int64_t)METRICS_STATS_GAUGE_MAX;
    n = snprintf(buf, len, "sessions_%s=%" PRId64, metrics_proto_names[proto], v);
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

/* metrics_stats_format - "name=delta ..." of counters changed since base; see metrics.h. */
size_t metrics_stats_format(char *buf, size_t len, const uint64_t *base, uint64_t *sent,
                            int gauge_proto)
{
    size_t used = 0;

    if (len == 0)
        return 0;
    buf[0] = '\0';
    if ((unsigned)gauge_proto < METRIC_PROTO_COUNT)
        used = metrics_stats_gauge(buf, len, gauge_proto);
    for (int i = 0; i < METRIC_COUNT; i++) {
        uint64_t d = metrics_v.counter[i] - base[i];
        int n;

        sent[i] = metrics_v.counter[i] < base[i] ? metrics_v.counter[i] : base[i]; /* reset */
        if (metrics_v.counter[i] <= base[i])
            continue;
        if (d > METRICS_STATS_DELTA_MAX)
            d = METRICS_STATS_DELTA_MAX;
        n = snprintf(buf + used, len - used, "%s%s=%" PRIu64, used ? " " : "",
                     metrics_counters[i].stat, d);
        if (n < 0 || (size_t)n >= len - used) {
            buf[used] = '\0'; /* does not fit: left for the next line */
            continue;
        }
        used += (size_t)n;
        sent[i] = base[i] + d;
    }
    return used;
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
