/*
 * fault_clock_test.c - the wall clock jumps. The broker runs in this
 * process on inproc:// with a test clock (broker_config.clock_source) that
 * the test steps back and forth, and libhopper talks to it as an
 * application would. The broker's clock is the max of the wall clock and
 * the last value it handed out (src/common/clock.c), so:
 *  - stepped back by J, it stands still until the wall clock catches up: a
 *    lease is never cut short and lives at most J longer, never forever;
 *  - stepped forward by J, a lease expires J early in real time, exactly
 *    when the stepped clock reaches its end, and not a millisecond before.
 * The same held clock paces the anonymous-access warning on Ping, which a
 * broker without keys on a listener other hosts reach logs at most once
 * an interval (a health check pings every few seconds), with the number
 * of Pings it did not log, while every reply carries it. That test starts
 * the broker with its listener counted as public (broker_config's
 * listeners_public: a test binds loopback only) and anonymous access
 * allowed, and reads the log from a captured stderr. With the clock held,
 * one test also checks that a claim or extend asking for no lease gets
 * hopper.h's HOPPER_DEFAULT_LEASE_MS, which libhopper's worker relies on.
 */
#include <hopper/hopper.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/broker.h"
#include "common/clock.h"
#include "fault_util.h"
#include "inproc_fixture.h"

#define LEASE_MS 10000
#define HOUR_MS  3600000ull

typedef struct fixture {
    char dir[64];
    broker *b;
    hopper_client *c;
    _Atomic uint64_t wall; /* what the test clock says */
    uint64_t t0;
} fixture;

static uint64_t
test_clock(void *arg)
{
    fixture *f = arg;
    return atomic_load(&f->wall);
}

static int
start(void **state, bool public)
{
    static int n;
    fixture *f = calloc(1, sizeof(*f));
    broker_config cfg;
    char url[64];

    inproc_prepare(f->dir, "clock", &cfg);
    snprintf(url, sizeof(url), "inproc://hopper-clock-%d", n++);
    f->t0 = hp_wall_ms();
    atomic_init(&f->wall, f->t0);
    cfg.listen[0] = url;
    cfg.clock_source = test_clock;
    cfg.clock_arg = f;
    cfg.listeners_public = public;
    cfg.allow_anonymous = public;
    inproc_start(&cfg, &f->b, -1, NULL);
    f->c = fu_client(url, 10000);
    *state = f;
    return 0;
}

static int
setup(void **state)
{
    return start(state, false);
}

/* The listener as if other hosts could reach it, anonymous allowed. */
static int
setup_public(void **state)
{
    return start(state, true);
}

static int
teardown(void **state)
{
    fixture *f = *state;
    hopper_close(f->c);
    inproc_stop(f->dir, f->b, NULL);
    free(f);
    return 0;
}

/* Enqueues one message into lane and claims it with LEASE_MS at t0. */
static hopper_batch *
enqueue_and_claim(fixture *f, const char *lane)
{
    hopper_status st;
    hopper_batch *b = NULL;
    hopper_draft d = { .lane = lane, .payload = "x", .payload_len = 1 };
    hopper_claim_opts co = { .max = 1, .lease_ms = LEASE_MS };
    assert_int_equal(hopper_enqueue(f->c, &d, 1, NULL, &st), HOPPER_OK);
    assert_int_equal(hopper_claim(f->c, lane, &co, &b, &st), HOPPER_OK);
    assert_int_equal(b->n, 1);
    assert_int_equal(b->msgs[0].lease_expires_at_ms, f->t0 + LEASE_MS);
    return b;
}

/* How many messages another worker can claim from lane at wall time w. */
static size_t
claimable_at(fixture *f, const char *lane, uint64_t w)
{
    hopper_status st;
    hopper_batch *b = NULL;
    hopper_claim_opts co = { .max = 10, .lease_ms = LEASE_MS };
    atomic_store(&f->wall, w);
    assert_int_equal(hopper_claim(f->c, lane, &co, &b, &st), HOPPER_OK);
    size_t n = b->n;
    hopper_batch_free(b);
    return n;
}

static uint64_t
broker_now(fixture *f)
{
    hopper_status st;
    hopper_ping_info pi;
    assert_int_equal(hopper_ping(f->c, &pi, &st), HOPPER_OK);
    return pi.now_ms;
}

static void
test_a_clock_stepped_back_stands_still_and_the_lease_ends_when_it_catches_up(
    void **state)
{
    fixture *f = *state;
    hopper_batch *held = enqueue_and_claim(f, "back");

    atomic_store(&f->wall, f->t0 - HOUR_MS);

    assert_int_equal(broker_now(f), f->t0); /* never backwards */
    assert_int_equal(claimable_at(f, "back", f->t0 - HOUR_MS), 0);
    assert_int_equal(claimable_at(f, "back", f->t0 - 1), 0);
    assert_int_equal(claimable_at(f, "back", f->t0 + LEASE_MS - 1), 0);
    /* Caught up: the lease ends exactly at its end, not an hour later. */
    assert_int_equal(claimable_at(f, "back", f->t0 + LEASE_MS), 1);
    hopper_status st;
    assert_int_equal(
        hopper_ack1(f->c, held->msgs[0].id, &held->msgs[0].token, &st),
        HOPPER_FAILED_PRECONDITION);
    assert_string_equal(st.reason, "LOST_CLAIM");
    hopper_batch_free(held);
}

