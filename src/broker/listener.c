/*
 * listener.c - rep0 contexts with async aio.
 *
 * A worker is a context and its aio. It receives a request, hands it to the
 * handler, and once the reply is sent goes back to receiving. When a request
 * arrives and fewer than min_idle workers are left waiting, a new worker is
 * added, so thousands of requests (long-polls included) can be in flight;
 * the pool never shrinks, and stops growing at max_inflight, after which new
 * requests wait in NNG until a worker is free.
 */
#include "broker/listener.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "common/log.h"

#define MAX_URLS 16

typedef enum wstate {
    W_RECV,
    W_BUSY,
    W_SEND,
} wstate;

struct listener_worker {
    listener *l;
    nng_ctx ctx;
    nng_aio *aio;
    wstate state;
    uint32_t conn;         /* pipe id of the request being handled */
    listener_worker *next; /* l->mtx */
};

struct listener {
    nng_socket sock;
    nng_listener ls[MAX_URLS];
    char *urls[MAX_URLS];
    size_t n;
    bool accepting;
    listener_handler fn;
    void *arg;
    uint32_t send_timeout_ms;
    uint32_t min_idle, max_inflight;

    pthread_mutex_t mtx;
    listener_worker *workers; /* l->mtx */
    _Atomic uint32_t total;
    _Atomic uint32_t idle;
    _Atomic uint32_t sending;
    _Atomic bool closing;
};

static hp_code
nng_status(hp_status *st, int rv, const char *what, const char *url)
{
    switch (rv) {
    case NNG_EADDRINUSE:
        return hp_status_set(st, HP_UNAVAILABLE, "ADDRESS_IN_USE",
                             "%s '%s': address already in use", what, url);
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
    case NNG_EINVAL:
        return hp_status_set(st, HP_INVALID_ARGUMENT, "BAD_URL", "%s '%s': %s",
                             what, url, nng_strerror(rv));
    case NNG_EPERM:
        return hp_status_set(st, HP_PERMISSION_DENIED, "BAD_URL", "%s '%s': %s",
                             what, url, nng_strerror(rv));
    case NNG_ENOMEM:
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "%s: out of memory", what);
    default:
        return hp_status_set(st, HP_UNAVAILABLE, "LISTEN_FAILED", "%s '%s': %s",
                             what, url, nng_strerror(rv));
    }
}

static void worker_cb(void *arg);

static void
start_recv(listener_worker *w)
{
    w->state = W_RECV;
    nng_aio_set_timeout(w->aio, NNG_DURATION_INFINITE);
    atomic_fetch_add(&w->l->idle, 1);
    nng_ctx_recv(w->ctx, w->aio);
}

static int
spawn_worker(listener *l)
{
    listener_worker *w = calloc(1, sizeof(*w));
    int rv;
    if (w == NULL) {
        return NNG_ENOMEM;
    }
    w->l = l;
    if ((rv = nng_aio_alloc(&w->aio, worker_cb, w)) != 0) {
        free(w);
        return rv;
    }
    if ((rv = nng_ctx_open(&w->ctx, l->sock)) != 0) {
        nng_aio_free(w->aio);
        free(w);
        return rv;
    }
    pthread_mutex_lock(&l->mtx);
    if (atomic_load(&l->closing)) {
        /* listener_close has taken the list already: this one would never
         * be stopped or freed. */
        pthread_mutex_unlock(&l->mtx);
        nng_ctx_close(w->ctx);
        nng_aio_free(w->aio);
        free(w);
        return NNG_ECLOSED;
    }
    w->next = l->workers;
    l->workers = w;
    atomic_fetch_add(&l->total, 1);
    pthread_mutex_unlock(&l->mtx);
    start_recv(w);
    return 0;
}

