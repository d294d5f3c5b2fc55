/*
 * ctl_drain.c - "queuectl site drain" and the export writer shared with
 * "queuectl queue export".
 *
 * A drain pauses the site (STORE_SITE_PAUSED | STORE_SITE_DRAINING) and
 * then empties it in one of three ways:
 *   default     queued runs ETRN for every domain of the site (control
 *               socket DRAIN-START); queuectl watches the site's count.
 *   --move-to S every held domain of the site is re-homed to S (later mail
 *               follows), then every message moves with store_msg_move_site.
 *   --export D  every message is written to D (fsynced, listed in
 *               D/MANIFEST) and only then deleted from the queue.
 * Each message is handled in its own store call, so SIGINT (which only sets
 * a flag) stops between two messages: every message is in exactly one
 * place and running the same command again finishes the job.  Progress is
 * a bar redrawn in place on a terminal, else a plain line every 2 seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "ctl_client.h"
#include "ctl_nouns.h"
#include "xalloc.h"

#define CTL_EXIT_INTERRUPTED 130
#define CTL_DRAIN_STALL_SECS 60
#define CTL_BODY_CHUNK       (64 * 1024)

struct ctl_export {
    char *dir;
    int dirfd;
    FILE *manifest;       /* opened for append */
    store_msgid_t *done;  /* ids listed when opened, sorted */
    size_t ndone, listed; /* listed = ndone + written since */
};

/* ctl_progress - the progress display of one drain. */
struct ctl_progress {
    const char *what;
    size_t total, done;
    double start, last;
    bool tty;
};

enum ctl_drain_mode { CTL_DRAIN_ETRN = 0, CTL_DRAIN_MOVE, CTL_DRAIN_EXPORT };

static volatile sig_atomic_t ctl_drain_stop;

/* ctl_drain_sigint - SIGINT: finish the current message, then stop. */
static void ctl_drain_sigint(int sig)
{
    (void)sig;
    ctl_drain_stop = 1;
}

/* ctl_now - monotonic seconds. */
static double ctl_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ctl_id_cmp - qsort/bsearch order of message ids. */
static int ctl_id_cmp(const void *a, const void *b)
{
    store_msgid_t x = *(const store_msgid_t *)a, y = *(const store_msgid_t *)b;

    return x < y ? -1 : x > y;
}

/* ctl_export_load - the ids already in dir/MANIFEST. */
static void ctl_export_load(struct ctl_export *x, FILE *f)
{
    char line[4096], idtext[64];
    size_t cap = 0;
    store_msgid_t id;

    while (fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '#' || sscanf(line, "%63s", idtext) != 1 || !store_id_parse(idtext, &id))
            continue;
        if (x->ndone == cap) {
            cap = cap ? cap * 2 : 1024;
            x->done = xrealloc(x->done, cap * sizeof(*x->done));
        }
        x->done[x->ndone++] = id;
    }
    if (x->ndone > 1)
        qsort(x->done, x->ndone, sizeof(*x->done), ctl_id_cmp);
    x->listed = x->ndone;
}

/* ctl_export_open - create/resume an export directory. */
struct ctl_export *ctl_export_open(const char *dir)
{
    struct ctl_export *x;
    char *path;
    FILE *f;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "queuectl: cannot create %s: %s\n", dir, strerror(errno));
        return NULL;
    }
    x = xcalloc(1, sizeof(*x));
    x->dir = xstrdup(dir);
    x->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    path = xasprintf("%s/MANIFEST", dir);
    if ((f = fopen(path, "r")) != NULL) {
        ctl_export_load(x, f);
        fclose(f);
    }
    x->manifest = fopen(path, "a");
    free(path);
    if (x->dirfd < 0 || x->manifest == NULL) {
        fprintf(stderr, "queuectl: cannot write in %s: %s\n", dir, strerror(errno));
        ctl_export_close(x);
        return NULL;
    }
    if (x->ndone == 0 && ftell(x->manifest) == 0)
        fprintf(x->manifest, "# holdmx export: id file size recipients\n");
    return x;
}

