/*
 * log.h - one line per event on stderr, as key=value pairs after a level
 * and a time. Callers pass values that are safe to print: never tokens,
 * keys or payloads. Messages are short and lower-case, like statuses.
 */
#ifndef HP_COMMON_LOG_H
#define HP_COMMON_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/compiler.h"

typedef enum hp_log_level {
    HP_LOG_ERROR = 0,
    HP_LOG_WARN = 1,
    HP_LOG_INFO = 2,
    HP_LOG_DEBUG = 3,
} hp_log_level;

/* GLOBAL: the log threshold is set once by main before threads start. */
void hp_log_set_level(hp_log_level level);
hp_log_level hp_log_get_level(void);

typedef enum hp_log_format {
    HP_LOG_KV = 0,   /* ts=... level=... msg="event" key=value ... */
    HP_LOG_JSON = 1, /* {"ts":"...","level":"...","msg":"event","key":...} */
} hp_log_format;

/* GLOBAL: like the level, set once by main before threads start. */
void hp_log_set_format(hp_log_format format);

/* Parses "kv|json"; returns -1 for anything else. */
int hp_log_parse_format(const char *s, hp_log_format *out);

/* Parses "error|warn|info|debug"; returns -1 for anything else. */
int hp_log_parse_level(const char *s, hp_log_level *out);

/* Writes `ts=... level=... msg="event" <fmt...>` as one line. fmt holds the
 * key=value pairs that follow the event. */
void hp_log(hp_log_level level, const char *event, const char *fmt, ...)
    HP_PRINTF(3, 4);

#define HP_LOG_ENABLED(lvl) ((lvl) <= hp_log_get_level())

/*
 * At most one line per interval for an event that can repeat with every
 * request (a warning on each Ping): the first occurrence is due, those
 * within interval_ms after it are only counted, and the first one after
 * that is due again and reports the count. Time is passed in (the
 * broker's clock, which tests step). Zeroed memory is a ready
 * hp_log_every; any thread may call hp_log_every_due.
 */
typedef struct hp_log_every {
    _Atomic uint64_t next_ms;    /* when a line may be written again */
    _Atomic uint64_t suppressed; /* occurrences since the last line */
} hp_log_every;

/* True when the caller should write its line now; *suppressed then holds
 * how many occurrences were left out since the previous line. */
bool hp_log_every_due(hp_log_every *e, uint64_t now_ms, uint64_t interval_ms,
                      uint64_t *suppressed);

#endif
