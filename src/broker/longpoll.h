/*
 * longpoll.h - long-poll claims. A Claim that found nothing and may wait
 * is parked here until one of four things ends its parking: its lane
 * gains a message (wake), its wait runs out (timeout), its client hangs
 * up (cancel) or the broker stops (shutdown). Whichever comes first ends
 * it through one function, longpoll_complete (longpoll.c), exactly once:
 * a parked claim sits in the waiters table, and the one thread that takes
 * it out completes it, as an NNG aio is finished once whatever finishes
 * it. A woken claim runs again inside the commit that woke it, so its
 * reply goes out with that commit; one that finds nothing then (it asked
 * for another target) is parked again in its old place. Timeout, cancel
 * and shutdown answer an empty batch.
 *
 * Threads: longpoll_park and longpoll_wake run on the writer (the commit
 * queue's baton holder), longpoll_cancel_conn on an I/O thread,
 * longpoll_expire on the timer thread, longpoll_stop on the thread that
 * stops the broker.
 */
#ifndef HP_BROKER_LONGPOLL_H
#define HP_BROKER_LONGPOLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/commitq.h"
#include "broker/listener.h"
#include "broker/waiters.h"
#include "common/status.h"
#include "common/str.h"
#include "store/store.h"

typedef struct longpoll longpoll;

/* Embedded in the caller's request, which fills op and rq before the
 * first parking and keeps them. */
typedef struct longpoll_claim {
    waiter wt;              /* the table's link */
    commitq_op *op;         /* what a wake hands back to the writer */
    const listener_req *rq; /* whose client may hang up */
    uint32_t claimed;       /* set by the claim: messages its last run took */
    bool ended;             /* the parking was completed (a check) */
} longpoll_claim;

/* Answers the request that embeds lc, and frees it: an empty batch for
 * HP_OK, else the error st (it could not be parked). Any thread. */
typedef void (*longpoll_answer_fn)(longpoll_claim *lc, hp_code code,
                                   const hp_status *st);

typedef struct longpoll_opts {
    uint32_t max_parked;   /* claims parked at once, in all */
    uint32_t max_per_conn; /* and of one connection */
    longpoll_answer_fn answer;
    /* A claim was parked: its deadline may be the next one to watch. */
    void (*parked)(void *arg);
    void *parked_arg;
} longpoll_opts;

HP_MUST_USE hp_code longpoll_new(const longpoll_opts *o, longpoll **out,
                                 hp_status *st);

/* Frees lp; nothing may be parked (longpoll_stop first). NULL is a no-op. */
void longpoll_free(longpoll *lp);

/*
 * Writer thread, right after the commit of the group in which lc's claim
 * found nothing: parks it on (scope, lane) until until_mono_ms. Returns
 * lc->op when the claim must run again at once instead (the group itself
 * made the lane claimable: the claim ran before the enqueue that fed it),
 * for the caller to submit; NULL otherwise, and then lc belongs to the
 * long-poll part, which answers it in the end, or already has (refused:
 * RESOURCE_EXHAUSTED/TOO_MANY_WAITERS; the broker stopping; its client
 * gone).
 */
commitq_op *longpoll_park(longpoll *lp, longpoll_claim *lc, hp_str scope,
                          hp_str lane, uint64_t until_mono_ms);

/* The commit queue's extend hook (commitq_extend_fn): hands the messages
 * the group made claimable to the oldest claims parked on their lanes, one
 * op at a time, inside the group's transaction. */
commitq_op *longpoll_wake(longpoll *lp, store_txn *t, bool first);

/* A client hung up (the listener's on_closed): its parked claims are
 * answered into the void now, so no later wake claims messages for a
 * client that is gone, hiding them for a whole lease. */
void longpoll_cancel_conn(longpoll *lp, uint32_t conn_id);

/* The earliest deadline of a parked claim, monotonic ms; UINT64_MAX for
 * none. */
uint64_t longpoll_next_deadline(longpoll *lp);

/* Answers every claim whose wait has run out at now_mono_ms. */
void longpoll_expire(longpoll *lp, uint64_t now_mono_ms);

/* Answers every parked claim, and from now on every claim that would
 * park. */
void longpoll_stop(longpoll *lp);

/* Claims parked now (for /metrics). */
size_t longpoll_count(longpoll *lp);

#endif
