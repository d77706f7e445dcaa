/*
 * svc_common.c - the conversions every handler shares between protobuf-c's
 * generated structs and the store's. The disk format never follows the
 * wire: handlers see only store structs on one side and proto structs on
 * the other. Temporaries live in the call's arena.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/svc.h"

void *
svc_alloc(call *c, size_t len, hp_status *st)
{
    void *p = hp_arena_alloc(&c->arena, len);
    if (p == NULL) {
        hp_code code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                     "out of memory");
        (void)code; /* the caller returns st->code */
    }
    return p;
}

size_t
svc_reply_budget(const call *c)
{
    size_t frame = c->ctx->max_frame;
    /* config.c keeps the frame above the room; an embedder's config that
     * does not still gets one message per reply rather than no bound. */
    return frame > SVC_REPLY_ROOM ? frame - SVC_REPLY_ROOM : 1;
}

size_t
svc_page_budget(const call *c)
{
    size_t reply = svc_reply_budget(c);
    return reply < SVC_PAGE_BYTES ? reply : SVC_PAGE_BYTES;
}

store_list_req
svc_list_req(call *c, const char *lane, const ProtobufCBinaryData *cursor,
             uint32_t limit, bool with_payload)
{
    store_list_req r = {
        .lane = hp_str_c(lane),
        .cursor = cursor->data,
        .cursor_len = cursor->len,
        .limit = limit != 0 ? limit : SVC_DEFAULT_LIMIT,
        .with_payload = with_payload,
        .max_bytes = svc_page_budget(c),
    };
    return r;
}

hp_code
svc_pack(call *c, const ProtobufCMessage *m, hp_status *st)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    c->resp = malloc(len > 0 ? len : 1);
    if (c->resp == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory for the response");
    }
    c->resp_len = protobuf_c_message_pack(m, c->resp);
    return HP_OK;
}

hp_code
svc_parse_id(const char *text, hp_id *out, hp_status *st)
{
    return hp_id_parse(text, strlen(text), out, st);
}

hp_code
svc_parse_token(const ProtobufCBinaryData *b, store_token *out, hp_status *st)
{
    if (b->len != STORE_TOKEN_LEN) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CLAIM_TOKEN,
                             "claim token must be %d bytes", STORE_TOKEN_LEN);
    }
    memcpy(out->b, b->data, STORE_TOKEN_LEN);
    return HP_OK;
}

hp_code
svc_drafts(call *c, Hopper__V1__Draft **in, size_t n, store_draft **out,
           hp_status *st)
{
    store_draft *d = svc_alloc(c, (n > 0 ? n : 1) * sizeof(*d), st);
    if (d == NULL) {
        return st->code;
    }
    for (size_t i = 0; i < n; i++) {
        const Hopper__V1__Draft *p = in[i];
        memset(&d[i], 0, sizeof(d[i]));
        d[i].lane = hp_str_c(p->lane);
        d[i].target = hp_str_c(p->target);
        d[i].payload = p->payload.data;
        d[i].payload_len = p->payload.len;
        d[i].dedupe_key = hp_str_c(p->dedupe_key);
        d[i].available_at_ms = p->available_at_ms;
        d[i].delay_ms = p->delay_ms;
        d[i].priority = p->priority;
        d[i].max_attempts = p->max_attempts;
        d[i].state_webhook_url = hp_str_c(p->state_webhook_url);
        if (p->n_headers > 0) {
            store_header *h =
                svc_alloc(c, p->n_headers * sizeof(store_header), st);
            if (h == NULL) {
                return st->code;
            }
            for (size_t k = 0; k < p->n_headers; k++) {
                h[k].key = hp_str_c(p->headers[k]->key);
                h[k].value = hp_str_c(p->headers[k]->value);
            }
            d[i].headers = h;
            d[i].n_headers = p->n_headers;
        }
    }
    *out = d;
    return HP_OK;
}

static char *
arena_cstr(call *c, hp_str s, hp_status *st)
{
    char *p = svc_alloc(c, s.len + 1, st);
    if (p != NULL) {
        if (s.len > 0) {
            memcpy(p, s.p, s.len);
        }
        p[s.len] = '\0';
    }
    return p;
}

hp_code
svc_enqueued(call *c, const store_enqueued *in, size_t n,
             Hopper__V1__Enqueued ***out, hp_status *st)
{
    Hopper__V1__Enqueued **list = svc_alloc(c, (n ? n : 1) * sizeof(*list), st);
    Hopper__V1__Enqueued *items =
        svc_alloc(c, (n ? n : 1) * sizeof(*items), st);
    char *ids = svc_alloc(c, (n ? n : 1) * (HP_ID_TEXT_LEN + 1), st);
    if (list == NULL || items == NULL || ids == NULL) {
        return st->code;
    }
    for (size_t i = 0; i < n; i++) {
        hopper__v1__enqueued__init(&items[i]);
        char *id = ids + i * (HP_ID_TEXT_LEN + 1);
        hp_id_format(&in[i].id, id);
        items[i].id = id;
        items[i].duplicate = in[i].duplicate;
        list[i] = &items[i];
    }
    *out = list;
    return HP_OK;
}

