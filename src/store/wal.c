/*
 * wal.c - the write-ahead log and its checkpoints (wal.h has the design).
 *
 * A segment: a 4 KiB header {magic, version, layout, nonce, check}, then
 * records {check, len, 0, txnid, ops}. An op is {kind, table, key length,
 * value length, key, value}: a put's value, nothing for a delete, and for
 * a patch {the current value's length u32, head u32, tail u32, middle}:
 * the new value is the current one's first head bytes, the middle, and
 * its last tail bytes (wal_note_changed). Tables are named by their index
 * in the store's table list, which the layout hash pins. A record's check
 * is XXH3-64 of everything after it, seeded with the segment's nonce, so a
 * record left from an earlier use of the file, or half written, fails it.
 *
 * wal.ckpt: two 4 KiB slots {magic, seq, txnid, page size, meta length,
 * meta page 0, meta page 1, check}; the valid slot with the higher seq is
 * the checkpoint.
 *
 * Threads: everything but the checkpoint thread runs on the store's writer
 * (one write transaction at a time); the thread and the writer share only
 * the fields under mtx.
 */
#define _GNU_SOURCE

#include "store/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <xxhash.h>

#include "common/bytes.h"
#include "common/log.h"
#include "store/store_int.h"

#define SEG_HDR        4096u
#define SEG_FIRST      (1u << 20)  /* zeroed size of a new segment */
#define SEG_STEP_MAX   (64u << 20) /* most a segment grows by at once */
#define REC_HDR        24u
#define OP_HDR         8u
#define CKPT_SLOT      4096u
#define META_SAVE      512u
#define CKPT_META_OFF  32u
#define CKPT_GEN_OFF   (CKPT_META_OFF + 2 * META_SAVE)
#define CKPT_CHECK_OFF (CKPT_GEN_OFF + 8)
#define SEG_HDR_USED   40u
#define REPLAY_BATCH   256 /* records per LMDB transaction while replaying */

/* A checkpoint starts once this many commits followed the last one, or
 * CKPT_BYTES of log, or CKPT_MS, and not while one is running: under load
 * they run back to back. That is what measured best (W1 1 conn with 8
 * commits per checkpoint: 2,061 and 2,143/s, p99 3.1 and 2.7 ms; with 256:
 * 889 and 1,923/s, p99 6.9 and 4.1 ms; without the log 1,391 and 1,183/s),
 * because pages LMDB freed become reusable again at each checkpoint: the
 * same few pages are rewritten in the page cache instead of a fresh page
 * per change, so data.mdb stays small (21.7 MiB against 18.7 MiB without
 * the log and 48 MiB with 256) and each data sync writes little. A
 * checkpoint's two syncs run beside the writer's log sync, on their own
 * thread. */
#define CKPT_TXNS  8
#define CKPT_BYTES (4u << 20)
#define CKPT_MS    250
/* Past this much log with a checkpoint still running, the writer waits. */
#define LOG_BACKLOG_MAX (4 * CKPT_BYTES)

/* LMDB 0.9's meta page on a 64-bit build: a 16-byte page header, then
 * MDB_meta {magic, version, address, mapsize, dbs[2], last_pg, txnid}. */
#define MDB_META_MAGIC 0xBEEFC0DEu
#define META_MAGIC_OFF 16u
#define META_TXNID_OFF 144u

static const char SEG_MAGIC[8] = { 'H', 'O', 'P', 'W', 'A', 'L', 0, 2 };
static const char CKPT_MAGIC[8] = { 'H', 'O', 'P', 'C', 'K', 'P', 0, 2 };
static const char *const SEG_NAME[2] = { "wal-0.log", "wal-1.log" };
#define CKPT_NAME "wal.ckpt"

enum {
    OP_PUT = 1,
    OP_DEL = 2,
    OP_PATCH = 3
};

#define PATCH_HDR 12u

typedef struct segment {
    int fd;
    uint64_t size; /* bytes allocated (zeroed) */
    uint64_t nonce;
} segment;

struct wal {
    store *s;
    int data_fd;
    unsigned psize;
    uint32_t layout;
    bool logging;

    segment seg[2];
    /* The log generation: segments count only under a checkpoint of
     * theirs. A new one at each open, so that recovery can make its
     * replay the checkpoint before it empties the segments. */
    uint64_t gen;
    int active;
    uint64_t off;  /* end of the active segment's records */
    uint64_t recs; /* records in the active segment */

    hp_buf rec;             /* the open transaction's record */
    hp_buf patch;           /* replay: a patched value */
    _Atomic uint64_t bytes; /* appended since open (store_info) */

