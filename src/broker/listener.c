/*
 * listener.c - SP req/rep over TCP, TLS and inproc, on epoll.
 *
 * Threads. Each I/O thread owns an epoll set and the connections it
 * accepted: only it reads them, runs their handshakes, closes them and
 * frees their buffers. Every listening socket is in every I/O thread's set
 * (EPOLLEXCLUSIVE), so whichever thread is free accepts. Replies come from
 * any thread: the sender takes the connection's mutex and writes to the
 * socket itself; what the socket does not take is queued, and the owning
 * thread sends it when the socket is writable. The epoll interest of a
 * connection (EPOLLIN while it may send more, EPOLLOUT while replies wait)
 * is changed under the same mutex by whichever thread changed the state.
 *
 * Closing from another thread (a budget broken by a reply) is a
 * shutdown(2) of the socket under the mutex: epoll then reports a hang-up
 * to the owner, which closes. The descriptor itself is closed under the
 * mutex too, so a late reply can never write to a reused descriptor.
 *
 * Lifetimes. A connection is referenced by its I/O thread while open and by
 * every request read from it until the request's reply; the last reference
 * frees it. Epoll events carry the connection pointer: the owner removes
 * the descriptor from epoll before it drops its reference.
 *
 * Budgets are checked where the memory is taken: the reader asks before a
 * partial frame's buffer grows, a reply that must be queued is counted
 * against the connection's and the global cap, and reading stops (the
 * connection's EPOLLIN interest is dropped) while a connection has too many
 * requests in flight, too many unsent bytes, or the broker as a whole has
 * too many requests in flight. What one read brings in is handled in full,
 * so a cap may be overshot by the requests of one read (64 KiB).
 */
#define _GNU_SOURCE /* accept4, struct ucred */
#include "broker/listener.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "broker/listener_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "sp/sp_bio.h"

#define MAX_URLS       16
#define MAX_IO_THREADS 8
#define READ_BUF       (64 * 1024)
#define MAX_EVENTS     64
#define ACCEPT_BATCH   64
#define SWEEP_MS       250
#define RATELOG_MS     10000
#define LINGER_MS      2000

typedef enum src_kind {
    SRC_CONN,
    SRC_LISTEN,
    SRC_WAKE,
    SRC_KICK,
} src_kind;

typedef struct io_thread io_thread;

/* What an epoll event points at: the first member of each source. */
typedef struct ev_src {
    src_kind kind;
} ev_src;

typedef struct lsock {
    ev_src src;
    int fd;
    size_t idx;
    bool tls;
    bool inproc;
    bool local;
    char *url;
} lsock;

typedef enum conn_state {
    CS_TLS, /* TLS handshake */
    CS_SP,  /* waiting for the peer's SP handshake */
    CS_OPEN,
    CS_LINGER, /* refused: our side shut, waiting for the peer to go */
} conn_state;

typedef struct outbuf {
    struct outbuf *next;
    size_t len, off;
    uint8_t data[];
} outbuf;

struct listener_conn {
    ev_src src;
    _Atomic uint32_t refs;
    uint32_t id;
    listener *l;
    io_thread *io;
    /* An external connection (listener_ext_request): its one request's
     * reply goes here, not to a socket; io is NULL. */
    listener_ext_reply_fn ext_reply;
    void (*ext_waiting)(void *arg);
    void *ext_arg;

    /* Owner thread only. */
    conn_state state;
    uint8_t hs_in[SP_HANDSHAKE_LEN];
    uint8_t hs_got;
    sp_reader rd;
    uint64_t opened_ms;
    uint64_t rx_ms; /* last bytes received */
    listener_conn *prev, *next;
    /* Bytes read but not handled yet because reading paused between two
     * of the requests they hold; counted with the partial frames. Set by
     * the owner under c->mtx. */
    uint8_t *held;
    size_t held_len;
    bool kicked;              /* io->kmtx */
    listener_conn *kick_next; /* io->kmtx */

    pthread_mutex_t mtx;
    int fd;   /* c->mtx; -1 once closed */
    SSL *ssl; /* c->mtx */
    _Atomic bool closed;
    bool dying;        /* c->mtx: shut down, the owner will close */
    bool tls_ww;       /* c->mtx: the TLS handshake or a read waits to write */
    bool starved;      /* c->mtx: paused by the global in-flight cap */
    uint32_t interest; /* c->mtx */
    uint32_t inflight; /* c->mtx */
    outbuf *out_head, *out_tail; /* c->mtx */
    size_t unsent;               /* c->mtx */
    uint64_t tx_ms;              /* c->mtx: last progress of queued replies */
};

struct io_thread {
    listener *l;
    int epfd;
    /* Connections another thread resumed while they held unread bytes:
     * epoll cannot report those, so the owner is told through kick_fd. */
    ev_src kick_src;
    int kick_fd;
    pthread_mutex_t kmtx;
    listener_conn *kicks; /* io->kmtx */
    pthread_t thread;
    bool started;
    listener_conn *conns;         /* owner */
    _Atomic size_t n_conns;       /* written by the owner, read by any */
    _Atomic uint32_t evict_asked; /* closes owed to another thread's accept */
    /* Owner: closed during this batch of events, freed after it, since a
     * later event of the batch may still point at one. */
    listener_conn *grave;
    uint64_t next_sweep;
    uint8_t buf[READ_BUF];
};

/* At most one line per interval for an event that can come in floods,
 * with the count of those not logged. */
typedef struct ratelog {
    _Atomic uint64_t next_ms;
    _Atomic uint64_t skipped;
} ratelog;

struct listener {
    listener_limits lim;
    listener_handler fn;
    listener_closed_fn on_closed;
    void *arg;
    SSL_CTX *tls;

    lsock ls[MAX_URLS];
    size_t n;
    _Atomic bool accepting;
    _Atomic bool stopping;
    ev_src wake_src;
    int wake_fd;

    io_thread io[MAX_IO_THREADS];
    size_t n_io;

    _Atomic uint32_t next_id;
    _Atomic uint32_t conns;
    _Atomic uint64_t conns_total;
    _Atomic uint64_t refused_total;
    _Atomic uint64_t evicted_total;
    _Atomic uint64_t dropped_total;
    _Atomic uint32_t inflight;
    _Atomic uint64_t partial_bytes;
    _Atomic uint64_t unsent_bytes;

    pthread_mutex_t smtx;
    listener_conn **starved; /* l->smtx */
    size_t n_starved, cap_starved;
    _Atomic bool any_starved;

    ratelog log_refused, log_stall, log_budget, log_unsent, log_proto;
};

/* ---- small helpers --------------------------------------------------------
 */

