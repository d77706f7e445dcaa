/*
 * log.c - a line is formatted into one buffer and written with a single
 * write(2), so lines from different threads never interleave.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* GLOBAL: read by every thread, written by main before threads start (and
 * by tests); atomic so a late change is still well-defined. */
static _Atomic int log_level = HP_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* GLOBAL: as log_level. */
static _Atomic int log_format = HP_LOG_KV;

void
hp_log_set_format(hp_log_format format)
{
    atomic_store(&log_format, (int)format);
}

int
hp_log_parse_format(const char *s, hp_log_format *out)
{
    if (strcmp(s, "kv") == 0) {
        *out = HP_LOG_KV;
    } else if (strcmp(s, "json") == 0) {
        *out = HP_LOG_JSON;
    } else {
        return -1;
    }
    return 0;
}

/* Appends s[0, n) to out as the inside of a JSON string. */
static size_t
json_str(char *out, size_t len, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && len + 7 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[len++] = '\\';
            out[len++] = (char)ch;
        } else if (ch < 0x20) {
            len += (size_t)snprintf(out + len, cap - len, "\\u%04x", ch);
        } else {
            out[len++] = (char)ch;
        }
    }
    return len;
}

/* Rewrites a key=value line (what hp_log formats) as one JSON object.
 * A value is a "quoted string" (ending at a quote followed by a space or
 * the end) or a bare word; bare words of digits become numbers. */
static size_t
kv_to_json(const char *kv, size_t n, char *out, size_t cap)
{
    size_t len = 0, i = 0;
    out[len++] = '{';
    while (i < n && len + 16 < cap) {
        while (i < n && kv[i] == ' ') {
            i++;
        }
        size_t k = i;
        while (i < n && kv[i] != '=' && kv[i] != ' ') {
            i++;
        }
        if (i >= n || kv[i] != '=' || i == k) {
            break; /* not key=value: the rest is left out */
        }
        size_t klen = i - k, v, vlen;
        bool quoted = ++i < n && kv[i] == '"';
        if (quoted) {
            v = ++i;
            while (i < n &&
                   !(kv[i] == '"' && (i + 1 == n || kv[i + 1] == ' '))) {
                i++;
            }
            vlen = i - v;
            i++;
        } else {
            v = i;
            while (i < n && kv[i] != ' ') {
                i++;
            }
            vlen = i - v;
        }
        bool number = !quoted && vlen > 0 && vlen < 16;
        for (size_t j = 0; number && j < vlen; j++) {
            number = kv[v + j] >= '0' && kv[v + j] <= '9';
        }
        if (len > 1) {
            out[len++] = ',';
        }
        out[len++] = '"';
        len = json_str(out, len, cap - 4, kv + k, klen);
        out[len++] = '"';
        out[len++] = ':';
        if (!number) {
            out[len++] = '"';
        }
        len = json_str(out, len, cap - 4, kv + v, vlen);
        if (!number) {
            out[len++] = '"';
        }
    }
    out[len++] = '}';
    return len;
}

bool
hp_log_every_due(hp_log_every *e, uint64_t now_ms, uint64_t interval_ms,
                 uint64_t *suppressed)
{
    uint64_t next = atomic_load(&e->next_ms);

    /* Of threads racing past next, only the one that moves it logs. */
    if (now_ms < next || !atomic_compare_exchange_strong(
                             &e->next_ms, &next, now_ms + interval_ms)) {
        atomic_fetch_add(&e->suppressed, 1);
        return false;
    }
    *suppressed = atomic_exchange(&e->suppressed, 0);
    return true;
}

void
hp_log_set_level(hp_log_level level)
{
    atomic_store(&log_level, (int)level);
}

hp_log_level
hp_log_get_level(void)
{
    return (hp_log_level)atomic_load(&log_level);
}

int
hp_log_parse_level(const char *s, hp_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (hp_log_level)i;
            return 0;
        }
    }
    return -1;
}

void
hp_log(hp_log_level level, const char *event, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    if (!HP_LOG_ENABLED(level)) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s "
                     "msg=\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     level_names[level], event);
    if (n < 0) {
        return;
    }
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (fmt != NULL && fmt[0] != '\0' && len < sizeof(line) - 2) {
        line[len++] = ' ';
        va_start(ap, fmt);
        n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
        va_end(ap);
        if (n > 0) {
            len += (size_t)n < sizeof(line) - len ? (size_t)n
                                                  : sizeof(line) - len - 1;
        }
    }
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }
    char json[2048];
    char *out = line;
    if (atomic_load(&log_format) == HP_LOG_JSON) {
        len = kv_to_json(line, len, json, sizeof(json) - 1);
        out = json;
    }
    out[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, out, len);
    (void)w; /* nowhere to report a failed log write */
}
