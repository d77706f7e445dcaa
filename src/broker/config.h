/*
 * config.h - hopperd's command line and HOPPER_* environment, folded into
 * one broker_config. Precedence: flag > environment > default.
 */
#ifndef HP_BROKER_CONFIG_H
#define HP_BROKER_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "broker/broker.h"
#include "common/log.h"

typedef struct config {
    broker_config broker;
    hp_log_level log_level;
    bool help;
    bool version;
    char *listen_env; /* owned copy of HOPPER_LISTEN, split in place */
} config;

/* Parses argv and the environment. INVALID_ARGUMENT/BAD_CONFIG with a
 * message naming the flag for anything it cannot use. */
HP_MUST_USE hp_code config_parse(int argc, char **argv, config *out,
                                 hp_status *st);

void config_release(config *c);

void config_usage(FILE *f);

/* Parses "64M", "1GiB", "4096"; -1 if it is not a size. */
int config_parse_size(const char *s, size_t *out);

#endif
