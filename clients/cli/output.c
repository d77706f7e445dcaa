/*
 * output.c - names of enums, byte encodings, times, and aligned tables.
 * JSON objects and key/value blocks are in render.c.
 */
#include "output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const state_names[] = { "any",     "pending",   "delayed",
                                           "claimed", "delivered", "dead" };
static const char *const backoff_names[] = { "exponential", "linear",
                                             "constant" };

const char *
out_state_name(int state)
{
    if (state < 0 || state > HOPPER_STATE_DEAD) {
        return "unknown";
    }
    return state_names[state];
}

int
out_state_parse(const char *s)
{
    for (int i = 0; i <= HOPPER_STATE_DEAD; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *
out_backoff_name(int backoff)
{
    if (backoff < 0 || backoff > HOPPER_BACKOFF_CONSTANT) {
        return "unknown";
    }
    return backoff_names[backoff];
}

int
out_backoff_parse(const char *s)
{
    for (int i = 0; i <= HOPPER_BACKOFF_CONSTANT; i++) {
        if (strcmp(s, backoff_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* Length of the UTF-8 sequence at p (1-4), or 0 when malformed. */
static size_t
utf8_seq(const unsigned char *p, size_t left)
{
    unsigned char b = p[0];
    size_t n;
    unsigned lo = 0x80;
    unsigned hi = 0xbf;

    if (b < 0x80) {
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        n = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        lo = b == 0xe0 ? 0xa0 : 0x80; /* no overlongs */
        hi = b == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        lo = b == 0xf0 ? 0x90 : 0x80;
        hi = b == 0xf4 ? 0x8f : 0xbf; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (left < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

bool
out_utf8_valid(const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t i = 0;

    while (i < len) {
        size_t n = utf8_seq(s + i, len - i);

        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

char *
out_base64(const void *p, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    char *o = out;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)s[i] << 16;

        v |= i + 1 < len ? (unsigned)s[i + 1] << 8 : 0;
        v |= i + 2 < len ? s[i + 2] : 0;
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

const char *
out_time(uint64_t ms, char buf[40])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    size_t len;

    if (ms == 0 || gmtime_r(&secs, &tm) == NULL ||
        (len = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        return "-";
    }
    snprintf(buf + len, 40 - len, ".%03uZ", (unsigned)(ms % 1000));
    return buf;
}

char *
out_preview(const void *p, size_t len, size_t max_chars)
{
    const unsigned char *s = p;
    char *out;
    size_t o = 0;
    size_t chars = 0;
    size_t i = 0;

    if (!out_utf8_valid(p, len)) {
        char *b64 = out_base64(p, len < max_chars ? len : max_chars);
        size_t n = b64 != NULL ? strlen(b64) : 0;

        if ((out = malloc(n + 16)) != NULL) {
            snprintf(out, n + 16, "base64:%s%s", b64 != NULL ? b64 : "",
                     len > max_chars ? "..." : "");
        }
        free(b64);
        return out;
    }
    if ((out = malloc(4 * max_chars + 4)) == NULL) {
        return NULL;
    }
    while (i < len && chars < max_chars) {
        size_t n = utf8_seq(s + i, len - i);

        if (n == 1 && (s[i] < 0x20 || s[i] == 0x7f)) {
            out[o++] = '.'; /* keep the table on one line, and escapes off */
        } else {
            memcpy(out + o, s + i, n);
            o += n;
        }
        i += n;
        chars++;
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* ---- tables ---- */

#define TABLE_MAX_COLS 12

struct out_table {
    size_t ncols;
    unsigned right_mask;
    size_t n_rows; /* including the header row */
    size_t cap;
    char **cells; /* n_rows * ncols */
};

static size_t
display_width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++) {
        w += ((unsigned char)*s & 0xc0) != 0x80; /* count code points */
    }
    return w;
}

out_table *
out_table_new(size_t ncols, const char *const *headers, unsigned right_mask)
{
    out_table *t;

    if (ncols == 0 || ncols > TABLE_MAX_COLS ||
        (t = calloc(1, sizeof(*t))) == NULL) {
        return NULL;
    }
    t->ncols = ncols;
    t->right_mask = right_mask;
    if (out_table_row(t, headers) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

int
out_table_row(out_table *t, const char *const *cells)
{
    if (t->n_rows == t->cap) {
        size_t cap = t->cap != 0 ? 2 * t->cap : 16;
        char **grown = realloc(t->cells, cap * t->ncols * sizeof(char *));

        if (grown == NULL) {
            return -1;
        }
        t->cells = grown;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        t->cells[t->n_rows * t->ncols + i] =
            strdup(cells[i] != NULL ? cells[i] : "");
    }
    t->n_rows++;
    return 0;
}

static void
print_row(const out_table *t, size_t r, const size_t *width)
{
    for (size_t i = 0; i < t->ncols; i++) {
        const char *cell = t->cells[r * t->ncols + i];
        size_t pad;
        bool last = i + 1 == t->ncols;

        cell = cell != NULL ? cell : "?";
        pad = width[i] - display_width(cell);
        if (t->right_mask & (1u << i)) {
            printf("%*s%s", (int)pad, "", cell);
        } else {
            printf("%s%*s", cell, last ? 0 : (int)pad, "");
        }
        fputs(last ? "\n" : "  ", stdout);
    }
}

void
out_table_print(const out_table *t)
{
    size_t width[TABLE_MAX_COLS] = { 0 };

    if (out_table_rows(t) == 0) {
        return;
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t i = 0; i < t->ncols; i++) {
            const char *cell = t->cells[r * t->ncols + i];
            size_t w = cell != NULL ? display_width(cell) : 1;

            width[i] = w > width[i] ? w : width[i];
        }
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        print_row(t, r, width);
    }
}

size_t
out_table_rows(const out_table *t)
{
    return t != NULL && t->n_rows > 0 ? t->n_rows - 1 : 0;
}

void
out_table_free(out_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n_rows * t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
}
