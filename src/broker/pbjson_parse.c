/*
 * pbjson_parse.c - the proto3 JSON mapping's decoder (rules in pbjson.h):
 * a recursive descent over the text that writes each value straight into
 * the message. The message stays freeable by
 * protobuf_c_message_free_unpacked at every step (a repeated field's
 * count only covers elements already whole, a sub-message is linked in
 * as soon as it is initialised), so any error just frees what was built.
 * Integers are converted exactly, from their digits, never through a
 * double.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/pbjson.h"
#include "broker/pbjson_int.h"
#include "common/base64.h"
#include "common/hex.h"
#include "common/names.h"
#include "common/reasons.h"

/* Nesting of message types; hopper.v1 needs 3. */
#define MAX_DEPTH 32
/* Fields a message may have for the duplicate check. */
#define MAX_FIELDS 512
/* Digits of a whole number, once its exponent is applied: 2^64 has 20. */
#define MAX_DIGITS 20

typedef struct parser {
    const char *start, *p, *end;
    ProtobufCAllocator *a;
    hp_status *st;
    unsigned depth;
    /* For messages: the field being decoded, if any. */
    const ProtobufCMessageDescriptor *msg;
    const ProtobufCFieldDescriptor *field;
} parser;

static hp_code
bad_json(parser *ps, const char *what)
{
    if (ps->field != NULL) {
        return hp_status_set(ps->st, HP_INVALID_ARGUMENT, HP_R_BAD_JSON,
                             "field '%s' of %s: %s", ps->field->name,
                             ps->msg->name, what);
    }
    return hp_status_set(ps->st, HP_INVALID_ARGUMENT, HP_R_BAD_JSON,
                         "bad JSON at byte %zu: %s",
                         (size_t)(ps->p - ps->start), what);
}

static hp_code
no_memory(parser *ps)
{
    return hp_status_set(ps->st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                         "out of memory decoding a %s",
                         ps->msg != NULL ? ps->msg->name : "message");
}

static void *
alloc(parser *ps, size_t n)
{
    return ps->a->alloc(ps->a->allocator_data, n > 0 ? n : 1);
}

static void
dealloc(parser *ps, void *p)
{
    if (p != NULL) {
        ps->a->free(ps->a->allocator_data, p);
    }
}

static void
skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r')) {
        ps->p++;
    }
}

/* Skips white space and takes c if it comes next. */
static bool
eat(parser *ps, char c)
{
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return true;
    }
    return false;
}

/* Takes the literal word (true, false, null) if it comes next. */
static bool
eat_word(parser *ps, const char *w)
{
    size_t n = strlen(w);
    skip_ws(ps);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0) {
        return false;
    }
    const char *after = ps->p + n;
    if (after < ps->end && ((*after >= 'a' && *after <= 'z') ||
                            (*after >= '0' && *after <= '9'))) {
        return false;
    }
    ps->p = after;
    return true;
}

