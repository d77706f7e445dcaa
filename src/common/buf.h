/*
 * buf.h - a growable byte buffer owned by its user, reused across calls so
 * the hot paths allocate only when a record is bigger than any before it.
 */
#ifndef HP_COMMON_BUF_H
#define HP_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

typedef struct hp_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
} hp_buf;

void hp_buf_init(hp_buf *b);
void hp_buf_release(hp_buf *b);

/* Makes room for at least cap bytes; keeps the contents. 0 on success. */
HP_MUST_USE int hp_buf_reserve(hp_buf *b, size_t cap);

#endif
