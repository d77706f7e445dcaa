/*
 * store_query_test.c - reading without changing: get, list with cursor
 * paging, lane stats and the lane listing, and lane settings.
 */
#include <string.h>

#include "store_fixture.h"

#define MAX_IDS 64

static store_list_req
list_req(const char *lane, store_state state, uint32_t limit)
{
    store_list_req r;
    memset(&r, 0, sizeof(r));
    r.lane = hp_str_c(lane);
    r.state = state;
    r.limit = limit;
    return r;
}

/* Lists every page of req; returns the number of ids collected into ids
 * and the number of pages into *pages. */
static size_t
list_all(fixture *f, store_list_req req, uint64_t now, hp_id *ids,
         size_t *pages)
{
    hp_status st;
    store_list_res res;
    size_t n = 0;

    *pages = 0;
    for (;;) {
        hp_code code = list_in(f, SCOPE, &req, now, &res, &st);
        assert_ok(code, st);
        assert_true(res.n <= req.limit);
        (*pages)++;
        assert_true(*pages <= 20); /* the cursor must make progress */
        for (size_t i = 0; i < res.n; i++) {
            assert_true(n < MAX_IDS);
            ids[n++] = res.msgs[i].id;
        }
        if (res.next_cursor == NULL || res.next_cursor_len == 0) {
            return n;
        }
        req.cursor = res.next_cursor;
        req.cursor_len = res.next_cursor_len;
    }
}

static void
assert_ids(const hp_id *got, size_t n_got, const hp_id *want, size_t n)
{
    assert_int_equal(n_got, n);
    for (size_t i = 0; i < n; i++) {
        if (hp_id_cmp(&got[i], &want[i]) != 0) {
            print_error("listed ids differ at position %zu\n", i);
        }
        assert_id_equal(got[i], want[i]);
    }
}

/* ---- get ------------------------------------------------------------------
 */

static void
test_get_of_an_unknown_id_is_no_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_message m;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    id.b[15] ^= 0x01;

    hp_code code = get(f, id, NOW_MS, &m, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
}

static void
test_get_of_a_dead_letter_shows_error_and_finish_time(void **state)
{
    fixture *f = *state;

    hp_id id = must_make_dead(f, "emails", NOW_MS);

    store_message m = must_get(f, id, NOW_MS);
    assert_int_equal(m.state, STORE_STATE_DEAD);
    assert_int_equal(m.finished_at_ms, NOW_MS);
    assert_str_equal(m.last_error, "boom");
    assert_int_equal(m.attempts, 1);
}

/* ---- list ------------------------------------------------------------------
 */

static void
test_list_pages_through_pending_messages_without_gaps(void **state)
{
    fixture *f = *state;
    hp_id want[5], got[MAX_IDS];
    size_t pages;
    for (size_t i = 0; i < 5; i++) {
        want[i] = must_enqueue(f, "emails", NOW_MS);
    }

    size_t n = list_all(f, list_req("emails", STORE_STATE_PENDING, 2), NOW_MS,
                        got, &pages);

    assert_int_equal(pages, 3);
    assert_ids(got, n, want, 5);
}

static void
test_list_pages_through_delivered_messages_without_gaps(void **state)
{
    fixture *f = *state;
    hp_id want[5], got[MAX_IDS];
    size_t pages;
    for (size_t i = 0; i < 5; i++) {
        want[i] = must_enqueue(f, "emails", NOW_MS);
        store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
        must_ack(f, want[i], tok, NOW_MS);
    }

    size_t n = list_all(f, list_req("emails", STORE_STATE_DELIVERED, 2), NOW_MS,
                        got, &pages);

    assert_int_equal(pages, 3);
    assert_ids(got, n, want, 5);
}

