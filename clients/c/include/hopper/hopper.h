/*
 * hopper.h - libhopper, the C client of the Hopper message broker.
 *
 * One hopper_client talks to one broker in the SP request/reply protocol
 * NNG speaks (tcp://, tls+tcp://, and inproc:// to a broker embedded in the
 * same process). A call is a blocking request/reply made in the caller's
 * thread, on a connection of the client's that no other thread uses
 * meanwhile: one client handle may be used from many threads at once, and
 * keeps an idle connection per thread that called (up to 16) for the next
 * call. hopper_close() must not race with calls on the handle.
 *
 * Errors. Every fallible call returns an int status code using gRPC's
 * numbers (HOPPER_OK = 0 ... HOPPER_UNAUTHENTICATED = 16, never -1) and, when
 * the code is not HOPPER_OK and st is not NULL, fills *st with the code, a
 * stable reason word (LOST_CLAIM, MAP_FULL, ...) and a message for people.
 * Codes that come from the broker are passed through unchanged; the library
 * adds these of its own:
 *
 *   DEADLINE_EXCEEDED   TIMEOUT        no reply within the call's timeout
 *   UNAVAILABLE         UNREACHABLE    no connection to the broker
 *   INTERNAL            BAD_RESPONSE   a reply the library cannot decode
 *   RESOURCE_EXHAUSTED  NO_MEMORY      out of memory in this process
 *   INVALID_ARGUMENT    BAD_ARGUMENT   a NULL or impossible argument
 *
 * Ownership. Pointers passed in are only borrowed for the call. Every buffer
 * the library returns is owned by the caller and freed by the function named
 * next to it (hopper_batch_free, hopper_message_free, ...); all of them
 * accept NULL. On failure no output needs freeing (*out is set to NULL).
 *
 * Retries. Each call carries a fresh request id that no one without the
 * client's key can guess (docs/protocol.md). When the connection
 * a call went out on breaks before the reply (the broker restarted, or
 * closed an idle connection to make room), the library sends the same
 * request again on a new connection, within the call's timeout; the broker
 * recognises the id and answers a repeat of a mutating call (enqueue,
 * claim, ack, nack, extend, lane update, dead replay/purge) with the first
 * outcome instead of acting twice. A connection the broker refuses fails
 * the call at once (UNAVAILABLE/UNREACHABLE): nothing listens there. A
 * call the application repeats after a failure is a new request: give
 * enqueued drafts a dedupe_key to make that safe too.
 */
#ifndef HOPPER_HOPPER_H
#define HOPPER_HOPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HOPPER_BUILD) && defined(__GNUC__)
#define HOPPER_API __attribute__((visibility("default")))
#else
#define HOPPER_API
#endif

#define HOPPER_VERSION_MAJOR 0
#define HOPPER_VERSION_MINOR 1
#define HOPPER_VERSION_PATCH 0

/* The library's version, "MAJOR.MINOR.PATCH"; static storage. */
HOPPER_API const char *hopper_version(void);

/* ---- Status -------------------------------------------------------- */

/* gRPC's status codes; they cross the wire unchanged. */
enum {
    HOPPER_OK = 0,
    HOPPER_CANCELLED = 1,
    HOPPER_UNKNOWN = 2,
    HOPPER_INVALID_ARGUMENT = 3,
    HOPPER_DEADLINE_EXCEEDED = 4,
    HOPPER_NOT_FOUND = 5,
    HOPPER_ALREADY_EXISTS = 6,
    HOPPER_PERMISSION_DENIED = 7,
    HOPPER_RESOURCE_EXHAUSTED = 8,
    HOPPER_FAILED_PRECONDITION = 9,
    HOPPER_ABORTED = 10,
    HOPPER_OUT_OF_RANGE = 11,
    HOPPER_UNIMPLEMENTED = 12,
    HOPPER_INTERNAL = 13,
    HOPPER_UNAVAILABLE = 14,
    HOPPER_DATA_LOSS = 15,
    HOPPER_UNAUTHENTICATED = 16
};

/* Filled by a failing call. Strings are NUL-terminated and may be cut. */
typedef struct hopper_status {
    int code;          /* HOPPER_* code, never HOPPER_OK when filled */
    char reason[48];   /* a HOPPER_R_* word, e.g. HOPPER_R_LOST_CLAIM */
    char message[256]; /* for people; never holds tokens or payloads */
} hopper_status;

/*
 * The reason words, to compare with strcmp(st.reason, HOPPER_R_LOST_CLAIM):
 * the broker's and the library's own, under the code each usually comes
 * with. They never change meaning; docs/protocol.md says when each comes.
 * The block is generated from the broker's list (src/common/reasons.def)
 * by scripts/gen-reasons.sh, and reasons_test fails when the two differ.
 */
