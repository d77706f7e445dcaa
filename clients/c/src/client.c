/*
 * client.c - creating and closing a client: one NNG req0 socket with one
 * dialer that connects in the background and reconnects for as long as the
 * client lives. TLS settings are applied here, once, to the dialer.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "client_int.h"

/* The dialer retries a refused or lost connection after 100 ms, doubling
 * up to 2 s, so a broker that restarts is found again quickly. */
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000
#define PEM_MAX_BYTES    (1 << 20)

void
hopper_options_init(hopper_options *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = HC_DEFAULT_TIMEOUT_MS;
}

static char *
dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

static bool
is_tls_url(const char *url)
{
    return strncmp(url, "tls+", 4) == 0;
}

/* Reads a whole PEM file into a fresh NUL-terminated buffer. */
static char *
read_pem(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t len;

    if (f == NULL) {
        return NULL;
    }
    buf = malloc(PEM_MAX_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    len = fread(buf, 1, PEM_MAX_BYTES, f);
    if (ferror(f) || len == PEM_MAX_BYTES) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int
tls_own_cert(nng_tls_config *cfg, const hopper_options *o, hopper_status *st)
{
    char *cert;
    char *key;
    int rv;

    if (strcmp(o->tls_cert_file, o->tls_key_file) == 0) {
        rv = nng_tls_config_cert_key_file(cfg, o->tls_cert_file, NULL);
    } else {
        cert = read_pem(o->tls_cert_file);
        key = read_pem(o->tls_key_file);
        rv = (cert == NULL || key == NULL)
                 ? NNG_ENOENT
                 : nng_tls_config_own_cert(cfg, cert, key, NULL);
        free(cert);
        free(key);
    }
    if (rv != 0) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HC_R_BAD_TLS,
                       "cannot load client certificate '%s' and key '%s': %s",
                       o->tls_cert_file, o->tls_key_file, nng_strerror(rv));
    }
    return HOPPER_OK;
}

/* The host name the broker's certificate must carry: the option, else the
 * URL's host. NNG does not check any name unless one is set. */
static int
tls_server_name(nng_tls_config *cfg, const char *url, const hopper_options *o,
                hopper_status *st)
{
    nng_url *u = NULL;
    int rv;

    if (o->tls_server_name != NULL && o->tls_server_name[0] != '\0') {
        rv = nng_tls_config_server_name(cfg, o->tls_server_name);
    } else if ((rv = nng_url_parse(&u, url)) == 0) {
        rv = nng_tls_config_server_name(cfg, u->u_hostname);
        nng_url_free(u);
    }
    if (rv != 0) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HC_R_BAD_TLS,
                       "cannot set TLS server name for '%s': %s", url,
                       nng_strerror(rv));
    }
    return HOPPER_OK;
}

static int
configure_tls(nng_dialer d, const char *url, const hopper_options *o,
              hopper_status *st)
{
    nng_tls_config *cfg;
    int code = HOPPER_OK;
    int rv;

    if (o->tls_ca_file == NULL || o->tls_ca_file[0] == '\0') {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HC_R_BAD_TLS,
                       "'%s' needs a CA file to verify the broker", url);
    }
    if ((o->tls_cert_file == NULL) != (o->tls_key_file == NULL)) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HC_R_BAD_TLS,
                       "a client certificate needs both cert and key files");
    }
    if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT)) != 0) {
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HC_R_BAD_TLS,
                       "TLS is not available: %s", nng_strerror(rv));
    }
    if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
        (rv = nng_tls_config_ca_file(cfg, o->tls_ca_file)) != 0) {
        code = hc_fail(st, HOPPER_INVALID_ARGUMENT, HC_R_BAD_TLS,
                       "cannot load CA file '%s': %s", o->tls_ca_file,
                       nng_strerror(rv));
        goto free_cfg;
    }
    if ((code = tls_server_name(cfg, url, o, st)) != HOPPER_OK) {
        goto free_cfg;
    }
    if (o->tls_cert_file != NULL &&
        (code = tls_own_cert(cfg, o, st)) != HOPPER_OK) {
        goto free_cfg;
    }
    if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg)) != 0) {
        code = hc_fail(st, HOPPER_INVALID_ARGUMENT, HC_R_BAD_TLS,
                       "cannot apply TLS settings to '%s': %s", url,
                       nng_strerror(rv));
    }
