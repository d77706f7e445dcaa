/*
 * fault_readers_test.c - a reader process dies holding a read transaction
 * on hopperd's data file (a backup tool or an mdb_stat killed halfway),
 * then a steady load runs. LMDB cannot reuse any page freed after the dead
 * reader's snapshot until its slot in the reader table is cleared, so the
 * file would grow with every commit; hopperd must clear the slot and the
 * file size must level off.
 *
 * Plateau, concretely: over a load of LOAD_MS (HOPPER_SOAK_SECONDS makes it
 * longer, see scripts/soak-faults.sh) data.mdb is sampled every 250 ms, and
 * its size at the end may exceed its size at the half-way mark by at most
 * 5 % plus 64 KiB (a few dozen pages of B-tree growth as the lanes' totals
 * and the replay cache fill).
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

#define LOAD_MS     6000
#define SAMPLE_MS   250
#define MAX_SAMPLES 20000
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

    uint32_t total_ms = load_ms();
    long long *sizes = calloc(MAX_SAMPLES, sizeof(*sizes));
    size_t n = 0, rounds = 0;
    uint64_t start = fu_mono_ms(), next = start;
    while (fu_mono_ms() - start < total_ms) {
        round_trip(c);
        rounds++;
        if (fu_mono_ms() >= next && n < MAX_SAMPLES) {
            sizes[n++] = fu_file_size(path);
            next += SAMPLE_MS;
        }
    }
    sizes[n++] = fu_file_size(path);

    bool still_listed = reader_listed(bp->data, reader);
    long long half = sizes[n / 2], end = sizes[n - 1];
    print_message("%zu rounds of %d enqueue+claim+ack over %u ms after a "
                  "reader died holding a snapshot; data.mdb %lld KiB at "
                  "the start, %lld KiB half-way, %lld KiB at the end\n",
                  rounds, BATCH, total_ms, sizes[0] >> 10, half >> 10,
                  end >> 10);
    assert_false(still_listed);
    if (end > half + half / 20 + (64 << 10)) {
        fail_msg("data.mdb still grows: %lld KiB half-way, %lld KiB at the "
                 "end",
                 half >> 10, end >> 10);
    }
    free(sizes);
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
