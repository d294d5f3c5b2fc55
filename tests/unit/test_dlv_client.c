/*
 * test_dlv_client.c - the SMTP client engine (dlv_client.c) against the
 * in-test sink (hm_testsink.c) over real loopback TCP connections.
 *
 * Messages come from a test source (dlv_src.h) that records the outcomes
 * the engine applies, so every per-recipient decision is checked without
 * the store; test_etrn_run.c covers the store-backed source.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dlv.h"
#include "dlv_src.h"
#include "hm_testsink.c"
#include "log.h"
#include "tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T_MAX_MSGS  4
#define T_MAX_RCPTS 4

/* tmsg - one test message with the outcomes the engine applied. */
struct tmsg {
    const char *sender;
    const char *body;
    size_t body_len;
    int body_type;
    int ret;
    const char *envid;
    const char *rcpts[T_MAX_RCPTS];
    unsigned notify[T_MAX_RCPTS];
    const char *orcpt[T_MAX_RCPTS];
    size_t nrcpts;
    int kinds[T_MAX_RCPTS];
    char replies[T_MAX_RCPTS][STORE_REPLY_MAX];
    int applied;
};

/* tsrc - the test source. */
struct tsrc {
    struct tmsg msgs[T_MAX_MSGS];
    size_t nmsgs;
    bool freed;
};

/* t_nmsgs - dlv_src_ops.nmsgs */
static size_t t_nmsgs(void *ctx)
{
    return ((struct tsrc *)ctx)->nmsgs;
}

/* t_msg - dlv_src_ops.msg */
static void t_msg(void *ctx, size_t i, struct dlv_src_msg *out)
{
    struct tmsg *m = &((struct tsrc *)ctx)->msgs[i];

    memset(out, 0, sizeof(*out));
    snprintf(out->qid, sizeof(out->qid), "T%zu", i);
    out->sender = m->sender;
    out->size = m->body_len;
    out->body_type = m->body_type;
    out->ret = m->ret;
    out->envid = m->envid;
    out->nrcpts = m->nrcpts;
}

/* t_rcpt - dlv_src_ops.rcpt */
static void t_rcpt(void *ctx, size_t i, size_t j, struct dlv_src_rcpt *out)
{
    struct tmsg *m = &((struct tsrc *)ctx)->msgs[i];

    out->addr = m->rcpts[j];
    out->notify = m->notify[j];
    out->orcpt = m->orcpt[j];
}

/* t_read - dlv_src_ops.read, in odd-sized pieces to exercise chunk joins. */
static int t_read(void *ctx, size_t i, uint64_t off, void *buf, size_t len, size_t *got)
{
    struct tmsg *m = &((struct tsrc *)ctx)->msgs[i];
    size_t n = len > 7001 ? 7001 : len;

    *got = 0;
    if (off >= m->body_len)
        return 0;
    if (n > m->body_len - off)
        n = m->body_len - (size_t)off;
    memcpy(buf, m->body + off, n);
    *got = n;
    return 0;
}

/* t_apply - dlv_src_ops.apply: remember the outcomes. */
static void t_apply(void *ctx, size_t i, const int *kinds, const char *const *replies)
{
    struct tmsg *m = &((struct tsrc *)ctx)->msgs[i];

    m->applied++;
    for (size_t j = 0; j < m->nrcpts; j++) {
        m->kinds[j] = kinds[j];
        snprintf(m->replies[j], sizeof(m->replies[j]), "%s", replies[j] ? replies[j] : "");
    }
}

/* t_free - dlv_src_ops.free: the context is the test's; just note it. */
static void t_free(void *ctx)
{
    ((struct tsrc *)ctx)->freed = true;
}

static const struct dlv_src_ops t_ops = {t_nmsgs, t_msg, t_rcpt, t_read, t_apply, t_free};

/* trun - one session run's observations. */
struct trun {
    struct event_base *base;
    int done_calls;
    struct dlv_result res;
};

/* t_done - the engine's completion callback. */
static void t_done(struct dlv_session *s, const struct dlv_result *r, void *arg)
{
    struct trun *t = arg;

    (void)s;
    t->done_calls++;
    t->res = *r;
    event_base_loopbreak(t->base);
}

