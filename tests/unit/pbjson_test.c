/*
 * pbjson_test.c - the proto3 JSON mapping of src/broker/pbjson.c: every
 * message type of hopper.v1, filled in every field, goes to JSON and back
 * to the same bytes; the forms the mapping names come out as it says
 * (lowerCamelCase, 64-bit integers as strings, base64, enum names,
 * defaults left out); the forms it allows in are taken; and what is not
 * JSON, not the message, or not the right type is refused with its
 * reason.
 */
#include "broker/pbjson.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/reasons.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"

#define MAX_TYPES 64
#define MAX_DEPTH 4

/* ---- every message type -------------------------------------------------
 */

typedef struct type_set {
    const ProtobufCMessageDescriptor *t[MAX_TYPES];
    size_t n;
} type_set;

static void
add_type(type_set *s, const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->t[i] == d) {
            return;
        }
    }
    assert_true(s->n < MAX_TYPES);
    s->t[s->n++] = d;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE) {
            add_type(s, d->fields[i].descriptor);
        }
    }
}

/* The types of every rpc of service Broker, the types they hold, and the
 * envelope's. */
static void
all_types(type_set *s)
{
    const ProtobufCServiceDescriptor *sd = &hopper__v1__broker__descriptor;
    s->n = 0;
    for (unsigned i = 0; i < sd->n_methods; i++) {
        add_type(s, sd->methods[i].input);
        add_type(s, sd->methods[i].output);
    }
    add_type(s, &hopper__v1__request__descriptor);
    add_type(s, &hopper__v1__response__descriptor);
}

/* ---- a message with every field set --------------------------------------
 */

static void fill(ProtobufCMessage *m, int depth);

static void *
field_at(ProtobufCMessage *m, unsigned offset)
{
    return (char *)m + offset;
}

/* Values that stress the mapping: the ends of each range, text that needs
 * escapes, bytes of every value. k varies them by field and element. */
static void
fill_value(const ProtobufCFieldDescriptor *f, void *slot, unsigned k, int depth)
{
    static const char *const texts[] = {
        "plain",
        "quote \" backslash \\ slash /",
        "tab\tnew\nline\x01",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x87",
    };
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)slot = k % 2 ? INT32_MIN : INT32_MAX;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)slot = k % 2 ? UINT32_MAX : 7 + k;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)slot = k % 2 ? INT64_MIN : INT64_MAX;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)slot = k % 2 ? UINT64_MAX : UINT64_C(1796472812223) + k;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)slot = 1.5f + (float)k;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)slot = 0.1 + k;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)slot = 1;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        *(int *)slot = ed->values[ed->n_values - 1 - k % ed->n_values].value;
        if (*(int *)slot == 0) {
            *(int *)slot = ed->values[1].value;
        }
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *t = texts[(k + f->id) % 4];
        char *s = malloc(strlen(t) + 1);
        assert_non_null(s);
        strcpy(s, t);
        *(char **)slot = s;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = slot;
        b->len = 1 + (k + f->id) % 300;
        b->data = malloc(b->len);
        assert_non_null(b->data);
        for (size_t i = 0; i < b->len; i++) {
            b->data[i] = (uint8_t)(255 - i - k);
        }
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *d = f->descriptor;
        ProtobufCMessage *sub = malloc(d->sizeof_message);
        assert_non_null(sub);
        d->message_init(sub);
        fill(sub, depth + 1);
        *(ProtobufCMessage **)slot = sub;
        break;
    }
    }
}

static size_t
elt_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

/* Sets every field of m (repeated ones to two elements), nested messages
 * down to MAX_DEPTH. */
static void
fill(ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= MAX_DEPTH) {
            continue;
        }
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            fill_value(f, field_at(m, f->offset), 0, depth);
            continue;
        }
        size_t size = elt_size(f->type);
        char *arr = calloc(2, size);
        assert_non_null(arr);
        for (unsigned k = 0; k < 2; k++) {
            fill_value(f, arr + k * size, k + 1, depth);
        }
        *(char **)field_at(m, f->offset) = arr;
        *(size_t *)field_at(m, f->quantifier_offset) = 2;
    }
}

static uint8_t *
pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len + 1);
    assert_non_null(b);
    assert_int_equal(protobuf_c_message_pack(m, b), *len);
    return b;
}

static char *
to_json(const ProtobufCMessage *m)
{
    hp_buf b;
    hp_status st;
    hp_buf_init(&b);
    assert_int_equal(pbjson_encode(m, &b, &st), HP_OK);
    assert_int_equal(pbjson_put(&b, "", 1), 0); /* a NUL for printing */
    return (char *)b.p;
}

