/*
 * env.c - the LMDB environment: open with schema check, close, transactions
 * with the map gate, map growth and the error translation every other file
 * uses.
 *
 * Invariants:
 * - MDB_WRITEMAP only with STORE_SYNC_NONE, and only over disk blocks
 *   reserved for the whole map first (reserve_map): a store to a page the
 *   file has no block for is SIGBUS on a full disk. No MDB_DUPSORT (0.9.24
 *   misses later DUPSORT fixes); see DESIGN.md "Pitfalls".
 * - mdb_env_set_mapsize runs only while the gate is held exclusively, i.e.
 *   with no transaction alive in the process.
 * - A failed operation poisons its transaction, so partial work is never
 *   committed by accident.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np: writer preference */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <lmdb.h>
#include <xxhash.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/log.h"
#include "store/store_int.h"
#include "store/wal.h"

/* The store whose batch the calling thread commits (store_batch_attach):
 * the batch's fields (outer and the rest) are that thread's alone, so
 * other threads must not even look at them. */
static _Thread_local const store *batch_store;

static bool
on_batch_thread(const store *s)
{
    return batch_store == s;
}

#define META_INSTANCE "instance"
#define META_PROBE    "probe" /* store_probe_write's last time */
#define MAX_DBS       16
#define MAP_STEP_MIN  ((size_t)1 << 20)    /* least a writable map grows by */
#define RESERVE_SLACK ((uint64_t)64 << 20) /* or 1/16 of a small disk */

static void
default_fatal(void *arg, const hp_status *st)
{
    (void)arg;
    fprintf(stderr,
            "hopper: store failed fatally: %s (%s); exiting so a "
            "supervisor can restart with a clean state\n",
            st->msg, st->reason);
    _exit(70);
}

void
store_opts_init(store_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->sync = STORE_SYNC_FULL;
    o->map_size = 64u << 20;
    o->max_map_size = (size_t)64 << 30;
    o->max_readers = 256;
    o->rand = hp_rand_openssl;
    o->fatal = default_fatal;
}

static void
fill_limits(store_limits *l)
{
    const store_limits d = {
        .max_payload = 1u << 20,
        .max_batch = 1000,
        .max_headers = 64,
        .max_header_bytes = 64u << 10,
        .max_result = 64u << 10,
        .max_error = 4u << 10,
        .max_dedupe_key = 512,
        .max_consumer = 128,
        .min_lease_ms = 100,
        .max_lease_ms = 24u * 3600 * 1000,
        .max_max_attempts = 1000,
        .max_delay_ms = 366ull * 24 * 3600 * 1000,
    };
#define DEF(f)       \
    if (l->f == 0) { \
        l->f = d.f;  \
    }
    DEF(max_payload)
    DEF(max_batch)
    DEF(max_headers)
    DEF(max_header_bytes)
    DEF(max_result)
    DEF(max_error)
    DEF(max_dedupe_key)
    DEF(max_consumer)
    DEF(min_lease_ms)
    DEF(max_lease_ms)
    DEF(max_max_attempts)
    DEF(max_delay_ms)
#undef DEF
}

hp_code
store_status_from_mdb(store *s, int rc, hp_status *st)
{
    switch (rc) {
    case MDB_SUCCESS:
        return HP_OK;
    case MDB_NOTFOUND:
        return hp_status_set(st, HP_NOT_FOUND, HP_R_NO_MESSAGE, "not found");
    case MDB_MAP_FULL:
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_MAP_FULL,
                             "store map is full at %zu bytes", s->map_size);
    case MDB_READERS_FULL:
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_READERS_FULL,
                             "too many concurrent readers");
    case MDB_TXN_FULL:
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_STORE_ERROR,
                             "transaction has too many dirty pages");
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return hp_status_set(st, HP_DATA_LOSS, HP_R_CORRUPT_RECORD,
                             "store file is damaged: %s", mdb_strerror(rc));
    case MDB_MAP_RESIZED:
        return hp_status_set(st, HP_UNAVAILABLE, HP_R_BUSY,
                             "map resized by another process");
    case MDB_PANIC:
    case EIO: {
        hp_code code = hp_status_set(st, HP_INTERNAL, HP_R_IO_ERROR,
                                     "store i/o failed: %s", mdb_strerror(rc));
        s->opts.fatal(s->opts.fatal_arg, st);
        return code;
    }
    case ENOSPC:
    case ENOMEM:
    case EACCES:
    case EROFS:
        return hp_status_from_errno(st, rc, "store");
    default:
        return hp_status_set(st, HP_INTERNAL, HP_R_STORE_ERROR, "lmdb: %s",
                             mdb_strerror(rc));
    }
}

/* ---- open / close ------------------------------------------------------- */

static const struct {
    const char *name;
    size_t off;
} TABLES[] = {
    { "messages", offsetof(store, db_messages) },
    { "ready", offsetof(store, db_ready) },
    { "lane_ready", offsetof(store, db_lane_ready) },
    { "leases", offsetof(store, db_leases) },
    { "schedule", offsetof(store, db_schedule) },
    { "dedupe", offsetof(store, db_dedupe) },
    { "dead", offsetof(store, db_dead) },
    { "expiry", offsetof(store, db_expiry) },
    { "lanes", offsetof(store, db_lanes) },
    { "meta", offsetof(store, db_meta) },
    { "replies", offsetof(store, db_replies) },
    { "deliver", offsetof(store, db_deliver) },
    { "secrets", offsetof(store, db_secrets) },
};

unsigned
store_table_count(void)
{
    return HP_ARRAY_LEN(TABLES);
}

MDB_dbi
store_table_dbi(const store *s, unsigned i)
{
    return *(const MDB_dbi *)(const void *)((const char *)s + TABLES[i].off);
}

/* Every put and delete asks this while the log is on: a lookup in the
 * array open_dbs filled, not a walk of the list. */
