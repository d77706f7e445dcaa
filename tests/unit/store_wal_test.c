/*
 * store_wal_test.c - the write-ahead log (src/store/wal.h): with
 * STORE_SYNC_FULL every acknowledged commit comes back after a crash, from
 * the log, onto the last checkpoint.
 *
 * A crash here is a child process that opens the store, commits, and
 * _exit()s without closing it, so no final checkpoint is taken. LMDB's
 * file then holds every commit (the page cache is not lost), but the
 * store's recovery puts the checkpoint's meta pages back first, so
 * everything after the checkpoint must come from the log: a replay that
 * misses a record shows as a missing message. Real power cuts, which lose
 * unsynced pages too, are powerloss_test's (tests/integration).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cmocka.h>
#include <xxhash.h>

#include "common/bytes.h"
#include "store/wal.h"
#include "store_fixture.h"

#define N_MSGS  200
#define N_ACKED 50
#define SEG_HDR 4096

/* One checkpoint, when the store opens: every later commit is replayed. */
static void
tweak_full(fixture *f, store_opts *o)
{
    (void)f;
    o->sync = STORE_SYNC_FULL;
    o->map_size = (size_t)64 << 20;
    o->checkpoint_txns = UINT32_MAX;
    o->checkpoint_ms = UINT32_MAX;
}

static int
setup_full(void **state)
{
    return fixture_setup_with(state, tweak_full);
}

/* Below the map's ceiling (64 MiB here), where commits are batched. */
static void
tweak_batch(fixture *f, store_opts *o)
{
    tweak_full(f, o);
    o->map_size = (size_t)16 << 20;
}

static int
setup_batch(void **state)
{
    return fixture_setup_with(state, tweak_batch);
}

/* Batched commits need their map reserved on disk, and the store refuses
 * a reservation that would leave the file system less than 64 MiB free:
 * there it runs without batches (test_without_room_commits_are_not_batched
 * checks that), and the batch cases below have nothing to test. */
static void
skip_without_room(fixture *f)
{
    struct statvfs vs;
    if (statvfs(f->dir, &vs) == 0 &&
        (uint64_t)vs.f_bavail * vs.f_frsize < ((uint64_t)256 << 20)) {
        print_message("skipped: %s has less than 256 MiB free; there the "
                      "store does not batch commits (it keeps 64 MiB free "
                      "when it reserves a map), so batches cannot be tested; "
                      "free some space to run this case\n",
                      f->dir);
        skip();
    }
}

typedef struct commits {
    size_t n, acked;
} commits;

/* In the child: enqueues n messages one commit each into "wal", then
 * claims and acks the first acked of them, and exits without closing. */
static void
child_commit(fixture *f, void *arg)
{
    const commits *c = arg;
    size_t n = c->n, acked = c->acked;
    hp_status st;
    if (fixture_open(f, &st) != HP_OK) {
        _exit(2);
    }
    store_draft d = draft("wal");
    for (size_t i = 0; i < n; i++) {
        store_enqueued out;
        if (enqueue(f, &d, 1, NOW_MS, &out, &st) != HP_OK) {
            _exit(3);
        }
    }
    for (size_t i = 0; i < acked; i++) {
        store_claimed got;
        store_claim_req r = claim_req("wal", 1, LEASE_MS);
        if (claim(f, &r, NOW_MS, &got, &st) != HP_OK || got.n != 1 ||
            ack(f, got.msgs[0].id, got.msgs[0].token, NOW_MS, &st) != HP_OK) {
            _exit(4);
        }
    }
    _exit(0); /* no store_close: no final checkpoint */
}

static void
crash_after(fixture *f, size_t n, size_t acked)
{
    commits c = { n, acked };
    fixture_in_child(f, child_commit, &c);
}

static void
assert_lane(fixture *f, uint64_t pending, uint64_t delivered)
{
    hp_status st;
    store_lane_stats ls;
    store_check_res res;
    assert_ok(stats(f, "wal", NOW_MS, &ls, &st), st);
    assert_int_equal(ls.pending, pending);
    assert_int_equal(ls.delivered, delivered);
    assert_ok(check_store(f, &res, &st), st);
    assert_int_equal(res.messages, pending + delivered);
}

static store_info
info_of(fixture *f)
{
    store_info info;
    store_get_info(f->s, &info);
    return info;
}

static void
test_crash_replays_every_commit(void **state)
{
    fixture *f = *state;
    hp_status st;

    crash_after(f, N_MSGS, N_ACKED);
    assert_ok(fixture_open(f, &st), st);
    /* one record per enqueue, two per claim + ack */
    assert_int_equal(info_of(f).log_replayed, N_MSGS + 2 * N_ACKED);
    assert_lane(f, N_MSGS - N_ACKED, N_ACKED);

    /* The replay was checkpointed: a second open replays nothing. */
    fixture_reopen(f);
    assert_int_equal(info_of(f).log_replayed, 0);
    assert_lane(f, N_MSGS - N_ACKED, N_ACKED);
}

/* A crash during recovery itself, at either of its two steps (the replay
 * done but not yet a checkpoint; the checkpoint taken but the segments
 * not yet emptied), loses nothing: the next open recovers again. */
/* In the child: opens the store, which exits inside its recovery at the
 * step *arg names (store_opts.debug_recovery_exit). */
