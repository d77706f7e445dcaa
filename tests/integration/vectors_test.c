/*
 * vectors_test.c - libhopper and Hopper's SP framing against the shared
 * vectors of tests/vectors (frames.json, calls.json), which the Python
 * client's tests check too, so the two clients cannot drift.
 *
 * Frames: each decodes (src/sp, the generated protobuf-c code) to what it
 * means and packs back to the same bytes. Calls: each libhopper call is
 * made against a fake broker on a loopback port that records the request
 * and answers with the vector's reply; the request body must be the
 * vector's byte for byte, and what the call returns what it expects.
 */
#include <hopper/hopper.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "hopper/v1/envelope.pb-c.h"
#include "sp/sp.h"

#define MAX_BODY 4096

static json_t *
load(const char *name)
{
    char path[512];
    json_error_t err;
    snprintf(path, sizeof(path), "%s/%s", HOPPER_VECTORS, name);
    json_t *j = json_load_file(path, 0, &err);
    if (j == NULL) {
        fail_msg("%s: %s", path, err.text);
    }
    return j;
}

static const char *
str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

static long long
num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Hex into a fresh buffer; *len its size. */
static uint8_t *
unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *b = malloc(n + 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        b[i] = (uint8_t)v;
    }
    *len = n;
    return b;
}

static void
tohex(const uint8_t *p, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    }
    out[2 * len] = '\0';
}

/* ---- frames ---------------------------------------------------------------
 */

static void
check_frame(const json_t *v)
{
    const char *name = str(v, "name");
    size_t len;
    uint8_t *raw = unhex(str(v, "hex"), &len);
    uint8_t hs[SP_HANDSHAKE_LEN];

    if (strcmp(name, "handshake_req0") == 0 ||
        strcmp(name, "handshake_rep0") == 0) {
        sp_handshake(strcmp(name, "handshake_req0") == 0 ? SP_PROTO_REQ0
                                                         : SP_PROTO_REP0,
                     hs);
        assert_int_equal(len, SP_HANDSHAKE_LEN);
        assert_memory_equal(raw, hs, SP_HANDSHAKE_LEN);
        free(raw);
        return;
    }
    assert_true(len >= SP_FRAME_HDR_LEN + 4);
    assert_int_equal(sp_get_u64(raw), len - SP_FRAME_HDR_LEN);
    assert_int_equal(sp_get_u32(raw + 8),
                     (uint32_t)num(v, "sp_id") | SP_ID_BIT);
    const uint8_t *pb = raw + 12;
    size_t pb_len = len - 12;
    uint8_t again[MAX_BODY];
    char body[2 * MAX_BODY + 1];

    if (strcmp(str(v, "kind"), "request") == 0) {
        const json_t *e = json_object_get(v, "envelope");
        Hopper__V1__Request *r = hopper__v1__request__unpack(NULL, pb_len, pb);
        assert_non_null(r);
        assert_string_equal(r->method, str(e, "method"));
        assert_string_equal(r->scope, str(e, "scope"));
        assert_string_equal(r->token, str(e, "token"));
        assert_int_equal(r->deadline_ms, num(e, "deadline_ms"));
        assert_string_equal(r->request_id, str(e, "request_id"));
        tohex(r->body.data, r->body.len, body);
        assert_string_equal(body, str(e, "body"));
        assert_int_equal(hopper__v1__request__pack(r, again), pb_len);
        hopper__v1__request__free_unpacked(r, NULL);
    } else {
        const json_t *e = json_object_get(v, "response");
        Hopper__V1__Response *r =
            hopper__v1__response__unpack(NULL, pb_len, pb);
        assert_non_null(r);
        assert_int_equal(r->status != NULL ? r->status->code : 0,
                         num(e, "code"));
        assert_string_equal(r->status != NULL ? r->status->reason : "",
                            str(e, "reason"));
        assert_string_equal(r->status != NULL ? r->status->message : "",
                            str(e, "message"));
        assert_string_equal(r->request_id, str(e, "request_id"));
        tohex(r->body.data, r->body.len, body);
        assert_string_equal(body, str(e, "body"));
        assert_int_equal(hopper__v1__response__pack(r, again), pb_len);
        hopper__v1__response__free_unpacked(r, NULL);
    }
    assert_memory_equal(again, pb, pb_len);
    free(raw);
}

