/* apical/fileio.h — writing files atomically: write a temporary file, then rename it over the
 * destination, so a reader sees the old file or the complete new one, never a partial one. */
#ifndef APICAL_FILEIO_H
#define APICAL_FILEIO_H

#include <stdio.h>

#include "apical/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A file being written. `fp` is for the caller's writes (fwrite, fprintf); the other fields
 * belong to ap_atomic_*. A zero-initialised ap_atomic_file is "closed": ap_atomic_abort() on it
 * is a no-op, so a writer can always call ap_atomic_abort() on its cleanup path. */
typedef struct ap_atomic_file {
    FILE *fp;       /* open on the temporary file; NULL when closed */
    char *path;     /* final destination (owned copy) */
    char *tmp_path; /* "<path>.tmp.XXXXXX" in the same directory (owned) */
    int mode;       /* permission bits the file gets at commit */
} ap_atomic_file;

/* Creates and opens a temporary file "<path>.tmp.XXXXXX" (mkstemp) next to `path`; the
 * destination is not touched. The file will get the permissions of an existing `path`, or
 * 0666 minus the process umask for a new one, as fopen(path, "w") would give.
 * On error (AP_EINVAL for NULL/empty arguments, AP_EIO naming the path and strerror, AP_ENOMEM)
 * *f is left closed and no file is created. */
AP_API int ap_atomic_open(ap_atomic_file *f, const char *path);

/* Finishes the file: fflush, checks for earlier write errors (ferror), fsync, fclose, then
 * renames the temporary file over `path` (and fsyncs the directory, best effort). On any
 * failure the temporary file is removed, `path` is left as it was, and AP_EIO names the step,
 * the file and strerror. In all cases *f is closed afterwards. */
AP_API int ap_atomic_commit(ap_atomic_file *f);

/* Closes and removes the temporary file; `path` is left as it was. Safe on a closed file and
 * safe to call twice or after ap_atomic_commit(). Never fails. */
AP_API void ap_atomic_abort(ap_atomic_file *f);

#ifdef __cplusplus
}
#endif
#endif
