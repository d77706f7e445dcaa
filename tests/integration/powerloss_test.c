/*
 * powerloss_test.c - power cuts at random moments under load. hopperd runs
 * with the power-loss layer preloaded (tests/powerloss), which keeps what a
 * disk would hold: only the writes a sync covered. A cut is SIGKILL and
 * then powerloss_cut, which puts that image in place of each data file
 * (and, on every other cut by default, keeps half of the unsynced pages, as
 * a disk that wrote them back early would). After each cut, before hopperd
 * restarts on what is left:
 *
 *   - the store opens, replaying its write-ahead log, and its tables
 *     agree (hopperd check);
 *   - LMDB then opens the environment clean (mdb_stat -efa). Not before:
 *     with the log, data.mdb's newest meta page may point at pages the
 *     cut lost until the store's recovery puts the checkpoint's back;
 *   - every write acknowledged so far is there (loadcheck.c), and at the
 *     end the crash test's checker runs on the drained lane.
 *
 * With --sync full nothing acknowledged may be lost. The negative control
 * (HOPPER_POWERLOSS_CONTROL=1) runs a hopperd that replies before it syncs
 * (HOPPER_DEBUG_HOOKS) and passes only if a cut catches a lost write.
 * With --sync none the test measures what cuts lose and checks that LMDB
 * still opens and serves.
 *
 * Environment: HOPPER_POWERLOSS_SYNC (full or none, default full),
 * HOPPER_POWERLOSS_CUTS (default 4; 20 at most for the control, which
 * stops at its first catch), HOPPER_POWERLOSS_KEEP_PCT (share of unsynced
 * pages a cut keeps; default: 0 and 50 in turn with sync full, 0 with the
 * control and sync none), HOPPER_POWERLOSS_CONTROL, HOPPER_POWERLOSS_SEED
 * (default: the time). scripts/soak-powerloss.sh runs it long.
 */
#define _GNU_SOURCE /* dl_iterate_phdr */

#include <link.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cmocka.h>

#include "harness.h"
#include "loadcheck.h"

#ifndef POWERLOSS_SHIM_PATH
#error "POWERLOSS_SHIM_PATH must name the power-loss shim"
#endif
#ifndef POWERLOSS_CUT_PATH
#error "POWERLOSS_CUT_PATH must name powerloss_cut"
#endif

#define CONTROL_MAX_CUTS 20
#define OUTAGE_MS        2500

typedef struct pl_opts {
    const char *sync;
    int cuts;
    int keep_pct; /* -1: 0 and 50 in turn */
    bool control;
    unsigned seed;
} pl_opts;

/* The environment hopperd runs in, kept alive for the whole test. */
typedef struct pl_env {
    char state[300];
    char preload[1200];
    char dir_var[400];
    char state_var[400];
    const char *entries[6];
} pl_env;

typedef struct cut_totals {
    uint64_t dirty_pages, kept_pages;
    size_t cut_dirty, cut_kept; /* of the last cut */
    int cuts, damaged, caught_at;
    char damage[512];
} cut_totals;

static const char *
env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

static pl_opts
read_opts(void)
{
    pl_opts o;
    o.sync = env_or("HOPPER_POWERLOSS_SYNC", "full");
    o.control = strcmp(env_or("HOPPER_POWERLOSS_CONTROL", "0"), "1") == 0;
    o.cuts = atoi(env_or("HOPPER_POWERLOSS_CUTS", o.control ? "20" : "4"));
    if (o.control && o.cuts > CONTROL_MAX_CUTS) {
        o.cuts = CONTROL_MAX_CUTS;
    }
    bool strict = strcmp(o.sync, "full") == 0 && !o.control;
    o.keep_pct = atoi(env_or("HOPPER_POWERLOSS_KEEP_PCT", strict ? "-1" : "0"));
    o.seed = (unsigned)strtoul(env_or("HOPPER_POWERLOSS_SEED", "0"), NULL, 10);
    if (o.seed == 0) {
        o.seed = (unsigned)time(NULL);
    }
    return o;
}

/* hopperd of a sanitizer build needs the sanitizer's runtime first in
 * the library order, ahead of the shim, or ASan refuses to start (and
 * TSan crashes). The test is built with the same flags, so the runtime it
 * loaded is the one hopperd needs. */
