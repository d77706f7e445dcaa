/*
 * common.c - what every command uses: the lazily opened client, usage
 * errors, broker errors mapped to exit codes, and flag values as numbers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "output.h"

hopper_client *
cli_client(cli *c, int *rc)
{
    hopper_status st;

    if (c->client == NULL &&
        hopper_connect(c->url, &c->opts, &c->client, &st) != HOPPER_OK) {
        *rc = cli_fail(c, &st);
        return NULL;
    }
    return c->client;
}

/* Every error comes out here, in one of the two forms cli.h shows. */
static int
report(const cli *c, int exit, const char *code, const char *reason,
       const char *msg, bool show_code)
{
    if (c->json) {
        json_t *o = json_pack("{s:i, s:s, s:s, s:s}", "exit", exit, "code",
                              code, "reason", reason, "message", msg);
        out_json_to(stderr, o);
    } else if (show_code) {
        fprintf(stderr, "hopper: %s %s: %s\n", code,
                reason[0] != '\0' ? reason : "-", msg);
    } else {
        fprintf(stderr, "hopper: %s\n", msg);
    }
    return exit;
}

int
cli_usage(const cli *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    report(c, CLI_EXIT_USAGE, CLI_CODE_USAGE, CLI_R_BAD_COMMAND_LINE, msg,
           false);
    if (!c->json) {
        fprintf(stderr, "Try 'hopper %s%s--help'.\n",
                c->cmd != NULL ? c->cmd->name : "", c->cmd != NULL ? " " : "");
    }
    return CLI_EXIT_USAGE;
}

int
cli_error(const cli *c, int exit, const char *code, const char *reason,
          const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return report(c, exit, code, reason, msg, false);
}

int
cli_no_memory(const cli *c)
{
    return report(c, CLI_EXIT_OTHER, CLI_CODE_LOCAL, HOPPER_R_NO_MEMORY,
                  "out of memory", false);
}

/* One row per exit code: the status codes it stands for (-1 ends the
 * list) and its line in --help. cli_exit_code and the help text both
 * read it; docs/protocol.md has the same table for people. */
static const struct {
    int exit;
    int codes[3];
    const char *help;
} exit_classes[] = {
    { CLI_EXIT_OK, { HOPPER_OK, -1 }, "success" },
    { CLI_EXIT_USAGE,
      { -1 },
      "usage error: bad command line, or input refused before any call" },
    { CLI_EXIT_INVALID, { HOPPER_INVALID_ARGUMENT, -1 }, "INVALID_ARGUMENT" },
    { CLI_EXIT_NOT_FOUND, { HOPPER_NOT_FOUND, -1 }, "NOT_FOUND" },
    { CLI_EXIT_PRECONDITION,
      { HOPPER_FAILED_PRECONDITION, -1 },
      "FAILED_PRECONDITION (e.g. LOST_CLAIM: the claim token is stale)" },
    { CLI_EXIT_DENIED,
      { HOPPER_PERMISSION_DENIED, HOPPER_UNAUTHENTICATED, -1 },
      "PERMISSION_DENIED or UNAUTHENTICATED" },
    { CLI_EXIT_EXHAUSTED,
      { HOPPER_RESOURCE_EXHAUSTED, -1 },
      "RESOURCE_EXHAUSTED (e.g. MAP_FULL)" },
    { CLI_EXIT_UNAVAILABLE,
      { HOPPER_UNAVAILABLE, HOPPER_DEADLINE_EXCEEDED, -1 },
      "UNAVAILABLE or DEADLINE_EXCEEDED (broker unreachable or too slow)" },
    { CLI_EXIT_OTHER, { -1 }, "any other failure" },
    { CLI_EXIT_EXISTS,
      { HOPPER_ALREADY_EXISTS, -1 },
      "ALREADY_EXISTS (e.g. BACKUP_EXISTS: that backup name was used)" },
};

