/*
 * store_disk_test.c - what the store does with the files it finds: the
 * schema check, foreign environments, damaged records, a full map and a
 * writable map on a small disk.
 * Faults are caused, not faked: the tests edit the LMDB environment with
 * the raw LMDB API while the store is closed, and fill a tiny map.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "store/keys.h"
#include "store_fixture.h"
#include "store_raw.h"

/* ---- raw LMDB and file helpers ------------------------------------------ */

static MDB_env *
raw_open(const char *dir)
{
    return fixture_raw_open(dir);
}

/* Reads the whole file at dir/name; the caller frees. */
static uint8_t *
read_whole(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    assert_true(n >= 0);
    assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void
assert_same_file(const uint8_t *before, size_t before_len, const char *dir,
                 const char *name)
{
    size_t after_len;
    uint8_t *after = read_whole(dir, name, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    free(after);
}

/* ---- schema and foreign files ------------------------------------------- */

static void
test_open_writes_schema_version_to_meta(void **state)
{
    fixture *f = *state;
    fixture_close(f);
    MDB_env *env = raw_open(f->dir);
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    char name[] = "schema";
    MDB_val mkey = { 6, name }, val;

    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    int rc = mdb_get(txn, dbi, &mkey, &val);

    assert_int_equal(rc, 0);
    assert_int_equal(val.mv_size, 4);
    const uint8_t want[4] = { 0, 0, 0, STORE_SCHEMA_VERSION };
    assert_memory_equal(val.mv_data, want, 4);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

static void
test_open_refuses_a_newer_schema(void **state)
{
    fixture *f = *state;
    hp_status st;
    fixture_close(f);
    const uint8_t newer[4] = { 0, 0, 0, STORE_SCHEMA_VERSION + 1 };
    raw_put(f->dir, "meta", false, "schema", 6, newer, sizeof(newer));

    hp_code code = fixture_open(f, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_SCHEMA_TOO_NEW);
    assert_null(f->s);
}

static void
test_open_of_a_newer_schema_leaves_the_file_unchanged(void **state)
{
    fixture *f = *state;
    hp_status st;
    (void)must_enqueue(f, "emails", NOW_MS);
    fixture_close(f);
    const uint8_t newer[4] = { 0, 0, 0, STORE_SCHEMA_VERSION + 1 };
    raw_put(f->dir, "meta", false, "schema", 6, newer, sizeof(newer));
    size_t len;
    uint8_t *before = read_whole(f->dir, "data.mdb", &len);

    hp_code code = fixture_open(f, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_same_file(before, len, f->dir, "data.mdb");
    free(before);
}

static void
test_open_refuses_an_lmdb_env_that_is_not_a_store(void **state)
{
    fixture *f = *state;
    hp_status st;
    char dir[sizeof(f->dir) + 16];
    snprintf(dir, sizeof(dir), "%s/foreign", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    raw_put(dir, "things", true, "k", 1, "v", 1);
    size_t len;
    uint8_t *before = read_whole(dir, "data.mdb", &len);
    store_opts o = f->opts;
    o.dir = dir;
    store *s = NULL;

    hp_code code = store_open(&o, &s, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE);
    assert_null(s);
    assert_same_file(before, len, dir, "data.mdb");
    free(before);
}

static void
test_open_refuses_a_data_file_that_is_not_lmdb(void **state)
{
    fixture *f = *state;
    hp_status st;
    char dir[sizeof(f->dir) + 16], path[sizeof(dir) + 16];
    snprintf(dir, sizeof(dir), "%s/junk", f->dir);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    uint8_t junk[8192];
    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (uint8_t)(i * 31u + 1u);
    }
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
    fclose(fp);
    store_opts o = f->opts;
    o.dir = dir;
    store *s = NULL;

    hp_code code = store_open(&o, &s, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE);
    assert_null(s);
    assert_same_file(junk, sizeof(junk), dir, "data.mdb");
}

/* ---- damaged records ------------------------------------------------------
 */

static hp_id
enqueue_then_corrupt(fixture *f, long off)
{
    store_draft d = draft("emails");
    d.payload = "hello world";
    d.payload_len = 11;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    fixture_close(f);
    key k;
    key_message(&k, SCOPE, &id);
    raw_flip(f->dir, "messages", &k, off);
    fixture_reopen(f);
    return id;
}

static void
test_get_of_record_with_flipped_payload_byte_is_data_loss(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_message m;
    hp_id id = enqueue_then_corrupt(f, -1); /* the payload ends the record */

    hp_code code = get(f, id, NOW_MS, &m, &st);

    assert_int_equal(code, HP_DATA_LOSS);
    assert_status(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD);
}

static void
test_claim_of_record_with_flipped_payload_byte_is_data_loss(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_claimed out;
    (void)enqueue_then_corrupt(f, -1);
    store_claim_req req = claim_req("emails", 1, LEASE_MS);

    hp_code code = claim(f, &req, NOW_MS, &out, &st);

    assert_int_equal(code, HP_DATA_LOSS);
    assert_status(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD);
}

static void
test_get_of_record_with_flipped_state_byte_is_data_loss(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_message m;
    hp_id id = enqueue_then_corrupt(f, 9); /* record.h: offset 9 = state */

    hp_code code = get(f, id, NOW_MS, &m, &st);

    assert_int_equal(code, HP_DATA_LOSS);
    assert_status(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD);
}

static void
test_damaged_record_does_not_hide_other_messages_from_get(void **state)
{
    fixture *f = *state;
    hp_id good = must_enqueue(f, "other", NOW_MS);
    (void)enqueue_then_corrupt(f, -1);

    store_message m = must_get(f, good, NOW_MS);

    assert_int_equal(m.state, STORE_STATE_PENDING);
}

/* ---- a full map -------------------------------------------------------------
 */

#define BIG_LEN (64u * 1024u)

static void
tweak_tiny_map(fixture *f, store_opts *o)
{
    (void)f;
    o->map_size = (size_t)256 << 10;
    o->max_map_size = (size_t)1 << 20;
}

static int
setup_tiny_map(void **state)
{
    return fixture_setup_with(state, tweak_tiny_map);
}

static uint8_t big_payload[BIG_LEN];

static store_draft
big_draft(const char *lane)
{
    for (size_t i = 0; i < BIG_LEN; i++) {
        big_payload[i] = (uint8_t)(i * 7u + 3u);
    }
    store_draft d = draft(lane);
    d.payload = big_payload;
    d.payload_len = BIG_LEN;
    return d;
}

/* Enqueues 64 KiB messages into lane until the store refuses one; returns
 * how many were accepted and leaves the refusal in *code and *st. */
static int
fill(fixture *f, const char *lane, hp_id *first, hp_code *code, hp_status *st)
{
    store_draft d = big_draft(lane);
    store_enqueued out;
    memset(first, 0, sizeof(*first));
    for (int i = 0; i < 64; i++) {
        *code = enqueue(f, &d, 1, NOW_MS, &out, st);
        if (*code != HP_OK) {
            return i;
        }
        if (i == 0) {
            *first = out.id;
        }
    }
    return 64;
}

static void
test_enqueue_that_grew_the_map_leaves_the_status_untouched(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_info before, after;
    store_get_info(f->s, &before);
    store_draft d = big_draft("fill");
    store_enqueued out;
    hp_code code = HP_OK;

    for (int i = 0; i < 8 && code == HP_OK; i++) {
        code = enqueue(f, &d, 1, NOW_MS, &out, &st);
        store_get_info(f->s, &after);
        if (after.map_size > before.map_size) {
            break; /* this enqueue grew the map and was redone */
        }
    }

    assert_ok(code, st);
    assert_true(after.map_size > before.map_size);
    /* STYLE.md 3: the status is untouched on HP_OK. */
    assert_status(st, HP_OK, "");
}

static void
test_enqueue_into_a_full_map_is_map_full(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_code code;
    hp_id first;

    int n = fill(f, "fill", &first, &code, &st);

    assert_true(n >= 2);
    assert_true(n < 64); /* 64 * 64 KiB cannot fit a 1 MiB map */
    assert_int_equal(code, HP_RESOURCE_EXHAUSTED);
    assert_status(st, HP_RESOURCE_EXHAUSTED, HP_R_MAP_FULL);
    store_info info;
    store_get_info(f->s, &info);
    assert_int_equal(info.map_size, (size_t)1 << 20);
}

static hp_code
run_probe(store_txn *t, void *arg, hp_status *st)
{
    (void)arg;
    return store_probe_write(t, NOW_MS, st);
}

static void
test_probe_write_writes_a_page(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_info before, after;

    store_get_info(f->s, &before);
    assert_ok(store_run(f->s, true, run_probe, NULL, &st), st);
    store_get_info(f->s, &after);

    assert_true(after.last_txn_id > before.last_txn_id); /* it committed */
}

/* A map at its ceiling with more kept back than is free: the state in
 * which enqueues are refused outright. */
static void
tweak_reserve_all(fixture *f, store_opts *o)
{
    (void)f;
    o->map_size = (size_t)1 << 20;
    o->max_map_size = (size_t)1 << 20;
    o->full_reserve = (size_t)1 << 20;
}

static int
setup_reserve_all(void **state)
{
    return fixture_setup_with(state, tweak_reserve_all);
}

static void
test_probe_write_is_refused_when_enqueues_are(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d = draft("any");
    store_enqueued out;

    hp_code code = enqueue(f, &d, 1, NOW_MS, &out, &st);
    assert_status(st, HP_RESOURCE_EXHAUSTED, HP_R_MAP_FULL);
    hp_status_clear(&st);
    code = store_run(f->s, true, run_probe, NULL, &st);

    assert_int_equal(code, HP_RESOURCE_EXHAUSTED);
    assert_status(st, HP_RESOURCE_EXHAUSTED, HP_R_MAP_FULL);
}

static void
test_full_map_stays_readable(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_code code;
    hp_id first;
    int n = fill(f, "fill", &first, &code, &st);
    assert_int_equal(code, HP_RESOURCE_EXHAUSTED);
    assert_true(n >= 1);

    store_message m = must_get(f, first, NOW_MS);

    assert_int_equal(m.payload_len, BIG_LEN);
    assert_memory_equal(m.payload, big_payload, BIG_LEN);
    assert_int_equal(must_stats(f, "fill", NOW_MS).pending, (uint64_t)n);
}

static void
test_purging_dead_letters_makes_a_full_map_writable_again(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_code code;
    hp_id first;
    store_draft victim = big_draft("victims");
    victim.max_attempts = 1;
    for (int i = 0; i < 4; i++) {
        hp_id id = must_enqueue_draft(f, &victim, NOW_MS);
        store_token tok = must_claim(f, "victims", NOW_MS, LEASE_MS);
        assert_true(must_nack(f, id, tok, 0, NOW_MS).dead);
    }
    (void)fill(f, "fill", &first, &code, &st);
    assert_status(st, HP_RESOURCE_EXHAUSTED, HP_R_MAP_FULL);
    store_dead_sel sel = { HP_S("victims"), NULL, 0, 10 };
    store_dead_res res;

    code = dead_purge_in(f, SCOPE, &sel, &res, &st);
    assert_ok(code, st);
    assert_int_equal(res.count, 4);
    /* LMDB reuses pages freed by a commit only after the next commit. */
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    must_lane_set(f, "fill", &ls);
    store_draft d = big_draft("fill");
    store_enqueued out;
    code = enqueue(f, &d, 1, NOW_MS, &out, &st);

    assert_ok(code, st);
}

static void
test_pruning_delivered_messages_makes_a_full_map_writable_again(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_code code;
    hp_id first;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.retention_ms = SEC_MS;
    must_lane_set(f, "victims", &ls);
    store_draft victim = big_draft("victims");
    for (int i = 0; i < 4; i++) {
        hp_id id = must_enqueue_draft(f, &victim, NOW_MS);
        store_token tok = must_claim(f, "victims", NOW_MS, LEASE_MS);
        must_ack(f, id, tok, NOW_MS);
    }
    (void)fill(f, "fill", &first, &code, &st);
    assert_status(st, HP_RESOURCE_EXHAUSTED, HP_R_MAP_FULL);
    store_step_res res;

    code = prune_delivered(f, NOW_MS + HOUR_MS, 10, &res, &st);
    assert_ok(code, st);
    assert_int_equal(res.done, 4);
    /* LMDB reuses pages freed by a commit only after the next commit. */
    store_lane_settings_default(&ls);
    must_lane_set(f, "fill", &ls);
    store_draft d = big_draft("fill");
    store_enqueued out;
    code = enqueue(f, &d, 1, NOW_MS + HOUR_MS, &out, &st);

    assert_ok(code, st);
}

/* Page-sized messages until the store refuses one, then claims and acks
 * of a few of them: the reserve kept at the ceiling is what they use. */
static void
test_at_the_ceiling_claims_and_acks_still_fit_after_enqueues_stop(void **state)
{
    fixture *f = *state;
    static uint8_t page_payload[3000];
    store_draft d = draft("fill");
    d.payload = page_payload;
    d.payload_len = sizeof(page_payload);
    store_enqueued out;
    hp_status st;
    hp_code code = HP_OK;
    int n = 0;
    while (code == HP_OK && n < 1000) {
        code = enqueue(f, &d, 1, NOW_MS, &out, &st);
        n += code == HP_OK;
    }
    assert_status(st, HP_RESOURCE_EXHAUSTED, HP_R_MAP_FULL);
    assert_true(n > 10);

    for (int round = 0; round < 8; round++) {
        store_claim_req req = claim_req("fill", 4, LEASE_MS);
        store_claimed got;
        code = claim(f, &req, NOW_MS, &got, &st);
        assert_ok(code, st);
        assert_int_equal(got.n, 4);
        for (size_t i = 0; i < got.n; i++) {
            must_ack(f, got.msgs[i].id, got.msgs[i].token, NOW_MS);
        }
    }
}

/* ---- a writable map on a small disk --------------------------------------
 *
 * With STORE_SYNC_NONE the map is writable and grows only into disk
 * reserved for it. A child under a 3.5 MiB file-size limit (fallocate
 * past it is EFBIG, which the store takes as a full disk) opens a 2 MiB map
 * and enqueues until refused: the doubling to 4 MiB does not fit, so the
 * map grows by the 1 MiB step that does, and the next growth, which fits in
 * no step of 1 MiB or more, is DISK_FULL; nothing kills the process.
 */

static void
tweak_writable(fixture *f, store_opts *o)
{
    (void)f;
    o->sync = STORE_SYNC_NONE;
    o->map_size = (size_t)2 << 20;
    o->max_map_size = (size_t)64 << 20;
}

static int
setup_writable(void **state)
{
    return fixture_setup_with(state, tweak_writable);
}

static void
child_grow_on_a_small_disk(fixture *f, void *arg)
{
    static uint8_t payload[60 << 10];
    struct rlimit rl = { 3584 << 10, 3584 << 10 };
    hp_status st;
    store_info info;
    store_enqueued out;
    hp_code code = HP_OK;

    (void)arg;
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0 || fixture_open(f, &st) != HP_OK) {
        _exit(2);
    }
    store_get_info(f->s, &info);
    if (!info.writemap || info.map_size != (size_t)2 << 20) {
        _exit(3);
    }
    store_draft d = draft("small");
    d.payload = payload;
    d.payload_len = sizeof(payload);
    for (int i = 0; i < 200 && code == HP_OK; i++) {
        code = enqueue(f, &d, 1, NOW_MS, &out, &st);
    }
    if (code != HP_RESOURCE_EXHAUSTED || strcmp(st.reason, HP_R_DISK_FULL)) {
        _exit(4);
    }
    store_get_info(f->s, &info);
    if (info.map_size != (size_t)3 << 20 || !info.writemap) {
        _exit(5);
    }
    _exit(0);
}

static void
test_a_writable_map_grows_by_what_the_disk_can_reserve(void **state)
{
    fixture_in_child(*state, child_grow_on_a_small_disk, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_writes_schema_version_to_meta,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_a_newer_schema,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_open_of_a_newer_schema_leaves_the_file_unchanged,
            fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_open_refuses_an_lmdb_env_that_is_not_a_store, fixture_setup,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_open_refuses_a_data_file_that_is_not_lmdb, fixture_setup,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_get_of_record_with_flipped_payload_byte_is_data_loss,
            fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_claim_of_record_with_flipped_payload_byte_is_data_loss,
            fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_get_of_record_with_flipped_state_byte_is_data_loss,
            fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_damaged_record_does_not_hide_other_messages_from_get,
            fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_enqueue_that_grew_the_map_leaves_the_status_untouched,
            setup_tiny_map, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_enqueue_into_a_full_map_is_map_full, setup_tiny_map,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(test_probe_write_writes_a_page,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_probe_write_is_refused_when_enqueues_are, setup_reserve_all,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(test_full_map_stays_readable,
                                        setup_tiny_map, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_purging_dead_letters_makes_a_full_map_writable_again,
            setup_tiny_map, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_pruning_delivered_messages_makes_a_full_map_writable_again,
            setup_tiny_map, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_at_the_ceiling_claims_and_acks_still_fit_after_enqueues_stop,
            setup_tiny_map, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_writable_map_grows_by_what_the_disk_can_reserve,
            setup_writable, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
