/*
 * enqueue.c - drafts become messages. Every draft of a batch is validated
 * before the first write, so a bad draft leaves no trace. A dedupe key is
 * looked up by (scope, lane, XXH3-128(key)) and the full key is compared,
 * so two keys that share a hash (forced in tests through the dedupe_hash
 * hook) stay two messages: the second one takes the next sequence byte.
 */
#include <string.h>

#include <xxhash.h>

#include "common/names.h"
#include "store/store_int.h"

static hp_code
bad_draft(hp_status *st, const char *reason, const char *what)
{
    return hp_status_set(st, HP_INVALID_ARGUMENT, reason, "%s", what);
}

static hp_code
check_headers(const store_limits *lim, const store_draft *d, hp_status *st)
{
    if (d->n_headers > lim->max_headers) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_HEADER,
                             "%zu headers, at most %u allowed", d->n_headers,
                             lim->max_headers);
    }
    if (d->n_headers > 0 && d->headers == NULL) {
        return bad_draft(st, HP_R_BAD_HEADER, "headers missing");
    }
    size_t total = 0;
    for (size_t h = 0; h < d->n_headers; h++) {
        const store_header *hd = &d->headers[h];
        if (hd->key.len == 0 || hd->key.len > 256 ||
            !hp_utf8_valid(hd->key.p, hd->key.len) ||
            !hp_utf8_valid(hd->value.p, hd->value.len)) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_HEADER,
                                 "header %zu needs a 1-256 byte UTF-8 key "
                                 "and a UTF-8 value without NUL",
                                 h);
        }
        total += hd->key.len + hd->value.len;
    }
    if (total > lim->max_header_bytes) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_HEADER,
                             "headers hold %zu bytes, at most %zu allowed",
                             total, lim->max_header_bytes);
    }
    return HP_OK;
}

static hp_code
check_draft(const store *s, const store_draft *d, uint64_t now_ms,
            hp_status *st)
{
    const store_limits *lim = &s->opts.limits;
    hp_code code;

    if ((code = hp_name_check(d->lane, "lane", st)) != HP_OK ||
        (code = hp_target_check(d->target, st)) != HP_OK) {
        return code;
    }
    if (hp_str_eq(d->lane, hp_str_c(STORE_EVENTS_LANE))) {
        /* Only the store writes events: a draft of its own there could
         * carry a URL and send events about events. */
        return bad_draft(st, HP_R_BAD_NAME,
                         "lane '" STORE_EVENTS_LANE "' is reserved for state "
                         "events");
    }
    if (d->payload_len > lim->max_payload) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_PAYLOAD_TOO_LARGE,
                             "payload of %zu bytes is over the limit of %zu",
                             d->payload_len, lim->max_payload);
    }
    if (d->payload_len > 0 && d->payload == NULL) {
        return bad_draft(st, HP_R_PAYLOAD_TOO_LARGE, "payload missing");
    }
    if (d->priority > STORE_PRIORITY_MAX) {
        return bad_draft(st, HP_R_BAD_PRIORITY, "priority must be 0-9");
    }
    if (d->max_attempts > lim->max_max_attempts) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_MAX_ATTEMPTS,
                             "max_attempts must be 1-%u (0 for the lane's "
                             "default)",
                             lim->max_max_attempts);
    }
    if (d->available_at_ms != 0 && d->delay_ms != 0) {
        return bad_draft(st, HP_R_BAD_DELAY,
                         "give available_at or delay, not both");
    }
    if (d->delay_ms > lim->max_delay_ms ||
        (d->available_at_ms > now_ms &&
         d->available_at_ms - now_ms > lim->max_delay_ms)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_DELAY,
                             "delay is over the limit of %llu ms",
                             (unsigned long long)lim->max_delay_ms);
    }
    if ((code = hp_text_check(d->dedupe_key, lim->max_dedupe_key, "dedupe key",
                              HP_R_BAD_DEDUPE_KEY, st)) != HP_OK) {
        return code;
    }
    if (d->state_webhook_url.len > 0 &&
        (code = store_url_check(d->state_webhook_url, "state_webhook_url",
                                st)) != HP_OK) {
        return code;
    }
    return check_headers(lim, d, st);
}

void
store_dedupe_hash(const store *s, hp_str k, uint8_t out[16])
{
    if (s->opts.dedupe_hash != NULL) {
        s->opts.dedupe_hash(k.p, k.len, out);
        return;
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(k.p, k.len));
    memcpy(out, c.digest, 16);
}

/* Result of a dedupe lookup. */
typedef struct dedupe_slot {
    uint8_t hash[16];
    uint8_t seq;          /* slot to write a new entry into */
    bool reuse;           /* seq holds an expired entry of this very key */
    uint64_t old_expires; /* its expiry, to drop the old expiry entry */
    bool hit;
    hp_id hit_id;
} dedupe_slot;

