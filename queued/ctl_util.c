/*
 * ctl_util.c - queuectl plumbing shared by every verb: error messages,
 * opening the store once per run, store status -> sysexits mapping.
 */
#include "ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "xalloc.h"

/* ctl_err - one "queuectl: ..." line on stderr. */
void ctl_err(const char *fmt, ...)
{
    va_list ap;

    fputs("queuectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ctl_store_exit - the sysexits code that fits a store status. */
int ctl_store_exit(int status)
{
    switch (status) {
    case STORE_OK:
        return EX_OK;
    case STORE_NOTFOUND:
    case STORE_EXISTS:
    case STORE_INVAL:
        return EX_DATAERR;
    case STORE_NOTEMPTY:
    case STORE_BUSY:
    case STORE_LIMIT:
        return EX_UNAVAILABLE;
    case STORE_FULL:
        return EX_CANTCREAT;
    case STORE_VERSION:
    case STORE_CORRUPT:
        return EX_SOFTWARE;
    default:
        return EX_IOERR;
    }
}

/* ctl_store_exists - has the environment been created already? */
static bool ctl_store_exists(const char *dir)
{
    char *path = xasprintf("%s/data.mdb", dir);
    struct stat st;
    bool ok = stat(path, &st) == 0;

    free(path);
    return ok;
}

/* ctl_store - open the store once; read-only when write is false and it exists. */
int ctl_store(struct ctl *c, bool write)
{
    struct store_opts o;
    char err[512];
    int r;

    if (c->st != NULL && (c->st_write || !write))
        return EX_OK;
    if (c->st != NULL) {
        store_close(c->st);
        c->st = NULL;
    }
    memset(&o, 0, sizeof(o));
    o.dir = c->cf.state_dir;
    o.map_size = c->cf.map_size;
    o.map_size_max = c->cf.map_size_max;
    o.readonly = !write && ctl_store_exists(c->cf.state_dir);
    err[0] = '\0';
    if ((r = store_open(&c->st, &o, err, sizeof(err))) != STORE_OK) {
        ctl_err("cannot open the queue in %s: %s (hint: check state_dir in %s and that you may "
                "%s it)",
                c->cf.state_dir, err[0] != '\0' ? err : store_strerror(r), c->conf_file,
                o.readonly ? "read" : "write");
        c->st = NULL;
        return r == STORE_VERSION || r == STORE_CORRUPT ? EX_SOFTWARE : EX_UNAVAILABLE;
    }
    c->st_write = !o.readonly;
    return EX_OK;
}
