/*
 * test_dns_dnsmasq.c - dns.c and mx_resolve() against a real dnsmasq on
 * 127.0.0.1 at a random high port, serving a private *.test zone: several
 * preferences, a null MX (raw RR), an implicit MX, NXDOMAIN, a domain
 * whose only MX is us (by name and by address), a backup-MX domain, an MX
 * without address, and REFUSED for names outside the zone.
 *
 * hm_dnsmasq.c forks/execs dnsmasq, records its pid and kills only that
 * pid at the end.  Skipped when dnsmasq is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dns.h"
#include "hm_dnsmasq.c"
#include "log.h"
#include "mx.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct hm_dnsmasq t_dns;
static struct event_base *t_base;
static struct dns_resolver *t_res;

static const char t_zone[] = "local=/test/\n"
                             "mx-host=multi.test,mxc.multi.test,20\n"
                             "mx-host=multi.test,mxa.multi.test,10\n"
                             "mx-host=multi.test,mxb.multi.test,10\n"
                             "host-record=mxa.multi.test,127.0.0.3\n"
                             "host-record=mxb.multi.test,127.0.0.4\n"
                             "host-record=mxc.multi.test,127.0.0.5\n"
                             "dns-rr=nullmx.test,15,000000\n"
                             "host-record=nullmx.test,127.0.0.9\n"
                             "host-record=implicit.test,127.0.0.6\n"
                             "mx-host=self.test,mx.isp.test,10\n"
                             "host-record=mx.isp.test,127.0.0.1\n"
                             "mx-host=selfaddr.test,alias.selfaddr.test,10\n"
                             "host-record=alias.selfaddr.test,127.0.0.77\n"
                             "mx-host=backup.test,cust.backup.test,10\n"
                             "mx-host=backup.test,mx.isp.test,20\n"
                             "host-record=cust.backup.test,127.0.0.8\n"
                             "mx-host=noaddr.test,nothere.noaddr.test,10\n"
                             "host-record=dual.test,127.0.0.10,::1\n"
                             "host-record=routehost.test,127.0.0.11\n";

/* t_setup - start dnsmasq and the resolver (no dnsmasq: the tests skip). */
static int t_setup(void **state)
{
    char err[256];

    (void)state;
    if (!hm_dnsmasq_available())
        return 0;
    if (!hm_dnsmasq_start(&t_dns, t_zone))
        return -1;
    t_base = event_base_new();
    t_res = dns_new(t_base, t_dns.servers, err, sizeof(err));
    if (t_res == NULL) {
        fprintf(stderr, "dns_new: %s\n", err);
        return -1;
    }
    return 0;
}

/* t_teardown - stop our dnsmasq (by its pid) and clean up. */
static int t_teardown(void **state)
{
    (void)state;
    if (t_res)
        dns_free(t_res);
    if (t_base)
        event_base_free(t_base);
    hm_dnsmasq_stop(&t_dns);
    return 0;
}

/* t_skip_without_dnsmasq - cmocka skip when the fixture could not run. */
static void t_skip_without_dnsmasq(void)
{
    if (t_res == NULL)
        skip();
}

/* t_wait - run the loop until *flag or 10 s passed. */
static void t_wait(const int *flag)
{
    time_t end = time(NULL) + 10;

    while (!*flag && time(NULL) < end)
        event_base_loop(t_base, EVLOOP_ONCE);
}

/* mx results */
struct t_mx {
    int done;
    int status;
    struct dns_mx_rec recs[8];
    size_t n;
};

/* t_mx_cb - dns_mx callback. */
static void t_mx_cb(void *arg, int status, const struct dns_mx_rec *mx, size_t n)
{
    struct t_mx *r = arg;

    r->done++;
    r->status = status;
    r->n = n > 8 ? 8 : n;
    if (r->n)
        memcpy(r->recs, mx, r->n * sizeof(*mx));
}

