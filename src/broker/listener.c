/*
 * listener.c - rep0 contexts with async aio.
 *
 * A worker is a context and its aio. It receives a request, hands it to the
 * handler, and once the reply is sent goes back to receiving. When a request
 * arrives and fewer than min_idle workers are left waiting, a new worker is
 * added, so thousands of requests (long-polls included) can be in flight;
 * the pool never shrinks, and stops growing at max_inflight, after which new
 * requests wait in NNG until a worker is free.
 *
 * TLS: one server nng_tls_config, built before the socket opens and shared
 * by every tls+tcp:// listener (each holds its own reference; ours is
 * dropped when listener_open returns). NNG hands the PEM text to mbedTLS,
 * which reports every parse failure as the same NNG_ECRYPTO and never
 * checks that the key belongs to the certificate (a mismatch only shows
 * as failed handshakes). So the files are first read here and checked with
 * OpenSSL's libcrypto, already linked for tokens, to say which file is
 * wrong and how.
 */
#include "broker/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/log.h"

#define MAX_URLS 16

/* The client's reason word for the same kind of failure. */
#define R_BAD_TLS "BAD_TLS_CONFIG"

/* A certificate chain or CA bundle is a few KiB; 1 MiB is generous. */
#define PEM_MAX_BYTES (1 << 20)

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

/* Connections (pipe ids) remembered as closed. NNG hands out pipe ids in
 * sequence, so a request handled this many closes after its connection
 * went is the only one that can be taken for live. */
#define CLOSED_RING 4096

struct listener {
    nng_socket sock;
    nng_listener ls[MAX_URLS];
    char *urls[MAX_URLS];
    size_t n;
    bool accepting;
    listener_handler fn;
    listener_closed_fn on_closed;
    void *arg;
    uint32_t send_timeout_ms;
    uint32_t min_idle, max_inflight;

    pthread_mutex_t mtx;
    listener_worker *workers;     /* l->mtx */
    uint32_t closed[CLOSED_RING]; /* l->mtx; ids of closed pipes, a ring */
    size_t closed_next;           /* l->mtx */
    _Atomic uint32_t total;
    _Atomic uint32_t idle;
    _Atomic uint32_t conns;
    _Atomic uint64_t conns_total;
    _Atomic uint32_t sending;
    _Atomic bool closing;
};

hp_code
listener_nng_status(hp_status *st, int rv, const char *what, const char *url)
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
    case NNG_ECRYPTO:
    case NNG_EPEERAUTH:
        /* mbedTLS's own code is lost inside NNG: all it says is this. */
        return hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "%s '%s': mbedTLS refused it (%s)", what, url,
                             nng_strerror(rv));
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

/* ---- TLS ----------------------------------------------------------------- */

/* tls+tcp://, tls+tcp4:// and tls+tcp6://, NNG's names for SP over TLS. */
static bool
is_tls_url(const char *url)
{
    return strncmp(url, "tls+tcp", 7) == 0;
}

/* nng_tls_config_free does not take NULL in NNG 1.5.2. */
static void
tls_config_drop(nng_tls_config *cfg)
{
    if (cfg != NULL) {
        nng_tls_config_free(cfg);
    }
}

static bool
is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/*
 * Reads the whole of a PEM file into a NUL-terminated buffer the caller
 * frees (the NUL is what NNG's PEM calls expect). With secret set, the
 * file must not be readable by others: a broker key anyone on the host can
 * read lets them impersonate the broker. Group read stays allowed for the
 * usual ssl-cert group set-up.
 */
static hp_code
read_pem(const char *path, const char *what, bool secret, char **out,
         size_t *len_out, hp_status *st)
{
    char ctx[200];
    struct stat sb;
    char *buf;
    size_t len = 0;
    int fd;

    snprintf(ctx, sizeof(ctx), "cannot read TLS %s '%s'", what, path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        return hp_status_from_errno(st, errno, ctx);
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "TLS %s '%s' is not a regular file", what, path);
    }
    if (secret && (sb.st_mode & 007) != 0) {
        close(fd);
        return hp_status_set(st, HP_FAILED_PRECONDITION, "KEY_FILE_MODE",
                             "TLS %s '%s' is open to every user (mode %03o); "
                             "chmod 600 it (or 640 for a group)",
                             what, path, (unsigned)(sb.st_mode & 0777));
    }
    if (sb.st_size > PEM_MAX_BYTES) {
        close(fd);
        return hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "TLS %s '%s' is over %d bytes: not a PEM file",
                             what, path, PEM_MAX_BYTES);
    }
    if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
        close(fd);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    while (len < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)sb.st_size - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int err = n < 0 ? errno : EIO; /* shrank while being read */
            close(fd);
            OPENSSL_cleanse(buf, len);
            free(buf);
            return hp_status_from_errno(st, err, ctx);
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    if (strlen(buf) != len) {
        OPENSSL_cleanse(buf, len);
        free(buf);
        return hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "TLS %s '%s' is binary (DER?); PEM is needed",
                             what, path);
    }
    *out = buf;
    *len_out = len;
    return HP_OK;
}