/* libhopper's worker leans on HOPPER_DEFAULT_LEASE_MS being hopperd's
 * default: it extends every third of it. */
static void
test_a_claim_or_extend_asking_for_no_lease_gets_hopper_default_lease(
    void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_batch *b = NULL;
    hopper_draft d = { .lane = "dflt", .payload = "x", .payload_len = 1 };
    hopper_claim_opts co = { .max = 1, .lease_ms = 0 };
    uint64_t expires = 0;
    assert_int_equal(hopper_enqueue(f->c, &d, 1, NULL, &st), HOPPER_OK);

    assert_int_equal(hopper_claim(f->c, "dflt", &co, &b, &st), HOPPER_OK);
    atomic_store(&f->wall, f->t0 + 1000);
    assert_int_equal(
        hopper_extend(f->c, b->msgs[0].id, &b->msgs[0].token, 0, &expires, &st),
        HOPPER_OK);

    assert_int_equal(b->n, 1);
    assert_int_equal(b->msgs[0].lease_expires_at_ms,
                     f->t0 + HOPPER_DEFAULT_LEASE_MS);
    assert_int_equal(expires, f->t0 + 1000 + HOPPER_DEFAULT_LEASE_MS);
    hopper_batch_free(b);
}

static void
test_a_clock_stepped_forward_ends_a_lease_no_earlier_than_its_end(void **state)
{
    fixture *f = *state;
    hopper_batch *held = enqueue_and_claim(f, "fwd");

    /* A step shorter than the lease: still held. */
    assert_int_equal(claimable_at(f, "fwd", f->t0 + 4000), 0);
    assert_int_equal(claimable_at(f, "fwd", f->t0 + LEASE_MS - 1), 0);
    /* The holder can still settle it just before the end. */
    hopper_status st;
    uint64_t until = 0;
    assert_int_equal(hopper_extend(f->c, held->msgs[0].id, &held->msgs[0].token,
                                   LEASE_MS, &until, &st),
                     HOPPER_OK);
    assert_int_equal(until, f->t0 + LEASE_MS - 1 + LEASE_MS);
    /* An hour ahead: past the extended end, so it is free again. */
    assert_int_equal(claimable_at(f, "fwd", f->t0 + HOUR_MS), 1);
    hopper_batch_free(held);
}

static void
test_maintenance_expires_a_lease_after_a_forward_step_on_its_own(void **state)
{
    fixture *f = *state;
    hopper_status st;
    hopper_batch *held = enqueue_and_claim(f, "sweep");
    char id[27];
    memcpy(id, held->msgs[0].id, sizeof(id));
    hopper_batch_free(held);

    atomic_store(&f->wall, f->t0 + HOUR_MS);

    /* No claim runs now: the broker's own sweep must notice. */
    hopper_message *m = NULL;
    uint64_t deadline = fu_mono_ms() + 10000;
    for (;;) {
        assert_int_equal(hopper_get(f->c, id, &m, &st), HOPPER_OK);
        if (m->state != HOPPER_STATE_CLAIMED || fu_mono_ms() > deadline) {
            break;
        }
        hopper_message_free(m);
        fu_sleep_ms(50);
    }
    assert_int_equal(m->state, HOPPER_STATE_PENDING);
    assert_string_equal(m->last_error, "lease expired");
    hopper_message_free(m);
}

/* Pings with the broker's clock at wall_ms; the reply must warn. */
static void
ping_at(fixture *f, uint64_t wall_ms)
{
    hopper_ping_info info;
    hopper_status st;

    atomic_store(&f->wall, wall_ms);
    assert_int_equal(hopper_ping(f->c, &info, &st), HOPPER_OK);
    assert_non_null(strstr(info.warning, "anonymous access"));
}

/* How many lines of text hold needle. */
static int
count_lines(const char *text, const char *needle)
{
    char *copy = strdup(text);
    char *save = NULL;
    int n = 0;

    for (char *line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        n += strstr(line, needle) != NULL;
    }
    free(copy);
    return n;
}

static void
test_anonymous_ping_is_logged_once_an_interval_with_the_rest_counted(
    void **state)
{
    fixture *f = *state;
    uint64_t t0 = atomic_load(&f->wall);
    static char log[16384];
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;
    assert_non_null(tmp);

    dup2(fileno(tmp), STDERR_FILENO);
    for (uint64_t i = 0; i < 6; i++) { /* a health check every 10 s */
        ping_at(f, t0 + i * 10000);
    }
    /* Once an hour (docs/operations.md, "Logs"). */
    ping_at(f, t0 + HOUR_MS - 1);
    ping_at(f, t0 + HOUR_MS);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(log, 1, sizeof(log) - 1, tmp);
    log[n] = '\0';
    fclose(tmp);

    assert_int_equal(count_lines(log, "msg=\"anonymous access\""), 2);
    assert_int_equal(count_lines(log, "suppressed=0"), 1);
    assert_int_equal(count_lines(log, "suppressed=6"), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_clock_stepped_back_stands_still_and_the_lease_ends_when_it_catches_up,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_claim_or_extend_asking_for_no_lease_gets_hopper_default_lease,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_clock_stepped_forward_ends_a_lease_no_earlier_than_its_end,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_maintenance_expires_a_lease_after_a_forward_step_on_its_own,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_anonymous_ping_is_logged_once_an_interval_with_the_rest_counted,
            setup_public, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
