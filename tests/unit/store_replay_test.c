/*
 * store_replay_test.c - what lets the broker answer a request it receives
 * twice: the replay cache (store_replay_put/get, its pruning step), the
 * token-checked read of a held claim (store_get_held), and the data
 * directory's instance id.
 */
#include <stdio.h>
#include <string.h>

#include "store_fixture.h"

#define REPLY_DATA_MAX 64

typedef struct replay_op {
    hp_str scope;
    hp_str request_id;
    uint32_t tag;
    const void *data;
    size_t len;
    uint64_t at; /* expires_at for put, now for get */
    bool fail_after;
    /* get results, copied out of the map */
    bool found;
    uint32_t got_tag;
    uint8_t got[REPLY_DATA_MAX];
    size_t got_len;
} replay_op;

static hp_code
run_put(store_txn *t, void *arg, hp_status *st)
{
    replay_op *op = arg;
    hp_code code = store_replay_put(t, op->scope, op->request_id, op->tag,
                                    op->data, op->len, op->at, st);
    if (code == HP_OK && op->fail_after) {
        return hp_status_set(st, HP_ABORTED, HP_R_BUSY, "the test gives up");
    }
    return code;
}

static hp_code
run_get(store_txn *t, void *arg, hp_status *st)
{
    replay_op *op = arg;
    const void *data = NULL;
    size_t len = 0;
    hp_code code = store_replay_get(t, op->scope, op->request_id, op->at,
                                    &op->found, &op->got_tag, &data, &len, st);
    if (code == HP_OK && op->found) {
        assert_true(len <= REPLY_DATA_MAX);
        if (len > 0) {
            memcpy(op->got, data, len);
        }
        op->got_len = len;
    }
    return code;
}

static hp_code
put_in(fixture *f, hp_str scope, const char *rid, uint32_t tag,
       const char *data, uint64_t expires_at, hp_status *st)
{
    replay_op op;
    memset(&op, 0, sizeof(op));
    op.scope = scope;
    op.request_id = hp_str_c(rid);
    op.tag = tag;
    op.data = data;
    op.len = strlen(data);
    op.at = expires_at;
    hp_status_clear(st);
    return store_run(f->s, true, run_put, &op, st);
}

static void
must_put(fixture *f, const char *rid, uint32_t tag, const char *data,
         uint64_t expires_at)
{
    hp_status st;
    hp_code code = put_in(f, SCOPE, rid, tag, data, expires_at, &st);
    assert_ok(code, st);
}

static replay_op
must_get_reply(fixture *f, hp_str scope, const char *rid, uint64_t now)
{
    hp_status st;
    replay_op op;
    memset(&op, 0, sizeof(op));
    op.scope = scope;
    op.request_id = hp_str_c(rid);
    op.at = now;
    hp_status_clear(&st);
    hp_code code = store_run(f->s, false, run_get, &op, &st);
    assert_ok(code, st);
    return op;
}

typedef struct prune_arg {
    uint64_t now;
    store_step_res res;
} prune_arg;

static hp_code
run_prune_replies(store_txn *t, void *arg, hp_status *st)
{
    prune_arg *a = arg;
    return store_maint_step(t, STORE_STEP_PRUNE_REPLIES, a->now, 2, &a->res,
                            st);
}

/* Prunes with limit 2 at now. */
static store_step_res
must_prune_replies(fixture *f, uint64_t now)
{
    hp_status st;
    prune_arg a;
    memset(&a, 0, sizeof(a));
    a.now = now;
    hp_status_clear(&st);
    hp_code code = store_run(f->s, true, run_prune_replies, &a, &st);
    assert_ok(code, st);
    return a.res;
}

/* ---- the replay cache ------------------------------------------------- */

static void
test_replay_get_finds_what_replay_put_stored(void **state)
{
    fixture *f = *state;
    must_put(f, "req-1", 7, "answer", NOW_MS + 1000);

    replay_op got = must_get_reply(f, SCOPE, "req-1", NOW_MS);

    assert_true(got.found);
    assert_int_equal(got.got_tag, 7);
    assert_int_equal(got.got_len, 6);
    assert_memory_equal(got.got, "answer", 6);
}

static void
test_replay_get_of_an_unknown_request_id_finds_nothing(void **state)
{
    fixture *f = *state;
    must_put(f, "req-1", 7, "answer", NOW_MS + 1000);

    replay_op got = must_get_reply(f, SCOPE, "req-2", NOW_MS);

    assert_false(got.found);
}

static void
test_replay_entry_is_found_until_just_before_it_expires(void **state)
{
    fixture *f = *state;
    must_put(f, "req-1", 7, "answer", NOW_MS + 1000);

    replay_op got = must_get_reply(f, SCOPE, "req-1", NOW_MS + 999);

    assert_true(got.found);
}

