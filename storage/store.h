/*
 * store.h - the holdmx queue store: the whole public interface of storage/.
 *
 * storage/ is the only code that includes lmdb.h or opens a transaction.
 * Callers see opaque handles, fixed-size records and status codes; no
 * transaction is ever held open across a return to the caller.  Every
 * function is synchronous and returns an enum store_status (0 = STORE_OK).
 *
 * Data model
 *  - A message is stored once however many recipients it has: an envelope
 *    record (sender, ESMTP/DSN parameters, arrival, client, site) and a
 *    body (stored in chunks so it can be read back piecewise).
 *  - Each recipient has its own record: address, domain, DSN NOTIFY/ORCPT,
 *    state (held / leased / delivered / failed), attempts, last reply.
 *  - Indexes by recipient domain and by site make listing, counting and
 *    claiming one domain's mail cost in proportion to that domain's mail.
 *  - Held domains, accounts (name -> allowed domains) and per-domain /
 *    per-site counters live in the same environment and change in the same
 *    transactions as the messages.
 *
 * Processes: queued and turnd (and queuectl) open the same environment.
 * Open it after fork(), once per process.  Delivery claims recipients with
 * a lease (owner = pid + process start time, plus an expiry); a lease of a
 * dead owner or an expired lease goes back to "held" in store_lease_recover.
 *
 * Durability: store_msg_add() commits a whole batch of messages in one
 * transaction (group commit) with full fsync; when it returns STORE_OK for
 * a message, that message is on stable storage and the caller may say 250.
 *
 * Map growth: the LMDB map starts at opts.map_size and grows as needed up
 * to opts.map_size_max; past that, writes fail with STORE_FULL (SMTP 452)
 * and the environment stays consistent.
 */
#ifndef HM_STORE_H
#define HM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

enum store_status {
    STORE_OK = 0,
    STORE_NOTFOUND,   /* no such message/domain/account/site */
    STORE_EXISTS,     /* create of something that exists */
    STORE_NOTEMPTY,   /* delete of a domain/site that still holds mail */
    STORE_FULL,       /* map at its size limit or disk full: SMTP 452 */
    STORE_LIMIT,      /* a domain or site quota would be exceeded: 452 4.3.1 */
    STORE_BUSY,       /* recipient leased by another owner */
    STORE_INVAL,      /* bad argument (name too long, empty, ...) */
    STORE_VERSION,    /* environment written by a newer schema */
    STORE_CORRUPT,    /* a record or the schema record cannot be decoded */
    STORE_IO,         /* any other LMDB or system error (see store_last_error) */
};

/* store_strerror - a short English text for a status. */
const char *store_strerror(int status);

struct store;

struct store_opts {
    const char *dir;       /* environment directory (created if missing) */
    uint64_t map_size;     /* initial map size in bytes (0 = 64 MiB) */
    uint64_t map_size_max; /* hard limit (0 = 8 GiB) */
    bool readonly;         /* queuectl's read-only verbs */
    unsigned max_readers;  /* 0 = 126 */
};

/*
 * store_open - open (creating and initialising when empty) the environment
 * in opts->dir.  A newer schema gives STORE_VERSION, an undecodable schema
 * record STORE_CORRUPT; err receives a sentence for the operator.
 */
int store_open(struct store **out, const struct store_opts *opts, char *err, size_t errlen);
void store_close(struct store *st);
/* store_last_error - detail of the last STORE_IO/STORE_CORRUPT in this handle. */
const char *store_last_error(const struct store *st);
/* store_schema_version - the schema version this code writes. */
unsigned store_schema_version(void);

/* ------------------------------------------------------------------ */
/* Names and limits                                                   */

#define STORE_DOMAIN_MAX 256  /* incl. NUL; domains are stored lower case */
#define STORE_SITE_MAX 64
#define STORE_ADDR_MAX 512    /* mailbox incl. NUL (RFC 5321 path <= 256) */
#define STORE_ROUTE_MAX 300
#define STORE_REPLY_MAX 512
#define STORE_ACCOUNT_MAX 256
#define STORE_PARAM_MAX 512   /* ENVID, ORCPT (xtext) */
#define STORE_RCPTS_MAX 100000 /* recipients of one message (bounds decoding) */

typedef uint64_t store_msgid_t;

/* store_id_format - queue id text of a message id (upper-case hex). */
#define STORE_ID_LEN 17
char *store_id_format(store_msgid_t id, char buf[STORE_ID_LEN]);
/* store_id_parse - inverse of store_id_format; false if not a queue id. */
bool store_id_parse(const char *s, store_msgid_t *id);

