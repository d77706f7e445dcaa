/*
 * pbjson.c - the proto3 JSON mapping over protobuf-c descriptors (see
 * pbjson.h for the rules): the encoder, and the helpers both halves
 * share. The decoder is pbjson_parse.c.
 */
#include "broker/pbjson.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/pbjson_int.h"
#include "common/base64.h"
#include "common/names.h"
#include "common/reasons.h"

/* ---- output --------------------------------------------------------------
 */

int
pbjson_put(hp_buf *out, const void *p, size_t len)
{
    if (len > SIZE_MAX - out->len || hp_buf_reserve(out, out->len + len) != 0) {
        return -1;
    }
    if (len > 0) {
        memcpy(out->p + out->len, p, len);
        out->len += len;
    }
    return 0;
}

static int
put_c(hp_buf *out, const char *s)
{
    return pbjson_put(out, s, strlen(s));
}

/* Escapes s[0..len), all of it UTF-8. */
static int
put_escaped(hp_buf *out, const char *s, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        switch (c) {
        case '"':
            strcpy(esc, "\\\"");
            break;
        case '\\':
            strcpy(esc, "\\\\");
            break;
        case '\n':
            strcpy(esc, "\\n");
            break;
        case '\r':
            strcpy(esc, "\\r");
            break;
        case '\t':
            strcpy(esc, "\\t");
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            break;
        }
        if (pbjson_put(out, s + from, i - from) != 0 || put_c(out, esc) != 0) {
            return -1;
        }
        from = i + 1;
    }
    return pbjson_put(out, s + from, len - from);
}

int
pbjson_put_string(hp_buf *out, const char *s, size_t len)
{
    if (pbjson_put(out, "\"", 1) != 0) {
        return -1;
    }
    while (len > 0) {
        size_t ok = hp_utf8_prefix(s, len);
        if (put_escaped(out, s, ok) != 0) {
            return -1;
        }
        if (ok == len) {
            break;
        }
        /* A byte hp_utf8_prefix stopped at: NUL is a character to escape,
         * anything else is not UTF-8. */
        const char *sub = s[ok] == '\0' ? "\\u0000" : "\\ufffd";
        if (put_c(out, sub) != 0) {
            return -1;
        }
        s += ok + 1;
        len -= ok + 1;
    }
    return pbjson_put(out, "\"", 1);
}

/* protobuf's JSON name: the proto name with each letter after an
 * underscore upper-cased and the underscores dropped. */
void
pbjson_json_name(const char *name, char out[PBJSON_NAME_MAX + 1])
{
    size_t o = 0;
    bool upper = false;
    for (const char *p = name; *p != '\0' && o < PBJSON_NAME_MAX; p++) {
        if (*p == '_') {
            upper = true;
            continue;
        }
        out[o++] =
            upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        upper = false;
    }
    out[o] = '\0';
}

/* ---- encoding ------------------------------------------------------------
 */

void *
pbjson_member(const ProtobufCMessage *m, unsigned offset)
{
    return (char *)(uintptr_t)m + offset;
}

static int encode_message(hp_buf *out, const ProtobufCMessage *m);

static int
encode_bytes(hp_buf *out, const ProtobufCBinaryData *b)
{
    size_t need = HP_B64_LEN(b->len) + 1;
    if (pbjson_put(out, "\"", 1) != 0 ||
        hp_buf_reserve(out, out->len + need + 1) != 0) {
        return -1;
    }
    out->len +=
        hp_b64_encode(b->data, b->len, (char *)out->p + out->len, HP_B64_PAD);
    return pbjson_put(out, "\"", 1);
}

