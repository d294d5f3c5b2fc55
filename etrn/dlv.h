/*
 * dlv.h - the outbound SMTP client engine (RFC 5321 client side).
 *
 * One dlv_session drives one SMTP connection it is given as a libevent
 * bufferevent: a new outbound connection (ETRN runs, DSNs to bounce_relay)
 * or the customer's connection after ATRN/TURN reversal.  The engine never
 * opens or resolves anything itself, so turnd can hand it the bufferevent
 * of a reversed session (with its TLS filter still on) and queued can hand
 * it one it connected after MX selection.
 *
 * Sequence: wait for the 220 greeting (multi-line and slow allowed), EHLO
 * (HELO on 5xx), honour only what the peer's EHLO advertised (PIPELINING,
 * SIZE, 8BITMIME, DSN, STARTTLS), then for every message of the job:
 * MAIL FROM:<...> [SIZE= BODY= RET= ENVID=], RCPT TO:<...> [NOTIFY= ORCPT=]
 * for the job's recipients of that message only, DATA with dot-stuffing,
 * RSET after a failed transaction; finally QUIT and wait for 221.
 * Per-recipient outcomes (2xx delivered, 4xx deferred, 5xx failed) are
 * written to the store with store_outcome_apply, in one transaction per
 * message when that message's SMTP transaction ends; a connection lost
 * mid-message defers that message's recipients (RFC 5321 3.8).  Timeouts
 * follow RFC 5321 4.5.3.2.
 *
 * A job's source is either a store claim (held mail) or one in-memory
 * message (a DSN built by dsn.c).  The engine takes ownership of the
 * bufferevent and frees it before calling done.
 */
#ifndef HM_DLV_H
#define HM_DLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct event_base;
struct bufferevent;
struct ssl_ctx_st;

struct dlv_session;

struct dlv_opts {
    const char *helo_name;      /* our name in EHLO */
    bool starttls;              /* use STARTTLS when offered (new connections) */
    struct ssl_ctx_st *tls_ctx; /* client context for STARTTLS, or NULL */
    bool tls_active;            /* connection already encrypted (reversed TLS) */
    int greeting_timeout;       /* seconds: 300 */
    int command_timeout;        /* MAIL/RCPT: 300 */
    int data_init_timeout;      /* waiting for 354: 120 */
    int data_block_timeout;     /* each block: 180 */
    int data_term_timeout;      /* after the dot: 600 */
    int total_timeout;          /* whole session; 0 = none (ATRN uses one) */
    const char *peer_name;      /* for logs: "mx1.example[127.0.0.3]:25" */
};

/* dlv_opts_default - fill o with the RFC 5321 defaults above. */
void dlv_opts_default(struct dlv_opts *o);

/* One in-memory message (for DSNs); body is the full RFC 5322 text, unstuffed, CRLF. */
struct dlv_mem_msg {
    const char *sender; /* "" for the null sender */
    const char *const *rcpts;
    size_t nrcpts;
    const char *body;
    size_t body_len;
};

struct dlv_result {
    size_t delivered;             /* recipients accepted */
    size_t deferred;              /* recipients left held (4xx, lost connection) */
    size_t failed;                /* recipients failed (5xx) */
    bool session_ok;              /* greeting/EHLO worked and QUIT was sent */
    char reason[STORE_REPLY_MAX]; /* why a session failed, if it did */
};

typedef void (*dlv_done_fn)(struct dlv_session *s, const struct dlv_result *r, void *arg);

/*
 * dlv_start_claim - deliver a claim on bev.  The engine owns bev and claim
 * from now on; outcomes go to st under owner.  done is called exactly once.
 */
struct dlv_session *dlv_start_claim(struct event_base *base, struct bufferevent *bev,
                                    struct store *st, const struct store_owner *owner,
                                    struct store_claim *claim, const struct dlv_opts *opts,
                                    dlv_done_fn done, void *arg);

/* dlv_start_mem - deliver one in-memory message (a DSN) on bev. */
struct dlv_session *dlv_start_mem(struct event_base *base, struct bufferevent *bev,
                                  const struct dlv_mem_msg *msg, const struct dlv_opts *opts,
                                  dlv_done_fn done, void *arg);

/* dlv_abort - stop now (shutdown): unacknowledged recipients are deferred; done is called. */
void dlv_abort(struct dlv_session *s, const char *reason);

/*
 * dlv_claim_count - add the outcomes o[0..n) the store recorded (status[j]
 * == STORE_OK) to the delivered / deferred / bounced recipient metrics.
 */
void dlv_claim_count(const struct store_outcome *o, const int *status, size_t n);

#endif