/* BEGIN reasons (generated from src/common/reasons.def: do not edit) */
/* INVALID_ARGUMENT */
#define HOPPER_R_BAD_ENVELOPE      "BAD_ENVELOPE"
#define HOPPER_R_BAD_BODY          "BAD_BODY"
#define HOPPER_R_NUL_IN_STRING     "NUL_IN_STRING"
#define HOPPER_R_BAD_NAME          "BAD_NAME"
#define HOPPER_R_BAD_ID            "BAD_ID"
#define HOPPER_R_BAD_CLAIM_TOKEN   "BAD_CLAIM_TOKEN"
#define HOPPER_R_BAD_PRIORITY      "BAD_PRIORITY"
#define HOPPER_R_BAD_MAX_ATTEMPTS  "BAD_MAX_ATTEMPTS"
#define HOPPER_R_BAD_LEASE         "BAD_LEASE"
#define HOPPER_R_BAD_WAIT          "BAD_WAIT"
#define HOPPER_R_BAD_DELAY         "BAD_DELAY"
#define HOPPER_R_BAD_DEDUPE_KEY    "BAD_DEDUPE_KEY"
#define HOPPER_R_BAD_HEADER        "BAD_HEADER"
#define HOPPER_R_BAD_CURSOR        "BAD_CURSOR"
#define HOPPER_R_BAD_LIMIT         "BAD_LIMIT"
#define HOPPER_R_BAD_STATE         "BAD_STATE"
#define HOPPER_R_BAD_SETTING       "BAD_SETTING"
#define HOPPER_R_BAD_CALLBACK      "BAD_CALLBACK"
#define HOPPER_R_BAD_CONSUMER      "BAD_CONSUMER"
#define HOPPER_R_BAD_ERROR_TEXT    "BAD_ERROR_TEXT"
#define HOPPER_R_BAD_NACK          "BAD_NACK"
#define HOPPER_R_EMPTY_BATCH       "EMPTY_BATCH"
#define HOPPER_R_BATCH_TOO_LARGE   "BATCH_TOO_LARGE"
#define HOPPER_R_PAYLOAD_TOO_LARGE "PAYLOAD_TOO_LARGE"
#define HOPPER_R_RESULT_TOO_LARGE  "RESULT_TOO_LARGE"
#define HOPPER_R_DUPLICATE_ID      "DUPLICATE_ID"
#define HOPPER_R_BAD_DELIVER_URL   "BAD_DELIVER_URL"
#define HOPPER_R_BAD_SECRET        "BAD_SECRET"
#define HOPPER_R_REQUEST_ID_REUSED "REQUEST_ID_REUSED"
#define HOPPER_R_BAD_JSON          "BAD_JSON"
#define HOPPER_R_UNKNOWN_FIELD     "UNKNOWN_FIELD"
#define HOPPER_R_BAD_CONTENT_TYPE  "BAD_CONTENT_TYPE"
#define HOPPER_R_BAD_HTTP          "BAD_HTTP"
#define HOPPER_R_BAD_ARGUMENT      "BAD_ARGUMENT"
#define HOPPER_R_BAD_URL           "BAD_URL"
#define HOPPER_R_BAD_TLS_CONFIG    "BAD_TLS_CONFIG"

/* DEADLINE_EXCEEDED */
#define HOPPER_R_DEADLINE_EXCEEDED "DEADLINE_EXCEEDED"
#define HOPPER_R_TIMEOUT           "TIMEOUT"

/* NOT_FOUND */
#define HOPPER_R_NO_MESSAGE "NO_MESSAGE"
#define HOPPER_R_NO_LANE    "NO_LANE"
#define HOPPER_R_NO_SECRET  "NO_SECRET"

/* ALREADY_EXISTS */
#define HOPPER_R_BACKUP_EXISTS "BACKUP_EXISTS"

/* PERMISSION_DENIED */
#define HOPPER_R_NOT_IN_SCOPE     "NOT_IN_SCOPE"
#define HOPPER_R_NO_PERMISSION    "NO_PERMISSION"
#define HOPPER_R_NEEDS_ALL_SCOPES "NEEDS_ALL_SCOPES"

/* RESOURCE_EXHAUSTED */
#define HOPPER_R_MAP_FULL          "MAP_FULL"
#define HOPPER_R_DISK_FULL         "DISK_FULL"
#define HOPPER_R_READERS_FULL      "READERS_FULL"
#define HOPPER_R_TOO_MANY_WAITERS  "TOO_MANY_WAITERS"
#define HOPPER_R_DECODE_BUDGET     "DECODE_BUDGET"
#define HOPPER_R_BODY_TOO_LARGE    "BODY_TOO_LARGE"
#define HOPPER_R_TOO_MANY_REQUESTS "TOO_MANY_REQUESTS"
#define HOPPER_R_NO_MEMORY         "NO_MEMORY"
#define HOPPER_R_NO_DESCRIPTORS    "NO_DESCRIPTORS"
#define HOPPER_R_NO_THREAD         "NO_THREAD"

/* FAILED_PRECONDITION */
#define HOPPER_R_LOST_CLAIM      "LOST_CLAIM"
#define HOPPER_R_NOT_DEAD        "NOT_DEAD"
#define HOPPER_R_BACKUP_DISABLED "BACKUP_DISABLED"
#define HOPPER_R_BACKUP_RUNNING  "BACKUP_RUNNING"
#define HOPPER_R_NOT_DELIVERING  "NOT_DELIVERING"
#define HOPPER_R_ALREADY_SETTLED "ALREADY_SETTLED"

/* UNIMPLEMENTED */
#define HOPPER_R_UNKNOWN_METHOD "UNKNOWN_METHOD"

/* INTERNAL */
#define HOPPER_R_STORE_ERROR   "STORE_ERROR"
#define HOPPER_R_IO_ERROR      "IO_ERROR"
#define HOPPER_R_BAD_RESPONSE  "BAD_RESPONSE"
#define HOPPER_R_BAD_METHOD    "BAD_METHOD"
#define HOPPER_R_NO_RANDOMNESS "NO_RANDOMNESS"

/* UNAVAILABLE */
#define HOPPER_R_SHUTTING_DOWN "SHUTTING_DOWN"
#define HOPPER_R_BUSY          "BUSY"
#define HOPPER_R_UNREACHABLE   "UNREACHABLE"

/* DATA_LOSS */
#define HOPPER_R_CORRUPT_RECORD "CORRUPT_RECORD"

/* UNAUTHENTICATED */
#define HOPPER_R_NO_TOKEN           "NO_TOKEN"
#define HOPPER_R_BAD_TOKEN          "BAD_TOKEN"
#define HOPPER_R_UNKNOWN_KEY        "UNKNOWN_KEY"
#define HOPPER_R_BAD_SIGNATURE      "BAD_SIGNATURE"
#define HOPPER_R_TOKEN_EXPIRED      "TOKEN_EXPIRED"
#define HOPPER_R_BAD_CALLBACK_TOKEN "BAD_CALLBACK_TOKEN"
#define HOPPER_R_CALLBACK_EXPIRED   "CALLBACK_EXPIRED"

