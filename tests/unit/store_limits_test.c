/*
 * store_limits_test.c - input bounds, each at n (accepted) and n + 1
 * (refused with its reason), and the all-or-nothing rule for a batch with
 * one bad draft. Most tests run with small limits set in store_opts.
 */
#include <string.h>

#include "store_fixture.h"

#define SMALL_PAYLOAD      100u
#define SMALL_BATCH        4u
#define SMALL_HEADERS      2u
#define SMALL_HEADER_BYTES 32u
#define SMALL_RESULT       16u
#define SMALL_ERROR        16u
#define SMALL_DEDUPE_KEY   8u
#define SMALL_CONSUMER     8u
#define SMALL_MAX_ATTEMPTS 10u
#define SMALL_DELAY_MS     10000u

static void
tweak_small_limits(fixture *f, store_opts *o)
{
    (void)f;
    o->limits.max_payload = SMALL_PAYLOAD;
    o->limits.max_batch = SMALL_BATCH;
    o->limits.max_headers = SMALL_HEADERS;
    o->limits.max_header_bytes = SMALL_HEADER_BYTES;
    o->limits.max_result = SMALL_RESULT;
    o->limits.max_error = SMALL_ERROR;
    o->limits.max_dedupe_key = SMALL_DEDUPE_KEY;
    o->limits.max_consumer = SMALL_CONSUMER;
    o->limits.max_max_attempts = SMALL_MAX_ATTEMPTS;
    o->limits.max_delay_ms = SMALL_DELAY_MS;
}

static int
setup_small_limits(void **state)
{
    return fixture_setup_with(state, tweak_small_limits);
}

