/*
 * limits_test.c - every limit of a request, at n and n+1, against an
 * in-process broker with small limits: payload, batch, names, NUL bytes
 * hidden in strings (refused, never shortened), leases, the long-poll cap,
 * results, headers, and the memory a request may take to decode. Then the
 * limits of a reply: Claim, List and DeadList stay within --max-frame, and
 * Stats and ListLanes page a lane's targets.
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
#include "inproc_fixture.h"
#include "store/store.h"

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
    fixture *f = calloc(1, sizeof(*f));
    broker_config cfg;
    inproc_prepare(f->dir, "limits", &cfg);
    /* NNG, the reference peer, dials the broker over loopback TCP. */
    cfg.listen[0] = "tcp://127.0.0.1:0";
    cfg.max_payload = MAX_PAYLOAD;
    cfg.max_frame = MAX_FRAME;
    inproc_start(&cfg, &f->b, 0, &f->sock);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    inproc_stop(f->dir, f->b, &f->sock);
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
 * envelope is turned into NUL. Returns the response (free it with
 * hopper__v1__response__free_unpacked) and its size on the wire. */
static Hopper__V1__Response *
round_trip(fixture *f, const char *method, const uint8_t *body, size_t blen,
           const char *scope, size_t *wire_len)
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
    nng_free(reply, rlen);
    free(env);
    *wire_len = rlen;
    return r;
}

/* The status code of a response; copies the reason. */
static uint32_t
status_of(const Hopper__V1__Response *r, char *reason)
{
    snprintf(reason, 48, "%s", r->status != NULL ? r->status->reason : "");
    return r->status != NULL ? r->status->code : 0;
}

static uint32_t
send_raw(fixture *f, const char *method, const uint8_t *body, size_t blen,
         const char *scope, char *reason)
{
    size_t wire;
    Hopper__V1__Response *r = round_trip(f, method, body, blen, scope, &wire);
    uint32_t code = status_of(r, reason);
    hopper__v1__response__free_unpacked(r, NULL);
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

/* What a draft may carry beyond its payload. */
typedef struct draft_opts {
    size_t n_headers;
    const char *target;    /* non-NULL: target "<target><i>" for draft i */
    uint32_t max_attempts; /* 0: the lane's */
} draft_opts;

/* Enqueues n drafts of the lane with payload_len bytes each. */
static uint32_t
enqueue_with(fixture *f, const char *lane, size_t n, size_t payload_len,
             const draft_opts *o, char *reason)
{
    size_t n_headers = o->n_headers;
    char(*targets)[65] = calloc(n + 1, sizeof(*targets));
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
        d[i].max_attempts = o->max_attempts;
        if (o->target != NULL) {
            snprintf(targets[i], sizeof(targets[i]), "%s%zu", o->target, i);
            d[i].target = targets[i];
        }
        dl[i] = &d[i];
    }
    req.drafts = dl;
    req.n_drafts = n;
    uint32_t code = call(f, "/hopper.v1.Broker/Enqueue", &req.base, reason);
    free(targets);
    free(d);
    free(dl);
    free(h);
    free(hl);
    free(payload);
    return code;
}

static uint32_t
enqueue_n(fixture *f, const char *lane, size_t n, size_t payload_len,
          size_t n_headers, char *reason)
{
    draft_opts o = { .n_headers = n_headers };
    return enqueue_with(f, lane, n, payload_len, &o, reason);
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

/* ---- the limits of a reply ---------------------------------------------- */

/* Messages a reply of the default budget holds when each carries a
 * MAX_PAYLOAD payload in a lane of three letters and nothing else: the
 * budget is --max-frame less 4 KiB, and each weighs its bytes plus
 * STORE_WEIGHT_MESSAGE (store.h). */
#define PER_PAGE ((MAX_FRAME - 4096) / (STORE_WEIGHT_MESSAGE + 3 + MAX_PAYLOAD))

/* A message must weigh no less than its wire form, with its tag and length
 * in the reply, or a budget in weights would not bound the reply. */
static void
assert_within_weight(const Hopper__V1__Message *m)
{
    size_t w = STORE_WEIGHT_MESSAGE + strlen(m->lane) + strlen(m->target) +
               strlen(m->consumer) + strlen(m->last_error) + m->payload.len +
               m->result.len;
    for (size_t i = 0; i < m->n_headers; i++) {
        w += strlen(m->headers[i]->key) + strlen(m->headers[i]->value) +
             STORE_WEIGHT_HEADER;
    }
    assert_true(protobuf_c_message_get_packed_size(&m->base) + 6 <= w);
}

/* Calls method with m, expects OK; returns the response and its size. */
static Hopper__V1__Response *
call_ok(fixture *f, const char *method, const ProtobufCMessage *m, size_t *wire)
{
    size_t len;
    char r[48];
    uint8_t *b = pack(m, &len);
    Hopper__V1__Response *resp = round_trip(f, method, b, len, NULL, wire);
    expect(status_of(resp, r), r, 0, NULL);
    free(b);
    return resp;
}

static Hopper__V1__ClaimResponse *
claim_big(fixture *f, const char *lane, size_t *wire)
{
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t)lane;
    cr.max = 1000;
    cr.lease_ms = 600000;
    Hopper__V1__Response *resp =
        call_ok(f, "/hopper.v1.Broker/Claim", &cr.base, wire);
    Hopper__V1__ClaimResponse *c = hopper__v1__claim_response__unpack(
        NULL, resp->body.len, resp->body.data);
    assert_non_null(c);
    hopper__v1__response__free_unpacked(resp, NULL);
    for (size_t i = 0; i < c->n_messages; i++) {
        assert_within_weight(c->messages[i]);
    }
    return c;
}

