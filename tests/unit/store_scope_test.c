/*
 * store_scope_test.c - scopes are separate keyspaces: the same lane name in
 * two scopes never mixes, and an id from one scope is not found in another
 * by any operation.
 */
#include <string.h>

#include "store_fixture.h"

/* ---- the same lane name in two scopes ---------------------------------- */

static void
test_claim_never_takes_a_message_of_another_scope(void **state)
{
    fixture *f = *state;
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);

    size_t in_b = claim_count_in(f, SCOPE_B, "emails", NOW_MS);
    size_t in_a = claim_count_in(f, SCOPE_A, "emails", NOW_MS);

    assert_int_equal(in_b, 0);
    assert_int_equal(in_a, 1);
}

static void
test_claim_takes_only_its_own_scope_when_both_have_work(void **state)
{
    fixture *f = *state;
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    hp_id b = must_enqueue_in(f, SCOPE_B, "emails", NOW_MS + 1);
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS + 2);
    store_claim_req req = claim_req("emails", 10, LEASE_MS);
    store_claimed out;
    hp_status st;

    hp_code code = claim_in(f, SCOPE_B, &req, NOW_MS + 3, &out, &st);

    assert_ok(code, st);
    assert_int_equal(out.n, 1);
    assert_id_equal(out.msgs[0].id, b);
}

static void
test_stats_count_only_their_own_scope(void **state)
{
    fixture *f = *state;
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    (void)must_enqueue_in(f, SCOPE_B, "emails", NOW_MS);

    store_lane_stats a = must_stats_in(f, SCOPE_A, "emails", NOW_MS);
    store_lane_stats b = must_stats_in(f, SCOPE_B, "emails", NOW_MS);

    assert_int_equal(a.pending, 2);
    assert_int_equal(a.enqueued_total, 2);
    assert_int_equal(b.pending, 1);
    assert_int_equal(b.enqueued_total, 1);
}

static void
test_list_all_lanes_pages_through_every_scope_in_order(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lanes_res p1, p2;
    (void)must_enqueue_in(f, SCOPE_B, "z", NOW_MS);
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    (void)must_enqueue_in(f, SCOPE_B, "emails", NOW_MS);

    assert_ok(list_lanes_in(f, HP_S(""), NULL, 0, 2, NOW_MS, &p1, &st), st);
    assert_ok(list_lanes_in(f, HP_S(""), p1.next_cursor, p1.next_cursor_len, 2,
                            NOW_MS, &p2, &st),
              st);

    /* Names order as keys do: by length, then by bytes. */
    assert_int_equal(p1.n, 2);
    assert_true(hp_str_eq(p1.lanes[0].scope, SCOPE_A));
    assert_str_equal(p1.lanes[0].lane, "emails");
    assert_int_equal(p1.lanes[0].pending, 2);
    assert_true(hp_str_eq(p1.lanes[1].scope, SCOPE_B));
    assert_str_equal(p1.lanes[1].lane, "z");
    assert_int_equal(p2.n, 1);
    assert_true(hp_str_eq(p2.lanes[0].scope, SCOPE_B));
    assert_str_equal(p2.lanes[0].lane, "emails");
    assert_int_equal(p2.next_cursor_len, 0);
}

static void
test_stats_of_a_lane_used_only_in_another_scope_is_no_lane(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_stats s;
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);

    hp_code code = stats_in(f, SCOPE_B, "emails", NOW_MS, &s, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_LANE);
}

static void
test_list_shows_only_its_own_scope(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    hp_id b = must_enqueue_in(f, SCOPE_B, "emails", NOW_MS);
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    store_list_req req;
    memset(&req, 0, sizeof(req));
    req.lane = HP_S("emails");
    req.state = STORE_STATE_ANY;
    req.limit = 10;

    hp_code code = list_in(f, SCOPE_B, &req, NOW_MS, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.n, 1);
    assert_id_equal(res.msgs[0].id, b);
}

