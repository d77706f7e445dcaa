/*
 * settle.c - what a claim holder may do: ack, nack, extend. Only the holder
 * of the current token, before its lease runs out, may change the message;
 * anyone else gets LOST_CLAIM and changes nothing. Ack and nack are safe to
 * receive twice (NNG's req0 resends after a reconnect): a repeat with the
 * same token reports the first outcome again and writes nothing.
 */
#include <string.h>

#include "store/store_int.h"

static hp_code
lost_claim(hp_status *st, const hp_id *id, const char *why)
{
    char text[HP_ID_TEXT_LEN + 1];
    hp_id_format(id, text);
    return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM,
                         "claim on message %s is lost: %s", text, why);
}

static bool
token_eq(const store_token *a, const store_token *b)
{
    return memcmp(a->b, b->b, STORE_TOKEN_LEN) == 0;
}

/* Whether r is held by token at now; if not, fills st with the reason. */
static hp_code
check_held(const record *r, const hp_id *id, const store_token *token,
           uint64_t now_ms, hp_status *st)
{
    if (r->state != STORE_STATE_CLAIMED || !token_eq(&r->token, token)) {
        return lost_claim(st, id, "the token is not the current one");
    }
    if (now_ms >= r->lease_expires_at) {
        return lost_claim(st, id, "the lease expired");
    }
    return HP_OK;
}

static hp_code
check_followups(const store *s, size_t n, hp_status *st)
{
    if (n > s->opts.limits.max_batch) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BATCH_TOO_LARGE,
                             "%zu follow-ups is over the limit of %u", n,
                             s->opts.limits.max_batch);
    }
    return HP_OK;
}

static hp_code
drop_lease(store_txn *t, hp_str scope, const hp_id *id, const record *r,
           hp_status *st)
{
    key k;
    key_lease(&k, r->lease_expires_at, scope, id);
    return db_del(t, t->s->db_leases, &k, st);
}

/* Whether a failure of one item may stay with that item in the per-item
 * form: a claim that is not held, or a message that is gone. Anything
 * else (bad input, a damaged record, a store error) fails the request. */
static bool
item_failure(hp_code code)
{
    return code == HP_FAILED_PRECONDITION || code == HP_NOT_FOUND;
}

/* Phase one of an ack: every item must be held or an exact repeat. With
 * each (the per-item form), an item that is not gets its status there and
 * the others go on; without, the first such item fails the call. Writes
 * nothing either way. */
static hp_code
ack_check(store_txn *t, hp_str scope, const store_ack_item *items, size_t n,
          uint64_t now_ms, hp_status *each, hp_status *st)
{
    const store_limits *lim = &t->s->opts.limits;
    for (size_t i = 0; i < n; i++) {
        if (items[i].result_len > lim->max_result) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_RESULT_TOO_LARGE,
                                 "item %zu: result of %zu bytes is over the "
                                 "limit of %zu",
                                 i, items[i].result_len, lim->max_result);
        }
    }
    for (size_t i = 0; i < n; i++) {
        hp_status *ist = each != NULL ? &each[i] : st;
        record r;
        hp_code code;
        if (each != NULL) {
            hp_status_clear(ist);
        }
        if ((code = msg_load(t, scope, &items[i].id, &r, ist)) == HP_OK &&
            !(r.state == STORE_STATE_DELIVERED &&
              token_eq(&r.token, &items[i].token))) {
            code = check_held(&r, &items[i].id, &items[i].token, now_ms, ist);
        }
        if (code == HP_OK || (each != NULL && item_failure(code))) {
            continue;
        }
        if (each != NULL) {
            *st = *ist;
        }
        return code;
    }
    return HP_OK;
}

/* Marks one held message delivered; *fresh is false for a repeat. */
static hp_code
ack_one(store_txn *t, lane_cache *c, hp_str scope, const store_ack_item *it,
        uint64_t now_ms, bool *fresh, hp_status *st)
{
    record r;
    lane_entry *le;
    key k;
    hp_code code;

    *fresh = false;
    if ((code = msg_load_copy(t, scope, &it->id, &r, st)) != HP_OK) {
        return code;
    }
    if (r.state == STORE_STATE_DELIVERED) {
        return HP_OK; /* a repeat, checked in phase one */
    }
    if ((code = lane_cache_get(c, scope, r.lane, true, &le, st)) != HP_OK ||
        (code = drop_lease(t, scope, &it->id, &r, st)) != HP_OK) {
        return code;
    }
    *fresh = true;
    txn_note_settled(t, scope, &it->id);
    le->gauge[G_CLAIMED]--;
    le->total[T_ACKED]++;
    le->dirty = true;
    r.result = it->result;
    r.result_len = it->result_len;
    if ((code = event_note(t, scope, &it->id, &r, STORE_EVENT_DELIVERED, now_ms,
                           st)) != HP_OK) {
        return code;
    }
    if (le->settings.retention_ms == 0) {
        /* Nothing to keep: the message is done and gone. */
        key_message(&k, scope, &it->id);
        return db_del(t, t->s->db_messages, &k, st);
    }
    r.state = STORE_STATE_DELIVERED;
    r.finished_at = now_ms;
    r.lease_expires_at = 0;
    le->gauge[G_DELIVERED]++;
    key_expiry_retention(&k, now_ms + le->settings.retention_ms, scope,
                         &it->id);
    if ((code = db_put_empty(t, t->s->db_expiry, &k, st)) != HP_OK) {
        return code;
    }
    return msg_put(t, scope, &it->id, &r, st);
}

