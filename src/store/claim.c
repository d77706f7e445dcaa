/*
 * claim.c - hand out due messages under a lease. A claim seeks `ready` for
 * (scope, lane, target, priority) and stops at the first key not yet due,
 * so delayed messages cost nothing until then. An any-target claim finds
 * the lane's targets by skipping from one target to the next in the same
 * index (no per-target bookkeeping) and merges their heads in claim order.
 * Each claim costs O(targets * priorities * log n) seeks plus O(log n) per
 * message, whatever the backlog.
 */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "store/store_int.h"

/* How many expired leases a claim settles before it looks for work. */
#define CLAIM_EXPIRE_STEP 64

typedef struct head {
    key prefix; /* N scope | N lane | N target */
    key at;     /* current head key, valid when live */
    bool live;
    uint8_t priority;
    uint64_t available_at;
    hp_id id;
} head;

typedef struct claim_walk {
    store_txn *t;
    MDB_cursor *cur;
    uint64_t now;
    head *heads;
    size_t n_heads;
    size_t positioned; /* head the cursor sits on, or SIZE_MAX */
} claim_walk;

static hp_code
corrupt_index(hp_status *st)
{
    return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT,
                         "ready index holds a malformed key");
}

static bool
has_prefix(const MDB_val *kv, const key *p)
{
    return kv->mv_size >= p->len && memcmp(kv->mv_data, p->b, p->len) == 0;
}

/* Loads the head fields from the key under the cursor (which has h's
 * prefix); returns false if the key is malformed. */
static bool
take_key(head *h, const MDB_val *kv)
{
    const uint8_t *b = kv->mv_data;
    size_t off = h->prefix.len;
    if (kv->mv_size != off + 1 + 8 + HP_ID_LEN || kv->mv_size > KEY_MAX) {
        return false;
    }
    h->priority = b[off];
    h->available_at = hp_get_u64(b + off + 1);
    memcpy(h->id.b, b + off + 9, HP_ID_LEN);
    memcpy(h->at.b, b, kv->mv_size);
    h->at.len = kv->mv_size;
    return true;
}

/* Positions h on its first due key at priority >= from. */
static hp_code
seek_head(claim_walk *w, size_t hi, unsigned from, hp_status *st)
{
    head *h = &w->heads[hi];
    key k;
    MDB_val kv, v;

    h->live = false;
    w->positioned = hi;
    for (unsigned p = from; p <= STORE_PRIORITY_MAX;) {
        k = h->prefix;
        key_put_u8(&k, (uint8_t)p);
        kv = key_val(&k);
        int rc = mdb_cursor_get(w->cur, &kv, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || (rc == 0 && !has_prefix(&kv, &h->prefix))) {
            return HP_OK;
        }
        if (rc != 0) {
            return store_status_from_mdb(w->t->s, rc, st);
        }
        if (!take_key(h, &kv)) {
            return corrupt_index(st);
        }
        if (h->available_at <= w->now) {
            h->live = true;
            return HP_OK;
        }
        /* Everything after this key at its priority is later still. */
        p = (unsigned)h->priority + 1;
    }
    return HP_OK;
}

/* Moves h past its current key. */
static hp_code
advance_head(claim_walk *w, size_t hi, hp_status *st)
{
    head *h = &w->heads[hi];
    MDB_val kv, v;
    int rc;

    if (w->positioned != hi) {
        kv = key_val(&h->at);
        if ((rc = mdb_cursor_get(w->cur, &kv, &v, MDB_SET_KEY)) != 0) {
            return store_status_from_mdb(w->t->s, rc, st);
        }
    }
    w->positioned = hi;
    uint8_t prio = h->priority;
    rc = mdb_cursor_get(w->cur, &kv, &v, MDB_NEXT);
    if (rc == MDB_NOTFOUND || (rc == 0 && !has_prefix(&kv, &h->prefix))) {
        h->live = false;
        return HP_OK;
    }
    if (rc != 0) {
        return store_status_from_mdb(w->t->s, rc, st);
    }
    if (!take_key(h, &kv)) {
        return corrupt_index(st);
    }
    if (h->priority == prio && h->available_at <= w->now) {
        return HP_OK;
    }
    /* Either a later, not-yet-due key at this priority (skip the rest of
     * it) or the first key of a lower priority (check it from scratch). */
    unsigned from = h->priority == prio ? (unsigned)prio + 1 : h->priority;
    if (from > STORE_PRIORITY_MAX) {
        h->live = false;
        return HP_OK;
    }
    return seek_head(w, hi, from, st);
}

