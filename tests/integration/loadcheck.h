/*
 * loadcheck.h - the load and the checker the crash test (kill -9) and the
 * power-loss test share, so both hold hopperd to one definition of "lost":
 *
 *   - producers enqueue keys p<N>-<seq> in order, the key as both dedupe
 *     key and payload; a call that fails may have committed, so the same
 *     key goes again until an answer comes, and that id is acknowledged;
 *   - consumers long-poll claims of up to 16 with a 1.5 s lease and ack
 *     each batch in one call, abandoning one delivery in ten (claimed,
 *     never acked); an ack that returned OK is acknowledged;
 *   - after each interruption, with hopperd down, load_verify_store looks
 *     into the store for everything acknowledged so far;
 *   - at the end load_finish drains the lane and load_assert_clean gives
 *     the verdict.
 *
 * Everything runs on one lane of the default scope, against a hopperd the
 * caller starts, interrupts and restarts on the same URL.
 */
#ifndef HP_TESTS_LOADCHECK_H
#define HP_TESTS_LOADCHECK_H

#include <stdint.h>
#include <stdio.h>

typedef struct load_run load_run;

typedef struct load_figures {
    uint64_t enq_acked;       /* enqueues answered */
    uint64_t enq_retried;     /* of which needed more than one call */
    uint64_t enq_dup_answers; /* answered by the dedupe key */
    uint64_t acks_acked;      /* acks answered OK */
    uint64_t acks_unknown;    /* acks that failed: may have committed */
    uint64_t deliveries, abandoned, redelivered;
    /* Violations. */
    uint64_t lost;        /* acknowledged enqueue never delivered */
    uint64_t duplicated;  /* a key delivered under two ids */
    uint64_t after_ack;   /* delivered after its ack was acknowledged */
    uint64_t early;       /* an abandoned claim back before its lease end */
    uint64_t bad_payload; /* a payload the test never sent */
    uint64_t never_back;  /* an abandoned claim that never came back */
    /* Found by load_verify_store, each write once: an acknowledged
     * enqueue without its message, an acknowledged ack whose message is
     * not delivered. */
    uint64_t store_lost_enqueues;
    uint64_t store_reverted_acks;
    uint64_t distinct; /* messages the test saw */
    /* The lane after the drain. */
    uint64_t pending, claimed, delayed, dead, delivered, expired_total;
} load_figures;

/* Starts the producers and consumers against url (kept by reference);
 * seed makes the abandon choices repeatable. */
load_run *load_start(const char *url, unsigned seed);

/* What one load_verify_store found, against what was acknowledged since
 * the call before. */
typedef struct load_missing {
    uint64_t enqueues, enqueues_acked;
    uint64_t acks, acks_acked;
} load_missing;

/* With hopperd stopped or killed: opens the store in data_dir and checks
 * every write acknowledged so far that no earlier call found missing.
 * Returns how many are missing now (they add to the figures) and, when
 * out is not NULL, fills it. */
uint64_t load_verify_store(load_run *r, const char *data_dir,
                           load_missing *out);

/* Stops the producers and consumers and waits for them (each call in
 * flight ends within its 2 s timeout). A second call does nothing. */
void load_stop(load_run *r);

/* load_stop, then drains the lane on url until nothing has been claimable
 * for longer than a lease, and fills out. */
void load_finish(load_run *r, const char *url, load_figures *out);

/* One line: prefix, then every figure. */
void load_print(FILE *f, const char *prefix, const load_figures *fig);

/* The verdict when nothing acknowledged may be lost: fails the test on any
 * violation, anything left in the lane, or a lane that holds other than
 * the messages the test saw. */
void load_assert_clean(const load_figures *fig);

void load_free(load_run *r);

/* Runs mdb_stat with flags (such as "-efa") on data_dir; returns its exit
 * status, 0 when LMDB opened the environment and read what flags ask. */
int load_mdb_stat(const char *data_dir, const char *flags);

/* Milliseconds of sleep, for spacing interruptions; never to wait for an
 * event. */
void load_sleep_ms(unsigned ms);

#endif
