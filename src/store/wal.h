/*
 * wal.h - the store's write-ahead log. With STORE_SYNC_FULL a commit is
 * made durable by appending what it changed (its puts and deletes, and a
 * rewritten value as the span that changed) to a log file and syncing
 * that file once, instead of LMDB's two ordered syncs of a dozen
 * scattered pages. LMDB itself runs with MDB_NOSYNC, and a
 * checkpoint thread makes its file durable now and then.
 *
 * Why this is safe although MDB_NOSYNC alone is not (a power cut can leave
 * LMDB's newest meta page pointing at pages that never reached the disk):
 *
 *   - A checkpoint at LMDB transaction T syncs data.mdb, then saves copies
 *     of its two meta pages (T's and T-1's) in wal.ckpt and syncs that.
 *   - From the moment T is chosen until the next checkpoint is durable, a
 *     read transaction pinned at T keeps LMDB from reusing any page of T's
 *     tree, so the pages a saved meta points at are never overwritten.
 *   - Recovery (before LMDB opens the file) writes the saved meta pages
 *     back, so LMDB opens at T, and then replays the logged commits after
 *     T from the two log segments, in order, stopping at the first record
 *     whose checksum fails: that commit was never acknowledged.
 *   - With batched commits (store_batch_attach) several records carry the
 *     id of the one LMDB transaction they are nested in, so the chain
 *     goes on with the same id or the next. A checkpoint starts only
 *     between batches (wal_batch_committed), so all of a batch's records
 *     are in one segment and after the checkpoint that precedes it.
 *   - Segments and checkpoints carry a generation, new at each open: the
 *     replay is made a checkpoint of the next generation before the
 *     segments are emptied, so a crash during recovery either finds the
 *     old checkpoint and its intact segments (and replays again onto the
 *     still-pinned pages) or the new one, under which the old segments
 *     count for nothing.
 *
 * Files in the data dir: wal-0.log and wal-1.log (segments, used in turn:
 * a checkpoint switches to the other one, which the checkpoint before it
 * has emptied) and wal.ckpt (two slots, written in turn). Segments are
 * filled with zeros ahead of use so that an append overwrites allocated
 * blocks and its fdatasync carries no metadata.
 *
 * Store-internal: env.c calls it; the put/delete wrappers note their
 * operations while logging is on.
 */
#ifndef HP_STORE_WAL_H
#define HP_STORE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "common/status.h"

typedef struct store store;
typedef struct store_txn store_txn;
typedef struct wal wal;

/* Before LMDB opens the environment: if dir has a checkpoint, writes its
 * meta pages back into data.mdb and syncs it. */
HP_MUST_USE hp_code wal_restore(const char *dir, hp_status *st);

/* Right after LMDB opens the environment, before any write transaction:
 * pins LMDB's current transaction (the restored checkpoint's) so that no
 * commit before the next checkpoint reuses its pages, and opens the log.
 * Without log and without a log left from before, does nothing. On
 * failure the caller still calls wal_stop. */
HP_MUST_USE hp_code wal_pin(store *s, bool log, hp_status *st);

/* Once the tables are open: replays the records logged after the
 * checkpoint, with LMDB's own syncs; *applied counts them. */
HP_MUST_USE hp_code wal_recover(store *s, uint64_t *applied, hp_status *st);

/* After the environment is open and upgraded (and its commits synced by
 * LMDB itself): takes a new checkpoint, and with log set switches LMDB to
 * MDB_NOSYNC and logs every commit from now on. Without log (STORE_SYNC_NONE)
 * the log files are removed after the replay. */
HP_MUST_USE hp_code wal_start(store *s, bool log, hp_status *st);

/* Takes a final checkpoint (so the next open replays nothing) and frees
 * the log. Safe on a store whose wal_start failed or never ran. */
void wal_stop(store *s);

/* True while commits are logged. */
bool wal_logging(const store *s);

/* Notes one operation of the open write transaction, after LMDB took it
 * (for MDB_RESERVE: after the caller filled the value). On failure (no
 * memory) the transaction is poisoned. */
HP_MUST_USE hp_code wal_note_put(store_txn *t, MDB_dbi db, const MDB_val *k,
                                 const MDB_val *v, hp_status *st);
HP_MUST_USE hp_code wal_note_del(store_txn *t, MDB_dbi db, const MDB_val *k,
                                 hp_status *st);

/* How many leading bytes a and b share (*head), and how many trailing
 * bytes they share beyond those (*tail): head + tail never exceeds the
 * shorter length. The patch of wal_note_changed; its own test drives it. */
void wal_common_ends(const uint8_t *a, size_t a_len, const uint8_t *b,
                     size_t b_len, size_t *head, size_t *tail);

/* For a value that is rewritten (a message record whose state changes):
 * notes the put as the span that changed between old, the value k held
 * before it (the caller's copy), and v (what lies between their longest
 * common head and tail) when that is much smaller than the value, else,
 * and without old, as wal_note_put does. A claim or an ack changes a few
 * dozen bytes near the start of a record that ends with its payload,
 * which the log then no longer repeats. */
HP_MUST_USE hp_code wal_note_changed(store_txn *t, MDB_dbi db, const MDB_val *k,
                                     const MDB_val *v, const MDB_val *old,
                                     hp_status *st);

/* Before mdb_txn_commit: seals the transaction's record and makes sure the
 * segment has room for it, so the append after the commit cannot fail
 * for want of disk. An error means: abort, do not commit. */
HP_MUST_USE hp_code wal_prepare(store_txn *t, hp_status *st);

/* Bytes appended since the store opened (any thread). */
uint64_t wal_bytes(const store *s);

/* After a successful mdb_txn_commit of the transaction that had id txnid:
 * appends its record and syncs it. Only then is the commit durable. A
 * failure here is fatal (the commit is visible but not on disk). */
HP_MUST_USE hp_code wal_commit(store *s, uint64_t txnid, hp_status *st);

/* After a nested transaction (store_batch_attach) committed into the
 * open batch of LMDB transaction txnid: appends its record and syncs it.
 * The commit is durable then, though LMDB has not committed it. */
HP_MUST_USE hp_code wal_commit_nested(store *s, uint64_t txnid, hp_status *st);

/* Records in the log's active segment: where a batch's records begin. */
uint64_t wal_records(const store *s);

/* Applies to txn every record of the active segment from the from-th on:
 * a batch whose commit LMDB refused (a full map), again. An MDB error. */
int wal_reapply(store *s, MDB_txn *txn, uint64_t from);

/* After the batch itself committed to LMDB (no write transaction open):
 * counts it toward the next checkpoint, and starts that when due. */
void wal_batch_committed(store *s);

/* Drops the record of an aborted transaction. */
void wal_discard(store *s);

/* Checkpoints now, waiting for one in progress first: after it the pages
 * freed before it are reusable again. Writer thread, no txn open. Returns
 * HP_OK with *freed false when nothing was committed since the last one. */
HP_MUST_USE hp_code wal_checkpoint_now(store *s, bool *freed, hp_status *st);

#endif
