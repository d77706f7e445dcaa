/*
 * store_maint_test.c - the maintenance steps (lease expiry, promotion of
 * due messages, retention and dedupe pruning), store_next_due, and the
 * on_ready hook that tells the broker which lanes gained work.
 */
#include <string.h>

#include "store_fixture.h"

static void
set_retention(fixture *f, const char *lane, uint64_t retention_ms)
{
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.retention_ms = retention_ms;
    must_lane_set(f, lane, &ls);
}

static hp_id
enqueue_delayed(fixture *f, const char *lane, uint64_t delay_ms)
{
    store_draft d = draft(lane);
    d.delay_ms = delay_ms;
    return must_enqueue_draft(f, &d, NOW_MS);
}

/* ---- lease expiry ---------------------------------------------------------
 */

static void
test_expire_leases_requeues_a_message_with_attempts_left(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = expire_leases(f, NOW_MS + LEASE_MS + 1, 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.done, 1);
    assert_false(res.more);
    store_message m = must_get(f, id, NOW_MS + LEASE_MS + 1);
    assert_int_equal(m.state, STORE_STATE_PENDING);
    assert_int_equal(m.attempts, 1);
}

static void
test_expire_leases_counts_expired_and_moves_claimed_to_pending(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    (void)must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);

    assert_ok(expire_leases(f, NOW_MS + LEASE_MS + 1, 100, &res, &st), st);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + LEASE_MS + 1);
    assert_int_equal(s.claimed, 0);
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.expired_total, 1);
}

static void
test_expire_leases_dead_letters_the_last_attempt(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    store_draft d = draft("emails");
    d.max_attempts = 1;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = expire_leases(f, NOW_MS + LEASE_MS + 1, 100, &res, &st);

    assert_ok(code, st);
    store_message m = must_get(f, id, NOW_MS + LEASE_MS + 1);
    assert_int_equal(m.state, STORE_STATE_DEAD);
    assert_str_equal(m.last_error, "lease expired");
    assert_int_equal(m.finished_at_ms, NOW_MS + LEASE_MS + 1);
    store_lane_stats s = must_stats(f, "emails", NOW_MS + LEASE_MS + 1);
    assert_int_equal(s.dead, 1);
    assert_int_equal(s.dead_total, 1);
    assert_int_equal(s.expired_total, 1);
}

static void
test_expire_leases_leaves_live_leases_alone(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = expire_leases(f, NOW_MS + LEASE_MS - 1, 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.done, 0);
    assert_false(res.more);
    assert_int_equal(must_get(f, id, NOW_MS).state, STORE_STATE_CLAIMED);
}

static void
test_expire_leases_is_bounded_by_limit_and_reports_more(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res first, second;
    for (int i = 0; i < 3; i++) {
        (void)must_enqueue(f, "emails", NOW_MS);
        (void)must_claim(f, "emails", NOW_MS, LEASE_MS);
    }

    assert_ok(expire_leases(f, NOW_MS + 5000, 2, &first, &st), st);
    assert_ok(expire_leases(f, NOW_MS + 5000, 2, &second, &st), st);

    assert_int_equal(first.done, 2);
    assert_true(first.more);
    assert_int_equal(second.done, 1);
    assert_false(second.more);
}

static void
test_expire_leases_ignores_a_claim_that_was_nacked(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_nack(f, id, tok, NOW_MS + 60000, NOW_MS + 10);

    hp_code code = expire_leases(f, NOW_MS + LEASE_MS + 1, 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.done, 0);
    store_lane_stats s = must_stats(f, "emails", NOW_MS + LEASE_MS + 1);
    assert_int_equal(s.expired_total, 0);
    assert_int_equal(s.delayed, 1);
}

static void
test_expire_leases_ignores_a_claim_that_was_acked(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    must_ack(f, id, must_claim(f, "emails", NOW_MS, LEASE_MS), NOW_MS + 10);

    hp_code code = expire_leases(f, NOW_MS + LEASE_MS + 1, 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.done, 0);
    assert_int_equal(must_get(f, id, NOW_MS + LEASE_MS + 1).state,
                     STORE_STATE_DELIVERED);
}

static void
test_expire_leases_and_ack_agree_on_the_lease_boundary(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    const uint64_t edge = NOW_MS + LEASE_MS;

    assert_ok(expire_leases(f, edge, 100, &res, &st), st);
    hp_code code = ack(f, id, tok, edge, &st);

    if (res.done == 1) {
        assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
    } else {
        assert_int_equal(res.done, 0);
        assert_ok(code, st);
    }
}

