/*
 * load_test.c - 8 producer and 8 consumer threads move 50,000 messages
 * through one hopperd (sync full, so groups form as they do in production):
 * every message is acked exactly once and the lane ends empty.
 */
#include <hopper/hopper.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define PRODUCERS 8
#define CONSUMERS 8
#define MESSAGES  50000

typedef struct shared {
    const char *url;
    _Atomic uint32_t next;  /* next message index to produce */
    _Atomic uint32_t acked; /* acks the broker confirmed */
    _Atomic uint32_t errors;
    _Atomic uint8_t seen[MESSAGES]; /* confirmed acks per message index */
} shared;

static hopper_client *
open_client(const char *url)
{
    hopper_client *c = NULL;
    hopper_status st;
    hopper_options o;
    hopper_options_init(&o);
    o.timeout_ms = 30000;
    if (hopper_connect(url, &o, &c, &st) != HOPPER_OK) {
        return NULL;
    }
    return c;
}

static void *
producer(void *arg)
{
    shared *s = arg;
    hopper_client *c = open_client(s->url);
    hopper_status st;
    for (;;) {
        uint32_t i = atomic_fetch_add(&s->next, 1);
        if (i >= MESSAGES) {
            break;
        }
        char payload[16];
        int n = snprintf(payload, sizeof(payload), "%u", i);
        hopper_draft d = { .lane = "load",
                           .payload = payload,
                           .payload_len = (size_t)n };
        if (c == NULL || hopper_enqueue(c, &d, 1, NULL, &st) != HOPPER_OK) {
            atomic_fetch_add(&s->errors, 1);
        }
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
    hopper_ack_item items[32];
    int idle = 0;
    while (c != NULL && atomic_load(&s->acked) < MESSAGES && idle < 20) {
        hopper_batch *b = NULL;
        hopper_claim_opts o = { .max = 32, .lease_ms = 60000, .wait_ms = 500 };
        if (hopper_claim(c, "load", &o, &b, &st) != HOPPER_OK) {
            atomic_fetch_add(&s->errors, 1);
            break;
        }
        idle = b->n == 0 ? idle + 1 : 0;
        for (size_t i = 0; i < b->n; i++) {
            items[i].id = b->msgs[i].id;
            items[i].token = b->msgs[i].token;
            items[i].result = NULL;
            items[i].result_len = 0;
        }
        if (b->n > 0) {
            if (hopper_ack(c, items, b->n, NULL, 0, NULL, &st) == HOPPER_OK) {
                for (size_t i = 0; i < b->n; i++) {
                    char text[16] = { 0 };
                    memcpy(text, b->msgs[i].payload,
                           b->msgs[i].payload_len < 15 ? b->msgs[i].payload_len
                                                       : 15);
                    unsigned long idx = strtoul(text, NULL, 10);
                    if (idx < MESSAGES) {
                        atomic_fetch_add(&s->seen[idx], 1);
                    }
                }
                atomic_fetch_add(&s->acked, (uint32_t)b->n);
            } else {
                atomic_fetch_add(&s->errors, 1);
            }
        }
        hopper_batch_free(b);
    }
    hopper_close(c);
    return NULL;
}

static void
test_many_producers_and_consumers_ack_every_message_exactly_once(void **state)
{
    broker_proc bp;
    pthread_t p[PRODUCERS], c[CONSUMERS];
    shared *s = calloc(1, sizeof(*s));
    hopper_status st;
    (void)state;
    assert_int_equal(broker_proc_start(&bp, NULL), 0);
    s->url = bp.url;

    for (int i = 0; i < CONSUMERS; i++) {
        assert_int_equal(pthread_create(&c[i], NULL, consumer, s), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        assert_int_equal(pthread_create(&p[i], NULL, producer, s), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(p[i], NULL);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_join(c[i], NULL);
    }

    assert_int_equal(atomic_load(&s->errors), 0);
    assert_int_equal(atomic_load(&s->acked), MESSAGES);
    for (uint32_t i = 0; i < MESSAGES; i++) {
        if (atomic_load(&s->seen[i]) != 1) {
            fail_msg("message %u acked %u times", i,
                     (unsigned)atomic_load(&s->seen[i]));
        }
    }
    hopper_client *cl = open_client(bp.url);
    hopper_lane_stats *ls = NULL;
    assert_int_equal(hopper_stats(cl, "load", &ls, &st), HOPPER_OK);
    assert_int_equal(ls->enqueued_total, MESSAGES);
    assert_int_equal(ls->acked_total, MESSAGES);
    assert_int_equal(ls->pending, 0);
    assert_int_equal(ls->claimed, 0);
    hopper_lane_stats_free(ls);
    hopper_close(cl);
    assert_int_equal(broker_proc_stop(&bp), 0);
    broker_proc_cleanup(&bp);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_many_producers_and_consumers_ack_every_message_exactly_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
