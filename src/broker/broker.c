/*
 * broker.c - composition: creates the broker's parts, wires them to each
 * other, starts them and stops them. Each part owns its thread or state
 * (docs/architecture.md has the map):
 *
 *   listener   I/O threads: connections, frames, replies (listener.c)
 *   dispatch   a request to its call and handler (dispatch.c, svc_*.c),
 *              answered once by call_finish (call.c)
 *   commitq    the writer thread: groups of writes, one commit each
 *   longpoll   parked claims: wake, timeout, cancel, shutdown
 *   maint      the timer thread: maintenance, timeouts, reader checks
 *   backup     the backup thread
 *   http       /metrics, /healthz, /readyz (metrics.c renders)
 *   api        the HTTP API: each request in by HTTP goes to dispatch
 *              through an external connection of the listener (api.c)
 *   deliver    the delivery thread: lanes with a deliver_url, POSTed
 *              over libcurl (deliver.c, webhook.c)
 *   callback   callback ingress: a receiver's complete, fail or heartbeat
 *              for a delivery's claim, in by the API (callback.c)
 *
 * A part never calls another that is above it: where a lower part must
 * tell a higher one something (the writer a lane made claimable, the
 * listener a client gone, the timer a deadline), it calls a hook, and the
 * hooks are the small functions of the "wiring" section below.
 */
#include "broker/broker.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "broker/api.h"
#include "broker/auth.h"
#include "broker/backup.h"
#include "broker/call.h"
#include "broker/callback.h"
#include "broker/commitq.h"
#include "broker/deliver.h"
#include "broker/dispatch.h"
#include "broker/http.h"
#include "broker/listener.h"
#include "broker/longpoll.h"
#include "broker/maint.h"
#include "broker/metrics.h"
#include "common/id.h"
#include "common/log.h"

struct broker {
    broker_config cfg;
    char *data_dir;     /* cfg.data_dir, owned */
    hp_rand_pool *rand; /* ids and claim tokens, for the store */
    hp_clock clock;
    _Atomic bool stopping; /* new requests are refused */
    listener *l;
    store *store;
    backup *backup;
    longpoll *lp;
    maint *maint;
    commitq *q;
    broker_metrics metrics;
    dispatch *d;
    http_server *http;
    api_server *api[2]; /* --api, --api-tls */
    deliver *deliver;
    callback *cb; /* NULL without an API listener */
};

/* Whether an A/B switch (HOPPER_...=0) turns a default off. */
static bool
switched_off(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && strcmp(v, "0") == 0;
}

/* Whether commits defer their meta page's sync to the next commit (one
 * sync per commit under load; replies wait for it, see commitq.c). Off
 * unless HOPPER_DEFER_META_SYNC=1: it saves the meta page's ~150 us
 * sync of a ~700 us commit but holds every reply one commit longer, and
 * in interleaved runs beside Redis it did not win (docs/benchmarks.md). */
static bool
deferred_sync(const broker_config *c)
{
    const char *v = getenv("HOPPER_DEFER_META_SYNC");
    if (c->sync != STORE_SYNC_FULL) {
        return false;
    }
#ifdef HOPPER_DEBUG_HOOKS
    if (c->debug_reply_before_sync) {
        /* The control skips the log's sync, or with
         * HOPPER_DEFER_META_SYNC=1 replies before the deferred sync. */
        return v != NULL && v[0] == '1';
    }
#endif
    if (v != NULL && (v[0] == '0' || v[0] == '1')) {
        return v[0] == '1';
    }
    return false;
}

/* ---- wiring: the hooks through which one part tells another ----------- */

/* An I/O thread read a request. */
static void
on_request(void *arg, const listener_req *r, const void *req, size_t len)
{
    broker *b = arg;
    dispatch_request(b->d, r, req, len);
}

/* An I/O thread saw a client hang up: its parked claims end. */
static void
on_conn_closed(void *arg, uint32_t conn_id)
{
    broker *b = arg;
    longpoll_cancel_conn(b->lp, conn_id);
}

