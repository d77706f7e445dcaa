/*
 * reasons.h - the stable, machine-readable reason words carried in a status
 * next to its gRPC code. Clients match on these; never rename one. Spelled
 * once here so a typo fails to compile.
 */
#ifndef HP_COMMON_REASONS_H
#define HP_COMMON_REASONS_H

/* INVALID_ARGUMENT */
#define HP_R_BAD_NAME          "BAD_NAME"
#define HP_R_BAD_ID            "BAD_ID"
#define HP_R_BAD_TOKEN         "BAD_CLAIM_TOKEN"
#define HP_R_BAD_PRIORITY      "BAD_PRIORITY"
#define HP_R_BAD_MAX_ATTEMPTS  "BAD_MAX_ATTEMPTS"
#define HP_R_BAD_LEASE         "BAD_LEASE"
#define HP_R_BAD_DELAY         "BAD_DELAY"
#define HP_R_BAD_DEDUPE_KEY    "BAD_DEDUPE_KEY"
#define HP_R_BAD_HEADER        "BAD_HEADER"
#define HP_R_BAD_CURSOR        "BAD_CURSOR"
#define HP_R_BAD_LIMIT         "BAD_LIMIT"
#define HP_R_BAD_STATE         "BAD_STATE"
#define HP_R_BAD_SETTING       "BAD_SETTING"
#define HP_R_BAD_CONSUMER      "BAD_CONSUMER"
#define HP_R_BAD_ERROR_TEXT    "BAD_ERROR_TEXT"
#define HP_R_BAD_NACK          "BAD_NACK"
#define HP_R_EMPTY_BATCH       "EMPTY_BATCH"
#define HP_R_BATCH_TOO_LARGE   "BATCH_TOO_LARGE"
#define HP_R_PAYLOAD_TOO_LARGE "PAYLOAD_TOO_LARGE"
#define HP_R_RESULT_TOO_LARGE  "RESULT_TOO_LARGE"
#define HP_R_DUPLICATE_ID      "DUPLICATE_ID"
#define HP_R_BAD_CONFIG        "BAD_CONFIG"
#define HP_R_NUL_IN_STRING     "NUL_IN_STRING"
/* The HTTP API (docs/http.md): JSON that is not a request of the method,
 * a field the message does not have, a request HTTP cannot carry. */
#define HP_R_BAD_JSON         "BAD_JSON"
#define HP_R_UNKNOWN_FIELD    "UNKNOWN_FIELD"
#define HP_R_BAD_CONTENT_TYPE "BAD_CONTENT_TYPE"
#define HP_R_BAD_HTTP         "BAD_HTTP"

/* NOT_FOUND */
#define HP_R_NO_MESSAGE "NO_MESSAGE"
#define HP_R_NO_LANE    "NO_LANE"

/* FAILED_PRECONDITION */
#define HP_R_LOST_CLAIM     "LOST_CLAIM"
#define HP_R_NOT_DEAD       "NOT_DEAD"
#define HP_R_SCHEMA_TOO_NEW "SCHEMA_TOO_NEW"
#define HP_R_NOT_A_STORE    "NOT_A_STORE"

/* RESOURCE_EXHAUSTED */
#define HP_R_BODY_TOO_LARGE    "BODY_TOO_LARGE"
#define HP_R_TOO_MANY_REQUESTS "TOO_MANY_REQUESTS"
#define HP_R_MAP_FULL          "MAP_FULL"
#define HP_R_DISK_FULL         "DISK_FULL"
#define HP_R_READERS_FULL      "READERS_FULL"
#define HP_R_NO_MEMORY         "NO_MEMORY"

/* DATA_LOSS, INTERNAL, UNAVAILABLE */
#define HP_R_CORRUPT     "CORRUPT_RECORD"
#define HP_R_STORE_ERROR "STORE_ERROR"
#define HP_R_IO_ERROR    "IO_ERROR"
#define HP_R_BUSY        "BUSY"

#endif