static bool
read_u16(const char *p, const char *end, uint32_t *out)
{
    uint32_t v = 0;
    if (end - p < 4) {
        return false;
    }
    for (int i = 0; i < 4; i++) {
        int d = hp_hex_digit(p[i]);
        if (d < 0) {
            return false;
        }
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return true;
}

static size_t
put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * A string at ps->p (its opening quote), decoded into a new NUL-terminated
 * buffer from the allocator (into buf, of cap bytes, when buf is given:
 * too long a string is then cut, and *cut set). The decoded text is never
 * longer than the quoted one, which sizes the buffer. A lone surrogate
 * decodes to bytes that are not UTF-8, and fails the check at the end.
 */
static hp_code
parse_string(parser *ps, char *buf, size_t cap, char **out, size_t *out_len,
             bool *cut)
{
    const char *q, *close, *p;

    if (!eat(ps, '"')) {
        return bad_json(ps, "want a string");
    }
    q = ps->p;
    for (close = q; close < ps->end && *close != '"'; close++) {
        if ((unsigned char)*close < 0x20) {
            return bad_json(ps, "a control character in a string");
        }
        if (*close == '\\') {
            close++;
        }
    }
    if (close >= ps->end) {
        return bad_json(ps, "a string without its closing quote");
    }
    size_t raw = (size_t)(close - q);
    char *o = buf;
    if (o == NULL && (o = alloc(ps, raw + 1)) == NULL) {
        return no_memory(ps);
    }
    size_t room = buf != NULL ? cap - 1 : raw, n = 0;
    bool nul = false, stopped = false;
    for (p = q; p < close && n < room;) {
        char tmp[4];
        size_t k;
        if (*p != '\\') {
            o[n++] = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
            tmp[0] = *p;
            k = 1;
            break;
        case 'b':
            tmp[0] = '\b';
            k = 1;
            break;
        case 'f':
            tmp[0] = '\f';
            k = 1;
            break;
        case 'n':
            tmp[0] = '\n';
            k = 1;
            break;
        case 'r':
            tmp[0] = '\r';
            k = 1;
            break;
        case 't':
            tmp[0] = '\t';
            k = 1;
            break;
        case 'u': {
            uint32_t cp, lo;
            if (!read_u16(p + 1, close, &cp)) {
                goto bad_escape;
            }
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && close - p >= 7 && p[1] == '\\' &&
                p[2] == 'u' && read_u16(p + 3, close, &lo) && lo >= 0xdc00 &&
                lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            nul = nul || cp == 0;
            k = put_utf8(tmp, cp);
            break;
        }
        default:
            goto bad_escape;
        }
        if (n + k > room) {
            stopped = true; /* the escape does not fit: the text is cut */
            break;
        }
        p++;
        memcpy(o + n, tmp, k);
        n += k;
    }
    o[n] = '\0';
    ps->p = close + 1;
    if (cut != NULL) {
        *cut = stopped || p < close;
    }
    if (nul) {
        if (buf == NULL) {
            dealloc(ps, o);
        }
        return hp_status_set(ps->st, HP_INVALID_ARGUMENT, HP_R_NUL_IN_STRING,
                             "a string in the %s holds a NUL (\\u0000); "
                             "refused, not shortened",
                             ps->msg != NULL ? ps->msg->name : "request");
    }
    if (!hp_utf8_valid(o, n)) {
        if (buf == NULL) {
            dealloc(ps, o);
        }
        return bad_json(ps, "a string that is not UTF-8");
    }
    *out = o;
    *out_len = n;
    return HP_OK;
bad_escape:
    if (buf == NULL) {
        dealloc(ps, o);
    }
    return bad_json(ps, "a bad escape in a string");
}

/* The span of a JSON number at ps->p (RFC 8259's grammar), or 0. */
static size_t
scan_number(const char *p, const char *end)
{
    const char *s = p;
    if (p < end && *p == '-') {
        p++;
    }
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return 0;
    }
    if (p < end && *p == '.') {
        if (++p >= end || *p < '0' || *p > '9') {
            return 0;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') {
            return 0;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    return (size_t)(p - s);
}

/* The digits of a number's text, its integer and fraction parts read as
 * one sequence. */
typedef struct digits {
    const char *ip, *fp; /* integer and fraction digits */
    size_t in, fn;
} digits;

static char
digit_at(const digits *d, size_t k)
{
    return k < d->in ? d->ip[k] : d->fp[k - d->in];
}

/*
 * The whole number that the number text s[0..len) (checked by
 * scan_number) stands for, as a sign and a magnitude: false if it is not
 * whole or is above 2^64 - 1. "1.5e1" is 15, "15.0" and "1500e-2" are 15,
 * "1.5" is not whole, "-0" is 0. Exact: digits, never a double.
 */
static bool
whole_number(const char *s, size_t len, bool *neg, uint64_t *mag)
{
    digits d = { 0 };
    size_t i = 0, first, last;
    long exp = 0, scale;

    *neg = s[0] == '-';
    i = *neg ? 1 : 0;
    d.ip = s + i;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
    }
    d.in = (size_t)(s + i - d.ip);
    if (i < len && s[i] == '.') {
        d.fp = s + ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        d.fn = (size_t)(s + i - d.fp);
    }
    if (i < len) { /* the exponent: saturated, a sign then digits */
        bool eneg = s[++i] == '-';
        i += s[i] == '-' || s[i] == '+';
        for (; i < len; i++) {
            exp = exp < 100000 ? exp * 10 + (s[i] - '0') : exp;
        }
        exp = eneg ? -exp : exp;
    }
    *mag = 0;
    size_t n = d.in + d.fn;
    for (first = 0; first < n && digit_at(&d, first) == '0'; first++) {
    }
    if (first == n) {
        return true; /* zero, whatever its exponent */
    }
    for (last = n; digit_at(&d, last - 1) == '0'; last--) {
    }
    /* The value is digits [first, last) times 10^scale. */
    scale = exp - (long)d.fn + (long)(n - last);
    if (scale < 0 || (long)(last - first) + scale > MAX_DIGITS) {
        return false; /* a fraction, or more digits than 2^64 has */
    }
    for (long k = 0; k < (long)(last - first) + scale; k++) {
        size_t at = first + (size_t)k;
        unsigned v = at < last ? (unsigned)(digit_at(&d, at) - '0') : 0;
        if (*mag > (UINT64_MAX - v) / 10) {
            return false;
        }
        *mag = *mag * 10 + v;
    }
    return true;
}

/* A number, or a string holding one (the mapping takes both for every
 * numeric type): its text in *text, *len. */
static hp_code
number_text(parser *ps, char *buf, size_t cap, const char **text, size_t *len,
            bool *quoted)
{
    skip_ws(ps);
    *quoted = ps->p < ps->end && *ps->p == '"';
    if (*quoted) {
        char *s;
        bool cut;
        hp_code code = parse_string(ps, buf, cap, &s, len, &cut);
        if (code != HP_OK) {
            return code;
        }
        *text = s;
        return cut ? bad_json(ps, "want a number") : HP_OK;
    }
    *len = scan_number(ps->p, ps->end);
    if (*len == 0) {
        return bad_json(ps, "want a number");
    }
    *text = ps->p;
    ps->p += *len;
    return HP_OK;
}

static hp_code
parse_int(parser *ps, const ProtobufCFieldDescriptor *f, void *slot)
{
    char buf[64];
    const char *text;
    size_t len;
    bool quoted, neg;
    uint64_t mag;
    hp_code code = number_text(ps, buf, sizeof(buf), &text, &len, &quoted);

    if (code != HP_OK) {
        return code;
    }
    if ((quoted && scan_number(text, text + len) != len) ||
        !whole_number(text, len, &neg, &mag)) {
        return bad_json(ps, "want a whole number");
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (mag > (neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX)) {
            return bad_json(ps, "out of the range of int32");
        }
        *(int32_t *)slot = neg ? (int32_t)(-(int64_t)mag) : (int32_t)mag;
        return HP_OK;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((neg && mag != 0) || mag > UINT32_MAX) {
            return bad_json(ps, "out of the range of uint32");
        }
        *(uint32_t *)slot = (uint32_t)mag;
        return HP_OK;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) {
            return bad_json(ps, "out of the range of int64");
        }
        *(int64_t *)slot = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        return HP_OK;
    default: /* uint64, fixed64 */
        if (neg && mag != 0) {
            return bad_json(ps, "out of the range of uint64");
        }
        *(uint64_t *)slot = mag;
        return HP_OK;
    }
}

