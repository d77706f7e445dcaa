/*
 * transport.c - one request, one reply, in the caller's thread. A call
 * takes an idle connection of the client (or dials a new one), writes its
 * frame and reads the reply with poll(2) bounded by the call's deadline,
 * then puts the connection back; threads never share a connection, so any
 * number of them can call at once on one client.
 *
 * A call has one time budget. Running out before a connection is up means
 * the broker was never reached: UNAVAILABLE / UNREACHABLE, and so does a
 * refused connection, at once. Running out while waiting for the reply is
 * DEADLINE_EXCEEDED / TIMEOUT: the broker may or may not have acted.
 *
 * Resends. A connection that breaks under a call (the broker restarted, or
 * closed an idle connection to make room) costs the call nothing: the same
 * frame, with the same request id, goes out again on a new connection, as
 * NNG's req0 resends after a reconnect. The broker answers a repeated
 * mutating request from its replay cache, so it acts at most once. A
 * reused connection found broken is always retried on a new one; a new
 * one that breaks is retried once.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "sp/sp.h"

/* Room in front of the envelope: the frame's length and the SP request
 * id, filled in when the frame goes out on a connection. */
#define FRAME_HEAD (SP_FRAME_HDR_LEN + 4)
/* A reply of a few KiB arrives in one read into this buffer and is
 * decoded from it in place. */
#define READ_BUF (16 * 1024)

int
hc_unreachable(const hopper_client *c, hopper_status *st, const char *why)
{
    return hc_fail(st, HOPPER_UNAVAILABLE, HOPPER_R_UNREACHABLE,
                   "cannot reach broker at '%s': %s", c->url, why);
}

int
hc_timed_out(const hopper_client *c, uint32_t timeout_ms, hopper_status *st)
{
    return hc_fail(st, HOPPER_DEADLINE_EXCEEDED, HOPPER_R_TIMEOUT,
                   "no reply from broker at '%s' within %u ms", c->url,
                   (unsigned)timeout_ms);
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

int
hc_pack_frame(hopper_client *c, const char *path, const uint8_t *body,
              size_t body_len, uint32_t deadline_ms,
              char request_id[HC_REQUEST_ID_LEN + 1], uint8_t **frame,
              size_t *frame_len, hopper_status *st)
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
    size_t len = hopper__v1__request__get_packed_size(&req);
    if ((*frame = malloc(FRAME_HEAD + len)) == NULL) {
        return hc_no_memory(st);
    }
    hopper__v1__request__pack(&req, *frame + FRAME_HEAD);
    sp_put_u64(*frame, 4 + (uint64_t)len);
    *frame_len = FRAME_HEAD + len;
    return HOPPER_OK;
}