/* ------------------------------------------------------------------ */
/* Held domains                                                       */

struct store_domain {
    char name[STORE_DOMAIN_MAX];   /* lower case */
    char site[STORE_SITE_MAX];
    bool etrn_enabled;             /* false: ETRN answers 459 */
    char route[STORE_ROUTE_MAX];   /* "" = DNS; else "[addr]:port" or "host:port" */
    int64_t hold_time;             /* seconds; -1 = the configured default */
    int64_t delay_warning;         /* seconds; -1 = default; 0 = never */
    uint64_t max_queue;            /* messages; 0 = no limit */
    int64_t created;
};

int store_domain_put(struct store *st, const struct store_domain *d, bool create_only);
int store_domain_get(struct store *st, const char *name, struct store_domain *out);
/* store_domain_del - STORE_NOTEMPTY while mail for it is held. */
int store_domain_del(struct store *st, const char *name);
/* store_domain_iter - every domain in name order; cb returns non-zero to stop. */
int store_domain_iter(struct store *st, int (*cb)(const struct store_domain *d, void *arg), void *arg);

/* ------------------------------------------------------------------ */
/* Accounts: who may collect which domains                            */

struct store_account {
    char name[STORE_ACCOUNT_MAX];
    char *domains;     /* comma-separated, lower case; malloc'd */
    int64_t created;
};

int store_account_put(struct store *st, const struct store_account *a, bool create_only);
/* store_account_get - out->domains is malloc'd: store_account_release(). */
int store_account_get(struct store *st, const char *name, struct store_account *out);
void store_account_release(struct store_account *a);
int store_account_del(struct store *st, const char *name);
int store_account_iter(struct store *st, int (*cb)(const struct store_account *a, void *arg), void *arg);
/* store_account_may - true when account may collect domain (case-insensitive). */
bool store_account_may(struct store *st, const char *account, const char *domain);

/* ------------------------------------------------------------------ */
/* Sites (runtime flags; addresses etc. are in the configuration)     */

#define STORE_SITE_PAUSED 0x1u   /* new mail gets 421/451 */
#define STORE_SITE_DRAINING 0x2u /* a drain is in progress */

int store_site_flags_get(struct store *st, const char *site, unsigned *flags);
int store_site_flags_set(struct store *st, const char *site, unsigned flags);

/* ------------------------------------------------------------------ */
/* Counters                                                           */

struct store_counts {
    uint64_t messages;  /* messages with at least one pending recipient */
    uint64_t bytes;     /* their body sizes */
    int64_t oldest;     /* arrival time of the oldest, 0 if none */
};

int store_domain_counts(struct store *st, const char *domain, struct store_counts *out);
int store_site_counts(struct store *st, const char *site, struct store_counts *out);

/*
 * store_room_check - may a message of size bytes for domain on site be
 * accepted now?  STORE_OK, STORE_LIMIT (domain max_queue or the given site
 * limits reached), STORE_FULL (map nearly at its limit).
 */
int store_room_check(struct store *st, const char *site, uint64_t site_max_msgs,
                     uint64_t site_max_bytes, const char *domain, uint64_t size);

/* ------------------------------------------------------------------ */
/* Messages                                                           */

/* DSN NOTIFY bits (RFC 3461); 0 = not given (treat as FAILURE). */
#define STORE_NOTIFY_NEVER 0x1u
#define STORE_NOTIFY_SUCCESS 0x2u
#define STORE_NOTIFY_FAILURE 0x4u
#define STORE_NOTIFY_DELAY 0x8u

enum store_ret { STORE_RET_NONE = 0, STORE_RET_FULL, STORE_RET_HDRS };
enum store_body_type { STORE_BODY_NONE = 0, STORE_BODY_7BIT, STORE_BODY_8BITMIME };

enum store_rcpt_state {
    STORE_RCPT_HELD = 0,
    STORE_RCPT_LEASED,
    STORE_RCPT_DELIVERED,
    STORE_RCPT_FAILED,
};
const char *store_rcpt_state_name(int state);

/* Message flags. */
#define STORE_MSG_HOLD 0x1u   /* operator hold: not claimed by ETRN/ATRN */

struct store_rcpt_in {
    const char *addr;      /* mailbox without <>, e.g. "user@customer.example" */
    unsigned notify;       /* STORE_NOTIFY_* */
    const char *orcpt;     /* ORCPT parameter as received, or NULL */
};

