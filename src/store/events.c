/*
 * events.c - state events: every transition of a message that carries a
 * state_webhook_url (enqueued, claimed, retry scheduled, delivered, dead)
 * writes one event message into the scope's events lane
 * (STORE_EVENTS_LANE), in the same transaction as the transition, which
 * the delivery part then POSTs to the URL like any delivery.
 *
 * A transition only notes its event (event_note copies what it needs);
 * the operation writes the notes when it ends (event_flush), after its own
 * lane cache is flushed, so the events lane's gauges are never counted by
 * two caches at once, and an operation that fails leaves no event behind.
 * An event never touches its message: it is a message of its own, with
 * its own attempts, backoff and dead letters.
 *
 * The payload is JSON, one object:
 *
 *   {"event_id":"<id>:<state>:<attempt>","message_id":"<id>",
 *    "lane":"<lane>","state":"<state>","attempt":<n>,"at_ms":<ms>,
 *    "result":"<text>" (delivered) | "error":"<text>" (retry, dead)}
 *
 * event_id is the idempotency key. attempt is the message's attempt count
 * after the transition: 0 when enqueued, the claim's number afterwards.
 * Result and error are cut at STORE_EVENT_TEXT_MAX bytes (then
 * "truncated":true follows); a result that is not UTF-8 is sent as
 * "result_base64".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/names.h"
#include "store/store_int.h"

const char *
store_event_name(store_event_kind k)
{
    switch (k) {
    case STORE_EVENT_ENQUEUED:
        return "enqueued";
    case STORE_EVENT_CLAIMED:
        return "claimed";
    case STORE_EVENT_RETRY_SCHEDULED:
        return "retry_scheduled";
    case STORE_EVENT_DELIVERED:
        return "delivered";
    case STORE_EVENT_DEAD:
        return "dead";
    }
    return "unknown";
}

/* A growing text; failed set once any append ran out of memory. */
typedef struct sb {
    char *p;
    size_t len, cap;
    bool failed;
} sb;

