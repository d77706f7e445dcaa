/*
 * store_events_test.c - state events (store/events.c): a message with a
 * state_webhook_url writes exactly one event into the scope's events lane
 * per transition, in the transaction of the transition, with the event id
 * id:state:attempt; the record keeps the URL (record version 2) and a
 * schema-3 store opens at the current schema. Events are read back by
 * claiming the events lane, in claim order.
 */
#include <stdio.h>
#include <string.h>

#include "store/keys.h"
#include "store_fixture.h"
#include "store_raw.h"

#define HOOK "http://hooks.example.com/state"

static store_draft
hooked(const char *lane)
{
    store_draft d = draft(lane);
    d.state_webhook_url = HP_S(HOOK);
    return d;
}

/* Claims every event not claimed yet (lease of a day), in claim order. */
static store_claimed
take_events(fixture *f, uint64_t now)
{
    store_claim_req req = claim_req(STORE_EVENTS_LANE, 100, (uint32_t)DAY_MS);
    store_claimed out;
    hp_status st;
    hp_code code = claim(f, &req, now, &out, &st);
    assert_ok(code, st);
    return out;
}

/* The event's payload as a C string in the fixture's arena. */
static const char *
payload_text(fixture *f, const store_message *m)
{
    char *p = hp_arena_alloc(&f->arena, m->payload_len + 1);
    assert_non_null(p);
    memcpy(p, m->payload, m->payload_len);
    p[m->payload_len] = '\0';
    return p;
}

/* Asserts one event: its event_id, and that the JSON holds want_extra. */
static void
assert_event(fixture *f, const store_message *m, hp_id id, const char *state,
             unsigned attempt, const char *want_extra)
{
    char text[HP_ID_TEXT_LEN + 1], want[128];
    const char *json = payload_text(f, m);
    hp_id_format(&id, text);
    snprintf(want, sizeof(want),
             "{\"event_id\":\"%s:%s:%u\",\"message_id\":\"%s\"", text, state,
             attempt, text);
    if (strncmp(json, want, strlen(want)) != 0) {
        fail_msg("event %s does not start with %s", json, want);
    }
    snprintf(want, sizeof(want), "\"state\":\"%s\",\"attempt\":%u", state,
             attempt);
    assert_non_null(strstr(json, want));
    if (want_extra != NULL && strstr(json, want_extra) == NULL) {
        fail_msg("event %s lacks %s", json, want_extra);
    }
    assert_int_equal(m->n_headers, 2);
    assert_str_equal(m->headers[1].key, STORE_EVENT_URL_HEADER);
    assert_str_equal(m->headers[1].value, HOOK);
}

static void
test_enqueue_with_a_url_writes_one_enqueued_event(void **state)
{
    fixture *f = *state;
    store_draft d = hooked("jobs");

    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    store_claimed ev = take_events(f, NOW_MS);
    assert_int_equal(ev.n, 1);
    assert_event(f, &ev.msgs[0], id, "enqueued", 0, "\"lane\":\"jobs\"");
    assert_non_null(
        strstr(payload_text(f, &ev.msgs[0]), "\"at_ms\":1700000000000"));
}

static void
test_each_transition_writes_exactly_one_event_in_order(void **state)
{
    fixture *f = *state;
    store_draft d = hooked("jobs");
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    assert_int_equal(take_events(f, NOW_MS).n, 1);

    store_token t1 = must_claim(f, "jobs", NOW_MS + 1, LEASE_MS);
    store_claimed e1 = take_events(f, NOW_MS + 1);
    hp_code code = nack(f, id, t1, NOW_MS + 10, NOW_MS + 2, &res, &st);
    assert_ok(code, st);
    store_claimed e2 = take_events(f, NOW_MS + 2);
    store_token t2 = must_claim(f, "jobs", NOW_MS + 10, LEASE_MS);
    store_claimed e3 = take_events(f, NOW_MS + 10);
    must_ack(f, id, t2, NOW_MS + 11);
    store_claimed e4 = take_events(f, NOW_MS + 11);

    assert_int_equal(e1.n, 1);
    assert_event(f, &e1.msgs[0], id, "claimed", 1, NULL);
    assert_int_equal(e2.n, 1);
    assert_event(f, &e2.msgs[0], id, "retry_scheduled", 1,
                 "\"error\":\"boom\"");
    assert_int_equal(e3.n, 1);
    assert_event(f, &e3.msgs[0], id, "claimed", 2, NULL);
    assert_int_equal(e4.n, 1);
    assert_event(f, &e4.msgs[0], id, "delivered", 2, "\"result\":");
}

