/*
 * async.c - calls that do not wait: many requests in flight on one
 * connection, their replies matched by SP request id. The caller's thread
 * writes the request (so a broker that cannot keep up slows the caller
 * down, rather than a queue growing in the library); one reader thread per
 * client, started by the first async call, reads the replies and runs the
 * callbacks, and fails the calls whose time is up.
 *
 * A lost connection is handled as a synchronous call handles it: the
 * reader dials again and resends every call still waiting (same request
 * ids, so the broker's replay cache keeps them at most once); if the
 * broker cannot be reached, they fail UNAVAILABLE.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include "client_int.h"
#include "sp/sp.h"

#define READ_BUF (64 * 1024)

typedef struct pending {
    struct pending *next;
    uint32_t id; /* SP request id on the current connection */
    uint64_t deadline;
    hc_async_fn fn;
    void *arg;
    const ProtobufCMethodDescriptor *m;
    char request_id[HC_REQUEST_ID_LEN + 1];
    uint8_t *frame;
    size_t frame_len;
} pending;

struct hc_async_state {
    hopper_client *c;
    pthread_mutex_t mtx;
    hc_conn *conn;           /* a->mtx */
    uint64_t gen;            /* a->mtx; counts connection changes */
    sp_reader rd;            /* a->mtx; the replies of conn */
    pending *head, *tail;    /* a->mtx; in the order sent */
    pending *doomed;         /* a->mtx; for the reader to fail */
    hopper_status doomed_st; /* a->mtx */
    bool stop;               /* a->mtx */
    int wake[2];             /* a pipe: new work, or stop */
    pthread_t thread;
    uint8_t buf[READ_BUF]; /* reader thread */
};

static void
wake_reader(hc_async_state *a)
{
    char b = 1;
    ssize_t w = write(a->wake[1], &b, 1);
    (void)w; /* a full pipe already wakes it */
}

