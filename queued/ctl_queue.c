/*
 * ctl_queue.c - "queuectl queue ...": list, show, hold, release, delete,
 * bounce, flush and export.
 *
 * Listing verbs open the store read-only.  Actions on many messages first
 * collect the ids (store_msg_iter callbacks must not write) and then act on
 * each id in its own store call, so an interruption leaves every message
 * either done or untouched.  "bounce ID" fails every pending recipient of
 * the message in one store call (store_msg_bounce); "bounce --domain D"
 * claims the domain's recipients as this process (a lease that dies with
 * it) and records them FAILED.  Either way the reason is "bounced by the
 * operator", the store queues the DSN, and a running queued is told the
 * count (STATS) for its bounced_recipients metric.  Like hold, release and
 * delete, bounce writes to the store directly and works with queued down.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "ctl_client.h"
#include "ctl_nouns.h"
#include "xalloc.h"

#define CTL_BOUNCE_REASON "554 5.0.0 bounced by the operator"
#define CTL_HDR_MAX       (64 * 1024)

/* ctl_queue_list_ctx - state of one listing. */
struct ctl_queue_list_ctx {
    bool json;
    size_t count;
    uint64_t bytes;
    int64_t now;
};

/* ctl_ids_add - append one id. */
static void ctl_ids_add(struct ctl_ids *ids, store_msgid_t id, bool whole)
{
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? ids->cap * 2 : 256;
        ids->id = xrealloc(ids->id, ids->cap * sizeof(*ids->id));
        ids->whole = xrealloc(ids->whole, ids->cap * sizeof(*ids->whole));
    }
    ids->id[ids->n] = id;
    ids->whole[ids->n] = whole;
    ids->n++;
}

/* ctl_ids_cb - store_msg_iter callback of ctl_ids_collect. */
static int ctl_ids_cb(const struct store_msg_info *m, const struct store_rcpt_info *r, size_t nr,
                      void *arg)
{
    (void)r;
    ctl_ids_add(arg, m->id, nr >= m->nrcpts);
    return 0;
}

/* ctl_ids_collect - ids of every message matching f. */
int ctl_ids_collect(struct store *st, const struct store_filter *f, struct ctl_ids *ids)
{
    memset(ids, 0, sizeof(*ids));
    return store_msg_iter(st, f, ctl_ids_cb, ids);
}

/* ctl_ids_free - release the list. */
void ctl_ids_free(struct ctl_ids *ids)
{
    free(ids->id);
    free(ids->whole);
    memset(ids, 0, sizeof(*ids));
}

/* ctl_queue_rcpt_json - one recipient object. */
static void ctl_queue_rcpt_json(FILE *f, const struct store_rcpt_info *r)
{
    char t[32];

    fputs("{\"address\":", f);
    ctl_json_str(f, r->addr);
    fputs(",\"domain\":", f);
    ctl_json_str(f, r->domain);
    fputs(",\"state\":", f);
    ctl_json_str(f, store_rcpt_state_name(r->state));
    fprintf(f, ",\"attempts\":%u,\"last_reply\":", r->attempts);
    ctl_json_str(f, r->last_reply);
    fputs(",\"last_attempt\":", f);
    if (r->last_attempt > 0)
        ctl_json_str(f, ctl_iso_time(r->last_attempt, t, sizeof(t)));
    else
        fputs("null", f);
    fputs(",\"orcpt\":", f);
    ctl_json_str(f, r->orcpt);
    fprintf(f, ",\"notify\":%u}", r->notify);
}

/* ctl_queue_msg_json - one message object (envelope + recipients). */
static void ctl_queue_msg_json(FILE *f, const struct store_msg_info *m,
                               const struct store_rcpt_info *r, size_t nr, int64_t now)
{
    char t[32];
    size_t i;

    ctl_json_msg_open(f, m);
    fputs(",\"arrival\":", f);
    ctl_json_str(f, ctl_iso_time(m->arrival, t, sizeof(t)));
    fprintf(f, ",\"age_seconds\":%lld,\"size\":%llu,\"hold\":%s,\"envid\":",
            (long long)(now - m->arrival), (unsigned long long)m->size,
            (m->flags & STORE_MSG_HOLD) ? "true" : "false");
    ctl_json_str(f, m->envid);
    fputs(",\"recipients\":[", f);
    for (i = 0; i < nr; i++) {
        if (i > 0)
            fputc(',', f);
        ctl_queue_rcpt_json(f, &r[i]);
    }
    fputs("]}", f);
}