static bool
ratelog_allow(ratelog *r, uint64_t now, uint64_t *skipped)
{
    uint64_t next = atomic_load(&r->next_ms);
    if (now < next ||
        !atomic_compare_exchange_strong(&r->next_ms, &next, now + RATELOG_MS)) {
        atomic_fetch_add(&r->skipped, 1);
        return false;
    }
    *skipped = atomic_exchange(&r->skipped, 0);
    return true;
}

static void
conn_ref(listener_conn *c)
{
    atomic_fetch_add(&c->refs, 1);
}

static bool reserve_partial(void *arg, long long add);

static void
conn_unref(listener_conn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1) {
        pthread_mutex_destroy(&c->mtx);
        free(c);
    }
}

static uint64_t
conn_hard_unsent(const listener *l)
{
    /* The soft cap stops reading; requests already read may still add
     * their replies, but one more full frame past it means the client is
     * not reading at all. */
    return l->lim.conn_unsent + l->lim.max_frame;
}

/* c->mtx held: has the owner handle c's held bytes. */
static void
kick(listener_conn *c)
{
    io_thread *io = c->io;
    bool wake = false;
    pthread_mutex_lock(&io->kmtx);
    if (!c->kicked) {
        c->kicked = true;
        conn_ref(c);
        c->kick_next = io->kicks;
        io->kicks = c;
        wake = true;
    }
    pthread_mutex_unlock(&io->kmtx);
    if (wake) {
        uint64_t one = 1;
        ssize_t w = write(io->kick_fd, &one, sizeof(one));
        (void)w; /* a full counter still wakes the owner */
    }
}

