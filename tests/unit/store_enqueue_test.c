/*
 * store_enqueue_test.c - enqueue: what a new message looks like, delayed
 * messages, and dedupe keys (hits, misses, windows, hash collisions).
 */
#include <string.h>

#include "store_fixture.h"

static store_draft
dedupe_draft(const char *lane, const char *key)
{
    store_draft d = draft(lane);
    d.dedupe_key = hp_str_c(key);
    return d;
}

/* ---- new messages ----------------------------------------------------- */

static void
test_enqueue_batch_returns_distinct_increasing_ids(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d[3] = { draft("emails"), draft("emails"), draft("emails") };
    store_enqueued out[3];

    hp_code code = enqueue(f, d, 3, NOW_MS, out, &st);

    assert_ok(code, st);
    assert_false(out[0].duplicate || out[1].duplicate || out[2].duplicate);
    assert_true(hp_id_cmp(&out[0].id, &out[1].id) < 0);
    assert_true(hp_id_cmp(&out[1].id, &out[2].id) < 0);
}

static void
test_enqueued_message_is_pending_with_defaults(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);

    store_message m = must_get(f, id, NOW_MS);

    assert_id_equal(m.id, id);
    assert_int_equal(m.state, STORE_STATE_PENDING);
    assert_str_equal(m.lane, "emails");
    assert_int_equal(m.target.len, 0);
    assert_int_equal(m.priority, 0);
    assert_int_equal(m.attempts, 0);
    assert_int_equal(m.max_attempts, 5);
    assert_int_equal(m.created_at_ms, NOW_MS);
    assert_int_equal(m.available_at_ms, NOW_MS);
    assert_int_equal(m.lease_expires_at_ms, 0);
    assert_int_equal(m.finished_at_ms, 0);
    assert_int_equal(m.last_error.len, 0);
    assert_int_equal(m.result_len, 0);
}

static void
test_enqueue_keeps_payload_headers_target_and_priority(void **state)
{
    fixture *f = *state;
    store_header h[2] = {
        { HP_S("content-type"), HP_S("text/plain") },
        { HP_S("x-empty"), HP_S("") },
    };
    store_draft d = draft("emails");
    d.target = HP_S("webhook");
    d.priority = 3;
    d.headers = h;
    d.n_headers = 2;
    d.payload = "a\0binary\xff";
    d.payload_len = 9;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    store_message m = must_get(f, id, NOW_MS);

    assert_str_equal(m.target, "webhook");
    assert_int_equal(m.priority, 3);
    assert_int_equal(m.payload_len, 9);
    assert_memory_equal(m.payload, "a\0binary\xff", 9);
    assert_int_equal(m.n_headers, 2);
    assert_str_equal(m.headers[0].key, "content-type");
    assert_str_equal(m.headers[0].value, "text/plain");
    assert_str_equal(m.headers[1].key, "x-empty");
    assert_int_equal(m.headers[1].value.len, 0);
}

static void
test_enqueue_creates_the_lane_with_default_settings(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings want, got;
    store_lane_settings_default(&want);
    (void)must_enqueue(f, "emails", NOW_MS);

    hp_code code = lane_get_in(f, SCOPE, "emails", &got, &st);

    assert_ok(code, st);
    assert_int_equal(got.max_attempts, want.max_attempts);
    assert_int_equal(got.backoff, want.backoff);
    assert_int_equal(got.backoff_base_ms, want.backoff_base_ms);
    assert_int_equal(got.backoff_cap_ms, want.backoff_cap_ms);
    assert_int_equal(got.backoff_factor_pct, want.backoff_factor_pct);
    assert_int_equal(got.jitter_pct, want.jitter_pct);
    assert_int_equal(got.retention_ms, want.retention_ms);
    assert_int_equal(got.dedupe_window_ms, want.dedupe_window_ms);
    assert_false(got.paused);
}

static void
test_draft_max_attempts_zero_takes_the_lane_setting(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.max_attempts = 3;
    must_lane_set(f, "emails", &ls);

    hp_id id = must_enqueue(f, "emails", NOW_MS);

    assert_int_equal(must_get(f, id, NOW_MS).max_attempts, 3);
}

