/*
 * limits_test.c - every limit of a request, at n and n+1, against an
 * in-process broker with small limits: payload, batch, names, NUL bytes
 * hidden in strings (refused, never shortened), leases, the long-poll cap,
 * results, headers, and the memory a request may take to decode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "broker/broker.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"

#define MAX_PAYLOAD 1024
#define MAX_FRAME   (1u << 20)

typedef struct fixture {
    char dir[64];
    broker *b;
    nng_socket sock;
} fixture;

static int
setup(void **state)
{
    static int n;
    fixture *f = calloc(1, sizeof(*f));
    broker_config cfg;
    hp_status st;
    char url[64];
    snprintf(f->dir, sizeof(f->dir), "/tmp/hopper-limits-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    /* NNG, the reference peer, dials the broker over loopback TCP. */
    snprintf(url, sizeof(url), "tcp://127.0.0.1:0");
    (void)n;
    broker_config_init(&cfg);
    cfg.listen[0] = url;
    cfg.data_dir = f->dir;
    cfg.sync = STORE_SYNC_NONE;
    cfg.max_payload = MAX_PAYLOAD;
    cfg.max_frame = MAX_FRAME;
    assert_int_equal(broker_start(&cfg, &f->b, &st), HP_OK);
    assert_int_equal(nng_req0_open(&f->sock), 0);
    assert_int_equal(nng_socket_set_ms(f->sock, NNG_OPT_RECVTIMEO, 10000), 0);
    assert_int_equal(nng_socket_set_size(f->sock, NNG_OPT_RECVMAXSZ, 0), 0);
    assert_int_equal(nng_dial(f->sock, broker_bound_url(f->b, 0), NULL, 0), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    nng_close(f->sock);
    broker_stop(f->b);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static uint8_t *
pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len + 1);
    protobuf_c_message_pack(m, b);
    return b;
}

/* Sends body (already packed) as method in scope. protobuf-c cannot pack a
 * string with a NUL in it, so a 0x01 right after a 'b' in the packed
 * envelope is turned into NUL. Returns the status code; copies the
 * reason. */
static uint32_t
send_raw(fixture *f, const char *method, const uint8_t *body, size_t blen,
         const char *scope, char *reason)
{
    Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;
    void *reply = NULL;
    size_t len, rlen = 0;
    req.method = (char *)(uintptr_t)method;
    req.body.data = (uint8_t *)(uintptr_t)body;
    req.body.len = blen;
    req.scope = (char *)(uintptr_t)(scope != NULL ? scope : "");
    uint8_t *env = pack(&req.base, &len);
    /* A scope written as "ab\x01cd" becomes "ab\0cd" on the wire. */
    for (size_t i = 0; scope != NULL && i < len; i++) {
        if (env[i] == 0x01 && i > 0 && env[i - 1] == 'b') {
            env[i] = 0;
        }
    }
    assert_int_equal(nng_send(f->sock, env, len, 0), 0);
    assert_int_equal(nng_recv(f->sock, &reply, &rlen, NNG_FLAG_ALLOC), 0);
    Hopper__V1__Response *r = hopper__v1__response__unpack(NULL, rlen, reply);
    assert_non_null(r);
    uint32_t code = r->status != NULL ? r->status->code : 0;
    snprintf(reason, 48, "%s", r->status != NULL ? r->status->reason : "");
    hopper__v1__response__free_unpacked(r, NULL);
    nng_free(reply, rlen);
    free(env);
    return code;
}

static uint32_t
call(fixture *f, const char *method, const ProtobufCMessage *m, char *reason)
{
    size_t len;
    uint8_t *b = pack(m, &len);
    uint32_t code = send_raw(f, method, b, len, NULL, reason);
    free(b);
    return code;
}

static void
expect(uint32_t code, const char *reason, uint32_t want_code,
       const char *want_reason)
{
    if (code != want_code) {
        fail_msg("code %u (%s), wanted %u (%s)", code, reason, want_code,
                 want_reason != NULL ? want_reason : "-");
    }
    if (want_reason != NULL) {
        assert_string_equal(reason, want_reason);
    }
}