static void
test_replay_entry_is_not_found_after_it_expires(void **state)
{
    fixture *f = *state;
    must_put(f, "req-1", 7, "answer", NOW_MS + 1000);

    replay_op got = must_get_reply(f, SCOPE, "req-1", NOW_MS + 1001);

    assert_false(got.found);
}

static void
test_replay_entry_with_empty_data_is_found(void **state)
{
    fixture *f = *state;
    must_put(f, "req-1", 3, "", NOW_MS + 1000);

    replay_op got = must_get_reply(f, SCOPE, "req-1", NOW_MS);

    assert_true(got.found);
    assert_int_equal(got.got_tag, 3);
    assert_int_equal(got.got_len, 0);
}

static void
test_replay_put_again_replaces_the_entry(void **state)
{
    fixture *f = *state;
    must_put(f, "req-1", 7, "first", NOW_MS + 1000);

    must_put(f, "req-1", 8, "second", NOW_MS + 2000);

    replay_op got = must_get_reply(f, SCOPE, "req-1", NOW_MS + 1500);
    assert_true(got.found);
    assert_int_equal(got.got_tag, 8);
    assert_int_equal(got.got_len, 6);
    assert_memory_equal(got.got, "second", 6);
}

static void
test_replay_entry_of_one_scope_is_not_found_in_another(void **state)
{
    fixture *f = *state;
    hp_status st;
    assert_ok(put_in(f, SCOPE_A, "req-1", 7, "answer", NOW_MS + 1000, &st), st);

    replay_op got = must_get_reply(f, SCOPE_B, "req-1", NOW_MS);

    assert_false(got.found);
}

static void
test_replay_put_in_an_aborted_transaction_leaves_no_entry(void **state)
{
    fixture *f = *state;
    hp_status st;
    replay_op op;
    memset(&op, 0, sizeof(op));
    op.scope = SCOPE;
    op.request_id = HP_S("req-1");
    op.data = "x";
    op.len = 1;
    op.at = NOW_MS + 1000;
    op.fail_after = true;
    assert_int_equal(store_run(f->s, true, run_put, &op, &st), HP_ABORTED);

    replay_op got = must_get_reply(f, SCOPE, "req-1", NOW_MS);

    assert_false(got.found);
}

static void
test_request_id_of_128_bytes_is_accepted(void **state)
{
    fixture *f = *state;
    hp_status st;
    char rid[STORE_REQUEST_ID_MAX + 1];
    memset(rid, 'r', STORE_REQUEST_ID_MAX);
    rid[STORE_REQUEST_ID_MAX] = '\0';

    hp_code code = put_in(f, SCOPE, rid, 1, "x", NOW_MS + 1000, &st);

    assert_ok(code, st);
    assert_true(must_get_reply(f, SCOPE, rid, NOW_MS).found);
}