static void
child_recover_until(fixture *f, void *arg)
{
    hp_status st;
    f->opts.debug_recovery_exit = *(const int *)arg;
    (void)fixture_open(f, &st); /* exits inside */
    _exit(5);
}

static void
crash_in_recovery(fixture *f, int where)
{
    hp_status st;
    crash_after(f, N_MSGS, N_ACKED);
    fixture_in_child(f, child_recover_until, &where);
    assert_ok(fixture_open(f, &st), st);
    assert_lane(f, N_MSGS - N_ACKED, N_ACKED);
}

static void
test_a_crash_after_the_replay_replays_again(void **state)
{
    fixture *f = *state;
    crash_in_recovery(f, 1);
    assert_int_equal(info_of(f).log_replayed, N_MSGS + 2 * N_ACKED);
}

static void
test_a_crash_after_the_recovery_checkpoint_replays_nothing(void **state)
{
    fixture *f = *state;
    crash_in_recovery(f, 2);
    assert_int_equal(info_of(f).log_replayed, 0);
}

/* A file-size limit under which the log cannot grow for a 1.4 MB commit
 * (its first segment is 1 MiB). */
static int
limit_file_size(void)
{
    struct rlimit rl = { 1536 << 10, 1536 << 10 };
    signal(SIGXFSZ, SIG_IGN);
    return setrlimit(RLIMIT_FSIZE, &rl);
}

/* Under that limit: whether a 1.4 MB commit is refused with DISK_FULL. */
static bool
big_commit_refused(fixture *f)
{
    static uint8_t big[700 << 10];
    hp_status st;
    store_enqueued out[2];
    store_draft d[2] = { draft("wal"), draft("wal") };
    for (int i = 0; i < 2; i++) {
        d[i].payload = big;
        d[i].payload_len = sizeof(big);
    }
    return enqueue(f, d, 2, NOW_MS, out, &st) == HP_RESOURCE_EXHAUSTED &&
           strcmp(st.reason, HP_R_DISK_FULL) == 0;
}

/* In the child: the commit the log cannot hold must be refused before
 * LMDB commits it (a commit the log cannot hold must never become
 * visible) and the store must go on with commits that fit. Exit 0 when it
 * does. */
static void
child_outgrow_the_log(fixture *f, void *arg)
{
    (void)arg;
    hp_status st;
    store_enqueued out;
    if (limit_file_size() != 0 || fixture_open(f, &st) != HP_OK) {
        _exit(2);
    }
    if (!big_commit_refused(f)) {
        _exit(3);
    }
    store_draft small = draft("wal");
    if (enqueue(f, &small, 1, NOW_MS, &out, &st) != HP_OK) {
        _exit(4);
    }
    _exit(0); /* and crash: the small one must come back from the log */
}

static void
test_a_commit_the_log_cannot_hold_is_refused(void **state)
{
    fixture *f = *state;
    hp_status st;

    fixture_in_child(f, child_outgrow_the_log, NULL);
    assert_ok(fixture_open(f, &st), st);
    assert_int_equal(info_of(f).log_replayed, 1);
    assert_lane(f, 1, 0);
}

static void
test_clean_close_replays_nothing(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out;
    store_draft d = draft("wal");

    for (int i = 0; i < 10; i++) {
        assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);
    }
    fixture_reopen(f);
    assert_int_equal(info_of(f).log_replayed, 0);
    assert_lane(f, 10, 0);
}

static char *
dir_path(const fixture *f, const char *name)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s/%s", f->dir, name);
    return p;
}

/* Both checkpoint slots have disk blocks from the open on: the first
 * checkpoint writes slot 1, and slot 0 written later into a hole needs a
 * block that a full disk refuses (a failed checkpoint is fatal; seen in
 * fault_diskfull_test under load). */
static void
test_both_checkpoint_slots_are_allocated(void **state)
{
    fixture *f = *state;
    struct stat sb;
    assert_int_equal(stat(dir_path(f, "wal.ckpt"), &sb), 0);
    assert_true((uint64_t)sb.st_blocks * 512 >= 2 * 4096);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
    struct stat sb;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    uint8_t *b = malloc((size_t)sb.st_size + 1);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, (size_t)sb.st_size, 0), sb.st_size);
    close(fd);
    *len = (size_t)sb.st_size;
    return b;
}

static void
spit(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
}

/* The segment the crash left records in: the one with more non-zero
 * bytes past its header. Returns its name and the offset of its last
 * non-zero byte. */
static const char *
busy_segment(fixture *f, size_t *last)
{
    const char *names[] = { "wal-0.log", "wal-1.log" };
    const char *best = NULL;
    *last = 0;
    for (int i = 0; i < 2; i++) {
        size_t len;
        uint8_t *b = slurp(dir_path(f, names[i]), &len);
        for (size_t at = len; at > SEG_HDR; at--) {
            if (b[at - 1] != 0) {
                if (at - 1 > *last) {
                    *last = at - 1;
                    best = names[i];
                }
                break;
            }
        }
        free(b);
    }
    assert_non_null(best);
    return best;
}

