/*
 * ctl_client.h - queuectl's side of the control socket, plus the output
 * and store helpers shared by the queuectl nouns (ctl_queue.c,
 * ctl_site.c, ctl_stats.c, ctl_drain.c).
 *
 * The control socket is <state_dir>/control (see ctl_server.h for the line
 * protocol).  ctl_client_call() is blocking with a time limit: queuectl is
 * a short-lived command, not an event loop.
 */
#ifndef HM_CTL_CLIENT_H
#define HM_CTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"
#include "store.h"

/* ctl_client_call results */
enum ctl_call_status {
    CTL_CALL_OK = 0,      /* reply holds the daemon's response line */
    CTL_CALL_DOWN = -1,   /* nothing answers on the socket: queued is not running */
    CTL_CALL_BROKEN = -2, /* connected but no valid reply in time */
};

/* ctl_client_path - "<state_dir>/control" (malloc'd). */
char *ctl_client_path(const struct conf *cf);

/*
 * ctl_client_call - send one request line to queued and read its one
 * response line (without CRLF) into reply.  timeout_ms bounds the whole
 * exchange.  Returns an enum ctl_call_status.
 */
int ctl_client_call(const struct conf *cf, const char *request, char *reply, size_t replylen,
                    int timeout_ms);

/* ctl_client_ok - true when a response line starts with "OK". */
bool ctl_client_ok(const char *reply);

/*
 * ctl_store_open - open the queue store of cf (readonly for listing verbs).
 * On failure prints a message saying what to do and returns a sysexits
 * code; 0 on success.
 */
int ctl_store_open(const struct conf *cf, bool readonly, struct store **st);

/* ctl_human_size - "512", "4.1K", "12M", "3.0G" into buf. */
const char *ctl_human_size(uint64_t bytes, char *buf, size_t len);
/* ctl_human_age - "42s", "3m", "5h", "2d" into buf (negative ages give "0s"). */
const char *ctl_human_age(int64_t seconds, char *buf, size_t len);
/* ctl_json_str - s as a quoted JSON string on f. */
void ctl_json_str(FILE *f, const char *s);
/* ctl_json_msg_open - start a message object: {"id":...,"site":...,"sender":... */
void ctl_json_msg_open(FILE *f, const struct store_msg_info *m);
/* ctl_iso_time - UTC "2026-11-23T15:38:20Z" into buf. */
const char *ctl_iso_time(int64_t t, char *buf, size_t len);

/* ctl_has_flag - true when argv[from..argc) contains flag; removes nothing. */
bool ctl_has_flag(int argc, char **argv, int from, const char *flag);
/* ctl_opt_value - the word after option name in argv[from..argc), or NULL. */
const char *ctl_opt_value(int argc, char **argv, int from, const char *name);

#endif
