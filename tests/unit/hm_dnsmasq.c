/*
 * hm_dnsmasq.c - a private dnsmasq for tests (see hm_dnsmasq.h).
 *
 * Up to five random ports in 20000-59999 are tried; a port is accepted
 * when dnsmasq is still alive half a second after starting (it exits at
 * once when the port is taken).
 */
#include "hm_dnsmasq.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HM_DNSMASQ_BIN "/usr/sbin/dnsmasq"

/* hm_dnsmasq_available - dnsmasq is installed. */
bool hm_dnsmasq_available(void)
{
    return access(HM_DNSMASQ_BIN, X_OK) == 0;
}

/* hm_dnsmasq_exec - the child: exec dnsmasq in the foreground on port. */
static void hm_dnsmasq_exec(const char *conf, unsigned port)
{
    char portarg[32], confarg[160];
    int devnull = open("/dev/null", O_WRONLY);

    if (devnull >= 0) {
        dup2(devnull, 1);
        dup2(devnull, 2);
    }
    snprintf(portarg, sizeof(portarg), "--port=%u", port);
    snprintf(confarg, sizeof(confarg), "--conf-file=%s", conf);
    if (geteuid() == 0)
        execl(HM_DNSMASQ_BIN, "dnsmasq", "-k", confarg, portarg, "--listen-address=127.0.0.1",
              "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=", "--user=nobody",
              "--group=nogroup", (char *)NULL);
    else
        execl(HM_DNSMASQ_BIN, "dnsmasq", "-k", confarg, portarg, "--listen-address=127.0.0.1",
              "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=", (char *)NULL);
    _exit(127);
}

/* hm_dnsmasq_try - start on port; true when it stays up. */
static bool hm_dnsmasq_try(struct hm_dnsmasq *d, const char *conf, unsigned port)
{
    pid_t pid = fork();

    if (pid < 0)
        return false;
    if (pid == 0)
        hm_dnsmasq_exec(conf, port);
    d->pid = pid;
    for (int i = 0; i < 10; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        int st;
        nanosleep(&ts, NULL);
        if (waitpid(pid, &st, WNOHANG) == pid) {
            d->pid = -1;
            return false;
        }
    }
    snprintf(d->servers, sizeof(d->servers), "127.0.0.1:%u", port);
    return true;
}

/* hm_dnsmasq_start - start with zone (dnsmasq.conf lines); false if it could not run. */
bool hm_dnsmasq_start(struct hm_dnsmasq *d, const char *zone)
{
    char conf[128];
    FILE *f;

    memset(d, 0, sizeof(*d));
    d->pid = -1;
    if (!hm_dnsmasq_available())
        return false;
    snprintf(d->dir, sizeof(d->dir), "/tmp/hm_dns_XXXXXX");
    if (mkdtemp(d->dir) == NULL) {
        d->dir[0] = '\0';
        return false;
    }
    chmod(d->dir, 0755);
    snprintf(conf, sizeof(conf), "%s/dnsmasq.conf", d->dir);
    f = fopen(conf, "w");
    if (f == NULL)
        return false;
    fputs(zone, f);
    fclose(f);
    srandom((unsigned)(time(NULL) ^ getpid()));
    for (int tries = 0; tries < 5 && d->pid < 0; tries++)
        hm_dnsmasq_try(d, conf, 20000 + (unsigned)(random() % 40000));
    return d->pid > 0;
}

/* hm_dnsmasq_stop - kill our dnsmasq and clean up (idempotent). */
void hm_dnsmasq_stop(struct hm_dnsmasq *d)
{
    char path[128];

    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        waitpid(d->pid, NULL, 0);
        d->pid = -1;
    }
    if (d->dir[0]) {
        snprintf(path, sizeof(path), "%s/dnsmasq.conf", d->dir);
        unlink(path);
        rmdir(d->dir);
        d->dir[0] = '\0';
    }
}