/* CANCELLED */
#define HOPPER_R_CLOSED "CLOSED"
/* END reasons */

/* "OK", "INVALID_ARGUMENT", ..., "UNAUTHENTICATED"; "UNKNOWN_CODE" for a
 * number outside 0-16. Static storage. */
HOPPER_API const char *hopper_status_str(int code);

/* ---- Client -------------------------------------------------------- */

/* Where hopperd listens unless told otherwise (its --listen default;
 * config_test checks that the two agree). */
#define HOPPER_DEFAULT_URL "tcp://127.0.0.1:7450"

/* The lease hopperd gives a claim or an extend that asks for 0 ms, and the
 * worker's when its options leave lease_ms 0 (fault_clock_test checks that
 * hopperd agrees). */
#define HOPPER_DEFAULT_LEASE_MS 30000u

typedef struct hopper_client hopper_client; /* opaque */

typedef struct hopper_options {
    const char *token;   /* credential; NULL or "" = anonymous */
    const char *scope;   /* keyspace; NULL or "" = the broker's "default" */
    uint32_t timeout_ms; /* per call; 0 = 10000. Claim adds its wait_ms */
    /* Only for tls+tcp:// URLs (TLS 1.2 or 1.3, through OpenSSL).
     * tls_ca_file (PEM) is required and the broker's certificate is always
     * verified against it and against a name: tls_server_name, else the
     * URL's host; a DNS name is matched against the certificate's DNS
     * names, an IP address against its IP addresses. tls_cert_file and
     * tls_key_file (PEM; may be the same file) present a client
     * certificate. A failed handshake is UNAVAILABLE/UNREACHABLE, with
     * OpenSSL's reason in the message. */
    const char *tls_ca_file;
    const char *tls_server_name;
    const char *tls_cert_file;
    const char *tls_key_file;
    /* Largest reply accepted, in bytes; 0 = 64 MiB. A bigger reply fails
     * the call (INTERNAL/BAD_RESPONSE) and closes its connection. */
    size_t max_response_bytes;
} hopper_options;

/* Sets every field to its default (all NULL, timeout_ms 10000). */
HOPPER_API void hopper_options_init(hopper_options *o);

/*
 * Creates a client for url (NULL = HOPPER_DEFAULT_URL; "" is an
 * error); o may be NULL for defaults, and its strings are copied. Nothing
 * is dialled here: each call connects when it needs a connection, so this
 * does not fail when the broker is down, and a call made then returns
 * UNAVAILABLE (UNREACHABLE) at once for a refused connection, or when no
 * connection came up within its timeout. On HOPPER_OK, *out must be
 * released with hopper_close(). Fails with INVALID_ARGUMENT for a
 * malformed or unsupported URL (ipc:// is not offered) or TLS settings
 * (CA or client certificate files that do not load).
 */
HOPPER_API int hopper_connect(const char *url, const hopper_options *o,
                              hopper_client **out, hopper_status *st);

/* Closes the connection and frees c. NULL is a no-op. Calls still running
 * on c from other threads are a bug. */
HOPPER_API void hopper_close(hopper_client *c);

/* Frees a buffer returned by hopper_call(). NULL is a no-op. */
HOPPER_API void hopper_free(void *p);

/* ---- Claim tokens -------------------------------------------------- */

/* The 16-byte secret that settles one claim. Keep it private. */
typedef struct hopper_token {
    uint8_t b[16];
} hopper_token;

/* Writes 32 lowercase hex digits and a NUL to out. */
HOPPER_API void hopper_token_format(const hopper_token *t, char out[33]);

/* Parses exactly 32 hex digits (either case). Returns HOPPER_OK, or
 * HOPPER_INVALID_ARGUMENT leaving *out unchanged. */
HOPPER_API int hopper_token_parse(const char *hex, hopper_token *out);

/* ---- Messages ------------------------------------------------------ */

enum {
    HOPPER_STATE_ANY = 0, /* as a filter only */
    HOPPER_STATE_PENDING = 1,
    HOPPER_STATE_DELAYED = 2,
    HOPPER_STATE_CLAIMED = 3,
    HOPPER_STATE_DELIVERED = 4,
    HOPPER_STATE_DEAD = 5
};

typedef struct hopper_header {
    const char *key;   /* 1-256 bytes of UTF-8 */
    const char *value; /* UTF-8 */
} hopper_header;

/* A message to enqueue. Zero-initialise it; only lane is required. Every
 * pointer is borrowed for the duration of the call. */
typedef struct hopper_draft {
    const char *lane;
    const char *target; /* routing label; NULL = none */
    const void *payload;
    size_t payload_len;
    const hopper_header *headers;
    size_t n_headers;
    const char *dedupe_key;   /* NULL = no dedupe */
    uint64_t available_at_ms; /* Unix ms; 0 = now */
    uint64_t delay_ms;        /* relative form; give one or the other */
    uint32_t priority;        /* 0 (first, default) - 9 */
    uint32_t max_attempts;    /* 0 = the lane's setting */
    /* NULL = none. An http:// or https:// URL that gets a signed JSON event
     * on every transition of the message (docs/webhooks.md, "State
     * webhooks"); a bad one is HOPPER_INVALID_ARGUMENT/BAD_DELIVER_URL. */
    const char *state_webhook_url;
} hopper_draft;

/* The outcome of one enqueued draft. */
typedef struct hopper_enqueued {
    char id[27];    /* the message's 26-character ULID */
    bool duplicate; /* the dedupe key matched: id is the first message's */
} hopper_enqueued;

