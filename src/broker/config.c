/*
 * config.c - hopperd's settings: flags, HOPPER_* variables and the INI
 * config file (read with libinih), all driven by one table of options,
 * options.def, as the hopper command's flag tables drive its parser. A
 * row names the flag (the file's key is the same name), its variable, its
 * type, the field it sets, its default and its help; parsing, the
 * environment, the file, the defaults (broker_config_init), --help and
 * --print-config all walk the table, so each fact about a setting is
 * written once. A default is text, read as the flag's value would be, and
 * shown as such by --help.
 *
 * Every value is checked here, so the broker starts only with a
 * configuration it can honour.
 */
#include "broker/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Settings that have no flag: long-poll claims parked by one connection,
 * the long-poll cap, the deadline of a request that gives none, the
 * operations per commit and how long request ids are remembered. */
#define WAITS_PER_CONN      256
#define MAX_WAIT_MS         30000
#define DEFAULT_DEADLINE_MS 60000
#define MAX_GROUP           1024
#define REPLAY_WINDOW_MS    (10 * 60 * 1000)
#define MAX_MAP_SIZE_MIN    ((size_t)1 << 20)
#define MAP_SIZE_MIN        ((size_t)64 << 10)

#define STR_(x) #x
#define STR(x)  STR_(x)

typedef enum opt_type {
    OPT_LISTEN, /* a URL; repeatable, and comma-separated in the variable */
    OPT_STRING, /* kept as given: a path, an address */
    OPT_SIZE,   /* a size_t: 4096, 64M, 1GiB (config_parse_size) */
    OPT_COUNT,  /* a uint32_t from min to max */
    OPT_CHOICE, /* an enum: the index of one of the words of value */
    OPT_BOOL,   /* no value: the flag alone; true|false in the file, 1|true
                   in the variable */
    OPT_CONFIG, /* --config FILE, read before everything else */
    OPT_ACTION, /* no value: what main does instead of serving */
} opt_type;

/* OPT_STRING: "" is refused, or means none (NULL). */
#define OPT_NOT_EMPTY     0x1u
#define OPT_EMPTY_IS_NONE 0x2u

typedef struct option {
    const char *name; /* the flag without "--", and the file's key */
    char short_name;  /* -h; 0: none */
    const char *env;  /* its variable; NULL: none */
    opt_type type;
    size_t field; /* offsetof(config, ...) */
    /* The value's name in --help; for OPT_CHOICE the words themselves,
     * "|"-separated in the order of the enum's values. */
    const char *value;
    const char *def;      /* the default, as a value; NULL: none */
    const char *def_help; /* --help's word for it, when not def */
    const char *help;
    uint32_t min, max;   /* OPT_COUNT */
    unsigned flags;      /* OPT_STRING: OPT_NOT_EMPTY, OPT_EMPTY_IS_NONE */
    const char *heading; /* starts a group of --help */
} option;

/* The table, options.def. */
#define F(member)      offsetof(config, member)
#define B(member)      offsetof(config, broker.member)
#define HP_OPTION(...) { __VA_ARGS__ },
static const option options[] = {
#include "broker/options.def"
};
#undef HP_OPTION
#undef F
#undef B

/* Whether the option takes a value (--name VALUE, name = VALUE). */
static bool
takes_value(const option *o)
{
    return o->type != OPT_BOOL && o->type != OPT_ACTION;
}

/* The option a flag names ("--data", "-h"); NULL for none. */
static const option *
find_flag(const char *flag)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        const option *o = &options[i];
        if ((strncmp(flag, "--", 2) == 0 && strcmp(flag + 2, o->name) == 0) ||
            (o->short_name != 0 && flag[0] == '-' && flag[1] == o->short_name &&
             flag[2] == '\0')) {
            return o;
        }
    }
    return NULL;
}

