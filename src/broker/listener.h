/*
 * listener.h - hopperd's transport: the SP request/reply protocol that NNG
 * speaks (src/sp/sp.h), served by Hopper's own event-driven code. One or
 * more I/O threads each run an epoll loop over their connections; the
 * thread that reads a request hands it to the handler at once, and
 * whichever thread finishes the request (the same I/O thread for a read,
 * the writer for a commit, the timer for a long-poll that ran out) writes
 * the reply to the socket itself. A reply the socket cannot take at once is
 * queued and sent by the connection's I/O thread.
 *
 * URLs: tcp://HOST:PORT (tcp4://, tcp6://), the same with tls+ in front
 * (TLS 1.2/1.3 through OpenSSL, then SP inside it, as NNG's tls+tcp://),
 * and inproc://NAME for a broker embedded in a process: a Unix socket in
 * the abstract namespace that takes connections from its own process only.
 *
 * Memory held on behalf of clients has a budget, each part enforced here:
 * a frame's buffer grows as its bytes arrive and counts against a total
 * for partial frames; a frame that stops arriving is dropped with its
 * connection; unsent replies are capped per connection (reading pauses
 * above the soft cap, the connection is closed above the hard one) and in
 * total; requests in flight are capped per connection and in total
 * (reading pauses until they are answered); connections are capped, and at
 * the cap the longest-idle connection makes room for a new one.
 */
#ifndef HP_BROKER_LISTENER_H
#define HP_BROKER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "sp/sp.h"

typedef struct listener listener;
typedef struct listener_conn listener_conn;

/*
 * Where a request's reply goes: a reference to its connection and the
 * request's SP header, to send back in front of the reply. The listener
 * fills one per request and hands it to the handler, which keeps it (by
 * value) until it answers with listener_reply, exactly once.
 */
typedef struct listener_req {
    listener_conn *conn;
    uint32_t conn_id; /* unique for the life of the listener */
    uint32_t bytes;   /* the request's size, counted in flight */
    uint8_t hdr_len;
    uint8_t hdr[SP_MAX_HDR];
} listener_req;

/* Called on an I/O thread for each request, body valid only during the
 * call. It may run reads itself; it must not wait for other requests. */
typedef void (*listener_handler)(void *arg, const listener_req *r,
                                 const void *body, size_t len);

/* Called on an I/O thread when a connection that carried requests has
 * closed; must not block. */
typedef void (*listener_closed_fn)(void *arg, uint32_t conn_id);

/* A connection that has not finished its SP (and TLS) handshake after this
 * long is closed. */
#define LISTENER_HANDSHAKE_MS 10000

/* Every limit is the caller's to set: hopperd's defaults are in the table
 * of its options (config.c; docs/security.md lists them). */
typedef struct listener_limits {
    size_t max_frame;              /* a longer frame closes its connection */
    uint32_t max_connections;      /* open at once */
    uint32_t conn_inflight;        /* unanswered requests of one connection */
    uint32_t max_inflight;         /* unanswered requests in all */
    size_t max_partial_bytes;      /* held by unfinished frames, in all */
    uint32_t frame_stall_ms;       /* an unfinished frame idle this long */
    size_t conn_unsent;            /* soft cap: reading pauses above it */
    size_t max_unsent_bytes;       /* in all */
    uint32_t send_timeout_ms;      /* unsent replies making no progress */
    uint32_t handshake_timeout_ms; /* 0: LISTENER_HANDSHAKE_MS */
} listener_limits;

typedef struct listener_opts {
    const char *const *urls;
    size_t n_urls;
    uint32_t io_threads; /* 0: one per online CPU, at most 8 */
    listener_limits limits;
    listener_closed_fn on_closed; /* NULL: not told */
    /* For tls+tcp:// URLs; borrowed for the call only. Certificate (a
     * chain may follow it) and unencrypted private key, PEM, possibly one
     * file; both or neither. tls_client_ca_file, when set, makes every
     * tls+tcp:// client present a certificate that chains to it; CRLs in
     * the same file revoke what they list. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file;
    /* The same files serve the HTTP API's TLS (--api-tls): they are
     * checked, and wanted, even when no URL here is tls+tcp://. */
    bool tls_for_api;
} listener_opts;

/*
 * Binds every URL (nothing is accepted until listener_start). Fails with
 * INVALID_ARGUMENT/BAD_URL for a URL hopperd will not listen on,
 * UNAVAILABLE/ADDRESS_IN_USE for a busy port, and for TLS:
 * INVALID_ARGUMENT/BAD_TLS_CONFIG when a tls+tcp:// URL has no certificate
 * and key, when TLS files are given but no URL is tls+tcp://, or when a
 * file is not what it should be (no PEM certificate, a key that does not
 * match it, an encrypted key, a CA file without certificates);
 * FAILED_PRECONDITION/IO_ERROR for a file that cannot be read and
 * FAILED_PRECONDITION/KEY_FILE_MODE for a key others may read.
 */
