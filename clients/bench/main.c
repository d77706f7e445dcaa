/*
 * main.c - hopper-bench: runs the workloads of docs/benchmarks.md against
 * a hopperd it starts itself (loopback, free ports, fresh data dirs,
 * --sync full unless told otherwise) and prints one table, or JSON.
 *
 *   hopper-bench [--quick|--long] [--json] [--max-seconds N]
 *                [--only W[,W...]]
 *                [--sync full|none] [--hopperd PATH] [--backlog-build PATH]
 *                [--dir DIR]
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/utsname.h>

#include "bench.h"

static workload workloads[] = {
    { "W1-produce-1conn", "enqueue 1 msg/request, 1 connection", work_produce,
      1, 1, 1, 0 },
    { "W1-produce-8conn", "enqueue 1 msg/request, 8 connections", work_produce,
      8, 1, 1, 0 },
    { "W1-produce-pipelined",
      "enqueue, 1 connection, 64 in flight from one thread (async)",
      work_produce, 1, 64, 1, 0 },
    { "W1-produce-batch100", "enqueue 100 msgs/request, 1 connection",
      work_produce, 1, 1, 100, 0 },
    { "W2-consume-1", "claim 32 + batch ack, 1 consumer", work_consume, 1, 1,
      32, 0 },
    { "W2-consume-8", "claim 32 + batch ack, 8 consumers", work_consume, 8, 1,
      32, 0 },
    { "H1-produce-json-1conn", "W1 1 conn over the HTTP API, JSON",
      work_http_produce, 1, 1, 1, 0 },
    { "H1-produce-json-8conn", "W1 8 conns over the HTTP API, JSON",
      work_http_produce, 8, 1, 1, 0 },
    { "H1-produce-json-64conn", "64 conns, 1 in flight each, HTTP API, JSON",
      work_http_produce, 64, 1, 1, 0 },
    { "H1-produce-native-64conn", "the same natively: 64 libhopper handles",
      work_produce, 64, 1, 1, 0 },
    { "H2-consume-json-1", "W2 1 consumer over the HTTP API, JSON",
      work_http_consume, 1, 1, 32, 0 },
    { "H2-consume-json-8", "W2 8 consumers over the HTTP API, JSON",
      work_http_consume, 8, 1, 32, 0 },
    { "W3-latency", "2,000 msg/s, long-poll consumer: enqueue to delivery",
      work_latency, 1, 1, 1, 2000 },
    { "W4-backlog-1e3", "W2 (8) beside 1e3 pending + 1e3 delayed + 1e3 dead",
      work_backlog, 8, 1, 32, 1000 },
    { "W4-backlog-1e5", "W2 (8) beside 1e5 pending + 1e5 delayed + 1e5 dead",
      work_backlog, 8, 1, 32, 100000 },
    { "W4-backlog-1e6", "W2 (8) beside 1e6 pending + 1e6 delayed + 1e6 dead",
      work_backlog, 8, 1, 32, 1000000 },
    { "W4-backlog-1e7", "W2 (8) beside 1e7 of each (--long)", work_backlog, 8,
      1, 32, 10000000 },
    { "W5-restart-1e6", "start on 1e6 pending to first claimed message",
      work_restart, 1, 1, 1, 1000000 },
    { "W5-restart-1e7", "start on 1e7 pending to first claim (--long)",
      work_restart, 1, 1, 1, 10000000 },
};

static void
usage(FILE *f)
{
    fputs("usage: hopper-bench [--quick|--long] [--json] [--max-seconds N]\n"
          "                    [--only NAME[,NAME...]] [--sync full|none]\n"
          "                    [--hopperd PATH] [--backlog-build PATH] "
          "[--dir DIR]\n"
          "Starts its own hopperd on 127.0.0.1 for each workload and prints\n"
          "the figures (docs/benchmarks.md). --quick: small counts, for a\n"
          "smoke run; --long: adds the 1e7 backlogs.\n",
          f);
}

/* hopperd and backlog_build next to this program in a build tree
 * (build/clients/bench -> build/src/broker, build/tests/bench), else on
 * PATH. */
static const char *
sibling(const char *rel, const char *name, char *buf, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            size_t a = strlen(self), b = strlen(rel), c = strlen(name);
            if (a + b + c + 3 > cap) {
                return name;
            }
            memcpy(buf, self, a);
            buf[a] = '/';
            memcpy(buf + a + 1, rel, b);
            buf[a + 1 + b] = '/';
            memcpy(buf + a + b + 2, name, c + 1);
            if (access(buf, X_OK) == 0) {
                return buf;
            }
        }
    }
    return name;
}