/* t_connect - a bufferevent connecting to 127.0.0.1:port. */
static struct bufferevent *t_connect(struct event_base *base, uint16_t port)
{
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return bev;
}

/* t_loop - run base until done or 20 s passed (every test loop is bounded). */
static void t_loop(struct trun *t)
{
    struct timeval limit = {20, 0};

    event_base_loopexit(t->base, &limit);
    event_base_dispatch(t->base);
}

/* t_run - deliver src to a sink configured by cfg; returns the sink (caller frees). */
static struct hm_sink *t_run(const struct hm_sink_cfg *cfg, struct tsrc *src,
                             const struct dlv_opts *opts, struct trun *t)
{
    struct hm_sink *sink;
    struct dlv_opts o;

    memset(t, 0, sizeof(*t));
    t->base = event_base_new();
    sink = hm_sink_new(t->base, cfg);
    assert_non_null(sink);
    if (opts)
        o = *opts;
    else
        dlv_opts_default(&o);
    o.helo_name = "client.test";
    o.peer_name = "sink.test[127.0.0.1]";
    dlv_start_src(t->base, t_connect(t->base, hm_sink_port(sink)), &t_ops, src, &o, t_done, t);
    t_loop(t);
    assert_int_equal(t->done_calls, 1);
    assert_true(src->freed);
    assert_false(hm_sink_early_talk(sink));
    return sink;
}

/* t_end - free the sink and the base. */
static void t_end(struct hm_sink *sink, struct trun *t)
{
    hm_sink_free(sink);
    event_base_free(t->base);
}

/* tcase - one delivery run: sink behaviour, source, engine options, results. */
struct tcase {
    struct hm_sink_cfg cfg;
    struct tsrc src;
    struct dlv_opts opts;
    struct trun t;
    struct hm_sink *sink;
};

/* t_case_init - default sink and engine options, an empty source. */
static void t_case_init(struct tcase *c)
{
    memset(c, 0, sizeof(*c));
    hm_sink_cfg_default(&c->cfg);
    dlv_opts_default(&c->opts);
}

/* t_case_run - deliver c->src to a sink configured by c->cfg. */
static void t_case_run(struct tcase *c)
{
    c->sink = t_run(&c->cfg, &c->src, &c->opts, &c->t);
}

/* t_case_end - free the run's sink and base. */
static void t_case_end(struct tcase *c)
{
    t_end(c->sink, &c->t);
}

/* t_add - add a message with recipients (NULL-terminated) to src. */
static struct tmsg *t_add(struct tsrc *src, const char *sender, const char *body, ...)
{
    struct tmsg *m = &src->msgs[src->nmsgs++];
    va_list ap;
    const char *r;

    m->sender = sender;
    m->body = body;
    m->body_len = strlen(body);
    va_start(ap, body);
    while ((r = va_arg(ap, const char *)) != NULL)
        m->rcpts[m->nrcpts++] = r;
    va_end(ap);
    for (size_t j = 0; j < T_MAX_RCPTS; j++)
        m->kinds[j] = -99;
    return m;
}

static const char t_body[] = "Subject: t\r\n\r\nhello\r\n";

/* t_basic - per-recipient 2xx/4xx/5xx with and without pipelining. */
static void t_basic(bool pipelining)
{
    struct tcase c;

    t_case_init(&c);
    c.cfg.pipelining = pipelining;
    t_add(&c.src, "s@a.test", t_body, "ok1@c.test", "defer1@c.test", "reject1@c.test", NULL);
    t_add(&c.src, "", t_body, "ok2@c.test", NULL);
    t_case_run(&c);

    assert_int_equal(c.src.msgs[0].applied, 1);
    assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_DELIVERED);
    assert_int_equal(c.src.msgs[0].kinds[1], STORE_OUT_DEFERRED);
    assert_int_equal(c.src.msgs[0].kinds[2], STORE_OUT_FAILED);
    assert_non_null(strstr(c.src.msgs[0].replies[0], "250 2.0.0 queued"));
    assert_non_null(strstr(c.src.msgs[0].replies[1], "451"));
    assert_non_null(strstr(c.src.msgs[0].replies[2], "550 5.1.1"));
    assert_int_equal(c.src.msgs[1].kinds[0], STORE_OUT_DELIVERED);
    assert_int_equal(c.t.res.delivered, 2);
    assert_int_equal(c.t.res.deferred, 1);
    assert_int_equal(c.t.res.failed, 1);
    assert_true(c.t.res.session_ok);

    assert_int_equal(hm_sink_count(c.sink), 2);
    assert_int_equal(hm_sink_get(c.sink, 0)->nrcpts, 1);
    assert_string_equal(hm_sink_get(c.sink, 0)->rcpts[0], "ok1@c.test");
    assert_string_equal(hm_sink_get(c.sink, 0)->body, t_body);
    assert_string_equal(hm_sink_get(c.sink, 1)->sender, "");
    assert_non_null(strstr(hm_sink_transcript(c.sink), "MAIL FROM:<>"));
    assert_int_equal(hm_sink_count_cmd(c.sink, "QUIT"), 1);
    if (pipelining)
        assert_true(hm_sink_max_batch(c.sink) >= 5); /* MAIL + 3 RCPT + DATA */
    else
        assert_int_equal(hm_sink_max_batch(c.sink), 1);
    t_case_end(&c);
}