/* One page of List (or DeadList) of lane with payloads, limit 1000. */
static Hopper__V1__ListResponse *
list_page(fixture *f, bool dead, const char *lane, ProtobufCBinaryData cursor,
          size_t *wire)
{
    Hopper__V1__ListRequest lr = HOPPER__V1__LIST_REQUEST__INIT;
    Hopper__V1__DeadListRequest dr = HOPPER__V1__DEAD_LIST_REQUEST__INIT;
    Hopper__V1__Response *resp;
    lr.lane = dr.lane = (char *)(uintptr_t)lane;
    lr.cursor = dr.cursor = cursor;
    lr.limit = dr.limit = 1000;
    lr.with_payload = dr.with_payload = true;
    lr.state = HOPPER__V1__STATE__PENDING;
    resp = dead ? call_ok(f, "/hopper.v1.Broker/DeadList", &dr.base, wire)
                : call_ok(f, "/hopper.v1.Broker/List", &lr.base, wire);
    Hopper__V1__ListResponse *l = hopper__v1__list_response__unpack(
        NULL, resp->body.len, resp->body.data);
    assert_non_null(l);
    hopper__v1__response__free_unpacked(resp, NULL);
    for (size_t i = 0; i < l->n_messages; i++) {
        assert_within_weight(l->messages[i]);
    }
    return l;
}

/* Two pages of 1,000 messages: PER_PAGE that fill the frame, then the
 * rest; neither reply is larger than --max-frame. */
static void
assert_pages_of_1000(fixture *f, bool dead, const char *lane)
{
    ProtobufCBinaryData none = { 0, NULL };
    size_t wire;

    Hopper__V1__ListResponse *l = list_page(f, dead, lane, none, &wire);
    assert_true(wire <= MAX_FRAME);
    assert_int_equal(l->n_messages, PER_PAGE);
    assert_true(l->next_cursor.len > 0);
    Hopper__V1__ListResponse *rest =
        list_page(f, dead, lane, l->next_cursor, &wire);

    assert_int_equal(rest->n_messages, 1000 - PER_PAGE);
    assert_int_equal(rest->next_cursor.len, 0);
    hopper__v1__list_response__free_unpacked(l, NULL);
    hopper__v1__list_response__free_unpacked(rest, NULL);
}

