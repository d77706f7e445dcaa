/*
 * transport.c - one request, one reply. Every call opens its own context on
 * the client's shared req0 socket, so any number of threads can have calls
 * in flight on one client; NNG matches each reply to its context.
 *
 * A call has one time budget. Sending waits only for a connection (req0
 * hands the request to a pipe or keeps it), so running out of time there
 * means the broker was never reached: UNAVAILABLE / UNREACHABLE. Running
 * out while waiting for the reply is DEADLINE_EXCEEDED / TIMEOUT: the
 * broker may or may not have acted, and a retry with the same request id
 * would be answered from its replay cache.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "client_int.h"

#define SERVICE_PATH_MAX 128

static nng_duration
as_duration(uint64_t ms)
{
    return ms > INT32_MAX ? INT32_MAX : (nng_duration)ms;
}

static int
send_error(const hopper_client *c, int rv, uint32_t timeout_ms,
           hopper_status *st)
{
    switch (rv) {
    case NNG_ENOMEM:
        return hc_no_memory(st);
    case NNG_ETIMEDOUT:
        /* NNG keeps handshake failures to itself: name the usual causes. */
        return hc_fail(st, HOPPER_UNAVAILABLE, HC_R_UNREACHABLE,
                       "no connection to broker at '%s' within %u ms%s", c->url,
                       (unsigned)timeout_ms,
                       strncmp(c->url, "tls+", 4) == 0
                           ? " (or TLS failed: check CA, server name and "
                             "client certificate)"
                           : "");
    default:
        return hc_fail(st, HOPPER_UNAVAILABLE, HC_R_UNREACHABLE,
                       "cannot send to broker at '%s': %s", c->url,
                       nng_strerror(rv));
    }
}

static int
recv_error(const hopper_client *c, int rv, uint32_t timeout_ms,
           hopper_status *st)
{
    switch (rv) {
    case NNG_ENOMEM:
        return hc_no_memory(st);
    case NNG_ETIMEDOUT:
        return hc_fail(st, HOPPER_DEADLINE_EXCEEDED, HC_R_TIMEOUT,
                       "no reply from broker at '%s' within %u ms", c->url,
                       (unsigned)timeout_ms);
    default:
        return hc_fail(st, HOPPER_UNAVAILABLE, HC_R_UNREACHABLE,
                       "connection to broker at '%s' lost: %s", c->url,
                       nng_strerror(rv));
    }
}

/* Sends msg (taken in every case) and waits for the reply. */
static int
exchange(hopper_client *c, nng_msg *msg, uint32_t timeout_ms, nng_msg **reply,
         hopper_status *st)
{
    nng_time start = nng_clock();
    nng_time spent;
    nng_aio *aio;
    nng_ctx ctx;
    int code = HOPPER_OK;
    int rv;

    if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
        nng_msg_free(msg);
        return hc_no_memory(st);
    }
    if ((rv = nng_ctx_open(&ctx, c->sock)) != 0) {
        nng_msg_free(msg);
        code = send_error(c, rv, timeout_ms, st);
        goto free_aio;
    }
    /* req0 would resend an unanswered request after 60 s; within one call
     * only a reconnect should trigger a resend. */
    nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME,
                   as_duration((uint64_t)timeout_ms + 1000));
    nng_aio_set_msg(aio, msg);
    nng_aio_set_timeout(aio, as_duration(timeout_ms));
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        nng_msg_free(nng_aio_get_msg(aio)); /* still ours after a failure */
        code = send_error(c, rv, timeout_ms, st);
        goto close_ctx;
    }
    spent = nng_clock() - start;
    nng_aio_set_timeout(
        aio, spent >= timeout_ms ? 1 : as_duration(timeout_ms - spent));
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        code = recv_error(c, rv, timeout_ms, st);
        goto close_ctx;
    }
    *reply = nng_aio_get_msg(aio);
close_ctx:
    nng_ctx_close(ctx);
free_aio:
    nng_aio_free(aio);
    return code;
}

