/*
 * config.c - flags, HOPPER_* variables and the INI config file. Every value
 * is checked here, so the broker starts only with a configuration it can
 * honour. The file is read with libinih; its keys are the flags' names, so
 * one table of settings serves all three sources.
 */
#include "broker/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/metrics.h"

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

void
config_usage(FILE *f)
{
    fputs(
        "usage: hopperd [flags]\n"
        "\n"
        "Hopper's broker: durable lanes of messages, protobuf over SP.\n"
        "\n"
        "flags (environment variable in brackets; flag > env > config file >\n"
        "default):\n"
        "  --config FILE       read settings from an INI file "
        "[HOPPER_CONFIG]:\n"
        "                      a [hopperd] section of key = value lines, keys\n"
        "                      named like the flags (listen, data, sync, ...;\n"
        "                      listen may repeat; allow-anonymous = true)\n"
        "  --print-config      print the effective settings as a config file\n"
        "                      and exit\n"
        "  --listen URL        listen on URL; repeatable [HOPPER_LISTEN, comma-"
        "separated]\n"
        "                      default tcp://127.0.0.1:7450; also\n"
        "                      tcp://0.0.0.0:PORT, tls+tcp://HOST:PORT,\n"
        "                      inproc://NAME (embedded)\n"
        "  --data DIR          data directory [HOPPER_DATA] default ./data\n"
        "  --sync full|none    full: every reply is on disk first (default);\n"
        "                      none: a machine crash may lose recent writes\n"
        "                      [HOPPER_SYNC]\n"
        "  --map-size SIZE     initial LMDB map [HOPPER_MAP_SIZE] default 64M\n"
        "  --max-map-size SIZE growth ceiling; beyond it enqueues fail with\n"
        "                      RESOURCE_EXHAUSTED/MAP_FULL, keeping 1/8 of\n"
        "                      it (up to 64M) for claims, acks and purges\n"
        "                      [HOPPER_MAX_MAP_SIZE] default 64G\n"
        "  --max-payload SIZE  largest message payload [HOPPER_MAX_PAYLOAD]\n"
        "                      default 1M\n"
        "  --max-frame SIZE    largest request, refused before it is read\n"
        "                      [HOPPER_MAX_FRAME] default 16M\n"
        "  --log-level LEVEL   error|warn|info|debug [HOPPER_LOG_LEVEL] "
        "default info\n"
        "  --log-format kv|json\n"
        "                      one line per event on stderr, key=value or\n"
        "                      a JSON object [HOPPER_LOG_FORMAT] default kv\n"
        "  --auth-keys FILE    require tokens signed by these keys (mode "
        "0600)\n"
        "                      [HOPPER_AUTH_KEYS]; see docs/security.md\n"
        "  --allow-anonymous   accept requests without tokens on a listener\n"
        "                      other hosts can reach "
        "[HOPPER_ALLOW_ANONYMOUS=1];\n"
        "                      without keys only loopback and inproc are\n"
        "                      allowed otherwise\n"
        "  --tls-cert FILE     certificate (PEM; a chain may follow) for\n"
        "                      tls+tcp:// listeners and --api-tls\n"
        "                      [HOPPER_TLS_CERT]\n"
        "  --tls-key FILE      its private key (PEM, unencrypted, not "
        "readable\n"
        "                      by others; may be the cert file) "
        "[HOPPER_TLS_KEY].\n"
        "                      A tls+tcp:// listener or --api-tls needs\n"
        "                      both; giving them with neither is an error\n"
        "  --tls-client-ca FILE\n"
        "                      require client certificates that chain to\n"
        "                      these CAs (PEM) [HOPPER_TLS_CLIENT_CA]\n"
        "  --http HOST:PORT    serve /metrics (Prometheus), /healthz and\n"
        "                      /readyz over HTTP, e.g. 127.0.0.1:7451\n"
        "                      [HOPPER_HTTP]; see docs/operations.md\n"
        "  --api HOST:PORT     serve every rpc over HTTP (Connect protocol,\n"
        "                      JSON or binary protobuf), e.g. "
        "127.0.0.1:7452\n"
        "                      [HOPPER_API]; see docs/http.md\n"
        "  --api-tls HOST:PORT the same over HTTPS, with --tls-cert,\n"
        "                      --tls-key and --tls-client-ca "
        "[HOPPER_API_TLS]\n"
        "  --metrics-max-lanes N\n"
        "                      lanes exported in /metrics, in name order\n"
        "                      [HOPPER_METRICS_MAX_LANES] default 1000\n"
        "  --backup-dir DIR    allow online backups (hopper admin backup\n"
        "                      NAME) into DIR [HOPPER_BACKUP_DIR]\n",
        f);
    fputs("\n"
          "transport budgets (docs/security.md, \"Memory budget\"):\n"
          "  --io-threads N      threads reading connections, 0 for one per\n"
          "                      CPU [HOPPER_IO_THREADS]\n"
          "                      default one per CPU (at most 8)\n"
          "  --max-connections N connections open at once; at the cap the\n"
          "                      longest-idle one is closed for a new one\n"
          "                      [HOPPER_MAX_CONNECTIONS] default 10000\n"
          "  --max-inflight N    requests read and not yet answered, in all;\n"
          "                      reading pauses at it [HOPPER_MAX_INFLIGHT]\n"
          "                      default 16384\n"
          "  --max-conn-inflight N\n"
          "                      the same per connection\n"
          "                      [HOPPER_MAX_CONN_INFLIGHT] default 1024\n"
          "  --max-parked N      long-poll claims waiting, in all (256 per\n"
          "                      connection), and as many Awaits; more get\n"
          "                      TOO_MANY_WAITERS [HOPPER_MAX_PARKED]\n"
          "                      default 4096\n"
          "  --max-partial-total SIZE\n"
          "                      bytes of frames still arriving, in all\n"
          "                      [HOPPER_MAX_PARTIAL_TOTAL] default 256M\n"
          "  --frame-timeout-ms MS\n"
          "                      close a connection whose unfinished frame\n"
          "                      gets no byte for this long\n"
          "                      [HOPPER_FRAME_TIMEOUT_MS] default 5000\n"
          "  --max-unsent SIZE   unsent reply bytes of one connection above\n"
          "                      which it is not read; one frame more closes\n"
          "                      it [HOPPER_MAX_UNSENT] default 8M\n"
          "  --max-unsent-total SIZE\n"
          "                      unsent reply bytes in all\n"
          "                      [HOPPER_MAX_UNSENT_TOTAL] default 512M\n"
          "  --send-timeout-ms MS\n"
          "                      close a connection whose replies make no\n"
          "                      progress for this long\n"
          "                      [HOPPER_SEND_TIMEOUT_MS] default 10000\n"
          "  --help              this text\n"
          "  --version           print the version\n"
          "\n"
          "\n"
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

static hp_code
bad(hp_status *st, const char *flag, const char *value, const char *why)
{
    return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                         "%s '%.64s': %s", flag, value, why);
}

static const char *const known_flags[] = {
    "--listen",
    "--data",
    "--sync",
    "--log-level",
    "--map-size",
    "--max-map-size",
    "--max-payload",
    "--max-frame",
    "--auth-keys",
    "--tls-cert",
    "--log-format",
    "--tls-key",
    "--tls-client-ca",
    "--http",
    "--api",
    "--api-tls",
    "--metrics-max-lanes",
    "--backup-dir",
    "--io-threads",
    "--max-connections",
    "--max-inflight",
    "--max-conn-inflight",
    "--max-parked",
    "--max-partial-total",
    "--frame-timeout-ms",
    "--max-unsent",
    "--max-unsent-total",
    "--send-timeout-ms",
};

static bool
known_flag(const char *flag)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(known_flags); i++) {
        if (strcmp(flag, known_flags[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* The flags that take a whole number: where it goes and its bounds. */
static hp_code
set_count(config *c, const char *flag, const char *v, bool *done, hp_status *st)
{
    broker_config *b = &c->broker;

    static const struct {
        const char *flag;
        size_t off;
        unsigned long min, max;
    } counts[] = {
        { "--io-threads", offsetof(broker_config, io_threads), 0, 8 },
        { "--max-connections", offsetof(broker_config, max_connections), 1,
          1000000 },
        { "--max-inflight", offsetof(broker_config, max_inflight), 16,
          10000000 },
        { "--max-conn-inflight", offsetof(broker_config, conn_inflight), 1,
          1000000 },
        { "--max-parked", offsetof(broker_config, max_parked), 1, 1000000 },
        { "--frame-timeout-ms", offsetof(broker_config, frame_timeout_ms), 100,
          3600000 },
        { "--send-timeout-ms", offsetof(broker_config, send_timeout_ms), 100,
          3600000 },
    };

    *done = false;
    for (size_t i = 0; i < HP_ARRAY_LEN(counts); i++) {
        if (strcmp(flag, counts[i].flag) != 0) {
            continue;
        }
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        *done = true;
        if (errno != 0 || end == v || *end != '\0' || v[0] == '-' ||
            n < counts[i].min || n > counts[i].max) {
            char why[64];
            snprintf(why, sizeof(why), "must be %lu-%lu", counts[i].min,
                     counts[i].max);
            return bad(st, flag, v, why);
        }
        uint32_t n32 = (uint32_t)n;
        memcpy((char *)b + counts[i].off, &n32, sizeof(n32));
        return HP_OK;
    }
    return HP_OK;
}

static hp_code
set_value(config *c, const char *flag, const char *v, hp_status *st)
{
    broker_config *b = &c->broker;
    size_t *sz = NULL;
    bool done;
    hp_code code = set_count(c, flag, v, &done, st);

    if (done) {
        return code;
    }

    if (strcmp(flag, "--listen") == 0) {
        if (b->n_listen == BROKER_MAX_LISTEN) {
            return bad(st, flag, v, "too many listeners");
        }
        b->listen[b->n_listen++] = v;
        return HP_OK;
    }
    if (strcmp(flag, "--auth-keys") == 0) {
        b->auth_keys = v;
        return HP_OK;
    }
    /* Whether the files fit together and with the listeners is checked
     * when the listeners open, where the files are read. */
    if (strcmp(flag, "--tls-cert") == 0) {
        b->tls_cert_file = v;
        return HP_OK;
    }
    if (strcmp(flag, "--tls-key") == 0) {
        b->tls_key_file = v;
        return HP_OK;
    }
    if (strcmp(flag, "--tls-client-ca") == 0) {
        b->tls_client_ca_file = v;
        return HP_OK;
    }
    if (strcmp(flag, "--backup-dir") == 0) {
        if (v[0] == '\0') {
            return bad(st, flag, v, "must not be empty");
        }
        b->backup_dir = v;
        return HP_OK;
    }
    if (strcmp(flag, "--http") == 0) {
        /* Parsed where it is served: NNG knows which forms it takes. */
        b->http_addr = v[0] != '\0' ? v : NULL;
        return HP_OK;
    }
    if (strcmp(flag, "--api") == 0) {
        b->api_addr = v[0] != '\0' ? v : NULL;
        return HP_OK;
    }
    if (strcmp(flag, "--api-tls") == 0) {
        b->api_tls_addr = v[0] != '\0' ? v : NULL;
        return HP_OK;
    }
    if (strcmp(flag, "--metrics-max-lanes") == 0) {
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n == 0 ||
            n > 100000) {
            return bad(st, flag, v, "must be 1-100000");
        }
        b->metrics_max_lanes = (uint32_t)n;
        return HP_OK;
    }
    if (strcmp(flag, "--data") == 0) {
        if (v[0] == '\0') {
            return bad(st, flag, v, "must not be empty");
        }
        b->data_dir = v;
        return HP_OK;
    }
    if (strcmp(flag, "--sync") == 0) {
        if (strcmp(v, "full") == 0) {
            b->sync = STORE_SYNC_FULL;
        } else if (strcmp(v, "none") == 0) {
            b->sync = STORE_SYNC_NONE;
        } else {
            return bad(st, flag, v, "must be full or none");
        }
        return HP_OK;
    }
    if (strcmp(flag, "--log-format") == 0) {
        if (hp_log_parse_format(v, &c->log_format) != 0) {
            return bad(st, flag, v, "must be kv or json");
        }
        return HP_OK;
    }
    if (strcmp(flag, "--log-level") == 0) {
        if (hp_log_parse_level(v, &c->log_level) != 0) {
            return bad(st, flag, v, "must be error, warn, info or debug");
        }
        return HP_OK;
    }
    if (strcmp(flag, "--map-size") == 0) {
        sz = &b->map_size;
    } else if (strcmp(flag, "--max-map-size") == 0) {
        sz = &b->max_map_size;
    } else if (strcmp(flag, "--max-payload") == 0) {
        sz = &b->max_payload;
    } else if (strcmp(flag, "--max-frame") == 0) {
        sz = &b->max_frame;
    } else if (strcmp(flag, "--max-partial-total") == 0) {
        sz = &b->max_partial_bytes;
    } else if (strcmp(flag, "--max-unsent") == 0) {
        sz = &b->conn_unsent;
    } else if (strcmp(flag, "--max-unsent-total") == 0) {
        sz = &b->max_unsent_bytes;
    } else {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "unknown flag '%.64s' (see --help)", flag);
    }
    if (config_parse_size(v, sz) != 0 || *sz == 0) {
        return bad(st, flag, v, "not a size (e.g. 64M)");
    }
    return HP_OK;
}

static const struct {
    const char *env;
    const char *flag;
} env_map[] = {
    { "HOPPER_DATA", "--data" },
    { "HOPPER_SYNC", "--sync" },
    { "HOPPER_MAP_SIZE", "--map-size" },
    { "HOPPER_MAX_MAP_SIZE", "--max-map-size" },
    { "HOPPER_MAX_PAYLOAD", "--max-payload" },
    { "HOPPER_MAX_FRAME", "--max-frame" },
    { "HOPPER_LOG_LEVEL", "--log-level" },
    { "HOPPER_LOG_FORMAT", "--log-format" },
    { "HOPPER_AUTH_KEYS", "--auth-keys" },
    { "HOPPER_TLS_CERT", "--tls-cert" },
    { "HOPPER_TLS_KEY", "--tls-key" },
    { "HOPPER_TLS_CLIENT_CA", "--tls-client-ca" },
    { "HOPPER_HTTP", "--http" },
    { "HOPPER_API", "--api" },
    { "HOPPER_API_TLS", "--api-tls" },
    { "HOPPER_BACKUP_DIR", "--backup-dir" },
    { "HOPPER_METRICS_MAX_LANES", "--metrics-max-lanes" },
    { "HOPPER_IO_THREADS", "--io-threads" },
    { "HOPPER_MAX_CONNECTIONS", "--max-connections" },
    { "HOPPER_MAX_INFLIGHT", "--max-inflight" },
    { "HOPPER_MAX_CONN_INFLIGHT", "--max-conn-inflight" },
    { "HOPPER_MAX_PARKED", "--max-parked" },
    { "HOPPER_MAX_PARTIAL_TOTAL", "--max-partial-total" },
    { "HOPPER_FRAME_TIMEOUT_MS", "--frame-timeout-ms" },
    { "HOPPER_MAX_UNSENT", "--max-unsent" },
    { "HOPPER_MAX_UNSENT_TOTAL", "--max-unsent-total" },
    { "HOPPER_SEND_TIMEOUT_MS", "--send-timeout-ms" },
};

static hp_code
apply_env(config *c, hp_status *st)
{
    hp_code code;
    for (size_t i = 0; i < HP_ARRAY_LEN(env_map); i++) {
        const char *v = getenv(env_map[i].env);
        if (v != NULL && v[0] != '\0' &&
            (code = set_value(c, env_map[i].flag, v, st)) != HP_OK) {
            return code;
        }
    }
#ifdef HOPPER_DEBUG_HOOKS
    const char *dbg = getenv("HOPPER_DEBUG_REPLY_BEFORE_SYNC");
    c->broker.debug_reply_before_sync = dbg != NULL && strcmp(dbg, "1") == 0;
#endif
    const char *anon = getenv("HOPPER_ALLOW_ANONYMOUS");
    if (anon != NULL && (strcmp(anon, "1") == 0 || strcmp(anon, "true") == 0)) {
        c->broker.allow_anonymous = true;
    }
    const char *l = getenv("HOPPER_LISTEN");
    if (l != NULL && l[0] != '\0') {
        c->listen_env = strdup(l);
        if (c->listen_env == NULL) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory");
        }
        c->broker.n_listen = 0;
        char *save = NULL;
        for (char *tok = strtok_r(c->listen_env, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            if ((code = set_value(c, "--listen", tok, st)) != HP_OK) {
                return code;
            }
        }
    }
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

static int
on_setting(void *user, const char *section, const char *name, const char *value)
{
    file_ctx *fc = user;
    config *c = fc->c;
    char flag[64];
    hp_status st;

    if (strcmp(section, "hopperd") != 0) {
        return file_error(fc, "settings belong in a [hopperd] section, not",
                          section[0] != '\0' ? section : "(none)");
    }
    if (strcmp(name, "allow-anonymous") == 0) {
        if (strcmp(value, "true") == 0) {
            c->broker.allow_anonymous = true;
        } else if (strcmp(value, "false") == 0) {
            c->broker.allow_anonymous = false;
        } else {
            return file_error(fc, "allow-anonymous must be true or false, not",
                              value);
        }
        return 1;
    }
    if (strlen(name) + 3 > sizeof(flag)) {
        return file_error(fc, "unknown key", name);
    }
    snprintf(flag, sizeof(flag), "--%s", name);
    if (!known_flag(flag)) {
        return file_error(fc, "unknown key", name);
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
    if (strcmp(flag, "--listen") == 0 && !fc->listen_seen) {
        c->broker.n_listen = 0;
        fc->listen_seen = true;
    }
    if (set_value(c, flag, v, &st) != HP_OK) {
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

/* The file named by --config FILE or --config=FILE, else HOPPER_CONFIG. */
static const char *
config_file(int argc, char **argv)
{
    const char *path = getenv("HOPPER_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        }
    }
    return path != NULL && path[0] != '\0' ? path : NULL;
}

void
config_print(const config *c, FILE *f)
{
    static const char *const levels[] = { "error", "warn", "info", "debug" };
    const broker_config *b = &c->broker;

    fprintf(f,
            "# hopperd %s: the effective settings (hopperd --print-config)\n"
            "[hopperd]\n",
            BROKER_VERSION);
    for (size_t i = 0; i < b->n_listen; i++) {
        fprintf(f, "listen = %s\n", b->listen[i]);
    }
    fprintf(f, "data = %s\n", b->data_dir);
    fprintf(f, "sync = %s\n", b->sync == STORE_SYNC_NONE ? "none" : "full");
    fprintf(f, "log-level = %s\n", levels[c->log_level]);
    fprintf(f, "log-format = %s\n",
            c->log_format == HP_LOG_JSON ? "json" : "kv");
    fprintf(f, "map-size = %zu\n", b->map_size);
    fprintf(f, "max-map-size = %zu\n", b->max_map_size);
    fprintf(f, "max-payload = %zu\n", b->max_payload);
    fprintf(f, "max-frame = %zu\n", b->max_frame);
    /* Paths only: the keys themselves stay in their 0600 files. */
    if (b->auth_keys != NULL) {
        fprintf(f, "auth-keys = %s\n", b->auth_keys);
    }
    if (b->tls_cert_file != NULL) {
        fprintf(f, "tls-cert = %s\n", b->tls_cert_file);
    }
    if (b->tls_key_file != NULL) {
        fprintf(f, "tls-key = %s\n", b->tls_key_file);
    }
    if (b->tls_client_ca_file != NULL) {
        fprintf(f, "tls-client-ca = %s\n", b->tls_client_ca_file);
    }
    fprintf(f, "allow-anonymous = %s\n", b->allow_anonymous ? "true" : "false");
    if (b->http_addr != NULL) {
        fprintf(f, "http = %s\n", b->http_addr);
    }
    if (b->api_addr != NULL) {
        fprintf(f, "api = %s\n", b->api_addr);
    }
    if (b->api_tls_addr != NULL) {
        fprintf(f, "api-tls = %s\n", b->api_tls_addr);
    }
    if (b->backup_dir != NULL) {
        fprintf(f, "backup-dir = %s\n", b->backup_dir);
    }
    fprintf(f, "io-threads = %u\n", b->io_threads);
    fprintf(f, "max-connections = %u\n", b->max_connections);
    fprintf(f, "max-inflight = %u\n", b->max_inflight);
    fprintf(f, "max-conn-inflight = %u\n", b->conn_inflight);
    fprintf(f, "max-parked = %u\n", b->max_parked);
    fprintf(f, "max-partial-total = %zu\n", b->max_partial_bytes);
    fprintf(f, "frame-timeout-ms = %u\n", b->frame_timeout_ms);
    fprintf(f, "max-unsent = %zu\n", b->conn_unsent);
    fprintf(f, "max-unsent-total = %zu\n", b->max_unsent_bytes);
    fprintf(f, "send-timeout-ms = %u\n", b->send_timeout_ms);
    fprintf(f, "metrics-max-lanes = %u\n",
            b->metrics_max_lanes != 0 ? b->metrics_max_lanes
                                      : METRICS_DEFAULT_MAX_LANES);
}

hp_code
config_parse(int argc, char **argv, config *c, hp_status *st)
{
    hp_code code;
    bool listen_flag = false;

    memset(c, 0, sizeof(*c));
    broker_config_init(&c->broker);
    c->log_level = HP_LOG_INFO;
    const char *file = config_file(argc, argv);
    if (file != NULL && (code = apply_file(c, file, st)) != HP_OK) {
        return code;
    }
    if ((code = apply_env(c, st)) != HP_OK) {
        return code;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->help = true;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            c->version = true;
            continue;
        }
        if (strcmp(a, "--allow-anonymous") == 0) {
            c->broker.allow_anonymous = true;
            continue;
        }
        if (strcmp(a, "--print-config") == 0) {
            c->print_config = true;
            continue;
        }
        if (strcmp(a, "--config") == 0 || strncmp(a, "--config=", 9) == 0) {
            /* Read first, by config_file. */
            if (strcmp(a, "--config") == 0 && ++i >= argc) {
                return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                                     "--config needs a value");
            }
            continue;
        }
        const char *eq = strchr(a, '=');
        char flag[64];
        const char *v;
        if (strncmp(a, "--", 2) == 0 && eq != NULL) {
            size_t n = (size_t)(eq - a);
            if (n >= sizeof(flag)) {
                return bad(st, "flag", a, "unknown");
            }
            memcpy(flag, a, n);
            flag[n] = '\0';
            v = eq + 1;
        } else {
            if (strlen(a) >= sizeof(flag)) {
                return bad(st, "flag", a, "unknown");
            }
            strcpy(flag, a);
            if (strncmp(a, "--", 2) != 0) {
                return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                                     "unexpected argument '%.64s' (see "
                                     "--help)",
                                     a);
            }
            if (!known_flag(flag)) {
                return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                                     "unknown flag '%.64s' (see --help)", a);
            }
            if (i + 1 >= argc) {
                return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                                     "%s needs a value", a);
            }
            v = argv[++i];
        }
        if (!known_flag(flag)) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                                 "unknown flag '%.64s' (see --help)", flag);
        }
        if (strcmp(flag, "--listen") == 0 && !listen_flag) {
            /* Flags replace the environment's and the default listeners. */
            c->broker.n_listen = 0;
            listen_flag = true;
        }
        if ((code = set_value(c, flag, v, st)) != HP_OK) {
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
