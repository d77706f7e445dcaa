/*
 * svc_msg.c - the message RPCs: Enqueue, Claim, Ack, Nack, Extend, Get,
 * List. Each maps its request to one store call and packs the answer.
 *
 * Replies that carry messages are bounded: Claim and List stop at the
 * reply budget (svc_reply_budget) with at least one message; a repeated
 * Claim answers with the messages of the first, which fit the same
 * budget; Get returns one message, at most --max-payload plus 64 KiB of
 * headers, 64 KiB of result and 4 KiB of error text.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/svc.h"
#include "common/bytes.h"

/* A claim's or extend's lease when the request asks for 0 ms. hopper.h
 * cannot include this, so libhopper names it again, HOPPER_DEFAULT_LEASE_MS;
 * fault_clock_test checks that the two agree. */
#define DEFAULT_LEASE_MS 30000

hp_code
svc_enqueue(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__EnqueueRequest *req = (Hopper__V1__EnqueueRequest *)c->body;
    Hopper__V1__EnqueueResponse resp = HOPPER__V1__ENQUEUE_RESPONSE__INIT;
    store_draft *drafts;
    hp_code code;

    if ((code = svc_drafts(c, req->drafts, req->n_drafts, &drafts, st)) !=
        HP_OK) {
        return code;
    }
    store_enqueued *out =
        svc_alloc(c, (req->n_drafts ? req->n_drafts : 1) * sizeof(*out), st);
    if (out == NULL) {
        return st->code;
    }
    if ((code = store_enqueue(t, c->scope, drafts, req->n_drafts, now_ms, out,
                              st)) != HP_OK ||
        (code = svc_enqueued(c, out, req->n_drafts, &resp.results, st)) !=
            HP_OK) {
        return code;
    }
    resp.n_results = req->n_drafts;
    return svc_pack(c, &resp.base, st);
}

static hp_code
claim_response(call *c, const store_message *msgs, size_t n, hp_status *st)
{
    Hopper__V1__ClaimResponse resp = HOPPER__V1__CLAIM_RESPONSE__INIT;
    hp_code code = svc_messages(c, msgs, n, true, &resp.messages, st);
    if (code != HP_OK) {
        return code;
    }
    resp.n_messages = n;
    return svc_pack(c, &resp.base, st);
}

hp_code
svc_claim(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__ClaimRequest *req = (Hopper__V1__ClaimRequest *)c->body;
    store_claimed res;
    hp_code code;

    if (req->wait_ms > c->ctx->max_wait_ms) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_WAIT,
                             "wait_ms must be at most %u", c->ctx->max_wait_ms);
    }
    store_claim_req sreq = {
        .lane = hp_str_c(req->lane),
        .target = hp_str_c(req->target),
        .any_target = req->target[0] == '\0' && !req->untargeted_only,
        .max = req->max != 0 ? req->max : 1,
        .lease_ms = req->lease_ms != 0 ? req->lease_ms : DEFAULT_LEASE_MS,
        .consumer = hp_str_c(req->consumer),
        /* A reply a client can take: libhopper accepts 64 MiB, and the
         * frame limit is a configurable bound well under it. */
        .max_bytes = svc_reply_budget(c),
    };

    if ((code = store_claim(t, c->scope, &sreq, now_ms, &c->arena, &res, st)) !=
        HP_OK) {
        return code;
    }
    c->lc.claimed = (uint32_t)res.n;
    if (res.n == 0 && req->wait_ms > 0) {
        if (c->wait_until_mono_ms == 0) {
            c->wait_until_mono_ms = c->arrival_mono_ms + req->wait_ms;
        }
        if (hp_mono_ms() < c->wait_until_mono_ms) {
            c->park = true;
            return HP_OK;
        }
    }
    /* What a repeat of this request needs to answer the same: the ids and
     * tokens; the messages are read back if still held. */
    if (res.n > 0 && c->request_id.len > 0) {
        c->replay = malloc(res.n * (HP_ID_LEN + STORE_TOKEN_LEN));
        if (c->replay == NULL) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        }
        for (size_t i = 0; i < res.n; i++) {
            uint8_t *p = c->replay + i * (HP_ID_LEN + STORE_TOKEN_LEN);
            memcpy(p, res.msgs[i].id.b, HP_ID_LEN);
            memcpy(p + HP_ID_LEN, res.msgs[i].token.b, STORE_TOKEN_LEN);
        }
        c->replay_len = res.n * (HP_ID_LEN + STORE_TOKEN_LEN);
    }
    return claim_response(c, res.msgs, res.n, st);
}

