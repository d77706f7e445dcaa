/*
 * cmd_list.c - paging through a lane's messages (list) or dead letters
 * (dead list). Without --all one page is shown and the cursor of the next
 * is reported; with --all the cursor is followed until the broker returns
 * none. People get one table over all pages, --json one line per message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "output.h"

#define PREVIEW_CHARS 40

typedef struct lister {
    cli *c;
    bool dead;
    bool payload;
    out_table *table; /* people only */
    size_t rows;
} lister;

static out_table *
new_table(const lister *l)
{
    static const char *const list_hdr[] = { "ID",     "STATE",    "TARGET",
                                            "PRI",    "ATTEMPTS", "AVAILABLE",
                                            "PAYLOAD" };
    static const char *const dead_hdr[] = {
        "ID", "TARGET", "ATTEMPTS", "DEAD AT", "LAST ERROR", "PAYLOAD"
    };

    if (l->dead) {
        return out_table_new(l->payload ? 6 : 5, dead_hdr, 1u << 2);
    }
    return out_table_new(l->payload ? 7 : 6, list_hdr, 1u << 3 | 1u << 4);
}

static int
add_row(lister *l, const hopper_message *m)
{
    char att[32];
    char when[40];
    char *preview = NULL;
    const char *target = m->target[0] != '\0' ? m->target : "-";
    char pri[12];
    int rc;

    snprintf(att, sizeof(att), "%u/%u", (unsigned)m->attempts,
             (unsigned)m->max_attempts);
    snprintf(pri, sizeof(pri), "%u", (unsigned)m->priority);
    if (l->payload) {
        preview = out_preview(m->payload, m->payload_len, PREVIEW_CHARS);
    }
    if (l->dead) {
        const char *row[] = { m->id,         target,
                              att,           out_time(m->finished_at_ms, when),
                              m->last_error, preview };
        rc = out_table_row(l->table, row);
    } else {
        const char *row[] = { m->id,  out_state_name(m->state),
                              target, pri,
                              att,    out_time(m->available_at_ms, when),
                              preview };
        rc = out_table_row(l->table, row);
    }
    free(preview);
    return rc;
}

static int
show_page(lister *l, const hopper_page *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (l->c->json) {
            out_json(out_message_json(&p->msgs[i], false, l->payload));
        } else if (add_row(l, &p->msgs[i]) != 0) {
            return cli_no_memory(l->c);
        }
        l->rows++;
    }
    return 0;
}

static void
report_cursor(const lister *l, const cli_args *a, const void *cursor,
              size_t cursor_len)
{
    char *hex = hopper_cursor_format(cursor, cursor_len);

    if (hex == NULL) {
        return;
    }
    if (l->c->json) {
        out_json(json_pack("{s:s}", "next_cursor", hex));
    } else {
        fprintf(stderr, "hopper: more remain: hopper %s %s --cursor %s\n",
                l->dead ? "dead list" : "list", a->pos[0], hex);
    }
    hopper_free(hex);
}

static int
fetch(const lister *l, hopper_client *h, const cli_args *a, int state,
      const void *cursor, size_t cursor_len, uint32_t limit, hopper_page **p)
{
    hopper_status st;
    int code;

    if (l->dead) {
        code = hopper_dead_list(h, a->pos[0], cursor, cursor_len, limit,
                                l->payload, p, &st);
    } else {
        code = hopper_list(h, a->pos[0], state, cursor, cursor_len, limit,
                           l->payload, p, &st);
    }
    return code == HOPPER_OK ? 0 : cli_fail(l->c, &st);
}

/* Follows the cursor (to the end with --all, else to the first page that
 * holds messages); *cursor is replaced by each page's next one. */
static int
walk(lister *l, hopper_client *h, const cli_args *a, int state, uint32_t limit,
     void **cursor, size_t *cursor_len)
{
    bool all = args_has(a, "all");
    hopper_page *p;
    int rc;

    for (;;) {
        if ((rc = fetch(l, h, a, state, *cursor, *cursor_len, limit, &p)) !=
                0 ||
            (rc = show_page(l, p)) != 0) {
            hopper_page_free(p);
            return rc;
        }
        if (p->n == 0 && p->next_cursor_len != 0 &&
            p->next_cursor_len == *cursor_len &&
            memcmp(p->next_cursor, *cursor, *cursor_len) == 0) {
            hopper_page_free(p);
            return cli_error(l->c, CLI_EXIT_OTHER, CLI_CODE_LOCAL,
                             CLI_R_CURSOR_LOOP,
                             "the broker returned the same cursor again");
        }
        free(*cursor);
        *cursor = p->next_cursor;
        *cursor_len = p->next_cursor_len;
        p->next_cursor = NULL; /* now ours */
        hopper_page_free(p);
        if (*cursor_len == 0) {
            return 0;
        }
        /* One page means one with messages: a short page may be empty
         * and still have a cursor. */
        if (!all && l->rows > 0) {
            report_cursor(l, a, *cursor, *cursor_len);
            return 0;
        }
    }
}

static int
list_options(lister *l, const cli_args *a, int *state, uint32_t *limit,
             void **cursor, size_t *cursor_len)
{
    const char *s = args_get(a, "state");
    const char *cur = args_get(a, "cursor");
    int rc;

    if (s != NULL && (*state = out_state_parse(s)) < 0) {
        return cli_usage(l->c, "unknown --state '%s'", s);
    }
    if ((rc = cli_opt_u32(l->c, a, "limit", limit)) != 0) {
        return rc;
    }
    if (cur != NULL &&
        hopper_cursor_parse(cur, cursor, cursor_len) != HOPPER_OK) {
        return cli_usage(l->c, "--cursor wants the hex cursor printed by a "
                               "previous page");
    }
    return 0;
}

int
cli_list_pages(cli *c, const cli_args *a, bool dead)
{
    lister l = { c, dead, args_has(a, "payload"), NULL, 0 };
    int state = HOPPER_STATE_ANY;
    uint32_t limit = 0;
    void *cursor = NULL;
    size_t cursor_len = 0;
    hopper_client *h;
    int rc;

    if ((rc = list_options(&l, a, &state, &limit, &cursor, &cursor_len)) != 0) {
        return rc;
    }
    if ((h = cli_client(c, &rc)) == NULL) {
        free(cursor);
        return rc;
    }
    if (!c->json && (l.table = new_table(&l)) == NULL) {
        free(cursor);
        return cli_no_memory(c);
    }
    rc = walk(&l, h, a, state, limit, &cursor, &cursor_len);
    free(cursor);
    if (rc == 0 && l.rows > 0) {
        out_table_print(l.table);
    }
    out_table_free(l.table);
    if (rc == 0 && l.rows == 0 && !c->json) {
        fprintf(stderr, "hopper: no %s\n", dead ? "dead letters" : "messages");
    }
    return rc;
}