static void
test_torn_last_record_is_dropped(void **state)
{
    fixture *f = *state;
    hp_status st;
    size_t last, len;

    crash_after(f, 20, 0);
    /* Damage the last record's last byte: as if the power went before its
     * sync, whose caller was never answered. */
    const char *seg = busy_segment(f, &last);
    uint8_t *b = slurp(dir_path(f, seg), &len);
    b[last] ^= 0xff;
    spit(dir_path(f, seg), b, len);
    free(b);

    assert_ok(fixture_open(f, &st), st);
    assert_int_equal(info_of(f).log_replayed, 19);
    assert_lane(f, 19, 0);
}

static void
test_backup_copied_over_is_refused(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out;
    store_draft d = draft("wal");
    size_t len;

    assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);
    fixture_close(f);
    uint8_t *old = slurp(dir_path(f, "data.mdb"), &len);
    assert_ok(fixture_open(f, &st), st);
    for (int i = 0; i < 5; i++) {
        assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);
    }
    crash_after(f, 20, 0); /* closes first: the checkpoint moves on */
    /* An older data.mdb under the newer log's checkpoint. */
    spit(dir_path(f, "data.mdb"), old, len);
    free(old);
    assert_int_equal(fixture_open(f, &st), HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE);
}

static void
test_other_layout_with_records_is_refused(void **state)
{
    fixture *f = *state;
    hp_status st;
    size_t last, len;

    crash_after(f, 5, 0);
    const char *seg = busy_segment(f, &last);
    uint8_t *b = slurp(dir_path(f, seg), &len);
    hp_put_u32(b + 12, hp_get_u32(b + 12) ^ 1); /* the table layout */
    hp_put_u64(b + 32, XXH3_64bits(b, 32));
    spit(dir_path(f, seg), b, len);
    free(b);
    assert_int_equal(fixture_open(f, &st), HP_FAILED_PRECONDITION);
    assert_status(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE);
}

static void
test_sync_none_replays_then_drops_the_log(void **state)
{
    fixture *f = *state;
    hp_status st;
    struct stat sb;

    crash_after(f, 30, 10);
    f->opts.sync = STORE_SYNC_NONE;
    assert_ok(fixture_open(f, &st), st);
    assert_int_equal(info_of(f).log_replayed, 50);
    assert_lane(f, 20, 10);
    assert_int_equal(stat(dir_path(f, "wal.ckpt"), &sb), -1);
    assert_int_equal(stat(dir_path(f, "wal-0.log"), &sb), -1);

    f->opts.sync = STORE_SYNC_FULL;
    fixture_reopen(f);
    assert_int_equal(stat(dir_path(f, "wal.ckpt"), &sb), 0);
    assert_lane(f, 20, 10);
}

/* A replay that needs more map than the checkpoint had: one commit of 150
 * page-sized messages, which grew a 256 KiB map twice after the last
 * checkpoint, comes back from the log into a store reopened at 256 KiB,
 * so the replay grows the map as the write did. */
static void
tweak_growing(fixture *f, store_opts *o)
{
    tweak_full(f, o);
    o->map_size = (size_t)256 << 10;
}

static int
setup_growing(void **state)
{
    return fixture_setup_with(state, tweak_growing);
}

#define BIG_BATCH 150

static void
child_big_batch(fixture *f, void *arg)
{
    static uint8_t payload[3000];
    static store_draft d[BIG_BATCH];
    static store_enqueued out[BIG_BATCH];
    hp_status st;
    (void)arg;
    if (fixture_open(f, &st) != HP_OK) {
        _exit(2);
    }
    for (size_t i = 0; i < BIG_BATCH; i++) {
        d[i] = draft("wal");
        d[i].payload = payload;
        d[i].payload_len = sizeof(payload);
    }
    if (enqueue(f, d, BIG_BATCH, NOW_MS, out, &st) != HP_OK) {
        _exit(3);
    }
    _exit(0); /* no store_close: no final checkpoint */
}

static void
test_a_replay_grows_the_map(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_info info;

    fixture_in_child(f, child_big_batch, NULL);
    assert_ok(fixture_open(f, &st), st);

    store_get_info(f->s, &info);
    assert_int_equal(info_of(f).log_replayed, 1);
    assert_true(info.map_size >= (size_t)1 << 20);
    assert_lane(f, BIG_BATCH, 0);
}

/* Batched commits (store_batch_attach): each commit into a batch is in
 * the log before it returns, LMDB commits the batch later, and its records
 * share the batch's transaction id. */
static void
child_batched(fixture *f, void *arg)
{
    (void)arg;
    hp_status st;
    if (fixture_open(f, &st) != HP_OK) {
        _exit(2);
    }
    if (!store_batch_attach(f->s, NULL)) {
        _exit(7);
    }
    store_draft d = draft("wal");
    for (size_t i = 0; i < N_MSGS; i++) {
        store_enqueued out;
        if (enqueue(f, &d, 1, NOW_MS, &out, &st) != HP_OK) {
            _exit(3);
        }
        /* batches of 7 reach LMDB; the last ones do not */
        if (i % 7 == 6 && i < N_MSGS - 20 &&
            store_publish(f->s, &st) != HP_OK) {
            _exit(4);
        }
    }
    for (size_t i = 0; i < N_ACKED; i++) {
        store_claimed got;
        store_claim_req r = claim_req("wal", 1, LEASE_MS);
        if (claim(f, &r, NOW_MS, &got, &st) != HP_OK || got.n != 1 ||
            ack(f, got.msgs[0].id, got.msgs[0].token, NOW_MS, &st) != HP_OK) {
            _exit(5);
        }
    }
    if (!store_unpublished(f->s)) {
        _exit(6);
    }
    _exit(0); /* the open batch never reached LMDB */
}

