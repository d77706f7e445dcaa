/*
 * auth.c - token minting, parsing and verification, key files. The parser
 * is the broker's first contact with a credential, so it trusts nothing:
 * every length is checked against what is left, and the body must end
 * exactly where its last field does. Secrets never reach a log or a
 * status message.
 */
#include "broker/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/base64.h"
#include "common/bytes.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/names.h"

#define TOKEN_PREFIX     "hpt1."
#define TOKEN_PREFIX_LEN 5
#define BODY_MAX         (1 + AUTH_KEY_ID_MAX + 18 + AUTH_MAX_SCOPES * 65)
#define MAC_LEN          32

static hp_code
bad_token(hp_status *st, hp_code code, const char *why)
{
    return hp_status_set(st, code, HP_R_BAD_TOKEN, "token is malformed: %s",
                         why);
}

static bool
key_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > AUTH_KEY_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Decodes a body; code is the code to use for a malformed one. */
static hp_code
body_decode(const uint8_t *b, size_t len, hp_code code, auth_grant *g,
            hp_status *st)
{
    size_t off = 0;
    memset(g, 0, sizeof(*g));
    if (len < 1 || b[0] == 0 || b[0] > AUTH_KEY_ID_MAX ||
        len < 1u + b[0] + 18u) {
        return bad_token(st, code, "short body");
    }
    size_t klen = b[0];
    if (!key_id_valid((const char *)b + 1, klen)) {
        return bad_token(st, code, "bad key id");
    }
    memcpy(g->key_id, b + 1, klen);
    off = 1 + klen;
    g->issued_at_ms = hp_get_u64(b + off);
    g->expires_at_ms = hp_get_u64(b + off + 8);
    g->perms = b[off + 16];
    g->n_scopes = b[off + 17];
    off += 18;
    if ((g->perms & ~AUTH_PERM_ALL) != 0 || g->perms == 0) {
        return bad_token(st, code, "bad permissions");
    }
    if (g->n_scopes == 0 || g->n_scopes > AUTH_MAX_SCOPES) {
        return bad_token(st, code, "bad scope count");
    }
    for (size_t i = 0; i < g->n_scopes; i++) {
        if (off >= len) {
            return bad_token(st, code, "truncated scopes");
        }
        size_t sl = b[off++];
        if (sl == 0 || sl > HP_NAME_MAX || len - off < sl) {
            return bad_token(st, code, "bad scope");
        }
        const char *s = (const char *)b + off;
        if (!(sl == 1 && s[0] == '*') && !hp_name_valid(s, sl)) {
            return bad_token(st, code, "bad scope name");
        }
        memcpy(g->scopes[i], s, sl);
        g->scopes[i][sl] = '\0';
        off += sl;
    }
    if (off != len) {
        return bad_token(st, code, "trailing bytes");
    }
    return HP_OK;
}

static size_t
body_encode(const auth_grant *g, uint8_t *b)
{
    size_t klen = strlen(g->key_id), off;
    b[0] = (uint8_t)klen;
    memcpy(b + 1, g->key_id, klen);
    off = 1 + klen;
    hp_put_u64(b + off, g->issued_at_ms);
    hp_put_u64(b + off + 8, g->expires_at_ms);
    b[off + 16] = g->perms;
    b[off + 17] = (uint8_t)g->n_scopes;
    off += 18;
    for (size_t i = 0; i < g->n_scopes; i++) {
        size_t sl = strlen(g->scopes[i]);
        b[off++] = (uint8_t)sl;
        memcpy(b + off, g->scopes[i], sl);
        off += sl;
    }
    return off;
}

static void
mac(const auth_key *k, const char *signed_part, size_t len,
    uint8_t out[MAC_LEN])
{
    unsigned int n = MAC_LEN;
    HMAC(EVP_sha256(), k->secret, AUTH_KEY_LEN, (const uint8_t *)signed_part,
         len, out, &n);
}

static const auth_key *
find_key(const auth_keyset *ks, const char *id)
{
    for (size_t i = 0; i < ks->n; i++) {
        if (strcmp(ks->keys[i].id, id) == 0) {
            return &ks->keys[i];
        }
    }
    return NULL;
}

