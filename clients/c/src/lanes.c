/*
 * lanes.c - the calls on lanes and on the broker itself: Stats, ListLanes,
 * GetLane, UpdateLane, DeadReplay, DeadPurge and Ping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

void
hopper_lane_stats_free(hopper_lane_stats *s)
{
    if (s == NULL) {
        return;
    }
    hc_stats_release(s);
    free(s);
}

int
hopper_stats(hopper_client *c, const char *lane, hopper_lane_stats **out,
             hopper_status *st)
{
    return hopper_stats_page(c, lane, NULL, 0, 0, out, st);
}

int
hopper_stats_page(hopper_client *c, const char *lane,
                  const void *targets_cursor, size_t targets_cursor_len,
                  uint32_t targets_limit, hopper_lane_stats **out,
                  hopper_status *st)
{
    Hopper__V1__StatsRequest req = HOPPER__V1__STATS_REQUEST__INIT;
    Hopper__V1__StatsResponse *resp;
    ProtobufCMessage *raw;
    hopper_lane_stats *s;
    int code;

    if (out == NULL) {
        return hc_bad_arg(st, "out must not be NULL");
    }
    *out = NULL;
    if (c == NULL || lane == NULL ||
        (targets_cursor == NULL && targets_cursor_len != 0)) {
        return hc_bad_arg(st, "stats needs a client and a lane");
    }
    req.lane = hc_str(lane);
    req.targets_cursor.data = (uint8_t *)(uintptr_t)targets_cursor;
    req.targets_cursor.len = targets_cursor_len;
    req.targets_limit = targets_limit;
    if ((code = hc_invoke(c, "Stats", &req.base, 0, &raw, st)) != HOPPER_OK) {
        return code;
    }
    resp = (Hopper__V1__StatsResponse *)raw;
    if (resp->stats == NULL) {
        code = hc_bad_response(st, "Stats answered OK without stats");
    } else if ((s = malloc(sizeof(*s))) == NULL) {
        code = hc_no_memory(st);
    } else if ((code = hc_stats_copy(resp->stats, s, st)) != HOPPER_OK) {
        free(s);
    } else {
        *out = s;
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return code;
}

void
hopper_lane_list_free(hopper_lane_list *l)
{
    if (l == NULL) {
        return;
    }
    for (size_t i = 0; l->lanes != NULL && i < l->n; i++) {
        hc_stats_release(&l->lanes[i]);
    }
    free(l->lanes);
    free(l->next_cursor);
    free(l);
}

static int
lane_list_from(const Hopper__V1__ListLanesResponse *resp, hopper_lane_list *l,
               hopper_status *st)
{
    int code;

    if (resp->n_lanes != 0 &&
        (l->lanes = calloc(resp->n_lanes, sizeof(*l->lanes))) == NULL) {
        return hc_no_memory(st);
    }
    for (size_t i = 0; i < resp->n_lanes; i++) {
        if ((code = hc_stats_copy(resp->lanes[i], &l->lanes[i], st)) !=
            HOPPER_OK) {
            return code;
        }
        l->n = i + 1;
    }
    return hc_bytes_copy(resp->next_cursor, &l->next_cursor,
                         &l->next_cursor_len, st);
}

int
hopper_lanes(hopper_client *c, const void *cursor, size_t cursor_len,
             uint32_t limit, hopper_lane_list **out, hopper_status *st)
{
    Hopper__V1__ListLanesRequest req = HOPPER__V1__LIST_LANES_REQUEST__INIT;
    ProtobufCMessage *raw;
    hopper_lane_list *l;
    int code;

    if (out == NULL) {
        return hc_bad_arg(st, "out must not be NULL");
    }
    *out = NULL;
    if (c == NULL || (cursor == NULL && cursor_len != 0)) {
        return hc_bad_arg(st, "lanes needs a client");
    }
    req.cursor.data = (uint8_t *)(uintptr_t)cursor;
    req.cursor.len = cursor_len;
    req.limit = limit;
    if ((code = hc_invoke(c, "ListLanes", &req.base, 0, &raw, st)) !=
        HOPPER_OK) {
        return code;
    }
    if ((l = calloc(1, sizeof(*l))) == NULL) {
        code = hc_no_memory(st);
    } else if ((code = lane_list_from((Hopper__V1__ListLanesResponse *)raw, l,
                                      st)) != HOPPER_OK) {
        hopper_lane_list_free(l);
    } else {
        *out = l;
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return code;
}

int
hopper_lane_get(hopper_client *c, const char *lane, hopper_lane_settings *out,
                hopper_status *st)
{
    Hopper__V1__GetLaneRequest req = HOPPER__V1__GET_LANE_REQUEST__INIT;
    ProtobufCMessage *raw;
    int code;

    if (c == NULL || lane == NULL || out == NULL) {
        return hc_bad_arg(st, "lane get needs a client, a lane and out");
    }
    req.lane = hc_str(lane);
    if ((code = hc_invoke(c, "GetLane", &req.base, 0, &raw, st)) != HOPPER_OK) {
        return code;
    }
    hc_settings_from_pb((Hopper__V1__LaneSettings *)raw, out);
    protobuf_c_message_free_unpacked(raw, NULL);
    return HOPPER_OK;
}

int
hopper_lane_update(hopper_client *c, const char *lane,
                   const hopper_lane_settings *s, const char *const *mask,
                   size_t n_mask, hopper_lane_settings *out, hopper_status *st)
{
    Hopper__V1__UpdateLaneRequest req = HOPPER__V1__UPDATE_LANE_REQUEST__INIT;
    Hopper__V1__LaneSettings pb;
    ProtobufCMessage *raw;
    int code;

    if (c == NULL || lane == NULL || s == NULL || mask == NULL || n_mask == 0) {
        return hc_bad_arg(st, "lane update needs a client, a lane, settings "
                              "and a non-empty mask");
    }
    for (size_t i = 0; i < n_mask; i++) {
        if (mask[i] == NULL) {
            return hc_bad_arg(st, "update mask holds a NULL name");
        }
    }
    hc_settings_to_pb(s, &pb);
    req.lane = hc_str(lane);
    req.settings = &pb;
    req.n_update_mask = n_mask;
    req.update_mask = (char **)(uintptr_t)mask; /* only read by pack */
    if ((code = hc_invoke(c, "UpdateLane", &req.base, 0, &raw, st)) !=
        HOPPER_OK) {
        return code;
    }
    if (out != NULL) {
        hc_settings_from_pb((Hopper__V1__LaneSettings *)raw, out);
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return HOPPER_OK;
}

