/* kernel_args.c — calling kernels and their argument accessors (registry.h): finding a named
 * argument, checking its kind and shape, and the messages that name the kernel, the argument and
 * what was wrong ("kernel dfc.forward: x has shape [128, 10], expected [128, 784]"). */
#include <stdio.h>
#include <string.h>

#include "apical/error.h"
#include "apical/registry.h"

/* The most dimensions an ap_arg holds. */
#define ARG_MAX_DIMS ((int)(sizeof(((ap_arg *)0)->shape) / sizeof(size_t)))

static const char *kname(const char *kernel) {
    return kernel && *kernel ? kernel : "(unnamed)";
}

/* "a number", "an array", ... as messages name the kinds. */
static const char *kind_phrase(ap_arg_kind k) {
    switch (k) {
    case AP_ARG_NUMBER:
        return "a number";
    case AP_ARG_STRING:
        return "a string";
    case AP_ARG_ARRAY:
        return "an array";
    case AP_ARG_MODEL:
        return "a model";
    case AP_ARG_SIM:
        return "a simulation";
    case AP_ARG_OPTIM:
        return "an optimiser";
    }
    return "an argument of unknown kind";
}

/* The argument called name, or NULL. */
static const ap_arg *find(const ap_kernel_args *a, const char *name) {
    if (!a || !a->args || !name) return NULL;
    for (int i = 0; i < a->n; i++)
        if (a->args[i].name && strcmp(a->args[i].name, name) == 0) return &a->args[i];
    return NULL;
}

/* Finds name and checks its kind. Returns AP_OK with *arg set (NULL: absent and optional), or
 * an error. */
static int lookup(const ap_kernel_args *a, const char *kernel, const char *name, ap_arg_kind kind,
                  int required, const ap_arg **arg) {
    *arg = NULL;
    if (!name) return ap_error(AP_EINVAL, "kernel %s: argument name is NULL", kname(kernel));
    const ap_arg *g = find(a, name);
    if (!g) {
        if (required)
            return ap_error(AP_EINVAL, "kernel %s: missing argument %s", kname(kernel), name);
        return AP_OK;
    }
    if (g->kind != kind)
        return ap_error(AP_EINVAL, "kernel %s: argument %s must be %s, got %s", kname(kernel), name,
                        kind_phrase(kind), kind_phrase(g->kind));
    *arg = g;
    return AP_OK;
}

int ap_arg_number(const ap_kernel_args *a, const char *kernel, const char *name, int required,
                  double *out) {
    const ap_arg *g;
    int rc = lookup(a, kernel, name, AP_ARG_NUMBER, required, &g);
    if (rc) return rc;
    if (g && out) *out = g->number;
    return AP_OK;
}

int ap_arg_string(const ap_kernel_args *a, const char *kernel, const char *name, int required,
                  const char **out) {
    const ap_arg *g;
    int rc = lookup(a, kernel, name, AP_ARG_STRING, required, &g);
    if (rc) return rc;
    if (g && !g->string)
        return ap_error(AP_EINVAL, "kernel %s: argument %s is a NULL string", kname(kernel), name);
    if (g && out) *out = g->string;
    return AP_OK;
}

/* "[128, 784]"; a free dimension (want[k] == 0) shows as "*". */
static void shape_str(char *buf, size_t n, int ndim, const size_t *shape, int wildcards) {
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int k = 0; k < ndim && len < n; k++) {
        if (wildcards && shape[k] == 0)
            len += (size_t)snprintf(buf + len, n - len, "%s*", k ? ", " : "");
        else
            len += (size_t)snprintf(buf + len, n - len, "%s%zu", k ? ", " : "", shape[k]);
    }
    if (len < n) snprintf(buf + len, n - len, "]");
}