unsigned
store_table_index(const store *s, MDB_dbi db)
{
    if (db >= HP_ARRAY_LEN(s->table_of_dbi) || s->table_of_dbi[db] == 0xff) {
        abort(); /* a table not in the list cannot be logged or replayed */
    }
    return s->table_of_dbi[db];
}

uint32_t
store_table_layout(void)
{
    uint32_t h = 0;
    for (size_t i = 0; i < HP_ARRAY_LEN(TABLES); i++) {
        h = XXH32(TABLES[i].name, strlen(TABLES[i].name) + 1, h);
    }
    return h;
}

static hp_code
open_dbs(store *s, MDB_txn *txn, hp_status *st)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(TABLES); i++) {
        MDB_dbi *dbi = (MDB_dbi *)(void *)((char *)s + TABLES[i].off);
        int rc = mdb_dbi_open(txn, TABLES[i].name, MDB_CREATE, dbi);
        if (rc != 0) {
            return store_status_from_mdb(s, rc, st);
        }
        if (*dbi >= HP_ARRAY_LEN(s->table_of_dbi)) {
            return hp_status_set(st, HP_INTERNAL, HP_R_STORE_ERROR,
                                 "table handle %u out of range", *dbi);
        }
        s->table_of_dbi[*dbi] = (uint8_t)i;
    }
    return HP_OK;
}

/* Decides whether the environment is a Hopper store this build can use.
 * *fresh is set when it is empty and must be initialised; an older schema
 * is fine (store_upgrade brings it up to date). Writes nothing. */
static hp_code
check_schema(store *s, MDB_txn *txn, bool *fresh, hp_status *st)
{
    MDB_dbi meta, main_db;
    MDB_stat ms;
    int rc = mdb_dbi_open(txn, "meta", 0, &meta);

    *fresh = false;
    if (rc == MDB_NOTFOUND) {
        if ((rc = mdb_dbi_open(txn, NULL, 0, &main_db)) != 0 ||
            (rc = mdb_stat(txn, main_db, &ms)) != 0) {
            return store_status_from_mdb(s, rc, st);
        }
        if (ms.ms_entries != 0) {
            return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE,
                                 "'%s' holds an LMDB environment that is not "
                                 "a Hopper store; refusing to touch it",
                                 s->opts.dir);
        }
        *fresh = true;
        return HP_OK;
    }
    if (rc != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    MDB_val k = store_val(META_SCHEMA, strlen(META_SCHEMA)), v;
    rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 4)) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE,
                             "'%s' has no Hopper schema version; refusing "
                             "to touch it",
                             s->opts.dir);
    }
    if (rc != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    uint32_t version = hp_get_u32(v.mv_data);
    if (version == 0) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE,
                             "'%s' has Hopper schema 0, which never existed; "
                             "refusing to touch it",
                             s->opts.dir);
    }
    if (version > STORE_SCHEMA_VERSION) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_SCHEMA_TOO_NEW,
                             "store in '%s' has schema %u but this build "
                             "knows only %u; use a newer hopperd",
                             s->opts.dir, version, STORE_SCHEMA_VERSION);
    }
    return HP_OK;
}

static hp_code
init_meta(store *s, MDB_txn *txn, hp_status *st)
{
    uint8_t ver[4], inst[16];
    hp_put_u32(ver, STORE_SCHEMA_VERSION);
    if (s->opts.rand(s->opts.rand_arg, inst, sizeof(inst)) != 0) {
        return hp_status_set(st, HP_INTERNAL, HP_R_STORE_ERROR,
                             "random source failed");
    }
    MDB_val k = store_val(META_SCHEMA, strlen(META_SCHEMA));
    MDB_val v = store_val(ver, sizeof(ver));
    int rc = mdb_put(txn, s->db_meta, &k, &v, MDB_NOOVERWRITE);
    if (rc == 0) {
        k = store_val(META_INSTANCE, strlen(META_INSTANCE));
        v = store_val(inst, sizeof(inst));
        rc = mdb_put(txn, s->db_meta, &k, &v, MDB_NOOVERWRITE);
    }
    return store_status_from_mdb(s, rc, st);
}

static hp_code
read_instance(store *s, MDB_txn *txn, hp_status *st)
{
    MDB_val k = store_val(META_INSTANCE, strlen(META_INSTANCE)), v;
    int rc = mdb_get(txn, s->db_meta, &k, &v);
    if (rc == 0 && v.mv_size == sizeof(s->instance)) {
        memcpy(s->instance, v.mv_data, sizeof(s->instance));
        return HP_OK;
    }
    if (rc == 0 || rc == MDB_NOTFOUND) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE,
                             "'%s' has no store instance id", s->opts.dir);
    }
    return store_status_from_mdb(s, rc, st);
}

void
store_get_instance(const store *s, uint8_t out[16])
{
    memcpy(out, s->instance, sizeof(s->instance));
}

/* Some file systems do not sync directories; there is nothing more to do. */
bool
dir_sync_unsupported(int err)
{
    return err == EINVAL || err == ENOTSUP;
}

static hp_code
prepare_dir(const char *dir, hp_status *st)
{
    struct stat sb;
    if (mkdir(dir, 0700) == 0) {
        /* A new directory's own entry must be durable before anything
         * in it is acknowledged. */
        char path[4096];
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/') {
            len--;
        }
        if (len >= sizeof(path)) {
            return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                                 "data dir path is too long");
        }
        memcpy(path, dir, len);
        path[len] = '\0';
        if (store_sync_parent(path) != 0 && !dir_sync_unsupported(errno)) {
            return hp_status_from_errno(st, errno, "cannot sync data dir");
        }
    } else if (errno != EEXIST) {
        return hp_status_from_errno(st, errno, "cannot create data dir");
    }
    if (stat(dir, &sb) != 0) {
        return hp_status_from_errno(st, errno, "cannot stat data dir");
    }
    if (!S_ISDIR(sb.st_mode)) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_IO_ERROR,
                             "data dir '%s' is not a directory", dir);
    }
    if (access(dir, R_OK | W_OK | X_OK) != 0) {
        return hp_status_from_errno(st, errno, "data dir is not writable");
    }
    return HP_OK;
}