static ProtobufCMessage *
from_json(const ProtobufCMessageDescriptor *d, const char *json)
{
    ProtobufCMessage *m = NULL;
    hp_status st;
    hp_code code = pbjson_decode(d, json, strlen(json), NULL, &m, &st);
    if (code != HP_OK) {
        fail_msg("%s: %s %s: %s\n%s", d->name, hp_code_name(code), st.reason,
                 st.msg, json);
    }
    return m;
}

/* Decodes json as type d and expects the code and reason. */
static void
refused(const ProtobufCMessageDescriptor *d, const char *json, hp_code want,
        const char *reason)
{
    ProtobufCMessage *m = NULL;
    hp_status st;
    hp_code code = pbjson_decode(d, json, strlen(json), NULL, &m, &st);
    if (code != want || strcmp(st.reason, reason) != 0) {
        fail_msg("%s: got %s %s (%s), want %s %s", json, hp_code_name(code),
                 code != HP_OK ? st.reason : "", code != HP_OK ? st.msg : "",
                 hp_code_name(want), reason);
    }
    assert_null(m);
}

/* ---- tests ---------------------------------------------------------------
 */

static void
test_every_message_type_round_trips_to_the_same_bytes(void **state)
{
    (void)state;
    type_set s;
    all_types(&s);
    assert_true(s.n > 30); /* the whole contract, not a few */
    for (size_t i = 0; i < s.n; i++) {
        const ProtobufCMessageDescriptor *d = s.t[i];
        ProtobufCMessage *m = malloc(d->sizeof_message);
        assert_non_null(m);
        d->message_init(m);
        fill(m, 0);
        size_t want_len, got_len;
        uint8_t *want = pack(m, &want_len);

        char *json = to_json(m);
        ProtobufCMessage *back = from_json(d, json);

        uint8_t *got = pack(back, &got_len);
        if (got_len != want_len || memcmp(got, want, want_len) != 0) {
            fail_msg("%s does not round-trip:\n%s", d->name, json);
        }
        char *again = to_json(back);
        assert_string_equal(again, json);
        free(again);
        free(got);
        free(json);
        free(want);
        protobuf_c_message_free_unpacked(back, NULL);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

static void
test_empty_messages_are_empty_objects(void **state)
{
    (void)state;
    type_set s;
    all_types(&s);
    for (size_t i = 0; i < s.n; i++) {
        ProtobufCMessage *m = malloc(s.t[i]->sizeof_message);
        assert_non_null(m);
        s.t[i]->message_init(m);

        char *json = to_json(m);

        assert_string_equal(json, "{}");
        free(json);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

static void
test_output_follows_the_mapping(void **state)
{
    (void)state;
    Hopper__V1__Message m = HOPPER__V1__MESSAGE__INIT;
    Hopper__V1__Header h = HOPPER__V1__HEADER__INIT;
    Hopper__V1__Header *hl[] = { &h };
    char id[] = "01M931ZCNZ0H5PPFBM26169FDJ", empty[] = "", k[] = "k",
         v[] = "v";
    m.id = id;
    m.state = HOPPER__V1__STATE__DELIVERED;
    m.attempts = 2;
    m.created_at_ms = 1796472812223;
    m.payload.data = (uint8_t *)"hi?";
    m.payload.len = 3;
    m.last_error = empty; /* the default: left out */
    h.key = k;
    h.value = v;
    m.headers = hl;
    m.n_headers = 1;

    char *json = to_json(&m.base);

    assert_string_equal(json, "{\"id\":\"01M931ZCNZ0H5PPFBM26169FDJ\","
                              "\"state\":\"DELIVERED\",\"attempts\":2,"
                              "\"createdAtMs\":\"1796472812223\","
                              "\"payload\":\"aGk/\","
                              "\"headers\":[{\"key\":\"k\",\"value\":\"v\"}]}");
    free(json);
}

static void
test_input_takes_every_form_the_mapping_allows(void **state)
{
    (void)state;
    Hopper__V1__ListRequest *l = (Hopper__V1__ListRequest *)from_json(
        &hopper__v1__list_request__descriptor,
        " {\n\"lane\" : \"a\\u00e9\\ud83d\\udc07\", \"state\":4,"
        "\"cursor\":\"-_8\", \"limit\":\"1e2\", \"with_payload\":true }\t");
    assert_string_equal(l->lane, "a\xc3\xa9\xf0\x9f\x90\x87");
    assert_int_equal(l->state, HOPPER__V1__STATE__DELIVERED);
    assert_int_equal(l->cursor.len, 2);
    assert_memory_equal(l->cursor.data, "\xfb\xff", 2);
    assert_int_equal(l->limit, 100);
    assert_true(l->with_payload);
    protobuf_c_message_free_unpacked(&l->base, NULL);

    Hopper__V1__Draft *d = (Hopper__V1__Draft *)from_json(
        &hopper__v1__draft__descriptor,
        "{\"availableAtMs\":1796472812223,\"delay_ms\":\"15.0e0\","
        "\"priority\":\"9\",\"payload\":\"+/8=\",\"target\":null,"
        "\"headers\":null,\"maxAttempts\":1500e-2}");
    assert_int_equal(d->available_at_ms, 1796472812223);
    assert_int_equal(d->delay_ms, 15);
    assert_int_equal(d->priority, 9);
    assert_int_equal(d->max_attempts, 15);
    assert_memory_equal(d->payload.data, "\xfb\xff", 2);
    assert_string_equal(d->target, "");
    protobuf_c_message_free_unpacked(&d->base, NULL);

    Hopper__V1__NackRequest *n = (Hopper__V1__NackRequest *)from_json(
        &hopper__v1__nack_request__descriptor,
        "{\"retryAtMs\":\"18446744073709551615\",\"retryInMs\":-0}");
    assert_true(n->retry_at_ms == UINT64_MAX);
    assert_int_equal(n->retry_in_ms, 0);
    protobuf_c_message_free_unpacked(&n->base, NULL);
}

static void
test_input_that_is_not_json_is_bad_json(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d =
        &hopper__v1__claim_request__descriptor;
    const char *bad[] = {
        "",
        "[]",
        "{",
        "{\"lane\":\"a\",}",
        "{\"lane\" \"a\"}",
        "{'lane':'a'}",
        "{\"lane\":\"a\"} x",
        "{\"lane\":\"a\"}{}",
        "{\"lane\":\"a\\x\"}",
        "{\"lane\":\"a\\u12\"}",
        "{\"lane\":\"\xff\"}",
        "{\"lane\":\"\\ud800\"}",
        "{\"lane\":\"tab\there\"}",
        "{\"lane\":\"unterminated}",
        "{\"max\":01}",
        "{\"max\":1.}",
        "{\"max\":-}",
        "{\"max\":+1}",
        "{\"max\":0x10}",
        "{\"max\":tru}",
        "{\"untargeted_only\":truex}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        refused(d, bad[i], HP_INVALID_ARGUMENT, HP_R_BAD_JSON);
    }
}

static void
test_values_of_the_wrong_type_or_range_are_bad_json(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *c =
        &hopper__v1__claim_request__descriptor;
    const ProtobufCMessageDescriptor *l = &hopper__v1__list_request__descriptor;
    const ProtobufCMessageDescriptor *e =
        &hopper__v1__enqueue_request__descriptor;
    const char *bad_claim[] = {
        "{\"lane\":1}",
        "{\"lane\":[\"a\"]}",
        "{\"max\":\"x\"}",
        "{\"max\":1.5}",
        "{\"max\":\"1 \"}",
        "{\"max\":4294967296}",
        "{\"max\":-1}",
        "{\"max\":1e10}",
        "{\"max\":true}",
        "{\"untargeted_only\":\"true\"}",
        "{\"untargeted_only\":1}",
        "{\"lane\":\"a\",\"lane\":\"b\"}",
        "{\"lane\":\"a\",\"lane\":null}",
        "{\"waitMs\":1,\"wait_ms\":2}",
    };
    for (size_t i = 0; i < sizeof(bad_claim) / sizeof(bad_claim[0]); i++) {
        refused(c, bad_claim[i], HP_INVALID_ARGUMENT, HP_R_BAD_JSON);
    }
    refused(l, "{\"state\":\"NOPE\"}", HP_INVALID_ARGUMENT, HP_R_BAD_JSON);
    refused(l, "{\"state\":\"delivered\"}", HP_INVALID_ARGUMENT, HP_R_BAD_JSON);
    refused(l, "{\"cursor\":\"a\"}", HP_INVALID_ARGUMENT, HP_R_BAD_JSON);
    refused(l, "{\"cursor\":\"*\"}", HP_INVALID_ARGUMENT, HP_R_BAD_JSON);
    refused(e, "{\"drafts\":{}}", HP_INVALID_ARGUMENT, HP_R_BAD_JSON);
    refused(e, "{\"drafts\":[null]}", HP_INVALID_ARGUMENT, HP_R_BAD_JSON);
    refused(e, "{\"drafts\":[{\"lane\":\"a\"},]}", HP_INVALID_ARGUMENT,
            HP_R_BAD_JSON);
    refused(e, "{\"drafts\":[{\"headers\":[{\"key\":1}]}]}",
            HP_INVALID_ARGUMENT, HP_R_BAD_JSON);
}

static void
test_unknown_fields_are_refused_by_name(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *c =
        &hopper__v1__claim_request__descriptor;
    const ProtobufCMessageDescriptor *e =
        &hopper__v1__enqueue_request__descriptor;
    ProtobufCMessage *m = NULL;
    hp_status st;
    const char *json = "{\"lane\":\"a\",\"waitMS\":100}";

    hp_code code = pbjson_decode(c, json, strlen(json), NULL, &m, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_string_equal(st.reason, HP_R_UNKNOWN_FIELD);
    assert_non_null(strstr(st.msg, "waitMS"));
    refused(e, "{\"drafts\":[{\"lane\":\"a\",\"colour\":\"red\"}]}",
            HP_INVALID_ARGUMENT, HP_R_UNKNOWN_FIELD);
    refused(c, "{\"WaitMs\":1}", HP_INVALID_ARGUMENT, HP_R_UNKNOWN_FIELD);
}

static void
test_a_nul_in_a_string_is_refused_not_cut(void **state)
{
    (void)state;
    refused(&hopper__v1__claim_request__descriptor, "{\"lane\":\"a\\u0000b\"}",
            HP_INVALID_ARGUMENT, HP_R_NUL_IN_STRING);
}

/* An allocator that refuses after limit bytes, counting what is live. */
typedef struct small {
    size_t limit, used, live;
} small;

static void *
small_alloc(void *arg, size_t n)
{
    small *s = arg;
    if (s->used + n > s->limit) {
        return NULL;
    }
    s->used += n;
    s->live++;
    return malloc(n);
}

static void
small_free(void *arg, void *p)
{
    small *s = arg;
    s->live--;
    free(p);
}

static void
test_a_budget_that_runs_out_fails_the_decode_and_frees_all(void **state)
{
    (void)state;
    const char *json = "{\"drafts\":[{\"lane\":\"a\",\"payload\":\"aGVsbG8=\","
                       "\"headers\":[{\"key\":\"k\",\"value\":\"v\"}]},"
                       "{\"lane\":\"b\"},{\"lane\":\"c\"},{\"lane\":\"d\"},"
                       "{\"lane\":\"e\"}]}";
    for (size_t limit = 0; limit < 2048; limit += 16) {
        small s = { .limit = limit };
        ProtobufCAllocator a = { small_alloc, small_free, &s };
        ProtobufCMessage *m = NULL;
        hp_status st;

        hp_code code = pbjson_decode(&hopper__v1__enqueue_request__descriptor,
                                     json, strlen(json), &a, &m, &st);

        if (code == HP_OK) {
            protobuf_c_message_free_unpacked(m, &a);
        } else {
            assert_int_equal(code, HP_RESOURCE_EXHAUSTED);
            assert_null(m);
        }
        assert_int_equal(s.live, 0);
    }
}

static void
test_strings_that_are_not_utf8_come_out_replaced(void **state)
{
    (void)state;
    hp_buf b;
    hp_buf_init(&b);

    assert_int_equal(pbjson_put_string(&b, "a\xff\"b", 4), 0);

    assert_int_equal(b.len, strlen("\"a\\ufffd\\\"b\""));
    assert_memory_equal(b.p, "\"a\\ufffd\\\"b\"", b.len);
    hp_buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_message_type_round_trips_to_the_same_bytes),
        cmocka_unit_test(test_empty_messages_are_empty_objects),
        cmocka_unit_test(test_output_follows_the_mapping),
        cmocka_unit_test(test_input_takes_every_form_the_mapping_allows),
        cmocka_unit_test(test_input_that_is_not_json_is_bad_json),
        cmocka_unit_test(test_values_of_the_wrong_type_or_range_are_bad_json),
        cmocka_unit_test(test_unknown_fields_are_refused_by_name),
        cmocka_unit_test(test_a_nul_in_a_string_is_refused_not_cut),
        cmocka_unit_test(
            test_a_budget_that_runs_out_fails_the_decode_and_frees_all),
        cmocka_unit_test(test_strings_that_are_not_utf8_come_out_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
