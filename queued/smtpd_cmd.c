/*
 * smtpd_cmd.c - the SMTP command table, its dispatcher and the handlers.
 *
 * One table lists every verb with its handler and flags.  The dispatcher
 * applies the generic gates in one place, before any handler runs: NUL
 * bytes, "HELO/EHLO first", pipelining synchronisation (RFC 2920: a
 * last-in-group command must not be followed by more input before its
 * reply; a violation gets 554 and the connection is closed, as Exim does,
 * because nothing after it can be trusted), and the error and junk
 * limits.  Handlers check their own state and arguments and send exactly
 * one reply (EHLO: one multi-line reply).
 */
#include "smtpd.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "etrn.h"
#include "log.h"
#include "metrics_http.h"
#include "xalloc.h"

#define SMTPD_F_LAST    0x1u /* must be last in a pipelined group */
#define SMTPD_F_JUNK    0x2u /* counts toward the junk-command limit */
#define SMTPD_F_PREHELO 0x4u /* allowed before HELO/EHLO */

#define SMTPD_JUNK_FACTOR 10 /* junk limit = max_errors * this */

struct smtpd_cmd {
    const char *verb; /* upper case; NULL = the unknown-command entry */
    const char *name; /* lower-case counter name for the disconnect line */
    void (*handler)(struct smtpd_session *s, char *args);
    unsigned flags;
};

static void smtpd_helo(struct smtpd_session *s, char *args);
static void smtpd_ehlo(struct smtpd_session *s, char *args);
static void smtpd_starttls_cmd(struct smtpd_session *s, char *args);
static void smtpd_mail(struct smtpd_session *s, char *args);
static void smtpd_rcpt(struct smtpd_session *s, char *args);
static void smtpd_data(struct smtpd_session *s, char *args);
static void smtpd_rset(struct smtpd_session *s, char *args);
static void smtpd_noop(struct smtpd_session *s, char *args);
static void smtpd_quit(struct smtpd_session *s, char *args);
static void smtpd_vrfy(struct smtpd_session *s, char *args);
static void smtpd_help(struct smtpd_session *s, char *args);
static void smtpd_etrn(struct smtpd_session *s, char *args);
static void smtpd_notimpl(struct smtpd_session *s, char *args);
static void smtpd_unknown(struct smtpd_session *s, char *args);

static const struct smtpd_cmd smtpd_cmds[] = {
    {"HELO", "helo", smtpd_helo, SMTPD_F_LAST | SMTPD_F_PREHELO},
    {"EHLO", "ehlo", smtpd_ehlo, SMTPD_F_LAST | SMTPD_F_PREHELO},
    {"STARTTLS", "starttls", smtpd_starttls_cmd, 0}, /* discards pipelined input */
    {"MAIL", "mail", smtpd_mail, 0},
    {"RCPT", "rcpt", smtpd_rcpt, 0},
    {"DATA", "data", smtpd_data, SMTPD_F_LAST},
    {"RSET", "rset", smtpd_rset, SMTPD_F_PREHELO},
    {"NOOP", "noop", smtpd_noop, SMTPD_F_LAST | SMTPD_F_JUNK | SMTPD_F_PREHELO},
    {"QUIT", "quit", smtpd_quit, SMTPD_F_PREHELO},
    {"VRFY", "vrfy", smtpd_vrfy, SMTPD_F_LAST | SMTPD_F_JUNK | SMTPD_F_PREHELO},
    {"HELP", "help", smtpd_help, SMTPD_F_LAST | SMTPD_F_JUNK | SMTPD_F_PREHELO},
    {"ETRN", "etrn", smtpd_etrn, SMTPD_F_LAST},
    {"EXPN", "expn", smtpd_notimpl, SMTPD_F_LAST | SMTPD_F_JUNK | SMTPD_F_PREHELO},
    {"TURN", "turn", smtpd_notimpl, SMTPD_F_LAST | SMTPD_F_JUNK | SMTPD_F_PREHELO},
    {"ATRN", "atrn", smtpd_notimpl, SMTPD_F_LAST | SMTPD_F_JUNK | SMTPD_F_PREHELO},
    {"AUTH", "auth", smtpd_notimpl, SMTPD_F_LAST | SMTPD_F_JUNK | SMTPD_F_PREHELO},
    {"BDAT", "bdat", smtpd_notimpl, SMTPD_F_LAST | SMTPD_F_JUNK | SMTPD_F_PREHELO},
    {NULL, "unknown", smtpd_unknown, SMTPD_F_JUNK | SMTPD_F_PREHELO},
};