static void
free_secret(char *buf, size_t len)
{
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
}

/* OpenSSL's default asks on the terminal; a daemon must never wait there. */
static int
no_password(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

/*
 * Says which of the two files is wrong, and how, before mbedTLS sees them:
 * the first certificate in cert_pem must be there, the key must be there,
 * unencrypted, and must be the certificate's.
 */
static hp_code
check_pair(const listener_opts *o, const char *cert_pem, const char *key_pem,
           hp_status *st)
{
    hp_code code = HP_OK;
    X509 *x = NULL;
    EVP_PKEY *pk = NULL;
    BIO *bio;

    if ((bio = BIO_new_mem_buf(cert_pem, -1)) != NULL) {
        x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
        BIO_free(bio);
    }
    if (x == NULL) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "TLS certificate '%s' holds no PEM certificate "
                             "('-----BEGIN CERTIFICATE-----')",
                             o->tls_cert_file);
        goto done;
    }
    if (strstr(key_pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
        strstr(key_pem, "Proc-Type: 4,ENCRYPTED") != NULL) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "TLS key '%s' is encrypted; hopperd needs it "
                             "unencrypted (protect it with chmod 600)",
                             o->tls_key_file);
        goto done;
    }
    if ((bio = BIO_new_mem_buf(key_pem, -1)) != NULL) {
        pk = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
        BIO_free(bio);
    }
    if (pk == NULL) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "TLS key '%s' holds no PEM private key",
                             o->tls_key_file);
        goto done;
    }
    if (X509_check_private_key(x, pk) != 1) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "TLS key '%s' does not match certificate '%s'",
                             o->tls_key_file, o->tls_cert_file);
    }
done:
    EVP_PKEY_free(pk);
    X509_free(x);
    ERR_clear_error(); /* this thread's queue: leave nothing behind */
    return code;
}

/* The server certificate and key, checked, into cfg. */
static hp_code
tls_own_cert(nng_tls_config *cfg, const listener_opts *o, hp_status *st)
{
    char *cert = NULL;
    char *key = NULL;
    size_t cert_len = 0;
    size_t key_len = 0;
    hp_code code;
    int rv;

    if ((code = read_pem(o->tls_cert_file, "certificate", false, &cert,
                         &cert_len, st)) != HP_OK ||
        (code = read_pem(o->tls_key_file, "key", true, &key, &key_len, st)) !=
            HP_OK ||
        (code = check_pair(o, cert, key, st)) != HP_OK) {
        goto free_pem;
    }
    /* OpenSSL accepted them; mbedTLS 2.28 may still refuse a key type it
     * lacks (Ed25519, Ed448). */
    if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) == NNG_ECRYPTO) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "mbedTLS cannot use TLS certificate '%s' with "
                             "key '%s' (it takes RSA and ECDSA keys, not "
                             "Ed25519 or Ed448)",
                             o->tls_cert_file, o->tls_key_file);
    } else if (rv != 0) {
        code = listener_nng_status(st, rv, "cannot use TLS certificate",
                                   o->tls_cert_file);
    }
free_pem:
    free(cert);
    free_secret(key, key_len);
    return code;
}

