/*
 * output.h - how the hopper command shows things: aligned tables and
 * key/value blocks for people, one JSON object per line (built with
 * jansson) for programs. Payloads and results are text when they are valid
 * UTF-8, otherwise base64, and the JSON key says which ("payload" or
 * "payload_base64").
 */
#ifndef HOPPER_CLI_OUTPUT_H
#define HOPPER_CLI_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hopper/hopper.h"

/* ---- names of enums ---- */

/* "pending", ..., "dead"; "any" for HOPPER_STATE_ANY; "unknown" else. */
const char *out_state_name(int state);
/* The HOPPER_STATE_* for a name (as above), or -1. */
int out_state_parse(const char *s);
const char *out_backoff_name(int backoff);
int out_backoff_parse(const char *s);

/* ---- bytes ---- */

/* True when p[0..len) is well-formed UTF-8 (no overlongs, surrogates or
 * code points past U+10FFFF). */
bool out_utf8_valid(const void *p, size_t len);

/* Fresh NUL-terminated base64 of p; NULL without memory. (Cursors are
 * hex text through hopper_cursor_format and hopper_cursor_parse.) */
char *out_base64(const void *p, size_t len);

/* ISO 8601 UTC with milliseconds, or "-" for 0. */
const char *out_time(uint64_t ms, char buf[40]);

/* ---- JSON ---- */

/* Prints obj as one compact line on stdout and drops the reference. A
 * NULL obj (no memory to build it) is reported as an error on stderr and
 * the command exits 9 at once: its output would be missing a line. */
void out_json(json_t *obj);

/* The same on f (stderr for --json errors). */
void out_json_to(FILE *f, json_t *obj);

/* Sets key (text) or key_base64 on obj; nothing for empty bytes unless
 * always is set, which writes "". */
void out_json_bytes(json_t *obj, const char *key, const void *p, size_t len,
                    bool always);
json_t *out_json_u64(uint64_t v);
/* with_payload adds headers, payload and result (List without
 * with_payload does not fetch them). */
json_t *out_message_json(const hopper_message *m, bool with_token,
                         bool with_payload);
json_t *out_settings_json(const hopper_lane_settings *s);
json_t *out_stats_json(const hopper_lane_stats *s);

/* ---- people ---- */

void out_message_block(const hopper_message *m, bool claimed,
                       bool with_payload);
void out_settings_block(const hopper_lane_settings *s);
void out_stats_block(const hopper_lane_stats *s);

/* A short one-line preview of bytes (for table cells); fresh string. */
char *out_preview(const void *p, size_t len, size_t max_chars);

typedef struct out_table out_table;

/* A table of ncols columns with headers; columns whose bit is set in
 * right_mask are right-aligned. NULL without memory. */
out_table *out_table_new(size_t ncols, const char *const *headers,
                         unsigned right_mask);
/* Adds a row of ncols cells (copied). Returns -1 without memory. */
int out_table_row(out_table *t, const char *const *cells);
/* Prints the header and rows, two spaces between columns; nothing when
 * there are no rows. */
void out_table_print(const out_table *t);
/* Rows added so far, not counting the header. */
size_t out_table_rows(const out_table *t);
/* NULL is a no-op. */
void out_table_free(out_table *t);

#endif