/* test_outcomes_pipelining - MAIL+RCPTs+DATA in one write, replies counted back. */
static void test_outcomes_pipelining(void **state)
{
    (void)state;
    t_basic(true);
}

/* test_outcomes_lockstep - one command at a time without PIPELINING. */
static void test_outcomes_lockstep(void **state)
{
    (void)state;
    t_basic(false);
}

/* t_mail_refused - a MAIL refusal settles all recipients, then RSET and the next message. */
static void t_mail_refused(bool pipelining)
{
    struct tcase c;

    t_case_init(&c);
    c.cfg.pipelining = pipelining;
    t_add(&c.src, "rejectmail@a.test", t_body, "ok1@c.test", "ok2@c.test", NULL);
    t_add(&c.src, "defermail@a.test", t_body, "ok3@c.test", NULL);
    t_add(&c.src, "s@a.test", t_body, "ok4@c.test", NULL);
    t_case_run(&c);
    assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_FAILED);
    assert_int_equal(c.src.msgs[0].kinds[1], STORE_OUT_FAILED);
    assert_non_null(strstr(c.src.msgs[0].replies[1], "550 5.7.1"));
    assert_int_equal(c.src.msgs[1].kinds[0], STORE_OUT_DEFERRED);
    assert_int_equal(c.src.msgs[2].kinds[0], STORE_OUT_DELIVERED);
    assert_int_equal(hm_sink_count(c.sink), 1);
    assert_int_equal(hm_sink_count_cmd(c.sink, "RSET"), 2);
    t_case_end(&c);
}

/* test_mail_refused - with and without pipelining. */
static void test_mail_refused(void **state)
{
    (void)state;
    t_mail_refused(true);
    t_mail_refused(false);
}

/* test_data_refused - 554 to DATA fails the accepted recipients only. */
static void test_data_refused(void **state)
{
    struct tcase c;

    (void)state;
    t_case_init(&c);
    c.cfg.data_code = 554;
    t_add(&c.src, "s@a.test", t_body, "ok1@c.test", "defer@c.test", NULL);
    t_case_run(&c);
    assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_FAILED);
    assert_non_null(strstr(c.src.msgs[0].replies[0], "554"));
    assert_int_equal(c.src.msgs[0].kinds[1], STORE_OUT_DEFERRED);
    assert_int_equal(hm_sink_count_cmd(c.sink, "RSET"), 1);
    t_case_end(&c);
}

/* test_all_rcpts_refused - pipelined DATA answered 554, no body is sent. */
static void test_all_rcpts_refused(void **state)
{
    struct tcase c;

    (void)state;
    t_case_init(&c);
    t_add(&c.src, "s@a.test", t_body, "reject1@c.test", "reject2@c.test", NULL);
    t_add(&c.src, "s@a.test", t_body, "ok@c.test", NULL);
    t_case_run(&c);
    assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_FAILED);
    assert_int_equal(c.src.msgs[0].kinds[1], STORE_OUT_FAILED);
    assert_int_equal(c.src.msgs[1].kinds[0], STORE_OUT_DELIVERED);
    assert_int_equal(hm_sink_count(c.sink), 1);
    t_case_end(&c);
}

