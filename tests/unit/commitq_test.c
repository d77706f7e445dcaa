/*
 * commitq_test.c - the single writer: a group commits once, in one
 * transaction, and a failing op does not spoil its neighbours; a group
 * that wrote nothing is not committed at all; an op past its deadline is
 * not applied; outcomes are reported only once the data is committed; a
 * full map is grown and the group applied again; at the ceiling the op
 * that needs space fails alone; stop drains the queue; with
 * run_when_idle an idle writer lets the caller commit on its own thread,
 * a busy one queues the caller's op behind the others, and what queues
 * while a caller commits goes to the writer; with batch a group is
 * answered before its batch reaches LMDB, a read waits for the batch, and
 * stop commits the last one.
 */
#include "broker/commitq.h"

#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/statvfs.h>

#include <cmocka.h>

#include "common/clock.h"

#define NOW_MS 1700000000000ull

typedef struct fixture {
    char dir[64];
    store *s;
    hp_clock clock;
    commitq *q;
} fixture;

typedef struct test_op {
    commitq_op op;
    fixture *f;
    const char *lane;
    size_t payload_len;
    bool fail;   /* apply writes, then returns an error */
    bool read;   /* apply only reads (as an empty maintenance pass does) */
    sem_t *gate; /* apply posts entered, then waits on gate */
    sem_t entered;
    int applied; /* times apply ran */
    hp_code done_code;
    char done_reason[32];
    bool visible_at_done; /* the lane existed in a fresh read at done */
    pthread_t done_thread;
    sem_t done;
} test_op;

static uint64_t
fixed_clock(void *arg)
{
    (void)arg;
    return NOW_MS;
}

