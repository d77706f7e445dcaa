/*
 * sp_test.c - the SP wire format (src/sp/sp.h): handshakes, request
 * headers, URLs, and the frame reader's promises about memory: nothing is
 * allocated for a frame until its bytes arrive, never more than twice what
 * arrived, and never past the budget or the frame limit.
 */
#include "sp/sp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include <cmocka.h>

typedef struct budget {
    long long used;
    long long limit;
    long long peak;
} budget;

static bool
take(void *arg, long long add)
{
    budget *b = arg;
    if (add > 0 && b->used + add > b->limit) {
        return false;
    }
    b->used += add;
    if (b->used > b->peak) {
        b->peak = b->used;
    }
    return true;
}

/* A frame of len bytes of payload filled with fill. */
static uint8_t *
frame(size_t len, uint8_t fill, size_t *out_len)
{
    uint8_t *f = malloc(SP_FRAME_HDR_LEN + len);
    assert_non_null(f);
    sp_put_u64(f, len);
    memset(f + SP_FRAME_HDR_LEN, fill, len);
    *out_len = SP_FRAME_HDR_LEN + len;
    return f;
}

static void
test_handshake_round_trips_and_refuses_the_wrong_peer(void **state)
{
    (void)state;
    uint8_t hs[SP_HANDSHAKE_LEN];

    sp_handshake(SP_PROTO_REQ0, hs);

    assert_memory_equal(hs, "\0SP\0\x00\x30\0\0", 8);
    assert_true(sp_handshake_ok(hs, SP_PROTO_REQ0));
    assert_false(sp_handshake_ok(hs, SP_PROTO_REP0));
    hs[6] = 1; /* reserved bytes must be zero, as NNG checks */
    assert_false(sp_handshake_ok(hs, SP_PROTO_REQ0));
}

static void
test_request_header_ends_at_the_word_with_the_high_bit(void **state)
{
    (void)state;
    const uint8_t direct[] = { 0x80, 0, 0, 7, 'x' };
    const uint8_t hop[] = { 0, 0, 0, 1, 0x80, 0, 0, 7, 'x' };
    const uint8_t shortmsg[] = { 0x80, 0, 0 };
    uint8_t deep[4 * (SP_MAX_HOPS + 1)] = { 0 };
    size_t n = 0;

    assert_int_equal(sp_request_header(direct, sizeof(direct), &n), SP_HDR_OK);
    assert_int_equal(n, 4);
    assert_int_equal(sp_request_header(hop, sizeof(hop), &n), SP_HDR_OK);
    assert_int_equal(n, 8);
    assert_int_equal(sp_request_header(shortmsg, sizeof(shortmsg), &n),
                     SP_HDR_SHORT);
    assert_int_equal(sp_request_header(direct, 0, &n), SP_HDR_SHORT);
    /* SP_MAX_HOPS words are fine, one more is dropped. */
    deep[4 * (SP_MAX_HOPS - 1)] = 0x80;
    assert_int_equal(sp_request_header(deep, sizeof(deep), &n), SP_HDR_OK);
    deep[4 * (SP_MAX_HOPS - 1)] = 0;
    deep[4 * SP_MAX_HOPS] = 0x80;
    assert_int_equal(sp_request_header(deep, sizeof(deep), &n), SP_HDR_HOPS);
}

static void
test_a_whole_frame_in_the_input_is_handed_out_in_place(void **state)
{
    (void)state;
    budget b = { .limit = 1 << 20 };
    sp_reader r;
    size_t len, used, mlen;
    const uint8_t *msg;
    uint8_t *f = frame(100, 'a', &len);
    sp_reader_init(&r, 1 << 20, take, &b);

    sp_read_result res = sp_reader_feed(&r, f, len, &used, &msg, &mlen);

    assert_int_equal(res, SP_MSG);
    assert_int_equal(used, len);
    assert_ptr_equal(msg, f + SP_FRAME_HDR_LEN);
    assert_int_equal(mlen, 100);
    assert_int_equal(b.peak, 0); /* no copy, nothing allocated */
    assert_false(sp_reader_partial(&r));
    free(f);
}

static void
test_two_frames_in_one_input_come_out_one_by_one(void **state)
{
    (void)state;
    sp_reader r;
    size_t l1, l2, used, mlen;
    const uint8_t *msg;
    uint8_t *f1 = frame(3, '1', &l1);
    uint8_t *f2 = frame(5, '2', &l2);
    uint8_t in[64];
    memcpy(in, f1, l1);
    memcpy(in + l1, f2, l2);
    sp_reader_init(&r, 1024, NULL, NULL);

    assert_int_equal(sp_reader_feed(&r, in, l1 + l2, &used, &msg, &mlen),
                     SP_MSG);
    assert_int_equal(used, l1);
    assert_int_equal(mlen, 3);
    assert_int_equal(
        sp_reader_feed(&r, in + used, l1 + l2 - used, &used, &msg, &mlen),
        SP_MSG);
    assert_int_equal(mlen, 5);
    assert_int_equal(msg[0], '2');
    free(f1);
    free(f2);
}

