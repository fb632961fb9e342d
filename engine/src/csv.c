/* csv.c — ap_csv_write: a header line and rows of %.17g doubles, written atomically. */
#include "apical/csv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apical/error.h"
#include "apical/fileio.h"

/* Writes one header field, quoting it when it holds a separator, a quote or a line break. */
static void put_name(FILE *fp, const char *name) {
    if (!strpbrk(name, ",\"\r\n")) {
        fputs(name, fp);
        return;
    }
    fputc('"', fp);
    for (const char *c = name; *c; c++) {
        if (*c == '"') fputc('"', fp);
        fputc(*c, fp);
    }
    fputc('"', fp);
}

int ap_csv_write(const char *path, const char *const *colnames, int ncols, const double *data,
                 size_t nrows) {
    if (!path) return ap_error(AP_EINVAL, "ap_csv_write: path is NULL");
    if (ncols < 1) return ap_error(AP_EINVAL, "file %s: ncols = %d, expected >= 1", path, ncols);
    if (!colnames) return ap_error(AP_EINVAL, "file %s: colnames is NULL", path);
    for (int c = 0; c < ncols; c++)
        if (!colnames[c]) return ap_error(AP_EINVAL, "file %s: column name %d is NULL", path, c);
    if (nrows > 0 && !data) return ap_error(AP_EINVAL, "file %s: data is NULL", path);

    ap_atomic_file f;
    int rc = ap_atomic_open(&f, path);
    if (rc != AP_OK) return rc;
    for (int c = 0; c < ncols; c++) {
        if (c) fputc(',', f.fp);
        put_name(f.fp, colnames[c]);
    }
    fputc('\n', f.fp);
    /* Stop at the first failed write (a full disk) instead of formatting every row. */
    for (size_t r = 0; r < nrows && !ferror(f.fp); r++) {
        const double *row = data + r * (size_t)ncols;
        for (int c = 0; c < ncols; c++)
            fprintf(f.fp, c ? ",%.17g" : "%.17g", row[c]);
        fputc('\n', f.fp);
    }
    if (ferror(f.fp)) {
        int e = errno;
        ap_atomic_abort(&f);
        return ap_error(AP_EIO, "file %s: write failed: %s", path, strerror(e));
    }
    return ap_atomic_commit(&f);
}
