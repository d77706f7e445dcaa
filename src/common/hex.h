/*
 * hex.h - bytes as hexadecimal text: key files, claim tokens, cursors and
 * the store's instance id. Lower-case out; either case in, and nothing but
 * hex digits: a stray byte is an error, never skipped.
 */
#ifndef HP_COMMON_HEX_H
#define HP_COMMON_HEX_H

#include <stddef.h>

/* The value of one hex digit of either case; -1 for any other byte. */
int hp_hex_digit(char ch);

/* Writes 2 * len lower-case hex digits and a NUL to out. */
void hp_hex_encode(const void *p, size_t len, char *out);

/* Decodes exactly 2 * out_len hex digits of hex[0..hex_len) into out;
 * -1, leaving out in an unspecified state, when hex_len is not 2 * out_len
 * or a byte is not a hex digit. */
int hp_hex_decode(const char *hex, size_t hex_len, void *out, size_t out_len);

#endif
