/*
 * proc.c - the broker under test: started as a child process on loopback
 * with free ports, watched through /proc (peak anonymous and total RSS,
 * CPU seconds) and /metrics (commit histograms), stopped with SIGTERM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bench.h"

#define START_TIMEOUT_MS 120000
#define SAMPLE_MS        20

double
bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- /proc ----------------------------------------------------------------
 */

static void
read_rss(pid_t pid, uint64_t *anon_kb, uint64_t *rss_kb)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    *anon_kb = *rss_kb = 0;
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long v;
        if (sscanf(line, "RssAnon: %llu kB", &v) == 1) {
            *anon_kb = v;
        } else if (sscanf(line, "VmRSS: %llu kB", &v) == 1) {
            *rss_kb = v;
        }
    }
    fclose(f);
}

static double
read_cpu(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which may hold spaces: state is 3,
     * utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, stime = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &stime) != 2) {
        return 0;
    }
    return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

typedef struct sampler {
    pthread_t thread;
    pid_t pid;
    _Atomic bool stop;
    _Atomic uint64_t anon, rss;
} sampler;

static void *
sampler_main(void *arg)
{
    sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        uint64_t a, r;
        read_rss(s->pid, &a, &r);
        if (a > atomic_load(&s->anon)) {
            atomic_store(&s->anon, a);
        }
        if (r > atomic_load(&s->rss)) {
            atomic_store(&s->rss, r);
        }
        sleep_ms(SAMPLE_MS);
    }
    return NULL;
}

void
proc_reset_peaks(broker_proc *p)
{
    sampler *s = p->sampler;
    uint64_t a, r;
    read_rss(p->pid, &a, &r);
    atomic_store(&s->anon, a);
    atomic_store(&s->rss, r);
    p->cpu_s = read_cpu(p->pid);
}

/* ---- start and stop --------------------------------------------------- */

/* The value after marker on a line of file, up to a blank. */
static bool
find_word(const char *file, const char *marker, char *out, size_t cap)
{
    char line[512];
    FILE *f = fopen(file, "r");
    bool found = false;
    if (f == NULL) {
        return false;
    }
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        char *at = strstr(line, marker);
        if (at != NULL) {
            at += strlen(marker);
            size_t n = strcspn(at, " \n");
            if (n > 0 && n < cap) {
                memcpy(out, at, n);
                out[n] = '\0';
                found = true;
            }
        }
    }
    fclose(f);
    return found;
}

int
proc_start(broker_proc *p, const bench_opts *o, const char *data_dir)
{
    char http[128];
    memset(p, 0, sizeof(*p));
    snprintf(p->data_dir, sizeof(p->data_dir), "%s", data_dir);
    snprintf(p->out_path, sizeof(p->out_path), "%s.out", data_dir);
    /* Emptied here, not in the child: reading an earlier run's URLs
     * before the child truncates the file would dial a dead port. */
    int fd0 = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd0 < 0) {
        perror("hopper-bench: output file");
        return -1;
    }
    close(fd0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("hopper-bench: fork");
        return -1;
    }
    if (pid == 0) {
        int fd = open(p->out_path, O_WRONLY | O_APPEND);
        if (fd < 0) {
            _exit(127);
        }
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execl(o->hopperd, o->hopperd, "--listen", "tcp://127.0.0.1:0", "--http",
              "127.0.0.1:0", "--api", "127.0.0.1:0", "--data", data_dir,
              "--sync", o->sync, "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    p->pid = pid;
    for (double t0 = bench_now_ms();;) {
        if (find_word(p->out_path, "listening on ", p->url, sizeof(p->url)) &&
            find_word(p->out_path, " http on http://", http, sizeof(http)) &&
            find_word(p->out_path, " api on ", p->api, sizeof(p->api))) {
            break;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid ||
            bench_now_ms() - t0 > START_TIMEOUT_MS) {
            fprintf(stderr, "hopper-bench: hopperd did not start (see %s)\n",
                    p->out_path);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            p->pid = 0;
            return -1;
        }
        sleep_ms(1);
    }
    char *colon = strrchr(http, ':');
    snprintf(p->http_port, sizeof(p->http_port), "%s",
             colon != NULL ? colon + 1 : "0");
    sampler *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        s->pid = pid;
        if (pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
            free(s);
            s = NULL;
        }
    }
    p->sampler = s;
    return 0;
}

void
proc_stop(broker_proc *p)
{
    sampler *s = p->sampler;
    if (p->pid <= 0) {
        return;
    }
    if (s != NULL) {
        atomic_store(&s->stop, true);
        pthread_join(s->thread, NULL);
        p->peak_anon_kb = atomic_load(&s->anon);
        p->peak_rss_kb = atomic_load(&s->rss);
        free(s);
        p->sampler = NULL;
    }
    p->cpu_s = read_cpu(p->pid) - p->cpu_s;
    kill(p->pid, SIGTERM);
    int status;
    waitpid(p->pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "hopper-bench: hopperd exited badly (see %s)\n",
                p->out_path);
    }
    p->pid = 0;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
bench_rmtree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
proc_backlog(const bench_opts *o, const char *dir, uint64_t pending,
             uint64_t delayed, uint64_t dead)
{
    char a[32], b[32], c[32], d[16];
    snprintf(a, sizeof(a), "%llu", (unsigned long long)pending);
    snprintf(b, sizeof(b), "%llu", (unsigned long long)delayed);
    snprintf(c, sizeof(c), "%llu", (unsigned long long)dead);
    snprintf(d, sizeof(d), "%d", BENCH_PAYLOAD);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            close(fd);
        }
        execl(o->backlog_build, o->backlog_build, dir, a, "bench", b, c, d,
              (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "hopper-bench: %s failed\n", o->backlog_build);
        return -1;
    }
    return 0;
}

