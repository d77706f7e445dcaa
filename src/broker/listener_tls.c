/*
 * listener_tls.c - the server side of tls+tcp:// with OpenSSL: TLS 1.2 and
 * 1.3, the broker's certificate and key, and optional client certificates
 * checked against a CA file whose CRLs revoke what they list.
 *
 * The files are read here first and checked one by one, so that a broken
 * set-up stops the start with a message naming the file and what is wrong
 * with it, rather than showing up later as every handshake failing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "broker/listener_int.h"
#include "common/log.h"

/* A certificate chain or CA bundle is a few KiB; 1 MiB is generous. */
#define PEM_MAX_BYTES (1 << 20)

bool
listener_is_tls_url(const char *url)
{
    return strncmp(url, "tls+tcp", 7) == 0;
}

void
listener_tls_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(buf, len, "no detail from OpenSSL");
    } else {
        ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
}

static bool
is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/*
 * Reads the whole of a PEM file into a NUL-terminated buffer the caller
 * frees. With secret set, the file must not be readable by others: a
 * broker key anyone on the host can read lets them impersonate the broker.
 * Group read stays allowed for the usual ssl-cert group set-up.
 */
hp_code
listener_read_pem(const char *path, const char *what, bool secret, char **out,
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
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "TLS %s '%s' is not a regular file", what, path);
    }
    if (secret && (sb.st_mode & 007) != 0) {
        close(fd);
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_KEY_FILE_MODE,
                             "TLS %s '%s' is open to every user (mode %03o); "
                             "chmod 600 it (or 640 for a group)",
                             what, path, (unsigned)(sb.st_mode & 0777));
    }
    if (sb.st_size > PEM_MAX_BYTES) {
        close(fd);
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
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
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
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

/* A certificate past its end date still loads; every client would refuse
 * it, so say so loudly at start, where the operator is looking. */
static void
warn_if_expired(X509 *x, const char *path)
{
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        hp_log(HP_LOG_WARN, "TLS certificate expired",
               "file=%s detail=\"clients will refuse every handshake until "
               "it is renewed and hopperd restarted\"",
               path);
    } else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
        hp_log(HP_LOG_WARN, "TLS certificate not yet valid", "file=%s", path);
    }
}

/*
 * The certificate chain of cert_pem (the first is the broker's, the rest
 * intermediates) and the key of key_pem into ctx, saying which file is
 * wrong and how.
 */
static hp_code
use_pair(SSL_CTX *ctx, const listener_opts *o, const char *cert_pem,
         const char *key_pem, hp_status *st)
{
    hp_code code = HP_OK;
    char err[160];
    X509 *x = NULL;
    EVP_PKEY *pk = NULL;
    BIO *bio;

    if ((bio = BIO_new_mem_buf(cert_pem, -1)) != NULL) {
        x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
    }
    if (x == NULL) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "TLS certificate '%s' holds no PEM certificate "
                             "('-----BEGIN CERTIFICATE-----')",
                             o->tls_cert_file);
        goto done;
    }
    if (SSL_CTX_use_certificate(ctx, x) != 1) {
        listener_tls_error(err, sizeof(err));
        code = hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "cannot use TLS certificate '%s': %s",
                             o->tls_cert_file, err);
        goto done;
    }
    warn_if_expired(x, o->tls_cert_file);
    for (X509 *extra;
         (extra = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL;) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            code =
                hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                              "cannot use the chain in '%s'", o->tls_cert_file);
            goto done;
        }
    }
    ERR_clear_error(); /* the loop above ends on "no start line" */
    if (strstr(key_pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
        strstr(key_pem, "Proc-Type: 4,ENCRYPTED") != NULL) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "TLS key '%s' is encrypted; hopperd needs it "
                             "unencrypted (protect it with chmod 600)",
                             o->tls_key_file);
        goto done;
    }
    BIO_free(bio);
    if ((bio = BIO_new_mem_buf(key_pem, -1)) != NULL) {
        pk = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    }
    if (pk == NULL) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "TLS key '%s' holds no PEM private key",
                             o->tls_key_file);
        goto done;
    }
    if (X509_check_private_key(x, pk) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, pk) != 1) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "TLS key '%s' does not match certificate '%s'",
                             o->tls_key_file, o->tls_cert_file);
    }
done:
    BIO_free(bio);
    EVP_PKEY_free(pk);
    X509_free(x);
    ERR_clear_error(); /* this thread's queue: leave nothing behind */
    return code;
}