/* Enqueues n drafts of the lane with payload_len bytes each. */
static uint32_t
enqueue_n(fixture *f, const char *lane, size_t n, size_t payload_len,
          size_t n_headers, char *reason)
{
    Hopper__V1__EnqueueRequest req = HOPPER__V1__ENQUEUE_REQUEST__INIT;
    Hopper__V1__Draft *d = calloc(n, sizeof(*d));
    Hopper__V1__Draft **dl = calloc(n, sizeof(*dl));
    Hopper__V1__Header *h = calloc(n_headers + 1, sizeof(*h));
    Hopper__V1__Header **hl = calloc(n_headers + 1, sizeof(*hl));
    uint8_t *payload = calloc(1, payload_len + 1);
    for (size_t i = 0; i < n_headers; i++) {
        hopper__v1__header__init(&h[i]);
        h[i].key = (char *)(uintptr_t) "k";
        h[i].value = (char *)(uintptr_t) "v";
        hl[i] = &h[i];
    }
    for (size_t i = 0; i < n; i++) {
        hopper__v1__draft__init(&d[i]);
        d[i].lane = (char *)(uintptr_t)lane;
        d[i].payload.data = payload;
        d[i].payload.len = payload_len;
        d[i].headers = hl;
        d[i].n_headers = n_headers;
        dl[i] = &d[i];
    }
    req.drafts = dl;
    req.n_drafts = n;
    uint32_t code = call(f, "/hopper.v1.Broker/Enqueue", &req.base, reason);
    free(d);
    free(dl);
    free(h);
    free(hl);
    free(payload);
    return code;
}

static void
test_payload_limit_is_n_and_not_n_plus_one(void **state)
{
    fixture *f = *state;
    char r[48];
    expect(enqueue_n(f, "p", 1, MAX_PAYLOAD, 0, r), r, 0, NULL);
    expect(enqueue_n(f, "p", 1, MAX_PAYLOAD + 1, 0, r), r, 3,
           "PAYLOAD_TOO_LARGE");
}

static void
test_batch_limit_is_1000_drafts(void **state)
{
    fixture *f = *state;
    char r[48];
    expect(enqueue_n(f, "b", 1000, 1, 0, r), r, 0, NULL);
    expect(enqueue_n(f, "b", 1001, 1, 0, r), r, 3, "BATCH_TOO_LARGE");
    expect(enqueue_n(f, "b", 0, 1, 0, r), r, 3, "EMPTY_BATCH");
}

static void
test_header_count_limit_is_64(void **state)
{
    fixture *f = *state;
    char r[48];
    expect(enqueue_n(f, "h", 1, 1, 64, r), r, 0, NULL);
    expect(enqueue_n(f, "h", 1, 1, 65, r), r, 3, "BAD_HEADER");
}

static void
test_lane_name_limit_is_64_bytes(void **state)
{
    fixture *f = *state;
    char r[48], name[70];
    memset(name, 'a', sizeof(name));
    name[64] = '\0';
    expect(enqueue_n(f, name, 1, 1, 0, r), r, 0, NULL);
    name[64] = 'a';
    name[65] = '\0';
    expect(enqueue_n(f, name, 1, 1, 0, r), r, 3, "BAD_NAME");
    expect(enqueue_n(f, "bad name", 1, 1, 0, r), r, 3, "BAD_NAME");
}

static void
test_nul_in_a_lane_name_is_refused_not_shortened(void **state)
{
    fixture *f = *state;
    Hopper__V1__Draft d = HOPPER__V1__DRAFT__INIT;
    Hopper__V1__Draft *dl[1] = { &d };
    Hopper__V1__EnqueueRequest req = HOPPER__V1__ENQUEUE_REQUEST__INIT;
    char r[48];
    size_t len;
    d.lane = (char *)(uintptr_t) "abXcd";
    req.drafts = dl;
    req.n_drafts = 1;
    uint8_t *b = pack(&req.base, &len);
    uint8_t *x = memchr(b, 'X', len);
    assert_non_null(x);
    *x = 0; /* the lane is now "ab\0cd" on the wire */

    uint32_t code = send_raw(f, "/hopper.v1.Broker/Enqueue", b, len, NULL, r);

    expect(code, r, 3, "NUL_IN_STRING");
    Hopper__V1__StatsRequest sr = HOPPER__V1__STATS_REQUEST__INIT;
    sr.lane = (char *)(uintptr_t) "ab";
    expect(call(f, "/hopper.v1.Broker/Stats", &sr.base, r), r, 5, "NO_LANE");
    free(b);
}

static void
test_nul_hidden_behind_a_short_negative_enum_is_refused(void **state)
{
    fixture *f = *state;
    char r[48];
    /* UpdateLaneRequest with lane "ab\0cdef" and settings.backoff = -1 sent
     * as a 5-byte varint: protobuf-c packs -1 as 10 bytes, which would make
     * up for the 5 bytes cut at the NUL if only lengths were compared. */
    static const uint8_t body[] = {
        0x0a, 0x07, 'a',  'b',  0x00, 'c',  'd',  'e',  'f', /* lane */
        0x12, 0x08, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f,      /* backoff -1 */
        0x48, 0x01,                                          /* paused */
        0x1a, 0x06, 'p',  'a',  'u',  's',  'e',  'd',       /* update_mask */
    };

    uint32_t code = send_raw(f, "/hopper.v1.Broker/UpdateLane", body,
                             sizeof(body), NULL, r);

    expect(code, r, 3, "NUL_IN_STRING");
}

