/*
 * inproc_fixture.c - see inproc_fixture.h.
 */
#include "inproc_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <nng/protocol/reqrep0/req.h>

void
inproc_prepare(char dir[64], const char *name, broker_config *cfg)
{
    snprintf(dir, 64, "/tmp/hopper-%s-XXXXXX", name);
    assert_non_null(mkdtemp(dir));
    broker_config_init(cfg);
    cfg->data_dir = dir;
    cfg->sync = STORE_SYNC_NONE;
}

void
inproc_start(const broker_config *cfg, broker **b, int dial, nng_socket *sock)
{
    hp_status st;
    if (broker_start(cfg, b, &st) != HP_OK) {
        fail_msg("broker_start: %s/%s: %s", hp_code_name(st.code), st.reason,
                 st.msg);
    }
    if (dial < 0) {
        return;
    }
    assert_int_equal(nng_req0_open(sock), 0);
    assert_int_equal(nng_socket_set_ms(*sock, NNG_OPT_RECVTIMEO, 10000), 0);
    /* No receive limit: a reply larger than a test expects shows as
     * itself, not as a timeout. NNG copies it into the connection when
     * it dials, so it is set first. */
    assert_int_equal(nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, 0), 0);
    assert_int_equal(
        nng_dial(*sock, broker_bound_url(*b, (size_t)dial), NULL, 0), 0);
}

void
inproc_stop(char dir[64], broker *b, nng_socket *sock)
{
    char cmd[128];
    if (sock != NULL) {
        nng_close(*sock);
    }
    broker_stop(b);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}