#define SMTPD_NCMDS ((int)(sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0])))

/* smtpd_cmd_count - entries in the table (for the counters). */
int smtpd_cmd_count(void)
{
    return SMTPD_NCMDS;
}

/* smtpd_cmd_name - counter name of entry idx. */
const char *smtpd_cmd_name(int idx)
{
    return idx >= 0 && idx < SMTPD_NCMDS ? smtpd_cmds[idx].name : "?";
}

/* smtpd_cmd_lookup - the table entry of verb (the unknown entry if none). */
static int smtpd_cmd_lookup(const char *verb)
{
    int i;

    for (i = 0; smtpd_cmds[i].verb != NULL; i++)
        if (strcasecmp(smtpd_cmds[i].verb, verb) == 0)
            return i;
    return i;
}

/* smtpd_error - count an error reply; past max_errors say 421 and close. */
static void smtpd_error(struct smtpd_session *s)
{
    int max = s->sd->cf->max_errors > 0 ? s->sd->cf->max_errors : 10;

    if (++s->errors < max)
        return;
    log_warn("too many errors after %s from [%s]", s->where, s->addr);
    smtpd_reply(s, "421 4.7.0 %s Error: too many errors", s->hostname);
    smtpd_close(s);
}

/* smtpd_junk - count a junk command; past the limit say 421 and close. */
static bool smtpd_junk(struct smtpd_session *s)
{
    int max = (s->sd->cf->max_errors > 0 ? s->sd->cf->max_errors : 10) * SMTPD_JUNK_FACTOR;

    if (++s->junk <= max)
        return false;
    log_warn("too many junk commands after %s from [%s]", s->where, s->addr);
    smtpd_reply(s, "421 4.7.0 %s Error: too many junk commands", s->hostname);
    smtpd_close(s);
    return true;
}

/* smtpd_cmd_toolong - a command line over 512 octets was dropped. */
void smtpd_cmd_toolong(struct smtpd_session *s)
{
    s->where = "UNKNOWN";
    smtpd_reply(s, "500 5.5.2 Error: line too long");
    smtpd_error(s);
}

/* smtpd_pipelined - true (and the session closing) on a synchronisation violation. */
static bool smtpd_pipelined(struct smtpd_session *s, const struct smtpd_cmd *c)
{
    if (!(c->flags & SMTPD_F_LAST) || evbuffer_get_length(bufferevent_get_input(s->bev)) == 0)
        return false;
    log_warn("improper command pipelining after %s from [%s]", s->where, s->addr);
    smtpd_reply(s, "554 5.5.0 Error: Improper use of SMTP command pipelining");
    smtpd_close(s);
    return true;
}

/* smtpd_cmd_dispatch - one command line: gates, then its handler. */
void smtpd_cmd_dispatch(struct smtpd_session *s, const char *line, size_t len, unsigned flags)
{
    char buf[SMTPD_LINE_MAX + 1], *args;
    const struct smtpd_cmd *c;
    size_t n;
    int idx;

    if (flags & LINE_F_NUL) {
        s->where = "UNKNOWN";
        smtpd_reply(s, "500 5.5.2 Error: NUL character in command");
        smtpd_error(s);
        return;
    }
    n = len < SMTPD_LINE_MAX ? len : SMTPD_LINE_MAX;
    memcpy(buf, line, n);
    buf[n] = '\0';
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    args = buf + strcspn(buf, " ");
    if (*args != '\0')
        *args++ = '\0';
    while (*args == ' ')
        args++;
    idx = smtpd_cmd_lookup(buf);
    c = &smtpd_cmds[idx];
    if (idx < SMTPD_NCOUNTERS)
        s->counts[idx]++;
    s->where = c->verb ? c->verb : "UNKNOWN";
    if ((c->flags & SMTPD_F_JUNK) && smtpd_junk(s))
        return;
    if (!(c->flags & SMTPD_F_PREHELO) && s->state == SMTPD_S_CONNECTED) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        smtpd_error(s);
        return;
    }
    if (smtpd_pipelined(s, c))
        return;
    s->last_code = 0;
    c->handler(s, args);
    if (s->last_code >= 400 && s->state != SMTPD_S_CLOSING)
        smtpd_error(s);
}

