/*
 * svc_admin.c - lanes, stats, dead letters, ping and backup.
 */
#include <stdint.h>
#include <string.h>

#include "broker/svc.h"
#include "common/log.h"

/* Targets in a Stats reply unless asked for fewer; ListLanes carries the
 * first LANES_TARGETS of each lane, and Stats pages through the rest. */
#define DEFAULT_TARGETS 1000
#define LANES_TARGETS   100
/* An anonymous Ping on a public listener is logged at most this often
 * (docs/operations.md, "Logs"). */
#define ANON_WARN_EVERY_MS (60 * 60 * 1000)

hp_code
svc_stats(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__StatsRequest *req = (Hopper__V1__StatsRequest *)c->body;
    Hopper__V1__StatsResponse resp = HOPPER__V1__STATS_RESPONSE__INIT;
    Hopper__V1__LaneStats ls;
    store_lane_stats s;
    store_targets_req targets = {
        .cursor = req->targets_cursor.data,
        .cursor_len = req->targets_cursor.len,
        .limit = req->targets_limit != 0 ? req->targets_limit : DEFAULT_TARGETS,
    };
    hp_code code;

    if ((code = store_stats(t, c->scope, hp_str_c(req->lane), &targets, now_ms,
                            &c->arena, &s, st)) != HP_OK ||
        (code = svc_lane_stats(c, &s, &ls, st)) != HP_OK) {
        return code;
    }
    resp.stats = &ls;
    return svc_pack(c, &resp.base, st);
}

hp_code
svc_list_lanes(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__ListLanesRequest *req = (Hopper__V1__ListLanesRequest *)c->body;
    Hopper__V1__ListLanesResponse resp = HOPPER__V1__LIST_LANES_RESPONSE__INIT;
    store_lanes_res res;
    store_lanes_req sreq = {
        .cursor = req->cursor.data,
        .cursor_len = req->cursor.len,
        .limit = req->limit != 0 ? req->limit : SVC_DEFAULT_LIMIT,
        .targets_limit = LANES_TARGETS,
        .max_bytes = svc_page_budget(c),
    };
    hp_code code;

    if ((code = store_list_lanes(t, c->scope, &sreq, now_ms, &c->arena, &res,
                                 st)) != HP_OK) {
        return code;
    }
    size_t n = res.n;
    Hopper__V1__LaneStats *ls = svc_alloc(c, (n ? n : 1) * sizeof(*ls), st);
    Hopper__V1__LaneStats **list =
        svc_alloc(c, (n ? n : 1) * sizeof(*list), st);
    if (ls == NULL || list == NULL) {
        return st->code;
    }
    for (size_t i = 0; i < n; i++) {
        if ((code = svc_lane_stats(c, &res.lanes[i], &ls[i], st)) != HP_OK) {
            return code;
        }
        list[i] = &ls[i];
    }
    resp.lanes = list;
    resp.n_lanes = n;
    resp.next_cursor.data = (uint8_t *)(uintptr_t)res.next_cursor;
    resp.next_cursor.len = res.next_cursor_len;
    return svc_pack(c, &resp.base, st);
}

/* The delivery settings in a reply; the strings point into d, which must
 * outlive the packing of out. */
static void
delivery_to_proto(const store_delivery *d, Hopper__V1__LaneSettings *out)
{
    out->deliver_url = (char *)(uintptr_t)d->url;
    out->secret_id = (char *)(uintptr_t)d->secret_id;
    out->deliver_concurrency = d->concurrency;
    out->deliver_timeout_ms = d->timeout_ms;
    out->callback_timeout_ms = d->callback_timeout_ms;
}

hp_code
svc_get_lane(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__GetLaneRequest *req = (Hopper__V1__GetLaneRequest *)c->body;
    Hopper__V1__LaneSettings resp;
    store_lane_settings s;
    store_delivery d;
    hp_code code;
    (void)now_ms;

    if ((code = store_lane_get(t, c->scope, hp_str_c(req->lane), &s, st)) !=
            HP_OK ||
        (code = store_delivery_get(t, c->scope, hp_str_c(req->lane), &d, st)) !=
            HP_OK) {
        return code;
    }
    svc_settings_to_proto(&s, &resp);
    delivery_to_proto(&d, &resp);
    return svc_pack(c, &resp.base, st);
}

