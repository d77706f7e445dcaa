/*
 * base64.h - bytes as base64 text (RFC 4648): the standard alphabet
 * (+/) or the URL-safe one (-_), padded or not. Tokens use unpadded
 * URL-safe text and decode it strictly (one text per token); the HTTP
 * API's JSON carries bytes fields in standard padded base64 and takes
 * either alphabet, padded or not, as protobuf's JSON mapping asks.
 */
#ifndef HP_COMMON_BASE64_H
#define HP_COMMON_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Flags of hp_b64_encode and hp_b64_decode. */
#define HP_B64_URL 0x1u /* the URL-safe alphabet (encode) */
#define HP_B64_PAD 0x2u /* write '=' padding (encode) */
#define HP_B64_LOOSE                                     \
    0x4u /* decode: either alphabet (not mixed), padding \
            optional, unused trailing bits ignored */

/* Characters hp_b64_encode writes for len bytes, padded, without the NUL:
 * an upper bound for the unpadded form. */
#define HP_B64_LEN(len) (((len) + 2) / 3 * 4)

/* Writes the text of in[0..len) and a NUL to out (HP_B64_LEN(len) + 1
 * bytes); returns its length. */
size_t hp_b64_encode(const void *in, size_t len, char *out, unsigned flags);

/* Decodes in[0..len) into out (room for cap bytes); the length, or -1 for
 * text that is not base64 or does not fit. Without HP_B64_LOOSE only
 * unpadded URL-safe text whose unused bits are zero is taken, so each
 * value has one text. */
long hp_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap,
                   unsigned flags);

#endif
