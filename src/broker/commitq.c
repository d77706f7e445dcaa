/*
 * commitq.c - group commit on one writer thread.
 *
 * A group is everything waiting when the writer wakes, up to max_group.
 * The ops run one after the other in one transaction, which commits once.
 * An op that fails before writing (almost every failure: bad input, a lost
 * claim) leaves the transaction as it was; one that fails midway makes the
 * writer abort and apply the group again without it. If the map fills the
 * writer grows the map and applies the whole group again; at the ceiling
 * it falls back to one commit per op so that acks and purges, which free
 * space, still succeed while enqueues get MAP_FULL. Outcomes are reported
 * only after the commit returned, and with deferred_sync only once it is
 * durable.
 *
 * With run_when_idle (--sync none) a request that finds the writer idle
 * and nothing queued is applied and committed by the thread that read it,
 * as a group of one (commitq_submit_or_run): with no sync to wait for, a
 * commit is cheaper than handing the op to the writer and back. One thread
 * at a time applies a group (busy); ops that arrive meanwhile queue for
 * the writer, which waits for busy to clear.
 *
 * With batch (--sync full with the log) each group's transaction is nested
 * in the store's open batch (store_batch_attach): its commit appends the
 * group's log record and syncs it, so its outcomes are reported at once,
 * but other threads read it only once the writer publishes the batch
 * (publish_due: 2 ms, 64 groups, 1 ms idle, or a read waiting in
 * visible_waits). Reads wait through commitq_when_visible; the writer
 * runs them right after the publish, before anything else.
 *
 * Durability with deferred_sync (MDB_NOMETASYNC): a commit syncs its data
 * pages, then writes its meta page without syncing it, so the commit is on
 * disk only once the next commit's data sync (which flushes the whole
 * file, that meta page included) or an explicit sync has run. The writer
 * therefore keeps each group's ops as "held", stamped with the group's
 * transaction id, and reports them when the durable id reaches it: after
 * the next commit that wrote, or after the sync it runs itself as soon as
 * the queue is empty. Under load a commit costs one sync; a lone request
 * still pays for two. A group that wrote nothing is aborted, not
 * committed (an idle broker's maintenance pass makes no commit), counts in
 * no stats or histograms and syncs nothing, so its ops (answered from
 * earlier commits, say, by the replay cache) wait for the last commit to
 * become durable too.
 */
#include "broker/commitq.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/reasons.h"

struct commitq {
    store *s;
    hp_clock *clock;
    uint32_t max_group;
    commitq_hooks hooks;

    pthread_mutex_t mtx;
    pthread_cond_t cond;
    commitq_op *head, *tail; /* q->mtx */
    bool stopping;           /* q->mtx */
    /* q->mtx: a thread (the writer, or a caller of commitq_submit_or_run)
     * is applying a group; what the comments call the writer thread is
     * whichever thread set it. */
    bool busy;
    bool deferred_sync; /* set at creation */
    bool run_when_idle; /* set at creation */
    bool batch;         /* set at creation */
    store_batch_opts batch_opts;
#ifdef HOPPER_DEBUG_HOOKS
    bool reply_before_sync; /* set at creation */
#endif
    bool started;
    pthread_t thread;
    bool group_committed; /* writer thread: the group reached LMDB */

    /* Writer thread only: ops committed and not yet reported,
     * oldest first. */
    commitq_op *held, *held_tail;
    /* Transaction ids: the last committed, the last known on disk. */
    _Atomic uint64_t committed_txn;
    _Atomic uint64_t durable_txn;
    struct durable_wait *waits; /* q->mtx: reads waiting for durability */
    struct durable_wait *visible_waits; /* q->mtx: reads waiting for a
                                           publish */

    commitq_stats stats; /* q->mtx */
    commitq_hists hists;
};

static bool
is_map_full(hp_code code, const hp_status *st)
{
    return code == HP_RESOURCE_EXHAUSTED && st->reason != NULL &&
           strcmp(st->reason, HP_R_MAP_FULL) == 0;
}

/* Applies op inside t. Returns false when it failed after writing, which
 * leaves t unusable: the caller must abort t. A failure before any write
 * (bad input, a lost claim, a deadline) leaves t as it was. */
