/*
 * plshim.c - an LD_PRELOAD layer that remembers which writes a power cut
 * would lose (plstate.h has the files it keeps, docs/reliability.md the
 * measurement behind it and its limits).
 *
 * LMDB 0.9.24 without MDB_WRITEMAP changes data.mdb only through pwrite()
 * and lseek()+writev() (strace, docs/reliability.md); it reads through a
 * read-only shared map and makes data durable with fdatasync() and with
 * pwrite() on a second descriptor opened O_DSYNC. So wrapping those calls
 * sees every change and every sync. Calls that would change a tracked file
 * in a way this layer does not model (a writable shared map, truncation,
 * preallocation other than fallocate's mode 0, appending, pwritev2) abort
 * the process with a message rather than let the test pass on a wrong
 * model.
 *
 * Every write to a tracked file is passed on unchanged, then its extent is
 * appended to NAME.dirty; a sync copies the extents it covers from the live
 * file into NAME.durable and empties NAME.dirty. One mutex orders the write
 * with its note and the sync with its copy, so no extent is dropped by a
 * sync it did not precede. The shim copies only what a sync covers, never
 * the whole file, except once at the first open of a file in a process.
 */
#undef _FORTIFY_SOURCE /* its inline open() would clash with ours */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "plstate.h"

/* Descriptors above this are passed on untracked; a tracked file opened on
 * one aborts (LMDB opens its files first, on low numbers). */
#define PL_MAX_FD 65536

/* A tracked file, by inode: LMDB opens data.mdb twice. Never freed, so a
 * descriptor table entry read without the lock never dangles. */
typedef struct pl_file {
    struct pl_file *next;
    dev_t dev;
    ino_t ino;
    char name[NAME_MAX + 1];
    int live_fd;    /* O_RDONLY on the live file, to copy what syncs cover */
    int durable_fd; /* NAME.durable */
    int dirty_fd;   /* NAME.dirty, O_APPEND */
    pl_extent *pending; /* the records of NAME.dirty, in memory */
    size_t n_pending, cap_pending;
} pl_file;

/* GLOBAL: a preloaded library has no caller to hand it state. Set in the
 * constructor; files and pending extents change under mtx; fds[] is
 * written under mtx and read without it (a tagged pl_file pointer, bit 0 =
 * the descriptor is O_DSYNC or O_SYNC). */
static struct {
    bool on;
    char dir[PATH_MAX];
    char state[PATH_MAX];
    char skip[1024];
    pthread_mutex_t mtx;
    pl_file *files;
    _Atomic uintptr_t fds[PL_MAX_FD];
} pl = { .mtx = PTHREAD_MUTEX_INITIALIZER };

/* The next definitions of what we wrap: libc's, or whatever comes after us
 * in the preload order. */
static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static off_t (*real_lseek)(int, off_t, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static void (*real_sync)(void);
static int (*real_syncfs)(int);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_ftruncate)(int, off_t);

static void die(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hopper powerloss shim: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/* dlsym hands back a data pointer; POSIX guarantees it holds a function
 * pointer, and copying the bytes keeps ISO C quiet about the conversion. */
static void
resolve_sym(const char *name, void *slot, size_t size)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (p == NULL) {
        die("cannot find %s after this library: %s", name, dlerror());
    }
    memcpy(slot, &p, size);
}

#define RESOLVE(fn) resolve_sym(#fn, &real_##fn, sizeof(real_##fn))

static void
resolve_all(void)
{
    RESOLVE(open);
    RESOLVE(openat);
    RESOLVE(write);
    RESOLVE(pwrite);
    RESOLVE(writev);
    RESOLVE(pwritev);
    RESOLVE(pread);
    RESOLVE(lseek);
    RESOLVE(fsync);
    RESOLVE(fdatasync);
    RESOLVE(sync);
    RESOLVE(syncfs);
    RESOLVE(close);
    RESOLVE(dup);
    RESOLVE(dup2);
    RESOLVE(dup3);
    RESOLVE(mmap);
    RESOLVE(ftruncate);
}

static pthread_once_t resolved = PTHREAD_ONCE_INIT;

/* Every wrapper starts here: a call may come before the constructor ran
 * (from another library's constructor). */
static void
ready(void)
{
    pthread_once(&resolved, resolve_all);
}

