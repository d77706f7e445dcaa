/*
 * clock.h - the broker's notion of now: wall-clock milliseconds that never
 * run backwards. Leases and delays are wall-clock times stored on disk, so
 * they must survive a restart; a wall clock stepped back by NTP must not
 * make leases live longer, so now is the max of the last value handed out
 * and the system clock. A test can install its own source to jump time.
 */
#ifndef HP_COMMON_CLOCK_H
#define HP_COMMON_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

typedef uint64_t (*hp_clock_source)(void *arg);

typedef struct hp_clock {
    _Atomic uint64_t last;
    hp_clock_source source; /* NULL: CLOCK_REALTIME */
    void *arg;
} hp_clock;

void hp_clock_init(hp_clock *c, hp_clock_source source, void *arg);

/* Wall-clock ms, never less than any value returned before. Thread-safe. */
uint64_t hp_clock_now_ms(hp_clock *c);

/* CLOCK_REALTIME and CLOCK_MONOTONIC in ms, for sources and timeouts. */
uint64_t hp_wall_ms(void);
uint64_t hp_mono_ms(void);
/* CLOCK_MONOTONIC in microseconds, for latency histograms. */
uint64_t hp_mono_us(void);

#endif