/* smtpd_tx_reset - drop the transaction (RSET, HELO, EHLO). */
static void smtpd_tx_reset(struct smtpd_session *s)
{
    if (s->tx != NULL) {
        smtpd_tx_free(s->tx);
        s->tx = NULL;
    }
    smtpd_enter_state(s, s->helo[0] ? SMTPD_S_HELO : SMTPD_S_CONNECTED);
}

/* smtpd_hello - HELO/EHLO common part; false after a syntax reply. */
static bool smtpd_hello(struct smtpd_session *s, char *args, const char *verb)
{
    if (*args == '\0' || strchr(args, ' ') != NULL || !smtpd_helo_ok(args)) {
        smtpd_reply(s, "501 5.5.4 Syntax: %s hostname", verb);
        return false;
    }
    snprintf(s->helo, sizeof(s->helo), "%s", args);
    smtpd_tx_reset(s);
    return true;
}

/* smtpd_helo - HELO: plain SMTP. */
static void smtpd_helo(struct smtpd_session *s, char *args)
{
    if (!smtpd_hello(s, args, "HELO"))
        return;
    s->esmtp = false;
    smtpd_reply(s, "250 %s", s->hostname);
}

/* smtpd_ehlo - EHLO: the extension list. */
static void smtpd_ehlo(struct smtpd_session *s, char *args)
{
    char size[64];
    const char *ext[8];
    int n = 0, i;

    if (!smtpd_hello(s, args, "EHLO"))
        return;
    s->esmtp = true;
    snprintf(size, sizeof(size), "SIZE %llu", (unsigned long long)s->sd->cf->max_message_size);
    ext[n++] = "PIPELINING";
    ext[n++] = size;
    ext[n++] = "8BITMIME";
    ext[n++] = "ENHANCEDSTATUSCODES";
    ext[n++] = "DSN";
    ext[n++] = "ETRN";
    if (!s->tls && smtpd_tls_ctx(s->sd, s->site) != NULL)
        ext[n++] = "STARTTLS";
    smtpd_reply(s, "250-%s", s->hostname);
    for (i = 0; i < n; i++)
        smtpd_reply(s, "250%c%s", i + 1 < n ? '-' : ' ', ext[i]);
}

/* smtpd_starttls_cmd - STARTTLS (RFC 3207). */
static void smtpd_starttls_cmd(struct smtpd_session *s, char *args)
{
    if (*args != '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    if (s->tls) {
        smtpd_reply(s, "503 5.5.1 Error: TLS already active");
        return;
    }
    if (smtpd_tls_ctx(s->sd, s->site) == NULL) {
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        return;
    }
    if (s->tx != NULL) {
        smtpd_tx_free(s->tx);
        s->tx = NULL;
    }
    smtpd_starttls(s);
}

/* smtpd_site_paused - true (and 451 sent) when the site is paused. */
static bool smtpd_site_paused(struct smtpd_session *s)
{
    unsigned flags = 0;

    if (store_site_flags_get(s->sd->st, s->site, &flags) != STORE_OK)
        flags = 0;
    if (!(flags & STORE_SITE_PAUSED))
        return false;
    smtpd_reply(s, "451 4.3.2 Site %s is not accepting mail right now, try again later", s->site);
    return true;
}

/* smtpd_next_param - split the next "KEY[=VALUE]" off *p. */
static bool smtpd_next_param(char **p, char **key, char **val)
{
    char *s = *p, *eq;

    while (*s == ' ')
        s++;
    if (*s == '\0')
        return false;
    *key = s;
    s += strcspn(s, " ");
    if (*s != '\0')
        *s++ = '\0';
    *p = s;
    eq = strchr(*key, '=');
    *val = NULL;
    if (eq != NULL) {
        *eq = '\0';
        *val = eq + 1;
    }
    return true;
}

