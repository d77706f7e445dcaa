/*
 * loadcheck.c - the shared load and checker (loadcheck.h). What is
 * acknowledged is recorded under one mutex when the answer arrives; the
 * checks compare it with what the consumers see and with the store.
 */
#include "loadcheck.h"

#include <hopper/hopper.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/arena.h"
#include "common/id.h"
#include "store/store.h"

#define PRODUCERS   3
#define CONSUMERS   3
#define MAX_SEQ     100000 /* per producer; far above what a run reaches */
#define LEASE_MS    1500
#define SLACK_MS    50 /* claim sent before the broker started the lease */
#define ABANDON_PCT 10
#define TABLE_BITS  20
#define LANE        "crash"
#define REPORT_MAX  5 /* lost writes named per check; then a count */

/* One message the test has seen, by id. */
typedef struct seen {
    char id[27];
    bool ack_ok;         /* an ack of it was acknowledged */
    bool abandoned;      /* claimed and left on purpose, not seen since */
    bool was_abandoned;  /* abandoned once: not again, so the run ends */
    bool missing;        /* load_verify_store found it lost or reverted */
    uint64_t claimed_ms; /* when the abandoned claim was sent */
    uint32_t deliveries;
} seen;

struct load_run {
    const char *url;
    _Atomic bool stop;
    pthread_t prod[PRODUCERS], cons[CONSUMERS];
    void *pargs[PRODUCERS][2];
    pthread_mutex_t mtx; /* guards everything below */
    seen *table;         /* open addressing, 1 << TABLE_BITS slots */
    /* enq[p][seq]: the id acknowledged for producer p's seq, or "" */
    char (*enq[PRODUCERS])[27];
    /* first[p][seq]: the first id delivered with key p<p>-<seq>, or "" */
    char (*first[PRODUCERS])[27];
    uint32_t produced[PRODUCERS]; /* seqs 0..produced-1 were acknowledged */
    load_figures fig;
    load_missing verified; /* the totals at the last load_verify_store */
    unsigned seed;
};

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
load_sleep_ms(unsigned ms)
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
lookup(load_run *r, const char *id)
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
    load_run *r = ((void **)arg)[0];
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
            load_sleep_ms(20);
        }
        pthread_mutex_lock(&r->mtx);
        snprintf(r->enq[p][seq], 27, "%s", out.id);
        r->produced[p] = seq + 1;
        r->fig.enq_acked++;
        r->fig.enq_retried += retried;
        r->fig.enq_dup_answers += out.duplicate;
        pthread_mutex_unlock(&r->mtx);
    }
done:
    hopper_close(c);
    return NULL;
}

/* Checks one delivery; returns whether to abandon it. Caller holds mtx. */
static bool
deliver(load_run *r, const hopper_message *m, uint64_t sent_ms,
        bool may_abandon)
{
    seen *s = lookup(r, m->id);
    int p;
    unsigned seq;
    char key[32];

    r->fig.deliveries++;
    s->deliveries++;
    if (s->ack_ok) {
        r->fig.after_ack++;
        fprintf(stderr, "VIOLATION: %s delivered after its ack\n", m->id);
    }
    if (s->abandoned) {
        s->abandoned = false;
        r->fig.redelivered++;
        if (now_ms() + SLACK_MS < s->claimed_ms + LEASE_MS) {
            r->fig.early++;
            fprintf(stderr, "VIOLATION: %s back %llu ms into its lease\n",
                    m->id, (unsigned long long)(now_ms() - s->claimed_ms));
        }
    } else if (s->deliveries > 1) {
        r->fig.redelivered++; /* a claim or an ack lost to a kill */
    }
    /* The payload names the producer's key; the id must be the one the
     * producer was given for it, or the key was enqueued twice. */
    if (m->payload_len >= sizeof(key) ||
        (memcpy(key, m->payload, m->payload_len), key[m->payload_len] = '\0',
         sscanf(key, "p%d-%u", &p, &seq) != 2) ||
        p < 0 || p >= PRODUCERS || seq >= MAX_SEQ) {
        r->fig.bad_payload++;
        fprintf(stderr, "VIOLATION: %s has a payload the test never sent\n",
                m->id);
        return false;
    }
    if (r->first[p][seq][0] == '\0') {
        snprintf(r->first[p][seq], 27, "%s", m->id);
    } else if (strcmp(r->first[p][seq], m->id) != 0) {
        r->fig.duplicated++;
        fprintf(stderr, "VIOLATION: key %s delivered as %s and as %s\n", key,
                r->first[p][seq], m->id);
    }
    if (r->enq[p][seq][0] != '\0' && strcmp(r->enq[p][seq], m->id) != 0) {
        r->fig.duplicated++;
        fprintf(stderr, "VIOLATION: key %s enqueued as %s and as %s\n", key,
                r->enq[p][seq], m->id);
    }
    if (may_abandon && !s->was_abandoned &&
        (unsigned)rand_r(&r->seed) % 100 < ABANDON_PCT) {
        s->abandoned = s->was_abandoned = true;
        s->claimed_ms = sent_ms;
        r->fig.abandoned++;
        return true;
    }
    return false;
}