static void
test_nul_in_the_scope_is_refused_not_shortened(void **state)
{
    fixture *f = *state;
    Hopper__V1__PingRequest ping = HOPPER__V1__PING_REQUEST__INIT;
    size_t len;
    char r[48];
    uint8_t *b = pack(&ping.base, &len);

    uint32_t code = send_raw(f, "/hopper.v1.Broker/Ping", b, len,
                             "ab\x01"
                             "cd",
                             r);

    expect(code, r, 3, "BAD_ENVELOPE");
    free(b);
}

static uint32_t
claim(fixture *f, const char *lane, uint32_t lease_ms, uint32_t wait_ms,
      char *r)
{
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t)lane;
    cr.lease_ms = lease_ms;
    cr.wait_ms = wait_ms;
    return call(f, "/hopper.v1.Broker/Claim", &cr.base, r);
}

static void
test_lease_bounds_are_100_ms_to_24_h(void **state)
{
    fixture *f = *state;
    char r[48];
    expect(claim(f, "l", 99, 0, r), r, 3, "BAD_LEASE");
    expect(claim(f, "l", 100, 0, r), r, 0, NULL);
    expect(claim(f, "l", 24u * 3600 * 1000, 0, r), r, 0, NULL);
    expect(claim(f, "l", 24u * 3600 * 1000 + 1, 0, r), r, 3, "BAD_LEASE");
}

static void
test_long_poll_wait_is_at_most_30_s(void **state)
{
    fixture *f = *state;
    char r[48];
    expect(enqueue_n(f, "w", 1, 1, 0, r), r, 0, NULL);
    /* A message is due, so the accepted wait returns at once. */
    expect(claim(f, "w", 1000, 30000, r), r, 0, NULL);
    expect(claim(f, "w", 1000, 30001, r), r, 3, "BAD_WAIT");
}

static void
test_result_limit_is_64_kib(void **state)
{
    fixture *f = *state;
    char r[48];
    uint8_t *big = calloc(1, 65537);
    Hopper__V1__AckItem item = HOPPER__V1__ACK_ITEM__INIT;
    Hopper__V1__AckItem *items[1] = { &item };
    Hopper__V1__AckRequest ar = HOPPER__V1__ACK_REQUEST__INIT;
    uint8_t token[16] = { 0 };
    item.id = (char *)(uintptr_t) "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    item.claim_token.data = token;
    item.claim_token.len = 16;
    item.result.data = big;
    item.result.len = 65537;
    ar.items = items;
    ar.n_items = 1;

    expect(call(f, "/hopper.v1.Broker/Ack", &ar.base, r), r, 3,
           "RESULT_TOO_LARGE");
    item.result.len = 65536; /* within the limit: now the id is unknown */
    expect(call(f, "/hopper.v1.Broker/Ack", &ar.base, r), r, 5, "NO_MESSAGE");
    free(big);
}

static void
test_a_request_too_costly_to_decode_is_refused(void **state)
{
    fixture *f = *state;
    /* 400,000 empty drafts: 800 KB on the wire (under the 1 MiB frame),
     * but tens of MB once protobuf-c has built a struct for each. */
    size_t n = 400000;
    uint8_t *body = malloc(2 * n);
    char r[48];
    for (size_t i = 0; i < n; i++) {
        body[2 * i] = 0x0a; /* field 1 (drafts), length-delimited */
        body[2 * i + 1] = 0x00;
    }

    uint32_t code =
        send_raw(f, "/hopper.v1.Broker/Enqueue", body, 2 * n, NULL, r);

    expect(code, r, 8, "DECODE_BUDGET");
    Hopper__V1__PingRequest ping = HOPPER__V1__PING_REQUEST__INIT;
    expect(call(f, "/hopper.v1.Broker/Ping", &ping.base, r), r, 0, NULL);
    free(body);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_payload_limit_is_n_and_not_n_plus_one),
        T(test_batch_limit_is_1000_drafts),
        T(test_header_count_limit_is_64),
        T(test_lane_name_limit_is_64_bytes),
        T(test_nul_in_a_lane_name_is_refused_not_shortened),
        T(test_nul_hidden_behind_a_short_negative_enum_is_refused),
        T(test_nul_in_the_scope_is_refused_not_shortened),
        T(test_lease_bounds_are_100_ms_to_24_h),
        T(test_long_poll_wait_is_at_most_30_s),
        T(test_result_limit_is_64_kib),
        T(test_a_request_too_costly_to_decode_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
