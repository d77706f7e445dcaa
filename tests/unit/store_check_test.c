/*
 * store_check_test.c - store_check passes on a store the operations built
 * and catches each kind of disagreement between its tables. The damage is
 * done the way a broken disk or a bug would do it: with the raw LMDB API on
 * the closed store (store_raw.h), an entry deleted, added or rewritten
 * behind the store's back. store_model_test runs the check after every
 * step of its random walks, which covers the operations not built here.
 */
#include <stdio.h>
#include <string.h>

#include "common/bytes.h"
#include "store/keys.h"
#include "store/record.h"
#include "store_fixture.h"
#include "store_raw.h"

#define LANE      "mix"
#define DEDUPE    "order-1"
#define REQUEST   "req-1"
#define REPLY_TTL (10 * SEC_MS)

/* One message in every state, a dedupe key and a replay entry. */
typedef struct population {
    store_message dead, delivered, claimed, pending, delayed;
} population;

typedef struct reply_op {
    hp_str request_id;
    uint64_t expires_at;
} reply_op;

static hp_code
run_reply_put(store_txn *t, void *arg, hp_status *st)
{
    reply_op *op = arg;
    return store_replay_put(t, SCOPE, op->request_id, 1, "answer", 6,
                            op->expires_at, st);
}

static void
constant_hash(fixture *f, store_opts *o)
{
    (void)f;
    o->dedupe_hash = fixture_constant_hash; /* so a test can name its key */
}

static int
setup(void **state)
{
    return fixture_setup_with(state, constant_hash);
}

static population
populate(fixture *f)
{
    population p;
    hp_status st;

    p.dead = must_get(f, must_make_dead(f, LANE, NOW_MS), NOW_MS);
    hp_id id = must_enqueue(f, LANE, NOW_MS + 1);
    store_token token = must_claim(f, LANE, NOW_MS + 1, LEASE_MS);
    must_ack(f, id, token, NOW_MS + 1);
    p.delivered = must_get(f, id, NOW_MS + 1);
    id = must_enqueue(f, LANE, NOW_MS + 2);
    (void)must_claim(f, LANE, NOW_MS + 2, LEASE_MS);
    p.claimed = must_get(f, id, NOW_MS + 2);
    store_draft d = draft(LANE);
    d.dedupe_key = HP_S(DEDUPE);
    p.pending = must_get(f, must_enqueue_draft(f, &d, NOW_MS + 3), NOW_MS + 3);
    d = draft(LANE);
    d.delay_ms = 60 * SEC_MS;
    p.delayed = must_get(f, must_enqueue_draft(f, &d, NOW_MS + 4), NOW_MS + 4);
    reply_op op = { HP_S(REQUEST), NOW_MS + REPLY_TTL };
    hp_code code = store_run(f->s, true, run_reply_put, &op, &st);
    assert_ok(code, st);
    return p;
}

/* Closes the store so the test may damage it. */
static population
populate_and_close(fixture *f)
{
    population p = populate(f);
    fixture_close(f);
    return p;
}

/* Reopens the damaged store; the check must fail with a message that says
 * both words (the second may be NULL). */
static void
expect_damage(fixture *f, const char *words, const char *more)
{
    store_check_res res;
    hp_status st;
    fixture_reopen(f);

    hp_code code = check_store(f, &res, &st);

    assert_int_equal(code, HP_DATA_LOSS);
    assert_status(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD);
    if (strstr(st.msg, words) == NULL ||
        (more != NULL && strstr(st.msg, more) == NULL)) {
        fail_msg("'%s' does not say '%s' and '%s'", st.msg, words,
                 more != NULL ? more : "");
    }
}

static void
ready_key_of(key *k, const store_message *m)
{
    key_ready(k, SCOPE, m->lane, m->target, m->priority, m->available_at_ms,
              &m->id);
}

/* ---- a sound store passes ----------------------------------------------- */