static void
test_every_frame_decodes_to_its_meaning_and_packs_back(void **state)
{
    (void)state;
    json_t *all = load("frames.json");
    size_t i;
    json_t *v;

    json_array_foreach(all, i, v)
    {
        print_message("frame %s\n", str(v, "name"));
        check_frame(v);
    }
    json_decref(all);
}

/* ---- calls through libhopper against a fake broker ------------------------
 */

typedef struct fake {
    int ls;
    char url[64];
    pthread_t thread;
    pthread_mutex_t mtx;
    const json_t *vector; /* f->mtx */
    char method[128];     /* f->mtx: what came last */
    char body[2 * MAX_BODY + 1];
    int requests;
} fake;

static bool
read_exact(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t got = read(fd, p, n);
        if (got <= 0) {
            return false;
        }
        p += got;
        n -= (size_t)got;
    }
    return true;
}

static void
answer(fake *f, int fd, const uint8_t *msg, size_t len)
{
    Hopper__V1__Request *req =
        hopper__v1__request__unpack(NULL, len - 4, msg + 4);
    Hopper__V1__Response resp = HOPPER__V1__RESPONSE__INIT;
    Hopper__V1__Status status = HOPPER__V1__STATUS__INIT;
    uint8_t out[SP_FRAME_HDR_LEN + 4 + MAX_BODY];
    size_t body_len = 0;

    if (req == NULL) {
        return;
    }
    pthread_mutex_lock(&f->mtx);
    snprintf(f->method, sizeof(f->method), "%s", req->method);
    if (req->body.len <= MAX_BODY) {
        tohex(req->body.data, req->body.len, f->body);
    }
    f->requests++;
    const json_t *r = json_object_get(f->vector, "response");
    uint8_t *body = unhex(str(r, "body"), &body_len);
    status.code = (uint32_t)num(r, "code");
    status.reason = (char *)(uintptr_t)str(r, "reason");
    status.message = (char *)(uintptr_t)str(r, "message");
    resp.status = &status;
    resp.body.data = body;
    resp.body.len = body_len;
    resp.request_id = req->request_id;
    size_t n = hopper__v1__response__pack(&resp, out + 12);
    pthread_mutex_unlock(&f->mtx);
    sp_put_u64(out, 4 + n);
    memcpy(out + 8, msg, 4); /* the request's header, unchanged */
    ssize_t w = write(fd, out, 12 + n);
    assert_int_equal(w, (ssize_t)(12 + n));
    free(body);
    hopper__v1__request__free_unpacked(req, NULL);
}

static void *
fake_main(void *arg)
{
    fake *f = arg;
    for (;;) {
        int fd = accept(f->ls, NULL, NULL);
        uint8_t hs[SP_HANDSHAKE_LEN], head[SP_FRAME_HDR_LEN];
        if (fd < 0) {
            return NULL;
        }
        sp_handshake(SP_PROTO_REP0, hs);
        if (read_exact(fd, head, SP_HANDSHAKE_LEN) &&
            write(fd, hs, sizeof(hs)) == (ssize_t)sizeof(hs)) {
            while (read_exact(fd, head, sizeof(head))) {
                uint64_t n = sp_get_u64(head);
                uint8_t *msg = n >= 4 && n < (1u << 20) ? malloc(n) : NULL;
                if (msg == NULL || !read_exact(fd, msg, n)) {
                    free(msg);
                    break;
                }
                answer(f, fd, msg, n);
                free(msg);
            }
        }
        close(fd);
    }
}

