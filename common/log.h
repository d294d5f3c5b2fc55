/*
 * log.h - holdmx logging: one module for every program.
 *
 * Lines go to syslog (facility mail) or, in the foreground (-f), to stderr
 * as "prog[pid]: text".  Events about a message are keyed by its queue id,
 * Postfix style: "4F2A9C0001: from=<a@b.example>, size=4210, nrcpt=2".
 *
 * Grades: log_info/log_warn/log_error report events and keep going;
 * log_fatal is for environment or configuration problems (exit 1 after
 * logging); log_panic is for broken invariants (abort, core dump).
 * Anything that came from a peer must pass through log_printable() first.
 */
#ifndef HM_LOG_H
#define HM_LOG_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__GNUC__)
#define HM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HM_NORETURN __attribute__((noreturn))
#else
#define HM_PRINTF(a, b)
#define HM_NORETURN
#endif

/* log_open - set the program name and destination (stderr when foreground). */
void log_open(const char *prog, bool foreground);
/* log_set_verbose - enable log_debug output. */
void log_set_verbose(int level);
int log_verbose(void);
/* log_foreground - true when logging to stderr (-f). */
bool log_foreground(void);

void log_debug(const char *fmt, ...) HM_PRINTF(1, 2);
void log_info(const char *fmt, ...) HM_PRINTF(1, 2);
void log_warn(const char *fmt, ...) HM_PRINTF(1, 2);
void log_error(const char *fmt, ...) HM_PRINTF(1, 2);
void log_fatal(const char *fmt, ...) HM_PRINTF(1, 2) HM_NORETURN;
void log_panic(const char *fmt, ...) HM_PRINTF(1, 2) HM_NORETURN;

/*
 * log_printable - copy at most len bytes of peer-supplied text into out
 * (size outsz, always NUL-terminated), replacing control characters, bytes
 * >= 0x7f and anything else unsafe in a log line with '?'.  Returns out.
 */
char *log_printable(char *out, size_t outsz, const char *in, size_t len);

/* LOG_PEER_MAX - the longest peer string (after sanitising) put in a line. */
#define LOG_PEER_MAX 100

#endif