static void
test_expire_leases_over_many_lanes_counts_each_lane(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    static const char *const names[6] = { "l0", "l1", "l2", "l3", "l4", "l5" };
    for (size_t i = 0; i < 6; i++) {
        (void)must_enqueue(f, names[i], NOW_MS);
        (void)must_claim(f, names[i], NOW_MS, LEASE_MS);
    }

    hp_code code = expire_leases(f, NOW_MS + LEASE_MS + 1, 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.done, 6);
    for (size_t i = 0; i < 6; i++) {
        store_lane_stats s = must_stats(f, names[i], NOW_MS + LEASE_MS + 1);
        assert_int_equal(s.claimed, 0);
        assert_int_equal(s.pending, 1);
        assert_int_equal(s.expired_total, 1);
    }
}

/* ---- promotion ------------------------------------------------------------
 */

static void
test_promote_due_moves_the_delayed_count_to_pending(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    (void)enqueue_delayed(f, "emails", 5000);
    store_lane_stats before = must_stats(f, "emails", NOW_MS);
    assert_int_equal(before.delayed, 1);
    assert_int_equal(before.pending, 0);

    hp_code code = promote_due(f, NOW_MS + 5000, 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.done, 1);
    store_lane_stats after = must_stats(f, "emails", NOW_MS + 5000);
    assert_int_equal(after.delayed, 0);
    assert_int_equal(after.pending, 1);
}

static void
test_promote_due_leaves_messages_that_are_not_due(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    (void)enqueue_delayed(f, "emails", 5000);

    hp_code code = promote_due(f, NOW_MS + 4999, 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.done, 0);
    assert_false(res.more);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 4999).delayed, 1);
}

static void
test_promote_due_is_bounded_by_limit_and_reports_more(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res first, second;
    for (int i = 0; i < 3; i++) {
        (void)enqueue_delayed(f, "emails", 5000);
    }

    assert_ok(promote_due(f, NOW_MS + 5000, 2, &first, &st), st);
    assert_ok(promote_due(f, NOW_MS + 5000, 2, &second, &st), st);

    assert_int_equal(first.done, 2);
    assert_true(first.more);
    assert_int_equal(second.done, 1);
    assert_false(second.more);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 5000).pending, 3);
}

static void
test_promoted_message_is_claimable(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    hp_id id = enqueue_delayed(f, "emails", 5000);
    assert_ok(promote_due(f, NOW_MS + 5000, 100, &res, &st), st);

    store_message c = must_claim_msg(f, "emails", NOW_MS + 5000, LEASE_MS);

    assert_id_equal(c.id, id);
}

static void
test_claiming_a_due_message_before_promotion_keeps_counts_right(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    (void)enqueue_delayed(f, "emails", 5000);
    (void)must_claim(f, "emails", NOW_MS + 5000, LEASE_MS);

    assert_ok(promote_due(f, NOW_MS + 5000, 100, &res, &st), st);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + 5000);
    assert_int_equal(s.claimed, 1);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.delayed, 0);
}

static void
test_acking_a_message_claimed_before_promotion_keeps_counts_right(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    hp_id id = enqueue_delayed(f, "emails", 5000);
    must_ack(f, id, must_claim(f, "emails", NOW_MS + 5000, LEASE_MS),
             NOW_MS + 5001);

    assert_ok(promote_due(f, NOW_MS + 6000, 100, &res, &st), st);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + 6000);
    assert_int_equal(s.delivered, 1);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.delayed, 0);
    assert_int_equal(s.claimed, 0);
}

/* ---- retention ------------------------------------------------------------
 */

static void
test_delivered_message_is_pruned_after_retention(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    store_message m;
    set_retention(f, "emails", 5000);
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    must_ack(f, id, must_claim(f, "emails", NOW_MS, LEASE_MS), NOW_MS + 10);

    hp_code code = prune_delivered(f, NOW_MS + 10 + 5001, 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.done, 1);
    assert_int_equal(get(f, id, NOW_MS + 10 + 5001, &m, &st), HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 10 + 5001).delivered, 0);
}

static void
test_delivered_message_is_kept_within_retention(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    set_retention(f, "emails", 5000);
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    must_ack(f, id, must_claim(f, "emails", NOW_MS, LEASE_MS), NOW_MS + 10);

    hp_code code = prune_delivered(f, NOW_MS + 10 + 4999, 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.done, 0);
    assert_int_equal(must_get(f, id, NOW_MS + 10 + 4999).state,
                     STORE_STATE_DELIVERED);
}

