/*
 * broker.c - creates, wires and stops the broker's parts: the store, the
 * commit queue (writer thread), the waiters of long-poll claims, the timer
 * thread (waiter timeouts, maintenance) and the listener.
 *
 * Wake-ups: once a group's ops are applied, the store reports the lanes
 * the group made claimable and how many messages each gained; the writer
 * runs the oldest parked claims of those lanes inside the same
 * transaction (wake_parked), so their replies go out with that commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <openssl/crypto.h>

#include "broker/broker_int.h"
#include "common/log.h"

#define MAINT_STEP_LIMIT 256
/* Maintenance runs when the store says something falls due (a lease, a
 * delayed message, a retention or dedupe window, a replay entry), never
 * on a fixed beat: an idle broker writes nothing. A due time is wall
 * clock, so the timer looks at the clock again at least this often and
 * a wall clock stepped forward is noticed within it (fault_clock_test). */
#define MAINT_RECHECK_MS 1000
/* How often the reader table is checked for slots of dead processes: a
 * slot left by a killed backup pins every page freed after its snapshot,
 * and at a few hundred commits a second the file then grows by tens of
 * MiB a second (fault_readers_test). */
#define READER_CHECK_MS 1000

void
broker_config_init(broker_config *c)
{
    memset(c, 0, sizeof(*c));
    c->listen[0] = "tcp://127.0.0.1:7450";
    c->n_listen = 1;
    c->data_dir = "./data";
    c->sync = STORE_SYNC_FULL;
    c->map_size = 64u << 20;
    c->max_map_size = (size_t)64 << 30;
    c->max_payload = 1u << 20;
    c->max_frame = 16u << 20;
    c->max_wait_ms = 30000;
    c->default_deadline_ms = 60000;
    c->send_timeout_ms = 10000;
    c->max_group = 1024;
    c->replay_window_ms = 10 * 60 * 1000;
    c->max_waits_per_conn = 256;
    c->max_parked = 4096;
    listener_limits lim;
    listener_limits_init(&lim);
    c->max_inflight = lim.max_inflight;
    c->max_connections = lim.max_connections;
    c->conn_inflight = lim.conn_inflight;
    c->max_partial_bytes = lim.max_partial_bytes;
    c->frame_timeout_ms = lim.frame_stall_ms;
    c->conn_unsent = lim.conn_unsent;
    c->max_unsent_bytes = lim.max_unsent_bytes;
}

/* Whether commits defer their meta page's sync to the next commit (one
 * sync per commit under load; replies wait for it, see commitq.c).
 * HOPPER_DEFER_META_SYNC=0/1 overrides it for measurements
 * (docs/benchmarks.md). */
static bool
deferred_sync(const broker_config *c)
{
    const char *v = getenv("HOPPER_DEFER_META_SYNC");
    if (c->sync != STORE_SYNC_FULL) {
        return false;
    }
#ifdef HOPPER_DEBUG_HOOKS
    if (c->debug_reply_before_sync) {
        return true; /* the control's replies precede this deferred sync */
    }
#endif
    if (v != NULL && (v[0] == '0' || v[0] == '1')) {
        return v[0] == '1';
    }
    return true;
}

/* ---- wake-ups and long-polls --------------------------------------------- */

static void
finish_empty(call *c)
{
    hp_status st;
    hp_status_clear(&st);
    free(c->resp);
    c->resp = NULL;
    c->resp_len = 0; /* an empty ClaimResponse packs to no bytes */
    dispatch_finish(c, HP_OK, &st);
}

/* Writer thread: a lane the group made claimable, n more messages. */
static void
note_wake(void *arg, hp_str scope, hp_str lane, uint32_t n)
{
    broker *b = arg;
    for (size_t i = 0; i < b->n_wakes; i++) {
        wake *w = &b->wakes[i];
        if (w->scope_len == scope.len && w->lane_len == lane.len &&
            memcmp(w->scope, scope.p, scope.len) == 0 &&
            memcmp(w->lane, lane.p, lane.len) == 0) {
            w->left =
                n > STORE_READY_MANY - w->left ? STORE_READY_MANY : w->left + n;
            return;
        }
    }
    if (b->n_wakes == BROKER_MAX_WAKES) {
        b->wake_all = true; /* cheaper than tracking them all */
        return;
    }
    wake *w = &b->wakes[b->n_wakes++];
    w->scope_len = (uint8_t)scope.len;
    memcpy(w->scope, scope.p, scope.len);
    w->lane_len = (uint8_t)lane.len;
    memcpy(w->lane, lane.p, lane.len);
    w->left = n;
}

