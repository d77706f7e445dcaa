/*
 * store.h - the outbox store: every message, claim, lease, dedupe entry and
 * dead letter of Hopper, in one LMDB environment.
 *
 * The store has no sockets and starts no threads. Every operation runs in a
 * store_txn and takes `now_ms`, wall-clock milliseconds chosen by the caller,
 * so tests control time and the broker keeps its clock monotonic. Randomness
 * (ids, claim tokens, backoff jitter) comes from the hp_rand_fn in
 * store_opts.
 *
 * Threads: many read transactions may run at once on any threads (the env
 * is opened with MDB_NOTLS). Write transactions must come one at a time,
 * each begun and ended on one thread; the broker's commit queue applies
 * one group at a time, on its writer thread or (with --sync none) on the
 * thread that read the request (broker/commitq.c).
 *
 * Failure contract: an operation that returns anything but HP_OK may have
 * written part of its work into the transaction, so the transaction is
 * marked failed and store_txn_commit refuses it. Validation of the request
 * happens before any write, so almost every failure writes nothing, and
 * store_txn_clear_failure then makes the transaction good again: the
 * broker runs a whole group of operations in one transaction and redoes
 * the group without an operation that failed after writing.
 *
 * Strings are hp_str (pointer + length) and are validated byte by byte: a
 * NUL or a byte outside the allowed set is INVALID_ARGUMENT, never cut.
 */
#ifndef HP_STORE_STORE_H
#define HP_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/id.h"
#include "common/names.h"
#include "common/status.h"
#include "common/str.h"

typedef struct store store;
typedef struct store_txn store_txn;

#define STORE_SCHEMA_VERSION 5 /* history in store/keys.h */
#define STORE_TOKEN_LEN      16
#define STORE_PRIORITY_MAX   9

typedef struct store_token {
    uint8_t b[STORE_TOKEN_LEN];
} store_token;

/* ---- opening ------------------------------------------------------------- */

typedef enum store_sync {
    STORE_SYNC_FULL = 0, /* every commit is on disk before it returns */
    STORE_SYNC_NONE = 1, /* MDB_NOSYNC: a machine crash may lose commits */
} store_sync;

/* Input bounds. A value of 0 in store_opts means "the default". */
typedef struct store_limits {
    size_t max_payload;        /* 1 MiB */
    uint32_t max_batch;        /* 1000: drafts per enqueue, items per ack,
                                  messages per claim, ids per dead op */
    uint32_t max_headers;      /* 64 per message */
    size_t max_header_bytes;   /* 64 KiB: all keys and values of a message */
    size_t max_result;         /* 64 KiB */
    size_t max_error;          /* 4 KiB of nack error text */
    size_t max_dedupe_key;     /* 512 bytes */
    size_t max_consumer;       /* 128 bytes */
    uint32_t min_lease_ms;     /* 100 ms */
    uint32_t max_lease_ms;     /* 24 h */
    uint32_t max_max_attempts; /* 1000 */
    uint64_t max_delay_ms;     /* 366 days: available_at, retry_at */
} store_limits;

/* Test hook: replaces XXH3-128 for dedupe keys, so a test can force two
 * different keys onto one hash. */
typedef void (*store_hash128_fn)(const void *key, size_t len, uint8_t out[16]);

/* Called once per (scope, lane) that gained claimable messages, right after
 * the commit that made them claimable, on the committing thread,
 * with no transaction alive. The strings are valid only during the call.
 * A commit that touched more than 256 lanes calls it once with an empty
 * scope and lane, meaning "any lane may have work". */
typedef void (*store_ready_fn)(void *arg, hp_str scope, hp_str lane);

/* Called on MDB_PANIC or EIO, after which the environment must not be used.
 * The default prints the status and calls _exit(70): after a failed fsync
 * the only safe move is a restart by the supervisor. */
typedef void (*store_fatal_fn)(void *arg, const hp_status *st);

typedef struct store_opts {
    const char *dir; /* data directory; created if missing */
    store_sync sync;
    /* With STORE_SYNC_FULL: a commit syncs its data pages but writes its
     * meta page without syncing it (MDB_NOMETASYNC), so it becomes durable
     * with the next commit's data sync or store_sync_now. The database
     * stays consistent either way; what a crash may undo is the last
     * commit, so its caller must not report it before then (see
     * store_last_txn). */
    bool defer_meta_sync;
    /* With STORE_SYNC_FULL: no write-ahead log; every commit pays LMDB's
     * own two syncs (as before the log existed). For comparisons. */
    bool no_wal;
    /* With STORE_SYNC_NONE: no writable map; LMDB writes each dirty page
     * with a system call (as before it was used). For comparisons. */
    bool no_writemap;
    /* With the log: a rewritten message record is logged whole, not as the
     * span that changed (wal.h, wal_note_changed). For comparisons. */
    bool no_log_patches;
    /* Tests only (hopperd sets it in HOPPER_DEBUG_HOOKS builds for the
     * power-loss control): the log is written but not synced, so a power
     * cut must be seen to lose acknowledged commits. */
    bool debug_log_nosync;
    /* With the log: a checkpoint is taken after this many commits or this
     * long since the last one, whichever comes first (0: 8 commits,
     * 250 ms). Tests raise them to see every commit replayed. */
    uint32_t checkpoint_txns;
    uint32_t checkpoint_ms;
    /* Tests only: recovery exits the process (_exit(0)) after the replay
     * (1) or after the checkpoint that follows it (2), as a crash there. */
    int debug_recovery_exit;
    size_t map_size;     /* initial map size, default 64 MiB */
    size_t max_map_size; /* growth ceiling, default 64 GiB */
    /* Once the map is at its ceiling, enqueues (and follow-ups) are
     * refused with MAP_FULL while less than this much of it is free, so
     * claims, acks, nacks and purges, which rewrite records, still find
     * pages. Default: max_map_size / 8, within 256 KiB .. 64 MiB. */
    size_t full_reserve;
    unsigned max_readers; /* concurrent read transactions, default 256 */
    store_limits limits;
    hp_rand_fn rand; /* default hp_rand_openssl */
    void *rand_arg;
    store_fatal_fn fatal;
    void *fatal_arg;
    store_ready_fn on_ready;
    void *on_ready_arg;
    store_hash128_fn dedupe_hash; /* NULL: XXH3-128 */
} store_opts;