static void
test_request_id_of_129_bytes_is_invalid(void **state)
{
    fixture *f = *state;
    hp_status st;
    char rid[STORE_REQUEST_ID_MAX + 2];
    memset(rid, 'r', STORE_REQUEST_ID_MAX + 1);
    rid[STORE_REQUEST_ID_MAX + 1] = '\0';

    hp_code code = put_in(f, SCOPE, rid, 1, "x", NOW_MS + 1000, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_code(st, HP_INVALID_ARGUMENT);
}

static void
test_empty_request_id_is_invalid(void **state)
{
    fixture *f = *state;
    hp_status st;

    hp_code code = put_in(f, SCOPE, "", 1, "x", NOW_MS + 1000, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_code(st, HP_INVALID_ARGUMENT);
}

static void
test_prune_replies_deletes_expired_entries_in_bounded_steps(void **state)
{
    fixture *f = *state;
    must_put(f, "a", 1, "x", NOW_MS + 1000);
    must_put(f, "b", 1, "x", NOW_MS + 1000);
    must_put(f, "c", 1, "x", NOW_MS + 1000);

    store_step_res first = must_prune_replies(f, NOW_MS + 1001);
    store_step_res second = must_prune_replies(f, NOW_MS + 1001);

    assert_int_equal(first.done, 2);
    assert_true(first.more);
    assert_int_equal(second.done, 1);
    assert_false(second.more);
}

static void
test_prune_replies_keeps_live_entries(void **state)
{
    fixture *f = *state;
    must_put(f, "a", 1, "x", NOW_MS + 1000);

    store_step_res res = must_prune_replies(f, NOW_MS + 999);

    assert_int_equal(res.done, 0);
    assert_true(must_get_reply(f, SCOPE, "a", NOW_MS + 999).found);
}

static void
test_prune_replies_leaves_a_replaced_entry_until_its_new_expiry(void **state)
{
    fixture *f = *state;
    must_put(f, "a", 1, "old", NOW_MS + 1000);
    must_put(f, "a", 2, "new", NOW_MS + 5000);

    (void)must_prune_replies(f, NOW_MS + 1001);

    replay_op got = must_get_reply(f, SCOPE, "a", NOW_MS + 1001);
    assert_true(got.found);
    assert_int_equal(got.got_tag, 2);
}

static void
test_next_due_is_a_reply_expiry(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint64_t at;
    must_put(f, "a", 1, "x", NOW_MS + 5000);

    hp_code code = next_due(f, &at, &st);

    assert_ok(code, st);
    assert_int_equal(at, NOW_MS + 5000);
}

/* ---- reading a held claim ---------------------------------------------- */

typedef struct held_op {
    hp_arena *arena;
    hp_id id;
    store_token token;
    uint64_t now;
    store_message out;
} held_op;

static hp_code
run_get_held(store_txn *t, void *arg, hp_status *st)
{
    held_op *op = arg;
    return store_get_held(t, SCOPE, op->id, op->token, op->now, op->arena,
                          &op->out, st);
}

static hp_code
get_held(fixture *f, hp_id id, store_token token, uint64_t now,
         store_message *out, hp_status *st)
{
    held_op op;
    memset(&op, 0, sizeof(op));
    op.arena = &f->arena;
    op.id = id;
    op.token = token;
    op.now = now;
    hp_status_clear(st);
    hp_code code = store_run(f->s, false, run_get_held, &op, st);
    *out = op.out;
    return code;
}

static void
test_get_held_returns_the_claim_with_its_token(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_message m;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = get_held(f, id, tok, NOW_MS + 10, &m, &st);

    assert_ok(code, st);
    assert_id_equal(m.id, id);
    assert_int_equal(m.state, STORE_STATE_CLAIMED);
    assert_memory_equal(m.token.b, tok.b, STORE_TOKEN_LEN);
    assert_int_equal(m.payload_len, 5);
}

static void
test_get_held_with_a_stale_token_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_message m;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token old = must_claim(f, "emails", NOW_MS, LEASE_MS);
    (void)must_claim(f, "emails", NOW_MS + 2000, LEASE_MS);

    hp_code code = get_held(f, id, old, NOW_MS + 2000, &m, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_get_held_after_the_lease_expired_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_message m;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = get_held(f, id, tok, NOW_MS + LEASE_MS + 1, &m, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_get_held_of_an_acked_message_is_lost_claim(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_message m;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    must_ack(f, id, tok, NOW_MS + 1);

    hp_code code = get_held(f, id, tok, NOW_MS + 2, &m, &st);

    assert_int_equal(code, HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM);
}

static void
test_get_held_of_an_unknown_id_is_no_message(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_message m;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);
    id.b[15] ^= 0x01;

    hp_code code = get_held(f, id, tok, NOW_MS, &m, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_MESSAGE);
}

/* ---- the instance id ---------------------------------------------------- */

static void
test_instance_id_survives_reopen(void **state)
{
    fixture *f = *state;
    uint8_t before[16], after[16];
    store_get_instance(f->s, before);

    fixture_reopen(f);

    store_get_instance(f->s, after);
    assert_memory_equal(before, after, 16);
}

static void
test_two_data_dirs_have_different_instance_ids(void **state)
{
    fixture *f = *state;
    hp_status st;
    char dir[sizeof(f->dir) + 16];
    snprintf(dir, sizeof(dir), "%s/second", f->dir);
    uint64_t counter = 1000; /* another random stream */
    store_opts o = f->opts;
    o.dir = dir;
    o.rand_arg = &counter;
    store *second = NULL;
    assert_ok(store_open(&o, &second, &st), st);
    uint8_t a[16], b[16];

    store_get_instance(f->s, a);
    store_get_instance(second, b);

    assert_memory_not_equal(a, b, 16);
    store_close(second);
}

#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_replay_get_finds_what_replay_put_stored),
        T(test_replay_get_of_an_unknown_request_id_finds_nothing),
        T(test_replay_entry_is_found_until_just_before_it_expires),
        T(test_replay_entry_is_not_found_after_it_expires),
        T(test_replay_entry_with_empty_data_is_found),
        T(test_replay_put_again_replaces_the_entry),
        T(test_replay_entry_of_one_scope_is_not_found_in_another),
        T(test_replay_put_in_an_aborted_transaction_leaves_no_entry),
        T(test_request_id_of_128_bytes_is_accepted),
        T(test_request_id_of_129_bytes_is_invalid),
        T(test_empty_request_id_is_invalid),
        T(test_prune_replies_deletes_expired_entries_in_bounded_steps),
        T(test_prune_replies_keeps_live_entries),
        T(test_prune_replies_leaves_a_replaced_entry_until_its_new_expiry),
        T(test_next_due_is_a_reply_expiry),
        T(test_get_held_returns_the_claim_with_its_token),
        T(test_get_held_with_a_stale_token_is_lost_claim),
        T(test_get_held_after_the_lease_expired_is_lost_claim),
        T(test_get_held_of_an_acked_message_is_lost_claim),
        T(test_get_held_of_an_unknown_id_is_no_message),
        T(test_instance_id_survives_reopen),
        T(test_two_data_dirs_have_different_instance_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
