/*
 * pages_bench.c - how many pages each kind of operation writes when it is
 * alone in its commit, as the broker commits it (the replay-cache entry
 * included where the broker writes one). Counted from the bytes this
 * process hands to write(2)-like calls (/proc/self/io wchar), which is
 * what LMDB writes at commit: dirty pages and the meta page. Deterministic
 * for a given store shape; the machine's load does not move it.
 *
 *   pages_bench [BACKLOG]   messages enqueued first (default 100000)
 */
#define _XOPEN_SOURCE 700
#define BENCH_NAME    "pages_bench"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "common/arena.h"
#include "store/store.h"

#define PAGE   4096.0
#define ROUNDS 200
#define NOW_MS 1700000000000ull
#define SCOPE  "default"
#define LANE   "bench"
#define REPLAY (10 * 60 * 1000)

static unsigned long long
wchar(void)
{
    char line[128];
    unsigned long long v = 0;
    FILE *f = fopen("/proc/self/io", "r");
    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "wchar:", 6) == 0) {
            v = strtoull(line + 6, NULL, 10);
        }
    }
    fclose(f);
    return v;
}

typedef struct ctx {
    store *s;
    uint64_t now;
    uint64_t rid;
    hp_id ids[32];
    store_token tokens[32];
    size_t n;
} ctx;

static store_txn *
begin(ctx *x)
{
    store_txn *t;
    hp_status st;
    if (store_txn_begin(x->s, true, &t, &st) != HP_OK) {
        bench_die("begin", &st);
    }
    return t;
}

static void
commit(store_txn *t)
{
    hp_status st;
    if (store_txn_commit(t, &st) != HP_OK) {
        bench_die("commit", &st);
    }
}

/* The replay entry the broker writes beside a request with a request id:
 * about the size of a one-message answer. */
static void
replay(ctx *x, store_txn *t)
{
    char rid[40];
    uint8_t data[40] = { 0 };
    hp_status st;
    snprintf(rid, sizeof(rid), "%032llx", (unsigned long long)++x->rid);
    if (store_replay_put(t, HP_S(SCOPE), hp_str_c(rid), 1, data, sizeof(data),
                         x->now + REPLAY, &st) != HP_OK) {
        bench_die("replay", &st);
    }
}

static void
enqueue(ctx *x, store_txn *t, size_t n)
{
    static char payload[256];
    store_draft d[100];
    store_enqueued out[100];
    hp_status st;
    memset(d, 0, sizeof(d));
    for (size_t i = 0; i < n; i++) {
        d[i].lane = HP_S(LANE);
        d[i].payload = payload;
        d[i].payload_len = sizeof(payload);
    }
    if (store_enqueue(t, HP_S(SCOPE), d, n, x->now, out, &st) != HP_OK) {
        bench_die("enqueue", &st);
    }
}

static void
claim(ctx *x, store_txn *t, uint32_t max)
{
    hp_arena a;
    store_claimed res;
    hp_status st;
    store_claim_req req = {
        .lane = HP_S(LANE), .any_target = true, .max = max, .lease_ms = 30000
    };
    hp_arena_init(&a);
    if (store_claim(t, HP_S(SCOPE), &req, x->now, &a, &res, &st) != HP_OK) {
        bench_die("claim", &st);
    }
    x->n = res.n;
    for (size_t i = 0; i < res.n; i++) {
        x->ids[i] = res.msgs[i].id;
        x->tokens[i] = res.msgs[i].token;
    }
    hp_arena_release(&a);
}

static void
ack(ctx *x, store_txn *t)
{
    store_ack_item items[32];
    hp_status st;
    memset(items, 0, sizeof(items));
    for (size_t i = 0; i < x->n; i++) {
        items[i].id = x->ids[i];
        items[i].token = x->tokens[i];
    }
    if (store_ack(t, HP_S(SCOPE), items, x->n, NULL, 0, x->now, NULL, &st) !=
        HP_OK) {
        bench_die("ack", &st);
    }
}

typedef enum kind {
    K_ENQ1_RID,
    K_ENQ1,
    K_ENQ100_RID,
    K_CLAIM1_RID,
    K_ACK1,
    K_CLAIM32_RID,
    K_ACK32,
} kind;

static const char *const names[] = {
    "enqueue 1 message, with request id",
    "enqueue 1 message, no request id",
    "enqueue 100 messages, with request id",
    "claim 1, with request id",
    "ack 1 (no replay entry)",
    "claim 32, with request id",
    "ack 32 (no replay entry)",
};

/* One commit of kind k (claims and acks come in pairs: a claim's messages
 * are what the next ack settles). Returns the bytes it wrote. */
static unsigned long long
one(ctx *x, kind k)
{
    x->now += 1;
    unsigned long long before = wchar();
    store_txn *t = begin(x);
    switch (k) {
    case K_ENQ1_RID:
        enqueue(x, t, 1);
        replay(x, t);
        break;
    case K_ENQ1:
        enqueue(x, t, 1);
        break;
    case K_ENQ100_RID:
        enqueue(x, t, 100);
        replay(x, t);
        break;
    case K_CLAIM1_RID:
        claim(x, t, 1);
        replay(x, t);
        break;
    case K_CLAIM32_RID:
        claim(x, t, 32);
        replay(x, t);
        break;
    case K_ACK1:
    case K_ACK32:
        ack(x, t);
        break;
    }
    commit(t);
    return wchar() - before;
}

int
main(int argc, char **argv)
{
    size_t backlog = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    char dir[] = "/tmp/pages-bench-XXXXXX";
    store_opts o;
    hp_status st;
    ctx x = { .now = NOW_MS };

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    store_opts_init(&o);
    o.dir = dir;
    o.sync = STORE_SYNC_NONE; /* the same pages are written; faster */
    /* ...through pwrite, where /proc/self/io counts them: a writable map
     * (what --sync none does now) turns them into unseen stores. */
    o.no_writemap = true;
    o.map_size = (size_t)1 << 30;
    if (store_open(&o, &x.s, &st) != HP_OK) {
        bench_die("open", &st);
    }
    for (size_t i = 0; i < backlog; i += 100) {
        store_txn *t = begin(&x);
        enqueue(&x, t, 100);
        commit(t);
    }
    printf("| operation, alone in its commit (backlog %zu) | pages written "
           "per commit |\n|---|---:|\n",
           backlog);
    for (kind k = K_ENQ1_RID; k <= K_ACK32; k++) {
        unsigned long long bytes = 0;
        if (k == K_ACK1 || k == K_ACK32) {
            continue; /* measured with their claims below */
        }
        for (int r = 0; r < ROUNDS; r++) {
            bytes += one(&x, k);
        }
        printf("| %s | %.1f |\n", names[k], (double)bytes / ROUNDS / PAGE);
    }
    for (kind k = K_CLAIM1_RID; k <= K_CLAIM32_RID; k += 2) {
        unsigned long long acked = 0;
        for (int r = 0; r < ROUNDS; r++) {
            (void)one(&x, k);
            acked += one(&x, (kind)(k + 1));
        }
        printf("| %s | %.1f |\n", names[k + 1], (double)acked / ROUNDS / PAGE);
    }
    store_close(x.s);
    bench_rmtree(dir);
    return 0;
}