/* c->mtx held: the epoll interest the connection's state asks for. */
static void
set_interest(listener_conn *c)
{
    listener *l = c->l;
    uint32_t want = 0;

    if (c->fd < 0 || c->dying) {
        return;
    }
    if (c->state == CS_TLS) {
        want = c->tls_ww ? EPOLLOUT : EPOLLIN;
    } else if (c->state == CS_LINGER) {
        want = EPOLLIN;
    } else {
        if (c->inflight < l->lim.conn_inflight &&
            c->unsent <= l->lim.conn_unsent && !c->starved) {
            want |= EPOLLIN;
        }
        if (c->out_head != NULL || c->tls_ww) {
            want |= EPOLLOUT;
        }
    }
    if (want == c->interest) {
        return;
    }
    struct epoll_event ev = { .events = want, .data.ptr = c };
    if (epoll_ctl(c->io->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
        bool resumed = (want & EPOLLIN) != 0 && (c->interest & EPOLLIN) == 0;
        c->interest = want;
        if (resumed && c->held != NULL) {
            kick(c);
        }
    }
}

/* c->mtx held: has the owner close the connection soon. */
static void
kill_locked(listener_conn *c)
{
    if (c->fd >= 0 && !c->dying) {
        c->dying = true;
        shutdown(c->fd, SHUT_RDWR); /* the owner sees a hang-up */
    }
}

static void
free_out(listener_conn *c)
{
    outbuf *o = c->out_head;
    while (o != NULL) {
        outbuf *next = o->next;
        free(o);
        o = next;
    }
    c->out_head = c->out_tail = NULL;
    atomic_fetch_sub(&c->l->unsent_bytes, c->unsent);
    c->unsent = 0;
}

/* ---- sending --------------------------------------------------------------
 */

typedef enum io_result {
    IO_DONE,  /* everything written */
    IO_AGAIN, /* the socket is full */
    IO_ERROR, /* the connection is broken */
} io_result;

/* c->mtx held: writes up to len bytes, *n gets how many. */
static io_result
send_some(listener_conn *c, const uint8_t *p, size_t len, size_t *n)
{
    *n = 0;
    if (c->ssl != NULL) {
        size_t w = 0;
        if (SSL_write_ex(c->ssl, p, len, &w) == 1) {
            *n = w;
            return w == len ? IO_DONE : IO_AGAIN;
        }
        int e = SSL_get_error(c->ssl, 0);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_WRITE) {
            return IO_AGAIN;
        }
        if (e == SSL_ERROR_WANT_READ) {
            /* A TLS read must happen first; the reader retries on EPOLLIN. */
            return IO_AGAIN;
        }
        return IO_ERROR;
    }
    for (;;) {
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
        if (w >= 0) {
            *n = (size_t)w;
            return (size_t)w == len ? IO_DONE : IO_AGAIN;
        }
        if (errno == EINTR) {
            continue;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERROR;
    }
}

/* c->mtx held: sends what is queued, as far as the socket takes it. */
static void
flush_out(listener_conn *c)
{
    while (c->out_head != NULL && c->fd >= 0 && !c->dying) {
        outbuf *o = c->out_head;
        size_t n;
        io_result r = send_some(c, o->data + o->off, o->len - o->off, &n);
        if (n > 0) {
            o->off += n;
            c->unsent -= n;
            atomic_fetch_sub(&c->l->unsent_bytes, n);
            c->tx_ms = hp_mono_ms();
        }
        if (r == IO_ERROR) {
            kill_locked(c);
            return;
        }
        if (o->off < o->len) {
            return; /* full: EPOLLOUT brings us back */
        }
        c->out_head = o->next;
        if (c->out_head == NULL) {
            c->out_tail = NULL;
        }
        free(o);
    }
}

/* c->mtx held: queues the unsent rest of a frame, made of two parts. */
static bool
queue_rest(listener_conn *c, const uint8_t *a, size_t a_len, const uint8_t *b,
           size_t b_len)
{
    listener *l = c->l;
    size_t len = a_len + b_len;
    uint64_t total = atomic_load(&l->unsent_bytes);

    /* A client that does not read its replies must not make the broker
     * hold them without bound: past the hard cap of the connection, or
     * past the global cap while this connection already waits, it is
     * closed and its replies dropped. */
    if (c->unsent + len > conn_hard_unsent(l) ||
        (c->unsent > 0 && total + len > l->lim.max_unsent_bytes)) {
        uint64_t skipped;
        if (ratelog_allow(&l->log_unsent, hp_mono_ms(), &skipped)) {
            hp_log(HP_LOG_WARN, "connection closed: replies not read",
                   "conn=%u unsent=%zu total_unsent=%llu more_closed=%llu",
                   c->id, c->unsent + len, (unsigned long long)total,
                   (unsigned long long)skipped);
        }
        atomic_fetch_add(&l->dropped_total, 1);
        kill_locked(c);
        return false;
    }
    outbuf *o = malloc(sizeof(*o) + len);
    if (o == NULL) {
        kill_locked(c);
        return false;
    }
    memcpy(o->data, a, a_len);
    if (b_len > 0) {
        memcpy(o->data + a_len, b, b_len);
    }
    o->len = len;
    o->off = 0;
    o->next = NULL;
    if (c->out_tail != NULL) {
        c->out_tail->next = o;
    } else {
        c->out_head = o;
        c->tx_ms = hp_mono_ms();
    }
    c->out_tail = o;
    c->unsent += len;
    atomic_fetch_add(&l->unsent_bytes, len);
    return true;
}

/* c->mtx held: sends a frame made of a and b now if the queue is empty,
 * queueing what the socket does not take. */
static void
send_frame(listener_conn *c, const uint8_t *a, size_t a_len, const uint8_t *b,
           size_t b_len)
{
    size_t n = 0;
    io_result r = IO_AGAIN;

    if (c->fd < 0 || c->dying) {
        return;
    }
    if (c->out_head == NULL && c->state != CS_TLS) {
        if (c->ssl == NULL) {
            struct iovec iov[2] = { { (void *)(uintptr_t)a, a_len },
                                    { (void *)(uintptr_t)b, b_len } };
            struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
            ssize_t w;
            do {
                w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
            } while (w < 0 && errno == EINTR);
            if (w >= 0) {
                n = (size_t)w;
                r = n == a_len + b_len ? IO_DONE : IO_AGAIN;
            } else {
                r = errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN
                                                            : IO_ERROR;
            }
        } else {
            r = send_some(c, a, a_len, &n);
            if (r == IO_DONE && b_len > 0) {
                size_t m;
                r = send_some(c, b, b_len, &m);
                n += m;
            }
        }
    }
    if (r == IO_ERROR) {
        kill_locked(c);
        return;
    }
    if (r == IO_DONE) {
        return;
    }
    if (n < a_len) {
        queue_rest(c, a + n, a_len - n, b, b_len);
    } else {
        queue_rest(c, b + (n - a_len), b_len - (n - a_len), NULL, 0);
    }
}

/* ---- the global in-flight cap ---------------------------------------------
 */

/* I/O thread, c->mtx held: pauses c until requests in all drop below the
 * cap. */
static void
starve(listener_conn *c)
{
    listener *l = c->l;
    pthread_mutex_lock(&l->smtx);
    if (l->n_starved == l->cap_starved) {
        size_t cap = l->cap_starved ? l->cap_starved * 2 : 64;
        listener_conn **nv = realloc(l->starved, cap * sizeof(*nv));
        if (nv == NULL) {
            pthread_mutex_unlock(&l->smtx);
            return; /* not paused: the per-connection cap still holds */
        }
        l->starved = nv;
        l->cap_starved = cap;
    }
    conn_ref(c);
    l->starved[l->n_starved++] = c;
    atomic_store(&l->any_starved, true);
    pthread_mutex_unlock(&l->smtx);
    c->starved = true;
}

/* Any thread, no connection mutex held: resumes every paused connection
 * once requests in all are below the cap again. */
static void
feed_starved(listener *l)
{
    if (!atomic_load(&l->any_starved) ||
        atomic_load(&l->inflight) >= l->lim.max_inflight) {
        return;
    }
    pthread_mutex_lock(&l->smtx);
    listener_conn **list = l->starved;
    size_t n = l->n_starved;
    l->starved = NULL;
    l->n_starved = l->cap_starved = 0;
    atomic_store(&l->any_starved, false);
    pthread_mutex_unlock(&l->smtx);
    for (size_t i = 0; i < n; i++) {
        listener_conn *c = list[i];
        pthread_mutex_lock(&c->mtx);
        c->starved = false;
        set_interest(c); /* EPOLL_CTL_MOD reports data already waiting */
        pthread_mutex_unlock(&c->mtx);
        conn_unref(c);
    }
    free(list);
}

/* ---- replies --------------------------------------------------------------
 */

void
listener_reply(const listener_req *r, const void *body, size_t len)
{
    listener_conn *c = r->conn;
    listener *l = c->l;
    uint8_t head[SP_FRAME_HDR_LEN + SP_MAX_HDR];

    if (c->ext_reply != NULL) {
        c->ext_reply(c->ext_arg, body, len);
        atomic_fetch_sub(&l->inflight, 1);
        feed_starved(l);
        conn_unref(c);
        return;
    }

    sp_put_u64(head, (uint64_t)r->hdr_len + len);
    memcpy(head + SP_FRAME_HDR_LEN, r->hdr, r->hdr_len);
    pthread_mutex_lock(&c->mtx);
    c->inflight--;
    send_frame(c, head, SP_FRAME_HDR_LEN + r->hdr_len, body, len);
    set_interest(c);
    pthread_mutex_unlock(&c->mtx);
    atomic_fetch_sub(&l->inflight, 1);
    feed_starved(l);
    conn_unref(c);
}

bool
listener_req_open(const listener_req *r)
{
    return !atomic_load(&r->conn->closed);
}

listener_conn *
listener_conn_hold(const listener_req *r)
{
    conn_ref(r->conn);
    return r->conn;
}

bool
listener_conn_is_open(const listener_conn *c)
{
    return !atomic_load(&c->closed);
}

void
listener_conn_release(listener_conn *c)
{
    conn_unref(c);
}

/* ---- requests of another transport --------------------------------------
 */

hp_code
listener_ext_open(listener *l, listener_ext_reply_fn fn,
                  void (*waiting)(void *arg), void *arg, listener_conn **out,
                  hp_status *st)
{
    listener_conn *c;

    *out = NULL;
    /* Before listener_start (the broker's parts are not all there yet)
     * and once listener_stop_accepting ran, as for a socket. */
    if (!atomic_load(&l->accepting)) {
        return hp_status_set(st, HP_UNAVAILABLE, HP_R_SHUTTING_DOWN,
                             "the broker is not serving requests (starting "
                             "or stopping); try again");
    }
    if (atomic_fetch_add(&l->inflight, 1) + 1 > l->lim.max_inflight) {
        atomic_fetch_sub(&l->inflight, 1);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_TOO_MANY_REQUESTS,
                             "%u requests are in flight (--max-inflight); "
                             "try again",
                             l->lim.max_inflight);
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        atomic_fetch_sub(&l->inflight, 1);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    c->src.kind = SRC_CONN;
    c->l = l;
    c->id = atomic_fetch_add(&l->next_id, 1);
    c->fd = -1;
    c->state = CS_OPEN;
    c->ext_reply = fn;
    c->ext_waiting = waiting;
    c->ext_arg = arg;
    pthread_mutex_init(&c->mtx, NULL);
    /* The caller's reference and the request's, which the reply drops. */
    atomic_init(&c->refs, 2);
    *out = c;
    return HP_OK;
}

void
listener_ext_request(listener_conn *c, const void *body, size_t len)
{
    listener_req r = { 0 };
    r.conn = c;
    r.conn_id = c->id;
    r.bytes = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    c->l->fn(c->l->arg, &r, body, len);
}

void
listener_req_waiting(const listener_req *r)
{
    if (r->conn->ext_waiting != NULL) {
        r->conn->ext_waiting(r->conn->ext_arg);
    }
}

void
listener_ext_close(listener_conn *c)
{
    listener *l = c->l;
    if (!atomic_exchange(&c->closed, true) && l->on_closed != NULL &&
        !atomic_load(&l->stopping)) {
        l->on_closed(l->arg, c->id);
    }
}

void
listener_ext_release(listener_conn *c)
{
    if (c != NULL) {
        conn_unref(c);
    }
}

/* ---- closing --------------------------------------------------------------
 */

/* Owner thread: closes c and drops the owner's reference. */
static void
close_conn(io_thread *io, listener_conn *c)
{
    listener *l = io->l;
    bool was_open = c->state == CS_OPEN;

    pthread_mutex_lock(&c->mtx);
    atomic_store(&c->closed, true);
    free_out(c);
    epoll_ctl(io->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    c->fd = -1;
    pthread_mutex_unlock(&c->mtx);
    sp_reader_release(&c->rd);
    pthread_mutex_lock(&c->mtx);
    uint8_t *held = c->held;
    size_t held_len = c->held_len;
    c->held = NULL;
    pthread_mutex_unlock(&c->mtx);
    if (held != NULL) {
        reserve_partial(l, -(long long)held_len);
        free(held);
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        io->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    atomic_fetch_sub(&io->n_conns, 1);
    atomic_fetch_sub(&l->conns, 1);
    if (was_open && l->on_closed != NULL && !atomic_load(&l->stopping)) {
        l->on_closed(l->arg, c->id);
    }
    c->prev = NULL;
    c->next = io->grave;
    io->grave = c;
}

/* Owner thread, between batches: drops the owner's references of the
 * connections closed in the last one. */
static void
bury(io_thread *io)
{
    while (io->grave != NULL) {
        listener_conn *c = io->grave;
        io->grave = c->next;
        conn_unref(c);
    }
}

/* Owner thread: a protocol or budget failure, logged at most once per
 * interval, then the connection goes. */
static void
drop_conn(io_thread *io, listener_conn *c, ratelog *rl, const char *why)
{
    listener *l = io->l;
    uint64_t skipped;
    if (ratelog_allow(rl, hp_mono_ms(), &skipped)) {
        hp_log(HP_LOG_WARN, "connection dropped",
               "conn=%u reason=\"%s\" more_dropped=%llu", c->id, why,
               (unsigned long long)skipped);
    }
    atomic_fetch_add(&l->dropped_total, 1);
    /* A reset rather than a close: the kernel drops what it still holds
     * for the client (up to megabytes of replies it is not reading)
     * instead of keeping it, and the client learns at once. */
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close_conn(io, c);
}

/* ---- receiving ------------------------------------------------------------
 */

static bool
reserve_partial(void *arg, long long add)
{
    listener *l = arg;
    if (add <= 0) {
        atomic_fetch_sub(&l->partial_bytes, (uint64_t)(-add));
        return true;
    }
    uint64_t now = atomic_fetch_add(&l->partial_bytes, (uint64_t)add);
    if (now + (uint64_t)add > l->lim.max_partial_bytes) {
        atomic_fetch_sub(&l->partial_bytes, (uint64_t)add);
        return false;
    }
    return true;
}

/* Owner thread: one whole message from c. Returns false if c was closed. */
static bool
on_message(io_thread *io, listener_conn *c, const uint8_t *msg, size_t len)
{
    listener *l = io->l;
    listener_req r;
    size_t hdr_len;

    switch (sp_request_header(msg, len, &hdr_len)) {
    case SP_HDR_SHORT:
        /* As NNG's rep0 does with a peer speaking garbage. */
        drop_conn(io, c, &l->log_proto, "message without an SP header");
        return false;
    case SP_HDR_HOPS:
        return true; /* too many hops: dropped unanswered, as rep0 does */
    case SP_HDR_OK:
        break;
    }
    r.conn = c;
    r.conn_id = c->id;
    r.bytes = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    r.hdr_len = (uint8_t)hdr_len;
    memcpy(r.hdr, msg, hdr_len);
    conn_ref(c);
    pthread_mutex_lock(&c->mtx);
    c->inflight++;
    if (atomic_fetch_add(&l->inflight, 1) + 1 >= l->lim.max_inflight &&
        !c->starved) {
        starve(c);
    }
    set_interest(c);
    pthread_mutex_unlock(&c->mtx);
    l->fn(l->arg, &r, msg + hdr_len, len - hdr_len);
    return true;
}

static bool
may_read(listener_conn *c)
{
    pthread_mutex_lock(&c->mtx);
    bool ok = (c->interest & EPOLLIN) != 0;
    pthread_mutex_unlock(&c->mtx);
    return ok;
}

/* Owner thread: keeps p[0..n) (which may lie in the old held bytes) for
 * when c may be read again. Returns false if c was closed. */
static bool
hold(io_thread *io, listener_conn *c, const uint8_t *p, size_t n)
{
    uint8_t *copy = NULL;
    if (!reserve_partial(io->l, (long long)n)) {
        drop_conn(io, c, &io->l->log_budget,
                  "partial frames over their total budget");
        return false;
    }
    if ((copy = malloc(n)) == NULL) {
        reserve_partial(io->l, -(long long)n);
        drop_conn(io, c, &io->l->log_budget, "out of memory for a frame");
        return false;
    }
    memcpy(copy, p, n);
    pthread_mutex_lock(&c->mtx);
    c->held = copy;
    c->held_len = n;
    if ((c->interest & EPOLLIN) != 0) {
        kick(c); /* resumed while we copied */
    }
    pthread_mutex_unlock(&c->mtx);
    return true;
}

/* Owner thread: bytes read from c, after the TLS layer. Returns false if
 * c was closed. */
static bool
on_bytes(io_thread *io, listener_conn *c, const uint8_t *p, size_t n)
{
    listener *l = io->l;
    size_t at = 0;

    c->rx_ms = hp_mono_ms();
    if (c->state == CS_SP) {
        while (c->hs_got < SP_HANDSHAKE_LEN && at < n) {
            c->hs_in[c->hs_got++] = p[at++];
        }
        if (c->hs_got < SP_HANDSHAKE_LEN) {
            return true;
        }
        if (!sp_handshake_ok(c->hs_in, SP_PROTO_REQ0)) {
            drop_conn(io, c, &l->log_proto,
                      "not an SP req0 peer (bad handshake)");
            return false;
        }
        c->state = CS_OPEN;
    }
    while (at < n) {
        const uint8_t *msg;
        size_t used, len;
        sp_read_result res =
            sp_reader_feed(&c->rd, p + at, n - at, &used, &msg, &len);
        at += used;
        switch (res) {
        case SP_MORE:
            break;
        case SP_MSG:
            if (!on_message(io, c, msg, len)) {
                return false;
            }
            if (at < n && !may_read(c)) {
                /* Paused by this request (too many in flight or replies
                 * unread): the rest waits, counted as a partial frame. */
                return hold(io, c, p + at, n - at);
            }
            break;
        case SP_TOO_BIG:
            /* NNG's listener does the same with recv-size-max. */
            drop_conn(io, c, &l->log_proto, "frame over --max-frame");
            return false;
        case SP_BUDGET:
            drop_conn(io, c, &l->log_budget,
                      "partial frames over their total budget");
            return false;
        case SP_NOMEM:
            drop_conn(io, c, &l->log_budget, "out of memory for a frame");
            return false;
        }
    }
    return true;
}

/* Owner thread: handles the bytes c held while it was paused. Returns
 * false if c was closed. */
static bool
release_held(io_thread *io, listener_conn *c)
{
    pthread_mutex_lock(&c->mtx);
    uint8_t *p = c->held;
    size_t n = c->held_len;
    c->held = NULL;
    c->held_len = 0;
    pthread_mutex_unlock(&c->mtx);
    if (p == NULL) {
        return true;
    }
    bool open = on_bytes(io, c, p, n); /* may hold a copy of the rest */
    reserve_partial(io->l, -(long long)n);
    free(p);
    return open;
}

static bool evict_idle(io_thread *io);

/* Owner thread: connections other threads resumed while they held bytes,
 * and closes another thread's accept asked for (evict_elsewhere). */
static void
on_kicks(io_thread *io)
{
    uint64_t v;
    ssize_t r = read(io->kick_fd, &v, sizeof(v));
    (void)r; /* nonblocking: nothing to read is fine */
    pthread_mutex_lock(&io->kmtx);
    listener_conn *list = io->kicks;
    io->kicks = NULL;
    for (listener_conn *c = list; c != NULL; c = c->kick_next) {
        c->kicked = false;
    }
    pthread_mutex_unlock(&io->kmtx);
    while (list != NULL) {
        listener_conn *c = list;
        list = c->kick_next;
        if (c->fd >= 0 && c->state == CS_OPEN && may_read(c)) {
            release_held(io, c);
        }
        conn_unref(c);
    }
    for (uint32_t n = atomic_exchange(&io->evict_asked, 0); n > 0; n--) {
        if (!evict_idle(io)) {
            break;
        }
    }
}

/* Owner thread, c->mtx held: sends our SP handshake (through TLS when the
 * connection has it). */
static void
send_handshake(listener_conn *c)
{
    uint8_t hs[SP_HANDSHAKE_LEN];
    sp_handshake(SP_PROTO_REP0, hs);
    send_frame(c, hs, sizeof(hs), NULL, 0);
}

/* Owner thread: drives the TLS handshake. Returns false if c was closed. */
static bool
on_tls_handshake(io_thread *io, listener_conn *c)
{
    pthread_mutex_lock(&c->mtx);
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->state = CS_SP;
        c->tls_ww = false;
        send_handshake(c);
        set_interest(c);
        pthread_mutex_unlock(&c->mtx);
        return true;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        c->tls_ww = e == SSL_ERROR_WANT_WRITE;
        set_interest(c);
        pthread_mutex_unlock(&c->mtx);
        return true;
    }
    char err[160];
    listener_tls_error(err, sizeof(err));
    /* OpenSSL has sent its alert (why the handshake failed). Closing now
     * would reset a connection whose client still sends, and a reset may
     * destroy the alert before the client reads it: shut our side and let
     * the client close, for LINGER_MS at most. */
    c->state = CS_LINGER;
    c->opened_ms = hp_mono_ms();
    shutdown(c->fd, SHUT_WR);
    set_interest(c);
    pthread_mutex_unlock(&c->mtx);
    /* Who failed and why is worth a line: a client with the wrong CA or a
     * revoked certificate is a common set-up mistake. */
    uint64_t skipped;
    if (ratelog_allow(&io->l->log_proto, hp_mono_ms(), &skipped)) {
        hp_log(HP_LOG_INFO, "TLS handshake failed",
               "conn=%u err=\"%s\" more_failed=%llu", c->id, err,
               (unsigned long long)skipped);
    }
    return false;
}

/* Owner thread: c is readable. */
static void
on_readable(io_thread *io, listener_conn *c)
{
    if (c->state == CS_LINGER) {
        ssize_t n;
        do {
            n = read(c->fd, io->buf, sizeof(io->buf));
        } while (n > 0);
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            close_conn(io, c);
        }
        return;
    }
    if (c->state == CS_TLS) {
        if (!on_tls_handshake(io, c) || c->state == CS_TLS) {
            return;
        }
    }
    if (c->held != NULL && (!release_held(io, c) || !may_read(c))) {
        return; /* what was held comes before what is in the socket */
    }
    if (c->ssl == NULL) {
        ssize_t n;
        do {
            n = read(c->fd, io->buf, sizeof(io->buf));
        } while (n < 0 && errno == EINTR);
        if (n > 0) {
            on_bytes(io, c, io->buf, (size_t)n);
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            close_conn(io, c);
        }
        return;
    }
    /* Whole records only (16 KiB at most into a 64 KiB buffer), so nothing
     * stays inside OpenSSL that epoll would not report. */
    for (int rounds = 0; rounds < 4; rounds++) {
        size_t n = 0;
        pthread_mutex_lock(&c->mtx);
        int ok =
            c->fd >= 0 ? SSL_read_ex(c->ssl, io->buf, sizeof(io->buf), &n) : 0;
        int e = ok == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, ok);
        if (ok != 1) {
            ERR_clear_error();
            c->tls_ww = e == SSL_ERROR_WANT_WRITE;
            set_interest(c);
        }
        pthread_mutex_unlock(&c->mtx);
        if (ok == 1) {
            if (!on_bytes(io, c, io->buf, n)) {
                return;
            }
            pthread_mutex_lock(&c->mtx);
            bool more = (c->interest & EPOLLIN) != 0;
            pthread_mutex_unlock(&c->mtx);
            if (!more) {
                return; /* paused: the rest waits in the socket */
            }
            continue;
        }
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            close_conn(io, c);
        }
        return;
    }
}