static int
fake_setup(void **state)
{
    fake *f = calloc(1, sizeof(*f));
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    assert_non_null(f);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->ls >= 0);
    assert_int_equal(bind(f->ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->ls, 8), 0);
    assert_int_equal(getsockname(f->ls, (struct sockaddr *)&sa, &sl), 0);
    snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%u",
             (unsigned)ntohs(sa.sin_port));
    pthread_mutex_init(&f->mtx, NULL);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    *state = f;
    return 0;
}

static int
fake_teardown(void **state)
{
    fake *f = *state;
    shutdown(f->ls, SHUT_RDWR);
    close(f->ls);
    pthread_join(f->thread, NULL);
    pthread_mutex_destroy(&f->mtx);
    free(f);
    return 0;
}

static hopper_token
token_of(const json_t *o)
{
    hopper_token t;
    assert_int_equal(hopper_token_parse(str(o, "token"), &t), HOPPER_OK);
    return t;
}

/* Makes the call the vector names; returns what it got as JSON, in the
 * vector's "expect" shape. */
static json_t *
invoke(hopper_client *c, const char *call, const json_t *a)
{
    hopper_status st;
    int code = HOPPER_OK;
    json_t *got = json_object();

    if (strcmp(call, "enqueue") == 0) {
        const json_t *h = json_array_get(json_object_get(a, "headers"), 0);
        hopper_header hd = { json_string_value(json_array_get(h, 0)),
                             json_string_value(json_array_get(h, 1)) };
        hopper_draft d = { .lane = str(a, "lane"),
                           .payload = str(a, "payload"),
                           .payload_len = strlen(str(a, "payload")),
                           .headers = &hd,
                           .n_headers = 1,
                           .dedupe_key = str(a, "dedupe_key"),
                           .priority = (uint32_t)num(a, "priority") };
        hopper_enqueued out;
        if ((code = hopper_enqueue(c, &d, 1, &out, &st)) == HOPPER_OK) {
            json_object_set_new(got, "id", json_string(out.id));
            json_object_set_new(got, "duplicate", json_boolean(out.duplicate));
        }
    } else if (strcmp(call, "claim") == 0) {
        hopper_claim_opts o = { .max = (uint32_t)num(a, "max"),
                                .lease_ms = (uint32_t)num(a, "lease_ms"),
                                .wait_ms = (uint32_t)num(a, "wait_ms") };
        hopper_batch *b;
        if ((code = hopper_claim(c, str(a, "lane"), &o, &b, &st)) ==
            HOPPER_OK) {
            json_t *ms = json_array();
            for (size_t i = 0; i < b->n; i++) {
                char tok[33];
                hopper_token_format(&b->msgs[i].token, tok);
                json_array_append_new(
                    ms, json_pack("{s:s, s:i, s:s%, s:s}", "id", b->msgs[i].id,
                                  "attempts", (int)b->msgs[i].attempts,
                                  "payload", (const char *)b->msgs[i].payload,
                                  b->msgs[i].payload_len, "token", tok));
            }
            json_object_set_new(got, "messages", ms);
            hopper_batch_free(b);
        }
    } else if (strcmp(call, "ack") == 0) {
        hopper_ack_item it = { .id = str(a, "id"),
                               .token = token_of(a),
                               .result = str(a, "result"),
                               .result_len = strlen(str(a, "result")) };
        code = hopper_ack(c, &it, 1, NULL, 0, NULL, &st);
    } else if (strcmp(call, "ack_each") == 0) {
        const json_t *items = json_object_get(a, "items");
        const json_t *fu = json_array_get(json_object_get(a, "followups"), 0);
        hopper_ack_item it[2];
        hopper_status each[2];
        hopper_draft d = { .lane = str(fu, "lane"),
                           .payload = str(fu, "payload"),
                           .payload_len = strlen(str(fu, "payload")) };
        hopper_enqueued fo;
        bool done;
        for (size_t i = 0; i < 2; i++) {
            const json_t *x = json_array_get(items, i);
            it[i] =
                (hopper_ack_item){ .id = str(x, "id"), .token = token_of(x) };
        }
        if ((code = hopper_ack_each(c, it, 2, &d, 1, each, &fo, &done, &st)) ==
            HOPPER_OK) {
            json_t *outs = json_array();
            for (size_t i = 0; i < 2; i++) {
                json_array_append_new(
                    outs, each[i].code == HOPPER_OK
                              ? json_pack("{s:i}", "code", 0)
                              : json_pack("{s:i, s:s}", "code", each[i].code,
                                          "reason", each[i].reason));
            }
            json_object_set_new(got, "items", outs);
            json_object_set_new(got, "followups_done", json_boolean(done));
        }
    } else if (strcmp(call, "nack") == 0) {
        hopper_token t = token_of(a);
        hopper_nack_opts o = {
            .error = str(a, "error"),
            .retry_in_ms = (uint64_t)num(a, "retry_in_ms"),
            .keep_attempt = json_is_true(json_object_get(a, "keep_attempt")),
            .dead_letter = json_is_true(json_object_get(a, "dead_letter"))
        };
        hopper_nack_result r;
        if ((code = hopper_nack(c, str(a, "id"), &t, &o, &r, &st)) ==
            HOPPER_OK) {
            json_object_set_new(got, "dead", json_boolean(r.dead));
            json_object_set_new(got, "retry_at_ms",
                                json_integer((json_int_t)r.retry_at_ms));
        }
    } else if (strcmp(call, "extend") == 0) {
        hopper_token t = token_of(a);
        uint64_t at;
        if ((code = hopper_extend(c, str(a, "id"), &t,
                                  (uint32_t)num(a, "lease_ms"), &at, &st)) ==
            HOPPER_OK) {
            json_object_set_new(got, "lease_expires_at_ms",
                                json_integer((json_int_t)at));
        }
    } else if (strcmp(call, "get") == 0) {
        hopper_message *m;
        if ((code = hopper_get(c, str(a, "id"), &m, &st)) == HOPPER_OK) {
            json_object_set_new(got, "id", json_string(m->id));
            json_object_set_new(got, "state", json_integer(m->state));
            json_object_set_new(got, "result",
                                json_stringn(m->result != NULL ? m->result : "",
                                             m->result_len));
            hopper_message_free(m);
        }
    } else {
        fail_msg("no such call '%s'", call);
    }
    if (code != HOPPER_OK) {
        json_object_set_new(
            got, "error",
            json_pack("{s:i, s:s}", "code", code, "reason", st.reason));
    }
    return got;
}