static void
test_list_of_any_state_pages_through_every_message(void **state)
{
    fixture *f = *state;
    hp_id want[5], got[MAX_IDS];
    size_t pages;
    want[0] = must_make_dead(f, "emails", NOW_MS);
    want[1] = must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);
    for (size_t i = 2; i < 5; i++) {
        want[i] = must_enqueue(f, "emails", NOW_MS);
    }

    size_t n = list_all(f, list_req("emails", STORE_STATE_ANY, 2), NOW_MS, got,
                        &pages);

    assert_int_equal(pages, 3);
    assert_ids(got, n, want, 5);
}

static void
test_list_pending_walks_in_claim_order(void **state)
{
    fixture *f = *state;
    hp_id got[MAX_IDS];
    size_t pages;
    store_draft low = draft("emails");
    low.priority = 7;
    hp_id b = must_enqueue_draft(f, &low, NOW_MS);
    hp_id a = must_enqueue(f, "emails", NOW_MS);
    const hp_id want[2] = { a, b };

    size_t n = list_all(f, list_req("emails", STORE_STATE_PENDING, 10), NOW_MS,
                        got, &pages);

    assert_ids(got, n, want, 2);
}

static void
test_list_pending_walks_target_by_target_in_claim_order(void **state)
{
    fixture *f = *state;
    hp_id got[MAX_IDS];
    size_t pages;
    store_draft d = draft("emails");
    d.priority = 5;
    hp_id none5 = must_enqueue_draft(f, &d, NOW_MS); /* target "" */
    d.target = HP_S("b");
    d.priority = 0;
    hp_id b0 = must_enqueue_draft(f, &d, NOW_MS);
    d.target = HP_S("a");
    d.priority = 2;
    hp_id a2 = must_enqueue_draft(f, &d, NOW_MS);
    /* Targets by length then bytes ("" first), claim order within each. */
    const hp_id want[3] = { none5, a2, b0 };

    size_t n = list_all(f, list_req("emails", STORE_STATE_PENDING, 10), NOW_MS,
                        got, &pages);

    assert_ids(got, n, want, 3);
}

static void
test_list_pending_leaves_out_delayed_and_claimed(void **state)
{
    fixture *f = *state;
    hp_id got[MAX_IDS];
    size_t pages;
    (void)must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_draft later = draft("emails");
    later.delay_ms = 5000;
    (void)must_enqueue_draft(f, &later, NOW_MS);
    hp_id pending = must_enqueue(f, "emails", NOW_MS);

    size_t n = list_all(f, list_req("emails", STORE_STATE_PENDING, 10), NOW_MS,
                        got, &pages);

    assert_ids(got, n, &pending, 1);
}

static void
test_list_delayed_shows_only_delayed(void **state)
{
    fixture *f = *state;
    hp_id got[MAX_IDS];
    size_t pages;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_draft later = draft("emails");
    later.delay_ms = 5000;
    hp_id delayed = must_enqueue_draft(f, &later, NOW_MS);

    size_t n = list_all(f, list_req("emails", STORE_STATE_DELAYED, 10), NOW_MS,
                        got, &pages);

    assert_ids(got, n, &delayed, 1);
}

static void
test_list_claimed_shows_only_claimed(void **state)
{
    fixture *f = *state;
    hp_id got[MAX_IDS];
    size_t pages;
    hp_id claimed = must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_enqueue(f, "emails", NOW_MS);

    size_t n = list_all(f, list_req("emails", STORE_STATE_CLAIMED, 10), NOW_MS,
                        got, &pages);

    assert_ids(got, n, &claimed, 1);
}

static void
test_list_dead_shows_only_dead(void **state)
{
    fixture *f = *state;
    hp_id got[MAX_IDS];
    size_t pages;
    hp_id dead = must_make_dead(f, "emails", NOW_MS);
    (void)must_enqueue(f, "emails", NOW_MS);

    size_t n = list_all(f, list_req("emails", STORE_STATE_DEAD, 10), NOW_MS,
                        got, &pages);

    assert_ids(got, n, &dead, 1);
}

