/* initializer.c — the built-in weight initialisers: zeros, constant, normal, uniform,
 * xavier_normal, xavier_uniform, identity. Matrices are row-major rows x cols (rows = targets,
 * cols = sources). Random ones draw from GSL's MT19937 seeded with the seed, so a seed gives
 * the same weights on every machine. */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "apical/error.h"
#include "apical/registry.h"
#include "builtin.h"

/* rows, cols >= 0 and somewhere to write the rows * cols values. */
static int check_shape(const char *name, int rows, int cols, const double *w) {
    if (rows < 0 || cols < 0)
        return ap_error(AP_EINVAL, "initializer \"%s\": negative shape %d x %d", name, rows, cols);
    if ((size_t)rows * (size_t)cols > 0 && !w)
        return ap_error(AP_EINVAL, "initializer \"%s\": output matrix (%d x %d) is NULL", name,
                        rows, cols);
    return AP_OK;
}

/* The parameter values are there (an initialiser with parameters was given none). */
static int check_params_given(const char *name, const double *p) {
    if (!p) return ap_error(AP_EINVAL, "initializer \"%s\": parameter values are NULL", name);
    return AP_OK;
}

static int check_finite(const char *name, const char *param, double v) {
    if (!isfinite(v))
        return ap_error(AP_EINVAL, "initializer \"%s\": %s = %g is not finite", name, param, v);
    return AP_OK;
}

/* GSL's MT19937 keeps only the low 32 bits of its seed; folding the high half in first makes
 * every bit of a 64-bit seed count while leaving seeds below 2^32 as they are. (GSL maps seed 0
 * to its default seed 4357, so those two seeds give the same numbers.) */
static gsl_rng *rng_new(const char *name, uint64_t seed) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) {
        ap_error(AP_ENOMEM, "initializer \"%s\": cannot allocate the random number generator",
                 name);
        return NULL;
    }
    gsl_rng_set(rng, (unsigned long)(uint32_t)(seed ^ (seed >> 32)));
    return rng;
}

/* w[i] = mean + std * N(0, 1) */
static int fill_gaussian(const char *name, uint64_t seed, size_t n, double mean, double std,
                         double *w) {
    if (n == 0) return AP_OK;
    gsl_rng *rng = rng_new(name, seed);
    if (!rng) return AP_ENOMEM;
    for (size_t i = 0; i < n; i++)
        w[i] = mean + gsl_ran_gaussian_ziggurat(rng, std);
    gsl_rng_free(rng);
    return AP_OK;
}

/* w[i] = low + (high - low) * U[0, 1) */
static int fill_uniform(const char *name, uint64_t seed, size_t n, double low, double high,
                        double *w) {
    if (n == 0) return AP_OK;
    gsl_rng *rng = rng_new(name, seed);
    if (!rng) return AP_ENOMEM;
    for (size_t i = 0; i < n; i++)
        w[i] = low + (high - low) * gsl_rng_uniform(rng);
    gsl_rng_free(rng);
    return AP_OK;
}

/* ---- zeros, constant ------------------------------------------------------------------------ */
static int zeros_fill(const double *p, uint64_t seed, int rows, int cols, double *w) {
    (void)p;
    (void)seed;
    int rc = check_shape("zeros", rows, cols, w);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        w[i] = 0.0;
    return AP_OK;
}

enum { CONSTANT_VALUE, CONSTANT_NPARAMS };
static const ap_param_desc constant_params[] = {
    [CONSTANT_VALUE] = {"value", 0.0, -DBL_MAX, DBL_MAX, "the value of every weight"},
};

static int constant_fill(const double *p, uint64_t seed, int rows, int cols, double *w) {
    (void)seed;
    int rc = check_shape("constant", rows, cols, w);
    if (!rc) rc = check_params_given("constant", p);
    if (rc) return rc;
    rc = check_finite("constant", "value", p[CONSTANT_VALUE]);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        w[i] = p[CONSTANT_VALUE];
    return AP_OK;
}

/* ---- normal, uniform ------------------------------------------------------------------------ */
enum { NORMAL_MEAN, NORMAL_STD, NORMAL_NPARAMS };
static const ap_param_desc normal_params[] = {
    [NORMAL_MEAN] = {"mean", 0.0, -DBL_MAX, DBL_MAX, "mean of the weights"},
    [NORMAL_STD] = {"std", 1.0, 0.0, DBL_MAX, "standard deviation of the weights"},
};

static int normal_fill(const double *p, uint64_t seed, int rows, int cols, double *w) {
    int rc = check_shape("normal", rows, cols, w);
    if (!rc) rc = check_params_given("normal", p);
    if (rc) return rc;
    double mean = p[NORMAL_MEAN], std = p[NORMAL_STD];
    if (!rc) rc = check_finite("normal", "mean", mean);
    if (!rc) rc = check_finite("normal", "std", std);
    if (!rc && std < 0) rc = ap_error(AP_EINVAL, "initializer \"normal\": std = %g < 0", std);
    if (rc) return rc;
    return fill_gaussian("normal", seed, (size_t)rows * (size_t)cols, mean, std, w);
}

