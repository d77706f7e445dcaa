/*
 * maint.c - the timer thread and the maintenance op it submits. The timer
 * sleeps until the earliest of: maintenance falling due, a timeout of the
 * long-poll part, the next check of the reader table. Maintenance is one
 * op of the commit queue (so it shares the writer with requests), never
 * two at once: the next is scheduled when the last is done.
 */
#include "broker/maint.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"

#define MAINT_STEP_LIMIT 256
/* A due time is wall clock, so the timer looks at the clock again at
 * least this often, and a wall clock stepped forward is noticed within it
 * (fault_clock_test). */
#define MAINT_RECHECK_MS 1000
/* How often the reader table is checked for slots of dead processes: a
 * slot left by a killed backup pins every page freed after its snapshot,
 * and at a few hundred commits a second the file then grows by tens of
 * MiB a second (fault_readers_test). */
#define READER_CHECK_MS 1000

struct maint {
    store *s;
    hp_clock *clock;
    commitq *q;
    uint64_t (*next_timeout)(void *arg);
    void (*expire)(void *arg, uint64_t now_mono_ms);
    void *timeouts_arg;

    pthread_t thread;
    bool started;
    pthread_mutex_t mtx;
    pthread_cond_t cond;      /* on CLOCK_MONOTONIC */
    bool stop;                /* m->mtx */
    uint64_t due_wall;        /* m->mtx; wall ms maintenance is due at,
                                 UINT64_MAX for never */
    uint64_t at_mono;         /* m->mtx; when the timer next looks */
    bool in_flight;           /* m->mtx; op is in the commit queue */
    uint64_t readers_at_mono; /* timer thread: next stale-reader check */

    commitq_op op;
    bool more;          /* writer thread: a step stopped at its limit */
    uint64_t next_wall; /* writer thread: the store's next due time */
};

/* Caller holds m->mtx. Maintenance is next due at wall time due_wall
 * (UINT64_MAX: nothing is scheduled, so it does not run at all); the timer
 * looks at the clock then, or after MAINT_RECHECK_MS if sooner. */
static void
schedule(maint *m, uint64_t due_wall, uint64_t now_wall, uint64_t now_mono)
{
    uint64_t wait = due_wall > now_wall ? due_wall - now_wall : 0;
    if (wait > MAINT_RECHECK_MS) {
        wait = MAINT_RECHECK_MS;
    }
    m->due_wall = due_wall;
    m->at_mono = due_wall == UINT64_MAX ? UINT64_MAX : now_mono + wait;
}

void
maint_after_group(maint *m)
{
    store_txn *t;
    hp_status st;
    uint64_t due;

    if (store_txn_begin(m->s, false, &t, &st) != HP_OK) {
        return;
    }
    hp_code code = store_next_due(t, &due, &st);
    store_txn_abort(t);
    if (code != HP_OK || due == UINT64_MAX) {
        return;
    }
    uint64_t now = hp_clock_now_ms(m->clock);
    pthread_mutex_lock(&m->mtx);
    if (due < m->due_wall) {
        schedule(m, due, now, hp_mono_ms());
        pthread_cond_signal(&m->cond);
    }
    pthread_mutex_unlock(&m->mtx);
}

static hp_code
maint_apply(commitq_op *op, store_txn *t, uint64_t now_ms, hp_status *st)
{
    maint *m = HP_CONTAINER_OF(op, maint, op);
    m->more = false;
    for (int step = 0; step < STORE_STEP_COUNT; step++) {
        store_step_res res;
        hp_code code = store_maint_step(t, (store_step)step, now_ms,
                                        MAINT_STEP_LIMIT, &res, st);
        if (code != HP_OK) {
            return code;
        }
        m->more = m->more || res.more;
    }
    return store_next_due(t, &m->next_wall, st);
}

static void
maint_done(commitq_op *op, hp_code code, const hp_status *st)
{
    maint *m = HP_CONTAINER_OF(op, maint, op);
    uint64_t now = hp_clock_now_ms(m->clock);
    uint64_t due = m->next_wall;

    if (code != HP_OK) {
        hp_log(HP_LOG_WARN, "maintenance failed", "code=%s reason=%s",
               hp_code_name(code), st->reason ? st->reason : "");
        due = now + MAINT_RECHECK_MS; /* try again, not in a loop */
    } else if (m->more) {
        due = now; /* a step stopped at its limit: go on at once */
    }
    pthread_mutex_lock(&m->mtx);
    m->in_flight = false;
    schedule(m, due, now, hp_mono_ms());
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->mtx);
}

