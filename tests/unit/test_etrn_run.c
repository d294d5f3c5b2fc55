/*
 * test_etrn_run.c - ETRN end to end in one process: a real LMDB store in
 * a temp dir holding mail for several domains, the etrn engine on a
 * libevent loop, an SMTP sink standing for the customer's MTA (reached
 * through a "[127.0.0.1]:PORT" route) and a second sink acting as
 * bounce_relay.  Checks that a kick delivers exactly that domain's
 * messages with only that domain's recipients, the kick statuses
 * (running, nothing, disabled, unknown, rate), per-recipient store
 * outcomes, the DSN for a 5xx reaching the relay once, and that an
 * unreachable route leaves mail held.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "etrn.h"
#include "hm_testsink.c"
#include "hm_testutil.h"
#include "log.h"
#include "store.h"

#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char t_dir[64];
static struct store *t_st;
static struct event_base *t_base;
static struct hm_sink *t_cust, *t_relay;
static struct conf t_cf;
static struct conf_site t_site;
static uint16_t t_closed_port;

static const char t_body[] = "Subject: held\r\n\r\n.line with dot\r\nbye\r\n";

/* t_domain - create a held domain routed to port (0 = no route). */
static void t_domain(const char *name, uint16_t port, bool etrn)
{
    struct store_domain d;

    hm_test_domain_init(&d, name);
    d.etrn_enabled = etrn;
    if (port)
        snprintf(d.route, sizeof(d.route), "[127.0.0.1]:%u", port);
    assert_int_equal(store_domain_put(t_st, &d, true), STORE_OK);
}

/* t_msg_at - a message from sender to rcpt that arrived at arrival. */
static store_msgid_t t_msg_at(const char *sender, const char *rcpt, int64_t arrival)
{
    store_msgid_t id = 0;

    assert_int_equal(hm_test_msg_add(t_st, "default", sender, &rcpt, 1, t_body, arrival, &id),
                     STORE_OK);
    return id;
}

/* t_msg - add a message to up to three recipients (NULL = none); returns its id. */
static store_msgid_t t_msg(const char *sender, const char *r1, const char *r2, const char *r3)
{
    const char *addrs[3] = {r1, r2, r3}, *r[3];
    store_msgid_t id = 0;
    size_t n = 0;

    for (size_t i = 0; i < 3; i++)
        if (addrs[i])
            r[n++] = addrs[i];
    assert_int_equal(
        hm_test_msg_add(t_st, "default", sender, r, n, t_body, (int64_t)time(NULL), &id), STORE_OK);
    return id;
}

/* t_rcpt_state - state and reply of recipient addr of message id. */
static int t_rcpt_state(store_msgid_t id, const char *addr, char *reply, size_t rsz)
{
    struct store_msg_info info;
    struct store_rcpt_info *r = NULL;
    size_t n = 0;
    int state = -1;

    if (store_msg_get(t_st, id, &info, &r, &n) != STORE_OK)
        return -2; /* message gone (all final, no DSN needed) */
    for (size_t i = 0; i < n; i++) {
        if (strcmp(r[i].addr, addr) == 0) {
            state = r[i].state;
            if (reply)
                snprintf(reply, rsz, "%s", r[i].last_reply);
        }
    }
    free(r);
    return state;
}

/* t_setup - store, sinks and configuration. */
static int t_setup(void **state)
{
    struct hm_sink_cfg sc;
    struct hm_sink *tmp;

    (void)state;
    if (hm_test_mkdtemp(t_dir, sizeof(t_dir), NULL, "etrn") == NULL ||
        (t_st = hm_test_store_open(t_dir, 8u << 20, 0)) == NULL)
        return -1;
    t_base = event_base_new();
    hm_sink_cfg_default(&sc);
    t_cust = hm_sink_new(t_base, &sc);
    t_relay = hm_sink_new(t_base, &sc);
    tmp = hm_sink_new(t_base, &sc);
    if (!t_cust || !t_relay || !tmp)
        return -1;
    t_closed_port = hm_sink_port(tmp);
    hm_sink_free(tmp);

    hm_test_conf_init(&t_cf, &t_site);
    t_cf.dns_servers = "127.0.0.1:9"; /* routes are literal: DNS must not be needed */
    snprintf(t_cf.bounce_relay.host, sizeof(t_cf.bounce_relay.host), "127.0.0.1");
    t_cf.bounce_relay.port = hm_sink_port(t_relay);
    t_cf.bounce_relay.bracketed = true;
    t_cf.delivery_port = 25;
    t_cf.hold_time = 7 * 86400;
    t_cf.delay_warning = 0;
    t_cf.etrn_rate_per_client = 30;
    t_cf.delivery_concurrency = 2;

    t_domain("a.test", hm_sink_port(t_cust), true);
    t_domain("b.test", hm_sink_port(t_cust), true);
    t_domain("sub.b.test", hm_sink_port(t_cust), true);
    t_domain("c.test", hm_sink_port(t_cust), false);
    t_domain("d.test", t_closed_port, true);
    return 0;
}

