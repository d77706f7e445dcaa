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
 * max_inflight in all; a lane whose claim came back short is claimed from
 * again when deliver_note_ready names it (the store's on_ready hook: an
 * enqueue, a retry falling due, a resume) or after 10 s. A slow or
 * failing receiver therefore holds back only its own lane.
 *
 * Leases: a delivery is claimed for deliver_timeout_ms + DELIVER_LEASE_SLACK_MS
 * so its request is always cut (at the timeout) before its lease ends; a
 * crash mid-request leaves the message claimed until the lease runs out,
 * then it is delivered again (at least once, never lost).
 *
 * State events: a scope's lane STORE_EVENTS_LANE is delivered too, one
 * request at a time, each event to the state_webhook_url it carries and
 * signed with the scope's secret DELIVER_EVENTS_SECRET; retries, dead
 * letters and the SSRF rule are a delivery lane's.
 *
 * SSRF: each connection's address is checked after resolution, in curl's
 * open-socket callback, with webhook_addr_allowed (loopback, private,
 * link-local and the like refused unless allow_private).
 *
 * Callbacks: with a callback part (an API listener), each delivery of a
 * delivery lane (not an event) carries Hopper-Callback, a URL naming its
 * claim (callback_url), valid until the request's lease, the lane's
 * callback_timeout_ms and CALLBACK_EXPIRY_MARGIN_MS have passed, at most
 * CALLBACK_EXPIRY_MAX_MS. A 202 to such a delivery extends the claim's
 * lease to callback_timeout_ms instead of acking it: the callback (or the
 * lease running out) decides.
 */
#ifndef HP_BROKER_DELIVER_H
#define HP_BROKER_DELIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/callback.h"
#include "broker/commitq.h"
#include "common/clock.h"
#include "common/hist.h"
#include "common/status.h"
#include "store/store.h"

/* Added to deliver_timeout_ms for a delivery's lease: time for the
 * outcome to reach the writer after the request was cut. */
#define DELIVER_LEASE_SLACK_MS 30000u

/* The secret of a scope that signs its state events (the scope's lane
 * STORE_EVENTS_LANE, each event POSTed to its own state_webhook_url).
 * Until it is set, events are not sent: they wait, using no attempt,
 * like a delivery lane's messages whose secret_id names no secret. */
#define DELIVER_EVENTS_SECRET "hopper.events"

typedef struct deliver deliver;

typedef struct deliver_opts {
    store *store; /* set by deliver_start */
    hp_clock *clock;
    bool allow_private;     /* --webhook-allow-private */
    uint32_t max_inflight;  /* requests in flight over all lanes */
    const char *user_agent; /* "hopperd/<version>"; copied */
    callback *cb;           /* NULL: no Hopper-Callback, 202 acks */
} deliver_opts;

/* Makes the part, without its thread. RESOURCE_EXHAUSTED/NO_MEMORY,
 * INTERNAL if libcurl will not start. */
HP_MUST_USE hp_code deliver_new(const deliver_opts *o, deliver **out,
                                hp_status *st);

/* Starts the part's thread, which reads delivery settings and secrets
 * from s and submits its claims, acks and nacks to q. It reads the
 * delivery lanes at once: messages left pending by a previous run are
 * delivered without waiting for a new one. */
HP_MUST_USE hp_code deliver_start(deliver *d, store *s, commitq *q,
                                  hp_status *st);

/* The store's on_ready hook, writer thread, after a commit: lane of scope
 * gained claimable messages (an enqueue, a retry falling due, a resume).
 * An idle delivery lane claims again; a lane the part does not know makes
 * it read the settings again (a lane just set to deliver). Cheap and
 * non-blocking. d may be NULL. */
void deliver_note_ready(deliver *d, hp_str scope, hp_str lane);

/* Counters of one lane's deliveries since hopperd started, for /metrics:
 * requests finished by outcome (0 ack, 1 dead, 2 retry: webhook.h's
 * webhook_outcome, 3 accepted: a 202 awaiting its callback) and status
 * class (0 no answer, 1-5 for 1xx-5xx), and the time from sending to the
 * answer (or the cut), in microseconds. */
#define DELIVER_OUTCOMES 4
#define DELIVER_CLASSES  6

typedef struct deliver_lane_stats {
    hp_str scope, lane;
    uint64_t n[DELIVER_OUTCOMES][DELIVER_CLASSES];
    const hp_hist *latency_us;
} deliver_lane_stats;

/* Calls fn for every lane that finished a delivery since start, in the
 * order they first did, under the part's lock: fn must not block. s is
 * valid during the call only. Any thread. d may be NULL. */
typedef void (*deliver_stats_fn)(void *arg, const deliver_lane_stats *s);
void deliver_stats_each(deliver *d, deliver_stats_fn fn, void *arg);

/* What one test POST (deliver_test) got. */
typedef struct deliver_test_result {
    long status;              /* HTTP status; 0: no answer */
    int outcome;              /* webhook_outcome a delivery would take */
    const char *outcome_name; /* webhook_outcome_name */
    const uint8_t *body;      /* the answer's first max_result bytes */
    size_t body_len;
    const char *error; /* NULL, or why there was no answer */
    uint64_t duration_ms;
} deliver_test_result;

/* Called once on the part's thread with the answer; r and what it points
 * to are valid during the call only. */
typedef void (*deliver_test_fn)(void *arg, const deliver_test_result *r);

/* hopper webhook test: POSTs one signed test body, {"hopper_test":true,
 * "lane":...,"sent_at_ms":...} with Hopper-Test: true and Hopper-Id:
 * test, to url as lane's deliveries would be sent (same signature, SSRF
 * rule and timeout), and calls fn with the answer; no message changes.
 * sec is used before this returns. false, fn not called: out of memory,
 * or the part is stopping. Any thread. */
bool deliver_test(deliver *d, hp_str lane, const char *url, uint32_t timeout_ms,
                  const store_secret *sec, deliver_test_fn fn, void *arg);

/* Stops claiming, cuts every request in flight (their messages stay
 * claimed until their leases end, so they are delivered again after a
 * restart), waits for the acks and nacks already submitted, and joins the
 * thread. Before commitq_stop. */
void deliver_stop(deliver *d);

/* NULL is a no-op. After deliver_stop. */
void deliver_free(deliver *d);

#endif
