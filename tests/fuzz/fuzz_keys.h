/*
 * fuzz_keys.h - the fixed keys fuzz_token checks tokens against. The seed
 * generator mints its tokens with the same keys, so its seeds verify.
 */
#ifndef HP_FUZZ_KEYS_H
#define HP_FUZZ_KEYS_H

#include <stdint.h>
#include <string.h>

#include "broker/auth.h"

#define FUZZ_NOW_MS 1767225600000ull /* 2026-01-01T00:00:00Z */

static inline void
fuzz_add_key(auth_keyset *ks, const char *id, uint8_t seed)
{
    auth_key *k = &ks->keys[ks->n++];
    memset(k, 0, sizeof(*k));
    memcpy(k->id, id, strlen(id));
    for (size_t i = 0; i < AUTH_KEY_LEN; i++) {
        k->secret[i] = (uint8_t)(seed + 7 * i);
    }
}

/* keys: the broker's (k1, k2); other: a key it does not have (k3). */
static inline void
fuzz_token_keys(auth_keyset *keys, auth_keyset *other)
{
    memset(keys, 0, sizeof(*keys));
    memset(other, 0, sizeof(*other));
    fuzz_add_key(keys, "k1", 0x11);
    fuzz_add_key(keys, "k2", 0x5a);
    fuzz_add_key(other, "k3", 0xc3);
}

#endif
