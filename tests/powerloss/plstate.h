/*
 * plstate.h - the files the power-loss layer keeps, shared by the shim
 * (plshim.c, preloaded into hopperd) and the cut tool (plcut.c).
 *
 * The shim tracks every file opened directly in $HOPPER_POWERLOSS_DIR
 * except the names in $HOPPER_POWERLOSS_SKIP (default PL_DEFAULT_SKIP). For
 * a tracked file NAME it keeps, in $HOPPER_POWERLOSS_STATE:
 *
 *   NAME.durable  what the disk holds: the file as the process found it
 *                 when it first opened it, plus every write a sync has
 *                 covered since (fsync, fdatasync, syncfs, sync, or a write
 *                 on an O_DSYNC/O_SYNC descriptor, which covers itself).
 *   NAME.dirty    the writes no sync has covered yet: pl_extent records,
 *                 each appended before its write returns to the caller and
 *                 all dropped when a sync covers them.
 *
 * The live file keeps every write, as the kernel's page cache does, so the
 * running process sees its own writes. A cut (after SIGKILL) puts
 * NAME.durable in the live file's place; with a keep percentage it first
 * copies that share of the dirty pages from the live file into it, as a
 * disk that wrote some dirty pages back early would hold them.
 *
 * Changing the record or the names? Change both programs; they are built
 * together and a state directory never outlives a test run.
 */
#ifndef HP_TESTS_PLSTATE_H
#define HP_TESTS_PLSTATE_H

#include <stdint.h>
#include <stdio.h>

#define PL_ENV_DIR   "HOPPER_POWERLOSS_DIR"
#define PL_ENV_STATE "HOPPER_POWERLOSS_STATE"
#define PL_ENV_SKIP  "HOPPER_POWERLOSS_SKIP"
/* LMDB's lock file is shared memory that LMDB rebuilds whenever the first
 * process opens the environment, and hopper.lock is only ever flock'd:
 * neither holds data, and the shim could not see lock.mdb's stores
 * through its map anyway. */
#define PL_DEFAULT_SKIP "lock.mdb:hopper.lock"
#define PL_DURABLE      ".durable"
#define PL_DIRTY        ".dirty"
/* The page cache writes back whole pages of this size. */
#define PL_PAGE 4096u

/* One write no sync has covered: bytes [off, off + len) of the file. */
typedef struct pl_extent {
    uint64_t off;
    uint64_t len;
} pl_extent;

/* STATE/NAME plus suffix into out; 0, or -1 when it does not fit. */
static inline int
pl_state_path(char *out, size_t cap, const char *state, const char *name,
              const char *suffix)
{
    int n = snprintf(out, cap, "%s/%s%s", state, name, suffix);
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

#endif
