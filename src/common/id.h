/*
 * id.h - 128-bit message ids, time-ordered, shown as 26-character ULIDs.
 *
 * Layout (big-endian, so byte order is time order):
 *   bytes 0..5   milliseconds since the Unix epoch (48 bits)
 *   bytes 6..15  80 random bits; within one millisecond the generator adds
 *                one instead of drawing again, so ids it hands out increase
 *                strictly and FIFO order by id holds within a millisecond.
 */
#ifndef HP_COMMON_ID_H
#define HP_COMMON_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define HP_ID_LEN      16
#define HP_ID_TEXT_LEN 26 /* ULID characters, without the NUL */

typedef struct hp_id {
    uint8_t b[HP_ID_LEN];
} hp_id;

/* Fills buf with len random bytes; returns 0 on success. The store and the
 * broker take one of these so tests can make randomness repeatable. */
typedef int (*hp_rand_fn)(void *arg, void *buf, size_t len);

/* OpenSSL's RAND_bytes behind the hp_rand_fn shape; arg is unused. */
int hp_rand_openssl(void *arg, void *buf, size_t len);

/* RAND_bytes drawn 4 KiB at a time and handed out in pieces. OpenSSL 3's
 * RAND_bytes costs ~8,000 instructions a call (provider lookups, locks),
 * a tenth of an enqueue's; ids and claim tokens need 10-16 bytes each.
 * Bytes handed out are wiped from the pool. Thread-safe. */
typedef struct hp_rand_pool hp_rand_pool;
HP_MUST_USE hp_rand_pool *hp_rand_pool_new(void);
void hp_rand_pool_free(hp_rand_pool *p);
/* The hp_rand_fn of a pool: arg is the hp_rand_pool. */
int hp_rand_pool_draw(void *arg, void *buf, size_t len);

typedef struct hp_idgen {
    uint64_t last_ms; /* highest millisecond handed out */
    hp_id last;       /* last id handed out */
} hp_idgen;

void hp_idgen_init(hp_idgen *g);

/* Next id at now_ms. A clock that went backwards reuses last_ms, so ids never
 * decrease. Returns a non-zero value only if the random source failed. */
HP_MUST_USE int hp_idgen_next(hp_idgen *g, uint64_t now_ms, hp_rand_fn rand,
                              void *rand_arg, hp_id *out);

uint64_t hp_id_time_ms(const hp_id *id);
int hp_id_cmp(const hp_id *a, const hp_id *b);
bool hp_id_is_zero(const hp_id *id);

/* Writes HP_ID_TEXT_LEN characters and a NUL into out. */
void hp_id_format(const hp_id *id, char out[HP_ID_TEXT_LEN + 1]);

/* Parses a ULID (case-insensitive, Crockford's I/L/O aliases accepted).
 * INVALID_ARGUMENT/BAD_ID on any other text. */
HP_MUST_USE hp_code hp_id_parse(const char *text, size_t len, hp_id *out,
                                hp_status *st);

#endif
