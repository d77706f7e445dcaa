/*
 * raw_protocol_test.c - speaks to a real hopperd with nothing but NNG req0
 * and protobuf-c code generated from proto/, to prove the contract stands
 * without libhopper: a lifecycle, malformed input of every kind, and the
 * exact same request bytes sent twice.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "harness.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"

typedef struct fixture {
    broker_proc bp;
    nng_socket sock;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(broker_proc_start(&f->bp, NULL), 0);
    assert_int_equal(nng_req0_open(&f->sock), 0);
    assert_int_equal(nng_socket_set_ms(f->sock, NNG_OPT_RECVTIMEO, 5000), 0);
    assert_int_equal(nng_dial(f->sock, f->bp.url, NULL, 0), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    nng_close(f->sock);
    assert_int_equal(broker_proc_stop(&f->bp), 0);
    broker_proc_cleanup(&f->bp);
    free(f);
    return 0;
}

/* Sends raw bytes, returns the decoded Response (caller frees). */
static Hopper__V1__Response *
roundtrip_bytes(fixture *f, const void *data, size_t len)
{
    void *reply = NULL;
    size_t rlen = 0;
    assert_int_equal(nng_send(f->sock, (void *)(uintptr_t)data, len, 0), 0);
    assert_int_equal(nng_recv(f->sock, &reply, &rlen, NNG_FLAG_ALLOC), 0);
    Hopper__V1__Response *r = hopper__v1__response__unpack(NULL, rlen, reply);
    nng_free(reply, rlen);
    assert_non_null(r);
    assert_non_null(r->status);
    return r;
}

/* Packs an envelope around body and returns its bytes (caller frees). */
static uint8_t *
envelope(const char *method, const ProtobufCMessage *body,
         const char *request_id, size_t *len)
{
    Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;
    uint8_t *b = NULL;
    size_t blen = 0;
    if (body != NULL) {
        blen = protobuf_c_message_get_packed_size(body);
        b = malloc(blen + 1);
        protobuf_c_message_pack(body, b);
    }
    req.method = (char *)(uintptr_t)method;
    req.body.data = b;
    req.body.len = blen;
    req.request_id = (char *)(uintptr_t)(request_id ? request_id : "");
    *len = hopper__v1__request__get_packed_size(&req);
    uint8_t *out = malloc(*len);
    hopper__v1__request__pack(&req, out);
    free(b);
    return out;
}

static Hopper__V1__Response *
call(fixture *f, const char *method, const ProtobufCMessage *body,
     const char *request_id)
{
    size_t len;
    uint8_t *bytes = envelope(method, body, request_id, &len);
    Hopper__V1__Response *r = roundtrip_bytes(f, bytes, len);
    free(bytes);
    return r;
}

static void
assert_code(const Hopper__V1__Response *r, uint32_t code, const char *reason)
{
    if (r->status->code != code) {
        fail_msg("status %u (%s: %s), expected %u", r->status->code,
                 r->status->reason, r->status->message, code);
    }
    if (reason != NULL) {
        assert_string_equal(r->status->reason, reason);
    }
}

static Hopper__V1__Response *
enqueue_one(fixture *f, const char *lane, const char *payload,
            const char *request_id)
{
    Hopper__V1__Draft d = HOPPER__V1__DRAFT__INIT;
    Hopper__V1__Draft *dl[1] = { &d };
    Hopper__V1__EnqueueRequest req = HOPPER__V1__ENQUEUE_REQUEST__INIT;
    d.lane = (char *)(uintptr_t)lane;
    d.payload.data = (uint8_t *)(uintptr_t)payload;
    d.payload.len = strlen(payload);
    req.drafts = dl;
    req.n_drafts = 1;
    return call(f, "/hopper.v1.Broker/Enqueue", &req.base, request_id);
}

