/*
 * store_bench.c - drives the store directly (no broker, no network) and
 * prints messages per second for enqueue and for claim+ack, with 256-byte
 * payloads, batch sizes 1 and 100, sync none and full, at backlogs of 1e3,
 * 1e5 and 1e6 pending messages.
 *
 * Method: for each (sync, backlog) a fresh store is preloaded with the
 * backlog (untimed, sync none). Then for each batch size:
 *  - enqueue: batches of B drafts, one write transaction per batch, into a
 *    second lane, for up to --seconds;
 *  - claim+ack: rounds of R = 1000 messages are enqueued untimed, then
 *    claimed (one transaction per claim of up to B) and acked (one
 *    transaction per batch ack of the claimed set), timed, so the pending
 *    backlog stays between N and N + R throughout.
 * Every transaction commits; with sync full each commit is on disk
 * (HOPPER_BENCH_LOG_NOSYNC=1: in the log, not synced, to measure CPU).
 *
 * Usage: store_bench [--dir DIR] [--seconds S] [--backlogs 1000,100000,...]
 *                    [--sync none|full|both] [--batches 1,100]
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define BENCH_NAME "store_bench"
#include "bench_util.h"

#define PAYLOAD_LEN 256
#define ROUND       1000
#define MAX_LIST    8

typedef struct bench {
    char root[256];
    double seconds;
    uint64_t backlogs[MAX_LIST];
    size_t n_backlogs;
    uint32_t batches[MAX_LIST];
    size_t n_batches;
    int syncs[2];
    size_t n_syncs;
    uint8_t payload[PAYLOAD_LEN];
    uint64_t now; /* the store's clock: advances 1 ms per transaction */
} bench;

static store *
open_store(const char *dir, store_sync sync)
{
    store_opts o;
    store *s;
    hp_status st;
    store_opts_init(&o);
    o.dir = dir;
    o.sync = sync;
    o.map_size = (size_t)256 << 20;
    /* HOPPER_BENCH_LOG_NOSYNC=1: with sync full the log is written but not
     * synced, so the figure is the CPU of the logged path, without the
     * disk's flush time (which varies more than the code's work). */
    const char *nosync = getenv("HOPPER_BENCH_LOG_NOSYNC");
    o.debug_log_nosync = nosync != NULL && strcmp(nosync, "1") == 0;
    if (store_open(&o, &s, &st) != HP_OK) {
        bench_die("open", &st);
    }
    return s;
}

typedef struct enq_arg {
    bench *b;
    hp_str lane;
    uint32_t n;
    store_draft *drafts;
    store_enqueued *out;
} enq_arg;

static hp_code
do_enqueue(store_txn *t, void *arg, hp_status *st)
{
    enq_arg *a = arg;
    for (uint32_t i = 0; i < a->n; i++) {
        memset(&a->drafts[i], 0, sizeof(a->drafts[i]));
        a->drafts[i].lane = a->lane;
        a->drafts[i].payload = a->b->payload;
        a->drafts[i].payload_len = PAYLOAD_LEN;
    }
    return store_enqueue(t, HP_S("bench"), a->drafts, a->n, a->b->now, a->out,
                         st);
}

static void
enqueue_n(bench *b, store *s, hp_str lane, uint64_t n, uint32_t batch)
{
    store_draft *d = calloc(batch, sizeof(*d));
    store_enqueued *out = calloc(batch, sizeof(*out));
    hp_status st;
    for (uint64_t done = 0; done < n;) {
        uint32_t k = (uint32_t)(n - done < batch ? n - done : batch);
        enq_arg a = { b, lane, k, d, out };
        b->now++;
        if (store_run(s, true, do_enqueue, &a, &st) != HP_OK) {
            bench_die("enqueue", &st);
        }
        done += k;
    }
    free(d);
    free(out);
}

typedef struct claim_arg {
    bench *b;
    uint32_t max;
    hp_arena *arena;
    store_claimed res;
} claim_arg;

static hp_code
do_claim(store_txn *t, void *arg, hp_status *st)
{
    claim_arg *a = arg;
    store_claim_req req = { .lane = HP_S("work"),
                            .max = a->max,
                            .lease_ms = 60000,
                            .consumer = HP_S("bench") };
    return store_claim(t, HP_S("bench"), &req, a->b->now, a->arena, &a->res,
                       st);
}

typedef struct ack_arg {
    bench *b;
    store_ack_item *items;
    size_t n;
} ack_arg;

static hp_code
do_ack(store_txn *t, void *arg, hp_status *st)
{
    ack_arg *a = arg;
    return store_ack(t, HP_S("bench"), a->items, a->n, NULL, 0, a->b->now, NULL,
                     st);
}

/* Claims and acks `n` messages in claims of up to `batch`; returns the
 * seconds spent. */
