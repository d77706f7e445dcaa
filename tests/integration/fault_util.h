/*
 * fault_util.h - what the fault tests (tests/integration/fault_*_test.c)
 * share: a libhopper client that must connect, and the resources of a
 * process as /proc shows them, so a test can compare a broker before and
 * after a fault.
 */
#ifndef HP_TESTS_FAULT_UTIL_H
#define HP_TESTS_FAULT_UTIL_H

#include <hopper/hopper.h>
#include <stdbool.h>
#include <stdint.h>

#include <sys/types.h>

/* A client of url with a per-call timeout; fails the test if it cannot be
 * made. */
hopper_client *fu_client(const char *url, uint32_t timeout_ms);

/* Open descriptors of pid (entries of /proc/pid/fd), or -1. */
int fu_fd_count(pid_t pid);

/* Resident memory of pid in KiB (VmRSS of /proc/pid/status), or -1. */
long fu_rss_kib(pid_t pid);

/* Size of a file in bytes, or -1. */
long long fu_file_size(const char *path);

/* Checks an LMDB environment with LMDB's own tools, as an operator would:
 * `mdb_stat -e -f -a` (environment, free list, every named database) and
 * `mdb_dump -a`, which reads every key and value of every database.
 * Returns 0 when both succeed. Run it on a stopped broker's data dir. */
int fu_mdb_check(const char *dir);

/* Sleeps ms milliseconds. */
void fu_sleep_ms(uint32_t ms);

/* Monotonic milliseconds. */
uint64_t fu_mono_ms(void);

#endif