static void
on_conn_event(io_thread *io, listener_conn *c, uint32_t ev)
{
    if (c->fd < 0) {
        return; /* closed earlier in this batch */
    }
    if ((ev & (EPOLLERR | EPOLLHUP)) != 0 && (ev & EPOLLIN) == 0) {
        close_conn(io, c);
        return;
    }
    if ((ev & EPOLLOUT) != 0) {
        pthread_mutex_lock(&c->mtx);
        bool hs = c->state == CS_TLS;
        if (!hs) {
            flush_out(c);
            if (c->tls_ww) {
                c->tls_ww = false; /* a TLS read waited to write: retry it */
                ev |= EPOLLIN;
            }
            set_interest(c);
        }
        bool dying = c->dying;
        pthread_mutex_unlock(&c->mtx);
        if (dying) {
            close_conn(io, c);
            return;
        }
        if (hs && !on_tls_handshake(io, c)) {
            return;
        }
    }
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        on_readable(io, c);
    }
}

/* ---- accepting -------------------------------------------------------------
 */

/* Owner thread, at the connection cap: closes this thread's connection
 * that has been idle longest (nothing in flight, owed or queued, or a
 * handshake not finished), if any. */
static bool
evict_idle(io_thread *io)
{
    listener_conn *best = NULL;
    uint64_t best_ms = UINT64_MAX;

    for (listener_conn *c = io->conns; c != NULL; c = c->next) {
        /* A connection still in its handshake is idle too (it may never
         * finish it); one owing the rest of a frame is not. */
        if (sp_reader_partial(&c->rd) || c->held != NULL) {
            continue;
        }
        pthread_mutex_lock(&c->mtx);
        bool idle = c->inflight == 0 && c->out_head == NULL;
        uint64_t last = c->rx_ms > c->tx_ms ? c->rx_ms : c->tx_ms;
        pthread_mutex_unlock(&c->mtx);
        if (idle && last < best_ms) {
            best = c;
            best_ms = last;
        }
    }
    if (best == NULL) {
        return false;
    }
    atomic_fetch_add(&io->l->evicted_total, 1);
    close_conn(io, best);
    return true;
}

