/*
 * interop_test.c - Hopper's own SP transport against NNG, the reference
 * implementation, both ways and over both transports: libhopper calls a
 * plain libnng rep0 server over tcp:// and tls+tcp://, and a plain libnng
 * req0 client calls hopperd over tls+tcp:// (raw_protocol_test covers
 * tcp://). NNG's TLS is mbedTLS 2.28 (TLS 1.2); libhopper and hopperd use
 * OpenSSL (TLS 1.3 between themselves), so this also proves the two TLS
 * stacks agree.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "harness.h"
#include "hopper/hopper.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"

typedef struct fixture {
    char dir[64]; /* certificates */
    char ca[128], cert[128], key[128];
} fixture;

/* Runs a shell command in dir. */
static int
sh(const char *cmd, const char *dir)
{
    char full[2048];
    snprintf(full, sizeof(full), "cd '%s' && %s", dir, cmd);
    return system(full);
}

/* A throw-away CA and a server certificate for the name hopper.test. */
static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/hopper-interop-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(
        sh("printf '[req]\\ndistinguished_name=dn\\nprompt=no\\n"
           "[dn]\\nCN=x\\n[ca]\\nbasicConstraints=critical,CA:TRUE\\n"
           "keyUsage=critical,keyCertSign\\n[srv]\\n"
           "subjectAltName=DNS:hopper.test\\n"
           "extendedKeyUsage=serverAuth\\n' > o.cnf && "
           "openssl req -config o.cnf -x509 -newkey ec -pkeyopt "
           "ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=ca "
           "-extensions ca -keyout ca.key -out ca.crt 2>/dev/null && "
           "openssl req -config o.cnf -new -newkey ec -pkeyopt "
           "ec_paramgen_curve:prime256v1 -nodes -subj /CN=hopper.test "
           "-keyout srv.key -out srv.csr 2>/dev/null && "
           "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key "
           "-set_serial 2 -days 1 -extfile o.cnf -extensions srv "
           "-out srv.crt 2>/dev/null && chmod 600 srv.key",
           f->dir),
        0);
    snprintf(f->ca, sizeof(f->ca), "%s/ca.crt", f->dir);
    snprintf(f->cert, sizeof(f->cert), "%s/srv.crt", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/srv.key", f->dir);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- libhopper -> NNG rep0 ----------------------------------------------- */

#define SERVER_MAX_IDS 8

typedef struct nng_server {
    nng_socket sock;
    pthread_t thread;
    int want; /* requests to answer; 0: one */
    int answered;
    char ids[SERVER_MAX_IDS][129]; /* the request ids answered, in order */
} nng_server;

/* Answers one request the way hopperd would answer a Ping: the request id
 * echoed, an OK status and a PingResponse naming this server. Returns
 * false when nothing came or it was no Ping. */
static bool
answer_one(nng_server *s)
{
    void *buf = NULL;
    size_t len = 0;

    if (nng_recv(s->sock, &buf, &len, NNG_FLAG_ALLOC) != 0) {
        return false;
    }
    Hopper__V1__Request *req = hopper__v1__request__unpack(NULL, len, buf);
    nng_free(buf, len);
    if (req == NULL) {
        return false;
    }
    Hopper__V1__PingResponse ping = HOPPER__V1__PING_RESPONSE__INIT;
    Hopper__V1__Status status = HOPPER__V1__STATUS__INIT;
    Hopper__V1__Response resp = HOPPER__V1__RESPONSE__INIT;
    uint8_t body[256], out[512];
    ping.version = (char *)(uintptr_t) "nng-rep0";
    ping.now_ms = 1234;
    resp.status = &status;
    resp.body.len = hopper__v1__ping_response__pack(&ping, body);
    resp.body.data = body;
    resp.request_id = req->request_id;
    size_t n = hopper__v1__response__pack(&resp, out);
    bool ok = strcmp(req->method, "/hopper.v1.Broker/Ping") == 0 &&
              nng_send(s->sock, out, n, 0) == 0;
    if (ok) {
        if (s->answered < SERVER_MAX_IDS) {
            snprintf(s->ids[s->answered], sizeof(s->ids[0]), "%s",
                     req->request_id);
        }
        s->answered++;
    }
    hopper__v1__request__free_unpacked(req, NULL);
    return ok;
}

static void *
serve_one(void *arg)
{
    nng_server *s = arg;
    int want = s->want > 0 ? s->want : 1;
    while (s->answered < want && answer_one(s)) {
    }
    return NULL;
}

/* A rep0 socket on a free port; *url gets the URL to dial. */
static void
nng_server_start(nng_server *s, const char *scheme, nng_tls_config *tls,
                 char *url, size_t url_len)
{
    nng_listener l;
    nng_sockaddr sa;
    char listen_url[64];

    snprintf(listen_url, sizeof(listen_url), "%s://127.0.0.1:0", scheme);
    assert_int_equal(nng_rep0_open(&s->sock), 0);
    assert_int_equal(nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, 20000), 0);
    assert_int_equal(nng_listener_create(&l, s->sock, listen_url), 0);
    if (tls != NULL) {
        assert_int_equal(nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls), 0);
    }
    assert_int_equal(nng_listener_start(l, 0), 0);
    assert_int_equal(nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa), 0);
    snprintf(
        url, url_len, "%s://127.0.0.1:%u", scheme,
        (unsigned)(((sa.s_in.sa_port & 0xffu) << 8) | (sa.s_in.sa_port >> 8)));
    assert_int_equal(pthread_create(&s->thread, NULL, serve_one, s), 0);
}

