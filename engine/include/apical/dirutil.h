/* apical/dirutil.h — what a run directory needs of the file system beyond atomic files
 * (fileio.h): checksums of files, durable directories, creating and removing directories, and
 * an exclusive lock on a directory held for a run's lifetime. See docs/training.md. */
#ifndef APICAL_DIRUTIL_H
#define APICAL_DIRUTIL_H

#include <stdint.h>

#include "apical/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* zlib's CRC-32 of the whole file `path` into *crc and its size in bytes into *size (either may
 * be NULL). AP_EIO names the file and strerror when it cannot be opened or read. */
AP_API int ap_file_crc32(const char *path, uint32_t *crc, uint64_t *size);

/* fsync of a directory, so that renames and new entries in it survive a crash. A file system
 * that cannot fsync directories (EINVAL) counts as success; other failures are AP_EIO. */
AP_API int ap_sync_dir(const char *path);

/* Creates directory `path` (mode 0777 minus the umask). With parents != 0 missing parents are
 * created too and an existing directory is success; with parents == 0 an existing entry of
 * that name is AP_EDUP (so mkdir(2)'s atomicity can claim a name). Other failures: AP_EIO. */
AP_API int ap_make_dir(const char *path, int parents);

/* Removes `path` and, if it is a directory, everything below it (symbolic links are removed,
 * not followed). A missing `path` is success. */
AP_API int ap_remove_tree(const char *path);

/* An exclusive advisory lock (flock) on the file "<dir>/lock", which holds the holder's pid.
 * A zero-initialised ap_dir_lock is released. */
typedef struct ap_dir_lock {
    int fd; /* open on the lock file while held; -1 or 0 with held == 0 when released */
    int held;
} ap_dir_lock;

/* Takes the lock of directory `dir` without waiting. When another open lock holds it (another
 * process, or another ap_dir_lock of this one), returns AP_ESTATE with a message naming the
 * directory and the holder's pid, and *holder (if not NULL) set to that pid (0 if unknown). */
AP_API int ap_dir_lock_acquire(ap_dir_lock *lk, const char *dir, long *holder);

/* Releases the lock (the lock file stays). Safe on a released lock. */
AP_API void ap_dir_lock_release(ap_dir_lock *lk);

#ifdef __cplusplus
}
#endif
#endif