static hp_code
dedupe_lookup(store_txn *t, hp_str scope, hp_str lane, hp_str dk,
              uint64_t now_ms, dedupe_slot *ds, hp_status *st)
{
    store *s = t->s;
    key k;
    MDB_cursor *cur;
    MDB_val kv, v;
    hp_code code = HP_OK;
    int rc, next_seq = 0;

    memset(ds, 0, sizeof(*ds));
    store_dedupe_hash(s, dk, ds->hash);
    key_dedupe_prefix(&k, scope, lane, ds->hash);
    if ((rc = mdb_cursor_open(t->mdb, s->db_dedupe, &cur)) != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    kv = key_val(&k);
    for (rc = txn_cursor_get(t, cur, &kv, &v, MDB_SET_RANGE); rc == 0;
         rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT)) {
        if (kv.mv_size != k.len + 1 || memcmp(kv.mv_data, k.b, k.len) != 0) {
            break;
        }
        uint8_t seq = ((const uint8_t *)kv.mv_data)[k.len];
        next_seq = seq + 1;
        hp_id id;
        uint64_t exp;
        const uint8_t *full;
        size_t full_len;
        if ((code = dedupe_entry_decode(v.mv_data, v.mv_size, &id, &exp, &full,
                                        &full_len, st)) != HP_OK) {
            goto close_cursor;
        }
        if (full_len != dk.len || memcmp(full, dk.p, dk.len) != 0) {
            continue; /* same hash, different key */
        }
        if (exp > now_ms) {
            ds->hit = true;
            ds->hit_id = id;
        } else {
            ds->reuse = true;
            ds->seq = seq;
            ds->old_expires = exp;
        }
        goto close_cursor;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        code = store_status_from_mdb(s, rc, st);
        goto close_cursor;
    }
    if (next_seq > 255) {
        code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_BAD_DEDUPE_KEY,
                             "too many dedupe keys share one hash");
        goto close_cursor;
    }
    ds->seq = (uint8_t)next_seq;
close_cursor:
    mdb_cursor_close(cur);
    return code;
}

static hp_code
dedupe_store(store_txn *t, hp_str scope, hp_str lane, hp_str dk,
             const dedupe_slot *ds, const hp_id *id, uint64_t expires,
             hp_status *st)
{
    store *s = t->s;
    key k;
    hp_code code;

    if (ds->reuse) {
        key_expiry_dedupe(&k, ds->old_expires, scope, lane, ds->hash, ds->seq);
        if ((code = db_del(t, s->db_expiry, &k, st)) != HP_OK) {
            return code;
        }
    }
    size_t len = dedupe_entry_size(dk.len);
    if (hp_buf_reserve(&s->scratch2, len) != 0) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    dedupe_entry_encode(id, expires, dk.p, dk.len, s->scratch2.p);
    key_dedupe_prefix(&k, scope, lane, ds->hash);
    key_put_u8(&k, ds->seq);
    if ((code = db_put(t, s->db_dedupe, &k, s->scratch2.p, len, st)) != HP_OK) {
        return code;
    }
    key_expiry_dedupe(&k, expires, scope, lane, ds->hash, ds->seq);
    return db_put_empty(t, s->db_expiry, &k, st);
}

static hp_code
put_new_message(store_txn *t, lane_entry *le, hp_str scope,
                const store_draft *d, const hp_id *id, uint64_t now_ms,
                hp_status *st)
{
    store *s = t->s;
    record r;
    hp_code code;

    memset(&r, 0, sizeof(r));
    r.priority = (uint8_t)d->priority;
    r.max_attempts =
        (uint16_t)(d->max_attempts != 0 ? d->max_attempts
                                        : le->settings.max_attempts);
    r.created_at = now_ms;
    r.available_at = now_ms;
    if (d->delay_ms != 0) {
        r.available_at = now_ms + d->delay_ms;
    } else if (d->available_at_ms > now_ms) {
        r.available_at = d->available_at_ms;
    }
    r.lane = d->lane;
    r.target = d->target;
    r.n_headers = (uint16_t)d->n_headers;
    r.payload = d->payload;
    r.payload_len = d->payload_len;
    r.hook_url = d->state_webhook_url;
    if (d->n_headers > 0) {
        size_t hlen = record_headers_size(d->headers, d->n_headers);
        if (hp_buf_reserve(&s->scratch2, hlen) != 0) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        }
        record_headers_encode(d->headers, d->n_headers, s->scratch2.p);
        r.hdr_block = s->scratch2.p;
        r.hdr_block_len = hlen;
    }
    if ((code = msg_make_ready(t, le, scope, id, &r, now_ms, st)) != HP_OK) {
        return code;
    }
    le->total[T_ENQUEUED]++;
    if ((code = msg_insert(t, scope, id, &r, st)) != HP_OK) {
        return code;
    }
    return event_note(t, scope, id, &r, STORE_EVENT_ENQUEUED, now_ms, st);
}

