/*
 * fuzz_turn.c - fuzz target for turnd's input parsers that are reachable
 * as functions: turn_domain_valid() (the RFC 2645 domain check behind the
 * ATRN domain list) and the SASL exchange of turn_sasl.c (base64 decoding
 * of initial and later client responses, libsasl2 server start/step, the
 * challenge encoding), against a real libsasl2 with a real sasldb.
 *
 * Input lines (split at LF, a trailing CR dropped):
 *   line 1: a candidate domain, also split at ',' like an ATRN argument;
 *   line 2: "MECH" or "MECH initial-response" (as in AUTH);
 *   more:   client responses, each given to turn_sasl_next() while the
 *           server keeps asking (at most FUZZ_TURN_STEPS).
 * Checked: a domain accepted has no empty label, no leading or trailing
 * dot and is shorter than 256 octets; every status is one of the enum;
 * a challenge is returned exactly with TURN_SASL_MORE and is base64 text.
 * Setup (once): a temp directory with holdmx.conf, the SASL config
 * (sasldb, mech_list CRAM-MD5 PLAIN LOGIN) and the secret of "alice".
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "log.h"
#include "sasl_glue.h"
#include "turn_sasl.h"
#include "turn_session.h"

#include "fuzz_common.h"

#define FUZZ_TURN_STEPS 8
#define FUZZ_TURN_LINE  2048

/* fuzz_turn_env - configuration and temp directory for the whole process. */
static struct {
    char dir[256];
    struct conf cf;
    bool ready;
} fte;

/* fuzz_turn_rm - nftw callback removing one entry. */
static int fuzz_turn_rm(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* fuzz_turn_teardown - release libsasl2 and the configuration, remove the dir (atexit). */
static void fuzz_turn_teardown(void)
{
    turn_sasl_shutdown();
    conf_free(&fte.cf);
    nftw(fte.dir, fuzz_turn_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* fuzz_turn_write - write text to dir/name. */
static void fuzz_turn_write(const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fte.dir, name);
    f = fopen(path, "w");
    fuzz_assert(f != NULL);
    fputs(text, f);
    fuzz_assert(fclose(f) == 0);
}

/* fuzz_turn_setup - configuration, SASL backend and one account. */
static void fuzz_turn_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    char text[1024], path[512], err[256];

    log_open("fuzz_turn", true);
    snprintf(fte.dir, sizeof(fte.dir), "%s/hm-fuzz-turn.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    fuzz_assert(mkdtemp(fte.dir) != NULL);
    snprintf(path, sizeof(path), "%s/sasl", fte.dir);
    fuzz_assert(mkdir(path, 0700) == 0);
    snprintf(text, sizeof(text),
             "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s/sasl/sasldb2\n"
             "mech_list: CRAM-MD5 PLAIN LOGIN\n",
             fte.dir);
    fuzz_turn_write("sasl/holdmx.conf", text);
    snprintf(text, sizeof(text),
             "state_dir = %s\nsasl_app = holdmx\nsasl_conf_dir = sasl\nstart_turnd = no\n"
             "[site default]\nhostname = fuzz.example\nsmtp_listen = 127.0.0.1:9\n",
             fte.dir);
    fuzz_turn_write("holdmx.conf", text);
    snprintf(path, sizeof(path), "%s/holdmx.conf", fte.dir);
    fuzz_assert(conf_load(path, &fte.cf, stderr) == 0);
    fuzz_assert(turn_sasl_init(&fte.cf, err, sizeof(err)));
    fuzz_assert(sasl_glue_setpass(&fte.cf, "alice", "secret", 6, err, sizeof(err)) == SASL_GLUE_OK);
    atexit(fuzz_turn_teardown);
    fte.ready = true;
}

/* fuzz_turn_line - the next line of data into out (CR dropped); false at the end. */
static bool fuzz_turn_line(const uint8_t *data, size_t size, size_t *off, char *out)
{
    size_t n = 0;

    if (*off >= size)
        return false;
    while (*off < size && data[*off] != '\n') {
        if (n < FUZZ_TURN_LINE)
            out[n++] = data[*off] == '\0' ? ' ' : (char)data[*off];
        (*off)++;
    }
    if (*off < size)
        (*off)++;
    if (n > 0 && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    return true;
}

/* fuzz_turn_domain - one turn_domain_valid() call and what an accepted domain must be. */
static void fuzz_turn_domain(const char *d)
{
    size_t n = strlen(d);

    if (!turn_domain_valid(d))
        return;
    fuzz_assert(n > 0 && n < 256 && d[0] != '.' && d[n - 1] != '.');
    fuzz_assert(strstr(d, "..") == NULL && strchr(d, '.') != NULL);
}

/* fuzz_turn_domains - the whole line, then each comma-separated piece. */
static void fuzz_turn_domains(char *line)
{
    char *piece, *save = NULL;
    int n = 0;

    fuzz_turn_domain(line);
    for (piece = strtok_r(line, ",", &save); piece != NULL && n < 1000;
         piece = strtok_r(NULL, ",", &save), n++)
        fuzz_turn_domain(piece);
}

/* fuzz_turn_status - a status is one of the enum; a challenge comes only with MORE. */
static void fuzz_turn_status(int st, char *challenge)
{
    fuzz_assert(st >= TURN_SASL_DONE && st <= TURN_SASL_NOMECH);
    if (getenv("FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "sasl status %d\n", st);
    fuzz_assert((st == TURN_SASL_MORE) == (challenge != NULL));
    if (challenge != NULL)
        fuzz_assert(strspn(challenge, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789+/=") == strlen(challenge));
    free(challenge);
}

/* LLVMFuzzerTestOneInput - a domain line, then one SASL exchange. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char line[FUZZ_TURN_LINE + 1];
    struct turn_sasl *s;
    char *challenge = NULL, *sp;
    size_t off = 0;
    int st, steps;

    if (!fte.ready)
        fuzz_turn_setup();
    if (!fuzz_turn_line(data, size, &off, line))
        return 0;
    fuzz_turn_domains(line);
    if (!fuzz_turn_line(data, size, &off, line))
        return 0;
    s = turn_sasl_create("fuzz.example", "holdmx", "127.0.0.1;366", "127.0.0.1;40000", true);
    fuzz_assert(s != NULL);
    sp = strchr(line, ' ');
    if (sp != NULL)
        *sp++ = '\0';
    st = turn_sasl_first(s, line, sp, &challenge);
    fuzz_turn_status(st, challenge);
    for (steps = 0; st == TURN_SASL_MORE && steps < FUZZ_TURN_STEPS; steps++) {
        if (!fuzz_turn_line(data, size, &off, line))
            break;
        st = turn_sasl_next(s, line, &challenge);
        fuzz_turn_status(st, challenge);
    }
    if (st == TURN_SASL_DONE)
        fuzz_assert(turn_sasl_username(s) != NULL);
    turn_sasl_free(s);
    return 0;
}

static const char *const fuzz_turn_seeds[] FUZZ_SEEDS = {
    "example.org,Sub.Example.NET\nPLAIN AGFsaWNlAHNlY3JldA==\n",
    "a.b\nPLAIN\nAGFsaWNlAHdyb25n\n",
    "-bad-.example\nLOGIN\nYWxpY2U=\nc2VjcmV0\n",
    "x..y\nCRAM-MD5\nYWxpY2UgMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
    "example.org,\nPLAIN not*base64\n",
    ".\nANONYMOUS\n",
    "\nPLAIN =\n",
};

FUZZ_MAIN(fuzz_turn_seeds)
