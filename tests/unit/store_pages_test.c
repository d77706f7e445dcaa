/*
 * store_pages_test.c - the bounds of one reply: a List, DeadList or
 * ListLanes page stops at its byte budget (max_bytes, in weights) with a
 * cursor to continue and at least one entry; Stats lists a page of
 * targets with a cursor of its own. Each limit is tested at n and n + 1.
 */
#include <string.h>

#include "store_fixture.h"

#define PAYLOAD_LEN 100
#define MAX_IDS     16

static const uint8_t payload[PAYLOAD_LEN];

/* n messages of lane with a PAYLOAD_LEN payload; their ids into ids. */
static void
fill(fixture *f, const char *lane, size_t n, hp_id *ids)
{
    store_draft d = draft(lane);
    d.payload = payload;
    d.payload_len = sizeof(payload);
    for (size_t i = 0; i < n; i++) {
        ids[i] = must_enqueue_draft(f, &d, NOW_MS);
    }
}

static size_t
weight_of(fixture *f, hp_id id, bool with_body)
{
    store_message m = must_get(f, id, NOW_MS);
    return store_message_weight(&m, with_body);
}

static store_list_req
pending_req(const char *lane, size_t max_bytes)
{
    store_list_req r;
    memset(&r, 0, sizeof(r));
    r.lane = hp_str_c(lane);
    r.state = STORE_STATE_PENDING;
    r.limit = 10;
    r.with_payload = true;
    r.max_bytes = max_bytes;
    return r;
}

static store_list_res
must_list(fixture *f, const store_list_req *req)
{
    store_list_res res;
    hp_status st;
    hp_code code = list_in(f, SCOPE, req, NOW_MS, &res, &st);
    assert_ok(code, st);
    return res;
}

/* ---- List ----------------------------------------------------------------
 */

static void
test_message_weight_counts_names_payload_and_headers(void **state)
{
    fixture *f = *state;
    store_header h = { HP_S("k"), HP_S("vv") };
    store_draft d = draft("emails");
    d.target = HP_S("t1");
    d.headers = &h;
    d.n_headers = 1;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    size_t with = weight_of(f, id, true), without = weight_of(f, id, false);

    /* "emails" + "t1"; "hello" and one header of 1 + 2 bytes. */
    assert_int_equal(without, STORE_WEIGHT_MESSAGE + 6 + 2);
    assert_int_equal(with, without + 5 + 3 + STORE_WEIGHT_HEADER);
}

static void
test_list_page_holds_the_messages_that_fit_its_byte_budget(void **state)
{
    fixture *f = *state;
    hp_id ids[5];
    fill(f, "emails", 5, ids);
    size_t w = weight_of(f, ids[0], true);
    store_list_req req = pending_req("emails", 3 * w);

    store_list_res res = must_list(f, &req);

    assert_int_equal(res.n, 3);
    assert_non_null(res.next_cursor);
}

static void
test_list_page_one_byte_short_leaves_the_message_for_the_next(void **state)
{
    fixture *f = *state;
    hp_id ids[5];
    fill(f, "emails", 5, ids);
    size_t w = weight_of(f, ids[0], true);
    store_list_req req = pending_req("emails", 3 * w - 1);

    store_list_res res = must_list(f, &req);
    assert_int_equal(res.n, 2);
    req.cursor = res.next_cursor;
    req.cursor_len = res.next_cursor_len;
    res = must_list(f, &req);

    assert_int_equal(res.n, 2);
    assert_id_equal(res.msgs[0].id, ids[2]); /* the one left out first */
}

static void
test_list_pages_cut_by_bytes_return_every_message_once(void **state)
{
    fixture *f = *state;
    hp_id ids[5], got[MAX_IDS];
    size_t n = 0, pages = 0;
    fill(f, "emails", 5, ids);
    store_list_req req = pending_req("emails", 2 * weight_of(f, ids[0], true));

    for (;;) {
        store_list_res res = must_list(f, &req);
        assert_true(++pages <= 5);
        for (size_t i = 0; i < res.n; i++) {
            got[n++] = res.msgs[i].id;
        }
        if (res.next_cursor == NULL) {
            break;
        }
        req.cursor = res.next_cursor;
        req.cursor_len = res.next_cursor_len;
    }

    assert_int_equal(pages, 3);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_id_equal(got[i], ids[i]);
    }
}

static void
test_list_page_holds_one_message_heavier_than_its_budget(void **state)
{
    fixture *f = *state;
    hp_id ids[2];
    fill(f, "emails", 2, ids);
    store_list_req req = pending_req("emails", 1);

    store_list_res res = must_list(f, &req);

    assert_int_equal(res.n, 1);
    assert_non_null(res.next_cursor);
}

