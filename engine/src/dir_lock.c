/* dir_lock.c — an exclusive flock on "<dir>/lock" naming the holder's pid (ap_dir_lock_*). */
#define _DEFAULT_SOURCE /* flock */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "apical/dirutil.h"
#include "apical/error.h"

/* The pid written in the lock file, 0 if none can be read. */
static long read_holder(int fd) {
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return end != buf && pid > 0 ? pid : 0;
}

static int write_pid(int fd) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0) return -1;
    return pwrite(fd, buf, (size_t)n, 0) == n ? 0 : -1;
}

int ap_dir_lock_acquire(ap_dir_lock *lk, const char *dir, long *holder) {
    if (!lk || !dir) return ap_error(AP_EINVAL, "ap_dir_lock_acquire: lock or directory is NULL");
    memset(lk, 0, sizeof *lk);
    lk->fd = -1;
    if (holder) *holder = 0;
    size_t n = strlen(dir) + sizeof "/lock";
    char *path = malloc(n);
    if (!path) return ap_error(AP_ENOMEM, "directory %s: out of memory", dir);
    snprintf(path, n, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = ap_error(AP_EIO, "directory %s: cannot open lock file %s: %s", dir, path,
                          strerror(errno));
        free(path);
        return rc;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = e == EWOULDBLOCK ? read_holder(fd) : 0;
        close(fd);
        int rc;
        if (e != EWOULDBLOCK)
            rc = ap_error(AP_EIO, "directory %s: cannot lock %s: %s", dir, path, strerror(e));
        else if (pid == (long)getpid())
            rc = ap_error(AP_ESTATE,
                          "directory %s is in use by this process (pid %ld: a run "
                          "still open holds %s)",
                          dir, pid, path);
        else if (pid > 0)
            rc = ap_error(AP_ESTATE,
                          "directory %s is in use by process %ld (it holds %s); "
                          "wait for it to finish or stop it",
                          dir, pid, path);
        else
            rc = ap_error(AP_ESTATE, "directory %s is in use by another process (it holds %s)", dir,
                          path);
        if (holder) *holder = pid;
        free(path);
        return rc;
    }
    if (write_pid(fd) != 0) {
        int rc = ap_error(AP_EIO, "directory %s: cannot write the pid into %s: %s", dir, path,
                          strerror(errno));
        close(fd);
        free(path);
        return rc;
    }
    free(path);
    lk->fd = fd;
    lk->held = 1;
    return AP_OK;
}

void ap_dir_lock_release(ap_dir_lock *lk) {
    if (!lk || !lk->held) return;
    flock(lk->fd, LOCK_UN);
    close(lk->fd);
    lk->fd = -1;
    lk->held = 0;
}
