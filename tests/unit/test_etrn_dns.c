/*
 * test_etrn_dns.c - ETRN runs that resolve through real DNS (a private
 * dnsmasq, see hm_dnsmasq.c) into a real LMDB store and an SMTP sink on
 * 127.0.0.3: a null MX fails the recipients with 556 5.1.10 and no A
 * fallback; a domain whose only MX is us stays held untouched; a backup-MX
 * domain goes to the customer's MX; a dead first MX falls back to the
 * next; a domain without MX uses its own address (implicit MX).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "etrn.h"
#include "hm_dnsmasq.c"
#include "hm_testsink.c"
#include "hm_testutil.h"
#include "log.h"
#include "store.h"

#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char t_zone[] = "local=/test/\n"
                             "dns-rr=nullmx.test,15,000000\n"
                             "host-record=nullmx.test,127.0.0.3\n"
                             "mx-host=self.test,mx.isp.test,10\n"
                             "host-record=mx.isp.test,127.0.0.1\n"
                             "mx-host=backup.test,cust.backup.test,10\n"
                             "mx-host=backup.test,mx.isp.test,20\n"
                             "host-record=cust.backup.test,127.0.0.3\n"
                             "mx-host=fallback.test,dead.fallback.test,10\n"
                             "mx-host=fallback.test,cust.backup.test,20\n"
                             "host-record=dead.fallback.test,127.0.0.4\n"
                             "host-record=implicit.test,127.0.0.3\n";

static struct hm_dnsmasq t_dns;
static char t_dir[64];
static struct store *t_st;
static struct event_base *t_base;
static struct hm_sink *t_sink;
static struct conf t_cf;
static struct conf_site t_site;
static char t_servers[64];

static const char t_body[] = "Subject: via dns\r\n\r\nhi\r\n";

/* t_setup - dnsmasq, store, sink on 127.0.0.3, configuration. */
static int t_setup(void **state)
{
    static const char *const doms[] = {"nullmx.test", "self.test", "backup.test", "fallback.test",
                                       "implicit.test"};
    struct hm_sink_cfg sc;

    (void)state;
    if (!hm_dnsmasq_available())
        return 0;
    if (!hm_dnsmasq_start(&t_dns, t_zone))
        return -1;
    snprintf(t_servers, sizeof(t_servers), "%s", t_dns.servers);
    if (hm_test_mkdtemp(t_dir, sizeof(t_dir), NULL, "etrndns") == NULL ||
        (t_st = hm_test_store_open(t_dir, 8u << 20, 0)) == NULL)
        return -1;
    t_base = event_base_new();
    hm_sink_cfg_default(&sc);
    sc.addr = "127.0.0.3";
    t_sink = hm_sink_new(t_base, &sc);
    if (t_sink == NULL)
        return -1;
    hm_test_conf_init(&t_cf, &t_site);
    t_cf.dns_servers = t_servers;
    t_cf.delivery_port = hm_sink_port(t_sink);
    t_cf.hold_time = 7 * 86400;
    t_cf.delivery_concurrency = 1;
    for (size_t i = 0; i < sizeof(doms) / sizeof(doms[0]); i++) {
        struct store_domain d;

        hm_test_domain_init(&d, doms[i]);
        if (store_domain_put(t_st, &d, true) != STORE_OK)
            return -1;
    }
    return 0;
}

/* t_teardown - everything down, our dnsmasq killed by pid. */
static int t_teardown(void **state)
{
    (void)state;
    hm_sink_free(t_sink);
    if (t_st)
        store_close(t_st);
    if (t_base)
        event_base_free(t_base);
    if (t_dir[0])
        hm_test_rmdir(t_dir);
    hm_dnsmasq_stop(&t_dns);
    return 0;
}

/* t_msg - one message for rcpt. */
static store_msgid_t t_msg(const char *rcpt)
{
    store_msgid_t id = 0;

    assert_int_equal(
        hm_test_msg_add(t_st, "default", "s@x.test", &rcpt, 1, t_body, (int64_t)time(NULL), &id),
        STORE_OK);
    return id;
}

/* t_rcpt - state and reply of the first recipient of id (-2: message removed). */
static int t_rcpt(store_msgid_t id, char *reply, size_t rsz, uint32_t *attempts)
{
    struct store_msg_info info;
    struct store_rcpt_info *r = NULL;
    size_t n = 0;
    int state;

    if (store_msg_get(t_st, id, &info, &r, &n) != STORE_OK || n == 0) {
        free(r);
        return -2;
    }
    state = r[0].state;
    snprintf(reply, rsz, "%s", r[0].last_reply);
    if (attempts)
        *attempts = r[0].attempts;
    free(r);
    return state;
}

/* t_kick_and_wait - kick domain, run until no run is active (bounded). */
static void t_kick_and_wait(struct etrn_engine *e, const char *domain)
{
    time_t end = time(NULL) + 20;

    assert_int_equal(etrn_kick(e, domain, false, NULL, NULL, NULL), ETRN_STARTED);
    while (etrn_active_runs(e) > 0 && time(NULL) < end) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(t_base, &tv);
        event_base_dispatch(t_base);
    }
    assert_int_equal(etrn_active_runs(e), 0);
}

/* test_etrn_via_dns - every DNS-driven outcome of a run. */
static void test_etrn_via_dns(void **state)
{
    struct etrn_engine *e;
    store_msgid_t mnull, mself, mbackup, mfall, mimpl;
    char reply[STORE_REPLY_MAX];
    uint32_t attempts = 99;
    int st;

    (void)state;
    if (t_st == NULL)
        skip();
    mnull = t_msg("u@nullmx.test");
    mself = t_msg("u@self.test");
    mbackup = t_msg("u@backup.test");
    mfall = t_msg("u@fallback.test");
    mimpl = t_msg("u@implicit.test");
    e = etrn_engine_new(t_base, t_st, &t_cf);

    t_kick_and_wait(e, "nullmx.test");
    st = t_rcpt(mnull, reply, sizeof(reply), NULL);
    assert_int_equal(st, STORE_RCPT_FAILED);
    assert_non_null(strstr(reply, "556 5.1.10"));
    assert_int_equal(hm_sink_count(t_sink), 0); /* no A fallback */

    t_kick_and_wait(e, "self.test");
    assert_int_equal(t_rcpt(mself, reply, sizeof(reply), &attempts), STORE_RCPT_HELD);
    assert_int_equal(attempts, 0);
    assert_int_equal(hm_sink_count(t_sink), 0);

    t_kick_and_wait(e, "backup.test");
    assert_int_equal(hm_sink_count(t_sink), 1);
    assert_string_equal(hm_sink_get(t_sink, 0)->rcpts[0], "u@backup.test");
    st = t_rcpt(mbackup, reply, sizeof(reply), NULL);
    assert_true(st == STORE_RCPT_DELIVERED || st == -2);

    t_kick_and_wait(e, "fallback.test");
    assert_int_equal(hm_sink_count(t_sink), 2);
    assert_string_equal(hm_sink_get(t_sink, 1)->rcpts[0], "u@fallback.test");
    st = t_rcpt(mfall, reply, sizeof(reply), NULL);
    assert_true(st == STORE_RCPT_DELIVERED || st == -2);

    t_kick_and_wait(e, "implicit.test");
    assert_int_equal(hm_sink_count(t_sink), 3);
    st = t_rcpt(mimpl, reply, sizeof(reply), NULL);
    assert_true(st == STORE_RCPT_DELIVERED || st == -2);
    etrn_engine_free(e);
}

/* main - the test table. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etrn_via_dns),
    };

    log_open("test_etrn_dns", true);
    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
