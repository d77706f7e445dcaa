/*
 * store_deliver_test.c - the delivery settings of lanes (store/webhooks.c):
 * what is kept, what is refused with which reason, how the delivery part
 * finds every delivery lane, and that a schema-2 data dir opens as 3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "store_fixture.h"

typedef struct op {
    hp_str scope, lane;
    const store_delivery *in;
    store_delivery *out;
} op;

static hp_code
run_set(store_txn *t, void *arg, hp_status *st)
{
    op *o = arg;
    return store_delivery_set(t, o->scope, o->lane, o->in, st);
}

static hp_code
run_get(store_txn *t, void *arg, hp_status *st)
{
    op *o = arg;
    return store_delivery_get(t, o->scope, o->lane, o->out, st);
}

static hp_code
set_in(fixture *f, hp_str scope, const char *lane, const store_delivery *d,
       hp_status *st)
{
    op o = { scope, hp_str_c(lane), d, NULL };
    hp_status_clear(st);
    return store_run(f->s, true, run_set, &o, st);
}

static store_delivery
must_delivery(fixture *f, hp_str scope, const char *lane)
{
    store_delivery d;
    hp_status st;
    op o = { scope, hp_str_c(lane), NULL, &d };
    hp_status_clear(&st);
    hp_code code = store_run(f->s, false, run_get, &o, &st);
    assert_ok(code, st);
    return d;
}

static store_delivery
delivery(const char *url, const char *secret_id)
{
    store_delivery d;
    store_delivery_default(&d);
    snprintf(d.url, sizeof(d.url), "%s", url);
    snprintf(d.secret_id, sizeof(d.secret_id), "%s", secret_id);
    return d;
}

typedef struct seen {
    char names[8][2 * HP_NAME_MAX + 2];
    size_t n;
} seen;

static void
on_lane(void *arg, hp_str scope, hp_str lane, const store_delivery *d)
{
    seen *s = arg;
    (void)d;
    assert_true(s->n < 8);
    snprintf(s->names[s->n++], sizeof(s->names[0]), "%.*s/%.*s", (int)scope.len,
             scope.p, (int)lane.len, lane.p);
}

static hp_code
run_each(store_txn *t, void *arg, hp_status *st)
{
    return store_delivery_each(t, on_lane, arg, st);
}

static void
test_a_lane_without_delivery_reads_the_defaults(void **state)
{
    fixture *f = *state;

    store_delivery d = must_delivery(f, SCOPE, "emails");

    assert_string_equal(d.url, "");
    assert_int_equal(d.concurrency, STORE_DELIVER_CONCURRENCY_DEFAULT);
    assert_int_equal(d.timeout_ms, STORE_DELIVER_TIMEOUT_DEFAULT_MS);
}

static void
test_delivery_settings_are_kept_across_a_reopen(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_delivery d = delivery("https://hooks.example.com/in?x=1", "hook-1");
    d.concurrency = 7;
    d.timeout_ms = 2500;
    hp_code code = set_in(f, SCOPE, "emails", &d, &st);
    assert_ok(code, st);

    fixture_reopen(f);
    store_delivery got = must_delivery(f, SCOPE, "emails");

    assert_string_equal(got.url, "https://hooks.example.com/in?x=1");
    assert_string_equal(got.secret_id, "hook-1");
    assert_int_equal(got.concurrency, 7);
    assert_int_equal(got.timeout_ms, 2500);
}

static void
test_an_empty_url_removes_the_delivery(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_delivery d = delivery("http://h/", "k");
    hp_code code = set_in(f, SCOPE, "emails", &d, &st);
    assert_ok(code, st);

    store_delivery off = delivery("", "");
    code = set_in(f, SCOPE, "emails", &off, &st);

    assert_ok(code, st);
    assert_string_equal(must_delivery(f, SCOPE, "emails").url, "");
}

static void
test_each_lists_only_delivery_lanes_of_every_scope(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_delivery d = delivery("http://h/", "k");
    store_delivery off = delivery("", "");
    assert_ok(set_in(f, SCOPE_A, "a1", &d, &st), st);
    assert_ok(set_in(f, SCOPE_B, "b1", &d, &st), st);
    assert_ok(set_in(f, SCOPE_B, "b2", &off, &st), st);
    seen s = { .n = 0 };

    hp_code code = store_run(f->s, false, run_each, &s, &st);

    assert_ok(code, st);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.names[0], "acme/a1");
    assert_string_equal(s.names[1], "bravo/b1");
}

static void
expect_refused(fixture *f, const store_delivery *d, const char *reason)
{
    hp_status st;
    hp_code code = set_in(f, SCOPE, "emails", d, &st);
    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, reason);
}

static void
test_urls_hopperd_will_not_post_to_are_bad_deliver_url(void **state)
{
    fixture *f = *state;
    const char *bad[] = {
        "ftp://h/",           "h/path",       "http://",       "http:///path",
        "https://user:pw@h/", "http://h/a b", "http://h/\x7f",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        store_delivery d = delivery(bad[i], "k");
        expect_refused(f, &d, HP_R_BAD_DELIVER_URL);
    }
}

/* 2049 bytes cannot reach the store (store_delivery holds 2048): the
 * broker refuses them while copying from the request (cli_test.sh). */
