/*
 * awaits.c - parked Awaits and the one place their parking ends.
 *
 * Wake-ups: once a group's ops are applied, the store reports the messages
 * the group delivered or dead-lettered; the writer then runs every Await
 * parked on one of them inside the same transaction (awaits_wake), so its
 * answer goes out with that commit. Several clients may await one message:
 * all of them are woken. When the group settled more messages than the
 * store keeps notes for, every parked Await runs again; one whose message
 * is still unsettled parks again in its old place.
 */
#include "broker/awaits.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"

#define AWAITS_MAX_NOTES 256

/* How parking ends; see await_complete. */
typedef enum await_end {
    AWAIT_WOKEN,     /* its message settled: run it again */
    AWAIT_TIMED_OUT, /* its wait ran out: an empty response */
    AWAIT_CANCELLED, /* its client hung up: an empty response, unheard */
    AWAIT_SHUTDOWN,  /* the broker stops: an empty response */
    AWAIT_REFUSED,   /* it could not be parked: the error */
} await_end;

/* A message the group being committed settled: the table's key. */
typedef struct settled_key {
    uint8_t scope_len;
    char scope[HP_NAME_MAX];
    char id[HP_ID_TEXT_LEN + 1];
} settled_key;

struct awaits {
    waiters *w;
    awaits_answer_fn answer;
    void (*parked)(void *arg);
    void *parked_arg;
    _Atomic bool stopping;

    /* Writer thread only: the messages the group being committed settled,
     * and the next of them to wake Awaits for. */
    settled_key notes[AWAITS_MAX_NOTES];
    size_t n_notes, next_note;
    bool all; /* more than the list holds: any may have settled */
};

/*
 * Ends one parking of aw, exactly once: called by the thread that took aw
 * out of the table, or that never got it in. A woken Await whose client is
 * still there is handed back (its op) to run again; any other end answers
 * it, and it is gone afterwards.
 */
static commitq_op *
await_complete(awaits *a, await_wait *aw, await_end end, const hp_status *why)
{
    hp_status st;

    HP_ASSERT(!aw->ended);
    aw->ended = true;
    if (end == AWAIT_WOKEN) {
        if (listener_req_open(aw->rq)) {
            aw->op->deadline_mono_ms = 0; /* admitted long ago */
            return aw->op;
        }
        end = AWAIT_CANCELLED;
    }
    if (end == AWAIT_REFUSED) {
        a->answer(aw, why->code, why);
        return NULL;
    }
    hp_status_clear(&st);
    a->answer(aw, HP_OK, &st);
    return NULL;
}

static await_wait *
await_of(waiter *wt)
{
    return (await_wait *)((char *)wt - offsetof(await_wait, wt));
}

/* Completes every Await of a list the table handed back. */
static void
complete_all(awaits *a, waiter *list, await_end end)
{
    while (list != NULL) {
        waiter *next = list->out_next;
        commitq_op *op = await_complete(a, await_of(list), end, NULL);
        HP_ASSERT(op == NULL);
        list = next;
    }
}