/* Fills o with the defaults; dir stays NULL. */
void store_opts_init(store_opts *o);

/* Opens (creating if needed) the store in o->dir. Refuses a data dir whose
 * schema is newer than this build (FAILED_PRECONDITION/SCHEMA_TOO_NEW) or
 * that holds an LMDB environment that is not a Hopper store
 * (FAILED_PRECONDITION/NOT_A_STORE); never overwrites either. A store of
 * an older schema is upgraded in place first, in transactions of a bounded
 * size that a crash leaves resumable (the next open finishes the job); from
 * the first of them on, older builds refuse the data dir. The upgrade
 * costs one put per pending message, so opening a big old store takes
 * that long once. Clears stale reader slots left by dead processes. */
HP_MUST_USE hp_code store_open(const store_opts *o, store **out, hp_status *st);

/* Closes the environment. No transaction may be alive. NULL is a no-op. */
void store_close(store *s);

const store_limits *store_get_limits(const store *s);

typedef struct store_info {
    size_t map_size;     /* current map size */
    size_t max_map_size; /* ceiling */
    size_t used_bytes;   /* pages in use (last page number * page size) */
    uint64_t last_txn_id;
    unsigned readers; /* reader slots in use */
    /* Commits the write-ahead log gave back when the store opened: those
     * acknowledged after its last checkpoint, before a crash. */
    uint64_t log_replayed;
    /* Bytes appended to the write-ahead log since the store opened. */
    uint64_t log_bytes;
    /* Batches LMDB refused to commit for room, which the store then applied
     * again from the log onto a larger map (store_publish). */
    uint64_t republished;
    /* data.mdb is mapped writable (STORE_SYNC_NONE, with the disk space to
     * reserve the whole map) */
    bool writemap;
} store_info;

void store_get_info(store *s, store_info *out);

/* Frees the reader-table slots of processes that died inside a read
 * transaction (a backup or mdb_stat killed halfway; this process's own
 * slots go with it). Until then LMDB keeps every page freed after such a
 * snapshot, so under load the file grows without bound. Any thread, no
 * transaction needed; *cleared gets how many slots were freed. */
HP_MUST_USE hp_code store_clear_stale_readers(store *s, int *cleared,
                                              hp_status *st);

/* Flushes the OS buffers to disk (useful with STORE_SYNC_NONE at shutdown,
 * and what makes the last commit durable with defer_meta_sync). */
HP_MUST_USE hp_code store_sync_now(store *s, hp_status *st);

/* The id of the last committed write transaction. A commit that wrote
 * nothing does not advance it. Any thread. */
uint64_t store_last_txn(store *s);

/* Whether the store takes writes now, asked the way a write asks: fails
 * like an enqueue would (RESOURCE_EXHAUSTED/MAP_FULL when the map is at
 * its ceiling and enqueues are being refused; DISK_FULL or IO_ERROR from
 * the file system at commit) and otherwise records now_ms under a meta
 * key, so the commit really writes a page. For readiness checks. */
HP_MUST_USE hp_code store_probe_write(store_txn *t, uint64_t now_ms,
                                      hp_status *st);

/* Writes a consistent, compacted copy of the whole store (every scope) to
 * path, a new file, while writers go on: the store as of the moment the
 * copy began. The file is a data.mdb: restoring means putting it as
 * data.mdb into an empty data dir. ALREADY_EXISTS/BACKUP_EXISTS if path
 * (or path.tmp, a copy in progress or cut short) exists; errno-based
 * errors for the file system (DISK_FULL, IO_ERROR). *bytes is the copy's
 * size. Runs as long as copying the data takes; call it off the writer. */
HP_MUST_USE hp_code store_backup(store *s, const char *path, uint64_t *bytes,
                                 hp_status *st);

/* What store_check walked. */
typedef struct store_check_res {
    uint64_t messages;
    uint64_t pending, delayed, claimed, delivered, dead;
    uint64_t lanes;
    uint64_t dedupe_keys;
    uint64_t replies;
    uint64_t index_entries; /* ready, lane_ready, leases, schedule, dead
                               and expiry */
} store_check_res;

/* Walks every table and checks that they agree: every ready, lane_ready,
 * lease, schedule, dead and expiry entry points at a message (or dedupe or
 * replay entry) in the state and at the time the entry says; every
 * pending, claimed and dead message has its index entries; every dedupe and
 * replay entry has its expiry entry and every delivered message one retention
 * entry; each lane's gauges equal the states of its messages. The first
 * disagreement is DATA_LOSS/CORRUPT_RECORD with a message naming the table,
 * the key and what is wrong. A read transaction is enough; it walks the
 * whole store, so run it on a stopped broker's data (hopperd check) or
 * accept that the snapshot is held as long as the walk takes. Memory grows
 * with the number of lanes only. */
HP_MUST_USE hp_code store_check(store_txn *t, store_check_res *res,
                                hp_status *st);

/* ---- transactions -------------------------------------------------------- */

/* Begins a transaction; a write one only on the thread that writes (one
 * at a time). A read transaction holds the map gate shared until it ends,
 * so keep it short. */
