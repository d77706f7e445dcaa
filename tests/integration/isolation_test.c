/*
 * isolation_test.c - the isolation proof. A broker with keys holds secret
 * payloads in three scopes. For thousands of random combinations of token
 * scopes, token permissions, request scope, method and message id (often
 * one from another scope), it checks that the broker allows exactly what
 * the rule says (docs/security.md) and that no reply ever carries a byte of
 * another scope's payloads: an id from another scope is NOT_FOUND, like an
 * id that never existed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "common/clock.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"
#include "inproc_fixture.h"

#define N_SCOPES  3
#define PER_SCOPE 6
#define ROUNDS    10000

static const char *const scopes[N_SCOPES] = { "alpha", "beta", "gamma" };

typedef struct fixture {
    char dir[64];
    char keys[96];
    auth_keyset ks;
    broker *b;
    nng_socket sock;
    char ids[N_SCOPES][PER_SCOPE][27];
    uint8_t tokens[N_SCOPES][PER_SCOPE][16]; /* claims held by the seed */
    uint64_t rng;
} fixture;

static uint32_t
rnd(fixture *f, uint32_t n)
{
    f->rng = f->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(f->rng >> 33) % n;
}

static void
mint(fixture *f, const char *const *sc, size_t n, uint8_t perms, char *out)
{
    auth_grant g;
    hp_status st;
    memset(&g, 0, sizeof(g));
    g.issued_at_ms = hp_wall_ms();
    g.expires_at_ms = g.issued_at_ms + 3600 * 1000;
    g.perms = perms;
    g.n_scopes = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(g.scopes[i], sizeof(g.scopes[i]), "%s", sc[i]);
    }
    assert_int_equal(auth_mint(&f->ks, NULL, &g, out, AUTH_TOKEN_MAX, &st),
                     HP_OK);
}

/* One request; returns the reply's status code, and the whole reply in
 * *raw (caller frees) so it can be searched for other scopes' bytes. */
static uint32_t
call(fixture *f, const char *method, const ProtobufCMessage *body,
     const char *scope, const char *token, uint8_t **raw, size_t *raw_len,
     Hopper__V1__Response **resp)
{
    Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;
    char path[64];
    size_t blen = protobuf_c_message_get_packed_size(body);
    uint8_t *b = malloc(blen + 1);
    protobuf_c_message_pack(body, b);
    snprintf(path, sizeof(path), "/hopper.v1.Broker/%s", method);
    req.method = path;
    req.body.data = b;
    req.body.len = blen;
    req.scope = (char *)(uintptr_t)scope;
    req.token = (char *)(uintptr_t)token;
    size_t len = hopper__v1__request__get_packed_size(&req);
    uint8_t *env = malloc(len);
    hopper__v1__request__pack(&req, env);
    void *reply = NULL;
    assert_int_equal(nng_send(f->sock, env, len, 0), 0);
    assert_int_equal(nng_recv(f->sock, &reply, raw_len, NNG_FLAG_ALLOC), 0);
    *raw = malloc(*raw_len + 1);
    memcpy(*raw, reply, *raw_len);
    nng_free(reply, *raw_len);
    *resp = hopper__v1__response__unpack(NULL, *raw_len, *raw);
    assert_non_null(*resp);
    free(b);
    free(env);
    return (*resp)->status != NULL ? (*resp)->status->code : 0;
}