static void
test_list_shows_only_the_requested_lane(void **state)
{
    fixture *f = *state;
    hp_id got[MAX_IDS];
    size_t pages;
    (void)must_enqueue(f, "sms", NOW_MS);
    hp_id mine = must_enqueue(f, "emails", NOW_MS);
    (void)must_enqueue(f, "sms", NOW_MS);

    size_t n = list_all(f, list_req("emails", STORE_STATE_ANY, 10), NOW_MS, got,
                        &pages);

    assert_ids(got, n, &mine, 1);
}

static void
test_list_of_an_empty_state_returns_nothing_and_no_cursor(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_list_req req = list_req("emails", STORE_STATE_DEAD, 10);

    hp_code code = list_in(f, SCOPE, &req, NOW_MS, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.n, 0);
    assert_int_equal(res.next_cursor_len, 0);
}

static void
test_list_with_payload_returns_payload_and_headers(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    store_header h = { HP_S("k"), HP_S("v") };
    store_draft d = draft("emails");
    d.headers = &h;
    d.n_headers = 1;
    (void)must_enqueue_draft(f, &d, NOW_MS);
    store_list_req req = list_req("emails", STORE_STATE_PENDING, 10);
    req.with_payload = true;

    hp_code code = list_in(f, SCOPE, &req, NOW_MS, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.n, 1);
    assert_int_equal(res.msgs[0].payload_len, 5);
    assert_memory_equal(res.msgs[0].payload, "hello", 5);
    assert_int_equal(res.msgs[0].n_headers, 1);
}

static void
test_list_without_payload_leaves_the_payload_out(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_list_req req = list_req("emails", STORE_STATE_PENDING, 10);

    hp_code code = list_in(f, SCOPE, &req, NOW_MS, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.n, 1);
    assert_int_equal(res.msgs[0].payload_len, 0);
    assert_str_equal(res.msgs[0].lane, "emails");
}

static void
test_list_of_an_unknown_state_is_bad_state(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_list_req req = list_req("emails", (store_state)9, 10);

    hp_code code = list_in(f, SCOPE, &req, NOW_MS, &res, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_STATE);
}

static void
test_list_with_a_bad_cursor_is_bad_cursor(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_list_req req = list_req("emails", STORE_STATE_PENDING, 2);
    req.cursor = "garbage";
    req.cursor_len = 7;

    hp_code code = list_in(f, SCOPE, &req, NOW_MS, &res, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_CURSOR);
}

static void
test_list_with_a_cursor_of_another_lane_is_bad_cursor(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    for (int i = 0; i < 3; i++) {
        (void)must_enqueue(f, "emails", NOW_MS);
        (void)must_enqueue(f, "sms", NOW_MS);
    }
    store_list_req req = list_req("emails", STORE_STATE_PENDING, 2);
    assert_ok(list_in(f, SCOPE, &req, NOW_MS, &res, &st), st);
    assert_true(res.next_cursor_len > 0);
    store_list_req other = list_req("sms", STORE_STATE_PENDING, 2);
    other.cursor = res.next_cursor;
    other.cursor_len = res.next_cursor_len;

    hp_code code = list_in(f, SCOPE, &other, NOW_MS, &res, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_CURSOR);
}

/* ---- stats ------------------------------------------------------------------
 */

static void
test_stats_count_each_state(void **state)
{
    fixture *f = *state;
    (void)must_make_dead(f, "emails", NOW_MS);
    hp_id d = must_enqueue(f, "emails", NOW_MS);
    must_ack(f, d, must_claim(f, "emails", NOW_MS, LEASE_MS), NOW_MS);
    (void)must_enqueue(f, "emails", NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_enqueue(f, "emails", NOW_MS);
    store_draft later = draft("emails");
    later.delay_ms = 10000;
    (void)must_enqueue_draft(f, &later, NOW_MS);

    store_lane_stats s = must_stats(f, "emails", NOW_MS);

    assert_str_equal(s.lane, "emails");
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.delayed, 1);
    assert_int_equal(s.claimed, 1);
    assert_int_equal(s.delivered, 1);
    assert_int_equal(s.dead, 1);
}