int
config_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || !isdigit((unsigned char)s[0])) {
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0) {
        return -1;
    }
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0':
        break;
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    default:
        return -1;
    }
    if (*end != '\0') {
        end++;
        if (strcmp(end, "") != 0 && strcmp(end, "B") != 0 &&
            strcmp(end, "iB") != 0 && strcmp(end, "b") != 0) {
            return -1;
        }
    }
    if (shift > 0 && v > (~0ull >> shift)) {
        return -1;
    }
    *out = (size_t)(v << shift);
    return 0;
}

/* ---- values ------------------------------------------------------------- */

static hp_code
bad(hp_status *st, const char *flag, const char *value, const char *why)
{
    return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                         "%s '%.64s': %s", flag, value, why);
}

/* The index of word among the "|"-separated words of choices; -1. */
static int
choice_index(const char *choices, const char *word)
{
    size_t len = strlen(word);
    int i = 0;
    for (const char *p = choices;; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, word, n) == 0) {
            return i;
        }
        if (bar == NULL) {
            return -1;
        }
        p = bar + 1;
    }
}

/* Word i of choices, written to buf. */
static const char *
choice_word(const char *choices, int i, char *buf, size_t cap)
{
    const char *p = choices;
    for (; i > 0 && p != NULL; i--) {
        p = strchr(p, '|');
        p = p != NULL ? p + 1 : NULL;
    }
    const char *bar = p != NULL ? strchr(p, '|') : NULL;
    int n = p == NULL ? 0 : bar != NULL ? (int)(bar - p) : (int)strlen(p);
    snprintf(buf, cap, "%.*s", n, p != NULL ? p : "");
    return buf;
}

/* "must be a, b or c" for the words of choices. */
static const char *
choice_why(const char *choices, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "must be ");
    for (const char *p = choices; p != NULL && o < cap;) {
        const char *bar = strchr(p, '|');
        int n = bar != NULL ? (int)(bar - p) : (int)strlen(p);
        const char *sep = bar == NULL                    ? ""
                          : strchr(bar + 1, '|') == NULL ? " or "
                                                         : ", ";
        o += (size_t)snprintf(buf + o, cap - o, "%.*s%s", n, p, sep);
        p = bar != NULL ? bar + 1 : NULL;
    }
    return buf;
}

/* Sets o's field of c to the value v, which must outlive c. */
static hp_code
set_value(config *c, const option *o, const char *v, hp_status *st)
{
    char flag[64], why[96];
    void *field = (char *)c + o->field;

    snprintf(flag, sizeof(flag), "--%s", o->name);
    switch (o->type) {
    case OPT_LISTEN: {
        broker_config *b = &c->broker;
        if (b->n_listen == BROKER_MAX_LISTEN) {
            return bad(st, flag, v, "too many listeners");
        }
        b->listen[b->n_listen++] = v;
        return HP_OK;
    }
    case OPT_STRING: {
        const char *s = v;
        if (v[0] == '\0' && (o->flags & OPT_NOT_EMPTY) != 0) {
            return bad(st, flag, v, "must not be empty");
        }
        if (v[0] == '\0' && (o->flags & OPT_EMPTY_IS_NONE) != 0) {
            s = NULL;
        }
        memcpy(field, &s, sizeof(s));
        return HP_OK;
    }
    case OPT_SIZE: {
        size_t n;
        if (config_parse_size(v, &n) != 0 || n == 0) {
            return bad(st, flag, v, "not a size (e.g. 64M)");
        }
        memcpy(field, &n, sizeof(n));
        return HP_OK;
    }
    case OPT_COUNT: {
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || v[0] == '-' ||
            n < o->min || n > o->max) {
            snprintf(why, sizeof(why), "must be %lu-%lu", (unsigned long)o->min,
                     (unsigned long)o->max);
            return bad(st, flag, v, why);
        }
        uint32_t n32 = (uint32_t)n;
        memcpy(field, &n32, sizeof(n32));
        return HP_OK;
    }
    case OPT_CHOICE: {
        int i = choice_index(o->value, v);
        if (i < 0) {
            return bad(st, flag, v, choice_why(o->value, why, sizeof(why)));
        }
        memcpy(field, &i, sizeof(i));
        return HP_OK;
    }
    case OPT_BOOL:
    case OPT_ACTION: {
        bool yes = true;
        memcpy(field, &yes, sizeof(yes));
        return HP_OK;
    }
    case OPT_CONFIG:
        return HP_OK; /* read first, by config_file */
    }
    return HP_OK;
}

