/*
 * smtpd_addr.c - syntax of what SMTP clients send us: paths, domains,
 * HELO names and xtext (RFC 5321 4.1.2, RFC 3461 4).
 *
 * These checks are deliberately strict where a bad value would end up in
 * a header, a log line or the store (no controls, no 8-bit, bounded
 * lengths) and lenient where real clients differ (a space after "FROM:",
 * source routes, which are accepted and ignored).  No allocation.
 */
#include "smtpd.h"

#include <ctype.h>
#include <string.h>

/* smtpd_atext - RFC 5322 atext character. */
static bool smtpd_atext(int c)
{
    return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* smtpd_domain_ok - dot-separated LDH labels (or an address literal) of sane length. */
bool smtpd_domain_ok(const char *d, bool need_dot)
{
    size_t n = strlen(d), label = 0, i;
    bool dot = false;

    if (n == 0 || n > 255)
        return false;
    if (d[0] == '[') {
        if (d[n - 1] != ']' || n < 3)
            return false;
        for (i = 1; i + 1 < n; i++)
            if (!isalnum((unsigned char)d[i]) && strchr(".:-", d[i]) == NULL)
                return false;
        return true;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            dot = true;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return false;
        if (label == 0 && c == '-')
            return false;
        if (++label > 63)
            return false;
    }
    if (label == 0 && n > 0 && d[n - 1] == '.')
        return false;
    return dot || !need_dot;
}

/* smtpd_local_ok - dot-string or quoted-string local part of at most 64 octets. */
static int smtpd_local_ok(const char *l, size_t n)
{
    size_t i;

    if (n == 0)
        return SMTPD_ADDR_SYNTAX;
    if (n > SMTPD_LOCAL_MAX)
        return SMTPD_ADDR_TOOLONG;
    if (l[0] == '"') {
        if (n < 2 || l[n - 1] != '"')
            return SMTPD_ADDR_SYNTAX;
        for (i = 1; i + 1 < n; i++) {
            unsigned char c = (unsigned char)l[i];
            if (c < 0x20 || c >= 0x7f)
                return SMTPD_ADDR_SYNTAX;
            if (c == '\\' && ++i + 1 >= n)
                return SMTPD_ADDR_SYNTAX;
        }
        return SMTPD_ADDR_OK;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)l[i];
        if (c == '.') {
            if (i == 0 || i + 1 == n || l[i + 1] == '.')
                return SMTPD_ADDR_SYNTAX;
        } else if (!smtpd_atext(c)) {
            return SMTPD_ADDR_SYNTAX;
        }
    }
    return SMTPD_ADDR_OK;
}

/* smtpd_path_end - index of the '>' closing a path that starts at p[0] == '<'. */
static const char *smtpd_path_end(const char *p)
{
    bool quoted = false;

    for (p++; *p != '\0'; p++) {
        if (quoted && *p == '\\' && p[1] != '\0') {
            p++;
            continue;
        }
        if (*p == '"')
            quoted = !quoted;
        else if (*p == '>' && !quoted)
            return p;
    }
    return NULL;
}

/* smtpd_mailbox_check - local@domain split and checks; *domain points into mb. */
static int smtpd_mailbox_check(const char *mb, const char **domain)
{
    const char *at = strrchr(mb, '@');
    int rc;

    if (at == NULL || at == mb)
        return SMTPD_ADDR_SYNTAX;
    rc = smtpd_local_ok(mb, (size_t)(at - mb));
    if (rc != SMTPD_ADDR_OK)
        return rc;
    if (strlen(at + 1) > 255)
        return SMTPD_ADDR_TOOLONG;
    if (!smtpd_domain_ok(at + 1, false))
        return SMTPD_ADDR_SYNTAX;
    *domain = at + 1;
    return SMTPD_ADDR_OK;
}

/*
 * smtpd_path_parse - parse "<mailbox>" at *p (leading spaces allowed) into
 * out (no brackets, source route dropped).  *p ends after the '>'.
 * *domain points at the domain inside out ("" for the null path).
 */
int smtpd_path_parse(const char **p, char *out, size_t outsz, bool allow_null, const char **domain)
{
    const char *s = *p, *end, *mb;
    size_t n;

    while (*s == ' ')
        s++;
    if (*s != '<' || (end = smtpd_path_end(s)) == NULL)
        return SMTPD_ADDR_SYNTAX;
    if ((size_t)(end - s) + 1 > SMTPD_PATH_MAX)
        return SMTPD_ADDR_TOOLONG;
    mb = s + 1;
    if (*mb == '@') { /* source route "@a,@b:" is ignored (RFC 5321 C) */
        const char *colon = memchr(mb, ':', (size_t)(end - mb));
        if (colon == NULL)
            return SMTPD_ADDR_SYNTAX;
        mb = colon + 1;
    }
    n = (size_t)(end - mb);
    if (n + 1 > outsz)
        return SMTPD_ADDR_TOOLONG;
    memcpy(out, mb, n);
    out[n] = '\0';
    *p = end + 1;
    if (n == 0) {
        *domain = out;
        return allow_null ? SMTPD_ADDR_OK : SMTPD_ADDR_SYNTAX;
    }
    return smtpd_mailbox_check(out, domain);
}

/* smtpd_xtext_ok - RFC 3461 xtext of at most max octets. */
bool smtpd_xtext_ok(const char *s, size_t max)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
                return false;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return true;
}

/* smtpd_helo_ok - one printable token (domain or address literal) for HELO/EHLO. */
bool smtpd_helo_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 255)
        return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')')
            return false;
    }
    return true;
}
