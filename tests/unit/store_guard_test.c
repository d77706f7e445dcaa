/*
 * store_guard_test.c - the store's guards for the single writer: an ack or
 * nack with a bad follow-up fails before writing anything (so the group's
 * transaction stays good), a claim batch stops at its byte budget, and a
 * commit that makes more than 256 lanes claimable reports "any lane" once.
 */
#include <stdio.h>

#include "store_fixture.h"

/* Runs fn-like checks in one write transaction of our own. */
static store_txn *
begin(fixture *f)
{
    store_txn *t;
    hp_status st;
    assert_int_equal(store_txn_begin(f->s, true, &t, &st), HP_OK);
    return t;
}

static void
test_ack_with_a_bad_followup_fails_before_writing(void **state)
{
    fixture *f = *state;
    hp_status st;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_message m = must_claim_msg(f, "emails", NOW_MS, 10000);
    store_ack_item item = { .id = m.id, .token = m.token };
    store_draft bad = { .lane = HP_S("bad lane") };
    store_enqueued out;
    store_txn *t = begin(f);
    uint64_t mark = store_txn_writes(t);

    hp_code code =
        store_ack(t, SCOPE, &item, 1, &bad, 1, NOW_MS + 1, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_true(store_txn_clear_failure(t, mark));
    store_txn_abort(t);
}

static void
test_nack_with_a_bad_followup_fails_before_writing(void **state)
{
    fixture *f = *state;
    hp_status st;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_message m = must_claim_msg(f, "emails", NOW_MS, 10000);
    store_draft bad = { .lane = HP_S("bad lane") };
    store_nack_req req = {
        .id = m.id, .token = m.token, .followups = &bad, .n_followups = 1
    };
    store_enqueued out;
    store_nack_res res;
    store_txn *t = begin(f);
    uint64_t mark = store_txn_writes(t);

    hp_code code = store_nack(t, SCOPE, &req, NOW_MS + 1, &out, &res, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_true(store_txn_clear_failure(t, mark));
    store_txn_abort(t);
}

static void
test_claim_stops_at_its_byte_budget_but_takes_at_least_one(void **state)
{
    fixture *f = *state;
    static uint8_t payload[100];
    store_draft d = { .lane = HP_S("big"),
                      .payload = payload,
                      .payload_len = sizeof(payload) };
    hp_id first = must_enqueue_draft(f, &d, NOW_MS);
    for (int i = 0; i < 4; i++) {
        (void)must_enqueue_draft(f, &d, NOW_MS);
    }
    /* Every message weighs the same: its lane, payload and fixed part. */
    store_message m = must_get(f, first, NOW_MS);
    size_t w = store_message_weight(&m, true);
    assert_int_equal(w, STORE_WEIGHT_MESSAGE + 3 + sizeof(payload));
    store_claim_req req = { .lane = HP_S("big"),
                            .any_target = true,
                            .max = 10,
                            .lease_ms = 10000,
                            .max_bytes = 2 * w };
    store_claimed out;
    hp_status st;

    assert_int_equal(claim(f, &req, NOW_MS, &out, &st), HP_OK);
    assert_int_equal(out.n, 2); /* exactly two fit */
    req.max_bytes = 2 * w - 1;
    assert_int_equal(claim(f, &req, NOW_MS, &out, &st), HP_OK);
    assert_int_equal(out.n, 1); /* one byte short of the second */
    req.max_bytes = 50;
    assert_int_equal(claim(f, &req, NOW_MS, &out, &st), HP_OK);
    assert_int_equal(out.n, 1); /* over budget alone, but never zero */
}

static void
test_a_commit_touching_many_lanes_reports_any_lane_once(void **state)
{
    fixture *f = *state;
    store_draft d[300];
    char names[300][16];
    store_enqueued out[300];
    hp_status st;
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof(names[i]), "lane%d", i);
        d[i] = (store_draft){ .lane = hp_str_c(names[i]) };
    }

    assert_int_equal(enqueue(f, d, 300, NOW_MS, out, &st), HP_OK);

    assert_int_equal(f->n_ready, 1);
    assert_string_equal(f->ready[0].scope, "");
    assert_string_equal(f->ready[0].lane, "");
}

int
main(void)
{
#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_ack_with_a_bad_followup_fails_before_writing),
        T(test_nack_with_a_bad_followup_fails_before_writing),
        T(test_claim_stops_at_its_byte_budget_but_takes_at_least_one),
        cmocka_unit_test_setup_teardown(
            test_a_commit_touching_many_lanes_reports_any_lane_once,
            fixture_setup_on_ready, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
