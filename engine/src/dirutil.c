/* dirutil.c — file checksums, durable directories, mkdir -p and rm -r for run directories. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "apical/dirutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "apical/error.h"

int ap_file_crc32(const char *path, uint32_t *crc, uint64_t *size) {
    if (!path) return ap_error(AP_EINVAL, "ap_file_crc32: path is NULL");
    FILE *fp = fopen(path, "rb");
    if (!fp) return ap_error(AP_EIO, "file %s: cannot open: %s", path, strerror(errno));
    unsigned char buf[65536];
    uLong c = crc32(0L, Z_NULL, 0);
    uint64_t n = 0;
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, fp)) > 0) {
        c = crc32(c, buf, (uInt)got);
        n += got;
    }
    int bad = ferror(fp);
    int e = errno;
    fclose(fp);
    if (bad) return ap_error(AP_EIO, "file %s: read failed: %s", path, strerror(e));
    if (crc) *crc = (uint32_t)c;
    if (size) *size = n;
    return AP_OK;
}

int ap_sync_dir(const char *path) {
    if (!path) return ap_error(AP_EINVAL, "ap_sync_dir: path is NULL");
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ap_error(AP_EIO, "directory %s: cannot open: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL)
        return ap_error(AP_EIO, "directory %s: fsync failed: %s", path, strerror(e));
    return AP_OK;
}

static int make_one(const char *path, int exist_ok) {
    if (mkdir(path, 0777) == 0) return AP_OK;
    int e = errno;
    struct stat st;
    if (e == EEXIST) {
        if (!exist_ok) return ap_error(AP_EDUP, "directory %s: exists already", path);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return AP_OK;
        return ap_error(AP_EIO, "directory %s: exists and is not a directory", path);
    }
    return ap_error(AP_EIO, "directory %s: cannot create: %s", path, strerror(e));
}

int ap_make_dir(const char *path, int parents) {
    if (!path || !path[0]) return ap_error(AP_EINVAL, "ap_make_dir: empty path");
    if (!parents) return make_one(path, 0);
    size_t n = strlen(path);
    char *p = malloc(n + 1);
    if (!p) return ap_error(AP_ENOMEM, "directory %s: out of memory", path);
    memcpy(p, path, n + 1);
    int rc = AP_OK;
    for (size_t i = 1; i <= n && rc == AP_OK; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        rc = make_one(p, 1);
        p[i] = c;
    }
    free(p);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) {
        ap_error(AP_EIO, "%s: cannot remove: %s", path, strerror(errno));
        return 1;
    }
    return 0;
}

int ap_remove_tree(const char *path) {
    if (!path || !path[0]) return ap_error(AP_EINVAL, "ap_remove_tree: empty path");
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return AP_OK;
        return ap_error(AP_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    int rc = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc == 1) return AP_EIO;
    if (rc != 0) return ap_error(AP_EIO, "%s: cannot remove: %s", path, strerror(errno));
    return AP_OK;
}
