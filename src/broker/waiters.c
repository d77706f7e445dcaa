/*
 * waiters.c - a chained hash table of parked claims. Wakes are per lane and
 * touch one bucket, whose chain is kept in parking order (appended at the
 * tail; a claim parked again goes back to its old place); timeouts scan
 * the table, which the timer thread does only when the earliest deadline
 * (kept exact on park, recomputed lazily) has come.
 */
#include "broker/waiters.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS      1024
#define CONN_BUCKETS 256

/* Parked claims of one connection. */
typedef struct conn_count {
    struct conn_count *next;
    uint32_t conn;
    uint32_t n;
} conn_count;

struct waiters {
    pthread_mutex_t mtx;
    waiter *bucket[BUCKETS]; /* w->mtx; oldest first */
    waiter *tail[BUCKETS];   /* w->mtx */
    size_t count;            /* w->mtx */
    uint64_t next_seq;       /* w->mtx */
    size_t any_at;           /* w->mtx; where take_any looks first */
    uint32_t max_parked;
    uint32_t max_per_conn;
    uint64_t earliest; /* w->mtx; a lower bound of every deadline */
    bool closed;       /* w->mtx */
    conn_count *conns[CONN_BUCKETS]; /* w->mtx */
};

static conn_count **
conn_slot(waiters *w, uint32_t conn)
{
    conn_count **p = &w->conns[conn % CONN_BUCKETS];
    while (*p != NULL && (*p)->conn != conn) {
        p = &(*p)->next;
    }
    return p;
}

static void
conn_release(waiters *w, uint32_t conn)
{
    conn_count **p = conn_slot(w, conn);
    if (*p != NULL && --(*p)->n == 0) {
        conn_count *dead = *p;
        *p = dead->next;
        free(dead);
    }
}

static uint32_t
lane_hash(hp_str scope, hp_str lane)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < scope.len; i++) {
        h = (h ^ (uint8_t)scope.p[i]) * 16777619u;
    }
    h = (h ^ 0xff) * 16777619u;
    for (size_t i = 0; i < lane.len; i++) {
        h = (h ^ (uint8_t)lane.p[i]) * 16777619u;
    }
    return h;
}

hp_code
waiters_new(uint32_t max_parked, uint32_t max_per_conn, waiters **out,
            hp_status *st)
{
    waiters *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    pthread_mutex_init(&w->mtx, NULL);
    w->max_parked = max_parked;
    w->max_per_conn = max_per_conn;
    w->earliest = UINT64_MAX;
    *out = w;
    return HP_OK;
}

void
waiters_free(waiters *w)
{
    if (w == NULL) {
        return;
    }
    for (size_t i = 0; i < CONN_BUCKETS; i++) {
        while (w->conns[i] != NULL) {
            conn_count *next = w->conns[i]->next;
            free(w->conns[i]);
            w->conns[i] = next;
        }
    }
    pthread_mutex_destroy(&w->mtx);
    free(w);
}

hp_code
waiters_park(waiters *w, waiter *wt, uint32_t conn, hp_str scope, hp_str lane,
             uint64_t until_mono_ms, hp_status *st)
{
    wt->hash = lane_hash(scope, lane);
    hp_lane_key_set(&wt->key, scope, lane);
    wt->until_mono_ms = until_mono_ms;
    wt->out_next = NULL;
    wt->conn = conn;
    pthread_mutex_lock(&w->mtx);
    if (w->closed) {
        pthread_mutex_unlock(&w->mtx);
        return hp_status_set(st, HP_UNAVAILABLE, HP_R_SHUTTING_DOWN,
                             "broker is shutting down");
    }
    if (w->count >= w->max_parked) {
        pthread_mutex_unlock(&w->mtx);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_TOO_MANY_WAITERS,
                             "too many long-poll claims are parked (%u)",
                             w->max_parked);
    }
    conn_count **cc = conn_slot(w, conn);
    if (*cc != NULL && (*cc)->n >= w->max_per_conn) {
        pthread_mutex_unlock(&w->mtx);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_TOO_MANY_WAITERS,
                             "this connection has %u long-poll claims "
                             "parked already",
                             w->max_per_conn);
    }
    if (*cc == NULL) {
        *cc = calloc(1, sizeof(**cc));
        if (*cc == NULL) {
            pthread_mutex_unlock(&w->mtx);
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        }
        (*cc)->conn = conn;
    }
    (*cc)->n++;
    if (wt->seq == 0) {
        wt->seq = ++w->next_seq;
    }
    size_t b = wt->hash % BUCKETS;
    waiter *after = w->tail[b];
    while (after != NULL && after->seq > wt->seq) {
        after = after->prev; /* parked again: back to its place */
    }
    wt->prev = after;
    wt->next = after != NULL ? after->next : w->bucket[b];
    if (wt->next != NULL) {
        wt->next->prev = wt;
    } else {
        w->tail[b] = wt;
    }
    if (after != NULL) {
        after->next = wt;
    } else {
        w->bucket[b] = wt;
    }
    w->count++;
    if (until_mono_ms < w->earliest) {
        w->earliest = until_mono_ms;
    }
    pthread_mutex_unlock(&w->mtx);
    return HP_OK;
}