__attribute__((constructor)) static void
pl_init(void)
{
    ready();
    const char *dir = getenv(PL_ENV_DIR);
    const char *state = getenv(PL_ENV_STATE);
    const char *skip = getenv(PL_ENV_SKIP);
    if (dir == NULL || state == NULL) {
        return; /* loaded without a directory to watch: pass everything on */
    }
    if (realpath(dir, pl.dir) == NULL || realpath(state, pl.state) == NULL) {
        die("%s '%s' and %s '%s' must exist before the process starts",
            PL_ENV_DIR, dir, PL_ENV_STATE, state);
    }
    snprintf(pl.skip, sizeof(pl.skip),
             ":%s:", skip != NULL ? skip : PL_DEFAULT_SKIP);
    pl.on = true;
}

/* ---- which files ---------------------------------------------------------
 */

/* Whether path (as opened relative to dirfd) names a file directly in the
 * watched directory that is not skipped; its base name goes to name. */
static bool
watched(int dirfd, const char *path, char name[NAME_MAX + 1])
{
    char full[PATH_MAX], real[PATH_MAX], base[PATH_MAX];
    int n;

    if (path[0] == '/') {
        n = snprintf(full, sizeof(full), "%s", path);
    } else if (dirfd == AT_FDCWD) {
        if (getcwd(base, sizeof(base)) == NULL) {
            return false;
        }
        n = snprintf(full, sizeof(full), "%s/%s", base, path);
    } else {
        char link[64];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
        ssize_t len = readlink(link, base, sizeof(base) - 1);
        if (len < 0) {
            return false;
        }
        base[len] = '\0';
        n = snprintf(full, sizeof(full), "%s/%s", base, path);
    }
    if (n < 0 || (size_t)n >= sizeof(full)) {
        return false;
    }
    char *slash = strrchr(full, '/');
    if (slash == full || strlen(slash + 1) > NAME_MAX) {
        return false;
    }
    *slash = '\0';
    if (realpath(full, real) == NULL || strcmp(real, pl.dir) != 0) {
        return false;
    }
    char key[NAME_MAX + 3];
    snprintf(key, sizeof(key), ":%s:", slash + 1);
    if (strstr(pl.skip, key) != NULL) {
        return false;
    }
    snprintf(name, NAME_MAX + 1, "%s", slash + 1);
    return true;
}

static pl_file *
tracked(int fd, bool *dsync)
{
    if (fd < 0 || fd >= PL_MAX_FD) {
        return NULL;
    }
    uintptr_t v = atomic_load(&pl.fds[fd]);
    if (dsync != NULL) {
        *dsync = (v & 1u) != 0;
    }
    return (pl_file *)(v & ~(uintptr_t)1u);
}

/* ---- the durable image ---------------------------------------------------
 */

static void
write_all(int fd, const void *buf, size_t len, off_t off, const char *what)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n =
            off >= 0 ? real_pwrite(fd, p, len, off) : real_write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            die("cannot write %s: %s", what, strerror(errno));
        }
        p += n;
        len -= (size_t)n;
        if (off >= 0) {
            off += n;
        }
    }
}

/* Copies bytes [off, off + len) of the live file into the durable image,
 * as far as the live file reaches. Caller holds mtx. */
