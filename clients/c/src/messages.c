/*
 * messages.c - the calls on messages: Enqueue, Claim, Ack, Nack, Extend,
 * Get, List and DeadList. Each builds the request over borrowed caller
 * memory, calls hc_invoke() and deep-copies the answer into the public
 * structs, so every protobuf-c allocation is freed before returning.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

int
hopper_enqueue(hopper_client *c, const hopper_draft *d, size_t n,
               hopper_enqueued *out, hopper_status *st)
{
    Hopper__V1__EnqueueRequest req = HOPPER__V1__ENQUEUE_REQUEST__INIT;
    Hopper__V1__EnqueueResponse *resp;
    ProtobufCMessage *raw;
    hc_drafts ds;
    int code;

    if (c == NULL || d == NULL || n == 0) {
        return hc_bad_arg(st, "enqueue needs a client and 1 or more drafts");
    }
    if ((code = hc_drafts_build(d, n, &ds, st)) != HOPPER_OK) {
        return code;
    }
    req.n_drafts = ds.n;
    req.drafts = ds.ptrs;
    code = hc_invoke(c, "Enqueue", &req.base, 0, &raw, st);
    hc_drafts_release(&ds);
    if (code != HOPPER_OK) {
        return code;
    }
    resp = (Hopper__V1__EnqueueResponse *)raw;
    code = hc_enqueued_copy(resp->results, resp->n_results, n, out, st);
    protobuf_c_message_free_unpacked(raw, NULL);
    return code;
}

typedef struct enqueue_async {
    hopper_enqueue_cb cb;
    void *arg;
    size_t n;
} enqueue_async;

static void
enqueue_done(void *arg, int code, const ProtobufCMessage *raw,
             const hopper_status *st)
{
    enqueue_async *e = arg;
    hopper_enqueued one, *out = NULL;
    hopper_status mine;

    if (code == HOPPER_OK) {
        const Hopper__V1__EnqueueResponse *resp =
            (const Hopper__V1__EnqueueResponse *)raw;
        out = e->n == 1 ? &one : calloc(e->n, sizeof(*out));
        memset(&mine, 0, sizeof(mine));
        code = out == NULL ? hc_no_memory(&mine)
                           : hc_enqueued_copy(resp->results, resp->n_results,
                                              e->n, out, &mine);
        st = &mine;
    }
    e->cb(e->arg, code, code == HOPPER_OK ? out : NULL,
          code == HOPPER_OK ? e->n : 0, st);
    if (out != &one) {
        free(out);
    }
    free(e);
}

int
hopper_enqueue_async(hopper_client *c, const hopper_draft *d, size_t n,
                     hopper_enqueue_cb cb, void *arg, hopper_status *st)
{
    Hopper__V1__EnqueueRequest req = HOPPER__V1__ENQUEUE_REQUEST__INIT;
    enqueue_async *e;
    hc_drafts ds;
    int code;

    if (c == NULL || d == NULL || n == 0 || cb == NULL) {
        return hc_bad_arg(st, "enqueue needs a client, 1 or more drafts and "
                              "a callback");
    }
    if ((code = hc_drafts_build(d, n, &ds, st)) != HOPPER_OK) {
        return code;
    }
    if ((e = malloc(sizeof(*e))) == NULL) {
        hc_drafts_release(&ds);
        return hc_no_memory(st);
    }
    *e = (enqueue_async){ cb, arg, n };
    req.n_drafts = ds.n;
    req.drafts = ds.ptrs;
    code = hc_invoke_async(c, "Enqueue", &req.base, enqueue_done, e, st);
    hc_drafts_release(&ds);
    if (code != HOPPER_OK) {
        free(e);
    }
    return code;
}

void
hopper_batch_free(hopper_batch *b)
{
    if (b == NULL) {
        return;
    }
    hc_messages_free(b->msgs, b->n);
    free(b);
}

int
hopper_claim(hopper_client *c, const char *lane, const hopper_claim_opts *o,
             hopper_batch **out, hopper_status *st)
{
    Hopper__V1__ClaimRequest req = HOPPER__V1__CLAIM_REQUEST__INIT;
    static const hopper_claim_opts defaults;
    Hopper__V1__ClaimResponse *resp;
    ProtobufCMessage *raw;
    hopper_batch *b;
    int code;

    if (out == NULL) {
        return hc_bad_arg(st, "out must not be NULL");
    }
    *out = NULL;
    if (c == NULL || lane == NULL) {
        return hc_bad_arg(st, "claim needs a client and a lane");
    }
    if (o == NULL) {
        o = &defaults;
    }
    req.lane = hc_str(lane);
    req.target = hc_str(o->target);
    req.untargeted_only = o->untargeted_only;
    req.max = o->max;
    req.lease_ms = o->lease_ms;
    req.consumer = hc_str(o->consumer);
    req.wait_ms = o->wait_ms;
    /* A long-poll may legitimately take wait_ms before any reply. */
    if ((code = hc_invoke(c, "Claim", &req.base, o->wait_ms, &raw, st)) !=
        HOPPER_OK) {
        return code;
    }
    resp = (Hopper__V1__ClaimResponse *)raw;
    if ((b = calloc(1, sizeof(*b))) == NULL) {
        code = hc_no_memory(st);
    } else if ((code = hc_messages_copy(resp->messages, resp->n_messages,
                                        &b->msgs, st)) != HOPPER_OK) {
        free(b);
    } else {
        b->n = resp->n_messages;
        *out = b;
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return code;
}