static void
test_prune_delivered_is_bounded_by_limit_and_reports_more(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res first, second;
    set_retention(f, "emails", 5000);
    for (int i = 0; i < 3; i++) {
        hp_id id = must_enqueue(f, "emails", NOW_MS);
        must_ack(f, id, must_claim(f, "emails", NOW_MS, LEASE_MS), NOW_MS);
    }

    assert_ok(prune_delivered(f, NOW_MS + HOUR_MS, 2, &first, &st), st);
    assert_ok(prune_delivered(f, NOW_MS + HOUR_MS, 2, &second, &st), st);

    assert_int_equal(first.done, 2);
    assert_true(first.more);
    assert_int_equal(second.done, 1);
    assert_false(second.more);
}

static void
test_ack_after_the_message_was_pruned_is_not_found(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    set_retention(f, "emails", 5000);
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    must_ack(f, id, tok, NOW_MS);
    assert_ok(prune_delivered(f, NOW_MS + HOUR_MS, 100, &res, &st), st);

    hp_code code = ack(f, id, tok, NOW_MS + HOUR_MS, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
}

static void
test_prune_dedupe_is_bounded_by_limit_and_reports_more(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res first, second;
    const char *keys[3] = { "k1", "k2", "k3" };
    for (int i = 0; i < 3; i++) {
        store_draft d = draft("emails");
        d.dedupe_key = hp_str_c(keys[i]);
        (void)must_enqueue_draft(f, &d, NOW_MS);
    }

    assert_ok(prune_dedupe(f, NOW_MS + DAY_MS + 1, 2, &first, &st), st);
    assert_ok(prune_dedupe(f, NOW_MS + DAY_MS + 1, 2, &second, &st), st);

    assert_int_equal(first.done, 2);
    assert_true(first.more);
    assert_int_equal(second.done, 1);
    assert_false(second.more);
}

/* ---- next due ---------------------------------------------------------------
 */

static uint64_t
must_next_due(fixture *f)
{
    hp_status st;
    uint64_t at;
    hp_code code = next_due(f, &at, &st);
    assert_ok(code, st);
    return at;
}

static void
test_next_due_of_an_empty_store_is_uint64_max(void **state)
{
    fixture *f = *state;

    uint64_t at = must_next_due(f);

    assert_int_equal(at, UINT64_MAX);
}

static void
test_next_due_ignores_pending_messages_that_are_due(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "emails", NOW_MS);

    uint64_t at = must_next_due(f);

    assert_int_equal(at, UINT64_MAX);
}

static void
test_next_due_is_the_time_of_a_delayed_message(void **state)
{
    fixture *f = *state;
    (void)enqueue_delayed(f, "emails", 5000);

    uint64_t at = must_next_due(f);

    assert_int_equal(at, NOW_MS + 5000);
}

static void
test_next_due_is_a_lease_expiry(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS + 10, 2500);

    uint64_t at = must_next_due(f);

    assert_int_equal(at, NOW_MS + 10 + 2500);
}

static void
test_next_due_is_a_retention_expiry(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    must_ack(f, id, must_claim(f, "emails", NOW_MS, LEASE_MS), NOW_MS + 10);

    uint64_t at = must_next_due(f);

    assert_int_equal(at, NOW_MS + 10 + HOUR_MS);
}

static void
test_next_due_is_a_dedupe_window_end(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.dedupe_key = HP_S("order-1");
    (void)must_enqueue_draft(f, &d, NOW_MS);

    uint64_t at = must_next_due(f);

    assert_int_equal(at, NOW_MS + DAY_MS);
}

static void
test_next_due_is_the_earliest_of_all(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.dedupe_key = HP_S("order-1"); /* window ends at NOW + 1 day */
    (void)must_enqueue_draft(f, &d, NOW_MS);
    (void)must_claim(f, "emails", NOW_MS + 1000, 3000); /* lease: NOW+4000 */
    (void)enqueue_delayed(f, "emails", 6000);           /* due: NOW+6000 */

    uint64_t at = must_next_due(f);

    assert_int_equal(at, NOW_MS + 4000);
}

static void
test_next_due_moves_on_after_promotion(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    (void)enqueue_delayed(f, "emails", 5000);
    (void)enqueue_delayed(f, "emails", 8000);
    assert_ok(promote_due(f, NOW_MS + 5000, 100, &res, &st), st);

    uint64_t at = must_next_due(f);

    assert_int_equal(at, NOW_MS + 8000);
}

/* ---- on_ready ---------------------------------------------------------------
 */

static void
assert_ready_call(const fixture *f, size_t i, const char *scope,
                  const char *lane)
{
    assert_true(i < f->n_ready);
    assert_string_equal(f->ready[i].scope, scope);
    assert_string_equal(f->ready[i].lane, lane);
}