static void
copy_range(pl_file *f, uint64_t off, uint64_t len)
{
    char buf[65536];
    while (len > 0) {
        size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
        ssize_t n = real_pread(f->live_fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            die("cannot read %s: %s", f->name, strerror(errno));
        }
        if (n == 0) {
            return; /* written, then the file was cut shorter: not ours */
        }
        write_all(f->durable_fd, buf, (size_t)n, (off_t)off, f->name);
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
}

/* A sync covered every write so far: they become durable. Caller holds
 * mtx. */
static void
flush(pl_file *f)
{
    for (size_t i = 0; i < f->n_pending; i++) {
        copy_range(f, f->pending[i].off, f->pending[i].len);
    }
    f->n_pending = 0;
    if (real_ftruncate(f->dirty_fd, 0) != 0) {
        die("cannot empty %s%s: %s", f->name, PL_DIRTY, strerror(errno));
    }
}

/* Records a write that landed in the live file. Caller holds mtx. */
static void
note_write(pl_file *f, bool dsync, uint64_t off, uint64_t len)
{
    if (len == 0) {
        return;
    }
    if (dsync) {
        /* O_DSYNC makes this write's range durable and nothing else, as
         * the kernel syncs only the range written (vfs_fsync_range). */
        copy_range(f, off, len);
        return;
    }
    pl_extent e = { off, len };
    write_all(f->dirty_fd, &e, sizeof(e), -1, f->name);
    if (f->n_pending == f->cap_pending) {
        size_t cap = f->cap_pending ? f->cap_pending * 2 : 64;
        pl_extent *p = realloc(f->pending, cap * sizeof(*p));
        if (p == NULL) {
            die("out of memory");
        }
        f->pending = p;
        f->cap_pending = cap;
    }
    f->pending[f->n_pending++] = e;
}

static int
open_state(const char *name, const char *suffix, int flags)
{
    char path[PATH_MAX];
    if (pl_state_path(path, sizeof(path), pl.state, name, suffix) != 0) {
        die("state path for %s is too long", name);
    }
    int fd = real_open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0) {
        die("cannot open %s: %s", path, strerror(errno));
    }
    return fd;
}

/* The first open of a file in this process: what it holds now is taken as
 * durable (a cut left exactly that, or the machine stayed up). The old
 * image goes first, so a kill before the new one is complete leaves no
 * image and the cut tool leaves the file alone: nothing was written yet.
 * Caller holds mtx. */
static pl_file *
start_tracking(const char *name, const char *path, const struct stat *sb)
{
    char old[PATH_MAX], tmp[PATH_MAX];
    pl_file *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        die("out of memory");
    }
    f->dev = sb->st_dev;
    f->ino = sb->st_ino;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->live_fd = real_open(path, O_RDONLY | O_CLOEXEC);
    if (f->live_fd < 0) {
        die("cannot open %s to read: %s", path, strerror(errno));
    }
    if (pl_state_path(old, sizeof(old), pl.state, name, PL_DURABLE) != 0 ||
        pl_state_path(tmp, sizeof(tmp), pl.state, name, ".tmp") != 0) {
        die("state path for %s is too long", name);
    }
    if (unlink(old) != 0 && errno != ENOENT) {
        die("cannot remove %s: %s", old, strerror(errno));
    }
    f->dirty_fd =
        open_state(name, PL_DIRTY, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    f->durable_fd = open_state(name, ".tmp", O_RDWR | O_CREAT | O_TRUNC);
    copy_range(f, 0, (uint64_t)sb->st_size);
    if (rename(tmp, old) != 0) {
        die("cannot rename %s: %s", tmp, strerror(errno));
    }
    f->next = pl.files;
    pl.files = f;
    return f;
}

/* After a successful open of path on fd. */
static void
after_open(int dirfd, const char *path, int flags, int fd)
{
    char name[NAME_MAX + 1], full[PATH_MAX];
    struct stat sb;

    if (!pl.on || fd < 0 || !watched(dirfd, path, name)) {
        return;
    }
    if ((flags & (O_TRUNC | O_APPEND)) != 0) {
        die("%s opened with O_TRUNC or O_APPEND, which this layer does not "
            "model",
            name);
    }
    if (fd >= PL_MAX_FD) {
        die("%s opened on descriptor %d, above %d", name, fd, PL_MAX_FD);
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        return;
    }
    int n = snprintf(full, sizeof(full), "%s/%s", pl.dir, name);
    if (n < 0 || (size_t)n >= sizeof(full)) {
        die("path of %s is too long", name);
    }
    pthread_mutex_lock(&pl.mtx);
    pl_file *f = pl.files;
    while (f != NULL && (f->dev != sb.st_dev || f->ino != sb.st_ino)) {
        f = f->next;
    }
    if (f == NULL) {
        f = start_tracking(name, full, &sb);
    }
    bool dsync = (flags & (O_DSYNC | O_SYNC)) != 0;
    atomic_store(&pl.fds[fd], (uintptr_t)f | (dsync ? 1u : 0u));
    pthread_mutex_unlock(&pl.mtx);
}

/* ---- the wrapped calls ---------------------------------------------------
 */

