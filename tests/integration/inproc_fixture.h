/*
 * inproc_fixture.h - a broker started in the test's own process (broker.h),
 * for tests that set what no flag sets (a test clock, tiny limits) or that
 * want hopperd's parts without a process around them. Each call fails the
 * test (cmocka) on error.
 */
#ifndef HOPPER_TESTS_INPROC_FIXTURE_H
#define HOPPER_TESTS_INPROC_FIXTURE_H

#include <nng/nng.h>

#include "broker/broker.h"

/* Makes a data dir /tmp/hopper-NAME-XXXXXX in dir and a configuration for
 * it: defaults, --sync none (durability is not what these tests are
 * about). The caller adds listeners and the rest. */
void inproc_prepare(char dir[64], const char *name, broker_config *cfg);

/* Starts the broker. With dial >= 0, also opens an NNG req0 socket in
 * *sock (the reference peer; replies of any size, waited for up to 10 s)
 * dialled to listener number dial; with dial < 0 sock may be NULL. */
void inproc_start(const broker_config *cfg, broker **b, int dial,
                  nng_socket *sock);

/* Closes *sock unless sock is NULL, stops the broker and removes dir. */
void inproc_stop(char dir[64], broker *b, nng_socket *sock);

#endif
