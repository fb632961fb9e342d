/* builtin_kernels.c — the engine's one built-in kernel, "axpy" (y += a x), the smallest example
 * of a kernel: named arguments read through the accessors of registry.h, outputs written into
 * an array the caller allocated. Plugins register theirs the same way (docs/plugin-api.md). */
#include <stddef.h>

#include "apical/error.h"
#include "builtin.h"

/* axpy { a = 1, x = X, y = Y }: y += a x over two arrays of the same shape (any number of
 * dimensions). x and y may be the same array. */
static int axpy_call(const ap_kernel_args *args) {
    static const char *const known[] = {"a", "x", "y"};
    int rc = ap_args_check(args, "axpy", known, 3);
    if (rc) return rc;
    double a = 1.0;
    if ((rc = ap_arg_number(args, "axpy", "a", 0, &a))) return rc;
    /* y first, with any number of dimensions; then x must have exactly y's shape */
    double *y, *x;
    size_t shape[4] = {0};
    if ((rc = ap_arg_array(args, "axpy", "y", 1, -1, NULL, &y, shape))) return rc;
    int ndim = 0; /* the accessor has found y, so it is there: read its ndim */
    for (int i = 0; i < args->n; i++)
        if (args->args[i].name && args->args[i].name[0] == 'y' && !args->args[i].name[1])
            ndim = args->args[i].ndim;
    if ((rc = ap_arg_array(args, "axpy", "x", 1, ndim, shape, &x, NULL))) return rc;
    size_t n = 1;
    for (int k = 0; k < ndim; k++)
        n *= shape[k];
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
    return AP_OK;
}

static const ap_kernel axpy_kernel = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_kernel),
    .name = "axpy",
    .doc = "y += a x over two arrays of the same shape (a defaults to 1)",
    .usage = "a (number, default 1), x[...], y[...] (updated in place)",
    .call = axpy_call,
};

int apx_builtin_kernels_register(ap_registry *r) {
    return ap_registry_add_kernel(r, &axpy_kernel, "engine");
}