/* Copies src into dst[cap] for a delivery field; false (st filled) when
 * it does not fit, so a too long value is refused, never cut. */
static bool
copy_text(char *dst, size_t cap, const char *src, const char *reason,
          const char *what, hp_status *st)
{
    size_t len = strlen(src);
    if (len >= cap) {
        hp_code code =
            hp_status_set(st, HP_INVALID_ARGUMENT, reason,
                          "%s must be at most %zu bytes", what, cap - 1);
        (void)code; /* the caller returns st->code */
        return false;
    }
    memcpy(dst, src, len + 1);
    return true;
}

/* Applies one update_mask entry naming a delivery field: 1 done, 0 not a
 * delivery field, -1 refused (st filled). */
static int
apply_delivery_field(const char *name, const Hopper__V1__LaneSettings *in,
                     store_delivery *d, hp_status *st)
{
    if (strcmp(name, "deliver_url") == 0) {
        return copy_text(d->url, sizeof(d->url), in->deliver_url,
                         HP_R_BAD_DELIVER_URL, "deliver_url", st)
                   ? 1
                   : -1;
    }
    if (strcmp(name, "secret_id") == 0) {
        return copy_text(d->secret_id, sizeof(d->secret_id), in->secret_id,
                         HP_R_BAD_NAME, "secret_id", st)
                   ? 1
                   : -1;
    }
    if (strcmp(name, "deliver_concurrency") == 0) {
        d->concurrency = in->deliver_concurrency;
        return 1;
    }
    if (strcmp(name, "deliver_timeout_ms") == 0) {
        d->timeout_ms = in->deliver_timeout_ms;
        return 1;
    }
    if (strcmp(name, "callback_timeout_ms") == 0) {
        d->callback_timeout_ms = in->callback_timeout_ms;
        return 1;
    }
    return 0;
}

/* Applies one update_mask entry; false for an unknown field name. */
static bool
apply_field(const char *name, const Hopper__V1__LaneSettings *in,
            store_lane_settings *s)
{
#define FIELD(f, expr)           \
    if (strcmp(name, #f) == 0) { \
        s->f = expr;             \
        return true;             \
    }
    FIELD(max_attempts, in->max_attempts)
    FIELD(backoff, (store_backoff)in->backoff)
    FIELD(backoff_base_ms, in->backoff_base_ms)
    FIELD(backoff_cap_ms, in->backoff_cap_ms)
    FIELD(backoff_factor_pct, in->backoff_factor_pct)
    FIELD(jitter_pct, in->jitter_pct)
    FIELD(retention_ms, in->retention_ms)
    FIELD(dedupe_window_ms, in->dedupe_window_ms)
    FIELD(paused, in->paused)
#undef FIELD
    return false;
}

hp_code
svc_update_lane(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__UpdateLaneRequest *req =
        (Hopper__V1__UpdateLaneRequest *)c->body;
    Hopper__V1__LaneSettings resp;
    Hopper__V1__LaneSettings none = HOPPER__V1__LANE_SETTINGS__INIT;
    const Hopper__V1__LaneSettings *in =
        req->settings != NULL ? req->settings : &none;
    hp_str lane = hp_str_c(req->lane);
    store_lane_settings s;
    store_delivery d;
    hp_code code;
    (void)now_ms;

    if (req->n_update_mask == 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING,
                             "update_mask names no field to change");
    }
    code = store_lane_get(t, c->scope, lane, &s, st);
    if (code == HP_NOT_FOUND) {
        store_lane_settings_default(&s);
    } else if (code != HP_OK) {
        return code;
    }
    if ((code = store_delivery_get(t, c->scope, lane, &d, st)) != HP_OK) {
        return code;
    }
    for (size_t i = 0; i < req->n_update_mask; i++) {
        int done = apply_delivery_field(req->update_mask[i], in, &d, st);
        if (done < 0) {
            return st->code;
        }
        if (done == 0 && !apply_field(req->update_mask[i], in, &s)) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_SETTING,
                                 "update_mask names unknown field '%.48s'",
                                 req->update_mask[i]);
        }
    }
    if ((code = store_lane_set(t, c->scope, lane, &s, st)) != HP_OK ||
        (code = store_delivery_set(t, c->scope, lane, &d, st)) != HP_OK) {
        return code;
    }
    svc_settings_to_proto(&s, &resp);
    delivery_to_proto(&d, &resp);
    return svc_pack(c, &resp.base, st);
}