hp_code
svc_message(call *c, const store_message *in, bool with_token,
            Hopper__V1__Message *out, hp_status *st)
{
    hopper__v1__message__init(out);
    char *id = svc_alloc(c, HP_ID_TEXT_LEN + 1, st);
    if (id == NULL) {
        return st->code;
    }
    hp_id_format(&in->id, id);
    out->id = id;
    out->state = (Hopper__V1__State)in->state;
    out->priority = in->priority;
    out->attempts = in->attempts;
    out->max_attempts = in->max_attempts;
    out->created_at_ms = in->created_at_ms;
    out->available_at_ms = in->available_at_ms;
    out->lease_expires_at_ms = in->lease_expires_at_ms;
    out->finished_at_ms = in->finished_at_ms;
    if ((out->lane = arena_cstr(c, in->lane, st)) == NULL ||
        (out->target = arena_cstr(c, in->target, st)) == NULL ||
        (out->consumer = arena_cstr(c, in->consumer, st)) == NULL ||
        (out->last_error = arena_cstr(c, in->last_error, st)) == NULL ||
        (out->state_webhook_url = arena_cstr(c, in->state_webhook_url, st)) ==
            NULL) {
        return st->code;
    }
    if (with_token) {
        out->claim_token.data = (uint8_t *)(uintptr_t)in->token.b;
        out->claim_token.len = STORE_TOKEN_LEN;
    }
    out->payload.data = (uint8_t *)(uintptr_t)in->payload;
    out->payload.len = in->payload_len;
    out->result.data = (uint8_t *)(uintptr_t)in->result;
    out->result.len = in->result_len;
    if (in->n_headers > 0) {
        Hopper__V1__Header *h = svc_alloc(c, in->n_headers * sizeof(*h), st);
        Hopper__V1__Header **hl = svc_alloc(c, in->n_headers * sizeof(*hl), st);
        if (h == NULL || hl == NULL) {
            return st->code;
        }
        for (size_t i = 0; i < in->n_headers; i++) {
            hopper__v1__header__init(&h[i]);
            if ((h[i].key = arena_cstr(c, in->headers[i].key, st)) == NULL ||
                (h[i].value = arena_cstr(c, in->headers[i].value, st)) ==
                    NULL) {
                return st->code;
            }
            hl[i] = &h[i];
        }
        out->headers = hl;
        out->n_headers = in->n_headers;
    }
    return HP_OK;
}

hp_code
svc_messages(call *c, const store_message *in, size_t n, bool with_token,
             Hopper__V1__Message ***out, hp_status *st)
{
    Hopper__V1__Message *m = svc_alloc(c, (n ? n : 1) * sizeof(*m), st);
    Hopper__V1__Message **list = svc_alloc(c, (n ? n : 1) * sizeof(*list), st);
    if (m == NULL || list == NULL) {
        return st->code;
    }
    for (size_t i = 0; i < n; i++) {
        hp_code code = svc_message(c, &in[i], with_token, &m[i], st);
        if (code != HP_OK) {
            return code;
        }
        list[i] = &m[i];
    }
    *out = list;
    return HP_OK;
}

hp_code
svc_list_response(call *c, const store_list_res *res, hp_status *st)
{
    Hopper__V1__ListResponse r = HOPPER__V1__LIST_RESPONSE__INIT;
    hp_code code = svc_messages(c, res->msgs, res->n, false, &r.messages, st);
    if (code != HP_OK) {
        return code;
    }
    r.n_messages = res->n;
    r.next_cursor.data = (uint8_t *)(uintptr_t)res->next_cursor;
    r.next_cursor.len = res->next_cursor_len;
    return svc_pack(c, &r.base, st);
}

void
svc_settings_to_proto(const store_lane_settings *in,
                      Hopper__V1__LaneSettings *out)
{
    hopper__v1__lane_settings__init(out);
    out->max_attempts = in->max_attempts;
    out->backoff = (Hopper__V1__Backoff)in->backoff;
    out->backoff_base_ms = in->backoff_base_ms;
    out->backoff_cap_ms = in->backoff_cap_ms;
    out->backoff_factor_pct = in->backoff_factor_pct;
    out->jitter_pct = in->jitter_pct;
    out->retention_ms = in->retention_ms;
    out->dedupe_window_ms = in->dedupe_window_ms;
    out->paused = in->paused;
}

hp_code
svc_lane_stats(call *c, const store_lane_stats *in, Hopper__V1__LaneStats *out,
               hp_status *st)
{
    hopper__v1__lane_stats__init(out);
    Hopper__V1__LaneSettings *ls = svc_alloc(c, sizeof(*ls), st);
    char **targets =
        svc_alloc(c, (in->n_targets ? in->n_targets : 1) * sizeof(char *), st);
    if (ls == NULL || targets == NULL ||
        (out->lane = arena_cstr(c, in->lane, st)) == NULL) {
        return st->code;
    }
    svc_settings_to_proto(&in->settings, ls);
    out->settings = ls;
    out->pending = in->pending;
    out->delayed = in->delayed;
    out->claimed = in->claimed;
    out->delivered = in->delivered;
    out->dead = in->dead;
    out->oldest_pending_age_ms = in->oldest_pending_age_ms;
    out->enqueued_total = in->enqueued_total;
    out->dedupe_hits_total = in->dedupe_hits_total;
    out->claimed_total = in->claimed_total;
    out->acked_total = in->acked_total;
    out->nacked_total = in->nacked_total;
    out->dead_total = in->dead_total;
    out->expired_total = in->expired_total;
    out->replayed_total = in->replayed_total;
    out->purged_total = in->purged_total;
    for (size_t i = 0; i < in->n_targets; i++) {
        if ((targets[i] = arena_cstr(c, in->targets[i], st)) == NULL) {
            return st->code;
        }
    }
    out->targets = targets;
    out->n_targets = in->n_targets;
    out->targets_next_cursor.data =
        (uint8_t *)(uintptr_t)in->targets_next_cursor;
    out->targets_next_cursor.len = in->targets_next_cursor_len;
    return HP_OK;
}
