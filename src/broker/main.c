/*
 * main.c - hopperd: parse the configuration, start the broker, wait for
 * SIGINT or SIGTERM, stop cleanly. Signals are blocked in every thread and
 * taken synchronously with sigwait here, so no handler runs in an unknown
 * context.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__ /* defined by the libc headers above */
#include <malloc.h>
#endif

#include <sys/resource.h>

#include "broker/broker.h"
#include "broker/check_cmd.h"
#include "broker/config.h"
#include "broker/tokens_cmd.h"
#include "common/log.h"

/* Every client connection costs hopperd a descriptor, and the usual soft
 * limit of 1,024 is far below what a broker serves; the hard limit is what
 * the operator (ulimit -Hn, LimitNOFILE=) allows. So take all of it, as
 * most servers do, and say what we got. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            rl.rlim_cur = was;
        }
    }
    hp_log(HP_LOG_INFO, "open file limit", "soft=%llu hard=%llu was=%llu",
           (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
           (unsigned long long)was);
}

int
main(int argc, char **argv)
{
    config cfg;
    hp_status st;
    broker *b;
    sigset_t set;
    int sig = 0;

    if (tokens_cmd_matches(argc, argv)) {
        return tokens_cmd_main(argc, argv);
    }
    if (check_cmd_matches(argc, argv)) {
        return check_cmd_main(argc, argv);
    }
    if (config_parse(argc, argv, &cfg, &st) != HP_OK) {
        fprintf(stderr, "hopperd: %s\n", st.msg);
        config_release(&cfg);
        return 2;
    }
    if (cfg.help) {
        config_usage(stdout);
        config_release(&cfg);
        return 0;
    }
    if (cfg.print_config) {
        config_print(&cfg, stdout);
        config_release(&cfg);
        return 0;
    }
    if (cfg.version) {
        printf("hopperd %s\n", BROKER_VERSION);
        config_release(&cfg);
        return 0;
    }
    hp_log_set_level(cfg.log_level);
    hp_log_set_format(cfg.log_format);
    raise_fd_limit();
#ifdef __GLIBC__
    /* Frames and replies of up to --max-frame come and go with clients.
     * A fixed threshold keeps every block of 4 MiB or more in its own
     * mapping, given back to the system when freed; glibc's default
     * raises the threshold after such a free, and the next big blocks
     * then stay in the heap after use, so a burst of big frames would
     * leave the broker's RSS high for good. Smaller blocks stay in the
     * heap for reuse, which the transport's budgets for partial frames
     * and unsent replies bound. Not lower: with batched commits
     * (--sync full) LMDB allocates 3 MiB for each group's nested
     * transaction, and a mapping of its own for each cost 45 µs of the
     * writer's time per group (mmap, munmap, faults; perf). */
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024 + 64 * 1024);
#endif
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (broker_start(&cfg.broker, &b, &st) != HP_OK) {
        fprintf(stderr, "hopperd: cannot start: %s\n", st.msg);
        hp_log(HP_LOG_ERROR, "start failed", "code=%s reason=%s",
               hp_code_name(st.code), st.reason);
        config_release(&cfg);
        return 1;
    }
    for (size_t i = 0; i < cfg.broker.n_listen; i++) {
        printf("hopperd %s listening on %s\n", BROKER_VERSION,
               broker_bound_url(b, i));
    }
    if (broker_http_url(b) != NULL) {
        printf("hopperd %s http on %s (/metrics /healthz /readyz)\n",
               BROKER_VERSION, broker_http_url(b));
    }
    for (int tls = 0; tls < 2; tls++) {
        if (broker_api_url(b, tls) != NULL) {
            printf("hopperd %s api on %s (/hopper.v1.Broker/*)\n",
                   BROKER_VERSION, broker_api_url(b, tls));
        }
    }
    printf("hopperd data in %s (sync %s)\n", cfg.broker.data_dir,
           cfg.broker.sync == STORE_SYNC_FULL ? "full" : "none");
    fflush(stdout);
    hp_log(HP_LOG_INFO, "started", "data=\"%s\" sync=%s listeners=%zu",
           cfg.broker.data_dir,
           cfg.broker.sync == STORE_SYNC_FULL ? "full" : "none",
           cfg.broker.n_listen);
    if (cfg.broker.sync == STORE_SYNC_NONE) {
        hp_log(HP_LOG_WARN, "sync none",
               "detail=\"a machine crash or power loss may lose "
               "acknowledged writes\"");
    }
    sigwait(&set, &sig);
    hp_log(HP_LOG_INFO, "stopping", "signal=%d", sig);
    broker_stop(b);
    hp_log(HP_LOG_INFO, "stopped", "%s", "");
    config_release(&cfg);
    return 0;
}