/* test_dot_reply - 452 after the dot defers, 554 fails. */
static void test_dot_reply(void **state)
{
    static const int codes[] = {452, 554};
    static const int kinds[] = {STORE_OUT_DEFERRED, STORE_OUT_FAILED};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        struct tcase c;

        t_case_init(&c);
        c.cfg.dot_code = codes[i];
        t_add(&c.src, "s@a.test", t_body, "ok1@c.test", "reject@c.test", NULL);
        t_case_run(&c);
        assert_int_equal(c.src.msgs[0].kinds[0], kinds[i]);
        assert_int_equal(c.src.msgs[0].kinds[1], STORE_OUT_FAILED);
        assert_int_equal(hm_sink_count(c.sink), 0);
        t_case_end(&c);
    }
}

/* test_greeting_multiline_slow_helo - slow multi-line 220, EHLO refused, HELO used. */
static void test_greeting_multiline_slow_helo(void **state)
{
    struct tcase c;

    (void)state;
    t_case_init(&c);
    c.cfg.greeting =
        "220-sink.test first\r\n220-250 this is not a reply\r\n220 sink.test ready\r\n";
    c.cfg.greeting_delay_ms = 700;
    c.cfg.ehlo_reject = true;
    t_add(&c.src, "s@a.test", t_body, "ok@c.test", NULL);
    c.src.msgs[0].ret = STORE_RET_FULL;
    c.src.msgs[0].notify[0] = STORE_NOTIFY_SUCCESS;
    t_case_run(&c);
    assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_DELIVERED);
    assert_int_equal(hm_sink_count_cmd(c.sink, "EHLO"), 1);
    assert_int_equal(hm_sink_count_cmd(c.sink, "HELO"), 1);
    /* HELO session: no extensions at all, and one command per write. */
    assert_null(strstr(hm_sink_transcript(c.sink), "SIZE="));
    assert_null(strstr(hm_sink_transcript(c.sink), "RET="));
    assert_null(strstr(hm_sink_transcript(c.sink), "NOTIFY="));
    assert_int_equal(hm_sink_max_batch(c.sink), 1);
    t_case_end(&c);
}

/* test_greeting_refused - 554 greeting: everything deferred, QUIT sent. */
static void test_greeting_refused(void **state)
{
    struct tcase c;

    (void)state;
    t_case_init(&c);
    c.cfg.greeting = "554 5.3.2 go away\r\n";
    t_add(&c.src, "s@a.test", t_body, "ok@c.test", NULL);
    t_add(&c.src, "s@a.test", t_body, "ok@c.test", NULL);
    t_case_run(&c);
    assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_DEFERRED);
    assert_int_equal(c.src.msgs[1].kinds[0], STORE_OUT_DEFERRED);
    assert_int_equal(c.src.msgs[1].applied, 1);
    assert_false(c.t.res.session_ok);
    assert_non_null(strstr(c.t.res.reason, "go away"));
    assert_int_equal(hm_sink_count_cmd(c.sink, "EHLO"), 0);
    assert_int_equal(hm_sink_count_cmd(c.sink, "QUIT"), 1);
    t_case_end(&c);
}

/* t_big_body - a body of n bytes of text lines, some starting with '.'. */
static char *t_big_body(size_t n)
{
    char *b = malloc(n + 1);
    size_t i = 0;

    assert_non_null(b);
    while (i < n) {
        size_t ll = 10 + (i * 7) % 990;
        bool dot = i % 3 == 0;
        for (size_t k = 0; k < ll && i < n; k++, i++)
            b[i] = k == 0 && dot ? '.' : (char)('a' + k % 26);
        if (i + 2 <= n) {
            b[i++] = '\r';
            b[i++] = '\n';
        }
    }
    b[n] = '\0';
    return b;
}