/* Owner thread, at --max-connections with nothing idle of its own: the
 * idle connections may all live on another I/O thread (whichever thread
 * is free accepts), and only their owner may close them. Asks the thread
 * holding the most connections to close its longest-idle one and lets
 * the new connection in meanwhile, so the cap is passed by at most one
 * connection per I/O thread for a moment. */
static bool
evict_elsewhere(io_thread *io)
{
    listener *l = io->l;
    if (atomic_load(&l->conns) >= l->lim.max_connections + l->n_io) {
        return false;
    }
    io_thread *most = NULL;
    size_t most_n = 0;
    for (size_t i = 0; i < l->n_io; i++) {
        io_thread *t = &l->io[i];
        size_t n = atomic_load(&t->n_conns);
        if (t != io && n > most_n) {
            most = t;
            most_n = n;
        }
    }
    if (most == NULL) {
        return false;
    }
    atomic_fetch_add(&most->evict_asked, 1);
    uint64_t one = 1;
    ssize_t w = write(most->kick_fd, &one, sizeof(one));
    (void)w; /* a full counter still wakes the owner */
    return true;
}

static bool
same_process(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
           cred.pid == getpid();
}

static void
refuse(io_thread *io, int fd, const char *why)
{
    listener *l = io->l;
    uint64_t skipped;
    close(fd);
    atomic_fetch_add(&l->refused_total, 1);
    if (ratelog_allow(&l->log_refused, hp_mono_ms(), &skipped)) {
        hp_log(HP_LOG_WARN, "connection refused",
               "reason=\"%s\" connections=%u more_refused=%llu", why,
               atomic_load(&l->conns), (unsigned long long)skipped);
    }
}

