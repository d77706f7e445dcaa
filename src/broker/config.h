/*
 * config.h - hopperd's command line, HOPPER_* environment and INI config
 * file (--config / HOPPER_CONFIG), folded into one broker_config, all
 * read through one table of options (options.def), which also gives
 * broker_config_init its defaults. Precedence: flag > environment > file >
 * default.
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
    hp_log_format log_format;
    bool help;
    bool version;
    bool print_config;
    char *listen_env; /* owned copy of HOPPER_LISTEN, split in place */
    char **owned;     /* copies of the config file's values */
    size_t n_owned;
} config;

/* Parses argv and the environment. INVALID_ARGUMENT/BAD_CONFIG with a
 * message naming the flag for anything it cannot use. */
HP_MUST_USE hp_code config_parse(int argc, char **argv, config *out,
                                 hp_status *st);

void config_release(config *c);

/* Writes the effective configuration as a config file that --config reads
 * back to the same configuration. Key material is never in it: the key
 * file's path is, its keys are not. */
void config_print(const config *c, FILE *f);

void config_usage(FILE *f);

/* Parses "64M", "1GiB", "4096"; -1 if it is not a size. */
int config_parse_size(const char *s, size_t *out);

#endif
