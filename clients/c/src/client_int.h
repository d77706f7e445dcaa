/*
 * client_int.h - what libhopper's own files share: the client body, status
 * helpers, the request/reply round trip and the conversions between the
 * public plain structs and protobuf-c's generated ones. Nothing here is
 * exported (the library is built with -fvisibility=hidden and only
 * HOPPER_API symbols leave it).
 */
#ifndef HOPPER_CLIENT_INT_H
#define HOPPER_CLIENT_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>

#include "hopper/hopper.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"

#define HC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HC_MUST_USE     __attribute__((warn_unused_result))

/* Reason words the library produces itself; the broker's are in
 * src/common/reasons.h and arrive over the wire. */
#define HC_R_TIMEOUT      "TIMEOUT"
#define HC_R_UNREACHABLE  "UNREACHABLE"
#define HC_R_BAD_RESPONSE "BAD_RESPONSE"
#define HC_R_NO_MEMORY    "NO_MEMORY"
#define HC_R_BAD_ARGUMENT "BAD_ARGUMENT"
#define HC_R_BAD_URL      "BAD_URL"
#define HC_R_BAD_TLS      "BAD_TLS_CONFIG"

#define HC_DEFAULT_URL        "tcp://127.0.0.1:7450"
#define HC_DEFAULT_TIMEOUT_MS 10000u
#define HC_DEFAULT_MAX_REPLY  ((size_t)64 << 20)
#define HC_REQUEST_ID_LEN     32 /* hex digits */

struct hopper_client {
    nng_socket sock; /* req0; NNG makes it safe to share between threads */
    char *url;
    char *token; /* "" when anonymous */
    char *scope; /* "" for the broker's default */
    uint32_t timeout_ms;
    uint64_t rid_key[3];           /* request-id secret, set at connect */
    atomic_uint_fast64_t rid_next; /* request-id counter */
};

/* ---- status.c ---- */

/* Fills *st (when not NULL) and returns code. Never allocates. */
HC_MUST_USE int hc_fail(hopper_status *st, int code, const char *reason,
                        const char *fmt, ...) HC_PRINTF(4, 5);

/* RESOURCE_EXHAUSTED / NO_MEMORY. */
HC_MUST_USE int hc_no_memory(hopper_status *st);

/* INVALID_ARGUMENT / BAD_ARGUMENT for a caller's mistake. */
HC_MUST_USE int hc_bad_arg(hopper_status *st, const char *what);

/* INTERNAL / BAD_RESPONSE for a reply that breaks the contract. */
HC_MUST_USE int hc_bad_response(hopper_status *st, const char *what);

/* ---- reqid.c ---- */

/* Seeds c->rid_key from getrandom() (or /dev/urandom). */
HC_MUST_USE int hc_reqid_seed(hopper_client *c, hopper_status *st);

/* Writes HC_REQUEST_ID_LEN hex digits and a NUL: unique for the life of c,
 * unpredictable without its key. Any thread. */
void hc_reqid_next(hopper_client *c, char out[HC_REQUEST_ID_LEN + 1]);

/* ---- transport.c ---- */

/*
 * Sends one envelope for path with body and waits up to timeout_ms for the
 * reply; deadline_ms goes in the envelope. On HOPPER_OK, *reply is the
 * decoded Response with an OK status (free with
 * hopper__v1__response__free_unpacked(*reply, NULL)); a non-OK broker
 * status is copied to *st and returned. Any thread.
 */
HC_MUST_USE int hc_roundtrip(hopper_client *c, const char *path,
                             const uint8_t *body, size_t body_len,
                             uint32_t timeout_ms, uint32_t deadline_ms,
                             Hopper__V1__Response **reply, hopper_status *st);

/*
 * Calls rpc (a method name of service Broker, e.g. "Enqueue") with req,
 * adding extra_ms to the call's timeout and deadline (long-poll waits). On
 * HOPPER_OK, *resp is the unpacked response message of that method, freed
 * with protobuf_c_message_free_unpacked(*resp, NULL).
 */
HC_MUST_USE int hc_invoke(hopper_client *c, const char *rpc,
                          const ProtobufCMessage *req, uint32_t extra_ms,
                          ProtobufCMessage **resp, hopper_status *st);

/*
 * The same without waiting: returns once the request is handed to NNG,
 * and fn runs later on an NNG thread with the outcome: code and st as
 * hc_invoke's, resp the response message on HOPPER_OK (freed after fn
 * returns). fn must not block. Not called when this returns an error.
 */
typedef void (*hc_async_fn)(void *arg, int code, const ProtobufCMessage *resp,
                            const hopper_status *st);
HC_MUST_USE int hc_invoke_async(hopper_client *c, const char *rpc,
                                const ProtobufCMessage *req, hc_async_fn fn,
                                void *arg, hopper_status *st);

/* ---- convert.c ---- */

/* Protobuf drafts built over a caller's hopper_drafts: borrowed strings,
 * storage owned here and released by hc_drafts_release(). */
typedef struct hc_drafts {
    size_t n;
    Hopper__V1__Draft **ptrs;
    Hopper__V1__Draft *items;
    Hopper__V1__Header **hdr_ptrs;
    Hopper__V1__Header *hdrs;
} hc_drafts;

HC_MUST_USE int hc_drafts_build(const hopper_draft *d, size_t n, hc_drafts *out,
                                hopper_status *st);
void hc_drafts_release(hc_drafts *ds);

/* Copies n Enqueued results into out (may be NULL); fails BAD_RESPONSE
 * unless exactly want results came back. */
HC_MUST_USE int hc_enqueued_copy(Hopper__V1__Enqueued *const *res, size_t n,
                                 size_t want, hopper_enqueued *out,
                                 hopper_status *st);

/* Deep-copies m into *out (zeroed first). On failure *out holds nothing
 * to free. */
HC_MUST_USE int hc_message_copy(const Hopper__V1__Message *m,
                                hopper_message *out, hopper_status *st);

/* Frees what *m points to, not m itself. */
void hc_message_release(hopper_message *m);

/* Copies n messages into a new array *out (NULL when n is 0). */
HC_MUST_USE int hc_messages_copy(Hopper__V1__Message *const *ms, size_t n,
                                 hopper_message **out, hopper_status *st);
void hc_messages_free(hopper_message *ms, size_t n);

/* A bytes field into a fresh buffer (NULL when empty). */
HC_MUST_USE int hc_bytes_copy(ProtobufCBinaryData b, void **out,
                              size_t *out_len, hopper_status *st);

void hc_settings_to_pb(const hopper_lane_settings *s,
                       Hopper__V1__LaneSettings *out);
void hc_settings_from_pb(const Hopper__V1__LaneSettings *s,
                         hopper_lane_settings *out);

HC_MUST_USE int hc_stats_copy(const Hopper__V1__LaneStats *s,
                              hopper_lane_stats *out, hopper_status *st);
void hc_stats_release(hopper_lane_stats *s);

/* protobuf-c wants char * for string fields it only reads while packing;
 * NULL becomes "". The one place a const is cast away. */
char *hc_str(const char *s);

#endif