HP_MUST_USE hp_code listener_open(const listener_opts *o, listener_handler fn,
                                  void *arg, listener **out, hp_status *st);

/* Starts the I/O threads: requests flow from here on. */
HP_MUST_USE hp_code listener_start(listener *l, hp_status *st);

/* Reads the whole of a PEM file (--tls-cert, --tls-key, --tls-client-ca)
 * into a NUL-terminated buffer the caller frees, wiping it first when
 * secret. A secret file must not be readable by every user. The HTTP API's
 * TLS reads its files through it too, so both listeners apply one rule. */
HP_MUST_USE hp_code listener_read_pem(const char *path, const char *what,
                                      bool secret, char **out, size_t *len,
                                      hp_status *st);

/* The bound URL of listener i (a tcp port 0 resolved). */
const char *listener_url(const listener *l, size_t i);

/* Whether listener i can be reached only from this host: bound to a
 * loopback address, or inproc://. Decided from the address bound, not the
 * URL's text. */
bool listener_is_local(const listener *l, size_t i);

/* Sends body as the reply to r and lets go of r's connection; any thread,
 * exactly once per request. Dropped if the connection has closed. */
void listener_reply(const listener_req *r, const void *body, size_t len);

/* r is about to park as a long-poll (before it is in the table, so
 * nothing has answered it yet): an external connection's owner is told
 * (listener_ext_open's waiting). Writer thread. */
void listener_req_waiting(const listener_req *r);

/* Whether r's connection is still open. One that closes after this
 * returned true is reported to on_closed. */
bool listener_req_open(const listener_req *r);

/* An extra reference to r's connection, for looking at it after r itself
 * may be gone (answered by another thread); give it back with
 * listener_conn_release. Any thread. */
listener_conn *listener_conn_hold(const listener_req *r);
bool listener_conn_is_open(const listener_conn *c);
void listener_conn_release(listener_conn *c);

/*
 * Requests that arrive by another transport (the HTTP API, api.c) go to
 * the same handler, with the same budget of requests in flight, each on an
 * external connection of its own: a listener_conn whose reply goes to a
 * function instead of a socket. Long-polls park on it as on any
 * connection, and are answered at once when the caller says its client
 * has gone (listener_ext_close).
 */
typedef void (*listener_ext_reply_fn)(void *arg, const void *body, size_t len);

/*
 * A new external connection, *out, for one request whose reply goes to
 * fn(arg, reply, len): called exactly once, from any thread (possibly
 * before listener_ext_request returns, and also after listener_ext_close),
 * with reply valid during the call only. waiting(arg), if not NULL, is
 * called (on the writer, maybe more than once, always before fn) when the
 * request is about to park as a long-poll: the time to watch its client. It
 * holds one of the --max-inflight slots until then:
 * RESOURCE_EXHAUSTED/TOO_MANY_REQUESTS when none is free, UNAVAILABLE/
 * SHUTTING_DOWN before listener_start or after listener_stop_accepting
 * (*out is NULL, fn is never called then). listener_ext_request must follow;
 * give *out back with listener_ext_release once fn has run.
 */
HP_MUST_USE hp_code listener_ext_open(listener *l, listener_ext_reply_fn fn,
                                      void (*waiting)(void *arg), void *arg,
                                      listener_conn **out, hp_status *st);

/* Hands body (a serialized Request) to the handler on c, as if read from
 * it. Once per listener_ext_open. */
void listener_ext_request(listener_conn *c, const void *body, size_t len);

/* The client of c has gone: what it has parked is answered now (into fn).
 * Any thread; again is a no-op. */
void listener_ext_close(listener_conn *c);

/* Drops the caller's reference to c. NULL is a no-op. */
void listener_ext_release(listener_conn *c);

/* Closes the listening sockets: no new connections. */
void listener_stop_accepting(listener *l);

/* Waits up to timeout_ms for queued replies to be sent. */
void listener_drain(listener *l, uint32_t timeout_ms);

typedef struct listener_stats {
    uint32_t connections;       /* open now */
    uint64_t connections_total; /* accepted since start */
    uint64_t refused_total;     /* turned away at the connection cap */
    uint64_t evicted_total;     /* idle ones closed to make room */
    uint64_t dropped_total;     /* closed for a broken budget or protocol */
    uint32_t inflight;          /* requests read and not yet answered */
    uint64_t partial_bytes;     /* held by unfinished frames */
    uint64_t unsent_bytes;      /* replies waiting for their socket */
} listener_stats;

void listener_get_stats(listener *l, listener_stats *out);

/* Stops the I/O threads, closes every connection and frees l; no handler
 * runs after it. Replies sent later are dropped (their references keep
 * the connection objects alive until then). NULL is a no-op. */
void listener_close(listener *l);

#endif
