/*
 * store_model_test.c - a repeatable random walk through every operation
 * that changes a message's state, checking after each step that a lane's
 * counters agree with what listing the lane finds and that store_check
 * finds every table in step with the others. The walk is seeded, so a
 * failure names its seed and step and happens again on the next run.
 */
#include <stdio.h>
#include <string.h>

#include "store_fixture.h"

#define STEPS    300
#define MAX_HELD 64
#define N_LANES  2
#define PAGE     1000u
#define MAX_MSGS 4096

static const char *const lanes[N_LANES] = { "l0", "l1" };

typedef struct held {
    hp_id id;
    store_token token;
} held;

typedef struct walk {
    fixture *f;
    uint64_t rng;
    uint64_t now;
    held held[MAX_HELD];
    size_t n_held;
    unsigned seed;
    int step;
    const char *op;
} walk;

static uint64_t
next_rand(walk *w)
{
    uint64_t v;
    int rc = fixture_rand(&w->rng, &v, sizeof(v));
    assert_int_equal(rc, 0);
    return v;
}

static uint32_t
pick(walk *w, uint32_t n)
{
    return (uint32_t)(next_rand(w) % n);
}

static void
fail_step(const walk *w, const char *what)
{
    print_error("seed %u step %d after %s: %s\n", w->seed, w->step, w->op,
                what);
    fail();
}

/* Counts a lane's messages in one state by listing every page. */
static uint64_t
count_listed(walk *w, const char *lane, store_state state)
{
    hp_status st;
    store_list_res res;
    store_list_req req;
    uint64_t n = 0;

    memset(&req, 0, sizeof(req));
    req.lane = hp_str_c(lane);
    req.state = state;
    req.limit = PAGE;
    for (int pages = 0;; pages++) {
        if (pages > MAX_MSGS) {
            fail_step(w, "listing does not end");
        }
        hp_code code = list_in(w->f, SCOPE, &req, w->now, &res, &st);
        assert_ok(code, st);
        n += res.n;
        if (res.next_cursor == NULL || res.next_cursor_len == 0) {
            return n;
        }
        req.cursor = res.next_cursor;
        req.cursor_len = res.next_cursor_len;
    }
}

static uint64_t
count_dead_listed(walk *w, const char *lane)
{
    hp_status st;
    store_list_res res;
    const void *cursor = NULL;
    size_t cursor_len = 0;
    uint64_t n = 0;

    for (int pages = 0;; pages++) {
        if (pages > MAX_MSGS) {
            fail_step(w, "dead listing does not end");
        }
        hp_code code = dead_list_in(w->f, SCOPE, lane, cursor, cursor_len, PAGE,
                                    false, &res, &st);
        assert_ok(code, st);
        n += res.n;
        if (res.next_cursor == NULL || res.next_cursor_len == 0) {
            return n;
        }
        cursor = res.next_cursor;
        cursor_len = res.next_cursor_len;
    }
}

static void
expect_equal(const walk *w, const char *lane, const char *what, uint64_t gauge,
             uint64_t listed)
{
    if (gauge != listed) {
        char msg[160];
        snprintf(msg, sizeof(msg), "lane %s: %s counter %llu, listed %llu",
                 lane, what, (unsigned long long)gauge,
                 (unsigned long long)listed);
        fail_step(w, msg);
    }
}

static void
check_lane(walk *w, const char *lane)
{
    hp_status st;
    store_lane_stats s;
    hp_code code = stats(w->f, lane, w->now, &s, &st);
    if (code == HP_NOT_FOUND) {
        return; /* not used yet */
    }
    assert_ok(code, st);

    uint64_t ready = count_listed(w, lane, STORE_STATE_PENDING) +
                     count_listed(w, lane, STORE_STATE_DELAYED);
    uint64_t claimed = count_listed(w, lane, STORE_STATE_CLAIMED);
    uint64_t delivered = count_listed(w, lane, STORE_STATE_DELIVERED);
    uint64_t dead = count_listed(w, lane, STORE_STATE_DEAD);
    uint64_t any = count_listed(w, lane, STORE_STATE_ANY);

    expect_equal(w, lane, "pending+delayed", s.pending + s.delayed, ready);
    expect_equal(w, lane, "claimed", s.claimed, claimed);
    expect_equal(w, lane, "delivered", s.delivered, delivered);
    expect_equal(w, lane, "dead", s.dead, dead);
    expect_equal(w, lane, "dead letters", s.dead, count_dead_listed(w, lane));
    expect_equal(w, lane, "all states",
                 s.pending + s.delayed + s.claimed + s.delivered + s.dead, any);
}