int
hopper_secret_set(hopper_client *c, const char *secret_id, const void *value,
                  size_t value_len, bool rotate, uint32_t *active,
                  hopper_status *st)
{
    Hopper__V1__SetSecretRequest req = HOPPER__V1__SET_SECRET_REQUEST__INIT;
    ProtobufCMessage *raw;
    int code;

    if (c == NULL || secret_id == NULL || (value == NULL && value_len > 0)) {
        return hc_bad_arg(st, "secret set needs a client, an id and a value");
    }
    req.secret_id = hc_str(secret_id);
    req.value.data = (uint8_t *)(uintptr_t)value; /* only read by pack */
    req.value.len = value_len;
    req.rotate = rotate;
    if ((code = hc_invoke(c, "SetSecret", &req.base, 0, &raw, st)) !=
        HOPPER_OK) {
        return code;
    }
    if (active != NULL) {
        *active = ((Hopper__V1__SetSecretResponse *)raw)->active;
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return HOPPER_OK;
}

void
hopper_webhook_answer_free(hopper_webhook_answer *a)
{
    if (a != NULL) {
        free(a->body);
        free(a);
    }
}

int
hopper_webhook_test(hopper_client *c, const char *lane,
                    hopper_webhook_answer **out, hopper_status *st)
{
    Hopper__V1__TestWebhookRequest req = HOPPER__V1__TEST_WEBHOOK_REQUEST__INIT;
    ProtobufCMessage *raw;
    int code;

    if (c == NULL || lane == NULL || out == NULL) {
        return hc_bad_arg(st, "webhook test needs a client, a lane and out");
    }
    *out = NULL;
    req.lane = hc_str(lane);
    if ((code = hc_invoke(c, "TestWebhook", &req.base, 0, &raw, st)) !=
        HOPPER_OK) {
        return code;
    }
    const Hopper__V1__TestWebhookResponse *r =
        (const Hopper__V1__TestWebhookResponse *)raw;
    hopper_webhook_answer *a = calloc(1, sizeof(*a));
    if (a == NULL ||
        (a->body = malloc(r->body.len > 0 ? r->body.len : 1)) == NULL) {
        free(a);
        protobuf_c_message_free_unpacked(raw, NULL);
        return hc_no_memory(st);
    }
    a->status = r->status;
    a->duration_ms = r->duration_ms;
    snprintf(a->outcome, sizeof(a->outcome), "%s",
             r->outcome != NULL ? r->outcome : "");
    snprintf(a->error, sizeof(a->error), "%s",
             r->error != NULL ? r->error : "");
    if (r->body.len > 0) {
        memcpy(a->body, r->body.data, r->body.len);
    }
    a->body_len = r->body.len;
    protobuf_c_message_free_unpacked(raw, NULL);
    *out = a;
    return HOPPER_OK;
}

int
hopper_lane_pause(hopper_client *c, const char *lane, bool paused,
                  hopper_status *st)
{
    static const char *const mask[] = { "paused" };
    hopper_lane_settings s;

    memset(&s, 0, sizeof(s));
    s.paused = paused;
    return hopper_lane_update(c, lane, &s, mask, 1, NULL, st);
}

static int
dead_call(hopper_client *c, const char *rpc, const char *lane,
          const char *const *ids, size_t n_ids, uint32_t limit, uint64_t *count,
          bool *more, hopper_status *st)
{
    Hopper__V1__DeadRequest req = HOPPER__V1__DEAD_REQUEST__INIT;
    Hopper__V1__DeadResponse *resp;
    ProtobufCMessage *raw;
    int code;

    if (c == NULL || lane == NULL || (ids == NULL && n_ids != 0)) {
        return hc_bad_arg(st, "dead replay/purge needs a client and a lane");
    }
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] == NULL) {
            return hc_bad_arg(st, "ids holds a NULL id");
        }
    }
    req.lane = hc_str(lane);
    req.n_ids = n_ids;
    req.ids = n_ids != 0 ? (char **)(uintptr_t)ids : NULL;
    req.limit = limit;
    if ((code = hc_invoke(c, rpc, &req.base, 0, &raw, st)) != HOPPER_OK) {
        return code;
    }
    resp = (Hopper__V1__DeadResponse *)raw;
    if (count != NULL) {
        *count = resp->count;
    }
    if (more != NULL) {
        *more = resp->more != 0;
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return HOPPER_OK;
}

