/*
 * store_targets_test.c - a lane with 100,000 targets costs a claim or a
 * stats call no more than a lane with 10. Cost is counted, not timed: the
 * LMDB calls a transaction made (store_txn_index_ops), each O(log n) in
 * its database, so equal counts at 10 and 100,000 targets mean O(log n)
 * whatever the number of targets. (Schema 1 walked every target of the
 * lane for an any-target claim: 100,000 seeks or more here.)
 */
#include <stdio.h>
#include <string.h>

#include "store_fixture.h"

#define MANY  100000u
#define FEW   10u
#define BATCH 1000u

static void
tweak_big_map(fixture *f, store_opts *o)
{
    (void)f;
    o->map_size = (size_t)64 << 20;
    o->max_map_size = (size_t)1 << 30;
}

static int
setup_big(void **state)
{
    return fixture_setup_with(state, tweak_big_map);
}

/* n messages into lane, message i for target "t<i>" at priority i % 10;
 * all but priority 9 are delayed an hour, so an any-target claim must skip
 * nine priorities of delayed messages before it finds one that is due. */
static void
fill_lane(fixture *f, const char *lane, uint32_t n)
{
    static char names[BATCH][16];
    store_draft d[BATCH];
    store_enqueued out[BATCH];
    hp_status st;

    for (uint32_t base = 0; base < n; base += BATCH) {
        uint32_t k = n - base < BATCH ? n - base : BATCH;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t i = base + j;
            int len = snprintf(names[j], sizeof(names[j]), "t%06u", i);
            d[j] = draft(lane);
            d[j].target.p = names[j];
            d[j].target.len = (size_t)len;
            d[j].priority = i % 10;
            d[j].delay_ms = i % 10 == 9 ? 0 : HOUR_MS;
        }
        hp_code code = enqueue(f, d, k, NOW_MS, out, &st);
        assert_ok(code, st);
    }
}

typedef struct counted_claim {
    store_claim_req req;
    uint64_t now;
    uint64_t ops;
    store_claimed out;
    hp_arena *arena;
} counted_claim;

static hp_code
run_counted_claim(store_txn *t, void *arg, hp_status *st)
{
    counted_claim *c = arg;
    uint64_t before = store_txn_index_ops(t);
    hp_code code =
        store_claim(t, SCOPE, &c->req, c->now, c->arena, &c->out, st);
    c->ops = store_txn_index_ops(t) - before;
    return code;
}

/* Claims with req at now; returns the LMDB calls the claim made. */
static uint64_t
claim_ops(fixture *f, store_claim_req req, uint64_t now, store_claimed *out)
{
    counted_claim c = { req, now, 0, { NULL, 0 }, &f->arena };
    hp_status st;
    hp_status_clear(&st);

    hp_code code = store_run(f->s, true, run_counted_claim, &c, &st);

    assert_ok(code, st);
    *out = c.out;
    return c.ops;
}

static void
test_any_target_claim_costs_the_same_with_100000_targets_as_with_10(
    void **state)
{
    fixture *f = *state;
    fill_lane(f, "many", MANY);
    fill_lane(f, "few", FEW);
    store_claimed got;

    uint64_t many = claim_ops(f, claim_req("many", 1, LEASE_MS), NOW_MS, &got);
    assert_int_equal(got.n, 1);
    uint64_t few = claim_ops(f, claim_req("few", 1, LEASE_MS), NOW_MS, &got);
    assert_int_equal(got.n, 1);

    assert_int_equal(many, few);
    /* Lease expiry, the lane, ten seeks (one per priority), then the
     * message: get, two index deletes, lease, record and lane writes. */
    assert_true(many <= 20);
}

static void
test_any_target_claim_across_100000_targets_keeps_claim_order(void **state)
{
    fixture *f = *state;
    fill_lane(f, "many", MANY);
    store_claimed got;

    /* Due now: only priority 9, in enqueue order t000009, t000019, ...
     * The lease outlives the next claim, which then has none to settle. */
    uint64_t ops =
        claim_ops(f, claim_req("many", 3, 2 * HOUR_MS), NOW_MS, &got);

    assert_int_equal(got.n, 3);
    assert_str_equal(got.msgs[0].target, "t000009");
    assert_str_equal(got.msgs[1].target, "t000019");
    assert_str_equal(got.msgs[2].target, "t000029");
    assert_true(ops <= 40);

    /* An hour later priority 0 is due and comes first. */
    ops = claim_ops(f, claim_req("many", 1, LEASE_MS), NOW_MS + HOUR_MS, &got);

    assert_int_equal(got.n, 1);
    assert_str_equal(got.msgs[0].target, "t000000");
    assert_true(ops <= 20);
}

static void
test_one_target_claim_costs_the_same_with_100000_targets(void **state)
{
    fixture *f = *state;
    fill_lane(f, "many", MANY);
    fill_lane(f, "few", FEW);
    store_claimed got;
    store_claim_req req = claim_req("many", 1, LEASE_MS);
    req.any_target = false;
    req.target = HP_S("t000009");

    uint64_t many = claim_ops(f, req, NOW_MS, &got);
    assert_int_equal(got.n, 1);
    req.lane = HP_S("few");
    uint64_t few = claim_ops(f, req, NOW_MS, &got);
    assert_int_equal(got.n, 1);

    assert_int_equal(many, few);
}

typedef struct counted_stats {
    store_targets_req targets;
    const char *lane;
    uint64_t ops;
    store_lane_stats out;
    hp_arena *arena;
} counted_stats;

static hp_code
run_counted_stats(store_txn *t, void *arg, hp_status *st)
{
    counted_stats *c = arg;
    uint64_t before = store_txn_index_ops(t);
    hp_code code = store_stats(t, SCOPE, hp_str_c(c->lane), &c->targets, NOW_MS,
                               c->arena, &c->out, st);
    c->ops = store_txn_index_ops(t) - before;
    return code;
}

static uint64_t
stats_ops(fixture *f, const char *lane, uint32_t limit, store_lane_stats *out)
{
    counted_stats c;
    hp_status st;
    memset(&c, 0, sizeof(c));
    c.targets.limit = limit;
    c.lane = lane;
    c.arena = &f->arena;
    hp_status_clear(&st);

    hp_code code = store_run(f->s, false, run_counted_stats, &c, &st);

    assert_ok(code, st);
    *out = c.out;
    return c.ops;
}

static void
test_stats_page_of_targets_costs_the_same_with_100000_targets(void **state)
{
    fixture *f = *state;
    fill_lane(f, "many", MANY);
    fill_lane(f, "few", FEW + 1); /* more than a page, as in "many" */
    store_lane_stats s;

    uint64_t many = stats_ops(f, "many", FEW, &s);
    assert_int_equal(s.n_targets, FEW);
    assert_non_null(s.targets_next_cursor);
    assert_int_equal(s.oldest_pending_age_ms, 0); /* all due at NOW_MS */
    uint64_t few = stats_ops(f, "few", FEW, &s);
    assert_int_equal(s.n_targets, FEW);
    assert_non_null(s.targets_next_cursor);

    assert_int_equal(many, few);
    /* The lane, ten seeks for the oldest, one per target and one more. */
    assert_true(many <= 1 + 10 + FEW + 1);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_big, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_any_target_claim_costs_the_same_with_100000_targets_as_with_10),
        T(test_any_target_claim_across_100000_targets_keeps_claim_order),
        T(test_one_target_claim_costs_the_same_with_100000_targets),
        T(test_stats_page_of_targets_costs_the_same_with_100000_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
