/* activation.c — the built-in activations (linear, tanh, logistic, relu, softplus, and the
 * aliases identity and sigmoid) with their derivatives. NaN in gives NaN out, so a callback
 * that checks its results sees it. */
#include <math.h>
#include <stddef.h>

#include "apical/registry.h"
#include "builtin.h"
#include "vec_tanh.h"

/* ---- linear -------------------------------------------------------------------------------- */
static void linear_f(size_t n, const double *x, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

static void linear_df(size_t n, const double *x, double *d) {
    for (size_t i = 0; i < n; i++)
        d[i] = isnan(x[i]) ? x[i] : 1.0;
}

/* ---- tanh ---------------------------------------------------------------------------------- */
static void tanh_f(size_t n, const double *x, double *y) {
    apx_vec_tanh(n, x, y);
}

static void tanh_df(size_t n, const double *x, double *d) {
    apx_vec_tanh(n, x, d);
    for (size_t i = 0; i < n; i++)
        d[i] = 1.0 - d[i] * d[i];
}

/* ---- logistic ------------------------------------------------------------------------------ */
/* 1 / (1 + e^-x) without overflow: for x < 0 use e^x / (1 + e^x), where e^x <= 1. */
static double logistic(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static void logistic_f(size_t n, const double *x, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = logistic(x[i]);
}

static void logistic_df(size_t n, const double *x, double *d) {
    for (size_t i = 0; i < n; i++) {
        double s = logistic(x[i]);
        d[i] = s * (1.0 - s);
    }
}

/* ---- relu ---------------------------------------------------------------------------------- */
/* The comparisons are written so that NaN falls through to x itself (max() would drop it). */
static void relu_f(size_t n, const double *x, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0 ? 0.0 : x[i];
}

/* f'(0) is taken as 0 (the subgradient most libraries use). */
static void relu_df(size_t n, const double *x, double *d) {
    for (size_t i = 0; i < n; i++)
        d[i] = x[i] > 0 ? 1.0 : x[i] <= 0 ? 0.0 : x[i];
}

/* ---- softplus ------------------------------------------------------------------------------ */
/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x, no loss for small. */
static void softplus_f(size_t n, const double *x, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = fmax(x[i], 0.0) + log1p(exp(-fabs(x[i])));
}

static void softplus_df(size_t n, const double *x, double *d) {
    for (size_t i = 0; i < n; i++)
        d[i] = logistic(x[i]);
}

/* ---- the list ------------------------------------------------------------------------------ */
#define ACTIVATION(nm, fn, dfn, text)                                                              \
    {                                                                                              \
        .abi_version = AP_ABI_VERSION, .struct_size = sizeof(ap_activation), .name = nm,           \
        .doc = text, .f = fn, .df = dfn                                                            \
    }

static const ap_activation activations[] = {
    ACTIVATION("linear", linear_f, linear_df, "f(x) = x"),
    ACTIVATION("identity", linear_f, linear_df, "f(x) = x (alias of linear)"),
    ACTIVATION("tanh", tanh_f, tanh_df, "f(x) = tanh(x)"),
    ACTIVATION("logistic", logistic_f, logistic_df, "f(x) = 1 / (1 + exp(-x))"),
    ACTIVATION("sigmoid", logistic_f, logistic_df, "f(x) = 1 / (1 + exp(-x)) (alias of logistic)"),
    ACTIVATION("relu", relu_f, relu_df, "f(x) = max(x, 0); f'(0) = 0"),
    ACTIVATION("softplus", softplus_f, softplus_df, "f(x) = log(1 + exp(x)), computed stably"),
};

int apx_builtin_activations_register(ap_registry *r) {
    for (size_t i = 0; i < sizeof activations / sizeof activations[0]; i++) {
        int rc = ap_registry_add_activation(r, &activations[i], "engine");
        if (rc) return rc;
    }
    return 0;
}