/* ctl_queue_list_cb - print one message of the listing. */
static int ctl_queue_list_cb(const struct store_msg_info *m, const struct store_rcpt_info *r,
                             size_t nr, void *arg)
{
    struct ctl_queue_list_ctx *c = arg;
    char id[STORE_ID_LEN], age[16], size[16];
    size_t i;

    if (c->json) {
        fputs(c->count > 0 ? ",\n" : "\n", stdout);
        ctl_queue_msg_json(stdout, m, r, nr, c->now);
    } else {
        printf("%-16s%c %5s %6s  %-10s <%s>\n", store_id_format(m->id, id),
               (m->flags & STORE_MSG_HOLD) ? '!' : ' ',
               ctl_human_age(c->now - m->arrival, age, sizeof(age)),
               ctl_human_size(m->size, size, sizeof(size)), m->site, m->sender);
        for (i = 0; i < nr; i++)
            printf("%43s %s (%s, %u attempt%s)\n", "", r[i].addr, store_rcpt_state_name(r[i].state),
                   r[i].attempts, r[i].attempts == 1 ? "" : "s");
    }
    c->count++;
    c->bytes += m->size;
    return 0;
}

/* ctl_queue_list - "queue list [--site S] [--domain D] [--json]". */
static int ctl_queue_list(const struct conf *cf, int argc, char **argv)
{
    struct ctl_queue_list_ctx c = {ctl_has_flag(argc, argv, 2, "--json"), 0, 0, time(NULL)};
    struct store_filter f = {ctl_opt_value(argc, argv, 2, "--site"),
                             ctl_opt_value(argc, argv, 2, "--domain"), false};
    struct store *st;
    char size[16];
    int rc = ctl_store_open(cf, true, &st);

    if (rc != 0)
        return rc;
    if (c.json)
        fputs("{\"messages\":[", stdout);
    else
        printf("%-17s %5s %6s  %-10s %s\n", "ID (!=hold)", "AGE", "SIZE", "SITE", "SENDER");
    rc = store_msg_iter(st, &f, ctl_queue_list_cb, &c);
    if (c.json)
        printf("\n],\"count\":%zu,\"bytes\":%llu}\n", c.count, (unsigned long long)c.bytes);
    else
        printf("-- %zu message%s, %s\n", c.count, c.count == 1 ? "" : "s",
               ctl_human_size(c.bytes, size, sizeof(size)));
    store_close(st);
    if (rc != STORE_OK) {
        fprintf(stderr, "queuectl: listing failed: %s\n", store_strerror(rc));
        return EX_IOERR;
    }
    return 0;
}

/* ctl_queue_parse_id - argv word to a message id, with a message when bad. */
static bool ctl_queue_parse_id(const char *s, store_msgid_t *id)
{
    if (s != NULL && store_id_parse(s, id))
        return true;
    fprintf(stderr, "queuectl: \"%s\" is not a queue id (see queuectl queue list)\n",
            s != NULL ? s : "");
    return false;
}

/* ctl_queue_headers - print the header block of the message body. */
static void ctl_queue_headers(struct store *st, store_msgid_t id)
{
    char *buf = xmalloc(CTL_HDR_MAX + 1), *end;
    size_t used = 0, got = 0;

    while (used < CTL_HDR_MAX &&
           store_body_read(st, id, used, buf + used, CTL_HDR_MAX - used, &got) == STORE_OK &&
           got > 0)
        used += got;
    buf[used] = '\0';
    end = strstr(buf, "\r\n\r\n");
    if (end == NULL || (strstr(buf, "\n\n") != NULL && strstr(buf, "\n\n") < end))
        end = strstr(buf, "\n\n");
    if (end != NULL)
        end[1] = '\0';
    fputs(buf, stdout);
    if (used > 0 && buf[strlen(buf) - 1] != '\n')
        fputc('\n', stdout);
    free(buf);
}

