/*
 * fuzz_token.c - libFuzzer target for the bearer-token parser and verifier
 * (broker/auth.h), against a fixed in-memory keyset and a fixed clock.
 * The parser is the broker's first contact with a credential.
 *
 * Input: byte 0 % 3 chooses how the rest becomes a token text.
 *   0  the rest, as is.
 *   1  a grant built from the bytes (key, permissions, times, scopes) is
 *      minted, then edited by up to 4 byte operations (replace, insert,
 *      delete, truncate): mutations of a valid token.
 *   2  the rest is a token body; the harness encodes and signs it with a
 *      known key, so odd bodies reach the checks after the signature.
 *
 * Invariants:
 *   - a refused token is INVALID_ARGUMENT/BAD_TOKEN from auth_parse and
 *     UNAUTHENTICATED with one of the documented reasons from auth_verify;
 *   - whatever auth_parse accepts is a well-formed grant;
 *   - a verified token's grant equals the parsed one, is unexpired and of a
 *     known key, and re-mints to the very same text (so a token has one
 *     spelling), which verifies again;
 *   - auth_mint accepts exactly the grants the format can carry, and a
 *     fresh token verifies unless its key is unknown or it has expired;
 *   - auth_allow agrees with the rule in docs/security.md;
 *   - no status message echoes the token.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "broker/auth.h"
#include "common/names.h"
#include "fuzz_input.h"
#include "fuzz_keys.h"

#define NOW_MS    FUZZ_NOW_MS
#define TEXT_MAX  (AUTH_TOKEN_MAX + 64)
#define MAX_EDITS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* keys: the broker's (k1, k2); other: a key the broker does not have. */
static auth_keyset keys, other;

static void
init_keys(void)
{
    if (keys.n == 0) {
        fuzz_token_keys(&keys, &other);
    }
}

static bool
known_key(const char *id)
{
    for (size_t i = 0; i < keys.n; i++) {
        if (strcmp(keys.keys[i].id, id) == 0) {
            return true;
        }
    }
    return false;
}

static bool
key_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > AUTH_KEY_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* The format's rule for a grant, written again from auth.h. */
static bool
grant_ok(const auth_grant *g)
{
    if (!key_id_ok(g->key_id) || g->perms == 0 ||
        (g->perms & ~AUTH_PERM_ALL) != 0 || g->n_scopes == 0 ||
        g->n_scopes > AUTH_MAX_SCOPES) {
        return false;
    }
    for (size_t i = 0; i < g->n_scopes; i++) {
        const char *s = g->scopes[i];
        size_t n = strlen(s);
        if (!(n == 1 && s[0] == '*') && !hp_name_valid(s, n)) {
            return false;
        }
    }
    return true;
}

static bool
grant_eq(const auth_grant *a, const auth_grant *b)
{
    if (strcmp(a->key_id, b->key_id) != 0 ||
        a->issued_at_ms != b->issued_at_ms ||
        a->expires_at_ms != b->expires_at_ms || a->perms != b->perms ||
        a->n_scopes != b->n_scopes) {
        return false;
    }
    for (size_t i = 0; i < a->n_scopes; i++) {
        if (strcmp(a->scopes[i], b->scopes[i]) != 0) {
            return false;
        }
    }
    return true;
}

static bool
reason_is(const hp_status *st, const char *r)
{
    return st->reason != NULL && strcmp(st->reason, r) == 0;
}

