/*
 * lanes.c - lane records: settings, state gauges and lifetime totals, and
 * the per-operation cache that reads each lane once and writes it once, so
 * an enqueue of a thousand drafts costs one lane write, not a thousand.
 *
 * Lane record (value of `lanes`), integers big-endian:
 *
 *   off  size  field
 *   0    8     checksum: XXH3-64 of bytes [8, end)
 *   8    1     version (LANE_VERSION)
 *   9    1     flags (bit 0: paused)
 *   10   1     backoff kind (store_backoff)
 *   11   1     reserved, 0
 *   12   4     max_attempts
 *   16   4     backoff_factor_pct
 *   20   4     jitter_pct
 *   24   8     backoff_base_ms
 *   32   8     backoff_cap_ms
 *   40   8     retention_ms
 *   48   8     dedupe_window_ms
 *   56   40    gauges: pending, delayed, claimed, delivered, dead (int64)
 *   96   72    totals: enqueued, dedupe hits, claimed, acked, nacked, dead,
 *              expired, replayed, purged
 *   168        end
 *
 * Changing this layout? Bump LANE_VERSION and STORE_SCHEMA_VERSION, keep the
 * old decoder, add a test that opens a previous-version file.
 */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "store/store_int.h"

#define LANE_VERSION  1
#define LANE_REC_LEN  168
#define LANE_F_PAUSED 0x01u

#define DAY_MS (24ull * 3600 * 1000)

_Static_assert(56 + 8 * G_COUNT == 96, "gauges fill 56..96");
_Static_assert(96 + 8 * T_COUNT == LANE_REC_LEN, "totals fill 96..168");

void
store_lane_settings_default(store_lane_settings *ls)
{
    memset(ls, 0, sizeof(*ls));
    ls->max_attempts = 5;
    ls->backoff = STORE_BACKOFF_EXPONENTIAL;
    ls->backoff_base_ms = 1000;
    ls->backoff_cap_ms = 3600 * 1000;
    ls->backoff_factor_pct = 200;
    ls->jitter_pct = 20;
    ls->retention_ms = 3600 * 1000;
    ls->dedupe_window_ms = DAY_MS;
    ls->paused = false;
}

const char *
store_backoff_name(store_backoff b)
{
    switch (b) {
    case STORE_BACKOFF_EXPONENTIAL:
        return "exponential";
    case STORE_BACKOFF_LINEAR:
        return "linear";
    case STORE_BACKOFF_CONSTANT:
        return "constant";
    }
    return "unknown";
}

static void
lane_encode(const lane_entry *e, uint8_t out[LANE_REC_LEN])
{
    const store_lane_settings *ls = &e->settings;
    memset(out, 0, LANE_REC_LEN);
    out[8] = LANE_VERSION;
    out[9] = ls->paused ? LANE_F_PAUSED : 0;
    out[10] = (uint8_t)ls->backoff;
    hp_put_u32(out + 12, ls->max_attempts);
    hp_put_u32(out + 16, ls->backoff_factor_pct);
    hp_put_u32(out + 20, ls->jitter_pct);
    hp_put_u64(out + 24, ls->backoff_base_ms);
    hp_put_u64(out + 32, ls->backoff_cap_ms);
    hp_put_u64(out + 40, ls->retention_ms);
    hp_put_u64(out + 48, ls->dedupe_window_ms);
    for (int i = 0; i < G_COUNT; i++) {
        hp_put_u64(out + 56 + 8 * i, (uint64_t)e->gauge[i]);
    }
    for (int i = 0; i < T_COUNT; i++) {
        hp_put_u64(out + 96 + 8 * i, e->total[i]);
    }
    record_seal(out, LANE_REC_LEN);
}

hp_code
lane_decode(const void *p, size_t len, hp_str scope, hp_str lane, lane_entry *e,
            hp_status *st)
{
    const uint8_t *b = p;
    if (len != LANE_REC_LEN || record_check(b, len) != 0 ||
        b[8] != LANE_VERSION || b[10] > STORE_BACKOFF_CONSTANT) {
        return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                             "lane '%.*s' record is damaged", (int)lane.len,
                             lane.p);
    }
    memset(e, 0, sizeof(*e));
    hp_lane_key_set(&e->key, scope, lane);
    e->exists = true;
    store_lane_settings *ls = &e->settings;
    ls->paused = (b[9] & LANE_F_PAUSED) != 0;
    ls->backoff = (store_backoff)b[10];
    ls->max_attempts = hp_get_u32(b + 12);
    ls->backoff_factor_pct = hp_get_u32(b + 16);
    ls->jitter_pct = hp_get_u32(b + 20);
    ls->backoff_base_ms = hp_get_u64(b + 24);
    ls->backoff_cap_ms = hp_get_u64(b + 32);
    ls->retention_ms = hp_get_u64(b + 40);
    ls->dedupe_window_ms = hp_get_u64(b + 48);
    for (int i = 0; i < G_COUNT; i++) {
        e->gauge[i] = (int64_t)hp_get_u64(b + 56 + 8 * i);
    }
    for (int i = 0; i < T_COUNT; i++) {
        e->total[i] = hp_get_u64(b + 96 + 8 * i);
    }
    return HP_OK;
}

