/*
 * svc.h - the handlers, one per rpc (svc_msg.c: messages; svc_await.c:
 * Await; svc_admin.c: lanes, dead letters, ping, backup), and the
 * conversions they share (svc_common.c). A handler maps the decoded
 * request to store calls and packs the answer: the disk format never
 * follows the wire.
 */
#ifndef HP_BROKER_SVC_H
#define HP_BROKER_SVC_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "broker/call.h"
#include "hopper/v1/broker.pb-c.h"

/* svc_msg.c, svc_await.c, svc_admin.c: the handlers (call_handler). */
hp_code svc_enqueue(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_claim(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_ack(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_nack(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_extend(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_get(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_list(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_stats(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_list_lanes(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_get_lane(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_update_lane(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_dead_list(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_dead_replay(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_dead_purge(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_ping(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_backup(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_await(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_test_webhook(call *c, store_txn *t, uint64_t now_ms, hp_status *st);
hp_code svc_set_secret(call *c, store_txn *t, uint64_t now_ms, hp_status *st);

/* Rebuilds a repeated Claim's answer from the replay cache entry. */
hp_code svc_claim_replay(call *c, store_txn *t, uint64_t now_ms,
                         const void *data, size_t len, hp_status *st);

/* svc_common.c: packing and conversions shared by the handlers. */

/* Room in a reply for everything but its messages or lanes: the Response
 * envelope (status with its text, request id up to 128 bytes) and a next
 * cursor; --max-frame is at least --max-payload + 4 KiB, so a reply budget
 * always holds one message of the largest payload. */
#define SVC_REPLY_ROOM 4096

/* The bytes one reply may weigh (store_message_weight and
 * store_lane_stats_weight): --max-frame less SVC_REPLY_ROOM, so a reply
 * fits the frame limit that clients are told to accept. */
size_t svc_reply_budget(const call *c);

/* A page of List, DeadList or ListLanes: the reply budget, but at most
 * SVC_PAGE_BYTES. Reads are built on the I/O thread that read them, and
 * every other client of that thread waits while one is: a 16 MiB page
 * took tens of milliseconds, a 1 MiB one a few (attack_test, "big List
 * pages"). Clients page with the cursor either way. */
#define SVC_PAGE_BYTES ((size_t)1 << 20)
size_t svc_page_budget(const call *c);

/* What a request's limit of 0 means: items per page of the list rpcs and
 * dead letters per whole-lane DeadReplay or DeadPurge. */
#define SVC_DEFAULT_LIMIT 100

/* The page a list rpc asks for: lane, cursor, limit (0: the default) and
 * whether payloads come along, within svc_page_budget. */
store_list_req svc_list_req(call *c, const char *lane,
                            const ProtobufCBinaryData *cursor, uint32_t limit,
                            bool with_payload);

hp_code svc_pack(call *c, const ProtobufCMessage *m, hp_status *st);
hp_code svc_parse_id(const char *text, hp_id *out, hp_status *st);
hp_code svc_parse_token(const ProtobufCBinaryData *b, store_token *out,
                        hp_status *st);
hp_code svc_drafts(call *c, Hopper__V1__Draft **in, size_t n, store_draft **out,
                   hp_status *st);
hp_code svc_enqueued(call *c, const store_enqueued *in, size_t n,
                     Hopper__V1__Enqueued ***out, hp_status *st);
hp_code svc_message(call *c, const store_message *in, bool with_token,
                    Hopper__V1__Message *out, hp_status *st);
/* The repeated field of n messages (their claim tokens too with
 * with_token), in c's arena. */
hp_code svc_messages(call *c, const store_message *in, size_t n,
                     bool with_token, Hopper__V1__Message ***out,
                     hp_status *st);
hp_code svc_list_response(call *c, const store_list_res *res, hp_status *st);
hp_code svc_lane_stats(call *c, const store_lane_stats *in,
                       Hopper__V1__LaneStats *out, hp_status *st);
void svc_settings_to_proto(const store_lane_settings *in,
                           Hopper__V1__LaneSettings *out);
void *svc_alloc(call *c, size_t len, hp_status *st);

#endif