/* An OPT_CHOICE field is an enum, stored as an int. */
_Static_assert(sizeof(store_sync) == sizeof(int), "store_sync is an int");
_Static_assert(sizeof(hp_log_level) == sizeof(int), "hp_log_level is an int");
_Static_assert(sizeof(hp_log_format) == sizeof(int), "hp_log_format is an int");

/* Every default of the table, and the settings that have no flag. */
static void
defaults(config *c)
{
    hp_status st;

    memset(c, 0, sizeof(*c));
    c->broker.max_waits_per_conn = WAITS_PER_CONN;
    c->broker.max_wait_ms = MAX_WAIT_MS;
    c->broker.default_deadline_ms = DEFAULT_DEADLINE_MS;
    c->broker.max_group = MAX_GROUP;
    c->broker.replay_window_ms = REPLAY_WINDOW_MS;
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        if (options[i].def != NULL) {
            HP_ASSERT(set_value(c, &options[i], options[i].def, &st) == HP_OK);
        }
    }
}

void
broker_config_init(broker_config *b)
{
    config c;
    defaults(&c);
    *b = c.broker;
}

/* ---- the environment ---------------------------------------------------- */

static hp_code
apply_env(config *c, hp_status *st)
{
    hp_code code;
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        const option *o = &options[i];
        const char *v = o->env != NULL ? getenv(o->env) : NULL;
        if (v == NULL || v[0] == '\0' || o->type == OPT_CONFIG) {
            continue;
        }
        /* A boolean is set by 1 or true; anything else leaves it as is. */
        if (o->type == OPT_BOOL && strcmp(v, "1") != 0 &&
            strcmp(v, "true") != 0) {
            continue;
        }
        if (o->type != OPT_LISTEN) {
            if ((code = set_value(c, o, v, st)) != HP_OK) {
                return code;
            }
            continue;
        }
        /* The variable's listeners replace the file's and the default. */
        free(c->listen_env);
        if ((c->listen_env = strdup(v)) == NULL) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        }
        c->broker.n_listen = 0;
        char *save = NULL;
        for (char *tok = strtok_r(c->listen_env, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            if ((code = set_value(c, o, tok, st)) != HP_OK) {
                return code;
            }
        }
    }
#ifdef HOPPER_DEBUG_HOOKS
    const char *dbg = getenv("HOPPER_DEBUG_REPLY_BEFORE_SYNC");
    c->broker.debug_reply_before_sync = dbg != NULL && strcmp(dbg, "1") == 0;
#endif
    return HP_OK;
}

static hp_code
check(config *c, hp_status *st)
{
    broker_config *b = &c->broker;
    if (b->map_size > b->max_map_size) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "--map-size is above --max-map-size");
    }
    if (b->max_map_size < MAX_MAP_SIZE_MIN) {
        /* At the ceiling the store keeps at least 256K for claims and
         * acks (store_opts.full_reserve); a smaller map would refuse
         * every enqueue. */
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "--max-map-size is below 1M; at least 256K "
                             "of it is kept for claims and acks");
    }
    if (b->map_size < MAP_SIZE_MIN) {
        /* The map grows on demand, but not while the store creates its
         * tables at the first start: 8K failed there with MAP_FULL, after
         * the data dir's files were made; 32K worked. */
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "--map-size is below 64K; the map grows from "
                             "there as needed");
    }
    if (b->max_frame < b->max_payload + 4096) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "--max-frame must exceed --max-payload by at "
                             "least 4K, or no message of the largest size "
                             "could be sent");
    }
    if (b->max_payload > ((size_t)1 << 31)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "--max-payload is at most 2G");
    }
    if ((uint64_t)b->max_parked * 2 >= b->max_inflight) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "--max-parked must be below half of "
                             "--max-inflight (claims and Awaits may each "
                             "park that many), or parked long-polls could "
                             "take every slot");
    }
    if (b->max_partial_bytes < b->max_frame) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "--max-partial-total must be at least "
                             "--max-frame");
    }
    return HP_OK;
}