static int
head_cmp(const head *a, const head *b)
{
    if (a->priority != b->priority) {
        return a->priority < b->priority ? -1 : 1;
    }
    if (a->available_at != b->available_at) {
        return a->available_at < b->available_at ? -1 : 1;
    }
    return hp_id_cmp(&a->id, &b->id);
}

/* Lists the targets of a lane that have ready entries, by skipping from
 * one target's keys to the next target. */
static hp_code
find_targets(claim_walk *w, hp_str scope, hp_str lane, hp_status *st)
{
    key lp, k;
    MDB_val kv, v;
    size_t cap = 0;

    key_ready_prefix(&lp, scope, lane);
    k = lp;
    for (;;) {
        kv = key_val(&k);
        int rc = mdb_cursor_get(w->cur, &kv, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || (rc == 0 && !has_prefix(&kv, &lp))) {
            return HP_OK;
        }
        if (rc != 0) {
            return store_status_from_mdb(w->t->s, rc, st);
        }
        key_reader r;
        hp_str target;
        key_reader_init(&r, (const uint8_t *)kv.mv_data + lp.len,
                        kv.mv_size - lp.len);
        if (key_read_name(&r, &target) != 0) {
            return corrupt_index(st);
        }
        if (w->n_heads == cap) {
            cap = cap ? cap * 2 : 4;
            head *nh = realloc(w->heads, cap * sizeof(*nh));
            if (nh == NULL) {
                return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                     "out of memory");
            }
            w->heads = nh;
        }
        head *h = &w->heads[w->n_heads++];
        key_ready_target(&h->prefix, scope, lane, target);
        h->live = false;
        /* Past every priority of this target: the next target's keys. */
        k = h->prefix;
        key_put_u8(&k, STORE_PRIORITY_MAX + 1);
    }
}

/* Collects up to max ids of due messages in claim order. */
static hp_code
collect(store_txn *t, hp_str scope, const store_claim_req *req, uint64_t now_ms,
        hp_id *ids, size_t *n_out, hp_status *st)
{
    claim_walk w = { t, NULL, now_ms, NULL, 0, SIZE_MAX };
    hp_code code = HP_OK;
    size_t n = 0;
    int rc;

    if ((rc = mdb_cursor_open(t->mdb, t->s->db_ready, &w.cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    if (req->any_target) {
        code = find_targets(&w, scope, req->lane, st);
    } else {
        w.heads = malloc(sizeof(head));
        if (w.heads == NULL) {
            code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        } else {
            w.n_heads = 1;
            key_ready_target(&w.heads[0].prefix, scope, req->lane, req->target);
        }
    }
    for (size_t i = 0; code == HP_OK && i < w.n_heads; i++) {
        code = seek_head(&w, i, 0, st);
    }
    while (code == HP_OK && n < req->max) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < w.n_heads; i++) {
            if (w.heads[i].live &&
                (best == SIZE_MAX ||
                 head_cmp(&w.heads[i], &w.heads[best]) < 0)) {
                best = i;
            }
        }
        if (best == SIZE_MAX) {
            break;
        }
        ids[n++] = w.heads[best].id;
        code = advance_head(&w, best, st);
    }
    mdb_cursor_close(w.cur);
    free(w.heads);
    *n_out = n;
    return code;
}

static hp_code
check_claim(const store *s, const store_claim_req *req, hp_status *st)
{
    const store_limits *lim = &s->opts.limits;
    if (!hp_name_valid(req->lane.p, req->lane.len)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME,
                             "lane name must be 1-64 of [A-Za-z0-9._:-]");
    }
    if (!req->any_target && req->target.len > 0 &&
        !hp_name_valid(req->target.p, req->target.len)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME,
                             "target name must be empty or 1-64 of "
                             "[A-Za-z0-9._:-]");
    }
    if (req->lease_ms < lim->min_lease_ms ||
        req->lease_ms > lim->max_lease_ms) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_LEASE,
                             "lease must be %u-%u ms", lim->min_lease_ms,
                             lim->max_lease_ms);
    }
    if (req->consumer.len > lim->max_consumer ||
        !hp_utf8_valid(req->consumer.p, req->consumer.len)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONSUMER,
                             "consumer must be UTF-8 without NUL, at most "
                             "%zu bytes",
                             lim->max_consumer);
    }
    return check_limit(s, req->max, "claim max", st);
}