int
hopper_dead_replay(hopper_client *c, const char *lane, const char *const *ids,
                   size_t n_ids, uint32_t limit, uint64_t *count, bool *more,
                   hopper_status *st)
{
    return dead_call(c, "DeadReplay", lane, ids, n_ids, limit, count, more, st);
}

int
hopper_dead_purge(hopper_client *c, const char *lane, const char *const *ids,
                  size_t n_ids, uint32_t limit, uint64_t *count, bool *more,
                  hopper_status *st)
{
    return dead_call(c, "DeadPurge", lane, ids, n_ids, limit, count, more, st);
}

int
hopper_ping(hopper_client *c, hopper_ping_info *out, hopper_status *st)
{
    Hopper__V1__PingRequest req = HOPPER__V1__PING_REQUEST__INIT;
    Hopper__V1__PingResponse *resp;
    ProtobufCMessage *raw;
    int code;

    if (c == NULL) {
        return hc_bad_arg(st, "ping needs a client");
    }
    if ((code = hc_invoke(c, "Ping", &req.base, 0, &raw, st)) != HOPPER_OK) {
        return code;
    }
    resp = (Hopper__V1__PingResponse *)raw;
    if (out != NULL) {
        snprintf(out->version, sizeof(out->version), "%s", resp->version);
        out->now_ms = resp->now_ms;
        snprintf(out->instance, sizeof(out->instance), "%s", resp->instance);
        snprintf(out->warning, sizeof(out->warning), "%s", resp->warning);
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return HOPPER_OK;
}

/* A copy of a big store takes as long as reading it. */
#define BACKUP_EXTRA_MS (3600u * 1000u)

int
hopper_backup(hopper_client *c, const char *name, hopper_backup_info *out,
              hopper_status *st)
{
    Hopper__V1__BackupRequest req = HOPPER__V1__BACKUP_REQUEST__INIT;
    Hopper__V1__BackupResponse *resp;
    ProtobufCMessage *raw;
    int code;

    if (c == NULL || name == NULL) {
        return hc_bad_arg(st, "backup needs a client and a name");
    }
    req.name = (char *)(uintptr_t)name;
    if ((code = hc_invoke(c, "Backup", &req.base, BACKUP_EXTRA_MS, &raw, st)) !=
        HOPPER_OK) {
        return code;
    }
    resp = (Hopper__V1__BackupResponse *)raw;
    if (out != NULL) {
        snprintf(out->path, sizeof(out->path), "%s", resp->path);
        out->bytes = resp->bytes;
        out->duration_ms = resp->duration_ms;
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return HOPPER_OK;
}
