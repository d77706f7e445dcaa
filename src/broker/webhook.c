/*
 * webhook.c - the pure half of a delivery (webhook.h): signing, header
 * filtering, the SSRF address rule and the meaning of an answer.
 */
#include "broker/webhook.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/compiler.h"
#include "common/hex.h"

void
webhook_sign(const store_secret *sec, int64_t t_s, const void *body,
             size_t body_len, char out[WEBHOOK_SIG_MAX])
{
    char t[24];
    int tn = snprintf(t, sizeof(t), "%lld", (long long)t_s);
    size_t off = (size_t)snprintf(out, WEBHOOK_SIG_MAX, "t=%s", t);

    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    for (size_t i = 0; i < sec->n && i < STORE_SECRET_VALUES; i++) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        size_t mac_len = 0;
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string("digest", digest, 0),
            OSSL_PARAM_construct_end(),
        };
        EVP_MAC_CTX *h = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
        /* A failure leaves the MAC empty: the receiver refuses the
         * request, and the retry signs again. */
        if (h == NULL ||
            EVP_MAC_init(h, sec->value[i], sec->len[i], params) != 1 ||
            EVP_MAC_update(h, (const unsigned char *)t, (size_t)tn) != 1 ||
            EVP_MAC_update(h, (const unsigned char *)".", 1) != 1 ||
            EVP_MAC_update(h, body, body_len) != 1 ||
            EVP_MAC_final(h, mac, &mac_len, sizeof(mac)) != 1 ||
            mac_len != 32) {
            mac_len = 0;
        }
        EVP_MAC_CTX_free(h);
        memcpy(out + off, ",v1=", 4);
        off += 4;
        hp_hex_encode(mac, mac_len, out + off);
        off += 2 * mac_len;
        out[off] = '\0';
    }
    EVP_MAC_free(hmac);
}

static bool
is_tchar(unsigned char c)
{
    /* RFC 9110 token characters. */
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool
webhook_header_sent(const char *name, size_t len)
{
    static const char *const reserved[] = {
        "host", "content-length", "transfer-encoding", "connection", "expect",
        "te",   "upgrade",        "keep-alive",        "trailer",
    };
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '\0' || !is_tchar((unsigned char)name[i])) {
            return false;
        }
    }
    if ((len >= 7 && strncasecmp(name, "hopper-", 7) == 0) ||
        (len >= 6 && strncasecmp(name, "proxy-", 6) == 0)) {
        return false;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strlen(reserved[i]) == len &&
            strncasecmp(name, reserved[i], len) == 0) {
            return false;
        }
    }
    return true;
}

static bool
v4_private(uint32_t a)
{
    static const struct {
        uint32_t net, mask;
    } ranges[] = {
        { 0x00000000u, 0xff000000u }, /* 0/8 "this network" */
        { 0x0a000000u, 0xff000000u }, /* 10/8 */
        { 0x64400000u, 0xffc00000u }, /* 100.64/10 carrier-grade NAT */
        { 0x7f000000u, 0xff000000u }, /* 127/8 loopback */
        { 0xa9fe0000u, 0xffff0000u }, /* 169.254/16 link-local */
        { 0xac100000u, 0xfff00000u }, /* 172.16/12 */
        { 0xc0a80000u, 0xffff0000u }, /* 192.168/16 */
        { 0xe0000000u, 0xf0000000u }, /* 224/4 multicast */
        { 0xf0000000u, 0xf0000000u }, /* 240/4 reserved, broadcast */
    };

    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        if ((a & ranges[i].mask) == ranges[i].net) {
            return true;
        }
    }
    return false;
}

static uint32_t
v4_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static bool
v6_private(const uint8_t b[16])
{
    static const uint8_t zero[16] = { 0 };
    /* Forms that carry an IPv4 address, which a network may route to it:
     * mapped ::ffff:0:0/96, translated ::ffff:0:0:0/96, NAT64 64:ff9b::/96
     * and 64:ff9b:1::/48, compatible ::/96. */
    static const uint8_t mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };
    static const uint8_t translated[12] = { 0, 0, 0,    0,    0, 0,
                                            0, 0, 0xff, 0xff, 0, 0 };
    static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0,
                                       0, 0,    0,    0,    0, 0 };
    static const uint8_t nat64_local[6] = { 0, 0x64, 0xff, 0x9b, 0, 1 };
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, translated, 12) == 0 ||
        memcmp(b, nat64, 12) == 0 || memcmp(b, zero, 12) == 0) {
        if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1)) {
            return true; /* :: and ::1 */
        }
        return v4_private(v4_at(b + 12));
    }
    if (memcmp(b, nat64_local, 6) == 0) {
        return true; /* 64:ff9b:1::/48 is for local networks only */
    }
    if (b[0] == 0x20 && b[1] == 0x02) { /* 2002::/16, 6to4 */
        return v4_private(v4_at(b + 2));
    }
    return (b[0] & 0xfe) == 0xfc ||                   /* fc00::/7 */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 */
           b[0] == 0xff;                              /* ff00::/8 */
}

bool
webhook_addr_allowed(const struct sockaddr *sa, bool allow_private)
{
    bool private_addr;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        private_addr = v4_private(ntohl(in.sin_addr.s_addr));
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        private_addr = v6_private(in6.sin6_addr.s6_addr);
    } else {
        return false;
    }
    return allow_private || !private_addr;
}

const char *
webhook_outcome_name(webhook_outcome out)
{
    static const char *const names[] = {
        [WEBHOOK_ACK] = "ack",
        [WEBHOOK_DEAD] = "dead",
        [WEBHOOK_RETRY] = "retry",
        [WEBHOOK_ACCEPTED] = "accepted",
    };
    return (unsigned)out < HP_ARRAY_LEN(names) ? names[out] : "retry";
}

webhook_outcome
webhook_outcome_of(long status)
{
    if (status >= 200 && status <= 299) {
        return WEBHOOK_ACK;
    }
    return status == 410 ? WEBHOOK_DEAD : WEBHOOK_RETRY;
}

bool
webhook_retry_after_ms(const char *value, int64_t now_s, uint64_t *delay_ms)
{
    size_t digits = strspn(value, "0123456789");
    if (digits > 0 && value[digits] == '\0') {
        /* More than a year is as good as the cap the caller applies. */
        unsigned long long s =
            digits > 9 ? 999999999ull : strtoull(value, NULL, 10);
        *delay_ms = (uint64_t)s * 1000;
        return true;
    }
    time_t at = curl_getdate(value, NULL);
    if (at == (time_t)-1) {
        return false;
    }
    /* A date centuries ahead must not wrap the product: cap it as the
     * seconds form is capped. */
    uint64_t s = (int64_t)at > now_s ? (uint64_t)((int64_t)at - now_s) : 0;
    *delay_ms = (s > 999999999ull ? 999999999ull : s) * 1000;
    return true;
}