static void
test_batched_commits_are_replayed(void **state)
{
    fixture *f = *state;
    hp_status st;

    skip_without_room(f);
    fixture_in_child(f, child_batched, NULL);
    assert_ok(fixture_open(f, &st), st);
    assert_int_equal(info_of(f).log_replayed, N_MSGS + 2 * N_ACKED);
    assert_lane(f, N_MSGS - N_ACKED, N_ACKED);
}

/* Other threads read what a batch holds only once it is published. */
static void
test_a_batch_is_read_once_published(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out;
    store_lane_stats ls;
    store_draft d = draft("wal");

    skip_without_room(f);
    assert_true(store_batch_attach(f->s, NULL));
    for (int i = 0; i < 10; i++) {
        assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);
    }
    assert_true(store_unpublished(f->s));
    assert_int_equal(stats(f, "wal", NOW_MS, &ls, &st), HP_NOT_FOUND);
    assert_ok(store_publish(f->s, &st), st);
    assert_false(store_unpublished(f->s));
    assert_ok(stats(f, "wal", NOW_MS, &ls, &st), st);
    assert_int_equal(ls.pending, 10);
    fixture_reopen(f);
    assert_int_equal(info_of(f).log_replayed, 0);
    assert_lane(f, 10, 0);
}

/* A map larger than the disk's free space cannot be reserved: the store
 * says no to batching and commits go to LMDB one by one, visible at once. */
static void
tweak_no_room(fixture *f, store_opts *o)
{
    struct statvfs vs;
    tweak_full(f, o);
    assert_int_equal(statvfs(f->dir, &vs), 0);
    uint64_t twice = (uint64_t)vs.f_bavail * vs.f_frsize * 2;
    o->map_size = o->max_map_size = (size_t)(twice & ~(uint64_t)0xfffff);
}

static int
setup_no_room(void **state)
{
    return fixture_setup_with(state, tweak_no_room);
}

static void
test_without_room_commits_are_not_batched(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out;
    store_lane_stats ls;
    store_draft d = draft("wal");

    assert_false(store_batch_attach(f->s, NULL));
    assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);
    assert_false(store_unpublished(f->s));
    assert_ok(stats(f, "wal", NOW_MS, &ls, &st), st);
    assert_int_equal(ls.pending, 1);
}

#define BIG_PAYLOAD 3000

static void
big_payload(uint8_t *p, size_t i)
{
    for (size_t j = 0; j < BIG_PAYLOAD; j++) {
        p[j] = (uint8_t)(i * 31 + j * 7);
    }
}

/* In a child: opens the store and enqueues n messages with
 * big_payload(i), one commit each at NOW_MS + i; exits 2 or 3 if it
 * cannot. */
static void
child_open_with_big(fixture *f, size_t n)
{
    hp_status st;
    static uint8_t payload[BIG_PAYLOAD];
    if (fixture_open(f, &st) != HP_OK) {
        _exit(2);
    }
    for (size_t i = 0; i < n; i++) {
        store_draft d = draft("wal");
        big_payload(payload, i);
        d.payload = payload;
        d.payload_len = sizeof(payload);
        store_enqueued out;
        if (enqueue(f, &d, 1, NOW_MS + i, &out, &st) != HP_OK) {
            _exit(3);
        }
    }
}

/* The lane holds n messages with big_payload(i) each, in the order they
 * were enqueued, the first acked of them delivered and the rest pending. */
static void
assert_big_payloads(fixture *f, size_t n, size_t acked)
{
    static uint8_t want[BIG_PAYLOAD];
    hp_status st;
    store_list_req lr = { .lane = hp_str_c("wal"),
                          .state = STORE_STATE_ANY,
                          .limit = (uint32_t)n };
    store_list_res listed;
    assert_ok(list_in(f, SCOPE, &lr, NOW_MS + n, &listed, &st), st);
    assert_int_equal(listed.n, n);
    for (size_t i = 0; i < n; i++) {
        store_message m;
        assert_ok(get(f, listed.msgs[i].id, NOW_MS + n, &m, &st), st);
        big_payload(want, i);
        assert_int_equal(m.payload_len, BIG_PAYLOAD);
        assert_memory_equal(m.payload, want, BIG_PAYLOAD);
        assert_int_equal(m.state, i < acked ? STORE_STATE_DELIVERED
                                            : STORE_STATE_PENDING);
    }
}

#define GROW_MSGS  800
#define GROW_ACKED 200 /* claimed and acked after the enqueues */

/* More records than three replay transactions take (256 each), in
 * batches, onto a map too small for them: the replay grows the map after
 * a transaction of it committed, and goes on where that one ended, though
 * the records' ids repeat (2.4 MB of messages against a 256 KiB map
 * doubling to 4 MiB: the last growth comes past the first 512 records). */
