/*
 * conn.c - connections to the broker: dialing (TCP, TLS through OpenSSL,
 * inproc://), the SP handshake, and reads and writes bounded by a
 * deadline. Sockets are non-blocking and every wait is a poll(2) with the
 * time left, so a call never waits past its deadline and no thread of the
 * library is involved. Portable POSIX plus OpenSSL: libhopper builds on
 * macOS too (inproc:// is Linux-only, as the embedded broker is).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "client_int.h"
#include "sp/sp.h"
#include "sp/sp_bio.h"

uint64_t
hc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds to deadline for poll(2): 0 once it passed. */
static int
left_ms(uint64_t deadline)
{
    uint64_t now = hc_now_ms();
    if (now >= deadline) {
        return 0;
    }
    uint64_t d = deadline - now;
    return d > INT_MAX ? INT_MAX : (int)d;
}

/* Waits until fd is ready for events, or the deadline. */
static hc_io
wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events };
        int ms = left_ms(deadline);
        int n = poll(&p, 1, ms);
        if (n > 0) {
            return HC_IO_OK; /* errors show on the next read or write */
        }
        if (n == 0) {
            return HC_IO_TIMEOUT;
        }
        if (errno != EINTR) {
            return HC_IO_LOST;
        }
    }
}

void
hc_conn_close(hc_conn *k)
{
    if (k == NULL) {
        return;
    }
    SSL_free(k->ssl); /* frees the BIO; the descriptor is ours */
    close(k->fd);
    free(k);
}

bool
hc_conn_pending(const hc_conn *k)
{
    return k->ssl != NULL && SSL_pending(k->ssl) > 0;
}

/* What an OpenSSL call's failure means for the caller: wait for fd to be
 * readable or writable (*ev), or give up. */
static hc_io
tls_retry(SSL *ssl, int rc, short *ev)
{
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
    }
    /* Other errors stay queued for tls_failed to describe; the next
     * OpenSSL call of this thread clears them. */
    if (e == SSL_ERROR_WANT_READ) {
        *ev = POLLIN;
        return HC_IO_OK;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        *ev = POLLOUT;
        return HC_IO_OK;
    }
    return e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? HC_IO_LOST
                                                                : HC_IO_BAD;
}

/* A blocking connection's send or receive timeout, set to what is left of
 * the call. Calls mostly have the same time budget, so the value last set
 * is kept and reused when it is no shorter than what is left and at most
 * about 1% longer: one setsockopt for a run of calls, not two per call. */
static hc_io
blocking_timeout(hc_conn *k, int opt, uint32_t *cached, uint64_t deadline)
{
    int ms = left_ms(deadline);
    if (ms == 0) {
        return HC_IO_TIMEOUT;
    }
    uint32_t want = (uint32_t)ms;
    if (*cached >= want && *cached <= want + want / 128 + 2) {
        return HC_IO_OK;
    }
    struct timeval tv = { .tv_sec = (time_t)(want / 1000),
                          .tv_usec = (suseconds_t)(want % 1000) * 1000 };
    if (setsockopt(k->fd, SOL_SOCKET, opt, &tv, sizeof(tv)) != 0) {
        return HC_IO_LOST;
    }
    *cached = want;
    return HC_IO_OK;
}

hc_io
hc_write_all(hc_conn *k, const uint8_t *p, size_t len, uint64_t deadline)
{
    size_t done = 0;
    while (done < len) {
        short ev = POLLOUT;
        hc_io t;
        if (k->blocking && (t = blocking_timeout(k, SO_SNDTIMEO, &k->snd_ms,
                                                 deadline)) != HC_IO_OK) {
            return t;
        }
        if (k->ssl != NULL) {
            size_t n = 0;
            int rc = SSL_write_ex(k->ssl, p + done, len - done, &n);
            if (rc == 1) {
                done += n;
                continue;
            }
            hc_io r = tls_retry(k->ssl, rc, &ev);
            if (r != HC_IO_OK) {
                return r;
            }
        } else {
            long n = sp_send(k->fd, p + done, len - done);
            if (n >= 0) {
                done += (size_t)n;
                continue;
            }
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                return HC_IO_LOST;
            }
        }
        if (k->blocking) {
            continue; /* the send waited its timeout: check the deadline */
        }
        hc_io w = wait_fd(k->fd, ev, deadline);
        if (w != HC_IO_OK) {
            return w;
        }
    }
    return HC_IO_OK;
}

