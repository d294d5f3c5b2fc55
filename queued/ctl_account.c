/*
 * ctl_account.c - queuectl account add|set|show|delete|list.
 *
 * An account is who may collect which domains (ATRN / authenticated TURN /
 * ETRN after AUTH): the name -> domain list mapping lives in the store;
 * the secret lives in the Cyrus SASL backend (sasldb by default) and is
 * written with sasl_glue_setpass() in the realm cf->sasl_realm.  The
 * secret is read from standard input (--password-stdin), one trailing
 * newline removed, never echoed or logged, and wiped after use; on a
 * terminal there is a prompt and echo is off while the line is typed.
 *
 * add creates the store record first and the secret second; if storing
 * the secret fails the record is removed again, so a failed add leaves
 * nothing behind.
 */
#include "ctl.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl_out.h"
#include "sasl_glue.h"
#include "xalloc.h"

#define CTL_PASS_MAX 1024

/* ctl_account_opts - the option values of add/set. */
struct ctl_account_opts {
    const char *domains;
    bool domains_given, pass_stdin;
};

/* ctl_account_name_ok - letters, digits, '.', '_', '+', '-'; starts with a letter or digit. */
static bool ctl_account_name_ok(const char *n)
{
    size_t len = strlen(n);

    if (len == 0 || len >= STORE_ACCOUNT_MAX || !isalnum((unsigned char)n[0]))
        return false;
    for (; *n != '\0'; n++)
        if (!isalnum((unsigned char)*n) && strchr("._+-", *n) == NULL)
            return false;
    return true;
}

/* ctl_account_name - the one positional NAME, checked. */
static int ctl_account_name(size_t npos, char **pos)
{
    char shown[LOG_PEER_MAX + 1];

    if (npos != 1) {
        ctl_err("an account name is needed");
        return EX_USAGE;
    }
    if (!ctl_account_name_ok(pos[0])) {
        log_printable(shown, sizeof(shown), pos[0], strlen(pos[0]));
        ctl_err("bad account name \"%s\" (hint: letters, digits, '.', '_', '+' and '-', no '@': "
                "the SASL realm is added by holdmx)",
                shown);
        return EX_DATAERR;
    }
    return EX_OK;
}

/* ctl_account_parse - options and NAME of add/set. */
static int ctl_account_parse(int argc, char **argv, struct ctl_account_opts *o, char **name)
{
    const struct ctl_opt opts[] = {
        {"domains", CTL_OPT_VALUE, &o->domains, &o->domains_given},
        {"password-stdin", CTL_OPT_FLAG, NULL, &o->pass_stdin},
    };
    char *pos[2];
    size_t npos;
    int rc;

    memset(o, 0, sizeof(*o));
    if ((rc = ctl_args(argc, argv, opts, 2, pos, 2, &npos)) != EX_OK ||
        (rc = ctl_account_name(npos, pos)) != EX_OK)
        return rc;
    *name = pos[0];
    return EX_OK;
}

/* ctl_account_read_fd - read stdin into buf until EOF (or one line on a terminal). */
static int ctl_account_read_fd(char *buf, size_t cap, size_t *len, bool one_line)
{
    size_t n = 0;
    ssize_t got;

    while (n < cap && (got = read(STDIN_FILENO, buf + n, cap - n)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            ctl_err("cannot read the password from standard input: %s", strerror(errno));
            return EX_IOERR;
        }
        n += (size_t)got;
        if (one_line && buf[n - 1] == '\n')
            break;
    }
    *len = n;
    return EX_OK;
}

