/*
 * fuzz_record.c - libFuzzer target for the store's strict decoders
 * (store/record.h): message records, the header blocks inside them, and
 * dedupe entries. These read whatever LMDB hands back, so a damaged file
 * must give DATA_LOSS, never a read out of bounds.
 *
 * Input: byte 0 chooses, the rest is the stored value.
 *   bit 0  0: message record, 1: dedupe entry
 *   bit 1  reseal: write the right XXH3 checksum over bytes [0, 8) first.
 *          The fuzzer cannot compute XXH3, so without this nearly every
 *          mutation stops at the checksum; with it, mutations reach the
 *          length and field checks behind it.
 *
 * Invariants: a failure is DATA_LOSS/CORRUPT_RECORD; a success points only
 * inside the input, holds a valid state and priority, re-encodes (with
 * record_size/record_encode) to exactly the input bytes, and its header
 * block expands into n_headers headers that encode back to the block.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/reasons.h"
#include "fuzz_input.h"
#include "store/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const hp_id fuzz_id = { { 0x01, 0x8c, 0x2a, 0x3b, 0x4c, 0x5d, 0x6e, 0x7f,
                                 0x80, 0x91, 0xa2, 0xb3, 0xc4, 0xd5, 0xe6,
                                 0xf7 } };

static void
check_failure(hp_code code, const hp_status *st)
{
    FUZZ_CHECK(code == HP_DATA_LOSS, "code %s", hp_code_name(code));
    FUZZ_CHECK(st->reason != NULL &&
                   strcmp(st->reason, HP_R_CORRUPT_RECORD) == 0,
               "reason %s", st->reason != NULL ? st->reason : "(null)");
}

static void
check_headers(const record *r)
{
    size_t n = r->n_headers;
    store_header *h = malloc((n > 0 ? n : 1) * sizeof(*h));
    FUZZ_CHECK(h != NULL, "out of memory");

    int rc = record_headers_decode(r->hdr_block, r->hdr_block_len, n, h);

    FUZZ_CHECK(rc == 0,
               "a header block record_decode accepted did not "
               "expand (%zu headers, %zu bytes)",
               n, r->hdr_block_len);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(fuzz_inside(h[i].key.p, h[i].key.len, r->hdr_block,
                               r->hdr_block_len),
                   "header %zu key outside the block", i);
        FUZZ_CHECK(fuzz_inside(h[i].value.p, h[i].value.len, r->hdr_block,
                               r->hdr_block_len),
                   "header %zu value outside the block", i);
    }
    size_t blen = record_headers_size(h, n);
    FUZZ_CHECK(blen == r->hdr_block_len, "header block %zu bytes, re-sized %zu",
               r->hdr_block_len, blen);
    uint8_t *again = malloc(blen > 0 ? blen : 1);
    FUZZ_CHECK(again != NULL, "out of memory");
    record_headers_encode(h, n, again);
    FUZZ_CHECK(blen == 0 || memcmp(again, r->hdr_block, blen) == 0,
               "header block does not re-encode to the same bytes");
    free(again);
    free(h);
}

static void
fuzz_message(const uint8_t *p, size_t len)
{
    record r;
    hp_status st;

    memset(&r, 0xa5, sizeof(r)); /* so a field left unset shows */
    hp_code code = record_decode(p, len, &fuzz_id, &r, &st);
    if (code != HP_OK) {
        check_failure(code, &st);
        return;
    }

    FUZZ_CHECK(len >= RECORD_FIXED_LEN, "accepted %zu bytes", len);
    FUZZ_CHECK(r.state >= STORE_STATE_PENDING && r.state <= STORE_STATE_DEAD &&
                   r.state != STORE_STATE_DELAYED,
               "state %u", r.state);
    FUZZ_CHECK(r.priority <= STORE_PRIORITY_MAX, "priority %u", r.priority);
    FUZZ_CHECK(fuzz_inside(r.lane.p, r.lane.len, p, len), "lane outside");
    FUZZ_CHECK(fuzz_inside(r.target.p, r.target.len, p, len), "target");
    FUZZ_CHECK(fuzz_inside(r.consumer.p, r.consumer.len, p, len), "consumer");
    FUZZ_CHECK(fuzz_inside(r.hdr_block, r.hdr_block_len, p, len), "headers");
    FUZZ_CHECK(fuzz_inside(r.error.p, r.error.len, p, len), "error");
    FUZZ_CHECK(fuzz_inside(r.result, r.result_len, p, len), "result");
    FUZZ_CHECK(fuzz_inside(r.payload, r.payload_len, p, len), "payload");

    size_t n = record_size(&r);
    FUZZ_CHECK(n == len, "decoded %zu bytes, record_size says %zu", len, n);
    uint8_t *out = malloc(n);
    FUZZ_CHECK(out != NULL, "out of memory");
    record_encode(&r, out);
    FUZZ_CHECK(memcmp(out, p, len) == 0,
               "record does not re-encode to the bytes it was decoded from");
    free(out);

    check_headers(&r);
}

static void
fuzz_dedupe(const uint8_t *p, size_t len)
{
    hp_id id;
    uint64_t expires_at;
    const uint8_t *key = NULL;
    size_t key_len = 0;
    hp_status st;

    hp_code code =
        dedupe_entry_decode(p, len, &id, &expires_at, &key, &key_len, &st);
    if (code != HP_OK) {
        check_failure(code, &st);
        return;
    }

    FUZZ_CHECK(len >= DEDUPE_FIXED_LEN, "accepted %zu bytes", len);
    FUZZ_CHECK(fuzz_inside(key, key_len, p, len), "key outside");
    size_t n = dedupe_entry_size(key_len);
    FUZZ_CHECK(n == len, "decoded %zu bytes, dedupe_entry_size says %zu", len,
               n);
    uint8_t *out = malloc(n);
    FUZZ_CHECK(out != NULL, "out of memory");
    dedupe_entry_encode(&id, expires_at, key, key_len, out);
    FUZZ_CHECK(memcmp(out, p, len) == 0,
               "dedupe entry does not re-encode to the same bytes");
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    uint8_t mode = data[0];
    size_t len = size - 1;
    /* A copy of exactly len bytes, so ASan sees any read past the value. */
    uint8_t *p = malloc(len > 0 ? len : 1);
    if (p == NULL) {
        return 0;
    }
    if (len > 0) {
        memcpy(p, data + 1, len);
    }
    if ((mode & 0x02u) != 0 && len >= 8) {
        record_seal(p, len);
    }
    if ((mode & 0x01u) == 0) {
        fuzz_message(p, len);
    } else {
        fuzz_dedupe(p, len);
    }
    free(p);
    return 0;
}