static void
test_ping_answers_with_version_and_instance(void **state)
{
    fixture *f = *state;
    Hopper__V1__PingRequest req = HOPPER__V1__PING_REQUEST__INIT;

    Hopper__V1__Response *r =
        call(f, "/hopper.v1.Broker/Ping", &req.base, "p1");

    assert_code(r, 0, NULL);
    assert_string_equal(r->request_id, "p1");
    Hopper__V1__PingResponse *p =
        hopper__v1__ping_response__unpack(NULL, r->body.len, r->body.data);
    assert_non_null(p);
    assert_string_not_equal(p->version, "");
    assert_int_equal(strlen(p->instance), 32);
    assert_true(p->now_ms > 1600000000000ull);
    hopper__v1__ping_response__free_unpacked(p, NULL);
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
test_enqueue_claim_ack_over_raw_protocol(void **state)
{
    fixture *f = *state;
    Hopper__V1__Response *r = enqueue_one(f, "raw", "hello", NULL);
    assert_code(r, 0, NULL);
    Hopper__V1__EnqueueResponse *er =
        hopper__v1__enqueue_response__unpack(NULL, r->body.len, r->body.data);
    assert_int_equal(er->n_results, 1);
    char id[32];
    snprintf(id, sizeof(id), "%s", er->results[0]->id);
    hopper__v1__enqueue_response__free_unpacked(er, NULL);
    hopper__v1__response__free_unpacked(r, NULL);

    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t) "raw";
    cr.max = 10;
    cr.lease_ms = 5000;
    r = call(f, "/hopper.v1.Broker/Claim", &cr.base, NULL);
    assert_code(r, 0, NULL);
    Hopper__V1__ClaimResponse *cl =
        hopper__v1__claim_response__unpack(NULL, r->body.len, r->body.data);
    assert_int_equal(cl->n_messages, 1);
    assert_string_equal(cl->messages[0]->id, id);
    assert_int_equal(cl->messages[0]->payload.len, 5);
    assert_memory_equal(cl->messages[0]->payload.data, "hello", 5);
    assert_int_equal(cl->messages[0]->claim_token.len, 16);

    Hopper__V1__AckItem item = HOPPER__V1__ACK_ITEM__INIT;
    Hopper__V1__AckItem *items[1] = { &item };
    Hopper__V1__AckRequest ar = HOPPER__V1__ACK_REQUEST__INIT;
    item.id = id;
    item.claim_token = cl->messages[0]->claim_token;
    ar.items = items;
    ar.n_items = 1;
    Hopper__V1__Response *ack =
        call(f, "/hopper.v1.Broker/Ack", &ar.base, NULL);
    assert_code(ack, 0, NULL);
    hopper__v1__response__free_unpacked(ack, NULL);

    Hopper__V1__GetRequest gr = HOPPER__V1__GET_REQUEST__INIT;
    gr.id = id;
    Hopper__V1__Response *get =
        call(f, "/hopper.v1.Broker/Get", &gr.base, NULL);
    assert_code(get, 0, NULL);
    Hopper__V1__GetResponse *g =
        hopper__v1__get_response__unpack(NULL, get->body.len, get->body.data);
    assert_int_equal(g->message->state, HOPPER__V1__STATE__DELIVERED);
    assert_int_equal(g->message->claim_token.len, 0);
    hopper__v1__get_response__free_unpacked(g, NULL);
    hopper__v1__response__free_unpacked(get, NULL);
    hopper__v1__claim_response__free_unpacked(cl, NULL);
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
test_random_bytes_get_bad_envelope(void **state)
{
    fixture *f = *state;
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (uint8_t)(0xff - i * 7);
    }

    Hopper__V1__Response *r = roundtrip_bytes(f, junk, sizeof(junk));

    assert_code(r, 3, "BAD_ENVELOPE");
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
test_truncated_envelope_gets_bad_envelope(void **state)
{
    fixture *f = *state;
    Hopper__V1__PingRequest ping = HOPPER__V1__PING_REQUEST__INIT;
    size_t len;
    uint8_t *bytes =
        envelope("/hopper.v1.Broker/Ping", &ping.base, "abc", &len);

    Hopper__V1__Response *r = roundtrip_bytes(f, bytes, len - 2);

    assert_code(r, 3, "BAD_ENVELOPE");
    hopper__v1__response__free_unpacked(r, NULL);
    free(bytes);
}

static void
test_unknown_method_is_unimplemented(void **state)
{
    fixture *f = *state;

    Hopper__V1__Response *r = call(f, "/hopper.v1.Broker/Explode", NULL, NULL);

    assert_code(r, 12, "UNKNOWN_METHOD");
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
test_body_that_does_not_decode_is_bad_body(void **state)
{
    fixture *f = *state;
    Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;
    uint8_t bad[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f }; /* huge length */
    req.method = (char *)(uintptr_t) "/hopper.v1.Broker/Enqueue";
    req.body.data = bad;
    req.body.len = sizeof(bad);
    size_t len = hopper__v1__request__get_packed_size(&req);
    uint8_t *bytes = malloc(len);
    hopper__v1__request__pack(&req, bytes);

    Hopper__V1__Response *r = roundtrip_bytes(f, bytes, len);

    assert_code(r, 3, "BAD_BODY");
    hopper__v1__response__free_unpacked(r, NULL);
    free(bytes);
}

static void
test_oversized_frame_is_refused_and_broker_keeps_serving(void **state)
{
    fixture *f = *state;
    /* By hand rather than with NNG: a req0 socket resends a request whose
     * connection broke, so it would offer the broker the same 17 MiB
     * again and again. */
    const char *colon = strrchr(f->bp.url, ':');
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(colon + 1)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint8_t hs[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
    uint8_t hdr[8] = { 0 };
    uint64_t len = 17u << 20; /* over the default 16 MiB frame */
    for (int i = 7; i >= 0; i--, len >>= 8) {
        hdr[i] = (uint8_t)len;
    }
    struct timeval tv = { .tv_sec = 30 };
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(send(fd, hs, sizeof(hs), MSG_NOSIGNAL), 8);

    /* The length alone: the broker closes the connection at once,
     * before a byte of the frame is sent. */
    assert_int_equal(send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL), 8);
    uint8_t buf[64];
    ssize_t n;
    size_t got = 0;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
        got += (size_t)n; /* the broker's own handshake, then nothing */
    }

    assert_true(n == 0 || errno == ECONNRESET); /* closed, not timed out */
    assert_true(got <= 8);
    close(fd);
    Hopper__V1__PingRequest ping = HOPPER__V1__PING_REQUEST__INIT;
    Hopper__V1__Response *r =
        call(f, "/hopper.v1.Broker/Ping", &ping.base, NULL);
    assert_code(r, 0, NULL);
    hopper__v1__response__free_unpacked(r, NULL);
}

static uint64_t
enqueued_total(fixture *f, const char *lane)
{
    Hopper__V1__StatsRequest sr = HOPPER__V1__STATS_REQUEST__INIT;
    sr.lane = (char *)(uintptr_t)lane;
    Hopper__V1__Response *r =
        call(f, "/hopper.v1.Broker/Stats", &sr.base, NULL);
    assert_code(r, 0, NULL);
    Hopper__V1__StatsResponse *s =
        hopper__v1__stats_response__unpack(NULL, r->body.len, r->body.data);
    uint64_t n = s->stats->enqueued_total;
    hopper__v1__stats_response__free_unpacked(s, NULL);
    hopper__v1__response__free_unpacked(r, NULL);
    return n;
}

static void
test_same_enqueue_bytes_twice_make_one_message(void **state)
{
    fixture *f = *state;
    Hopper__V1__Draft d = HOPPER__V1__DRAFT__INIT;
    Hopper__V1__Draft *dl[1] = { &d };
    Hopper__V1__EnqueueRequest req = HOPPER__V1__ENQUEUE_REQUEST__INIT;
    d.lane = (char *)(uintptr_t) "twice";
    req.drafts = dl;
    req.n_drafts = 1;
    size_t len;
    uint8_t *bytes =
        envelope("/hopper.v1.Broker/Enqueue", &req.base, "4f1c2a9e7b", &len);

    Hopper__V1__Response *a = roundtrip_bytes(f, bytes, len);
    Hopper__V1__Response *b = roundtrip_bytes(f, bytes, len);

    assert_code(a, 0, NULL);
    assert_code(b, 0, NULL);
    assert_int_equal(a->body.len, b->body.len);
    assert_memory_equal(a->body.data, b->body.data, a->body.len);
    assert_int_equal(enqueued_total(f, "twice"), 1);
    hopper__v1__response__free_unpacked(a, NULL);
    hopper__v1__response__free_unpacked(b, NULL);
    free(bytes);
}

/* Enqueues one message into lane and claims it (caller frees). */
static Hopper__V1__ClaimResponse *
enqueue_and_claim(fixture *f, const char *lane)
{
    Hopper__V1__Response *r = enqueue_one(f, lane, "x", NULL);
    hopper__v1__response__free_unpacked(r, NULL);
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t)lane;
    r = call(f, "/hopper.v1.Broker/Claim", &cr.base, NULL);
    assert_code(r, 0, NULL);
    Hopper__V1__ClaimResponse *cl =
        hopper__v1__claim_response__unpack(NULL, r->body.len, r->body.data);
    hopper__v1__response__free_unpacked(r, NULL);
    assert_int_equal(cl->n_messages, 1);
    return cl;
}

