/*
 * crash_test.c - kill -9 at random moments under load, restart on the same
 * data dir, and prove nothing the broker acknowledged was lost:
 *
 *   - every acknowledged enqueue exists exactly once, dedupe keys holding
 *     across crashes (a producer whose reply was lost retries with the same
 *     key until it gets an answer);
 *   - no message whose ack was acknowledged is ever delivered again;
 *   - a claim left unacked (on purpose, or by a crash) is delivered again,
 *     and never before its lease ends;
 *   - the data dir passes mdb_stat after every kill.
 *
 * Environment: HOPPER_CRASH_CYCLES (default 3), HOPPER_CRASH_SYNC (full or
 * none, default full), HOPPER_CRASH_SEED (default: the time). It prints one
 * line of figures; scripts/soak.sh runs it long.
 */
#include <hopper/hopper.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

#define PRODUCERS   3
#define CONSUMERS   3
#define MAX_SEQ     100000 /* per producer; far above what a run reaches */
#define LEASE_MS    1500
#define SLACK_MS    50 /* claim sent before the broker started the lease */
#define ABANDON_PCT 10
#define TABLE_BITS  20
#define LANE        "crash"

/* One message the test has seen, by id. */
typedef struct seen {
    char id[27];
    bool ack_ok;         /* an ack of it was acknowledged */
    bool abandoned;      /* claimed and left on purpose, not seen since */
    bool was_abandoned;  /* abandoned once: not again, so the run ends */
    uint64_t claimed_ms; /* when the abandoned claim was sent */
    uint32_t deliveries;
} seen;

typedef struct run {
    const char *url;
    _Atomic bool stop;
    pthread_mutex_t mtx; /* guards everything below */
    seen *table;         /* open addressing, 1 << TABLE_BITS slots */
    /* enq[p][seq]: the id acknowledged for producer p's seq, or "" */
    char (*enq[PRODUCERS])[27];
    /* first[p][seq]: the first id delivered with key p<p>-<seq>, or "" */
    char (*first[PRODUCERS])[27];
    uint32_t produced[PRODUCERS]; /* seqs 0..produced-1 were acknowledged */
    /* figures */
    uint64_t enq_acked, enq_retried, enq_dup_answers;
    uint64_t acks_acked, acks_unknown, deliveries;
    uint64_t redelivered, after_ack, early, bad_payload, duplicated;
    uint64_t abandoned;
    unsigned seed;
} run;

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000u),
                           (long)(ms % 1000u) * 1000000L };
    nanosleep(&ts, NULL);
}

static uint32_t
hash_id(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *id != '\0'; id++) {
        h = (h ^ (uint8_t)*id) * 16777619u;
    }
    return h;
}

/* The slot of id, claimed for it when new. Caller holds mtx. */
static seen *
lookup(run *r, const char *id)
{
    uint32_t mask = (1u << TABLE_BITS) - 1;
    for (uint32_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
        seen *s = &r->table[i];
        if (s->id[0] == '\0') {
            snprintf(s->id, sizeof(s->id), "%s", id);
            return s;
        }
        if (strcmp(s->id, id) == 0) {
            return s;
        }
    }
}

static hopper_client *
open_client(const char *url)
{
    hopper_client *c = NULL;
    hopper_status st;
    hopper_options o;
    hopper_options_init(&o);
    o.timeout_ms = 2000; /* a dead broker costs a call this long */
    assert_int_equal(hopper_connect(url, &o, &c, &st), HOPPER_OK);
    return c;
}

/* Enqueues seq 0, 1, 2, ... each with dedupe key p<P>-<seq> and the key as
 * payload. A failed call may or may not have committed, so the same key is
 * sent again until an answer comes: the answer's id is then the one copy. */