/* Two brokers writing one data dir would hand out the same messages twice
 * and LMDB forbids opening one environment twice in a process: an flock on
 * a file of our own refuses the second opener, and dies with the process. */
static hp_code
lock_dir(store *s, hp_status *st)
{
    char path[4096];
    if (store_dir_file(path, sizeof(path), s->opts.dir, "hopper.lock") != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "data dir path is too long");
    }
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        return hp_status_from_errno(st, errno, "cannot open the lock file");
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_DATA_DIR_BUSY,
                                 "data dir '%s' is in use by another hopperd "
                                 "(or another store in this process)",
                                 s->opts.dir);
        }
        return hp_status_from_errno(st, errno, "cannot lock the data dir");
    }
    return HP_OK;
}

/* Allocates data.mdb's blocks up to size bytes (blocks that exist are
 * kept, holes get blocks); bytes past keep hold nothing yet. 0 or an errno.
 *
 * A fallocate that fails for want of space keeps what it allocated
 * (ext4), which would leave the disk full: a reservation that would leave
 * the file system less than RESERVE_SLACK is refused before it starts, and
 * one that fails anyway gives back what it took. */
static int
reserve_map(store *s, size_t keep, size_t size)
{
    int fd;
    struct stat sb;
    struct statvfs vs;
    if (mdb_env_get_fd(s->env, &fd) != 0) {
        return EINVAL;
    }
    if (fstat(fd, &sb) != 0 || fstatvfs(fd, &vs) != 0) {
        return errno;
    }
    /* st_blocks only estimates what is missing (it counts metadata too):
     * fallocate runs whatever it says, cheaply over blocks that exist. */
    uint64_t have = (uint64_t)sb.st_blocks * 512;
    uint64_t need = size > have ? size - have : 0;
    uint64_t total = (uint64_t)vs.f_blocks * vs.f_frsize;
    uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize;
    uint64_t slack = total / 16 < RESERVE_SLACK ? total / 16 : RESERVE_SLACK;
    if (need > avail || avail - need < slack) {
        return ENOSPC;
    }
    /* Not posix_fallocate: where the file system cannot allocate, glibc
     * writes every block of the map instead; that is a map we do not get. */
    if (fallocate(fd, 0, 0, (off_t)size) == 0) {
        return 0;
    }
    int err = errno;
    if (size > keep && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                 (off_t)keep, (off_t)(size - keep)) != 0) {
        hp_log(HP_LOG_WARN, "map reservation not given back",
               "bytes=%zu errno=%d", size - keep, errno);
    }
    return err;
}

/* Reserves the open environment's whole map (its size in *map_size):
 * what a writable map or batched commits need before their pages may be
 * written. 0 or an errno. */
static int
reserve_open_map(store *s, size_t *map_size)
{
    MDB_envinfo info;
    MDB_stat ms;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &ms);
    *map_size = info.me_mapsize;
    return reserve_map(s, (info.me_last_pgno + 1) * (size_t)ms.ms_psize,
                       info.me_mapsize);
}

int
store_dir_file(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

static hp_code
lmdb_open(store *s, unsigned flags, hp_status *st)
{
    int rc;
    if ((rc = mdb_env_create(&s->env)) != 0 ||
        (rc = mdb_env_set_maxdbs(s->env, MAX_DBS)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, s->opts.max_readers)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, s->opts.map_size)) != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    if ((rc = mdb_env_open(s->env, s->opts.dir, flags, 0600)) != 0) {
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
            return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE,
                                 "'%s' holds a file that is not a usable "
                                 "LMDB environment: %s",
                                 s->opts.dir, mdb_strerror(rc));
        }
        return store_status_from_mdb(s, rc, st);
    }
    return HP_OK;
}

/* With --sync none, data.mdb is mapped writable (MDB_WRITEMAP): a
 * commit's dirty pages are stores to memory instead of a pwrite each
 * (W1 1 conn: broker CPU per message 86 -> 52 µs, docs/benchmarks.md).
 * LMDB sizes the file to the map, sparse; the map is reserved on disk
 * before anything is written through it, and if the disk cannot hold it
 * the store opens without a writable map. With --sync full the log's
 * checkpoints sync data.mdb every few commits, after which the first
 * store to each page faults again: slower than pwrite there (measured),
 * so it is not used. */
static hp_code
lmdb_open_writemap(store *s, unsigned flags, hp_status *st)
{
    /* LMDB resizes data.mdb to the map as it opens it writable: a file
     * that is not a store of this build's schema or older must be refused
     * untouched, so it is looked at through a read-only open first. */
    char file[4096];
    struct stat sb;
    if (store_dir_file(file, sizeof(file), s->opts.dir, "data.mdb") == 0 &&
        stat(file, &sb) == 0) {
        MDB_txn *txn;
        bool fresh;
        hp_code code = lmdb_open(s, MDB_NOTLS | MDB_RDONLY, st);
        if (code == HP_OK) {
            int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
            if (rc != 0) {
                code = store_status_from_mdb(s, rc, st);
            } else {
                code = check_schema(s, txn, &fresh, st);
                mdb_txn_abort(txn);
            }
        }
        mdb_env_close(s->env);
        s->env = NULL;
        if (code != HP_OK) {
            return code;
        }
    }
    hp_code code = lmdb_open(s, flags | MDB_WRITEMAP, st);
    if (code != HP_OK) {
        return code;
    }
    size_t map_size;
    int err = reserve_open_map(s, &map_size);
    if (err == 0) {
        s->writemap = s->reserved = true;
        return HP_OK;
    }
    hp_log(HP_LOG_WARN, "data.mdb not mapped writable",
           "reason=\"cannot reserve %zu bytes: %s\" effect=\"--sync none "
           "writes each page with a system call\"",
           map_size, strerror(err));
    mdb_env_close(s->env);
    s->env = NULL;
    return lmdb_open(s, flags, st);
}