static void
ping_nng_server(const char *url, const hopper_options *o)
{
    hopper_client *c;
    hopper_status st;
    hopper_ping_info info;

    assert_int_equal(hopper_connect(url, o, &c, &st), HOPPER_OK);

    int code = hopper_ping(c, &info, &st);

    assert_int_equal(code, HOPPER_OK);
    assert_string_equal(info.version, "nng-rep0");
    assert_int_equal(info.now_ms, 1234);
    hopper_close(c);
}

static void
test_libhopper_calls_an_nng_rep0_server_over_tcp(void **state)
{
    (void)state;
    nng_server s = { 0 };
    char url[64];
    hopper_options o;
    hopper_options_init(&o);
    nng_server_start(&s, "tcp", NULL, url, sizeof(url));

    ping_nng_server(url, &o);

    pthread_join(s.thread, NULL);
    assert_int_equal(s.answered, 1);
    nng_close(s.sock);
}

static void
test_libhopper_calls_an_nng_rep0_server_over_tls(void **state)
{
    fixture *f = *state;
    nng_server s = { 0 };
    nng_tls_config *tls;
    char url[64];
    hopper_options o;
    assert_int_equal(nng_tls_config_alloc(&tls, NNG_TLS_MODE_SERVER), 0);
    assert_int_equal(nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_NONE), 0);
    char pem[256];
    snprintf(pem, sizeof(pem), "%s/srv.pem", f->dir);
    assert_int_equal(sh("cat srv.crt srv.key > srv.pem", f->dir), 0);
    assert_int_equal(nng_tls_config_cert_key_file(tls, pem, NULL), 0);
    nng_server_start(&s, "tls+tcp", tls, url, sizeof(url));
    nng_tls_config_free(tls);
    hopper_options_init(&o);
    o.tls_ca_file = f->ca;
    o.tls_server_name = "hopper.test";

    ping_nng_server(url, &o);

    pthread_join(s.thread, NULL);
    assert_int_equal(s.answered, 1);
    nng_close(s.sock);
}

/* Pings the server n times from one client. */
static void
ping_n(const char *url, int n)
{
    hopper_client *c;
    hopper_status st;
    hopper_ping_info info;
    hopper_options o;
    hopper_options_init(&o);
    assert_int_equal(hopper_connect(url, &o, &c, &st), HOPPER_OK);
    for (int i = 0; i < n; i++) {
        assert_int_equal(hopper_ping(c, &info, &st), HOPPER_OK);
    }
    hopper_close(c);
}

