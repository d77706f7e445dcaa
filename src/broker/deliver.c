/*
 * deliver.c - the delivery part (deliver.h): one thread, one libcurl multi
 * handle, and the lanes whose settings carry a deliver_url.
 *
 * The thread alone touches curl, the lane table and the requests in
 * flight. It asks the writer for claims, acks and nacks with commit-queue
 * ops (struct dop); the writer applies each with the store call a worker's
 * rpc reaches, and its done callback only puts the op on d->done and wakes
 * the thread (curl_multi_wakeup is safe from any thread). An op's outcome
 * is final and durable when it comes back, so a request is sent only for a
 * claim that is on disk.
 *
 * A lane is claimed from while it has room (fewer than deliver_concurrency
 * requests in flight or being claimed) and is not idle. A claim that finds
 * fewer messages than asked makes the lane idle until the store says the
 * lane gained claimable messages (deliver_note_ready, after the commit
 * that made them so: an enqueue, a retry falling due, a resume), or
 * IDLE_RECHECK_MS pass. So an idle delivery lane costs no writer op, and
 * a claim that finds nothing writes nothing.
 *
 * Settings are read again every RELOAD_MS and when a note names a lane the
 * table does not know, so a lane set to deliver starts within a second or
 * at its first enqueue. A lane that stops delivering keeps its requests in
 * flight until they finish.
 *
 * State events (docs/webhooks.md, "State webhooks") travel the same road:
 * each scope whose lane STORE_EVENTS_LANE holds unsettled events
 * (store_events_each, read with the settings) is in the table as an
 * events lane, with concurrency 1 so a message's events are POSTed in the
 * order the store wrote them. An event goes to the URL in its
 * STORE_EVENT_URL_HEADER (never forwarded: a Hopper- name), signed with
 * the scope's secret DELIVER_EVENTS_SECRET; the answer acks, nacks or
 * dead-letters the event, never the message it reports.
 *
 * Shutdown (deliver_stop) cuts the requests in flight, whose messages stay
 * claimed until their leases end and are then delivered again, and waits
 * for every op still in the queue before the thread ends.
 */
#include "broker/deliver.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "broker/webhook.h"
#include "common/arena.h"
#include "common/compiler.h"
#include "common/log.h"
#include "common/names.h"
#include "common/reasons.h"

#define RELOAD_MS 1000
/* Notes for lanes the table does not know (most lanes do not deliver)
 * wake the thread, to read the settings again, at most this often. */
#define UNKNOWN_WAKE_MS  100
#define IDLE_RECHECK_MS  10000
#define MAX_NOTES        64
#define ERROR_BODY_MAX   256 /* bytes of an answer quoted in last_error */
#define ERROR_TEXT_MAX   512
#define DEFAULT_INFLIGHT 256
/* A message whose lane's secret cannot be read goes back, without using
 * an attempt, for this long; the lane claims nothing more meanwhile. */
#define NOT_SENT_RETRY_MS 10000
#define DELIVER_CONSUMER  "hopperd-deliver"

typedef struct dlane {
    hp_lane_key key;
    store_delivery d;      /* an events lane's: on_events() */
    bool events;           /* the scope's STORE_EVENTS_LANE */
    uint32_t busy;         /* requests in flight + messages being claimed */
    bool claiming;         /* a claim op is in the queue */
    bool noted;            /* gained messages while claiming */
    bool idle;             /* the last claim came back short */
    bool present;          /* in the settings at the last reload */
    uint64_t idle_at_mono; /* when it became idle */
    bool signable;         /* events: the scope's secret was found */
    bool held;             /* events: it was missing (and logged) */
    uint64_t held_until_mono;
} dlane;

typedef enum dop_kind {
    DOP_CLAIM,
    DOP_ACK,
    DOP_NACK,
    DOP_EXTEND, /* a 202 with a callback: lease_ms more to call back */
} dop_kind;

/* An op of this part on the commit queue; see the top of the file. */
typedef struct dop {
    commitq_op op;
    deliver *d;
    struct dop *next; /* d->mtx: the done list */
    dop_kind kind;
    hp_lane_key lane;
    hp_code code; /* the outcome, once done */
    hp_status st;
    /* DOP_CLAIM, DOP_EXTEND */
    uint32_t max, lease_ms;
    hp_arena arena;
    store_claimed res;
    /* DOP_ACK, DOP_NACK, DOP_EXTEND */
    hp_id id;
    store_token token;
    uint8_t *result; /* owned; the answer's body (ack) */
    size_t result_len;
    store_nack_mode mode;
    char error[ERROR_TEXT_MAX];
    bool has_retry_after;
    uint64_t retry_after_ms;
} dop;

/* Counters of one lane (deliver_stats_each); never freed before the part,
 * so a request may keep a pointer to its lane's. */
typedef struct dstat {
    hp_lane_key key;
    _Atomic uint64_t n[DELIVER_OUTCOMES][DELIVER_CLASSES];
    hp_hist latency_us;
} dstat;

/* One request in flight. */
typedef struct delivery {
    deliver *d;
    struct delivery *prev, *next; /* d->flying */
    hp_lane_key lane;
    hp_id id;
    store_token token;
    uint32_t timeout_ms;
    bool callback;                /* it carried Hopper-Callback */
    uint32_t callback_timeout_ms; /* the lane's, when it was sent */
    uint64_t sent_us;             /* monotonic */
    CURL *easy;
    struct curl_slist *headers;
    uint8_t *body;
    size_t body_len;
    uint8_t *resp; /* the answer's first max_result bytes */
    size_t resp_len, resp_cap;
    bool refused; /* the SSRF rule refused the address */
    char refused_addr[INET6_ADDRSTRLEN];
    char errbuf[CURL_ERROR_SIZE];
    /* deliver_test only: where the answer goes, and the URL (owned). */
    deliver_test_fn test_fn;
    void *test_arg;
    char *test_url;
} delivery;

struct deliver {
    deliver_opts o;
    char *user_agent;
    commitq *q;
    CURLM *multi;
    pthread_t thread;
    bool started;
    size_t max_result;

