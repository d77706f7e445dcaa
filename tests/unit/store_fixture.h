/*
 * store_fixture.h - what every store test shares: a fresh store in a
 * mkdtemp() directory per test, a repeatable random source, and one small
 * wrapper per store operation that runs it in a transaction of its own
 * through store_run. Time is always NOW_MS plus an offset; nothing sleeps.
 *
 * Wrappers return the hp_code and fill *st (cleared first). The must_*
 * forms assert HP_OK and report the caller's file and line with the
 * status message when they fail. Messages returned by wrappers live in the
 * fixture's arena until teardown.
 */
#ifndef HP_TESTS_STORE_FIXTURE_H
#define HP_TESTS_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/arena.h"
#include "common/id.h"
#include "common/names.h"
#include "common/status.h"
#include "common/str.h"
#include "store/store.h"

#define NOW_MS            UINT64_C(1700000000000)
#define SEC_MS            UINT64_C(1000)
#define HOUR_MS           (UINT64_C(3600) * SEC_MS)
#define DAY_MS            (UINT64_C(24) * HOUR_MS)
#define LEASE_MS          1000u
#define FIXTURE_READY_MAX 64

#define SCOPE   HP_S("default")
#define SCOPE_A HP_S("acme")
#define SCOPE_B HP_S("bravo")

/* Compares code names and reason words, so a failure prints
 * "DATA_LOSS" != "NOT_FOUND" rather than 15 != 5. */
#define assert_status(st, want_code, want_reason) \
    fixture_check_status(&(st), (want_code), (want_reason), __FILE__, __LINE__)

/* Only the code, for calls whose reason store.h leaves open. */
#define assert_code(st, want_code) \
    fixture_check_status(&(st), (want_code), NULL, __FILE__, __LINE__)

#define assert_ok(code, st) fixture_check_ok((code), &(st), __FILE__, __LINE__)

#define assert_id_equal(x, y) assert_memory_equal((x).b, (y).b, HP_ID_LEN)
#define assert_id_not_equal(x, y) \
    assert_memory_not_equal((x).b, (y).b, HP_ID_LEN)

/* Compares an hp_str with a C string, printing both on failure. */
#define assert_str_equal(s, cstr) \
    fixture_check_str((s), (cstr), __FILE__, __LINE__)

typedef struct ready_call {
    char scope[HP_NAME_MAX + 1];
    char lane[HP_NAME_MAX + 1];
} ready_call;

typedef struct fixture {
    char dir[256];
    store_opts opts;
    store *s;
    uint64_t rand_counter;
    hp_arena arena;
    ready_call ready[FIXTURE_READY_MAX]; /* on_ready calls, in order */
    size_t n_ready;
} fixture;

/* Adjusts the options before the store opens: a fixture variant. */
typedef void (*fixture_tweak_fn)(fixture *f, store_opts *o);

int fixture_setup_with(void **state, fixture_tweak_fn tweak);
int fixture_setup(void **state);
/* The on_ready hook records every call in f->ready. */
int fixture_setup_on_ready(void **state);
int fixture_teardown(void **state);

/* Closes and opens the store in the same directory. */
void fixture_reopen(fixture *f);
void fixture_close(fixture *f);

/* Closes the store, runs fn(f, arg) in a child process (which ends with
 * _exit: a crash without closing, or a limit set for the child alone) and
 * asserts that the child exited with status 0. */
typedef void (*fixture_child_fn)(fixture *f, void *arg);
void fixture_in_child(fixture *f, fixture_child_fn fn, void *arg);
/* Opens f->opts (f->s must be closed); returns the code. */
hp_code fixture_open(fixture *f, hp_status *st);

/* Repeatable random bytes: splitmix64 over a counter at arg (uint64_t *). */
int fixture_rand(void *arg, void *buf, size_t len);

/* A dedupe hash that maps every key to the same 16 bytes. */
void fixture_constant_hash(const void *key, size_t len, uint8_t out[16]);

/* Records an on_ready call in the fixture passed as arg. */
void fixture_on_ready(void *arg, hp_str scope, hp_str lane);

void fixture_check_status(const hp_status *st, hp_code code, const char *reason,
                          const char *file, int line);
void fixture_check_ok(hp_code code, const hp_status *st, const char *file,
                      int line);
void fixture_check_str(hp_str s, const char *want, const char *file, int line);

/* Removes a directory tree (nftw, depth first). 0 on success. */
int fixture_rmtree(const char *dir);

/* Opens dir's LMDB environment with the raw LMDB API (returns an MDB_env
 * *), for tests that edit the files while the store is closed. */
