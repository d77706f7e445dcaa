/*
 * await_test.c - hopper_await against a real hopperd: an Await parked on a
 * message is woken by the commit that acks it (with the ack's result) or
 * dead-letters it (with the last error), every Await of one message wakes,
 * also when one ack settles more messages than the broker lists, one
 * that nothing settles times out empty, and the refusals (unknown id,
 * a lane that keeps nothing, a wait over the cap).
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

#define LONG_WAIT_MS 30000
#define N_AWAITERS   3

typedef struct fixture {
    broker_proc bp;
    hopper_client *c;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    hopper_options o;
    hopper_status st;
    assert_non_null(f);
    assert_int_equal(broker_proc_start(&f->bp, NULL), 0);
    hopper_options_init(&o);
    o.timeout_ms = 60000; /* a loaded machine */
    assert_int_equal(hopper_connect(f->bp.url, &o, &f->c, &st), HOPPER_OK);
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
enqueue(fixture *f, const char *lane, uint32_t max_attempts,
        hopper_enqueued *out)
{
    hopper_status st;
    hopper_draft d = { .lane = lane,
                       .payload = "ask",
                       .payload_len = 3,
                       .max_attempts = max_attempts };
    must(hopper_enqueue(f->c, &d, 1, out, &st), &st);
}

static hopper_batch *
claim_one(fixture *f, const char *lane)
{
    hopper_status st;
    hopper_batch *b = NULL;
    hopper_claim_opts o = { .max = 1, .lease_ms = 60000 };
    must(hopper_claim(f->c, lane, &o, &b, &st), &st);
    assert_int_equal(b->n, 1);
    return b;
}

/* An Await on its own thread: what it got back. */
typedef struct awaiter {
    fixture *f;
    const char *id;
    pthread_t th;
    int code;
    hopper_status st;
    hopper_message *m;
} awaiter;

static void *
await_main(void *arg)
{
    awaiter *a = arg;
    a->code = hopper_await(a->f->c, a->id, LONG_WAIT_MS, &a->m, &a->st);
    return NULL;
}

static void
start_awaiter(awaiter *a, fixture *f, const char *id)
{
    memset(a, 0, sizeof(*a));
    a->f = f;
    a->id = id;
    assert_int_equal(pthread_create(&a->th, NULL, await_main, a), 0);
}

/* Gives the Await a moment to park before the settle. Either order gives
 * the same answer (an Await of a settled message answers at once), so
 * this is no synchronisation: it only makes the wake path the likely
 * one. */
static void
let_it_park(void)
{
    struct timespec ts = { 0, 200 * 1000 * 1000 };
    nanosleep(&ts, NULL);
}

static void
test_await_is_woken_by_the_ack_and_returns_its_result(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    awaiter a;
    enqueue(f, "rr", 0, &e);
    hopper_batch *b = claim_one(f, "rr");
    start_awaiter(&a, f, e.id);
    let_it_park();
    hopper_ack_item item = { .id = b->msgs[0].id,
                             .token = b->msgs[0].token,
                             .result = "reply",
                             .result_len = 5 };

    must(hopper_ack(f->c, &item, 1, NULL, 0, NULL, &st), &st);

    pthread_join(a.th, NULL);
    must(a.code, &a.st);
    assert_non_null(a.m);
    assert_string_equal(a.m->id, e.id);
    assert_int_equal(a.m->state, HOPPER_STATE_DELIVERED);
    assert_int_equal(a.m->result_len, 5);
    assert_memory_equal(a.m->result, "reply", 5);
    assert_int_equal(a.m->payload_len, 0); /* Get has it */
    hopper_message_free(a.m);
    hopper_batch_free(b);
}

static void
test_await_is_woken_by_a_dead_letter_and_returns_the_last_error(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    hopper_nack_result res;
    awaiter a;
    enqueue(f, "rr", 1, &e);
    hopper_batch *b = claim_one(f, "rr");
    start_awaiter(&a, f, e.id);
    let_it_park();
    hopper_nack_opts no = { .error = "no such user" };

    must(hopper_nack(f->c, b->msgs[0].id, &b->msgs[0].token, &no, &res, &st),
         &st);

    pthread_join(a.th, NULL);
    assert_true(res.dead);
    must(a.code, &a.st);
    assert_non_null(a.m);
    assert_int_equal(a.m->state, HOPPER_STATE_DEAD);
    assert_string_equal(a.m->last_error, "no such user");
    hopper_message_free(a.m);
    hopper_batch_free(b);
}

static void
test_every_await_of_one_message_wakes(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    awaiter a[N_AWAITERS];
    enqueue(f, "rr", 0, &e);
    hopper_batch *b = claim_one(f, "rr");
    for (int i = 0; i < N_AWAITERS; i++) {
        start_awaiter(&a[i], f, e.id);
    }
    let_it_park();

    must(hopper_ack1(f->c, b->msgs[0].id, &b->msgs[0].token, &st), &st);

    for (int i = 0; i < N_AWAITERS; i++) {
        pthread_join(a[i].th, NULL);
        must(a[i].code, &a[i].st);
        assert_non_null(a[i].m);
        assert_int_equal(a[i].m->state, HOPPER_STATE_DELIVERED);
        hopper_message_free(a[i].m);
    }
    hopper_batch_free(b);
}