enum { UNIFORM_LOW, UNIFORM_HIGH, UNIFORM_NPARAMS };
static const ap_param_desc uniform_params[] = {
    [UNIFORM_LOW] = {"low", -1.0, -DBL_MAX, DBL_MAX, "lower bound (inclusive)"},
    [UNIFORM_HIGH] = {"high", 1.0, -DBL_MAX, DBL_MAX, "upper bound (exclusive)"},
};

static int uniform_fill(const double *p, uint64_t seed, int rows, int cols, double *w) {
    int rc = check_shape("uniform", rows, cols, w);
    if (!rc) rc = check_params_given("uniform", p);
    if (rc) return rc;
    double low = p[UNIFORM_LOW], high = p[UNIFORM_HIGH];
    if (!rc) rc = check_finite("uniform", "low", low);
    if (!rc) rc = check_finite("uniform", "high", high);
    if (!rc && !(low <= high))
        rc = ap_error(AP_EINVAL, "initializer \"uniform\": low = %g > high = %g", low, high);
    if (rc) return rc;
    return fill_uniform("uniform", seed, (size_t)rows * (size_t)cols, low, high, w);
}

/* ---- Xavier (Glorot & Bengio 2010) ---------------------------------------------------------- */
/* Both keep the weights' variance at gain^2 * 2 / (fan_in + fan_out), fan_in = cols (sources),
 * fan_out = rows (targets). */
enum { XAVIER_GAIN, XAVIER_NPARAMS };
static const ap_param_desc xavier_params[] = {
    [XAVIER_GAIN] = {"gain", 1.0, 0.0, DBL_MAX, "scale of the standard deviation"},
};

static int xavier_check(const char *name, const double *p, int rows, int cols, const double *w) {
    int rc = check_shape(name, rows, cols, w);
    if (!rc) rc = check_params_given(name, p);
    if (rc) return rc;
    rc = check_finite(name, "gain", p[XAVIER_GAIN]);
    if (!rc && p[XAVIER_GAIN] < 0)
        rc = ap_error(AP_EINVAL, "initializer \"%s\": gain = %g < 0", name, p[XAVIER_GAIN]);
    return rc;
}

static int xavier_normal_fill(const double *p, uint64_t seed, int rows, int cols, double *w) {
    int rc = xavier_check("xavier_normal", p, rows, cols, w);
    if (rc) return rc;
    size_t n = (size_t)rows * (size_t)cols;
    if (n == 0) return AP_OK;
    double std = p[XAVIER_GAIN] * sqrt(2.0 / ((double)cols + (double)rows));
    return fill_gaussian("xavier_normal", seed, n, 0.0, std, w);
}

/* U(-a, a) has variance a^2 / 3, hence a = gain * sqrt(6 / (fan_in + fan_out)). */
static int xavier_uniform_fill(const double *p, uint64_t seed, int rows, int cols, double *w) {
    int rc = xavier_check("xavier_uniform", p, rows, cols, w);
    if (rc) return rc;
    size_t n = (size_t)rows * (size_t)cols;
    if (n == 0) return AP_OK;
    double a = p[XAVIER_GAIN] * sqrt(6.0 / ((double)cols + (double)rows));
    return fill_uniform("xavier_uniform", seed, n, -a, a, w);
}

/* ---- identity ------------------------------------------------------------------------------- */
/* 1 on the main diagonal, 0 elsewhere; a rectangular matrix gets min(rows, cols) ones. */
static int identity_fill(const double *p, uint64_t seed, int rows, int cols, double *w) {
    (void)p;
    (void)seed;
    int rc = check_shape("identity", rows, cols, w);
    if (rc) return rc;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            w[(size_t)i * (size_t)cols + (size_t)j] = i == j ? 1.0 : 0.0;
    return AP_OK;
}

/* ---- the list ------------------------------------------------------------------------------- */
#define INITIALIZER(nm, np, pp, fn, text)                                                          \
    {                                                                                              \
        .abi_version = AP_ABI_VERSION, .struct_size = sizeof(ap_initializer), .name = nm,          \
        .doc = text, .n_params = np, .params = pp, .fill = fn                                      \
    }

static const ap_initializer initializers[] = {
    INITIALIZER("zeros", 0, NULL, zeros_fill, "every weight 0"),
    INITIALIZER("constant", CONSTANT_NPARAMS, constant_params, constant_fill,
                "every weight `value`"),
    INITIALIZER("normal", NORMAL_NPARAMS, normal_params, normal_fill,
                "independent normal weights N(mean, std^2)"),
    INITIALIZER("uniform", UNIFORM_NPARAMS, uniform_params, uniform_fill,
                "independent uniform weights in [low, high)"),
    INITIALIZER("xavier_normal", XAVIER_NPARAMS, xavier_params, xavier_normal_fill,
                "N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))"),
    INITIALIZER("xavier_uniform", XAVIER_NPARAMS, xavier_params, xavier_uniform_fill,
                "U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))"),
    INITIALIZER("identity", 0, NULL, identity_fill,
                "1 on the main diagonal, 0 elsewhere (rectangular allowed)"),
};

int apx_builtin_initializers_register(ap_registry *r) {
    for (size_t i = 0; i < sizeof initializers / sizeof initializers[0]; i++) {
        int rc = ap_registry_add_initializer(r, &initializers[i], "engine");
        if (rc) return rc;
    }
    return 0;
}
