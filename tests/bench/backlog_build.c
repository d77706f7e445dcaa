/*
 * backlog_build.c - writes a backlog straight into a data dir with the
 * store API (no broker, sync none, 1000 messages per transaction), so a
 * test, a script or hopper-bench can start hopperd on millions of messages
 * without pushing them through the network first.
 *
 * Usage: backlog_build DIR N [LANE [DELAYED [DEAD [PAYLOAD]]]]
 * Writes, in lane LANE (default "backlog") of scope "default": DEAD dead
 * letters (enqueued with one attempt, claimed and nacked), DELAYED messages
 * due in 30 days, then N pending messages. Pending message i (0-based) has
 * the payload "backlog-<i>" padded with dots to PAYLOAD bytes (default
 * 100), so message 0 is the first a claim hands out. Prints the elapsed
 * time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "store/store.h"

#define BATCH       1000
#define PAYLOAD_MAX 4096
#define DELAY_MS    (30ull * 24 * 3600 * 1000)

typedef enum kind {
    K_PENDING,
    K_DELAYED,
    K_DEAD
} kind;

typedef struct build {
    const char *lane;
    kind kind;
    size_t payload_len;
    uint64_t first, n; /* messages [first, first + n) of this batch */
    uint64_t now_ms;
    store_draft drafts[BATCH];
    uint8_t payloads[BATCH][PAYLOAD_MAX];
    store_enqueued out[BATCH];
} build;

/* Claims the batch just enqueued and nacks each message: one attempt
 * each, so every nack makes a dead letter. */
static hp_code
kill_batch(store_txn *t, build *b, hp_status *st)
{
    hp_arena arena;
    store_claimed got;
    hp_code code;
    store_claim_req req = { .lane = hp_str_c(b->lane),
                            .target = hp_str_c(""),
                            .max = (uint32_t)b->n,
                            .lease_ms = 60000 };

    hp_arena_init(&arena);
    code =
        store_claim(t, hp_str_c("default"), &req, b->now_ms, &arena, &got, st);
    for (size_t i = 0; code == HP_OK && i < got.n; i++) {
        store_nack_req nr = { .id = got.msgs[i].id,
                              .token = got.msgs[i].token,
                              .error = hp_str_c("backlog_build") };
        store_nack_res res;
        code =
            store_nack(t, hp_str_c("default"), &nr, b->now_ms, NULL, &res, st);
    }
    hp_arena_release(&arena);
    return code;
}

static hp_code
enqueue_batch(store_txn *t, void *arg, hp_status *st)
{
    build *b = arg;
    for (uint64_t i = 0; i < b->n; i++) {
        memset(b->payloads[i], '.', b->payload_len);
        int len = snprintf((char *)b->payloads[i], b->payload_len, "%s-%llu",
                           b->kind == K_PENDING   ? "backlog"
                           : b->kind == K_DELAYED ? "delayed"
                                                  : "dead",
                           (unsigned long long)(b->first + i));
        if ((size_t)len < b->payload_len) {
            b->payloads[i][len] = '.';
        }
        b->drafts[i] = (store_draft){
            .lane = hp_str_c(b->lane),
            .payload = b->payloads[i],
            .payload_len = b->payload_len,
            .available_at_ms = b->kind == K_DELAYED ? b->now_ms + DELAY_MS : 0,
            .max_attempts = b->kind == K_DEAD ? 1 : 0,
        };
    }
    hp_code code = store_enqueue(t, hp_str_c("default"), b->drafts, b->n,
                                 b->now_ms, b->out, st);
    if (code == HP_OK && b->kind == K_DEAD) {
        code = kill_batch(t, b, st);
    }
    return code;
}

static int
write_kind(store *s, build *b, kind k, uint64_t total, uint64_t *now)
{
    hp_status st;
    b->kind = k;
    for (uint64_t done = 0; done < total; done += b->n) {
        b->first = done;
        b->n = total - done < BATCH ? total - done : BATCH;
        b->now_ms = (*now)++;
        if (store_run(s, true, enqueue_batch, b, &st) != HP_OK) {
            fprintf(stderr, "backlog_build: at %llu: %s\n",
                    (unsigned long long)done, st.msg);
            return -1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    store_opts o;
    store *s;
    hp_status st;
    struct timespec t0, t1;
    if (argc < 3 || argc > 7) {
        fprintf(stderr, "usage: backlog_build DIR N [LANE [DELAYED [DEAD "
                        "[PAYLOAD]]]]\n");
        return 2;
    }
    uint64_t total = strtoull(argv[2], NULL, 10);
    uint64_t delayed = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
    uint64_t dead = argc > 5 ? strtoull(argv[5], NULL, 10) : 0;
    size_t payload = argc > 6 ? strtoul(argv[6], NULL, 10) : 100;
    if (payload < 16 || payload > PAYLOAD_MAX) {
        fprintf(stderr, "backlog_build: PAYLOAD must be 16-%d\n", PAYLOAD_MAX);
        return 2;
    }
    build *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return 1;
    }
    b->lane = argc > 3 ? argv[3] : "backlog";
    b->payload_len = payload;
    store_opts_init(&o);
    o.dir = argv[1];
    o.sync = STORE_SYNC_NONE;
    if (store_open(&o, &s, &st) != HP_OK) {
        fprintf(stderr, "backlog_build: %s\n", st.msg);
        free(b);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* One millisecond apart per batch, earlier than now, so every message
     * is due and claim order is enqueue order. */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t batches = (total + delayed + dead) / BATCH + 3;
    uint64_t now = (uint64_t)wall.tv_sec * 1000u - batches - 1000;
    int rc = write_kind(s, b, K_DEAD, dead, &now);
    if (rc == 0) {
        rc = write_kind(s, b, K_DELAYED, delayed, &now);
    }
    if (rc == 0) {
        rc = write_kind(s, b, K_PENDING, total, &now);
    }
    hp_code code = store_sync_now(s, &st);
    store_close(s);
    free(b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != 0) {
        return 1;
    }
    printf("backlog_build: %llu pending, %llu delayed, %llu dead in %.1f s\n",
           (unsigned long long)total, (unsigned long long)delayed,
           (unsigned long long)dead,
           (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return code == HP_OK ? 0 : 1;
}
