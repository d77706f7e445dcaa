/*
 * work.c - the workloads. Each starts its own hopperd on a fresh data dir,
 * prepares what it needs untimed, then times only the part it names. A
 * message counts when the broker acknowledged it (an OK reply); every
 * failed call is counted as an error and the run goes on.
 *
 * "depth" requests in flight on one connection are kept by one thread with
 * hopper_enqueue_async, as an application would pipeline: each call has
 * its own NNG context on the handle's one connection.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define CLIENT_TIMEOUT_MS 60000
#define LEASE_MS          600000
#define MAX_THREADS       512
#define LAT_SENDERS       8

static uint8_t payload[BENCH_PAYLOAD];

void
bench_init_payload(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof(payload); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        payload[i] = (uint8_t)x;
    }
}

static hopper_client *
client_open(const char *url)
{
    hopper_options ho;
    hopper_client *c = NULL;
    hopper_status st;
    hopper_options_init(&ho);
    ho.timeout_ms = CLIENT_TIMEOUT_MS;
    if (hopper_connect(url, &ho, &c, &st) != HOPPER_OK) {
        fprintf(stderr, "hopper-bench: connect %s: %s\n", url, st.message);
        return NULL;
    }
    return c;
}

static void
report_error(const char *what, const hopper_status *st)
{
    static _Atomic int shown;
    if (atomic_fetch_add(&shown, 1) < 5) {
        fprintf(stderr, "hopper-bench: %s: %s %s\n", what, st->reason,
                st->message);
    }
}

/* A fresh data dir under the work dir for workload name. */
static void
data_dir(const bench_opts *o, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", o->work_dir, name);
    bench_rmtree(out);
}

/* ---- a pool of threads that share the work ------------------------------ */

typedef struct pool pool;
typedef void (*pool_fn)(pool *p, size_t thread, hopper_client *c);

struct pool {
    const bench_opts *o;
    const char *url;
    bool http; /* the threads open their own HTTP connections (to url) */
    uint32_t conns, depth, batch;
    uint32_t window; /* async requests in flight per thread; 0: sync */
    hopper_client *clients[MAX_THREADS];
    _Atomic int64_t tickets; /* requests (or messages) left to do */
    _Atomic uint64_t done;   /* messages acknowledged */
    _Atomic uint64_t errors;
    double deadline_ms;
    _Atomic bool cut;
    const char *lane;
    pool_fn fn;
    pthread_barrier_t start;
};

typedef struct pool_arg {
    pool *p;
    size_t i;
} pool_arg;

static void *
pool_main(void *arg)
{
    pool_arg *a = arg;
    pool *p = a->p;
    pthread_barrier_wait(&p->start);
    p->fn(p, a->i, p->clients[a->i / p->depth]);
    return NULL;
}

static bool
pool_late(pool *p)
{
    if (bench_now_ms() > p->deadline_ms) {
        atomic_store(&p->cut, true);
        return true;
    }
    return false;
}

/* Runs fn on conns x depth threads; returns the seconds from the moment
 * all were ready to the last one's end. -1 if the pool could not start. */
static double
pool_run(pool *p)
{
    size_t n = (size_t)p->conns * p->depth;
    pthread_t th[MAX_THREADS];
    pool_arg args[MAX_THREADS];
    double t0;
    if (n > MAX_THREADS) {
        return -1;
    }
    for (uint32_t i = 0; i < p->conns && !p->http; i++) {
        if ((p->clients[i] = client_open(p->url)) == NULL) {
            while (i-- > 0) {
                hopper_close(p->clients[i]);
            }
            return -1;
        }
    }
    pthread_barrier_init(&p->start, NULL, (unsigned)n + 1);
    for (size_t i = 0; i < n; i++) {
        args[i] = (pool_arg){ p, i };
        pthread_create(&th[i], NULL, pool_main, &args[i]);
    }
    p->deadline_ms = bench_now_ms() + p->o->max_seconds * 1e3;
    pthread_barrier_wait(&p->start);
    t0 = bench_now_ms();
    for (size_t i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
    }
    double secs = (bench_now_ms() - t0) / 1e3;
    pthread_barrier_destroy(&p->start);
    for (uint32_t i = 0; i < p->conns && !p->http; i++) {
        hopper_close(p->clients[i]);
    }
    return secs;
}

/* ---- produce ------------------------------------------------------------- */