static void *
producer(void *arg)
{
    run *r = ((void **)arg)[0];
    int p = (int)(intptr_t)((void **)arg)[1];
    hopper_client *c = open_client(r->url);
    char key[32];

    for (uint32_t seq = 0; seq < MAX_SEQ && !atomic_load(&r->stop); seq++) {
        snprintf(key, sizeof(key), "p%d-%u", p, seq);
        hopper_draft d = { .lane = LANE,
                           .payload = key,
                           .payload_len = strlen(key),
                           .dedupe_key = key,
                           .max_attempts = 1000 };
        hopper_enqueued out;
        hopper_status st;
        bool retried = false;
        while (hopper_enqueue(c, &d, 1, &out, &st) != HOPPER_OK) {
            if (atomic_load(&r->stop)) {
                goto done; /* this seq stays unknown, never counted */
            }
            retried = true;
            sleep_ms(20);
        }
        pthread_mutex_lock(&r->mtx);
        snprintf(r->enq[p][seq], 27, "%s", out.id);
        r->produced[p] = seq + 1;
        r->enq_acked++;
        r->enq_retried += retried;
        r->enq_dup_answers += out.duplicate;
        pthread_mutex_unlock(&r->mtx);
    }
done:
    hopper_close(c);
    return NULL;
}

/* Checks one delivery; returns whether to abandon it. Caller holds mtx. */
static bool
deliver(run *r, const hopper_message *m, uint64_t sent_ms, bool may_abandon)
{
    seen *s = lookup(r, m->id);
    int p;
    unsigned seq;
    char key[32];

    r->deliveries++;
    s->deliveries++;
    if (s->ack_ok) {
        r->after_ack++;
        fprintf(stderr, "VIOLATION: %s delivered after its ack\n", m->id);
    }
    if (s->abandoned) {
        s->abandoned = false;
        r->redelivered++;
        if (now_ms() + SLACK_MS < s->claimed_ms + LEASE_MS) {
            r->early++;
            fprintf(stderr, "VIOLATION: %s back %llu ms into its lease\n",
                    m->id, (unsigned long long)(now_ms() - s->claimed_ms));
        }
    } else if (s->deliveries > 1) {
        r->redelivered++; /* a claim or an ack lost to a kill */
    }
    /* The payload names the producer's key; the id must be the one the
     * producer was given for it, or the key was enqueued twice. */
    if (m->payload_len >= sizeof(key) ||
        (memcpy(key, m->payload, m->payload_len), key[m->payload_len] = '\0',
         sscanf(key, "p%d-%u", &p, &seq) != 2) ||
        p < 0 || p >= PRODUCERS || seq >= MAX_SEQ) {
        r->bad_payload++;
        fprintf(stderr, "VIOLATION: %s has a payload the test never sent\n",
                m->id);
        return false;
    }
    if (r->first[p][seq][0] == '\0') {
        snprintf(r->first[p][seq], 27, "%s", m->id);
    } else if (strcmp(r->first[p][seq], m->id) != 0) {
        r->duplicated++;
        fprintf(stderr, "VIOLATION: key %s delivered as %s and as %s\n", key,
                r->first[p][seq], m->id);
    }
    if (r->enq[p][seq][0] != '\0' && strcmp(r->enq[p][seq], m->id) != 0) {
        r->duplicated++;
        fprintf(stderr, "VIOLATION: key %s enqueued as %s and as %s\n", key,
                r->enq[p][seq], m->id);
    }
    if (may_abandon && !s->was_abandoned &&
        (unsigned)rand_r(&r->seed) % 100 < ABANDON_PCT) {
        s->abandoned = s->was_abandoned = true;
        s->claimed_ms = sent_ms;
        r->abandoned++;
        return true;
    }
    return false;
}

/* One claim of up to 16 and one ack of what is not abandoned. Returns the
 * number claimed, or -1 when the claim failed. */