static void
test_list_without_payload_weighs_the_page_without_bodies(void **state)
{
    fixture *f = *state;
    hp_id ids[3];
    fill(f, "emails", 3, ids);
    size_t w = weight_of(f, ids[0], false);
    store_list_req req = pending_req("emails", 2 * w);
    req.with_payload = false;

    store_list_res res = must_list(f, &req);
    assert_int_equal(res.n, 2);
    req.max_bytes = 2 * w - 1;
    res = must_list(f, &req);

    assert_int_equal(res.n, 1);
}

static void
test_list_without_a_byte_budget_is_cut_by_limit_only(void **state)
{
    fixture *f = *state;
    hp_id ids[5];
    fill(f, "emails", 5, ids);
    store_list_req req = pending_req("emails", 0);

    store_list_res res = must_list(f, &req);

    assert_int_equal(res.n, 5);
    assert_null(res.next_cursor);
}

static void
test_dead_list_page_stops_at_its_byte_budget(void **state)
{
    fixture *f = *state;
    hp_id dead[3];
    for (size_t i = 0; i < 3; i++) {
        dead[i] = must_make_dead(f, "jobs", NOW_MS + i);
    }
    store_message m = must_get(f, dead[0], NOW_MS + 10);
    size_t w = store_message_weight(&m, true);
    store_list_req req = pending_req("jobs", 2 * w);
    req.state = STORE_STATE_DEAD; /* what store_dead_list asks */

    store_list_res res = must_list(f, &req);
    assert_int_equal(res.n, 2);
    assert_non_null(res.next_cursor);
    req.max_bytes = 2 * w - 1;
    res = must_list(f, &req);

    assert_int_equal(res.n, 1);
    assert_id_equal(res.msgs[0].id, dead[0]);
}

/* ---- Stats targets -------------------------------------------------------
 */

static void
put_targets(fixture *f, const char *lane, const char *const *targets, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        store_draft d = draft(lane);
        d.target = hp_str_c(targets[i]);
        (void)must_enqueue_draft(f, &d, NOW_MS);
    }
}

static store_lane_stats
must_stats_page(fixture *f, const char *lane, const void *cursor,
                size_t cursor_len, uint32_t limit)
{
    store_targets_req req = { cursor, cursor_len, limit };
    store_lane_stats s;
    hp_status st;
    hp_code code = stats_targets_in(f, SCOPE, lane, &req, NOW_MS, &s, &st);
    assert_ok(code, st);
    return s;
}

static void
test_stats_targets_at_the_limit_come_without_a_cursor(void **state)
{
    fixture *f = *state;
    const char *const t[] = { "a", "b", "c" };
    put_targets(f, "emails", t, 3);

    store_lane_stats s = must_stats_page(f, "emails", NULL, 0, 3);

    assert_int_equal(s.n_targets, 3);
    assert_null(s.targets_next_cursor);
    assert_int_equal(s.pending, 3); /* counters come whatever the page */
}

static void
test_stats_targets_one_over_the_limit_come_with_a_cursor(void **state)
{
    fixture *f = *state;
    const char *const t[] = { "a", "b", "c" };
    put_targets(f, "emails", t, 3);

    store_lane_stats s = must_stats_page(f, "emails", NULL, 0, 2);
    assert_int_equal(s.n_targets, 2);
    assert_non_null(s.targets_next_cursor);
    s = must_stats_page(f, "emails", s.targets_next_cursor,
                        s.targets_next_cursor_len, 2);

    assert_int_equal(s.n_targets, 1);
    assert_str_equal(s.targets[0], "c");
    assert_null(s.targets_next_cursor);
}

static void
test_stats_targets_page_past_the_untargeted_messages(void **state)
{
    fixture *f = *state;
    const char *const t[] = { "", "a" };
    put_targets(f, "emails", t, 2);

    store_lane_stats s = must_stats_page(f, "emails", NULL, 0, 1);
    assert_str_equal(s.targets[0], "");
    assert_int_equal(s.targets_next_cursor_len, 1); /* names "" */
    s = must_stats_page(f, "emails", s.targets_next_cursor,
                        s.targets_next_cursor_len, 1);

    assert_int_equal(s.n_targets, 1);
    assert_str_equal(s.targets[0], "a");
    assert_null(s.targets_next_cursor);
}

static void
test_stats_with_targets_limit_0_lists_none(void **state)
{
    fixture *f = *state;
    const char *const t[] = { "a" };
    put_targets(f, "emails", t, 1);

    store_lane_stats s = must_stats_page(f, "emails", NULL, 0, 0);

    assert_int_equal(s.n_targets, 0);
    assert_null(s.targets_next_cursor);
    assert_int_equal(s.pending, 1);
}

static void
test_stats_targets_limit_of_max_batch_is_accepted(void **state)
{
    fixture *f = *state;
    const char *const t[] = { "a" };
    put_targets(f, "emails", t, 1);

    store_lane_stats s = must_stats_page(f, "emails", NULL, 0, 1000);

    assert_int_equal(s.n_targets, 1);
}