    int ckpt_fd;
    uint64_t ckpt_seq;
    uint64_t txns_since, bytes_since, since_ms;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mtx;
    pthread_cond_t cv;
    /* under mtx */
    bool busy;   /* a checkpoint is handed to the thread and not done */
    bool queued; /* ... and the thread has not taken it yet */
    bool stop;
    MDB_txn *pin;      /* reader at the durable checkpoint */
    MDB_txn *pend_pin; /* reader at the one in progress */
    uint64_t pend_txn;
    uint8_t pend_meta[2][META_SAVE];
    uint64_t ckpt_txn; /* the durable checkpoint's txn */
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
pwrite_all(int fd, const void *p, size_t len, uint64_t off)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t n = pwrite(fd, b, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        b += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Bytes read; a short count means the file ended. -1 on error. */
static ssize_t
pread_full(int fd, void *p, size_t len, uint64_t off)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, b + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static uint64_t
meta_txnid(const uint8_t *page)
{
    uint64_t v;
    memcpy(&v, page + META_TXNID_OFF, sizeof(v)); /* LMDB's native order */
    return v;
}

static bool
meta_valid(const uint8_t *page)
{
    uint32_t m;
    memcpy(&m, page + META_MAGIC_OFF, sizeof(m));
    return m == MDB_META_MAGIC;
}

static hp_code
io_fail(hp_status *st, const char *what)
{
    return hp_status_from_errno(st, errno, what);
}

/* ---- checkpoint file ---------------------------------------------------- */

typedef struct ckpt {
    uint64_t seq, txnid;
    uint64_t gen; /* the log generation whose segments follow it */
    uint32_t psize;
    uint8_t meta[2][META_SAVE];
} ckpt;

static void
ckpt_encode(const ckpt *c, uint8_t b[CKPT_SLOT])
{
    memset(b, 0, CKPT_SLOT);
    memcpy(b, CKPT_MAGIC, 8);
    hp_put_u64(b + 8, c->seq);
    hp_put_u64(b + 16, c->txnid);
    hp_put_u32(b + 24, c->psize);
    hp_put_u32(b + 28, META_SAVE);
    memcpy(b + CKPT_META_OFF, c->meta, sizeof(c->meta));
    hp_put_u64(b + CKPT_GEN_OFF, c->gen);
    hp_put_u64(b + CKPT_CHECK_OFF, XXH3_64bits(b, CKPT_CHECK_OFF));
}

static bool
ckpt_decode(const uint8_t b[CKPT_SLOT], ckpt *c)
{
    if (memcmp(b, CKPT_MAGIC, 8) != 0 || hp_get_u32(b + 28) != META_SAVE ||
        hp_get_u64(b + CKPT_CHECK_OFF) != XXH3_64bits(b, CKPT_CHECK_OFF)) {
        return false;
    }
    c->seq = hp_get_u64(b + 8);
    c->txnid = hp_get_u64(b + 16);
    c->psize = hp_get_u32(b + 24);
    memcpy(c->meta, b + CKPT_META_OFF, sizeof(c->meta));
    c->gen = hp_get_u64(b + CKPT_GEN_OFF);
    return true;
}

/* The checkpoint in fd, if either slot holds a valid one. */
static bool
ckpt_read(int fd, ckpt *out)
{
    uint8_t b[CKPT_SLOT];
    bool found = false;
    for (int i = 0; i < 2; i++) {
        ckpt c;
        if (pread_full(fd, b, sizeof(b), (uint64_t)i * CKPT_SLOT) ==
                (ssize_t)sizeof(b) &&
            ckpt_decode(b, &c) && (!found || c.seq > out->seq)) {
            *out = c;
            found = true;
        }
    }
    return found;
}

static hp_code
ckpt_write(wal *w, uint64_t txnid, uint8_t meta[2][META_SAVE], hp_status *st)
{
    ckpt c = {
        .seq = w->ckpt_seq + 1, .txnid = txnid, .gen = w->gen, .psize = w->psize
    };
    uint8_t b[CKPT_SLOT];
    memcpy(c.meta, meta, sizeof(c.meta));
    ckpt_encode(&c, b);
    if (pwrite_all(w->ckpt_fd, b, sizeof(b), (c.seq & 1) * CKPT_SLOT) != 0 ||
        fdatasync(w->ckpt_fd) != 0) {
        return io_fail(st, "cannot write the checkpoint");
    }
    w->ckpt_seq = c.seq;
    return HP_OK;
}

/* Forgets the checkpoint, durably: for when data.mdb is whole and synced
 * on its own (a clean stop), so that nothing restores the checkpoint's
 * meta pages over whatever happens to the file before the next open. */
static int
ckpt_clear(wal *w)
{
    uint8_t zero[2 * CKPT_SLOT];
    memset(zero, 0, sizeof(zero));
    if (pwrite_all(w->ckpt_fd, zero, sizeof(zero), 0) != 0 ||
        fdatasync(w->ckpt_fd) != 0) {
        return -1;
    }
    w->ckpt_seq = 0;
    return 0;
}

/* ---- restore (before LMDB opens) ---------------------------------------- */

/* A checkpoint belongs to this data file if each meta slot holds what was
 * saved or something later (a torn page is left to LMDB to judge). A file
 * older than the checkpoint, e.g. a backup copied over data.mdb, would be
 * corrupted by the saved pages. */
static bool
ckpt_matches(const ckpt *c, uint8_t disk[2][META_SAVE])
{
    for (int i = 0; i < 2; i++) {
        if (!meta_valid(disk[i]) || !meta_valid(c->meta[i])) {
            continue;
        }
        uint64_t d = meta_txnid(disk[i]), saved = meta_txnid(c->meta[i]);
        if (d < saved ||
            (d == saved && memcmp(disk[i], c->meta[i], META_SAVE) != 0)) {
            return false;
        }
    }
    return true;
}

hp_code
wal_restore(const char *dir, hp_status *st)
{
    char path[4096];
    hp_code code = HP_OK;
    ckpt c = { 0 };

    if (store_dir_file(path, sizeof(path), dir, CKPT_NAME) != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "data dir path is too long");
    }
    int cfd = open(path, O_RDONLY | O_CLOEXEC);
    if (cfd < 0) {
        return errno == ENOENT ? HP_OK : io_fail(st, "cannot open wal.ckpt");
    }
    bool have = ckpt_read(cfd, &c);
    close(cfd);
    if (!have) {
        /* Created but never completed: the first checkpoint is written
         * before any commit is logged, so LMDB's own state is whole. */
        return HP_OK;
    }
    if (store_dir_file(path, sizeof(path), dir, "data.mdb") != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "data dir path is too long");
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE,
                             "'%s' has a write-ahead log but no data.mdb; "
                             "restore the whole directory from a backup",
                             dir);
    }
    uint8_t disk[2][META_SAVE];
    for (int i = 0; i < 2; i++) {
        if (pread_full(fd, disk[i], META_SAVE, (uint64_t)i * c.psize) !=
            (ssize_t)META_SAVE) {
            memset(disk[i], 0, META_SAVE);
        }
    }
    if (!ckpt_matches(&c, disk)) {
        code = hp_status_set(
            st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE,
            "data.mdb in '%s' is older than its write-ahead log's "
            "checkpoint (was a backup copied over it?); restore a backup into "
            "an empty directory instead",
            dir);
    } else if (pwrite_all(fd, c.meta[0], META_SAVE, 0) != 0 ||
               pwrite_all(fd, c.meta[1], META_SAVE, c.psize) != 0 ||
               fdatasync(fd) != 0) {
        code = io_fail(st, "cannot restore the checkpoint's meta pages");
    }
    close(fd);
    return code;
}

/* ---- segments ----------------------------------------------------------- */

/* Zeroes [from, to) so that later writes overwrite allocated blocks, then
 * makes the new size durable. */
static int
seg_zero(segment *g, uint64_t to)
{
    static const uint8_t zeros[64 << 10];
    for (uint64_t at = g->size; at < to;) {
        size_t n = to - at < sizeof(zeros) ? (size_t)(to - at) : sizeof(zeros);
        if (pwrite_all(g->fd, zeros, n, at) != 0) {
            return -1;
        }
        at += n;
    }
    if (fsync(g->fd) != 0) {
        return -1;
    }
    g->size = to;
    return 0;
}

