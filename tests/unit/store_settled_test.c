/*
 * store_settled_test.c - store_txn_take_settled: a write transaction
 * reports the messages it delivered or dead-lettered (what wakes an
 * Await), once each, and nothing for a retry or a repeated ack; past its
 * notes it says "any".
 */
#include <string.h>

#include "store_fixture.h"

#define MANY (STORE_MAX_SETTLE_NOTES + 1)

typedef struct seen {
    size_t n;
    char scope[HP_NAME_MAX + 1];
    hp_id last;
} seen;

static void
on_settled(void *arg, hp_str scope, const hp_id *id)
{
    seen *s = arg;
    s->n++;
    memcpy(s->scope, scope.p, scope.len);
    s->scope[scope.len] = '\0';
    s->last = *id;
}

static store_txn *
begin(fixture *f)
{
    store_txn *t;
    hp_status st;
    hp_code code = store_txn_begin(f->s, true, &t, &st);
    assert_ok(code, st);
    return t;
}

static void
commit(store_txn *t)
{
    hp_status st;
    hp_code code = store_txn_commit(t, &st);
    assert_ok(code, st);
}

static void
test_an_ack_reports_its_message_once(void **state)
{
    fixture *f = *state;
    hp_status st;
    seen s = { 0 };
    bool all;
    hp_id id = must_enqueue_in(f, SCOPE_A, "emails", NOW_MS);
    store_message m = must_claim_msg_in(f, SCOPE_A, "emails", NOW_MS, LEASE_MS);
    store_ack_item it = { .id = id, .token = m.token };
    store_txn *t = begin(f);

    hp_code code = store_ack(t, SCOPE_A, &it, 1, NULL, 0, NOW_MS, NULL, &st);

    assert_ok(code, st);
    store_txn_take_settled(t, on_settled, &s, &all);
    store_txn_take_settled(t, on_settled, &s, &all);
    commit(t);
    assert_int_equal(s.n, 1);
    assert_false(all);
    assert_string_equal(s.scope, "acme");
    assert_id_equal(s.last, id);
}

static void
test_a_repeated_ack_reports_nothing(void **state)
{
    fixture *f = *state;
    hp_status st;
    seen s = { 0 };
    bool all;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    must_ack(f, id, tok, NOW_MS);
    store_ack_item it = { .id = id, .token = tok };
    store_txn *t = begin(f);

    hp_code code = store_ack(t, SCOPE, &it, 1, NULL, 0, NOW_MS, NULL, &st);

    assert_ok(code, st);
    store_txn_take_settled(t, on_settled, &s, &all);
    commit(t);
    assert_int_equal(s.n, 0);
}

static void
test_a_nack_reports_only_a_dead_letter(void **state)
{
    fixture *f = *state;
    hp_status st;
    seen s = { 0 };
    bool all;
    store_draft d = draft("emails");
    d.max_attempts = 2;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    store_nack_req req = { .id = id, .error = HP_S("boom") };
    store_nack_res res;
    req.token = must_claim(f, "emails", NOW_MS, LEASE_MS);
    store_txn *t = begin(f);
    hp_code code = store_nack(t, SCOPE, &req, NOW_MS, NULL, &res, &st);
    assert_ok(code, st);
    store_txn_take_settled(t, on_settled, &s, &all);
    commit(t);
    assert_int_equal(s.n, 0); /* a retry: not settled */
    req.token = must_claim(f, "emails", NOW_MS + 2 * HOUR_MS, LEASE_MS);
    t = begin(f);

    code = store_nack(t, SCOPE, &req, NOW_MS + 2 * HOUR_MS, NULL, &res, &st);

    assert_ok(code, st);
    store_txn_take_settled(t, on_settled, &s, &all);
    commit(t);
    assert_true(res.dead);
    assert_int_equal(s.n, 1);
    assert_id_equal(s.last, id);
}

static void
test_a_lease_that_runs_out_of_attempts_reports_its_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    seen s = { 0 };
    bool all;
    store_step_res res;
    store_draft d = draft("emails");
    d.max_attempts = 1;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    (void)must_claim(f, "emails", NOW_MS, LEASE_MS); /* its lease runs out */
    store_txn *t = begin(f);

    hp_code code = store_maint_step(t, STORE_STEP_EXPIRE_LEASES,
                                    NOW_MS + 2 * LEASE_MS, 100, &res, &st);

    assert_ok(code, st);
    store_txn_take_settled(t, on_settled, &s, &all);
    commit(t);
    assert_int_equal(s.n, 1);
    assert_id_equal(s.last, id);
}

static void
test_more_settles_than_notes_report_any(void **state)
{
    fixture *f = *state;
    hp_status st;
    seen s = { 0 };
    bool all;
    static store_ack_item items[MANY];
    for (size_t i = 0; i < MANY; i++) {
        items[i].id = must_enqueue(f, "bulk", NOW_MS);
        items[i].token = must_claim(f, "bulk", NOW_MS, 60000);
    }
    store_txn *t = begin(f);
    hp_code code = store_ack(t, SCOPE, items, 1000, NULL, 0, NOW_MS, NULL, &st);
    assert_ok(code, st);

    code = store_ack(t, SCOPE, items + 1000, MANY - 1000, NULL, 0, NOW_MS, NULL,
                     &st);

    assert_ok(code, st);
    store_txn_take_settled(t, on_settled, &s, &all);
    assert_true(all);
    assert_int_equal(s.n, STORE_MAX_SETTLE_NOTES);
    store_txn_take_settled(t, on_settled, &s, &all);
    assert_false(all); /* said once */
    commit(t);
}

int
main(void)
{
#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_an_ack_reports_its_message_once),
        T(test_a_repeated_ack_reports_nothing),
        T(test_a_nack_reports_only_a_dead_letter),
        T(test_a_lease_that_runs_out_of_attempts_reports_its_message),
        T(test_more_settles_than_notes_report_any),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
