/*
 * convert.c - between the public plain structs of hopper.h and protobuf-c's
 * generated ones. Outgoing messages borrow the caller's strings and bytes
 * (protobuf-c only reads them while packing); incoming ones are deep-copied
 * so the caller never holds memory owned by protobuf-c.
 */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

char *
hc_str(const char *s)
{
    return (char *)(s != NULL ? s : "");
}

static size_t
count_headers(const hopper_draft *d, size_t n)
{
    size_t total = 0;

    for (size_t i = 0; i < n; i++) {
        total += d[i].n_headers;
    }
    return total;
}

static void
draft_to_pb(const hopper_draft *d, Hopper__V1__Draft *out,
            Hopper__V1__Header *hdrs, Hopper__V1__Header **hdr_ptrs)
{
    *out = (Hopper__V1__Draft)HOPPER__V1__DRAFT__INIT;
    out->lane = hc_str(d->lane);
    out->target = hc_str(d->target);
    out->payload.data = (uint8_t *)(uintptr_t)d->payload;
    out->payload.len = d->payload_len;
    out->dedupe_key = hc_str(d->dedupe_key);
    out->available_at_ms = d->available_at_ms;
    out->delay_ms = d->delay_ms;
    out->priority = d->priority;
    out->max_attempts = d->max_attempts;
    out->state_webhook_url = hc_str(d->state_webhook_url);
    out->n_headers = d->n_headers;
    out->headers = d->n_headers != 0 ? hdr_ptrs : NULL;
    for (size_t j = 0; j < d->n_headers; j++) {
        hdrs[j] = (Hopper__V1__Header)HOPPER__V1__HEADER__INIT;
        hdrs[j].key = hc_str(d->headers[j].key);
        hdrs[j].value = hc_str(d->headers[j].value);
        hdr_ptrs[j] = &hdrs[j];
    }
}

static int
check_draft(const hopper_draft *d, size_t i, hopper_status *st)
{
    if (d->lane == NULL) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_ARGUMENT,
                       "draft %zu has no lane", i);
    }
    if ((d->payload == NULL && d->payload_len != 0) ||
        (d->headers == NULL && d->n_headers != 0)) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_ARGUMENT,
                       "draft %zu has a length without data", i);
    }
    return HOPPER_OK;
}

int
hc_drafts_build(const hopper_draft *d, size_t n, hc_drafts *out,
                hopper_status *st)
{
    size_t n_hdrs;
    size_t at = 0;
    int code;

    memset(out, 0, sizeof(*out));
    if (n != 0 && d == NULL) {
        return hc_bad_arg(st, "drafts must not be NULL");
    }
    for (size_t i = 0; i < n; i++) {
        if ((code = check_draft(&d[i], i, st)) != HOPPER_OK) {
            return code;
        }
    }
    n_hdrs = count_headers(d, n);
    out->n = n;
    out->ptrs = calloc(n + 1, sizeof(*out->ptrs));
    out->items = calloc(n + 1, sizeof(*out->items));
    out->hdr_ptrs = calloc(n_hdrs + 1, sizeof(*out->hdr_ptrs));
    out->hdrs = calloc(n_hdrs + 1, sizeof(*out->hdrs));
    if (out->ptrs == NULL || out->items == NULL || out->hdr_ptrs == NULL ||
        out->hdrs == NULL) {
        hc_drafts_release(out);
        return hc_no_memory(st);
    }
    for (size_t i = 0; i < n; i++) {
        draft_to_pb(&d[i], &out->items[i], &out->hdrs[at], &out->hdr_ptrs[at]);
        out->ptrs[i] = &out->items[i];
        at += d[i].n_headers;
    }
    return HOPPER_OK;
}

void
hc_drafts_release(hc_drafts *ds)
{
    free(ds->ptrs);
    free(ds->items);
    free(ds->hdr_ptrs);
    free(ds->hdrs);
    memset(ds, 0, sizeof(*ds));
}

/* Copies a 26-character id; anything else breaks the contract. */
static int
copy_id(const char *id, char out[27], hopper_status *st)
{
    size_t len = strlen(id);

    if (len > 26) {
        return hc_bad_response(st, "message id longer than 26 characters");
    }
    memcpy(out, id, len + 1);
    return HOPPER_OK;
}