/* test_dns_mx_statuses - OK (unsorted wire order is fine), NULLMX, NODATA, NONAME, TEMP. */
static void test_dns_mx_statuses(void **state)
{
    static const struct {
        const char *name;
        int status;
        size_t n;
    } cases[] = {
        {"multi.test", DNS_OK, 3},        {"nullmx.test", DNS_NULLMX, 1},
        {"implicit.test", DNS_NODATA, 0}, {"nosuch.test", DNS_NONAME, 0},
        {"example.com", DNS_TEMP, 0},
    };

    (void)state;
    t_skip_without_dnsmasq();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct t_mx r = {0};
        uint64_t id = dns_mx(t_res, cases[i].name, t_mx_cb, &r);
        assert_true(id != 0);
        assert_int_equal(r.done, 0); /* never called back synchronously */
        t_wait(&r.done);
        if (r.status != cases[i].status)
            fail_msg("%s: %s, expected %s", cases[i].name, dns_status_name(r.status),
                     dns_status_name(cases[i].status));
        assert_int_equal(r.n, cases[i].n);
        assert_int_equal(r.done, 1);
    }
}

/* addr results */
struct t_addr {
    int done;
    int status;
    char text[4][64];
    size_t n;
};

/* t_addr_cb - dns_addr callback. */
static void t_addr_cb(void *arg, int status, const struct dns_addr_rec *a, size_t n)
{
    struct t_addr *r = arg;

    r->done++;
    r->status = status;
    r->n = n > 4 ? 4 : n;
    for (size_t i = 0; i < r->n; i++)
        snprintf(r->text[i], sizeof(r->text[i]), "%s", a[i].text);
}

/* test_dns_addr - A and AAAA; NXDOMAIN; a cancelled request never calls back. */
static void test_dns_addr(void **state)
{
    struct t_addr r = {0}, c = {0};
    uint64_t id;
    bool v4 = false, v6 = false;

    (void)state;
    t_skip_without_dnsmasq();
    dns_addr(t_res, "dual.test", t_addr_cb, &r);
    t_wait(&r.done);
    assert_int_equal(r.status, DNS_OK);
    for (size_t i = 0; i < r.n; i++) {
        v4 |= strcmp(r.text[i], "127.0.0.10") == 0;
        v6 |= strcmp(r.text[i], "::1") == 0;
    }
    assert_true(v4 && v6);

    memset(&r, 0, sizeof(r));
    dns_addr(t_res, "nothere.noaddr.test", t_addr_cb, &r);
    t_wait(&r.done);
    assert_int_equal(r.status, DNS_NONAME);

    id = dns_addr(t_res, "mxa.multi.test", t_addr_cb, &c);
    dns_cancel(t_res, id);
    memset(&r, 0, sizeof(r));
    dns_addr(t_res, "mxb.multi.test", t_addr_cb, &r); /* issued later, answered later */
    t_wait(&r.done);
    {
        struct timeval tv = {0, 200000};
        event_base_loopexit(t_base, &tv);
        event_base_dispatch(t_base);
    }
    assert_int_equal(c.done, 0);
    assert_int_equal(r.done, 1);
}

/* mx_resolve results */
struct t_res {
    int done;
    int outcome;
    char targets[512];
    size_t n;
};

/* t_res_cb - mx_resolve callback: "host addr:port" list. */
static void t_res_cb(void *arg, int outcome, const struct mx_target *t, size_t n, const char *why)
{
    struct t_res *r = arg;
    size_t k = 0;

    (void)why;
    r->done++;
    r->outcome = outcome;
    r->n = n;
    r->targets[0] = '\0';
    for (size_t i = 0; i < n; i++)
        k += snprintf(r->targets + k, sizeof(r->targets) - k, "%s%s %s:%u", i ? "," : "", t[i].host,
                      t[i].addr.text, t[i].port);
}

