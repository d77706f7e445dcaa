/*
 * fuzz_seeds.c - writes the seed corpus of the fuzz targets: a handful of
 * small valid inputs each, in the input formats their files describe.
 * Deterministic (fixed times, ids and keys), so running it again gives
 * the same files:
 *
 *   build/fuzz/tests/fuzz/fuzz_seeds tests/fuzz/corpus
 *
 * writes tests/fuzz/corpus/{fuzz_record,fuzz_token,fuzz_dispatch}/<name>.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "broker/auth.h"
#include "common/bytes.h"
#include "fuzz_keys.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"
#include "store/record.h"

#define S(lit)     ((char *)(uintptr_t)(lit))
#define FAR_FUTURE 4102444800000ull /* 2100-01-01 */
#define SEED_MAX   4096
#define MSG_PREFIX "/hopper.v1.Broker/"

static const char *out_dir;

static void
die(const char *what)
{
    fprintf(stderr, "fuzz_seeds: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void
make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        die(path);
    }
}

/* Writes <out_dir>/<target>/<name>: a mode byte, then len bytes of p. */
static void
seed(const char *target, const char *name, int mode, const void *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", out_dir, target);
    make_dir(path);
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        die(path);
    }
    if (mode >= 0) {
        fputc(mode, f);
    }
    if (len > 0 && fwrite(p, 1, len, f) != len) {
        die(path);
    }
    if (fclose(f) != 0) {
        die(path);
    }
}

/* ---- fuzz_record ----------------------------------------------------------
 */

static void
record_seed(const char *name, int mode, const record *r)
{
    size_t n = record_size(r);
    uint8_t *b = malloc(n);
    if (b == NULL) {
        die("malloc");
    }
    record_encode(r, b);
    seed("fuzz_record", name, mode, b, n);
    free(b);
}

static void
record_seeds(void)
{
    static const char payload[] = "{\"to\":\"a@example.com\"}";
    store_header h[2] = {
        { HP_S("content-type"), HP_S("application/json") },
        { HP_S("trace"), HP_S("") },
    };
    uint8_t hblock[64];
    record r;

    memset(&r, 0, sizeof(r));
    r.state = STORE_STATE_PENDING;
    r.max_attempts = 5;
    r.created_at = r.available_at = 1767225600000ull;
    r.lane = HP_S("emails");
    r.payload = (const uint8_t *)payload;
    r.payload_len = sizeof(payload) - 1;
    record_seed("message_pending", 0x00, &r);

    r.state = STORE_STATE_CLAIMED;
    r.priority = 9;
    r.flags = REC_F_SCHEDULED;
    r.attempts = 1;
    r.lease_expires_at = 1767225630000ull;
    memset(r.token.b, 0xab, sizeof(r.token.b));
    r.target = HP_S("eu-west");
    r.consumer = HP_S("worker-1");
    r.n_headers = 2;
    r.hdr_block_len = record_headers_size(h, 2);
    record_headers_encode(h, 2, hblock);
    r.hdr_block = hblock;
    record_seed("message_claimed_headers", 0x00, &r);

    r.state = STORE_STATE_DELIVERED;
    r.finished_at = 1767225640000ull;
    r.result = (const uint8_t *)"ok";
    r.result_len = 2;
    record_seed("message_delivered_reseal", 0x02, &r);

    r.state = STORE_STATE_DEAD;
    r.error = HP_S("smtp 550");
    r.result = NULL;
    r.result_len = 0;
    r.payload_len = 0;
    record_seed("message_dead_reseal", 0x02, &r);

    static const char key[] = "default/emails/order-42";
    uint8_t d[DEDUPE_FIXED_LEN + sizeof(key)];
    hp_id id;
    memset(id.b, 0x42, sizeof(id.b));
    dedupe_entry_encode(&id, 1767312000000ull, key, sizeof(key) - 1, d);
    seed("fuzz_record", "dedupe", 0x01, d, DEDUPE_FIXED_LEN + sizeof(key) - 1);
    seed("fuzz_record", "dedupe_reseal", 0x03, d,
         DEDUPE_FIXED_LEN + sizeof(key) - 1);
}

/* ---- fuzz_token -----------------------------------------------------------
 */