int
cli_exit_code(int code)
{
    for (size_t i = 0; i < sizeof(exit_classes) / sizeof(exit_classes[0]);
         i++) {
        for (const int *k = exit_classes[i].codes; *k != -1; k++) {
            if (*k == code) {
                return exit_classes[i].exit;
            }
        }
    }
    return CLI_EXIT_OTHER;
}

void
cli_print_exit_codes(FILE *f)
{
    fputs("Exit codes:\n", f);
    for (size_t i = 0; i < sizeof(exit_classes) / sizeof(exit_classes[0]);
         i++) {
        fprintf(f, "  %-2d %s\n", exit_classes[i].exit, exit_classes[i].help);
    }
}

int
cli_fail(const cli *c, const hopper_status *st)
{
    return report(c, cli_exit_code(st->code), hopper_status_str(st->code),
                  st->reason, st->message, true);
}

/* One parser behind the four typed option readers: a plain number or a
 * duration (ms, s, m, h), at most max. *out is untouched when the option
 * is absent. */
static int
opt_number(const cli *c, const cli_args *a, const char *name, bool duration,
           uint64_t max, uint64_t *out)
{
    const char *v = args_get(a, name);
    char what[64];
    char err[160];
    int rc;

    if (v == NULL) {
        return 0;
    }
    snprintf(what, sizeof(what), "--%s", name);
    rc = duration ? parse_ms(what, v, max, out, err, sizeof(err))
                  : parse_u64(what, v, max, out, err, sizeof(err));
    return rc != 0 ? cli_usage(c, "%s", err) : 0;
}

/* opt_number into a 32-bit field, which keeps its value when the flag is
 * absent. */
static int
opt_number32(const cli *c, const cli_args *a, const char *name, bool duration,
             uint32_t *out)
{
    uint64_t n = *out;
    int rc = opt_number(c, a, name, duration, UINT32_MAX, &n);
    *out = (uint32_t)n;
    return rc;
}

int
cli_opt_u64(const cli *c, const cli_args *a, const char *name, uint64_t *out)
{
    return opt_number(c, a, name, false, UINT64_MAX, out);
}

int
cli_opt_u32(const cli *c, const cli_args *a, const char *name, uint32_t *out)
{
    return opt_number32(c, a, name, false, out);
}

int
cli_opt_ms64(const cli *c, const cli_args *a, const char *name, uint64_t *out)
{
    return opt_number(c, a, name, true, UINT64_MAX, out);
}

int
cli_opt_ms32(const cli *c, const cli_args *a, const char *name, uint32_t *out)
{
    return opt_number32(c, a, name, true, out);
}

int
cli_token_arg(const cli *c, const char *hex, hopper_token *out)
{
    if (hopper_token_parse(hex, out) != HOPPER_OK) {
        /* The token is a secret: say what is wrong, not what it was. */
        return cli_usage(c,
                         "bad claim token: want 32 hex digits, got %zu "
                         "characters",
                         strlen(hex));
    }
    return 0;
}

uint64_t
cli_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define STDIN_MAX_BYTES ((size_t)64 << 20)

/* Reads all of stdin into a fresh buffer; NULL after reporting why
 * (*rc gets the exit code). */
void *
cli_read_stdin(const cli *c, size_t *len, int *rc)
{
    size_t cap = 4096;
    size_t n = 0;
    char *buf = malloc(cap);

    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, stdin);

        n += got;
        if (got == 0) {
            break;
        }
        if (n == cap) {
            char *grown = cap < STDIN_MAX_BYTES ? realloc(buf, 2 * cap) : NULL;

            if (grown == NULL) {
                free(buf);
                *rc = cli_error(c, CLI_EXIT_OTHER, CLI_CODE_LOCAL,
                                CLI_R_STDIN_TOO_LARGE,
                                "stdin too large (max 64 MiB)");
                return NULL;
            }
            buf = grown;
            cap *= 2;
        }
    }
    if (buf == NULL || ferror(stdin)) {
        free(buf);
        *rc = cli_error(c, CLI_EXIT_OTHER, CLI_CODE_LOCAL, CLI_R_STDIN_ERROR,
                        "cannot read stdin");
        return NULL;
    }
    *len = n;
    return buf;
}
