/*
 * api.h - the HTTP API (--api, --api-tls): every rpc of service Broker in
 * the Connect protocol's unary form, POST /hopper.v1.Broker/<Method> with
 * a body in protobuf's JSON mapping (application/json) or binary
 * (application/proto), served by NNG's HTTP server (docs/http.md).
 *
 * It is a translator, not a second broker: each HTTP request becomes the
 * envelope a native client would send (method, body, scope, token,
 * deadline, request id, from the path, the body and the headers) and goes
 * to the same handler through an external connection of the listener
 * (listener_ext_request), so authorization, limits, budgets, replays and
 * durability are the native protocol's, in one place. Its Response comes
 * back as the HTTP response: the body in the request's encoding, or a
 * Connect error whose details carry the reason word.
 *
 * What it bounds itself, and what NNG's server leaves unbounded, is in
 * docs/http.md ("Limits").
 *
 * One more route is not an rpc: POST <callback_path><token>, callback
 * ingress (callback.h; docs/webhooks.md, "Callbacks"). Its body is read
 * under the same budget, at most callback_max_body bytes and of any
 * content type, and handed with the token to the callback hook; its
 * answer is 200 with the hook's JSON, or the Connect error of its code
 * (409 for FAILED_PRECONDITION: a lost claim is a conflict, not a bad
 * request). No bearer token is read: the callback token is the
 * credential.
 */
#ifndef HP_BROKER_API_H
#define HP_BROKER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/listener.h"
#include "common/status.h"
#include "common/str.h"

typedef struct api_server api_server;

/* A callback's answer (callback_done_fn's shape): HP_OK with json[len],
 * or a code and st. Any thread, once per call. */
typedef void (*api_callback_done)(void *call, hp_code code, const hp_status *st,
                                  const char *json, size_t len);
/* The hook a callback goes to; body valid during the call only. */
typedef void (*api_callback_fn)(void *arg, hp_str token, const void *body,
                                size_t len, api_callback_done done, void *call);

typedef struct api_opts {
    const char *addr; /* HOST:PORT; port 0: one the system picks */
    /* HTTPS with these PEM files (--tls-cert, --tls-key, and the client
     * CA that makes client certificates required, or NULL). */
    bool tls;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file;
    listener *l;              /* where requests go */
    size_t max_body;          /* a longer body is refused unread */
    size_t max_body_total;    /* bodies being read, in all */
    uint32_t body_timeout_ms; /* a body that stops arriving */
    uint32_t send_timeout_ms; /* a long-poll's response not taken */
    size_t decode_limit;      /* memory decoding one JSON body */
    /* Callback ingress: NULL, none (the path is an unknown rpc). */
    const char *callback_path; /* "/hopper.v1.Callback/" */
    size_t callback_max_body;
    api_callback_fn callback;
    void *callback_arg;
} api_opts;

/*
 * Serves the API on o->addr; requests flow at once (start it after the
 * listener). INVALID_ARGUMENT/BAD_URL for an address NNG cannot parse,
 * UNAVAILABLE/ADDRESS_IN_USE for a busy port, INVALID_ARGUMENT/
 * BAD_TLS_CONFIG for TLS files NNG's TLS (mbedTLS) will not take.
 */
HP_MUST_USE hp_code api_start(const api_opts *o, api_server **out,
                              hp_status *st);

/* "http://HOST:PORT" or "https://HOST:PORT", with the bound port. */
const char *api_url(const api_server *s);

/* Whether s is bound to a loopback address: reachable from this host
 * only. */
bool api_is_local(const api_server *s);

typedef struct api_stats {
    uint64_t requests_total; /* HTTP requests answered */
    uint64_t refused_total;  /* of those, refused before the broker saw
                                them (bad HTTP, body budget) */
    uint64_t body_bytes;     /* request bodies held now */
} api_stats;

void api_get_stats(api_server *s, api_stats *out);

/* Stops serving and frees s. Every request handed to the listener must
 * have been answered by then (the broker has stopped its writer and its
 * long-polls). NULL is a no-op. */
void api_stop(api_server *s);

#endif