    pthread_mutex_t mtx;
    dop *done;                    /* mtx */
    bool stopping;                /* mtx */
    hp_lane_key notes[MAX_NOTES]; /* mtx: lanes that gained messages */
    size_t n_notes;               /* mtx */
    bool notes_all;               /* mtx: too many to note, any lane */
    delivery *tests;              /* mtx: deliver_test's, to launch */
    dstat **stats;                /* mtx: the array; counters atomic */
    size_t n_stats;               /* mtx */
    hp_lane_key *known;           /* mtx: the lane table's keys, as of the
                                     last reload */
    size_t n_known;               /* mtx */
    uint64_t unknown_wake_at;     /* mtx: next wake for an unknown lane */
    bool wake_pending;            /* mtx: a wake-up not yet taken */

    /* The part's thread only. */
    dlane *lanes;
    size_t n_lanes;
    uint32_t inflight; /* requests in flight, all lanes */
    uint32_t claiming; /* room asked for by claims not back yet */
    bool draining;     /* stopping: start no more requests */
    delivery *flying;  /* those requests */
    size_t queued;     /* ops in the commit queue */
    uint64_t reload_at_mono;
};

/* ---- ops: applied by the writer ------------------------------------------ */

static hp_code
claim_apply(commitq_op *op, store_txn *t, uint64_t now_ms, hp_status *st)
{
    dop *o = HP_CONTAINER_OF(op, dop, op);
    store_claim_req req = {
        .lane = hp_lane_key_lane(&o->lane),
        .any_target = true,
        .max = o->max,
        .lease_ms = o->lease_ms,
        .consumer = HP_S(DELIVER_CONSUMER),
    };
    /* Repeatable: a group applied again starts from an empty arena. */
    hp_arena_release(&o->arena);
    hp_arena_init(&o->arena);
    memset(&o->res, 0, sizeof(o->res));
    return store_claim(t, hp_lane_key_scope(&o->lane), &req, now_ms, &o->arena,
                       &o->res, st);
}

static hp_code
ack_apply(commitq_op *op, store_txn *t, uint64_t now_ms, hp_status *st)
{
    dop *o = HP_CONTAINER_OF(op, dop, op);
    store_ack_item it = { o->id, o->token, o->result, o->result_len };
    return store_ack(t, hp_lane_key_scope(&o->lane), &it, 1, NULL, 0, now_ms,
                     NULL, st);
}

static hp_code
nack_apply(commitq_op *op, store_txn *t, uint64_t now_ms, hp_status *st)
{
    dop *o = HP_CONTAINER_OF(op, dop, op);
    hp_str scope = hp_lane_key_scope(&o->lane);
    store_nack_req req = {
        .id = o->id,
        .token = o->token,
        .mode = o->mode,
        .error = hp_str_c(o->error),
    };
    store_nack_res res;

    /* Retry-After replaces the backoff, within the lane's cap. */
    if (o->has_retry_after && o->mode == STORE_NACK_RETRY) {
        req.retry_at_ms = store_retry_capped(
            t, scope, hp_lane_key_lane(&o->lane), o->retry_after_ms, now_ms);
    } else if (o->has_retry_after && o->mode == STORE_NACK_KEEP_ATTEMPT) {
        req.retry_at_ms = now_ms + o->retry_after_ms;
    }
    return store_nack(t, scope, &req, now_ms, NULL, &res, st);
}

static hp_code
extend_apply(commitq_op *op, store_txn *t, uint64_t now_ms, hp_status *st)
{
    dop *o = HP_CONTAINER_OF(op, dop, op);
    uint64_t expires_at_ms;
    return store_extend(t, hp_lane_key_scope(&o->lane), o->id, o->token,
                        o->lease_ms, now_ms, &expires_at_ms, st);
}

/* Writer thread: hands the op back to the part's thread. */
static void
op_done(commitq_op *op, hp_code code, const hp_status *st)
{
    dop *o = HP_CONTAINER_OF(op, dop, op);
    deliver *d = o->d;
    o->code = code;
    if (code != HP_OK) {
        o->st = *st;
    }
    pthread_mutex_lock(&d->mtx);
    o->next = d->done;
    d->done = o;
    pthread_mutex_unlock(&d->mtx);
    curl_multi_wakeup(d->multi);
}

static void
dop_free(dop *o)
{
    if (o != NULL) {
        hp_arena_release(&o->arena);
        free(o->result);
        free(o);
    }
}

static dop *
dop_new(deliver *d, dop_kind kind, const hp_lane_key *lane)
{
    dop *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        return NULL;
    }
    o->d = d;
    o->kind = kind;
    o->lane = *lane;
    hp_arena_init(&o->arena);
    o->op.apply = kind == DOP_CLAIM    ? claim_apply
                  : kind == DOP_ACK    ? ack_apply
                  : kind == DOP_EXTEND ? extend_apply
                                       : nack_apply;
    o->op.done = op_done;
    return o;
}

/* Queues o; false (o freed) when the queue refuses it: stopping. */
static bool
submit(deliver *d, dop *o)
{
    hp_status st;
    if (commitq_submit(d->q, &o->op, &st) != HP_OK) {
        dop_free(o);
        return false;
    }
    d->queued++;
    return true;
}

/* ---- lanes ----------------------------------------------------------------
 */

static dlane *
find_lane(deliver *d, const hp_lane_key *k)
{
    for (size_t i = 0; i < d->n_lanes; i++) {
        if (hp_lane_key_is(k, hp_lane_key_scope(&d->lanes[i].key),
                           hp_lane_key_lane(&d->lanes[i].key))) {
            return &d->lanes[i];
        }
    }
    return NULL;
}

/* Lane (scope, lane) of the table, added when new; NULL when out of
 * memory (the next reload tries again). */
static dlane *
lane_of(deliver *d, hp_str scope, hp_str lane)
{
    hp_lane_key k;
    hp_lane_key_set(&k, scope, lane);
    dlane *l = find_lane(d, &k);
    if (l == NULL) {
        dlane *grown = realloc(d->lanes, (d->n_lanes + 1) * sizeof(*grown));
        if (grown == NULL) {
            return NULL;
        }
        d->lanes = grown;
        l = &d->lanes[d->n_lanes++];
        memset(l, 0, sizeof(*l));
        l->key = k;
    }
    return l;
}

