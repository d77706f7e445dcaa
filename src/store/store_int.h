/*
 * store_int.h - what the store's own files share: the environment handle,
 * the transaction wrapper, the per-operation lane cache, and small helpers.
 * Other modules never include this file.
 */
#ifndef HP_STORE_STORE_INT_H
#define HP_STORE_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <lmdb.h>

#include "common/buf.h"
#include "common/names.h"
#include "store/keys.h"
#include "store/record.h"
#include "store/store.h"

struct store {
    MDB_env *env;
    /* Every write to db_messages must go through db_put, db_del or
     * put_record (msg.c): they drop scratch_current, which a raw mdb_put,
     * mdb_del or cursor write would leave standing over a changed value,
     * and the log's patch of the next rewrite would be taken against the
     * wrong bytes, and its in-place rewrite (MDB_CURRENT) would land on
     * whatever record the messages cursor then rests on, silently. */
    MDB_dbi db_messages, db_ready, db_lane_ready, db_leases, db_schedule,
        db_dedupe, db_dead, db_expiry, db_lanes, db_meta, db_replies,
        db_deliver, db_secrets;
    uint8_t instance[16];
    store_opts opts; /* defaults filled in; dir points at dir_copy */
    char *dir_copy;
    int lock_fd;     /* flock'd hopper.lock in the data dir, or -1 */
    size_t map_size; /* writer thread, or under the gate held exclusively */
    bool writemap;   /* MDB_WRITEMAP: the map's size is reserved on disk */
    bool reserved;   /* the map's size is reserved on disk (writemap, or
                        batched commits) and grows only into reserved disk */

    /* Readers and writers hold this shared for their lifetime;
     * map growth holds it exclusively, because LMDB remaps the file and any
     * live transaction would then point at unmapped memory. */
    pthread_rwlock_t gate;

    /* Writer thread only. */
    hp_idgen idgen;
    hp_buf scratch; /* copy of a record being rewritten */
    /* The messages key whose value scratch holds as of now (msg_load_copy),
     * for the log's patch of the rewrite (put_record). Dropped by any
     * other write to messages and at each transaction's end. */
    key scratch_key;
    bool scratch_current;
    hp_buf scratch2;   /* a second one for encodes */
    hp_buf rewrite;    /* a rewritten record's encoding (put_record) */
    bool write_active; /* a write txn is open */
    struct wal *wal;   /* wal.c; NULL without a log */
    /* store_table_index: MDB_dbi -> place in the table list, 0xff for
     * none. LMDB numbers named databases from 2 up in open order. */
    uint8_t table_of_dbi[32];
    uint64_t replayed; /* log records applied when the store opened */

    /* Batched commits (store_batch_attach). The batch thread only, except
     * unpublished, which any thread reads. */
    uint64_t batch_max_us, batch_idle_us;
    MDB_txn *outer;        /* the open batch, or NULL */
    uint64_t outer_us;     /* when it began */
    uint32_t outer_groups; /* commits logged into it */
    uint64_t outer_rec0;   /* the log's record count when it began */
    _Atomic bool unpublished;
    _Atomic uint64_t republished; /* store_info */
    struct wake_note
        *pub_wakes; /* on_ready notes held until the batch commits */
    size_t n_pub, cap_pub;
    bool pub_all;
};

/* The store's tables by position in one fixed list, which is what the
 * write-ahead log names them by; the layout hash changes with the list. */
unsigned store_table_count(void);
MDB_dbi store_table_dbi(const store *s, unsigned i);
unsigned store_table_index(const store *s, MDB_dbi db);
uint32_t store_table_layout(void);

/* meta keys shared by env.c and migrate.c */
#define META_SCHEMA "schema"

#define STORE_MAX_WAKE_NOTES 256

/* A wake note: a (scope, lane) that gained claimable messages, how many
 * (STORE_READY_MANY: more than can be counted, as when a lane resumes),
 * and how many of those store_txn_take_ready has reported already. */
typedef struct wake_note {
    hp_lane_key key;
    uint32_t n;
    uint32_t taken;
} wake_note;

/* A message that reached a final state (delivered or dead) in a write
 * transaction, for store_txn_take_settled (settled.c). */
typedef struct settle_note {
    uint8_t scope_len;
    char scope[HP_NAME_MAX];
    hp_id id;
} settle_note;

/* A state event noted by a transition, to be enqueued into the scope's
 * events lane when the operation ends (events.c). One allocation:
 * url then json. */
typedef struct event_pending {
    uint8_t scope_len;
    char scope[HP_NAME_MAX];
    size_t url_len, json_len;
    char *buf;
} event_pending;