static void
test_stats_count_totals(void **state)
{
    fixture *f = *state;
    hp_id a = must_enqueue(f, "emails", NOW_MS);
    hp_id b = must_enqueue(f, "emails", NOW_MS);
    (void)must_enqueue(f, "emails", NOW_MS);
    store_token ta = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_token tb = must_claim(f, "emails", NOW_MS, LEASE_MS);
    must_ack(f, a, ta, NOW_MS);
    (void)must_nack(f, b, tb, NOW_MS + 5000, NOW_MS);

    store_lane_stats s = must_stats(f, "emails", NOW_MS);

    assert_int_equal(s.enqueued_total, 3);
    assert_int_equal(s.claimed_total, 2);
    assert_int_equal(s.acked_total, 1);
    assert_int_equal(s.nacked_total, 1);
    assert_int_equal(s.dead_total, 0);
    assert_int_equal(s.expired_total, 0);
    assert_int_equal(s.replayed_total, 0);
    assert_int_equal(s.purged_total, 0);
    assert_int_equal(s.dedupe_hits_total, 0);
}

static void
test_stats_report_the_oldest_pending_age(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "emails", NOW_MS);
    (void)must_enqueue(f, "emails", NOW_MS + 100);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + 1234);

    assert_int_equal(s.oldest_pending_age_ms, 1234);
}

static void
test_stats_oldest_pending_age_is_zero_when_nothing_is_due(void **state)
{
    fixture *f = *state;
    store_draft later = draft("emails");
    later.delay_ms = 10000;
    (void)must_enqueue_draft(f, &later, NOW_MS);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + 500);

    assert_int_equal(s.oldest_pending_age_ms, 0);
}

static void
test_stats_oldest_pending_age_ignores_claimed_messages(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "emails", NOW_MS);
    (void)must_enqueue(f, "emails", NOW_MS + 300);
    (void)must_claim(f, "emails", NOW_MS + 300, LEASE_MS);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + 500);

    assert_int_equal(s.oldest_pending_age_ms, 200);
}

static void
test_stats_list_targets_by_length_then_bytes(void **state)
{
    fixture *f = *state;
    const char *targets[] = { "bb", "c", "", "a", "c" };
    for (size_t i = 0; i < HP_ARRAY_LEN(targets); i++) {
        store_draft d = draft("emails");
        d.target = hp_str_c(targets[i]);
        (void)must_enqueue_draft(f, &d, NOW_MS);
    }

    store_lane_stats s = must_stats(f, "emails", NOW_MS);

    assert_int_equal(s.n_targets, 4);
    assert_str_equal(s.targets[0], "");
    assert_str_equal(s.targets[1], "a");
    assert_str_equal(s.targets[2], "c");
    assert_str_equal(s.targets[3], "bb");
}

static void
test_stats_targets_leave_out_targets_without_ready_messages(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.target = HP_S("a");
    (void)must_enqueue_draft(f, &d, NOW_MS);
    d.target = HP_S("b");
    d.priority = 5;
    (void)must_enqueue_draft(f, &d, NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS); /* takes "a" */

    store_lane_stats s = must_stats(f, "emails", NOW_MS);

    assert_int_equal(s.n_targets, 1);
    assert_str_equal(s.targets[0], "b");
}

static void
test_stats_carry_the_lane_settings(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.max_attempts = 9;
    must_lane_set(f, "emails", &ls);

    store_lane_stats s = must_stats(f, "emails", NOW_MS);

    assert_int_equal(s.settings.max_attempts, 9);
}

static void
test_stats_of_an_unknown_lane_is_no_lane(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_stats s;
    (void)must_enqueue(f, "emails", NOW_MS);

    hp_code code = stats(f, "nothing", NOW_MS, &s, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_LANE);
}

/* ---- the lane listing
 * -------------------------------------------------------- */

