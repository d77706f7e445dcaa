/*
 * call.c - the end of a call: its one Response packed and sent, counted,
 * and its memory freed; and the compaction of a call that parks.
 */
#include "broker/call.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/names.h"
#include "hopper/v1/broker.pb-c.h"

/* A parked call's own copy of what it needs: the request's fields, the
 * scope and the request id, in one block. */
struct parked_claim {
    Hopper__V1__ClaimRequest req;
    char buf[]; /* lane, target, consumer, scope, request id */
};

struct parked_await {
    Hopper__V1__AwaitRequest req;
    char buf[]; /* id, scope, request id */
};

static char *
copy_str(char **at, const char *s, size_t len)
{
    char *p = *at;
    memcpy(p, s, len);
    p[len] = '\0';
    *at += len + 1;
    return p;
}

/* The Await's fields in a block of their own, with room for extra bytes
 * more at *at; NULL without memory. */
static void *
compact_await(const Hopper__V1__AwaitRequest *req, size_t extra, char **at,
              ProtobufCMessage **body)
{
    size_t id = strlen(req->id);
    struct parked_await *p = malloc(sizeof(*p) + id + 1 + extra);
    if (p == NULL) {
        return NULL;
    }
    *at = p->buf;
    hopper__v1__await_request__init(&p->req);
    p->req.id = copy_str(at, req->id, id);
    p->req.wait_ms = req->wait_ms;
    *body = &p->req.base;
    return p;
}

/* The same for a Claim's. */
static void *
compact_claim(const Hopper__V1__ClaimRequest *req, size_t extra, char **at,
              ProtobufCMessage **body)
{
    size_t lane = strlen(req->lane), target = strlen(req->target),
           consumer = strlen(req->consumer);
    struct parked_claim *p =
        malloc(sizeof(*p) + lane + target + consumer + 3 + extra);
    if (p == NULL) {
        return NULL;
    }
    *at = p->buf;
    hopper__v1__claim_request__init(&p->req);
    p->req.lane = copy_str(at, req->lane, lane);
    p->req.target = copy_str(at, req->target, target);
    p->req.consumer = copy_str(at, req->consumer, consumer);
    p->req.untargeted_only = req->untargeted_only;
    p->req.max = req->max;
    p->req.lease_ms = req->lease_ms;
    p->req.wait_ms = req->wait_ms;
    *body = &p->req.base;
    return p;
}

hp_code
call_compact(call *c, hp_status *st)
{
    if (c->parked != NULL) {
        return HP_OK; /* parked before */
    }
    size_t extra = c->scope.len + c->request_id.len + 2;
    ProtobufCMessage *body;
    char *at;
    void *p = c->body->descriptor == &hopper__v1__await_request__descriptor
                  ? compact_await((const Hopper__V1__AwaitRequest *)c->body,
                                  extra, &at, &body)
                  : compact_claim((const Hopper__V1__ClaimRequest *)c->body,
                                  extra, &at, &body);
    if (p == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    c->scope.p = copy_str(&at, c->scope.p, c->scope.len);
    c->request_id.p = copy_str(&at, c->request_id.p, c->request_id.len);
    /* Whatever else the client sent (unknown fields, a padded envelope)
     * goes now, not after the wait. */
    protobuf_c_message_free_unpacked(c->body, &c->budget.alloc);
    hopper__v1__request__free_unpacked(c->env, &c->budget.alloc);
    c->env = NULL;
    c->body = body;
    c->parked = p;
    return HP_OK;
}

static void
call_free(call *c)
{
    if (c->parked != NULL) {
        free(c->parked);
    } else if (c->body != NULL) {
        protobuf_c_message_free_unpacked(c->body, &c->budget.alloc);
    }
    if (c->env != NULL) {
        hopper__v1__request__free_unpacked(c->env, &c->budget.alloc);
    }
    hp_arena_release(&c->arena);
    free(c->resp);
    free(c->replay);
    free(c);
}

void
call_finish(call *c, hp_code code, const hp_status *st)
{
    Hopper__V1__Response resp = HOPPER__V1__RESPONSE__INIT;
    Hopper__V1__Status status = HOPPER__V1__STATUS__INIT;
    uint8_t small[256];

    char msg[sizeof(st->msg)];
    char rid[STORE_REQUEST_ID_MAX + 1];

    status.code = (uint32_t)code;
    if (code != HP_OK) {
        /* A message may quote what the client sent; protobuf's string
         * fields must be UTF-8, so it is cut before any byte that is not. */
        size_t n = hp_utf8_prefix(st->msg, strlen(st->msg));
        memcpy(msg, st->msg, n);
        msg[n] = '\0';
        status.message = msg;
        status.reason = (char *)(uintptr_t)(st->reason ? st->reason : "");
    } else if (c->resp != NULL) {
        resp.body.data = c->resp;
        resp.body.len = c->resp_len;
    }
    resp.status = &status;
    /* Only an id that passed its checks is echoed (c->request_id is set
     * once it has). */
    if (c->request_id.len > 0 && c->request_id.len < sizeof(rid)) {
        memcpy(rid, c->request_id.p, c->request_id.len);
        rid[c->request_id.len] = '\0';
        resp.request_id = rid;
    }
    size_t len = hopper__v1__response__get_packed_size(&resp);
    uint8_t *buf = len <= sizeof(small) ? small : malloc(len);
    if (buf == NULL) {
        hp_log(HP_LOG_ERROR, "cannot allocate a reply", "bytes=%zu", len);
    } else {
        hopper__v1__response__pack(&resp, buf);
    }
    /* Without memory for the reply an empty one still goes out: it frees
     * the request's slot, and the client reports a reply it cannot
     * decode rather than waiting for its timeout. */
    listener_reply(&c->rq, buf, buf != NULL ? len : 0);
    if (buf != small) {
        free(buf);
    }
    if (code != HP_OK && code != HP_NOT_FOUND &&
        code != HP_FAILED_PRECONDITION) {
        hp_log(HP_LOG_DEBUG, "request failed", "method=%s code=%s reason=%s",
               c->m != NULL ? c->m->name : "-", hp_code_name(code),
               st->reason ? st->reason : "");
    }
    metrics_request(c->ctx->metrics, c->m != NULL ? c->m->index : SIZE_MAX,
                    code, hp_mono_us() - c->arrival_us);
    call_free(c);
}

void
call_answer_parked(longpoll_claim *lc, hp_code code, const hp_status *st)
{
    call *c = HP_CONTAINER_OF(lc, call, lc);
    if (code == HP_OK) {
        free(c->resp);
        c->resp = NULL;
        c->resp_len = 0; /* an empty Claim- or AwaitResponse packs to none */
    }
    call_finish(c, code, st);
}