hp_code
svc_claim_replay(call *c, store_txn *t, uint64_t now_ms, const void *data,
                 size_t len, hp_status *st)
{
    const size_t rec = HP_ID_LEN + STORE_TOKEN_LEN;
    size_t n = len / rec, k = 0;
    store_message *msgs = svc_alloc(c, (n ? n : 1) * sizeof(*msgs), st);
    if (msgs == NULL) {
        return st->code;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = (const uint8_t *)data + i * rec;
        hp_id id;
        store_token token;
        hp_status gst;
        memcpy(id.b, p, HP_ID_LEN);
        memcpy(token.b, p + HP_ID_LEN, STORE_TOKEN_LEN);
        hp_code code = store_get_held(t, c->scope, id, token, now_ms, &c->arena,
                                      &msgs[k], &gst);
        if (code == HP_OK) {
            k++;
        } else if (code != HP_NOT_FOUND && code != HP_FAILED_PRECONDITION) {
            *st = gst;
            return code;
        }
        /* Settled since: the repeat no longer hands it out. */
    }
    return claim_response(c, msgs, k, st);
}

/* AckRequest.per_item: one outcome per item; the follow-ups' ids only
 * when every item is OK (the store enqueued them only then). */
static hp_code
ack_each(call *c, store_txn *t, const store_ack_item *items,
         const store_draft *fu, store_enqueued *fout, uint64_t now_ms,
         hp_status *st)
{
    Hopper__V1__AckRequest *req = (Hopper__V1__AckRequest *)c->body;
    Hopper__V1__AckResponse resp = HOPPER__V1__ACK_RESPONSE__INIT;
    size_t n = req->n_items, one = n ? n : 1;
    hp_status *each = svc_alloc(c, one * sizeof(*each), st);
    Hopper__V1__AckItemResult *res = svc_alloc(c, one * sizeof(*res), st);
    Hopper__V1__AckItemResult **list = svc_alloc(c, one * sizeof(*list), st);
    bool all_ok = true;
    hp_code code;

    if (each == NULL || res == NULL || list == NULL) {
        return st->code;
    }
    if ((code = store_ack_each(t, c->scope, items, n, fu, req->n_followups,
                               now_ms, each, fout, st)) != HP_OK) {
        return code;
    }
    for (size_t i = 0; i < n; i++) {
        hopper__v1__ack_item_result__init(&res[i]);
        res[i].code = (uint32_t)each[i].code;
        if (each[i].code != HP_OK) {
            all_ok = false;
            res[i].reason = (char *)(uintptr_t)each[i].reason;
            res[i].message = each[i].msg;
        }
        list[i] = &res[i];
    }
    resp.items = list;
    resp.n_items = n;
    if (all_ok && (code = svc_enqueued(c, fout, req->n_followups,
                                       &resp.followups, st)) != HP_OK) {
        return code;
    }
    resp.n_followups = all_ok ? req->n_followups : 0;
    return svc_pack(c, &resp.base, st);
}

hp_code
svc_ack(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__AckRequest *req = (Hopper__V1__AckRequest *)c->body;
    Hopper__V1__AckResponse resp = HOPPER__V1__ACK_RESPONSE__INIT;
    store_draft *fu;
    hp_code code;
    size_t n = req->n_items;

    store_ack_item *items = svc_alloc(c, (n ? n : 1) * sizeof(*items), st);
    store_enqueued *fout = svc_alloc(
        c, (req->n_followups ? req->n_followups : 1) * sizeof(*fout), st);
    if (items == NULL || fout == NULL) {
        return st->code;
    }
    for (size_t i = 0; i < n; i++) {
        if ((code = svc_parse_id(req->items[i]->id, &items[i].id, st)) !=
                HP_OK ||
            (code = svc_parse_token(&req->items[i]->claim_token,
                                    &items[i].token, st)) != HP_OK) {
            return code;
        }
        items[i].result = req->items[i]->result.data;
        items[i].result_len = req->items[i]->result.len;
    }
    if ((code = svc_drafts(c, req->followups, req->n_followups, &fu, st)) !=
        HP_OK) {
        return code;
    }
    if (req->per_item) {
        return ack_each(c, t, items, fu, fout, now_ms, st);
    }
    if ((code = store_ack(t, c->scope, items, n, fu, req->n_followups, now_ms,
                          fout, st)) != HP_OK ||
        (code = svc_enqueued(c, fout, req->n_followups, &resp.followups, st)) !=
            HP_OK) {
        return code;
    }
    resp.n_followups = req->n_followups;
    return svc_pack(c, &resp.base, st);
}