static void
on_setting(void *arg, hp_str scope, hp_str lane, const store_delivery *sd)
{
    /* The store refuses a deliver_url on the events lane. */
    dlane *l = hp_str_eq(lane, hp_str_c(STORE_EVENTS_LANE))
                   ? NULL
                   : lane_of(arg, scope, lane);
    if (l != NULL) {
        l->d = *sd;
        l->present = true;
    }
}

/* How a scope's events lane is delivered: one request at a time, so the
 * events of a message are sent in the order they were written; each to
 * its own URL (STORE_EVENT_URL_HEADER, so d.url stays empty), signed with
 * the scope's secret DELIVER_EVENTS_SECRET, cut at the default timeout. */
static void
on_events(void *arg, hp_str scope)
{
    dlane *l = lane_of(arg, scope, hp_str_c(STORE_EVENTS_LANE));
    if (l != NULL) {
        store_delivery_default(&l->d);
        l->d.concurrency = 1;
        snprintf(l->d.secret_id, sizeof(l->d.secret_id), "%s",
                 DELIVER_EVENTS_SECRET);
        l->events = true;
        l->present = true;
    }
}

typedef struct reload_arg {
    deliver *d;
    bool events;
} reload_arg;

static hp_code
reload_txn(store_txn *t, void *arg, hp_status *st)
{
    reload_arg *r = arg;
    hp_code code = store_delivery_each(t, on_setting, r->d, st);
    if (code == HP_OK && r->events) {
        code = store_events_each(t, on_events, r->d, st);
    }
    return code;
}

/* Tells deliver_note_ready which lanes the table holds, so that an
 * enqueue into a lane that does not deliver wakes nobody. */
static void
publish_known(deliver *d)
{
    pthread_mutex_lock(&d->mtx);
    hp_lane_key *k = d->n_lanes > d->n_known
                         ? realloc(d->known, d->n_lanes * sizeof(*k))
                         : d->known;
    if (k != NULL || d->n_lanes == 0) {
        d->known = k;
        for (size_t i = 0; i < d->n_lanes; i++) {
            d->known[i] = d->lanes[i].key;
        }
        d->n_known = d->n_lanes;
    } /* else: keep the older list; the next reload tries again */
    pthread_mutex_unlock(&d->mtx);
}

/* Reads the delivery settings again, and with events the scopes with
 * state events to send; lanes no longer delivering are dropped once
 * nothing of theirs is in flight. Only the reload every RELOAD_MS reads
 * the scopes: a note for an unknown lane (any enqueue to a lane that
 * does not deliver) comes with every commit, and an events lane that
 * gains an event is added by its own note (wake_lanes). */
static void
reload(deliver *d, uint64_t now_mono, bool events)
{
    hp_status st;
    reload_arg arg = { d, events };
    for (size_t i = 0; i < d->n_lanes; i++) {
        if (events || !d->lanes[i].events) {
            d->lanes[i].present = false;
        }
    }
    if (store_run(d->o.store, false, reload_txn, &arg, &st) != HP_OK) {
        hp_log(HP_LOG_WARN, "delivery settings unreadable", "code=%s reason=%s",
               hp_code_name(st.code), st.reason != NULL ? st.reason : "");
        for (size_t i = 0; i < d->n_lanes; i++) {
            d->lanes[i].present = true; /* keep what we had */
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < d->n_lanes; i++) {
        dlane *l = &d->lanes[i];
        if (l->present || l->busy > 0 || l->claiming) {
            d->lanes[n++] = *l;
        }
    }
    d->n_lanes = n;
    if (events) {
        d->reload_at_mono = now_mono + RELOAD_MS;
    }
    publish_known(d);
}

/* ---- requests --------------------------------------------------------------
 */

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    delivery *dl = arg;
    size_t len = size * n;
    size_t room = dl->resp_cap - dl->resp_len;
    size_t take = len < room ? len : room;
    if (take > 0) {
        memcpy(dl->resp + dl->resp_len, p, take);
        dl->resp_len += take;
    }
    return len; /* the rest is read and dropped: the result is capped */
}

/* curl's open-socket callback: the SSRF rule on the resolved address. */
static curl_socket_t
open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    delivery *dl = arg;
    (void)purpose;
    if (!webhook_addr_allowed(&a->addr, dl->d->o.allow_private)) {
        const void *in =
            a->family == AF_INET6
                ? (const void *)&(
                      (const struct sockaddr_in6 *)(const void *)&a->addr)
                      ->sin6_addr
                : (const void *)&(
                      (const struct sockaddr_in *)(const void *)&a->addr)
                      ->sin_addr;
        if (inet_ntop(a->family, in, dl->refused_addr,
                      sizeof(dl->refused_addr)) == NULL) {
            snprintf(dl->refused_addr, sizeof(dl->refused_addr), "?");
        }
        dl->refused = true;
        return CURL_SOCKET_BAD;
    }
    int fd = socket(a->family, a->socktype, a->protocol);
    if (fd >= 0) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0) {
            int rc = fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
            (void)rc; /* a leaked descriptor at exec is not worth failing */
        }
    }
    return fd;
}

static void
delivery_free(delivery *dl)
{
    if (dl == NULL) {
        return;
    }
    if (dl->easy != NULL) {
        curl_multi_remove_handle(dl->d->multi, dl->easy);
        curl_easy_cleanup(dl->easy);
    }
    if (dl->prev != NULL || dl->d->flying == dl) {
        *(dl->prev != NULL ? &dl->prev->next : &dl->d->flying) = dl->next;
        if (dl->next != NULL) {
            dl->next->prev = dl->prev;
        }
    }
    curl_slist_free_all(dl->headers);
    free(dl->test_url);
    free(dl->body);
    free(dl->resp);
    free(dl);
}

static bool add_header(delivery *dl, const char *fmt, ...) HP_PRINTF(2, 3);

static bool
add_header(delivery *dl, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        return true; /* too long to send: left out */
    }
    struct curl_slist *l = curl_slist_append(dl->headers, line);
    if (l == NULL) {
        return false;
    }
    dl->headers = l;
    return true;
}

/* A header value that could break the request (CR, LF, other controls)
 * is not sent. */
static bool
value_sendable(hp_str v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return false;
        }
    }
    return true;
}

