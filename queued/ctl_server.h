/*
 * ctl_server.h - queued's control socket: <state_dir>/control.
 *
 * A Unix stream socket, mode 0600, created by queued at start (a stale one
 * is removed; start is refused while another queued answers on it).  The
 * protocol is one request line, one response line:
 *
 *   PING                    -> OK pong
 *   ETRN <domain>           -> <etrn status name> <pending>   (turnd's stub)
 *   ETRN @<domain>          -> same, with subdomains
 *   ETRN #<site>            -> same, every held domain of site
 *   FLUSH <domain>          -> OK <status> <pending> | ERR <status> <text>
 *   PAUSE <site>            -> OK paused <site>
 *   RESUME <site>           -> OK resumed <site>
 *   DRAIN-START <site>      -> OK <status> <pending> (pause + draining + ETRN #site)
 *   DRAIN-END <site>        -> OK drained <site> (clears draining; stays paused)
 *   STATS name=delta ...    -> OK   (turnd's counters; "sessions_odmr=N" is absolute)
 *   QUIT                    -> OK bye, then close
 *
 * Anything else gets "ERR ...".  Lines are capped at CTL_LINE_MAX octets,
 * connections at CTL_MAX_CONNS and idle connections close after
 * CTL_IDLE_SECS.  The server lives on queued's event loop.
 */
#ifndef HM_CTL_SERVER_H
#define HM_CTL_SERVER_H

#include <stddef.h>

#include "conf.h"
#include "store.h"

struct event_base;
struct etrn_engine;
struct ctl_server;

#define CTL_LINE_MAX  512
#define CTL_MAX_CONNS 32
#define CTL_IDLE_SECS 30

/*
 * ctl_server_start - create <state_dir>/control and serve it on base.  etrn
 * may be NULL (ETRN/FLUSH then answer "error").  cf, st and etrn must
 * outlive the server.  NULL with a sentence in err on failure.
 */
struct ctl_server *ctl_server_start(struct event_base *base, const struct conf *cf,
                                    struct store *st, struct etrn_engine *etrn, char *err,
                                    size_t errlen);
/* ctl_server_set_conf - use a reloaded configuration (same state_dir). */
void ctl_server_set_conf(struct ctl_server *s, const struct conf *cf);
/* ctl_server_stop - close every connection, remove the socket file, free s. */
void ctl_server_stop(struct ctl_server *s);

#endif
