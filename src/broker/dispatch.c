/*
 * dispatch.c - from request bytes to an answer. Decodes the envelope,
 * finds the method in protobuf-c's service descriptor, decodes the body
 * with that method's input type, checks scope and deadline, and runs the
 * handler: reads at once on the I/O thread that read the request, in a
 * read transaction; writes through the commit queue, whose writer sends
 * their replies. Every request gets exactly one Response, also
 * when it cannot be decoded at all.
 *
 * Mutating methods with a request id go through the replay cache: the
 * outcome is stored in the same nested transaction as the effect, and a
 * repeat is answered from it (see docs/protocol.md, "Retries").
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/log.h"

#define METHOD_PREFIX    "/hopper.v1.Broker/"
#define DEFAULT_SCOPE    "default"
#define CLAIM_REPLAY_TAG 0x100u

#define P_PRODUCE AUTH_PERM_PRODUCE
#define P_CONSUME AUTH_PERM_CONSUME
#define P_ADMIN   AUTH_PERM_ADMIN

/* name, handler, writes, replayable, permission (docs/security.md), the
 * two filled from the descriptor, needs scope "*", any one permission
 * will do. */
static method_entry methods[] = {
    { "Enqueue", svc_enqueue, true, true, P_PRODUCE, NULL, 0, false, false },
    { "Claim", svc_claim, true, true, P_CONSUME, NULL, 0, false, false },
    { "Ack", svc_ack, true, true, P_CONSUME, NULL, 0, false, false },
    { "Nack", svc_nack, true, true, P_CONSUME, NULL, 0, false, false },
    { "Extend", svc_extend, true, true, P_CONSUME, NULL, 0, false, false },
    { "Get", svc_get, false, false, P_CONSUME, NULL, 0, false, false },
    { "List", svc_list, false, false, P_ADMIN, NULL, 0, false, false },
    { "Stats", svc_stats, false, false, P_ADMIN, NULL, 0, false, false },
    { "ListLanes", svc_list_lanes, false, false, P_ADMIN, NULL, 0, false,
      false },
    { "GetLane", svc_get_lane, false, false, P_ADMIN, NULL, 0, false, false },
    { "UpdateLane", svc_update_lane, true, true, P_ADMIN, NULL, 0, false,
      false },
    { "DeadList", svc_dead_list, false, false, P_ADMIN, NULL, 0, false, false },
    { "DeadReplay", svc_dead_replay, true, true, P_ADMIN, NULL, 0, false,
      false },
    { "DeadPurge", svc_dead_purge, true, true, P_ADMIN, NULL, 0, false, false },
    { "Ping", svc_ping, false, false, 0, NULL, 0, false, false },
    /* A read: the copy runs in its own read transaction, off the writer.
     * A backup holds every scope, so the token needs admin on "*". */
    { "Backup", svc_backup, false, false, P_ADMIN, NULL, 0, true, false },
    /* Through the writer, which settles messages (svc_await.c); for the
     * producer that waits for its reply or the worker that waits for a
     * follow-up, so either permission does. */
    { "Await", svc_await, true, false, P_PRODUCE | P_CONSUME, NULL, 0, false,
      true },
};

/* The table is static and filled from the descriptor the first time; the
 * descriptor itself is constant, so concurrent fills write the same
 * values. */
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

const method_entry *
dispatch_method(const char *name)
{
    bind_methods();
    for (size_t i = 0; i < HP_ARRAY_LEN(methods); i++) {
        if (strcmp(methods[i].name, name) == 0) {
            return &methods[i];
        }
    }
    return NULL;
}

/* Each block carries its size in front, so free can give it back to the
 * budget. */
typedef union budget_hdr {
    size_t size;
    max_align_t align;
} budget_hdr;

static void *
budget_alloc(void *data, size_t size)
{
    decode_budget *b = data;
    if (size > b->limit - b->used || size > SIZE_MAX - sizeof(budget_hdr)) {
        b->exceeded = true;
        return NULL;
    }
    budget_hdr *h = malloc(sizeof(budget_hdr) + size);
    if (h == NULL) {
        return NULL;
    }
    h->size = size;
    b->used += size;
    return h + 1;
}