/* test_drop_mid_data - the server disconnects mid-body: all recipients deferred. */
static void test_drop_mid_data(void **state)
{
    struct tcase c;
    char *body = t_big_body(600000);

    (void)state;
    t_case_init(&c);
    c.cfg.drop_after_body = 100000;
    t_add(&c.src, "s@a.test", body, "ok1@c.test", "reject@c.test", NULL);
    t_add(&c.src, "s@a.test", t_body, "ok2@c.test", NULL);
    t_case_run(&c);
    assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_DEFERRED);
    assert_non_null(strstr(c.src.msgs[0].replies[0], "lost connection with sink.test"));
    assert_non_null(strstr(c.src.msgs[0].replies[0], " while sending "));
    assert_int_equal(c.src.msgs[0].kinds[1], STORE_OUT_FAILED);
    assert_int_equal(c.src.msgs[1].kinds[0], STORE_OUT_DEFERRED);
    assert_false(c.t.res.session_ok);
    assert_int_equal(c.t.res.deferred, 2);
    assert_int_equal(hm_sink_count(c.sink), 0);
    t_case_end(&c);
    free(body);
}

/* test_timeout_after_dot - no reply to the dot: deferred when data_term_timeout expires. */
static void test_timeout_after_dot(void **state)
{
    struct tcase c;

    (void)state;
    t_case_init(&c);
    c.opts.data_term_timeout = 1;
    c.cfg.silent_after_dot = true;
    t_add(&c.src, "s@a.test", t_body, "ok1@c.test", NULL);
    t_case_run(&c);
    assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_DEFERRED);
    assert_non_null(strstr(c.src.msgs[0].replies[0], "timed out"));
    assert_non_null(strstr(c.src.msgs[0].replies[0], "end of data"));
    t_case_end(&c);
}

/* test_size_limit - a message over the peer's SIZE fails 5.3.4 without MAIL. */
static void test_size_limit(void **state)
{
    struct tcase c;
    char *body = t_big_body(5000);

    (void)state;
    t_case_init(&c);
    c.cfg.size_adv = true;
    c.cfg.size_max = 1000;
    t_add(&c.src, "big@a.test", body, "ok1@c.test", NULL);
    t_add(&c.src, "small@a.test", t_body, "ok2@c.test", NULL);
    t_case_run(&c);
    assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_FAILED);
    assert_non_null(strstr(c.src.msgs[0].replies[0], "5.3.4"));
    assert_int_equal(c.src.msgs[1].kinds[0], STORE_OUT_DELIVERED);
    assert_null(strstr(hm_sink_transcript(c.sink), "big@a.test"));
    assert_non_null(strstr(hm_sink_transcript(c.sink), "MAIL FROM:<small@a.test> SIZE=21"));
    t_case_end(&c);
    free(body);
}

/* test_8bitmime - BODY=8BITMIME only when offered; 8-bit mail to a 7-bit peer fails 5.6.3. */
static void test_8bitmime(void **state)
{
    for (int offered = 0; offered < 2; offered++) {
        struct tcase c;

        (void)state;
        t_case_init(&c);
        c.cfg.eightbitmime = offered;
        t_add(&c.src, "s@a.test", "Subject: \xc3\xa9\r\n\r\nx\r\n", "ok1@c.test", NULL);
        c.src.msgs[0].body_type = STORE_BODY_8BITMIME;
        t_add(&c.src, "s@a.test", t_body, "ok2@c.test", NULL);
        c.src.msgs[1].body_type = STORE_BODY_7BIT;
        t_case_run(&c);
        if (offered) {
            assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_DELIVERED);
            assert_non_null(strstr(hm_sink_transcript(c.sink), "BODY=8BITMIME"));
        } else {
            assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_FAILED);
            assert_non_null(strstr(c.src.msgs[0].replies[0], "5.6.3"));
            assert_null(strstr(hm_sink_transcript(c.sink), "BODY="));
        }
        assert_int_equal(c.src.msgs[1].kinds[0], STORE_OUT_DELIVERED);
        assert_int_equal(hm_sink_count(c.sink), offered ? 2 : 1);
        t_case_end(&c);
    }
}

