/*
 * smtpd.h - queued's SMTP server side: ingress of held mail and ETRN.
 *
 * One struct smtpd per queued process owns every SMTP session, the
 * per-site TLS server contexts and the group-commit batch.  Listeners
 * (listen.c) hand accepted sockets to smtpd_accept(); each session is a
 * libevent bufferevent driven by an explicit state machine
 * (smtpd_session.c), one command table (smtpd_cmd.c), the DATA reader
 * (smtpd_data.c) and the group commit (smtpd_commit.c): at the end of DATA
 * a session parks its transaction in a batch that one zero-timeout event
 * commits with a single store_msg_add() call; only then is 250 sent.
 *
 * Lifetime: the conf given to smtpd_new()/smtpd_set_conf() must outlive the
 * smtpd or the next smtpd_set_conf(); sessions copy what they keep (site
 * name, host name), so a reload never leaves them with dangling pointers.
 *
 * The second half of this header is internal to the smtpd*.c files.
 */
#ifndef HM_SMTPD_H
#define HM_SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "conf.h"
#include "line.h"
#include "store.h"

#define SMTPD_LINE_MAX  512          /* RFC 5321 4.5.3.1.4 command line incl. CRLF */
#define SMTPD_TEXT_MAX  1000         /* RFC 5321 4.5.3.1.6 text line incl. CRLF */
#define SMTPD_PATH_MAX  256          /* RFC 5321 4.5.3.1.3 path incl. <> */
#define SMTPD_LOCAL_MAX 64           /* RFC 5321 4.5.3.1.1 local part */
#define SMTPD_SPILL_AT  (256 * 1024) /* bodies past this go to an unlinked file */

struct event_base;
struct etrn_engine;
struct smtpd;

/* ------------------------------------------------------------------ */
/* Public API (queued.c, listen.c)                                    */

/*
 * smtpd_new - the SMTP server for cf on base.  Loads every site's TLS
 * certificate; NULL with a reason in err when one cannot be loaded.
 * etrn may be NULL (ETRN then answers 458).
 */
struct smtpd *smtpd_new(struct event_base *base, struct store *st, struct etrn_engine *etrn,
                        const struct conf *cf, char *err, size_t errlen);
/* smtpd_set_conf - switch to a reloaded cf (new TLS contexts); -1 + err if refused. */
int smtpd_set_conf(struct smtpd *sd, const struct conf *cf, char *err, size_t errlen);
/* smtpd_accept - take over an accepted socket for site (closed on refusal). */
void smtpd_accept(struct smtpd *sd, const char *site, evutil_socket_t fd, const struct sockaddr *sa,
                  int salen);
/* smtpd_shutdown - commit what is pending, say 421 to every session, refuse new ones. */
void smtpd_shutdown(struct smtpd *sd);
/* smtpd_session_count - live sessions (shutdown waits for 0). */
size_t smtpd_session_count(const struct smtpd *sd);
/* smtpd_free - free every remaining session and the server itself. */
void smtpd_free(struct smtpd *sd);

/* listen_set - the bound SMTP listeners of every site (listen.c). */
struct listen_set;
/*
 * listen_open - bind every smtp_listen address of cf.  Sockets of prev
 * (may be NULL) with the same address are taken over instead of bound
 * again (reload); prev is left intact on failure.  NULL + err on failure.
 */
struct listen_set *listen_open(struct event_base *base, const struct conf *cf, struct smtpd *sd,
                               struct listen_set *prev, char *err, size_t errlen);
/* listen_disable - stop accepting (shutdown) without closing the sockets. */
void listen_disable(struct listen_set *ls);
/* listen_close - close every listener still owned by ls and free it. */
void listen_close(struct listen_set *ls);

/* ------------------------------------------------------------------ */
/* Internal to smtpd*.c                                               */

enum smtpd_state {
    SMTPD_S_CONNECTED = 0, /* greeted; HELO/EHLO needed */
    SMTPD_S_HELO,          /* HELO/EHLO done, no transaction */
    SMTPD_S_MAIL,          /* MAIL accepted, no recipient yet */
    SMTPD_S_RCPT,          /* at least one recipient accepted */
    SMTPD_S_DATA,          /* reading message content */
    SMTPD_S_COMMIT,        /* end of data seen; waiting for the group commit */
    SMTPD_S_STARTTLS,      /* 220 queued; handshake starts once it is written */
    SMTPD_S_TLS,           /* TLS handshake in progress */
    SMTPD_S_CLOSING,       /* last reply queued; freed once it is written */
};

/* Transaction errors found while reading DATA, reported after the dot. */
#define SMTPD_TXE_SIZE 0x1u /* message over max_message_size: 552 */
#define SMTPD_TXE_LINE 0x2u /* a text line over 1000 octets: 500 */
#define SMTPD_TXE_NUL  0x4u /* NUL byte in the content: 550 */
#define SMTPD_TXE_IO   0x8u /* spill file problem: 451 */

