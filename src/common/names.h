/*
 * names.h - validation of the names and strings that reach keys or records:
 * scope, lane and target names, and UTF-8 text. Bad input is rejected, never
 * shortened or repaired.
 */
#ifndef HP_COMMON_NAMES_H
#define HP_COMMON_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "common/str.h"

#define HP_NAME_MAX 64

/* 1..HP_NAME_MAX bytes of [A-Za-z0-9._:-]. */
bool hp_name_valid(const char *p, size_t len);

/* HP_OK for a valid name; otherwise INVALID_ARGUMENT/BAD_NAME, saying what
 * a name of this kind ("scope", "lane", ...) must be. */
HP_MUST_USE hp_code hp_name_check(hp_str name, const char *what, hp_status *st);

/* The same for a target, which may also be empty (untargeted). */
HP_MUST_USE hp_code hp_target_check(hp_str target, hp_status *st);

/* Well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) without NUL. */
bool hp_utf8_valid(const char *p, size_t len);

/* HP_OK for text of at most max bytes that hp_utf8_valid takes; otherwise
 * INVALID_ARGUMENT with reason, saying what the text ("consumer", ...)
 * must be. */
HP_MUST_USE hp_code hp_text_check(hp_str text, size_t max, const char *what,
                                  const char *reason, hp_status *st);

/* The length of the longest prefix of p[0..len) that hp_utf8_valid takes:
 * where to cut text quoted back to a client, so a reply stays decodable by
 * strict proto3 decoders (protobuf's string fields must be UTF-8). */
size_t hp_utf8_prefix(const char *p, size_t len);

/* A lane named by value: what the store's wake notes and lane cache and
 * the broker's wake-ups and parked claims are keyed by. The names are
 * valid ones (at most HP_NAME_MAX bytes each). */
typedef struct hp_lane_key {
    uint8_t scope_len, lane_len;
    char scope[HP_NAME_MAX];
    char lane[HP_NAME_MAX];
} hp_lane_key;

void hp_lane_key_set(hp_lane_key *k, hp_str scope, hp_str lane);

/* Whether k names (scope, lane). */
bool hp_lane_key_is(const hp_lane_key *k, hp_str scope, hp_str lane);

static inline hp_str
hp_lane_key_scope(const hp_lane_key *k)
{
    hp_str s = { k->scope, k->scope_len };
    return s;
}

static inline hp_str
hp_lane_key_lane(const hp_lane_key *k)
{
    hp_str s = { k->lane, k->lane_len };
    return s;
}

#endif
