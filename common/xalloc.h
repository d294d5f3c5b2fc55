/*
 * xalloc.h - allocation that succeeds or does not return.
 *
 * For the daemons and tools: on exhaustion they log_panic(), so callers
 * never test for NULL.  storage/ does not use these (a library returns
 * status codes instead of exiting).
 */
#ifndef HM_XALLOC_H
#define HM_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