/* The AckItems over the caller's items; storage freed by the caller. */
static int
build_ack_items(const hopper_ack_item *items, size_t n,
                Hopper__V1__AckItem **pi, Hopper__V1__AckItem ***pp,
                hopper_status *st)
{
    Hopper__V1__AckItem *it = calloc(n, sizeof(*it));
    Hopper__V1__AckItem **ptrs = calloc(n, sizeof(*ptrs));

    *pi = it;
    *pp = ptrs;
    if (it == NULL || ptrs == NULL) {
        return hc_no_memory(st);
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i].id == NULL ||
            (items[i].result == NULL && items[i].result_len != 0)) {
            return hc_bad_arg(st, "ack item without id or result data");
        }
        it[i] = (Hopper__V1__AckItem)HOPPER__V1__ACK_ITEM__INIT;
        it[i].id = hc_str(items[i].id);
        it[i].claim_token.data = (uint8_t *)(uintptr_t)items[i].token.b;
        it[i].claim_token.len = sizeof(items[i].token.b);
        it[i].result.data = (uint8_t *)(uintptr_t)items[i].result;
        it[i].result.len = items[i].result_len;
        ptrs[i] = &it[i];
    }
    return HOPPER_OK;
}

/* One outcome of a per-item ack into *out. */
static void
item_status(const Hopper__V1__AckItemResult *r, hopper_status *out)
{
    memset(out, 0, sizeof(*out));
    out->code =
        r->code > HOPPER_UNAUTHENTICATED ? HOPPER_UNKNOWN : (int)r->code;
    if (out->code != HOPPER_OK) {
        snprintf(out->reason, sizeof(out->reason), "%s", r->reason);
        snprintf(out->message, sizeof(out->message), "%s", r->message);
    }
}

