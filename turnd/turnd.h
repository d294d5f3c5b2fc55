/*
 * turnd.h - the ODMR (RFC 2645) and authenticated TURN front end: shared
 * declarations of turnd's modules.
 *
 *   turn_server.c   listeners, connection caps, configuration generations,
 *                   the lease renewal timer, shutdown
 *   turn_session.c  one customer connection: state machine, ODMR command
 *                   table, EHLO/HELO/AUTH/ETRN/STARTTLS/NOOP/RSET/QUIT
 *   turn_atrn.c     ATRN and TURN: domain list, authorisation, claim,
 *                   the reversal and the hand-over to the dlv engine
 *   turn_empty.c    the minimal reversed exchange of a TURN with no mail
 *   turn_penalty.c  per-address failed-AUTH delays
 *   turn_sasl.c     libsasl2 (turn_sasl.h)
 *   etrn_clnt.c     ETRN requests to queued's control socket (etrn_clnt.h)
 *
 * Lifetimes: a turn_gen holds one loaded configuration and the per-site
 * TLS contexts made from it; sessions keep a reference to the generation
 * they were accepted under, so a reload never pulls the configuration from
 * under a running session.  A session owns its bufferevent until the
 * reversal, when the bufferevent (with its TLS filter) passes to the dlv
 * engine; the session then only waits for the engine's done callback.
 */
#ifndef HM_TURND_H
#define HM_TURND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "store.h"

#define TURN_ODMR_LINE_MAX 8192 /* ATRN with many domains exceeds 512 */
#define TURN_AUTH_FAIL_MAX 3    /* RFC 4954: not before 3 failures */
#define TURN_LEASE_TTL     600  /* seconds a claim lease lasts between renewals */
#define TURN_LEASE_RENEW   120  /* renewal period */
#define TURN_ETRN_TIMEOUT  10   /* control socket request limit, seconds */

struct event_base;
struct event;
struct evconnlistener;
struct bufferevent;
struct ssl_ctx_st;
struct sockaddr;
struct turn_session;
struct turn_penalty;

/* turn_gen - one configuration generation (refcounted). */
struct turn_gen {
    struct conf cf;
    struct ssl_ctx_st **tls; /* per site (cf.sites order); NULL = no STARTTLS */
    int refs;
};

struct turn_gen *turn_gen_load(const char *path, char *err, size_t errlen);
struct turn_gen *turn_gen_ref(struct turn_gen *g);
void turn_gen_unref(struct turn_gen *g);

/* turn_ipcount - live connections of one client address. */
struct turn_ipcount {
    char ip[64];
    int n;
};

struct turn_listener {
    struct turn_server *srv;
    struct evconnlistener *lev;
    char site[CONF_NAME_MAX];
};

struct turn_server {
    struct event_base *base;
    char *conf_path;
    struct turn_gen *gen; /* current generation */
    struct store *st;
    struct store_owner owner;
    struct turn_listener **lis;
    int nlis;
    struct turn_session *sessions; /* doubly linked list of live sessions */
    int nsessions;
    struct turn_ipcount *ips;
    int nips;
    struct turn_penalty *penalty;
    struct event *renew_ev;
    struct event *sig_term, *sig_int, *sig_hup;
    bool stopping;
};

/* turn_server.c */
bool turn_server_init(struct turn_server *srv, struct event_base *base, const char *conf_path,
                      struct turn_gen *gen, struct store *st);
int turn_server_listen(struct turn_server *srv);
void turn_server_reload(struct turn_server *srv);
void turn_server_shutdown(struct turn_server *srv);
void turn_server_free(struct turn_server *srv);
/* turn_sockaddr_text - numeric address text and port of sa (turn_session.c). */
void turn_sockaddr_text(const struct sockaddr *sa, char *ip, size_t iplen, int *port);
/* turn_server_session_gone - a session ended: unlink it and release its caps. */
void turn_server_session_gone(struct turn_server *srv, struct turn_session *s);
int turn_site_index(const struct conf *cf, const char *name);

/* turn_session.c */
enum turn_state {
    TURN_S_INITIAL = 0,      /* customer commands, not authenticated */
    TURN_S_AUTH_IN_PROGRESS, /* reading SASL responses */
    TURN_S_AUTHENTICATED,    /* customer commands, identity known */
    TURN_S_REVERSING,        /* 250 to ATRN/TURN written, waiting for it to flush */
    TURN_S_REVERSED,         /* provider is the SMTP client now */
    TURN_S_CLOSING,          /* last reply flushing, then free */
};

const char *turn_state_name(int state);
/* turn_session_start - take fd (accepted on srv for site). */
void turn_session_start(struct turn_server *srv, int fd, const struct sockaddr *sa, int salen,
                        const char *site);
/* turn_session_abort - shutdown: drop the session (reversed runs keep mail held). */
void turn_session_abort(struct turn_session *s, const char *why);
struct turn_session *turn_session_next(struct turn_session *s);

/* turn_penalty.c: delays after failed AUTH, per client address */
struct turn_penalty *turn_penalty_new(void);
void turn_penalty_free(struct turn_penalty *p);
/* turn_penalty_fail - count a failure; returns the delay in seconds before the 535. */
int turn_penalty_fail(struct turn_penalty *p, const char *ip, int64_t now);
/* turn_penalty_delay - delay a next failure would get now (for tests/logs). */
int turn_penalty_peek(struct turn_penalty *p, const char *ip, int64_t now);

#endif
