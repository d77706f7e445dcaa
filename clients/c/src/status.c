/*
 * status.c - filling hopper_status, the names of the codes, and claim
 * tokens and cursors as hex (with the broker's own helpers for both).
 * Filling a status never allocates, so running out of memory can always
 * be reported.
 */
#include "common/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "common/hex.h"

const char *
hopper_status_str(int code)
{
    /* The broker's own table: the names are gRPC's, the same on both
     * sides of the wire. */
    return hp_code_name((hp_code)code);
}

const char *
hopper_version(void)
{
#define HC_STR2(x) #x
#define HC_STR(x)  HC_STR2(x)
    return HC_STR(HOPPER_VERSION_MAJOR) "." HC_STR(
        HOPPER_VERSION_MINOR) "." HC_STR(HOPPER_VERSION_PATCH);
}

int
hc_fail(hopper_status *st, int code, const char *reason, const char *fmt, ...)
{
    va_list ap;

    if (st == NULL) {
        return code;
    }
    st->code = code;
    snprintf(st->reason, sizeof(st->reason), "%s", reason);
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof(st->message), fmt, ap);
    va_end(ap);
    return code;
}

int
hc_no_memory(hopper_status *st)
{
    return hc_fail(st, HOPPER_RESOURCE_EXHAUSTED, HOPPER_R_NO_MEMORY,
                   "out of memory in the client");
}

int
hc_bad_arg(hopper_status *st, const char *what)
{
    return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_ARGUMENT, "%s",
                   what);
}

int
hc_bad_response(hopper_status *st, const char *what)
{
    return hc_fail(st, HOPPER_INTERNAL, HOPPER_R_BAD_RESPONSE,
                   "bad reply from broker: %s", what);
}

void
hopper_token_format(const hopper_token *t, char out[33])
{
    hp_hex_encode(t->b, sizeof(t->b), out);
}

int
hopper_token_parse(const char *hex, hopper_token *out)
{
    hopper_token t;

    if (hex == NULL || out == NULL ||
        hp_hex_decode(hex, strlen(hex), t.b, sizeof(t.b)) != 0) {
        return HOPPER_INVALID_ARGUMENT;
    }
    *out = t;
    return HOPPER_OK;
}

char *
hopper_cursor_format(const void *cursor, size_t len)
{
    char *out = malloc(2 * len + 1);

    if (out != NULL) {
        hp_hex_encode(cursor, len, out);
    }
    return out;
}

int
hopper_cursor_parse(const char *text, void **out, size_t *len)
{
    size_t n;
    void *p;

    if (text == NULL || out == NULL || len == NULL ||
        (n = strlen(text)) % 2 != 0) {
        return HOPPER_INVALID_ARGUMENT;
    }
    if ((p = malloc(n / 2 + 1)) == NULL) {
        return HOPPER_RESOURCE_EXHAUSTED;
    }
    if (hp_hex_decode(text, n, p, n / 2) != 0) {
        free(p);
        return HOPPER_INVALID_ARGUMENT;
    }
    *out = p;
    *len = n / 2;
    return HOPPER_OK;
}
