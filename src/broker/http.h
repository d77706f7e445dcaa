/*
 * http.h - hopperd's HTTP endpoint for operators (--http ADDR), on NNG's
 * HTTP server: /metrics (Prometheus text), /healthz (the process answers)
 * and /readyz (the store takes a commit now).
 */
#ifndef HP_BROKER_HTTP_H
#define HP_BROKER_HTTP_H

#include "common/status.h"

typedef struct http_server http_server;
struct broker;

/* Serves on addr, "HOST:PORT" (port 0: one the system picks). INVALID_
 * ARGUMENT/BAD_URL for an address NNG cannot parse, UNAVAILABLE/
 * ADDRESS_IN_USE for a busy port. */
HP_MUST_USE hp_code http_start(struct broker *b, const char *addr,
                               http_server **out, hp_status *st);

/* "http://HOST:PORT" with the bound port. */
const char *http_url(const http_server *h);

/* Stops serving and waits for handlers in progress. NULL is a no-op. */
void http_stop(http_server *h);

#endif
