/*
 * queued.c - the holdmx queue daemon: main program.
 *
 * queued [-c FILE] [-t] [-f] [-v] [-h]
 *
 * Loads holdmx.conf, opens the LMDB store, starts the ETRN/queue-manager
 * engine, binds every site's SMTP listeners and (when start_turnd = yes)
 * starts and supervises turnd.  Signals: SIGTERM/SIGINT stop (listeners
 * closed, pending commits finished, sessions told 421, store closed, exit
 * 0); SIGHUP reloads the configuration, keeping the old one when the new
 * one is invalid or would drop a site that still holds mail.
 *
 * Ownership: main owns the conf (the first one stays alive until exit,
 * because turnd supervision keeps it), the store, the engine, the smtpd
 * server and the listener set; everything is freed before exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "ctl_server.h"
#include "etrn.h"
#include "log.h"
#include "metrics_http.h"
#include "smtpd.h"
#include "store.h"
#include "supervise.h"
#include "xalloc.h"

#define QUEUED_DEFAULT_CONF "/etc/holdmx/holdmx.conf"
#define QUEUED_TICK_SECS    5
#define QUEUED_DRAIN_MS     100 /* shutdown polls sessions this often ... */
#define QUEUED_DRAIN_POLLS  50  /* ... at most this many times */

struct queued {
    struct event_base *base;
    char conf_path[PATH_MAX];
    struct conf *cf;      /* current configuration */
    struct conf *boot_cf; /* the first one (turnd supervision keeps it) */
    struct store *st;
    struct etrn_engine *etrn;
    struct smtpd *sd;
    struct listen_set *ls;
    struct ctl_server *ctl;
    struct metrics_http *metrics;
    struct event *tick_ev, *drain_ev;
    struct event *sig_term, *sig_int, *sig_hup;
    int drain_polls;
    bool turnd;
};

/* queued_usage - the synopsis on stderr. */
static void queued_usage(FILE *fp)
{
    fprintf(fp, "usage: queued [-c FILE] [-t] [-f] [-v] [-h]\n"
                "  -c FILE  configuration file (default " QUEUED_DEFAULT_CONF ")\n"
                "  -t       check the configuration and exit (0 valid, 78 invalid)\n"
                "  -f       stay in the foreground, log to stderr\n"
                "  -v       more verbose logging (repeat for more)\n"
                "  -h       this help\n");
}

/* queued_conf_load - a new heap conf from path; NULL (problems on errs) when invalid. */
static struct conf *queued_conf_load(const char *path, FILE *errs)
{
    struct conf *cf = xcalloc(1, sizeof(*cf));

    if (conf_load(path, cf, errs) != 0) {
        conf_free(cf);
        free(cf);
        return NULL;
    }
    return cf;
}

/* queued_conf_drop - free a conf unless it is the boot one. */
static void queued_conf_drop(struct queued *q, struct conf *cf)
{
    if (cf == NULL || cf == q->boot_cf)
        return;
    conf_free(cf);
    free(cf);
}

/* queued_mkdirs - create dir and its parents (mode 0700 for new ones). */
static int queued_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    size_t i, n = strlen(dir);

    if (n == 0 || n >= sizeof(path))
        return -1;
    memcpy(path, dir, n + 1);
    for (i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -1;
        path[i] = i < n ? '/' : '\0';
    }
    return 0;
}

/* queued_tick - the periodic queue manager step. */
static void queued_tick(evutil_socket_t fd, short what, void *arg)
{
    struct queued *q = arg;
    int cleared = 0;

    (void)fd;
    (void)what;
    if (q->etrn != NULL)
        etrn_qmgr_tick(q->etrn);
    if (store_reader_check(q->st, &cleared) == STORE_OK && cleared > 0)
        log_info("cleared %d stale LMDB reader slots", cleared);
}

/* queued_sites_kept - false (and logged) when cf drops a site that still holds mail. */
static bool queued_sites_kept(struct queued *q, const struct conf *ncf)
{
    bool ok = true;
    int i;

    for (i = 0; i < q->cf->nsites; i++) {
        const char *name = q->cf->sites[i].name;
        struct store_counts c;

        if (conf_site_find(ncf, name) != NULL)
            continue;
        if (store_site_counts(q->st, name, &c) == STORE_OK && c.messages > 0) {
            log_error("reload refused: site %s still holds %llu messages (hint: queuectl site "
                      "drain %s first)",
                      name, (unsigned long long)c.messages, name);
            ok = false;
        }
    }
    return ok;
}

