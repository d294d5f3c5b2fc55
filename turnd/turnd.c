/*
 * turnd.c - main program of turnd, holdmx's ODMR/ATRN (RFC 2645) and
 * authenticated TURN front end.
 *
 * usage: turnd [-c FILE] [-f] [-v] [-h]
 *
 * Loads the configuration, initialises libsasl2 (sasl_app, sasl_conf_dir),
 * opens the queue store in state_dir (the same LMDB environment queued
 * uses; opened here, after any fork, once per process), listens on every
 * site's odmr_listen and runs the event loop.  turnd never detaches: queued
 * starts and supervises it (see queued/supervise.c), or a service manager
 * runs it; -f only sends the log to stderr instead of syslog.  SIGTERM or
 * SIGINT stops it cleanly (reversed sessions are aborted and their mail
 * stays held); SIGHUP reloads the configuration.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "turn_sasl.h"
#include "turnd.h"

#ifndef HOLDMX_SYSCONFDIR
#define HOLDMX_SYSCONFDIR "/etc/holdmx"
#endif
#define TURND_DEFAULT_CONF HOLDMX_SYSCONFDIR "/holdmx.conf"

/* turnd_usage - print the synopsis and exit with code. */
static void turnd_usage(FILE *fp, int code)
{
    fprintf(fp, "usage: turnd [-c FILE] [-f] [-v] [-h]\n"
                "  -c FILE  configuration file (default " TURND_DEFAULT_CONF ")\n"
                "  -f       log to stderr (foreground) instead of syslog\n"
                "  -v       verbose logging (repeat for more)\n"
                "  -h       this help\n");
    exit(code);
}

/* turnd_open_store - the shared queue environment of cf. */
static struct store *turnd_open_store(const struct conf *cf)
{
    struct store_opts o;
    struct store *st = NULL;
    char err[512] = "";
    int r;

    memset(&o, 0, sizeof(o));
    o.dir = cf->state_dir;
    o.map_size = cf->map_size;
    o.map_size_max = cf->map_size_max;
    r = store_open(&st, &o, err, sizeof(err));
    if (r != STORE_OK)
        log_fatal("cannot open the queue in %s: %s (%s)", cf->state_dir, store_strerror(r), err);
    return st;
}

/* main - parse options, set up, run the loop, tear down. */
int main(int argc, char **argv)
{
    const char *conf_path = TURND_DEFAULT_CONF;
    bool foreground = false;
    int verbose = 0, ch, failed;
    struct turn_server srv;
    struct event_base *base;
    struct turn_gen *gen;
    struct store *st;
    char err[512] = "";

    while ((ch = getopt(argc, argv, "c:fvh")) != -1) {
        switch (ch) {
        case 'c':
            conf_path = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        case 'v':
            verbose++;
            break;
        case 'h':
            turnd_usage(stdout, 0);
            break;
        default:
            turnd_usage(stderr, 64);
        }
    }
    if (optind != argc)
        turnd_usage(stderr, 64);
    log_open("turnd", foreground);
    log_set_verbose(verbose);
    signal(SIGPIPE, SIG_IGN);
    gen = turn_gen_load(conf_path, err, sizeof(err));
    if (gen == NULL) {
        log_error("%s", err);
        return 78; /* EX_CONFIG */
    }
    if (!turn_sasl_init(&gen->cf, err, sizeof(err)))
        log_fatal("%s", err);
    st = turnd_open_store(&gen->cf);
    base = event_base_new();
    if (base == NULL || !turn_server_init(&srv, base, conf_path, gen, st))
        log_fatal("cannot set up the event loop");
    failed = turn_server_listen(&srv);
    if (failed > 0)
        log_fatal("%d odmr_listen address(es) could not be bound", failed);
    log_info("turnd %s started (config %s)", HOLDMX_VERSION, conf_path);
    event_base_dispatch(base);
    turn_server_free(&srv);
    store_close(st);
    event_base_free(base);
    turn_sasl_shutdown();
    log_info("turnd stopped");
    return 0;
}