/* A message as returned by the broker. All pointers are owned by the
 * structure that holds it (a batch, a page, or a hopper_message from
 * hopper_get) and freed with it. Strings are NUL-terminated copies, "" when
 * absent; payload and result are NULL when empty. */
typedef struct hopper_message {
    char id[27];
    int state; /* HOPPER_STATE_* */
    char *lane;
    char *target;
    uint32_t priority;
    uint32_t attempts;
    uint32_t max_attempts;
    uint64_t created_at_ms;
    uint64_t available_at_ms;
    uint64_t lease_expires_at_ms; /* claimed messages */
    uint64_t finished_at_ms;      /* delivered or dead messages */
    hopper_token token;           /* only from hopper_claim; else zero */
    char *consumer;               /* who claimed it last */
    char *last_error;             /* last nack error or "lease expired" */
    void *payload;
    size_t payload_len;
    hopper_header *headers; /* key and value owned as above */
    size_t n_headers;
    void *result; /* delivered messages: the ack's result */
    size_t result_len;
    char *state_webhook_url; /* "" when the message sends no events */
} hopper_message;

/* Frees a message returned by hopper_get(). NULL is a no-op. */
HOPPER_API void hopper_message_free(hopper_message *m);

/*
 * Enqueues n drafts (1-1000) atomically: all or none. On HOPPER_OK,
 * out[i] (when out is not NULL) is draft i's outcome; out must have room
 * for n entries.
 */
HOPPER_API int hopper_enqueue(hopper_client *c, const hopper_draft *d, size_t n,
                              hopper_enqueued *out, hopper_status *st);

/*
 * The outcome of hopper_enqueue_async: code as hopper_enqueue's, st filled
 * when it is not HOPPER_OK, and on HOPPER_OK out[0..n) the drafts'
 * outcomes. Everything is valid only during the call.
 */
typedef void (*hopper_enqueue_cb)(void *arg, int code,
                                  const hopper_enqueued *out, size_t n,
                                  const hopper_status *st);

/*
 * Enqueue without waiting: the request is written to the client's
 * pipelining connection (dialled by the first async call) when it returns,
 * the drafts may be reused, and cb runs once, on the library's reader
 * thread, when the broker answered or the call timed out. Any number may
 * be in flight on one client, so one thread can keep a pipeline full; each
 * is its own request with its own request id, and replies may come in any
 * order. cb must not block; it may start more calls. Every cb must have
 * run before hopper_close() (calls still waiting then get CANCELLED). On
 * an error return (a broker that cannot be reached, for one) cb is not
 * called.
 */
HOPPER_API int hopper_enqueue_async(hopper_client *c, const hopper_draft *d,
                                    size_t n, hopper_enqueue_cb cb, void *arg,
                                    hopper_status *st);

/* Claim options; zero fields take the broker's defaults. */
typedef struct hopper_claim_opts {
    const char *target;   /* only this target; NULL = any target */
    bool untargeted_only; /* with no target: only untargeted messages */
    uint32_t max;         /* 1-1000; 0 = 1 */
    uint32_t lease_ms;    /* 100 ms - 24 h; 0 = HOPPER_DEFAULT_LEASE_MS */
    uint32_t wait_ms;     /* long-poll when nothing is due (max 30 s) */
    const char *consumer; /* who claims, for people; NULL = none */
} hopper_claim_opts;

typedef struct hopper_batch {
    size_t n;
    hopper_message *msgs; /* n messages in claim order, each with token */
} hopper_batch;

/* Frees a batch from hopper_claim(). NULL is a no-op. */
HOPPER_API void hopper_batch_free(hopper_batch *b);

/*
 * Claims up to o->max due messages of lane (o may be NULL for defaults).
 * With o->wait_ms, waits that long for a message when none is due; the
 * call's timeout is then timeout_ms + wait_ms. On HOPPER_OK, *out is a
 * batch (possibly with n == 0) to free with hopper_batch_free().
 */
HOPPER_API int hopper_claim(hopper_client *c, const char *lane,
                            const hopper_claim_opts *o, hopper_batch **out,
                            hopper_status *st);

typedef struct hopper_ack_item {
    const char *id;
    hopper_token token;
    const void *result; /* kept with the delivered message; may be NULL */
    size_t result_len;  /* up to 64 KiB */
} hopper_ack_item;

/*
 * Acks n claims (1-1000) and enqueues n_followups drafts in one commit:
 * all or nothing, so a lost claim (FAILED_PRECONDITION, LOST_CLAIM) fails
 * the whole call and no follow-up exists. followups_out, when not NULL,
 * gets n_followups outcomes.
 */
HOPPER_API int hopper_ack(hopper_client *c, const hopper_ack_item *items,
                          size_t n, const hopper_draft *followups,
                          size_t n_followups, hopper_enqueued *followups_out,
                          hopper_status *st);

/*
 * The per-item form of hopper_ack: each item gets its own outcome in
 * item_st[i] (n entries): code HOPPER_OK when it is acked (or was acked
 * before with the same token), else FAILED_PRECONDITION/LOST_CLAIM (the
 * claim is not held: the lease ran out, or it was nacked or claimed
 * again) or NOT_FOUND/NO_MESSAGE, with the broker's message. The good
 * items commit even when others fail. The follow-ups commit only if every
 * item is OK; then *followups_done is true and followups_out (when not
 * NULL) gets their n_followups outcomes, else none exist. Returns HOPPER_OK
 * whenever the broker answered with the outcomes, whatever they are; any
 * other code means nothing is known per item (bad input, such as a result
 * over 64 KiB, fails the whole call and acks nothing). followups_done may
 * be NULL. A repeat after a lost connection is answered with the first
 * outcomes.
 */
HOPPER_API int hopper_ack_each(hopper_client *c, const hopper_ack_item *items,
                               size_t n, const hopper_draft *followups,
                               size_t n_followups, hopper_status *item_st,
                               hopper_enqueued *followups_out,
                               bool *followups_done, hopper_status *st);

