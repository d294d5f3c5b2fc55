/*
 * store_codec.c - record encoding and decoding, fixed-width keys.
 *
 * Records are a version byte followed by fields: u8, u32 and u64 in
 * big-endian order, strings as u16 length plus bytes (no NUL).  The writer
 * grows a malloc'd buffer (oom is sticky and checked once by the caller);
 * the reader never reads past the value and sets a sticky "bad" flag on any
 * overrun, over-long string or embedded NUL, so a damaged record decodes
 * to STORE_CORRUPT instead of a crash.
 */
#include "store_private.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* store_wb_init - an empty writer. */
void store_wb_init(struct store_wbuf *w)
{
    memset(w, 0, sizeof(*w));
}

/* store_wb_free - release the writer's buffer. */
void store_wb_free(struct store_wbuf *w)
{
    free(w->p);
    memset(w, 0, sizeof(*w));
}

/* store_grow - room for element n of a doubling array of elem-sized items. */
void *store_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first)
{
    size_t ncap;
    void *p;

    if (n < *cap)
        return arr;
    ncap = *cap ? *cap * 2 : first;
    while (ncap <= n)
        ncap *= 2;
    if (ncap > SIZE_MAX / elem || (p = realloc(arr, ncap * elem)) == NULL)
        return NULL;
    *cap = ncap;
    return p;
}

/* store_wb_room - make room for n more bytes; false (and oom) on failure. */
static bool store_wb_room(struct store_wbuf *w, size_t n)
{
    uint8_t *p;

    if (w->oom)
        return false;
    if (n == 0)
        return true;
    if ((p = store_grow(w->p, &w->cap, w->len + n - 1, 1, 256)) == NULL) {
        w->oom = true;
        return false;
    }
    w->p = p;
    return true;
}

/* store_wb_bytes - append raw bytes. */
static void store_wb_bytes(struct store_wbuf *w, const void *b, size_t n)
{
    if (store_wb_room(w, n)) {
        if (n)
            memcpy(w->p + w->len, b, n);
        w->len += n;
    }
}

/* store_wb_u8 - append one byte. */
void store_wb_u8(struct store_wbuf *w, unsigned v)
{
    uint8_t b = (uint8_t)v;

    store_wb_bytes(w, &b, 1);
}

/* store_wb_u32 - append a big-endian u32. */
void store_wb_u32(struct store_wbuf *w, uint32_t v)
{
    uint8_t b[4];

    store_be32(b, v);
    store_wb_bytes(w, b, 4);
}

/* store_wb_u64 - append a big-endian u64. */
void store_wb_u64(struct store_wbuf *w, uint64_t v)
{
    uint8_t b[8];

    store_be64(b, v);
    store_wb_bytes(w, b, 8);
}

/* store_wb_str - append a u16-length-prefixed string (NULL = ""). */
void store_wb_str(struct store_wbuf *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    uint8_t b[2];

    if (n > 0xffff) {
        w->oom = true;
        return;
    }
    b[0] = (uint8_t)(n >> 8);
    b[1] = (uint8_t)n;
    store_wb_bytes(w, b, 2);
    store_wb_bytes(w, s, n);
}

/* store_rb_init - a reader over an LMDB value. */
void store_rb_init(struct store_rbuf *r, const MDB_val *v)
{
    r->p = v->mv_data;
    r->len = v->mv_size;
    r->off = 0;
    r->bad = false;
}

/* store_rb_take - n bytes or NULL (bad) when the value is too short. */
static const uint8_t *store_rb_take(struct store_rbuf *r, size_t n)
{
    const uint8_t *p;

    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return NULL;
    }
    p = r->p + r->off;
    r->off += n;
    return p;
}

/* store_rb_u8 - one byte (0 when bad). */
unsigned store_rb_u8(struct store_rbuf *r)
{
    const uint8_t *p = store_rb_take(r, 1);

    return p ? *p : 0;
}

