/*
 * check.c - store_check: the store's tables must agree with each other.
 *
 * Every operation keeps a message record, its index entries and its lane's
 * gauges in step inside one transaction (msg.c), so after any crash or
 * power loss that LMDB survives they still agree. This walk proves it, in
 * three passes over one snapshot:
 *
 *   1. lanes: every lane record decodes; kept in memory, in key order, with
 *      a tally of the states seen in pass 2.
 *   2. messages: every record decodes; its lane exists; a pending message
 *      has its ready and lane_ready entries (and its schedule entry when
 *      delayed), a claimed one its lease entry, a dead one its dead entry.
 *   3. indexes: every ready, lane_ready, lease, schedule, dead, expiry,
 *      dedupe and replay entry points at what it names, in the state and
 *      at the time it says.
 *
 * Then the tallies must equal the lanes' gauges, and the counts close the
 * directions a lookup cannot: one retention entry per delivered message,
 * one dedupe expiry per dedupe entry. Pass 3 may meet a dedupe entry whose
 * message is gone: that is no fault, a delivered message is pruned after
 * its retention while its key still holds the dedupe window.
 */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "store/store_int.h"

#define CORRUPT(st, ...) \
    hp_status_set((st), HP_DATA_LOSS, HP_R_CORRUPT_RECORD, __VA_ARGS__)

typedef struct lane_tally {
    key k; /* N scope | N lane, as in `lanes` */
    lane_entry e;
    uint64_t seen[G_COUNT];
    uint64_t messages;
} lane_tally;

typedef struct checker {
    store_txn *t;
    store_check_res *res;
    lane_tally *lanes; /* in LMDB's key order */
    size_t n_lanes, cap_lanes;
    uint64_t retention_entries;
    uint64_t dedupe_expiries;
} checker;

/* What a failed entry check names: "ready entry of message 01H... in scope
 * 'default'". */
typedef struct subject {
    const char *what;
    char id[HP_ID_TEXT_LEN + 1];
    hp_str scope;
} subject;

static subject
subject_of(const char *what, hp_str scope, const hp_id *id)
{
    subject s;
    s.what = what;
    s.scope = scope;
    hp_id_format(id, s.id);
    return s;
}