/* One claim of up to 16 and one ack of what is not abandoned. Returns the
 * number claimed, or -1 when the claim failed. */
static int
consume_once(load_run *r, hopper_client *c, uint32_t wait_ms, bool may_abandon)
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
            r->fig.acks_acked++;
        } else {
            r->fig.acks_unknown++; /* may have committed; may come back */
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
    load_run *r = arg;
    hopper_client *c = open_client(r->url);
    while (!atomic_load(&r->stop)) {
        if (consume_once(r, c, 200, true) < 0) {
            load_sleep_ms(20);
        }
    }
    hopper_close(c);
    return NULL;
}

load_run *
load_start(const char *url, unsigned seed)
{
    load_run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->url = url;
    r->seed = seed;
    r->table = calloc((size_t)1 << TABLE_BITS, sizeof(seen));
    assert_non_null(r->table);
    for (int p = 0; p < PRODUCERS; p++) {
        r->enq[p] = calloc(MAX_SEQ, 27);
        r->first[p] = calloc(MAX_SEQ, 27);
        assert_non_null(r->enq[p]);
        assert_non_null(r->first[p]);
    }
    pthread_mutex_init(&r->mtx, NULL);
    for (int p = 0; p < PRODUCERS; p++) {
        r->pargs[p][0] = r;
        r->pargs[p][1] = (void *)(intptr_t)p;
        pthread_create(&r->prod[p], NULL, producer, r->pargs[p]);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_create(&r->cons[i], NULL, consumer, r);
    }
    return r;
}

/* ---- the store after an interruption ------------------------------------
 */

/* Whether the message of id exists, and its state. */
static bool
stored(store_txn *t, const char *id_text, store_state *state)
{
    hp_id id;
    hp_status st;
    hp_arena arena;
    store_message m;

    assert_int_equal(hp_id_parse(id_text, strlen(id_text), &id, &st), HP_OK);
    hp_arena_init(&arena);
    hp_code code = store_get(t, HP_S("default"), id, now_ms(), &arena, &m, &st);
    hp_arena_release(&arena);
    if (code == HP_NOT_FOUND) {
        return false;
    }
    if (code != HP_OK) {
        fail_msg("store_get %s: %s", id_text, st.msg);
    }
    *state = m.state;
    return true;
}

uint64_t
load_verify_store(load_run *r, const char *data_dir, load_missing *out)
{
    store_opts o;
    store *s = NULL;
    store_txn *t = NULL;
    hp_status st;
    uint64_t missing = 0;
    store_state state;

    store_opts_init(&o);
    o.dir = data_dir;
    o.sync = STORE_SYNC_NONE; /* it only reads */
    if (store_open(&o, &s, &st) != HP_OK ||
        store_txn_begin(s, false, &t, &st) != HP_OK) {
        fail_msg("cannot open the store in %s: %s", data_dir, st.msg);
    }
    pthread_mutex_lock(&r->mtx);
    for (int p = 0; p < PRODUCERS; p++) {
        for (uint32_t seq = 0; seq < r->produced[p]; seq++) {
            seen *sn = lookup(r, r->enq[p][seq]);
            if (!sn->missing && !stored(t, sn->id, &state)) {
                sn->missing = true;
                r->fig.store_lost_enqueues++;
                if (++missing <= REPORT_MAX) {
                    fprintf(stderr,
                            "LOST: enqueue p%d-%u (%s) acknowledged, not in "
                            "the store\n",
                            p, seq, sn->id);
                }
            }
        }
    }
    for (size_t i = 0; i < (size_t)1 << TABLE_BITS; i++) {
        seen *sn = &r->table[i];
        if (sn->ack_ok && !sn->missing &&
            (!stored(t, sn->id, &state) || state != STORE_STATE_DELIVERED)) {
            sn->missing = true;
            r->fig.store_reverted_acks++;
            if (++missing <= REPORT_MAX) {
                fprintf(stderr,
                        "LOST: ack of %s acknowledged, the message is not "
                        "delivered in the store\n",
                        sn->id);
            }
        }
    }
    if (out != NULL) {
        out->enqueues = r->fig.store_lost_enqueues - r->verified.enqueues;
        out->acks = r->fig.store_reverted_acks - r->verified.acks;
        out->enqueues_acked = r->fig.enq_acked - r->verified.enqueues_acked;
        out->acks_acked = r->fig.acks_acked - r->verified.acks_acked;
    }
    r->verified.enqueues = r->fig.store_lost_enqueues;
    r->verified.acks = r->fig.store_reverted_acks;
    r->verified.enqueues_acked = r->fig.enq_acked;
    r->verified.acks_acked = r->fig.acks_acked;
    pthread_mutex_unlock(&r->mtx);
    if (missing > REPORT_MAX) {
        fprintf(stderr, "LOST: %llu acknowledged writes in all\n",
                (unsigned long long)missing);
    }
    store_txn_abort(t);
    store_close(s);
    return missing;
}