static bool
apply_one(commitq *q, store_txn *t, commitq_op *op, uint64_t now_ms)
{
    if (op->deadline_mono_ms != 0 && hp_mono_ms() > op->deadline_mono_ms) {
        op->code =
            hp_status_set(&op->st, HP_DEADLINE_EXCEEDED, HP_R_DEADLINE_EXCEEDED,
                          "deadline passed before the request was "
                          "applied; nothing changed");
        return true;
    }
    uint64_t mark = store_txn_writes(t);
    op->code = op->apply(op, t, now_ms, &op->st);
    (void)q;
    return op->code == HP_OK || store_txn_clear_failure(t, mark);
}

typedef enum group_result {
    GROUP_DONE,     /* committed, or failed as a whole (in *code) */
    GROUP_MAP_FULL, /* nothing committed: the map must grow */
    GROUP_RETRY,    /* nothing committed: an op failed midway, skip it */
} group_result;

/* One transaction, one commit, for every op not yet settled. Ops that
 * fail midway are settled with their error and the group is tried again
 * without them, so one bad op never costs its neighbours their work and
 * no op pays for a nested transaction of its own. */
static group_result
run_group(commitq *q, commitq_op *group, hp_code *code, hp_status *st)
{
    store_txn *t;
    uint64_t now_ms = hp_clock_now_ms(q->clock);

    *code = store_txn_begin(q->s, true, &t, st);
    if (*code != HP_OK) {
        return is_map_full(*code, st) ? GROUP_MAP_FULL : GROUP_DONE;
    }
    commitq_op *tail = NULL;
    for (commitq_op *op = group; op != NULL; op = op->next) {
        tail = op;
        if (op->settled) {
            continue;
        }
        if (!apply_one(q, t, op, now_ms)) {
            goto failed_midway;
        }
    }
    for (bool first = true; q->hooks.extend != NULL; first = false) {
        commitq_op *op = q->hooks.extend(q->hooks.arg, t, first);
        if (op == NULL) {
            break;
        }
        op->next = NULL;
        op->settled = false;
        tail->next = op;
        tail = op;
        if (!apply_one(q, t, op, now_ms)) {
            goto failed_midway;
        }
    }
    if (store_txn_writes(t) == 0) {
        /* Nothing to make durable: reads, refusals, a maintenance pass
         * that found nothing due. Committing would cost LMDB nothing, but
         * it is no commit, and counting it as one made an idle broker
         * look as if it committed every second. */
        store_txn_abort(t);
        *code = HP_OK;
        return GROUP_DONE;
    }
    q->group_committed = true;
    uint64_t t0 = hp_mono_us();
    *code = store_txn_commit(t, st);
    hp_hist_observe(&q->hists.sync_us, hp_mono_us() - t0);
    if (*code != HP_OK && is_map_full(*code, st)) {
        return GROUP_MAP_FULL;
    }
    return GROUP_DONE;

failed_midway:
    store_txn_abort(t);
    if (is_map_full(tail->code, &tail->st)) {
        return GROUP_MAP_FULL;
    }
    tail->settled = true;
    return GROUP_RETRY;
}

#define SLOW_COMMIT_MS 200

/* On failure *gst says why: the map at its ceiling (MAP_FULL), or, for a
 * writable map, no disk to reserve for a larger one (DISK_FULL). */
static bool
grow(commitq *q, hp_status *gst)
{
    store_info before, info;
    store_get_info(q->s, &before);
    if (store_grow(q->s, gst) != HP_OK) {
        return false;
    }
    store_get_info(q->s, &info);
    if (info.map_size != before.map_size) {
        /* else a checkpoint made freed pages reusable (store_grow) */
        hp_log(HP_LOG_INFO, "map grown", "map_size=%zu max_map_size=%zu",
               info.map_size, info.max_map_size);
    }
    return true;
}

/* Settles every op of the group whose commit failed as a whole. */
static void
fail_unsettled(commitq_op *group, hp_code code, const hp_status *st)
{
    for (commitq_op *op = group; op != NULL; op = op->next) {
        if (!op->settled) {
            op->code = code;
            op->st = *st;
            op->settled = true;
        }
    }
}

