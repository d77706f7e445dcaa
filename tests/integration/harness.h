/*
 * harness.h - integration tests start a real hopperd process on a free
 * loopback port with a fresh data dir, talk to it, and stop it by pid.
 */
#ifndef HP_TESTS_HARNESS_H
#define HP_TESTS_HARNESS_H

#include <stdbool.h>

#include <sys/types.h>

typedef struct broker_proc {
    pid_t pid;
    char url[128];
    char dir[256]; /* the temp dir; data lives in dir/data */
    char data[300];
    bool own_dir;
    /* "NAME=value" entries added to hopperd's environment (NULL-terminated;
     * the caller keeps them alive), or NULL. */
    const char *const *env;
} broker_proc;

/* Makes the fresh temp dir and names dir/data, without starting hopperd:
 * for a test that must know the paths first. broker_proc_restart then
 * starts it. Returns 0 on success. */
int broker_proc_prepare(broker_proc *p);

/* Starts hopperd with --listen tcp://127.0.0.1:0 --data <fresh dir>/data
 * plus extra args (NULL-terminated), and waits until it prints its URL.
 * Returns 0 on success. */
int broker_proc_start(broker_proc *p, const char *const *extra);

/* Starts again on p->data (after a stop or a kill). */
int broker_proc_restart(broker_proc *p, const char *const *extra);

/* SIGTERM and wait; returns the exit status (or 128+signal). */
int broker_proc_stop(broker_proc *p);

/* SIGKILL and wait. */
void broker_proc_kill(broker_proc *p);

/* Removes the temp dir. */
void broker_proc_cleanup(broker_proc *p);

/* cmocka fixtures: *state becomes a heap broker_proc, running hopperd
 * with no extra args (setup) or not started yet, for a test that starts it
 * itself (setup_idle). The teardown kills hopperd if it still runs, so a
 * failed assertion never leaves one behind, and removes the temp dir.
 * They return 0, or -1 when hopperd did not start. */
int broker_proc_setup(void **state);
int broker_proc_setup_idle(void **state);
int broker_proc_teardown(void **state);

/* Path of the hopperd binary under test. */
const char *harness_hopperd(void);

#endif