/* Writer thread: the oldest parked claim of a lane that still has
 * messages for one, or of any lane when the group touched too many lanes
 * to list. */
static waiter *
next_waiter(broker *b)
{
    if (b->wake_all) {
        return waiters_take_any(b->waiters);
    }
    for (size_t i = 0; i < b->n_wakes; i++) {
        wake *w = &b->wakes[i];
        if (w->left == 0) {
            continue;
        }
        hp_str scope = { w->scope, w->scope_len };
        hp_str lane = { w->lane, w->lane_len };
        waiter *wt = waiters_take_oldest(b->waiters, scope, lane);
        if (wt != NULL) {
            b->woken_lane = i;
            return wt;
        }
        w->left = 0; /* no one waits there */
    }
    return NULL;
}

/*
 * Writer thread, the commit queue's extend hook: hands the group's new
 * messages to parked claims inside the group's own transaction, so a
 * long-poll's reply goes out with the commit of the enqueue that fed it,
 * not one commit later. A lane that gained k messages wakes its oldest
 * claims until they have taken k (a claim may take several; one that
 * finds nothing, asking for another target, parks again in its place):
 * no herd of claims that re-run for nothing.
 */
static commitq_op *
wake_parked(void *arg, store_txn *t, bool first)
{
    broker *b = arg;
    bool all = false;

    if (first) {
        b->n_wakes = 0;
        b->wake_all = false;
        b->woken = NULL;
    }
    /* Awaits first: their ops only read, so they settle nothing and make
     * no lane claimable, and the claims below see the same notes. */
    commitq_op *await_op = awaits_wake(b->awaits, t, first);
    if (await_op != NULL) {
        return await_op;
    }
    if (b->woken != NULL) {
        wake *w = &b->wakes[b->woken_lane];
        uint32_t took = b->woken->claimed;
        if (!b->wake_all && w->left != STORE_READY_MANY) {
            w->left = took < w->left ? w->left - took : 0;
        }
        b->woken = NULL;
    }
    store_txn_take_ready(t, note_wake, b, &all);
    b->wake_all = b->wake_all || all;
    waiter *wt;
    while ((wt = next_waiter(b)) != NULL) {
        call *c = wt->owner;
        if (!listener_req_open(&c->rq)) {
            /* Its client is gone: claiming for it would hide the messages
             * for a whole lease. */
            finish_empty(c);
            continue;
        }
        c->op.deadline_mono_ms = 0; /* admitted long ago */
        b->woken = c;
        return &c->op;
    }
    return NULL;
}

static void
timer_kick(broker *b)
{
    pthread_mutex_lock(&b->tmtx);
    pthread_cond_signal(&b->tcond);
    pthread_mutex_unlock(&b->tmtx);
}

/* Writer thread: an Await parked; the timer may need to wake sooner. */
static void
awaits_parked(void *arg)
{
    timer_kick(arg);
}

/* NNG thread: a client hung up. Its parked long-polls are answered into
 * the void now; left parked, the next enqueue to their lane would wake
 * one, which would claim the message for a client that is gone and hide
 * it for a whole lease (fault_clients_test). */
static void
conn_closed(void *arg, uint32_t conn)
{
    broker *b = arg;
    waiter *gone = waiters_take_conn(b->waiters, conn);
    while (gone != NULL) {
        waiter *next = gone->out_next;
        finish_empty(gone->owner);
        gone = next;
    }
    awaits_cancel_conn(b->awaits, conn);
}

/* Writer thread: whether the group just committed made lane claimable. A
 * claim applied before an enqueue of its own group found nothing, and the
 * wake-up came too early for it: it runs once more instead of parking. */