static void
abs_time(uint64_t mono_ms, struct timespec *ts)
{
    /* The condition variable runs on CLOCK_MONOTONIC (see maint_new). */
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

/* Timer thread. */
static void
check_readers(maint *m, uint64_t now_mono)
{
    hp_status st;
    int cleared = 0;
    if (now_mono < m->readers_at_mono) {
        return;
    }
    m->readers_at_mono = now_mono + READER_CHECK_MS;
    if (store_clear_stale_readers(m->s, &cleared, &st) != HP_OK) {
        hp_log(HP_LOG_WARN, "reader check failed", "code=%s reason=%s",
               hp_code_name(st.code), st.reason ? st.reason : "");
    } else if (cleared > 0) {
        hp_log(HP_LOG_WARN, "stale readers cleared",
               "slots=%d detail=\"a process died inside a read transaction "
               "on the data file\"",
               cleared);
    }
}

static void *
timer_main(void *arg)
{
    maint *m = arg;
    pthread_mutex_lock(&m->mtx);
    while (!m->stop) {
        uint64_t now = hp_mono_ms();
        uint64_t next = m->next_timeout(m->timeouts_arg);
        if (!m->in_flight && m->at_mono < next) {
            next = m->at_mono;
        }
        if (m->readers_at_mono < next) {
            next = m->readers_at_mono;
        }
        if (next > now) {
            struct timespec ts;
            abs_time(next, &ts);
            pthread_cond_timedwait(&m->cond, &m->mtx, &ts);
            continue;
        }
        bool run = false;
        if (!m->in_flight && m->at_mono <= now) {
            uint64_t wall = hp_clock_now_ms(m->clock);
            if (wall >= m->due_wall) {
                run = true;
                m->in_flight = true;
            } else {
                /* Looked early to follow the wall clock: not due yet. */
                schedule(m, m->due_wall, wall, now);
            }
        }
        pthread_mutex_unlock(&m->mtx);
        check_readers(m, now);
        m->expire(m->timeouts_arg, now);
        if (run) {
            hp_status st;
            if (commitq_submit(m->q, &m->op, &st) != HP_OK) {
                pthread_mutex_lock(&m->mtx);
                m->in_flight = false;
                m->at_mono = now + MAINT_RECHECK_MS;
                pthread_mutex_unlock(&m->mtx);
            }
        }
        pthread_mutex_lock(&m->mtx);
    }
    pthread_mutex_unlock(&m->mtx);
    return NULL;
}

hp_code
maint_new(const maint_opts *o, maint **out, hp_status *st)
{
    pthread_condattr_t ca;
    maint *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    m->s = o->store;
    m->clock = o->clock;
    m->next_timeout = o->next_timeout;
    m->expire = o->expire;
    m->timeouts_arg = o->timeouts_arg;
    m->op.apply = maint_apply;
    m->op.done = maint_done;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&m->mtx, NULL);
    *out = m;
    return HP_OK;
}

hp_code
maint_start(maint *m, commitq *q, hp_status *st)
{
    m->q = q;
    /* Once at start: leases may have run out while the broker was down. */
    m->due_wall = 0;
    m->at_mono = hp_mono_ms();
    int rc = pthread_create(&m->thread, NULL, timer_main, m);
    if (rc != 0) {
        return hp_status_from_errno(st, rc, "cannot start the timer thread");
    }
    m->started = true;
    return HP_OK;
}

void
maint_kick(maint *m)
{
    pthread_mutex_lock(&m->mtx);
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->mtx);
}

void
maint_stop(maint *m)
{
    if (m == NULL || !m->started) {
        return;
    }
    pthread_mutex_lock(&m->mtx);
    m->stop = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->mtx);
    pthread_join(m->thread, NULL);
    m->started = false;
}

void
maint_free(maint *m)
{
    if (m == NULL) {
        return;
    }
    maint_stop(m);
    pthread_mutex_destroy(&m->mtx);
    pthread_cond_destroy(&m->cond);
    free(m);
}