static void
test_list_lanes_pages_by_name(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lanes_res p1, p2;
    (void)must_enqueue(f, "c", NOW_MS);
    (void)must_enqueue(f, "a", NOW_MS);
    (void)must_enqueue(f, "b", NOW_MS);
    (void)must_enqueue(f, "b", NOW_MS);

    assert_ok(list_lanes_in(f, SCOPE, NULL, 0, 2, NOW_MS, &p1, &st), st);
    assert_true(p1.next_cursor_len > 0);
    hp_code code = list_lanes_in(f, SCOPE, p1.next_cursor, p1.next_cursor_len,
                                 2, NOW_MS, &p2, &st);

    assert_ok(code, st);
    assert_int_equal(p1.n, 2);
    assert_str_equal(p1.lanes[0].lane, "a");
    assert_str_equal(p1.lanes[1].lane, "b");
    assert_int_equal(p1.lanes[1].pending, 2);
    assert_int_equal(p2.n, 1);
    assert_str_equal(p2.lanes[0].lane, "c");
    assert_int_equal(p2.next_cursor_len, 0);
}

static void
test_list_lanes_of_an_empty_scope_returns_nothing(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lanes_res res;
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);

    hp_code code = list_lanes_in(f, SCOPE_B, NULL, 0, 10, NOW_MS, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.n, 0);
    assert_int_equal(res.next_cursor_len, 0);
}

static void
test_list_lanes_with_a_bad_cursor_is_bad_cursor(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lanes_res res;
    (void)must_enqueue(f, "emails", NOW_MS);
    const uint8_t bad[3] = { 0xff, 0x00, 0x01 };

    hp_code code =
        list_lanes_in(f, SCOPE, bad, sizeof(bad), 10, NOW_MS, &res, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_CURSOR);
}

/* ---- lane settings --------------------------------------------------------
 */

static void
test_lane_settings_round_trip(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings ls = {
        .max_attempts = 11,
        .backoff = STORE_BACKOFF_LINEAR,
        .backoff_base_ms = 2500,
        .backoff_cap_ms = 600000,
        .backoff_factor_pct = 150,
        .jitter_pct = 5,
        .retention_ms = 120000,
        .dedupe_window_ms = 7200000,
        .paused = true,
    };
    store_lane_settings got;
    must_lane_set(f, "emails", &ls);

    hp_code code = lane_get_in(f, SCOPE, "emails", &got, &st);

    assert_ok(code, st);
    assert_int_equal(got.max_attempts, 11);
    assert_int_equal(got.backoff, STORE_BACKOFF_LINEAR);
    assert_int_equal(got.backoff_base_ms, 2500);
    assert_int_equal(got.backoff_cap_ms, 600000);
    assert_int_equal(got.backoff_factor_pct, 150);
    assert_int_equal(got.jitter_pct, 5);
    assert_int_equal(got.retention_ms, 120000);
    assert_int_equal(got.dedupe_window_ms, 7200000);
    assert_true(got.paused);
}

static void
test_lane_set_creates_the_lane(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);

    must_lane_set(f, "fresh", &ls);

    store_lane_stats s = must_stats(f, "fresh", NOW_MS);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.enqueued_total, 0);
}

static void
test_lane_set_keeps_counters(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    (void)must_enqueue(f, "emails", NOW_MS);
    ls.max_attempts = 2;

    must_lane_set(f, "emails", &ls);

    store_lane_stats s = must_stats(f, "emails", NOW_MS);
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.enqueued_total, 1);
}

static void
test_lane_get_of_an_unknown_lane_is_no_lane(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings got;

    hp_code code = lane_get_in(f, SCOPE, "nothing", &got, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_LANE);
}

static void
expect_bad_setting(fixture *f, const store_lane_settings *ls)
{
    hp_status st;

    hp_code code = lane_set_in(f, SCOPE, "emails", ls, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING);
}

static void
test_lane_set_rejects_zero_max_attempts(void **state)
{
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.max_attempts = 0;

    expect_bad_setting(*state, &ls);
}

static void
test_lane_set_rejects_max_attempts_above_the_limit(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.max_attempts = store_get_limits(f->s)->max_max_attempts;
    must_lane_set(f, "emails", &ls); /* n is fine */
    ls.max_attempts++;

    expect_bad_setting(f, &ls);
}