static void
test_on_ready_fires_after_an_enqueue_commit(void **state)
{
    fixture *f = *state;

    (void)must_enqueue(f, "emails", NOW_MS);

    assert_int_equal(f->n_ready, 1);
    assert_ready_call(f, 0, "default", "emails");
}

static void
test_on_ready_fires_once_per_lane_per_commit(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d[4] = { draft("emails"), draft("sms"), draft("emails"),
                         draft("emails") };
    store_enqueued out[4];

    assert_ok(enqueue(f, d, 4, NOW_MS, out, &st), st);

    assert_int_equal(f->n_ready, 2);
    bool emails = false, sms = false;
    for (size_t i = 0; i < f->n_ready; i++) {
        emails = emails || strcmp(f->ready[i].lane, "emails") == 0;
        sms = sms || strcmp(f->ready[i].lane, "sms") == 0;
    }
    assert_true(emails);
    assert_true(sms);
}

static hp_code
enqueue_then_fail(store_txn *t, void *arg, hp_status *st)
{
    (void)arg;
    store_draft d = draft("emails");
    store_enqueued out;
    hp_code code = store_enqueue(t, SCOPE, &d, 1, NOW_MS, &out, st);
    if (code != HP_OK) {
        return code;
    }
    return hp_status_set(st, HP_ABORTED, HP_R_BUSY, "the test gives up");
}

static void
test_on_ready_does_not_fire_when_store_run_aborts(void **state)
{
    fixture *f = *state;
    hp_status st;

    hp_code code = store_run(f->s, true, enqueue_then_fail, NULL, &st);

    assert_int_equal(code, HP_ABORTED);
    assert_int_equal(f->n_ready, 0);
    store_lane_stats s;
    assert_int_equal(stats(f, "emails", NOW_MS, &s, &st), HP_NOT_FOUND);
}

static void
test_on_ready_does_not_fire_when_the_transaction_is_aborted(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_txn *t = NULL;
    store_draft d = draft("emails");
    store_enqueued out;
    assert_ok(store_txn_begin(f->s, true, &t, &st), st);
    assert_ok(store_enqueue(t, SCOPE, &d, 1, NOW_MS, &out, &st), st);

    store_txn_abort(t);

    assert_int_equal(f->n_ready, 0);
}

static void
test_on_ready_waits_for_the_commit(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_txn *t = NULL;
    store_draft d = draft("emails");
    store_enqueued out;
    assert_ok(store_txn_begin(f->s, true, &t, &st), st);
    assert_ok(store_enqueue(t, SCOPE, &d, 1, NOW_MS, &out, &st), st);
    assert_int_equal(f->n_ready, 0);

    hp_code code = store_txn_commit(t, &st);

    assert_ok(code, st);
    assert_int_equal(f->n_ready, 1);
    assert_ready_call(f, 0, "default", "emails");
}

static void
test_on_ready_does_not_fire_for_a_delayed_enqueue(void **state)
{
    fixture *f = *state;

    (void)enqueue_delayed(f, "emails", 5000);

    assert_int_equal(f->n_ready, 0);
}

static void
test_on_ready_does_not_fire_for_a_dedupe_hit(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d = draft("emails");
    d.dedupe_key = HP_S("order-1");
    store_enqueued out;
    assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);
    f->n_ready = 0;

    assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);

    assert_true(out.duplicate);
    assert_int_equal(f->n_ready, 0);
}

static void
test_on_ready_fires_when_promote_due_makes_a_message_due(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    (void)enqueue_delayed(f, "emails", 5000);
    f->n_ready = 0;

    assert_ok(promote_due(f, NOW_MS + 5000, 100, &res, &st), st);

    assert_int_equal(f->n_ready, 1);
    assert_ready_call(f, 0, "default", "emails");
}

static void
test_on_ready_fires_when_an_expired_lease_requeues_a_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_step_res res;
    (void)must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);
    f->n_ready = 0;

    assert_ok(expire_leases(f, NOW_MS + LEASE_MS + 1, 100, &res, &st), st);

    assert_int_equal(f->n_ready, 1);
    assert_ready_call(f, 0, "default", "emails");
}

static void
test_on_ready_fires_after_a_replay(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id id = must_make_dead(f, "emails", NOW_MS);
    store_dead_sel sel = { HP_S("emails"), &id, 1, 0 };
    f->n_ready = 0;

    assert_ok(dead_replay_in(f, SCOPE, &sel, NOW_MS + 1, &res, &st), st);

    assert_int_equal(f->n_ready, 1);
    assert_ready_call(f, 0, "default", "emails");
}

