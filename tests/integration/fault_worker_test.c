/*
 * fault_worker_test.c - workers that die. A worker here is a separate
 * process (this binary run again with "worker" as argv[1]) that claims a
 * batch through libhopper, acks part of it and is then killed by SIGKILL,
 * as a crashed or OOM-killed consumer would be. What it acked stays
 * delivered; what it held comes back to the next worker once the lease
 * ran out, never before; and a message that kills every worker that takes
 * it ends in dead letters after max_attempts with "lease expired" as its
 * last error.
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
#include <time.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cmocka.h>

#include "fault_util.h"
#include "harness.h"

#define BATCH           10
#define ACKED           3 /* the dying worker acks this many first */
#define LEASE_MS        1500
#define POISON_ATTEMPTS 3
#define POISON_LEASE_MS 300

/* ---- the worker process ---------------------------------------------------
 */

/* argv: worker URL LANE MAX LEASE_MS N_ACK. Claims (waiting up to 3 s for
 * work), acks the first N_ACK, writes "<id> <claim_ms>" lines of what it
 * left unsettled to stdout, and dies by SIGKILL. Exits 3 if it got nothing. */
static int
worker_main(char **argv)
{
    hopper_client *c = NULL;
    hopper_status st;
    hopper_options o;
    hopper_options_init(&o);
    o.timeout_ms = 20000;
    if (hopper_connect(argv[2], &o, &c, &st) != HOPPER_OK) {
        return 2;
    }
    hopper_claim_opts co = { .max = (uint32_t)atoi(argv[4]),
                             .lease_ms = (uint32_t)atoi(argv[5]),
                             .wait_ms = 3000,
                             .consumer = "doomed-worker" };
    hopper_batch *b = NULL;
    if (hopper_claim(c, argv[3], &co, &b, &st) != HOPPER_OK || b->n == 0) {
        hopper_batch_free(b);
        hopper_close(c);
        return 3;
    }
    size_t n_ack = (size_t)atoi(argv[6]);
    for (size_t i = 0; i < b->n; i++) {
        if (i < n_ack) {
            if (hopper_ack1(c, b->msgs[i].id, &b->msgs[i].token, &st) !=
                HOPPER_OK) {
                return 4;
            }
            printf("acked %s\n", b->msgs[i].id);
        } else {
            printf("held %s %llu\n", b->msgs[i].id,
                   (unsigned long long)b->msgs[i].lease_expires_at_ms);
        }
    }
    fflush(stdout);
    raise(SIGKILL); /* mid-batch: no nack, no close, no goodbye */
    return 5;
}

/* ---- the test side --------------------------------------------------------
 */

typedef struct worker_out {
    char acked[BATCH][27];
    size_t n_acked;
    char held[BATCH][27];
    uint64_t held_until[BATCH];
    size_t n_held;
    int status; /* as from waitpid */
} worker_out;

