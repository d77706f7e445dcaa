/*
 * metrics.c - request counters and the /metrics text. Rendering reads
 * each counter once and writes one sample line per series; nothing here
 * takes a lock the request path holds for longer than a copy.
 */
#include "broker/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/webhook.h"
#include "common/arena.h"
#include "common/names.h"
#include "common/reasons.h"

#define LANE_PAGE 256

void
metrics_init(broker_metrics *m, size_t n_methods,
             const char *(*method_name)(size_t i))
{
    HP_ASSERT(n_methods <= METRICS_MAX_METHODS);
    memset(m, 0, sizeof(*m));
    m->n_methods = n_methods;
    m->method_name = method_name;
    for (size_t i = 0; i <= METRICS_MAX_METHODS; i++) {
        hp_hist_init(&m->latency[i], hp_hist_us_bounds, hp_hist_us_n);
    }
    m->started_wall_ms = hp_wall_ms();
}

void
metrics_request(broker_metrics *m, size_t method, hp_code code, uint64_t us)
{
    size_t i = method < m->n_methods ? method : m->n_methods;
    size_t k = (size_t)code < METRICS_CODES ? (size_t)code : HP_UNKNOWN;
    atomic_fetch_add_explicit(&m->requests[i][k], 1, memory_order_relaxed);
    hp_hist_observe(&m->latency[i], us);
}

/* ---- text output ----------------------------------------------------------
 */

typedef struct out {
    char *p;
    size_t len, cap;
    bool oom;
} out;

static void HP_PRINTF(2, 3) put(out *o, const char *fmt, ...)
{
    for (;;) {
        if (o->oom) {
            return;
        }
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        HP_ASSERT(n >= 0);
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *p = realloc(o->p, cap);
        if (p == NULL) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

static void
family(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values are scope, lane and method names ([A-Za-z0-9._:-]) and
 * code names, none of which needs escaping; escape anyway so that a
 * future name rule cannot break the format. */
static const char *
esc(char *buf, size_t cap, const char *p, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 3 < cap; i++) {
        char ch = p[i];
        if (ch == '\\' || ch == '"' || ch == '\n') {
            buf[j++] = '\\';
            ch = ch == '\n' ? 'n' : ch;
        }
        buf[j++] = ch;
    }
    buf[j] = '\0';
    return buf;
}

/* A histogram's _bucket, _sum and _count lines; scale turns the stored
 * integers into the unit of the name (1e6 for microseconds to seconds). */
static void
hist_lines(out *o, const char *name, const char *labels, const hp_hist *h,
           double scale)
{
    hp_hist_snap s;
    uint64_t cum = 0;
    const char *sep = labels[0] != '\0' ? "," : "";

    hp_hist_read(h, &s);
    for (size_t i = 0; i < s.n_bounds; i++) {
        cum += s.counts[i];
        put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
            (double)s.bounds[i] / scale, (unsigned long long)cum);
    }
    cum += s.counts[s.n_bounds];
    put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
        (unsigned long long)cum);
    if (labels[0] != '\0') {
        put(o, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels,
            (double)s.sum / scale, name, labels, (unsigned long long)cum);
    } else {
        put(o, "%s_sum %.6f\n%s_count %llu\n", name, (double)s.sum / scale,
            name, (unsigned long long)cum);
    }
}

static void
render_requests(out *o, const broker_metrics *m)
{
    char labels[96];

    family(o, "hopper_requests_total", "counter",
           "Requests answered, by method and status code.");
    for (size_t i = 0; i <= m->n_methods; i++) {
        const char *name = i < m->n_methods ? m->method_name(i) : "none";
        for (size_t k = 0; k < METRICS_CODES; k++) {
            uint64_t v =
                atomic_load_explicit(&m->requests[i][k], memory_order_relaxed);
            if (v == 0) {
                continue; /* series appear when they happen */
            }
            put(o, "hopper_requests_total{method=\"%s\",code=\"%s\"} %llu\n",
                name, hp_code_name((hp_code)k), (unsigned long long)v);
        }
    }
    family(o, "hopper_request_duration_seconds", "histogram",
           "Time from a request's arrival to its reply, by method (a "
           "long-poll claim's includes its wait).");
    for (size_t i = 0; i <= m->n_methods; i++) {
        const char *name = i < m->n_methods ? m->method_name(i) : "none";
        snprintf(labels, sizeof(labels), "method=\"%s\"", name);
        hist_lines(o, "hopper_request_duration_seconds", labels, &m->latency[i],
                   1e6);
    }
}

