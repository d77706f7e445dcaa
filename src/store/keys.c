/*
 * keys.c - key builders and parsers for the layouts in keys.h. Builders
 * trust their inputs (validated names, bounded sizes) and assert the bound;
 * parsers trust nothing, because a key read back from a damaged file must
 * become DATA_LOSS, not a wild read.
 */
#include "store/keys.h"

#include <string.h>

#include "common/bytes.h"
#include "common/compiler.h"

_Static_assert(3 * KEY_NAME_MAX + 1 + 8 + HP_ID_LEN <= KEY_MAX,
               "ready key must fit");
_Static_assert(1 + 8 + KEY_NAME_MAX + 128 <= KEY_MAX, "reply keys must fit");
_Static_assert(KEY_MAX <= 511, "LMDB keys are at most 511 bytes");

void
key_put_bytes(key *k, const void *p, size_t len)
{
    HP_ASSERT(len <= KEY_MAX - k->len);
    if (len > 0) {
        memcpy(k->b + k->len, p, len);
    }
    k->len += len;
}

void
key_put_name(key *k, hp_str name)
{
    HP_ASSERT(name.len <= HP_NAME_MAX);
    key_put_u8(k, (uint8_t)name.len);
    key_put_bytes(k, name.p, name.len);
}

void
key_put_u8(key *k, uint8_t v)
{
    key_put_bytes(k, &v, 1);
}

void
key_put_u64(key *k, uint64_t v)
{
    uint8_t b[8];
    hp_put_u64(b, v);
    key_put_bytes(k, b, 8);
}

void
key_scope(key *k, hp_str scope)
{
    k->len = 0;
    key_put_name(k, scope);
}

void
key_message(key *k, hp_str scope, const hp_id *id)
{
    key_scope(k, scope);
    key_put_bytes(k, id->b, HP_ID_LEN);
}

void
key_lane(key *k, hp_str scope, hp_str lane)
{
    key_scope(k, scope);
    key_put_name(k, lane);
}

void
key_ready_prefix(key *k, hp_str scope, hp_str lane)
{
    key_lane(k, scope, lane);
}

void
key_ready_target(key *k, hp_str scope, hp_str lane, hp_str target)
{
    key_lane(k, scope, lane);
    key_put_name(k, target);
}

void
key_ready(key *k, hp_str scope, hp_str lane, hp_str target, uint32_t priority,
          uint64_t available_at, const hp_id *id)
{
    key_ready_target(k, scope, lane, target);
    key_put_u8(k, (uint8_t)priority);
    key_put_u64(k, available_at);
    key_put_bytes(k, id->b, HP_ID_LEN);
}

void
key_lane_ready(key *k, hp_str scope, hp_str lane, uint32_t priority,
               uint64_t available_at, const hp_id *id)
{
    key_lane(k, scope, lane);
    key_put_u8(k, (uint8_t)priority);
    key_put_u64(k, available_at);
    key_put_bytes(k, id->b, HP_ID_LEN);
}

static void
key_timed(key *k, uint64_t at, hp_str scope, const hp_id *id)
{
    k->len = 0;
    key_put_u64(k, at);
    key_put_name(k, scope);
    key_put_bytes(k, id->b, HP_ID_LEN);
}

void
key_lease(key *k, uint64_t at, hp_str scope, const hp_id *id)
{
    key_timed(k, at, scope, id);
}

void
key_schedule(key *k, uint64_t at, hp_str scope, const hp_id *id)
{
    key_timed(k, at, scope, id);
}

void
key_dedupe_prefix(key *k, hp_str scope, hp_str lane, const uint8_t hash[16])
{
    key_lane(k, scope, lane);
    key_put_bytes(k, hash, 16);
}

void
key_dead_prefix(key *k, hp_str scope, hp_str lane)
{
    key_lane(k, scope, lane);
}

