/*
 * cmd_work.c - hopper work: any command as a worker, on libhopper's worker
 * runtime. Each claimed message runs CMD once, in a process group of its
 * own, with the payload on stdin and the message in its environment; the
 * exit status settles it: 0 acks with stdout (capped) as the result, 75
 * (EX_TEMPFAIL) and any other failure nack it with the tail of stderr as
 * the error. The runtime extends the lease while CMD runs, so a long
 * command keeps its claim; --timeout kills one that overruns; SIGTERM or
 * SIGINT drains: no new claims, running commands get --grace, what is
 * left is given back without using an attempt.
 *
 * Children are started with posix_spawn under one lock that also covers
 * making their pipes, so no child inherits another's pipe ends (which
 * would keep a stdin open or a stdout from ending).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include "cli.h"
#include "output.h"

extern char **environ;

#define EXIT_TEMPFAIL   75          /* sysexits.h's EX_TEMPFAIL */
#define DEFAULT_MAX_OUT (64u << 10) /* the broker's result limit */
#define ERROR_TAIL      4000        /* under the 4 KiB error limit */
#define POLL_TICK_MS    100         /* how often a running CMD is looked at */
#define KILL_GRACE_MS   5000        /* SIGTERM, then this, then SIGKILL */

typedef struct work {
    cli *c;
    const char *lane;
    char *const *argv;   /* CMD and its arguments, NULL-terminated */
    uint64_t timeout_ms; /* 0: none */
    size_t max_out;
    uint64_t limit; /* stop after this many messages; 0: never */
    pthread_mutex_t mtx;
    uint64_t done;             /* w->mtx */
    pthread_mutex_t spawn_mtx; /* pipes and spawns, one at a time */
} work;

/* GLOBAL: the SIGTERM/SIGINT handler's way to the worker; set before the
 * handlers are installed, and hopper_worker_stop is async-signal-safe. */
static hopper_worker *volatile stop_target;

static void
on_signal(int sig)
{
    (void)sig;
    hopper_worker_stop(stop_target);
}

/* ---- the environment of CMD -----------------------------------------------
 */

static bool
is_ours(const char *e)
{
    return strncmp(e, "HOPPER_ID=", 10) == 0 ||
           strncmp(e, "HOPPER_ATTEMPT=", 15) == 0 ||
           strncmp(e, "HOPPER_MAX_ATTEMPTS=", 20) == 0 ||
           strncmp(e, "HOPPER_LANE=", 12) == 0 ||
           strncmp(e, "HOPPER_TARGET=", 14) == 0 ||
           strncmp(e, "HOPPER_H_", 9) == 0;
}

/* "HOPPER_H_" and the header name in upper case, every byte that is not
 * a letter or digit as '_': "content-type" -> HOPPER_H_CONTENT_TYPE. */
static char *
header_var(const hopper_header *h)
{
    size_t klen = strlen(h->key), vlen = strlen(h->value);
    char *s = malloc(9 + klen + 1 + vlen + 1);
    if (s == NULL) {
        return NULL;
    }
    memcpy(s, "HOPPER_H_", 9);
    for (size_t i = 0; i < klen; i++) {
        char ch = h->key[i];
        if (ch >= 'a' && ch <= 'z') {
            ch = (char)(ch - 'a' + 'A');
        } else if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) {
            ch = '_';
        }
        s[9 + i] = ch;
    }
    s[9 + klen] = '=';
    memcpy(s + 10 + klen, h->value, vlen + 1);
    return s;
}

static char *
var(const char *name, const char *value)
{
    size_t n = strlen(name) + 1 + strlen(value) + 1;
    char *s = malloc(n);
    if (s != NULL) {
        snprintf(s, n, "%s=%s", name, value);
    }
    return s;
}

/* Ours first (freed from index 0 up to the inherited ones, which follow
 * unowned): *own gets how many are ours. NULL when out of memory. */