static hp_code
parse_float(parser *ps, const ProtobufCFieldDescriptor *f, void *slot)
{
    char buf[64], num[64];
    const char *text;
    size_t len;
    bool quoted;
    double v;
    hp_code code = number_text(ps, buf, sizeof(buf), &text, &len, &quoted);

    if (code != HP_OK) {
        return code;
    }
    if (quoted && len == 3 && memcmp(text, "NaN", 3) == 0) {
        v = NAN;
    } else if (quoted && len == 8 && memcmp(text, "Infinity", 8) == 0) {
        v = INFINITY;
    } else if (quoted && len == 9 && memcmp(text, "-Infinity", 9) == 0) {
        v = -INFINITY;
    } else if ((quoted && scan_number(text, text + len) != len) ||
               len >= sizeof(num)) {
        return bad_json(ps, "want a number");
    } else {
        memcpy(num, text, len);
        num[len] = '\0';
        v = strtod(num, NULL);
        if (isinf(v) || (f->type == PROTOBUF_C_TYPE_FLOAT &&
                         fabs(v) > 3.4028234663852886e38)) {
            return bad_json(ps, "out of range");
        }
    }
    if (f->type == PROTOBUF_C_TYPE_FLOAT) {
        *(float *)slot = (float)v;
    } else {
        *(double *)slot = v;
    }
    return HP_OK;
}