static int
consume_once(run *r, hopper_client *c, uint32_t wait_ms, bool may_abandon)
{
    hopper_claim_opts o = { .max = 16,
                            .lease_ms = LEASE_MS,
                            .wait_ms = wait_ms };
    hopper_batch *b = NULL;
    hopper_status st;
    hopper_ack_item items[16];
    size_t n = 0;
    uint64_t sent = now_ms();

    if (hopper_claim(c, LANE, &o, &b, &st) != HOPPER_OK) {
        return -1;
    }
    pthread_mutex_lock(&r->mtx);
    for (size_t i = 0; i < b->n; i++) {
        if (!deliver(r, &b->msgs[i], sent, may_abandon)) {
            items[n++] = (hopper_ack_item){ .id = b->msgs[i].id,
                                            .token = b->msgs[i].token };
        }
    }
    pthread_mutex_unlock(&r->mtx);
    int rc = n > 0 ? hopper_ack(c, items, n, NULL, 0, NULL, &st) : HOPPER_OK;
    pthread_mutex_lock(&r->mtx);
    for (size_t i = 0; i < n; i++) {
        if (rc == HOPPER_OK) {
            lookup(r, items[i].id)->ack_ok = true;
            r->acks_acked++;
        } else {
            r->acks_unknown++; /* may have committed; may come back */
        }
    }
    pthread_mutex_unlock(&r->mtx);
    int got = (int)b->n;
    hopper_batch_free(b);
    return got;
}

static void *
consumer(void *arg)
{
    run *r = arg;
    hopper_client *c = open_client(r->url);
    while (!atomic_load(&r->stop)) {
        if (consume_once(r, c, 200, true) < 0) {
            sleep_ms(20);
        }
    }
    hopper_close(c);
    return NULL;
}

static void
check_store(const broker_proc *bp, int cycle)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "mdb_stat -e '%s' >/dev/null 2>&1", bp->data);
    if (system(cmd) != 0) {
        fail_msg("cycle %d: mdb_stat fails on the data dir after a kill",
                 cycle);
    }
}

static const char *
env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