static void
produce_fn(pool *p, size_t thread, hopper_client *c)
{
    hopper_draft d[1000];
    hopper_status st;
    (void)thread;
    for (uint32_t i = 0; i < p->batch; i++) {
        d[i] = (hopper_draft){ .lane = p->lane,
                               .payload = payload,
                               .payload_len = sizeof(payload) };
    }
    while (atomic_fetch_sub(&p->tickets, 1) > 0 && !pool_late(p)) {
        if (hopper_enqueue(c, d, p->batch, NULL, &st) == HOPPER_OK) {
            atomic_fetch_add(&p->done, p->batch);
        } else {
            atomic_fetch_add(&p->errors, 1);
            report_error("enqueue", &st);
        }
    }
}

/* The pipelined producer: one thread keeps p->window enqueues in flight
 * with hopper_enqueue_async. */
typedef struct window {
    pool *p;
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    uint32_t inflight;
} window;

static void
window_done(void *arg, int code, const hopper_enqueued *out, size_t n,
            const hopper_status *st)
{
    window *w = arg;
    (void)out;
    if (code == HOPPER_OK) {
        atomic_fetch_add(&w->p->done, n);
    } else {
        atomic_fetch_add(&w->p->errors, 1);
        report_error("enqueue", st);
    }
    pthread_mutex_lock(&w->mtx);
    w->inflight--;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mtx);
}

static void
produce_async_fn(pool *p, size_t thread, hopper_client *c)
{
    hopper_draft d[1000];
    hopper_status st;
    window w = { .p = p };
    (void)thread;
    pthread_mutex_init(&w.mtx, NULL);
    pthread_cond_init(&w.cond, NULL);
    for (uint32_t i = 0; i < p->batch; i++) {
        d[i] = (hopper_draft){ .lane = p->lane,
                               .payload = payload,
                               .payload_len = sizeof(payload) };
    }
    while (atomic_fetch_sub(&p->tickets, 1) > 0 && !pool_late(p)) {
        pthread_mutex_lock(&w.mtx);
        while (w.inflight >= p->window) {
            pthread_cond_wait(&w.cond, &w.mtx);
        }
        w.inflight++;
        pthread_mutex_unlock(&w.mtx);
        if (hopper_enqueue_async(c, d, p->batch, window_done, &w, &st) !=
            HOPPER_OK) {
            atomic_fetch_add(&p->errors, 1);
            report_error("enqueue", &st);
            pthread_mutex_lock(&w.mtx);
            w.inflight--;
            pthread_mutex_unlock(&w.mtx);
        }
    }
    pthread_mutex_lock(&w.mtx); /* every callback before the handle closes */
    while (w.inflight > 0) {
        pthread_cond_wait(&w.cond, &w.mtx);
    }
    pthread_mutex_unlock(&w.mtx);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.mtx);
}

/* ---- over the HTTP API (H1, H2) ---------------------------------------- */

/* 256 bytes of payload as protobuf's JSON mapping carries bytes: base64.
 * Random characters of the alphabet stand for random bytes (what they
 * are does not matter), and "AA==" makes the last group decode whole. */
static char json_payload[345];

static void
init_json_payload(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < 340; i++) {
        json_payload[i] = alphabet[payload[i % sizeof(payload)] % 64];
    }
    memcpy(json_payload + 340, "AA==", 5);
}

static void
http_fail(pool *p, const char *what, int status, const char *body)
{
    atomic_fetch_add(&p->errors, 1);
    if (atomic_load(&p->errors) <= 3) {
        fprintf(stderr, "hopper-bench: %s over HTTP: %d %.200s\n", what, status,
                body != NULL ? body : "(no answer)");
    }
}

static void
http_produce_fn(pool *p, size_t thread, hopper_client *c)
{
    bench_http h;
    char json[512];
    int status;
    const char *body;
    size_t len;
    (void)thread;
    (void)c;
    int n = snprintf(json, sizeof(json),
                     "{\"drafts\":[{\"lane\":\"%s\",\"payload\":\"%s\"}]}",
                     p->lane, json_payload);
    if (bench_http_open(&h, p->url) != 0) {
        http_fail(p, "connect", 0, NULL);
        return;
    }
    while (atomic_fetch_sub(&p->tickets, 1) > 0 && !pool_late(p)) {
        if (bench_http_post(&h, "Enqueue", json, (size_t)n, &status, &body,
                            &len) == 0 &&
            status == 200) {
            atomic_fetch_add(&p->done, 1);
        } else {
            http_fail(p, "enqueue", status, body);
        }
    }
    bench_http_close(&h);
}

