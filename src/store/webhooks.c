/*
 * webhooks.c - the delivery settings of lanes that hopperd delivers over
 * HTTP (docs/webhooks.md). They live in their own database, `deliver`,
 * keyed like `lanes` by (scope, lane), so that the lane record and its
 * per-operation cache, which every enqueue and claim touch, stay small and
 * fixed-size; a lane without delivery has no entry. The signing secrets
 * they name live in `secrets`, below.
 *
 * Delivery record (value of `deliver`), integers big-endian:
 *
 *   off  size  field
 *   0    8     checksum: XXH3-64 of bytes [8, end)
 *   8    1     version (DELIVER_VERSION)
 *   9    1     secret_id length, 1-64
 *   10   2     url length, 1-STORE_DELIVER_URL_MAX
 *   12   4     concurrency
 *   16   4     timeout_ms
 *   20   4     callback_timeout_ms (version 2; a version-1 record has
 *                none, reads as STORE_CALLBACK_TIMEOUT_DEFAULT_MS and has
 *                its url at 20)
 *   24   n     url
 *   24+n m     secret_id
 *
 * Changing this layout? Bump DELIVER_VERSION and STORE_SCHEMA_VERSION,
 * keep the old decoder, add a test that opens a previous-version file.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/bytes.h"
#include "store/store_int.h"

#define DELIVER_VERSION 2
#define DELIVER_FIXED   24
#define DELIVER_FIXED_1 20 /* version 1 */

void
store_delivery_default(store_delivery *d)
{
    memset(d, 0, sizeof(*d));
    d->concurrency = STORE_DELIVER_CONCURRENCY_DEFAULT;
    d->timeout_ms = STORE_DELIVER_TIMEOUT_DEFAULT_MS;
    d->callback_timeout_ms = STORE_CALLBACK_TIMEOUT_DEFAULT_MS;
}

static hp_code
bad_url(hp_status *st, const char *field, const char *why)
{
    return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_DELIVER_URL, "%s %s",
                         field, why);
}

/* The shape of a URL hopperd will POST to; where it leads is checked at
 * delivery time, on the resolved address. */
hp_code
store_url_check(hp_str url, const char *field, hp_status *st)
{
    size_t len = url.len;
    size_t scheme;
    if (len > STORE_DELIVER_URL_MAX) {
        return bad_url(st, field, "must be at most 2048 bytes");
    }
    if (len >= 7 && memcmp(url.p, "http://", 7) == 0) {
        scheme = 7;
    } else if (len >= 8 && memcmp(url.p, "https://", 8) == 0) {
        scheme = 8;
    } else {
        return bad_url(st, field, "must start with http:// or https://");
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url.p[i];
        if (c <= 0x20 || c >= 0x7f) {
            return bad_url(st, field,
                           "must be printable ASCII without spaces "
                           "(percent-encode the rest)");
        }
    }
    size_t host = 0;
    while (scheme + host < len && strchr("/?#", url.p[scheme + host]) == NULL) {
        host++;
    }
    if (host == 0) {
        return bad_url(st, field, "has no host");
    }
    /* Credentials would come back in every GetLane (or Get): sign with a
     * secret. */
    if (memchr(url.p + scheme, '@', host) != NULL) {
        return bad_url(st, field, "must not carry user:password");
    }
    return HP_OK;
}

static hp_code
check_delivery(const store_delivery *d, hp_status *st)
{
    hp_code code;
    if (d->url[0] == '\0') {
        return HP_OK; /* no delivery: the rest is kept but unused */
    }
    if ((code = store_url_check(hp_str_c(d->url), "deliver_url", st)) !=
        HP_OK) {
        return code;
    }
    if (d->secret_id[0] == '\0') {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING,
                             "a lane with a deliver_url needs a secret_id");
    }
    if ((code = hp_name_check(hp_str_c(d->secret_id), "secret_id", st)) !=
        HP_OK) {
        return code;
    }
    if (d->concurrency < 1 || d->concurrency > STORE_DELIVER_CONCURRENCY_MAX) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING,
                             "deliver_concurrency must be 1-%u",
                             STORE_DELIVER_CONCURRENCY_MAX);
    }
    if (d->timeout_ms < STORE_DELIVER_TIMEOUT_MIN_MS ||
        d->timeout_ms > STORE_DELIVER_TIMEOUT_MAX_MS) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING,
                             "deliver_timeout_ms must be %u-%u",
                             STORE_DELIVER_TIMEOUT_MIN_MS,
                             STORE_DELIVER_TIMEOUT_MAX_MS);
    }
    if (d->callback_timeout_ms < STORE_CALLBACK_TIMEOUT_MIN_MS ||
        d->callback_timeout_ms > STORE_CALLBACK_TIMEOUT_MAX_MS) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING,
                             "callback_timeout_ms must be %u-%u",
                             STORE_CALLBACK_TIMEOUT_MIN_MS,
                             STORE_CALLBACK_TIMEOUT_MAX_MS);
    }
    return HP_OK;
}

