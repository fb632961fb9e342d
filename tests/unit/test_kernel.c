/* test_kernel.c — kernels: registration and look-up of the kind, every path of the argument
 * accessors (present, absent and optional, absent and required, wrong kind, wrong shape,
 * unknown names), and the built-in "axpy". */
#include <string.h>

#include "apical/error.h"
#include "apical/registry.h"
#include "check.h"

static int noop_call(const ap_kernel_args *a) {
    (void)a;
    return 0;
}

static const ap_kernel good = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_kernel),
    .name = "test.noop",
    .doc = "does nothing",
    .usage = "",
    .call = noop_call,
};

static int count_kernels(void *ud, const char *kind, const char *name, const char *owner,
                         const char *doc) {
    (void)doc;
    if (strcmp(kind, "kernel") == 0) {
        int *n = ud;
        (*n)++;
        if (strcmp(name, "test.noop") == 0) CHECK(strcmp(owner, "tester") == 0);
        if (strcmp(name, "axpy") == 0) CHECK(strcmp(owner, "engine") == 0);
    }
    return 0;
}

static void test_registration(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    const ap_kernel *axpy = ap_registry_kernel(r, "axpy");
    CHECK(axpy && axpy->call && strstr(axpy->doc, "y += a x"));
    CHECK_OK(ap_registry_add_kernel(r, &good, "tester"));
    CHECK(ap_registry_kernel(r, "test.noop") == &good);
    CHECK_FAILS(ap_registry_add_kernel(r, &good, "again"), AP_EDUP,
                "kernel \"test.noop\" (from again) is already registered (by tester)");
    CHECK(ap_registry_kernel(r, "nope") == NULL);
    CHECK(strstr(ap_last_error(), "unknown kernel \"nope\" (known: axpy, test.noop)"));

    ap_kernel bad = good;
    bad.name = "test.bad";
    bad.call = NULL;
    CHECK_FAILS(ap_registry_add_kernel(r, &bad, NULL), AP_EINVAL,
                "kernel \"test.bad\": call is NULL");
    bad = good;
    bad.abi_version = (AP_ABI_MAJOR + 1) << 16;
    CHECK_FAILS(ap_registry_add_kernel(r, &bad, NULL), AP_EABI, "kernel \"test.noop\": descriptor");
    bad = good;
    bad.struct_size = 8;
    CHECK_FAILS(ap_registry_add_kernel(r, &bad, NULL), AP_EABI, "struct_size 8");
    bad = good;
    bad.name = "";
    CHECK_FAILS(ap_registry_add_kernel(r, &bad, NULL), AP_EINVAL,
                "kernel descriptor with an empty");
    CHECK_FAILS(ap_registry_add_kernel(r, NULL, NULL), AP_EINVAL, "descriptor is NULL");
    /* a descriptor from a newer minor version (larger) is accepted */
    static struct {
        ap_kernel k;
        double extra;
    } newer;
    newer.k = good;
    newer.k.name = "test.newer";
    newer.k.struct_size = sizeof newer;
    CHECK_OK(ap_registry_add_kernel(r, &newer.k, NULL));

    int n = 0;
    ap_registry_each(r, count_kernels, &n);
    CHECK(n == 3);
    ap_registry_close(r);
    bad = good;
    bad.name = "test.late";
    CHECK_FAILS(ap_registry_add_kernel(r, &bad, NULL), AP_ESTATE, "the registry is closed");
    ap_registry_free(&r);
}

/* ---- the accessors ------------------------------------------------------------------------- */

static double xdata[6] = {1, 2, 3, 4, 5, 6};
static int model_object, sim_object;

static ap_arg make_array(const char *name, double *data, int ndim, size_t s0, size_t s1) {
    ap_arg a = {0};
    a.name = name;
    a.kind = AP_ARG_ARRAY;
    a.data = data;
    a.ndim = ndim;
    a.shape[0] = s0;
    a.shape[1] = s1;
    return a;
}