/* t_teardown - free everything, remove the store. */
static int t_teardown(void **state)
{
    (void)state;
    hm_sink_free(t_cust);
    hm_sink_free(t_relay);
    if (t_st)
        store_close(t_st);
    if (t_base)
        event_base_free(t_base);
    hm_test_rmdir(t_dir);
    return 0;
}

/* t_run_until - run the loop until cond(arg) or 15 s passed. */
static void t_run_until(bool (*cond)(void *), void *arg)
{
    time_t end = time(NULL) + 15;

    while (!cond(arg) && time(NULL) < end) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(t_base, &tv);
        event_base_dispatch(t_base);
    }
    assert_true(cond(arg));
}

/* t_idle - no run active. */
static bool t_idle(void *arg)
{
    return etrn_active_runs(arg) == 0;
}

/* t_relay_has - the relay sink holds at least *arg messages. */
static bool t_relay_has(void *arg)
{
    return hm_sink_count(t_relay) >= *(size_t *)arg;
}

/* t_no_domain_in - no recipient of any sink message contains needle. */
static void t_no_domain_in(const struct hm_sink *s, const char *needle)
{
    for (size_t i = 0; i < hm_sink_count(s); i++) {
        const struct hm_sink_msg *m = hm_sink_get(s, i);
        for (size_t j = 0; j < m->nrcpts; j++)
            if (strstr(m->rcpts[j], needle))
                fail_msg("recipient %s delivered in the wrong run", m->rcpts[j]);
    }
}