hp_code
auth_mint(const auth_keyset *ks, const char *key_id, const auth_grant *g,
          char *out, size_t out_len, hp_status *st)
{
    const auth_key *k = key_id != NULL
                            ? find_key(ks, key_id)
                            : (ks->n > 0 ? &ks->keys[ks->n - 1] : NULL);
    uint8_t body[BODY_MAX], m[MAC_LEN];
    char text[AUTH_TOKEN_MAX];
    auth_grant signed_g = *g;
    auth_grant check;

    if (k == NULL) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_UNKNOWN_KEY,
                             "no such key in the key file");
    }
    snprintf(signed_g.key_id, sizeof(signed_g.key_id), "%s", k->id);
    size_t blen = body_encode(&signed_g, body);
    hp_code code = body_decode(body, blen, HP_INVALID_ARGUMENT, &check, st);
    if (code != HP_OK) {
        return code; /* a grant we could not verify later */
    }
    memcpy(text, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
    size_t n = TOKEN_PREFIX_LEN;
    n += hp_b64_encode(body, blen, text + n, HP_B64_URL);
    mac(k, text, n, m);
    text[n++] = '.';
    n += hp_b64_encode(m, MAC_LEN, text + n, HP_B64_URL);
    if (n + 1 > out_len) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TOKEN,
                             "token buffer too small");
    }
    memcpy(out, text, n + 1);
    return HP_OK;
}

/* Splits and decodes a token; signed_len is the length of the part the
 * MAC covers. */
static hp_code
split(hp_str t, hp_code code, auth_grant *g, uint8_t mac_out[MAC_LEN],
      size_t *signed_len, hp_status *st)
{
    uint8_t body[BODY_MAX];
    if (t.len > AUTH_TOKEN_MAX || t.len < TOKEN_PREFIX_LEN ||
        memcmp(t.p, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0) {
        return bad_token(st, code, "not a hopper token");
    }
    const char *rest = t.p + TOKEN_PREFIX_LEN;
    size_t rlen = t.len - TOKEN_PREFIX_LEN;
    const char *dot = memchr(rest, '.', rlen);
    if (dot == NULL) {
        return bad_token(st, code, "no signature");
    }
    size_t body_text = (size_t)(dot - rest);
    long blen = hp_b64_decode(rest, body_text, body, sizeof(body), 0);
    long mlen =
        hp_b64_decode(dot + 1, rlen - body_text - 1, mac_out, MAC_LEN, 0);
    if (blen < 0 || mlen != MAC_LEN) {
        return bad_token(st, code, "bad encoding");
    }
    *signed_len = TOKEN_PREFIX_LEN + body_text;
    return body_decode(body, (size_t)blen, code, g, st);
}

hp_code
auth_parse(hp_str token, auth_grant *out, hp_status *st)
{
    uint8_t m[MAC_LEN];
    size_t signed_len;
    return split(token, HP_INVALID_ARGUMENT, out, m, &signed_len, st);
}

hp_code
auth_verify(const auth_keyset *ks, hp_str token, uint64_t now_ms,
            auth_grant *out, hp_status *st)
{
    uint8_t given[MAC_LEN], want[MAC_LEN];
    size_t signed_len;
    hp_code code =
        split(token, HP_UNAUTHENTICATED, out, given, &signed_len, st);
    if (code != HP_OK) {
        return code;
    }
    const auth_key *k = find_key(ks, out->key_id);
    if (k == NULL) {
        return hp_status_set(st, HP_UNAUTHENTICATED, HP_R_UNKNOWN_KEY,
                             "token was signed by a key this broker does "
                             "not have");
    }
    mac(k, token.p, signed_len, want);
    if (CRYPTO_memcmp(given, want, MAC_LEN) != 0) {
        return hp_status_set(st, HP_UNAUTHENTICATED, HP_R_BAD_SIGNATURE,
                             "token signature does not match");
    }
    if (now_ms >= out->expires_at_ms) {
        return hp_status_set(st, HP_UNAUTHENTICATED, HP_R_TOKEN_EXPIRED,
                             "token expired");
    }
    return HP_OK;
}

hp_code
auth_allow(const auth_grant *g, hp_str scope, uint8_t perm, hp_status *st)
{
    bool in_scope = false;
    for (size_t i = 0; i < g->n_scopes && !in_scope; i++) {
        in_scope = strcmp(g->scopes[i], "*") == 0 ||
                   (strlen(g->scopes[i]) == scope.len &&
                    memcmp(g->scopes[i], scope.p, scope.len) == 0);
    }
    if (!in_scope) {
        return hp_status_set(st, HP_PERMISSION_DENIED, HP_R_NOT_IN_SCOPE,
                             "token does not cover scope '%.*s'",
                             (int)scope.len, scope.p);
    }
    if ((g->perms & perm) != perm) {
        char want[32];
        auth_format_perms(perm, want, sizeof(want));
        return hp_status_set(st, HP_PERMISSION_DENIED, HP_R_NO_PERMISSION,
                             "token lacks the '%s' permission", want);
    }
    return HP_OK;
}

int
auth_parse_perms(const char *text, uint8_t *out)
{
    uint8_t p = 0;
    const char *s = text;
    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        if (n == 7 && strncmp(s, "produce", n) == 0) {
            p |= AUTH_PERM_PRODUCE;
        } else if (n == 7 && strncmp(s, "consume", n) == 0) {
            p |= AUTH_PERM_CONSUME;
        } else if (n == 5 && strncmp(s, "admin", n) == 0) {
            p |= AUTH_PERM_ADMIN;
        } else {
            return -1;
        }
        s += n;
        if (*s == ',') {
            s++;
        }
    }
    if (p == 0) {
        return -1;
    }
    *out = p;
    return 0;
}

