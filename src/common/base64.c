/*
 * base64.c - RFC 4648 base64, both alphabets (see base64.h).
 */
#include "common/base64.h"

#include <stdbool.h>
#include <string.h>

static const char std_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
hp_b64_encode(const void *in, size_t len, char *out, unsigned flags)
{
    const uint8_t *p = in;
    const char *alpha = (flags & HP_B64_URL) ? url_alpha : std_alpha;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t rem = len - i;
        if (rem > 1) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (rem > 2) {
            v |= p[i + 2];
        }
        out[o++] = alpha[(v >> 18) & 63];
        out[o++] = alpha[(v >> 12) & 63];
        if (rem > 1) {
            out[o++] = alpha[(v >> 6) & 63];
        } else if (flags & HP_B64_PAD) {
            out[o++] = '=';
        }
        if (rem > 2) {
            out[o++] = alpha[v & 63];
        } else if (flags & HP_B64_PAD) {
            out[o++] = '=';
        }
    }
    out[o] = '\0';
    return o;
}

/* The value of c in alpha, or -1. */
static int
value_in(const char *alpha, char c)
{
    const char *p = memchr(alpha, c, 64);
    return c != '\0' && p != NULL ? (int)(p - alpha) : -1;
}

long
hp_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap,
              unsigned flags)
{
    bool loose = (flags & HP_B64_LOOSE) != 0;
    const char *alpha = url_alpha;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (loose) {
        /* Padding only at the end, and only as much as a last group of
         * two or three characters needs. */
        size_t pad = 0;
        while (pad < 2 && pad < len && in[len - 1 - pad] == '=') {
            pad++;
        }
        if (pad > 0 && len % 4 != 0) {
            return -1;
        }
        len -= pad;
        /* One alphabet per text: the first character that differs says
         * which. */
        for (size_t i = 0; i < len; i++) {
            if (in[i] == '+' || in[i] == '/') {
                alpha = std_alpha;
                break;
            }
            if (in[i] == '-' || in[i] == '_') {
                break;
            }
        }
    }
    if (len % 4 == 1) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        int v = value_in(alpha, in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap) {
                return -1;
            }
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero in strict mode: one text, one token. */
    if (!loose && bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        return -1;
    }
    return (long)o;
}