/* The server certificate and key, read and checked, into ctx. */
static hp_code
own_cert(SSL_CTX *ctx, const listener_opts *o, hp_status *st)
{
    char *cert = NULL;
    char *key = NULL;
    size_t cert_len = 0;
    size_t key_len = 0;
    hp_code code;

    if ((code = listener_read_pem(o->tls_cert_file, "certificate", false, &cert,
                                  &cert_len, st)) == HP_OK &&
        (code = listener_read_pem(o->tls_key_file, "key", true, &key, &key_len,
                                  st)) == HP_OK) {
        code = use_pair(ctx, o, cert, key, st);
    }
    free(cert);
    free_secret(key, key_len);
    return code;
}

/* Client certificates: required, checked against the CA file, and against
 * the CRLs in it when there are any. */
static hp_code
client_ca(SSL_CTX *ctx, const listener_opts *o, hp_status *st)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    size_t n_certs = 0;
    size_t n_crls = 0;
    char *pem = NULL;
    size_t len = 0;
    hp_code code;
    BIO *bio = NULL;
    STACK_OF(X509_INFO) *infos = NULL;

    if (names == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    if ((code = listener_read_pem(o->tls_client_ca_file, "client CA", false,
                                  &pem, &len, st)) != HP_OK) {
        sk_X509_NAME_free(names);
        return code;
    }
    if ((bio = BIO_new_mem_buf(pem, (int)len)) != NULL) {
        infos = PEM_X509_INFO_read_bio(bio, NULL, no_password, NULL);
    }
    for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *in = sk_X509_INFO_value(infos, i);
        if (in->x509 != NULL && X509_STORE_add_cert(store, in->x509) == 1) {
            X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(in->x509));
            if (nm != NULL && sk_X509_NAME_push(names, nm) == 0) {
                X509_NAME_free(nm);
            }
            n_certs++;
        }
        if (in->crl != NULL && X509_STORE_add_crl(store, in->crl) == 1) {
            n_crls++;
        }
    }
    ERR_clear_error();
    if (n_certs == 0) {
        code = hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "TLS client CA '%s' holds no PEM certificate",
                             o->tls_client_ca_file);
        sk_X509_NAME_pop_free(names, X509_NAME_free);
    } else {
        /* A CRL, when given, is checked for the client's own certificate;
         * one past its next-update date refuses every client of its CA, as
         * a CRL that cannot be trusted any more should. */
        if (n_crls > 0) {
            X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(
            ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    free(pem);
    return code;
}

hp_code
listener_tls_new(const listener_opts *o, SSL_CTX **out, hp_status *st)
{
    bool cert = is_set(o->tls_cert_file);
    bool key = is_set(o->tls_key_file);
    bool ca = is_set(o->tls_client_ca_file);
    const char *tls_url = NULL;
    hp_code code;
    SSL_CTX *ctx;

    *out = NULL;
    for (size_t i = 0; i < o->n_urls && tls_url == NULL; i++) {
        tls_url = listener_is_tls_url(o->urls[i]) ? o->urls[i] : NULL;
    }
    if (cert != key) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "--tls-cert and --tls-key go together (they "
                             "may name the same file)");
    }
    if (ca && !cert) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "--tls-client-ca needs --tls-cert and "
                             "--tls-key");
    }
    if (tls_url == NULL && !o->tls_for_api) {
        if (cert) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                                 "--tls-cert is given but no listener is "
                                 "tls+tcp:// and there is no --api-tls; "
                                 "listen on tls+tcp://HOST:PORT or drop the "
                                 "TLS flags");
        }
        return HP_OK;
    }
    if (!cert && tls_url == NULL) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "--api-tls needs a certificate and its key: "
                             "give --tls-cert and --tls-key");
    }
    if (!cert) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_TLS_CONFIG,
                             "'%s' needs a certificate and its key: give "
                             "--tls-cert and --tls-key",
                             tls_url);
    }
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "cannot create a TLS context");
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Session tickets would make the first read after the handshake also
     * write, and a broker's clients keep their connections anyway. */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Replies are queued and retried from another buffer position, as
     * plain sockets allow. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if ((code = own_cert(ctx, o, st)) == HP_OK && ca) {
        code = client_ca(ctx, o, st);
    }
    if (code != HP_OK) {
        SSL_CTX_free(ctx);
        return code;
    }
    *out = ctx;
    return HP_OK;
}
