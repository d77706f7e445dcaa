/*
 * store_dead_test.c - dead letters: listing them, replaying them to
 * pending (attempts reset, last error kept) and purging them, by id and
 * for a whole lane in bounded steps.
 */
#include <string.h>

#include "store_fixture.h"

static store_dead_sel
sel_ids(const char *lane, const hp_id *ids, size_t n)
{
    store_dead_sel s;
    memset(&s, 0, sizeof(s));
    s.lane = hp_str_c(lane);
    s.ids = ids;
    s.n_ids = n;
    return s;
}

static store_dead_sel
sel_lane(const char *lane, uint32_t limit)
{
    store_dead_sel s;
    memset(&s, 0, sizeof(s));
    s.lane = hp_str_c(lane);
    s.limit = limit;
    return s;
}

/* ---- listing --------------------------------------------------------------
 */

static void
test_dead_list_returns_the_oldest_death_first(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    /* Enqueued in one order, killed in the other. */
    store_draft d = draft("emails");
    d.max_attempts = 1;
    hp_id first = must_enqueue_draft(f, &d, NOW_MS);
    hp_id second = must_enqueue_draft(f, &d, NOW_MS);
    store_token t1 = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_token t2 = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_nack(f, second, t2, 0, NOW_MS + 10);
    (void)must_nack(f, first, t1, 0, NOW_MS + 20);

    hp_code code =
        dead_list_in(f, SCOPE, "emails", NULL, 0, 10, false, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.n, 2);
    assert_id_equal(res.msgs[0].id, second);
    assert_id_equal(res.msgs[1].id, first);
    assert_int_equal(res.msgs[0].state, STORE_STATE_DEAD);
}

static void
test_dead_list_pages_without_gaps_or_duplicates(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    hp_id want[5];
    for (size_t i = 0; i < 5; i++) {
        want[i] = must_make_dead(f, "emails", NOW_MS + i);
    }
    const void *cursor = NULL;
    size_t cursor_len = 0, n = 0, pages = 0;

    do {
        hp_code code = dead_list_in(f, SCOPE, "emails", cursor, cursor_len, 2,
                                    false, &res, &st);
        assert_ok(code, st);
        for (size_t i = 0; i < res.n; i++) {
            assert_true(n < 5);
            assert_id_equal(res.msgs[i].id, want[n]);
            n++;
        }
        cursor = res.next_cursor;
        cursor_len = res.next_cursor_len;
        pages++;
        assert_true(pages <= 5);
    } while (cursor != NULL && cursor_len > 0);

    assert_int_equal(n, 5);
    assert_int_equal(pages, 3);
}

static void
test_dead_list_with_payload_returns_the_payload(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    (void)must_make_dead(f, "emails", NOW_MS);

    hp_code code =
        dead_list_in(f, SCOPE, "emails", NULL, 0, 10, true, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.n, 1);
    assert_int_equal(res.msgs[0].payload_len, 5);
    assert_memory_equal(res.msgs[0].payload, "hello", 5);
    assert_str_equal(res.msgs[0].last_error, "boom");
}

static void
test_dead_list_with_a_bad_cursor_is_bad_cursor(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res res;
    (void)must_make_dead(f, "emails", NOW_MS);

    hp_code code =
        dead_list_in(f, SCOPE, "emails", "x", 1, 10, false, &res, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_CURSOR);
}

/* ---- replay ---------------------------------------------------------------
 */

static void
test_replay_moves_dead_to_pending_with_attempts_reset(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id id = must_make_dead(f, "emails", NOW_MS);
    store_dead_sel sel = sel_ids("emails", &id, 1);

    hp_code code = dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.count, 1);
    store_message m = must_get(f, id, NOW_MS + 100);
    assert_int_equal(m.state, STORE_STATE_PENDING);
    assert_int_equal(m.attempts, 0);
    assert_int_equal(m.finished_at_ms, 0);
}

static void
test_replay_keeps_the_last_error(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id id = must_make_dead(f, "emails", NOW_MS);
    store_dead_sel sel = sel_ids("emails", &id, 1);

    hp_code code = dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st);

    assert_ok(code, st);
    assert_str_equal(must_get(f, id, NOW_MS + 100).last_error, "boom");
}

