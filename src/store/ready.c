/*
 * ready.c - walking the two claim indexes. `ready` orders a lane's pending
 * messages target by target, `lane_ready` the whole lane; within a prefix
 * both are in claim order (priority, available_at, id), so claims, the
 * oldest due message and the list of targets all come down to seeks here.
 *
 * Costs, n being the size of the index: a claim of k messages is at most
 * one seek per priority plus k steps, O((10 + k) log n), however many
 * targets the lane has; the oldest due message is one seek per priority;
 * a page of targets is one seek per target listed.
 */
#include <string.h>

#include "common/bytes.h"
#include "store/store_int.h"

static hp_code
corrupt_index(hp_status *st)
{
    return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                         "ready index holds a malformed key");
}

static bool
has_prefix(const MDB_val *kv, const key *p)
{
    return kv->mv_size >= p->len && memcmp(kv->mv_data, p->b, p->len) == 0;
}

hp_code
ready_walk_open(store_txn *t, MDB_dbi db, const key *prefix, uint64_t now_ms,
                ready_walk *w, hp_status *st)
{
    memset(w, 0, sizeof(*w));
    w->t = t;
    w->prefix = *prefix;
    w->now = now_ms;
    int rc = mdb_cursor_open(t->mdb, db, &w->cur);
    return rc == 0 ? HP_OK : store_status_from_mdb(t->s, rc, st);
}

void
ready_walk_close(ready_walk *w)
{
    if (w->cur != NULL) {
        mdb_cursor_close(w->cur);
        w->cur = NULL;
    }
}

/* Loads the fields of the key under the cursor, which has w's prefix;
 * false if the key is malformed. */
static bool
take_key(ready_walk *w, const MDB_val *kv)
{
    const uint8_t *b = kv->mv_data;
    size_t off = w->prefix.len;
    if (kv->mv_size != off + 1 + 8 + HP_ID_LEN) {
        return false;
    }
    w->priority = b[off];
    w->available_at = hp_get_u64(b + off + 1);
    memcpy(w->id.b, b + off + 9, HP_ID_LEN);
    return w->priority <= STORE_PRIORITY_MAX;
}

/* After a cursor move: past the prefix (or the index's end) is the end of
 * the walk. Returns HP_OK with *end set, or an error. */
static hp_code
landed(ready_walk *w, int rc, const MDB_val *kv, bool *end, hp_status *st)
{
    *end = rc == MDB_NOTFOUND || (rc == 0 && !has_prefix(kv, &w->prefix));
    if (*end) {
        w->live = false;
        return HP_OK;
    }
    if (rc != 0) {
        return store_status_from_mdb(w->t->s, rc, st);
    }
    return take_key(w, kv) ? HP_OK : corrupt_index(st);
}

hp_code
ready_walk_seek(ready_walk *w, unsigned from, hp_status *st)
{
    MDB_val kv, v;
    key k;
    bool end;
    hp_code code;

    w->live = false;
    for (unsigned p = from; p <= STORE_PRIORITY_MAX;) {
        k = w->prefix;
        key_put_u8(&k, (uint8_t)p);
        kv = key_val(&k);
        int rc = txn_cursor_get(w->t, w->cur, &kv, &v, MDB_SET_RANGE);
        if ((code = landed(w, rc, &kv, &end, st)) != HP_OK || end) {
            return code;
        }
        if (w->available_at <= w->now) {
            w->live = true;
            return HP_OK;
        }
        /* Everything after this key at its priority is later still. */
        p = (unsigned)w->priority + 1;
    }
    return HP_OK;
}

hp_code
ready_walk_next(ready_walk *w, hp_status *st)
{
    MDB_val kv, v;
    bool end;
    hp_code code;

    int rc = txn_cursor_get(w->t, w->cur, &kv, &v, MDB_NEXT);
    if ((code = landed(w, rc, &kv, &end, st)) != HP_OK || end) {
        return code;
    }
    /* The next key at the same priority, or the first of a later one: due
     * or not, it is where a seek would have landed. */
    if (w->available_at <= w->now) {
        return HP_OK;
    }
    w->live = false;
    return ready_walk_seek(w, (unsigned)w->priority + 1, st);
}

