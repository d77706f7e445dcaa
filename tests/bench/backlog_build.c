/*
 * backlog_build.c - writes a backlog straight into a data dir with the
 * store API (no broker, sync none, 1000 messages per transaction), so a
 * test or a script can start hopperd on millions of pending messages
 * without pushing them through the network first.
 *
 * Usage: backlog_build DIR N [LANE]
 * Message i (0-based) has the payload "backlog-<i>" padded to 100 bytes,
 * so message 0 is the first a claim hands out. Prints the elapsed time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

#define BATCH       1000
#define PAYLOAD_LEN 100

typedef struct build {
    const char *lane;
    uint64_t first, n; /* messages [first, first + n) of this batch */
    uint64_t now_ms;
    store_draft drafts[BATCH];
    uint8_t payloads[BATCH][PAYLOAD_LEN];
    store_enqueued out[BATCH];
} build;

static hp_code
enqueue_batch(store_txn *t, void *arg, hp_status *st)
{
    build *b = arg;
    for (uint64_t i = 0; i < b->n; i++) {
        memset(b->payloads[i], '.', PAYLOAD_LEN);
        int len = snprintf((char *)b->payloads[i], PAYLOAD_LEN, "backlog-%llu",
                           (unsigned long long)(b->first + i));
        b->payloads[i][len] = '.';
        b->drafts[i] = (store_draft){ .lane = hp_str_c(b->lane),
                                      .payload = b->payloads[i],
                                      .payload_len = PAYLOAD_LEN };
    }
    return store_enqueue(t, hp_str_c("default"), b->drafts, b->n, b->now_ms,
                         b->out, st);
}

int
main(int argc, char **argv)
{
    store_opts o;
    store *s;
    hp_status st;
    struct timespec t0, t1;
    if (argc < 3) {
        fprintf(stderr, "usage: backlog_build DIR N [LANE]\n");
        return 2;
    }
    uint64_t total = strtoull(argv[2], NULL, 10);
    build *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return 1;
    }
    b->lane = argc > 3 ? argv[3] : "backlog";
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
    uint64_t now = (uint64_t)wall.tv_sec * 1000u - total / BATCH - 1000;
    for (uint64_t done = 0; done < total; done += b->n) {
        b->first = done;
        b->n = total - done < BATCH ? total - done : BATCH;
        b->now_ms = now++;
        if (store_run(s, true, enqueue_batch, b, &st) != HP_OK) {
            fprintf(stderr, "backlog_build: at %llu: %s\n",
                    (unsigned long long)done, st.msg);
            store_close(s);
            free(b);
            return 1;
        }
    }
    hp_code code = store_sync_now(s, &st);
    store_close(s);
    free(b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("backlog_build: %llu messages in %.1f s\n",
           (unsigned long long)total,
           (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return code == HP_OK ? 0 : 1;
}
