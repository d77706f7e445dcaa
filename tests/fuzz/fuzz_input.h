/*
 * fuzz_input.h - what the fuzz targets share: an invariant check that
 * stays on in optimised builds (assert() does not), and a reader that
 * turns the fuzzer's bytes into choices, the way LLVM's FuzzedDataProvider
 * does for C++. Reads past the end give zeros, so every input is usable.
 */
#ifndef HP_FUZZ_INPUT_H
#define HP_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken invariant is a finding: print it and abort, so libFuzzer keeps
 * the input as a crash file. */
#define FUZZ_CHECK(cond, ...)                                          \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, \
                    __LINE__, #cond);                                  \
            fprintf(stderr, __VA_ARGS__);                              \
            fputc('\n', stderr);                                       \
            abort();                                                   \
        }                                                              \
    } while (0)

typedef struct fuzz_in {
    const uint8_t *p;
    size_t len, off;
} fuzz_in;

static inline fuzz_in
fuzz_in_make(const uint8_t *p, size_t len)
{
    fuzz_in in = { p, len, 0 };
    return in;
}

static inline size_t
fuzz_left(const fuzz_in *in)
{
    return in->len - in->off;
}

static inline uint8_t
fuzz_u8(fuzz_in *in)
{
    return in->off < in->len ? in->p[in->off++] : 0;
}

static inline uint16_t
fuzz_u16(fuzz_in *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

static inline uint32_t
fuzz_u32(fuzz_in *in)
{
    uint32_t hi = fuzz_u16(in);
    return hi << 16 | fuzz_u16(in);
}

static inline uint64_t
fuzz_u64(fuzz_in *in)
{
    uint64_t hi = fuzz_u32(in);
    return hi << 32 | fuzz_u32(in);
}

/* Up to max bytes, as many as the next byte says; *len gets the count.
 * The pointer is into the input and may be NULL when *len is 0. */
static inline const uint8_t *
fuzz_bytes(fuzz_in *in, size_t max, size_t *len)
{
    size_t n = fuzz_u8(in);
    if (n > max) {
        n = max;
    }
    if (n > fuzz_left(in)) {
        n = fuzz_left(in);
    }
    const uint8_t *p = in->p + in->off;
    in->off += n;
    *len = n;
    return n > 0 ? p : NULL;
}

/* Everything not read yet. */
static inline const uint8_t *
fuzz_rest(fuzz_in *in, size_t *len)
{
    const uint8_t *p = in->p + in->off;
    *len = fuzz_left(in);
    in->off = in->len;
    return p;
}

/* Whether [p, p + n) lies inside [base, base + len). */
static inline int
fuzz_inside(const void *p, size_t n, const void *base, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    if (n == 0) {
        return 1;
    }
    return a >= b && a - b <= len && n <= len - (a - b);
}

#endif
