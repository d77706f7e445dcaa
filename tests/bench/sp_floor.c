/*
 * sp_floor.c - the transport floors of docs/benchmarks.md: request/reply
 * round trips of 300-byte requests, one at a time per client thread, over
 * loopback TCP, with each side either Hopper's own SP code, NNG (req0/rep0
 * with a context and an aio per call, as libhopper and hopperd used to),
 * or plain blocking sockets. The server only echoes; nothing is stored.
 *
 *   sp_floor server hopper|hopper-envelope|nng|raw PORT
 *   sp_floor client hopper|nng|raw PORT THREADS N
 *
 * Servers: "hopper" is hopperd's listener answering each request with its
 * own bytes (the SP transport alone); "hopper-envelope" decodes the
 * hopper.v1.Request and answers a hopper.v1.Response echoing body and
 * request id, which is what a libhopper client needs; "nng" is a rep0
 * socket with 64 contexts; "raw" a thread per connection with blocking
 * reads and writes. Clients: "hopper" is libhopper (hopper_call, so the
 * envelope is packed and checked: use it with hopper-envelope), "nng" a
 * req0 socket with a context and an aio per call, "raw" blocking sockets.
 * The client prints one line: rate, p50 and p99 in microseconds.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "broker/broker.h"
#include "broker/listener.h"
#include "hopper/hopper.h"
#include "hopper/v1/envelope.pb-c.h"
#include "sp/sp.h"

#define REQ_BYTES 300

static double
now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int
cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- servers ------------------------------------------------------------- */

static void
echo_raw(void *arg, const listener_req *r, const void *body, size_t len)
{
    (void)arg;
    listener_reply(r, body, len);
}

static void
echo_envelope(void *arg, const listener_req *r, const void *body, size_t len)
{
    (void)arg;
    uint8_t out[4096];
    Hopper__V1__Request *req = hopper__v1__request__unpack(NULL, len, body);
    Hopper__V1__Response resp = HOPPER__V1__RESPONSE__INIT;
    Hopper__V1__Status st = HOPPER__V1__STATUS__INIT;
    if (req == NULL || req->body.len > 2048) {
        listener_reply(r, NULL, 0);
        hopper__v1__request__free_unpacked(req, NULL);
        return;
    }
    resp.status = &st;
    resp.body = req->body;
    resp.request_id = req->request_id;
    size_t n = hopper__v1__response__pack(&resp, out);
    listener_reply(r, out, n);
    hopper__v1__request__free_unpacked(req, NULL);
}

static int
serve_hopper(const char *port, bool envelope)
{
    char url[64];
    const char *urls[1] = { url };
    listener *l;
    hp_status st;
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%s", port);
    broker_config c;
    broker_config_init(&c); /* hopperd's budgets, from its table */
    listener_opts o = {
        .urls = urls,
        .n_urls = 1,
        .limits = { .max_frame = c.max_frame,
                    .max_connections = c.max_connections,
                    .conn_inflight = c.conn_inflight,
                    .max_inflight = c.max_inflight,
                    .max_partial_bytes = c.max_partial_bytes,
                    .frame_stall_ms = c.frame_timeout_ms,
                    .conn_unsent = c.conn_unsent,
                    .max_unsent_bytes = c.max_unsent_bytes,
                    .send_timeout_ms = c.send_timeout_ms },
    };
    if (listener_open(&o, envelope ? echo_envelope : echo_raw, NULL, &l, &st) !=
            HP_OK ||
        listener_start(l, &st) != HP_OK) {
        fprintf(stderr, "sp_floor: %s\n", st.msg);
        return 1;
    }
    for (;;) {
        pause();
    }
}

typedef struct nng_worker {
    nng_ctx ctx;
    nng_aio *aio;
    int receiving;
} nng_worker;

static void
nng_cb(void *arg)
{
    nng_worker *w = arg;
    if (w->receiving) {
        if (nng_aio_result(w->aio) != 0) {
            return;
        }
        w->receiving = 0;
        nng_ctx_send(w->ctx, w->aio); /* echo the message back */
    } else {
        w->receiving = 1;
        nng_ctx_recv(w->ctx, w->aio);
    }
}

static int
serve_nng(const char *port)
{
    nng_socket s;
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%s", port);
    if (nng_rep0_open(&s) != 0 || nng_listen(s, url, NULL, 0) != 0) {
        fprintf(stderr, "sp_floor: cannot listen on %s\n", url);
        return 1;
    }
    for (int i = 0; i < 64; i++) {
        nng_worker *w = calloc(1, sizeof(*w));
        nng_ctx_open(&w->ctx, s);
        nng_aio_alloc(&w->aio, nng_cb, w);
        w->receiving = 1;
        nng_ctx_recv(w->ctx, w->aio);
    }
    for (;;) {
        pause();
    }
}

static int
read_all(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0) {
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static int
write_all(int fd, const void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = write(fd, (const char *)p + done, n - done);
        if (r <= 0) {
            return -1;
        }
        done += (size_t)r;
    }
    return 0;
}

static void *
raw_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint8_t hs[SP_HANDSHAKE_LEN];
    static _Thread_local uint8_t buf[70000];
    sp_handshake(SP_PROTO_REP0, hs);
    if (write_all(fd, hs, sizeof(hs)) == 0 &&
        read_all(fd, hs, sizeof(hs)) == 0) {
        while (read_all(fd, buf, 8) == 0) {
            uint64_t n = sp_get_u64(buf);
            if (n > sizeof(buf) - 8 || read_all(fd, buf + 8, (size_t)n) ||
                write_all(fd, buf, 8 + (size_t)n)) {
                break;
            }
        }
    }
    close(fd);
    return NULL;
}