static void commit_group(commitq *q, commitq_op *group);

/* At the map ceiling: one commit per op, so ops that free space (acks,
 * purges) succeed while ops that need it get MAP_FULL. */
static void
run_each(commitq *q, commitq_op *group)
{
    for (commitq_op *op = group; op != NULL; op = op->next) {
        if (op->settled) {
            continue;
        }
        commitq_op *next = op->next;
        op->next = NULL;
        commit_group(q, op);
        /* Claims the hook woke for it were appended to op: keep them in
         * the group, ahead of the ops still to run. */
        while (op->next != NULL) {
            op = op->next;
        }
        op->next = next;
    }
}

/* Applies and commits the group; afterwards every op is settled. */
static void
commit_group(commitq *q, commitq_op *group)
{
    bool single = group->next == NULL;
    hp_status cst;
    hp_code code;

    for (;;) {
        switch (run_group(q, group, &code, &cst)) {
        case GROUP_RETRY:
            continue;
        case GROUP_MAP_FULL: {
            hp_status gst;
            if (grow(q, &gst)) {
                continue;
            }
            if (single) {
                /* MAP_FULL at the ceiling; DISK_FULL when a writable map
                 * has no disk to grow into */
                fail_unsettled(group, gst.code, &gst);
                return;
            }
            run_each(q, group);
            return;
        }
        case GROUP_DONE:
            if (code != HP_OK) {
                /* Nothing of the group is on disk. */
                fail_unsettled(group, code, &cst);
                pthread_mutex_lock(&q->mtx);
                q->stats.failed_commits++;
                pthread_mutex_unlock(&q->mtx);
                hp_log(HP_LOG_ERROR, "commit failed",
                       "code=%s reason=%s err=\"%s\"", hp_code_name(code),
                       cst.reason, cst.msg);
                return;
            }
            for (commitq_op *op = group; op != NULL; op = op->next) {
                op->settled = true; /* code/st set by apply_one */
            }
            return;
        }
    }
}

/* A read's reply waiting for a commit it saw to be durable. */
typedef struct durable_wait {
    struct durable_wait *next;
    uint64_t txn;
    commitq_durable_fn fn;
    void *arg;
} durable_wait;

static bool
needs_sync(commitq *q)
{
    return atomic_load(&q->durable_txn) < atomic_load(&q->committed_txn);
}

/* Runs and frees a list of waits taken off the queue, in its order. */
static void
run_waits(durable_wait *w)
{
    while (w != NULL) {
        durable_wait *next = w->next;
        w->fn(w->arg);
        free(w);
        w = next;
    }
}

/* Writer thread: reports every held op, and runs every waiting read, that
 * the durable id has reached. */
static void
release(commitq *q)
{
    uint64_t durable = atomic_load(&q->durable_txn);
    while (q->held != NULL && q->held->txn <= durable) {
        commitq_op *op = q->held;
        q->held = op->next;
        if (q->held == NULL) {
            q->held_tail = NULL;
        }
        op->next = NULL;
        op->done(op, op->code, &op->st);
    }
    pthread_mutex_lock(&q->mtx);
    durable_wait *ready = NULL, **link = &q->waits;
    while (*link != NULL) {
        durable_wait *w = *link;
        if (w->txn <= durable) {
            *link = w->next;
            w->next = ready;
            ready = w;
        } else {
            link = &w->next;
        }
    }
    pthread_mutex_unlock(&q->mtx);
    run_waits(ready);
}

/* Writer thread, with nothing queued: the explicit sync that makes the last
 * commit durable when no later commit will. */
static void
sync_idle(commitq *q)
{
    uint64_t last = atomic_load(&q->committed_txn);
    hp_status st;
    uint64_t t0 = hp_mono_us();
    hp_code code = store_sync_now(q->s, &st);
    hp_hist_observe(&q->hists.sync_us, hp_mono_us() - t0);
    if (code != HP_OK) {
        /* The store ends the process on EIO (a failed fsync is never
         * retried); anything else leaves the commit's fate unknown, and
         * the next sync tries again. */
        hp_log(HP_LOG_ERROR, "sync failed", "code=%s reason=%s err=\"%s\"",
               hp_code_name(code), st.reason, st.msg);
        return;
    }
    atomic_store(&q->durable_txn, last);
    release(q);
}

