/*
 * arena.c - chunks of at least 16 KiB; a request larger than a chunk gets a
 * chunk of its own so big payloads do not waste the rest of a chunk.
 */
#include "common/arena.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN (16u * 1024u)

struct hp_arena_chunk {
    hp_arena_chunk *next;
    size_t cap;
    size_t off;
    alignas(max_align_t) unsigned char data[];
};

void
hp_arena_init(hp_arena *a)
{
    a->head = NULL;
    a->used = 0;
}

void
hp_arena_release(hp_arena *a)
{
    hp_arena_chunk *c = a->head;
    while (c != NULL) {
        hp_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

void *
hp_arena_alloc(hp_arena *a, size_t len)
{
    const size_t align = alignof(max_align_t);
    size_t need = (len + align - 1) & ~(align - 1);
    if (need < len) {
        return NULL;
    }
    if (need == 0) {
        need = align;
    }
    hp_arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->off < need) {
        size_t cap = need > CHUNK_MIN ? need : CHUNK_MIN;
        if (cap > SIZE_MAX - sizeof(hp_arena_chunk)) {
            return NULL;
        }
        hp_arena_chunk *n = malloc(sizeof(hp_arena_chunk) + cap);
        if (n == NULL) {
            return NULL;
        }
        n->cap = cap;
        n->off = 0;
        if (c != NULL && need > CHUNK_MIN) {
            /* A big one-off: keep the current chunk in front for small
             * allocations that follow. */
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            a->head = n;
        }
        c = n;
    }
    void *p = c->data + c->off;
    c->off += need;
    a->used += need;
    return p;
}

void *
hp_arena_dup(hp_arena *a, const void *p, size_t len)
{
    void *d = hp_arena_alloc(a, len);
    if (d != NULL && len > 0) {
        memcpy(d, p, len);
    }
    return d;
}