/* Packs the envelope straight into a new NNG message. */
static int
pack_request(const Hopper__V1__Request *req, nng_msg **out, hopper_status *st)
{
    size_t len = hopper__v1__request__get_packed_size(req);

    if (nng_msg_alloc(out, len) != 0) {
        return hc_no_memory(st);
    }
    hopper__v1__request__pack(req, nng_msg_body(*out));
    return HOPPER_OK;
}

/* Checks the reply and turns a non-OK status into ours. */
static int
check_reply(const Hopper__V1__Response *resp, const char *request_id,
            hopper_status *st)
{
    const Hopper__V1__Status *s = resp->status;
    bool echoed = strcmp(resp->request_id, request_id) == 0;

    if (s != NULL && s->code != HOPPER_OK) {
        /* A broker that could not decode our envelope cannot echo the id;
         * any other id would be someone else's reply. */
        if (!echoed && resp->request_id[0] != '\0') {
            return hc_bad_response(st, "request id not echoed");
        }
        if (st != NULL) {
            st->code = s->code > INT_MAX ? HOPPER_UNKNOWN : (int)s->code;
            snprintf(st->reason, sizeof(st->reason), "%s", s->reason);
            snprintf(st->message, sizeof(st->message), "%s", s->message);
        }
        return s->code > INT_MAX ? HOPPER_UNKNOWN : (int)s->code;
    }
    if (!echoed) {
        return hc_bad_response(st, "request id not echoed");
    }
    return HOPPER_OK;
}

/* The envelope for path and body with a fresh request id (written to
 * request_id), packed into a new NNG message. */
static int
pack_call(hopper_client *c, const char *path, const uint8_t *body,
          size_t body_len, uint32_t deadline_ms,
          char request_id[HC_REQUEST_ID_LEN + 1], nng_msg **msg,
          hopper_status *st)
{
    Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;

    hc_reqid_next(c, request_id);
    req.method = hc_str(path);
    req.body.data = (uint8_t *)(uintptr_t)body; /* only read by pack */
    req.body.len = body_len;
    req.scope = c->scope;
    req.token = c->token;
    req.deadline_ms = deadline_ms;
    req.request_id = request_id;
    return pack_request(&req, msg, st);
}

/* Decodes and checks the reply to request_id; takes in. */
static int
open_reply(nng_msg *in, const char *request_id, Hopper__V1__Response **reply,
           hopper_status *st)
{
    Hopper__V1__Response *resp =
        hopper__v1__response__unpack(NULL, nng_msg_len(in), nng_msg_body(in));
    int code;

    nng_msg_free(in);
    if (resp == NULL) {
        return hc_bad_response(st, "cannot decode the response envelope");
    }
    if ((code = check_reply(resp, request_id, st)) != HOPPER_OK) {
        hopper__v1__response__free_unpacked(resp, NULL);
        return code;
    }
    *reply = resp;
    return HOPPER_OK;
}

int
hc_roundtrip(hopper_client *c, const char *path, const uint8_t *body,
             size_t body_len, uint32_t timeout_ms, uint32_t deadline_ms,
             Hopper__V1__Response **reply, hopper_status *st)
{
    char request_id[HC_REQUEST_ID_LEN + 1];
    nng_msg *msg;
    nng_msg *in = NULL;
    int code;

    if ((code = pack_call(c, path, body, body_len, deadline_ms, request_id,
                          &msg, st)) != HOPPER_OK ||
        (code = exchange(c, msg, timeout_ms, &in, st)) != HOPPER_OK) {
        return code;
    }
    return open_reply(in, request_id, reply, st);
}