static void
test_a_url_of_2048_bytes_is_taken(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_delivery d = delivery("http://h/", "k");
    memset(d.url + 9, 'a', STORE_DELIVER_URL_MAX - 9);
    d.url[STORE_DELIVER_URL_MAX] = '\0';

    hp_code code = set_in(f, SCOPE, "emails", &d, &st);

    assert_ok(code, st);
    assert_int_equal(strlen(must_delivery(f, SCOPE, "emails").url), 2048);
}

static void
test_a_delivery_lane_needs_a_valid_secret_id(void **state)
{
    fixture *f = *state;
    store_delivery none = delivery("http://h/", "");
    store_delivery bad = delivery("http://h/", "no spaces");

    expect_refused(f, &none, HP_R_BAD_SETTING);
    expect_refused(f, &bad, HP_R_BAD_NAME);
}

static void
test_concurrency_and_timeout_are_checked_at_their_limits(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_delivery d = delivery("http://h/", "k");
    d.concurrency = STORE_DELIVER_CONCURRENCY_MAX;
    d.timeout_ms = STORE_DELIVER_TIMEOUT_MIN_MS;
    assert_ok(set_in(f, SCOPE, "emails", &d, &st), st);
    d.timeout_ms = STORE_DELIVER_TIMEOUT_MAX_MS;
    assert_ok(set_in(f, SCOPE, "emails", &d, &st), st);

    d.concurrency = STORE_DELIVER_CONCURRENCY_MAX + 1;
    expect_refused(f, &d, HP_R_BAD_SETTING);
    d.concurrency = 0;
    expect_refused(f, &d, HP_R_BAD_SETTING);
    d.concurrency = 1;
    d.timeout_ms = STORE_DELIVER_TIMEOUT_MIN_MS - 1;
    expect_refused(f, &d, HP_R_BAD_SETTING);
    d.timeout_ms = STORE_DELIVER_TIMEOUT_MAX_MS + 1;
    expect_refused(f, &d, HP_R_BAD_SETTING);
}

/* ---- schema 2 -> 3 ------------------------------------------------------- */

static void
put_raw_schema(fixture *f, uint32_t version)
{
    MDB_env *env = fixture_raw_open(f->dir);
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    uint8_t v4[4] = { (uint8_t)(version >> 24), (uint8_t)(version >> 16),
                      (uint8_t)(version >> 8), (uint8_t)version };
    char name[] = "schema";
    MDB_val k = { 6, name }, v = { 4, v4 };
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
test_a_schema_2_store_opens_as_3_with_its_messages(void **state)
{
    fixture *f = *state;
    hp_status st;
    must_enqueue(f, "emails", NOW_MS);
    fixture_close(f);
    put_raw_schema(f, 2);

    hp_code code = fixture_open(f, &st);

    assert_ok(code, st);
    assert_int_equal(claim_count(f, "emails", NOW_MS), 1);
    store_delivery dl = delivery("http://h/", "k");
    assert_ok(set_in(f, SCOPE, "emails", &dl, &st), st);
}

int
main(void)
{
#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_lane_without_delivery_reads_the_defaults),
        T(test_delivery_settings_are_kept_across_a_reopen),
        T(test_an_empty_url_removes_the_delivery),
        T(test_each_lists_only_delivery_lanes_of_every_scope),
        T(test_urls_hopperd_will_not_post_to_are_bad_deliver_url),
        T(test_a_url_of_2048_bytes_is_taken),
        T(test_a_delivery_lane_needs_a_valid_secret_id),
        T(test_concurrency_and_timeout_are_checked_at_their_limits),
        T(test_a_schema_2_store_opens_as_3_with_its_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
