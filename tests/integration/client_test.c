/*
 * client_test.c - libhopper against a real hopperd process: the whole
 * lifecycle, a long-poll woken by another thread's enqueue, lease expiry
 * handing a message to another consumer, statuses for lost claims and
 * unknown ids, and scopes that never mix.
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

typedef struct fixture {
    broker_proc bp;
    hopper_client *c;
} fixture;

static hopper_client *
connect_to(fixture *f, const char *scope)
{
    hopper_options o;
    hopper_client *c;
    hopper_status st;
    hopper_options_init(&o);
    o.scope = scope;
    o.timeout_ms = 10000;
    assert_int_equal(hopper_connect(f->bp.url, &o, &c, &st), HOPPER_OK);
    return c;
}

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(broker_proc_start(&f->bp, NULL), 0);
    f->c = connect_to(f, NULL);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    hopper_close(f->c);
    assert_int_equal(broker_proc_stop(&f->bp), 0);
    broker_proc_cleanup(&f->bp);
    free(f);
    return 0;
}

static void
must(int code, const hopper_status *st)
{
    if (code != HOPPER_OK) {
        fail_msg("%s %s: %s", hopper_status_str(st->code), st->reason,
                 st->message);
    }
}

static void
enqueue_text(hopper_client *c, const char *lane, const char *text,
             hopper_enqueued *out)
{
    hopper_status st;
    hopper_draft d = { .lane = lane,
                       .payload = text,
                       .payload_len = strlen(text) };
    must(hopper_enqueue(c, &d, 1, out, &st), &st);
}

static hopper_batch *
claim(hopper_client *c, const char *lane, uint32_t max, uint32_t lease_ms,
      uint32_t wait_ms)
{
    hopper_status st;
    hopper_batch *b = NULL;
    hopper_claim_opts o = { .max = max,
                            .lease_ms = lease_ms,
                            .wait_ms = wait_ms,
                            .consumer = "client_test" };
    must(hopper_claim(c, lane, &o, &b, &st), &st);
    return b;
}

static void
test_lifecycle_enqueue_claim_ack_get(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    enqueue_text(f->c, "life", "payload-1", &e);

    hopper_batch *b = claim(f->c, "life", 10, 5000, 0);
    assert_int_equal(b->n, 1);
    assert_string_equal(b->msgs[0].id, e.id);
    assert_int_equal(b->msgs[0].state, HOPPER_STATE_CLAIMED);
    assert_int_equal(b->msgs[0].attempts, 1);
    assert_memory_equal(b->msgs[0].payload, "payload-1", 9);
    hopper_ack_item item = { .id = b->msgs[0].id,
                             .token = b->msgs[0].token,
                             .result = "ok",
                             .result_len = 2 };
    must(hopper_ack(f->c, &item, 1, NULL, 0, NULL, &st), &st);
    hopper_batch_free(b);

    hopper_message *m = NULL;
    must(hopper_get(f->c, e.id, &m, &st), &st);
    assert_int_equal(m->state, HOPPER_STATE_DELIVERED);
    assert_int_equal(m->result_len, 2);
    assert_memory_equal(m->result, "ok", 2);
    hopper_message_free(m);
    hopper_lane_stats *s = NULL;
    must(hopper_stats(f->c, "life", &s, &st), &st);
    assert_int_equal(s->delivered, 1);
    assert_int_equal(s->pending, 0);
    hopper_lane_stats_free(s);
}

static void
test_nack_to_dead_letter_and_replay(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    hopper_draft d = {
        .lane = "dl", .payload = "x", .payload_len = 1, .max_attempts = 1
    };
    must(hopper_enqueue(f->c, &d, 1, &e, &st), &st);
    hopper_batch *b = claim(f->c, "dl", 1, 5000, 0);
    assert_int_equal(b->n, 1);
    hopper_nack_opts no = { .error = "boom" };
    hopper_nack_result res;

    must(hopper_nack(f->c, b->msgs[0].id, &b->msgs[0].token, &no, &res, &st),
         &st);

    assert_true(res.dead);
    hopper_batch_free(b);
    uint64_t count = 0;
    bool more = true;
    const char *ids[1] = { e.id };
    must(hopper_dead_replay(f->c, "dl", ids, 1, 0, &count, &more, &st), &st);
    assert_int_equal(count, 1);
    hopper_message *m = NULL;
    must(hopper_get(f->c, e.id, &m, &st), &st);
    assert_int_equal(m->state, HOPPER_STATE_PENDING);
    assert_int_equal(m->attempts, 0);
    assert_string_equal(m->last_error, "boom");
    hopper_message_free(m);
}

static void
test_stale_token_ack_is_lost_claim(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    enqueue_text(f->c, "stale", "x", &e);
    hopper_batch *b = claim(f->c, "stale", 1, 5000, 0);
    hopper_token wrong = b->msgs[0].token;
    wrong.b[0] ^= 0xff;

    int code = hopper_ack1(f->c, b->msgs[0].id, &wrong, &st);

    assert_int_equal(code, HOPPER_FAILED_PRECONDITION);
    assert_string_equal(st.reason, "LOST_CLAIM");
    hopper_batch_free(b);
}

static void
test_unknown_id_is_not_found(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_message *m = NULL;

    int code = hopper_get(f->c, "01ARZ3NDEKTSV4RRFFQ69G5FAV", &m, &st);

    assert_int_equal(code, HOPPER_NOT_FOUND);
    assert_null(m);
}

typedef struct producer_arg {
    fixture *f;
    const char *lane;
} producer_arg;

static void *
late_producer(void *arg)
{
    producer_arg *a = arg;
    hopper_enqueued e;
    struct timespec ts = { 0, 200 * 1000 * 1000 };
    nanosleep(&ts, NULL); /* let the claim park first */
    enqueue_text(a->f->c, a->lane, "woke", &e);
    return NULL;
}