/* test_etrn_end_to_end - kick one domain, then the DSN, then the other domains. */
static void test_etrn_end_to_end(void **state)
{
    struct etrn_engine *e;
    store_msgid_t m1, m2, m3;
    size_t pending = 99, want;
    char reply[STORE_REPLY_MAX];
    const struct hm_sink_msg *dsn;

    (void)state;
    m1 = t_msg("s@x.test", "ok1@a.test", "reject1@a.test", "ok2@b.test");
    m2 = t_msg("s2@x.test", "ok3@a.test", NULL, NULL);
    m3 = t_msg("s3@x.test", "ok4@sub.b.test", NULL, NULL);
    e = etrn_engine_new(t_base, t_st, &t_cf);

    assert_int_equal(etrn_kick(e, "A.TEST.", false, NULL, "127.0.0.9", &pending), ETRN_STARTED);
    assert_int_equal(pending, 2);
    assert_int_equal(etrn_kick(e, "a.test", false, NULL, "127.0.0.9", NULL), ETRN_RUNNING);
    assert_int_equal(etrn_kick(e, "c.test", false, NULL, "127.0.0.9", NULL), ETRN_DISABLED);
    assert_int_equal(etrn_kick(e, "nosuch.test", false, NULL, "127.0.0.9", NULL), ETRN_UNKNOWN);
    assert_int_equal(etrn_kick(e, "a.test", false, "othersite", NULL, NULL), ETRN_UNKNOWN);
    t_run_until(t_idle, e);

    /* exactly a.test's messages, with only a.test's recipients, over two connections */
    assert_int_equal(hm_sink_count(t_cust), 2);
    assert_int_equal(hm_sink_connections(t_cust), 2);
    t_no_domain_in(t_cust, "b.test");
    assert_string_equal(hm_sink_get(t_cust, 0)->body, t_body);
    assert_int_equal(t_rcpt_state(m1, "ok1@a.test", NULL, 0), STORE_RCPT_DELIVERED);
    assert_int_equal(t_rcpt_state(m1, "reject1@a.test", reply, sizeof(reply)), STORE_RCPT_FAILED);
    assert_non_null(strstr(reply, "550 5.1.1"));
    assert_int_equal(t_rcpt_state(m1, "ok2@b.test", NULL, 0), STORE_RCPT_HELD);
    assert_int_equal(etrn_kick(e, "a.test", false, NULL, "127.0.0.9", &pending), ETRN_NOTHING);
    assert_int_equal(pending, 0);

    /* the 5xx becomes one DSN to bounce_relay, sent once */
    etrn_qmgr_tick(e);
    want = 1;
    t_run_until(t_relay_has, &want);
    etrn_qmgr_tick(e);
    {
        struct timeval tv = {0, 300000};
        event_base_loopexit(t_base, &tv);
        event_base_dispatch(t_base);
    }
    assert_int_equal(hm_sink_count(t_relay), 1);
    dsn = hm_sink_get(t_relay, 0);
    assert_string_equal(dsn->sender, "");
    assert_int_equal(dsn->nrcpts, 1);
    assert_string_equal(dsn->rcpts[0], "s@x.test");
    assert_non_null(strstr(dsn->body, "Final-Recipient: rfc822; reject1@a.test\r\n"));
    assert_non_null(strstr(dsn->body, "Action: failed\r\nStatus: 5.1.1\r\n"));
    assert_non_null(strstr(dsn->body, "Reporting-MTA: dns; mx.isp.test\r\n"));
    assert_null(strstr(dsn->body, "ok2@b.test"));

    /* "@b.test": b.test and sub.b.test */
    assert_int_equal(etrn_kick(e, "b.test", true, "default", "127.0.0.9", &pending), ETRN_STARTED);
    assert_int_equal(pending, 2);
    t_run_until(t_idle, e);
    assert_int_equal(hm_sink_count(t_cust), 4);
    /* a.test's recipients were not delivered again */
    for (size_t i = 2; i < hm_sink_count(t_cust); i++)
        assert_null(strstr(hm_sink_get(t_cust, i)->rcpts[0], "a.test"));
    assert_int_equal(t_rcpt_state(m1, "ok2@b.test", NULL, 0) == STORE_RCPT_DELIVERED ||
                         t_rcpt_state(m1, "ok2@b.test", NULL, 0) == -2,
                     1);
    assert_int_not_equal(t_rcpt_state(m3, "ok4@sub.b.test", NULL, 0), STORE_RCPT_HELD);
    (void)m2;
    etrn_engine_free(e);
}

/* test_etrn_unreachable - every target refuses: mail stays held, attempt recorded. */
static void test_etrn_unreachable(void **state)
{
    struct etrn_engine *e;
    store_msgid_t m;
    char reply[STORE_REPLY_MAX];
    size_t before = hm_sink_count(t_cust);

    (void)state;
    m = t_msg("s@x.test", "ok@d.test", NULL, NULL);
    e = etrn_engine_new(t_base, t_st, &t_cf);
    assert_int_equal(etrn_kick(e, "d.test", false, NULL, NULL, NULL), ETRN_STARTED);
    t_run_until(t_idle, e);
    assert_int_equal(t_rcpt_state(m, "ok@d.test", reply, sizeof(reply)), STORE_RCPT_HELD);
    assert_non_null(strstr(reply, "4.4.1"));
    assert_int_equal(hm_sink_count(t_cust), before);
    etrn_engine_free(e);
}