static bool
build_headers(delivery *dl, const store_message *m, const char *sig)
{
    char id[HP_ID_TEXT_LEN + 1];
    bool typed = false;
    hp_id_format(&m->id, id);
    for (size_t i = 0; i < m->n_headers; i++) {
        const store_header *h = &m->headers[i];
        if (!webhook_header_sent(h->key.p, h->key.len) ||
            !value_sendable(h->value)) {
            continue;
        }
        typed = typed || (h->key.len == 12 &&
                          strncasecmp(h->key.p, "content-type", 12) == 0);
        if (!add_header(dl, "%.*s: %.*s", (int)h->key.len, h->key.p,
                        (int)h->value.len, h->value.p)) {
            return false;
        }
    }
    hp_str lane = hp_lane_key_lane(&dl->lane);
    return (typed ||
            add_header(dl, "Content-Type: application/octet-stream")) &&
           add_header(dl, "Hopper-Id: %s", id) &&
           add_header(dl, "Hopper-Lane: %.*s", (int)lane.len, lane.p) &&
           add_header(dl, "Hopper-Attempt: %u", (unsigned)m->attempts) &&
           add_header(dl, "Hopper-Signature: %s", sig) &&
           add_header(dl, "Expect:"); /* no 100-continue round trip */
}

/* Sets dl's easy handle up for a POST of its body with its headers to url
 * and adds it to the multi handle: in flight from here. */
static bool
launch(deliver *d, delivery *dl, const char *url)
{
    CURL *e = dl->easy = curl_easy_init();
    if (e == NULL || curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, (char *)dl->body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)dl->body_len) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, dl->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERAGENT, d->user_agent) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)dl->timeout_ms) !=
            CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, dl) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket) !=
            CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, dl) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, dl->errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, dl) != CURLE_OK ||
        curl_multi_add_handle(d->multi, e) != CURLM_OK) {
        return false;
    }
    dl->sent_us = hp_mono_us();
    dl->next = d->flying;
    if (d->flying != NULL) {
        d->flying->prev = dl;
    }
    d->flying = dl;
    d->inflight++;
    return true;
}

/* A delivery of body_len bytes (body copied when not NULL) that keeps up
 * to the store's max_result bytes of the answer; NULL when out of memory. */
static delivery *
delivery_new(deliver *d, const hp_lane_key *lane, const void *body,
             size_t body_len, uint32_t timeout_ms)
{
    delivery *dl = calloc(1, sizeof(*dl));
    if (dl == NULL) {
        return NULL;
    }
    dl->d = d;
    dl->lane = *lane;
    dl->timeout_ms = timeout_ms;
    dl->body = malloc(body_len > 0 ? body_len : 1);
    dl->resp_cap = d->max_result;
    dl->resp = malloc(dl->resp_cap > 0 ? dl->resp_cap : 1);
    if (dl->body == NULL || dl->resp == NULL) {
        delivery_free(dl);
        return NULL;
    }
    if (body_len > 0 && body != NULL) {
        memcpy(dl->body, body, body_len);
    }
    dl->body_len = body_len;
    return dl;
}

/* Hopper-Callback for dl's claim, when the part has callbacks and l is a
 * delivery lane (an event's receiver has no claim to settle). The token
 * lives until the lease a 202 would give has ended, and a margin more,
 * at most CALLBACK_EXPIRY_MAX_MS. */
static bool
add_callback(deliver *d, const dlane *l, delivery *dl, uint64_t now_wall_ms)
{
    char url[CALLBACK_URL_MAX + 1];
    if (d->o.cb == NULL || l->events) {
        return true;
    }
    uint64_t life = (uint64_t)dl->timeout_ms + DELIVER_LEASE_SLACK_MS +
                    l->d.callback_timeout_ms + CALLBACK_EXPIRY_MARGIN_MS;
    if (life > CALLBACK_EXPIRY_MAX_MS) {
        life = CALLBACK_EXPIRY_MAX_MS;
    }
    callback_url(d->o.cb, &dl->lane, &dl->id, &dl->token, now_wall_ms + life,
                 url);
    dl->callback = true;
    dl->callback_timeout_ms = l->d.callback_timeout_ms;
    return add_header(dl, "Hopper-Callback: %s", url);
}

/* Makes the request for m, claimed in lane l, to url, cut after
 * timeout_ms; false when it cannot be built (out of memory). */
static bool
start_request(deliver *d, dlane *l, const store_message *m, const char *url,
              const store_secret *sec, uint32_t timeout_ms,
              uint64_t now_wall_ms)
{
    char sig[WEBHOOK_SIG_MAX];
    delivery *dl =
        delivery_new(d, &l->key, m->payload, m->payload_len, timeout_ms);
    if (dl == NULL) {
        return false;
    }
    dl->id = m->id;
    dl->token = m->token;
    webhook_sign(sec, (int64_t)(now_wall_ms / 1000), dl->body, dl->body_len,
                 sig);
    bool ok = build_headers(dl, m, sig) &&
              add_callback(d, l, dl, now_wall_ms) && launch(d, dl, url);
    OPENSSL_cleanse(sig, sizeof(sig));
    if (!ok) {
        delivery_free(dl);
        return false;
    }
    l->busy++;
    return true;
}

/* Text of at most n bytes of p that a nack's error takes: valid UTF-8
 * without NUL, cut at the first byte that is not. */
static size_t
quote(const uint8_t *p, size_t len, char *out, size_t n)
{
    size_t take = len < n ? len : n;
    take = hp_utf8_prefix((const char *)p, take);
    memcpy(out, p, take);
    return take;
}

/* The counters of lane k, made on first use; NULL when out of memory
 * (the delivery is then not counted). */
static dstat *
stat_of(deliver *d, const hp_lane_key *k)
{
    dstat *s = NULL;
    pthread_mutex_lock(&d->mtx);
    for (size_t i = 0; i < d->n_stats && s == NULL; i++) {
        if (hp_lane_key_is(k, hp_lane_key_scope(&d->stats[i]->key),
                           hp_lane_key_lane(&d->stats[i]->key))) {
            s = d->stats[i];
        }
    }
    if (s == NULL) {
        dstat **grown = realloc(d->stats, (d->n_stats + 1) * sizeof(*grown));
        if (grown != NULL) {
            d->stats = grown;
            s = calloc(1, sizeof(*s));
        }
        if (s != NULL) {
            s->key = *k;
            hp_hist_init(&s->latency_us, hp_hist_us_bounds, hp_hist_us_n);
            d->stats[d->n_stats++] = s;
        }
    }
    pthread_mutex_unlock(&d->mtx);
    return s;
}

