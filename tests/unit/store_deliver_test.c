/*
 * store_deliver_test.c - the delivery settings of lanes (store/webhooks.c):
 * what is kept, what is refused with which reason, how the delivery part
 * finds every delivery lane, that a schema-2 data dir opens as 3, that a
 * version-1 delivery record (schema 4) reads with the default callback
 * timeout, and that the callback key is made once and kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "store/record.h"
#include "store_fixture.h"
#include "store_raw.h"

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
test_the_events_lane_takes_no_deliver_url(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_delivery d = delivery("http://h/", "k");

    hp_code code = set_in(f, SCOPE, STORE_EVENTS_LANE, &d, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING);
    assert_string_equal(must_delivery(f, SCOPE, STORE_EVENTS_LANE).url, "");
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

static void
test_the_callback_timeout_is_kept_and_checked_at_its_limits(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_delivery d = delivery("http://h/", "k");
    d.callback_timeout_ms = STORE_CALLBACK_TIMEOUT_MIN_MS;
    assert_ok(set_in(f, SCOPE, "emails", &d, &st), st);
    assert_int_equal(must_delivery(f, SCOPE, "emails").callback_timeout_ms,
                     STORE_CALLBACK_TIMEOUT_MIN_MS);
    d.callback_timeout_ms = STORE_CALLBACK_TIMEOUT_MAX_MS;
    assert_ok(set_in(f, SCOPE, "emails", &d, &st), st);
    assert_int_equal(must_delivery(f, SCOPE, "emails").callback_timeout_ms,
                     STORE_CALLBACK_TIMEOUT_MAX_MS);

    d.callback_timeout_ms = STORE_CALLBACK_TIMEOUT_MIN_MS - 1;
    expect_refused(f, &d, HP_R_BAD_SETTING);
    d.callback_timeout_ms = STORE_CALLBACK_TIMEOUT_MAX_MS + 1;
    expect_refused(f, &d, HP_R_BAD_SETTING);
}

/* A record as schema 4 wrote it (version 1, url at offset 20). */
static void
test_a_version_1_record_reads_with_the_default_callback_timeout(void **state)
{
    fixture *f = *state;
    const char url[] = "http://h/x", id[] = "k";
    uint8_t rec[20 + sizeof(url) - 1 + sizeof(id) - 1];
    memset(rec, 0, sizeof(rec));
    rec[8] = 1;
    rec[9] = (uint8_t)(sizeof(id) - 1);
    hp_put_u16(rec + 10, (uint16_t)(sizeof(url) - 1));
    hp_put_u32(rec + 12, 3);
    hp_put_u32(rec + 16, 2500);
    memcpy(rec + 20, url, sizeof(url) - 1);
    memcpy(rec + 20 + sizeof(url) - 1, id, sizeof(id) - 1);
    record_seal(rec, sizeof(rec));
    key k;
    key_lane(&k, SCOPE, HP_S("emails"));
    fixture_close(f);
    raw_put(f->dir, "deliver", false, k.b, k.len, rec, sizeof(rec));
    hp_status st;
    assert_ok(fixture_open(f, &st), st);

    store_delivery d = must_delivery(f, SCOPE, "emails");

    assert_string_equal(d.url, url);
    assert_string_equal(d.secret_id, id);
    assert_int_equal(d.concurrency, 3);
    assert_int_equal(d.timeout_ms, 2500);
    assert_int_equal(d.callback_timeout_ms, STORE_CALLBACK_TIMEOUT_DEFAULT_MS);
}

/* ---- the callback key ---------------------------------------------------- */

typedef struct key_op {
    const uint8_t *fresh;
    uint8_t out[STORE_CALLBACK_KEY_LEN];
} key_op;

static hp_code
run_key(store_txn *t, void *arg, hp_status *st)
{
    key_op *o = arg;
    return store_callback_key(t, o->fresh, o->out, st);
}

static void
test_the_callback_key_is_made_once_and_kept_across_a_reopen(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint8_t first[STORE_CALLBACK_KEY_LEN], second[STORE_CALLBACK_KEY_LEN];
    memset(first, 0x11, sizeof(first));
    memset(second, 0x22, sizeof(second));
    key_op a = { first, { 0 } }, b = { second, { 0 } };
    assert_ok(store_run(f->s, true, run_key, &a, &st), st);
    fixture_reopen(f);

    hp_code code = store_run(f->s, true, run_key, &b, &st);

    assert_ok(code, st);
    assert_memory_equal(a.out, first, sizeof(first));
    assert_memory_equal(b.out, first, sizeof(first));
}

/* ---- signing secrets ----------------------------------------------------- */

typedef struct secret_op {
    hp_str scope, id;
    const void *value;
    size_t len;
    bool rotate;
    uint32_t active;
    store_secret *out;
} secret_op;

static hp_code
run_secret_set(store_txn *t, void *arg, hp_status *st)
{
    secret_op *o = arg;
    return store_secret_set(t, o->scope, o->id, o->value, o->len, o->rotate,
                            &o->active, st);
}

static hp_code
run_secret_get(store_txn *t, void *arg, hp_status *st)
{
    secret_op *o = arg;
    return store_secret_get(t, o->scope, o->id, o->out, st);
}

static hp_code
secret_set(fixture *f, const char *id, const char *value, bool rotate,
           uint32_t *active, hp_status *st)
{
    secret_op o = {
        SCOPE, hp_str_c(id), value, strlen(value), rotate, 0, NULL
    };
    hp_status_clear(st);
    hp_code code = store_run(f->s, true, run_secret_set, &o, st);
    *active = o.active;
    return code;
}