/* test_etrn_rate - per-client rate limit and the per-domain interval. */
static void test_etrn_rate(void **state)
{
    struct etrn_engine *e;
    int rc;

    (void)state;
    t_cf.etrn_rate_per_client = 3;
    e = etrn_engine_new(t_base, t_st, &t_cf);
    for (int i = 0; i < 3; i++) {
        rc = etrn_kick(e, "c.test", false, NULL, "10.9.9.9", NULL);
        assert_int_equal(rc, ETRN_DISABLED);
    }
    assert_int_equal(etrn_kick(e, "c.test", false, NULL, "10.9.9.9", NULL), ETRN_RATE);
    assert_int_equal(etrn_kick(e, "c.test", false, NULL, "10.9.9.8", NULL), ETRN_DISABLED);
    assert_int_equal(etrn_kick(e, "c.test", false, NULL, NULL, NULL), ETRN_DISABLED);
    etrn_engine_free(e);
    t_cf.etrn_rate_per_client = 30;

    t_cf.etrn_domain_interval = 3600;
    e = etrn_engine_new(t_base, t_st, &t_cf);
    t_msg("s@x.test", "ok9@a.test", NULL, NULL);
    assert_int_equal(etrn_kick(e, "a.test", false, NULL, NULL, NULL), ETRN_STARTED);
    t_run_until(t_idle, e);
    t_msg("s@x.test", "ok10@a.test", NULL, NULL);
    assert_int_equal(etrn_kick(e, "a.test", false, NULL, NULL, NULL), ETRN_RATE);
    etrn_engine_free(e);
    t_cf.etrn_domain_interval = 0;
}

/* t_relay_find - the relay message whose body contains needle, or NULL. */
static const struct hm_sink_msg *t_relay_find(const char *needle)
{
    for (size_t i = 0; i < hm_sink_count(t_relay); i++)
        if (strstr(hm_sink_get(t_relay, i)->body, needle))
            return hm_sink_get(t_relay, i);
    return NULL;
}

/* t_domain_times - a held domain without route with its own hold and warning times. */
static void t_domain_times(const char *name, int64_t hold, int64_t warn)
{
    struct store_domain d;

    hm_test_domain_init(&d, name);
    d.hold_time = hold;
    d.delay_warning = warn;
    assert_int_equal(store_domain_put(t_st, &d, true), STORE_OK);
}

/* test_qmgr_expiry - hold expiry bounces, delay warning warns, null sender gets nothing. */
static void test_qmgr_expiry(void **state)
{
    struct etrn_engine *e;
    size_t want = hm_sink_count(t_relay) + 2;
    const struct hm_sink_msg *m;
    char reply[STORE_REPLY_MAX];
    store_msgid_t old, nul;
    struct timespec ts = {2, 600 * 1000 * 1000};

    (void)state;
    t_domain_times("e.test", 2, 0);  /* expires after 2 s, never warned */
    t_domain_times("g.test", -1, 1); /* default hold (7 d), warned after 1 s */
    old = t_msg_at("old@x.test", "u1@e.test", (int64_t)time(NULL));
    t_msg_at("late@x.test", "u2@g.test", (int64_t)time(NULL));
    nul = t_msg_at("", "u3@e.test", (int64_t)time(NULL));
    nanosleep(&ts, NULL);
    e = etrn_engine_new(t_base, t_st, &t_cf);
    etrn_qmgr_tick(e);
    t_run_until(t_relay_has, &want);
    etrn_qmgr_tick(e); /* the notes are done: nothing more is sent */
    {
        struct timeval tv = {0, 300000};
        event_base_loopexit(t_base, &tv);
        event_base_dispatch(t_base);
    }
    assert_int_equal(hm_sink_count(t_relay), want);
    m = t_relay_find("Final-Recipient: rfc822; u1@e.test");
    assert_non_null(m);
    assert_string_equal(m->rcpts[0], "old@x.test");
    assert_non_null(strstr(m->body, "Action: failed\r\nStatus: 5.4.7\r\n"));
    assert_non_null(strstr(m->body, "Content-Type: message/rfc822"));
    m = t_relay_find("Final-Recipient: rfc822; u2@g.test");
    assert_non_null(m);
    assert_string_equal(m->rcpts[0], "late@x.test");
    assert_non_null(strstr(m->body, "Subject: Delayed Mail (still being held)"));
    assert_non_null(strstr(m->body, "Action: delayed\r\n"));
    assert_non_null(strstr(m->body, "Will-Retry-Until: "));
    assert_null(t_relay_find("u3@e.test")); /* never a DSN for the null sender */
    assert_int_not_equal(t_rcpt_state(old, "u1@e.test", reply, sizeof(reply)), STORE_RCPT_HELD);
    assert_int_not_equal(t_rcpt_state(nul, "u3@e.test", reply, sizeof(reply)), STORE_RCPT_HELD);
    etrn_engine_free(e);
}

