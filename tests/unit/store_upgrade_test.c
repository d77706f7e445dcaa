/*
 * store_upgrade_test.c - opening a data dir written by an older schema.
 * fixtures/store_v1/data.mdb was written by the schema-1 store (see
 * fixtures/make_store_v1.c for how and what it holds); each test copies it
 * into its own directory, opens it with this build and uses it. The
 * resumable upgrade is driven by editing a store with the raw LMDB API
 * while it is closed, as store_disk_test does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "store/keys.h"
#include "store_fixture.h"

#ifndef HOPPER_TEST_FIXTURES
#error "HOPPER_TEST_FIXTURES must name tests/unit/fixtures"
#endif

/* The times make_store_v1.c used. */
#define V1_NOW       NOW_MS
#define V1_LEASE_END (NOW_MS + 100 + 60000)

static void
copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    char buf[8192];
    size_t n;
    assert_non_null(in);
    assert_non_null(out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Replaces the fixture's store with a copy of the schema-1 one, opened. */
static void
open_v1_copy(fixture *f)
{
    char path[512];
    hp_status st;

    fixture_close(f);
    snprintf(path, sizeof(path), "%s/lock.mdb", f->dir);
    assert_int_equal(remove(path), 0);
    snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
    copy_file(HOPPER_TEST_FIXTURES "/store_v1/data.mdb", path);
    hp_code code = fixture_open(f, &st);
    assert_ok(code, st);
}

/* Entries of a named database, read with the store closed. */
static size_t
raw_entries(fixture *f, const char *db)
{
    MDB_env *env = fixture_raw_open(f->dir);
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_stat ms;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    assert_int_equal(mdb_stat(txn, dbi, &ms), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return ms.ms_entries;
}

/* Value of meta key name (found or not), read with the store closed. */
static bool
raw_meta(fixture *f, const char *name, uint8_t *out, size_t *len)
{
    MDB_env *env = fixture_raw_open(f->dir);
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    char kbuf[32];
    size_t klen = strlen(name);
    memcpy(kbuf, name, klen);
    MDB_val k = { klen, kbuf }, v;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0) {
        memcpy(out, v.mv_data, v.mv_size);
        *len = v.mv_size;
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc == 0;
}

static bool
claim_order_le(const store_message *a, const store_message *b)
{
    if (a->priority != b->priority) {
        return a->priority < b->priority;
    }
    if (a->available_at_ms != b->available_at_ms) {
        return a->available_at_ms < b->available_at_ms;
    }
    return hp_id_cmp(&a->id, &b->id) <= 0;
}

static store_claimed
must_claim_many(fixture *f, hp_str scope, const char *lane, uint32_t max,
                uint64_t now)
{
    /* Leases outlive every later claim of a test. */
    store_claim_req req = claim_req(lane, max, (uint32_t)(2 * HOUR_MS));
    store_claimed out;
    hp_status st;
    hp_code code = claim_in(f, scope, &req, now, &out, &st);
    assert_ok(code, st);
    return out;
}

/* ---- a schema-1 data dir ------------------------------------------------- */

static void
test_a_schema_1_store_is_upgraded_on_open(void **state)
{
    fixture *f = *state;
    uint8_t v[KEY_MAX];
    size_t len;

    open_v1_copy(f);
    fixture_close(f);

    assert_true(raw_meta(f, "schema", v, &len));
    assert_int_equal(len, 4);
    const uint8_t want[4] = { 0, 0, 0, STORE_SCHEMA_VERSION };
    assert_memory_equal(v, want, 4);
    assert_false(raw_meta(f, "upgrade", v, &len)); /* finished */
    assert_int_equal(raw_entries(f, "ready"), 15);
    assert_int_equal(raw_entries(f, "lane_ready"), 15);
}

static void
test_any_target_claim_from_an_upgraded_store_keeps_claim_order(void **state)
{
    fixture *f = *state;
    open_v1_copy(f);

    store_claimed due = must_claim_many(f, SCOPE, "emails", 100, V1_NOW + 1000);

    assert_int_equal(due.n, 12); /* the delayed one is not due */
    unsigned seen[4] = { 0 };
    for (size_t i = 0; i < due.n; i++) {
        if (i > 0) {
            assert_true(claim_order_le(&due.msgs[i - 1], &due.msgs[i]));
        }
        const hp_str t = due.msgs[i].target;
        seen[t.len == 0 ? 3 : (unsigned)(t.p[0] - 'a')]++;
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(seen[i], 3); /* a, b, c and none, three each */
    }
    store_claimed later =
        must_claim_many(f, SCOPE, "emails", 100, V1_NOW + HOUR_MS + 12);
    assert_int_equal(later.n, 1);
    assert_str_equal(later.msgs[0].target, "b");
}

static void
test_one_target_claim_from_an_upgraded_store_sees_its_target(void **state)
{
    fixture *f = *state;
    open_v1_copy(f);
    store_claim_req req = claim_req("emails", 100, LEASE_MS);
    req.any_target = false;
    req.target = HP_S("c");
    store_claimed out;
    hp_status st;

    hp_code code = claim(f, &req, V1_NOW + 1000, &out, &st);

    assert_ok(code, st);
    assert_int_equal(out.n, 3);
    for (size_t i = 0; i < out.n; i++) {
        assert_str_equal(out.msgs[i].target, "c");
    }
}

static void
test_an_upgraded_store_keeps_claims_dead_letters_and_scopes(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_list_res dead;
    open_v1_copy(f);

    store_claimed back = must_claim_many(f, SCOPE, "jobs", 10, V1_LEASE_END);
    assert_int_equal(back.n, 1); /* the lease ran out: claimable again */
    assert_int_equal(back.msgs[0].attempts, 2);
    hp_code code =
        dead_list_in(f, SCOPE, "jobs", NULL, 0, 10, false, &dead, &st);
    assert_ok(code, st);
    assert_int_equal(dead.n, 1);
    assert_str_equal(dead.msgs[0].last_error, "boom");
    store_claimed acme = must_claim_many(f, SCOPE_A, "emails", 10, V1_NOW + 5);

    assert_int_equal(acme.n, 2);
    assert_str_equal(acme.msgs[0].target, "x");
    assert_str_equal(acme.msgs[1].target, "y");
    store_lane_stats s = must_stats(f, "emails", V1_NOW + 1000);
    assert_int_equal(s.pending, 12);
    assert_int_equal(s.delayed, 1);
    assert_int_equal(s.oldest_pending_age_ms, 1000);
}

/* ---- the upgrade's steps ------------------------------------------------ */

/* Turns the fixture's (closed) store back into schema 1: lane_ready
 * emptied, schema 1. What a schema-1 build writes, but for the empty
 * lane_ready database, which it would not have. */
static void
make_schema_1(fixture *f)
{
    MDB_env *env = fixture_raw_open(f->dir);
    MDB_txn *txn = NULL;
    MDB_dbi lr, meta;
    uint8_t one[4] = { 0, 0, 0, 1 };
    char name[] = "schema";
    MDB_val k = { 6, name }, v = { 4, one };
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "lane_ready", 0, &lr), 0);
    assert_int_equal(mdb_drop(txn, lr, 0), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Cuts an upgrade short: only the first `keep` lane_ready keys remain and
 * meta `upgrade` names the ready key of the last of them, as if the
 * process died after the step that copied them. */
static void
make_upgrade_cut_short(fixture *f, size_t keep)
{
    MDB_env *env = fixture_raw_open(f->dir);
    MDB_txn *txn = NULL;
    MDB_dbi ready, lr, meta;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t last[KEY_MAX];
    size_t last_len = 0;
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "ready", 0, &ready), 0);
    assert_int_equal(mdb_dbi_open(txn, "lane_ready", 0, &lr), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_drop(txn, lr, 0), 0);
    assert_int_equal(mdb_cursor_open(txn, ready, &cur), 0);
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (size_t i = 0; i < keep; i++) {
        assert_int_equal(rc, 0);
        ready_key rk;
        key lk;
        assert_int_equal(key_parse_ready(k.mv_data, k.mv_size, &rk), 0);
        key_lane_ready(&lk, rk.scope, rk.lane, rk.priority, rk.available_at,
                       &rk.id);
        memcpy(last, k.mv_data, k.mv_size);
        last_len = k.mv_size;
        MDB_val lkv = { lk.len, lk.b }, empty = { 0, last };
        assert_int_equal(mdb_put(txn, lr, &lkv, &empty, 0), 0);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    char name[] = "upgrade";
    MDB_val mk = { 7, name }, mv = { last_len, last };
    assert_int_equal(mdb_put(txn, meta, &mk, &mv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
enqueue_targets(fixture *f, const char *lane, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[24];
        snprintf(name, sizeof(name), "t%zu", i);
        store_draft d = draft(lane);
        d.target = hp_str_c(name);
        (void)must_enqueue_draft(f, &d, NOW_MS + i);
    }
}

static void
test_an_upgrade_cut_short_resumes_on_the_next_open(void **state)
{
    fixture *f = *state;
    enqueue_targets(f, "emails", 5);
    fixture_close(f);
    make_upgrade_cut_short(f, 2);
    assert_int_equal(raw_entries(f, "lane_ready"), 2);

    fixture_reopen(f);
    store_claimed out = must_claim_many(f, SCOPE, "emails", 10, NOW_MS + 10);

    assert_int_equal(out.n, 5);
    for (size_t i = 1; i < out.n; i++) {
        assert_true(claim_order_le(&out.msgs[i - 1], &out.msgs[i]));
    }
    fixture_close(f);
    uint8_t v[KEY_MAX];
    size_t len;
    assert_false(raw_meta(f, "upgrade", v, &len));
}

static void
tweak_big_map(fixture *f, store_opts *o)
{
    (void)f;
    o->max_map_size = (size_t)256 << 20;
}

static int
setup_big(void **state)
{
    return fixture_setup_with(state, tweak_big_map);
}

static void
test_an_upgrade_of_more_keys_than_one_step_copies_them_all(void **state)
{
    fixture *f = *state;

    enum {
        N = 10001,
        BATCH = 1000
    }; /* one step copies 10,000 */

    store_draft d[BATCH];
    store_enqueued out[BATCH];
    hp_status st;
    for (size_t base = 0; base < N; base += BATCH) {
        size_t k = N - base < BATCH ? N - base : BATCH;
        for (size_t i = 0; i < k; i++) {
            d[i] = draft("emails");
        }
        hp_code code = enqueue(f, d, k, NOW_MS, out, &st);
        assert_ok(code, st);
    }
    fixture_close(f);
    make_schema_1(f);
    assert_int_equal(raw_entries(f, "lane_ready"), 0);

    fixture_reopen(f);
    fixture_close(f);

    assert_int_equal(raw_entries(f, "lane_ready"), N);
    fixture_reopen(f);
    assert_int_equal(claim_count(f, "emails", NOW_MS), 1000); /* max_batch */
}

static void
test_open_refuses_schema_0(void **state)
{
    fixture *f = *state;
    hp_status st;
    fixture_close(f);
    MDB_env *env = fixture_raw_open(f->dir);
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    uint8_t zero[4] = { 0, 0, 0, 0 };
    char name[] = "schema";
    MDB_val k = { 6, name }, v = { 4, zero };
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    hp_code code = fixture_open(f, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE);
}

int
main(void)
{
#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_schema_1_store_is_upgraded_on_open),
        T(test_any_target_claim_from_an_upgraded_store_keeps_claim_order),
        T(test_one_target_claim_from_an_upgraded_store_sees_its_target),
        T(test_an_upgraded_store_keeps_claims_dead_letters_and_scopes),
        T(test_an_upgrade_cut_short_resumes_on_the_next_open),
        cmocka_unit_test_setup_teardown(
            test_an_upgrade_of_more_keys_than_one_step_copies_them_all,
            setup_big, fixture_teardown),
        T(test_open_refuses_schema_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
