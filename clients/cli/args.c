/*
 * args.c - the table-driven option parser described in args.h.
 */
#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cli_flag *
args_find(const cli_flag *const *tables, size_t n_tables, const char *name,
          char short_name)
{
    for (size_t t = 0; t < n_tables; t++) {
        for (const cli_flag *f = tables[t]; f->name != NULL; f++) {
            if (name != NULL
                    ? strcmp(f->name, name) == 0
                    : (short_name != 0 && f->short_name == short_name)) {
                return f;
            }
        }
    }
    return NULL;
}

/* Splits "--name=value" / "--name" / "-x" into a flag and inline value. */
static const cli_flag *
lookup(const char *tok, const cli_flag *const *tables, size_t n_tables,
       const char **inline_value, char *err, size_t err_len)
{
    char name[64];
    const char *eq;
    const cli_flag *f;

    *inline_value = NULL;
    if (tok[1] != '-') { /* -x */
        if (tok[2] != '\0' ||
            (f = args_find(tables, n_tables, NULL, tok[1])) == NULL) {
            snprintf(err, err_len, "unknown option '%s'", tok);
            return NULL;
        }
        return f;
    }
    eq = strchr(tok + 2, '=');
    snprintf(name, sizeof(name), "%.*s",
             (int)(eq != NULL ? (size_t)(eq - tok - 2) : strlen(tok + 2)),
             tok + 2);
    if ((f = args_find(tables, n_tables, name, 0)) == NULL) {
        snprintf(err, err_len, "unknown option '--%s'", name);
        return NULL;
    }
    if (eq != NULL) {
        if (f->value == NULL) {
            snprintf(err, err_len, "option '--%s' takes no value", name);
            return NULL;
        }
        *inline_value = eq + 1;
    }
    return f;
}

int
args_parse(int argc, char *const *argv, const cli_flag *const *tables,
           size_t n_tables, cli_args *out, char *err, size_t err_len)
{
    size_t cap = argc > 0 ? (size_t)argc : 1;
    bool flags_done = false;

    memset(out, 0, sizeof(*out));
    out->opts = calloc(cap, sizeof(*out->opts));
    out->pos = calloc(cap, sizeof(*out->pos));
    if (out->opts == NULL || out->pos == NULL) {
        snprintf(err, err_len, "out of memory");
        args_release(out);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        const char *tok = argv[i];
        const char *value;
        const cli_flag *f;

        if (flags_done || tok[0] != '-' || tok[1] == '\0') {
            out->pos[out->n_pos++] = tok;
            continue;
        }
        if (strcmp(tok, "--") == 0) {
            flags_done = true;
            continue;
        }
        if ((f = lookup(tok, tables, n_tables, &value, err, err_len)) == NULL) {
            args_release(out);
            return -1;
        }
        if (f->value != NULL && value == NULL) {
            if (i + 1 >= argc) {
                snprintf(err, err_len, "option '--%s' needs a value %s",
                         f->name, f->value);
                args_release(out);
                return -1;
            }
            value = argv[++i];
        }
        out->opts[out->n_opts].flag = f;
        out->opts[out->n_opts].value = value != NULL ? value : "";
        out->n_opts++;
    }
    return 0;
}

void
args_release(cli_args *a)
{
    free(a->opts);
    free(a->pos);
    memset(a, 0, sizeof(*a));
}

const char *
args_get(const cli_args *a, const char *name)
{
    const char *v = NULL;

    for (size_t i = 0; i < a->n_opts; i++) {
        if (strcmp(a->opts[i].flag->name, name) == 0) {
            v = a->opts[i].value;
        }
    }
    return v;
}

const char *
args_nth(const cli_args *a, const char *name, size_t n)
{
    for (size_t i = 0; i < a->n_opts; i++) {
        if (strcmp(a->opts[i].flag->name, name) == 0 && n-- == 0) {
            return a->opts[i].value;
        }
    }
    return NULL;
}

bool
args_has(const cli_args *a, const char *name)
{
    return args_get(a, name) != NULL;
}

int
parse_u64(const char *what, const char *s, uint64_t max, uint64_t *out,
          char *err, size_t err_len)
{
    unsigned long long v;
    char *end;

    errno = 0;
    if (s[0] < '0' || s[0] > '9') {
        snprintf(err, err_len, "%s must be a number, not '%s'", what, s);
        return -1;
    }
    v = strtoull(s, &end, 10);
    if (*end != '\0') {
        snprintf(err, err_len, "%s must be a number, not '%s'", what, s);
        return -1;
    }
    if (errno == ERANGE || v > max) {
        snprintf(err, err_len, "%s must be at most %llu", what,
                 (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

int
parse_ms(const char *what, const char *s, uint64_t max, uint64_t *out,
         char *err, size_t err_len)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }
    };

    size_t len = strlen(s);
    char digits[32];
    uint64_t v;

    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        size_t sl = strlen(units[u].suffix);

        if (len > sl && len - sl < sizeof(digits) &&
            strcmp(s + len - sl, units[u].suffix) == 0 &&
            (s[len - sl - 1] >= '0' && s[len - sl - 1] <= '9')) {
            memcpy(digits, s, len - sl);
            digits[len - sl] = '\0';
            if (parse_u64(what, digits, max / units[u].ms, &v, err, err_len) !=
                0) {
                snprintf(err, err_len, "%s: bad or too long duration '%s'",
                         what, s);
                return -1;
            }
            *out = v * units[u].ms;
            return 0;
        }
    }
    return parse_u64(what, s, max, out, err, err_len);
}
