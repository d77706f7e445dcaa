/*
 * dispatch.h - the request path: from the bytes of one request to its
 * call, checked (envelope, method, scope, token, body, deadline), and on
 * to its handler, a read at once on the I/O thread, a write through the
 * commit queue. Every request gets exactly one Response (call_finish),
 * also when it cannot be decoded at all.
 */
#ifndef HP_BROKER_DISPATCH_H
#define HP_BROKER_DISPATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/auth.h"
#include "broker/call.h"
#include "broker/listener.h"

typedef struct dispatch dispatch;

typedef struct dispatch_opts {
    /* The parts and limits every call reads; dispatch_new fills in the
     * rest of it (Ping's answer). */
    call_ctx ctx;
    const auth_policy *auth; /* copied */
    /* Set when the broker stops: new requests get UNAVAILABLE/
     * SHUTTING_DOWN from then on. */
    const _Atomic bool *stopping;
    uint32_t default_deadline_ms;
} dispatch_opts;

HP_MUST_USE hp_code dispatch_new(const dispatch_opts *o, dispatch **out,
                                 hp_status *st);

/* Once no request runs any more. NULL is a no-op. */
void dispatch_free(dispatch *d);

/* The listener's handler (listener_handler, with d for arg). */
void dispatch_request(dispatch *d, const listener_req *r, const void *req,
                      size_t len);

/* The rpcs by number, for the metrics: their count and names. */
size_t dispatch_method_count(void);
const char *dispatch_method_name(size_t i);

#endif