/* queued_log_problems - each line of a conf_load error text as one log line. */
static void queued_log_problems(const char *text)
{
    const char *p = text;

    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, "\n");
        log_error("reload: %.*s", (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
}

/* queued_reload_apply - switch every component to ncf; false (nothing changed) on failure. */
static bool queued_reload_apply(struct queued *q, struct conf *ncf)
{
    struct listen_set *ls;
    char err[512] = "";

    if (strcmp(ncf->state_dir, q->cf->state_dir) != 0)
        log_warn("reload: state_dir change needs a restart; still using %s", q->cf->state_dir);
    if (smtpd_set_conf(q->sd, ncf, err, sizeof(err)) < 0) {
        log_error("reload refused: %s", err);
        return false;
    }
    ls = listen_open(q->base, ncf, q->sd, q->ls, err, sizeof(err));
    if (ls == NULL) {
        log_error("reload refused: %s", err);
        if (smtpd_set_conf(q->sd, q->cf, err, sizeof(err)) < 0)
            log_error("reload: old TLS settings not restored: %s", err);
        return false;
    }
    if (q->etrn != NULL)
        etrn_engine_set_conf(q->etrn, ncf);
    if (q->ctl != NULL)
        ctl_server_set_conf(q->ctl, ncf);
    if (q->metrics != NULL)
        metrics_http_set_conf(q->metrics, ncf);
    listen_close(q->ls);
    q->ls = ls;
    return true;
}

/* queued_reload - SIGHUP: validate, check for stranded mail, switch. */
static void queued_reload(struct queued *q)
{
    char *text = NULL;
    size_t len = 0;
    FILE *errs = open_memstream(&text, &len);
    struct conf *ncf;

    log_info("reloading %s", q->conf_path);
    ncf = queued_conf_load(q->conf_path, errs ? errs : stderr);
    if (errs != NULL)
        fclose(errs);
    if (ncf == NULL) {
        queued_log_problems(text);
        log_error("reload refused: %s is invalid; keeping the running configuration", q->conf_path);
        free(text);
        return;
    }
    free(text);
    if (!queued_sites_kept(q, ncf) || !queued_reload_apply(q, ncf)) {
        queued_conf_drop(q, ncf);
        return;
    }
    queued_conf_drop(q, q->cf);
    q->cf = ncf;
    log_info("configuration reloaded: %d sites", ncf->nsites);
    if (q->turnd)
        supervise_turnd_reload();
}

/* queued_drain - shutdown: wait (bounded) for sessions to finish, then leave the loop. */
static void queued_drain(evutil_socket_t fd, short what, void *arg)
{
    struct queued *q = arg;
    struct timeval tv = {0, QUEUED_DRAIN_MS * 1000};

    (void)fd;
    (void)what;
    if (smtpd_session_count(q->sd) == 0 || ++q->drain_polls > QUEUED_DRAIN_POLLS) {
        event_base_loopbreak(q->base);
        return;
    }
    evtimer_add(q->drain_ev, &tv);
}

/* queued_stop - SIGTERM/SIGINT: stop accepting and end sessions cleanly. */
static void queued_stop(struct queued *q)
{
    struct timeval now = {0, 0};

    if (q->drain_ev != NULL)
        return; /* already stopping */
    log_info("stopping");
    listen_disable(q->ls);
    smtpd_shutdown(q->sd);
    if (q->etrn != NULL)
        etrn_shutdown(q->etrn);
    if (q->turnd)
        supervise_turnd_stop();
    q->turnd = false;
    event_del(q->tick_ev);
    q->drain_ev = evtimer_new(q->base, queued_drain, q);
    evtimer_add(q->drain_ev, &now);
}

/* queued_signal - libevent signal callback. */
static void queued_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    if (sig == SIGHUP)
        queued_reload(arg);
    else
        queued_stop(arg);
}