static hp_code
open_env(store *s, hp_status *st)
{
    int rc;
    unsigned flags = MDB_NOTLS;
    MDB_txn *txn;
    bool fresh;
    hp_code code;

    if (s->opts.sync == STORE_SYNC_NONE) {
        flags |= MDB_NOSYNC;
    } else if (s->opts.defer_meta_sync) {
        flags |= MDB_NOMETASYNC;
    }
    if ((code = lock_dir(s, st)) != HP_OK ||
        (code = wal_restore(s->opts.dir, st)) != HP_OK) {
        return code;
    }
    if (s->opts.sync == STORE_SYNC_NONE && !s->opts.no_writemap) {
        code = lmdb_open_writemap(s, flags, st);
    } else {
        code = lmdb_open(s, flags, st);
    }
    if (code != HP_OK) {
        return code;
    }
    /* LMDB syncs data.mdb, never the directory that names it: a store
     * created just now could lose its file to a power cut along with
     * everything acknowledged in it. */
    char file[4096];
    if (store_dir_file(file, sizeof(file), s->opts.dir, "data.mdb") == 0 &&
        store_sync_parent(file) != 0 && !dir_sync_unsupported(errno)) {
        return hp_status_from_errno(st, errno, "cannot sync data dir");
    }
    int dead = 0;
    if ((rc = mdb_reader_check(s->env, &dead)) != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_size = info.me_mapsize;
    bool log = s->opts.sync == STORE_SYNC_FULL && !s->opts.defer_meta_sync &&
               !s->opts.no_wal;
    if ((code = wal_pin(s, log, st)) != HP_OK) {
        return code;
    }

    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    if ((code = check_schema(s, txn, &fresh, st)) != HP_OK) {
        goto abort;
    }
    if ((code = open_dbs(s, txn, st)) != HP_OK) {
        goto abort;
    }
    if (fresh && (code = init_meta(s, txn, st)) != HP_OK) {
        goto abort;
    }
    if ((code = read_instance(s, txn, st)) != HP_OK) {
        goto abort;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    uint64_t replayed;
    if ((code = wal_recover(s, &replayed, st)) != HP_OK ||
        (code = store_upgrade(s, st)) != HP_OK) {
        return code;
    }
    s->replayed = replayed;
    return wal_start(s, log, st);
abort:
    mdb_txn_abort(txn);
    return code;
}

hp_code
store_open(const store_opts *o, store **out, hp_status *st)
{
    hp_code code;
    pthread_rwlockattr_t ga;

    if (o->dir == NULL || o->dir[0] == '\0') {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "store needs a data directory");
    }
    if (o->max_map_size != 0 && o->map_size > o->max_map_size) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "map size %zu is above the ceiling %zu",
                             o->map_size, o->max_map_size);
    }
    if ((code = prepare_dir(o->dir, st)) != HP_OK) {
        return code;
    }
    store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    s->opts = *o;
    s->lock_fd = -1;
    memset(s->table_of_dbi, 0xff, sizeof(s->table_of_dbi));
    store_opts d;
    store_opts_init(&d);
    if (s->opts.map_size == 0) {
        s->opts.map_size = d.map_size;
    }
    if (s->opts.max_map_size == 0) {
        s->opts.max_map_size = d.max_map_size;
    }
    if (s->opts.full_reserve == 0) {
        /* An eighth keeps a small map usable and the 64 MiB cap keeps a
         * big one from locking away gigabytes. The floor is for small
         * maps: a claim of four page-sized messages at the ceiling of a
         * 1 MiB map (store_disk_test) needed 97-104 KiB on quiet runs,
         * but 128 KiB once fell short on a busy machine, where the map's
         * layout depends on when checkpoints ran while it filled (pages
         * freed since the last one are not yet reusable); 256 KiB is
         * twice what was measured. */
        size_t r = s->opts.max_map_size / 8;
        s->opts.full_reserve = r < (256u << 10)  ? (256u << 10)
                               : r > (64u << 20) ? (64u << 20)
                                                 : r;
    }
    if (s->opts.max_readers == 0) {
        s->opts.max_readers = d.max_readers;
    }
    if (s->opts.rand == NULL) {
        s->opts.rand = d.rand;
    }
    if (s->opts.fatal == NULL) {
        s->opts.fatal = d.fatal;
    }
    fill_limits(&s->opts.limits);
    s->dir_copy = strdup(o->dir);
    s->opts.dir = s->dir_copy;
    hp_idgen_init(&s->idgen);
    hp_buf_init(&s->scratch);
    hp_buf_init(&s->scratch2);
    hp_buf_init(&s->rewrite);
    pthread_rwlockattr_init(&ga);
    pthread_rwlockattr_setkind_np(&ga,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->gate, &ga);
    pthread_rwlockattr_destroy(&ga);
    if (s->dir_copy == NULL) {
        code = hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
        store_close(s);
        return code;
    }
    if ((code = open_env(s, st)) != HP_OK) {
        store_close(s);
        return code;
    }
    *out = s;
    return HP_OK;
}

void
store_close(store *s)
{
    if (s == NULL) {
        return;
    }
    if (s->env != NULL) {
        hp_status st;
        if (on_batch_thread(s) && s->outer != NULL &&
            store_publish(s, &st) != HP_OK) {
            hp_log(HP_LOG_ERROR, "publish at close failed",
                   "reason=%s err=\"%s\"", st.reason, st.msg);
        }
        /* A batch left open by another thread (its owner must publish it
         * before the store closes; commitq's writer does) is the log's:
         * the next open replays it. */
        if (on_batch_thread(s)) {
            batch_store = NULL; /* a later store may get this address */
        }
        wal_stop(s);
        mdb_env_close(s->env);
    }
    if (s->lock_fd >= 0) {
        close(s->lock_fd); /* releases the flock */
    }
    pthread_rwlock_destroy(&s->gate);
    hp_buf_release(&s->scratch);
    hp_buf_release(&s->scratch2);
    hp_buf_release(&s->rewrite);
    free(s->pub_wakes);
    free(s->dir_copy);
    free(s);
}