hp_code
svc_nack(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__NackRequest *req = (Hopper__V1__NackRequest *)c->body;
    Hopper__V1__NackResponse resp = HOPPER__V1__NACK_RESPONSE__INIT;
    store_nack_req sreq = { .error = hp_str_c(req->error),
                            .n_followups = req->n_followups };
    store_draft *fu;
    store_nack_res res;
    hp_code code;

    if (req->retry_at_ms != 0 && req->retry_in_ms != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_DELAY,
                             "give retry_at_ms or retry_in_ms, not both");
    }
    if (req->keep_attempt && req->dead_letter) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_NACK,
                             "give keep_attempt or dead_letter, not both");
    }
    sreq.mode = req->dead_letter    ? STORE_NACK_DEAD
                : req->keep_attempt ? STORE_NACK_KEEP_ATTEMPT
                                    : STORE_NACK_RETRY;
    sreq.retry_at_ms =
        req->retry_in_ms != 0 ? now_ms + req->retry_in_ms : req->retry_at_ms;
    store_enqueued *fout = svc_alloc(
        c, (req->n_followups ? req->n_followups : 1) * sizeof(*fout), st);
    if (fout == NULL) {
        return st->code;
    }
    if ((code = svc_parse_id(req->id, &sreq.id, st)) != HP_OK ||
        (code = svc_parse_token(&req->claim_token, &sreq.token, st)) != HP_OK ||
        (code = svc_drafts(c, req->followups, req->n_followups, &fu, st)) !=
            HP_OK) {
        return code;
    }
    sreq.followups = fu;
    if ((code = store_nack(t, c->scope, &sreq, now_ms, fout, &res, st)) !=
            HP_OK ||
        (code = svc_enqueued(c, fout, req->n_followups, &resp.followups, st)) !=
            HP_OK) {
        return code;
    }
    resp.n_followups = req->n_followups;
    resp.dead = res.dead;
    resp.retry_at_ms = res.retry_at_ms;
    return svc_pack(c, &resp.base, st);
}

hp_code
svc_extend(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__ExtendRequest *req = (Hopper__V1__ExtendRequest *)c->body;
    Hopper__V1__ExtendResponse resp = HOPPER__V1__EXTEND_RESPONSE__INIT;
    hp_id id;
    store_token token;
    hp_code code;

    if ((code = svc_parse_id(req->id, &id, st)) != HP_OK ||
        (code = svc_parse_token(&req->claim_token, &token, st)) != HP_OK ||
        (code =
             store_extend(t, c->scope, id, token,
                          req->lease_ms != 0 ? req->lease_ms : DEFAULT_LEASE_MS,
                          now_ms, &resp.lease_expires_at_ms, st)) != HP_OK) {
        return code;
    }
    return svc_pack(c, &resp.base, st);
}

hp_code
svc_get(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__GetRequest *req = (Hopper__V1__GetRequest *)c->body;
    Hopper__V1__GetResponse resp = HOPPER__V1__GET_RESPONSE__INIT;
    Hopper__V1__Message m;
    store_message sm;
    hp_id id;
    hp_code code;

    if ((code = svc_parse_id(req->id, &id, st)) != HP_OK ||
        (code = store_get(t, c->scope, id, now_ms, &c->arena, &sm, st)) !=
            HP_OK ||
        (code = svc_message(c, &sm, false, &m, st)) != HP_OK) {
        return code;
    }
    resp.message = &m;
    return svc_pack(c, &resp.base, st);
}

hp_code
svc_list(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__ListRequest *req = (Hopper__V1__ListRequest *)c->body;
    store_list_req sreq =
        svc_list_req(c, req->lane, &req->cursor, req->limit, req->with_payload);
    store_list_res res;
    hp_code code;

    if ((unsigned)req->state > STORE_STATE_DEAD) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_STATE,
                             "unknown state %d", (int)req->state);
    }
    sreq.state = (store_state)req->state;
    if ((code = store_list(t, c->scope, &sreq, now_ms, &c->arena, &res, st)) !=
        HP_OK) {
        return code;
    }
    return svc_list_response(c, &res, st);
}
