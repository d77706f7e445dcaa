/*
 * keys.h - the key layouts of every LMDB database in the store.
 *
 * A name (scope, lane, target) is written as one length byte and its bytes
 * ("N" below), so a prefix scan over (scope, lane) can never run into a
 * longer name that merely starts the same way. Integers are big-endian, so
 * byte order is numeric order. Ids are 16 bytes (common/id.h).
 *
 *   db          key                                       value
 *   ----------  ----------------------------------------  ----------------
 *   messages    N scope | id                              record (record.h)
 *   ready       N scope | N lane | N target | u8 priority empty
 *                 | u64 available_at | id
 *   lane_ready  N scope | N lane | u8 priority            empty
 *   (schema 2)    | u64 available_at | id
 *   leases      u64 lease_expires_at | N scope | id       empty
 *   schedule    u64 available_at | N scope | id           empty
 *   dedupe      N scope | N lane | hash128 | u8 seq       dedupe entry
 *   dead        N scope | N lane | u64 dead_at | id       empty
 *   expiry      u8 kind | u64 at | N scope | rest         empty
 *                 kind 1 (retention): rest = id
 *                 kind 2 (dedupe):    rest = N lane | hash128 | u8 seq
 *                 kind 3 (reply):     rest = request id bytes
 *   replies     N scope | request id (1..128 bytes)       reply entry
 *   lanes       N scope | N lane                          lane record
 *   meta        name bytes: "schema", "instance",         u32 BE, 16 bytes,
 *                 "probe", "upgrade" (migrate.c),         u64 BE, a ready key,
 *                 "callback_key" (webhooks.c)             32 bytes
 *
 * `ready` and `lane_ready` hold the same messages: every pending message
 * (due or delayed) has exactly one key in each, built from its record's
 * scope, lane, target, priority and available_at. `ready` serves claims for
 * one target and the list of a lane's targets; `lane_ready` serves claims
 * for any target, so they cost the same whatever the number of targets.
 * Both end in the same suffix (u8 priority | u64 available_at | id), so one
 * seek routine walks either (ready.c).
 *
 * The longest key is a ready key: 3 * 65 + 1 + 8 + 16 = 220 bytes, well
 * under LMDB's 511 (checked at compile time in keys.c).
 *
 * Schema history: 1 had no lane_ready (any-target claims walked every
 * target in `ready`); opening a schema-1 store fills lane_ready from
 * `ready` (migrate.c). 3 adds the `deliver` and `secrets` databases
 * (webhooks.c), keyed (scope, lane) and (scope, secret id); a schema-2
 * store only has its version changed. 4 lets message records be of
 * version 2 (record.h: a state_webhook_url); a schema-3 store only has its
 * version changed, its records stay version 1. 5 lets delivery records be
 * of version 2 (webhooks.c: a callback_timeout_ms) and keeps the callback
 * key in meta; a schema-4 store only has its version changed, its
 * delivery records stay version 1.
 *
 * Changing a layout? Bump STORE_SCHEMA_VERSION, keep a reader for the old
 * one (or an upgrade in migrate.c), and add a test that opens a store of
 * the previous version (store_upgrade_test.c).
 */
#ifndef HP_STORE_KEYS_H
#define HP_STORE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "common/names.h"
#include "common/str.h"

#define KEY_NAME_MAX (1 + HP_NAME_MAX)
#define KEY_MAX      256

enum {
    EXPIRY_RETENTION = 1,
    EXPIRY_DEDUPE = 2,
    EXPIRY_REPLY = 3,
};

typedef struct key {
    uint8_t b[KEY_MAX];
    size_t len;
} key;

/* Builders: each starts a key from scratch. */
void key_message(key *k, hp_str scope, const hp_id *id);
void key_ready_prefix(key *k, hp_str scope, hp_str lane);
void key_ready_target(key *k, hp_str scope, hp_str lane, hp_str target);
void key_ready(key *k, hp_str scope, hp_str lane, hp_str target,
               uint32_t priority, uint64_t available_at, const hp_id *id);
/* The lane_ready prefix is key_lane(scope, lane). */
void key_lane_ready(key *k, hp_str scope, hp_str lane, uint32_t priority,
                    uint64_t available_at, const hp_id *id);
void key_lease(key *k, uint64_t at, hp_str scope, const hp_id *id);
void key_schedule(key *k, uint64_t at, hp_str scope, const hp_id *id);
void key_dedupe_prefix(key *k, hp_str scope, hp_str lane,
                       const uint8_t hash[16]);
void key_dead_prefix(key *k, hp_str scope, hp_str lane);
void key_dead(key *k, hp_str scope, hp_str lane, uint64_t at, const hp_id *id);
void key_expiry_retention(key *k, uint64_t at, hp_str scope, const hp_id *id);
void key_expiry_dedupe(key *k, uint64_t at, hp_str scope, hp_str lane,
                       const uint8_t hash[16], uint8_t seq);
void key_expiry_reply(key *k, uint64_t at, hp_str scope, hp_str request_id);
void key_reply(key *k, hp_str scope, hp_str request_id);
void key_lane(key *k, hp_str scope, hp_str lane);
void key_scope(key *k, hp_str scope);

/* Appends; the caller knows the result fits (all keys are bounded). */
void key_put_name(key *k, hp_str name);
void key_put_u8(key *k, uint8_t v);
void key_put_u64(key *k, uint64_t v);
void key_put_bytes(key *k, const void *p, size_t len);

/* A cursor over a key being parsed. Readers return 0 on success and -1 when
 * the key is too short or a name is malformed; a malformed key means a
 * damaged database and is reported as DATA_LOSS by the caller. */
typedef struct key_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
} key_reader;

void key_reader_init(key_reader *r, const void *p, size_t len);
int key_read_name(key_reader *r, hp_str *out);
int key_read_u8(key_reader *r, uint8_t *out);
int key_read_u64(key_reader *r, uint64_t *out);
int key_read_id(key_reader *r, hp_id *out);
int key_read_bytes(key_reader *r, size_t len, const uint8_t **out);
/* 0 when every byte was read. */
int key_reader_done(const key_reader *r);

/* Parsed forms of the keys the store walks. */
typedef struct ready_key {
    hp_str scope, lane, target;
    uint8_t priority;
    uint64_t available_at;
    hp_id id;
} ready_key;

int key_parse_ready(const void *p, size_t len, ready_key *out);
/* leases and schedule share one shape: at | N scope | id. */
int key_parse_timed(const void *p, size_t len, uint64_t *at, hp_str *scope,
                    hp_id *id);

#endif