static bool
woken_in_group(broker *b, hp_str scope, hp_str lane)
{
    if (b->wake_all) {
        return true;
    }
    for (size_t i = 0; i < b->n_wakes; i++) {
        const wake *w = &b->wakes[i];
        if (w->scope_len == scope.len && w->lane_len == lane.len &&
            memcmp(w->scope, scope.p, scope.len) == 0 &&
            memcmp(w->lane, lane.p, lane.len) == 0) {
            return true;
        }
    }
    return false;
}

/* Writer thread, after the commit of the group in which c found nothing
 * and may wait. */
void
broker_park(call *c)
{
    broker *b = c->b;
    Hopper__V1__ClaimRequest *req = (Hopper__V1__ClaimRequest *)c->body;
    hp_str lane = hp_str_c(req->lane);
    hp_status st;

    if (atomic_load(&b->stopping)) {
        finish_empty(c);
        return;
    }
    if (woken_in_group(b, c->scope, lane)) {
        if (dispatch_resubmit(c, &st) != HP_OK) {
            dispatch_finish(c, st.code, &st);
        }
        return;
    }
    c->wt.owner = c;
    if (dispatch_compact(c, &st) != HP_OK) {
        dispatch_finish(c, st.code, &st);
        return;
    }
    listener_req_waiting(&c->rq);
    /* Once parked, c may be woken, timed out or dropped by another thread
     * at any moment: what is looked at afterwards is held separately. */
    listener_conn *conn = listener_conn_hold(&c->rq);
    uint32_t conn_id = c->rq.conn_id;
    if (waiters_park(b->waiters, &c->wt, conn_id, c->scope,
                     hp_str_c(((Hopper__V1__ClaimRequest *)c->body)->lane),
                     c->wait_until_mono_ms, &st) != HP_OK) {
        listener_conn_release(conn);
        dispatch_finish(c, st.code, &st);
        return;
    }
    /* The client may have hung up while the claim was handled, before it
     * was parked, and conn_closed then found nothing to take. */
    bool open = listener_conn_is_open(conn);
    listener_conn_release(conn);
    if (!open) {
        conn_closed(b, conn_id);
        return;
    }
    timer_kick(b);
}

/* Caller holds b->tmtx. Maintenance is next due at wall time due_wall
 * (UINT64_MAX: nothing is scheduled, so it does not run at all); the timer
 * looks at the clock then, or after MAINT_RECHECK_MS if sooner. */
static void
schedule_maint(broker *b, uint64_t due_wall, uint64_t now_wall,
               uint64_t now_mono)
{
    uint64_t wait = due_wall > now_wall ? due_wall - now_wall : 0;
    if (wait > MAINT_RECHECK_MS) {
        wait = MAINT_RECHECK_MS;
    }
    b->maint_due_wall = due_wall;
    b->maint_at_mono = due_wall == UINT64_MAX ? UINT64_MAX : now_mono + wait;
}

/* Writer thread, after each group: bring the maintenance time forward if
 * something falls due sooner. */
static void
after_group(void *arg)
{
    broker *b = arg;

    store_txn *t;
    hp_status st;
    uint64_t due;
    if (store_txn_begin(b->store, NULL, false, &t, &st) != HP_OK) {
        return;
    }
    hp_code code = store_next_due(t, &due, &st);
    store_txn_abort(t);
    if (code != HP_OK || due == UINT64_MAX) {
        return;
    }
    uint64_t now = hp_clock_now_ms(&b->clock);
    pthread_mutex_lock(&b->tmtx);
    if (due < b->maint_due_wall) {
        schedule_maint(b, due, now, hp_mono_ms());
        pthread_cond_signal(&b->tcond);
    }
    pthread_mutex_unlock(&b->tmtx);
}

/* ---- maintenance -----------------------------------------------------------
 */

typedef hp_code (*step_fn)(store_txn *t, uint64_t now_ms, uint32_t limit,
                           store_step_res *res, hp_status *st);