/* store_rb_u32 - a big-endian u32 (0 when bad). */
uint32_t store_rb_u32(struct store_rbuf *r)
{
    const uint8_t *p = store_rb_take(r, 4);

    return p ? store_get_be32(p) : 0;
}

/* store_rb_u64 - a big-endian u64 (0 when bad). */
uint64_t store_rb_u64(struct store_rbuf *r)
{
    const uint8_t *p = store_rb_take(r, 8);

    return p ? store_get_be64(p) : 0;
}

/* store_rb_strspan - the bytes of the next string, or NULL when bad. */
static const uint8_t *store_rb_strspan(struct store_rbuf *r, size_t *n)
{
    const uint8_t *lp = store_rb_take(r, 2);
    const uint8_t *p;

    if (lp == NULL)
        return NULL;
    *n = ((size_t)lp[0] << 8) | lp[1];
    if ((p = store_rb_take(r, *n)) == NULL)
        return NULL;
    if (*n && memchr(p, '\0', *n) != NULL) {
        r->bad = true;
        return NULL;
    }
    return p;
}

/* store_rb_str - the next string into out; too long for out = bad. */
void store_rb_str(struct store_rbuf *r, char *out, size_t outsz)
{
    size_t n;
    const uint8_t *p = store_rb_strspan(r, &n);

    out[0] = '\0';
    if (p == NULL)
        return;
    if (n >= outsz) {
        r->bad = true;
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

/* store_rb_strdup - the next string, malloc'd (NULL when bad or no memory). */
char *store_rb_strdup(struct store_rbuf *r)
{
    size_t n;
    const uint8_t *p = store_rb_strspan(r, &n);
    char *s;

    if (p == NULL)
        return NULL;
    if ((s = malloc(n + 1)) == NULL) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* store_rb_version - consume the version byte; false unless it is ours. */
bool store_rb_version(struct store_rbuf *r)
{
    return store_rb_u8(r) == STORE_REC_VERSION && !r->bad;
}

/* store_rb_end - true when the record decoded cleanly and exactly. */
bool store_rb_end(struct store_rbuf *r)
{
    return !r->bad && r->off == r->len;
}

/* store_be64 - write v big-endian. */
void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* store_get_be64 - read a big-endian u64. */
uint64_t store_get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* store_be32 - write v big-endian. */
void store_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* store_get_be32 - read a big-endian u32. */
uint32_t store_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* store_rkey - recipient key: msgid(8) idx(4). */
void store_rkey(uint8_t k[STORE_RKEY_LEN], store_msgid_t id, uint32_t idx)
{
    store_be64(k, id);
    store_be32(k + 8, idx);
}

/*
 * store_domain_rkey - the by_domain key: labels reversed, lower case, each
 * followed by a dot ("Sub.Example.COM" -> "com.example.sub.").  Returns the
 * key length, 0 when the domain is empty or too long.
 */
size_t store_domain_rkey(const char *domain, char out[STORE_RKEY_MAX])
{
    size_t len = strlen(domain), o = 0, end;

    while (len > 0 && domain[len - 1] == '.')
        len--;
    if (len == 0 || len >= STORE_DOMAIN_MAX)
        return 0;
    end = len;
    while (end > 0) {
        size_t start = end;

        while (start > 0 && domain[start - 1] != '.')
            start--;
        for (size_t i = start; i < end; i++)
            out[o++] = (char)tolower((unsigned char)domain[i]);
        out[o++] = '.';
        end = start > 0 ? start - 1 : 0;
    }
    out[o] = '\0';
    return o;
}

/* store_name_check - STORE_INVAL when s is NULL, empty or >= max bytes. */
int store_name_check(const char *s, size_t max)
{
    if (s == NULL || s[0] == '\0' || strlen(s) >= max)
        return STORE_INVAL;
    return STORE_OK;
}

/* store_lower - copy src lower-cased into dst (truncating to dstsz). */
void store_lower(char *dst, const char *src, size_t dstsz)
{
    size_t i;

    for (i = 0; src[i] && i + 1 < dstsz; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}
