/*
 * worker_test.c - libhopper's worker runtime and per-item acks against a
 * real hopperd: every outcome a handler can choose, heartbeats that keep a
 * claim past its first lease, a graceful stop (finish within the grace,
 * or be given back at no attempt's cost), a broker restart under a
 * running worker, and per-item acks. Nothing sleeps to synchronise: tests
 * wait (bounded, generously) for a condition the runtime's counts or the
 * broker show.
 */
#include <hopper/hopper.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

#define WAIT_LIMIT_MS 60000

typedef struct fixture {
    broker_proc bp;
    hopper_client *c;
    hopper_worker *w;
    /* What the handler does, chosen by the test. */
    int mode;
    pthread_mutex_t mtx;
    unsigned attempts_seen[8];
    size_t n_seen;
    int late_ack_code; /* MODE_IGNORE_STOP: the ack after the give-back */
    char late_ack_reason[48];
} fixture;

enum {
    MODE_ACK,
    MODE_RETRY,
    MODE_FAIL,
    MODE_SNOOZE,
    MODE_RETURN,
    MODE_OUTLIVE_LEASE,
    MODE_FINISH_ON_STOP,
    MODE_IGNORE_STOP,
};

static void
nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static hopper_worker_counts
counts(fixture *f)
{
    hopper_worker_counts k;
    hopper_worker_counts_get(f->w, &k);
    return k;
}

/* Polls (every 5 ms) until the field of the worker's counts reaches n;
 * fails the test after WAIT_LIMIT_MS. */
#define wait_count(f, field, n)                                         \
    do {                                                                \
        uint64_t until_ = mono_ms() + WAIT_LIMIT_MS;                    \
        while (counts(f).field < (n)) {                                 \
            if (mono_ms() > until_) {                                   \
                fail_msg("counts." #field " stayed at %llu, want %llu", \
                         (unsigned long long)counts(f).field,           \
                         (unsigned long long)(n));                      \
            }                                                           \
            nap_ms(5);                                                  \
        }                                                               \
    } while (0)

/* Waits until a handler has started on a message. */
static void
wait_started(fixture *f)
{
    uint64_t until = mono_ms() + WAIT_LIMIT_MS;
    for (;;) {
        pthread_mutex_lock(&f->mtx);
        size_t n = f->n_seen;
        pthread_mutex_unlock(&f->mtx);
        if (n > 0) {
            return;
        }
        if (mono_ms() > until) {
            fail_msg("no handler started");
        }
        nap_ms(5);
    }
}

static void
handler(void *arg, hopper_job *job)
{
    fixture *f = arg;
    const hopper_message *m = hopper_job_message(job);
    hopper_status st;
    int code = HOPPER_OK;

    pthread_mutex_lock(&f->mtx);
    if (f->n_seen < 8) {
        f->attempts_seen[f->n_seen++] = m->attempts;
    }
    pthread_mutex_unlock(&f->mtx);
    switch (f->mode) {
    case MODE_ACK:
        code = hopper_job_ack(job, "done", 4, NULL, 0, NULL, &st);
        break;
    case MODE_RETRY:
        code = hopper_job_retry(job, "try later", 60000, &st);
        break;
    case MODE_FAIL:
        code = hopper_job_fail(job, "bad input", &st);
        break;
    case MODE_SNOOZE:
        code = hopper_job_snooze(job, 60000, &st);
        break;
    case MODE_RETURN:
        break; /* the runtime retries it */
    case MODE_OUTLIVE_LEASE:
        /* Four heartbeats, one per second: the first lease (3 s) ran out
         * a while ago. */
        while (counts(f).extended < 4) {
            nap_ms(5);
        }
        code = hopper_job_ack(job, NULL, 0, NULL, 0, NULL, &st);
        break;
    case MODE_FINISH_ON_STOP:
        while (!hopper_job_stopping(job)) {
            nap_ms(5);
        }
        code = hopper_job_ack(job, NULL, 0, NULL, 0, NULL, &st);
        break;
    case MODE_IGNORE_STOP:
        while (!hopper_job_cancelled(job)) {
            nap_ms(5);
        }
        f->late_ack_code = hopper_job_ack(job, NULL, 0, NULL, 0, NULL, &st);
        memcpy(f->late_ack_reason, st.reason, sizeof(st.reason));
        break;
    }
    if (code != HOPPER_OK) {
        fprintf(stderr, "handler: %s %s: %s\n", hopper_status_str(code),
                st.reason, st.message);
    }
}

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    hopper_status st;
    assert_non_null(f);
    pthread_mutex_init(&f->mtx, NULL);
    assert_int_equal(broker_proc_start(&f->bp, NULL), 0);
    assert_int_equal(hopper_connect(f->bp.url, NULL, &f->c, &st), HOPPER_OK);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    hopper_worker_free(f->w);
    hopper_close(f->c);
    broker_proc_kill(&f->bp);
    broker_proc_cleanup(&f->bp);
    pthread_mutex_destroy(&f->mtx);
    free(f);
    return 0;
}