/* ctl_account_read_tty - prompt on stderr and read one line with echo off. */
static int ctl_account_read_tty(char *buf, size_t cap, size_t *len)
{
    struct termios old, quiet;
    int rc;

    if (tcgetattr(STDIN_FILENO, &old) != 0) {
        ctl_err("cannot turn off echo on the terminal: %s (hint: pipe the password in)",
                strerror(errno));
        return EX_IOERR;
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) {
        ctl_err("cannot turn off echo on the terminal: %s (hint: pipe the password in)",
                strerror(errno));
        return EX_IOERR;
    }
    fputs("Password: ", stderr); /* only now: what is typed from here is not shown */
    fflush(stderr);
    rc = ctl_account_read_fd(buf, cap, len, true);
    (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
    return rc;
}

/*
 * ctl_account_read_pass - the secret from stdin into buf (one trailing
 * newline removed).  On a terminal: a prompt and one line, echo off.
 */
static int ctl_account_read_pass(char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    int rc = isatty(STDIN_FILENO) ? ctl_account_read_tty(buf, cap, &n)
                                  : ctl_account_read_fd(buf, cap, &n, false);

    if (rc != EX_OK)
        return rc;
    if (n == cap) {
        ctl_err("the password on standard input is longer than %d bytes", CTL_PASS_MAX);
        return EX_DATAERR;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n == 0) {
        ctl_err("the password on standard input is empty (hint: printf '%%s\\n' \"$SECRET\" | "
                "queuectl account set NAME --password-stdin)");
        return EX_DATAERR;
    }
    *len = n;
    return EX_OK;
}

/* ctl_account_setpass - read the secret and store it for name; a sysexits code. */
static int ctl_account_setpass(struct ctl *c, const char *name, const char *pass, size_t len)
{
    char err[512];

    if (sasl_glue_setpass(&c->cf, name, pass, len, err, sizeof(err)) != SASL_GLUE_OK) {
        ctl_err("account %s: %s", name, err);
        return EX_UNAVAILABLE;
    }
    return EX_OK;
}

/* ctl_account_domains - normalise --domains and warn about domains not held. */
static char *ctl_account_domains(struct ctl *c, const char *list)
{
    char why[320], *norm = ctl_domain_list_norm(list, why, sizeof(why));
    char *copy, *save = NULL, *d;
    struct store_domain sd;

    if (norm == NULL) {
        ctl_err("--domains: %s", why);
        return NULL;
    }
    copy = xstrdup(norm);
    for (d = strtok_r(copy, ",", &save); d != NULL; d = strtok_r(NULL, ",", &save))
        if (store_domain_get(c->st, d, &sd) == STORE_NOTFOUND)
            ctl_err("warning: %s is not a held domain yet (hint: queuectl domain add %s "
                    "--site SITE)",
                    d, d);
    free(copy);
    return norm;
}

/* ctl_account_write - domains + optional secret for name; create or update. */
static int ctl_account_write(struct ctl *c, const char *name, const struct ctl_account_opts *o,
                             bool create)
{
    struct store_account a;
    char pass[CTL_PASS_MAX + 1];
    size_t plen = 0;
    int rc = EX_OK, r;

    memset(&a, 0, sizeof(a));
    if (o->pass_stdin && (rc = ctl_account_read_pass(pass, sizeof(pass), &plen)) != EX_OK)
        return rc;
    if (create || o->domains_given) {
        if ((a.domains = ctl_account_domains(c, o->domains)) == NULL) {
            rc = EX_DATAERR;
            goto out;
        }
        snprintf(a.name, sizeof(a.name), "%s", name);
        if (!create) {
            struct store_account old;
            if ((r = store_account_get(c->st, name, &old)) == STORE_OK) {
                a.created = old.created;
                store_account_release(&old);
            }
        } else {
            a.created = (int64_t)time(NULL);
        }
        if ((r = store_account_put(c->st, &a, create)) != STORE_OK) {
            if (r == STORE_EXISTS)
                ctl_err("account %s exists already (hint: queuectl account set %s ...)", name,
                        name);
            else
                ctl_err("cannot write account %s: %s", name, store_strerror(r));
            rc = ctl_store_exit(r);
            goto out;
        }
    }
    if (o->pass_stdin && (rc = ctl_account_setpass(c, name, pass, plen)) != EX_OK && create)
        (void)store_account_del(c->st, name); /* a failed add leaves nothing behind */
out:
    explicit_bzero(pass, sizeof(pass));
    free(a.domains);
    return rc;
}

/* ctl_account_add - a new account (--domains required). */
int ctl_account_add(struct ctl *c, int argc, char **argv)
{
    struct ctl_account_opts o;
    char *name;
    int rc;

    if ((rc = ctl_account_parse(argc, argv, &o, &name)) != EX_OK)
        return rc;
    if (!o.domains_given) {
        ctl_err("account add needs --domains d1.example,d2.example");
        return EX_USAGE;
    }
    if ((rc = ctl_store(c, true)) != EX_OK || (rc = ctl_account_write(c, name, &o, true)) != EX_OK)
        return rc;
    printf("account %s added%s\n", name, o.pass_stdin ? " with a password" : "");
    return EX_OK;
}

/* ctl_account_set - change the domains and/or the password of an account. */
int ctl_account_set(struct ctl *c, int argc, char **argv)
{
    struct ctl_account_opts o;
    struct store_account a;
    char *name;
    int rc, r;

    if ((rc = ctl_account_parse(argc, argv, &o, &name)) != EX_OK)
        return rc;
    if (!o.domains_given && !o.pass_stdin) {
        ctl_err("nothing to change: give --domains and/or --password-stdin");
        return EX_USAGE;
    }
    if ((rc = ctl_store(c, true)) != EX_OK)
        return rc;
    if ((r = store_account_get(c->st, name, &a)) != STORE_OK) {
        if (r == STORE_NOTFOUND)
            ctl_err("no account %s (hint: queuectl account add %s --domains ...)", name, name);
        else
            ctl_err("cannot read account %s: %s", name, store_strerror(r));
        return ctl_store_exit(r);
    }
    store_account_release(&a);
    if ((rc = ctl_account_write(c, name, &o, false)) != EX_OK)
        return rc;
    printf("account %s changed\n", name);
    return EX_OK;
}

/* ctl_account_json - one account as a JSON object. */
static void ctl_account_json(struct ctl_out_json *j, const struct store_account *a)
{
    char *copy = xstrdup(a->domains != NULL ? a->domains : ""), *save = NULL, *d;

    ctl_out_json_open(j, NULL, '{');
    ctl_out_json_str(j, "name", a->name);
    ctl_out_json_open(j, "domains", '[');
    for (d = strtok_r(copy, ",", &save); d != NULL; d = strtok_r(NULL, ",", &save))
        ctl_out_json_str(j, NULL, d);
    ctl_out_json_close(j, ']');
    ctl_out_json_int(j, "created", a->created);
    ctl_out_json_close(j, '}');
    free(copy);
}

/* ctl_account_show - one account, human or --json. */
int ctl_account_show(struct ctl *c, int argc, char **argv)
{
    bool json = false;
    const struct ctl_opt opts[] = {{"json", CTL_OPT_FLAG, NULL, &json}};
    struct store_account a;
    char *pos[2], stamp[64];
    size_t npos;
    int rc, r;

    if ((rc = ctl_args(argc, argv, opts, 1, pos, 2, &npos)) != EX_OK ||
        (rc = ctl_account_name(npos, pos)) != EX_OK || (rc = ctl_store(c, false)) != EX_OK)
        return rc;
    if ((r = store_account_get(c->st, pos[0], &a)) != STORE_OK) {
        if (r == STORE_NOTFOUND)
            ctl_err("no account %s (hint: queuectl account list shows them)", pos[0]);
        else
            ctl_err("cannot read account %s: %s", pos[0], store_strerror(r));
        return ctl_store_exit(r);
    }
    if (json) {
        struct ctl_out_json j;
        ctl_out_json_init(&j, stdout);
        ctl_account_json(&j, &a);
    } else {
        printf("%-10s %s\n", "account:", a.name);
        printf("%-10s %s@%s (SASL name and realm of its secret)\n", "sasl:", a.name,
               c->cf.sasl_realm);
        printf("%-10s %s\n", "domains:", a.domains != NULL ? a.domains : "");
        printf("%-10s %s\n", "created:", ctl_out_fmt_time(a.created, stamp, sizeof(stamp)));
    }
    store_account_release(&a);
    return EX_OK;
}

/* ctl_account_delete - remove the account and its secret. */
int ctl_account_delete(struct ctl *c, int argc, char **argv)
{
    char *pos[2], err[512];
    size_t npos;
    int rc, r;

    if ((rc = ctl_args(argc, argv, NULL, 0, pos, 2, &npos)) != EX_OK ||
        (rc = ctl_account_name(npos, pos)) != EX_OK || (rc = ctl_store(c, true)) != EX_OK)
        return rc;
    if ((r = store_account_del(c->st, pos[0])) != STORE_OK) {
        if (r == STORE_NOTFOUND)
            ctl_err("no account %s (hint: queuectl account list shows them)", pos[0]);
        else
            ctl_err("cannot delete account %s: %s", pos[0], store_strerror(r));
        return ctl_store_exit(r);
    }
    if (sasl_glue_delpass(&c->cf, pos[0], err, sizeof(err)) == SASL_GLUE_FAIL)
        ctl_err("warning: account %s deleted, but its secret was not: %s (hint: saslpasswd2 -d "
                "-u %s -f SASLDB %s)",
                pos[0], err, c->cf.sasl_realm, pos[0]);
    printf("account %s deleted\n", pos[0]);
    return EX_OK;
}

/* ctl_account_vec - accounts copied out of the iteration. */
struct ctl_account_vec {
    struct store_account *v;
    size_t n;
};

/* ctl_account_collect - store_account_iter callback: append a deep copy. */
static int ctl_account_collect(const struct store_account *a, void *arg)
{
    struct ctl_account_vec *vec = arg;

    vec->v = xrealloc(vec->v, sizeof(*vec->v) * (vec->n + 1));
    vec->v[vec->n] = *a;
    vec->v[vec->n].domains = xstrdup(a->domains != NULL ? a->domains : "");
    vec->n++;
    return 0;
}

/* ctl_account_list_print - the collected accounts as a table or JSON. */
static void ctl_account_list_print(const struct ctl_account_vec *vec, bool json)
{
    static const char *const heads[] = {"ACCOUNT", "CREATED", "DOMAINS"};
    struct ctl_out_table t;
    struct ctl_out_json j;
    char stamp[64];

    if (json) {
        ctl_out_json_init(&j, stdout);
        ctl_out_json_open(&j, NULL, '[');
        for (size_t i = 0; i < vec->n; i++)
            ctl_account_json(&j, &vec->v[i]);
        ctl_out_json_close(&j, ']');
        return;
    }
    if (vec->n == 0) {
        printf("no accounts (hint: queuectl account add NAME --domains D --password-stdin)\n");
        return;
    }
    ctl_out_table_init(&t, 3, heads);
    for (size_t i = 0; i < vec->n; i++) {
        const char *row[3] = {vec->v[i].name,
                              ctl_out_fmt_time(vec->v[i].created, stamp, sizeof(stamp)),
                              vec->v[i].domains};
        ctl_out_table_row(&t, row);
    }
    ctl_out_table_print(stdout, &t);
    ctl_out_table_free(&t);
}

/* ctl_account_list - every account, human or --json. */
int ctl_account_list(struct ctl *c, int argc, char **argv)
{
    bool json = false;
    const struct ctl_opt opts[] = {{"json", CTL_OPT_FLAG, NULL, &json}};
    struct ctl_account_vec vec;
    char *pos[1];
    size_t npos;
    int rc, r;

    if ((rc = ctl_args(argc, argv, opts, 1, pos, 0, &npos)) != EX_OK ||
        (rc = ctl_store(c, false)) != EX_OK)
        return rc;
    memset(&vec, 0, sizeof(vec));
    if ((r = store_account_iter(c->st, ctl_account_collect, &vec)) != STORE_OK) {
        ctl_err("cannot list the accounts: %s", store_strerror(r));
        rc = ctl_store_exit(r);
    } else {
        ctl_account_list_print(&vec, json);
    }
    for (size_t i = 0; i < vec.n; i++)
        free(vec.v[i].domains);
    free(vec.v);
    return rc;
}
