/*
 * cbtoken_test.c - callback tokens: a token verifies under the key that
 * signed it and gives back the claim it names; one forged, tampered with
 * (body or signature), cut short or signed by another key is
 * BAD_CALLBACK_TOKEN; one past its expiry is CALLBACK_EXPIRED.
 */
#include "broker/cbtoken.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/reasons.h"

#define NOW_MS 1700000000000ull

static const uint8_t key[CBTOKEN_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t other_key[CBTOKEN_KEY_LEN] = { 9, 9, 9 };

static cbtoken
sample(void)
{
    cbtoken t;
    memset(&t, 0, sizeof(t));
    hp_lane_key_set(&t.lane, HP_S("acme"), HP_S("invoices"));
    for (size_t i = 0; i < HP_ID_LEN; i++) {
        t.id.b[i] = (uint8_t)(0x10 + i);
        t.token.b[i] = (uint8_t)(0xa0 + i);
    }
    t.expires_at_ms = NOW_MS + 60000;
    return t;
}

static void
assert_reason(const hp_status *st, hp_code code, const char *reason)
{
    assert_string_equal(hp_code_name(st->code), hp_code_name(code));
    assert_string_equal(st->reason, reason);
}

static void
test_a_token_verifies_and_names_its_claim(void **state)
{
    (void)state;
    cbtoken t = sample(), got;
    char text[CBTOKEN_TEXT_MAX + 1];
    hp_status st;
    size_t n = cbtoken_encode(key, &t, text);

    hp_code code = cbtoken_verify(key, (hp_str){ text, n }, NOW_MS, &got, &st);

    assert_int_equal(code, HP_OK);
    assert_int_equal(strlen(text), n);
    assert_true(hp_lane_key_is(&got.lane, HP_S("acme"), HP_S("invoices")));
    assert_memory_equal(got.id.b, t.id.b, HP_ID_LEN);
    assert_memory_equal(got.token.b, t.token.b, STORE_TOKEN_LEN);
    assert_int_equal(got.expires_at_ms, t.expires_at_ms);
}

static void
test_a_token_is_url_safe_text(void **state)
{
    (void)state;
    cbtoken t = sample();
    char text[CBTOKEN_TEXT_MAX + 1];
    char long_name[HP_NAME_MAX];
    memset(long_name, 'x', sizeof(long_name));
    hp_lane_key_set(&t.lane, (hp_str){ long_name, HP_NAME_MAX },
                    (hp_str){ long_name, HP_NAME_MAX });

    size_t n = cbtoken_encode(key, &t, text);

    assert_true(n <= CBTOKEN_TEXT_MAX);
    assert_int_equal(strspn(text, "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."),
                     n);
}

static void
test_a_token_of_another_key_is_refused(void **state)
{
    (void)state;
    cbtoken t = sample(), got;
    char text[CBTOKEN_TEXT_MAX + 1];
    hp_status st;
    size_t n = cbtoken_encode(other_key, &t, text);

    hp_code code = cbtoken_verify(key, (hp_str){ text, n }, NOW_MS, &got, &st);

    assert_int_equal(code, HP_UNAUTHENTICATED);
    assert_reason(&st, HP_UNAUTHENTICATED, HP_R_BAD_CALLBACK_TOKEN);
}

/* Each character of the text changed in turn, body and signature alike:
 * none is accepted. */
static void
test_a_tampered_token_is_refused(void **state)
{
    (void)state;
    cbtoken t = sample(), got;
    char text[CBTOKEN_TEXT_MAX + 1];
    hp_status st;
    size_t n = cbtoken_encode(key, &t, text);

    for (size_t i = 0; i < n; i++) {
        char saved = text[i];
        text[i] = saved == 'A' ? 'B' : 'A';

        hp_code code =
            cbtoken_verify(key, (hp_str){ text, n }, NOW_MS, &got, &st);

        assert_int_equal(code, HP_UNAUTHENTICATED);
        assert_string_equal(st.reason, HP_R_BAD_CALLBACK_TOKEN);
        text[i] = saved;
    }
}

static void
test_a_forged_or_cut_token_is_refused(void **state)
{
    (void)state;
    cbtoken t = sample(), got;
    char text[CBTOKEN_TEXT_MAX + 1];
    hp_status st;
    size_t n = cbtoken_encode(key, &t, text);
    const char *forged[] = { "", "hpc1.", "hpc1.AAAA.AAAA", "hpt1.x.y",
                             "hpc1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" };

    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        assert_int_equal(
            cbtoken_verify(key, hp_str_c(forged[i]), NOW_MS, &got, &st),
            HP_UNAUTHENTICATED);
        assert_string_equal(st.reason, HP_R_BAD_CALLBACK_TOKEN);
    }
    assert_int_equal(
        cbtoken_verify(key, (hp_str){ text, n - 1 }, NOW_MS, &got, &st),
        HP_UNAUTHENTICATED);
    assert_string_equal(st.reason, HP_R_BAD_CALLBACK_TOKEN);
}

static void
test_a_token_expires_at_its_expiry_not_before(void **state)
{
    (void)state;
    cbtoken t = sample(), got;
    char text[CBTOKEN_TEXT_MAX + 1];
    hp_status st;
    size_t n = cbtoken_encode(key, &t, text);
    hp_str s = { text, n };

    hp_code before = cbtoken_verify(key, s, t.expires_at_ms - 1, &got, &st);
    hp_code at = cbtoken_verify(key, s, t.expires_at_ms, &got, &st);

    assert_int_equal(before, HP_OK);
    assert_int_equal(at, HP_UNAUTHENTICATED);
    assert_reason(&st, HP_UNAUTHENTICATED, HP_R_CALLBACK_EXPIRED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_token_verifies_and_names_its_claim),
        cmocka_unit_test(test_a_token_is_url_safe_text),
        cmocka_unit_test(test_a_token_of_another_key_is_refused),
        cmocka_unit_test(test_a_tampered_token_is_refused),
        cmocka_unit_test(test_a_forged_or_cut_token_is_refused),
        cmocka_unit_test(test_a_token_expires_at_its_expiry_not_before),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
