/*
 * svc_await.c - Await: the message once it is settled (delivered with its
 * result, or dead with its last error), waiting for that if asked to.
 *
 * Await goes through the commit queue although it writes nothing: the
 * writer is the only thread that settles messages, so an Await applied
 * there sees every settle before it or none, and one that parks is in the
 * long-poll part's table before the next group can settle its message
 * (longpoll.c). An Await that found its message settled answers once the
 * commit it read is durable, like every write; a group of Awaits alone
 * writes nothing and costs no commit.
 */
#include "broker/svc.h"

hp_code
svc_await(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__AwaitRequest *req = (Hopper__V1__AwaitRequest *)c->body;
    Hopper__V1__AwaitResponse resp = HOPPER__V1__AWAIT_RESPONSE__INIT;
    Hopper__V1__Message m;
    store_message sm;
    hp_id id;
    hp_code code;

    if (req->wait_ms > c->ctx->max_wait_ms) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_WAIT,
                             "wait_ms must be at most %u", c->ctx->max_wait_ms);
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
                c->park = true; /* dispatch parks it after the commit */
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
