/*
 * fault_restart_test.c - hopperd started on a data dir that already holds
 * a large backlog serves at once and replays nothing: LMDB is consistent
 * at every commit, so there is no log to re-read. The backlog (BACKLOG
 * messages, or HOPPER_BACKLOG) is written straight into the store by
 * backlog_build; hopperd is then started on it and claimed from.
 *
 * Correctness only, never speed: the first claim returns the first message
 * written, the lane counts the whole backlog, and starting wrote at most a
 * handful of transactions (the last transaction id, from mdb_stat, moves by
 * a few, not by anything proportional to the backlog). The time to the
 * first claim is printed; scripts/restart-backlog.sh measures it with 1e6
 * messages on a release build.
 */
#include <hopper/hopper.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fault_util.h"
#include "harness.h"

#ifndef BACKLOG_BUILD_PATH
#error "BACKLOG_BUILD_PATH must name the backlog_build binary"
#endif

#define BACKLOG 100000

/* The "Last transaction ID" mdb_stat reports for dir, or -1. */
static long long
last_txn(const char *dir)
{
    char cmd[512], line[256];
    long long id = -1;
    snprintf(cmd, sizeof(cmd), "mdb_stat -e '%s'", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL) {
        const char *at = strstr(line, "Last transaction ID:");
        if (at != NULL) {
            id = atoll(at + strlen("Last transaction ID:"));
        }
    }
    pclose(p);
    return id;
}

static void
test_a_restart_on_a_large_backlog_serves_at_once_with_no_replay(void **state)
{
    broker_proc *bp = *state;
    hopper_status st;
    const char *env = getenv("HOPPER_BACKLOG");
    unsigned long long n = env != NULL ? strtoull(env, NULL, 10) : BACKLOG;
    char cmd[512];
    /* The harness makes the temp dir; hopperd is started only after the
     * backlog is in place. */
    assert_int_equal(broker_proc_start(bp, NULL), 0);
    assert_int_equal(broker_proc_stop(bp), 0);
    snprintf(cmd, sizeof(cmd), "'%s' '%s' %llu", BACKLOG_BUILD_PATH, bp->data,
             n);
    assert_int_equal(system(cmd), 0);
    long long txn_before = last_txn(bp->data);
    char path[400];
    snprintf(path, sizeof(path), "%s/data.mdb", bp->data);
    long long size_before = fu_file_size(path);

    uint64_t t0 = fu_mono_ms();
    assert_int_equal(broker_proc_restart(bp, NULL), 0);
    hopper_client *c = fu_client(bp->url, 10000);
    hopper_batch *b = NULL;
    hopper_claim_opts co = { .max = 1, .lease_ms = 60000 };
    assert_int_equal(hopper_claim(c, "backlog", &co, &b, &st), HOPPER_OK);
    uint64_t t1 = fu_mono_ms();

    assert_int_equal(b->n, 1);
    const char *want = "backlog-0.";
    assert_true(b->msgs[0].payload_len >= strlen(want));
    assert_memory_equal(b->msgs[0].payload, want, strlen(want));
    assert_int_equal(hopper_ack1(c, b->msgs[0].id, &b->msgs[0].token, &st),
                     HOPPER_OK);
    hopper_batch_free(b);
    hopper_lane_stats *ls = NULL;
    assert_int_equal(hopper_stats(c, "backlog", &ls, &st), HOPPER_OK);
    assert_int_equal(ls->pending, n - 1);
    assert_int_equal(ls->enqueued_total, n);
    hopper_lane_stats_free(ls);
    hopper_close(c);
    assert_int_equal(broker_proc_stop(bp), 0);
    long long txn_after = last_txn(bp->data);
    long long size_after = fu_file_size(path);

    print_message("%llu-message backlog: first claim %llu ms after starting "
                  "hopperd (ASan build; timing not asserted); transactions "
                  "%lld -> %lld, data.mdb %lld -> %lld KiB\n",
                  n, (unsigned long long)(t1 - t0), txn_before, txn_after,
                  size_before >> 10, size_after >> 10);
    /* Open, a claim, an ack and a few maintenance passes: a replay would
     * write thousands. */
    assert_true(txn_after - txn_before <= 20);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_restart_on_a_large_backlog_serves_at_once_with_no_replay,
            broker_proc_setup_idle, broker_proc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
