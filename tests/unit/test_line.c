/*
 * test_line.c - unit tests for common/line.h: line_read() framing on real
 * libevent evbuffers.
 *
 * Covers CRLF and bare-LF terminators, bare CR and NUL flagging, lines of
 * exactly the limit, over-long lines (reported once as LINE_TOOLONG, then
 * the reader is back in sync on the next line) including over-long lines
 * that arrive in many appends, partial lines completed by later appends,
 * the raw octet count and line_pending().  Every buffer is owned by the
 * test that creates it and freed before the test returns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "line.h"

#define LT_MAX 16 /* small limit so the over-long paths are cheap to reach */

/* lt_fixture - one reader and one input buffer per test. */
struct lt_fixture {
    struct line_reader lr;
    struct evbuffer *in;
    char out[LT_MAX + 1];
    size_t len;
    unsigned flags;
    size_t raw;
};

/* lt_setup - a reader limited to LT_MAX octets and an empty buffer. */
static int lt_setup(void **state)
{
    static struct lt_fixture fx;

    memset(&fx, 0, sizeof(fx));
    line_reader_init(&fx.lr, LT_MAX);
    fx.in = evbuffer_new();
    if (fx.in == NULL)
        return -1;
    *state = &fx;
    return 0;
}

/* lt_teardown - free the buffer. */
static int lt_teardown(void **state)
{
    struct lt_fixture *fx = *state;

    evbuffer_free(fx->in);
    return 0;
}

/* lt_add - append n octets of s to the fixture's buffer. */
static void lt_add(struct lt_fixture *fx, const char *s, size_t n)
{
    assert_int_equal(evbuffer_add(fx->in, s, n), 0);
}

/* lt_adds - append a C string. */
static void lt_adds(struct lt_fixture *fx, const char *s)
{
    lt_add(fx, s, strlen(s));
}

/* lt_read - one line_read() call on the fixture. */
static int lt_read(struct lt_fixture *fx)
{
    fx->len = 0;
    fx->flags = 0xffu;
    return line_read(&fx->lr, fx->in, fx->out, &fx->len, &fx->flags, &fx->raw);
}

/* lt_expect_line - the next read returns exactly want with flags and raw count. */
static void lt_expect_line(struct lt_fixture *fx, const char *want, size_t wantlen,
                           unsigned wantflags, size_t wantraw)
{
    assert_int_equal(lt_read(fx), LINE_OK);
    assert_int_equal(fx->len, wantlen);
    assert_memory_equal(fx->out, want, wantlen);
    assert_int_equal(fx->out[wantlen], '\0');
    assert_int_equal(fx->flags, wantflags);
    assert_int_equal(fx->raw, wantraw);
}

/* test_crlf - CRLF lines come out without the terminator, flagged CRLF. */
static void test_crlf(void **state)
{
    struct lt_fixture *fx = *state;

    lt_adds(fx, "EHLO a\r\nQUIT\r\n");
    lt_expect_line(fx, "EHLO a", 6, LINE_F_CRLF, 8);
    lt_expect_line(fx, "QUIT", 4, LINE_F_CRLF, 6);
    assert_int_equal(lt_read(fx), LINE_NONE);
    assert_int_equal(fx->raw, 0);
    assert_false(line_pending(fx->in));
}

/* test_empty_lines - an empty CRLF line and an empty bare-LF line. */
static void test_empty_lines(void **state)
{
    struct lt_fixture *fx = *state;

    lt_adds(fx, "\r\n\n");
    lt_expect_line(fx, "", 0, LINE_F_CRLF, 2);
    lt_expect_line(fx, "", 0, 0, 1);
    assert_int_equal(lt_read(fx), LINE_NONE);
}

