/*
 * test_dsn_build.c - RFC 3464 reports from dsn.c, parsed back: the MIME
 * structure (boundary, three parts, content types), the required
 * per-message and per-recipient fields, and which original is attached.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dsn.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char t_orig[] = "From: a@a.test\r\nSubject: hello\r\n\r\nbody line\r\n.dot line\r\n";

/* t_reader - the original body for dsn_build; fail = simulate a store error. */
struct t_reader {
    const char *body;
    size_t len;
    bool fail;
};

/* t_read - dsn_read_fn over a memory body, in small pieces. */
static int t_read(void *arg, uint64_t off, void *buf, size_t len, size_t *got)
{
    struct t_reader *r = arg;

    *got = 0;
    if (r->fail)
        return -1;
    if (off >= r->len)
        return 0;
    *got = r->len - off < len ? r->len - (size_t)off : len;
    if (*got > 1000)
        *got = 1000;
    memcpy(buf, r->body + off, *got);
    return 0;
}

/* t_parts - split a report at its boundary; returns the number of parts found. */
static size_t t_parts(const char *dsn, char parts[4][200000], char *boundary, size_t bsz)
{
    const char *b = strstr(dsn, "boundary=\""), *p, *end;
    char delim[200];
    size_t n = 0;

    assert_non_null(b);
    b += 10;
    end = strchr(b, '"');
    assert_non_null(end);
    snprintf(boundary, bsz, "%.*s", (int)(end - b), b);
    snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
    p = strstr(dsn, delim);
    assert_non_null(p);
    while (p && n < 4) {
        const char *start = p + strlen(delim), *next;
        if (strncmp(start, "--", 2) == 0)
            return n; /* closing delimiter */
        next = strstr(start, delim);
        assert_non_null(next);
        snprintf(parts[n++], 200000, "%.*s", (int)(next - start), start);
        p = next;
    }
    return n;
}

static char t_buf[4][200000];

/* t_setup - one message with three recipients. */
static void t_setup(struct store_msg_info *info, struct store_rcpt_info r[3])
{
    memset(info, 0, sizeof(*info));
    info->id = 0x1234abcd;
    strcpy(info->sender, "a@a.test");
    strcpy(info->envid, "ENV42");
    info->arrival = 1700000000;
    info->ret = STORE_RET_NONE;
    info->size = sizeof(t_orig) - 1;
    memset(r, 0, 3 * sizeof(*r));
    strcpy(r[0].addr, "u1@c.test");
    strcpy(r[0].orcpt, "rfc822;U1@c.test");
    strcpy(r[0].last_reply, "550 5.1.1 no such user");
    r[0].last_attempt = 1700000100;
    strcpy(r[1].addr, "u2@c.test");
    strcpy(r[1].last_reply, "hold time expired");
    strcpy(r[2].addr, "never@c.test");
    r[2].notify = STORE_NOTIFY_NEVER;
}

/* t_case - one report to build: envelope, recipients, body reader, input and output. */
struct t_case {
    struct store_msg_info info;
    struct store_rcpt_info r[3];
    struct t_reader rd;
    struct dsn_input in;
    char *out;
    size_t len;
    char boundary[128];
};

/* t_case_init - t_setup's message; a kind report on all three recipients. */
static void t_case_init(struct t_case *c, int kind)
{
    memset(c, 0, sizeof(*c));
    t_setup(&c->info, c->r);
    c->rd = (struct t_reader){t_orig, sizeof(t_orig) - 1, false};
    c->in = (struct dsn_input){"mx.isp.test", kind, &c->info, c->r,   3,
                               1700001000,    0,    t_read,   &c->rd, 0};
}

/* t_case_build - dsn_build gives DSN_BUILT with three MIME parts, split into t_buf. */
static void t_case_build(struct t_case *c)
{
    assert_int_equal(dsn_build(&c->in, &c->out, &c->len), DSN_BUILT);
    assert_int_equal(strlen(c->out), c->len);
    assert_int_equal(t_parts(c->out, t_buf, c->boundary, sizeof(c->boundary)), 3);
}