hp_code
enqueue_internal(store_txn *t, hp_str scope, const store_draft *d,
                 uint64_t now_ms, hp_id *id, hp_status *st)
{
    store *s = t->s;
    lane_cache c;
    lane_entry *le;
    hp_code code;

    lane_cache_init(&c, t);
    if ((code = lane_cache_get(&c, scope, d->lane, true, &le, st)) != HP_OK) {
        goto release;
    }
    if (hp_idgen_next(&s->idgen, now_ms, s->opts.rand, s->opts.rand_arg, id) !=
        0) {
        code = hp_status_set(st, HP_INTERNAL, HP_R_STORE_ERROR,
                             "random source failed");
        goto release;
    }
    if ((code = put_new_message(t, le, scope, d, id, now_ms, st)) != HP_OK) {
        goto release;
    }
    code = lane_cache_flush(&c, st);
release:
    lane_cache_release(&c);
    return code;
}

hp_code
check_drafts(const store *s, const char *label, const store_draft *drafts,
             size_t n, uint64_t now_ms, hp_status *st)
{
    for (size_t i = 0; i < n; i++) {
        hp_code code = check_draft(s, &drafts[i], now_ms, st);
        if (code != HP_OK && label != NULL) {
            char what[HP_STATUS_MSG_MAX];
            memcpy(what, st->msg, sizeof(what));
            return hp_status_set(st, code, st->reason, "%s %zu: %s", label, i,
                                 what);
        }
        if (code != HP_OK) {
            return code;
        }
    }
    return HP_OK;
}

hp_code
enqueue_drafts(store_txn *t, hp_str scope, const store_draft *drafts, size_t n,
               uint64_t now_ms, store_enqueued *out, hp_status *st)
{
    store *s = t->s;
    lane_cache c;
    /* The draft's number only helps in a batch: a lone enqueue's error
     * reads "lane name must be ...", not "draft 0: lane name ...". */
    hp_code code =
        check_drafts(s, n > 1 ? "draft" : NULL, drafts, n, now_ms, st);

    if (code != HP_OK || (code = check_room(t, st)) != HP_OK) {
        return code;
    }
    lane_cache_init(&c, t);
    for (size_t i = 0; i < n; i++) {
        const store_draft *d = &drafts[i];
        lane_entry *le;
        dedupe_slot ds;
        bool dedupe = false;

        out[i].duplicate = false;
        if ((code = lane_cache_get(&c, scope, d->lane, true, &le, st)) !=
            HP_OK) {
            goto release;
        }
        if (d->dedupe_key.len > 0 && le->settings.dedupe_window_ms > 0) {
            if ((code = dedupe_lookup(t, scope, d->lane, d->dedupe_key, now_ms,
                                      &ds, st)) != HP_OK) {
                goto release;
            }
            if (ds.hit) {
                out[i].id = ds.hit_id;
                out[i].duplicate = true;
                le->total[T_DEDUPE_HITS]++;
                le->dirty = true;
                continue;
            }
            dedupe = true;
        }
        if (hp_idgen_next(&s->idgen, now_ms, s->opts.rand, s->opts.rand_arg,
                          &out[i].id) != 0) {
            code = hp_status_set(st, HP_INTERNAL, HP_R_STORE_ERROR,
                                 "random source failed");
            goto release;
        }
        if ((code = put_new_message(t, le, scope, d, &out[i].id, now_ms, st)) !=
            HP_OK) {
            goto release;
        }
        if (dedupe &&
            (code = dedupe_store(
                 t, scope, d->lane, d->dedupe_key, &ds, &out[i].id,
                 now_ms + le->settings.dedupe_window_ms, st)) != HP_OK) {
            goto release;
        }
    }
    code = lane_cache_flush(&c, st);
    if (code == HP_OK) {
        /* Checked again with this batch written, so that one big batch
         * cannot eat the reserve that the check before admitted it to. */
        code = check_room(t, st);
    }
release:
    lane_cache_release(&c);
    return code;
}

hp_code
store_enqueue(store_txn *t, hp_str scope, const store_draft *drafts, size_t n,
              uint64_t now_ms, store_enqueued *out, hp_status *st)
{
    hp_code code;

    if ((code = check_write(t, st)) != HP_OK ||
        (code = check_scope(scope, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    if (n == 0) {
        return txn_fail(t,
                        hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_EMPTY_BATCH,
                                      "enqueue needs at least one draft"));
    }
    if (n > t->s->opts.limits.max_batch) {
        return txn_fail(t, hp_status_set(st, HP_INVALID_ARGUMENT,
                                         HP_R_BATCH_TOO_LARGE,
                                         "batch of %zu drafts is over the "
                                         "limit of %u",
                                         n, t->s->opts.limits.max_batch));
    }
    hp_code code2 = enqueue_drafts(t, scope, drafts, n, now_ms, out, st);
    return txn_fail(t, event_flush(t, code2, now_ms, st));
}
