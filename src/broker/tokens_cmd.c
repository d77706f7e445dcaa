/*
 * tokens_cmd.c - `hopperd keygen`, `hopperd token mint`, `hopperd token
 * inspect`. A minted token goes to stdout and nowhere else; inspect shows
 * what a token grants, never a key.
 */
#include "broker/tokens_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "broker/auth.h"
#include "common/clock.h"

bool
tokens_cmd_matches(int argc, char **argv)
{
    return argc >= 2 &&
           (strcmp(argv[1], "keygen") == 0 || strcmp(argv[1], "token") == 0);
}

static int
usage(const char *why)
{
    fprintf(stderr,
            "hopperd: %s\n"
            "usage: hopperd keygen --keys FILE [--id ID] [--add]\n"
            "       hopperd token mint --keys FILE --scope S[,S...] "
            "--perm produce,consume,admin [--ttl 30d] [--key-id ID]\n"
            "       hopperd token inspect TOKEN\n",
            why);
    return 2;
}

/* Finds "--name VALUE" in argv[from..]; NULL if absent. */
static const char *
flag(int argc, char **argv, int from, const char *name)
{
    for (int i = from; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return argv[i + 1];
        }
    }
    return NULL;
}

static bool
has(int argc, char **argv, int from, const char *name)
{
    for (int i = from; i < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Rejects anything that is not one of the known flags (with a value when
 * it takes one), so a typo is never silently ignored. */
static bool
flags_known(int argc, char **argv, int from, const char *const *with_value,
            const char *const *bare)
{
    for (int i = from; i < argc; i++) {
        bool ok = false;
        for (size_t k = 0; with_value[k] != NULL && !ok; k++) {
            if (strcmp(argv[i], with_value[k]) == 0 && i + 1 < argc) {
                ok = true;
                i++;
            }
        }
        for (size_t k = 0; bare != NULL && bare[k] != NULL && !ok; k++) {
            ok = strcmp(argv[i], bare[k]) == 0;
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* "30d", "12h", "90m", "3600s", "500" (seconds) -> ms; -1 if bad. */
static int
parse_ttl(const char *s, uint64_t *ms)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1000;
    if (end == s || v == 0) {
        return -1;
    }
    switch (*end) {
    case '\0':
    case 's':
        break;
    case 'm':
        mul = 60ull * 1000;
        break;
    case 'h':
        mul = 3600ull * 1000;
        break;
    case 'd':
        mul = 86400ull * 1000;
        break;
    default:
        return -1;
    }
    if (*end != '\0' && end[1] != '\0') {
        return -1;
    }
    if (v > 3650ull * 86400 * 1000 / mul) {
        return -1; /* more than ten years */
    }
    *ms = v * mul;
    return 0;
}

static int
fail(const hp_status *st)
{
    fprintf(stderr, "hopperd: %s\n", st->msg);
    return 1;
}

static int
cmd_keygen(int argc, char **argv)
{
    static const char *const vals[] = { "--keys", "--id", NULL };
    static const char *const bare[] = { "--add", NULL };
    hp_status st;
    const char *path = flag(argc, argv, 2, "--keys");
    const char *id = flag(argc, argv, 2, "--id");
    bool add = has(argc, argv, 2, "--add");
    char auto_id[32];

    if (!flags_known(argc, argv, 2, vals, bare) || path == NULL) {
        return usage("keygen needs --keys FILE");
    }
    if (id == NULL) {
        /* Date-stamped ids make rotations easy to follow. */
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(auto_id, sizeof(auto_id), "k%Y%m%d%H%M%S", &tm);
        id = auto_id;
    }
    if (auth_keygen(path, id, add, &st) != HP_OK) {
        return fail(&st);
    }
    printf("%s key '%s' to %s (mode 0600)\n", add ? "added" : "wrote", id,
           path);
    return 0;
}

static int
cmd_mint(int argc, char **argv)
{
    static const char *const vals[] = { "--keys", "--scope",  "--perm",
                                        "--ttl",  "--key-id", NULL };
    hp_status st;
    auth_keyset ks;
    auth_grant g;
    char token[AUTH_TOKEN_MAX];
    uint64_t ttl = 30ull * 86400 * 1000;
    const char *path = flag(argc, argv, 3, "--keys");
    const char *scopes = flag(argc, argv, 3, "--scope");
    const char *perms = flag(argc, argv, 3, "--perm");
    const char *ttl_text = flag(argc, argv, 3, "--ttl");

    if (!flags_known(argc, argv, 3, vals, NULL) || path == NULL ||
        scopes == NULL || perms == NULL) {
        return usage("token mint needs --keys, --scope and --perm");
    }
    memset(&g, 0, sizeof(g));
    if (auth_parse_perms(perms, &g.perms) != 0) {
        return usage("--perm takes produce, consume and admin, comma "
                     "separated");
    }
    if (ttl_text != NULL && parse_ttl(ttl_text, &ttl) != 0) {
        return usage("--ttl takes a duration such as 3600s, 90m, 12h, 30d "
                     "(at most ten years)");
    }
    for (const char *s = scopes; *s != '\0';) {
        size_t n = strcspn(s, ",");
        if (g.n_scopes == AUTH_MAX_SCOPES || n == 0 || n > 64) {
            return usage("--scope takes 1-16 scope names (or *), comma "
                         "separated");
        }
        memcpy(g.scopes[g.n_scopes], s, n);
        g.scopes[g.n_scopes++][n] = '\0';
        s += n + (s[n] == ',' ? 1 : 0);
    }
    if (auth_load_keys(path, &ks, &st) != HP_OK) {
        return fail(&st);
    }
    g.issued_at_ms = hp_wall_ms();
    g.expires_at_ms = g.issued_at_ms + ttl;
    hp_code code = auth_mint(&ks, flag(argc, argv, 3, "--key-id"), &g, token,
                             sizeof(token), &st);
    OPENSSL_cleanse(&ks, sizeof(ks));
    if (code != HP_OK) {
        return fail(&st);
    }
    printf("%s\n", token);
    return 0;
}

static void
print_time(const char *label, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-10s %s\n", label, buf);
}

static int
cmd_inspect(int argc, char **argv)
{
    hp_status st;
    auth_grant g;
    char perms[32];

    if (argc != 4) {
        return usage("token inspect needs exactly one TOKEN");
    }
    if (auth_parse(hp_str_c(argv[3]), &g, &st) != HP_OK) {
        return fail(&st);
    }
    auth_format_perms(g.perms, perms, sizeof(perms));
    printf("%-10s %s\n", "key", g.key_id);
    printf("%-10s", "scopes");
    for (size_t i = 0; i < g.n_scopes; i++) {
        printf("%s%s", i == 0 ? " " : ",", g.scopes[i]);
    }
    printf("\n%-10s %s\n", "perms", perms);
    print_time("issued", g.issued_at_ms);
    print_time("expires", g.expires_at_ms);
    if (hp_wall_ms() >= g.expires_at_ms) {
        printf("%-10s %s\n", "status", "expired");
    }
    printf("(the signature is checked by the broker, not here)\n");
    return 0;
}

int
tokens_cmd_main(int argc, char **argv)
{
    if (strcmp(argv[1], "keygen") == 0) {
        return cmd_keygen(argc, argv);
    }
    if (argc >= 3 && strcmp(argv[2], "mint") == 0) {
        return cmd_mint(argc, argv);
    }
    if (argc >= 3 && strcmp(argv[2], "inspect") == 0) {
        return cmd_inspect(argc, argv);
    }
    return usage("unknown token command");
}
