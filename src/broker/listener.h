/*
 * listener.h - the NNG side of hopperd: one rep0 socket, its listeners
 * (each with recv-size-max set before it starts, so a frame over the limit
 * is refused before it is read), and a pool of contexts that grows with the
 * number of requests in flight, up to a cap. Each request is handed to the
 * handler on an NNG callback thread; the handler answers it exactly once,
 * from any thread, with listener_reply.
 */
#ifndef HP_BROKER_LISTENER_H
#define HP_BROKER_LISTENER_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct listener listener;
typedef struct listener_worker listener_worker;

/* Called on an NNG thread; must not block. The request bytes are valid only
 * during the call. */
typedef void (*listener_handler)(void *arg, const void *req, size_t len,
                                 listener_worker *w);

typedef struct listener_opts {
    const char *const *urls;
    size_t n_urls;
    size_t max_frame;
    uint32_t send_timeout_ms;
    uint32_t min_idle;     /* contexts kept waiting for requests */
    uint32_t max_inflight; /* contexts in all */
} listener_opts;

HP_MUST_USE hp_code listener_open(const listener_opts *o, listener_handler fn,
                                  void *arg, listener **out, hp_status *st);

/* The bound URL of listener i (a tcp port 0 resolved). */
const char *listener_url(const listener *l, size_t i);

/* Which connection the request w carries came on (an NNG pipe id), so
 * limits can be kept per client. */
uint32_t listener_conn(const listener_worker *w);

/* Sends the reply for the request w carries. Takes a copy of data. */
void listener_reply(listener_worker *w, const void *data, size_t len);

/* Waits up to timeout_ms for replies being sent to finish. */
void listener_drain(listener *l, uint32_t timeout_ms);

/* Closes the socket and frees everything; no callback runs after it. */
void listener_close(listener *l);

#endif