static void
test_a_message_with_every_field_weighs_more_than_its_wire_form(void **state)
{
    fixture *f = *state;
    char r[48], consumer[129], error[4097];
    static uint8_t result[65536];
    size_t wire;
    memset(consumer, 'c', 128);
    consumer[128] = '\0';
    memset(error, 'e', 4096);
    error[4096] = '\0';
    expect(enqueue_n(f, "all", 1, MAX_PAYLOAD, 64, r), r, 0, NULL);
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t) "all";
    cr.consumer = consumer;
    cr.lease_ms = 600000;
    Hopper__V1__Response *resp =
        call_ok(f, "/hopper.v1.Broker/Claim", &cr.base, &wire);
    Hopper__V1__ClaimResponse *c = hopper__v1__claim_response__unpack(
        NULL, resp->body.len, resp->body.data);
    assert_int_equal(c->n_messages, 1);
    assert_within_weight(c->messages[0]);
    Hopper__V1__NackRequest nr = HOPPER__V1__NACK_REQUEST__INIT;
    nr.id = c->messages[0]->id;
    nr.claim_token = c->messages[0]->claim_token;
    nr.error = error;
    nr.retry_in_ms = 1;
    expect(call(f, "/hopper.v1.Broker/Nack", &nr.base, r), r, 0, NULL);
    hopper__v1__claim_response__free_unpacked(c, NULL);
    hopper__v1__response__free_unpacked(resp, NULL);
    c = NULL;
    while (c == NULL || c->n_messages == 0) { /* due 1 ms after the nack */
        if (c != NULL) {
            hopper__v1__claim_response__free_unpacked(c, NULL);
        }
        resp = call_ok(f, "/hopper.v1.Broker/Claim", &cr.base, &wire);
        c = hopper__v1__claim_response__unpack(NULL, resp->body.len,
                                               resp->body.data);
        hopper__v1__response__free_unpacked(resp, NULL);
    }
    Hopper__V1__AckItem item = HOPPER__V1__ACK_ITEM__INIT;
    Hopper__V1__AckItem *items[1] = { &item };
    Hopper__V1__AckRequest ar = HOPPER__V1__ACK_REQUEST__INIT;
    item.id = c->messages[0]->id;
    item.claim_token = c->messages[0]->claim_token;
    item.result.data = result;
    item.result.len = sizeof(result);
    ar.items = items;
    ar.n_items = 1;
    expect(call(f, "/hopper.v1.Broker/Ack", &ar.base, r), r, 0, NULL);
    hopper__v1__claim_response__free_unpacked(c, NULL);
    Hopper__V1__ListRequest lr = HOPPER__V1__LIST_REQUEST__INIT;
    lr.lane = (char *)(uintptr_t) "all";
    lr.with_payload = true;

    resp = call_ok(f, "/hopper.v1.Broker/List", &lr.base, &wire);
    Hopper__V1__ListResponse *l = hopper__v1__list_response__unpack(
        NULL, resp->body.len, resp->body.data);

    assert_int_equal(l->n_messages, 1);
    assert_int_equal(l->messages[0]->n_headers, 64);
    assert_int_equal(l->messages[0]->result.len, sizeof(result));
    assert_string_equal(l->messages[0]->last_error, error);
    assert_within_weight(l->messages[0]);
    hopper__v1__list_response__free_unpacked(l, NULL);
    hopper__v1__response__free_unpacked(resp, NULL);
}

static void
test_claim_reply_stops_at_the_frame_limit(void **state)
{
    fixture *f = *state;
    char r[48];
    size_t wire;
    /* 1,000 messages of MAX_PAYLOAD bytes are more than a frame holds. */
    expect(enqueue_n(f, "big", 500, MAX_PAYLOAD, 0, r), r, 0, NULL);
    expect(enqueue_n(f, "big", 500, MAX_PAYLOAD, 0, r), r, 0, NULL);

    Hopper__V1__ClaimResponse *c = claim_big(f, "big", &wire);

    assert_true(wire <= MAX_FRAME);
    assert_int_equal(c->n_messages, PER_PAGE); /* and not one more */
    hopper__v1__claim_response__free_unpacked(c, NULL);
}

static void
test_list_pages_stop_at_the_frame_limit(void **state)
{
    fixture *f = *state;
    char r[48];
    expect(enqueue_n(f, "big", 500, MAX_PAYLOAD, 0, r), r, 0, NULL);
    expect(enqueue_n(f, "big", 500, MAX_PAYLOAD, 0, r), r, 0, NULL);

    assert_pages_of_1000(f, false, "big");
}

/* Nacks every message of c: with max_attempts 1, each becomes dead. */
static void
nack_all(fixture *f, const Hopper__V1__ClaimResponse *c)
{
    char r[48];
    for (size_t i = 0; i < c->n_messages; i++) {
        Hopper__V1__NackRequest nr = HOPPER__V1__NACK_REQUEST__INIT;
        nr.id = c->messages[i]->id;
        nr.claim_token = c->messages[i]->claim_token;
        expect(call(f, "/hopper.v1.Broker/Nack", &nr.base, r), r, 0, NULL);
    }
}

static void
test_dead_list_pages_stop_at_the_frame_limit(void **state)
{
    fixture *f = *state;
    draft_opts once = { .max_attempts = 1 };
    char r[48];
    size_t wire;
    expect(enqueue_with(f, "big", 500, MAX_PAYLOAD, &once, r), r, 0, NULL);
    expect(enqueue_with(f, "big", 500, MAX_PAYLOAD, &once, r), r, 0, NULL);
    for (int round = 0; round < 2; round++) {
        Hopper__V1__ClaimResponse *c = claim_big(f, "big", &wire);
        nack_all(f, c);
        hopper__v1__claim_response__free_unpacked(c, NULL);
    }

    assert_pages_of_1000(f, true, "big");
}

