/*
 * pbjson_int.h - what the two halves of the JSON mapping share (pbjson.c
 * encodes, pbjson_parse.c decodes). Other modules never include this
 * file.
 */
#ifndef HP_BROKER_PBJSON_INT_H
#define HP_BROKER_PBJSON_INT_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* A JSON name is the proto name without its underscores: never longer. */
#define PBJSON_NAME_MAX 128

/* protobuf's JSON name of a field: its proto name with each letter after
 * an underscore upper-cased and the underscores dropped. */
void pbjson_json_name(const char *name, char out[PBJSON_NAME_MAX + 1]);

/* The member of m at offset (a field's storage or its count). */
void *pbjson_member(const ProtobufCMessage *m, unsigned offset);

/* The size of one element of a repeated field of type t. */
size_t pbjson_elt_size(ProtobufCType t);

#endif