/* Writer thread: appends ops to the held list, each stamped with txn. */
static void
hold(commitq *q, commitq_op *ops, uint64_t txn)
{
    while (ops != NULL) {
        commitq_op *next = ops->next;
        ops->next = NULL;
        ops->txn = txn;
        if (q->held_tail != NULL) {
            q->held_tail->next = ops;
        } else {
            q->held = ops;
        }
        q->held_tail = ops;
        ops = next;
    }
}

/* The durable id once a commit moved the last one from before to after
 * (process says why). */
static uint64_t
durable_after(const commitq *q, uint64_t before, uint64_t after)
{
#ifdef HOPPER_DEBUG_HOOKS
    if (q->reply_before_sync) {
        return after; /* the negative control: its meta page is not synced */
    }
#endif
    return q->deferred_sync ? before : after;
}

static void
process(commitq *q, commitq_op *group, size_t n)
{
    uint64_t t0 = hp_mono_us();
    uint64_t before = store_last_txn(q->s);

    for (commitq_op *op = group; op != NULL; op = op->next) {
        op->settled = false;
    }
    q->group_committed = false;
    commit_group(q, group);
    uint64_t after = store_last_txn(q->s);
    if (q->group_committed) {
        uint64_t us = hp_mono_us() - t0;
        uint64_t ms = us / 1000;
        hp_hist_observe(&q->hists.group_size, n);
        hp_hist_observe(&q->hists.group_us, us);
        if (ms >= SLOW_COMMIT_MS) {
            /* Every reply of the group waited this long: a sick disk or a
             * stalled fsync, worth an operator's attention. */
            hp_log(HP_LOG_WARN, "slow commit", "ms=%llu ops=%zu",
                   (unsigned long long)ms, n);
        }
        pthread_mutex_lock(&q->mtx);
        q->stats.commits++;
        q->stats.ops += n;
        if (n > q->stats.max_group) {
            q->stats.max_group = n;
        }
        pthread_mutex_unlock(&q->mtx);
    }

    /* Ops finished at the commit itself leave the group here. */
    commitq_op *keep = NULL, **tail = &keep;
    while (group != NULL) {
        commitq_op *next = group->next;
        group->next = NULL;
        if (group->committed == NULL ||
            !group->committed(group, group->code, &group->st)) {
            *tail = group;
            tail = &group->next;
        }
        group = next;
    }
    if (q->batch) {
        /* A group is durable in the log once committed into the batch;
         * LMDB's ids move only when a batch is published. */
        atomic_store(&q->durable_txn, after);
        atomic_store(&q->committed_txn, after);
    } else if (after != before) {
        /* This commit's data sync flushed the meta page of the one
         * before it: that one is on disk now. Without deferred_sync each
         * commit is on disk when it returns. */
        atomic_store(&q->durable_txn, durable_after(q, before, after));
        atomic_store(&q->committed_txn, after);
    }
    hold(q, keep, after);
    release(q);
    if (q->hooks.after != NULL) {
        q->hooks.after(q->hooks.arg);
    }
}