static void
child_batched_big(fixture *f, void *arg)
{
    static uint8_t payload[3000];
    hp_status st;
    (void)arg;
    f->opts.map_size = (size_t)16 << 20; /* no growth, so no checkpoint */
    if (fixture_open(f, &st) != HP_OK) {
        _exit(2);
    }
    if (!store_batch_attach(f->s, NULL)) {
        _exit(7);
    }
    store_draft d = draft("wal");
    d.payload = payload;
    d.payload_len = sizeof(payload);
    for (size_t i = 0; i < GROW_MSGS; i++) {
        store_enqueued out;
        big_payload(payload, i);
        if (enqueue(f, &d, 1, NOW_MS + i, &out, &st) != HP_OK) {
            _exit(3);
        }
        if (i % 10 == 9 && store_publish(f->s, &st) != HP_OK) {
            _exit(4);
        }
    }
    /* Claims and acks rewrite records: logged as patches (wal.c), which
     * the replay must apply onto what the records before them left, also
     * across its restarts. */
    for (size_t i = 0; i < GROW_ACKED; i++) {
        store_claimed c;
        store_claim_req r = claim_req("wal", 1, LEASE_MS);
        if (claim(f, &r, NOW_MS + GROW_MSGS, &c, &st) != HP_OK || c.n != 1 ||
            ack(f, c.msgs[0].id, c.msgs[0].token, NOW_MS + GROW_MSGS, &st) !=
                HP_OK) {
            _exit(5);
        }
        if (i % 10 == 9 && store_publish(f->s, &st) != HP_OK) {
            _exit(4);
        }
    }
    _exit(0);
}

static void
test_a_batched_replay_grows_the_map(void **state)
{
    fixture *f = *state;
    hp_status st;

    skip_without_room(f);
    fixture_in_child(f, child_batched_big, NULL);
    assert_ok(fixture_open(f, &st), st); /* with a 256 KiB map */
    assert_int_equal(info_of(f).log_replayed, GROW_MSGS + 2 * GROW_ACKED);
    assert_lane(f, GROW_MSGS - GROW_ACKED, GROW_ACKED);
    /* Every payload whole, the acked ones too (ids are time-ordered). */
    assert_big_payloads(f, GROW_MSGS, GROW_ACKED);
}

/* The same in a batch: the commit that cannot be logged fails, and the
 * batch's earlier commits, answered already, reach LMDB at once (a merge
 * that failed may leave LMDB's batch unusable), before the next one opens.
 * The file-size limit comes after the batch reserved its map. */
static void
child_outgrow_the_log_in_a_batch(fixture *f, void *arg)
{
    hp_status st;
    store_enqueued out;
    (void)arg;
    if (fixture_open(f, &st) != HP_OK || !store_batch_attach(f->s, NULL)) {
        _exit(2);
    }
    store_draft small = draft("wal");
    for (int i = 0; i < 3; i++) {
        if (enqueue(f, &small, 1, NOW_MS, &out, &st) != HP_OK) {
            _exit(3);
        }
    }
    if (!store_unpublished(f->s) || limit_file_size() != 0) {
        _exit(4);
    }
    if (!big_commit_refused(f)) {
        _exit(5);
    }
    if (store_unpublished(f->s)) {
        _exit(6); /* the three stayed in the batch */
    }
    if (enqueue(f, &small, 1, NOW_MS, &out, &st) != HP_OK ||
        !store_unpublished(f->s)) {
        _exit(7);
    }
    _exit(0); /* and crash: the last one must come back from the log */
}

static void
test_a_batched_commit_the_log_cannot_hold_is_refused(void **state)
{
    fixture *f = *state;
    hp_status st;

    skip_without_room(f);
    fixture_in_child(f, child_outgrow_the_log_in_a_batch, NULL);
    assert_ok(fixture_open(f, &st), st);
    assert_true(info_of(f).log_replayed >= 1);
    assert_lane(f, 4, 0);
}

/* A store closed on its batch thread with a batch open commits it to
 * LMDB first: it opens again with nothing to replay. */
static void
test_closing_publishes_the_open_batch(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out;

    skip_without_room(f);
    assert_true(store_batch_attach(f->s, NULL));
    store_draft d = draft("wal");
    for (int i = 0; i < 5; i++) {
        assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);
    }
    assert_true(store_unpublished(f->s));
    fixture_reopen(f);
    assert_int_equal(info_of(f).log_replayed, 0);
    assert_lane(f, 5, 0);
}

/* Enqueues d, growing the map (store_grow: it publishes the open batch
 * first) whenever the enqueue finds it full, as commitq's writer does. */
static void
enqueue_growing(fixture *f, const store_draft *d, uint64_t now)
{
    for (;;) {
        hp_status st;
        store_enqueued out;
        hp_code code = enqueue(f, d, 1, now, &out, &st);
        if (code == HP_OK) {
            return;
        }
        assert_int_equal(code, HP_RESOURCE_EXHAUSTED);
        assert_string_equal(st.reason, HP_R_MAP_FULL);
        assert_ok(store_grow(f->s, &st), st);
    }
}

/* A batch that fills the map. Its commits are in the log and answered;
 * when one more finds no room, store_grow commits the batch to LMDB first,
 * and LMDB may refuse that too (its free list needs pages of its own).
 * The store then grows the map and applies the batch again from the log
 * (republish), so nothing answered is lost. From a 64 KiB map, batches of
 * 3,000-byte messages meet that refusal on the way to 4 MiB. */