static void
op_enqueue(walk *w)
{
    hp_status st;
    store_draft d[3];
    store_enqueued out[3];
    uint32_t n = 1 + pick(w, 3);
    char keys[3][8];

    for (uint32_t i = 0; i < n; i++) {
        d[i] = draft(lanes[pick(w, N_LANES)]);
        d[i].priority = pick(w, 3);
        d[i].max_attempts = 1 + pick(w, 3);
        if (pick(w, 3) == 0) {
            d[i].delay_ms = pick(w, 3000);
        }
        if (pick(w, 4) == 0) {
            snprintf(keys[i], sizeof(keys[i]), "k%u", pick(w, 8));
            d[i].dedupe_key = hp_str_c(keys[i]);
        }
    }
    w->op = "enqueue";
    hp_code code = enqueue(w->f, d, n, w->now, out, &st);
    assert_ok(code, st);
}

static void
op_claim(walk *w)
{
    hp_status st;
    store_claimed out;
    store_claim_req req =
        claim_req(lanes[pick(w, N_LANES)], 1 + pick(w, 3), 500 + pick(w, 1500));

    w->op = "claim";
    hp_code code = claim(w->f, &req, w->now, &out, &st);
    assert_ok(code, st);
    for (size_t i = 0; i < out.n && w->n_held < MAX_HELD; i++) {
        w->held[w->n_held].id = out.msgs[i].id;
        w->held[w->n_held].token = out.msgs[i].token;
        w->n_held++;
    }
}

/* Takes a random held claim out of the list; false if there is none. */
static bool
take_held(walk *w, held *out)
{
    if (w->n_held == 0) {
        return false;
    }
    uint32_t i = pick(w, (uint32_t)w->n_held);
    *out = w->held[i];
    w->held[i] = w->held[--w->n_held];
    return true;
}

/* A settle may find its claim lost (expired, re-claimed) or its message
 * pruned; anything else is wrong. */
static void
expect_settled(const walk *w, hp_code code, const hp_status *st)
{
    if (code == HP_OK ||
        (code == HP_FAILED_PRECONDITION &&
         strcmp(st->reason, HP_R_LOST_CLAIM) == 0) ||
        (code == HP_NOT_FOUND && strcmp(st->reason, HP_R_NO_MESSAGE) == 0)) {
        return;
    }
    char msg[HP_STATUS_MSG_MAX + 64];
    snprintf(msg, sizeof(msg), "unexpected %s/%s: %s", hp_code_name(code),
             st->reason, st->msg);
    fail_step(w, msg);
}

static void
op_ack(walk *w)
{
    hp_status st;
    held h;
    if (!take_held(w, &h)) {
        return;
    }
    w->op = "ack";
    expect_settled(w, ack(w->f, h.id, h.token, w->now, &st), &st);
}

static void
op_nack(walk *w)
{
    hp_status st;
    store_nack_res res;
    held h;
    if (!take_held(w, &h)) {
        return;
    }
    uint64_t retry = pick(w, 2) == 0 ? 0 : w->now + pick(w, 2000);
    w->op = "nack";
    expect_settled(w, nack(w->f, h.id, h.token, retry, w->now, &res, &st), &st);
}

static void
op_maintain(walk *w)
{
    hp_status st;
    store_step_res res;
    store_dead_res dres;
    store_dead_sel sel;
    hp_code code = HP_OK;

    switch (pick(w, 6)) {
    case 0:
        w->op = "expire_leases";
        code = expire_leases(w->f, w->now, 2, &res, &st);
        break;
    case 1:
        w->op = "promote_due";
        code = promote_due(w->f, w->now, 2, &res, &st);
        break;
    case 2:
        w->op = "prune_delivered";
        code = prune_delivered(w->f, w->now, 2, &res, &st);
        break;
    case 3:
        w->op = "prune_dedupe";
        code = prune_dedupe(w->f, w->now, 2, &res, &st);
        break;
    case 4:
        memset(&sel, 0, sizeof(sel));
        sel.lane = hp_str_c(lanes[pick(w, N_LANES)]);
        sel.limit = 2;
        w->op = "dead_replay";
        code = dead_replay_in(w->f, SCOPE, &sel, w->now, &dres, &st);
        break;
    default:
        memset(&sel, 0, sizeof(sel));
        sel.lane = hp_str_c(lanes[pick(w, N_LANES)]);
        sel.limit = 1;
        w->op = "dead_purge";
        code = dead_purge_in(w->f, SCOPE, &sel, &dres, &st);
        break;
    }
    if (code == HP_NOT_FOUND && strcmp(st.reason, HP_R_NO_LANE) == 0) {
        return; /* a dead-letter step on a lane not used yet */
    }
    assert_ok(code, st);
}