static void
test_draft_max_attempts_overrides_the_lane_setting(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.max_attempts = 2;

    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    assert_int_equal(must_get(f, id, NOW_MS).max_attempts, 2);
}

static void
test_enqueue_counts_pending_and_enqueued_total(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "emails", NOW_MS);
    (void)must_enqueue(f, "emails", NOW_MS);

    store_lane_stats s = must_stats(f, "emails", NOW_MS);

    assert_int_equal(s.pending, 2);
    assert_int_equal(s.enqueued_total, 2);
    assert_int_equal(s.delayed, 0);
}

static void
test_enqueue_batch_over_many_lanes_counts_each_lane(void **state)
{
    fixture *f = *state;
    hp_status st;
    static const char *const names[7] = { "l0", "l1", "l2", "l3",
                                          "l4", "l5", "l6" };
    store_draft d[14];
    store_enqueued out[14];
    for (size_t i = 0; i < 14; i++) {
        d[i] = draft(names[i % 7]);
    }

    hp_code code = enqueue(f, d, 14, NOW_MS, out, &st);

    assert_ok(code, st);
    for (size_t i = 0; i < 7; i++) {
        store_lane_stats s = must_stats(f, names[i], NOW_MS);
        assert_int_equal(s.pending, 2);
        assert_int_equal(s.enqueued_total, 2);
    }
}

/* ---- delayed messages ------------------------------------------------- */

static void
test_message_with_future_available_at_is_delayed(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.available_at_ms = NOW_MS + 5000;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    store_message m = must_get(f, id, NOW_MS);

    assert_int_equal(m.state, STORE_STATE_DELAYED);
    assert_int_equal(m.available_at_ms, NOW_MS + 5000);
    assert_int_equal(must_stats(f, "emails", NOW_MS).delayed, 1);
}

static void
test_message_with_available_at_is_not_claimable_one_ms_early(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.available_at_ms = NOW_MS + 5000;
    (void)must_enqueue_draft(f, &d, NOW_MS);

    size_t n = claim_count(f, "emails", NOW_MS + 4999);

    assert_int_equal(n, 0);
}

static void
test_message_with_available_at_is_claimable_exactly_then(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.available_at_ms = NOW_MS + 5000;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    store_message m = must_claim_msg(f, "emails", NOW_MS + 5000, LEASE_MS);

    assert_id_equal(m.id, id);
}

static void
test_delay_sets_available_at_to_now_plus_delay(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.delay_ms = 3000;

    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    store_message m = must_get(f, id, NOW_MS);
    assert_int_equal(m.available_at_ms, NOW_MS + 3000);
    assert_int_equal(m.state, STORE_STATE_DELAYED);
}

static void
test_message_with_delay_is_not_claimable_one_ms_early(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.delay_ms = 3000;
    (void)must_enqueue_draft(f, &d, NOW_MS);

    size_t n = claim_count(f, "emails", NOW_MS + 2999);

    assert_int_equal(n, 0);
}

static void
test_message_with_delay_is_claimable_exactly_when_it_ends(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.delay_ms = 3000;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    store_message m = must_claim_msg(f, "emails", NOW_MS + 3000, LEASE_MS);

    assert_id_equal(m.id, id);
}

static void
test_available_at_in_the_past_counts_as_now(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.available_at_ms = NOW_MS - 60000;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    store_message m = must_claim_msg(f, "emails", NOW_MS, LEASE_MS);

    assert_id_equal(m.id, id);
}

static void
test_enqueue_with_both_available_at_and_delay_is_invalid(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out;
    store_draft d = draft("emails");
    d.available_at_ms = NOW_MS + 1000;
    d.delay_ms = 1000;

    hp_code code = enqueue(f, &d, 1, NOW_MS, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_DELAY);
}

static void
test_error_of_a_lone_draft_does_not_number_it(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out;
    store_draft d = draft("bad lane!");

    hp_code code = enqueue(f, &d, 1, NOW_MS, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME);
    assert_string_equal(st.msg, "lane name must be 1-64 of [A-Za-z0-9._:-]");
}

