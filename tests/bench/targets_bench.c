/*
 * targets_bench.c - what a claim costs in a lane with many targets: fills
 * one lane with N messages, each for a target of its own, then times
 * claims of one message for any target, and for one named target, each in
 * its own committed write transaction (sync none). Prints the latencies,
 * the LMDB calls per claim where the store counts them, and the peak RSS.
 * Asserts nothing: a benchmark, not a test.
 *
 * It uses only store API that schema 1 had too, so the same file builds
 * against the store before the lane_ready index, for a before/after
 * figure (docs/benchmarks.md has the commands and the last run).
 *
 * Usage: targets_bench [--dir DIR] [--targets N] [--claims K]
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/resource.h>

#include "store/store.h"

#define BENCH_NAME "targets_bench"
#include "bench_util.h"

#define BATCH 1000
#define SCOPE HP_S("bench")
#define LANE  HP_S("fanout")
#define NOW   UINT64_C(1700000000000)

static long
peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

typedef struct fill_arg {
    uint64_t base;
    uint32_t n;
    store_draft d[BATCH];
    char names[BATCH][16];
    store_enqueued out[BATCH];
} fill_arg;

static hp_code
do_fill(store_txn *t, void *arg, hp_status *st)
{
    fill_arg *a = arg;
    for (uint32_t i = 0; i < a->n; i++) {
        int len = snprintf(a->names[i], sizeof(a->names[i]), "t%07llu",
                           (unsigned long long)(a->base + i));
        memset(&a->d[i], 0, sizeof(a->d[i]));
        a->d[i].lane = LANE;
        a->d[i].target.p = a->names[i];
        a->d[i].target.len = (size_t)len;
        a->d[i].payload = "x";
        a->d[i].payload_len = 1;
    }
    return store_enqueue(t, SCOPE, a->d, a->n, NOW, a->out, st);
}

typedef struct claim_arg {
    hp_str target;
    bool any;
    hp_arena arena;
    store_claimed res;
    uint64_t ops;
} claim_arg;

static hp_code
do_claim(store_txn *t, void *arg, hp_status *st)
{
    claim_arg *a = arg;
    store_claim_req req = { .lane = LANE,
                            .target = a->target,
                            .any_target = a->any,
                            .max = 1,
                            .lease_ms = 60000 };
#if STORE_SCHEMA_VERSION >= 2
    uint64_t before = store_txn_index_ops(t);
#endif
    hp_code code = store_claim(t, SCOPE, &req, NOW + 1, &a->arena, &a->res, st);
#if STORE_SCHEMA_VERSION >= 2
    a->ops = store_txn_index_ops(t) - before;
#endif
    return code;
}

static int
cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Times k claims; prints mean, median and max in ms. */
static void
time_claims(store *s, const char *what, bool any, unsigned k)
{
    double *ms = calloc(k, sizeof(*ms));
    claim_arg a = { .any = any };
    hp_status st;
    double sum = 0;

    hp_arena_init(&a.arena);
    for (unsigned i = 0; i < k; i++) {
        char name[16];
        int len = snprintf(name, sizeof(name), "t%07u", i + k);
        a.target.p = name;
        a.target.len = (size_t)len;
        double t0 = bench_mono_s();
        if (store_run(s, true, do_claim, &a, &st) != HP_OK) {
            bench_die("claim", &st);
        }
        ms[i] = 1e3 * (bench_mono_s() - t0);
        sum += ms[i];
        if (a.res.n != 1) {
            fprintf(stderr, "targets_bench: claimed %zu\n", a.res.n);
            exit(1);
        }
        hp_arena_release(&a.arena);
    }
    qsort(ms, k, sizeof(*ms), cmp_double);
    printf("%-22s claims %4u  mean %9.3f ms  median %9.3f ms  max %9.3f ms",
           what, k, sum / k, ms[k / 2], ms[k - 1]);
#if STORE_SCHEMA_VERSION >= 2
    printf("  lmdb calls %llu", (unsigned long long)a.ops);
#endif
    printf("  peak rss %ld MB\n", peak_rss_mb());
    free(ms);
}

int
main(int argc, char **argv)
{
    const char *root = "/tmp";
    unsigned long long n = 1000000;
    unsigned k = 20;
    char dir[512];
    store_opts o;
    store *s;
    hp_status st;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0) {
            root = argv[i + 1];
        } else if (strcmp(argv[i], "--targets") == 0) {
            n = strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--claims") == 0) {
            k = (unsigned)strtoul(argv[i + 1], NULL, 10);
        } else {
            fprintf(stderr, "usage: targets_bench [--dir DIR] [--targets N] "
                            "[--claims K]\n");
            return 2;
        }
    }
    if (k == 0 || 2ull * k > n) {
        fprintf(stderr, "targets_bench: need --targets >= 2 * --claims\n");
        return 2;
    }
    snprintf(dir, sizeof(dir), "%s/targets-bench-XXXXXX", root);
    if (mkdtemp(dir) == NULL) {
        perror("targets_bench: mkdtemp");
        return 1;
    }
    store_opts_init(&o);
    o.dir = dir;
    o.sync = STORE_SYNC_NONE;
    o.map_size = (size_t)1 << 30;
    if (store_open(&o, &s, &st) != HP_OK) {
        bench_die("open", &st);
    }
    fill_arg *fa = calloc(1, sizeof(*fa));
    double t0 = bench_mono_s();
    for (uint64_t done = 0; done < n; done += fa->n) {
        fa->base = done;
        fa->n = (uint32_t)(n - done < BATCH ? n - done : BATCH);
        if (store_run(s, true, do_fill, fa, &st) != HP_OK) {
            bench_die("enqueue", &st);
        }
    }
    printf("schema %d: %llu targets, one message each, filled in %.1f s\n",
           STORE_SCHEMA_VERSION, n, bench_mono_s() - t0);
    free(fa);
    time_claims(s, "one named target", false, k);
    time_claims(s, "any target", true, k);
    store_close(s);
    bench_rmtree(dir);
    return 0;
}