static uint64_t
new_nonce(store *s)
{
    struct {
        uint8_t r[16];
        struct timespec ts;
        pid_t pid;
    } in;

    memset(&in, 0, sizeof(in));
    if (s->opts.rand(s->opts.rand_arg, in.r, sizeof(in.r)) != 0) {
        memset(in.r, 0, sizeof(in.r));
    }
    clock_gettime(CLOCK_REALTIME, &in.ts);
    in.pid = getpid();
    return XXH3_64bits(&in, sizeof(in));
}

/* Starts a new use of segment i: a fresh nonce makes every record left in
 * it fail its check. Not synced here; the first record's sync covers it. */
static int
seg_reset(wal *w, int i)
{
    segment *g = &w->seg[i];
    uint8_t h[SEG_HDR];
    memset(h, 0, sizeof(h));
    g->nonce = new_nonce(w->s);
    memcpy(h, SEG_MAGIC, 8);
    hp_put_u32(h + 8, 2);
    hp_put_u32(h + 12, w->layout);
    hp_put_u64(h + 16, g->nonce);
    hp_put_u64(h + 24, w->gen);
    hp_put_u64(h + 32, XXH3_64bits(h, 32));
    return pwrite_all(g->fd, h, sizeof(h), 0);
}

static hp_code
seg_open(wal *w, const char *dir, int i, hp_status *st)
{
    char path[4096];
    struct stat sb;
    segment *g = &w->seg[i];
    if (store_dir_file(path, sizeof(path), dir, SEG_NAME[i]) != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "data dir path is too long");
    }
    g->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (g->fd < 0 || fstat(g->fd, &sb) != 0) {
        return io_fail(st, "cannot open the write-ahead log");
    }
    g->size = (uint64_t)sb.st_size;
    return HP_OK;
}

/* The records of segment i, checked and in order, handed to fn until it
 * returns false. */
typedef bool (*rec_fn)(void *arg, bool foreign, uint64_t txnid,
                       const uint8_t *body, uint32_t len);

/* Segment i's generation, from a header that checks; 0 if none does. */
static uint64_t
seg_gen(wal *w, int i, uint8_t h[SEG_HDR_USED])
{
    if (pread_full(w->seg[i].fd, h, SEG_HDR_USED, 0) != (ssize_t)SEG_HDR_USED ||
        memcmp(h, SEG_MAGIC, 8) != 0 ||
        hp_get_u64(h + 32) != XXH3_64bits(h, 32)) {
        return 0; /* never used, or its header never reached the disk */
    }
    return hp_get_u64(h + 24);
}

/* Only a segment of generation gen counts: one of another is left from
 * before the checkpoint's, its records already in data.mdb or never
 * acknowledged. */
static void
seg_scan(wal *w, int i, uint64_t gen, hp_buf *buf, rec_fn fn, void *arg)
{
    segment *g = &w->seg[i];
    uint8_t h[SEG_HDR_USED];
    if (seg_gen(w, i, h) != gen) {
        return;
    }
    /* Another build's table list: harmless unless a record of it is still
     * to be replayed, which the callback decides. */
    bool foreign = hp_get_u32(h + 8) != 2 || hp_get_u32(h + 12) != w->layout;
    uint64_t nonce = hp_get_u64(h + 16);
    uint64_t off = SEG_HDR;
    for (;;) {
        uint8_t rh[REC_HDR];
        if (pread_full(g->fd, rh, REC_HDR, off) != REC_HDR) {
            return;
        }
        uint32_t len = hp_get_u32(rh + 8);
        if (len > g->size || off + REC_HDR + len > g->size ||
            hp_buf_reserve(buf, REC_HDR - 8 + (size_t)len) != 0) {
            return;
        }
        memcpy(buf->p, rh + 8, REC_HDR - 8);
        if (pread_full(g->fd, buf->p + REC_HDR - 8, len, off + REC_HDR) !=
                (ssize_t)len ||
            XXH3_64bits_withSeed(buf->p, REC_HDR - 8 + (size_t)len, nonce) !=
                hp_get_u64(rh)) {
            return; /* the end: torn, or left from an earlier use */
        }
        if (!fn(arg, foreign, hp_get_u64(rh + 16), buf->p + REC_HDR - 8, len)) {
            return;
        }
        off += REC_HDR + len;
    }
}

/* ---- replay ------------------------------------------------------------- */

/* The chain after the checkpoint: each record's txnid is the last one's
 * plus one, or the same (several commits into one batch; wal.h). */
typedef struct replay {
    wal *w;
    uint64_t ckpt; /* the checkpoint's txnid: records up to it are in LMDB */
    uint64_t last; /* the last record's txnid in the chain, or ckpt */
    uint64_t skip; /* chain records a pass before this one committed */
    uint64_t seen; /* chain records this pass has met */
    uint64_t first[2];
    MDB_txn *txn;
    unsigned in_txn;
    uint64_t applied;
    int rc;
    bool bad;
    bool foreign; /* a record to replay was written by another layout */
} replay;

static bool
first_rec(void *arg, bool foreign, uint64_t txnid, const uint8_t *body,
          uint32_t len)
{
    (void)foreign;
    (void)body;
    (void)len;
    *(uint64_t *)arg = txnid;
    return false;
}

/* Commits the batch; a full map (LMDB can raise it from the commit too)
 * marks the replay for growing and going on from the batch's start. */
static int
replay_commit(replay *r)
{
    int rc = mdb_txn_commit(r->txn);
    r->txn = NULL; /* committed, or aborted by LMDB */
    if (rc == MDB_MAP_FULL) {
        r->bad = true;
        return 0;
    }
    if (rc == 0) {
        r->in_txn = 0;
    }
    return rc;
}

/* Applies a patch op (this file's header) to k's current value. Anything
 * that does not fit (no value, another length, a head and tail longer
 * than it) is corruption: the log and LMDB disagree, and recovery must
 * say so. */
