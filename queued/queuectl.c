/*
 * queuectl.c - the holdmx operator tool: held domains and accounts
 * (ctl_domain.c, ctl_account.c), the queue, statistics and sites
 * (ctl_nouns.h: ctl_queue.c, ctl_stats.c, ctl_site.c).
 *
 *   queuectl [-c FILE] [-v] NOUN VERB [ARGS...]
 *
 * main() reads the configuration (any problem: exit 78, EX_CONFIG), finds
 * NOUN VERB in ctl_verbs[] and runs its handler, which opens the store
 * directly (state_dir) when it needs it.  Adding a verb = one handler in a
 * ctl_*.c file + one row in ctl_verbs[].  Nouns with their own verb
 * parser are listed in ctl_nouns[] and get the words from NOUN on.
 * Exit codes follow sysexits.h: EX_USAGE bad command line, EX_DATAERR bad
 * or unknown names and values, EX_NOINPUT missing input file,
 * EX_UNAVAILABLE refused (e.g. a domain still holding mail) or store/SASL
 * not available, EX_SOFTWARE internal error or unreadable store,
 * EX_CONFIG configuration problems.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf.h"
#include "ctl.h"
#include "ctl_nouns.h"
#include "log.h"
#include "sasl_glue.h"

#ifndef HOLDMX_CONF_DEFAULT
#define HOLDMX_CONF_DEFAULT "/etc/holdmx/holdmx.conf"
#endif

static const struct ctl_verb ctl_verbs[] = {
    {"domain", "add", ctl_domain_add,
     "NAME [--site S] [--no-etrn] [--route R] [--hold-time 14d] [--delay-warning 0] "
     "[--max-queue N]",
     "hold mail for a domain (site default: \"default\")"},
    {"domain", "set", ctl_domain_set,
     "NAME [--site S] [--etrn|--no-etrn] [--route R|dns] [--hold-time D|default] "
     "[--delay-warning D|default] [--max-queue N]",
     "change a held domain"},
    {"domain", "show", ctl_domain_show, "NAME [--json]", "one domain and its queued mail"},
    {"domain", "list", ctl_domain_list, "[--json]", "every held domain"},
    {"domain", "delete", ctl_domain_delete, "NAME", "stop holding a domain (it must be empty)"},
    {"domain", "export", ctl_domain_export, "", "every domain as text, for domain import"},
    {"domain", "import", ctl_domain_import, "FILE|-", "add or update domains from an export"},
    {"account", "add", ctl_account_add, "NAME --domains D1,D2 [--password-stdin]",
     "an account that may collect the domains (ATRN/TURN)"},
    {"account", "set", ctl_account_set, "NAME [--domains D1,D2] [--password-stdin]",
     "change the domains or the password"},
    {"account", "show", ctl_account_show, "NAME [--json]", "one account"},
    {"account", "delete", ctl_account_delete, "NAME", "remove an account and its secret"},
    {"account", "list", ctl_account_list, "[--json]", "every account"},
};

/* ctl_noun - a noun whose verbs are parsed by its own entry point (ctl_nouns.h; argv[0] = noun). */
struct ctl_noun {
    const char *noun;
    int (*main)(const struct conf *cf, int argc, char **argv);
};

static const struct ctl_noun ctl_nouns[] = {
    {"queue", ctl_queue_main},
    {"stats", ctl_stats_main},
    {"site", ctl_site_main},
    {NULL, NULL},
};

/* ctl_noun_find - the delegated noun called name, or NULL. */
static const struct ctl_noun *ctl_noun_find(const char *name)
{
    for (const struct ctl_noun *n = ctl_nouns; n->noun != NULL; n++)
        if (strcmp(n->noun, name) == 0)
            return n;
    return NULL;
}

#define CTL_NVERBS (sizeof(ctl_verbs) / sizeof(ctl_verbs[0]))

