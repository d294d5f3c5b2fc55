/*
 * etrn.h - ETRN policy, queue runs and the queue manager step (queued side).
 *
 * The engine lives on queued's event loop.  smtpd's ETRN command handler,
 * the control socket ("queue flush") and turnd's ETRN stub all call
 * etrn_kick(); it answers at once with a status that the caller maps to a
 * protocol reply, and the run itself (claim the domain's recipients in the
 * store, resolve the destination with c-ares, open new SMTP connections,
 * deliver with the dlv engine) continues asynchronously.  One run per
 * domain at a time; ETRN is rate-limited per client and per domain.
 *
 * The queue manager step (etrn_qmgr_tick, called from a timer) recovers
 * dead leases, expires held mail past its hold time and sends RFC 3464
 * DSNs (failures and one delay warning) to bounce_relay.
 */
#ifndef HM_ETRN_H
#define HM_ETRN_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "store.h"

struct event_base;
struct etrn_engine;

enum etrn_status {
    ETRN_STARTED = 0,  /* run started: mail is waiting (count in *pending) */
    ETRN_NOTHING,      /* the domain is held here but nothing is waiting */
    ETRN_RUNNING,      /* a run for it is already active (458 or 250) */
    ETRN_DISABLED,     /* ETRN disabled for the domain (459) */
    ETRN_UNKNOWN,      /* not a domain held here / not on this site (459) */
    ETRN_RATE,         /* rate limit reached (458) */
    ETRN_ERROR,        /* storage or resource failure (458) */
};

const char *etrn_status_name(int status);

/* etrn_engine_new - on base, delivering from st with cf's settings. */
struct etrn_engine *etrn_engine_new(struct event_base *base, struct store *st,
                                    const struct conf *cf);
void etrn_engine_free(struct etrn_engine *e);
/* etrn_engine_reconfigure - after a reload (cf outlives the engine). */
void etrn_engine_set_conf(struct etrn_engine *e, const struct conf *cf);

/*
 * etrn_kick - start a run for domain (with subdomains for "@domain") on
 * behalf of client (an address text used for rate limiting; NULL = the
 * operator, not limited).  site: only domains of this site qualify (NULL =
 * any).  *pending receives how many messages are waiting (may be NULL).
 */
int etrn_kick(struct etrn_engine *e, const char *domain, bool subdomains, const char *site,
              const char *client, size_t *pending);

/* etrn_kick_site - "ETRN #site": every held domain of site. */
int etrn_kick_site(struct etrn_engine *e, const char *site, const char *client, size_t *pending);

/* etrn_qmgr_tick - one queue manager pass (call every few seconds). */
void etrn_qmgr_tick(struct etrn_engine *e);

/* etrn_active_runs - runs in progress (for metrics and shutdown). */
size_t etrn_active_runs(const struct etrn_engine *e);

/* etrn_shutdown - stop starting runs; abort active ones (mail stays held). */
void etrn_shutdown(struct etrn_engine *e);

#endif
