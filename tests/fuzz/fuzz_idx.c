/* fuzz_idx.c — ap_idx_read on arbitrary bytes (raw and gzip): it either fails with a message
 * or returns count = the product of the dimensions, every item readable. */
#define _GNU_SOURCE
#include <string.h>

#include "apical/error.h"
#include "apical/idx.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    fuzz_file(data, size, path, sizeof path);
    ap_idx x;
    if (ap_idx_read(path, &x) != AP_OK) {
        if (!ap_last_error()[0]) abort();
        return 0;
    }
    size_t n = 1;
    for (int i = 0; i < x.ndim; i++)
        n *= x.dims[i];
    if (n != x.count || x.ndim < 1) abort();
    volatile double sum = 0;
    for (size_t i = 0; i < x.count; i++)
        sum += x.data[i];
    (void)sum;
    ap_idx_free(&x);
    return 0;
}
