/*
 * render.c - messages, lane settings and lane stats as JSON objects (for
 * --json, one per line) and as aligned key/value blocks (for people).
 * JSON keys are the proto's field names; times stay Unix milliseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "output.h"

void
out_json_to(FILE *f, json_t *obj)
{
    if (obj == NULL) {
        /* The --json error shape of cli.h, spelled out: there is no
         * memory to build it. */
        fprintf(stderr,
                "{\"exit\":%d,\"code\":\"" CLI_CODE_LOCAL
                "\",\"reason\":\"" HOPPER_R_NO_MEMORY
                "\",\"message\":\"out of memory building JSON\"}\n",
                CLI_EXIT_OTHER);
        fflush(stdout);
        exit(CLI_EXIT_OTHER);
    }
    json_dumpf(obj, f, JSON_COMPACT);
    fputc('\n', f);
    json_decref(obj);
}

void
out_json(json_t *obj)
{
    out_json_to(stdout, obj);
}

json_t *
out_json_u64(uint64_t v)
{
    /* json_int_t is 64-bit signed; no Hopper counter or time nears 2^63. */
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

void
out_json_bytes(json_t *obj, const char *key, const void *p, size_t len,
               bool always)
{
    char b64key[64];
    char *b64;

    if (len == 0) {
        if (always) {
            json_object_set_new(obj, key, json_string(""));
        }
        return;
    }
    if (out_utf8_valid(p, len)) {
        json_object_set_new(obj, key, json_stringn(p, len));
        return;
    }
    snprintf(b64key, sizeof(b64key), "%s_base64", key);
    b64 = out_base64(p, len);
    json_object_set_new(obj, b64key, json_string(b64 != NULL ? b64 : ""));
    free(b64);
}

static json_t *
headers_json(const hopper_message *m)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < m->n_headers; i++) {
        json_array_append_new(arr,
                              json_pack("{s:s, s:s}", "key", m->headers[i].key,
                                        "value", m->headers[i].value));
    }
    return arr;
}

json_t *
out_message_json(const hopper_message *m, bool with_token, bool with_payload)
{
    json_t *o = json_object();
    char tok[33];

    if (o == NULL) {
        return NULL;
    }
    json_object_set_new(o, "id", json_string(m->id));
    json_object_set_new(o, "state", json_string(out_state_name(m->state)));
    json_object_set_new(o, "lane", json_string(m->lane));
    json_object_set_new(o, "target", json_string(m->target));
    json_object_set_new(o, "priority", json_integer(m->priority));
    json_object_set_new(o, "attempts", json_integer(m->attempts));
    json_object_set_new(o, "max_attempts", json_integer(m->max_attempts));
    json_object_set_new(o, "created_at_ms", out_json_u64(m->created_at_ms));
    json_object_set_new(o, "available_at_ms", out_json_u64(m->available_at_ms));
    json_object_set_new(o, "lease_expires_at_ms",
                        out_json_u64(m->lease_expires_at_ms));
    json_object_set_new(o, "finished_at_ms", out_json_u64(m->finished_at_ms));
    if (with_token) {
        hopper_token_format(&m->token, tok);
        json_object_set_new(o, "token", json_string(tok));
    }
    json_object_set_new(o, "consumer", json_string(m->consumer));
    json_object_set_new(o, "last_error", json_string(m->last_error));
    if (m->state_webhook_url[0] != '\0') {
        json_object_set_new(o, "state_webhook_url",
                            json_string(m->state_webhook_url));
    }
    if (with_payload) {
        json_object_set_new(o, "headers", headers_json(m));
        out_json_bytes(o, "payload", m->payload, m->payload_len, true);
    }
    /* Without the payload too: the result is what await is for, and the
     * text block prints it whenever there is one. */
    out_json_bytes(o, "result", m->result, m->result_len, false);
    return o;
}