const store_limits *
store_get_limits(const store *s)
{
    return &s->opts.limits;
}

void
store_get_info(store *s, store_info *out)
{
    MDB_envinfo info;
    MDB_stat ms;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &ms);
    out->map_size = info.me_mapsize;
    out->max_map_size = s->opts.max_map_size;
    out->used_bytes = (info.me_last_pgno + 1) * (size_t)ms.ms_psize;
    out->last_txn_id = info.me_last_txnid;
    out->readers = info.me_numreaders;
    out->log_replayed = s->replayed;
    out->log_bytes = wal_bytes(s);
    out->republished = atomic_load(&s->republished);
    out->writemap = s->writemap;
}

hp_code
store_clear_stale_readers(store *s, int *cleared, hp_status *st)
{
    *cleared = 0;
    return store_status_from_mdb(s, mdb_reader_check(s->env, cleared), st);
}

hp_code
store_sync_now(store *s, hp_status *st)
{
    return store_status_from_mdb(s, mdb_env_sync(s->env, 1), st);
}

uint64_t
store_last_txn(store *s)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    return info.me_last_txnid;
}

uint64_t
store_txn_id(const store_txn *t)
{
    return mdb_txn_id(t->mdb);
}

/* ---- transactions ------------------------------------------------------- */

/* Hands a commit's wake notes to on_ready, once readers can see it. */
static void
tell_ready(store *s, const wake_note *wakes, size_t n, bool all)
{
    if (s->opts.on_ready == NULL) {
        return;
    }
    if (all) {
        hp_str none = { "", 0 };
        s->opts.on_ready(s->opts.on_ready_arg, none, none);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        s->opts.on_ready(s->opts.on_ready_arg, hp_lane_key_scope(&wakes[i].key),
                         hp_lane_key_lane(&wakes[i].key));
    }
}

/* ---- batched commits ---------------------------------------------------- */

static void txn_end(store_txn *t);

/* A batch is committed to LMDB once it is this old or holds this many
 * commits, whichever comes first, and when its thread has had nothing to
 * do for BATCH_IDLE_US (store_batch_opts may say otherwise). A longer
 * batch shares more pages among its commits (W1 1 conn wrote 10 KB to
 * the disk per message with 10 ms batches, 17 KB with 2 ms; direct runs,
 * /proc/diskstats), but beside Redis (../shared/peers, 30,000 messages,
 * two rounds each) 2, 5 and 10 ms gave the same throughput within the
 * spread while W3's p99 grew with the length (6.5-8.2, 9.1-9.9 and 13.1-13.3
 * ms): the batch's LMDB commit stalls the writer longer. Reads that must
 * see a batch publish it at once; the webhook deliverer hears of new
 * messages when it lands. */
#define BATCH_MAX_US   2000u
#define BATCH_MAX_TXNS 64u
#define BATCH_IDLE_US  1000u

static bool
batching(const store *s)
{
    return on_batch_thread(s) && s->wal != NULL && wal_logging(s) &&
           s->map_size < s->opts.max_map_size;
}

bool
store_batch_attach(store *s, const store_batch_opts *o)
{
    if (s->wal == NULL || !wal_logging(s)) {
        return false;
    }
    if (!s->reserved) {
        /* A batch's pages reach the file after its commits were
         * answered, so a full disk must not be able to refuse them then:
         * the map is reserved on disk first, as for a writable map, and
         * a disk that has no room for it is found by a commit's log
         * append or by the map's growth, before anyone is answered. */
        size_t map_size;
        int err = reserve_open_map(s, &map_size);
        if (err != 0) {
            hp_log(HP_LOG_WARN, "commits not batched",
                   "reason=\"cannot reserve %zu bytes: %s\" effect=\"each "
                   "commit writes its pages to data.mdb\"",
                   map_size, strerror(err));
            return false;
        }
        s->reserved = true;
    }
    s->batch_max_us = o != NULL && o->max_us != 0 ? o->max_us : BATCH_MAX_US;
    s->batch_idle_us =
        o != NULL && o->idle_us != 0 ? o->idle_us : BATCH_IDLE_US;
    batch_store = s;
    return true;
}

bool
store_unpublished(const store *s)
{
    return atomic_load(&s->unpublished);
}

bool
store_publish_due(store *s, uint64_t idle_us, uint64_t *wait_us)
{
    *wait_us = 0;
    if (s->outer == NULL) {
        return false;
    }
    uint64_t age = hp_mono_us() - s->outer_us;
    if (age >= s->batch_max_us || idle_us >= s->batch_idle_us ||
        s->outer_groups >= BATCH_MAX_TXNS) {
        return true;
    }
    uint64_t to_old = s->batch_max_us - age;
    uint64_t to_idle = s->batch_idle_us - idle_us;
    *wait_us = to_old < to_idle ? to_old : to_idle;
    return false;
}

static hp_code
begin_nested(store_txn *t, store_txn **out, hp_status *st)
{
    store *s = t->s;
    int rc;
    if (s->outer == NULL) {
        pthread_rwlock_rdlock(&s->gate);
        if ((rc = mdb_txn_begin(s->env, NULL, 0, &s->outer)) != 0) {
            pthread_rwlock_unlock(&s->gate);
            free(t);
            return store_status_from_mdb(s, rc, st);
        }
        s->write_active = true;
        s->outer_us = hp_mono_us();
        s->outer_groups = 0;
        s->outer_rec0 = wal_records(s);
    }
    if ((rc = mdb_txn_begin(s->env, s->outer, 0, &t->mdb)) != 0) {
        free(t);
        return store_status_from_mdb(s, rc, st);
    }
    t->nested = true;
    *out = t;
    return HP_OK;
}

static wake_note *wake_list_note(wake_note **v, size_t *n, size_t *cap,
                                 bool *all, hp_str scope, hp_str lane);

