/*
 * fault_util.c - helpers of the fault tests; see fault_util.h.
 */
#include "fault_util.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>

#include <cmocka.h>

hopper_client *
fu_client(const char *url, uint32_t timeout_ms)
{
    hopper_client *c = NULL;
    hopper_status st;
    hopper_options o;
    hopper_options_init(&o);
    o.timeout_ms = timeout_ms;
    if (hopper_connect(url, &o, &c, &st) != HOPPER_OK) {
        fail_msg("cannot make a client of %s: %s", url, st.message);
    }
    return c;
}

int
fu_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n;
}

long
fu_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

long long
fu_file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

int
fu_mdb_check(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "mdb_stat -e -f -a '%s' > /dev/null && "
             "mdb_dump -a '%s' > /dev/null",
             dir, dir);
    int rc = system(cmd);
    return rc == -1 ? -1 : (rc >> 8) & 0xff;
}

void
fu_sleep_ms(uint32_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

uint64_t
fu_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