HP_MUST_USE hp_code store_txn_begin(store *s, bool write, store_txn **out,
                                    hp_status *st);

/* Commits and frees t. A write commit then calls on_ready for the
 * lanes it made claimable. MAP_FULL may come from here too: the transaction
 * is gone either way; grow the map (store_grow) and redo the work. A failed
 * transaction (an operation in it returned an error) is aborted and
 * INTERNAL/STORE_ERROR is returned. */
HP_MUST_USE hp_code store_txn_commit(store_txn *t, hp_status *st);

/*
 * Batched commits, for STORE_SYNC_FULL with the write-ahead log. After
 * store_batch_attach, the calling thread's write transactions are nested
 * in one LMDB transaction, the batch: store_txn_commit merges t into it
 * and makes t durable by appending its changes to the log and syncing
 * that, but LMDB commits the batch, and other threads see its commits,
 * only at store_publish. That shares a batch's page writes among its
 * commits instead of writing ~16 pages per commit, which is what the log's
 * syncs queued behind. Recovery replays a batch's records like any other.
 *
 * A reader that must see every commit acknowledged so far (a client's
 * read after its write) checks store_unpublished first: when it is true,
 * it waits for the batch thread to publish. The flag is set before a
 * commit into the batch returns, so before any reply it allows.
 *
 * Nothing changes without the log, or at the map's ceiling (commits there
 * go one by one, publishing any open batch first).
 */
typedef struct store_batch_opts {
    uint64_t max_us;  /* publish once the batch is this old (0: 2 ms) */
    uint64_t idle_us; /* ... or its thread idle this long (0: 1 ms) */
} store_batch_opts;

/* Returns false, and batches nothing, without the log or when the disk
 * has no room to reserve the map (logged). o may be NULL. */
bool store_batch_attach(store *s, const store_batch_opts *o);

/* Any thread: commits made into the batch are not yet visible. */
bool store_unpublished(const store *s);

/* The batch thread: whether the open batch should be published now: it
 * is old or big enough, or the thread has had nothing else to do for
 * idle_us (the batch's idle time; 0 while it works). If not, *wait_us
 * says how long until it is, if nothing comes. */
bool store_publish_due(store *s, uint64_t idle_us, uint64_t *wait_us);

/* The batch thread: commits the open batch to LMDB (without a sync: its
 * commits are durable in the log already) and runs on_ready for it. A
 * failure is fatal (opts.fatal): the log holds commits LMDB does not. */
HP_MUST_USE hp_code store_publish(store *s, hp_status *st);

/* The count of a lane whose messages are too many to count (a lane that
 * resumed from pause). */
#define STORE_READY_MANY UINT32_MAX

typedef void (*store_take_fn)(void *arg, hp_str scope, hp_str lane, uint32_t n);

/*
 * Reports, before the commit, the lanes to which write transaction t has
 * made messages claimable since the last call, with how many more each
 * (STORE_READY_MANY when uncountable), so the committer can hand them to
 * waiting claims inside the same transaction. *all is set (once) when t
 * touched more lanes than it keeps notes for: any lane may have work. The
 * notes still go to on_ready after the commit.
 */
void store_txn_take_ready(store_txn *t, store_take_fn fn, void *arg, bool *all);

typedef void (*store_settled_fn)(void *arg, hp_str scope, const hp_id *id);

/* Settled messages a transaction lists before it only says "any". */
#define STORE_MAX_SETTLE_NOTES 1024

/*
 * Reports, before the commit, the messages that write transaction t has
 * delivered or dead-lettered since the last call (a lane with retention 0
 * deletes a message at its ack: it is reported all the same), so the
 * committer can answer the requests waiting for them inside the same
 * transaction. *all is set (once) when t settled more messages than it
 * keeps notes for: any message may have settled.
 */
void store_txn_take_settled(store_txn *t, store_settled_fn fn, void *arg,
                            bool *all);

/* The id of the snapshot t reads (a read transaction), or that t will have
 * once committed (a write transaction). */
uint64_t store_txn_id(const store_txn *t);

/* Aborts and frees t. NULL is a no-op. */
void store_txn_abort(store_txn *t);

/* Write operations done in t so far; 0 means committing t would change
 * nothing. With
 * store_txn_clear_failure it lets a caller run many operations in one
 * transaction: an operation that failed without writing anything (every
 * validation error, a lost claim) leaves the transaction good. */
uint64_t store_txn_writes(const store_txn *t);

/* Clears t's failed mark if no write happened since `mark` (a value of
 * store_txn_writes taken before the operation) and returns true; returns
 * false, leaving t failed, when the operation wrote before it failed. */
bool store_txn_clear_failure(store_txn *t, uint64_t mark);

/* Bytes of the map that t could still fill: pages never used plus pages
 * on LMDB's free list (some of which old readers may still hold). */
size_t store_txn_room(store_txn *t);

/* LMDB calls made in t so far: every get, cursor step or seek, put and
 * delete, each O(log n) in the size of its database. A cost that tests and
 * benchmarks can count exactly, where time would be noise. */
uint64_t store_txn_index_ops(const store_txn *t);

/* Doubles the map, up to max_map_size. No transaction may be alive in the
 * calling thread; it waits for other threads' read transactions to end.
 * RESOURCE_EXHAUSTED/MAP_FULL once at the ceiling. */
HP_MUST_USE hp_code store_grow(store *s, hp_status *st);

/* Runs fn in a transaction. For writes: commits on HP_OK, aborts on error,
 * and on MAP_FULL grows the map and runs fn again (fn must be repeatable).
 * The convenience the tests, the benchmark and tools use; the broker does
 * its own grouping. */