/* Both forms: item_st NULL is all or nothing. */
static int
ack_call(hopper_client *c, const hopper_ack_item *items, size_t n,
         const hopper_draft *followups, size_t n_followups,
         hopper_status *item_st, hopper_enqueued *followups_out,
         bool *followups_done, hopper_status *st)
{
    Hopper__V1__AckRequest req = HOPPER__V1__ACK_REQUEST__INIT;
    Hopper__V1__AckResponse *resp;
    Hopper__V1__AckItem **ptrs;
    Hopper__V1__AckItem *it;
    ProtobufCMessage *raw;
    hc_drafts ds;
    int code;

    if (c == NULL || items == NULL || n == 0) {
        return hc_bad_arg(st, "ack needs a client and 1 or more items");
    }
    if ((code = hc_drafts_build(followups, n_followups, &ds, st)) !=
        HOPPER_OK) {
        return code;
    }
    if ((code = build_ack_items(items, n, &it, &ptrs, st)) != HOPPER_OK) {
        goto free_items;
    }
    req.n_items = n;
    req.items = ptrs;
    req.n_followups = ds.n;
    req.followups = ds.n != 0 ? ds.ptrs : NULL;
    req.per_item = item_st != NULL;
    if ((code = hc_invoke(c, "Ack", &req.base, 0, &raw, st)) != HOPPER_OK) {
        goto free_items;
    }
    resp = (Hopper__V1__AckResponse *)raw;
    bool all_ok = true;
    if (item_st != NULL) {
        if (resp->n_items != n) {
            code = hc_bad_response(st, "per-item ack without an outcome "
                                       "per item");
            goto free_resp;
        }
        for (size_t i = 0; i < n; i++) {
            item_status(resp->items[i], &item_st[i]);
            all_ok = all_ok && item_st[i].code == HOPPER_OK;
        }
    }
    if (followups_done != NULL) {
        *followups_done = all_ok && n_followups > 0;
    }
    if (all_ok) {
        code = hc_enqueued_copy(resp->followups, resp->n_followups, n_followups,
                                followups_out, st);
    }
free_resp:
    protobuf_c_message_free_unpacked(raw, NULL);
free_items:
    free(it);
    free(ptrs);
    hc_drafts_release(&ds);
    return code;
}

int
hopper_ack(hopper_client *c, const hopper_ack_item *items, size_t n,
           const hopper_draft *followups, size_t n_followups,
           hopper_enqueued *followups_out, hopper_status *st)
{
    return ack_call(c, items, n, followups, n_followups, NULL, followups_out,
                    NULL, st);
}

int
hopper_ack_each(hopper_client *c, const hopper_ack_item *items, size_t n,
                const hopper_draft *followups, size_t n_followups,
                hopper_status *item_st, hopper_enqueued *followups_out,
                bool *followups_done, hopper_status *st)
{
    if (followups_done != NULL) {
        *followups_done = false;
    }
    if (item_st == NULL) {
        return hc_bad_arg(st, "per-item ack needs room for the outcomes");
    }
    return ack_call(c, items, n, followups, n_followups, item_st, followups_out,
                    followups_done, st);
}

int
hopper_ack1(hopper_client *c, const char *id, const hopper_token *token,
            hopper_status *st)
{
    hopper_ack_item item;

    if (token == NULL) {
        return hc_bad_arg(st, "ack needs a claim token");
    }
    memset(&item, 0, sizeof(item));
    item.id = id;
    item.token = *token;
    return hopper_ack(c, &item, 1, NULL, 0, NULL, st);
}

static int
nack_reply(ProtobufCMessage *raw, const hopper_nack_opts *o,
           hopper_nack_result *res, hopper_status *st)
{
    Hopper__V1__NackResponse *resp = (Hopper__V1__NackResponse *)raw;
    int code;

    code = hc_enqueued_copy(resp->followups, resp->n_followups, o->n_followups,
                            o->followups_out, st);
    if (code == HOPPER_OK && res != NULL) {
        res->dead = resp->dead != 0;
        res->retry_at_ms = resp->retry_at_ms;
    }
    return code;
}