static char **
env_build(const hopper_message *m, const char *lane, size_t *own)
{
    size_t n_env = 0;
    while (environ[n_env] != NULL) {
        n_env++;
    }
    size_t cap = 5 + m->n_headers + n_env + 1;
    char **env = calloc(cap, sizeof(char *));
    char num[24];
    size_t k = 0;
    bool oom = false;

    if (env == NULL) {
        return NULL;
    }
    env[k++] = var("HOPPER_ID", m->id);
    snprintf(num, sizeof(num), "%u", (unsigned)m->attempts);
    env[k++] = var("HOPPER_ATTEMPT", num);
    snprintf(num, sizeof(num), "%u", (unsigned)m->max_attempts);
    env[k++] = var("HOPPER_MAX_ATTEMPTS", num);
    env[k++] = var("HOPPER_LANE", lane);
    env[k++] = var("HOPPER_TARGET", m->target);
    for (size_t i = 0; i < m->n_headers; i++) {
        env[k++] = header_var(&m->headers[i]);
    }
    for (size_t i = 0; i < k; i++) {
        oom = oom || env[i] == NULL;
    }
    *own = k;
    if (oom) {
        for (size_t i = 0; i < k; i++) {
            free(env[i]);
        }
        free(env);
        return NULL;
    }
    for (size_t i = 0; i < n_env; i++) {
        if (!is_ours(environ[i])) {
            env[k++] = environ[i];
        }
    }
    env[k] = NULL;
    return env;
}

/* ---- running CMD ------------------------------------------------------------
 */

typedef struct run {
    pid_t pid;
    int in, out, err; /* our ends; -1 once closed */
    const uint8_t *payload;
    size_t payload_len, written;
    char *out_buf; /* up to max_out bytes of stdout */
    size_t out_len;
    char err_tail[ERROR_TAIL]; /* a ring of stderr's last bytes */
    size_t err_len;            /* bytes ever read from stderr */
    int status;
    bool timed_out, cancelled;
} run;

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Three pipes and the child; under spawn_mtx so that no other child
 * inherits these pipe ends before they are marked close-on-exec. */
static int
spawn_cmd(work *w, char **env, run *r)
{
    int p_in[2] = { -1, -1 }, p_out[2] = { -1, -1 }, p_err[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dflt;
    int rc = 0;

    pthread_mutex_lock(&w->spawn_mtx);
    if (pipe(p_in) != 0 || pipe(p_out) != 0 || pipe(p_err) != 0) {
        rc = errno;
        goto close_pipes;
    }
    fcntl(p_in[1], F_SETFD, FD_CLOEXEC);
    fcntl(p_out[0], F_SETFD, FD_CLOEXEC);
    fcntl(p_err[0], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p_in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, p_out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p_err[1], 2);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGINT);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    /* A group of its own: --timeout and a stop kill CMD's children too,
     * and a terminal's Ctrl-C reaches hopper work (which drains), not
     * the commands it runs. */
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    rc = posix_spawnp(&r->pid, w->argv[0], &fa, &at, w->argv, env);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
close_pipes:
    close_fd(&p_in[0]);
    close_fd(&p_out[1]);
    close_fd(&p_err[1]);
    pthread_mutex_unlock(&w->spawn_mtx);
    if (rc != 0) {
        close_fd(&p_in[1]);
        close_fd(&p_out[0]);
        close_fd(&p_err[0]);
        return rc;
    }
    r->in = p_in[1];
    r->out = p_out[0];
    r->err = p_err[0];
    fcntl(r->in, F_SETFL, fcntl(r->in, F_GETFL) | O_NONBLOCK);
    return 0;
}

static void
pump_stdin(run *r)
{
    if (r->written == r->payload_len) {
        close_fd(&r->in);
        return;
    }
    ssize_t n =
        write(r->in, r->payload + r->written, r->payload_len - r->written);
    if (n > 0) {
        r->written += (size_t)n;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        close_fd(&r->in); /* CMD closed its stdin (EPIPE): its choice */
    }
    if (r->written == r->payload_len) {
        close_fd(&r->in);
    }
}

static void
pump_out(work *w, run *r, int *fd, bool is_err)
{
    char buf[4096];
    ssize_t n = read(*fd, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close_fd(fd);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (is_err) {
            r->err_tail[r->err_len++ % ERROR_TAIL] = buf[i];
        } else if (r->out_len < w->max_out) {
            r->out_buf[r->out_len++] = buf[i]; /* the rest is read, dropped */
        }
    }
}

static void
kill_group(run *r, int sig)
{
    kill(-r->pid, sig);
}

/* Feeds stdin, drains stdout and stderr, and watches the clock and the
 * claim until CMD has exited and closed both outputs. */