/* Acks one claim without result or follow-ups. */
HOPPER_API int hopper_ack1(hopper_client *c, const char *id,
                           const hopper_token *token, hopper_status *st);

/* Nack options; zero everything for the lane's backoff. */
typedef struct hopper_nack_opts {
    const char *error;             /* kept as last_error (up to 4 KiB UTF-8) */
    uint64_t retry_at_ms;          /* Unix ms; 0 with retry_in_ms 0 = backoff */
    uint64_t retry_in_ms;          /* relative form */
    const hopper_draft *followups; /* enqueued in the same commit */
    size_t n_followups;
    hopper_enqueued *followups_out; /* NULL or n_followups entries */
    /* Give it back without using an attempt (a snooze; a worker that
     * stops): the claim's attempt is taken back, so it never becomes a
     * dead letter; without a retry time it keeps its place in claim
     * order, and without error text its last error. */
    bool keep_attempt;
    /* A permanent failure: a dead letter now, whatever attempts remain.
     * Not with keep_attempt (INVALID_ARGUMENT/BAD_NACK). */
    bool dead_letter;
} hopper_nack_opts;

typedef struct hopper_nack_result {
    bool dead;            /* attempts used up: now a dead letter */
    uint64_t retry_at_ms; /* otherwise when it is claimable again */
} hopper_nack_result;

/* Gives a claim back (o and res may be NULL). */
HOPPER_API int hopper_nack(hopper_client *c, const char *id,
                           const hopper_token *token, const hopper_nack_opts *o,
                           hopper_nack_result *res, hopper_status *st);

/* Extends a held lease to lease_ms from now (100 ms - 24 h; 0 = the
 * default of hopper_claim_opts' lease_ms); the new expiry goes to
 * *expires_at_ms when not NULL. */
HOPPER_API int hopper_extend(hopper_client *c, const char *id,
                             const hopper_token *token, uint32_t lease_ms,
                             uint64_t *expires_at_ms, hopper_status *st);

/* Reads one message by id; on HOPPER_OK free *out with
 * hopper_message_free(). NOT_FOUND when there is none. */
HOPPER_API int hopper_get(hopper_client *c, const char *id,
                          hopper_message **out, hopper_status *st);

/*
 * Waits up to wait_ms (at most 30000; 0 looks once) for message id to be
 * settled: delivered (its result in (*out)->result) or dead (its last
 * error in (*out)->last_error). Request/reply: a producer enqueues, a
 * worker acks with a result, the producer awaits it. On HOPPER_OK *out is
 * the message without payload and headers (hopper_get has them), freed
 * with hopper_message_free(), or NULL when wait_ms ran out first.
 * NOT_FOUND when there is no such message (or no longer: purged, or acked
 * in a lane with retention 0, which keeps nothing). The call blocks for up
 * to wait_ms plus the client's timeout; the broker holds no thread for it.
 * Needs the produce or the consume permission.
 */
HOPPER_API int hopper_await(hopper_client *c, const char *id, uint32_t wait_ms,
                            hopper_message **out, hopper_status *st);

typedef struct hopper_page {
    size_t n;
    hopper_message *msgs;
    /* Pass back to get the next page; NULL / 0 when the listing is done.
     * A page may be short (even empty) and still have a cursor. */
    void *next_cursor;
    size_t next_cursor_len;
} hopper_page;

/* Frees a page from hopper_list() or hopper_dead_list(). NULL is a no-op. */
HOPPER_API void hopper_page_free(hopper_page *p);

/* A cursor (a page's next_cursor, a lane's targets_next_cursor) as text,
 * for a command line or a URL: 2 * len lower-case hex digits, to free with
 * hopper_free(); NULL when out of memory. cursor may be NULL when len is
 * 0. */
HOPPER_API char *hopper_cursor_format(const void *cursor, size_t len);

/* Parses the text of a cursor into *out (free with hopper_free()) and
 * *len. HOPPER_INVALID_ARGUMENT for anything but an even number of hex
 * digits (either case), HOPPER_RESOURCE_EXHAUSTED; *out is untouched
 * then. */
HOPPER_API int hopper_cursor_parse(const char *text, void **out, size_t *len);

/*
 * Lists lane's messages in state (HOPPER_STATE_ANY for all), limit per page
 * (0 = 100, max 1000), starting at cursor (NULL for the first page).
 * with_payload adds payload, headers and result. Free *out with
 * hopper_page_free().
 */
HOPPER_API int hopper_list(hopper_client *c, const char *lane, int state,
                           const void *cursor, size_t cursor_len,
                           uint32_t limit, bool with_payload, hopper_page **out,
                           hopper_status *st);

/* Lists lane's dead letters, oldest first; otherwise as hopper_list(). */
HOPPER_API int hopper_dead_list(hopper_client *c, const char *lane,
                                const void *cursor, size_t cursor_len,
                                uint32_t limit, bool with_payload,
                                hopper_page **out, hopper_status *st);

/* Whole-lane form when n_ids is 0: the oldest limit (0 = 100) dead letters;
 * *more says some remain. With ids, each must be a dead letter of lane or
 * nothing changes. *count gets how many were affected. */
HOPPER_API int hopper_dead_replay(hopper_client *c, const char *lane,
                                  const char *const *ids, size_t n_ids,
                                  uint32_t limit, uint64_t *count, bool *more,
                                  hopper_status *st);

/* Deletes dead letters; arguments as hopper_dead_replay(). */
HOPPER_API int hopper_dead_purge(hopper_client *c, const char *lane,
                                 const char *const *ids, size_t n_ids,
                                 uint32_t limit, uint64_t *count, bool *more,
                                 hopper_status *st);

/* ---- Workers ------------------------------------------------------- */

