/*
 * store_claim_test.c - claim: the pending -> claimed transition, claim
 * order (priority, available_at, id), targets, expired leases and paused
 * lanes.
 */
#include <string.h>

#include "store_fixture.h"

static hp_id
enqueue_with(fixture *f, const char *target, uint32_t priority,
             uint64_t available_at, uint64_t now)
{
    store_draft d = draft("emails");
    d.target = hp_str_c(target);
    d.priority = priority;
    d.available_at_ms = available_at;
    return must_enqueue_draft(f, &d, now);
}

/* Claims up to max of lane "emails" at now, for target (any when NULL). */
static store_claimed
claim_some(fixture *f, const char *target, uint32_t max, uint64_t now)
{
    hp_status st;
    store_claimed out;
    store_claim_req req = claim_req("emails", max, LEASE_MS);
    if (target != NULL) {
        req.any_target = false;
        req.target = hp_str_c(target);
    }
    hp_code code = claim(f, &req, now, &out, &st);
    assert_ok(code, st);
    return out;
}

static void
assert_claimed_ids(const store_claimed *c, const hp_id *want, size_t n)
{
    assert_int_equal(c->n, n);
    for (size_t i = 0; i < n; i++) {
        if (hp_id_cmp(&c->msgs[i].id, &want[i]) != 0) {
            print_error("claimed ids differ at position %zu\n", i);
        }
        assert_id_equal(c->msgs[i].id, want[i]);
    }
}

/* ---- pending -> claimed ------------------------------------------------ */

static void
test_claim_moves_pending_to_claimed(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);

    store_message c = must_claim_msg(f, "emails", NOW_MS, LEASE_MS);

    assert_id_equal(c.id, id);
    assert_int_equal(c.state, STORE_STATE_CLAIMED);
    assert_int_equal(must_get(f, id, NOW_MS).state, STORE_STATE_CLAIMED);
}

static void
test_claim_sets_lease_consumer_and_attempts(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);

    store_message c = must_claim_msg(f, "emails", NOW_MS + 5, 2500);

    assert_int_equal(c.lease_expires_at_ms, NOW_MS + 5 + 2500);
    assert_int_equal(c.attempts, 1);
    assert_str_equal(c.consumer, "worker-1");
    store_message m = must_get(f, id, NOW_MS + 5);
    assert_int_equal(m.lease_expires_at_ms, NOW_MS + 5 + 2500);
    assert_int_equal(m.attempts, 1);
    assert_str_equal(m.consumer, "worker-1");
}

static void
test_claim_returns_a_nonzero_token(void **state)
{
    fixture *f = *state;
    static const store_token zero;
    (void)must_enqueue(f, "emails", NOW_MS);

    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    assert_memory_not_equal(tok.b, zero.b, STORE_TOKEN_LEN);
}

static void
test_claim_returns_payload_and_headers(void **state)
{
    fixture *f = *state;
    store_header h = { HP_S("k"), HP_S("v") };
    store_draft d = draft("emails");
    d.headers = &h;
    d.n_headers = 1;
    (void)must_enqueue_draft(f, &d, NOW_MS);

    store_message c = must_claim_msg(f, "emails", NOW_MS, LEASE_MS);

    assert_int_equal(c.payload_len, 5);
    assert_memory_equal(c.payload, "hello", 5);
    assert_int_equal(c.n_headers, 1);
    assert_str_equal(c.headers[0].key, "k");
    assert_str_equal(c.headers[0].value, "v");
}

static void
test_get_of_a_claimed_message_shows_no_token(void **state)
{
    fixture *f = *state;
    static const store_token zero;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);

    store_message m = must_get(f, id, NOW_MS);

    assert_memory_equal(m.token.b, zero.b, STORE_TOKEN_LEN);
}

static void
test_each_claim_gets_a_fresh_token(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_token first = must_claim(f, "emails", NOW_MS, LEASE_MS);

    store_token second = must_claim(f, "emails", NOW_MS + 2000, LEASE_MS);

    assert_memory_not_equal(first.b, second.b, STORE_TOKEN_LEN);
}

static void
test_claimed_message_is_not_claimed_again_while_leased(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);

    size_t n = claim_count(f, "emails", NOW_MS + LEASE_MS - 1);

    assert_int_equal(n, 0);
}

static void
test_claim_moves_the_count_from_pending_to_claimed(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "emails", NOW_MS);
    (void)must_enqueue(f, "emails", NOW_MS);

    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);

    store_lane_stats s = must_stats(f, "emails", NOW_MS);
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.claimed, 1);
    assert_int_equal(s.claimed_total, 1);
}

static void
test_claim_returns_at_most_max(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 5; i++) {
        (void)must_enqueue(f, "emails", NOW_MS);
    }

    store_claimed c = claim_some(f, NULL, 3, NOW_MS);

    assert_int_equal(c.n, 3);
    assert_int_equal(claim_count(f, "emails", NOW_MS), 2);
}