static void
test_a_frame_in_pieces_allocates_only_what_arrived(void **state)
{
    (void)state;
    budget b = { .limit = 64 << 20 };
    sp_reader r;
    size_t len, used, mlen;
    const uint8_t *msg = NULL;
    const size_t big = 16u << 20;
    uint8_t *f = frame(big, 'z', &len);
    sp_reader_init(&r, 16u << 20, take, &b);

    /* The length prefix alone: a 16 MiB frame announced, nothing held. */
    assert_int_equal(sp_reader_feed(&r, f, 8, &used, &msg, &mlen), SP_MORE);
    assert_int_equal(b.used, 0);
    assert_true(sp_reader_partial(&r));
    size_t at = 8;
    sp_read_result res = SP_MORE;
    while (at < len) {
        size_t chunk = len - at < 100000 ? len - at : 100000;
        res = sp_reader_feed(&r, f + at, chunk, &used, &msg, &mlen);
        at += used;
        /* Never more than twice what arrived (and the first 4 KiB). */
        size_t got = at - 8;
        assert_true((size_t)b.used <= (got * 2 > 4096 ? got * 2 : 4096));
    }

    assert_int_equal(res, SP_MSG);
    assert_int_equal(mlen, big);
    assert_int_equal(msg[big - 1], 'z');
    assert_true((size_t)b.peak <= big);
    /* The next call lets the delivered buffer go. */
    assert_int_equal(sp_reader_feed(&r, f, 0, &used, &msg, &mlen), SP_MORE);
    assert_int_equal(b.used, 0);
    assert_int_equal(sp_reader_held(&r), 0);
    free(f);
}

static void
test_a_frame_at_the_limit_passes_and_one_byte_more_is_too_big(void **state)
{
    (void)state;
    sp_reader r;
    size_t len, used, mlen;
    const uint8_t *msg;
    uint8_t *at_limit = frame(1000, 'a', &len);
    uint8_t over[8];
    sp_put_u64(over, 1001);

    sp_reader_init(&r, 1000, NULL, NULL);
    assert_int_equal(sp_reader_feed(&r, at_limit, len, &used, &msg, &mlen),
                     SP_MSG);
    sp_reader_init(&r, 1000, NULL, NULL);
    assert_int_equal(sp_reader_feed(&r, over, 8, &used, &msg, &mlen),
                     SP_TOO_BIG);
    sp_reader_release(&r);
    free(at_limit);
}

static void
test_the_budget_refuses_growth_and_the_reader_gives_back_what_it_held(
    void **state)
{
    (void)state;
    budget b = { .limit = 10000 };
    sp_reader r;
    size_t len, used, mlen;
    const uint8_t *msg;
    uint8_t *f = frame(50000, 'q', &len);
    sp_reader_init(&r, 1 << 20, take, &b);

    assert_int_equal(sp_reader_feed(&r, f, 5000, &used, &msg, &mlen), SP_MORE);
    sp_read_result res =
        sp_reader_feed(&r, f + 5000, 20000, &used, &msg, &mlen);

    assert_int_equal(res, SP_BUDGET);
    assert_true(b.used <= b.limit);
    sp_reader_release(&r);
    assert_int_equal(b.used, 0);
    free(f);
}

static void
test_urls_split_into_kind_host_and_port(void **state)
{
    (void)state;
    const char *why;
    sp_url u;

    assert_true(sp_url_parse("tcp://127.0.0.1:7450", &u, &why));
    assert_int_equal(u.kind, SP_URL_TCP);
    assert_false(u.tls);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.port, "7450");
    assert_true(sp_url_parse("tls+tcp6://[::1]:0", &u, &why));
    assert_true(u.tls);
    assert_int_equal(u.family, AF_INET6);
    assert_string_equal(u.host, "::1");
    assert_true(sp_url_parse("tcp://:9", &u, &why));
    assert_string_equal(u.host, "");
    assert_true(sp_url_parse("inproc://x", &u, &why));
    assert_int_equal(u.kind, SP_URL_INPROC);
    assert_string_equal(u.name, "x");
    assert_false(sp_url_parse("tcp://host", &u, &why));
    assert_false(sp_url_parse("tcp://host:65536", &u, &why));
    assert_false(sp_url_parse("tcp://::1:80", &u, &why));
    assert_false(sp_url_parse("inproc://", &u, &why));
    assert_false(sp_url_parse("http://x:1", &u, &why));
    assert_non_null(why);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_round_trips_and_refuses_the_wrong_peer),
        cmocka_unit_test(
            test_request_header_ends_at_the_word_with_the_high_bit),
        cmocka_unit_test(
            test_a_whole_frame_in_the_input_is_handed_out_in_place),
        cmocka_unit_test(test_two_frames_in_one_input_come_out_one_by_one),
        cmocka_unit_test(test_a_frame_in_pieces_allocates_only_what_arrived),
        cmocka_unit_test(
            test_a_frame_at_the_limit_passes_and_one_byte_more_is_too_big),
        cmocka_unit_test(
            test_the_budget_refuses_growth_and_the_reader_gives_back_what_it_held),
        cmocka_unit_test(test_urls_split_into_kind_host_and_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
