/*
 * args.h - the CLI's option parser. Flags are declared in tables, so one
 * table drives both parsing and the --help text: a flag cannot exist
 * without being documented. Accepts "--name VALUE", "--name=VALUE",
 * "-x VALUE", switches, repeated flags, positionals anywhere, and "--" to
 * end the flags. A lone "-" is a positional (stdin).
 */
#ifndef HOPPER_CLI_ARGS_H
#define HOPPER_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cli_flag {
    const char *name;  /* long name without dashes; NULL ends a table */
    char short_name;   /* 0 for none */
    const char *value; /* metavar such as "MS"; NULL for a switch */
    const char *help;  /* one line */
} cli_flag;

typedef struct cli_opt {
    const cli_flag *flag;
    const char *value; /* borrowed from argv; "" for a switch */
} cli_opt;

typedef struct cli_args {
    cli_opt *opts; /* in command-line order */
    size_t n_opts;
    const char **pos; /* positionals, borrowed from argv */
    size_t n_pos;
} cli_args;

/*
 * Parses argv[0..argc) against the NULL-terminated tables. On success
 * returns 0 and fills *out (release with args_release); on a usage error
 * returns -1 with a message in err.
 */
int args_parse(int argc, char *const *argv, const cli_flag *const *tables,
               size_t n_tables, cli_args *out, char *err, size_t err_len);
void args_release(cli_args *a);

/* Finds name in the tables: the flag, or NULL. */
const cli_flag *args_find(const cli_flag *const *tables, size_t n_tables,
                          const char *name, char short_name);

/* The last value given for name, or NULL when absent. */
const char *args_get(const cli_args *a, const char *name);

/* The i-th value given for a repeatable flag, or NULL past the end. */
const char *args_nth(const cli_args *a, const char *name, size_t i);

bool args_has(const cli_args *a, const char *name);

/* Strict unsigned numbers: digits only, no sign, no overflow. 0 on
 * success, -1 with a message in err. */
int parse_u64(const char *what, const char *s, uint64_t max, uint64_t *out,
              char *err, size_t err_len);

/* A duration: a number of milliseconds, or with a unit suffix ms, s, m or
 * h ("30s"). */
int parse_ms(const char *what, const char *s, uint64_t max, uint64_t *out,
             char *err, size_t err_len);

#endif
