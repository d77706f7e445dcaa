/*
 * api.c - the Connect protocol's unary calls over NNG's HTTP server, each
 * turned into a native envelope for the listener's handler (see api.h).
 *
 * One HTTP request is one api_call, which lives from NNG's handler
 * callback to the HTTP response, on NNG's threads:
 *
 *   on_request   headers checked; a body announced by Content-Length is
 *                reserved against the body budget and read (after a
 *                "100 Continue" if the client asked for one): on_rx
 *   submit       the envelope built (a JSON body decoded and packed) and
 *                handed to the listener on an external connection
 *   on_reply     any thread (a read's I/O thread, the writer, the timer):
 *                copies the Response and wakes on_work, so the conversion
 *                to JSON never runs on the writer
 *   on_work      the HTTP response built and handed to NNG (finish)
 *
 * A long-poll that parks (a Claim or Await with nothing yet) is told so
 * (on_waiting, on the writer). NNG's server reads nothing while a handler
 * runs, so a client that hangs up would go unnoticed, and its parked claim
 * could be woken to take messages for no one. So the call then takes the
 * connection over from the server (nng_http_hijack) and reads it itself
 * (on_watch): a hang-up answers the long-poll into the void
 * (listener_ext_close). Such a read cannot be cancelled without NNG
 * closing the connection, so the call writes its response itself
 * (on_write) and closes the connection after it: a client reconnects after
 * each long-poll that waited, never after one that did not. call->mtx
 * orders on_waiting, on_work and on_watch; a reference count frees the
 * call after the last of its callbacks.
 *
 * Errors keep the native protocol's precedence: a JSON body that does not
 * decode still goes to the handler, with a body no message decodes from,
 * so the method, scope and token are checked first, exactly as for a
 * native request; the handler's BAD_BODY answer is then replaced by what
 * was wrong with the JSON.
 */
#include "broker/api.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include "broker/budget.h"
#include "broker/listener.h"
#include "broker/nnghttp.h"
#include "broker/pbjson.h"
#include "common/base64.h"
#include "common/log.h"
#include "common/reasons.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"

#define SERVICE_PATH "/hopper.v1.Broker/"
#define JSON_TYPE    "application/json"
#define PROTO_TYPE   "application/proto"
/* Quoted back in an error at most this long. */
#define QUOTE_MAX 64

struct api_server {
    nng_http_server *srv;
    nng_tls_config *tls;
    listener *l;
    size_t max_body;
    size_t max_body_total;
    uint32_t body_timeout_ms;
    size_t decode_limit;
    _Atomic uint64_t body_bytes;
    _Atomic uint64_t requests_total;
    _Atomic uint64_t refused_total;
    uint32_t send_timeout_ms;
    const char *callback_path; /* static; NULL: no callback ingress */
    size_t callback_max_body;
    api_callback_fn callback;
    void *callback_arg;
    pthread_mutex_t mtx;
    pthread_cond_t idle;
    uint64_t live; /* s->mtx: calls not yet freed */
    char url[96];
};

typedef struct api_call {
    api_server *s;
    nng_aio *aio; /* NNG's: answered once (finish, or at the hijack) */
    nng_http_req *req;
    nng_http_conn *conn;
    const ProtobufCMethodDescriptor *md; /* NULL: no such rpc */
    char method[80];                     /* the envelope's, or "" */
    bool json;
    hp_str callback; /* a callback's token, in req's URI; len 0: an rpc */

    uint8_t *body; /* the request body, reserved against the budget */
    size_t body_len;
    bool continuing; /* rx is writing "100 Continue" */
    nng_aio *rx;     /* 100 Continue, then the body */

    /* A JSON body that did not decode: the answer, if the handler gets as
     * far as the body. */
    hp_code json_code;
    hp_status json_st;

    nng_aio *work; /* finished by on_reply */
    listener_conn *lc;
    uint8_t *reply; /* the Response's bytes */
    size_t reply_len;
    hp_code refused; /* no reply: refused before the handler (or OK) */
    hp_status refused_st;
    nng_http_res *res; /* NULL: no response could be made */

    pthread_mutex_t mtx;
    int refs;         /* c->mtx: the request, the watch, the write */
    bool close_after; /* the connection closes after the response */
    bool have_res;    /* c->mtx: on_work has run */
    bool hijacked;    /* c->mtx: the connection is the call's (on_waiting) */
    bool watched;     /* c->mtx: the watch read is out */
    nng_aio *watch;
    uint8_t watch_byte;
    nng_aio *write;
} api_call;

/* ---- Connect's codes --------------------------------------------------- */

/* Connect's name and HTTP status of each gRPC code (connectrpc.com's
 * protocol reference, "Error Codes"). */