static void
test_a_batch_lmdb_refuses_is_applied_again(void **state)
{
    fixture *f = *state;
    hp_status st;
    static uint8_t payload[BIG_PAYLOAD];

    skip_without_room(f);
    fixture_close(f);
    f->opts.map_size = (size_t)64 << 10;
    assert_ok(fixture_open(f, &st), st);
    assert_true(store_batch_attach(f->s, NULL));
    store_draft d = draft("wal");
    d.payload = payload;
    d.payload_len = sizeof(payload);
    for (size_t i = 0; i < GROW_MSGS; i++) {
        big_payload(payload, i);
        enqueue_growing(f, &d, NOW_MS + i);
        if (i % 10 == 9) {
            assert_ok(store_publish(f->s, &st), st);
        }
    }
    assert_ok(store_publish(f->s, &st), st);
    store_info info = info_of(f);
    print_message("map %zu bytes, %llu batches applied again\n", info.map_size,
                  (unsigned long long)info.republished);
    assert_true(info.republished >= 1);
    for (int round = 0; round < 2; round++) {
        assert_lane(f, GROW_MSGS, 0);
        assert_big_payloads(f, GROW_MSGS, 0);
        fixture_reopen(f); /* and all of it is in LMDB, not only the log */
    }
}

/* A map that fills: pages freed since the last checkpoint are not reused
 * before the next one, so the store must checkpoint before it grows or
 * reports the map full. Enqueue-and-ack cycles keep the live data tiny. */
static void
tweak_small(fixture *f, store_opts *o)
{
    (void)f;
    o->sync = STORE_SYNC_FULL;
    o->map_size = (size_t)1 << 20;
    o->max_map_size = (size_t)1 << 20;
}

static int
setup_small(void **state)
{
    return fixture_setup_with(state, tweak_small);
}

static void
test_full_map_checkpoints_instead_of_failing(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d = draft("wal");
    store_claim_req r = claim_req("wal", 1, LEASE_MS);

    for (int i = 0; i < 3000; i++) {
        store_enqueued out;
        store_claimed c;
        assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);
        assert_ok(claim(f, &r, NOW_MS, &c, &st), st);
        assert_int_equal(c.n, 1);
        assert_ok(ack(f, c.msgs[0].id, c.msgs[0].token, NOW_MS, &st), st);
        if (i % 500 == 499) {
            store_step_res res;
            assert_ok(prune_delivered(f, NOW_MS + 30 * DAY_MS, 1000, &res, &st),
                      st);
        }
    }
}

/* A claim and an ack rewrite a message's record, payload included; the
 * log holds only the bytes they changed (wal.c, patch ops), which is what
 * keeps a W2 claim's log record small. An enqueue logs the payload. */
static void
test_claim_and_ack_log_what_changed(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint8_t payload[BIG_PAYLOAD];
    big_payload(payload, 1);
    store_draft d = draft("wal");
    d.payload = payload;
    d.payload_len = sizeof(payload);
    store_enqueued out;

    uint64_t b0 = info_of(f).log_bytes;
    assert_ok(enqueue(f, &d, 1, NOW_MS, &out, &st), st);
    uint64_t b1 = info_of(f).log_bytes;
    assert_true(b1 - b0 > BIG_PAYLOAD);

    store_claimed c;
    store_claim_req r = claim_req("wal", 1, LEASE_MS);
    assert_ok(claim(f, &r, NOW_MS, &c, &st), st);
    assert_int_equal(c.n, 1);
    uint64_t b2 = info_of(f).log_bytes;
    assert_true(b2 - b1 < BIG_PAYLOAD / 3);

    assert_ok(ack(f, c.msgs[0].id, c.msgs[0].token, NOW_MS, &st), st);
    uint64_t b3 = info_of(f).log_bytes;
    assert_true(b3 - b2 < BIG_PAYLOAD / 3);
}

#define N_BIG 12

/* In the child: enqueues N_BIG messages with distinct large payloads,
 * claims them all, acks every third, nacks every third with a later
 * retry, extends the rest, and exits without closing. */
static void
child_patches(fixture *f, void *arg)
{
    (void)arg;
    hp_status st;
    child_open_with_big(f, N_BIG);
    for (size_t i = 0; i < N_BIG; i++) {
        store_claimed c;
        store_claim_req r = claim_req("wal", 1, LEASE_MS);
        if (claim(f, &r, NOW_MS + 100, &c, &st) != HP_OK || c.n != 1) {
            _exit(4);
        }
        hp_code code;
        store_nack_res nr;
        uint64_t expires;
        switch (i % 3) {
        case 0:
            code = ack(f, c.msgs[0].id, c.msgs[0].token, NOW_MS + 200, &st);
            break;
        case 1:
            code = nack(f, c.msgs[0].id, c.msgs[0].token, NOW_MS + DAY_MS,
                        NOW_MS + 200, &nr, &st);
            break;
        default:
            code = extend(f, c.msgs[0].id, c.msgs[0].token, LEASE_MS * 2,
                          NOW_MS + 200, &expires, &st);
            break;
        }
        if (code != HP_OK) {
            _exit(5);
        }
    }
    _exit(0);
}