static void
test_long_poll_claim_is_woken_by_an_enqueue_from_another_thread(void **state)
{
    fixture *f = *state;
    pthread_t th;
    producer_arg a = { f, "poll" };
    assert_int_equal(pthread_create(&th, NULL, late_producer, &a), 0);

    /* Without the wake the claim would come back empty after 30 s. */
    hopper_batch *b = claim(f->c, "poll", 1, 5000, 30000);

    pthread_join(th, NULL);
    assert_int_equal(b->n, 1);
    assert_memory_equal(b->msgs[0].payload, "woke", 4);
    hopper_batch_free(b);
}

static void
test_expired_lease_redelivers_to_another_consumer(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    hopper_client *other = connect_to(f, NULL);
    enqueue_text(f->c, "lease", "x", &e);
    hopper_batch *first = claim(f->c, "lease", 1, 200, 0);
    assert_int_equal(first->n, 1);

    /* The other consumer waits; the lease runs out and it gets the message. */
    hopper_batch *second = claim(other, "lease", 1, 5000, 10000);

    assert_int_equal(second->n, 1);
    assert_string_equal(second->msgs[0].id, e.id);
    assert_int_equal(second->msgs[0].attempts, 2);
    int code = hopper_ack1(f->c, first->msgs[0].id, &first->msgs[0].token, &st);
    assert_int_equal(code, HOPPER_FAILED_PRECONDITION);
    must(hopper_ack1(other, second->msgs[0].id, &second->msgs[0].token, &st),
         &st);
    hopper_batch_free(first);
    hopper_batch_free(second);
    hopper_close(other);
}

static void
test_scopes_never_mix(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    hopper_client *acme = connect_to(f, "acme");
    hopper_client *globex = connect_to(f, "globex");
    enqueue_text(acme, "jobs", "acme-secret", &e);

    hopper_batch *b = claim(globex, "jobs", 10, 5000, 0);
    hopper_message *m = NULL;
    int code = hopper_get(globex, e.id, &m, &st);

    assert_int_equal(b->n, 0);
    assert_int_equal(code, HOPPER_NOT_FOUND);
    hopper_batch_free(b);
    b = claim(acme, "jobs", 10, 5000, 0);
    assert_int_equal(b->n, 1);
    hopper_batch_free(b);
    hopper_close(acme);
    hopper_close(globex);
}

static void
test_lane_pause_stops_claims_until_resumed(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    enqueue_text(f->c, "paused", "x", &e);
    must(hopper_lane_pause(f->c, "paused", true, &st), &st);

    hopper_batch *b = claim(f->c, "paused", 1, 5000, 0);
    assert_int_equal(b->n, 0);
    hopper_batch_free(b);
    must(hopper_lane_pause(f->c, "paused", false, &st), &st);
    b = claim(f->c, "paused", 1, 5000, 0);

    assert_int_equal(b->n, 1);
    hopper_batch_free(b);
}

/* ---- asynchronous enqueue -------------------------------------------- */

#define ASYNC_N      600
#define ASYNC_WINDOW 64

typedef struct pipeline {
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    size_t inflight, done, ok;
    int last_code;
    char last_reason[48];
    char ids[ASYNC_N][27];
} pipeline;

static void
on_enqueued(void *arg, int code, const hopper_enqueued *out, size_t n,
            const hopper_status *st)
{
    pipeline *p = arg;
    pthread_mutex_lock(&p->mtx);
    if (code == HOPPER_OK) {
        assert_int_equal(n, 1);
        memcpy(p->ids[p->ok++], out[0].id, 27);
    } else {
        snprintf(p->last_reason, sizeof(p->last_reason), "%s", st->reason);
    }
    p->last_code = code;
    p->inflight--;
    p->done++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mtx);
}

