/*
 * callback_clock_test.c - callbacks hours after delivery. The broker runs
 * in this process on inproc:// with --api on a free loopback port and a
 * test clock (broker_config.clock_source) the test moves forward; a
 * receiver on NNG's HTTP server (also in this process, on a free loopback
 * port) answers every delivery 202 and keeps its Hopper-Callback URL,
 * which the test POSTs to with libcurl, as a receiver's job would:
 *  - with a callback_timeout of 24 h, complete three hours (of the test
 *    clock) after delivery delivers the message with its result;
 *  - past its lease (an hour) but within the token's life, a callback is
 *    409 LOST_CLAIM, as a late ack;
 *  - past the token's life, it is 401 CALLBACK_EXPIRED.
 * callback_test.py covers the rest against a real hopperd, whose clock a
 * test cannot move. Waits are polls for a state with generous deadlines.
 */
#include <curl/curl.h>
#include <hopper/hopper.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "broker/broker.h"
#include "broker/callback.h"
#include "common/clock.h"
#include "fault_util.h"
#include "inproc_fixture.h"

#define HOUR_MS  3600000ull
#define LIMIT_MS 60000u /* generous: loaded machines */
#define SECRET   "whsec-0123456789abcdef"

typedef struct fixture {
    char dir[64];
    broker *b;
    hopper_client *c;
    _Atomic uint64_t wall; /* what the test clock says */
    uint64_t t0;
    nng_http_server *srv;
    char receiver[64]; /* http://127.0.0.1:PORT/accept */
    pthread_mutex_t mtx;
    char callback[CALLBACK_URL_MAX + 1]; /* mtx: the last delivery's */
    int deliveries;                      /* mtx */
} fixture;

static uint64_t
test_clock(void *arg)
{
    fixture *f = arg;
    return atomic_load(&f->wall);
}

/* NNG's thread: one delivery. Answers 202, keeps Hopper-Callback. */
static void
on_delivery(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    fixture *f = nng_http_handler_get_data(h);
    const char *cb = nng_http_req_get_header(req, "Hopper-Callback");
    nng_http_res *res;

    pthread_mutex_lock(&f->mtx);
    snprintf(f->callback, sizeof(f->callback), "%s", cb != NULL ? cb : "");
    f->deliveries++;
    pthread_mutex_unlock(&f->mtx);
    if (nng_http_res_alloc(&res) != 0) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    if (nng_http_res_set_status(res, 202) != 0 ||
        nng_http_res_copy_data(res, "accepted", 8) != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void
start_receiver(fixture *f)
{
    nng_url *u;
    nng_http_handler *h;
    nng_sockaddr sa;
    assert_int_equal(nng_url_parse(&u, "http://127.0.0.1:0"), 0);
    assert_int_equal(nng_http_server_hold(&f->srv, u), 0);
    nng_url_free(u);
    assert_int_equal(nng_http_handler_alloc(&h, "/accept", on_delivery), 0);
    assert_int_equal(nng_http_handler_set_method(h, "POST"), 0);
    assert_int_equal(nng_http_handler_set_data(h, f, NULL), 0);
    assert_int_equal(nng_http_server_add_handler(f->srv, h), 0);
    assert_int_equal(nng_http_server_start(f->srv), 0);
    assert_int_equal(nng_http_server_get_addr(f->srv, &sa), 0);
    snprintf(f->receiver, sizeof(f->receiver), "http://127.0.0.1:%u/accept",
             (unsigned)ntohs(sa.s_in.sa_port));
}

static int
setup(void **state)
{
    static int n;
    fixture *f = calloc(1, sizeof(*f));
    broker_config cfg;
    char url[64];

    inproc_prepare(f->dir, "cbclock", &cfg);
    snprintf(url, sizeof(url), "inproc://hopper-cbclock-%d", n++);
    pthread_mutex_init(&f->mtx, NULL);
    f->t0 = hp_wall_ms();
    atomic_init(&f->wall, f->t0);
    start_receiver(f);
    cfg.listen[0] = url;
    cfg.clock_source = test_clock;
    cfg.clock_arg = f;
    cfg.api_addr = "127.0.0.1:0";
    cfg.webhook_allow_private = true;
    inproc_start(&cfg, &f->b, -1, NULL);
    f->c = fu_client(url, 10000);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    hopper_close(f->c);
    inproc_stop(f->dir, f->b, NULL);
    nng_http_server_release(f->srv);
    pthread_mutex_destroy(&f->mtx);
    free(f);
    return 0;
}

/* Lane delivers to the receiver, with callback_timeout_ms. */
static void
deliver_lane(fixture *f, const char *lane, uint32_t callback_timeout_ms)
{
    hopper_status st;
    hopper_lane_settings s;
    const char *const mask[] = { "deliver_url", "secret_id",
                                 "callback_timeout_ms" };
    memset(&s, 0, sizeof(s));
    snprintf(s.deliver_url, sizeof(s.deliver_url), "%s", f->receiver);
    snprintf(s.secret_id, sizeof(s.secret_id), "hook");
    s.callback_timeout_ms = callback_timeout_ms;
    assert_int_equal(hopper_secret_set(f->c, "hook", SECRET, sizeof(SECRET) - 1,
                                       false, NULL, &st),
                     HOPPER_OK);
    assert_int_equal(hopper_lane_update(f->c, lane, &s, mask, 3, NULL, &st),
                     HOPPER_OK);
}

static hopper_message *
must_get(fixture *f, const char *id)
{
    hopper_status st;
    hopper_message *m = NULL;
    assert_int_equal(hopper_get(f->c, id, &m, &st), HOPPER_OK);
    return m;
}

/* Enqueues into lane and waits until its delivery was answered 202 and
 * the lease extended past the request's; its callback URL into url. */
static void
enqueue_accepted(fixture *f, const char *lane, char *id, char *url)
{
    hopper_status st;
    hopper_enqueued e;
    hopper_draft d = { .lane = lane, .payload = "job", .payload_len = 3 };
    assert_int_equal(hopper_enqueue(f->c, &d, 1, &e, &st), HOPPER_OK);
    memcpy(id, e.id, sizeof(e.id));
    uint64_t until = fu_mono_ms() + LIMIT_MS;
    bool extended = false;
    while (!extended && fu_mono_ms() < until) {
        hopper_message *m = must_get(f, id);
        /* The request's lease is 10 s + 30 s; the 202's an hour or more. */
        extended = m->state == HOPPER_STATE_CLAIMED &&
                   m->lease_expires_at_ms >= f->t0 + HOUR_MS;
        hopper_message_free(m);
        if (!extended) {
            fu_sleep_ms(10);
        }
    }
    assert_true(extended);
    pthread_mutex_lock(&f->mtx);
    assert_int_equal(f->deliveries, 1);
    snprintf(url, CALLBACK_URL_MAX + 1, "%s", f->callback);
    pthread_mutex_unlock(&f->mtx);
    assert_non_null(strstr(url, CALLBACK_PATH));
}

static size_t
on_answer(char *p, size_t size, size_t n, void *arg)
{
    char *out = arg;
    size_t have = strlen(out), len = size * n;
    size_t take = len < 1023 - have ? len : 1023 - have;
    memcpy(out + have, p, take);
    out[have + take] = '\0';
    return len;
}

/* POSTs json to url; the HTTP status, and the answer in out[1024]. */
static long
post(const char *url, const char *json, char *out)
{
    long status = 0;
    CURL *e = curl_easy_init();
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json");
    out[0] = '\0';
    assert_non_null(e);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_URL, url), CURLE_OK);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_POSTFIELDS, json), CURLE_OK);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_HTTPHEADER, h), CURLE_OK);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer),
                     CURLE_OK);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_WRITEDATA, out), CURLE_OK);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)LIMIT_MS),
                     CURLE_OK);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    assert_int_equal(curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status),
                     CURLE_OK);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

