/*
 * supervise.c - queued starts turnd and keeps it running.
 *
 * supervise_turnd_start() fork+execs turnd ("turnd -c <conf> [-f] [-v..]")
 * and watches SIGCHLD with a libevent signal event.  When turnd dies for
 * any reason other than our own stop, its exit status is logged and it is
 * started again after a backoff that doubles from 1 s up to 60 s (reset to
 * 1 s once a child has lived at least a minute).  supervise_turnd_stop()
 * sends SIGTERM, waits up to SUPERVISE_STOP_WAIT seconds, then SIGKILLs.
 *
 * The binary is cf->turnd_path when set, else "turnd" next to queued's own
 * executable (the directory of /proc/self/exe, or of argv0 when /proc is
 * not available), else ../turnd/turnd from there (the build tree layout).
 * -f is passed through when queued itself runs with -f (log_foreground()).
 * A configuration reload of queued is forwarded to turnd as SIGHUP.  Only the child's own pid
 * is ever waited for or signalled.
 */
#include "supervise.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#define SUPERVISE_BACKOFF_MIN 1
#define SUPERVISE_BACKOFF_MAX 60
#define SUPERVISE_STABLE      60   /* a child that lived this long resets the backoff */
#define SUPERVISE_STOP_WAIT   10   /* seconds between SIGTERM and SIGKILL */
#define SUPERVISE_FD_LIMIT    4096 /* descriptors closed in the child before exec */

struct supervise {
    struct event_base *base;
    char *path;
    char *conf_path;
    bool foreground;
    int verbose;
    pid_t pid;
    time_t started;
    int backoff;
    bool stopping;
    struct event *sigchld;
    struct event *restart;
};

static struct supervise sup;

/* supervise_dir_of - malloc'd directory of the running executable. */
static char *supervise_dir_of(const char *argv0)
{
    char buf[PATH_MAX], real[PATH_MAX];
    ssize_t n;
    char *slash;

    /* /proc/self/exe first: queued may have done chdir("/") when it detached */
    n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n > 0)
        buf[n] = '\0';
    else if (argv0 != NULL && strchr(argv0, '/') != NULL)
        snprintf(buf, sizeof(buf), "%s", argv0);
    else
        return xstrdup(".");
    if (realpath(buf, real) != NULL)
        snprintf(buf, sizeof(buf), "%s", real);
    slash = strrchr(buf, '/');
    if (slash == NULL)
        return xstrdup(".");
    *slash = '\0';
    return xstrdup(buf[0] ? buf : "/");
}

/* supervise_find - the turnd binary to run (malloc'd). */
static char *supervise_find(const struct conf *cf, const char *argv0)
{
    char *dir, *p;

    if (cf->turnd_path != NULL && cf->turnd_path[0] != '\0')
        return xstrdup(cf->turnd_path);
    dir = supervise_dir_of(argv0);
    p = xasprintf("%s/turnd", dir);
    if (access(p, X_OK) != 0) {
        char *alt = xasprintf("%s/../turnd/turnd", dir);

        if (access(alt, X_OK) == 0) {
            free(p);
            p = alt;
        } else {
            free(alt);
        }
    }
    free(dir);
    return p;
}

/* supervise_child - in the forked child: clean signal state and exec turnd. */
static void supervise_child(void)
{
    char *argv[8];
    char vflag[8] = "-v";
    int argc = 0;
    sigset_t none;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    for (int fd = 3; fd < SUPERVISE_FD_LIMIT; fd++)
        close(fd);
    argv[argc++] = sup.path;
    argv[argc++] = "-c";
    argv[argc++] = sup.conf_path;
    if (sup.foreground)
        argv[argc++] = "-f";
    if (sup.verbose > 0) {
        for (int i = 1; i < sup.verbose && i < 5; i++)
            vflag[i + 1] = 'v';
        argv[argc++] = vflag;
    }
    argv[argc] = NULL;
    execv(sup.path, argv);
    fprintf(stderr, "queued: cannot execute %s: %s\n", sup.path, strerror(errno));
    _exit(127);
}

/* supervise_schedule - start turnd again after the current backoff. */
static void supervise_schedule(void)
{
    struct timeval tv = {sup.backoff, 0};

    log_info("turnd restart in %d s", sup.backoff);
    evtimer_add(sup.restart, &tv);
    sup.backoff = sup.backoff * 2 > SUPERVISE_BACKOFF_MAX ? SUPERVISE_BACKOFF_MAX : sup.backoff * 2;
}