static int
replay_patch(wal *w, MDB_txn *txn, MDB_dbi db, MDB_val *k, const uint8_t *p,
             uint32_t len)
{
    if (len < PATCH_HDR) {
        return MDB_CORRUPTED;
    }
    uint32_t was = hp_get_u32(p), head = hp_get_u32(p + 4),
             tail = hp_get_u32(p + 8), mid = len - PATCH_HDR;
    MDB_val cur;
    int rc = mdb_get(txn, db, k, &cur);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    }
    if (cur.mv_size != was || head > was || tail > was - head) {
        return MDB_CORRUPTED;
    }
    size_t n = (size_t)head + mid + tail;
    if (n == 0) {
        return MDB_CORRUPTED; /* wal_note_changed logs an empty value whole */
    }
    if (hp_buf_reserve(&w->patch, n) != 0) {
        return ENOMEM;
    }
    uint8_t *v = w->patch.p;
    const uint8_t *c = cur.mv_data;
    memcpy(v, c, head);
    memcpy(v + head, p + PATCH_HDR, mid);
    memcpy(v + head + mid, c + was - tail, tail);
    MDB_val nv = { n, v };
    return mdb_put(txn, db, k, &nv, 0);
}

static int
replay_ops(replay *r, const uint8_t *b, uint32_t len)
{
    store *s = r->w->s;
    uint32_t at = 0;
    while (at < len) {
        if (len - at < OP_HDR) {
            return MDB_CORRUPTED;
        }
        unsigned kind = b[at], table = b[at + 1];
        uint32_t klen = hp_get_u16(b + at + 2), vlen = hp_get_u32(b + at + 4);
        at += OP_HDR;
        if (len - at < klen || len - at - klen < vlen ||
            table >= store_table_count()) {
            return MDB_CORRUPTED;
        }
        MDB_val k = { klen, (void *)(b + at) };
        MDB_val v = { vlen, (void *)(b + at + klen) };
        MDB_dbi db = store_table_dbi(s, table);
        int rc;
        if (kind == OP_PUT) {
            rc = mdb_put(r->txn, db, &k, &v, 0);
        } else if (kind == OP_DEL) {
            rc = mdb_del(r->txn, db, &k, NULL);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
        } else if (kind == OP_PATCH) {
            rc = replay_patch(r->w, r->txn, db, &k, v.mv_data, vlen);
        } else {
            rc = MDB_CORRUPTED;
        }
        if (rc != 0) {
            return rc;
        }
        at += klen + vlen;
    }
    return 0;
}

static bool
replay_rec(void *arg, bool foreign, uint64_t txnid, const uint8_t *body,
           uint32_t len)
{
    replay *r = arg;
    if (txnid <= r->ckpt) {
        return true; /* before the checkpoint: already in LMDB */
    }
    if (txnid != r->last + 1 && !(txnid == r->last && r->seen > 0)) {
        return false; /* a gap: the chain ends here */
    }
    if (foreign) {
        r->foreign = true;
        return false;
    }
    r->last = txnid;
    if (r->seen++ < r->skip) {
        return true; /* committed by an earlier pass */
    }
    if (r->txn == NULL) {
        r->rc = mdb_txn_begin(r->w->s->env, NULL, 0, &r->txn);
        if (r->rc != 0) {
            return false;
        }
    }
    r->rc = replay_ops(r, body, len);
    if (r->rc == MDB_MAP_FULL) {
        /* A record is all or nothing: drop the batch, and wal_replay grows
         * the map and starts again from the batch's first record. */
        mdb_txn_abort(r->txn);
        r->txn = NULL;
        r->rc = 0;
        r->bad = true;
        return false;
    }
    if (r->rc != 0) {
        return false;
    }
    r->applied++;
    if (++r->in_txn == REPLAY_BATCH) {
        r->rc = replay_commit(r);
        return r->rc == 0 && !r->bad;
    }
    return true;
}

/* Applies the records after checkpoint txnid from both segments. LMDB runs
 * with its own syncs here, and the pin keeps the checkpoint's pages
 * whole until the new checkpoint is taken. */
static hp_code
wal_replay(wal *w, uint64_t txnid, uint64_t gen, uint64_t *applied,
           hp_status *st)
{
    hp_buf buf;
    hp_code code = HP_OK;
    hp_buf_init(&buf);
    *applied = 0;
    for (;;) {
        replay r = { .w = w, .ckpt = txnid, .last = txnid, .skip = *applied };
        r.first[0] = r.first[1] = UINT64_MAX;
        for (int i = 0; i < 2; i++) {
            seg_scan(w, i, gen, &buf, first_rec, &r.first[i]);
        }
        /* The older segment first: the chain may run from it into the
         * other one. */
        int order[2] = { 0, 1 };
        if (r.first[1] < r.first[0]) {
            order[0] = 1;
            order[1] = 0;
        }
        for (int j = 0; j < 2 && r.rc == 0 && !r.bad && !r.foreign; j++) {
            seg_scan(w, order[j], gen, &buf, replay_rec, &r);
        }
        if (code == HP_OK && r.rc == 0 && !r.bad && r.txn != NULL) {
            r.rc = replay_commit(&r);
        }
        if (r.txn != NULL) {
            mdb_txn_abort(r.txn);
        }
        if (code == HP_OK && r.bad) {
            /* The batches committed before it stay; go on from the first
             * record of the one that did not fit. */
            code = store_grow(w->s, st);
            if (code == HP_OK) {
                *applied += r.applied - r.in_txn;
                continue;
            }
        }
        if (code == HP_OK && r.rc != 0) {
            code = store_status_from_mdb(w->s, r.rc, st);
        }
        if (code == HP_OK && r.foreign) {
            code = hp_status_set(
                st, HP_FAILED_PRECONDITION, HP_R_NOT_A_STORE,
                "the write-ahead log in '%s' was written by a hopperd with "
                "another table layout and holds commits to replay; start "
                "that version once so it replays them, then upgrade",
                w->s->opts.dir);
        }
        *applied += r.applied;
        break;
    }
    hp_buf_release(&buf);
    return code;
}

/* ---- notes: what the open transaction changes ---------------------------- */

/* Appends an op's header and key; *val_at is where its value goes. */
static hp_code
note(store_txn *t, unsigned kind, MDB_dbi db, const MDB_val *k, size_t vlen,
     size_t *val_at, hp_status *st)
{
    wal *w = t->s->wal;
    size_t at = w->rec.len < REC_HDR ? REC_HDR : w->rec.len;
    size_t need = at + OP_HDR + k->mv_size + vlen;
    if (vlen > UINT32_MAX || hp_buf_reserve(&w->rec, need) != 0) {
        t->failed = true;
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory for the write-ahead log");
    }
    uint8_t *b = w->rec.p + at;
    b[0] = (uint8_t)kind;
    b[1] = (uint8_t)store_table_index(t->s, db);
    hp_put_u16(b + 2, (uint16_t)k->mv_size);
    hp_put_u32(b + 4, (uint32_t)vlen);
    memcpy(b + OP_HDR, k->mv_data, k->mv_size);
    *val_at = at + OP_HDR + k->mv_size;
    w->rec.len = need;
    return HP_OK;
}

