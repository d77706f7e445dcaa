/*
 * claim.c - hand out due messages under a lease. A claim for one target
 * walks `ready` under (scope, lane, target); a claim for any target walks
 * `lane_ready` under (scope, lane), where every target's messages are
 * already merged in claim order. Either way it is at most one seek per
 * priority plus one step per message (ready.c), so delayed messages cost
 * nothing until due and the number of targets costs nothing at all. Each
 * claim gets a fresh token; only its holder may ack, nack or extend.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* How many expired leases a claim settles before it looks for work. */
#define CLAIM_EXPIRE_STEP 64

/* Collects up to req->max ids of due messages in claim order. */
static hp_code
collect(store_txn *t, hp_str scope, const store_claim_req *req, uint64_t now_ms,
        hp_id *ids, size_t *n_out, hp_status *st)
{
    ready_walk w;
    key prefix;
    MDB_dbi db;
    size_t n = 0;
    hp_code code;

    if (req->any_target) {
        key_lane(&prefix, scope, req->lane);
        db = t->s->db_lane_ready;
    } else {
        key_ready_target(&prefix, scope, req->lane, req->target);
        db = t->s->db_ready;
    }
    if ((code = ready_walk_open(t, db, &prefix, now_ms, &w, st)) != HP_OK) {
        return code;
    }
    code = ready_walk_seek(&w, 0, st);
    while (code == HP_OK && w.live && n < req->max) {
        ids[n++] = w.id;
        if (n < req->max) {
            code = ready_walk_next(&w, st);
        }
    }
    ready_walk_close(&w);
    *n_out = n;
    return code;
}

static hp_code
check_claim(const store *s, const store_claim_req *req, hp_status *st)
{
    const store_limits *lim = &s->opts.limits;
    hp_code code;

    if ((code = hp_name_check(req->lane, "lane", st)) != HP_OK ||
        (!req->any_target &&
         (code = hp_target_check(req->target, st)) != HP_OK)) {
        return code;
    }
    if (req->lease_ms < lim->min_lease_ms ||
        req->lease_ms > lim->max_lease_ms) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_LEASE,
                             "lease must be %u-%u ms", lim->min_lease_ms,
                             lim->max_lease_ms);
    }
    if ((code = hp_text_check(req->consumer, lim->max_consumer, "consumer",
                              HP_R_BAD_CONSUMER, st)) != HP_OK) {
        return code;
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
    size_t size = record_weight(&r, true);
    if (req->max_bytes != 0 && *bytes > 0 && *bytes + size > req->max_bytes) {
        *full = true; /* left pending for the next claim */
        return HP_OK;
    }
    *bytes += size;
    if (r.state != STORE_STATE_PENDING) {
        char text[HP_ID_TEXT_LEN + 1];
        hp_id_format(id, text);
        return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
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
    if ((code = event_note(t, scope, id, &r, STORE_EVENT_CLAIMED, now_ms,
                           st)) != HP_OK) {
        return code;
    }
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
    if ((code = store_maint_step(t, STORE_STEP_EXPIRE_LEASES, now_ms,
                                 CLAIM_EXPIRE_STEP, &expired, st)) != HP_OK) {
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
    return txn_fail(t, event_flush(t, code, now_ms, st));
}