static int
cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_async_enqueue_keeps_a_pipeline_full_from_one_thread(void **state)
{
    fixture *f = *state;
    pipeline *p = calloc(1, sizeof(*p));
    hopper_status st;
    assert_non_null(p);
    pthread_mutex_init(&p->mtx, NULL);
    pthread_cond_init(&p->cond, NULL);

    for (size_t i = 0; i < ASYNC_N; i++) {
        char payload[16];
        snprintf(payload, sizeof(payload), "a%zu", i);
        hopper_draft d = { .lane = "async",
                           .payload = payload,
                           .payload_len = strlen(payload) };
        pthread_mutex_lock(&p->mtx);
        while (p->inflight >= ASYNC_WINDOW) {
            pthread_cond_wait(&p->cond, &p->mtx);
        }
        p->inflight++;
        pthread_mutex_unlock(&p->mtx);
        assert_int_equal(hopper_enqueue_async(f->c, &d, 1, on_enqueued, p, &st),
                         HOPPER_OK);
    }
    pthread_mutex_lock(&p->mtx);
    while (p->done < ASYNC_N) {
        pthread_cond_wait(&p->cond, &p->mtx);
    }
    pthread_mutex_unlock(&p->mtx);

    assert_int_equal(p->ok, ASYNC_N);
    qsort(p->ids, ASYNC_N, 27, cmp_id);
    for (size_t i = 1; i < ASYNC_N; i++) {
        assert_true(strcmp(p->ids[i - 1], p->ids[i]) < 0); /* all distinct */
    }
    hopper_lane_stats *ls = NULL;
    assert_int_equal(hopper_stats(f->c, "async", &ls, &st), HOPPER_OK);
    assert_int_equal(ls->pending, ASYNC_N);
    hopper_lane_stats_free(ls);

    /* A refused enqueue reaches the callback with the broker's reason. */
    hopper_draft bad = { .lane = "no lane!", .payload = "x", .payload_len = 1 };
    p->done = 0;
    p->inflight = 1;
    assert_int_equal(hopper_enqueue_async(f->c, &bad, 1, on_enqueued, p, &st),
                     HOPPER_OK);
    pthread_mutex_lock(&p->mtx);
    while (p->done < 1) {
        pthread_cond_wait(&p->cond, &p->mtx);
    }
    pthread_mutex_unlock(&p->mtx);
    assert_int_equal(p->last_code, HOPPER_INVALID_ARGUMENT);
    assert_string_equal(p->last_reason, "BAD_NAME");
    /* Bad arguments fail at once, and the callback never runs. */
    assert_int_equal(hopper_enqueue_async(f->c, &bad, 0, on_enqueued, p, &st),
                     HOPPER_INVALID_ARGUMENT);
    assert_int_equal(hopper_enqueue_async(f->c, &bad, 1, NULL, p, &st),
                     HOPPER_INVALID_ARGUMENT);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mtx);
    free(p);
}

static void
test_async_enqueue_to_no_broker_fails_at_once(void **state)
{
    (void)state;
    hopper_options o;
    hopper_client *c;
    hopper_status st;
    hopper_options_init(&o);
    o.timeout_ms = 60000; /* a refused connection must not wait for it */
    assert_int_equal(hopper_connect("tcp://127.0.0.1:1", &o, &c, &st),
                     HOPPER_OK);
    hopper_draft d = { .lane = "x", .payload = "x", .payload_len = 1 };

    int code = hopper_enqueue_async(c, &d, 1, on_enqueued, NULL, &st);

    assert_int_equal(code, HOPPER_UNAVAILABLE);
    assert_string_equal(st.reason, "UNREACHABLE");
    assert_non_null(strstr(st.message, "refused"));
    hopper_close(c);
}

static void
test_stats_page_through_a_lanes_targets(void **state)
{
    fixture *f = *state;
    hopper_status st;
    const char *targets[] = { "a", "b", "c" };
    for (size_t i = 0; i < 3; i++) {
        hopper_draft d = {
            .lane = "tg", .target = targets[i], .payload = "x", .payload_len = 1
        };
        must(hopper_enqueue(f->c, &d, 1, NULL, &st), &st);
    }
    hopper_lane_stats *s = NULL, *rest = NULL;

    must(hopper_stats_page(f->c, "tg", NULL, 0, 2, &s, &st), &st);
    assert_int_equal(s->n_targets, 2);
    assert_non_null(s->targets_next_cursor);
    must(hopper_stats_page(f->c, "tg", s->targets_next_cursor,
                           s->targets_next_cursor_len, 2, &rest, &st),
         &st);

    assert_int_equal(rest->n_targets, 1);
    assert_string_equal(rest->targets[0], "c");
    assert_null(rest->targets_next_cursor);
    assert_int_equal(rest->targets_next_cursor_len, 0);
    assert_int_equal(rest->pending, 3);
    hopper_lane_stats_free(s);
    hopper_lane_stats_free(rest);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_async_enqueue_keeps_a_pipeline_full_from_one_thread),
        T(test_async_enqueue_to_no_broker_fails_at_once),
        T(test_lifecycle_enqueue_claim_ack_get),
        T(test_nack_to_dead_letter_and_replay),
        T(test_stale_token_ack_is_lost_claim),
        T(test_unknown_id_is_not_found),
        T(test_long_poll_claim_is_woken_by_an_enqueue_from_another_thread),
        T(test_expired_lease_redelivers_to_another_consumer),
        T(test_scopes_never_mix),
        T(test_lane_pause_stops_claims_until_resumed),
        T(test_stats_page_through_a_lanes_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