static int
find_sanitizer(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    if (info->dlpi_name != NULL && (strstr(info->dlpi_name, "/libasan.so") ||
                                    strstr(info->dlpi_name, "/libtsan.so"))) {
        snprintf(arg, 1024, "%s", info->dlpi_name);
        return 1;
    }
    return 0;
}

static void
make_env(broker_proc *bp, const pl_opts *o, pl_env *e)
{
    char san[1024] = "";
    size_t n = 0;

    dl_iterate_phdr(find_sanitizer, san);
    snprintf(e->state, sizeof(e->state), "%s/powerloss", bp->dir);
    assert_int_equal(mkdir(e->state, 0700), 0);
    assert_int_equal(mkdir(bp->data, 0700), 0);
    snprintf(e->preload, sizeof(e->preload), "LD_PRELOAD=%s%s%s", san,
             san[0] != '\0' ? " " : "", POWERLOSS_SHIM_PATH);
    snprintf(e->dir_var, sizeof(e->dir_var), "HOPPER_POWERLOSS_DIR=%s",
             bp->data);
    snprintf(e->state_var, sizeof(e->state_var), "HOPPER_POWERLOSS_STATE=%s",
             e->state);
    e->entries[n++] = e->preload;
    e->entries[n++] = e->dir_var;
    e->entries[n++] = e->state_var;
    if (o->control) {
        e->entries[n++] = "HOPPER_DEBUG_REPLY_BEFORE_SYNC=1";
    }
    if (strcmp(o->sync, "none") == 0) {
        /* The layer cannot see stores to a writable map (plshim.c), so
         * --sync none is measured with LMDB's page writes instead: what a
         * cut loses is of the same kind either way, whatever the kernel
         * had not written back. */
        e->entries[n++] = "HOPPER_STORE_WRITEMAP=0";
    }
    e->entries[n] = NULL;
    bp->env = e->entries;
}

static void
start(broker_proc *bp, const char *const *extra, const pl_env *e, int cut)
{
    char durable[400];
    struct stat sb;
    if (broker_proc_restart(bp, extra) != 0) {
        fail_msg("after cut %d: hopperd did not start on %s", cut, bp->data);
    }
    snprintf(durable, sizeof(durable), "%s/data.mdb.durable", e->state);
    if (stat(durable, &sb) != 0) {
        fail_msg("hopperd runs without the power-loss layer: no %s (%s)",
                 durable, e->preload);
    }
}

/* SIGKILL, then the disk keeps what the layer says it holds. */
static void
cut_power(broker_proc *bp, const pl_env *e, int keep_pct, unsigned seed,
          cut_totals *t)
{
    char cmd[1200], line[512];
    unsigned long long bytes;
    size_t dirty, kept;

    broker_proc_kill(bp);
    snprintf(cmd, sizeof(cmd),
             "'%s' --dir '%s' --state '%s' --keep-pct %d --seed %u 2>&1",
             POWERLOSS_CUT_PATH, bp->data, e->state, keep_pct, seed);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    t->cut_dirty = t->cut_kept = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line,
                   "data.mdb: durable %llu bytes, %zu dirty pages, %zu "
                   "kept",
                   &bytes, &dirty, &kept) == 3) {
            t->dirty_pages += dirty;
            t->kept_pages += kept;
            t->cut_dirty = dirty;
            t->cut_kept = kept;
        }
    }
    if (pclose(f) != 0) {
        fail_msg("powerloss_cut failed: %s", line);
    }
    t->cuts++;
}

/* hopperd check on the data dir; 0 when the tables agree, else the first
 * disagreement in why. */
static int
check_tables(const broker_proc *bp, char *why, size_t cap)
{
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "'%s' check --data '%s' 2>&1", harness_hopperd(),
             bp->data);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    why[0] = '\0';
    while (fgets(why, (int)cap, f) != NULL) {
    }
    return pclose(f);
}

/* After a cut: LMDB opens clean and the tables agree. Returns false, with
 * the reason in t->damage, when they do not. */
static bool
store_sound(const broker_proc *bp, int cut, cut_totals *t)
{
    if (check_tables(bp, t->damage, sizeof(t->damage)) != 0) {
        return false;
    }
    if (load_mdb_stat(bp->data, "-efa") != 0) {
        snprintf(t->damage, sizeof(t->damage),
                 "cut %d: mdb_stat -efa fails on the data dir", cut);
        return false;
    }
    return true;
}