/* Keeps t's wake notes for store_publish. */
static void
hold_wakes(store *s, store_txn *t)
{
    s->pub_all = s->pub_all || t->wake_all;
    for (size_t i = 0; i < t->n_wakes && !s->pub_all; i++) {
        (void)wake_list_note(&s->pub_wakes, &s->n_pub, &s->cap_pub, &s->pub_all,
                             hp_lane_key_scope(&t->wakes[i].key),
                             hp_lane_key_lane(&t->wakes[i].key));
    }
}

/* Seals t's log record (so that its append cannot fail for want of disk)
 * and commits t to LMDB, a nested t into its batch. On failure t is gone
 * and its record dropped; on success the caller still ends t. */
static hp_code
commit_to_lmdb(store_txn *t, hp_status *st)
{
    store *s = t->s;
    hp_code code = wal_prepare(t, st);
    if (code != HP_OK) {
        mdb_txn_abort(t->mdb);
        wal_discard(s);
        txn_end(t);
        return code;
    }
    int rc = mdb_txn_commit(t->mdb);
    if (rc != 0) {
        wal_discard(s);
        txn_end(t);
        return store_status_from_mdb(s, rc, st);
    }
    return HP_OK;
}

static hp_code
commit_nested(store_txn *t, uint64_t id, hp_status *st)
{
    store *s = t->s;
    hp_code code = commit_to_lmdb(t, st);
    if (code != HP_OK) {
        /* A child that failed to merge may leave the batch unusable
         * (LMDB marks the parent failed): commit it now, so that a broken
         * batch stops the broker here rather than failing every group
         * until its time is up. */
        hp_status pst;
        if (s->outer_groups > 0 && store_publish(s, &pst) != HP_OK) {
            hp_log(HP_LOG_ERROR, "publish after a failed commit failed",
                   "reason=%s err=\"%s\"", pst.reason, pst.msg);
        }
        return code;
    }
    hold_wakes(s, t);
    txn_end(t);
    s->outer_groups++;
    /* Before the record is durable, so before any reply it allows: a read
     * that starts after such a reply sees the flag (store.h). */
    atomic_store(&s->unpublished, true);
    return wal_commit_nested(s, id, st);
}

static hp_code grow_map(store *s, hp_status *st);

/* LMDB refused the batch's commit for want of room (its free list needs
 * pages too): its commits are acknowledged and in the log, so grow the
 * map and apply them again from there, as recovery would. */
static hp_code
republish(store *s, hp_status *st)
{
    for (;;) {
        hp_code code = grow_map(s, st);
        if (code != HP_OK) {
            return code;
        }
        MDB_txn *txn;
        pthread_rwlock_rdlock(&s->gate);
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc == 0) {
            rc = wal_reapply(s, txn, s->outer_rec0);
            rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
        }
        pthread_rwlock_unlock(&s->gate);
        if (rc != MDB_MAP_FULL) {
            return store_status_from_mdb(s, rc, st);
        }
    }
}

hp_code
store_publish(store *s, hp_status *st)
{
    if (s->outer == NULL) {
        return HP_OK;
    }
    HP_ASSERT(on_batch_thread(s));
    if (s->outer_groups == 0) {
        /* Only groups that wrote nothing (an idle maintenance pass): no
         * commit, and nothing toward a checkpoint. */
        mdb_txn_abort(s->outer);
        s->outer = NULL;
        s->write_active = false;
        pthread_rwlock_unlock(&s->gate);
        return HP_OK;
    }
    int rc = mdb_txn_commit(s->outer);
    s->outer = NULL;
    s->write_active = false;
    pthread_rwlock_unlock(&s->gate);
    hp_code code = HP_OK;
    if (rc == MDB_MAP_FULL) {
        atomic_fetch_add(&s->republished, 1);
        code = republish(s, st);
        if (code == HP_OK) {
            hp_log(HP_LOG_INFO, "batch applied again",
                   "reason=MAP_FULL map_size=%zu detail=\"LMDB refused the "
                   "batch's commit for room; applied again from the log onto "
                   "a larger map\"",
                   s->map_size);
        }
    } else if (rc != 0) {
        code = store_status_from_mdb(s, rc, st);
    }
    if (code != HP_OK) {
        /* Its commits are in the log and acknowledged: only a restart,
         * which replays them, brings LMDB level with them again. */
        s->opts.fatal(s->opts.fatal_arg, st);
        return code;
    }
    atomic_store(&s->unpublished, false);
    wal_batch_committed(s);
    tell_ready(s, s->pub_wakes, s->n_pub, s->pub_all);
    s->n_pub = 0;
    s->pub_all = false;
    return HP_OK;
}

static void
wakes_free(store_txn *t)
{
    free(t->wakes);
    t->wakes = NULL;
    t->n_wakes = t->cap_wakes = 0;
}

hp_code
store_txn_begin(store *s, bool write, store_txn **out, hp_status *st)
{
    int rc;
    store_txn *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    t->s = s;
    t->write = write;
    if (write && on_batch_thread(s) && s->outer != NULL && !batching(s)) {
        /* The batch thread leaving batching (the map at its ceiling) */
        hp_code code = store_publish(s, st);
        if (code != HP_OK) {
            free(t);
            return code;
        }
    }
    if (write && batching(s)) {
        return begin_nested(t, out, st);
    }
    if (on_batch_thread(s) && s->outer != NULL) {
        /* A read on the batch thread (a done callback, a hook) while the
         * batch holds the gate: taking it again could wait behind a
         * queued grower that waits for the batch. The batch's hold keeps
         * the map in place for this read too. */
        t->gateless = true;
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->mdb);
        if (rc != 0) {
            free(t);
            return store_status_from_mdb(s, rc, st);
        }
        *out = t;
        return HP_OK;
    }
    for (;;) {
        pthread_rwlock_rdlock(&s->gate);
        rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->mdb);
        if (rc != MDB_MAP_RESIZED) {
            break;
        }
        /* Another process grew the map: adopt its size, with nothing of ours
         * alive, then try again. */
        pthread_rwlock_unlock(&s->gate);
        pthread_rwlock_wrlock(&s->gate);
        rc = mdb_env_set_mapsize(s->env, 0);
        if (rc == 0) {
            MDB_envinfo info;
            mdb_env_info(s->env, &info);
            s->map_size = info.me_mapsize;
        }
        pthread_rwlock_unlock(&s->gate);
        if (rc != 0) {
            free(t);
            return store_status_from_mdb(s, rc, st);
        }
    }
    if (rc != 0) {
        pthread_rwlock_unlock(&s->gate);
        free(t);
        return store_status_from_mdb(s, rc, st);
    }
    if (write) {
        s->write_active = true;
    }
    *out = t;
    return HP_OK;
}

