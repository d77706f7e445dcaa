/*
 * arena.h - a chunked bump allocator for results whose many small parts are
 * freed together (a claim batch, a list page). Allocations never move, so
 * pointers into an arena stay valid until hp_arena_release.
 */
#ifndef HP_COMMON_ARENA_H
#define HP_COMMON_ARENA_H

#include <stddef.h>

typedef struct hp_arena_chunk hp_arena_chunk;

typedef struct hp_arena {
    hp_arena_chunk *head; /* newest chunk first */
    size_t used;          /* bytes handed out, for budgets */
} hp_arena;

void hp_arena_init(hp_arena *a);

/* Frees every chunk; the arena is empty and reusable afterwards. */
void hp_arena_release(hp_arena *a);

/* Returns len bytes aligned to max_align_t, or NULL when out of memory.
 * len 0 returns a valid unique pointer. */
void *hp_arena_alloc(hp_arena *a, size_t len);

/* Copies len bytes into the arena; NULL when out of memory. */
void *hp_arena_dup(hp_arena *a, const void *p, size_t len);

#endif
