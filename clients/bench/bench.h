/*
 * bench.h - hopper-bench's parts: the broker process it starts and
 * watches (proc.c), the workloads (work.c) and the report (main.c).
 * Everything talks to hopperd through libhopper or plain loopback HTTP
 * (/metrics); nothing here knows the broker's insides.
 */
#ifndef HOPPER_BENCH_H
#define HOPPER_BENCH_H

#include <hopper/hopper.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#define BENCH_PAYLOAD  256
#define BENCH_HIST_MAX 32

typedef struct bench_opts {
    const char *hopperd;       /* path of hopperd */
    const char *backlog_build; /* path of backlog_build (W4, W5) */
    const char *work_dir;      /* where data dirs go; removed after */
    const char *only;          /* run only workloads whose name has this */
    bool quick, long_run, json;
    uint32_t max_seconds; /* per workload */
    const char *sync;     /* "full" (default) or "none" */
} bench_opts;

/* One commit histogram read from /metrics (cumulative buckets). */
typedef struct bench_hist {
    size_t n;
    double le[BENCH_HIST_MAX];
    double cum[BENCH_HIST_MAX];
    double sum, count;
} bench_hist;

typedef struct bench_scrape {
    bench_hist group; /* hopper_commit_group_size */
    bench_hist sync;  /* hopper_commit_sync_seconds */
    bool ok;
} bench_scrape;

/* A hopperd started for one workload. */
typedef struct broker_proc {
    pid_t pid;
    char url[128];
    char http_port[16];
    char api[128]; /* http://127.0.0.1:PORT of --api */
    char data_dir[512];
    char out_path[600];
    /* Sampled from /proc while it runs. */
    uint64_t peak_anon_kb, peak_rss_kb;
    double cpu_s; /* user + system, read at stop */
    /* The sampler thread. */
    void *sampler;
} broker_proc;

/* Starts hopperd on data_dir (created by the caller or empty) with sync
 * and waits for its URLs. 0 or -1 with a message on stderr. */
int proc_start(broker_proc *p, const bench_opts *o, const char *data_dir);
/* Milliseconds since CLOCK_MONOTONIC's epoch, as a double. */
double bench_now_ms(void);
/* Reads the commit histograms from /metrics. */
void proc_scrape(const broker_proc *p, bench_scrape *out);
/* Resets the RSS peaks (a workload's own peak starts here). */
void proc_reset_peaks(broker_proc *p);
/* SIGTERM, wait, CPU and peaks final; removes nothing. */
void proc_stop(broker_proc *p);
/* rm -rf dir (only under the bench's work dir). */
void bench_rmtree(const char *dir);
/* Runs backlog_build DIR N LANE DELAYED DEAD PAYLOAD. 0 or -1. */
int proc_backlog(const bench_opts *o, const char *dir, uint64_t pending,
                 uint64_t delayed, uint64_t dead);

/* ---- results ------------------------------------------------------------- */

typedef struct bench_result {
    char name[48];
    char desc[96];
    uint64_t messages; /* acknowledged by the broker */
    uint64_t errors;   /* calls that failed */
    double seconds;
    double rate; /* messages / s */
    bool cut;    /* stopped by --max-seconds */
    /* Latency workloads (W3) and W5. */
    double p50_ms, p99_ms, p999_ms, max_ms;
    double value_ms; /* W5: time to first claim */
    /* Broker side, for this workload alone. */
    double commits, ops, group_mean, group_p99;
    double sync_mean_ms, sync_p99_ms;
    double msgs_per_commit;
    uint64_t peak_anon_kb, peak_rss_kb;
    double cpu_s;
    bool have_broker;
} bench_result;

typedef struct bench_floor {
    uint64_t n;
    double mean_us, p50_us, p99_us;
} bench_floor;

int bench_floor_measure(const char *dir, uint64_t n, bench_floor *out);

/* Each runs one workload on its own fresh broker; 0 or -1 (could not run:
 * result->errors and stderr say why). */
typedef struct workload {
    const char *name;
    const char *desc;
    int (*run)(const bench_opts *o, const struct workload *w, bench_result *r);
    uint32_t conns; /* connections (threads) */
    uint32_t depth; /* requests in flight per connection (threads) */
    uint32_t batch; /* messages per request */
    uint64_t arg;   /* backlog size (W4, W5) */
} workload;

/* Fills the 256 pseudo-random payload bytes every message carries. */
void bench_init_payload(void);

int work_produce(const bench_opts *o, const workload *w, bench_result *r);
/* The same over the HTTP API, with JSON bodies (H workloads). */
int work_http_produce(const bench_opts *o, const workload *w, bench_result *r);
int work_http_consume(const bench_opts *o, const workload *w, bench_result *r);
int work_consume(const bench_opts *o, const workload *w, bench_result *r);
int work_latency(const bench_opts *o, const workload *w, bench_result *r);
int work_backlog(const bench_opts *o, const workload *w, bench_result *r);
int work_restart(const bench_opts *o, const workload *w, bench_result *r);

/* ---- http.c: a keep-alive HTTP/1.1 client for the API ---------------- */

typedef struct bench_http {
    int fd; /* -1: reconnect at the next request */
    char host[64];
    uint16_t port;
    char *buf; /* the last response */
    size_t len, cap;
} bench_http;

/* Connects to base ("http://IP:PORT"). 0 or -1. */
int bench_http_open(bench_http *h, const char *base);

/* POSTs json to /hopper.v1.Broker/method; the status and the response
 * body (valid until the next call, NUL-terminated) come back. 0, or -1 if
 * the connection failed. */
int bench_http_post(bench_http *h, const char *method, const char *json,
                    size_t len, int *status, const char **body,
                    size_t *body_len);

void bench_http_close(bench_http *h);

/* Fills r's broker fields from two scrapes and the process. */
void bench_broker_figures(const bench_scrape *before, const bench_scrape *after,
                          const broker_proc *p, bench_result *r);

#endif
