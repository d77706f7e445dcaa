/*
 * cbtoken.h - callback tokens: the credential in a delivery's
 * Hopper-Callback URL (docs/webhooks.md, "Callbacks"). A token names one
 * claim (scope, lane, message id, the claim's store token) and when it
 * stops being honoured, signed with HMAC-SHA256 under the broker's
 * callback key (store_callback_key), so a receiver can settle or extend
 * the claim it was handed and nothing else.
 *
 * Token text: "hpc1." base64url(body) "." base64url(mac), unpadded, where
 * mac is HMAC-SHA256(key, "hpc1." base64url(body)) and body is
 * (integers big-endian):
 *
 *   off   size  field
 *   0     8     expires_at_ms
 *   8     16    message id
 *   24    16    claim token (store_token)
 *   40    1     scope length S (1-64)
 *   41    S     scope
 *   41+S  1     lane length L (1-64)
 *   42+S  L     lane
 *
 * Every character is one a URL path may carry as is. Changing the body?
 * Use a new prefix ("hpc2.") and keep verifying "hpc1." for a day, the
 * longest a token lives.
 *
 * No threads, no state: encode and verify are pure and tested alone
 * (tests/unit/cbtoken_test.c).
 */
#ifndef HP_BROKER_CBTOKEN_H
#define HP_BROKER_CBTOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "common/names.h"
#include "common/status.h"
#include "store/store.h"

#define CBTOKEN_KEY_LEN 32
/* The longest token text, without its NUL. */
#define CBTOKEN_TEXT_MAX 300

typedef struct cbtoken {
    hp_lane_key lane; /* scope and lane */
    hp_id id;
    store_token token;
    uint64_t expires_at_ms;
} cbtoken;

/* Writes t's text and a NUL into out[CBTOKEN_TEXT_MAX + 1]; returns its
 * length. */
size_t cbtoken_encode(const uint8_t key[CBTOKEN_KEY_LEN], const cbtoken *t,
                      char *out);

/* Reads a token's text. UNAUTHENTICATED/BAD_CALLBACK_TOKEN when it is not
 * one this key signed (malformed, forged, tampered with, another key's);
 * UNAUTHENTICATED/CALLBACK_EXPIRED when it is, but now_ms is at or past
 * its expiry. The MAC is compared in constant time, before any field is
 * trusted. */
HP_MUST_USE hp_code cbtoken_verify(const uint8_t key[CBTOKEN_KEY_LEN],
                                   hp_str text, uint64_t now_ms, cbtoken *out,
                                   hp_status *st);

#endif
