/*
 * commitq.h - the single writer: operations from any thread go into one
 * queue; one thread takes all that are waiting (up to max_group), applies
 * each so that a failing one never spoils its neighbours, commits once,
 * and only then reports every outcome. With sync full, nothing is reported
 * as done before it is on disk: with deferred_sync, a group's outcomes wait
 * until a later commit's data sync (or an explicit sync when the queue runs
 * dry) has made its commit durable, so under load a commit costs one sync
 * instead of two. With batch, groups are durable in the store's log when
 * reported and reach LMDB a batch at a time; reads wait for the batch
 * (commitq_when_visible). A group that wrote nothing is not committed at
 * all: an idle broker makes no commits.
 */
#ifndef HP_BROKER_COMMITQ_H
#define HP_BROKER_COMMITQ_H

#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/hist.h"
#include "common/status.h"
#include "store/store.h"

typedef struct commitq commitq;
typedef struct commitq_op commitq_op;

/* "Writer thread" in these comments means whichever thread is applying
 * the group: the queue's own, or a caller of commitq_submit_or_run. */

/* Writer thread, inside the group's transaction. Must be repeatable: after
 * a map growth, or when a neighbour failed midway, the group is applied
 * again. */
typedef hp_code (*commitq_apply_fn)(commitq_op *op, store_txn *t,
                                    uint64_t now_ms, hp_status *st);

/* Writer thread, once the op's outcome is final: after the commit (or its
 * failure) is on disk. code/st is the outcome. The op belongs to its owner
 * again from here on. */
typedef void (*commitq_done_fn)(commitq_op *op, hp_code code,
                                const hp_status *st);

/* Writer thread, right after the commit, before it is durable (optional).
 * Returning true finishes the op there: done is not called. For an op
 * whose outcome needs no durability (a claim that found nothing and will
 * wait), so it is not held back with the group. */
typedef bool (*commitq_committed_fn)(commitq_op *op, hp_code code,
                                     const hp_status *st);

struct commitq_op {
    commitq_op *next; /* q->mtx */
    commitq_apply_fn apply;
    commitq_done_fn done;
    commitq_committed_fn committed; /* NULL: none */
    uint64_t deadline_mono_ms;      /* 0: none; past it the op is not applied */
    hp_code code;                   /* writer thread only */
    hp_status st;                   /* writer thread only */
    bool settled;                   /* writer thread only */
    uint64_t txn;                   /* writer thread: reported once durable */
};

/* Called on the writer thread after the done callbacks of each group. */
typedef void (*commitq_after_fn)(void *arg);

/*
 * Writer thread, inside the group's transaction once every op of it has
 * been applied: returns one more op to apply in the same transaction (a
 * parked claim that the group's enqueues can satisfy), or NULL. Called
 * again after that op was applied, until it returns NULL; first is true
 * on the first call of each attempt at the group (a group is applied
 * again after a map growth or a failed op), so the hook can start over.
 * An op it returns belongs to the group from then on: it is reported
 * with the group, and applied again if the group is.
 */
typedef commitq_op *(*commitq_extend_fn)(void *arg, store_txn *t, bool first);

typedef struct commitq_hooks {
    commitq_after_fn after;
    commitq_extend_fn extend;
    void *arg;
} commitq_hooks;

/* A group that wrote nothing is aborted and counts in none of these. */
typedef struct commitq_stats {
    uint64_t commits; /* groups committed (failed commits included) */
    uint64_t ops;     /* operations in those groups */
    uint64_t max_group;
    uint64_t failed_commits;
} commitq_stats;

/* Live histograms, readable from any thread (common/hist.h). */
typedef struct commitq_hists {
    hp_hist group_size; /* operations per commit */
    hp_hist group_us;   /* applying and committing a group: what its
                           replies waited for after being picked up */
    hp_hist sync_us;    /* the commit alone: LMDB's writes and fsyncs */
} commitq_hists;

typedef struct commitq_opts {
    uint32_t max_group; /* ops per commit */
    /* The store defers each commit's meta sync (store_opts
     * defer_meta_sync): outcomes are held until a later sync covers
     * their commit. */
    bool deferred_sync;
    /* commitq_submit_or_run may apply an op on the caller's thread when
     * the writer is idle (for commits that do not wait for a disk). */
    bool run_when_idle;
    /* The writer batches its commits (store_batch_attach; sync full with
     * the log): replies go out once a group is in the log, LMDB commits a
     * batch of groups at a time, and reads that must see them wait for it
     * (commitq_when_visible). */
    bool batch;
    store_batch_opts batch_opts; /* zeros: the store's defaults */
    commitq_hooks hooks;
#ifdef HOPPER_DEBUG_HOOKS
    /* Test builds only (HOPPER_DEBUG_HOOKS; a release refuses it): with
     * deferred_sync, report a group as soon as it committed, before the
     * sync that covers its meta page. The power-loss test's negative
     * control: a reply that precedes durability. */
    bool debug_reply_before_sync;
#endif
} commitq_opts;

HP_MUST_USE hp_code commitq_new(store *s, hp_clock *clock,
                                const commitq_opts *o, commitq **out,
                                hp_status *st);

/* Runs fn(arg) once every commit up to and including txn is durable: at
 * once, on the calling thread, if it is; else later on the writer thread.
 * For a read that saw a commit whose meta page is not yet on disk: its
 * reply must not precede that commit's durability. HP_OK: fn has run or
 * will run, once. RESOURCE_EXHAUSTED/NO_MEMORY: it could not be queued
 * and will not run. Any thread. */
typedef void (*commitq_durable_fn)(void *arg);
HP_MUST_USE hp_code commitq_after_durable(commitq *q, uint64_t txn,
                                          commitq_durable_fn fn, void *arg,
                                          hp_status *st);

/* Runs fn(arg) once every commit acknowledged so far is visible to a new
 * read transaction: at once, on the calling thread, if it is; else on the
 * writer thread right after it published the batch (commitq_opts batch),
 * before it applies anything else. For a read, which must see what its
 * client was told is done. HP_OK: fn has run or will run, once.
 * RESOURCE_EXHAUSTED/NO_MEMORY: it will not run. Any thread. */
HP_MUST_USE hp_code commitq_when_visible(commitq *q, commitq_durable_fn fn,
                                         void *arg, hp_status *st);

/* The same for a thread that may block (not an I/O thread, not the
 * writer): returns once every commit acknowledged so far is visible, or
 * at once if no memory was left to wait with (the read may then miss
 * the last milliseconds of commits). */
void commitq_wait_visible(commitq *q);

/* Queues op. UNAVAILABLE/SHUTTING_DOWN once stopping; the caller still owns
 * op then. Thread-safe; a done or committed callback may submit again. */
HP_MUST_USE hp_code commitq_submit(commitq *q, commitq_op *op, hp_status *st);

/* Like commitq_submit, except that with run_when_idle, when nothing is
 * queued and no group is being applied, the caller's thread applies and
 * commits op itself and its callbacks run there before this returns: one
 * thread hand-off less per request. The caller must hold no lock that a
 * callback or hook takes. */
HP_MUST_USE hp_code commitq_submit_or_run(commitq *q, commitq_op *op,
                                          hp_status *st);

/* Stops taking ops, applies and reports everything queued, joins the
 * writer, and logs its totals (commits, ops, group sizes, commit and sync
 * times): enough to judge a benchmark run from the log alone. */
void commitq_stop(commitq *q);

void commitq_free(commitq *q);

void commitq_get_stats(commitq *q, commitq_stats *out);

const commitq_hists *commitq_get_hists(const commitq *q);

#endif
