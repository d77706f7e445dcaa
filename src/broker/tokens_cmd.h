/*
 * tokens_cmd.h - hopperd's credential commands: keygen, token mint, token
 * inspect. They work on files and text only; no broker runs.
 */
#ifndef HP_BROKER_TOKENS_CMD_H
#define HP_BROKER_TOKENS_CMD_H

#include <stdbool.h>

/* Whether argv names one of these commands. */
bool tokens_cmd_matches(int argc, char **argv);

/* Runs it; returns the process exit status (0, 1 failure, 2 usage). */
int tokens_cmd_main(int argc, char **argv);

#endif
