/*
 * etrn_clnt.h - turnd's client stub for queued's control socket (ETRN).
 *
 * An authenticated ODMR customer may also say ETRN; turnd does not deliver
 * that itself, it asks queued (which owns the ETRN engine) over the unix
 * socket <state_dir>/control.  Wire protocol: one request line
 * "ETRN [@]<domain> [<client>]\n" (client: the customer's address, for
 * queued's per-client ETRN rate limit), answered by one line
 * "<status-name> <pending>\n" where status-name is etrn_status_name() of
 * an enum etrn_status.  The request is asynchronous on the caller's
 * event_base; the callback runs exactly once unless the request is
 * cancelled first.
 */
#ifndef HM_ETRN_CLNT_H
#define HM_ETRN_CLNT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct etrn_clnt;

/* ETRN_CLNT_UNAVAILABLE - no control socket, I/O error, timeout or bad reply. */
#define ETRN_CLNT_UNAVAILABLE (-1)

/* status: an enum etrn_status, or ETRN_CLNT_UNAVAILABLE. */
typedef void (*etrn_clnt_done_fn)(int status, size_t pending, void *arg);

/*
 * etrn_clnt_request - send one ETRN to queued on behalf of client (an
 * address text without blanks, or NULL).  Returns NULL when the socket
 * cannot even be connected (the caller answers 458 at once); otherwise
 * done(status, pending, arg) follows within timeout seconds.
 */
struct etrn_clnt *etrn_clnt_request(struct event_base *base, const char *state_dir,
                                    const char *domain, bool subdomains, const char *client,
                                    int timeout, etrn_clnt_done_fn done, void *arg);
/* etrn_clnt_cancel - drop a request; done is not called. */
void etrn_clnt_cancel(struct etrn_clnt *c);

/* etrn_clnt_parse - parse a reply line; false when malformed. */
bool etrn_clnt_parse(const char *line, int *status, size_t *pending);

/*
 * etrn_clnt_connect - nonblocking connect to queued's control socket at
 * path (-1 when impossible now); shared with turn_stats.c.
 */
int etrn_clnt_connect(const char *path);

#endif