static void
test_stats_targets_limit_over_max_batch_is_bad_limit(void **state)
{
    fixture *f = *state;
    const char *const t[] = { "a" };
    put_targets(f, "emails", t, 1);
    store_targets_req req = { NULL, 0, 1001 };
    store_lane_stats s;
    hp_status st;

    hp_code code = stats_targets_in(f, SCOPE, "emails", &req, NOW_MS, &s, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LIMIT);
}

static void
test_stats_with_a_malformed_targets_cursor_is_bad_cursor(void **state)
{
    fixture *f = *state;
    const char *const t[] = { "a" };
    put_targets(f, "emails", t, 1);
    const uint8_t wrong_len[] = { 5, 'a' };
    const uint8_t bad_char[] = { 1, '/' };
    store_lane_stats s;
    hp_status st;

    store_targets_req req = { wrong_len, sizeof(wrong_len), 10 };
    hp_code code = stats_targets_in(f, SCOPE, "emails", &req, NOW_MS, &s, &st);
    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_CURSOR);
    req.cursor = bad_char;
    req.cursor_len = sizeof(bad_char);
    code = stats_targets_in(f, SCOPE, "emails", &req, NOW_MS, &s, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_CURSOR);
}

/* ---- ListLanes -----------------------------------------------------------
 */

static store_lanes_res
must_lanes(fixture *f, const store_lanes_req *req)
{
    store_lanes_res res;
    hp_status st;
    hp_code code = list_lanes_req_in(f, SCOPE, req, NOW_MS, &res, &st);
    assert_ok(code, st);
    return res;
}

static void
test_list_lanes_page_stops_at_its_byte_budget(void **state)
{
    fixture *f = *state;
    (void)must_enqueue(f, "lane1", NOW_MS);
    (void)must_enqueue(f, "lane2", NOW_MS);
    (void)must_enqueue(f, "lane3", NOW_MS);
    store_lanes_req req = { .limit = 10, .targets_limit = 10 };
    store_lanes_res all = must_lanes(f, &req);
    assert_int_equal(all.n, 3);
    /* Same-length names, one target "" each: every lane weighs the same. */
    size_t w = store_lane_stats_weight(&all.lanes[0]);
    assert_int_equal(w, STORE_WEIGHT_LANE + 7 + 5 + STORE_WEIGHT_NAME);

    req.max_bytes = 2 * w;
    store_lanes_res res = must_lanes(f, &req);
    assert_int_equal(res.n, 2);
    assert_non_null(res.next_cursor);
    req.max_bytes = 2 * w - 1;
    res = must_lanes(f, &req);
    assert_int_equal(res.n, 1);
    req.cursor = res.next_cursor;
    req.cursor_len = res.next_cursor_len;
    res = must_lanes(f, &req);

    assert_int_equal(res.n, 1);
    assert_str_equal(res.lanes[0].lane, "lane2");
}

static void
test_list_lanes_carry_the_first_page_of_each_lanes_targets(void **state)
{
    fixture *f = *state;
    const char *const t[] = { "a", "b", "c" };
    put_targets(f, "emails", t, 3);
    store_lanes_req req = { .limit = 10, .targets_limit = 2 };

    store_lanes_res res = must_lanes(f, &req);
    assert_int_equal(res.n, 1);
    assert_int_equal(res.lanes[0].n_targets, 2);
    assert_non_null(res.lanes[0].targets_next_cursor);
    req.targets_limit = 0;
    res = must_lanes(f, &req);

    assert_int_equal(res.lanes[0].n_targets, 0);
    assert_null(res.lanes[0].targets_next_cursor);
    assert_int_equal(res.lanes[0].pending, 3);
}

int
main(void)
{
#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_message_weight_counts_names_payload_and_headers),
        T(test_list_page_holds_the_messages_that_fit_its_byte_budget),
        T(test_list_page_one_byte_short_leaves_the_message_for_the_next),
        T(test_list_pages_cut_by_bytes_return_every_message_once),
        T(test_list_page_holds_one_message_heavier_than_its_budget),
        T(test_list_without_payload_weighs_the_page_without_bodies),
        T(test_list_without_a_byte_budget_is_cut_by_limit_only),
        T(test_dead_list_page_stops_at_its_byte_budget),
        T(test_stats_targets_at_the_limit_come_without_a_cursor),
        T(test_stats_targets_one_over_the_limit_come_with_a_cursor),
        T(test_stats_targets_page_past_the_untargeted_messages),
        T(test_stats_with_targets_limit_0_lists_none),
        T(test_stats_targets_limit_of_max_batch_is_accepted),
        T(test_stats_targets_limit_over_max_batch_is_bad_limit),
        T(test_stats_with_a_malformed_targets_cursor_is_bad_cursor),
        T(test_list_lanes_page_stops_at_its_byte_budget),
        T(test_list_lanes_carry_the_first_page_of_each_lanes_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
