/*
 * cmd_admin.c - commands for operators: stats, lanes, lane show / set /
 * pause / resume, dead list / replay / purge, and ping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "output.h"

/* ---- stats and lanes ---- */

typedef int (*lane_fn)(cli *c, const hopper_lane_stats *s, void *arg);

/* Calls fn for every lane of the scope, following the cursor. */
static int
each_lane(cli *c, lane_fn fn, void *arg)
{
    hopper_lane_list *l;
    void *cursor = NULL;
    size_t cursor_len = 0;
    hopper_status st;
    hopper_client *h;
    int rc = 0;

    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    do {
        if (hopper_lanes(h, cursor, cursor_len, 0, &l, &st) != HOPPER_OK) {
            free(cursor);
            return cli_fail(c, &st);
        }
        for (size_t i = 0; i < l->n && rc == 0; i++) {
            rc = fn(c, &l->lanes[i], arg);
        }
        free(cursor);
        cursor = l->next_cursor;
        cursor_len = l->next_cursor_len;
        l->next_cursor = NULL; /* now ours */
        hopper_lane_list_free(l);
    } while (rc == 0 && cursor_len != 0);
    free(cursor);
    return rc;
}

static int
show_stats(cli *c, const hopper_lane_stats *s, void *arg)
{
    size_t *n = arg;

    if (c->json) {
        out_json(out_stats_json(s));
    } else {
        printf("%s", (*n)++ > 0 ? "\n" : "");
        out_stats_block(s);
    }
    return 0;
}

/* Moves the targets of more to the end of s's, and its cursor into s. */
static int
take_targets(const cli *c, hopper_lane_stats *s, hopper_lane_stats *more)
{
    size_t n = s->n_targets + more->n_targets;
    char **t = realloc(s->targets, (n ? n : 1) * sizeof(*t));

    if (t == NULL) {
        return cli_no_memory(c);
    }
    memcpy(t + s->n_targets, more->targets, more->n_targets * sizeof(*t));
    s->targets = t;
    s->n_targets = n;
    more->n_targets = 0; /* the strings are s's now */
    free(s->targets_next_cursor);
    s->targets_next_cursor = more->targets_next_cursor;
    s->targets_next_cursor_len = more->targets_next_cursor_len;
    more->targets_next_cursor = NULL;
    return 0;
}

/* One lane's stats: a page of targets from --targets-cursor, or with
 * --all-targets every page, merged into *out. */