/* Builds the Ack of every message of a Claim's JSON answer (fields in
 * number order: each message's id comes before its claim token). */
static size_t
ack_json(const char *claimed, char *out, size_t cap, size_t *n_items)
{
    size_t o = (size_t)snprintf(out, cap, "{\"items\":[");
    const char *at = claimed;
    *n_items = 0;
    while ((at = strstr(at, "\"id\":\"")) != NULL) {
        const char *id = at + 6;
        const char *tok = strstr(id, "\"claimToken\":\"");
        if (tok == NULL || o + 128 > cap) {
            break;
        }
        tok += 14;
        int idn = (int)strcspn(id, "\""), tokn = (int)strcspn(tok, "\"");
        o += (size_t)snprintf(out + o, cap - o,
                              "%s{\"id\":\"%.*s\",\"claimToken\":\"%.*s\"}",
                              *n_items > 0 ? "," : "", idn, id, tokn, tok);
        (*n_items)++;
        at = tok + tokn;
    }
    o += (size_t)snprintf(out + o, cap - o, "]}");
    return o;
}

static void
http_consume_fn(pool *p, size_t thread, hopper_client *c)
{
    bench_http h;
    char claim[128], ack[128 * 1000 + 64];
    int status;
    const char *body;
    size_t len, n_items;
    (void)thread;
    (void)c;
    int n = snprintf(claim, sizeof(claim),
                     "{\"lane\":\"%s\",\"max\":%u,\"leaseMs\":%u}", p->lane,
                     p->batch, LEASE_MS);
    if (bench_http_open(&h, p->url) != 0) {
        http_fail(p, "connect", 0, NULL);
        return;
    }
    while (atomic_load(&p->tickets) > 0 && !pool_late(p)) {
        if (bench_http_post(&h, "Claim", claim, (size_t)n, &status, &body,
                            &len) != 0 ||
            status != 200) {
            http_fail(p, "claim", status, body);
            continue;
        }
        size_t alen = ack_json(body, ack, sizeof(ack), &n_items);
        if (n_items == 0) {
            break; /* the lane is drained */
        }
        if (bench_http_post(&h, "Ack", ack, alen, &status, &body, &len) == 0 &&
            status == 200) {
            atomic_fetch_add(&p->done, n_items);
            atomic_fetch_sub(&p->tickets, (int64_t)n_items);
        } else {
            http_fail(p, "ack", status, body);
        }
    }
    bench_http_close(&h);
}

/* Enqueues n messages on url, untimed preparation: 4 connections,
 * batches of 100. */
static int
preload(const bench_opts *o, const char *url, const char *lane, uint64_t n)
{
    bench_opts untimed = *o;
    untimed.max_seconds = 3600;
    pool p = { .o = &untimed,
               .url = url,
               .conns = 4,
               .depth = 1,
               .batch = 100,
               .lane = lane,
               .fn = produce_fn };
    atomic_store(&p.tickets, (int64_t)(n / 100));
    if (pool_run(&p) < 0 || atomic_load(&p.errors) != 0) {
        fprintf(stderr, "hopper-bench: preload of %llu failed\n",
                (unsigned long long)n);
        return -1;
    }
    return 0;
}

static uint64_t
messages_for(const bench_opts *o)
{
    return o->quick ? 5000 : 100000;
}

/* W1 and H1: natively, or over the HTTP API. */
static int
produce(const bench_opts *o, const workload *w, bench_result *r, bool http)
{
    char dir[600];
    broker_proc bp;
    bench_scrape before, after;
    uint64_t total = messages_for(o);

    data_dir(o, w->name, dir, sizeof(dir));
    if (proc_start(&bp, o, dir) != 0) {
        return -1;
    }
    pool p = { .o = o,
               .url = http ? bp.api : bp.url,
               .http = http,
               .conns = w->conns,
               .depth = 1,
               .batch = w->batch,
               .lane = "bench",
               .fn = http ? http_produce_fn : produce_fn };
    if (w->depth > 1) {
        p.window = w->depth;
        p.fn = produce_async_fn;
    }
    atomic_store(&p.tickets, (int64_t)(total / w->batch));
    proc_scrape(&bp, &before);
    proc_reset_peaks(&bp);
    double secs = pool_run(&p);
    proc_scrape(&bp, &after);
    proc_stop(&bp);
    if (secs < 0) {
        return -1;
    }
    r->messages = atomic_load(&p.done);
    r->errors = atomic_load(&p.errors);
    r->seconds = secs;
    r->cut = atomic_load(&p.cut);
    bench_broker_figures(&before, &after, &bp, r);
    bench_rmtree(dir);
    return 0;
}