static mode_t
mode_arg(int flags, va_list ap)
{
    if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
        return (mode_t)va_arg(ap, int);
    }
    return 0;
}

int
open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    ready();
    int fd = real_open(path, flags, mode);
    after_open(AT_FDCWD, path, flags, fd);
    return fd;
}

int
openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    ready();
    int fd = real_openat(dirfd, path, flags, mode);
    after_open(dirfd, path, flags, fd);
    return fd;
}

/* Large-file names of the same calls: one body each, one prototype. */
int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char *path, int flags, ...)
    __attribute__((alias("openat")));

int
creat(const char *path, mode_t mode)
{
    return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int creat64(const char *path, mode_t mode) __attribute__((alias("creat")));

/* The four ways LMDB (or anyone) writes: each wrapper passes its own call
 * on, so the kernel sees exactly the call the program made. */
typedef enum write_kind {
    W_WRITE,
    W_PWRITE,
    W_WRITEV,
    W_PWRITEV,
} write_kind;

static ssize_t
real_write_kind(write_kind k, int fd, const struct iovec *iov, int iovcnt,
                off_t off)
{
    switch (k) {
    case W_WRITE:
        return real_write(fd, iov[0].iov_base, iov[0].iov_len);
    case W_PWRITE:
        return real_pwrite(fd, iov[0].iov_base, iov[0].iov_len, off);
    case W_WRITEV:
        return real_writev(fd, iov, iovcnt);
    case W_PWRITEV:
        return real_pwritev(fd, iov, iovcnt, off);
    }
    errno = EINVAL;
    return -1;
}

/* A tracked write is made and noted under the lock, so no sync can slip
 * between them. write() and writev() go to the descriptor's offset, which
 * LMDB sets with lseek() right before: it is read under the lock, and only
 * one thread writes a tracked file at a time. */
static ssize_t
noted_write(write_kind k, int fd, const struct iovec *iov, int iovcnt,
            off_t off)
{
    bool dsync;
    ready();
    pl_file *f = tracked(fd, &dsync);
    if (f == NULL) {
        return real_write_kind(k, fd, iov, iovcnt, off);
    }
    pthread_mutex_lock(&pl.mtx);
    if (k == W_WRITE || k == W_WRITEV) {
        off = real_lseek(fd, 0, SEEK_CUR);
    }
    ssize_t n = real_write_kind(k, fd, iov, iovcnt, off);
    if (n > 0) {
        note_write(f, dsync, (uint64_t)off, (uint64_t)n);
    }
    pthread_mutex_unlock(&pl.mtx);
    return n;
}

/* iovec holds a non-const pointer; the bytes are only read. */
static struct iovec
one_iov(const void *buf, size_t len)
{
    struct iovec v = { (void *)(uintptr_t)buf, len };
    return v;
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
    struct iovec v = one_iov(buf, len);
    return noted_write(W_PWRITE, fd, &v, 1, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
    return pwrite(fd, buf, len, (off_t)off);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    return noted_write(W_PWRITEV, fd, iov, iovcnt, off);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t off)
{
    return pwritev(fd, iov, iovcnt, (off_t)off);
}

ssize_t
pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
    ready();
    if (tracked(fd, NULL) != NULL) {
        die("pwritev2 on a tracked file is not modelled");
    }
    ssize_t (*next)(int, const struct iovec *, int, off_t, int);
    resolve_sym("pwritev2", &next, sizeof(next));
    return next(fd, iov, iovcnt, off, flags);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
    struct iovec v = one_iov(buf, len);
    return noted_write(W_WRITE, fd, &v, 1, 0);
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
    return noted_write(W_WRITEV, fd, iov, iovcnt, 0);
}

/* fsync and fdatasync both make every write to the file durable, through
 * any of its descriptors: what is durable is the inode's data. */
static int
sync_file(int fd, int (*real)(int))
{
    ready();
    pl_file *f = tracked(fd, NULL);
    if (f == NULL) {
        return real(fd);
    }
    pthread_mutex_lock(&pl.mtx);
    int rc = real(fd);
    if (rc == 0) {
        flush(f); /* a failed sync leaves the data where it was */
    }
    pthread_mutex_unlock(&pl.mtx);
    return rc;
}

int
fsync(int fd)
{
    ready();
    return sync_file(fd, real_fsync);
}

int
fdatasync(int fd)
{
    ready();
    return sync_file(fd, real_fdatasync);
}

static void
flush_all(void)
{
    pthread_mutex_lock(&pl.mtx);
    for (pl_file *f = pl.files; f != NULL; f = f->next) {
        flush(f);
    }
    pthread_mutex_unlock(&pl.mtx);
}

void
sync(void)
{
    ready();
    real_sync();
    flush_all();
}

int
syncfs(int fd)
{
    ready();
    int rc = real_syncfs(fd);
    if (rc == 0) {
        flush_all(); /* every tracked file is in one directory */
    }
    return rc;
}

int
close(int fd)
{
    ready();
    if (tracked(fd, NULL) != NULL) {
        pthread_mutex_lock(&pl.mtx);
        atomic_store(&pl.fds[fd], 0);
        pthread_mutex_unlock(&pl.mtx);
    }
    return real_close(fd);
}

/* A duplicate shares the file and its O_DSYNC flag. */
static int
after_dup(int oldfd, int newfd)
{
    if (newfd >= 0 && newfd < PL_MAX_FD) {
        uintptr_t v =
            oldfd >= 0 && oldfd < PL_MAX_FD ? atomic_load(&pl.fds[oldfd]) : 0;
        atomic_store(&pl.fds[newfd], v);
    }
    return newfd;
}

int
dup(int fd)
{
    ready();
    return after_dup(fd, real_dup(fd));
}

int
dup2(int fd, int newfd)
{
    ready();
    return after_dup(fd, real_dup2(fd, newfd));
}

int
dup3(int fd, int newfd, int flags)
{
    ready();
    return after_dup(fd, real_dup3(fd, newfd, flags));
}

/* Stores through a writable shared map reach the file without a call this
 * layer sees (MDB_WRITEMAP does that): refuse rather than miss them. */
void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    ready();
    pl_file *f = tracked(fd, NULL);
    if (f != NULL && (prot & PROT_WRITE) != 0 && (flags & MAP_SHARED) != 0) {
        die("%s mapped shared and writable, which this layer cannot see",
            f->name);
    }
    return real_mmap(addr, len, prot, flags, fd, off);
}