int
hopper_nack(hopper_client *c, const char *id, const hopper_token *token,
            const hopper_nack_opts *o, hopper_nack_result *res,
            hopper_status *st)
{
    Hopper__V1__NackRequest req = HOPPER__V1__NACK_REQUEST__INIT;
    static const hopper_nack_opts defaults;
    ProtobufCMessage *raw;
    hc_drafts ds;
    int code;

    if (c == NULL || id == NULL || token == NULL) {
        return hc_bad_arg(st, "nack needs a client, an id and a token");
    }
    if (o == NULL) {
        o = &defaults;
    }
    if ((code = hc_drafts_build(o->followups, o->n_followups, &ds, st)) !=
        HOPPER_OK) {
        return code;
    }
    req.id = hc_str(id);
    req.claim_token.data = (uint8_t *)(uintptr_t)token->b;
    req.claim_token.len = sizeof(token->b);
    req.error = hc_str(o->error);
    req.retry_at_ms = o->retry_at_ms;
    req.retry_in_ms = o->retry_in_ms;
    req.keep_attempt = o->keep_attempt;
    req.dead_letter = o->dead_letter;
    req.n_followups = ds.n;
    req.followups = ds.n != 0 ? ds.ptrs : NULL;
    code = hc_invoke(c, "Nack", &req.base, 0, &raw, st);
    hc_drafts_release(&ds);
    if (code != HOPPER_OK) {
        return code;
    }
    code = nack_reply(raw, o, res, st);
    protobuf_c_message_free_unpacked(raw, NULL);
    return code;
}

