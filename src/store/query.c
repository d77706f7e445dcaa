/*
 * query.c - reads: get one message, list a lane by state, lane stats and
 * the lanes of a scope. Listing walks whichever index holds the state in
 * order and resumes from an opaque cursor, which is the last key the walk
 * examined; a cursor is accepted only if it lies inside the walk's prefix,
 * so one scope's cursor can never read another scope's keys.
 *
 * Every page is bounded three ways: `limit` entries, 16 * limit records
 * examined, and (when the caller gives max_bytes) the weight of what it
 * returns, so neither a rare filter nor big payloads make one page
 * unbounded work or memory.
 */
#include <string.h>

#include "common/bytes.h"
#include "store/store_int.h"

/* How many records a page may examine per message it returns, so a filter
 * that matches rarely cannot turn one page into a full scan. */
#define LIST_BUDGET_FACTOR 16

hp_code
store_get(store_txn *t, hp_str scope, hp_id id, uint64_t now_ms,
          hp_arena *arena, store_message *out, hp_status *st)
{
    record r;
    hp_code code;

    if ((code = check_scope(scope, st)) != HP_OK ||
        (code = msg_load(t, scope, &id, &r, st)) != HP_OK) {
        return code;
    }
    return msg_export(&r, &id, now_ms, true, arena, out, st);
}

typedef enum walk_kind {
    WALK_READY,    /* ready index, filter due / not due */
    WALK_DEAD,     /* dead index */
    WALK_MESSAGES, /* the scope's records, filter lane and state */
} walk_kind;

typedef struct walk {
    store_txn *t;
    hp_str scope;
    hp_str lane;
    store_state state;
    uint64_t now;
    bool with_body;
    uint32_t limit;
    size_t max_bytes; /* 0: no limit */
    size_t bytes;     /* weight of the page so far */
    hp_arena *arena;
    store_list_res *out;
} walk;

static hp_code
bad_cursor(hp_status *st)
{
    return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CURSOR,
                         "cursor does not belong to this listing");
}

/* Decides whether the entry under the cursor is listed; fills *id and, for
 * WALK_MESSAGES, *rec (decoded from the value). */
static hp_code
walk_match(walk *w, walk_kind kind, const MDB_val *kv, const MDB_val *v,
           bool *match, hp_id *id, record *rec, bool *have_rec, hp_status *st)
{
    const uint8_t *b = kv->mv_data;
    *have_rec = false;
    *match = false;
    if (kv->mv_size < HP_ID_LEN) {
        return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                             "index holds a malformed key");
    }
    memcpy(id->b, b + kv->mv_size - HP_ID_LEN, HP_ID_LEN);
    switch (kind) {
    case WALK_READY: {
        ready_key rk;
        if (key_parse_ready(kv->mv_data, kv->mv_size, &rk) != 0) {
            return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                                 "ready index holds a malformed key");
        }
        bool due = rk.available_at <= w->now;
        *match = (w->state == STORE_STATE_PENDING) == due;
        return HP_OK;
    }
    case WALK_DEAD:
        *match = true;
        return HP_OK;
    case WALK_MESSAGES: {
        hp_code code = record_decode(v->mv_data, v->mv_size, id, rec, st);
        if (code != HP_OK) {
            return code;
        }
        *have_rec = true;
        store_state s = (store_state)rec->state;
        if (s == STORE_STATE_PENDING && rec->available_at > w->now) {
            s = STORE_STATE_DELAYED;
        }
        *match = hp_str_eq(rec->lane, w->lane) &&
                 (w->state == STORE_STATE_ANY || w->state == s);
        return HP_OK;
    }
    }
    return HP_OK;
}

/* Ends a page that has more after it: the next one resumes after `last`,
 * the last key this page examined. */
