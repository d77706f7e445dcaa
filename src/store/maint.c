/*
 * maint.c - the time-driven steps: lease expiry, promotion of delayed
 * messages, retention and dedupe pruning. Each walks a time-ordered index
 * from its start, takes at most `limit` entries that are due, and copies
 * their keys out before changing anything, so no cursor is used across its
 * own deletes. A damaged record met here is skipped (its index entry is
 * dropped) rather than failing the step, so maintenance can never get stuck
 * behind one bad record; get() still reports it as DATA_LOSS.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "store/store_int.h"

#define LEASE_EXPIRED_TEXT "lease expired"
#define MAINT_LIMIT_MAX    4096

typedef struct due_entry {
    key k;
} due_entry;

typedef struct due_list {
    due_entry *e;
    size_t n;
    bool more;
} due_list;

/* Puts cur on the first key of its index that starts with kind (-1: on
 * the first key); LMDB's code, MDB_NOTFOUND for none. */
static int
seek_kind(store_txn *t, MDB_cursor *cur, int kind, MDB_val *kv, MDB_val *v)
{
    uint8_t start[1];

    if (kind < 0) {
        return txn_cursor_get(t, cur, kv, v, MDB_FIRST);
    }
    start[0] = (uint8_t)kind;
    *kv = store_val(start, 1);
    return txn_cursor_get(t, cur, kv, v, MDB_SET_RANGE);
}

/* Copies up to limit keys of db that start with the optional one-byte kind
 * and whose big-endian time (right after the kind) is <= now. */