static double
claim_ack_n(bench *b, store *s, uint64_t n, uint32_t batch)
{
    store_ack_item *items = calloc(batch, sizeof(*items));
    hp_arena arena;
    hp_status st;
    double spent = 0;

    hp_arena_init(&arena);
    for (uint64_t done = 0; done < n;) {
        uint32_t k = (uint32_t)(n - done < batch ? n - done : batch);
        claim_arg ca = { b, k, &arena, { NULL, 0 } };
        double t0 = bench_mono_s();
        b->now++;
        if (store_run(s, true, do_claim, &ca, &st) != HP_OK) {
            bench_die("claim", &st);
        }
        if (ca.res.n == 0) {
            fprintf(stderr, "store_bench: backlog ran dry\n");
            exit(1);
        }
        for (size_t i = 0; i < ca.res.n; i++) {
            items[i].id = ca.res.msgs[i].id;
            items[i].token = ca.res.msgs[i].token;
        }
        ack_arg aa = { b, items, ca.res.n };
        b->now++;
        if (store_run(s, true, do_ack, &aa, &st) != HP_OK) {
            bench_die("ack", &st);
        }
        spent += bench_mono_s() - t0;
        done += ca.res.n;
        hp_arena_release(&arena);
    }
    free(items);
    return spent;
}

static double
bench_enqueue(bench *b, store *s, uint32_t batch)
{
    uint64_t n = 0;
    double t0 = bench_mono_s(), t;
    do {
        enqueue_n(b, s, HP_S("enq"), (uint64_t)batch * (batch == 1 ? 50 : 5),
                  batch);
        n += (uint64_t)batch * (batch == 1 ? 50 : 5);
        t = bench_mono_s() - t0;
    } while (t < b->seconds);
    return (double)n / t;
}

static double
bench_claim_ack(bench *b, store *s, uint32_t batch)
{
    uint64_t n = 0;
    double spent = 0, t0 = bench_mono_s();
    uint64_t round = batch == 1 ? 100 : ROUND;
    do {
        enqueue_n(b, s, HP_S("work"), round, 1000 < round ? 1000 : 100);
        spent += claim_ack_n(b, s, round, batch);
        n += round;
    } while (bench_mono_s() - t0 < b->seconds * 2 && spent < b->seconds);
    return (double)n / spent;
}

static void
parse_list(const char *s, uint64_t *out, size_t *n)
{
    char *end;
    *n = 0;
    while (*s != '\0' && *n < MAX_LIST) {
        out[(*n)++] = strtoull(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *end != '\0') {
            break;
        }
    }
}

static void
usage(void)
{
    fprintf(stderr, "usage: store_bench [--dir DIR] [--seconds S] "
                    "[--backlogs N,N,...] [--batches B,B] "
                    "[--sync none|full|both]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    static bench b;
    const char *dir = NULL;
    uint64_t tmp[MAX_LIST];

    b.seconds = 2.0;
    b.backlogs[0] = 1000;
    b.backlogs[1] = 100000;
    b.backlogs[2] = 1000000;
    b.n_backlogs = 3;
    b.batches[0] = 1;
    b.batches[1] = 100;
    b.n_batches = 2;
    b.syncs[0] = STORE_SYNC_NONE;
    b.syncs[1] = STORE_SYNC_FULL;
    b.n_syncs = 2;
    b.now = 1700000000000ull;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            usage();
        }
        if (strcmp(argv[i], "--dir") == 0) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--seconds") == 0) {
            b.seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--backlogs") == 0) {
            parse_list(argv[++i], b.backlogs, &b.n_backlogs);
        } else if (strcmp(argv[i], "--batches") == 0) {
            parse_list(argv[++i], tmp, &b.n_batches);
            for (size_t k = 0; k < b.n_batches; k++) {
                b.batches[k] = (uint32_t)tmp[k];
            }
        } else if (strcmp(argv[i], "--sync") == 0) {
            const char *v = argv[++i];
            b.n_syncs = 1;
            if (strcmp(v, "both") == 0) {
                b.n_syncs = 2;
            } else if (strcmp(v, "full") == 0) {
                b.syncs[0] = STORE_SYNC_FULL;
            } else if (strcmp(v, "none") != 0) {
                usage();
            }
        } else {
            usage();
        }
    }
    snprintf(b.root, sizeof(b.root), "%s/hopper-bench-XXXXXX",
             dir != NULL ? dir : "/tmp");
    if (mkdtemp(b.root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t i = 0; i < PAYLOAD_LEN; i++) {
        b.payload[i] = (uint8_t)(i * 31 + 7);
    }
    printf("# store_bench: 256-byte payloads, %.1f s per cell, dir %s\n",
           b.seconds, b.root);
    printf("%-5s %6s %9s %14s %14s\n", "sync", "batch", "backlog", "enqueue/s",
           "claim+ack/s");
    for (size_t si = 0; si < b.n_syncs; si++) {
        for (size_t bi = 0; bi < b.n_backlogs; bi++) {
            char path[300];
            snprintf(path, sizeof(path), "%s/s%zu-b%zu", b.root, si, bi);
            store *s = open_store(path, STORE_SYNC_NONE);
            enqueue_n(&b, s, HP_S("work"), b.backlogs[bi], 1000);
            store_close(s);
            s = open_store(path, (store_sync)b.syncs[si]);
            for (size_t ki = 0; ki < b.n_batches; ki++) {
                double e = bench_enqueue(&b, s, b.batches[ki]);
                double c = bench_claim_ack(&b, s, b.batches[ki]);
                printf("%-5s %6u %9llu %14.0f %14.0f\n",
                       b.syncs[si] == STORE_SYNC_FULL ? "full" : "none",
                       b.batches[ki], (unsigned long long)b.backlogs[bi], e, c);
                fflush(stdout);
            }
            store_close(s);
            bench_rmtree(path);
        }
    }
    bench_rmtree(b.root);
    return 0;
}