static hp_code
decode(const void *p, size_t len, hp_str lane, store_delivery *d, hp_status *st)
{
    const uint8_t *b = p;
    size_t id_len = len > 9 ? b[9] : 0;
    size_t url_len = len > 12 ? hp_get_u16(b + 10) : 0;
    uint8_t version = len > 8 ? b[8] : 0;
    size_t fixed = version == 1 ? DELIVER_FIXED_1 : DELIVER_FIXED;
    if (len < fixed || record_check(b, len) != 0 ||
        (version != 1 && version != DELIVER_VERSION) || id_len == 0 ||
        id_len > HP_NAME_MAX || url_len == 0 ||
        url_len > STORE_DELIVER_URL_MAX || len != fixed + url_len + id_len) {
        return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                             "lane '%.*s' delivery record is damaged",
                             (int)lane.len, lane.p);
    }
    memset(d, 0, sizeof(*d));
    d->concurrency = hp_get_u32(b + 12);
    d->timeout_ms = hp_get_u32(b + 16);
    d->callback_timeout_ms =
        version == 1 ? STORE_CALLBACK_TIMEOUT_DEFAULT_MS : hp_get_u32(b + 20);
    memcpy(d->url, b + fixed, url_len);
    memcpy(d->secret_id, b + fixed + url_len, id_len);
    return HP_OK;
}

