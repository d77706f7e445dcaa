/*
 * check_cmd.h - `hopperd check --data DIR`: store_check on a stopped
 * broker's data directory, for an operator after a crash, a power loss or
 * a restore, and for the power-loss test after each cut.
 */
#ifndef HP_BROKER_CHECK_CMD_H
#define HP_BROKER_CHECK_CMD_H

#include <stdbool.h>

/* Whether argv names this command. */
bool check_cmd_matches(int argc, char **argv);

/* Runs it; returns the process exit status: 0 when the tables agree, 1
 * when they do not or the store cannot be opened, 2 for bad usage. */
int check_cmd_main(int argc, char **argv);

#endif
