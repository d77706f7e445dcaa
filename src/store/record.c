/*
 * record.c - message records and dedupe entries: encoders, strict decoders
 * and the XXH3-64 seal. The decoders are the store's edge against a damaged
 * file (and a fuzz target): every length is checked against what is left
 * before it is used, and the record must end exactly where its last field
 * does.
 */
#include "store/record.h"

#include <string.h>

#include <xxhash.h>

#include "common/bytes.h"

void
record_seal(uint8_t *p, size_t len)
{
    hp_put_u64(p, XXH3_64bits(p + 8, len - 8));
}

int
record_check(const uint8_t *p, size_t len)
{
    if (len < 8) {
        return -1;
    }
    return hp_get_u64(p) == XXH3_64bits(p + 8, len - 8) ? 0 : -1;
}

hp_code
record_verify(const void *p, size_t len, size_t min_len, const char *what,
              hp_status *st)
{
    if (len < min_len || record_check(p, len) != 0) {
        return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                             "%s is damaged", what);
    }
    return HP_OK;
}

size_t
record_size(const record *r)
{
    return RECORD_FIXED_LEN + 1 + r->lane.len + 1 + r->target.len + 1 +
           r->consumer.len + 2 + r->hdr_block_len + 2 + r->error.len + 4 +
           r->result_len + 4 + r->payload_len +
           (r->hook_url.len > 0 ? 2 + r->hook_url.len : 0);
}

static uint8_t *
put_blob8(uint8_t *o, hp_str s)
{
    *o++ = (uint8_t)s.len;
    if (s.len > 0) {
        memcpy(o, s.p, s.len);
    }
    return o + s.len;
}

static uint8_t *
put_bytes(uint8_t *o, const void *p, size_t len)
{
    if (len > 0) {
        memcpy(o, p, len);
    }
    return o + len;
}

void
record_encode(const record *r, uint8_t *out)
{
    uint8_t *o = out;

    out[8] = r->hook_url.len > 0 ? 2 : 1;
    out[9] = r->state;
    out[10] = r->priority;
    out[11] = r->flags;
    hp_put_u16(out + 12, r->attempts);
    hp_put_u16(out + 14, r->max_attempts);
    hp_put_u64(out + 16, r->created_at);
    hp_put_u64(out + 24, r->available_at);
    hp_put_u64(out + 32, r->lease_expires_at);
    hp_put_u64(out + 40, r->finished_at);
    memcpy(out + 48, r->token.b, STORE_TOKEN_LEN);
    o = out + RECORD_FIXED_LEN;
    o = put_blob8(o, r->lane);
    o = put_blob8(o, r->target);
    o = put_blob8(o, r->consumer);
    hp_put_u16(o, r->n_headers);
    o = put_bytes(o + 2, r->hdr_block, r->hdr_block_len);
    hp_put_u16(o, (uint16_t)r->error.len);
    o = put_bytes(o + 2, r->error.p, r->error.len);
    hp_put_u32(o, (uint32_t)r->result_len);
    o = put_bytes(o + 4, r->result, r->result_len);
    hp_put_u32(o, (uint32_t)r->payload_len);
    o = put_bytes(o + 4, r->payload, r->payload_len);
    if (r->hook_url.len > 0) {
        hp_put_u16(o, (uint16_t)r->hook_url.len);
        o = put_bytes(o + 2, r->hook_url.p, r->hook_url.len);
    }
    record_seal(out, (size_t)(o - out));
}

typedef struct rd {
    const uint8_t *p;
    size_t len, off;
} rd;

static int
rd_take(rd *r, size_t n, const uint8_t **out)
{
    if (r->len - r->off < n) {
        return -1;
    }
    *out = r->p + r->off;
    r->off += n;
    return 0;
}

static int
rd_str8(rd *r, hp_str *out)
{
    const uint8_t *p;
    if (rd_take(r, 1, &p) != 0) {
        return -1;
    }
    size_t n = p[0];
    if (rd_take(r, n, &p) != 0) {
        return -1;
    }
    out->p = (const char *)p;
    out->len = n;
    return 0;
}

static int
rd_blob(rd *r, size_t width, const uint8_t **out, size_t *len)
{
    const uint8_t *p;
    if (rd_take(r, width, &p) != 0) {
        return -1;
    }
    size_t n = width == 2 ? hp_get_u16(p) : hp_get_u32(p);
    if (rd_take(r, n, out) != 0) {
        return -1;
    }
    *len = n;
    return 0;
}

/* Walks n encoded headers; returns the block length or -1. */
static int
skip_headers(rd *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p;
        size_t len;
        if (rd_blob(r, 2, &p, &len) != 0 || rd_blob(r, 4, &p, &len) != 0) {
            return -1;
        }
    }
    return 0;
}

static hp_code
corrupt(const hp_id *id, hp_status *st, const char *what)
{
    char text[HP_ID_TEXT_LEN + 1];
    hp_id_format(id, text);
    return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                         "message %s is damaged: %s", text, what);
}