void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
    return mmap(addr, len, prot, flags, fd, (off_t)off);
}

int
ftruncate(int fd, off_t len)
{
    ready();
    pl_file *f = tracked(fd, NULL);
    if (f != NULL) {
        die("ftruncate of %s is not modelled", f->name);
    }
    return real_ftruncate(fd, len);
}

int
ftruncate64(int fd, off64_t len)
{
    return ftruncate(fd, (off_t)len);
}

/* Mode 0 only (the store reserves its map so): it changes no byte that
 * exists and may make the file longer, with zeros, which like any write
 * a power cut keeps only once a sync covered it. */
int
fallocate(int fd, int mode, off_t off, off_t len)
{
    ready();
    int (*next)(int, int, off_t, off_t);
    resolve_sym("fallocate", &next, sizeof(next));
    pl_file *f = tracked(fd, NULL);
    if (f == NULL) {
        return next(fd, mode, off, len);
    }
    if (mode != 0) {
        die("fallocate of %s with mode %d is not modelled", f->name, mode);
    }
    struct stat before, after;
    pthread_mutex_lock(&pl.mtx);
    int rc = fstat(fd, &before);
    if (rc == 0) {
        rc = next(fd, mode, off, len);
    }
    if (rc == 0 && fstat(fd, &after) == 0 && after.st_size > before.st_size) {
        note_write(f, false, (uint64_t)before.st_size,
                   (uint64_t)(after.st_size - before.st_size));
    }
    pthread_mutex_unlock(&pl.mtx);
    return rc;
}

int
fallocate64(int fd, int mode, off64_t off, off64_t len)
{
    return fallocate(fd, mode, (off_t)off, (off_t)len);
}

int
posix_fallocate(int fd, off_t off, off_t len)
{
    ready();
    pl_file *f = tracked(fd, NULL);
    if (f != NULL) {
        die("posix_fallocate of %s is not modelled", f->name);
    }
    int (*next)(int, off_t, off_t);
    resolve_sym("posix_fallocate", &next, sizeof(next));
    return next(fd, off, len);
}