/* Runs p's callback (outside the mutex) and frees p. */
static void
finish(pending *p, int code, Hopper__V1__Response *reply,
       const hopper_status *st)
{
    ProtobufCMessage *resp = NULL;
    hopper_status st2;

    memset(&st2, 0, sizeof(st2));
    if (code == HOPPER_OK) {
        code = hc_open_body(p->m, reply, &resp, &st2);
        st = &st2;
    }
    p->fn(p->arg, code, resp, st);
    if (resp != NULL) {
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    free(p->frame);
    free(p);
}

/* a->mtx held: writes p on the current connection under a new SP id. A
 * failure leaves the connection unusable (a frame may be half written). */
static int
write_one(hc_async_state *a, pending *p, hopper_status *st)
{
    p->id = (a->conn->next_id++) | SP_ID_BIT;
    sp_put_u32(p->frame + SP_FRAME_HDR_LEN, p->id);
    hc_io r = hc_write_all(a->conn, p->frame, p->frame_len, p->deadline);
    if (r == HC_IO_OK) {
        return HOPPER_OK;
    }
    return r == HC_IO_TIMEOUT
               ? hc_unreachable(a->c, st,
                                "the request could not be sent within the "
                                "timeout")
               : hc_unreachable(a->c, st, "the connection was lost");
}

static pending *take_expired(hc_async_state *a, uint64_t now, bool all);

/* a->mtx held, any thread: replaces the connection and resends every call
 * still waiting (same request ids: the broker acts on each at most once).
 * If that fails, the waiting calls go to the reader thread to be failed,
 * since callbacks run only there. */
static int
redial(hc_async_state *a, uint64_t deadline, hopper_status *st)
{
    int code;

    hc_conn_close(a->conn);
    a->conn = NULL;
    a->gen++;
    sp_reader_release(&a->rd);
    sp_reader_init(&a->rd, a->c->max_reply, NULL, NULL);
    code = hc_dial(a->c, deadline, false, &a->conn, st);
    for (pending *p = a->head; p != NULL && code == HOPPER_OK; p = p->next) {
        code = write_one(a, p, st);
    }
    if (code != HOPPER_OK) {
        hc_conn_close(a->conn);
        a->conn = NULL;
        a->gen++;
        pending *all = take_expired(a, 0, true);
        if (all != NULL) {
            pending *last = all;
            while (last->next != NULL) {
                last = last->next;
            }
            last->next = a->doomed;
            a->doomed = all;
            a->doomed_st = *st;
            wake_reader(a);
        }
    }
    return code;
}

/* a->mtx held: unlinks and returns the pending call with SP id id. */
static pending *
take_id(hc_async_state *a, uint32_t id)
{
    pending *prev = NULL;
    for (pending *p = a->head; p != NULL; prev = p, p = p->next) {
        if (p->id == id) {
            if (prev != NULL) {
                prev->next = p->next;
            } else {
                a->head = p->next;
            }
            if (a->tail == p) {
                a->tail = prev;
            }
            p->next = NULL;
            return p;
        }
    }
    return NULL;
}

/* a->mtx held: unlinks the calls whose time is up (or all). */
static pending *
take_expired(hc_async_state *a, uint64_t now, bool all)
{
    pending *out = NULL, **link = &a->head;
    a->tail = NULL;
    while (*link != NULL) {
        pending *p = *link;
        if (all || p->deadline <= now) {
            *link = p->next;
            p->next = out;
            out = p;
        } else {
            a->tail = p;
            link = &p->next;
        }
    }
    return out;
}

static void
fail_list(pending *list, int code, const hopper_status *st)
{
    while (list != NULL) {
        pending *next = list->next;
        finish(list, code, NULL, st);
        list = next;
    }
}

/* Reader thread, a->mtx held: handles the bytes just read. Returns false
 * when the stream cannot be trusted any more. */
static bool
on_bytes(hc_async_state *a, size_t n)
{
    uint64_t gen = a->gen;
    size_t at = 0;
    while (at < n) {
        const uint8_t *msg;
        size_t used, len;
        sp_read_result res =
            sp_reader_feed(&a->rd, a->buf + at, n - at, &used, &msg, &len);
        at += used;
        if (res == SP_MORE) {
            continue;
        }
        if (res != SP_MSG || len < 4) {
            return false;
        }
        pending *p = take_id(a, sp_get_u32(msg));
        if (p == NULL) {
            continue; /* the reply to a call that already timed out */
        }
        Hopper__V1__Response *reply = NULL;
        hopper_status st;
        memset(&st, 0, sizeof(st));
        int code = hc_open_reply(msg + 4, len - 4, p->request_id, &reply, &st);
        pthread_mutex_unlock(&a->mtx);
        finish(p, code, reply, &st);
        pthread_mutex_lock(&a->mtx);
        if (a->gen != gen) {
            return true; /* replaced meanwhile: the rest is moot */
        }
    }
    return true;
}

static void *
reader_main(void *arg)
{
    hc_async_state *a = arg;
    hopper_client *c = a->c;

    pthread_mutex_lock(&a->mtx);
    while (!a->stop) {
        uint64_t now = hc_now_ms();
        if (a->doomed != NULL) {
            pending *list = a->doomed;
            hopper_status st = a->doomed_st;
            a->doomed = NULL;
            pthread_mutex_unlock(&a->mtx);
            fail_list(list, st.code, &st);
            pthread_mutex_lock(&a->mtx);
            continue;
        }
        pending *late = take_expired(a, now, false);
        if (late != NULL) {
            hopper_status st;
            int code = hc_timed_out(c, c->timeout_ms, &st);
            pthread_mutex_unlock(&a->mtx);
            fail_list(late, code, &st);
            pthread_mutex_lock(&a->mtx);
            continue;
        }
        int ms = -1;
        if (a->head != NULL) {
            uint64_t d = a->head->deadline; /* sent in deadline order */
            ms = d > now ? (int)(d - now < 60000 ? d - now : 60000) : 0;
        }
        uint64_t gen = a->gen;
        struct pollfd pf[2] = { { .fd = a->wake[0], .events = POLLIN },
                                { .fd = a->conn != NULL ? a->conn->fd : -1,
                                  .events = POLLIN } };
        bool tls_ready = a->conn != NULL && hc_conn_pending(a->conn);
        pthread_mutex_unlock(&a->mtx);
        int n = tls_ready ? 1 : poll(pf, 2, ms);
        pthread_mutex_lock(&a->mtx);
        if (n > 0 && (pf[0].revents & POLLIN) != 0) {
            char drain[64];
            while (read(a->wake[0], drain, sizeof(drain)) > 0) {
            }
        }
        if (n <= 0 || a->gen != gen || a->conn == NULL ||
            (!tls_ready && pf[1].revents == 0)) {
            continue;
        }
        size_t got = 0;
        hc_io r = hc_read_some(a->conn, a->buf, sizeof(a->buf), &got, now);
        if (r == HC_IO_TIMEOUT) {
            continue; /* nothing after all */
        }
        if ((r != HC_IO_OK || !on_bytes(a, got)) && a->gen == gen) {
            hopper_status st;
            if (a->head != NULL) {
                int code = redial(a, a->head->deadline, &st);
                (void)code; /* on failure the calls are doomed above */
            } else {
                hc_conn_close(a->conn);
                a->conn = NULL;
                a->gen++;
            }
        }
    }
    pending *all = take_expired(a, 0, true);
    pending *doomed = a->doomed;
    hopper_status dst = a->doomed_st;
    a->doomed = NULL;
    pthread_mutex_unlock(&a->mtx);
    fail_list(doomed, dst.code, &dst);
    hopper_status st;
    int code = hc_fail(&st, HOPPER_CANCELLED, HOPPER_R_CLOSED,
                       "the client was closed before the reply came");
    fail_list(all, code, &st);
    return NULL;
}

static int
async_start(hopper_client *c, hopper_status *st)
{
    hc_async_state *a = calloc(1, sizeof(*a));
    int rc;

    if (a == NULL) {
        return hc_no_memory(st);
    }
    a->c = c;
    sp_reader_init(&a->rd, c->max_reply, NULL, NULL);
    if (pipe(a->wake) != 0) {
        free(a);
        return hc_fail(st, HOPPER_RESOURCE_EXHAUSTED, HOPPER_R_NO_DESCRIPTORS,
                       "cannot make a pipe: %s", strerror(errno));
    }
    for (int i = 0; i < 2; i++) {
        fcntl(a->wake[i], F_SETFD, FD_CLOEXEC);
        fcntl(a->wake[i], F_SETFL, fcntl(a->wake[i], F_GETFL) | O_NONBLOCK);
    }
    pthread_mutex_init(&a->mtx, NULL);
    if ((rc = pthread_create(&a->thread, NULL, reader_main, a)) != 0) {
        pthread_mutex_destroy(&a->mtx);
        close(a->wake[0]);
        close(a->wake[1]);
        free(a);
        return hc_fail(st, HOPPER_RESOURCE_EXHAUSTED, HOPPER_R_NO_THREAD,
                       "cannot start the reader thread: %s", strerror(rc));
    }
    c->async = a;
    return HOPPER_OK;
}

int
hc_invoke_async(hopper_client *c, const char *rpc, const ProtobufCMessage *req,
                hc_async_fn fn, void *arg, hopper_status *st)
{
    char path[HC_PATH_MAX];
    pending *p = calloc(1, sizeof(*p));
    uint8_t *body;
    size_t len = 0;
    int code;

    if (p == NULL) {
        return hc_no_memory(st);
    }
    p->fn = fn;
    p->arg = arg;
    p->deadline = hc_now_ms() + c->timeout_ms;
    if ((code = hc_prepare(rpc, req, &p->m, path, &body, &len, st)) !=
        HOPPER_OK) {
        free(p);
        return code;
    }
    code = hc_pack_frame(c, path, body, len, c->timeout_ms, p->request_id,
                         &p->frame, &p->frame_len, st);
    free(body);
    if (code != HOPPER_OK) {
        free(p);
        return code;
    }
    pthread_mutex_lock(&c->async_once);
    if (c->async == NULL && (code = async_start(c, st)) != HOPPER_OK) {
        pthread_mutex_unlock(&c->async_once);
        free(p->frame);
        free(p);
        return code;
    }
    pthread_mutex_unlock(&c->async_once);
    hc_async_state *a = c->async;
    pthread_mutex_lock(&a->mtx);
    /* A connection that breaks under this write gets one replacement,
     * which also resends what was waiting, then this call. */
    bool fresh = a->conn == NULL;
    for (int tries = 0; tries < 2; tries++) {
        if (fresh && (code = redial(a, p->deadline, st)) != HOPPER_OK) {
            break; /* the calls waiting are failed by the reader */
        }
        if ((code = write_one(a, p, st)) == HOPPER_OK) {
            break;
        }
        fresh = true;
    }
    if (code != HOPPER_OK && a->conn != NULL) {
        /* Possibly half a frame written: the reader's read fails at once
         * and it replaces the connection. */
        shutdown(a->conn->fd, SHUT_RDWR);
    }
    if (code != HOPPER_OK) {
        pthread_mutex_unlock(&a->mtx);
        free(p->frame);
        free(p);
        return code;
    }
    bool first = a->head == NULL;
    if (a->tail != NULL) {
        a->tail->next = p;
    } else {
        a->head = p;
    }
    a->tail = p;
    pthread_mutex_unlock(&a->mtx);
    if (first) {
        wake_reader(a); /* it may be waiting without a deadline */
    }
    return HOPPER_OK;
}

void
hc_async_close(hopper_client *c)
{
    hc_async_state *a = c->async;
    if (a == NULL) {
        return;
    }
    pthread_mutex_lock(&a->mtx);
    a->stop = true;
    pthread_mutex_unlock(&a->mtx);
    wake_reader(a);
    pthread_join(a->thread, NULL);
    hc_conn_close(a->conn);
    sp_reader_release(&a->rd);
    close(a->wake[0]);
    close(a->wake[1]);
    pthread_mutex_destroy(&a->mtx);
    free(a);
    c->async = NULL;
}
