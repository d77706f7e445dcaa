/*
 * status.c - filling hopper_status, the names of the codes, and claim
 * tokens as hex. Filling a status never allocates, so running out of
 * memory can always be reported.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client_int.h"

static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *
hopper_status_str(int code)
{
    if (code < 0 ||
        (size_t)code >= sizeof(code_names) / sizeof(code_names[0])) {
        return "UNKNOWN_CODE";
    }
    return code_names[code];
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
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < sizeof(t->b); i++) {
        out[2 * i] = hex[t->b[i] >> 4];
        out[2 * i + 1] = hex[t->b[i] & 0x0f];
    }
    out[32] = '\0';
}

static int
hex_value(char ch)
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

int
hopper_token_parse(const char *hex, hopper_token *out)
{
    hopper_token t;

    if (hex == NULL || out == NULL || strlen(hex) != 2 * sizeof(t.b)) {
        return HOPPER_INVALID_ARGUMENT;
    }
    for (size_t i = 0; i < sizeof(t.b); i++) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return HOPPER_INVALID_ARGUMENT;
        }
        t.b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = t;
    return HOPPER_OK;
}
