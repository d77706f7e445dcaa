/*
 * webhook.h - one delivery request, the receiver's contract of
 * docs/webhooks.md as functions without threads or sockets: the
 * Hopper-Signature header, which message headers travel, which addresses
 * may be called, what an answer does to the message, and Retry-After.
 * The delivery part (deliver.c) puts them on the wire; the tests call
 * them directly.
 */
#ifndef HP_BROKER_WEBHOOK_H
#define HP_BROKER_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "store/store.h"

/* "t=<20 digits>" and ",v1=<64 hex>" per active value, and a NUL. */
#define WEBHOOK_SIG_MAX (22 + STORE_SECRET_VALUES * 68 + 1)

/* A receiver may reject a t further than this from its clock. */
#define WEBHOOK_TOLERANCE_S 300

/* Writes the value of Hopper-Signature for body sent at t_s (Unix
 * seconds) into out: "t=<t_s>,v1=<hex HMAC-SHA256(value, t + "." +
 * body)>", one v1 per active value of sec, newest first. */
void webhook_sign(const store_secret *sec, int64_t t_s, const void *body,
                  size_t body_len, char out[WEBHOOK_SIG_MAX]);

/* Whether a message header of this name is sent: not one starting with
 * "Hopper-" (ours), nor one HTTP reserves (Host, Content-Length,
 * Transfer-Encoding, Connection, Expect, TE, Upgrade, Keep-Alive,
 * Proxy-*), in any case. Also refused: a name that is not an HTTP token,
 * which could not be sent as it is. */
bool webhook_header_sent(const char *name, size_t len);

/* Whether a connection to sa may be made: false for the loopback,
 * private, carrier-grade NAT, link-local, multicast, reserved and
 * unspecified ranges of docs/webhooks.md (IPv4, IPv6, and IPv4 mapped
 * into IPv6) unless allow_private; always false for a family other than
 * AF_INET and AF_INET6. */
bool webhook_addr_allowed(const struct sockaddr *sa, bool allow_private);

typedef enum webhook_outcome {
    WEBHOOK_ACK,   /* 2xx: delivered, the body is the result */
    WEBHOOK_DEAD,  /* 410: dead-lettered at once */
    WEBHOOK_RETRY, /* anything else: nacked with the lane's backoff */
    /* 202 to a delivery that carried a callback: left claimed for the
     * lane's callback_timeout_ms (deliver.c decides; webhook_outcome_of
     * never answers it). */
    WEBHOOK_ACCEPTED,
} webhook_outcome;

/* What an HTTP status does to the message; status 0 (no answer: timeout,
 * connection or TLS failure, a refused address) is a retry. */
webhook_outcome webhook_outcome_of(long status);

/* "ack", "dead", "retry" or "accepted": the outcome's word in metrics and
 * in test results. */
const char *webhook_outcome_name(webhook_outcome out);

/* Parses a Retry-After value, delta-seconds or an HTTP date, into a delay
 * from now_s (Unix seconds), in ms; false for a value that is neither. A
 * date in the past is a delay of 0. The caller caps it at the lane's
 * backoff_cap_ms. */
bool webhook_retry_after_ms(const char *value, int64_t now_s,
                            uint64_t *delay_ms);

#endif
