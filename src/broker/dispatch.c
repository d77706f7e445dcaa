/*
 * dispatch.c - from request bytes to a call and on to its handler. Decodes
 * the envelope, finds the method in protobuf-c's service descriptor,
 * checks the token, decodes the body with that method's input type,
 * checks scope and deadline, and runs the handler: reads at once on the
 * I/O thread that read the request, in a read transaction; writes through
 * the commit queue, whose writer answers them once durable. A claim that
 * found nothing and may wait goes to the long-poll part.
 *
 * Mutating methods with a request id go through the replay cache: the
 * outcome is stored in the same transaction as the effect, and a repeat
 * is answered from it (see docs/protocol.md, "Retries").
 */
#include "broker/dispatch.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "broker/call.h"
#include "broker/svc.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/names.h"

#define METHOD_PREFIX    "/hopper.v1.Broker/"
#define DEFAULT_SCOPE    "default"
#define CLAIM_REPLAY_TAG 0x100u

#define P_PRODUCE AUTH_PERM_PRODUCE
#define P_CONSUME AUTH_PERM_CONSUME
#define P_ADMIN   AUTH_PERM_ADMIN

/* name, handler, writes, replayable, permission (docs/security.md; where
 * it names several, any one of them will do), needs scope "*"; the rest
 * is filled from the descriptor. */
static method_entry methods[] = {
    { "Enqueue", svc_enqueue, true, true, P_PRODUCE, false, 0, NULL, 0 },
    { "Claim", svc_claim, true, true, P_CONSUME, false, 0, NULL, 0 },
    { "Ack", svc_ack, true, true, P_CONSUME, false, 0, NULL, 0 },
    { "Nack", svc_nack, true, true, P_CONSUME, false, 0, NULL, 0 },
    { "Extend", svc_extend, true, true, P_CONSUME, false, 0, NULL, 0 },
    { "Get", svc_get, false, false, P_CONSUME, false, 0, NULL, 0 },
    { "List", svc_list, false, false, P_ADMIN, false, 0, NULL, 0 },
    { "Stats", svc_stats, false, false, P_ADMIN, false, 0, NULL, 0 },
    { "ListLanes", svc_list_lanes, false, false, P_ADMIN, false, 0, NULL, 0 },
    { "GetLane", svc_get_lane, false, false, P_ADMIN, false, 0, NULL, 0 },
    { "UpdateLane", svc_update_lane, true, true, P_ADMIN, false, 0, NULL, 0 },
    { "DeadList", svc_dead_list, false, false, P_ADMIN, false, 0, NULL, 0 },
    { "DeadReplay", svc_dead_replay, true, true, P_ADMIN, false, 0, NULL, 0 },
    { "DeadPurge", svc_dead_purge, true, true, P_ADMIN, false, 0, NULL, 0 },
    { "Ping", svc_ping, false, false, 0, false, 0, NULL, 0 },
    /* A read: the copy runs in its own read transaction, off the writer.
     * A backup holds every scope, so the token needs admin on "*". */
    { "Backup", svc_backup, false, false, P_ADMIN, true, 0, NULL, 0 },
    /* Through the writer, which settles messages (svc_await.c); for the
     * producer that waits for its reply or the worker that waits for a
     * follow-up, so either permission does. */
    { "Await", svc_await, true, false, P_PRODUCE | P_CONSUME, false, 0, NULL,
      0 },
    /* Not replayable: the replay cache would keep a hash of the request,
     * and so of the secret. A repeat is harmless anyway (store.h). */
    { "SetSecret", svc_set_secret, true, false, P_ADMIN, false, 0, NULL, 0 },
    /* A read: the POST runs on the delivery part's thread. */
    { "TestWebhook", svc_test_webhook, false, false, P_ADMIN, false, 0, NULL,
      0 },
};

struct dispatch {
    call_ctx ctx;
    auth_policy auth;
    const _Atomic bool *stopping;
    uint32_t default_deadline_ms;
};

/* The table is static and filled from the descriptor by the first
 * dispatch_new, before any request is read; another broker in the same
 * process (tests run several) finds it filled and writes nothing. */