static const struct {
    const char *name;
    uint16_t http;
} connect_codes[] = {
    [HP_CANCELLED] = { "canceled", 499 },
    [HP_UNKNOWN] = { "unknown", 500 },
    [HP_INVALID_ARGUMENT] = { "invalid_argument", 400 },
    [HP_DEADLINE_EXCEEDED] = { "deadline_exceeded", 504 },
    [HP_NOT_FOUND] = { "not_found", 404 },
    [HP_ALREADY_EXISTS] = { "already_exists", 409 },
    [HP_PERMISSION_DENIED] = { "permission_denied", 403 },
    [HP_RESOURCE_EXHAUSTED] = { "resource_exhausted", 429 },
    [HP_FAILED_PRECONDITION] = { "failed_precondition", 400 },
    [HP_ABORTED] = { "aborted", 409 },
    [HP_OUT_OF_RANGE] = { "out_of_range", 400 },
    [HP_UNIMPLEMENTED] = { "unimplemented", 501 },
    [HP_INTERNAL] = { "internal", 500 },
    [HP_UNAVAILABLE] = { "unavailable", 503 },
    [HP_DATA_LOSS] = { "data_loss", 500 },
    [HP_UNAUTHENTICATED] = { "unauthenticated", 401 },
};

static bool
known_code(uint32_t code)
{
    return code > 0 && code < HP_ARRAY_LEN(connect_codes);
}

/* ---- responses ---------------------------------------------------------- */

/* google.rpc.ErrorInfo {reason = 1; domain = 2}, packed by hand: the one
 * message of Connect's error details, whose reason is exactly our reason
 * word. Both strings are short (a word, "hopper.v1"): one-byte lengths. */
static size_t
pack_error_info(const char *reason, uint8_t *out)
{
    static const char domain[] = "hopper.v1";
    size_t r = strlen(reason), n = 0;
    if (r > 120) {
        r = 120;
    }
    out[n++] = 0x0a;
    out[n++] = (uint8_t)r;
    memcpy(out + n, reason, r);
    n += r;
    out[n++] = 0x12;
    out[n++] = (uint8_t)(sizeof(domain) - 1);
    memcpy(out + n, domain, sizeof(domain) - 1);
    return n + sizeof(domain) - 1;
}

static int
put_text(hp_buf *b, const char *text)
{
    return pbjson_put(b, text, strlen(text));
}

/* Connect's error body: {"code", "message", "details": [ErrorInfo]}. */
static int
error_json(hp_buf *b, hp_code code, const char *reason, const char *msg)
{
    uint8_t info[160];
    char b64[HP_B64_LEN(sizeof(info)) + 1];

    const char *name = connect_codes[known_code(code) ? code : HP_UNKNOWN].name;
    if (put_text(b, "{\"code\":\"") != 0 || put_text(b, name) != 0 ||
        put_text(b, "\",\"message\":") != 0 ||
        pbjson_put_string(b, msg, strlen(msg)) != 0) {
        return -1;
    }
    if (reason != NULL && reason[0] != '\0') {
        size_t n = pack_error_info(reason, info);
        hp_b64_encode(info, n, b64, 0);
        if (put_text(b, ",\"details\":[{\"type\":\"google.rpc.ErrorInfo\","
                        "\"value\":\"") != 0 ||
            put_text(b, b64) != 0 ||
            put_text(b, "\",\"debug\":{\"reason\":") != 0 ||
            pbjson_put_string(b, reason, strlen(reason)) != 0 ||
            put_text(b, ",\"domain\":\"hopper.v1\"}}]") != 0) {
            return -1;
        }
    }
    return put_text(b, "}");
}

/* A response with status, type and body; NULL without memory. */
static nng_http_res *
make_res(uint16_t status, const char *type, const void *body, size_t len,
         const char *request_id)
{
    nng_http_res *res;

    if (nng_http_res_alloc(&res) != 0) {
        return NULL;
    }
    if (nng_http_res_set_status(res, status) != 0 ||
        (status == 499 &&
         nng_http_res_set_reason(res, "Client Closed Request") != 0) ||
        nng_http_res_set_header(res, "Content-Type", type) != 0 ||
        (request_id != NULL && request_id[0] != '\0' &&
         nng_http_res_set_header(res, "Hopper-Request-Id", request_id) != 0) ||
        /* An empty body (an empty message in binary) is set, not copied:
         * NNG cannot allocate nothing. */
        (len > 0 ? nng_http_res_copy_data(res, body, len)
                 : nng_http_res_set_data(res, "", 0)) != 0) {
        nng_http_res_free(res);
        return NULL;
    }
    return res;
}

static nng_http_res *
error_res(hp_code code, const char *reason, const char *msg,
          const char *request_id)
{
    hp_buf b;
    nng_http_res *res = NULL;

    hp_buf_init(&b);
    if (error_json(&b, code, reason, msg) == 0) {
        uint16_t http =
            connect_codes[known_code(code) ? code : HP_UNKNOWN].http;
        res = make_res(http, JSON_TYPE, b.p, b.len, request_id);
    }
    hp_buf_release(&b);
    return res;
}

/* ---- the call's life ------------------------------------------------------
 */

static void on_rx(void *arg);
static void on_work(void *arg);
static void on_watch(void *arg);
static void on_write(void *arg);