void
key_dead(key *k, hp_str scope, hp_str lane, uint64_t at, const hp_id *id)
{
    key_lane(k, scope, lane);
    key_put_u64(k, at);
    key_put_bytes(k, id->b, HP_ID_LEN);
}

void
key_expiry_retention(key *k, uint64_t at, hp_str scope, const hp_id *id)
{
    k->len = 0;
    key_put_u8(k, EXPIRY_RETENTION);
    key_put_u64(k, at);
    key_put_name(k, scope);
    key_put_bytes(k, id->b, HP_ID_LEN);
}

void
key_expiry_dedupe(key *k, uint64_t at, hp_str scope, hp_str lane,
                  const uint8_t hash[16], uint8_t seq)
{
    k->len = 0;
    key_put_u8(k, EXPIRY_DEDUPE);
    key_put_u64(k, at);
    key_put_name(k, scope);
    key_put_name(k, lane);
    key_put_bytes(k, hash, 16);
    key_put_u8(k, seq);
}

void
key_reader_init(key_reader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
}

int
key_read_bytes(key_reader *r, size_t len, const uint8_t **out)
{
    if (r->len - r->off < len) {
        return -1;
    }
    *out = r->p + r->off;
    r->off += len;
    return 0;
}

int
key_read_u8(key_reader *r, uint8_t *out)
{
    const uint8_t *p;
    if (key_read_bytes(r, 1, &p) != 0) {
        return -1;
    }
    *out = p[0];
    return 0;
}

int
key_read_u64(key_reader *r, uint64_t *out)
{
    const uint8_t *p;
    if (key_read_bytes(r, 8, &p) != 0) {
        return -1;
    }
    *out = hp_get_u64(p);
    return 0;
}

int
key_read_id(key_reader *r, hp_id *out)
{
    const uint8_t *p;
    if (key_read_bytes(r, HP_ID_LEN, &p) != 0) {
        return -1;
    }
    memcpy(out->b, p, HP_ID_LEN);
    return 0;
}

int
key_read_name(key_reader *r, hp_str *out)
{
    uint8_t n;
    const uint8_t *p;
    /* Target names may be empty; scope and lane never are, which callers
     * that care check on the parsed value. */
    if (key_read_u8(r, &n) != 0 || n > HP_NAME_MAX ||
        key_read_bytes(r, n, &p) != 0) {
        return -1;
    }
    out->p = (const char *)p;
    out->len = n;
    return 0;
}

int
key_reader_done(const key_reader *r)
{
    return r->off == r->len ? 0 : -1;
}

int
key_parse_ready(const void *p, size_t len, ready_key *out)
{
    key_reader r;
    key_reader_init(&r, p, len);
    if (key_read_name(&r, &out->scope) != 0 ||
        key_read_name(&r, &out->lane) != 0 ||
        key_read_name(&r, &out->target) != 0 ||
        key_read_u8(&r, &out->priority) != 0 ||
        key_read_u64(&r, &out->available_at) != 0 ||
        key_read_id(&r, &out->id) != 0) {
        return -1;
    }
    return key_reader_done(&r);
}

int
key_parse_timed(const void *p, size_t len, uint64_t *at, hp_str *scope,
                hp_id *id)
{
    key_reader r;
    key_reader_init(&r, p, len);
    if (key_read_u64(&r, at) != 0 || key_read_name(&r, scope) != 0 ||
        key_read_id(&r, id) != 0) {
        return -1;
    }
    return key_reader_done(&r);
}

void
key_reply(key *k, hp_str scope, hp_str request_id)
{
    key_scope(k, scope);
    key_put_bytes(k, request_id.p, request_id.len);
}

void
key_expiry_reply(key *k, uint64_t at, hp_str scope, hp_str request_id)
{
    k->len = 0;
    key_put_u8(k, EXPIRY_REPLY);
    key_put_u64(k, at);
    key_put_name(k, scope);
    key_put_bytes(k, request_id.p, request_id.len);
}
