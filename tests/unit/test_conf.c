/*
 * test_conf.c - cmocka tests of common/conf.c: holdmx.conf loading, every
 * class of error (each must be reported with its line and a hint, and the
 * load must go on to find the next one), and the value parsers' edge cases.
 *
 * Each test writes real files into a private temporary directory (removed
 * at the end) and loads them with conf_load(); the error stream is an
 * open_memstream() buffer that the assertions search.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

static char test_dir[256];

/* test_write - write text into test_dir/name; returns the path (static buffer). */
static const char *test_write(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* test_load - load text as holdmx.conf; *errs gets the messages (malloc'd). */
static int test_load(const char *text, struct conf *cf, char **errs)
{
    size_t len;
    FILE *f = open_memstream(errs, &len);
    int n;

    assert_non_null(f);
    n = conf_load(test_write("holdmx.conf", text), cf, f);
    fclose(f);
    return n;
}

/* test_expect_error - text gives exactly one error containing each needle. */
static void test_expect_error(const char *text, const char *needle1, const char *needle2)
{
    struct conf cf;
    char *errs = NULL;
    int n = test_load(text, &cf, &errs);

    if (n != 1 || strstr(errs, needle1) == NULL || (needle2 && strstr(errs, needle2) == NULL))
        fail_msg("expected one error with \"%s\" / \"%s\", got %d:\n%s", needle1,
                 needle2 ? needle2 : "", n, errs);
    assert_non_null(strstr(errs, "holdmx.conf:"));
    assert_non_null(strstr(errs, "(hint: "));
    conf_free(&cf);
    free(errs);
}

/* setup - a fresh temporary directory. */
static int setup(void **state)
{
    (void)state;
    snprintf(test_dir, sizeof(test_dir), "/tmp/hm-test-conf.XXXXXX");
    return mkdtemp(test_dir) == NULL ? -1 : 0;
}

/* teardown - remove the files the tests wrote and the directory. */
static int teardown(void **state)
{
    static const char *const files[] = {"holdmx.conf", "site.crt", "site.key"};
    char path[512];

    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", test_dir, files[i]);
        unlink(path);
    }
    return rmdir(test_dir);
}

/* test_valid - a complete file: every value lands, paths are resolved, comments stripped. */
static void test_valid(void **state)
{
    struct conf cf;
    char *errs = NULL;
    const struct conf_site *s;
    char buf[300];
    int n;

    (void)state;
    test_write("site.crt", "cert\n");
    test_write("site.key", "key\n");
    n = test_load("; holdmx test\n"
                  "# another comment\n"
                  "state_dir = var/holdmx   ; LMDB here\n"
                  "sasl_app = holdmx2\n"
                  "sasl_conf_dir = /etc/holdmx/sasl\n"
                  "sasl_realm = isp.example\n"
                  "bounce_relay = [127.0.0.1]:10025\n"
                  "dns_servers = 127.0.0.1:5353,[::1]:53\n"
                  "delivery_port = 2526\n"
                  "metrics_listen = 127.0.0.1:9325\n"
                  "hold_time = 14d\n"
                  "delay_warning = 0\n"
                  "max_message_size = 10M\n"
                  "map_size = 1M\n"
                  "map_size_max = 1G\n"
                  "max_connections = 50\n"
                  "max_connections_per_ip = 5\n"
                  "max_recipients = 100\n"
                  "max_errors = 3\n"
                  "smtp_timeout = 5m\n"
                  "data_timeout = 2m\n"
                  "atrn_total_timeout = 1h\n"
                  "etrn_reply = count\n"
                  "etrn_rate_per_client = 10\n"
                  "etrn_domain_interval = 30s\n"
                  "delivery_concurrency = 2\n"
                  "turnd_path = bin/turnd\n"
                  "start_turnd = no\n"
                  "\n"
                  "[site default]\n"
                  "hostname = mx.isp.example\n"
                  "smtp_listen = 127.0.0.1:2525, [::1]:2525\n"
                  "odmr_listen = 127.0.0.1:3366\n"
                  "tls_cert = site.crt\n"
                  "tls_key = site.key\n"
                  "auth_plain = loopback\n"
                  "max_queue = 1000\n"
                  "max_queue_bytes = 2G\n"
                  "[site branch2]\n"
                  "hostname = mx2.isp.example\n"
                  "smtp_listen = 127.0.0.2:2525\n",
                  &cf, &errs);
    if (n != 0)
        fail_msg("unexpected errors:\n%s", errs);
    snprintf(buf, sizeof(buf), "%s/var/holdmx", test_dir);
    assert_non_null(strstr(cf.state_dir, "/var/holdmx"));
    assert_int_equal(cf.state_dir[0], '/');
    assert_string_equal(cf.sasl_app, "holdmx2");
    assert_string_equal(cf.sasl_conf_dir, "/etc/holdmx/sasl");
    assert_string_equal(cf.sasl_realm, "isp.example");
    assert_string_equal(cf.bounce_relay.host, "127.0.0.1");
    assert_int_equal(cf.bounce_relay.port, 10025);
    assert_true(cf.bounce_relay.bracketed);
    assert_string_equal(cf.dns_servers, "127.0.0.1:5353,[::1]:53");
    assert_int_equal(cf.delivery_port, 2526);
    assert_true(cf.metrics_enabled);
    assert_int_equal(cf.metrics_listen.port, 9325);
    assert_int_equal(cf.hold_time, 14 * 86400);
    assert_int_equal(cf.delay_warning, 0);
    assert_int_equal(cf.max_message_size, 10u << 20);
    assert_int_equal(cf.map_size, 1u << 20);
    assert_int_equal(cf.map_size_max, 1u << 30);
    assert_int_equal(cf.max_connections, 50);
    assert_int_equal(cf.max_connections_per_ip, 5);
    assert_int_equal(cf.max_recipients, 100);
    assert_int_equal(cf.max_errors, 3);
    assert_int_equal(cf.smtp_timeout, 300);
    assert_int_equal(cf.data_timeout, 120);
    assert_int_equal(cf.atrn_total_timeout, 3600);
    assert_int_equal(cf.etrn_reply, CONF_ETRN_REPLY_COUNT);
    assert_int_equal(cf.etrn_rate_per_client, 10);
    assert_int_equal(cf.etrn_domain_interval, 30);
    assert_int_equal(cf.delivery_concurrency, 2);
    assert_non_null(strstr(cf.turnd_path, "/bin/turnd"));
    assert_false(cf.start_turnd);
    assert_int_equal(cf.nsites, 2);
    s = conf_site_find(&cf, "default");
    assert_non_null(s);
    assert_string_equal(s->hostname, "mx.isp.example");
    assert_int_equal(s->n_smtp_listen, 2);
    assert_string_equal(s->smtp_listen[1].host, "::1");
    assert_string_equal(conf_format_addr(&s->smtp_listen[1], buf, sizeof(buf)), "[::1]:2525");
    assert_int_equal(s->smtp_listen[0].line, 32);
    assert_int_equal(s->n_odmr_listen, 1);
    assert_int_equal(s->odmr_listen[0].port, 3366);
    assert_non_null(strstr(s->tls_cert, "/site.crt"));
    assert_non_null(strstr(s->tls_key, "/site.key"));
    assert_int_equal(s->auth_plain, CONF_PLAIN_LOOPBACK);
    assert_int_equal(s->max_queue, 1000);
    assert_int_equal(s->max_queue_bytes, 2ull << 30);
    assert_int_equal(s->line, 30);
    s = conf_site_find(&cf, "branch2");
    assert_non_null(s);
    assert_int_equal(s->n_odmr_listen, 0);
    assert_null(s->tls_cert);
    assert_null(conf_site_find(&cf, "nosuch"));
    conf_free(&cf);
    free(errs);
}

/* test_defaults - an empty file: built-in values and the built-in default site. */
static void test_defaults(void **state)
{
    struct conf cf;
    char *errs = NULL;
    const struct conf_site *s;

    (void)state;
    assert_int_equal(test_load("", &cf, &errs), 0);
    assert_string_equal(cf.sasl_app, "holdmx");
    assert_string_equal(cf.sasl_realm, "holdmx");
    assert_null(cf.sasl_conf_dir);
    assert_int_equal(cf.delivery_port, 25);
    assert_false(cf.metrics_enabled);
    assert_int_equal(cf.hold_time, 7 * 86400);
    assert_int_equal(cf.delay_warning, 86400);
    assert_int_equal(cf.max_message_size, 50u << 20);
    assert_int_equal(cf.map_size, 64u << 20);
    assert_int_equal(cf.map_size_max, 8ull << 30);
    assert_int_equal(cf.max_connections, 200);
    assert_int_equal(cf.max_connections_per_ip, 20);
    assert_int_equal(cf.max_recipients, 1000);
    assert_int_equal(cf.max_errors, 10);
    assert_int_equal(cf.smtp_timeout, 300);
    assert_int_equal(cf.data_timeout, 180);
    assert_int_equal(cf.atrn_total_timeout, 3600);
    assert_int_equal(cf.etrn_reply, CONF_ETRN_REPLY_250);
    assert_int_equal(cf.etrn_rate_per_client, 30);
    assert_int_equal(cf.delivery_concurrency, 4);
    assert_true(cf.start_turnd);
    assert_int_equal(cf.nsites, 1);
    s = conf_site_find(&cf, "default");
    assert_non_null(s);
    assert_int_equal(s->line, 0);
    assert_true(s->hostname[0] != '\0');
    assert_int_equal(s->n_smtp_listen, 1);
    assert_string_equal(s->smtp_listen[0].host, "127.0.0.1");
    assert_int_equal(s->smtp_listen[0].port, 2525);
    assert_int_equal(s->odmr_listen[0].port, 3366);
    assert_int_equal(s->auth_plain, CONF_PLAIN_TLS_ONLY);
    conf_free(&cf);
    free(errs);
}

/* test_long_value - values longer than inih's 200-byte line buffer still work. */
static void test_long_value(void **state)
{
    char text[2048], *errs = NULL;
    struct conf cf;
    size_t off;

    (void)state;
    off = (size_t)snprintf(text, sizeof(text),
                           "[site default]\nhostname = a.example\n"
                           "smtp_listen = ");
    for (int i = 1; i <= 20; i++)
        off += (size_t)snprintf(text + off, sizeof(text) - off, "%s127.0.0.%d:2525",
                                i > 1 ? ", " : "", i);
    snprintf(text + off, sizeof(text) - off, "   ; twenty addresses\n");
    if (test_load(text, &cf, &errs) != 0)
        fail_msg("unexpected errors:\n%s", errs);
    assert_int_equal(cf.sites[0].n_smtp_listen, 20);
    assert_string_equal(cf.sites[0].smtp_listen[19].host, "127.0.0.20");
    conf_free(&cf);
    free(errs);
}

/* test_syntax - BOM, CRLF, indentation, "key: value", comments of both kinds. */
static void test_syntax(void **state)
{
    struct conf cf;
    char *errs = NULL;

    (void)state;
    if (test_load("\xef\xbb\xbfsasl_app = a#b   ; inline comment\r\n"
                  "# hash comment\r\n"
                  "   ; indented comment\r\n"
                  "sasl_realm: isp.example\r\n"
                  "[site default]\r\n"
                  "    hostname = mx.isp.example\r\n"
                  "    smtp_listen = 127.0.0.1:2525;not-a-comment-without-blank\r\n",
                  &cf, &errs) != 1)
        fail_msg("expected exactly the smtp_listen error:\n%s", errs);
    assert_string_equal(cf.sasl_app, "a#b");
    assert_string_equal(cf.sasl_realm, "isp.example");
    assert_string_equal(cf.sites[0].hostname, "mx.isp.example");
    assert_non_null(strstr(errs, ":7: bad value for smtp_listen"));
    conf_free(&cf);
    free(errs);
}

/* test_error_classes - each class of problem alone gives one message. */
static void test_error_classes(void **state)
{
    (void)state;
    test_expect_error("nosuch_key = 1\n", "holdmx.conf:1: unknown key \"nosuch_key\"", NULL);
    test_expect_error("bad\x1b[31mkey = 1\n", "unknown key \"bad?[31mkey\"", NULL);
    test_expect_error("[server x]\nhostname = a.example\n", ":1: unknown section [server x]", NULL);
    test_expect_error("delivery_port = 70000\n", ":1: bad value for delivery_port", "1-65535");
    test_expect_error("delivery_port = 0\n", "bad value for delivery_port", NULL);
    test_expect_error("hold_time = 7x\n", "bad value for hold_time: \"7x\"", NULL);
    test_expect_error("hold_time = -1d\n", "bad value for hold_time", NULL);
    test_expect_error("max_message_size = 12Q\n", "bad value for max_message_size", NULL);
    test_expect_error("max_connections = \n", "bad value for max_connections", NULL);
    test_expect_error("start_turnd = maybe\n", "bad value for start_turnd", "yes or no");
    test_expect_error("etrn_reply = 251\n", "bad value for etrn_reply", NULL);
    test_expect_error("bounce_relay = 127.0.0.1\n", "bad value for bounce_relay", NULL);
    test_expect_error("hold_time = 1d\nhold_time = 2d\n",
                      ":2: duplicate key \"hold_time\" (first on line 1)", NULL);
    test_expect_error("[site a]\nhostname = a.example\nsmtp_listen = 127.0.0.9:1\n"
                      "[site a]\nhostname = b.example\n",
                      ":4: duplicate site \"a\" (first on line 1)", NULL);
    test_expect_error("[site a]\nsmtp_listen = 127.0.0.9:1\n", ":1: site \"a\" has no hostname",
                      NULL);
    test_expect_error("[site a]\nhostname = a.example\n", ":1: site \"a\" has no listener", NULL);
    test_expect_error("just some words\n", ":1: not a \"key = value\" line", NULL);
    test_expect_error("[site a\n", ":1: bad section header", NULL);
    test_expect_error("[site a]\nhostname = a.example\nsmtp_listen = 127.0.0.9:1\n"
                      "hold_time = 1d\n",
                      ":4: \"hold_time\" is a global key", NULL);
    test_expect_error("hostname = a.example\n", ":1: \"hostname\" is a site key", NULL);
    test_expect_error("[site a]\nhostname = a..example\nsmtp_listen = 127.0.0.9:1\n",
                      ":2: bad value for hostname", NULL);
    test_expect_error("[site a]\nhostname = a.example\nsmtp_listen = 127.0.0.9:1\n"
                      "auth_plain = always\n",
                      ":4: bad value for auth_plain", "tls or loopback");
    test_expect_error("map_size = 2G\nmap_size_max = 1G\n", ":2: map_size", "map_size_max");
    test_expect_error("state_dir = a\n  continued\n", ":2: not a \"key = value\" line", NULL);
}

/* test_tls_errors - missing files and a certificate without a key. */
static void test_tls_errors(void **state)
{
    (void)state;
    test_write("site.crt", "cert\n");
    test_expect_error("[site a]\nhostname = a.example\nsmtp_listen = 127.0.0.9:1\n"
                      "tls_cert = site.crt\n",
                      ":4: site \"a\" has tls_cert but no tls_key", NULL);
    test_expect_error("[site a]\nhostname = a.example\nsmtp_listen = 127.0.0.9:1\n"
                      "tls_cert = site.crt\ntls_key = missing.key\n",
                      ":5: site \"a\" tls_key", "no such file");
    test_expect_error("[site a]\nhostname = a.example\nsmtp_listen = 127.0.0.9:1\n"
                      "tls_key = site.crt\n",
                      "has tls_key but no tls_cert", NULL);
}

/* test_listener_clash - two sites on one address: both named, with both lines. */
static void test_listener_clash(void **state)
{
    (void)state;
    test_expect_error("[site default]\n"
                      "hostname = mx.isp.example\n"
                      "smtp_listen = 127.0.0.1:2525\n"
                      "[site branch2]\n"
                      "hostname = mx2.isp.example\n"
                      "smtp_listen = 127.0.0.1:2525\n",
                      "holdmx.conf:6: site \"branch2\" smtp_listen 127.0.0.1:2525 is already "
                      "used by site \"default\" (line 3)",
                      "give each site its own address or port");
    /* the built-in default site counts too */
    test_expect_error("[site branch2]\nhostname = mx2.isp.example\nodmr_listen = 127.0.0.1:3366\n",
                      ":3: site \"branch2\" odmr_listen 127.0.0.1:3366 is already used by site "
                      "\"default\" (built in)",
                      "[site default]");
    /* wildcard against a specific address, and a clash within one site */
    test_expect_error("[site a]\nhostname = a.example\nsmtp_listen = 0.0.0.0:2600\n"
                      "odmr_listen = 127.0.0.5:2600\n",
                      ":4: site \"a\" odmr_listen 127.0.0.5:2600 is already used by site \"a\"",
                      NULL);
    /* IPv6 clash, case-insensitive */
    test_expect_error("[site a]\nhostname = a.example\nsmtp_listen = [::1]:2600, [::1]:2600\n",
                      "[::1]:2600 is already used", NULL);
}

/* test_many_errors - collected, not fail-fast: every line is reported. */
static void test_many_errors(void **state)
{
    struct conf cf;
    char *errs = NULL;
    int n;

    (void)state;
    n = test_load("bogus = 1\n"
                  "hold_time = 3y\n"
                  "delivery_port = -5\n"
                  "[site x]\n"
                  "hostname = x.example\n"
                  "smtp_listen = 127.0.0.1:2525\n"
                  "[site y]\n"
                  "hostname = y.example\n"
                  "smtp_listen = 127.0.0.1:99999\n",
                  &cf, &errs);
    assert_int_equal(n, 5); /* 3 bad lines; x clashes with built-in default; y bad */
    assert_non_null(strstr(errs, ":1: unknown key"));
    assert_non_null(strstr(errs, ":2: bad value for hold_time"));
    assert_non_null(strstr(errs, ":3: bad value for delivery_port"));
    assert_non_null(strstr(errs, ":9: bad value for smtp_listen"));
    conf_free(&cf);
    free(errs);
}

/* test_missing_file - a file that cannot be opened is one problem, and cf is usable. */
static void test_missing_file(void **state)
{
    struct conf cf;
    char *errs = NULL;
    size_t len;
    FILE *f = open_memstream(&errs, &len);

    (void)state;
    assert_int_equal(conf_load("/nonexistent/holdmx.conf", &cf, f), 1);
    fclose(f);
    assert_non_null(strstr(errs, "/nonexistent/holdmx.conf: cannot open"));
    assert_non_null(conf_site_find(&cf, "default"));
    conf_free(&cf);
    conf_free(&cf); /* idempotent */
    free(errs);
}

/* test_garbage - random bytes and hostile lines: no crash, problems counted. */
static void test_garbage(void **state)
{
    static const char alphabet[] = "[]=:;#, \t\r\n\\\"'abcsite default0123456789.\x01\xff";
    char text[3000], *errs;
    struct conf cf;
    unsigned seed = 12345;

    (void)state;
    for (int round = 0; round < 300; round++) {
        size_t len = (size_t)(rand_r(&seed) % (sizeof(text) - 1));
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];
        text[len] = '\0';
        for (size_t i = 0; i < len; i++)
            if (text[i] == '\0')
                text[i] = 'x';
        errs = NULL;
        assert_true(test_load(text, &cf, &errs) >= 0);
        assert_non_null(conf_site_find(&cf, "default"));
        conf_free(&cf);
        free(errs);
    }
    /* one line far past every buffer: reported, not truncated silently */
    {
        char *big = malloc(10000);
        assert_non_null(big);
        memcpy(big, "state_dir = ", 12);
        memset(big + 12, 'a', 9000);
        strcpy(big + 9012, "\n");
        errs = NULL;
        assert_int_equal(test_load(big, &cf, &errs), 1);
        assert_non_null(strstr(errs, ":1: line longer than"));
        conf_free(&cf);
        free(errs);
        free(big);
    }
}

