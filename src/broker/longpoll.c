/*
 * longpoll.c - parked claims and Awaits, and the one place their parking
 * ends.
 *
 * Wake-ups: once a group's ops are applied, the store reports the lanes
 * the group made claimable and how many messages each gained; the writer
 * then runs the oldest parked claims of those lanes inside the same
 * transaction (longpoll_wake), so their replies go out with that commit.
 * A lane that gained k messages wakes its oldest claims until they have
 * taken k (a claim may take several; one that finds nothing, asking for
 * another target, parks again in its place): no herd of claims that
 * re-run for nothing.
 *
 * Awaits the same way: the store reports the messages the group delivered
 * or dead-lettered, and every Await parked on one of them runs again in
 * the same transaction (several clients may await one message). When the
 * group settled more messages than are listed, every parked Await runs
 * again; one whose message is still unsettled parks again in its place.
 * Awaits are woken first: they only read, so they make no lane claimable
 * and take nothing from the claims after them.
 */
#include "broker/longpoll.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "common/names.h"

#define LONGPOLL_MAX_WAKES   256
#define LONGPOLL_MAX_SETTLED 256

/* How parking ends; see longpoll_complete. */
typedef enum longpoll_end {
    LONGPOLL_WOKEN,     /* what it waits for came: run it again */
    LONGPOLL_TIMED_OUT, /* its wait ran out: an empty batch */
    LONGPOLL_CANCELLED, /* its client hung up: an empty batch, unheard */
    LONGPOLL_SHUTDOWN,  /* the broker stops: an empty batch */
    LONGPOLL_REFUSED,   /* it could not be parked: the error */
} longpoll_end;

/* A lane the group being committed made claimable, and how many messages
 * it still has for parked claims (STORE_READY_MANY: no count). */
typedef struct lane_wake {
    hp_lane_key key;
    uint32_t left;
} lane_wake;

struct longpoll {
    waiters *w;      /* claims, by lane */
    waiters *awaits; /* Awaits, by (scope, message id) */
    longpoll_answer_fn answer;
    void (*parked)(void *arg);
    void *parked_arg;
    _Atomic bool stopping;

    /* Writer thread only: the lanes the group being committed made
     * claimable, and the parked claim handed to the writer last. */
    lane_wake wakes[LONGPOLL_MAX_WAKES];
    size_t n_wakes;
    bool wake_all; /* more lanes than the list holds: any may have work */
    longpoll_claim *woken;
    size_t woken_lane;

    /* Writer thread only: the messages the group being committed settled
     * (a key of scope and id text), and the next to wake Awaits for. */
    hp_lane_key settled[LONGPOLL_MAX_SETTLED];
    size_t n_settled, next_settled;
    bool settled_all; /* more than the list holds: any may have settled */
};

/*
 * Ends one parking of lc, exactly once: called by the thread that took lc
 * out of its table, or that never got it in. A woken request whose client
 * is still there is handed back (its op) to run again; any other end
 * answers it, and it is gone afterwards.
 */
static commitq_op *
longpoll_complete(longpoll *lp, longpoll_claim *lc, longpoll_end end,
                  const hp_status *why)
{
    hp_status st;

    HP_ASSERT(!lc->ended);
    lc->ended = true;
    if (end == LONGPOLL_WOKEN) {
        if (listener_req_open(lc->rq)) {
            lc->op->deadline_mono_ms = 0; /* admitted long ago */
            return lc->op;
        }
        /* Its client is gone: claiming for it would hide the messages for
         * a whole lease; an Await would answer no one. */
        end = LONGPOLL_CANCELLED;
    }
    if (end == LONGPOLL_REFUSED) {
        lp->answer(lc, why->code, why);
        return NULL;
    }
    hp_status_clear(&st);
    lp->answer(lc, HP_OK, &st);
    return NULL;
}

static longpoll_claim *
claim_of(waiter *wt)
{
    return HP_CONTAINER_OF(wt, longpoll_claim, wt);
}

/* Completes every claim of a list the table handed back. */
static void
complete_all(longpoll *lp, waiter *list, longpoll_end end)
{
    while (list != NULL) {
        waiter *next = list->out_next;
        commitq_op *op = longpoll_complete(lp, claim_of(list), end, NULL);
        HP_ASSERT(op == NULL);
        list = next;
    }
}