static void
test_the_last_failed_attempt_writes_a_dead_event_with_the_error(void **state)
{
    fixture *f = *state;
    store_draft d = hooked("jobs");
    d.max_attempts = 1;
    hp_status st;
    store_nack_res res;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    store_token t = must_claim(f, "jobs", NOW_MS, LEASE_MS);
    assert_int_equal(take_events(f, NOW_MS).n, 2);

    hp_code code = nack(f, id, t, 0, NOW_MS + 1, &res, &st);

    assert_ok(code, st);
    assert_true(res.dead);
    store_claimed ev = take_events(f, NOW_MS + 1);
    assert_int_equal(ev.n, 1);
    assert_event(f, &ev.msgs[0], id, "dead", 1, "\"error\":\"boom\"");
}

static void
test_a_lease_that_runs_out_writes_a_retry_event(void **state)
{
    fixture *f = *state;
    store_draft d = hooked("jobs");
    hp_status st;
    store_step_res res;
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    store_token held = must_claim(f, "jobs", NOW_MS, LEASE_MS);
    (void)held; /* the lease runs out below */
    assert_int_equal(take_events(f, NOW_MS).n, 2);

    hp_code code = expire_leases(f, NOW_MS + LEASE_MS, 100, &res, &st);

    assert_ok(code, st);
    store_claimed ev = take_events(f, NOW_MS + LEASE_MS);
    assert_int_equal(ev.n, 1);
    assert_event(f, &ev.msgs[0], id, "retry_scheduled", 1, "\"error\":");
}

static void
test_a_message_without_a_url_writes_no_event(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "jobs", NOW_MS);
    store_token t = must_claim(f, "jobs", NOW_MS, LEASE_MS);

    must_ack(f, id, t, NOW_MS + 1);

    assert_int_equal(take_events(f, NOW_MS + 1).n, 0);
}

static void
test_events_leave_their_message_as_it_is(void **state)
{
    fixture *f = *state;
    store_draft d = hooked("jobs");
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);
    store_token t = must_claim(f, "jobs", NOW_MS, LEASE_MS);
    must_ack(f, id, t, NOW_MS + 1);

    store_message m = must_get(f, id, NOW_MS + 2);

    assert_int_equal(m.state, STORE_STATE_DELIVERED);
    assert_int_equal(m.attempts, 1);
    assert_str_equal(m.state_webhook_url, HOOK);
    assert_int_equal(must_stats(f, STORE_EVENTS_LANE, NOW_MS + 2).pending, 3);
}

static void
test_the_url_survives_a_reopen(void **state)
{
    fixture *f = *state;
    store_draft d = hooked("jobs");
    hp_id id = must_enqueue_draft(f, &d, NOW_MS);

    fixture_reopen(f);

    store_message m = must_get(f, id, NOW_MS);
    assert_str_equal(m.state_webhook_url, HOOK);
    assert_str_equal(m.lane, "jobs");
}

static void
test_a_draft_with_a_bad_url_is_refused_and_writes_nothing(void **state)
{
    fixture *f = *state;
    store_draft d = hooked("jobs");
    d.state_webhook_url = HP_S("ftp://example.com/x");
    store_enqueued out;
    hp_status st;

    hp_code code = enqueue(f, &d, 1, NOW_MS, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_DELIVER_URL);
    assert_int_equal(take_events(f, NOW_MS).n, 0);
}