/* The writer applied a group: the claims its enqueues feed run in it. */
static commitq_op *
on_group_applied(void *arg, store_txn *t, bool first)
{
    broker *b = arg;
    return longpoll_wake(b->lp, t, first);
}

/* A commit made a lane's messages claimable: a delivery lane claims. */
static void
on_store_ready(void *arg, hp_str scope, hp_str lane)
{
    broker *b = arg;
    deliver_note_ready(b->deliver, scope, lane);
}

/* The API read a callback's body: to the callback part. */
static void
on_callback(void *arg, hp_str token, const void *body, size_t len,
            api_callback_done done, void *req)
{
    broker *b = arg;
    callback_handle(b->cb, token, body, len, done, req);
}

/* The writer answered a group: maintenance may be due sooner. */
static void
on_group_done(void *arg)
{
    broker *b = arg;
    maint_after_group(b->maint);
}

/* A claim was parked: the timer looks at its deadline. */
static void
on_parked(void *arg)
{
    broker *b = arg;
    maint_kick(b->maint);
}

/* The timer asks for the long-poll timeouts, and ends those due. */
static uint64_t
next_timeout(void *arg)
{
    broker *b = arg;
    return longpoll_next_deadline(b->lp);
}

static void
on_timeouts(void *arg, uint64_t now_mono_ms)
{
    broker *b = arg;
    longpoll_expire(b->lp, now_mono_ms);
}

/* ---- start ------------------------------------------------------------- */