void *fixture_raw_open(const char *dir);

/* ---- drafts and requests ------------------------------------------------- */

/* A draft for lane with payload "hello" and nothing else set. */
store_draft draft(const char *lane);

/* A claim request for any target of lane. */
store_claim_req claim_req(const char *lane, uint32_t max, uint32_t lease_ms);

/* ---- one transaction per operation ----------------------------------------
 */

hp_code enqueue_in(fixture *f, hp_str scope, const store_draft *d, size_t n,
                   uint64_t now, store_enqueued *out, hp_status *st);
hp_code enqueue(fixture *f, const store_draft *d, size_t n, uint64_t now,
                store_enqueued *out, hp_status *st);

hp_code claim_in(fixture *f, hp_str scope, const store_claim_req *req,
                 uint64_t now, store_claimed *out, hp_status *st);
hp_code claim(fixture *f, const store_claim_req *req, uint64_t now,
              store_claimed *out, hp_status *st);

hp_code ack_in(fixture *f, hp_str scope, const store_ack_item *items, size_t n,
               const store_draft *followups, size_t n_followups, uint64_t now,
               store_enqueued *followups_out, hp_status *st);
hp_code ack(fixture *f, hp_id id, store_token token, uint64_t now,
            hp_status *st);

hp_code nack_in(fixture *f, hp_str scope, const store_nack_req *req,
                uint64_t now, store_enqueued *followups_out,
                store_nack_res *res, hp_status *st);
/* Nack with error text "boom" and retry_at (0: backoff). */
hp_code nack(fixture *f, hp_id id, store_token token, uint64_t retry_at,
             uint64_t now, store_nack_res *res, hp_status *st);

hp_code extend_in(fixture *f, hp_str scope, hp_id id, store_token token,
                  uint32_t lease_ms, uint64_t now, uint64_t *expires_at,
                  hp_status *st);
hp_code extend(fixture *f, hp_id id, store_token token, uint32_t lease_ms,
               uint64_t now, uint64_t *expires_at, hp_status *st);

hp_code get_in(fixture *f, hp_str scope, hp_id id, uint64_t now,
               store_message *out, hp_status *st);
hp_code get(fixture *f, hp_id id, uint64_t now, store_message *out,
            hp_status *st);

hp_code list_in(fixture *f, hp_str scope, const store_list_req *req,
                uint64_t now, store_list_res *out, hp_status *st);

hp_code stats_in(fixture *f, hp_str scope, const char *lane, uint64_t now,
                 store_lane_stats *out, hp_status *st);
hp_code stats(fixture *f, const char *lane, uint64_t now, store_lane_stats *out,
              hp_status *st);
/* stats_in lists up to max_batch targets; this one what targets asks. */
hp_code stats_targets_in(fixture *f, hp_str scope, const char *lane,
                         const store_targets_req *targets, uint64_t now,
                         store_lane_stats *out, hp_status *st);

hp_code lane_set_in(fixture *f, hp_str scope, const char *lane,
                    const store_lane_settings *ls, hp_status *st);
hp_code lane_get_in(fixture *f, hp_str scope, const char *lane,
                    store_lane_settings *out, hp_status *st);

/* An empty scope lists the lanes of every scope (store_list_all_lanes). */
hp_code list_lanes_in(fixture *f, hp_str scope, const void *cursor,
                      size_t cursor_len, uint32_t limit, uint64_t now,
                      store_lanes_res *out, hp_status *st);
/* The same with every knob of the request (targets, max_bytes). */
hp_code list_lanes_req_in(fixture *f, hp_str scope, const store_lanes_req *req,
                          uint64_t now, store_lanes_res *out, hp_status *st);

hp_code dead_list_in(fixture *f, hp_str scope, const char *lane,
                     const void *cursor, size_t cursor_len, uint32_t limit,
                     bool with_payload, store_list_res *out, hp_status *st);
hp_code dead_replay_in(fixture *f, hp_str scope, const store_dead_sel *sel,
                       uint64_t now, store_dead_res *res, hp_status *st);
hp_code dead_purge_in(fixture *f, hp_str scope, const store_dead_sel *sel,
                      store_dead_res *res, hp_status *st);

hp_code expire_leases(fixture *f, uint64_t now, uint32_t limit,
                      store_step_res *res, hp_status *st);
hp_code promote_due(fixture *f, uint64_t now, uint32_t limit,
                    store_step_res *res, hp_status *st);
hp_code prune_delivered(fixture *f, uint64_t now, uint32_t limit,
                        store_step_res *res, hp_status *st);
