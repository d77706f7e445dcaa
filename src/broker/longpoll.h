/*
 * longpoll.h - parked requests: long-poll claims and Awaits. A Claim that
 * found nothing and may wait is parked on its lane; an Await whose message
 * is neither delivered nor dead, and that may wait, is parked on that
 * message. Either stays parked until one of four things ends its parking:
 * a commit gives it what it waits for (wake: its lane gains a message, or
 * its message is settled), its wait runs out (timeout), its client hangs
 * up (cancel) or the broker stops (shutdown). Whichever comes first ends
 * it through one function, longpoll_complete (longpoll.c), exactly once:
 * a parked request sits in a waiters table (one for claims, one for
 * Awaits, with a budget each), and the one thread that takes it out
 * completes it, as an NNG aio is finished once whatever finishes it. A
 * woken request runs again inside the commit that woke it, so its reply
 * goes out with that commit; one that finds nothing then (a claim that
 * asked for another target; an Await when the group settled too many
 * messages to list) is parked again in its old place. Timeout, cancel and
 * shutdown answer an empty response.
 *
 * Threads: longpoll_park, longpoll_park_await and longpoll_wake run on the
 * writer (the commit queue's baton holder), longpoll_cancel_conn on an I/O
 * thread, longpoll_expire on the timer thread, longpoll_stop on the thread
 * that stops the broker.
 */
#ifndef HP_BROKER_LONGPOLL_H
#define HP_BROKER_LONGPOLL_H

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

typedef struct longpoll longpoll;

/* Embedded in the caller's request (a Claim or an Await), which fills op
 * and rq before the first parking and keeps them. */
typedef struct longpoll_claim {
    waiter wt;              /* the table's link */
    commitq_op *op;         /* what a wake hands back to the writer */
    const listener_req *rq; /* whose client may hang up */
    uint32_t claimed;       /* set by a claim: messages its last run took */
    bool ended;             /* the parking was completed (a check) */
} longpoll_claim;

/* Answers the request that embeds lc, and frees it: an empty response
 * for HP_OK, else the error st (it could not be parked). Any thread. */
typedef void (*longpoll_answer_fn)(longpoll_claim *lc, hp_code code,
                                   const hp_status *st);

typedef struct longpoll_opts {
    uint32_t max_parked;   /* claims parked at once, in all, and Awaits */
    uint32_t max_per_conn; /* and of one connection */
    longpoll_answer_fn answer;
    /* A request was parked: its deadline may be the next one to watch. */
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

/* The same for an Await, right after the commit of the group in which it
 * found its message (scope, id) unsettled: parked on that message, or its
 * op back when the group itself settled it (after the Await had looked). */
commitq_op *longpoll_park_await(longpoll *lp, longpoll_claim *lc, hp_str scope,
                                const hp_id *id, uint64_t until_mono_ms);

/* The commit queue's extend hook (commitq_extend_fn): hands the writer,
 * one op at a time, inside the group's transaction, every Await parked on
 * a message the group settled, then the oldest claims parked on the lanes
 * the group made claimable, as many as it gave them messages. */
commitq_op *longpoll_wake(longpoll *lp, store_txn *t, bool first);

/* A client hung up (the listener's on_closed): its parked claims and
 * Awaits are answered into the void now, so no later wake claims messages
 * for a client that is gone, hiding them for a whole lease. */
void longpoll_cancel_conn(longpoll *lp, uint32_t conn_id);

/* The earliest deadline of a parked claim or Await, monotonic ms;
 * UINT64_MAX for none. */
uint64_t longpoll_next_deadline(longpoll *lp);

/* Answers every claim and Await whose wait has run out at now_mono_ms. */
void longpoll_expire(longpoll *lp, uint64_t now_mono_ms);

/* Answers every parked claim and Await, and from now on every one that
 * would park. */
void longpoll_stop(longpoll *lp);

/* Claims parked now, and Awaits (for /metrics). */
size_t longpoll_count(longpoll *lp);
size_t longpoll_count_awaits(longpoll *lp);

#endif