hc_io
hc_read_some(hc_conn *k, uint8_t *p, size_t len, size_t *n, uint64_t deadline)
{
    for (;;) {
        short ev = POLLIN;
        hc_io t;
        if (k->blocking && (t = blocking_timeout(k, SO_RCVTIMEO, &k->rcv_ms,
                                                 deadline)) != HC_IO_OK) {
            return t;
        }
        if (k->ssl != NULL) {
            int rc = SSL_read_ex(k->ssl, p, len, n);
            if (rc == 1) {
                return HC_IO_OK;
            }
            hc_io r = tls_retry(k->ssl, rc, &ev);
            if (r != HC_IO_OK) {
                return r;
            }
        } else {
            ssize_t got = recv(k->fd, p, len, 0);
            if (got > 0) {
                *n = (size_t)got;
                return HC_IO_OK;
            }
            if (got == 0) {
                return HC_IO_LOST;
            }
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                return HC_IO_LOST;
            }
        }
        if (k->blocking) {
            continue; /* the receive waited its timeout */
        }
        hc_io w = wait_fd(k->fd, ev, deadline);
        if (w != HC_IO_OK) {
            return w;
        }
    }
}

/* ---- dialing ------------------------------------------------------------- */

static int
set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A non-blocking connect to addr, finished before deadline. Returns 0 or
 * an errno value (ETIMEDOUT when the deadline passed). */
static int
connect_one(const struct sockaddr *addr, socklen_t alen, uint64_t deadline,
            int *out)
{
    int fd = socket(addr->sa_family, SOCK_STREAM, 0);
    int err = 0;
    socklen_t elen = sizeof(err);

    if (fd < 0) {
        return errno;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || set_nonblocking(fd) != 0) {
        err = errno;
        close(fd);
        return err;
    }
    sp_socket_nosigpipe(fd);
    if (connect(fd, addr, alen) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            err = errno;
            close(fd);
            return err;
        }
        hc_io w = wait_fd(fd, POLLOUT, deadline);
        if (w == HC_IO_TIMEOUT) {
            close(fd);
            return ETIMEDOUT;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
            err = errno;
        }
        if (err != 0) {
            close(fd);
            return err;
        }
    }
    if (addr->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    *out = fd;
    return 0;
}

/* Tries each address of the broker in turn. */
static int
dial_socket(hopper_client *c, uint64_t deadline, int *fd, hopper_status *st)
{
    char why[160];
    int err;

    if (c->inproc) {
        struct sockaddr_un sun;
        unsigned alen;
        if (!sp_inproc_addr(c->inproc_name, (long)getpid(), &sun, &alen)) {
            return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_URL,
                           "inproc:// is not available here (Linux only)");
        }
        err =
            connect_one((struct sockaddr *)&sun, (socklen_t)alen, deadline, fd);
        if (err == 0) {
            return HOPPER_OK;
        }
        snprintf(why, sizeof(why), "%s",
                 err == ECONNREFUSED ? "no broker of this process listens on it"
                                     : strerror(err));
        return hc_unreachable(c, st, why);
    }
    struct addrinfo hints = { .ai_family = c->family,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rv = getaddrinfo(c->host, c->port, &hints, &res);
    if (rv != 0 || res == NULL) {
        snprintf(why, sizeof(why), "cannot resolve '%s': %s", c->host,
                 rv != 0 ? gai_strerror(rv) : "no address");
        return hc_unreachable(c, st, why);
    }
    err = ENOENT;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        err = connect_one(ai->ai_addr, ai->ai_addrlen, deadline, fd);
        if (err == 0 || err == ETIMEDOUT) {
            break;
        }
    }
    freeaddrinfo(res);
    if (err == 0) {
        return HOPPER_OK;
    }
    if (err == ETIMEDOUT) {
        return hc_unreachable(c, st, "no connection within the timeout");
    }
    snprintf(why, sizeof(why), "%s", strerror(err));
    return hc_unreachable(c, st, why);
}