/* test_dsn_params - NOTIFY/ORCPT/RET/ENVID only when the peer offers DSN. */
static void test_dsn_params(void **state)
{
    for (int offered = 0; offered < 2; offered++) {
        struct tcase c;
        struct tmsg *m;
        const char *tr;

        (void)state;
        t_case_init(&c);
        c.cfg.dsn = offered;
        m = t_add(&c.src, "s@a.test", t_body, "ok1@c.test", "ok2@c.test", NULL);
        m->ret = STORE_RET_HDRS;
        m->envid = "QQ+2Bid";
        m->notify[0] = STORE_NOTIFY_SUCCESS | STORE_NOTIFY_FAILURE;
        m->orcpt[0] = "rfc822;ok1@c.test";
        m->notify[1] = STORE_NOTIFY_NEVER;
        t_case_run(&c);
        tr = hm_sink_transcript(c.sink);
        if (offered) {
            assert_non_null(strstr(tr, "MAIL FROM:<s@a.test> RET=HDRS ENVID=QQ+2Bid\n"));
            assert_non_null(strstr(
                tr, "RCPT TO:<ok1@c.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;ok1@c.test\n"));
            assert_non_null(strstr(tr, "RCPT TO:<ok2@c.test> NOTIFY=NEVER\n"));
        } else {
            assert_non_null(strstr(tr, "MAIL FROM:<s@a.test>\n"));
            assert_non_null(strstr(tr, "RCPT TO:<ok1@c.test>\n"));
        }
        assert_int_equal(hm_sink_count(c.sink), 1);
        t_case_end(&c);
    }
}

/* t_stuff_ref - reference dot-stuffing of a whole body, plus the CRLF the engine adds. */
static char *t_stuff_ref(const char *b, size_t n, size_t *outlen)
{
    char *o = malloc(2 * n + 3);
    size_t k = 0;
    bool bol = true;

    assert_non_null(o);
    for (size_t i = 0; i < n; i++) {
        if (bol && b[i] == '.')
            o[k++] = '.';
        o[k++] = b[i];
        bol = b[i] == '\n';
    }
    if (!bol) {
        o[k++] = '\r';
        o[k++] = '\n';
    }
    *outlen = k;
    return o;
}

/* test_dot_stuffing_wire - byte-exact stuffed data, across 64 KiB chunk joins. */
static void test_dot_stuffing_wire(void **state)
{
    static const char small[] =
        ".starts with dot\r\n..two dots\r\nmid.dot\r\n.\r\nlast line no crlf";
    size_t big_len = 300000;
    char *big = t_big_body(big_len);
    struct tcase c;

    (void)state;
    /* A '.' right at the engine's chunk boundary and at the test source's read size. */
    memcpy(big + 65534, "\r\n.x", 4);
    memcpy(big + 7000, "\r\n.y", 4);
    t_case_init(&c);
    t_add(&c.src, "s@a.test", small, "ok1@c.test", NULL);
    t_add(&c.src, "s@a.test", big, "ok2@c.test", NULL);
    t_case_run(&c);
    assert_int_equal(hm_sink_count(c.sink), 2);
    for (size_t i = 0; i < 2; i++) {
        const struct hm_sink_msg *m = hm_sink_get(c.sink, i);
        const char *b = c.src.msgs[i].body;
        size_t n = c.src.msgs[i].body_len, rl;
        char *ref = t_stuff_ref(b, n, &rl);
        assert_int_equal(m->raw_len, rl);
        assert_memory_equal(m->raw, ref, rl);
        /* unstuffed = original (plus the CRLF added to the last line) */
        assert_true(m->body_len >= n);
        assert_memory_equal(m->body, b, n);
        free(ref);
    }
    t_case_end(&c);
    free(big);
}

/* test_dot_stuff_split - dlv_dot_stuff gives the same bytes however the input is split. */
static void test_dot_stuff_split(void **state)
{
    static const char in[] = ".a\r\n.\r\n\r\n..b\r\nc.\r\n.";
    size_t n = sizeof(in) - 1, rl;
    char *ref = t_stuff_ref(in, n, &rl);

    (void)state;
    rl -= 2; /* dlv_dot_stuff does not add the final CRLF */
    for (size_t cut = 0; cut <= n; cut++) {
        struct evbuffer *out = evbuffer_new();
        bool bol = true;
        dlv_dot_stuff(out, in, cut, &bol);
        dlv_dot_stuff(out, in + cut, n - cut, &bol);
        assert_int_equal(evbuffer_get_length(out), rl);
        assert_memory_equal(evbuffer_pullup(out, -1), ref, rl);
        evbuffer_free(out);
    }
    free(ref);
}

