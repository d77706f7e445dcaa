/*
 * msg.c - the moves every operation shares: reading and writing message
 * records, and the index bookkeeping of the state changes (ready, claimed,
 * dead). Each move keeps three things in step: the record, its index
 * entries and the lane's gauges. Callers write the record last, after the
 * move has updated it.
 */
#include <string.h>

#include "store/store_int.h"
#include "store/wal.h"

int
txn_get(store_txn *t, MDB_dbi db, MDB_val *k, MDB_val *v)
{
    t->reads++;
    return mdb_get(t->mdb, db, k, v);
}

int
txn_cursor_get(store_txn *t, MDB_cursor *cur, MDB_val *k, MDB_val *v,
               MDB_cursor_op op)
{
    t->reads++;
    return mdb_cursor_get(cur, k, v, op);
}

uint64_t
store_txn_index_ops(const store_txn *t)
{
    return t->reads + t->writes;
}

/* t's cursor on db (write transactions), opened at first use; *out is
 * NULL for a table past TXN_CURSORS, which then goes without. */
static int
write_cursor(store_txn *t, MDB_dbi db, MDB_cursor **out)
{
    *out = NULL;
    if (db >= TXN_CURSORS) {
        return 0;
    }
    if (t->cursors[db] == NULL) {
        int rc = mdb_cursor_open(t->mdb, db, &t->cursors[db]);
        if (rc != 0) {
            t->cursors[db] = NULL;
            return rc;
        }
    }
    *out = t->cursors[db];
    return 0;
}

/* Puts k = v in db, through t's cursor on it. */
static int
cursor_put(store_txn *t, MDB_dbi db, MDB_val *k, MDB_val *v, unsigned flags)
{
    MDB_cursor *c;
    if (db == t->s->db_messages) {
        t->s->scratch_current = false;
    }
    int rc = write_cursor(t, db, &c);
    if (rc != 0) {
        return rc;
    }
    return c != NULL ? mdb_cursor_put(c, k, v, flags)
                     : mdb_put(t->mdb, db, k, v, flags);
}

hp_code
db_put(store_txn *t, MDB_dbi db, const key *k, const void *v, size_t vlen,
       hp_status *st)
{
    MDB_val kv = key_val(k);
    MDB_val vv = store_val(v, vlen);
    t->writes++;
    int rc = cursor_put(t, db, &kv, &vv, 0);
    return rc == 0 ? wal_note_put(t, db, &kv, &vv, st)
                   : store_status_from_mdb(t->s, rc, st);
}

hp_code
db_put_empty(store_txn *t, MDB_dbi db, const key *k, hp_status *st)
{
    return db_put(t, db, k, "", 0, st);
}

hp_code
db_del(store_txn *t, MDB_dbi db, const key *k, hp_status *st)
{
    MDB_val kv = key_val(k);
    MDB_cursor *c;
    t->writes++;
    if (db == t->s->db_messages) {
        t->s->scratch_current = false;
    }
    int rc = write_cursor(t, db, &c);
    if (rc == 0 && c != NULL) {
        /* No value wanted: a large one would be read for nothing. */
        if ((rc = mdb_cursor_get(c, &kv, NULL, MDB_SET)) == 0) {
            rc = mdb_cursor_del(c, 0);
        }
    } else if (rc == 0) {
        rc = mdb_del(t->mdb, db, &kv, NULL);
    }
    if (rc == 0) {
        return wal_note_del(t, db, &kv, st);
    }
    if (rc == MDB_NOTFOUND) {
        return HP_OK;
    }
    return store_status_from_mdb(t->s, rc, st);
}

/* Looks message k up: in a write transaction through its messages
 * cursor, which drops the standing of msg_load_copy's copy. */
static int
msg_lookup(store_txn *t, const key *k, MDB_val *v)
{
    MDB_val kv = key_val(k);
    MDB_cursor *c = NULL;
    if (t->write) {
        t->s->scratch_current = false;
        int rc = write_cursor(t, t->s->db_messages, &c);
        if (rc != 0) {
            return rc;
        }
    }
    return c != NULL ? txn_cursor_get(t, c, &kv, v, MDB_SET)
                     : txn_get(t, t->s->db_messages, &kv, v);
}

