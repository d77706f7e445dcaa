/*
 * sigterm_test.c - SIGTERM in the middle of load: hopperd answers what it
 * accepted and exits 0, and after a restart on the same data every enqueue
 * and every ack it acknowledged is there, and dedupe keys still hold.
 */
#include <hopper/hopper.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

#define PRODUCERS  4
#define CONSUMERS  4
#define MAX_MSGS   200000
#define STOP_AFTER 2000 /* acknowledged enqueues before the SIGTERM */

typedef struct shared {
    const char *url;
    _Atomic bool stop;
    _Atomic uint32_t next;
    _Atomic uint32_t enqueued; /* acknowledged enqueues */
    char (*ids)[27];           /* ids[i]: id of acknowledged enqueue i */
    _Atomic uint8_t *enq_ok;   /* 1 when enqueue i was acknowledged */
    pthread_mutex_t mtx;
    char (*acked)[27]; /* ids whose ack was acknowledged */
    size_t n_acked;
} shared;

static hopper_client *
open_client(const char *url)
{
    hopper_client *c = NULL;
    hopper_status st;
    hopper_options o;
    hopper_options_init(&o);
    o.timeout_ms = 3000;
    assert_int_equal(hopper_connect(url, &o, &c, &st), HOPPER_OK);
    return c;
}

static void *
producer(void *arg)
{
    shared *s = arg;
    hopper_client *c = open_client(s->url);
    hopper_status st;
    while (!atomic_load(&s->stop)) {
        uint32_t i = atomic_fetch_add(&s->next, 1);
        if (i >= MAX_MSGS) {
            break;
        }
        char key[32];
        snprintf(key, sizeof(key), "k%u", i);
        hopper_draft d = { .lane = "term",
                           .payload = key,
                           .payload_len = strlen(key),
                           .dedupe_key = key };
        hopper_enqueued out;
        if (hopper_enqueue(c, &d, 1, &out, &st) != HOPPER_OK) {
            break; /* the broker is stopping: outcome unknown, not counted */
        }
        memcpy(s->ids[i], out.id, sizeof(out.id));
        atomic_store(&s->enq_ok[i], 1);
        atomic_fetch_add(&s->enqueued, 1);
    }
    hopper_close(c);
    return NULL;
}

static void *
consumer(void *arg)
{
    shared *s = arg;
    hopper_client *c = open_client(s->url);
    hopper_status st;
    hopper_ack_item items[16];
    while (!atomic_load(&s->stop)) {
        hopper_batch *b = NULL;
        hopper_claim_opts o = { .max = 16, .lease_ms = 60000, .wait_ms = 200 };
        if (hopper_claim(c, "term", &o, &b, &st) != HOPPER_OK) {
            break;
        }
        for (size_t i = 0; i < b->n; i++) {
            items[i] = (hopper_ack_item){ .id = b->msgs[i].id,
                                          .token = b->msgs[i].token };
        }
        bool ok = b->n > 0 &&
                  hopper_ack(c, items, b->n, NULL, 0, NULL, &st) == HOPPER_OK;
        if (ok) {
            pthread_mutex_lock(&s->mtx);
            for (size_t i = 0; i < b->n; i++) {
                memcpy(s->acked[s->n_acked++], b->msgs[i].id, 27);
            }
            pthread_mutex_unlock(&s->mtx);
        }
        size_t n = b->n;
        hopper_batch_free(b);
        if (n > 0 && !ok) {
            break;
        }
    }
    hopper_close(c);
    return NULL;
}

static void
test_sigterm_during_load_loses_nothing_acknowledged(void **state)
{
    broker_proc bp;
    pthread_t p[PRODUCERS], c[CONSUMERS];
    shared *s = calloc(1, sizeof(*s));
    hopper_status st;
    struct timespec tick = { 0, 10 * 1000 * 1000 };
    (void)state;
    s->ids = calloc(MAX_MSGS, sizeof(*s->ids));
    s->enq_ok = calloc(MAX_MSGS, sizeof(*s->enq_ok));
    s->acked = calloc(MAX_MSGS, sizeof(*s->acked));
    pthread_mutex_init(&s->mtx, NULL);
    assert_int_equal(broker_proc_start(&bp, NULL), 0);
    s->url = bp.url;
    for (int i = 0; i < PRODUCERS; i++) {
        assert_int_equal(pthread_create(&p[i], NULL, producer, s), 0);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        assert_int_equal(pthread_create(&c[i], NULL, consumer, s), 0);
    }
    while (atomic_load(&s->enqueued) < STOP_AFTER) {
        nanosleep(&tick, NULL);
    }

    int status = broker_proc_stop(&bp); /* SIGTERM while the load runs */
    atomic_store(&s->stop, true);
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(p[i], NULL);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_join(c[i], NULL);
    }

    assert_int_equal(status, 0);
    assert_int_equal(broker_proc_restart(&bp, NULL), 0);
    hopper_client *cl = open_client(bp.url);
    size_t checked = 0;
    for (uint32_t i = 0; i < MAX_MSGS; i++) {
        if (!atomic_load(&s->enq_ok[i])) {
            continue;
        }
        hopper_message *m = NULL;
        if (hopper_get(cl, s->ids[i], &m, &st) != HOPPER_OK) {
            fail_msg("acknowledged enqueue %u (%s) is gone: %s", i, s->ids[i],
                     st.message);
        }
        hopper_message_free(m);
        checked++;
    }
    for (size_t i = 0; i < s->n_acked; i++) {
        hopper_message *m = NULL;
        assert_int_equal(hopper_get(cl, s->acked[i], &m, &st), HOPPER_OK);
        if (m->state != HOPPER_STATE_DELIVERED) {
            fail_msg("acknowledged ack of %s is lost: state %d", s->acked[i],
                     m->state);
        }
        hopper_message_free(m);
    }
    /* Dedupe survives the restart: the first key maps to the same id. */
    assert_true(atomic_load(&s->enq_ok[0]));
    hopper_draft d = { .lane = "term", .dedupe_key = "k0" };
    hopper_enqueued out;
    assert_int_equal(hopper_enqueue(cl, &d, 1, &out, &st), HOPPER_OK);
    assert_true(out.duplicate);
    assert_string_equal(out.id, s->ids[0]);
    print_message("checked %zu acknowledged enqueues and %zu acknowledged "
                  "acks after SIGTERM and restart\n",
                  checked, s->n_acked);
    assert_true(checked >= STOP_AFTER);
    hopper_close(cl);
    assert_int_equal(broker_proc_stop(&bp), 0);
    broker_proc_cleanup(&bp);
    pthread_mutex_destroy(&s->mtx);
    free(s->ids);
    free(s->enq_ok);
    free(s->acked);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_during_load_loses_nothing_acknowledged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