/* ---- the end --------------------------------------------------------------
 */

void
load_stop(load_run *r)
{
    if (atomic_exchange(&r->stop, true)) {
        return;
    }
    for (int p = 0; p < PRODUCERS; p++) {
        pthread_join(r->prod[p], NULL);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_join(r->cons[i], NULL);
    }
}

void
load_finish(load_run *r, const char *url, load_figures *out)
{
    load_stop(r);

    /* Drain: claim and ack until nothing is left and every lease a kill or
     * an abandon left behind has run out. */
    hopper_client *c = open_client(url);
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
     * holding nothing pending or claimed.) */
    for (int p = 0; p < PRODUCERS; p++) {
        for (uint32_t seq = 0; seq < r->produced[p]; seq++) {
            seen *s = lookup(r, r->enq[p][seq]);
            if (s->deliveries == 0 && ++r->fig.lost <= REPORT_MAX) {
                fprintf(stderr, "LOST: p%d-%u (%s)\n", p, seq, s->id);
            }
        }
    }
    for (size_t i = 0; i < (size_t)1 << TABLE_BITS; i++) {
        r->fig.never_back += r->table[i].abandoned;
        r->fig.distinct += r->table[i].deliveries > 0;
    }
    r->fig.pending = ls->pending;
    r->fig.claimed = ls->claimed;
    r->fig.delayed = ls->delayed;
    r->fig.dead = ls->dead;
    r->fig.delivered = ls->delivered;
    r->fig.expired_total = ls->expired_total;
    *out = r->fig;
    hopper_lane_stats_free(ls);
    hopper_close(c);
}

void
load_print(FILE *f, const char *prefix, const load_figures *g)
{
    fprintf(f,
            "%s enqueues_acked=%llu (retried %llu, dedupe answers %llu) "
            "acks_acked=%llu acks_unknown=%llu deliveries=%llu "
            "abandoned=%llu redelivered=%llu lost=%llu duplicated=%llu "
            "delivered_after_ack=%llu early=%llu never_back=%llu "
            "store_lost_enqueues=%llu store_reverted_acks=%llu "
            "lane: pending=%llu claimed=%llu dead=%llu delivered=%llu "
            "expired_total=%llu\n",
            prefix, (unsigned long long)g->enq_acked,
            (unsigned long long)g->enq_retried,
            (unsigned long long)g->enq_dup_answers,
            (unsigned long long)g->acks_acked,
            (unsigned long long)g->acks_unknown,
            (unsigned long long)g->deliveries, (unsigned long long)g->abandoned,
            (unsigned long long)g->redelivered, (unsigned long long)g->lost,
            (unsigned long long)g->duplicated, (unsigned long long)g->after_ack,
            (unsigned long long)g->early, (unsigned long long)g->never_back,
            (unsigned long long)g->store_lost_enqueues,
            (unsigned long long)g->store_reverted_acks,
            (unsigned long long)g->pending, (unsigned long long)g->claimed,
            (unsigned long long)g->dead, (unsigned long long)g->delivered,
            (unsigned long long)g->expired_total);
    fflush(f);
}

void
load_assert_clean(const load_figures *g)
{
    assert_true(g->enq_acked > 0);
    assert_true(g->acks_acked > 0);
    assert_int_equal(g->store_lost_enqueues, 0);
    assert_int_equal(g->store_reverted_acks, 0);
    assert_int_equal(g->lost, 0);
    assert_int_equal(g->duplicated, 0);
    assert_int_equal(g->after_ack, 0);
    assert_int_equal(g->early, 0);
    assert_int_equal(g->bad_payload, 0);
    assert_int_equal(g->never_back, 0);
    assert_true(g->abandoned == 0 || g->redelivered >= g->abandoned);
    assert_int_equal(g->pending + g->claimed + g->delayed + g->dead, 0);
    /* The lane holds exactly the messages the test saw, all delivered:
     * no copy it never saw, none left behind. */
    assert_int_equal(g->delivered, g->distinct);
}

void
load_free(load_run *r)
{
    if (r == NULL) {
        return;
    }
    for (int p = 0; p < PRODUCERS; p++) {
        free(r->enq[p]);
        free(r->first[p]);
    }
    free(r->table);
    pthread_mutex_destroy(&r->mtx);
    free(r);
}

int
load_mdb_stat(const char *data_dir, const char *flags)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mdb_stat %s '%s' >/dev/null 2>&1", flags,
             data_dir);
    return system(cmd);
}