json_t *
out_settings_json(const hopper_lane_settings *s)
{
    json_t *o = json_pack(
        "{s:I, s:s, s:o, s:o, s:I, s:I, s:o, s:o, s:b}", "max_attempts",
        (json_int_t)s->max_attempts, "backoff", out_backoff_name(s->backoff),
        "backoff_base_ms", out_json_u64(s->backoff_base_ms), "backoff_cap_ms",
        out_json_u64(s->backoff_cap_ms), "backoff_factor_pct",
        (json_int_t)s->backoff_factor_pct, "jitter_pct",
        (json_int_t)s->jitter_pct, "retention_ms",
        out_json_u64(s->retention_ms), "dedupe_window_ms",
        out_json_u64(s->dedupe_window_ms), "paused", (int)s->paused);
    /* Delivery only where it is on: other lanes print as before. */
    if (o != NULL && s->deliver_url[0] != '\0') {
        json_object_set_new(o, "deliver_url", json_string(s->deliver_url));
        json_object_set_new(o, "secret_id", json_string(s->secret_id));
        json_object_set_new(o, "deliver_concurrency",
                            json_integer(s->deliver_concurrency));
        json_object_set_new(o, "deliver_timeout_ms",
                            json_integer(s->deliver_timeout_ms));
        json_object_set_new(o, "callback_timeout_ms",
                            json_integer(s->callback_timeout_ms));
    }
    return o;
}

/* The counters in proto order, shared by the JSON and block forms. */
typedef struct counter {
    const char *name;
    uint64_t value;
} counter;

static size_t
stats_counters(const hopper_lane_stats *s, counter out[15])
{
    const counter all[] = {
        { "pending", s->pending },
        { "delayed", s->delayed },
        { "claimed", s->claimed },
        { "delivered", s->delivered },
        { "dead", s->dead },
        { "oldest_pending_age_ms", s->oldest_pending_age_ms },
        { "enqueued_total", s->enqueued_total },
        { "dedupe_hits_total", s->dedupe_hits_total },
        { "claimed_total", s->claimed_total },
        { "acked_total", s->acked_total },
        { "nacked_total", s->nacked_total },
        { "dead_total", s->dead_total },
        { "expired_total", s->expired_total },
        { "replayed_total", s->replayed_total },
        { "purged_total", s->purged_total },
    };

    memcpy(out, all, sizeof(all));
    return sizeof(all) / sizeof(all[0]);
}

json_t *
out_stats_json(const hopper_lane_stats *s)
{
    json_t *o = json_object();
    json_t *targets = json_array();
    counter cs[15];
    size_t n = stats_counters(s, cs);

    if (o == NULL || targets == NULL) {
        json_decref(o);
        json_decref(targets);
        return NULL;
    }
    json_object_set_new(o, "lane", json_string(s->lane));
    json_object_set_new(o, "settings", out_settings_json(&s->settings));
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(o, cs[i].name, out_json_u64(cs[i].value));
    }
    for (size_t i = 0; i < s->n_targets; i++) {
        json_array_append_new(targets, json_string(s->targets[i]));
    }
    json_object_set_new(o, "targets", targets);
    /* "" when the targets are complete, else hex for --targets-cursor. */
    char *hex = hopper_cursor_format(s->targets_next_cursor,
                                     s->targets_next_cursor_len);
    json_object_set_new(o, "targets_next_cursor",
                        json_string(hex != NULL ? hex : ""));
    hopper_free(hex);
    return o;
}

/* ---- blocks for people ---- */

#define KEY_WIDTH 13

static void
kv(const char *key, const char *value)
{
    printf("%-*s %s\n", KEY_WIDTH, key, value);
}

static void
kv_u64(const char *key, uint64_t v)
{
    printf("%-*s %llu\n", KEY_WIDTH, key, (unsigned long long)v);
}

static void
kv_time(const char *key, uint64_t ms)
{
    char buf[40];

    kv(key, out_time(ms, buf));
}

/* Text goes out as is, continuation lines indented under the first;
 * anything else (binary, control characters) as base64. */
static void
kv_bytes(const char *key, const void *p, size_t len)
{
    const unsigned char *s = p;
    bool text = out_utf8_valid(p, len);
    char label[40];
    char *b64;

    for (size_t i = 0; text && i < len; i++) {
        text = s[i] >= 0x20 || s[i] == '\n' || s[i] == '\t';
        text = text && s[i] != 0x7f;
    }
    if (len == 0) {
        kv(key, "(empty)");
    } else if (text) {
        printf("%-*s ", KEY_WIDTH, key);
        for (size_t i = 0; i < len; i++) {
            putchar(s[i]);
            if (s[i] == '\n' && i + 1 < len) {
                printf("%-*s ", KEY_WIDTH, "");
            }
        }
        if (s[len - 1] != '\n') {
            putchar('\n');
        }
    } else {
        snprintf(label, sizeof(label), "%s (base64)", key);
        b64 = out_base64(p, len);
        kv(label, b64 != NULL ? b64 : "(out of memory)");
        free(b64);
    }
}

