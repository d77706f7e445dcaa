/*
 * status.c - filling hp_status without allocating, and code names.
 */
#include "common/status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hp_code
hp_status_set(hp_status *st, hp_code code, const char *reason, const char *fmt,
              ...)
{
    va_list ap;

    st->code = code;
    st->reason = reason;
    va_start(ap, fmt);
    /* Truncation is fine: the message is for people, the reason for code. */
    int n = vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        st->msg[0] = '\0';
    }
    return code;
}

void
hp_status_clear(hp_status *st)
{
    st->code = HP_OK;
    st->reason = "";
    st->msg[0] = '\0';
}

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
hp_code_name(hp_code code)
{
    if ((unsigned)code < HP_ARRAY_LEN(code_names)) {
        return code_names[code];
    }
    return "UNKNOWN_CODE";
}

hp_code
hp_status_from_errno(hp_status *st, int err, const char *what)
{
    char buf[96];
    /* strerror_r is the XSI variant under _POSIX_C_SOURCE. */
    if (strerror_r(err, buf, sizeof(buf)) != 0) {
        snprintf(buf, sizeof(buf), "errno %d", err);
    }
    switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG: /* a file-size limit (RLIMIT_FSIZE): full, for the writer */
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_DISK_FULL,
                             "%s: %s", what, buf);
    case ENOMEM:
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "%s: %s", what, buf);
    case EACCES:
    case EPERM:
    case EROFS:
    case ENOENT:
    case ENOTDIR:
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_IO_ERROR,
                             "%s: %s", what, buf);
    case EAGAIN:
    case EBUSY:
        return hp_status_set(st, HP_UNAVAILABLE, HP_R_BUSY, "%s: %s", what,
                             buf);
    default:
        return hp_status_set(st, HP_INTERNAL, HP_R_IO_ERROR, "%s: %s", what,
                             buf);
    }
}

void
hp_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "hopper: assertion failed: %s (%s:%d)\n", cond, file, line);
    abort();
}