static int
fetch_stats(cli *c, const cli_args *a, hopper_lane_stats **out)
{
    const char *hex = args_get(a, "targets-cursor");
    uint32_t limit = 0;
    void *cursor = NULL;
    size_t cursor_len = 0;
    hopper_lane_stats *more;
    hopper_status st;
    hopper_client *h;
    int rc;

    if ((rc = cli_opt_u32(c, a, "targets-limit", &limit)) != 0) {
        return rc;
    }
    if (hex != NULL &&
        hopper_cursor_parse(hex, &cursor, &cursor_len) != HOPPER_OK) {
        return cli_usage(c, "--targets-cursor wants the hex cursor printed "
                            "by a previous page");
    }
    if ((h = cli_client(c, &rc)) == NULL) {
        free(cursor);
        return rc;
    }
    rc = hopper_stats_page(h, a->pos[0], cursor, cursor_len, limit, out, &st);
    free(cursor);
    if (rc != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    while (args_has(a, "all-targets") && (*out)->targets_next_cursor_len > 0) {
        if (hopper_stats_page(h, a->pos[0], (*out)->targets_next_cursor,
                              (*out)->targets_next_cursor_len, limit, &more,
                              &st) != HOPPER_OK) {
            return cli_fail(c, &st);
        }
        rc = take_targets(c, *out, more);
        hopper_lane_stats_free(more);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int
cmd_stats(cli *c, const cli_args *a)
{
    hopper_lane_stats *s = NULL;
    size_t n = 0;
    int rc;

    if (a->n_pos == 0) {
        if (args_has(a, "targets-cursor") || args_has(a, "targets-limit") ||
            args_has(a, "all-targets")) {
            return cli_usage(c, "the --targets flags need a LANE");
        }
        rc = each_lane(c, show_stats, &n);
        if (rc == 0 && n == 0 && !c->json) {
            fputs("hopper: no lanes in this scope\n", stderr);
        }
        return rc;
    }
    if ((rc = fetch_stats(c, a, &s)) == 0) {
        rc = show_stats(c, s, &n);
    }
    hopper_lane_stats_free(s);
    return rc;
}

static int
lane_row(cli *c, const hopper_lane_stats *s, void *arg)
{
    char num[6][24];
    const uint64_t v[6] = {
        s->pending,   s->delayed, s->claimed,
        s->delivered, s->dead,    s->oldest_pending_age_ms
    };

    if (c->json) {
        out_json(json_pack(
            "{s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o}", "lane", s->lane,
            "paused", (int)s->settings.paused, "pending",
            out_json_u64(s->pending), "delayed", out_json_u64(s->delayed),
            "claimed", out_json_u64(s->claimed), "delivered",
            out_json_u64(s->delivered), "dead", out_json_u64(s->dead),
            "oldest_pending_age_ms", out_json_u64(s->oldest_pending_age_ms)));
        return 0;
    }
    for (size_t i = 0; i < 6; i++) {
        snprintf(num[i], sizeof(num[i]), "%llu", (unsigned long long)v[i]);
    }
    {
        const char *row[] = { s->lane, s->settings.paused ? "yes" : "no",
                              num[0],  num[1],
                              num[2],  num[3],
                              num[4],  num[5] };
        return out_table_row(arg, row) == 0 ? 0 : CLI_EXIT_OTHER;
    }
}

static int
cmd_lanes(cli *c, const cli_args *a)
{
    static const char *const hdr[] = { "LANE",    "PAUSED",   "PENDING",
                                       "DELAYED", "CLAIMED",  "DELIVERED",
                                       "DEAD",    "OLDEST_MS" };
    out_table *t = NULL;
    int rc;

    (void)a;
    if (!c->json && (t = out_table_new(8, hdr, 0xfcu)) == NULL) {
        return cli_no_memory(c);
    }
    rc = each_lane(c, lane_row, t);
    if (rc == 0 && t != NULL) {
        out_table_print(t);
    }
    if (rc == 0 && !c->json && out_table_rows(t) == 0) {
        fputs("hopper: no lanes in this scope\n", stderr);
    }
    out_table_free(t);
    return rc;
}

/* ---- lane show / set / pause / resume ---- */

static void
show_settings(const cli *c, const char *lane, const hopper_lane_settings *s)
{
    if (c->json) {
        json_t *o = json_pack("{s:s}", "lane", lane);
        json_t *settings = out_settings_json(s);

        if (o != NULL && settings != NULL) {
            json_object_update(o, settings);
        }
        json_decref(settings);
        out_json(o);
    } else {
        out_settings_block(s);
    }
}

/* hopper webhook secret set|rotate ID: the secret is read from stdin,
 * byte for byte, so it is never in argv (ps) or the shell's history. */
static int
secret_cmd(cli *c, const cli_args *a, bool rotate)
{
    hopper_status st;
    hopper_client *h;
    uint32_t active = 0;
    size_t len = 0;
    int rc = 0;
    void *value = cli_read_stdin(c, &len, &rc);

    if (value == NULL) {
        return rc;
    }
    if ((h = cli_client(c, &rc)) != NULL) {
        if (hopper_secret_set(h, a->pos[0], value, len, rotate, &active, &st) !=
            HOPPER_OK) {
            rc = cli_fail(c, &st);
        } else if (c->json) {
            out_json(json_pack("{s:s, s:I}", "secret_id", a->pos[0], "active",
                               (json_int_t)active));
        } else {
            printf("%s %u active\n", a->pos[0], (unsigned)active);
        }
    }
    memset(value, 0, len); /* no copy left behind in freed memory */
    free(value);
    return rc;
}

static int
cmd_secret_set(cli *c, const cli_args *a)
{
    return secret_cmd(c, a, false);
}

static int
cmd_secret_rotate(cli *c, const cli_args *a)
{
    return secret_cmd(c, a, true);
}

/* hopper webhook test LANE: one signed test POST, the answer printed. */
static int
cmd_webhook_test(cli *c, const cli_args *a)
{
    hopper_webhook_answer *w = NULL;
    hopper_status st;
    hopper_client *h;
    int rc = 0;

    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    if (hopper_webhook_test(h, a->pos[0], &w, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    if (c->json) {
        json_t *o =
            json_pack("{s:I, s:s, s:o, s:s}", "status", (json_int_t)w->status,
                      "outcome", w->outcome, "duration_ms",
                      out_json_u64(w->duration_ms), "error", w->error);
        if (o != NULL) {
            out_json_bytes(o, "body", w->body, w->body_len, true);
        }
        out_json(o);
    } else {
        char *body = out_preview(w->body, w->body_len, 200);
        printf("%-9s %u\n", "status", (unsigned)w->status);
        printf("%-9s %s\n", "outcome", w->outcome);
        printf("%-9s %llu ms\n", "duration",
               (unsigned long long)w->duration_ms);
        if (w->error[0] != '\0') {
            printf("%-9s %s\n", "error", w->error);
        }
        printf("%-9s %s\n", "body", body != NULL ? body : "");
        free(body);
    }
    hopper_webhook_answer_free(w);
    return 0;
}

static int
cmd_lane_show(cli *c, const cli_args *a)
{
    hopper_lane_settings s;
    hopper_status st;
    hopper_client *h;
    int rc;

    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    if (hopper_lane_get(h, a->pos[0], &s, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    show_settings(c, a->pos[0], &s);
    return 0;
}

/* Reads the lane set flags into *s and the mask (in flag order). */
static int
lane_set_flags(const cli *c, const cli_args *a, hopper_lane_settings *s,
               const char **mask, size_t *n_mask)
{
    const char *b = args_get(a, "backoff");
    int rc;

    *n_mask = 0;
    if ((rc = cli_opt_u32(c, a, "max-attempts", &s->max_attempts)) != 0 ||
        (rc = cli_opt_ms64(c, a, "backoff-base", &s->backoff_base_ms)) != 0 ||
        (rc = cli_opt_ms64(c, a, "backoff-cap", &s->backoff_cap_ms)) != 0 ||
        (rc = cli_opt_u32(c, a, "backoff-factor", &s->backoff_factor_pct)) !=
            0 ||
        (rc = cli_opt_u32(c, a, "jitter", &s->jitter_pct)) != 0 ||
        (rc = cli_opt_ms64(c, a, "retention", &s->retention_ms)) != 0 ||
        (rc = cli_opt_ms64(c, a, "dedupe-window", &s->dedupe_window_ms)) != 0 ||
        (rc = cli_opt_u32(c, a, "deliver-concurrency",
                          &s->deliver_concurrency)) != 0 ||
        (rc = cli_opt_u32(c, a, "deliver-timeout-ms",
                          &s->deliver_timeout_ms)) != 0 ||
        (rc = cli_opt_ms32(c, a, "callback-timeout",
                           &s->callback_timeout_ms)) != 0) {
        return rc;
    }
    const char *url = args_get(a, "deliver-url");
    const char *secret_id = args_get(a, "secret-id");
    if (url != NULL &&
        strlen(url) >= sizeof(s->deliver_url)) { /* the broker's words */
        return cli_usage(c, "--deliver-url must be at most %d bytes",
                         HOPPER_DELIVER_URL_MAX);
    }
    if (secret_id != NULL && strlen(secret_id) >= sizeof(s->secret_id)) {
        return cli_usage(c, "--secret-id must be at most 64 bytes");
    }
    snprintf(s->deliver_url, sizeof(s->deliver_url), "%s",
             url != NULL ? url : "");
    snprintf(s->secret_id, sizeof(s->secret_id), "%s",
             secret_id != NULL ? secret_id : "");
    if (b != NULL && (s->backoff = out_backoff_parse(b)) < 0) {
        return cli_usage(c, "unknown --backoff '%s'", b);
    }
    /* Only the flags given go in the mask, each under its proto name. */
    for (size_t i = 0; i < a->n_opts; i++) {
        static const char *const names[][2] = {
            { "max-attempts", "max_attempts" },
            { "backoff", "backoff" },
            { "backoff-base", "backoff_base_ms" },
            { "backoff-cap", "backoff_cap_ms" },
            { "backoff-factor", "backoff_factor_pct" },
            { "jitter", "jitter_pct" },
            { "retention", "retention_ms" },
            { "dedupe-window", "dedupe_window_ms" },
            { "deliver-url", "deliver_url" },
            { "secret-id", "secret_id" },
            { "deliver-concurrency", "deliver_concurrency" },
            { "deliver-timeout-ms", "deliver_timeout_ms" },
            { "callback-timeout", "callback_timeout_ms" },
        };
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            if (strcmp(a->opts[i].flag->name, names[k][0]) == 0) {
                mask[(*n_mask)++] = names[k][1];
            }
        }
    }
    if (*n_mask == 0) {
        return cli_usage(c, "'lane set' needs at least one setting flag");
    }
    return 0;
}

static int
cmd_lane_set(cli *c, const cli_args *a)
{
    hopper_lane_settings s = { 0 };
    hopper_lane_settings out;
    const char **mask = calloc(a->n_opts + 1, sizeof(char *));
    hopper_status st;
    hopper_client *h;
    size_t n_mask;
    int rc;

    if (mask == NULL) {
        return cli_no_memory(c);
    }
    if ((rc = lane_set_flags(c, a, &s, mask, &n_mask)) == 0 &&
        (h = cli_client(c, &rc)) != NULL) {
        if (hopper_lane_update(h, a->pos[0], &s, mask, n_mask, &out, &st) !=
            HOPPER_OK) {
            rc = cli_fail(c, &st);
        } else {
            show_settings(c, a->pos[0], &out);
        }
    }
    free(mask);
    return rc;
}

static int
pause_or_resume(cli *c, const cli_args *a, bool paused)
{
    hopper_status st;
    hopper_client *h;
    int rc;

    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    if (hopper_lane_pause(h, a->pos[0], paused, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    if (c->json) {
        out_json(
            json_pack("{s:s, s:b}", "lane", a->pos[0], "paused", (int)paused));
    } else {
        printf("lane %s %s\n", a->pos[0], paused ? "paused" : "resumed");
    }
    return 0;
}

static int
cmd_lane_pause(cli *c, const cli_args *a)
{
    return pause_or_resume(c, a, true);
}

static int
cmd_lane_resume(cli *c, const cli_args *a)
{
    return pause_or_resume(c, a, false);
}

/* ---- dead letters ---- */

static int
cmd_dead_list(cli *c, const cli_args *a)
{
    return cli_list_pages(c, a, true);
}

static int
dead_act(cli *c, const cli_args *a, bool purge)
{
    const char *const *ids = a->n_pos > 1 ? a->pos + 1 : NULL;
    bool all = args_has(a, "all");
    uint64_t total = 0;
    uint64_t count;
    uint32_t limit = 0;
    bool more = false;
    hopper_status st;
    hopper_client *h;
    int rc;

    if ((rc = cli_opt_u32(c, a, "limit", &limit)) != 0) {
        return rc;
    }
    if (all && ids != NULL) {
        return cli_usage(c, "--all is for the whole lane, not with ids");
    }
    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    do {
        int code = purge ? hopper_dead_purge(h, a->pos[0], ids, a->n_pos - 1,
                                             limit, &count, &more, &st)
                         : hopper_dead_replay(h, a->pos[0], ids, a->n_pos - 1,
                                              limit, &count, &more, &st);
        if (code != HOPPER_OK) {
            return cli_fail(c, &st);
        }
        total += count;
    } while (all && more && count > 0);
    if (c->json) {
        out_json(json_pack("{s:s, s:o, s:b}", "lane", a->pos[0], "count",
                           out_json_u64(total), "more", (int)more));
    } else {
        printf("%s %llu dead letter%s of %s%s\n", purge ? "purged" : "replayed",
               (unsigned long long)total, total == 1 ? "" : "s", a->pos[0],
               more ? "; more remain (run again, or use --all)" : "");
    }
    return 0;
}

static int
cmd_dead_replay(cli *c, const cli_args *a)
{
    return dead_act(c, a, false);
}

static int
cmd_dead_purge(cli *c, const cli_args *a)
{
    return dead_act(c, a, true);
}

/* ---- ping ---- */

static int
cmd_ping(cli *c, const cli_args *a)
{
    hopper_ping_info info;
    hopper_status st;
    hopper_client *h;
    uint64_t start;
    uint64_t rtt;
    char buf[40];
    int rc;

    (void)a;
    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    start = cli_mono_ms();
    if (hopper_ping(h, &info, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    rtt = cli_mono_ms() - start;
    if (c->json) {
        out_json(json_pack("{s:s, s:s, s:o, s:s, s:s, s:o}", "url", c->url,
                           "version", info.version, "now_ms",
                           out_json_u64(info.now_ms), "instance", info.instance,
                           "warning", info.warning, "rtt_ms",
                           out_json_u64(rtt)));
    } else {
        printf("hopperd %s at %s: instance %s, clock %s, round trip %llu ms\n",
               info.version, c->url, info.instance, out_time(info.now_ms, buf),
               (unsigned long long)rtt);
    }
    if (info.warning[0] != '\0' && !c->json) { /* --json: in the object */
        fprintf(stderr, "hopper: warning from broker: %s\n", info.warning);
    }
    return 0;
}

/* ---- backup ---- */

static int
cmd_backup(cli *c, const cli_args *a)
{
    hopper_backup_info info;
    hopper_status st;
    hopper_client *h;
    int rc;

    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    if (hopper_backup(h, a->pos[0], &info, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    if (c->json) {
        out_json(json_pack("{s:s, s:o, s:o}", "path", info.path, "bytes",
                           out_json_u64(info.bytes), "duration_ms",
                           out_json_u64(info.duration_ms)));
    } else {
        printf("backup written to %s on the broker's host: %llu bytes in "
               "%llu ms\n",
               info.path, (unsigned long long)info.bytes,
               (unsigned long long)info.duration_ms);
    }
    return 0;
}

/* ---- the table ---- */

static const cli_flag no_flags[] = { { NULL, 0, NULL, NULL } };

static const cli_flag stats_flags[] = {
    { "targets-limit", 0, "N", "targets per page (1-1000; default 1000)" },
    { "targets-cursor", 0, "HEX",
      "continue the targets from a previous page's cursor" },
    { "all-targets", 0, NULL, "follow the targets cursor through every page" },
    { NULL, 0, NULL, NULL },
};

static const cli_flag lane_set_flags_tbl[] = {
    { "max-attempts", 0, "N",
      "claims before a message is dead-lettered (for messages enqueued "
      "from now on)" },
    { "backoff", 0, "KIND", "exponential|linear|constant retry delays" },
    { "backoff-base", 0, "MS", "first retry delay" },
    { "backoff-cap", 0, "MS", "longest retry delay" },
    { "backoff-factor", 0, "PCT",
      "exponential growth per attempt (200 = "
      "x2)" },
    { "jitter", 0, "PCT", "randomise delays by +- PCT percent" },
    { "retention", 0, "MS", "keep acked messages and results this long" },
    { "dedupe-window", 0, "MS", "dedupe keys live this long (0 = off)" },
    { "deliver-url", 0, "URL",
      "hopperd POSTs each message to URL, signed (docs/webhooks.md); "
      "'' turns delivery off" },
    { "secret-id", 0, "ID",
      "the scope's signing secret a delivery lane uses (hopper webhook "
      "secret set)" },
    { "deliver-concurrency", 0, "N", "deliveries in flight (1-64; default 4)" },
    { "deliver-timeout-ms", 0, "MS",
      "a delivery is cut after MS (100-300000; default 10000)" },
    { "callback-timeout", 0, "MS",
      "a delivery answered 202 stays claimed this long for its callback "
      "(1s-24h; default 1h)" },
    { NULL, 0, NULL, NULL },
};

static const cli_flag dead_list_flags[] = {
    { "limit", 0, "N", "dead letters per page (1-1000; default 100)" },
    { "all", 0, NULL, "follow the cursor through every page" },
    { "cursor", 0, "HEX", "continue from a previous page's cursor" },
    { "payload", 0, NULL, "include payloads (and headers)" },
    { NULL, 0, NULL, NULL },
};

static const cli_flag dead_act_flags[] = {
    { "limit", 0, "N", "without ids: the oldest N (1-1000; default 100)" },
    { "all", 0, NULL, "without ids: repeat until none remain" },
    { NULL, 0, NULL, NULL },
};

const cli_command cli_admin_commands[] = {
    { "stats", "[LANE]", "counters of a lane (no LANE: every lane)",
      "Counts per state, the age of the oldest due message, totals since "
      "the lane\nwas created, and the targets holding pending or delayed "
      "messages: a page\nof them (1000 for a LANE, 100 per lane without "
      "one), with the cursor of the\nnext page when more remain. \"\" stands "
      "for messages enqueued without a target\n(the same in text and "
      "--json).",
      0, 1, stats_flags, cmd_stats },
    { "lanes", "", "one line per lane of the scope", NULL, 0, 0, no_flags,
      cmd_lanes },
    { "lane show", "LANE", "a lane's settings", NULL, 1, 1, no_flags,
      cmd_lane_show },
    { "lane set", "LANE", "change a lane's settings",
      "Only the settings given change; the others keep their value. The "
      "lane is\ncreated if it does not exist. Prints the resulting "
      "settings.\n--max-attempts applies to messages enqueued from now on: "
      "a message keeps the\nmax attempts it was enqueued with (enqueue "
      "--max-attempts, or the lane's then).",
      1, 1, lane_set_flags_tbl, cmd_lane_set },
    { "lane pause", "LANE", "stop handing out a lane's messages",
      "A paused lane still accepts messages.", 1, 1, no_flags, cmd_lane_pause },
    { "lane resume", "LANE", "hand out a paused lane's messages again", NULL, 1,
      1, no_flags, cmd_lane_resume },
    { "dead list", "LANE", "list a lane's dead letters, oldest first",
      "Paging as in 'hopper list'.", 1, 1, dead_list_flags, cmd_dead_list },
    { "dead replay", "LANE [ID...]",
      "put dead letters back to pending (attempts reset)",
      "With ids, each must be a dead letter of LANE, else nothing changes "
      "(exit 5).\nWithout ids, the oldest --limit of the lane.",
      1, SIZE_MAX, dead_act_flags, cmd_dead_replay },
    { "dead purge", "LANE [ID...]", "delete dead letters",
      "With ids, each must be a dead letter of LANE, else nothing changes "
      "(exit 5).\nWithout ids, the oldest --limit of the lane.",
      1, SIZE_MAX, dead_act_flags, cmd_dead_purge },
    { "webhook secret set", "ID",
      "store a webhook signing secret, read from stdin",
      "The secret is exactly the bytes on stdin (16-1024; printf '%s', not "
      "echo,\nwhich adds a newline). It becomes the only active value of ID "
      "in the scope.\nNothing reads a secret back. Needs admin "
      "(docs/webhooks.md).",
      1, 1, no_flags, cmd_secret_set },
    { "webhook secret rotate", "ID",
      "add a new value to a secret, keeping the previous one active",
      "Reads the new value from stdin as 'webhook secret set' does. "
      "Deliveries are\nsigned with both (the new first) until the next "
      "rotate or set, so receivers\ncan switch over. The secret must exist.",
      1, 1, no_flags, cmd_secret_rotate },
    { "webhook test", "LANE",
      "send one signed test POST to a delivery lane and show the answer",
      "The broker POSTs {\"hopper_test\":true,...} with Hopper-Test: true "
      "to the lane's\ndeliver_url exactly as it sends deliveries (signed, "
      "same timeout and address\nrule), and prints the receiver's status, "
      "what a delivery would do with it\n(ack, dead or retry) and the start "
      "of its body. No message changes. Exits 0\nwhenever the broker "
      "answered, whatever the receiver did.",
      1, 1, no_flags, cmd_webhook_test },
    { "ping", "", "check the broker answers; show its version and clock", NULL,
      0, 0, no_flags, cmd_ping },
    { "admin backup", "NAME",
      "copy the whole store, online, into the broker's --backup-dir",
      "A consistent, compacted copy of every scope, taken while traffic "
      "goes on,\nwritten as NAME (a plain file name, never overwritten) "
      "into the directory\nhopperd was started with --backup-dir. Needs "
      "admin on scope \"*\". A name used\nbefore is "
      "ALREADY_EXISTS/BACKUP_EXISTS (exit 10). Restore: put the file as\n"
      "data.mdb into an empty data dir (docs/operations.md).",
      1, 1, no_flags, cmd_backup },
    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};