void
out_message_block(const hopper_message *m, bool claimed, bool with_payload)
{
    char tok[33];
    char att[48];

    kv("id", m->id);
    if (claimed) {
        hopper_token_format(&m->token, tok);
        kv("token", tok);
    } else {
        kv("state", out_state_name(m->state));
        kv("lane", m->lane);
    }
    if (m->target[0] != '\0') {
        kv("target", m->target);
    }
    snprintf(att, sizeof(att), "%u of %u", (unsigned)m->attempts,
             (unsigned)m->max_attempts);
    kv("attempts", att);
    kv_u64("priority", m->priority);
    if (!claimed) {
        kv_time("created", m->created_at_ms);
        kv_time("available", m->available_at_ms);
        kv_time("finished", m->finished_at_ms);
    }
    if (m->lease_expires_at_ms != 0) {
        kv_time("lease until", m->lease_expires_at_ms);
    }
    if (m->consumer[0] != '\0' && !claimed) {
        kv("consumer", m->consumer);
    }
    if (m->last_error[0] != '\0') {
        kv("last error", m->last_error);
    }
    if (m->state_webhook_url[0] != '\0' && !claimed) {
        kv("state webhook", m->state_webhook_url);
    }
    for (size_t i = 0; i < m->n_headers; i++) {
        printf("%-*s %s=%s\n", KEY_WIDTH, i == 0 ? "headers" : "",
               m->headers[i].key, m->headers[i].value);
    }
    if (with_payload) {
        kv_bytes("payload", m->payload, m->payload_len);
    }
    if (m->result_len != 0) {
        kv_bytes("result", m->result, m->result_len);
    }
}

void
out_settings_block(const hopper_lane_settings *s)
{
    const counter nums[] = {
        { "backoff_base_ms", s->backoff_base_ms },
        { "backoff_cap_ms", s->backoff_cap_ms },
        { "backoff_factor_pct", s->backoff_factor_pct },
        { "jitter_pct", s->jitter_pct },
        { "retention_ms", s->retention_ms },
        { "dedupe_window_ms", s->dedupe_window_ms },
    };

    printf("%-*s %u\n", 18, "max_attempts", (unsigned)s->max_attempts);
    printf("%-*s %s\n", 18, "backoff", out_backoff_name(s->backoff));
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        printf("%-*s %llu\n", 18, nums[i].name,
               (unsigned long long)nums[i].value);
    }
    printf("%-*s %s\n", 18, "paused", s->paused ? "yes" : "no");
    if (s->deliver_url[0] != '\0') {
        printf("%-*s %s\n", 18, "deliver_url", s->deliver_url);
        printf("%-*s %s\n", 18, "secret_id", s->secret_id);
        printf("%-*s %u\n", 18, "deliver_concurrency",
               (unsigned)s->deliver_concurrency);
        printf("%-*s %u\n", 18, "deliver_timeout_ms",
               (unsigned)s->deliver_timeout_ms);
        printf("%-*s %u\n", 18, "callback_timeout_ms",
               (unsigned)s->callback_timeout_ms);
    }
}

void
out_stats_block(const hopper_lane_stats *s)
{
    counter cs[15];
    size_t n = stats_counters(s, cs);

    printf("%-*s %s\n", 22, "lane", s->lane);
    for (size_t i = 0; i < n; i++) {
        printf("%-*s %llu\n", 22, cs[i].name, (unsigned long long)cs[i].value);
    }
    /* As in the JSON form: "" is the target of messages enqueued without
     * one (the proto's spelling), not an absence of targets. */
    for (size_t i = 0; i < s->n_targets; i++) {
        printf("%-*s %s\n", 22, i == 0 ? "targets" : "",
               s->targets[i][0] != '\0' ? s->targets[i] : "\"\"");
    }
    if (s->targets_next_cursor_len > 0) {
        char *hex = hopper_cursor_format(s->targets_next_cursor,
                                         s->targets_next_cursor_len);
        printf("%-*s hopper stats %s --targets-cursor %s\n", 22, "more targets",
               s->lane, hex != NULL ? hex : "?");
        hopper_free(hex);
    }
    printf("%-*s %s\n", 22, "paused", s->settings.paused ? "yes" : "no");
}