static void
count(deliver *d, const delivery *dl, webhook_outcome out, long status)
{
    dstat *s = stat_of(d, &dl->lane);
    size_t class = status >= 100 && status <= 599 ? (size_t)(status / 100) : 0;
    if (s != NULL) {
        atomic_fetch_add_explicit(&s->n[out][class], 1, memory_order_relaxed);
        hp_hist_observe(&s->latency_us, hp_mono_us() - dl->sent_us);
    }
}

void
deliver_stats_each(deliver *d, deliver_stats_fn fn, void *arg)
{
    if (d == NULL) {
        return;
    }
    pthread_mutex_lock(&d->mtx);
    for (size_t i = 0; i < d->n_stats; i++) {
        const dstat *s = d->stats[i];
        deliver_lane_stats ls = {
            .scope = hp_lane_key_scope(&s->key),
            .lane = hp_lane_key_lane(&s->key),
            .latency_us = &s->latency_us,
        };
        for (size_t o = 0; o < DELIVER_OUTCOMES; o++) {
            for (size_t c = 0; c < DELIVER_CLASSES; c++) {
                ls.n[o][c] =
                    atomic_load_explicit(&s->n[o][c], memory_order_relaxed);
            }
        }
        fn(arg, &ls);
    }
    pthread_mutex_unlock(&d->mtx);
}

/* Why a request got no useful answer, for last_error: the refused
 * address, the timeout, curl's words, or the status and the start of the
 * body. Valid UTF-8, at most n - 1 bytes. */
static void
describe(const delivery *dl, CURLcode rc, long status, char *out, size_t n)
{
    char body[ERROR_BODY_MAX + 1];
    size_t bn = quote(dl->resp, dl->resp_len, body, ERROR_BODY_MAX);
    body[bn] = '\0';
    if (dl->refused && rc != CURLE_OK) {
        /* Only when no answer came: another address may have answered. */
        snprintf(out, n,
                 "address refused: %s is private (hopperd "
                 "--webhook-allow-private)",
                 dl->refused_addr);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(out, n, "timeout after %u ms", (unsigned)dl->timeout_ms);
    } else if (rc != CURLE_OK) {
        snprintf(out, n, "%s",
                 dl->errbuf[0] != '\0' ? dl->errbuf : curl_easy_strerror(rc));
    } else {
        snprintf(out, n, "http %ld: %s", status, body);
    }
    out[hp_utf8_prefix(out, strlen(out))] = '\0';
}

/* A test request (deliver_test) finished, or was cut (rc CURLE_ABORTED_BY_
 * CALLBACK with error set): its caller gets the answer. */
static void
finish_test(deliver *d, delivery *dl, CURLcode rc, long status,
            const char *error)
{
    char why[ERROR_TEXT_MAX];
    deliver_test_result r = {
        .status = status,
        .outcome =
            (int)(rc == CURLE_OK ? webhook_outcome_of(status) : WEBHOOK_RETRY),
        .body = dl->resp,
        .body_len = dl->resp_len,
        .duration_ms =
            dl->sent_us != 0 ? (hp_mono_us() - dl->sent_us) / 1000 : 0,
    };
    if (error != NULL) {
        r.error = error;
    } else if (rc != CURLE_OK) {
        describe(dl, rc, status, why, sizeof(why));
        r.error = why;
    }
    r.outcome_name = webhook_outcome_name((webhook_outcome)r.outcome);
    dl->test_fn(dl->test_arg, &r);
    if (dl->sent_us != 0) {
        d->inflight--;
    }
    delivery_free(dl);
}

/* A finished request becomes an ack or a nack. */
static void
finish_request(deliver *d, delivery *dl, CURLcode rc)
{
    long status = 0;
    dlane *l = find_lane(d, &dl->lane);
    dop *o = NULL;
    if (rc == CURLE_OK) {
        CURLcode info =
            curl_easy_getinfo(dl->easy, CURLINFO_RESPONSE_CODE, &status);
        if (info != CURLE_OK) {
            status = 0;
        }
    }
    if (dl->test_fn != NULL) {
        finish_test(d, dl, rc, status, NULL);
        return;
    }
    webhook_outcome out =
        rc == CURLE_OK ? webhook_outcome_of(status) : WEBHOOK_RETRY;
    if (out == WEBHOOK_ACK && status == 202 && dl->callback) {
        out = WEBHOOK_ACCEPTED;
    }
    count(d, dl, out, status);
    o = dop_new(d,
                out == WEBHOOK_ACK        ? DOP_ACK
                : out == WEBHOOK_ACCEPTED ? DOP_EXTEND
                                          : DOP_NACK,
                &dl->lane);
    if (o != NULL) {
        o->id = dl->id;
        o->token = dl->token;
        if (out == WEBHOOK_ACCEPTED) {
            /* The receiver calls back (or the lease decides). */
            o->lease_ms = dl->callback_timeout_ms;
        } else if (out == WEBHOOK_ACK) {
            o->result = dl->resp; /* the op owns it now */
            o->result_len = dl->resp_len;
            dl->resp = NULL;
        } else {
            o->mode = out == WEBHOOK_DEAD ? STORE_NACK_DEAD : STORE_NACK_RETRY;
            describe(dl, rc, status, o->error, sizeof(o->error));
            struct curl_header *h = NULL;
            if (rc == CURLE_OK &&
                curl_easy_header(dl->easy, "Retry-After", 0, CURLH_HEADER, -1,
                                 &h) == CURLHE_OK &&
                h != NULL &&
                webhook_retry_after_ms(
                    h->value, (int64_t)(hp_clock_now_ms(d->o.clock) / 1000),
                    &o->retry_after_ms)) {
                o->has_retry_after = true;
            }
        }
        hp_log(HP_LOG_DEBUG, "delivered", "lane=%.*s status=%ld outcome=%s",
               (int)hp_lane_key_lane(&dl->lane).len,
               hp_lane_key_lane(&dl->lane).p, status,
               webhook_outcome_name(out));
        submit(d, o);
    }
    if (l != NULL && l->busy > 0) {
        l->busy--;
    }
    d->inflight--;
    delivery_free(dl);
}