static hp_code
msg_get_raw(store_txn *t, hp_str scope, const hp_id *id, MDB_val *v,
            hp_status *st)
{
    key k;
    key_message(&k, scope, id);
    int rc = msg_lookup(t, &k, v);
    if (rc == MDB_NOTFOUND) {
        char text[HP_ID_TEXT_LEN + 1];
        hp_id_format(id, text);
        return hp_status_set(st, HP_NOT_FOUND, HP_R_NO_MESSAGE,
                             "message %s not found in scope '%.*s'", text,
                             (int)scope.len, scope.p);
    }
    return rc == 0 ? HP_OK : store_status_from_mdb(t->s, rc, st);
}

hp_code
msg_load(store_txn *t, hp_str scope, const hp_id *id, record *r, hp_status *st)
{
    MDB_val v;
    hp_code code = msg_get_raw(t, scope, id, &v, st);
    if (code != HP_OK) {
        return code;
    }
    return record_decode(v.mv_data, v.mv_size, id, r, st);
}

hp_code
msg_load_copy(store_txn *t, hp_str scope, const hp_id *id, record *r,
              hp_status *st)
{
    MDB_val v;
    hp_code code = msg_get_raw(t, scope, id, &v, st);
    if (code != HP_OK) {
        return code;
    }
    /* LMDB may rewrite a value in place when the same key is put again in
     * this transaction, so the old record must not be read from the map
     * while the new one is written. */
    if (hp_buf_reserve(&t->s->scratch, v.mv_size) != 0) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    memcpy(t->s->scratch.p, v.mv_data, v.mv_size);
    t->s->scratch.len = v.mv_size;
    key_message(&t->s->scratch_key, scope, id);
    t->s->scratch_current = true;
    return record_decode(t->s->scratch.p, v.mv_size, id, r, st);
}

/* existing: the record is rewritten, and the log gets the span that
 * changed (wal_note_changed); else it is new, and is logged whole. */
static hp_code
put_record(store_txn *t, hp_str scope, const hp_id *id, const record *r,
           bool existing, hp_status *st)
{
    store *s = t->s;
    key k;
    key_message(&k, scope, id);
    MDB_val kv = key_val(&k);
    MDB_val v = store_val(NULL, record_size(r));
    t->writes++;
    /* The log's patch is taken against the caller's copy (msg_load_copy),
     * when it still is the value; else the record is logged whole. The
     * put leaves scratch as it is, so the copy outlives it. */
    bool known = existing && s->scratch_current &&
                 s->scratch_key.len == k.len &&
                 memcmp(s->scratch_key.b, k.b, k.len) == 0;
    MDB_val old = store_val(s->scratch.p, s->scratch.len);
    MDB_cursor *at =
        s->db_messages < TXN_CURSORS ? t->cursors[s->db_messages] : NULL;
    s->scratch_current = false;
    int rc;
    if (known && at != NULL) {
        /* The messages cursor still rests on this record (msg_load_copy
         * put it there and nothing moved it since, or the copy would not
         * be current): replace it there, without a put's B-tree search
         * (880 instructions against 2,600, callgrind on store_bench's
         * claims and acks). Encoded aside and copied in, because LMDB
         * 0.9.24 skips the search only for flags == MDB_CURRENT exactly;
         * with MDB_RESERVE added it would search again. */
        if (hp_buf_reserve(&s->rewrite, v.mv_size) != 0) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        }
        record_encode(r, s->rewrite.p);
        v.mv_data = s->rewrite.p;
        rc = mdb_cursor_put(at, &kv, &v, MDB_CURRENT);
    } else if ((rc = cursor_put(t, s->db_messages, &kv, &v, MDB_RESERVE)) ==
               0) {
        record_encode(r, v.mv_data);
    }
    if (rc != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    return wal_note_changed(t, s->db_messages, &kv, &v, known ? &old : NULL,
                            st);
}

hp_code
msg_put(store_txn *t, hp_str scope, const hp_id *id, const record *r,
        hp_status *st)
{
    return put_record(t, scope, id, r, true, st);
}

hp_code
msg_insert(store_txn *t, hp_str scope, const hp_id *id, const record *r,
           hp_status *st)
{
    return put_record(t, scope, id, r, false, st);
}