static Hopper__V1__LaneStats *
stats_page(fixture *f, ProtobufCBinaryData cursor, uint32_t limit,
           Hopper__V1__StatsResponse **keep)
{
    Hopper__V1__StatsRequest sr = HOPPER__V1__STATS_REQUEST__INIT;
    size_t wire;
    sr.lane = (char *)(uintptr_t) "t";
    sr.targets_cursor = cursor;
    sr.targets_limit = limit;
    Hopper__V1__Response *resp =
        call_ok(f, "/hopper.v1.Broker/Stats", &sr.base, &wire);
    *keep = hopper__v1__stats_response__unpack(NULL, resp->body.len,
                                               resp->body.data);
    hopper__v1__response__free_unpacked(resp, NULL);
    assert_non_null(*keep);
    assert_non_null((*keep)->stats);
    return (*keep)->stats;
}

static void
test_stats_list_1000_targets_then_page_the_rest(void **state)
{
    fixture *f = *state;
    draft_opts a = { .target = "a" }, b = { .target = "b" };
    ProtobufCBinaryData none = { 0, NULL };
    Hopper__V1__StatsResponse *first, *second;
    char r[48];
    expect(enqueue_with(f, "t", 1000, 1, &a, r), r, 0, NULL);
    expect(enqueue_with(f, "t", 1, 1, &b, r), r, 0, NULL);

    Hopper__V1__LaneStats *s = stats_page(f, none, 0, &first);
    assert_int_equal(s->n_targets, 1000);
    assert_true(s->targets_next_cursor.len > 0);
    Hopper__V1__LaneStats *more =
        stats_page(f, s->targets_next_cursor, 1000, &second);

    assert_int_equal(more->n_targets, 1);
    assert_int_equal(more->targets_next_cursor.len, 0);
    assert_int_equal(more->pending, 1001);
    hopper__v1__stats_response__free_unpacked(first, NULL);
    hopper__v1__stats_response__free_unpacked(second, NULL);
}

static void
test_stats_targets_limit_is_1000(void **state)
{
    fixture *f = *state;
    Hopper__V1__StatsRequest sr = HOPPER__V1__STATS_REQUEST__INIT;
    char r[48];
    expect(enqueue_n(f, "t", 1, 1, 0, r), r, 0, NULL);
    sr.lane = (char *)(uintptr_t) "t";

    sr.targets_limit = 1000;
    expect(call(f, "/hopper.v1.Broker/Stats", &sr.base, r), r, 0, NULL);
    sr.targets_limit = 1001;
    expect(call(f, "/hopper.v1.Broker/Stats", &sr.base, r), r, 3, "BAD_LIMIT");
}

static void
test_list_lanes_carry_the_first_100_targets_of_a_lane(void **state)
{
    fixture *f = *state;
    Hopper__V1__ListLanesRequest lr = HOPPER__V1__LIST_LANES_REQUEST__INIT;
    draft_opts a = { .target = "a" };
    size_t wire;
    char r[48];
    expect(enqueue_with(f, "t", 101, 1, &a, r), r, 0, NULL);

    Hopper__V1__Response *resp =
        call_ok(f, "/hopper.v1.Broker/ListLanes", &lr.base, &wire);
    Hopper__V1__ListLanesResponse *l = hopper__v1__list_lanes_response__unpack(
        NULL, resp->body.len, resp->body.data);

    assert_non_null(l);
    assert_int_equal(l->n_lanes, 1);
    assert_int_equal(l->lanes[0]->n_targets, 100);
    assert_true(l->lanes[0]->targets_next_cursor.len > 0);
    hopper__v1__list_lanes_response__free_unpacked(l, NULL);
    hopper__v1__response__free_unpacked(resp, NULL);
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
        T(test_a_message_with_every_field_weighs_more_than_its_wire_form),
        T(test_claim_reply_stops_at_the_frame_limit),
        T(test_list_pages_stop_at_the_frame_limit),
        T(test_dead_list_pages_stop_at_the_frame_limit),
        T(test_stats_list_1000_targets_then_page_the_rest),
        T(test_stats_targets_limit_is_1000),
        T(test_list_lanes_carry_the_first_100_targets_of_a_lane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