/* test_duration - units, zero, overflow, junk. */
static void test_duration(void **state)
{
    (void)state;
    assert_int_equal(conf_parse_duration("0"), 0);
    assert_int_equal(conf_parse_duration("90"), 90);
    assert_int_equal(conf_parse_duration("90s"), 90);
    assert_int_equal(conf_parse_duration("15m"), 900);
    assert_int_equal(conf_parse_duration("12h"), 43200);
    assert_int_equal(conf_parse_duration("7d"), 604800);
    assert_int_equal(conf_parse_duration("2w"), 1209600);
    assert_int_equal(conf_parse_duration("9223372036854775807"), INT64_MAX);
    assert_int_equal(conf_parse_duration("9223372036854775808"), -1);
    assert_int_equal(conf_parse_duration("99999999999999999999"), -1);
    assert_int_equal(conf_parse_duration("15250284452472w"), -1);
    assert_int_equal(conf_parse_duration(""), -1);
    assert_int_equal(conf_parse_duration(NULL), -1);
    assert_int_equal(conf_parse_duration("-1"), -1);
    assert_int_equal(conf_parse_duration("+1"), -1);
    assert_int_equal(conf_parse_duration("7x"), -1);
    assert_int_equal(conf_parse_duration("7dd"), -1);
    assert_int_equal(conf_parse_duration("d"), -1);
    assert_int_equal(conf_parse_duration(" 7d"), -1);
    assert_int_equal(conf_parse_duration("1.5h"), -1);
}