hp_code
msg_make_ready(store_txn *t, lane_entry *le, hp_str scope, const hp_id *id,
               record *r, uint64_t now_ms, hp_status *st)
{
    key k;
    hp_code code;

    r->state = STORE_STATE_PENDING;
    r->lease_expires_at = 0;
    r->finished_at = 0;
    key_ready(&k, scope, r->lane, r->target, r->priority, r->available_at, id);
    if ((code = db_put_empty(t, t->s->db_ready, &k, st)) != HP_OK) {
        return code;
    }
    key_lane_ready(&k, scope, r->lane, r->priority, r->available_at, id);
    if ((code = db_put_empty(t, t->s->db_lane_ready, &k, st)) != HP_OK) {
        return code;
    }
    le->dirty = true;
    if (r->available_at > now_ms) {
        key_schedule(&k, r->available_at, scope, id);
        if ((code = db_put_empty(t, t->s->db_schedule, &k, st)) != HP_OK) {
            return code;
        }
        r->flags |= REC_F_SCHEDULED;
        le->gauge[G_DELAYED]++;
    } else {
        r->flags &= (uint8_t)~REC_F_SCHEDULED;
        le->gauge[G_PENDING]++;
        if (!le->settings.paused) {
            txn_note_ready(t, scope, r->lane, 1);
        }
    }
    return HP_OK;
}

hp_code
msg_unready(store_txn *t, lane_entry *le, hp_str scope, const hp_id *id,
            record *r, uint64_t now_ms, hp_status *st)
{
    key k;
    hp_code code;
    (void)now_ms;

    key_ready(&k, scope, r->lane, r->target, r->priority, r->available_at, id);
    if ((code = db_del(t, t->s->db_ready, &k, st)) != HP_OK) {
        return code;
    }
    key_lane_ready(&k, scope, r->lane, r->priority, r->available_at, id);
    if ((code = db_del(t, t->s->db_lane_ready, &k, st)) != HP_OK) {
        return code;
    }
    le->dirty = true;
    if (r->flags & REC_F_SCHEDULED) {
        key_schedule(&k, r->available_at, scope, id);
        if ((code = db_del(t, t->s->db_schedule, &k, st)) != HP_OK) {
            return code;
        }
        r->flags &= (uint8_t)~REC_F_SCHEDULED;
        le->gauge[G_DELAYED]--;
    } else {
        le->gauge[G_PENDING]--;
    }
    return HP_OK;
}

hp_code
msg_make_dead(store_txn *t, lane_entry *le, hp_str scope, const hp_id *id,
              record *r, uint64_t now_ms, hp_status *st)
{
    key k;

    r->state = STORE_STATE_DEAD;
    r->lease_expires_at = 0;
    r->finished_at = now_ms;
    key_dead(&k, scope, r->lane, now_ms, id);
    le->gauge[G_DEAD]++;
    le->total[T_DEAD]++;
    le->dirty = true;
    txn_note_settled(t, scope, id);
    hp_code code = db_put_empty(t, t->s->db_dead, &k, st);
    if (code != HP_OK) {
        return code;
    }
    return event_note(t, scope, id, r, STORE_EVENT_DEAD, now_ms, st);
}

hp_code
msg_fail_attempt(store_txn *t, lane_entry *le, hp_str scope, const hp_id *id,
                 record *r, hp_str error, uint64_t retry_at, uint64_t now_ms,
                 hp_status *st)
{
    key k;
    hp_code code;

    key_lease(&k, r->lease_expires_at, scope, id);
    if ((code = db_del(t, t->s->db_leases, &k, st)) != HP_OK) {
        return code;
    }
    le->gauge[G_CLAIMED]--;
    le->dirty = true;
    r->error = error;
    if (r->attempts >= r->max_attempts) {
        return msg_make_dead(t, le, scope, id, r, now_ms, st);
    }
    if (retry_at != 0) {
        r->available_at = retry_at;
    }
    if ((code = msg_make_ready(t, le, scope, id, r, now_ms, st)) != HP_OK) {
        return code;
    }
    return event_note(t, scope, id, r, STORE_EVENT_RETRY_SCHEDULED, now_ms, st);
}