static void
test_check_passes_on_an_empty_store(void **state)
{
    fixture *f = *state;
    store_check_res res;
    hp_status st;

    hp_code code = check_store(f, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.messages, 0);
    assert_int_equal(res.lanes, 0);
}

static void
test_check_passes_and_counts_a_store_in_every_state(void **state)
{
    fixture *f = *state;
    store_check_res res;
    hp_status st;
    populate(f);

    hp_code code = check_store(f, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.messages, 5);
    assert_int_equal(res.pending, 1);
    assert_int_equal(res.delayed, 1);
    assert_int_equal(res.claimed, 1);
    assert_int_equal(res.delivered, 1);
    assert_int_equal(res.dead, 1);
    assert_int_equal(res.lanes, 1);
    assert_int_equal(res.dedupe_keys, 1);
    assert_int_equal(res.replies, 1);
}

static void
test_check_passes_after_a_reopen(void **state)
{
    fixture *f = *state;
    store_check_res res;
    hp_status st;
    populate_and_close(f);
    fixture_reopen(f);

    hp_code code = check_store(f, &res, &st);

    assert_ok(code, st);
    assert_int_equal(res.messages, 5);
}

/* ---- a message without its index entry ---------------------------------- */

static void
test_check_finds_a_pending_message_without_its_ready_entry(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    key k;
    ready_key_of(&k, &p.pending);

    raw_del(f->dir, "ready", &k);

    expect_damage(f, "is pending but has no ready entry", NULL);
}

static void
test_check_finds_a_pending_message_without_its_lane_ready_entry(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    key k;
    key_lane_ready(&k, SCOPE, p.pending.lane, p.pending.priority,
                   p.pending.available_at_ms, &p.pending.id);

    raw_del(f->dir, "lane_ready", &k);

    expect_damage(f, "is pending but has no lane_ready entry", NULL);
}

static void
test_check_finds_a_lane_ready_entry_at_another_priority(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    key k;
    key_lane_ready(&k, SCOPE, p.pending.lane, p.pending.priority + 1,
                   p.pending.available_at_ms, &p.pending.id);

    raw_put(f->dir, "lane_ready", false, k.b, k.len, "", 0);

    expect_damage(f, "lane_ready entry of message",
                  "another priority or available_at");
}

static void
test_check_finds_a_delayed_message_without_its_schedule_entry(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    key k;
    key_schedule(&k, p.delayed.available_at_ms, SCOPE, &p.delayed.id);

    raw_del(f->dir, "schedule", &k);

    expect_damage(f, "is delayed but has no schedule entry", NULL);
}

static void
test_check_finds_a_claimed_message_without_its_lease_entry(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    key k;
    key_lease(&k, p.claimed.lease_expires_at_ms, SCOPE, &p.claimed.id);

    raw_del(f->dir, "leases", &k);

    expect_damage(f, "is claimed but has no lease entry", NULL);
}

static void
test_check_finds_a_dead_letter_without_its_dead_entry(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    key k;
    key_dead(&k, SCOPE, p.dead.lane, p.dead.finished_at_ms, &p.dead.id);

    raw_del(f->dir, "dead", &k);

    expect_damage(f, "is dead but has no dead-letter entry", NULL);
}

static void
test_check_finds_a_delivered_message_without_its_retention_entry(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    key k;
    key_expiry_retention(&k, p.delivered.finished_at_ms + ls.retention_ms,
                         SCOPE, &p.delivered.id);

    raw_del(f->dir, "expiry", &k);

    expect_damage(f, "1 delivered messages but 0 retention entries", NULL);
}

/* ---- an index entry that points at nothing, or at the wrong thing ------- */

static void
test_check_finds_a_ready_entry_whose_message_is_gone(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    key k;
    key_message(&k, SCOPE, &p.pending.id);

    raw_del(f->dir, "messages", &k);

    expect_damage(f, "ready entry of message", "has no message record");
}

static void
test_check_finds_a_ready_entry_of_a_claimed_message(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    key k;
    ready_key_of(&k, &p.claimed);

    raw_put(f->dir, "ready", false, k.b, k.len, "", 0);

    expect_damage(f, "disagrees with its record: claimed", NULL);
}

