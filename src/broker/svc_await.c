/*
 * svc_await.c - Await: the message once it is settled (delivered with its
 * result, or dead with its last error), waiting for that if asked to.
 *
 * Await goes through the commit queue although it writes nothing: the
 * writer is the only thread that settles messages, so an Await applied
 * there sees every settle before it or none, and one that parks is in the
 * table before the next group can settle its message (awaits.c). An
 * Await that found its message settled answers once the commit it read is
 * durable, like every write; a group of Awaits alone writes nothing and
 * costs no commit.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

/* A parked Await's own copy of what it needs, in one block. */
typedef struct parked_await {
    Hopper__V1__AwaitRequest req;
    char buf[]; /* id, scope, request id */
} parked_await;

hp_code
svc_await(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__AwaitRequest *req = (Hopper__V1__AwaitRequest *)c->body;
    Hopper__V1__AwaitResponse resp = HOPPER__V1__AWAIT_RESPONSE__INIT;
    Hopper__V1__Message m;
    store_message sm;
    hp_id id;
    hp_code code;

    if (req->wait_ms > c->b->cfg.max_wait_ms) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, "BAD_WAIT",
                             "wait_ms must be at most %u",
                             c->b->cfg.max_wait_ms);
    }
    if ((code = svc_parse_id(req->id, &id, st)) != HP_OK ||
        (code = store_get(t, c->scope, id, now_ms, &c->arena, &sm, st)) !=
            HP_OK) {
        return code;
    }
    if (sm.state != STORE_STATE_DELIVERED && sm.state != STORE_STATE_DEAD) {
        if (req->wait_ms > 0) {
            if (c->wait_until_mono_ms == 0) {
                c->wait_until_mono_ms = c->arrival_mono_ms + req->wait_ms;
            }
            if (hp_mono_ms() < c->wait_until_mono_ms) {
                c->park = true;
                return HP_OK;
            }
        }
        return HP_OK; /* no body: the empty AwaitResponse */
    }
    if ((code = svc_message(c, &sm, false, &m, st)) != HP_OK) {
        return code;
    }
    /* The awaiting side has the payload it sent; Get gives it to whoever
     * needs it again. */
    m.payload.data = NULL;
    m.payload.len = 0;
    m.headers = NULL;
    m.n_headers = 0;
    resp.message = &m;
    return svc_pack(c, &resp.base, st);
}

hp_code
svc_await_compact(call *c, hp_status *st)
{
    const Hopper__V1__AwaitRequest *req =
        (const Hopper__V1__AwaitRequest *)c->body;
    size_t id = strlen(req->id);
    parked_await *p =
        malloc(sizeof(*p) + id + c->scope.len + c->request_id.len + 3);
    if (p == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    char *at = p->buf;
    hopper__v1__await_request__init(&p->req);
    p->req.id = dispatch_copy_str(&at, req->id, id);
    p->req.wait_ms = req->wait_ms;
    c->scope.p = dispatch_copy_str(&at, c->scope.p, c->scope.len);
    c->request_id.p =
        dispatch_copy_str(&at, c->request_id.p, c->request_id.len);
    protobuf_c_message_free_unpacked(c->body, &c->budget.alloc);
    hopper__v1__request__free_unpacked(c->env, &c->budget.alloc);
    c->env = NULL;
    c->body = &p->req.base;
    c->parked = p;
    return HP_OK;
}

/* Writer thread, after the commit of the group in which c found its
 * message unsettled and may wait. */
void
svc_await_park(call *c)
{
    Hopper__V1__AwaitRequest *req;
    hp_status st;
    hp_id id;

    if (c->parked == NULL && svc_await_compact(c, &st) != HP_OK) {
        dispatch_finish(c, st.code, &st);
        return;
    }
    req = (Hopper__V1__AwaitRequest *)c->body;
    hp_code parsed = svc_parse_id(req->id, &id, &st);
    HP_ASSERT(parsed == HP_OK); /* the handler did, before asking to park */
    c->aw.op = &c->op;
    c->aw.rq = &c->rq;
    commitq_op *again =
        awaits_park(c->b->awaits, &c->aw, c->scope, &id, c->wait_until_mono_ms);
    if (again != NULL && dispatch_resubmit(c, &st) != HP_OK) {
        dispatch_finish(c, st.code, &st);
    }
}

/* The awaits' answer hook (awaits_answer_fn). */
void
svc_await_answer(await_wait *aw, hp_code code, const hp_status *st)
{
    call *c = (call *)((char *)aw - offsetof(call, aw));
    free(c->resp);
    c->resp = NULL;
    c->resp_len = 0; /* an empty AwaitResponse packs to no bytes */
    dispatch_finish(c, code, st);
}
