/*
 * hm_testsink.h - a small SMTP sink server for tests, on libevent.
 *
 * It listens on a loopback address with a port chosen by the OS, speaks
 * enough ESMTP for the delivery engine (EHLO/HELO, MAIL, RCPT, DATA,
 * RSET, NOOP, QUIT, with PIPELINING/SIZE/8BITMIME/DSN advertised on
 * request) and records what it received.  Behaviour per recipient comes
 * from the local part: "defer..." gets 451, "reject..." gets 550, anything
 * else 250; a sender starting with "defermail" or "rejectmail" gets 451 or
 * 550 at MAIL.  With cfg.tls_ctx it offers STARTTLS (common/tls.c).
 * Run it on the same event_base as the code under test.
 *
 * Use from a test with: #include "hm_testsink.c" (only test_*.c files are
 * built as programs, so the helper is compiled into each test using it).
 */
#ifndef HM_TESTSINK_H
#define HM_TESTSINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct hm_sink;
struct ssl_ctx_st;

struct hm_sink_cfg {
    const char *addr;           /* listen address, default "127.0.0.1" */
    const char *greeting;       /* whole greeting with CRLFs; default one 220 line */
    int greeting_delay_ms;      /* send the greeting this late */
    bool ehlo_reject;           /* answer EHLO with 502 (client must use HELO) */
    bool pipelining;            /* advertise PIPELINING */
    bool eightbitmime;          /* advertise 8BITMIME */
    bool dsn;                   /* advertise DSN */
    bool size_adv;              /* advertise SIZE [size_max] */
    uint64_t size_max;          /* with size_adv; 0 = no fixed limit */
    int data_code;              /* reply to DATA; 0 = 354 */
    int dot_code;               /* reply after the final dot; 0 = 250 */
    long drop_after_body;       /* >= 0: close after this many body bytes; -1 = never */
    bool silent_after_dot;      /* never answer the final dot (timeout tests) */
    struct ssl_ctx_st *tls_ctx; /* non-NULL: offer STARTTLS (tls_server_ctx_new) */
};

/* hm_sink_msg - one accepted transaction. */
struct hm_sink_msg {
    char *mail_line; /* the MAIL command as received */
    char *sender;
    char **rcpts; /* accepted recipients */
    size_t nrcpts;
    char *raw; /* data lines as on the wire (stuffed), without the final dot */
    size_t raw_len;
    char *body; /* unstuffed */
    size_t body_len;
    bool tls; /* received after STARTTLS */
};

/* hm_sink_cfg_default - plain ESMTP with PIPELINING, 8BITMIME and DSN. */
void hm_sink_cfg_default(struct hm_sink_cfg *cfg);
/* hm_sink_new - listen on cfg->addr, port 0; NULL on failure. */
struct hm_sink *hm_sink_new(struct event_base *base, const struct hm_sink_cfg *cfg);
void hm_sink_free(struct hm_sink *s);
uint16_t hm_sink_port(const struct hm_sink *s);
/* hm_sink_count / hm_sink_get - transactions that got a 250 after the dot. */
size_t hm_sink_count(const struct hm_sink *s);
const struct hm_sink_msg *hm_sink_get(const struct hm_sink *s, size_t i);
/* hm_sink_transcript - every command line received, "\n"-separated. */
const char *hm_sink_transcript(const struct hm_sink *s);
unsigned hm_sink_connections(const struct hm_sink *s);
/* hm_sink_early_talk - a client sent bytes before the greeting. */
bool hm_sink_early_talk(const struct hm_sink *s);
/* hm_sink_max_batch - most commands that arrived together (pipelining evidence). */
size_t hm_sink_max_batch(const struct hm_sink *s);
/* hm_sink_count_cmd - how many commands started with verb (case-insensitive). */
size_t hm_sink_count_cmd(const struct hm_sink *s, const char *verb);

#endif