/* LMDB numbers the store's tables from 2 up (table_of_dbi); a table past
 * this would do without a cursor of its own. */
#define TXN_CURSORS 32

struct store_txn {
    store *s;
    MDB_txn *mdb;
    bool write;
    bool nested;     /* a commit into the open batch (store_batch_attach) */
    bool gateless;   /* a read under the open batch's hold of the gate */
    bool failed;     /* an operation failed inside: commit must refuse */
    uint64_t writes; /* puts and deletes attempted, for clear_failure */
    uint64_t reads;  /* gets, seeks and cursor steps, for index_ops */
    wake_note *wakes;
    size_t n_wakes, cap_wakes;
    size_t last_wake; /* the note matched last: most notes repeat it */
    bool wake_all;    /* too many lanes noted: on_ready gets "" "" */
    bool wake_all_taken;
    settle_note *settled; /* settled.c */
    size_t n_settled, cap_settled, settled_taken;
    bool settle_all; /* too many messages noted: any may have settled */
    bool settle_all_taken;
    event_pending *events; /* events.c: noted, not yet enqueued */
    size_t n_events, cap_events;
    /* Write transactions: one cursor per table for the puts, deletes and
     * message lookups of msg.c, opened at first use and freed by LMDB
     * with the transaction. A cursor that rests on a leaf searches that
     * leaf before the tree, and consecutive index keys and message ids
     * mostly share one. The messages cursor is also where put_record
     * rewrites the record msg_load_copy copied, while the copy is
     * current (scratch_current): every other move of it drops that. */
    MDB_cursor *cursors[TXN_CURSORS];
};

/* ---- lane cache: one per operation, flushed before it returns ---------- */

enum lane_gauge {
    G_PENDING,
    G_DELAYED,
    G_CLAIMED,
    G_DELIVERED,
    G_DEAD,
    G_COUNT
};

enum lane_total {
    T_ENQUEUED,
    T_DEDUPE_HITS,
    T_CLAIMED,
    T_ACKED,
    T_NACKED,
    T_DEAD,
    T_EXPIRED,
    T_REPLAYED,
    T_PURGED,
    T_COUNT
};

typedef struct lane_entry {
    hp_lane_key key;
    bool exists; /* a record is on disk */
    bool dirty;  /* must be written */
    store_lane_settings settings;
    int64_t gauge[G_COUNT];
    uint64_t total[T_COUNT];
} lane_entry;

#define LANE_CACHE_INLINE 4

typedef struct lane_cache {
    store_txn *t;
    lane_entry inline_entries[LANE_CACHE_INLINE];
    lane_entry *entries;
    size_t n, cap;
} lane_cache;

void lane_cache_init(lane_cache *c, store_txn *t);
void lane_cache_release(lane_cache *c);

/* Finds or loads the lane. With create false an unknown lane gives
 * NOT_FOUND/NO_LANE; with create true it is made with default settings. */
HP_MUST_USE hp_code lane_cache_get(lane_cache *c, hp_str scope, hp_str lane,
                                   bool create, lane_entry **out,
                                   hp_status *st);

/* Writes every dirty entry back. */
HP_MUST_USE hp_code lane_cache_flush(lane_cache *c, hp_status *st);

HP_MUST_USE hp_code lane_decode(const void *p, size_t len, hp_str scope,
                                hp_str lane, lane_entry *e, hp_status *st);

/* ---- helpers shared by the operation files ------------------------------ */

/* The only place a const pointer becomes LMDB's void *. */
static inline MDB_val
store_val(const void *p, size_t len)
{
    MDB_val v;
    v.mv_size = len;
    v.mv_data = (void *)(uintptr_t)p;
    return v;
}

static inline MDB_val
key_val(const key *k)
{
    return store_val(k->b, k->len);
}

/* Translates an LMDB (or errno) return code. Calls the fatal hook on
 * MDB_PANIC and EIO. */
HP_MUST_USE hp_code store_status_from_mdb(store *s, int rc, hp_status *st);

/* out = dir/name; -1 when it does not fit in cap. */
int store_dir_file(char *out, size_t cap, const char *dir, const char *name);

/* Marks t failed and returns code: every operation's error exit. */
static inline hp_code
txn_fail(store_txn *t, hp_code code)
{
    if (code != HP_OK) {
        t->failed = true;
    }
    return code;
}

/* Records that (scope, lane) has n more claimable messages, for on_ready
 * and store_txn_take_ready. */
void txn_note_ready(store_txn *t, hp_str scope, hp_str lane, uint32_t n);

/* Records that message (scope, id) was delivered or dead-lettered in t, for
 * store_txn_take_settled (settled.c). */
void txn_note_settled(store_txn *t, hp_str scope, const hp_id *id);