int
work_produce(const bench_opts *o, const workload *w, bench_result *r)
{
    return produce(o, w, r, false);
}

int
work_http_produce(const bench_opts *o, const workload *w, bench_result *r)
{
    init_json_payload();
    return produce(o, w, r, true);
}

/* ---- consume ------------------------------------------------------------- */

static void
consume_fn(pool *p, size_t thread, hopper_client *c)
{
    hopper_claim_opts co = { .max = p->batch, .lease_ms = LEASE_MS };
    hopper_ack_item items[1000];
    hopper_status st;
    (void)thread;
    while (atomic_load(&p->tickets) > 0 && !pool_late(p)) {
        hopper_batch *b = NULL;
        if (hopper_claim(c, p->lane, &co, &b, &st) != HOPPER_OK) {
            atomic_fetch_add(&p->errors, 1);
            report_error("claim", &st);
            continue;
        }
        if (b->n == 0) {
            hopper_batch_free(b);
            break; /* the lane is drained */
        }
        for (size_t i = 0; i < b->n; i++) {
            items[i] = (hopper_ack_item){ .id = b->msgs[i].id,
                                          .token = b->msgs[i].token };
        }
        if (hopper_ack(c, items, b->n, NULL, 0, NULL, &st) == HOPPER_OK) {
            atomic_fetch_add(&p->done, b->n);
            atomic_fetch_sub(&p->tickets, (int64_t)b->n);
        } else {
            atomic_fetch_add(&p->errors, 1);
            report_error("ack", &st);
        }
        hopper_batch_free(b);
    }
}

/* Times conns consumers taking and acking `count` messages from lane. */
static double
consume(const bench_opts *o, broker_proc *bp, const workload *w, uint64_t count,
        bool http, bench_result *r)
{
    bench_scrape before, after;
    pool p = { .o = o,
               .url = http ? bp->api : bp->url,
               .http = http,
               .conns = w->conns,
               .depth = 1,
               .batch = w->batch,
               .lane = "bench",
               .fn = http ? http_consume_fn : consume_fn };
    atomic_store(&p.tickets, (int64_t)count);
    proc_scrape(bp, &before);
    proc_reset_peaks(bp);
    double secs = pool_run(&p);
    proc_scrape(bp, &after);
    proc_stop(bp);
    r->messages = atomic_load(&p.done);
    r->errors = atomic_load(&p.errors);
    r->seconds = secs;
    r->cut = atomic_load(&p.cut);
    bench_broker_figures(&before, &after, bp, r);
    return secs;
}

/* W2 and H2: natively, or over the HTTP API. */
static int
consume_preloaded(const bench_opts *o, const workload *w, bench_result *r,
                  bool http)
{
    char dir[600];
    broker_proc bp;
    uint64_t total = messages_for(o);

    data_dir(o, w->name, dir, sizeof(dir));
    if (proc_start(&bp, o, dir) != 0) {
        return -1;
    }
    if (preload(o, bp.url, "bench", total) != 0) {
        proc_stop(&bp);
        return -1;
    }
    double secs = consume(o, &bp, w, total, http, r);
    bench_rmtree(dir);
    return secs < 0 ? -1 : 0;
}

int
work_consume(const bench_opts *o, const workload *w, bench_result *r)
{
    return consume_preloaded(o, w, r, false);
}

int
work_http_consume(const bench_opts *o, const workload *w, bench_result *r)
{
    return consume_preloaded(o, w, r, true);
}

/* W4: consumers take `count` messages from a lane that holds the backlog
 * (pending, and as many delayed and dead beside them) written straight
 * into the data dir, plus the count enqueued through the broker. Pending
 * never drops below the backlog while it is timed. */
