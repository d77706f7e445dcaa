/*
 * record.h - the byte layout of the values the store keeps, and their
 * encoders and strict decoders. Every value starts with an XXH3-64 checksum
 * of the bytes after it; a decoder that finds a mismatch, a length running
 * past the end or trailing bytes reports DATA_LOSS, never data.
 *
 * Message record (value of `messages`), integers big-endian:
 *
 *   off  size  field
 *   0    8     checksum: XXH3-64 of bytes [8, end)
 *   8    1     version (RECORD_VERSION)
 *   9    1     state (store_state: PENDING for any ready message, whether
 *              due or not; CLAIMED, DELIVERED, DEAD)
 *   10   1     priority 0..9
 *   11   1     flags (REC_F_SCHEDULED: has a `schedule` entry)
 *   12   2     attempts
 *   14   2     max_attempts
 *   16   8     created_at_ms
 *   24   8     available_at_ms
 *   32   8     lease_expires_at_ms (claimed; 0 otherwise)
 *   40   8     finished_at_ms (delivered or dead; 0 otherwise)
 *   48   16    claim token (the current or, after ack/nack, the last one)
 *   64   ...   u8 lane_len, lane | u8 target_len, target
 *              | u8 consumer_len, consumer
 *              | u16 n_headers, then per header u16 key_len, key,
 *                u32 value_len, value
 *              | u16 error_len, error | u32 result_len, result
 *              | u32 payload_len, payload
 *              | version 2 only: u16 hook_len, state_webhook_url
 *
 * Version 2 (schema 4) appends the draft's state_webhook_url. A record
 * without one is still written as version 1, byte for byte as before, so
 * only messages that carry a URL pay for it; both versions are read.
 *
 * Dedupe entry (value of `dedupe`):
 *   0 8 checksum | 8 16 id | 24 8 expires_at_ms | 32 .. full dedupe key
 *
 * Lane record (value of `lanes`):
 *   0 8 checksum | 8 1 version | settings | gauges | totals (see lanes.c)
 *
 * Changing a layout? Bump RECORD_VERSION and STORE_SCHEMA_VERSION, keep the
 * old decoder, and add a test that opens a store of the previous version.
 */
#ifndef HP_STORE_RECORD_H
#define HP_STORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"
#include "store/store.h"

#define RECORD_VERSION   2 /* the newest; 1 is still read and written */
#define RECORD_FIXED_LEN 64
#define REC_F_SCHEDULED  0x01u
/* Set by a nack, cleared by the next claim: tells a repeated nack from a
 * late one after the lease ran out. */
#define REC_F_NACKED 0x02u

/* A decoded message record. Strings and blobs point into the bytes that
 * were decoded; the header block is kept encoded (hdr_block) and expanded
 * only when a caller wants headers. */
typedef struct record {
    uint8_t state;
    uint8_t priority;
    uint8_t flags;
    uint16_t attempts;
    uint16_t max_attempts;
    uint64_t created_at;
    uint64_t available_at;
    uint64_t lease_expires_at;
    uint64_t finished_at;
    store_token token;
    hp_str lane, target, consumer;
    uint16_t n_headers;
    const uint8_t *hdr_block; /* n_headers encoded headers */
    size_t hdr_block_len;
    hp_str error;
    const uint8_t *result;
    size_t result_len;
    const uint8_t *payload;
    size_t payload_len;
    hp_str hook_url; /* state_webhook_url; empty: version 1, no events */
} record;

/* Bytes record_encode will write for r. */
size_t record_size(const record *r);

/* Writes r into out (record_size(r) bytes) and its checksum. */
void record_encode(const record *r, uint8_t *out);

/* Decodes and verifies p. DATA_LOSS/CORRUPT_RECORD naming id on any fault. */
HP_MUST_USE hp_code record_decode(const void *p, size_t len, const hp_id *id,
                                  record *out, hp_status *st);

/* Encodes headers into the form kept in records; out gets hdr_block_len
 * bytes. Returns the byte count. Caller validated them. */
size_t record_headers_size(const store_header *h, size_t n);
void record_headers_encode(const store_header *h, size_t n, uint8_t *out);

/* Expands an encoded header block into n store_header entries. */
HP_MUST_USE int record_headers_decode(const uint8_t *p, size_t len, size_t n,
                                      store_header *out);

/* Dedupe entries. */
#define DEDUPE_FIXED_LEN 32
size_t dedupe_entry_size(size_t key_len);
void dedupe_entry_encode(const hp_id *id, uint64_t expires_at, const void *key,
                         size_t key_len, uint8_t *out);
HP_MUST_USE hp_code dedupe_entry_decode(const void *p, size_t len, hp_id *id,
                                        uint64_t *expires_at,
                                        const uint8_t **key, size_t *key_len,
                                        hp_status *st);

/* XXH3-64 of [8, len) stored at [0, 8). */
void record_seal(uint8_t *p, size_t len);
int record_check(const uint8_t *p, size_t len);

/* HP_OK when p[0..len) holds at least min_len bytes and its checksum;
 * DATA_LOSS/CORRUPT_RECORD "<what> is damaged" otherwise. */
HP_MUST_USE hp_code record_verify(const void *p, size_t len, size_t min_len,
                                  const char *what, hp_status *st);

#endif
