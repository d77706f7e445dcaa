/*
 * cbtoken.c - callback tokens (cbtoken.h): encode, and verify with the MAC
 * checked before the body is read, so a forged body is never parsed.
 */
#include "broker/cbtoken.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/base64.h"
#include "common/bytes.h"
#include "common/reasons.h"

#define PREFIX     "hpc1."
#define PREFIX_LEN 5
#define MAC_LEN    32
#define FIXED      40
#define BODY_MAX   (FIXED + 2 + 2 * HP_NAME_MAX)

_Static_assert(PREFIX_LEN + HP_B64_LEN(BODY_MAX) + 1 + HP_B64_LEN(MAC_LEN) <=
                   CBTOKEN_TEXT_MAX,
               "CBTOKEN_TEXT_MAX holds the longest token");

static void
mac(const uint8_t key[CBTOKEN_KEY_LEN], const char *p, size_t len,
    uint8_t out[MAC_LEN])
{
    unsigned int n = MAC_LEN;
    HMAC(EVP_sha256(), key, CBTOKEN_KEY_LEN, (const uint8_t *)p, len, out, &n);
}

size_t
cbtoken_encode(const uint8_t key[CBTOKEN_KEY_LEN], const cbtoken *t, char *out)
{
    uint8_t body[BODY_MAX], m[MAC_LEN];
    hp_str scope = hp_lane_key_scope(&t->lane);
    hp_str lane = hp_lane_key_lane(&t->lane);
    size_t off = FIXED;

    hp_put_u64(body, t->expires_at_ms);
    memcpy(body + 8, t->id.b, HP_ID_LEN);
    memcpy(body + 24, t->token.b, STORE_TOKEN_LEN);
    body[off++] = (uint8_t)scope.len;
    memcpy(body + off, scope.p, scope.len);
    off += scope.len;
    body[off++] = (uint8_t)lane.len;
    memcpy(body + off, lane.p, lane.len);
    off += lane.len;

    memcpy(out, PREFIX, PREFIX_LEN);
    size_t n =
        PREFIX_LEN + hp_b64_encode(body, off, out + PREFIX_LEN, HP_B64_URL);
    mac(key, out, n, m);
    out[n++] = '.';
    n += hp_b64_encode(m, MAC_LEN, out + n, HP_B64_URL);
    return n;
}

static hp_code
bad(hp_status *st, const char *why)
{
    return hp_status_set(st, HP_UNAUTHENTICATED, HP_R_BAD_CALLBACK_TOKEN,
                         "callback token %s", why);
}

/* The names of a verified body; -1 when their lengths do not add up. */
static int
read_names(const uint8_t *b, size_t len, cbtoken *out)
{
    size_t sl = len > FIXED ? b[FIXED] : 0;
    size_t ll = len > FIXED + 1 + sl ? b[FIXED + 1 + sl] : 0;
    if (sl == 0 || sl > HP_NAME_MAX || ll == 0 || ll > HP_NAME_MAX ||
        len != FIXED + 2 + sl + ll) {
        return -1;
    }
    hp_str scope = { (const char *)b + FIXED + 1, sl };
    hp_str lane = { (const char *)b + FIXED + 2 + sl, ll };
    hp_lane_key_set(&out->lane, scope, lane);
    return 0;
}

hp_code
cbtoken_verify(const uint8_t key[CBTOKEN_KEY_LEN], hp_str text, uint64_t now_ms,
               cbtoken *out, hp_status *st)
{
    uint8_t body[BODY_MAX], given[MAC_LEN], want[MAC_LEN];

    memset(out, 0, sizeof(*out));
    if (text.len > CBTOKEN_TEXT_MAX || text.len < PREFIX_LEN ||
        memcmp(text.p, PREFIX, PREFIX_LEN) != 0) {
        return bad(st, "is not a hopper callback token");
    }
    const char *rest = text.p + PREFIX_LEN;
    size_t rlen = text.len - PREFIX_LEN;
    const char *dot = memchr(rest, '.', rlen);
    if (dot == NULL) {
        return bad(st, "has no signature");
    }
    size_t body_text = (size_t)(dot - rest);
    long blen = hp_b64_decode(rest, body_text, body, sizeof(body), 0);
    long mlen = hp_b64_decode(dot + 1, rlen - body_text - 1, given, MAC_LEN, 0);
    if (blen < 0 || mlen != MAC_LEN) {
        return bad(st, "is not base64url");
    }
    mac(key, text.p, PREFIX_LEN + body_text, want);
    if (CRYPTO_memcmp(given, want, MAC_LEN) != 0) {
        return bad(st, "signature does not match");
    }
    if (read_names(body, (size_t)blen, out) != 0) {
        return bad(st, "is malformed"); /* signed, so ours: a bug */
    }
    out->expires_at_ms = hp_get_u64(body);
    memcpy(out->id.b, body + 8, HP_ID_LEN);
    memcpy(out->token.b, body + 24, STORE_TOKEN_LEN);
    if (now_ms >= out->expires_at_ms) {
        return hp_status_set(st, HP_UNAUTHENTICATED, HP_R_CALLBACK_EXPIRED,
                             "callback token expired");
    }
    return HP_OK;
}
