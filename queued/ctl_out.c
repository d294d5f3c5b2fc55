/*
 * ctl_out.c - queuectl output helpers: aligned tables, JSON, human units
 * (see ctl_out.h).  Nothing here talks to the store.
 */
#include "ctl_out.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

/* ctl_out_table_init - a table whose first row holds the headings. */
void ctl_out_table_init(struct ctl_out_table *t, size_t ncols, const char *const *heads)
{
    t->ncols = ncols;
    t->cells = NULL;
    t->nrows = 0;
    ctl_out_table_row(t, heads);
}

/* ctl_out_table_row - append a copy of one row. */
void ctl_out_table_row(struct ctl_out_table *t, const char *const *cells)
{
    t->cells = xrealloc(t->cells, sizeof(*t->cells) * t->ncols * (t->nrows + 1));
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = xstrdup(cells[i] != NULL ? cells[i] : "-");
    t->nrows++;
}

/* ctl_out_table_print - every row, each column as wide as its widest cell. */
void ctl_out_table_print(FILE *f, const struct ctl_out_table *t)
{
    size_t *w = xcalloc(t->ncols, sizeof(*w));

    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);
            if (n > w[c])
                w[c] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (c + 1 == t->ncols)
                fprintf(f, "%s\n", cell);
            else
                fprintf(f, "%-*s  ", (int)w[c], cell);
        }
    }
    free(w);
}

/* ctl_out_table_free - release every cell. */
void ctl_out_table_free(struct ctl_out_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

/* ctl_out_json_init - a writer on f, nothing written yet. */
void ctl_out_json_init(struct ctl_out_json *j, FILE *f)
{
    j->f = f;
    j->depth = 0;
    j->first[0] = true;
}

/* ctl_out_json_escape - s as a JSON string literal. */
void ctl_out_json_escape(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* ctl_out_json_key - the separator and, inside an object, the key. */
static void ctl_out_json_key(struct ctl_out_json *j, const char *key)
{
    if (!j->first[j->depth])
        fputc(',', j->f);
    j->first[j->depth] = false;
    if (key != NULL) {
        ctl_out_json_escape(j->f, key);
        fputc(':', j->f);
    }
}

/* ctl_out_json_open - start an object or array. */
void ctl_out_json_open(struct ctl_out_json *j, const char *key, char bracket)
{
    ctl_out_json_key(j, key);
    fputc(bracket, j->f);
    if (j->depth + 1 < CTL_OUT_JSON_DEPTH)
        j->depth++;
    j->first[j->depth] = true;
}

/* ctl_out_json_close - end the innermost object or array. */
void ctl_out_json_close(struct ctl_out_json *j, char bracket)
{
    fputc(bracket, j->f);
    if (j->depth > 0)
        j->depth--;
    if (j->depth == 0)
        fputc('\n', j->f);
}

/* ctl_out_json_str - "key":"value" (or null). */
void ctl_out_json_str(struct ctl_out_json *j, const char *key, const char *v)
{
    ctl_out_json_key(j, key);
    if (v == NULL)
        fputs("null", j->f);
    else
        ctl_out_json_escape(j->f, v);
}

/* ctl_out_json_int - "key":number. */
void ctl_out_json_int(struct ctl_out_json *j, const char *key, int64_t v)
{
    ctl_out_json_key(j, key);
    fprintf(j->f, "%" PRId64, v);
}

/* ctl_out_json_uint - "key":number. */
void ctl_out_json_uint(struct ctl_out_json *j, const char *key, uint64_t v)
{
    ctl_out_json_key(j, key);
    fprintf(j->f, "%" PRIu64, v);
}

/* ctl_out_json_bool - "key":true|false. */
void ctl_out_json_bool(struct ctl_out_json *j, const char *key, bool v)
{
    ctl_out_json_key(j, key);
    fputs(v ? "true" : "false", j->f);
}

/* ctl_out_fmt_age - the two largest units of secs. */
char *ctl_out_fmt_age(int64_t secs, char *buf, size_t len)
{
    static const struct {
        int64_t n;
        char unit;
    } u[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};

    if (secs < 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    for (size_t i = 0; i < 4; i++) {
        if (secs >= u[i].n || i == 3) {
            int64_t a = secs / u[i].n, rest = secs % u[i].n;
            if (i < 3 && rest / u[i + 1].n > 0)
                snprintf(buf, len, "%" PRId64 "%c%" PRId64 "%c", a, u[i].unit, rest / u[i + 1].n,
                         u[i + 1].unit);
            else
                snprintf(buf, len, "%" PRId64 "%c", a, u[i].unit);
            break;
        }
    }
    return buf;
}

/* ctl_out_fmt_size - bytes in binary units with one decimal below 10. */
char *ctl_out_fmt_size(uint64_t bytes, char *buf, size_t len)
{
    static const char units[] = "KMGTPE";
    double v = (double)bytes;
    size_t i = 0;

    if (bytes < 1024) {
        snprintf(buf, len, "%" PRIu64 "B", bytes);
        return buf;
    }
    v /= 1024;
    while (v >= 1024 && i + 1 < sizeof(units) - 1) {
        v /= 1024;
        i++;
    }
    snprintf(buf, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[i]);
    return buf;
}

/* ctl_out_fmt_duration - the largest unit that divides secs exactly. */
char *ctl_out_fmt_duration(int64_t secs, char *buf, size_t len)
{
    static const struct {
        int64_t n;
        char unit;
    } u[] = {{604800, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}};

    if (secs <= 0) {
        snprintf(buf, len, "%" PRId64, secs < 0 ? (int64_t)-1 : (int64_t)0);
        return buf;
    }
    for (size_t i = 0; i < 4; i++) {
        if (secs % u[i].n == 0) {
            snprintf(buf, len, "%" PRId64 "%c", secs / u[i].n, u[i].unit);
            return buf;
        }
    }
    snprintf(buf, len, "%" PRId64 "s", secs);
    return buf;
}

/* ctl_out_fmt_time - UTC "YYYY-MM-DD HH:MM:SSZ". */
char *ctl_out_fmt_time(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
    return buf;
}