/* Both forms of ack: each NULL is all or nothing, else per item. */
static hp_code
ack_items(store_txn *t, hp_str scope, const store_ack_item *items, size_t n,
          const store_draft *followups, size_t n_followups, uint64_t now_ms,
          hp_status *each, store_enqueued *followups_out, hp_status *st)
{
    lane_cache c;
    hp_code code;
    bool any_fresh = false, all_ok = true;

    if ((code = check_write(t, st)) != HP_OK ||
        (code = check_scope(scope, st)) != HP_OK ||
        (code = check_limit(t->s, n, "ack items", st)) != HP_OK ||
        (code = check_followups(t->s, n_followups, st)) != HP_OK ||
        (code = check_drafts(t->s, "follow-up", followups, n_followups, now_ms,
                             st)) != HP_OK ||
        (code = ack_check(t, scope, items, n, now_ms, each, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    lane_cache_init(&c, t);
    for (size_t i = 0; i < n; i++) {
        bool fresh;
        if (each != NULL && each[i].code != HP_OK) {
            all_ok = false;
            continue;
        }
        if ((code = ack_one(t, &c, scope, &items[i], now_ms, &fresh, st)) !=
            HP_OK) {
            goto release;
        }
        any_fresh = any_fresh || fresh;
    }
    if ((code = lane_cache_flush(&c, st)) != HP_OK) {
        goto release;
    }
    if (n_followups > 0) {
        if (any_fresh && all_ok) {
            code = enqueue_drafts(t, scope, followups, n_followups, now_ms,
                                  followups_out, st);
        } else {
            /* A repeat (the follow-ups were enqueued the first time), or
             * a batch with a failed item: its follow-ups need them all. */
            memset(followups_out, 0, n_followups * sizeof(*followups_out));
        }
    }
release:
    lane_cache_release(&c);
    return txn_fail(t, event_flush(t, code, now_ms, st));
}

hp_code
store_ack(store_txn *t, hp_str scope, const store_ack_item *items, size_t n,
          const store_draft *followups, size_t n_followups, uint64_t now_ms,
          store_enqueued *followups_out, hp_status *st)
{
    return ack_items(t, scope, items, n, followups, n_followups, now_ms, NULL,
                     followups_out, st);
}

hp_code
store_ack_each(store_txn *t, hp_str scope, const store_ack_item *items,
               size_t n, const store_draft *followups, size_t n_followups,
               uint64_t now_ms, hp_status *item_st,
               store_enqueued *followups_out, hp_status *st)
{
    return ack_items(t, scope, items, n, followups, n_followups, now_ms,
                     item_st, followups_out, st);
}

static hp_code
check_nack(const store *s, const store_nack_req *req, uint64_t now_ms,
           hp_status *st)
{
    const store_limits *lim = &s->opts.limits;
    hp_code code = hp_text_check(req->error, lim->max_error, "error text",
                                 HP_R_BAD_ERROR_TEXT, st);
    if (code != HP_OK) {
        return code;
    }
    if (req->retry_at_ms > now_ms &&
        req->retry_at_ms - now_ms > lim->max_delay_ms) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_DELAY,
                             "retry_at is more than %llu ms away",
                             (unsigned long long)lim->max_delay_ms);
    }
    if (req->mode != STORE_NACK_RETRY && req->mode != STORE_NACK_KEEP_ATTEMPT &&
        req->mode != STORE_NACK_DEAD) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_NACK,
                             "unknown nack mode %d", (int)req->mode);
    }
    if ((code = check_followups(s, req->n_followups, st)) != HP_OK) {
        return code;
    }
    return check_drafts(s, "follow-up", req->followups, req->n_followups,
                        now_ms, st);
}

static void
nack_outcome(const record *r, store_nack_res *res)
{
    res->dead = r->state == STORE_STATE_DEAD;
    res->retry_at_ms = res->dead ? 0 : r->available_at;
}