static void
supervise(work *w, hopper_job *job, run *r)
{
    uint64_t start = cli_mono_ms(), killed_at = 0;
    bool exited = false;

    while (!exited || r->out >= 0 || r->err >= 0) {
        struct pollfd p[3];
        int n = 0, i_in = -1, i_out = -1, i_err = -1;
        if (r->in >= 0) {
            i_in = n;
            p[n++] = (struct pollfd){ .fd = r->in, .events = POLLOUT };
        }
        if (r->out >= 0) {
            i_out = n;
            p[n++] = (struct pollfd){ .fd = r->out, .events = POLLIN };
        }
        if (r->err >= 0) {
            i_err = n;
            p[n++] = (struct pollfd){ .fd = r->err, .events = POLLIN };
        }
        if (poll(p, (nfds_t)n, POLL_TICK_MS) > 0) {
            if (i_in >= 0 && p[i_in].revents != 0) {
                pump_stdin(r);
            }
            if (i_out >= 0 && p[i_out].revents != 0) {
                pump_out(w, r, &r->out, false);
            }
            if (i_err >= 0 && p[i_err].revents != 0) {
                pump_out(w, r, &r->err, true);
            }
        }
        if (!exited && waitpid(r->pid, &r->status, WNOHANG) == r->pid) {
            exited = true;
            close_fd(&r->in);
        }
        uint64_t now = cli_mono_ms();
        if (!exited && killed_at == 0) {
            if (w->timeout_ms != 0 && now - start >= w->timeout_ms) {
                r->timed_out = true;
            } else if (hopper_job_cancelled(job)) {
                r->cancelled = true;
            }
            if (r->timed_out || r->cancelled) {
                kill_group(r, SIGTERM);
                killed_at = now;
            }
        } else if (!exited && now - killed_at >= KILL_GRACE_MS) {
            kill_group(r, SIGKILL);
        }
        if (exited && killed_at != 0) {
            /* Its children may hold the pipes open: they go too. */
            kill_group(r, SIGKILL);
        }
    }
}

/* The last bytes of stderr, in order, cut to whole UTF-8 characters and
 * without NUL bytes (the broker takes UTF-8 text only). */
static void
err_text(const run *r, char *out, size_t cap, const char *prefix)
{
    size_t n = r->err_len < ERROR_TAIL ? r->err_len : ERROR_TAIL;
    size_t start = r->err_len < ERROR_TAIL ? 0 : r->err_len % ERROR_TAIL;
    size_t k = (size_t)snprintf(out, cap, "%s", prefix);
    size_t skip = 0;

    if (n > 0 && k + 2 < cap) {
        out[k++] = ':';
        out[k++] = ' ';
    }
    /* Not starting inside a character. */
    while (skip < n &&
           (r->err_tail[(start + skip) % ERROR_TAIL] & 0xC0) == 0x80) {
        skip++;
    }
    for (size_t i = skip; i < n && k + 1 < cap; i++) {
        char ch = r->err_tail[(start + i) % ERROR_TAIL];
        out[k++] = ch == '\0' ? ' ' : ch;
    }
    out[k] = '\0';
    /* Trailing newline off; an invalid sequence makes the broker refuse
     * the text, so anything that is not ASCII is replaced when in doubt. */
    while (k > 0 && (out[k - 1] == '\n' || out[k - 1] == '\r')) {
        out[--k] = '\0';
    }
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)out[i];
        if (ch >= 0x80 || (ch < 0x20 && ch != '\n' && ch != '\t')) {
            out[i] = '?';
        }
    }
}

/* ---- settling ------------------------------------------------------------ */

static void
print_outcome(work *w, hopper_job *job, const char *outcome, int code,
              const hopper_status *st, int exit_code)
{
    const hopper_message *m = hopper_job_message(job);
    pthread_mutex_lock(&w->mtx);
    if (w->c->json) {
        json_t *o = json_pack("{s:s, s:s, s:i}", "id", m->id, "outcome",
                              outcome, "exit", exit_code);
        if (o != NULL && code != HOPPER_OK) {
            json_object_set_new(o, "reason", json_string(st->reason));
        }
        out_json(o);
    } else if (code != HOPPER_OK) {
        printf("%s %s failed: %s %s\n", m->id, outcome, hopper_status_str(code),
               st->reason);
    } else {
        printf("%s %s\n", m->id, outcome);
    }
    fflush(stdout);
    bool stop = ++w->done == w->limit;
    pthread_mutex_unlock(&w->mtx);
    if (stop) {
        hopper_worker_stop(hopper_job_worker(job));
    }
}

