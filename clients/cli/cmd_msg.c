/*
 * cmd_msg.c - commands on messages: enqueue, claim, ack, nack, extend, get
 * and list. Each parses its flags, makes one library call (list may page),
 * and prints a table / block, or JSON lines with --json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "output.h"

#define MAX_HEADERS 64

/* ---- enqueue ---- */

/*
 * The payload: the PAYLOAD argument, or stdin when it is '-' or absent.
 * Absent, a terminal on stdin is refused (reading it would look like a
 * hang); '-' reads even a terminal, as asked. An empty payload, from
 * either, is refused unless --allow-empty says it is meant: an empty
 * stdin is more often a producer that failed upstream than a message.
 * *stdin_buf gets what to free.
 */
static int
enqueue_payload(const cli *c, const cli_args *a, hopper_draft *d,
                void **stdin_buf)
{
    int rc = 0;

    if (a->n_pos >= 2 && strcmp(a->pos[1], "-") != 0) {
        d->payload = a->pos[1];
        d->payload_len = strlen(a->pos[1]);
    } else if (a->n_pos < 2 && isatty(STDIN_FILENO)) {
        return cli_error(c, CLI_EXIT_USAGE, CLI_CODE_USAGE,
                         CLI_R_STDIN_IS_TERMINAL,
                         "no payload: give it as an argument or on stdin "
                         "(PAYLOAD '-' reads a terminal, until Ctrl-D)");
    } else if ((*stdin_buf = cli_read_stdin(c, &d->payload_len, &rc)) == NULL) {
        return rc;
    } else {
        d->payload = *stdin_buf;
    }
    if (d->payload_len == 0 && !args_has(a, "allow-empty")) {
        return cli_error(c, CLI_EXIT_USAGE, CLI_CODE_USAGE, CLI_R_EMPTY_PAYLOAD,
                         "the payload is empty; --allow-empty enqueues an "
                         "empty message");
    }
    return 0;
}

/* Splits each --header k=v in place into hs; returns how many, or -1. */
static int
parse_headers(const cli *c, const cli_args *a, hopper_header *hs, char **copies)
{
    const char *h;
    size_t n = 0;

    for (; (h = args_nth(a, "header", n)) != NULL; n++) {
        char *eq;

        if (n == MAX_HEADERS) {
            cli_usage(c, "at most %d headers", MAX_HEADERS);
            return -1;
        }
        if ((copies[n] = strdup(h)) == NULL ||
            (eq = strchr(copies[n], '=')) == NULL || eq == copies[n]) {
            free(copies[n]);
            copies[n] = NULL;
            cli_usage(c, "--header wants KEY=VALUE, not '%s'", h);
            return -1;
        }
        *eq = '\0';
        hs[n].key = copies[n];
        hs[n].value = eq + 1;
    }
    return (int)n;
}

static int
enqueue_flags(const cli *c, const cli_args *a, hopper_draft *d)
{
    int rc;

    d->lane = a->pos[0];
    d->target = args_get(a, "target");
    d->dedupe_key = args_get(a, "dedupe");
    d->state_webhook_url = args_get(a, "state-webhook-url");
    if ((rc = cli_opt_ms64(c, a, "delay", &d->delay_ms)) != 0 ||
        (rc = cli_opt_u64(c, a, "available-at", &d->available_at_ms)) != 0 ||
        (rc = cli_opt_u32(c, a, "priority", &d->priority)) != 0 ||
        (rc = cli_opt_u32(c, a, "max-attempts", &d->max_attempts)) != 0) {
        return rc;
    }
    return 0;
}

static void
print_enqueued(const cli *c, const hopper_enqueued *e)
{
    if (c->json) {
        out_json(json_pack("{s:s, s:b}", "id", e->id, "duplicate",
                           (int)e->duplicate));
    } else {
        printf("%s%s\n", e->id, e->duplicate ? " (duplicate)" : "");
    }
}