static void
call_unref(api_call *c)
{
    pthread_mutex_lock(&c->mtx);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->mtx);
    if (!last) {
        return;
    }
    api_server *s = c->s;
    if (c->body != NULL) {
        atomic_fetch_sub(&s->body_bytes, c->body_len);
        free(c->body);
    }
    /* Reaped, not freed: this runs in one of their callbacks. */
    nng_aio *aios[] = { c->rx, c->work, c->watch, c->write };
    for (size_t i = 0; i < HP_ARRAY_LEN(aios); i++) {
        if (aios[i] != NULL) {
            nng_aio_reap(aios[i]);
        }
    }
    free(c->reply);
    pthread_mutex_destroy(&c->mtx);
    free(c);
    /* api_stop waits for the last call. */
    pthread_mutex_lock(&s->mtx);
    if (--s->live == 0) {
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->mtx);
}

/* Hands c->res (a closed connection without one) to NNG and drops the
 * request's reference. Once per call that was not hijacked. */
static void
finish(api_call *c)
{
    nng_aio *aio = c->aio;
    nng_http_res *res = c->res;

    if (res != NULL && c->close_after &&
        nng_http_res_set_header(res, "Connection", "close") != 0) {
        nng_http_res_free(res);
        res = NULL;
    }
    c->res = NULL;
    atomic_fetch_add(&c->s->requests_total, 1);
    call_unref(c);
    if (res == NULL) {
        nng_aio_finish(aio, NNG_ENOMEM); /* NNG closes the connection */
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

/* Answers a request refused before it reached the broker. */
static void
refuse(api_call *c, hp_code code, const hp_status *st)
{
    atomic_fetch_add(&c->s->refused_total, 1);
    c->res = error_res(code, st->reason, st->msg, NULL);
    finish(c);
}

/* ---- the request ----------------------------------------------------------
 */

static const char *
header(api_call *c, const char *name)
{
    return nng_http_req_get_header(c->req, name);
}

/* Whether value, up to a ';' and without spaces around, is type
 * (case-insensitive, as media types are). */
static bool
media_is(const char *value, const char *type)
{
    size_t n = strlen(type);
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    if (strncasecmp(value, type, n) != 0) {
        return false;
    }
    value += n;
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    return *value == '\0' || *value == ';';
}

/* A header value of 1-10 digits (Connect-Timeout-Ms, Content-Length is
 * checked alike with a wider bound); -1 otherwise. */
static long long
digits_value(const char *v, size_t max_digits)
{
    long long n = 0;
    size_t i = 0;
    for (; v[i] >= '0' && v[i] <= '9'; i++) {
        if (i == max_digits) {
            return -1;
        }
        n = n * 10 + (v[i] - '0');
    }
    return i > 0 && v[i] == '\0' ? n : -1;
}

/* The method from the path: "/hopper.v1.Broker/Name". An rpc of another
 * service, or of none, still gets an envelope (with c->method set and
 * c->md NULL) and the handler's UNIMPLEMENTED/UNKNOWN_METHOD, as natively;
 * a path outside the service is refused here the same way. */
static hp_code
parse_path(api_call *c, hp_status *st)
{
    const char *uri = nng_http_req_get_uri(c->req);
    size_t len = strcspn(uri, "?#");
    size_t pre = strlen(SERVICE_PATH);

    if (c->callback.len > 0) {
        return HP_OK;
    }
    if (len <= pre || strncmp(uri, SERVICE_PATH, pre) != 0 ||
        len >= sizeof(c->method)) {
        return hp_status_set(st, HP_UNIMPLEMENTED, HP_R_UNKNOWN_METHOD,
                             "no rpc at '%.*s': the rpcs are POST " SERVICE_PATH
                             "<Method>",
                             (int)(len < QUOTE_MAX ? len : QUOTE_MAX), uri);
    }
    memcpy(c->method, uri, len);
    c->method[len] = '\0';
    c->md = protobuf_c_service_descriptor_get_method_by_name(
        &hopper__v1__broker__descriptor, c->method + pre);
    return HP_OK;
}

/* A callback's token from the path "<callback_path><token>", into
 * c->callback (left empty for any other path). */
static void
callback_route(api_call *c)
{
    const char *uri = nng_http_req_get_uri(c->req);
    const char *pre = c->s->callback_path;
    size_t n = pre != NULL ? strlen(pre) : 0;
    size_t len = strcspn(uri, "?#");
    if (n > 0 && len > n && strncmp(uri, pre, n) == 0) {
        c->callback = (hp_str){ uri + n, len - n };
    }
}

/* Everything but the body; *body_len what Content-Length announces. */
static hp_code
check_request(api_call *c, size_t *body_len, uint16_t *http, hp_status *st)
{
    const char *v;
    long long n;

    *http = 0;
    *body_len = 0;
    /* Whatever body there is goes unread on any refusal: the connection
     * closes after it. */
    c->close_after = header(c, "Content-Length") != NULL ||
                     header(c, "Transfer-Encoding") != NULL;
    if (strcmp(nng_http_req_get_method(c->req), "POST") != 0) {
        *http = 405;
        return hp_status_set(st, HP_UNIMPLEMENTED, HP_R_BAD_HTTP,
                             "use POST: the rpcs are Connect unary calls "
                             "(GET is not served)");
    }
    /* A callback's body is JSON whatever its content type says. */
    if ((v = header(c, "Content-Type")) != NULL && media_is(v, JSON_TYPE)) {
        c->json = true;
    } else if (c->callback.len == 0 &&
               (v == NULL || !media_is(v, PROTO_TYPE))) {
        *http = 415;
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONTENT_TYPE,
                             "content type '%.64s' is neither " JSON_TYPE
                             " nor " PROTO_TYPE,
                             v != NULL ? v : "");
    }
    if ((v = header(c, "Content-Encoding")) != NULL &&
        strcasecmp(v, "identity") != 0) {
        return hp_status_set(st, HP_UNIMPLEMENTED, HP_R_BAD_HTTP,
                             "content encoding '%.32s' is not served; the "
                             "only one is identity",
                             v);
    }
    if ((v = header(c, "Connect-Protocol-Version")) != NULL &&
        strcmp(v, "1") != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_HTTP,
                             "Connect-Protocol-Version '%.16s': this is "
                             "version 1",
                             v);
    }
    if (header(c, "Transfer-Encoding") != NULL) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_HTTP,
                             "send the body with a Content-Length, not a "
                             "Transfer-Encoding");
    }
    if ((v = header(c, "Content-Length")) != NULL) {
        if ((n = digits_value(v, 18)) < 0) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_HTTP,
                                 "Content-Length '%.32s' is not a length", v);
        }
        if ((unsigned long long)n > c->s->max_body) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_BODY_TOO_LARGE,
                                 "a body of %lld bytes is over the limit of "
                                 "%zu (--max-frame)",
                                 n, c->s->max_body);
        }
        if (c->callback.len > 0 &&
            (unsigned long long)n > c->s->callback_max_body) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_BODY_TOO_LARGE,
                                 "a callback of %lld bytes is over the limit "
                                 "of %zu",
                                 n, c->s->callback_max_body);
        }
        *body_len = (size_t)n;
    }
    return HP_OK;
}

