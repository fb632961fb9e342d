/* apical/npy.h — NumPy .npy files: reading versions 1.0/2.0/3.0 (numeric dtypes, converted to
 * double) and writing float64 C-order version 1.0 files atomically. See docs/file-formats.md. */
#ifndef APICAL_NPY_H
#define APICAL_NPY_H

#include <stddef.h>

#include "apical/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_ARRAY_MAX_DIMS 8

/* A dense C-order (row-major) array of doubles. ndim 0 is a scalar (size 1). shape[i] may be 0,
 * then size is 0; data is non-NULL after a successful read either way. */
typedef struct ap_array {
    double *data;
    int ndim;
    size_t shape[AP_ARRAY_MAX_DIMS];
    size_t size; /* product of shape[0..ndim-1] */
} ap_array;

/* Frees a->data and zeroes *a. Safe on a zeroed array and safe to call twice. */
AP_API void ap_array_free(ap_array *a);

/* Reads the .npy file `path` into *out (which the caller later frees with ap_array_free).
 * Accepted dtypes: '<f8' '<f4' '<i8' '<i4' '<i2' '|i1' '<u8' '<u4' '<u2' '|u1' '|b1', all
 * converted to double (64-bit integers beyond 2^53 are rounded). Only C order; at most
 * AP_ARRAY_MAX_DIMS dimensions. Errors (*out is then zeroed, nothing allocated):
 *   AP_EIO      the file cannot be opened or read (strerror in the message);
 *   AP_EFORMAT  bad magic or version, malformed header dictionary (message gives the byte
 *               offset and what was found), unsupported or big-endian dtype, fortran_order
 *               True, data shorter than the header says ("expected N bytes of data after the
 *               header, got M") or trailing bytes after the data;
 *   AP_ENOMEM   out of memory. */
AP_API int ap_npy_read(const char *path, ap_array *out);

/* Writes data (C order, product of shape[0..ndim-1] doubles; ndim 0 = one scalar) as a
 * version 1.0 '<f8' .npy file, header padded with spaces and '\n' so the data starts at a
 * multiple of 64 bytes — byte for byte what numpy.save writes for a float64 C-order array.
 * Written through ap_atomic_open: on error (AP_EINVAL for ndim outside 0..8, NULL shape or
 * data, size overflow; AP_EIO) `path` is left as it was and no temporary file remains. */
AP_API int ap_npy_write(const char *path, const double *data, int ndim, const size_t *shape);

#ifdef __cplusplus
}
#endif
#endif
