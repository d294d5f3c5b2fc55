/*
 * test_smtpd_parse.c - unit tests for the syntax checks in queued/smtpd.h
 * (smtpd_addr.c): smtpd_path_parse, smtpd_xtext_ok, smtpd_domain_ok and
 * smtpd_helo_ok.
 *
 * Table-driven: each case gives the input, the expected status and, for
 * accepted paths, the mailbox and domain that must come out and where the
 * cursor must stop.  Covers the null path, missing or unbalanced brackets,
 * source routes, quoted local parts, RFC 5321 length limits (64-octet local
 * part, 256-octet path, 255-octet domain), 8-bit and control octets, and
 * malformed xtext.  No allocation beyond the stack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtpd.h"

/* sp_path_case - one smtpd_path_parse() input and what must come of it. */
struct sp_path_case {
    const char *in;
    bool allow_null;
    int status;
    const char *mailbox; /* expected out on SMTPD_ADDR_OK */
    const char *domain;  /* expected *domain on SMTPD_ADDR_OK */
    const char *rest;    /* expected *p afterwards on SMTPD_ADDR_OK */
};

static const struct sp_path_case sp_paths[] = {
    {"<user@example.org>", false, SMTPD_ADDR_OK, "user@example.org", "example.org", ""},
    {"  <a@b> SIZE=10", false, SMTPD_ADDR_OK, "a@b", "b", " SIZE=10"},
    {"<first.last+tag@sub.example.org>", false, SMTPD_ADDR_OK, "first.last+tag@sub.example.org",
     "sub.example.org", ""},
    {"<>", true, SMTPD_ADDR_OK, "", "", ""},
    {"<> BODY=8BITMIME", true, SMTPD_ADDR_OK, "", "", " BODY=8BITMIME"},
    {"<>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<u@[192.0.2.1]>", false, SMTPD_ADDR_OK, "u@[192.0.2.1]", "[192.0.2.1]", ""},
    {"<u@[IPv6:2001:db8::1]>", false, SMTPD_ADDR_OK, "u@[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]",
     ""},
    /* source routes are accepted and dropped (RFC 5321 appendix C) */
    {"<@relay.example:u@d.example>", false, SMTPD_ADDR_OK, "u@d.example", "d.example", ""},
    {"<@a.example,@b.example:u@d.example>", false, SMTPD_ADDR_OK, "u@d.example", "d.example", ""},
    {"<@relay.example>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    /* quoted local parts, including '>' and '@' and an escaped quote inside */
    {"<\"john doe\"@example.org>", false, SMTPD_ADDR_OK, "\"john doe\"@example.org", "example.org",
     ""},
    {"<\"a>b@c\"@example.org>", false, SMTPD_ADDR_OK, "\"a>b@c\"@example.org", "example.org", ""},
    {"<\"a\\\"b\"@example.org>", false, SMTPD_ADDR_OK, "\"a\\\"b\"@example.org", "example.org", ""},
    {"<\"unterminated@example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<\"a\"b@example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<\"tab\there\"@example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    /* missing or broken brackets */
    {"user@example.org", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<user@example.org", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"user@example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"", true, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<", true, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    /* bad mailboxes */
    {"<user>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<@example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<user@>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<.user@example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<user.@example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<us..er@example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<us er@example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<user@exa mple.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<user@-example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<user@example-.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<user@example..org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<user@example.org.>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<us\xc3\xa9r@example.org>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
    {"<user@[192.0.2.1>", false, SMTPD_ADDR_SYNTAX, NULL, NULL, NULL},
};

/* test_path_table - every row of sp_paths. */
static void test_path_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sp_paths) / sizeof(sp_paths[0]); i++) {
        const struct sp_path_case *c = &sp_paths[i];
        const char *p = c->in, *dom = NULL;
        char out[SMTPD_PATH_MAX];
        int rc = smtpd_path_parse(&p, out, sizeof(out), c->allow_null, &dom);

        if (rc != c->status)
            fail_msg("case %zu \"%s\": status %d, want %d", i, c->in, rc, c->status);
        if (c->status != SMTPD_ADDR_OK)
            continue;
        assert_string_equal(out, c->mailbox);
        assert_non_null(dom);
        assert_string_equal(dom, c->domain);
        assert_true(dom >= out && dom < out + sizeof(out));
        assert_string_equal(p, c->rest);
    }
}

/* sp_fill - a string of n copies of ch at buf (NUL-terminated). */
static char *sp_fill(char *buf, char ch, size_t n)
{
    memset(buf, ch, n);
    buf[n] = '\0';
    return buf;
}

/* sp_parse - smtpd_path_parse() of in with an output buffer of outsz. */
static int sp_parse(const char *in, size_t outsz)
{
    char out[1024];
    const char *p = in, *dom = NULL;

    assert_true(outsz <= sizeof(out));
    return smtpd_path_parse(&p, out, outsz, false, &dom);
}

/* test_local_part_length - 64 octets is the longest local part (RFC 5321 4.5.3.1.1). */
static void test_local_part_length(void **state)
{
    char local[80], in[200];

    (void)state;
    snprintf(in, sizeof(in), "<%s@example.org>", sp_fill(local, 'l', SMTPD_LOCAL_MAX));
    assert_int_equal(sp_parse(in, SMTPD_PATH_MAX), SMTPD_ADDR_OK);
    snprintf(in, sizeof(in), "<%s@example.org>", sp_fill(local, 'l', SMTPD_LOCAL_MAX + 1));
    assert_int_equal(sp_parse(in, SMTPD_PATH_MAX), SMTPD_ADDR_TOOLONG);
}

/* sp_long_path - "<local@domain>" of exactly total octets incl. brackets (total < 264). */
static void sp_long_path(char *in, size_t total)
{
    size_t dlen = total - 8, i; /* "<local@" is 7 octets, ">" is 1 */
    char *d = in + 7;

    memcpy(in, "<local@", 7);
    for (i = 0; i < dlen; i++) /* 60-octet labels */
        d[i] = (i % 61 == 60) ? '.' : 'd';
    if (d[dlen - 1] == '.')
        d[dlen - 1] = 'd';
    d[dlen] = '>';
    d[dlen + 1] = '\0';
}

/* test_path_length - a 256-octet path is accepted, 257 is TOOLONG. */
static void test_path_length(void **state)
{
    char in[400];

    (void)state;
    sp_long_path(in, SMTPD_PATH_MAX);
    assert_int_equal(strlen(in), SMTPD_PATH_MAX);
    assert_int_equal(sp_parse(in, SMTPD_PATH_MAX), SMTPD_ADDR_OK);
    sp_long_path(in, SMTPD_PATH_MAX + 1);
    assert_int_equal(sp_parse(in, sizeof(in)), SMTPD_ADDR_TOOLONG);
}

/* test_small_output - an output buffer too small for the mailbox is TOOLONG, not overflow. */
static void test_small_output(void **state)
{
    (void)state;
    assert_int_equal(sp_parse("<user@example.org>", 8), SMTPD_ADDR_TOOLONG);
    assert_int_equal(sp_parse("<user@example.org>", 17), SMTPD_ADDR_OK);
    assert_int_equal(sp_parse("<user@example.org>", 16), SMTPD_ADDR_TOOLONG);
}

/* test_xtext - RFC 3461 xtext: printable ASCII but '+' and '=', '+' HEXCHAR HEXCHAR. */
static void test_xtext(void **state)
{
    char big[200];

    (void)state;
    assert_true(smtpd_xtext_ok("abc", 100));
    assert_true(smtpd_xtext_ok("a+2Bb+3D", 100));
    assert_true(smtpd_xtext_ok("rfc822;user@example.org", 100));
    assert_true(smtpd_xtext_ok("+20", 3));
    assert_false(smtpd_xtext_ok("", 100));
    assert_false(smtpd_xtext_ok("a=b", 100));
    assert_false(smtpd_xtext_ok("a b", 100));
    assert_false(smtpd_xtext_ok("a\tb", 100));
    assert_false(smtpd_xtext_ok("a+", 100));
    assert_false(smtpd_xtext_ok("a+4", 100));
    assert_false(smtpd_xtext_ok("a+G0", 100));
    assert_false(smtpd_xtext_ok("a+0g", 100));
    assert_false(smtpd_xtext_ok("\x7f", 100));
    assert_false(smtpd_xtext_ok("caf\xc3\xa9", 100));
    assert_true(smtpd_xtext_ok(sp_fill(big, 'x', 100), 100));
    assert_false(smtpd_xtext_ok(sp_fill(big, 'x', 101), 100));
}

/* test_domain - LDH labels, address literals, need_dot and lengths. */
static void test_domain(void **state)
{
    char label[80], big[300];

    (void)state;
    assert_true(smtpd_domain_ok("example.org", true));
    assert_true(smtpd_domain_ok("localhost", false));
    assert_false(smtpd_domain_ok("localhost", true));
    assert_true(smtpd_domain_ok("a-b.example", true));
    assert_true(smtpd_domain_ok("[192.0.2.7]", false));
    assert_false(smtpd_domain_ok("[]", false));
    assert_false(smtpd_domain_ok("[1.2.3.4", false));
    assert_false(smtpd_domain_ok("[1.2 3.4]", false));
    assert_false(smtpd_domain_ok("", false));
    assert_false(smtpd_domain_ok(".example.org", false));
    assert_false(smtpd_domain_ok("example.org.", false));
    assert_false(smtpd_domain_ok("exa..mple", false));
    assert_false(smtpd_domain_ok("-a.example", false));
    assert_false(smtpd_domain_ok("a-.example", false));
    assert_false(smtpd_domain_ok("ex ample.org", false));
    assert_false(smtpd_domain_ok("ex\xc3\xa4mple.org", false));
    snprintf(big, sizeof(big), "%s.org", sp_fill(label, 'a', 63));
    assert_true(smtpd_domain_ok(big, true));
    snprintf(big, sizeof(big), "%s.org", sp_fill(label, 'a', 64));
    assert_false(smtpd_domain_ok(big, true));
    for (size_t i = 0; i < 256; i++)
        big[i] = (i % 2) ? '.' : 'a';
    big[255] = '\0'; /* 255 octets: a.a.a...a */
    assert_true(smtpd_domain_ok(big, true));
    big[255] = '.';
    big[256] = 'a';
    big[257] = '\0';
    assert_false(smtpd_domain_ok(big, true));
}

/* test_helo - one printable token. */
static void test_helo(void **state)
{
    char big[300];

    (void)state;
    assert_true(smtpd_helo_ok("client.example"));
    assert_true(smtpd_helo_ok("[192.0.2.1]"));
    assert_false(smtpd_helo_ok(""));
    assert_false(smtpd_helo_ok("two words"));
    assert_false(smtpd_helo_ok("paren(s)"));
    assert_false(smtpd_helo_ok("ctl\x01"));
    assert_false(smtpd_helo_ok("8bit\xe9"));
    assert_true(smtpd_helo_ok(sp_fill(big, 'h', 255)));
    assert_false(smtpd_helo_ok(sp_fill(big, 'h', 256)));
}

/* main - run the parser tests. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_table),  cmocka_unit_test(test_local_part_length),
        cmocka_unit_test(test_path_length), cmocka_unit_test(test_small_output),
        cmocka_unit_test(test_xtext),       cmocka_unit_test(test_domain),
        cmocka_unit_test(test_helo),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