static bool
selected(const bench_opts *o, const workload *w)
{
    bool long_only = w->arg >= 10000000;
    if (long_only && !o->long_run) {
        return false; /* 1e7 backlogs take minutes and gigabytes */
    }
    if (o->only != NULL) {
        /* A comma-separated list of parts of names. */
        for (const char *p = o->only; *p != '\0';) {
            size_t n = strcspn(p, ",");
            char part[64];
            if (n > 0 && n < sizeof(part)) {
                memcpy(part, p, n);
                part[n] = '\0';
                if (strstr(w->name, part) != NULL) {
                    return true;
                }
            }
            p += n + (p[n] == ',');
        }
        return false;
    }
    /* Quick runs keep W4 and W5 small (W5 restarts on 1e4): their point
     * there is that they work, not their figures. */
    return !o->quick || w->arg <= 1000 || w->run == work_latency ||
           strcmp(w->name, "W5-restart-1e6") == 0;
}

static void
print_json(const bench_opts *o, const bench_floor *fl, const bench_result *r,
           size_t n)
{
    struct utsname u;
    uname(&u);
    printf("{\"machine\":{\"cpus\":%ld,\"kernel\":\"%s\",\"arch\":\"%s\"},",
           sysconf(_SC_NPROCESSORS_ONLN), u.release, u.machine);
    printf("\"sync\":\"%s\",\"quick\":%s,", o->sync,
           o->quick ? "true" : "false");
    printf("\"fsync_floor\":{\"n\":%llu,\"mean_us\":%.1f,\"p50_us\":%.1f,"
           "\"p99_us\":%.1f},",
           (unsigned long long)fl->n, fl->mean_us, fl->p50_us, fl->p99_us);
    printf("\"workloads\":[");
    for (size_t i = 0; i < n; i++) {
        const bench_result *x = &r[i];
        printf("%s{\"name\":\"%s\",\"what\":\"%s\",\"messages\":%llu,"
               "\"errors\":%llu,\"seconds\":%.4f,\"rate\":%.1f,\"cut\":%s,"
               "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
               "\"max_ms\":%.3f,\"value_ms\":%.1f,\"commits\":%.0f,"
               "\"msgs_per_commit\":%.2f,\"group_mean\":%.2f,"
               "\"group_p99\":%.0f,\"sync_mean_ms\":%.3f,\"sync_p99_ms\":%.3f,"
               "\"broker_anon_peak_kb\":%llu,\"broker_rss_peak_kb\":%llu,"
               "\"broker_cpu_s\":%.2f}",
               i ? "," : "", x->name, x->desc, (unsigned long long)x->messages,
               (unsigned long long)x->errors, x->seconds, x->rate,
               x->cut ? "true" : "false", x->p50_ms, x->p99_ms, x->p999_ms,
               x->max_ms, x->value_ms, x->commits, x->msgs_per_commit,
               x->group_mean, x->group_p99, x->sync_mean_ms, x->sync_p99_ms,
               (unsigned long long)x->peak_anon_kb,
               (unsigned long long)x->peak_rss_kb, x->cpu_s);
    }
    printf("]}\n");
}

static void
print_table(const bench_opts *o, const bench_floor *fl, const bench_result *r,
            size_t n)
{
    struct utsname u;
    uname(&u);
    printf("hopper-bench: %ld CPUs, Linux %s, --sync %s%s\n",
           sysconf(_SC_NPROCESSORS_ONLN), u.release, o->sync,
           o->quick ? ", --quick (small counts: not figures to quote)" : "");
    printf("fsync floor (4 KiB pwrite + fdatasync, %llu times): mean %.0f us, "
           "p50 %.0f us, p99 %.0f us\n\n",
           (unsigned long long)fl->n, fl->mean_us, fl->p50_us, fl->p99_us);
    printf("%-24s %9s %7s %10s %17s %7s %8s %6s %13s %8s %5s %4s\n", "workload",
           "messages", "secs", "msg/s", "p50/p99/p99.9 ms", "commits",
           "msg/cmt", "grp99", "sync mean/p99", "anon/rss", "cpu", "err");
    for (size_t i = 0; i < n; i++) {
        const bench_result *x = &r[i];
        char lat[32] = "-", rate[24], sync[24] = "-", mem[24] = "-";
        if (x->p50_ms > 0) {
            snprintf(lat, sizeof(lat), "%.2f/%.2f/%.2f", x->p50_ms, x->p99_ms,
                     x->p999_ms);
        }
        if (x->value_ms > 0) {
            snprintf(rate, sizeof(rate), "%.0f ms", x->value_ms);
        } else {
            snprintf(rate, sizeof(rate), "%.0f", x->rate);
        }
        if (x->have_broker) {
            snprintf(sync, sizeof(sync), "%.2f/%.2f", x->sync_mean_ms,
                     x->sync_p99_ms);
        }
        if (x->peak_rss_kb > 0) {
            snprintf(mem, sizeof(mem), "%.0f/%.0fM",
                     (double)x->peak_anon_kb / 1024.0,
                     (double)x->peak_rss_kb / 1024.0);
        }
        printf("%-24s %9llu %7.2f %10s %17s %7.0f %8.1f %6.0f %13s %8s %5.1f "
               "%4llu%s\n",
               x->name, (unsigned long long)x->messages, x->seconds, rate, lat,
               x->commits, x->msgs_per_commit, x->group_p99, sync, mem,
               x->cpu_s, (unsigned long long)x->errors,
               x->cut ? " (cut by --max-seconds)" : "");
    }
    printf("\nmsg/cmt: messages per LMDB commit; each commit under --sync "
           "full is two fdatasyncs\n(data pages, then the meta page). "
           "grp99: p99 operations per commit (bucket bound).\n"
           "anon/rss: the broker's peak anonymous and total resident memory; "
           "cpu: its CPU seconds.\n");
}