/* The token of "Authorization: Bearer TOKEN" ("" without the header). */
static hp_code
bearer(api_call *c, const char **token, hp_status *st)
{
    const char *v = header(c, "Authorization");
    *token = "";
    if (v == NULL) {
        return HP_OK;
    }
    if (strncasecmp(v, "Bearer ", 7) != 0) {
        return hp_status_set(st, HP_UNAUTHENTICATED, HP_R_BAD_TOKEN,
                             "Authorization must be 'Bearer TOKEN'");
    }
    for (v += 7; *v == ' '; v++) {
    }
    *token = v;
    return HP_OK;
}

/* The JSON body as the method's message, packed into *out (malloc). What
 * does not decode is answered later (c->json_code): *out is then one byte
 * no message decodes from (field number 0). */
static hp_code
json_to_proto(api_call *c, uint8_t **out, size_t *len, hp_status *st)
{
    decode_budget budget;
    ProtobufCMessage *m = NULL;
    const char *text = c->body_len > 0 ? (const char *)c->body : "{}";
    size_t text_len = c->body_len > 0 ? c->body_len : 2;

    decode_budget_init(&budget, c->s->decode_limit);
    c->json_code = pbjson_decode(c->md->input, text, text_len, &budget.alloc,
                                 &m, &c->json_st);
    if (c->json_code != HP_OK) {
        if (budget.exceeded) {
            c->json_code = hp_status_set(&c->json_st, HP_RESOURCE_EXHAUSTED,
                                         HP_R_DECODE_BUDGET,
                                         "request body needs too much "
                                         "memory to decode");
        }
        *len = 1;
        if ((*out = calloc(1, 1)) == NULL) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        }
        return HP_OK;
    }
    *len = protobuf_c_message_get_packed_size(m);
    if ((*out = malloc(*len > 0 ? *len : 1)) == NULL) {
        protobuf_c_message_free_unpacked(m, &budget.alloc);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    protobuf_c_message_pack(m, *out);
    protobuf_c_message_free_unpacked(m, &budget.alloc);
    return HP_OK;
}