/* One ack of more messages than the broker lists per group (256): the
 * Await of the last one is woken through "any may have settled", not
 * left to its 30 s timer (which would answer empty). */
#define MANY_SETTLED 300

static void
test_await_is_woken_by_an_ack_of_more_than_the_list_holds(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_draft d[MANY_SETTLED];
    hopper_enqueued e[MANY_SETTLED];
    hopper_ack_item items[MANY_SETTLED];
    hopper_batch *b = NULL;
    awaiter a;
    for (int i = 0; i < MANY_SETTLED; i++) {
        d[i] =
            (hopper_draft){ .lane = "many", .payload = "x", .payload_len = 1 };
    }
    must(hopper_enqueue(f->c, d, MANY_SETTLED, e, &st), &st);
    hopper_claim_opts o = { .max = MANY_SETTLED, .lease_ms = 60000 };
    must(hopper_claim(f->c, "many", &o, &b, &st), &st);
    assert_int_equal(b->n, MANY_SETTLED);
    for (size_t i = 0; i < b->n; i++) {
        items[i] =
            (hopper_ack_item){ .id = b->msgs[i].id, .token = b->msgs[i].token };
    }
    start_awaiter(&a, f, b->msgs[MANY_SETTLED - 1].id);
    let_it_park();

    must(hopper_ack(f->c, items, MANY_SETTLED, NULL, 0, NULL, &st), &st);

    pthread_join(a.th, NULL);
    must(a.code, &a.st);
    assert_non_null(a.m);
    assert_string_equal(a.m->id, b->msgs[MANY_SETTLED - 1].id);
    assert_int_equal(a.m->state, HOPPER_STATE_DELIVERED);
    hopper_message_free(a.m);
    hopper_batch_free(b);
}

static void
test_await_of_an_unsettled_message_times_out_empty(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    hopper_message *m = (hopper_message *)&m; /* must become NULL */
    enqueue(f, "rr", 0, &e);

    int code = hopper_await(f->c, e.id, 300, &m, &st);

    must(code, &st);
    assert_null(m);
}

static void
test_await_without_a_wait_looks_once(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    hopper_message *m = NULL;
    enqueue(f, "rr", 0, &e);
    must(hopper_await(f->c, e.id, 0, &m, &st), &st);
    assert_null(m);
    hopper_batch *b = claim_one(f, "rr");
    must(hopper_ack1(f->c, b->msgs[0].id, &b->msgs[0].token, &st), &st);

    must(hopper_await(f->c, e.id, 0, &m, &st), &st);

    assert_non_null(m);
    assert_int_equal(m->state, HOPPER_STATE_DELIVERED);
    hopper_message_free(m);
    hopper_batch_free(b);
}

static void
test_await_of_an_unknown_id_is_not_found(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_message *m = NULL;

    int code = hopper_await(f->c, "01ARZ3NDEKTSV4RRFFQ69G5FAV", 1000, &m, &st);

    assert_int_equal(code, HOPPER_NOT_FOUND);
    assert_string_equal(st.reason, "NO_MESSAGE");
    assert_null(m);
}

static void
test_await_in_a_lane_that_keeps_nothing_is_not_found_after_the_ack(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    awaiter a;
    const char *mask[] = { "retention_ms" };
    hopper_lane_settings s = { .retention_ms = 0 };
    must(hopper_lane_update(f->c, "gone", &s, mask, 1, NULL, &st), &st);
    enqueue(f, "gone", 0, &e);
    hopper_batch *b = claim_one(f, "gone");
    start_awaiter(&a, f, e.id);
    let_it_park();

    must(hopper_ack1(f->c, b->msgs[0].id, &b->msgs[0].token, &st), &st);

    pthread_join(a.th, NULL);
    assert_int_equal(a.code, HOPPER_NOT_FOUND);
    assert_null(a.m);
    hopper_batch_free(b);
}

static void
test_await_longer_than_30s_is_bad_wait(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_enqueued e;
    hopper_message *m = NULL;
    enqueue(f, "rr", 0, &e);

    int code = hopper_await(f->c, e.id, LONG_WAIT_MS + 1, &m, &st);

    assert_int_equal(code, HOPPER_INVALID_ARGUMENT);
    assert_string_equal(st.reason, "BAD_WAIT");
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_await_is_woken_by_the_ack_and_returns_its_result),
        T(test_await_is_woken_by_a_dead_letter_and_returns_the_last_error),
        T(test_every_await_of_one_message_wakes),
        T(test_await_is_woken_by_an_ack_of_more_than_the_list_holds),
        T(test_await_of_an_unsettled_message_times_out_empty),
        T(test_await_without_a_wait_looks_once),
        T(test_await_of_an_unknown_id_is_not_found),
        T(test_await_in_a_lane_that_keeps_nothing_is_not_found_after_the_ack),
        T(test_await_longer_than_30s_is_bad_wait),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
