/*
 * backup_test.c - hopper admin backup against a real hopperd: a backup
 * taken while a producer keeps enqueueing restores, in a new hopperd on a
 * new data dir, every message acknowledged before the backup was asked
 * for, in the state it had (pending or delivered) and with its payload;
 * the restored broker takes writes. And the refusals: backups off without
 * --backup-dir, names that are not plain, a name used before, a missing
 * backup dir.
 */
#include <hopper/hopper.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cmocka.h>

#include "harness.h"

#define SEEDED   1500 /* before the backup, in three lanes */
#define ACKED    200  /* of them, acked before the backup */
#define MAX_LIVE 200000

static const char *const lanes[] = { "alpha", "beta", "gamma" };

typedef struct known {
    char id[27];
    char payload[32];
    const char *lane;
    bool acked;
} known;

static hopper_client *
connect_to(const broker_proc *bp)
{
    hopper_options o;
    hopper_client *c = NULL;
    hopper_status st;
    hopper_options_init(&o);
    o.timeout_ms = 30000;
    assert_int_equal(hopper_connect(bp->url, &o, &c, &st), HOPPER_OK);
    return c;
}

/* The producer that runs while the backup is taken. */
typedef struct producer {
    const broker_proc *bp;
    _Atomic bool stop;
    _Atomic uint64_t acked;
} producer;

static void *
produce(void *arg)
{
    producer *p = arg;
    hopper_client *c = connect_to(p->bp);
    hopper_status st;
    char payload[32];
    for (uint64_t i = 0; !atomic_load(&p->stop) && i < MAX_LIVE; i++) {
        snprintf(payload, sizeof(payload), "live-%llu", (unsigned long long)i);
        hopper_draft d[10];
        for (int k = 0; k < 10; k++) {
            d[k] = (hopper_draft){ .lane = "live",
                                   .payload = payload,
                                   .payload_len = strlen(payload) };
        }
        if (hopper_enqueue(c, d, 10, NULL, &st) == HOPPER_OK) {
            atomic_fetch_add(&p->acked, 10);
        }
    }
    hopper_close(c);
    return NULL;
}

static void
copy_file(const char *from, const char *to)
{
    char buf[65536];
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void
test_a_backup_under_traffic_restores_every_acknowledged_message(void **state)
{
    (void)state;
    char bdir[] = "/tmp/hopper-backups-XXXXXX";
    assert_non_null(mkdtemp(bdir));
    const char *const extra[] = { "--backup-dir", bdir, NULL };
    broker_proc bp, restored;
    hopper_status st;
    known *k = calloc(SEEDED, sizeof(*k));
    assert_non_null(k);
    assert_int_equal(broker_proc_start(&bp, extra), 0);
    hopper_client *c = connect_to(&bp);

    for (size_t i = 0; i < SEEDED; i++) {
        hopper_enqueued out;
        k[i].lane = lanes[i % 3];
        snprintf(k[i].payload, sizeof(k[i].payload), "seed-%zu", i);
        hopper_draft d = { .lane = k[i].lane,
                           .payload = k[i].payload,
                           .payload_len = strlen(k[i].payload) };
        assert_int_equal(hopper_enqueue(c, &d, 1, &out, &st), HOPPER_OK);
        memcpy(k[i].id, out.id, sizeof(k[i].id));
    }
    /* Ack the first ACKED of lane alpha (claims come in enqueue order). */
    hopper_claim_opts co = { .max = ACKED, .lease_ms = 60000 };
    hopper_batch *b = NULL;
    assert_int_equal(hopper_claim(c, "alpha", &co, &b, &st), HOPPER_OK);
    assert_int_equal(b->n, ACKED);
    hopper_ack_item items[ACKED];
    for (size_t i = 0; i < b->n; i++) {
        items[i] =
            (hopper_ack_item){ .id = b->msgs[i].id, .token = b->msgs[i].token };
        k[3 * i].acked = true;
        assert_string_equal(k[3 * i].id, b->msgs[i].id);
    }
    assert_int_equal(hopper_ack(c, items, b->n, NULL, 0, NULL, &st), HOPPER_OK);
    hopper_batch_free(b);

    /* Traffic goes on while the copy is taken. */
    producer p = { .bp = &bp };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, produce, &p), 0);
    while (atomic_load(&p.acked) < 500) {
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
    uint64_t acked_before = atomic_load(&p.acked);
    hopper_backup_info info;
    assert_int_equal(hopper_backup(c, "full-1", &info, &st), HOPPER_OK);
    uint64_t acked_after = atomic_load(&p.acked);
    atomic_store(&p.stop, true);
    pthread_join(th, NULL);
    print_message(
        "backup: %llu bytes in %llu ms; producer acked %llu before, "
        "%llu by the reply\n",
        (unsigned long long)info.bytes, (unsigned long long)info.duration_ms,
        (unsigned long long)acked_before, (unsigned long long)acked_after);
    char want[600];
    snprintf(want, sizeof(want), "%s/full-1", bdir);
    assert_string_equal(info.path, want);
    struct stat sb;
    assert_int_equal(stat(want, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, info.bytes);
    assert_int_equal(sb.st_mode & 0777, 0600);
    hopper_close(c);
    assert_int_equal(broker_proc_stop(&bp), 0);

    /* Restore: the copy as data.mdb of an empty data dir. */
    memset(&restored, 0, sizeof(restored));
    snprintf(restored.dir, sizeof(restored.dir), "/tmp/hopper-it-XXXXXX");
    assert_non_null(mkdtemp(restored.dir));
    restored.own_dir = true;
    snprintf(restored.data, sizeof(restored.data), "%s/data", restored.dir);
    assert_int_equal(mkdir(restored.data, 0700), 0);
    char dst[600];
    snprintf(dst, sizeof(dst), "%s/data.mdb", restored.data);
    copy_file(want, dst);
    assert_int_equal(broker_proc_restart(&restored, NULL), 0);
    c = connect_to(&restored);
    for (size_t i = 0; i < SEEDED; i++) {
        hopper_message *m = NULL;
        assert_int_equal(hopper_get(c, k[i].id, &m, &st), HOPPER_OK);
        assert_int_equal(m->state, k[i].acked ? HOPPER_STATE_DELIVERED
                                              : HOPPER_STATE_PENDING);
        assert_string_equal(m->lane, k[i].lane);
        assert_int_equal(m->payload_len, strlen(k[i].payload));
        assert_memory_equal(m->payload, k[i].payload, m->payload_len);
        hopper_message_free(m);
    }
    /* Every live enqueue answered before the backup was asked for is in
     * it; some answered during the copy may be too. */
    hopper_lane_stats *ls = NULL;
    assert_int_equal(hopper_stats(c, "live", &ls, &st), HOPPER_OK);
    assert_true(ls->pending >= acked_before);
    assert_true(ls->pending <= acked_after + 10);
    hopper_lane_stats_free(ls);
    /* The restored broker takes writes and hands out the oldest first. */
    hopper_draft d = { .lane = "after", .payload = "x", .payload_len = 1 };
    assert_int_equal(hopper_enqueue(c, &d, 1, NULL, &st), HOPPER_OK);
    co.max = 1;
    assert_int_equal(hopper_claim(c, "alpha", &co, &b, &st), HOPPER_OK);
    assert_int_equal(b->n, 1);
    assert_string_equal(b->msgs[0].id, k[3 * ACKED].id);
    hopper_batch_free(b);
    hopper_close(c);
    assert_int_equal(broker_proc_stop(&restored), 0);
    broker_proc_cleanup(&restored);
    broker_proc_cleanup(&bp);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bdir);
    assert_int_equal(system(cmd), 0);
    free(k);
}