free_cfg:
    nng_tls_config_free(cfg); /* the dialer holds its own reference */
    return code;
}

static int
url_error(const char *url, int rv, hopper_status *st)
{
    if (rv == NNG_ENOMEM) {
        return hc_no_memory(st);
    }
    return hc_fail(st, HOPPER_INVALID_ARGUMENT, HC_R_BAD_URL,
                   "cannot use broker URL '%s': %s", url, nng_strerror(rv));
}

static int
start_dialer(hopper_client *c, const hopper_options *o, hopper_status *st)
{
    size_t max = o->max_response_bytes != 0 ? o->max_response_bytes
                                            : HC_DEFAULT_MAX_REPLY;
    nng_dialer d;
    int code;
    int rv;

    if ((rv = nng_dialer_create(&d, c->sock, c->url)) != 0) {
        return url_error(c->url, rv, st);
    }
    /* NNG's default limit is 1 MiB, below one maximal payload plus its
     * envelope: a bigger reply would be dropped and the call time out. */
    if ((rv = nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, max)) != 0) {
        return url_error(c->url, rv, st);
    }
    if (is_tls_url(c->url) &&
        (code = configure_tls(d, c->url, o, st)) != HOPPER_OK) {
        return code;
    }
    /* Non-blocking: a broker that is down now is retried in the
     * background, and calls report UNAVAILABLE until it answers. */
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        return url_error(c->url, rv, st);
    }
    return HOPPER_OK;
}

static int
open_socket(hopper_client *c, hopper_status *st)
{
    int rv;

    if ((rv = nng_req0_open(&c->sock)) != 0) {
        return rv == NNG_ENOMEM
                   ? hc_no_memory(st)
                   : hc_fail(st, HOPPER_INTERNAL, "NNG_ERROR",
                             "cannot open req0 socket: %s", nng_strerror(rv));
    }
    /* Failing to tune reconnection only makes it slower: not fatal. */
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS);
    return HOPPER_OK;
}

int
hopper_connect(const char *url, const hopper_options *o, hopper_client **out,
               hopper_status *st)
{
    hopper_options defaults;
    hopper_client *c;
    int code;

    if (out == NULL) {
        return hc_bad_arg(st, "out must not be NULL");
    }
    *out = NULL;
    if (o == NULL) {
        hopper_options_init(&defaults);
        o = &defaults;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        return hc_no_memory(st);
    }
    c->url = dup_or_empty(url != NULL ? url : HC_DEFAULT_URL);
    c->token = dup_or_empty(o->token);
    c->scope = dup_or_empty(o->scope);
    c->timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : HC_DEFAULT_TIMEOUT_MS;
    if (c->url == NULL || c->token == NULL || c->scope == NULL) {
        code = hc_no_memory(st);
        goto free_client;
    }
    if ((code = hc_reqid_seed(c, st)) != HOPPER_OK ||
        (code = open_socket(c, st)) != HOPPER_OK) {
        goto free_client;
    }
    if ((code = start_dialer(c, o, st)) != HOPPER_OK) {
        goto close_socket;
    }
    *out = c;
    return HOPPER_OK;

close_socket:
    nng_close(c->sock);
free_client:
    free(c->url);
    free(c->token);
    free(c->scope);
    free(c);
    return code;
}

void
hopper_close(hopper_client *c)
{
    if (c == NULL) {
        return;
    }
    nng_close(c->sock);
    free(c->url);
    if (c->token != NULL) {
        /* The credential should not linger in freed memory. */
        volatile char *p = c->token;
        while (*p != '\0') {
            *p++ = '\0';
        }
    }
    free(c->token);
    free(c->scope);
    free(c);
}

void
hopper_free(void *p)
{
    free(p);
}
