/*
 * pbjson.h - protobuf-c messages to and from protobuf's proto3 JSON
 * mapping, for any message type: one decoder and one encoder that walk
 * protobuf-c's descriptors, so a field added to the proto is mapped with
 * no code here.
 *
 * The mapping (https://protobuf.dev/programming-guides/proto3/#json):
 *   - a message is an object; field names are lowerCamelCase on output,
 *     and either that or the proto name on input;
 *   - 64-bit integers are decimal strings on output, strings or numbers
 *     on input; 32-bit ones numbers on output, either on input; an
 *     exponent is taken if the value is a whole number in range;
 *   - bytes are standard base64 with padding on output; either alphabet,
 *     padded or not, on input;
 *   - enums are value names on output, names or numbers on input;
 *   - fields at their default (0, "", false, empty, unset) are left out;
 *     null on input means the default.
 *
 * The decoder is strict, and refuses with INVALID_ARGUMENT:
 *   - BAD_JSON: text that is not JSON (or not UTF-8), a value of the wrong
 *     type or out of range, a field given twice, text after the object;
 *   - UNKNOWN_FIELD: a name the message does not have. protobuf's own
 *     parsers reject these by default; a mistyped "waitMS" silently
 *     ignored would be worse than an error;
 *   - NUL_IN_STRING: a \u0000 in a string, which protobuf-c would cut
 *     there (the native protocol refuses the same).
 * It builds the message straight from the text, with no tree in between:
 * memory is the message's own, every byte through the caller's allocator
 * (a budget), and nesting is bounded by the message types (an object is
 * only taken where the type has a message field).
 *
 * Not supported (no message of hopper.v1 has one): maps, and the
 * well-known types' special forms (Timestamp, Duration, Any, wrappers).
 */
#ifndef HP_BROKER_PBJSON_H
#define HP_BROKER_PBJSON_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "common/buf.h"
#include "common/status.h"

/*
 * Decodes json[0..len), an object, into a new message of type d whose
 * every allocation goes through a; free it with
 * protobuf_c_message_free_unpacked(*out, a). Codes and reasons above;
 * RESOURCE_EXHAUSTED/NO_MEMORY when a refuses an allocation (a budget
 * that ran out: the caller knows which).
 */
HP_MUST_USE hp_code pbjson_decode(const ProtobufCMessageDescriptor *d,
                                  const void *json, size_t len,
                                  ProtobufCAllocator *a, ProtobufCMessage **out,
                                  hp_status *st);

/* Appends m as one JSON object to out. RESOURCE_EXHAUSTED/NO_MEMORY. */
HP_MUST_USE hp_code pbjson_encode(const ProtobufCMessage *m, hp_buf *out,
                                  hp_status *st);

/* Appends s[0..len) to out as a JSON string: quoted, escaped, and with
 * any byte that is not UTF-8 replaced by U+FFFD. -1 without memory. */
HP_MUST_USE int pbjson_put_string(hp_buf *out, const char *s, size_t len);

/* Appends raw bytes to out. -1 without memory. */
HP_MUST_USE int pbjson_put(hp_buf *out, const void *p, size_t len);

#endif