/* ctl_export_count - messages listed in the manifest. */
size_t ctl_export_count(const struct ctl_export *x)
{
    return x->listed;
}

/* ctl_export_close - release x (the manifest is already synced per message). */
void ctl_export_close(struct ctl_export *x)
{
    if (x == NULL)
        return;
    if (x->manifest != NULL)
        fclose(x->manifest);
    if (x->dirfd >= 0)
        close(x->dirfd);
    free(x->done);
    free(x->dir);
    free(x);
}

/* ctl_export_wanted - recipient r is pending and in domain (if given). */
static bool ctl_export_wanted(const struct store_rcpt_info *r, const char *domain)
{
    if (r->state != STORE_RCPT_HELD && r->state != STORE_RCPT_LEASED)
        return false;
    return domain == NULL || strcasecmp(r->domain, domain) == 0;
}

/* ctl_export_body - envelope header lines, then the body, to f. */
static bool ctl_export_body(FILE *f, struct store *st, const struct store_msg_info *m,
                            const struct store_rcpt_info *r, size_t nr, const char *domain)
{
    char *buf = xmalloc(CTL_BODY_CHUNK);
    size_t got = 0, i;
    uint64_t off = 0;
    const char *eol = "\n";
    bool ok = true;

    if (store_body_read(st, m->id, 0, buf, CTL_BODY_CHUNK, &got) == STORE_OK && got > 0) {
        char *nl = memchr(buf, '\n', got);

        if (nl != NULL && nl > buf && nl[-1] == '\r')
            eol = "\r\n";
    }
    fprintf(f, "Return-Path: <%s>%s", m->sender, eol);
    for (i = 0; i < nr; i++)
        if (ctl_export_wanted(&r[i], domain))
            fprintf(f, "X-Envelope-To: <%s>%s", r[i].addr, eol);
    while (ok && got > 0) {
        ok = fwrite(buf, 1, got, f) == got;
        off += got;
        if (off >= m->size)
            break;
        ok = ok && store_body_read(st, m->id, off, buf, CTL_BODY_CHUNK, &got) == STORE_OK;
    }
    free(buf);
    return ok;
}

/* ctl_export_env - the JSON sidecar with the whole envelope. */
static bool ctl_export_env(FILE *f, const struct store_msg_info *m, const struct store_rcpt_info *r,
                           size_t nr, const char *domain)
{
    char t[32];
    size_t i;
    bool first = true;

    ctl_json_msg_open(f, m);
    fputs(",\"envid\":", f);
    ctl_json_str(f, m->envid);
    fprintf(f, ",\"ret\":\"%s\",\"body\":\"%s\",\"size\":%llu,\"arrival\":",
            m->ret == STORE_RET_FULL   ? "FULL"
            : m->ret == STORE_RET_HDRS ? "HDRS"
                                       : "",
            m->body_type == STORE_BODY_8BITMIME ? "8BITMIME" : "7BIT", (unsigned long long)m->size);
    ctl_json_str(f, ctl_iso_time(m->arrival, t, sizeof(t)));
    fputs(",\"client_addr\":", f);
    ctl_json_str(f, m->client_addr);
    fputs(",\"client_helo\":", f);
    ctl_json_str(f, m->client_helo);
    fputs(",\"recipients\":[", f);
    for (i = 0; i < nr; i++) {
        if (!ctl_export_wanted(&r[i], domain))
            continue;
        fputs(first ? "{\"address\":" : ",{\"address\":", f);
        first = false;
        ctl_json_str(f, r[i].addr);
        fputs(",\"orcpt\":", f);
        ctl_json_str(f, r[i].orcpt);
        fprintf(f, ",\"notify\":{\"never\":%s,\"success\":%s,\"failure\":%s,\"delay\":%s}",
                r[i].notify & STORE_NOTIFY_NEVER ? "true" : "false",
                r[i].notify & STORE_NOTIFY_SUCCESS ? "true" : "false",
                r[i].notify & STORE_NOTIFY_FAILURE ? "true" : "false",
                r[i].notify & STORE_NOTIFY_DELAY ? "true" : "false");
        fprintf(f, ",\"attempts\":%u}", r[i].attempts);
    }
    fputs("]}\n", f);
    return !ferror(f);
}