static void
test_lane_set_rejects_an_unknown_backoff(void **state)
{
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.backoff = (store_backoff)3;

    expect_bad_setting(*state, &ls);
}

static void
test_lane_set_rejects_jitter_above_100_percent(void **state)
{
    fixture *f = *state;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.jitter_pct = 100;
    must_lane_set(f, "emails", &ls);
    ls.jitter_pct = 101;

    expect_bad_setting(f, &ls);
}

static void
test_lane_set_rejects_a_cap_below_the_base(void **state)
{
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.backoff_base_ms = 5000;
    ls.backoff_cap_ms = 4999;

    expect_bad_setting(*state, &ls);
}

static void
test_lane_set_rejects_a_shrinking_factor(void **state)
{
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.backoff_factor_pct = 99;

    expect_bad_setting(*state, &ls);
}

static void
test_rejected_lane_setting_writes_nothing(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings ls, got;
    store_lane_settings_default(&ls);
    ls.jitter_pct = 101;
    assert_int_equal(lane_set_in(f, SCOPE, "emails", &ls, &st),
                     HP_INVALID_ARGUMENT);

    hp_code code = lane_get_in(f, SCOPE, "emails", &got, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_LANE);
}

static void
test_lane_set_with_a_bad_lane_name_is_bad_name(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings ls;
    store_lane_settings_default(&ls);

    hp_code code = lane_set_in(f, SCOPE, "no spaces", &ls, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME);
}

#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_get_of_an_unknown_id_is_no_message),
        T(test_get_of_a_dead_letter_shows_error_and_finish_time),
        T(test_list_pages_through_pending_messages_without_gaps),
        T(test_list_pages_through_delivered_messages_without_gaps),
        T(test_list_of_any_state_pages_through_every_message),
        T(test_list_pending_walks_in_claim_order),
        T(test_list_pending_walks_target_by_target_in_claim_order),
        T(test_list_pending_leaves_out_delayed_and_claimed),
        T(test_list_delayed_shows_only_delayed),
        T(test_list_claimed_shows_only_claimed),
        T(test_list_dead_shows_only_dead),
        T(test_list_shows_only_the_requested_lane),
        T(test_list_of_an_empty_state_returns_nothing_and_no_cursor),
        T(test_list_with_payload_returns_payload_and_headers),
        T(test_list_without_payload_leaves_the_payload_out),
        T(test_list_of_an_unknown_state_is_bad_state),
        T(test_list_with_a_bad_cursor_is_bad_cursor),
        T(test_list_with_a_cursor_of_another_lane_is_bad_cursor),
        T(test_stats_count_each_state),
        T(test_stats_count_totals),
        T(test_stats_report_the_oldest_pending_age),
        T(test_stats_oldest_pending_age_is_zero_when_nothing_is_due),
        T(test_stats_oldest_pending_age_ignores_claimed_messages),
        T(test_stats_list_targets_by_length_then_bytes),
        T(test_stats_targets_leave_out_targets_without_ready_messages),
        T(test_stats_carry_the_lane_settings),
        T(test_stats_of_an_unknown_lane_is_no_lane),
        T(test_list_lanes_pages_by_name),
        T(test_list_lanes_of_an_empty_scope_returns_nothing),
        T(test_list_lanes_with_a_bad_cursor_is_bad_cursor),
        T(test_lane_settings_round_trip),
        T(test_lane_set_creates_the_lane),
        T(test_lane_set_keeps_counters),
        T(test_lane_get_of_an_unknown_lane_is_no_lane),
        T(test_lane_set_rejects_zero_max_attempts),
        T(test_lane_set_rejects_max_attempts_above_the_limit),
        T(test_lane_set_rejects_an_unknown_backoff),
        T(test_lane_set_rejects_jitter_above_100_percent),
        T(test_lane_set_rejects_a_cap_below_the_base),
        T(test_lane_set_rejects_a_shrinking_factor),
        T(test_rejected_lane_setting_writes_nothing),
        T(test_lane_set_with_a_bad_lane_name_is_bad_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
