/*
 * replies.c - the replay cache behind "safe to receive twice", and the
 * token-checked read that rebuilds a repeated claim's answer.
 *
 * Reply entry (value of `replies`), integers big-endian:
 *   0 8 checksum: XXH3-64 of bytes [8, end) | 8 4 tag | 12 8 expires_at_ms
 *   | 20 .. data
 */
#include <string.h>

#include "common/bytes.h"
#include "store/store_int.h"
#include "store/wal.h"

#define REPLY_FIXED_LEN 20

static hp_code
check_request_id(hp_str request_id, hp_status *st)
{
    if (request_id.len == 0 || request_id.len > STORE_REQUEST_ID_MAX) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME,
                             "request id must be 1-%d bytes",
                             STORE_REQUEST_ID_MAX);
    }
    return HP_OK;
}

/* Reads the raw entry; *found false if absent. */
static hp_code
reply_read(store_txn *t, const key *k, bool *found, uint32_t *tag,
           uint64_t *expires, const void **data, size_t *len, hp_status *st)
{
    MDB_val kv = key_val(k), v;
    int rc = txn_get(t, t->s->db_replies, &kv, &v);

    *found = false;
    if (rc == MDB_NOTFOUND) {
        return HP_OK;
    }
    if (rc != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    hp_code code =
        reply_decode(v.mv_data, v.mv_size, tag, expires, data, len, st);
    *found = code == HP_OK;
    return code;
}

hp_code
reply_decode(const void *p, size_t len, uint32_t *tag, uint64_t *expires,
             const void **data, size_t *data_len, hp_status *st)
{
    const uint8_t *b = p;
    hp_code code =
        record_verify(p, len, REPLY_FIXED_LEN, "replay cache entry", st);
    if (code != HP_OK) {
        return code;
    }
    *tag = hp_get_u32(b + 8);
    *expires = hp_get_u64(b + 12);
    *data = b + REPLY_FIXED_LEN;
    *data_len = len - REPLY_FIXED_LEN;
    return HP_OK;
}

hp_code
store_replay_get(store_txn *t, hp_str scope, hp_str request_id, uint64_t now_ms,
                 bool *found, uint32_t *tag, const void **data, size_t *len,
                 hp_status *st)
{
    key k;
    uint64_t expires = 0;
    hp_code code;

    *found = false;
    if ((code = check_scope(scope, st)) != HP_OK ||
        (code = check_request_id(request_id, st)) != HP_OK) {
        return code;
    }
    key_reply(&k, scope, request_id);
    if ((code = reply_read(t, &k, found, tag, &expires, data, len, st)) !=
        HP_OK) {
        return code;
    }
    if (*found && expires <= now_ms) {
        *found = false;
    }
    return HP_OK;
}

hp_code
store_replay_put(store_txn *t, hp_str scope, hp_str request_id, uint32_t tag,
                 const void *data, size_t len, uint64_t expires_at_ms,
                 hp_status *st)
{
    key k;
    bool found;
    uint32_t old_tag;
    uint64_t old_expires = 0;
    const void *old_data;
    size_t old_len;
    hp_code code;

    if ((code = check_write(t, st)) != HP_OK ||
        (code = check_scope(scope, st)) != HP_OK ||
        (code = check_request_id(request_id, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    key_reply(&k, scope, request_id);
    if ((code = reply_read(t, &k, &found, &old_tag, &old_expires, &old_data,
                           &old_len, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    if (found) {
        key ek;
        key_expiry_reply(&ek, old_expires, scope, request_id);
        if ((code = db_del(t, t->s->db_expiry, &ek, st)) != HP_OK) {
            return txn_fail(t, code);
        }
    }
    MDB_val kv = key_val(&k);
    MDB_val v = store_val(NULL, REPLY_FIXED_LEN + len);
    t->writes++;
    int rc = mdb_put(t->mdb, t->s->db_replies, &kv, &v, MDB_RESERVE);
    if (rc != 0) {
        return txn_fail(t, store_status_from_mdb(t->s, rc, st));
    }
    uint8_t *b = v.mv_data;
    hp_put_u32(b + 8, tag);
    hp_put_u64(b + 12, expires_at_ms);
    if (len > 0) {
        memcpy(b + REPLY_FIXED_LEN, data, len);
    }
    record_seal(b, REPLY_FIXED_LEN + len);
    if ((code = wal_note_put(t, t->s->db_replies, &kv, &v, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    key_expiry_reply(&k, expires_at_ms, scope, request_id);
    return txn_fail(t, db_put_empty(t, t->s->db_expiry, &k, st));
}

hp_code
reply_prune_one(store_txn *t, const key *k, hp_status *st)
{
    key_reader rd;
    uint8_t kind;
    uint64_t at, expires = 0;
    hp_str scope;
    const uint8_t *rid;
    key rk;
    bool found;
    uint32_t tag;
    const void *data;
    size_t len;

    key_reader_init(&rd, k->b, k->len);
    if (key_read_u8(&rd, &kind) != 0 || key_read_u64(&rd, &at) != 0 ||
        key_read_name(&rd, &scope) != 0 ||
        key_read_bytes(&rd, k->len - rd.off, &rid) != 0) {
        return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                             "expiry index holds a malformed key");
    }
    hp_str request_id = { (const char *)rid, k->len - (size_t)(rid - k->b) };
    key_reply(&rk, scope, request_id);
    hp_code code = reply_read(t, &rk, &found, &tag, &expires, &data, &len, st);
    if (code == HP_OK && (!found || expires != at)) {
        return HP_OK; /* gone already, or the id was reused later */
    }
    return db_del(t, t->s->db_replies, &rk, st);
}

hp_code
store_get_held(store_txn *t, hp_str scope, hp_id id, store_token token,
               uint64_t now_ms, hp_arena *arena, store_message *out,
               hp_status *st)
{
    record r;
    hp_code code;

    if ((code = check_scope(scope, st)) != HP_OK ||
        (code = msg_load(t, scope, &id, &r, st)) != HP_OK) {
        return code;
    }
    if (r.state != STORE_STATE_CLAIMED ||
        memcmp(r.token.b, token.b, STORE_TOKEN_LEN) != 0 ||
        now_ms >= r.lease_expires_at) {
        char text[HP_ID_TEXT_LEN + 1];
        hp_id_format(&id, text);
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_LOST_CLAIM,
                             "claim on message %s is no longer held", text);
    }
    if ((code = msg_export(&r, &id, now_ms, true, arena, out, st)) != HP_OK) {
        return code;
    }
    out->token = r.token;
    return HP_OK;
}
