/*
 * maint.h - the timer thread: maintenance (lease expiry, delayed ->
 * ready, retention, dedupe and replay-cache pruning, all through the
 * commit queue), the timeouts of another part (the long-poll claims), and
 * a periodic check of the store's reader table.
 *
 * Maintenance runs when the store says something falls due, never on a
 * fixed beat: an idle broker writes nothing. The writer tells this part
 * after each group (maint_after_group) so that a sooner due time is seen
 * at once.
 */
#ifndef HP_BROKER_MAINT_H
#define HP_BROKER_MAINT_H

#include <stdint.h>

#include "broker/commitq.h"
#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

typedef struct maint maint;

typedef struct maint_opts {
    store *store;
    hp_clock *clock;
    /* Another part's timeouts: when the next one falls due (monotonic ms,
     * UINT64_MAX for none), and what to do with those due at now; both
     * called on the timer thread. */
    uint64_t (*next_timeout)(void *arg);
    void (*expire)(void *arg, uint64_t now_mono_ms);
    void *timeouts_arg;
} maint_opts;

HP_MUST_USE hp_code maint_new(const maint_opts *o, maint **out, hp_status *st);

/* Starts the timer thread, which submits maintenance to q. It runs once
 * at start whatever is due: leases may have run out while the broker was
 * down. */
HP_MUST_USE hp_code maint_start(maint *m, commitq *q, hp_status *st);

/* A timeout was added that may fall due before the timer next looks. Any
 * thread. */
void maint_kick(maint *m);

/* Writer thread, after each group (commitq_after_fn): brings maintenance
 * forward if something the group wrote falls due sooner. */
void maint_after_group(maint *m);

/* Stops and joins the timer thread; no maintenance is submitted after. */
void maint_stop(maint *m);

/* Frees m, once the commit queue has stopped: until then a maintenance op
 * submitted before maint_stop may still be applied. NULL is a no-op. */
void maint_free(maint *m);

#endif
