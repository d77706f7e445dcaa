/*
 * inproc_broker_test.c - the broker core as a library: started in-process
 * on inproc://, driven over NNG, stopped. Covers what needs the process in
 * hand: long-poll wake-up by a commit, and a stop that answers
 * every request it accepted.
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
#include "common/clock.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"
#include "inproc_fixture.h"

typedef struct fixture {
    char dir[64];
    broker *b;
    nng_socket sock;
    int seq;
} fixture;

static int
setup_with(void **state, uint32_t waits_per_conn)
{
    static int n;
    fixture *f = calloc(1, sizeof(*f));
    broker_config cfg;
    char url[64];

    inproc_prepare(f->dir, "inproc", &cfg);
    snprintf(url, sizeof(url), "inproc://hopper-test-%d", n++);
    /* inproc:// for libhopper, and loopback TCP for NNG, the reference
     * peer, which cannot reach Hopper's inproc:// (an NNG inproc URL only
     * reaches NNG sockets of the same process). */
    cfg.listen[0] = url;
    cfg.listen[1] = "tcp://127.0.0.1:0";
    cfg.n_listen = 2;
    if (waits_per_conn != 0) {
        cfg.max_waits_per_conn = waits_per_conn;
    }
    inproc_start(&cfg, &f->b, 1, &f->sock);
    *state = f;
    return 0;
}

static int
setup(void **state)
{
    return setup_with(state, 0);
}

static int
setup_two_waits(void **state)
{
    return setup_with(state, 2);
}

static int
teardown(void **state)
{
    fixture *f = *state;
    inproc_stop(f->dir, f->b, &f->sock);
    free(f);
    return 0;
}

/* An in-flight request on its own context. */
typedef struct pending {
    nng_ctx ctx;
    nng_aio *aio;
} pending;

static void
send_async(fixture *f, pending *p, const char *method,
           const ProtobufCMessage *body, uint32_t deadline_ms)
{
    Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;
    size_t blen = protobuf_c_message_get_packed_size(body);
    uint8_t *b = malloc(blen + 1);
    nng_msg *m;
    protobuf_c_message_pack(body, b);
    req.method = (char *)(uintptr_t)method;
    req.body.data = b;
    req.body.len = blen;
    req.deadline_ms = deadline_ms;
    size_t len = hopper__v1__request__get_packed_size(&req);
    assert_int_equal(nng_msg_alloc(&m, len), 0);
    hopper__v1__request__pack(&req, nng_msg_body(m));
    free(b);
    assert_int_equal(nng_ctx_open(&p->ctx, f->sock), 0);
    assert_int_equal(nng_aio_alloc(&p->aio, NULL, NULL), 0);
    nng_aio_set_timeout(p->aio, 20000);
    nng_aio_set_msg(p->aio, m);
    nng_ctx_send(p->ctx, p->aio);
    nng_aio_wait(p->aio);
    assert_int_equal(nng_aio_result(p->aio), 0);
    nng_ctx_recv(p->ctx, p->aio);
}

static Hopper__V1__Response *
wait_reply(pending *p)
{
    nng_aio_wait(p->aio);
    assert_int_equal(nng_aio_result(p->aio), 0);
    nng_msg *m = nng_aio_get_msg(p->aio);
    Hopper__V1__Response *r =
        hopper__v1__response__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
    nng_msg_free(m);
    nng_aio_free(p->aio);
    nng_ctx_close(p->ctx);
    assert_non_null(r);
    return r;
}

static Hopper__V1__Response *
call(fixture *f, const char *method, const ProtobufCMessage *body)
{
    pending p;
    send_async(f, &p, method, body, 0);
    return wait_reply(&p);
}

static void
enqueue(fixture *f, const char *lane, size_t n, size_t payload_len)
{
    Hopper__V1__EnqueueRequest req = HOPPER__V1__ENQUEUE_REQUEST__INIT;
    Hopper__V1__Draft *d = calloc(n, sizeof(*d));
    Hopper__V1__Draft **dl = calloc(n, sizeof(*dl));
    uint8_t *payload = calloc(1, payload_len + 1);
    for (size_t i = 0; i < n; i++) {
        hopper__v1__draft__init(&d[i]);
        d[i].lane = (char *)(uintptr_t)lane;
        d[i].payload.data = payload;
        d[i].payload.len = payload_len;
        dl[i] = &d[i];
    }
    req.drafts = dl;
    req.n_drafts = n;
    Hopper__V1__Response *r = call(f, "/hopper.v1.Broker/Enqueue", &req.base);
    assert_int_equal(r->status->code, 0);
    hopper__v1__response__free_unpacked(r, NULL);
    free(d);
    free(dl);
    free(payload);
}

