/*
 * test_conf_sasl.c - cmocka tests of common/sasl_glue.c against the real
 * libsasl2 and a real sasldb in a temporary directory.
 *
 * The configuration is loaded with conf_load() (sasl_conf_dir relative to
 * the file), secrets are written with sasl_glue_setpass() and then checked
 * the way turnd will see them: a libsasl2 server connection in the realm
 * cf->sasl_realm and sasl_checkpass().  libsasl2 is initialised once per
 * process, so the tests share one configuration (group setup/teardown).
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
#include <sasl/sasl.h>

#include "conf.h"
#include "log.h"
#include "sasl_glue.h"

static char test_dir[256];
static struct conf test_cf;

/* test_file - write text to test_dir/name. */
static int test_file(const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    if ((f = fopen(path, "w")) == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* group_setup - temp dir with holdmx.conf, sasl/holdmx.conf; load and init libsasl2. */
static int group_setup(void **state)
{
    char text[1024], path[512], err[256];

    (void)state;
    log_open("test_conf_sasl", true);
    snprintf(test_dir, sizeof(test_dir), "/tmp/hm-test-sasl.XXXXXX");
    if (mkdtemp(test_dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/sasl", test_dir);
    if (mkdir(path, 0700) != 0)
        return -1;
    snprintf(text, sizeof(text),
             "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s/sasl/sasldb2\n"
             "mech_list: CRAM-MD5 PLAIN LOGIN\n",
             test_dir);
    if (test_file("sasl/holdmx.conf", text) != 0 ||
        test_file("holdmx.conf", "sasl_app = holdmx\nsasl_conf_dir = sasl\n") != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/holdmx.conf", test_dir);
    if (conf_load(path, &test_cf, stderr) != 0)
        return -1;
    if (!sasl_glue_init(&test_cf, true, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

/* group_teardown - libsasl2 down, files removed. */
static int group_teardown(void **state)
{
    char cmd[600];

    (void)state;
    sasl_glue_done();
    conf_free(&test_cf);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* test_check - sasl_checkpass result for user/pass, as turnd would see it. */
static int test_check(const char *user, const char *pass)
{
    sasl_conn_t *conn = NULL;
    int r;

    r = sasl_server_new(SASL_GLUE_SERVICE, NULL, test_cf.sasl_realm, NULL, NULL, NULL, 0, &conn);
    assert_int_equal(r, SASL_OK);
    r = sasl_checkpass(conn, user, (unsigned)strlen(user), pass, (unsigned)strlen(pass));
    sasl_dispose(&conn);
    return r;
}

/* test_setpass_roundtrip - stored secrets verify; wrong ones do not; replace works. */
static void test_setpass_roundtrip(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(sasl_glue_setpass(&test_cf, "alice", "Secr3t!xyz", 7, err, sizeof(err)),
                     SASL_GLUE_OK); /* passlen, not strlen, counts */
    assert_int_equal(test_check("alice", "Secr3t!"), SASL_OK);
    assert_int_equal(test_check("alice@holdmx", "Secr3t!"), SASL_OK);
    assert_int_not_equal(test_check("alice", "wrong"), SASL_OK);
    assert_int_not_equal(test_check("alice", "Secr3t!xyz"), SASL_OK);
    assert_int_not_equal(test_check("alice@other.realm", "Secr3t!"), SASL_OK);
    /* replacing the secret of an existing user */
    assert_int_equal(sasl_glue_setpass(&test_cf, "alice", "n3w", 3, err, sizeof(err)),
                     SASL_GLUE_OK);
    assert_int_equal(test_check("alice", "n3w"), SASL_OK);
    assert_int_not_equal(test_check("alice", "Secr3t!"), SASL_OK);
}

/* test_delpass - a deleted user no longer authenticates; others are untouched. */
static void test_delpass(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(sasl_glue_setpass(&test_cf, "bob", "bobpass", 7, err, sizeof(err)),
                     SASL_GLUE_OK);
    assert_int_equal(sasl_glue_setpass(&test_cf, "carol", "carolpass", 9, err, sizeof(err)),
                     SASL_GLUE_OK);
    assert_int_equal(test_check("bob", "bobpass"), SASL_OK);
    assert_int_not_equal(sasl_glue_delpass(&test_cf, "bob", err, sizeof(err)), SASL_GLUE_FAIL);
    assert_int_not_equal(test_check("bob", "bobpass"), SASL_OK);
    assert_int_equal(test_check("carol", "carolpass"), SASL_OK);
}

/* test_bad_password - empty and over-long secrets are refused before libsasl2. */
static void test_bad_password(void **state)
{
    char err[512], big[2000];

    (void)state;
    memset(big, 'x', sizeof(big));
    assert_int_equal(sasl_glue_setpass(&test_cf, "dave", "", 0, err, sizeof(err)), SASL_GLUE_FAIL);
    assert_non_null(strstr(err, "1 to 1024"));
    assert_int_equal(sasl_glue_setpass(&test_cf, "dave", big, sizeof(big), err, sizeof(err)),
                     SASL_GLUE_FAIL);
    assert_int_not_equal(test_check("dave", ""), SASL_OK);
}

/* test_account_name - the realm suffix is stripped only when it is ours. */
static void test_account_name(void **state)
{
    char out[16];

    (void)state;
    assert_true(sasl_glue_account_name("alice@holdmx", "holdmx", out, sizeof(out)));
    assert_string_equal(out, "alice");
    assert_true(sasl_glue_account_name("alice@HOLDMX", "holdmx", out, sizeof(out)));
    assert_string_equal(out, "alice");
    assert_true(sasl_glue_account_name("alice", "holdmx", out, sizeof(out)));
    assert_string_equal(out, "alice");
    assert_true(sasl_glue_account_name("alice@other", "holdmx", out, sizeof(out)));
    assert_string_equal(out, "alice@other");
    assert_true(sasl_glue_account_name("a@b@holdmx", "holdmx", out, sizeof(out)));
    assert_string_equal(out, "a@b");
    assert_false(sasl_glue_account_name("@holdmx", "holdmx", out, sizeof(out)));
    assert_false(sasl_glue_account_name("", "holdmx", out, sizeof(out)));
    assert_false(sasl_glue_account_name("a-very-long-name-indeed", "holdmx", out, sizeof(out)));
    assert_true(sasl_glue_account_name("alice@holdmx", NULL, out, sizeof(out)));
    assert_string_equal(out, "alice@holdmx");
}

/* main - every test against one libsasl2 initialisation. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setpass_roundtrip),
        cmocka_unit_test(test_delpass),
        cmocka_unit_test(test_bad_password),
        cmocka_unit_test(test_account_name),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