/* test_mx_resolve - the whole selection against real DNS answers. */
static void test_mx_resolve(void **state)
{
    static const char *const names[] = {"mx.isp.test"};
    static const char *const addrs[] = {"127.0.0.77"};
    static const struct mx_self self = {names, 1, addrs, 1};
    static const struct {
        const char *domain;
        const char *route;
        int outcome;
        const char *targets; /* NULL: not checked */
    } cases[] = {
        {"implicit.test", "", MX_OK, "implicit.test 127.0.0.6:2525"},
        {"nullmx.test", "", MX_NULLMX, ""},
        {"nosuch.test", "", MX_NONAME, ""},
        {"self.test", "", MX_HOLD, ""},
        {"selfaddr.test", "", MX_HOLD, ""},
        {"backup.test", "", MX_OK, "cust.backup.test 127.0.0.8:2525"},
        {"noaddr.test", "", MX_TEMP, ""},
        {"example.com", "", MX_TEMP, ""},
        {"anything.test", "[127.0.0.1]:2600", MX_OK, "127.0.0.1 127.0.0.1:2600"},
        {"anything.test", "routehost.test:2601", MX_OK, "routehost.test 127.0.0.11:2601"},
        {"anything.test", "routehost.test", MX_OK, "routehost.test 127.0.0.11:2525"},
        {"multi.test", "bad]route", MX_TEMP, ""},
    };

    (void)state;
    t_skip_without_dnsmasq();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct t_res r = {0};
        mx_resolve(t_res, cases[i].domain, cases[i].route, 2525, &self, t_res_cb, &r);
        assert_int_equal(r.done, 0);
        t_wait(&r.done);
        assert_int_equal(r.done, 1);
        if (r.outcome != cases[i].outcome)
            fail_msg("%s (route \"%s\"): %s, expected %s", cases[i].domain, cases[i].route,
                     mx_outcome_name(r.outcome), mx_outcome_name(cases[i].outcome));
        if (cases[i].targets)
            assert_string_equal(r.targets, cases[i].targets);
    }
}

/* test_mx_resolve_order - preference order, equal preferences in both orders over runs. */
static void test_mx_resolve_order(void **state)
{
    int a_first = 0, b_first = 0;

    (void)state;
    t_skip_without_dnsmasq();
    for (int round = 0; round < 20; round++) {
        struct t_res r = {0};
        mx_resolve(t_res, "multi.test", "", 25, NULL, t_res_cb, &r);
        t_wait(&r.done);
        assert_int_equal(r.outcome, MX_OK);
        assert_int_equal(r.n, 3);
        assert_non_null(strstr(r.targets, ",mxc.multi.test 127.0.0.5:25"));
        a_first += strncmp(r.targets, "mxa.multi.test 127.0.0.3:25,mxb", 31) == 0;
        b_first += strncmp(r.targets, "mxb.multi.test 127.0.0.4:25,mxa", 31) == 0;
    }
    assert_int_equal(a_first + b_first, 20);
    assert_true(a_first > 0 && b_first > 0);
}

/* test_mx_cancel - a cancelled query never calls back. */
static void test_mx_cancel(void **state)
{
    struct t_res r = {0}, r2 = {0};
    struct mx_query *q;

    (void)state;
    t_skip_without_dnsmasq();
    q = mx_resolve(t_res, "multi.test", "", 25, NULL, t_res_cb, &r);
    mx_cancel(q);
    q = mx_resolve(t_res, "x.test", "[127.0.0.1]:25", 25, NULL, t_res_cb, &r);
    mx_cancel(q);
    mx_resolve(t_res, "implicit.test", "", 25, NULL, t_res_cb, &r2);
    t_wait(&r2.done);
    {
        struct timeval tv = {0, 300000};
        event_base_loopexit(t_base, &tv);
        event_base_dispatch(t_base);
    }
    assert_int_equal(r.done, 0);
    assert_int_equal(r2.done, 1);
}

/* main - the test table; one dnsmasq for the group. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_mx_statuses), cmocka_unit_test(test_dns_addr),
        cmocka_unit_test(test_mx_resolve),      cmocka_unit_test(test_mx_resolve_order),
        cmocka_unit_test(test_mx_cancel),
    };

    log_open("test_dns_dnsmasq", true);
    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