/* t_prefill_cb - stand-in for turnd: read nothing yet, let the greeting queue up. */
static void t_prefill_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* test_greeting_before_start - the 220 is already buffered when the engine takes over. */
static void test_greeting_before_start(void **state)
{
    struct hm_sink_cfg cfg;
    struct tsrc src = {0};
    struct trun t;
    struct hm_sink *sink;
    struct bufferevent *bev;
    struct dlv_opts o;
    struct timeval tv = {0, 300000};
    struct event *ev;

    (void)state;
    memset(&t, 0, sizeof(t));
    t.base = event_base_new();
    hm_sink_cfg_default(&cfg);
    sink = hm_sink_new(t.base, &cfg);
    bev = t_connect(t.base, hm_sink_port(sink));
    bufferevent_enable(bev, EV_READ);
    ev = evtimer_new(t.base, t_prefill_cb, t.base);
    evtimer_add(ev, &tv);
    event_base_dispatch(t.base);
    event_free(ev);
    assert_true(evbuffer_get_length(bufferevent_get_input(bev)) > 0);

    t_add(&src, "s@a.test", t_body, "ok1@c.test", NULL);
    dlv_opts_default(&o);
    o.tls_active = true; /* as after a TLS ATRN: no STARTTLS attempt */
    dlv_start_src(t.base, bev, &t_ops, &src, &o, t_done, &t);
    t_loop(&t);
    assert_int_equal(t.done_calls, 1);
    assert_int_equal(src.msgs[0].kinds[0], STORE_OUT_DELIVERED);
    t_end(sink, &t);
}

/* test_mem_message - dlv_start_mem delivers a DSN-style message from memory. */
static void test_mem_message(void **state)
{
    static const char *rcpts[] = {"ok@c.test", "reject@c.test"};
    struct dlv_mem_msg mm = {"", rcpts, 2, t_body, sizeof(t_body) - 1};
    struct hm_sink_cfg cfg;
    struct trun t;
    struct hm_sink *sink;
    struct dlv_opts o;

    (void)state;
    memset(&t, 0, sizeof(t));
    t.base = event_base_new();
    hm_sink_cfg_default(&cfg);
    sink = hm_sink_new(t.base, &cfg);
    dlv_opts_default(&o);
    dlv_start_mem(t.base, t_connect(t.base, hm_sink_port(sink)), &mm, &o, t_done, &t);
    t_loop(&t);
    assert_int_equal(t.done_calls, 1);
    assert_int_equal(t.res.delivered, 1);
    assert_int_equal(t.res.failed, 1);
    assert_int_equal(hm_sink_count(sink), 1);
    assert_string_equal(hm_sink_get(sink, 0)->sender, "");
    assert_string_equal(hm_sink_get(sink, 0)->body, t_body);
    t_end(sink, &t);
}

/* test_refused_connection - nothing listening: done once, all deferred. */
static void test_refused_connection(void **state)
{
    struct hm_sink_cfg cfg;
    struct tsrc src = {0};
    struct trun t;
    struct hm_sink *sink;
    uint16_t port;
    struct dlv_opts o;

    (void)state;
    memset(&t, 0, sizeof(t));
    t.base = event_base_new();
    hm_sink_cfg_default(&cfg);
    sink = hm_sink_new(t.base, &cfg);
    port = hm_sink_port(sink);
    hm_sink_free(sink); /* the port is now closed */
    t_add(&src, "s@a.test", t_body, "ok1@c.test", NULL);
    dlv_opts_default(&o);
    dlv_start_src(t.base, t_connect(t.base, port), &t_ops, &src, &o, t_done, &t);
    t_loop(&t);
    assert_int_equal(t.done_calls, 1);
    assert_int_equal(src.msgs[0].kinds[0], STORE_OUT_DEFERRED);
    assert_false(t.res.session_ok);
    event_base_free(t.base);
}

