/*
 * backup.c - a consistent copy of a live store. LMDB copies from one read
 * transaction, so writers go on while it runs and the copy is the store as
 * of the moment it began; MDB_CP_COMPACT leaves out free pages and
 * renumbers the rest, so the copy is as small as the data.
 *
 * The copy is written to NAME.tmp, flushed, linked to NAME (link fails
 * rather than replaces when NAME exists), and the directory is flushed:
 * a file called NAME is always a whole backup, also after a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "store/store_int.h"

int
store_sync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t len = slash == NULL ? 1 : (size_t)(slash - path);
    if (len == 0) {
        len = 1; /* the root */
    }
    if (len >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, slash == NULL ? "." : path, len);
    dir[len] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

hp_code
store_backup(store *s, const char *path, uint64_t *bytes, hp_status *st)
{
    char tmp[4096];
    struct stat sb;
    hp_code code;
    int rc, fd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_NAME,
                             "backup path too long");
    }
    if (lstat(path, &sb) == 0) {
        return hp_status_set(st, HP_ALREADY_EXISTS, HP_R_BACKUP_EXISTS,
                             "'%s' exists already; backups are never "
                             "overwritten",
                             path);
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            return hp_status_set(st, HP_ALREADY_EXISTS, HP_R_BACKUP_EXISTS,
                                 "'%s' exists: another backup of this name "
                                 "is being written, or one was cut short "
                                 "(remove it)",
                                 tmp);
        }
        return hp_status_from_errno(st, errno, "cannot create the backup");
    }
    if ((rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT)) != 0) {
        code = rc == ENOSPC || rc == EDQUOT || rc == EIO
                   ? hp_status_from_errno(st, rc, "cannot write the backup")
                   : store_status_from_mdb(s, rc, st);
        goto fail;
    }
    if (fsync(fd) != 0 || fstat(fd, &sb) != 0) {
        code = hp_status_from_errno(st, errno, "cannot flush the backup");
        goto fail;
    }
    close(fd);
    fd = -1;
    if (link(tmp, path) != 0) {
        code = errno == EEXIST
                   ? hp_status_set(st, HP_ALREADY_EXISTS, HP_R_BACKUP_EXISTS,
                                   "'%s' appeared while the backup ran", path)
                   : hp_status_from_errno(st, errno, "cannot name the backup");
        goto fail;
    }
    unlink(tmp);
    if (store_sync_parent(path) != 0) {
        return hp_status_from_errno(st, errno,
                                    "cannot flush the backup's directory");
    }
    *bytes = (uint64_t)sb.st_size;
    return HP_OK;
fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    return code;
}
