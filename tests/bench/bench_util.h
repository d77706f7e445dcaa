/*
 * bench_util.h - what the store benchmarks share: a monotonic clock, dying
 * with a status, and removing a data dir. Header-only, so that a benchmark
 * also builds against an older store with no more than -Itests/bench
 * (targets_bench's "before" figure). Define BENCH_NAME, the program's name
 * for messages, and _XOPEN_SOURCE 700 (nftw) before including it.
 */
#ifndef HP_TESTS_BENCH_UTIL_H
#define HP_TESTS_BENCH_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/status.h"

/* Seconds on the monotonic clock. */
static inline double
bench_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void
bench_die(const char *what, const hp_status *st)
{
    fprintf(stderr, "%s: %s: %s %s: %s\n", BENCH_NAME, what,
            hp_code_name(st->code), st->reason, st->msg);
    exit(1);
}

static inline int
bench_rm_entry(const char *path, const struct stat *sb, int flag,
               struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it; a benchmark's data is scratch. */
static inline void
bench_rmtree(const char *dir)
{
    nftw(dir, bench_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
