/*
 * ctl_out.h - queuectl output: aligned text tables, a small JSON writer,
 * and human forms of ages, sizes and durations.
 *
 * Tables copy their cells; ctl_out_table_free() releases them.  The JSON
 * writer escapes every string (quotes, backslashes, control characters;
 * bytes >= 0x80 are passed through, so valid UTF-8 stays valid) and keeps
 * track of commas itself.
 */
#ifndef HM_CTL_OUT_H
#define HM_CTL_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ctl_out_table - rows of ncols strings printed in aligned columns. */
struct ctl_out_table {
    size_t ncols;
    char **cells; /* nrows * ncols, row-major; row 0 = the headings */
    size_t nrows;
};

/* ctl_out_table_init - a table with the given headings (ncols of them). */
void ctl_out_table_init(struct ctl_out_table *t, size_t ncols, const char *const *heads);
/* ctl_out_table_row - append one row of t->ncols cells (copied; NULL = "-"). */
void ctl_out_table_row(struct ctl_out_table *t, const char *const *cells);
/* ctl_out_table_print - headings and rows, columns padded; the last column is not padded. */
void ctl_out_table_print(FILE *f, const struct ctl_out_table *t);
void ctl_out_table_free(struct ctl_out_table *t);

#define CTL_OUT_JSON_DEPTH 16

/* ctl_out_json - a streaming JSON writer. */
struct ctl_out_json {
    FILE *f;
    int depth;
    bool first[CTL_OUT_JSON_DEPTH];
};

void ctl_out_json_init(struct ctl_out_json *j, FILE *f);
/* ctl_out_json_open - '{' or '[' (key NULL inside arrays and at the top). */
void ctl_out_json_open(struct ctl_out_json *j, const char *key, char bracket);
/* ctl_out_json_close - '}' or ']'; a newline after the outermost one. */
void ctl_out_json_close(struct ctl_out_json *j, char bracket);
void ctl_out_json_str(struct ctl_out_json *j, const char *key, const char *v); /* NULL -> null */
void ctl_out_json_int(struct ctl_out_json *j, const char *key, int64_t v);
void ctl_out_json_uint(struct ctl_out_json *j, const char *key, uint64_t v);
void ctl_out_json_bool(struct ctl_out_json *j, const char *key, bool v);
/* ctl_out_json_escape - write s as a quoted JSON string. */
void ctl_out_json_escape(FILE *f, const char *s);

/* ctl_out_fmt_age - seconds as "45s", "12m", "3h20m", "2d4h", "-" when < 0. */
char *ctl_out_fmt_age(int64_t secs, char *buf, size_t len);
/* ctl_out_fmt_size - bytes as "512B", "1.5K", "12M", "2.0G". */
char *ctl_out_fmt_size(uint64_t bytes, char *buf, size_t len);
/* ctl_out_fmt_duration - exact and re-parsable: "0", "90s", "15m", "14d", "2w". */
char *ctl_out_fmt_duration(int64_t secs, char *buf, size_t len);
/* ctl_out_fmt_time - a UTC time stamp "2026-11-23 15:04:05Z", "-" for 0. */
char *ctl_out_fmt_time(int64_t t, char *buf, size_t len);

#endif