static bool
noting(const store_txn *t)
{
    return t->s->wal != NULL && t->s->wal->logging;
}

hp_code
wal_note_put(store_txn *t, MDB_dbi db, const MDB_val *k, const MDB_val *v,
             hp_status *st)
{
    size_t at = 0;
    hp_code code;
    if (!noting(t)) {
        return HP_OK;
    }
    if ((code = note(t, OP_PUT, db, k, v->mv_size, &at, st)) == HP_OK &&
        v->mv_size > 0) {
        memcpy(t->s->wal->rec.p + at, v->mv_data, v->mv_size);
    }
    return code;
}

/* The scans compare 8 bytes at a time. Byte by byte, the two patches of
 * a claimed and acked message cost 5,000 of its 35,300 instructions; a
 * word at a time, 700 (callgrind on store_bench, claim+ack, batch 32). */
#define SCAN_WORD 8u

static uint64_t
load_word(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof(x));
    return x;
}

/* How many leading bytes a and b share, of their first most. */
static size_t
same_head(const uint8_t *a, const uint8_t *b, size_t most)
{
    size_t i = 0;
    while (i + SCAN_WORD <= most && load_word(a + i) == load_word(b + i)) {
        i += SCAN_WORD;
    }
    while (i < most && a[i] == b[i]) {
        i++;
    }
    return i;
}

/* How many trailing bytes the ranges ending at a_end and b_end share, of
 * their last most. */
static size_t
same_tail(const uint8_t *a_end, const uint8_t *b_end, size_t most)
{
    size_t i = 0;
    while (i + SCAN_WORD <= most && load_word(a_end - i - SCAN_WORD) ==
                                        load_word(b_end - i - SCAN_WORD)) {
        i += SCAN_WORD;
    }
    while (i < most && *(a_end - 1 - i) == *(b_end - 1 - i)) {
        i++;
    }
    return i;
}

void
wal_common_ends(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                size_t *head, size_t *tail)
{
    size_t most = a_len < b_len ? a_len : b_len;
    *head = same_head(a, b, most);
    *tail = same_tail(a + a_len, b + b_len, most - *head);
}

hp_code
wal_note_changed(store_txn *t, MDB_dbi db, const MDB_val *k, const MDB_val *v,
                 const MDB_val *old, hp_status *st)
{
    wal *w = t->s->wal;
    if (!noting(t)) {
        return HP_OK;
    }
    if (old == NULL || old->mv_size == 0 || old->mv_size > UINT32_MAX ||
        v->mv_size > UINT32_MAX || t->s->opts.no_log_patches) {
        return wal_note_put(t, db, k, v, st);
    }
    const uint8_t *a = old->mv_data, *b = v->mv_data;
    size_t was = old->mv_size, n = v->mv_size;
    size_t head, tail;
    wal_common_ends(a, was, b, n, &head, &tail);
    size_t mid = n - head - tail;
    if (PATCH_HDR + mid > n / 2) {
        return wal_note_put(t, db, k, v, st); /* not worth it */
    }
    size_t at = 0;
    hp_code code = note(t, OP_PATCH, db, k, PATCH_HDR + mid, &at, st);
    if (code == HP_OK) {
        uint8_t *o = w->rec.p + at;
        hp_put_u32(o, (uint32_t)was);
        hp_put_u32(o + 4, (uint32_t)head);
        hp_put_u32(o + 8, (uint32_t)tail);
        memcpy(o + PATCH_HDR, b + head, mid);
    }
    return code;
}

hp_code
wal_note_del(store_txn *t, MDB_dbi db, const MDB_val *k, hp_status *st)
{
    size_t at = 0;
    if (!noting(t)) {
        return HP_OK;
    }
    return note(t, OP_DEL, db, k, 0, &at, st);
}

void
wal_discard(store *s)
{
    if (s->wal != NULL) {
        s->wal->rec.len = 0;
    }
}

bool
wal_logging(const store *s)
{
    return s->wal != NULL && s->wal->logging;
}

/* ---- commit -----------------------------------------------------------------
 */

hp_code
wal_prepare(store_txn *t, hp_status *st)
{
    if (!noting(t)) {
        return HP_OK;
    }
    wal *w = t->s->wal;
    if (w->rec.len < REC_HDR) {
        if (hp_buf_reserve(&w->rec, REC_HDR) != 0) {
            return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                                 "out of memory for the write-ahead log");
        }
        w->rec.len = REC_HDR;
    }
    segment *g = &w->seg[w->active];
    uint64_t end = w->off + w->rec.len;
    if (end > g->size) {
        uint64_t step = g->size < SEG_STEP_MAX ? g->size : SEG_STEP_MAX;
        uint64_t to = g->size + (step < SEG_FIRST ? SEG_FIRST : step);
        if (to < end) {
            to = end;
        }
        if (seg_zero(g, to) != 0) {
            return io_fail(st, "cannot grow the write-ahead log");
        }
    }
    return HP_OK;
}

static hp_code ckpt_begin(wal *w, bool hand_off, hp_status *st);

static bool
ckpt_due(const wal *w)
{
    const store_opts *o = &w->s->opts;
    uint64_t txns = o->checkpoint_txns != 0 ? o->checkpoint_txns : CKPT_TXNS;
    uint64_t ms = o->checkpoint_ms != 0 ? o->checkpoint_ms : CKPT_MS;
    if (w->bytes_since >= CKPT_BYTES) {
        return true;
    }
    /* At the map's ceiling, checkpoints come when a write needs room
     * (store_grow), not behind the writer's back: with them running on
     * their own there, claims at the ceiling found the map full even after
     * the pin had moved to the last commit (store_disk_test_full, 9 runs
     * in 40), which the reserve kept for them must prevent. */
    if (w->s->map_size >= o->max_map_size) {
        return false;
    }
    return w->txns_since >= txns || mono_ms() - w->since_ms >= ms;
}