static void
budget_free(void *data, void *p)
{
    decode_budget *b = data;
    if (p != NULL) {
        budget_hdr *h = (budget_hdr *)p - 1;
        b->used -= h->size;
        free(h);
    }
}

void
dispatch_budget_init(decode_budget *b, size_t limit)
{
    b->alloc.alloc = budget_alloc;
    b->alloc.free = budget_free;
    b->alloc.allocator_data = b;
    b->used = 0;
    b->limit = limit;
    b->exceeded = false;
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

/* A parked claim's own copy of what it needs: the request's fields, the
 * scope and the request id, in one block. */
struct parked_claim {
    Hopper__V1__ClaimRequest req;
    char buf[]; /* lane, target, consumer, scope, request id */
};

char *
dispatch_copy_str(char **at, const char *s, size_t len)
{
    char *p = *at;
    memcpy(p, s, len);
    p[len] = '\0';
    *at += len + 1;
    return p;
}

hp_code
dispatch_compact(call *c, hp_status *st)
{
    if (c->parked != NULL) {
        return HP_OK; /* parked before */
    }
    const Hopper__V1__ClaimRequest *req =
        (const Hopper__V1__ClaimRequest *)c->body;
    size_t lane = strlen(req->lane), target = strlen(req->target),
           consumer = strlen(req->consumer);
    struct parked_claim *p = malloc(sizeof(*p) + lane + target + consumer +
                                    c->scope.len + c->request_id.len + 5);
    if (p == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    char *at = p->buf;
    hopper__v1__claim_request__init(&p->req);
    p->req.lane = dispatch_copy_str(&at, req->lane, lane);
    p->req.target = dispatch_copy_str(&at, req->target, target);
    p->req.consumer = dispatch_copy_str(&at, req->consumer, consumer);
    p->req.untargeted_only = req->untargeted_only;
    p->req.max = req->max;
    p->req.lease_ms = req->lease_ms;
    p->req.wait_ms = req->wait_ms;
    c->scope.p = dispatch_copy_str(&at, c->scope.p, c->scope.len);
    c->request_id.p =
        dispatch_copy_str(&at, c->request_id.p, c->request_id.len);
    /* Whatever else the client sent (unknown fields, a padded envelope)
     * goes now, not after the wait. */
    protobuf_c_message_free_unpacked(c->body, &c->budget.alloc);
    hopper__v1__request__free_unpacked(c->env, &c->budget.alloc);
    c->env = NULL;
    c->body = &p->req.base;
    c->parked = p;
    return HP_OK;
}

static void
call_free(call *c)
{
    if (c->parked != NULL) {
        free(c->parked);
    } else if (c->body != NULL) {
        protobuf_c_message_free_unpacked(c->body, &c->budget.alloc);
    }
    if (c->env != NULL) {
        hopper__v1__request__free_unpacked(c->env, &c->budget.alloc);
    }
    hp_arena_release(&c->arena);
    free(c->resp);
    free(c->replay);
    free(c);
}

/* Sends the Response for c (status code/st, body c->resp when OK) and
 * frees c. */
void
dispatch_finish(call *c, hp_code code, const hp_status *st)
{
    Hopper__V1__Response resp = HOPPER__V1__RESPONSE__INIT;
    Hopper__V1__Status status = HOPPER__V1__STATUS__INIT;
    uint8_t small[256];

    char msg[sizeof(st->msg)];
    char rid[STORE_REQUEST_ID_MAX + 1];

    status.code = (uint32_t)code;
    if (code != HP_OK) {
        /* A message may quote what the client sent; protobuf's string
         * fields must be UTF-8, so it is cut before any byte that is not. */
        size_t n = hp_utf8_prefix(st->msg, strlen(st->msg));
        memcpy(msg, st->msg, n);
        msg[n] = '\0';
        status.message = msg;
        status.reason = (char *)(uintptr_t)(st->reason ? st->reason : "");
    } else if (c->resp != NULL) {
        resp.body.data = c->resp;
        resp.body.len = c->resp_len;
    }
    resp.status = &status;
    /* Only an id that passed its checks is echoed (c->request_id is set
     * once it has). */
    if (c->request_id.len > 0 && c->request_id.len < sizeof(rid)) {
        memcpy(rid, c->request_id.p, c->request_id.len);
        rid[c->request_id.len] = '\0';
        resp.request_id = rid;
    }
    size_t len = hopper__v1__response__get_packed_size(&resp);
    uint8_t *buf = len <= sizeof(small) ? small : malloc(len);
    if (buf == NULL) {
        hp_log(HP_LOG_ERROR, "cannot allocate a reply", "bytes=%zu", len);
    } else {
        hopper__v1__response__pack(&resp, buf);
    }
    /* Without memory for the reply an empty one still goes out: it frees
     * the request's slot, and the client reports a reply it cannot
     * decode rather than waiting for its timeout. */
    listener_reply(&c->rq, buf, buf != NULL ? len : 0);
    if (buf != small) {
        free(buf);
    }
    if (code != HP_OK && code != HP_NOT_FOUND &&
        code != HP_FAILED_PRECONDITION) {
        hp_log(HP_LOG_DEBUG, "request failed", "method=%s code=%s reason=%s",
               c->m != NULL ? c->m->name : "-", hp_code_name(code),
               st->reason ? st->reason : "");
    }
    metrics_request(&c->b->metrics,
                    c->m != NULL ? (size_t)(c->m - methods) : SIZE_MAX, code,
                    hp_mono_us() - c->arrival_us);
    call_free(c);
}

/* Answers a request that never became a call of a known method. */
static void
finish_early(call *c, hp_code code, const hp_status *st)
{
    dispatch_finish(c, code, st);
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
    call *c = (call *)op;
    hp_code code;

    free(c->resp);
    free(c->replay);
    c->resp = c->replay = NULL;
    c->resp_len = c->replay_len = 0;
    c->park = false;
    c->claimed = 0;
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
                                     "REQUEST_ID_REUSED",
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
    uint64_t expires = now_ms + c->b->cfg.replay_window_ms;
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
    dispatch_finish((call *)op, code, st);
}

/* Right after the commit: a claim that found nothing parks now, rather
 * than after its group is durable, since nothing it did needs to be; it
 * must be in the table before the next group's enqueues look for it. */
static bool
write_committed(commitq_op *op, hp_code code, const hp_status *st)
{
    call *c = (call *)op;
    (void)st;
    if (code != HP_OK || !c->park) {
        return false;
    }
    if (c->m->fn == svc_await) {
        svc_await_park(c);
    } else {
        broker_park(c);
    }
    return true;
}

hp_code
dispatch_resubmit(call *c, hp_status *st)
{
    c->op.deadline_mono_ms = 0; /* already admitted once */
    return commitq_submit(c->b->q, &c->op, st);
}

static void
finish_read(void *arg)
{
    call *c = arg;
    hp_status st;
    hp_status_clear(&st);
    dispatch_finish(c, HP_OK, &st);
}

static void
run_read(call *c)
{
    hp_status st;
    store_txn *t;
    uint64_t txn = 0;
    hp_code code = store_txn_begin(c->b->store, NULL, false, &t, &st);
    if (code == HP_OK) {
        code = c->m->fn(c, t, hp_clock_now_ms(&c->b->clock), &st);
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
        code = commitq_after_durable(c->b->q, txn, finish_read, c, &st);
        if (code == HP_OK) {
            return;
        }
    }
    dispatch_finish(c, code, &st);
}

static hp_code
bad_envelope(hp_status *st, const char *what)
{
    return hp_status_set(st, HP_INVALID_ARGUMENT, "BAD_ENVELOPE", "%s", what);
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
    if (strcmp(st->reason, "NO_PERMISSION") == 0) {
        char want[32];
        auth_format_perms(c->m->perm, want, sizeof(want));
        code = hp_status_set(st, HP_PERMISSION_DENIED, "NO_PERMISSION",
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
authorize(call *c, hp_status *st)
{
    broker *b = c->b;
    hp_str token = hp_str_c(c->env->token);
    auth_grant g;
    hp_code code;

    if (!b->auth || (c->m->perm == 0 && token.len == 0)) {
        return HP_OK;
    }
    if (token.len == 0) {
        return hp_status_set(st, HP_UNAUTHENTICATED, "NO_TOKEN",
                             "this broker needs a token");
    }
    code = auth_verify(&b->keys, token, hp_clock_now_ms(&b->clock), &g, st);
    if (code != HP_OK) {
        hp_log(HP_LOG_WARN, "auth failed", "method=%s scope=%.*s reason=%s",
               c->m->name, (int)c->scope.len, c->scope.p, st->reason);
        return code;
    }
    if (c->m->perm == 0) {
        return HP_OK;
    }
    code = c->m->perm_any ? allow_any(&g, c, st)
                          : auth_allow(&g, c->scope, c->m->perm, st);
    if (code == HP_OK && c->m->all_scopes &&
        (code = auth_allow(&g, hp_str_c("*"), c->m->perm, st)) != HP_OK) {
        code = hp_status_set(st, HP_PERMISSION_DENIED, "NEEDS_ALL_SCOPES",
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
admit(call *c, const void *req, size_t len, hp_status *st)
{
    broker *b = c->b;
    hp_code code;
    dispatch_budget_init(&c->budget, dispatch_decode_limit(b->cfg.max_frame));
    c->env = hopper__v1__request__unpack(&c->budget.alloc, len, req);
    if (c->env == NULL) {
        return c->budget.exceeded
                   ? hp_status_set(st, HP_RESOURCE_EXHAUSTED, "DECODE_BUDGET",
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
        (c->m = dispatch_method(method + strlen(METHOD_PREFIX))) == NULL) {
        /* Quoted up to 64 bytes, cut where a character would be. */
        size_t n = hp_utf8_prefix(method, strnlen(method, 64));
        return hp_status_set(st, HP_UNIMPLEMENTED, "UNKNOWN_METHOD",
                             "unknown method '%.*s'%s", (int)n, method,
                             method[n] != '\0' ? " (cut)" : "");
    }
    c->scope = hp_str_c(c->env->scope);
    if (c->scope.len == 0) {
        c->scope = HP_S(DEFAULT_SCOPE);
    }
    if (!hp_name_valid(c->scope.p, c->scope.len)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME,
                             "scope name must be 1-64 of [A-Za-z0-9._:-]");
    }
    if ((code = authorize(c, st)) != HP_OK) {
        return code;
    }
    c->body = protobuf_c_message_unpack(c->m->desc->input, &c->budget.alloc,
                                        c->env->body.len, c->env->body.data);
    if (c->body == NULL) {
        if (c->budget.exceeded) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, "DECODE_BUDGET",
                                 "request body needs too much memory to "
                                 "decode");
        }
        return hp_status_set(st, HP_INVALID_ARGUMENT, "BAD_BODY",
                             "body is not a %s", c->m->desc->input->name);
    }
    if (!decoded_whole(c->body, c->env->body.data, c->env->body.len)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_NUL_IN_STRING,
                             "a string in the %s holds a NUL byte (or the "
                             "body is not canonically encoded); refused, "
                             "not shortened",
                             c->m->desc->input->name);
    }
    uint32_t dl = c->env->deadline_ms != 0 ? c->env->deadline_ms
                                           : b->cfg.default_deadline_ms;
    c->op.deadline_mono_ms = c->arrival_mono_ms + dl;
    if (atomic_load(&b->stopping)) {
        return hp_status_set(st, HP_UNAVAILABLE, "SHUTTING_DOWN",
                             "broker is shutting down");
    }
    return HP_OK;
}

void
dispatch_request(void *arg, const listener_req *r, const void *req, size_t len)
{
    broker *b = arg;
    hp_status st;
    call *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        /* No memory for even the call: an empty reply frees the slot. */
        hp_log(HP_LOG_ERROR, "cannot allocate a request", "bytes=%zu", len);
        listener_reply(r, NULL, 0);
        return;
    }
    c->b = b;
    c->rq = *r;
    c->arrival_us = hp_mono_us(); /* one clock read serves both */
    c->arrival_mono_ms = c->arrival_us / 1000;
    hp_arena_init(&c->arena);
    hp_code code = admit(c, req, len, &st);
    if (code != HP_OK) {
        finish_early(c, code, &st);
        return;
    }
    if (!c->m->write) {
        run_read(c);
        return;
    }
    c->op.apply = apply_write;
    c->op.done = write_done;
    c->op.committed = write_committed;
    if ((code = commitq_submit(b->q, &c->op, &st)) != HP_OK) {
        dispatch_finish(c, code, &st);
    }
}
