/*
 * callback.c - callback ingress (callback.h): a callback's token verified,
 * its JSON body decoded, and its action applied to the claim the token
 * names as one commit-queue op (struct cbop), answered from the op's done
 * callback on the writer thread with a small JSON object.
 *
 * A callback is refused before the queue when its token is forged or
 * expired, or its body is not a callback; everything about the claim
 * itself (held, lost, settled, gone) is the store's answer, exactly as for
 * a worker's Ack, Nack or Extend. A repeated complete or fail with the
 * same token is the store's repeated ack or nack: the same outcome, no
 * change, so a receiver may retry a callback whose answer it lost.
 */
#include "broker/callback.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "broker/budget.h"
#include "broker/cbtoken.h"
#include "broker/pbjson.h"
#include "common/compiler.h"
#include "common/reasons.h"
#include "hopper/v1/broker.pb-c.h"

#define BASE_URL_MAX (CALLBACK_URL_MAX - CBTOKEN_TEXT_MAX - 32)
#define DECODE_LIMIT ((size_t)1 << 20)
#define RESPONSE_MAX (CALLBACK_URL_MAX + 256)

struct callback {
    hp_clock *clock;
    char base[BASE_URL_MAX + 1];
    /* Written by callback_open, then callback_start sets started
     * (release). */
    uint8_t key[CBTOKEN_KEY_LEN];
    commitq *q;
    _Atomic bool started;
};

typedef enum cb_action {
    CB_COMPLETE,
    CB_FAIL,
    CB_HEARTBEAT,
} cb_action;

/* One callback on the commit queue. */
typedef struct cbop {
    commitq_op op;
    callback *cb;
    callback_done_fn done;
    void *arg;
    cbtoken t;
    cb_action action;
    uint8_t *result; /* complete: owned */
    size_t result_len;
    char *error; /* fail: owned, NUL-terminated */
    uint64_t retry_after_ms;
    bool dead_letter;
    uint32_t extend_ms;
    /* The outcome. */
    store_nack_res nack;
    uint64_t lease_expires_at_ms;
} cbop;

static const char *const action_names[] = { "complete", "fail", "heartbeat" };

/* ---- the base URL ---------------------------------------------------------
 */

/* Whether the byte may stand in the base URL: printable ASCII, and none
 * that would end the URL's path (a query, a fragment) or need escaping in
 * the header and in the JSON answer the URL goes into. */
static bool
base_byte_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '?' && c != '#' && c != '"' &&
           c != '\\';
}

/* http:// or https://, a host, nothing after a final '/' that matters. */
static hp_code
base_check(const char *url, hp_status *st)
{
    size_t len = strlen(url);
    size_t scheme = strncmp(url, "http://", 7) == 0    ? 7
                    : strncmp(url, "https://", 8) == 0 ? 8
                                                       : 0;
    bool ok = scheme != 0 && len > scheme && url[scheme] != '/' &&
              len <= BASE_URL_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        ok = base_byte_ok((unsigned char)url[i]);
    }
    if (!ok) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "--api-public-url '%.64s' must be http:// or "
                             "https:// with a host, at most %d bytes of "
                             "printable ASCII, without a query, a fragment, "
                             "'\"' or '\\'",
                             url, BASE_URL_MAX);
    }
    return HP_OK;
}

hp_code
callback_new(hp_clock *clock, callback **out, hp_status *st)
{
    callback *cb = calloc(1, sizeof(*cb));
    if (cb == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    cb->clock = clock;
    *out = cb;
    return HP_OK;
}

typedef struct key_read {
    const uint8_t *fresh;
    uint8_t *out;
} key_read;

static hp_code
key_txn(store_txn *t, void *arg, hp_status *st)
{
    key_read *k = arg;
    return store_callback_key(t, k->fresh, k->out, st);
}

hp_code
callback_open(callback *cb, store *s, const char *base_url,
              const uint8_t fresh[STORE_CALLBACK_KEY_LEN], hp_status *st)
{
    _Static_assert(STORE_CALLBACK_KEY_LEN == CBTOKEN_KEY_LEN,
                   "the store keeps the key cbtoken signs with");
    key_read k = { fresh, cb->key };
    hp_code code = base_check(base_url, st);
    if (code != HP_OK ||
        (code = store_run(s, true, key_txn, &k, st)) != HP_OK) {
        return code;
    }
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/') {
        n--; /* the path adds its own */
    }
    memcpy(cb->base, base_url, n);
    cb->base[n] = '\0';
    return HP_OK;
}

void
callback_start(callback *cb, commitq *q)
{
    cb->q = q;
    atomic_store_explicit(&cb->started, true, memory_order_release);
}