int
work_backlog(const bench_opts *o, const workload *w, bench_result *r)
{
    char dir[600];
    broker_proc bp;
    uint64_t count = o->quick ? 2000 : 200000;

    data_dir(o, w->name, dir, sizeof(dir));
    if (proc_backlog(o, dir, w->arg, w->arg, w->arg) != 0 ||
        proc_start(&bp, o, dir) != 0) {
        return -1;
    }
    if (preload(o, bp.url, "bench", count) != 0) {
        proc_stop(&bp);
        return -1;
    }
    double secs = consume(o, &bp, w, count, false, r);
    bench_rmtree(dir);
    return secs < 0 ? -1 : 0;
}

/* ---- latency --------------------------------------------------------------
 */

typedef struct lat {
    broker_proc *bp;
    const bench_opts *o;
    uint64_t total;
    double rate;
    double *ms; /* per message, by sequence number */
    _Atomic uint64_t sent, received, errors;
    _Atomic bool producer_done;
    double deadline_ms;
    hopper_client *producer; /* shared by the senders */
    _Atomic uint64_t next;   /* the next sequence number to send */
    uint64_t start_ns;
} lat;

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One of the producer's senders: takes the next sequence number, waits
 * for its time on the fixed schedule and sends it. Several senders share
 * the producer's connection, so a slow reply delays no later message; a
 * message whose time has passed goes at once, so a backlog shows as
 * latency instead of being hidden. */
static void *
lat_sender(void *arg)
{
    lat *l = arg;
    uint8_t buf[BENCH_PAYLOAD];
    hopper_status st;
    memcpy(buf, payload, sizeof(buf));
    for (;;) {
        uint64_t i = atomic_fetch_add(&l->next, 1);
        if (i >= l->total) {
            break;
        }
        uint64_t at = l->start_ns + (uint64_t)((double)i * 1e9 / l->rate);
        struct timespec ts = { (time_t)(at / 1000000000u),
                               (long)(at % 1000000000u) };
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        if (bench_now_ms() > l->deadline_ms) {
            break;
        }
        uint64_t t = now_ns();
        memcpy(buf, &t, sizeof(t));
        memcpy(buf + sizeof(t), &i, sizeof(i));
        hopper_draft d = { .lane = "bench",
                           .payload = buf,
                           .payload_len = sizeof(buf) };
        if (hopper_enqueue(l->producer, &d, 1, NULL, &st) == HOPPER_OK) {
            atomic_fetch_add(&l->sent, 1);
        } else {
            atomic_fetch_add(&l->errors, 1);
            report_error("enqueue", &st);
        }
    }
    return NULL;
}

static void *
lat_producer(void *arg)
{
    lat *l = arg;
    pthread_t th[LAT_SENDERS];
    l->producer = client_open(l->bp->url);
    l->start_ns = now_ns();
    for (int i = 0; l->producer != NULL && i < LAT_SENDERS; i++) {
        pthread_create(&th[i], NULL, lat_sender, l);
    }
    for (int i = 0; l->producer != NULL && i < LAT_SENDERS; i++) {
        pthread_join(th[i], NULL);
    }
    atomic_store(&l->producer_done, true);
    hopper_close(l->producer);
    return NULL;
}