static void
on_request(listener_worker *w)
{
    listener *l = w->l;
    nng_msg *msg = nng_aio_get_msg(w->aio);

    atomic_fetch_sub(&l->idle, 1);
    if (atomic_load(&l->idle) < l->min_idle &&
        atomic_load(&l->total) < l->max_inflight && !atomic_load(&l->closing)) {
        int rv = spawn_worker(l);
        if (rv != 0) {
            hp_log(HP_LOG_WARN, "cannot add a context", "err=\"%s\"",
                   nng_strerror(rv));
        }
    }
    w->state = W_BUSY;
    w->conn = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
    l->fn(l->arg, nng_msg_body(msg), nng_msg_len(msg), w);
    nng_msg_free(msg);
}

static void
worker_cb(void *arg)
{
    listener_worker *w = arg;
    listener *l = w->l;
    int rv = nng_aio_result(w->aio);

    switch (w->state) {
    case W_RECV:
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
            atomic_fetch_sub(&l->idle, 1);
            return;
        }
        if (rv != 0) {
            /* A receive error on one pipe: keep serving. */
            atomic_fetch_sub(&l->idle, 1);
            start_recv(w);
            return;
        }
        on_request(w);
        return;
    case W_SEND:
        atomic_fetch_sub(&l->sending, 1);
        if (rv != 0) {
            /* Timed out or the client went away: drop the reply. */
            nng_msg_free(nng_aio_get_msg(w->aio));
            hp_log(HP_LOG_DEBUG, "reply dropped", "err=\"%s\"",
                   nng_strerror(rv));
        }
        if (rv == NNG_ECLOSED || atomic_load(&l->closing)) {
            return;
        }
        start_recv(w);
        return;
    case W_BUSY:
        return;
    }
}

uint32_t
listener_conn(const listener_worker *w)
{
    return w->conn;
}

void
listener_reply(listener_worker *w, const void *data, size_t len)
{
    nng_msg *msg;
    if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, data, len) != 0) {
        /* Without memory the client's own timeout must answer for us. */
        hp_log(HP_LOG_ERROR, "cannot allocate a reply", "bytes=%zu", len);
        start_recv(w);
        return;
    }
    w->state = W_SEND;
    atomic_fetch_add(&w->l->sending, 1);
    nng_aio_set_msg(w->aio, msg);
    nng_aio_set_timeout(w->aio, (nng_duration)w->l->send_timeout_ms);
    nng_ctx_send(w->ctx, w->aio);
}

static char *
bound_url(nng_listener nl, const char *url)
{
    nng_sockaddr sa;
    char buf[256];
    if (strncmp(url, "tcp://", 6) != 0 ||
        nng_listener_get_addr(nl, NNG_OPT_LOCADDR, &sa) != 0 ||
        (sa.s_family != NNG_AF_INET && sa.s_family != NNG_AF_INET6)) {
        return strdup(url);
    }
    /* Keep the host as written; fill in the port the system chose. */
    const char *host = url + 6;
    const char *colon = strrchr(host, ':');
    size_t hlen = colon != NULL ? (size_t)(colon - host) : strlen(host);
    unsigned port =
        sa.s_family == NNG_AF_INET ? sa.s_in.sa_port : sa.s_in6.sa_port;
    port = ((port & 0xffu) << 8) | ((port >> 8) & 0xffu); /* network order */
    snprintf(buf, sizeof(buf), "tcp://%.*s:%u", (int)hlen, host, port);
    return strdup(buf);
}

