/*
 * http.c - the operator endpoint. Handlers run on NNG's threads; /metrics
 * renders from counters and one store read transaction, /readyz sends a
 * small write through the commit queue, so "ready" means the writer
 * thread is alive and a commit reached the disk (and enqueues are not
 * being refused for space), not merely that the process runs.
 */
#include "broker/http.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "broker/nnghttp.h"
#include "common/log.h"
#include "common/reasons.h"

#define READY_WAIT_MS 2000
#define PROM_TYPE     "text/plain; version=0.0.4; charset=utf-8"

struct http_server {
    nng_http_server *srv;
    char url[96];
    metrics_view metrics;
    commitq *q;
    const _Atomic bool *stopping;
};

static void
respond(nng_aio *aio, uint16_t status, const char *type, const void *body,
        size_t len)
{
    nng_http_res *res;
    int rv;

    if ((rv = nng_http_res_alloc(&res)) != 0) {
        nng_aio_finish(aio, rv);
        return;
    }
    if ((rv = nng_http_res_set_status(res, status)) != 0 ||
        (rv = nng_http_res_set_header(res, "Content-Type", type)) != 0 ||
        (rv = nng_http_res_set_header(res, "Cache-Control", "no-store")) != 0 ||
        (rv = nng_http_res_copy_data(res, body, len)) != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void
respond_text(nng_aio *aio, uint16_t status, const char *text)
{
    respond(aio, status, "text/plain; charset=utf-8", text, strlen(text));
}

static http_server *
handler_server(nng_aio *aio)
{
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    return nng_http_handler_get_data(h);
}

static void
on_metrics(nng_aio *aio)
{
    http_server *h = handler_server(aio);
    hp_status st;
    char *text;
    size_t len;

    if (metrics_render(&h->metrics, &text, &len, &st) != HP_OK) {
        char msg[300];
        hp_log(HP_LOG_WARN, "metrics failed", "reason=%s err=\"%s\"", st.reason,
               st.msg);
        snprintf(msg, sizeof(msg), "cannot render metrics: %s\n", st.msg);
        respond_text(aio, 500, msg);
        return;
    }
    respond(aio, 200, PROM_TYPE, text, len);
    free(text);
}

static void
on_healthz(nng_aio *aio)
{
    respond_text(aio, 200, "ok\n");
}

/* A probe write (store_probe_write) through the commit queue, durable
 * like any request's. It is shared between the waiting handler and the
 * writer; the last of them frees it. */
typedef struct probe {
    commitq_op op;
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    bool done;
    bool abandoned;
    hp_code code;
    hp_status st;
} probe;

static hp_code
probe_apply(commitq_op *op, store_txn *t, uint64_t now_ms, hp_status *st)
{
    (void)op;
    return store_probe_write(t, now_ms, st);
}

static void
probe_free(probe *p)
{
    pthread_mutex_destroy(&p->mtx);
    pthread_cond_destroy(&p->cond);
    free(p);
}

static void
probe_done(commitq_op *op, hp_code code, const hp_status *st)
{
    probe *p = (probe *)op;
    pthread_mutex_lock(&p->mtx);
    bool abandoned = p->abandoned;
    p->done = true;
    p->code = code;
    if (code != HP_OK) {
        p->st = *st;
    }
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mtx);
    if (abandoned) {
        probe_free(p);
    }
}

/* HP_OK when a commit went through within READY_WAIT_MS; otherwise why
 * not, in why. */
static hp_code
probe_writer(commitq *q, char *why, size_t cap)
{
    probe *p = calloc(1, sizeof(*p));
    pthread_condattr_t ca;
    struct timespec ts;
    hp_code code;

    if (p == NULL) {
        snprintf(why, cap, "out of memory");
        return HP_RESOURCE_EXHAUSTED;
    }
    pthread_mutex_init(&p->mtx, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    p->op.apply = probe_apply;
    p->op.done = probe_done;
    if ((code = commitq_submit(q, &p->op, &p->st)) != HP_OK) {
        snprintf(why, cap, "%s", p->st.msg);
        probe_free(p);
        return code;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += READY_WAIT_MS / 1000;
    pthread_mutex_lock(&p->mtx);
    while (!p->done) {
        if (pthread_cond_timedwait(&p->cond, &p->mtx, &ts) == ETIMEDOUT) {
            break;
        }
    }
    if (!p->done) {
        p->abandoned = true; /* probe_done frees it */
        pthread_mutex_unlock(&p->mtx);
        snprintf(why, cap, "no commit within %d ms", READY_WAIT_MS);
        return HP_DEADLINE_EXCEEDED;
    }
    pthread_mutex_unlock(&p->mtx);
    code = p->code;
    if (code != HP_OK) {
        snprintf(why, cap, "%s: %s", p->st.reason, p->st.msg);
    }
    probe_free(p);
    return code;
}

static void
on_readyz(nng_aio *aio)
{
    http_server *h = handler_server(aio);
    char why[300], text[340];

    if (atomic_load(h->stopping)) {
        respond_text(aio, 503, "not ready: shutting down\n");
        return;
    }
    if (probe_writer(h->q, why, sizeof(why)) != HP_OK) {
        snprintf(text, sizeof(text), "not ready: %s\n", why);
        respond_text(aio, 503, text);
        return;
    }
    respond_text(aio, 200, "ready\n");
}

static int
add_handler(http_server *h, const char *path, void (*fn)(nng_aio *))
{
    nng_http_handler *hd;
    int rv;

    if ((rv = nng_http_handler_alloc(&hd, path, fn)) != 0) {
        return rv;
    }
    if ((rv = nng_http_handler_set_data(hd, h, NULL)) != 0 ||
        (rv = nng_http_handler_collect_body(hd, true, 0)) != 0 ||
        (rv = nng_http_server_add_handler(h->srv, hd)) != 0) {
        nng_http_handler_free(hd);
    }
    return rv;
}

hp_code
http_start(const http_opts *o, http_server **out, hp_status *st)
{
    const char *addr = o->addr;
    http_server *h;
    hp_code code = HP_OK;
    int rv;

    if ((h = calloc(1, sizeof(*h))) == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    h->metrics = o->metrics;
    h->q = o->q;
    h->stopping = o->stopping;
    if ((code = nnghttp_hold("--http", addr, NULL, &h->srv, st)) != HP_OK) {
        free(h);
        return code;
    }
    if ((rv = add_handler(h, "/metrics", on_metrics)) != 0 ||
        (rv = add_handler(h, "/healthz", on_healthz)) != 0 ||
        (rv = add_handler(h, "/readyz", on_readyz)) != 0 ||
        (rv = nng_http_server_start(h->srv)) != 0) {
        code = nnghttp_status(st, rv, "cannot serve HTTP on", addr);
        nng_http_server_release(h->srv);
        free(h);
        return code;
    }
    nnghttp_url(h->srv, false, addr, h->url, sizeof(h->url));
    hp_log(HP_LOG_INFO, "listening", "url=%s paths=/metrics,/healthz,/readyz",
           h->url);
    *out = h;
    return HP_OK;
}

const char *
http_url(const http_server *h)
{
    return h->url;
}

void
http_stop(http_server *h)
{
    if (h == NULL) {
        return;
    }
    nng_http_server_stop(h->srv);
    nng_http_server_release(h->srv);
    hp_log(HP_LOG_INFO, "listener closed", "url=%s", h->url);
    free(h);
}
