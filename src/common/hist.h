/*
 * hist.h - a fixed-bucket histogram in the shape Prometheus wants:
 * a count per upper bound, a sum and a total. Observing is a few relaxed
 * atomic adds, so any thread may observe while another renders; a render
 * racing an observation may see the sum or a bucket one observation
 * apart, which scrapers tolerate.
 *
 * Values are integers (microseconds, operations); the bounds are a static
 * table shared by every histogram of one kind.
 */
#ifndef HP_COMMON_HIST_H
#define HP_COMMON_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HP_HIST_MAX_BOUNDS 24

typedef struct hp_hist {
    const uint64_t *bounds; /* ascending upper bounds, inclusive */
    size_t n_bounds;        /* at most HP_HIST_MAX_BOUNDS */
    _Atomic uint64_t counts[HP_HIST_MAX_BOUNDS + 1]; /* last: above all */
    _Atomic uint64_t sum;
} hp_hist;

/* Latencies in microseconds, 50 us to 30 s. */
extern const uint64_t hp_hist_us_bounds[];
extern const size_t hp_hist_us_n;
/* Sizes (operations per commit, messages per request), 1 to 1024. */
extern const uint64_t hp_hist_size_bounds[];
extern const size_t hp_hist_size_n;

void hp_hist_init(hp_hist *h, const uint64_t *bounds, size_t n_bounds);
void hp_hist_observe(hp_hist *h, uint64_t v);

/* A copy that is safe to do arithmetic on (deltas, quantiles). */
typedef struct hp_hist_snap {
    const uint64_t *bounds;
    size_t n_bounds;
    uint64_t counts[HP_HIST_MAX_BOUNDS + 1]; /* per bucket, not cumulative */
    uint64_t sum;
    uint64_t count;
} hp_hist_snap;

void hp_hist_read(const hp_hist *h, hp_hist_snap *out);

/* The upper bound of the bucket holding quantile q (0-1): an estimate
 * that is never below the true value, except above the last bound, where
 * the last bound is returned. 0 when empty. */
uint64_t hp_hist_quantile(const hp_hist_snap *s, double q);

#endif
