/*
 * worker.c - the worker runtime (hopper_worker_*): a claim loop, handler
 * threads, heartbeats and a graceful stop over one client.
 *
 * Threads: one claimer, `concurrency` handlers and one keeper. The worker
 * owns `concurrency` job slots; a slot is FREE, QUEUED (claimed, waiting
 * for a handler) or RUNNING. The claimer asks for as many messages as
 * slots are free, so a claimed message never waits for a handler for
 * long and the broker never hands this worker more than it can run. The
 * keeper extends the lease of every held slot every lease / 3, and after
 * a stop's grace gives back what is still held. A slot's generation
 * counter tells the keeper, which calls the broker without the lock, that
 * the slot it looked at was reused meanwhile.
 *
 * Stop is async-signal-safe: a flag and a byte into a pipe that the
 * keeper polls as its timer; the keeper then wakes the others through the
 * condition variable (which a signal handler may not touch).
 *
 * Every call the runtime makes may be repeated safely: an ack, nack or
 * extend repeated with the same claim token reports the first outcome
 * (docs/protocol.md, "Retries"), so a settle that failed for want of the
 * broker is simply sent again while the lease lasts.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_int.h"

#define DEFAULT_WAIT_MS     5000u
#define DEFAULT_GRACE_MS    10000u
#define DEFAULT_BACKOFF_MIN 100u
#define DEFAULT_BACKOFF_MAX 5000u
#define MAX_WAIT_MS         30000u
/* The keeper looks at least this often, whatever is due. */
#define KEEPER_TICK_MS 1000u

enum slot_state {
    SLOT_FREE,
    SLOT_QUEUED,
    SLOT_RUNNING
};

struct hopper_job {
    hopper_worker *w;
    enum slot_state state; /* w->mtx */
    uint64_t gen;          /* w->mtx: bumped when the slot is filled */
    hopper_message m;      /* owned while not FREE */
    uint64_t extend_at;    /* w->mtx: monotonic ms of the next heartbeat */
    uint64_t expires_at;   /* w->mtx: monotonic ms the lease runs out by */
    bool settled;          /* w->mtx: a settle call went out and ended */
    bool cancelled;        /* w->mtx: given back or lost */
    unsigned busy;         /* w->mtx: the keeper is giving it back */
};

struct hopper_worker {
    hopper_client *c;
    hopper_worker_opts o; /* defaults filled, strings below */
    char *lane, *target, *consumer;

    pthread_mutex_t mtx;
    pthread_cond_t cond;
    hopper_job *jobs;       /* o.concurrency slots */
    unsigned n_free;        /* w->mtx */
    bool claimer_done;      /* w->mtx */
    unsigned handlers_done; /* w->mtx */
    bool stop_seen;         /* w->mtx: the keeper noticed the stop */
    uint64_t grace_end;     /* w->mtx: monotonic ms, once stop_seen */
    uint64_t rand;          /* w->mtx: jitter */

    _Atomic bool stopping;
    int pipe_rd, pipe_wr;

    pthread_t claimer, keeper;
    pthread_t *handlers;
    unsigned n_handlers; /* started */
    bool claimer_started, keeper_started;
    bool waited;

    int fatal_code; /* w->mtx: why it stopped by itself */
    hopper_status fatal_st;

    hopper_worker_counts counts; /* w->mtx */
};

/* ---- small helpers ------------------------------------------------------- */

/* Calls worth repeating: the broker could not be reached, did not answer
 * in time, or said so itself. */
static bool
transient(int code)
{
    return code == HOPPER_UNAVAILABLE || code == HOPPER_DEADLINE_EXCEEDED ||
           code == HOPPER_RESOURCE_EXHAUSTED || code == HOPPER_ABORTED ||
           code == HOPPER_INTERNAL;
}

static void
report(hopper_worker *w, const char *what, const hopper_status *st)
{
    pthread_mutex_lock(&w->mtx);
    w->counts.errors++;
    pthread_mutex_unlock(&w->mtx);
    if (w->o.on_error != NULL) {
        w->o.on_error(w->o.error_arg, what, st);
    }
}

static void
abstime_in(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000u);
    ts->tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits up to ms on w->cond (held: w->mtx), or until a stop. */