static void
test_error_in_a_batch_names_the_draft(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out[2];
    store_draft d[2] = { draft("emails"), draft("emails") };
    d[1].priority = STORE_PRIORITY_MAX + 1;

    hp_code code = enqueue(f, d, 2, NOW_MS, out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_PRIORITY);
    assert_string_equal(st.msg, "draft 1: priority must be 0-9");
}

static void
test_delayed_message_reads_as_pending_from_available_at(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.available_at_ms = NOW_MS + 5000;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    store_message early = must_get(f, id, NOW_MS + 4999);
    store_message due = must_get(f, id, NOW_MS + 5000);

    assert_int_equal(early.state, STORE_STATE_DELAYED);
    assert_int_equal(due.state, STORE_STATE_PENDING);
}

/* ---- dedupe ------------------------------------------------------------- */

static void
test_dedupe_hit_returns_the_first_id_as_duplicate(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d = dedupe_draft("emails", "order-1");
    store_enqueued first, second;
    assert_ok(enqueue(f, &d, 1, NOW_MS, &first, &st), st);

    hp_code code = enqueue(f, &d, 1, NOW_MS + 10, &second, &st);

    assert_ok(code, st);
    assert_false(first.duplicate);
    assert_true(second.duplicate);
    assert_id_equal(second.id, first.id);
}

static void
test_dedupe_hit_writes_no_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d = dedupe_draft("emails", "order-1");
    store_enqueued out;
    assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);

    assert_ok(enqueue(f, &d, 1, NOW_MS + 10, &out, &st), st);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + 10);
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.enqueued_total, 1);
    assert_int_equal(claim_count(f, "emails", NOW_MS + 10), 1);
}

static void
test_dedupe_hit_counts_in_dedupe_hits_total(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d = dedupe_draft("emails", "order-1");
    store_enqueued out;
    assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);
    assert_int_equal(must_stats(f, "emails", NOW_MS).dedupe_hits_total, 0);

    assert_ok(enqueue(f, &d, 1, NOW_MS + 10, &out, &st), st);

    assert_int_equal(must_stats(f, "emails", NOW_MS).dedupe_hits_total, 1);
}

static void
test_different_dedupe_keys_create_two_messages(void **state)
{
    fixture *f = *state;
    store_draft a = dedupe_draft("emails", "order-1");
    store_draft b = dedupe_draft("emails", "order-2");

    hp_id ia = must_enqueue_draft(f, &a, NOW_MS);
    hp_id ib = must_enqueue_draft(f, &b, NOW_MS);

    assert_id_not_equal(ia, ib);
    assert_int_equal(must_stats(f, "emails", NOW_MS).pending, 2);
}

static void
test_same_dedupe_key_twice_in_one_batch_creates_one_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d[2] = { dedupe_draft("emails", "order-1"),
                         dedupe_draft("emails", "order-1") };
    store_enqueued out[2];

    hp_code code = enqueue(f, d, 2, NOW_MS, out, &st);

    assert_ok(code, st);
    assert_false(out[0].duplicate);
    assert_true(out[1].duplicate);
    assert_id_equal(out[1].id, out[0].id);
    assert_int_equal(must_stats(f, "emails", NOW_MS).pending, 1);
}

static void
test_same_dedupe_key_in_two_lanes_creates_two_messages(void **state)
{
    fixture *f = *state;
    store_draft a = dedupe_draft("emails", "order-1");
    store_draft b = dedupe_draft("sms", "order-1");

    hp_id ia = must_enqueue_draft(f, &a, NOW_MS);
    hp_id ib = must_enqueue_draft(f, &b, NOW_MS);

    assert_id_not_equal(ia, ib);
}

static void
test_dedupe_key_still_hits_just_inside_the_window(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.dedupe_window_ms = 10000;
    must_lane_set(f, "emails", &ls);
    store_draft d = dedupe_draft("emails", "order-1");
    hp_id first = must_enqueue_draft(f, &d, NOW_MS);
    store_enqueued out;

    hp_code code = enqueue(f, &d, 1, NOW_MS + 9999, &out, &st);

    assert_ok(code, st);
    assert_true(out.duplicate);
    assert_id_equal(out.id, first);
}