static void
test_same_ack_bytes_twice_are_both_ok(void **state)
{
    fixture *f = *state;
    Hopper__V1__ClaimResponse *cl = enqueue_and_claim(f, "ack2");
    Hopper__V1__AckItem item = HOPPER__V1__ACK_ITEM__INIT;
    Hopper__V1__AckItem *items[1] = { &item };
    Hopper__V1__AckRequest ar = HOPPER__V1__ACK_REQUEST__INIT;
    item.id = cl->messages[0]->id;
    item.claim_token = cl->messages[0]->claim_token;
    ar.items = items;
    ar.n_items = 1;
    size_t len;
    uint8_t *bytes = envelope("/hopper.v1.Broker/Ack", &ar.base, "ack-1", &len);

    Hopper__V1__Response *a = roundtrip_bytes(f, bytes, len);
    Hopper__V1__Response *b = roundtrip_bytes(f, bytes, len);

    assert_code(a, 0, NULL);
    assert_code(b, 0, NULL);
    free(bytes);
    hopper__v1__response__free_unpacked(a, NULL);
    hopper__v1__response__free_unpacked(b, NULL);
    hopper__v1__claim_response__free_unpacked(cl, NULL);
}

/* A lane whose acked messages are deleted at once: a repeated ack finds
 * no message, so only the replay cache can answer a repeat as the first
 * time. */