static void
sb_add(sb *b, const void *p, size_t n)
{
    if (b->failed || n > SIZE_MAX / 4 - b->len) {
        b->failed = true; /* the bound also keeps the sums below exact */
        return;
    }
    if (b->p == NULL || b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *q = realloc(b->p, cap);
        if (q == NULL) {
            b->failed = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_str(sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void
sb_u64(sb *b, uint64_t v)
{
    char text[24];
    int n = snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
    sb_add(b, text, (size_t)n);
}

/* A JSON string of UTF-8 text (checked by the caller). */
static void
sb_json(sb *b, const char *p, size_t n)
{
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            sb_add(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            int m = snprintf(esc, sizeof(esc), "\\u%04x", c);
            sb_add(b, esc, (size_t)m);
        } else {
            sb_add(b, &p[i], 1);
        }
    }
    sb_add(b, "\"", 1);
}

/* Longest prefix of p[0..n) within max bytes that does not cut a UTF-8
 * sequence. */
static size_t
utf8_cut(const char *p, size_t n, size_t max)
{
    if (n <= max) {
        return n;
    }
    size_t k = max;
    while (k > 0 && ((unsigned char)p[k] & 0xc0u) == 0x80u) {
        k--;
    }
    return k;
}

static void
sb_text_field(sb *b, const char *name, const char *p, size_t n)
{
    size_t keep = utf8_cut(p, n, STORE_EVENT_TEXT_MAX);
    sb_str(b, ",\"");
    sb_str(b, name);
    sb_str(b, "\":");
    sb_json(b, p, keep);
    if (keep < n) {
        sb_str(b, ",\"truncated\":true");
    }
}

static void
sb_result(sb *b, const uint8_t *p, size_t n)
{
    if (hp_utf8_valid((const char *)p, n)) {
        sb_text_field(b, "result", (const char *)p, n);
        return;
    }
    size_t keep = n < STORE_EVENT_TEXT_MAX ? n : STORE_EVENT_TEXT_MAX;
    char *enc = malloc(HP_B64_LEN(keep) + 1);
    if (enc == NULL) {
        b->failed = true;
        return;
    }
    size_t m = hp_b64_encode(p, keep, enc, HP_B64_PAD);
    sb_str(b, ",\"result_base64\":\"");
    sb_add(b, enc, m);
    sb_str(b, "\"");
    free(enc);
    if (keep < n) {
        sb_str(b, ",\"truncated\":true");
    }
}

hp_code
event_note(store_txn *t, hp_str scope, const hp_id *id, const record *r,
           store_event_kind kind, uint64_t now_ms, hp_status *st)
{
    char text[HP_ID_TEXT_LEN + 1];
    const char *state = store_event_name(kind);
    sb b = { NULL, 0, 0, false };

    if (r->hook_url.len == 0) {
        return HP_OK;
    }
    hp_id_format(id, text);
    /* The URL first: the note is one allocation, url then json. */
    sb_add(&b, r->hook_url.p, r->hook_url.len);
    size_t url_len = b.len;
    sb_str(&b, "{\"event_id\":\"");
    sb_str(&b, text);
    sb_str(&b, ":");
    sb_str(&b, state);
    sb_str(&b, ":");
    sb_u64(&b, r->attempts);
    sb_str(&b, "\",\"message_id\":\"");
    sb_str(&b, text);
    sb_str(&b, "\",\"lane\":");
    sb_json(&b, r->lane.p, r->lane.len);
    sb_str(&b, ",\"state\":\"");
    sb_str(&b, state);
    sb_str(&b, "\",\"attempt\":");
    sb_u64(&b, r->attempts);
    sb_str(&b, ",\"at_ms\":");
    sb_u64(&b, now_ms);
    if (kind == STORE_EVENT_DELIVERED) {
        sb_result(&b, r->result, r->result_len);
    } else if (kind == STORE_EVENT_RETRY_SCHEDULED ||
               kind == STORE_EVENT_DEAD) {
        sb_text_field(&b, "error", r->error.p, r->error.len);
    }
    sb_str(&b, "}");
    if (!b.failed && t->n_events == t->cap_events) {
        size_t cap = t->cap_events > 0 ? 2 * t->cap_events : 8;
        event_pending *q = realloc(t->events, cap * sizeof(*q));
        if (q == NULL) {
            b.failed = true;
        } else {
            t->events = q;
            t->cap_events = cap;
        }
    }
    if (b.failed) {
        free(b.p);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    event_pending *e = &t->events[t->n_events++];
    e->scope_len = (uint8_t)scope.len;
    memcpy(e->scope, scope.p, scope.len);
    e->url_len = url_len;
    e->json_len = b.len - url_len;
    e->buf = b.p;
    return HP_OK;
}

void
txn_events_free(store_txn *t)
{
    for (size_t i = 0; i < t->n_events; i++) {
        free(t->events[i].buf);
    }
    free(t->events);
    t->events = NULL;
    t->n_events = 0;
    t->cap_events = 0;
}

hp_code
event_flush(store_txn *t, hp_code code, uint64_t now_ms, hp_status *st)
{
    /* Taken off t first: an event carries no URL, so writing it notes
     * nothing, but nothing here relies on that. */
    event_pending *notes = t->events;
    size_t n = t->n_events;

    t->events = NULL;
    t->n_events = 0;
    t->cap_events = 0;
    for (size_t i = 0; i < n && code == HP_OK; i++) {
        const event_pending *e = &notes[i];
        store_header h[2] = {
            { hp_str_c("content-type"), hp_str_c("application/json") },
            { hp_str_c(STORE_EVENT_URL_HEADER), { e->buf, e->url_len } },
        };
        store_draft d;
        hp_id id;
        memset(&d, 0, sizeof(d));
        d.lane = hp_str_c(STORE_EVENTS_LANE);
        d.payload = e->buf + e->url_len;
        d.payload_len = e->json_len;
        d.headers = h;
        d.n_headers = 2;
        code = enqueue_internal(t, (hp_str){ e->scope, e->scope_len }, &d,
                                now_ms, &id, st);
    }
    for (size_t i = 0; i < n; i++) {
        free(notes[i].buf);
    }
    free(notes);
    return code;
}

hp_code
store_events_each(store_txn *t, store_events_fn fn, void *arg, hp_status *st)
{
    const hp_str events = hp_str_c(STORE_EVENTS_LANE);
    MDB_cursor *cur;
    MDB_val kv, v;
    hp_code code = HP_OK;
    int rc;

    if ((rc = mdb_cursor_open(t->mdb, t->s->db_lanes, &cur)) != 0) {
        return store_status_from_mdb(t->s, rc, st);
    }
    /* One scope per turn: its events lane looked up, then a jump past its
     * lanes (a name's length byte is at most 64, so 0xff sorts after every
     * lane of the scope): O(scopes * log n), however many lanes. */
    rc = txn_cursor_get(t, cur, &kv, &v, MDB_FIRST);
    while (rc == 0) {
        char name[HP_NAME_MAX];
        key_reader r;
        hp_str scope;
        key k;
        lane_entry e;
        hp_status ignored; /* a damaged lane record: Stats names it */

        key_reader_init(&r, kv.mv_data, kv.mv_size);
        if (key_read_name(&r, &scope) != 0 || scope.len == 0) {
            rc = txn_cursor_get(t, cur, &kv, &v, MDB_NEXT);
            continue;
        }
        memcpy(name, scope.p, scope.len); /* the cursor moves below */
        scope.p = name;
        key_lane(&k, scope, events);
        kv = key_val(&k);
        rc = txn_cursor_get(t, cur, &kv, &v, MDB_SET_KEY);
        if (rc == 0 &&
            lane_decode(v.mv_data, v.mv_size, scope, events, &e, &ignored) ==
                HP_OK &&
            e.gauge[G_PENDING] + e.gauge[G_DELAYED] + e.gauge[G_CLAIMED] > 0) {
            fn(arg, scope);
        } else if (rc != 0 && rc != MDB_NOTFOUND) {
            break;
        }
        key_scope(&k, scope);
        key_put_u8(&k, 0xff);
        kv = key_val(&k);
        rc = txn_cursor_get(t, cur, &kv, &v, MDB_SET_RANGE);
    }
    if (rc != MDB_NOTFOUND) {
        code = store_status_from_mdb(t->s, rc, st);
    }
    mdb_cursor_close(cur);
    return code;
}