/* test_bare_lf - a bare LF ends a line but does not set LINE_F_CRLF. */
static void test_bare_lf(void **state)
{
    struct lt_fixture *fx = *state;

    lt_adds(fx, "NOOP\nRSET\r\n");
    lt_expect_line(fx, "NOOP", 4, 0, 5);
    lt_expect_line(fx, "RSET", 4, LINE_F_CRLF, 6);
}

/* test_bare_cr - a CR not before LF is kept in the line and flagged. */
static void test_bare_cr(void **state)
{
    struct lt_fixture *fx = *state;

    lt_adds(fx, "a\rb\r\n");
    lt_expect_line(fx, "a\rb", 3, LINE_F_CRLF | LINE_F_BARECR, 5);
    lt_adds(fx, "\r\r\n"); /* CR CR LF: the first CR is bare */
    lt_expect_line(fx, "\r", 1, LINE_F_CRLF | LINE_F_BARECR, 3);
    lt_adds(fx, "x\r"); /* a trailing CR alone is not a terminator */
    assert_int_equal(lt_read(fx), LINE_NONE);
    lt_adds(fx, "y\n");
    lt_expect_line(fx, "x\ry", 3, LINE_F_BARECR, 4);
}

/* test_nul - NUL bytes are kept, counted in the length and flagged. */
static void test_nul(void **state)
{
    struct lt_fixture *fx = *state;

    lt_add(fx, "a\0b\r\n", 5);
    lt_expect_line(fx, "a\0b", 3, LINE_F_CRLF | LINE_F_NUL, 5);
    lt_add(fx, "\0\r\0\n", 4);
    lt_expect_line(fx, "\0\r\0", 3, LINE_F_NUL | LINE_F_BARECR, 4);
}

/* test_exact_limit - a line of exactly max octets incl. CRLF is accepted. */
static void test_exact_limit(void **state)
{
    struct lt_fixture *fx = *state;
    char want[LT_MAX];

    memset(want, 'x', sizeof(want));
    lt_add(fx, want, LT_MAX - 2);
    lt_adds(fx, "\r\n");
    lt_expect_line(fx, want, LT_MAX - 2, LINE_F_CRLF, LT_MAX);
    lt_add(fx, want, LT_MAX - 1); /* max octets with a bare LF */
    lt_adds(fx, "\n");
    lt_expect_line(fx, want, LT_MAX - 1, 0, LT_MAX);
}

/* test_toolong_resync - one octet over the limit: TOOLONG once, then in sync. */
static void test_toolong_resync(void **state)
{
    struct lt_fixture *fx = *state;
    char big[LT_MAX];

    memset(big, 'y', sizeof(big));
    lt_add(fx, big, LT_MAX - 1);
    lt_adds(fx, "\r\nNEXT\r\n");
    assert_int_equal(lt_read(fx), LINE_TOOLONG);
    assert_int_equal(fx->raw, LT_MAX + 1);
    lt_expect_line(fx, "NEXT", 4, LINE_F_CRLF, 6);
    assert_int_equal(lt_read(fx), LINE_NONE);
}

/* test_toolong_huge - a line far over the limit (many skip chunks). */
static void test_toolong_huge(void **state)
{
    struct lt_fixture *fx = *state;
    static char big[20000];

    memset(big, 'z', sizeof(big));
    lt_add(fx, big, sizeof(big));
    lt_adds(fx, "\r\nQUIT\r\n");
    assert_int_equal(lt_read(fx), LINE_TOOLONG);
    assert_int_equal(fx->raw, sizeof(big) + 2);
    lt_expect_line(fx, "QUIT", 4, LINE_F_CRLF, 6);
}