/* Client certificates: required and checked against the CA file. */
static hp_code
tls_client_ca(nng_tls_config *cfg, const listener_opts *o, hp_status *st)
{
    char *pem = NULL;
    size_t len = 0;
    hp_code code;
    int rv;

    if ((code = read_pem(o->tls_client_ca_file, "client CA", false, &pem, &len,
                         st)) != HP_OK) {
        return code;
    }
    /* As nng_tls_config_ca_file does it, but with the file read above so
     * a missing or unreadable file is reported like the others. */
    const char *crl =
        strstr(pem, "-----BEGIN X509 CRL-----") != NULL ? pem : NULL;
    if (strstr(pem, "-----BEGIN CERTIFICATE-----") == NULL) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "TLS client CA '%s' holds no PEM certificate",
                             o->tls_client_ca_file);
    } else if ((rv = nng_tls_config_ca_chain(cfg, pem, crl)) != 0 ||
               (rv = nng_tls_config_auth_mode(
                    cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0) {
        code = listener_nng_status(st, rv, "cannot use TLS client CA",
                                   o->tls_client_ca_file);
    }
    free(pem);
    return code;
}

/*
 * Checks that the TLS options and the URLs agree, and builds the server
 * configuration when any URL is tls+tcp://; *out stays NULL otherwise.
 * TLS files with no TLS listener are refused rather than ignored: whoever
 * gave them expects encrypted traffic, and a plain tcp:// listener would
 * quietly carry tokens and payloads in the clear.
 */
static hp_code
tls_config_new(const listener_opts *o, nng_tls_config **out, hp_status *st)
{
    bool cert = is_set(o->tls_cert_file);
    bool key = is_set(o->tls_key_file);
    bool ca = is_set(o->tls_client_ca_file);
    const char *tls_url = NULL;
    nng_tls_config *cfg;
    hp_code code;
    int rv;

    *out = NULL;
    for (size_t i = 0; i < o->n_urls && tls_url == NULL; i++) {
        tls_url = is_tls_url(o->urls[i]) ? o->urls[i] : NULL;
    }
    if (cert != key) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "--tls-cert and --tls-key go together (they "
                             "may name the same file)");
    }
    if (ca && !cert) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "--tls-client-ca needs --tls-cert and "
                             "--tls-key");
    }
    if (tls_url == NULL) {
        if (cert) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                                 "--tls-cert is given but no listener is "
                                 "tls+tcp://; listen on "
                                 "tls+tcp://HOST:PORT or drop the TLS flags");
        }
        return HP_OK;
    }
    if (!cert) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, R_BAD_TLS,
                             "'%s' needs a certificate and its key: give "
                             "--tls-cert and --tls-key",
                             tls_url);
    }
    if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER)) != 0) {
        return listener_nng_status(st, rv, "TLS is not available for", tls_url);
    }
    if ((code = tls_own_cert(cfg, o, st)) != HP_OK) {
        goto free_cfg;
    }
    if (ca) {
        code = tls_client_ca(cfg, o, st);
    } else if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE)) !=
               0) {
        code = listener_nng_status(st, rv, "cannot set up TLS for", tls_url);
    }
    if (code == HP_OK) {
        *out = cfg;
        return HP_OK;
    }
free_cfg:
    nng_tls_config_free(cfg);
    return code;
}

/* ---- URLs ---------------------------------------------------------------- */

/* The length of the scheme when it is one whose port can be read back
 * (tcp, tcp4, tcp6 and their tls+ forms), else 0. */
static size_t
tcp_scheme_len(const char *url)
{
    static const char *const schemes[] = {
        "tcp://",     "tcp4://",     "tcp6://",
        "tls+tcp://", "tls+tcp4://", "tls+tcp6://",
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(schemes); i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(url, schemes[i], n) == 0) {
            return n;
        }
    }
    return 0;
}

static char *
bound_url(nng_listener nl, const char *url)
{
    nng_sockaddr sa;
    char buf[256];
    size_t slen = tcp_scheme_len(url);
    if (slen == 0 || nng_listener_get_addr(nl, NNG_OPT_LOCADDR, &sa) != 0 ||
        (sa.s_family != NNG_AF_INET && sa.s_family != NNG_AF_INET6)) {
        return strdup(url);
    }
    /* Keep the scheme and host as written; fill in the port the system
     * chose. */
    const char *host = url + slen;
    const char *colon = strrchr(host, ':');
    size_t hlen = colon != NULL ? (size_t)(colon - host) : strlen(host);
    unsigned port =
        sa.s_family == NNG_AF_INET ? sa.s_in.sa_port : sa.s_in6.sa_port;
    port = ((port & 0xffu) << 8) | ((port >> 8) & 0xffu); /* network order */
    snprintf(buf, sizeof(buf), "%.*s%.*s:%u", (int)slen, url, (int)hlen, host,
             port);
    return strdup(buf);
}

/* A connection closed: remember it, so that listener_conn_open can answer
 * for a request whose connection went while it was being handled (NNG
 * may run this before or after that request's last step), then tell the
 * owner. A set of open pipes kept from ADD events instead would depend on
 * the order of a quick connection's ADD and REMOVE callbacks. */