static void
test_every_call_sends_the_vector_and_returns_its_meaning(void **state)
{
    fake *f = *state;
    json_t *all = load("calls.json");
    size_t i;
    json_t *v;

    json_array_foreach(all, i, v)
    {
        hopper_client *c;
        hopper_status st;
        print_message("call %s\n", str(v, "name"));
        pthread_mutex_lock(&f->mtx);
        f->vector = v;
        f->requests = 0;
        pthread_mutex_unlock(&f->mtx);
        assert_int_equal(hopper_connect(f->url, NULL, &c, &st), HOPPER_OK);

        json_t *got = invoke(c, str(v, "call"), json_object_get(v, "args"));
        hopper_close(c);

        const json_t *req = json_object_get(v, "request");
        pthread_mutex_lock(&f->mtx);
        assert_int_equal(f->requests, 1);
        assert_string_equal(f->method, str(req, "method"));
        assert_string_equal(f->body, str(req, "body"));
        pthread_mutex_unlock(&f->mtx);
        if (!json_equal(got, json_object_get(v, "expect"))) {
            char *g = json_dumps(got, JSON_COMPACT);
            char *w = json_dumps(json_object_get(v, "expect"), JSON_COMPACT);
            fail_msg("%s: got %s, want %s", str(v, "name"), g, w);
        }
        json_decref(got);
    }
    json_decref(all);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_every_frame_decodes_to_its_meaning_and_packs_back),
        cmocka_unit_test_setup_teardown(
            test_every_call_sends_the_vector_and_returns_its_meaning,
            fake_setup, fake_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