static uint32_t
add_ms(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

/* The method of service Broker named rpc taking req, its path, and req
 * packed (malloc'd *body). */
static int
prepare(const char *rpc, const ProtobufCMessage *req,
        const ProtobufCMethodDescriptor **m, char path[SERVICE_PATH_MAX],
        uint8_t **body, size_t *len, hopper_status *st)
{
    const ProtobufCServiceDescriptor *svc = &hopper__v1__broker__descriptor;

    /* The methods and their types come from the generated service
     * descriptor, as in the broker's dispatch table. */
    *m = protobuf_c_service_descriptor_get_method_by_name(svc, rpc);
    if (*m == NULL || (*m)->input != req->descriptor) {
        return hc_fail(st, HOPPER_INTERNAL, "BAD_METHOD",
                       "no method '%s' taking this request", rpc);
    }
    snprintf(path, SERVICE_PATH_MAX, "/%s/%s", svc->name, (*m)->name);
    *len = protobuf_c_message_get_packed_size(req);
    if ((*body = malloc(*len != 0 ? *len : 1)) == NULL) {
        return hc_no_memory(st);
    }
    protobuf_c_message_pack(req, *body);
    return HOPPER_OK;
}

/* The response message of method m carried by an OK reply; takes reply. */
static int
open_body(const ProtobufCMethodDescriptor *m, Hopper__V1__Response *reply,
          ProtobufCMessage **resp, hopper_status *st)
{
    *resp = protobuf_c_message_unpack(m->output, NULL, reply->body.len,
                                      reply->body.data);
    hopper__v1__response__free_unpacked(reply, NULL);
    if (*resp == NULL) {
        return hc_bad_response(st, "cannot decode the response message");
    }
    return HOPPER_OK;
}

int
hc_invoke(hopper_client *c, const char *rpc, const ProtobufCMessage *req,
          uint32_t extra_ms, ProtobufCMessage **resp, hopper_status *st)
{
    const ProtobufCMethodDescriptor *m;
    char path[SERVICE_PATH_MAX];
    uint32_t timeout_ms = add_ms(c->timeout_ms, extra_ms);
    Hopper__V1__Response *reply;
    uint8_t *body;
    size_t len = 0;
    int code;

    if ((code = prepare(rpc, req, &m, path, &body, &len, st)) != HOPPER_OK) {
        return code;
    }
    code = hc_roundtrip(c, path, body, len, timeout_ms, timeout_ms, &reply, st);
    free(body);
    if (code != HOPPER_OK) {
        return code;
    }
    return open_body(m, reply, resp, st);
}

/* ---- asynchronous calls ------------------------------------------------ */

/* One call in flight: its own context and aio on the client's socket; the
 * aio's callback drives it from sent to answered. */
typedef struct hc_async {
    hopper_client *c;
    const ProtobufCMethodDescriptor *m;
    nng_ctx ctx;
    nng_aio *aio;
    bool sent;
    uint32_t timeout_ms;
    nng_time start;
    char request_id[HC_REQUEST_ID_LEN + 1];
    hc_async_fn fn;
    void *arg;
} hc_async;

/* Frees the call, then reports the outcome. Everything of the library's
 * is let go first: once fn has run, the application may close the client
 * (and with it the socket the context belongs to). On an NNG thread,
 * inside the aio's own callback: the aio is reaped, not freed. */
static void
async_end(hc_async *a, int code, ProtobufCMessage *resp,
          const hopper_status *st)
{
    hc_async_fn fn = a->fn;
    void *arg = a->arg;

    nng_ctx_close(a->ctx);
    nng_aio_reap(a->aio);
    free(a);
    fn(arg, code, resp, st);
    if (resp != NULL) {
        protobuf_c_message_free_unpacked(resp, NULL);
    }
}

static void
async_cb(void *arg)
{
    hc_async *a = arg;
    hopper_status st;
    Hopper__V1__Response *reply;
    ProtobufCMessage *resp = NULL;
    int rv = nng_aio_result(a->aio);
    int code;

    memset(&st, 0, sizeof(st));
    if (!a->sent) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(a->aio)); /* still ours */
            code = send_error(a->c, rv, a->timeout_ms, &st);
            async_end(a, code, NULL, &st);
            return;
        }
        nng_time spent = nng_clock() - a->start;
        a->sent = true;
        nng_aio_set_timeout(a->aio, spent >= a->timeout_ms
                                        ? 1
                                        : as_duration(a->timeout_ms - spent));
        nng_ctx_recv(a->ctx, a->aio);
        return;
    }
    if (rv != 0) {
        code = recv_error(a->c, rv, a->timeout_ms, &st);
    } else if ((code = open_reply(nng_aio_get_msg(a->aio), a->request_id,
                                  &reply, &st)) == HOPPER_OK) {
        code = open_body(a->m, reply, &resp, &st);
    }
    async_end(a, code, resp, &st);
}

