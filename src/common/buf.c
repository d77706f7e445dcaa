/*
 * buf.c - growth doubles, so n appends cost O(n).
 */
#include "common/buf.h"

#include <stdlib.h>

void
hp_buf_init(hp_buf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void
hp_buf_release(hp_buf *b)
{
    free(b->p);
    hp_buf_init(b);
}

int
hp_buf_reserve(hp_buf *b, size_t cap)
{
    if (cap <= b->cap) {
        return 0;
    }
    size_t n = b->cap > 0 ? b->cap : 256;
    while (n < cap) {
        if (n > SIZE_MAX / 2) {
            n = cap;
            break;
        }
        n *= 2;
    }
    uint8_t *p = realloc(b->p, n);
    if (p == NULL) {
        return -1;
    }
    b->p = p;
    b->cap = n;
    return 0;
}