/* The envelope a native client would send for this request. */
static hp_code
envelope(api_call *c, uint8_t **out, size_t *len, hp_status *st)
{
    Hopper__V1__Request env = HOPPER__V1__REQUEST__INIT;
    uint8_t *body = NULL;
    size_t body_len = c->body_len;
    const char *v;
    hp_code code;

    env.method = c->method;
    if ((code = bearer(c, (const char **)&env.token, st)) != HP_OK) {
        return code;
    }
    if ((v = header(c, "Hopper-Scope")) != NULL) {
        env.scope = (char *)(uintptr_t)v;
    }
    if ((v = header(c, "Hopper-Request-Id")) != NULL) {
        env.request_id = (char *)(uintptr_t)v;
    }
    if ((v = header(c, "Connect-Timeout-Ms")) != NULL) {
        long long ms = digits_value(v, 10);
        if (ms <= 0) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_HTTP,
                                 "Connect-Timeout-Ms '%.16s' is not 1-10 "
                                 "digits",
                                 v);
        }
        env.deadline_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    }
    if (c->json && c->md != NULL) {
        if ((code = json_to_proto(c, &body, &body_len, st)) != HP_OK) {
            return code;
        }
        env.body.data = body;
    } else {
        env.body.data = c->body;
    }
    env.body.len = body_len;
    *len = hopper__v1__request__get_packed_size(&env);
    *out = malloc(*len > 0 ? *len : 1);
    if (*out == NULL) {
        free(body);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    hopper__v1__request__pack(&env, *out);
    free(body);
    return HP_OK;
}

/* Any thread: the handler's answer. */
static void
on_reply(void *arg, const void *body, size_t len)
{
    api_call *c = arg;
    if (len > 0 && (c->reply = malloc(len)) != NULL) {
        memcpy(c->reply, body, len);
        c->reply_len = len;
    }
    nng_aio_finish(c->work, 0);
}

/* The writer, as the call is about to park: the connection becomes the
 * call's, and is watched for a hang-up. Nothing else runs on c meanwhile
 * (the call is the writer's until parked), but on_work may follow at once,
 * hence the lock. NNG's functions called here only queue work. */
static void
on_waiting(void *arg)
{
    api_call *c = arg;
    nng_iov iov = { .iov_buf = &c->watch_byte, .iov_len = 1 };

    pthread_mutex_lock(&c->mtx);
    if (c->hijacked || c->have_res || c->watch == NULL) {
        pthread_mutex_unlock(&c->mtx); /* parked before, or answered */
        return;
    }
    c->hijacked = true;
    c->watched = true;
    c->refs++; /* the watch's */
    nng_http_hijack(c->conn);
    nng_aio_set_iov(c->watch, 1, &iov);
    nng_http_conn_read(c->conn, c->watch);
    /* The server is done with this request: without a response to write
     * it lets go of the connection, which is the call's to close. */
    nng_aio_finish(c->aio, 0);
    c->aio = NULL;
    pthread_mutex_unlock(&c->mtx);
}

/* Any thread: the callback hook's answer. */
static void
on_callback_done(void *arg, hp_code code, const hp_status *st, const char *json,
                 size_t len)
{
    api_call *c = arg;
    c->refused = code;
    if (code != HP_OK) {
        c->refused_st = *st;
    } else if ((c->reply = malloc(len > 0 ? len : 1)) != NULL) {
        memcpy(c->reply, json, len);
        c->reply_len = len;
    }
    nng_aio_finish(c->work, 0);
}

/* The body is in: to the callback hook, which answers on_callback_done. */
static void
submit_callback(api_call *c)
{
    hp_status st;
    if (nng_aio_alloc(&c->work, on_work, c) != 0) {
        hp_code code = hp_status_set(&st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                     "out of memory");
        refuse(c, code, &st);
        return;
    }
    nng_aio_begin(c->work);
    /* c may be answered and gone before this returns. */
    c->s->callback(c->s->callback_arg, c->callback, c->body, c->body_len,
                   on_callback_done, c);
}