static void
token_seeds(void)
{
    auth_keyset keys, other;
    char text[AUTH_TOKEN_MAX];
    auth_grant g;
    hp_status st;

    fuzz_token_keys(&keys, &other);
    memset(&g, 0, sizeof(g));
    g.issued_at_ms = FUZZ_NOW_MS - 1000;
    g.expires_at_ms = FAR_FUTURE;
    g.perms = AUTH_PERM_PRODUCE | AUTH_PERM_CONSUME;
    g.n_scopes = 1;
    snprintf(g.scopes[0], sizeof(g.scopes[0]), "acme");
    if (auth_mint(&keys, "k1", &g, text, sizeof(text), &st) != HP_OK) {
        fprintf(stderr, "fuzz_seeds: %s\n", st.msg);
        exit(1);
    }
    seed("fuzz_token", "raw_valid_k1", 0, text, strlen(text));

    g.perms = AUTH_PERM_ALL;
    g.n_scopes = 3;
    snprintf(g.scopes[1], sizeof(g.scopes[1]), "*");
    snprintf(g.scopes[2], sizeof(g.scopes[2]), "billing.eu:prod-1");
    if (auth_mint(&keys, "k2", &g, text, sizeof(text), &st) != HP_OK) {
        exit(1);
    }
    seed("fuzz_token", "raw_valid_k2_three_scopes", 0, text, strlen(text));

    g.expires_at_ms = FUZZ_NOW_MS - 1;
    if (auth_mint(&keys, "k1", &g, text, sizeof(text), &st) != HP_OK) {
        exit(1);
    }
    seed("fuzz_token", "raw_expired", 0, text, strlen(text));

    g.expires_at_ms = FAR_FUTURE;
    if (auth_mint(&other, NULL, &g, text, sizeof(text), &st) != HP_OK) {
        exit(1);
    }
    seed("fuzz_token", "raw_unknown_key", 0, text, strlen(text));
    seed("fuzz_token", "raw_garbage", 0, "hpt1.AAAA.BBBB", 14);

    /* Mode 1: key, perms, scope count, issued (u32 ago), ttl (u32), then
     * per scope a length and the name, then edits (count, then kind,
     * u16 position, byte). */
    static const uint8_t mint[] = { 0,   3,    2,    0,    0, 3,   0xe8,
                                    0,   0x36, 0xee, 0x80, 4, 'a', 'c',
                                    'm', 'e',  1,    '*',  0 };
    seed("fuzz_token", "mint_two_scopes", 1, mint, sizeof(mint));
    static const uint8_t mint_edit[] = { 1,   7,   1,   0,   0,   0,   1,
                                         0,   1,   0,   0,   7,   'd', 'e',
                                         'f', 'a', 'u', 'l', 't', 2,   0,
                                         0,   20,  'x', 2,   0,   30,  0 };
    seed("fuzz_token", "mint_then_edit", 1, mint_edit, sizeof(mint_edit));

    /* Mode 2: a body, signed by the harness with k1. */
    uint8_t body[64];
    size_t n = 0;
    body[n++] = 2;
    body[n++] = 'k';
    body[n++] = '1';
    hp_put_u64(body + n, FUZZ_NOW_MS - 1000);
    hp_put_u64(body + n + 8, FAR_FUTURE);
    n += 16;
    body[n++] = AUTH_PERM_CONSUME;
    body[n++] = 1;
    body[n++] = 4;
    memcpy(body + n, "acme", 4);
    n += 4;
    seed("fuzz_token", "signed_body", 2, body, n);
}

/* ---- fuzz_dispatch ----------------------------------------------------------
 */

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
};

/* Mode 1: sel, method, flags, extra (token parameters and such), then the
 * packed body. */
static void
body_seed(const char *name, uint8_t sel, uint8_t method, uint8_t flags,
          const uint8_t *extra, size_t extra_len, const ProtobufCMessage *m)
{
    uint8_t buf[SEED_MAX];
    size_t n = 0;
    buf[n++] = method;
    buf[n++] = flags;
    memcpy(buf + n, extra, extra_len);
    n += extra_len;
    n += protobuf_c_message_pack(m, buf + n);
    seed("fuzz_dispatch", name, sel, buf, n);
}

