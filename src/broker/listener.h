/*
 * listener.h - the NNG side of hopperd: one rep0 socket, its listeners
 * (each with recv-size-max set before it starts, so a frame over the limit
 * is refused before it is read), and a pool of contexts that grows with the
 * number of requests in flight, up to a cap. Each request is handed to the
 * handler on an NNG callback thread; the handler answers it exactly once,
 * from any thread, with listener_reply.
 *
 * tls+tcp:// listeners (also tls+tcp4://, tls+tcp6://) share one server
 * TLS configuration built from the PEM files in listener_opts before any
 * socket is opened, so a bad certificate stops the start with a message
 * naming the file rather than failing every handshake later.
 */
#ifndef HP_BROKER_LISTENER_H
#define HP_BROKER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct listener listener;
typedef struct listener_worker listener_worker;

/* Called on an NNG thread; must not block. The request bytes are valid only
 * during the call. */
typedef void (*listener_handler)(void *arg, const void *req, size_t len,
                                 listener_worker *w);

/* Called on an NNG thread when a client connection has closed, with the
 * id listener_conn gave its requests; must not block. */
typedef void (*listener_closed_fn)(void *arg, uint32_t conn);

typedef struct listener_opts {
    const char *const *urls;
    size_t n_urls;
    size_t max_frame;
    uint32_t send_timeout_ms;
    uint32_t min_idle;            /* contexts kept waiting for requests */
    uint32_t max_inflight;        /* contexts in all */
    listener_closed_fn on_closed; /* NULL: not told; gets the handler's arg */
    /* For tls+tcp:// URLs; borrowed for the call only. Certificate (a
     * chain may follow it) and unencrypted private key, PEM, possibly one
     * file; both or neither. tls_client_ca_file, when set, makes every
     * tls+tcp:// client present a certificate that chains to it. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file;
} listener_opts;

/* Opens the socket, starts every listener and the first contexts. Fails
 * with INVALID_ARGUMENT/BAD_URL for a URL NNG or hopperd will not listen
 * on, UNAVAILABLE/ADDRESS_IN_USE for a busy port, and for TLS:
 * INVALID_ARGUMENT/BAD_TLS_CONFIG when a tls+tcp:// URL has no certificate
 * and key, when TLS files are given but no URL is tls+tcp://, or when a
 * file is not what it should be (no PEM certificate, a key that does not
 * match it, an encrypted key, a CA file mbedTLS cannot parse);
 * FAILED_PRECONDITION/IO_ERROR for a file that cannot be read and
 * FAILED_PRECONDITION/KEY_FILE_MODE for a key others may read. */
HP_MUST_USE hp_code listener_open(const listener_opts *o, listener_handler fn,
                                  void *arg, listener **out, hp_status *st);

/* The bound URL of listener i (a tcp port 0 resolved). */
const char *listener_url(const listener *l, size_t i);

/* Which connection the request w carries came on (an NNG pipe id), so
 * limits can be kept per client. */
uint32_t listener_conn(const listener_worker *w);

/* Whether connection conn is still open. A connection that closes after
 * this returned true is reported to on_closed. */
bool listener_conn_open(listener *l, uint32_t conn);

/* Sends the reply for the request w carries. Takes a copy of data. */
void listener_reply(listener_worker *w, const void *data, size_t len);

/* Waits up to timeout_ms for replies being sent to finish. */
void listener_drain(listener *l, uint32_t timeout_ms);

/* An NNG error of opening or starting a listener (of any kind: the HTTP
 * endpoint too) as a status: ADDRESS_IN_USE, BAD_URL, BAD_TLS_CONFIG,
 * NO_MEMORY or LISTEN_FAILED, naming what and url. */
HP_MUST_USE hp_code listener_nng_status(hp_status *st, int rv, const char *what,
                                        const char *url);

typedef struct listener_stats {
    uint32_t connections;       /* open now */
    uint64_t connections_total; /* accepted since start */
    uint32_t contexts;          /* request contexts, busy or idle */
    uint32_t idle;              /* contexts waiting for a request */
} listener_stats;

void listener_get_stats(listener *l, listener_stats *out);

/* Closes the socket and frees everything; no callback runs after it. */
void listener_close(listener *l);

#endif
