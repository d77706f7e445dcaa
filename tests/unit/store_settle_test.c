/*
 * store_settle_test.c - what a claim holder does with its claim: ack (with
 * results and follow-ups, in batches), nack (backoff, explicit retry, dead
 * letters) and extend; and what a stale token gets.
 */
#include <string.h>

#include "store_fixture.h"

static store_ack_item
ack_item(hp_id id, store_token token)
{
    store_ack_item it;
    memset(&it, 0, sizeof(it));
    it.id = id;
    it.token = token;
    return it;
}

static store_nack_req
nack_req(hp_id id, store_token token, const char *error, uint64_t retry_at)
{
    store_nack_req r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    r.token = token;
    r.error = hp_str_c(error);
    r.retry_at_ms = retry_at;
    return r;
}

/* ---- ack ------------------------------------------------------------------
 */

static void
test_ack_moves_claimed_to_delivered(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    must_ack(f, id, tok, NOW_MS + 10);

    store_message m = must_get(f, id, NOW_MS + 10);
    assert_int_equal(m.state, STORE_STATE_DELIVERED);
    assert_int_equal(m.finished_at_ms, NOW_MS + 10);
}

static void
test_ack_moves_the_count_to_delivered_and_acked_total(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    must_ack(f, id, tok, NOW_MS + 10);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + 10);
    assert_int_equal(s.claimed, 0);
    assert_int_equal(s.delivered, 1);
    assert_int_equal(s.acked_total, 1);
}

static void
test_ack_keeps_the_result_with_the_delivered_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_ack_item it = ack_item(id, tok);
    it.result = "sent:42";
    it.result_len = 7;

    hp_code code = ack_in(f, SCOPE, &it, 1, NULL, 0, NOW_MS, NULL, &st);

    assert_ok(code, st);
    store_message m = must_get(f, id, NOW_MS);
    assert_int_equal(m.result_len, 7);
    assert_memory_equal(m.result, "sent:42", 7);
}

