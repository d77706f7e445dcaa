/*
 * store_fixture.c - the shared store test fixture (see store_fixture.h).
 * Each test gets its own directory and store, so tests are independent and
 * may run in any order; everything is removed in teardown.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include "store_fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include <lmdb.h>

/* ---- fixture lifecycle ------------------------------------------------- */

static uint64_t
splitmix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

int
fixture_rand(void *arg, void *buf, size_t len)
{
    uint64_t *counter = arg;
    uint8_t *p = buf;
    uint64_t v = 0;

    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            v = splitmix64((*counter)++);
        }
        p[i] = (uint8_t)(v >> (8 * (i % 8)));
    }
    return 0;
}

void
fixture_constant_hash(const void *key, size_t len, uint8_t out[16])
{
    (void)key;
    (void)len;
    memset(out, 0xab, 16);
}

void
fixture_on_ready(void *arg, hp_str scope, hp_str lane)
{
    fixture *f = arg;

    assert_true(f->n_ready < FIXTURE_READY_MAX);
    assert_true(scope.len <= HP_NAME_MAX && lane.len <= HP_NAME_MAX);
    ready_call *c = &f->ready[f->n_ready++];
    memcpy(c->scope, scope.p, scope.len);
    c->scope[scope.len] = '\0';
    memcpy(c->lane, lane.p, lane.len);
    c->lane[lane.len] = '\0';
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

int
fixture_rmtree(const char *dir)
{
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void *
fixture_raw_open(const char *dir)
{
    MDB_env *env = NULL;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    int rc = mdb_env_open(env, dir, 0, 0600);
    if (rc != 0) {
        print_error("mdb_env_open(%s): %s\n", dir, mdb_strerror(rc));
    }
    assert_int_equal(rc, 0);
    return env;
}

hp_code
fixture_open(fixture *f, hp_status *st)
{
    hp_status_clear(st);
    return store_open(&f->opts, &f->s, st);
}

void
fixture_close(fixture *f)
{
    store_close(f->s);
    f->s = NULL;
}

void
fixture_in_child(fixture *f, fixture_child_fn fn, void *arg)
{
    fixture_close(f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn(f, arg);
        _exit(99); /* fn returned instead of ending the child */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

void
fixture_reopen(fixture *f)
{
    hp_status st;

    fixture_close(f);
    hp_code code = fixture_open(f, &st);
    assert_ok(code, st);
}

int
fixture_setup_with(void **state, fixture_tweak_fn tweak)
{
    hp_status st;
    fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0') {
        tmp = "/tmp";
    }
    snprintf(f->dir, sizeof(f->dir), "%s/hopper-test-XXXXXX", tmp);
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    hp_arena_init(&f->arena);
    store_opts_init(&f->opts);
    f->opts.dir = f->dir;
    /* Durability is not under test here, except in the *_full variants
     * (CMakeLists.txt), which run with the write-ahead log. */
    const char *sync = getenv("HOPPER_TEST_STORE_SYNC");
    f->opts.sync = sync != NULL && strcmp(sync, "full") == 0 ? STORE_SYNC_FULL
                                                             : STORE_SYNC_NONE;
    f->opts.map_size = (size_t)1 << 20;
    f->opts.max_map_size = (size_t)64 << 20;
    f->opts.max_readers = 16;
    f->opts.rand = fixture_rand;
    f->opts.rand_arg = &f->rand_counter;
    if (tweak != NULL) {
        tweak(f, &f->opts);
    }
    if (fixture_open(f, &st) != HP_OK) {
        print_error("store_open: %s/%s: %s\n", hp_code_name(st.code), st.reason,
                    st.msg);
        fixture_rmtree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int
fixture_setup(void **state)
{
    return fixture_setup_with(state, NULL);
}

static void
tweak_on_ready(fixture *f, store_opts *o)
{
    o->on_ready = fixture_on_ready;
    o->on_ready_arg = f;
}

int
fixture_setup_on_ready(void **state)
{
    return fixture_setup_with(state, tweak_on_ready);
}

int
fixture_teardown(void **state)
{
    fixture *f = *state;

    if (f == NULL) {
        return 0;
    }
    fixture_close(f);
    hp_arena_release(&f->arena);
    int rc = fixture_rmtree(f->dir);
    free(f);
    *state = NULL;
    return rc == 0 ? 0 : -1;
}

/* ---- checks -------------------------------------------------------------- */

void
fixture_check_status(const hp_status *st, hp_code code, const char *reason,
                     const char *file, int line)
{
    const char *got_reason = st->reason != NULL ? st->reason : "(none)";
    bool same =
        st->code == code && (reason == NULL || strcmp(got_reason, reason) == 0);

    if (!same) {
        print_error("%s:%d: status is %s/%s (\"%s\"), want %s/%s\n", file, line,
                    hp_code_name(st->code), got_reason, st->msg,
                    hp_code_name(code), reason != NULL ? reason : "*");
    }
    _assert_string_equal(hp_code_name(st->code), hp_code_name(code), file,
                         line);
    if (reason != NULL) {
        _assert_string_equal(got_reason, reason, file, line);
    }
}

void
fixture_check_ok(hp_code code, const hp_status *st, const char *file, int line)
{
    if (code != HP_OK) {
        print_error("%s:%d: want OK, got %s/%s: %s\n", file, line,
                    hp_code_name(code),
                    st->reason != NULL ? st->reason : "(none)", st->msg);
        _fail(file, line);
    }
}

void
fixture_check_str(hp_str s, const char *want, const char *file, int line)
{
    char buf[512];
    size_t n = s.len < sizeof(buf) - 1 ? s.len : sizeof(buf) - 1;

    if (n > 0) {
        memcpy(buf, s.p, n);
    }
    buf[n] = '\0';
    if (s.len != strlen(want)) {
        print_error("%s:%d: string length %zu, want %zu\n", file, line, s.len,
                    strlen(want));
        _assert_string_equal(buf, want, file, line);
        _fail(file, line);
    }
    _assert_string_equal(buf, want, file, line);
}

/* ---- drafts and requests ------------------------------------------------ */

store_draft
draft(const char *lane)
{
    store_draft d;

    memset(&d, 0, sizeof(d));
    d.lane = hp_str_c(lane);
    d.payload = "hello";
    d.payload_len = 5;
    return d;
}

store_claim_req
claim_req(const char *lane, uint32_t max, uint32_t lease_ms)
{
    store_claim_req r;

    memset(&r, 0, sizeof(r));
    r.lane = hp_str_c(lane);
    r.any_target = true;
    r.max = max;
    r.lease_ms = lease_ms;
    r.consumer = HP_S("worker-1");
    return r;
}

/* ---- operations: one argument struct and callback each ------------------ */

typedef struct enqueue_op {
    hp_str scope;
    const store_draft *d;
    size_t n;
    uint64_t now;
    store_enqueued *out;
} enqueue_op;

static hp_code
run_enqueue(store_txn *t, void *arg, hp_status *st)
{
    enqueue_op *op = arg;
    return store_enqueue(t, op->scope, op->d, op->n, op->now, op->out, st);
}

hp_code
enqueue_in(fixture *f, hp_str scope, const store_draft *d, size_t n,
           uint64_t now, store_enqueued *out, hp_status *st)
{
    enqueue_op op = { scope, d, n, now, out };
    hp_status_clear(st);
    return store_run(f->s, true, run_enqueue, &op, st);
}

hp_code
enqueue(fixture *f, const store_draft *d, size_t n, uint64_t now,
        store_enqueued *out, hp_status *st)
{
    return enqueue_in(f, SCOPE, d, n, now, out, st);
}

typedef struct claim_op {
    hp_arena *arena;
    hp_str scope;
    const store_claim_req *req;
    uint64_t now;
    store_claimed *out;
} claim_op;

static hp_code
run_claim(store_txn *t, void *arg, hp_status *st)
{
    claim_op *op = arg;
    return store_claim(t, op->scope, op->req, op->now, op->arena, op->out, st);
}

hp_code
claim_in(fixture *f, hp_str scope, const store_claim_req *req, uint64_t now,
         store_claimed *out, hp_status *st)
{
    claim_op op = { &f->arena, scope, req, now, out };
    hp_status_clear(st);
    memset(out, 0, sizeof(*out));
    return store_run(f->s, true, run_claim, &op, st);
}

hp_code
claim(fixture *f, const store_claim_req *req, uint64_t now, store_claimed *out,
      hp_status *st)
{
    return claim_in(f, SCOPE, req, now, out, st);
}

typedef struct ack_op {
    hp_str scope;
    const store_ack_item *items;
    size_t n;
    const store_draft *followups;
    size_t n_followups;
    uint64_t now;
    store_enqueued *followups_out;
} ack_op;

static hp_code
run_ack(store_txn *t, void *arg, hp_status *st)
{
    ack_op *op = arg;
    return store_ack(t, op->scope, op->items, op->n, op->followups,
                     op->n_followups, op->now, op->followups_out, st);
}

hp_code
ack_in(fixture *f, hp_str scope, const store_ack_item *items, size_t n,
       const store_draft *followups, size_t n_followups, uint64_t now,
       store_enqueued *followups_out, hp_status *st)
{
    ack_op op = { scope, items, n, followups, n_followups, now, followups_out };
    hp_status_clear(st);
    return store_run(f->s, true, run_ack, &op, st);
}

hp_code
ack(fixture *f, hp_id id, store_token token, uint64_t now, hp_status *st)
{
    store_ack_item item;

    memset(&item, 0, sizeof(item));
    item.id = id;
    item.token = token;
    return ack_in(f, SCOPE, &item, 1, NULL, 0, now, NULL, st);
}

typedef struct nack_op {
    hp_str scope;
    const store_nack_req *req;
    uint64_t now;
    store_enqueued *followups_out;
    store_nack_res *res;
} nack_op;

static hp_code
run_nack(store_txn *t, void *arg, hp_status *st)
{
    nack_op *op = arg;
    return store_nack(t, op->scope, op->req, op->now, op->followups_out,
                      op->res, st);
}

hp_code
nack_in(fixture *f, hp_str scope, const store_nack_req *req, uint64_t now,
        store_enqueued *followups_out, store_nack_res *res, hp_status *st)
{
    nack_op op = { scope, req, now, followups_out, res };
    hp_status_clear(st);
    memset(res, 0, sizeof(*res));
    return store_run(f->s, true, run_nack, &op, st);
}

hp_code
nack(fixture *f, hp_id id, store_token token, uint64_t retry_at, uint64_t now,
     store_nack_res *res, hp_status *st)
{
    store_nack_req req;

    memset(&req, 0, sizeof(req));
    req.id = id;
    req.token = token;
    req.error = HP_S("boom");
    req.retry_at_ms = retry_at;
    return nack_in(f, SCOPE, &req, now, NULL, res, st);
}

typedef struct extend_op {
    hp_str scope;
    hp_id id;
    store_token token;
    uint32_t lease_ms;
    uint64_t now;
    uint64_t *expires_at;
} extend_op;

static hp_code
run_extend(store_txn *t, void *arg, hp_status *st)
{
    extend_op *op = arg;
    return store_extend(t, op->scope, op->id, op->token, op->lease_ms, op->now,
                        op->expires_at, st);
}

hp_code
extend_in(fixture *f, hp_str scope, hp_id id, store_token token,
          uint32_t lease_ms, uint64_t now, uint64_t *expires_at, hp_status *st)
{
    extend_op op = { scope, id, token, lease_ms, now, expires_at };
    hp_status_clear(st);
    return store_run(f->s, true, run_extend, &op, st);
}

hp_code
extend(fixture *f, hp_id id, store_token token, uint32_t lease_ms, uint64_t now,
       uint64_t *expires_at, hp_status *st)
{
    return extend_in(f, SCOPE, id, token, lease_ms, now, expires_at, st);
}

typedef struct get_op {
    hp_arena *arena;
    hp_str scope;
    hp_id id;
    uint64_t now;
    store_message *out;
} get_op;

static hp_code
run_get(store_txn *t, void *arg, hp_status *st)
{
    get_op *op = arg;
    return store_get(t, op->scope, op->id, op->now, op->arena, op->out, st);
}

hp_code
get_in(fixture *f, hp_str scope, hp_id id, uint64_t now, store_message *out,
       hp_status *st)
{
    get_op op = { &f->arena, scope, id, now, out };
    hp_status_clear(st);
    memset(out, 0, sizeof(*out));
    return store_run(f->s, false, run_get, &op, st);
}

hp_code
get(fixture *f, hp_id id, uint64_t now, store_message *out, hp_status *st)
{
    return get_in(f, SCOPE, id, now, out, st);
}

typedef struct list_op {
    hp_arena *arena;
    hp_str scope;
    const store_list_req *req;
    uint64_t now;
    store_list_res *out;
} list_op;

static hp_code
run_list(store_txn *t, void *arg, hp_status *st)
{
    list_op *op = arg;
    return store_list(t, op->scope, op->req, op->now, op->arena, op->out, st);
}

hp_code
list_in(fixture *f, hp_str scope, const store_list_req *req, uint64_t now,
        store_list_res *out, hp_status *st)
{
    list_op op = { &f->arena, scope, req, now, out };
    hp_status_clear(st);
    memset(out, 0, sizeof(*out));
    return store_run(f->s, false, run_list, &op, st);
}

typedef struct stats_op {
    hp_arena *arena;
    hp_str scope;
    hp_str lane;
    const store_targets_req *targets;
    uint64_t now;
    store_lane_stats *out;
} stats_op;

static hp_code
run_stats(store_txn *t, void *arg, hp_status *st)
{
    stats_op *op = arg;
    return store_stats(t, op->scope, op->lane, op->targets, op->now, op->arena,
                       op->out, st);
}

hp_code
stats_targets_in(fixture *f, hp_str scope, const char *lane,
                 const store_targets_req *targets, uint64_t now,
                 store_lane_stats *out, hp_status *st)
{
    stats_op op = { &f->arena, scope, hp_str_c(lane), targets, now, out };
    hp_status_clear(st);
    memset(out, 0, sizeof(*out));
    return store_run(f->s, false, run_stats, &op, st);
}

hp_code
stats_in(fixture *f, hp_str scope, const char *lane, uint64_t now,
         store_lane_stats *out, hp_status *st)
{
    store_targets_req all = { .limit = store_get_limits(f->s)->max_batch };
    return stats_targets_in(f, scope, lane, &all, now, out, st);
}

hp_code
stats(fixture *f, const char *lane, uint64_t now, store_lane_stats *out,
      hp_status *st)
{
    return stats_in(f, SCOPE, lane, now, out, st);
}

typedef struct lane_op {
    hp_str scope;
    hp_str lane;
    const store_lane_settings *in;
    store_lane_settings *out;
} lane_op;

static hp_code
run_lane_set(store_txn *t, void *arg, hp_status *st)
{
    lane_op *op = arg;
    return store_lane_set(t, op->scope, op->lane, op->in, st);
}

static hp_code
run_lane_get(store_txn *t, void *arg, hp_status *st)
{
    lane_op *op = arg;
    return store_lane_get(t, op->scope, op->lane, op->out, st);
}

hp_code
lane_set_in(fixture *f, hp_str scope, const char *lane,
            const store_lane_settings *ls, hp_status *st)
{
    lane_op op = { scope, hp_str_c(lane), ls, NULL };
    hp_status_clear(st);
    return store_run(f->s, true, run_lane_set, &op, st);
}

hp_code
lane_get_in(fixture *f, hp_str scope, const char *lane,
            store_lane_settings *out, hp_status *st)
{
    lane_op op = { scope, hp_str_c(lane), NULL, out };
    hp_status_clear(st);
    memset(out, 0, sizeof(*out));
    return store_run(f->s, false, run_lane_get, &op, st);
}

typedef struct lanes_op {
    hp_arena *arena;
    hp_str scope;
    const store_lanes_req *req;
    uint64_t now;
    store_lanes_res *out;
} lanes_op;

static hp_code
run_list_lanes(store_txn *t, void *arg, hp_status *st)
{
    lanes_op *op = arg;
    if (op->scope.len == 0) {
        return store_list_all_lanes(t, op->req, op->now, op->arena, op->out,
                                    st);
    }
    return store_list_lanes(t, op->scope, op->req, op->now, op->arena, op->out,
                            st);
}

hp_code
list_lanes_req_in(fixture *f, hp_str scope, const store_lanes_req *req,
                  uint64_t now, store_lanes_res *out, hp_status *st)
{
    lanes_op op = { &f->arena, scope, req, now, out };
    hp_status_clear(st);
    memset(out, 0, sizeof(*out));
    return store_run(f->s, false, run_list_lanes, &op, st);
}

hp_code
list_lanes_in(fixture *f, hp_str scope, const void *cursor, size_t cursor_len,
              uint32_t limit, uint64_t now, store_lanes_res *out, hp_status *st)
{
    store_lanes_req req = { .cursor = cursor,
                            .cursor_len = cursor_len,
                            .limit = limit,
                            .targets_limit =
                                store_get_limits(f->s)->max_batch };
    return list_lanes_req_in(f, scope, &req, now, out, st);
}

static hp_code
run_dead_list(store_txn *t, void *arg, hp_status *st)
{
    list_op *op = arg;
    return store_dead_list(t, op->scope, op->req, op->arena, op->out, st);
}

hp_code
dead_list_in(fixture *f, hp_str scope, const char *lane, const void *cursor,
             size_t cursor_len, uint32_t limit, bool with_payload,
             store_list_res *out, hp_status *st)
{
    store_list_req req = { .lane = hp_str_c(lane),
                           .cursor = cursor,
                           .cursor_len = cursor_len,
                           .limit = limit,
                           .with_payload = with_payload };
    list_op op = { &f->arena, scope, &req, 0, out };
    hp_status_clear(st);
    memset(out, 0, sizeof(*out));
    return store_run(f->s, false, run_dead_list, &op, st);
}

typedef struct dead_op {
    hp_str scope;
    const store_dead_sel *sel;
    uint64_t now;
    store_dead_res *res;
} dead_op;

static hp_code
run_dead_replay(store_txn *t, void *arg, hp_status *st)
{
    dead_op *op = arg;
    return store_dead_replay(t, op->scope, op->sel, op->now, op->res, st);
}

static hp_code
run_dead_purge(store_txn *t, void *arg, hp_status *st)
{
    dead_op *op = arg;
    return store_dead_purge(t, op->scope, op->sel, op->res, st);
}

hp_code
dead_replay_in(fixture *f, hp_str scope, const store_dead_sel *sel,
               uint64_t now, store_dead_res *res, hp_status *st)
{
    dead_op op = { scope, sel, now, res };
    hp_status_clear(st);
    memset(res, 0, sizeof(*res));
    return store_run(f->s, true, run_dead_replay, &op, st);
}

hp_code
dead_purge_in(fixture *f, hp_str scope, const store_dead_sel *sel,
              store_dead_res *res, hp_status *st)
{
    dead_op op = { scope, sel, 0, res };
    hp_status_clear(st);
    memset(res, 0, sizeof(*res));
    return store_run(f->s, true, run_dead_purge, &op, st);
}

typedef struct step_op {
    store_step kind;
    uint64_t now;
    uint32_t limit;
    store_step_res *res;
} step_op;

static hp_code
run_step(store_txn *t, void *arg, hp_status *st)
{
    step_op *op = arg;

    return store_maint_step(t, op->kind, op->now, op->limit, op->res, st);
}

static hp_code
step(fixture *f, store_step kind, uint64_t now, uint32_t limit,
     store_step_res *res, hp_status *st)
{
    step_op op = { kind, now, limit, res };
    hp_status_clear(st);
    memset(res, 0, sizeof(*res));
    return store_run(f->s, true, run_step, &op, st);
}

hp_code
expire_leases(fixture *f, uint64_t now, uint32_t limit, store_step_res *res,
              hp_status *st)
{
    return step(f, STORE_STEP_EXPIRE_LEASES, now, limit, res, st);
}

hp_code
promote_due(fixture *f, uint64_t now, uint32_t limit, store_step_res *res,
            hp_status *st)
{
    return step(f, STORE_STEP_PROMOTE_DUE, now, limit, res, st);
}

hp_code
prune_delivered(fixture *f, uint64_t now, uint32_t limit, store_step_res *res,
                hp_status *st)
{
    return step(f, STORE_STEP_PRUNE_DELIVERED, now, limit, res, st);
}

hp_code
prune_dedupe(fixture *f, uint64_t now, uint32_t limit, store_step_res *res,
             hp_status *st)
{
    return step(f, STORE_STEP_PRUNE_DEDUPE, now, limit, res, st);
}

static hp_code
run_next_due(store_txn *t, void *arg, hp_status *st)
{
    return store_next_due(t, arg, st);
}

hp_code
next_due(fixture *f, uint64_t *at, hp_status *st)
{
    hp_status_clear(st);
    *at = 0;
    return store_run(f->s, false, run_next_due, at, st);
}

static hp_code
run_check(store_txn *t, void *arg, hp_status *st)
{
    return store_check(t, arg, st);
}

hp_code
check_store(fixture *f, store_check_res *res, hp_status *st)
{
    hp_status_clear(st);
    return store_run(f->s, false, run_check, res, st);
}

/* ---- must_* ----------------------------------------------------------------
 */

hp_id
must_enqueue_draft_at(fixture *f, hp_str scope, const store_draft *d,
                      uint64_t now, const char *file, int line)
{
    hp_status st;
    store_enqueued out;

    memset(&out, 0, sizeof(out));
    hp_code code = enqueue_in(f, scope, d, 1, now, &out, &st);
    fixture_check_ok(code, &st, file, line);
    if (out.duplicate) {
        print_error("%s:%d: enqueue was an unexpected dedupe hit\n", file,
                    line);
        _fail(file, line);
    }
    return out.id;
}

hp_id
must_enqueue_at(fixture *f, hp_str scope, const char *lane, uint64_t now,
                const char *file, int line)
{
    store_draft d = draft(lane);
    return must_enqueue_draft_at(f, scope, &d, now, file, line);
}

store_message
must_claim_at(fixture *f, hp_str scope, const char *lane, uint64_t now,
              uint32_t lease_ms, const char *file, int line)
{
    hp_status st;
    store_claimed out;
    store_claim_req req = claim_req(lane, 1, lease_ms);

    hp_code code = claim_in(f, scope, &req, now, &out, &st);
    fixture_check_ok(code, &st, file, line);
    if (out.n != 1) {
        print_error("%s:%d: claimed %zu messages, want 1\n", file, line, out.n);
        _fail(file, line);
    }
    return out.msgs[0];
}

void
must_ack_at(fixture *f, hp_id id, store_token token, uint64_t now,
            const char *file, int line)
{
    hp_status st;
    hp_code code = ack(f, id, token, now, &st);
    fixture_check_ok(code, &st, file, line);
}

store_nack_res
must_nack_at(fixture *f, hp_id id, store_token token, uint64_t retry_at,
             uint64_t now, const char *file, int line)
{
    hp_status st;
    store_nack_res res;
    hp_code code = nack(f, id, token, retry_at, now, &res, &st);
    fixture_check_ok(code, &st, file, line);
    return res;
}

store_message
must_get_at(fixture *f, hp_str scope, hp_id id, uint64_t now, const char *file,
            int line)
{
    hp_status st;
    store_message m;
    hp_code code = get_in(f, scope, id, now, &m, &st);
    fixture_check_ok(code, &st, file, line);
    return m;
}

store_lane_stats
must_stats_at(fixture *f, hp_str scope, const char *lane, uint64_t now,
              const char *file, int line)
{
    hp_status st;
    store_lane_stats s;
    hp_code code = stats_in(f, scope, lane, now, &s, &st);
    fixture_check_ok(code, &st, file, line);
    return s;
}

void
must_lane_set_at(fixture *f, hp_str scope, const char *lane,
                 const store_lane_settings *ls, const char *file, int line)
{
    hp_status st;
    hp_code code = lane_set_in(f, scope, lane, ls, &st);
    fixture_check_ok(code, &st, file, line);
}

size_t
claim_count_at(fixture *f, hp_str scope, const char *lane, uint64_t now,
               const char *file, int line)
{
    hp_status st;
    store_claimed out;
    store_claim_req req =
        claim_req(lane, store_get_limits(f->s)->max_batch, LEASE_MS);
    hp_code code = claim_in(f, scope, &req, now, &out, &st);
    fixture_check_ok(code, &st, file, line);
    return out.n;
}

hp_id
must_make_dead_at(fixture *f, hp_str scope, const char *lane, uint64_t now,
                  const char *file, int line)
{
    hp_status st;
    store_nack_res res;
    store_nack_req req;
    store_draft d = draft(lane);

    d.max_attempts = 1;
    hp_id id = must_enqueue_draft_at(f, scope, &d, now, file, line);
    store_message m = must_claim_at(f, scope, lane, now, LEASE_MS, file, line);
    if (hp_id_cmp(&m.id, &id) != 0) {
        print_error("%s:%d: claimed another message than the one enqueued\n",
                    file, line);
        _fail(file, line);
    }
    memset(&req, 0, sizeof(req));
    req.id = id;
    req.token = m.token;
    req.error = HP_S("boom");
    hp_code code = nack_in(f, scope, &req, now, NULL, &res, &st);
    fixture_check_ok(code, &st, file, line);
    if (!res.dead) {
        print_error("%s:%d: nack of the last attempt did not kill it\n", file,
                    line);
        _fail(file, line);
    }
    return id;
}
