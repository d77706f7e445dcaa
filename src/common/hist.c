#include "common/hist.h"

#include "common/compiler.h"

/* Fine where a durable commit lives (0.1-5 ms), coarse beyond. */
const uint64_t hp_hist_us_bounds[] = {
    50,     100,    200,     300,     400,     500,      750,      1000,
    1500,   2000,   3000,    5000,    10000,   25000,    50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,
};
const size_t hp_hist_us_n = HP_ARRAY_LEN(hp_hist_us_bounds);

const uint64_t hp_hist_size_bounds[] = {
    1,  2,  3,  4,   6,   8,   12,  16,  24,  32,
    48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
};
const size_t hp_hist_size_n = HP_ARRAY_LEN(hp_hist_size_bounds);

void
hp_hist_init(hp_hist *h, const uint64_t *bounds, size_t n_bounds)
{
    HP_ASSERT(n_bounds <= HP_HIST_MAX_BOUNDS);
    h->bounds = bounds;
    h->n_bounds = n_bounds;
    for (size_t i = 0; i <= HP_HIST_MAX_BOUNDS; i++) {
        atomic_init(&h->counts[i], 0);
    }
    atomic_init(&h->sum, 0);
}

void
hp_hist_observe(hp_hist *h, uint64_t v)
{
    /* Binary search: the first bound >= v. */
    size_t lo = 0, hi = h->n_bounds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->bounds[mid] < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

void
hp_hist_read(const hp_hist *h, hp_hist_snap *out)
{
    out->bounds = h->bounds;
    out->n_bounds = h->n_bounds;
    out->count = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        out->counts[i] =
            atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        out->count += out->counts[i];
    }
    out->sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
}

uint64_t
hp_hist_quantile(const hp_hist_snap *s, double q)
{
    if (s->count == 0) {
        return 0;
    }
    /* The rank of the quantile, 1-based, rounded up. */
    double want = q * (double)s->count;
    uint64_t cum = 0;
    for (size_t i = 0; i < s->n_bounds; i++) {
        cum += s->counts[i];
        if ((double)cum >= want) {
            return s->bounds[i];
        }
    }
    return s->bounds[s->n_bounds - 1];
}