/* The body is in: to the handler. */
static void
submit(api_call *c)
{
    uint8_t *env = NULL;
    size_t len = 0;
    hp_status st;
    hp_code code;

    if (c->callback.len > 0) {
        submit_callback(c);
        return;
    }
    if ((code = envelope(c, &env, &len, &st)) != HP_OK) {
        refuse(c, code, &st);
        return;
    }
    /* Its bytes are in the envelope now. */
    atomic_fetch_sub(&c->s->body_bytes, c->body_len);
    free(c->body);
    c->body = NULL;
    /* Only a Claim or an Await may wait. */
    bool may_wait = c->md != NULL && (strcmp(c->md->name, "Claim") == 0 ||
                                      strcmp(c->md->name, "Await") == 0);
    if (nng_aio_alloc(&c->work, on_work, c) != 0 ||
        (may_wait && (nng_aio_alloc(&c->watch, on_watch, c) != 0 ||
                      nng_aio_alloc(&c->write, on_write, c) != 0))) {
        free(env);
        code = hp_status_set(&st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
        refuse(c, code, &st);
        return;
    }
    nng_aio_begin(c->work);
    c->refused = listener_ext_open(c->s->l, on_reply, on_waiting, c, &c->lc,
                                   &c->refused_st);
    if (c->refused == HP_OK) {
        /* c may be answered and gone before this returns. */
        listener_ext_request(c->lc, env, len);
    } else {
        nng_aio_finish(c->work, 0);
    }
    free(env);
}

static void
read_body(api_call *c)
{
    nng_iov iov = { .iov_buf = c->body, .iov_len = c->body_len };
    nng_aio_set_iov(c->rx, 1, &iov);
    nng_aio_set_timeout(c->rx, (nng_duration)c->s->body_timeout_ms);
    nng_http_conn_read_all(c->conn, c->rx);
}

static void
on_rx(void *arg)
{
    api_call *c = arg;
    int rv = nng_aio_result(c->rx);

    if (rv != 0) {
        /* The client stopped sending or went away: no answer can reach it
         * in order, so NNG closes the connection. */
        nng_aio *aio = c->aio;
        atomic_fetch_add(&c->s->refused_total, 1);
        call_unref(c);
        nng_aio_finish(aio, rv);
        return;
    }
    if (c->continuing) {
        c->continuing = false;
        read_body(c);
        return;
    }
    submit(c);
}

static void
on_request(nng_aio *aio)
{
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    api_call *c = calloc(1, sizeof(*c));
    uint16_t http;
    size_t body_len;
    hp_status st;
    hp_code code;

    if (c == NULL) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    pthread_mutex_init(&c->mtx, NULL);
    c->refs = 1; /* the request's */
    c->s = nng_http_handler_get_data(h);
    pthread_mutex_lock(&c->s->mtx);
    c->s->live++;
    pthread_mutex_unlock(&c->s->mtx);
    c->aio = aio;
    c->req = nng_aio_get_input(aio, 0);
    c->conn = nng_aio_get_input(aio, 2);
    callback_route(c);
    if ((code = check_request(c, &body_len, &http, &st)) != HP_OK ||
        (code = parse_path(c, &st)) != HP_OK) {
        atomic_fetch_add(&c->s->refused_total, 1);
        c->res = error_res(code, st.reason, st.msg, NULL);
        if (c->res != NULL && http != 0) {
            /* The two statuses Connect asks for outside its table. */
            bool bad_verb = http == 405;
            if (nng_http_res_set_status(c->res, http) != 0 ||
                nng_http_res_set_header(
                    c->res, bad_verb ? "Allow" : "Accept-Post",
                    bad_verb ? "POST" : JSON_TYPE ", " PROTO_TYPE) != 0) {
                nng_http_res_free(c->res);
                c->res = NULL;
            }
        }
        finish(c);
        return;
    }
    c->close_after = false;
    if (body_len == 0) {
        submit(c);
        return;
    }
    uint64_t held = atomic_fetch_add(&c->s->body_bytes, body_len) + body_len;
    c->body_len = body_len;
    if (held > c->s->max_body_total || (c->body = malloc(body_len)) == NULL) {
        atomic_fetch_sub(&c->s->body_bytes, body_len);
        c->body_len = 0;
        c->close_after = true;
        code = hp_status_set(&st, HP_RESOURCE_EXHAUSTED, HP_R_TOO_MANY_REQUESTS,
                             "request bodies of %llu bytes are arriving "
                             "(--max-partial-total); try again",
                             (unsigned long long)held);
        refuse(c, code, &st);
        return;
    }
    if (nng_aio_alloc(&c->rx, on_rx, c) != 0) {
        c->close_after = true;
        code = hp_status_set(&st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
        refuse(c, code, &st);
        return;
    }
    const char *expect = header(c, "Expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0) {
        /* curl asks before a big body and waits a second for this. */
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        nng_iov iov = { .iov_buf = cont, .iov_len = sizeof(cont) - 1 };
        c->continuing = true;
        nng_aio_set_iov(c->rx, 1, &iov);
        nng_aio_set_timeout(c->rx, (nng_duration)c->s->body_timeout_ms);
        nng_http_conn_write_all(c->conn, c->rx);
        return;
    }
    read_body(c);
}

/* ---- the answer ------------------------------------------------------------
 */

/* A callback's response: 200 with its JSON, or the error, where a lost
 * claim is 409 Conflict (a late answer, not a malformed one). */
static nng_http_res *
callback_res(api_call *c)
{
    if (c->refused == HP_OK) {
        return c->reply != NULL
                   ? make_res(200, JSON_TYPE, c->reply, c->reply_len, NULL)
                   : error_res(HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                               "out of memory", NULL);
    }
    nng_http_res *res =
        error_res(c->refused, c->refused_st.reason, c->refused_st.msg, NULL);
    if (res != NULL && c->refused == HP_FAILED_PRECONDITION &&
        nng_http_res_set_status(res, 409) != 0) {
        nng_http_res_free(res);
        res = NULL;
    }
    return res;
}

/* The HTTP response for the handler's Response (or the refusal). */
static nng_http_res *
build_res(api_call *c)
{
    Hopper__V1__Response *resp;
    nng_http_res *res;

    if (c->callback.len > 0) {
        return callback_res(c);
    }
    if (c->refused != HP_OK) {
        atomic_fetch_add(&c->s->refused_total, 1);
        return error_res(c->refused, c->refused_st.reason, c->refused_st.msg,
                         NULL);
    }
    if (c->reply == NULL || (resp = hopper__v1__response__unpack(
                                 NULL, c->reply_len, c->reply)) == NULL) {
        /* The handler answers an empty reply when it has no memory. */
        return error_res(HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                         "the broker could not build its answer (out of "
                         "memory)",
                         NULL);
    }
    uint32_t code = resp->status != NULL ? resp->status->code : HP_OK;
    const char *rid = resp->request_id;
    if (code != HP_OK) {
        const char *reason = resp->status->reason;
        if (code == HP_INVALID_ARGUMENT && strcmp(reason, HP_R_BAD_BODY) == 0 &&
            c->json_code != HP_OK) {
            res =
                error_res(c->json_code, c->json_st.reason, c->json_st.msg, rid);
        } else {
            res = error_res(known_code(code) ? (hp_code)code : HP_UNKNOWN,
                            reason, resp->status->message, rid);
        }
    } else if (!c->json) {
        res = make_res(200, PROTO_TYPE, resp->body.data, resp->body.len, rid);
    } else {
        ProtobufCMessage *m = protobuf_c_message_unpack(
            c->md->output, NULL, resp->body.len, resp->body.data);
        hp_buf b;
        hp_status st;
        hp_buf_init(&b);
        res = NULL;
        if (m != NULL && pbjson_encode(m, &b, &st) == HP_OK) {
            res = make_res(200, JSON_TYPE, b.p, b.len, rid);
        }
        hp_buf_release(&b);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    hopper__v1__response__free_unpacked(resp, NULL);
    return res;
}

static void
on_work(void *arg)
{
    api_call *c = arg;
    listener_conn *lc = c->lc;

    c->res = build_res(c);
    pthread_mutex_lock(&c->mtx);
    c->have_res = true;
    bool hijacked = c->hijacked;
    if (hijacked) {
        if (c->res == NULL ||
            nng_http_res_set_header(c->res, "Connection", "close") != 0) {
            /* No response to write: the connection just closes. */
            nng_http_res_free(c->res);
            c->res = NULL;
            nng_http_conn_close(c->conn);
            c->conn = NULL;
        } else {
            c->refs++; /* the write's */
            atomic_fetch_add(&c->s->requests_total, 1);
            nng_aio_set_timeout(c->write, (nng_duration)c->s->send_timeout_ms);
            nng_http_conn_write_res(c->conn, c->res, c->write);
        }
    }
    pthread_mutex_unlock(&c->mtx);
    listener_ext_release(lc); /* the reply came: no one closes it now */
    if (hijacked) {
        call_unref(c); /* the request's */
    } else {
        finish(c);
    }
}

/* A hijacked call's response is written (or could not be): the connection
 * closes, which ends the watch read too. */
static void
on_write(void *arg)
{
    api_call *c = arg;
    pthread_mutex_lock(&c->mtx);
    nng_http_res_free(c->res);
    c->res = NULL;
    nng_http_conn_close(c->conn);
    c->conn = NULL;
    nng_http_req_free(c->req);
    c->req = NULL;
    pthread_mutex_unlock(&c->mtx);
    call_unref(c);
}

static void
on_watch(void *arg)
{
    api_call *c = arg;
    int rv = nng_aio_result(c->watch);

    pthread_mutex_lock(&c->mtx);
    c->watched = false;
    if (rv != 0 && !c->have_res) {
        /* The client hung up while the call waits: what it parked is
         * answered now, into the void. */
        listener_ext_close(c->lc);
    }
    /* A byte read (rv 0) belongs to a request pipelined behind this one:
     * the connection closes after the response anyway. */
    pthread_mutex_unlock(&c->mtx);
    call_unref(c);
}

/* ---- the server -----------------------------------------------------------
 */

static hp_code
tls_setup(api_server *s, const api_opts *o, hp_status *st)
{
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    hp_code code;
    int rv;

    if (o->tls_cert_file == NULL || o->tls_key_file == NULL) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "--api-tls needs --tls-cert and --tls-key");
    }
    if ((rv = nng_tls_config_alloc(&s->tls, NNG_TLS_MODE_SERVER)) != 0) {
        return nnghttp_status(st, rv, "--api-tls", o->addr);
    }
    if ((code = listener_read_pem(o->tls_cert_file, "certificate", false, &cert,
                                  &cert_len, st)) != HP_OK ||
        (code = listener_read_pem(o->tls_key_file, "key", true, &key, &key_len,
                                  st)) != HP_OK) {
        goto done;
    }
    /* mbedTLS 2.28 (inside NNG) speaks TLS 1.2; 1.3 where NNG has it. */
    if (nng_tls_config_version(s->tls, NNG_TLS_1_2, NNG_TLS_1_3) != 0 &&
        (rv = nng_tls_config_version(s->tls, NNG_TLS_1_2, NNG_TLS_1_2)) != 0) {
        code = nnghttp_status(st, rv, "--api-tls", o->addr);
        goto done;
    }
    if ((rv = nng_tls_config_own_cert(s->tls, cert, key, NULL)) != 0) {
        code =
            hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                          "--api-tls: NNG's TLS will not take --tls-cert "
                          "'%s' with --tls-key '%s': %s",
                          o->tls_cert_file, o->tls_key_file, nng_strerror(rv));
        goto done;
    }
    if (o->tls_client_ca_file != NULL &&
        ((rv = nng_tls_config_ca_file(s->tls, o->tls_client_ca_file)) != 0 ||
         (rv = nng_tls_config_auth_mode(s->tls, NNG_TLS_AUTH_MODE_REQUIRED)) !=
             0)) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "--api-tls: NNG's TLS will not take "
                             "--tls-client-ca '%s': %s",
                             o->tls_client_ca_file, nng_strerror(rv));
        goto done;
    }
    code = HP_OK;