static hp_code
maint_apply(commitq_op *op, store_txn *t, uint64_t now_ms, hp_status *st)
{
    broker *b = (broker *)((char *)op - offsetof(broker, maint_op));
    static const step_fn steps[] = {
        store_expire_leases, store_promote_due,   store_prune_delivered,
        store_prune_dedupe,  store_prune_replies,
    };
    b->maint_more = false;
    for (size_t i = 0; i < HP_ARRAY_LEN(steps); i++) {
        store_step_res res;
        hp_code code = steps[i](t, now_ms, MAINT_STEP_LIMIT, &res, st);
        if (code != HP_OK) {
            return code;
        }
        b->maint_more = b->maint_more || res.more;
    }
    return store_next_due(t, &b->maint_next_wall, st);
}

static void
maint_done(commitq_op *op, hp_code code, const hp_status *st)
{
    broker *b = (broker *)((char *)op - offsetof(broker, maint_op));
    uint64_t now = hp_clock_now_ms(&b->clock);
    uint64_t due = b->maint_next_wall;

    if (code != HP_OK) {
        hp_log(HP_LOG_WARN, "maintenance failed", "code=%s reason=%s",
               hp_code_name(code), st->reason ? st->reason : "");
        due = now + MAINT_RECHECK_MS; /* try again, not in a loop */
    } else if (b->maint_more) {
        due = now; /* a step stopped at its limit: go on at once */
    }
    pthread_mutex_lock(&b->tmtx);
    b->maint_in_flight = false;
    schedule_maint(b, due, now, hp_mono_ms());
    pthread_cond_signal(&b->tcond);
    pthread_mutex_unlock(&b->tmtx);
}

static void
abs_time(uint64_t mono_ms, struct timespec *ts)
{
    /* The condition variable runs on CLOCK_MONOTONIC (see broker_start). */
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

/* Timer thread. */
static void
check_readers(broker *b, uint64_t now_mono)
{
    hp_status st;
    int cleared = 0;
    if (now_mono < b->readers_at_mono) {
        return;
    }
    b->readers_at_mono = now_mono + READER_CHECK_MS;
    if (store_clear_stale_readers(b->store, &cleared, &st) != HP_OK) {
        hp_log(HP_LOG_WARN, "reader check failed", "code=%s reason=%s",
               hp_code_name(st.code), st.reason ? st.reason : "");
    } else if (cleared > 0) {
        hp_log(HP_LOG_WARN, "stale readers cleared",
               "slots=%d detail=\"a process died inside a read transaction "
               "on the data file\"",
               cleared);
    }
}

static void *
timer_main(void *arg)
{
    broker *b = arg;
    pthread_mutex_lock(&b->tmtx);
    while (!b->timer_stop) {
        uint64_t now = hp_mono_ms();
        uint64_t next = waiters_next_deadline(b->waiters);
        uint64_t next_await = awaits_next_deadline(b->awaits);
        if (next_await < next) {
            next = next_await;
        }
        if (!b->maint_in_flight && b->maint_at_mono < next) {
            next = b->maint_at_mono;
        }
        if (b->readers_at_mono < next) {
            next = b->readers_at_mono;
        }
        if (next > now) {
            struct timespec ts;
            abs_time(next, &ts);
            pthread_cond_timedwait(&b->tcond, &b->tmtx, &ts);
            continue;
        }
        bool run_maint = false;
        if (!b->maint_in_flight && b->maint_at_mono <= now) {
            uint64_t wall = hp_clock_now_ms(&b->clock);
            if (wall >= b->maint_due_wall) {
                run_maint = true;
                b->maint_in_flight = true;
            } else {
                /* Looked early to follow the wall clock: not due yet. */
                schedule_maint(b, b->maint_due_wall, wall, now);
            }
        }
        pthread_mutex_unlock(&b->tmtx);
        check_readers(b, now);
        waiter *expired = waiters_take_expired(b->waiters, now);
        while (expired != NULL) {
            waiter *nx = expired->out_next;
            finish_empty(expired->owner);
            expired = nx;
        }
        awaits_expire(b->awaits, now);
        if (run_maint) {
            hp_status st;
            if (commitq_submit(b->q, &b->maint_op, &st) != HP_OK) {
                pthread_mutex_lock(&b->tmtx);
                b->maint_in_flight = false;
                b->maint_at_mono = now + MAINT_RECHECK_MS;
                pthread_mutex_unlock(&b->tmtx);
            }
        }
        pthread_mutex_lock(&b->tmtx);
    }
    pthread_mutex_unlock(&b->tmtx);
    return NULL;
}

/* ---- start and stop -------------------------------------------------------
 */

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
    hp_code code = store_open(&o, &b->store, st);
    if (code != HP_OK) {
        return code;
    }
    uint8_t inst[16];
    store_get_instance(b->store, inst);
    for (size_t i = 0; i < sizeof(inst); i++) {
        snprintf(b->instance_hex + 2 * i, 3, "%02x", inst[i]);
    }
    return HP_OK;
}