/* LMDB's default order: bytes, then the shorter key first. */
static int
key_order(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static lane_tally *
find_lane(checker *c, hp_str scope, hp_str lane)
{
    key k;
    size_t lo = 0, hi = c->n_lanes;

    key_lane(&k, scope, lane);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        lane_tally *l = &c->lanes[mid];
        int cmp = key_order(k.b, k.len, l->k.b, l->k.len);
        if (cmp == 0) {
            return l;
        }
        if (cmp < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

static bool
entry_exists(checker *c, MDB_dbi db, const key *k, hp_code *code, hp_status *st)
{
    MDB_val kv = key_val(k), v;
    int rc = txn_get(c->t, db, &kv, &v);
    *code = HP_OK;
    if (rc != 0 && rc != MDB_NOTFOUND) {
        *code = store_status_from_mdb(c->t->s, rc, st);
    }
    return rc == 0;
}

/* Loads the record an index entry points at; DATA_LOSS when it is gone. */
static hp_code
load_target(checker *c, const subject *sj, const hp_id *id, record *r,
            hp_status *st)
{
    hp_code code = msg_load(c->t, sj->scope, id, r, st);
    if (code == HP_NOT_FOUND) {
        return CORRUPT(st,
                       "%s of message %s in scope '%.*s' has no message "
                       "record",
                       sj->what, sj->id, (int)sj->scope.len, sj->scope.p);
    }
    return code;
}

static hp_code
wrong(hp_status *st, const subject *sj, const char *why)
{
    return CORRUPT(st,
                   "%s of message %s in scope '%.*s' disagrees with its "
                   "record: %s",
                   sj->what, sj->id, (int)sj->scope.len, sj->scope.p, why);
}

static hp_code
malformed(hp_status *st, const char *db)
{
    return CORRUPT(st, "table '%s' holds a malformed key", db);
}

/* Walks db from its first key, calling fn on each entry. */
typedef hp_code (*entry_fn)(checker *c, const MDB_val *k, const MDB_val *v,
                            hp_status *st);

static hp_code
walk(checker *c, MDB_dbi db, entry_fn fn, hp_status *st)
{
    MDB_cursor *cur;
    MDB_val k, v;
    hp_code code = HP_OK;
    int rc;

    if ((rc = mdb_cursor_open(c->t->mdb, db, &cur)) != 0) {
        return store_status_from_mdb(c->t->s, rc, st);
    }
    for (rc = txn_cursor_get(c->t, cur, &k, &v, MDB_FIRST); rc == 0;
         rc = txn_cursor_get(c->t, cur, &k, &v, MDB_NEXT)) {
        if ((code = fn(c, &k, &v, st)) != HP_OK) {
            goto close_cursor;
        }
    }
    if (rc != MDB_NOTFOUND) {
        code = store_status_from_mdb(c->t->s, rc, st);
    }
close_cursor:
    mdb_cursor_close(cur);
    return code;
}

static bool
valid_names(hp_str scope, hp_str lane)
{
    return hp_name_valid(scope.p, scope.len) && hp_name_valid(lane.p, lane.len);
}

/* ---- pass 1: lanes -------------------------------------------------------
 */

static hp_code
take_lane(checker *c, const MDB_val *k, const MDB_val *v, hp_status *st)
{
    key_reader rd;
    hp_str scope, lane;

    key_reader_init(&rd, k->mv_data, k->mv_size);
    if (key_read_name(&rd, &scope) != 0 || key_read_name(&rd, &lane) != 0 ||
        key_reader_done(&rd) != 0 || !valid_names(scope, lane)) {
        return malformed(st, "lanes");
    }
    if (c->n_lanes == c->cap_lanes) {
        size_t cap = c->cap_lanes ? c->cap_lanes * 2 : 16;
        lane_tally *n = realloc(c->lanes, cap * sizeof(*n));
        if (n == NULL) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        }
        c->lanes = n;
        c->cap_lanes = cap;
    }
    lane_tally *l = &c->lanes[c->n_lanes];
    memset(l, 0, sizeof(*l));
    key_lane(&l->k, scope, lane);
    hp_code code = lane_decode(v->mv_data, v->mv_size, scope, lane, &l->e, st);
    if (code != HP_OK) {
        return code;
    }
    c->n_lanes++;
    return HP_OK;
}

/* ---- pass 2: messages ----------------------------------------------------
 */

static hp_code
need_entry(checker *c, MDB_dbi db, const key *k, const subject *sj,
           const char *state, hp_status *st)
{
    hp_code code;
    if (entry_exists(c, db, k, &code, st)) {
        return HP_OK;
    }
    if (code != HP_OK) {
        return code;
    }
    return CORRUPT(st, "message %s in scope '%.*s' is %s but has no %s", sj->id,
                   (int)sj->scope.len, sj->scope.p, state, sj->what);
}

/* A pending message has one key in each claim index, and a delayed one a
 * schedule entry too. */
static hp_code
check_ready_indexes(checker *c, hp_str scope, const hp_id *id, const record *r,
                    lane_tally *l, hp_status *st)
{
    store *s = c->t->s;
    bool delayed = (r->flags & REC_F_SCHEDULED) != 0;
    const char *state = delayed ? "delayed" : "pending";
    key k;
    hp_code code;

    l->seen[delayed ? G_DELAYED : G_PENDING]++;
    subject sj = subject_of("ready entry", scope, id);
    key_ready(&k, scope, r->lane, r->target, r->priority, r->available_at, id);
    if ((code = need_entry(c, s->db_ready, &k, &sj, state, st)) != HP_OK) {
        return code;
    }
    sj.what = "lane_ready entry";
    key_lane_ready(&k, scope, r->lane, r->priority, r->available_at, id);
    if ((code = need_entry(c, s->db_lane_ready, &k, &sj, state, st)) != HP_OK ||
        !delayed) {
        return code;
    }
    sj.what = "schedule entry";
    key_schedule(&k, r->available_at, scope, id);
    return need_entry(c, s->db_schedule, &k, &sj, state, st);
}

static hp_code
check_message_indexes(checker *c, hp_str scope, const hp_id *id,
                      const record *r, lane_tally *l, hp_status *st)
{
    store *s = c->t->s;
    key k;
    subject sj;

    switch ((store_state)r->state) {
    case STORE_STATE_PENDING:
        return check_ready_indexes(c, scope, id, r, l, st);
    case STORE_STATE_CLAIMED:
        l->seen[G_CLAIMED]++;
        sj = subject_of("lease entry", scope, id);
        key_lease(&k, r->lease_expires_at, scope, id);
        return need_entry(c, s->db_leases, &k, &sj, "claimed", st);
    case STORE_STATE_DELIVERED:
        l->seen[G_DELIVERED]++;
        return HP_OK; /* its retention entry is counted in pass 3 */
    case STORE_STATE_DEAD:
        l->seen[G_DEAD]++;
        sj = subject_of("dead-letter entry", scope, id);
        key_dead(&k, scope, r->lane, r->finished_at, id);
        return need_entry(c, s->db_dead, &k, &sj, "dead", st);
    case STORE_STATE_ANY:
    case STORE_STATE_DELAYED:
        break;
    }
    return CORRUPT(st, "message record holds state %u", r->state);
}

static hp_code
take_message(checker *c, const MDB_val *k, const MDB_val *v, hp_status *st)
{
    key_reader rd;
    hp_str scope;
    hp_id id;
    record r;
    hp_code code;

    key_reader_init(&rd, k->mv_data, k->mv_size);
    if (key_read_name(&rd, &scope) != 0 || key_read_id(&rd, &id) != 0 ||
        key_reader_done(&rd) != 0 || !hp_name_valid(scope.p, scope.len)) {
        return malformed(st, "messages");
    }
    if ((code = record_decode(v->mv_data, v->mv_size, &id, &r, st)) != HP_OK) {
        return code;
    }
    char text[HP_ID_TEXT_LEN + 1];
    hp_id_format(&id, text);
    /* The checksum held, so only a bug could have written a bad name; the
     * key builders below would stop the process on one. */
    if (!hp_name_valid(r.lane.p, r.lane.len) ||
        (r.target.len > 0 && !hp_name_valid(r.target.p, r.target.len))) {
        return CORRUPT(st,
                       "message %s in scope '%.*s' holds a malformed lane or "
                       "target name",
                       text, (int)scope.len, scope.p);
    }
    lane_tally *l = find_lane(c, scope, r.lane);
    if (l == NULL) {
        return CORRUPT(st,
                       "message %s in scope '%.*s' names lane '%.*s', which "
                       "has no lane record",
                       text, (int)scope.len, scope.p, (int)r.lane.len,
                       r.lane.p);
    }
    l->messages++;
    c->res->messages++;
    return check_message_indexes(c, scope, &id, &r, l, st);
}

/* ---- pass 3: indexes -----------------------------------------------------
 */

/* A ready or lane_ready entry must name a pending message of its lane
 * (and target, for `ready`) at its priority and time. */
static hp_code
ready_entry_agrees(checker *c, const subject *sj, const hp_id *id, hp_str lane,
                   const hp_str *target, uint8_t priority, uint64_t at,
                   hp_status *st)
{
    record r;
    hp_code code = load_target(c, sj, id, &r, st);
    if (code != HP_OK) {
        return code;
    }
    c->res->index_entries++;
    if (r.state != STORE_STATE_PENDING) {
        return wrong(st, sj, store_state_name((store_state)r.state));
    }
    if (!hp_str_eq(r.lane, lane) ||
        (target != NULL && !hp_str_eq(r.target, *target))) {
        return wrong(st, sj, "another lane or target");
    }
    if (r.priority != priority || r.available_at != at) {
        return wrong(st, sj, "another priority or available_at");
    }
    return HP_OK;
}

static hp_code
take_ready(checker *c, const MDB_val *k, const MDB_val *v, hp_status *st)
{
    ready_key rk;
    (void)v;

    if (key_parse_ready(k->mv_data, k->mv_size, &rk) != 0 ||
        !valid_names(rk.scope, rk.lane) ||
        (rk.target.len > 0 && !hp_name_valid(rk.target.p, rk.target.len))) {
        return malformed(st, "ready");
    }
    subject sj = subject_of("ready entry", rk.scope, &rk.id);
    return ready_entry_agrees(c, &sj, &rk.id, rk.lane, &rk.target, rk.priority,
                              rk.available_at, st);
}

/* leases and schedule share one key shape, at | N scope | id: parses it
 * and loads the message it names. */
static hp_code
load_timed(checker *c, const MDB_val *k, const char *db, const char *what,
           uint64_t *at, subject *sj, record *r, hp_status *st)
{
    hp_str scope;
    hp_id id;

    if (key_parse_timed(k->mv_data, k->mv_size, at, &scope, &id) != 0) {
        return malformed(st, db);
    }
    *sj = subject_of(what, scope, &id);
    c->res->index_entries++;
    return load_target(c, sj, &id, r, st);
}

static hp_code
take_lane_ready(checker *c, const MDB_val *k, const MDB_val *v, hp_status *st)
{
    key_reader rd;
    hp_str scope, lane;
    uint8_t priority;
    uint64_t at;
    hp_id id;
    (void)v;

    key_reader_init(&rd, k->mv_data, k->mv_size);
    if (key_read_name(&rd, &scope) != 0 || key_read_name(&rd, &lane) != 0 ||
        key_read_u8(&rd, &priority) != 0 || key_read_u64(&rd, &at) != 0 ||
        key_read_id(&rd, &id) != 0 || key_reader_done(&rd) != 0 ||
        !valid_names(scope, lane)) {
        return malformed(st, "lane_ready");
    }
    subject sj = subject_of("lane_ready entry", scope, &id);
    return ready_entry_agrees(c, &sj, &id, lane, NULL, priority, at, st);
}

static hp_code
take_lease(checker *c, const MDB_val *k, const MDB_val *v, hp_status *st)
{
    uint64_t at;
    subject sj;
    record r;
    (void)v;

    hp_code code = load_timed(c, k, "leases", "lease entry", &at, &sj, &r, st);
    if (code != HP_OK) {
        return code;
    }
    if (r.state != STORE_STATE_CLAIMED) {
        return wrong(st, &sj, store_state_name((store_state)r.state));
    }
    return r.lease_expires_at == at ? HP_OK
                                    : wrong(st, &sj, "another lease end");
}

static hp_code
take_schedule(checker *c, const MDB_val *k, const MDB_val *v, hp_status *st)
{
    uint64_t at;
    subject sj;
    record r;
    (void)v;

    hp_code code =
        load_timed(c, k, "schedule", "schedule entry", &at, &sj, &r, st);
    if (code != HP_OK) {
        return code;
    }
    if (r.state != STORE_STATE_PENDING || !(r.flags & REC_F_SCHEDULED)) {
        return wrong(st, &sj, "not a delayed message");
    }
    return r.available_at == at ? HP_OK
                                : wrong(st, &sj, "another available_at");
}

static hp_code
take_dead(checker *c, const MDB_val *k, const MDB_val *v, hp_status *st)
{
    key_reader rd;
    hp_str scope, lane;
    uint64_t at;
    hp_id id;
    record r;
    (void)v;

    key_reader_init(&rd, k->mv_data, k->mv_size);
    if (key_read_name(&rd, &scope) != 0 || key_read_name(&rd, &lane) != 0 ||
        key_read_u64(&rd, &at) != 0 || key_read_id(&rd, &id) != 0 ||
        key_reader_done(&rd) != 0 || !valid_names(scope, lane)) {
        return malformed(st, "dead");
    }
    subject sj = subject_of("dead-letter entry", scope, &id);
    hp_code code = load_target(c, &sj, &id, &r, st);
    if (code != HP_OK) {
        return code;
    }
    c->res->index_entries++;
    if (r.state != STORE_STATE_DEAD) {
        return wrong(st, &sj, store_state_name((store_state)r.state));
    }
    if (!hp_str_eq(r.lane, lane) || r.finished_at != at) {
        return wrong(st, &sj, "another lane or time of death");
    }
    return HP_OK;
}

static hp_code
expiry_retention(checker *c, key_reader *rd, uint64_t at, hp_str scope,
                 hp_status *st)
{
    hp_id id;
    record r;

    if (key_read_id(rd, &id) != 0 || key_reader_done(rd) != 0) {
        return malformed(st, "expiry");
    }
    subject sj = subject_of("retention entry", scope, &id);
    hp_code code = load_target(c, &sj, &id, &r, st);
    if (code != HP_OK) {
        return code;
    }
    if (r.state != STORE_STATE_DELIVERED) {
        return wrong(st, &sj, store_state_name((store_state)r.state));
    }
    if (r.finished_at > at) {
        return wrong(st, &sj, "it expires before it was delivered");
    }
    c->retention_entries++;
    return HP_OK;
}

static hp_code
expiry_dedupe(checker *c, key_reader *rd, uint64_t at, hp_str scope,
              hp_status *st)
{
    hp_str lane;
    const uint8_t *hash;
    uint8_t seq;
    key k;
    MDB_val kv, v;
    hp_id id;
    uint64_t expires;
    const uint8_t *full;
    size_t full_len;

    if (key_read_name(rd, &lane) != 0 || key_read_bytes(rd, 16, &hash) != 0 ||
        key_read_u8(rd, &seq) != 0 || key_reader_done(rd) != 0 ||
        !valid_names(scope, lane)) {
        return malformed(st, "expiry");
    }
    key_dedupe_prefix(&k, scope, lane, hash);
    key_put_u8(&k, seq);
    kv = key_val(&k);
    int rc = txn_get(c->t, c->t->s->db_dedupe, &kv, &v);
    if (rc == MDB_NOTFOUND) {
        return CORRUPT(st,
                       "dedupe expiry entry in lane '%.*s' of scope '%.*s' "
                       "has no dedupe entry",
                       (int)lane.len, lane.p, (int)scope.len, scope.p);
    }
    if (rc != 0) {
        return store_status_from_mdb(c->t->s, rc, st);
    }
    hp_code code = dedupe_entry_decode(v.mv_data, v.mv_size, &id, &expires,
                                       &full, &full_len, st);
    if (code != HP_OK) {
        return code;
    }
    if (expires != at) {
        return CORRUPT(st,
                       "dedupe expiry entry in lane '%.*s' of scope '%.*s' "
                       "and its dedupe entry expire at different times",
                       (int)lane.len, lane.p, (int)scope.len, scope.p);
    }
    c->dedupe_expiries++;
    return HP_OK;
}

static hp_code
expiry_reply(checker *c, key_reader *rd, uint64_t at, hp_str scope,
             hp_status *st)
{
    const uint8_t *rid;
    size_t n = rd->len - rd->off;
    key k;
    MDB_val kv, v;
    uint32_t tag;
    uint64_t expires;
    const void *data;
    size_t len;

    if (n == 0 || n > STORE_REQUEST_ID_MAX ||
        key_read_bytes(rd, n, &rid) != 0) {
        return malformed(st, "expiry");
    }
    hp_str request_id = { (const char *)rid, n };
    key_reply(&k, scope, request_id);
    kv = key_val(&k);
    int rc = txn_get(c->t, c->t->s->db_replies, &kv, &v);
    if (rc == MDB_NOTFOUND) {
        return CORRUPT(st,
                       "reply expiry entry of request '%.*s' in scope '%.*s' "
                       "has no replay entry",
                       (int)n, request_id.p, (int)scope.len, scope.p);
    }
    if (rc != 0) {
        return store_status_from_mdb(c->t->s, rc, st);
    }
    hp_code code =
        reply_decode(v.mv_data, v.mv_size, &tag, &expires, &data, &len, st);
    if (code == HP_OK && expires != at) {
        code = CORRUPT(st,
                       "reply expiry entry of request '%.*s' in scope '%.*s' "
                       "and its replay entry expire at different times",
                       (int)n, request_id.p, (int)scope.len, scope.p);
    }
    return code;
}

static hp_code
take_expiry(checker *c, const MDB_val *k, const MDB_val *v, hp_status *st)
{
    key_reader rd;
    uint8_t kind;
    uint64_t at;
    hp_str scope;
    (void)v;

    key_reader_init(&rd, k->mv_data, k->mv_size);
    if (key_read_u8(&rd, &kind) != 0 || key_read_u64(&rd, &at) != 0 ||
        key_read_name(&rd, &scope) != 0 || !hp_name_valid(scope.p, scope.len)) {
        return malformed(st, "expiry");
    }
    c->res->index_entries++;
    switch (kind) {
    case EXPIRY_RETENTION:
        return expiry_retention(c, &rd, at, scope, st);
    case EXPIRY_DEDUPE:
        return expiry_dedupe(c, &rd, at, scope, st);
    case EXPIRY_REPLY:
        return expiry_reply(c, &rd, at, scope, st);
    default:
        return malformed(st, "expiry");
    }
}

static hp_code
take_dedupe(checker *c, const MDB_val *k, const MDB_val *v, hp_status *st)
{
    key_reader rd;
    hp_str scope, lane;
    const uint8_t *hash;
    uint8_t seq, want[16];
    hp_id id;
    uint64_t expires;
    const uint8_t *full;
    size_t full_len;
    key ek;
    record r;
    hp_code code;

    key_reader_init(&rd, k->mv_data, k->mv_size);
    if (key_read_name(&rd, &scope) != 0 || key_read_name(&rd, &lane) != 0 ||
        key_read_bytes(&rd, 16, &hash) != 0 || key_read_u8(&rd, &seq) != 0 ||
        key_reader_done(&rd) != 0 || !valid_names(scope, lane)) {
        return malformed(st, "dedupe");
    }
    if ((code = dedupe_entry_decode(v->mv_data, v->mv_size, &id, &expires,
                                    &full, &full_len, st)) != HP_OK) {
        return code;
    }
    subject sj = subject_of("dedupe entry", scope, &id);
    store_dedupe_hash(c->t->s, (hp_str){ (const char *)full, full_len }, want);
    if (memcmp(want, hash, sizeof(want)) != 0) {
        return wrong(st, &sj, "its key does not hash to where it is filed");
    }
    if (find_lane(c, scope, lane) == NULL) {
        return wrong(st, &sj, "its lane has no lane record");
    }
    key_expiry_dedupe(&ek, expires, scope, lane, hash, seq);
    if (!entry_exists(c, c->t->s->db_expiry, &ek, &code, st)) {
        return code != HP_OK ? code : wrong(st, &sj, "it has no expiry entry");
    }
    code = msg_load(c->t, scope, &id, &r, st);
    if (code == HP_NOT_FOUND) {
        hp_status_clear(st);
        code = HP_OK; /* pruned after its retention; the key still holds */
    } else if (code == HP_OK && !hp_str_eq(r.lane, lane)) {
        code = wrong(st, &sj, "the message is in another lane");
    }
    c->res->dedupe_keys++;
    return code;
}

static hp_code
take_reply(checker *c, const MDB_val *k, const MDB_val *v, hp_status *st)
{
    key_reader rd;
    hp_str scope;
    uint32_t tag;
    uint64_t expires;
    const void *data;
    size_t len;
    key ek;
    hp_code code;

    key_reader_init(&rd, k->mv_data, k->mv_size);
    if (key_read_name(&rd, &scope) != 0 || !hp_name_valid(scope.p, scope.len)) {
        return malformed(st, "replies");
    }
    size_t n = rd.len - rd.off;
    if (n == 0 || n > STORE_REQUEST_ID_MAX) {
        return malformed(st, "replies");
    }
    hp_str request_id = { (const char *)rd.p + rd.off, n };
    if ((code = reply_decode(v->mv_data, v->mv_size, &tag, &expires, &data,
                             &len, st)) != HP_OK) {
        return code;
    }
    key_expiry_reply(&ek, expires, scope, request_id);
    if (!entry_exists(c, c->t->s->db_expiry, &ek, &code, st)) {
        return code != HP_OK
                   ? code
                   : CORRUPT(st,
                             "replay entry of request '%.*s' in scope "
                             "'%.*s' has no expiry entry",
                             (int)n, request_id.p, (int)scope.len, scope.p);
    }
    c->res->replies++;
    return HP_OK;
}

/* ---- the totals ----------------------------------------------------------
 */

static hp_code
check_lane_gauges(checker *c, hp_status *st)
{
    static const char *const names[G_COUNT] = {
        [G_PENDING] = "pending", [G_DELAYED] = "delayed",
        [G_CLAIMED] = "claimed", [G_DELIVERED] = "delivered",
        [G_DEAD] = "dead",
    };
    for (size_t i = 0; i < c->n_lanes; i++) {
        const lane_tally *l = &c->lanes[i];
        for (int g = 0; g < G_COUNT; g++) {
            if (l->e.gauge[g] < 0 || (uint64_t)l->e.gauge[g] != l->seen[g]) {
                return CORRUPT(st,
                               "lane '%.*s' of scope '%.*s' counts %lld %s "
                               "messages but holds %llu",
                               (int)l->e.key.lane_len, l->e.key.lane,
                               (int)l->e.key.scope_len, l->e.key.scope,
                               (long long)l->e.gauge[g], names[g],
                               (unsigned long long)l->seen[g]);
            }
        }
        if (l->e.total[T_ENQUEUED] < l->messages) {
            return CORRUPT(st,
                           "lane '%.*s' of scope '%.*s' enqueued %llu "
                           "messages in all but holds %llu",
                           (int)l->e.key.lane_len, l->e.key.lane,
                           (int)l->e.key.scope_len, l->e.key.scope,
                           (unsigned long long)l->e.total[T_ENQUEUED],
                           (unsigned long long)l->messages);
        }
        c->res->pending += l->seen[G_PENDING];
        c->res->delayed += l->seen[G_DELAYED];
        c->res->claimed += l->seen[G_CLAIMED];
        c->res->delivered += l->seen[G_DELIVERED];
        c->res->dead += l->seen[G_DEAD];
    }
    return HP_OK;
}

static hp_code
check_totals(checker *c, hp_status *st)
{
    hp_code code = check_lane_gauges(c, st);
    if (code != HP_OK) {
        return code;
    }
    if (c->retention_entries != c->res->delivered) {
        return CORRUPT(st, "%llu delivered messages but %llu retention entries",
                       (unsigned long long)c->res->delivered,
                       (unsigned long long)c->retention_entries);
    }
    if (c->dedupe_expiries != c->res->dedupe_keys) {
        return CORRUPT(st, "%llu dedupe entries but %llu dedupe expiry entries",
                       (unsigned long long)c->res->dedupe_keys,
                       (unsigned long long)c->dedupe_expiries);
    }
    return HP_OK;
}

hp_code
store_check(store_txn *t, store_check_res *res, hp_status *st)
{
    store *s = t->s;
    checker c;

    const struct {
        MDB_dbi db;
        entry_fn fn;
    } passes[] = {
        { s->db_lanes, take_lane },    { s->db_messages, take_message },
        { s->db_ready, take_ready },   { s->db_lane_ready, take_lane_ready },
        { s->db_leases, take_lease },  { s->db_schedule, take_schedule },
        { s->db_dead, take_dead },     { s->db_expiry, take_expiry },
        { s->db_dedupe, take_dedupe }, { s->db_replies, take_reply },
    };

    hp_code code = HP_OK;

    memset(res, 0, sizeof(*res));
    memset(&c, 0, sizeof(c));
    c.t = t;
    c.res = res;
    for (size_t i = 0; i < HP_ARRAY_LEN(passes) && code == HP_OK; i++) {
        code = walk(&c, passes[i].db, passes[i].fn, st);
    }
    if (code == HP_OK) {
        res->lanes = c.n_lanes;
        code = check_totals(&c, st);
    }
    free(c.lanes);
    return code;
}
