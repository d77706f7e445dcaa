/*
 * call.h - one request in flight, from the bytes read to its one reply.
 * dispatch.c makes a call of each request, a handler (svc_*.c) fills its
 * response, and call_finish answers it and frees it: exactly once, on
 * whichever thread ends the request (the I/O thread for a read, the writer
 * for a write, the long-poll part for a claim or Await that waited, the backup
 * thread for a backup). Nothing of a call is touched after call_finish.
 * Other modules see a call only through the links it embeds (its
 * commitq_op and its longpoll_claim).
 */
#ifndef HP_BROKER_CALL_H
#define HP_BROKER_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "broker/backup.h"
#include "broker/budget.h"
#include "broker/commitq.h"
#include "broker/deliver.h"
#include "broker/listener.h"
#include "broker/longpoll.h"
#include "broker/metrics.h"
#include "common/arena.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/str.h"
#include "hopper/v1/envelope.pb-c.h"
#include "store/store.h"

typedef struct call call;

/* A handler: maps the decoded request to store calls and packs the
 * response body into c->resp. Reads run on the I/O thread that read the
 * request, in a read transaction; writes on the writer thread, inside the
 * group's transaction (and must be repeatable: see commitq_apply_fn). */
typedef hp_code (*call_handler)(call *c, store_txn *t, uint64_t now_ms,
                                hp_status *st);

/* One rpc of dispatch.c's table. */
typedef struct method_entry {
    const char *name;
    call_handler fn;
    bool write;
    bool replayable; /* mutating: answered from the replay cache */
    uint8_t perm;    /* AUTH_PERM_* a token needs (any one of several);
                        0: any valid token */
    bool all_scopes; /* the token needs perm on scope "*" (Backup) */
    size_t index;    /* in the table: the method's number in metrics */
    const ProtobufCMethodDescriptor *desc;
    uint32_t tag; /* replay cache tag: method index + 1 */
} method_entry;

/* What every call of one broker reads: the parts (borrowed for the
 * broker's life) and limits. Set up by dispatch_new and never written
 * afterwards (but for the warning's own atomic counters), so any thread
 * reads it without a lock. */
typedef struct call_ctx {
    store *store;
    hp_clock *clock;
    commitq *q;
    longpoll *lp;
    backup *backup;
    deliver *deliver;
    broker_metrics *metrics;
    size_t max_frame;          /* replies stay below it */
    uint32_t max_wait_ms;      /* long-poll cap */
    uint64_t replay_window_ms; /* how long request ids are remembered */
    /* Ping's answer, filled by dispatch_new. */
    char instance[33]; /* the store's identity, hex */
    bool anonymous_exposed;
    hp_log_every anon_ping_warn;
} call_ctx;

struct call {
    commitq_op op;     /* the writer's view of this call */
    longpoll_claim lc; /* when parked as a long-poll claim or an Await */
    call_ctx *ctx;
    listener_req rq; /* where the reply goes; rq.conn_id names the client */
    const method_entry *m;
    Hopper__V1__Request *env;
    ProtobufCMessage *body;
    decode_budget budget;
    hp_str scope;
    hp_str request_id;
    uint64_t arrival_mono_ms;
    uint64_t arrival_us; /* monotonic, for the latency histograms */
    hp_arena arena;      /* temporaries of the handler */

    uint8_t *resp; /* packed response body (malloc) */
    size_t resp_len;
    uint8_t *replay; /* what the replay cache keeps, if not resp (malloc) */
    size_t replay_len;

    /* Set by a read handler that answers later from its own thread:
     * called once the read transaction is closed, and owns c from then. */
    void (*detach)(call *c);
    void *detach_arg; /* what the handler leaves for detach (c->arena) */

    /* Long-poll claims and Awaits. */
    uint64_t wait_until_mono_ms;
    bool park; /* the handler found nothing and the call may wait */
    /* A parked call keeps only what it needs (call_compact), in this one
     * block: the envelope and body it came in are freed, whatever they
     * carried. */
    void *parked;
};

static inline call *
call_of_op(commitq_op *op)
{
    return HP_CONTAINER_OF(op, call, op);
}

/* Answers c, the Response holding code and st (or, when code is HP_OK,
 * the body in c->resp, possibly none), counts it in the metrics and frees
 * c. Any thread, once per call. */
void call_finish(call *c, hp_code code, const hp_status *st);

/* The long-poll part's answer hook (longpoll_answer_fn): an empty
 * response (a Claim's empty batch, an Await's "not yet") for HP_OK, else
 * the error, for the call that embeds lc. */
void call_answer_parked(longpoll_claim *lc, hp_code code, const hp_status *st);

/* Frees c's envelope and body, keeping a copy of the Claim's or Await's
 * fields, the scope and the request id: what a parked call needs to run
 * again and be answered. RESOURCE_EXHAUSTED/NO_MEMORY; a call compacted
 * before is left as it is. */
HP_MUST_USE hp_code call_compact(call *c, hp_status *st);

#endif