void
auth_format_perms(uint8_t perms, char *out, size_t len)
{
    static const char *const names[] = { "produce", "consume", "admin" };
    size_t o = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < 3; i++) {
        if ((perms & (1u << i)) == 0) {
            continue;
        }
        int n = snprintf(out + o, len - o, "%s%s", o > 0 ? "," : "", names[i]);
        if (n < 0 || (size_t)n >= len - o) {
            return;
        }
        o += (size_t)n;
    }
}

/* ---- key files -------------------------------------------------------- */

static hp_code
parse_key_line(char *line, size_t lineno, auth_keyset *ks, hp_status *st)
{
    char *save = NULL;
    char *word = strtok_r(line, " \t\r\n", &save);
    if (word == NULL || word[0] == '#') {
        return HP_OK;
    }
    char *id = strtok_r(NULL, " \t\r\n", &save);
    char *hex = strtok_r(NULL, " \t\r\n", &save);
    char *extra = strtok_r(NULL, " \t\r\n", &save);
    if (strcmp(word, "hopper-key") != 0 || id == NULL || hex == NULL ||
        extra != NULL || !key_id_valid(id, strlen(id)) ||
        strlen(hex) != 2 * AUTH_KEY_LEN) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_KEY_FILE,
                             "key file line %zu is not 'hopper-key ID "
                             "<64 hex digits>'",
                             lineno);
    }
    if (ks->n == AUTH_MAX_KEYS || find_key(ks, id) != NULL) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_KEY_FILE,
                             "key file line %zu: too many keys or a "
                             "repeated id",
                             lineno);
    }
    auth_key *k = &ks->keys[ks->n];
    if (hp_hex_decode(hex, strlen(hex), k->secret, AUTH_KEY_LEN) != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_KEY_FILE,
                             "key file line %zu: bad hex", lineno);
    }
    snprintf(k->id, sizeof(k->id), "%s", id);
    ks->n++;
    return HP_OK;
}