static void
test_claim_of_an_empty_lane_returns_nothing(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    must_lane_set(f, "emails", &ls);

    size_t n = claim_count(f, "emails", NOW_MS);

    assert_int_equal(n, 0);
}

static void
test_claim_of_an_unknown_lane_returns_nothing(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "emails", NOW_MS);

    size_t n = claim_count(f, "unknown", NOW_MS);

    assert_int_equal(n, 0);
}

static void
test_claim_of_an_unknown_lane_leaves_the_status_untouched(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_claimed out;
    store_claim_req req = claim_req("unknown", 1, LEASE_MS);

    hp_code code = claim(f, &req, NOW_MS, &out, &st); /* st starts cleared */

    assert_ok(code, st);
    /* STYLE.md 3: the status is untouched on HP_OK. */
    assert_status(st, HP_OK, "");
}

/* ---- claim order --------------------------------------------------------- */

static void
test_claim_takes_lower_priority_values_first(void **state)
{
    fixture *f = *state;
    hp_id p5 = enqueue_with(f, "", 5, 0, NOW_MS);
    hp_id p9 = enqueue_with(f, "", 9, 0, NOW_MS);
    hp_id p0 = enqueue_with(f, "", 0, 0, NOW_MS);
    const hp_id want[3] = { p0, p5, p9 };

    store_claimed c = claim_some(f, NULL, 10, NOW_MS);

    assert_claimed_ids(&c, want, 3);
}

static void
test_claim_takes_earlier_available_at_first_within_a_priority(void **state)
{
    fixture *f = *state;
    hp_id late = enqueue_with(f, "", 0, NOW_MS + 20, NOW_MS);
    hp_id early = enqueue_with(f, "", 0, NOW_MS + 10, NOW_MS);
    const hp_id want[2] = { early, late };

    store_claimed c = claim_some(f, NULL, 10, NOW_MS + 30);

    assert_claimed_ids(&c, want, 2);
}

static void
test_priority_wins_over_available_at(void **state)
{
    fixture *f = *state;
    hp_id old_low = enqueue_with(f, "", 1, 0, NOW_MS);
    hp_id new_high = enqueue_with(f, "", 0, NOW_MS + 10, NOW_MS);
    const hp_id want[2] = { new_high, old_low };

    store_claimed c = claim_some(f, NULL, 10, NOW_MS + 10);

    assert_claimed_ids(&c, want, 2);
}

static void
test_claim_takes_lower_ids_first_within_one_available_at(void **state)
{
    fixture *f = *state;
    hp_id want[4];
    for (size_t i = 0; i < 4; i++) {
        want[i] = enqueue_with(f, "", 0, 0, NOW_MS);
    }

    store_claimed c = claim_some(f, NULL, 10, NOW_MS);

    assert_claimed_ids(&c, want, 4);
}

static void
test_later_claims_continue_in_claim_order(void **state)
{
    fixture *f = *state;
    hp_id b = enqueue_with(f, "", 2, 0, NOW_MS);
    hp_id a = enqueue_with(f, "", 1, 0, NOW_MS);
    hp_id c2 = enqueue_with(f, "", 2, 0, NOW_MS);

    store_claimed first = claim_some(f, NULL, 1, NOW_MS);
    store_claimed rest = claim_some(f, NULL, 5, NOW_MS);

    const hp_id want_first[1] = { a };
    const hp_id want_rest[2] = { b, c2 };
    assert_claimed_ids(&first, want_first, 1);
    assert_claimed_ids(&rest, want_rest, 2);
}

/* ---- targets ----------------------------------------------------------------
 */

static void
test_any_target_claim_merges_targets_in_claim_order(void **state)
{
    fixture *f = *state;
    hp_id b1 = enqueue_with(f, "b", 1, 0, NOW_MS);
    hp_id a0_late = enqueue_with(f, "a", 0, NOW_MS + 20, NOW_MS);
    hp_id none0 = enqueue_with(f, "", 0, 0, NOW_MS);
    hp_id a1 = enqueue_with(f, "a", 1, 0, NOW_MS);
    hp_id c0 = enqueue_with(f, "c", 0, 0, NOW_MS + 5);
    const hp_id want[5] = { none0, c0, a0_late, b1, a1 };

    store_claimed c = claim_some(f, NULL, 10, NOW_MS + 20);

    assert_claimed_ids(&c, want, 5);
}

static void
test_any_target_claim_respects_max_across_targets(void **state)
{
    fixture *f = *state;
    hp_id a = enqueue_with(f, "a", 0, 0, NOW_MS);
    hp_id b = enqueue_with(f, "b", 0, 0, NOW_MS);
    (void)enqueue_with(f, "c", 0, 0, NOW_MS);
    const hp_id want[2] = { a, b };

    store_claimed c = claim_some(f, NULL, 2, NOW_MS);

    assert_claimed_ids(&c, want, 2);
}