static void
start(fixture *f, int mode, unsigned concurrency, uint32_t lease_ms,
      uint32_t grace_ms)
{
    hopper_worker_opts o;
    hopper_status st;
    hopper_worker_opts_init(&o);
    o.lane = "jobs";
    o.concurrency = concurrency;
    o.lease_ms = lease_ms;
    o.grace_ms = grace_ms;
    o.wait_ms = 1000;
    o.handler = handler;
    o.handler_arg = f;
    f->mode = mode;
    int code = hopper_worker_start(f->c, &o, &f->w, &st);
    if (code != HOPPER_OK) {
        fail_msg("worker start: %s %s", st.reason, st.message);
    }
}

static void
stop(fixture *f)
{
    hopper_status st;
    hopper_worker_stop(f->w);
    assert_int_equal(hopper_worker_wait(f->w, &st), HOPPER_OK);
}

static void
enqueue(fixture *f, size_t n, uint32_t max_attempts)
{
    hopper_status st;
    for (size_t i = 0; i < n; i++) {
        hopper_draft d = { .lane = "jobs",
                           .payload = "p",
                           .payload_len = 1,
                           .max_attempts = max_attempts };
        assert_int_equal(hopper_enqueue(f->c, &d, 1, NULL, &st), HOPPER_OK);
    }
}

static hopper_lane_stats *
stats(fixture *f)
{
    hopper_lane_stats *s;
    hopper_status st;
    assert_int_equal(hopper_stats(f->c, "jobs", &s, &st), HOPPER_OK);
    return s;
}

static void
test_worker_acks_every_message_with_four_handlers(void **state)
{
    fixture *f = *state;
    enqueue(f, 20, 0);

    start(f, MODE_ACK, 4, 0, 0);
    wait_count(f, acked, 20);
    stop(f);

    hopper_lane_stats *s = stats(f);
    assert_int_equal(s->delivered, 20);
    assert_int_equal(s->claimed + s->pending, 0);
    hopper_lane_stats_free(s);
}

static void
test_retry_uses_an_attempt_and_requeues(void **state)
{
    fixture *f = *state;
    enqueue(f, 1, 5);

    start(f, MODE_RETRY, 1, 0, 0);
    wait_count(f, retried, 1);
    stop(f);

    hopper_lane_stats *s = stats(f);
    assert_int_equal(s->nacked_total, 1);
    assert_int_equal(s->dead, 0);
    assert_int_equal(s->delayed, 1);
    hopper_lane_stats_free(s);
}

static void
test_fail_makes_a_dead_letter_with_attempts_left(void **state)
{
    fixture *f = *state;
    enqueue(f, 1, 5);

    start(f, MODE_FAIL, 1, 0, 0);
    wait_count(f, failed, 1);
    stop(f);

    hopper_lane_stats *s = stats(f);
    assert_int_equal(s->dead, 1);
    hopper_lane_stats_free(s);
}

