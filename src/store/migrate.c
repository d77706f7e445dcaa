/*
 * migrate.c - upgrades a data dir written by an older hopperd, in place,
 * when it is opened.
 *
 * Schema 1 -> 2 adds `lane_ready`, a copy of `ready` keyed without the
 * target (keys.h): one put per pending message. One transaction cannot
 * hold that for a big backlog (LMDB 0.9.24 caps a write transaction at
 * 128 Ki dirty pages, about a few million keys put in random order), so
 * the copy runs in steps of UPGRADE_STEP keys, each its own transaction:
 *
 *   - The first step writes schema 2 together with meta `upgrade`, the last
 *     `ready` key copied so far (empty: none yet), and empties lane_ready
 *     first. From that commit on, a schema-1 build refuses the data dir
 *     (SCHEMA_TOO_NEW), so nothing can change `ready` behind the copy's
 *     back.
 *   - Each step copies the next keys after `upgrade` and moves it on; the
 *     last step deletes it. A crash between steps leaves schema 2 with
 *     `upgrade` set, and the next open resumes from there; a step is
 *     repeatable (puts of keys already there change nothing).
 *   - Nothing else runs meanwhile: store_open returns only once the copy
 *     is complete, so operations never see a half-filled lane_ready.
 *
 * Schema 2 -> 3 adds `deliver` and `secrets` (webhooks.c), which open
 * empty: one step writes the new version. A 1 -> 2 copy now writes 3 as
 * it starts, which is also what a schema-2 build refuses.
 *
 * Schema 3 -> 4 allows message records of version 2 (record.h: a
 * state_webhook_url) and the events lane; nothing is rewritten, version-1
 * records stay as they are: one step writes the new version, so that a
 * schema-3 build, which could not read a version-2 record, refuses the
 * data dir from then on.
 *
 * Schema 4 -> 5 allows delivery records of version 2 (webhooks.c: a
 * callback_timeout_ms) and the callback key in meta; likewise only the
 * version is written.
 */
#include <string.h>

#include "common/bytes.h"
#include "store/store_int.h"

#define META_UPGRADE "upgrade"
#define UPGRADE_STEP 10000

typedef struct upgrade {
    bool done;
    uint64_t copied; /* keys copied by this process, for tests and logs */
} upgrade;

static hp_code
read_state(store_txn *t, uint32_t *version, bool *running, key *resume,
           hp_status *st)
{
    MDB_val k = store_val(META_SCHEMA, strlen(META_SCHEMA)), v;
    int rc = txn_get(t, t->s->db_meta, &k, &v);
    if (rc != 0 || v.mv_size != 4) {
        return rc != 0 ? store_status_from_mdb(t->s, rc, st)
                       : hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                                       "schema version is damaged");
    }
    *version = hp_get_u32(v.mv_data);
    k = store_val(META_UPGRADE, strlen(META_UPGRADE));
    rc = txn_get(t, t->s->db_meta, &k, &v);
    *running = rc == 0;
    resume->len = 0;
    if (rc == MDB_NOTFOUND) {
        return HP_OK;
    }
    if (rc != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    if (v.mv_size > KEY_MAX) {
        return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                             "upgrade position is damaged");
    }
    key_put_bytes(resume, v.mv_data, v.mv_size);
    return HP_OK;
}

static hp_code
put_meta(store_txn *t, const char *name, const void *p, size_t len,
         hp_status *st)
{
    key k = { .len = 0 };
    key_put_bytes(&k, name, strlen(name));
    return db_put(t, t->s->db_meta, &k, p, len, st);
}

/* Copies up to UPGRADE_STEP `ready` keys after *from into lane_ready;
 * *from becomes the last one copied, *end tells whether `ready` ran out. */
static hp_code
copy_ready(store_txn *t, key *from, bool *end, uint64_t *copied, hp_status *st)
{
    MDB_cursor *cur;
    MDB_val kv, v;
    hp_code code = HP_OK;
    int rc;

    *end = false;
    if ((rc = mdb_cursor_open(t->mdb, t->s->db_ready, &cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    kv = key_val(from);
    rc = from->len > 0 ? txn_cursor_get(t, cur, &kv, &v, MDB_SET_RANGE)
                       : txn_cursor_get(t, cur, &kv, &v, MDB_FIRST);
    if (rc == 0 && from->len > 0 && kv.mv_size == from->len &&
        memcmp(kv.mv_data, from->b, from->len) == 0) {
        rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT);
    }
    for (uint32_t n = 0; rc == 0 && n < UPGRADE_STEP; n++) {
        ready_key rk;
        key lk;
        if (key_parse_ready(kv.mv_data, kv.mv_size, &rk) != 0) {
            code = hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                                 "upgrade found a malformed key in the "
                                 "ready index; restore a backup");
            goto close_cursor;
        }
        key_lane_ready(&lk, rk.scope, rk.lane, rk.priority, rk.available_at,
                       &rk.id);
        from->len = 0;
        key_put_bytes(from, kv.mv_data, kv.mv_size);
        if ((code = db_put_empty(t, t->s->db_lane_ready, &lk, st)) != HP_OK) {
            goto close_cursor;
        }
        (*copied)++;
        rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) {
        *end = true;
    } else if (rc != 0) {
        code = store_status_from_mdb(t->s, rc, st);
    }
close_cursor:
    mdb_cursor_close(cur);
    return code;
}

static hp_code
upgrade_step(store_txn *t, void *arg, hp_status *st)
{
    upgrade *u = arg;
    uint32_t version = 0;
    bool running = false, end = false;
    key from;
    uint8_t ver[4];
    hp_code code;

    if ((code = read_state(t, &version, &running, &from, st)) != HP_OK) {
        return code;
    }
    if (version == STORE_SCHEMA_VERSION && !running) {
        u->done = true;
        return HP_OK;
    }
    if (version >= 2 && !running) {
        /* 2 -> 3 adds the `deliver` and `secrets` databases, which open
         * empty (env.c), 3 -> 4 a record version that only new messages
         * use, and 4 -> 5 one that only delivery settings written from
         * then on use: only the version changes. */
        u->done = true; /* once this commits */
        hp_put_u32(ver, STORE_SCHEMA_VERSION);
        return put_meta(t, META_SCHEMA, ver, sizeof(ver), st);
    }
    if (version == 1) {
        /* Whatever a schema-1 build left there is not ours to trust. */
        int rc = mdb_drop(t->mdb, t->s->db_lane_ready, 0);
        if (rc != 0) {
            return store_status_from_mdb(t->s, rc, st);
        }
        from.len = 0;
    }
    hp_put_u32(ver, STORE_SCHEMA_VERSION);
    if ((code = put_meta(t, META_SCHEMA, ver, sizeof(ver), st)) != HP_OK ||
        (code = copy_ready(t, &from, &end, &u->copied, st)) != HP_OK) {
        return code;
    }
    if (!end) {
        return put_meta(t, META_UPGRADE, from.b, from.len, st);
    }
    u->done = true; /* once this commits */
    key k = { .len = 0 };
    key_put_bytes(&k, META_UPGRADE, strlen(META_UPGRADE));
    return db_del(t, t->s->db_meta, &k, st);
}

hp_code
store_upgrade(store *s, hp_status *st)
{
    upgrade u = { false, 0 };
    hp_code code = HP_OK;

    while (!u.done && code == HP_OK) {
        code = store_run(s, true, upgrade_step, &u, st);
    }
    return code;
}
