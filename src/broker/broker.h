/*
 * broker.h - hopperd's core as a library: a program (hopperd's main, a test,
 * an application embedding the broker on inproc://) fills a broker_config,
 * starts a broker and stops it. Everything else in src/broker is internal.
 */
#ifndef HP_BROKER_BROKER_H
#define HP_BROKER_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

#define BROKER_MAX_LISTEN 16
/* BROKER_VERSION, "MAJOR.MINOR.PATCH", comes from the build: the version
 * of project() in CMakeLists.txt, its one place. */

typedef struct broker broker;

typedef struct broker_config {
    const char *listen[BROKER_MAX_LISTEN]; /* NNG URLs */
    size_t n_listen;
    const char *data_dir;
    store_sync sync;
    size_t map_size;
    size_t max_map_size;
    size_t max_payload;   /* per message */
    size_t max_frame;     /* per request; a longer frame closes its
                             connection before it is read */
    uint32_t max_wait_ms; /* long-poll cap */
    uint32_t default_deadline_ms;
    uint32_t send_timeout_ms;    /* a reply that cannot be sent by then is
                                    dropped */
    uint32_t max_group;          /* operations per commit */
    uint32_t max_inflight;       /* requests being handled at once, including
                                    parked long-polls; reading pauses at it */
    uint64_t replay_window_ms;   /* how long request ids are remembered */
    uint32_t max_waits_per_conn; /* parked long-polls of one connection */
    uint32_t max_parked;         /* parked long-polls in all: well below
                                    max_inflight, so other requests still
                                    flow when every slot of it is taken */
    /* The transport's budgets (docs/security.md, "Memory budget"). */
    uint32_t io_threads;       /* 0: one per online CPU */
    uint32_t max_connections;  /* at the cap the longest idle one goes */
    uint32_t conn_inflight;    /* unanswered requests of one connection */
    size_t max_partial_bytes;  /* held by unfinished frames, in all */
    uint32_t frame_timeout_ms; /* an unfinished frame idle this long */
    size_t conn_unsent;        /* unsent reply bytes of one connection
                                  above which it is not read */
    size_t max_unsent_bytes;   /* unsent reply bytes in all */
    const char *auth_keys;     /* key file; NULL: anonymous */
    bool allow_anonymous;      /* anonymous on a non-local listener */
    /* Delivery lanes may call loopback, private and link-local addresses
     * (docs/webhooks.md, "SSRF"). */
    bool webhook_allow_private;
    /* Test hooks: the wall clock (NULL for the system's), and every
     * listener counted as reachable from other hosts (a test binds
     * loopback only), for the anonymous-access checks and warnings. */
    hp_clock_source clock_source;
    void *clock_arg;
    bool listeners_public;
    /* TLS for tls+tcp:// listeners (docs/security.md, "TLS"): PEM
     * certificate (chain) and unencrypted key, possibly one file, both
     * needed by a tls+tcp:// listener and refused without one; a client
     * CA makes client certificates required. NULL: none. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file;
    /* Operator HTTP endpoint ("HOST:PORT"; NULL: none) and the cap on
     * lanes exported in /metrics. */
    const char *http_addr;
    uint32_t metrics_max_lanes;
    /* The HTTP API (docs/http.md): "HOST:PORT" served in plain HTTP, and
     * one served in HTTPS with the tls_* files above; NULL: none. */
    const char *api_addr;
    const char *api_tls_addr;
    /* The API's base URL as receivers reach it (http:// or https://), for
     * deliveries' Hopper-Callback; NULL: the address an API listener
     * bound, --api-tls first. */
    const char *api_public_url;
    /* Where Backup writes its copies; NULL: backups are refused. */
    const char *backup_dir;
    /* Builds with HOPPER_DEBUG_HOOKS only (never a release), ignored
     * elsewhere: replies leave before their commit is on disk, the
     * power-loss test's negative control (HOPPER_DEBUG_REPLY_BEFORE_SYNC=1). */
    bool debug_reply_before_sync;
} broker_config;

/* Fills every setting with its default: hopperd's (config.c holds the
 * table of its options, with their defaults, and defines this function),
 * and those without a flag. */
void broker_config_init(broker_config *c);

/* Binds the listeners, then opens the store (so a busy port fails before
 * the data dir is created or touched), starts the writer and timer
 * threads, and only then serves the listeners and the HTTP endpoint. On
 * failure nothing is left running and st says why (a busy port is
 * UNAVAILABLE/ADDRESS_IN_USE, an unusable data dir FAILED_PRECONDITION).
 * Without auth_keys every listener must be local (loopback TCP or
 * inproc://) unless allow_anonymous is set: FAILED_PRECONDITION/
 * ANONYMOUS_NOT_LOCAL. */
HP_MUST_USE hp_code broker_start(const broker_config *c, broker **out,
                                 hp_status *st);

/* The URL listener i is bound to, with a port chosen by the system filled
 * in (for tcp://127.0.0.1:0). Valid until broker_stop. */
const char *broker_bound_url(const broker *b, size_t i);

/* "http://HOST:PORT" of the --http endpoint with its bound port; NULL
 * without one. Valid until broker_stop. */
const char *broker_http_url(const broker *b);

/* "http://HOST:PORT" of --api (tls false) or "https://HOST:PORT" of
 * --api-tls (tls true), with the bound port; NULL without one. Valid until
 * broker_stop. */
const char *broker_api_url(const broker *b, bool tls);

/* Graceful stop: refuses new requests, applies and answers every request
 * already queued, answers parked long-polls with empty batches, closes the
 * store cleanly, frees b. NULL is a no-op. */
void broker_stop(broker *b);

#endif