static void
set_retention_zero(fixture *f, const char *lane)
{
    Hopper__V1__UpdateLaneRequest up = HOPPER__V1__UPDATE_LANE_REQUEST__INIT;
    Hopper__V1__LaneSettings ls = HOPPER__V1__LANE_SETTINGS__INIT;
    char *mask[1] = { (char *)(uintptr_t) "retention_ms" };
    up.lane = (char *)(uintptr_t)lane;
    up.settings = &ls;
    up.update_mask = mask;
    up.n_update_mask = 1;
    Hopper__V1__Response *r =
        call(f, "/hopper.v1.Broker/UpdateLane", &up.base, NULL);
    assert_code(r, 0, NULL);
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
test_same_per_item_ack_bytes_twice_give_the_first_outcomes(void **state)
{
    fixture *f = *state;
    set_retention_zero(f, "each2");
    Hopper__V1__ClaimResponse *cl = enqueue_and_claim(f, "each2");
    uint8_t stale[16] = { 0 };
    Hopper__V1__AckItem held = HOPPER__V1__ACK_ITEM__INIT;
    Hopper__V1__AckItem lost = HOPPER__V1__ACK_ITEM__INIT;
    Hopper__V1__AckItem *items[2] = { &held, &lost };
    Hopper__V1__AckRequest ar = HOPPER__V1__ACK_REQUEST__INIT;
    held.id = lost.id = cl->messages[0]->id;
    held.claim_token = cl->messages[0]->claim_token;
    lost.claim_token.data = stale;
    lost.claim_token.len = sizeof(stale);
    ar.items = items;
    ar.n_items = 2;
    ar.per_item = true;
    size_t len;
    uint8_t *bytes =
        envelope("/hopper.v1.Broker/Ack", &ar.base, "each-1", &len);

    Hopper__V1__Response *a = roundtrip_bytes(f, bytes, len);
    Hopper__V1__Response *b = roundtrip_bytes(f, bytes, len);

    assert_code(a, 0, NULL);
    assert_code(b, 0, NULL);
    Hopper__V1__AckResponse *ra =
        hopper__v1__ack_response__unpack(NULL, a->body.len, a->body.data);
    assert_int_equal(ra->n_items, 2);
    assert_int_equal(ra->items[0]->code, 0);
    assert_int_equal(ra->items[1]->code, 9);
    assert_string_equal(ra->items[1]->reason, "LOST_CLAIM");
    assert_int_equal(a->body.len, b->body.len);
    assert_memory_equal(a->body.data, b->body.data, a->body.len);
    hopper__v1__ack_response__free_unpacked(ra, NULL);
    free(bytes);
    hopper__v1__response__free_unpacked(a, NULL);
    hopper__v1__response__free_unpacked(b, NULL);
    hopper__v1__claim_response__free_unpacked(cl, NULL);
}

static void
test_same_claim_bytes_twice_return_the_same_claim(void **state)
{
    fixture *f = *state;
    Hopper__V1__Response *r = enqueue_one(f, "claim2", "a", NULL);
    hopper__v1__response__free_unpacked(r, NULL);
    r = enqueue_one(f, "claim2", "b", NULL);
    hopper__v1__response__free_unpacked(r, NULL);
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t) "claim2";
    cr.max = 1;
    size_t len;
    uint8_t *bytes =
        envelope("/hopper.v1.Broker/Claim", &cr.base, "c-42", &len);

    Hopper__V1__Response *a = roundtrip_bytes(f, bytes, len);
    Hopper__V1__Response *b = roundtrip_bytes(f, bytes, len);

    assert_code(a, 0, NULL);
    assert_code(b, 0, NULL);
    Hopper__V1__ClaimResponse *ca =
        hopper__v1__claim_response__unpack(NULL, a->body.len, a->body.data);
    Hopper__V1__ClaimResponse *cb =
        hopper__v1__claim_response__unpack(NULL, b->body.len, b->body.data);
    assert_int_equal(ca->n_messages, 1);
    assert_int_equal(cb->n_messages, 1);
    assert_string_equal(ca->messages[0]->id, cb->messages[0]->id);
    assert_memory_equal(ca->messages[0]->claim_token.data,
                        cb->messages[0]->claim_token.data, 16);
    hopper__v1__claim_response__free_unpacked(ca, NULL);
    hopper__v1__claim_response__free_unpacked(cb, NULL);
    hopper__v1__response__free_unpacked(a, NULL);
    hopper__v1__response__free_unpacked(b, NULL);
    free(bytes);
}