/* ctl_usage - the usage lines of noun (NULL = all) to f. */
static void ctl_usage(FILE *f, const char *noun, const char *verb)
{
    if (noun == NULL)
        fprintf(f,
                "usage: queuectl [-c FILE] [-v] NOUN VERB [ARGS...]\n"
                "  -c FILE  configuration (default %s)\n"
                "  -v       more detail\n"
                "  -h       this help\n",
                HOLDMX_CONF_DEFAULT);
    for (size_t i = 0; i < CTL_NVERBS; i++) {
        const struct ctl_verb *v = &ctl_verbs[i];
        if (noun != NULL && strcmp(noun, v->noun) != 0)
            continue;
        if (verb != NULL && strcmp(verb, v->verb) != 0)
            continue;
        fprintf(f, "  queuectl %s %s %s\n      %s\n", v->noun, v->verb, v->usage, v->help);
    }
    if (noun == NULL)
        ctl_nouns_usage(f);
    if (noun == NULL)
        fprintf(f, "exit codes: 0 ok, 64 usage, 65 bad data, 66 no input, 69 refused or "
                   "unavailable, 70 internal, 74 I/O, 78 configuration\n");
}

/* ctl_find - the table row for noun verb; NULL (with help printed) if none. */
static const struct ctl_verb *ctl_find(const char *noun, const char *verb)
{
    bool noun_known = false;

    for (size_t i = 0; i < CTL_NVERBS; i++) {
        if (strcmp(ctl_verbs[i].noun, noun) != 0)
            continue;
        noun_known = true;
        if (verb != NULL && strcmp(ctl_verbs[i].verb, verb) == 0)
            return &ctl_verbs[i];
    }
    if (!noun_known) {
        ctl_err("unknown command \"%.40s\" (hint: queuectl -h lists the commands)", noun);
    } else {
        if (verb == NULL)
            ctl_err("%s needs a verb", noun);
        else
            ctl_err("unknown verb \"%s %.40s\"", noun, verb);
        ctl_usage(stderr, noun, NULL);
    }
    return NULL;
}

/* ctl_load_conf - read the configuration; every problem on stderr; a sysexits code. */
static int ctl_load_conf(struct ctl *c)
{
    int n = conf_load(c->conf_file, &c->cf, stderr);

    if (n > 0) {
        ctl_err("%d problem%s in %s (hint: fix them; queued -t -c %s checks the file)", n,
                n == 1 ? "" : "s", c->conf_file, c->conf_file);
        return EX_CONFIG;
    }
    return EX_OK;
}

/* ctl_run_noun - configuration, then the noun's own entry point. */
static int ctl_run_noun(struct ctl *c, const struct ctl_noun *n, int argc, char **argv)
{
    int rc = ctl_load_conf(c);

    if (rc == EX_OK)
        rc = n->main(&c->cf, argc, argv);
    conf_free(&c->cf);
    if (fflush(stdout) != 0 && rc == EX_OK)
        rc = EX_IOERR;
    return rc;
}

/* main - options, configuration, dispatch. */
int main(int argc, char **argv)
{
    struct ctl c;
    const struct ctl_verb *v;
    const struct ctl_noun *n;
    int opt, rc;

    memset(&c, 0, sizeof(c));
    c.conf_file = getenv("HOLDMX_CONF") != NULL ? getenv("HOLDMX_CONF") : HOLDMX_CONF_DEFAULT;
    log_open("queuectl", true);
    while ((opt = getopt(argc, argv, "+c:hv")) != -1) {
        switch (opt) {
        case 'c':
            c.conf_file = optarg;
            break;
        case 'h':
            ctl_usage(stdout, NULL, NULL);
            return EX_OK;
        case 'v':
            log_set_verbose(log_verbose() + 1);
            break;
        default:
            ctl_usage(stderr, NULL, NULL);
            return EX_USAGE;
        }
    }
    if (optind >= argc) {
        ctl_usage(stderr, NULL, NULL);
        return EX_USAGE;
    }
    if ((n = ctl_noun_find(argv[optind])) != NULL)
        return ctl_run_noun(&c, n, argc - optind, argv + optind);
    if ((v = ctl_find(argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL)) == NULL)
        return EX_USAGE;
    for (int i = optind + 2; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            ctl_usage(stdout, v->noun, v->verb);
            return EX_OK;
        }
    }
    if ((rc = ctl_load_conf(&c)) == EX_OK) {
        rc = v->handler(&c, argc - optind - 2, argv + optind + 2);
        if (rc == EX_USAGE)
            ctl_usage(stderr, v->noun, v->verb);
    }
    if (c.st != NULL)
        store_close(c.st);
    sasl_glue_done();
    conf_free(&c.cf);
    if (fflush(stdout) != 0 && rc == EX_OK)
        rc = EX_IOERR;
    return rc;
}