/* supervise_spawn - fork and exec one turnd. */
static void supervise_spawn(void)
{
    pid_t pid;

    if (sup.stopping || sup.pid > 0)
        return;
    pid = fork();
    if (pid < 0) {
        log_error("cannot fork turnd: %s", strerror(errno));
        supervise_schedule();
        return;
    }
    if (pid == 0)
        supervise_child();
    sup.pid = pid;
    sup.started = time(NULL);
    log_info("started turnd pid=%ld (%s)", (long)pid, sup.path);
}

/* supervise_describe - "exit status N" / "killed by signal N". */
static void supervise_describe(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d%s", WTERMSIG(status),
                 WCOREDUMP(status) ? " (core dumped)" : "");
    else
        snprintf(buf, len, "status 0x%x", (unsigned)status);
}

/* supervise_sigchld_cb - reap our child (only ours) and plan the restart. */
static void supervise_sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    char how[64];
    int status = 0;
    pid_t r;

    (void)sig;
    (void)what;
    (void)arg;
    if (sup.pid <= 0)
        return;
    r = waitpid(sup.pid, &status, WNOHANG);
    if (r != sup.pid)
        return;
    supervise_describe(status, how, sizeof(how));
    if (time(NULL) - sup.started >= SUPERVISE_STABLE)
        sup.backoff = SUPERVISE_BACKOFF_MIN;
    sup.pid = 0;
    /* its sessions died with it: do not report them until the next push */
    metrics_session_set(METRIC_PROTO_ODMR, 0);
    if (sup.stopping) {
        log_info("turnd stopped: %s", how);
        return;
    }
    log_warn("turnd pid=%ld ended: %s", (long)r, how);
    supervise_schedule();
}

/* supervise_restart_cb - the backoff ran out. */
static void supervise_restart_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    supervise_spawn();
}

/* supervise_turnd_start - remember the setup, watch SIGCHLD, start turnd. */
void supervise_turnd_start(struct event_base *base, const struct conf *cf, const char *argv0,
                           const char *conf_path)
{
    char real[PATH_MAX];

    if (sup.base != NULL)
        return; /* already supervising */
    memset(&sup, 0, sizeof(sup));
    sup.base = base;
    sup.path = supervise_find(cf, argv0);
    sup.conf_path = xstrdup(realpath(conf_path, real) != NULL ? real : conf_path);
    sup.foreground = log_foreground();
    sup.verbose = log_verbose();
    sup.backoff = SUPERVISE_BACKOFF_MIN;
    sup.sigchld = evsignal_new(base, SIGCHLD, supervise_sigchld_cb, NULL);
    sup.restart = evtimer_new(base, supervise_restart_cb, NULL);
    if (sup.sigchld == NULL || sup.restart == NULL || event_add(sup.sigchld, NULL) != 0)
        log_fatal("cannot watch SIGCHLD for turnd supervision");
    supervise_spawn();
}

/* supervise_wait - wait up to secs for our child to exit; true when reaped. */
static bool supervise_wait(int secs)
{
    struct timespec nap = {0, 50 * 1000 * 1000};
    int status = 0;

    for (int i = 0; i < secs * 20; i++) {
        pid_t r = waitpid(sup.pid, &status, WNOHANG);

        if (r == sup.pid || (r < 0 && errno == ECHILD))
            return true;
        nanosleep(&nap, NULL);
    }
    return false;
}

/* supervise_turnd_reload - forward queued's reload to turnd with SIGHUP. */
void supervise_turnd_reload(void)
{
    if (sup.base == NULL || sup.pid <= 0)
        return;
    if (kill(sup.pid, SIGHUP) == 0)
        log_info("turnd pid=%ld: reload requested", (long)sup.pid);
}

/* supervise_turnd_stop - no more restarts; SIGTERM, bounded wait, SIGKILL. */
void supervise_turnd_stop(void)
{
    if (sup.base == NULL)
        return;
    sup.stopping = true;
    if (sup.restart != NULL)
        evtimer_del(sup.restart);
    if (sup.pid > 0) {
        kill(sup.pid, SIGTERM);
        if (!supervise_wait(SUPERVISE_STOP_WAIT)) {
            log_warn("turnd pid=%ld did not stop in %d s: SIGKILL", (long)sup.pid,
                     SUPERVISE_STOP_WAIT);
            kill(sup.pid, SIGKILL);
            waitpid(sup.pid, NULL, 0);
        }
        log_info("turnd pid=%ld stopped", (long)sup.pid);
        sup.pid = 0;
    }
    if (sup.sigchld != NULL)
        event_free(sup.sigchld);
    if (sup.restart != NULL)
        event_free(sup.restart);
    free(sup.path);
    free(sup.conf_path);
    memset(&sup, 0, sizeof(sup));
}