static void
test_a_draft_into_the_events_lane_is_refused(void **state)
{
    fixture *f = *state;
    store_draft d = draft(STORE_EVENTS_LANE);
    store_enqueued out;
    hp_status st;

    hp_code code = enqueue(f, &d, 1, NOW_MS, &out, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_status(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME);
}

/* The scopes store_events_each names, joined by spaces. */
typedef struct scopes_seen {
    char text[256];
} scopes_seen;

static void
on_scope(void *arg, hp_str scope)
{
    scopes_seen *s = arg;
    size_t at = strlen(s->text);
    snprintf(s->text + at, sizeof(s->text) - at, "%s%.*s", at > 0 ? " " : "",
             (int)scope.len, scope.p);
}

static hp_code
run_events_each(store_txn *t, void *arg, hp_status *st)
{
    return store_events_each(t, on_scope, arg, st);
}

static const char *
events_scopes(fixture *f, scopes_seen *out)
{
    hp_status st;
    memset(out, 0, sizeof(*out));
    hp_code code = store_run(f->s, false, run_events_each, out, &st);
    assert_ok(code, st);
    return out->text;
}

static void
test_events_each_names_the_scopes_with_unsettled_events(void **state)
{
    fixture *f = *state;
    store_draft d = hooked("jobs");
    scopes_seen seen;
    must_enqueue_in(f, HP_S("aaa"), "plain", NOW_MS); /* no events */
    must_enqueue_in(f, HP_S("bbb"), "plain", NOW_MS);
    must_enqueue_draft_in(f, HP_S("bbb"), &d, NOW_MS);
    must_enqueue_draft_in(f, HP_S("ccc"), &d, NOW_MS);
    must_enqueue_in(f, HP_S("ccc"), "zzz", NOW_MS);
    must_enqueue_in(f, HP_S("ddd"), "plain", NOW_MS);

    assert_string_equal(events_scopes(f, &seen), "bbb ccc");

    /* Claimed still counts: the delivery part has them in flight. */
    store_message ev =
        must_claim_msg_in(f, HP_S("bbb"), STORE_EVENTS_LANE, NOW_MS, LEASE_MS);
    assert_string_equal(events_scopes(f, &seen), "bbb ccc");
    store_ack_item it = { ev.id, ev.token, NULL, 0 };
    hp_status st;
    hp_code code =
        ack_in(f, HP_S("bbb"), &it, 1, NULL, 0, NOW_MS + 1, NULL, &st);
    assert_ok(code, st);
    assert_string_equal(events_scopes(f, &seen), "ccc");
}

static void
test_a_schema_3_store_opens_at_the_current_schema(void **state)
{
    fixture *f = *state;
    hp_id id = must_enqueue(f, "jobs", NOW_MS); /* a version-1 record */
    fixture_close(f);
    const uint8_t v3[4] = { 0, 0, 0, 3 };
    raw_put(f->dir, "meta", false, "schema", 6, v3, sizeof(v3));
    hp_status st;

    hp_code code = fixture_open(f, &st);

    assert_ok(code, st);
    fixture_close(f);
    uint8_t got[4];
    key mk = { .len = 0 };
    key_put_bytes(&mk, "schema", 6);
    size_t len = raw_get(f->dir, "meta", &mk, got, sizeof(got));
    assert_int_equal(len, 4);
    const uint8_t now[4] = { 0, 0, 0, STORE_SCHEMA_VERSION };
    assert_memory_equal(got, now, 4);
    code = fixture_open(f, &st);
    assert_ok(code, st);
    store_message m = must_get(f, id, NOW_MS);
    assert_int_equal(m.state_webhook_url.len, 0);
    assert_str_equal(m.lane, "jobs");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) \
    cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)
        T(test_enqueue_with_a_url_writes_one_enqueued_event),
        T(test_each_transition_writes_exactly_one_event_in_order),
        T(test_the_last_failed_attempt_writes_a_dead_event_with_the_error),
        T(test_a_lease_that_runs_out_writes_a_retry_event),
        T(test_a_message_without_a_url_writes_no_event),
        T(test_events_leave_their_message_as_it_is),
        T(test_the_url_survives_a_reopen),
        T(test_a_draft_with_a_bad_url_is_refused_and_writes_nothing),
        T(test_a_draft_into_the_events_lane_is_refused),
        T(test_a_schema_3_store_opens_at_the_current_schema),
        T(test_events_each_names_the_scopes_with_unsettled_events),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
