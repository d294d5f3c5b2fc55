/*
 * fuzz_conf.c - fuzz target for common/conf.c: conf_load() on arbitrary
 * file contents (inih parsing, every key's value parser: durations, sizes,
 * addresses, booleans, enums; [site NAME] sections; the cross checks such
 * as duplicate listeners and missing certificate files).
 *
 * Each input is written to holdmx.conf in a private temp directory, loaded,
 * and released with conf_free() whether it was valid or not (LSan checks
 * that nothing leaks on any error path).  A valid result must have a
 * "default" site, a state_dir, and sites with names.  Problem lines go to
 * /dev/null.  The temp directory is removed at exit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#include "fuzz_common.h"

/* fuzz_conf_env - the temp file and the sink for problem lines. */
static struct {
    char dir[64];
    char path[128];
    FILE *devnull;
} fce;

/* fuzz_conf_teardown - remove the temp file and directory (atexit). */
static void fuzz_conf_teardown(void)
{
    unlink(fce.path);
    rmdir(fce.dir);
    if (fce.devnull != NULL)
        fclose(fce.devnull);
}

/* fuzz_conf_setup - a private temp directory and /dev/null for the errors. */
static void fuzz_conf_setup(void)
{
    snprintf(fce.dir, sizeof(fce.dir), "/tmp/hm-fuzz-conf.XXXXXX");
    fuzz_assert(mkdtemp(fce.dir) != NULL);
    snprintf(fce.path, sizeof(fce.path), "%s/holdmx.conf", fce.dir);
    fce.devnull = fopen("/dev/null", "w");
    fuzz_assert(fce.devnull != NULL);
    atexit(fuzz_conf_teardown);
}

/* LLVMFuzzerTestOneInput - load data as holdmx.conf. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf cf;
    FILE *f;
    int i;

    if (fce.devnull == NULL)
        fuzz_conf_setup();
    f = fopen(fce.path, "w");
    fuzz_assert(f != NULL);
    fuzz_assert(fwrite(data, 1, size, f) == size);
    fuzz_assert(fclose(f) == 0);
    memset(&cf, 0, sizeof(cf));
    if (conf_load(fce.path, &cf, fce.devnull) == 0) {
        fuzz_assert(cf.state_dir != NULL);
        fuzz_assert(conf_site_find(&cf, "default") != NULL);
        for (i = 0; i < cf.nsites; i++)
            fuzz_assert(cf.sites[i].name[0] != '\0' &&
                        memchr(cf.sites[i].name, '\0', sizeof(cf.sites[i].name)) != NULL);
    }
    conf_free(&cf);
    return 0;
}

static const char *const fuzz_conf_seeds[] FUZZ_SEEDS = {
    "state_dir = /tmp/x\n[site default]\nhostname = mx.example\nsmtp_listen = 127.0.0.1:2525\n",
    "hold_time = 7d\ndelay_warning = 0\nmax_message_size = 50M\nbounce_relay = [::1]:25\n"
    "[site a]\nodmr_listen = [127.0.0.1]:366\n[site a]\n",
    "unknown_key = 1\nmax_errors = -5\nsmtp_timeout = 99999999999999999999w\n[site ]\n[x\n",
    "[site default]\nsmtp_listen = 127.0.0.1:25\n[site b]\nsmtp_listen = 127.0.0.1:25\n"
    "tls_cert = nothere.pem\n",
};

FUZZ_MAIN(fuzz_conf_seeds)