/* test_size - suffixes, overflow, junk. */
static void test_size(void **state)
{
    uint64_t v = 42;

    (void)state;
    assert_true(conf_parse_size("0", &v));
    assert_int_equal(v, 0);
    assert_true(conf_parse_size("1024", &v));
    assert_int_equal(v, 1024);
    assert_true(conf_parse_size("64k", &v));
    assert_int_equal(v, 65536);
    assert_true(conf_parse_size("50M", &v));
    assert_int_equal(v, 52428800);
    assert_true(conf_parse_size("8G", &v));
    assert_int_equal(v, 8ull << 30);
    assert_true(conf_parse_size("2t", &v));
    assert_int_equal(v, 2ull << 40);
    assert_true(conf_parse_size("18446744073709551615", &v));
    assert_int_equal(v, UINT64_MAX);
    v = 42;
    assert_false(conf_parse_size("18446744073709551616", &v));
    assert_false(conf_parse_size("16777216T", &v));
    assert_false(conf_parse_size("", &v));
    assert_false(conf_parse_size(NULL, &v));
    assert_false(conf_parse_size("-1", &v));
    assert_false(conf_parse_size("12Q", &v));
    assert_false(conf_parse_size("1MB", &v));
    assert_false(conf_parse_size("M", &v));
    assert_int_equal(v, 42); /* untouched on failure */
}