/* Seals the open transaction's record as one of txnid, appends it and
 * syncs it. A failure is fatal: the commit is visible but not on disk. */
static hp_code
append_rec(store *s, uint64_t txnid, hp_status *st)
{
    wal *w = s->wal;
    uint8_t *b = w->rec.p;
    size_t len = w->rec.len;
    segment *g = &w->seg[w->active];
    hp_put_u32(b + 8, (uint32_t)(len - REC_HDR));
    hp_put_u32(b + 12, 0);
    hp_put_u64(b + 16, txnid);
    hp_put_u64(b, XXH3_64bits_withSeed(b + 8, len - 8, g->nonce));
    w->rec.len = 0;
    if (pwrite_all(g->fd, b, len, w->off) != 0 ||
        (!s->opts.debug_log_nosync && fdatasync(g->fd) != 0)) {
        /* The commit is visible to readers but not on disk: only a restart,
         * which replays the log, makes the two agree again. */
        hp_code code = io_fail(st, "cannot write the write-ahead log");
        s->opts.fatal(s->opts.fatal_arg, st);
        return code;
    }
    w->off += len;
    w->recs++;
    w->bytes_since += len;
    atomic_fetch_add_explicit(&w->bytes, len, memory_order_relaxed);
    return HP_OK;
}

/* After an LMDB commit: one more toward the next checkpoint, which starts
 * here when due (writer thread, no write transaction open). */
static void
after_lmdb_commit(wal *w)
{
    w->txns_since++;
    if (!ckpt_due(w)) {
        return;
    }
    pthread_mutex_lock(&w->mtx);
    while (w->busy && w->bytes_since >= LOG_BACKLOG_MAX) {
        pthread_cond_wait(&w->cv, &w->mtx);
    }
    bool busy = w->busy;
    pthread_mutex_unlock(&w->mtx);
    if (busy) {
        return; /* try again after a later commit */
    }
    hp_status cst;
    if (ckpt_begin(w, true, &cst) != HP_OK) {
        /* The log keeps growing until one succeeds; the commit itself is
         * durable, so it does not fail. */
        hp_log(HP_LOG_WARN, "checkpoint not started", "reason=%s msg=\"%s\"",
               cst.reason, cst.msg);
    }
}

hp_code
wal_commit(store *s, uint64_t txnid, hp_status *st)
{
    wal *w = s->wal;
    if (w == NULL || !w->logging) {
        return HP_OK;
    }
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    if (info.me_last_txnid != txnid) {
        w->rec.len = 0; /* LMDB had nothing to write */
        return HP_OK;
    }
    hp_code code = append_rec(s, txnid, st);
    if (code == HP_OK) {
        after_lmdb_commit(w);
    }
    return code;
}

hp_code
wal_commit_nested(store *s, uint64_t txnid, hp_status *st)
{
    wal *w = s->wal;
    if (w->rec.len <= REC_HDR) {
        w->rec.len = 0; /* no puts or deletes */
        return HP_OK;
    }
    return append_rec(s, txnid, st);
}

uint64_t
wal_bytes(const store *s)
{
    return s->wal != NULL
               ? atomic_load_explicit(&s->wal->bytes, memory_order_relaxed)
               : 0;
}

uint64_t
wal_records(const store *s)
{
    return s->wal != NULL ? s->wal->recs : 0;
}

typedef struct reapply {
    store *s;
    MDB_txn *txn;
    uint64_t skip;
    int rc;
} reapply;

static bool
reapply_rec(void *arg, bool foreign, uint64_t txnid, const uint8_t *body,
            uint32_t len)
{
    reapply *r = arg;
    (void)foreign; /* this process wrote it */
    (void)txnid;
    if (r->skip > 0) {
        r->skip--;
        return true;
    }
    replay rp = { .w = r->s->wal, .txn = r->txn };
    r->rc = replay_ops(&rp, body, len);
    return r->rc == 0;
}

int
wal_reapply(store *s, MDB_txn *txn, uint64_t from)
{
    wal *w = s->wal;
    hp_buf buf;
    reapply r = { .s = s, .txn = txn, .skip = from };
    hp_buf_init(&buf);
    seg_scan(w, w->active, w->gen, &buf, reapply_rec, &r);
    hp_buf_release(&buf);
    return r.rc;
}

void
wal_batch_committed(store *s)
{
    after_lmdb_commit(s->wal);
}

/* ---- checkpoints -------------------------------------------------------- */

/* Writer thread, no write transaction open: chooses LMDB's last commit as
 * the next checkpoint and pins it. With hand_off the checkpoint thread
 * finishes it; otherwise the caller calls ckpt_finish. */
static hp_code
ckpt_begin(wal *w, bool hand_off, hp_status *st)
{
    store *s = w->s;
    MDB_txn *pin;
    uint8_t meta[2][META_SAVE];
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &pin);
    if (rc != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    uint64_t txnid = mdb_txn_id(pin);
    if (pread_full(w->data_fd, meta[0], META_SAVE, 0) != META_SAVE ||
        pread_full(w->data_fd, meta[1], META_SAVE, w->psize) != META_SAVE ||
        !meta_valid(meta[txnid & 1]) || meta_txnid(meta[txnid & 1]) != txnid) {
        mdb_txn_abort(pin);
        return hp_status_set(st, HP_INTERNAL, HP_R_STORE_ERROR,
                             "checkpoint: data.mdb's meta page does not show "
                             "transaction %llu",
                             (unsigned long long)txnid);
    }
    if (w->logging) {
        /* The other segment's records all precede the checkpoint that has
         * just become durable (there is one at a time), so it is free. */
        int next = 1 - w->active;
        if (seg_reset(w, next) != 0) {
            mdb_txn_abort(pin);
            return io_fail(st, "cannot reset the write-ahead log");
        }
        w->active = next;
        w->off = SEG_HDR;
        w->recs = 0;
    }
    w->txns_since = w->bytes_since = 0;
    w->since_ms = mono_ms();
    pthread_mutex_lock(&w->mtx);
    w->pend_pin = pin;
    w->pend_txn = txnid;
    memcpy(w->pend_meta, meta, sizeof(meta));
    w->busy = true;
    w->queued = hand_off;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mtx);
    return HP_OK;
}

/* Makes the pending checkpoint durable: data.mdb first, then the saved
 * meta pages; only then may the older pin go. */
