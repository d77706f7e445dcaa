/*
 * http.c - the smallest HTTP/1.1 client that drives hopperd's API for the
 * H workloads: one blocking keep-alive connection, a POST with a JSON
 * body, a response read by its Content-Length. A response that says
 * Connection: close (a long-poll that waited) makes the next request
 * reconnect. No TLS, no chunked bodies: hopperd sends neither here.
 */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "bench.h"

static int
dial(bench_http *h)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons(h->port) };
    int one = 1;
    if (inet_pton(AF_INET, h->host, &sa.sin_addr) != 1 ||
        (h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        return -1;
    }
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(h->fd);
        h->fd = -1;
        return -1;
    }
    return 0;
}

int
bench_http_open(bench_http *h, const char *base)
{
    unsigned port;
    memset(h, 0, sizeof(*h));
    h->fd = -1;
    if (sscanf(base, "http://%63[0-9.]:%u", h->host, &port) != 2 ||
        port > 65535) {
        fprintf(stderr, "hopper-bench: API URL '%s' is not http://IP:PORT\n",
                base);
        return -1;
    }
    h->port = (uint16_t)port;
    return dial(h);
}

void
bench_http_close(bench_http *h)
{
    if (h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
    free(h->buf);
    h->buf = NULL;
}

static int
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until buf holds at least want bytes. */
static int
fill(bench_http *h, size_t want)
{
    while (h->len < want) {
        if (h->cap - h->len < 4096) {
            size_t cap = h->cap ? h->cap * 2 : 65536;
            char *b = realloc(h->buf, cap + 1);
            if (b == NULL) {
                return -1;
            }
            h->buf = b;
            h->cap = cap;
        }
        ssize_t r = recv(h->fd, h->buf + h->len, h->cap - h->len, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        h->len += (size_t)r;
    }
    return 0;
}

/* Drops the connection after a failure: the next request redials rather
 * than read the rest of an answer it lost track of. */
static int
fail(bench_http *h)
{
    if (h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
    return -1;
}

int
bench_http_post(bench_http *h, const char *method, const char *json, size_t len,
                int *status, const char **body, size_t *body_len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "POST /hopper.v1.Broker/%s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, h->host, len);
    if (h->fd < 0 && dial(h) != 0) {
        return -1;
    }
    *status = 0;
    *body = NULL;
    *body_len = 0;
    if (send_all(h->fd, head, (size_t)n) != 0 ||
        send_all(h->fd, json, len) != 0) {
        return fail(h);
    }
    /* Whatever the last response left is gone: one request at a time. */
    h->len = 0;
    char *end = NULL;
    while (end == NULL) {
        if (fill(h, h->len + 1) != 0) {
            return fail(h);
        }
        h->buf[h->len] = '\0';
        end = strstr(h->buf, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end + 4 - h->buf);
    const char *cl = strcasestr(h->buf, "\r\nContent-Length:");
    if (sscanf(h->buf, "HTTP/1.1 %d", status) != 1 || cl == NULL || cl > end) {
        return fail(h);
    }
    size_t clen = strtoul(cl + 17, NULL, 10);
    const char *conn = strcasestr(h->buf, "\r\nConnection: close");
    bool close_after = conn != NULL && conn < end;
    if (fill(h, head_len + clen) != 0) {
        return fail(h);
    }
    h->buf[head_len + clen] = '\0';
    *body = h->buf + head_len;
    *body_len = clen;
    if (close_after) {
        close(h->fd);
        h->fd = -1;
    }
    return 0;
}