/*
 * The worker runtime: the claim loop every consumer needs, on one client.
 * It runs `concurrency` handler threads and claims with a long-poll for as
 * many messages as handlers are free, so nothing waits claimed while a
 * handler is busy. While a message is held (queued or in its handler) a
 * heartbeat thread extends its lease every lease_ms / 3. The handler
 * settles the message through its job (hopper_job_ack, _retry, _fail,
 * _snooze); one that returns without settling gets a retry after the
 * lane's backoff. When the broker is unreachable (it restarts, say) the
 * claim loop backs off (backoff_min_ms doubling to backoff_max_ms, with
 * jitter) and tries again, and a settle call is retried the same way while
 * the lease lasts; calls are safe to repeat (docs/protocol.md, "Retries").
 *
 * Stopping: hopper_worker_stop() stops the claiming; messages claimed but
 * not started are given back at once; running handlers have grace_ms to
 * finish (hopper_job_stopping() tells them to hurry). Past the grace, what
 * is still held is given back and hopper_job_cancelled() turns true: the
 * handler should abandon its work (its settle calls then fail with
 * FAILED_PRECONDITION/LOST_CLAIM). Giving back is a nack with
 * keep_attempt: it costs no attempt and the message keeps its place.
 */
typedef struct hopper_worker hopper_worker; /* opaque */
typedef struct hopper_job hopper_job;       /* opaque: one held message */

/* Runs on a handler thread, once per claimed message. It may block (that
 * is what the threads are for) and should settle the job before it
 * returns; the job and its message are valid until then. */
typedef void (*hopper_handler_fn)(void *arg, hopper_job *job);

/* Runs on a runtime thread when a call of the runtime fails (a claim, a
 * heartbeat, a give-back), for logging; it must not block long. what is
 * "claim", "extend", "settle" or "give back". */
typedef void (*hopper_worker_error_fn)(void *arg, const char *what,
                                       const hopper_status *st);

/* The worker's bounds on its options (the CLI's `hopper work` checks its
 * flags against them too). A lease is extended every third of it, so a
 * shorter one leaves no time for the heartbeat. */
#define HOPPER_WORKER_MAX_CONCURRENCY 1000u
#define HOPPER_WORKER_MIN_LEASE_MS    300u

typedef struct hopper_worker_opts {
    const char *lane;          /* required */
    const char *target;        /* only this target; NULL = any */
    const char *consumer;      /* who claims, for people; NULL = none */
    unsigned concurrency;      /* handler threads; 0 = 1; at most
                                * HOPPER_WORKER_MAX_CONCURRENCY */
    uint32_t lease_ms;         /* 0 = HOPPER_DEFAULT_LEASE_MS; at least
                                * HOPPER_WORKER_MIN_LEASE_MS; extended every
                                * third of it */
    uint32_t wait_ms;          /* claim long-poll; 0 = 5000, max 30000 */
    uint32_t grace_ms;         /* stop: time handlers get; 0 = 10000 */
    uint32_t backoff_min_ms;   /* unreachable broker: first wait; 0 = 100 */
    uint32_t backoff_max_ms;   /* and the longest; 0 = 5000 */
    hopper_handler_fn handler; /* required */
    void *handler_arg;
    hopper_worker_error_fn on_error; /* NULL = silent */
    void *error_arg;
} hopper_worker_opts;

/* Sets every field to its default (zero). */
HOPPER_API void hopper_worker_opts_init(hopper_worker_opts *o);

/*
 * Starts a worker on c with options o (strings copied). c must outlive
 * the worker and may be used by other threads meanwhile. On HOPPER_OK
 * *out runs until stopped: hopper_worker_stop(), then hopper_worker_wait()
 * and hopper_worker_free(). INVALID_ARGUMENT for bad options;
 * RESOURCE_EXHAUSTED/NO_THREAD when threads cannot be started.
 */
HOPPER_API int hopper_worker_start(hopper_client *c,
                                   const hopper_worker_opts *o,
                                   hopper_worker **out, hopper_status *st);

/* Asks w to stop, as described above, and returns at once. Any thread,
 * a handler included, and async-signal-safe (it sets a flag and writes a
 * byte to a pipe): a SIGTERM handler may call it. Repeats are no-ops. */
HOPPER_API void hopper_worker_stop(hopper_worker *w);

/*
 * Waits until w has stopped: every handler returned and every message it
 * held is settled or given back. Returns HOPPER_OK after a stop, or the
 * error that stopped it by itself: a claim refused for good
 * (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT such as a bad
 * lane name), copied to *st. Waits as long as the slowest handler and the
 * claim in flight (at most wait_ms plus the client's timeout). Not from a
 * handler. Call once.
 */
HOPPER_API int hopper_worker_wait(hopper_worker *w, hopper_status *st);

/* Frees w; stops and waits for it first if that was not done. NULL is a
 * no-op. Not from a handler. */
HOPPER_API void hopper_worker_free(hopper_worker *w);

/* Counts since the start, for monitoring and tests. */
typedef struct hopper_worker_counts {
    uint64_t claimed;    /* messages claimed */
    uint64_t acked;      /* settled by hopper_job_ack */
    uint64_t retried;    /* by hopper_job_retry, or an unsettled return */
    uint64_t failed;     /* by hopper_job_fail (dead letters) */
    uint64_t snoozed;    /* by hopper_job_snooze */
    uint64_t given_back; /* at stop, unstarted or past the grace */
    uint64_t lost;       /* claims found lost (a heartbeat or a settle) */
    uint64_t extended;   /* successful heartbeats */
    uint64_t errors;     /* failed calls reported to on_error */
} hopper_worker_counts;

/* A snapshot of w's counts. Any thread. */
HOPPER_API void hopper_worker_counts_get(hopper_worker *w,
                                         hopper_worker_counts *out);

/* The message the job holds, with its claim token; owned by the job. */
HOPPER_API const hopper_message *hopper_job_message(const hopper_job *j);