static void
test_on_ready_fires_when_a_paused_lane_resumes(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.paused = true;
    must_lane_set(f, "emails", &ls);
    (void)must_enqueue(f, "emails", NOW_MS);
    f->n_ready = 0;
    ls.paused = false;

    must_lane_set(f, "emails", &ls);

    assert_int_equal(f->n_ready, 1);
    assert_ready_call(f, 0, "default", "emails");
}

static void
test_on_ready_names_the_scope(void **state)
{
    fixture *f = *state;

    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);

    assert_int_equal(f->n_ready, 1);
    assert_ready_call(f, 0, "acme", "emails");
}

typedef struct reader_hook {
    fixture *f;
    size_t calls;
    uint64_t pending_seen;
} reader_hook;

/* Reads the lane from inside the hook: the commit must be visible and no
 * transaction of the committer may be in the way. */
static void
read_in_hook(void *arg, hp_str scope, hp_str lane)
{
    reader_hook *h = arg;
    hp_status st;
    store_lane_stats s;
    char name[HP_NAME_MAX + 1];
    memcpy(name, lane.p, lane.len);
    name[lane.len] = '\0';
    h->calls++;
    if (stats_in(h->f, scope, name, NOW_MS, &s, &st) == HP_OK) {
        h->pending_seen = s.pending;
    }
}

static void
test_on_ready_hook_sees_the_committed_message(void **state)
{
    fixture *f = *state;
    reader_hook h = { f, 0, 0 };
    f->opts.on_ready = read_in_hook;
    f->opts.on_ready_arg = &h;
    fixture_reopen(f);

    (void)must_enqueue(f, "emails", NOW_MS);

    assert_int_equal(h.calls, 1);
    assert_int_equal(h.pending_seen, 1);
}

#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
#define T_READY(fn)                                             \
    cmocka_unit_test_setup_teardown(fn, fixture_setup_on_ready, \
                                    fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_expire_leases_requeues_a_message_with_attempts_left),
        T(test_expire_leases_counts_expired_and_moves_claimed_to_pending),
        T(test_expire_leases_dead_letters_the_last_attempt),
        T(test_expire_leases_leaves_live_leases_alone),
        T(test_expire_leases_is_bounded_by_limit_and_reports_more),
        T(test_expire_leases_ignores_a_claim_that_was_nacked),
        T(test_expire_leases_ignores_a_claim_that_was_acked),
        T(test_expire_leases_and_ack_agree_on_the_lease_boundary),
        T(test_expire_leases_over_many_lanes_counts_each_lane),
        T(test_promote_due_moves_the_delayed_count_to_pending),
        T(test_promote_due_leaves_messages_that_are_not_due),
        T(test_promote_due_is_bounded_by_limit_and_reports_more),
        T(test_promoted_message_is_claimable),
        T(test_claiming_a_due_message_before_promotion_keeps_counts_right),
        T(test_acking_a_message_claimed_before_promotion_keeps_counts_right),
        T(test_delivered_message_is_pruned_after_retention),
        T(test_delivered_message_is_kept_within_retention),
        T(test_prune_delivered_is_bounded_by_limit_and_reports_more),
        T(test_ack_after_the_message_was_pruned_is_not_found),
        T(test_prune_dedupe_is_bounded_by_limit_and_reports_more),
        T(test_next_due_of_an_empty_store_is_uint64_max),
        T(test_next_due_ignores_pending_messages_that_are_due),
        T(test_next_due_is_the_time_of_a_delayed_message),
        T(test_next_due_is_a_lease_expiry),
        T(test_next_due_is_a_retention_expiry),
        T(test_next_due_is_a_dedupe_window_end),
        T(test_next_due_is_the_earliest_of_all),
        T(test_next_due_moves_on_after_promotion),
        T_READY(test_on_ready_fires_after_an_enqueue_commit),
        T_READY(test_on_ready_fires_once_per_lane_per_commit),
        T_READY(test_on_ready_does_not_fire_when_store_run_aborts),
        T_READY(test_on_ready_does_not_fire_when_the_transaction_is_aborted),
        T_READY(test_on_ready_waits_for_the_commit),
        T_READY(test_on_ready_does_not_fire_for_a_delayed_enqueue),
        T_READY(test_on_ready_does_not_fire_for_a_dedupe_hit),
        T_READY(test_on_ready_fires_when_promote_due_makes_a_message_due),
        T_READY(test_on_ready_fires_when_an_expired_lease_requeues_a_message),
        T_READY(test_on_ready_fires_after_a_replay),
        T_READY(test_on_ready_fires_when_a_paused_lane_resumes),
        T_READY(test_on_ready_names_the_scope),
        T(test_on_ready_hook_sees_the_committed_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