int
hc_enqueued_copy(Hopper__V1__Enqueued *const *res, size_t n, size_t want,
                 hopper_enqueued *out, hopper_status *st)
{
    int code;

    if (n != want) {
        return hc_fail(st, HOPPER_INTERNAL, HOPPER_R_BAD_RESPONSE,
                       "bad reply from broker: %zu results for %zu drafts", n,
                       want);
    }
    for (size_t i = 0; out != NULL && i < n; i++) {
        if ((code = copy_id(res[i]->id, out[i].id, st)) != HOPPER_OK) {
            return code;
        }
        out[i].duplicate = res[i]->duplicate != 0;
    }
    return HOPPER_OK;
}

int
hc_bytes_copy(ProtobufCBinaryData b, void **out, size_t *out_len,
              hopper_status *st)
{
    *out = NULL;
    *out_len = 0;
    if (b.len == 0) {
        return HOPPER_OK;
    }
    if ((*out = malloc(b.len)) == NULL) {
        return hc_no_memory(st);
    }
    memcpy(*out, b.data, b.len);
    *out_len = b.len;
    return HOPPER_OK;
}

static int
copy_headers(const Hopper__V1__Message *m, hopper_message *out,
             hopper_status *st)
{
    if (m->n_headers == 0) {
        return HOPPER_OK;
    }
    if ((out->headers = calloc(m->n_headers, sizeof(*out->headers))) == NULL) {
        return hc_no_memory(st);
    }
    out->n_headers = m->n_headers;
    for (size_t i = 0; i < m->n_headers; i++) {
        out->headers[i].key = strdup(m->headers[i]->key);
        out->headers[i].value = strdup(m->headers[i]->value);
        if (out->headers[i].key == NULL || out->headers[i].value == NULL) {
            return hc_no_memory(st);
        }
    }
    return HOPPER_OK;
}

static void
copy_scalars(const Hopper__V1__Message *m, hopper_message *out)
{
    out->state = (int)m->state;
    out->priority = m->priority;
    out->attempts = m->attempts;
    out->max_attempts = m->max_attempts;
    out->created_at_ms = m->created_at_ms;
    out->available_at_ms = m->available_at_ms;
    out->lease_expires_at_ms = m->lease_expires_at_ms;
    out->finished_at_ms = m->finished_at_ms;
}

int
hc_message_copy(const Hopper__V1__Message *m, hopper_message *out,
                hopper_status *st)
{
    int code;

    memset(out, 0, sizeof(*out));
    if ((code = copy_id(m->id, out->id, st)) != HOPPER_OK) {
        return code;
    }
    if (m->claim_token.len != 0 && m->claim_token.len != sizeof(out->token)) {
        return hc_bad_response(st, "claim token is not 16 bytes");
    }
    if (m->claim_token.len != 0) {
        memcpy(out->token.b, m->claim_token.data, m->claim_token.len);
    }
    copy_scalars(m, out);
    out->lane = strdup(m->lane);
    out->target = strdup(m->target);
    out->consumer = strdup(m->consumer);
    out->last_error = strdup(m->last_error);
    out->state_webhook_url = strdup(m->state_webhook_url);
    if (out->lane == NULL || out->target == NULL || out->consumer == NULL ||
        out->last_error == NULL || out->state_webhook_url == NULL) {
        code = hc_no_memory(st);
        goto release;
    }
    if ((code = hc_bytes_copy(m->payload, &out->payload, &out->payload_len,
                              st)) != HOPPER_OK ||
        (code = hc_bytes_copy(m->result, &out->result, &out->result_len, st)) !=
            HOPPER_OK ||
        (code = copy_headers(m, out, st)) != HOPPER_OK) {
        goto release;
    }
    return HOPPER_OK;

release:
    hc_message_release(out);
    return code;
}

void
hc_message_release(hopper_message *m)
{
    free(m->lane);
    free(m->target);
    free(m->consumer);
    free(m->last_error);
    free(m->state_webhook_url);
    free(m->payload);
    free(m->result);
    for (size_t i = 0; m->headers != NULL && i < m->n_headers; i++) {
        free((char *)m->headers[i].key); /* owned: allocated by strdup */
        free((char *)m->headers[i].value);
    }
    free(m->headers);
    memset(m, 0, sizeof(*m));
}

int
hc_messages_copy(Hopper__V1__Message *const *ms, size_t n, hopper_message **out,
                 hopper_status *st)
{
    hopper_message *arr;
    int code;

    *out = NULL;
    if (n == 0) {
        return HOPPER_OK;
    }
    if ((arr = calloc(n, sizeof(*arr))) == NULL) {
        return hc_no_memory(st);
    }
    for (size_t i = 0; i < n; i++) {
        if ((code = hc_message_copy(ms[i], &arr[i], st)) != HOPPER_OK) {
            hc_messages_free(arr, i);
            return code;
        }
    }
    *out = arr;
    return HOPPER_OK;
}

