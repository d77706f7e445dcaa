/*
 * webhook_unit_test.c - the pure half of a delivery (broker/webhook.h):
 * the signature against a known HMAC, which headers travel, the SSRF
 * ranges at their edges, the outcome of a status, and Retry-After.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "broker/webhook.h"

static store_secret
secret_of(const char *a, const char *b)
{
    store_secret s;
    memset(&s, 0, sizeof(s));
    s.n = b != NULL ? 2 : 1;
    s.len[0] = strlen(a);
    memcpy(s.value[0], a, s.len[0]);
    if (b != NULL) {
        s.len[1] = strlen(b);
        memcpy(s.value[1], b, s.len[1]);
    }
    return s;
}

static void
test_the_signature_is_hmac_sha256_of_t_dot_body(void **state)
{
    (void)state;
    store_secret s = secret_of("sek", NULL);
    char sig[WEBHOOK_SIG_MAX];

    webhook_sign(&s, 100, "body", 4, sig);

    /* openssl dgst -sha256 -hmac sek of "100.body" */
    assert_string_equal(sig, "t=100,v1=c7342c0afdaf446e7682758c9cd81902259bc"
                             "6cff64f6fc275ad73d1368284fe");
}

static void
test_two_active_values_sign_newest_first(void **state)
{
    (void)state;
    store_secret one = secret_of("sek", NULL);
    store_secret two = secret_of("new", "sek");
    char a[WEBHOOK_SIG_MAX], b[WEBHOOK_SIG_MAX];
    webhook_sign(&one, 100, "body", 4, a);

    webhook_sign(&two, 100, "body", 4, b);

    const char *old = strstr(a, ",v1=");
    const char *second = strstr(strstr(b, ",v1=") + 1, ",v1=");
    assert_non_null(second);
    assert_string_equal(second, old);
    assert_int_equal(strlen(b), strlen("t=100") + 2 * (4 + 64));
}

static void
test_our_own_and_reserved_headers_are_not_sent(void **state)
{
    (void)state;
    const char *kept[] = { "X-Tenant", "content-type", "Trace", "a" };
    const char *dropped[] = { "Hopper-Id",
                              "hopper-signature",
                              "Host",
                              "CONTENT-LENGTH",
                              "Transfer-Encoding",
                              "Connection",
                              "Expect",
                              "TE",
                              "Upgrade",
                              "Keep-Alive",
                              "Proxy-Authorization",
                              "bad name",
                              "bad:name",
                              "" };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        assert_true(webhook_header_sent(kept[i], strlen(kept[i])));
    }
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
        assert_false(webhook_header_sent(dropped[i], strlen(dropped[i])));
    }
}

static bool
v4_allowed(const char *text, bool allow_private)
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, text, &in.sin_addr), 1);
    return webhook_addr_allowed((const struct sockaddr *)(const void *)&in,
                                allow_private);
}

static bool
v6_allowed(const char *text, bool allow_private)
{
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
    return webhook_addr_allowed((const struct sockaddr *)(const void *)&in6,
                                allow_private);
}

static void
test_private_ranges_are_refused_at_their_edges(void **state)
{
    (void)state;
    const char *refused[] = {
        "0.0.0.0",         "127.0.0.1",  "127.255.255.255", "10.0.0.0",
        "10.255.255.255",  "172.16.0.0", "172.31.255.255",  "192.168.0.1",
        "169.254.169.254", "100.64.0.0", "100.127.255.255", "224.0.0.1",
        "255.255.255.255",
    };
    const char *allowed[] = { "1.1.1.1",         "9.255.255.255",
                              "11.0.0.0",        "172.15.255.255",
                              "172.32.0.0",      "192.167.255.255",
                              "169.253.255.255", "100.63.255.255",
                              "100.128.0.0",     "223.255.255.255" };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_false(v4_allowed(refused[i], false));
        assert_true(v4_allowed(refused[i], true));
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        assert_true(v4_allowed(allowed[i], false));
    }
}

static void
test_ipv6_ranges_and_mapped_ipv4_are_refused(void **state)
{
    (void)state;
    /* The forms that embed an IPv4 address are judged by it: a NAT64 or
     * 6to4 network routes them there. */
    const char *refused[] = { "::",
                              "::1",
                              "fc00::1",
                              "fdff::1",
                              "fe80::1",
                              "febf::1",
                              "ff02::1",
                              "::ffff:127.0.0.1",
                              "::ffff:10.1.2.3",
                              "::ffff:0:7f00:1",
                              "64:ff9b::a9fe:a9fe",
                              "64:ff9b::7f00:1",
                              "64:ff9b:1::808:808",
                              "::127.0.0.1",
                              "::2",
                              "2002:7f00:1::1",
                              "2002:a00:1::1" };
    const char *allowed[] = { "2001:db8::1",     "fec0::1",
                              "::ffff:8.8.8.8",  "64:ff9b::808:808",
                              "2002:808:808::1", "::8.8.8.8" };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_false(v6_allowed(refused[i], false));
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        assert_true(v6_allowed(allowed[i], false));
    }
}

static void
test_2xx_acks_410_dead_letters_and_the_rest_retries(void **state)
{
    (void)state;
    assert_int_equal(webhook_outcome_of(200), WEBHOOK_ACK);
    assert_int_equal(webhook_outcome_of(299), WEBHOOK_ACK);
    assert_int_equal(webhook_outcome_of(410), WEBHOOK_DEAD);
    assert_int_equal(webhook_outcome_of(0), WEBHOOK_RETRY);
    assert_int_equal(webhook_outcome_of(199), WEBHOOK_RETRY);
    assert_int_equal(webhook_outcome_of(300), WEBHOOK_RETRY);
    assert_int_equal(webhook_outcome_of(404), WEBHOOK_RETRY);
    assert_int_equal(webhook_outcome_of(500), WEBHOOK_RETRY);
}

static void
test_retry_after_takes_seconds_and_http_dates(void **state)
{
    (void)state;
    uint64_t ms = 0;
    /* Sun, 06 Nov 1994 08:49:37 GMT is 784111777. */
    const int64_t now = 784111777;

    assert_true(webhook_retry_after_ms("120", now, &ms));
    assert_int_equal(ms, 120000);
    assert_true(
        webhook_retry_after_ms("Sun, 06 Nov 1994 08:50:37 GMT", now, &ms));
    assert_int_equal(ms, 60000);
    assert_true(
        webhook_retry_after_ms("Sun, 06 Nov 1994 08:48:37 GMT", now, &ms));
    assert_int_equal(ms, 0);
    /* A date so far ahead that its milliseconds would wrap is capped. */
    assert_true(
        webhook_retry_after_ms("Sun, 06 Nov 600000000 08:49:37 GMT", now, &ms));
    assert_true(ms == 0 || ms == 999999999ull * 1000);
    assert_false(webhook_retry_after_ms("soon", now, &ms));
    assert_false(webhook_retry_after_ms("-5", now, &ms));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_signature_is_hmac_sha256_of_t_dot_body),
        cmocka_unit_test(test_two_active_values_sign_newest_first),
        cmocka_unit_test(test_our_own_and_reserved_headers_are_not_sent),
        cmocka_unit_test(test_private_ranges_are_refused_at_their_edges),
        cmocka_unit_test(test_ipv6_ranges_and_mapped_ipv4_are_refused),
        cmocka_unit_test(test_2xx_acks_410_dead_letters_and_the_rest_retries),
        cmocka_unit_test(test_retry_after_takes_seconds_and_http_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
