/*
 * bytes.h - big-endian loads and stores for keys and records. Keys use
 * big-endian so LMDB's byte order is numeric order.
 */
#ifndef HP_COMMON_BYTES_H
#define HP_COMMON_BYTES_H

#include <stdint.h>

static inline void
hp_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
hp_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void
hp_put_u64(uint8_t *p, uint64_t v)
{
    hp_put_u32(p, (uint32_t)(v >> 32));
    hp_put_u32(p + 4, (uint32_t)v);
}

static inline uint16_t
hp_get_u16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t
hp_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static inline uint64_t
hp_get_u64(const uint8_t *p)
{
    return (uint64_t)hp_get_u32(p) << 32 | hp_get_u32(p + 4);
}

#endif