int ap_arg_array(const ap_kernel_args *a, const char *kernel, const char *name, int required,
                 int ndim, const size_t *shape, double **data, size_t *shape_out) {
    if (ndim > ARG_MAX_DIMS)
        return ap_error(AP_EINVAL, "kernel %s: argument %s: ndim = %d, arrays have at most %d",
                        kname(kernel), name ? name : "(null)", ndim, ARG_MAX_DIMS);
    const ap_arg *g;
    int rc = lookup(a, kernel, name, AP_ARG_ARRAY, required, &g);
    if (rc || !g) return rc;
    if (g->ndim < 0 || g->ndim > ARG_MAX_DIMS)
        return ap_error(AP_EINVAL, "kernel %s: argument %s has ndim = %d (0..%d)", kname(kernel),
                        name, g->ndim, ARG_MAX_DIMS);
    /* ndim < 0: any number of dimensions, any shape */
    int ok = ndim < 0 || g->ndim == ndim;
    for (int k = 0; ok && ndim > 0 && shape && k < ndim; k++)
        if (shape[k] != 0 && shape[k] != g->shape[k]) ok = 0;
    if (!ok) {
        char got[160], want[160];
        shape_str(got, sizeof got, g->ndim, g->shape, 0);
        if (shape) {
            shape_str(want, sizeof want, ndim, shape, 1);
        } else {
            size_t any[ARG_MAX_DIMS] = {0};
            shape_str(want, sizeof want, ndim, any, 1);
        }
        return ap_error(AP_ESIZE, "kernel %s: %s has shape %s, expected %s", kname(kernel), name,
                        got, want);
    }
    size_t count = 1;
    for (int k = 0; k < g->ndim; k++)
        count *= g->shape[k];
    if (!g->data && count > 0)
        return ap_error(AP_EINVAL, "kernel %s: argument %s has no data", kname(kernel), name);
    if (data) *data = g->data;
    if (shape_out)
        for (int k = 0; k < g->ndim; k++)
            shape_out[k] = g->shape[k];
    return AP_OK;
}

int ap_arg_object(const ap_kernel_args *a, const char *kernel, const char *name, ap_arg_kind kind,
                  int required, void **out) {
    if (kind != AP_ARG_MODEL && kind != AP_ARG_SIM && kind != AP_ARG_OPTIM)
        return ap_error(AP_EINVAL,
                        "kernel %s: argument %s: ap_arg_object takes AP_ARG_MODEL, AP_ARG_SIM or "
                        "AP_ARG_OPTIM, got %d",
                        kname(kernel), name ? name : "(null)", (int)kind);
    const ap_arg *g;
    int rc = lookup(a, kernel, name, kind, required, &g);
    if (rc || !g) return rc;
    if (!g->object)
        return ap_error(AP_EINVAL, "kernel %s: argument %s is %s without an object (NULL)",
                        kname(kernel), name, kind_phrase(kind));
    if (out) *out = g->object;
    return AP_OK;
}

int ap_args_check(const ap_kernel_args *a, const char *kernel, const char *const *known, int n) {
    if (!a || !a->args) return AP_OK;
    for (int i = 0; i < a->n; i++) {
        const char *name = a->args[i].name;
        if (!name)
            return ap_error(AP_EINVAL, "kernel %s: argument %d has no name", kname(kernel), i + 1);
        for (int j = 0; j < i; j++)
            if (a->args[j].name && strcmp(a->args[j].name, name) == 0)
                return ap_error(AP_EINVAL, "kernel %s: argument %s given twice", kname(kernel),
                                name);
        int found = 0;
        for (int k = 0; k < n && known && !found; k++)
            found = known[k] && strcmp(known[k], name) == 0;
        if (!found) {
            char list[512];
            size_t len = 0;
            list[0] = '\0';
            for (int k = 0; k < n && known && len < sizeof list; k++) {
                int w = snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "",
                                 known[k] ? known[k] : "?");
                if (w < 0) break;
                len += (size_t)w;
            }
            if (len >= sizeof list) strcpy(list + sizeof list - 4, "...");
            return ap_error(AP_EINVAL, "kernel %s: unknown argument \"%s\" (arguments: %s)",
                            kname(kernel), name, n > 0 && known ? list : "none");
        }
    }
    return AP_OK;
}

int ap_kernel_invoke(const ap_kernel *k, const ap_kernel_args *args) {
    static const ap_kernel_args none = {0, NULL};
    if (!k) return ap_error(AP_EINVAL, "ap_kernel_invoke: kernel is NULL");
    const char *name = kname(k->name);
    ap_error_clear();
    int rc = k->call(args ? args : &none);
    if (!rc) return AP_OK;
    const char *m = ap_last_error();
    if (!m || !*m) return ap_error(rc, "kernel %s failed: %s", name, ap_strerror(rc));
    if (strncmp(m, "kernel ", 7) == 0 && strncmp(m + 7, name, strlen(name)) == 0) return rc;
    return ap_error_prefix(rc, "kernel %s: ", name);
}