static hp_code
parse_enum(parser *ps, const ProtobufCFieldDescriptor *f, void *slot)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '"') {
        char name[PBJSON_NAME_MAX + 1], *s;
        size_t len;
        bool cut;
        hp_code code = parse_string(ps, name, sizeof(name), &s, &len, &cut);
        if (code != HP_OK) {
            return code;
        }
        const ProtobufCEnumValue *ev =
            cut ? NULL : protobuf_c_enum_descriptor_get_value_by_name(ed, s);
        if (ev == NULL) {
            char why[PBJSON_NAME_MAX + 64];
            snprintf(why, sizeof(why), "'%s' is no value of %s", s, ed->name);
            return bad_json(ps, why);
        }
        *(int *)slot = ev->value;
        return HP_OK;
    }
    /* A number: proto3 enums are open, so any int32 is kept as it is. */
    ProtobufCFieldDescriptor as_int = *f;
    as_int.type = PROTOBUF_C_TYPE_INT32;
    int32_t v;
    hp_code code = parse_int(ps, &as_int, &v);
    if (code == HP_OK) {
        *(int *)slot = v;
    }
    return code;
}

static hp_code
parse_bytes(parser *ps, ProtobufCBinaryData *slot)
{
    char *text;
    size_t len;
    hp_code code = parse_string(ps, NULL, 0, &text, &len, NULL);

    if (code != HP_OK) {
        return code;
    }
    if (len == 0) {
        dealloc(ps, text);
        return HP_OK;
    }
    /* Decoded in place: the bytes are shorter than their text. */
    long n = hp_b64_decode(text, len, (uint8_t *)text, len, HP_B64_LOOSE);
    if (n < 0) {
        dealloc(ps, text);
        return bad_json(ps, "want base64");
    }
    slot->data = (uint8_t *)text;
    slot->len = (size_t)n;
    return HP_OK;
}

static hp_code parse_object(parser *ps, ProtobufCMessage *m);

/* A new message of type d, initialised, into *slot (where a free finds
 * it), then filled from the object at ps->p. */
static hp_code
parse_submessage(parser *ps, const ProtobufCMessageDescriptor *d,
                 ProtobufCMessage **slot)
{
    ProtobufCMessage *sub = alloc(ps, d->sizeof_message);
    if (sub == NULL) {
        return no_memory(ps);
    }
    d->message_init(sub);
    *slot = sub;
    return parse_object(ps, sub);
}