static void
test_dedupe_key_after_the_window_creates_a_new_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.dedupe_window_ms = 10000;
    must_lane_set(f, "emails", &ls);
    store_draft d = dedupe_draft("emails", "order-1");
    hp_id first = must_enqueue_draft(f, &d, NOW_MS);
    store_enqueued out;

    hp_code code = enqueue(f, &d, 1, NOW_MS + 10001, &out, &st);

    assert_ok(code, st);
    assert_false(out.duplicate);
    assert_id_not_equal(out.id, first);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 10001).pending, 2);
}

static void
test_dedupe_key_after_the_window_dedupes_to_the_new_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.dedupe_window_ms = 10000;
    must_lane_set(f, "emails", &ls);
    store_draft d = dedupe_draft("emails", "order-1");
    (void)must_enqueue_draft(f, &d, NOW_MS);
    hp_id second = must_enqueue_draft(f, &d, NOW_MS + 10001);
    store_enqueued out;

    hp_code code = enqueue(f, &d, 1, NOW_MS + 10002, &out, &st);

    assert_ok(code, st);
    assert_true(out.duplicate);
    assert_id_equal(out.id, second);
}

static void
test_dedupe_key_after_prune_dedupe_creates_a_new_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.dedupe_window_ms = 10000;
    must_lane_set(f, "emails", &ls);
    store_draft d = dedupe_draft("emails", "order-1");
    hp_id first = must_enqueue_draft(f, &d, NOW_MS);
    store_step_res res;
    assert_ok(prune_dedupe(f, NOW_MS + 10001, 100, &res, &st), st);
    assert_int_equal(res.done, 1);
    store_enqueued out;

    hp_code code = enqueue(f, &d, 1, NOW_MS + 10001, &out, &st);

    assert_ok(code, st);
    assert_false(out.duplicate);
    assert_id_not_equal(out.id, first);
}

static void
test_prune_dedupe_keeps_entries_inside_the_window(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.dedupe_window_ms = 10000;
    must_lane_set(f, "emails", &ls);
    store_draft d = dedupe_draft("emails", "order-1");
    hp_id first = must_enqueue_draft(f, &d, NOW_MS);
    store_step_res res;
    assert_ok(prune_dedupe(f, NOW_MS + 9999, 100, &res, &st), st);
    assert_int_equal(res.done, 0);
    store_enqueued out;

    hp_code code = enqueue(f, &d, 1, NOW_MS + 9999, &out, &st);

    assert_ok(code, st);
    assert_true(out.duplicate);
    assert_id_equal(out.id, first);
}

static void
test_dedupe_window_zero_turns_dedupe_off(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.dedupe_window_ms = 0;
    must_lane_set(f, "emails", &ls);
    store_draft d = dedupe_draft("emails", "order-1");

    hp_id a = must_enqueue_draft(f, &d, NOW_MS);
    hp_id b = must_enqueue_draft(f, &d, NOW_MS);

    assert_id_not_equal(a, b);
}