typedef hp_code (*store_txn_fn)(store_txn *t, void *arg, hp_status *st);
HP_MUST_USE hp_code store_run(store *s, bool write, store_txn_fn fn, void *arg,
                              hp_status *st);

/* ---- messages ------------------------------------------------------------ */

typedef enum store_state {
    STORE_STATE_ANY = 0, /* only as a filter */
    STORE_STATE_PENDING = 1,
    STORE_STATE_DELAYED = 2,
    STORE_STATE_CLAIMED = 3,
    STORE_STATE_DELIVERED = 4,
    STORE_STATE_DEAD = 5,
} store_state;

const char *store_state_name(store_state s);

typedef struct store_header {
    hp_str key;   /* 1..256 bytes of UTF-8 */
    hp_str value; /* UTF-8, may be empty */
} store_header;

/* A message to enqueue. Zero-initialise, then fill what you need. */
typedef struct store_draft {
    hp_str lane;
    hp_str target; /* empty: no target */
    const void *payload;
    size_t payload_len;
    const store_header *headers;
    size_t n_headers;
    hp_str dedupe_key;        /* empty: no dedupe */
    uint64_t available_at_ms; /* 0: now; earlier than now counts as now */
    uint64_t delay_ms;        /* relative form; not both */
    uint32_t priority;        /* 0 (first) .. 9; default 0 */
    uint32_t max_attempts;    /* 0: the lane's setting */
    /* Empty: none. Else an http(s) URL (the deliver_url rules) that gets a
     * state event for each transition of the message (events.c). */
    hp_str state_webhook_url;
} store_draft;

typedef struct store_enqueued {
    hp_id id;
    bool duplicate; /* a dedupe hit: id is the first message's id */
} store_enqueued;

/* Enqueues n drafts into scope, all or nothing. out has n entries.
 * INVALID_ARGUMENT (BAD_NAME, PAYLOAD_TOO_LARGE, BAD_PRIORITY, ...) for any
 * bad draft, naming its index; nothing is written then. A draft whose dedupe
 * key was enqueued in the same scope and lane within the lane's dedupe
 * window (including earlier in this batch) writes nothing and returns the
 * first id. Lanes are created on first use with default settings. */
HP_MUST_USE hp_code store_enqueue(store_txn *t, hp_str scope,
                                  const store_draft *drafts, size_t n,
                                  uint64_t now_ms, store_enqueued *out,
                                  hp_status *st);

/* The transitions a message with a state_webhook_url reports (events.c;
 * docs/webhooks.md "State webhooks"). */
typedef enum store_event_kind {
    STORE_EVENT_ENQUEUED = 0,
    STORE_EVENT_CLAIMED = 1,
    STORE_EVENT_RETRY_SCHEDULED = 2,
    STORE_EVENT_DELIVERED = 3,
    STORE_EVENT_DEAD = 4,
} store_event_kind;

/* "enqueued", "claimed", "retry_scheduled", "delivered", "dead". */
const char *store_event_name(store_event_kind k);

/* The lane of each scope that holds its state events: one message per
 * event, payload the event's JSON, headers content-type and
 * STORE_EVENT_URL_HEADER (where to POST it). Drafts may not name it. */
#define STORE_EVENTS_LANE      "hopper.events"
#define STORE_EVENT_URL_HEADER "hopper-event-url"
/* Result or error text longer than this is cut in the event (Get has it
 * whole), so an event always fits the smallest payload limit. */
#define STORE_EVENT_TEXT_MAX 4096

/* Calls fn for every scope whose events lane holds events not yet settled
 * (pending, delayed or claimed), in key order, so the delivery part finds
 * the events a previous run left: O(scopes * log n). scope is valid during
 * the call only. */
typedef void (*store_events_fn)(void *arg, hp_str scope);
HP_MUST_USE hp_code store_events_each(store_txn *t, store_events_fn fn,
                                      void *arg, hp_status *st);

/* A message as read back. Every pointer points into the arena the caller
 * passed and stays valid until that arena is released. */
typedef struct store_message {
    hp_id id;
    store_state state;
    hp_str lane;
    hp_str target;
    uint32_t priority;
    uint32_t attempts; /* claims so far (reset by a dead-letter replay) */
    uint32_t max_attempts;
    uint64_t created_at_ms;
    uint64_t available_at_ms;
    uint64_t lease_expires_at_ms; /* claimed only */
    uint64_t finished_at_ms;      /* delivered or dead: when */
    store_token token;            /* claim results only; zero elsewhere */
    hp_str consumer;              /* last claimer */
    hp_str last_error;            /* last nack error or lease expiry */
    const void *payload;
    size_t payload_len;
    const void *result; /* delivered only, may be empty */
    size_t result_len;
    store_header *headers;
    size_t n_headers;
    hp_str state_webhook_url; /* empty: the message sends no events */
} store_message;

typedef struct store_claim_req {
    hp_str lane;
    hp_str target;     /* with any_target false: only this target ("" = the
                          messages enqueued without one) */
    bool any_target;   /* every target of the lane, merged in claim order */
    uint32_t max;      /* 1..max_batch */
    uint32_t lease_ms; /* min_lease_ms..max_lease_ms */
    hp_str consumer;   /* who claims, for people; may be empty */
    size_t max_bytes;  /* 0: no limit. Otherwise the claim stops before a
                          message whose weight (store_message_weight, with
                          body) would take the batch past it; the first
                          message is always claimed, so a reply stays
                          within what a client takes. */
} store_claim_req;