static hp_code
secret_get(fixture *f, hp_str scope, const char *id, store_secret *out,
           hp_status *st)
{
    secret_op o = { scope, hp_str_c(id), NULL, 0, false, 0, out };
    hp_status_clear(st);
    return store_run(f->s, false, run_secret_get, &o, st);
}

static void
assert_value(const store_secret *s, size_t i, const char *want)
{
    assert_int_equal(s->len[i], strlen(want));
    assert_memory_equal(s->value[i], want, strlen(want));
}

#define K1 "0123456789abcdef-one"
#define K2 "0123456789abcdef-two"
#define K3 "0123456789abcdef-three"

static void
test_a_set_secret_has_one_active_value(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint32_t active;
    store_secret s;
    assert_ok(secret_set(f, "hook", K1, false, &active, &st), st);

    hp_code code = secret_get(f, SCOPE, "hook", &s, &st);

    assert_ok(code, st);
    assert_int_equal(active, 1);
    assert_int_equal(s.n, 1);
    assert_value(&s, 0, K1);
}

static void
test_rotate_keeps_the_previous_value_and_drops_an_older_one(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint32_t active;
    store_secret s;
    assert_ok(secret_set(f, "hook", K1, false, &active, &st), st);
    assert_ok(secret_set(f, "hook", K2, true, &active, &st), st);
    assert_int_equal(active, 2);

    assert_ok(secret_set(f, "hook", K3, true, &active, &st), st);
    hp_code code = secret_get(f, SCOPE, "hook", &s, &st);

    assert_ok(code, st);
    assert_int_equal(s.n, 2);
    assert_value(&s, 0, K3);
    assert_value(&s, 1, K2);
}

static void
test_a_repeated_rotate_keeps_the_older_value(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint32_t active;
    store_secret s;
    assert_ok(secret_set(f, "hook", K1, false, &active, &st), st);
    assert_ok(secret_set(f, "hook", K2, true, &active, &st), st);

    assert_ok(secret_set(f, "hook", K2, true, &active, &st), st);

    assert_ok(secret_get(f, SCOPE, "hook", &s, &st), st);
    assert_value(&s, 0, K2);
    assert_value(&s, 1, K1);
}

static void
test_set_after_rotate_leaves_one_value(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint32_t active;
    store_secret s;
    assert_ok(secret_set(f, "hook", K1, false, &active, &st), st);
    assert_ok(secret_set(f, "hook", K2, true, &active, &st), st);

    assert_ok(secret_set(f, "hook", K3, false, &active, &st), st);

    assert_ok(secret_get(f, SCOPE, "hook", &s, &st), st);
    assert_int_equal(s.n, 1);
    assert_value(&s, 0, K3);
}

static void
test_rotating_an_unknown_secret_is_no_secret(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint32_t active;

    hp_code code = secret_set(f, "hook", K1, true, &active, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_SECRET);
}

static void
test_secrets_belong_to_their_scope(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint32_t active;
    store_secret s;
    assert_ok(secret_set(f, "hook", K1, false, &active, &st), st);

    hp_code code = secret_get(f, SCOPE_A, "hook", &s, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_SECRET);
}

static void
test_secret_length_is_checked_at_16_and_1024_bytes(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint32_t active;
    char v[STORE_SECRET_MAX + 2];
    memset(v, 'k', sizeof(v));
    v[STORE_SECRET_MIN - 1] = '\0';
    assert_int_equal(secret_set(f, "hook", v, false, &active, &st),
                     HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_SECRET);
    assert_null(strstr(st.msg, "kkkk")); /* never quoted */
    v[STORE_SECRET_MIN - 1] = 'k';
    v[STORE_SECRET_MIN] = '\0';
    assert_ok(secret_set(f, "hook", v, false, &active, &st), st);
    memset(v, 'k', sizeof(v));
    v[STORE_SECRET_MAX] = '\0';
    assert_ok(secret_set(f, "hook", v, false, &active, &st), st);

    v[STORE_SECRET_MAX] = 'k';
    v[STORE_SECRET_MAX + 1] = '\0';
    hp_code code = secret_set(f, "hook", v, false, &active, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_SECRET);
}

/* ---- schema 2 -> 3 ------------------------------------------------------- */

static void
test_a_schema_2_store_opens_as_3_with_its_messages(void **state)
{
    fixture *f = *state;
    hp_status st;
    must_enqueue(f, "emails", NOW_MS);
    fixture_close(f);
    uint8_t two[4] = { 0, 0, 0, 2 };
    raw_put(f->dir, "meta", false, "schema", 6, two, sizeof(two));

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
        T(test_the_callback_timeout_is_kept_and_checked_at_its_limits),
        T(test_a_version_1_record_reads_with_the_default_callback_timeout),
        T(test_the_callback_key_is_made_once_and_kept_across_a_reopen),
        T(test_a_set_secret_has_one_active_value),
        T(test_rotate_keeps_the_previous_value_and_drops_an_older_one),
        T(test_a_repeated_rotate_keeps_the_older_value),
        T(test_set_after_rotate_leaves_one_value),
        T(test_rotating_an_unknown_secret_is_no_secret),
        T(test_secrets_belong_to_their_scope),
        T(test_secret_length_is_checked_at_16_and_1024_bytes),
        T(test_a_schema_2_store_opens_as_3_with_its_messages),
        T(test_the_events_lane_takes_no_deliver_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