static void
test_target_claim_only_sees_its_target(void **state)
{
    fixture *f = *state;
    (void)enqueue_with(f, "a", 0, 0, NOW_MS);
    hp_id b1 = enqueue_with(f, "b", 5, 0, NOW_MS);
    (void)enqueue_with(f, "", 0, 0, NOW_MS);
    hp_id b2 = enqueue_with(f, "b", 5, 0, NOW_MS);
    (void)enqueue_with(f, "bb", 0, 0, NOW_MS);
    const hp_id want[2] = { b1, b2 };

    store_claimed c = claim_some(f, "b", 10, NOW_MS);

    assert_claimed_ids(&c, want, 2);
}

static void
test_empty_target_claim_only_sees_messages_without_target(void **state)
{
    fixture *f = *state;
    (void)enqueue_with(f, "a", 0, 0, NOW_MS);
    hp_id none = enqueue_with(f, "", 3, 0, NOW_MS);
    (void)enqueue_with(f, "b", 0, 0, NOW_MS);
    const hp_id want[1] = { none };

    store_claimed c = claim_some(f, "", 10, NOW_MS);

    assert_claimed_ids(&c, want, 1);
}

static void
test_claim_of_a_target_without_messages_returns_nothing(void **state)
{
    fixture *f = *state;
    (void)enqueue_with(f, "a", 0, 0, NOW_MS);

    store_claimed c = claim_some(f, "z", 10, NOW_MS);

    assert_int_equal(c.n, 0);
}

/* ---- expired leases -------------------------------------------------------
 */

static void
test_expired_lease_is_claimable_again_without_maintenance(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);

    store_message again =
        must_claim_msg(f, "emails", NOW_MS + LEASE_MS + 1, LEASE_MS);

    assert_id_equal(again.id, id);
    assert_int_equal(again.attempts, 2);
}

static void
test_expired_message_keeps_its_place_in_claim_order(void **state)
{
    fixture *f = *state;
    hp_id a = must_enqueue(f, "emails", NOW_MS);
    hp_id b = must_enqueue(f, "emails", NOW_MS);
    store_message first = must_claim_msg(f, "emails", NOW_MS, LEASE_MS);
    assert_id_equal(first.id, a);
    const hp_id want[2] = { a, b };

    store_claimed c = claim_some(f, NULL, 10, NOW_MS + LEASE_MS + 1);

    assert_claimed_ids(&c, want, 2);
}

static void
test_claim_dead_letters_an_expired_last_attempt(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.max_attempts = 1;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);

    size_t n = claim_count(f, "emails", NOW_MS + LEASE_MS + 1);

    assert_int_equal(n, 0);
    store_message m = must_get(f, id, NOW_MS + LEASE_MS + 1);
    assert_int_equal(m.state, STORE_STATE_DEAD);
    assert_str_equal(m.last_error, "lease expired");
}

/* ---- paused lanes -----------------------------------------------------------
 */

static void
test_paused_lane_claims_nothing(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.paused = true;
    (void)must_enqueue(f, "emails", NOW_MS);
    must_lane_set(f, "emails", &ls);

    size_t n = claim_count(f, "emails", NOW_MS);

    assert_int_equal(n, 0);
    assert_int_equal(must_stats(f, "emails", NOW_MS).pending, 1);
}

static void
test_resumed_lane_claims_again(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.paused = true;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    must_lane_set(f, "emails", &ls);
    assert_int_equal(claim_count(f, "emails", NOW_MS), 0);
    ls.paused = false;
    must_lane_set(f, "emails", &ls);

    store_message c = must_claim_msg(f, "emails", NOW_MS + 1, LEASE_MS);

    assert_id_equal(c.id, id);
}

#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_claim_moves_pending_to_claimed),
        T(test_claim_sets_lease_consumer_and_attempts),
        T(test_claim_returns_a_nonzero_token),
        T(test_claim_returns_payload_and_headers),
        T(test_get_of_a_claimed_message_shows_no_token),
        T(test_each_claim_gets_a_fresh_token),
        T(test_claimed_message_is_not_claimed_again_while_leased),
        T(test_claim_moves_the_count_from_pending_to_claimed),
        T(test_claim_returns_at_most_max),
        T(test_claim_of_an_empty_lane_returns_nothing),
        T(test_claim_of_an_unknown_lane_returns_nothing),
        T(test_claim_of_an_unknown_lane_leaves_the_status_untouched),
        T(test_claim_takes_lower_priority_values_first),
        T(test_claim_takes_earlier_available_at_first_within_a_priority),
        T(test_priority_wins_over_available_at),
        T(test_claim_takes_lower_ids_first_within_one_available_at),
        T(test_later_claims_continue_in_claim_order),
        T(test_any_target_claim_merges_targets_in_claim_order),
        T(test_any_target_claim_respects_max_across_targets),
        T(test_target_claim_only_sees_its_target),
        T(test_empty_target_claim_only_sees_messages_without_target),
        T(test_claim_of_a_target_without_messages_returns_nothing),
        T(test_expired_lease_is_claimable_again_without_maintenance),
        T(test_expired_message_keeps_its_place_in_claim_order),
        T(test_claim_dead_letters_an_expired_last_attempt),
        T(test_paused_lane_claims_nothing),
        T(test_resumed_lane_claims_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