/* ctl_queue_show - "queue show ID [--json]". */
static int ctl_queue_show(const struct conf *cf, int argc, char **argv)
{
    struct store_msg_info m;
    struct store_rcpt_info *r = NULL;
    size_t nr = 0, i;
    store_msgid_t id;
    struct store *st;
    char t[32], idb[STORE_ID_LEN];
    int rc;

    if (argc < 3 || !ctl_queue_parse_id(argv[2], &id))
        return EX_USAGE;
    if ((rc = ctl_store_open(cf, true, &st)) != 0)
        return rc;
    rc = store_msg_get(st, id, &m, &r, &nr);
    if (rc != STORE_OK) {
        fprintf(stderr, "queuectl: %s: %s\n", argv[2],
                rc == STORE_NOTFOUND ? "no such message (delivered or deleted?)"
                                     : store_strerror(rc));
        store_close(st);
        return rc == STORE_NOTFOUND ? EX_NOINPUT : EX_IOERR;
    }
    if (ctl_has_flag(argc, argv, 3, "--json")) {
        ctl_queue_msg_json(stdout, &m, r, nr, time(NULL));
        fputc('\n', stdout);
    } else {
        printf("id:          %s%s\nsite:        %s\nsender:      <%s>\n",
               store_id_format(m.id, idb), (m.flags & STORE_MSG_HOLD) ? " (on hold)" : "", m.site,
               m.sender);
        printf("arrival:     %s\nsize:        %llu\nclient:      %s (helo %s)\n",
               ctl_iso_time(m.arrival, t, sizeof(t)), (unsigned long long)m.size, m.client_addr,
               m.client_helo);
        printf("envid:       %s\nret:         %s\nbody:        %s\n", m.envid[0] ? m.envid : "-",
               m.ret == STORE_RET_FULL   ? "FULL"
               : m.ret == STORE_RET_HDRS ? "HDRS"
                                         : "-",
               m.body_type == STORE_BODY_8BITMIME ? "8BITMIME" : "7BIT");
        for (i = 0; i < nr; i++)
            printf("recipient:   %s  state=%s attempts=%u notify=%u orcpt=%s\n"
                   "             last reply: %s\n",
                   r[i].addr, store_rcpt_state_name(r[i].state), r[i].attempts, r[i].notify,
                   r[i].orcpt[0] ? r[i].orcpt : "-", r[i].last_reply[0] ? r[i].last_reply : "-");
        printf("\n");
        ctl_queue_headers(st, id);
    }
    free(r);
    store_close(st);
    return 0;
}

/* ctl_queue_targets - the ids an action applies to: one ID or --domain D. */
static int ctl_queue_targets(struct store *st, int argc, char **argv, struct ctl_ids *ids,
                             const char **domain)
{
    store_msgid_t id;

    *domain = ctl_opt_value(argc, argv, 2, "--domain");
    memset(ids, 0, sizeof(*ids));
    if (*domain != NULL) {
        struct store_filter f = {NULL, *domain, false};
        int rc = ctl_ids_collect(st, &f, ids);

        if (rc != STORE_OK) {
            fprintf(stderr, "queuectl: cannot list %s: %s\n", *domain, store_strerror(rc));
            return EX_IOERR;
        }
        return 0;
    }
    if (argc < 3 || !ctl_queue_parse_id(argv[2], &id))
        return EX_USAGE;
    ctl_ids_add(ids, id, true);
    return 0;
}

/* ctl_queue_act_one - hold/release/delete one message. */
static int ctl_queue_act_one(struct store *st, const char *verb, store_msgid_t id, bool whole)
{
    if (strcmp(verb, "hold") == 0)
        return store_msg_set_flags(st, id, STORE_MSG_HOLD, 0);
    if (strcmp(verb, "release") == 0)
        return store_msg_set_flags(st, id, 0, STORE_MSG_HOLD);
    if (!whole)
        return STORE_BUSY;
    return store_msg_delete(st, id);
}

/* ctl_queue_simple - "queue hold|release|delete ID | --domain D". */
static int ctl_queue_simple(const struct conf *cf, int argc, char **argv)
{
    const char *verb = argv[1], *domain;
    struct ctl_ids ids;
    struct store *st;
    size_t i, done = 0, skipped = 0, missing = 0;
    char idb[STORE_ID_LEN];
    int rc;

    if ((rc = ctl_store_open(cf, false, &st)) != 0)
        return rc;
    if ((rc = ctl_queue_targets(st, argc, argv, &ids, &domain)) != 0) {
        store_close(st);
        return rc;
    }
    for (i = 0; i < ids.n; i++) {
        int s = ctl_queue_act_one(st, verb, ids.id[i], ids.whole[i]);

        if (s == STORE_OK)
            done++;
        else if (s == STORE_NOTFOUND)
            missing++;
        else if (s == STORE_BUSY)
            skipped++;
        else
            fprintf(stderr, "queuectl: %s %s: %s\n", verb, store_id_format(ids.id[i], idb),
                    store_strerror(s));
    }
    printf("%s: %zu message%s", verb, done, done == 1 ? "" : "s");
    if (skipped > 0)
        printf(", %zu skipped (they also have recipients outside %s: use queue bounce or "
               "site drain)",
               skipped, domain);
    printf("\n");
    rc = done + skipped == ids.n ? 0 : missing > 0 && domain == NULL ? EX_NOINPUT : EX_IOERR;
    if (missing > 0 && domain == NULL)
        fprintf(stderr, "queuectl: %s: no such message (see queuectl queue list)\n", argv[2]);
    ctl_ids_free(&ids);
    store_close(st);
    return rc;
}