/* Frees t's settle notes. */
void txn_settled_free(store_txn *t);

HP_MUST_USE hp_code check_scope(hp_str scope, hp_status *st);
HP_MUST_USE hp_code check_write(const store_txn *t, hp_status *st);
/* MAP_FULL when the map is at its ceiling and less than the reserve is
 * free: operations that add messages call it before writing. */
HP_MUST_USE hp_code check_room(store_txn *t, hp_status *st);

/* Reads and decodes a message into r (pointing into LMDB's map).
 * NOT_FOUND/NO_MESSAGE if absent. */
HP_MUST_USE hp_code msg_load(store_txn *t, hp_str scope, const hp_id *id,
                             record *r, hp_status *st);

/* Like msg_load but copies the record into s->scratch first, so r stays
 * valid across a put of the same key. */
HP_MUST_USE hp_code msg_load_copy(store_txn *t, hp_str scope, const hp_id *id,
                                  record *r, hp_status *st);

/* Writes r under (scope, id): msg_put over the record there (the log
 * gets the span that changed), msg_insert for a new message (either is
 * correct for both; this one skips looking for an old value). */
HP_MUST_USE hp_code msg_put(store_txn *t, hp_str scope, const hp_id *id,
                            const record *r, hp_status *st);
HP_MUST_USE hp_code msg_insert(store_txn *t, hp_str scope, const hp_id *id,
                               const record *r, hp_status *st);

/* mdb_get and mdb_cursor_get, counted in t->reads. */
int txn_get(store_txn *t, MDB_dbi db, MDB_val *k, MDB_val *v);
int txn_cursor_get(store_txn *t, MDB_cursor *cur, MDB_val *k, MDB_val *v,
                   MDB_cursor_op op);

HP_MUST_USE hp_code db_put(store_txn *t, MDB_dbi db, const key *k,
                           const void *v, size_t vlen, hp_status *st);
HP_MUST_USE hp_code db_put_empty(store_txn *t, MDB_dbi db, const key *k,
                                 hp_status *st);
/* Deletes k; a missing key is fine (idempotent maintenance). */
HP_MUST_USE hp_code db_del(store_txn *t, MDB_dbi db, const key *k,
                           hp_status *st);

/* Puts a ready message into both claim indexes, `ready` and `lane_ready`
 * (and the schedule index when not yet due), and counts it in its lane's
 * gauges. */
HP_MUST_USE hp_code msg_make_ready(store_txn *t, lane_entry *le, hp_str scope,
                                   const hp_id *id, record *r, uint64_t now_ms,
                                   hp_status *st);

/* Takes a ready message out of both claim indexes, the schedule index and
 * the gauges. */
HP_MUST_USE hp_code msg_unready(store_txn *t, lane_entry *le, hp_str scope,
                                const hp_id *id, record *r, uint64_t now_ms,
                                hp_status *st);

/* Requeue-or-dead after a failed attempt (nack, lease expiry). */
HP_MUST_USE hp_code msg_fail_attempt(store_txn *t, lane_entry *le, hp_str scope,
                                     const hp_id *id, record *r, hp_str error,
                                     uint64_t retry_at, uint64_t now_ms,
                                     hp_status *st);

/* Moves r to dead letters (state, dead index, gauges). */
HP_MUST_USE hp_code msg_make_dead(store_txn *t, lane_entry *le, hp_str scope,
                                  const hp_id *id, record *r, uint64_t now_ms,
                                  hp_status *st);

/* Lane backoff delay for the attempt that just failed. */
uint64_t backoff_delay_ms(store *s, const store_lane_settings *ls,
                          uint32_t attempt);

/* The 16 bytes a dedupe key is filed under: XXH3-128, or the test hook. */
void store_dedupe_hash(const store *s, hp_str k, uint8_t out[16]);

/* fsyncs the directory holding path, so that a file created or renamed
 * there survives a power cut; 0 or -1 with errno. */
int store_sync_parent(const char *path);
/* The errno of a directory sync the file system does not do. */
bool dir_sync_unsupported(int err);

/* Decodes and verifies a replay-cache value (layout in replies.c).
 * DATA_LOSS/CORRUPT_RECORD when it is damaged. */
HP_MUST_USE hp_code reply_decode(const void *p, size_t len, uint32_t *tag,
                                 uint64_t *expires, const void **data,
                                 size_t *data_len, hp_status *st);

/* Validates drafts without writing: ack and nack check their follow-ups
 * with it before their first write. With a label ("draft", "follow-up")
 * a failure's message starts "LABEL N: " to say which one failed. */
HP_MUST_USE hp_code check_drafts(const store *s, const char *label,
                                 const store_draft *drafts, size_t n,
                                 uint64_t now_ms, hp_status *st);