/* test_failure_full - bounce with the whole original as message/rfc822. */
static void test_failure_full(void **state)
{
    struct t_case c;

    (void)state;
    t_case_init(&c, STORE_NOTE_FAILED);
    t_case_build(&c);
    assert_non_null(strstr(c.out, "From: MAILER-DAEMON@mx.isp.test"));
    assert_non_null(strstr(c.out, "\r\nTo: <a@a.test>\r\n"));
    assert_non_null(strstr(c.out, "\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
    assert_non_null(strstr(c.out, "\r\nAuto-Submitted: auto-replied\r\n"));
    assert_non_null(strstr(c.out, "multipart/report; report-type=delivery-status"));
    assert_non_null(strstr(t_buf[0], "Content-Type: text/plain"));
    assert_non_null(strstr(t_buf[0], "<u1@c.test>: 550 5.1.1 no such user"));
    assert_non_null(strstr(t_buf[1], "Content-Type: message/delivery-status\r\n\r\n"));
    assert_non_null(strstr(t_buf[1], "Reporting-MTA: dns; mx.isp.test\r\n"));
    assert_non_null(strstr(t_buf[1], "Original-Envelope-Id: ENV42\r\n"));
    assert_non_null(strstr(t_buf[1], "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
    assert_non_null(strstr(t_buf[1], "\r\n\r\nFinal-Recipient: rfc822; u1@c.test\r\n"
                                     "Original-Recipient: rfc822;U1@c.test\r\n"
                                     "Action: failed\r\nStatus: 5.1.1\r\n"
                                     "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
    assert_non_null(strstr(t_buf[1], "Final-Recipient: rfc822; u2@c.test\r\nAction: failed\r\n"
                                     "Status: 5.4.7\r\n"));
    assert_null(strstr(c.out, "never@c.test"));
    assert_null(strstr(t_buf[1], "Will-Retry-Until"));
    assert_non_null(strstr(t_buf[2], "Content-Type: message/rfc822\r\n\r\n"));
    assert_non_null(strstr(t_buf[2], t_orig));
    /* The boundary never occurs inside the parts. */
    for (int i = 0; i < 3; i++)
        assert_null(strstr(t_buf[i], c.boundary));
    free(c.out);
}

/* test_failure_hdrs - RET=HDRS (and a too-big original) attach only the header section. */
static void test_failure_hdrs(void **state)
{
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        struct t_case c;

        t_case_init(&c, STORE_NOTE_FAILED);
        if (variant == 0)
            c.info.ret = STORE_RET_HDRS;
        else
            c.in.full_max = 20;
        t_case_build(&c);
        assert_non_null(strstr(t_buf[2], "Content-Type: text/rfc822-headers\r\n\r\n"
                                         "From: a@a.test\r\nSubject: hello\r\n"));
        assert_null(strstr(t_buf[2], "body line"));
        free(c.out);
    }
}

/* test_delay - a delay warning: Action delayed, 4.x.x, Will-Retry-Until, headers only. */
static void test_delay(void **state)
{
    struct t_case c;

    (void)state;
    t_case_init(&c, STORE_NOTE_DELAYED);
    c.in.nrcpts = 2;
    c.in.retry_until = 1700604800;
    strcpy(c.r[0].last_reply, "451 4.2.0 mailbox busy");
    c.r[1].last_reply[0] = '\0';
    c.r[1].notify = STORE_NOTIFY_FAILURE; /* no DELAY asked: not reported */
    t_case_build(&c);
    assert_non_null(strstr(c.out, "\r\nSubject: Delayed Mail (still being held)\r\n"));
    assert_non_null(strstr(t_buf[1], "Action: delayed\r\nStatus: 4.2.0\r\n"));
    assert_non_null(strstr(t_buf[1], "Will-Retry-Until: Tue, 21 Nov 2023 22:13:20 +0000\r\n"));
    assert_null(strstr(t_buf[1], "u2@c.test"));
    assert_non_null(strstr(t_buf[2], "Content-Type: text/rfc822-headers"));
    free(c.out);
}

/* test_no_dsn - null sender and NOTIFY=NEVER everywhere give DSN_NONE; read errors DSN_ERROR. */
static void test_no_dsn(void **state)
{
    struct t_case c;

    (void)state;
    t_case_init(&c, STORE_NOTE_FAILED);
    c.info.sender[0] = '\0';
    assert_int_equal(dsn_build(&c.in, &c.out, &c.len), DSN_NONE);
    t_case_init(&c, STORE_NOTE_FAILED);
    c.in.rcpts = &c.r[2];
    c.in.nrcpts = 1;
    assert_int_equal(dsn_build(&c.in, &c.out, &c.len), DSN_NONE);
    t_case_init(&c, STORE_NOTE_FAILED);
    c.rd.fail = true;
    assert_int_equal(dsn_build(&c.in, &c.out, &c.len), DSN_ERROR);
    assert_null(c.out);
}

/* main - the test table. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_full),
        cmocka_unit_test(test_failure_hdrs),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_no_dsn),
    };

    log_open("test_dsn_build", true);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