hp_code
auth_load_keys(const char *path, auth_keyset *out, hp_status *st)
{
    struct stat sb;
    char line[512];
    size_t lineno = 0;
    hp_code code = HP_OK;

    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return hp_status_from_errno(st, errno, "cannot open the key file");
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_BAD_KEY_FILE,
                             "key file '%s' is not a regular file", path);
    }
    if ((sb.st_mode & 077) != 0) {
        close(fd);
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_KEY_FILE_MODE,
                             "key file '%s' may be read by others (mode "
                             "%03o); chmod 600 it",
                             path, (unsigned)(sb.st_mode & 0777));
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return hp_status_from_errno(st, errno, "cannot read the key file");
    }
    while (code == HP_OK && fgets(line, sizeof(line), f) != NULL) {
        code = parse_key_line(line, ++lineno, out, st);
    }
    fclose(f);
    OPENSSL_cleanse(line, sizeof(line));
    if (code == HP_OK && out->n == 0) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_KEY_FILE,
                             "key file '%s' holds no key", path);
    }
    if (code != HP_OK) {
        OPENSSL_cleanse(out, sizeof(*out));
    }
    return code;
}

hp_code
auth_keygen(const char *path, const char *id, bool append, hp_status *st)
{
    uint8_t secret[AUTH_KEY_LEN];
    char hex[2 * AUTH_KEY_LEN + 1];

    if (!key_id_valid(id, strlen(id))) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_KEY_ID,
                             "key id must be 1-32 of [A-Za-z0-9._-]");
    }
    if (append) {
        auth_keyset ks;
        hp_code code = auth_load_keys(path, &ks, st);
        if (code != HP_OK) {
            return code;
        }
        bool dup = find_key(&ks, id) != NULL;
        OPENSSL_cleanse(&ks, sizeof(ks));
        if (dup) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_KEY_ID,
                                 "key id '%s' is already in the file", id);
        }
    }
    if (RAND_bytes(secret, sizeof(secret)) != 1) {
        return hp_status_set(st, HP_INTERNAL, HP_R_RANDOM_FAILED,
                             "random source failed");
    }
    hp_hex_encode(secret, sizeof(secret), hex);
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_EXCL);
    int fd = open(path, flags, 0600);
    if (fd < 0) {
        OPENSSL_cleanse(secret, sizeof(secret));
        OPENSSL_cleanse(hex, sizeof(hex));
        return hp_status_from_errno(st, errno,
                                    append ? "cannot append to the key file"
                                           : "cannot create the key file "
                                             "(does it exist already?)");
    }
    char line[160];
    int n = snprintf(line, sizeof(line), "%shopper-key %s %s\n",
                     append ? "" : "# Hopper broker keys; keep private.\n", id,
                     hex);
    ssize_t w = write(fd, line, (size_t)n);
    int werr = errno;
    close(fd);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(hex, sizeof(hex));
    OPENSSL_cleanse(line, sizeof(line));
    if (w != n) {
        return hp_status_from_errno(st, w < 0 ? werr : EIO,
                                    "cannot write the key file");
    }
    return HP_OK;
}

/* ---- the broker's policy ----------------------------------------------- */

hp_code
auth_policy_init(auth_policy *p, const char *keys_path, bool allow_anonymous,
                 const char *exposed_url, hp_status *st)
{
    memset(p, 0, sizeof(*p));
    if (keys_path != NULL && keys_path[0] != '\0') {
        hp_code code = auth_load_keys(keys_path, &p->keys, st);
        if (code == HP_OK) {
            p->required = true;
            hp_log(HP_LOG_INFO, "auth keys loaded", "keys=%zu", p->keys.n);
        }
        return code;
    }
    if (exposed_url == NULL) {
        return HP_OK;
    }
    if (!allow_anonymous) {
        return hp_status_set(st, HP_FAILED_PRECONDITION,
                             HP_R_ANONYMOUS_NOT_LOCAL,
                             "'%s' is reachable from other hosts but there "
                             "is no --auth-keys; give a key file, or "
                             "--allow-anonymous to accept anyone",
                             exposed_url);
    }
    p->anonymous_exposed = true;
    hp_log(HP_LOG_WARN, "anonymous access",
           "detail=\"no key file and a non-local listener: anyone who "
           "reaches the port can read and write every scope\"");
    return HP_OK;
}
