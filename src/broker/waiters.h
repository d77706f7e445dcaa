/*
 * waiters.h - long-poll claims parked until their lane gains a claimable
 * message or their wait runs out. A parked claim holds no thread: it is a
 * waiter in a table keyed by (scope, lane), kept oldest first, so a lane
 * that gains k messages hands them to its k oldest claims. The table only
 * holds them; the broker decides what a wake or a timeout does.
 * Thread-safe.
 */
#ifndef HP_BROKER_WAITERS_H
#define HP_BROKER_WAITERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/names.h"
#include "common/status.h"
#include "common/str.h"

typedef struct waiters waiters;

/* Embedded in the caller's request object; the table links it. */
typedef struct waiter {
    struct waiter *next, *prev; /* bucket chain, w->mtx */
    struct waiter *out_next;    /* lists handed back to the caller */
    uint64_t until_mono_ms;
    uint64_t seq; /* order of first parking; kept when parked again */
    uint32_t hash;
    uint32_t conn; /* the client connection it came on */
    uint8_t scope_len, lane_len;
    char scope[HP_NAME_MAX];
    char lane[HP_NAME_MAX];
    void *owner; /* the caller's request */
} waiter;

/* At most max_parked claims in all and max_per_conn per connection. */
HP_MUST_USE hp_code waiters_new(uint32_t max_parked, uint32_t max_per_conn,
                                waiters **out, hp_status *st);
void waiters_free(waiters *w);

/* Parks wt, which came on connection conn, until until_mono_ms. A waiter
 * parked before (taken by a wake that found nothing for it) keeps its place
 * among the oldest.
 * RESOURCE_EXHAUSTED/TOO_MANY_WAITERS when max_parked claims, or
 * max_per_conn of this connection, are parked already; wt is not parked
 * then. */
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

/* Unparks all (shutdown). */
waiter *waiters_take_all(waiters *w);

/* The earliest until_mono_ms of any parked waiter, or UINT64_MAX. */
uint64_t waiters_next_deadline(waiters *w);

size_t waiters_count(waiters *w);

#endif