int
hopper_extend(hopper_client *c, const char *id, const hopper_token *token,
              uint32_t lease_ms, uint64_t *expires_at_ms, hopper_status *st)
{
    Hopper__V1__ExtendRequest req = HOPPER__V1__EXTEND_REQUEST__INIT;
    ProtobufCMessage *raw;
    int code;

    if (c == NULL || id == NULL || token == NULL) {
        return hc_bad_arg(st, "extend needs a client, an id and a token");
    }
    req.id = hc_str(id);
    req.claim_token.data = (uint8_t *)(uintptr_t)token->b;
    req.claim_token.len = sizeof(token->b);
    req.lease_ms = lease_ms;
    if ((code = hc_invoke(c, "Extend", &req.base, 0, &raw, st)) != HOPPER_OK) {
        return code;
    }
    if (expires_at_ms != NULL) {
        *expires_at_ms =
            ((Hopper__V1__ExtendResponse *)raw)->lease_expires_at_ms;
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return HOPPER_OK;
}

void
hopper_message_free(hopper_message *m)
{
    if (m == NULL) {
        return;
    }
    hc_message_release(m);
    free(m);
}

/* A reply's message as a hopper_message of its own in *out. */
static int
message_out(const Hopper__V1__Message *src, hopper_message **out,
            hopper_status *st)
{
    hopper_message *m = malloc(sizeof(*m));
    int code;
    if (m == NULL) {
        return hc_no_memory(st);
    }
    if ((code = hc_message_copy(src, m, st)) != HOPPER_OK) {
        free(m);
        return code;
    }
    *out = m;
    return HOPPER_OK;
}

int
hopper_get(hopper_client *c, const char *id, hopper_message **out,
           hopper_status *st)
{
    Hopper__V1__GetRequest req = HOPPER__V1__GET_REQUEST__INIT;
    Hopper__V1__GetResponse *resp;
    ProtobufCMessage *raw;
    int code;

    if (out == NULL) {
        return hc_bad_arg(st, "out must not be NULL");
    }
    *out = NULL;
    if (c == NULL || id == NULL) {
        return hc_bad_arg(st, "get needs a client and an id");
    }
    req.id = hc_str(id);
    if ((code = hc_invoke(c, "Get", &req.base, 0, &raw, st)) != HOPPER_OK) {
        return code;
    }
    resp = (Hopper__V1__GetResponse *)raw;
    code = resp->message == NULL
               ? hc_bad_response(st, "Get answered OK without a message")
               : message_out(resp->message, out, st);
    protobuf_c_message_free_unpacked(raw, NULL);
    return code;
}

int
hopper_await(hopper_client *c, const char *id, uint32_t wait_ms,
             hopper_message **out, hopper_status *st)
{
    Hopper__V1__AwaitRequest req = HOPPER__V1__AWAIT_REQUEST__INIT;
    Hopper__V1__AwaitResponse *resp;
    ProtobufCMessage *raw;
    int code;

    if (out == NULL) {
        return hc_bad_arg(st, "out must not be NULL");
    }
    *out = NULL;
    if (c == NULL || id == NULL) {
        return hc_bad_arg(st, "await needs a client and an id");
    }
    req.id = hc_str(id);
    req.wait_ms = wait_ms;
    /* A long-poll may legitimately take wait_ms before any reply. */
    if ((code = hc_invoke(c, "Await", &req.base, wait_ms, &raw, st)) !=
        HOPPER_OK) {
        return code;
    }
    resp = (Hopper__V1__AwaitResponse *)raw;
    if (resp->message != NULL) {
        code = message_out(resp->message, out, st);
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return code;
}

void
hopper_page_free(hopper_page *p)
{
    if (p == NULL) {
        return;
    }
    hc_messages_free(p->msgs, p->n);
    free(p->next_cursor);
    free(p);
}

/* Turns a ListResponse (from List or DeadList) into a page. */
static int
page_from(ProtobufCMessage *raw, hopper_page **out, hopper_status *st)
{
    Hopper__V1__ListResponse *resp = (Hopper__V1__ListResponse *)raw;
    hopper_page *p = calloc(1, sizeof(*p));
    int code;

    if (p == NULL) {
        return hc_no_memory(st);
    }
    if ((code = hc_messages_copy(resp->messages, resp->n_messages, &p->msgs,
                                 st)) != HOPPER_OK) {
        free(p);
        return code;
    }
    p->n = resp->n_messages;
    if ((code = hc_bytes_copy(resp->next_cursor, &p->next_cursor,
                              &p->next_cursor_len, st)) != HOPPER_OK) {
        hopper_page_free(p);
        return code;
    }
    *out = p;
    return HOPPER_OK;
}

static int
list_call(hopper_client *c, const char *rpc, ProtobufCMessage *req,
          hopper_page **out, hopper_status *st)
{
    ProtobufCMessage *raw;
    int code;

    if ((code = hc_invoke(c, rpc, req, 0, &raw, st)) != HOPPER_OK) {
        return code;
    }
    code = page_from(raw, out, st);
    protobuf_c_message_free_unpacked(raw, NULL);
    return code;
}

int
hopper_list(hopper_client *c, const char *lane, int state, const void *cursor,
            size_t cursor_len, uint32_t limit, bool with_payload,
            hopper_page **out, hopper_status *st)
{
    Hopper__V1__ListRequest req = HOPPER__V1__LIST_REQUEST__INIT;

    if (out == NULL) {
        return hc_bad_arg(st, "out must not be NULL");
    }
    *out = NULL;
    if (c == NULL || lane == NULL || (cursor == NULL && cursor_len != 0)) {
        return hc_bad_arg(st, "list needs a client and a lane");
    }
    if (state < HOPPER_STATE_ANY || state > HOPPER_STATE_DEAD) {
        return hc_bad_arg(st, "state must be HOPPER_STATE_ANY..DEAD");
    }
    req.lane = hc_str(lane);
    req.state = (Hopper__V1__State)state;
    req.cursor.data = (uint8_t *)(uintptr_t)cursor;
    req.cursor.len = cursor_len;
    req.limit = limit;
    req.with_payload = with_payload;
    return list_call(c, "List", &req.base, out, st);
}

int
hopper_dead_list(hopper_client *c, const char *lane, const void *cursor,
                 size_t cursor_len, uint32_t limit, bool with_payload,
                 hopper_page **out, hopper_status *st)
{
    Hopper__V1__DeadListRequest req = HOPPER__V1__DEAD_LIST_REQUEST__INIT;

    if (out == NULL) {
        return hc_bad_arg(st, "out must not be NULL");
    }
    *out = NULL;
    if (c == NULL || lane == NULL || (cursor == NULL && cursor_len != 0)) {
        return hc_bad_arg(st, "dead list needs a client and a lane");
    }
    req.lane = hc_str(lane);
    req.cursor.data = (uint8_t *)(uintptr_t)cursor;
    req.cursor.len = cursor_len;
    req.limit = limit;
    req.with_payload = with_payload;
    return list_call(c, "DeadList", &req.base, out, st);
}