/* The state change of a nack, by its mode. A claim used an attempt when
 * it was made (store_claim counts them), so giving it back without cost
 * (KEEP_ATTEMPT) takes that attempt back and can never dead-letter; DEAD
 * dead-letters whatever attempts remain. */
static hp_code
nack_move(store_txn *t, lane_entry *le, hp_str scope, const store_nack_req *req,
          record *r, uint64_t now_ms, hp_status *st)
{
    uint64_t retry_at = req->retry_at_ms;
    hp_code code;

    switch (req->mode) {
    case STORE_NACK_DEAD:
        if ((code = drop_lease(t, scope, &req->id, r, st)) != HP_OK) {
            return code;
        }
        le->gauge[G_CLAIMED]--;
        r->error = req->error;
        return msg_make_dead(t, le, scope, &req->id, r, now_ms, st);
    case STORE_NACK_KEEP_ATTEMPT:
        if (r->attempts > 0) {
            r->attempts--;
        }
        /* Without a time it keeps its place in claim order, as a lease
         * that ran out does; without a text the last error stays. */
        if (retry_at != 0 && retry_at < now_ms) {
            retry_at = now_ms;
        }
        return msg_fail_attempt(t, le, scope, &req->id, r,
                                req->error.len > 0 ? req->error : r->error,
                                retry_at, now_ms, st);
    case STORE_NACK_RETRY:
        break;
    }
    if (retry_at == 0) {
        retry_at = now_ms + backoff_delay_ms(t->s, &le->settings, r->attempts);
    } else if (retry_at < now_ms) {
        retry_at = now_ms;
    }
    return msg_fail_attempt(t, le, scope, &req->id, r, req->error, retry_at,
                            now_ms, st);
}

hp_code
store_nack(store_txn *t, hp_str scope, const store_nack_req *req,
           uint64_t now_ms, store_enqueued *followups_out, store_nack_res *res,
           hp_status *st)
{
    lane_cache c;
    lane_entry *le;
    record r;
    hp_code code;

    memset(res, 0, sizeof(*res));
    if ((code = check_write(t, st)) != HP_OK ||
        (code = check_scope(scope, st)) != HP_OK ||
        (code = check_nack(t->s, req, now_ms, st)) != HP_OK ||
        (code = msg_load_copy(t, scope, &req->id, &r, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    if ((r.flags & REC_F_NACKED) && token_eq(&r.token, &req->token) &&
        r.state != STORE_STATE_CLAIMED) {
        /* A repeat: the follow-ups were enqueued the first time. */
        nack_outcome(&r, res);
        if (req->n_followups > 0) {
            memset(followups_out, 0, req->n_followups * sizeof(*followups_out));
        }
        return HP_OK;
    }
    if ((code = check_held(&r, &req->id, &req->token, now_ms, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    lane_cache_init(&c, t);
    if ((code = lane_cache_get(&c, scope, r.lane, true, &le, st)) != HP_OK) {
        goto release;
    }
    le->total[T_NACKED]++;
    r.flags |= REC_F_NACKED;
    if ((code = nack_move(t, le, scope, req, &r, now_ms, st)) != HP_OK ||
        (code = msg_put(t, scope, &req->id, &r, st)) != HP_OK ||
        (code = lane_cache_flush(&c, st)) != HP_OK) {
        goto release;
    }
    nack_outcome(&r, res);
    if (req->n_followups > 0) {
        code = enqueue_drafts(t, scope, req->followups, req->n_followups,
                              now_ms, followups_out, st);
    }
release:
    lane_cache_release(&c);
    return txn_fail(t, event_flush(t, code, now_ms, st));
}

hp_code
store_extend(store_txn *t, hp_str scope, hp_id id, store_token token,
             uint32_t lease_ms, uint64_t now_ms, uint64_t *expires_at_ms,
             hp_status *st)
{
    const store_limits *lim = &t->s->opts.limits;
    record r;
    key k;
    hp_code code;

    if ((code = check_write(t, st)) != HP_OK ||
        (code = check_scope(scope, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    if (lease_ms < lim->min_lease_ms || lease_ms > lim->max_lease_ms) {
        return txn_fail(t,
                        hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_LEASE,
                                      "lease must be %u-%u ms",
                                      lim->min_lease_ms, lim->max_lease_ms));
    }
    if ((code = msg_load_copy(t, scope, &id, &r, st)) != HP_OK ||
        (code = check_held(&r, &id, &token, now_ms, st)) != HP_OK ||
        (code = drop_lease(t, scope, &id, &r, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    r.lease_expires_at = now_ms + lease_ms;
    key_lease(&k, r.lease_expires_at, scope, &id);
    if ((code = db_put_empty(t, t->s->db_leases, &k, st)) != HP_OK ||
        (code = msg_put(t, scope, &id, &r, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    *expires_at_ms = r.lease_expires_at;
    return HP_OK;
}