hp_code
listener_open(const listener_opts *o, listener_handler fn, void *arg,
              listener **out, hp_status *st)
{
    listener *l = calloc(1, sizeof(*l));
    hp_code code = HP_OK;
    int rv;

    if (l == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    if (o->n_urls == 0 || o->n_urls > MAX_URLS) {
        free(l);
        return hp_status_set(st, HP_INVALID_ARGUMENT, "BAD_URL",
                             "need 1-%d listen URLs", MAX_URLS);
    }
    pthread_mutex_init(&l->mtx, NULL);
    l->fn = fn;
    l->arg = arg;
    l->send_timeout_ms = o->send_timeout_ms;
    l->min_idle = o->min_idle > 0 ? o->min_idle : 1;
    l->max_inflight =
        o->max_inflight > l->min_idle ? o->max_inflight : l->min_idle;
    if ((rv = nng_rep0_open(&l->sock)) != 0) {
        pthread_mutex_destroy(&l->mtx);
        free(l);
        return nng_status(st, rv, "cannot open socket", "rep0");
    }
    for (size_t i = 0; i < o->n_urls; i++) {
        const char *url = o->urls[i];
        if (strncmp(url, "ipc://", 6) == 0) {
            /* NNG 1.5.2's ipc listener stops accepting for good after one
             * peer drops during the handshake (nng#1518, unfixed in
             * Debian 12): a local user could take the broker off the air.
             * Loopback TCP is as fast here and unaffected. */
            code = hp_status_set(st, HP_INVALID_ARGUMENT, "BAD_URL",
                                 "ipc:// is not offered with NNG 1.5.2 "
                                 "(nng#1518); listen on "
                                 "tcp://127.0.0.1:PORT instead");
            goto fail;
        }
        if ((rv = nng_listener_create(&l->ls[i], l->sock, url)) != 0) {
            code = nng_status(st, rv, "cannot listen on", url);
            goto fail;
        }
        l->n = i + 1;
        if ((rv = nng_listener_set_size(l->ls[i], NNG_OPT_RECVMAXSZ,
                                        o->max_frame)) != 0 ||
            (rv = nng_listener_start(l->ls[i], 0)) != 0) {
            code = nng_status(st, rv, "cannot listen on", url);
            goto fail;
        }
        l->urls[i] = bound_url(l->ls[i], url);
    }
    l->accepting = true;
    for (uint32_t i = 0; i < l->min_idle; i++) {
        if ((rv = spawn_worker(l)) != 0) {
            code = nng_status(st, rv, "cannot open context", "rep0");
            goto fail;
        }
    }
    *out = l;
    return HP_OK;
fail:
    listener_close(l);
    return code;
}

const char *
listener_url(const listener *l, size_t i)
{
    return i < l->n ? l->urls[i] : NULL;
}

static void
stop_accepting(listener *l)
{
    if (!l->accepting) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        nng_listener_close(l->ls[i]);
    }
    l->accepting = false;
}

void
listener_drain(listener *l, uint32_t timeout_ms)
{
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    for (uint32_t waited = 0;
         atomic_load(&l->sending) > 0 && waited < timeout_ms; waited += 5) {
        nanosleep(&ts, NULL);
    }
}

void
listener_close(listener *l)
{
    if (l == NULL) {
        return;
    }
    pthread_mutex_lock(&l->mtx);
    atomic_store(&l->closing, true);
    listener_worker *all = l->workers;
    l->workers = NULL;
    pthread_mutex_unlock(&l->mtx);
    /* Stop every aio (cancelling receives and sends still pending) and
     * close every context before the socket: nng_close with contexts that
     * still have operations in flight can wait forever in NNG 1.5 (seen
     * here under load, like nng#1813). Every aio is stopped before any is
     * freed, because a callback of one may still be running until its stop
     * returns. */
    for (listener_worker *w = all; w != NULL; w = w->next) {
        nng_aio_stop(w->aio);
    }
    for (listener_worker *w = all; w != NULL; w = w->next) {
        nng_ctx_close(w->ctx);
    }
    stop_accepting(l);
    nng_close(l->sock);
    while (all != NULL) {
        listener_worker *next = all->next;
        nng_aio_free(all->aio);
        free(all);
        all = next;
    }
    for (size_t i = 0; i < l->n; i++) {
        free(l->urls[i]);
    }
    pthread_mutex_destroy(&l->mtx);
    free(l);
}
