/*
 * sp.h - the wire format of the scalability protocols' request/reply pair
 * as NNG speaks it over TCP and TLS, without NNG. hopperd's listener,
 * libhopper and the frame fuzzer share this one copy.
 *
 * A connection starts with each side sending 8 bytes:
 *
 *   offset  size  value
 *        0     1  0x00
 *        1     2  'S' 'P'
 *        3     1  0x00            (version)
 *        4     2  protocol id     big-endian: 0x30 req0, 0x31 rep0
 *        6     2  0x0000          (reserved)
 *
 * then frames in both directions, each an 8-byte big-endian length and that
 * many bytes of message. A message on a req/rep connection begins with the
 * request header: a backtrace of 32-bit big-endian words, one per device
 * the request passed through, the last of which has its high bit set and is
 * the request id the requester chose. rep0 sends the header back unchanged
 * in front of its reply; the body after the header is Hopper's protobuf
 * envelope.
 *
 * Pure code: no sockets, no threads, no clock. The only allocation is the
 * reader's buffer for a message that arrives in pieces, which grows as its
 * bytes arrive and asks a budget before each growth, so a length prefix
 * announcing 16 MiB costs nothing until 16 MiB have been sent.
 */
#ifndef HP_SP_SP_H
#define HP_SP_SP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_HANDSHAKE_LEN 8
#define SP_FRAME_HDR_LEN 8
#define SP_PROTO_REQ0    0x30u
#define SP_PROTO_REP0    0x31u
/* NNG's default (and maximum useful) TTL: a request that passed through
 * more devices than this is dropped by rep0, not answered. */
#define SP_MAX_HOPS 8
#define SP_MAX_HDR  (SP_MAX_HOPS * 4)
/* The bit that marks the last word of a backtrace: the request id. */
#define SP_ID_BIT 0x80000000u

/* Writes this side's handshake for protocol id proto. */
void sp_handshake(uint16_t proto, uint8_t out[SP_HANDSHAKE_LEN]);

/* Whether in is a well-formed handshake from a peer speaking want. */
bool sp_handshake_ok(const uint8_t in[SP_HANDSHAKE_LEN], uint16_t want);

void sp_put_u64(uint8_t *p, uint64_t v);
uint64_t sp_get_u64(const uint8_t *p);
void sp_put_u32(uint8_t *p, uint32_t v);
uint32_t sp_get_u32(const uint8_t *p);

typedef enum sp_hdr_result {
    SP_HDR_OK,    /* *hdr_len bytes of header, then the body */
    SP_HDR_SHORT, /* no complete header: a broken peer; NNG closes it */
    SP_HDR_HOPS,  /* more than SP_MAX_HOPS words: dropped unanswered */
} sp_hdr_result;

/* Finds the end of a request's backtrace in msg. */
sp_hdr_result sp_request_header(const uint8_t *msg, size_t len,
                                size_t *hdr_len);

/* ---- URLs ---------------------------------------------------------------- */

typedef enum sp_url_kind {
    SP_URL_TCP,    /* tcp://, tcp4://, tcp6:// and their tls+ forms */
    SP_URL_INPROC, /* inproc://NAME */
} sp_url_kind;

#define SP_HOST_MAX   256
#define SP_INPROC_MAX 96

typedef struct sp_url {
    sp_url_kind kind;
    bool tls;
    int family;               /* AF_UNSPEC, AF_INET or AF_INET6 */
    char host[SP_HOST_MAX];   /* without IPv6 brackets; "" or "*": any */
    char port[8];             /* decimal, 0-65535 */
    char name[SP_INPROC_MAX]; /* inproc:// */
} sp_url;

/* Splits url; on failure returns false with *why saying what is wrong. */
bool sp_url_parse(const char *url, sp_url *out, const char **why);

/*
 * The address of inproc://NAME in process pid: a Unix socket in Linux's
 * abstract namespace, so no file is left behind; the listener accepts only
 * connections from pid itself. *len gets the address length. Returns false
 * where there is no abstract namespace (not Linux).
 */
struct sockaddr_un;
bool sp_inproc_addr(const char *name, long pid, struct sockaddr_un *out,
                    unsigned *len);

/* ---- frames ---------------------------------------------------------------
 */

/* Asked before the reader's buffer grows by add bytes; false refuses.
 * Called again with a negative add when the buffer is freed. */
typedef bool (*sp_reserve_fn)(void *arg, long long add);

typedef struct sp_reader {
    size_t max_msg; /* longer messages are refused (SP_TOO_BIG) */
    sp_reserve_fn reserve;
    void *reserve_arg;

    uint8_t len_buf[SP_FRAME_HDR_LEN];
    uint8_t len_got;
    uint64_t msg_len; /* valid once len_got == SP_FRAME_HDR_LEN */
    uint8_t *buf;     /* the message so far, when it came in pieces */
    size_t cap;
    size_t got;
} sp_reader;

typedef enum sp_read_result {
    SP_MORE,    /* all of the input is used; no complete message yet */
    SP_MSG,     /* a message is in *msg, *msg_len */
    SP_TOO_BIG, /* the length prefix is over max_msg */
    SP_BUDGET,  /* the budget refused the buffer's growth */
    SP_NOMEM,   /* malloc failed */
} sp_read_result;

/* A reader for messages of at most max_msg bytes; reserve may be NULL. */
void sp_reader_init(sp_reader *r, size_t max_msg, sp_reserve_fn reserve,
                    void *reserve_arg);

/*
 * Takes bytes from in[0..len) until a message is complete or the input is
 * used up; *used says how many it took. On SP_MSG the message is in *msg:
 * a pointer into in when the whole message was there (no copy), else into
 * the reader's buffer; either way valid until the next call on r. Call
 * again with in + *used for the rest of the input. After SP_TOO_BIG,
 * SP_BUDGET or SP_NOMEM the stream cannot be resynchronised: drop the
 * connection.
 */
sp_read_result sp_reader_feed(sp_reader *r, const uint8_t *in, size_t len,
                              size_t *used, const uint8_t **msg,
                              size_t *msg_len);

/* Whether a frame has begun and not ended: bytes are owed by the peer. */
bool sp_reader_partial(const sp_reader *r);

/* Bytes the reader holds for a message in pieces. */
size_t sp_reader_held(const sp_reader *r);

/* Frees the buffer (giving its bytes back to the budget). */
void sp_reader_release(sp_reader *r);

#endif