static void
gauge(out *o, const char *name, const char *help, double v)
{
    family(o, name, "gauge", help);
    put(o, "%s %.17g\n", name, v);
}

static void
counter(out *o, const char *name, const char *help, uint64_t v)
{
    family(o, name, "counter", help);
    put(o, "%s %llu\n", name, (unsigned long long)v);
}

static void
render_broker(out *o, const metrics_view *v)
{
    const commitq_hists *h = commitq_get_hists(v->q);
    commitq_stats cs;
    listener_stats ls;
    store_info si;

    family(o, "hopper_build_info", "gauge",
           "Always 1; the version is a label.");
    put(o, "hopper_build_info{version=\"%s\"} 1\n", BROKER_VERSION);
    gauge(o, "hopper_start_time_seconds",
          "When this hopperd started, Unix seconds.",
          (double)v->m->started_wall_ms / 1e3);
    render_requests(o, v->m);

    family(o, "hopper_commit_group_size", "histogram",
           "Operations (requests, maintenance steps) per commit.");
    hist_lines(o, "hopper_commit_group_size", "", &h->group_size, 1.0);
    family(o, "hopper_commit_duration_seconds", "histogram",
           "Applying and committing one group: what its replies waited for "
           "once the writer took them.");
    hist_lines(o, "hopper_commit_duration_seconds", "", &h->group_us, 1e6);
    family(o, "hopper_commit_sync_seconds", "histogram",
           "The commit alone: LMDB's page writes and, with --sync full, its "
           "fsyncs.");
    hist_lines(o, "hopper_commit_sync_seconds", "", &h->sync_us, 1e6);
    commitq_get_stats(v->q, &cs);
    counter(o, "hopper_commit_failures_total",
            "Commits that failed as a whole (every request in them was "
            "answered with the error).",
            cs.failed_commits);

    gauge(o, "hopper_parked_claims", "Long-poll claims waiting for a message.",
          (double)longpoll_count(v->lp));
    gauge(o, "hopper_parked_awaits",
          "Await requests waiting for their message to be settled.",
          (double)longpoll_count_awaits(v->lp));
    if (v->l != NULL) {
        listener_get_stats(v->l, &ls);
        gauge(o, "hopper_connections", "Client connections open.",
              (double)ls.connections);
        counter(o, "hopper_connections_total",
                "Client connections accepted since start.",
                ls.connections_total);
        counter(o, "hopper_connections_refused_total",
                "Connections turned away at --max-connections with none "
                "idle, or inproc:// ones from another process.",
                ls.refused_total);
        counter(o, "hopper_connections_evicted_total",
                "Idle connections closed to make room at "
                "--max-connections.",
                ls.evicted_total);
        counter(o, "hopper_connections_dropped_total",
                "Connections closed for breaking the protocol or a budget "
                "(oversized or stalled frame, replies not read).",
                ls.dropped_total);
        gauge(o, "hopper_requests_in_flight",
              "Requests read and not yet answered, parked long-polls "
              "included.",
              (double)ls.inflight);
        gauge(o, "hopper_partial_frame_bytes",
              "Bytes held for frames that have not fully arrived.",
              (double)ls.partial_bytes);
        gauge(o, "hopper_unsent_reply_bytes",
              "Reply bytes waiting for their client to read them.",
              (double)ls.unsent_bytes);
    }
    if (v->api[0] != NULL || v->api[1] != NULL) {
        api_stats as = { 0 }, one;
        for (size_t i = 0; i < HP_ARRAY_LEN(v->api); i++) {
            if (v->api[i] != NULL) {
                api_get_stats(v->api[i], &one);
                as.requests_total += one.requests_total;
                as.refused_total += one.refused_total;
                as.body_bytes += one.body_bytes;
            }
        }
        counter(o, "hopper_api_requests_total",
                "HTTP API requests answered (docs/http.md).",
                as.requests_total);
        counter(o, "hopper_api_refused_total",
                "HTTP API requests refused before the broker saw them: bad "
                "HTTP, a body over a budget, one that stopped arriving.",
                as.refused_total);
        gauge(o, "hopper_api_body_bytes",
              "HTTP API request bodies being read or decoded.",
              (double)as.body_bytes);
    }
    store_get_info(v->store, &si);
    gauge(o, "hopper_map_used_bytes",
          "Highest page in use in the store file times the page size (freed "
          "pages below it are reused).",
          (double)si.used_bytes);
    gauge(o, "hopper_map_size_bytes", "Current LMDB map size.",
          (double)si.map_size);
    gauge(o, "hopper_map_limit_bytes", "The map's ceiling (--max-map-size).",
          (double)si.max_map_size);
    gauge(o, "hopper_store_readers", "LMDB reader slots in use.",
          (double)si.readers);
    gauge(o, "hopper_map_writable",
          "1 when the store file is mapped writable (--sync none with the "
          "disk space to reserve the map), else 0.",
          si.writemap ? 1.0 : 0.0);
}