int
main(int argc, char **argv)
{
    char hopperd_buf[PATH_MAX], backlog_buf[PATH_MAX], dir_buf[64];
    bench_opts o = { .max_seconds = 120, .sync = "full" };
    bool own_dir = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            o.quick = true;
        } else if (strcmp(a, "--long") == 0) {
            o.long_run = true;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (v != NULL && strcmp(a, "--max-seconds") == 0) {
            o.max_seconds = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (v != NULL && strcmp(a, "--only") == 0) {
            o.only = v;
            i++;
        } else if (v != NULL && strcmp(a, "--sync") == 0 &&
                   (strcmp(v, "full") == 0 || strcmp(v, "none") == 0)) {
            o.sync = v;
            i++;
        } else if (v != NULL && strcmp(a, "--hopperd") == 0) {
            o.hopperd = v;
            i++;
        } else if (v != NULL && strcmp(a, "--backlog-build") == 0) {
            o.backlog_build = v;
            i++;
        } else if (v != NULL && strcmp(a, "--dir") == 0) {
            o.work_dir = v;
            i++;
        } else {
            fprintf(stderr, "hopper-bench: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.max_seconds == 0) {
        fprintf(stderr, "hopper-bench: --max-seconds must be 1 or more\n");
        return 2;
    }
    if (o.hopperd == NULL) {
        o.hopperd = sibling("../../src/broker", "hopperd", hopperd_buf,
                            sizeof(hopperd_buf));
    }
    if (o.backlog_build == NULL) {
        o.backlog_build = sibling("../../tests/bench", "backlog_build",
                                  backlog_buf, sizeof(backlog_buf));
    }
    if (o.work_dir == NULL) {
        /* mkdtemp replaces the last six characters, which must be X. */
        snprintf(dir_buf, sizeof(dir_buf), "/tmp/hopper-bench-%06d", 0);
        memset(dir_buf + strlen(dir_buf) - 6, 'X', 6);
        if (mkdtemp(dir_buf) == NULL) {
            perror("hopper-bench: mkdtemp");
            return 1;
        }
        o.work_dir = dir_buf;
        own_dir = true;
    }
    bench_init_payload();

    bench_floor fl = { 0 };
    if (bench_floor_measure(o.work_dir, o.quick ? 100 : 1000, &fl) != 0) {
        fprintf(stderr, "hopper-bench: cannot measure the fsync floor\n");
    }
    bench_result res[sizeof(workloads) / sizeof(workloads[0])];
    size_t n = 0;
    int failed = 0;
    for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
        const workload *w = &workloads[i];
        if (!selected(&o, w)) {
            continue;
        }
        bench_result *r = &res[n++];
        memset(r, 0, sizeof(*r));
        snprintf(r->name, sizeof(r->name), "%s", w->name);
        snprintf(r->desc, sizeof(r->desc), "%s", w->desc);
        if (!o.json) {
            fprintf(stderr, "hopper-bench: %s ...\n", w->name);
        }
        if (w->run(&o, w, r) != 0) {
            failed++;
            r->errors++;
        }
        r->rate = r->seconds > 0 && w->run != work_restart
                      ? (double)r->messages / r->seconds
                      : 0;
    }
    if (o.json) {
        print_json(&o, &fl, res, n);
    } else {
        print_table(&o, &fl, res, n);
    }
    if (own_dir) {
        bench_rmtree(o.work_dir);
    }
    return failed ? 1 : 0;
}
