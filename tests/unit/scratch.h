/* scratch.h — a scratch directory for the unit tests that write files. main opens it with
 * scratch_open("npy") (a new ./tmp_npy_XXXXXX under the test's working directory) before the
 * tests and closes it with scratch_close() after them, which fails the test program if a test
 * left a file behind. tpath(name) names a file in it (four rotating buffers, so one call may
 * take several); scratch_count(part) counts its entries whose name contains part (NULL: all). */
#ifndef APICAL_TEST_SCRATCH_H
#define APICAL_TEST_SCRATCH_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[64];

static inline int scratch_open(const char *test) {
    snprintf(scratch, sizeof scratch, "tmp_%s_XXXXXX", test);
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    return 0;
}

static inline int scratch_close(void) {
    if (rmdir(scratch) != 0) {
        fprintf(stderr, "scratch directory %s not empty: %s\n", scratch, strerror(errno));
        return 1;
    }
    return 0;
}

static inline const char *tpath(const char *name) {
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", scratch, name);
    return buf[k];
}

static inline int scratch_count(const char *part) {
    DIR *d = opendir(scratch);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && (!part || strstr(e->d_name, part)))
            n++;
    closedir(d);
    return n;
}

static inline int path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

#endif