/* ---- the config file ------------------------------------------------- */

typedef struct file_ctx {
    config *c;
    FILE *f;
    int line;         /* of the line inih read last */
    bool listen_seen; /* the file's listeners replace the default */
    int err_line;     /* first error, 0 for none */
    char why[192];
} file_ctx;

/* inih's line reader, counting lines so a handler error names its line
 * (Debian's libinih is built without INI_HANDLER_LINENO). */
static char *
read_line(char *str, int num, void *stream)
{
    file_ctx *fc = stream;
    char *r = fgets(str, num, fc->f);
    if (r != NULL) {
        fc->line++;
    }
    return r;
}

static int
file_error(file_ctx *fc, const char *why, const char *name)
{
    if (fc->err_line == 0) {
        fc->err_line = fc->line;
        snprintf(fc->why, sizeof(fc->why), "%s '%.64s'", why, name);
    }
    return 0;
}

/* The option a file's key names: any that takes a value, and the
 * booleans; not --config itself nor what main does. */
static const option *
find_key(const char *name)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        const option *o = &options[i];
        if (strcmp(o->name, name) == 0 && o->type != OPT_CONFIG &&
            o->type != OPT_ACTION) {
            return o;
        }
    }
    return NULL;
}

static int
on_setting(void *user, const char *section, const char *name, const char *value)
{
    file_ctx *fc = user;
    config *c = fc->c;
    const option *o;
    hp_status st;

    if (strcmp(section, "hopperd") != 0) {
        return file_error(fc, "settings belong in a [hopperd] section, not",
                          section[0] != '\0' ? section : "(none)");
    }
    if ((o = find_key(name)) == NULL) {
        return file_error(fc, "unknown key", name);
    }
    if (o->type == OPT_BOOL) {
        bool yes = strcmp(value, "true") == 0;
        char why[96];
        if (!yes && strcmp(value, "false") != 0) {
            snprintf(why, sizeof(why), "%s must be true or false, not",
                     o->name);
            return file_error(fc, why, value);
        }
        memcpy((char *)c + o->field, &yes, sizeof(yes));
        return 1;
    }
    char **grown = realloc(c->owned, (c->n_owned + 1) * sizeof(*grown));
    char *v = strdup(value);
    if (grown != NULL) {
        c->owned = grown;
    }
    if (grown == NULL || v == NULL) {
        free(v);
        return file_error(fc, "out of memory at", name);
    }
    c->owned[c->n_owned++] = v;
    if (o->type == OPT_LISTEN && !fc->listen_seen) {
        c->broker.n_listen = 0;
        fc->listen_seen = true;
    }
    if (set_value(c, o, v, &st) != HP_OK) {
        if (fc->err_line == 0) {
            fc->err_line = fc->line;
            snprintf(fc->why, sizeof(fc->why), "%s", st.msg);
        }
        return 0;
    }
    return 1;
}

static hp_code
apply_file(config *c, const char *path, hp_status *st)
{
    file_ctx fc = { .c = c };

    fc.f = fopen(path, "r");
    if (fc.f == NULL) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "cannot read config file '%.128s': %s", path,
                             strerror(errno));
    }
    int rc = ini_parse_stream(read_line, &fc, on_setting, &fc);
    fclose(fc.f);
    if (fc.err_line != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "%.128s:%d: %s", path, fc.err_line, fc.why);
    }
    if (rc != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "%.128s:%d: not a [section] or key = value line",
                             path, rc);
    }
    return HP_OK;
}