static void
test_dedupe_hit_after_the_message_was_delivered_returns_its_id(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d = dedupe_draft("emails", "order-1");
    hp_id first = must_enqueue_draft(f, &d, NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    must_ack(f, first, tok, NOW_MS + 1);
    store_enqueued out;

    hp_code code = enqueue(f, &d, 1, NOW_MS + 2, &out, &st);

    assert_ok(code, st);
    assert_true(out.duplicate);
    assert_id_equal(out.id, first);
}

static void
tweak_colliding_hash(fixture *f, store_opts *o)
{
    (void)f;
    o->dedupe_hash = fixture_constant_hash;
}

static int
setup_colliding_hash(void **state)
{
    return fixture_setup_with(state, tweak_colliding_hash);
}

static void
test_colliding_dedupe_hashes_still_create_both_messages(void **state)
{
    fixture *f = *state;
    store_draft a = dedupe_draft("emails", "key-a");
    store_draft b = dedupe_draft("emails", "key-b");

    hp_id ia = must_enqueue_draft(f, &a, NOW_MS);
    hp_id ib = must_enqueue_draft(f, &b, NOW_MS);

    assert_id_not_equal(ia, ib);
    assert_int_equal(must_stats(f, "emails", NOW_MS).pending, 2);
}

static void
test_colliding_dedupe_hashes_each_key_dedupes_to_its_own_id(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft a = dedupe_draft("emails", "key-a");
    store_draft b = dedupe_draft("emails", "key-b");
    hp_id ia = must_enqueue_draft(f, &a, NOW_MS);
    hp_id ib = must_enqueue_draft(f, &b, NOW_MS);
    store_enqueued ra, rb;

    assert_ok(enqueue(f, &b, 1, NOW_MS + 1, &rb, &st), st);
    assert_ok(enqueue(f, &a, 1, NOW_MS + 1, &ra, &st), st);

    assert_true(ra.duplicate);
    assert_true(rb.duplicate);
    assert_id_equal(ra.id, ia);
    assert_id_equal(rb.id, ib);
    assert_int_equal(must_stats(f, "emails", NOW_MS).pending, 2);
}

static void
test_colliding_dedupe_hashes_in_one_batch_stay_apart(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d[3] = { dedupe_draft("emails", "key-a"),
                         dedupe_draft("emails", "key-b"),
                         dedupe_draft("emails", "key-a") };
    store_enqueued out[3];

    hp_code code = enqueue(f, d, 3, NOW_MS, out, &st);

    assert_ok(code, st);
    assert_false(out[0].duplicate);
    assert_false(out[1].duplicate);
    assert_true(out[2].duplicate);
    assert_id_not_equal(out[0].id, out[1].id);
    assert_id_equal(out[2].id, out[0].id);
}

#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
#define T_COLLIDE(fn) \
    cmocka_unit_test_setup_teardown(fn, setup_colliding_hash, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_enqueue_batch_returns_distinct_increasing_ids),
        T(test_enqueued_message_is_pending_with_defaults),
        T(test_enqueue_keeps_payload_headers_target_and_priority),
        T(test_enqueue_creates_the_lane_with_default_settings),
        T(test_draft_max_attempts_zero_takes_the_lane_setting),
        T(test_draft_max_attempts_overrides_the_lane_setting),
        T(test_enqueue_counts_pending_and_enqueued_total),
        T(test_enqueue_batch_over_many_lanes_counts_each_lane),
        T(test_message_with_future_available_at_is_delayed),
        T(test_message_with_available_at_is_not_claimable_one_ms_early),
        T(test_message_with_available_at_is_claimable_exactly_then),
        T(test_delay_sets_available_at_to_now_plus_delay),
        T(test_message_with_delay_is_not_claimable_one_ms_early),
        T(test_message_with_delay_is_claimable_exactly_when_it_ends),
        T(test_available_at_in_the_past_counts_as_now),
        T(test_enqueue_with_both_available_at_and_delay_is_invalid),
        T(test_error_of_a_lone_draft_does_not_number_it),
        T(test_error_in_a_batch_names_the_draft),
        T(test_delayed_message_reads_as_pending_from_available_at),
        T(test_dedupe_hit_returns_the_first_id_as_duplicate),
        T(test_dedupe_hit_writes_no_message),
        T(test_dedupe_hit_counts_in_dedupe_hits_total),
        T(test_different_dedupe_keys_create_two_messages),
        T(test_same_dedupe_key_twice_in_one_batch_creates_one_message),
        T(test_same_dedupe_key_in_two_lanes_creates_two_messages),
        T(test_dedupe_key_still_hits_just_inside_the_window),
        T(test_dedupe_key_after_the_window_creates_a_new_message),
        T(test_dedupe_key_after_the_window_dedupes_to_the_new_message),
        T(test_dedupe_key_after_prune_dedupe_creates_a_new_message),
        T(test_prune_dedupe_keeps_entries_inside_the_window),
        T(test_dedupe_window_zero_turns_dedupe_off),
        T(test_dedupe_hit_after_the_message_was_delivered_returns_its_id),
        T_COLLIDE(test_colliding_dedupe_hashes_still_create_both_messages),
        T_COLLIDE(test_colliding_dedupe_hashes_each_key_dedupes_to_its_own_id),
        T_COLLIDE(test_colliding_dedupe_hashes_in_one_batch_stay_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