/* The worker running the job: a handler may hopper_worker_stop() it
 * (the pointer hopper_worker_start() hands back may not be stored yet
 * when the first handler runs). */
HOPPER_API hopper_worker *hopper_job_worker(const hopper_job *j);

/* The worker is stopping: finish soon, or the job is given back. */
HOPPER_API bool hopper_job_stopping(const hopper_job *j);

/* The claim is gone (given back past the grace, or a heartbeat found it
 * lost): abandon the work; settling will fail with LOST_CLAIM. */
HOPPER_API bool hopper_job_cancelled(const hopper_job *j);

/*
 * Settle the job, from its handler, once. Each returns HOPPER_OK, or
 * FAILED_PRECONDITION/LOST_CLAIM when the claim is gone (someone else may
 * process the message: make the work idempotent), or another error after
 * the retries the lease allowed. A second settle of one job is
 * FAILED_PRECONDITION/ALREADY_SETTLED, sent nowhere.
 *
 * ack: done, with an optional result (up to 64 KiB, kept with the
 * delivered message) and follow-up drafts enqueued in the same commit
 * (followups_out, when not NULL, gets their outcomes).
 * retry: a failed attempt; again after delay_ms (0 = the lane's backoff),
 * or a dead letter when it was the last attempt. error is kept as the
 * message's last_error.
 * fail: a permanent failure: a dead letter now, attempts left or not.
 * snooze: not now: back to pending after delay_ms without using an
 * attempt (a nack with keep_attempt).
 */
HOPPER_API int hopper_job_ack(hopper_job *j, const void *result,
                              size_t result_len, const hopper_draft *followups,
                              size_t n_followups,
                              hopper_enqueued *followups_out,
                              hopper_status *st);
HOPPER_API int hopper_job_retry(hopper_job *j, const char *error,
                                uint64_t delay_ms, hopper_status *st);
HOPPER_API int hopper_job_fail(hopper_job *j, const char *error,
                               hopper_status *st);
HOPPER_API int hopper_job_snooze(hopper_job *j, uint64_t delay_ms,
                                 hopper_status *st);

/* ---- Lanes --------------------------------------------------------- */

enum {
    HOPPER_BACKOFF_EXPONENTIAL = 0,
    HOPPER_BACKOFF_LINEAR = 1,
    HOPPER_BACKOFF_CONSTANT = 2
};

#define HOPPER_DELIVER_URL_MAX 2048

/* A lane's settings. The names in the comments are the update-mask words
 * for hopper_lane_update(). */
typedef struct hopper_lane_settings {
    uint32_t max_attempts;       /* "max_attempts" (default 5) */
    int backoff;                 /* "backoff": HOPPER_BACKOFF_* */
    uint64_t backoff_base_ms;    /* "backoff_base_ms" (default 1 s) */
    uint64_t backoff_cap_ms;     /* "backoff_cap_ms" (default 1 h) */
    uint32_t backoff_factor_pct; /* "backoff_factor_pct" (200 = x2) */
    uint32_t jitter_pct;         /* "jitter_pct" (+-, default 20) */
    uint64_t retention_ms;       /* "retention_ms" (default 1 h) */
    uint64_t dedupe_window_ms;   /* "dedupe_window_ms"; 0 = no dedupe */
    bool paused;                 /* "paused": accepts, hands out none */
    /* Delivery lanes (docs/webhooks.md): hopperd POSTs each message to
     * deliver_url ("" = workers claim the lane), signed with the scope's
     * secret named secret_id. hopper_lane_get and hopper_lane_update fill
     * these; hopper_stats and hopper_lanes leave them empty. */
    char deliver_url[HOPPER_DELIVER_URL_MAX + 1]; /* "deliver_url" */
    char secret_id[65];                           /* "secret_id" */
    uint32_t deliver_concurrency; /* "deliver_concurrency" (1-64) */
    uint32_t deliver_timeout_ms;  /* "deliver_timeout_ms" (100-300000) */
    /* "callback_timeout_ms" (1000-86400000, default 1 h): how long a
     * delivery answered 202 stays claimed, waiting for its callback. */
    uint32_t callback_timeout_ms;
} hopper_lane_settings;

typedef struct hopper_lane_stats {
    char *lane; /* owned by the stats */
    hopper_lane_settings settings;
    uint64_t pending;
    uint64_t delayed;
    uint64_t claimed;
    uint64_t delivered;
    uint64_t dead;
    uint64_t oldest_pending_age_ms; /* 0 when nothing is due */
    uint64_t enqueued_total;        /* totals since the lane was created */
    uint64_t dedupe_hits_total;
    uint64_t claimed_total;
    uint64_t acked_total;
    uint64_t nacked_total;
    uint64_t dead_total;
    uint64_t expired_total;
    uint64_t replayed_total;
    uint64_t purged_total;
    /* A page of the targets with pending or delayed messages ("" =
     * untargeted), sorted by length, then bytes. */
    char **targets;
    size_t n_targets;
    /* Owned by the stats; NULL / 0 when no targets follow, else pass it to
     * hopper_stats_page() for the next page. */
    void *targets_next_cursor;
    size_t targets_next_cursor_len;
} hopper_lane_stats;

/* Frees stats from hopper_stats(). NULL is a no-op. */
HOPPER_API void hopper_lane_stats_free(hopper_lane_stats *s);

/* Counters of one lane and the first page of its targets (up to the
 * broker's 1,000); free *out with hopper_lane_stats_free(). */
HOPPER_API int hopper_stats(hopper_client *c, const char *lane,
                            hopper_lane_stats **out, hopper_status *st);

/* The same with the page of targets chosen: targets_cursor from a previous
 * reply's targets_next_cursor (NULL for the first page), targets_limit per
 * page (0 = 1,000, at most 1,000). The counters come with every page. */
