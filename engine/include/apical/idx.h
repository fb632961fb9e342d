/* apical/idx.h — reading IDX files (the MNIST format), raw or gzip-compressed. */
#ifndef APICAL_IDX_H
#define APICAL_IDX_H

#include <stddef.h>

#include "apical/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_IDX_MAX_DIMS 8

/* IDX element type codes (byte 2 of the file). */
enum {
    AP_IDX_U8 = 0x08,
    AP_IDX_I8 = 0x09,
    AP_IDX_I16 = 0x0B,
    AP_IDX_I32 = 0x0C,
    AP_IDX_F32 = 0x0D,
    AP_IDX_F64 = 0x0E
};

/* An IDX file's contents, converted to double, in the file's (row-major) order. */
typedef struct ap_idx {
    int type; /* AP_IDX_U8 ... AP_IDX_F64 as stored in the file */
    int ndim; /* 1..AP_IDX_MAX_DIMS */
    size_t dims[AP_IDX_MAX_DIMS];
    size_t count; /* product of dims */
    double *data;
} ap_idx;

/* Reads the IDX file `path` (raw, or gzip: zlib reads both) into *out. The header is two zero
 * bytes, the type code, the number of dimensions, then one big-endian uint32 per dimension;
 * the data (big-endian) follow and must be exactly count items. Errors (*out is then zeroed):
 *   AP_EIO      cannot open or read the file (message has strerror);
 *   AP_EFORMAT  first two bytes not zero, unknown type code, ndim outside 1..8, a zero
 *               dimension, a short header, "expected N bytes of data after the header, got
 *               M", "N trailing bytes" after the data, corrupt gzip data;
 *   AP_ENOMEM   out of memory.
 * Every message starts with "file <path>:" and gives the byte offset or dimension at fault. */
AP_API int ap_idx_read(const char *path, ap_idx *out);

/* Frees idx->data and zeroes *idx. Safe on a zeroed ap_idx and safe to call twice. */
AP_API void ap_idx_free(ap_idx *idx);

/* The type code's name ("u8", "i8", "i16", "i32", "f32", "f64"), or "unknown". */
AP_API const char *ap_idx_type_name(int type);

#ifdef __cplusplus
}
#endif
#endif
