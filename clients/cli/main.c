/*
 * main.c - the hopper command: global options (flags win over HOPPER_*
 * environment variables), finding the command, --help text generated from
 * the same flag tables the parser uses, and the exit code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_flag global_flags[] = {
    { "url", 0, "URL",
      "broker address (env HOPPER_URL; " HOPPER_DEFAULT_URL ")" },
    { "scope", 0, "S", "keyspace (env HOPPER_SCOPE; broker's \"default\")" },
    { "token", 0, "T",
      "credential (env HOPPER_TOKEN, preferred: argv is "
      "visible to other users)" },
    { "timeout", 0, "MS",
      "per-call timeout (default 10000; 30s, 2m also "
      "work)" },
    { "json", 0, NULL,
      "print one JSON object per line (errors: one on stderr)" },
    { "tls-ca", 0, "FILE",
      "tls+tcp://: CA bundle (PEM) to verify the broker "
      "(env HOPPER_TLS_CA)" },
    { "tls-server-name", 0, "NAME",
      "tls+tcp://: name the broker's "
      "certificate must carry (env "
      "HOPPER_TLS_SERVER_NAME)" },
    { "tls-cert", 0, "FILE",
      "tls+tcp://: client certificate (PEM; env "
      "HOPPER_TLS_CERT)" },
    { "tls-key", 0, "FILE",
      "tls+tcp://: client key (PEM; env "
      "HOPPER_TLS_KEY)" },
    { "help", 'h', NULL, "show help (also: hopper COMMAND --help)" },
    { "version", 0, NULL, "show versions and exit" },
    { NULL, 0, NULL, NULL },
};

static const cli_command *const command_tables[] = { cli_msg_commands,
                                                     cli_work_commands,
                                                     cli_admin_commands };

#define N_TABLES (sizeof(command_tables) / sizeof(command_tables[0]))

static const cli_command *
find_command(const char *name)
{
    for (size_t t = 0; t < N_TABLES; t++) {
        for (const cli_command *k = command_tables[t]; k->name != NULL; k++) {
            if (strcmp(k->name, name) == 0) {
                return k;
            }
        }
    }
    return NULL;
}

/* True when some command is named "group ...". */
static bool
is_group(const char *group)
{
    size_t len = strlen(group);

    for (size_t t = 0; t < N_TABLES; t++) {
        for (const cli_command *k = command_tables[t]; k->name != NULL; k++) {
            if (strncmp(k->name, group, len) == 0 && k->name[len] == ' ') {
                return true;
            }
        }
    }
    return false;
}

/* ---- help ---- */

#define HELP_WIDTH 79

/* Prints "  left  text", text word-wrapped at HELP_WIDTH and indented
 * under itself. */
static void
print_item(const char *left, int left_width, const char *text)
{
    int col = printf("  %-*s ", left_width, left);
    int indent = left_width + 3;

    if (col > indent) { /* an overlong left column: text on the next line */
        printf("\n%*s", indent, "");
        col = indent;
    }
    for (bool first = true; *text != '\0'; first = false) {
        const char *sp = strchr(text, ' ');
        int word = sp != NULL ? (int)(sp - text) : (int)strlen(text);

        if (!first && col + 1 + word > HELP_WIDTH) {
            printf("\n%*s", indent, "");
            col = indent;
        } else if (!first) {
            col += printf(" ");
        }
        col += printf("%.*s", word, text);
        text += word;
        while (*text == ' ') {
            text++;
        }
    }
    putchar('\n');
}

static void
print_flags(const cli_flag *flags)
{
    for (const cli_flag *f = flags; f->name != NULL; f++) {
        char left[64];

        snprintf(left, sizeof(left), "%c%c%c --%s%s%s",
                 f->short_name != 0 ? '-' : ' ',
                 f->short_name != 0 ? f->short_name : ' ',
                 f->short_name != 0 ? ',' : ' ', f->name,
                 f->value != NULL ? " " : "", f->value != NULL ? f->value : "");
        print_item(left, 26, f->help);
    }
}

static void
print_trailer(void)
{
    puts("\nEnvironment (flags win):\n"
         "  HOPPER_URL, HOPPER_SCOPE, HOPPER_TOKEN, HOPPER_TLS_CA,\n"
         "  HOPPER_TLS_SERVER_NAME, HOPPER_TLS_CERT, HOPPER_TLS_KEY\n");
    cli_print_exit_codes(stdout);
    puts("Errors go to stderr as: hopper: CODE REASON: message\n"
         "With --json, as one JSON object on one line:\n"
         "  {\"exit\":N,\"code\":\"CODE\",\"reason\":\"REASON\","
         "\"message\":\"...\"}\n"
         "where CODE is USAGE (exit 2) or LOCAL (a failure of hopper "
         "itself)\nwhen no call failed.");
}