hp_code
store_delivery_get(store_txn *t, hp_str scope, hp_str lane, store_delivery *out,
                   hp_status *st)
{
    key k;
    MDB_val kv, v;
    hp_code code;

    if ((code = check_scope(scope, st)) != HP_OK ||
        (code = hp_name_check(lane, "lane", st)) != HP_OK) {
        return code;
    }
    key_lane(&k, scope, lane);
    kv = key_val(&k);
    int rc = txn_get(t, t->s->db_deliver, &kv, &v);
    if (rc == MDB_NOTFOUND) {
        store_delivery_default(out);
        return HP_OK;
    }
    if (rc != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    return decode(v.mv_data, v.mv_size, lane, out, st);
}

hp_code
store_delivery_set(store_txn *t, hp_str scope, hp_str lane,
                   const store_delivery *d, hp_status *st)
{
    uint8_t rec[DELIVER_FIXED + STORE_DELIVER_URL_MAX + HP_NAME_MAX];
    key k;
    hp_code code;

    if ((code = check_write(t, st)) != HP_OK ||
        (code = check_scope(scope, st)) != HP_OK ||
        (code = hp_name_check(lane, "lane", st)) != HP_OK ||
        (code = check_delivery(d, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    if (d->url[0] != '\0' && hp_str_eq(lane, hp_str_c(STORE_EVENTS_LANE))) {
        /* The delivery part sends each event to its own URL. */
        return txn_fail(t,
                        hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING,
                                      "lane '" STORE_EVENTS_LANE
                                      "' is delivered to each event's "
                                      "state_webhook_url"));
    }
    key_lane(&k, scope, lane);
    if (d->url[0] == '\0') {
        return txn_fail(t, db_del(t, t->s->db_deliver, &k, st));
    }
    size_t url_len = strlen(d->url), id_len = strlen(d->secret_id);
    memset(rec, 0, DELIVER_FIXED);
    rec[8] = DELIVER_VERSION;
    rec[9] = (uint8_t)id_len;
    hp_put_u16(rec + 10, (uint16_t)url_len);
    hp_put_u32(rec + 12, d->concurrency);
    hp_put_u32(rec + 16, d->timeout_ms);
    hp_put_u32(rec + 20, d->callback_timeout_ms);
    memcpy(rec + DELIVER_FIXED, d->url, url_len);
    memcpy(rec + DELIVER_FIXED + url_len, d->secret_id, id_len);
    size_t len = DELIVER_FIXED + url_len + id_len;
    record_seal(rec, len);
    return txn_fail(t, db_put(t, t->s->db_deliver, &k, rec, len, st));
}

hp_code
store_delivery_each(store_txn *t, store_delivery_fn fn, void *arg,
                    hp_status *st)
{
    MDB_cursor *cur;
    MDB_val kv, v;
    hp_code code = HP_OK;
    int rc;

    if ((rc = mdb_cursor_open(t->mdb, t->s->db_deliver, &cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    for (rc = txn_cursor_get(t, cur, &kv, &v, MDB_FIRST); rc == 0;
         rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT)) {
        key_reader r;
        hp_str scope, lane;
        store_delivery d;
        hp_status ignored; /* get names the damage; the others go on */
        key_reader_init(&r, kv.mv_data, kv.mv_size);
        if (kv.mv_size > KEY_MAX || key_read_name(&r, &scope) != 0 ||
            key_read_name(&r, &lane) != 0 || key_reader_done(&r) != 0 ||
            decode(v.mv_data, v.mv_size, lane, &d, &ignored) != HP_OK) {
            continue;
        }
        fn(arg, scope, lane, &d);
    }
    if (rc != MDB_NOTFOUND) {
        code = store_status_from_mdb(t->s, rc, st);
    }
    mdb_cursor_close(cur);
    return code;
}

/* ---- signing secrets --------------------------------------------------------
 *
 * Secret record (value of `secrets`, key (scope, secret id) as key_lane
 * builds it), integers big-endian:
 *
 *   off  size  field
 *   0    8     checksum: XXH3-64 of bytes [8, end)
 *   8    1     version (SECRET_VERSION)
 *   9    1     number of values, 1 or 2, newest first
 *   10   2     length of value 0 (a), STORE_SECRET_MIN-STORE_SECRET_MAX
 *   12   a     value 0
 *   12+a 2     length of value 1 (b), when there are two
 *   14+a b     value 1
 *
 * Only the delivery part reads values (store_secret_get); no rpc returns
 * them. Changing this layout? Bump SECRET_VERSION and
 * STORE_SCHEMA_VERSION, keep the old decoder, add a test that opens a
 * previous-version file.
 */

#define SECRET_VERSION 1
#define SECRET_REC_MAX (12 + 2 + 2 * STORE_SECRET_MAX)

static hp_code
secret_decode(const void *p, size_t len, hp_str id, store_secret *out,
              hp_status *st)
{
    const uint8_t *b = p;
    size_t off = 10;
    memset(out, 0, sizeof(*out));
    if (len < 12 || record_check(b, len) != 0 || b[8] != SECRET_VERSION ||
        b[9] < 1 || b[9] > STORE_SECRET_VALUES) {
        goto damaged;
    }
    for (uint8_t i = 0; i < b[9]; i++) {
        size_t n = off + 2 <= len ? hp_get_u16(b + off) : 0;
        if (n < STORE_SECRET_MIN || n > STORE_SECRET_MAX || off + 2 + n > len) {
            goto damaged;
        }
        memcpy(out->value[i], b + off + 2, n);
        out->len[i] = n;
        off += 2 + n;
    }
    if (off != len) {
        goto damaged;
    }
    out->n = b[9];
    return HP_OK;
damaged:
    memset(out, 0, sizeof(*out));
    return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                         "secret '%.*s' record is damaged", (int)id.len, id.p);
}

static hp_code
secret_put(store_txn *t, const key *k, const store_secret *sec, hp_status *st)
{
    uint8_t rec[SECRET_REC_MAX];
    size_t off = 10;
    memset(rec, 0, sizeof(rec));
    rec[8] = SECRET_VERSION;
    rec[9] = (uint8_t)sec->n;
    for (size_t i = 0; i < sec->n; i++) {
        hp_put_u16(rec + off, (uint16_t)sec->len[i]);
        memcpy(rec + off + 2, sec->value[i], sec->len[i]);
        off += 2 + sec->len[i];
    }
    record_seal(rec, off);
    hp_code code = db_put(t, t->s->db_secrets, k, rec, off, st);
    /* The record held the values: leave no copy on the stack. */
    OPENSSL_cleanse(rec, sizeof(rec));
    return code;
}

static hp_code
secret_check(hp_str scope, hp_str id, size_t len, hp_status *st)
{
    hp_code code;
    if ((code = check_scope(scope, st)) != HP_OK ||
        (code = hp_name_check(id, "secret id", st)) != HP_OK) {
        return code;
    }
    if (len < STORE_SECRET_MIN || len > STORE_SECRET_MAX) {
        /* The length only: a secret is never quoted, even in part. */
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_SECRET,
                             "secret must be %d-%d bytes, not %zu",
                             STORE_SECRET_MIN, STORE_SECRET_MAX, len);
    }
    return HP_OK;
}

hp_code
store_secret_get(store_txn *t, hp_str scope, hp_str id, store_secret *out,
                 hp_status *st)
{
    key k;
    MDB_val kv, v;
    hp_code code;

    memset(out, 0, sizeof(*out));
    if ((code = check_scope(scope, st)) != HP_OK ||
        (code = hp_name_check(id, "secret id", st)) != HP_OK) {
        return code;
    }
    key_lane(&k, scope, id);
    kv = key_val(&k);
    int rc = txn_get(t, t->s->db_secrets, &kv, &v);
    if (rc == MDB_NOTFOUND) {
        return hp_status_set(st, HP_NOT_FOUND, HP_R_NO_SECRET,
                             "secret '%.*s' not found in scope '%.*s'",
                             (int)id.len, id.p, (int)scope.len, scope.p);
    }
    if (rc != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    return secret_decode(v.mv_data, v.mv_size, id, out, st);
}

hp_code
store_secret_set(store_txn *t, hp_str scope, hp_str id, const void *value,
                 size_t len, bool rotate, uint32_t *active, hp_status *st)
{
    store_secret sec;
    key k;
    hp_code code;

    if ((code = check_write(t, st)) != HP_OK ||
        (code = secret_check(scope, id, len, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    if (rotate) {
        if ((code = store_secret_get(t, scope, id, &sec, st)) != HP_OK) {
            return txn_fail(t, code);
        }
        if (sec.len[0] == len && CRYPTO_memcmp(sec.value[0], value, len) == 0) {
            /* A repeated rotate: the older value stays. */
            if (active != NULL) {
                *active = (uint32_t)sec.n;
            }
            store_secret_clear(&sec);
            return HP_OK;
        }
        /* The newest so far becomes the older of two; any older goes. */
        memcpy(sec.value[1], sec.value[0], sec.len[0]);
        sec.len[1] = sec.len[0];
        sec.n = 2;
    } else {
        memset(&sec, 0, sizeof(sec));
        sec.n = 1;
    }
    memcpy(sec.value[0], value, len);
    sec.len[0] = len;
    key_lane(&k, scope, id);
    code = secret_put(t, &k, &sec, st);
    if (code == HP_OK && active != NULL) {
        *active = (uint32_t)sec.n;
    }
    store_secret_clear(&sec);
    return txn_fail(t, code);
}

void
store_secret_clear(store_secret *sec)
{
    OPENSSL_cleanse(sec, sizeof(*sec));
}

/* ---- the callback key ---------------------------------------------------- */

#define META_CALLBACK_KEY "callback_key"

hp_code
store_callback_key(store_txn *t, const uint8_t fresh[STORE_CALLBACK_KEY_LEN],
                   uint8_t out[STORE_CALLBACK_KEY_LEN], hp_status *st)
{
    key k = { .len = 0 };
    MDB_val kv, v;
    hp_code code;

    if ((code = check_write(t, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    key_put_bytes(&k, META_CALLBACK_KEY, strlen(META_CALLBACK_KEY));
    kv = key_val(&k);
    int rc = txn_get(t, t->s->db_meta, &kv, &v);
    if (rc == 0 && v.mv_size == STORE_CALLBACK_KEY_LEN) {
        memcpy(out, v.mv_data, STORE_CALLBACK_KEY_LEN);
        return HP_OK;
    }
    if (rc == 0) {
        return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                             "the callback key is damaged");
    }
    if (rc != MDB_NOTFOUND) {
        return store_status_from_mdb(t->s, rc, st);
    }
    if ((code = db_put(t, t->s->db_meta, &k, fresh, STORE_CALLBACK_KEY_LEN,
                       st)) != HP_OK) {
        return txn_fail(t, code);
    }
    memcpy(out, fresh, STORE_CALLBACK_KEY_LEN);
    return HP_OK;
}
