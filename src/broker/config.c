/*
 * config.c - flags and HOPPER_* variables. Every value is checked here, so
 * the broker starts only with a configuration it can honour.
 */
#include "broker/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
        "Hopper's broker: durable lanes of messages over NNG + protobuf.\n"
        "\n"
        "flags (environment variable in brackets; flag > env > default):\n"
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
        "  --auth-keys FILE    require tokens signed by these keys (mode "
        "0600)\n"
        "                      [HOPPER_AUTH_KEYS]; see docs/security.md\n"
        "  --allow-anonymous   accept requests without tokens on a listener\n"
        "                      other hosts can reach "
        "[HOPPER_ALLOW_ANONYMOUS=1];\n"
        "                      without keys only loopback and inproc are\n"
        "                      allowed otherwise\n"
        "  --tls-cert FILE     certificate (PEM; a chain may follow) for\n"
        "                      tls+tcp:// listeners [HOPPER_TLS_CERT]\n"
        "  --tls-key FILE      its private key (PEM, unencrypted, not "
        "readable\n"
        "                      by others; may be the cert file) "
        "[HOPPER_TLS_KEY].\n"
        "                      A tls+tcp:// listener needs both; giving "
        "them\n"
        "                      with no tls+tcp:// listener is an error\n"
        "  --tls-client-ca FILE\n"
        "                      require client certificates that chain to\n"
        "                      these CAs (PEM) [HOPPER_TLS_CLIENT_CA]\n"
        "  --help              this text\n"
        "  --version           print the version\n"
        "\n"
        "\n"
        "other commands:\n"
        "  hopperd keygen --keys FILE [--id ID] [--add]\n"
        "  hopperd token mint --keys FILE --scope S[,S...] --perm P[,P...]\n"
        "                     [--ttl 30d] [--key-id ID]\n"
        "  hopperd token inspect TOKEN\n"
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
    "--listen",    "--data",         "--sync",        "--log-level",
    "--map-size",  "--max-map-size", "--max-payload", "--max-frame",
    "--auth-keys", "--tls-cert",     "--tls-key",     "--tls-client-ca",
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

static hp_code
set_value(config *c, const char *flag, const char *v, hp_status *st)
{
    broker_config *b = &c->broker;
    size_t *sz = NULL;

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
    { "HOPPER_AUTH_KEYS", "--auth-keys" },
    { "HOPPER_TLS_CERT", "--tls-cert" },
    { "HOPPER_TLS_KEY", "--tls-key" },
    { "HOPPER_TLS_CLIENT_CA", "--tls-client-ca" },
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
    return HP_OK;
}

hp_code
config_parse(int argc, char **argv, config *c, hp_status *st)
{
    hp_code code;
    bool listen_flag = false;

    memset(c, 0, sizeof(*c));
    broker_config_init(&c->broker);
    c->log_level = HP_LOG_INFO;
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
}