static void
bind_methods(void)
{
    const ProtobufCServiceDescriptor *sd = &hopper__v1__broker__descriptor;
    for (size_t i = 0; i < HP_ARRAY_LEN(methods); i++) {
        if (methods[i].desc != NULL) {
            continue;
        }
        const ProtobufCMethodDescriptor *md =
            protobuf_c_service_descriptor_get_method_by_name(sd,
                                                             methods[i].name);
        HP_ASSERT(md != NULL);
        methods[i].index = i;
        methods[i].tag = (uint32_t)(md - sd->methods) + 1;
        methods[i].desc = md;
    }
}

size_t
dispatch_method_count(void)
{
    return HP_ARRAY_LEN(methods);
}

const char *
dispatch_method_name(size_t i)
{
    return i < HP_ARRAY_LEN(methods) ? methods[i].name : NULL;
}

static const method_entry *
find_method(const char *name)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(methods); i++) {
        if (strcmp(methods[i].name, name) == 0) {
            return &methods[i];
        }
    }
    return NULL;
}

/* protobuf-c keeps a string only up to its first NUL, so "a\0b" would
 * arrive as "a". Packing the decoded message again gives the very bytes
 * that arrived only if nothing was cut (lengths alone are not enough: a
 * negative enum sent short re-packs longer and could hide the cut bytes).
 * Any difference means a NUL, or an encoding no protobuf library emits,
 * and the request is refused rather than acted on with a shortened
 * name. */
static bool
decoded_whole(const ProtobufCMessage *m, const void *wire, size_t wire_len)
{
    if (protobuf_c_message_get_packed_size(m) != wire_len) {
        return false;
    }
    uint8_t small[512];
    uint8_t *buf = wire_len <= sizeof(small) ? small : malloc(wire_len);
    if (buf == NULL) {
        return false;
    }
    size_t n = protobuf_c_message_pack(m, buf);
    bool same = n == wire_len && (n == 0 || memcmp(buf, wire, n) == 0);
    if (buf != small) {
        free(buf);
    }
    return same;
}

/* Whether c goes through the replay cache. An Ack without follow-ups
 * does not need it: repeating a successful ack with the same token is
 * already OK and changes nothing (the store's own rule), so its entry
 * would only cost two page writes per commit (the entry and its expiry
 * key). A per-item Ack does: its answer lists each item's outcome, and
 * a repeat must give the first one back, even for an item whose message
 * was deleted since (a lane with retention 0 deletes it at the ack). */
static bool
replay_cached(const call *c)
{
    if (c->request_id.len == 0 || !c->m->replayable) {
        return false;
    }
    if (c->m->fn == svc_ack) {
        const Hopper__V1__AckRequest *req =
            (const Hopper__V1__AckRequest *)c->body;
        return req->n_followups > 0 || req->per_item;
    }
    return true;
}

/* Writer thread: runs the handler, with the replay cache around it. */
static hp_code
apply_write(commitq_op *op, store_txn *t, uint64_t now_ms, hp_status *st)
{
    call *c = call_of_op(op);
    hp_code code;

    free(c->resp);
    free(c->replay);
    c->resp = c->replay = NULL;
    c->resp_len = c->replay_len = 0;
    c->park = false;
    c->lc.claimed = 0;
    hp_arena_release(&c->arena);
    if (replay_cached(c)) {
        bool found;
        uint32_t tag;
        const void *data;
        size_t len;
        code = store_replay_get(t, c->scope, c->request_id, now_ms, &found,
                                &tag, &data, &len, st);
        if (code != HP_OK) {
            return code;
        }
        if (found) {
            if (tag == (c->m->tag | CLAIM_REPLAY_TAG)) {
                return svc_claim_replay(c, t, now_ms, data, len, st);
            }
            if (tag != c->m->tag) {
                return hp_status_set(st, HP_INVALID_ARGUMENT,
                                     HP_R_REQUEST_ID_REUSED,
                                     "request id was used for another "
                                     "method");
            }
            c->resp = malloc(len > 0 ? len : 1);
            if (c->resp == NULL) {
                return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                     "out of memory");
            }
            memcpy(c->resp, data, len);
            c->resp_len = len;
            return HP_OK;
        }
    }
    code = c->m->fn(c, t, now_ms, st);
    if (code != HP_OK || c->park || !replay_cached(c)) {
        return code;
    }
    uint64_t expires = now_ms + c->ctx->replay_window_ms;
    if (c->replay != NULL) {
        return store_replay_put(t, c->scope, c->request_id,
                                c->m->tag | CLAIM_REPLAY_TAG, c->replay,
                                c->replay_len, expires, st);
    }
    return store_replay_put(t, c->scope, c->request_id, c->m->tag, c->resp,
                            c->resp_len, expires, st);
}