struct store_msg_in {
    const char *site;
    const char *sender;    /* "" = null reverse path */
    uint64_t declared_size;/* SIZE= parameter, 0 if none */
    int body_type;         /* enum store_body_type */
    int ret;               /* enum store_ret */
    const char *envid;     /* ENVID or NULL */
    const char *client_addr; /* "127.0.0.1" */
    const char *client_helo;
    int64_t arrival;       /* time(NULL) at acceptance */
    const struct store_rcpt_in *rcpts;
    size_t nrcpts;
    /* body: either iov/iovcnt (memory) or fd (read from offset 0) */
    const struct iovec *iov;
    int iovcnt;
    int body_fd;           /* -1 when the body is in iov */
    uint64_t body_len;     /* total body length in bytes */
};

/*
 * store_msg_add - commit n messages in one transaction (group commit).
 * ids[i] and status[i] receive each message's queue id and outcome:
 * STORE_OK (durable), STORE_LIMIT (a quota filled up since RCPT time),
 * STORE_FULL, STORE_INVAL (e.g. no recipients) or STORE_IO.  Returns
 * STORE_OK when the transaction itself committed (some messages may still
 * have been refused individually), else the status given to all.
 */
int store_msg_add(struct store *st, const struct store_msg_in *const *msgs, size_t n,
                  store_msgid_t *ids, int *status);

struct store_msg_info {
    store_msgid_t id;
    char site[STORE_SITE_MAX];
    char sender[STORE_ADDR_MAX];
    char envid[STORE_PARAM_MAX];
    char client_addr[64];
    char client_helo[STORE_DOMAIN_MAX];
    int64_t arrival;
    uint64_t size;         /* body length */
    int body_type;
    int ret;
    unsigned flags;        /* STORE_MSG_* */
    uint32_t nrcpts;
};

struct store_rcpt_info {
    store_msgid_t msgid;
    uint32_t idx;          /* position within the message */
    char addr[STORE_ADDR_MAX];
    char domain[STORE_DOMAIN_MAX];
    char orcpt[STORE_PARAM_MAX];
    unsigned notify;
    int state;             /* enum store_rcpt_state */
    uint32_t attempts;
    char last_reply[STORE_REPLY_MAX];
    int64_t last_attempt;
    bool delay_warned;
    pid_t lease_pid;       /* when leased */
    int64_t lease_expiry;
};

/* store_msg_get - envelope and (if rcpts != NULL) a malloc'd recipient array. */
int store_msg_get(struct store *st, store_msgid_t id, struct store_msg_info *info,
                  struct store_rcpt_info **rcpts, size_t *nrcpts);

/* store_body_read - read up to len body bytes from offset; *got = bytes read (0 at end). */
int store_body_read(struct store *st, store_msgid_t id, uint64_t offset, void *buf,
                    size_t len, size_t *got);

struct store_filter {
    const char *site;      /* NULL = any */
    const char *domain;    /* NULL = any; uses the domain index */
    bool subdomains;       /* with domain: also its subdomains */
};

/*
 * store_msg_iter - every message matching filter, oldest first, with its
 * recipients (only those of the filter's domain when a domain is given).
 * The callback must not call back into the store for writes; return
 * non-zero to stop.  Reads are done in short transactions, in batches.
 */
int store_msg_iter(struct store *st, const struct store_filter *f,
                   int (*cb)(const struct store_msg_info *m, const struct store_rcpt_info *r,
                             size_t nr, void *arg),
                   void *arg);

/* Operator actions on one message. */
int store_msg_set_flags(struct store *st, store_msgid_t id, unsigned set, unsigned clear);
/* store_msg_delete - remove a message and all its records (counters kept right). */
int store_msg_delete(struct store *st, store_msgid_t id);
/* store_msg_move_site - re-home a message to another site atomically. */
int store_msg_move_site(struct store *st, store_msgid_t id, const char *site);
/*
 * store_msg_bounce - fail every pending (held or leased) recipient of one
 * message with reason (NULL = "bounced by the operator") in one
 * transaction; failure notes are queued as for STORE_OUT_FAILED.
 * *failed (may be NULL) = how many recipients were failed.
 */
int store_msg_bounce(struct store *st, store_msgid_t id, const char *reason, size_t *failed);

/* ------------------------------------------------------------------ */
/* Leases: claiming recipients for delivery                           */

struct store_owner {
    pid_t pid;
    uint64_t start;        /* process start time token (see store_owner_self) */
};