/* The file named by --config FILE or --config=FILE, else by the config
 * option's variable. */
static const char *
config_file(int argc, char **argv)
{
    const char *path = getenv(find_flag("--config")->env);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        }
    }
    return path != NULL && path[0] != '\0' ? path : NULL;
}

/* ---- the command line -------------------------------------------------- */

/* argv[*i] and, for an option that takes one, its value (argv[*i + 1]
 * or after "="). */
static hp_code
apply_arg(config *c, int argc, char **argv, int *i, bool *listen_flag,
          hp_status *st)
{
    const char *a = argv[*i];
    const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    size_t n = eq != NULL ? (size_t)(eq - a) : strlen(a);
    char flag[64];
    const char *v = NULL;

    if (n >= sizeof(flag)) {
        return bad(st, "flag", a, "unknown");
    }
    memcpy(flag, a, n);
    flag[n] = '\0';
    const option *o = find_flag(flag);
    if (o == NULL && strncmp(a, "--", 2) != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "unexpected argument '%.64s' (see --help)", a);
    }
    /* A flag without a value takes no "=VALUE" either. */
    if (o == NULL || (eq != NULL && !takes_value(o))) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "unknown flag '%.64s' (see --help)", flag);
    }
    if (takes_value(o)) {
        if (eq != NULL) {
            v = eq + 1;
        } else if (*i + 1 < argc) {
            v = argv[++*i];
        } else {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                                 "%s needs a value", a);
        }
    }
    if (o->type == OPT_LISTEN && !*listen_flag) {
        /* Flags replace the environment's and the default listeners. */
        c->broker.n_listen = 0;
        *listen_flag = true;
    }
    return set_value(c, o, v, st);
}

hp_code
config_parse(int argc, char **argv, config *c, hp_status *st)
{
    hp_code code;
    bool listen_flag = false;

    defaults(c);
    const char *file = config_file(argc, argv);
    if (file != NULL && (code = apply_file(c, file, st)) != HP_OK) {
        return code;
    }
    if ((code = apply_env(c, st)) != HP_OK) {
        return code;
    }
    for (int i = 1; i < argc; i++) {
        if ((code = apply_arg(c, argc, argv, &i, &listen_flag, st)) != HP_OK) {
            return code;
        }
    }
    return check(c, st);
}

void
config_release(config *c)
{
    free(c->listen_env);
    c->listen_env = NULL;
    for (size_t i = 0; i < c->n_owned; i++) {
        free(c->owned[i]);
    }
    free(c->owned);
    c->owned = NULL;
    c->n_owned = 0;
}

/* ---- what the table prints ----------------------------------------------- */

void
config_print(const config *c, FILE *f)
{
    char word[32];

    fprintf(f,
            "# hopperd %s: the effective settings (hopperd --print-config)\n"
            "[hopperd]\n",
            BROKER_VERSION);
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        const option *o = &options[i];
        const void *field = (const char *)c + o->field;
        const char *s;
        size_t n;
        uint32_t n32;
        int k;
        bool yes;

        switch (o->type) {
        case OPT_LISTEN:
            for (size_t l = 0; l < c->broker.n_listen; l++) {
                fprintf(f, "%s = %s\n", o->name, c->broker.listen[l]);
            }
            break;
        case OPT_STRING:
            /* Paths only: the keys themselves stay in their 0600 files. */
            memcpy(&s, field, sizeof(s));
            if (s != NULL) {
                fprintf(f, "%s = %s\n", o->name, s);
            }
            break;
        case OPT_SIZE:
            memcpy(&n, field, sizeof(n));
            fprintf(f, "%s = %zu\n", o->name, n);
            break;
        case OPT_COUNT:
            memcpy(&n32, field, sizeof(n32));
            fprintf(f, "%s = %u\n", o->name, n32);
            break;
        case OPT_CHOICE:
            memcpy(&k, field, sizeof(k));
            fprintf(f, "%s = %s\n", o->name,
                    choice_word(o->value, k, word, sizeof(word)));
            break;
        case OPT_BOOL:
            memcpy(&yes, field, sizeof(yes));
            fprintf(f, "%s = %s\n", o->name, yes ? "true" : "false");
            break;
        case OPT_CONFIG:
        case OPT_ACTION:
            break;
        }
    }
}