int
hc_invoke_async(hopper_client *c, const char *rpc, const ProtobufCMessage *req,
                hc_async_fn fn, void *arg, hopper_status *st)
{
    char path[SERVICE_PATH_MAX];
    hc_async *a = calloc(1, sizeof(*a));
    nng_msg *msg = NULL;
    uint8_t *body;
    size_t len = 0;
    int code, rv;

    if (a == NULL) {
        return hc_no_memory(st);
    }
    a->c = c;
    a->fn = fn;
    a->arg = arg;
    a->timeout_ms = c->timeout_ms;
    a->start = nng_clock();
    if ((code = prepare(rpc, req, &a->m, path, &body, &len, st)) != HOPPER_OK) {
        free(a);
        return code;
    }
    code =
        pack_call(c, path, body, len, a->timeout_ms, a->request_id, &msg, st);
    free(body);
    if (code != HOPPER_OK) {
        free(a);
        return code;
    }
    if ((rv = nng_aio_alloc(&a->aio, async_cb, a)) != 0) {
        nng_msg_free(msg);
        free(a);
        return hc_no_memory(st);
    }
    if ((rv = nng_ctx_open(&a->ctx, c->sock)) != 0) {
        nng_msg_free(msg);
        nng_aio_free(a->aio);
        free(a);
        return send_error(c, rv, c->timeout_ms, st);
    }
    nng_ctx_set_ms(a->ctx, NNG_OPT_REQ_RESENDTIME,
                   as_duration((uint64_t)a->timeout_ms + 1000));
    nng_aio_set_msg(a->aio, msg);
    nng_aio_set_timeout(a->aio, as_duration(a->timeout_ms));
    nng_ctx_send(a->ctx, a->aio); /* async_cb takes it from here */
    return HOPPER_OK;
}

int
hopper_call(hopper_client *c, const char *method, const void *body, size_t len,
            void **resp_body, size_t *resp_len, uint32_t timeout_ms,
            hopper_status *st)
{
    char path[SERVICE_PATH_MAX];
    Hopper__V1__Response *reply;
    int code;

    if (c == NULL || method == NULL || method[0] == '\0' ||
        (body == NULL && len != 0) || resp_body == NULL || resp_len == NULL) {
        return hc_bad_arg(st, "hopper_call needs a client, a method and "
                              "result pointers");
    }
    *resp_body = NULL;
    *resp_len = 0;
    if (strlen(method) > SERVICE_PATH_MAX / 2) {
        return hc_bad_arg(st, "method name too long");
    }
    if (method[0] == '/') {
        snprintf(path, sizeof(path), "%s", method);
    } else {
        snprintf(path, sizeof(path), "/%s/%s",
                 hopper__v1__broker__descriptor.name, method);
    }
    if (timeout_ms == 0) {
        timeout_ms = c->timeout_ms;
    }
    code = hc_roundtrip(c, path, body, len, timeout_ms, timeout_ms, &reply, st);
    if (code != HOPPER_OK) {
        return code;
    }
    if (reply->body.len != 0) {
        if ((*resp_body = malloc(reply->body.len)) == NULL) {
            hopper__v1__response__free_unpacked(reply, NULL);
            return hc_no_memory(st);
        }
        memcpy(*resp_body, reply->body.data, reply->body.len);
        *resp_len = reply->body.len;
    }
    hopper__v1__response__free_unpacked(reply, NULL);
    return HOPPER_OK;
}