/* ctl_export_file - write NAME via NAME.tmp + fsync + rename. */
static bool ctl_export_file(struct ctl_export *x, const char *name, struct store *st,
                            const struct store_msg_info *m, const struct store_rcpt_info *r,
                            size_t nr, const char *domain, bool env)
{
    char *tmp = xasprintf("%s/%s.tmp", x->dir, name), *fin = xasprintf("%s/%s", x->dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = f != NULL;

    if (ok)
        ok = env ? ctl_export_env(f, m, r, nr, domain) : ctl_export_body(f, st, m, r, nr, domain);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f != NULL)
        ok = fclose(f) == 0 && ok;
    else if (fd >= 0)
        close(fd);
    ok = ok && rename(tmp, fin) == 0;
    if (!ok) {
        fprintf(stderr, "queuectl: cannot write %s: %s\n", fin, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(fin);
    return ok;
}

/* ctl_export_manifest - append and sync the manifest line of one message. */
static bool ctl_export_manifest(struct ctl_export *x, const struct store_msg_info *m,
                                const struct store_rcpt_info *r, size_t nr, const char *domain)
{
    char id[STORE_ID_LEN];
    size_t i;
    bool first = true;

    store_id_format(m->id, id);
    fprintf(x->manifest, "%s %s.eml %llu ", id, id, (unsigned long long)m->size);
    for (i = 0; i < nr; i++) {
        if (ctl_export_wanted(&r[i], domain)) {
            fprintf(x->manifest, "%s%s", first ? "" : ",", r[i].addr);
            first = false;
        }
    }
    fputc('\n', x->manifest);
    if (fflush(x->manifest) != 0 || fsync(fileno(x->manifest)) != 0) {
        fprintf(stderr, "queuectl: cannot write %s/MANIFEST: %s\n", x->dir, strerror(errno));
        return false;
    }
    x->listed++;
    return true;
}

/* ctl_export_msg - see ctl_nouns.h. */
int ctl_export_msg(struct ctl_export *x, struct store *st, store_msgid_t id, const char *domain)
{
    struct store_msg_info m;
    struct store_rcpt_info *r = NULL;
    size_t nr = 0, i, want = 0;
    char idb[STORE_ID_LEN], name[STORE_ID_LEN + 8];
    int rc;

    if (x->ndone > 0 && bsearch(&id, x->done, x->ndone, sizeof(id), ctl_id_cmp) != NULL)
        return 0;
    rc = store_msg_get(st, id, &m, &r, &nr);
    if (rc == STORE_NOTFOUND)
        return 1;
    if (rc != STORE_OK) {
        fprintf(stderr, "queuectl: %s: %s\n", store_id_format(id, idb), store_strerror(rc));
        return -1;
    }
    for (i = 0; i < nr; i++)
        want += ctl_export_wanted(&r[i], domain);
    rc = want == 0 ? 1 : 0;
    store_id_format(id, idb);
    if (rc == 0) {
        snprintf(name, sizeof(name), "%s.eml", idb);
        rc = ctl_export_file(x, name, st, &m, r, nr, domain, false) ? 0 : -1;
    }
    if (rc == 0) {
        snprintf(name, sizeof(name), "%s.env", idb);
        rc = ctl_export_file(x, name, st, &m, r, nr, domain, true) ? 0 : -1;
    }
    if (rc == 0 && (fsync(x->dirfd) != 0 || !ctl_export_manifest(x, &m, r, nr, domain)))
        rc = -1;
    free(r);
    return rc;
}

/* ctl_progress_draw - redraw the bar (tty) or print a periodic line. */
static void ctl_progress_draw(struct ctl_progress *p, bool final)
{
    double now = ctl_now(), el = now - p->start, rate = el > 0 ? (double)p->done / el : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    int width = 30, fill = p->total ? (int)((double)p->done * width / (double)p->total) : width;

    if (!final && now - p->last < (p->tty ? 0.1 : 2.0))
        return;
    p->last = now;
    if (p->tty) {
        fprintf(stderr, "\r%s [%-*.*s] %zu/%zu %6.0f msg/s ETA %d:%02d ", p->what, width, fill,
                "##############################", p->done, p->total, rate, (int)eta / 60,
                (int)eta % 60);
        if (final)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "drain: %zu/%zu messages, %.0f msg/s\n", p->done, p->total, rate);
    }
}

/* ctl_site_flags - set/clear flags of site directly in the store. */
static int ctl_site_flags(struct store *st, const char *site, unsigned set, unsigned clear)
{
    unsigned flags = 0;
    int rc = store_site_flags_get(st, site, &flags);

    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return rc;
    return store_site_flags_set(st, site, (flags | set) & ~clear);
}

/* ctl_rehome_ctx - collects the domains of one site. */
struct ctl_rehome_ctx {
    const char *site;
    struct store_domain *d;
    size_t n, cap;
};

/* ctl_rehome_cb - store_domain_iter: remember domains of the site. */
static int ctl_rehome_cb(const struct store_domain *d, void *arg)
{
    struct ctl_rehome_ctx *c = arg;

    if (strcmp(d->site, c->site) != 0)
        return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->d = xrealloc(c->d, c->cap * sizeof(*c->d));
    }
    c->d[c->n++] = *d;
    return 0;
}

