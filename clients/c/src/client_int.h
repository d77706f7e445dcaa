/*
 * client_int.h - what libhopper's own files share: the client body, status
 * helpers, the request/reply round trip and the conversions between the
 * public plain structs and protobuf-c's generated ones. Nothing here is
 * exported (the library is built with -fvisibility=hidden and only
 * HOPPER_API symbols leave it).
 */
#ifndef HOPPER_CLIENT_INT_H
#define HOPPER_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <protobuf-c/protobuf-c.h>

#include "hopper/hopper.h"
#include "hopper/v1/broker.pb-c.h"
#include "hopper/v1/envelope.pb-c.h"

#define HC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HC_MUST_USE     __attribute__((warn_unused_result))

#define HC_DEFAULT_TIMEOUT_MS 10000u
#define HC_DEFAULT_MAX_REPLY  ((size_t)64 << 20)
#define HC_REQUEST_ID_LEN     48 /* hex digits */
/* Idle connections kept for reuse; more are closed when returned. */
#define HC_MAX_IDLE 16

/* One connection to the broker, SP handshake done. Used by one call at a
 * time (sync), or by the async state under its mutex. */
typedef struct hc_conn {
    int fd;
    SSL *ssl;
    uint32_t next_id;        /* SP request ids, counting up */
    bool blocking;           /* sync calls: blocking I/O with socket timeouts */
    uint32_t rcv_ms, snd_ms; /* the socket timeouts last set */
    struct hc_conn *next;
} hc_conn;

typedef struct hc_async_state hc_async_state;

struct hopper_client {
    char *url;
    char *token; /* "" when anonymous */
    char *scope; /* "" for the broker's default */
    uint32_t timeout_ms;
    size_t max_reply;
    uint64_t rid_key[3]; /* request-id prefix, then SipHash key; at connect */
    atomic_uint_fast64_t rid_next; /* request-id counter */

    /* Where to connect, parsed once. */
    bool inproc;
    bool tls;
    int family;
    char *host;
    char *port;
    char *inproc_name;
    SSL_CTX *tls_ctx;  /* tls+tcp:// only */
    char *server_name; /* checked against the broker's certificate */

    /* Connections of synchronous calls: each call takes one (or dials a
     * new one) and puts it back, so threads never share a connection. */
    pthread_mutex_t mtx;
    hc_conn *idle; /* c->mtx */
    size_t n_idle; /* c->mtx */

    hc_async_state *async; /* created by the first async call */
    pthread_mutex_t async_once;
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

/* ---- conn.c ---- */

typedef enum hc_io {
    HC_IO_OK,
    HC_IO_TIMEOUT, /* the deadline passed */
    HC_IO_LOST,    /* the connection broke (reset, closed, EPIPE) */
    HC_IO_BAD,     /* the peer broke the protocol */
    HC_IO_NOMEM,
} hc_io;

/* Milliseconds on a monotonic clock. */
uint64_t hc_now_ms(void);

/* Dials the broker and does the TLS and SP handshakes before deadline.
 * Fails with UNAVAILABLE/UNREACHABLE (refused, unresolvable, timed out or
 * a failed TLS handshake, each said in the message). */
HC_MUST_USE int hc_dial(hopper_client *c, uint64_t deadline, bool blocking,
                        hc_conn **out, hopper_status *st);
void hc_conn_close(hc_conn *k);

/* Writes all of p before deadline. */
hc_io hc_write_all(hc_conn *k, const uint8_t *p, size_t len, uint64_t deadline);

/* Reads some bytes (at most len) before deadline into p; *n > 0 on OK. */
hc_io hc_read_some(hc_conn *k, uint8_t *p, size_t len, size_t *n,
                   uint64_t deadline);

/* Whether k has bytes buffered inside TLS that poll(2) cannot see. */
bool hc_conn_pending(const hc_conn *k);

/* Parses url and the TLS options into c (at connect). */
HC_MUST_USE int hc_target_init(hopper_client *c, const hopper_options *o,
                               hopper_status *st);
void hc_target_release(hopper_client *c);

/* ---- transport.c ---- */

/* Packs the envelope for path with body and a fresh request id (written
 * to request_id) into a new frame of SP_FRAME_HDR_LEN + 4 bytes of room
 * followed by the envelope: *frame (malloc) of *frame_len bytes. */
HC_MUST_USE int hc_pack_frame(hopper_client *c, const char *path,
                              const uint8_t *body, size_t body_len,
                              uint32_t deadline_ms,
                              char request_id[HC_REQUEST_ID_LEN + 1],
                              uint8_t **frame, size_t *frame_len,
                              hopper_status *st);

/* Decodes and checks the reply envelope to request_id. */
HC_MUST_USE int hc_open_reply(const uint8_t *msg, size_t len,
                              const char *request_id,
                              Hopper__V1__Response **reply, hopper_status *st);

/* The response message of method m carried by an OK reply; takes reply. */
HC_MUST_USE int hc_open_body(const ProtobufCMethodDescriptor *m,
                             Hopper__V1__Response *reply,
                             ProtobufCMessage **resp, hopper_status *st);

/* The method of service Broker named rpc taking req, its path, and req
 * packed (malloc'd *body). */
#define HC_PATH_MAX 128
HC_MUST_USE int hc_prepare(const char *rpc, const ProtobufCMessage *req,
                           const ProtobufCMethodDescriptor **m,
                           char path[HC_PATH_MAX], uint8_t **body, size_t *len,
                           hopper_status *st);

/* Statuses for a call that could not reach the broker or got no reply. */
HC_MUST_USE int hc_unreachable(const hopper_client *c, hopper_status *st,
                               const char *why);
HC_MUST_USE int hc_timed_out(const hopper_client *c, uint32_t timeout_ms,
                             hopper_status *st);

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

/* ---- async.c ---- */

/*
 * The same without waiting: returns once the request is written to the
 * client's pipelining connection, and fn runs later on the library's
 * reader thread with the outcome: code and st as hc_invoke's, resp the
 * response message on HOPPER_OK (freed after fn returns). fn must not
 * block. Not called when this returns an error.
 */
typedef void (*hc_async_fn)(void *arg, int code, const ProtobufCMessage *resp,
                            const hopper_status *st);
HC_MUST_USE int hc_invoke_async(hopper_client *c, const char *rpc,
                                const ProtobufCMessage *req, hc_async_fn fn,
                                void *arg, hopper_status *st);

/* Stops the reader thread (after failing what is still pending with
 * CANCELLED) and frees the async state. */
void hc_async_close(hopper_client *c);

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