struct smtpd_rcpt {
    char *addr;   /* mailbox without <> */
    char *domain; /* lower case, points into a copy owned here */
    unsigned notify;
    char *orcpt; /* NULL if not given */
};

/* smtpd_tx - one mail transaction; owned by the session, then by the commit batch. */
struct smtpd_tx {
    uint64_t sess_id; /* session that owns the reply */
    char *site, *client_addr, *client_helo;
    char *sender; /* "" = null reverse path */
    uint64_t declared_size;
    int body_type; /* enum store_body_type */
    int ret;       /* enum store_ret */
    char *envid;
    struct smtpd_rcpt *rcpts;
    size_t nrcpts, arcpts;
    struct evbuffer *body; /* content not yet spilled */
    int body_fd;           /* -1 until spilled */
    uint64_t body_len;     /* total content octets (memory + file) */
    unsigned error;        /* SMTPD_TXE_* */
    bool prev_crlf;        /* last text line ended with CRLF */
    int64_t arrival;
};

#define SMTPD_NCOUNTERS 24

struct smtpd_session {
    TAILQ_ENTRY(smtpd_session) link;
    struct smtpd *sd;
    uint64_t id;
    enum smtpd_state state;
    struct bufferevent *bev;
    struct event *close_ev; /* polls for the last reply to be written */
    int close_polls;
    char site[CONF_NAME_MAX];
    char hostname[CONF_HOST_MAX];
    char addr[64]; /* client IP text */
    char helo[CONF_HOST_MAX];
    bool esmtp; /* EHLO (not HELO) was used */
    bool tls;   /* TLS is up */
    char tls_desc[128];
    struct line_reader lr;
    char line[SMTPD_TEXT_MAX + 8];
    const char *where; /* last command, for "lost connection after X" */
    int last_code;     /* code of the last reply */
    int errors, junk;
    unsigned counts[SMTPD_NCOUNTERS]; /* per command table entry */
    struct smtpd_tx *tx;
};

TAILQ_HEAD(smtpd_session_list, smtpd_session);

/* smtpd_tls_slot - one site's STARTTLS context. */
struct smtpd_tls_slot {
    char site[CONF_NAME_MAX];
    struct ssl_ctx_st *ctx;
};

struct smtpd {
    struct event_base *base;
    struct store *st;
    struct etrn_engine *etrn;
    const struct conf *cf;
    struct smtpd_tls_slot *tls;
    int ntls;
    struct smtpd_session_list sessions;
    size_t nsessions;
    uint64_t next_id;
    struct smtpd_tx **pending; /* the group-commit batch */
    size_t npending, apending;
    struct event *commit_ev;
    bool stopping;
    char tmpdir[4096]; /* <state_dir>/tmp for spilled bodies */
};

/* smtpd_session.c */
void smtpd_enter_state(struct smtpd_session *s, enum smtpd_state state);
void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtpd_close(struct smtpd_session *s);
void smtpd_resume(struct smtpd_session *s);
struct smtpd_session *smtpd_session_find(struct smtpd *sd, uint64_t id);
struct ssl_ctx_st *smtpd_tls_ctx(struct smtpd *sd, const char *site);
void smtpd_starttls(struct smtpd_session *s);
const struct conf_site *smtpd_site(const struct smtpd_session *s);

/* smtpd_cmd.c */
void smtpd_cmd_dispatch(struct smtpd_session *s, const char *line, size_t len, unsigned flags);
void smtpd_cmd_toolong(struct smtpd_session *s);
const char *smtpd_cmd_name(int idx);
int smtpd_cmd_count(void);

/* smtpd_envelope.c and smtpd_etrn.c: command handlers used by the table */
void smtpd_mail(struct smtpd_session *s, char *args);
void smtpd_rcpt(struct smtpd_session *s, char *args);
void smtpd_etrn(struct smtpd_session *s, char *args);

/* smtpd_addr.c */
enum smtpd_addr_status { SMTPD_ADDR_OK = 0, SMTPD_ADDR_SYNTAX, SMTPD_ADDR_TOOLONG };
int smtpd_path_parse(const char **p, char *out, size_t outsz, bool allow_null, const char **domain);
bool smtpd_xtext_ok(const char *s, size_t max);
bool smtpd_domain_ok(const char *d, bool need_dot);
bool smtpd_helo_ok(const char *s);

/* smtpd_data.c */
struct smtpd_tx *smtpd_tx_new(struct smtpd_session *s);
void smtpd_tx_free(struct smtpd_tx *tx);
void smtpd_tx_drop(struct smtpd_session *s);
void smtpd_data_begin(struct smtpd_session *s);
void smtpd_data_line(struct smtpd_session *s, int lstatus, const char *line, size_t len,
                     unsigned flags, size_t raw);

/* smtpd_commit.c */
void smtpd_commit_enqueue(struct smtpd_session *s);
void smtpd_commit_run(struct smtpd *sd);

#endif