/* What a message weighs against a max_bytes budget: the bytes it carries
 * (lane, target, consumer, last error, state webhook URL, and with_body
 * the payload, result,
 * header keys and values) plus STORE_WEIGHT_MESSAGE for its fixed fields
 * and STORE_WEIGHT_HEADER per header, which leave room for the framing of
 * any field-by-field encoding (the broker checks protobuf's fits). */
#define STORE_WEIGHT_MESSAGE 192
#define STORE_WEIGHT_HEADER  16
size_t store_message_weight(const store_message *m, bool with_body);

typedef struct store_claimed {
    store_message *msgs; /* in claim order: priority, available_at, id */
    size_t n;
} store_claimed;

/* Time boundaries, for every operation: a message is due when
 * available_at <= now; a lease is held while now < lease_expires_at; a
 * dedupe entry, a retained delivered message and a replay entry live while
 * now < their expiry. */

/* Claims up to req->max due messages of (scope, lane, target) in order
 * priority -> available_at -> id. Each gets a fresh random token, the
 * consumer, a lease until now + lease_ms, and attempts + 1. A paused or
 * unknown lane claims nothing (HP_OK, n = 0). Leases that expired by now
 * are settled first (a bounded step), so an expired message is claimable
 * again without waiting for maintenance. Results live in arena. */
HP_MUST_USE hp_code store_claim(store_txn *t, hp_str scope,
                                const store_claim_req *req, uint64_t now_ms,
                                hp_arena *arena, store_claimed *out,
                                hp_status *st);

typedef struct store_ack_item {
    hp_id id;
    store_token token;
    const void *result; /* kept with the delivered message; may be NULL */
    size_t result_len;
} store_ack_item;

/* Acks n claims atomically and enqueues the follow-up drafts in the same
 * transaction. Any item whose lease is no longer held by its token (expired,
 * re-claimed, nacked) fails the whole call with FAILED_PRECONDITION/
 * LOST_CLAIM; an unknown id is NOT_FOUND/NO_MESSAGE. Repeating an ack that
 * succeeded (same id and token, message still retained) is HP_OK and
 * changes nothing; follow-ups are enqueued only if at least one item was
 * newly acked. followups_out has n_followups entries (may be NULL if 0). */
HP_MUST_USE hp_code store_ack(store_txn *t, hp_str scope,
                              const store_ack_item *items, size_t n,
                              const store_draft *followups, size_t n_followups,
                              uint64_t now_ms, store_enqueued *followups_out,
                              hp_status *st);

/* The per-item form of store_ack: an item whose claim is not held
 * (FAILED_PRECONDITION/LOST_CLAIM) or whose message is gone (NOT_FOUND/
 * NO_MESSAGE) gets that status in item_st[i] and is left as it is; every
 * other item is acked (item_st[i].code HP_OK), so the good ones commit.
 * The follow-ups are enqueued only when every item is OK (and one was
 * newly acked); otherwise followups_out is zeroed and none exist. Bad
 * input (a result too large, bad follow-ups, too many items) and store
 * errors still fail the whole call, writing nothing. item_st has n
 * entries. */
HP_MUST_USE hp_code store_ack_each(
    store_txn *t, hp_str scope, const store_ack_item *items, size_t n,
    const store_draft *followups, size_t n_followups, uint64_t now_ms,
    hp_status *item_st, store_enqueued *followups_out, hp_status *st);

/* What a nack does with the message. */
typedef enum store_nack_mode {
    /* Requeue for retry_at (0: after the lane's backoff), or dead-letter
     * it when this claim used its last attempt. */
    STORE_NACK_RETRY = 0,
    /* Give it back without using an attempt (a snooze, or a worker that
     * stops): attempts goes back down by the one the claim counted, so it
     * never dead-letters; requeued for retry_at, or with 0 at its old
     * place in claim order. An empty error keeps the last one. */
    STORE_NACK_KEEP_ATTEMPT = 1,
    /* A permanent failure: dead-letter it now, whatever attempts remain. */
    STORE_NACK_DEAD = 2,
} store_nack_mode;

typedef struct store_nack_req {
    hp_id id;
    store_token token;
    store_nack_mode mode;
    hp_str error;         /* why, for people; up to max_error bytes */
    uint64_t retry_at_ms; /* 0: the lane's backoff (RETRY) */
    const store_draft *followups;
    size_t n_followups;
} store_nack_req;

typedef struct store_nack_res {
    bool dead;            /* attempts used up: moved to dead letters */
    uint64_t retry_at_ms; /* when requeued: when it becomes claimable */
} store_nack_res;

/* Gives a claim back: the message is requeued for retry_at (or after the
 * lane's backoff) or, when its attempts are used up, dead-lettered. The
 * error text is kept as last_error. Follow-ups are enqueued in the same
 * transaction. A repeated nack with the same token while the message has
 * not been claimed again returns the same outcome and changes nothing. */
HP_MUST_USE hp_code store_nack(store_txn *t, hp_str scope,
                               const store_nack_req *req, uint64_t now_ms,
                               store_enqueued *followups_out,
                               store_nack_res *res, hp_status *st);

/* Extends a held lease to now + lease_ms; returns the new expiry. */
HP_MUST_USE hp_code store_extend(store_txn *t, hp_str scope, hp_id id,
                                 store_token token, uint32_t lease_ms,
                                 uint64_t now_ms, uint64_t *expires_at_ms,
                                 hp_status *st);

/* Reads one message (payload, headers, result included; no token).
 * NOT_FOUND/NO_MESSAGE for an id that is not in this scope. DATA_LOSS/
 * CORRUPT_RECORD if its record fails its checksum. */
HP_MUST_USE hp_code store_get(store_txn *t, hp_str scope, hp_id id,
                              uint64_t now_ms, hp_arena *arena,
                              store_message *out, hp_status *st);