static void
print_command_help(const cli_command *k)
{
    printf("Usage: hopper [GLOBAL OPTIONS] %s%s%s\n\n%s\n", k->name,
           k->usage[0] != '\0' ? " " : "", k->usage, k->summary);
    if (k->details != NULL) {
        printf("\n%s\n", k->details);
    }
    if (k->flags[0].name != NULL) {
        puts("\nOptions:");
        print_flags(k->flags);
    }
    puts("\nGlobal options (before or after the command):");
    print_flags(global_flags);
    print_trailer();
}

static void
print_commands(const char *group)
{
    size_t len = group != NULL ? strlen(group) : 0;

    for (size_t t = 0; t < N_TABLES; t++) {
        for (const cli_command *k = command_tables[t]; k->name != NULL; k++) {
            char left[80];

            if (group != NULL &&
                (strncmp(k->name, group, len) != 0 || k->name[len] != ' ')) {
                continue;
            }
            snprintf(left, sizeof(left), "%s %s", k->name, k->usage);
            print_item(left, 26, k->summary);
        }
    }
}

static void
print_main_help(const char *group)
{
    if (group != NULL) {
        printf("Usage: hopper [GLOBAL OPTIONS] %s SUBCOMMAND ...\n\n"
               "Subcommands:\n",
               group);
        print_commands(group);
        printf("\nRun 'hopper %s SUBCOMMAND --help' for its options.\n", group);
        return;
    }
    puts("Usage: hopper [GLOBAL OPTIONS] COMMAND [ARGS...]\n\n"
         "Command-line client of the Hopper message broker: enqueue, claim "
         "and\nsettle messages, inspect lanes and dead letters.\n\n"
         "Commands:");
    print_commands(NULL);
    puts("\nGlobal options (before or after the command):");
    print_flags(global_flags);
    puts("\nDurations (MS) are milliseconds, or take a unit: 500ms, 30s, "
         "5m, 2h.\n"
         "Run 'hopper COMMAND --help' for a command's options.");
    print_trailer();
}

/* ---- setup ---- */

