/*
 * ctl_nouns.h - queuectl's "queue", "stats" and "site" nouns.
 *
 * queuectl.c parses -c FILE, loads the configuration and hands the rest of
 * the command line to one of the entry points below: argv[0] is the noun,
 * argv[1] the verb.  Each returns a sysexits.h code and prints errors that
 * say what to do.  Read-only verbs open the store read-only and work with
 * the daemons up or down; verbs that need delivery (flush, drain without
 * --move-to/--export) go through queued's control socket.
 *
 * The export helpers are shared by "queue export" and "site drain --export".
 */
#ifndef HM_CTL_NOUNS_H
#define HM_CTL_NOUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "conf.h"
#include "store.h"

int ctl_queue_main(const struct conf *cf, int argc, char **argv);
int ctl_stats_main(const struct conf *cf, int argc, char **argv);
int ctl_site_main(const struct conf *cf, int argc, char **argv);

/* ctl_nouns_usage - the usage lines of the three nouns (for queuectl -h). */
void ctl_nouns_usage(FILE *f);

/* ---- shared between ctl_queue.c, ctl_site.c and ctl_drain.c ---- */

struct ctl_export;

/*
 * ctl_export_open - start (or resume) an export into dir: creates it, and
 * reads dir/MANIFEST so that messages already exported are not written
 * twice.  NULL with a message on stderr on failure.
 */
struct ctl_export *ctl_export_open(const char *dir);
/*
 * ctl_export_msg - write message id (only recipients of domain when not
 * NULL) as dir/ID.eml + dir/ID.env, fsync both and the directory, then
 * append it to MANIFEST (fsynced).  0 = exported or already there,
 * 1 = nothing pending to export, -1 = error (printed).
 */
int ctl_export_msg(struct ctl_export *x, struct store *st, store_msgid_t id, const char *domain);
/* ctl_export_count - messages listed in the manifest. */
size_t ctl_export_count(const struct ctl_export *x);
void ctl_export_close(struct ctl_export *x);

/* ctl_site_drain - "site drain NAME [--move-to SITE | --export DIR]" (ctl_drain.c). */
int ctl_site_drain(const struct conf *cf, int argc, char **argv);

/* ctl_ids - a growable list of message ids. */
struct ctl_ids {
    store_msgid_t *id;
    bool *whole; /* with a domain filter: every pending recipient is in the domain */
    size_t n, cap;
};
/* ctl_ids_collect - ids of every message matching f (oldest first). */
int ctl_ids_collect(struct store *st, const struct store_filter *f, struct ctl_ids *ids);
void ctl_ids_free(struct ctl_ids *ids);

#endif
