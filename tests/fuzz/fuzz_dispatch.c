/*
 * fuzz_dispatch.c - libFuzzer target for the broker's request path:
 * envelope decode, method lookup, authorization, body decode and the
 * handlers, against two in-process brokers on temp stores (sync none) over
 * loopback TCP. One broker is anonymous, the other loads a key file, so the
 * token checks run too. NNG and protobuf-c are not instrumented; the
 * coverage the fuzzer learns from is our own dispatch and svc_ code.
 *
 * The brokers keep their state from one input to the next (that is how
 * Claim finds what Enqueue wrote), and are replaced by fresh ones every
 * RESTART_EVERY inputs so the stores stay small. A crash may therefore
 * need the inputs before it; the crash input alone usually suffices.
 *
 * Input (structure-aware, so most inputs reach a handler):
 *   byte 0   bits 0-1 mode, bit 7 send to the broker with keys
 *            mode 0: the rest is the whole request, raw bytes
 *            mode 1: the harness builds the envelope, the rest is the body
 *            mode 2: the harness builds envelope and body from the rest
 *            mode 3: as 1, with scope, request_id and token from the input
 *   byte 1   method: 0-14 the Broker rpcs in broker.proto order, 15 an
 *            unknown one, 16 a method string from the input
 *   byte 2   bits 0-1 scope ("", acme, other, an invalid name), bit 2 a
 *            request id, bits 3-4 deadline (default, 1 ms, from input,
 *            default), bits 5-6 token (none, valid, expired or unknown
 *            key, damaged)
 *   then the values those choices need, then the body.
 *
 * Invariants checked on every reply: one arrives within RECV_TIMEOUT_MS,
 * decodes as hopper.v1.Response, has a status with a gRPC code that is
 * not INTERNAL or DATA_LOSS, carries no body unless OK, echoes the request
 * id, never echoes a token, and when OK carries a body that decodes as the
 * method's output type. For envelopes the harness built, the broker with
 * keys must answer UNAUTHENTICATED or PERMISSION_DENIED exactly when
 * docs/security.md says so, and the anonymous broker never does. No reply
 * may carry a message id the harness saw created in another scope.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "common/clock.h"
#include "common/id.h"
#include "common/log.h"
#include "common/names.h"
#include "fuzz_input.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"

#define RECV_TIMEOUT_MS 10000
#define MAX_WAIT_MS     50 /* the brokers' long-poll cap, to keep runs fast */
#define RESTART_EVERY   20000
#define RING            64
#define SCRATCH_BYTES   (256u << 10)
#define METHOD_PREFIX   "/hopper.v1.Broker/"
#define FAKE_ID         "01ARZ3NDEKTSV4RRFFQ69G5FAV"

#define S(lit) ((char *)(uintptr_t)(lit))

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    M_ENQUEUE,
    M_CLAIM,
    M_ACK,
    M_NACK,
    M_EXTEND,
    M_GET,
    M_LIST,
    M_STATS,
    M_LIST_LANES,
    M_GET_LANE,
    M_UPDATE_LANE,
    M_DEAD_LIST,
    M_DEAD_REPLAY,
    M_DEAD_PURGE,
    M_PING,
    M_BACKUP,
    M_COUNT,
    M_UNKNOWN = M_COUNT,
    M_FROM_INPUT,
};

/* Name and the permission a token needs (dispatch.c, docs/security.md). */
static const struct {
    const char *name;
    uint8_t perm;
} methods[M_COUNT] = {
    { "Enqueue", AUTH_PERM_PRODUCE },
    { "Claim", AUTH_PERM_CONSUME },
    { "Ack", AUTH_PERM_CONSUME },
    { "Nack", AUTH_PERM_CONSUME },
    { "Extend", AUTH_PERM_CONSUME },
    { "Get", AUTH_PERM_CONSUME },
    { "List", AUTH_PERM_ADMIN },
    { "Stats", AUTH_PERM_ADMIN },
    { "ListLanes", AUTH_PERM_ADMIN },
    { "GetLane", AUTH_PERM_ADMIN },
    { "UpdateLane", AUTH_PERM_ADMIN },
    { "DeadList", AUTH_PERM_ADMIN },
    { "DeadReplay", AUTH_PERM_ADMIN },
    { "DeadPurge", AUTH_PERM_ADMIN },
    { "Ping", 0 },
    { "Backup", AUTH_PERM_ADMIN }, /* on scope "*": see the oracle */
};

enum {
    TOK_NONE,
    TOK_VALID,
    TOK_REFUSED,
    TOK_DAMAGED
};

typedef struct target {
    broker *b;
    nng_socket sock;
    char url[64];
    char dir[128];
} target;

/* A message id and where the harness saw it created. */
typedef struct owned_id {
    uint8_t target;
    char scope[HP_NAME_MAX + 1];
    char id[HP_ID_TEXT_LEN + 1];
} owned_id;

typedef struct claim_ref {
    char id[HP_ID_TEXT_LEN + 1];
    uint8_t token[16];
    size_t token_len;
} claim_ref;