static hp_code
page_cut(walk *w, const key *last, hp_status *st)
{
    w->out->next_cursor = hp_arena_dup(w->arena, last->b, last->len);
    w->out->next_cursor_len = last->len;
    if (w->out->next_cursor == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    return HP_OK;
}

/* Whether r fits what is left of the page's bytes; the first message
 * always does, so every page makes progress. */
static bool
page_fits(walk *w, const record *r)
{
    size_t weight = record_weight(r, w->with_body);
    if (w->max_bytes != 0 && w->out->n > 0 &&
        w->bytes + weight > w->max_bytes) {
        return false;
    }
    w->bytes += weight;
    return true;
}

static hp_code
walk_run(walk *w, walk_kind kind, MDB_dbi db, const key *prefix,
         const void *cursor, size_t cursor_len, hp_status *st)
{
    store_txn *t = w->t;
    MDB_cursor *cur;
    MDB_val kv, v;
    hp_code code = HP_OK;
    uint64_t budget = (uint64_t)w->limit * LIST_BUDGET_FACTOR;
    int rc;
    key last = { .len = 0 }, here;

    w->out->n = 0;
    w->out->next_cursor = NULL;
    w->out->next_cursor_len = 0;
    w->out->msgs = hp_arena_alloc(w->arena, w->limit * sizeof(store_message));
    if (w->out->msgs == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    if (cursor_len > 0 && (cursor_len > KEY_MAX || cursor_len <= prefix->len ||
                           memcmp(cursor, prefix->b, prefix->len) != 0)) {
        return bad_cursor(st);
    }
    if ((rc = mdb_cursor_open(t->mdb, db, &cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    kv = cursor_len > 0 ? store_val(cursor, cursor_len) : key_val(prefix);
    rc = txn_cursor_get(t, cur, &kv, &v, MDB_SET_RANGE);
    if (rc == 0 && cursor_len > 0 && kv.mv_size == cursor_len &&
        memcmp(kv.mv_data, cursor, cursor_len) == 0) {
        rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT); /* resume after it */
    }
    for (; rc == 0; rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT)) {
        if (kv.mv_size < prefix->len ||
            memcmp(kv.mv_data, prefix->b, prefix->len) != 0) {
            break;
        }
        if (w->out->n == w->limit || budget == 0) {
            /* More may follow: resume after the last key examined. */
            code = page_cut(w, &last, st);
            goto close_cursor;
        }
        budget--;
        if (kv.mv_size > KEY_MAX) {
            code = hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                                 "index holds an oversized key");
            goto close_cursor;
        }
        memcpy(here.b, kv.mv_data, kv.mv_size);
        here.len = kv.mv_size;
        bool match, have_rec;
        hp_id id;
        record r;
        if ((code = walk_match(w, kind, &kv, &v, &match, &id, &r, &have_rec,
                               st)) != HP_OK) {
            goto close_cursor;
        }
        if (match && !have_rec &&
            (code = msg_load(t, w->scope, &id, &r, st)) != HP_OK) {
            goto close_cursor;
        }
        if (match && !page_fits(w, &r)) {
            /* Left for the next page, which resumes before this key. */
            code = page_cut(w, &last, st);
            goto close_cursor;
        }
        last = here;
        if (!match) {
            continue;
        }
        if ((code = msg_export(&r, &id, w->now, w->with_body, w->arena,
                               &w->out->msgs[w->out->n], st)) != HP_OK) {
            goto close_cursor;
        }
        w->out->n++;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        code = store_status_from_mdb(t->s, rc, st);
    }
close_cursor:
    mdb_cursor_close(cur);
    return code;
}

hp_code
store_list(store_txn *t, hp_str scope, const store_list_req *req,
           uint64_t now_ms, hp_arena *arena, store_list_res *out, hp_status *st)
{
    walk w = { .t = t,
               .scope = scope,
               .lane = req->lane,
               .state = req->state,
               .now = now_ms,
               .with_body = req->with_payload,
               .limit = req->limit,
               .max_bytes = req->max_bytes,
               .arena = arena,
               .out = out };
    key prefix;
    hp_code code;

    if ((code = check_scope(scope, st)) != HP_OK ||
        (code = hp_name_check(req->lane, "lane", st)) != HP_OK ||
        (code = check_limit(t->s, req->limit, "list limit", st)) != HP_OK) {
        return code;
    }
    switch (req->state) {
    case STORE_STATE_PENDING:
    case STORE_STATE_DELAYED:
        key_ready_prefix(&prefix, scope, req->lane);
        return walk_run(&w, WALK_READY, t->s->db_ready, &prefix, req->cursor,
                        req->cursor_len, st);
    case STORE_STATE_DEAD:
        key_dead_prefix(&prefix, scope, req->lane);
        return walk_run(&w, WALK_DEAD, t->s->db_dead, &prefix, req->cursor,
                        req->cursor_len, st);
    case STORE_STATE_ANY:
    case STORE_STATE_CLAIMED:
    case STORE_STATE_DELIVERED:
        key_scope(&prefix, scope);
        return walk_run(&w, WALK_MESSAGES, t->s->db_messages, &prefix,
                        req->cursor, req->cursor_len, st);
    }
    return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_STATE,
                         "unknown state %d", (int)req->state);
}

hp_code
store_dead_list(store_txn *t, hp_str scope, const store_list_req *req,
                hp_arena *arena, store_list_res *out, hp_status *st)
{
    store_list_req dead = *req;
    dead.state = STORE_STATE_DEAD;
    return store_list(t, scope, &dead, 0, arena, out, st);
}

static uint64_t
clamp_gauge(int64_t g)
{
    return g > 0 ? (uint64_t)g : 0;
}

static hp_code
fill_stats(store_txn *t, const lane_entry *e, const store_targets_req *targets,
           uint64_t now_ms, hp_arena *arena, store_lane_stats *out,
           hp_status *st)
{
    hp_str scope = hp_lane_key_scope(&e->key);
    hp_str lane = hp_lane_key_lane(&e->key);
    uint64_t oldest;
    hp_code code;

    memset(out, 0, sizeof(*out));
    char *name = hp_arena_dup(arena, lane.p, lane.len);
    char *scope_name = hp_arena_dup(arena, scope.p, scope.len);
    if (name == NULL || scope_name == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    out->scope.p = scope_name;
    out->scope.len = scope.len;
    out->lane.p = name;
    out->lane.len = lane.len;
    out->settings = e->settings;
    out->pending = clamp_gauge(e->gauge[G_PENDING]);
    out->delayed = clamp_gauge(e->gauge[G_DELAYED]);
    out->claimed = clamp_gauge(e->gauge[G_CLAIMED]);
    out->delivered = clamp_gauge(e->gauge[G_DELIVERED]);
    out->dead = clamp_gauge(e->gauge[G_DEAD]);
    out->enqueued_total = e->total[T_ENQUEUED];
    out->dedupe_hits_total = e->total[T_DEDUPE_HITS];
    out->claimed_total = e->total[T_CLAIMED];
    out->acked_total = e->total[T_ACKED];
    out->nacked_total = e->total[T_NACKED];
    out->dead_total = e->total[T_DEAD];
    out->expired_total = e->total[T_EXPIRED];
    out->replayed_total = e->total[T_REPLAYED];
    out->purged_total = e->total[T_PURGED];
    if ((code = ready_oldest_due(t, scope, lane, now_ms, &oldest, st)) !=
            HP_OK ||
        (code = ready_targets(t, scope, lane, targets, arena, out, st)) !=
            HP_OK) {
        return code;
    }
    out->oldest_pending_age_ms = oldest == UINT64_MAX ? 0 : now_ms - oldest;
    return HP_OK;
}

size_t
store_lane_stats_weight(const store_lane_stats *ls)
{
    size_t w = STORE_WEIGHT_LANE + ls->scope.len + ls->lane.len +
               ls->targets_next_cursor_len;
    for (size_t i = 0; i < ls->n_targets; i++) {
        w += ls->targets[i].len + STORE_WEIGHT_NAME;
    }
    return w;
}

hp_code
store_stats(store_txn *t, hp_str scope, hp_str lane,
            const store_targets_req *targets, uint64_t now_ms, hp_arena *arena,
            store_lane_stats *out, hp_status *st)
{
    lane_cache c;
    lane_entry *e;
    hp_code code;

    if ((code = check_scope(scope, st)) != HP_OK ||
        (code = hp_name_check(lane, "lane", st)) != HP_OK) {
        return code;
    }
    lane_cache_init(&c, t);
    code = lane_cache_get(&c, scope, lane, false, &e, st);
    if (code == HP_OK) {
        code = fill_stats(t, e, targets, now_ms, arena, out, st);
    }
    lane_cache_release(&c);
    return code;
}

static hp_code
check_lanes_req(const store *s, const store_lanes_req *req, hp_status *st)
{
    hp_code code = check_limit(s, req->limit, "lane list limit", st);
    if (code == HP_OK && req->targets_limit > 0) {
        code = check_limit(s, req->targets_limit, "targets limit", st);
    }
    return code;
}

/* Lists the lanes whose keys start with prefix (one scope's, or every
 * scope's when prefix is empty), a page at a time, resuming after the
 * cursor. */
static hp_code
list_lanes(store_txn *t, const key *prefix, const store_lanes_req *req,
           uint64_t now_ms, hp_arena *arena, store_lanes_res *out,
           hp_status *st)
{
    const store_targets_req targets = { .limit = req->targets_limit };
    const void *cursor = req->cursor;
    size_t cursor_len = req->cursor_len, bytes = 0;
    uint32_t limit = req->limit;
    key last = { .len = 0 };
    MDB_cursor *cur;
    MDB_val kv, v;
    hp_code code = HP_OK;
    int rc;

    if (cursor_len > 0 && (cursor_len > KEY_MAX || cursor_len <= prefix->len ||
                           memcmp(cursor, prefix->b, prefix->len) != 0)) {
        return bad_cursor(st);
    }
    out->lanes = hp_arena_alloc(arena, limit * sizeof(store_lane_stats));
    if (out->lanes == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    if ((rc = mdb_cursor_open(t->mdb, t->s->db_lanes, &cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    kv = cursor_len > 0 ? store_val(cursor, cursor_len) : key_val(prefix);
    rc = kv.mv_size > 0 ? txn_cursor_get(t, cur, &kv, &v, MDB_SET_RANGE)
                        : txn_cursor_get(t, cur, &kv, &v, MDB_FIRST);
    if (rc == 0 && cursor_len > 0 && kv.mv_size == cursor_len &&
        memcmp(kv.mv_data, cursor, cursor_len) == 0) {
        rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT);
    }
    for (; rc == 0; rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT)) {
        if (kv.mv_size <= prefix->len ||
            memcmp(kv.mv_data, prefix->b, prefix->len) != 0) {
            break;
        }
        if (out->n == limit) {
            goto more; /* resume after the last lane listed */
        }
        key_reader r;
        hp_str scope, lane;
        lane_entry e;
        key_reader_init(&r, kv.mv_data, kv.mv_size);
        if (kv.mv_size > KEY_MAX || key_read_name(&r, &scope) != 0 ||
            key_read_name(&r, &lane) != 0 || key_reader_done(&r) != 0) {
            code = hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                                 "lane index holds a malformed key");
            goto close_cursor;
        }
        store_lane_stats *ls = &out->lanes[out->n];
        if ((code = lane_decode(v.mv_data, v.mv_size, scope, lane, &e, st)) !=
                HP_OK ||
            (code = fill_stats(t, &e, &targets, now_ms, arena, ls, st)) !=
                HP_OK) {
            goto close_cursor;
        }
        /* A lane that does not fit is left for the next page (its stats
         * in the arena are wasted, at most one lane's worth). */
        size_t weight = store_lane_stats_weight(ls);
        if (req->max_bytes != 0 && out->n > 0 &&
            bytes + weight > req->max_bytes) {
            goto more;
        }
        bytes += weight;
        memcpy(last.b, kv.mv_data, kv.mv_size);
        last.len = kv.mv_size;
        out->n++;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        code = store_status_from_mdb(t->s, rc, st);
    }
    goto close_cursor;
more:
    out->next_cursor = hp_arena_dup(arena, last.b, last.len);
    out->next_cursor_len = last.len;
    if (out->next_cursor == NULL) {
        code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
close_cursor:
    mdb_cursor_close(cur);
    return code;
}

hp_code
store_list_lanes(store_txn *t, hp_str scope, const store_lanes_req *req,
                 uint64_t now_ms, hp_arena *arena, store_lanes_res *out,
                 hp_status *st)
{
    key prefix;
    hp_code code;

    memset(out, 0, sizeof(*out));
    if ((code = check_scope(scope, st)) != HP_OK ||
        (code = check_lanes_req(t->s, req, st)) != HP_OK) {
        return code;
    }
    key_scope(&prefix, scope);
    return list_lanes(t, &prefix, req, now_ms, arena, out, st);
}

hp_code
store_list_all_lanes(store_txn *t, const store_lanes_req *req, uint64_t now_ms,
                     hp_arena *arena, store_lanes_res *out, hp_status *st)
{
    key prefix = { .len = 0 };
    hp_code code;

    memset(out, 0, sizeof(*out));
    if ((code = check_lanes_req(t->s, req, st)) != HP_OK) {
        return code;
    }
    return list_lanes(t, &prefix, req, now_ms, arena, out, st);
}
