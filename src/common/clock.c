/*
 * clock.c - a monotonic view of the wall clock.
 */
#include "common/clock.h"

#include <time.h>

void
hp_clock_init(hp_clock *c, hp_clock_source source, void *arg)
{
    atomic_init(&c->last, 0);
    c->source = source;
    c->arg = arg;
}

static uint64_t
ts_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
hp_wall_ms(void)
{
    return ts_ms(CLOCK_REALTIME);
}

uint64_t
hp_mono_ms(void)
{
    return hp_mono_us() / 1000u;
}

uint64_t
hp_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
hp_clock_now_ms(hp_clock *c)
{
    uint64_t now = c->source != NULL ? c->source(c->arg) : hp_wall_ms();
    uint64_t last = atomic_load(&c->last);
    while (now > last) {
        if (atomic_compare_exchange_weak(&c->last, &last, now)) {
            return now;
        }
    }
    return last;
}