static void
nap_locked(hopper_worker *w, uint64_t ms)
{
    struct timespec ts;
    abstime_in(&ts, ms);
    if (!atomic_load(&w->stopping)) {
        pthread_cond_timedwait(&w->cond, &w->mtx, &ts);
    }
}

/* The next backoff after `cur`, doubling up to the maximum, with up to
 * 25% taken off at random so that many workers do not retry in step. */
static uint64_t
backoff_next(hopper_worker *w, uint64_t cur, uint64_t *wait)
{
    uint64_t next = cur == 0 ? w->o.backoff_min_ms : cur * 2;
    if (next > w->o.backoff_max_ms) {
        next = w->o.backoff_max_ms;
    }
    pthread_mutex_lock(&w->mtx);
    w->rand = w->rand * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t r = w->rand >> 33;
    pthread_mutex_unlock(&w->mtx);
    *wait = next - (next / 4) * (r % 1000u) / 1000u;
    return next;
}

/* A byte into the pipe the keeper polls as its timer. */
static void
wake_keeper(hopper_worker *w)
{
    if (w->pipe_wr >= 0) {
        ssize_t n = write(w->pipe_wr, "w", 1);
        (void)n; /* a full pipe already holds a wake-up */
    }
}

static void
free_slot_locked(hopper_worker *w, hopper_job *j)
{
    hc_message_release(&j->m);
    memset(&j->m, 0, sizeof(j->m));
    j->state = SLOT_FREE;
    w->n_free++;
    pthread_cond_broadcast(&w->cond);
}

/* ---- settling ------------------------------------------------------------ */

typedef enum settle_kind {
    SETTLE_ACK,
    SETTLE_RETRY,
    SETTLE_FAIL,
    SETTLE_SNOOZE,
    SETTLE_GIVE_BACK,
} settle_kind;

typedef struct settle_args {
    settle_kind kind;
    const void *result;
    size_t result_len;
    const hopper_draft *followups;
    size_t n_followups;
    hopper_enqueued *followups_out;
    const char *error;
    uint64_t delay_ms;
} settle_args;

static int
settle_once(hopper_worker *w, const hopper_message *m, const settle_args *a,
            hopper_status *st)
{
    if (a->kind == SETTLE_ACK) {
        hopper_ack_item it = { .id = m->id,
                               .token = m->token,
                               .result = a->result,
                               .result_len = a->result_len };
        return hopper_ack(w->c, &it, 1, a->followups, a->n_followups,
                          a->followups_out, st);
    }
    hopper_nack_opts o = { 0 };
    o.error = a->error;
    o.retry_in_ms = a->delay_ms;
    o.keep_attempt = a->kind == SETTLE_SNOOZE || a->kind == SETTLE_GIVE_BACK;
    o.dead_letter = a->kind == SETTLE_FAIL;
    return hopper_nack(w->c, m->id, &m->token, &o, NULL, st);
}

static void
count_settled(hopper_worker *w, settle_kind kind, int code)
{
    pthread_mutex_lock(&w->mtx);
    if (code == HOPPER_FAILED_PRECONDITION) {
        w->counts.lost++;
    } else if (code == HOPPER_OK) {
        switch (kind) {
        case SETTLE_ACK:
            w->counts.acked++;
            break;
        case SETTLE_RETRY:
            w->counts.retried++;
            break;
        case SETTLE_FAIL:
            w->counts.failed++;
            break;
        case SETTLE_SNOOZE:
            w->counts.snoozed++;
            break;
        case SETTLE_GIVE_BACK:
            w->counts.given_back++;
            break;
        }
    }
    pthread_mutex_unlock(&w->mtx);
}

/* Sends the settle, again after a backoff while the broker cannot be
 * reached and the lease (by our clock) still runs. */
