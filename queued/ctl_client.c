/*
 * ctl_client.c - blocking control-socket client and shared output helpers
 * for queuectl's queue/stats/site nouns.
 *
 * ctl_client_call() connects to <state_dir>/control, writes one request
 * line and reads one response line with poll() under a total time limit.
 * The helpers format sizes and ages for humans and strings for JSON.
 */
#include "ctl_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "xalloc.h"

/* ctl_client_path - "<state_dir>/control" (malloc'd). */
char *ctl_client_path(const struct conf *cf)
{
    return xasprintf("%s/control", cf->state_dir != NULL ? cf->state_dir : ".");
}

/* ctl_client_now_ms - monotonic clock in milliseconds. */
static int64_t ctl_client_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ctl_client_connect - connected AF_UNIX socket to the control path, or -1. */
static int ctl_client_connect(const struct conf *cf)
{
    struct sockaddr_un sun;
    char *path = ctl_client_path(cf);
    int fd = -1;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) < sizeof(sun.sun_path)) {
        memcpy(sun.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
            close(fd);
            fd = -1;
        }
    }
    free(path);
    return fd;
}

/* ctl_client_wait - poll fd for events until deadline; false on timeout. */
static bool ctl_client_wait(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    int64_t left = deadline - ctl_client_now_ms();

    if (left <= 0)
        return false;
    return poll(&p, 1, (int)left) == 1;
}

/* ctl_client_send - write all of buf before deadline. */
static bool ctl_client_send(int fd, const char *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n;

        if (!ctl_client_wait(fd, POLLOUT, deadline))
            return false;
        n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/* ctl_client_recv_line - read up to the first LF before deadline. */
static bool ctl_client_recv_line(int fd, char *reply, size_t replylen, int64_t deadline)
{
    size_t used = 0;

    while (used + 1 < replylen) {
        ssize_t n;
        char *nl;

        if (!ctl_client_wait(fd, POLLIN, deadline))
            return false;
        n = recv(fd, reply + used, replylen - 1 - used, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        used += (size_t)n;
        reply[used] = '\0';
        nl = strchr(reply, '\n');
        if (nl != NULL) {
            *nl = '\0';
            if (nl > reply && nl[-1] == '\r')
                nl[-1] = '\0';
            return true;
        }
    }
    return false;
}

/* ctl_client_call - one request, one response line; see ctl_client.h. */
int ctl_client_call(const struct conf *cf, const char *request, char *reply, size_t replylen,
                    int timeout_ms)
{
    int64_t deadline = ctl_client_now_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
    int fd = ctl_client_connect(cf);
    char *line;
    bool ok;

    if (replylen > 0)
        reply[0] = '\0';
    if (fd < 0)
        return CTL_CALL_DOWN;
    line = xasprintf("%s\n", request);
    ok = ctl_client_send(fd, line, strlen(line), deadline) &&
         ctl_client_recv_line(fd, reply, replylen, deadline);
    free(line);
    close(fd);
    return ok ? CTL_CALL_OK : CTL_CALL_BROKEN;
}

/* ctl_client_ok - true when a response line starts with "OK". */
bool ctl_client_ok(const char *reply)
{
    return strncmp(reply, "OK", 2) == 0 && (reply[2] == '\0' || reply[2] == ' ');
}

/* ctl_store_open - open cf's store; prints what to do on failure. */
int ctl_store_open(const struct conf *cf, bool readonly, struct store **st)
{
    struct store_opts o;
    char err[512] = "";
    int rc;

    memset(&o, 0, sizeof(o));
    o.dir = cf->state_dir;
    o.map_size = cf->map_size;
    o.map_size_max = cf->map_size_max;
    o.readonly = readonly;
    rc = store_open(st, &o, err, sizeof(err));
    if (rc == STORE_OK)
        return 0;
    fprintf(stderr, "queuectl: cannot open the queue in %s: %s\n",
            cf->state_dir != NULL ? cf->state_dir : "(no state_dir)",
            err[0] != '\0' ? err : store_strerror(rc));
    if (rc == STORE_VERSION)
        return EX_SOFTWARE;
    fprintf(stderr, "queuectl: check state_dir in %s and its permissions%s\n",
            cf->path != NULL ? cf->path : "the configuration",
            readonly ? " (queued creates the queue when it first starts)" : "");
    return rc == STORE_NOTFOUND ? EX_NOINPUT : EX_IOERR;
}

/* ctl_human_size - compact size for columns. */
const char *ctl_human_size(uint64_t bytes, char *buf, size_t len)
{
    static const char units[] = "KMGTP";
    double v = (double)bytes;
    int u = -1;

    if (bytes < 1024) {
        snprintf(buf, len, "%llu", (unsigned long long)bytes);
        return buf;
    }
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (v < 10)
        snprintf(buf, len, "%.1f%c", v, units[u]);
    else
        snprintf(buf, len, "%.0f%c", v, units[u]);
    return buf;
}

/* ctl_human_age - compact age for columns. */
const char *ctl_human_age(int64_t s, char *buf, size_t len)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, len, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm", (long long)(s / 60));
    else if (s < 86400)
        snprintf(buf, len, "%lldh", (long long)(s / 3600));
    else
        snprintf(buf, len, "%lldd", (long long)(s / 86400));
    return buf;
}

/* ctl_json_msg_open - the fields every message object starts with (no closing brace). */
void ctl_json_msg_open(FILE *f, const struct store_msg_info *m)
{
    char id[STORE_ID_LEN];

    fputs("{\"id\":", f);
    ctl_json_str(f, store_id_format(m->id, id));
    fputs(",\"site\":", f);
    ctl_json_str(f, m->site);
    fputs(",\"sender\":", f);
    ctl_json_str(f, m->sender);
}

/* ctl_json_str - s as a quoted, escaped JSON string (bytes >= 0x80 as \u00XX). */
void ctl_json_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");

    fputc('"', f);
    for (; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* ctl_iso_time - UTC time stamp. */
const char *ctl_iso_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
    return buf;
}

/* ctl_has_flag - true when flag appears in argv[from..argc). */
bool ctl_has_flag(int argc, char **argv, int from, const char *flag)
{
    int i;

    for (i = from; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return true;
    return false;
}

/* ctl_opt_value - the argument following option name, or NULL. */
const char *ctl_opt_value(int argc, char **argv, int from, const char *name)
{
    int i;

    for (i = from; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}