/* test_toolong_split - an over-long line arriving in appends; its tail is not a line. */
static void test_toolong_split(void **state)
{
    struct lt_fixture *fx = *state;
    char big[LT_MAX * 2];
    size_t consumed = 0;

    memset(big, 'w', sizeof(big));
    lt_add(fx, big, sizeof(big));
    assert_int_equal(lt_read(fx), LINE_NONE); /* dropping, no LF yet */
    consumed += fx->raw;
    assert_false(line_pending(fx->in));
    for (int i = 0; i < 3; i++) {
        lt_add(fx, big, 5);
        assert_int_equal(lt_read(fx), LINE_NONE);
        consumed += fx->raw;
    }
    lt_adds(fx, "tail\r\nok\r\n");
    assert_int_equal(lt_read(fx), LINE_TOOLONG);
    consumed += fx->raw;
    assert_int_equal(consumed, sizeof(big) + 15 + 6);
    lt_expect_line(fx, "ok", 2, LINE_F_CRLF, 4);
}

/* test_partial - a line completed across several appends, one octet at a time. */
static void test_partial(void **state)
{
    struct lt_fixture *fx = *state;
    const char *msg = "MAIL FROM:<>\r\n";
    size_t n = strlen(msg);

    for (size_t i = 0; i + 1 < n; i++) {
        lt_add(fx, msg + i, 1);
        assert_int_equal(lt_read(fx), LINE_NONE);
        assert_true(line_pending(fx->in));
    }
    lt_add(fx, msg + n - 1, 1);
    lt_expect_line(fx, "MAIL FROM:<>", 12, LINE_F_CRLF, n);
    assert_false(line_pending(fx->in));
}

/* test_partial_at_limit - max octets without a LF yet is already TOOLONG-bound. */
static void test_partial_at_limit(void **state)
{
    struct lt_fixture *fx = *state;
    char big[LT_MAX];

    memset(big, 'q', sizeof(big));
    lt_add(fx, big, LT_MAX - 1); /* one short of the limit: still waiting */
    assert_int_equal(lt_read(fx), LINE_NONE);
    assert_int_equal(evbuffer_get_length(fx->in), LT_MAX - 1);
    lt_add(fx, "q", 1); /* now max octets and no LF: cannot be a valid line */
    assert_int_equal(lt_read(fx), LINE_NONE);
    assert_int_equal(evbuffer_get_length(fx->in), 0);
    lt_adds(fx, "\nA\n");
    assert_int_equal(lt_read(fx), LINE_TOOLONG);
    lt_expect_line(fx, "A", 1, 0, 2);
}

/* test_raw_null - raw may be NULL. */
static void test_raw_null(void **state)
{
    struct lt_fixture *fx = *state;
    char big[LT_MAX * 3];

    memset(big, 'r', sizeof(big));
    lt_add(fx, big, sizeof(big));
    lt_adds(fx, "\nB\r\n");
    assert_int_equal(line_read(&fx->lr, fx->in, fx->out, &fx->len, &fx->flags, NULL), LINE_TOOLONG);
    assert_int_equal(line_read(&fx->lr, fx->in, fx->out, &fx->len, &fx->flags, NULL), LINE_OK);
    assert_string_equal(fx->out, "B");
}

/* test_many_lines - many lines in one append come out in order. */
static void test_many_lines(void **state)
{
    struct lt_fixture *fx = *state;
    char line[LT_MAX];
    int n = 0;

    for (int i = 0; i < 200; i++) {
        int k = snprintf(line, sizeof(line), "L%d\r\n", i);
        lt_add(fx, line, (size_t)k);
    }
    for (int i = 0; i < 250 && lt_read(fx) == LINE_OK; i++) {
        char want[LT_MAX];
        snprintf(want, sizeof(want), "L%d", n);
        assert_string_equal(fx->out, want);
        n++;
    }
    assert_int_equal(n, 200);
}

/* main - run the line framing tests. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crlf, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_empty_lines, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_bare_lf, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_bare_cr, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_nul, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_exact_limit, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_toolong_resync, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_toolong_huge, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_toolong_split, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_partial, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_partial_at_limit, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_raw_null, lt_setup, lt_teardown),
        cmocka_unit_test_setup_teardown(test_many_lines, lt_setup, lt_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