static void
unlink_waiter(waiters *w, waiter *wt)
{
    if (wt->prev != NULL) {
        wt->prev->next = wt->next;
    } else {
        w->bucket[wt->hash % BUCKETS] = wt->next;
    }
    if (wt->next != NULL) {
        wt->next->prev = wt->prev;
    } else {
        w->tail[wt->hash % BUCKETS] = wt->prev;
    }
    wt->next = wt->prev = NULL;
    w->count--;
    conn_release(w, wt->conn);
}

waiter *
waiters_take_oldest(waiters *w, hp_str scope, hp_str lane)
{
    uint32_t h = lane_hash(scope, lane);
    waiter *wt;

    pthread_mutex_lock(&w->mtx);
    for (wt = w->bucket[h % BUCKETS]; wt != NULL; wt = wt->next) {
        if (wt->hash == h && hp_lane_key_is(&wt->key, scope, lane)) {
            unlink_waiter(w, wt);
            wt->out_next = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&w->mtx);
    return wt;
}

waiter *
waiters_take_any(waiters *w)
{
    waiter *wt = NULL;

    pthread_mutex_lock(&w->mtx);
    for (size_t i = 0; i < BUCKETS && w->count > 0 && wt == NULL; i++) {
        size_t b = (w->any_at + i) % BUCKETS;
        if ((wt = w->bucket[b]) != NULL) {
            unlink_waiter(w, wt);
            wt->out_next = NULL;
            w->any_at = b;
        }
    }
    pthread_mutex_unlock(&w->mtx);
    return wt;
}

static waiter *
take_matching(waiters *w, uint64_t now_mono_ms, bool all)
{
    waiter *out = NULL, **tail = &out;
    uint64_t earliest = UINT64_MAX;

    pthread_mutex_lock(&w->mtx);
    w->closed = w->closed || all;
    if (!all && now_mono_ms < w->earliest) {
        pthread_mutex_unlock(&w->mtx);
        return NULL;
    }
    for (size_t b = 0; b < BUCKETS && w->count > 0; b++) {
        waiter *wt = w->bucket[b];
        while (wt != NULL) {
            waiter *next = wt->next;
            if (all || wt->until_mono_ms <= now_mono_ms) {
                unlink_waiter(w, wt);
                *tail = wt;
                tail = &wt->out_next;
                wt->out_next = NULL;
            } else if (wt->until_mono_ms < earliest) {
                earliest = wt->until_mono_ms;
            }
            wt = next;
        }
    }
    w->earliest = earliest;
    pthread_mutex_unlock(&w->mtx);
    return out;
}

waiter *
waiters_take_expired(waiters *w, uint64_t now_mono_ms)
{
    return take_matching(w, now_mono_ms, false);
}

waiter *
waiters_close(waiters *w)
{
    return take_matching(w, 0, true);
}

waiter *
waiters_take_conn(waiters *w, uint32_t conn)
{
    waiter *out = NULL, **tail = &out;

    pthread_mutex_lock(&w->mtx);
    /* Most connections that close have nothing parked: one lookup. */
    conn_count *cc = *conn_slot(w, conn);
    uint32_t left = cc != NULL ? cc->n : 0;
    for (size_t b = 0; b < BUCKETS && left > 0; b++) {
        waiter *wt = w->bucket[b];
        while (wt != NULL && left > 0) {
            waiter *next = wt->next;
            if (wt->conn == conn) {
                unlink_waiter(w, wt);
                *tail = wt;
                tail = &wt->out_next;
                wt->out_next = NULL;
                left--;
            }
            wt = next;
        }
    }
    pthread_mutex_unlock(&w->mtx);
    return out;
}

uint64_t
waiters_next_deadline(waiters *w)
{
    pthread_mutex_lock(&w->mtx);
    uint64_t e = w->count > 0 ? w->earliest : UINT64_MAX;
    pthread_mutex_unlock(&w->mtx);
    return e;
}

size_t
waiters_count(waiters *w)
{
    pthread_mutex_lock(&w->mtx);
    size_t n = w->count;
    pthread_mutex_unlock(&w->mtx);
    return n;
}
