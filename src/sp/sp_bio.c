/*
 * sp_bio.c - see sp_bio.h. The method table is made once and never freed
 * (OpenSSL keeps no reference count on methods).
 */
#include "sp/sp_bio.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include <sys/socket.h>
#include <sys/types.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE on the socket instead */
#endif

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

long
sp_send(int fd, const void *p, unsigned long len)
{
    return (long)send(fd, p, (size_t)len, MSG_NOSIGNAL);
}

void
sp_socket_nosigpipe(int fd)
{
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#else
    (void)fd;
#endif
}

static int
bio_fd(BIO *b)
{
    return (int)(intptr_t)BIO_get_data(b);
}

static int
bio_write(BIO *b, const char *p, size_t len, size_t *written)
{
    long n;
    BIO_clear_retry_flags(b);
    do {
        n = sp_send(bio_fd(b), p, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_write(b);
        }
        return 0;
    }
    *written = (size_t)n;
    return 1;
}

static int
bio_read(BIO *b, char *p, size_t len, size_t *got)
{
    ssize_t n;
    BIO_clear_retry_flags(b);
    do {
        n = recv(bio_fd(b), p, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_read(b);
        }
        return 0;
    }
    if (n == 0) {
        return 0; /* end of stream: OpenSSL reads it as EOF */
    }
    *got = (size_t)n;
    return 1;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    switch (cmd) {
    case BIO_C_SET_FD:
        BIO_set_data(b, (void *)(intptr_t) * (int *)ptr);
        BIO_set_init(b, 1);
        (void)num;
        return 1;
    case BIO_C_GET_FD:
        if (ptr != NULL) {
            *(int *)ptr = (int)(intptr_t)BIO_get_data(b);
        }
        return (long)(intptr_t)BIO_get_data(b);
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static void
make_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
                                     BIO_TYPE_DESCRIPTOR,
                                 "hopper socket");
    if (m != NULL && BIO_meth_set_write_ex(m, bio_write) == 1 &&
        BIO_meth_set_read_ex(m, bio_read) == 1 &&
        BIO_meth_set_ctrl(m, bio_ctrl) == 1) {
        method = m;
    } else {
        BIO_meth_free(m);
    }
}

BIO *
sp_socket_bio(int fd)
{
    pthread_once(&method_once, make_method);
    if (method == NULL) {
        return NULL;
    }
    BIO *b = BIO_new(method);
    if (b != NULL) {
        BIO_set_fd(b, fd, BIO_NOCLOSE);
    }
    return b;
}
