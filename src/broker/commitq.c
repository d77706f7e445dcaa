/*
 * commitq.c - group commit on one writer thread.
 *
 * A group is everything waiting when the writer wakes, up to max_group.
 * Each op runs in a nested transaction; the group commits once. If the map
 * fills (in an op or in the commit) the writer grows the map and applies
 * the whole group again; at the ceiling it falls back to one commit per op
 * so that acks and purges, which free space, still succeed while enqueues
 * get MAP_FULL. Outcomes are reported only after the commit returned.
 */
#include "broker/commitq.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/reasons.h"

struct commitq {
    store *s;
    hp_clock *clock;
    uint32_t max_group;
    commitq_after_fn after;
    void *after_arg;

    pthread_mutex_t mtx;
    pthread_cond_t cond;
    commitq_op *head, *tail; /* q->mtx */
    bool stopping;           /* q->mtx */
    bool started;
    pthread_t thread;

    commitq_stats stats; /* q->mtx */
};

static bool
is_map_full(hp_code code, const hp_status *st)
{
    return code == HP_RESOURCE_EXHAUSTED && st->reason != NULL &&
           strcmp(st->reason, HP_R_MAP_FULL) == 0;
}

/* Applies op in a child of parent; returns true if the map filled. */
static bool
apply_one(commitq *q, store_txn *parent, commitq_op *op, uint64_t now_ms)
{
    store_txn *child;

    if (op->deadline_mono_ms != 0 && hp_mono_ms() > op->deadline_mono_ms) {
        op->code =
            hp_status_set(&op->st, HP_DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
                          "deadline passed before the request was "
                          "applied; nothing changed");
        return false;
    }
    op->code = store_txn_begin(q->s, parent, true, &child, &op->st);
    if (op->code != HP_OK) {
        return is_map_full(op->code, &op->st);
    }
    op->code = op->apply(op, child, now_ms, &op->st);
    if (op->code == HP_OK) {
        op->code = store_txn_commit(child, &op->st);
    } else {
        store_txn_abort(child);
    }
    return is_map_full(op->code, &op->st);
}

/* One commit for the whole group. Returns the commit's own code. */
static hp_code
run_group(commitq *q, commitq_op *group, bool *map_full, hp_status *st)
{
    store_txn *t;
    uint64_t now_ms = hp_clock_now_ms(q->clock);
    hp_code code = store_txn_begin(q->s, NULL, true, &t, st);

    *map_full = false;
    if (code != HP_OK) {
        *map_full = is_map_full(code, st);
        return code;
    }
    for (commitq_op *op = group; op != NULL; op = op->next) {
        if (apply_one(q, t, op, now_ms)) {
            *map_full = true;
        }
    }
    code = store_txn_commit(t, st);
    if (is_map_full(code, st)) {
        *map_full = true;
    }
    return code;
}

/* At the map ceiling: one commit per op, so ops that free space succeed. */
static void
run_each(commitq *q, commitq_op *group)
{
    for (commitq_op *op = group; op != NULL; op = op->next) {
        commitq_op *next = op->next;
        bool map_full;
        hp_status cst;
        op->next = NULL;
        hp_code code = run_group(q, op, &map_full, &cst);
        if (code != HP_OK && op->code == HP_OK) {
            op->code = code;
            op->st = cst;
        }
        op->next = next;
    }
}

static bool
grow(commitq *q)
{
    hp_status gst;
    store_info info;
    if (store_grow(q->s, &gst) != HP_OK) {
        return false;
    }
    store_get_info(q->s, &info);
    hp_log(HP_LOG_INFO, "map grown", "map_size=%zu max_map_size=%zu",
           info.map_size, info.max_map_size);
    return true;
}

/* Applies and commits the group. The commit either holds every op's
 * outcome or none: when the commit itself ran out of map, everything is
 * applied again after growing; when only some ops did (and the commit
 * succeeded), just those are applied again in a commit of their own. */
static commitq_op *
commit_group(commitq *q, commitq_op *group)
{
    hp_status cst;
    bool map_full;

    for (;;) {
        hp_code code = run_group(q, group, &map_full, &cst);
        if (code != HP_OK) {
            if (is_map_full(code, &cst) && grow(q)) {
                continue;
            }
            if (is_map_full(code, &cst)) {
                run_each(q, group);
                return group;
            }
            /* Nothing of the group is on disk. */
            for (commitq_op *op = group; op != NULL; op = op->next) {
                op->code = code;
                op->st = cst;
            }
            hp_log(HP_LOG_ERROR, "commit failed",
                   "code=%s reason=%s err=\"%s\"", hp_code_name(code),
                   cst.reason, cst.msg);
            return group;
        }
        if (!map_full || !grow(q)) {
            return group; /* ops that hit MAP_FULL report it */
        }
        /* Redo only the ops that ran out of map, as a group of their own;
         * the others are committed. Their order is kept. */
        commitq_op *redo = NULL, **tail = &redo, *keep = NULL, **ktail = &keep;
        for (commitq_op *op = group, *next; op != NULL; op = next) {
            next = op->next;
            op->next = NULL;
            if (is_map_full(op->code, &op->st)) {
                *tail = op;
                tail = &op->next;
            } else {
                *ktail = op;
                ktail = &op->next;
            }
        }
        *ktail = commit_group(q, redo); /* report all of them */
        return keep;
    }
}

static void
process(commitq *q, commitq_op *group, size_t n)
{
    uint64_t t0 = hp_mono_ms();

    group = commit_group(q, group);
    uint64_t us = (hp_mono_ms() - t0) * 1000;
    pthread_mutex_lock(&q->mtx);
    q->stats.commits++;
    q->stats.ops += n;
    if (n > q->stats.max_group) {
        q->stats.max_group = n;
    }
    size_t bucket = 0;
    for (size_t k = n; k > 1 && bucket < 7; k >>= 1) {
        bucket++;
    }
    q->stats.group_hist[bucket]++;
    q->stats.commit_us_total += us;
    if (us > q->stats.commit_us_max) {
        q->stats.commit_us_max = us;
    }
    pthread_mutex_unlock(&q->mtx);
    while (group != NULL) {
        commitq_op *next = group->next;
        group->next = NULL;
        group->done(group, group->code, &group->st);
        group = next;
    }
    if (q->after != NULL) {
        q->after(q->after_arg);
    }
}

static void *
writer_main(void *arg)
{
    commitq *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mtx);
        while (q->head == NULL && !q->stopping) {
            pthread_cond_wait(&q->cond, &q->mtx);
        }
        if (q->head == NULL && q->stopping) {
            pthread_mutex_unlock(&q->mtx);
            return NULL;
        }
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
        pthread_mutex_unlock(&q->mtx);
        process(q, group, n);
    }
}

hp_code
commitq_new(store *s, hp_clock *clock, uint32_t max_group,
            commitq_after_fn after, void *after_arg, commitq **out,
            hp_status *st)
{
    commitq *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    q->s = s;
    q->clock = clock;
    q->max_group = max_group > 0 ? max_group : 1;
    q->after = after;
    q->after_arg = after_arg;
    pthread_mutex_init(&q->mtx, NULL);
    pthread_cond_init(&q->cond, NULL);
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
        return hp_status_set(st, HP_UNAVAILABLE, "SHUTTING_DOWN",
                             "broker is shutting down");
    }
    op->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = op;
    } else {
        q->head = op;
    }
    q->tail = op;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mtx);
    return HP_OK;
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
}

void
commitq_free(commitq *q)
{
    if (q == NULL) {
        return;
    }
    commitq_stop(q);
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
