/*
 * hex.c - hexadecimal text, written and read without the C library's
 * locale-dependent character classes.
 */
#include "common/hex.h"

#include <stdint.h>

int
hp_hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

void
hp_hex_encode(const void *p, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = p;

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

int
hp_hex_decode(const char *hex, size_t hex_len, void *out, size_t out_len)
{
    uint8_t *b = out;

    if (hex_len != 2 * out_len) {
        return -1;
    }
    for (size_t i = 0; i < out_len; i++) {
        int hi = hp_hex_digit(hex[2 * i]);
        int lo = hp_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
