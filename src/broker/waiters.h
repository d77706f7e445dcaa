/*
 * waiters.h - the table of parked long-poll claims (longpoll.c is the part
 * that parks, wakes and ends them). A parked claim holds no thread: it is a
 * waiter keyed by its lane, kept oldest first, so a lane that gains k
 * messages hands them to its k oldest claims. Taking a waiter out is the
 * only way to get hold of it, and only one thread can take each one: that
 * thread owns it from then on. Thread-safe.
 */
#ifndef HP_BROKER_WAITERS_H
#define HP_BROKER_WAITERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/names.h"
#include "common/status.h"
#include "common/str.h"

typedef struct waiters waiters;

/* Embedded in the caller's object (HP_CONTAINER_OF gets back to it); the
 * table links it. Zero it before its first parking. */
typedef struct waiter {
    struct waiter *next, *prev; /* bucket chain, w->mtx */
    struct waiter *out_next;    /* lists handed back to the caller */
    uint64_t until_mono_ms;
    uint64_t seq; /* order of first parking; kept when parked again */
    uint32_t hash;
    uint32_t conn; /* the client connection it came on */
    hp_lane_key key;
} waiter;

/* At most max_parked claims in all and max_per_conn per connection. */
HP_MUST_USE hp_code waiters_new(uint32_t max_parked, uint32_t max_per_conn,
                                waiters **out, hp_status *st);
void waiters_free(waiters *w);

/* Parks wt, which came on connection conn, until until_mono_ms. A waiter
 * parked before (taken by a wake that found nothing for it) keeps its place
 * among the oldest.
 * RESOURCE_EXHAUSTED/TOO_MANY_WAITERS when max_parked claims, or
 * max_per_conn of this connection, are parked already, UNAVAILABLE/
 * SHUTTING_DOWN once the table is closed; wt is not parked then. */
HP_MUST_USE hp_code waiters_park(waiters *w, waiter *wt, uint32_t conn,
                                 hp_str scope, hp_str lane,
                                 uint64_t until_mono_ms, hp_status *st);

/* Unparks the oldest waiter of (scope, lane); NULL if there is none. */
waiter *waiters_take_oldest(waiters *w, hp_str scope, hp_str lane);

/* Unparks some waiter, whatever its lane; NULL if none is parked. */
waiter *waiters_take_any(waiters *w);

/* Unparks every waiter whose time is up at now. */
waiter *waiters_take_expired(waiters *w, uint64_t now_mono_ms);

/* Unparks every waiter that came on connection conn (it closed). */
waiter *waiters_take_conn(waiters *w, uint32_t conn);

/* Closes the table: unparks all, and refuses to park any more. */
waiter *waiters_close(waiters *w);

/* The earliest until_mono_ms of any parked waiter, or UINT64_MAX. */
uint64_t waiters_next_deadline(waiters *w);

size_t waiters_count(waiters *w);

#endif