static void
expect(hopper_client *c, const char *name, int code, const char *reason)
{
    hopper_status st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(hopper_backup(c, name, NULL, &st), code);
    assert_string_equal(st.reason, reason);
}

static void
test_backups_are_refused_with_a_reason(void **state)
{
    (void)state;
    char bdir[] = "/tmp/hopper-backups-XXXXXX";
    char missing[600];
    assert_non_null(mkdtemp(bdir));
    broker_proc bp;

    /* Off unless the operator names a directory. */
    assert_int_equal(broker_proc_start(&bp, NULL), 0);
    hopper_client *c = connect_to(&bp);
    expect(c, "b", HOPPER_FAILED_PRECONDITION, "BACKUP_DISABLED");
    hopper_close(c);
    assert_int_equal(broker_proc_stop(&bp), 0);

    const char *const extra[] = { "--backup-dir", bdir, NULL };
    assert_int_equal(broker_proc_restart(&bp, extra), 0);
    c = connect_to(&bp);
    static const char *const bad[] = { "",      "../x",   "a/b", ".hidden",
                                       "x.tmp", "sp ace", "é" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect(c, bad[i], HOPPER_INVALID_ARGUMENT, "BAD_NAME");
    }
    char longname[130];
    memset(longname, 'n', 129);
    longname[129] = '\0';
    expect(c, longname, HOPPER_INVALID_ARGUMENT, "BAD_NAME");
    longname[128] = '\0';
    assert_int_equal(hopper_backup(c, longname, NULL, NULL), HOPPER_OK);
    assert_int_equal(hopper_backup(c, "once", NULL, NULL), HOPPER_OK);
    expect(c, "once", HOPPER_ALREADY_EXISTS, "BACKUP_EXISTS");
    hopper_close(c);
    assert_int_equal(broker_proc_stop(&bp), 0);

    /* A backup dir that is missing at start stops the start; one that
     * goes away later gets the file system's error, named. */
    snprintf(missing, sizeof(missing), "%s/gone", bdir);
    const char *const extra2[] = { "--backup-dir", missing, NULL };
    assert_int_not_equal(broker_proc_restart(&bp, extra2), 0);
    assert_int_equal(mkdir(missing, 0700), 0);
    assert_int_equal(broker_proc_restart(&bp, extra2), 0);
    assert_int_equal(rmdir(missing), 0);
    c = connect_to(&bp);
    expect(c, "b", HOPPER_FAILED_PRECONDITION, "IO_ERROR");
    hopper_close(c);
    assert_int_equal(broker_proc_stop(&bp), 0);
    broker_proc_cleanup(&bp);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bdir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_a_backup_under_traffic_restores_every_acknowledged_message),
        cmocka_unit_test(test_backups_are_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
