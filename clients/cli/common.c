/*
 * common.c - what every command uses: the lazily opened client, usage
 * errors, broker errors mapped to exit codes, and flag values as numbers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

hopper_client *
cli_client(cli *c, int *rc)
{
    hopper_status st;

    if (c->client == NULL &&
        hopper_connect(c->url, &c->opts, &c->client, &st) != HOPPER_OK) {
        *rc = cli_fail(&st);
        return NULL;
    }
    return c->client;
}

int
cli_usage(const cli *c, const char *fmt, ...)
{
    va_list ap;

    fputs("hopper: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (c != NULL && c->cmd != NULL) {
        fprintf(stderr, "\nTry 'hopper %s --help'.\n", c->cmd->name);
    } else {
        fputs("\nTry 'hopper --help'.\n", stderr);
    }
    return CLI_EXIT_USAGE;
}

int
cli_exit_code(int code)
{
    switch (code) {
    case HOPPER_OK:
        return CLI_EXIT_OK;
    case HOPPER_INVALID_ARGUMENT:
        return CLI_EXIT_INVALID;
    case HOPPER_NOT_FOUND:
        return CLI_EXIT_NOT_FOUND;
    case HOPPER_FAILED_PRECONDITION:
        return CLI_EXIT_PRECONDITION;
    case HOPPER_PERMISSION_DENIED:
    case HOPPER_UNAUTHENTICATED:
        return CLI_EXIT_DENIED;
    case HOPPER_RESOURCE_EXHAUSTED:
        return CLI_EXIT_EXHAUSTED;
    case HOPPER_UNAVAILABLE:
    case HOPPER_DEADLINE_EXCEEDED:
        return CLI_EXIT_UNAVAILABLE;
    default:
        return CLI_EXIT_OTHER;
    }
}

int
cli_fail(const hopper_status *st)
{
    fprintf(stderr, "hopper: %s %s: %s\n", hopper_status_str(st->code),
            st->reason[0] != '\0' ? st->reason : "-", st->message);
    return cli_exit_code(st->code);
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

int
cli_opt_u64(const cli *c, const cli_args *a, const char *name, uint64_t *out)
{
    return opt_number(c, a, name, false, UINT64_MAX, out);
}

int
cli_opt_u32(const cli *c, const cli_args *a, const char *name, uint32_t *out)
{
    uint64_t n = *out;
    int rc = opt_number(c, a, name, false, UINT32_MAX, &n);
    *out = (uint32_t)n;
    return rc;
}

int
cli_opt_ms64(const cli *c, const cli_args *a, const char *name, uint64_t *out)
{
    return opt_number(c, a, name, true, UINT64_MAX, out);
}

int
cli_opt_ms32(const cli *c, const cli_args *a, const char *name, uint32_t *out)
{
    uint64_t n = *out;
    int rc = opt_number(c, a, name, true, UINT32_MAX, &n);
    *out = (uint32_t)n;
    return rc;
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
