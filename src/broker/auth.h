/*
 * auth.h - bearer tokens signed with HMAC-SHA256 by a broker key.
 *
 * Token text: "hpt1." base64url(body) "." base64url(mac), where mac is
 * HMAC-SHA256(key, "hpt1." base64url(body)) and body is (big-endian):
 *
 *   off  size  field
 *   0    1     key id length K (1..32)
 *   1    K     key id ([A-Za-z0-9._-])
 *   1+K  8     issued_at_ms
 *   9+K  8     expires_at_ms
 *   17+K 1     permissions (AUTH_PERM_* bits)
 *   18+K 1     scope count N (1..16)
 *   ...        N times: 1 byte length L (1..64), L bytes scope name or "*"
 *
 * Key file: lines "hopper-key <id> <64 hex digits>"; '#' starts a comment.
 * Every key listed is active (two at a time during a rotation); new tokens
 * are signed with the last one. The file must not be readable by group or
 * others.
 */
#ifndef HP_BROKER_AUTH_H
#define HP_BROKER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "common/str.h"

#define AUTH_KEY_ID_MAX   32
#define AUTH_KEY_LEN      32
#define AUTH_MAX_KEYS     8
#define AUTH_MAX_SCOPES   16
#define AUTH_TOKEN_MAX    2048
#define AUTH_PERM_PRODUCE 0x01u
#define AUTH_PERM_CONSUME 0x02u
#define AUTH_PERM_ADMIN   0x04u
#define AUTH_PERM_ALL     0x07u

typedef struct auth_key {
    char id[AUTH_KEY_ID_MAX + 1];
    uint8_t secret[AUTH_KEY_LEN];
} auth_key;

typedef struct auth_keyset {
    auth_key keys[AUTH_MAX_KEYS];
    size_t n;
} auth_keyset;

/* What a verified token grants. Scope names point into the grant. */
typedef struct auth_grant {
    char key_id[AUTH_KEY_ID_MAX + 1];
    uint64_t issued_at_ms;
    uint64_t expires_at_ms;
    uint8_t perms;
    size_t n_scopes;
    char scopes[AUTH_MAX_SCOPES][65]; /* NUL-terminated; "*" = any */
} auth_grant;

/* Loads a key file. FAILED_PRECONDITION/KEY_FILE_MODE if group or others
 * may read it; INVALID_ARGUMENT/BAD_KEY_FILE naming the line otherwise. */
HP_MUST_USE hp_code auth_load_keys(const char *path, auth_keyset *out,
                                   hp_status *st);

/* Writes a new key file (mode 0600) with one fresh key, or appends a key
 * to an existing one when append is true (for rotation). */
HP_MUST_USE hp_code auth_keygen(const char *path, const char *id, bool append,
                                hp_status *st);

/* Signs a grant with the keyset's last key (or key_id when not NULL).
 * out gets a NUL-terminated token of at most AUTH_TOKEN_MAX bytes. */
HP_MUST_USE hp_code auth_mint(const auth_keyset *ks, const char *key_id,
                              const auth_grant *g, char *out, size_t out_len,
                              hp_status *st);

/* Parses a token without checking its signature (for `token inspect`).
 * INVALID_ARGUMENT/BAD_TOKEN when it is not one. */
HP_MUST_USE hp_code auth_parse(hp_str token, auth_grant *out, hp_status *st);

/* Parses and verifies a token against ks at now: UNAUTHENTICATED with
 * reason BAD_TOKEN (malformed), UNKNOWN_KEY, BAD_SIGNATURE or
 * TOKEN_EXPIRED. The signature is compared in constant time. */
HP_MUST_USE hp_code auth_verify(const auth_keyset *ks, hp_str token,
                                uint64_t now_ms, auth_grant *out,
                                hp_status *st);

/* Whether g allows perm in scope: PERMISSION_DENIED/NOT_IN_SCOPE or
 * NO_PERMISSION otherwise. */
HP_MUST_USE hp_code auth_allow(const auth_grant *g, hp_str scope, uint8_t perm,
                               hp_status *st);

/* Who may call a broker: the holders of tokens signed by its keys, or,
 * with no key file, anyone (anonymous). */
typedef struct auth_policy {
    bool required;          /* keys loaded: every request needs a token */
    bool anonymous_exposed; /* anonymous on a listener other hosts reach */
    auth_keyset keys;
} auth_policy;

/* Loads the key file keys_path (NULL or "": none). Without one, anonymous
 * access must stay on this host: exposed_url names the first listener
 * other hosts can reach (NULL: none), which is FAILED_PRECONDITION/
 * ANONYMOUS_NOT_LOCAL unless allow_anonymous, and then loudly logged.
 * Codes of auth_load_keys. */
HP_MUST_USE hp_code auth_policy_init(auth_policy *p, const char *keys_path,
                                     bool allow_anonymous,
                                     const char *exposed_url, hp_status *st);

/* "produce,consume" -> bits; -1 on an unknown word. */
int auth_parse_perms(const char *text, uint8_t *out);

/* Writes "produce,consume,admin" style text. */
void auth_format_perms(uint8_t perms, char *out, size_t len);

#endif