/* After a crash the patched records come back whole: every payload byte
 * and every state as the commits left them (the replay applies each patch
 * to the value the records before it made). */
static void
test_patched_records_are_replayed(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint8_t want[BIG_PAYLOAD];

    fixture_in_child(f, child_patches, NULL);
    assert_ok(fixture_open(f, &st), st);
    assert_true(info_of(f).log_replayed >= 3 * N_BIG);
    store_lane_stats ls;
    assert_ok(stats(f, "wal", NOW_MS + 300, &ls, &st), st);
    assert_int_equal(ls.delivered, N_BIG / 3);
    assert_int_equal(ls.delayed + ls.pending, N_BIG / 3);
    assert_int_equal(ls.claimed, N_BIG / 3);
    store_check_res res;
    assert_ok(check_store(f, &res, &st), st);
    assert_int_equal(res.messages, N_BIG);
    /* Payloads, in the order they were enqueued (ids are time-ordered). */
    store_list_req lr = { .lane = hp_str_c("wal"),
                          .state = STORE_STATE_ANY,
                          .limit = N_BIG * 2 };
    store_list_res listed;
    assert_ok(list_in(f, SCOPE, &lr, NOW_MS + 300, &listed, &st), st);
    assert_int_equal(listed.n, N_BIG);
    for (size_t i = 0; i < N_BIG; i++) {
        store_message m;
        assert_ok(get(f, listed.msgs[i].id, NOW_MS + 300, &m, &st), st);
        big_payload(want, i);
        assert_int_equal(m.payload_len, BIG_PAYLOAD);
        assert_memory_equal(m.payload, want, BIG_PAYLOAD);
        assert_int_equal(m.attempts, 1);
    }
}

/* One write transaction that rewrites a record three times (claim,
 * extend, ack): each patch must be taken against the value the one
 * before it left, not against the copy an earlier step made. */
static hp_code
rewrite_thrice(store_txn *t, void *arg, hp_status *st)
{
    fixture *f = arg;
    store_claim_req r = claim_req("wal", 1, LEASE_MS);
    store_claimed c;
    uint64_t expires;
    hp_code code = store_claim(t, SCOPE, &r, NOW_MS + 100, &f->arena, &c, st);
    if (code != HP_OK || c.n != 1) {
        return code != HP_OK ? code : HP_INTERNAL;
    }
    store_ack_item it = { .id = c.msgs[0].id, .token = c.msgs[0].token };
    if ((code = store_extend(t, SCOPE, it.id, it.token, LEASE_MS * 2,
                             NOW_MS + 150, &expires, st)) != HP_OK) {
        return code;
    }
    return store_ack(t, SCOPE, &it, 1, NULL, 0, NOW_MS + 200, NULL, st);
}

/* A claim whose transaction is then given up leaves nothing: the next
 * claim takes the same message, and its patches replay onto the value
 * from before the given-up one. */
static hp_code
claim_then_give_up(store_txn *t, void *arg, hp_status *st)
{
    fixture *f = arg;
    store_claim_req r = claim_req("wal", 1, LEASE_MS);
    store_claimed c;
    hp_code code = store_claim(t, SCOPE, &r, NOW_MS + 100, &f->arena, &c, st);
    if (code != HP_OK) {
        return code;
    }
    return hp_status_set(st, HP_ABORTED, HP_R_STORE_ERROR, "given up");
}

static void
child_rewrites_in_one_commit(fixture *f, void *arg)
{
    (void)arg;
    hp_status st;
    child_open_with_big(f, 2);
    if (store_run(f->s, true, rewrite_thrice, f, &st) != HP_OK ||
        store_run(f->s, true, claim_then_give_up, f, &st) != HP_ABORTED ||
        store_run(f->s, true, rewrite_thrice, f, &st) != HP_OK) {
        _exit(4);
    }
    _exit(0);
}

static void
test_a_record_rewritten_in_one_commit_replays(void **state)
{
    fixture *f = *state;
    hp_status st;

    fixture_in_child(f, child_rewrites_in_one_commit, NULL);
    assert_ok(fixture_open(f, &st), st);
    assert_true(info_of(f).log_replayed >= 4);
    assert_lane(f, 0, 2);
    assert_big_payloads(f, 2, 2);
}

/* In the child: one large message, enqueued and claimed (the claim is
 * logged as a patch), then a crash. */
static void
child_one_patch(fixture *f, void *arg)
{
    (void)arg;
    hp_status st;
    store_claimed c;
    store_claim_req r = claim_req("wal", 1, LEASE_MS);
    child_open_with_big(f, 1);
    if (claim(f, &r, NOW_MS, &c, &st) != HP_OK || c.n != 1) {
        _exit(3);
    }
    _exit(0);
}

/* A patch that does not fit the value it applies to (here: it names
 * another old length) means the log and LMDB disagree. The replay must not
 * guess: the store refuses to open, DATA_LOSS/CORRUPT_RECORD. The record
 * is resealed with its segment's nonce, so only the patch is wrong. */