/* ---- /metrics ------------------------------------------------------------ */

/* GET path over loopback HTTP/1.0; the body in a malloc'd string. */
static char *
http_get(const char *port, const char *path)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)atoi(port)) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return NULL;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return NULL;
    }
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n\r\n",
                     path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    long want = -1;
    while (buf != NULL) {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + len, cap - len - 1);
        if (got <= 0) {
            break;
        }
        len += (size_t)got;
        buf[len] = '\0';
        char *body = strstr(buf, "\r\n\r\n");
        if (want < 0 && body != NULL) {
            char *cl = strcasestr(buf, "content-length:");
            want = cl != NULL && cl < body ? atol(cl + 15) : -2;
        }
        if (body != NULL && want >= 0 &&
            (long)(len - (size_t)(body + 4 - buf)) >= want) {
            break;
        }
    }
    close(fd);
    if (buf == NULL) {
        return NULL;
    }
    char *body = strstr(buf, "\r\n\r\n");
    if (body == NULL) {
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

static void
parse_hist(const char *text, const char *name, bench_hist *h)
{
    char prefix[128];
    size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "%s_", name);
    memset(h, 0, sizeof(*h));
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *next = strchr(line, '\n');
        if (strncmp(line, prefix, plen) == 0) {
            const char *rest = line + plen;
            double le, v;
            if (strncmp(rest, "bucket{le=\"", 11) == 0) {
                if (strncmp(rest + 11, "+Inf", 4) == 0) {
                    le = 1e300;
                } else {
                    le = strtod(rest + 11, NULL);
                }
                const char *sp = strchr(rest, ' ');
                if (sp != NULL && h->n < BENCH_HIST_MAX) {
                    v = strtod(sp + 1, NULL);
                    h->le[h->n] = le;
                    h->cum[h->n] = v;
                    h->n++;
                }
            } else if (strncmp(rest, "sum ", 4) == 0) {
                h->sum = strtod(rest + 4, NULL);
            } else if (strncmp(rest, "count ", 6) == 0) {
                h->count = strtod(rest + 6, NULL);
            }
        }
        line = next != NULL ? next + 1 : NULL;
    }
}

void
proc_scrape(const broker_proc *p, bench_scrape *out)
{
    char *text = http_get(p->http_port, "/metrics");
    memset(out, 0, sizeof(*out));
    if (text == NULL) {
        return;
    }
    parse_hist(text, "hopper_commit_group_size", &out->group);
    parse_hist(text, "hopper_commit_sync_seconds", &out->sync);
    out->ok = out->group.n > 0 && out->sync.n > 0;
    free(text);
}

/* The smallest bucket bound holding quantile q of the observations that
 * fell between two scrapes. */
static double
delta_quantile(const bench_hist *a, const bench_hist *b, double q)
{
    double total = b->count - a->count;
    if (total <= 0 || a->n != b->n) {
        return 0;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->cum[i] - a->cum[i] >= q * total) {
            return b->le[i] >= 1e300 ? b->le[i > 0 ? i - 1 : 0] : b->le[i];
        }
    }
    return 0;
}

void
bench_broker_figures(const bench_scrape *before, const bench_scrape *after,
                     const broker_proc *p, bench_result *r)
{
    if (!before->ok || !after->ok) {
        return;
    }
    r->have_broker = true;
    r->commits = after->group.count - before->group.count;
    r->ops = after->group.sum - before->group.sum;
    r->group_mean = r->commits > 0 ? r->ops / r->commits : 0;
    r->group_p99 = delta_quantile(&before->group, &after->group, 0.99);
    double syncs = after->sync.count - before->sync.count;
    r->sync_mean_ms =
        syncs > 0 ? (after->sync.sum - before->sync.sum) / syncs * 1e3 : 0;
    r->sync_p99_ms = delta_quantile(&before->sync, &after->sync, 0.99) * 1e3;
    r->msgs_per_commit = r->commits > 0 ? (double)r->messages / r->commits : 0;
    r->peak_anon_kb = p->peak_anon_kb;
    r->peak_rss_kb = p->peak_rss_kb;
    r->cpu_s = p->cpu_s;
}

/* ---- the fsync floor ------------------------------------------------------
 */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int
bench_floor_measure(const char *dir, uint64_t n, bench_floor *out)
{
    char path[600];
    static char page[4096];
    snprintf(path, sizeof(path), "%s/fsync-floor", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    double *t = calloc(n, sizeof(*t));
    if (fd < 0 || t == NULL) {
        free(t);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    memset(page, 'f', sizeof(page));
    double sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        double t0 = bench_now_ms();
        if (pwrite(fd, page, sizeof(page), (off_t)((i % 16) * 4096)) !=
                (ssize_t)sizeof(page) ||
            fdatasync(fd) != 0) {
            close(fd);
            free(t);
            return -1;
        }
        t[i] = (bench_now_ms() - t0) * 1e3;
        sum += t[i];
    }
    close(fd);
    unlink(path);
    qsort(t, n, sizeof(*t), cmp_double);
    out->n = n;
    out->mean_us = sum / (double)n;
    out->p50_us = t[n / 2];
    out->p99_us = t[(size_t)((double)n * 0.99)];
    free(t);
    return 0;
}
