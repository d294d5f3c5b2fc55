/*
 * smtpd_envelope.c - MAIL and RCPT: the envelope of a mail transaction.
 *
 * MAIL takes SIZE (checked against max_message_size), BODY, RET, ENVID and
 * AUTH (RFC 4954: accepted from anyone, not trusted, not kept).  RCPT takes
 * NOTIFY and ORCPT (RFC 3461) and accepts only a domain held for the
 * session's own site, while the domain and the site have room
 * (store_room_check) and the site is not paused.  Every handler sends
 * exactly one reply; parameters are only accepted after EHLO.
 */
#include "smtpd.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "xalloc.h"

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

/* smtpd_param_unsupported - 555 for a MAIL/RCPT parameter we do not know. */
static void smtpd_param_unsupported(struct smtpd_session *s, const char *key)
{
    char safe[LOG_PEER_MAX + 1];

    smtpd_reply(s, "555 5.5.4 Unsupported option: %s",
                log_printable(safe, sizeof(safe), key, strlen(key)));
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
        smtpd_param_unsupported(s, key);
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

/*
 * smtpd_path_args - the common front of MAIL and RCPT: "FROM:" / "TO:",
 * the path into addr (*dom points at its domain), then the parameters.
 * Returns the parameter string (may be empty), or NULL after an error reply.
 */
static char *smtpd_path_args(struct smtpd_session *s, char *args, bool sender, char *addr,
                             size_t addrsz, const char **dom)
{
    const char *prefix = sender ? "FROM:" : "TO:";
    size_t plen = strlen(prefix);
    const char *q;
    char *p;
    int rc;

    if (strncasecmp(args, prefix, plen) != 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: %s %s<address>", sender ? "MAIL" : "RCPT", prefix);
        return NULL;
    }
    q = args + plen;
    rc = smtpd_path_parse(&q, addr, addrsz, sender, dom);
    if (rc != SMTPD_ADDR_OK || (*q != '\0' && *q != ' ')) {
        smtpd_path_reply(s, rc == SMTPD_ADDR_OK ? SMTPD_ADDR_SYNTAX : rc, sender);
        return NULL;
    }
    for (p = args + (q - args); *p == ' '; p++)
        continue;
    if (*p != '\0' && !s->esmtp) {
        smtpd_reply(s, "555 5.5.4 Error: parameters need EHLO");
        return NULL;
    }
    return p;
}

/* smtpd_mail - MAIL FROM:<path> [params]. */
void smtpd_mail(struct smtpd_session *s, char *args)
{
    char addr[STORE_ADDR_MAX], *p, *key, *val;
    const char *dom;
    struct smtpd_tx *tx;

    if (s->tx != NULL) {
        smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if ((p = smtpd_path_args(s, args, true, addr, sizeof(addr), &dom)) == NULL)
        return;
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
            smtpd_param_unsupported(s, key);
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

/*
 * smtpd_rcpt_dup - true when tx already has this recipient.  The local part
 * may be case-sensitive (RFC 5321 2.4), so only the domain is compared
 * without regard to case.
 */
static bool smtpd_rcpt_dup(const struct smtpd_tx *tx, const char *addr)
{
    const char *at = strrchr(addr, '@');
    size_t local = at != NULL ? (size_t)(at - addr) : strlen(addr);
    size_t i;

    for (i = 0; i < tx->nrcpts; i++) {
        const char *o = tx->rcpts[i].addr;
        const char *oat = strrchr(o, '@');
        size_t olocal = oat != NULL ? (size_t)(oat - o) : strlen(o);

        if (olocal == local && memcmp(o, addr, local) == 0 &&
            strcasecmp(o + olocal, addr + local) == 0)
            return true;
    }
    return false;
}

/* smtpd_rcpt_add - append a checked recipient (domain already lower case) to tx. */
static void smtpd_rcpt_add(struct smtpd_tx *tx, const char *addr, const char *domain,
                           struct smtpd_rcpt *r)
{
    if (tx->nrcpts == tx->arcpts) {
        tx->arcpts = tx->arcpts ? tx->arcpts * 2 : 4;
        tx->rcpts = xrealloc(tx->rcpts, tx->arcpts * sizeof(*tx->rcpts));
    }
    r->addr = xstrdup(addr);
    r->domain = xstrdup(domain);
    tx->rcpts[tx->nrcpts++] = *r;
}

/* smtpd_rcpt - RCPT TO:<path> [NOTIFY= ORCPT=]. */
void smtpd_rcpt(struct smtpd_session *s, char *args)
{
    char addr[STORE_ADDR_MAX], domain[STORE_DOMAIN_MAX], *p, *d;
    struct smtpd_rcpt r = {0};
    const char *dom;
    int max = s->sd->cf->max_recipients;

    if (s->tx == NULL) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if ((p = smtpd_path_args(s, args, false, addr, sizeof(addr), &dom)) == NULL)
        return;
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