const char *
store_state_name(store_state s)
{
    switch (s) {
    case STORE_STATE_ANY:
        return "any";
    case STORE_STATE_PENDING:
        return "pending";
    case STORE_STATE_DELAYED:
        return "delayed";
    case STORE_STATE_CLAIMED:
        return "claimed";
    case STORE_STATE_DELIVERED:
        return "delivered";
    case STORE_STATE_DEAD:
        return "dead";
    }
    return "unknown";
}

static hp_code
oom(hp_status *st)
{
    return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                         "out of memory for the result");
}

static int
dup_str(hp_arena *a, hp_str in, hp_str *out)
{
    char *p = hp_arena_dup(a, in.p, in.len);
    if (p == NULL) {
        return -1;
    }
    out->p = p;
    out->len = in.len;
    return 0;
}

/* Both weights below must agree: a page is cut on the record's weight
 * before the message is exported. */
static size_t
weight_of(size_t names, size_t body, size_t n_headers, bool with_body)
{
    size_t w = STORE_WEIGHT_MESSAGE + names;
    return with_body ? w + body + n_headers * STORE_WEIGHT_HEADER : w;
}

size_t
record_weight(const record *r, bool with_body)
{
    /* The header block spends 2 + 4 bytes of lengths per header
     * (record.h); the weight counts the keys and values only. */
    size_t header_bytes = r->hdr_block_len - (size_t)r->n_headers * 6;
    return weight_of(r->lane.len + r->target.len + r->consumer.len +
                         r->error.len + r->hook_url.len,
                     r->payload_len + r->result_len + header_bytes,
                     r->n_headers, with_body);
}

size_t
store_message_weight(const store_message *m, bool with_body)
{
    size_t header_bytes = 0;
    for (size_t i = 0; i < m->n_headers; i++) {
        header_bytes += m->headers[i].key.len + m->headers[i].value.len;
    }
    return weight_of(m->lane.len + m->target.len + m->consumer.len +
                         m->last_error.len + m->state_webhook_url.len,
                     m->payload_len + m->result_len + header_bytes,
                     m->n_headers, with_body);
}

hp_code
msg_export(const record *r, const hp_id *id, uint64_t now_ms, bool with_body,
           hp_arena *arena, store_message *out, hp_status *st)
{
    memset(out, 0, sizeof(*out));
    out->id = *id;
    out->state = (store_state)r->state;
    if (r->state == STORE_STATE_PENDING && r->available_at > now_ms) {
        out->state = STORE_STATE_DELAYED;
    }
    out->priority = r->priority;
    out->attempts = r->attempts;
    out->max_attempts = r->max_attempts;
    out->created_at_ms = r->created_at;
    out->available_at_ms = r->available_at;
    out->lease_expires_at_ms = r->lease_expires_at;
    out->finished_at_ms = r->finished_at;
    if (dup_str(arena, r->lane, &out->lane) != 0 ||
        dup_str(arena, r->target, &out->target) != 0 ||
        dup_str(arena, r->consumer, &out->consumer) != 0 ||
        dup_str(arena, r->error, &out->last_error) != 0 ||
        dup_str(arena, r->hook_url, &out->state_webhook_url) != 0) {
        return oom(st);
    }
    if (!with_body) {
        return HP_OK;
    }
    out->payload = hp_arena_dup(arena, r->payload, r->payload_len);
    out->result = hp_arena_dup(arena, r->result, r->result_len);
    if (out->payload == NULL || out->result == NULL) {
        return oom(st);
    }
    out->payload_len = r->payload_len;
    out->result_len = r->result_len;
    if (r->n_headers > 0) {
        uint8_t *block = hp_arena_dup(arena, r->hdr_block, r->hdr_block_len);
        out->headers =
            hp_arena_alloc(arena, r->n_headers * sizeof(store_header));
        if (block == NULL || out->headers == NULL) {
            return oom(st);
        }
        if (record_headers_decode(block, r->hdr_block_len, r->n_headers,
                                  out->headers) != 0) {
            char text[HP_ID_TEXT_LEN + 1];
            hp_id_format(id, text);
            return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                                 "message %s has damaged headers", text);
        }
        out->n_headers = r->n_headers;
    }
    return HP_OK;
}