/* GLOBAL: libFuzzer calls the target as a function, so what lives from
 * one input to the next (the brokers, what they answered) lives here. */
static struct {
    char dir[64];
    char keyfile[128];
    target t[2]; /* 0: anonymous, 1: with keys */
    auth_keyset keys;
    auth_keyset stranger; /* a key the brokers do not have */
    unsigned long runs;
    owned_id ids[RING];
    size_t n_ids;
    claim_ref claims[RING];
    size_t n_claims;
    uint8_t cursor[RING][128];
    size_t cursor_len[RING];
    size_t n_cursors;
    uint8_t *scratch;
    size_t scratch_used;
} F;

/* ---- scratch memory: reset for every input ------------------------------ */

static void *
sa(size_t n)
{
    size_t at = (F.scratch_used + 15u) & ~(size_t)15u;
    FUZZ_CHECK(at + n <= SCRATCH_BYTES, "harness scratch exhausted");
    F.scratch_used = at + n;
    memset(F.scratch + at, 0, n);
    return F.scratch + at;
}

/* Up to max bytes of the input as a NUL-terminated string (an embedded NUL
 * just ends it early: packing stops there). */
static char *
fstr(fuzz_in *in, size_t max)
{
    size_t n;
    const uint8_t *p = fuzz_bytes(in, max, &n);
    char *s = sa(n + 1);
    if (n > 0) {
        memcpy(s, p, n);
    }
    return s;
}

static ProtobufCBinaryData
fblob(fuzz_in *in, size_t max)
{
    ProtobufCBinaryData b = { 0, NULL };
    size_t n;
    const uint8_t *p = fuzz_bytes(in, max, &n);
    b.data = sa(n + 1);
    if (n > 0) {
        memcpy(b.data, p, n);
    }
    b.len = n;
    return b;
}

/* One of vals, or (one time in n + 1) a value from the input. */
static uint32_t
pick_u32(fuzz_in *in, const uint32_t *vals, size_t n)
{
    size_t k = fuzz_u8(in) % (n + 1);
    return k < n ? vals[k] : fuzz_u32(in);
}

static uint64_t
pick_u64(fuzz_in *in, const uint64_t *vals, size_t n)
{
    size_t k = fuzz_u8(in) % (n + 1);
    return k < n ? vals[k] : fuzz_u64(in);
}

