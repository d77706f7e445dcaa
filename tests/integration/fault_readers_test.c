/*
 * fault_readers_test.c - a reader process dies holding a read transaction
 * on hopperd's data file (a backup tool or an mdb_stat killed halfway),
 * then a steady load runs. LMDB cannot reuse any page freed after the dead
 * reader's snapshot until its slot in the reader table is cleared, so the
 * file would grow with every commit; hopperd must clear the slot and the
 * file size must level off.
 *
 * Plateau, concretely: once the slot is gone, a window of WINDOW rounds of
 * load grows data.mdb by at most 5 % plus 64 KiB (a few dozen pages of
 * B-tree growth as the lanes' totals and the replay cache fill).
 * HOPPER_SOAK_SECONDS keeps the load going at least that long and then
 * checks the last window (scripts/soak-faults.sh).
 */
#include <hopper/hopper.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cmocka.h>
#include <lmdb.h>

#include "fault_util.h"
#include "harness.h"

#define LOAD_MS 0   /* no minimum: a plateau ends the default run */
#define WINDOW  200 /* rounds between two looks at the file */
#define GIVE_UP_MS                                            \
    100000 /* still growing after this: it does not level off \
            */
#define BATCH       10
#define PAYLOAD_LEN 1024

/* Forks a process that opens the data dir with LMDB, begins a read
 * transaction and waits; returns its pid once the transaction is open. */
static pid_t
start_reader(const char *dir)
{
    int fds[2];
    char ok = 0;
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        close(fds[0]);
        if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 16) != 0 ||
            mdb_env_open(env, dir, MDB_RDONLY, 0600) != 0 ||
            mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0) {
            _exit(1);
        }
        ssize_t w = write(fds[1], "r", 1);
        (void)w; /* the parent sees EOF instead if it failed */
        for (;;) {
            pause(); /* holding the snapshot until killed */
        }
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &ok, 1), 1);
    close(fds[0]);
    return pid;
}

/* Whether pid has a slot in the reader table (mdb_stat -r only lists it;
 * -rr would clear stale slots itself, which is hopperd's job here). */
static bool
reader_listed(const char *dir, pid_t pid)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "mdb_stat -r '%s' | awk '$1 == \"%d\" { f = 1 } END { exit !f }'",
             dir, (int)pid);
    return system(cmd) == 0;
}

static uint32_t
load_ms(void)
{
    const char *s = getenv("HOPPER_SOAK_SECONDS");
    return s != NULL && atoi(s) > 0 ? (uint32_t)atoi(s) * 1000u : LOAD_MS;
}

/* One round of the steady load: BATCH enqueued, claimed and acked, so the
 * backlog stays flat and every page the round dirties is freed again. */
static void
round_trip(hopper_client *c)
{
    static uint8_t payload[PAYLOAD_LEN];
    hopper_draft d[BATCH];
    hopper_ack_item items[BATCH];
    hopper_status st;
    hopper_batch *b = NULL;
    for (size_t i = 0; i < BATCH; i++) {
        d[i] = (hopper_draft){ .lane = "steady",
                               .payload = payload,
                               .payload_len = sizeof(payload) };
    }
    assert_int_equal(hopper_enqueue(c, d, BATCH, NULL, &st), HOPPER_OK);
    hopper_claim_opts co = { .max = BATCH, .lease_ms = 30000 };
    assert_int_equal(hopper_claim(c, "steady", &co, &b, &st), HOPPER_OK);
    assert_int_equal(b->n, BATCH);
    for (size_t i = 0; i < b->n; i++) {
        items[i] =
            (hopper_ack_item){ .id = b->msgs[i].id, .token = b->msgs[i].token };
    }
    assert_int_equal(hopper_ack(c, items, b->n, NULL, 0, NULL, &st), HOPPER_OK);
    hopper_batch_free(b);
}

static void
test_a_dead_readers_slot_is_cleared_and_the_file_levels_off(void **state)
{
    /* Delivered messages are kept for an hour by default; prune them at
     * once so the steady state is reached within the test. */
    static const char *const names[] = { "retention_ms" };
    broker_proc *bp = *state;
    hopper_client *c = fu_client(bp->url, 10000);
    hopper_status st;
    hopper_lane_settings ls = { .retention_ms = 1 };
    assert_int_equal(hopper_lane_update(c, "steady", &ls, names, 1, NULL, &st),
                     HOPPER_OK);
    round_trip(c);
    char path[400];
    snprintf(path, sizeof(path), "%s/data.mdb", bp->data);

    pid_t reader = start_reader(bp->data);
    assert_true(reader_listed(bp->data, reader));
    kill(reader, SIGKILL);
    assert_int_equal(waitpid(reader, NULL, 0), reader);

    /* Windows of WINDOW rounds. A window counts only once it began after
     * the slot was gone; the file has levelled off when one such window
     * grew it by at most 5 % + 64 KiB (with the slot still pinned every
     * commit needs new pages, so no window is flat). Counted in rounds, not
     * time: on a loaded machine the clearing and the rounds both slow down. */
    uint32_t min_ms = load_ms();
    uint64_t start = fu_mono_ms();
    size_t rounds = 0;
    long long first = fu_file_size(path), w_start = first, w_end = first;
    long long worst = -1; /* growth of the last window after the clearing */
    bool cleared = false, flat = false;
    for (;;) {
        for (int i = 0; i < WINDOW; i++) {
            round_trip(c);
        }
        rounds += WINDOW;
        w_end = fu_file_size(path);
        if (cleared) {
            worst = w_end - w_start;
            flat = w_end <= w_start + w_start / 20 + (64 << 10);
        } else {
            cleared = !reader_listed(bp->data, reader);
        }
        w_start = w_end;
        uint64_t ms = fu_mono_ms() - start;
        if ((flat && ms >= min_ms) || ms >= (uint64_t)min_ms + GIVE_UP_MS) {
            break;
        }
    }
    print_message("%zu rounds of %d enqueue+claim+ack in %llu ms after a "
                  "reader died holding a snapshot; data.mdb %lld KiB at "
                  "the start, %lld KiB at the end, last window after the "
                  "clearing %+lld KiB (-1: none)\n",
                  rounds, BATCH, (unsigned long long)(fu_mono_ms() - start),
                  first >> 10, w_end >> 10, worst >> 10);
    assert_true(cleared);
    if (!flat) {
        fail_msg("data.mdb still grows: +%lld KiB over the last %d rounds "
                 "(%lld KiB at the end)",
                 worst >> 10, WINDOW, w_end >> 10);
    }
    hopper_close(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_dead_readers_slot_is_cleared_and_the_file_levels_off,
            broker_proc_setup, broker_proc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
