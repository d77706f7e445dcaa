/*
 * metrics.h - hopperd's numbers for Prometheus. The broker counts requests
 * as they are answered (by method and status code, with a latency
 * histogram per method); everything else is read when scraped: the commit
 * queue's histograms, connections, parked long-polls and Awaits, the HTTP
 * API, the map, and the gauges and totals of each lane, straight from the
 * store in one read transaction. docs/operations.md lists every metric.
 */
#ifndef HP_BROKER_METRICS_H
#define HP_BROKER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/api.h"
#include "broker/commitq.h"
#include "broker/deliver.h"
#include "broker/listener.h"
#include "broker/longpoll.h"
#include "common/clock.h"
#include "common/hist.h"
#include "common/status.h"
#include "store/store.h"

#define METRICS_MAX_METHODS 32
#define METRICS_CODES       17 /* HP_OK .. HP_UNAUTHENTICATED */

typedef struct broker_metrics {
    size_t n_methods; /* the index n_methods counts undecodable requests */
    const char *(*method_name)(size_t i);
    _Atomic uint64_t requests[METRICS_MAX_METHODS + 1][METRICS_CODES];
    hp_hist latency[METRICS_MAX_METHODS + 1];
    uint64_t started_wall_ms;
} broker_metrics;

/* Counts n_methods methods, named by method_name (static strings). */
void metrics_init(broker_metrics *m, size_t n_methods,
                  const char *(*method_name)(size_t i));

/* Counts one answered request; us from its arrival to its reply. A method
 * of n_methods or more counts as none (undecodable). Any thread. */
void metrics_request(broker_metrics *m, size_t method, hp_code code,
                     uint64_t us);

/* What a scrape reads besides the request counters, each part through its
 * own functions; all borrowed. l may be NULL. */
typedef struct metrics_view {
    const broker_metrics *m;
    commitq *q;
    listener *l;
    longpoll *lp;
    api_server *api[2]; /* --api, --api-tls; NULL where not served */
    store *store;
    hp_clock *clock;
    uint32_t max_lanes; /* lanes exported, in name order */
    deliver *deliver;   /* delivery lanes' counters; may be NULL */
} metrics_view;

/* The text exposition format (version 0.0.4) of everything, in a malloc'd
 * buffer. RESOURCE_EXHAUSTED when memory runs out, or the store's error
 * when the lanes cannot be read. Any thread. */
HP_MUST_USE hp_code metrics_render(const metrics_view *v, char **out,
                                   size_t *len, hp_status *st);

#endif