/* ---- state events (events.c) ------------------------------------------ */

/* Notes the state event of a transition of r (id in scope) if r carries a
 * state_webhook_url; nothing otherwise. Copies what it needs, so r may
 * change after. The event is written by event_flush at the end of the
 * operation, in the same transaction. RESOURCE_EXHAUSTED/NO_MEMORY. */
HP_MUST_USE hp_code event_note(store_txn *t, hp_str scope, const hp_id *id,
                               const record *r, store_event_kind kind,
                               uint64_t now_ms, hp_status *st);

/* Ends an operation that returned code: on HP_OK enqueues the events it
 * noted into their scopes' events lanes (STORE_EVENTS_LANE), past the map
 * reserve (a transition must not fail for want of room for its events);
 * otherwise drops them. Returns code, or the enqueue's failure. Every
 * public operation that moves messages ends through it. */
HP_MUST_USE hp_code event_flush(store_txn *t, hp_code code, uint64_t now_ms,
                                hp_status *st);

/* Frees t's event notes. */
void txn_events_free(store_txn *t);

/* Enqueues one draft that the store made itself (an event): no checks, no
 * dedupe, no map reserve. */
HP_MUST_USE hp_code enqueue_internal(store_txn *t, hp_str scope,
                                     const store_draft *d, uint64_t now_ms,
                                     hp_id *id, hp_status *st);

/* Validates and enqueues drafts (shared by enqueue, ack and nack). */
HP_MUST_USE hp_code enqueue_drafts(store_txn *t, hp_str scope,
                                   const store_draft *drafts, size_t n,
                                   uint64_t now_ms, store_enqueued *out,
                                   hp_status *st);

/* store_message_weight of the message r would export as. */
size_t record_weight(const record *r, bool with_body);

/* Copies a record into a store_message in the arena. */
HP_MUST_USE hp_code msg_export(const record *r, const hp_id *id,
                               uint64_t now_ms, bool with_body, hp_arena *arena,
                               store_message *out, hp_status *st);

/* ---- the claim indexes (ready.c) ----------------------------------------- */

/* A walk over the due keys under one prefix of `ready` (N scope | N lane |
 * N target) or `lane_ready` (N scope | N lane) in claim order: both end in
 * u8 priority | u64 available_at | id. A key not yet due ends its priority
 * (every later key there is later still), so delayed messages cost at most
 * one seek per priority. */
typedef struct ready_walk {
    store_txn *t;
    MDB_cursor *cur;
    key prefix;
    uint64_t now;
    bool live; /* on a due key, whose fields follow */
    uint8_t priority;
    uint64_t available_at;
    hp_id id;
} ready_walk;

HP_MUST_USE hp_code ready_walk_open(store_txn *t, MDB_dbi db, const key *prefix,
                                    uint64_t now_ms, ready_walk *w,
                                    hp_status *st);
void ready_walk_close(ready_walk *w);
/* Moves to the first due key at priority >= from; live is false if none. */
HP_MUST_USE hp_code ready_walk_seek(ready_walk *w, unsigned from,
                                    hp_status *st);
/* Moves past the current key to the next due one in claim order. */
HP_MUST_USE hp_code ready_walk_next(ready_walk *w, hp_status *st);

/* The oldest available_at among a lane's due messages (UINT64_MAX if none
 * is due): one seek per priority in lane_ready. */
HP_MUST_USE hp_code ready_oldest_due(store_txn *t, hp_str scope, hp_str lane,
                                     uint64_t now_ms, uint64_t *oldest_due,
                                     hp_status *st);

/* A page of the lane's targets that have ready messages, in `ready` key
 * order, into out (targets and their next cursor, in the arena). */
HP_MUST_USE hp_code ready_targets(store_txn *t, hp_str scope, hp_str lane,
                                  const store_targets_req *req, hp_arena *arena,
                                  store_lane_stats *out, hp_status *st);

/* ---- upgrades (migrate.c) ------------------------------------------------ */

/* Brings a store of schema `from` (or one whose upgrade was cut short) up
 * to STORE_SCHEMA_VERSION in bounded transactions; no transaction may be
 * alive. */
HP_MUST_USE hp_code store_upgrade(store *s, hp_status *st);

/* Deletes the reply entry an expiry key (kind EXPIRY_REPLY) points at, if
 * it still expires at that time. */
HP_MUST_USE hp_code reply_prune_one(store_txn *t, const key *k, hp_status *st);

/* Batch size check shared by every operation. */
HP_MUST_USE hp_code check_limit(const store *s, uint64_t n, const char *what,
                                hp_status *st);

#endif