/* ctl_bounce_claimed - FAILED outcomes for every claimed recipient of c. */
static size_t ctl_bounce_claimed(struct store *st, const struct store_owner *me,
                                 const struct store_claim *c)
{
    struct store_outcome *o = xcalloc(c->nrcpts + 1, sizeof(*o));
    size_t i, j, n = 0;

    for (i = 0; i < c->nmsgs; i++) {
        for (j = 0; j < c->msgs[i].nrcpts; j++) {
            o[n].msgid = c->msgs[i].rcpts[j].msgid;
            o[n].idx = c->msgs[i].rcpts[j].idx;
            o[n].kind = STORE_OUT_FAILED;
            o[n].reply = CTL_BOUNCE_REASON;
            n++;
        }
    }
    if (n > 0 && store_outcome_apply(st, me, o, n, NULL) != STORE_OK)
        n = 0;
    free(o);
    return n;
}

/* ctl_bounce_id - bounce every pending recipient of one message (one store transaction). */
static int ctl_bounce_id(struct store *st, store_msgid_t id, size_t *bounced)
{
    size_t failed = 0;
    int rc = store_msg_bounce(st, id, CTL_BOUNCE_REASON, &failed);

    if (rc == STORE_OK)
        *bounced += failed;
    return rc;
}

/*
 * ctl_bounce_report - tell a running queued how many recipients were
 * bounced, so /metrics counts operator bounces (best effort: a queued that
 * is down or busy just misses them).
 */
static void ctl_bounce_report(const struct conf *cf, size_t bounced)
{
    char req[64], reply[128];

    if (bounced == 0)
        return;
    snprintf(req, sizeof(req), "STATS bounced_recipients=%zu", bounced);
    (void)ctl_client_call(cf, req, reply, sizeof(reply), 2000);
}

/* ctl_queue_bounce - "queue bounce ID | --domain D". */
static int ctl_queue_bounce(const struct conf *cf, int argc, char **argv)
{
    const char *domain = ctl_opt_value(argc, argv, 2, "--domain");
    struct store_claim *c = NULL;
    struct store_owner me;
    struct store *st;
    store_msgid_t id = 0;
    size_t bounced = 0;
    int rc;

    if (domain == NULL && (argc < 3 || !ctl_queue_parse_id(argv[2], &id)))
        return EX_USAGE;
    if ((rc = ctl_store_open(cf, false, &st)) != 0)
        return rc;
    if (domain != NULL) {
        store_owner_self(&me);
        rc = store_claim(st, &domain, 1, false, &me, 600, 0, &c);
        if (rc == STORE_OK)
            bounced = ctl_bounce_claimed(st, &me, c);
        store_lease_release(st, &me);
        store_claim_free(c);
    } else {
        rc = ctl_bounce_id(st, id, &bounced);
    }
    store_close(st);
    ctl_bounce_report(cf, bounced);
    if (rc != STORE_OK) {
        fprintf(stderr, "queuectl: bounce failed: %s\n",
                rc == STORE_NOTFOUND ? "no such message or domain" : store_strerror(rc));
        return rc == STORE_NOTFOUND ? EX_NOINPUT : EX_IOERR;
    }
    printf("bounce: %zu recipient%s failed with \"bounced by the operator\" (DSNs go to "
           "bounce_relay)\n",
           bounced, bounced == 1 ? "" : "s");
    if (bounced == 0)
        printf("bounce: nothing was pending%s\n",
               domain != NULL ? " (recipients in a delivery in progress are skipped; try again)"
                              : "");
    return 0;
}