/* A page of listing. The cursor is opaque bytes; pass it back unchanged to
 * continue. An empty next cursor means the listing is complete. */
typedef struct store_list_req {
    hp_str lane;
    store_state state; /* ANY lists every state */
    const void *cursor;
    size_t cursor_len;
    uint32_t limit;    /* 1..max_batch */
    bool with_payload; /* payload, headers and result too */
    size_t max_bytes;  /* 0: no limit. Otherwise the page stops before a
                          message whose weight (store_message_weight) would
                          take it past this, with a cursor to continue; a
                          page holds at least one message. */
} store_list_req;

typedef struct store_list_res {
    store_message *msgs;
    size_t n;
    const void *next_cursor; /* in the arena; NULL when done */
    size_t next_cursor_len;
} store_list_res;

/* Lists a lane's messages in one state. PENDING and DELAYED walk the ready
 * index target by target (by length, then bytes) and in claim order within
 * a target; DEAD walks dead letters oldest first; CLAIMED,
 * DELIVERED and ANY walk the scope's messages by id and examine at most
 * 16 * limit records per page, so a page may come back short with a cursor
 * to continue. max_bytes may cut a page short the same way. */
HP_MUST_USE hp_code store_list(store_txn *t, hp_str scope,
                               const store_list_req *req, uint64_t now_ms,
                               hp_arena *arena, store_list_res *out,
                               hp_status *st);

/* ---- lanes --------------------------------------------------------------- */

typedef enum store_backoff {
    STORE_BACKOFF_EXPONENTIAL = 0,
    STORE_BACKOFF_LINEAR = 1,
    STORE_BACKOFF_CONSTANT = 2,
} store_backoff;

const char *store_backoff_name(store_backoff b);

typedef struct store_lane_settings {
    uint32_t max_attempts;       /* default 5 */
    store_backoff backoff;       /* default exponential */
    uint64_t backoff_base_ms;    /* default 1 s */
    uint64_t backoff_cap_ms;     /* default 1 h */
    uint32_t backoff_factor_pct; /* exponential growth, 200 = x2 */
    uint32_t jitter_pct;         /* +-, default 20 */
    uint64_t retention_ms;       /* delivered kept this long, default 1 h */
    uint64_t dedupe_window_ms;   /* default 24 h; 0 turns dedupe off */
    bool paused;                 /* a paused lane claims nothing */
} store_lane_settings;

void store_lane_settings_default(store_lane_settings *ls);

/* Validates and writes a lane's settings, creating the lane if needed.
 * INVALID_ARGUMENT/BAD_SETTING names the bad field. */
HP_MUST_USE hp_code store_lane_set(store_txn *t, hp_str scope, hp_str lane,
                                   const store_lane_settings *ls,
                                   hp_status *st);

/* Reads a lane's settings; NOT_FOUND/NO_LANE if it was never used. */
HP_MUST_USE hp_code store_lane_get(store_txn *t, hp_str scope, hp_str lane,
                                   store_lane_settings *out, hp_status *st);

/* ---- delivery lanes (store/webhooks.c; docs/webhooks.md) --------------- */

#define STORE_DELIVER_URL_MAX             2048
#define STORE_DELIVER_CONCURRENCY_DEFAULT 4
#define STORE_DELIVER_CONCURRENCY_MAX     64
#define STORE_DELIVER_TIMEOUT_DEFAULT_MS  10000
#define STORE_DELIVER_TIMEOUT_MIN_MS      100
#define STORE_DELIVER_TIMEOUT_MAX_MS      300000
#define STORE_CALLBACK_TIMEOUT_DEFAULT_MS 3600000
#define STORE_CALLBACK_TIMEOUT_MIN_MS     1000
#define STORE_CALLBACK_TIMEOUT_MAX_MS     86400000

/* How hopperd delivers a lane over HTTP. An empty url: it does not, and
 * the lane has no delivery record. */
typedef struct store_delivery {
    char url[STORE_DELIVER_URL_MAX + 1];
    char secret_id[HP_NAME_MAX + 1]; /* names a signing secret of the scope */
    uint32_t concurrency;            /* requests in flight, default 4 */
    uint32_t timeout_ms;             /* per request, default 10 s */
    /* How long a delivery answered 202 stays claimed, waiting for its
     * callback (docs/webhooks.md, "Callbacks"); default 1 h. */
    uint32_t callback_timeout_ms;
} store_delivery;

void store_delivery_default(store_delivery *d);

/* Checks the shape of a URL hopperd may POST to (a deliver_url or a
 * state_webhook_url, named by field in the message): http:// or https://,
 * a host, no user:password, printable ASCII, at most 2048 bytes.
 * INVALID_ARGUMENT/BAD_DELIVER_URL otherwise. */
HP_MUST_USE hp_code store_url_check(hp_str url, const char *field,
                                    hp_status *st);

/* A lane's delivery settings; defaults (an empty url) for a lane without
 * any, known or not. DATA_LOSS/CORRUPT_RECORD for a damaged record. */
HP_MUST_USE hp_code store_delivery_get(store_txn *t, hp_str scope, hp_str lane,
                                       store_delivery *out, hp_status *st);

/* Validates and writes them; an empty url deletes the record. Does not
 * create the lane (UpdateLane writes its settings in the same txn).
 * INVALID_ARGUMENT: BAD_DELIVER_URL (not http(s)://host..., over 2048
 * bytes, with user:password or spaces), BAD_SETTING (no secret_id,
 * concurrency not 1-64, timeout not 100 ms - 5 min, callback timeout not
 * 1 s - 24 h), BAD_NAME. */
HP_MUST_USE hp_code store_delivery_set(store_txn *t, hp_str scope, hp_str lane,
                                       const store_delivery *d, hp_status *st);