/* Says why a TLS handshake failed, as precisely as OpenSSL can. */
static int
tls_failed(hopper_client *c, SSL *ssl, hopper_status *st)
{
    char why[200];
    long vr = SSL_get_verify_result(ssl);
    unsigned long e = ERR_peek_error();

    if (vr != X509_V_OK) {
        snprintf(why, sizeof(why),
                 "TLS handshake failed: the broker's certificate is not "
                 "trusted (%s; check the CA file and server name '%s')",
                 X509_verify_cert_error_string(vr), c->server_name);
    } else if (e != 0) {
        char err[120];
        ERR_error_string_n(e, err, sizeof(err));
        snprintf(why, sizeof(why),
                 "TLS handshake failed: %s (does the broker want a client "
                 "certificate?)",
                 err);
    } else {
        snprintf(why, sizeof(why),
                 "TLS handshake failed: the broker closed the connection "
                 "(does it want a client certificate?)");
    }
    ERR_clear_error();
    return hc_unreachable(c, st, why);
}

static int
tls_handshake(hopper_client *c, hc_conn *k, uint64_t deadline,
              hopper_status *st)
{
    BIO *bio;

    if ((k->ssl = SSL_new(c->tls_ctx)) == NULL ||
        (bio = sp_socket_bio(k->fd)) == NULL) {
        return hc_no_memory(st);
    }
    SSL_set_bio(k->ssl, bio, bio);
    SSL_set_connect_state(k->ssl);
    /* The name to check: an IP address is matched against the
     * certificate's IP SANs, a name against its DNS SANs (and sent as
     * SNI). */
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, c->server_name, ip) == 1 ||
                 inet_pton(AF_INET6, c->server_name, ip) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(k->ssl);
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, c->server_name) != 1
              : (SSL_set1_host(k->ssl, c->server_name) != 1 ||
                 SSL_set_tlsext_host_name(k->ssl, c->server_name) != 1)) {
        ERR_clear_error();
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_TLS_CONFIG,
                       "cannot check the broker's name '%s'", c->server_name);
    }
    for (;;) {
        int rc = SSL_do_handshake(k->ssl);
        short ev;
        if (rc == 1) {
            return HOPPER_OK;
        }
        hc_io r = tls_retry(k->ssl, rc, &ev);
        if (r != HC_IO_OK) {
            return tls_failed(c, k->ssl, st);
        }
        if (wait_fd(k->fd, ev, deadline) == HC_IO_TIMEOUT) {
            return hc_unreachable(c, st,
                                  "TLS handshake not finished within the "
                                  "timeout");
        }
    }
}

static int
sp_handshake_run(hopper_client *c, hc_conn *k, uint64_t deadline,
                 hopper_status *st)
{
    uint8_t mine[SP_HANDSHAKE_LEN], peer[SP_HANDSHAKE_LEN];
    size_t got = 0;

    sp_handshake(SP_PROTO_REQ0, mine);
    hc_io r = hc_write_all(k, mine, sizeof(mine), deadline);
    while (r == HC_IO_OK && got < sizeof(peer)) {
        size_t n = 0;
        r = hc_read_some(k, peer + got, sizeof(peer) - got, &n, deadline);
        got += n;
    }
    if (r == HC_IO_TIMEOUT) {
        return hc_unreachable(c, st, "no SP handshake within the timeout");
    }
    if (r != HC_IO_OK && k->ssl != NULL && ERR_peek_error() != 0) {
        /* With TLS 1.3 a broker refuses a client certificate after the
         * client's side of the handshake is done: the alert arrives here. */
        return tls_failed(c, k->ssl, st);
    }
    if (r != HC_IO_OK) {
        ERR_clear_error();
        return hc_unreachable(c, st,
                              "the broker closed the connection during the "
                              "handshake");
    }
    if (!sp_handshake_ok(peer, SP_PROTO_REP0)) {
        return hc_unreachable(c, st,
                              "the peer is not an SP rep0 server (is this "
                              "hopperd's port?)");
    }
    return HOPPER_OK;
}