/* ---- the cache ------------------------------------------------------------
 */

void
lane_cache_init(lane_cache *c, store_txn *t)
{
    c->t = t;
    c->entries = c->inline_entries;
    c->n = 0;
    c->cap = LANE_CACHE_INLINE;
}

void
lane_cache_release(lane_cache *c)
{
    if (c->entries != c->inline_entries) {
        free(c->entries);
    }
    c->entries = c->inline_entries;
    c->n = 0;
}

static hp_code
lane_cache_slot(lane_cache *c, lane_entry **out, hp_status *st)
{
    if (c->n == c->cap) {
        size_t cap = c->cap * 2;
        lane_entry *e = malloc(cap * sizeof(*e));
        if (e == NULL) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        }
        memcpy(e, c->entries, c->n * sizeof(*e));
        if (c->entries != c->inline_entries) {
            free(c->entries);
        }
        c->entries = e;
        c->cap = cap;
    }
    *out = &c->entries[c->n];
    return HP_OK;
}

hp_code
lane_cache_get(lane_cache *c, hp_str scope, hp_str lane, bool create,
               lane_entry **out, hp_status *st)
{
    store *s = c->t->s;
    hp_code code;
    key k;
    MDB_val kv, v;

    /* Most operations touch one lane, so a linear scan is the fast path. */
    for (size_t i = 0; i < c->n; i++) {
        lane_entry *e = &c->entries[i];
        if (hp_lane_key_is(&e->key, scope, lane)) {
            if (!e->exists && !create) {
                break;
            }
            *out = e;
            return HP_OK;
        }
    }
    lane_entry *e = NULL;
    if ((code = lane_cache_slot(c, &e, st)) != HP_OK) {
        return code;
    }
    key_lane(&k, scope, lane);
    kv = key_val(&k);
    int rc = txn_get(c->t, s->db_lanes, &kv, &v);
    if (rc == 0) {
        if ((code = lane_decode(v.mv_data, v.mv_size, scope, lane, e, st)) !=
            HP_OK) {
            return code;
        }
    } else if (rc == MDB_NOTFOUND) {
        if (!create) {
            return hp_status_set(st, HP_NOT_FOUND, HP_R_NO_LANE,
                                 "lane '%.*s' not found in scope '%.*s'",
                                 (int)lane.len, lane.p, (int)scope.len,
                                 scope.p);
        }
        memset(e, 0, sizeof(*e));
        hp_lane_key_set(&e->key, scope, lane);
        store_lane_settings_default(&e->settings);
        e->dirty = true;
    } else {
        return store_status_from_mdb(s, rc, st);
    }
    c->n++;
    *out = e;
    return HP_OK;
}

hp_code
lane_cache_flush(lane_cache *c, hp_status *st)
{
    uint8_t rec[LANE_REC_LEN];
    key k;
    hp_code code;

    for (size_t i = 0; i < c->n; i++) {
        lane_entry *e = &c->entries[i];
        if (!e->dirty) {
            continue;
        }
        lane_encode(e, rec);
        key_lane(&k, hp_lane_key_scope(&e->key), hp_lane_key_lane(&e->key));
        if ((code = db_put(c->t, c->t->s->db_lanes, &k, rec, sizeof(rec),
                           st)) != HP_OK) {
            return code;
        }
        e->dirty = false;
        e->exists = true;
    }
    return HP_OK;
}

/* ---- settings ---------------------------------------------------------------
 */

static hp_code
bad_setting(hp_status *st, const char *what)
{
    return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING, "%s", what);
}