static int
serve_raw(const char *port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(port)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 64) != 0) {
        perror("sp_floor: bind");
        return 1;
    }
    for (;;) {
        int c = accept(s, NULL, NULL);
        pthread_t t;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_create(&t, NULL, raw_conn, (void *)(intptr_t)c);
        pthread_detach(t);
    }
}

/* ---- clients ------------------------------------------------------------- */

typedef struct job {
    const char *kind;
    int port;
    int n;
    double *lat;
} job;

static void *
client_hopper(void *arg)
{
    job *j = arg;
    char url[64];
    hopper_client *c;
    hopper_status st;
    char body[REQ_BYTES];
    memset(body, 'p', sizeof(body));
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", j->port);
    if (hopper_connect(url, NULL, &c, &st) != HOPPER_OK) {
        fprintf(stderr, "connect: %s\n", st.message);
        exit(1);
    }
    for (int i = 0; i < j->n; i++) {
        void *out;
        size_t out_len;
        double t = now_us();
        if (hopper_call(c, "Ping", body, sizeof(body), &out, &out_len, 0,
                        &st) != HOPPER_OK) {
            fprintf(stderr, "call: %s %s\n", st.reason, st.message);
            exit(1);
        }
        j->lat[i] = now_us() - t;
        hopper_free(out);
    }
    hopper_close(c);
    return NULL;
}

static void *
client_nng(void *arg)
{
    job *j = arg;
    char url[64];
    nng_socket s;
    uint8_t body[REQ_BYTES];
    memset(body, 'p', sizeof(body));
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", j->port);
    if (nng_req0_open(&s) != 0 || nng_dial(s, url, NULL, 0) != 0) {
        fprintf(stderr, "sp_floor: cannot dial %s\n", url);
        exit(1);
    }
    for (int i = 0; i < j->n; i++) {
        nng_ctx ctx;
        nng_aio *aio;
        nng_msg *m;
        double t = now_us();
        nng_aio_alloc(&aio, NULL, NULL);
        nng_ctx_open(&ctx, s);
        nng_msg_alloc(&m, 0);
        nng_msg_append(m, body, sizeof(body));
        nng_aio_set_msg(aio, m);
        nng_ctx_send(ctx, aio);
        nng_aio_wait(aio);
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) != 0) {
            fprintf(stderr, "sp_floor: nng round trip failed\n");
            exit(1);
        }
        nng_msg_free(nng_aio_get_msg(aio));
        nng_ctx_close(ctx);
        nng_aio_free(aio);
        j->lat[i] = now_us() - t;
    }
    nng_close(s);
    return NULL;
}

static void *
client_raw(void *arg)
{
    job *j = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)j->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    uint8_t hs[SP_HANDSHAKE_LEN], f[8 + 4 + REQ_BYTES], r[8 + 4 + 4096];
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("sp_floor: connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sp_handshake(SP_PROTO_REQ0, hs);
    write_all(fd, hs, sizeof(hs));
    read_all(fd, hs, sizeof(hs));
    memset(f, 'p', sizeof(f));
    sp_put_u64(f, 4 + REQ_BYTES);
    for (int i = 0; i < j->n; i++) {
        double t = now_us();
        sp_put_u32(f + 8, SP_ID_BIT | (uint32_t)(i + 1));
        if (write_all(fd, f, sizeof(f)) || read_all(fd, r, 8)) {
            exit(1);
        }
        uint64_t n = sp_get_u64(r);
        if (n > sizeof(r) - 8 || read_all(fd, r + 8, (size_t)n)) {
            exit(1);
        }
        j->lat[i] = now_us() - t;
    }
    close(fd);
    return NULL;
}

static int
run_clients(const char *kind, int port, int threads, int n)
{
    pthread_t th[64];
    job jobs[64];
    double *lat = calloc((size_t)threads * (size_t)n, sizeof(*lat));
    void *(*fn)(void *) = strcmp(kind, "hopper") == 0 ? client_hopper
                          : strcmp(kind, "nng") == 0  ? client_nng
                                                      : client_raw;
    if (threads < 1 || threads > 64 || lat == NULL) {
        return 2;
    }
    double t0 = now_us();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (job){ kind, port, n, lat + (size_t)i * (size_t)n };
        pthread_create(&th[i], NULL, fn, &jobs[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
    }
    double wall = now_us() - t0;
    size_t total = (size_t)threads * (size_t)n;
    qsort(lat, total, sizeof(*lat), cmpd);
    printf("client=%s threads=%d rate=%.0f p50_us=%.1f p99_us=%.1f\n", kind,
           threads, (double)total / (wall / 1e6), lat[total / 2],
           lat[total * 99 / 100]);
    free(lat);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "server") == 0) {
        if (strcmp(argv[2], "hopper") == 0) {
            return serve_hopper(argv[3], false);
        }
        if (strcmp(argv[2], "hopper-envelope") == 0) {
            return serve_hopper(argv[3], true);
        }
        if (strcmp(argv[2], "nng") == 0) {
            return serve_nng(argv[3]);
        }
        return serve_raw(argv[3]);
    }
    if (argc >= 6 && strcmp(argv[1], "client") == 0) {
        return run_clients(argv[2], atoi(argv[3]), atoi(argv[4]),
                           atoi(argv[5]));
    }
    fprintf(stderr,
            "usage: sp_floor server hopper|hopper-envelope|nng|raw PORT\n"
            "       sp_floor client hopper|nng|raw PORT THREADS N\n");
    return 2;
}