static hp_code
start_timer(broker *b, hp_status *st)
{
    b->maint_op.apply = maint_apply;
    b->maint_op.done = maint_done;
    /* Once at start: leases may have run out while the broker was down. */
    b->maint_due_wall = 0;
    b->maint_at_mono = hp_mono_ms();
    int rc = pthread_create(&b->timer, NULL, timer_main, b);
    if (rc != 0) {
        return hp_status_from_errno(st, rc, "cannot start the timer thread");
    }
    b->timer_started = true;
    return HP_OK;
}

/* Loads the key file, or checks that anonymous access stays local. Local
 * is what the listener actually bound (a loopback address or inproc://),
 * not how the URL was spelled: a host name may resolve to any address. */
static hp_code
setup_auth(broker *b, hp_status *st)
{
    if (b->cfg.auth_keys != NULL && b->cfg.auth_keys[0] != '\0') {
        hp_code code = auth_load_keys(b->cfg.auth_keys, &b->keys, st);
        if (code == HP_OK) {
            b->auth = true;
            hp_log(HP_LOG_INFO, "auth keys loaded", "keys=%zu", b->keys.n);
        }
        return code;
    }
    for (size_t i = 0; i < b->cfg.n_listen; i++) {
        if (listener_is_local(b->l, i)) {
            continue;
        }
        if (!b->cfg.allow_anonymous) {
            return hp_status_set(
                st, HP_FAILED_PRECONDITION, "ANONYMOUS_NOT_LOCAL",
                "'%s' is reachable from other hosts but there is no "
                "--auth-keys; give a key file, or --allow-anonymous to "
                "accept anyone",
                listener_url(b->l, i));
        }
        b->anonymous_exposed = true;
    }
    if (b->anonymous_exposed) {
        hp_log(HP_LOG_WARN, "anonymous access",
               "detail=\"no key file and a non-local listener: anyone who "
               "reaches the port can read and write every scope\"");
    }
    return HP_OK;
}

/* A --backup-dir that cannot take a backup would only say so at the first
 * Backup, hours or months later: check it now. */
static hp_code
check_backup_dir(const char *dir, hp_status *st)
{
    struct stat sb;
    if (dir == NULL) {
        return HP_OK;
    }
    if (stat(dir, &sb) != 0) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, "BAD_BACKUP_DIR",
                             "--backup-dir '%s': %s", dir, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, "BAD_BACKUP_DIR",
                             "--backup-dir '%s' is not a directory", dir);
    }
    if (access(dir, W_OK | X_OK) != 0) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, "BAD_BACKUP_DIR",
                             "--backup-dir '%s' is not writable by hopperd: "
                             "%s",
                             dir, strerror(errno));
    }
    return HP_OK;
}

/* Serves the HTTP API on addr (none for NULL), last: it hands requests to
 * the listener. Anonymous access is checked as for the listeners, on the
 * address it bound. */