static void
txn_end(store_txn *t)
{
    /* A nested transaction, or a read under the batch, leaves the gate
     * and the write flag to the batch. */
    if (t->write) {
        t->s->scratch_current = false; /* the copy may predate an abort */
    }
    if (!t->nested && !t->gateless) {
        if (t->write) {
            t->s->write_active = false; /* writer-thread only */
        }
        pthread_rwlock_unlock(&t->s->gate);
    }
    wakes_free(t);
    txn_settled_free(t);
    txn_events_free(t);
    free(t);
}

hp_code
store_txn_commit(store_txn *t, hp_status *st)
{
    store *s = t->s;

    /* Every operation that notes events writes them before it returns
     * (event_flush); one left here would be an event lost. */
    HP_ASSERT(t->n_events == 0);
    if (t->failed) {
        mdb_txn_abort(t->mdb);
        wal_discard(s);
        txn_end(t);
        return hp_status_set(st, HP_INTERNAL, HP_R_STORE_ERROR,
                             "refusing to commit a transaction in which an "
                             "operation failed");
    }
    uint64_t id = mdb_txn_id(t->mdb);
    if (t->nested) {
        return commit_nested(t, id, st);
    }
    hp_code code = commit_to_lmdb(t, st);
    if (code != HP_OK) {
        return code;
    }
    /* Hand the wake notes over only after the gate is released, so the hook
     * may start transactions of its own. */
    wake_note *wakes = t->wakes;
    size_t n = t->n_wakes;
    bool all = t->wake_all;
    t->wakes = NULL;
    t->n_wakes = 0;
    txn_end(t);
    if ((code = wal_commit(s, id, st)) != HP_OK) {
        free(wakes);
        return code;
    }
    tell_ready(s, wakes, n, all);
    free(wakes);
    return HP_OK;
}

void
store_txn_abort(store_txn *t)
{
    if (t == NULL) {
        return;
    }
    mdb_txn_abort(t->mdb);
    if (t->write) {
        wal_discard(t->s);
    }
    txn_end(t);
}

static void
note_add(wake_note *w, uint32_t n)
{
    w->n = n > STORE_READY_MANY - w->n ? STORE_READY_MANY : w->n + n;
}

/* The note of (scope, lane) in a list of wake notes, added (n = 0) if
 * missing; NULL once the list holds STORE_MAX_WAKE_NOTES, or when memory
 * runs out: *all is set then, as "any lane may have work" is cheaper to
 * carry past that many and never loses a wake. */
static wake_note *
wake_list_note(wake_note **v, size_t *n, size_t *cap, bool *all, hp_str scope,
               hp_str lane)
{
    for (size_t i = 0; i < *n; i++) {
        if (hp_lane_key_is(&(*v)[i].key, scope, lane)) {
            return &(*v)[i];
        }
    }
    if (*n == STORE_MAX_WAKE_NOTES) {
        *all = true;
        return NULL;
    }
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        wake_note *w = realloc(*v, c * sizeof(*w));
        if (w == NULL) {
            *all = true;
            return NULL;
        }
        *v = w;
        *cap = c;
    }
    wake_note *w = &(*v)[(*n)++];
    hp_lane_key_set(&w->key, scope, lane);
    w->n = 0;
    w->taken = 0;
    return w;
}

void
txn_note_ready(store_txn *t, hp_str scope, hp_str lane, uint32_t n)
{
    if (t->wake_all) {
        return;
    }
    if (t->last_wake < t->n_wakes &&
        hp_lane_key_is(&t->wakes[t->last_wake].key, scope, lane)) {
        note_add(&t->wakes[t->last_wake], n);
        return;
    }
    wake_note *w = wake_list_note(&t->wakes, &t->n_wakes, &t->cap_wakes,
                                  &t->wake_all, scope, lane);
    if (w != NULL) {
        note_add(w, n);
        t->last_wake = (size_t)(w - t->wakes);
    }
}

void
store_txn_take_ready(store_txn *t, store_take_fn fn, void *arg, bool *all)
{
    *all = t->wake_all && !t->wake_all_taken;
    t->wake_all_taken = t->wake_all;
    for (size_t i = 0; i < t->n_wakes; i++) {
        wake_note *w = &t->wakes[i];
        if (w->n > w->taken) {
            uint32_t n =
                w->n == STORE_READY_MANY ? STORE_READY_MANY : w->n - w->taken;
            w->taken = w->n;
            fn(arg, hp_lane_key_scope(&w->key), hp_lane_key_lane(&w->key), n);
        }
    }
}

uint64_t
store_txn_writes(const store_txn *t)
{
    return t->writes;
}

bool
store_txn_clear_failure(store_txn *t, uint64_t mark)
{
    if (t->writes != mark) {
        return false;
    }
    t->failed = false;
    return true;
}