/* Calls fn for every lane of every scope that has a delivery url, in key
 * order; scope, lane and d are valid during the call only. A damaged
 * record is skipped (store_delivery_get names it). */
typedef void (*store_delivery_fn)(void *arg, hp_str scope, hp_str lane,
                                  const store_delivery *d);
HP_MUST_USE hp_code store_delivery_each(store_txn *t, store_delivery_fn fn,
                                        void *arg, hp_status *st);

/* The broker's callback key (broker/cbtoken.h), made once and kept in
 * meta: the value there, or fresh[] written there when there is none, into
 * out. Never returned by any rpc. Write transaction. */
#define STORE_CALLBACK_KEY_LEN 32
HP_MUST_USE hp_code
store_callback_key(store_txn *t, const uint8_t fresh[STORE_CALLBACK_KEY_LEN],
                   uint8_t out[STORE_CALLBACK_KEY_LEN], hp_status *st);

/* When a retry asked for delay_ms from now_ms may be: no later than the
 * lane's backoff_cap_ms allows (a receiver may slow a lane down, not park
 * a message for a year); 0, the lane's own backoff, when the lane's
 * settings cannot be read. For Retry-After and callbacks' retry_after_ms. */
uint64_t store_retry_capped(store_txn *t, hp_str scope, hp_str lane,
                            uint64_t delay_ms, uint64_t now_ms);

/* Webhook signing secrets: write-only, one name per scope, one value or
 * two while rotating (newest first). Their values never leave hopperd
 * except as signatures. */
#define STORE_SECRET_MIN    16
#define STORE_SECRET_MAX    1024
#define STORE_SECRET_VALUES 2

typedef struct store_secret {
    size_t n; /* active values, 1 or 2 */
    uint8_t value[STORE_SECRET_VALUES][STORE_SECRET_MAX];
    size_t len[STORE_SECRET_VALUES];
} store_secret;

/* Sets secret id of the scope to value (16-1024 bytes): with rotate false
 * it becomes the only active value; with rotate true it becomes the
 * newest and the previous newest stays active beside it (an older one is
 * dropped), so receivers can switch over. *active (may be NULL) gets the
 * number of active values. INVALID_ARGUMENT/BAD_SECRET for the length,
 * BAD_NAME for the id; rotating a secret that was never set is
 * NOT_FOUND/NO_SECRET. Messages never quote the value. */
HP_MUST_USE hp_code store_secret_set(store_txn *t, hp_str scope, hp_str id,
                                     const void *value, size_t len, bool rotate,
                                     uint32_t *active, hp_status *st);

/* The active values of secret id, for signing only: no rpc returns them.
 * NOT_FOUND/NO_SECRET when it was never set. Wipe *out with
 * store_secret_clear when done. */
HP_MUST_USE hp_code store_secret_get(store_txn *t, hp_str scope, hp_str id,
                                     store_secret *out, hp_status *st);

/* Overwrites sec so no copy of a value outlives its use. */
void store_secret_clear(store_secret *sec);

typedef struct store_lane_stats {
    hp_str scope;
    hp_str lane;
    store_lane_settings settings;
    uint64_t pending; /* claimable now or counted so until promoted */
    uint64_t delayed; /* waiting for available_at / retry_at */
    uint64_t claimed;
    uint64_t delivered; /* still retained */
    uint64_t dead;
    uint64_t oldest_pending_age_ms; /* 0 when nothing is due */
    /* Totals since the lane was created. */
    uint64_t enqueued_total;
    uint64_t dedupe_hits_total;
    uint64_t claimed_total;
    uint64_t acked_total;
    uint64_t nacked_total;
    uint64_t dead_total;
    uint64_t expired_total; /* leases that ran out */
    uint64_t replayed_total;
    uint64_t purged_total;
    /* A page of the targets with ready messages ("" = none), sorted by
     * length then bytes; in the arena. */
    hp_str *targets;
    size_t n_targets;
    const void *targets_next_cursor; /* in the arena; NULL when no more */
    size_t targets_next_cursor_len;
} store_lane_stats;

/* Which of a lane's targets a stats call lists. Each target costs one seek
 * in `ready`, so a page of them costs O(limit * log n). */
typedef struct store_targets_req {
    const void *cursor; /* a previous targets_next_cursor; empty: the first */
    size_t cursor_len;
    uint32_t limit; /* 0: none; else 1..max_batch */
} store_targets_req;

/* Counters, oldest pending age and a page of targets of one lane, in
 * O(limit * log n). NOT_FOUND/NO_LANE if the lane was never used;
 * INVALID_ARGUMENT/BAD_LIMIT or BAD_CURSOR for a bad targets request. */
HP_MUST_USE hp_code store_stats(store_txn *t, hp_str scope, hp_str lane,
                                const store_targets_req *targets,
                                uint64_t now_ms, hp_arena *arena,
                                store_lane_stats *out, hp_status *st);

/* What a lane's stats weigh against a max_bytes budget: its names and
 * targets plus STORE_WEIGHT_LANE for counters and settings and
 * STORE_WEIGHT_NAME per target, room for any field-by-field encoding. */
#define STORE_WEIGHT_LANE 512
#define STORE_WEIGHT_NAME 8
size_t store_lane_stats_weight(const store_lane_stats *ls);

typedef struct store_lanes_req {
    const void *cursor; /* a previous next_cursor; empty: the first page */
    size_t cursor_len;
    uint32_t limit;         /* lanes per page, 1..max_batch */
    uint32_t targets_limit; /* the first page of each lane's targets:
                               0 none, else 1..max_batch */
    size_t max_bytes;       /* 0: no limit. Otherwise the page stops before
                               a lane whose weight would take it past this;
                               a page holds at least one lane. */
} store_lanes_req;

