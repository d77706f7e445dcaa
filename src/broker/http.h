/*
 * http.h - hopperd's HTTP endpoint for operators (--http ADDR), on NNG's
 * HTTP server: /metrics (Prometheus text), /healthz (the process answers)
 * and /readyz (the store takes a commit now).
 */
#ifndef HP_BROKER_HTTP_H
#define HP_BROKER_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "broker/commitq.h"
#include "broker/metrics.h"
#include "common/status.h"

typedef struct http_server http_server;

typedef struct http_opts {
    const char *addr;     /* "HOST:PORT" (port 0: one the system picks) */
    metrics_view metrics; /* what /metrics reads */
    commitq *q;           /* where /readyz sends its probe write */
    const _Atomic bool *stopping; /* set: /readyz says not ready */
} http_opts;

/* Serves o->addr. INVALID_ARGUMENT/BAD_URL for an address NNG cannot
 * parse, UNAVAILABLE/ADDRESS_IN_USE for a busy port. */
HP_MUST_USE hp_code http_start(const http_opts *o, http_server **out,
                               hp_status *st);

/* "http://HOST:PORT" with the bound port. */
const char *http_url(const http_server *h);

/* Stops serving and waits for handlers in progress. NULL is a no-op. */
void http_stop(http_server *h);

#endif
