/*
 * names.h - validation of the names and strings that reach keys or records:
 * scope, lane and target names, and UTF-8 text. Bad input is rejected, never
 * shortened or repaired.
 */
#ifndef HP_COMMON_NAMES_H
#define HP_COMMON_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define HP_NAME_MAX 64

/* 1..HP_NAME_MAX bytes of [A-Za-z0-9._:-]. */
bool hp_name_valid(const char *p, size_t len);

/* Well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) without NUL. */
bool hp_utf8_valid(const char *p, size_t len);

/* The length of the longest prefix of p[0..len) that hp_utf8_valid takes:
 * where to cut text quoted back to a client, so a reply stays decodable by
 * strict proto3 decoders (protobuf's string fields must be UTF-8). */
size_t hp_utf8_prefix(const char *p, size_t len);

#endif
