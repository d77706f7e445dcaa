/*
 * awaits.h - Await requests parked until their message is settled. An
 * Await whose message is neither delivered nor dead, and that may wait, is
 * parked here, holding no thread, until one of four things ends its
 * parking: a commit settles the message (wake), its wait runs out
 * (timeout), its client hangs up (cancel) or the broker stops (shutdown).
 * Whichever comes first ends it through one function (awaits.c,
 * await_complete), exactly once: the one thread that takes the Await out
 * of the table completes it. A woken Await runs again inside the commit
 * that settled its message, so its answer goes out with that commit.
 * Timeout, cancel and shutdown answer an empty response.
 *
 * The table is keyed by (scope, message id) and has the same budgets as
 * the long-poll claims' (--max-parked in all, 256 per connection), kept
 * apart from them: a wake of a lane never scans Awaits, and a settled
 * message never scans claims.
 *
 * Threads: awaits_park and awaits_wake run on the writer (the commit
 * queue's baton holder), awaits_cancel_conn on an I/O thread,
 * awaits_expire on the timer thread, awaits_stop on the thread that stops
 * the broker.
 */
#ifndef HP_BROKER_AWAITS_H
#define HP_BROKER_AWAITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/commitq.h"
#include "broker/listener.h"
#include "broker/waiters.h"
#include "common/id.h"
#include "common/status.h"
#include "common/str.h"
#include "store/store.h"

typedef struct awaits awaits;

/* Embedded in the caller's request, which fills op and rq before the
 * first parking and keeps them. */
typedef struct await_wait {
    waiter wt;              /* the table's link */
    commitq_op *op;         /* what a wake hands back to the writer */
    const listener_req *rq; /* whose client may hang up */
    bool ended;             /* the parking was completed (a check) */
} await_wait;

/* Answers the request that embeds aw, and frees it: an empty response
 * for HP_OK, else the error st (it could not be parked). Any thread. */
typedef void (*awaits_answer_fn)(await_wait *aw, hp_code code,
                                 const hp_status *st);

typedef struct awaits_opts {
    uint32_t max_parked;   /* Awaits parked at once, in all */
    uint32_t max_per_conn; /* and of one connection */
    awaits_answer_fn answer;
    /* An Await was parked: its deadline may be the next one to watch. */
    void (*parked)(void *arg);
    void *parked_arg;
} awaits_opts;

HP_MUST_USE hp_code awaits_new(const awaits_opts *o, awaits **out,
                               hp_status *st);

/* Frees a; nothing may be parked (awaits_stop first). NULL is a no-op. */
void awaits_free(awaits *a);

/*
 * Writer thread, right after the commit of the group in which aw's Await
 * found its message unsettled: parks it on (scope, id) until
 * until_mono_ms. Returns aw->op when it must run again at once instead
 * (the group itself settled the message, after the Await had looked), for
 * the caller to submit; NULL otherwise, and then aw belongs to this
 * module, which answers it in the end, or already has (refused:
 * RESOURCE_EXHAUSTED/TOO_MANY_WAITERS; the broker stopping; its client
 * gone).
 */
commitq_op *awaits_park(awaits *a, await_wait *aw, hp_str scope,
                        const hp_id *id, uint64_t until_mono_ms);

/* Writer thread, from the commit queue's extend hook: hands the Awaits of
 * the messages the group settled back to the writer, one op at a time,
 * inside the group's transaction. first as commitq_extend_fn's. */
commitq_op *awaits_wake(awaits *a, store_txn *t, bool first);

/* A client hung up: its parked Awaits are answered into the void now. */
void awaits_cancel_conn(awaits *a, uint32_t conn_id);

/* The earliest deadline of a parked Await, monotonic ms; UINT64_MAX for
 * none. */
uint64_t awaits_next_deadline(awaits *a);

/* Answers every Await whose wait has run out at now_mono_ms. */
void awaits_expire(awaits *a, uint64_t now_mono_ms);

/* Answers every parked Await, and from now on every one that would
 * park. */
void awaits_stop(awaits *a);

/* Awaits parked now (for /metrics). */
size_t awaits_count(awaits *a);

#endif