typedef struct store_lanes_res {
    store_lane_stats *lanes;
    size_t n;
    const void *next_cursor; /* NULL when done */
    size_t next_cursor_len;
} store_lanes_res;

/* Lists the lanes of a scope by name with their stats, a page at a time. */
HP_MUST_USE hp_code store_list_lanes(store_txn *t, hp_str scope,
                                     const store_lanes_req *req,
                                     uint64_t now_ms, hp_arena *arena,
                                     store_lanes_res *out, hp_status *st);

/* The same over every scope, ordered by scope then lane (for metrics). */
HP_MUST_USE hp_code store_list_all_lanes(store_txn *t,
                                         const store_lanes_req *req,
                                         uint64_t now_ms, hp_arena *arena,
                                         store_lanes_res *out, hp_status *st);

/* ---- dead letters -------------------------------------------------------- */

/* Dead letters of a lane, oldest death first; same paging as store_list
 * (req->state is ignored). */
HP_MUST_USE hp_code store_dead_list(store_txn *t, hp_str scope,
                                    const store_list_req *req, hp_arena *arena,
                                    store_list_res *out, hp_status *st);

/* Which dead letters a replay or purge touches: the listed ids (all must be
 * dead letters of the lane, else NOT_FOUND/NO_MESSAGE or FAILED_PRECONDITION/
 * NOT_DEAD and nothing changes), or with n_ids == 0 the oldest `limit` of
 * the lane. */
typedef struct store_dead_sel {
    hp_str lane;
    const hp_id *ids;
    size_t n_ids;
    uint32_t limit; /* for the whole-lane form: 1..max_batch */
} store_dead_sel;

typedef struct store_dead_res {
    uint64_t count; /* messages replayed or purged */
    bool more;      /* whole-lane form: dead letters remain */
} store_dead_res;

/* Back to pending now, attempts reset to 0, last_error kept. */
HP_MUST_USE hp_code store_dead_replay(store_txn *t, hp_str scope,
                                      const store_dead_sel *sel,
                                      uint64_t now_ms, store_dead_res *res,
                                      hp_status *st);

/* Deletes dead letters for good. */
HP_MUST_USE hp_code store_dead_purge(store_txn *t, hp_str scope,
                                     const store_dead_sel *sel,
                                     store_dead_res *res, hp_status *st);

/* ---- claim views and the replay cache ------------------------------------ */

/* Reads a message only if it is claimed under `token` and the lease still
 * runs at now; the result includes the token. NOT_FOUND/NO_MESSAGE or
 * FAILED_PRECONDITION/LOST_CLAIM otherwise. The broker uses it to answer a
 * repeated Claim with the claims it already handed out. */
HP_MUST_USE hp_code store_get_held(store_txn *t, hp_str scope, hp_id id,
                                   store_token token, uint64_t now_ms,
                                   hp_arena *arena, store_message *out,
                                   hp_status *st);

/* The replay cache: opaque outcomes of mutating requests, keyed by scope
 * and the client's request id (1-128 bytes), kept until expires_at_ms and
 * written in the same transaction as the effect, so a request received
 * twice is answered from here instead of acting twice. */
#define STORE_REQUEST_ID_MAX 128

/* *found is false when there is no live entry. data points into the map
 * (valid until the transaction ends). */
HP_MUST_USE hp_code store_replay_get(store_txn *t, hp_str scope,
                                     hp_str request_id, uint64_t now_ms,
                                     bool *found, uint32_t *tag,
                                     const void **data, size_t *len,
                                     hp_status *st);

/* Stores (tag, data) for the request id until expires_at_ms. */
HP_MUST_USE hp_code store_replay_put(store_txn *t, hp_str scope,
                                     hp_str request_id, uint32_t tag,
                                     const void *data, size_t len,
                                     uint64_t expires_at_ms, hp_status *st);

/* The 16 random bytes that identify this data directory. */
void store_get_instance(const store *s, uint8_t out[16]);

/* ---- maintenance --------------------------------------------------------- */

/* The time-driven steps, in the order a pass runs them. Each does at
 * most `limit` units of work so it fits a small transaction, and says
 * whether more is due now. */
typedef enum store_step {
    /* Leases that ran out by now: an expired lease is a failed attempt.
     * The message becomes claimable again at once (keeping its place in
     * claim order) or, with its attempts used up, is dead-lettered with
     * last_error "lease expired". */
    STORE_STEP_EXPIRE_LEASES,
    /* Delayed messages whose time came: counted as pending from now on,
     * and their lanes reported through on_ready. (They are claimable from
     * the moment they are due even before this step runs.) */
    STORE_STEP_PROMOTE_DUE,
    /* Delivered messages past their lane's retention are deleted. */
    STORE_STEP_PRUNE_DELIVERED,
    /* Dedupe entries past their window are deleted. */
    STORE_STEP_PRUNE_DEDUPE,
    /* Replay-cache entries past their expiry are deleted. */
    STORE_STEP_PRUNE_REPLIES,
    STORE_STEP_COUNT
} store_step;

typedef struct store_step_res {
    uint32_t done;
    bool more;
} store_step_res;

/* Runs one step in write transaction t for what is due at now_ms. */
HP_MUST_USE hp_code store_maint_step(store_txn *t, store_step step,
                                     uint64_t now_ms, uint32_t limit,
                                     store_step_res *res, hp_status *st);

/* The earliest time any maintenance step or delayed message falls due, or
 * UINT64_MAX when nothing is scheduled; lets the broker sleep exactly. */
HP_MUST_USE hp_code store_next_due(store_txn *t, uint64_t *at_ms,
                                   hp_status *st);

#endif
