/*
 * broker_int.h - what the broker's own files share: the broker object and
 * one request in flight (a call). Other modules never include this file.
 */
#ifndef HP_BROKER_BROKER_INT_H
#define HP_BROKER_BROKER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <protobuf-c/protobuf-c.h>

#include "broker/api.h"
#include "broker/auth.h"
#include "broker/awaits.h"
#include "broker/broker.h"
#include "broker/commitq.h"
#include "broker/http.h"
#include "broker/listener.h"
#include "broker/metrics.h"
#include "broker/waiters.h"
#include "common/arena.h"
#include "common/log.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"

#define BROKER_MAX_WAKES 256
/* An anonymous Ping on a public listener is logged at most this often
 * (docs/operations.md, "Logs"). */
#define BROKER_ANON_WARN_EVERY_MS (60 * 60 * 1000)

typedef struct broker broker;
typedef struct call call;

/* A handler: maps the decoded request to store calls and packs the
 * response body into c->resp. Reads run on the I/O thread that read the
 * request, in a read transaction; writes on the writer thread, inside the
 * group's transaction. */
typedef hp_code (*svc_fn)(call *c, store_txn *t, uint64_t now_ms,
                          hp_status *st);

typedef struct method_entry {
    const char *name;
    svc_fn fn;
    bool write;
    bool replayable; /* mutating: answered from the replay cache */
    uint8_t perm;    /* AUTH_PERM_* a token needs; 0: any valid token */
    const ProtobufCMethodDescriptor *desc;
    uint32_t tag;    /* replay cache tag: method index + 1 */
    bool all_scopes; /* the token needs perm on scope "*" (Backup) */
    bool perm_any;   /* any one of perm's permissions is enough */
} method_entry;

/* protobuf-c decodes hostile input into up to ~70 times its size; every
 * allocation of one request's decoding is counted against this budget. */
typedef struct decode_budget {
    ProtobufCAllocator alloc; /* allocator_data points back here */
    size_t used;
    size_t limit;
    bool exceeded;
} decode_budget;

struct call {
    commitq_op op; /* the writer's view of this call */
    waiter wt;     /* when parked as a long-poll */
    await_wait aw; /* when parked as an Await */
    broker *b;
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

    /* Long-poll claims. */
    uint64_t wait_until_mono_ms;
    bool park;        /* the handler found nothing and the call may wait */
    uint32_t claimed; /* messages the last run of a Claim took */
    /* A parked claim or Await keeps only what it needs (dispatch_compact,
     * svc_await_compact), in this one block: the envelope and body it came
     * in are freed, whatever they carried. */
    void *parked;
};

/* A lane whose parked claims the group being committed may satisfy, and
 * how many messages it still has for them (STORE_READY_MANY: no count). */
typedef struct wake {
    uint8_t scope_len, lane_len;
    char scope[HP_NAME_MAX];
    char lane[HP_NAME_MAX];
    uint32_t left;
} wake;

struct broker {
    broker_config cfg;
    store *store;
    hp_rand_pool *rand; /* ids and claim tokens, for the store */
    hp_clock clock;
    commitq *q;
    waiters *waiters;
    awaits *awaits;
    listener *l;
    http_server *http;
    api_server *api, *api_tls; /* --api, --api-tls */
    broker_metrics metrics;
    char *data_dir;
    char instance_hex[33];
    _Atomic bool stopping;
    bool auth;                   /* keys loaded: every request needs a token */
    bool anonymous_exposed;      /* anonymous on a non-local listener */
    hp_log_every anon_ping_warn; /* its warning on Ping */
    auth_keyset keys;

    /* Writer thread only: the lanes the group being committed made
     * claimable, and the parked claim handed to the writer last. */
    wake wakes[BROKER_MAX_WAKES];
    size_t n_wakes;
    bool wake_all;
    call *woken;
    size_t woken_lane;

    /* Timer thread: waiter timeouts and maintenance. */
    pthread_t timer;
    bool timer_started;
    pthread_mutex_t tmtx;
    pthread_cond_t tcond;
    bool timer_stop;          /* b->tmtx */
    uint64_t maint_due_wall;  /* b->tmtx; wall ms maintenance is due at,
                                 UINT64_MAX for never */
    uint64_t maint_at_mono;   /* b->tmtx; when the timer next looks */
    bool maint_in_flight;     /* b->tmtx */
    uint64_t readers_at_mono; /* timer thread: next stale-reader check */
    commitq_op maint_op;
    /* Backup: one at a time, on its own thread. */
    pthread_mutex_t bmtx;
    bool backup_running;  /* b->bmtx */
    bool backup_joinable; /* b->bmtx: backup_thread is to be joined */
    pthread_t backup_thread;
    bool maint_more;          /* writer thread */
    uint64_t maint_next_wall; /* writer thread */
};

