/* fuzz_util.h — shared by the libFuzzer harnesses of tests/fuzz: the input as a file that the
 * path-based readers can open (an in-memory file, memfd_create, named /proc/self/fd/N). */
#ifndef APICAL_FUZZ_UTIL_H
#define APICAL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Replaces the contents of the harness's in-memory file by data; its path goes to path. */
static inline void fuzz_file(const uint8_t *data, size_t size, char *path, size_t n) {
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("apical-fuzz", 0);
        if (fd < 0) abort();
    }
    if (ftruncate(fd, 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    snprintf(path, n, "/proc/self/fd/%d", fd);
}

#endif