/* Owner thread: takes fd, a new connection on ls. */
static void
adopt(io_thread *io, const lsock *ls, int fd)
{
    listener *l = io->l;
    int one = 1;

    if (ls->inproc && !same_process(fd)) {
        refuse(io, fd, "inproc:// connection from another process");
        return;
    }
    if (atomic_load(&l->conns) >= l->lim.max_connections && !evict_idle(io) &&
        !evict_elsewhere(io)) {
        refuse(io, fd, "at --max-connections, none idle");
        return;
    }
    listener_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        refuse(io, fd, "out of memory");
        return;
    }
    if (!ls->inproc) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c->src.kind = SRC_CONN;
    atomic_init(&c->refs, 1);
    c->id = atomic_fetch_add(&l->next_id, 1);
    c->l = l;
    c->io = io;
    c->fd = fd;
    c->opened_ms = c->rx_ms = hp_mono_ms();
    pthread_mutex_init(&c->mtx, NULL);
    sp_reader_init(&c->rd, l->lim.max_frame, reserve_partial, l);
    if (ls->tls) {
        BIO *bio = NULL;
        if ((c->ssl = SSL_new(l->tls)) == NULL ||
            (bio = sp_socket_bio(fd)) == NULL) {
            SSL_free(c->ssl);
            pthread_mutex_destroy(&c->mtx);
            free(c);
            refuse(io, fd, "cannot start TLS");
            return;
        }
        SSL_set_bio(c->ssl, bio, bio); /* ssl owns bio from here */
        SSL_set_accept_state(c->ssl);
        c->state = CS_TLS;
    } else {
        c->state = CS_SP;
    }
    c->next = io->conns;
    if (io->conns != NULL) {
        io->conns->prev = c;
    }
    io->conns = c;
    atomic_fetch_add(&io->n_conns, 1);
    atomic_fetch_add(&l->conns, 1);
    atomic_fetch_add(&l->conns_total, 1);
    pthread_mutex_lock(&c->mtx);
    c->interest = EPOLLIN;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        pthread_mutex_unlock(&c->mtx);
        close_conn(io, c);
        return;
    }
    if (c->state == CS_SP) {
        send_handshake(c);
        set_interest(c);
    }
    pthread_mutex_unlock(&c->mtx);
}

static void
on_accept(io_thread *io, lsock *ls)
{
    for (int i = 0; i < ACCEPT_BATCH && atomic_load(&io->l->accepting); i++) {
        int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            adopt(io, ls, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (errno == EMFILE || errno == ENFILE) {
            /* Out of descriptors despite the cap (other files count too):
             * make room if a connection is idle, else the next sweep will
             * look again rather than spinning on a readable socket. */
            if (!evict_idle(io)) {
                epoll_ctl(io->epfd, EPOLL_CTL_DEL, ls->fd, NULL);
                uint64_t skipped;
                if (ratelog_allow(&io->l->log_refused, hp_mono_ms(),
                                  &skipped)) {
                    hp_log(HP_LOG_WARN, "out of file descriptors",
                           "connections=%u more=%llu",
                           atomic_load(&io->l->conns),
                           (unsigned long long)skipped);
                }
                io->next_sweep = 0; /* re-armed by the sweep */
            }
        }
        return;
    }
}

/* ---- the I/O loop ----------------------------------------------------------
 */

static void
arm_listeners(io_thread *io)
{
    listener *l = io->l;
    for (size_t i = 0; i < l->n && atomic_load(&l->accepting); i++) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE,
                                  .data.ptr = &l->ls[i].src };
        epoll_ctl(io->epfd, EPOLL_CTL_ADD, l->ls[i].fd, &ev);
    }
}