hp_code
record_decode(const void *p, size_t len, const hp_id *id, record *out,
              hp_status *st)
{
    const uint8_t *b = p;
    rd r = { b, len, RECORD_FIXED_LEN };
    const uint8_t *q;
    size_t n;

    if (len < RECORD_FIXED_LEN) {
        return corrupt(id, st, "record too short");
    }
    if (record_check(b, len) != 0) {
        return corrupt(id, st, "checksum mismatch");
    }
    if (b[8] != 1 && b[8] != RECORD_VERSION) {
        return corrupt(id, st, "unknown record version");
    }
    out->state = b[9];
    out->priority = b[10];
    out->flags = b[11];
    out->attempts = hp_get_u16(b + 12);
    out->max_attempts = hp_get_u16(b + 14);
    out->created_at = hp_get_u64(b + 16);
    out->available_at = hp_get_u64(b + 24);
    out->lease_expires_at = hp_get_u64(b + 32);
    out->finished_at = hp_get_u64(b + 40);
    memcpy(out->token.b, b + 48, STORE_TOKEN_LEN);
    if (out->state < STORE_STATE_PENDING || out->state > STORE_STATE_DEAD ||
        out->state == STORE_STATE_DELAYED ||
        out->priority > STORE_PRIORITY_MAX) {
        return corrupt(id, st, "bad state or priority");
    }
    if (rd_str8(&r, &out->lane) != 0 || rd_str8(&r, &out->target) != 0 ||
        rd_str8(&r, &out->consumer) != 0 || rd_take(&r, 2, &q) != 0) {
        return corrupt(id, st, "truncated names");
    }
    out->n_headers = hp_get_u16(q);
    size_t hstart = r.off;
    if (skip_headers(&r, out->n_headers) != 0) {
        return corrupt(id, st, "truncated headers");
    }
    out->hdr_block = b + hstart;
    out->hdr_block_len = r.off - hstart;
    if (rd_blob(&r, 2, &q, &n) != 0) {
        return corrupt(id, st, "truncated error text");
    }
    out->error.p = (const char *)q;
    out->error.len = n;
    if (rd_blob(&r, 4, &out->result, &out->result_len) != 0 ||
        rd_blob(&r, 4, &out->payload, &out->payload_len) != 0) {
        return corrupt(id, st, "truncated body");
    }
    out->hook_url.p = NULL;
    out->hook_url.len = 0;
    if (b[8] == 2) {
        if (rd_blob(&r, 2, &q, &n) != 0 || n == 0) {
            return corrupt(id, st, "truncated state webhook url");
        }
        out->hook_url.p = (const char *)q;
        out->hook_url.len = n;
    }
    if (r.off != len) {
        return corrupt(id, st, "trailing bytes");
    }
    return HP_OK;
}

size_t
record_headers_size(const store_header *h, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += 2 + h[i].key.len + 4 + h[i].value.len;
    }
    return total;
}

void
record_headers_encode(const store_header *h, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        hp_put_u16(out, (uint16_t)h[i].key.len);
        out = put_bytes(out + 2, h[i].key.p, h[i].key.len);
        hp_put_u32(out, (uint32_t)h[i].value.len);
        out = put_bytes(out + 4, h[i].value.p, h[i].value.len);
    }
}

int
record_headers_decode(const uint8_t *p, size_t len, size_t n, store_header *out)
{
    rd r = { p, len, 0 };
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        if (rd_blob(&r, 2, &k, &klen) != 0 || rd_blob(&r, 4, &v, &vlen) != 0) {
            return -1;
        }
        out[i].key.p = (const char *)k;
        out[i].key.len = klen;
        out[i].value.p = (const char *)v;
        out[i].value.len = vlen;
    }
    return r.off == len ? 0 : -1;
}

size_t
dedupe_entry_size(size_t key_len)
{
    return DEDUPE_FIXED_LEN + key_len;
}

void
dedupe_entry_encode(const hp_id *id, uint64_t expires_at, const void *key,
                    size_t key_len, uint8_t *out)
{
    memcpy(out + 8, id->b, HP_ID_LEN);
    hp_put_u64(out + 24, expires_at);
    put_bytes(out + DEDUPE_FIXED_LEN, key, key_len);
    record_seal(out, DEDUPE_FIXED_LEN + key_len);
}

hp_code
dedupe_entry_decode(const void *p, size_t len, hp_id *id, uint64_t *expires_at,
                    const uint8_t **key, size_t *key_len, hp_status *st)
{
    const uint8_t *b = p;
    hp_code code = record_verify(p, len, DEDUPE_FIXED_LEN, "dedupe entry", st);
    if (code != HP_OK) {
        return code;
    }
    memcpy(id->b, b + 8, HP_ID_LEN);
    *expires_at = hp_get_u64(b + 24);
    *key = b + DEDUPE_FIXED_LEN;
    *key_len = len - DEDUPE_FIXED_LEN;
    return HP_OK;
}