hp_code
svc_set_secret(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__SetSecretRequest *req = (Hopper__V1__SetSecretRequest *)c->body;
    Hopper__V1__SetSecretResponse resp = HOPPER__V1__SET_SECRET_RESPONSE__INIT;
    uint32_t active = 0;
    hp_code code;
    (void)now_ms;

    if ((code = store_secret_set(t, c->scope, hp_str_c(req->secret_id),
                                 req->value.data, req->value.len, req->rotate,
                                 &active, st)) != HP_OK) {
        return code;
    }
    resp.secret_id = req->secret_id;
    resp.active = active;
    return svc_pack(c, &resp.base, st);
}

hp_code
svc_dead_list(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__DeadListRequest *req = (Hopper__V1__DeadListRequest *)c->body;
    store_list_req sreq =
        svc_list_req(c, req->lane, &req->cursor, req->limit, req->with_payload);
    store_list_res res;
    hp_code code;
    (void)now_ms;

    if ((code = store_dead_list(t, c->scope, &sreq, &c->arena, &res, st)) !=
        HP_OK) {
        return code;
    }
    return svc_list_response(c, &res, st);
}

typedef hp_code (*dead_fn)(call *c, store_txn *t, const store_dead_sel *sel,
                           uint64_t now_ms, store_dead_res *res, hp_status *st);

static hp_code
dead_op(call *c, store_txn *t, uint64_t now_ms, dead_fn fn, hp_status *st)
{
    Hopper__V1__DeadRequest *req = (Hopper__V1__DeadRequest *)c->body;
    Hopper__V1__DeadResponse resp = HOPPER__V1__DEAD_RESPONSE__INIT;
    store_dead_sel sel = { .lane = hp_str_c(req->lane),
                           .n_ids = req->n_ids,
                           .limit = req->limit != 0 ? req->limit
                                                    : SVC_DEFAULT_LIMIT };
    store_dead_res res;
    hp_code code;

    hp_id *ids = svc_alloc(c, (req->n_ids ? req->n_ids : 1) * sizeof(*ids), st);
    if (ids == NULL) {
        return st->code;
    }
    for (size_t i = 0; i < req->n_ids; i++) {
        if ((code = svc_parse_id(req->ids[i], &ids[i], st)) != HP_OK) {
            return code;
        }
    }
    sel.ids = ids;
    if ((code = fn(c, t, &sel, now_ms, &res, st)) != HP_OK) {
        return code;
    }
    resp.count = res.count;
    resp.more = res.more;
    return svc_pack(c, &resp.base, st);
}

static hp_code
replay_fn(call *c, store_txn *t, const store_dead_sel *sel, uint64_t now_ms,
          store_dead_res *res, hp_status *st)
{
    return store_dead_replay(t, c->scope, sel, now_ms, res, st);
}

static hp_code
purge_fn(call *c, store_txn *t, const store_dead_sel *sel, uint64_t now_ms,
         store_dead_res *res, hp_status *st)
{
    (void)now_ms;
    return store_dead_purge(t, c->scope, sel, res, st);
}

hp_code
svc_dead_replay(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    return dead_op(c, t, now_ms, replay_fn, st);
}

hp_code
svc_dead_purge(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    return dead_op(c, t, now_ms, purge_fn, st);
}

hp_code
svc_ping(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    Hopper__V1__PingResponse resp = HOPPER__V1__PING_RESPONSE__INIT;
    (void)t;

    resp.version = (char *)(uintptr_t)BROKER_VERSION;
    resp.now_ms = now_ms;
    resp.instance = c->ctx->instance;
    if (c->ctx->anonymous_exposed) {
        uint64_t suppressed;
        /* Health checks ping every few seconds: say it once an interval,
         * with how many Pings were not logged; every reply still says it. */
        if (hp_log_every_due(&c->ctx->anon_ping_warn, now_ms,
                             ANON_WARN_EVERY_MS, &suppressed)) {
            hp_log(HP_LOG_WARN, "anonymous access",
                   "detail=\"no key file, listening beyond this host\" "
                   "suppressed=%llu",
                   (unsigned long long)suppressed);
        }
        resp.warning = (char *)(uintptr_t) "anonymous access on a non-local "
                                           "listener (--allow-anonymous)";
    }
    return svc_pack(c, &resp.base, st);
}