/* smtpd_size_parse - SIZE=digits (at most 20). */
static bool smtpd_size_parse(const char *v, uint64_t *out)
{
    size_t n = v ? strlen(v) : 0, i;
    unsigned long long x;

    if (n == 0 || n > 20)
        return false;
    for (i = 0; i < n; i++)
        if (!isdigit((unsigned char)v[i]))
            return false;
    x = strtoull(v, NULL, 10);
    *out = (uint64_t)x;
    return true;
}

/* smtpd_mail_param - one MAIL parameter into tx; false after an error reply. */
static bool smtpd_mail_param(struct smtpd_session *s, struct smtpd_tx *tx, const char *key,
                             const char *val)
{
    if (strcasecmp(key, "SIZE") == 0) {
        if (!smtpd_size_parse(val, &tx->declared_size)) {
            smtpd_reply(s, "501 5.5.4 Bad SIZE parameter");
            return false;
        }
        if (tx->declared_size > s->sd->cf->max_message_size) {
            smtpd_reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
            return false;
        }
    } else if (strcasecmp(key, "BODY") == 0 && val && strcasecmp(val, "7BIT") == 0) {
        tx->body_type = STORE_BODY_7BIT;
    } else if (strcasecmp(key, "BODY") == 0 && val && strcasecmp(val, "8BITMIME") == 0) {
        tx->body_type = STORE_BODY_8BITMIME;
    } else if (strcasecmp(key, "RET") == 0 && val && strcasecmp(val, "FULL") == 0) {
        tx->ret = STORE_RET_FULL;
    } else if (strcasecmp(key, "RET") == 0 && val && strcasecmp(val, "HDRS") == 0) {
        tx->ret = STORE_RET_HDRS;
    } else if (strcasecmp(key, "ENVID") == 0 && val && smtpd_xtext_ok(val, 100) && !tx->envid) {
        tx->envid = xstrdup(val);
    } else if (strcasecmp(key, "AUTH") == 0 && val && *val) {
        /* RFC 4954 5: accepted from anyone, not trusted, not kept */
    } else if (strcasecmp(key, "BODY") == 0 || strcasecmp(key, "RET") == 0 ||
               strcasecmp(key, "ENVID") == 0 || strcasecmp(key, "AUTH") == 0) {
        smtpd_reply(s, "501 5.5.4 Bad %s parameter", key);
        return false;
    } else {
        char safe[LOG_PEER_MAX + 1];
        smtpd_reply(s, "555 5.5.4 Unsupported option: %s",
                    log_printable(safe, sizeof(safe), key, strlen(key)));
        return false;
    }
    return true;
}

/* smtpd_path_reply - 501/553 for a bad path. */
static void smtpd_path_reply(struct smtpd_session *s, int rc, bool sender)
{
    const char *dsn = sender ? "5.1.7" : "5.1.3";
    const char *who = sender ? "sender" : "recipient";

    if (rc == SMTPD_ADDR_TOOLONG)
        smtpd_reply(s, "553 %s Error: %s address too long", dsn, who);
    else
        smtpd_reply(s, "501 %s Error: bad %s address syntax", dsn, who);
}