static void
test_a_patch_that_does_not_fit_is_refused(void **state)
{
    fixture *f = *state;
    hp_status st;
    size_t last, len;

    fixture_in_child(f, child_one_patch, NULL);
    const char *seg = busy_segment(f, &last);
    uint8_t *b = slurp(dir_path(f, seg), &len);
    uint64_t nonce = hp_get_u64(b + 16);
    bool found = false;
    for (size_t at = SEG_HDR; at + 24 <= len && !found;) {
        uint32_t body = hp_get_u32(b + at + 8);
        if (body == 0) {
            break;
        }
        uint8_t *ops = b + at + 24;
        for (uint32_t o = 0; o + 8 <= body;) {
            uint32_t klen = hp_get_u16(ops + o + 2);
            uint32_t vlen = hp_get_u32(ops + o + 4);
            if (ops[o] == 3) { /* the patch: its old length, one more */
                uint8_t *v = ops + o + 8 + klen;
                hp_put_u32(v, hp_get_u32(v) + 1);
                hp_put_u64(b + at,
                           XXH3_64bits_withSeed(b + at + 8, 16 + body, nonce));
                found = true;
                break;
            }
            o += 8 + klen + vlen;
        }
        at += 24 + body;
    }
    assert_true(found);
    spit(dir_path(f, seg), b, len);
    free(b);
    assert_int_equal(fixture_open(f, &st), HP_DATA_LOSS);
    assert_status(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD);
}

/* The patch's shared ends, scanned a word at a time, against a scan byte
 * by byte: every pair of lengths up to 40 and some up to 300, sharing a
 * head and a tail of every size, each buffer exactly its length (so ASan
 * sees any read past either). */
static uint64_t
next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void
check_common_ends(size_t a_len, size_t b_len, uint64_t *rng)
{
    uint8_t *a = malloc(a_len + 1), *b = malloc(b_len + 1);
    assert_non_null(a);
    assert_non_null(b);
    size_t most = a_len < b_len ? a_len : b_len;
    size_t keep_head = most == 0 ? 0 : next_rand(rng) % (most + 1);
    size_t keep_tail =
        most - keep_head == 0 ? 0 : next_rand(rng) % (most - keep_head + 1);
    for (size_t i = 0; i < a_len; i++) {
        a[i] = (uint8_t)(next_rand(rng) % 4); /* small: chance matches */
    }
    for (size_t i = 0; i < b_len; i++) {
        b[i] = (uint8_t)(next_rand(rng) % 4);
    }
    memcpy(b, a, keep_head);
    memcpy(b + b_len - keep_tail, a + a_len - keep_tail, keep_tail);
    size_t want_head = 0, want_tail = 0;
    while (want_head < most && a[want_head] == b[want_head]) {
        want_head++;
    }
    while (want_tail < most - want_head &&
           a[a_len - 1 - want_tail] == b[b_len - 1 - want_tail]) {
        want_tail++;
    }
    size_t head = SIZE_MAX, tail = SIZE_MAX;
    wal_common_ends(a, a_len, b, b_len, &head, &tail);
    if (head != want_head || tail != want_tail) {
        fail_msg("lengths %zu and %zu: head %zu tail %zu, want %zu and %zu",
                 a_len, b_len, head, tail, want_head, want_tail);
    }
    free(a);
    free(b);
}

static void
test_common_ends_match_a_byte_scan(void **state)
{
    (void)state;
    uint64_t rng = 0x9E3779B97F4A7C15u;
    for (size_t a_len = 0; a_len <= 40; a_len++) {
        for (size_t b_len = 0; b_len <= 40; b_len++) {
            for (int round = 0; round < 8; round++) {
                check_common_ends(a_len, b_len, &rng);
            }
        }
    }
    for (int round = 0; round < 2000; round++) {
        check_common_ends(next_rand(&rng) % 301, next_rand(&rng) % 301, &rng);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_replays_every_commit,
                                        setup_full, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_claim_and_ack_log_what_changed,
                                        setup_full, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_record_rewritten_in_one_commit_replays, setup_full,
            fixture_teardown),
        cmocka_unit_test(test_common_ends_match_a_byte_scan),
        cmocka_unit_test_setup_teardown(test_patched_records_are_replayed,
                                        setup_full, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_patch_that_does_not_fit_is_refused, setup_full,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(test_a_replay_grows_the_map,
                                        setup_growing, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_batched_commits_are_replayed,
                                        setup_batch, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_is_read_once_published,
                                        setup_batch, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_batch_lmdb_refuses_is_applied_again, setup_batch,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_batched_commit_the_log_cannot_hold_is_refused, setup_batch,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(test_closing_publishes_the_open_batch,
                                        setup_batch, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_a_batched_replay_grows_the_map,
                                        setup_growing, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_without_room_commits_are_not_batched, setup_no_room,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_crash_after_the_replay_replays_again, setup_full,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_crash_after_the_recovery_checkpoint_replays_nothing,
            setup_full, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_clean_close_replays_nothing,
                                        setup_full, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_commit_the_log_cannot_hold_is_refused, setup_full,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(test_torn_last_record_is_dropped,
                                        setup_full, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_backup_copied_over_is_refused,
                                        setup_full, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_other_layout_with_records_is_refused, setup_full,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_sync_none_replays_then_drops_the_log, setup_full,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_full_map_checkpoints_instead_of_failing, setup_small,
            fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_both_checkpoint_slots_are_allocated, setup_full,
            fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
