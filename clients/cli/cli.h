/*
 * cli.h - what the hopper command's files share: the run context, the
 * command table type, exit codes, and the commands themselves.
 *
 * Files: main.c (global options, dispatch, help), args.c (option parser),
 * output.c (tables, JSON lines, payload rendering, errors and exit codes),
 * cmd_msg.c (message commands), cmd_admin.c (lanes, dead letters, ping),
 * cmd_work.c (work: a command as a worker).
 */
#ifndef HOPPER_CLI_H
#define HOPPER_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "args.h"
#include "hopper/hopper.h"

/* Exit codes: one per class of failure, so scripts can branch on them.
 * Which status codes each stands for, and its --help line, are in one
 * table in common.c. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_USAGE = 2,        /* bad command line, refused input */
    CLI_EXIT_INVALID = 3,      /* INVALID_ARGUMENT */
    CLI_EXIT_NOT_FOUND = 4,    /* NOT_FOUND */
    CLI_EXIT_PRECONDITION = 5, /* FAILED_PRECONDITION, e.g. LOST_CLAIM */
    CLI_EXIT_DENIED = 6,       /* PERMISSION_DENIED, UNAUTHENTICATED */
    CLI_EXIT_EXHAUSTED = 7,    /* RESOURCE_EXHAUSTED */
    CLI_EXIT_UNAVAILABLE = 8,  /* UNAVAILABLE, DEADLINE_EXCEEDED */
    CLI_EXIT_OTHER = 9,        /* any other failure */
    CLI_EXIT_EXISTS = 10       /* ALREADY_EXISTS, e.g. BACKUP_EXISTS */
};

/* The "code" of an error the hopper command reports itself, where a
 * failed call reports its status code name: USAGE (exit 2) when it
 * refused the command line or its input before any call, LOCAL (exit 9)
 * when it failed on its own (memory, stdin, stdout). Their reasons: */
#define CLI_CODE_USAGE "USAGE"
#define CLI_CODE_LOCAL "LOCAL"
/* Those only this command reports (it says NO_MEMORY as libhopper does,
 * HOPPER_R_NO_MEMORY), generated from src/common/reasons.def by
 * scripts/gen-reasons.sh: */
/* BEGIN reasons (generated from src/common/reasons.def: do not edit) */
/* The hopper command's own, code USAGE: it refused its input */
#define CLI_R_BAD_COMMAND_LINE  "BAD_COMMAND_LINE"
#define CLI_R_STDIN_IS_TERMINAL "STDIN_IS_TERMINAL"
#define CLI_R_EMPTY_PAYLOAD     "EMPTY_PAYLOAD"

/* The hopper command's own, code LOCAL: it failed by itself */
#define CLI_R_STDIN_ERROR     "STDIN_ERROR"
#define CLI_R_STDIN_TOO_LARGE "STDIN_TOO_LARGE"
#define CLI_R_OUTPUT_ERROR    "OUTPUT_ERROR"
#define CLI_R_CURSOR_LOOP     "CURSOR_LOOP"
/* END reasons */

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

/* Reads all of stdin (at most 64 MiB) into a fresh buffer the caller
 * frees; NULL after reporting why (*rc gets the exit code). */
void *cli_read_stdin(const cli *c, size_t *len, int *rc);

/* The client, connected on first use; NULL after printing why (the exit
 * code goes to *rc). */
hopper_client *cli_client(cli *c, int *rc);

/*
 * Errors go to stderr, for people as "hopper: MESSAGE" (a failed call:
 * "hopper: CODE REASON: message"), and with --json as one JSON object on
 * one line, whatever failed:
 *   {"exit":N,"code":"NOT_FOUND","reason":"NO_MESSAGE","message":"..."}
 * Each returns the exit code. c may not have parsed its flags yet: main
 * sets c->json from argv first.
 */

/* A command line or input refused before any call: a --help hint
 * follows the message for people; returns CLI_EXIT_USAGE. */
int cli_usage(const cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An error of the command itself (code CLI_CODE_USAGE or CLI_CODE_LOCAL),
 * exiting with exit. */
int cli_error(const cli *c, int exit, const char *code, const char *reason,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Out of memory, a LOCAL error. */
int cli_no_memory(const cli *c);

/* A failed call; returns the exit code of its class. */
int cli_fail(const cli *c, const hopper_status *st);

/* The exit code for a hopper status code. */
int cli_exit_code(int code);

/* The "Exit codes:" lines of --help, from the same table. */
void cli_print_exit_codes(FILE *f);

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
/* Milliseconds on a monotonic clock, for durations. */
uint64_t cli_mono_ms(void);

/* A positional claim token (32 hex digits). */
int cli_token_arg(const cli *c, const char *hex, hopper_token *out);

/* list and dead list (cmd_list.c): flags state, limit, all, cursor and
 * payload; positional LANE. */
int cli_list_pages(cli *c, const cli_args *a, bool dead);

/* Command tables, one per file. */
extern const cli_command cli_msg_commands[];
extern const cli_command cli_admin_commands[];
extern const cli_command cli_work_commands[];

#endif