static void
test_check_finds_a_lease_entry_at_another_time(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    key k;
    key_lease(&k, p.claimed.lease_expires_at_ms + 1, SCOPE, &p.claimed.id);

    raw_put(f->dir, "leases", false, k.b, k.len, "", 0);

    expect_damage(f, "another lease end", NULL);
}

static void
test_check_finds_a_dedupe_entry_without_its_expiry_entry(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    uint8_t hash[16];
    fixture_constant_hash(DEDUPE, strlen(DEDUPE), hash);
    key k;
    key_expiry_dedupe(&k, p.pending.created_at_ms + ls.dedupe_window_ms, SCOPE,
                      HP_S(LANE), hash, 0);

    raw_del(f->dir, "expiry", &k);

    expect_damage(f, "dedupe entry of message", "has no expiry entry");
}

static void
test_check_finds_a_replay_entry_without_its_expiry_entry(void **state)
{
    fixture *f = *state;
    populate_and_close(f);
    key k;
    key_expiry_reply(&k, NOW_MS + REPLY_TTL, SCOPE, HP_S(REQUEST));

    raw_del(f->dir, "expiry", &k);

    expect_damage(f, "replay entry of request 'req-1'", NULL);
}

/* ---- lanes and records -------------------------------------------------- */

static void
test_check_finds_lane_gauges_that_disagree_with_the_records(void **state)
{
    fixture *f = *state;
    populate_and_close(f);
    uint8_t rec[256];
    key k;
    key_lane(&k, SCOPE, HP_S(LANE));
    size_t len = raw_get(f->dir, "lanes", &k, rec, sizeof(rec));
    hp_put_u64(rec + 56, hp_get_u64(rec + 56) + 1); /* the pending gauge */
    record_seal(rec, len);

    raw_put(f->dir, "lanes", false, k.b, k.len, rec, len);

    expect_damage(f, "counts 2 pending messages but holds 1", NULL);
}

static void
test_check_finds_a_message_whose_lane_record_is_gone(void **state)
{
    fixture *f = *state;
    populate_and_close(f);
    key k;
    key_lane(&k, SCOPE, HP_S(LANE));

    raw_del(f->dir, "lanes", &k);

    expect_damage(f, "names lane 'mix', which has no lane record", NULL);
}

static void
test_check_finds_a_damaged_record(void **state)
{
    fixture *f = *state;
    population p = populate_and_close(f);
    key k;
    key_message(&k, SCOPE, &p.delivered.id);

    raw_flip(f->dir, "messages", &k, -1); /* the payload's last byte */

    expect_damage(f, "is damaged", NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_check_passes_on_an_empty_store),
        T(test_check_passes_and_counts_a_store_in_every_state),
        T(test_check_passes_after_a_reopen),
        T(test_check_finds_a_pending_message_without_its_ready_entry),
        T(test_check_finds_a_pending_message_without_its_lane_ready_entry),
        T(test_check_finds_a_lane_ready_entry_at_another_priority),
        T(test_check_finds_a_delayed_message_without_its_schedule_entry),
        T(test_check_finds_a_claimed_message_without_its_lease_entry),
        T(test_check_finds_a_dead_letter_without_its_dead_entry),
        T(test_check_finds_a_delivered_message_without_its_retention_entry),
        T(test_check_finds_a_ready_entry_whose_message_is_gone),
        T(test_check_finds_a_ready_entry_of_a_claimed_message),
        T(test_check_finds_a_lease_entry_at_another_time),
        T(test_check_finds_a_dedupe_entry_without_its_expiry_entry),
        T(test_check_finds_a_replay_entry_without_its_expiry_entry),
        T(test_check_finds_lane_gauges_that_disagree_with_the_records),
        T(test_check_finds_a_message_whose_lane_record_is_gone),
        T(test_check_finds_a_damaged_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