/* One value of field f into slot. */
static hp_code
parse_value(parser *ps, const ProtobufCFieldDescriptor *f, void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        if (eat_word(ps, "true")) {
            *(protobuf_c_boolean *)slot = 1;
            return HP_OK;
        }
        if (eat_word(ps, "false")) {
            *(protobuf_c_boolean *)slot = 0;
            return HP_OK;
        }
        return bad_json(ps, "want true or false");
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return parse_float(ps, f, slot);
    case PROTOBUF_C_TYPE_ENUM:
        return parse_enum(ps, f, slot);
    case PROTOBUF_C_TYPE_STRING: {
        char *s;
        size_t len;
        hp_code code = parse_string(ps, NULL, 0, &s, &len, NULL);
        if (code == HP_OK) {
            *(char **)slot = s;
        }
        return code;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return parse_bytes(ps, slot);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCFieldDescriptor *outer = ps->field;
        const ProtobufCMessageDescriptor *outer_msg = ps->msg;
        hp_code code = parse_submessage(ps, f->descriptor, slot);
        ps->field = outer;
        ps->msg = outer_msg;
        return code;
    }
    default:
        return parse_int(ps, f, slot);
    }
}

/* The elements of repeated field f of m, from the array at ps->p. The
 * count grows only once an element is whole (a message's once it is
 * allocated and initialised), so a failure leaves m freeable. */
static hp_code
parse_repeated(parser *ps, ProtobufCMessage *m,
               const ProtobufCFieldDescriptor *f)
{
    size_t *n = pbjson_member(m, f->quantifier_offset);
    char **arr = pbjson_member(m, f->offset);
    size_t size = pbjson_elt_size(f->type), cap = 0;

    if (!eat(ps, '[')) {
        return bad_json(ps, "want an array");
    }
    if (eat(ps, ']')) {
        return HP_OK;
    }
    do {
        if (*n == cap) {
            size_t grown = cap ? cap * 2 : 4;
            char *a = alloc(ps, grown * size);
            if (a == NULL) {
                return no_memory(ps);
            }
            if (*n > 0) {
                memcpy(a, *arr, *n * size);
            }
            dealloc(ps, *arr);
            *arr = a;
            cap = grown;
        }
        char *slot = *arr + *n * size;
        memset(slot, 0, size);
        skip_ws(ps);
        if (eat_word(ps, "null")) {
            return bad_json(ps, "null in an array");
        }
        hp_code code;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessageDescriptor *sd = f->descriptor;
            ProtobufCMessage *sub = alloc(ps, sd->sizeof_message);
            if (sub == NULL) {
                return no_memory(ps);
            }
            sd->message_init(sub);
            *(ProtobufCMessage **)slot = sub;
            (*n)++;
            const ProtobufCFieldDescriptor *outer = ps->field;
            const ProtobufCMessageDescriptor *outer_msg = ps->msg;
            code = parse_object(ps, sub);
            ps->field = outer;
            ps->msg = outer_msg;
        } else if ((code = parse_value(ps, f, slot)) == HP_OK) {
            (*n)++;
        }
        if (code != HP_OK) {
            return code;
        }
    } while (eat(ps, ','));
    if (!eat(ps, ']')) {
        return bad_json(ps, "want ',' or ']' in an array");
    }
    return HP_OK;
}

static const ProtobufCFieldDescriptor *
find_field(const ProtobufCMessageDescriptor *d, const char *key)
{
    char name[PBJSON_NAME_MAX + 1];
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        pbjson_json_name(f->name, name);
        if (strcmp(key, name) == 0 || strcmp(key, f->name) == 0) {
            return f;
        }
    }
    return NULL;
}