static hp_code
check_settings(const store *s, const store_lane_settings *ls, hp_status *st)
{
    if (ls->max_attempts == 0 ||
        ls->max_attempts > s->opts.limits.max_max_attempts) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING,
                             "max_attempts must be 1-%u",
                             s->opts.limits.max_max_attempts);
    }
    if ((unsigned)ls->backoff > STORE_BACKOFF_CONSTANT) {
        return bad_setting(st, "backoff must be exponential, linear or "
                               "constant");
    }
    if (ls->backoff_base_ms > DAY_MS) {
        return bad_setting(st, "backoff base must be at most 1 day");
    }
    if (ls->backoff_cap_ms < ls->backoff_base_ms ||
        ls->backoff_cap_ms > 30 * DAY_MS) {
        return bad_setting(st, "backoff cap must be between the base and "
                               "30 days");
    }
    if (ls->backoff_factor_pct < 100 || ls->backoff_factor_pct > 1000) {
        return bad_setting(st, "backoff factor must be 100-1000 percent");
    }
    if (ls->jitter_pct > 100) {
        return bad_setting(st, "jitter must be 0-100 percent");
    }
    if (ls->retention_ms > 30 * DAY_MS) {
        return bad_setting(st, "retention must be at most 30 days");
    }
    if (ls->dedupe_window_ms > 30 * DAY_MS) {
        return bad_setting(st, "dedupe window must be at most 30 days");
    }
    return HP_OK;
}

static hp_code
check_lane_name(hp_str scope, hp_str lane, hp_status *st)
{
    hp_code code = check_scope(scope, st);
    return code == HP_OK ? hp_name_check(lane, "lane", st) : code;
}

hp_code
store_lane_set(store_txn *t, hp_str scope, hp_str lane,
               const store_lane_settings *ls, hp_status *st)
{
    lane_cache c;
    lane_entry *e;
    hp_code code;

    if ((code = check_write(t, st)) != HP_OK ||
        (code = check_lane_name(scope, lane, st)) != HP_OK ||
        (code = check_settings(t->s, ls, st)) != HP_OK) {
        return txn_fail(t, code);
    }
    lane_cache_init(&c, t);
    code = lane_cache_get(&c, scope, lane, true, &e, st);
    if (code == HP_OK) {
        bool resumed = e->settings.paused && !ls->paused;
        e->settings = *ls;
        e->dirty = true;
        code = lane_cache_flush(&c, st);
        if (code == HP_OK && resumed && e->gauge[G_PENDING] > 0) {
            /* Waiters parked on a paused lane can claim again. */
            txn_note_ready(t, scope, lane, STORE_READY_MANY);
        }
    }
    lane_cache_release(&c);
    return txn_fail(t, code);
}

hp_code
store_lane_get(store_txn *t, hp_str scope, hp_str lane,
               store_lane_settings *out, hp_status *st)
{
    lane_cache c;
    lane_entry *e;
    hp_code code;

    if ((code = check_lane_name(scope, lane, st)) != HP_OK) {
        return code;
    }
    lane_cache_init(&c, t);
    code = lane_cache_get(&c, scope, lane, false, &e, st);
    if (code == HP_OK) {
        *out = e->settings;
    }
    lane_cache_release(&c);
    return code;
}

uint64_t
store_retry_capped(store_txn *t, hp_str scope, hp_str lane, uint64_t delay_ms,
                   uint64_t now_ms)
{
    store_lane_settings ls;
    hp_status ignored; /* unreadable: the lane's own backoff decides */
    if (store_lane_get(t, scope, lane, &ls, &ignored) != HP_OK) {
        return 0;
    }
    return now_ms +
           (delay_ms < ls.backoff_cap_ms ? delay_ms : ls.backoff_cap_ms);
}

uint64_t
backoff_delay_ms(store *s, const store_lane_settings *ls, uint32_t attempt)
{
    uint64_t d = ls->backoff_base_ms;
    if (attempt < 1) {
        attempt = 1;
    }
    switch (ls->backoff) {
    case STORE_BACKOFF_EXPONENTIAL:
        for (uint32_t i = 1; i < attempt && d < ls->backoff_cap_ms; i++) {
            d = d * ls->backoff_factor_pct / 100;
        }
        break;
    case STORE_BACKOFF_LINEAR:
        d = ls->backoff_base_ms * attempt;
        break;
    case STORE_BACKOFF_CONSTANT:
        break;
    }
    if (d > ls->backoff_cap_ms) {
        d = ls->backoff_cap_ms;
    }
    if (ls->jitter_pct > 0 && d > 0) {
        uint32_t r = 0;
        uint64_t span = d * ls->jitter_pct / 100; /* +- span */
        if (span > 0 && s->opts.rand(s->opts.rand_arg, &r, sizeof(r)) == 0) {
            uint64_t off = (uint64_t)r % (2 * span + 1);
            d = d - span + off;
        }
    }
    return d;
}