/* smtpd_mail - MAIL FROM:<path> [params]. */
static void smtpd_mail(struct smtpd_session *s, char *args)
{
    char addr[STORE_ADDR_MAX], *p, *key, *val;
    const char *q, *dom;
    struct smtpd_tx *tx;
    int rc;

    if (s->tx != NULL) {
        smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (strncasecmp(args, "FROM:", 5) != 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    q = args + 5;
    rc = smtpd_path_parse(&q, addr, sizeof(addr), true, &dom);
    if (rc != SMTPD_ADDR_OK || (*q != '\0' && *q != ' ')) {
        smtpd_path_reply(s, rc == SMTPD_ADDR_OK ? SMTPD_ADDR_SYNTAX : rc, true);
        return;
    }
    p = args + (q - args);
    while (*p == ' ')
        p++;
    if (*p != '\0' && !s->esmtp) {
        smtpd_reply(s, "555 5.5.4 Error: parameters need EHLO");
        return;
    }
    if (smtpd_site_paused(s))
        return;
    tx = smtpd_tx_new(s);
    tx->sender = xstrdup(addr);
    while (smtpd_next_param(&p, &key, &val)) {
        if (!smtpd_mail_param(s, tx, key, val)) {
            smtpd_tx_free(tx);
            return;
        }
    }
    s->tx = tx;
    smtpd_enter_state(s, SMTPD_S_MAIL);
    smtpd_reply(s, "250 2.1.0 Ok");
}

/* smtpd_notify_parse - NOTIFY=NEVER | SUCCESS,FAILURE,DELAY; 0 on error. */
static unsigned smtpd_notify_parse(char *v)
{
    unsigned bits = 0;
    char *tok, *save = NULL;

    if (v == NULL || *v == '\0')
        return 0;
    for (tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcasecmp(tok, "NEVER") == 0)
            bits |= STORE_NOTIFY_NEVER;
        else if (strcasecmp(tok, "SUCCESS") == 0)
            bits |= STORE_NOTIFY_SUCCESS;
        else if (strcasecmp(tok, "FAILURE") == 0)
            bits |= STORE_NOTIFY_FAILURE;
        else if (strcasecmp(tok, "DELAY") == 0)
            bits |= STORE_NOTIFY_DELAY;
        else
            return 0;
    }
    if ((bits & STORE_NOTIFY_NEVER) && bits != STORE_NOTIFY_NEVER)
        return 0;
    return bits;
}

/* smtpd_orcpt_ok - ORCPT=addr-type;xtext. */
static bool smtpd_orcpt_ok(const char *v)
{
    const char *semi = v ? strchr(v, ';') : NULL;

    return semi != NULL && semi != v && smtpd_xtext_ok(semi + 1, STORE_PARAM_MAX - 40);
}

/* smtpd_rcpt_params - NOTIFY/ORCPT into r; false after an error reply. */
static bool smtpd_rcpt_params(struct smtpd_session *s, char *p, struct smtpd_rcpt *r)
{
    char *key, *val;

    while (smtpd_next_param(&p, &key, &val)) {
        if (strcasecmp(key, "NOTIFY") == 0 && !r->notify) {
            if ((r->notify = smtpd_notify_parse(val)) == 0) {
                smtpd_reply(s, "501 5.5.4 Bad NOTIFY parameter");
                return false;
            }
        } else if (strcasecmp(key, "ORCPT") == 0 && !r->orcpt) {
            if (!smtpd_orcpt_ok(val)) {
                smtpd_reply(s, "501 5.5.4 Bad ORCPT parameter");
                return false;
            }
            r->orcpt = xstrdup(val);
        } else {
            char safe[LOG_PEER_MAX + 1];
            smtpd_reply(s, "555 5.5.4 Unsupported option: %s",
                        log_printable(safe, sizeof(safe), key, strlen(key)));
            return false;
        }
    }
    return true;
}

/* smtpd_rcpt_room - relay and room checks for one domain; false after a reply. */
static bool smtpd_rcpt_room(struct smtpd_session *s, const char *addr, const char *domain)
{
    const struct conf_site *cs = smtpd_site(s);
    struct store_domain d;
    int rc;

    rc = store_domain_get(s->sd->st, domain, &d);
    if (rc == STORE_NOTFOUND || (rc == STORE_OK && strcmp(d.site, s->site) != 0)) {
        smtpd_reply(s, "550 5.7.1 <%s>: Relay access denied", addr);
        return false;
    }
    if (rc != STORE_OK || cs == NULL) {
        log_error("RCPT from [%s]: domain lookup: %s", s->addr, store_strerror(rc));
        smtpd_reply(s, "451 4.3.0 Error: local error in processing");
        return false;
    }
    if (smtpd_site_paused(s))
        return false;
    rc = store_room_check(s->sd->st, s->site, cs->max_queue, cs->max_queue_bytes, domain,
                          s->tx->declared_size);
    if (rc == STORE_LIMIT || rc == STORE_FULL) {
        log_info("RCPT from [%s]: %s: %s", s->addr, domain, store_strerror(rc));
        smtpd_reply(s, "452 4.3.1 Insufficient system storage");
        return false;
    }
    if (rc != STORE_OK) {
        log_error("RCPT from [%s]: room check: %s", s->addr, store_strerror(rc));
        smtpd_reply(s, "451 4.3.0 Error: local error in processing");
        return false;
    }
    return true;
}

/* smtpd_rcpt_dup - true when tx already has this recipient. */
static bool smtpd_rcpt_dup(const struct smtpd_tx *tx, const char *addr)
{
    size_t i;

    for (i = 0; i < tx->nrcpts; i++)
        if (strcasecmp(tx->rcpts[i].addr, addr) == 0)
            return true;
    return false;
}

/* smtpd_rcpt_add - append a checked recipient to the transaction. */
static void smtpd_rcpt_add(struct smtpd_tx *tx, const char *addr, const char *domain,
                           struct smtpd_rcpt *r)
{
    char *d;

    if (tx->nrcpts == tx->arcpts) {
        tx->arcpts = tx->arcpts ? tx->arcpts * 2 : 4;
        tx->rcpts = xrealloc(tx->rcpts, tx->arcpts * sizeof(*tx->rcpts));
    }
    r->addr = xstrdup(addr);
    r->domain = d = xstrdup(domain);
    for (; *d; d++)
        *d = (char)tolower((unsigned char)*d);
    tx->rcpts[tx->nrcpts++] = *r;
}

/* smtpd_rcpt - RCPT TO:<path> [NOTIFY= ORCPT=]. */
static void smtpd_rcpt(struct smtpd_session *s, char *args)
{
    char addr[STORE_ADDR_MAX], domain[STORE_DOMAIN_MAX], *p, *d;
    struct smtpd_rcpt r = {0};
    const char *q, *dom;
    int rc, max = s->sd->cf->max_recipients;

    if (s->tx == NULL) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (strncasecmp(args, "TO:", 3) != 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    q = args + 3;
    rc = smtpd_path_parse(&q, addr, sizeof(addr), false, &dom);
    if (rc != SMTPD_ADDR_OK || (*q != '\0' && *q != ' ')) {
        smtpd_path_reply(s, rc == SMTPD_ADDR_OK ? SMTPD_ADDR_SYNTAX : rc, false);
        return;
    }
    p = args + (q - args);
    while (*p == ' ')
        p++;
    if (*p != '\0' && !s->esmtp) {
        smtpd_reply(s, "555 5.5.4 Error: parameters need EHLO");
        return;
    }
    if (max > 0 && s->tx->nrcpts >= (size_t)max) {
        smtpd_reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    snprintf(domain, sizeof(domain), "%s", dom);
    for (d = domain; *d; d++)
        *d = (char)tolower((unsigned char)*d);
    if (!smtpd_rcpt_params(s, p, &r) || !smtpd_rcpt_room(s, addr, domain)) {
        free(r.orcpt);
        return;
    }
    if (smtpd_rcpt_dup(s->tx, addr)) {
        free(r.orcpt);
    } else {
        smtpd_rcpt_add(s->tx, addr, domain, &r);
    }
    smtpd_enter_state(s, SMTPD_S_RCPT);
    smtpd_reply(s, "250 2.1.5 Ok");
}

/* smtpd_data - DATA: start reading the content. */
static void smtpd_data(struct smtpd_session *s, char *args)
{
    if (*args != '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: DATA");
        return;
    }
    if (s->tx == NULL) {
        smtpd_reply(s, "503 5.5.1 Error: need RCPT command");
        return;
    }
    if (s->tx->nrcpts == 0) {
        smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
        return;
    }
    smtpd_data_begin(s);
}

/* smtpd_rset - RSET. */
static void smtpd_rset(struct smtpd_session *s, char *args)
{
    if (*args != '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: RSET");
        return;
    }
    smtpd_tx_reset(s);
    smtpd_reply(s, "250 2.0.0 Ok");
}

/* smtpd_noop - NOOP. */
static void smtpd_noop(struct smtpd_session *s, char *args)
{
    (void)args;
    smtpd_reply(s, "250 2.0.0 Ok");
}

/* smtpd_quit - QUIT: 221 and close. */
static void smtpd_quit(struct smtpd_session *s, char *args)
{
    (void)args;
    smtpd_reply(s, "221 2.0.0 Bye");
    smtpd_close(s);
}

/* smtpd_vrfy - VRFY: never disclose. */
static void smtpd_vrfy(struct smtpd_session *s, char *args)
{
    if (*args == '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: VRFY address");
        return;
    }
    smtpd_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
}

/* smtpd_help - HELP. */
static void smtpd_help(struct smtpd_session *s, char *args)
{
    (void)args;
    smtpd_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY ETRN "
                   "STARTTLS HELP");
}

/* smtpd_notimpl - verbs we know but do not offer on this port. */
static void smtpd_notimpl(struct smtpd_session *s, char *args)
{
    (void)args;
    smtpd_reply(s, "502 5.5.1 Error: command not implemented");
}

/* smtpd_unknown - anything else. */
static void smtpd_unknown(struct smtpd_session *s, char *args)
{
    (void)args;
    smtpd_reply(s, "500 5.5.2 Error: command not recognized");
}

/* smtpd_etrn_reply - map an etrn_kick status to the RFC 1985 reply. */
static void smtpd_etrn_reply(struct smtpd_session *s, const char *node, int rc, size_t pending)
{
    bool count = s->sd->cf->etrn_reply == CONF_ETRN_REPLY_COUNT;

    switch (rc) {
    case ETRN_STARTED:
    case ETRN_NOTHING:
        if (count && rc == ETRN_NOTHING)
            smtpd_reply(s, "251 2.0.0 OK, no messages waiting for node %s", node);
        else if (count)
            smtpd_reply(s, "253 2.0.0 OK, %zu pending messages for node %s started", pending, node);
        else
            smtpd_reply(s, "250 2.0.0 Queuing for node %s started", node);
        break;
    case ETRN_RUNNING:
        smtpd_reply(s, "250 2.0.0 Queuing for node %s started", node);
        break;
    case ETRN_DISABLED:
        smtpd_reply(s, "459 4.7.1 Node %s not allowed: ETRN disabled for this domain", node);
        break;
    case ETRN_UNKNOWN:
        smtpd_reply(s, "459 4.7.1 Node %s not allowed: not held here", node);
        break;
    default:
        smtpd_reply(s, "458 4.3.0 Unable to queue messages for node %s", node);
        break;
    }
}

/* smtpd_site_name_ok - "#name" argument: a plausible site name. */
static bool smtpd_site_name_ok(const char *n)
{
    size_t len = strlen(n), i;

    if (len == 0 || len >= CONF_NAME_MAX)
        return false;
    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)n[i]) && strchr("-_.", n[i]) == NULL)
            return false;
    return true;
}