/* ---- webhook test ---------------------------------------------------------
 */

typedef struct webhook_probe {
    store_delivery d;
    store_secret sec;
} webhook_probe;

/* The delivery part's thread: the receiver's answer. */
static void
test_webhook_done(void *arg, const deliver_test_result *r)
{
    call *c = arg;
    Hopper__V1__TestWebhookResponse resp =
        HOPPER__V1__TEST_WEBHOOK_RESPONSE__INIT;
    hp_status st;

    resp.status = (uint32_t)r->status;
    resp.body.data = (uint8_t *)(uintptr_t)r->body;
    resp.body.len = r->body_len;
    resp.error = (char *)(uintptr_t)(r->error != NULL ? r->error : "");
    resp.duration_ms = r->duration_ms;
    resp.outcome = (char *)(uintptr_t)r->outcome_name;
    hp_code code = svc_pack(c, &resp.base, &st);
    call_finish(c, code, &st);
}

/* After the read transaction: the POST goes to the delivery part. */
static void
test_webhook_detach(call *c)
{
    const Hopper__V1__TestWebhookRequest *req =
        (const Hopper__V1__TestWebhookRequest *)c->body;
    webhook_probe *p = c->detach_arg;
    hp_status st;

    bool queued = deliver_test(c->ctx->deliver, hp_str_c(req->lane), p->d.url,
                               p->d.timeout_ms, &p->sec, test_webhook_done, c);
    store_secret_clear(&p->sec);
    if (!queued) {
        hp_code code = hp_status_set(&st, HP_UNAVAILABLE, HP_R_SHUTTING_DOWN,
                                     "the delivery part is stopping or out "
                                     "of memory");
        call_finish(c, code, &st);
    }
}

hp_code
svc_test_webhook(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    const Hopper__V1__TestWebhookRequest *req =
        (const Hopper__V1__TestWebhookRequest *)c->body;
    hp_str lane = hp_str_c(req->lane);
    webhook_probe *p = svc_alloc(c, sizeof(*p), st);
    hp_code code;
    (void)now_ms;

    if (p == NULL) {
        return st->code;
    }
    if ((code = store_delivery_get(t, c->scope, lane, &p->d, st)) != HP_OK) {
        return code;
    }
    if (p->d.url[0] == '\0') {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_NOT_DELIVERING,
                             "lane '%.*s' has no deliver_url", (int)lane.len,
                             lane.p);
    }
    if ((code = store_secret_get(t, c->scope, hp_str_c(p->d.secret_id), &p->sec,
                                 st)) != HP_OK) {
        return code;
    }
    c->detach_arg = p;
    c->detach = test_webhook_detach;
    return HP_OK;
}

/* ---- backup ----------------------------------------------------------- */

/* The backup thread, once the copy is done: the answer. */
static void
backup_done(void *arg, hp_code code, const hp_status *st,
            const backup_result *r)
{
    call *c = arg;
    Hopper__V1__BackupResponse resp = HOPPER__V1__BACKUP_RESPONSE__INIT;
    hp_status pst = *st;

    if (code == HP_OK) {
        resp.path = (char *)(uintptr_t)r->path;
        resp.bytes = r->bytes;
        resp.duration_ms = r->duration_ms;
        code = svc_pack(c, &resp.base, &pst);
    }
    call_finish(c, code, &pst);
}

/* After the read transaction is closed: the copy runs on the backup
 * part's thread, so neither the writer nor an I/O thread waits for it. */
static void
backup_detach(call *c)
{
    const Hopper__V1__BackupRequest *req =
        (const Hopper__V1__BackupRequest *)c->body;
    backup_run(c->ctx->backup, c->ctx->store, req->name, backup_done, c);
}

hp_code
svc_backup(call *c, store_txn *t, uint64_t now_ms, hp_status *st)
{
    const Hopper__V1__BackupRequest *req =
        (const Hopper__V1__BackupRequest *)c->body;
    hp_code code;
    (void)t;
    (void)now_ms;

    if ((code = backup_reserve(c->ctx->backup, req->name, st)) != HP_OK) {
        return code;
    }
    c->detach = backup_detach;
    return HP_OK;
}
