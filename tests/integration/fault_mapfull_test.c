/*
 * fault_mapfull_test.c - a store that cannot grow. hopperd runs with a map
 * ceiling of a few MiB and is filled through libhopper until it refuses:
 * producers get RESOURCE_EXHAUSTED/MAP_FULL (never a timeout, never another
 * code), while claims, acks, reads and dead-letter purges go on working;
 * once space is freed enqueues succeed again; and after a clean stop LMDB's
 * own tools walk the file and every acknowledged message reads back intact.
 */
#include <hopper/hopper.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fault_util.h"
#include "harness.h"

#define MAX_MSGS  4096
#define BIG_LEN   4000 /* about one LMDB page: fills fast */
#define SMALL_LEN 64   /* fills the last gaps */
#define DEAD_MSGS 40
#define DEAD_LEN  8000
#define CLAIM_MAX 5 /* per claim: what the reserve is sized for */
#define ROUNDS    10

typedef struct accepted {
    char id[27];
    uint32_t index;
    size_t len;
    bool acked;
} accepted;

typedef struct fill_state {
    accepted *msgs;
    size_t n;
    uint32_t next_index;
    uint32_t refused; /* enqueues answered MAP_FULL */
} fill_state;

/* The payload of message `index`: its number, then bytes derived from it,
 * so a read-back proves the right bytes came back, not just the length. */
static void
make_payload(uint32_t index, uint8_t *buf, size_t len)
{
    int n = snprintf((char *)buf, len, "m%07u-", index);
    for (size_t i = (size_t)n; i < len; i++) {
        buf[i] = (uint8_t)((index * 2654435761u + i * 40503u) >> 13);
    }
}

/* Enqueues batches of `batch` messages of `len` bytes until the broker
 * refuses one; any refusal other than RESOURCE_EXHAUSTED/MAP_FULL fails
 * the test. */
static void
fill_until_refused(hopper_client *c, fill_state *fs, size_t len, size_t batch)
{
    static uint8_t bufs[16][BIG_LEN];
    hopper_draft d[16];
    hopper_enqueued out[16];
    hopper_status st;

    assert_true(batch <= 16 && len <= BIG_LEN);
    for (;;) {
        assert_true(fs->n + batch <= MAX_MSGS);
        for (size_t i = 0; i < batch; i++) {
            make_payload(fs->next_index + (uint32_t)i, bufs[i], len);
            d[i] = (hopper_draft){ .lane = "fill",
                                   .payload = bufs[i],
                                   .payload_len = len };
        }
        int code = hopper_enqueue(c, d, batch, out, &st);
        if (code != HOPPER_OK) {
            if (code != HOPPER_RESOURCE_EXHAUSTED ||
                strcmp(st.reason, "MAP_FULL") != 0) {
                fail_msg("a full store answered %s/%s: %s",
                         hopper_status_str(code), st.reason, st.message);
            }
            fs->refused++;
            return;
        }
        for (size_t i = 0; i < batch; i++) {
            accepted *a = &fs->msgs[fs->n++];
            memcpy(a->id, out[i].id, sizeof(a->id));
            a->index = fs->next_index + (uint32_t)i;
            a->len = len;
        }
        fs->next_index += (uint32_t)batch;
    }
}

/* Puts DEAD_MSGS messages of lane "doomed" into dead letters (one attempt
 * each, nacked), so that purging them later frees real space. */
static void
make_dead_letters(hopper_client *c)
{
    static uint8_t buf[DEAD_LEN];
    hopper_status st;
    make_payload(999999, buf, sizeof(buf));
    for (int i = 0; i < DEAD_MSGS; i++) {
        hopper_draft d = { .lane = "doomed",
                           .payload = buf,
                           .payload_len = sizeof(buf),
                           .max_attempts = 1 };
        assert_int_equal(hopper_enqueue(c, &d, 1, NULL, &st), HOPPER_OK);
        hopper_batch *b = NULL;
        hopper_claim_opts o = { .max = 1, .lease_ms = 60000 };
        assert_int_equal(hopper_claim(c, "doomed", &o, &b, &st), HOPPER_OK);
        assert_int_equal(b->n, 1);
        hopper_nack_result res;
        hopper_nack_opts no = { .error = "poison" };
        assert_int_equal(
            hopper_nack(c, b->msgs[0].id, &b->msgs[0].token, &no, &res, &st),
            HOPPER_OK);
        assert_true(res.dead);
        hopper_batch_free(b);
    }
}

/* Claims CLAIM_MAX messages of "fill" and acks them; a failure of either
 * fails the test. */
static void
claim_and_ack(hopper_client *c, fill_state *fs)
{
    hopper_batch *b = NULL;
    hopper_status st;
    hopper_claim_opts co = { .max = CLAIM_MAX, .lease_ms = 60000 };
    int code = hopper_claim(c, "fill", &co, &b, &st);
    if (code != HOPPER_OK) {
        fail_msg("claim on a full store failed: %s/%s %s",
                 hopper_status_str(code), st.reason, st.message);
    }
    assert_int_equal(b->n, CLAIM_MAX);
    hopper_ack_item items[CLAIM_MAX];
    for (size_t i = 0; i < b->n; i++) {
        items[i] =
            (hopper_ack_item){ .id = b->msgs[i].id, .token = b->msgs[i].token };
    }
    code = hopper_ack(c, items, b->n, NULL, 0, NULL, &st);
    if (code != HOPPER_OK) {
        fail_msg("ack on a full store failed: %s/%s %s",
                 hopper_status_str(code), st.reason, st.message);
    }
    for (size_t i = 0; i < b->n; i++) {
        for (size_t k = 0; k < fs->n; k++) {
            if (strcmp(fs->msgs[k].id, b->msgs[i].id) == 0) {
                fs->msgs[k].acked = true;
            }
        }
    }
    hopper_batch_free(b);
}

