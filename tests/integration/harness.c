/*
 * harness.c - process control for integration tests.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include "harness.h"

#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#ifndef HOPPERD_PATH
#error "HOPPERD_PATH must name the hopperd binary"
#endif

const char *
harness_hopperd(void)
{
    const char *env = getenv("HOPPERD");
    return env != NULL ? env : HOPPERD_PATH;
}

extern char **environ;

/* The environment hopperd gets: ours, the caller's extra entries, plus
 * (unless the caller set its own) LeakSanitizer options with
 * tests/lsan.supp. That file names one leak inside NNG 1.5.2: a reply NNG
 * accepted (the send completed OK) and then dropped without freeing when
 * its pipe closed during shutdown. Built here, before fork, because the
 * child may only exec. */
static char **
child_env(const char *const *extra)
{
    static char lsan[600];
    size_t n = 0, n_extra = 0;
    while (environ[n] != NULL) {
        n++;
    }
    while (extra != NULL && extra[n_extra] != NULL) {
        n_extra++;
    }
    char **env = calloc(n + n_extra + 2, sizeof(*env));
    if (env == NULL) {
        return NULL;
    }
    memcpy(env, environ, n * sizeof(*env));
    for (size_t i = 0; i < n_extra; i++) {
        env[n++] = (char *)(uintptr_t)extra[i];
    }
#ifdef HOPPER_LSAN_SUPP
    if (getenv("LSAN_OPTIONS") == NULL) {
        snprintf(lsan, sizeof(lsan),
                 "LSAN_OPTIONS=suppressions=%s:print_suppressions=0",
                 HOPPER_LSAN_SUPP);
        env[n++] = lsan;
    }
#endif
    env[n] = NULL;
    return env;
}

static int
spawn(broker_proc *p, const char *const *extra)
{
    int out[2];
    const char *argv[64];
    int n = 0;

    if (pipe(out) != 0) {
        return -1;
    }
    argv[n++] = harness_hopperd();
    argv[n++] = "--listen";
    argv[n++] = p->url[0] != '\0' ? p->url : "tcp://127.0.0.1:0";
    argv[n++] = "--data";
    argv[n++] = p->data;
    argv[n++] = "--log-level";
    argv[n++] = getenv("HOPPER_TEST_LOG") ? getenv("HOPPER_TEST_LOG") : "warn";
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 62; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    char **env = child_env(p->env);
    if (env == NULL) {
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        free(env);
        return -1;
    }
    if (pid == 0) {
#ifdef __linux__
        /* A test that aborts (a failed assertion, a crash) must not leave
         * hopperd running: it would hold ctest's output open until the
         * test's timeout, and its port and data dir. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1) {
            _exit(127); /* the test died before prctl */
        }
#endif
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        execve(argv[0], (char *const *)(uintptr_t)argv, env);
        _exit(127);
    }
    free(env);
    close(out[1]);
    p->pid = pid;
    FILE *f = fdopen(out[0], "r");
    char line[512];
    int rc = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char *at = strstr(line, "listening on ");
        if (at != NULL) {
            at += strlen("listening on ");
            at[strcspn(at, "\n")] = '\0';
            /* A restart on the same URL leaves it alone: client threads
             * of the test may be reading it. */
            if (strcmp(p->url, at) != 0) {
                snprintf(p->url, sizeof(p->url), "%s", at);
            }
        }
        if (strstr(line, "data in ") != NULL) {
            rc = 0;
            break;
        }
    }
    if (f != NULL) {
        /* Keep reading in the child's favour: closing the pipe would make
         * later prints fail, which hopperd ignores, so just close. */
        fclose(f);
    }
    if (rc != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        p->pid = 0;
    }
    return rc;
}

int
broker_proc_prepare(broker_proc *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/hopper-it-XXXXXX");
    if (mkdtemp(p->dir) == NULL) {
        return -1;
    }
    p->own_dir = true;
    snprintf(p->data, sizeof(p->data), "%s/data", p->dir);
    return 0;
}

int
broker_proc_start(broker_proc *p, const char *const *extra)
{
    if (broker_proc_prepare(p) != 0) {
        return -1;
    }
    return spawn(p, extra);
}

int
broker_proc_restart(broker_proc *p, const char *const *extra)
{
    return spawn(p, extra);
}

/* A hopperd that does not stop is a bug to diagnose, not a test to time
 * out: its threads' stacks go to stderr (when gdb is there), then it is
 * killed. */
#define STOP_WAIT_MS 60000

static void
dump_stacks(pid_t pid)
{
    char cmd[160];
    fprintf(stderr,
            "harness: hopperd %d did not stop within %d ms of "
            "SIGTERM; its threads:\n",
            (int)pid, STOP_WAIT_MS);
    snprintf(cmd, sizeof(cmd),
             "command -v gdb > /dev/null && gdb -p %d -batch -ex "
             "'thread apply all bt 20' 2>/dev/null | grep -E '^#|^Thread' "
             ">&2",
             (int)pid);
    if (system(cmd) != 0) {
        fprintf(stderr, "harness: (no gdb to show them)\n");
    }
}

int
broker_proc_stop(broker_proc *p)
{
    int status = 0;
    if (p->pid <= 0) {
        return -1;
    }
    kill(p->pid, SIGTERM);
    struct timespec nap = { 0, 10 * 1000 * 1000 };
    int waited = 0;
    while (waitpid(p->pid, &status, WNOHANG) == 0) {
        if (waited >= STOP_WAIT_MS) {
            dump_stacks(p->pid);
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            p->pid = 0;
            return 124;
        }
        nanosleep(&nap, NULL);
        waited += 10;
    }
    p->pid = 0;
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return 128 + WTERMSIG(status);
}

void
broker_proc_kill(broker_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
broker_proc_cleanup(broker_proc *p)
{
    broker_proc_kill(p);
    if (p->own_dir && p->dir[0] != '\0') {
        nftw(p->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

int
broker_proc_setup_idle(void **state)
{
    broker_proc *p = calloc(1, sizeof(*p));
    *state = p;
    return p != NULL ? 0 : -1;
}

int
broker_proc_setup(void **state)
{
    if (broker_proc_setup_idle(state) != 0) {
        return -1;
    }
    return broker_proc_start(*state, NULL);
}

int
broker_proc_teardown(void **state)
{
    broker_proc *p = *state;
    if (p != NULL) {
        broker_proc_cleanup(p);
        free(p);
    }
    return 0;
}