static void
seed(fixture *f)
{
    char admin[AUTH_TOKEN_MAX];
    static const char *const star[] = { "*" };
    mint(f, star, 1, AUTH_PERM_ALL, admin);
    for (int s = 0; s < N_SCOPES; s++) {
        for (int i = 0; i < PER_SCOPE; i++) {
            char payload[64];
            snprintf(payload, sizeof(payload), "secret-%s-%d", scopes[s], i);
            Hopper__V1__Draft d = HOPPER__V1__DRAFT__INIT;
            Hopper__V1__Draft *dl[1] = { &d };
            Hopper__V1__EnqueueRequest er = HOPPER__V1__ENQUEUE_REQUEST__INIT;
            d.lane = (char *)(uintptr_t) "jobs";
            d.payload.data = (uint8_t *)payload;
            d.payload.len = strlen(payload);
            er.drafts = dl;
            er.n_drafts = 1;
            uint8_t *raw;
            size_t rl;
            Hopper__V1__Response *r;
            assert_int_equal(
                call(f, "Enqueue", &er.base, scopes[s], admin, &raw, &rl, &r),
                0);
            Hopper__V1__EnqueueResponse *e =
                hopper__v1__enqueue_response__unpack(NULL, r->body.len,
                                                     r->body.data);
            snprintf(f->ids[s][i], 27, "%s", e->results[0]->id);
            hopper__v1__enqueue_response__free_unpacked(e, NULL);
            hopper__v1__response__free_unpacked(r, NULL);
            free(raw);
        }
        /* Claim half, so Ack/Nack/Extend have real tokens to try. */
        Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
        cr.lane = (char *)(uintptr_t) "jobs";
        cr.max = PER_SCOPE / 2;
        cr.lease_ms = 3600 * 1000;
        uint8_t *raw;
        size_t rl;
        Hopper__V1__Response *r;
        assert_int_equal(
            call(f, "Claim", &cr.base, scopes[s], admin, &raw, &rl, &r), 0);
        Hopper__V1__ClaimResponse *c =
            hopper__v1__claim_response__unpack(NULL, r->body.len, r->body.data);
        for (size_t k = 0; k < c->n_messages; k++) {
            for (int i = 0; i < PER_SCOPE; i++) {
                if (strcmp(f->ids[s][i], c->messages[k]->id) == 0) {
                    memcpy(f->tokens[s][i], c->messages[k]->claim_token.data,
                           16);
                }
            }
        }
        hopper__v1__claim_response__free_unpacked(c, NULL);
        hopper__v1__response__free_unpacked(r, NULL);
        free(raw);
    }
}

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    broker_config cfg;
    hp_status st;
    inproc_prepare(f->dir, "iso", &cfg);
    snprintf(f->keys, sizeof(f->keys), "%s/keys", f->dir);
    assert_int_equal(auth_keygen(f->keys, "k1", false, &st), HP_OK);
    assert_int_equal(auth_load_keys(f->keys, &f->ks, &st), HP_OK);
    /* NNG, the reference peer, dials the broker over loopback TCP. */
    cfg.listen[0] = "tcp://127.0.0.1:0";
    cfg.auth_keys = f->keys;
    inproc_start(&cfg, &f->b, 0, &f->sock);
    f->rng = 20261122;
    seed(f);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    inproc_stop(f->dir, f->b, &f->sock);
    free(f);
    return 0;
}

typedef struct method {
    const char *name;
    uint8_t perm;
    bool by_id; /* the body names a message id */
} method;

static const method methods[] = {
    { "Enqueue", AUTH_PERM_PRODUCE, false },
    { "Claim", AUTH_PERM_CONSUME, false },
    { "Ack", AUTH_PERM_CONSUME, true },
    { "Nack", AUTH_PERM_CONSUME, true },
    { "Extend", AUTH_PERM_CONSUME, true },
    { "Get", AUTH_PERM_CONSUME, true },
    { "List", AUTH_PERM_ADMIN, false },
    { "Stats", AUTH_PERM_ADMIN, false },
    { "ListLanes", AUTH_PERM_ADMIN, false },
    { "GetLane", AUTH_PERM_ADMIN, false },
    { "DeadList", AUTH_PERM_ADMIN, false },
    { "DeadReplay", AUTH_PERM_ADMIN, true },
    { "DeadPurge", AUTH_PERM_ADMIN, true },
};