/* ctl_drain_rehome - move the held domains of site to target; count or -1. */
static long ctl_drain_rehome(struct store *st, const char *site, const char *target)
{
    struct ctl_rehome_ctx c = {site, NULL, 0, 0};
    size_t i;
    long n = 0;

    if (store_domain_iter(st, ctl_rehome_cb, &c) != STORE_OK) {
        free(c.d);
        return -1;
    }
    for (i = 0; i < c.n; i++) {
        snprintf(c.d[i].site, sizeof(c.d[i].site), "%s", target);
        if (store_domain_put(st, &c.d[i], false) == STORE_OK)
            n++;
        else
            fprintf(stderr, "queuectl: could not re-home domain %s to %s\n", c.d[i].name, target);
    }
    free(c.d);
    return n;
}

/* ctl_drain_messages - move or export+delete every collected message. */
static int ctl_drain_messages(struct store *st, const struct ctl_ids *ids, enum ctl_drain_mode mode,
                              const char *arg, struct ctl_export *x, struct ctl_progress *p)
{
    size_t i;

    for (i = 0; i < ids->n && !ctl_drain_stop; i++) {
        int rc;

        if (mode == CTL_DRAIN_MOVE) {
            rc = store_msg_move_site(st, ids->id[i], arg);
        } else {
            rc = ctl_export_msg(x, st, ids->id[i], NULL);
            if (rc < 0)
                return EX_CANTCREAT;
            rc = store_msg_delete(st, ids->id[i]);
        }
        if (rc != STORE_OK && rc != STORE_NOTFOUND) {
            fprintf(stderr, "\nqueuectl: stopped: %s\n", store_strerror(rc));
            return EX_IOERR;
        }
        p->done++;
        ctl_progress_draw(p, false);
    }
    return ctl_drain_stop ? CTL_EXIT_INTERRUPTED : 0;
}