static int
settle_retrying(hopper_worker *w, hopper_job *j, const settle_args *a,
                hopper_status *st)
{
    uint64_t backoff = 0, wait;
    int code;

    for (;;) {
        code = settle_once(w, &j->m, a, st);
        if (!transient(code)) {
            break;
        }
        report(w, "settle", st);
        backoff = backoff_next(w, backoff, &wait);
        uint64_t until = hc_now_ms() + wait;
        bool give_up = false;
        pthread_mutex_lock(&w->mtx);
        /* The lock's condition is broadcast for many reasons: sleep on
         * until the backoff is over, unless the lease will be. */
        while (!(give_up = until >= j->expires_at ||
                           (a->kind != SETTLE_GIVE_BACK && j->cancelled)) &&
               hc_now_ms() < until) {
            struct timespec ts;
            abstime_in(&ts, until - hc_now_ms());
            pthread_cond_timedwait(&w->cond, &w->mtx, &ts);
        }
        pthread_mutex_unlock(&w->mtx);
        if (give_up) {
            break;
        }
    }
    count_settled(w, a->kind, code);
    return code;
}

/* A handler's settle: once per job, and not after the claim is gone. */
static int
job_settle(hopper_job *j, const settle_args *a, hopper_status *st)
{
    hopper_worker *w;

    if (j == NULL) {
        return hc_bad_arg(st, "no job");
    }
    w = j->w;
    pthread_mutex_lock(&w->mtx);
    bool settled = j->settled, cancelled = j->cancelled;
    j->settled = true;
    pthread_mutex_unlock(&w->mtx);
    if (cancelled) {
        return hc_fail(st, HOPPER_FAILED_PRECONDITION, HOPPER_R_LOST_CLAIM,
                       "claim on message %s is lost: given back or expired",
                       j->m.id);
    }
    if (settled) {
        return hc_fail(st, HOPPER_FAILED_PRECONDITION, HOPPER_R_ALREADY_SETTLED,
                       "message %s was settled before", j->m.id);
    }
    return settle_retrying(w, j, a, st);
}

int
hopper_job_ack(hopper_job *j, const void *result, size_t result_len,
               const hopper_draft *followups, size_t n_followups,
               hopper_enqueued *followups_out, hopper_status *st)
{
    settle_args a = { .kind = SETTLE_ACK,
                      .result = result,
                      .result_len = result_len,
                      .followups = followups,
                      .n_followups = n_followups,
                      .followups_out = followups_out };
    return job_settle(j, &a, st);
}

int
hopper_job_retry(hopper_job *j, const char *error, uint64_t delay_ms,
                 hopper_status *st)
{
    settle_args a = { .kind = SETTLE_RETRY,
                      .error = error,
                      .delay_ms = delay_ms };
    return job_settle(j, &a, st);
}

int
hopper_job_fail(hopper_job *j, const char *error, hopper_status *st)
{
    settle_args a = { .kind = SETTLE_FAIL, .error = error };
    return job_settle(j, &a, st);
}

int
hopper_job_snooze(hopper_job *j, uint64_t delay_ms, hopper_status *st)
{
    settle_args a = { .kind = SETTLE_SNOOZE, .delay_ms = delay_ms };
    return job_settle(j, &a, st);
}

const hopper_message *
hopper_job_message(const hopper_job *j)
{
    return j != NULL ? &j->m : NULL;
}

hopper_worker *
hopper_job_worker(const hopper_job *j)
{
    return j != NULL ? j->w : NULL;
}

bool
hopper_job_stopping(const hopper_job *j)
{
    return j != NULL && atomic_load(&j->w->stopping);
}

bool
hopper_job_cancelled(const hopper_job *j)
{
    if (j == NULL) {
        return true;
    }
    pthread_mutex_lock(&j->w->mtx);
    bool c = j->cancelled;
    pthread_mutex_unlock(&j->w->mtx);
    return c;
}

/* Gives a job back (no attempt used) unless it was settled; w->mtx not
 * held. */
static void
give_back(hopper_worker *w, hopper_job *j)
{
    hopper_status st;
    pthread_mutex_lock(&w->mtx);
    bool settled = j->settled;
    if (!settled) {
        j->settled = true;
        j->cancelled = true;
    }
    pthread_mutex_unlock(&w->mtx);
    if (settled) {
        return;
    }
    settle_args a = { .kind = SETTLE_GIVE_BACK };
    int code = settle_retrying(w, j, &a, &st);
    if (code != HOPPER_OK && code != HOPPER_FAILED_PRECONDITION) {
        report(w, "give back", &st);
    }
}

/* ---- the threads ----------------------------------------------------------
 */

