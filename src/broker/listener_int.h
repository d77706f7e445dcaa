/*
 * listener_int.h - what the listener's own files share. Other modules never
 * include this file.
 */
#ifndef HP_BROKER_LISTENER_INT_H
#define HP_BROKER_LISTENER_INT_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "broker/listener.h"

/* tls+tcp://, tls+tcp4:// and tls+tcp6://, NNG's names for SP over TLS. */
bool listener_is_tls_url(const char *url);

/*
 * Checks that the TLS options and the URLs agree, and builds the server
 * context when any URL is tls+tcp://; *out stays NULL otherwise. TLS files
 * with no TLS listener are refused rather than ignored: whoever gave them
 * expects encrypted traffic, and a plain tcp:// listener would quietly
 * carry tokens and payloads in the clear. Codes as listener_open's.
 */
HP_MUST_USE hp_code listener_tls_new(const listener_opts *o, SSL_CTX **out,
                                     hp_status *st);

/* OpenSSL's error queue of this thread as one short string, cleared. */
void listener_tls_error(char *buf, size_t len);

#endif
