/*
 * make_store_v1.c - writes the schema-1 data dir checked in beside it
 * (store_v1/data.mdb), which store_upgrade_test opens to prove that a
 * store written by an older hopperd keeps working.
 *
 * It uses only the public store API, so what it writes depends on the
 * code it is built against: store_v1/data.mdb was made with the store of
 * commit 288cdea (STORE_SCHEMA_VERSION 1, no lane_ready index):
 *
 *   git archive 288cdea | tar -x -C /tmp/v1 && cmake -S /tmp/v1 -B /tmp/v1/b
 *   cmake --build /tmp/v1/b --target hp_store
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -I/tmp/v1/src make_store_v1.c \
 *      /tmp/v1/b/src/store/libhp_store.a /tmp/v1/b/src/common/libhp_common.a \
 *      -llmdb -lxxhash -lcrypto -lpthread -o make_store_v1
 *   ./make_store_v1 DIR     (DIR must not exist; keep DIR/data.mdb)
 *
 * Contents (time is NOW = 1700000000000 plus an offset; the random
 * source is a counter, so the ids are the same on every run):
 *   default/emails: 12 due messages, targets a, b, c and none in turn,
 *     priority i % 3, available at NOW + i; one more for target b
 *     delayed to NOW + 1 h.
 *   default/jobs: one message claimed at NOW + 100 with a 60 s lease by
 *     "w1"; one dead letter (max_attempts 1, claimed and nacked "boom").
 *   acme/emails: two due messages, targets x and y.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define NOW UINT64_C(1700000000000)

static uint64_t counter;

static int
counter_rand(void *arg, void *buf, size_t len)
{
    uint8_t *p = buf;
    (void)arg;
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(counter * 131u + i * 7u);
        counter++;
    }
    return 0;
}

static void
check(hp_code code, const hp_status *st, const char *what)
{
    if (code != HP_OK) {
        fprintf(stderr, "make_store_v1: %s: %s %s\n", what, st->reason,
                st->msg);
        exit(1);
    }
}

static hp_id
put(store *s, hp_str scope, const char *lane, const char *target,
    uint32_t priority, uint64_t delay_ms, uint32_t max_attempts, uint64_t now)
{
    store_txn *t;
    hp_status st;
    store_enqueued out;
    store_draft d;

    memset(&d, 0, sizeof(d));
    d.lane = hp_str_c(lane);
    d.target = hp_str_c(target);
    d.payload = "hello";
    d.payload_len = 5;
    d.priority = priority;
    d.delay_ms = delay_ms;
    d.max_attempts = max_attempts;
    check(store_txn_begin(s, true, &t, &st), &st, "begin");
    check(store_enqueue(t, scope, &d, 1, now, &out, &st), &st, "enqueue");
    check(store_txn_commit(t, &st), &st, "commit");
    return out.id;
}

static store_message
take(store *s, const char *lane, uint64_t now, hp_arena *a)
{
    store_txn *t;
    hp_status st;
    store_claimed res;
    store_claim_req req;

    memset(&req, 0, sizeof(req));
    req.lane = hp_str_c(lane);
    req.any_target = true;
    req.max = 1;
    req.lease_ms = 60000;
    req.consumer = HP_S("w1");
    check(store_txn_begin(s, true, &t, &st), &st, "begin");
    check(store_claim(t, HP_S("default"), &req, now, a, &res, &st), &st,
          "claim");
    check(store_txn_commit(t, &st), &st, "commit");
    if (res.n != 1) {
        fprintf(stderr, "make_store_v1: claimed %zu\n", res.n);
        exit(1);
    }
    return res.msgs[0];
}

int
main(int argc, char **argv)
{
    static const char *const targets[] = { "a", "b", "c", "" };
    store_opts o;
    store *s;
    store_txn *t;
    hp_status st;
    hp_arena a;

    if (argc != 2) {
        fprintf(stderr, "usage: make_store_v1 DIR\n");
        return 2;
    }
    store_opts_init(&o);
    o.dir = argv[1];
    o.map_size = (size_t)1 << 20;
    o.rand = counter_rand;
    hp_arena_init(&a);
    check(store_open(&o, &s, &st), &st, "open");
    for (uint32_t i = 0; i < 12; i++) {
        put(s, HP_S("default"), "emails", targets[i % 4], i % 3, 0, 0, NOW + i);
    }
    put(s, HP_S("default"), "emails", "b", 0, 3600 * 1000, 0, NOW + 12);
    put(s, HP_S("acme"), "emails", "x", 0, 0, 0, NOW);
    put(s, HP_S("acme"), "emails", "y", 0, 0, 0, NOW + 1);

    /* The dead letter first: it is the lane's only message when claimed. */
    put(s, HP_S("default"), "jobs", "", 0, 0, 1, NOW + 20);
    store_message dead = take(s, "jobs", NOW + 30, &a);
    store_nack_req nr;
    store_nack_res nres;
    memset(&nr, 0, sizeof(nr));
    nr.id = dead.id;
    nr.token = dead.token;
    nr.error = HP_S("boom");
    check(store_txn_begin(s, true, &t, &st), &st, "begin");
    check(store_nack(t, HP_S("default"), &nr, NOW + 40, NULL, &nres, &st), &st,
          "nack");
    check(store_txn_commit(t, &st), &st, "commit");
    put(s, HP_S("default"), "jobs", "", 0, 0, 0, NOW + 50);
    (void)take(s, "jobs", NOW + 100, &a);

    store_close(s);
    hp_arena_release(&a);
    return 0;
}