static void
pipe_closed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    listener *l = arg;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    (void)ev;
    atomic_fetch_sub(&l->conns, 1);
    pthread_mutex_lock(&l->mtx);
    l->closed[l->closed_next] = id;
    l->closed_next = (l->closed_next + 1) % CLOSED_RING;
    pthread_mutex_unlock(&l->mtx);
    if (l->on_closed != NULL && !atomic_load(&l->closing)) {
        l->on_closed(l->arg, id);
    }
}

/* Counted at ADD_PRE: NNG runs REM_POST for exactly the pipes whose
 * ADD_PRE callbacks ran (a pipe can close between ADD_PRE and ADD_POST). */
static void
pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    listener *l = arg;
    (void)p;
    (void)ev;
    atomic_fetch_add(&l->conns, 1);
    atomic_fetch_add(&l->conns_total, 1);
}

void
listener_get_stats(listener *l, listener_stats *out)
{
    out->connections = atomic_load(&l->conns);
    out->connections_total = atomic_load(&l->conns_total);
    out->contexts = atomic_load(&l->total);
    out->idle = atomic_load(&l->idle);
}

bool
listener_conn_open(listener *l, uint32_t conn)
{
    bool open = true;
    pthread_mutex_lock(&l->mtx);
    for (size_t i = 0; i < CLOSED_RING && open; i++) {
        open = l->closed[i] != conn || conn == 0;
    }
    pthread_mutex_unlock(&l->mtx);
    return open;
}

hp_code
listener_open(const listener_opts *o, listener_handler fn, void *arg,
              listener **out, hp_status *st)
{
    nng_tls_config *tls = NULL;
    hp_code code = HP_OK;
    listener *l;
    int rv;

    if (o->n_urls == 0 || o->n_urls > MAX_URLS) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, "BAD_URL",
                             "need 1-%d listen URLs", MAX_URLS);
    }
    if ((code = tls_config_new(o, &tls, st)) != HP_OK) {
        return code;
    }
    if ((l = calloc(1, sizeof(*l))) == NULL) {
        tls_config_drop(tls);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    pthread_mutex_init(&l->mtx, NULL);
    l->fn = fn;
    l->on_closed = o->on_closed;
    l->arg = arg;
    l->send_timeout_ms = o->send_timeout_ms;
    l->min_idle = o->min_idle > 0 ? o->min_idle : 1;
    l->max_inflight =
        o->max_inflight > l->min_idle ? o->max_inflight : l->min_idle;
    if ((rv = nng_rep0_open(&l->sock)) != 0) {
        pthread_mutex_destroy(&l->mtx);
        free(l);
        tls_config_drop(tls);
        return listener_nng_status(st, rv, "cannot open socket", "rep0");
    }
    if ((rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, pipe_closed, l)) !=
            0 ||
        (rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_PRE, pipe_added, l)) !=
            0) {
        code = listener_nng_status(st, rv, "cannot watch connections", "rep0");
        goto fail;
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
            code = listener_nng_status(st, rv, "cannot listen on", url);
            goto fail;
        }
        l->n = i + 1;
        /* The TLS configuration must be in place before the start: the
         * listener's default one has no certificate, and NNG would accept
         * connections only to fail every handshake. */
        if (is_tls_url(url) && (rv = nng_listener_set_ptr(
                                    l->ls[i], NNG_OPT_TLS_CONFIG, tls)) != 0) {
            code = listener_nng_status(st, rv, "cannot set up TLS for", url);
            goto fail;
        }
        if ((rv = nng_listener_set_size(l->ls[i], NNG_OPT_RECVMAXSZ,
                                        o->max_frame)) != 0 ||
            (rv = nng_listener_start(l->ls[i], 0)) != 0) {
            code = listener_nng_status(st, rv, "cannot listen on", url);
            goto fail;
        }
        l->urls[i] = bound_url(l->ls[i], url);
        hp_log(HP_LOG_INFO, "listening", "url=%s",
               l->urls[i] != NULL ? l->urls[i] : url);
    }
    l->accepting = true;
    for (uint32_t i = 0; i < l->min_idle; i++) {
        if ((rv = spawn_worker(l)) != 0) {
            code = listener_nng_status(st, rv, "cannot open context", "rep0");
            goto fail;
        }
    }
    tls_config_drop(tls); /* each TLS listener holds its own */
    *out = l;
    return HP_OK;
fail:
    listener_close(l);
    tls_config_drop(tls);
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
        hp_log(HP_LOG_INFO, "listener closed", "url=%s",
               l->urls[i] != NULL ? l->urls[i] : "-");
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
