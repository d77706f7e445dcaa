/*
 * main.c - hopperd: parse the configuration, start the broker, wait for
 * SIGINT or SIGTERM, stop cleanly. Signals are blocked in every thread and
 * taken synchronously with sigwait here, so no handler runs in an unknown
 * context.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/tokens_cmd.h"
#include "common/log.h"

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
    if (cfg.version) {
        printf("hopperd %s\n", BROKER_VERSION);
        config_release(&cfg);
        return 0;
    }
    hp_log_set_level(cfg.log_level);
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
