/*
 * sp.c - SP framing (see sp.h for the byte layout).
 *
 * The reader's buffer policy is what keeps a hostile length prefix cheap:
 * it never allocates more than twice what has arrived (nor more than the
 * message needs), it asks the budget before every growth, and it frees
 * the buffer as soon as the message it held has been handed out, so an
 * idle connection holds no buffer at all.
 */
#include "sp/sp.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <sys/un.h>

/* The first allocation for a message in pieces: most messages are small,
 * and a few KiB is below what a read brings in anyway. */
#define SP_MIN_BUF 4096u

void
sp_handshake(uint16_t proto, uint8_t out[SP_HANDSHAKE_LEN])
{
    out[0] = 0;
    out[1] = 'S';
    out[2] = 'P';
    out[3] = 0;
    out[4] = (uint8_t)(proto >> 8);
    out[5] = (uint8_t)proto;
    out[6] = 0;
    out[7] = 0;
}

bool
sp_handshake_ok(const uint8_t in[SP_HANDSHAKE_LEN], uint16_t want)
{
    /* NNG refuses a nonzero version or reserved field too. */
    return in[0] == 0 && in[1] == 'S' && in[2] == 'P' && in[3] == 0 &&
           in[6] == 0 && in[7] == 0 && (((unsigned)in[4] << 8) | in[5]) == want;
}

void
sp_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t
sp_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

void
sp_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t
sp_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

sp_hdr_result
sp_request_header(const uint8_t *msg, size_t len, size_t *hdr_len)
{
    for (size_t hops = 1;; hops++) {
        size_t at = (hops - 1) * 4;
        if (hops > SP_MAX_HOPS) {
            return SP_HDR_HOPS;
        }
        if (at > len || len - at < 4) {
            return SP_HDR_SHORT;
        }
        if ((msg[at] & 0x80u) != 0) {
            *hdr_len = at + 4;
            return SP_HDR_OK;
        }
    }
}

void
sp_reader_init(sp_reader *r, size_t max_msg, sp_reserve_fn reserve,
               void *reserve_arg)
{
    memset(r, 0, sizeof(*r));
    r->max_msg = max_msg;
    r->reserve = reserve;
    r->reserve_arg = reserve_arg;
}

void
sp_reader_release(sp_reader *r)
{
    if (r->buf != NULL) {
        free(r->buf);
        if (r->reserve != NULL) {
            /* Giving back never fails. */
            bool ok = r->reserve(r->reserve_arg, -(long long)r->cap);
            (void)ok;
        }
    }
    r->buf = NULL;
    r->cap = 0;
    r->got = 0;
}

/* Ends the current message: the next call starts a new frame. */
static void
next_frame(sp_reader *r)
{
    sp_reader_release(r);
    r->len_got = 0;
    r->msg_len = 0;
}

/* Makes room for want bytes of the message in the buffer. */
static sp_read_result
grow(sp_reader *r, size_t want)
{
    if (want <= r->cap) {
        return SP_MORE;
    }
    size_t cap = r->cap * 2;
    if (cap < want) {
        cap = want;
    }
    if (cap < SP_MIN_BUF) {
        cap = SP_MIN_BUF;
    }
    if (cap > r->msg_len) {
        cap = (size_t)r->msg_len;
    }
    if (r->reserve != NULL &&
        !r->reserve(r->reserve_arg, (long long)(cap - r->cap))) {
        return SP_BUDGET;
    }
    uint8_t *nb = realloc(r->buf, cap);
    if (nb == NULL) {
        if (r->reserve != NULL) {
            bool ok = r->reserve(r->reserve_arg, -(long long)(cap - r->cap));
            (void)ok;
        }
        return SP_NOMEM;
    }
    r->buf = nb;
    r->cap = cap;
    return SP_MORE;
}

sp_read_result
sp_reader_feed(sp_reader *r, const uint8_t *in, size_t len, size_t *used,
               const uint8_t **msg, size_t *msg_len)
{
    size_t at = 0;

    if (r->len_got == SP_FRAME_HDR_LEN && r->got == r->msg_len) {
        next_frame(r); /* the last message was handed out */
    }
    while (r->len_got < SP_FRAME_HDR_LEN && at < len) {
        r->len_buf[r->len_got++] = in[at++];
        if (r->len_got == SP_FRAME_HDR_LEN) {
            r->msg_len = sp_get_u64(r->len_buf);
            if (r->msg_len > r->max_msg) {
                *used = at;
                return SP_TOO_BIG;
            }
        }
    }
    *used = at;
    if (r->len_got < SP_FRAME_HDR_LEN) {
        return SP_MORE;
    }
    size_t need = (size_t)r->msg_len - r->got;
    size_t avail = len - at;
    if (r->got == 0 && avail >= need) {
        /* The whole message is in the input: hand it out in place. */
        *msg = in + at;
        *msg_len = need;
        *used = at + need;
        r->len_got = 0;
        r->msg_len = 0;
        return SP_MSG;
    }
    size_t take = avail < need ? avail : need;
    sp_read_result res = grow(r, r->got + take);
    if (res != SP_MORE) {
        return res;
    }
    if (take > 0) {
        memcpy(r->buf + r->got, in + at, take);
        r->got += take;
    }
    *used = at + take;
    if (r->got < r->msg_len) {
        return SP_MORE;
    }
    *msg = r->buf;
    *msg_len = r->got; /* freed on the next call */
    return SP_MSG;
}