/* A buffer of n copies of c (n < 1024). */
static const char *
filled(char *buf, size_t n, char c)
{
    assert_true(n < 1024);
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

static void
expect_enqueue_ok(fixture *f, const store_draft *d)
{
    hp_status st;
    store_enqueued out;

    hp_code code = enqueue(f, d, 1, NOW_MS, &out, &st);

    assert_ok(code, st);
}

static void
expect_enqueue_refused(fixture *f, const store_draft *d, const char *reason)
{
    hp_status st;
    store_enqueued out;

    hp_code code = enqueue(f, d, 1, NOW_MS, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, reason);
}

/* ---- payload ---------------------------------------------------------------
 */

static void
test_payload_of_max_payload_bytes_is_accepted(void **state)
{
    char buf[1024];
    store_draft d = draft("emails");
    d.payload = filled(buf, SMALL_PAYLOAD, 'p');
    d.payload_len = SMALL_PAYLOAD;

    expect_enqueue_ok(*state, &d);
}

static void
test_payload_one_byte_over_max_payload_is_too_large(void **state)
{
    char buf[1024];
    store_draft d = draft("emails");
    d.payload = filled(buf, SMALL_PAYLOAD + 1, 'p');
    d.payload_len = SMALL_PAYLOAD + 1;

    expect_enqueue_refused(*state, &d, HP_R_PAYLOAD_TOO_LARGE);
}

/* ---- batches
 * ----------------------------------------------------------------- */

static void
test_enqueue_of_max_batch_drafts_is_accepted(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d[SMALL_BATCH];
    store_enqueued out[SMALL_BATCH];
    for (size_t i = 0; i < SMALL_BATCH; i++) {
        d[i] = draft("emails");
    }

    hp_code code = enqueue(f, d, SMALL_BATCH, NOW_MS, out, &st);

    assert_ok(code, st);
}

static void
test_enqueue_of_max_batch_plus_one_drafts_is_batch_too_large(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d[SMALL_BATCH + 1];
    store_enqueued out[SMALL_BATCH + 1];
    for (size_t i = 0; i < SMALL_BATCH + 1; i++) {
        d[i] = draft("emails");
    }

    hp_code code = enqueue(f, d, SMALL_BATCH + 1, NOW_MS, out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BATCH_TOO_LARGE);
}

static void
test_enqueue_of_no_drafts_is_empty_batch(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out;

    hp_code code = enqueue(f, NULL, 0, NOW_MS, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_EMPTY_BATCH);
}

static void
test_ack_of_max_batch_plus_one_items_is_refused(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_ack_item items[SMALL_BATCH + 1];
    memset(items, 0, sizeof(items));
    for (size_t i = 0; i < SMALL_BATCH + 1; i++) {
        items[i].id = must_enqueue(f, "emails", NOW_MS);
        items[i].token = must_claim(f, "emails", NOW_MS, LEASE_MS);
    }

    hp_code code =
        ack_in(f, SCOPE, items, SMALL_BATCH + 1, NULL, 0, NOW_MS, NULL, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_code(st, HP_INVALID_ARGUMENT);
    assert_int_equal(must_stats(f, "emails", NOW_MS).acked_total, 0);
}

static void
test_ack_of_no_items_is_refused(void **state)
{
    fixture *f = *state;
    hp_status st;

    hp_code code = ack_in(f, SCOPE, NULL, 0, NULL, 0, NOW_MS, NULL, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_code(st, HP_INVALID_ARGUMENT);
}

static void
test_enqueue_batch_with_one_bad_draft_is_refused(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d[3] = { draft("emails"), draft("emails"), draft("sms") };
    d[1].priority = STORE_PRIORITY_MAX + 1;
    store_enqueued out[3];

    hp_code code = enqueue(f, d, 3, NOW_MS, out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_PRIORITY);
}

static void
test_enqueue_batch_with_one_bad_draft_writes_nothing(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_draft d[3] = { draft("emails"), draft("emails"), draft("sms") };
    d[1].priority = STORE_PRIORITY_MAX + 1;
    store_enqueued out[3];
    assert_int_equal(enqueue(f, d, 3, NOW_MS, out, &st), HP_INVALID_ARGUMENT);

    store_lane_stats s;
    store_lanes_res lanes;
    hp_code code = stats(f, "emails", NOW_MS, &s, &st);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_status(st, HP_NOT_FOUND, HP_R_NO_LANE);
    assert_ok(
        list_lanes_in(f, SCOPE, NULL, 0, SMALL_BATCH, NOW_MS, &lanes, &st), st);
    assert_int_equal(lanes.n, 0);
}

static void
test_enqueue_batch_with_a_bad_last_draft_writes_nothing(void **state)
{
    fixture *f = *state;
    hp_status st;
    char buf[1024];
    store_draft d[2] = { draft("emails"), draft("emails") };
    d[1].payload = filled(buf, SMALL_PAYLOAD + 1, 'p');
    d[1].payload_len = SMALL_PAYLOAD + 1;
    store_enqueued out[2];
    assert_int_equal(enqueue(f, d, 2, NOW_MS, out, &st), HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_PAYLOAD_TOO_LARGE);

    store_lanes_res lanes;
    hp_code code =
        list_lanes_in(f, SCOPE, NULL, 0, SMALL_BATCH, NOW_MS, &lanes, &st);

    assert_ok(code, st);
    assert_int_equal(lanes.n, 0);
}

/* ---- names --------------------------------------------------------------- */

static void
test_lane_name_of_64_bytes_is_accepted(void **state)
{
    char buf[1024];

    store_draft d = draft(filled(buf, 64, 'l'));

    expect_enqueue_ok(*state, &d);
}

static void
test_lane_name_of_65_bytes_is_bad_name(void **state)
{
    char buf[1024];

    store_draft d = draft(filled(buf, 65, 'l'));

    expect_enqueue_refused(*state, &d, HP_R_BAD_NAME);
}

static void
test_lane_name_with_a_space_is_bad_name(void **state)
{
    store_draft d = draft("no spaces");

    expect_enqueue_refused(*state, &d, HP_R_BAD_NAME);
}

static void
test_lane_name_with_a_slash_is_bad_name(void **state)
{
    store_draft d = draft("a/b");

    expect_enqueue_refused(*state, &d, HP_R_BAD_NAME);
}

static void
test_lane_name_with_nul_inside_is_bad_name(void **state)
{
    store_draft d = draft("emails");
    d.lane = (hp_str){ "ema\0ils", 7 };

    expect_enqueue_refused(*state, &d, HP_R_BAD_NAME);
}

static void
test_empty_lane_name_is_bad_name(void **state)
{
    store_draft d = draft("");

    expect_enqueue_refused(*state, &d, HP_R_BAD_NAME);
}

static void
test_target_name_of_64_bytes_is_accepted(void **state)
{
    char buf[1024];
    store_draft d = draft("emails");
    d.target = hp_str_c(filled(buf, 64, 't'));

    expect_enqueue_ok(*state, &d);
}

static void
test_target_name_of_65_bytes_is_bad_name(void **state)
{
    char buf[1024];
    store_draft d = draft("emails");
    d.target = hp_str_c(filled(buf, 65, 't'));

    expect_enqueue_refused(*state, &d, HP_R_BAD_NAME);
}

static void
test_target_name_with_a_bad_character_is_bad_name(void **state)
{
    store_draft d = draft("emails");
    d.target = HP_S("web hook");

    expect_enqueue_refused(*state, &d, HP_R_BAD_NAME);
}

static void
test_scope_name_with_a_bad_character_is_bad_name(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out;
    store_draft d = draft("emails");

    hp_code code = enqueue_in(f, HP_S("a/b"), &d, 1, NOW_MS, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME);
}

static void
test_empty_scope_is_bad_name(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_enqueued out;
    store_draft d = draft("emails");

    hp_code code = enqueue_in(f, HP_S(""), &d, 1, NOW_MS, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME);
}

static void
test_claim_with_a_bad_lane_name_is_bad_name(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_claimed out;
    store_claim_req req = claim_req("bad lane", 1, LEASE_MS);

    hp_code code = claim(f, &req, NOW_MS, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME);
}

static void
test_claim_with_a_bad_target_name_is_bad_name(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_claimed out;
    store_claim_req req = claim_req("emails", 1, LEASE_MS);
    req.any_target = false;
    req.target = HP_S("bad target");

    hp_code code = claim(f, &req, NOW_MS, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME);
}

/* ---- priority and attempts ------------------------------------------------
 */

static void
test_priority_9_is_accepted(void **state)
{
    store_draft d = draft("emails");
    d.priority = STORE_PRIORITY_MAX;

    expect_enqueue_ok(*state, &d);
}

static void
test_priority_10_is_bad_priority(void **state)
{
    store_draft d = draft("emails");
    d.priority = STORE_PRIORITY_MAX + 1;

    expect_enqueue_refused(*state, &d, HP_R_BAD_PRIORITY);
}

static void
test_max_attempts_at_the_limit_is_accepted(void **state)
{
    store_draft d = draft("emails");
    d.max_attempts = SMALL_MAX_ATTEMPTS;

    expect_enqueue_ok(*state, &d);
}

static void
test_max_attempts_over_the_limit_is_bad_max_attempts(void **state)
{
    store_draft d = draft("emails");
    d.max_attempts = SMALL_MAX_ATTEMPTS + 1;

    expect_enqueue_refused(*state, &d, HP_R_BAD_MAX_ATTEMPTS);
}

/* ---- leases -----------------------------------------------------------------
 */

static hp_code
claim_with_lease(fixture *f, uint32_t lease_ms, hp_status *st)
{
    store_claimed out;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_claim_req req = claim_req("emails", 1, lease_ms);
    return claim(f, &req, NOW_MS, &out, st);
}

static void
test_lease_of_100_ms_is_accepted(void **state)
{
    hp_status st;

    hp_code code = claim_with_lease(*state, 100, &st);

    assert_ok(code, st);
}

static void
test_lease_of_99_ms_is_bad_lease(void **state)
{
    hp_status st;

    hp_code code = claim_with_lease(*state, 99, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LEASE);
}

static void
test_lease_of_24_hours_is_accepted(void **state)
{
    hp_status st;

    hp_code code = claim_with_lease(*state, 24u * 3600u * 1000u, &st);

    assert_ok(code, st);
}

static void
test_lease_of_24_hours_and_1_ms_is_bad_lease(void **state)
{
    hp_status st;

    hp_code code = claim_with_lease(*state, 24u * 3600u * 1000u + 1u, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LEASE);
}

static void
test_extend_by_99_ms_is_bad_lease(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint64_t at;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code = extend(f, id, tok, 99, NOW_MS, &at, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LEASE);
}

static void
test_extend_by_24_hours_and_1_ms_is_bad_lease(void **state)
{
    fixture *f = *state;
    hp_status st;
    uint64_t at;
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_token tok = must_claim(f, "emails", NOW_MS, LEASE_MS);

    hp_code code =
        extend(f, id, tok, 24u * 3600u * 1000u + 1u, NOW_MS, &at, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LEASE);
}

/* ---- headers ------------------------------------------------------------ */

static void
test_max_headers_headers_are_accepted(void **state)
{
    store_header h[SMALL_HEADERS] = { { HP_S("a"), HP_S("1") },
                                      { HP_S("b"), HP_S("2") } };
    store_draft d = draft("emails");
    d.headers = h;
    d.n_headers = SMALL_HEADERS;

    expect_enqueue_ok(*state, &d);
}

static void
test_one_header_over_max_headers_is_bad_header(void **state)
{
    store_header h[SMALL_HEADERS + 1] = { { HP_S("a"), HP_S("1") },
                                          { HP_S("b"), HP_S("2") },
                                          { HP_S("c"), HP_S("3") } };
    store_draft d = draft("emails");
    d.headers = h;
    d.n_headers = SMALL_HEADERS + 1;

    expect_enqueue_refused(*state, &d, HP_R_BAD_HEADER);
}

static void
test_header_bytes_at_the_limit_are_accepted(void **state)
{
    char buf[1024];
    store_header h = { HP_S("k"),
                       hp_str_c(filled(buf, SMALL_HEADER_BYTES - 1, 'v')) };
    store_draft d = draft("emails");
    d.headers = &h;
    d.n_headers = 1;

    expect_enqueue_ok(*state, &d);
}

static void
test_header_bytes_one_over_the_limit_are_bad_header(void **state)
{
    char buf[1024];
    store_header h = { HP_S("k"),
                       hp_str_c(filled(buf, SMALL_HEADER_BYTES, 'v')) };
    store_draft d = draft("emails");
    d.headers = &h;
    d.n_headers = 1;

    expect_enqueue_refused(*state, &d, HP_R_BAD_HEADER);
}

static void
test_header_key_of_256_bytes_is_accepted(void **state)
{
    char buf[1024];
    store_header h = { hp_str_c(filled(buf, 256, 'k')), HP_S("v") };
    store_draft d = draft("emails");
    d.headers = &h;
    d.n_headers = 1;

    expect_enqueue_ok(*state, &d);
}

static void
test_header_key_of_257_bytes_is_bad_header(void **state)
{
    char buf[1024];
    store_header h = { hp_str_c(filled(buf, 257, 'k')), HP_S("v") };
    store_draft d = draft("emails");
    d.headers = &h;
    d.n_headers = 1;

    expect_enqueue_refused(*state, &d, HP_R_BAD_HEADER);
}

static void
test_empty_header_key_is_bad_header(void **state)
{
    store_header h = { HP_S(""), HP_S("v") };
    store_draft d = draft("emails");
    d.headers = &h;
    d.n_headers = 1;

    expect_enqueue_refused(*state, &d, HP_R_BAD_HEADER);
}

static void
test_header_key_with_nul_inside_is_bad_header(void **state)
{
    store_header h = { HP_S("a\0b"), HP_S("v") };
    store_draft d = draft("emails");
    d.headers = &h;
    d.n_headers = 1;

    expect_enqueue_refused(*state, &d, HP_R_BAD_HEADER);
}

static void
test_header_value_with_invalid_utf8_is_bad_header(void **state)
{
    store_header h = { HP_S("k"), HP_S("caf\xc3") };
    store_draft d = draft("emails");
    d.headers = &h;
    d.n_headers = 1;

    expect_enqueue_refused(*state, &d, HP_R_BAD_HEADER);
}

/* ---- dedupe keys ----------------------------------------------------------
 */

static void
test_dedupe_key_at_the_limit_is_accepted(void **state)
{
    char buf[1024];
    store_draft d = draft("emails");
    d.dedupe_key = hp_str_c(filled(buf, SMALL_DEDUPE_KEY, 'd'));

    expect_enqueue_ok(*state, &d);
}

static void
test_dedupe_key_one_over_the_limit_is_bad_dedupe_key(void **state)
{
    char buf[1024];
    store_draft d = draft("emails");
    d.dedupe_key = hp_str_c(filled(buf, SMALL_DEDUPE_KEY + 1, 'd'));

    expect_enqueue_refused(*state, &d, HP_R_BAD_DEDUPE_KEY);
}

static void
test_dedupe_key_with_nul_inside_is_bad_dedupe_key(void **state)
{
    store_draft d = draft("emails");
    d.dedupe_key = HP_S("ab\0cd");

    expect_enqueue_refused(*state, &d, HP_R_BAD_DEDUPE_KEY);
}

static void
test_dedupe_key_with_invalid_utf8_is_bad_dedupe_key(void **state)
{
    store_draft d = draft("emails");
    d.dedupe_key = HP_S("\xed\xa0\x80"); /* a surrogate */

    expect_enqueue_refused(*state, &d, HP_R_BAD_DEDUPE_KEY);
}

/* ---- results, errors, consumers ---------------------------------------------
 */

static hp_code
ack_with_result(fixture *f, size_t result_len, hp_status *st)
{
    char buf[1024];
    hp_id id = must_enqueue(f, "emails", NOW_MS);
    store_ack_item it;
    memset(&it, 0, sizeof(it));
    it.id = id;
    it.token = must_claim(f, "emails", NOW_MS, LEASE_MS);
    it.result = filled(buf, result_len, 'r');
    it.result_len = result_len;
    return ack_in(f, SCOPE, &it, 1, NULL, 0, NOW_MS, NULL, st);
}

static void
test_result_at_the_limit_is_accepted(void **state)
{
    hp_status st;

    hp_code code = ack_with_result(*state, SMALL_RESULT, &st);

    assert_ok(code, st);
}

static void
test_result_one_over_the_limit_is_result_too_large(void **state)
{
    hp_status st;

    hp_code code = ack_with_result(*state, SMALL_RESULT + 1, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_RESULT_TOO_LARGE);
}

static hp_code
nack_with_error(fixture *f, hp_str error, uint64_t retry_at, hp_status *st)
{
    store_nack_res res;
    store_nack_req req;
    memset(&req, 0, sizeof(req));
    req.id = must_enqueue(f, "emails", NOW_MS);
    req.token = must_claim(f, "emails", NOW_MS, LEASE_MS);
    req.error = error;
    req.retry_at_ms = retry_at;
    return nack_in(f, SCOPE, &req, NOW_MS, NULL, &res, st);
}

static void
test_error_text_at_the_limit_is_accepted(void **state)
{
    hp_status st;
    char buf[1024];

    hp_code code = nack_with_error(
        *state, hp_str_c(filled(buf, SMALL_ERROR, 'e')), 0, &st);

    assert_ok(code, st);
}

static void
test_error_text_one_over_the_limit_is_bad_error_text(void **state)
{
    hp_status st;
    char buf[1024];

    hp_code code = nack_with_error(
        *state, hp_str_c(filled(buf, SMALL_ERROR + 1, 'e')), 0, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_ERROR_TEXT);
}

static void
test_error_text_with_nul_inside_is_bad_error_text(void **state)
{
    hp_status st;

    hp_code code = nack_with_error(*state, HP_S("bad\0text"), 0, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_ERROR_TEXT);
}

static hp_code
claim_as(fixture *f, hp_str consumer, hp_status *st)
{
    store_claimed out;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_claim_req req = claim_req("emails", 1, LEASE_MS);
    req.consumer = consumer;
    return claim(f, &req, NOW_MS, &out, st);
}

static void
test_consumer_at_the_limit_is_accepted(void **state)
{
    hp_status st;
    char buf[1024];

    hp_code code =
        claim_as(*state, hp_str_c(filled(buf, SMALL_CONSUMER, 'c')), &st);

    assert_ok(code, st);
}

static void
test_consumer_one_over_the_limit_is_bad_consumer(void **state)
{
    hp_status st;
    char buf[1024];

    hp_code code =
        claim_as(*state, hp_str_c(filled(buf, SMALL_CONSUMER + 1, 'c')), &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONSUMER);
}

static void
test_empty_consumer_is_accepted(void **state)
{
    hp_status st;

    hp_code code = claim_as(*state, HP_S(""), &st);

    assert_ok(code, st);
}

/* ---- delays -----------------------------------------------------------------
 */

static void
test_delay_of_max_delay_is_accepted(void **state)
{
    store_draft d = draft("emails");
    d.delay_ms = SMALL_DELAY_MS;

    expect_enqueue_ok(*state, &d);
}

static void
test_delay_beyond_max_delay_is_bad_delay(void **state)
{
    store_draft d = draft("emails");
    d.delay_ms = SMALL_DELAY_MS + 1;

    expect_enqueue_refused(*state, &d, HP_R_BAD_DELAY);
}

static void
test_available_at_max_delay_ahead_is_accepted(void **state)
{
    store_draft d = draft("emails");
    d.available_at_ms = NOW_MS + SMALL_DELAY_MS;

    expect_enqueue_ok(*state, &d);
}

static void
test_available_at_beyond_max_delay_is_bad_delay(void **state)
{
    store_draft d = draft("emails");
    d.available_at_ms = NOW_MS + SMALL_DELAY_MS + 1;

    expect_enqueue_refused(*state, &d, HP_R_BAD_DELAY);
}

static void
test_retry_at_max_delay_ahead_is_accepted(void **state)
{
    hp_status st;

    hp_code code =
        nack_with_error(*state, HP_S("x"), NOW_MS + SMALL_DELAY_MS, &st);

    assert_ok(code, st);
}

static void
test_retry_at_beyond_max_delay_is_bad_delay(void **state)
{
    hp_status st;

    hp_code code =
        nack_with_error(*state, HP_S("x"), NOW_MS + SMALL_DELAY_MS + 1, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_DELAY);
}

/* ---- claim and listing limits -------------------------------------------- */

static hp_code
claim_max(fixture *f, uint32_t max, hp_status *st)
{
    store_claimed out;
    (void)must_enqueue(f, "emails", NOW_MS);
    store_claim_req req = claim_req("emails", max, LEASE_MS);
    return claim(f, &req, NOW_MS, &out, st);
}

static void
test_claim_of_max_batch_is_accepted(void **state)
{
    hp_status st;

    hp_code code = claim_max(*state, SMALL_BATCH, &st);

    assert_ok(code, st);
}

static void
test_claim_of_zero_is_bad_limit(void **state)
{
    hp_status st;

    hp_code code = claim_max(*state, 0, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LIMIT);
}

static void
test_claim_of_max_batch_plus_one_is_bad_limit(void **state)
{
    hp_status st;

    hp_code code = claim_max(*state, SMALL_BATCH + 1, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LIMIT);
}

static hp_code
list_limit(fixture *f, uint32_t limit, hp_status *st)
{
    store_list_res res;
    store_list_req req;
    (void)must_enqueue(f, "emails", NOW_MS);
    memset(&req, 0, sizeof(req));
    req.lane = HP_S("emails");
    req.state = STORE_STATE_ANY;
    req.limit = limit;
    return list_in(f, SCOPE, &req, NOW_MS, &res, st);
}

static void
test_list_of_max_batch_is_accepted(void **state)
{
    hp_status st;

    hp_code code = list_limit(*state, SMALL_BATCH, &st);

    assert_ok(code, st);
}

static void
test_list_of_zero_is_bad_limit(void **state)
{
    hp_status st;

    hp_code code = list_limit(*state, 0, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LIMIT);
}

static void
test_list_of_max_batch_plus_one_is_bad_limit(void **state)
{
    hp_status st;

    hp_code code = list_limit(*state, SMALL_BATCH + 1, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LIMIT);
}

static void
test_whole_lane_replay_of_zero_is_bad_limit(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    (void)must_make_dead(f, "emails", NOW_MS);
    store_dead_sel sel = { HP_S("emails"), NULL, 0, 0 };

    hp_code code = dead_replay_in(f, SCOPE, &sel, NOW_MS, &res, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LIMIT);
}

static void
test_whole_lane_purge_of_max_batch_plus_one_is_bad_limit(void **state)
{
    fixture *f = *state;
    hp_status st;
    store_dead_res res;
    (void)must_make_dead(f, "emails", NOW_MS);
    store_dead_sel sel = { HP_S("emails"), NULL, 0, SMALL_BATCH + 1 };

    hp_code code = dead_purge_in(f, SCOPE, &sel, &res, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_LIMIT);
}

#define T(fn) \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
#define S(fn) \
    cmocka_unit_test_setup_teardown(fn, setup_small_limits, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        S(test_payload_of_max_payload_bytes_is_accepted),
        S(test_payload_one_byte_over_max_payload_is_too_large),
        S(test_enqueue_of_max_batch_drafts_is_accepted),
        S(test_enqueue_of_max_batch_plus_one_drafts_is_batch_too_large),
        S(test_enqueue_of_no_drafts_is_empty_batch),
        S(test_ack_of_max_batch_plus_one_items_is_refused),
        S(test_ack_of_no_items_is_refused),
        S(test_enqueue_batch_with_one_bad_draft_is_refused),
        S(test_enqueue_batch_with_one_bad_draft_writes_nothing),
        S(test_enqueue_batch_with_a_bad_last_draft_writes_nothing),
        T(test_lane_name_of_64_bytes_is_accepted),
        T(test_lane_name_of_65_bytes_is_bad_name),
        T(test_lane_name_with_a_space_is_bad_name),
        T(test_lane_name_with_a_slash_is_bad_name),
        T(test_lane_name_with_nul_inside_is_bad_name),
        T(test_empty_lane_name_is_bad_name),
        T(test_target_name_of_64_bytes_is_accepted),
        T(test_target_name_of_65_bytes_is_bad_name),
        T(test_target_name_with_a_bad_character_is_bad_name),
        T(test_scope_name_with_a_bad_character_is_bad_name),
        T(test_empty_scope_is_bad_name),
        T(test_claim_with_a_bad_lane_name_is_bad_name),
        T(test_claim_with_a_bad_target_name_is_bad_name),
        T(test_priority_9_is_accepted),
        T(test_priority_10_is_bad_priority),
        S(test_max_attempts_at_the_limit_is_accepted),
        S(test_max_attempts_over_the_limit_is_bad_max_attempts),
        T(test_lease_of_100_ms_is_accepted),
        T(test_lease_of_99_ms_is_bad_lease),
        T(test_lease_of_24_hours_is_accepted),
        T(test_lease_of_24_hours_and_1_ms_is_bad_lease),
        T(test_extend_by_99_ms_is_bad_lease),
        T(test_extend_by_24_hours_and_1_ms_is_bad_lease),
        S(test_max_headers_headers_are_accepted),
        S(test_one_header_over_max_headers_is_bad_header),
        S(test_header_bytes_at_the_limit_are_accepted),
        S(test_header_bytes_one_over_the_limit_are_bad_header),
        T(test_header_key_of_256_bytes_is_accepted),
        T(test_header_key_of_257_bytes_is_bad_header),
        T(test_empty_header_key_is_bad_header),
        T(test_header_key_with_nul_inside_is_bad_header),
        T(test_header_value_with_invalid_utf8_is_bad_header),
        S(test_dedupe_key_at_the_limit_is_accepted),
        S(test_dedupe_key_one_over_the_limit_is_bad_dedupe_key),
        T(test_dedupe_key_with_nul_inside_is_bad_dedupe_key),
        T(test_dedupe_key_with_invalid_utf8_is_bad_dedupe_key),
        S(test_result_at_the_limit_is_accepted),
        S(test_result_one_over_the_limit_is_result_too_large),
        S(test_error_text_at_the_limit_is_accepted),
        S(test_error_text_one_over_the_limit_is_bad_error_text),
        T(test_error_text_with_nul_inside_is_bad_error_text),
        S(test_consumer_at_the_limit_is_accepted),
        S(test_consumer_one_over_the_limit_is_bad_consumer),
        T(test_empty_consumer_is_accepted),
        S(test_delay_of_max_delay_is_accepted),
        S(test_delay_beyond_max_delay_is_bad_delay),
        S(test_available_at_max_delay_ahead_is_accepted),
        S(test_available_at_beyond_max_delay_is_bad_delay),
        S(test_retry_at_max_delay_ahead_is_accepted),
        S(test_retry_at_beyond_max_delay_is_bad_delay),
        S(test_claim_of_max_batch_is_accepted),
        S(test_claim_of_zero_is_bad_limit),
        S(test_claim_of_max_batch_plus_one_is_bad_limit),
        S(test_list_of_max_batch_is_accepted),
        S(test_list_of_zero_is_bad_limit),
        S(test_list_of_max_batch_plus_one_is_bad_limit),
        T(test_whole_lane_replay_of_zero_is_bad_limit),
        S(test_whole_lane_purge_of_max_batch_plus_one_is_bad_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