size_t
callback_url(const callback *cb, const hp_lane_key *lane, const hp_id *id,
             const store_token *token, uint64_t expires_at_ms, char *out)
{
    cbtoken t = { .lane = *lane,
                  .id = *id,
                  .token = *token,
                  .expires_at_ms = expires_at_ms };
    size_t n = strlen(cb->base);
    memcpy(out, cb->base, n);
    memcpy(out + n, CALLBACK_PATH, sizeof(CALLBACK_PATH) - 1);
    n += sizeof(CALLBACK_PATH) - 1;
    return n + cbtoken_encode(cb->key, &t, out + n);
}

/* ---- the op: applied by the writer --------------------------------------- */

static hp_code
op_apply(commitq_op *op, store_txn *t, uint64_t now_ms, hp_status *st)
{
    cbop *o = HP_CONTAINER_OF(op, cbop, op);
    hp_str scope = hp_lane_key_scope(&o->t.lane);
    hp_str lane = hp_lane_key_lane(&o->t.lane);

    switch (o->action) {
    case CB_COMPLETE: {
        store_ack_item it = { o->t.id, o->t.token, o->result, o->result_len };
        return store_ack(t, scope, &it, 1, NULL, 0, now_ms, NULL, st);
    }
    case CB_FAIL: {
        store_nack_req req = {
            .id = o->t.id,
            .token = o->t.token,
            .mode = o->dead_letter ? STORE_NACK_DEAD : STORE_NACK_RETRY,
            .error = hp_str_c(o->error != NULL ? o->error : ""),
        };
        if (o->retry_after_ms > 0 && !o->dead_letter) {
            req.retry_at_ms =
                store_retry_capped(t, scope, lane, o->retry_after_ms, now_ms);
        }
        return store_nack(t, scope, &req, now_ms, NULL, &o->nack, st);
    }
    case CB_HEARTBEAT: {
        store_delivery d;
        hp_code code = store_delivery_get(t, scope, lane, &d, st);
        if (code != HP_OK) {
            return code;
        }
        uint32_t lease =
            o->extend_ms != 0 ? o->extend_ms : d.callback_timeout_ms;
        if (lease > d.callback_timeout_ms) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_LEASE,
                                 "extend_ms must be at most the lane's "
                                 "callback_timeout_ms, %u",
                                 (unsigned)d.callback_timeout_ms);
        }
        return store_extend(t, scope, o->t.id, o->t.token, lease, now_ms,
                            &o->lease_expires_at_ms, st);
    }
    }
    return hp_status_set(st, HP_INTERNAL, HP_R_STORE_ERROR, "unknown action");
}

static void
cbop_free(cbop *o)
{
    if (o != NULL) {
        free(o->result);
        free(o->error);
        free(o);
    }
}

/* The answer's JSON: the message and what became of it. A heartbeat's
 * carries a fresh callback URL, good until the new lease ends, so a claim
 * kept alive longer than a token lives still has one. */
static size_t
answer_json(const cbop *o, char *out, size_t cap)
{
    char id[HP_ID_TEXT_LEN + 1], url[CALLBACK_URL_MAX + 1];
    hp_id_format(&o->t.id, id);
    int n = 0;
    switch (o->action) {
    case CB_COMPLETE:
        n = snprintf(out, cap, "{\"id\":\"%s\",\"state\":\"delivered\"}", id);
        break;
    case CB_FAIL:
        n = o->nack.dead
                ? snprintf(out, cap, "{\"id\":\"%s\",\"state\":\"dead\"}", id)
                : snprintf(out, cap,
                           "{\"id\":\"%s\",\"state\":\"pending\","
                           "\"retry_at_ms\":%llu}",
                           id, (unsigned long long)o->nack.retry_at_ms);
        break;
    case CB_HEARTBEAT: {
        uint64_t now = hp_clock_now_ms(o->cb->clock);
        uint64_t exp = o->lease_expires_at_ms + CALLBACK_EXPIRY_MARGIN_MS;
        if (exp > now + CALLBACK_EXPIRY_MAX_MS) {
            exp = now + CALLBACK_EXPIRY_MAX_MS;
        }
        callback_url(o->cb, &o->t.lane, &o->t.id, &o->t.token, exp, url);
        n = snprintf(out, cap,
                     "{\"id\":\"%s\",\"state\":\"claimed\","
                     "\"lease_expires_at_ms\":%llu,\"callback_url\":\"%s\"}",
                     id, (unsigned long long)o->lease_expires_at_ms, url);
        break;
    }
    }
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Writer thread: the outcome is durable; answer and free. */
static void
op_done(commitq_op *op, hp_code code, const hp_status *st)
{
    cbop *o = HP_CONTAINER_OF(op, cbop, op);
    char json[RESPONSE_MAX];
    if (code == HP_OK) {
        size_t n = answer_json(o, json, sizeof(json));
        o->done(o->arg, HP_OK, NULL, json, n);
    } else {
        o->done(o->arg, code, st, NULL, 0);
    }
    cbop_free(o);
}

/* ---- a callback arrives ----------------------------------------------------
 */

static hp_code
bad_callback(hp_status *st, const char *why)
{
    return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CALLBACK, "%s", why);
}

