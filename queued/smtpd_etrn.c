/*
 * smtpd_etrn.c - the ETRN command (RFC 1985) on queued's SMTP port.
 *
 * "ETRN domain", "ETRN @domain" (with subdomains) and "ETRN #site" (only
 * the site the connection belongs to) are passed to the ETRN engine,
 * which answers at once; the run itself goes on asynchronously on new
 * outbound connections.  The engine's status is mapped to one single-line
 * reply (fetchmail reads exactly one line), following cf->etrn_reply.
 */
#include "smtpd.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "etrn.h"
#include "log.h"
#include "metrics_http.h"

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
void smtpd_etrn(struct smtpd_session *s, char *args)
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