/* store_owner_self - this process's owner identity. */
void store_owner_self(struct store_owner *o);

struct store_claim_msg {
    struct store_msg_info info;
    struct store_rcpt_info *rcpts; /* only the claimed recipients */
    size_t nrcpts;
};

struct store_claim {
    struct store_claim_msg *msgs;
    size_t nmsgs;
    size_t nrcpts;         /* total claimed recipients */
};

/*
 * store_claim - atomically lease every held recipient in the given domains
 * (with subdomains if asked) that is not on hold and not leased by a live
 * owner, up to max_msgs messages (0 = no limit), for ttl seconds.
 * Recipients of the same message in other domains are not touched.
 * *out is malloc'd (store_claim_free); nmsgs may be 0.
 */
int store_claim(struct store *st, const char *const *domains, size_t ndomains, bool subdomains,
                const struct store_owner *owner, int64_t ttl, size_t max_msgs,
                struct store_claim **out);
void store_claim_free(struct store_claim *c);

/* store_lease_renew - push the expiry of every lease of owner to now + ttl. */
int store_lease_renew(struct store *st, const struct store_owner *owner, int64_t ttl);

enum store_outcome_kind {
    STORE_OUT_DELIVERED,   /* 2xx: done, removed from the held set */
    STORE_OUT_DEFERRED,    /* 4xx or connection lost: back to held, attempts+1 */
    STORE_OUT_FAILED,      /* 5xx: failed; a DSN is queued unless sender is null */
};

struct store_outcome {
    store_msgid_t msgid;
    uint32_t idx;
    int kind;              /* enum store_outcome_kind */
    const char *reply;     /* the remote reply or a local reason */
};

/*
 * store_outcome_apply - record n outcomes of recipients leased by owner in
 * one transaction.  An outcome for a recipient not leased by owner is
 * ignored (status[i] = STORE_BUSY if status != NULL).  Messages whose
 * recipients are all final and that need no DSN are removed.
 */
int store_outcome_apply(struct store *st, const struct store_owner *owner,
                        const struct store_outcome *o, size_t n, int *status);

/* store_lease_release - every lease of owner back to held (attempts unchanged). */
int store_lease_release(struct store *st, const struct store_owner *owner);

/*
 * store_lease_recover - leases that expired before now, or whose owner
 * process is gone, go back to held.  *recovered = how many (may be NULL).
 */
int store_lease_recover(struct store *st, int64_t now, size_t *recovered);

/* ------------------------------------------------------------------ */
/* Notifications: bounces and delay warnings                          */

enum store_notify_kind { STORE_NOTE_FAILED = 1, STORE_NOTE_DELAYED = 2 };

/*
 * store_expire - the queue manager's periodic step.  For recipients whose
 * domain hold time (or the default) ran out by now: state FAILED with the
 * reason "hold time expired", and a failure notification queued.  For
 * recipients older than their delay_warning and not yet warned: a delay
 * notification queued (once).  Uses the time index (cost ~ due items).
 */
int store_expire(struct store *st, int64_t now, int64_t default_hold, int64_t default_warn,
                 size_t *expired, size_t *warned);

struct store_note {
    store_msgid_t msgid;
    int kind;                        /* enum store_notify_kind */
    struct store_msg_info info;
    struct store_rcpt_info *rcpts;   /* the recipients this note reports */
    size_t nrcpts;
};

/* store_note_next - up to max pending notes (oldest first); malloc'd array. */
int store_note_next(struct store *st, size_t max, struct store_note **notes, size_t *n);
void store_note_free(struct store_note *notes, size_t n);
/* store_note_done - the DSN for (msgid, kind) was handed to the relay. */
int store_note_done(struct store *st, store_msgid_t msgid, int kind);

/* ------------------------------------------------------------------ */
/* Maintenance                                                        */

struct store_envinfo {
    uint64_t map_size;
    uint64_t map_used;     /* last page * page size */
    uint64_t map_size_max;
    unsigned readers;
    unsigned max_readers;
};
int store_env_info(struct store *st, struct store_envinfo *out);
/* store_reader_check - clear reader slots of dead processes. */
int store_reader_check(struct store *st, int *cleared);

/*
 * store_debug_put - tests and repair tools only: write the raw record
 * key -> val into the named sub-database ("meta", "msg", "rcpt", ...; see
 * store_schema.c), or delete key when val is NULL.  Bypasses every check.
 */
int store_debug_put(struct store *st, const char *db, const void *key, size_t klen,
                    const void *val, size_t vlen);

#endif