/* The decoded body into o: which action, and its fields (copied). */
static hp_code
take_body(const Hopper__V1__CallbackRequest *m, cbop *o, hp_status *st)
{
    size_t a = 0;
    while (a < HP_ARRAY_LEN(action_names) &&
           strcmp(m->action, action_names[a]) != 0) {
        a++;
    }
    if (a == HP_ARRAY_LEN(action_names)) {
        return bad_callback(st, "action must be complete, fail or heartbeat");
    }
    o->action = (cb_action)a;
    bool has_text = m->result[0] != '\0', has_bytes = m->result_base64.len > 0;
    bool complete_fields = has_text || has_bytes;
    bool fail_fields =
        m->error[0] != '\0' || m->retry_after_ms != 0 || m->dead_letter;
    if ((complete_fields && o->action != CB_COMPLETE) ||
        (fail_fields && o->action != CB_FAIL) ||
        (m->extend_ms != 0 && o->action != CB_HEARTBEAT)) {
        return bad_callback(st, "a field of another action was given");
    }
    if (has_text && has_bytes) {
        return bad_callback(st, "give result or result_base64, not both");
    }
    if (m->retry_after_ms != 0 && m->dead_letter) {
        /* as a Nack's keep_attempt and dead_letter: one must be ignored */
        return bad_callback(st, "give retry_after_ms or dead_letter, not both");
    }
    const void *res =
        has_text ? (const void *)m->result : m->result_base64.data;
    size_t res_len = has_text ? strlen(m->result) : m->result_base64.len;
    if (res_len > 0) {
        if ((o->result = malloc(res_len)) == NULL) {
            goto no_memory;
        }
        memcpy(o->result, res, res_len);
        o->result_len = res_len;
    }
    if (m->error[0] != '\0' && (o->error = strdup(m->error)) == NULL) {
        goto no_memory;
    }
    o->retry_after_ms = m->retry_after_ms;
    o->dead_letter = m->dead_letter;
    o->extend_ms = m->extend_ms;
    return HP_OK;
no_memory:
    return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                         "out of memory");
}

static hp_code
decode_body(const void *body, size_t len, cbop *o, hp_status *st)
{
    decode_budget budget;
    ProtobufCMessage *m = NULL;
    decode_budget_init(&budget, DECODE_LIMIT);
    hp_code code = pbjson_decode(&hopper__v1__callback_request__descriptor,
                                 len > 0 ? body : "{}", len > 0 ? len : 2,
                                 &budget.alloc, &m, st);
    if (code != HP_OK) {
        return code;
    }
    code = take_body((const Hopper__V1__CallbackRequest *)(void *)m, o, st);
    protobuf_c_message_free_unpacked(m, &budget.alloc);
    return code;
}

void
callback_handle(callback *cb, hp_str token, const void *body, size_t len,
                callback_done_fn done, void *arg)
{
    hp_status st;
    hp_code code;
    cbop *o = NULL;

    if (cb == NULL ||
        !atomic_load_explicit(&cb->started, memory_order_acquire)) {
        code = hp_status_set(&st, HP_UNAVAILABLE, HP_R_SHUTTING_DOWN,
                             "hopperd is not taking callbacks yet");
        goto refuse;
    }
    if ((o = calloc(1, sizeof(*o))) == NULL) {
        code = hp_status_set(&st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
        goto refuse;
    }
    o->cb = cb;
    o->done = done;
    o->arg = arg;
    o->op.apply = op_apply;
    o->op.done = op_done;
    if ((code = cbtoken_verify(cb->key, token, hp_clock_now_ms(cb->clock),
                               &o->t, &st)) != HP_OK ||
        (code = decode_body(body, len, o, &st)) != HP_OK ||
        (code = commitq_submit(cb->q, &o->op, &st)) != HP_OK) {
        goto refuse;
    }
    return; /* op_done answers */
refuse:
    cbop_free(o);
    done(arg, code, &st, NULL, 0);
}

void
callback_free(callback *cb)
{
    if (cb != NULL) {
        OPENSSL_cleanse(cb->key, sizeof(cb->key));
        free(cb);
    }
}
