/*
 * turn_session.h - one ODMR customer connection (private to turnd's
 * turn_session.c, turn_atrn.c and turn_empty.c).
 *
 * The session is driven by its bufferevent callbacks; turn_enter_state()
 * is the only writer of s->state.  Handlers return what the dispatcher
 * may do next: keep reading commands, stop (an asynchronous step is under
 * way or the session is closing) or nothing at all (the session is gone).
 */
#ifndef HM_TURN_SESSION_H
#define HM_TURN_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "turn_sasl.h"
#include "turnd.h"

struct dlv_session;
struct etrn_clnt;
struct turn_empty;

enum turn_next {
    TURN_NEXT_CONT = 0, /* read the next command */
    TURN_NEXT_STOP,     /* session alive, do not read now */
    TURN_NEXT_GONE,     /* session freed: do not touch it */
};

struct turn_session {
    struct turn_session *prev, *next;
    struct turn_server *srv;
    struct turn_gen *gen;
    const struct conf *cf;
    const struct conf_site *site;
    int site_idx;
    struct bufferevent *bev; /* NULL once handed to the dlv engine */
    int state;               /* enum turn_state */
    char ip[64];             /* client address text */
    char peer[96];           /* "[ip]:port" for logs */
    char sasl_local[96];     /* "ip;port" for libsasl2 */
    char sasl_remote[96];
    bool loopback;
    bool tls_on;      /* TLS filter installed (STARTTLS done) */
    bool tls_pending; /* 220 to STARTTLS written, wrap when flushed */
    bool suspended;   /* not reading commands (timer, ETRN request) */
    bool quitting;    /* QUIT seen */
    bool out_blocked; /* reading paused until our replies drain */
    char helo[STORE_DOMAIN_MAX];
    struct turn_sasl *sasl;
    char mech[64];
    unsigned auth_fails;
    unsigned errors;
    char account[STORE_ACCOUNT_MAX]; /* "" until AUTH succeeded */
    struct event *delay_ev;          /* delayed 535 */
    struct etrn_clnt *etrn;
    char etrn_node[STORE_DOMAIN_MAX + 1];
    /* ATRN/TURN */
    bool is_turn;
    char **domains;
    size_t ndomains;
    struct store_claim *claim; /* owned until handed to dlv */
    struct dlv_session *dlv;
    bool in_handoff;
    bool dlv_finished;
    struct turn_empty *empty;
    int64_t reversed_at;
};

/* turn_session.c helpers used by the ATRN code */
void turn_enter_state(struct turn_session *s, int state);
void turn_reply(struct turn_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int turn_session_close(struct turn_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void turn_session_free(struct turn_session *s);
const char *turn_domains_text(struct turn_session *s, char *buf, size_t len);

/* turn_atrn.c */
int turn_atrn_cmd(struct turn_session *s, const char *arg);
int turn_atrn_turn_cmd(struct turn_session *s, const char *arg);
/* turn_atrn_flushed - the 250 left: hand the connection over. */
int turn_atrn_flushed(struct turn_session *s);
/* turn_domain_valid - RFC 2645 domain (>= 2 labels, letters/digits/hyphens). */
bool turn_domain_valid(const char *d);
void turn_atrn_release(struct turn_session *s);

/* turn_empty.c: TURN with nothing held: wait 220, EHLO, QUIT */
void turn_empty_start(struct turn_session *s);
void turn_empty_free(struct turn_empty *e);

#endif