/* test_total_timeout_and_garbage - the session limit and an unparseable reply both defer. */
static void test_total_timeout_and_garbage(void **state)
{
    for (int variant = 0; variant < 2; variant++) {
        struct tcase c;

        (void)state;
        t_case_init(&c);
        if (variant == 0) {
            c.opts.total_timeout = 1;
            c.cfg.greeting_delay_ms = 3000;
        } else {
            c.cfg.greeting = "hello, I am not SMTP\r\n";
        }
        t_add(&c.src, "s@a.test", t_body, "ok1@c.test", NULL);
        t_case_run(&c);
        assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_DEFERRED);
        assert_non_null(
            strstr(c.src.msgs[0].replies[0], variant == 0 ? "time limit" : "protocol error"));
        assert_false(c.t.res.session_ok);
        assert_int_equal(hm_sink_count_cmd(c.sink, "EHLO"), 0);
        t_case_end(&c);
    }
}

/* t_make_cert - a throw-away self-signed certificate with the openssl tool; false if absent. */
static bool t_make_cert(const char *dir, char *cert, char *key, size_t sz)
{
    pid_t pid;
    int st = -1;

    snprintf(cert, sz, "%s/cert.pem", dir);
    snprintf(key, sz, "%s/key.pem", dir);
    if (access("/usr/bin/openssl", X_OK) != 0)
        return false;
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execl("/usr/bin/openssl", "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
              "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=sink.test", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400 && pid > 0; i++) { /* at most 20 s */
        struct timespec ts = {0, 50 * 1000 * 1000};
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) && WEXITSTATUS(st) == 0;
        nanosleep(&ts, NULL);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return false;
}

/* test_starttls - STARTTLS when offered and wanted, then EHLO again; never on a TLS session. */
static void test_starttls(void **state)
{
    char dir[] = "/tmp/hm_dlvtls_XXXXXX", cert[128], key[128], err[256];
    struct ssl_ctx_st *sctx, *cctx;

    (void)state;
    assert_non_null(mkdtemp(dir));
    if (!t_make_cert(dir, cert, key, sizeof(cert))) {
        unlink(cert);
        unlink(key);
        rmdir(dir);
        skip();
    }
    tls_init();
    sctx = tls_server_ctx_new(cert, key, err, sizeof(err));
    cctx = tls_client_ctx_new(err, sizeof(err));
    assert_non_null(sctx);
    assert_non_null(cctx);
    for (int variant = 0; variant < 3; variant++) {
        struct tcase c;

        t_case_init(&c);
        c.cfg.tls_ctx = sctx;
        c.opts.starttls = variant != 1;
        c.opts.tls_ctx = cctx;
        c.opts.tls_active = variant == 2; /* as on a reversed TLS session */
        t_add(&c.src, "s@a.test", t_body, "ok1@c.test", NULL);
        t_case_run(&c);
        assert_int_equal(c.src.msgs[0].kinds[0], STORE_OUT_DELIVERED);
        assert_int_equal(hm_sink_count(c.sink), 1);
        if (variant == 0) {
            assert_int_equal(hm_sink_count_cmd(c.sink, "STARTTLS"), 1);
            assert_int_equal(hm_sink_count_cmd(c.sink, "EHLO"), 2);
            assert_true(hm_sink_get(c.sink, 0)->tls);
        } else {
            assert_int_equal(hm_sink_count_cmd(c.sink, "STARTTLS"), 0);
            assert_int_equal(hm_sink_count_cmd(c.sink, "EHLO"), 1);
            assert_false(hm_sink_get(c.sink, 0)->tls);
        }
        t_case_end(&c);
    }
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

/* main - the test table. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcomes_pipelining),
        cmocka_unit_test(test_outcomes_lockstep),
        cmocka_unit_test(test_mail_refused),
        cmocka_unit_test(test_data_refused),
        cmocka_unit_test(test_all_rcpts_refused),
        cmocka_unit_test(test_dot_reply),
        cmocka_unit_test(test_greeting_multiline_slow_helo),
        cmocka_unit_test(test_greeting_refused),
        cmocka_unit_test(test_drop_mid_data),
        cmocka_unit_test(test_timeout_after_dot),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_8bitmime),
        cmocka_unit_test(test_dsn_params),
        cmocka_unit_test(test_dot_stuffing_wire),
        cmocka_unit_test(test_dot_stuff_split),
        cmocka_unit_test(test_greeting_before_start),
        cmocka_unit_test(test_mem_message),
        cmocka_unit_test(test_refused_connection),
        cmocka_unit_test(test_total_timeout_and_garbage),
        cmocka_unit_test(test_starttls),
    };

    log_open("test_dlv_client", true);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