static void
test_snooze_puts_it_back_without_using_an_attempt(void **state)
{
    fixture *f = *state;
    hopper_page *p;
    hopper_status st;
    enqueue(f, 1, 1);

    start(f, MODE_SNOOZE, 1, 0, 0);
    wait_count(f, snoozed, 1);
    stop(f);

    assert_int_equal(hopper_list(f->c, "jobs", HOPPER_STATE_ANY, NULL, 0, 10,
                                 false, &p, &st),
                     HOPPER_OK);
    assert_int_equal(p->n, 1);
    assert_int_equal(p->msgs[0].state, HOPPER_STATE_DELAYED);
    assert_int_equal(p->msgs[0].attempts, 0);
    hopper_page_free(p);
}

static void
test_a_handler_that_returns_unsettled_gets_a_retry(void **state)
{
    fixture *f = *state;
    enqueue(f, 1, 5);

    start(f, MODE_RETURN, 1, 0, 0);
    wait_count(f, retried, 1);
    stop(f);

    /* (The lane's backoff is a second: it may have come round again.) */
    hopper_lane_stats *s = stats(f);
    assert_true(s->nacked_total >= 1);
    hopper_lane_stats_free(s);
}

static void
test_heartbeats_keep_a_claim_past_its_first_lease(void **state)
{
    fixture *f = *state;
    enqueue(f, 1, 5);

    start(f, MODE_OUTLIVE_LEASE, 1, 3000, 0);
    wait_count(f, acked, 1);
    stop(f);

    assert_int_equal(counts(f).lost, 0);
    hopper_lane_stats *s = stats(f);
    assert_int_equal(s->delivered, 1);
    assert_int_equal(s->expired_total, 0);
    hopper_lane_stats_free(s);
}

static void
test_stop_lets_a_running_handler_finish(void **state)
{
    fixture *f = *state;
    enqueue(f, 1, 5);
    start(f, MODE_FINISH_ON_STOP, 1, 0, 60000);
    wait_started(f); /* a message claimed but not started is given back */

    stop(f);

    assert_int_equal(counts(f).acked, 1);
    hopper_lane_stats *s = stats(f);
    assert_int_equal(s->delivered, 1);
    hopper_lane_stats_free(s);
}

static void
test_stop_gives_back_past_the_grace_without_using_an_attempt(void **state)
{
    fixture *f = *state;
    hopper_page *p;
    hopper_status st;
    enqueue(f, 1, 1);
    start(f, MODE_IGNORE_STOP, 1, 0, 300);
    wait_started(f);

    stop(f);

    assert_int_equal(counts(f).given_back, 1);
    assert_int_equal(f->late_ack_code, HOPPER_FAILED_PRECONDITION);
    assert_string_equal(f->late_ack_reason, "LOST_CLAIM");
    assert_int_equal(hopper_list(f->c, "jobs", HOPPER_STATE_ANY, NULL, 0, 10,
                                 false, &p, &st),
                     HOPPER_OK);
    assert_int_equal(p->n, 1);
    assert_int_equal(p->msgs[0].state, HOPPER_STATE_PENDING);
    assert_int_equal(p->msgs[0].attempts, 0);
    hopper_page_free(p);
}

static void
test_worker_carries_on_after_the_broker_restarts(void **state)
{
    fixture *f = *state;
    start(f, MODE_ACK, 2, 0, 0);
    enqueue(f, 1, 0);
    wait_count(f, acked, 1);

    assert_int_equal(broker_proc_stop(&f->bp), 0);
    uint64_t errors = counts(f).errors;
    wait_count(f, errors, errors + 2); /* claims refused, backing off */
    assert_int_equal(broker_proc_restart(&f->bp, NULL), 0);
    enqueue(f, 1, 0);
    wait_count(f, acked, 2);
    stop(f);
}