static void
stop_with(hopper_worker *w, int code, const hopper_status *st)
{
    pthread_mutex_lock(&w->mtx);
    if (w->fatal_code == HOPPER_OK) {
        w->fatal_code = code;
        w->fatal_st = *st;
    }
    pthread_mutex_unlock(&w->mtx);
    hopper_worker_stop(w);
}

/* Puts a claimed batch into free slots; what finds no slot (never, as the
 * claim asked for no more than were free) is given back. */
static void
queue_batch(hopper_worker *w, hopper_batch *b)
{
    uint64_t now = hc_now_ms();
    size_t i = 0;

    pthread_mutex_lock(&w->mtx);
    w->counts.claimed += b->n;
    for (unsigned s = 0; s < w->o.concurrency && i < b->n; s++) {
        hopper_job *j = &w->jobs[s];
        if (j->state != SLOT_FREE) {
            continue;
        }
        j->m = b->msgs[i];
        memset(&b->msgs[i], 0, sizeof(b->msgs[i]));
        i++;
        j->state = SLOT_QUEUED;
        j->gen++;
        j->settled = j->cancelled = false;
        j->extend_at = now + w->o.lease_ms / 3;
        j->expires_at = now + w->o.lease_ms;
        w->n_free--;
    }
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mtx);
    for (; i < b->n; i++) {
        hopper_job extra = { .w = w, .m = b->msgs[i] };
        extra.expires_at = now + w->o.lease_ms;
        give_back(w, &extra);
        hc_message_release(&extra.m);
    }
    hopper_batch_free(b);
}

static void *
claimer_main(void *arg)
{
    hopper_worker *w = arg;
    uint64_t backoff = 0, wait;
    hopper_status st;

    for (;;) {
        pthread_mutex_lock(&w->mtx);
        while (!atomic_load(&w->stopping) && w->n_free == 0) {
            pthread_cond_wait(&w->cond, &w->mtx);
        }
        unsigned want = w->n_free;
        pthread_mutex_unlock(&w->mtx);
        if (atomic_load(&w->stopping)) {
            break;
        }
        hopper_claim_opts co = { .target = w->target,
                                 .max = want,
                                 .lease_ms = w->o.lease_ms,
                                 .wait_ms = w->o.wait_ms,
                                 .consumer = w->consumer };
        hopper_batch *b;
        int code = hopper_claim(w->c, w->lane, &co, &b, &st);
        if (code == HOPPER_OK) {
            backoff = 0;
            queue_batch(w, b);
            continue;
        }
        report(w, "claim", &st);
        if (!transient(code)) {
            stop_with(w, code, &st);
            break;
        }
        backoff = backoff_next(w, backoff, &wait);
        pthread_mutex_lock(&w->mtx);
        nap_locked(w, wait);
        pthread_mutex_unlock(&w->mtx);
    }
    pthread_mutex_lock(&w->mtx);
    w->claimer_done = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mtx);
    wake_keeper(w);
    return NULL;
}

static hopper_job *
find_queued_locked(hopper_worker *w)
{
    for (unsigned s = 0; s < w->o.concurrency; s++) {
        if (w->jobs[s].state == SLOT_QUEUED) {
            return &w->jobs[s];
        }
    }
    return NULL;
}

static void
run_job(hopper_worker *w, hopper_job *j)
{
    hopper_status st;

    w->o.handler(w->o.handler_arg, j);
    pthread_mutex_lock(&w->mtx);
    bool done = j->settled || j->cancelled;
    pthread_mutex_unlock(&w->mtx);
    if (!done) {
        settle_args a = { .kind = SETTLE_RETRY,
                          .error = "the handler returned without settling "
                                   "the message" };
        int code = job_settle(j, &a, &st);
        if (code != HOPPER_OK && code != HOPPER_FAILED_PRECONDITION) {
            report(w, "settle", &st);
        }
    }
}