HOPPER_API int hopper_stats_page(hopper_client *c, const char *lane,
                                 const void *targets_cursor,
                                 size_t targets_cursor_len,
                                 uint32_t targets_limit,
                                 hopper_lane_stats **out, hopper_status *st);

typedef struct hopper_lane_list {
    size_t n;
    hopper_lane_stats *lanes; /* owned by the list */
    void *next_cursor;        /* NULL / 0 when done */
    size_t next_cursor_len;
} hopper_lane_list;

/* Frees a list from hopper_lanes(). NULL is a no-op. */
HOPPER_API void hopper_lane_list_free(hopper_lane_list *l);

/* The scope's lanes with their counters, a page at a time (limit 0 = 100,
 * cursor NULL for the first page); free *out with hopper_lane_list_free.
 * A page may hold fewer lanes than limit (it stops at the broker's frame
 * size) and each lane the first 100 of its targets: hopper_stats_page()
 * with the lane's targets_next_cursor lists the rest. */
HOPPER_API int hopper_lanes(hopper_client *c, const void *cursor,
                            size_t cursor_len, uint32_t limit,
                            hopper_lane_list **out, hopper_status *st);

/* Reads a lane's settings into *out. */
HOPPER_API int hopper_lane_get(hopper_client *c, const char *lane,
                               hopper_lane_settings *out, hopper_status *st);

/*
 * Changes the fields of s named in mask (1 or more of the words listed at
 * hopper_lane_settings); the others keep their value. Creates the lane if
 * needed. The resulting settings go to *out when not NULL.
 */
HOPPER_API int hopper_lane_update(hopper_client *c, const char *lane,
                                  const hopper_lane_settings *s,
                                  const char *const *mask, size_t n_mask,
                                  hopper_lane_settings *out, hopper_status *st);

/*
 * Stores the webhook signing secret secret_id of the client's scope
 * (docs/webhooks.md): value is 16-1024 bytes. rotate false makes it the
 * only active value; rotate true makes it the newest while the previous
 * one keeps signing beside it (the secret must exist: NOT_FOUND/
 * NO_SECRET). *active (may be NULL) gets the number of active values.
 * Write-only: nothing reads a secret back. Needs the admin permission.
 */
HOPPER_API int hopper_secret_set(hopper_client *c, const char *secret_id,
                                 const void *value, size_t value_len,
                                 bool rotate, uint32_t *active,
                                 hopper_status *st);

/* What a delivery lane's receiver answered one test POST. */
typedef struct hopper_webhook_answer {
    uint32_t status; /* HTTP status; 0: no answer (see error) */
    char outcome[8]; /* what a delivery would do: ack, dead, retry */
    uint64_t duration_ms;
    char error[512]; /* why there was no answer; "" otherwise */
    void *body;      /* the answer's first 64 KiB; owned */
    size_t body_len;
} hopper_webhook_answer;

/* Frees an answer from hopper_webhook_test(). NULL is a no-op. */
HOPPER_API void hopper_webhook_answer_free(hopper_webhook_answer *a);

/*
 * Has the broker send one signed test POST to lane's deliver_url, as its
 * deliveries are sent ({"hopper_test":true,...}, Hopper-Test: true), and
 * returns the receiver's answer in *out (free it with
 * hopper_webhook_answer_free). No message changes. FAILED_PRECONDITION/
 * NOT_DELIVERING for a lane without a deliver_url; NOT_FOUND/NO_SECRET
 * when its secret was never set. Needs the admin permission.
 */
HOPPER_API int hopper_webhook_test(hopper_client *c, const char *lane,
                                   hopper_webhook_answer **out,
                                   hopper_status *st);

/* Pauses (true) or resumes (false) handing out lane's messages. */
HOPPER_API int hopper_lane_pause(hopper_client *c, const char *lane,
                                 bool paused, hopper_status *st);

/* ---- Broker -------------------------------------------------------- */

typedef struct hopper_ping_info {
    char version[32];  /* the broker's version */
    uint64_t now_ms;   /* the broker's clock */
    char instance[33]; /* the store's identity */
    char warning[160]; /* non-empty: e.g. anonymous access off loopback */
} hopper_ping_info;

/* Checks the broker is alive; out may be NULL. */
HOPPER_API int hopper_ping(hopper_client *c, hopper_ping_info *out,
                           hopper_status *st);

typedef struct hopper_backup_info {
    char path[4300];      /* where the broker wrote it, on its host */
    uint64_t bytes;       /* size of the copy */
    uint64_t duration_ms; /* how long the copy took */
} hopper_backup_info;

/*
 * Asks the broker for a consistent, compacted copy of its whole store,
 * taken while traffic goes on, written as name (a plain file name) into
 * its --backup-dir. Needs the admin permission on scope "*". Waits for
 * the copy (up to the client's timeout plus 1 h). FAILED_PRECONDITION
 * BACKUP_DISABLED without --backup-dir, BACKUP_RUNNING while another
 * runs; ALREADY_EXISTS BACKUP_EXISTS for a name used before; INVALID_
 * ARGUMENT BAD_NAME. out may be NULL. Restoring: docs/operations.md.
 */
HOPPER_API int hopper_backup(hopper_client *c, const char *name,
                             hopper_backup_info *out, hopper_status *st);

/*
 * Escape hatch: calls method ("/hopper.v1.Broker/Enqueue", or just
 * "Enqueue") with body, the serialized request message, and timeout_ms
 * (0 = the client's). On HOPPER_OK, *resp_body is the serialized response
 * message (NULL when empty), to free with hopper_free().
 */
HOPPER_API int hopper_call(hopper_client *c, const char *method,
                           const void *body, size_t len, void **resp_body,
                           size_t *resp_len, uint32_t timeout_ms,
                           hopper_status *st);

#ifdef __cplusplus
}
#endif

#endif