/* Whether s is well-formed UTF-8 (what proto3's string fields must be,
 * and what strict decoders such as Python's check). */
static bool
utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        int n = *p < 0x80                  ? 0
                : *p >= 0xc2 && *p <= 0xdf ? 1
                : *p >= 0xe0 && *p <= 0xef ? 2
                : *p >= 0xf0 && *p <= 0xf4 ? 3
                                           : -1;
        if (n < 0) {
            return false;
        }
        for (int k = 1; k <= n; k++) {
            if ((p[k] & 0xc0) != 0x80) {
                return false;
            }
        }
        p += n + 1;
    }
    return true;
}

static void
assert_utf8_reply(const Hopper__V1__Response *r)
{
    assert_true(utf8_ok(r->request_id));
    assert_true(utf8_ok(r->status->message));
    assert_true(utf8_ok(r->status->reason));
}

static void
test_replies_stay_utf8_whatever_the_request_quotes(void **state)
{
    fixture *f = *state;
    Hopper__V1__PingRequest ping = HOPPER__V1__PING_REQUEST__INIT;
    char method[128];
    /* A method name whose 64th byte is inside a two-byte character. */
    snprintf(method, sizeof(method), "/hopper.v1.Broker/%045d\xc3\xa9xyz", 0);
    Hopper__V1__Response *r = call(f, method, &ping.base, "u1");
    assert_code(r, 12, "UNKNOWN_METHOD");
    assert_utf8_reply(r);
    hopper__v1__response__free_unpacked(r, NULL);

    r = call(f, "/hopper.v1.Broker/Pi\xffng", &ping.base, "u2");
    assert_code(r, 12, "UNKNOWN_METHOD");
    assert_utf8_reply(r);
    hopper__v1__response__free_unpacked(r, NULL);

    /* A request id that is not UTF-8 is refused and not echoed. */
    r = call(f, "/hopper.v1.Broker/Ping", &ping.base, "id-\xff");
    assert_code(r, 3, "BAD_ENVELOPE");
    assert_string_equal(r->request_id, "");
    assert_utf8_reply(r);
    hopper__v1__response__free_unpacked(r, NULL);

    /* An update mask entry quoted in the refusal. */
    Hopper__V1__UpdateLaneRequest up = HOPPER__V1__UPDATE_LANE_REQUEST__INIT;
    Hopper__V1__LaneSettings ls = HOPPER__V1__LANE_SETTINGS__INIT;
    char *mask[1] = { (char *)(uintptr_t) "\xff"
                                          "bad" };
    up.lane = (char *)(uintptr_t) "l";
    up.settings = &ls;
    up.update_mask = mask;
    up.n_update_mask = 1;
    r = call(f, "/hopper.v1.Broker/UpdateLane", &up.base, "u3");
    assert_code(r, 3, NULL);
    assert_utf8_reply(r);
    hopper__v1__response__free_unpacked(r, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_replies_stay_utf8_whatever_the_request_quotes, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_ping_answers_with_version_and_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_enqueue_claim_ack_over_raw_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_bytes_get_bad_envelope,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_truncated_envelope_gets_bad_envelope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_method_is_unimplemented,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_body_that_does_not_decode_is_bad_body, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_oversized_frame_is_refused_and_broker_keeps_serving, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_same_enqueue_bytes_twice_make_one_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_ack_bytes_twice_are_both_ok,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_same_claim_bytes_twice_return_the_same_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_same_per_item_ack_bytes_twice_give_the_first_outcomes, setup,
            teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* NNG frees closed pipes and dialers on a background thread; without
     * this, exit can come first and LeakSanitizer reports them (seen once
     * after the oversized-frame test, whose connection the broker drops). */
    nng_fini();
    return failed;
}