done:
    if (key != NULL) {
        memset(key, 0, key_len);
        free(key);
    }
    free(cert);
    return code;
}

hp_code
api_start(const api_opts *o, api_server **out, hp_status *st)
{
    const char *flag = o->tls ? "--api-tls" : "--api";
    nng_http_handler *h = NULL;
    api_server *s = calloc(1, sizeof(*s));
    hp_code code;
    int rv;

    if (s == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    s->l = o->l;
    s->send_timeout_ms = o->send_timeout_ms;
    pthread_mutex_init(&s->mtx, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->max_body = o->max_body;
    s->max_body_total = o->max_body_total;
    s->body_timeout_ms = o->body_timeout_ms;
    s->decode_limit = o->decode_limit;
    if (o->callback != NULL) {
        s->callback_path = o->callback_path;
        s->callback_max_body = o->callback_max_body;
        s->callback = o->callback;
        s->callback_arg = o->callback_arg;
    }
    if (o->tls && (code = tls_setup(s, o, st)) != HP_OK) {
        goto fail;
    }
    if ((code = nnghttp_hold(flag, o->addr, s->tls, &s->srv, st)) != HP_OK) {
        goto fail;
    }
    /* One handler for every path and verb: a request outside the service
     * gets Connect's error, not NNG's HTML page. The body is read by
     * on_request, against the budget, not collected by NNG. */
    if ((rv = nng_http_handler_alloc(&h, "/", on_request)) != 0 ||
        (rv = nng_http_handler_set_method(h, NULL)) != 0 ||
        (rv = nng_http_handler_set_tree(h)) != 0 ||
        (rv = nng_http_handler_collect_body(h, false, 0)) != 0 ||
        (rv = nng_http_handler_set_data(h, s, NULL)) != 0 ||
        (rv = nng_http_server_add_handler(s->srv, h)) != 0) {
        nng_http_handler_free(h);
        code = nnghttp_status(st, rv, "cannot serve the API on", o->addr);
        goto release;
    }
    if ((rv = nng_http_server_start(s->srv)) != 0) {
        code = nnghttp_status(st, rv, flag, o->addr);
        goto release;
    }
    nnghttp_url(s->srv, o->tls, o->addr, s->url, sizeof(s->url));
    hp_log(HP_LOG_INFO, "listening", "url=%s paths=" SERVICE_PATH "*%s%s%s",
           s->url, s->callback_path != NULL ? "," : "",
           s->callback_path != NULL ? s->callback_path : "",
           s->callback_path != NULL ? "*" : "");
    *out = s;
    return HP_OK;
release:
    nng_http_server_release(s->srv);
fail:
    if (s->tls != NULL) {
        nng_tls_config_free(s->tls);
    }
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mtx);
    free(s);
    return code;
}

const char *
api_url(const api_server *s)
{
    return s->url;
}

bool
api_is_local(const api_server *s)
{
    nng_sockaddr sa;
    if (nng_http_server_get_addr(s->srv, &sa) != 0) {
        return false;
    }
    if (sa.s_family == NNG_AF_INET) {
        return (ntohl(sa.s_in.sa_addr) >> 24) == 127;
    }
    static const uint8_t loop6[16] = { [15] = 1 };
    return sa.s_family == NNG_AF_INET6 &&
           memcmp(sa.s_in6.sa_addr, loop6, sizeof(loop6)) == 0;
}

void
api_get_stats(api_server *s, api_stats *out)
{
    out->requests_total = atomic_load(&s->requests_total);
    out->refused_total = atomic_load(&s->refused_total);
    out->body_bytes = atomic_load(&s->body_bytes);
}

void
api_stop(api_server *s)
{
    if (s == NULL) {
        return;
    }
    nng_http_server_stop(s->srv);
    /* Calls whose connection they took over (long-polls) are not the
     * server's: each ends once its response is written or its write times
     * out (--send-timeout-ms). */
    pthread_mutex_lock(&s->mtx);
    while (s->live > 0) {
        pthread_cond_wait(&s->idle, &s->mtx);
    }
    pthread_mutex_unlock(&s->mtx);
    nng_http_server_release(s->srv);
    if (s->tls != NULL) {
        nng_tls_config_free(s->tls);
    }
    hp_log(HP_LOG_INFO, "listener closed", "url=%s", s->url);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mtx);
    free(s);
}