/* One "key": value member of an object of m's type. */
static hp_code
parse_member(parser *ps, ProtobufCMessage *m, uint64_t *seen)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    char key[PBJSON_NAME_MAX + 1], *k;
    size_t len;
    bool cut;
    hp_code code = parse_string(ps, key, sizeof(key), &k, &len, &cut);

    if (code != HP_OK) {
        return code;
    }
    const ProtobufCFieldDescriptor *f = cut ? NULL : find_field(d, k);
    if (f == NULL) {
        return hp_status_set(ps->st, HP_INVALID_ARGUMENT, HP_R_UNKNOWN_FIELD,
                             "unknown field '%s%s' in %s", k, cut ? "..." : "",
                             d->name);
    }
    if (!eat(ps, ':')) {
        return bad_json(ps, "want ':' after a name");
    }
    size_t fi = (size_t)(f - d->fields);
    ps->msg = d;
    ps->field = f;
    if (seen[fi / 64] & (UINT64_C(1) << (fi % 64))) {
        return bad_json(ps, "given twice");
    }
    seen[fi / 64] |= UINT64_C(1) << (fi % 64);
    if (eat_word(ps, "null")) {
        return HP_OK; /* the default: leave it */
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        return parse_repeated(ps, m, f);
    }
    void *slot = pbjson_member(m, f->offset);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = pbjson_member(m, f->quantifier_offset);
        if (*which != 0) {
            return bad_json(ps, "a second field of the same oneof");
        }
        if ((code = parse_value(ps, f, slot)) == HP_OK ||
            f->type == PROTOBUF_C_TYPE_MESSAGE) {
            *which = f->id; /* a half-built message is freed with it */
        }
        return code;
    }
    if ((code = parse_value(ps, f, slot)) != HP_OK) {
        return code;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
        f->type != PROTOBUF_C_TYPE_STRING &&
        f->type != PROTOBUF_C_TYPE_MESSAGE) {
        *(protobuf_c_boolean *)pbjson_member(m, f->quantifier_offset) = 1;
    }
    return HP_OK;
}

static hp_code
parse_object(parser *ps, ProtobufCMessage *m)
{
    uint64_t seen[MAX_FIELDS / 64] = { 0 };
    hp_code code;

    HP_ASSERT(m->descriptor->n_fields <= MAX_FIELDS);
    if (++ps->depth > MAX_DEPTH) {
        return bad_json(ps, "objects nested too deep");
    }
    ps->msg = m->descriptor;
    ps->field = NULL;
    if (!eat(ps, '{')) {
        return bad_json(ps, "want an object");
    }
    if (eat(ps, '}')) {
        ps->depth--;
        return HP_OK;
    }
    do {
        ps->msg = m->descriptor;
        ps->field = NULL;
        skip_ws(ps);
        if ((code = parse_member(ps, m, seen)) != HP_OK) {
            return code;
        }
    } while (eat(ps, ','));
    ps->msg = m->descriptor;
    ps->field = NULL;
    if (!eat(ps, '}')) {
        return bad_json(ps, "want ',' or '}' in an object");
    }
    ps->depth--;
    return HP_OK;
}

static void *
system_alloc(void *data, size_t n)
{
    (void)data;
    return malloc(n);
}

static void
system_free(void *data, void *p)
{
    (void)data;
    free(p);
}

hp_code
pbjson_decode(const ProtobufCMessageDescriptor *d, const void *json, size_t len,
              ProtobufCAllocator *a, ProtobufCMessage **out, hp_status *st)
{
    /* protobuf-c's own default, which free_unpacked(m, NULL) matches. */
    static ProtobufCAllocator sys = { system_alloc, system_free, NULL };
    parser ps = { .start = json,
                  .p = json,
                  .end = (const char *)json + len,
                  .a = a != NULL ? a : &sys,
                  .st = st };
    ProtobufCMessage *m = alloc(&ps, d->sizeof_message);
    hp_code code;

    if (m == NULL) {
        return no_memory(&ps);
    }
    d->message_init(m);
    if ((code = parse_object(&ps, m)) == HP_OK) {
        skip_ws(&ps);
        ps.field = NULL;
        if (ps.p != ps.end) {
            code = bad_json(&ps, "text after the object");
        }
    }
    if (code != HP_OK) {
        protobuf_c_message_free_unpacked(m, ps.a);
        return code;
    }
    *out = m;
    return HP_OK;
}
