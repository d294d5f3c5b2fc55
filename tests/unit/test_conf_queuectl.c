/*
 * test_conf_queuectl.c - queuectl verb handlers (queued/ctl_*.c) with mail
 * in a real LMDB store: what the shell test cannot set up without a
 * running queued.
 *
 * A message is committed with store_msg_add() for a held domain; then
 * "domain delete" must refuse (EX_UNAVAILABLE) naming the count and the
 * drain/export way out and keep the domain, "domain show --json" must count
 * the message, and once the message is gone the delete must succeed.
 * stdout/stderr of the handlers are redirected into files and searched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"

static char test_dir[256];

/* test_capture - run fn with stdout and stderr going to files; returns its code. */
static int test_capture(struct ctl *c, ctl_handler fn, int argc, char **argv, char *out,
                        size_t outlen)
{
    char path[512];
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO), rc;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/captured", test_dir);
    fflush(stdout);
    fflush(stderr);
    assert_non_null(freopen(path, "w", stdout));
    assert_true(dup2(STDOUT_FILENO, STDERR_FILENO) >= 0);
    rc = fn(c, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_out);
    close(saved_err);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    fclose(f);
    unlink(path);
    return rc;
}

/* test_add_message - one message for rcpt on site "default"; its id. */
static store_msgid_t test_add_message(struct store *st, const char *rcpt)
{
    static const char body[] = "Subject: held\r\n\r\nhello\r\n";
    struct store_rcpt_in r = {rcpt, 0, NULL};
    struct iovec iov = {(void *)body, sizeof(body) - 1};
    struct store_msg_in m;
    const struct store_msg_in *mp = &m;
    store_msgid_t id = 0;
    int status = -1;

    memset(&m, 0, sizeof(m));
    m.site = "default";
    m.sender = "sender@example.org";
    m.body_type = STORE_BODY_7BIT;
    m.client_addr = "127.0.0.1";
    m.client_helo = "client.example";
    m.arrival = (int64_t)time(NULL) - 3600;
    m.rcpts = &r;
    m.nrcpts = 1;
    m.iov = &iov;
    m.iovcnt = 1;
    m.body_fd = -1;
    m.body_len = sizeof(body) - 1;
    assert_int_equal(store_msg_add(st, &mp, 1, &id, &status), STORE_OK);
    assert_int_equal(status, STORE_OK);
    return id;
}

/* test_delete_refused_while_mail_held - the whole story on one domain. */
static void test_delete_refused_while_mail_held(void **state)
{
    char conf[512], out[4096], *add[] = {"busy.example", "--site", "default"};
    char *name[] = {"busy.example"}, *show[] = {"busy.example", "--json"};
    struct ctl c;
    struct store_domain d;
    store_msgid_t id;

    (void)state;
    snprintf(conf, sizeof(conf), "%s/holdmx.conf", test_dir);
    memset(&c, 0, sizeof(c));
    c.conf_file = conf;
    assert_int_equal(conf_load(conf, &c.cf, stderr), 0);

    assert_int_equal(test_capture(&c, ctl_domain_add, 3, add, out, sizeof(out)), EX_OK);
    assert_int_equal(ctl_store(&c, true), EX_OK);
    id = test_add_message(c.st, "user@busy.example");

    assert_int_equal(test_capture(&c, ctl_domain_show, 2, show, out, sizeof(out)), EX_OK);
    if (strstr(out, "\"messages\":1,") == NULL)
        fail_msg("show --json does not count the message: %s", out);

    assert_int_equal(test_capture(&c, ctl_domain_delete, 1, name, out, sizeof(out)),
                     EX_UNAVAILABLE);
    if (strstr(out, "still holds 1 message") == NULL || strstr(out, "site drain") == NULL ||
        strstr(out, "--export") == NULL)
        fail_msg("refusal does not name the count and the way out: %s", out);
    assert_int_equal(store_domain_get(c.st, "busy.example", &d), STORE_OK);

    assert_int_equal(store_msg_delete(c.st, id), STORE_OK);
    assert_int_equal(test_capture(&c, ctl_domain_delete, 1, name, out, sizeof(out)), EX_OK);
    assert_int_equal(store_domain_get(c.st, "busy.example", &d), STORE_NOTFOUND);

    store_close(c.st);
    conf_free(&c.cf);
}

/* setup - temp dir with a minimal holdmx.conf (state in ./state). */
static int setup(void **state)
{
    char path[512];
    FILE *f;

    (void)state;
    snprintf(test_dir, sizeof(test_dir), "/tmp/hm-test-ctl.XXXXXX");
    if (mkdtemp(test_dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/holdmx.conf", test_dir);
    if ((f = fopen(path, "w")) == NULL)
        return -1;
    fputs("state_dir = state\nmap_size = 4M\nmap_size_max = 64M\n"
          "[site default]\nhostname = mx.test.example\nsmtp_listen = 127.0.0.1:2525\n",
          f);
    return fclose(f);
}

/* teardown - remove the temp dir. */
static int teardown(void **state)
{
    char cmd[600];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* main - one scenario. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delete_refused_while_mail_held, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