/* Runs one worker process to its death and collects what it reported. */
static void
run_worker(const char *url, const char *lane, uint32_t max, uint32_t lease_ms,
           uint32_t n_ack, worker_out *out)
{
    char smax[16], slease[16], sack[16], line[128];
    int fds[2];
    memset(out, 0, sizeof(*out));
    snprintf(smax, sizeof(smax), "%u", max);
    snprintf(slease, sizeof(slease), "%u", lease_ms);
    snprintf(sack, sizeof(sack), "%u", n_ack);
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl("/proc/self/exe", "fault_worker_test", "worker", url, lane, smax,
              slease, sack, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        unsigned long long until = 0;
        char id[27];
        if (sscanf(line, "acked %26s", id) == 1 && out->n_acked < BATCH) {
            memcpy(out->acked[out->n_acked++], id, sizeof(id));
        } else if (sscanf(line, "held %26s %llu", id, &until) == 2 &&
                   out->n_held < BATCH) {
            memcpy(out->held[out->n_held], id, sizeof(id));
            out->held_until[out->n_held++] = until;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    assert_int_equal(waitpid(pid, &out->status, 0), pid);
}

static uint64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
enqueue_n(hopper_client *c, const char *lane, size_t n, uint32_t max_attempts)
{
    hopper_status st;
    for (size_t i = 0; i < n; i++) {
        char payload[32];
        int len = snprintf(payload, sizeof(payload), "job-%zu", i);
        hopper_draft d = { .lane = lane,
                           .payload = payload,
                           .payload_len = (size_t)len,
                           .max_attempts = max_attempts };
        assert_int_equal(hopper_enqueue(c, &d, 1, NULL, &st), HOPPER_OK);
    }
}

static void
test_a_worker_killed_mid_batch_loses_nothing_and_its_claims_return_after_the_lease(
    void **state)
{
    broker_proc *bp = *state;
    hopper_client *c = fu_client(bp->url, 20000);
    hopper_status st;
    worker_out w;
    enqueue_n(c, "jobs", BATCH, 0);

    run_worker(bp->url, "jobs", BATCH, LEASE_MS, ACKED, &w);

    assert_true(WIFSIGNALED(w.status) && WTERMSIG(w.status) == SIGKILL);
    assert_int_equal(w.n_acked, ACKED);
    assert_int_equal(w.n_held, BATCH - ACKED);
    for (size_t i = 0; i < w.n_acked; i++) {
        hopper_message *m = NULL;
        assert_int_equal(hopper_get(c, w.acked[i], &m, &st), HOPPER_OK);
        assert_int_equal(m->state, HOPPER_STATE_DELIVERED);
        hopper_message_free(m);
    }
    /* The survivor long-polls; every held message must come back, and
     * none before its lease ran out. */
    uint64_t delay_max = 0;
    size_t back = 0;
    while (back < w.n_held) {
        hopper_batch *b = NULL;
        hopper_claim_opts co = { .max = BATCH,
                                 .lease_ms = 60000,
                                 .wait_ms = 5000,
                                 .consumer = "survivor" };
        assert_int_equal(hopper_claim(c, "jobs", &co, &b, &st), HOPPER_OK);
        uint64_t now = wall_ms();
        if (b->n == 0) {
            fail_msg("only %zu of %zu held messages came back", back, w.n_held);
        }
        for (size_t i = 0; i < b->n; i++) {
            size_t k = 0;
            while (k < w.n_held && strcmp(w.held[k], b->msgs[i].id) != 0) {
                k++;
            }
            assert_true(k < w.n_held); /* an acked one never comes back */
            /* The claim was answered after the old lease's end: its new
             * lease started at or after it. */
            uint64_t started = b->msgs[i].lease_expires_at_ms - 60000;
            if (started < w.held_until[k]) {
                fail_msg("%s handed out again %llu ms before its lease ended",
                         b->msgs[i].id,
                         (unsigned long long)(w.held_until[k] - started));
            }
            uint64_t delay = now - w.held_until[k];
            delay_max = delay > delay_max ? delay : delay_max;
            assert_int_equal(b->msgs[i].attempts, 2);
            assert_string_equal(b->msgs[i].last_error, "lease expired");
            assert_int_equal(
                hopper_ack1(c, b->msgs[i].id, &b->msgs[i].token, &st),
                HOPPER_OK);
            back++;
        }
        hopper_batch_free(b);
    }
    hopper_lane_stats *ls = NULL;
    assert_int_equal(hopper_stats(c, "jobs", &ls, &st), HOPPER_OK);
    assert_int_equal(ls->acked_total, BATCH);
    assert_int_equal(ls->expired_total, BATCH - ACKED);
    assert_int_equal(ls->claimed + ls->pending, 0);
    hopper_lane_stats_free(ls);
    print_message("%zu claims of a SIGKILLed worker came back after their "
                  "%d ms lease, at most %llu ms after it ended\n",
                  back, LEASE_MS, (unsigned long long)delay_max);
    hopper_close(c);
}

static void
test_a_message_that_kills_every_worker_ends_in_dead_letters(void **state)
{
    broker_proc *bp = *state;
    hopper_client *c = fu_client(bp->url, 20000);
    hopper_status st;
    worker_out w;
    char id[27] = { 0 };
    enqueue_n(c, "poison", 1, POISON_ATTEMPTS);

    int deaths = 0;
    for (;;) {
        run_worker(bp->url, "poison", 1, POISON_LEASE_MS, 0, &w);
        if (WIFEXITED(w.status) && WEXITSTATUS(w.status) == 3) {
            break; /* nothing came back within the worker's 3 s wait */
        }
        assert_true(WIFSIGNALED(w.status) && WTERMSIG(w.status) == SIGKILL);
        assert_int_equal(w.n_held, 1);
        if (id[0] == '\0') {
            memcpy(id, w.held[0], sizeof(id));
        }
        assert_string_equal(w.held[0], id);
        deaths++;
        assert_true(deaths <= POISON_ATTEMPTS);
    }

    assert_int_equal(deaths, POISON_ATTEMPTS);
    hopper_message *m = NULL;
    assert_int_equal(hopper_get(c, id, &m, &st), HOPPER_OK);
    assert_int_equal(m->state, HOPPER_STATE_DEAD);
    assert_int_equal(m->attempts, POISON_ATTEMPTS);
    assert_string_equal(m->last_error, "lease expired");
    assert_string_equal(m->consumer, "doomed-worker");
    hopper_message_free(m);
    hopper_page *pg = NULL;
    assert_int_equal(
        hopper_dead_list(c, "poison", NULL, 0, 10, false, &pg, &st), HOPPER_OK);
    assert_int_equal(pg->n, 1);
    assert_string_equal(pg->msgs[0].id, id);
    hopper_page_free(pg);
    hopper_lane_stats *ls = NULL;
    assert_int_equal(hopper_stats(c, "poison", &ls, &st), HOPPER_OK);
    assert_int_equal(ls->expired_total, POISON_ATTEMPTS);
    assert_int_equal(ls->dead, 1);
    hopper_lane_stats_free(ls);
    print_message("the poison message killed %d workers, then went to dead "
                  "letters with last_error 'lease expired'\n",
                  deaths);
    hopper_close(c);
}

int
main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "worker") == 0) {
        return worker_main(argv);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_worker_killed_mid_batch_loses_nothing_and_its_claims_return_after_the_lease,
            broker_proc_setup, broker_proc_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_message_that_kills_every_worker_ends_in_dead_letters,
            broker_proc_setup, broker_proc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