static bool
contains(const char *hay, const char *needle, size_t n)
{
    size_t h = strlen(hay);
    for (size_t i = 0; n > 0 && i + n <= h; i++) {
        if (memcmp(hay + i, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

/* A status message may name the failure, never the credential: it must
 * not hold the token's signature text. Only a signature of 16 or more
 * base64url characters is looked for; shorter or other text could match
 * the message's own words by chance (the fuzzer learns those words). */
static void
check_no_echo(const hp_status *st, const char *t, size_t len)
{
    size_t start = len;
    while (start > 0 && t[start - 1] != '.') {
        start--;
    }
    if (start == 0 || len - start < 16) {
        return;
    }
    for (size_t i = start; i < len; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return;
        }
    }
    FUZZ_CHECK(!contains(st->msg, t + start, 16),
               "status echoes the token's signature: %s", st->msg);
}

static void
check_allow(const auth_grant *g)
{
    static const hp_str probes[] = { HP_S("default"), HP_S("acme"),
                                     HP_S("zz-not-granted") };
    for (size_t i = 0; i < HP_ARRAY_LEN(probes) + 1; i++) {
        hp_str s =
            i < HP_ARRAY_LEN(probes) ? probes[i] : hp_str_c(g->scopes[0]);
        for (uint8_t perm = AUTH_PERM_PRODUCE; perm <= AUTH_PERM_ADMIN;
             perm = (uint8_t)(perm << 1)) {
            bool in_scope = false;
            for (size_t j = 0; j < g->n_scopes; j++) {
                in_scope = in_scope || strcmp(g->scopes[j], "*") == 0 ||
                           hp_str_eq(hp_str_c(g->scopes[j]), s);
            }
            bool want = in_scope && (g->perms & perm) == perm;
            hp_status st;
            hp_code code = auth_allow(g, s, perm, &st);
            FUZZ_CHECK((code == HP_OK) == want, "auth_allow(%.*s, %u) gave %s",
                       (int)s.len, s.p, perm, hp_code_name(code));
            FUZZ_CHECK(code == HP_OK || code == HP_PERMISSION_DENIED,
                       "auth_allow code %s", hp_code_name(code));
        }
    }
}

/* The body part of a token text: between "hpt1." and the next '.'. */
static hp_str
body_part(const char *t, size_t len)
{
    hp_str s = { t + 5, 0 };
    while (5 + s.len < len && t[5 + s.len] != '.') {
        s.len++;
    }
    return s;
}

/* Runs parse and verify on t (exactly len bytes, not NUL-terminated). */
static void
check_token(const char *t, size_t len)
{
    hp_str tok = { t, len };
    auth_grant gp, gv;
    hp_status sp, sv;

    hp_code p = auth_parse(tok, &gp, &sp);
    hp_code v = auth_verify(&keys, tok, NOW_MS, &gv, &sv);

    if (p != HP_OK) {
        FUZZ_CHECK(p == HP_INVALID_ARGUMENT && reason_is(&sp, "BAD_TOKEN"),
                   "auth_parse refused with %s/%s", hp_code_name(p), sp.reason);
        FUZZ_CHECK(v == HP_UNAUTHENTICATED && reason_is(&sv, "BAD_TOKEN"),
                   "auth_verify of an unparsable token gave %s/%s",
                   hp_code_name(v), v != HP_OK ? sv.reason : "");
        check_no_echo(&sp, t, len);
        check_no_echo(&sv, t, len);
        return;
    }
    FUZZ_CHECK(grant_ok(&gp), "auth_parse accepted a malformed grant");
    if (known_key(gp.key_id)) {
        /* One body, one spelling: minting the parsed grant with its own
         * key must give the same body text. */
        char again[AUTH_TOKEN_MAX];
        hp_status sm;
        hp_code m = auth_mint(&keys, gp.key_id, &gp, again, sizeof(again), &sm);
        FUZZ_CHECK(m == HP_OK, "a parsed grant did not mint: %s", sm.msg);
        hp_str b1 = body_part(t, len);
        hp_str b2 = body_part(again, strlen(again));
        FUZZ_CHECK(hp_str_eq(b1, b2), "token body has two spellings");
    }
    if (v != HP_OK) {
        FUZZ_CHECK(v == HP_UNAUTHENTICATED, "auth_verify gave %s",
                   hp_code_name(v));
        FUZZ_CHECK(reason_is(&sv, "UNKNOWN_KEY") ||
                       reason_is(&sv, "BAD_SIGNATURE") ||
                       reason_is(&sv, "TOKEN_EXPIRED"),
                   "auth_verify of a parsable token gave reason %s", sv.reason);
        FUZZ_CHECK(reason_is(&sv, "UNKNOWN_KEY") == !known_key(gp.key_id),
                   "UNKNOWN_KEY disagrees with the keyset for '%s'", gp.key_id);
        if (reason_is(&sv, "TOKEN_EXPIRED")) {
            FUZZ_CHECK(gp.expires_at_ms <= NOW_MS, "unexpired token expired");
        }
        check_no_echo(&sv, t, len);
        return;
    }
    FUZZ_CHECK(grant_eq(&gp, &gv), "parse and verify disagree on the grant");
    FUZZ_CHECK(known_key(gv.key_id), "verified with unknown key");
    FUZZ_CHECK(gv.expires_at_ms > NOW_MS, "verified an expired token");

    char again[AUTH_TOKEN_MAX];
    hp_status sm;
    hp_code m = auth_mint(&keys, gv.key_id, &gv, again, sizeof(again), &sm);
    FUZZ_CHECK(m == HP_OK, "a verified grant did not re-mint: %s", sm.msg);
    FUZZ_CHECK(strlen(again) == len && memcmp(again, t, len) == 0,
               "a verified token re-mints to another text (%zu vs %zu bytes)",
               strlen(again), len);
    auth_grant g2;
    hp_status s2;
    hp_code v2 = auth_verify(&keys, hp_str_c(again), NOW_MS, &g2, &s2);
    FUZZ_CHECK(v2 == HP_OK && grant_eq(&g2, &gv),
               "a re-minted token does not verify to the same grant");
    check_allow(&gv);
}

/* Mode 1: a grant from the input, minted, then edited. */
static void
mint_and_edit(fuzz_in *in)
{
    auth_grant g;
    memset(&g, 0, sizeof(g));
    uint8_t which = fuzz_u8(in) % 3;
    const auth_keyset *ks = which < 2 ? &keys : &other;
    const char *key_id = which < 2 ? keys.keys[which].id : other.keys[0].id;
    g.perms = fuzz_u8(in);
    /* 0 is refused by auth_mint; more than AUTH_MAX_SCOPES cannot be held
     * by an auth_grant, so it is not a grant a caller can give. */
    g.n_scopes = fuzz_u8(in) % (AUTH_MAX_SCOPES + 1);
    g.issued_at_ms = NOW_MS - fuzz_u32(in);
    uint32_t ttl = fuzz_u32(in);
    /* The top bit makes it expired, the rest is how far from now. */
    g.expires_at_ms = (ttl & 0x80000000u) != 0 ? NOW_MS - (ttl & 0x7fffffffu)
                                               : NOW_MS + ttl + 1;
    for (size_t i = 0; i < g.n_scopes; i++) {
        size_t n;
        const uint8_t *s = fuzz_bytes(in, HP_NAME_MAX, &n);
        if (n > 0) {
            memcpy(g.scopes[i], s, n);
        }
        g.scopes[i][n] = '\0';
    }
    auth_grant want = g;
    snprintf(want.key_id, sizeof(want.key_id), "%s", key_id);

    char text[TEXT_MAX];
    hp_status st;
    hp_code code = auth_mint(ks, key_id, &g, text, AUTH_TOKEN_MAX, &st);

    FUZZ_CHECK((code == HP_OK) == grant_ok(&want),
               "auth_mint %s a grant the format %s carry: %s",
               code == HP_OK ? "accepted" : "refused",
               grant_ok(&want) ? "can" : "cannot", code == HP_OK ? "" : st.msg);
    if (code != HP_OK) {
        FUZZ_CHECK(code == HP_INVALID_ARGUMENT, "auth_mint gave %s",
                   hp_code_name(code));
        return;
    }
    size_t len = strlen(text);
    {
        auth_grant got;
        hp_status sv;
        hp_code v = auth_verify(&keys, hp_str_c(text), NOW_MS, &got, &sv);
        bool should = which < 2 && want.expires_at_ms > NOW_MS;
        FUZZ_CHECK((v == HP_OK) == should, "fresh token: verify gave %s/%s",
                   hp_code_name(v), v == HP_OK ? "" : sv.reason);
        if (v == HP_OK) {
            FUZZ_CHECK(grant_eq(&got, &want), "fresh token: grant differs");
        }
    }

    unsigned edits = fuzz_u8(in) % (MAX_EDITS + 1);
    for (unsigned i = 0; i < edits && len > 0; i++) {
        uint8_t kind = fuzz_u8(in) % 4;
        size_t pos = fuzz_u16(in) % len;
        uint8_t c = fuzz_u8(in);
        switch (kind) {
        case 0:
            text[pos] = (char)c;
            break;
        case 1:
            if (len + 1 < TEXT_MAX) {
                memmove(text + pos + 1, text + pos, len - pos);
                text[pos] = (char)c;
                len++;
            }
            break;
        case 2:
            memmove(text + pos, text + pos + 1, len - pos - 1);
            len--;
            break;
        default:
            len = pos;
            break;
        }
    }
    char *t = malloc(len > 0 ? len : 1); /* exact size, for ASan */
    FUZZ_CHECK(t != NULL, "out of memory");
    memcpy(t, text, len);
    check_token(t, len);
    free(t);
}

static size_t
b64url(const uint8_t *in, size_t len, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t rem = len - i;
        if (rem > 1) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (rem > 2) {
            v |= in[i + 2];
        }
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (rem > 1) {
            out[o++] = a[(v >> 6) & 63];
        }
        if (rem > 2) {
            out[o++] = a[v & 63];
        }
    }
    return o;
}

/* Mode 2: the rest is a body, encoded and signed with k1. */
static void
sign_body(fuzz_in *in)
{
    size_t blen;
    const uint8_t *body = fuzz_rest(in, &blen);
    if (blen > 1024) {
        blen = 1024;
    }
    char text[TEXT_MAX];
    size_t n = 0;
    memcpy(text, "hpt1.", 5);
    n = 5 + b64url(body, blen, text + 5);
    uint8_t m[32];
    unsigned int mlen = sizeof(m);
    HMAC(EVP_sha256(), keys.keys[0].secret, AUTH_KEY_LEN, (const uint8_t *)text,
         n, m, &mlen);
    text[n++] = '.';
    n += b64url(m, sizeof(m), text + n);
    char *t = malloc(n);
    FUZZ_CHECK(t != NULL, "out of memory");
    memcpy(t, text, n);
    check_token(t, n);
    free(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = fuzz_in_make(data, size);
    init_keys();
    switch (fuzz_u8(&in) % 3) {
    case 0: {
        size_t len;
        const uint8_t *rest = fuzz_rest(&in, &len);
        char *t = malloc(len > 0 ? len : 1);
        if (t == NULL) {
            return 0;
        }
        if (len > 0) {
            memcpy(t, rest, len);
        }
        check_token(t, len);
        free(t);
        break;
    }
    case 1:
        mint_and_edit(&in);
        break;
    default:
        sign_body(&in);
        break;
    }
    return 0;
}