int
hc_dial(hopper_client *c, uint64_t deadline, bool blocking, hc_conn **out,
        hopper_status *st)
{
    hc_conn *k = calloc(1, sizeof(*k));
    int code;

    if (k == NULL) {
        return hc_no_memory(st);
    }
    k->fd = -1;
    /* SP request ids are per connection; a start spread out from the
     * client's counter (NNG's is random) keeps one connection's ids from
     * looking like another's in a capture. */
    k->next_id = (uint32_t)(atomic_fetch_add(&c->rid_next, 1) * 2654435761u);
    if ((code = dial_socket(c, deadline, &k->fd, st)) != HOPPER_OK ||
        (c->tls && (code = tls_handshake(c, k, deadline, st)) != HOPPER_OK) ||
        (code = sp_handshake_run(c, k, deadline, st)) != HOPPER_OK) {
        hc_conn_close(k);
        return code;
    }
    /* A synchronous call sends, then waits in one receive with a timeout:
     * two system calls, not the four of a non-blocking send, a receive
     * that finds nothing, a poll and the receive. */
    if (blocking) {
        int fl = fcntl(k->fd, F_GETFL);
        if (fl >= 0 && fcntl(k->fd, F_SETFL, fl & ~O_NONBLOCK) == 0) {
            k->blocking = true;
        }
    }
    *out = k;
    return HOPPER_OK;
}

/* ---- the target --------------------------------------------------------- */

static int
tls_setup(hopper_client *c, const hopper_options *o, hopper_status *st)
{
    char err[120];

    if (o->tls_ca_file == NULL || o->tls_ca_file[0] == '\0') {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_TLS_CONFIG,
                       "'%s' needs a CA file to verify the broker", c->url);
    }
    if ((o->tls_cert_file == NULL) != (o->tls_key_file == NULL)) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_TLS_CONFIG,
                       "a client certificate needs both cert and key files");
    }
    if ((c->tls_ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        return hc_no_memory(st);
    }
    SSL_CTX_set_min_proto_version(c->tls_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->tls_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(c->tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_load_verify_locations(c->tls_ctx, o->tls_ca_file, NULL) != 1) {
        ERR_error_string_n(ERR_get_error(), err, sizeof(err));
        ERR_clear_error();
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_TLS_CONFIG,
                       "cannot load CA file '%s': %s", o->tls_ca_file, err);
    }
    if (o->tls_cert_file != NULL &&
        (SSL_CTX_use_certificate_chain_file(c->tls_ctx, o->tls_cert_file) !=
             1 ||
         SSL_CTX_use_PrivateKey_file(c->tls_ctx, o->tls_key_file,
                                     SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(c->tls_ctx) != 1)) {
        ERR_error_string_n(ERR_get_error(), err, sizeof(err));
        ERR_clear_error();
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_TLS_CONFIG,
                       "cannot load client certificate '%s' and key '%s': %s",
                       o->tls_cert_file, o->tls_key_file, err);
    }
    const char *name =
        o->tls_server_name != NULL && o->tls_server_name[0] != '\0'
            ? o->tls_server_name
            : c->host;
    if ((c->server_name = strdup(name)) == NULL) {
        return hc_no_memory(st);
    }
    return HOPPER_OK;
}

int
hc_target_init(hopper_client *c, const hopper_options *o, hopper_status *st)
{
    const char *why = NULL;
    sp_url u;

    if (strncmp(c->url, "ipc://", 6) == 0) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_URL,
                       "cannot use broker URL '%s': ipc:// is not offered; "
                       "use tcp://127.0.0.1:PORT",
                       c->url);
    }
    if (!sp_url_parse(c->url, &u, &why)) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_URL,
                       "cannot use broker URL '%s': %s", c->url, why);
    }
    if (u.kind == SP_URL_TCP &&
        (u.host[0] == '\0' || strcmp(u.host, "*") == 0 ||
         strcmp(u.port, "0") == 0)) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_URL,
                       "cannot use broker URL '%s': give a host and a port",
                       c->url);
    }
    c->inproc = u.kind == SP_URL_INPROC;
    c->tls = u.tls;
    c->family = u.family;
    if ((c->host = strdup(u.host)) == NULL ||
        (c->port = strdup(u.port)) == NULL ||
        (c->inproc_name = strdup(u.name)) == NULL) {
        return hc_no_memory(st);
    }
    return c->tls ? tls_setup(c, o, st) : HOPPER_OK;
}

void
hc_target_release(hopper_client *c)
{
    SSL_CTX_free(c->tls_ctx);
    free(c->host);
    free(c->port);
    free(c->inproc_name);
    free(c->server_name);
}