/* Turns one collected id into a claimed message. */
static hp_code
claim_one(store_txn *t, lane_entry *le, hp_str scope,
          const store_claim_req *req, const hp_id *id, const uint8_t *token,
          uint64_t now_ms, size_t *bytes, bool *full, hp_arena *arena,
          store_message *out, hp_status *st)
{
    record r;
    key k;
    hp_code code;

    if ((code = msg_load_copy(t, scope, id, &r, st)) != HP_OK) {
        return code;
    }
    size_t size = r.payload_len + r.hdr_block_len;
    if (req->max_bytes != 0 && *bytes > 0 && *bytes + size > req->max_bytes) {
        *full = true; /* left pending for the next claim */
        return HP_OK;
    }
    *bytes += size;
    if (r.state != STORE_STATE_PENDING) {
        char text[HP_ID_TEXT_LEN + 1];
        hp_id_format(id, text);
        return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT,
                             "message %s is in the ready index but is %s", text,
                             store_state_name((store_state)r.state));
    }
    if ((code = msg_unready(t, le, scope, id, &r, now_ms, st)) != HP_OK) {
        return code;
    }
    r.state = STORE_STATE_CLAIMED;
    r.flags &= (uint8_t)~REC_F_NACKED;
    r.attempts++;
    memcpy(r.token.b, token, STORE_TOKEN_LEN);
    r.consumer = req->consumer;
    r.lease_expires_at = now_ms + req->lease_ms;
    key_lease(&k, r.lease_expires_at, scope, id);
    if ((code = db_put_empty(t, t->s->db_leases, &k, st)) != HP_OK ||
        (code = msg_put(t, scope, id, &r, st)) != HP_OK) {
        return code;
    }
    le->gauge[G_CLAIMED]++;
    le->total[T_CLAIMED]++;
    if ((code = msg_export(&r, id, now_ms, true, arena, out, st)) != HP_OK) {
        return code;
    }
    out->token = r.token;
    return HP_OK;
}

static hp_code
claim_collected(store_txn *t, lane_entry *le, hp_str scope,
                const store_claim_req *req, const hp_id *ids, size_t n,
                uint64_t now_ms, hp_arena *arena, store_claimed *out,
                hp_status *st)
{
    store *s = t->s;
    hp_code code = HP_OK;
    uint8_t *tokens = malloc(n * STORE_TOKEN_LEN);

    out->msgs = hp_arena_alloc(arena, n * sizeof(store_message));
    if (tokens == NULL || out->msgs == NULL) {
        code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
        goto free_tokens;
    }
    /* One draw for the whole batch: the random source is per call, not per
     * byte, in cost. */
    if (s->opts.rand(s->opts.rand_arg, tokens, n * STORE_TOKEN_LEN) != 0) {
        code = hp_status_set(st, HP_INTERNAL, HP_R_STORE_ERROR,
                             "random source failed");
        goto free_tokens;
    }
    size_t bytes = 0;
    bool full = false;
    for (size_t i = 0; i < n; i++) {
        code =
            claim_one(t, le, scope, req, &ids[i], tokens + i * STORE_TOKEN_LEN,
                      now_ms, &bytes, &full, arena, &out->msgs[i], st);
        if (code != HP_OK || full) {
            goto free_tokens;
        }
        out->n = i + 1;
    }
free_tokens:
    free(tokens);
    return code;
}