static hp_code
start_api(broker *b, const char *addr, bool tls, api_server **out,
          hp_status *st)
{
    if (addr == NULL) {
        return HP_OK;
    }
    api_opts o = {
        .addr = addr,
        .tls = tls,
        .tls_cert_file = b->cfg.tls_cert_file,
        .tls_key_file = b->cfg.tls_key_file,
        .tls_client_ca_file = b->cfg.tls_client_ca_file,
        .l = b->l,
        .max_body = b->cfg.max_frame,
        .max_body_total = b->cfg.max_partial_bytes,
        .body_timeout_ms = b->cfg.frame_timeout_ms,
        .send_timeout_ms = b->cfg.send_timeout_ms,
        .decode_limit = dispatch_decode_limit(b->cfg.max_frame),
    };
    hp_code code = api_start(&o, out, st);
    if (code != HP_OK || b->auth || api_is_local(*out)) {
        return code;
    }
    if (!b->cfg.allow_anonymous) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, "ANONYMOUS_NOT_LOCAL",
                             "'%s' is reachable from other hosts but there "
                             "is no --auth-keys; give a key file, or "
                             "--allow-anonymous to accept anyone",
                             api_url(*out));
    }
    if (!b->anonymous_exposed) {
        b->anonymous_exposed = true;
        hp_log(HP_LOG_WARN, "anonymous access",
               "detail=\"no key file and a non-local listener: anyone who "
               "reaches the port can read and write every scope\"");
    }
    return HP_OK;
}

hp_code
broker_start(const broker_config *cfg, broker **out, hp_status *st)
{
    hp_code code;
    broker *b = calloc(1, sizeof(*b));

    if (b == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->tcond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&b->tmtx, NULL);
    pthread_mutex_init(&b->bmtx, NULL);
    b->cfg = *cfg;
    b->data_dir = strdup(cfg->data_dir != NULL ? cfg->data_dir : "./data");
    b->cfg.data_dir = b->data_dir;
    hp_clock_init(&b->clock, cfg->clock_source, cfg->clock_arg);
    (void)dispatch_method("Ping"); /* binds the method table once */
    metrics_init(&b->metrics, dispatch_method_count());
    if (b->cfg.metrics_max_lanes == 0) {
        b->cfg.metrics_max_lanes = METRICS_DEFAULT_MAX_LANES;
    }
    commitq_opts qo = {
        .max_group = b->cfg.max_group,
        .deferred_sync = deferred_sync(&b->cfg),
        .hooks = { .after = after_group, .extend = wake_parked, .arg = b },
#ifdef HOPPER_DEBUG_HOOKS
        .debug_reply_before_sync = b->cfg.debug_reply_before_sync,
#endif
    };
    awaits_opts ao = {
        .max_parked = b->cfg.max_parked,
        .max_per_conn = b->cfg.max_waits_per_conn,
        .answer = svc_await_answer,
        .parked = awaits_parked,
        .parked_arg = b,
    };
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
            .handshake_timeout_ms = 10000,
        },
        .on_closed = conn_closed,
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
    /* The listeners bind first: a busy port or a bad URL stops the start
     * before the data dir is touched, and the addresses they bound decide
     * whether anonymous access is local. Requests flow only once
     * listener_start runs, after everything they need exists. */
    if ((code = listener_open(&lo, dispatch_request, b, &b->l, st)) != HP_OK ||
        (code = setup_auth(b, st)) != HP_OK ||
        (code = check_backup_dir(b->cfg.backup_dir, st)) != HP_OK ||
        (code = open_store(b, st)) != HP_OK ||
        (code = waiters_new(b->cfg.max_parked, b->cfg.max_waits_per_conn,
                            &b->waiters, st)) != HP_OK ||
        (code = awaits_new(&ao, &b->awaits, st)) != HP_OK ||
        (code = commitq_new(b->store, &b->clock, &qo, &b->q, st)) != HP_OK ||
        (code = start_timer(b, st)) != HP_OK ||
        (code = listener_start(b->l, st)) != HP_OK ||
        (b->cfg.http_addr != NULL &&
         (code = http_start(b, b->cfg.http_addr, &b->http, st)) != HP_OK) ||
        (code = start_api(b, b->cfg.api_addr, false, &b->api, st)) != HP_OK ||
        (code = start_api(b, b->cfg.api_tls_addr, true, &b->api_tls, st)) !=
            HP_OK) {
        goto fail;
    }
    *out = b;
    return HP_OK;
fail:
    broker_stop(b);
    return code;
}