static void
settle(work *w, hopper_job *job, const run *r)
{
    char text[ERROR_TAIL + 64];
    char why[64];
    hopper_status st;
    int code, exit_code = -1;

    if (r->cancelled) {
        /* Given back (a stop past its grace) or lost: nothing to settle. */
        print_outcome(w, job, "given-back", HOPPER_OK, NULL, -1);
        return;
    }
    if (WIFEXITED(r->status)) {
        exit_code = WEXITSTATUS(r->status);
    }
    if (!r->timed_out && exit_code == 0) {
        code = hopper_job_ack(job, r->out_buf, r->out_len, NULL, 0, NULL, &st);
        print_outcome(w, job, "acked", code, &st, 0);
        return;
    }
    if (r->timed_out) {
        snprintf(why, sizeof(why), "killed after --timeout %llu ms",
                 (unsigned long long)w->timeout_ms);
    } else if (exit_code == EXIT_TEMPFAIL) {
        snprintf(why, sizeof(why), "exit %d (temporary failure)", exit_code);
    } else if (exit_code >= 0) {
        snprintf(why, sizeof(why), "exit %d", exit_code);
    } else {
        snprintf(why, sizeof(why), "killed by signal %d",
                 WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0);
    }
    err_text(r, text, sizeof(text), why);
    code = hopper_job_retry(job, text, 0, &st);
    print_outcome(w, job, "retried", code, &st, exit_code);
}

static void
handle(void *arg, hopper_job *job)
{
    work *w = arg;
    const hopper_message *m = hopper_job_message(job);
    run r = { .in = -1, .out = -1, .err = -1 };
    hopper_status st;
    size_t own = 0;
    char **env = env_build(m, w->lane, &own);
    char text[300];
    int rc;

    r.payload = m->payload;
    r.payload_len = m->payload_len;
    r.out_buf = malloc(w->max_out > 0 ? w->max_out : 1);
    if (env == NULL || r.out_buf == NULL) {
        snprintf(text, sizeof(text), "hopper work: out of memory");
        rc = hopper_job_retry(job, text, 0, &st);
        print_outcome(w, job, "retried", rc, &st, -1);
        goto release;
    }
    if ((rc = spawn_cmd(w, env, &r)) != 0) {
        /* The same command will not start next time either, but the fix
         * (a path, a permission) is the operator's: retries give time. */
        snprintf(text, sizeof(text), "hopper work: cannot run '%s': %s",
                 w->argv[0], strerror(rc));
        fprintf(stderr, "%s\n", text);
        rc = hopper_job_retry(job, text, 0, &st);
        print_outcome(w, job, "retried", rc, &st, -1);
        goto release;
    }
    supervise(w, job, &r);
    settle(w, job, &r);
release:
    for (size_t i = 0; env != NULL && i < own; i++) {
        free(env[i]);
    }
    free(env);
    free(r.out_buf);
}

static void
on_error(void *arg, const char *what, const hopper_status *st)
{
    work *w = arg;
    /* Reported for people on stderr, --json or not: a retrying worker is
     * not failing, the exit code says how it ended. */
    (void)w;
    fprintf(stderr, "hopper work: %s: %s %s: %s\n", what,
            hopper_status_str(st->code), st->reason, st->message);
}

/* ---- the command ------------------------------------------------------------
 */

static int
read_flags(cli *c, const cli_args *a, work *w, hopper_worker_opts *o)
{
    uint64_t v;
    int rc;

    o->concurrency = 1;
    o->lease_ms = HOPPER_DEFAULT_LEASE_MS;
    if ((rc = cli_opt_u32(c, a, "jobs", &o->concurrency)) != 0 ||
        (rc = cli_opt_ms64(c, a, "timeout", &w->timeout_ms)) != 0 ||
        (rc = cli_opt_ms32(c, a, "lease", &o->lease_ms)) != 0 ||
        (rc = cli_opt_ms32(c, a, "grace", &o->grace_ms)) != 0 ||
        (rc = cli_opt_u64(c, a, "limit", &w->limit)) != 0) {
        return rc;
    }
    if (o->concurrency == 0 || o->concurrency > HOPPER_WORKER_MAX_CONCURRENCY) {
        return cli_usage(c, "-j must be 1-%u", HOPPER_WORKER_MAX_CONCURRENCY);
    }
    if (o->lease_ms < HOPPER_WORKER_MIN_LEASE_MS) {
        return cli_usage(c,
                         "--lease must be at least %u ms (heartbeats go "
                         "every third of it)",
                         HOPPER_WORKER_MIN_LEASE_MS);
    }
    v = DEFAULT_MAX_OUT;
    if ((rc = cli_opt_u64(c, a, "max-output", &v)) != 0) {
        return rc;
    }
    w->max_out = (size_t)v;
    o->target = args_get(a, "target");
    o->consumer = args_get(a, "consumer");
    return 0;
}