/* ctl_drain_local - --move-to / --export: done by queuectl in the store. */
static int ctl_drain_local(const struct conf *cf, const char *site, enum ctl_drain_mode mode,
                           const char *arg, struct ctl_progress *p)
{
    struct store_filter f = {site, NULL, false};
    struct ctl_export *x = NULL;
    struct ctl_ids ids = {0};
    struct store *st;
    int rc = ctl_store_open(cf, false, &st);

    if (rc != 0)
        return rc;
    if (mode == CTL_DRAIN_EXPORT && (x = ctl_export_open(arg)) == NULL) {
        store_close(st);
        return EX_CANTCREAT;
    }
    rc = ctl_site_flags(st, site, STORE_SITE_PAUSED | STORE_SITE_DRAINING, 0);
    if (rc == STORE_OK && mode == CTL_DRAIN_MOVE) {
        long n = ctl_drain_rehome(st, site, arg);

        if (n > 0)
            fprintf(stderr, "drain: %ld held domain%s now on site %s\n", n, n == 1 ? "" : "s", arg);
    }
    if (rc == STORE_OK)
        rc = ctl_ids_collect(st, &f, &ids);
    if (rc != STORE_OK) {
        fprintf(stderr, "queuectl: drain of %s: %s\n", site, store_strerror(rc));
        rc = EX_IOERR;
    } else {
        p->total = ids.n;
        p->start = p->last = ctl_now();
        rc = ctl_drain_messages(st, &ids, mode, arg, x, p);
        ctl_progress_draw(p, true);
    }
    if (rc == 0)
        ctl_site_flags(st, site, STORE_SITE_PAUSED, STORE_SITE_DRAINING);
    ctl_ids_free(&ids);
    ctl_export_close(x);
    store_close(st);
    return rc;
}

/* ctl_drain_count - messages now held on site (readonly peek); -1 on error. */
static long ctl_drain_count(struct store *st, const char *site)
{
    struct store_counts c;

    return store_site_counts(st, site, &c) == STORE_OK ? (long)c.messages : -1;
}

/* ctl_drain_kick - DRAIN-START through the control socket; sysexits code. */
static int ctl_drain_kick(const struct conf *cf, const char *site, bool quiet)
{
    char req[STORE_SITE_MAX + 16], reply[512];
    int rc;

    snprintf(req, sizeof(req), "DRAIN-START %s", site);
    rc = ctl_client_call(cf, req, reply, sizeof(reply), 10000);
    if (rc == CTL_CALL_DOWN) {
        fprintf(stderr, "queuectl: queued is not running, and a drain without --move-to or "
                        "--export delivers through it: start queued, or use --move-to SITE "
                        "or --export DIR\n");
        return EX_UNAVAILABLE;
    }
    if (rc != CTL_CALL_OK || !ctl_client_ok(reply)) {
        fprintf(stderr, "queuectl: queued refused the drain: %s\n",
                rc == CTL_CALL_OK ? reply : "no answer in time");
        return EX_TEMPFAIL;
    }
    if (!quiet)
        fprintf(stderr, "drain: delivery runs started (%s)\n", reply + 3);
    return 0;
}

/* ctl_drain_etrn - default mode: queued delivers; we watch the count. */
static int ctl_drain_etrn(const struct conf *cf, const char *site, struct ctl_progress *p)
{
    double last_progress, last_kick;
    long left, prev;
    struct store *st;
    int rc = ctl_drain_kick(cf, site, false);

    if (rc != 0 || (rc = ctl_store_open(cf, true, &st)) != 0)
        return rc;
    prev = ctl_drain_count(st, site);
    p->total = prev > 0 ? (size_t)prev : 0;
    p->start = p->last = last_progress = last_kick = ctl_now();
    while ((left = ctl_drain_count(st, site)) > 0 && !ctl_drain_stop) {
        double now = ctl_now();

        if (left < prev)
            last_progress = now;
        prev = left;
        p->done = p->total > (size_t)left ? p->total - (size_t)left : 0;
        ctl_progress_draw(p, false);
        if (now - last_progress > CTL_DRAIN_STALL_SECS)
            break;
        if (now - last_kick > 15 && now - last_progress > 15) {
            ctl_drain_kick(cf, site, true);
            last_kick = now;
        }
        usleep(200 * 1000);
    }
    p->done = left > 0 && p->total > (size_t)left ? p->total - (size_t)left : p->total;
    ctl_progress_draw(p, true);
    store_close(st);
    if (ctl_drain_stop)
        return CTL_EXIT_INTERRUPTED;
    if (left == 0) {
        char req[STORE_SITE_MAX + 16], reply[256];

        snprintf(req, sizeof(req), "DRAIN-END %s", site);
        ctl_client_call(cf, req, reply, sizeof(reply), 5000);
    }
    if (left != 0) {
        fprintf(stderr,
                "queuectl: %ld message%s still held on site %s: deliveries stopped "
                "making progress (customers offline?). Run the drain again later, or "
                "use --move-to SITE or --export DIR\n",
                left, left == 1 ? "" : "s", site);
        return EX_TEMPFAIL;
    }
    return 0;
}