static hp_code
open_store(broker *b, hp_status *st)
{
    store_opts o;
    store_opts_init(&o);
    o.dir = b->cfg.data_dir;
    o.sync = b->cfg.sync;
    o.map_size = b->cfg.map_size;
    o.max_map_size = b->cfg.max_map_size;
    o.limits.max_payload = b->cfg.max_payload;
    if ((b->rand = hp_rand_pool_new()) == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    o.rand = hp_rand_pool_draw;
    o.rand_arg = b->rand;
    o.defer_meta_sync = deferred_sync(&b->cfg);
    /* HOPPER_STORE_WAL=0: LMDB's own two syncs per commit, for A/B runs. */
    o.no_wal = switched_off("HOPPER_STORE_WAL");
    /* HOPPER_STORE_WRITEMAP=0: --sync none without a writable map. */
    o.no_writemap = switched_off("HOPPER_STORE_WRITEMAP");
    /* HOPPER_LOG_PATCHES=0: rewritten message records logged whole. */
    o.no_log_patches = switched_off("HOPPER_LOG_PATCHES");
#ifdef HOPPER_DEBUG_HOOKS
    o.debug_log_nosync = b->cfg.debug_reply_before_sync && !o.defer_meta_sync;
#endif
    o.on_ready = on_store_ready;
    o.on_ready_arg = b;
    return store_open(&o, &b->store, st);
}

/* Who may call. Without a key file anonymous access must stay local,
 * and local is what a listener actually bound (a loopback address or
 * inproc://), not how its URL was spelled: a host name may resolve to any
 * address. */
static hp_code
open_auth(broker *b, auth_policy *p, hp_status *st)
{
    const char *exposed = NULL;
    for (size_t i = 0; i < b->cfg.n_listen && exposed == NULL; i++) {
        if (b->cfg.listeners_public || !listener_is_local(b->l, i)) {
            exposed = listener_url(b->l, i);
        }
    }
    for (size_t i = 0; i < HP_ARRAY_LEN(b->api) && exposed == NULL; i++) {
        if (b->api[i] != NULL &&
            (b->cfg.listeners_public || !api_is_local(b->api[i]))) {
            exposed = api_url(b->api[i]);
        }
    }
    return auth_policy_init(p, b->cfg.auth_keys, b->cfg.allow_anonymous,
                            exposed, st);
}

/* Whether a request may be committed on the thread that read it when the
 * writer is idle (commitq_submit_or_run). Only with --sync none: under
 * --sync full the commit waits for the log's fdatasync, stalling every
 * other connection of that I/O thread, and such a commit holds one op
 * where the writer would have grouped several (W1 8 conns measured 1,884
 * and 1,995/s against 5,569 and 6,150/s queued). HOPPER_RUN_WHEN_IDLE=0
 * turns it off, for A/B runs. */
static bool
run_when_idle(const broker_config *c)
{
    return c->sync == STORE_SYNC_NONE && !switched_off("HOPPER_RUN_WHEN_IDLE");
}

/* --sync full with the log: the writer commits to LMDB a batch of groups
 * at a time (store_batch_attach), each group durable in the log before
 * its replies. HOPPER_BATCH=0 turns it off, for A/B runs. */
static bool
batch_commits(const broker_config *c)
{
    return c->sync == STORE_SYNC_FULL && !deferred_sync(c) &&
           !switched_off("HOPPER_STORE_WAL") && !switched_off("HOPPER_BATCH");
}

static hp_code
open_parts(broker *b, auth_policy *auth, hp_status *st)
{
    hp_code code;
    longpoll_opts po = {
        .max_parked = b->cfg.max_parked,
        .max_per_conn = b->cfg.max_waits_per_conn,
        .answer = call_answer_parked,
        .parked = on_parked,
        .parked_arg = b,
    };
    maint_opts mo = {
        .store = b->store,
        .clock = &b->clock,
        .next_timeout = next_timeout,
        .expire = on_timeouts,
        .timeouts_arg = b,
    };
    commitq_opts qo = {
        .max_group = b->cfg.max_group,
        .deferred_sync = deferred_sync(&b->cfg),
        .run_when_idle = run_when_idle(&b->cfg),
        .batch = batch_commits(&b->cfg),
        .hooks = { .after = on_group_done,
                   .extend = on_group_applied,
                   .arg = b },
#ifdef HOPPER_DEBUG_HOOKS
        .debug_reply_before_sync = b->cfg.debug_reply_before_sync,
#endif
    };

    if ((code = longpoll_new(&po, &b->lp, st)) != HP_OK ||
        (code = maint_new(&mo, &b->maint, st)) != HP_OK ||
        (code = commitq_new(b->store, &b->clock, &qo, &b->q, st)) != HP_OK) {
        return code;
    }
    if (b->cb != NULL) {
        callback_start(b->cb, b->q); /* callbacks go to the queue now */
    }
    dispatch_opts dopts = {
        .ctx = { .store = b->store,
                 .clock = &b->clock,
                 .q = b->q,
                 .lp = b->lp,
                 .backup = b->backup,
                 .deliver = b->deliver,
                 .metrics = &b->metrics,
                 .max_frame = b->cfg.max_frame,
                 .max_wait_ms = b->cfg.max_wait_ms,
                 .replay_window_ms = b->cfg.replay_window_ms },
        .auth = auth,
        .stopping = &b->stopping,
        .default_deadline_ms = b->cfg.default_deadline_ms,
    };
    return dispatch_new(&dopts, &b->d, st);
}

/* The HTTP API's servers (--api, --api-tls), bound with the listeners,
 * whose external connections they hand requests to: those are refused
 * until listener_start. */
static hp_code
open_api(broker *b, hp_status *st)
{
    const char *addr[] = { b->cfg.api_addr, b->cfg.api_tls_addr };
    hp_code code;

    for (size_t i = 0; i < HP_ARRAY_LEN(addr); i++) {
        api_opts o = {
            .addr = addr[i],
            .tls = i == 1,
            .tls_cert_file = b->cfg.tls_cert_file,
            .tls_key_file = b->cfg.tls_key_file,
            .tls_client_ca_file = b->cfg.tls_client_ca_file,
            .l = b->l,
            .max_body = b->cfg.max_frame,
            .max_body_total = b->cfg.max_partial_bytes,
            .body_timeout_ms = b->cfg.frame_timeout_ms,
            .send_timeout_ms = b->cfg.send_timeout_ms,
            .decode_limit = decode_budget_limit(b->cfg.max_frame),
            .callback_path = CALLBACK_PATH,
            .callback_max_body = CALLBACK_BODY_MAX,
            .callback = b->cb != NULL ? on_callback : NULL,
            .callback_arg = b,
        };
        if (addr[i] != NULL &&
            (code = api_start(&o, &b->api[i], st)) != HP_OK) {
            return code;
        }
    }
    return HP_OK;
}

static hp_code
start_http(broker *b, hp_status *st)
{
    http_opts ho = {
        .addr = b->cfg.http_addr,
        .metrics = { .m = &b->metrics,
                     .q = b->q,
                     .l = b->l,
                     .lp = b->lp,
                     .api = { b->api[0], b->api[1] },
                     .store = b->store,
                     .clock = &b->clock,
                     .max_lanes = b->cfg.metrics_max_lanes,
                     .deliver = b->deliver },
        .q = b->q,
        .stopping = &b->stopping,
    };
    if (b->cfg.http_addr == NULL) {
        return HP_OK;
    }
    return http_start(&ho, &b->http, st);
}

/* Callback ingress comes with an API listener, which hands callbacks in
 * from the moment it starts: made before it, taking callbacks once
 * start_callback has the store. */
static hp_code
new_callback(broker *b, hp_status *st)
{
    if (b->cfg.api_addr == NULL && b->cfg.api_tls_addr == NULL) {
        return HP_OK;
    }
    return callback_new(&b->clock, &b->cb, st);
}

/* The key from the store (made on first start) and the URL receivers
 * call back: --api-public-url, else the HTTPS listener's, else the
 * plain one's. Its write comes before the writer thread's, which is the
 * store's only writer from then on. */
static hp_code
open_callback(broker *b, hp_status *st)
{
    uint8_t fresh[STORE_CALLBACK_KEY_LEN];
    if (b->cb == NULL) {
        return HP_OK;
    }
    const char *base = b->cfg.api_public_url != NULL ? b->cfg.api_public_url
                       : b->api[1] != NULL           ? api_url(b->api[1])
                                                     : api_url(b->api[0]);
    if (hp_rand_openssl(NULL, fresh, sizeof(fresh)) != 0) {
        return hp_status_set(st, HP_INTERNAL, HP_R_RANDOM_FAILED,
                             "no random bytes for the callback key");
    }
    hp_code code = callback_open(b->cb, b->store, base, fresh, st);
    OPENSSL_cleanse(fresh, sizeof(fresh));
    return code;
}

/* Before the store, whose on_ready hook tells it about lanes. */
static hp_code
new_deliver(broker *b, hp_status *st)
{
    deliver_opts o = {
        .clock = &b->clock,
        .allow_private = b->cfg.webhook_allow_private,
        .user_agent = "hopperd/" BROKER_VERSION,
        .cb = b->cb,
    };
    return deliver_new(&o, &b->deliver, st);
}

hp_code
broker_start(const broker_config *cfg, broker **out, hp_status *st)
{
    hp_code code;
    auth_policy auth;
    broker *b = calloc(1, sizeof(*b));

    memset(&auth, 0, sizeof(auth));
    if (b == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    b->cfg = *cfg;
    b->data_dir = strdup(cfg->data_dir != NULL ? cfg->data_dir : "./data");
    b->cfg.data_dir = b->data_dir;
    hp_clock_init(&b->clock, cfg->clock_source, cfg->clock_arg);
    metrics_init(&b->metrics, dispatch_method_count(), dispatch_method_name);
    listener_opts lo = {
        .urls = b->cfg.listen,
        .n_urls = b->cfg.n_listen,
        .io_threads = b->cfg.io_threads,
        .limits = {
            .max_frame = b->cfg.max_frame,
            .max_connections = b->cfg.max_connections,
            .conn_inflight = b->cfg.conn_inflight,
            .max_inflight = b->cfg.max_inflight,
            .max_partial_bytes = b->cfg.max_partial_bytes,
            .frame_stall_ms = b->cfg.frame_timeout_ms,
            .conn_unsent = b->cfg.conn_unsent,
            .max_unsent_bytes = b->cfg.max_unsent_bytes,
            .send_timeout_ms = b->cfg.send_timeout_ms,
        },
        .on_closed = on_conn_closed,
        .tls_cert_file = b->cfg.tls_cert_file,
        .tls_key_file = b->cfg.tls_key_file,
        .tls_client_ca_file = b->cfg.tls_client_ca_file,
        .tls_for_api = b->cfg.api_tls_addr != NULL,
    };
    if (b->data_dir == NULL) {
        code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
        goto fail;
    }
    /* The listeners and the API bind first: a busy port or a bad URL
     * stops the start before the data dir is touched, and the addresses
     * they bound decide whether anonymous access is local. Requests flow
     * only once listener_start runs, after everything they need exists. */
    if ((code = listener_open(&lo, on_request, b, &b->l, st)) != HP_OK ||
        (code = new_callback(b, st)) != HP_OK ||
        (code = open_api(b, st)) != HP_OK ||
        (code = open_auth(b, &auth, st)) != HP_OK ||
        (code = backup_new(b->cfg.backup_dir, &b->backup, st)) != HP_OK ||
        (code = new_deliver(b, st)) != HP_OK ||
        (code = open_store(b, st)) != HP_OK ||
        (code = open_callback(b, st)) != HP_OK ||
        (code = open_parts(b, &auth, st)) != HP_OK ||
        (code = maint_start(b->maint, b->q, st)) != HP_OK ||
        (code = deliver_start(b->deliver, b->store, b->q, st)) != HP_OK ||
        (code = listener_start(b->l, st)) != HP_OK ||
        (code = start_http(b, st)) != HP_OK) {
        goto fail;
    }
    OPENSSL_cleanse(&auth, sizeof(auth)); /* dispatch keeps its copy */
    *out = b;
    return HP_OK;
fail:
    OPENSSL_cleanse(&auth, sizeof(auth));
    broker_stop(b);
    return code;
}

const char *
broker_bound_url(const broker *b, size_t i)
{
    return b->l != NULL ? listener_url(b->l, i) : NULL;
}

const char *
broker_http_url(const broker *b)
{
    return b->http != NULL ? http_url(b->http) : NULL;
}

const char *
broker_api_url(const broker *b, bool tls)
{
    const api_server *a = b->api[tls ? 1 : 0];
    return a != NULL ? api_url(a) : NULL;
}

/* ---- stop ---------------------------------------------------------------- */

void
broker_stop(broker *b)
{
    if (b == NULL) {
        return;
    }
    /* From here new requests are answered UNAVAILABLE/SHUTTING_DOWN, parked
     * claims with empty batches, and no new connection is taken. The
     * connections stay open until the end: the replies still owed go out
     * on them. */
    atomic_store(&b->stopping, true);
    if (b->lp != NULL) {
        longpoll_stop(b->lp);
    }
    if (b->l != NULL) {
        listener_stop_accepting(b->l);
    }
    /* The HTTP handlers read the queue, store and listener: they go
     * first. */
    http_stop(b->http);
    b->http = NULL;
    /* Its requests are cut and its acks and nacks applied while the
     * writer still runs. */
    deliver_stop(b->deliver);
    maint_stop(b->maint);
    /* A backup answers through the listener and reads the store. */
    backup_stop(b->backup);
    /* Everything queued is applied and answered (a claim that would park
     * now is answered empty). The queue is freed only after the listener,
     * whose callbacks may still try to submit (and be told the broker is
     * shutting down). */
    commitq_stop(b->q);
    /* Every request the API handed over is answered now (the listener
     * refuses new ones); the listener it hands them to goes next. */
    for (size_t i = 0; i < HP_ARRAY_LEN(b->api); i++) {
        api_stop(b->api[i]);
        b->api[i] = NULL;
    }
    if (b->l != NULL) {
        listener_drain(b->l, 2000);
        listener_close(b->l);
    }
    commitq_free(b->q);
    /* After the writer, whose on_ready hook may still wake it. */
    deliver_free(b->deliver);
    /* After the API, which hands it callbacks, and the writer, which
     * answers them. */
    callback_free(b->cb);
    maint_free(b->maint);
    longpoll_free(b->lp);
    backup_free(b->backup);
    dispatch_free(b->d);
    store_close(b->store);
    hp_rand_pool_free(b->rand);
    free(b->data_dir);
    free(b);
}