static fixture *
make_fixture_opts(size_t map_size, size_t max_map_size, bool run_when_idle,
                  bool batch)
{
    fixture *f = calloc(1, sizeof(*f));
    store_opts o;
    hp_status st;
    snprintf(f->dir, sizeof(f->dir), "/tmp/hopper-cq-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    store_opts_init(&o);
    o.dir = f->dir;
    o.sync = batch ? STORE_SYNC_FULL : STORE_SYNC_NONE;
    o.map_size = map_size;
    o.max_map_size = max_map_size;
    assert_int_equal(store_open(&o, &f->s, &st), HP_OK);
    hp_clock_init(&f->clock, fixed_clock, NULL);
    /* A batch is published only when asked (a read, a stop, a growth):
     * a minute is longer than any of these tests. */
    commitq_opts qo = { .max_group = 64,
                        .run_when_idle = run_when_idle,
                        .batch = batch,
                        .batch_opts = { .max_us = 60000000u,
                                        .idle_us = 60000000u } };
    assert_int_equal(commitq_new(f->s, &f->clock, &qo, &f->q, &st), HP_OK);
    return f;
}

static fixture *
make_fixture_with(size_t map_size, size_t max_map_size, bool run_when_idle)
{
    return make_fixture_opts(map_size, max_map_size, run_when_idle, false);
}

static fixture *
make_fixture(size_t map_size, size_t max_map_size)
{
    return make_fixture_with(map_size, max_map_size, false);
}

static int
setup_run_when_idle(void **state)
{
    *state = make_fixture_with(1u << 20, 64u << 20, true);
    return 0;
}

static int
setup_batch(void **state)
{
    *state = make_fixture_opts(1u << 20, 64u << 20, false, true);
    return 0;
}

/* A 1 MiB map whose ceiling is 2 MiB: one growth, then no more batches. */
static int
setup_batch_small(void **state)
{
    *state = make_fixture_opts(1u << 20, 2u << 20, false, true);
    return 0;
}

/* Batched commits need their map reserved on disk, and the store refuses
 * a reservation that would leave less than 64 MiB free: there the writer
 * commits every group to LMDB (store_wal_test checks that), and a batch
 * case has nothing to test. */
static void
skip_without_room(void)
{
    struct statvfs vs;
    if (statvfs("/tmp", &vs) == 0 &&
        (uint64_t)vs.f_bavail * vs.f_frsize < ((uint64_t)256 << 20)) {
        print_message("skipped: /tmp has less than 256 MiB free; there the "
                      "store does not batch commits (it keeps 64 MiB free "
                      "when it reserves a map), so batches cannot be tested; "
                      "free some space to run this case\n");
        skip();
    }
}

static int
setup(void **state)
{
    *state = make_fixture(1u << 20, 64u << 20);
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    commitq_free(f->q);
    store_close(f->s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static bool
lane_exists(fixture *f, const char *lane)
{
    store_txn *t;
    hp_status st;
    store_lane_settings ls;
    assert_int_equal(store_txn_begin(f->s, false, &t, &st), HP_OK);
    hp_code code = store_lane_get(t, HP_S("default"), hp_str_c(lane), &ls, &st);
    store_txn_abort(t);
    return code == HP_OK;
}

static hp_code
op_apply(commitq_op *op, store_txn *t, uint64_t now_ms, hp_status *st)
{
    test_op *o = (test_op *)op;
    static uint8_t payload[256 * 1024];
    store_draft d = { .lane = hp_str_c(o->lane),
                      .payload = payload,
                      .payload_len = o->payload_len };
    store_enqueued out;

    if (o->gate != NULL) {
        sem_post(&o->entered);
        sem_wait(o->gate);
        o->gate = NULL;
    }
    o->applied++;
    if (o->read) {
        uint64_t due;
        return store_next_due(t, &due, st);
    }
    hp_code code = store_enqueue(t, HP_S("default"), &d, 1, now_ms, &out, st);
    if (code == HP_OK && o->fail) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, "TEST_FAILURE",
                             "failing on purpose after a write");
    }
    return code;
}

static void
op_done(commitq_op *op, hp_code code, const hp_status *st)
{
    test_op *o = (test_op *)op;
    o->done_code = code;
    snprintf(o->done_reason, sizeof(o->done_reason), "%s",
             code != HP_OK && st->reason ? st->reason : "");
    o->visible_at_done = lane_exists(o->f, o->lane);
    o->done_thread = pthread_self();
    sem_post(&o->done);
}

static void
op_init(test_op *o, fixture *f, const char *lane)
{
    memset(o, 0, sizeof(*o));
    o->op.apply = op_apply;
    o->op.done = op_done;
    o->f = f;
    o->lane = lane;
    o->payload_len = 16;
    sem_init(&o->done, 0, 0);
    sem_init(&o->entered, 0, 0);
}

static void
submit(fixture *f, test_op *o)
{
    hp_status st;
    assert_int_equal(commitq_submit(f->q, &o->op, &st), HP_OK);
}

static void
test_a_failing_op_does_not_spoil_its_group(void **state)
{
    fixture *f = *state;
    sem_t gate;
    test_op first, a, b, c;
    sem_init(&gate, 0, 0);
    op_init(&first, f, "first");
    first.gate = &gate;
    op_init(&a, f, "a");
    op_init(&b, f, "b");
    b.fail = true;
    op_init(&c, f, "c");

    submit(f, &first); /* holds the writer so a, b and c form one group */
    sem_wait(&first.entered);
    submit(f, &a);
    submit(f, &b);
    submit(f, &c);
    sem_post(&gate);
    sem_wait(&a.done);
    sem_wait(&b.done);
    sem_wait(&c.done);
    sem_wait(&first.done);

    assert_int_equal(a.done_code, HP_OK);
    assert_int_equal(b.done_code, HP_INVALID_ARGUMENT);
    assert_int_equal(c.done_code, HP_OK);
    assert_true(lane_exists(f, "a"));
    assert_false(lane_exists(f, "b"));
    assert_true(lane_exists(f, "c"));
    commitq_stats stats;
    commitq_get_stats(f->q, &stats);
    assert_int_equal(stats.commits, 2); /* first alone, then a+b+c */
    assert_int_equal(stats.max_group, 3);
}

static uint64_t
commits_seen(fixture *f)
{
    commitq_stats stats;
    hp_hist_snap sizes, syncs;
    commitq_get_stats(f->q, &stats);
    hp_hist_read(&commitq_get_hists(f->q)->group_size, &sizes);
    hp_hist_read(&commitq_get_hists(f->q)->sync_us, &syncs);
    assert_int_equal(sizes.count, stats.commits);
    assert_int_equal(syncs.count, stats.commits);
    return stats.commits;
}

static uint64_t
last_txn_id(fixture *f)
{
    store_info info;
    store_get_info(f->s, &info);
    return info.last_txn_id;
}

static void
test_a_group_that_writes_nothing_is_not_committed(void **state)
{
    fixture *f = *state;
    test_op reader, refused, writer;
    op_init(&reader, f, "unused");
    reader.read = true;
    op_init(&refused, f, "bad lane!"); /* refused before any write */
    op_init(&writer, f, "written");
    uint64_t txn0 = last_txn_id(f);

    submit(f, &reader);
    sem_wait(&reader.done);
    submit(f, &refused);
    sem_wait(&refused.done);

    assert_int_equal(reader.done_code, HP_OK);
    assert_int_equal(refused.done_code, HP_INVALID_ARGUMENT);
    assert_int_equal(commits_seen(f), 0);
    assert_int_equal(last_txn_id(f), txn0);

    submit(f, &writer);
    sem_wait(&writer.done);

    assert_int_equal(writer.done_code, HP_OK);
    assert_true(writer.visible_at_done);
    assert_int_equal(commits_seen(f), 1);
    assert_int_equal(last_txn_id(f), txn0 + 1);
}

static void
test_outcome_is_reported_only_after_the_commit(void **state)
{
    fixture *f = *state;
    test_op a;
    op_init(&a, f, "visible");

    submit(f, &a);
    sem_wait(&a.done);

    assert_int_equal(a.done_code, HP_OK);
    assert_true(a.visible_at_done);
}

static void
test_op_past_its_deadline_is_not_applied(void **state)
{
    fixture *f = *state;
    test_op a;
    op_init(&a, f, "late");
    a.op.deadline_mono_ms = hp_mono_ms() - 1;

    submit(f, &a);
    sem_wait(&a.done);

    assert_int_equal(a.done_code, HP_DEADLINE_EXCEEDED);
    assert_int_equal(a.applied, 0);
    assert_false(lane_exists(f, "late"));
}

static void
test_full_map_is_grown_and_the_op_applied_again(void **state)
{
    fixture *f = *state;
    test_op a;
    op_init(&a, f, "big");
    a.payload_len = 200 * 1024; /* with the rest, over the 1 MiB map */
    test_op more[8];

    for (size_t i = 0; i < 8; i++) {
        op_init(&more[i], f, "big");
        more[i].payload_len = 200 * 1024;
        submit(f, &more[i]);
    }
    for (size_t i = 0; i < 8; i++) {
        sem_wait(&more[i].done);
        assert_int_equal(more[i].done_code, HP_OK);
    }

    store_info info;
    store_get_info(f->s, &info);
    assert_true(info.map_size > (1u << 20));
}

static void
test_at_the_ceiling_only_the_op_needing_space_fails(void **state)
{
    fixture *f = make_fixture(256u << 10, 1u << 20);
    test_op fill[16];
    size_t ok = 0, full = 0;
    (void)state;

    for (size_t i = 0; i < 16; i++) {
        op_init(&fill[i], f, "fill");
        fill[i].payload_len = 128 * 1024;
        submit(f, &fill[i]);
    }
    for (size_t i = 0; i < 16; i++) {
        sem_wait(&fill[i].done);
        if (fill[i].done_code == HP_OK) {
            ok++;
        } else {
            assert_int_equal(fill[i].done_code, HP_RESOURCE_EXHAUSTED);
            assert_string_equal(fill[i].done_reason, "MAP_FULL");
            full++;
        }
    }
    test_op small;
    op_init(&small, f, "tiny");
    submit(f, &small);
    sem_wait(&small.done);

    assert_true(ok > 0);
    assert_true(full > 0);
    assert_int_equal(ok + full, 16);
    assert_int_equal(small.done_code, HP_OK); /* small writes still fit */
    void *st = f;
    teardown(&st);
}

static void
test_stop_applies_everything_queued_and_refuses_more(void **state)
{
    fixture *f = *state;
    test_op ops[32], late;
    hp_status st;
    for (size_t i = 0; i < 32; i++) {
        op_init(&ops[i], f, "drain");
        submit(f, &ops[i]);
    }

    commitq_stop(f->q);

    for (size_t i = 0; i < 32; i++) {
        assert_int_equal(sem_trywait(&ops[i].done), 0);
        assert_int_equal(ops[i].done_code, HP_OK);
    }
    op_init(&late, f, "after");
    assert_int_equal(commitq_submit(f->q, &late.op, &st), HP_UNAVAILABLE);
}

static void
submit_or_run(fixture *f, test_op *o)
{
    hp_status st;
    assert_int_equal(commitq_submit_or_run(f->q, &o->op, &st), HP_OK);
}

static void
test_an_idle_writer_lets_the_caller_commit(void **state)
{
    fixture *f = *state;
    test_op a;
    op_init(&a, f, "inline");

    submit_or_run(f, &a);

    /* Done before the call returned, on this thread, and committed. */
    assert_int_equal(sem_trywait(&a.done), 0);
    assert_int_equal(a.done_code, HP_OK);
    assert_true(pthread_equal(a.done_thread, pthread_self()));
    assert_true(a.visible_at_done);
    assert_int_equal(commits_seen(f), 1);
}

static void
test_a_busy_writer_queues_the_callers_op(void **state)
{
    fixture *f = *state;
    test_op blocker, b;
    sem_t gate;
    sem_init(&gate, 0, 0);
    op_init(&blocker, f, "first");
    op_init(&b, f, "second");
    blocker.gate = &gate;
    submit(f, &blocker);
    sem_wait(&blocker.entered); /* the writer is applying it */

    submit_or_run(f, &b);

    assert_int_not_equal(sem_trywait(&b.done), 0); /* queued, not run */
    sem_post(&gate);
    sem_wait(&blocker.done);
    sem_wait(&b.done);
    assert_int_equal(b.done_code, HP_OK);
    assert_false(pthread_equal(b.done_thread, pthread_self()));
    assert_true(b.visible_at_done);
    sem_destroy(&gate);
}

typedef struct caller {
    fixture *f;
    test_op *op;
    pthread_t self;
} caller;

static void *
caller_main(void *arg)
{
    caller *c = arg;
    c->self = pthread_self();
    submit_or_run(c->f, c->op);
    return NULL;
}

/* A caller applying its op holds the writer off: an op queued meanwhile
 * waits, and the writer takes it once the caller is done (a lost wake-up
 * would leave it queued and this test waiting). */
static void
test_ops_queued_during_a_callers_commit_go_to_the_writer(void **state)
{
    fixture *f = *state;
    test_op x, y;
    sem_t gate;
    caller c = { .f = f, .op = &x };
    pthread_t th;
    sem_init(&gate, 0, 0);
    op_init(&x, f, "caller");
    op_init(&y, f, "queued");
    x.gate = &gate;
    assert_int_equal(pthread_create(&th, NULL, caller_main, &c), 0);
    sem_wait(&x.entered); /* the caller is applying x */

    submit(f, &y);
    sem_post(&gate);
    assert_int_equal(pthread_join(th, NULL), 0);
    sem_wait(&y.done);

    assert_true(pthread_equal(x.done_thread, c.self));
    assert_int_equal(y.done_code, HP_OK);
    assert_false(pthread_equal(y.done_thread, c.self));
    assert_false(pthread_equal(y.done_thread, pthread_self()));
    assert_true(y.visible_at_done);
    sem_destroy(&gate);
}

static void
test_without_run_when_idle_the_writer_commits(void **state)
{
    fixture *f = *state;
    test_op a;
    op_init(&a, f, "queued");

    submit_or_run(f, &a);
    sem_wait(&a.done);

    assert_int_equal(a.done_code, HP_OK);
    assert_false(pthread_equal(a.done_thread, pthread_self()));
}

/* Batched commits: a group is answered once it is in the log, before
 * LMDB commits its batch, and reads see it once the batch is published. */
static void
test_a_batched_group_is_answered_before_it_is_published(void **state)
{
    fixture *f = *state;
    skip_without_room();
    test_op a;
    op_init(&a, f, "batched");

    submit(f, &a);
    sem_wait(&a.done);

    assert_int_equal(a.done_code, HP_OK);
    assert_false(a.visible_at_done); /* done ran before the publish */
    assert_true(store_unpublished(f->s));
    assert_false(lane_exists(f, "batched"));
    commitq_wait_visible(f->q);
    assert_true(lane_exists(f, "batched"));
}

typedef struct visible_read {
    fixture *f;
    const char *lane;
    bool saw;
    pthread_t thread;
    sem_t ran;
} visible_read;

static void
read_lane(void *arg)
{
    visible_read *r = arg;
    r->saw = lane_exists(r->f, r->lane);
    r->thread = pthread_self();
    sem_post(&r->ran);
}

static void
test_a_read_after_a_batched_write_sees_it(void **state)
{
    fixture *f = *state;
    skip_without_room();
    test_op a;
    hp_status st;
    visible_read r = { .f = f, .lane = "read-after-write" };
    sem_init(&r.ran, 0, 0);
    op_init(&a, f, "read-after-write");

    submit(f, &a);
    sem_wait(&a.done);
    assert_true(store_unpublished(f->s));
    assert_int_equal(commitq_when_visible(f->q, read_lane, &r, &st), HP_OK);
    sem_wait(&r.ran);

    /* The writer published for it and ran it right after. */
    assert_true(r.saw);
    assert_false(pthread_equal(r.thread, pthread_self()));
    assert_false(store_unpublished(f->s));
    sem_destroy(&r.ran);
}

/* A read waiting while the batch is published by a map growth (inside the
 * store, not by the writer's publish) still runs: here the growth reaches
 * the ceiling, so no batch opens again to publish later. */
static void
test_a_read_waiting_across_a_map_growth_runs(void **state)
{
    fixture *f = *state;
    skip_without_room();
    test_op a, big[5];
    sem_t gate;
    hp_status st;
    visible_read r = { .f = f, .lane = "before" };
    sem_init(&r.ran, 0, 0);
    sem_init(&gate, 0, 0);
    op_init(&a, f, "before");
    submit(f, &a);
    sem_wait(&a.done);
    for (int i = 0; i < 5; i++) { /* 1.25 MiB: the 1 MiB map grows */
        op_init(&big[i], f, "big");
        big[i].payload_len = 256 * 1024;
    }
    big[0].gate = &gate;
    for (int i = 0; i < 5; i++) {
        submit(f, &big[i]);
    }
    sem_wait(&big[0].entered); /* the writer is inside the big group */
    assert_true(store_unpublished(f->s));
    assert_int_equal(commitq_when_visible(f->q, read_lane, &r, &st), HP_OK);
    sem_post(&gate);
    for (int i = 0; i < 5; i++) {
        sem_wait(&big[i].done);
    }

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 60; /* a generous bound: it runs at once, or never */
    assert_int_equal(sem_timedwait(&r.ran, &ts), 0);
    assert_true(r.saw);
    sem_destroy(&r.ran);
    sem_destroy(&gate);
}

static void
test_stop_publishes_the_last_batch(void **state)
{
    fixture *f = *state;
    skip_without_room();
    test_op a;
    op_init(&a, f, "last");

    submit(f, &a);
    sem_wait(&a.done);
    assert_false(lane_exists(f, "last"));
    commitq_free(f->q);
    f->q = NULL;

    assert_false(store_unpublished(f->s));
    assert_true(lane_exists(f, "last"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_failing_op_does_not_spoil_its_group, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_group_that_writes_nothing_is_not_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_outcome_is_reported_only_after_the_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_op_past_its_deadline_is_not_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_full_map_is_grown_and_the_op_applied_again, setup, teardown),
        cmocka_unit_test(test_at_the_ceiling_only_the_op_needing_space_fails),
        cmocka_unit_test_setup_teardown(
            test_stop_applies_everything_queued_and_refuses_more, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_an_idle_writer_lets_the_caller_commit, setup_run_when_idle,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_busy_writer_queues_the_callers_op, setup_run_when_idle,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_ops_queued_during_a_callers_commit_go_to_the_writer,
            setup_run_when_idle, teardown),
        cmocka_unit_test_setup_teardown(
            test_without_run_when_idle_the_writer_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_batched_group_is_answered_before_it_is_published,
            setup_batch, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_read_after_a_batched_write_sees_it, setup_batch, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_read_waiting_across_a_map_growth_runs, setup_batch_small,
            teardown),
        cmocka_unit_test_setup_teardown(test_stop_publishes_the_last_batch,
                                        setup_batch, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