static bool
lower_hex(const char *id, size_t len)
{
    if (strlen(id) != len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') ||
              (id[i] >= 'a' && id[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* libhopper's request ids as a server receives them: 48 lowercase hex
 * digits, all different; one client's sort in the order of its calls and
 * share their first 16 digits (what lets the broker keep a client's
 * consecutive outcomes in one B-tree leaf: clients/c/src/reqid.c), another
 * client's start otherwise; and the last 16, which make an id unguessable,
 * are not the call's number (the middle 16). The server is static: if a
 * call's assertion ends the test early, its thread still has somewhere
 * valid to write until its receive times out. */
static void
test_libhopper_request_ids_sort_by_call(void **state)
{
    (void)state;
    static nng_server s;
    memset(&s, 0, sizeof(s));
    s.want = 6;
    char url[64];
    nng_server_start(&s, "tcp", NULL, url, sizeof(url));

    ping_n(url, 3);
    ping_n(url, 3);

    pthread_join(s.thread, NULL);
    assert_int_equal(s.answered, 6);
    nng_close(s.sock);
    for (int i = 0; i < 6; i++) {
        assert_true(lower_hex(s.ids[i], 48));
        assert_true(memcmp(s.ids[i] + 32, s.ids[i] + 16, 16) != 0);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(s.ids[i], s.ids[j]);
        }
    }
    for (int first = 0; first < 6; first += 3) {
        for (int i = first + 1; i < first + 3; i++) {
            assert_true(strcmp(s.ids[i - 1], s.ids[i]) < 0);
            assert_memory_equal(s.ids[i], s.ids[first], 16);
        }
    }
    assert_true(memcmp(s.ids[0], s.ids[3], 16) != 0);
}

/* ---- NNG req0 -> hopperd over TLS ---------------------------------------- */

static void
test_an_nng_req0_client_calls_hopperd_over_tls(void **state)
{
    fixture *f = *state;
    broker_proc bp;
    const char *extra[] = { "--listen",   "tls+tcp://127.0.0.1:0",
                            "--tls-cert", f->cert,
                            "--tls-key",  f->key,
                            NULL };
    nng_socket sock;
    nng_dialer d;
    nng_tls_config *tls;
    Hopper__V1__PingRequest ping = HOPPER__V1__PING_REQUEST__INIT;
    Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;
    uint8_t body[64], out[256];
    void *reply = NULL;
    size_t len = 0;
    assert_int_equal(broker_proc_start(&bp, extra), 0);
    assert_non_null(strstr(bp.url, "tls+tcp://")); /* the last listener */
    assert_int_equal(nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT), 0);
    assert_int_equal(nng_tls_config_ca_file(tls, f->ca), 0);
    assert_int_equal(nng_tls_config_server_name(tls, "hopper.test"), 0);
    assert_int_equal(nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_REQUIRED),
                     0);
    assert_int_equal(nng_req0_open(&sock), 0);
    assert_int_equal(nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 20000), 0);
    assert_int_equal(nng_dialer_create(&d, sock, bp.url), 0);
    assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls), 0);
    assert_int_equal(nng_dialer_start(d, 0), 0);
    nng_tls_config_free(tls);
    req.method = (char *)(uintptr_t) "/hopper.v1.Broker/Ping";
    req.body.len = hopper__v1__ping_request__pack(&ping, body);
    req.body.data = body;
    req.request_id = (char *)(uintptr_t) "interop-1";
    size_t n = hopper__v1__request__pack(&req, out);

    assert_int_equal(nng_send(sock, out, n, 0), 0);
    assert_int_equal(nng_recv(sock, &reply, &len, NNG_FLAG_ALLOC), 0);

    Hopper__V1__Response *resp = hopper__v1__response__unpack(NULL, len, reply);
    assert_non_null(resp);
    assert_true(resp->status == NULL || resp->status->code == 0);
    assert_string_equal(resp->request_id, "interop-1");
    Hopper__V1__PingResponse *pr = hopper__v1__ping_response__unpack(
        NULL, resp->body.len, resp->body.data);
    assert_non_null(pr);
    assert_true(strlen(pr->version) > 0);
    hopper__v1__ping_response__free_unpacked(pr, NULL);
    hopper__v1__response__free_unpacked(resp, NULL);
    nng_free(reply, len);
    nng_close(sock);
    assert_int_equal(broker_proc_stop(&bp), 0);
    broker_proc_cleanup(&bp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_libhopper_calls_an_nng_rep0_server_over_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_libhopper_calls_an_nng_rep0_server_over_tls, setup, teardown),
        cmocka_unit_test(test_libhopper_request_ids_sort_by_call),
        cmocka_unit_test_setup_teardown(
            test_an_nng_req0_client_calls_hopperd_over_tls, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
