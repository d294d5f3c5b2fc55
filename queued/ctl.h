/*
 * ctl.h - queuectl internals shared by its verb files (ctl_*.c).
 *
 * queuectl.c holds main() and the verb table {noun, verb, handler, usage};
 * each noun's handlers live in their own file (ctl_domain.c,
 * ctl_account.c, ...), output helpers in ctl_out.c, argument parsing in
 * ctl_args.c.  A handler gets the words after "NOUN VERB" and returns a
 * sysexits.h code; it prints its own messages ("queuectl: ..." on stderr,
 * each saying what was wrong and what to do), except that on EX_USAGE
 * main() adds the verb's usage line.
 *
 * The store is opened lazily by ctl_store() and closed by main().
 */
#ifndef HM_CTL_H
#define HM_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "log.h"
#include "store.h"

/* ctl - one queuectl run. */
struct ctl {
    const char *conf_file;
    struct conf cf;
    struct store *st;
    bool st_write; /* st was opened read-write */
};

/* ctl_handler - one verb; argv[0..argc-1] are the words after the verb. */
typedef int (*ctl_handler)(struct ctl *c, int argc, char **argv);

/* ctl_verb - one row of the verb table. */
struct ctl_verb {
    const char *noun;
    const char *verb;
    ctl_handler handler;
    const char *usage; /* arguments, e.g. "NAME --site S [--no-etrn]" */
    const char *help;  /* one line */
};

/* ctl_err - "queuectl: message" on stderr (ctl_util.c). */
void ctl_err(const char *fmt, ...) HM_PRINTF(1, 2);

/* ctl_store - open the store (ctl_util.c) (read-write if write) once; a sysexits code. */
int ctl_store(struct ctl *c, bool write);
/* ctl_store_exit - the sysexits code for a store status. */
int ctl_store_exit(int status);

/* ------------------------------------------------------------------ */
/* Arguments (ctl_args.c)                                             */

enum ctl_opt_kind { CTL_OPT_FLAG, CTL_OPT_VALUE };

/* ctl_opt - one "--name" or "--name VALUE" / "--name=VALUE" option. */
struct ctl_opt {
    const char *name; /* without the dashes */
    enum ctl_opt_kind kind;
    const char **value; /* CTL_OPT_VALUE: where the value goes */
    bool *given;        /* set when the option is present */
};

/*
 * ctl_args - split argv into options and at most npos_max positional
 * words (pos[]); *npos = how many.  Prints the problem and returns
 * EX_USAGE on an unknown option, a missing value or too many words.
 */
int ctl_args(int argc, char **argv, const struct ctl_opt *opts, size_t nopts, char **pos,
             size_t npos_max, size_t *npos);

/* ctl_domain_norm - validate a domain (>= 2 LDH labels, <= 253) into out, lower case. */
bool ctl_domain_norm(const char *in, char *out, size_t len, char *why, size_t whylen);
/* ctl_domain_list_norm - validate "d1,d2" into a malloc'd lower-case list; NULL + why. */
char *ctl_domain_list_norm(const char *in, char *why, size_t whylen);
/* ctl_site_check - site must be configured; otherwise print the valid sites, false. */
bool ctl_site_check(const struct ctl *c, const char *site);

/* Verb handlers (ctl_domain.c, ctl_account.c). */
int ctl_domain_add(struct ctl *c, int argc, char **argv);
int ctl_domain_set(struct ctl *c, int argc, char **argv);
int ctl_domain_show(struct ctl *c, int argc, char **argv);
int ctl_domain_list(struct ctl *c, int argc, char **argv);
int ctl_domain_delete(struct ctl *c, int argc, char **argv);
int ctl_domain_export(struct ctl *c, int argc, char **argv);
int ctl_domain_import(struct ctl *c, int argc, char **argv);
int ctl_account_add(struct ctl *c, int argc, char **argv);
int ctl_account_set(struct ctl *c, int argc, char **argv);
int ctl_account_show(struct ctl *c, int argc, char **argv);
int ctl_account_delete(struct ctl *c, int argc, char **argv);
int ctl_account_list(struct ctl *c, int argc, char **argv);

#endif
