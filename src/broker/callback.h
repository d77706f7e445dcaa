/*
 * callback.h - callback ingress: a receiver that answered a delivery 202
 * settles or extends its claim later, over HTTP, with the URL the delivery
 * carried in Hopper-Callback (docs/webhooks.md, "Callbacks"):
 *
 *   POST <base>/hopper.v1.Callback/<token>
 *   {"action":"complete","result":"..."}            -> the claim's Ack
 *   {"action":"fail","error":"...","retry_after_ms":N} -> its Nack
 *   {"action":"heartbeat","extend_ms":N}            -> its Extend
 *
 * The token (cbtoken.h) is the credential: no bearer token is asked for,
 * and the token names one claim (scope, lane, id, claim token), so a
 * callback can act on that claim only. Each action is an op on the commit
 * queue calling the store function a worker's rpc reaches (store_ack,
 * store_nack, store_extend), so a callback after the claim was lost gets
 * the same FAILED_PRECONDITION/LOST_CLAIM as a late ack, and its outcome
 * is durable before it is answered.
 *
 * The HTTP side (the route, the body's budget, the response) is api.c's;
 * this part verifies, decodes, applies and answers through a done
 * function. The key that signs tokens is the store's (store_callback_key),
 * made once, so tokens outlive a restart.
 *
 * Threads: callback_url is called by the delivery thread, callback_handle
 * by NNG's HTTP threads; done runs on the writer thread (or the caller's,
 * for an answer given at once). The key and base URL are written once by
 * callback_open, before either may be called with effect.
 */
#ifndef HP_BROKER_CALLBACK_H
#define HP_BROKER_CALLBACK_H

#include <stddef.h>
#include <stdint.h>

#include "broker/commitq.h"
#include "common/clock.h"
#include "common/id.h"
#include "common/names.h"
#include "common/status.h"
#include "store/store.h"

/* The path under the API listener; the token follows it. */
#define CALLBACK_PATH "/hopper.v1.Callback/"
/* A callback's body: a 64 KiB result in base64, and room for the JSON. */
#define CALLBACK_BODY_MAX (96u * 1024u)
/* A token outlives the lease it was minted for by this much. */
#define CALLBACK_EXPIRY_MARGIN_MS 60000u
/* And lives at most this long from its minting. */
#define CALLBACK_EXPIRY_MAX_MS 86400000u
/* The longest callback URL: a base URL and a token. */
#define CALLBACK_URL_MAX 2400

typedef struct callback callback;

/* Makes the part, taking no callbacks yet (the API that hands them in
 * starts before the store). RESOURCE_EXHAUSTED/NO_MEMORY. */
HP_MUST_USE hp_code callback_new(hp_clock *clock, callback **out,
                                 hp_status *st);

/* Reads the store's callback key, making it (32 bytes of fresh) on first
 * use, and sets the base of the URLs it makes, base_url (http://host:port
 * or --api-public-url; a final '/' is dropped). A write transaction of its
 * own: before the commit queue's writer exists, which must be the store's
 * only writer from then on. INVALID_ARGUMENT/BAD_CONFIG for a base URL
 * that is not http:// or https:// with a host, has a query, or is too
 * long; the store's codes. The caller's thread, once. */
HP_MUST_USE hp_code callback_open(callback *cb, store *s, const char *base_url,
                                  const uint8_t fresh[STORE_CALLBACK_KEY_LEN],
                                  hp_status *st);

/* From now on takes callbacks, applying them through q; until then
 * callback_handle answers UNAVAILABLE. After callback_open, before the
 * delivery part starts. */
void callback_start(callback *cb, commitq *q);

/* Writes the Hopper-Callback URL for the claim (lane, id, token), valid
 * until expires_at_ms, and a NUL into out[CALLBACK_URL_MAX + 1]; returns
 * its length. After callback_open. Any thread. */
size_t callback_url(const callback *cb, const hp_lane_key *lane,
                    const hp_id *id, const store_token *token,
                    uint64_t expires_at_ms, char *out);

/* The answer to one callback: HP_OK with a JSON object (json[len], valid
 * during the call only), or a code and status. Called exactly once. */
typedef void (*callback_done_fn)(void *arg, hp_code code, const hp_status *st,
                                 const char *json, size_t len);

/* Verifies token, decodes body (JSON), and applies the action to the
 * claim the token names; done gets the outcome. Codes and reasons:
 * UNAUTHENTICATED/BAD_CALLBACK_TOKEN, UNAUTHENTICATED/CALLBACK_EXPIRED,
 * INVALID_ARGUMENT/BAD_JSON, UNKNOWN_FIELD, BAD_CALLBACK (an unknown
 * action, both result forms), BAD_LEASE (extend_ms), the store's
 * (FAILED_PRECONDITION/LOST_CLAIM, NOT_FOUND/NO_MESSAGE, ...), and
 * UNAVAILABLE/SHUTTING_DOWN. body is used before this returns. cb may be
 * NULL (no ingress: UNAVAILABLE). */
void callback_handle(callback *cb, hp_str token, const void *body, size_t len,
                     callback_done_fn done, void *arg);

/* NULL is a no-op. After the commit queue has stopped and the API with
 * it. */
void callback_free(callback *cb);

#endif
