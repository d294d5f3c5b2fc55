/*
 * log.c - syslog or stderr logging with a graded error ladder.
 *
 * The daemons call log_open() once.  In the foreground the lines go to
 * stderr, unbuffered, prefixed "prog[pid]: "; otherwise to syslog with
 * facility LOG_MAIL.  Nothing here allocates, so logging works when memory
 * is exhausted.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static const char *log_prog = "holdmx";
static bool log_stderr = true;
static int log_level_verbose;

/* log_open - choose the destination for this process. */
void log_open(const char *prog, bool foreground)
{
    log_prog = prog;
    log_stderr = foreground;
    if (!foreground)
        openlog(prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* log_set_verbose - turn debug lines on (level > 0) or off. */
void log_set_verbose(int level)
{
    log_level_verbose = level;
}

/* log_verbose - the current debug level. */
int log_verbose(void)
{
    return log_level_verbose;
}

/* log_vemit - write one line at a syslog priority. */
static void log_vemit(int prio, const char *tag, const char *fmt, va_list ap)
{
    char line[2048];
    int n;

    n = vsnprintf(line, sizeof(line), fmt, ap);
    if (n < 0)
        return;
    if (log_stderr) {
        fprintf(stderr, "%s[%ld]: %s%s\n", log_prog, (long)getpid(), tag, line);
        fflush(stderr);
    } else {
        syslog(prio, "%s%s", tag, line);
    }
}

#define LOG_BODY(prio, tag)                                                   \
    do {                                                                      \
        va_list ap;                                                           \
        va_start(ap, fmt);                                                    \
        log_vemit(prio, tag, fmt, ap);                                        \
        va_end(ap);                                                           \
    } while (0)

/* log_foreground - true when lines go to stderr. */
bool log_foreground(void)
{
    return log_stderr;
}

/* log_debug - detail for developers, only when verbose. */
void log_debug(const char *fmt, ...)
{
    if (log_level_verbose <= 0)
        return;
    LOG_BODY(LOG_DEBUG, "");
}

/* log_info - a normal event. */
void log_info(const char *fmt, ...)
{
    LOG_BODY(LOG_INFO, "");
}

/* log_warn - something is wrong but service continues. */
void log_warn(const char *fmt, ...)
{
    LOG_BODY(LOG_WARNING, "warning: ");
}

/* log_error - an operation failed. */
void log_error(const char *fmt, ...)
{
    LOG_BODY(LOG_ERR, "error: ");
}

/* log_fatal - environment or configuration problem: log and exit(1). */
void log_fatal(const char *fmt, ...)
{
    LOG_BODY(LOG_CRIT, "fatal: ");
    exit(1);
}

/* log_panic - broken invariant: log and abort for a core dump. */
void log_panic(const char *fmt, ...)
{
    LOG_BODY(LOG_CRIT, "panic: ");
    abort();
}

/* log_printable - sanitise peer text for a log line. */
char *log_printable(char *out, size_t outsz, const char *in, size_t len)
{
    size_t i, o = 0;

    if (outsz == 0)
        return out;
    for (i = 0; in && i < len && in[i] && o + 1 < outsz; i++) {
        unsigned char c = (unsigned char)in[i];
        out[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    out[o] = '\0';
    return out;
}