static hp_code
collect_due(store_txn *t, MDB_dbi db, int kind, uint64_t now_ms, uint32_t limit,
            due_list *out, hp_status *st)
{
    MDB_cursor *cur;
    MDB_val kv, v;
    size_t toff = kind >= 0 ? 1 : 0;
    int rc;

    out->n = 0;
    out->more = false;
    out->e = malloc((size_t)limit * sizeof(due_entry));
    if (out->e == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    if ((rc = mdb_cursor_open(t->mdb, db, &cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    for (rc = seek_kind(t, cur, kind, &kv, &v); rc == 0;
         rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT)) {
        const uint8_t *b = kv.mv_data;
        if (kv.mv_size < toff + 8 || kv.mv_size > KEY_MAX ||
            (kind >= 0 && b[0] != kind) || hp_get_u64(b + toff) > now_ms) {
            break;
        }
        if (out->n == limit) {
            out->more = true;
            break;
        }
        due_entry *e = &out->e[out->n++];
        memcpy(e->k.b, b, kv.mv_size);
        e->k.len = kv.mv_size;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return store_status_from_mdb(t->s, rc, st);
    }
    return HP_OK;
}

static bool
is_data_loss(hp_code code)
{
    return code == HP_DATA_LOSS;
}

typedef hp_code (*due_fn)(store_txn *t, lane_cache *c, const key *k,
                          uint64_t now_ms, hp_status *st);

/* The common frame of every step: collect, handle each, drop each index
 * entry, flush the lanes. */
static hp_code
run_step(store_txn *t, MDB_dbi db, int kind, uint64_t now_ms, uint32_t limit,
         due_fn fn, store_step_res *res, hp_status *st)
{
    due_list due = { NULL, 0, false };
    lane_cache c;
    hp_code code;

    res->done = 0;
    res->more = false;
    if ((code = check_write(t, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    if (limit == 0) {
        return HP_OK;
    }
    if (limit > MAINT_LIMIT_MAX) {
        limit = MAINT_LIMIT_MAX; /* keeps the copied keys to about 1 MiB */
    }
    if ((code = collect_due(t, db, kind, now_ms, limit, &due, st)) != HP_OK) {
        free(due.e);
        return txn_fail(t, code);
    }
    lane_cache_init(&c, t);
    for (size_t i = 0; i < due.n; i++) {
        code = fn(t, &c, &due.e[i].k, now_ms, st);
        if (code != HP_OK && !is_data_loss(code)) {
            goto release;
        }
        if ((code = db_del(t, db, &due.e[i].k, st)) != HP_OK) {
            goto release;
        }
        res->done++;
    }
    res->more = due.more;
    code = lane_cache_flush(&c, st);
release:
    lane_cache_release(&c);
    free(due.e);
    return txn_fail(t, code);
}

static hp_code
malformed(hp_status *st)
{
    return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                         "maintenance index holds a malformed key");
}

/* A message that a lease or schedule entry names, as of the entry. */
typedef struct timed {
    uint64_t at; /* the time in the entry's key */
    hp_str scope;
    hp_id id;
    record r; /* a copy, to change and put back */
    lane_entry *le;
} timed;

/* Loads the message that entry k names into *e with its lane, when
 * still(e) says the entry still holds for it; *live false for a stale
 * entry (the message gone, or moved on since), which the step skips. */
static hp_code
load_timed(store_txn *t, lane_cache *c, const key *k,
           bool (*still)(const timed *e), timed *e, bool *live, hp_status *st)
{
    hp_code code;

    *live = false;
    if (key_parse_timed(k->b, k->len, &e->at, &e->scope, &e->id) != 0) {
        return malformed(st);
    }
    if ((code = msg_load_copy(t, e->scope, &e->id, &e->r, st)) != HP_OK) {
        return code == HP_NOT_FOUND ? HP_OK : code;
    }
    if (!still(e)) {
        return HP_OK;
    }
    *live = true;
    return lane_cache_get(c, e->scope, e->r.lane, true, &e->le, st);
}

/* Nothing else holds this lease: not acked, nacked or extended. */
static bool
lease_held(const timed *e)
{
    return e->r.state == STORE_STATE_CLAIMED && e->r.lease_expires_at == e->at;
}

static hp_code
expire_one(store_txn *t, lane_cache *c, const key *k, uint64_t now_ms,
           hp_status *st)
{
    timed e;
    bool live;
    hp_code code;

    if ((code = load_timed(t, c, k, lease_held, &e, &live, st)) != HP_OK ||
        !live) {
        return code;
    }
    e.le->total[T_EXPIRED]++;
    /* retry_at 0 keeps available_at: the message goes back to its place in
     * claim order, claimable at once, like an SQS visibility timeout. */
    if ((code = msg_fail_attempt(t, e.le, e.scope, &e.id, &e.r,
                                 HP_S(LEASE_EXPIRED_TEXT), 0, now_ms, st)) !=
        HP_OK) {
        return code;
    }
    return msg_put(t, e.scope, &e.id, &e.r, st);
}

/* Still delayed until this very time: not promoted, claimed or moved. */
static bool
still_scheduled(const timed *e)
{
    return e->r.state == STORE_STATE_PENDING &&
           (e->r.flags & REC_F_SCHEDULED) != 0 && e->r.available_at == e->at;
}

static hp_code
promote_one(store_txn *t, lane_cache *c, const key *k, uint64_t now_ms,
            hp_status *st)
{
    timed e;
    bool live;
    hp_code code;
    (void)now_ms;

    if ((code = load_timed(t, c, k, still_scheduled, &e, &live, st)) != HP_OK ||
        !live) {
        return code;
    }
    e.r.flags &= (uint8_t)~REC_F_SCHEDULED;
    e.le->gauge[G_DELAYED]--;
    e.le->gauge[G_PENDING]++;
    e.le->dirty = true;
    if (!e.le->settings.paused) {
        txn_note_ready(t, e.scope, e.r.lane, 1);
    }
    return msg_put(t, e.scope, &e.id, &e.r, st);
}

static hp_code
prune_delivered_one(store_txn *t, lane_cache *c, const key *k, uint64_t now_ms,
                    hp_status *st)
{
    key_reader rd;
    uint8_t kind;
    uint64_t at;
    hp_str scope;
    hp_id id;
    record r;
    lane_entry *le;
    key mk;
    hp_code code;
    (void)now_ms;

    key_reader_init(&rd, k->b, k->len);
    if (key_read_u8(&rd, &kind) != 0 || key_read_u64(&rd, &at) != 0 ||
        key_read_name(&rd, &scope) != 0 || key_read_id(&rd, &id) != 0 ||
        key_reader_done(&rd) != 0) {
        return malformed(st);
    }
    if ((code = msg_load(t, scope, &id, &r, st)) != HP_OK) {
        return code == HP_NOT_FOUND ? HP_OK : code;
    }
    if (r.state != STORE_STATE_DELIVERED) {
        return HP_OK;
    }
    if ((code = lane_cache_get(c, scope, r.lane, true, &le, st)) != HP_OK) {
        return code;
    }
    le->gauge[G_DELIVERED]--;
    le->dirty = true;
    key_message(&mk, scope, &id);
    return db_del(t, t->s->db_messages, &mk, st);
}

static hp_code
prune_dedupe_one(store_txn *t, lane_cache *c, const key *k, uint64_t now_ms,
                 hp_status *st)
{
    key_reader rd;
    uint8_t kind, seq;
    uint64_t at, exp;
    hp_str scope, lane;
    const uint8_t *hash, *full;
    size_t full_len;
    hp_id id;
    key dk;
    MDB_val kv, v;
    (void)c;
    (void)now_ms;

    key_reader_init(&rd, k->b, k->len);
    if (key_read_u8(&rd, &kind) != 0 || key_read_u64(&rd, &at) != 0 ||
        key_read_name(&rd, &scope) != 0 || key_read_name(&rd, &lane) != 0 ||
        key_read_bytes(&rd, 16, &hash) != 0 || key_read_u8(&rd, &seq) != 0 ||
        key_reader_done(&rd) != 0) {
        return malformed(st);
    }
    key_dedupe_prefix(&dk, scope, lane, hash);
    key_put_u8(&dk, seq);
    kv = key_val(&dk);
    int rc = txn_get(t, t->s->db_dedupe, &kv, &v);
    if (rc == MDB_NOTFOUND) {
        return HP_OK;
    }
    if (rc != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    hp_code code = dedupe_entry_decode(v.mv_data, v.mv_size, &id, &exp, &full,
                                       &full_len, st);
    if (code == HP_OK && exp != at) {
        return HP_OK; /* the slot was reused by a later enqueue */
    }
    /* Expired, or damaged beyond use: either way it must go. */
    return db_del(t, t->s->db_dedupe, &dk, st);
}

static hp_code
prune_reply_one(store_txn *t, lane_cache *c, const key *k, uint64_t now_ms,
                hp_status *st)
{
    (void)c;
    (void)now_ms;
    return reply_prune_one(t, k, st);
}

/* The steps: the index each walks (a field of struct store), the kind of
 * entry it takes there (-1: every entry) and what it does with one. */
typedef struct step_def {
    size_t db;
    int kind;
    due_fn fn;
} step_def;

static const step_def steps[STORE_STEP_COUNT] = {
    [STORE_STEP_EXPIRE_LEASES] = { offsetof(store, db_leases), -1, expire_one },
    [STORE_STEP_PROMOTE_DUE] = { offsetof(store, db_schedule), -1,
                                 promote_one },
    [STORE_STEP_PRUNE_DELIVERED] = { offsetof(store, db_expiry),
                                     EXPIRY_RETENTION, prune_delivered_one },
    [STORE_STEP_PRUNE_DEDUPE] = { offsetof(store, db_expiry), EXPIRY_DEDUPE,
                                  prune_dedupe_one },
    [STORE_STEP_PRUNE_REPLIES] = { offsetof(store, db_expiry), EXPIRY_REPLY,
                                   prune_reply_one },
};

static MDB_dbi
step_db(const store *s, const step_def *d)
{
    MDB_dbi db;
    memcpy(&db, (const char *)s + d->db, sizeof(db));
    return db;
}

hp_code
store_maint_step(store_txn *t, store_step step, uint64_t now_ms, uint32_t limit,
                 store_step_res *res, hp_status *st)
{
    HP_ASSERT((unsigned)step < STORE_STEP_COUNT);
    const step_def *d = &steps[step];
    hp_code code =
        run_step(t, step_db(t->s, d), d->kind, now_ms, limit, d->fn, res, st);
    return event_flush(t, code, now_ms, st);
}

/* First time in db (after the optional kind byte), or UINT64_MAX. */
static hp_code
first_time(store_txn *t, MDB_dbi db, int kind, uint64_t *at, hp_status *st)
{
    MDB_cursor *cur;
    MDB_val kv, v;
    size_t toff = kind >= 0 ? 1 : 0;
    int rc;

    *at = UINT64_MAX;
    if ((rc = mdb_cursor_open(t->mdb, db, &cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    rc = seek_kind(t, cur, kind, &kv, &v);
    if (rc == 0 && kv.mv_size >= toff + 8 &&
        (kind < 0 || ((const uint8_t *)kv.mv_data)[0] == kind)) {
        *at = hp_get_u64((const uint8_t *)kv.mv_data + toff);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return store_status_from_mdb(t->s, rc, st);
    }
    return HP_OK;
}

hp_code
store_next_due(store_txn *t, uint64_t *at_ms, hp_status *st)
{
    *at_ms = UINT64_MAX;
    for (size_t i = 0; i < HP_ARRAY_LEN(steps); i++) {
        uint64_t at;
        hp_code code =
            first_time(t, step_db(t->s, &steps[i]), steps[i].kind, &at, st);
        if (code != HP_OK) {
            return code;
        }
        if (at < *at_ms) {
            *at_ms = at;
        }
    }
    return HP_OK;
}