static void
test_replayed_message_is_claimable_now_with_a_fresh_attempt(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id id = must_make_dead(f, "emails", NOW_MS);
    store_dead_sel sel = sel_ids("emails", &id, 1);
    assert_ok(dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st), st);

    store_message c = must_claim_msg(f, "emails", NOW_MS + 100, LEASE_MS);

    assert_id_equal(c.id, id);
    assert_int_equal(c.attempts, 1);
}

static void
test_replay_moves_the_count_from_dead_to_pending(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id id = must_make_dead(f, "emails", NOW_MS);
    store_dead_sel sel = sel_ids("emails", &id, 1);

    assert_ok(dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st), st);

    store_lane_stats s = must_stats(f, "emails", NOW_MS + 100);
    assert_int_equal(s.dead, 0);
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.replayed_total, 1);
}

static void
test_replay_takes_the_message_off_the_dead_list(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    store_list_res list;
    hp_id id = must_make_dead(f, "emails", NOW_MS);
    hp_id other = must_make_dead(f, "emails", NOW_MS + 1);
    store_dead_sel sel = sel_ids("emails", &id, 1);
    assert_ok(dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st), st);

    hp_code code =
        dead_list_in(f, SCOPE, "emails", NULL, 0, 10, false, &list, &st);

    assert_ok(code, st);
    assert_int_equal(list.n, 1);
    assert_id_equal(list.msgs[0].id, other);
}

static void
test_replay_of_a_whole_lane_is_bounded_by_limit(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    for (uint64_t i = 0; i < 3; i++) {
        (void)must_make_dead(f, "emails", NOW_MS + i);
    }
    store_dead_sel sel = sel_lane("emails", 2);

    hp_code code = dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.count, 2);
    assert_true(res.more);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 100).dead, 1);
}

static void
test_replay_of_a_whole_lane_reports_no_more_at_the_end(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    for (uint64_t i = 0; i < 3; i++) {
        (void)must_make_dead(f, "emails", NOW_MS + i);
    }
    store_dead_sel sel = sel_lane("emails", 2);
    assert_ok(dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st), st);

    hp_code code = dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.count, 1);
    assert_false(res.more);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 100).pending, 3);
}

static void
test_replay_of_a_whole_lane_takes_the_oldest_first(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id oldest = must_make_dead(f, "emails", NOW_MS);
    hp_id newest = must_make_dead(f, "emails", NOW_MS + 1);
    store_dead_sel sel = sel_lane("emails", 1);

    hp_code code = dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st);

    assert_ok(code, st);
    assert_int_equal(must_get(f, oldest, NOW_MS + 100).state,
                     STORE_STATE_PENDING);
    assert_int_equal(must_get(f, newest, NOW_MS + 100).state, STORE_STATE_DEAD);
}

static void
test_replay_of_a_message_that_is_not_dead_is_not_dead(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id ids[2];
    ids[0] = must_make_dead(f, "emails", NOW_MS);
    ids[1] = must_enqueue(f, "emails", NOW_MS);
    store_dead_sel sel = sel_ids("emails", ids, 2);

    hp_code code = dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_NOT_DEAD);
}

static void
test_refused_replay_changes_nothing(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id ids[2];
    ids[0] = must_make_dead(f, "emails", NOW_MS);
    ids[1] = must_enqueue(f, "emails", NOW_MS);
    store_dead_sel sel = sel_ids("emails", ids, 2);
    assert_int_equal(dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st),
                     HP_FAILED_PRECONDITION);

    store_message m = must_get(f, ids[0], NOW_MS + 100);

    assert_int_equal(m.state, STORE_STATE_DEAD);
    assert_int_equal(must_stats(f, "emails", NOW_MS + 100).replayed_total, 0);
}

static void
test_replay_of_an_unknown_id_is_no_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id id = must_make_dead(f, "emails", NOW_MS);
    id.b[15] ^= 0x01;
    store_dead_sel sel = sel_ids("emails", &id, 1);

    hp_code code = dead_replay_in(f, SCOPE, &sel, NOW_MS + 100, &res, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
}

/* ---- purge ----------------------------------------------------------------
 */