hp_code
longpoll_new(const longpoll_opts *o, longpoll **out, hp_status *st)
{
    longpoll *lp = calloc(1, sizeof(*lp));
    hp_code code;

    if (lp == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    if ((code = waiters_new(o->max_parked, o->max_per_conn, &lp->w, st)) !=
            HP_OK ||
        (code = waiters_new(o->max_parked, o->max_per_conn, &lp->awaits, st)) !=
            HP_OK) {
        waiters_free(lp->w);
        free(lp);
        return code;
    }
    lp->answer = o->answer;
    lp->parked = o->parked;
    lp->parked_arg = o->parked_arg;
    atomic_init(&lp->stopping, false);
    *out = lp;
    return HP_OK;
}

void
longpoll_free(longpoll *lp)
{
    if (lp == NULL) {
        return;
    }
    HP_ASSERT(waiters_count(lp->w) == 0 && waiters_count(lp->awaits) == 0);
    waiters_free(lp->w);
    waiters_free(lp->awaits);
    free(lp);
}

/* Writer thread: whether the group just committed made lane claimable. */
static bool
woken_in_group(const longpoll *lp, hp_str scope, hp_str lane)
{
    if (lp->wake_all) {
        return true;
    }
    for (size_t i = 0; i < lp->n_wakes; i++) {
        if (hp_lane_key_is(&lp->wakes[i].key, scope, lane)) {
            return true;
        }
    }
    return false;
}

/* Writer thread: whether the group just committed settled (scope, id). */
static bool
settled_in_group(const longpoll *lp, hp_str scope, hp_str id)
{
    if (lp->settled_all) {
        return true;
    }
    for (size_t i = 0; i < lp->n_settled; i++) {
        if (hp_lane_key_is(&lp->settled[i], scope, id)) {
            return true;
        }
    }
    return false;
}

/* Parks lc in table w on (scope, key), or ends its parking at once:
 * woken when the group that has just committed already gave it what it
 * waits for (it ran before the write that fed it). */
static commitq_op *
park(longpoll *lp, waiters *w, longpoll_claim *lc, hp_str scope, hp_str key,
     bool woken, uint64_t until_mono_ms)
{
    hp_status st;

    lc->ended = false;
    if (atomic_load(&lp->stopping)) {
        return longpoll_complete(lp, lc, LONGPOLL_SHUTDOWN, NULL);
    }
    if (woken) {
        return longpoll_complete(lp, lc, LONGPOLL_WOKEN, NULL);
    }
    /* Before it is in the table, where nothing can answer it yet: an
     * external connection's owner starts watching its client now. */
    listener_req_waiting(lc->rq);
    /* Once parked, lc may be woken, timed out or cancelled by another
     * thread at any moment: what is looked at afterwards is held
     * separately. */
    listener_conn *conn = listener_conn_hold(lc->rq);
    uint32_t conn_id = lc->rq->conn_id;
    hp_code code =
        waiters_park(w, &lc->wt, conn_id, scope, key, until_mono_ms, &st);
    if (code != HP_OK) {
        listener_conn_release(conn);
        /* A closed table: the broker stopped after the check above. */
        return longpoll_complete(
            lp, lc,
            code == HP_UNAVAILABLE ? LONGPOLL_SHUTDOWN : LONGPOLL_REFUSED, &st);
    }
    /* The client may have hung up while the request was handled, before
     * it was parked, and longpoll_cancel_conn then found nothing to take. */
    bool open = listener_conn_is_open(conn);
    listener_conn_release(conn);
    if (!open) {
        longpoll_cancel_conn(lp, conn_id);
        return NULL;
    }
    lp->parked(lp->parked_arg);
    return NULL;
}

commitq_op *
longpoll_park(longpoll *lp, longpoll_claim *lc, hp_str scope, hp_str lane,
              uint64_t until_mono_ms)
{
    /* A claim applied before an enqueue of its own group found nothing,
     * and the wake-up came too early for it: it runs once more instead
     * of parking. */
    return park(lp, lp->w, lc, scope, lane, woken_in_group(lp, scope, lane),
                until_mono_ms);
}

commitq_op *
longpoll_park_await(longpoll *lp, longpoll_claim *lc, hp_str scope,
                    const hp_id *id, uint64_t until_mono_ms)
{
    char text[HP_ID_TEXT_LEN + 1];

    hp_id_format(id, text);
    return park(lp, lp->awaits, lc, scope, hp_str_c(text),
                settled_in_group(lp, scope, hp_str_c(text)), until_mono_ms);
}

/* Writer thread: a lane the group made claimable, n more messages. */
static void
note_wake(void *arg, hp_str scope, hp_str lane, uint32_t n)
{
    longpoll *lp = arg;
    for (size_t i = 0; i < lp->n_wakes; i++) {
        lane_wake *w = &lp->wakes[i];
        if (hp_lane_key_is(&w->key, scope, lane)) {
            w->left =
                n > STORE_READY_MANY - w->left ? STORE_READY_MANY : w->left + n;
            return;
        }
    }
    if (lp->n_wakes == LONGPOLL_MAX_WAKES) {
        lp->wake_all = true; /* cheaper than tracking them all */
        return;
    }
    lane_wake *w = &lp->wakes[lp->n_wakes++];
    hp_lane_key_set(&w->key, scope, lane);
    w->left = n;
}

/* Writer thread: the oldest parked claim of a lane that still has
 * messages for one, or of any lane when the group touched too many lanes
 * to list. */
static waiter *
next_waiter(longpoll *lp)
{
    if (lp->wake_all) {
        return waiters_take_any(lp->w);
    }
    for (size_t i = 0; i < lp->n_wakes; i++) {
        lane_wake *w = &lp->wakes[i];
        if (w->left == 0) {
            continue;
        }
        waiter *wt = waiters_take_oldest(lp->w, hp_lane_key_scope(&w->key),
                                         hp_lane_key_lane(&w->key));
        if (wt != NULL) {
            lp->woken_lane = i;
            return wt;
        }
        w->left = 0; /* no one waits there */
    }
    return NULL;
}

/* Writer thread: a message the group settled. The store notes a message
 * once per settling, so the list is not searched for a repeat first:
 * that search made each note cost the whole list, 5,200 instructions per
 * message in a W2 group of eight acks of 32 (13% of hopperd's, callgrind
 * at --sync none), and a repeat would only be looked up twice. */
static void
note_settled(void *arg, hp_str scope, const hp_id *id)
{
    longpoll *lp = arg;
    char text[HP_ID_TEXT_LEN + 1];

    if (lp->settled_all) {
        return;
    }
    hp_id_format(id, text);
    if (lp->n_settled == LONGPOLL_MAX_SETTLED) {
        lp->settled_all = true; /* cheaper than tracking them all */
        return;
    }
    hp_lane_key_set(&lp->settled[lp->n_settled++], scope, hp_str_c(text));
}

/* Writer thread: the next parked Await of a message the group settled, or
 * any when the group settled too many to list. */
static waiter *
next_await(longpoll *lp)
{
    if (lp->settled_all) {
        return waiters_take_any(lp->awaits);
    }
    for (; lp->next_settled < lp->n_settled; lp->next_settled++) {
        const hp_lane_key *k = &lp->settled[lp->next_settled];
        waiter *wt = waiters_take_oldest(lp->awaits, hp_lane_key_scope(k),
                                         hp_lane_key_lane(k));
        if (wt != NULL) {
            return wt; /* the same message again next time: others may wait */
        }
    }
    return NULL;
}

commitq_op *
longpoll_wake(longpoll *lp, store_txn *t, bool first)
{
    bool all = false;
    waiter *wt;

    if (first) {
        lp->n_wakes = 0;
        lp->wake_all = false;
        lp->woken = NULL;
        lp->n_settled = lp->next_settled = 0;
        lp->settled_all = false;
    }
    if (lp->woken != NULL) {
        lane_wake *w = &lp->wakes[lp->woken_lane];
        uint32_t took = lp->woken->claimed;
        if (!lp->wake_all && w->left != STORE_READY_MANY) {
            w->left = took < w->left ? w->left - took : 0;
        }
        lp->woken = NULL;
    }
    store_txn_take_settled(t, note_settled, lp, &all);
    lp->settled_all = lp->settled_all || all;
    while (waiters_count(lp->awaits) > 0 && (wt = next_await(lp)) != NULL) {
        commitq_op *op =
            longpoll_complete(lp, claim_of(wt), LONGPOLL_WOKEN, NULL);
        if (op != NULL) {
            return op;
        }
    }
    store_txn_take_ready(t, note_wake, lp, &all);
    lp->wake_all = lp->wake_all || all;
    while ((wt = next_waiter(lp)) != NULL) {
        longpoll_claim *lc = claim_of(wt);
        commitq_op *op = longpoll_complete(lp, lc, LONGPOLL_WOKEN, NULL);
        if (op != NULL) {
            lp->woken = lc;
            return op;
        }
    }
    return NULL;
}

void
longpoll_cancel_conn(longpoll *lp, uint32_t conn_id)
{
    complete_all(lp, waiters_take_conn(lp->w, conn_id), LONGPOLL_CANCELLED);
    complete_all(lp, waiters_take_conn(lp->awaits, conn_id),
                 LONGPOLL_CANCELLED);
}

uint64_t
longpoll_next_deadline(longpoll *lp)
{
    uint64_t claims = waiters_next_deadline(lp->w);
    uint64_t awaits = waiters_next_deadline(lp->awaits);
    return claims < awaits ? claims : awaits;
}

void
longpoll_expire(longpoll *lp, uint64_t now_mono_ms)
{
    complete_all(lp, waiters_take_expired(lp->w, now_mono_ms),
                 LONGPOLL_TIMED_OUT);
    complete_all(lp, waiters_take_expired(lp->awaits, now_mono_ms),
                 LONGPOLL_TIMED_OUT);
}

void
longpoll_stop(longpoll *lp)
{
    atomic_store(&lp->stopping, true);
    complete_all(lp, waiters_close(lp->w), LONGPOLL_SHUTDOWN);
    complete_all(lp, waiters_close(lp->awaits), LONGPOLL_SHUTDOWN);
}

size_t
longpoll_count(longpoll *lp)
{
    return waiters_count(lp->w);
}

size_t
longpoll_count_awaits(longpoll *lp)
{
    return waiters_count(lp->awaits);
}
