/*
 * runtime_worker.c - the same job as worker.c on libhopper's worker
 * runtime: four handler threads, heartbeats and the claim loop are the
 * library's; this file only says what a message means. Every third
 * message "fails" once and is retried after a second; a message whose
 * payload is empty is a permanent failure (a dead letter). Stops after
 * LIMIT messages are acked, or on SIGTERM/SIGINT (after a drain).
 *
 *   runtime_worker [URL [LANE [LIMIT]]]   defaults: $HOPPER_URL or
 *                                         tcp://127.0.0.1:7450,
 *                                         "examples", 100
 */
#define _POSIX_C_SOURCE                                  \
    200809L /* sigaction, pthread_sigmask under -std=c11 \
             */

#include <hopper/hopper.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct app {
    pthread_mutex_t mtx;
    long acked, limit;
} app;

/* GLOBAL: the signal handler's way to the worker, set before the
 * handlers are installed; hopper_worker_stop is async-signal-safe. */
static hopper_worker *volatile to_stop;

static void
on_signal(int sig)
{
    (void)sig;
    hopper_worker_stop(to_stop);
}

/* Runs on a handler thread, once per message. */
static void
handle(void *arg, hopper_job *job)
{
    app *a = arg;
    const hopper_message *m = hopper_job_message(job);
    hopper_status st;
    int code;

    printf("got %s attempt %u/%u: %.*s\n", m->id, (unsigned)m->attempts,
           (unsigned)m->max_attempts, (int)m->payload_len,
           (const char *)m->payload);
    if (m->payload_len == 0) {
        code = hopper_job_fail(job, "empty payload", &st);
    } else if (m->attempts == 1 && m->id[25] % 3 == 0) {
        code = hopper_job_retry(job, "simulated failure", 1000, &st);
    } else {
        code = hopper_job_ack(job, "done", 4, NULL, 0, NULL, &st);
        if (code == HOPPER_OK) {
            pthread_mutex_lock(&a->mtx);
            bool enough = ++a->acked == a->limit;
            pthread_mutex_unlock(&a->mtx);
            if (enough) {
                /* A handler may stop its worker. */
                hopper_worker_stop(hopper_job_worker(job));
            }
        }
    }
    if (code != HOPPER_OK) {
        /* LOST_CLAIM: the lease ran out and someone else has it. */
        fprintf(stderr, "runtime_worker: %s: %s %s\n", m->id,
                hopper_status_str(code), st.reason);
    }
}

int
main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : getenv("HOPPER_URL");
    app a = { .limit = argc > 3 ? strtol(argv[3], NULL, 10) : 100 };
    hopper_worker_opts o;
    hopper_worker *w;
    hopper_client *c;
    hopper_status st;

    pthread_mutex_init(&a.mtx, NULL);
    if (hopper_connect(url, NULL, &c, &st) != HOPPER_OK) {
        fprintf(stderr, "runtime_worker: connect: %s\n", st.message);
        return 1;
    }
    hopper_worker_opts_init(&o);
    o.lane = argc > 2 ? argv[2] : "examples";
    o.concurrency = 4;
    o.consumer = "example-runtime-worker";
    o.handler = handle;
    o.handler_arg = &a;
    /* Blocked while the threads start, so they inherit it blocked and
     * the signal reaches this thread, once to_stop is set. */
    sigset_t stops, old;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stops, &old);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (hopper_worker_start(c, &o, &w, &st) != HOPPER_OK) {
        fprintf(stderr, "runtime_worker: start: %s\n", st.message);
        hopper_close(c);
        return 1;
    }
    to_stop = w;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    int code = hopper_worker_wait(w, &st);
    hopper_worker_counts k;
    hopper_worker_counts_get(w, &k);
    printf("stopped: %llu acked, %llu retried, %llu dead\n",
           (unsigned long long)k.acked, (unsigned long long)k.retried,
           (unsigned long long)k.failed);
    if (code != HOPPER_OK) {
        fprintf(stderr, "runtime_worker: %s %s: %s\n", hopper_status_str(code),
                st.reason, st.message);
    }
    hopper_worker_free(w);
    hopper_close(c);
    return code == HOPPER_OK ? 0 : 1;
}