hp_code
awaits_new(const awaits_opts *o, awaits **out, hp_status *st)
{
    awaits *a = calloc(1, sizeof(*a));
    hp_code code;

    if (a == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    if ((code = waiters_new(o->max_parked, o->max_per_conn, &a->w, st)) !=
        HP_OK) {
        free(a);
        return code;
    }
    a->answer = o->answer;
    a->parked = o->parked;
    a->parked_arg = o->parked_arg;
    atomic_init(&a->stopping, false);
    *out = a;
    return HP_OK;
}

void
awaits_free(awaits *a)
{
    if (a == NULL) {
        return;
    }
    HP_ASSERT(waiters_count(a->w) == 0);
    waiters_free(a->w);
    free(a);
}

static bool
key_is(const settled_key *k, hp_str scope, const char *id)
{
    return k->scope_len == scope.len &&
           memcmp(k->scope, scope.p, scope.len) == 0 && strcmp(k->id, id) == 0;
}

/* Writer thread: whether the group just committed settled (scope, id). */
static bool
settled_in_group(const awaits *a, hp_str scope, const char *id)
{
    if (a->all) {
        return true;
    }
    for (size_t i = 0; i < a->n_notes; i++) {
        if (key_is(&a->notes[i], scope, id)) {
            return true;
        }
    }
    return false;
}

commitq_op *
awaits_park(awaits *a, await_wait *aw, hp_str scope, const hp_id *id,
            uint64_t until_mono_ms)
{
    char text[HP_ID_TEXT_LEN + 1];
    hp_status st;

    aw->ended = false;
    if (atomic_load(&a->stopping)) {
        return await_complete(a, aw, AWAIT_SHUTDOWN, NULL);
    }
    hp_id_format(id, text);
    /* An Await applied before the ack of its own group found the message
     * unsettled, and the wake-up came too early for it: it runs once more
     * instead of parking. */
    if (settled_in_group(a, scope, text)) {
        return await_complete(a, aw, AWAIT_WOKEN, NULL);
    }
    listener_req_waiting(aw->rq);
    /* Once parked, aw may be woken, timed out or cancelled by another
     * thread at any moment: what is looked at afterwards is held
     * separately. */
    listener_conn *conn = listener_conn_hold(aw->rq);
    uint32_t conn_id = aw->rq->conn_id;
    hp_code code = waiters_park(a->w, &aw->wt, conn_id, scope, hp_str_c(text),
                                until_mono_ms, &st);
    if (code != HP_OK) {
        listener_conn_release(conn);
        return await_complete(a, aw, AWAIT_REFUSED, &st);
    }
    /* The broker may have begun to stop after the check above, and
     * awaits_stop then found nothing to take. */
    if (atomic_load(&a->stopping)) {
        listener_conn_release(conn);
        complete_all(a, waiters_take_all(a->w), AWAIT_SHUTDOWN);
        return NULL;
    }
    /* The client may have hung up while the Await was handled, before it
     * was parked, and awaits_cancel_conn then found nothing to take. */
    bool open = listener_conn_is_open(conn);
    listener_conn_release(conn);
    if (!open) {
        awaits_cancel_conn(a, conn_id);
        return NULL;
    }
    a->parked(a->parked_arg);
    return NULL;
}

/* Writer thread: a message the group settled. */
static void
note_settled(void *arg, hp_str scope, const hp_id *id)
{
    awaits *a = arg;
    char text[HP_ID_TEXT_LEN + 1];

    if (a->all) {
        return;
    }
    hp_id_format(id, text);
    for (size_t i = 0; i < a->n_notes; i++) {
        if (key_is(&a->notes[i], scope, text)) {
            return;
        }
    }
    if (a->n_notes == AWAITS_MAX_NOTES) {
        a->all = true; /* cheaper than tracking them all */
        return;
    }
    settled_key *k = &a->notes[a->n_notes++];
    k->scope_len = (uint8_t)scope.len;
    memcpy(k->scope, scope.p, scope.len);
    memcpy(k->id, text, sizeof(text));
}

/* Writer thread: the next parked Await of a message the group settled, or
 * any when the group settled too many to list. */
static waiter *
next_waiter(awaits *a)
{
    if (a->all) {
        return waiters_take_any(a->w);
    }
    for (; a->next_note < a->n_notes; a->next_note++) {
        const settled_key *k = &a->notes[a->next_note];
        hp_str scope = { k->scope, k->scope_len };
        waiter *wt = waiters_take_oldest(a->w, scope, hp_str_c(k->id));
        if (wt != NULL) {
            return wt; /* the same note again next time: others may wait */
        }
    }
    return NULL;
}

commitq_op *
awaits_wake(awaits *a, store_txn *t, bool first)
{
    bool all = false;

    if (first) {
        a->n_notes = a->next_note = 0;
        a->all = false;
    }
    store_txn_take_settled(t, note_settled, a, &all);
    a->all = a->all || all;
    if (waiters_count(a->w) == 0) {
        return NULL; /* the usual case: no one awaits anything */
    }
    waiter *wt;
    while ((wt = next_waiter(a)) != NULL) {
        commitq_op *op = await_complete(a, await_of(wt), AWAIT_WOKEN, NULL);
        if (op != NULL) {
            return op;
        }
    }
    return NULL;
}

void
awaits_cancel_conn(awaits *a, uint32_t conn_id)
{
    complete_all(a, waiters_take_conn(a->w, conn_id), AWAIT_CANCELLED);
}

uint64_t
awaits_next_deadline(awaits *a)
{
    return waiters_next_deadline(a->w);
}

void
awaits_expire(awaits *a, uint64_t now_mono_ms)
{
    complete_all(a, waiters_take_expired(a->w, now_mono_ms), AWAIT_TIMED_OUT);
}

void
awaits_stop(awaits *a)
{
    atomic_store(&a->stopping, true);
    complete_all(a, waiters_take_all(a->w), AWAIT_SHUTDOWN);
}

size_t
awaits_count(awaits *a)
{
    return waiters_count(a->w);
}