static void
write_done(commitq_op *op, hp_code code, const hp_status *st)
{
    call_finish(call_of_op(op), code, st);
}

/* Runs c again through the writer: a claim that must look once more. */
static void
resubmit(call *c)
{
    hp_status st;
    if (commitq_submit(c->ctx->q, &c->op, &st) != HP_OK) {
        call_finish(c, st.code, &st);
    }
}

/* Parks c, compacted, through the long-poll part: an Await on its message,
 * a Claim on its lane. NULL, or c's op when it must run again at once. */
static commitq_op *
park(call *c)
{
    if (c->m->fn == svc_await) {
        const Hopper__V1__AwaitRequest *req =
            (const Hopper__V1__AwaitRequest *)c->body;
        hp_status st;
        hp_id id;
        hp_code parsed = svc_parse_id(req->id, &id, &st);
        HP_ASSERT(parsed == HP_OK); /* the handler did, before asking to park */
        return longpoll_park_await(c->ctx->lp, &c->lc, c->scope, &id,
                                   c->wait_until_mono_ms);
    }
    const Hopper__V1__ClaimRequest *req =
        (const Hopper__V1__ClaimRequest *)c->body;
    return longpoll_park(c->ctx->lp, &c->lc, c->scope, hp_str_c(req->lane),
                         c->wait_until_mono_ms);
}

/* Right after the commit: a claim or Await that found nothing parks now, rather
 * than after its group is durable, since nothing it did needs to be; it
 * must be in the table before the next group's enqueues look for it. */
static bool
write_committed(commitq_op *op, hp_code code, const hp_status *st)
{
    call *c = call_of_op(op);
    hp_status cst;
    (void)st;
    if (code != HP_OK || !c->park) {
        return false;
    }
    if (call_compact(c, &cst) != HP_OK) {
        call_finish(c, cst.code, &cst);
        return true;
    }
    if (park(c) != NULL) {
        resubmit(c);
    }
    return true;
}

static void
finish_read(void *arg)
{
    call *c = arg;
    hp_status st;
    hp_status_clear(&st);
    call_finish(c, HP_OK, &st);
}

static void
read_now(void *arg)
{
    call *c = arg;
    hp_status st;
    store_txn *t;
    uint64_t txn = 0;
    hp_code code = store_txn_begin(c->ctx->store, false, &t, &st);
    if (code == HP_OK) {
        code = c->m->fn(c, t, hp_clock_now_ms(c->ctx->clock), &st);
        txn = store_txn_id(t);
        store_txn_abort(t);
    }
    if (code == HP_OK && c->detach != NULL) {
        c->detach(c);
        return;
    }
    if (code == HP_OK && c->m->fn != svc_ping) {
        /* What it read may be a commit whose replies are still held until
         * it is on disk: its reply waits for the same. */
        code = commitq_after_durable(c->ctx->q, txn, finish_read, c, &st);
        if (code == HP_OK) {
            return;
        }
    }
    call_finish(c, code, &st);
}

/* A read must see every write its client (or any client) was told is
 * done: with batched commits it waits for the batch to be published. */
static void
run_read(call *c)
{
    hp_status st;
    if (commitq_when_visible(c->ctx->q, read_now, c, &st) != HP_OK) {
        call_finish(c, st.code, &st);
    }
}

static hp_code
bad_envelope(hp_status *st, const char *what)
{
    return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_ENVELOPE, "%s",
                         what);
}