hp_code prune_dedupe(fixture *f, uint64_t now, uint32_t limit,
                     store_step_res *res, hp_status *st);
hp_code next_due(fixture *f, uint64_t *at, hp_status *st);
/* store_check in a read transaction of its own. */
hp_code check_store(fixture *f, store_check_res *res, hp_status *st);

/* ---- must_*: assert HP_OK, report the caller's line --------------------- */

#define must_enqueue(f, lane, now) \
    must_enqueue_at((f), SCOPE, (lane), (now), __FILE__, __LINE__)
#define must_enqueue_in(f, scope, lane, now) \
    must_enqueue_at((f), (scope), (lane), (now), __FILE__, __LINE__)
#define must_enqueue_draft(f, d, now) \
    must_enqueue_draft_at((f), SCOPE, (d), (now), __FILE__, __LINE__)
#define must_enqueue_draft_in(f, scope, d, now) \
    must_enqueue_draft_at((f), (scope), (d), (now), __FILE__, __LINE__)
/* Claims one message of lane (any target); returns its token. */
#define must_claim(f, lane, now, lease_ms)                                   \
    must_claim_at((f), SCOPE, (lane), (now), (lease_ms), __FILE__, __LINE__) \
        .token
/* Same, returning the whole claimed message. */
#define must_claim_msg(f, lane, now, lease_ms) \
    must_claim_at((f), SCOPE, (lane), (now), (lease_ms), __FILE__, __LINE__)
#define must_claim_msg_in(f, scope, lane, now, lease_ms) \
    must_claim_at((f), (scope), (lane), (now), (lease_ms), __FILE__, __LINE__)
#define must_ack(f, id, token, now) \
    must_ack_at((f), (id), (token), (now), __FILE__, __LINE__)
#define must_nack(f, id, token, retry_at, now) \
    must_nack_at((f), (id), (token), (retry_at), (now), __FILE__, __LINE__)
#define must_get(f, id, now) \
    must_get_at((f), SCOPE, (id), (now), __FILE__, __LINE__)
#define must_get_in(f, scope, id, now) \
    must_get_at((f), (scope), (id), (now), __FILE__, __LINE__)
#define must_stats(f, lane, now) \
    must_stats_at((f), SCOPE, (lane), (now), __FILE__, __LINE__)
#define must_stats_in(f, scope, lane, now) \
    must_stats_at((f), (scope), (lane), (now), __FILE__, __LINE__)
#define must_lane_set(f, lane, ls) \
    must_lane_set_at((f), SCOPE, (lane), (ls), __FILE__, __LINE__)
/* Claims nothing-or-more of lane at now and returns how many. */
#define claim_count(f, lane, now) \
    claim_count_at((f), SCOPE, (lane), (now), __FILE__, __LINE__)
#define claim_count_in(f, scope, lane, now) \
    claim_count_at((f), (scope), (lane), (now), __FILE__, __LINE__)
/* Enqueues with max_attempts 1, claims and nacks it: a dead letter. The
 * lane must hold no other claimable message. */
#define must_make_dead(f, lane, now) \
    must_make_dead_at((f), SCOPE, (lane), (now), __FILE__, __LINE__)
#define must_make_dead_in(f, scope, lane, now) \
    must_make_dead_at((f), (scope), (lane), (now), __FILE__, __LINE__)

hp_id must_enqueue_at(fixture *f, hp_str scope, const char *lane, uint64_t now,
                      const char *file, int line);
hp_id must_enqueue_draft_at(fixture *f, hp_str scope, const store_draft *d,
                            uint64_t now, const char *file, int line);
store_message must_claim_at(fixture *f, hp_str scope, const char *lane,
                            uint64_t now, uint32_t lease_ms, const char *file,
                            int line);
void must_ack_at(fixture *f, hp_id id, store_token token, uint64_t now,
                 const char *file, int line);
store_nack_res must_nack_at(fixture *f, hp_id id, store_token token,
                            uint64_t retry_at, uint64_t now, const char *file,
                            int line);
store_message must_get_at(fixture *f, hp_str scope, hp_id id, uint64_t now,
                          const char *file, int line);
store_lane_stats must_stats_at(fixture *f, hp_str scope, const char *lane,
                               uint64_t now, const char *file, int line);
void must_lane_set_at(fixture *f, hp_str scope, const char *lane,
                      const store_lane_settings *ls, const char *file,
                      int line);
size_t claim_count_at(fixture *f, hp_str scope, const char *lane, uint64_t now,
                      const char *file, int line);
hp_id must_make_dead_at(fixture *f, hp_str scope, const char *lane,
                        uint64_t now, const char *file, int line);

#endif
