/*
 * nnghttp.c - the NNG HTTP server set-up both endpoints share (see
 * nnghttp.h).
 */
#include "broker/nnghttp.h"

#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "common/reasons.h"

hp_code
nnghttp_status(hp_status *st, int rv, const char *what, const char *url)
{
    switch (rv) {
    case NNG_EADDRINUSE:
        return hp_status_set(st, HP_UNAVAILABLE, HP_R_ADDRESS_IN_USE,
                             "%s '%s': address already in use", what, url);
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
    case NNG_EINVAL:
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_URL,
                             "%s '%s': %s", what, url, nng_strerror(rv));
    case NNG_EPERM:
        return hp_status_set(st, HP_PERMISSION_DENIED, HP_R_BAD_URL,
                             "%s '%s': %s", what, url, nng_strerror(rv));
    case NNG_ENOMEM:
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "%s: out of memory", what);
    default:
        return hp_status_set(st, HP_UNAVAILABLE, HP_R_LISTEN_FAILED,
                             "%s '%s': %s", what, url, nng_strerror(rv));
    }
}

hp_code
nnghttp_hold(const char *flag, const char *addr, nng_tls_config *tls,
             nng_http_server **out, hp_status *st)
{
    char text[128];
    nng_url *url;
    int rv;

    if (strchr(addr, '/') != NULL || strlen(addr) > 100) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_URL,
                             "%s '%.100s': want HOST:PORT, e.g. "
                             "127.0.0.1:7451",
                             flag, addr);
    }
    snprintf(text, sizeof(text), "%s://%s", tls != NULL ? "https" : "http",
             addr);
    if ((rv = nng_url_parse(&url, text)) != 0) {
        return nnghttp_status(st, rv, flag, addr);
    }
    rv = nng_http_server_hold(out, url);
    nng_url_free(url);
    if (rv != 0) {
        return nnghttp_status(st, rv, flag, addr);
    }
    if (tls != NULL && (rv = nng_http_server_set_tls(*out, tls)) != 0) {
        /* EBUSY: another endpoint of this process serves the same address
         * and has started it. */
        nng_http_server_release(*out);
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_URL,
                             "%s '%s': cannot serve TLS there (%s); is it "
                             "the address of another of hopperd's "
                             "endpoints?",
                             flag, addr, nng_strerror(rv));
    }
    return HP_OK;
}

void
nnghttp_url(nng_http_server *srv, bool tls, const char *addr, char *out,
            size_t len)
{
    const char *scheme = tls ? "https" : "http";
    char host[INET6_ADDRSTRLEN] = "";
    nng_sockaddr sa;

    if (nng_http_server_get_addr(srv, &sa) == 0) {
        if (sa.s_family == NNG_AF_INET) {
            inet_ntop(AF_INET, &sa.s_in.sa_addr, host, sizeof(host));
            snprintf(out, len, "%s://%s:%u", scheme, host,
                     (unsigned)ntohs(sa.s_in.sa_port));
            return;
        }
        if (sa.s_family == NNG_AF_INET6) {
            inet_ntop(AF_INET6, sa.s_in6.sa_addr, host, sizeof(host));
            snprintf(out, len, "%s://[%s]:%u", scheme, host,
                     (unsigned)ntohs(sa.s_in6.sa_port));
            return;
        }
    }
    snprintf(out, len, "%s://%s", scheme, addr);
}