/* A method that takes any one of its permissions: the first the token
 * has in the scope, else why not. */
static hp_code
allow_any(const auth_grant *g, const call *c, hp_status *st)
{
    hp_code code = HP_OK;
    for (unsigned bit = 1; bit <= AUTH_PERM_ALL; bit <<= 1) {
        if ((c->m->perm & bit) != 0 &&
            (code = auth_allow(g, c->scope, (uint8_t)bit, st)) == HP_OK) {
            return HP_OK;
        }
    }
    if (st->reason == HP_R_NO_PERMISSION) {
        char want[32];
        auth_format_perms(c->m->perm, want, sizeof(want));
        code = hp_status_set(st, HP_PERMISSION_DENIED, HP_R_NO_PERMISSION,
                             "token has none of the '%s' permissions (%s "
                             "needs one of them)",
                             want, c->m->name);
    }
    return code;
}

/* Checks the token against the method's permission and the scope, on the
 * envelope alone, before the body is decoded. Without keys every request
 * is anonymous and allowed (hopperd refuses to start without keys on a
 * non-local listener unless told to). Ping needs no permission, but a
 * token it carries must still be valid. */
static hp_code
authorize(dispatch *d, call *c, hp_status *st)
{
    hp_str token = hp_str_c(c->env->token);
    auth_grant g;
    hp_code code;

    if (!d->auth.required || (c->m->perm == 0 && token.len == 0)) {
        return HP_OK;
    }
    if (token.len == 0) {
        return hp_status_set(st, HP_UNAUTHENTICATED, HP_R_NO_TOKEN,
                             "this broker needs a token");
    }
    code = auth_verify(&d->auth.keys, token, hp_clock_now_ms(c->ctx->clock), &g,
                       st);
    if (code != HP_OK) {
        hp_log(HP_LOG_WARN, "auth failed", "method=%s scope=%.*s reason=%s",
               c->m->name, (int)c->scope.len, c->scope.p, st->reason);
        return code;
    }
    if (c->m->perm == 0) {
        return HP_OK;
    }
    /* Where the method names several permissions, any one will do. */
    code = (c->m->perm & (c->m->perm - 1)) != 0
               ? allow_any(&g, c, st)
               : auth_allow(&g, c->scope, c->m->perm, st);
    if (code == HP_OK && c->m->all_scopes &&
        (code = auth_allow(&g, hp_str_c("*"), c->m->perm, st)) != HP_OK) {
        code = hp_status_set(st, HP_PERMISSION_DENIED, HP_R_NEEDS_ALL_SCOPES,
                             "%s covers every scope: the token needs this "
                             "permission on scope \"*\"",
                             c->m->name);
    }
    if (code != HP_OK) {
        hp_log(HP_LOG_WARN, "permission denied",
               "method=%s scope=%.*s key=%s reason=%s", c->m->name,
               (int)c->scope.len, c->scope.p, g.key_id, st->reason);
    }
    return code;
}