static hp_code
ckpt_finish(wal *w, hp_status *st)
{
    uint8_t meta[2][META_SAVE];
    pthread_mutex_lock(&w->mtx);
    uint64_t txnid = w->pend_txn;
    memcpy(meta, w->pend_meta, sizeof(meta));
    pthread_mutex_unlock(&w->mtx);

    hp_code code = HP_OK;
    /* fsync, not fdatasync: LMDB grows data.mdb by writing past its end. */
    if (fsync(w->data_fd) != 0) {
        code = io_fail(st, "cannot sync data.mdb");
    } else {
        code = ckpt_write(w, txnid, meta, st);
    }
    MDB_txn *old;
    pthread_mutex_lock(&w->mtx);
    if (code == HP_OK) {
        old = w->pin;
        w->pin = w->pend_pin;
        w->ckpt_txn = txnid;
    } else {
        old = w->pend_pin;
    }
    w->pend_pin = NULL;
    w->busy = false;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mtx);
    if (old != NULL) {
        mdb_txn_abort(old);
    }
    return code;
}

static void *
ckpt_main(void *arg)
{
    wal *w = arg;
    pthread_mutex_lock(&w->mtx);
    for (;;) {
        while (!w->queued && !w->stop) {
            pthread_cond_wait(&w->cv, &w->mtx);
        }
        if (!w->queued) {
            break;
        }
        w->queued = false;
        pthread_mutex_unlock(&w->mtx);
        hp_status st;
        if (ckpt_finish(w, &st) != HP_OK) {
            /* The data file or the checkpoint did not reach the disk: as
             * with any failed sync, nothing later can be trusted. */
            w->s->opts.fatal(w->s->opts.fatal_arg, &st);
        }
        pthread_mutex_lock(&w->mtx);
    }
    pthread_mutex_unlock(&w->mtx);
    return NULL;
}

/* Waits for the checkpoint in progress, if any; returns the durable
 * checkpoint's transaction. */
static uint64_t
wait_idle(wal *w)
{
    pthread_mutex_lock(&w->mtx);
    while (w->busy) {
        pthread_cond_wait(&w->cv, &w->mtx);
    }
    uint64_t txn = w->ckpt_txn;
    pthread_mutex_unlock(&w->mtx);
    return txn;
}

static bool
committed_since(wal *w)
{
    MDB_envinfo info;
    mdb_env_info(w->s->env, &info);
    return info.me_last_txnid != w->ckpt_txn;
}

hp_code
wal_checkpoint_now(store *s, bool *freed, hp_status *st)
{
    wal *w = s->wal;
    hp_code code;
    *freed = false;
    if (w == NULL || !w->logging) {
        return HP_OK;
    }
    pthread_mutex_lock(&w->mtx);
    uint64_t pinned = w->ckpt_txn;
    pthread_mutex_unlock(&w->mtx);
    if (wait_idle(w) != pinned) {
        *freed = true; /* the one that was running moved the pin */
        return HP_OK;
    }
    if (!committed_since(w)) {
        return HP_OK;
    }
    if ((code = ckpt_begin(w, false, st)) != HP_OK) {
        return code;
    }
    if ((code = ckpt_finish(w, st)) != HP_OK) {
        /* As in the thread: a failed sync leaves nothing to trust, and the
         * next checkpoint would reuse a segment this one still needed. */
        s->opts.fatal(s->opts.fatal_arg, st);
        return code;
    }
    *freed = true;
    return HP_OK;
}

/* ---- start and stop -------------------------------------------------------
 */

static void
remove_files(const char *dir)
{
    char path[4096];
    const char *names[] = { SEG_NAME[0], SEG_NAME[1], CKPT_NAME };
    for (size_t i = 0; i < HP_ARRAY_LEN(names); i++) {
        if (store_dir_file(path, sizeof(path), dir, names[i]) == 0) {
            unlink(path);
        }
    }
    if (store_dir_file(path, sizeof(path), dir, CKPT_NAME) == 0) {
        (void)store_sync_parent(path); /* best effort: the files are empty */
    }
}

static hp_code
wal_open_files(wal *w, hp_status *st)
{
    store *s = w->s;
    char path[4096];
    MDB_stat ms;
    int rc;
    if ((rc = mdb_env_get_fd(s->env, &w->data_fd)) != 0 ||
        (rc = mdb_env_stat(s->env, &ms)) != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    w->psize = ms.ms_psize;
    if (store_dir_file(path, sizeof(path), s->opts.dir, CKPT_NAME) != 0) {
        return hp_status_set(st, HP_INVALID_ARGUMENT, HP_R_BAD_CONFIG,
                             "data dir path is too long");
    }
    w->ckpt_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (w->ckpt_fd < 0) {
        return io_fail(st, "cannot open wal.ckpt");
    }
    /* Both slots get their blocks now: the first checkpoint writes slot 1,
     * and slot 0 written later into a hole needs a block, which a full
     * disk refuses, and a failed checkpoint is fatal. A slot without a
     * valid checkpoint holds nothing, so zeros go over it. */
    for (int i = 0; i < 2; i++) {
        uint8_t b[CKPT_SLOT];
        ckpt c;
        uint64_t at = (uint64_t)i * CKPT_SLOT;
        if (pread_full(w->ckpt_fd, b, sizeof(b), at) == (ssize_t)sizeof(b) &&
            ckpt_decode(b, &c)) {
            continue;
        }
        memset(b, 0, sizeof(b));
        if (pwrite_all(w->ckpt_fd, b, sizeof(b), at) != 0) {
            return io_fail(st, "cannot write wal.ckpt");
        }
    }
    hp_code code;
    for (int i = 0; i < 2; i++) {
        if ((code = seg_open(w, s->opts.dir, i, st)) != HP_OK) {
            return code;
        }
    }
    return HP_OK;
}

hp_code
wal_pin(store *s, bool log, hp_status *st)
{
    char path[4096];
    if (!log &&
        store_dir_file(path, sizeof(path), s->opts.dir, CKPT_NAME) == 0 &&
        access(path, F_OK) != 0) {
        return HP_OK; /* no log now, none before: nothing to replay */
    }
    wal *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "out of memory");
    }
    w->s = s;
    w->data_fd = w->ckpt_fd = w->seg[0].fd = w->seg[1].fd = -1;
    w->layout = store_table_layout();
    hp_buf_init(&w->rec);
    hp_buf_init(&w->patch);
    pthread_mutex_init(&w->mtx, NULL);
    pthread_cond_init(&w->cv, NULL);
    s->wal = w;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &w->pin);
    if (rc != 0) {
        w->pin = NULL;
        return store_status_from_mdb(s, rc, st);
    }
    w->ckpt_txn = mdb_txn_id(w->pin);
    return wal_open_files(w, st);
}