/* Owner thread: the timeouts of handshakes, stalled frames and replies
 * that are not being read. */
static void
sweep(io_thread *io, uint64_t now)
{
    listener *l = io->l;
    listener_conn *c = io->conns;

    while (c != NULL) {
        listener_conn *next = c->next;
        if (c->state == CS_LINGER) {
            if (now - c->opened_ms > LINGER_MS) {
                close_conn(io, c);
            }
        } else if (c->state != CS_OPEN &&
                   now - c->opened_ms > l->lim.handshake_timeout_ms) {
            drop_conn(io, c, &l->log_proto, "handshake not finished in time");
        } else if (sp_reader_partial(&c->rd) &&
                   now - c->rx_ms > l->lim.frame_stall_ms) {
            drop_conn(io, c, &l->log_stall,
                      "an unfinished frame stalled (--frame-timeout)");
        } else {
            pthread_mutex_lock(&c->mtx);
            bool stuck =
                c->out_head != NULL && now - c->tx_ms > l->lim.send_timeout_ms;
            pthread_mutex_unlock(&c->mtx);
            if (stuck) {
                drop_conn(io, c, &l->log_unsent,
                          "replies not read within --send-timeout");
            }
        }
        c = next;
    }
}

static void *
io_main(void *arg)
{
    io_thread *io = arg;
    listener *l = io->l;
    struct epoll_event evs[MAX_EVENTS];

    arm_listeners(io);
    while (!atomic_load(&l->stopping)) {
        int n = epoll_wait(io->epfd, evs, MAX_EVENTS, SWEEP_MS);
        for (int i = 0; i < n; i++) {
            ev_src *src = evs[i].data.ptr;
            switch (src->kind) {
            case SRC_CONN:
                on_conn_event(io, (listener_conn *)src, evs[i].events);
                break;
            case SRC_LISTEN:
                on_accept(io, (lsock *)src);
                break;
            case SRC_WAKE:
                break; /* the loop condition looks at stopping */
            case SRC_KICK:
                on_kicks(io);
                break;
            }
        }
        bury(io);
        uint64_t now = hp_mono_ms();
        if (now >= io->next_sweep) {
            if (io->next_sweep == 0) {
                arm_listeners(io); /* taken out when descriptors ran out */
            }
            sweep(io, now);
            bury(io);
            io->next_sweep = now + SWEEP_MS;
        }
    }
    return NULL;
}

/* ---- opening --------------------------------------------------------------
 */

static bool
addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

static hp_code
errno_status(hp_status *st, int err, const char *what, const char *url)
{
    if (err == EADDRINUSE) {
        return hp_status_set(st, HP_UNAVAILABLE, HP_R_ADDRESS_IN_USE,
                             "%s '%s': address already in use", what, url);
    }
    if (err == EACCES || err == EPERM) {
        return hp_status_set(st, HP_PERMISSION_DENIED, HP_R_BAD_URL,
                             "%s '%s': %s", what, url, strerror(err));
    }
    if (err == EADDRNOTAVAIL || err == EAFNOSUPPORT) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_URL,
                             "%s '%s': %s", what, url, strerror(err));
    }
    return hp_status_set(st, HP_UNAVAILABLE, HP_R_LISTEN_FAILED, "%s '%s': %s",
                         what, url, strerror(err));
}

/* A listening socket for addr; the port chosen goes into the URL. */
static hp_code
bind_one(lsock *ls, const struct sockaddr *addr, socklen_t alen,
         const char *url, hp_status *st)
{
    int one = 1;
    int fd =
        socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return errno_status(st, errno, "cannot listen on", url);
    }
    if (addr->sa_family != AF_UNIX) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (bind(fd, addr, alen) != 0 || listen(fd, 1024) != 0) {
        int err = errno;
        close(fd);
        return errno_status(st, err, "cannot listen on", url);
    }
    ls->fd = fd;
    return HP_OK;
}

/* The URL as written, with the port the system chose filled in. */
static char *
bound_url(const lsock *ls, const char *url, const sp_url *u)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char buf[SP_HOST_MAX + 64];
    unsigned port = 0;

    if (u->kind != SP_URL_TCP ||
        getsockname(ls->fd, (struct sockaddr *)&ss, &len) != 0) {
        return strdup(url);
    }
    if (ss.ss_family == AF_INET) {
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    size_t scheme = (size_t)(strstr(url, "://") - url) + 3;
    bool v6 = strchr(u->host, ':') != NULL;
    snprintf(buf, sizeof(buf), "%.*s%s%s%s:%u", (int)scheme, url, v6 ? "[" : "",
             u->host, v6 ? "]" : "", port);
    return strdup(buf);
}

static hp_code
open_url(lsock *ls, const char *url, hp_status *st)
{
    const char *why = NULL;
    sp_url u;
    hp_code code;

    if (strncmp(url, "ipc://", 6) == 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_URL,
                             "ipc:// is not offered; listen on "
                             "tcp://127.0.0.1:PORT instead");
    }
    if (!sp_url_parse(url, &u, &why)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_URL,
                             "cannot listen on '%s': %s", url, why);
    }
    ls->tls = u.tls;
    if (u.kind == SP_URL_INPROC) {
        struct sockaddr_un sun;
        unsigned alen;
        if (!sp_inproc_addr(u.name, (long)getpid(), &sun, &alen)) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_URL,
                                 "cannot listen on '%s': name too long", url);
        }
        if ((code = bind_one(ls, (struct sockaddr *)&sun, alen, url, st)) !=
            HP_OK) {
            return code;
        }
        ls->inproc = ls->local = true;
        ls->url = strdup(url);
        return HP_OK;
    }
    struct addrinfo hints = { .ai_family = u.family,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    bool any = u.host[0] == '\0' || strcmp(u.host, "*") == 0;
    int rv = getaddrinfo(any ? NULL : u.host, u.port, &hints, &res);
    if (rv != 0 || res == NULL) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_URL,
                             "cannot listen on '%s': %s", url,
                             rv != 0 ? gai_strerror(rv) : "no address");
    }
    code = bind_one(ls, res->ai_addr, res->ai_addrlen, url, st);
    if (code == HP_OK) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        ls->local = getsockname(ls->fd, (struct sockaddr *)&ss, &len) == 0 &&
                    addr_is_loopback((struct sockaddr *)&ss);
        ls->url = bound_url(ls, url, &u);
    }
    freeaddrinfo(res);
    return code;
}

