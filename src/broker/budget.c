/*
 * budget.c - the counting allocator of a request's decoding (budget.h).
 */
#include "broker/budget.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Each block carries its size in front, so free can give it back to the
 * budget. */
typedef union budget_hdr {
    size_t size;
    max_align_t align;
} budget_hdr;

static void *
budget_alloc(void *data, size_t size)
{
    decode_budget *b = data;
    if (size > b->limit - b->used || size > SIZE_MAX - sizeof(budget_hdr)) {
        b->exceeded = true;
        return NULL;
    }
    budget_hdr *h = malloc(sizeof(budget_hdr) + size);
    if (h == NULL) {
        return NULL;
    }
    h->size = size;
    b->used += size;
    return h + 1;
}

static void
budget_free(void *data, void *p)
{
    decode_budget *b = data;
    if (p != NULL) {
        budget_hdr *h = (budget_hdr *)p - 1;
        b->used -= h->size;
        free(h);
    }
}

void
decode_budget_init(decode_budget *b, size_t limit)
{
    b->alloc.alloc = budget_alloc;
    b->alloc.free = budget_free;
    b->alloc.allocator_data = b;
    b->used = 0;
    b->limit = limit;
    b->exceeded = false;
}