int
hc_open_reply(const uint8_t *msg, size_t len, const char *request_id,
              Hopper__V1__Response **reply, hopper_status *st)
{
    Hopper__V1__Response *resp = hopper__v1__response__unpack(NULL, len, msg);
    int code;

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

/* ---- the pool of idle connections ---------------------------------------- */

static hc_conn *
pool_take(hopper_client *c)
{
    pthread_mutex_lock(&c->mtx);
    hc_conn *k = c->idle;
    if (k != NULL) {
        c->idle = k->next;
        c->n_idle--;
    }
    pthread_mutex_unlock(&c->mtx);
    return k;
}

static void
pool_put(hopper_client *c, hc_conn *k)
{
    pthread_mutex_lock(&c->mtx);
    if (c->n_idle < HC_MAX_IDLE) {
        k->next = c->idle;
        c->idle = k;
        c->n_idle++;
        k = NULL;
    }
    pthread_mutex_unlock(&c->mtx);
    hc_conn_close(k); /* over the idle cap */
}

/* ---- one exchange -------------------------------------------------------- */

typedef struct exchange_out {
    bool sent; /* the whole frame went out */
    int code;  /* the reply's outcome, when the exchange itself worked */
    Hopper__V1__Response *reply;
} exchange_out;

/* Sends frame on k and reads its reply. HC_IO_OK means a reply arrived
 * (its outcome in out->code); anything else says what happened to k. */
static hc_io
exchange(hopper_client *c, hc_conn *k, uint8_t *frame, size_t frame_len,
         const char *request_id, uint64_t deadline, exchange_out *out,
         hopper_status *st)
{
    uint8_t buf[READ_BUF];
    uint32_t id = (k->next_id++) | SP_ID_BIT;
    sp_reader rd;
    hc_io r;

    sp_put_u32(frame + SP_FRAME_HDR_LEN, id);
    out->sent = false;
    if ((r = hc_write_all(k, frame, frame_len, deadline)) != HC_IO_OK) {
        return r;
    }
    out->sent = true;
    sp_reader_init(&rd, c->max_reply, NULL, NULL);
    for (;;) {
        size_t n = 0, at = 0;
        if ((r = hc_read_some(k, buf, sizeof(buf), &n, deadline)) != HC_IO_OK) {
            break;
        }
        while (at < n) {
            const uint8_t *msg;
            size_t used, len;
            sp_read_result res =
                sp_reader_feed(&rd, buf + at, n - at, &used, &msg, &len);
            at += used;
            if (res == SP_MORE) {
                continue;
            }
            if (res == SP_NOMEM) {
                r = HC_IO_NOMEM;
            } else if (res != SP_MSG || len < 4 || sp_get_u32(msg) != id ||
                       at != n || hc_conn_pending(k)) {
                /* Too big, another request's reply, or more bytes than
                 * one reply: the connection cannot be trusted again. */
                r = HC_IO_BAD;
            } else {
                out->code = hc_open_reply(msg + 4, len - 4, request_id,
                                          &out->reply, st);
                r = HC_IO_OK;
            }
            sp_reader_release(&rd);
            return r;
        }
    }
    sp_reader_release(&rd);
    return r;
}

int
hc_roundtrip(hopper_client *c, const char *path, const uint8_t *body,
             size_t body_len, uint32_t timeout_ms, uint32_t deadline_ms,
             Hopper__V1__Response **reply, hopper_status *st)
{
    char request_id[HC_REQUEST_ID_LEN + 1];
    uint64_t deadline = hc_now_ms() + timeout_ms;
    uint8_t *frame;
    size_t frame_len;
    int resends = 0;
    int code;

    if ((code = hc_pack_frame(c, path, body, body_len, deadline_ms, request_id,
                              &frame, &frame_len, st)) != HOPPER_OK) {
        return code;
    }
    hc_conn *k = pool_take(c);
    for (;;) {
        bool fresh = k == NULL;
        exchange_out out = { 0 };
        if (fresh && (code = hc_dial(c, deadline, true, &k, st)) != HOPPER_OK) {
            break;
        }
        hc_io r =
            exchange(c, k, frame, frame_len, request_id, deadline, &out, st);
        if (r == HC_IO_OK) {
            pool_put(c, k);
            code = out.code;
            if (code == HOPPER_OK) {
                *reply = out.reply;
            }
            break;
        }
        hc_conn_close(k);
        k = NULL;
        if (r == HC_IO_LOST && (!fresh || resends++ < 1) &&
            hc_now_ms() < deadline) {
            continue;
        }
        switch (r) {
        case HC_IO_TIMEOUT:
            code = out.sent ? hc_timed_out(c, timeout_ms, st)
                            : hc_unreachable(c, st,
                                             "the request could not be sent "
                                             "within the timeout");
            break;
        case HC_IO_NOMEM:
            code = hc_no_memory(st);
            break;
        case HC_IO_BAD:
            code = hc_bad_response(st, "a reply that breaks the SP protocol");
            break;
        default:
            code = hc_unreachable(c, st, "the connection was lost");
            break;
        }
        break;
    }
    free(frame);
    return code;
}

static uint32_t
add_ms(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

int
hc_prepare(const char *rpc, const ProtobufCMessage *req,
           const ProtobufCMethodDescriptor **m, char path[HC_PATH_MAX],
           uint8_t **body, size_t *len, hopper_status *st)
{
    const ProtobufCServiceDescriptor *svc = &hopper__v1__broker__descriptor;

    /* The methods and their types come from the generated service
     * descriptor, as in the broker's dispatch table. */
    *m = protobuf_c_service_descriptor_get_method_by_name(svc, rpc);
    if (*m == NULL || (*m)->input != req->descriptor) {
        return hc_fail(st, HOPPER_INTERNAL, HOPPER_R_BAD_METHOD,
                       "no method '%s' taking this request", rpc);
    }
    snprintf(path, HC_PATH_MAX, "/%s/%s", svc->name, (*m)->name);
    *len = protobuf_c_message_get_packed_size(req);
    if ((*body = malloc(*len != 0 ? *len : 1)) == NULL) {
        return hc_no_memory(st);
    }
    protobuf_c_message_pack(req, *body);
    return HOPPER_OK;
}

int
hc_open_body(const ProtobufCMethodDescriptor *m, Hopper__V1__Response *reply,
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
    char path[HC_PATH_MAX];
    uint32_t timeout_ms = add_ms(c->timeout_ms, extra_ms);
    Hopper__V1__Response *reply;
    uint8_t *body;
    size_t len = 0;
    int code;

    if ((code = hc_prepare(rpc, req, &m, path, &body, &len, st)) != HOPPER_OK) {
        return code;
    }
    code = hc_roundtrip(c, path, body, len, timeout_ms, timeout_ms, &reply, st);
    free(body);
    if (code != HOPPER_OK) {
        return code;
    }
    return hc_open_body(m, reply, resp, st);
}

int
hopper_call(hopper_client *c, const char *method, const void *body, size_t len,
            void **resp_body, size_t *resp_len, uint32_t timeout_ms,
            hopper_status *st)
{
    char path[HC_PATH_MAX];
    Hopper__V1__Response *reply;
    int code;

    if (c == NULL || method == NULL || method[0] == '\0' ||
        (body == NULL && len != 0) || resp_body == NULL || resp_len == NULL) {
        return hc_bad_arg(st, "hopper_call needs a client, a method and "
                              "result pointers");
    }
    *resp_body = NULL;
    *resp_len = 0;
    if (strlen(method) > HC_PATH_MAX / 2) {
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