hp_code
listener_open(const listener_opts *o, listener_handler fn, void *arg,
              listener **out, hp_status *st)
{
    hp_code code;
    listener *l;

    if (o->n_urls == 0 || o->n_urls > MAX_URLS) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_URL,
                             "need 1-%d listen URLs", MAX_URLS);
    }
    if ((l = calloc(1, sizeof(*l))) == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    l->lim = o->limits;
    if (l->lim.handshake_timeout_ms == 0) {
        l->lim.handshake_timeout_ms = LISTENER_HANDSHAKE_MS;
    }
    l->fn = fn;
    l->on_closed = o->on_closed;
    l->arg = arg;
    l->wake_fd = -1;
    l->wake_src.kind = SRC_WAKE;
    atomic_init(&l->next_id, 1);
    pthread_mutex_init(&l->smtx, NULL);
    for (size_t i = 0; i < MAX_URLS; i++) {
        l->ls[i].fd = -1;
    }
    for (size_t i = 0; i < MAX_IO_THREADS; i++) {
        l->io[i].epfd = -1;
        l->io[i].kick_fd = -1;
        atomic_init(&l->io[i].n_conns, 0);
        atomic_init(&l->io[i].evict_asked, 0);
        pthread_mutex_init(&l->io[i].kmtx, NULL);
    }
    size_t n_io = o->io_threads;
    if (n_io == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n_io = cpus > 0 ? (size_t)cpus : 1;
    }
    l->n_io = n_io > MAX_IO_THREADS ? MAX_IO_THREADS : n_io;
    if ((code = listener_tls_new(o, &l->tls, st)) != HP_OK) {
        goto fail;
    }
    for (size_t i = 0; i < o->n_urls; i++) {
        lsock *ls = &l->ls[i];
        ls->src.kind = SRC_LISTEN;
        ls->idx = i;
        if ((code = open_url(ls, o->urls[i], st)) != HP_OK) {
            goto fail;
        }
        l->n = i + 1;
        if (ls->url == NULL) {
            code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
            goto fail;
        }
    }
    if ((l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        code = hp_status_from_errno(st, errno, "cannot create an eventfd");
        goto fail;
    }
    for (size_t i = 0; i < l->n_io; i++) {
        io_thread *io = &l->io[i];
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->wake_src };
        io->l = l;
        io->kick_src.kind = SRC_KICK;
        io->epfd = epoll_create1(EPOLL_CLOEXEC);
        io->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event kev = { .events = EPOLLIN,
                                   .data.ptr = &io->kick_src };
        if (io->epfd < 0 || io->kick_fd < 0 ||
            epoll_ctl(io->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) != 0 ||
            epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->kick_fd, &kev) != 0) {
            code =
                hp_status_from_errno(st, errno, "cannot create an epoll set");
            goto fail;
        }
    }
    *out = l;
    return HP_OK;
fail:
    listener_close(l);
    return code;
}

hp_code
listener_start(listener *l, hp_status *st)
{
    atomic_store(&l->accepting, true);
    for (size_t i = 0; i < l->n_io; i++) {
        io_thread *io = &l->io[i];
        io->next_sweep = hp_mono_ms() + SWEEP_MS;
        int rc = pthread_create(&io->thread, NULL, io_main, io);
        if (rc != 0) {
            return hp_status_from_errno(st, rc, "cannot start an I/O thread");
        }
        io->started = true;
    }
    for (size_t i = 0; i < l->n; i++) {
        hp_log(HP_LOG_INFO, "listening", "url=%s local=%s", l->ls[i].url,
               l->ls[i].local ? "yes" : "no");
    }
    return HP_OK;
}

const char *
listener_url(const listener *l, size_t i)
{
    return i < l->n ? l->ls[i].url : NULL;
}

bool
listener_is_local(const listener *l, size_t i)
{
    return i < l->n && l->ls[i].local;
}

void
listener_stop_accepting(listener *l)
{
    if (!atomic_exchange(&l->accepting, false)) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        for (size_t t = 0; t < l->n_io; t++) {
            epoll_ctl(l->io[t].epfd, EPOLL_CTL_DEL, l->ls[i].fd, NULL);
        }
        hp_log(HP_LOG_INFO, "listener closed", "url=%s", l->ls[i].url);
    }
}

void
listener_drain(listener *l, uint32_t timeout_ms)
{
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    for (uint32_t waited = 0;
         atomic_load(&l->unsent_bytes) > 0 && waited < timeout_ms;
         waited += 5) {
        nanosleep(&ts, NULL);
    }
}

void
listener_get_stats(listener *l, listener_stats *out)
{
    out->connections = atomic_load(&l->conns);
    out->connections_total = atomic_load(&l->conns_total);
    out->refused_total = atomic_load(&l->refused_total);
    out->evicted_total = atomic_load(&l->evicted_total);
    out->dropped_total = atomic_load(&l->dropped_total);
    out->inflight = atomic_load(&l->inflight);
    out->partial_bytes = atomic_load(&l->partial_bytes);
    out->unsent_bytes = atomic_load(&l->unsent_bytes);
}

void
listener_close(listener *l)
{
    if (l == NULL) {
        return;
    }
    listener_stop_accepting(l);
    atomic_store(&l->stopping, true);
    if (l->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(l->wake_fd, &one, sizeof(one));
        (void)w; /* a full counter still wakes everyone */
    }
    for (size_t i = 0; i < l->n_io; i++) {
        io_thread *io = &l->io[i];
        if (io->started) {
            pthread_join(io->thread, NULL);
        }
        while (io->conns != NULL) {
            close_conn(io, io->conns);
        }
        while (io->kicks != NULL) {
            listener_conn *c = io->kicks;
            io->kicks = c->kick_next;
            conn_unref(c);
        }
        bury(io);
        if (io->epfd >= 0) {
            close(io->epfd);
        }
    }
    for (size_t i = 0; i < MAX_IO_THREADS; i++) {
        if (l->io[i].kick_fd >= 0) {
            close(l->io[i].kick_fd);
        }
        pthread_mutex_destroy(&l->io[i].kmtx);
    }
    for (size_t i = 0; i < l->n_starved; i++) {
        conn_unref(l->starved[i]);
    }
    free(l->starved);
    if (atomic_load(&l->inflight) != 0) {
        hp_log(HP_LOG_ERROR, "listener closed with requests unanswered",
               "inflight=%u", atomic_load(&l->inflight));
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->ls[i].fd >= 0) {
            close(l->ls[i].fd);
        }
        free(l->ls[i].url);
    }
    if (l->wake_fd >= 0) {
        close(l->wake_fd);
    }
    SSL_CTX_free(l->tls);
    pthread_mutex_destroy(&l->smtx);
    free(l);
}
