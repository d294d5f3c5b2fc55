/*
 * ctl_args.c - queuectl argument helpers: "--option [VALUE]" parsing,
 * domain name validation, and the configured-site check.
 *
 * Options may come before or after the positional words ("domain add
 * NAME --site S" and "domain add --site S NAME" are the same); "--" ends
 * the options.
 */
#include "ctl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "xalloc.h"

/* ctl_opt_find - the option called name (length n), or NULL. */
static const struct ctl_opt *ctl_opt_find(const struct ctl_opt *opts, size_t nopts,
                                          const char *name, size_t n)
{
    for (size_t i = 0; i < nopts; i++)
        if (strlen(opts[i].name) == n && strncmp(opts[i].name, name, n) == 0)
            return &opts[i];
    return NULL;
}

/* ctl_arg_option - one "--x", "--x=v" or "--x v"; *i is advanced past a value. */
static int ctl_arg_option(int argc, char **argv, int *i, const struct ctl_opt *opts, size_t nopts)
{
    const char *name = argv[*i] + 2, *eq = strchr(name, '=');
    size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);
    const struct ctl_opt *o = ctl_opt_find(opts, nopts, name, n);

    if (o == NULL) {
        ctl_err("unknown option %s", argv[*i]);
        return EX_USAGE;
    }
    if (o->given != NULL)
        *o->given = true;
    if (o->kind == CTL_OPT_FLAG) {
        if (eq != NULL) {
            ctl_err("option --%s takes no value", o->name);
            return EX_USAGE;
        }
        return EX_OK;
    }
    if (eq != NULL) {
        *o->value = eq + 1;
    } else if (*i + 1 < argc) {
        *o->value = argv[++*i];
    } else {
        ctl_err("option --%s needs a value", o->name);
        return EX_USAGE;
    }
    return EX_OK;
}

/* ctl_args - options anywhere, positional words into pos[]. */
int ctl_args(int argc, char **argv, const struct ctl_opt *opts, size_t nopts, char **pos,
             size_t npos_max, size_t *npos)
{
    bool only_words = false;
    int rc;

    *npos = 0;
    for (int i = 0; i < argc; i++) {
        if (!only_words && strcmp(argv[i], "--") == 0) {
            only_words = true;
            continue;
        }
        if (!only_words && strncmp(argv[i], "--", 2) == 0) {
            if ((rc = ctl_arg_option(argc, argv, &i, opts, nopts)) != EX_OK)
                return rc;
            continue;
        }
        if (!only_words && argv[i][0] == '-' && argv[i][1] != '\0') {
            ctl_err("unknown option %s", argv[i]);
            return EX_USAGE;
        }
        if (*npos == npos_max) {
            ctl_err("unexpected argument \"%s\"", argv[i]);
            return EX_USAGE;
        }
        pos[(*npos)++] = argv[i];
    }
    return EX_OK;
}

/* ctl_label_ok - one LDH label of 1-63 characters, not starting or ending with '-'. */
static bool ctl_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

/* ctl_domain_norm - validate and lower-case one domain name. */
bool ctl_domain_norm(const char *in, char *out, size_t len, char *why, size_t whylen)
{
    size_t n = strlen(in), labels = 0;
    const char *p = in;

    if (n > 0 && in[n - 1] == '.')
        n--; /* accept the absolute form "example.com." */
    if (n == 0 || n > 253 || n >= len) {
        snprintf(why, whylen, "a domain name is 1 to 253 characters");
        return false;
    }
    while (p < in + n) {
        const char *dot = memchr(p, '.', (size_t)(in + n - p));
        size_t l = dot != NULL ? (size_t)(dot - p) : (size_t)(in + n - p);
        if (!ctl_label_ok(p, l)) {
            snprintf(why, whylen, "labels are letters, digits and '-', 1 to 63 long");
            return false;
        }
        labels++;
        p += l + (dot != NULL ? 1 : 0);
        if (dot != NULL && p == in + n) {
            snprintf(why, whylen, "empty label");
            return false;
        }
    }
    if (labels < 2) {
        snprintf(why, whylen, "a held domain has at least two labels, e.g. customer.example");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[n] = '\0';
    return true;
}

/* ctl_domain_list_norm - "a.example, B.example" -> "a.example,b.example" (malloc'd). */
char *ctl_domain_list_norm(const char *in, char *why, size_t whylen)
{
    char *copy = xstrdup(in), *save = NULL, *out = xstrdup(""), *tok;
    char one[STORE_DOMAIN_MAX], bad[LOG_PEER_MAX + 1];

    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        for (char *e = tok + strlen(tok); e > tok && isspace((unsigned char)e[-1]); e--)
            e[-1] = '\0';
        if (!ctl_domain_norm(tok, one, sizeof(one), why, whylen)) {
            char msg[256];
            log_printable(bad, sizeof(bad), tok, strlen(tok));
            snprintf(msg, sizeof(msg), "bad domain \"%s\": %s", bad, why);
            snprintf(why, whylen, "%s", msg);
            goto fail;
        }
        char *next = xasprintf("%s%s%s", out, out[0] != '\0' ? "," : "", one);
        free(out);
        out = next;
    }
    if (out[0] == '\0') {
        snprintf(why, whylen, "the domain list is empty");
        goto fail;
    }
    free(copy);
    return out;
fail:
    free(copy);
    free(out);
    return NULL;
}

/* ctl_site_check - is site configured?  Otherwise name the valid ones. */
bool ctl_site_check(const struct ctl *c, const char *site)
{
    char shown[LOG_PEER_MAX + 1];

    if (conf_site_find(&c->cf, site) != NULL)
        return true;
    log_printable(shown, sizeof(shown), site, strlen(site));
    fprintf(stderr, "queuectl: no site \"%s\" in %s; valid sites:", shown, c->conf_file);
    for (int i = 0; i < c->cf.nsites; i++)
        fprintf(stderr, "%s %s", i > 0 ? "," : "", c->cf.sites[i].name);
    fprintf(stderr, " (hint: add a [site %s] section first, or pick one of these)\n", shown);
    return false;
}