#define USAGE_WIDTH 79 /* --help fits 80 columns */
#define USAGE_LEFT  22 /* where the text starts: "  --listen URL        " */

/* One option's entry of --help: the flag and its value on the left, the
 * help, the variable and the default word-wrapped to the right. */
static void
usage_option(FILE *f, const option *o)
{
    char left[64], text[640];
    const char *def = o->def_help != NULL ? o->def_help : o->def;
    bool show_def = def != NULL && o->type != OPT_BOOL;
    int n = 0;

    if (o->short_name != 0) {
        n = snprintf(left, sizeof(left), "-%c, ", o->short_name);
    }
    snprintf(left + n, sizeof(left) - (size_t)n, "--%s%s%s", o->name,
             o->value != NULL ? " " : "", o->value != NULL ? o->value : "");
    snprintf(text, sizeof(text), "%s%s%s%s%s%s%s", o->help,
             o->env != NULL ? " [" : "", o->env != NULL ? o->env : "",
             o->type == OPT_LISTEN ? ", comma-separated"
             : o->type == OPT_BOOL ? "=1"
                                   : "",
             o->env != NULL ? "]" : "", show_def ? " default " : "",
             show_def ? def : "");
    /* The text starts at USAGE_LEFT, under a left column too wide for
     * it; a word that would pass the width starts a line of its own. */
    int col = fprintf(f, "  %s", left);
    if (col < USAGE_LEFT) {
        col += fprintf(f, "%*s", USAGE_LEFT - col, "");
    } else {
        col = fprintf(f, "\n%*s", USAGE_LEFT, "") - 1;
    }
    for (const char *w = text; *w != '\0';) {
        int len = (int)strcspn(w, " ");
        if (w != text && col + 1 + len > USAGE_WIDTH) {
            col = fprintf(f, "\n%*s", USAGE_LEFT, "") - 1;
        } else if (w != text) {
            col += fprintf(f, " ");
        }
        col += fprintf(f, "%.*s", len, w);
        w += len;
        w += strspn(w, " ");
    }
    fputc('\n', f);
}

void
config_usage(FILE *f)
{
    fputs(
        "usage: hopperd [flags]\n"
        "\n"
        "Hopper's broker: durable lanes of messages, protobuf over SP.\n"
        "\n"
        "flags (environment variable in brackets; flag > env > config file >\n"
        "default):\n",
        f);
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        if (options[i].heading != NULL) {
            fprintf(f, "\n%s:\n", options[i].heading);
        }
        usage_option(f, &options[i]);
    }
    fputs("\n"
          "other commands:\n"
          "  hopperd keygen --keys FILE [--id ID] [--add]\n"
          "  hopperd token mint --keys FILE --scope S[,S...] --perm P[,P...]\n"
          "                     [--ttl 30d] [--key-id ID]\n"
          "  hopperd token inspect TOKEN\n"
          "  hopperd check --data DIR\n"
          "                     check that the store's tables agree (run it\n"
          "                     with hopperd stopped; exit 1 if they do not)\n"
          "\n"
          "SIZE takes K, M, G, T suffixes (powers of 1024). hopperd stops\n"
          "cleanly on SIGINT or SIGTERM: it answers what it has accepted,\n"
          "then closes the store. Exit status: 0 after a clean stop, 2 for a\n"
          "bad flag, 1 when it cannot start (busy port, unusable data dir).\n",
          f);
}