static void
collect_finished(deliver *d)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        delivery *dl = NULL;
        CURLcode rc = msg->data.result;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &dl) ==
                CURLE_OK &&
            dl != NULL) {
            finish_request(d, dl, rc);
        }
    }
}

/* ---- claims ---------------------------------------------------------------
 */

typedef struct secret_read {
    hp_str scope, id;
    store_secret *out;
} secret_read;

static hp_code
secret_txn(store_txn *t, void *arg, hp_status *st)
{
    secret_read *r = arg;
    return store_secret_get(t, r->scope, r->id, r->out, st);
}

/* The URL an event goes to, from its STORE_EVENT_URL_HEADER, into
 * out[n]; false when it has none (or one too long to be the store's). */
static bool
event_url(const store_message *m, char *out, size_t n)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        const store_header *h = &m->headers[i];
        if (hp_str_eq(h->key, hp_str_c(STORE_EVENT_URL_HEADER)) &&
            h->value.len > 0 && h->value.len < n &&
            memchr(h->value.p, '\0', h->value.len) == NULL) {
            memcpy(out, h->value.p, h->value.len);
            out[h->value.len] = '\0';
            return true;
        }
    }
    return false;
}

/* Gives m back unsent: KEEP_ATTEMPT (claimable again in
 * NOT_SENT_RETRY_MS, no attempt used) or DEAD, with why as its error. */
static void
not_sent(deliver *d, const dlane *l, const store_message *m,
         store_nack_mode mode, const char *why)
{
    dop *nack = dop_new(d, DOP_NACK, &l->key);
    if (nack == NULL) {
        return; /* its lease runs out */
    }
    nack->id = m->id;
    nack->token = m->token;
    nack->mode = mode;
    if (mode == STORE_NACK_KEEP_ATTEMPT) {
        nack->has_retry_after = true;
        nack->retry_after_ms = NOT_SENT_RETRY_MS;
    }
    snprintf(nack->error, sizeof(nack->error), "not sent: %s", why);
    submit(d, nack);
}

/* A claim came back: each message becomes a request, or a nack when the
 * lane's secret cannot be read. */