size_t
store_txn_room(store_txn *t)
{
    MDB_stat ms;
    MDB_envinfo info;
    /* Every page of the file belongs to a database (the free list's own
     * database included), is on the free list, or is one of the two meta
     * pages; mdb_stat counts each database's pages as this transaction
     * sees them, which LMDB allows in a write transaction (a cursor on
     * the free list it does not). */
    const MDB_dbi dbs[] = {
        0, /* FREE_DBI, the free list's own pages */
        1, /* MAIN_DBI, where the named databases are listed */
        t->s->db_messages,
        t->s->db_ready,
        t->s->db_lane_ready,
        t->s->db_leases,
        t->s->db_schedule,
        t->s->db_dedupe,
        t->s->db_dead,
        t->s->db_expiry,
        t->s->db_lanes,
        t->s->db_meta,
        t->s->db_replies,
        t->s->db_deliver,
        t->s->db_secrets,
    };
    size_t used = 2, psize = 4096;

    for (size_t i = 0; i < HP_ARRAY_LEN(dbs); i++) {
        if (mdb_stat(t->mdb, dbs[i], &ms) == 0) {
            used +=
                ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
            psize = ms.ms_psize;
        }
    }
    mdb_env_info(t->s->env, &info);
    size_t pages = info.me_mapsize / psize;
    return pages > used ? (pages - used) * psize : 0;
}

hp_code
check_room(store_txn *t, hp_status *st)
{
    store *s = t->s;
    if (s->map_size < s->opts.max_map_size) {
        return HP_OK; /* the writer grows the map on MAP_FULL */
    }
    size_t room = store_txn_room(t);
    if (room < s->opts.full_reserve) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_MAP_FULL,
                             "store is full: %zu KiB free of a %zu KiB map, "
                             "and %zu KiB are kept for claims, acks and "
                             "purges; free space or raise --max-map-size",
                             room >> 10, s->map_size >> 10,
                             s->opts.full_reserve >> 10);
    }
    return HP_OK;
}

hp_code
store_probe_write(store_txn *t, uint64_t now_ms, hp_status *st)
{
    uint8_t v[8];
    hp_code code;
    if ((code = check_room(t, st)) != HP_OK) {
        return code;
    }
    hp_put_u64(v, now_ms);
    MDB_val kv = store_val(META_PROBE, strlen(META_PROBE));
    MDB_val vv = store_val(v, sizeof(v));
    t->writes++;
    int rc = mdb_put(t->mdb, t->s->db_meta, &kv, &vv, 0);
    return rc == 0 ? wal_note_put(t, t->s->db_meta, &kv, &vv, st)
                   : store_status_from_mdb(t->s, rc, st);
}

#ifdef __SANITIZE_THREAD__
/* With MDB_WRITEMAP the writer stores into pages of the map that readers
 * read in earlier snapshots. LMDB reuses a page only once no reader can
 * see it, through its reader table, whose plain loads and stores
 * ThreadSanitizer does not take for synchronisation. */
const char *__tsan_default_suppressions(void);

const char *
__tsan_default_suppressions(void)
{
    return "race:liblmdb.so\n";
}
#endif

hp_code
store_grow(store *s, hp_status *st)
{
    /* Pages freed since the last checkpoint may not be reused before the
     * next one: take it first, and grow only if that freed nothing. */
    bool freed;
    hp_code code = store_publish(s, st);
    if (code != HP_OK) {
        return code;
    }
    code = wal_checkpoint_now(s, &freed, st);
    if (code != HP_OK || freed) {
        return code;
    }
    return grow_map(s, st);
}

/* Doubles the map, up to its ceiling. No write transaction open. */
static hp_code
grow_map(store *s, hp_status *st)
{
    if (s->map_size >= s->opts.max_map_size) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_MAP_FULL,
                             "store is full: map at its ceiling of %zu "
                             "bytes; raise --max-map-size or free space",
                             s->opts.max_map_size);
    }
    size_t want = s->map_size * 2;
    if (want < s->map_size || want > s->opts.max_map_size) {
        want = s->opts.max_map_size;
    }
    /* A reserved map grows only into disk reserved for it; a disk that
     * cannot take the doubling may still take a smaller step. */
    for (int err;
         s->reserved && (err = reserve_map(s, s->map_size, want)) != 0;) {
        size_t step = (want - s->map_size) / 2;
        if ((err != ENOSPC && err != EDQUOT && err != EFBIG) ||
            step < MAP_STEP_MIN) {
            return hp_status_from_errno(st, err,
                                        "cannot reserve disk for a larger map");
        }
        want = s->map_size + step;
    }
    pthread_rwlock_wrlock(&s->gate);
    int rc = mdb_env_set_mapsize(s->env, want);
    if (rc == 0) {
        MDB_envinfo info;
        mdb_env_info(s->env, &info);
        s->map_size = info.me_mapsize;
    }
    pthread_rwlock_unlock(&s->gate);
    return store_status_from_mdb(s, rc, st);
}

static bool
is_map_full(const hp_status *st)
{
    return st->code == HP_RESOURCE_EXHAUSTED && st->reason != NULL &&
           strcmp(st->reason, HP_R_MAP_FULL) == 0;
}

hp_code
store_run(store *s, bool write, store_txn_fn fn, void *arg, hp_status *st)
{
    for (;;) {
        store_txn *t;
        hp_code code = store_txn_begin(s, write, &t, st);
        if (code != HP_OK) {
            return code;
        }
        code = fn(t, arg, st);
        if (code != HP_OK) {
            store_txn_abort(t);
        } else if (!write) {
            store_txn_abort(t);
            return HP_OK;
        } else {
            code = store_txn_commit(t, st);
        }
        if (code == HP_OK || !write || !is_map_full(st)) {
            return code;
        }
        if (store_grow(s, st) != HP_OK) {
            /* At the ceiling: report the ceiling, which tells the operator
             * what to raise. */
            return st->code;
        }
        hp_status_clear(st);
    }
}

hp_code
check_scope(hp_str scope, hp_status *st)
{
    return hp_name_check(scope, "scope", st);
}

hp_code
check_write(const store_txn *t, hp_status *st)
{
    if (!t->write) {
        return hp_status_set(st, HP_INTERNAL, HP_R_STORE_ERROR,
                             "write operation in a read transaction");
    }
    return HP_OK;
}

hp_code
check_limit(const store *s, uint64_t n, const char *what, hp_status *st)
{
    if (n == 0 || n > s->opts.limits.max_batch) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_LIMIT,
                             "%s must be 1-%u", what, s->opts.limits.max_batch);
    }
    return HP_OK;
}
