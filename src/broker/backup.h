/*
 * backup.h - online backups (the Backup rpc): a consistent, compacted
 * copy of the whole store into --backup-dir, one at a time, on a thread of
 * this part's own, so neither the writer nor an I/O thread waits for the
 * copy. Thread-safe.
 */
#ifndef HP_BROKER_BACKUP_H
#define HP_BROKER_BACKUP_H

#include <stdint.h>

#include "common/status.h"
#include "store/store.h"

#define BACKUP_NAME_MAX 128

typedef struct backup backup;

/* Backups into dir (borrowed until backup_free); NULL refuses them all.
 * A dir that cannot take a backup would only say so at the first Backup,
 * hours or months later, so it is checked now: FAILED_PRECONDITION/
 * BAD_BACKUP_DIR when it is missing, no directory, or not writable. */
HP_MUST_USE hp_code backup_new(const char *dir, backup **out, hp_status *st);

/* Takes the one backup slot for a copy named name: INVALID_ARGUMENT/
 * BAD_NAME for a name that is no plain file name, FAILED_PRECONDITION/
 * BACKUP_DISABLED without a dir, UNAVAILABLE/SHUTTING_DOWN once
 * backup_stop ran, FAILED_PRECONDITION/BACKUP_RUNNING while another runs.
 * On HP_OK the caller must call backup_run. */
HP_MUST_USE hp_code backup_reserve(backup *bk, const char *name, hp_status *st);

typedef struct backup_result {
    const char *path; /* where the copy is, valid during the call */
    uint64_t bytes;
    uint64_t duration_ms;
} backup_result;

/* Called on the backup thread once the copy is done and the slot free
 * again (a client that asks again at once finds the backup finished):
 * code and st its outcome, r its result on HP_OK. */
typedef void (*backup_done_fn)(void *arg, hp_code code, const hp_status *st,
                               const backup_result *r);

/* Copies s into the reserved name on the backup thread, then calls
 * done(arg, ...) there; if the thread cannot start, done runs here with
 * the error. */
void backup_run(backup *bk, store *s, const char *name, backup_done_fn done,
                void *arg);

/* Refuses new backups and waits for the one running. */
void backup_stop(backup *bk);

/* NULL is a no-op. */
void backup_free(backup *bk);

#endif