/* ---- lanes ------------------------------------------------------------- */

typedef struct lane_series {
    const char *name;
    const char *type;
    const char *help;
    size_t offset; /* of a uint64_t in store_lane_stats */
    double scale;
} lane_series;

#define LANE_FIELD(f) offsetof(store_lane_stats, f)

static const lane_series lane_table[] = {
    { "hopper_lane_oldest_pending_age_seconds", "gauge",
      "Age of the oldest message that is due and unclaimed.",
      LANE_FIELD(oldest_pending_age_ms), 1e3 },
    { "hopper_lane_enqueued_total", "counter", "Messages enqueued.",
      LANE_FIELD(enqueued_total), 1 },
    { "hopper_lane_dedupe_hits_total", "counter",
      "Enqueues answered with an earlier message's id (dedupe key).",
      LANE_FIELD(dedupe_hits_total), 1 },
    { "hopper_lane_claimed_total", "counter", "Messages handed out.",
      LANE_FIELD(claimed_total), 1 },
    { "hopper_lane_acked_total", "counter", "Messages acknowledged.",
      LANE_FIELD(acked_total), 1 },
    { "hopper_lane_nacked_total", "counter", "Negative acknowledgements.",
      LANE_FIELD(nacked_total), 1 },
    { "hopper_lane_dead_lettered_total", "counter",
      "Messages that became dead letters.", LANE_FIELD(dead_total), 1 },
    { "hopper_lane_lease_expired_total", "counter",
      "Leases that ran out before an ack.", LANE_FIELD(expired_total), 1 },
    { "hopper_lane_replayed_total", "counter",
      "Dead letters put back to pending.", LANE_FIELD(replayed_total), 1 },
    { "hopper_lane_purged_total", "counter", "Dead letters deleted.",
      LANE_FIELD(purged_total), 1 },
};

static const struct {
    const char *state;
    size_t offset;
} state_table[] = {
    { "pending", LANE_FIELD(pending) }, { "delayed", LANE_FIELD(delayed) },
    { "claimed", LANE_FIELD(claimed) }, { "delivered", LANE_FIELD(delivered) },
    { "dead", LANE_FIELD(dead) },
};

static uint64_t
field(const store_lane_stats *s, size_t offset)
{
    uint64_t v;
    memcpy(&v, (const char *)s + offset, sizeof(v));
    return v;
}

typedef struct lane_read {
    const metrics_view *v;
    hp_arena arena;
    store_lane_stats *lanes; /* gathered pages, in the arena */
    size_t n;
    bool truncated;
} lane_read;