static int
encode_double(hp_buf *out, double v, bool single)
{
    char num[40];
    if (isnan(v)) {
        return put_c(out, "\"NaN\"");
    }
    if (isinf(v)) {
        return put_c(out, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    }
    /* The shortest form that reads back as the same value. */
    snprintf(num, sizeof(num), "%.*g", single ? 9 : 17, v);
    return put_c(out, num);
}

/* One value of field f at p (a singular field's storage, or an element of
 * a repeated one). */
static int
encode_value(hp_buf *out, const ProtobufCFieldDescriptor *f, const void *p)
{
    char num[32];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(num, sizeof(num), "%d", *(const int32_t *)p);
        return put_c(out, num);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(num, sizeof(num), "%u", *(const uint32_t *)p);
        return put_c(out, num);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(num, sizeof(num), "\"%lld\"", (long long)*(const int64_t *)p);
        return put_c(out, num);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(num, sizeof(num), "\"%llu\"",
                 (unsigned long long)*(const uint64_t *)p);
        return put_c(out, num);
    case PROTOBUF_C_TYPE_FLOAT:
        return encode_double(out, *(const float *)p, true);
    case PROTOBUF_C_TYPE_DOUBLE:
        return encode_double(out, *(const double *)p, false);
    case PROTOBUF_C_TYPE_BOOL:
        return put_c(out, *(const protobuf_c_boolean *)p ? "true" : "false");
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev != NULL) {
            return pbjson_put_string(out, ev->name, strlen(ev->name));
        }
        snprintf(num, sizeof(num), "%d", v); /* a value this build lacks */
        return put_c(out, num);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return pbjson_put_string(out, s != NULL ? s : "",
                                 s != NULL ? strlen(s) : 0);
    }
    case PROTOBUF_C_TYPE_BYTES:
        return encode_bytes(out, p);
    case PROTOBUF_C_TYPE_MESSAGE:
        return encode_message(out, *(ProtobufCMessage *const *)p);
    }
    return -1;
}

size_t
pbjson_elt_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return sizeof(uint32_t);
    }
}

/* Whether a field without presence holds its default, and is left out. */
static bool
is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0 && !signbit(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0 && !signbit(*(const double *)p);
    default: {
        static const uint8_t zero[sizeof(uint64_t)];
        return memcmp(p, zero, pbjson_elt_size(f->type)) == 0;
    }
    }
}

/* Whether singular field f of m is written: set in its oneof, present
 * when it tracks presence, else not at its default. */
static bool
is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const void *p = pbjson_member(m, f->offset);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        return *(const uint32_t *)pbjson_member(m, f->quantifier_offset) ==
               f->id;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL ||
        f->label == PROTOBUF_C_LABEL_REQUIRED) {
        if (f->type == PROTOBUF_C_TYPE_STRING ||
            f->type == PROTOBUF_C_TYPE_MESSAGE) {
            return *(void *const *)p != NULL;
        }
        return f->label == PROTOBUF_C_LABEL_REQUIRED ||
               *(const protobuf_c_boolean *)pbjson_member(m,
                                                          f->quantifier_offset);
    }
    return !is_default(f, p);
}

static int
encode_message(hp_buf *out, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    char name[PBJSON_NAME_MAX + 1];
    bool first = true;

    if (pbjson_put(out, "{", 1) != 0) {
        return -1;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t n = 1;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)pbjson_member(m, f->quantifier_offset);
            if (n == 0) {
                continue;
            }
        } else if (!is_present(m, f)) {
            continue;
        }
        pbjson_json_name(f->name, name);
        if ((!first && pbjson_put(out, ",", 1) != 0) ||
            pbjson_put_string(out, name, strlen(name)) != 0 ||
            pbjson_put(out, ":", 1) != 0) {
            return -1;
        }
        first = false;
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            if (encode_value(out, f, pbjson_member(m, f->offset)) != 0) {
                return -1;
            }
            continue;
        }
        const char *arr = *(char *const *)pbjson_member(m, f->offset);
        size_t size = pbjson_elt_size(f->type);
        if (pbjson_put(out, "[", 1) != 0) {
            return -1;
        }
        for (size_t k = 0; k < n; k++) {
            if ((k > 0 && pbjson_put(out, ",", 1) != 0) ||
                encode_value(out, f, arr + k * size) != 0) {
                return -1;
            }
        }
        if (pbjson_put(out, "]", 1) != 0) {
            return -1;
        }
    }
    return pbjson_put(out, "}", 1);
}

hp_code
pbjson_encode(const ProtobufCMessage *m, hp_buf *out, hp_status *st)
{
    if (encode_message(out, m) != 0) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory for a JSON reply");
    }
    return HP_OK;
}