static void test_number_string(void) {
    ap_arg args[3] = {{.name = "a", .kind = AP_ARG_NUMBER, .number = 2.5},
                      {.name = "mode", .kind = AP_ARG_STRING, .string = "fast"},
                      make_array("x", xdata, 2, 2, 3)};
    ap_kernel_args ka = {3, args};
    double v = -1;
    CHECK_OK(ap_arg_number(&ka, "k.t", "a", 1, &v));
    CHECK(v == 2.5);
    v = -1;
    CHECK_OK(ap_arg_number(&ka, "k.t", "b", 0, &v)); /* optional and absent: unchanged */
    CHECK(v == -1);
    CHECK_FAILS(ap_arg_number(&ka, "k.t", "b", 1, &v), AP_EINVAL, "kernel k.t: missing argument b");
    CHECK_FAILS(ap_arg_number(&ka, "k.t", "x", 1, &v), AP_EINVAL,
                "kernel k.t: argument x must be a number, got an array");
    CHECK_FAILS(ap_arg_number(&ka, "k.t", "mode", 0, &v), AP_EINVAL,
                "argument mode must be a number, got a string");
    const char *s = "unchanged";
    CHECK_OK(ap_arg_string(&ka, "k.t", "mode", 1, &s));
    CHECK(strcmp(s, "fast") == 0);
    s = "unchanged";
    CHECK_OK(ap_arg_string(&ka, "k.t", "other", 0, &s));
    CHECK(strcmp(s, "unchanged") == 0);
    CHECK_FAILS(ap_arg_string(&ka, "k.t", "other", 1, &s), AP_EINVAL, "missing argument other");
    CHECK_FAILS(ap_arg_string(&ka, "k.t", "a", 1, &s), AP_EINVAL,
                "argument a must be a string, got a number");
    /* no arguments at all */
    ap_kernel_args none = {0, NULL};
    CHECK_FAILS(ap_arg_number(&none, "k.t", "a", 1, &v), AP_EINVAL, "missing argument a");
    CHECK_OK(ap_arg_number(NULL, "k.t", "a", 0, &v));
}

static void test_array(void) {
    ap_arg args[2] = {make_array("x", xdata, 2, 2, 3),
                      {.name = "a", .kind = AP_ARG_NUMBER, .number = 1}};
    ap_kernel_args ka = {2, args};
    double *d = NULL;
    size_t got[4] = {0};
    size_t want[2] = {2, 3};
    CHECK_OK(ap_arg_array(&ka, "dfc.forward", "x", 1, 2, want, &d, got));
    CHECK(d == xdata && got[0] == 2 && got[1] == 3);
    size_t rows_free[2] = {0, 3}; /* 0: any size */
    CHECK_OK(ap_arg_array(&ka, "dfc.forward", "x", 1, 2, rows_free, &d, NULL));
    CHECK_OK(ap_arg_array(&ka, "dfc.forward", "x", 1, 2, NULL, &d, NULL)); /* any shape */
    CHECK_OK(ap_arg_array(&ka, "dfc.forward", "x", 1, -1, NULL, &d, got)); /* any ndim */
    size_t wrong[2] = {2, 784};
    CHECK_FAILS(ap_arg_array(&ka, "dfc.forward", "x", 1, 2, wrong, &d, NULL), AP_ESIZE,
                "kernel dfc.forward: x has shape [2, 3], expected [2, 784]");
    size_t wild[2] = {0, 784};
    CHECK_FAILS(ap_arg_array(&ka, "dfc.forward", "x", 1, 2, wild, &d, NULL), AP_ESIZE,
                "x has shape [2, 3], expected [*, 784]");
    size_t one[1] = {6};
    CHECK_FAILS(ap_arg_array(&ka, "dfc.forward", "x", 1, 1, one, &d, NULL), AP_ESIZE,
                "x has shape [2, 3], expected [6]");
    CHECK_FAILS(ap_arg_array(&ka, "dfc.forward", "x", 1, 3, NULL, &d, NULL), AP_ESIZE,
                "x has shape [2, 3], expected [*, *, *]");
    CHECK_FAILS(ap_arg_array(&ka, "dfc.forward", "a", 1, 2, NULL, &d, NULL), AP_EINVAL,
                "kernel dfc.forward: argument a must be an array, got a number");
    CHECK_FAILS(ap_arg_array(&ka, "dfc.forward", "out", 1, 2, NULL, &d, NULL), AP_EINVAL,
                "kernel dfc.forward: missing argument out");
    d = xdata + 1;
    CHECK_OK(ap_arg_array(&ka, "dfc.forward", "out", 0, 2, NULL, &d, NULL));
    CHECK(d == xdata + 1); /* optional and absent: unchanged */
    CHECK_FAILS(ap_arg_array(&ka, "dfc.forward", "x", 1, 5, NULL, &d, NULL), AP_EINVAL,
                "ndim = 5, arrays have at most 4");
    /* an array argument without data */
    ap_arg nodata = make_array("x", NULL, 1, 3, 0);
    ap_kernel_args kn = {1, &nodata};
    CHECK_FAILS(ap_arg_array(&kn, "k", "x", 1, 1, NULL, &d, NULL), AP_EINVAL, "has no data");
    /* a scalar (0-dimensional) array */
    ap_arg scalar = make_array("s", xdata, 0, 0, 0);
    ap_kernel_args ks = {1, &scalar};
    CHECK_OK(ap_arg_array(&ks, "k", "s", 1, 0, NULL, &d, NULL));
    CHECK(d == xdata);
}