static void *
lat_consumer(void *arg)
{
    lat *l = arg;
    hopper_client *c = client_open(l->bp->url);
    hopper_claim_opts co = { .max = 32, .lease_ms = LEASE_MS, .wait_ms = 500 };
    hopper_ack_item items[32];
    hopper_status st;
    while (c != NULL) {
        if (atomic_load(&l->producer_done) &&
            atomic_load(&l->received) >= atomic_load(&l->sent)) {
            break;
        }
        if (bench_now_ms() > l->deadline_ms + 5000) {
            break;
        }
        hopper_batch *b = NULL;
        if (hopper_claim(c, "bench", &co, &b, &st) != HOPPER_OK) {
            atomic_fetch_add(&l->errors, 1);
            report_error("claim", &st);
            continue;
        }
        uint64_t now = now_ns();
        for (size_t i = 0; i < b->n; i++) {
            uint64_t t, seq;
            memcpy(&t, b->msgs[i].payload, sizeof(t));
            memcpy(&seq, (uint8_t *)b->msgs[i].payload + sizeof(t),
                   sizeof(seq));
            if (seq < l->total) {
                l->ms[seq] = (double)(now - t) / 1e6;
            }
            items[i] = (hopper_ack_item){ .id = b->msgs[i].id,
                                          .token = b->msgs[i].token };
        }
        if (b->n > 0) {
            atomic_fetch_add(&l->received, b->n);
            if (hopper_ack(c, items, b->n, NULL, 0, NULL, &st) != HOPPER_OK) {
                atomic_fetch_add(&l->errors, 1);
                report_error("ack", &st);
            }
        }
        hopper_batch_free(b);
    }
    hopper_close(c);
    return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
quantile(const double *sorted, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(q * (double)n);
    return sorted[i < n ? i : n - 1];
}

int
work_latency(const bench_opts *o, const workload *w, bench_result *r)
{
    char dir[600];
    broker_proc bp;
    bench_scrape before, after;
    double seconds = o->quick ? 1 : 10;
    lat l = { .o = o, .rate = (double)w->arg };
    pthread_t prod, cons;

    l.total = (uint64_t)(l.rate * seconds);
    l.ms = calloc(l.total, sizeof(double));
    data_dir(o, w->name, dir, sizeof(dir));
    if (l.ms == NULL || proc_start(&bp, o, dir) != 0) {
        free(l.ms);
        return -1;
    }
    l.bp = &bp;
    for (uint64_t i = 0; i < l.total; i++) {
        l.ms[i] = -1;
    }
    l.deadline_ms = bench_now_ms() + o->max_seconds * 1e3;
    proc_scrape(&bp, &before);
    proc_reset_peaks(&bp);
    double t0 = bench_now_ms();
    pthread_create(&cons, NULL, lat_consumer, &l);
    pthread_create(&prod, NULL, lat_producer, &l);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    r->seconds = (bench_now_ms() - t0) / 1e3;
    proc_scrape(&bp, &after);
    proc_stop(&bp);
    size_t n = 0;
    for (uint64_t i = 0; i < l.total; i++) {
        if (l.ms[i] >= 0) {
            l.ms[n++] = l.ms[i];
        }
    }
    qsort(l.ms, n, sizeof(double), cmp_double);
    r->messages = n;
    r->errors = atomic_load(&l.errors) + (atomic_load(&l.sent) - n);
    r->cut = atomic_load(&l.sent) < l.total;
    r->p50_ms = quantile(l.ms, n, 0.50);
    r->p99_ms = quantile(l.ms, n, 0.99);
    r->p999_ms = quantile(l.ms, n, 0.999);
    r->max_ms = n > 0 ? l.ms[n - 1] : 0;
    bench_broker_figures(&before, &after, &bp, r);
    free(l.ms);
    bench_rmtree(dir);
    return 0;
}

/* ---- restart --------------------------------------------------------------
 */

/* W5: from starting hopperd on a backlog to the first claim that returns
 * a message, over a fresh connection; the median of the runs. */
int
work_restart(const bench_opts *o, const workload *w, bench_result *r)
{
    char dir[600];
    double t[5];
    int runs = o->quick ? 1 : 3;
    uint64_t backlog = o->quick ? 10000 : w->arg;
    hopper_claim_opts co = { .max = 1, .lease_ms = LEASE_MS };

    data_dir(o, w->name, dir, sizeof(dir));
    if (proc_backlog(o, dir, backlog, 0, 0) != 0) {
        return -1;
    }
    for (int i = 0; i < runs; i++) {
        broker_proc bp;
        double t0 = bench_now_ms();
        if (proc_start(&bp, o, dir) != 0) {
            return -1;
        }
        for (;;) {
            hopper_client *c = client_open(bp.url);
            hopper_batch *b = NULL;
            hopper_status st;
            int rc = c != NULL ? hopper_claim(c, "bench", &co, &b, &st) : -1;
            bool got = rc == HOPPER_OK && b->n == 1;
            hopper_batch_free(b);
            hopper_close(c);
            if (got) {
                break;
            }
            r->errors++;
            if (bench_now_ms() - t0 > o->max_seconds * 1e3) {
                r->cut = true;
                break;
            }
        }
        t[i] = bench_now_ms() - t0;
        proc_stop(&bp);
        if (bp.peak_anon_kb > r->peak_anon_kb) {
            r->peak_anon_kb = bp.peak_anon_kb;
        }
        if (bp.peak_rss_kb > r->peak_rss_kb) {
            r->peak_rss_kb = bp.peak_rss_kb;
        }
    }
    qsort(t, (size_t)runs, sizeof(double), cmp_double);
    r->value_ms = t[runs / 2];
    r->max_ms = t[runs - 1];
    r->messages = (uint64_t)runs;
    bench_rmtree(dir);
    return 0;
}