static hp_code
new_wait(durable_wait **out, uint64_t txn, commitq_durable_fn fn, void *arg,
         hp_status *st)
{
    durable_wait *w = malloc(sizeof(*w));
    if (w == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    w->next = NULL;
    w->txn = txn;
    w->fn = fn;
    w->arg = arg;
    *out = w;
    return HP_OK;
}

hp_code
commitq_after_durable(commitq *q, uint64_t txn, commitq_durable_fn fn,
                      void *arg, hp_status *st)
{
    if (txn <= atomic_load(&q->durable_txn)) {
        fn(arg);
        return HP_OK;
    }
    durable_wait *w = NULL;
    if (new_wait(&w, txn, fn, arg, st) != HP_OK) {
        return st->code;
    }
    pthread_mutex_lock(&q->mtx);
    if (txn <= atomic_load(&q->durable_txn)) {
        pthread_mutex_unlock(&q->mtx); /* it became durable meanwhile */
        free(w);
        fn(arg);
        return HP_OK;
    }
    w->next = q->waits;
    q->waits = w;
    pthread_cond_signal(&q->cond); /* an idle writer must sync for it */
    pthread_mutex_unlock(&q->mtx);
    return HP_OK;
}

/* Writer thread: commits the open batch to LMDB, then runs the reads
 * that waited for it. */
static void
publish(commitq *q)
{
    hp_status st;
    hp_code code = store_publish(q->s, &st);
    /* Its commits were durable before; reads of it need not wait. */
    uint64_t last = store_last_txn(q->s);
    atomic_store(&q->durable_txn, last);
    atomic_store(&q->committed_txn, last);
    release(q);
    if (code != HP_OK) {
        /* store_publish has called the store's fatal hook: the broker is
         * going down, and a restart replays the log. */
        hp_log(HP_LOG_ERROR, "publish failed", "code=%s reason=%s err=\"%s\"",
               hp_code_name(st.code), st.reason, st.msg);
    }
    pthread_mutex_lock(&q->mtx);
    durable_wait *w = NULL;
    while (q->visible_waits != NULL) { /* oldest first */
        durable_wait *next = q->visible_waits->next;
        q->visible_waits->next = w;
        w = q->visible_waits;
        q->visible_waits = next;
    }
    pthread_mutex_unlock(&q->mtx);
    run_waits(w);
    if (q->hooks.after != NULL) {
        q->hooks.after(q->hooks.arg); /* maintenance reads what it sees */
    }
}

/* q->mtx held, writer thread: with a batch open, whether to publish it
 * now, else how long until it is due (0: not open, wait for work).
 * idle_us: how long the writer has waited for work so far. */
static bool
publish_due(commitq *q, uint64_t idle_us, uint64_t *wait_us)
{
    *wait_us = 0;
    if (!q->batch) {
        return false;
    }
    if (q->visible_waits != NULL) {
        /* Also when the flag dropped without publish() (a map growth
         * publishes inside the store): only publish() runs the waits. */
        return true;
    }
    return store_publish_due(q->s, idle_us, wait_us);
}

static void
timed_wait(commitq *q, uint64_t us)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + us * 1000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&q->cond, &q->mtx, &ts);
}

/* The writer's loop: groups while there are ops, the idle sync when the
 * queue runs dry with a commit not yet durable, and with batch the
 * publish of a batch that is due or that a read waits for. */
static void *
writer_main(void *arg)
{
    commitq *q = arg;
    if (q->batch) {
        /* false: the store logged why; the queue works as without */
        (void)store_batch_attach(q->s, &q->batch_opts);
    }
    pthread_mutex_lock(&q->mtx);
    for (;;) {
        uint64_t wait_us = 0;
        /* Idle time counts from here: a lone client's next request comes
         * back within a round trip, and its group joins the batch. */
        uint64_t idle_from = hp_mono_us();
        bool due = false;
        while (q->busy ||
               (q->head == NULL && !needs_sync(q) && !q->stopping &&
                !(due = publish_due(q, hp_mono_us() - idle_from, &wait_us)))) {
            if (wait_us > 0) {
                timed_wait(q, wait_us);
            } else {
                pthread_cond_wait(&q->cond, &q->mtx);
            }
        }
        if (q->head != NULL) {
            commitq_op *group = q->head, *last = group;
            size_t n = 1;
            while (last->next != NULL && n < q->max_group) {
                last = last->next;
                n++;
            }
            q->head = last->next;
            if (q->head == NULL) {
                q->tail = NULL;
            }
            last->next = NULL;
            q->busy = true;
            pthread_mutex_unlock(&q->mtx);
            process(q, group, n);
            pthread_mutex_lock(&q->mtx);
            due = publish_due(q, 0, &wait_us);
            pthread_mutex_unlock(&q->mtx);
            if (due) {
                publish(q);
            }
        } else if (due) {
            q->busy = true;
            pthread_mutex_unlock(&q->mtx);
            publish(q);
        } else if (needs_sync(q)) {
            q->busy = true; /* release() runs done callbacks */
            pthread_mutex_unlock(&q->mtx);
            sync_idle(q);
        } else {
            pthread_mutex_unlock(&q->mtx);
            if (q->batch) {
                publish(q); /* stopping: LMDB gets the last batch */
            }
            return NULL; /* stopping, and nothing left to do */
        }
        pthread_mutex_lock(&q->mtx);
        q->busy = false;
    }
}