/* test_addr - IPv4, IPv6, names, brackets, ports, junk. */
static void test_addr(void **state)
{
    struct conf_addr a;
    char buf[300];

    (void)state;
    assert_true(conf_parse_addr("127.0.0.1:2525", &a));
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 2525);
    assert_false(a.bracketed);
    assert_string_equal(conf_format_addr(&a, buf, sizeof(buf)), "127.0.0.1:2525");
    assert_true(conf_parse_addr("[127.0.0.1]:25", &a));
    assert_true(a.bracketed);
    assert_string_equal(conf_format_addr(&a, buf, sizeof(buf)), "[127.0.0.1]:25");
    assert_true(conf_parse_addr("[::1]:53", &a));
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 53);
    assert_string_equal(conf_format_addr(&a, buf, sizeof(buf)), "[::1]:53");
    assert_true(conf_parse_addr("[2001:db8::7]:65535", &a));
    assert_int_equal(a.port, 65535);
    assert_true(conf_parse_addr("mx.isp.example:25", &a));
    assert_string_equal(a.host, "mx.isp.example");
    assert_true(conf_parse_addr("[relay.isp.example]:10025", &a));
    assert_true(a.bracketed);
    assert_true(conf_parse_addr("localhost:1", &a));
    assert_false(conf_parse_addr("::1:25", &a));
    assert_false(conf_parse_addr("[::1]", &a));
    assert_false(conf_parse_addr("[::1]25", &a));
    assert_false(conf_parse_addr("[::1:25", &a));
    assert_false(conf_parse_addr("[2001:db8::zz]:25", &a));
    assert_false(conf_parse_addr("127.0.0.1", &a));
    assert_false(conf_parse_addr("127.0.0.1:", &a));
    assert_false(conf_parse_addr("127.0.0.1:0", &a));
    assert_false(conf_parse_addr("127.0.0.1:65536", &a));
    assert_false(conf_parse_addr("127.0.0.1:-1", &a));
    assert_false(conf_parse_addr("127.0.0.1:25x", &a));
    assert_false(conf_parse_addr("127.0.0.1:99999999999999999999999", &a));
    assert_false(conf_parse_addr(":25", &a));
    assert_false(conf_parse_addr("[]:25", &a));
    assert_false(conf_parse_addr("", &a));
    assert_false(conf_parse_addr(NULL, &a));
    assert_false(conf_parse_addr("bad host:25", &a));
    assert_false(conf_parse_addr("-bad.example:25", &a));
    memset(buf, 'a', 280);
    memcpy(buf + 280, ":25", 4);
    assert_false(conf_parse_addr(buf, &a));
}

/* main - run every test in its own temporary directory. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_clash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_addr),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