hp_code
wal_recover(store *s, uint64_t *applied, hp_status *st)
{
    wal *w = s->wal;
    ckpt c = { 0 };
    uint8_t h[SEG_HDR_USED];
    *applied = 0;
    if (w == NULL) {
        return HP_OK;
    }
    /* The next generation is newer than any on disk, so no segment left
     * from before can pass for one of the checkpoint wal_start writes. */
    bool have = ckpt_read(w->ckpt_fd, &c);
    uint64_t newest = have ? c.gen : 0;
    for (int i = 0; i < 2; i++) {
        uint64_t g = seg_gen(w, i, h);
        newest = g > newest ? g : newest;
    }
    w->gen = newest + 1;
    if (!have) {
        return HP_OK;
    }
    if (w->ckpt_txn != c.txnid) {
        /* LMDB kept the transaction id of a process that still holds
         * lock.mdb, not the one the restored meta pages say. */
        return hp_status_set(st, HP_FAILED_PRECONDITION, HP_R_DATA_DIR_BUSY,
                             "'%s' is open in another process (mdb_stat, a "
                             "copy?); stop it so hopperd can recover the "
                             "store",
                             s->opts.dir);
    }
    w->ckpt_seq = c.seq;
    hp_code code = wal_replay(w, c.txnid, c.gen, applied, st);
    if (code == HP_OK && *applied > 0) {
        hp_log(HP_LOG_INFO, "write-ahead log replayed",
               "records=%llu checkpoint_txn=%llu", (unsigned long long)*applied,
               (unsigned long long)c.txnid);
    }
    return code;
}

hp_code
wal_start(store *s, bool log, hp_status *st)
{
    wal *w = s->wal;
    hp_code code;
    if (w == NULL) {
        return HP_OK;
    }
    if (s->opts.debug_recovery_exit == 1) {
        _exit(0); /* tests: replayed, no checkpoint yet */
    }
    /* The replay becomes the checkpoint first, under a new generation,
     * and only then are the segments emptied: a crash before the
     * checkpoint is durable replays the same records onto the same pinned
     * pages again; one after it finds segments of an older generation,
     * which count for nothing. */
    if ((code = ckpt_begin(w, false, st)) != HP_OK ||
        (code = ckpt_finish(w, st)) != HP_OK) {
        return code;
    }
    if (s->opts.debug_recovery_exit == 2) {
        _exit(0); /* tests: checkpointed, segments not yet emptied */
    }
    if (!log) {
        /* Emptied durably before the names go: an unlink may not survive a
         * power cut, and a stale checkpoint must never come back. */
        if (ckpt_clear(w) != 0) {
            return io_fail(st, "cannot clear wal.ckpt");
        }
        wal_stop(s);
        remove_files(s->opts.dir);
        return HP_OK;
    }
    for (int i = 0; i < 2; i++) {
        segment *g = &w->seg[i];
        if ((g->size < SEG_FIRST && seg_zero(g, SEG_FIRST) != 0) ||
            seg_reset(w, i) != 0 || fdatasync(g->fd) != 0) {
            return io_fail(st, "cannot prepare the write-ahead log");
        }
    }
    /* The files' names, made durable like data.mdb's (env.c). */
    char path[4096];
    if (store_dir_file(path, sizeof(path), s->opts.dir, CKPT_NAME) == 0 &&
        store_sync_parent(path) != 0 && !dir_sync_unsupported(errno)) {
        return io_fail(st, "cannot sync the data dir");
    }
    int rc = mdb_env_set_flags(s->env, MDB_NOSYNC, 1);
    if (rc != 0) {
        return store_status_from_mdb(s, rc, st);
    }
    w->active = 0;
    w->off = SEG_HDR;
    w->since_ms = mono_ms();
    if (pthread_create(&w->thread, NULL, ckpt_main, w) != 0) {
        mdb_env_set_flags(s->env, MDB_NOSYNC, 0);
        return hp_status_set(st, HP_RESOURCE_EXHAUSTED, HP_R_NO_MEMORY,
                             "cannot start the checkpoint thread");
    }
    w->thread_started = true;
    w->logging = true;
    return HP_OK;
}

void
wal_stop(store *s)
{
    wal *w = s->wal;
    if (w == NULL) {
        return;
    }
    if (w->thread_started) {
        pthread_mutex_lock(&w->mtx);
        w->stop = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mtx);
        pthread_join(w->thread, NULL);
    }
    if (w->logging && s->outer != NULL) {
        /* A batch its thread never published (commitq's writer always
         * does): its commits are only in the log, so the checkpoint stays
         * for the next open to replay them. */
        hp_log(HP_LOG_WARN, "store closed with a batch open",
               "effect=\"the next open replays it\"");
    } else if (w->logging) {
        /* A clean stop leaves data.mdb whole and synced, and no checkpoint:
         * the next open restores and replays nothing, and tools that edit
         * data.mdb while hopperd is stopped (mdb_load, a restore) are not
         * undone by a stale one. */
        bool freed;
        hp_status st;
        if (wal_checkpoint_now(s, &freed, &st) != HP_OK) {
            hp_log(HP_LOG_WARN, "final checkpoint failed",
                   "reason=%s msg=\"%s\"", st.reason, st.msg);
        } else if (ckpt_clear(w) != 0) {
            hp_log(HP_LOG_WARN, "cannot clear wal.ckpt", "errno=%d", errno);
        }
    }
    if (w->pend_pin != NULL) {
        mdb_txn_abort(w->pend_pin);
    }
    if (w->pin != NULL) {
        mdb_txn_abort(w->pin);
    }
    for (int i = 0; i < 2; i++) {
        if (w->seg[i].fd >= 0) {
            close(w->seg[i].fd);
        }
    }
    if (w->ckpt_fd >= 0) {
        close(w->ckpt_fd);
    }
    hp_buf_release(&w->rec);
    hp_buf_release(&w->patch);
    pthread_mutex_destroy(&w->mtx);
    pthread_cond_destroy(&w->cv);
    free(w);
    s->wal = NULL;
}
