/*
 * deliver.h - the delivery part: hopperd as a consumer of its own lanes.
 * Every lane whose settings carry a deliver_url is claimed by this part and
 * each message POSTed to the URL, signed with the lane's secret; the answer
 * acks it (2xx, the body's first 64 KiB the result), dead-letters it (410)
 * or nacks it with the lane's backoff (anything else, a timeout, a failed
 * connection; Retry-After honoured up to the lane's backoff cap). The
 * receiver's contract is docs/webhooks.md; the wire format of one request
 * (signature, headers, outcome by status) is webhook.h, which has no
 * threads and is tested alone.
 *
 * Threads: the part owns one thread, which owns one libcurl multi handle
 * and every easy handle in it; nothing else touches curl. Claims, acks and
 * nacks are ops on the commit queue built from the same store calls a
 * worker's Claim, Ack and Nack reach (store_claim, store_ack, store_nack),
 * so a delivery lane keeps every promise a worker's lane does: leases,
 * attempts, dead letters, replay, durability before the outcome counts.
 * Their done callbacks run on the writer thread and only hand the outcome
 * back to the part's thread (a mutex-guarded list and a wake-up); they
 * never block on the network.
 *
 * Flow control: at most deliver_concurrency requests of a lane are in
 * flight (a claim asks for no more than the free slots), at most
 * max_inflight in all; a lane that found nothing is claimed from again
 * when deliver_kick says lanes may have gained messages, or when its next
 * retry falls due. A slow or failing receiver therefore holds back only
 * its own lane.
 *
 * Leases: a delivery is claimed for deliver_timeout_ms + DELIVER_LEASE_SLACK_MS
 * so its request is always cut (at the timeout) before its lease ends; a
 * crash mid-request leaves the message claimed until the lease runs out,
 * then it is delivered again (at least once, never lost).
 *
 * SSRF: each connection's address is checked after resolution, in curl's
 * open-socket callback, with webhook_addr_allowed (loopback, private,
 * link-local and the like refused unless allow_private).
 */
#ifndef HP_BROKER_DELIVER_H
#define HP_BROKER_DELIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/commitq.h"
#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

/* Added to deliver_timeout_ms for a delivery's lease: time for the
 * outcome to reach the writer after the request was cut. */
#define DELIVER_LEASE_SLACK_MS 30000u

typedef struct deliver deliver;

typedef struct deliver_opts {
    store *store;   /* lane delivery settings and secrets are read here */
    hp_clock *clock;
    bool allow_private; /* --webhook-allow-private */
    uint32_t max_inflight;  /* requests in flight over all lanes */
    const char *user_agent; /* "hopperd/<version>"; copied */
} deliver_opts;

/* Makes the part, without its thread. RESOURCE_EXHAUSTED/NO_MEMORY,
 * INTERNAL if libcurl will not start. */
HP_MUST_USE hp_code deliver_new(const deliver_opts *o, deliver **out,
                                hp_status *st);

/* Starts the part's thread, which submits its claims, acks and nacks to
 * q, and reads the delivery lanes once: messages left pending by a
 * previous run are delivered at once. */
HP_MUST_USE hp_code deliver_start(deliver *d, commitq *q, hp_status *st);

/* Lanes may have gained messages, or a lane's delivery settings or a
 * secret changed: the part looks again. Cheap and non-blocking; kicks
 * coalesce. Any thread (the writer calls it after each group). */
void deliver_kick(deliver *d);

/* Stops claiming, cuts every request in flight (their messages stay
 * claimed until their leases end, so they are delivered again after a
 * restart), waits for the acks and nacks already submitted, and joins the
 * thread. Before commitq_stop. */
void deliver_stop(deliver *d);

/* NULL is a no-op. After deliver_stop. */
void deliver_free(deliver *d);

#endif