static void *
handler_main(void *arg)
{
    hopper_worker *w = arg;

    pthread_mutex_lock(&w->mtx);
    for (;;) {
        hopper_job *j = find_queued_locked(w);
        if (j == NULL) {
            if (atomic_load(&w->stopping) && w->claimer_done) {
                break;
            }
            pthread_cond_wait(&w->cond, &w->mtx);
            continue;
        }
        j->state = SLOT_RUNNING;
        pthread_mutex_unlock(&w->mtx);
        if (atomic_load(&w->stopping)) {
            give_back(w, j); /* claimed, never started */
        } else {
            run_job(w, j);
        }
        pthread_mutex_lock(&w->mtx);
        while (j->busy > 0) {
            pthread_cond_wait(&w->cond, &w->mtx);
        }
        free_slot_locked(w, j);
    }
    w->handlers_done++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mtx);
    wake_keeper(w); /* it may be waiting for the last handler */
    return NULL;
}

/* One heartbeat for slot j as seen at generation gen; w->mtx held on
 * entry and exit, dropped for the call. */
static void
extend_locked(hopper_worker *w, hopper_job *j)
{
    uint64_t gen = j->gen, expires = 0;
    char id[sizeof(j->m.id)];
    hopper_token token = j->m.token;
    hopper_status st;

    memcpy(id, j->m.id, sizeof(id));
    /* No second heartbeat of this slot while this one is out. */
    j->extend_at = UINT64_MAX;
    pthread_mutex_unlock(&w->mtx);
    uint64_t sent = hc_now_ms();
    int code = hopper_extend(w->c, id, &token, w->o.lease_ms, &expires, &st);
    if (code != HOPPER_OK) {
        report(w, "extend", &st);
    }
    pthread_mutex_lock(&w->mtx);
    if (j->gen != gen || j->state == SLOT_FREE) {
        return; /* settled and reused meanwhile */
    }
    if (code == HOPPER_OK) {
        w->counts.extended++;
        j->expires_at = sent + w->o.lease_ms;
        j->extend_at = sent + w->o.lease_ms / 3;
    } else if (code == HOPPER_FAILED_PRECONDITION || code == HOPPER_NOT_FOUND) {
        if (!j->settled) {
            w->counts.lost++;
            j->cancelled = true;
        }
    } else {
        /* Try again soon, well before the lease runs out. */
        uint64_t again = w->o.lease_ms / 10;
        j->extend_at =
            hc_now_ms() + (again < KEEPER_TICK_MS ? again : KEEPER_TICK_MS);
    }
}

/* After the grace: gives back every job still held by a handler. */
static void
give_back_running_locked(hopper_worker *w)
{
    for (unsigned s = 0; s < w->o.concurrency; s++) {
        hopper_job *j = &w->jobs[s];
        if (j->state != SLOT_RUNNING || j->settled || j->cancelled) {
            continue;
        }
        /* busy keeps its handler, should it return meanwhile, from
         * freeing the message this call reads. */
        j->busy++;
        pthread_mutex_unlock(&w->mtx);
        give_back(w, j);
        pthread_mutex_lock(&w->mtx);
        j->busy--;
        pthread_cond_broadcast(&w->cond);
    }
}