static void
test_ack_with_stale_token_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token old = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_claim(f, "emails", NOW_MS + 2000, LEASE_MS); /* re-claimed */

    hp_code code = ack(f, id, old, NOW_MS + 2500, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_ack_with_stale_token_leaves_the_new_claim_alone(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token old = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_token fresh = must_claim(f, "emails", NOW_MS + 2000, LEASE_MS);
    assert_int_equal(ack(f, id, old, NOW_MS + 2500, &st),
                     HP_FAILED_PRECONDITION);

    store_message m = must_get(f, id, NOW_MS + 2500);

    assert_int_equal(m.state, STORE_STATE_CLAIMED);
    assert_int_equal(m.attempts, 2);
    must_ack(f, id, fresh, NOW_MS + 2600);
}

static void
test_ack_after_own_lease_expired_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = ack(f, id, tok, NOW_MS + LEASE_MS + 1, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_ack_just_before_lease_expiry_succeeds(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = ack(f, id, tok, NOW_MS + LEASE_MS - 1, &st);

    assert_ok(code, st);
}

static void
test_ack_after_nack_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_nack(f, id, tok, NOW_MS + 5000, NOW_MS);

    hp_code code = ack(f, id, tok, NOW_MS + 1, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_ack_with_a_made_up_token_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    tok.b[0] ^= 0xff;

    hp_code code = ack(f, id, tok, NOW_MS + 1, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_repeated_ack_with_the_same_token_is_ok(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    must_ack(f, id, tok, NOW_MS + 10);

    hp_code code = ack(f, id, tok, NOW_MS + 20, &st);

    assert_ok(code, st);
}

static void
test_repeated_ack_changes_nothing(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    must_ack(f, id, tok, NOW_MS + 10);

    must_ack(f, id, tok, NOW_MS + 20);

    store_message m = must_get(f, id, NOW_MS + 20);
    assert_int_equal(m.finished_at_ms, NOW_MS + 10);
    store_lane_stats s = must_stats(f, "emails", NOW_MS + 20);
    assert_int_equal(s.acked_total, 1);
    assert_int_equal(s.delivered, 1);
}

static void
test_ack_of_an_unknown_id_is_not_found(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    id.b[15] ^= 0x01;

    hp_code code = ack(f, id, tok, NOW_MS + 1, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
}

/* ---- ack batches and follow-ups ------------------------------------------ */

typedef struct two_claims {
    hp_id a, b;
    store_token ta, tb;
} two_claims;

/* Claims a and b; b's token is then made stale by a nack. */
static two_claims
claim_two_and_lose_b(fixture *f)
{
    two_claims c;
    c.a = must_enqueue(f, "emails", NOW_MS);
    c.b = must_enqueue(f, "emails", NOW_MS);
    c.ta = must_claim(f, "emails", NOW_MS, LEASE_MS);
    c.tb = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_nack(f, c.b, c.tb, NOW_MS + 60000, NOW_MS);
    return c;
}

static void
test_ack_batch_with_one_stale_token_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    two_claims c = claim_two_and_lose_b(f);
    store_ack_item items[2] = { ack_item(c.a, c.ta), ack_item(c.b, c.tb) };

    hp_code code = ack_in(f, SCOPE, items, 2, NULL, 0, NOW_MS + 1, NULL, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_ack_batch_with_one_stale_token_acks_none(void **state)
{
    fixture *f = *state;
    hp_status st;
    two_claims c = claim_two_and_lose_b(f);
    store_ack_item items[2] = { ack_item(c.a, c.ta), ack_item(c.b, c.tb) };

    hp_code code = ack_in(f, SCOPE, items, 2, NULL, 0, NOW_MS + 1, NULL, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_int_equal(must_get(f, c.a, NOW_MS + 1).state, STORE_STATE_CLAIMED);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 1).acked_total, 0);
    must_ack(f, c.a, c.ta, NOW_MS + 2); /* the good claim is still held */
}

static void
test_ack_batch_with_one_stale_token_creates_no_followups(void **state)
{
    fixture *f = *state;
    hp_status st;
    two_claims c = claim_two_and_lose_b(f);
    store_ack_item items[2] = { ack_item(c.a, c.ta), ack_item(c.b, c.tb) };
    store_draft next = draft("next");
    store_enqueued out;

    hp_code code = ack_in(f, SCOPE, items, 2, &next, 1, NOW_MS + 1, &out, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    store_lane_stats s;
    assert_int_equal(stats(f, "next", NOW_MS + 1, &s, &st), HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_LANE);
}

static void
test_ack_batch_acks_every_item(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id a = must_enqueue(f, "emails", NOW_MS);
    hp_id b = must_enqueue(f, "emails", NOW_MS);
    store_token ta = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_token tb = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_ack_item items[2] = { ack_item(a, ta), ack_item(b, tb) };

    hp_code code = ack_in(f, SCOPE, items, 2, NULL, 0, NOW_MS + 1, NULL, &st);

    assert_ok(code, st);
    assert_int_equal(must_get(f, a, NOW_MS + 1).state, STORE_STATE_DELIVERED);
    assert_int_equal(must_get(f, b, NOW_MS + 1).state, STORE_STATE_DELIVERED);
}

static void
test_ack_with_followups_creates_them_and_returns_their_ids(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_ack_item it = ack_item(id, tok);
    store_draft next[2] = { draft("next"), draft("next") };
    next[1].target = HP_S("audit");
    store_enqueued out[2];

    hp_code code = ack_in(f, SCOPE, &it, 1, next, 2, NOW_MS + 1, out, &st);

    assert_ok(code, st);
    assert_id_not_equal(out[0].id, out[1].id);
    store_message m0 = must_get(f, out[0].id, NOW_MS + 1);
    store_message m1 = must_get(f, out[1].id, NOW_MS + 1);
    assert_int_equal(m0.state, STORE_STATE_PENDING);
    assert_str_equal(m0.lane, "next");
    assert_str_equal(m1.target, "audit");
    assert_int_equal(must_stats(f, "next", NOW_MS + 1).pending, 2);
}

static void
test_ack_with_an_invalid_followup_acks_nothing(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_ack_item it = ack_item(id, tok);
    store_draft bad = draft("next");
    bad.priority = STORE_PRIORITY_MAX + 1;
    store_enqueued out;

    hp_code code = ack_in(f, SCOPE, &it, 1, &bad, 1, NOW_MS + 1, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_PRIORITY);
    assert_string_equal(st.msg, "follow-up 0: priority must be 0-9");
    assert_int_equal(must_get(f, id, NOW_MS + 1).state, STORE_STATE_CLAIMED);
}

static void
test_repeated_ack_does_not_enqueue_followups_again(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_ack_item it = ack_item(id, tok);
    store_draft next = draft("next");
    store_enqueued out;
    assert_ok(ack_in(f, SCOPE, &it, 1, &next, 1, NOW_MS + 1, &out, &st), st);

    hp_code code = ack_in(f, SCOPE, &it, 1, &next, 1, NOW_MS + 2, &out, &st);

    assert_ok(code, st);
    store_lane_stats s = must_stats(f, "next", NOW_MS + 2);
    assert_int_equal(s.enqueued_total, 1);
    assert_int_equal(s.pending, 1);
}

static void
test_ack_batch_over_many_lanes_counts_each_lane(void **state)
{
    fixture *f = *state;
    hp_status st;
    static const char *const names[6] = { "l0", "l1", "l2", "l3", "l4", "l5" };
    store_ack_item items[6];
    for (size_t i = 0; i < 6; i++) {
        hp_id id = must_enqueue(f, names[i], NOW_MS);
        items[i] = ack_item(id, must_claim(f, names[i], NOW_MS, LEASE_MS));
    }

    hp_code code = ack_in(f, SCOPE, items, 6, NULL, 0, NOW_MS + 1, NULL, &st);

    assert_ok(code, st);
    for (size_t i = 0; i < 6; i++) {
        store_lane_stats s = must_stats(f, names[i], NOW_MS + 1);
        assert_int_equal(s.claimed, 0);
        assert_int_equal(s.delivered, 1);
        assert_int_equal(s.acked_total, 1);
    }
}

/* ---- nack -----------------------------------------------------------------
 */

static void
test_nack_with_attempts_left_requeues_the_message(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    store_nack_res res = must_nack(f, id, tok, NOW_MS + 5000, NOW_MS + 10);

    assert_false(res.dead);
    assert_int_equal(res.retry_at_ms, NOW_MS + 5000);
    store_message m = must_get(f, id, NOW_MS + 5000);
    assert_int_equal(m.state, STORE_STATE_PENDING);
    assert_int_equal(m.attempts, 1);
    store_lane_stats s = must_stats(f, "emails", NOW_MS + 10);
    assert_int_equal(s.claimed, 0);
    assert_int_equal(s.nacked_total, 1);
}

static void
test_nacked_message_is_delayed_until_retry_at(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    (void)must_nack(f, id, tok, NOW_MS + 5000, NOW_MS + 10);

    store_message m = must_get(f, id, NOW_MS + 10);
    assert_int_equal(m.state, STORE_STATE_DELAYED);
    assert_int_equal(m.available_at_ms, NOW_MS + 5000);
}

static void
test_nack_with_retry_at_is_not_claimable_one_ms_early(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_nack(f, id, tok, NOW_MS + 7777, NOW_MS);

    size_t n = claim_count(f, "emails", NOW_MS + 7776);

    assert_int_equal(n, 0);
}

static void
test_nack_with_retry_at_is_claimable_exactly_then(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_nack(f, id, tok, NOW_MS + 7777, NOW_MS);

    store_message c = must_claim_msg(f, "emails", NOW_MS + 7777, LEASE_MS);

    assert_id_equal(c.id, id);
    assert_int_equal(c.attempts, 2);
}

static void
test_nack_of_the_last_attempt_dead_letters_the_message(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.max_attempts = 2;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    store_token t1 = must_claim(f, "emails", NOW_MS, LEASE_MS);
    assert_false(must_nack(f, id, t1, NOW_MS + 10, NOW_MS).dead);
    store_token t2 = must_claim(f, "emails", NOW_MS + 10, LEASE_MS);

    store_nack_res res = must_nack(f, id, t2, 0, NOW_MS + 20);

    assert_true(res.dead);
    store_message m = must_get(f, id, NOW_MS + 20);
    assert_int_equal(m.state, STORE_STATE_DEAD);
    assert_int_equal(m.finished_at_ms, NOW_MS + 20);
    assert_int_equal(m.attempts, 2);
}

static void
test_nack_of_the_last_attempt_counts_as_dead(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.max_attempts = 1;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    (void)must_nack(f, id, tok, 0, NOW_MS + 20);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + 20);
    assert_int_equal(s.dead, 1);
    assert_int_equal(s.dead_total, 1);
    assert_int_equal(s.pending + s.delayed + s.claimed, 0);
}

static void
test_dead_lettered_message_is_not_claimable(void **state)
{
    fixture *f = *state;
    (void)must_make_dead(f, "emails", NOW_MS);

    size_t n = claim_count(f, "emails", NOW_MS + DAY_MS);

    assert_int_equal(n, 0);
}

static void
test_nack_keeps_the_error_text_as_last_error(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_nack_req req = nack_req(id, tok, "smtp 451: try later", 0);

    hp_code code = nack_in(f, SCOPE, &req, NOW_MS, NULL, &res, &st);

    assert_ok(code, st);
    assert_str_equal(must_get(f, id, NOW_MS).last_error, "smtp 451: try later");
}

static void
test_nack_with_stale_token_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token old = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_claim(f, "emails", NOW_MS + 2000, LEASE_MS);

    hp_code code = nack(f, id, old, 0, NOW_MS + 2500, &res, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_nack_of_an_unknown_id_is_not_found(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    id.b[15] ^= 0x01;

    hp_code code = nack(f, id, tok, 0, NOW_MS, &res, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
}

static void
test_repeated_nack_returns_the_same_outcome(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_nack_res first = must_nack(f, id, tok, 0, NOW_MS + 10);

    store_nack_res again = must_nack(f, id, tok, 0, NOW_MS + 20);

    assert_int_equal(again.dead, first.dead);
    assert_int_equal(again.retry_at_ms, first.retry_at_ms);
}

static void
test_repeated_nack_changes_nothing(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_nack_res first = must_nack(f, id, tok, 0, NOW_MS + 10);

    (void)must_nack(f, id, tok, 0, NOW_MS + 20);

    store_message m = must_get(f, id, NOW_MS + 20);
    assert_int_equal(m.available_at_ms, first.retry_at_ms);
    assert_int_equal(m.attempts, 1);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 20).nacked_total, 1);
}

static void
test_repeated_nack_of_a_dead_letter_reports_dead_again(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.max_attempts = 1;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    assert_true(must_nack(f, id, tok, 0, NOW_MS).dead);

    store_nack_res again = must_nack(f, id, tok, 0, NOW_MS + 5);

    assert_true(again.dead);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 5).dead_total, 1);
}

static void
test_nack_with_followups_enqueues_them(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_draft alert = draft("alerts");
    store_nack_req req = nack_req(id, tok, "boom", 0);
    req.followups = &alert;
    req.n_followups = 1;
    store_enqueued out;

    hp_code code = nack_in(f, SCOPE, &req, NOW_MS, &out, &res, &st);

    assert_ok(code, st);
    store_message m = must_get(f, out.id, NOW_MS);
    assert_str_equal(m.lane, "alerts");
    assert_int_equal(m.state, STORE_STATE_PENDING);
}

static void
test_nack_after_own_lease_expired_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = nack(f, id, tok, 0, NOW_MS + LEASE_MS + 1, &res, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_nack_with_stale_token_creates_no_followups(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token old = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_claim(f, "emails", NOW_MS + 2000, LEASE_MS);
    store_draft alert = draft("alerts");
    store_nack_req req = nack_req(id, old, "boom", 0);
    req.followups = &alert;
    req.n_followups = 1;
    store_enqueued out;

    hp_code code = nack_in(f, SCOPE, &req, NOW_MS + 2500, &out, &res, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    store_lane_stats s;
    assert_int_equal(stats(f, "alerts", NOW_MS + 2500, &s, &st), HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_LANE);
}

static void
test_nacked_message_counts_as_delayed_until_retry_at(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    (void)must_nack(f, id, tok, NOW_MS + 5000, NOW_MS + 10);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + 10);
    assert_int_equal(s.delayed, 1);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.claimed, 0);
}

static void
test_claim_and_ack_agree_on_the_lease_boundary(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token old = must_claim(f, "emails", NOW_MS, LEASE_MS);
    const uint64_t edge = NOW_MS + LEASE_MS;

    size_t reclaimed = claim_count(f, "emails", edge);
    hp_code code = ack(f, id, old, edge, &st);

    /* Never two holders: if the message went out again at the edge, the
     * old token must have lost it, and the other way round. */
    if (reclaimed == 1) {
        assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
    } else {
        assert_int_equal(reclaimed, 0);
        assert_ok(code, st);
    }
}

/* ---- backoff ------------------------------------------------------------- */

/* Claims id at *t, nacks it with the lane's backoff and returns the delay;
 * *t becomes the retry time. */
static uint64_t
fail_once(fixture *f, hp_id id, uint64_t *t)
{
    store_message c = must_claim_msg(f, "emails", *t, LEASE_MS);
    assert_id_equal(c.id, id);
    store_nack_res res = must_nack(f, id, c.token, 0, *t);
    assert_false(res.dead);
    assert_true(res.retry_at_ms > *t);
    uint64_t delay = res.retry_at_ms - *t;
    *t = res.retry_at_ms;
    return delay;
}

static void
test_default_backoff_is_exponential_with_20_percent_jitter(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    uint64_t t = NOW_MS;

    uint64_t d1 = fail_once(f, id, &t);
    uint64_t d2 = fail_once(f, id, &t);
    uint64_t d3 = fail_once(f, id, &t);

    assert_in_range(d1, 800, 1200);
    assert_in_range(d2, 1600, 2400);
    assert_in_range(d3, 3200, 4800);
}

static void
test_exponential_backoff_stops_at_the_cap(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.max_attempts = 10;
    ls.backoff = STORE_BACKOFF_EXPONENTIAL;
    ls.backoff_base_ms = 1000;
    ls.backoff_factor_pct = 200;
    ls.backoff_cap_ms = 3000;
    ls.jitter_pct = 0;
    must_lane_set(f, "emails", &ls);
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    uint64_t t = NOW_MS;

    uint64_t d1 = fail_once(f, id, &t);
    uint64_t d2 = fail_once(f, id, &t);
    uint64_t d3 = fail_once(f, id, &t);
    uint64_t d4 = fail_once(f, id, &t);

    assert_int_equal(d1, 1000);
    assert_int_equal(d2, 2000);
    assert_int_equal(d3, 3000);
    assert_int_equal(d4, 3000);
}

static void
test_exponential_backoff_uses_the_factor(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.backoff_base_ms = 1000;
    ls.backoff_factor_pct = 300;
    ls.jitter_pct = 0;
    must_lane_set(f, "emails", &ls);
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    uint64_t t = NOW_MS;

    uint64_t d1 = fail_once(f, id, &t);
    uint64_t d2 = fail_once(f, id, &t);
    uint64_t d3 = fail_once(f, id, &t);

    assert_int_equal(d1, 1000);
    assert_int_equal(d2, 3000);
    assert_int_equal(d3, 9000);
}

static void
test_linear_backoff_grows_by_the_base(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.backoff = STORE_BACKOFF_LINEAR;
    ls.backoff_base_ms = 1000;
    ls.jitter_pct = 0;
    must_lane_set(f, "emails", &ls);
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    uint64_t t = NOW_MS;

    uint64_t d1 = fail_once(f, id, &t);
    uint64_t d2 = fail_once(f, id, &t);
    uint64_t d3 = fail_once(f, id, &t);

    assert_int_equal(d1, 1000);
    assert_int_equal(d2, 2000);
    assert_int_equal(d3, 3000);
}

static void
test_constant_backoff_stays_at_the_base(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.backoff = STORE_BACKOFF_CONSTANT;
    ls.backoff_base_ms = 1500;
    ls.jitter_pct = 0;
    must_lane_set(f, "emails", &ls);
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    uint64_t t = NOW_MS;

    uint64_t d1 = fail_once(f, id, &t);
    uint64_t d2 = fail_once(f, id, &t);
    uint64_t d3 = fail_once(f, id, &t);

    assert_int_equal(d1, 1500);
    assert_int_equal(d2, 1500);
    assert_int_equal(d3, 1500);
}

static void
test_jittered_backoff_stays_within_bounds_over_many_nacks(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.max_attempts = 100;
    ls.backoff = STORE_BACKOFF_CONSTANT;
    ls.backoff_base_ms = 10000;
    ls.jitter_pct = 20;
    must_lane_set(f, "emails", &ls);
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    uint64_t t = NOW_MS;
    uint64_t lo = UINT64_MAX, hi = 0;

    for (int i = 0; i < 50; i++) {
        uint64_t d = fail_once(f, id, &t);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }

    assert_in_range(lo, 8000, 12000);
    assert_in_range(hi, 8000, 12000);
    assert_true(lo < hi); /* jitter is applied, not a fixed delay */
}

/* ---- extend ---------------------------------------------------------------
 */

static void
test_extend_returns_the_new_expiry(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint64_t at = 0;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = extend(f, id, tok, 5000, NOW_MS + 500, &at, &st);

    assert_ok(code, st);
    assert_int_equal(at, NOW_MS + 500 + 5000);
    assert_int_equal(must_get(f, id, NOW_MS + 500).lease_expires_at_ms,
                     NOW_MS + 5500);
}

static void
test_extended_claim_outlives_the_old_expiry(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint64_t at = 0;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    assert_ok(extend(f, id, tok, 5000, NOW_MS + 500, &at, &st), st);

    size_t n = claim_count(f, "emails", NOW_MS + LEASE_MS + 1);

    assert_int_equal(n, 0);
    must_ack(f, id, tok, NOW_MS + LEASE_MS + 2);
}

static void
test_expire_leases_leaves_an_extended_claim_alone(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint64_t at = 0;
    store_step_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    assert_ok(extend(f, id, tok, 5000, NOW_MS + 500, &at, &st), st);

    hp_code code = expire_leases(f, NOW_MS + LEASE_MS + 1, 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.done, 0);
    assert_int_equal(must_get(f, id, NOW_MS + LEASE_MS + 1).state,
                     STORE_STATE_CLAIMED);
}

static void
test_extend_with_stale_token_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint64_t at = 0;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token old = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_claim(f, "emails", NOW_MS + 2000, LEASE_MS);

    hp_code code = extend(f, id, old, 5000, NOW_MS + 2500, &at, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_extend_after_the_lease_expired_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint64_t at = 0;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = extend(f, id, tok, 5000, NOW_MS + LEASE_MS + 1, &at, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_extend_of_an_unknown_id_is_not_found(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint64_t at = 0;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    id.b[15] ^= 0x01;

    hp_code code = extend(f, id, tok, 5000, NOW_MS, &at, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
}

/* ---- per-item acks (store_ack_each) --------------------------------------
 */

#define SMALL_BATCH 4u

typedef struct ack_each_op {
    const store_ack_item *items;
    size_t n;
    const store_draft *followups;
    size_t n_followups;
    uint64_t now;
    hp_status *each;
    store_enqueued *followups_out;
} ack_each_op;

static hp_code
run_ack_each(store_txn *t, void *arg, hp_status *st)
{
    ack_each_op *op = arg;
    return store_ack_each(t, SCOPE, op->items, op->n, op->followups,
                          op->n_followups, op->now, op->each, op->followups_out,
                          st);
}

static hp_code
ack_each(fixture *f, const store_ack_item *items, size_t n,
         const store_draft *followups, size_t n_followups, uint64_t now,
         hp_status *each, store_enqueued *followups_out, hp_status *st)
{
    ack_each_op op = { items, n,    followups,    n_followups,
                       now,   each, followups_out };
    hp_status_clear(st);
    return store_run(f->s, true, run_ack_each, &op, st);
}

/* Two claimed messages of "emails": the first's lease is lost (claimed
 * again by someone else at NOW_MS + 2000), the second still held then. */
static void
claim_one_lost_one_held(fixture *f, store_ack_item items[2])
{
    hp_id lost = must_enqueue(f, "emails", NOW_MS);
    store_token old = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_claim(f, "emails", NOW_MS + 2000, LEASE_MS);
    hp_id held = must_enqueue(f, "emails", NOW_MS + 2000);
    store_token tok = must_claim(f, "emails", NOW_MS + 2000, LEASE_MS);
    items[0] = ack_item(lost, old);
    items[1] = ack_item(held, tok);
}

static void
test_ack_each_acks_the_held_items_and_reports_the_lost_one(void **state)
{
    fixture *f = *state;
    hp_status st, each[2];
    store_ack_item items[2];
    claim_one_lost_one_held(f, items);

    hp_code code =
        ack_each(f, items, 2, NULL, 0, NOW_MS + 2100, each, NULL, &st);

    assert_ok(code, st);
    assert_status(each[0], HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
    assert_int_equal(each[1].code, HP_OK);
    assert_int_equal(must_get(f, items[0].id, NOW_MS + 2100).state,
                     STORE_STATE_CLAIMED);
    assert_int_equal(must_get(f, items[1].id, NOW_MS + 2100).state,
                     STORE_STATE_DELIVERED);
}

static void
test_ack_each_with_a_lost_item_creates_no_followups(void **state)
{
    fixture *f = *state;
    hp_status st, each[2];
    store_ack_item items[2];
    store_draft fu = draft("next");
    store_enqueued out;
    claim_one_lost_one_held(f, items);

    hp_code code =
        ack_each(f, items, 2, &fu, 1, NOW_MS + 2100, each, &out, &st);

    assert_ok(code, st);
    assert_int_equal(claim_count(f, "next", NOW_MS + 2100), 0);
}

static void
test_ack_each_with_every_item_held_creates_the_followups(void **state)
{
    fixture *f = *state;
    hp_status st, each[1];
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_ack_item it = ack_item(id, must_claim(f, "emails", NOW_MS, LEASE_MS));
    store_draft fu = draft("next");
    store_enqueued out;

    hp_code code = ack_each(f, &it, 1, &fu, 1, NOW_MS + 10, each, &out, &st);

    assert_ok(code, st);
    assert_int_equal(each[0].code, HP_OK);
    assert_int_equal(must_get(f, out.id, NOW_MS + 10).state,
                     STORE_STATE_PENDING);
}

static void
test_ack_each_reports_an_unknown_id_as_not_found(void **state)
{
    fixture *f = *state;
    hp_status st, each[2];
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_ack_item items[2] = { ack_item(id, tok), ack_item(id, tok) };
    items[0].id.b[15] ^= 0x01;

    hp_code code = ack_each(f, items, 2, NULL, 0, NOW_MS + 10, each, NULL, &st);

    assert_ok(code, st);
    assert_status(each[0], HP_NOT_FOUND, HP_R_NO_MESSAGE);
    assert_int_equal(each[1].code, HP_OK);
}

static void
test_repeated_ack_each_reports_ok_for_what_it_acked(void **state)
{
    fixture *f = *state;
    hp_status st, first[2], again[2];
    store_ack_item items[2];
    claim_one_lost_one_held(f, items);
    assert_ok(ack_each(f, items, 2, NULL, 0, NOW_MS + 2100, first, NULL, &st),
              st);

    hp_code code =
        ack_each(f, items, 2, NULL, 0, NOW_MS + 2200, again, NULL, &st);

    assert_ok(code, st);
    assert_status(again[0], HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
    assert_int_equal(again[1].code, HP_OK);
}

static void
test_ack_each_with_a_result_too_large_acks_nothing(void **state)
{
    fixture *f = *state;
    hp_status st, each[1];
    static uint8_t big[(64 << 10) + 1];
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_ack_item it = ack_item(id, must_claim(f, "emails", NOW_MS, LEASE_MS));
    it.result = big;
    it.result_len = sizeof(big);

    hp_code code = ack_each(f, &it, 1, NULL, 0, NOW_MS + 10, each, NULL, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_RESULT_TOO_LARGE);
    assert_int_equal(must_get(f, id, NOW_MS + 10).state, STORE_STATE_CLAIMED);
}

static void
tweak_small_batch(fixture *f, store_opts *o)
{
    (void)f;
    o->limits.max_batch = SMALL_BATCH;
}

static int
setup_small_batch(void **state)
{
    return fixture_setup_with(state, tweak_small_batch);
}

/* Claims n messages of "emails" into items. */
static void
claim_n(fixture *f, store_ack_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hp_id id = must_enqueue(f, "emails", NOW_MS);
        items[i] = ack_item(id, must_claim(f, "emails", NOW_MS, LEASE_MS));
    }
}

static void
test_ack_each_takes_max_batch_items(void **state)
{
    fixture *f = *state;
    hp_status st, each[SMALL_BATCH];
    store_ack_item items[SMALL_BATCH];
    claim_n(f, items, SMALL_BATCH);

    hp_code code =
        ack_each(f, items, SMALL_BATCH, NULL, 0, NOW_MS + 10, each, NULL, &st);

    assert_ok(code, st);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 10).delivered,
                     SMALL_BATCH);
}

static void
test_ack_each_of_max_batch_plus_one_items_is_refused(void **state)
{
    fixture *f = *state;
    hp_status st, each[SMALL_BATCH + 1];
    store_ack_item items[SMALL_BATCH + 1];
    claim_n(f, items, SMALL_BATCH);
    items[SMALL_BATCH] = items[0];

    hp_code code = ack_each(f, items, SMALL_BATCH + 1, NULL, 0, NOW_MS + 10,
                            each, NULL, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LIMIT);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 10).delivered, 0);
}

/* ---- nack modes ----------------------------------------------------------
 */

static hp_code
nack_mode(fixture *f, hp_id id, store_token tok, store_nack_mode mode,
          uint64_t retry_at, uint64_t now, store_nack_res *res, hp_status *st)
{
    store_nack_req req = nack_req(id, tok, "", retry_at);
    req.mode = mode;
    return nack_in(f, SCOPE, &req, now, NULL, res, st);
}

static void
test_nack_keeping_the_attempt_gives_the_attempt_back(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = nack_mode(f, id, tok, STORE_NACK_KEEP_ATTEMPT, 0,
                             NOW_MS + 10, &res, &st);

    assert_ok(code, st);
    store_message m = must_get(f, id, NOW_MS + 10);
    assert_int_equal(m.attempts, 0);
    assert_int_equal(m.state, STORE_STATE_PENDING);
    assert_int_equal(m.available_at_ms, NOW_MS);
}

static void
test_nack_keeping_the_last_attempt_requeues_instead_of_dead(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    store_draft d = draft("emails");
    d.max_attempts = 1;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = nack_mode(f, id, tok, STORE_NACK_KEEP_ATTEMPT, NOW_MS + 5000,
                             NOW_MS + 10, &res, &st);

    assert_ok(code, st);
    assert_false(res.dead);
    assert_int_equal(res.retry_at_ms, NOW_MS + 5000);
    assert_int_equal(claim_count(f, "emails", NOW_MS + 4999), 0);
    assert_int_equal(claim_count(f, "emails", NOW_MS + 5000), 1);
}

static void
test_nack_keeping_the_attempt_without_text_keeps_the_last_error(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_nack(f, id, tok, NOW_MS + 10, NOW_MS + 5);
    tok = must_claim(f, "emails", NOW_MS + 10, LEASE_MS);

    hp_code code = nack_mode(f, id, tok, STORE_NACK_KEEP_ATTEMPT, 0,
                             NOW_MS + 20, &res, &st);

    assert_ok(code, st);
    store_message m = must_get(f, id, NOW_MS + 20);
    assert_str_equal(m.last_error, "boom");
    assert_int_equal(m.attempts, 1);
}

static void
test_nack_dead_dead_letters_with_attempts_left(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code =
        nack_mode(f, id, tok, STORE_NACK_DEAD, 0, NOW_MS + 10, &res, &st);

    assert_ok(code, st);
    assert_true(res.dead);
    store_lane_stats s = must_stats(f, "emails", NOW_MS + 10);
    assert_int_equal(s.dead, 1);
    assert_int_equal(s.claimed, 0);
    assert_int_equal(must_get(f, id, NOW_MS + 10).attempts, 1);
}

static void
test_repeated_nack_dead_reports_dead_again(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    assert_ok(nack_mode(f, id, tok, STORE_NACK_DEAD, 0, NOW_MS + 10, &res, &st),
              st);

    hp_code code =
        nack_mode(f, id, tok, STORE_NACK_DEAD, 0, NOW_MS + 20, &res, &st);

    assert_ok(code, st);
    assert_true(res.dead);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 20).dead_total, 1);
}

static void
test_nack_with_an_unknown_mode_is_bad_nack(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code =
        nack_mode(f, id, tok, (store_nack_mode)3, 0, NOW_MS + 10, &res, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_NACK);
}

#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_ack_moves_claimed_to_delivered),
        T(test_ack_moves_the_count_to_delivered_and_acked_total),
        T(test_ack_keeps_the_result_with_the_delivered_message),
        T(test_ack_with_stale_token_is_lost_claim),
        T(test_ack_with_stale_token_leaves_the_new_claim_alone),
        T(test_ack_after_own_lease_expired_is_lost_claim),
        T(test_ack_just_before_lease_expiry_succeeds),
        T(test_ack_after_nack_is_lost_claim),
        T(test_ack_with_a_made_up_token_is_lost_claim),
        T(test_repeated_ack_with_the_same_token_is_ok),
        T(test_repeated_ack_changes_nothing),
        T(test_ack_of_an_unknown_id_is_not_found),
        T(test_ack_batch_with_one_stale_token_is_lost_claim),
        T(test_ack_batch_with_one_stale_token_acks_none),
        T(test_ack_batch_with_one_stale_token_creates_no_followups),
        T(test_ack_batch_acks_every_item),
        T(test_ack_with_followups_creates_them_and_returns_their_ids),
        T(test_ack_with_an_invalid_followup_acks_nothing),
        T(test_repeated_ack_does_not_enqueue_followups_again),
        T(test_ack_batch_over_many_lanes_counts_each_lane),
        T(test_nack_with_attempts_left_requeues_the_message),
        T(test_nacked_message_is_delayed_until_retry_at),
        T(test_nack_with_retry_at_is_not_claimable_one_ms_early),
        T(test_nack_with_retry_at_is_claimable_exactly_then),
        T(test_nack_of_the_last_attempt_dead_letters_the_message),
        T(test_nack_of_the_last_attempt_counts_as_dead),
        T(test_dead_lettered_message_is_not_claimable),
        T(test_nack_keeps_the_error_text_as_last_error),
        T(test_nack_with_stale_token_is_lost_claim),
        T(test_nack_of_an_unknown_id_is_not_found),
        T(test_repeated_nack_returns_the_same_outcome),
        T(test_repeated_nack_changes_nothing),
        T(test_repeated_nack_of_a_dead_letter_reports_dead_again),
        T(test_nack_with_followups_enqueues_them),
        T(test_nack_after_own_lease_expired_is_lost_claim),
        T(test_nack_with_stale_token_creates_no_followups),
        T(test_nacked_message_counts_as_delayed_until_retry_at),
        T(test_claim_and_ack_agree_on_the_lease_boundary),
        T(test_default_backoff_is_exponential_with_20_percent_jitter),
        T(test_exponential_backoff_stops_at_the_cap),
        T(test_exponential_backoff_uses_the_factor),
        T(test_linear_backoff_grows_by_the_base),
        T(test_constant_backoff_stays_at_the_base),
        T(test_jittered_backoff_stays_within_bounds_over_many_nacks),
        T(test_extend_returns_the_new_expiry),
        T(test_extended_claim_outlives_the_old_expiry),
        T(test_expire_leases_leaves_an_extended_claim_alone),
        T(test_extend_with_stale_token_is_lost_claim),
        T(test_extend_after_the_lease_expired_is_lost_claim),
        T(test_extend_of_an_unknown_id_is_not_found),
        T(test_ack_each_acks_the_held_items_and_reports_the_lost_one),
        T(test_ack_each_with_a_lost_item_creates_no_followups),
        T(test_ack_each_with_every_item_held_creates_the_followups),
        T(test_ack_each_reports_an_unknown_id_as_not_found),
        T(test_repeated_ack_each_reports_ok_for_what_it_acked),
        T(test_ack_each_with_a_result_too_large_acks_nothing),
        cmocka_unit_test_setup_teardown(test_ack_each_takes_max_batch_items,
                                        setup_small_batch, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_ack_each_of_max_batch_plus_one_items_is_refused,
            setup_small_batch, fixture_teardown),
        T(test_nack_keeping_the_attempt_gives_the_attempt_back),
        T(test_nack_keeping_the_last_attempt_requeues_instead_of_dead),
        T(test_nack_keeping_the_attempt_without_text_keeps_the_last_error),
        T(test_nack_dead_dead_letters_with_attempts_left),
        T(test_repeated_nack_dead_reports_dead_again),
        T(test_nack_with_an_unknown_mode_is_bad_nack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
