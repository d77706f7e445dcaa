/*
 * store_raw.h - edits of a closed store's LMDB environment with the raw
 * LMDB API, for tests that cause damage rather than fake it: a value put
 * where the store would never put it, an entry deleted behind its back,
 * one bit flipped. Each call opens and closes the environment; the store
 * must be closed (fixture_close) first. Failures fail the test.
 */
#ifndef HP_TESTS_STORE_RAW_H
#define HP_TESTS_STORE_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "store/keys.h"

/* Puts k = v into the named database db, creating it when create. */
void raw_put(const char *dir, const char *db, bool create, const void *k,
             size_t klen, const void *v, size_t vlen);

/* Deletes k from the named database db; it must be there. */
void raw_del(const char *dir, const char *db, const key *k);

/* Flips one bit of the byte at off (from the end when off < 0) in the value
 * of k in the named database db. */
void raw_flip(const char *dir, const char *db, const key *k, long off);

/* Copies the value of k in the named database db into buf (at most cap
 * bytes; the value must fit) and returns its length. */
size_t raw_get(const char *dir, const char *db, const key *k, void *buf,
               size_t cap);

#endif
