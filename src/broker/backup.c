/*
 * backup.c - the backup slot and thread. The slot is taken by the handler
 * (backup_reserve, on an I/O thread) and the copy runs once the handler's
 * read transaction is closed (backup_run), so the two never overlap in one
 * thread; the finished thread is joined by the next backup, or at stop.
 */
#include "broker/backup.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"

struct backup {
    const char *dir;
    pthread_mutex_t mtx;
    bool running;           /* bk->mtx: the slot is taken */
    bool joinable;          /* bk->mtx: thread is to be joined */
    bool stopping;          /* bk->mtx */
    pthread_cond_t changed; /* running or joinable changed */
    pthread_t thread;

    /* The copy in progress: written by backup_run, read by its thread. */
    store *s;
    char name[BACKUP_NAME_MAX + 1];
    backup_done_fn done;
    void *done_arg;
};

static hp_code
check_dir(const char *dir, hp_status *st)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_BAD_BACKUP_DIR,
                             "--backup-dir '%s': %s", dir, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_BAD_BACKUP_DIR,
                             "--backup-dir '%s' is not a directory", dir);
    }
    if (access(dir, W_OK | X_OK) != 0) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_BAD_BACKUP_DIR,
                             "--backup-dir '%s' is not writable by hopperd: "
                             "%s",
                             dir, strerror(errno));
    }
    return HP_OK;
}

hp_code
backup_new(const char *dir, backup **out, hp_status *st)
{
    hp_code code;
    backup *bk;

    if (dir != NULL && (code = check_dir(dir, st)) != HP_OK) {
        return code;
    }
    if ((bk = calloc(1, sizeof(*bk))) == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    bk->dir = dir;
    pthread_mutex_init(&bk->mtx, NULL);
    pthread_cond_init(&bk->changed, NULL);
    *out = bk;
    return HP_OK;
}

/* A plain file name: no directory, no hidden file, nothing a shell or a
 * path could read differently. */
static bool
name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > BACKUP_NAME_MAX || n[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = n[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
                  ch == '-';
        if (!ok) {
            return false;
        }
    }
    /* NAME.tmp is the copy in progress. */
    return len < 4 || strcmp(n + len - 4, ".tmp") != 0;
}

hp_code
backup_reserve(backup *bk, const char *name, hp_status *st)
{
    if (!name_ok(name)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME,
                             "backup name must be 1-%d of [A-Za-z0-9._-], "
                             "not starting with '.' nor ending in .tmp",
                             BACKUP_NAME_MAX);
    }
    if (bk->dir == NULL) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_BACKUP_DISABLED,
                             "backups are off: start hopperd with "
                             "--backup-dir DIR");
    }
    pthread_mutex_lock(&bk->mtx);
    if (bk->stopping) {
        pthread_mutex_unlock(&bk->mtx);
        return hp_status_set(st, HP_UNAVAILABLE, HP_R_SHUTTING_DOWN,
                             "broker is shutting down");
    }
    if (bk->running) {
        pthread_mutex_unlock(&bk->mtx);
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_BACKUP_RUNNING,
                             "a backup is running; one at a time");
    }
    if (bk->joinable) { /* the last one, finished */
        pthread_join(bk->thread, NULL);
        bk->joinable = false;
    }
    bk->running = true;
    pthread_mutex_unlock(&bk->mtx);
    return HP_OK;
}

static void *
backup_main(void *arg)
{
    backup *bk = arg;
    char path[4096 + BACKUP_NAME_MAX + 2];
    backup_result r = { .path = path };
    uint64_t t0 = hp_mono_ms();
    hp_status st;

    snprintf(path, sizeof(path), "%s/%s", bk->dir, bk->name);
    hp_code code = store_backup(bk->s, path, &r.bytes, &st);
    r.duration_ms = hp_mono_ms() - t0;
    if (code == HP_OK) {
        hp_log(HP_LOG_INFO, "backup done", "path=\"%s\" bytes=%llu ms=%llu",
               path, (unsigned long long)r.bytes,
               (unsigned long long)r.duration_ms);
    } else {
        hp_log(HP_LOG_WARN, "backup failed",
               "path=\"%s\" code=%s reason=%s err=\"%s\"", path,
               hp_code_name(code), st.reason, st.msg);
    }
    /* Free before the answer: a client that asks again as soon as it has
     * it must find the backup finished (and its name taken), not still
     * running. */
    backup_done_fn done = bk->done;
    void *done_arg = bk->done_arg;
    pthread_mutex_lock(&bk->mtx);
    bk->running = false;
    pthread_cond_broadcast(&bk->changed);
    pthread_mutex_unlock(&bk->mtx);
    done(done_arg, code, &st, code == HP_OK ? &r : NULL);
    return NULL;
}

void
backup_run(backup *bk, store *s, const char *name, backup_done_fn done,
           void *arg)
{
    hp_status st;

    bk->s = s;
    snprintf(bk->name, sizeof(bk->name), "%s", name);
    bk->done = done;
    bk->done_arg = arg;
    pthread_mutex_lock(&bk->mtx);
    int rc = pthread_create(&bk->thread, NULL, backup_main, bk);
    bk->joinable = rc == 0;
    if (rc != 0) {
        bk->running = false;
    }
    pthread_cond_broadcast(&bk->changed);
    pthread_mutex_unlock(&bk->mtx);
    if (rc != 0) {
        hp_code code =
            hp_status_from_errno(&st, rc, "cannot start the backup thread");
        done(arg, code, &st, NULL);
    }
}

void
backup_stop(backup *bk)
{
    if (bk == NULL) {
        return;
    }
    pthread_mutex_lock(&bk->mtx);
    bk->stopping = true;
    /* A slot taken by a handler whose thread is not started yet: wait for
     * backup_run to start it (or to fail to). */
    while (bk->running && !bk->joinable) {
        pthread_cond_wait(&bk->changed, &bk->mtx);
    }
    bool joinable = bk->joinable;
    pthread_t th = bk->thread;
    bk->joinable = false;
    pthread_mutex_unlock(&bk->mtx);
    if (joinable) {
        pthread_join(th, NULL);
    }
}

void
backup_free(backup *bk)
{
    if (bk == NULL) {
        return;
    }
    backup_stop(bk);
    pthread_cond_destroy(&bk->changed);
    pthread_mutex_destroy(&bk->mtx);
    free(bk);
}
