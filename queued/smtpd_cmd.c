/*
 * smtpd_cmd.c - the SMTP command table, its dispatcher and the handlers.
 *
 * One table lists every verb with its handler (or fixed reply) and flags.  The dispatcher
 * applies the generic gates in one place, before any handler runs: NUL
 * bytes, "HELO/EHLO first", pipelining synchronisation (RFC 2920: a
 * last-in-group command must not be followed by more input before its
 * reply; a violation gets 554 and the connection is closed, as Exim does,
 * because nothing after it can be trusted), and the error and junk
 * limits.  Handlers check their own state and arguments and send exactly
 * one reply (EHLO: one multi-line reply).  MAIL and RCPT live in
 * smtpd_envelope.c, ETRN in smtpd_etrn.c.
 */
#include "smtpd.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "log.h"
#include "xalloc.h"

#define SMTPD_CMD_LAST_IN_GROUP       0x1u /* must be last in a pipelined group */
#define SMTPD_CMD_COUNTS_AS_JUNK      0x2u /* counts toward the junk-command limit */
#define SMTPD_CMD_ALLOWED_BEFORE_HELO 0x4u /* allowed before HELO/EHLO */
/* NOOP, VRFY, HELP and verbs not offered here: harmless, any time, but junk. */
#define SMTPD_CMD_INFO                                                                             \
    (SMTPD_CMD_LAST_IN_GROUP | SMTPD_CMD_COUNTS_AS_JUNK | SMTPD_CMD_ALLOWED_BEFORE_HELO)

#define SMTPD_JUNK_FACTOR 10 /* junk limit = max_errors * this */

struct smtpd_cmd {
    const char *verb; /* upper case; NULL = the unknown-command entry */
    const char *name; /* lower-case counter name for the disconnect line */
    void (*handler)(struct smtpd_session *s, char *args); /* NULL: send reply */
    unsigned flags;
    const char *reply; /* the fixed reply of a verb without a handler */
};

static void smtpd_helo(struct smtpd_session *s, char *args);
static void smtpd_ehlo(struct smtpd_session *s, char *args);
static void smtpd_starttls_cmd(struct smtpd_session *s, char *args);
static void smtpd_data(struct smtpd_session *s, char *args);
static void smtpd_rset(struct smtpd_session *s, char *args);
static void smtpd_quit(struct smtpd_session *s, char *args);
static void smtpd_vrfy(struct smtpd_session *s, char *args);

/* Fixed replies of the verbs that need no handler. */
#define SMTPD_REPLY_OK "250 2.0.0 Ok"
#define SMTPD_REPLY_HELP                                                                           \
    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY ETRN STARTTLS HELP"
#define SMTPD_REPLY_NOTIMPL "502 5.5.1 Error: command not implemented"
#define SMTPD_REPLY_UNKNOWN "500 5.5.2 Error: command not recognized"

static const struct smtpd_cmd smtpd_cmds[] = {
    {"HELO", "helo", smtpd_helo, SMTPD_CMD_LAST_IN_GROUP | SMTPD_CMD_ALLOWED_BEFORE_HELO, NULL},
    {"EHLO", "ehlo", smtpd_ehlo, SMTPD_CMD_LAST_IN_GROUP | SMTPD_CMD_ALLOWED_BEFORE_HELO, NULL},
    {"STARTTLS", "starttls", smtpd_starttls_cmd, 0, NULL}, /* discards pipelined input */
    {"MAIL", "mail", smtpd_mail, 0, NULL},
    {"RCPT", "rcpt", smtpd_rcpt, 0, NULL},
    {"DATA", "data", smtpd_data, SMTPD_CMD_LAST_IN_GROUP, NULL},
    {"RSET", "rset", smtpd_rset, SMTPD_CMD_ALLOWED_BEFORE_HELO, NULL},
    {"NOOP", "noop", NULL, SMTPD_CMD_INFO, SMTPD_REPLY_OK},
    {"QUIT", "quit", smtpd_quit, SMTPD_CMD_ALLOWED_BEFORE_HELO, NULL},
    {"VRFY", "vrfy", smtpd_vrfy, SMTPD_CMD_INFO, NULL},
    {"HELP", "help", NULL, SMTPD_CMD_INFO, SMTPD_REPLY_HELP},
    {"ETRN", "etrn", smtpd_etrn, SMTPD_CMD_LAST_IN_GROUP, NULL},
    {"EXPN", "expn", NULL, SMTPD_CMD_INFO, SMTPD_REPLY_NOTIMPL},
    {"TURN", "turn", NULL, SMTPD_CMD_INFO, SMTPD_REPLY_NOTIMPL},
    {"ATRN", "atrn", NULL, SMTPD_CMD_INFO, SMTPD_REPLY_NOTIMPL},
    {"AUTH", "auth", NULL, SMTPD_CMD_INFO, SMTPD_REPLY_NOTIMPL},
    {"BDAT", "bdat", NULL, SMTPD_CMD_INFO, SMTPD_REPLY_NOTIMPL},
    {NULL, "unknown", NULL, SMTPD_CMD_COUNTS_AS_JUNK | SMTPD_CMD_ALLOWED_BEFORE_HELO,
     SMTPD_REPLY_UNKNOWN},
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

/* smtpd_max_errors - the configured error limit (10 when unset). */
static int smtpd_max_errors(const struct smtpd_session *s)
{
    return s->sd->cf->max_errors > 0 ? s->sd->cf->max_errors : 10;
}

/* smtpd_error - count an error reply; past max_errors say 421 and close. */
static void smtpd_error(struct smtpd_session *s)
{
    int max = smtpd_max_errors(s);

    if (++s->errors < max)
        return;
    log_warn("too many errors after %s from [%s]", s->where, s->addr);
    smtpd_reply(s, "421 4.7.0 %s Error: too many errors", s->hostname);
    smtpd_close(s);
}

/* smtpd_junk - count a junk command; past the limit say 421 and close. */
static bool smtpd_junk(struct smtpd_session *s)
{
    int max = smtpd_max_errors(s) * SMTPD_JUNK_FACTOR;

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
    if (!(c->flags & SMTPD_CMD_LAST_IN_GROUP) ||
        evbuffer_get_length(bufferevent_get_input(s->bev)) == 0)
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
    if ((c->flags & SMTPD_CMD_COUNTS_AS_JUNK) && smtpd_junk(s))
        return;
    if (!(c->flags & SMTPD_CMD_ALLOWED_BEFORE_HELO) && s->state == SMTPD_S_CONNECTED) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        smtpd_error(s);
        return;
    }
    if (smtpd_pipelined(s, c))
        return;
    s->last_code = 0;
    if (c->handler != NULL)
        c->handler(s, args);
    else
        smtpd_reply(s, "%s", c->reply);
    if (s->last_code >= 400 && s->state != SMTPD_S_CLOSING)
        smtpd_error(s);
}

/* smtpd_tx_reset - drop the transaction (RSET, HELO, EHLO). */
static void smtpd_tx_reset(struct smtpd_session *s)
{
    smtpd_tx_drop(s);
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
    smtpd_tx_drop(s);
    smtpd_starttls(s);
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
    smtpd_reply(s, SMTPD_REPLY_OK);
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