/* Reads message a back and checks every byte of its payload. */
static void
check_read_back(hopper_client *c, const accepted *a)
{
    static uint8_t want[BIG_LEN];
    hopper_message *m = NULL;
    hopper_status st;
    if (hopper_get(c, a->id, &m, &st) != HOPPER_OK) {
        fail_msg("acknowledged message %u (%s) cannot be read: %s %s", a->index,
                 a->id, hopper_status_str(st.code), st.message);
    }
    make_payload(a->index, want, a->len);
    assert_int_equal(m->payload_len, a->len);
    assert_memory_equal(m->payload, want, a->len);
    assert_int_equal(m->state,
                     a->acked ? HOPPER_STATE_DELIVERED : HOPPER_STATE_PENDING);
    hopper_message_free(m);
}

static const char *const small_map[] = { "--map-size", "1M", "--max-map-size",
                                         "4M", NULL };

/* The broker lives in the state so that teardown kills it even when an
 * assertion ended the test early. */
static int
setup(void **state)
{
    broker_proc *bp = calloc(1, sizeof(*bp));
    assert_non_null(bp);
    assert_int_equal(broker_proc_start(bp, small_map), 0);
    *state = bp;
    return 0;
}

static void
test_a_full_store_refuses_producers_and_keeps_serving_the_rest(void **state)
{
    broker_proc *bp = *state;
    hopper_status st;
    fill_state fs = { .msgs = calloc(MAX_MSGS, sizeof(accepted)) };
    hopper_client *c = fu_client(bp->url, 10000);
    make_dead_letters(c);

    /* Full: big batches first, then single big messages, then small ones
     * into the last gaps, so even a small enqueue no longer fits. */
    fill_until_refused(c, &fs, BIG_LEN, 16);
    fill_until_refused(c, &fs, BIG_LEN, 1);
    fill_until_refused(c, &fs, SMALL_LEN, 1);
    fill_until_refused(c, &fs, SMALL_LEN, 1);
    size_t at_full = fs.n;

    /* Reads keep working. */
    check_read_back(c, &fs.msgs[0]);
    check_read_back(c, &fs.msgs[fs.n - 1]);
    hopper_page *pg = NULL;
    assert_int_equal(hopper_list(c, "fill", HOPPER_STATE_PENDING, NULL, 0, 10,
                                 false, &pg, &st),
                     HOPPER_OK);
    assert_int_equal(pg->n, 10);
    hopper_page_free(pg);
    hopper_lane_stats *ls = NULL;
    assert_int_equal(hopper_stats(c, "fill", &ls, &st), HOPPER_OK);
    assert_int_equal(ls->pending, fs.n);
    hopper_lane_stats_free(ls);

    /* Claims and acks keep working, round after round: a claim rewrites
     * its records, so each round needs the reserve the refused enqueues
     * left, and gets back what the round before freed. */
    for (int round = 0; round < ROUNDS; round++) {
        claim_and_ack(c, &fs);
    }

    /* Dead letters can be listed and purged. */
    assert_int_equal(hopper_dead_list(c, "doomed", NULL, 0, 5, false, &pg, &st),
                     HOPPER_OK);
    assert_int_equal(pg->n, 5);
    hopper_page_free(pg);
    uint64_t purged = 0;
    bool more = true;
    int code =
        hopper_dead_purge(c, "doomed", NULL, 0, DEAD_MSGS, &purged, &more, &st);
    if (code != HOPPER_OK) {
        fail_msg("purge on a full store failed: %s/%s %s",
                 hopper_status_str(code), st.reason, st.message);
    }
    assert_int_equal(purged, DEAD_MSGS);
    assert_false(more);

    /* Space is free again: enqueues succeed. LMDB hands out the pages a
     * commit freed only once a later commit has happened and no reader
     * still sees them, so the first try may still be refused. */
    int tries = 0;
    size_t before = fs.n;
    while (fs.n == before && tries++ < 50) {
        fill_until_refused(c, &fs, BIG_LEN, 1);
        if (fs.n == before) {
            fu_sleep_ms(100);
        }
    }
    assert_true(fs.n > before);
    print_message("%zu messages filled the 4 MiB map; %u enqueues refused "
                  "with MAP_FULL; after the purge %zu more fitted (%d tries)\n",
                  at_full, fs.refused, fs.n - before, tries);

    /* No corruption: LMDB's tools walk the file, and after a restart every
     * acknowledged message is there with its bytes. */
    hopper_close(c);
    assert_int_equal(broker_proc_stop(bp), 0);
    assert_int_equal(fu_mdb_check(bp->data), 0);
    assert_int_equal(broker_proc_restart(bp, small_map), 0);
    c = fu_client(bp->url, 10000);
    for (size_t i = 0; i < fs.n; i++) {
        check_read_back(c, &fs.msgs[i]);
    }
    hopper_close(c);
    assert_int_equal(broker_proc_stop(bp), 0);
    free(fs.msgs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_full_store_refuses_producers_and_keeps_serving_the_rest,
            setup, broker_proc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
