/*
 * fuzz_frame.c - libFuzzer target for the SP frame reader (src/sp/sp.c),
 * the code every byte from a client goes through in hopperd's listener
 * and every reply in libhopper. The input chooses a frame limit, a budget
 * and how the stream is cut into reads; the rest is the stream. On every
 * input the reader must agree with a plain reference parser of the whole
 * stream (same messages, same lengths, same bytes, the same error at the
 * same place), and keep its memory promises: a buffer never larger than
 * the message or twice what arrived, never past the budget, all of it
 * given back at the end. Each message also goes through the request
 * header parser and its result is checked against the bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_input.h"
#include "sp/sp.h"

typedef struct budget {
    long long used, limit;
} budget;

static bool
take(void *arg, long long add)
{
    budget *b = arg;
    if (add > 0 && b->used + add > b->limit) {
        return false;
    }
    b->used += add;
    FUZZ_CHECK(b->used >= 0, "budget went negative: %lld", b->used);
    return true;
}

/* The reference: the next frame of stream at *at, or the reason it stops
 * (SP_MORE: the stream ends inside it). */
static sp_read_result
reference(const uint8_t *s, size_t len, size_t *at, size_t max,
          const uint8_t **msg, size_t *mlen)
{
    if (len - *at < SP_FRAME_HDR_LEN) {
        return SP_MORE;
    }
    uint64_t n = sp_get_u64(s + *at);
    if (n > max) {
        return SP_TOO_BIG;
    }
    if (len - *at - SP_FRAME_HDR_LEN < n) {
        return SP_MORE;
    }
    *msg = s + *at + SP_FRAME_HDR_LEN;
    *mlen = (size_t)n;
    *at += SP_FRAME_HDR_LEN + (size_t)n;
    return SP_MSG;
}

static void
check_header(const uint8_t *msg, size_t len)
{
    size_t hl = 0;
    sp_hdr_result h = sp_request_header(msg, len, &hl);
    size_t words = 0;
    while (words < SP_MAX_HOPS && (words + 1) * 4 <= len &&
           (msg[words * 4] & 0x80) == 0) {
        words++;
    }
    if (h == SP_HDR_OK) {
        FUZZ_CHECK(hl == (words + 1) * 4 && hl <= len &&
                       (msg[hl - 4] & 0x80) != 0,
                   "header of %zu bytes", hl);
    } else if (h == SP_HDR_HOPS) {
        FUZZ_CHECK(words == SP_MAX_HOPS, "hops with %zu words", words);
    } else {
        FUZZ_CHECK((words + 1) * 4 > len, "short header with room");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = fuzz_in_make(data, size);
    size_t max = fuzz_u16(&in);
    budget b = { 0, (long long)fuzz_u16(&in) * 4 };
    uint8_t cuts[16];
    for (size_t i = 0; i < sizeof(cuts); i++) {
        cuts[i] = fuzz_u8(&in);
    }
    size_t len;
    const uint8_t *stream = fuzz_rest(&in, &len);
    sp_reader r;
    sp_reader_init(&r, max, take, &b);

    size_t fed = 0, ref_at = 0, round = 0;
    sp_read_result last = SP_MORE;
    while (fed < len) {
        size_t chunk = (size_t)cuts[round++ % sizeof(cuts)] + 1;
        if (chunk > len - fed) {
            chunk = len - fed;
        }
        size_t off = 0;
        while (off < chunk) {
            const uint8_t *msg = NULL;
            size_t used = 0, mlen = 0;
            last = sp_reader_feed(&r, stream + fed + off, chunk - off, &used,
                                  &msg, &mlen);
            FUZZ_CHECK(used <= chunk - off, "used %zu of %zu", used,
                       chunk - off);
            off += used;
            /* Buffer bounds: the message, twice the bytes received. */
            if (sp_reader_held(&r) > 0) {
                FUZZ_CHECK(sp_reader_held(&r) <= r.msg_len,
                           "held %zu for a message of %llu", sp_reader_held(&r),
                           (unsigned long long)r.msg_len);
                size_t got = r.got > 2048 ? r.got * 2 : 4096;
                FUZZ_CHECK(sp_reader_held(&r) <= got, "held %zu for %zu got",
                           sp_reader_held(&r), r.got);
            }
            FUZZ_CHECK(b.used == (long long)sp_reader_held(&r),
                       "budget %lld, held %zu", b.used, sp_reader_held(&r));
            if (last == SP_MSG) {
                const uint8_t *want = NULL;
                size_t wlen = 0;
                sp_read_result rr =
                    reference(stream, len, &ref_at, max, &want, &wlen);
                FUZZ_CHECK(rr == SP_MSG, "reader saw a message, ref %d", rr);
                FUZZ_CHECK(ref_at == fed + off, "message ends at %zu, ref %zu",
                           fed + off, ref_at);
                FUZZ_CHECK(mlen == wlen &&
                               (mlen == 0 || memcmp(msg, want, mlen) == 0),
                           "message differs");
                check_header(msg, mlen);
                continue;
            }
            if (last != SP_MORE) {
                break;
            }
        }
        fed += off;
        if (last != SP_MORE && last != SP_MSG) {
            break;
        }
    }
    if (last == SP_TOO_BIG) {
        const uint8_t *m;
        size_t ml;
        FUZZ_CHECK(reference(stream, len, &ref_at, max, &m, &ml) == SP_TOO_BIG,
                   "too big where the reference is not");
    } else if (last == SP_MORE || last == SP_MSG) {
        /* Everything was taken; what the reference still has is partial. */
        const uint8_t *m;
        size_t ml;
        sp_read_result rr = reference(stream, len, &ref_at, max, &m, &ml);
        FUZZ_CHECK(rr == SP_MORE ||
                       (rr == SP_TOO_BIG && !sp_reader_partial(&r)),
                   "stream ended but the reference has more: %d", rr);
    }
    sp_reader_release(&r);
    FUZZ_CHECK(b.used == 0, "budget not given back: %lld", b.used);

    /* The handshake and URL parsers take any bytes. */
    if (len >= SP_HANDSHAKE_LEN) {
        bool ok = sp_handshake_ok(stream, SP_PROTO_REQ0);
        FUZZ_CHECK(ok == (memcmp(stream, "\0SP\0\0\x30\0\0", 8) == 0),
                   "handshake check");
    }
    char url[300];
    size_t ul = len < sizeof(url) - 1 ? len : sizeof(url) - 1;
    memcpy(url, stream, ul);
    url[ul] = '\0';
    sp_url u;
    const char *why = NULL;
    if (!sp_url_parse(url, &u, &why)) {
        FUZZ_CHECK(why != NULL, "no reason for a bad URL");
    } else {
        FUZZ_CHECK(strlen(u.host) < sizeof(u.host) &&
                       strlen(u.port) < sizeof(u.port),
                   "URL parts");
    }
    return 0;
}