static void
test_a_bad_lane_stops_the_worker_with_its_error(void **state)
{
    fixture *f = *state;
    hopper_worker_opts o;
    hopper_status st;
    hopper_worker_opts_init(&o);
    o.lane = "no spaces allowed";
    o.handler = handler;
    o.handler_arg = f;
    assert_int_equal(hopper_worker_start(f->c, &o, &f->w, &st), HOPPER_OK);

    int code = hopper_worker_wait(f->w, &st);

    assert_int_equal(code, HOPPER_INVALID_ARGUMENT);
    assert_string_equal(st.reason, "BAD_NAME");
}

/* ---- per-item acks ------------------------------------------------------- */

static void
test_ack_each_acks_the_held_and_reports_the_lost(void **state)
{
    fixture *f = *state;
    hopper_claim_opts o = { .max = 2, .lease_ms = 30000 };
    hopper_batch *b;
    hopper_status st, each[2];
    hopper_enqueued fu_out;
    bool fu_done = true;
    enqueue(f, 2, 0);
    assert_int_equal(hopper_claim(f->c, "jobs", &o, &b, &st), HOPPER_OK);
    assert_int_equal(b->n, 2);
    hopper_nack_opts back = { .keep_attempt = true };
    assert_int_equal(
        hopper_nack(f->c, b->msgs[1].id, &b->msgs[1].token, &back, NULL, &st),
        HOPPER_OK);
    hopper_ack_item items[2] = {
        { .id = b->msgs[0].id, .token = b->msgs[0].token },
        { .id = b->msgs[1].id, .token = b->msgs[1].token }
    };
    hopper_draft fu = { .lane = "next", .payload = "x", .payload_len = 1 };

    int code =
        hopper_ack_each(f->c, items, 2, &fu, 1, each, &fu_out, &fu_done, &st);

    assert_int_equal(code, HOPPER_OK);
    assert_int_equal(each[0].code, HOPPER_OK);
    assert_int_equal(each[1].code, HOPPER_FAILED_PRECONDITION);
    assert_string_equal(each[1].reason, "LOST_CLAIM");
    assert_false(fu_done);
    hopper_lane_stats *s = stats(f);
    assert_int_equal(s->delivered, 1);
    assert_int_equal(s->pending, 1);
    hopper_lane_stats_free(s);
    hopper_batch_free(b);
}

static void
test_ack_each_with_every_item_held_enqueues_the_followups(void **state)
{
    fixture *f = *state;
    hopper_claim_opts o = { .max = 2, .lease_ms = 30000 };
    hopper_batch *b;
    hopper_status st, each[2];
    hopper_enqueued fu_out;
    bool fu_done = false;
    enqueue(f, 2, 0);
    assert_int_equal(hopper_claim(f->c, "jobs", &o, &b, &st), HOPPER_OK);
    hopper_ack_item items[2] = {
        { .id = b->msgs[0].id, .token = b->msgs[0].token },
        { .id = b->msgs[1].id, .token = b->msgs[1].token }
    };
    hopper_draft fu = { .lane = "next", .payload = "x", .payload_len = 1 };

    int code =
        hopper_ack_each(f->c, items, 2, &fu, 1, each, &fu_out, &fu_done, &st);

    assert_int_equal(code, HOPPER_OK);
    assert_true(fu_done);
    assert_int_equal(strlen(fu_out.id), 26);
    hopper_batch_free(b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_worker_acks_every_message_with_four_handlers),
        T(test_retry_uses_an_attempt_and_requeues),
        T(test_fail_makes_a_dead_letter_with_attempts_left),
        T(test_snooze_puts_it_back_without_using_an_attempt),
        T(test_a_handler_that_returns_unsettled_gets_a_retry),
        T(test_heartbeats_keep_a_claim_past_its_first_lease),
        T(test_stop_lets_a_running_handler_finish),
        T(test_stop_gives_back_past_the_grace_without_using_an_attempt),
        T(test_worker_carries_on_after_the_broker_restarts),
        T(test_a_bad_lane_stops_the_worker_with_its_error),
        T(test_ack_each_acks_the_held_and_reports_the_lost),
        T(test_ack_each_with_every_item_held_enqueues_the_followups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
