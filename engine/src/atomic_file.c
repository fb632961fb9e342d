/* atomic_file.c — write-to-temporary-then-rename file writing (ap_atomic_open/commit/abort). */
#include "apical/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apical/error.h"

/* The process umask without changing it: umask() can only be read by setting it, which
 * would race with other threads creating files, so read it from /proc when possible. */
static mode_t process_umask(void) {
    FILE *fp = fopen("/proc/self/status", "r");
    if (fp) {
        char line[256];
        while (fgets(line, sizeof line, fp)) {
            if (strncmp(line, "Umask:", 6) == 0) {
                unsigned long m = strtoul(line + 6, NULL, 8);
                fclose(fp);
                return (mode_t)(m & 0777);
            }
        }
        fclose(fp);
    }
    return 022; /* the usual default when /proc is unavailable */
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static void release(ap_atomic_file *f) {
    free(f->path);
    free(f->tmp_path);
    f->fp = NULL;
    f->path = NULL;
    f->tmp_path = NULL;
    f->mode = 0;
}

int ap_atomic_open(ap_atomic_file *f, const char *path) {
    if (!f) return ap_error(AP_EINVAL, "ap_atomic_open: f is NULL");
    memset(f, 0, sizeof *f);
    if (!path || !path[0]) return ap_error(AP_EINVAL, "ap_atomic_open: empty file name");

    static const char suffix[] = ".tmp.XXXXXX";
    size_t n = strlen(path);
    f->path = dup_string(path);
    f->tmp_path = malloc(n + sizeof suffix);
    if (!f->path || !f->tmp_path) {
        release(f);
        return ap_error(AP_ENOMEM, "file %s: out of memory for the temporary name", path);
    }
    memcpy(f->tmp_path, path, n);
    memcpy(f->tmp_path + n, suffix, sizeof suffix);

    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        f->mode = (int)(st.st_mode & 07777);
    else
        f->mode = (int)(0666 & ~process_umask());

    int fd = mkstemp(f->tmp_path);
    if (fd < 0) {
        int e = errno;
        ap_error(AP_EIO, "file %s: cannot create temporary file %s: %s", path, f->tmp_path,
                 strerror(e));
        release(f);
        return AP_EIO;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int e = errno;
        close(fd);
        unlink(f->tmp_path);
        ap_error(AP_EIO, "file %s: cannot open temporary file %s: %s", path, f->tmp_path,
                 strerror(e));
        release(f);
        return AP_EIO;
    }
    return AP_OK;
}

/* Makes the rename durable; some file systems refuse fsync on directories, so failures are
 * ignored (the data itself was already fsynced). */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = dup_string(".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int ap_atomic_commit(ap_atomic_file *f) {
    if (!f || !f->fp) return ap_error(AP_EINVAL, "ap_atomic_commit: file is not open");
    const char *step = NULL;
    int e = 0;
    if (fflush(f->fp) != 0) {
        step = "write";
        e = errno;
    } else if (ferror(f->fp)) {
        step = "write";
        e = EIO; /* an earlier fwrite failed; its errno is gone */
    } else if (fchmod(fileno(f->fp), (mode_t)f->mode) != 0) {
        step = "chmod";
        e = errno;
    } else if (fsync(fileno(f->fp)) != 0) {
        step = "fsync";
        e = errno;
    }
    if (fclose(f->fp) != 0 && !step) {
        step = "close";
        e = errno;
    }
    f->fp = NULL;
    if (!step && rename(f->tmp_path, f->path) != 0) {
        step = "rename";
        e = errno;
    }
    if (step) {
        unlink(f->tmp_path);
        ap_error(AP_EIO, "file %s: %s of temporary file %s failed: %s", f->path, step, f->tmp_path,
                 strerror(e));
        release(f);
        return AP_EIO;
    }
    sync_parent_dir(f->path);
    release(f);
    return AP_OK;
}

void ap_atomic_abort(ap_atomic_file *f) {
    if (!f) return;
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
        if (f->tmp_path) unlink(f->tmp_path);
    }
    release(f);
}
