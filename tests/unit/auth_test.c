/*
 * auth_test.c - tokens and key files: a minted token verifies and grants
 * exactly its scopes and permissions; anything tampered, expired, signed
 * by an unknown key or malformed is UNAUTHENTICATED; key files with loose
 * modes or bad lines are refused.
 */
#include "broker/auth.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <cmocka.h>

#define NOW_MS 1700000000000ull

typedef struct fixture {
    char dir[64];
    char keys[96];
    auth_keyset ks;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    hp_status st;
    snprintf(f->dir, sizeof(f->dir), "/tmp/hopper-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->keys, sizeof(f->keys), "%s/keys", f->dir);
    assert_int_equal(auth_keygen(f->keys, "k1", false, &st), HP_OK);
    assert_int_equal(auth_load_keys(f->keys, &f->ks, &st), HP_OK);
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

static auth_grant
grant(const char *scope, uint8_t perms)
{
    auth_grant g;
    memset(&g, 0, sizeof(g));
    g.issued_at_ms = NOW_MS;
    g.expires_at_ms = NOW_MS + 60000;
    g.perms = perms;
    g.n_scopes = 1;
    snprintf(g.scopes[0], sizeof(g.scopes[0]), "%s", scope);
    return g;
}

static void
mint(fixture *f, const auth_grant *g, char *out)
{
    hp_status st;
    assert_int_equal(auth_mint(&f->ks, NULL, g, out, AUTH_TOKEN_MAX, &st),
                     HP_OK);
}

static void
assert_reason(hp_code code, const hp_status *st, hp_code want,
              const char *reason)
{
    assert_int_equal(code, want);
    assert_string_equal(st->reason, reason);
}

static void
test_minted_token_verifies_and_grants_its_scope_and_perms(void **state)
{
    fixture *f = *state;
    char tok[AUTH_TOKEN_MAX];
    auth_grant g = grant("acme", AUTH_PERM_PRODUCE), got;
    hp_status st;
    mint(f, &g, tok);

    hp_code code = auth_verify(&f->ks, hp_str_c(tok), NOW_MS, &got, &st);

    assert_int_equal(code, HP_OK);
    assert_string_equal(got.key_id, "k1");
    assert_int_equal(got.perms, AUTH_PERM_PRODUCE);
    assert_int_equal(auth_allow(&got, HP_S("acme"), AUTH_PERM_PRODUCE, &st),
                     HP_OK);
    assert_reason(auth_allow(&got, HP_S("acme"), AUTH_PERM_CONSUME, &st), &st,
                  HP_PERMISSION_DENIED, "NO_PERMISSION");
    assert_reason(auth_allow(&got, HP_S("beta"), AUTH_PERM_PRODUCE, &st), &st,
                  HP_PERMISSION_DENIED, "NOT_IN_SCOPE");
    assert_reason(auth_allow(&got, HP_S("acm"), AUTH_PERM_PRODUCE, &st), &st,
                  HP_PERMISSION_DENIED, "NOT_IN_SCOPE");
}

static void
test_star_scope_covers_every_scope(void **state)
{
    fixture *f = *state;
    char tok[AUTH_TOKEN_MAX];
    auth_grant g = grant("*", AUTH_PERM_ALL), got;
    hp_status st;
    mint(f, &g, tok);

    assert_int_equal(auth_verify(&f->ks, hp_str_c(tok), NOW_MS, &got, &st),
                     HP_OK);

    assert_int_equal(auth_allow(&got, HP_S("anything"), AUTH_PERM_ADMIN, &st),
                     HP_OK);
}

static void
test_token_expires_at_its_expiry(void **state)
{
    fixture *f = *state;
    char tok[AUTH_TOKEN_MAX];
    auth_grant g = grant("acme", AUTH_PERM_PRODUCE), got;
    hp_status st;
    mint(f, &g, tok);

    assert_int_equal(
        auth_verify(&f->ks, hp_str_c(tok), g.expires_at_ms - 1, &got, &st),
        HP_OK);
    assert_reason(
        auth_verify(&f->ks, hp_str_c(tok), g.expires_at_ms, &got, &st), &st,
        HP_UNAUTHENTICATED, "TOKEN_EXPIRED");
}

static void
test_every_flipped_character_is_refused(void **state)
{
    fixture *f = *state;
    char tok[AUTH_TOKEN_MAX];
    auth_grant g = grant("acme", AUTH_PERM_ALL), got;
    hp_status st;
    mint(f, &g, tok);
    size_t len = strlen(tok);

    for (size_t i = 0; i < len; i++) {
        char save = tok[i];
        tok[i] = save == 'A' ? 'B' : 'A';
        hp_code code = auth_verify(&f->ks, hp_str_c(tok), NOW_MS, &got, &st);
        if (code != HP_UNAUTHENTICATED) {
            fail_msg("token with byte %zu changed was accepted", i);
        }
        tok[i] = save;
    }
}

static void
test_token_of_another_key_file_is_unknown_key(void **state)
{
    fixture *f = *state;
    char other[128], tok[AUTH_TOKEN_MAX];
    auth_keyset ks2;
    auth_grant g = grant("acme", AUTH_PERM_ALL), got;
    hp_status st;
    snprintf(other, sizeof(other), "%s/other", f->dir);
    assert_int_equal(auth_keygen(other, "k9", false, &st), HP_OK);
    assert_int_equal(auth_load_keys(other, &ks2, &st), HP_OK);
    assert_int_equal(auth_mint(&ks2, NULL, &g, tok, sizeof(tok), &st), HP_OK);

    hp_code code = auth_verify(&f->ks, hp_str_c(tok), NOW_MS, &got, &st);

    assert_reason(code, &st, HP_UNAUTHENTICATED, "UNKNOWN_KEY");
}

static void
test_same_key_id_with_another_secret_is_bad_signature(void **state)
{
    fixture *f = *state;
    char other[128], tok[AUTH_TOKEN_MAX];
    auth_keyset ks2;
    auth_grant g = grant("acme", AUTH_PERM_ALL), got;
    hp_status st;
    snprintf(other, sizeof(other), "%s/other", f->dir);
    assert_int_equal(auth_keygen(other, "k1", false, &st), HP_OK);
    assert_int_equal(auth_load_keys(other, &ks2, &st), HP_OK);
    assert_int_equal(auth_mint(&ks2, NULL, &g, tok, sizeof(tok), &st), HP_OK);

    hp_code code = auth_verify(&f->ks, hp_str_c(tok), NOW_MS, &got, &st);

    assert_reason(code, &st, HP_UNAUTHENTICATED, "BAD_SIGNATURE");
}

static void
test_malformed_tokens_are_bad_token(void **state)
{
    fixture *f = *state;
    auth_grant got;
    hp_status st;
    static const char *const bad[] = {
        "",       "hpt1.",    "hpt2.AAAA.AAAA", "hpt1.AAAA",
        "hpt1..", "hpt1.A.B", "garbage",        "hpt1.!!!!.AAAA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hp_code code = auth_verify(&f->ks, hp_str_c(bad[i]), NOW_MS, &got, &st);
        assert_int_equal(code, HP_UNAUTHENTICATED);
        assert_string_equal(st.reason, "BAD_TOKEN");
    }
}

static void
test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(void **state)
{
    fixture *f = *state;
    char old_tok[AUTH_TOKEN_MAX], new_tok[AUTH_TOKEN_MAX];
    auth_grant g = grant("acme", AUTH_PERM_ALL), got;
    hp_status st;
    mint(f, &g, old_tok);
    assert_int_equal(auth_keygen(f->keys, "k2", true, &st), HP_OK);
    assert_int_equal(auth_load_keys(f->keys, &f->ks, &st), HP_OK);

    mint(f, &g, new_tok);

    assert_int_equal(f->ks.n, 2);
    assert_int_equal(auth_verify(&f->ks, hp_str_c(old_tok), NOW_MS, &got, &st),
                     HP_OK);
    assert_string_equal(got.key_id, "k1");
    assert_int_equal(auth_verify(&f->ks, hp_str_c(new_tok), NOW_MS, &got, &st),
                     HP_OK);
    assert_string_equal(got.key_id, "k2");
}

static void
test_key_file_readable_by_others_is_refused(void **state)
{
    fixture *f = *state;
    auth_keyset ks;
    hp_status st;
    assert_int_equal(chmod(f->keys, 0640), 0);

    hp_code code = auth_load_keys(f->keys, &ks, &st);

    assert_reason(code, &st, HP_FAILED_PRECONDITION, "KEY_FILE_MODE");
}

static void
test_key_file_with_a_bad_line_is_refused(void **state)
{
    fixture *f = *state;
    auth_keyset ks;
    hp_status st;
    FILE *fp = fopen(f->keys, "a");
    fputs("hopper-key k3 nothex\n", fp);
    fclose(fp);

    hp_code code = auth_load_keys(f->keys, &ks, &st);

    assert_reason(code, &st, HP_INVALID_ARGUMENT, "BAD_KEY_FILE");
}

static void
test_perm_words_parse_and_format(void **state)
{
    uint8_t p;
    char text[32];
    (void)state;

    assert_int_equal(auth_parse_perms("produce,admin", &p), 0);
    assert_int_equal(p, AUTH_PERM_PRODUCE | AUTH_PERM_ADMIN);
    auth_format_perms(p, text, sizeof(text));
    assert_string_equal(text, "produce,admin");
    assert_int_equal(auth_parse_perms("produce,root", &p), -1);
    assert_int_equal(auth_parse_perms("", &p), -1);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_minted_token_verifies_and_grants_its_scope_and_perms),
        T(test_star_scope_covers_every_scope),
        T(test_token_expires_at_its_expiry),
        T(test_every_flipped_character_is_refused),
        T(test_token_of_another_key_file_is_unknown_key),
        T(test_same_key_id_with_another_secret_is_bad_signature),
        T(test_malformed_tokens_are_bad_token),
        T(test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key),
        T(test_key_file_readable_by_others_is_refused),
        T(test_key_file_with_a_bad_line_is_refused),
        cmocka_unit_test(test_perm_words_parse_and_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