/* smtpd_etrn - ETRN [@|#]node (RFC 1985); the reply goes out at once. */
static void smtpd_etrn(struct smtpd_session *s, char *args)
{
    char opt = (args[0] == '@' || args[0] == '#') ? args[0] : '\0';
    char *node = opt ? args + 1 : args, *p;
    size_t pending = 0;
    int rc;

    if (s->tx != NULL) {
        smtpd_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    if (*args == '\0') {
        smtpd_reply(s, "500 5.5.2 Syntax: ETRN domain");
        return;
    }
    if (opt == '#' ? !smtpd_site_name_ok(node)
                   : (node[0] == '[' || strchr(node, ' ') || !smtpd_domain_ok(node, true))) {
        smtpd_reply(s, "501 5.5.4 Syntax error in parameters");
        return;
    }
    if (opt == '#' && strcmp(node, s->site) != 0) {
        smtpd_reply(s, "459 4.7.1 Node %s not allowed: unknown queue", args);
        return;
    }
    for (p = node; opt != '#' && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (s->sd->etrn == NULL)
        rc = ETRN_ERROR;
    else if (opt == '#')
        rc = etrn_kick_site(s->sd->etrn, s->site, s->addr, &pending);
    else
        rc = etrn_kick(s->sd->etrn, node, opt == '@', s->site, s->addr, &pending);
    log_info("ETRN %s from [%s]: %s", args, s->addr, etrn_status_name(rc));
    metrics_http_etrn_status(rc);
    smtpd_etrn_reply(s, args, rc, pending);
}
