/*
 * cli.h - what the hopper command's files share: the run context, the
 * command table type, exit codes, and the commands themselves.
 *
 * Files: main.c (global options, dispatch, help), args.c (option parser),
 * output.c (tables, JSON lines, payload rendering, errors and exit codes),
 * cmd_msg.c (message commands), cmd_admin.c (lanes, dead letters, ping).
 */
#ifndef HOPPER_CLI_H
#define HOPPER_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "args.h"
#include "hopper/hopper.h"

/* Exit codes: one per class of failure, so scripts can branch on them. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_USAGE = 2,        /* bad command line */
    CLI_EXIT_INVALID = 3,      /* INVALID_ARGUMENT */
    CLI_EXIT_NOT_FOUND = 4,    /* NOT_FOUND */
    CLI_EXIT_PRECONDITION = 5, /* FAILED_PRECONDITION, e.g. LOST_CLAIM */
    CLI_EXIT_DENIED = 6,       /* PERMISSION_DENIED, UNAUTHENTICATED */
    CLI_EXIT_EXHAUSTED = 7,    /* RESOURCE_EXHAUSTED */
    CLI_EXIT_UNAVAILABLE = 8,  /* UNAVAILABLE, DEADLINE_EXCEEDED */
    CLI_EXIT_OTHER = 9         /* any other failure */
};

struct cli_command;

/* Everything a command needs; built by main.c from flags and env. */
typedef struct cli {
    const char *url;
    hopper_options opts;
    bool json;
    hopper_client *client;         /* opened by cli_client() on first use */
    const struct cli_command *cmd; /* the running command, for hints */
} cli;

typedef int (*cli_run_fn)(cli *c, const cli_args *a);

typedef struct cli_command {
    const char *name;    /* "enqueue", or "lane set" for a subcommand */
    const char *usage;   /* after the name: "LANE [PAYLOAD|-]" */
    const char *summary; /* one line for the command list */
    const char *details; /* paragraphs for COMMAND --help; may be NULL */
    size_t min_pos;      /* positionals after the name(s) */
    size_t max_pos;      /* SIZE_MAX for any number */
    const cli_flag *flags;
    cli_run_fn run;
} cli_command;

/* The client, connected on first use; NULL after printing why (the exit
 * code goes to *rc). */
hopper_client *cli_client(cli *c, int *rc);

/* Prints "hopper: MESSAGE" and a --help hint; returns CLI_EXIT_USAGE. */
int cli_usage(const cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "hopper: CODE REASON: message" for a failed call and returns the
 * exit code of its class. */
int cli_fail(const hopper_status *st);

/* The exit code for a hopper status code. */
int cli_exit_code(int code);

/* Helpers for commands: a flag's number or duration, leaving *out as is
 * when absent. 0 on success, CLI_EXIT_USAGE after printing why. */
int cli_opt_u32(const cli *c, const cli_args *a, const char *name,
                uint32_t *out);
int cli_opt_u64(const cli *c, const cli_args *a, const char *name,
                uint64_t *out);
int cli_opt_ms32(const cli *c, const cli_args *a, const char *name,
                 uint32_t *out);
int cli_opt_ms64(const cli *c, const cli_args *a, const char *name,
                 uint64_t *out);
/* A positional claim token (32 hex digits). */
int cli_token_arg(const cli *c, const char *hex, hopper_token *out);

/* list and dead list (cmd_list.c): flags state, limit, all, cursor and
 * payload; positional LANE. */
int cli_list_pages(cli *c, const cli_args *a, bool dead);

/* Command tables, one per file. */
extern const cli_command cli_msg_commands[];
extern const cli_command cli_admin_commands[];

#endif
