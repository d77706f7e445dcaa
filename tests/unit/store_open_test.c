/*
 * store_open_test.c - opening and closing a store, options and limits,
 * data surviving a reopen, failed transactions and map growth.
 */
#define _DEFAULT_SOURCE /* syscall() */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/syscall.h>

#include "store_fixture.h"

/* The directories this process fsynced, by inode: fsync is interposed
 * here (the store and LMDB call this one), recorded, then done. */
static ino_t synced_dirs[64];
static size_t n_synced_dirs;

int
fsync(int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode) &&
        n_synced_dirs < sizeof(synced_dirs) / sizeof(synced_dirs[0])) {
        synced_dirs[n_synced_dirs++] = sb.st_ino;
    }
    return (int)syscall(SYS_fsync, fd);
}

static bool
dir_was_synced(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    for (size_t i = 0; i < n_synced_dirs; i++) {
        if (synced_dirs[i] == sb.st_ino) {
            return true;
        }
    }
    return false;
}

static void
test_opts_init_fills_documented_defaults(void **state)
{
    (void)state;
    store_opts o;
    memset(&o, 0x5a, sizeof(o));

    store_opts_init(&o);

    assert_null(o.dir);
    assert_int_equal(o.sync, STORE_SYNC_FULL);
    assert_int_equal(o.map_size, (size_t)64 << 20);
    assert_int_equal(o.max_map_size, (size_t)64 << 30);
    assert_int_equal(o.max_readers, 256);
    assert_ptr_equal(o.rand, hp_rand_openssl);
    assert_null(o.on_ready);
    assert_null(o.dedupe_hash);
    assert_int_equal(o.limits.max_payload, 0);
}

static void
test_open_fills_documented_default_limits(void **state)
{
    fixture *f = *state;

    const store_limits *l = store_get_limits(f->s);

    assert_int_equal(l->max_payload, 1u << 20);
    assert_int_equal(l->max_batch, 1000);
    assert_int_equal(l->max_headers, 64);
    assert_int_equal(l->max_header_bytes, 64u << 10);
    assert_int_equal(l->max_result, 64u << 10);
    assert_int_equal(l->max_error, 4u << 10);
    assert_int_equal(l->max_dedupe_key, 512);
    assert_int_equal(l->max_consumer, 128);
    assert_int_equal(l->min_lease_ms, 100);
    assert_int_equal(l->max_lease_ms, 24u * 3600u * 1000u);
    assert_int_equal(l->max_max_attempts, 1000);
    assert_int_equal(l->max_delay_ms, UINT64_C(366) * DAY_MS);
}

static void
tweak_custom_limits(fixture *f, store_opts *o)
{
    (void)f;
    o->limits.max_payload = 10;
    o->limits.max_batch = 3;
}

static int
setup_custom_limits(void **state)
{
    return fixture_setup_with(state, tweak_custom_limits);
}

static void
test_open_keeps_limits_that_were_set(void **state)
{
    fixture *f = *state;

    const store_limits *l = store_get_limits(f->s);

    assert_int_equal(l->max_payload, 10);
    assert_int_equal(l->max_batch, 3);
    assert_int_equal(l->max_headers, 64); /* unset: the default */
}

static void
test_open_creates_a_missing_data_dir(void **state)
{
    fixture *f = *state;
    hp_status st;
    char dir[sizeof(f->dir) + 16];
    snprintf(dir, sizeof(dir), "%s/new", f->dir);
    store_opts o = f->opts;
    o.dir = dir;
    store *s = NULL;

    hp_code code = store_open(&o, &s, &st);

    assert_ok(code, st);
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    store_close(s);
}

/* LMDB syncs data.mdb but not the directories that name it: after a power
 * cut a new store's file (and a new data dir) could be gone with all it
 * acknowledged, unless the store syncs both directories when it opens. */