/* test_shutdown_mid_run - etrn_shutdown aborts a run waiting for a slow greeting; mail held. */
static void test_shutdown_mid_run(void **state)
{
    struct hm_sink_cfg sc;
    struct hm_sink *slow;
    struct etrn_engine *e;
    store_msgid_t m;
    char reply[STORE_REPLY_MAX];
    time_t end;

    (void)state;
    hm_sink_cfg_default(&sc);
    sc.greeting_delay_ms = 10000;
    slow = hm_sink_new(t_base, &sc);
    assert_non_null(slow);
    t_domain("f.test", hm_sink_port(slow), true);
    m = t_msg("s@x.test", "u@f.test", NULL, NULL);
    e = etrn_engine_new(t_base, t_st, &t_cf);
    assert_int_equal(etrn_kick(e, "f.test", false, NULL, NULL, NULL), ETRN_STARTED);
    end = time(NULL) + 5;
    while (hm_sink_connections(slow) == 0 && time(NULL) < end) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(t_base, &tv);
        event_base_dispatch(t_base);
    }
    assert_int_equal(hm_sink_connections(slow), 1);
    assert_int_equal(t_rcpt_state(m, "u@f.test", NULL, 0), STORE_RCPT_LEASED);
    etrn_shutdown(e);
    assert_int_equal(etrn_active_runs(e), 0);
    assert_int_equal(t_rcpt_state(m, "u@f.test", reply, sizeof(reply)), STORE_RCPT_HELD);
    assert_int_equal(etrn_kick(e, "f.test", false, NULL, NULL, NULL), ETRN_ERROR);
    etrn_engine_free(e);
    hm_sink_free(slow);
}

/* test_etrn_rounds - more than two claim batches: every message delivered, in rounds. */
static void test_etrn_rounds(void **state)
{
    enum { N = 1100 };
    static struct store_rcpt_in r[N];
    static struct store_msg_in m[N];
    static const struct store_msg_in *mp[N];
    static store_msgid_t ids[N];
    static int status[N];
    static char addrs[N][32];
    struct iovec iov = {(void *)t_body, sizeof(t_body) - 1};
    struct etrn_engine *e;
    size_t before = hm_sink_count(t_cust), pending = 0;

    (void)state;
    t_domain("h.test", hm_sink_port(t_cust), true);
    for (size_t i = 0; i < N; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "u%zu@h.test", i);
        r[i] = (struct store_rcpt_in){.addr = addrs[i]};
        m[i] = (struct store_msg_in){.site = "default",
                                     .sender = "bulk@x.test",
                                     .arrival = (int64_t)time(NULL),
                                     .rcpts = &r[i],
                                     .nrcpts = 1,
                                     .iov = &iov,
                                     .iovcnt = 1,
                                     .body_fd = -1,
                                     .body_len = sizeof(t_body) - 1,
                                     .client_addr = "127.0.0.1",
                                     .client_helo = "mta.test"};
        mp[i] = &m[i];
    }
    assert_int_equal(store_msg_add(t_st, mp, N, ids, status), STORE_OK);
    e = etrn_engine_new(t_base, t_st, &t_cf);
    assert_int_equal(etrn_kick(e, "h.test", false, NULL, NULL, &pending), ETRN_STARTED);
    assert_int_equal(pending, N);
    t_run_until(t_idle, e);
    assert_int_equal(hm_sink_count(t_cust) - before, N);
    assert_int_equal(etrn_kick(e, "h.test", false, NULL, NULL, &pending), ETRN_NOTHING);
    etrn_engine_free(e);
}

/* main - the test table; one store and two sinks for the group. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etrn_end_to_end),  cmocka_unit_test(test_etrn_unreachable),
        cmocka_unit_test(test_etrn_rate),        cmocka_unit_test(test_qmgr_expiry),
        cmocka_unit_test(test_shutdown_mid_run), cmocka_unit_test(test_etrn_rounds),
    };

    log_open("test_etrn_run", true);
    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
