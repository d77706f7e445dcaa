/*
 * plcut.c - powerloss_cut: what the disk holds after the power went out.
 * Run it after the process that wrote under the shim (plshim.c) has been
 * killed: each tracked file of DIR is replaced by its durable image from
 * STATE (plstate.h). With --keep-pct N, each page that unsynced writes
 * touched first gets the live file's content with probability N%, as a
 * disk holds the pages the kernel wrote back early: the newest content of
 * the page, whole, or nothing of it.
 *
 *   powerloss_cut --dir DIR --state STATE [--keep-pct N] [--seed S]
 *
 * Prints one line per file: its name, the durable image's size, the dirty
 * pages and how many of them were kept. Exit 0, or 1 with a message.
 */
#define _GNU_SOURCE /* d_type, qsort of uint64_t */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "plstate.h"

typedef struct cut_opts {
    const char *dir;
    const char *state;
    unsigned keep_pct;
    uint64_t rng;
} cut_opts;

typedef struct pages {
    uint64_t *p;
    size_t n, cap;
} pages;

static int
fail(const char *what, const char *path)
{
    fprintf(stderr, "powerloss_cut: %s %s: %s\n", what, path, strerror(errno));
    return -1;
}

/* splitmix64: repeatable from --seed, so a run's cut replays. */
static uint64_t
next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int
add_page(pages *ps, uint64_t page)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 256;
        uint64_t *p = realloc(ps->p, cap * sizeof(*p));
        if (p == NULL) {
            fprintf(stderr, "powerloss_cut: out of memory\n");
            return -1;
        }
        ps->p = p;
        ps->cap = cap;
    }
    ps->p[ps->n++] = page;
    return 0;
}

/* The pages that NAME.dirty's extents touch, sorted, each once. */
static int
dirty_pages(const char *path, pages *ps)
{
    FILE *f = fopen(path, "rb");
    pl_extent e;

    if (f == NULL) {
        return errno == ENOENT ? 0 : fail("cannot open", path);
    }
    while (fread(&e, sizeof(e), 1, f) == 1) {
        if (e.len == 0) {
            continue;
        }
        for (uint64_t pg = e.off / PL_PAGE; pg <= (e.off + e.len - 1) / PL_PAGE;
             pg++) {
            if (add_page(ps, pg) != 0) {
                fclose(f);
                return -1;
            }
        }
    }
    fclose(f);
    if (ps->n == 0) {
        return 0;
    }
    qsort(ps->p, ps->n, sizeof(*ps->p), cmp_u64);
    size_t out = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (out == 0 || ps->p[out - 1] != ps->p[i]) {
            ps->p[out++] = ps->p[i];
        }
    }
    ps->n = out;
    return 0;
}

/* Copies page pg of the live file (as far as it reaches) into the image. */
static int
keep_page(int live, int image, uint64_t pg, const char *path)
{
    char buf[PL_PAGE];
    ssize_t n = pread(live, buf, sizeof(buf), (off_t)(pg * PL_PAGE));
    if (n < 0) {
        return fail("cannot read", path);
    }
    if (n > 0 && pwrite(image, buf, (size_t)n, (off_t)(pg * PL_PAGE)) != n) {
        return fail("cannot write the image of", path);
    }
    return 0;
}

static int
cut_file(cut_opts *o, const char *name)
{
    char live[4096], durable[4096], dirty[4096], tmp[4096];
    pages ps = { NULL, 0, 0 };
    size_t kept = 0;
    struct stat sb;
    int rc = -1;

    if (snprintf(live, sizeof(live), "%s/%s", o->dir, name) >=
            (int)sizeof(live) ||
        pl_state_path(durable, sizeof(durable), o->state, name, PL_DURABLE) !=
            0 ||
        pl_state_path(dirty, sizeof(dirty), o->state, name, PL_DIRTY) != 0 ||
        pl_state_path(tmp, sizeof(tmp), o->state, name, ".tmp") != 0) {
        fprintf(stderr, "powerloss_cut: path of %s is too long\n", name);
        return -1;
    }
    if (dirty_pages(dirty, &ps) != 0) {
        goto free_pages;
    }
    if (o->keep_pct > 0 && ps.n > 0) {
        int lfd = open(live, O_RDONLY | O_CLOEXEC);
        int ifd = open(durable, O_RDWR | O_CLOEXEC);
        int bad = lfd < 0 || ifd < 0 ? fail("cannot open", live) : 0;
        for (size_t i = 0; i < ps.n && bad == 0; i++) {
            if (next_rand(&o->rng) % 100 < o->keep_pct) {
                bad = keep_page(lfd, ifd, ps.p[i], live);
                kept++;
            }
        }
        if (lfd >= 0) {
            close(lfd);
        }
        if (ifd >= 0) {
            close(ifd);
        }
        if (bad != 0) {
            goto free_pages;
        }
    }
    if (stat(durable, &sb) != 0) {
        fail("cannot stat", durable);
        goto free_pages;
    }
    /* The state directory sits beside the data directory, on the same
     * file system, so the image takes the file's place in one step. */
    if (rename(durable, live) != 0) {
        fail("cannot put the image in place of", live);
        goto free_pages;
    }
    if ((unlink(dirty) != 0 && errno != ENOENT) ||
        (unlink(tmp) != 0 && errno != ENOENT)) {
        fail("cannot remove the state of", name);
        goto free_pages;
    }
    printf("%s: durable %lld bytes, %zu dirty pages, %zu kept\n", name,
           (long long)sb.st_size, ps.n, kept);
    rc = 0;
free_pages:
    free(ps.p);
    return rc;
}

static int
usage(void)
{
    fprintf(stderr, "usage: powerloss_cut --dir DIR --state STATE "
                    "[--keep-pct 0-100] [--seed N]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    cut_opts o = { NULL, NULL, 0, 1 };
    size_t suffix = strlen(PL_DURABLE);
    struct dirent *de;
    int rc = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0) {
            o.dir = argv[i + 1];
        } else if (strcmp(argv[i], "--state") == 0) {
            o.state = argv[i + 1];
        } else if (strcmp(argv[i], "--keep-pct") == 0) {
            o.keep_pct = (unsigned)strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--seed") == 0) {
            o.rng = strtoull(argv[i + 1], NULL, 10);
        } else {
            return usage();
        }
    }
    if (o.dir == NULL || o.state == NULL || o.keep_pct > 100 || argc % 2 == 0) {
        return usage();
    }
    DIR *d = opendir(o.state);
    if (d == NULL) {
        fail("cannot open", o.state);
        return 1;
    }
    /* Names first, files after: cutting renames entries out of STATE,
     * and readdir may then skip or repeat entries. */
    char names[64][256];
    size_t n = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len <= suffix || strcmp(de->d_name + len - suffix, PL_DURABLE)) {
            continue;
        }
        if (n == sizeof(names) / sizeof(names[0]) || len - suffix >= 256) {
            fprintf(stderr, "powerloss_cut: too many files in %s\n", o.state);
            closedir(d);
            return 1;
        }
        snprintf(names[n++], 256, "%.*s", (int)(len - suffix), de->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        if (cut_file(&o, names[i]) != 0) {
            rc = 1;
        }
    }
    return rc;
}