/* ctl_queue_flush - "queue flush DOMAIN" through queued's control socket. */
static int ctl_queue_flush(const struct conf *cf, int argc, char **argv)
{
    char req[STORE_DOMAIN_MAX + 16], reply[512];
    int rc;

    if (argc < 3) {
        fprintf(stderr, "usage: queuectl queue flush DOMAIN\n");
        return EX_USAGE;
    }
    snprintf(req, sizeof(req), "FLUSH %s", argv[2]);
    rc = ctl_client_call(cf, req, reply, sizeof(reply), 10000);
    if (rc == CTL_CALL_DOWN) {
        fprintf(stderr,
                "queuectl: queued is not running (nothing answers on %s/control): "
                "start queued, then flush again\n",
                cf->state_dir);
        return EX_UNAVAILABLE;
    }
    if (rc != CTL_CALL_OK) {
        fprintf(stderr, "queuectl: queued did not answer the flush request in time\n");
        return EX_TEMPFAIL;
    }
    if (ctl_client_ok(reply)) {
        printf("flush %s: %s\n", argv[2], reply + 3);
        return 0;
    }
    if (strncmp(reply, "ERR unknown", 11) == 0)
        fprintf(stderr, "queuectl: %s is not a domain held here (see queuectl domain list)\n",
                argv[2]);
    else if (strncmp(reply, "ERR disabled", 12) == 0)
        fprintf(stderr, "queuectl: ETRN is disabled for %s (queuectl domain set %s --etrn)\n",
                argv[2], argv[2]);
    else
        fprintf(stderr, "queuectl: queued refused the flush of %s: %s\n", argv[2], reply);
    return strstr(reply, "unknown") != NULL || strstr(reply, "disabled") != NULL ? EX_DATAERR
                                                                                 : EX_TEMPFAIL;
}

/* ctl_queue_export - "queue export --domain D DIR [--delete]". */
static int ctl_queue_export(const struct conf *cf, int argc, char **argv)
{
    const char *domain = ctl_opt_value(argc, argv, 2, "--domain"), *dir = NULL;
    bool del = ctl_has_flag(argc, argv, 2, "--delete");
    struct store_filter f = {NULL, domain, false};
    struct ctl_export *x;
    struct ctl_ids ids;
    struct store *st;
    size_t i, written = 0, deleted = 0;
    int rc, i2;

    for (i2 = 2; i2 < argc; i2++) {
        if (strcmp(argv[i2], "--domain") == 0)
            i2++;
        else if (argv[i2][0] != '-')
            dir = argv[i2];
    }
    if (domain == NULL || dir == NULL) {
        fprintf(stderr, "usage: queuectl queue export --domain DOMAIN DIR [--delete]\n");
        return EX_USAGE;
    }
    if ((rc = ctl_store_open(cf, !del, &st)) != 0)
        return rc;
    if ((x = ctl_export_open(dir)) == NULL) {
        store_close(st);
        return EX_CANTCREAT;
    }
    rc = ctl_ids_collect(st, &f, &ids);
    for (i = 0; rc == STORE_OK && i < ids.n; i++) {
        int e = ctl_export_msg(x, st, ids.id[i], domain);

        if (e < 0) {
            rc = -1;
            break;
        }
        written += e == 0;
        if (del && e == 0 && ids.whole[i] && store_msg_delete(st, ids.id[i]) == STORE_OK)
            deleted++;
    }
    printf("export %s: %zu message%s in %s (manifest lists %zu)%s\n", domain, written,
           written == 1 ? "" : "s", dir, ctl_export_count(x), del ? "" : "; queue unchanged");
    if (del)
        printf("export %s: %zu deleted from the queue\n", domain, deleted);
    ctl_export_close(x);
    ctl_ids_free(&ids);
    store_close(st);
    return rc == STORE_OK ? 0 : rc < 0 ? EX_CANTCREAT : EX_IOERR;
}

/* ctl_queue_usage - the verbs of "queue". */
static int ctl_queue_usage(void)
{
    fprintf(stderr, "usage: queuectl queue list [--site S] [--domain D] [--json]\n"
                    "       queuectl queue show ID [--json]\n"
                    "       queuectl queue hold|release|delete|bounce ID | --domain D\n"
                    "       queuectl queue flush DOMAIN\n"
                    "       queuectl queue export --domain D DIR [--delete]\n");
    return EX_USAGE;
}

/* ctl_queue_main - dispatch "queue VERB ...". */
int ctl_queue_main(const struct conf *cf, int argc, char **argv)
{
    static const struct {
        const char *verb;
        int (*fn)(const struct conf *, int, char **);
    } verbs[] = {
        {"list", ctl_queue_list},      {"show", ctl_queue_show},     {"hold", ctl_queue_simple},
        {"release", ctl_queue_simple}, {"delete", ctl_queue_simple}, {"bounce", ctl_queue_bounce},
        {"flush", ctl_queue_flush},    {"export", ctl_queue_export},
    };
    size_t i;

    if (argc < 2)
        return ctl_queue_usage();
    for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(argv[1], verbs[i].verb) == 0)
            return verbs[i].fn(cf, argc, argv);
    fprintf(stderr, "queuectl: unknown verb \"queue %s\"\n", argv[1]);
    return ctl_queue_usage();
}