static void
claimed(deliver *d, dop *o)
{
    dlane *l = find_lane(d, &o->lane);
    size_t n = o->code == HP_OK ? o->res.n : 0;
    store_secret *sec = malloc(sizeof(*sec));
    hp_status st;
    hp_code code = HP_OK;

    d->claiming -= o->max;
    if (l == NULL) {
        free(sec);
        return; /* cannot happen: a claiming lane is kept */
    }
    l->claiming = false;
    l->busy -= o->max;
    if (o->code != HP_OK) {
        hp_log(HP_LOG_WARN, "delivery claim failed", "code=%s reason=%s",
               hp_code_name(o->code), o->st.reason ? o->st.reason : "");
    }
    /* A note that came while the claim was out may name messages it did
     * not see (their commit came after the claim's): then the lane is not
     * idle, or they would wait for IDLE_RECHECK_MS. */
    if (n < o->max && !l->noted) {
        l->idle = true;
        l->idle_at_mono = hp_mono_ms();
    }
    l->noted = false;
    if (n == 0 || d->draining) {
        /* While stopping, what was claimed waits for its lease. */
        free(sec);
        return;
    }
    if (sec == NULL) {
        code = hp_status_set(&st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    } else {
        secret_read r = { hp_lane_key_scope(&l->key), hp_str_c(l->d.secret_id),
                          sec };
        commitq_wait_visible(d->q); /* a secret set just now signs */
        code = store_run(d->o.store, false, secret_txn, &r, &st);
    }
    uint64_t now_wall = hp_clock_now_ms(d->o.clock);
    for (size_t i = 0; i < n; i++) {
        const store_message *m = &o->res.msgs[i];
        char url[STORE_DELIVER_URL_MAX + 1];
        if (l->events && !event_url(m, url, sizeof(url))) {
            /* Only a worker's hand or damage gets here: the store writes
             * every event with its URL. Never sendable, so dead. */
            not_sent(d, l, m, STORE_NACK_DEAD,
                     "event without a " STORE_EVENT_URL_HEADER " header");
            continue;
        }
        /* The timeout the lease was sized for, not today's setting: a
         * reload in between must not let a request outlive its lease. */
        if (code == HP_OK &&
            start_request(d, l, m, l->events ? url : l->d.url, sec,
                          o->lease_ms - DELIVER_LEASE_SLACK_MS, now_wall)) {
            continue;
        }
        /* Nothing was sent, so no attempt is used: a secret_id with a
         * typo must not empty the lane into the dead letters. */
        not_sent(d, l, m, STORE_NACK_KEEP_ATTEMPT,
                 code != HP_OK ? st.msg : "out of memory");
    }
    if (code != HP_OK) {
        l->idle = true;
        l->idle_at_mono = hp_mono_ms();
    }
    if (sec != NULL) {
        store_secret_clear(sec);
        free(sec);
    }
}

static void
take_done(deliver *d, dop *list)
{
    while (list != NULL) {
        dop *o = list;
        list = o->next;
        d->queued--;
        if (o->kind == DOP_CLAIM) {
            claimed(d, o);
        } else if (o->kind == DOP_EXTEND && o->st.reason != NULL &&
                   strcmp(o->st.reason, HP_R_LOST_CLAIM) == 0) {
            /* The receiver called back (complete or fail) before its 202
             * reached the writer: the callback settled it, as it should. */
            hp_log(HP_LOG_DEBUG, "202 after its callback", "code=%s reason=%s",
                   hp_code_name(o->code), o->st.reason);
        } else if (o->code != HP_OK) {
            /* LOST_CLAIM of an ack or nack: the lease ran out first and the
             * message is delivered again. Anything else (a full disk) left
             * the claim as it was, to run out and deliver again too. */
            hp_log(HP_LOG_WARN, "delivery outcome not recorded",
                   "op=%s code=%s reason=%s",
                   o->kind == DOP_ACK      ? "ack"
                   : o->kind == DOP_EXTEND ? "extend"
                                           : "nack",
                   hp_code_name(o->code), o->st.reason ? o->st.reason : "");
        }
        dop_free(o);
    }
}

/* An events lane claims only once its scope's secret exists: an event
 * claimed and given back unsent would come after the events written in
 * the meantime, and a message's events must arrive in order. Until the
 * secret is set the lane is held (nothing claimed, nothing written), and
 * looked at again every NOT_SENT_RETRY_MS. Secrets are replaced, never
 * removed, so one found is not looked for again; claimed() still copes
 * with one that cannot be read. */
static bool
events_signable(deliver *d, dlane *l, uint64_t now_mono)
{
    store_secret sec;
    hp_status st;
    if (l->signable) {
        return true;
    }
    if (now_mono < l->held_until_mono) {
        return false;
    }
    secret_read r = { hp_lane_key_scope(&l->key), hp_str_c(l->d.secret_id),
                      &sec };
    commitq_wait_visible(d->q);
    hp_code code = store_run(d->o.store, false, secret_txn, &r, &st);
    store_secret_clear(&sec);
    if (code == HP_OK) {
        l->signable = true;
        l->held = false;
        return true;
    }
    if (!l->held) {
        hp_str scope = hp_lane_key_scope(&l->key);
        hp_log(HP_LOG_WARN, "state events held", "scope=%.*s code=%s why=%s",
               (int)scope.len, scope.p, hp_code_name(code), st.msg);
    }
    l->held = true;
    l->held_until_mono = now_mono + NOT_SENT_RETRY_MS;
    return false;
}

static void
start_claims(deliver *d, uint64_t now_mono)
{
    uint32_t max_inflight =
        d->o.max_inflight != 0 ? d->o.max_inflight : DEFAULT_INFLIGHT;
    for (size_t i = 0; i < d->n_lanes; i++) {
        dlane *l = &d->lanes[i];
        if (l->idle && now_mono - l->idle_at_mono >= IDLE_RECHECK_MS) {
            l->idle = false;
        }
        /* Claims not back yet count against the cap too: every lane of
         * one pass would otherwise see the same room. */
        uint32_t used = d->inflight + d->claiming;
        if (!l->present || l->idle || l->claiming ||
            l->busy >= l->d.concurrency || used >= max_inflight ||
            (l->events && !events_signable(d, l, now_mono))) {
            continue;
        }
        uint32_t room = l->d.concurrency - l->busy;
        if (room > max_inflight - used) {
            room = max_inflight - used;
        }
        dop *o = dop_new(d, DOP_CLAIM, &l->key);
        if (o == NULL) {
            return;
        }
        o->max = room;
        o->lease_ms = l->d.timeout_ms + DELIVER_LEASE_SLACK_MS;
        if (!submit(d, o)) {
            return;
        }
        l->claiming = true;
        l->busy += room;
        d->claiming += room;
    }
}

/* ---- the thread ------------------------------------------------------------
 */

static void
wake_lanes(deliver *d, const hp_lane_key *notes, size_t n, bool all,
           bool *unknown)
{
    for (size_t i = 0; i < d->n_lanes; i++) {
        if (all) {
            d->lanes[i].idle = false;
            d->lanes[i].noted = d->lanes[i].noted || d->lanes[i].claiming;
        }
    }
    for (size_t i = 0; i < n; i++) {
        dlane *l = find_lane(d, &notes[i]);
        if (l != NULL) {
            l->idle = false;
            l->noted = l->noted || l->claiming;
        } else if (hp_str_eq(hp_lane_key_lane(&notes[i]),
                             hp_str_c(STORE_EVENTS_LANE))) {
            on_events(d, hp_lane_key_scope(&notes[i])); /* its first event */
        } else {
            *unknown = true;
        }
    }
}

static void *
run(void *arg)
{
    deliver *d = arg;
    hp_lane_key notes[MAX_NOTES];
    int running = 0;

    reload(d, hp_mono_ms(), true);
    for (;;) {
        pthread_mutex_lock(&d->mtx);
        bool stopping = d->stopping;
        d->draining = stopping;
        bool all = d->notes_all;
        size_t n = d->n_notes;
        dop *done = d->done;
        delivery *tests = d->tests;
        d->tests = NULL;
        memcpy(notes, d->notes, n * sizeof(notes[0]));
        d->done = NULL;
        d->n_notes = 0;
        d->notes_all = false;
        d->wake_pending = false;
        pthread_mutex_unlock(&d->mtx);

        take_done(d, done);
        while (tests != NULL) {
            delivery *t = tests;
            tests = t->next;
            t->next = NULL;
            if (stopping) {
                finish_test(d, t, CURLE_ABORTED_BY_CALLBACK, 0,
                            "hopperd is stopping");
            } else if (!launch(d, t, t->test_url)) {
                finish_test(d, t, CURLE_OUT_OF_MEMORY, 0, "out of memory");
            }
        }
        if (stopping) {
            break;
        }
        uint64_t now = hp_mono_ms();
        bool unknown = false;
        wake_lanes(d, notes, n, all, &unknown);
        bool full = now >= d->reload_at_mono;
        if (unknown || full) {
            reload(d, now, full);
            wake_lanes(d, notes, n, all, &unknown);
        }
        start_claims(d, now);
        curl_multi_perform(d->multi, &running);
        collect_finished(d);
        curl_multi_poll(d->multi, NULL, 0, RELOAD_MS, NULL);
    }

    /* Cut every request: its message stays claimed until its lease ends,
     * then it is delivered again. Then wait for the ops in the queue. */
    while (d->flying != NULL) {
        if (d->flying->test_fn != NULL) {
            finish_test(d, d->flying, CURLE_ABORTED_BY_CALLBACK, 0,
                        "hopperd is stopping");
            continue;
        }
        d->inflight--;
        delivery_free(d->flying);
    }
    while (d->queued > 0) {
        pthread_mutex_lock(&d->mtx);
        dop *done = d->done;
        d->done = NULL;
        pthread_mutex_unlock(&d->mtx);
        take_done(d, done);
        if (d->queued > 0) {
            curl_multi_poll(d->multi, NULL, 0, 100, NULL);
        }
    }
    return NULL;
}

/* ---- the interface
 * ------------------------------------------------------------ */

hp_code
deliver_new(const deliver_opts *o, deliver **out, hp_status *st)
{
    deliver *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    d->o = *o;
    d->user_agent = strdup(o->user_agent != NULL ? o->user_agent : "hopperd");
    if (d->user_agent == NULL) {
        free(d);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    /* curl_global_init is not thread-safe before 7.84; Debian 12 has
     * 7.88, where it is, and it is reference-counted. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        (d->multi = curl_multi_init()) == NULL) {
        free(d->user_agent);
        free(d);
        return hp_status_set(st, HP_INTERNAL, HP_R_CURL_FAILED,
                             "libcurl did not start");
    }
    pthread_mutex_init(&d->mtx, NULL);
    *out = d;
    return HP_OK;
}

hp_code
deliver_start(deliver *d, store *s, commitq *q, hp_status *st)
{
    d->o.store = s;
    d->q = q;
    d->max_result = store_get_limits(s)->max_result;
    int rc = pthread_create(&d->thread, NULL, run, d);
    if (rc != 0) {
        return hp_status_from_errno(st, rc, "cannot start the delivery thread");
    }
    pthread_mutex_lock(&d->mtx); /* deliver_test reads it elsewhere */
    d->started = true;
    pthread_mutex_unlock(&d->mtx);
    return HP_OK;
}

static bool
known_lane(const deliver *d, hp_str scope, hp_str lane)
{
    for (size_t i = 0; i < d->n_known; i++) {
        if (hp_lane_key_is(&d->known[i], scope, lane)) {
            return true;
        }
    }
    return false;
}

/* Called after every commit that made messages claimable, from the
 * writer's thread: the common case, a lane that does not deliver, must
 * cost a lookup and no wake-up (strace -c on hopperd during W1 1 conn:
 * 5,006 wake-ups of this thread for 5,000 messages before, 94 after). */
void
deliver_note_ready(deliver *d, hp_str scope, hp_str lane)
{
    if (d == NULL || d->multi == NULL) {
        return;
    }
    bool wake = false;
    pthread_mutex_lock(&d->mtx);
    if (scope.len == 0) {
        /* the store's "any lane" (a commit of many) */
        if (d->n_known > 0) {
            d->notes_all = true;
            wake = true;
        }
    } else {
        /* A scope's events lane joins the table at its first event. */
        bool known = known_lane(d, scope, lane) ||
                     hp_str_eq(lane, hp_str_c(STORE_EVENTS_LANE));
        uint64_t now = known ? 0 : hp_mono_ms();
        if (known || now >= d->unknown_wake_at) {
            /* An unknown lane may have been set to deliver since the last
             * reload; the note makes the thread read the settings. */
            if (!known) {
                d->unknown_wake_at = now + UNKNOWN_WAKE_MS;
            }
            wake = true;
            bool seen = false;
            for (size_t i = 0; i < d->n_notes && !seen; i++) {
                seen = hp_lane_key_is(&d->notes[i], scope, lane);
            }
            if (seen) {
                /* already noted */
            } else if (d->n_notes < MAX_NOTES) {
                hp_lane_key_set(&d->notes[d->n_notes++], scope, lane);
            } else {
                d->notes_all = true;
            }
        }
    }
    wake = wake && !d->wake_pending;
    d->wake_pending = d->wake_pending || wake;
    pthread_mutex_unlock(&d->mtx);
    if (wake) {
        curl_multi_wakeup(d->multi);
    }
}

bool
deliver_test(deliver *d, hp_str lane, const char *url, uint32_t timeout_ms,
             const store_secret *sec, deliver_test_fn fn, void *arg)
{
    char body[256], sig[WEBHOOK_SIG_MAX];
    hp_lane_key k;
    uint64_t now = hp_clock_now_ms(d->o.clock);
    int n = snprintf(body, sizeof(body),
                     "{\"hopper_test\":true,\"lane\":\"%.*s\","
                     "\"sent_at_ms\":%llu}",
                     (int)lane.len, lane.p, (unsigned long long)now);
    hp_lane_key_set(&k, HP_S(""), lane);
    delivery *dl = delivery_new(d, &k, body, (size_t)n, timeout_ms);
    if (dl == NULL) {
        return false;
    }
    dl->test_fn = fn;
    dl->test_arg = arg;
    webhook_sign(sec, (int64_t)(now / 1000), dl->body, dl->body_len, sig);
    bool ok = (dl->test_url = strdup(url)) != NULL &&
              add_header(dl, "Content-Type: application/json") &&
              add_header(dl, "Hopper-Id: test") &&
              add_header(dl, "Hopper-Lane: %.*s", (int)lane.len, lane.p) &&
              add_header(dl, "Hopper-Attempt: 0") &&
              add_header(dl, "Hopper-Test: true") &&
              add_header(dl, "Hopper-Signature: %s", sig) &&
              add_header(dl, "Expect:");
    OPENSSL_cleanse(sig, sizeof(sig));
    pthread_mutex_lock(&d->mtx);
    ok = ok && d->started && !d->stopping;
    if (ok) {
        dl->next = d->tests;
        d->tests = dl;
    }
    pthread_mutex_unlock(&d->mtx);
    if (!ok) {
        delivery_free(dl);
        return false;
    }
    curl_multi_wakeup(d->multi);
    return true;
}

void
deliver_stop(deliver *d)
{
    if (d == NULL || !d->started) {
        return;
    }
    pthread_mutex_lock(&d->mtx);
    d->stopping = true;
    pthread_mutex_unlock(&d->mtx);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    pthread_mutex_lock(&d->mtx);
    d->started = false;
    pthread_mutex_unlock(&d->mtx);
}

void
deliver_free(deliver *d)
{
    if (d == NULL) {
        return;
    }
    curl_multi_cleanup(d->multi);
    curl_global_cleanup();
    for (size_t i = 0; i < d->n_stats; i++) {
        free(d->stats[i]);
    }
    free(d->stats);
    pthread_mutex_destroy(&d->mtx);
    free(d->lanes);
    free(d->known);
    free(d->user_agent);
    free(d);
}