hp_code
ready_survey(store_txn *t, hp_str scope, hp_str lane, uint64_t now_ms,
             hp_arena *arena, uint64_t *oldest_due, hp_str **targets,
             size_t *n_targets, hp_status *st)
{
    claim_walk w = { t, NULL, now_ms, NULL, 0, SIZE_MAX };
    hp_code code;
    int rc;

    *oldest_due = UINT64_MAX;
    *targets = NULL;
    *n_targets = 0;
    if ((rc = mdb_cursor_open(t->mdb, t->s->db_ready, &w.cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    if ((code = find_targets(&w, scope, lane, st)) != HP_OK) {
        goto close_cursor;
    }
    *targets = hp_arena_alloc(arena, w.n_heads * sizeof(hp_str));
    if (*targets == NULL) {
        code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
        goto close_cursor;
    }
    for (size_t i = 0; i < w.n_heads; i++) {
        head *h = &w.heads[i];
        /* The target name is the last name in the prefix. */
        size_t tlen = h->prefix.b[1 + scope.len + 1 + lane.len];
        const uint8_t *tp = h->prefix.b + h->prefix.len - tlen;
        char *name = hp_arena_dup(arena, tp, tlen);
        if (name == NULL) {
            code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
            goto close_cursor;
        }
        (*targets)[i].p = name;
        (*targets)[i].len = tlen;
        /* The oldest due message of each priority; priorities are walked
         * by their first due key. */
        for (unsigned p = 0; p <= STORE_PRIORITY_MAX;) {
            if ((code = seek_head(&w, i, p, st)) != HP_OK) {
                goto close_cursor;
            }
            if (!h->live) {
                break;
            }
            if (h->available_at < *oldest_due) {
                *oldest_due = h->available_at;
            }
            p = (unsigned)h->priority + 1;
        }
    }
    *n_targets = w.n_heads;
close_cursor:
    mdb_cursor_close(w.cur);
    free(w.heads);
    return code;
}

hp_code
store_claim(store_txn *t, hp_str scope, const store_claim_req *req,
            uint64_t now_ms, hp_arena *arena, store_claimed *out, hp_status *st)
{
    store_step_res expired;
    lane_cache c;
    lane_entry *le;
    hp_id *ids = NULL;
    size_t n = 0;
    hp_code code;

    out->msgs = NULL;
    out->n = 0;
    if ((code = check_write(t, st)) != HP_OK ||
        (code = check_scope(scope, st)) != HP_OK ||
        (code = check_claim(t->s, req, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    if ((code = store_expire_leases(t, now_ms, CLAIM_EXPIRE_STEP, &expired,
                                    st)) != HP_OK) {
        return code;
    }
    lane_cache_init(&c, t);
    code = lane_cache_get(&c, scope, req->lane, false, &le, st);
    if (code == HP_NOT_FOUND) {
        /* A worker may start before any producer: nothing to claim yet. */
        lane_cache_release(&c);
        hp_status_clear(st);
        return HP_OK;
    }
    if (code != HP_OK || le->settings.paused) {
        goto release;
    }
    ids = malloc(req->max * sizeof(hp_id));
    if (ids == NULL) {
        code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
        goto release;
    }
    if ((code = collect(t, scope, req, now_ms, ids, &n, st)) != HP_OK) {
        goto release;
    }
    if (n > 0 && ((code = claim_collected(t, le, scope, req, ids, n, now_ms,
                                          arena, out, st)) != HP_OK ||
                  (code = lane_cache_flush(&c, st)) != HP_OK)) {
        goto release;
    }
release:
    free(ids);
    lane_cache_release(&c);
    return txn_fail(t, code);
}