static void *
keeper_main(void *arg)
{
    hopper_worker *w = arg;

    pthread_mutex_lock(&w->mtx);
    for (;;) {
        uint64_t now = hc_now_ms(), next = now + KEEPER_TICK_MS;
        if (atomic_load(&w->stopping) && !w->stop_seen) {
            w->stop_seen = true;
            w->grace_end = now + w->o.grace_ms;
            pthread_cond_broadcast(&w->cond);
        }
        if (w->stop_seen && w->claimer_done &&
            w->handlers_done == w->n_handlers) {
            break;
        }
        for (unsigned s = 0; s < w->o.concurrency; s++) {
            hopper_job *j = &w->jobs[s];
            if (j->state == SLOT_FREE || j->settled || j->cancelled) {
                continue;
            }
            if (j->extend_at <= now) {
                extend_locked(w, j);
                now = hc_now_ms();
            }
            if (j->extend_at < next) {
                next = j->extend_at;
            }
        }
        if (w->stop_seen) {
            if (now >= w->grace_end) {
                give_back_running_locked(w);
            } else if (w->grace_end < next) {
                next = w->grace_end;
            }
        }
        now = hc_now_ms();
        pthread_mutex_unlock(&w->mtx);
        if (next > now) {
            uint64_t ms = next - now;
            struct pollfd p = { .fd = w->pipe_rd, .events = POLLIN };
            if (poll(&p, 1, (int)(ms > KEEPER_TICK_MS ? KEEPER_TICK_MS : ms)) >
                0) {
                char drain[16];
                ssize_t n = read(w->pipe_rd, drain, sizeof(drain));
                (void)n; /* the flag is what counts; the byte only wakes */
            }
        }
        pthread_mutex_lock(&w->mtx);
    }
    pthread_mutex_unlock(&w->mtx);
    return NULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

void
hopper_worker_opts_init(hopper_worker_opts *o)
{
    if (o != NULL) {
        memset(o, 0, sizeof(*o));
    }
}

static int
opts_check(const hopper_worker_opts *o, hopper_status *st)
{
    if (o == NULL || o->lane == NULL || o->lane[0] == '\0' ||
        o->handler == NULL) {
        return hc_bad_arg(st, "a worker needs a lane and a handler");
    }
    if (o->concurrency > HOPPER_WORKER_MAX_CONCURRENCY) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_ARGUMENT,
                       "concurrency is over %u", HOPPER_WORKER_MAX_CONCURRENCY);
    }
    if (o->wait_ms > MAX_WAIT_MS) {
        return hc_bad_arg(st, "wait_ms is over 30000");
    }
    if (o->lease_ms != 0 && o->lease_ms < HOPPER_WORKER_MIN_LEASE_MS) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_ARGUMENT,
                       "lease_ms under %u leaves no time for heartbeats",
                       HOPPER_WORKER_MIN_LEASE_MS);
    }
    return HOPPER_OK;
}

static char *
dup_or_null(const char *s, bool *oom)
{
    if (s == NULL) {
        return NULL;
    }
    char *d = strdup(s);
    *oom = *oom || d == NULL;
    return d;
}

static int
fill(hopper_worker *w, hopper_client *c, const hopper_worker_opts *o,
     hopper_status *st)
{
    bool oom = false;

    w->c = c;
    w->o = *o;
    w->o.concurrency = o->concurrency ? o->concurrency : 1;
    w->o.lease_ms = o->lease_ms ? o->lease_ms : HOPPER_DEFAULT_LEASE_MS;
    w->o.wait_ms = o->wait_ms ? o->wait_ms : DEFAULT_WAIT_MS;
    w->o.grace_ms = o->grace_ms ? o->grace_ms : DEFAULT_GRACE_MS;
    w->o.backoff_min_ms =
        o->backoff_min_ms ? o->backoff_min_ms : DEFAULT_BACKOFF_MIN;
    w->o.backoff_max_ms =
        o->backoff_max_ms ? o->backoff_max_ms : DEFAULT_BACKOFF_MAX;
    if (w->o.backoff_max_ms < w->o.backoff_min_ms) {
        w->o.backoff_max_ms = w->o.backoff_min_ms;
    }
    w->lane = dup_or_null(o->lane, &oom);
    w->target = dup_or_null(o->target, &oom);
    w->consumer = dup_or_null(o->consumer, &oom);
    w->jobs = calloc(w->o.concurrency, sizeof(*w->jobs));
    w->handlers = calloc(w->o.concurrency, sizeof(*w->handlers));
    if (oom || w->jobs == NULL || w->handlers == NULL) {
        return hc_no_memory(st);
    }
    for (unsigned s = 0; s < w->o.concurrency; s++) {
        w->jobs[s].w = w;
    }
    w->n_free = w->o.concurrency;
    w->rand = (uint64_t)hc_now_ms() ^ (uint64_t)(uintptr_t)w;
    return HOPPER_OK;
}

static int
open_pipe(hopper_worker *w, hopper_status *st)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return hc_fail(st, HOPPER_RESOURCE_EXHAUSTED, HOPPER_R_NO_DESCRIPTORS,
                       "cannot make a pipe: %s", strerror(errno));
    }
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    }
    w->pipe_rd = fds[0];
    w->pipe_wr = fds[1];
    return HOPPER_OK;
}

