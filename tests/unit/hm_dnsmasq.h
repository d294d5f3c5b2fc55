/*
 * hm_dnsmasq.h - run a private dnsmasq for a test (loopback, random high port).
 *
 * hm_dnsmasq_start() writes the zone lines to a config file in a temp
 * dir, forks/execs dnsmasq on 127.0.0.1 (no upstream, no /etc/hosts),
 * records its pid and checks it stayed up; hm_dnsmasq_stop() kills that
 * pid only and removes the dir.  Use with: #include "hm_dnsmasq.c".
 */
#ifndef HM_DNSMASQ_H
#define HM_DNSMASQ_H

#include <stdbool.h>
#include <sys/types.h>

struct hm_dnsmasq {
    pid_t pid;        /* -1 when not running */
    char dir[64];     /* temp dir with dnsmasq.conf */
    char servers[64]; /* "127.0.0.1:PORT" for c-ares */
};

/* hm_dnsmasq_available - dnsmasq is installed. */
bool hm_dnsmasq_available(void);
/* hm_dnsmasq_start - start with zone (dnsmasq.conf lines); false if it could not run. */
bool hm_dnsmasq_start(struct hm_dnsmasq *d, const char *zone);
/* hm_dnsmasq_stop - kill our dnsmasq and clean up (idempotent). */
void hm_dnsmasq_stop(struct hm_dnsmasq *d);

#endif