/* Every operation keeps the tables in step: store_check must agree after
 * each step, whatever the step was. */
static void
check_tables(walk *w)
{
    store_check_res res;
    hp_status st;
    hp_code code = check_store(w->f, &res, &st);
    if (code != HP_OK) {
        fail_msg("seed %u step %d (%s): store_check: %s", w->seed, w->step,
                 w->op, st.msg);
    }
}

static void
run_walk(fixture *f, unsigned seed)
{
    walk w;
    memset(&w, 0, sizeof(w));
    w.f = f;
    w.rng = (uint64_t)seed * 7919u + 1u;
    w.now = NOW_MS;
    w.seed = seed;
    store_lane_settings ls;
    store_lane_settings_default(&ls);
    ls.retention_ms = 3000;
    ls.dedupe_window_ms = 4000;
    ls.backoff_base_ms = 200;
    ls.backoff_cap_ms = 1000;
    for (size_t i = 0; i < N_LANES; i++) {
        must_lane_set(f, lanes[i], &ls);
    }

    for (w.step = 0; w.step < STEPS; w.step++) {
        switch (pick(&w, 6)) {
        case 0:
            op_enqueue(&w);
            break;
        case 1:
            op_claim(&w);
            break;
        case 2:
            op_ack(&w);
            break;
        case 3:
            op_nack(&w);
            break;
        case 4:
            op_maintain(&w);
            break;
        default:
            w.op = "time passing";
            w.now += pick(&w, 800);
            break;
        }
        for (size_t i = 0; i < N_LANES; i++) {
            check_lane(&w, lanes[i]);
        }
        check_tables(&w);
        hp_arena_release(&f->arena); /* keep memory flat over the walk */
    }

    /* The walk is only worth something if it went everywhere. */
    store_lane_stats total;
    memset(&total, 0, sizeof(total));
    for (size_t i = 0; i < N_LANES; i++) {
        store_lane_stats s = must_stats(f, lanes[i], w.now);
        total.acked_total += s.acked_total;
        total.nacked_total += s.nacked_total;
        total.dead_total += s.dead_total;
        total.expired_total += s.expired_total;
        total.replayed_total += s.replayed_total;
        total.purged_total += s.purged_total;
        total.dedupe_hits_total += s.dedupe_hits_total;
    }
    print_message("seed %u: acked %llu nacked %llu dead %llu expired %llu "
                  "replayed %llu purged %llu dedupe hits %llu\n",
                  seed, (unsigned long long)total.acked_total,
                  (unsigned long long)total.nacked_total,
                  (unsigned long long)total.dead_total,
                  (unsigned long long)total.expired_total,
                  (unsigned long long)total.replayed_total,
                  (unsigned long long)total.purged_total,
                  (unsigned long long)total.dedupe_hits_total);
    assert_true(total.acked_total > 0);
    assert_true(total.nacked_total > 0);
    assert_true(total.dead_total > 0);
    assert_true(total.expired_total > 0);
    assert_true(total.replayed_total > 0);
    assert_true(total.purged_total > 0);
    assert_true(total.dedupe_hits_total > 0);
}

static void
test_counters_match_listings_through_random_walk_seed_1(void **state)
{
    run_walk(*state, 1);
}

static void
test_counters_match_listings_through_random_walk_seed_2(void **state)
{
    run_walk(*state, 2);
}

static void
test_counters_match_listings_through_random_walk_seed_3(void **state)
{
    run_walk(*state, 3);
}

static void
test_counters_match_listings_through_random_walk_seed_4(void **state)
{
    run_walk(*state, 4);
}

#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_counters_match_listings_through_random_walk_seed_1),
        T(test_counters_match_listings_through_random_walk_seed_2),
        T(test_counters_match_listings_through_random_walk_seed_3),
        T(test_counters_match_listings_through_random_walk_seed_4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