static void
test_kill9_cycles(void **state)
{
    (void)state;
    int cycles = atoi(env_or("HOPPER_CRASH_CYCLES", "3"));
    const char *sync = env_or("HOPPER_CRASH_SYNC", "full");
    unsigned seed =
        (unsigned)strtoul(env_or("HOPPER_CRASH_SEED", "0"), NULL, 10);
    const char *extra[] = { "--sync", sync, NULL };
    broker_proc bp;
    run *r = calloc(1, sizeof(*r));
    pthread_t prod[PRODUCERS], cons[CONSUMERS];
    void *pargs[PRODUCERS][2];

    assert_non_null(r);
    if (seed == 0) {
        seed = (unsigned)time(NULL);
    }
    r->seed = seed;
    unsigned kill_seed = seed * 2654435761u;
    r->table = calloc((size_t)1 << TABLE_BITS, sizeof(seen));
    assert_non_null(r->table);
    for (int p = 0; p < PRODUCERS; p++) {
        r->enq[p] = calloc(MAX_SEQ, 27);
        r->first[p] = calloc(MAX_SEQ, 27);
        assert_non_null(r->enq[p]);
        assert_non_null(r->first[p]);
    }
    pthread_mutex_init(&r->mtx, NULL);
    assert_int_equal(broker_proc_start(&bp, extra), 0);
    r->url = bp.url;

    for (int p = 0; p < PRODUCERS; p++) {
        pargs[p][0] = r;
        pargs[p][1] = (void *)(intptr_t)p;
        pthread_create(&prod[p], NULL, producer, pargs[p]);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_create(&cons[i], NULL, consumer, r);
    }
    for (int cycle = 1; cycle <= cycles; cycle++) {
        /* 0.3-1.5 s of load, so kills land in every phase of a commit. */
        sleep_ms(300u + (unsigned)rand_r(&kill_seed) % 1200u);
        broker_proc_kill(&bp);
        check_store(&bp, cycle);
        /* NNG resends a request whose connection dropped once the broker
         * is back, under the same request id, so a short outage is
         * invisible to callers. Every other cycle stays down longer than
         * the clients' timeout: calls fail, and producers retry by key. */
        if (cycle % 2 == 0) {
            sleep_ms(2500);
        }
        if (broker_proc_restart(&bp, extra) != 0) {
            fail_msg("cycle %d: hopperd did not restart on %s", cycle, bp.data);
        }
    }
    sleep_ms(500);
    atomic_store(&r->stop, true);
    for (int p = 0; p < PRODUCERS; p++) {
        pthread_join(prod[p], NULL);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_join(cons[i], NULL);
    }

    /* Drain: claim and ack until nothing is left and every lease a kill or
     * an abandon left behind has run out. */
    hopper_client *c = open_client(bp.url);
    uint64_t quiet_until = now_ms() + LEASE_MS + 1000;
    while (now_ms() < quiet_until) {
        int got = consume_once(r, c, 300, false);
        if (got != 0) {
            quiet_until = now_ms() + LEASE_MS + 1000;
        }
    }
    hopper_lane_stats *ls = NULL;
    hopper_status st;
    assert_int_equal(hopper_stats(c, LANE, &ls, &st), HOPPER_OK);

    /* Every acknowledged enqueue was delivered. (An ack whose answer a
     * kill took may have committed, so "acked" is checked by the lane
     * holding nothing pending or claimed, below.) */
    uint64_t lost = 0, still_abandoned = 0, distinct = 0;
    for (int p = 0; p < PRODUCERS; p++) {
        for (uint32_t seq = 0; seq < r->produced[p]; seq++) {
            seen *s = lookup(r, r->enq[p][seq]);
            if (s->deliveries == 0) {
                lost++;
                fprintf(stderr, "LOST: p%d-%u (%s)\n", p, seq, s->id);
            }
        }
    }
    for (size_t i = 0; i < (size_t)1 << TABLE_BITS; i++) {
        still_abandoned += r->table[i].abandoned;
        distinct += r->table[i].deliveries > 0;
    }
    printf("crash_test: sync=%s seed=%u cycles=%d enqueues_acked=%llu "
           "(retried %llu, dedupe answers %llu) acks_acked=%llu "
           "acks_unknown=%llu deliveries=%llu abandoned=%llu "
           "redelivered=%llu lost=%llu duplicated=%llu "
           "delivered_after_ack=%llu early=%llu never_back=%llu "
           "lane: pending=%llu claimed=%llu dead=%llu delivered=%llu "
           "expired_total=%llu\n",
           sync, seed, cycles, (unsigned long long)r->enq_acked,
           (unsigned long long)r->enq_retried,
           (unsigned long long)r->enq_dup_answers,
           (unsigned long long)r->acks_acked,
           (unsigned long long)r->acks_unknown,
           (unsigned long long)r->deliveries, (unsigned long long)r->abandoned,
           (unsigned long long)r->redelivered, (unsigned long long)lost,
           (unsigned long long)r->duplicated, (unsigned long long)r->after_ack,
           (unsigned long long)r->early, (unsigned long long)still_abandoned,
           (unsigned long long)ls->pending, (unsigned long long)ls->claimed,
           (unsigned long long)ls->dead, (unsigned long long)ls->delivered,
           (unsigned long long)ls->expired_total);
    fflush(stdout);

    assert_true(r->enq_acked > 0);
    assert_true(r->acks_acked > 0);
    assert_int_equal(lost, 0);
    assert_int_equal(r->duplicated, 0);
    assert_int_equal(r->after_ack, 0);
    assert_int_equal(r->early, 0);
    assert_int_equal(r->bad_payload, 0);
    assert_int_equal(still_abandoned, 0);
    assert_true(r->abandoned == 0 || r->redelivered >= r->abandoned);
    assert_int_equal(ls->pending + ls->claimed + ls->delayed + ls->dead, 0);
    /* The lane holds exactly the messages the test saw, all delivered:
     * no copy it never saw, none left behind. */
    assert_int_equal(ls->delivered, distinct);

    hopper_lane_stats_free(ls);
    hopper_close(c);
    assert_int_equal(broker_proc_stop(&bp), 0);
    check_store(&bp, cycles + 1);
    broker_proc_cleanup(&bp);
    for (int p = 0; p < PRODUCERS; p++) {
        free(r->enq[p]);
        free(r->first[p]);
    }
    free(r->table);
    pthread_mutex_destroy(&r->mtx);
    free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
