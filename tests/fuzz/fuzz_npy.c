/* fuzz_npy.c — ap_npy_read on arbitrary bytes: it either fails with a message or returns an
 * array whose size is the product of its shape and whose every element can be read. */
#define _GNU_SOURCE
#include <string.h>

#include "apical/error.h"
#include "apical/npy.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    fuzz_file(data, size, path, sizeof path);
    ap_array a;
    if (ap_npy_read(path, &a) != AP_OK) {
        if (!ap_last_error()[0]) abort(); /* a failure always says why */
        return 0;
    }
    size_t n = 1;
    for (int i = 0; i < a.ndim; i++)
        n *= a.shape[i];
    if (n != a.size) abort();
    volatile double sum = 0;
    for (size_t i = 0; i < a.size; i++)
        sum += a.data[i];
    (void)sum;
    ap_array_free(&a);
    return 0;
}
