/* apical/csv.h — writing tables of doubles as CSV files (header line, one row per line). */
#ifndef APICAL_CSV_H
#define APICAL_CSV_H

#include <stddef.h>

#include "apical/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes a CSV file: a header line with the ncols column names, then nrows lines of ncols
 * values from data (row-major, nrows x ncols), each printed with "%.17g" so it reads back
 * to the same double (non-finite values print as nan, inf, -inf). Lines end with '\n', fields
 * are separated by ','. A name containing ',', '"', '\r' or '\n' is quoted with '"' and
 * inner '"' doubled (RFC 4180). Written through ap_atomic_open: on error (AP_EINVAL for
 * ncols < 1, NULL colnames or a NULL name, NULL data with nrows > 0; AP_EIO) `path` is left as
 * it was and no temporary file remains. */
AP_API int ap_csv_write(const char *path, const char *const *colnames, int ncols,
                        const double *data, size_t nrows);

#ifdef __cplusplus
}
#endif
#endif