static void test_object(void) {
    ap_arg args[3] = {{.name = "model", .kind = AP_ARG_MODEL, .object = &model_object},
                      {.name = "sim", .kind = AP_ARG_SIM, .object = &sim_object},
                      {.name = "opt", .kind = AP_ARG_OPTIM, .object = NULL}};
    ap_kernel_args ka = {3, args};
    void *p = NULL;
    CHECK_OK(ap_arg_object(&ka, "k", "model", AP_ARG_MODEL, 1, &p));
    CHECK(p == &model_object);
    CHECK_OK(ap_arg_object(&ka, "k", "sim", AP_ARG_SIM, 1, &p));
    CHECK(p == &sim_object);
    CHECK_FAILS(ap_arg_object(&ka, "k", "sim", AP_ARG_MODEL, 1, &p), AP_EINVAL,
                "kernel k: argument sim must be a model, got a simulation");
    CHECK_FAILS(ap_arg_object(&ka, "k", "model", AP_ARG_OPTIM, 1, &p), AP_EINVAL,
                "argument model must be an optimiser, got a model");
    CHECK_FAILS(ap_arg_object(&ka, "k", "opt", AP_ARG_OPTIM, 1, &p), AP_EINVAL, "NULL");
    CHECK_FAILS(ap_arg_object(&ka, "k", "other", AP_ARG_SIM, 1, &p), AP_EINVAL,
                "kernel k: missing argument other");
    p = &p;
    CHECK_OK(ap_arg_object(&ka, "k", "other", AP_ARG_SIM, 0, &p));
    CHECK(p == &p);
    CHECK_FAILS(ap_arg_object(&ka, "k", "model", AP_ARG_NUMBER, 1, &p), AP_EINVAL,
                "ap_arg_object takes");
}

static void test_check(void) {
    ap_arg args[3] = {{.name = "model", .kind = AP_ARG_MODEL, .object = &model_object},
                      make_array("x", xdata, 2, 2, 3),
                      make_array("xx", xdata, 2, 2, 3)};
    static const char *const known[] = {"model", "x", "out"};
    ap_kernel_args ka = {2, args};
    CHECK_OK(ap_args_check(&ka, "dfc.forward", known, 3));
    ka.n = 3;
    CHECK_FAILS(ap_args_check(&ka, "dfc.forward", known, 3), AP_EINVAL,
                "kernel dfc.forward: unknown argument \"xx\" (arguments: model, x, out)");
    CHECK_FAILS(ap_args_check(&ka, "k", NULL, 0), AP_EINVAL,
                "unknown argument \"model\" (arguments: none)");
    args[2].name = "x";
    static const char *const known2[] = {"model", "x", "xx"};
    CHECK_FAILS(ap_args_check(&ka, "k", known2, 3), AP_EINVAL, "argument x given twice");
    args[2].name = NULL;
    CHECK_FAILS(ap_args_check(&ka, "k", known2, 3), AP_EINVAL, "argument 3 has no name");
    CHECK_OK(ap_args_check(NULL, "k", known, 3));
}

static void test_axpy(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    const ap_kernel *k = ap_registry_kernel(r, "axpy");
    CHECK(k != NULL);
    double x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {10, 20, 30, 40, 50, 60};
    ap_arg args[3] = {{.name = "a", .kind = AP_ARG_NUMBER, .number = -2},
                      make_array("x", x, 2, 2, 3),
                      make_array("y", y, 2, 2, 3)};
    ap_kernel_args ka = {3, args};
    CHECK_OK(k->call(&ka));
    for (int i = 0; i < 6; i++)
        CHECK(y[i] == 10.0 * (i + 1) - 2.0 * (i + 1));
    ka.args = args + 1; /* a defaults to 1 */
    ka.n = 2;
    CHECK_OK(k->call(&ka));
    for (int i = 0; i < 6; i++)
        CHECK(y[i] == 9.0 * (i + 1));
    /* shapes must match; y is checked first and decides */
    args[1] = make_array("x", x, 2, 3, 2);
    ka.args = args;
    ka.n = 3;
    CHECK_FAILS(k->call(&ka), AP_ESIZE, "kernel axpy: x has shape [3, 2], expected [2, 3]");
    args[1] = make_array("x", x, 1, 6, 0);
    CHECK_FAILS(k->call(&ka), AP_ESIZE, "kernel axpy: x has shape [6], expected [2, 3]");
    args[1] = make_array("z", x, 2, 2, 3);
    CHECK_FAILS(k->call(&ka), AP_EINVAL,
                "kernel axpy: unknown argument \"z\" (arguments: a, x, y)");
    args[1] = make_array("x", x, 2, 2, 3);
    args[0].kind = AP_ARG_STRING;
    args[0].string = "two";
    CHECK_FAILS(k->call(&ka), AP_EINVAL, "kernel axpy: argument a must be a number, got a string");
    ka.n = 2;
    ka.args = args + 1;
    args[2].name = "w";
    CHECK_FAILS(k->call(&ka), AP_EINVAL, "unknown argument \"w\"");
    ka.n = 1;
    CHECK_FAILS(k->call(&ka), AP_EINVAL, "kernel axpy: missing argument y");
    ap_registry_free(&r);
}

int main(void) {
    RUN(test_registration);
    RUN(test_number_string);
    RUN(test_array);
    RUN(test_object);
    RUN(test_check);
    RUN(test_axpy);
    return CHECK_DONE();
}