static void
test_power_cuts(void **state)
{
    broker_proc *bp = *state;
    pl_opts o = read_opts();
    const char *extra[] = { "--sync", o.sync, NULL };
    bool strict = strcmp(o.sync, "full") == 0 && !o.control;
    unsigned cut_seed = o.seed * 2654435761u;
    cut_totals t;
    pl_env e;
    load_figures fig;
    char prefix[400];

    memset(&t, 0, sizeof(t));
    assert_int_equal(broker_proc_prepare(bp), 0);
    make_env(bp, &o, &e);
    /* A store that exists before the first cut: with --sync none nothing
     * is ever synced, and a cut would otherwise leave an empty file. */
    start(bp, extra, &e, 0);
    assert_int_equal(broker_proc_stop(bp), 0);
    start(bp, extra, &e, 0);
    load_run *r = load_start(bp->url, o.seed);

    for (int cut = 1; cut <= o.cuts; cut++) {
        int keep = o.keep_pct >= 0 ? o.keep_pct : (cut % 2 == 0 ? 50 : 0);
        /* 0.3-1.5 s of load, so cuts land in every phase of a commit. */
        load_sleep_ms(300u + (unsigned)rand_r(&cut_seed) % 1200u);
        cut_power(bp, &e, keep, o.seed + (unsigned)cut, &t);
        if (!store_sound(bp, cut, &t)) {
            if (strict || keep == 0) {
                fail_msg("cut %d (keep %d%%): %s", cut, keep, t.damage);
            }
            t.damaged = cut; /* --sync none: measured, and the run ends */
            break;
        }
        load_missing m;
        uint64_t missing = load_verify_store(r, bp->data, &m);
        printf("powerloss_test: cut %d keep %d%%: %zu dirty pages, %zu kept; "
               "lost %llu of %llu enqueues and %llu of %llu acks acknowledged "
               "since the last cut\n",
               cut, keep, t.cut_dirty, t.cut_kept,
               (unsigned long long)m.enqueues,
               (unsigned long long)m.enqueues_acked, (unsigned long long)m.acks,
               (unsigned long long)m.acks_acked);
        if (strict && missing > 0) {
            fail_msg("cut %d (keep %d%%): %llu acknowledged writes lost", cut,
                     keep, (unsigned long long)missing);
        }
        if (o.control && missing > 0 && t.caught_at == 0) {
            t.caught_at = cut;
        }
        if (cut % 2 == 0) {
            load_sleep_ms(OUTAGE_MS); /* clients time out and retry by key */
        }
        start(bp, extra, &e, cut);
        if (t.caught_at != 0) {
            break;
        }
    }
    if (t.damaged != 0) {
        printf("powerloss_test: sync=%s seed=%u keep=%d damaged after cut "
               "%d (%zu dirty pages, %zu kept): %s\n",
               o.sync, o.seed, o.keep_pct, t.damaged, t.cut_dirty, t.cut_kept,
               t.damage);
        load_stop(r);
        load_free(r);
        return;
    }
    load_sleep_ms(500);
    load_finish(r, bp->url, &fig);
    snprintf(prefix, sizeof(prefix),
             "powerloss_test: sync=%s%s seed=%u cuts=%d keep=%d "
             "dirty_pages=%llu kept_pages=%llu caught_at=%d",
             o.sync, o.control ? " control" : "", o.seed, t.cuts, o.keep_pct,
             (unsigned long long)t.dirty_pages,
             (unsigned long long)t.kept_pages, t.caught_at);
    load_print(stdout, prefix, &fig);

    if (o.control) {
        if (t.caught_at == 0) {
            fail_msg("the negative control lost nothing in %d cuts: does "
                     "this hopperd have HOPPER_DEBUG_HOOKS?",
                     t.cuts);
        }
    } else if (strict) {
        load_assert_clean(&fig);
    }
    assert_int_equal(broker_proc_stop(bp), 0);
    assert_true(store_sound(bp, t.cuts + 1, &t));
    load_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_power_cuts, broker_proc_setup_idle,
                                        broker_proc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
