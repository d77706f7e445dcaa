/*
 * crash_test.c - kill -9 at random moments under load, restart on the same
 * data dir, and prove nothing the broker acknowledged was lost:
 *
 *   - every acknowledged enqueue exists exactly once, dedupe keys holding
 *     across crashes (a producer whose reply was lost retries with the same
 *     key until it gets an answer);
 *   - no message whose ack was acknowledged is ever delivered again;
 *   - a claim left unacked (on purpose, or by a crash) is delivered again,
 *     and never before its lease ends;
 *   - after every kill the data dir passes mdb_stat and holds every write
 *     acknowledged so far.
 *
 * The load and the checks are loadcheck.c, shared with powerloss_test.c.
 * Environment: HOPPER_CRASH_CYCLES (default 3), HOPPER_CRASH_SYNC (full or
 * none, default full), HOPPER_CRASH_SEED (default: the time). It prints one
 * line of figures; scripts/soak.sh runs it long.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "loadcheck.h"

static void
check_store(const broker_proc *bp, int cycle)
{
    if (load_mdb_stat(bp->data, "-e") != 0) {
        fail_msg("cycle %d: mdb_stat fails on the data dir after a kill",
                 cycle);
    }
}

static const char *
env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

static void
test_kill9_cycles(void **state)
{
    broker_proc *bp = *state;
    int cycles = atoi(env_or("HOPPER_CRASH_CYCLES", "3"));
    const char *sync = env_or("HOPPER_CRASH_SYNC", "full");
    unsigned seed =
        (unsigned)strtoul(env_or("HOPPER_CRASH_SEED", "0"), NULL, 10);
    const char *extra[] = { "--sync", sync, NULL };
    load_figures fig;
    char prefix[160];

    if (seed == 0) {
        seed = (unsigned)time(NULL);
    }
    unsigned kill_seed = seed * 2654435761u;
    assert_int_equal(broker_proc_start(bp, extra), 0);
    load_run *r = load_start(bp->url, seed);

    for (int cycle = 1; cycle <= cycles; cycle++) {
        /* 0.3-1.5 s of load, so kills land in every phase of a commit. */
        load_sleep_ms(300u + (unsigned)rand_r(&kill_seed) % 1200u);
        broker_proc_kill(bp);
        check_store(bp, cycle);
        /* The kernel keeps what a killed process wrote: in either sync
         * mode the store holds every acknowledged write. */
        assert_int_equal(load_verify_store(r, bp->data, NULL), 0);
        /* NNG resends a request whose connection dropped once the broker
         * is back, under the same request id, so a short outage is
         * invisible to callers. Every other cycle stays down longer than
         * the clients' timeout: calls fail, and producers retry by key. */
        if (cycle % 2 == 0) {
            load_sleep_ms(2500);
        }
        if (broker_proc_restart(bp, extra) != 0) {
            fail_msg("cycle %d: hopperd did not restart on %s", cycle,
                     bp->data);
        }
    }
    load_sleep_ms(500);
    load_finish(r, bp->url, &fig);
    snprintf(prefix, sizeof(prefix), "crash_test: sync=%s seed=%u cycles=%d",
             sync, seed, cycles);
    load_print(stdout, prefix, &fig);

    load_assert_clean(&fig);
    assert_int_equal(broker_proc_stop(bp), 0);
    check_store(bp, cycles + 1);
    load_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_kill9_cycles, broker_proc_setup_idle, broker_proc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