typedef struct visible_sync {
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    bool done;
} visible_sync;

static void
visible_now(void *arg)
{
    visible_sync *v = arg;
    pthread_mutex_lock(&v->mtx);
    v->done = true;
    pthread_cond_signal(&v->cond);
    pthread_mutex_unlock(&v->mtx);
}

void
commitq_wait_visible(commitq *q)
{
    if (q == NULL || !q->batch || !store_unpublished(q->s)) {
        return;
    }
    visible_sync v = { .done = false };
    hp_status st;
    pthread_mutex_init(&v.mtx, NULL);
    pthread_cond_init(&v.cond, NULL);
    if (commitq_when_visible(q, visible_now, &v, &st) == HP_OK) {
        pthread_mutex_lock(&v.mtx);
        while (!v.done) {
            pthread_cond_wait(&v.cond, &v.mtx);
        }
        pthread_mutex_unlock(&v.mtx);
    }
    pthread_mutex_destroy(&v.mtx);
    pthread_cond_destroy(&v.cond);
}

hp_code
commitq_when_visible(commitq *q, commitq_durable_fn fn, void *arg,
                     hp_status *st)
{
    if (!q->batch || !store_unpublished(q->s)) {
        fn(arg);
        return HP_OK;
    }
    durable_wait *w = NULL;
    if (new_wait(&w, 0, fn, arg, st) != HP_OK) {
        return st->code;
    }
    pthread_mutex_lock(&q->mtx);
    if (!store_unpublished(q->s)) {
        /* Published meanwhile: publish() clears the flag before it takes
         * the waits, so a wait queued while the flag is up is taken by
         * the publish that lowers it. */
        pthread_mutex_unlock(&q->mtx);
        free(w);
        fn(arg);
        return HP_OK;
    }
    w->next = q->visible_waits;
    q->visible_waits = w;
    pthread_mutex_unlock(&q->mtx);
    pthread_cond_signal(&q->cond);
    return HP_OK;
}

hp_code
commitq_new(store *s, hp_clock *clock, const commitq_opts *o, commitq **out,
            hp_status *st)
{
    commitq *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    q->s = s;
    q->clock = clock;
    q->max_group = o->max_group > 0 ? o->max_group : 1;
    q->hooks = o->hooks;
    q->deferred_sync = o->deferred_sync;
    /* Held ops and the idle sync live on the writer's loop. */
    q->run_when_idle = o->run_when_idle && !o->deferred_sync && !o->batch;
    q->batch = o->batch && !o->deferred_sync;
    q->batch_opts = o->batch_opts;
#ifdef HOPPER_DEBUG_HOOKS
    q->reply_before_sync = o->deferred_sync && o->debug_reply_before_sync;
    if (q->reply_before_sync) {
        hp_log(HP_LOG_WARN, "debug reply before sync",
               "detail=\"replies precede durability: a power loss loses "
               "acknowledged writes; for tests only\"");
    }
#endif
    atomic_init(&q->committed_txn, store_last_txn(s));
    atomic_init(&q->durable_txn, store_last_txn(s));
    hp_hist_init(&q->hists.group_size, hp_hist_size_bounds, hp_hist_size_n);
    hp_hist_init(&q->hists.group_us, hp_hist_us_bounds, hp_hist_us_n);
    hp_hist_init(&q->hists.sync_us, hp_hist_us_bounds, hp_hist_us_n);
    pthread_mutex_init(&q->mtx, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    /* the batch's idle publish waits by the monotonic clock */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&q->thread, NULL, writer_main, q);
    if (rc != 0) {
        commitq_free(q);
        return hp_status_from_errno(st, rc, "cannot start the writer thread");
    }
    q->started = true;
    *out = q;
    return HP_OK;
}

