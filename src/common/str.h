/*
 * str.h - a borrowed byte string: pointer and length, never NUL-terminated
 * by contract. Names and texts cross module borders as hp_str because wire
 * strings may hold a NUL that must be seen (and rejected), not cut.
 */
#ifndef HP_COMMON_STR_H
#define HP_COMMON_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct hp_str {
    const char *p;
    size_t len;
} hp_str;

/* A string literal as hp_str, without its NUL. */
#define HP_S(lit) ((hp_str){ (lit), sizeof(lit) - 1 })

static inline hp_str
hp_str_c(const char *s)
{
    hp_str r = { s, s != NULL ? strlen(s) : 0 };
    return r;
}

static inline bool
hp_str_eq(hp_str a, hp_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

#endif
