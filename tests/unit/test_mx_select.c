/*
 * test_mx_select.c - the pure MX selection logic of mx.c, table-driven:
 * route parsing, ordering by preference, shuffling of equal preferences,
 * null MX, and the relay rule (our own names and worse preferences).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log.h"
#include "mx.h"

#include <stdio.h>
#include <string.h>

/* test_route_parse - every accepted and rejected route form. */
static void test_route_parse(void **state)
{
    static const struct {
        const char *in;
        bool ok;
        const char *host;
        uint16_t port;
        bool literal;
    } cases[] = {
        {"[127.0.0.1]:2526", true, "127.0.0.1", 2526, true},
        {"[127.0.0.1]", true, "127.0.0.1", 0, true},
        {"[::1]:25", true, "::1", 25, true},
        {"mx.customer.test:2525", true, "mx.customer.test", 2525, false},
        {"mx.customer.test", true, "mx.customer.test", 0, false},
        {"[mx.customer.test]:25", false, NULL, 0, false}, /* brackets need a literal */
        {"[127.0.0.1", false, NULL, 0, false},
        {"[127.0.0.1]x", false, NULL, 0, false},
        {"host:0", false, NULL, 0, false},
        {"host:70000", false, NULL, 0, false},
        {"host:", false, NULL, 0, false},
        {":25", false, NULL, 0, false},
        {"::1", false, NULL, 0, false},
        {"", false, NULL, 0, false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[256] = "";
        uint16_t port = 99;
        bool lit = false;
        bool ok = mx_route_parse(cases[i].in, host, sizeof(host), &port, &lit);
        if (ok != cases[i].ok)
            fail_msg("route \"%s\": expected %s", cases[i].in, cases[i].ok ? "ok" : "error");
        if (ok) {
            assert_string_equal(host, cases[i].host);
            assert_int_equal(port, cases[i].port);
            assert_int_equal(lit, cases[i].literal);
        }
    }
}

/* t_seq_rnd - a deterministic pseudo-random source (LCG), reproducible runs. */
static unsigned t_seq_rnd(void *arg)
{
    unsigned *n = arg;

    *n = *n * 1103515245u + 12345u;
    return *n >> 16;
}

/* t_recs - fill recs from "pref host" pairs. */
static size_t t_recs(struct dns_mx_rec *recs, const char *spec)
{
    size_t n = 0;
    const char *p = spec;

    while (*p) {
        int used = 0;
        assert_int_equal(sscanf(p, "%u %255s %n", &recs[n].pref, recs[n].host, &used), 2);
        if (strcmp(recs[n].host, "-") == 0)
            recs[n].host[0] = '\0';
        n++;
        p += used;
    }
    return n;
}

/* t_order - "pref host ..." of the selected records. */
static void t_order(const struct dns_mx_rec *recs, size_t n, char *out, size_t outsz)
{
    size_t k = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        k += snprintf(out + k, outsz - k, "%s%u %s", i ? " " : "", recs[i].pref, recs[i].host);
}

/* test_select_table - ordering, null MX and the relay rule. */
static void test_select_table(void **state)
{
    static const char *const names[] = {"mx.isp.test", "MX2.isp.test"};
    static const struct mx_self self = {names, 2, NULL, 0};
    static const struct {
        const char *in;
        int status;
        int outcome;
        const char *out; /* for MX_OK */
    } cases[] = {
        {"20 b.test 10 a.test 30 c.test", DNS_OK, MX_OK, "10 a.test 20 b.test 30 c.test"},
        {"0 -", DNS_NULLMX, MX_NULLMX, NULL},
        {"0 -", DNS_OK, MX_NULLMX, NULL}, /* recognised even if dns.c did not say so */
        {"10 cust.test 20 mx.isp.test", DNS_OK, MX_OK, "10 cust.test"},
        {"10 cust.test 20 mx.isp.test. 30 worse.test", DNS_OK, MX_OK, "10 cust.test"},
        {"10 mx.isp.test", DNS_OK, MX_HOLD, NULL},
        {"10 mx2.isp.test 10 other.test 5 first.test", DNS_OK, MX_OK, "5 first.test"},
        {"10 mx2.isp.test 10 other.test", DNS_OK, MX_HOLD, NULL},
        {"10 a.test 10 - ", DNS_OK, MX_OK, "10 a.test"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dns_mx_rec recs[8];
        size_t n = t_recs(recs, cases[i].in);
        unsigned seed = 1;
        char got[512];
        int rc = mx_select(recs, &n, cases[i].status, &self, t_seq_rnd, &seed);
        if (rc != cases[i].outcome)
            fail_msg("case %zu \"%s\": outcome %s, expected %s", i, cases[i].in,
                     mx_outcome_name(rc), mx_outcome_name(cases[i].outcome));
        if (rc == MX_OK) {
            t_order(recs, n, got, sizeof(got));
            assert_string_equal(got, cases[i].out);
        }
    }
}

/* test_shuffle_equal - equal preferences are shuffled, never across preferences. */
static void test_shuffle_equal(void **state)
{
    unsigned first_b = 0, seed = 0;

    (void)state;
    for (int round = 0; round < 200; round++) {
        struct dns_mx_rec recs[8];
        size_t n = t_recs(recs, "20 z.test 10 a.test 10 b.test 10 c.test 5 top.test");
        assert_int_equal(mx_select(recs, &n, DNS_OK, NULL, t_seq_rnd, &seed), MX_OK);
        assert_int_equal(n, 5);
        assert_string_equal(recs[0].host, "top.test");
        assert_int_equal(recs[1].pref, 10);
        assert_int_equal(recs[2].pref, 10);
        assert_int_equal(recs[3].pref, 10);
        assert_string_equal(recs[4].host, "z.test");
        first_b += strcmp(recs[1].host, "b.test") == 0;
    }
    /* each of a, b, c comes first sometimes */
    assert_true(first_b > 0 && first_b < 200);
}

/* test_prune_pref - the helper used for address-based self detection. */
static void test_prune_pref(void **state)
{
    struct dns_mx_rec recs[8];
    size_t n = t_recs(recs, "10 a.test 20 b.test 20 c.test 30 d.test");
    char got[256];

    (void)state;
    n = mx_prune_pref(recs, n, 20);
    t_order(recs, n, got, sizeof(got));
    assert_string_equal(got, "10 a.test");
}

/* main - the test table. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_parse),
        cmocka_unit_test(test_select_table),
        cmocka_unit_test(test_shuffle_equal),
        cmocka_unit_test(test_prune_pref),
    };

    log_open("test_mx_select", true);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