/* Fills c from the envelope; the reply on failure is the caller's. */
static hp_code
admit(dispatch *d, call *c, const void *req, size_t len, hp_status *st)
{
    hp_code code;
    decode_budget_init(&c->budget, decode_budget_limit(d->ctx.max_frame));
    c->env = hopper__v1__request__unpack(&c->budget.alloc, len, req);
    if (c->env == NULL) {
        return c->budget.exceeded
                   ? hp_status_set(st, HP_RESOURCE_EXHAUSTED,
                                   HP_R_DECODE_BUDGET,
                                   "request needs too much memory to decode")
                   : bad_envelope(st, "request is not a hopper.v1.Request");
    }
    if (!decoded_whole(&c->env->base, req, len)) {
        return bad_envelope(st, "envelope holds a NUL byte in a string "
                                "(or is not canonically encoded)");
    }
    if (!hp_utf8_valid(c->env->request_id, strlen(c->env->request_id))) {
        return bad_envelope(st, "request_id is not UTF-8");
    }
    if (strlen(c->env->request_id) > STORE_REQUEST_ID_MAX) {
        return bad_envelope(st, "request_id is over 128 bytes");
    }
    c->request_id = hp_str_c(c->env->request_id);
    const char *method = c->env->method;
    if (strncmp(method, METHOD_PREFIX, strlen(METHOD_PREFIX)) != 0 ||
        (c->m = find_method(method + strlen(METHOD_PREFIX))) == NULL) {
        /* Quoted up to 64 bytes, cut where a character would be. */
        size_t n = hp_utf8_prefix(method, strnlen(method, 64));
        return hp_status_set(st, HP_UNIMPLEMENTED, HP_R_UNKNOWN_METHOD,
                             "unknown method '%.*s'%s", (int)n, method,
                             method[n] != '\0' ? " (cut)" : "");
    }
    c->scope = hp_str_c(c->env->scope);
    if (c->scope.len == 0) {
        c->scope = HP_S(DEFAULT_SCOPE);
    }
    if ((code = hp_name_check(c->scope, "scope", st)) != HP_OK ||
        (code = authorize(d, c, st)) != HP_OK) {
        return code;
    }
    c->body = protobuf_c_message_unpack(c->m->desc->input, &c->budget.alloc,
                                        c->env->body.len, c->env->body.data);
    if (c->body == NULL) {
        if (c->budget.exceeded) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_DECODE_BUDGET,
                                 "request body needs too much memory to "
                                 "decode");
        }
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_BODY,
                             "body is not a %s", c->m->desc->input->name);
    }
    if (!decoded_whole(c->body, c->env->body.data, c->env->body.len)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_NUL_IN_STRING,
                             "a string in the %s holds a NUL byte (or the "
                             "body is not canonically encoded); refused, "
                             "not shortened",
                             c->m->desc->input->name);
    }
    uint32_t dl =
        c->env->deadline_ms != 0 ? c->env->deadline_ms : d->default_deadline_ms;
    c->op.deadline_mono_ms = c->arrival_mono_ms + dl;
    if (atomic_load(d->stopping)) {
        return hp_status_set(st, HP_UNAVAILABLE, HP_R_SHUTTING_DOWN,
                             "broker is shutting down");
    }
    return HP_OK;
}

void
dispatch_request(dispatch *d, const listener_req *r, const void *req,
                 size_t len)
{
    hp_status st;
    call *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        /* No memory for even the call: an empty reply frees the slot. */
        hp_log(HP_LOG_ERROR, "cannot allocate a request", "bytes=%zu", len);
        listener_reply(r, NULL, 0);
        return;
    }
    c->ctx = &d->ctx;
    c->rq = *r;
    c->op.apply = apply_write;
    c->op.done = write_done;
    c->op.committed = write_committed;
    c->lc.op = &c->op;
    c->lc.rq = &c->rq;
    c->arrival_us = hp_mono_us(); /* one clock read serves both */
    c->arrival_mono_ms = c->arrival_us / 1000;
    hp_arena_init(&c->arena);
    hp_code code = admit(d, c, req, len, &st);
    if (code != HP_OK) {
        call_finish(c, code, &st);
        return;
    }
    if (!c->m->write) {
        run_read(c);
        return;
    }
    if ((code = commitq_submit_or_run(d->ctx.q, &c->op, &st)) != HP_OK) {
        call_finish(c, code, &st);
    }
}

hp_code
dispatch_new(const dispatch_opts *o, dispatch **out, hp_status *st)
{
    dispatch *d = calloc(1, sizeof(*d));
    uint8_t inst[16];

    if (d == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    bind_methods();
    d->ctx = o->ctx;
    store_get_instance(o->ctx.store, inst);
    hp_hex_encode(inst, sizeof(inst), d->ctx.instance);
    d->ctx.anonymous_exposed = o->auth->anonymous_exposed;
    d->auth = *o->auth;
    d->stopping = o->stopping;
    d->default_deadline_ms = o->default_deadline_ms;
    *out = d;
    return HP_OK;
}

void
dispatch_free(dispatch *d)
{
    if (d == NULL) {
        return;
    }
    OPENSSL_cleanse(&d->auth, sizeof(d->auth));
    free(d);
}
