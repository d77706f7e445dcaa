/*
 * status.h - how every fallible Hopper function reports failure: a gRPC code
 * (the numbers cross the wire as is), a stable reason word from reasons.h
 * and a short message for people. Filling a status never allocates, so even
 * out-of-memory can be reported.
 */
#ifndef HP_COMMON_STATUS_H
#define HP_COMMON_STATUS_H

#include "common/compiler.h"
#include "common/reasons.h"

/* gRPC's numbering; see DESIGN.md "Wire protocol". */
typedef enum hp_code {
    HP_OK = 0,
    HP_CANCELLED = 1,
    HP_UNKNOWN = 2,
    HP_INVALID_ARGUMENT = 3,
    HP_DEADLINE_EXCEEDED = 4,
    HP_NOT_FOUND = 5,
    HP_ALREADY_EXISTS = 6,
    HP_PERMISSION_DENIED = 7,
    HP_RESOURCE_EXHAUSTED = 8,
    HP_FAILED_PRECONDITION = 9,
    HP_ABORTED = 10,
    HP_OUT_OF_RANGE = 11,
    HP_UNIMPLEMENTED = 12,
    HP_INTERNAL = 13,
    HP_UNAVAILABLE = 14,
    HP_DATA_LOSS = 15,
    HP_UNAUTHENTICATED = 16,
} hp_code;

#define HP_STATUS_MSG_MAX 160

typedef struct hp_status {
    hp_code code;
    const char *reason;          /* static string such as HP_R_LOST_CLAIM */
    char msg[HP_STATUS_MSG_MAX]; /* for people; may be cut short */
} hp_status;

/* Fills *st and returns code. The message is printf-formatted and cut to
 * fit; reason must be a string with static storage (a HP_R_* word). */
HP_MUST_USE hp_code hp_status_set(hp_status *st, hp_code code,
                                  const char *reason, const char *fmt, ...)
    HP_PRINTF(4, 5);

/* Resets *st to OK with no reason and an empty message. */
void hp_status_clear(hp_status *st);

/* "OK", "INVALID_ARGUMENT", ...; "CODE_<n>" style text is never returned:
 * unknown numbers give "UNKNOWN_CODE". */
const char *hp_code_name(hp_code code);

/* Translates an errno value once, at the edge where it was produced. */
HP_MUST_USE hp_code hp_status_from_errno(hp_status *st, int err,
                                         const char *what);

#endif
