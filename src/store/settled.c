/*
 * settled.c - which messages a write transaction settled (delivered or
 * dead-lettered), so the committer can answer the requests waiting for
 * them (Await) inside the same transaction, as it hands new messages to
 * parked claims. A note is a (scope, id) pair; past
 * STORE_MAX_SETTLE_NOTES of them the transaction only says "any message
 * may have settled", which is cheaper to carry than a list that grows
 * with the group.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

void
txn_note_settled(store_txn *t, hp_str scope, const hp_id *id)
{
    if (t->settle_all) {
        return;
    }
    if (t->n_settled == STORE_MAX_SETTLE_NOTES) {
        t->settle_all = true;
        return;
    }
    if (t->n_settled == t->cap_settled) {
        size_t cap = t->cap_settled ? t->cap_settled * 2 : 8;
        settle_note *n = realloc(t->settled, cap * sizeof(*n));
        if (n == NULL) {
            /* Losing a note only delays an Await until its timer, and
             * "any may have settled" still wakes it now. */
            t->settle_all = true;
            return;
        }
        t->settled = n;
        t->cap_settled = cap;
    }
    settle_note *n = &t->settled[t->n_settled++];
    n->scope_len = (uint8_t)scope.len;
    memcpy(n->scope, scope.p, scope.len);
    n->id = *id;
}

void
txn_settled_free(store_txn *t)
{
    free(t->settled);
    t->settled = NULL;
    t->n_settled = t->cap_settled = t->settled_taken = 0;
}

void
store_txn_take_settled(store_txn *t, store_settled_fn fn, void *arg, bool *all)
{
    *all = t->settle_all && !t->settle_all_taken;
    t->settle_all_taken = t->settle_all;
    for (; t->settled_taken < t->n_settled; t->settled_taken++) {
        const settle_note *n = &t->settled[t->settled_taken];
        hp_str scope = { n->scope, n->scope_len };
        fn(arg, scope, &n->id);
    }
}
