/*
 * check_cmd.c - `hopperd check --data DIR`. It opens the store the way
 * hopperd does, so the data dir's lock refuses it while a hopperd runs
 * there (a walk of a live store would hold one snapshot for as long as it
 * takes), and it refuses a directory without data.mdb rather than create
 * a fresh store and call it consistent.
 */
#include "broker/check_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sys/stat.h>

#include "store/store.h"

bool
check_cmd_matches(int argc, char **argv)
{
    return argc >= 2 && strcmp(argv[1], "check") == 0;
}

static hp_code
run_check(store_txn *t, void *arg, hp_status *st)
{
    return store_check(t, arg, st);
}

int
check_cmd_main(int argc, char **argv)
{
    char path[4096];
    struct stat sb;
    store_opts o;
    store *s = NULL;
    store_check_res res;
    hp_status st;

    if (argc != 4 || strcmp(argv[2], "--data") != 0) {
        fprintf(stderr, "usage: hopperd check --data DIR\n");
        return 2;
    }
    const char *dir = argv[3];
    int n = snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &sb) != 0) {
        fprintf(stderr, "hopperd check: no store in '%s': %s\n", dir,
                n < 0 || (size_t)n >= sizeof(path) ? "path too long"
                                                   : strerror(errno));
        return 1;
    }
    store_opts_init(&o);
    o.dir = dir;
    if (store_open(&o, &s, &st) != HP_OK) {
        fprintf(stderr, "hopperd check: cannot open the store: %s\n", st.msg);
        return 1;
    }
    hp_code code = store_run(s, false, run_check, &res, &st);
    store_close(s);
    if (code != HP_OK) {
        fprintf(stderr, "hopperd check: %s %s: %s\n", hp_code_name(code),
                st.reason != NULL ? st.reason : "", st.msg);
        return 1;
    }
    printf("hopperd check: the store in %s is consistent: %llu messages "
           "(pending %llu, delayed %llu, claimed %llu, delivered %llu, "
           "dead %llu), %llu lanes, %llu dedupe keys, %llu replay entries, "
           "%llu index entries\n",
           dir, (unsigned long long)res.messages,
           (unsigned long long)res.pending, (unsigned long long)res.delayed,
           (unsigned long long)res.claimed, (unsigned long long)res.delivered,
           (unsigned long long)res.dead, (unsigned long long)res.lanes,
           (unsigned long long)res.dedupe_keys, (unsigned long long)res.replies,
           (unsigned long long)res.index_entries);
    return 0;
}