static int
start_threads(hopper_worker *w, hopper_status *st)
{
    int rc;

    for (unsigned i = 0; i < w->o.concurrency; i++) {
        if ((rc = pthread_create(&w->handlers[i], NULL, handler_main, w)) !=
            0) {
            goto fail;
        }
        w->n_handlers++;
    }
    if ((rc = pthread_create(&w->keeper, NULL, keeper_main, w)) != 0) {
        goto fail;
    }
    w->keeper_started = true;
    if ((rc = pthread_create(&w->claimer, NULL, claimer_main, w)) != 0) {
        goto fail;
    }
    w->claimer_started = true;
    return HOPPER_OK;
fail:
    return hc_fail(st, HOPPER_RESOURCE_EXHAUSTED, HOPPER_R_NO_THREAD,
                   "cannot start a worker thread: %s", strerror(rc));
}

int
hopper_worker_start(hopper_client *c, const hopper_worker_opts *o,
                    hopper_worker **out, hopper_status *st)
{
    hopper_worker *w;
    int code;

    if (out == NULL) {
        return hc_bad_arg(st, "out must not be NULL");
    }
    *out = NULL;
    if (c == NULL) {
        return hc_bad_arg(st, "a worker needs a client");
    }
    if ((code = opts_check(o, st)) != HOPPER_OK) {
        return code;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        return hc_no_memory(st);
    }
    w->pipe_rd = w->pipe_wr = -1;
    pthread_mutex_init(&w->mtx, NULL);
    pthread_cond_init(&w->cond, NULL);
    if ((code = fill(w, c, o, st)) != HOPPER_OK ||
        (code = open_pipe(w, st)) != HOPPER_OK) {
        hopper_worker_free(w);
        return code;
    }
    if ((code = start_threads(w, st)) != HOPPER_OK) {
        /* Whatever started sees the stop, claims nothing more and ends;
         * the claimer, if it started, may be in a claim for wait_ms. */
        if (!w->claimer_started) {
            w->claimer_done = true;
        }
        if (!w->keeper_started) {
            w->stop_seen = true;
        }
        hopper_worker_free(w);
        return code;
    }
    *out = w;
    return HOPPER_OK;
}

void
hopper_worker_stop(hopper_worker *w)
{
    if (w == NULL) {
        return;
    }
    atomic_store(&w->stopping, true);
    wake_keeper(w);
}

int
hopper_worker_wait(hopper_worker *w, hopper_status *st)
{
    if (w == NULL) {
        return hc_bad_arg(st, "no worker");
    }
    if (!w->waited) {
        w->waited = true;
        if (w->claimer_started) {
            pthread_join(w->claimer, NULL);
        }
        if (!w->keeper_started) {
            /* Only if starting failed: the handlers wait for the stop. */
            pthread_mutex_lock(&w->mtx);
            pthread_cond_broadcast(&w->cond);
            pthread_mutex_unlock(&w->mtx);
        }
        for (unsigned i = 0; i < w->n_handlers; i++) {
            pthread_join(w->handlers[i], NULL);
        }
        if (w->keeper_started) {
            pthread_join(w->keeper, NULL);
        }
    }
    if (w->fatal_code != HOPPER_OK) {
        if (st != NULL) {
            *st = w->fatal_st;
        }
        return w->fatal_code;
    }
    return HOPPER_OK;
}

void
hopper_worker_free(hopper_worker *w)
{
    if (w == NULL) {
        return;
    }
    if (w->n_handlers > 0 || w->claimer_started || w->keeper_started) {
        hopper_status st;
        hopper_worker_stop(w);
        int code = hopper_worker_wait(w, &st);
        (void)code; /* the caller did not ask why it stopped */
    }
    for (unsigned s = 0; w->jobs != NULL && s < w->o.concurrency; s++) {
        hc_message_release(&w->jobs[s].m);
    }
    if (w->pipe_rd >= 0) {
        close(w->pipe_rd);
    }
    if (w->pipe_wr >= 0) {
        close(w->pipe_wr);
    }
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mtx);
    free(w->jobs);
    free(w->handlers);
    free(w->lane);
    free(w->target);
    free(w->consumer);
    free(w);
}

void
hopper_worker_counts_get(hopper_worker *w, hopper_worker_counts *out)
{
    if (w == NULL || out == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mtx);
    *out = w->counts;
    pthread_mutex_unlock(&w->mtx);
}