static hp_code
read_lanes(store_txn *t, void *arg, hp_status *st)
{
    lane_read *r = arg;
    uint32_t cap = r->v->max_lanes;
    uint64_t now = hp_clock_now_ms(r->v->clock);
    const void *cursor = NULL;
    size_t cursor_len = 0;
    hp_code code;

    r->lanes = hp_arena_alloc(&r->arena, (cap + 1) * sizeof(*r->lanes));
    if (r->lanes == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    r->n = 0;
    while (r->n < cap) {
        store_lanes_res page;
        uint32_t want = cap - (uint32_t)r->n;
        /* No targets: a scrape needs counters only, and listing a lane's
         * targets costs a seek each. */
        store_lanes_req req = { .cursor = cursor,
                                .cursor_len = cursor_len,
                                .limit = want < LANE_PAGE ? want : LANE_PAGE };
        if ((code = store_list_all_lanes(t, &req, now, &r->arena, &page, st)) !=
            HP_OK) {
            return code;
        }
        memcpy(&r->lanes[r->n], page.lanes, page.n * sizeof(*page.lanes));
        r->n += page.n;
        if (page.next_cursor == NULL) {
            return HP_OK;
        }
        cursor = page.next_cursor;
        cursor_len = page.next_cursor_len;
    }
    r->truncated = true; /* the cap is reached and more lanes follow */
    return HP_OK;
}

static void
render_lanes(out *o, const lane_read *r)
{
    char sc[2 * HP_NAME_MAX + 1], ln[2 * HP_NAME_MAX + 1];

    family(o, "hopper_lanes_exported", "gauge",
           "Lanes in this scrape (at most --metrics-max-lanes).");
    put(o, "hopper_lanes_exported %zu\n", r->n);
    family(o, "hopper_lanes_truncated", "gauge",
           "1 when more lanes exist than --metrics-max-lanes allows; the "
           "rest are left out, in scope and lane name order.");
    put(o, "hopper_lanes_truncated %d\n", r->truncated ? 1 : 0);
    family(o, "hopper_lane_messages", "gauge",
           "Messages in a lane by state (delivered: still retained).");
    for (size_t i = 0; i < r->n; i++) {
        const store_lane_stats *s = &r->lanes[i];
        esc(sc, sizeof(sc), s->scope.p, s->scope.len);
        esc(ln, sizeof(ln), s->lane.p, s->lane.len);
        for (size_t k = 0; k < HP_ARRAY_LEN(state_table); k++) {
            put(o,
                "hopper_lane_messages{scope=\"%s\",lane=\"%s\",state=\"%s\"} "
                "%llu\n",
                sc, ln, state_table[k].state,
                (unsigned long long)field(s, state_table[k].offset));
        }
    }
    for (size_t f = 0; f < HP_ARRAY_LEN(lane_table); f++) {
        const lane_series *ls = &lane_table[f];
        family(o, ls->name, ls->type, ls->help);
        for (size_t i = 0; i < r->n; i++) {
            const store_lane_stats *s = &r->lanes[i];
            uint64_t v = field(s, ls->offset);
            esc(sc, sizeof(sc), s->scope.p, s->scope.len);
            esc(ln, sizeof(ln), s->lane.p, s->lane.len);
            if (ls->scale == 1) {
                put(o, "%s{scope=\"%s\",lane=\"%s\"} %llu\n", ls->name, sc, ln,
                    (unsigned long long)v);
            } else {
                put(o, "%s{scope=\"%s\",lane=\"%s\"} %.3f\n", ls->name, sc, ln,
                    (double)v / ls->scale);
            }
        }
    }
}

static void
delivery_counts(void *arg, const deliver_lane_stats *s)
{
    static const char *const classes[DELIVER_CLASSES] = {
        "none", "1xx", "2xx", "3xx", "4xx", "5xx"
    };
    out *o = arg;
    for (size_t i = 0; i < DELIVER_OUTCOMES; i++) {
        for (size_t k = 0; k < DELIVER_CLASSES; k++) {
            if (s->n[i][k] != 0) {
                put(o,
                    "hopper_deliveries_total{scope=\"%.*s\",lane=\"%.*s\","
                    "outcome=\"%s\",class=\"%s\"} %llu\n",
                    (int)s->scope.len, s->scope.p, (int)s->lane.len, s->lane.p,
                    webhook_outcome_name((webhook_outcome)i), classes[k],
                    (unsigned long long)s->n[i][k]);
            }
        }
    }
}

static void
delivery_latency(void *arg, const deliver_lane_stats *s)
{
    out *o = arg;
    char labels[192];
    snprintf(labels, sizeof(labels), "scope=\"%.*s\",lane=\"%.*s\"",
             (int)s->scope.len, s->scope.p, (int)s->lane.len, s->lane.p);
    hist_lines(o, "hopper_delivery_duration_seconds", labels, s->latency_us,
               1e6);
}

/* Delivery lanes (docs/webhooks.md): counters since start, per lane. */
static void
render_deliveries(out *o, const metrics_view *v)
{
    family(o, "hopper_deliveries_total", "counter",
           "Webhook deliveries finished, by lane, outcome (ack, dead, "
           "retry, accepted: a 202 awaiting its callback) and status class "
           "(none: no answer).");
    deliver_stats_each(v->deliver, delivery_counts, o);
    family(o, "hopper_delivery_duration_seconds", "histogram",
           "Time from sending a webhook delivery to its answer or cut, by "
           "lane.");
    deliver_stats_each(v->deliver, delivery_latency, o);
}

hp_code
metrics_render(const metrics_view *v, char **text, size_t *len, hp_status *st)
{
    out o = { .p = malloc(16384), .cap = 16384 };
    lane_read r = { .v = v };
    hp_code code;

    if (o.p == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    o.p[0] = '\0';
    hp_arena_init(&r.arena);
    render_broker(&o, v);
    render_deliveries(&o, v);
    commitq_wait_visible(v->q); /* counts include what was acknowledged */
    code = store_run(v->store, false, read_lanes, &r, st);
    if (code == HP_OK) {
        render_lanes(&o, &r);
    }
    hp_arena_release(&r.arena);
    if (code == HP_OK && o.oom) {
        code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    if (code != HP_OK) {
        free(o.p);
        return code;
    }
    *text = o.p;
    *len = o.len;
    return HP_OK;
}