static void
dispatch_seeds(void)
{
    static const uint8_t none[1] = { 0 };
    static uint8_t payload[] = "hello";

    /* Mode 0: whole envelopes. */
    {
        Hopper__V1__PingRequest ping = HOPPER__V1__PING_REQUEST__INIT;
        Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;
        uint8_t body[16], buf[256];
        req.method = S(MSG_PREFIX "Ping");
        req.body.data = body;
        req.body.len = hopper__v1__ping_request__pack(&ping, body);
        req.request_id = S("r-1");
        size_t n = hopper__v1__request__pack(&req, buf);
        seed("fuzz_dispatch", "raw_ping", 0x00, buf, n);
        req.scope = S("acme");
        req.deadline_ms = 5000;
        n = hopper__v1__request__pack(&req, buf);
        seed("fuzz_dispatch", "raw_ping_keys", 0x80, buf, n);
    }

    Hopper__V1__Draft d = HOPPER__V1__DRAFT__INIT;
    Hopper__V1__Header h = HOPPER__V1__HEADER__INIT;
    Hopper__V1__Header *hl[1] = { &h };
    Hopper__V1__Draft *dl[1] = { &d };
    h.key = S("content-type");
    h.value = S("text/plain");
    d.lane = S("q");
    d.payload.data = payload;
    d.payload.len = 5;
    d.headers = hl;
    d.n_headers = 1;
    d.dedupe_key = S("order-1");
    d.priority = 3;
    Hopper__V1__EnqueueRequest er = HOPPER__V1__ENQUEUE_REQUEST__INIT;
    er.drafts = dl;
    er.n_drafts = 1;
    body_seed("enqueue", 1, M_ENQUEUE, 0, none, 0, &er.base);
    body_seed("enqueue_rid", 1, M_ENQUEUE, 0x04, (const uint8_t[]){ 7 }, 1,
              &er.base);
    /* Token kind 1 (valid), perms byte 6 -> all, scope byte 0 -> acme;
     * the envelope's scope is acme (flags bits 0-1 = 1). */
    body_seed("enqueue_keys_token", 0x81, M_ENQUEUE, 0x21,
              (const uint8_t[]){ 6, 0 }, 2, &er.base);
    body_seed("enqueue_keys_no_token", 0x81, M_ENQUEUE, 0x01, none, 0,
              &er.base);

    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = S("q");
    cr.max = 10;
    cr.lease_ms = 1000;
    cr.consumer = S("w1");
    body_seed("claim", 1, M_CLAIM, 0, none, 0, &cr.base);

    static uint8_t token[16] = { 1, 2,  3,  4,  5,  6,  7,  8,
                                 9, 10, 11, 12, 13, 14, 15, 16 };
    Hopper__V1__AckItem ai = HOPPER__V1__ACK_ITEM__INIT;
    Hopper__V1__AckItem *ail[1] = { &ai };
    ai.id = S("01ARZ3NDEKTSV4RRFFQ69G5FAV");
    ai.claim_token.data = token;
    ai.claim_token.len = 16;
    Hopper__V1__AckRequest ar = HOPPER__V1__ACK_REQUEST__INIT;
    ar.items = ail;
    ar.n_items = 1;
    body_seed("ack", 1, M_ACK, 0, none, 0, &ar.base);

    Hopper__V1__NackRequest nr = HOPPER__V1__NACK_REQUEST__INIT;
    nr.id = ai.id;
    nr.claim_token = ai.claim_token;
    nr.error = S("timeout");
    nr.retry_in_ms = 1000;
    body_seed("nack", 1, M_NACK, 0, none, 0, &nr.base);

    Hopper__V1__ExtendRequest xr = HOPPER__V1__EXTEND_REQUEST__INIT;
    xr.id = ai.id;
    xr.claim_token = ai.claim_token;
    xr.lease_ms = 5000;
    body_seed("extend", 1, M_EXTEND, 0, none, 0, &xr.base);

    Hopper__V1__GetRequest gr = HOPPER__V1__GET_REQUEST__INIT;
    gr.id = ai.id;
    body_seed("get", 1, M_GET, 0, none, 0, &gr.base);

    Hopper__V1__ListRequest lr = HOPPER__V1__LIST_REQUEST__INIT;
    lr.lane = S("q");
    lr.state = HOPPER__V1__STATE__PENDING;
    lr.limit = 10;
    lr.with_payload = 1;
    body_seed("list", 1, M_LIST, 0, none, 0, &lr.base);

    Hopper__V1__StatsRequest sr = HOPPER__V1__STATS_REQUEST__INIT;
    sr.lane = S("q");
    body_seed("stats", 1, M_STATS, 0, none, 0, &sr.base);

    Hopper__V1__ListLanesRequest llr = HOPPER__V1__LIST_LANES_REQUEST__INIT;
    llr.limit = 2;
    body_seed("list_lanes", 1, M_LIST_LANES, 0, none, 0, &llr.base);

    Hopper__V1__GetLaneRequest glr = HOPPER__V1__GET_LANE_REQUEST__INIT;
    glr.lane = S("q");
    body_seed("get_lane", 1, M_GET_LANE, 0, none, 0, &glr.base);

    Hopper__V1__LaneSettings ls = HOPPER__V1__LANE_SETTINGS__INIT;
    Hopper__V1__UpdateLaneRequest ur = HOPPER__V1__UPDATE_LANE_REQUEST__INIT;
    char *mask[2] = { S("max_attempts"), S("paused") };
    ls.max_attempts = 2;
    ls.paused = 1;
    ur.lane = S("q");
    ur.settings = &ls;
    ur.update_mask = mask;
    ur.n_update_mask = 2;
    body_seed("update_lane", 1, M_UPDATE_LANE, 0, none, 0, &ur.base);

    Hopper__V1__DeadListRequest dlr = HOPPER__V1__DEAD_LIST_REQUEST__INIT;
    dlr.lane = S("q");
    dlr.limit = 10;
    body_seed("dead_list", 1, M_DEAD_LIST, 0, none, 0, &dlr.base);

    Hopper__V1__DeadRequest dr = HOPPER__V1__DEAD_REQUEST__INIT;
    dr.lane = S("q");
    dr.limit = 10;
    body_seed("dead_replay", 1, M_DEAD_REPLAY, 0, none, 0, &dr.base);
    body_seed("dead_purge", 1, M_DEAD_PURGE, 0, none, 0, &dr.base);

    Hopper__V1__PingRequest pr = HOPPER__V1__PING_REQUEST__INIT;
    body_seed("ping_unknown_method", 1, 15, 0, none, 0, &pr.base);

    /* Mode 2: bodies built by the harness. An Enqueue of one draft (lane
     * q, no target, payload "hello", priority and attempts 0), then a
     * Claim of it, then an Ack, a Nack and an Extend of what was claimed
     * last. */
    seed("fuzz_dispatch", "built_enqueue", 2,
         (const uint8_t[]){ M_ENQUEUE, 0, 1, 0, 0, 5, 'h', 'e', 'l', 'l', 'o',
                            0, 0, 0 },
         14);
    seed("fuzz_dispatch", "built_claim", 2,
         (const uint8_t[]){ M_CLAIM, 0, 0, 0, 0, 1, 3, 0 }, 8);
    seed("fuzz_dispatch", "built_ack", 2,
         (const uint8_t[]){ M_ACK, 0, 1, 0, 0, 1 }, 6);
    seed("fuzz_dispatch", "built_nack", 2,
         (const uint8_t[]){ M_NACK, 0, 0, 0, 0 }, 5);
    seed("fuzz_dispatch", "built_extend", 2,
         (const uint8_t[]){ M_EXTEND, 0, 0, 3 }, 4);
    seed("fuzz_dispatch", "built_update_lane", 2,
         (const uint8_t[]){ M_UPDATE_LANE, 0, 0, 1, 0, 2, 0, 1, 1, 1, 1, 1, 1,
                            2, 0, 8 },
         16);
    seed("fuzz_dispatch", "built_dead_replay_keys", 0x82,
         (const uint8_t[]){ M_DEAD_REPLAY, 0x21, 6, 0, 0, 1, 0, 0 }, 8);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR (tests/fuzz/corpus)\n");
        return 2;
    }
    out_dir = argv[1];
    make_dir(out_dir);
    record_seeds();
    token_seeds();
    dispatch_seeds();
    return 0;
}