/* ctl_drain_args - parse NAME [--move-to SITE | --export DIR]. */
static int ctl_drain_args(const struct conf *cf, int argc, char **argv, enum ctl_drain_mode *mode,
                          const char **arg)
{
    const char *to = ctl_opt_value(argc, argv, 3, "--move-to");
    const char *dir = ctl_opt_value(argc, argv, 3, "--export");

    if (argc < 3 || argv[2][0] == '-' || (to != NULL && dir != NULL)) {
        fprintf(stderr, "usage: queuectl site drain NAME [--move-to SITE | --export DIR]\n");
        return EX_USAGE;
    }
    *mode = to != NULL ? CTL_DRAIN_MOVE : dir != NULL ? CTL_DRAIN_EXPORT : CTL_DRAIN_ETRN;
    *arg = to != NULL ? to : dir;
    if (to != NULL && (strcmp(to, argv[2]) == 0 || conf_site_find(cf, to) == NULL)) {
        fprintf(stderr,
                "queuectl: --move-to %s: the target must be another site configured in "
                "%s (see queuectl site list)\n",
                to, cf->path);
        return EX_USAGE;
    }
    if (strlen(argv[2]) >= STORE_SITE_MAX) {
        fprintf(stderr, "queuectl: site name too long\n");
        return EX_USAGE;
    }
    return 0;
}

/* ctl_site_drain - "site drain NAME [--move-to SITE | --export DIR]". */
int ctl_site_drain(const struct conf *cf, int argc, char **argv)
{
    struct ctl_progress p = {"drain", 0, 0, 0, 0, isatty(STDERR_FILENO) == 1};
    struct sigaction sa, old;
    enum ctl_drain_mode mode;
    const char *arg = NULL, *site;
    int rc = ctl_drain_args(cf, argc, argv, &mode, &arg);

    if (rc != 0)
        return rc;
    site = argv[2];
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ctl_drain_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    ctl_drain_stop = 0;
    if (mode == CTL_DRAIN_ETRN)
        rc = ctl_drain_etrn(cf, site, &p);
    else
        rc = ctl_drain_local(cf, site, mode, arg, &p);
    sigaction(SIGINT, &old, NULL);
    if (rc == CTL_EXIT_INTERRUPTED)
        fprintf(stderr,
                "drain: interrupted after %zu of %zu messages; site %s stays paused. "
                "Run the same command again to finish\n",
                p.done, p.total, site);
    else if (rc == 0)
        printf("drain: site %s is empty and paused (%zu message%s %s). %s%s%sTo reopen it: "
               "queuectl site resume %s\n",
               site, p.done, p.done == 1 ? "" : "s",
               mode == CTL_DRAIN_MOVE     ? "moved"
               : mode == CTL_DRAIN_EXPORT ? "exported"
                                          : "delivered",
               strcmp(site, "default") != 0 ? "To retire it: queuectl site delete " : "",
               strcmp(site, "default") != 0 ? site : "", strcmp(site, "default") != 0 ? ". " : "",
               site);
    return rc;
}
