/*
 * nnghttp.h - what hopperd's two uses of NNG's HTTP server share: the
 * operator endpoint (--http, http.c) and the API (--api, --api-tls,
 * api.c). Taking HOST:PORT, holding a server for it (with TLS or not),
 * naming the address it bound, and NNG's errors as statuses.
 */
#ifndef HP_BROKER_NNGHTTP_H
#define HP_BROKER_NNGHTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include "common/status.h"

/* Holds a server for flag's addr ("HOST:PORT"; port 0: the system picks),
 * HTTPS with tls when it is not NULL. Nothing is served until
 * nng_http_server_start. INVALID_ARGUMENT/BAD_URL for anything but
 * HOST:PORT. Release with nng_http_server_release. */
HP_MUST_USE hp_code nnghttp_hold(const char *flag, const char *addr,
                                 nng_tls_config *tls, nng_http_server **out,
                                 hp_status *st);

/* "http://HOST:PORT" (https with tls) of the address srv bound, into out;
 * addr as given if NNG cannot say. */
void nnghttp_url(nng_http_server *srv, bool tls, const char *addr, char *out,
                 size_t len);

/* An NNG error of an HTTP endpoint as a status: UNAVAILABLE/
 * ADDRESS_IN_USE, INVALID_ARGUMENT/BAD_URL, RESOURCE_EXHAUSTED/NO_MEMORY,
 * UNAVAILABLE/LISTEN_FAILED. */
HP_MUST_USE hp_code nnghttp_status(hp_status *st, int rv, const char *what,
                                   const char *url);

#endif
