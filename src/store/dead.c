/*
 * dead.c - replay and purge of dead letters, by id or oldest-first for a
 * whole lane in bounded steps. A listed id that is not a dead letter of the
 * lane fails the whole call before anything changes.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

typedef enum dead_op {
    DEAD_REPLAY,
    DEAD_PURGE,
} dead_op;

static hp_code
check_sel(const store *s, hp_str scope, const store_dead_sel *sel,
          hp_status *st)
{
    hp_code code = check_scope(scope, st);
    if (code != HP_OK) {
        return code;
    }
    if ((code = hp_name_check(sel->lane, "lane", st)) != HP_OK) {
        return code;
    }
    if (sel->n_ids > 0) {
        if (sel->n_ids > s->opts.limits.max_batch || sel->ids == NULL) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BATCH_TOO_LARGE,
                                 "at most %u ids per call",
                                 s->opts.limits.max_batch);
        }
        return HP_OK;
    }
    return check_limit(s, sel->limit, "dead-letter limit", st);
}

/* Every listed id must be a dead letter of the lane. */
static hp_code
check_ids(store_txn *t, hp_str scope, const store_dead_sel *sel, hp_status *st)
{
    for (size_t i = 0; i < sel->n_ids; i++) {
        record r;
        hp_code code = msg_load(t, scope, &sel->ids[i], &r, st);
        if (code != HP_OK) {
            return code;
        }
        if (r.state != STORE_STATE_DEAD || !hp_str_eq(r.lane, sel->lane)) {
            char text[HP_ID_TEXT_LEN + 1];
            hp_id_format(&sel->ids[i], text);
            return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_NOT_DEAD,
                                 "message %s is not a dead letter of lane "
                                 "'%.*s'",
                                 text, (int)sel->lane.len, sel->lane.p);
        }
    }
    return HP_OK;
}

/* Collects the ids of the oldest `limit` dead letters of the lane, and
 * whether more follow. */
static hp_code
oldest_ids(store_txn *t, hp_str scope, const store_dead_sel *sel, hp_id *ids,
           size_t *n, bool *more, hp_status *st)
{
    key prefix;
    MDB_cursor *cur;
    MDB_val kv, v;
    int rc;

    *n = 0;
    *more = false;
    key_dead_prefix(&prefix, scope, sel->lane);
    if ((rc = mdb_cursor_open(t->mdb, t->s->db_dead, &cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    kv = key_val(&prefix);
    for (rc = txn_cursor_get(t, cur, &kv, &v, MDB_SET_RANGE); rc == 0;
         rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT)) {
        if (kv.mv_size != prefix.len + 8 + HP_ID_LEN ||
            memcmp(kv.mv_data, prefix.b, prefix.len) != 0) {
            break;
        }
        if (*n == sel->limit) {
            *more = true;
            break;
        }
        memcpy(ids[(*n)++].b,
               (const uint8_t *)kv.mv_data + kv.mv_size - HP_ID_LEN, HP_ID_LEN);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return store_status_from_mdb(t->s, rc, st);
    }
    return HP_OK;
}

static hp_code
apply_one(store_txn *t, lane_entry *le, hp_str scope, const hp_id *id,
          dead_op op, uint64_t now_ms, bool *applied, hp_status *st)
{
    record r;
    key k;
    hp_code code;

    *applied = false;
    code = msg_load_copy(t, scope, id, &r, st);
    if (code == HP_NOT_FOUND && op == DEAD_PURGE) {
        return HP_OK; /* listed twice: purged already */
    }
    if (code != HP_OK) {
        return code;
    }
    if (r.state != STORE_STATE_DEAD) {
        return HP_OK; /* listed twice: replayed already */
    }
    *applied = true;
    key_dead(&k, scope, r.lane, r.finished_at, id);
    if ((code = db_del(t, t->s->db_dead, &k, st)) != HP_OK) {
        return code;
    }
    le->gauge[G_DEAD]--;
    le->dirty = true;
    if (op == DEAD_PURGE) {
        le->total[T_PURGED]++;
        key_message(&k, scope, id);
        return db_del(t, t->s->db_messages, &k, st);
    }
    le->total[T_REPLAYED]++;
    r.attempts = 0;
    r.available_at = now_ms;
    r.flags &= (uint8_t)~REC_F_NACKED;
    if ((code = msg_make_ready(t, le, scope, id, &r, now_ms, st)) != HP_OK) {
        return code;
    }
    return msg_put(t, scope, id, &r, st);
}

static hp_code
dead_apply(store_txn *t, hp_str scope, const store_dead_sel *sel, dead_op op,
           uint64_t now_ms, store_dead_res *res, hp_status *st)
{
    lane_cache c;
    lane_entry *le;
    hp_id *found = NULL;
    const hp_id *ids = sel->ids;
    size_t n = sel->n_ids;
    hp_code code;

    memset(res, 0, sizeof(*res));
    if ((code = check_write(t, st)) != HP_OK ||
        (code = check_sel(t->s, scope, sel, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    if (n > 0) {
        code = check_ids(t, scope, sel, st);
    } else {
        found = malloc(sel->limit * sizeof(hp_id));
        if (found == NULL) {
            code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        } else {
            code = oldest_ids(t, scope, sel, found, &n, &res->more, st);
            ids = found;
        }
    }
    if (code != HP_OK || n == 0) {
        free(found);
        return txn_fail(t, code);
    }
    lane_cache_init(&c, t);
    if ((code = lane_cache_get(&c, scope, sel->lane, true, &le, st)) != HP_OK) {
        goto release;
    }
    for (size_t i = 0; i < n; i++) {
        bool applied;
        if ((code = apply_one(t, le, scope, &ids[i], op, now_ms, &applied,
                              st)) != HP_OK) {
            goto release;
        }
        res->count += applied ? 1 : 0;
    }
    code = lane_cache_flush(&c, st);
release:
    lane_cache_release(&c);
    free(found);
    return txn_fail(t, code);
}

hp_code
store_dead_replay(store_txn *t, hp_str scope, const store_dead_sel *sel,
                  uint64_t now_ms, store_dead_res *res, hp_status *st)
{
    return dead_apply(t, scope, sel, DEAD_REPLAY, now_ms, res, st);
}

hp_code
store_dead_purge(store_txn *t, hp_str scope, const store_dead_sel *sel,
                 store_dead_res *res, hp_status *st)
{
    return dead_apply(t, scope, sel, DEAD_PURGE, 0, res, st);
}