static void
test_a_callback_completes_a_message_hours_after_delivery(void **state)
{
    fixture *f = *state;
    char id[27], url[CALLBACK_URL_MAX + 1], answer[1024];
    deliver_lane(f, "reports", 24 * HOUR_MS);
    enqueue_accepted(f, "reports", id, url);
    atomic_store(&f->wall, f->t0 + 3 * HOUR_MS);

    long status =
        post(url, "{\"action\":\"complete\",\"result\":\"all done\"}", answer);

    assert_int_equal(status, 200);
    assert_non_null(strstr(answer, "\"state\":\"delivered\""));
    hopper_message *m = must_get(f, id);
    assert_int_equal(m->state, HOPPER_STATE_DELIVERED);
    assert_int_equal(m->result_len, 8);
    assert_memory_equal(m->result, "all done", 8);
    assert_int_equal(m->finished_at_ms, f->t0 + 3 * HOUR_MS);
    hopper_message_free(m);
}

static void
test_a_callback_after_the_lease_ran_out_is_a_lost_claim(void **state)
{
    fixture *f = *state;
    char id[27], url[CALLBACK_URL_MAX + 1], answer[1024];
    deliver_lane(f, "reports", HOUR_MS);
    enqueue_accepted(f, "reports", id, url);
    /* Past the lease (an hour from the 202), not yet past the token (the
     * request's 40 s, the hour and a minute's margin). */
    atomic_store(&f->wall, f->t0 + HOUR_MS + 30000);

    long status = post(url, "{\"action\":\"complete\"}", answer);

    assert_int_equal(status, 409);
    assert_non_null(strstr(answer, "\"LOST_CLAIM\""));
}

static void
test_a_callback_past_its_token_s_life_is_expired(void **state)
{
    fixture *f = *state;
    char id[27], url[CALLBACK_URL_MAX + 1], answer[1024];
    deliver_lane(f, "reports", HOUR_MS);
    enqueue_accepted(f, "reports", id, url);
    atomic_store(&f->wall, f->t0 + 2 * HOUR_MS);

    long status = post(url, "{\"action\":\"heartbeat\"}", answer);

    assert_int_equal(status, 401);
    assert_non_null(strstr(answer, "\"CALLBACK_EXPIRED\""));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_callback_completes_a_message_hours_after_delivery, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_callback_after_the_lease_ran_out_is_a_lost_claim, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_callback_past_its_token_s_life_is_expired, setup, teardown),
    };
    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
