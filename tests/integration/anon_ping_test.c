/*
 * anon_ping_test.c - the anonymous-access warning on Ping. A broker
 * without keys on a listener other hosts can reach (--allow-anonymous)
 * says so in every Ping reply, but logs it at most once an interval of
 * its clock, with the number of Pings it did not log: a container's
 * health check pings every few seconds. The broker runs in this process
 * on inproc:// with a test clock, so the interval passes without waiting;
 * the test marks the listener public the way broker_start does for such
 * a listener (it cannot bind one on a loopback-only test machine), and
 * reads the log from a captured stderr.
 */
#include <hopper/hopper.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/broker.h"
#include "broker/broker_int.h" /* anonymous_exposed, the interval */
#include "common/clock.h"

typedef struct fixture {
    char dir[64];
    broker *b;
    hopper_client *c;
    _Atomic uint64_t wall; /* what the broker's clock says */
} fixture;

static uint64_t
test_clock(void *arg)
{
    fixture *f = arg;
    return atomic_load(&f->wall);
}

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    broker_config cfg;
    hp_status st;
    hopper_status hst;
    const char *url = "inproc://hopper-anon-ping";

    snprintf(f->dir, sizeof(f->dir), "/tmp/hopper-anon-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    atomic_init(&f->wall, hp_wall_ms());
    broker_config_init(&cfg);
    cfg.listen[0] = url;
    cfg.data_dir = f->dir;
    cfg.sync = STORE_SYNC_NONE;
    cfg.clock_source = test_clock;
    cfg.clock_arg = f;
    assert_int_equal(broker_start(&cfg, &f->b, &st), HP_OK);
    f->b->anonymous_exposed = true;
    assert_int_equal(hopper_connect(url, NULL, &f->c, &hst), HOPPER_OK);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    hopper_close(f->c);
    broker_stop(f->b);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Pings with the broker's clock at wall_ms; the reply must warn. */
static void
ping_at(fixture *f, uint64_t wall_ms)
{
    hopper_ping_info info;
    hopper_status st;

    atomic_store(&f->wall, wall_ms);
    assert_int_equal(hopper_ping(f->c, &info, &st), HOPPER_OK);
    assert_non_null(strstr(info.warning, "anonymous access"));
}

/* How many lines of text hold needle. */
static int
count_lines(const char *text, const char *needle)
{
    char *copy = strdup(text);
    char *save = NULL;
    int n = 0;

    for (char *line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        n += strstr(line, needle) != NULL;
    }
    free(copy);
    return n;
}

static void
test_anonymous_ping_is_logged_once_an_interval_with_the_rest_counted(
    void **state)
{
    fixture *f = *state;
    uint64_t t0 = atomic_load(&f->wall);
    static char log[16384];
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;
    assert_non_null(tmp);

    dup2(fileno(tmp), STDERR_FILENO);
    for (uint64_t i = 0; i < 6; i++) { /* a health check every 10 s */
        ping_at(f, t0 + i * 10000);
    }
    ping_at(f, t0 + BROKER_ANON_WARN_EVERY_MS - 1);
    ping_at(f, t0 + BROKER_ANON_WARN_EVERY_MS);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(log, 1, sizeof(log) - 1, tmp);
    log[n] = '\0';
    fclose(tmp);

    assert_int_equal(count_lines(log, "msg=\"anonymous access\""), 2);
    assert_int_equal(count_lines(log, "suppressed=0"), 1);
    assert_int_equal(count_lines(log, "suppressed=6"), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_anonymous_ping_is_logged_once_an_interval_with_the_rest_counted,
            setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
