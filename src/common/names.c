/*
 * names.c - byte-level validators; they read exactly len bytes and never
 * rely on a terminating NUL, because wire strings may contain one.
 */
#include "common/names.h"

#include <stdint.h>
#include <string.h>

bool
hp_name_valid(const char *p, size_t len)
{
    if (p == NULL || len == 0 || len > HP_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
                  c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

hp_code
hp_name_check(hp_str name, const char *what, hp_status *st)
{
    if (hp_name_valid(name.p, name.len)) {
        return HP_OK;
    }
    return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME,
                         "%s name must be 1-%d of [A-Za-z0-9._:-]", what,
                         HP_NAME_MAX);
}

hp_code
hp_target_check(hp_str target, hp_status *st)
{
    if (target.len == 0 || hp_name_valid(target.p, target.len)) {
        return HP_OK;
    }
    return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME,
                         "target name must be empty or 1-%d of "
                         "[A-Za-z0-9._:-]",
                         HP_NAME_MAX);
}

hp_code
hp_text_check(hp_str text, size_t max, const char *what, const char *reason,
              hp_status *st)
{
    if (text.len <= max && hp_utf8_valid(text.p, text.len)) {
        return HP_OK;
    }
    return hp_status_set(st, HP_INVALID_ARGUMENT, reason,
                         "%s must be UTF-8 without NUL, at most %zu bytes",
                         what, max);
}

size_t
hp_utf8_prefix(const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i];
        if (c == 0) {
            return i;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (len - i <= n) {
            return i;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return i;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return i;
        }
        i += n + 1;
    }
    return len;
}

bool
hp_utf8_valid(const char *p, size_t len)
{
    return hp_utf8_prefix(p, len) == len;
}

void
hp_lane_key_set(hp_lane_key *k, hp_str scope, hp_str lane)
{
    k->scope_len = (uint8_t)scope.len;
    memcpy(k->scope, scope.p, scope.len);
    k->lane_len = (uint8_t)lane.len;
    memcpy(k->lane, lane.p, lane.len);
}

bool
hp_lane_key_is(const hp_lane_key *k, hp_str scope, hp_str lane)
{
    return k->scope_len == scope.len && k->lane_len == lane.len &&
           memcmp(k->scope, scope.p, scope.len) == 0 &&
           memcmp(k->lane, lane.p, lane.len) == 0;
}