const char *
broker_bound_url(const broker *b, size_t i)
{
    return b->l != NULL ? listener_url(b->l, i) : NULL;
}

static void
answer_all_waiters(broker *b)
{
    waiter *all = waiters_take_all(b->waiters);
    while (all != NULL) {
        waiter *next = all->out_next;
        finish_empty(all->owner);
        all = next;
    }
    if (b->awaits != NULL) {
        awaits_stop(b->awaits);
    }
}

const char *
broker_http_url(const broker *b)
{
    return b->http != NULL ? http_url(b->http) : NULL;
}

const char *
broker_api_url(const broker *b, bool tls)
{
    const api_server *a = tls ? b->api_tls : b->api;
    return a != NULL ? api_url(a) : NULL;
}

/* The writer's totals at stop, with the commit histograms' quantiles:
 * enough to judge a benchmark run from the log alone. */
static void
log_writer_totals(commitq *q)
{
    const commitq_hists *h = commitq_get_hists(q);
    hp_hist_snap gs, gu, sy;
    commitq_stats cs;

    commitq_get_stats(q, &cs);
    hp_hist_read(&h->group_size, &gs);
    hp_hist_read(&h->group_us, &gu);
    hp_hist_read(&h->sync_us, &sy);
    hp_log(HP_LOG_INFO, "writer totals",
           "commits=%llu ops=%llu max_group=%llu group_mean=%.2f "
           "group_p99=%llu commit_ms_mean=%.3f sync_ms_mean=%.3f "
           "sync_ms_p99=%.3f",
           (unsigned long long)cs.commits, (unsigned long long)cs.ops,
           (unsigned long long)cs.max_group,
           cs.commits ? (double)cs.ops / (double)cs.commits : 0.0,
           (unsigned long long)hp_hist_quantile(&gs, 0.99),
           gu.count ? (double)gu.sum / 1000.0 / (double)gu.count : 0.0,
           sy.count ? (double)sy.sum / 1000.0 / (double)sy.count : 0.0,
           (double)hp_hist_quantile(&sy, 0.99) / 1000.0);
}

void
broker_stop(broker *b)
{
    if (b == NULL) {
        return;
    }
    /* From here new requests are answered UNAVAILABLE/SHUTTING_DOWN, and
     * no new connection is taken. The connections stay open until the end:
     * the replies still owed go out on them. */
    atomic_store(&b->stopping, true);
    if (b->l != NULL) {
        listener_stop_accepting(b->l);
    }
    /* The HTTP handlers read the queue, store and listener: they go
     * first. */
    http_stop(b->http);
    b->http = NULL;
    if (b->timer_started) {
        pthread_mutex_lock(&b->tmtx);
        b->timer_stop = true;
        pthread_cond_signal(&b->tcond);
        pthread_mutex_unlock(&b->tmtx);
        pthread_join(b->timer, NULL);
        b->timer_started = false;
    }
    /* A backup answers through the listener and reads the store. */
    svc_backup_join(b);
    if (b->waiters != NULL) {
        answer_all_waiters(b);
    }
    /* Everything queued is applied and answered; parks now answer empty.
     * The queue is freed only after the listener, whose callbacks may still
     * try to submit (and be told the broker is shutting down). */
    commitq_stop(b->q);
    if (b->q != NULL) {
        log_writer_totals(b->q);
    }
    if (b->waiters != NULL) {
        answer_all_waiters(b);
    }
    /* Every request it handed over is answered now; the listener it hands
     * them to goes next. */
    api_stop(b->api);
    api_stop(b->api_tls);
    if (b->l != NULL) {
        listener_drain(b->l, 2000);
        listener_close(b->l);
    }
    commitq_free(b->q);
    waiters_free(b->waiters);
    awaits_free(b->awaits);
    store_close(b->store);
    hp_rand_pool_free(b->rand);
    pthread_mutex_destroy(&b->tmtx);
    pthread_mutex_destroy(&b->bmtx);
    pthread_cond_destroy(&b->tcond);
    free(b->data_dir);
    OPENSSL_cleanse(&b->keys, sizeof(b->keys));
    free(b);
}