#define PICK32(in, ...)                             \
    pick_u32(in, (const uint32_t[]){ __VA_ARGS__ }, \
             sizeof((const uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))
#define PICK64(in, ...)                             \
    pick_u64(in, (const uint64_t[]){ __VA_ARGS__ }, \
             sizeof((const uint64_t[]){ __VA_ARGS__ }) / sizeof(uint64_t))

/* ---- the brokers --------------------------------------------------------- */

static void
start_target(size_t i)
{
    target *t = &F.t[i];
    broker_config cfg;
    hp_status st;

    snprintf(t->dir, sizeof(t->dir), "%s/%s-%lu", F.dir,
             i == 0 ? "open" : "keys", F.runs);
    FUZZ_CHECK(mkdir(t->dir, 0700) == 0, "cannot create %s", t->dir);
    /* Over loopback TCP, so every input also goes through the listener's
     * frame reader, with NNG as the client as any program would be. */
    snprintf(t->url, sizeof(t->url), "tcp://127.0.0.1:0");
    broker_config_init(&cfg);
    cfg.listen[0] = t->url;
    cfg.n_listen = 1;
    cfg.data_dir = t->dir;
    cfg.sync = STORE_SYNC_NONE;
    cfg.max_map_size = (size_t)1 << 30;
    cfg.max_wait_ms = MAX_WAIT_MS;
    cfg.auth_keys = i == 1 ? F.keyfile : NULL;
    hp_code code = broker_start(&cfg, &t->b, &st);
    FUZZ_CHECK(code == HP_OK, "broker_start: %s", st.msg);
    FUZZ_CHECK(nng_req0_open(&t->sock) == 0, "nng_req0_open");
    FUZZ_CHECK(nng_socket_set_ms(t->sock, NNG_OPT_RECVTIMEO, RECV_TIMEOUT_MS) ==
                   0,
               "recv timeout");
    FUZZ_CHECK(nng_socket_set_ms(t->sock, NNG_OPT_SENDTIMEO, RECV_TIMEOUT_MS) ==
                   0,
               "send timeout");
    snprintf(t->url, sizeof(t->url), "%s", broker_bound_url(t->b, 0));
    FUZZ_CHECK(nng_dial(t->sock, t->url, NULL, 0) == 0, "nng_dial %s", t->url);
}

static void
stop_target(size_t i)
{
    target *t = &F.t[i];
    char cmd[192];
    if (t->b == NULL) {
        return;
    }
    nng_close(t->sock);
    broker_stop(t->b);
    t->b = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    int rc = system(cmd); /* best effort: a leftover is only disk */
    (void)rc;
}

static void
cleanup(void)
{
    char cmd[128];
    stop_target(0);
    stop_target(1);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", F.dir);
    int rc = system(cmd); /* best effort, as above */
    (void)rc;
    free(F.scratch);
}

static void
write_key_file(void)
{
    static const char id[] = "fuzz1";
    FILE *f;
    snprintf(F.keyfile, sizeof(F.keyfile), "%s/keys", F.dir);
    f = fopen(F.keyfile, "w");
    FUZZ_CHECK(f != NULL, "cannot write %s", F.keyfile);
    FUZZ_CHECK(chmod(F.keyfile, 0600) == 0, "chmod");
    fprintf(f, "hopper-key %s ", id);
    for (int i = 0; i < AUTH_KEY_LEN; i++) {
        fprintf(f, "%02x", (unsigned)(0x21 + 3 * i) & 0xffu);
    }
    fputc('\n', f);
    FUZZ_CHECK(fclose(f) == 0, "close %s", F.keyfile);
    hp_status st;
    hp_code code = auth_load_keys(F.keyfile, &F.keys, &st);
    FUZZ_CHECK(code == HP_OK, "auth_load_keys: %s", st.msg);
    F.stranger.n = 1;
    snprintf(F.stranger.keys[0].id, sizeof(F.stranger.keys[0].id), "gone");
    memset(F.stranger.keys[0].secret, 0x77, AUTH_KEY_LEN);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(F.dir, sizeof(F.dir), "%s/hopper-fuzz-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(F.dir) != NULL, "mkdtemp %s", F.dir);
    /* Refused tokens are logged as warnings; thousands a second would
     * bury libFuzzer's own output. */
    hp_log_set_level(HP_LOG_ERROR);
    F.scratch = malloc(SCRATCH_BYTES);
    FUZZ_CHECK(F.scratch != NULL, "out of memory");
    write_key_file();
    start_target(0);
    start_target(1);
    atexit(cleanup);
    return 0;
}

static void
restart(void)
{
    stop_target(0);
    stop_target(1);
    F.n_ids = F.n_claims = F.n_cursors = 0;
    start_target(0);
    start_target(1);
}

/* ---- what the brokers answered, for later requests ---------------------- */

static void
remember_id(uint8_t target, const char *scope, const char *id)
{
    owned_id *o = &F.ids[F.n_ids++ % RING];
    o->target = target;
    snprintf(o->scope, sizeof(o->scope), "%s", scope);
    snprintf(o->id, sizeof(o->id), "%s", id);
}

static void
remember_cursor(const ProtobufCBinaryData *c)
{
    if (c->len == 0 || c->len > sizeof(F.cursor[0])) {
        return;
    }
    size_t i = F.n_cursors++ % RING;
    memcpy(F.cursor[i], c->data, c->len);
    F.cursor_len[i] = c->len;
}

/* An id in a reply must not be one seen created in another scope (or by
 * the other broker): the isolation rule of docs/security.md. */
static void
check_owner(uint8_t target, const char *scope, const char *id)
{
    size_t n = F.n_ids < RING ? F.n_ids : RING;
    for (size_t i = 0; i < n; i++) {
        const owned_id *o = &F.ids[i];
        if (strcmp(o->id, id) == 0) {
            FUZZ_CHECK(o->target == target && strcmp(o->scope, scope) == 0,
                       "a reply in scope '%s' of broker %u carries message "
                       "%s of scope '%s' of broker %u",
                       scope, target, id, o->scope, o->target);
        }
    }
}

static void
check_messages(uint8_t target, const char *scope, Hopper__V1__Message **m,
               size_t n)
{
    for (size_t i = 0; i < n; i++) {
        check_owner(target, scope, m[i]->id);
    }
}

/* Learns ids, claims and cursors from an OK reply body, and checks that
 * none of the ids belongs to another scope. */
static void
learn(int method, uint8_t target, const char *scope, const ProtobufCMessage *m)
{
    switch (method) {
    case M_ENQUEUE: {
        const Hopper__V1__EnqueueResponse *r = (const void *)m;
        for (size_t i = 0; i < r->n_results; i++) {
            if (!r->results[i]->duplicate) {
                remember_id(target, scope, r->results[i]->id);
            }
            check_owner(target, scope, r->results[i]->id);
        }
        break;
    }
    case M_ACK: {
        const Hopper__V1__AckResponse *r = (const void *)m;
        for (size_t i = 0; i < r->n_followups; i++) {
            if (!r->followups[i]->duplicate) {
                remember_id(target, scope, r->followups[i]->id);
            }
        }
        break;
    }
    case M_CLAIM: {
        const Hopper__V1__ClaimResponse *r = (const void *)m;
        check_messages(target, scope, r->messages, r->n_messages);
        for (size_t i = 0; i < r->n_messages; i++) {
            claim_ref *c = &F.claims[F.n_claims++ % RING];
            const Hopper__V1__Message *msg = r->messages[i];
            snprintf(c->id, sizeof(c->id), "%s", msg->id);
            c->token_len = msg->claim_token.len < sizeof(c->token)
                               ? msg->claim_token.len
                               : sizeof(c->token);
            if (c->token_len > 0) {
                memcpy(c->token, msg->claim_token.data, c->token_len);
            }
        }
        break;
    }
    case M_GET: {
        const Hopper__V1__GetResponse *r = (const void *)m;
        if (r->message != NULL) {
            check_owner(target, scope, r->message->id);
        }
        break;
    }
    case M_LIST:
    case M_DEAD_LIST: {
        const Hopper__V1__ListResponse *r = (const void *)m;
        check_messages(target, scope, r->messages, r->n_messages);
        remember_cursor(&r->next_cursor);
        break;
    }
    case M_LIST_LANES: {
        const Hopper__V1__ListLanesResponse *r = (const void *)m;
        remember_cursor(&r->next_cursor);
        break;
    }
    default:
        break;
    }
}

/* ---- building requests ----------------------------------------------------
 */

static char *
pick_lane(fuzz_in *in)
{
    static const char *const lanes[] = { "q", "jobs", "mail.out", "" };
    uint8_t k = fuzz_u8(in) % (HP_ARRAY_LEN(lanes) + 2);
    return k < HP_ARRAY_LEN(lanes) ? S(lanes[k]) : fstr(in, 80);
}

static char *
pick_target(fuzz_in *in)
{
    static const char *const targets[] = { "", "", "t1", "t2" };
    uint8_t k = fuzz_u8(in) % (HP_ARRAY_LEN(targets) + 1);
    return k < HP_ARRAY_LEN(targets) ? S(targets[k]) : fstr(in, 80);
}

static char *
pick_id(fuzz_in *in)
{
    uint8_t k = fuzz_u8(in);
    switch (k % 5) {
    case 0:
    case 1:
        if (F.n_ids > 0) {
            return F.ids[(F.n_ids - 1 - k / 5 % F.n_ids) % RING].id;
        }
        return S(FAKE_ID);
    case 2:
        if (F.n_claims > 0) {
            return F.claims[(F.n_claims - 1 - k / 5 % F.n_claims) % RING].id;
        }
        return S(FAKE_ID);
    case 3:
        return S(FAKE_ID);
    default:
        return fstr(in, 40);
    }
}

/* id and claim token: mostly a claim the broker handed out. */
static void
pick_claim(fuzz_in *in, char **id, ProtobufCBinaryData *token)
{
    uint8_t k = fuzz_u8(in);
    if (k % 4 != 3 && F.n_claims > 0) {
        size_t n = F.n_claims < RING ? F.n_claims : RING;
        claim_ref *c = &F.claims[(F.n_claims - 1 - k / 4 % n) % RING];
        *id = c->id;
        token->data = sa(c->token_len + 1);
        memcpy(token->data, c->token, c->token_len);
        token->len = c->token_len;
        if (k % 4 == 2 && token->len > 0) {
            token->data[fuzz_u8(in) % token->len] ^= 0x01; /* a stale one */
        }
        return;
    }
    *id = pick_id(in);
    *token = fblob(in, 20);
}

static ProtobufCBinaryData
pick_cursor(fuzz_in *in)
{
    ProtobufCBinaryData b = { 0, NULL };
    uint8_t k = fuzz_u8(in);
    if (k % 4 == 1 && F.n_cursors > 0) {
        size_t i = (F.n_cursors - 1) % RING;
        b.data = F.cursor[i];
        b.len = F.cursor_len[i];
    } else if (k % 4 == 2) {
        b = fblob(in, 128);
    }
    return b;
}

static Hopper__V1__Header *
make_header(fuzz_in *in)
{
    Hopper__V1__Header *h = sa(sizeof(*h));
    hopper__v1__header__init(h);
    uint8_t k = fuzz_u8(in);
    if (k % 8 == 7) {
        /* One past the 256-byte key limit. */
        h->key = sa(258);
        memset(h->key, 'k', 257);
    } else {
        h->key = fstr(in, 64);
    }
    h->value = fstr(in, 128);
    return h;
}

static Hopper__V1__Draft **
make_drafts(fuzz_in *in, size_t n)
{
    Hopper__V1__Draft **list = sa((n > 0 ? n : 1) * sizeof(*list));
    for (size_t i = 0; i < n; i++) {
        Hopper__V1__Draft *d = sa(sizeof(*d));
        hopper__v1__draft__init(d);
        d->lane = pick_lane(in);
        d->target = pick_target(in);
        d->payload = fblob(in, 255);
        uint8_t f = fuzz_u8(in);
        d->n_headers = f & 3u;
        if (d->n_headers > 0) {
            d->headers = sa(d->n_headers * sizeof(*d->headers));
            for (size_t k = 0; k < d->n_headers; k++) {
                d->headers[k] = make_header(in);
            }
        }
        if ((f & 4u) != 0) {
            d->dedupe_key = fuzz_u8(in) % 2 == 0 ? S("dk") : fstr(in, 80);
        }
        switch ((f >> 3) & 3u) {
        case 1:
            d->delay_ms = PICK64(in, 1, 20, 100000);
            break;
        case 2:
            d->available_at_ms = hp_wall_ms() + fuzz_u16(in);
            break;
        case 3:
            d->delay_ms = fuzz_u64(in);
            d->available_at_ms = fuzz_u64(in);
            break;
        default:
            break;
        }
        d->priority = PICK32(in, 0, 0, 5, 9, 10);
        d->max_attempts = PICK32(in, 0, 0, 1, 2, 1000);
        list[i] = d;
    }
    return list;
}

/* The body of method m, built from the input; NULL for "no body". */
static ProtobufCMessage *
make_body(int m, fuzz_in *in)
{
    switch (m) {
    case M_ENQUEUE: {
        Hopper__V1__EnqueueRequest *r = sa(sizeof(*r));
        hopper__v1__enqueue_request__init(r);
        r->n_drafts = fuzz_u8(in) % 4; /* 0 is EMPTY_BATCH */
        r->drafts = make_drafts(in, r->n_drafts);
        return &r->base;
    }
    case M_CLAIM: {
        Hopper__V1__ClaimRequest *r = sa(sizeof(*r));
        hopper__v1__claim_request__init(r);
        r->lane = pick_lane(in);
        r->target = pick_target(in);
        uint8_t f = fuzz_u8(in);
        r->untargeted_only = (f & 1u) != 0;
        if ((f & 2u) != 0) {
            r->consumer = fstr(in, 140);
        }
        r->max = PICK32(in, 0, 1, 3, 1000, 1001);
        r->lease_ms = PICK32(in, 0, 99, 100, 1000, 30000, 86400000, 86400001);
        /* Mostly no wait: a parked claim holds the input for its wait. */
        r->wait_ms = PICK32(in, 0, 0, 0, 0, 0, 0, 10, MAX_WAIT_MS + 1);
        return &r->base;
    }
    case M_ACK: {
        Hopper__V1__AckRequest *r = sa(sizeof(*r));
        hopper__v1__ack_request__init(r);
        r->n_items = fuzz_u8(in) % 3;
        r->items = sa((r->n_items + 1) * sizeof(*r->items));
        for (size_t i = 0; i < r->n_items; i++) {
            Hopper__V1__AckItem *it = sa(sizeof(*it));
            hopper__v1__ack_item__init(it);
            pick_claim(in, &it->id, &it->claim_token);
            it->result = fblob(in, 64);
            r->items[i] = it;
        }
        r->n_followups = fuzz_u8(in) % 3 == 0 ? 1 : 0;
        r->followups = make_drafts(in, r->n_followups);
        return &r->base;
    }
    case M_NACK: {
        Hopper__V1__NackRequest *r = sa(sizeof(*r));
        hopper__v1__nack_request__init(r);
        pick_claim(in, &r->id, &r->claim_token);
        r->error = fstr(in, 100);
        uint8_t f = fuzz_u8(in);
        if ((f & 1u) != 0) {
            r->retry_in_ms = PICK64(in, 1, 1000, 86400000);
        }
        if ((f & 2u) != 0) {
            r->retry_at_ms = hp_wall_ms() + PICK64(in, 0, 10, 100000);
        }
        r->n_followups = (f & 4u) != 0 ? 1 : 0;
        r->followups = make_drafts(in, r->n_followups);
        return &r->base;
    }
    case M_EXTEND: {
        Hopper__V1__ExtendRequest *r = sa(sizeof(*r));
        hopper__v1__extend_request__init(r);
        pick_claim(in, &r->id, &r->claim_token);
        r->lease_ms = PICK32(in, 0, 99, 100, 5000, 86400000, 86400001);
        return &r->base;
    }
    case M_GET: {
        Hopper__V1__GetRequest *r = sa(sizeof(*r));
        hopper__v1__get_request__init(r);
        r->id = pick_id(in);
        return &r->base;
    }
    case M_LIST: {
        Hopper__V1__ListRequest *r = sa(sizeof(*r));
        hopper__v1__list_request__init(r);
        r->lane = pick_lane(in);
        r->state = (Hopper__V1__State)(fuzz_u8(in) % 7);
        r->cursor = pick_cursor(in);
        r->limit = PICK32(in, 0, 1, 2, 1000, 1001);
        r->with_payload = fuzz_u8(in) % 2 == 0;
        return &r->base;
    }
    case M_STATS: {
        Hopper__V1__StatsRequest *r = sa(sizeof(*r));
        hopper__v1__stats_request__init(r);
        r->lane = pick_lane(in);
        return &r->base;
    }
    case M_LIST_LANES: {
        Hopper__V1__ListLanesRequest *r = sa(sizeof(*r));
        hopper__v1__list_lanes_request__init(r);
        r->cursor = pick_cursor(in);
        r->limit = PICK32(in, 0, 1, 2, 1000, 1001);
        return &r->base;
    }
    case M_GET_LANE: {
        Hopper__V1__GetLaneRequest *r = sa(sizeof(*r));
        hopper__v1__get_lane_request__init(r);
        r->lane = pick_lane(in);
        return &r->base;
    }
    case M_UPDATE_LANE: {
        static const char *const fields[] = {
            "max_attempts",
            "backoff",
            "backoff_base_ms",
            "backoff_cap_ms",
            "backoff_factor_pct",
            "jitter_pct",
            "retention_ms",
            "dedupe_window_ms",
            "paused",
            "nope",
        };
        Hopper__V1__UpdateLaneRequest *r = sa(sizeof(*r));
        hopper__v1__update_lane_request__init(r);
        r->lane = pick_lane(in);
        Hopper__V1__LaneSettings *s = sa(sizeof(*s));
        hopper__v1__lane_settings__init(s);
        s->max_attempts = PICK32(in, 0, 1, 5, 1000000);
        s->backoff = (Hopper__V1__Backoff)(fuzz_u8(in) % 4);
        s->backoff_base_ms = PICK64(in, 0, 1, 1000);
        s->backoff_cap_ms = PICK64(in, 0, 1000, 3600000);
        s->backoff_factor_pct = PICK32(in, 0, 100, 200, 1000);
        s->jitter_pct = PICK32(in, 0, 20, 100, 101);
        s->retention_ms = PICK64(in, 0, 1, 3600000);
        s->dedupe_window_ms = PICK64(in, 0, 1, 86400000);
        s->paused = fuzz_u8(in) % 2 == 0;
        if (fuzz_u8(in) % 4 != 0) {
            r->settings = s;
        }
        r->n_update_mask = fuzz_u8(in) % 4;
        r->update_mask = sa((r->n_update_mask + 1) * sizeof(char *));
        for (size_t i = 0; i < r->n_update_mask; i++) {
            uint8_t k = fuzz_u8(in) % (HP_ARRAY_LEN(fields) + 1);
            r->update_mask[i] =
                k < HP_ARRAY_LEN(fields) ? S(fields[k]) : fstr(in, 40);
        }
        return &r->base;
    }
    case M_DEAD_LIST: {
        Hopper__V1__DeadListRequest *r = sa(sizeof(*r));
        hopper__v1__dead_list_request__init(r);
        r->lane = pick_lane(in);
        r->cursor = pick_cursor(in);
        r->limit = PICK32(in, 0, 1, 1000, 1001);
        r->with_payload = fuzz_u8(in) % 2 == 0;
        return &r->base;
    }
    case M_DEAD_REPLAY:
    case M_DEAD_PURGE: {
        Hopper__V1__DeadRequest *r = sa(sizeof(*r));
        hopper__v1__dead_request__init(r);
        r->lane = pick_lane(in);
        r->n_ids = fuzz_u8(in) % 3;
        r->ids = sa((r->n_ids + 1) * sizeof(char *));
        for (size_t i = 0; i < r->n_ids; i++) {
            r->ids[i] = pick_id(in);
        }
        r->limit = PICK32(in, 0, 1, 1000, 1001);
        return &r->base;
    }
    case M_PING: {
        Hopper__V1__PingRequest *r = sa(sizeof(*r));
        hopper__v1__ping_request__init(r);
        return &r->base;
    }
    case M_BACKUP: {
        /* The fuzzed brokers have no --backup-dir: nothing is written. */
        static const char *const names[] = { "b1", "../x", "", "a/b", ".h" };
        Hopper__V1__BackupRequest *r = sa(sizeof(*r));
        hopper__v1__backup_request__init(r);
        r->name = (char *)(uintptr_t)names[fuzz_u8(in) % 5];
        return &r->base;
    }
    default:
        return NULL;
    }
}

/* A token for the broker with keys; *kind says what the broker should
 * make of it, *g what a valid one grants. */
static char *
make_token(fuzz_in *in, int kind, auth_grant *g)
{
    static const char *const scopes[] = { "acme", "other", "*", "default" };
    char *text = sa(AUTH_TOKEN_MAX);
    uint64_t now = hp_wall_ms();
    hp_status st;

    memset(g, 0, sizeof(*g));
    g->perms = (uint8_t)(1 + fuzz_u8(in) % AUTH_PERM_ALL);
    uint8_t sc = fuzz_u8(in);
    g->n_scopes = 1 + (sc >> 4) % 2;
    for (size_t i = 0; i < g->n_scopes; i++) {
        snprintf(g->scopes[i], sizeof(g->scopes[i]), "%s",
                 scopes[(sc + 3 * i) % HP_ARRAY_LEN(scopes)]);
    }
    g->issued_at_ms = now - 1000;
    g->expires_at_ms = now + 3600000;
    const auth_keyset *ks = &F.keys;
    if (kind == TOK_REFUSED) {
        if (fuzz_u8(in) % 2 == 0) {
            g->issued_at_ms = now - 7200000;
            g->expires_at_ms = now - 3600000;
        } else {
            ks = &F.stranger;
        }
    }
    hp_code code = auth_mint(ks, NULL, g, text, AUTH_TOKEN_MAX, &st);
    FUZZ_CHECK(code == HP_OK, "auth_mint: %s", st.msg);
    if (kind == TOK_DAMAGED) {
        size_t len = strlen(text);
        size_t pos = 5 + fuzz_u16(in) % (len - 5);
        char c = text[pos] == 'A' ? 'B' : 'A'; /* never the same letter */
        text[pos] = c;
    }
    return text;
}

static bool
allowed(const auth_grant *g, const char *scope, uint8_t perm)
{
    bool in_scope = false;
    for (size_t i = 0; i < g->n_scopes; i++) {
        in_scope = in_scope || strcmp(g->scopes[i], "*") == 0 ||
                   strcmp(g->scopes[i], scope) == 0;
    }
    return in_scope && (g->perms & perm) == perm;
}

/* ---- one exchange ----------------------------------------------------------
 */

/* What the harness knows about the request it sent. */
typedef struct expect {
    int method;        /* M_*, or -1 when the bytes were raw */
    uint8_t target;    /* 0 anonymous, 1 with keys */
    const char *scope; /* as the broker sees it ("" is "default") */
    const char *rid;   /* sent request id, or NULL if unknown */
    const char *token; /* sent token text, or NULL */
    const char *mtext; /* sent method string, or NULL when raw */
    bool auth_oracle;  /* the envelope passes every check before auth */
    int token_kind;
    auth_grant grant;
} expect;

/* Whether a status message shows the token (shorter texts than 16 bytes
 * are not tokens and could match by chance). */
static bool
echoes(const char *msg, const char *token)
{
    return token != NULL && strlen(token) >= 16 && strstr(msg, token) != NULL;
}

static void
check_reply(const expect *e, const uint8_t *p, size_t len)
{
    Hopper__V1__Response *r = hopper__v1__response__unpack(NULL, len, p);
    FUZZ_CHECK(r != NULL, "reply of %zu bytes is not a hopper.v1.Response",
               len);
    FUZZ_CHECK(r->status != NULL, "reply has no status");
    uint32_t code = r->status->code;
    const char *reason = r->status->reason != NULL ? r->status->reason : "";
    const char *msg = r->status->message != NULL ? r->status->message : "";
    FUZZ_CHECK(code <= 16, "status code %u is not a gRPC code", code);
    FUZZ_CHECK(code != HP_INTERNAL && code != HP_DATA_LOSS, "%s %s/%s: %s",
               e->method >= 0 && e->method < M_COUNT ? methods[e->method].name
                                                     : "raw",
               hp_code_name((hp_code)code), reason, msg);
    FUZZ_CHECK(code == 0 || r->body.len == 0, "failed reply carries a body");
    FUZZ_CHECK(code == 0 || reason[0] != '\0', "failure %u without reason",
               code);
    /* An unknown method is quoted back; when the fuzzer made the token a
     * substring of that method, the quote is of the method. */
    FUZZ_CHECK(!echoes(msg, e->token) ||
                   (e->mtext != NULL && strstr(e->mtext, e->token) != NULL),
               "status message echoes the token: %s", msg);
    if (e->rid != NULL) {
        /* Echoed once it passed its checks (UTF-8, 128 bytes at most, in
         * an envelope that decoded), and never anything else. */
        size_t n = strlen(e->rid);
        bool envelope_failed = strcmp(reason, "BAD_ENVELOPE") == 0 ||
                               strcmp(reason, "DECODE_BUDGET") == 0;
        bool must = hp_utf8_valid(e->rid, n) && n <= 128 && !envelope_failed;
        FUZZ_CHECK(strcmp(r->request_id, e->rid) == 0 ||
                       (!must && r->request_id[0] == '\0'),
                   "request id '%s' echoed as '%s'", e->rid, r->request_id);
        FUZZ_CHECK(hp_utf8_valid(r->request_id, strlen(r->request_id)) &&
                       hp_utf8_valid(msg, strlen(msg)),
                   "a reply string is not UTF-8");
    }
    if (e->target == 0) {
        FUZZ_CHECK(code != HP_UNAUTHENTICATED && code != HP_PERMISSION_DENIED,
                   "anonymous broker answered %s/%s",
                   hp_code_name((hp_code)code), reason);
    } else if (e->auth_oracle) {
        const char *m = methods[e->method].name;
        uint8_t perm = methods[e->method].perm;
        const char *scope = e->scope[0] != '\0' ? e->scope : "default";
        hp_code want = HP_OK;
        if (e->token_kind == TOK_NONE) {
            want = perm == 0 ? HP_OK : HP_UNAUTHENTICATED;
        } else if (e->token_kind != TOK_VALID) {
            want = HP_UNAUTHENTICATED;
        } else if (perm != 0 && !allowed(&e->grant, scope, perm)) {
            want = HP_PERMISSION_DENIED;
        } else if (e->method == M_BACKUP && !allowed(&e->grant, "*", perm)) {
            want = HP_PERMISSION_DENIED; /* a backup holds every scope */
        }
        if (want == HP_OK) {
            FUZZ_CHECK(code != HP_UNAUTHENTICATED &&
                           code != HP_PERMISSION_DENIED,
                       "%s in scope '%s' refused with %s/%s", m, scope,
                       hp_code_name((hp_code)code), reason);
        } else {
            FUZZ_CHECK(code == (uint32_t)want,
                       "%s in scope '%s' gave %s/%s, "
                       "want %s",
                       m, scope, hp_code_name((hp_code)code), reason,
                       hp_code_name(want));
        }
    }
    if (code == 0 && e->method >= 0 && e->method < M_COUNT) {
        const ProtobufCMethodDescriptor *md =
            protobuf_c_service_descriptor_get_method_by_name(
                &hopper__v1__broker__descriptor, methods[e->method].name);
        FUZZ_CHECK(md != NULL, "no descriptor for %s", methods[e->method].name);
        ProtobufCMessage *body = protobuf_c_message_unpack(
            md->output, NULL, r->body.len, r->body.data);
        FUZZ_CHECK(body != NULL, "OK reply body of %s is not a %s",
                   methods[e->method].name, md->output->name);
        learn(e->method, e->target, e->scope[0] != '\0' ? e->scope : "default",
              body);
        protobuf_c_message_free_unpacked(body, NULL);
    }
    hopper__v1__response__free_unpacked(r, NULL);
}

static void
exchange(const expect *e, const void *req, size_t len)
{
    target *t = &F.t[e->target];
    nng_msg *m;
    int rv;

    FUZZ_CHECK(nng_msg_alloc(&m, len) == 0, "nng_msg_alloc");
    if (len > 0) {
        memcpy(nng_msg_body(m), req, len);
    }
    rv = nng_sendmsg(t->sock, m, 0);
    FUZZ_CHECK(rv == 0, "send: %s", nng_strerror(rv));
    rv = nng_recvmsg(t->sock, &m, 0);
    FUZZ_CHECK(rv == 0, "no reply to a %zu-byte request within %d ms: %s", len,
               RECV_TIMEOUT_MS, nng_strerror(rv));
    check_reply(e, nng_msg_body(m), nng_msg_len(m));
    nng_msg_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = fuzz_in_make(data, size);
    expect e;
    Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;
    static const char *const scopes[] = { "", "acme", "other", "no scope!" };

    if (++F.runs % RESTART_EVERY == 0) {
        restart();
    }
    F.scratch_used = 0;
    memset(&e, 0, sizeof(e));
    uint8_t sel = fuzz_u8(&in);
    int mode = sel & 3;
    e.target = (sel & 0x80u) != 0 ? 1 : 0;
    e.method = -1;
    e.scope = "";
    if (mode == 0) {
        size_t len;
        const uint8_t *rest = fuzz_rest(&in, &len);
        exchange(&e, rest, len);
        return 0;
    }

    int method = fuzz_u8(&in) % (M_FROM_INPUT + 1);
    uint8_t flags = fuzz_u8(&in);
    e.method = method < M_COUNT ? method : -1;
    if (method < M_COUNT) {
        size_t n = strlen(METHOD_PREFIX) + strlen(methods[method].name) + 1;
        req.method = sa(n);
        snprintf(req.method, n, "%s%s", METHOD_PREFIX, methods[method].name);
    } else if (method == M_UNKNOWN) {
        req.method = S(METHOD_PREFIX "Nope");
    } else {
        req.method = fstr(&in, 64);
    }
    e.mtext = req.method;
    req.scope = S(scopes[flags & 3u]);
    if ((flags & 4u) != 0) {
        req.request_id = sa(16);
        snprintf(req.request_id, 16, "rid-%u", (unsigned)fuzz_u8(&in));
    }
    switch ((flags >> 3) & 3u) {
    case 1:
        req.deadline_ms = 1;
        break;
    case 2:
        req.deadline_ms = fuzz_u16(&in);
        break;
    default:
        break;
    }
    e.token_kind = (flags >> 5) & 3;
    if (e.token_kind != TOK_NONE) {
        req.token = make_token(&in, e.token_kind, &e.grant);
    }
    if (mode == 3) {
        req.scope = fstr(&in, 70);
        req.request_id = fstr(&in, 140);
        if (fuzz_u8(&in) % 2 == 0) {
            req.token = fstr(&in, 255);
            e.token_kind = TOK_DAMAGED; /* not a token, in practice */
        }
    }
    e.scope = req.scope;
    e.rid = req.request_id;
    e.token = req.token;
    /* The oracle needs an envelope every check before authorization
     * passes: a known method, a valid scope, an ASCII request id. */
    e.auth_oracle = mode != 3 && method < M_COUNT && (flags & 3u) != 3;

    if (mode == 2) {
        ProtobufCMessage *body =
            make_body(method < M_COUNT ? method : fuzz_u8(&in) % M_COUNT, &in);
        if (body != NULL) {
            req.body.len = protobuf_c_message_get_packed_size(body);
            req.body.data = sa(req.body.len + 1);
            protobuf_c_message_pack(body, req.body.data);
        }
    } else {
        size_t len;
        const uint8_t *rest = fuzz_rest(&in, &len);
        req.body.data = (uint8_t *)(uintptr_t)rest;
        req.body.len = len;
    }

    size_t len = hopper__v1__request__get_packed_size(&req);
    uint8_t *buf = sa(len + 1);
    hopper__v1__request__pack(&req, buf);
    exchange(&e, buf, len);
    return 0;
}
