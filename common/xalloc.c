/*
 * xalloc.c - die-on-exhaustion wrappers around malloc and friends.
 */
#include "xalloc.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* xmalloc - malloc or panic. */
void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        log_panic("out of memory allocating %zu bytes", n);
    return p;
}

/* xcalloc - calloc or panic. */
void *xcalloc(size_t nmemb, size_t n)
{
    void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);

    if (p == NULL)
        log_panic("out of memory allocating %zu x %zu bytes", nmemb, n);
    return p;
}

/* xrealloc - realloc or panic. */
void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        log_panic("out of memory reallocating %zu bytes", n);
    return q;
}

/* xstrdup - strdup or panic. */
char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

/* xstrndup - copy at most n bytes of s, NUL-terminated. */
char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* xasprintf - formatted allocation or panic. */
char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        log_panic("xasprintf: bad format %s", fmt);
    p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