/* The memory decoding one request may take: protobuf-c's ~70 times the
 * wire size is cut to a few frames' worth. */
static inline size_t
dispatch_decode_limit(size_t max_frame)
{
    return 3 * max_frame + ((size_t)1 << 20);
}

/* dispatch.c */
/* Sets b up to count every allocation through b->alloc against limit. */
void dispatch_budget_init(decode_budget *b, size_t limit);
size_t dispatch_method_count(void);
const char *dispatch_method_name(size_t i);
void dispatch_request(void *arg, const listener_req *r, const void *req,
                      size_t len);
void dispatch_finish(call *c, hp_code code, const hp_status *st);
hp_code dispatch_resubmit(call *c, hp_status *st);
const method_entry *dispatch_method(const char *name);

/* svc_*.c: one per RPC. */
hp_code svc_enqueue(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_claim(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_ack(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_nack(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_extend(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_get(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_list(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_stats(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_list_lanes(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_get_lane(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_update_lane(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_dead_list(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_dead_replay(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_dead_purge(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_ping(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_backup(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_await(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
/* Waits for a backup in progress (broker_stop). */
void svc_backup_join(broker *b);

/* Rebuilds a repeated Claim's answer from the replay cache entry. */
hp_code svc_claim_replay(call *c, store_txn *t, uint64_t now_ms,
                         const void *data, size_t len, hp_status *st);

/* svc_common.c: packing and conversions shared by the handlers. */

/* Room in a reply for everything but its messages or lanes: the Response
 * envelope (status with its text, request id up to 128 bytes) and a next
 * cursor; --max-frame is at least --max-payload + 4 KiB, so a reply budget
 * always holds one message of the largest payload. */
#define SVC_REPLY_ROOM 4096

/* The bytes one reply may weigh (store_message_weight and
 * store_lane_stats_weight): --max-frame less SVC_REPLY_ROOM, so a reply
 * fits the frame limit that clients are told to accept. */
size_t svc_reply_budget(const call *c);

/* A page of List, DeadList or ListLanes: the reply budget, but at most
 * SVC_PAGE_BYTES. Reads are built on the I/O thread that read them, and
 * every other client of that thread waits while one is: a 16 MiB page
 * took tens of milliseconds, a 1 MiB one a few (attack_test, "big List
 * pages"). Clients page with the cursor either way. */
#define SVC_PAGE_BYTES ((size_t)1 << 20)
size_t svc_page_budget(const call *c);

hp_code svc_pack(call *c, const ProtobufCMessage *m, hp_status *st);
hp_code svc_parse_id(const char *text, hp_id *out, hp_status *st);
hp_code svc_parse_token(const ProtobufCBinaryData *b, store_token *out,
                        hp_status *st);
hp_code svc_drafts(call *c, Hopper__V1__Draft **in, size_t n, store_draft **out,
                   hp_status *st);
hp_code svc_enqueued(call *c, const store_enqueued *in, size_t n,
                     Hopper__V1__Enqueued ***out, hp_status *st);
hp_code svc_message(call *c, const store_message *in, bool with_token,
                    Hopper__V1__Message *out, hp_status *st);
hp_code svc_list_response(call *c, const store_list_res *res, hp_status *st);
hp_code svc_lane_stats(call *c, const store_lane_stats *in,
                       Hopper__V1__LaneStats *out, hp_status *st);
void svc_settings_to_proto(const store_lane_settings *in,
                           Hopper__V1__LaneSettings *out);
void *svc_alloc(call *c, size_t len, hp_status *st);

/* Frees c's envelope and body, keeping a copy of the claim's fields, the
 * scope and the request id: what a parked claim needs to run again and be
 * answered. */
hp_code dispatch_compact(call *c, hp_status *st);

/* Copies len bytes of s and a NUL to *at, moving *at past them; the
 * copy. For the blocks a parked request keeps. */
char *dispatch_copy_str(char **at, const char *s, size_t len);

/* svc_await.c: parking an Await (writer thread, after the commit of the
 * group in which it found its message unsettled), its compaction (as
 * dispatch_compact's), and the awaits' answer hook. */
void svc_await_park(call *c);
hp_code svc_await_compact(call *c, hp_status *st);
void svc_await_answer(await_wait *aw, hp_code code, const hp_status *st);

/* broker.c: the waiter paths. */
void broker_park(call *c);

#endif