static void
test_list_with_a_cursor_of_another_scope_is_bad_cursor(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    for (int i = 0; i < 3; i++) {
        (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
        (void)must_enqueue_in(f, SCOPE_B, "emails", NOW_MS);
    }
    store_list_req req;
    memset(&req, 0, sizeof(req));
    req.lane = HP_S("emails");
    req.state = STORE_STATE_ANY;
    req.limit = 2;
    assert_ok(list_in(f, SCOPE_A, &req, NOW_MS, &res, &st), st);
    assert_true(res.next_cursor_len > 0);
    req.cursor = res.next_cursor;
    req.cursor_len = res.next_cursor_len;

    hp_code code = list_in(f, SCOPE_B, &req, NOW_MS, &res, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_CURSOR);
}

static void
test_list_lanes_shows_only_its_own_scope(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lanes_res res;
    (void)must_enqueue_in(f, SCOPE_A, "alpha", NOW_MS);
    (void)must_enqueue_in(f, SCOPE_B, "beta", NOW_MS);

    hp_code code = list_lanes_in(f, SCOPE_B, NULL, 0, 10, NOW_MS, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.n, 1);
    assert_str_equal(res.lanes[0].lane, "beta");
}

static void
test_dead_letters_show_only_in_their_own_scope(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    (void)must_make_dead_in(f, SCOPE_A, "emails", NOW_MS);
    (void)must_enqueue_in(f, SCOPE_B, "emails", NOW_MS);

    hp_code code =
        dead_list_in(f, SCOPE_B, "emails", NULL, 0, 10, false, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.n, 0);
    assert_int_equal(must_stats_in(f, SCOPE_B, "emails", NOW_MS).dead, 0);
}

static void
test_same_dedupe_key_in_two_scopes_creates_two_messages(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d = draft("emails");
    d.dedupe_key = HP_S("order-1");
    store_enqueued a, b;

    assert_ok(enqueue_in(f, SCOPE_A, &d, 1, NOW_MS, &a, &st), st);
    assert_ok(enqueue_in(f, SCOPE_B, &d, 1, NOW_MS, &b, &st), st);

    assert_false(a.duplicate);
    assert_false(b.duplicate);
    assert_id_not_equal(a.id, b.id);
}

static void
test_paused_lane_in_one_scope_leaves_the_other_scope_claiming(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.paused = true;
    assert_ok(lane_set_in(f, SCOPE_A, "emails", &ls, &st), st);
    (void)must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    (void)must_enqueue_in(f, SCOPE_B, "emails", NOW_MS);

    size_t in_b = claim_count_in(f, SCOPE_B, "emails", NOW_MS);
    size_t in_a = claim_count_in(f, SCOPE_A, "emails", NOW_MS);

    assert_int_equal(in_b, 1);
    assert_int_equal(in_a, 0);
}

static void
test_scope_that_prefixes_another_sees_none_of_its_messages(void **state)
{
    fixture *f = *state;
    (void)must_enqueue_in(f, HP_S("acme"), "emails", NOW_MS);

    size_t n = claim_count_in(f, HP_S("acm"), "emails", NOW_MS);

    assert_int_equal(n, 0);
}

static void
test_lane_that_prefixes_another_sees_none_of_its_messages(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "emails", NOW_MS);

    size_t n = claim_count(f, "email", NOW_MS);

    assert_int_equal(n, 0);
}

/* ---- an id of scope A used in scope B ------------------------------------ */

static void
test_get_of_another_scopes_id_is_not_found(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_message m;
    hp_id id = must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);

    hp_code code = get_in(f, SCOPE_B, id, NOW_MS, &m, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
}