static int
cmd_enqueue(cli *c, const cli_args *a)
{
    hopper_header hs[MAX_HEADERS];
    char *copies[MAX_HEADERS] = { NULL };
    hopper_draft d = { 0 };
    hopper_enqueued e;
    hopper_status st;
    hopper_client *h;
    void *stdin_buf = NULL;
    int n_hdrs;
    int rc;

    if ((rc = enqueue_flags(c, a, &d)) != 0) {
        return rc;
    }
    if ((n_hdrs = parse_headers(c, a, hs, copies)) < 0) {
        rc = CLI_EXIT_USAGE;
        goto free_headers;
    }
    d.headers = hs;
    d.n_headers = (size_t)n_hdrs;
    if ((rc = enqueue_payload(c, a, &d, &stdin_buf)) == 0 &&
        (h = cli_client(c, &rc)) != NULL) {
        if (hopper_enqueue(h, &d, 1, &e, &st) != HOPPER_OK) {
            rc = cli_fail(c, &st);
        } else {
            print_enqueued(c, &e);
        }
    }
free_headers:
    free(stdin_buf);
    for (int i = 0; i < MAX_HEADERS; i++) {
        free(copies[i]);
    }
    return rc;
}

/* ---- claim ---- */

static int
cmd_claim(cli *c, const cli_args *a)
{
    hopper_claim_opts o = { 0 };
    hopper_batch *b;
    hopper_status st;
    hopper_client *h;
    int rc;

    o.target = args_get(a, "target");
    o.untargeted_only = args_has(a, "untargeted");
    o.consumer = args_get(a, "consumer");
    if ((rc = cli_opt_u32(c, a, "max", &o.max)) != 0 ||
        (rc = cli_opt_ms32(c, a, "lease", &o.lease_ms)) != 0 ||
        (rc = cli_opt_ms32(c, a, "wait", &o.wait_ms)) != 0) {
        return rc;
    }
    if (args_get(a, "max") != NULL && o.max == 0) {
        /* 0 would reach the broker as "unset" and claim one. */
        return cli_usage(c, "-n/--max must be 1-1000");
    }
    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    if (hopper_claim(h, a->pos[0], &o, &b, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    for (size_t i = 0; i < b->n; i++) {
        if (c->json) {
            out_json(out_message_json(&b->msgs[i], true, true));
        } else {
            printf("%s", i > 0 ? "\n" : "");
            out_message_block(&b->msgs[i], true, true);
        }
    }
    if (b->n == 0 && !c->json) {
        fputs("hopper: no message to claim\n", stderr);
    }
    hopper_batch_free(b);
    return 0;
}

/* ---- ack, nack, extend ---- */

static int
cmd_ack(cli *c, const cli_args *a)
{
    hopper_ack_item item = { 0 };
    hopper_status st;
    hopper_client *h;
    int rc;

    item.id = a->pos[0];
    if ((rc = cli_token_arg(c, a->pos[1], &item.token)) != 0) {
        return rc;
    }
    if ((item.result = args_get(a, "result")) != NULL) {
        item.result_len = strlen(item.result);
    }
    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    if (hopper_ack(h, &item, 1, NULL, 0, NULL, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    if (c->json) {
        out_json(json_pack("{s:s, s:b}", "id", item.id, "acked", 1));
    } else {
        printf("acked %s\n", item.id);
    }
    return 0;
}

static void
print_nacked(const cli *c, const char *id, const hopper_nack_result *r)
{
    char buf[40];

    if (c->json) {
        out_json(json_pack("{s:s, s:b, s:o}", "id", id, "dead", (int)r->dead,
                           "retry_at_ms", out_json_u64(r->retry_at_ms)));
    } else if (r->dead) {
        printf("nacked %s: attempts used up, now a dead letter\n", id);
    } else {
        printf("nacked %s: retry at %s\n", id, out_time(r->retry_at_ms, buf));
    }
}

static int
cmd_nack(cli *c, const cli_args *a)
{
    hopper_nack_opts o = { 0 };
    hopper_nack_result r;
    hopper_token tok;
    hopper_status st;
    hopper_client *h;
    int rc;

    if ((rc = cli_token_arg(c, a->pos[1], &tok)) != 0 ||
        (rc = cli_opt_ms64(c, a, "retry-in", &o.retry_in_ms)) != 0 ||
        (rc = cli_opt_u64(c, a, "retry-at", &o.retry_at_ms)) != 0) {
        return rc;
    }
    o.error = args_get(a, "error");
    o.keep_attempt = args_has(a, "keep-attempt");
    o.dead_letter = args_has(a, "dead-letter");
    if (o.keep_attempt && o.dead_letter) {
        return cli_usage(c, "give --keep-attempt or --dead-letter, not both");
    }
    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    if (hopper_nack(h, a->pos[0], &tok, &o, &r, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    print_nacked(c, a->pos[0], &r);
    return 0;
}

static int
cmd_extend(cli *c, const cli_args *a)
{
    uint32_t lease_ms = 0; /* the broker's default */
    uint64_t until = 0;
    hopper_token tok;
    hopper_status st;
    hopper_client *h;
    char buf[40];
    int rc;

    if ((rc = cli_token_arg(c, a->pos[1], &tok)) != 0 ||
        (rc = cli_opt_ms32(c, a, "lease", &lease_ms)) != 0) {
        return rc;
    }
    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    if (hopper_extend(h, a->pos[0], &tok, lease_ms, &until, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    if (c->json) {
        out_json(json_pack("{s:s, s:o}", "id", a->pos[0], "lease_expires_at_ms",
                           out_json_u64(until)));
    } else {
        printf("lease of %s now runs until %s\n", a->pos[0],
               out_time(until, buf));
    }
    return 0;
}

/* ---- get ---- */

static int
cmd_get(cli *c, const cli_args *a)
{
    hopper_message *m;
    hopper_status st;
    hopper_client *h;
    int rc;

    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    if (hopper_get(h, a->pos[0], &m, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    if (c->json) {
        out_json(out_message_json(m, false, true));
    } else {
        out_message_block(m, false, true);
    }
    hopper_message_free(m);
    return 0;
}

static int
cmd_await(cli *c, const cli_args *a)
{
    hopper_message *m;
    hopper_status st;
    hopper_client *h;
    uint32_t wait_ms = 0;
    int rc;

    if ((rc = cli_opt_ms32(c, a, "wait", &wait_ms)) != 0) {
        return rc;
    }
    if ((h = cli_client(c, &rc)) == NULL) {
        return rc;
    }
    if (hopper_await(h, a->pos[0], wait_ms, &m, &st) != HOPPER_OK) {
        return cli_fail(c, &st);
    }
    if (m == NULL) {
        if (!c->json) {
            fprintf(stderr, "hopper: message %s is not settled yet\n",
                    a->pos[0]);
        }
        return 0;
    }
    if (c->json) {
        out_json(out_message_json(m, false, false));
    } else {
        out_message_block(m, false, false);
    }
    hopper_message_free(m);
    return 0;
}

static const cli_flag enqueue_flags_tbl[] = {
    { "target", 0, "T", "routing label inside the lane" },
    { "dedupe", 0, "KEY",
      "dedupe key: a repeat within the lane's window "
      "returns the first id" },
    { "delay", 0, "MS", "not claimable before this much time has passed" },
    { "available-at", 0, "UNIX_MS", "not claimable before this time" },
    { "priority", 0, "N", "0 (claimed first, default) to 9" },
    { "max-attempts", 0, "N",
      "claims before dead-lettering (0: the lane's setting now; fixed "
      "from here on)" },
    { "header", 0, "K=V", "add a header (repeatable, up to 64)" },
    { "state-webhook-url", 0, "URL",
      "POST a signed event to URL on every state change "
      "(docs/webhooks.md)" },
    { "allow-empty", 0, NULL, "enqueue an empty payload (refused otherwise)" },
    { NULL, 0, NULL, NULL },
};

static const cli_flag claim_flags[] = {
    { "target", 0, "T", "only messages with this target" },
    { "untargeted", 0, NULL, "only messages enqueued without a target" },
    { "max", 'n', "N", "claim up to N messages (1-1000; default 1)" },
    { "lease", 0, "MS", "lease length (100ms-24h; default 30s)" },
    { "wait", 0, "MS",
      "long-poll up to this long (max 30s) when nothing "
      "is due" },
    { "consumer", 0, "NAME", "who claims, for people" },
    { NULL, 0, NULL, NULL },
};

static const cli_flag await_flags[] = {
    { "wait", 0, "MS",
      "wait up to this long (max 30s) for it to be settled; default: look "
      "once" },
    { NULL, 0, NULL, NULL },
};

static const cli_flag ack_flags[] = {
    { "result", 0, "TEXT", "keep TEXT with the delivered message" },
    { NULL, 0, NULL, NULL },
};

static const cli_flag nack_flags[] = {
    { "error", 0, "TEXT", "why it failed (kept as last_error)" },
    { "retry-in", 0, "MS", "retry after this long (default: lane backoff)" },
    { "retry-at", 0, "UNIX_MS", "retry at this time" },
    { "keep-attempt", 0, NULL,
      "give it back without using an attempt (a snooze; never dead)" },
    { "dead-letter", 0, NULL,
      "a permanent failure: a dead letter now, attempts left or not" },
    { NULL, 0, NULL, NULL },
};

static const cli_flag extend_flags[] = {
    { "lease", 0, "MS", "new lease from now (100ms-24h; default 30s)" },
    { NULL, 0, NULL, NULL },
};

static const cli_flag no_flags[] = { { NULL, 0, NULL, NULL } };

static const cli_flag list_flags[] = {
    { "state", 0, "S",
      "pending|delayed|claimed|delivered|dead|any "
      "(default any)" },
    { "limit", 0, "N", "messages per page (1-1000; default 100)" },
    { "all", 0, NULL, "follow the cursor through every page" },
    { "cursor", 0, "HEX", "continue from a previous page's cursor" },
    { "payload", 0, NULL, "include payloads (and headers, results)" },
    { NULL, 0, NULL, NULL },
};

static int
cmd_list(cli *c, const cli_args *a)
{
    return cli_list_pages(c, a, false);
}

const cli_command cli_msg_commands[] = {
    { "enqueue", "LANE [PAYLOAD|-]", "enqueue one message",
      "The payload is the PAYLOAD argument, or stdin when it is '-' or "
      "absent.\nWithout PAYLOAD, a terminal on stdin is refused ('-' reads "
      "it until Ctrl-D).\nAn empty payload is refused (exit 2) unless "
      "--allow-empty is given.\nPrints the new message's id, with "
      "'(duplicate)' when the dedupe key matched\nan earlier message. The "
      "message keeps its max attempts (the lane's, unless\n--max-attempts) "
      "even if the lane's setting changes later.",
      1, 2, enqueue_flags_tbl, cmd_enqueue },
    { "claim", "LANE", "claim due messages under a lease",
      "Prints each message's id, claim token (hex), attempts and payload; "
      "ack, nack\nor extend it with the id and token. Payloads that are not "
      "UTF-8 text are\nshown in base64. Prints nothing (and says so on "
      "stderr) when none is due.",
      1, 1, claim_flags, cmd_claim },
    { "ack", "ID TOKEN", "acknowledge a claimed message",
      "FAILED_PRECONDITION / LOST_CLAIM (exit 5) means the lease ran out or "
      "the\nmessage was settled with another token. Repeating a successful "
      "ack with\nthe same token is fine (exit 0).",
      2, 2, ack_flags, cmd_ack },
    { "nack", "ID TOKEN", "give a claim back for a retry",
      "The message is retried after the lane's backoff (or --retry-in), or "
      "becomes\na dead letter when its attempts are used up. --keep-attempt "
      "gives it back\nwithout using the attempt (at once, or --retry-in "
      "later); --dead-letter makes\nit a dead letter now.",
      2, 2, nack_flags, cmd_nack },
    { "extend", "ID TOKEN", "extend a held lease (heartbeat)", NULL, 2, 2,
      extend_flags, cmd_extend },
    { "get", "ID", "show one message by id", NULL, 1, 1, no_flags, cmd_get },
    { "await", "ID", "wait for a message to be delivered or dead",
      "Prints the message once it is settled: delivered, with the result its "
      "ack\ngave, or dead, with its last error (no payload: 'get' shows it). "
      "Prints\nnothing (and says so on stderr) when --wait runs out first. "
      "NOT_FOUND\n(exit 4) when there is no such message, or no longer (a "
      "lane with\nretention 0 keeps no delivered message).",
      1, 1, await_flags, cmd_await },
    { "list", "LANE", "list a lane's messages, a page at a time",
      "Without --all, prints one page; when more remain, the cursor for the "
      "next\npage goes to stderr (with --json, a last line "
      "{\"next_cursor\": HEX}).",
      1, 1, list_flags, cmd_list },
    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};