static void
test_ping_over_inproc(void **state)
{
    fixture *f = *state;
    Hopper__V1__PingRequest ping = HOPPER__V1__PING_REQUEST__INIT;

    Hopper__V1__Response *r = call(f, "/hopper.v1.Broker/Ping", &ping.base);

    assert_int_equal(r->status->code, 0);
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
test_long_poll_claim_is_woken_by_an_enqueue(void **state)
{
    fixture *f = *state;
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t) "poll";
    cr.wait_ms = 30000; /* longer than the client's 20 s receive timeout,
                           so only a wake-up can answer in time */
    pending p;

    send_async(f, &p, "/hopper.v1.Broker/Claim", &cr.base, 0);
    enqueue(f, "poll", 1, 16);
    Hopper__V1__Response *r = wait_reply(&p);

    assert_int_equal(r->status->code, 0);
    Hopper__V1__ClaimResponse *c =
        hopper__v1__claim_response__unpack(NULL, r->body.len, r->body.data);
    assert_int_equal(c->n_messages, 1);
    hopper__v1__claim_response__free_unpacked(c, NULL);
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
test_long_poll_claim_returns_empty_at_its_deadline(void **state)
{
    fixture *f = *state;
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t) "quiet";
    cr.wait_ms = 300;
    uint64_t t0 = hp_mono_ms();

    Hopper__V1__Response *r = call(f, "/hopper.v1.Broker/Claim", &cr.base);

    assert_int_equal(r->status->code, 0);
    assert_int_equal(r->body.len, 0); /* an empty ClaimResponse */
    assert_true(hp_mono_ms() - t0 >= 300);
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
test_long_poll_is_woken_when_a_delayed_message_falls_due(void **state)
{
    fixture *f = *state;
    Hopper__V1__Draft d = HOPPER__V1__DRAFT__INIT;
    Hopper__V1__Draft *dl[1] = { &d };
    Hopper__V1__EnqueueRequest er = HOPPER__V1__ENQUEUE_REQUEST__INIT;
    d.lane = (char *)(uintptr_t) "later";
    d.delay_ms = 400;
    er.drafts = dl;
    er.n_drafts = 1;
    Hopper__V1__Response *r = call(f, "/hopper.v1.Broker/Enqueue", &er.base);
    assert_int_equal(r->status->code, 0);
    hopper__v1__response__free_unpacked(r, NULL);
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t) "later";
    cr.wait_ms = 30000;

    r = call(f, "/hopper.v1.Broker/Claim", &cr.base);

    assert_int_equal(r->status->code, 0);
    Hopper__V1__ClaimResponse *c =
        hopper__v1__claim_response__unpack(NULL, r->body.len, r->body.data);
    assert_int_equal(c->n_messages, 1);
    hopper__v1__claim_response__free_unpacked(c, NULL);
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
test_stop_answers_parked_claims_with_empty_batches(void **state)
{
    fixture *f = *state;
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t) "never";
    cr.wait_ms = 30000;
    pending p;
    send_async(f, &p, "/hopper.v1.Broker/Claim", &cr.base, 0);
    /* A write sent after the claim is answered only after the claim's
     * group was applied, so by then the claim is parked. */
    enqueue(f, "elsewhere", 1, 8);

    broker_stop(f->b);
    f->b = NULL;
    Hopper__V1__Response *r = wait_reply(&p);

    assert_int_equal(r->status->code, 0);
    assert_int_equal(r->body.len, 0);
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
test_parked_claims_per_connection_are_limited(void **state)
{
    fixture *f = *state;
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t) "idle";
    cr.wait_ms = 30000;
    pending p[3];
    nng_socket other;
    char url[64];

    send_async(f, &p[0], "/hopper.v1.Broker/Claim", &cr.base, 0);
    send_async(f, &p[1], "/hopper.v1.Broker/Claim", &cr.base, 0);
    enqueue(f, "elsewhere", 1, 8); /* both are parked once this returns */
    send_async(f, &p[2], "/hopper.v1.Broker/Claim", &cr.base, 0);
    Hopper__V1__Response *r = wait_reply(&p[2]);

    assert_int_equal(r->status->code, 8);
    assert_string_equal(r->status->reason, "TOO_MANY_WAITERS");
    hopper__v1__response__free_unpacked(r, NULL);
    /* Another connection has its own allowance. */
    snprintf(url, sizeof(url), "%s", broker_bound_url(f->b, 1));
    assert_int_equal(nng_req0_open(&other), 0);
    assert_int_equal(nng_dial(other, url, NULL, 0), 0);
    nng_socket mine = f->sock;
    f->sock = other;
    cr.wait_ms = 200;
    Hopper__V1__Response *r2 = call(f, "/hopper.v1.Broker/Claim", &cr.base);
    assert_int_equal(r2->status->code, 0);
    hopper__v1__response__free_unpacked(r2, NULL);
    f->sock = mine;
    nng_close(other);
    /* The first two are answered (empty) at shutdown in teardown. */
    broker_stop(f->b);
    f->b = NULL;
    for (int i = 0; i < 2; i++) {
        Hopper__V1__Response *e = wait_reply(&p[i]);
        assert_int_equal(e->status->code, 0);
        hopper__v1__response__free_unpacked(e, NULL);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ping_over_inproc, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_long_poll_claim_is_woken_by_an_enqueue, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_long_poll_claim_returns_empty_at_its_deadline, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_long_poll_is_woken_when_a_delayed_message_falls_due, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_stop_answers_parked_claims_with_empty_batches, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_parked_claims_per_connection_are_limited, setup_two_waits,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