static int
cmd_work(cli *c, const cli_args *a)
{
    hopper_worker_opts o;
    hopper_worker *worker;
    hopper_status st;
    hopper_client *h;
    work w;
    int rc;

    memset(&w, 0, sizeof(w));
    hopper_worker_opts_init(&o);
    w.c = c;
    w.lane = a->pos[0];
    if ((rc = read_flags(c, a, &w, &o)) != 0) {
        return rc;
    }
    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    /* CMD's argv, NULL-terminated for posix_spawnp. */
    char **argv = calloc(a->n_pos, sizeof(char *));
    if (argv == NULL) {
        return cli_no_memory(c);
    }
    for (size_t i = 1; i < a->n_pos; i++) {
        argv[i - 1] = (char *)(uintptr_t)a->pos[i];
    }
    w.argv = argv;
    pthread_mutex_init(&w.mtx, NULL);
    pthread_mutex_init(&w.spawn_mtx, NULL);
    o.lane = w.lane;
    o.handler = handle;
    o.handler_arg = &w;
    o.on_error = on_error;
    o.error_arg = &w;
    /* A CMD that closes its stdin early must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    /* SIGTERM and SIGINT stay blocked while the worker starts, and in its
     * threads for good (they inherit the mask): one that arrives early
     * waits for the handler below, on this thread. */
    sigset_t stops, old_mask;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stops, &old_mask);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (hopper_worker_start(h, &o, &worker, &st) != HOPPER_OK) {
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        rc = cli_fail(c, &st);
        goto release;
    }
    stop_target = worker;
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    rc = hopper_worker_wait(worker, &st) == HOPPER_OK ? 0 : cli_fail(c, &st);
    pthread_sigmask(SIG_BLOCK, &stops, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    stop_target = NULL;
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    hopper_worker_free(worker);
release:
    pthread_mutex_destroy(&w.mtx);
    pthread_mutex_destroy(&w.spawn_mtx);
    free(argv);
    return rc;
}

static const cli_flag work_flags[] = {
    { "jobs", 'j', "N", "run up to N commands at once (1-1000; default 1)" },
    { "timeout", 0, "MS",
      "kill a command running longer than this (default: never); "
      "the message is retried" },
    { "lease", 0, "MS",
      "lease per claim, extended every third of it while the command "
      "runs (default 30s)" },
    { "grace", 0, "MS",
      "on SIGTERM/SIGINT: how long running commands may finish before "
      "they are killed and their messages given back (default 10s)" },
    { "max-output", 0, "BYTES",
      "stdout kept as the ack's result (default 65536, the broker's "
      "limit); the rest is dropped" },
    { "limit", 0, "N", "stop after N messages (default: run until stopped)" },
    { "target", 0, "T", "only messages with this target" },
    { "consumer", 0, "NAME", "who claims, for people" },
    { NULL, 0, NULL, NULL },
};

const cli_command cli_work_commands[] = {
    { "work", "LANE -- CMD [ARGS...]", "run CMD once per message of LANE",
      "Claims messages of LANE and runs CMD for each, up to -j at once, "
      "with the\npayload on stdin and in its environment HOPPER_ID, "
      "HOPPER_ATTEMPT,\nHOPPER_MAX_ATTEMPTS, HOPPER_LANE, HOPPER_TARGET and "
      "each header as\nHOPPER_H_<NAME> (upper case, other bytes as '_'). "
      "Its exit status settles it:\n  0        ack, with stdout (up to "
      "--max-output) as the result\n  75       retry (EX_TEMPFAIL): a nack "
      "after the lane's backoff\n  other    nack, with the tail of stderr "
      "as the error\nA nack uses an attempt: the last one makes a dead "
      "letter. The lease is\nextended while CMD runs. Prints each message's "
      "id and outcome (acked,\nretried, given-back). SIGTERM or SIGINT "
      "stops claiming, lets running commands\nfinish within --grace, then "
      "kills them and gives their messages back\nwithout using an attempt; "
      "exits 0. Put '--' before CMD so that its flags\nare not read as "
      "hopper's; here --timeout is CMD's time limit, not the\nper-call "
      "timeout.",
      2, SIZE_MAX, work_flags, cmd_work },
    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};