hp_code
ready_oldest_due(store_txn *t, hp_str scope, hp_str lane, uint64_t now_ms,
                 uint64_t *oldest_due, hp_status *st)
{
    ready_walk w;
    key prefix;
    hp_code code;

    *oldest_due = UINT64_MAX;
    key_lane(&prefix, scope, lane);
    if ((code = ready_walk_open(t, t->s->db_lane_ready, &prefix, now_ms, &w,
                                st)) != HP_OK) {
        return code;
    }
    /* Each priority's first due key is its oldest due message. */
    for (unsigned p = 0; p <= STORE_PRIORITY_MAX;) {
        if ((code = ready_walk_seek(&w, p, st)) != HP_OK || !w.live) {
            break;
        }
        if (w.available_at < *oldest_due) {
            *oldest_due = w.available_at;
        }
        p = (unsigned)w.priority + 1;
    }
    ready_walk_close(&w);
    return code;
}

/* A targets cursor is the last target listed as a name (length byte and
 * bytes): "" is a target too, so an empty cursor could not name it. */
static hp_code
check_targets_cursor(const store_targets_req *req, hp_str *after, hp_status *st)
{
    const uint8_t *c = req->cursor;
    if (req->cursor_len == 0) {
        return HP_OK;
    }
    if (req->cursor_len > KEY_NAME_MAX || c[0] != req->cursor_len - 1 ||
        (c[0] > 0 && !hp_name_valid((const char *)c + 1, c[0]))) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CURSOR,
                             "targets cursor does not belong to this lane");
    }
    after->p = (const char *)c + 1;
    after->len = c[0];
    return HP_OK;
}

static hp_code
no_memory(hp_status *st)
{
    return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                         "out of memory");
}

hp_code
ready_targets(store_txn *t, hp_str scope, hp_str lane,
              const store_targets_req *req, hp_arena *arena,
              store_lane_stats *out, hp_status *st)
{
    key lp, k;
    MDB_cursor *cur;
    MDB_val kv, v;
    hp_str after = { "", 0 };
    hp_code code;
    int rc;

    out->targets = NULL;
    out->n_targets = 0;
    out->targets_next_cursor = NULL;
    out->targets_next_cursor_len = 0;
    if (req->limit == 0) {
        return HP_OK;
    }
    if ((code = check_limit(t->s, req->limit, "targets limit", st)) != HP_OK ||
        (code = check_targets_cursor(req, &after, st)) != HP_OK) {
        return code;
    }
    if ((out->targets = hp_arena_alloc(arena, req->limit * sizeof(hp_str))) ==
        NULL) {
        return no_memory(st);
    }
    if ((rc = mdb_cursor_open(t->mdb, t->s->db_ready, &cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    key_ready_prefix(&lp, scope, lane);
    k = lp;
    if (req->cursor_len > 0) {
        key_ready_target(&k, scope, lane, after);
        key_put_u8(&k, STORE_PRIORITY_MAX + 1); /* past all of its keys */
    }
    for (;;) {
        kv = key_val(&k);
        rc = txn_cursor_get(t, cur, &kv, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || (rc == 0 && !has_prefix(&kv, &lp))) {
            break;
        }
        if (rc != 0) {
            code = store_status_from_mdb(t->s, rc, st);
            break;
        }
        key_reader r;
        hp_str target;
        key_reader_init(&r, (const uint8_t *)kv.mv_data + lp.len,
                        kv.mv_size - lp.len);
        if (key_read_name(&r, &target) != 0) {
            code = corrupt_index(st);
            break;
        }
        if (out->n_targets == req->limit) {
            /* One more exists: the next page starts after the last one. */
            const hp_str *last = &out->targets[out->n_targets - 1];
            uint8_t *c = hp_arena_alloc(arena, 1 + last->len);
            if (c == NULL) {
                code = no_memory(st);
                break;
            }
            c[0] = (uint8_t)last->len;
            memcpy(c + 1, last->p, last->len);
            out->targets_next_cursor = c;
            out->targets_next_cursor_len = 1 + last->len;
            break;
        }
        char *name = hp_arena_dup(arena, target.p, target.len);
        if (name == NULL) {
            code = no_memory(st);
            break;
        }
        out->targets[out->n_targets].p = name;
        out->targets[out->n_targets].len = target.len;
        out->n_targets++;
        /* Past every priority of this target: the next target's keys. */
        key_ready_target(&k, scope, lane, target);
        key_put_u8(&k, STORE_PRIORITY_MAX + 1);
    }
    mdb_cursor_close(cur);
    return code;
}