hp_code
commitq_submit(commitq *q, commitq_op *op, hp_status *st)
{
    pthread_mutex_lock(&q->mtx);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mtx);
        return hp_status_set(st, HP_UNAVAILABLE, HP_R_SHUTTING_DOWN,
                             "broker is shutting down");
    }
    op->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = op;
    } else {
        q->head = op;
    }
    q->tail = op;
    pthread_mutex_unlock(&q->mtx);
    /* Signalled after the unlock: a writer woken while we still held the
     * mutex would only block on it again (two more futex calls per
     * request, measured with strace -c). The op is queued under the lock,
     * so a writer about to wait sees it. */
    pthread_cond_signal(&q->cond);
    return HP_OK;
}

hp_code
commitq_submit_or_run(commitq *q, commitq_op *op, hp_status *st)
{
    if (!q->run_when_idle) {
        return commitq_submit(q, op, st);
    }
    pthread_mutex_lock(&q->mtx);
    if (q->busy || q->head != NULL || q->stopping) {
        /* Queued behind the others (or refused), in order. */
        pthread_mutex_unlock(&q->mtx);
        return commitq_submit(q, op, st);
    }
    q->busy = true;
    pthread_mutex_unlock(&q->mtx);
    op->next = NULL;
    process(q, op, 1);
    pthread_mutex_lock(&q->mtx);
    q->busy = false;
    /* Ops queued meanwhile (hooks and callbacks submit too), or a stop,
     * are the writer's; it waited for busy to clear. */
    bool wake = q->head != NULL || q->stopping;
    pthread_mutex_unlock(&q->mtx);
    if (wake) {
        pthread_cond_signal(&q->cond);
    }
    return HP_OK;
}

/* The writer's totals at stop, with the commit histograms' quantiles:
 * enough to judge a benchmark run from the log alone. */
static void
log_totals(commitq *q)
{
    const commitq_hists *h = &q->hists;
    hp_hist_snap gs, gu, sy;
    commitq_stats cs;

    commitq_get_stats(q, &cs);
    hp_hist_read(&h->group_size, &gs);
    hp_hist_read(&h->group_us, &gu);
    hp_hist_read(&h->sync_us, &sy);
    hp_log(HP_LOG_INFO, "writer totals",
           "commits=%llu ops=%llu max_group=%llu group_mean=%.2f "
           "group_p99=%llu commit_ms_mean=%.3f sync_ms_mean=%.3f "
           "sync_ms_p99=%.3f",
           (unsigned long long)cs.commits, (unsigned long long)cs.ops,
           (unsigned long long)cs.max_group,
           cs.commits ? (double)cs.ops / (double)cs.commits : 0.0,
           (unsigned long long)hp_hist_quantile(&gs, 0.99),
           gu.count ? (double)gu.sum / 1000.0 / (double)gu.count : 0.0,
           sy.count ? (double)sy.sum / 1000.0 / (double)sy.count : 0.0,
           (double)hp_hist_quantile(&sy, 0.99) / 1000.0);
}

void
commitq_stop(commitq *q)
{
    if (q == NULL || !q->started) {
        return;
    }
    pthread_mutex_lock(&q->mtx);
    q->stopping = true;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mtx);
    pthread_join(q->thread, NULL);
    q->started = false;
    log_totals(q);
}

void
commitq_free(commitq *q)
{
    if (q == NULL) {
        return;
    }
    commitq_stop(q);
    while (q->waits != NULL) { /* none once stopped; for a failed start */
        durable_wait *next = q->waits->next;
        free(q->waits);
        q->waits = next;
    }
    while (q->visible_waits != NULL) {
        durable_wait *next = q->visible_waits->next;
        free(q->visible_waits);
        q->visible_waits = next;
    }
    pthread_mutex_destroy(&q->mtx);
    pthread_cond_destroy(&q->cond);
    free(q);
}

void
commitq_get_stats(commitq *q, commitq_stats *out)
{
    pthread_mutex_lock(&q->mtx);
    *out = q->stats;
    pthread_mutex_unlock(&q->mtx);
}

const commitq_hists *
commitq_get_hists(const commitq *q)
{
    return &q->hists;
}