static void
test_purge_deletes_the_dead_letter(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    store_message m;
    hp_id id = must_make_dead(f, "emails", NOW_MS);
    store_dead_sel sel = sel_ids("emails", &id, 1);

    hp_code code = dead_purge_in(f, SCOPE, &sel, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.count, 1);
    assert_int_equal(get(f, id, NOW_MS, &m, &st), HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
}

static void
test_purge_updates_dead_count_and_purged_total(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id id = must_make_dead(f, "emails", NOW_MS);
    store_dead_sel sel = sel_ids("emails", &id, 1);

    assert_ok(dead_purge_in(f, SCOPE, &sel, &res, &st), st);

    store_lane_stats s = must_stats(f, "emails", NOW_MS);
    assert_int_equal(s.dead, 0);
    assert_int_equal(s.purged_total, 1);
}

static void
test_purge_of_a_whole_lane_is_bounded_by_limit(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    for (uint64_t i = 0; i < 3; i++) {
        (void)must_make_dead(f, "emails", NOW_MS + i);
    }
    store_dead_sel sel = sel_lane("emails", 2);

    hp_code code = dead_purge_in(f, SCOPE, &sel, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.count, 2);
    assert_true(res.more);
    assert_int_equal(must_stats(f, "emails", NOW_MS).dead, 1);
}

static void
test_purge_of_a_whole_lane_reports_no_more_at_the_end(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    for (uint64_t i = 0; i < 3; i++) {
        (void)must_make_dead(f, "emails", NOW_MS + i);
    }
    store_dead_sel sel = sel_lane("emails", 2);
    assert_ok(dead_purge_in(f, SCOPE, &sel, &res, &st), st);

    hp_code code = dead_purge_in(f, SCOPE, &sel, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.count, 1);
    assert_false(res.more);
    assert_int_equal(must_stats(f, "emails", NOW_MS).dead, 0);
}

static void
test_purge_of_a_message_that_is_not_dead_is_not_dead(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id ids[2];
    ids[0] = must_make_dead(f, "emails", NOW_MS);
    ids[1] = must_enqueue(f, "emails", NOW_MS);
    store_dead_sel sel = sel_ids("emails", ids, 2);

    hp_code code = dead_purge_in(f, SCOPE, &sel, &res, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_NOT_DEAD);
    assert_int_equal(must_get(f, ids[0], NOW_MS).state, STORE_STATE_DEAD);
}

static void
test_purge_of_an_unknown_id_is_no_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    hp_id id = must_make_dead(f, "emails", NOW_MS);
    id.b[15] ^= 0x01;
    store_dead_sel sel = sel_ids("emails", &id, 1);

    hp_code code = dead_purge_in(f, SCOPE, &sel, &res, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
}

#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_dead_list_returns_the_oldest_death_first),
        T(test_dead_list_pages_without_gaps_or_duplicates),
        T(test_dead_list_with_payload_returns_the_payload),
        T(test_dead_list_with_a_bad_cursor_is_bad_cursor),
        T(test_replay_moves_dead_to_pending_with_attempts_reset),
        T(test_replay_keeps_the_last_error),
        T(test_replayed_message_is_claimable_now_with_a_fresh_attempt),
        T(test_replay_moves_the_count_from_dead_to_pending),
        T(test_replay_takes_the_message_off_the_dead_list),
        T(test_replay_of_a_whole_lane_is_bounded_by_limit),
        T(test_replay_of_a_whole_lane_reports_no_more_at_the_end),
        T(test_replay_of_a_whole_lane_takes_the_oldest_first),
        T(test_replay_of_a_message_that_is_not_dead_is_not_dead),
        T(test_refused_replay_changes_nothing),
        T(test_replay_of_an_unknown_id_is_no_message),
        T(test_purge_deletes_the_dead_letter),
        T(test_purge_updates_dead_count_and_purged_total),
        T(test_purge_of_a_whole_lane_is_bounded_by_limit),
        T(test_purge_of_a_whole_lane_reports_no_more_at_the_end),
        T(test_purge_of_a_message_that_is_not_dead_is_not_dead),
        T(test_purge_of_an_unknown_id_is_no_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
