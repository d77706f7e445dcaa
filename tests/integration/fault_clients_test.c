/*
 * fault_clients_test.c - clients that misbehave: one that sends requests
 * and never reads a reply, a thousand idle connections, and clients that
 * hang up in the middle of a long-poll claim. Meanwhile a well-behaved
 * client must be served, and afterwards hopperd must hold as many
 * descriptors as before (/proc/PID/fd) and about as much memory (VmRSS,
 * with slack for allocator caches).
 *
 * The misbehaving clients speak raw TCP with the SP framing NNG uses
 * (docs/protocol.md): an 8-byte header naming the req0 protocol, then
 * length-prefixed messages whose body starts with a 4-byte request id.
 */
#include <errno.h>
#include <hopper/hopper.h>
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
#include <sys/resource.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "fault_util.h"
#include "harness.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"

#define IDLE_CONNS    1000
#define DEAF_REQUESTS 64
#define BIG_MSGS      50
#define BIG_LEN       16384
#define GHOSTS        200
#define RSS_SLACK_KIB (64 * 1024) /* ASan's quarantine alone keeps MiBs */

/* A TCP connection to url (tcp://127.0.0.1:PORT) that has sent the SP
 * header of a req0 peer; -1 on failure. */
static int
sp_connect(const char *url)
{
    static const uint8_t hdr[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
    const char *port = strrchr(url, ':');
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_port = htons((uint16_t)atoi(port + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one framed request: length, request id, packed envelope. */
static void
sp_send(int fd, uint32_t req_id, const char *method,
        const ProtobufCMessage *body)
{
    Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;
    size_t blen = protobuf_c_message_get_packed_size(body);
    uint8_t *b = malloc(blen + 1);
    protobuf_c_message_pack(body, b);
    req.method = (char *)(uintptr_t)method;
    req.body.data = b;
    req.body.len = blen;
    size_t elen = hopper__v1__request__get_packed_size(&req);
    uint8_t *frame = malloc(12 + elen);
    uint64_t len = 4 + elen;
    for (int i = 0; i < 8; i++) {
        frame[i] = (uint8_t)(len >> (56 - 8 * i));
    }
    req_id |= 0x80000000u; /* the last (here only) hop of the backtrace */
    for (int i = 0; i < 4; i++) {
        frame[8 + i] = (uint8_t)(req_id >> (24 - 8 * i));
    }
    hopper__v1__request__pack(&req, frame + 12);
    size_t off = 0;
    while (off < 12 + elen) {
        ssize_t w = write(fd, frame + off, 12 + elen - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    free(frame);
    free(b);
}

/* The well-behaved client: a full enqueue, claim, ack round must work
 * within the client's 5 s timeout. */
static void
good_round(hopper_client *c, const char *lane)
{
    hopper_status st;
    hopper_batch *b = NULL;
    hopper_draft d = { .lane = lane, .payload = "ok", .payload_len = 2 };
    hopper_claim_opts co = { .max = 1, .lease_ms = 30000, .wait_ms = 2000 };
    if (hopper_enqueue(c, &d, 1, NULL, &st) != HOPPER_OK ||
        hopper_claim(c, lane, &co, &b, &st) != HOPPER_OK || b->n != 1 ||
        hopper_ack1(c, b->msgs[0].id, &b->msgs[0].token, &st) != HOPPER_OK) {
        fail_msg("a well-behaved client was not served on '%s': %s %s", lane,
                 b == NULL ? hopper_status_str(st.code) : "no message",
                 b == NULL ? st.message : "");
    }
    hopper_batch_free(b);
}

/* Waits up to 10 s for pid's descriptor count to come back to want. */
static int
settle_fds(pid_t pid, int want)
{
    int n = fu_fd_count(pid);
    uint64_t deadline = fu_mono_ms() + 10000;
    while (n != want && fu_mono_ms() < deadline) {
        fu_sleep_ms(50);
        n = fu_fd_count(pid);
    }
    return n;
}

typedef struct fixture {
    broker_proc bp;
    hopper_client *good;
    int fd_base;
    long rss_base;
} fixture;

/* Under ASan, freed memory waits in a quarantine of up to 256 MiB before
 * reuse, which alone made hopperd's VmRSS go from 17 MiB to 300 MiB after
 * the deaf client's 50 MiB of replies were freed (a release build: 7 to
 * 32 MiB). A small quarantine keeps what RSS shows about hopperd. The
 * option is ignored by builds without ASan. */
static void
small_asan_quarantine(void)
{
    static char opts[512];
    const char *old = getenv("ASAN_OPTIONS");
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=8",
             old != NULL ? old : "", old != NULL && old[0] ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
}

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    small_asan_quarantine();
    assert_int_equal(broker_proc_start(&f->bp, NULL), 0);
    f->good = fu_client(f->bp.url, 5000);
    good_round(f->good, "warmup"); /* the good client's pipe is counted */
    f->fd_base = fu_fd_count(f->bp.pid);
    f->rss_base = fu_rss_kib(f->bp.pid);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    hopper_close(f->good);
    broker_proc_cleanup(&f->bp);
    free(f);
    return 0;
}

/* After a scenario: the good client still works, descriptors are back at
 * the baseline, memory is within the slack. */
static void
check_after(fixture *f, const char *what)
{
    good_round(f->good, "after");
    int fds = settle_fds(f->bp.pid, f->fd_base);
    long rss = fu_rss_kib(f->bp.pid);
    print_message("%s: hopperd fds %d -> %d, VmRSS %ld -> %ld KiB\n", what,
                  f->fd_base, fds, f->rss_base, rss);
    assert_int_equal(fds, f->fd_base);
    assert_true(rss - f->rss_base < RSS_SLACK_KIB);
}

static void
test_a_client_that_never_reads_replies_stalls_no_one(void **state)
{
    fixture *f = *state;
    static uint8_t payload[BIG_LEN];
    hopper_status st;
    for (int i = 0; i < BIG_MSGS; i++) {
        hopper_draft d = { .lane = "big",
                           .payload = payload,
                           .payload_len = sizeof(payload) };
        assert_int_equal(hopper_enqueue(f->good, &d, 1, NULL, &st), HOPPER_OK);
    }
    Hopper__V1__ListRequest lr = HOPPER__V1__LIST_REQUEST__INIT;
    lr.lane = (char *)(uintptr_t) "big";
    lr.limit = BIG_MSGS;
    lr.with_payload = true; /* each reply is about 800 KiB */
    int deaf = sp_connect(f->bp.url);
    assert_true(deaf >= 0);

    for (uint32_t i = 0; i < DEAF_REQUESTS; i++) {
        sp_send(deaf, i + 1, "/hopper.v1.Broker/List", &lr.base);
    }
    for (int i = 0; i < 20; i++) {
        good_round(f->good, "served");
    }
    close(deaf);

    check_after(f, "deaf client");
}

static void
test_a_thousand_idle_connections_stall_no_one(void **state)
{
    fixture *f = *state;
    struct rlimit rl;
    int *fds = calloc(IDLE_CONNS, sizeof(int));
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < IDLE_CONNS + 64 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    int open_fds = 0;
    for (int i = 0; i < IDLE_CONNS; i++) {
        fds[i] = sp_connect(f->bp.url);
        if (fds[i] < 0) {
            fail_msg("connection %d refused: %s", i, strerror(errno));
        }
        open_fds++;
    }
    /* hopperd really holds them all. */
    uint64_t deadline = fu_mono_ms() + 10000;
    while (fu_fd_count(f->bp.pid) < f->fd_base + IDLE_CONNS &&
           fu_mono_ms() < deadline) {
        fu_sleep_ms(50);
    }
    int fds_busy = fu_fd_count(f->bp.pid);
    long rss_busy = fu_rss_kib(f->bp.pid);

    for (int i = 0; i < 20; i++) {
        good_round(f->good, "served");
    }
    for (int i = 0; i < open_fds; i++) {
        close(fds[i]);
    }
    free(fds);

    print_message("%d idle connections: hopperd fds %d, VmRSS %ld KiB\n",
                  IDLE_CONNS, fds_busy, rss_busy);
    assert_true(fds_busy >= f->fd_base + IDLE_CONNS);
    check_after(f, "idle connections");
}

static void
test_clients_that_hang_up_mid_long_poll_take_no_message(void **state)
{
    fixture *f = *state;
    hopper_status st;
    Hopper__V1__ClaimRequest cr = HOPPER__V1__CLAIM_REQUEST__INIT;
    cr.lane = (char *)(uintptr_t) "ghost";
    cr.wait_ms = 30000;
    cr.lease_ms = 60000;

    for (int i = 0; i < GHOSTS; i++) {
        nng_socket s;
        assert_int_equal(nng_req0_open(&s), 0);
        assert_int_equal(nng_dial(s, f->bp.url, NULL, 0), 0);
        Hopper__V1__Request req = HOPPER__V1__REQUEST__INIT;
        uint8_t body[64];
        req.method = (char *)(uintptr_t) "/hopper.v1.Broker/Claim";
        req.body.len = hopper__v1__claim_request__pack(&cr, body);
        req.body.data = body;
        uint8_t buf[256];
        size_t len = hopper__v1__request__pack(&req, buf);
        assert_int_equal(nng_send(s, buf, len, 0), 0);
        nng_close(s); /* gone while the claim is parked */
    }
    fu_sleep_ms(200);

    /* A message enqueued now must go to the one client still listening,
     * not to a parked claim whose client is gone. */
    hopper_draft d = { .lane = "ghost", .payload = "x", .payload_len = 1 };
    hopper_enqueued out;
    assert_int_equal(hopper_enqueue(f->good, &d, 1, &out, &st), HOPPER_OK);
    hopper_batch *b = NULL;
    hopper_claim_opts co = { .max = 1, .lease_ms = 30000, .wait_ms = 2000 };
    assert_int_equal(hopper_claim(f->good, "ghost", &co, &b, &st), HOPPER_OK);
    if (b->n != 1) {
        hopper_message *m = NULL;
        assert_int_equal(hopper_get(f->good, out.id, &m, &st), HOPPER_OK);
        fail_msg("the message went to a vanished client: state %d, lease "
                 "until %llu",
                 m->state, (unsigned long long)m->lease_expires_at_ms);
    }
    assert_int_equal(
        hopper_ack1(f->good, b->msgs[0].id, &b->msgs[0].token, &st), HOPPER_OK);
    hopper_batch_free(b);

    check_after(f, "hang-ups mid long-poll");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_client_that_never_reads_replies_stalls_no_one, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_thousand_idle_connections_stall_no_one, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_clients_that_hang_up_mid_long_poll_take_no_message, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