static void
test_open_makes_a_new_data_dir_and_its_file_durable(void **state)
{
    fixture *f = *state;
    hp_status st;
    char dir[sizeof(f->dir) + 16];
    snprintf(dir, sizeof(dir), "%s/fresh", f->dir);
    store_opts o = f->opts;
    o.dir = dir;
    store *s = NULL;
    n_synced_dirs = 0;

    hp_code code = store_open(&o, &s, &st);

    assert_ok(code, st);
    assert_true(dir_was_synced(f->dir)); /* the entry of the new dir */
    assert_true(dir_was_synced(dir));    /* the entries of its files */
    store_close(s);
}

static void
test_second_open_of_an_open_data_dir_is_refused(void **state)
{
    fixture *f = *state; /* the fixture holds the store open */
    hp_status st;
    store *s = NULL;

    hp_code code = store_open(&f->opts, &s, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_string_equal(st.reason, "DATA_DIR_BUSY");
    assert_null(s);
}

static void
test_open_without_dir_is_invalid_argument(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_opts o = f->opts;
    o.dir = NULL;
    store *s = NULL;

    hp_code code = store_open(&o, &s, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_code(st, HP_INVALID_ARGUMENT);
    assert_null(s);
}

static void
test_open_refuses_map_size_above_ceiling(void **state)
{
    fixture *f = *state;
    hp_status st;
    char dir[sizeof(f->dir) + 16];
    snprintf(dir, sizeof(dir), "%s/other", f->dir);
    store_opts o = f->opts;
    o.dir = dir;
    o.map_size = (size_t)2 << 20;
    o.max_map_size = (size_t)1 << 20;
    store *s = NULL;

    hp_code code = store_open(&o, &s, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_code(st, HP_INVALID_ARGUMENT);
    assert_null(s);
}

static void
test_close_accepts_null(void **state)
{
    (void)state;

    store_close(NULL);
}

static void
test_enqueued_message_survives_close_and_reopen(void **state)
{
    fixture *f = *state;
    store_draft d = draft("emails");
    d.payload = "persist me";
    d.payload_len = 10;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    fixture_reopen(f);

    store_message m = must_get(f, id, NOW_MS + 1);
    assert_int_equal(m.state, STORE_STATE_PENDING);
    assert_int_equal(m.payload_len, 10);
    assert_memory_equal(m.payload, "persist me", 10);
}

static void
test_enqueued_message_is_claimable_after_reopen(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);

    fixture_reopen(f);

    store_message m = must_claim_msg(f, "emails", NOW_MS + 1, LEASE_MS);
    assert_id_equal(m.id, id);
}

static void
test_claim_survives_reopen_and_can_be_acked(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    fixture_reopen(f);

    must_ack(f, id, tok, NOW_MS + 10);
    assert_int_equal(must_get(f, id, NOW_MS + 10).state, STORE_STATE_DELIVERED);
}

static void
test_ids_keep_increasing_after_reopen(void **state)
{
    fixture *f = *state;
    hp_id first = must_enqueue(f, "emails", NOW_MS);
    fixture_reopen(f);

    hp_id second = must_enqueue(f, "emails", NOW_MS + 1);

    assert_true(hp_id_cmp(&first, &second) < 0);
}

static void
test_lane_settings_survive_reopen(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_lane_settings ls, got;
    store_lane_settings_default(&ls);
    ls.max_attempts = 7;
    ls.paused = true;
    must_lane_set(f, "emails", &ls);

    fixture_reopen(f);

    hp_code code = lane_get_in(f, SCOPE, "emails", &got, &st);
    assert_ok(code, st);
    assert_int_equal(got.max_attempts, 7);
    assert_true(got.paused);
}

static void
test_commit_refuses_a_transaction_in_which_an_operation_failed(void **state)
{
    fixture *f = *state;
    hp_status st, st2;
    store_txn *t = NULL;
    store_draft good = draft("emails");
    store_draft bad = draft("emails");
    bad.priority = 10;
    store_enqueued out;
    assert_ok(store_txn_begin(f->s, true, &t, &st), st);
    assert_ok(store_enqueue(t, SCOPE, &good, 1, NOW_MS, &out, &st), st);
    hp_code failed = store_enqueue(t, SCOPE, &bad, 1, NOW_MS, &out, &st);
    assert_int_equal(failed, HP_INVALID_ARGUMENT);

    hp_code code = store_txn_commit(t, &st2);

    assert_int_equal(code, HP_INTERNAL);
    assert_status(st2, HP_INTERNAL, HP_R_STORE_ERROR);
    store_lane_stats s;
    assert_int_equal(stats(f, "emails", NOW_MS, &s, &st), HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_LANE);
}

static void
test_write_operation_in_a_read_transaction_is_refused(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_txn *t = NULL;
    store_draft d = draft("emails");
    store_enqueued out;
    assert_ok(store_txn_begin(f->s, false, &t, &st), st);

    hp_code code = store_enqueue(t, SCOPE, &d, 1, NOW_MS, &out, &st);

    store_txn_abort(t);
    assert_int_equal(code, HP_INTERNAL);
    assert_status(st, HP_INTERNAL, HP_R_STORE_ERROR);
}

static void
test_info_reports_map_size_and_ceiling(void **state)
{
    fixture *f = *state;
    store_info info;

    store_get_info(f->s, &info);

    assert_int_equal(info.map_size, (size_t)1 << 20);
    assert_int_equal(info.max_map_size, (size_t)64 << 20);
    assert_true(info.used_bytes > 0);
    assert_true(info.used_bytes <= info.map_size);
}

static void
test_grow_doubles_the_map(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_info info;

    hp_code code = store_grow(f->s, &st);

    assert_ok(code, st);
    store_get_info(f->s, &info);
    assert_int_equal(info.map_size, (size_t)2 << 20);
}

static void
test_grow_at_ceiling_is_map_full(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_info info;
    for (int i = 0; i < 6; i++) { /* 1 MiB -> 64 MiB */
        assert_ok(store_grow(f->s, &st), st);
    }
    store_get_info(f->s, &info);
    assert_int_equal(info.map_size, (size_t)64 << 20);

    hp_code code = store_grow(f->s, &st);

    assert_int_equal(code, HP_RESOURCE_EXHAUSTED);
    assert_status(st, HP_RESOURCE_EXHAUSTED, HP_R_MAP_FULL);
}

static void
test_data_is_readable_after_grow(void **state)
{
    fixture *f = *state;
    hp_status st;
    hp_id id = must_enqueue(f, "emails", NOW_MS);

    assert_ok(store_grow(f->s, &st), st);

    assert_int_equal(must_get(f, id, NOW_MS).state, STORE_STATE_PENDING);
}

static void
test_sync_now_succeeds(void **state)
{
    fixture *f = *state;
    hp_status st;
    (void)must_enqueue(f, "emails", NOW_MS);

    hp_code code = store_sync_now(f->s, &st);

    assert_ok(code, st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_init_fills_documented_defaults),
        cmocka_unit_test(test_close_accepts_null),
        cmocka_unit_test_setup_teardown(
            test_open_fills_documented_default_limits, fixture_setup,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_creates_a_missing_data_dir,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_open_makes_a_new_data_dir_and_its_file_durable, fixture_setup,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_second_open_of_an_open_data_dir_is_refused, fixture_setup,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_open_without_dir_is_invalid_argument, fixture_setup,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_open_refuses_map_size_above_ceiling, fixture_setup,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_enqueued_message_survives_close_and_reopen, fixture_setup,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_enqueued_message_is_claimable_after_reopen, fixture_setup,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_claim_survives_reopen_and_can_be_acked, fixture_setup,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ids_keep_increasing_after_reopen,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_lane_settings_survive_reopen,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_commit_refuses_a_transaction_in_which_an_operation_failed,
            fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_write_operation_in_a_read_transaction_is_refused,
            fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_info_reports_map_size_and_ceiling,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_grow_doubles_the_map,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_grow_at_ceiling_is_map_full,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_data_is_readable_after_grow,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_sync_now_succeeds, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_keeps_limits_that_were_set,
                                        setup_custom_limits, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