/* Builds the body of m for lane "jobs" and message (id, token); sends. */
static uint32_t
send_method(fixture *f, const method *m, const char *scope, const char *tok,
            const char *id, uint8_t *token, uint8_t **raw, size_t *rl,
            Hopper__V1__Response **r)
{
    char *lane = (char *)(uintptr_t) "jobs";
    char *idp = (char *)(uintptr_t)id;
    ProtobufCBinaryData tb = { 16, token };
    char *ids[1] = { idp };
    if (strcmp(m->name, "Enqueue") == 0) {
        Hopper__V1__Draft d = HOPPER__V1__DRAFT__INIT;
        Hopper__V1__Draft *dl[1] = { &d };
        Hopper__V1__EnqueueRequest q = HOPPER__V1__ENQUEUE_REQUEST__INIT;
        d.lane = lane;
        q.drafts = dl;
        q.n_drafts = 1;
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    if (strcmp(m->name, "Claim") == 0) {
        Hopper__V1__ClaimRequest q = HOPPER__V1__CLAIM_REQUEST__INIT;
        q.lane = lane;
        q.max = 10;
        q.lease_ms = 100; /* short, so claims come back for later rounds */
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    if (strcmp(m->name, "Ack") == 0) {
        Hopper__V1__AckItem it = HOPPER__V1__ACK_ITEM__INIT;
        Hopper__V1__AckItem *il[1] = { &it };
        Hopper__V1__AckRequest q = HOPPER__V1__ACK_REQUEST__INIT;
        it.id = idp;
        it.claim_token = tb;
        q.items = il;
        q.n_items = 1;
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    if (strcmp(m->name, "Nack") == 0) {
        Hopper__V1__NackRequest q = HOPPER__V1__NACK_REQUEST__INIT;
        q.id = idp;
        q.claim_token = tb;
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    if (strcmp(m->name, "Extend") == 0) {
        Hopper__V1__ExtendRequest q = HOPPER__V1__EXTEND_REQUEST__INIT;
        q.id = idp;
        q.claim_token = tb;
        q.lease_ms = 1000;
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    if (strcmp(m->name, "Get") == 0) {
        Hopper__V1__GetRequest q = HOPPER__V1__GET_REQUEST__INIT;
        q.id = idp;
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    if (strcmp(m->name, "List") == 0) {
        Hopper__V1__ListRequest q = HOPPER__V1__LIST_REQUEST__INIT;
        q.lane = lane;
        q.with_payload = true;
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    if (strcmp(m->name, "Stats") == 0) {
        Hopper__V1__StatsRequest q = HOPPER__V1__STATS_REQUEST__INIT;
        q.lane = lane;
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    if (strcmp(m->name, "ListLanes") == 0) {
        Hopper__V1__ListLanesRequest q = HOPPER__V1__LIST_LANES_REQUEST__INIT;
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    if (strcmp(m->name, "GetLane") == 0) {
        Hopper__V1__GetLaneRequest q = HOPPER__V1__GET_LANE_REQUEST__INIT;
        q.lane = lane;
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    if (strcmp(m->name, "DeadList") == 0) {
        Hopper__V1__DeadListRequest q = HOPPER__V1__DEAD_LIST_REQUEST__INIT;
        q.lane = lane;
        q.with_payload = true;
        return call(f, m->name, &q.base, scope, tok, raw, rl, r);
    }
    Hopper__V1__DeadRequest q = HOPPER__V1__DEAD_REQUEST__INIT;
    q.lane = lane;
    q.ids = ids;
    q.n_ids = 1;
    return call(f, m->name, &q.base, scope, tok, raw, rl, r);
}

static bool
contains(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(hay + i, needle, k) == 0) {
            return true;
        }
    }
    return false;
}

static void
test_every_combination_allows_exactly_its_grant_and_leaks_nothing(void **state)
{
    fixture *f = *state;
    const char *choices[] = { "alpha", "beta", "gamma", "*" };
    size_t allowed = 0, denied = 0, not_found = 0;

    for (int round = 0; round < ROUNDS; round++) {
        const char *sc[2];
        size_t n_sc = 1 + rnd(f, 2);
        for (size_t i = 0; i < n_sc; i++) {
            sc[i] = choices[rnd(f, 4)];
        }
        uint8_t perms = (uint8_t)(1 + rnd(f, 7));
        char tok[AUTH_TOKEN_MAX];
        mint(f, sc, n_sc, perms, tok);
        int rs = (int)rnd(f, N_SCOPES);
        int is = (int)rnd(f, N_SCOPES); /* the id's own scope */
        int ii = (int)rnd(f, PER_SCOPE);
        const method *m = &methods[rnd(f, sizeof(methods) / sizeof(*m))];
        bool in_scope = false;
        for (size_t i = 0; i < n_sc; i++) {
            in_scope = in_scope || strcmp(sc[i], "*") == 0 ||
                       strcmp(sc[i], scopes[rs]) == 0;
        }
        bool may = in_scope && (perms & m->perm) == m->perm;
        uint8_t *raw;
        size_t rl;
        Hopper__V1__Response *r;

        uint32_t code = send_method(f, m, scopes[rs], tok, f->ids[is][ii],
                                    f->tokens[is][ii], &raw, &rl, &r);

        if (!may) {
            if (code != 7) {
                fail_msg("round %d: %s in %s with a %s token (perms %u) got "
                         "%u, wanted PERMISSION_DENIED",
                         round, m->name, scopes[rs], sc[0], perms, code);
            }
            denied++;
        } else {
            if (code == 7 || code == 16) {
                fail_msg("round %d: %s in %s was refused (%u: %s)", round,
                         m->name, scopes[rs], code, r->status->reason);
            }
            allowed++;
            if (m->by_id && is != rs) {
                /* Another scope's id: the same answer as a missing id. */
                if (code != 5) {
                    fail_msg("round %d: %s of another scope's id got %u "
                             "(%s), wanted NOT_FOUND",
                             round, m->name, code, r->status->reason);
                }
                not_found++;
            }
        }
        for (int s = 0; s < N_SCOPES; s++) {
            char secret[32];
            snprintf(secret, sizeof(secret), "secret-%s", scopes[s]);
            if (s != rs && contains(raw, rl, secret)) {
                fail_msg("round %d: %s in %s leaked %s's data", round, m->name,
                         scopes[rs], scopes[s]);
            }
        }
        hopper__v1__response__free_unpacked(r, NULL);
        free(raw);
    }
    print_message("isolation: %zu allowed, %zu denied, %zu other-scope ids "
                  "answered NOT_FOUND, 0 leaks\n",
                  allowed, denied, not_found);
    assert_true(allowed > 0 && denied > 0 && not_found > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_every_combination_allows_exactly_its_grant_and_leaks_nothing,
            setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
