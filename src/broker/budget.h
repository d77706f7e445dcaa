/*
 * budget.h - the memory one request's decoding may take. protobuf-c
 * decodes hostile input into up to ~70 times its size; every allocation of
 * one decoding goes through a decode_budget's allocator and is counted
 * against its limit. Both ways in decode under one: the native protocol
 * (dispatch.c) and the HTTP API's JSON (api.c).
 */
#ifndef HP_BROKER_BUDGET_H
#define HP_BROKER_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct decode_budget {
    ProtobufCAllocator alloc; /* allocator_data points back here */
    size_t used;
    size_t limit;
    bool exceeded; /* an allocation was refused for the limit */
} decode_budget;

/* The limit for requests of up to max_frame bytes: protobuf-c's ~70 times
 * the wire size cut to a few frames' worth. */
static inline size_t
decode_budget_limit(size_t max_frame)
{
    return 3 * max_frame + ((size_t)1 << 20);
}

/* Sets b up to count every allocation through b->alloc against limit. */
void decode_budget_init(decode_budget *b, size_t limit);

#endif