bool
sp_reader_partial(const sp_reader *r)
{
    return r->len_got > 0 && !(r->len_got == SP_FRAME_HDR_LEN &&
                               r->got == r->msg_len && r->buf != NULL);
}

size_t
sp_reader_held(const sp_reader *r)
{
    return r->cap;
}

/* ---- URLs ---------------------------------------------------------------- */

static bool
fail(const char **why, const char *what)
{
    *why = what;
    return false;
}

/* The host:port part of a tcp URL. */
static bool
parse_hostport(const char *hp, sp_url *out, const char **why)
{
    const char *colon;
    size_t hlen;

    if (hp[0] == '[') {
        const char *end = strchr(hp, ']');
        if (end == NULL || end[1] != ':') {
            return fail(why, "an IPv6 address needs [brackets] and a :port");
        }
        hlen = (size_t)(end - hp - 1);
        hp++;
        colon = end + 1;
    } else {
        colon = strrchr(hp, ':');
        if (colon == NULL) {
            return fail(why, "no :port");
        }
        hlen = (size_t)(colon - hp);
        if (memchr(hp, ':', hlen) != NULL) {
            return fail(why, "an IPv6 address needs [brackets]");
        }
    }
    if (hlen >= sizeof(out->host)) {
        return fail(why, "host name too long");
    }
    memcpy(out->host, hp, hlen);
    out->host[hlen] = '\0';
    const char *port = colon + 1;
    size_t plen = strlen(port);
    unsigned long v = 0;
    if (plen == 0 || plen > 5) {
        return fail(why, "port must be 0-65535");
    }
    for (size_t i = 0; i < plen; i++) {
        if (port[i] < '0' || port[i] > '9') {
            return fail(why, "port must be 0-65535");
        }
        v = v * 10 + (unsigned long)(port[i] - '0');
    }
    if (v > 65535) {
        return fail(why, "port must be 0-65535");
    }
    memcpy(out->port, port, plen + 1);
    return true;
}

bool
sp_url_parse(const char *url, sp_url *out, const char **why)
{
    static const struct {
        const char *scheme;
        bool tls;
        int family;
    } tcp[] = {
        { "tcp://", false, AF_UNSPEC },   { "tcp4://", false, AF_INET },
        { "tcp6://", false, AF_INET6 },   { "tls+tcp://", true, AF_UNSPEC },
        { "tls+tcp4://", true, AF_INET }, { "tls+tcp6://", true, AF_INET6 },
    };

    memset(out, 0, sizeof(*out));
    if (strncmp(url, "inproc://", 9) == 0) {
        size_t n = strlen(url + 9);
        if (n == 0 || n >= sizeof(out->name)) {
            return fail(why, "inproc:// needs a name of 1-95 bytes");
        }
        out->kind = SP_URL_INPROC;
        memcpy(out->name, url + 9, n + 1);
        return true;
    }
    for (size_t i = 0; i < sizeof(tcp) / sizeof(tcp[0]); i++) {
        size_t n = strlen(tcp[i].scheme);
        if (strncmp(url, tcp[i].scheme, n) == 0) {
            out->kind = SP_URL_TCP;
            out->tls = tcp[i].tls;
            out->family = tcp[i].family;
            return parse_hostport(url + n, out, why);
        }
    }
    return fail(why, "the scheme must be tcp://, tls+tcp:// or inproc://");
}

bool
sp_inproc_addr(const char *name, long pid, struct sockaddr_un *out,
               unsigned *len)
{
#ifdef __linux__
    memset(out, 0, sizeof(*out));
    out->sun_family = AF_UNIX;
    /* sun_path[0] == 0 puts the name in the abstract namespace. */
    int n = snprintf(out->sun_path + 1, sizeof(out->sun_path) - 1,
                     "hopper-inproc/%ld/%s", pid, name);
    if (n < 0 || (size_t)n >= sizeof(out->sun_path) - 1) {
        return false;
    }
    *len = (unsigned)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    return true;
#else
    (void)name;
    (void)pid;
    (void)out;
    (void)len;
    return false;
#endif
}