static const char *
flag_or_env(const cli_args *a, const char *flag, const char *env)
{
    const char *v = args_get(a, flag);

    if (v == NULL) {
        v = getenv(env);
    }
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int
apply_globals(cli *c, const cli_args *a)
{
    uint32_t timeout_ms = 10000;
    int rc;

    hopper_options_init(&c->opts);
    const char *url = args_get(a, "url");
    if (url != NULL && url[0] == '\0') {
        /* Most likely an unset shell variable: talking to whatever listens
         * on the default port instead would hide the mistake. */
        return cli_usage(c, "--url is empty; give tcp://HOST:PORT or leave "
                            "it out for " HOPPER_DEFAULT_URL);
    }
    c->url = flag_or_env(a, "url", "HOPPER_URL");
    c->opts.scope = flag_or_env(a, "scope", "HOPPER_SCOPE");
    c->opts.token = flag_or_env(a, "token", "HOPPER_TOKEN");
    c->opts.tls_ca_file = flag_or_env(a, "tls-ca", "HOPPER_TLS_CA");
    c->opts.tls_server_name =
        flag_or_env(a, "tls-server-name", "HOPPER_TLS_SERVER_NAME");
    c->opts.tls_cert_file = flag_or_env(a, "tls-cert", "HOPPER_TLS_CERT");
    c->opts.tls_key_file = flag_or_env(a, "tls-key", "HOPPER_TLS_KEY");
    c->json = args_has(a, "json");
    /* A command's own flag shadows the global one of the same name (the
     * command's table is searched first): work's --timeout limits the
     * command it runs, and its calls keep the default timeout. */
    const cli_flag *const own[] = { c->cmd->flags };
    if (args_find(own, 1, "timeout", 0) == NULL &&
        (rc = cli_opt_ms32(c, a, "timeout", &timeout_ms)) != 0) {
        return rc;
    }
    if (timeout_ms == 0) {
        return cli_usage(c, "--timeout must be at least 1 ms");
    }
    c->opts.timeout_ms = timeout_ms;
    if (c->url == NULL) {
        c->url = HOPPER_DEFAULT_URL;
    }
    return 0;
}

/*
 * Finds the command word(s): the first tokens that are neither global
 * flags nor their values. *first gets the index of the first word and
 * *words how many (2 for "lane set"). A NULL command means none given.
 */
static int
locate_command(const cli *c, int argc, char **argv, const cli_command **cmd,
               int *first, int *words, const char **group)
{
    static const cli_flag *const globals[] = { global_flags };

    *cmd = NULL;
    *group = NULL;
    *words = 0;
    for (int i = 1; i < argc; i++) {
        const cli_flag *f;

        if (argv[i][0] != '-' || argv[i][1] == '\0') {
            *first = i;
            *words = 1;
            if ((*cmd = find_command(argv[i])) != NULL) {
                return 0;
            }
            if (!is_group(argv[i])) {
                return cli_usage(c, "unknown command '%s'", argv[i]);
            }
            *group = argv[i];
            if (i + 1 < argc && argv[i + 1][0] != '-') {
                char name[96];

                snprintf(name, sizeof(name), "%s %s", argv[i], argv[i + 1]);
                *words = 2;
                *cmd = find_command(name);
                /* A group inside a group: "webhook secret set". */
                if (*cmd == NULL && is_group(name) && i + 2 < argc &&
                    argv[i + 2][0] != '-') {
                    size_t len = strlen(name);
                    snprintf(name + len, sizeof(name) - len, " %s",
                             argv[i + 2]);
                    *cmd = find_command(name);
                    *words = 3;
                }
                if (*cmd == NULL) {
                    return cli_usage(c, "unknown command '%s'", name);
                }
            }
            return 0;
        }
        f = args_find(globals, 1, argv[i][1] == '-' ? argv[i] + 2 : NULL,
                      argv[i][1] == '-' ? 0 : argv[i][1]);
        if (f != NULL && f->value != NULL && strchr(argv[i], '=') == NULL) {
            i++; /* skip the value */
        }
    }
    return 0;
}

static int
run(cli *c, const cli_command *k, const cli_args *a)
{
    size_t n = a->n_pos;

    if (n < k->min_pos) {
        return cli_usage(c, "'%s' needs %s", k->name, k->usage);
    }
    if (n > k->max_pos) {
        return cli_usage(c, "'%s' takes at most %zu argument%s", k->name,
                         k->max_pos, k->max_pos == 1 ? "" : "s");
    }
    return k->run(c, a);
}

/* Acts on what the command line asked for, once parsed. */
static int
dispatch(cli *c, const cli_args *a, const char *group)
{
    int rc;

    if (args_has(a, "version")) {
        printf("hopper %s (libhopper %s)\n", HOPPER_CLI_VERSION,
               hopper_version());
        return 0;
    }
    if (args_has(a, "help")) {
        if (c->cmd != NULL) {
            print_command_help(c->cmd);
        } else {
            print_main_help(group);
        }
        return 0;
    }
    if (c->cmd == NULL && group != NULL) {
        return cli_error(
            c, CLI_EXIT_USAGE, CLI_CODE_USAGE, CLI_R_BAD_COMMAND_LINE,
            "'%s' needs a subcommand (see 'hopper %s --help')", group, group);
    }
    if (c->cmd == NULL) {
        return cli_usage(c, "no command given");
    }
    if ((rc = apply_globals(c, a)) != 0) {
        return rc;
    }
    return run(c, c->cmd, a);
}

static int
parse_and_run(cli *c, int argc, char **argv, int first, int words,
              const char *group)
{
    static const cli_flag no_flags[] = { { NULL, 0, NULL, NULL } };
    const cli_flag *tables[2] = { global_flags, no_flags };
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    char err[200];
    cli_args a;
    int n = 0;
    int rc;

    if (rest == NULL) {
        return cli_no_memory(c);
    }
    for (int i = 1; i < argc; i++) {
        if (words == 0 || i < first || i >= first + words) {
            rest[n++] = argv[i];
        }
    }
    if (c->cmd != NULL) {
        tables[0] = c->cmd->flags;
        tables[1] = global_flags;
    }
    if (args_parse(n, rest, tables, 2, &a, err, sizeof(err)) != 0) {
        free(rest);
        return cli_usage(c, "%s", err);
    }
    rc = dispatch(c, &a, group);
    args_release(&a);
    free(rest);
    return rc;
}

/* Whether --json is on the command line (before a "--"), for the errors
 * found before the flags are parsed. */
static bool
wants_json(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            return true;
        }
    }
    return false;
}

/* "hopper help lane set" is "hopper lane set --help": rewrites argv. */
static char **
rewrite_help(int *argc, char **argv)
{
    static char help_flag[] = "--help";
    char **out;
    int n = 0;

    if (*argc < 2 || strcmp(argv[1], "help") != 0 ||
        (out = calloc((size_t)*argc + 1, sizeof(char *))) == NULL) {
        return NULL;
    }
    out[n++] = argv[0];
    for (int i = 2; i < *argc; i++) {
        out[n++] = argv[i];
    }
    out[n++] = help_flag;
    *argc = n;
    return out;
}

int
main(int argc, char **argv)
{
    char **rewritten = rewrite_help(&argc, argv);
    const char *group;
    int first = 0;
    int words;
    cli c;
    int rc;

    memset(&c, 0, sizeof(c));
    if (rewritten != NULL) {
        argv = rewritten;
    }
    c.json = wants_json(argc, argv); /* errors before the flags are parsed */
    if (locate_command(&c, argc, argv, &c.cmd, &first, &words, &group) != 0) {
        free(rewritten);
        return CLI_EXIT_USAGE;
    }
    rc = parse_and_run(&c, argc, argv, first, words, group);
    free(rewritten);
    hopper_close(c.client);
    if (fflush(stdout) != 0 && rc == 0) {
        rc = cli_error(&c, CLI_EXIT_OTHER, CLI_CODE_LOCAL, CLI_R_OUTPUT_ERROR,
                       "cannot write output");
    }
    return rc;
}
