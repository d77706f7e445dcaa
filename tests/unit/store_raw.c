/*
 * store_raw.c - raw LMDB edits of a closed store (store_raw.h).
 */
#include "store_raw.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_fixture.h"

/* Runs one write transaction on the named database db of dir. */
typedef void (*raw_fn)(MDB_txn *txn, MDB_dbi dbi, void *arg);

static void
raw_edit(const char *dir, const char *db, bool create, raw_fn fn, void *arg)
{
    MDB_env *env = fixture_raw_open(dir);
    MDB_txn *txn = NULL;
    MDB_dbi dbi;

    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, create ? MDB_CREATE : 0, &dbi), 0);
    fn(txn, dbi, arg);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

typedef struct raw_kv {
    MDB_val k, v;
    long off;
} raw_kv;

/* LMDB takes non-const pointers; the bytes are copied so the caller's
 * stay const. */
static MDB_val
copy_val(const void *p, size_t len)
{
    MDB_val v = { len, malloc(len > 0 ? len : 1) };
    assert_non_null(v.mv_data);
    if (len > 0) {
        memcpy(v.mv_data, p, len);
    }
    return v;
}

static void
put_fn(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
    raw_kv *kv = arg;
    assert_int_equal(mdb_put(txn, dbi, &kv->k, &kv->v, 0), 0);
}

void
raw_put(const char *dir, const char *db, bool create, const void *k,
        size_t klen, const void *v, size_t vlen)
{
    raw_kv kv = { copy_val(k, klen), copy_val(v, vlen), 0 };
    raw_edit(dir, db, create, put_fn, &kv);
    free(kv.k.mv_data);
    free(kv.v.mv_data);
}

static void
del_fn(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
    raw_kv *kv = arg;
    assert_int_equal(mdb_del(txn, dbi, &kv->k, NULL), 0);
}

void
raw_del(const char *dir, const char *db, const key *k)
{
    raw_kv kv = { copy_val(k->b, k->len), { 0, NULL }, 0 };
    raw_edit(dir, db, false, del_fn, &kv);
    free(kv.k.mv_data);
}

static void
flip_fn(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
    raw_kv *kv = arg;
    MDB_val val;
    assert_int_equal(mdb_get(txn, dbi, &kv->k, &val), 0);
    kv->v = copy_val(val.mv_data, val.mv_size);
    size_t at =
        kv->off < 0 ? val.mv_size - (size_t)(-kv->off) : (size_t)kv->off;
    assert_true(at < val.mv_size);
    ((uint8_t *)kv->v.mv_data)[at] ^= 0x01;
    assert_int_equal(mdb_put(txn, dbi, &kv->k, &kv->v, 0), 0);
}

void
raw_flip(const char *dir, const char *db, const key *k, long off)
{
    raw_kv kv = { copy_val(k->b, k->len), { 0, NULL }, off };
    raw_edit(dir, db, false, flip_fn, &kv);
    free(kv.k.mv_data);
    free(kv.v.mv_data);
}

size_t
raw_get(const char *dir, const char *db, const key *k, void *buf, size_t cap)
{
    MDB_env *env = fixture_raw_open(dir);
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val kv = copy_val(k->b, k->len), val;

    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &kv, &val), 0);
    assert_true(val.mv_size <= cap);
    memcpy(buf, val.mv_data, val.mv_size);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    free(kv.mv_data);
    return val.mv_size;
}