static void
test_ack_of_another_scopes_id_is_not_found(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    store_message c = must_claim_msg_in(f, SCOPE_A, "emails", NOW_MS, LEASE_MS);
    store_ack_item it;
    memset(&it, 0, sizeof(it));
    it.id = id;
    it.token = c.token;

    hp_code code = ack_in(f, SCOPE_B, &it, 1, NULL, 0, NOW_MS, NULL, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
    assert_int_equal(must_get_in(f, SCOPE_A, id, NOW_MS).state,
                     STORE_STATE_CLAIMED);
}

static void
test_nack_of_another_scopes_id_is_not_found(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    store_message c = must_claim_msg_in(f, SCOPE_A, "emails", NOW_MS, LEASE_MS);
    store_nack_req req;
    memset(&req, 0, sizeof(req));
    req.id = id;
    req.token = c.token;
    req.error = HP_S("boom");

    hp_code code = nack_in(f, SCOPE_B, &req, NOW_MS, NULL, &res, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
    assert_int_equal(must_get_in(f, SCOPE_A, id, NOW_MS).state,
                     STORE_STATE_CLAIMED);
}

static void
test_extend_of_another_scopes_id_is_not_found(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint64_t at;
    hp_id id = must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    store_message c = must_claim_msg_in(f, SCOPE_A, "emails", NOW_MS, LEASE_MS);

    hp_code code = extend_in(f, SCOPE_B, id, c.token, 5000, NOW_MS, &at, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
    assert_int_equal(must_get_in(f, SCOPE_A, id, NOW_MS).lease_expires_at_ms,
                     NOW_MS + LEASE_MS);
}

static void
test_replay_of_another_scopes_id_is_not_found(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id id = must_make_dead_in(f, SCOPE_A, "emails", NOW_MS);
    (void)must_make_dead_in(f, SCOPE_B, "emails", NOW_MS);
    store_dead_sel sel = { HP_S("emails"), &id, 1, 0 };

    hp_code code = dead_replay_in(f, SCOPE_B, &sel, NOW_MS, &res, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
    assert_int_equal(must_get_in(f, SCOPE_A, id, NOW_MS).state,
                     STORE_STATE_DEAD);
}

static void
test_purge_of_another_scopes_id_is_not_found(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id id = must_make_dead_in(f, SCOPE_A, "emails", NOW_MS);
    (void)must_make_dead_in(f, SCOPE_B, "emails", NOW_MS);
    store_dead_sel sel = { HP_S("emails"), &id, 1, 0 };

    hp_code code = dead_purge_in(f, SCOPE_B, &sel, &res, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
    assert_int_equal(must_get_in(f, SCOPE_A, id, NOW_MS).state,
                     STORE_STATE_DEAD);
}

static void
test_whole_lane_purge_leaves_the_other_scope_alone(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id a = must_make_dead_in(f, SCOPE_A, "emails", NOW_MS);
    (void)must_make_dead_in(f, SCOPE_B, "emails", NOW_MS);
    store_dead_sel sel = { HP_S("emails"), NULL, 0, 10 };

    hp_code code = dead_purge_in(f, SCOPE_B, &sel, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.count, 1);
    assert_int_equal(must_get_in(f, SCOPE_A, a, NOW_MS).state,
                     STORE_STATE_DEAD);
}

#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_claim_never_takes_a_message_of_another_scope),
        T(test_claim_takes_only_its_own_scope_when_both_have_work),
        T(test_stats_count_only_their_own_scope),
        T(test_list_all_lanes_pages_through_every_scope_in_order),
        T(test_stats_of_a_lane_used_only_in_another_scope_is_no_lane),
        T(test_list_shows_only_its_own_scope),
        T(test_list_with_a_cursor_of_another_scope_is_bad_cursor),
        T(test_list_lanes_shows_only_its_own_scope),
        T(test_dead_letters_show_only_in_their_own_scope),
        T(test_same_dedupe_key_in_two_scopes_creates_two_messages),
        T(test_paused_lane_in_one_scope_leaves_the_other_scope_claiming),
        T(test_scope_that_prefixes_another_sees_none_of_its_messages),
        T(test_lane_that_prefixes_another_sees_none_of_its_messages),
        T(test_get_of_another_scopes_id_is_not_found),
        T(test_ack_of_another_scopes_id_is_not_found),
        T(test_nack_of_another_scopes_id_is_not_found),
        T(test_extend_of_another_scopes_id_is_not_found),
        T(test_replay_of_another_scopes_id_is_not_found),
        T(test_purge_of_another_scopes_id_is_not_found),
        T(test_whole_lane_purge_leaves_the_other_scope_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