void
hc_messages_free(hopper_message *ms, size_t n)
{
    for (size_t i = 0; ms != NULL && i < n; i++) {
        hc_message_release(&ms[i]);
    }
    free(ms);
}

/* The lane settings that hopper.h and the proto name and type alike; the
 * backoff (an enum) and paused (a bool) are converted by hand. */
#define SAME_SETTINGS(X)  \
    X(max_attempts)       \
    X(backoff_base_ms)    \
    X(backoff_cap_ms)     \
    X(backoff_factor_pct) \
    X(jitter_pct)         \
    X(retention_ms)       \
    X(dedupe_window_ms)
#define COPY(field) out->field = s->field;

void
hc_settings_to_pb(const hopper_lane_settings *s, Hopper__V1__LaneSettings *out)
{
    *out = (Hopper__V1__LaneSettings)HOPPER__V1__LANE_SETTINGS__INIT;
    SAME_SETTINGS(COPY)
    out->backoff = (Hopper__V1__Backoff)s->backoff;
    out->paused = s->paused;
    /* Borrowed from s until out is packed. */
    out->deliver_url = (char *)(uintptr_t)s->deliver_url;
    out->secret_id = (char *)(uintptr_t)s->secret_id;
    out->deliver_concurrency = s->deliver_concurrency;
    out->deliver_timeout_ms = s->deliver_timeout_ms;
    out->callback_timeout_ms = s->callback_timeout_ms;
}

void
hc_settings_from_pb(const Hopper__V1__LaneSettings *s,
                    hopper_lane_settings *out)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL) {
        return;
    }
    SAME_SETTINGS(COPY)
    out->backoff = (int)s->backoff;
    out->paused = s->paused != 0;
    /* The broker keeps both within these sizes; a longer one is cut. */
    snprintf(out->deliver_url, sizeof(out->deliver_url), "%s",
             s->deliver_url != NULL ? s->deliver_url : "");
    snprintf(out->secret_id, sizeof(out->secret_id), "%s",
             s->secret_id != NULL ? s->secret_id : "");
    out->deliver_concurrency = s->deliver_concurrency;
    out->deliver_timeout_ms = s->deliver_timeout_ms;
    out->callback_timeout_ms = s->callback_timeout_ms;
}

#undef COPY
#undef SAME_SETTINGS

static void
copy_counters(const Hopper__V1__LaneStats *s, hopper_lane_stats *out)
{
    out->pending = s->pending;
    out->delayed = s->delayed;
    out->claimed = s->claimed;
    out->delivered = s->delivered;
    out->dead = s->dead;
    out->oldest_pending_age_ms = s->oldest_pending_age_ms;
    out->enqueued_total = s->enqueued_total;
    out->dedupe_hits_total = s->dedupe_hits_total;
    out->claimed_total = s->claimed_total;
    out->acked_total = s->acked_total;
    out->nacked_total = s->nacked_total;
    out->dead_total = s->dead_total;
    out->expired_total = s->expired_total;
    out->replayed_total = s->replayed_total;
    out->purged_total = s->purged_total;
}

int
hc_stats_copy(const Hopper__V1__LaneStats *s, hopper_lane_stats *out,
              hopper_status *st)
{
    memset(out, 0, sizeof(*out));
    hc_settings_from_pb(s->settings, &out->settings);
    copy_counters(s, out);
    if ((out->lane = strdup(s->lane)) == NULL) {
        return hc_no_memory(st);
    }
    if (hc_bytes_copy(s->targets_next_cursor, &out->targets_next_cursor,
                      &out->targets_next_cursor_len, st) != HOPPER_OK) {
        hc_stats_release(out);
        return st->code;
    }
    if (s->n_targets == 0) {
        return HOPPER_OK;
    }
    if ((out->targets = calloc(s->n_targets, sizeof(char *))) == NULL) {
        hc_stats_release(out);
        return hc_no_memory(st);
    }
    out->n_targets = s->n_targets;
    for (size_t i = 0; i < s->n_targets; i++) {
        if ((out->targets[i] = strdup(s->targets[i])) == NULL) {
            hc_stats_release(out);
            return hc_no_memory(st);
        }
    }
    return HOPPER_OK;
}

void
hc_stats_release(hopper_lane_stats *s)
{
    for (size_t i = 0; s->targets != NULL && i < s->n_targets; i++) {
        free(s->targets[i]);
    }
    free(s->targets);
    free(s->targets_next_cursor);
    free(s->lane);
    memset(s, 0, sizeof(*s));
}
