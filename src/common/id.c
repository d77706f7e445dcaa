/*
 * id.c - ULID generation, formatting and parsing.
 */
#include "common/id.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

int
hp_rand_openssl(void *arg, void *buf, size_t len)
{
    (void)arg;
    if (len > (size_t)INT32_MAX) {
        return -1;
    }
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

#define POOL_BYTES 4096

struct hp_rand_pool {
    pthread_mutex_t mtx;
    size_t pos; /* bytes of buf already handed out */
    uint8_t buf[POOL_BYTES];
};

hp_rand_pool *
hp_rand_pool_new(void)
{
    hp_rand_pool *p = calloc(1, sizeof(*p));
    if (p != NULL) {
        pthread_mutex_init(&p->mtx, NULL);
        p->pos = POOL_BYTES; /* empty: drawn at first use */
    }
    return p;
}

void
hp_rand_pool_free(hp_rand_pool *p)
{
    if (p != NULL) {
        OPENSSL_cleanse(p->buf, sizeof(p->buf));
        pthread_mutex_destroy(&p->mtx);
        free(p);
    }
}

int
hp_rand_pool_draw(void *arg, void *buf, size_t len)
{
    hp_rand_pool *p = arg;
    if (len > POOL_BYTES / 4) {
        return hp_rand_openssl(NULL, buf, len);
    }
    pthread_mutex_lock(&p->mtx);
    if (POOL_BYTES - p->pos < len) {
        if (RAND_bytes(p->buf, POOL_BYTES) != 1) {
            pthread_mutex_unlock(&p->mtx);
            return -1;
        }
        p->pos = 0;
    }
    memcpy(buf, p->buf + p->pos, len);
    OPENSSL_cleanse(p->buf + p->pos, len);
    p->pos += len;
    pthread_mutex_unlock(&p->mtx);
    return 0;
}

void
hp_idgen_init(hp_idgen *g)
{
    memset(g, 0, sizeof(*g));
}

static void
put_ms(hp_id *id, uint64_t ms)
{
    for (int i = 5; i >= 0; i--) {
        id->b[i] = (uint8_t)(ms & 0xff);
        ms >>= 8;
    }
}

/* Adds one to the 80 random bits; returns false if they wrapped. */
static bool
increment_random(hp_id *id)
{
    for (int i = HP_ID_LEN - 1; i >= 6; i--) {
        if (++id->b[i] != 0) {
            return true;
        }
    }
    return false;
}

int
hp_idgen_next(hp_idgen *g, uint64_t now_ms, hp_rand_fn rand, void *rand_arg,
              hp_id *out)
{
    uint64_t ms = now_ms & 0xffffffffffffULL;

    if (ms <= g->last_ms && g->last_ms != 0) {
        hp_id next = g->last;
        if (increment_random(&next)) {
            *out = g->last = next;
            return 0;
        }
        /* 2^80 ids in one millisecond: move to the next one. */
        ms = g->last_ms + 1;
    }
    put_ms(out, ms);
    if (rand(rand_arg, out->b + 6, HP_ID_LEN - 6) != 0) {
        return -1;
    }
    /* Keep headroom so increments within this millisecond cannot wrap. */
    out->b[6] &= 0x7f;
    g->last_ms = ms;
    g->last = *out;
    return 0;
}

uint64_t
hp_id_time_ms(const hp_id *id)
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++) {
        ms = (ms << 8) | id->b[i];
    }
    return ms;
}

int
hp_id_cmp(const hp_id *a, const hp_id *b)
{
    return memcmp(a->b, b->b, HP_ID_LEN);
}

bool
hp_id_is_zero(const hp_id *id)
{
    static const hp_id zero;
    return memcmp(id->b, zero.b, HP_ID_LEN) == 0;
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* The id as a 128-bit number, big-endian: hi holds bytes 0-7. */
static void
id_words(const hp_id *id, uint64_t *hi, uint64_t *lo)
{
    *hi = *lo = 0;
    for (int i = 0; i < 8; i++) {
        *hi = *hi << 8 | id->b[i];
        *lo = *lo << 8 | id->b[8 + i];
    }
}

void
hp_id_format(const hp_id *id, char out[HP_ID_TEXT_LEN + 1])
{
    /* 26 characters * 5 bits = 130 bits: the first character carries only
     * the top 3 bits of the 128. Character i is the 5 bits above bit
     * 125 - 5i of the number (whole words, not a loop per bit: ids are
     * formatted for every message of every reply). */
    uint64_t hi, lo;
    id_words(id, &hi, &lo);
    for (int i = 0; i < HP_ID_TEXT_LEN; i++) {
        int shift = 125 - 5 * i;
        uint64_t v;
        if (shift >= 64) {
            v = hi >> (shift - 64);
        } else if (shift > 59) {
            v = hi << (64 - shift) | lo >> shift; /* straddles the words */
        } else {
            v = lo >> shift;
        }
        out[i] = crockford[v & 31u];
    }
    out[HP_ID_TEXT_LEN] = '\0';
}

/* A Crockford base32 digit's value, case-insensitive, with the aliases I
 * and L for 1 and O for 0; -1 for anything else. */
static int
decode_char(char c)
{
    static const int8_t letters[26] = {
        10, 11, 12, 13, 14, 15, 16, 17, 1,  18, 19, 1,  20,
        21, 0,  22, 23, 24, 25, 26, -1, 27, 28, 29, 30, 31,
    };
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'z') {
        return letters[c - 'a'];
    }
    if (c >= 'A' && c <= 'Z') {
        return letters[c - 'A'];
    }
    return -1;
}

hp_code
hp_id_parse(const char *text, size_t len, hp_id *out, hp_status *st)
{
    hp_id id;

    if (len != HP_ID_TEXT_LEN) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_ID,
                             "message id must be %d ULID characters",
                             HP_ID_TEXT_LEN);
    }
    uint64_t hi = 0, lo = 0;
    for (size_t i = 0; i < len; i++) {
        int v = decode_char(text[i]);
        /* The first character holds 3 bits, so it may not exceed '7';
         * then the 130 bits shifted in lose only zeros off the top. */
        if (v < 0 || (i == 0 && v > 7)) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_ID,
                                 "message id is not a valid ULID");
        }
        hi = hi << 5 | lo >> 59;
        lo = lo << 5 | (uint64_t)v;
    }
    for (int i = 0; i < 8; i++) {
        id.b[i] = (uint8_t)(hi >> (56 - 8 * i));
        id.b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    }
    *out = id;
    return HP_OK;
}