/* queued_daemonize - detach from the terminal (not with -f). */
static void queued_daemonize(void)
{
    pid_t pid = fork();
    int fd;

    if (pid < 0)
        log_fatal("fork: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    setsid();
    if (chdir("/") < 0)
        log_fatal("chdir /: %s", strerror(errno));
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

/* queued_open_store - state_dir (0700) and the LMDB environment. */
static void queued_open_store(struct queued *q)
{
    struct store_opts o;
    char err[512] = "";
    int rc;

    if (queued_mkdirs(q->cf->state_dir) < 0)
        log_fatal("cannot create state_dir %s: %s", q->cf->state_dir, strerror(errno));
    memset(&o, 0, sizeof(o));
    o.dir = q->cf->state_dir;
    o.map_size = q->cf->map_size;
    o.map_size_max = q->cf->map_size_max;
    rc = store_open(&q->st, &o, err, sizeof(err));
    if (rc != STORE_OK)
        log_fatal("cannot open the queue in %s: %s: %s", q->cf->state_dir, store_strerror(rc), err);
}

/* queued_start - build every component on the loop. */
static void queued_start(struct queued *q, const char *argv0)
{
    struct timeval tick = {QUEUED_TICK_SECS, 0};
    char err[512] = "";

    q->base = event_base_new();
    if (q->base == NULL)
        log_fatal("cannot create the event loop");
    queued_open_store(q);
    q->etrn = etrn_engine_new(q->base, q->st, q->cf);
    if (q->etrn == NULL)
        log_fatal("cannot start the ETRN engine");
    q->sd = smtpd_new(q->base, q->st, q->etrn, q->cf, err, sizeof(err));
    if (q->sd == NULL)
        log_fatal("%s", err);
    q->ls = listen_open(q->base, q->cf, q->sd, NULL, err, sizeof(err));
    if (q->ls == NULL)
        log_fatal("%s", err);
    q->ctl = ctl_server_start(q->base, q->cf, q->st, q->etrn, err, sizeof(err));
    if (q->ctl == NULL)
        log_fatal("control socket: %s", err);
    err[0] = '\0';
    q->metrics = metrics_http_start(q->base, q->cf, q->st, err, sizeof(err));
    if (q->metrics == NULL && err[0] != '\0')
        log_fatal("metrics: %s", err);
    q->tick_ev = event_new(q->base, -1, EV_PERSIST, queued_tick, q);
    event_add(q->tick_ev, &tick);
    q->sig_term = evsignal_new(q->base, SIGTERM, queued_signal, q);
    q->sig_int = evsignal_new(q->base, SIGINT, queued_signal, q);
    q->sig_hup = evsignal_new(q->base, SIGHUP, queued_signal, q);
    event_add(q->sig_term, NULL);
    event_add(q->sig_int, NULL);
    event_add(q->sig_hup, NULL);
    if (q->cf->start_turnd) {
        supervise_turnd_start(q->base, q->boot_cf, argv0, q->conf_path);
        q->turnd = true;
    }
}

/* queued_finish - free everything (after the loop ended). */
static void queued_finish(struct queued *q)
{
    if (q->turnd)
        supervise_turnd_stop();
    if (q->ctl != NULL)
        ctl_server_stop(q->ctl);
    metrics_http_stop(q->metrics);
    listen_close(q->ls);
    smtpd_free(q->sd);
    if (q->etrn != NULL)
        etrn_engine_free(q->etrn);
    store_close(q->st);
    event_free(q->tick_ev);
    if (q->drain_ev != NULL)
        event_free(q->drain_ev);
    event_free(q->sig_term);
    event_free(q->sig_int);
    event_free(q->sig_hup);
    event_base_free(q->base);
    queued_conf_drop(q, q->cf);
    if (q->boot_cf != NULL) {
        conf_free(q->boot_cf);
        free(q->boot_cf);
    }
}

/* queued_abs_path - the config path made absolute (relative paths inside it depend on it). */
static void queued_abs_path(const char *path, char *out, size_t outsz)
{
    char cwd[PATH_MAX];
    size_t n;

    if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL) {
        snprintf(out, outsz, "%s", path);
        return;
    }
    n = strlen(cwd);
    if (n + 1 + strlen(path) + 1 > outsz) {
        snprintf(out, outsz, "%s", path);
        return;
    }
    memcpy(out, cwd, n);
    out[n] = '/';
    memcpy(out + n + 1, path, strlen(path) + 1);
}

/* main - options, configuration check or daemon. */
int main(int argc, char **argv)
{
    struct queued q;
    const char *path = QUEUED_DEFAULT_CONF;
    bool check = false, fg = false;
    int c, verbose = 0;

    memset(&q, 0, sizeof(q));
    while ((c = getopt(argc, argv, "c:tfvh")) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check = true;
            break;
        case 'f':
            fg = true;
            break;
        case 'v':
            verbose++;
            break;
        case 'h':
            queued_usage(stdout);
            return 0;
        default:
            queued_usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc) {
        queued_usage(stderr);
        return EX_USAGE;
    }
    queued_abs_path(path, q.conf_path, sizeof(q.conf_path));
    q.cf = queued_conf_load(q.conf_path, stderr);
    if (q.cf == NULL) {
        fprintf(stderr, "queued: %s: configuration is invalid\n", q.conf_path);
        return EX_CONFIG;
    }
    if (check) {
        queued_conf_drop(&q, q.cf);
        return 0;
    }
    q.boot_cf = q.cf;
    signal(SIGPIPE, SIG_IGN);
    log_open("queued", fg);
    log_set_verbose(verbose);
    if (!fg)
        queued_daemonize();
    log_info("starting holdmx queued version %s", HOLDMX_VERSION);
    queued_start(&q, argv[0]);
    event_base_dispatch(q.base);
    queued_finish(&q);
    log_info("stopped");
    return 0;
}
