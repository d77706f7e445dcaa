/*
 * reqid.c - request ids: 48 lowercase hex digits per call. The broker keeps
 * the outcome of a mutating call under its request id for 10 minutes and
 * answers a repeat (NNG resends a request by itself after a reconnect) with
 * it, so an id must never be reused for a different call, and should not be
 * guessable by anyone else sharing the credential.
 *
 * Each client draws a 192-bit key from the kernel once and numbers its
 * calls: an id is a prefix fixed for the client (a bijective mix of key0),
 * a number n from the client's counter (which its dials draw from too),
 * and SipHash-2-4 of n under (key1, key2). n makes two calls of one
 * client differ; the prefix keeps clients apart; the SipHash part cannot
 * be predicted without the key, so knowing one id does not give away the
 * next. Like any state, the key and counter are copied by fork(): a
 * client must not be used on both sides of one.
 *
 * Why in this order: the broker stores the outcomes in a B-tree ordered by
 * request id, in the same commit as the call's effect. Ids that sort in
 * call order put a client's consecutive outcomes in the same leaf page
 * until it fills, where wholly random ids put each in a leaf of its own;
 * a commit of several calls then copies one such page instead of one per
 * call, and the disk's flush behind each --sync full reply has that many
 * fewer to write. Beside Redis
 * (docs/benchmarks.md) W1 with 8 connections went from 7,460 to 8,642/s
 * and W2 from 46,692 to 62,489/s against the random ids of before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <sys/random.h>

#include "client_int.h"

static uint64_t
mix64(uint64_t z)
{
    /* splitmix64's finaliser: a bijection on 64-bit values. */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND()         \
    do {                   \
        v0 += v1;          \
        v1 = rotl(v1, 13); \
        v1 ^= v0;          \
        v0 = rotl(v0, 32); \
        v2 += v3;          \
        v3 = rotl(v3, 16); \
        v3 ^= v2;          \
        v0 += v3;          \
        v3 = rotl(v3, 21); \
        v3 ^= v0;          \
        v2 += v1;          \
        v1 = rotl(v1, 17); \
        v1 ^= v2;          \
        v2 = rotl(v2, 32); \
    } while (0)

/* SipHash-2-4 of one 8-byte little-endian word. */
static uint64_t
siphash_u64(uint64_t k0, uint64_t k1, uint64_t m)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575u;
    uint64_t v1 = k1 ^ 0x646f72616e646f6du;
    uint64_t v2 = k0 ^ 0x6c7967656e657261u;
    uint64_t v3 = k1 ^ 0x7465646279746573u;
    uint64_t last = (uint64_t)8 << 56; /* message length in the top byte */

    v3 ^= m;
    SIPROUND();
    SIPROUND();
    v0 ^= m;
    v3 ^= last;
    SIPROUND();
    SIPROUND();
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND();
    SIPROUND();
    SIPROUND();
    SIPROUND();
    return v0 ^ v1 ^ v2 ^ v3;
}

static int
read_urandom(void *buf, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    uint8_t *p = buf;

    if (fd < 0) {
        return -1;
    }
    while (len > 0) {
        ssize_t got = read(fd, p, len);

        if (got <= 0) {
            if (got < 0 && errno == EINTR) {
                continue;
            }
            close(fd);
            return -1;
        }
        p += got;
        len -= (size_t)got;
    }
    close(fd);
    return 0;
}

int
hc_reqid_seed(hopper_client *c, hopper_status *st)
{
    uint8_t *p = (uint8_t *)c->rid_key;
    size_t left = sizeof(c->rid_key);

    while (left > 0) {
        ssize_t got = getrandom(p, left, 0);

        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* Kernels before 3.17 or a seccomp filter: use the device. */
            if (read_urandom(p, left) != 0) {
                return hc_fail(st, HOPPER_INTERNAL, HOPPER_R_NO_RANDOMNESS,
                               "cannot read random bytes for request ids");
            }
            break;
        }
        p += got;
        left -= (size_t)got;
    }
    /* key0 serves only as the prefix: mixed once here, not per call. */
    c->rid_key[0] = mix64(c->rid_key[0]);
    atomic_init(&c->rid_next, 0);
    return HOPPER_OK;
}

void
hc_reqid_next(hopper_client *c, char out[HC_REQUEST_ID_LEN + 1])
{
    uint64_t n = atomic_fetch_add(&c->rid_next, 1);
    const uint64_t part[3] = { c->rid_key[0], n,
                               siphash_u64(c->rid_key[1], c->rid_key[2], n) };

    /* By hand: snprintf was a tenth of a call's instructions. Big-endian
     * digits, so that the text sorts as the numbers do. */
    static const char hex[] = "0123456789abcdef";
    for (int p = 0; p < 3; p++) {
        for (int i = 0; i < 16; i++) {
            out[16 * p + i] = hex[(part[p] >> (60 - 4 * i)) & 0xf];
        }
    }
    out[HC_REQUEST_ID_LEN] = '\0';
}
