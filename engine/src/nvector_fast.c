/* nvector_fast.c — vectorisable reductions and linear sums for SUNDIALS serial vectors. */
#include "nvector_fast.h"

#include <math.h>
#include <nvector/nvector_serial.h>

#include "apical/comm.h"
#include <nvector/nvector_serial.h>
#include <string.h>

typedef double v4d __attribute__((vector_size(32)));

/* Vector loads through memcpy (no alignment assumed); macros, so that no vector type crosses
 * a call boundary (whose ABI would differ between the AVX2 clone and the default one). */
#define LOAD(v, p) memcpy(&(v), (p), sizeof(v))
/* sixteen partial sums, reduced in a fixed order */
#define HSUM(a, b, c, d, out)                                                                      \
    do {                                                                                           \
        v4d s_ = ((a) + (b)) + ((c) + (d));                                                        \
        (out) = (s_[0] + s_[1]) + (s_[2] + s_[3]);                                                 \
    } while (0)

__attribute__((target_clones("avx2", "default"))) static double dot(const double *x,
                                                                    const double *y, size_t n) {
    v4d a = {0, 0, 0, 0}, b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v4d x0, x1, x2, x3, y0, y1, y2, y3;
        LOAD(x0, x + i), LOAD(x1, x + i + 4), LOAD(x2, x + i + 8), LOAD(x3, x + i + 12);
        LOAD(y0, y + i), LOAD(y1, y + i + 4), LOAD(y2, y + i + 8), LOAD(y3, y + i + 12);
        a += x0 * y0;
        b += x1 * y1;
        c += x2 * y2;
        d += x3 * y3;
    }
    double s;
    HSUM(a, b, c, d, s);
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

__attribute__((target_clones("avx2", "default"))) static double wsqr(const double *x,
                                                                     const double *w, size_t n) {
    v4d a = {0, 0, 0, 0}, b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v4d x0, x1, x2, x3, w0, w1, w2, w3;
        LOAD(x0, x + i), LOAD(x1, x + i + 4), LOAD(x2, x + i + 8), LOAD(x3, x + i + 12);
        LOAD(w0, w + i), LOAD(w1, w + i + 4), LOAD(w2, w + i + 8), LOAD(w3, w + i + 12);
        x0 *= w0, x1 *= w1, x2 *= w2, x3 *= w3;
        a += x0 * x0;
        b += x1 * x1;
        c += x2 * x2;
        d += x3 * x3;
    }
    double s;
    HSUM(a, b, c, d, s);
    for (; i < n; i++)
        s += (x[i] * w[i]) * (x[i] * w[i]);
    return s;
}

static sunrealtype fast_dotprod(N_Vector x, N_Vector y) {
    return dot(NV_DATA_S(x), NV_DATA_S(y), (size_t)NV_LENGTH_S(x));
}

static sunrealtype fast_wsqrsum(N_Vector x, N_Vector w) {
    return wsqr(NV_DATA_S(x), NV_DATA_S(w), (size_t)NV_LENGTH_S(x));
}

static sunrealtype fast_wrmsnorm(N_Vector x, N_Vector w) {
    sunindextype n = NV_LENGTH_S(x);
    return sqrt(wsqr(NV_DATA_S(x), NV_DATA_S(w), (size_t)n) / (double)n);
}

static sunrealtype fast_maxnorm(N_Vector x) {
    const double *p = NV_DATA_S(x);
    size_t n = (size_t)NV_LENGTH_S(x);
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(p[i]);
        m = a > m ? a : m;
    }
    return m;
}

__attribute__((target_clones("avx2", "default"))) static void
lsum(double a, const double *x, double b, const double *y, double *z, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4d xv, yv;
        LOAD(xv, x + i), LOAD(yv, y + i);
        v4d r = a * xv + b * yv;
        memcpy(z + i, &r, sizeof r);
    }
    for (; i < n; i++)
        z[i] = a * x[i] + b * y[i];
}

static void fast_linearsum(sunrealtype a, N_Vector x, sunrealtype b, N_Vector y, N_Vector z) {
    lsum(a, NV_DATA_S(x), b, NV_DATA_S(y), NV_DATA_S(z), (size_t)NV_LENGTH_S(x));
}

/* z = a x + y over n values (z may be y): the serial library's arithmetic, in vectors */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
axpy_to(double a, const double *x, const double *y, double *z, size_t n) {
    for (size_t i = 0; i < n; i++)
        z[i] = a * x[i] + y[i];
}

/* z = c z (in place) */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
scale_in(double c, double *z, size_t n) {
    for (size_t i = 0; i < n; i++)
        z[i] *= c;
}

/* z = c x */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
scale_to(double c, const double *x, double *z, size_t n) {
    for (size_t i = 0; i < n; i++)
        z[i] = c * x[i];
}

/* The fused operations go through the vectors a block at a time, so that the block of the
 * vector they share stays in cache while every other vector passes; each value gets the same
 * operations in the same order as in the serial library. */
enum { BLOCK = 512 };

/* Z[i] = a[i] x + Y[i], i < nvec (Z may be Y): the Nordsieck history's corrections */
static int fast_scaleaddmulti(int nvec, sunrealtype *a, N_Vector x, N_Vector *Y, N_Vector *Z) {
    if (nvec < 1) return -1;
    const size_t n = (size_t)NV_LENGTH_S(x);
    const double *xd = NV_DATA_S(x);
    for (size_t s = 0; s < n; s += BLOCK) {
        const size_t m = n - s < BLOCK ? n - s : BLOCK;
        for (int i = 0; i < nvec; i++)
            axpy_to(a[i], xd + s, NV_DATA_S(Y[i]) + s, NV_DATA_S(Z[i]) + s, m);
    }
    return 0;
}

/* z = sum_i c[i] X[i] (z may be X[0]): c[0] X[0] first, then each further term added in turn */
static int fast_linearcombination(int nvec, sunrealtype *c, N_Vector *X, N_Vector z) {
    if (nvec < 1) return -1;
    const size_t n = (size_t)NV_LENGTH_S(z);
    double *zd = NV_DATA_S(z);
    const int in_place = X[0] == z;
    for (size_t s = 0; s < n; s += BLOCK) {
        const size_t m = n - s < BLOCK ? n - s : BLOCK;
        if (!in_place)
            scale_to(c[0], NV_DATA_S(X[0]) + s, zd + s, m);
        else if (c[0] != 1.0)
            scale_in(c[0], zd + s, m);
        for (int i = 1; i < nvec; i++)
            axpy_to(c[i], NV_DATA_S(X[i]) + s, zd + s, zd + s, m);
    }
    return 0;
}

void apx_nvector_speedup(N_Vector v) {
    v->ops->nvdotprod = fast_dotprod;
    v->ops->nvwsqrsumlocal = fast_wsqrsum;
    v->ops->nvwrmsnorm = fast_wrmsnorm;
    v->ops->nvmaxnorm = fast_maxnorm;
    v->ops->nvmaxnormlocal = fast_maxnorm;
    v->ops->nvlinearsum = fast_linearsum;
    v->ops->nvscaleaddmulti = fast_scaleaddmulti;
    v->ops->nvlinearcombination = fast_linearcombination;
}

/* ---- one vector across the MPI ranks ----------------------------------------------------------
 * Each rank's serial vector is its part of one global vector. The element-wise operations stay
 * local; every operation that reduces does its local part with the fast loops above and then
 * combines the ranks' partial results with ap_comm_reduce (in rank order: the same bits on
 * every rank, so that every rank's CVODE takes the same decisions). A failed reduction gives
 * NaN, which CVODE's tests reject. */

static double global1(double x, ap_comm_op op) {
    return ap_comm_reduce(&x, 1, op) ? NAN : x;
}

static sunrealtype global_dotprod(N_Vector x, N_Vector y) {
    return global1(fast_dotprod(x, y), AP_COMM_SUM);
}

static sunrealtype global_maxnorm(N_Vector x) {
    return global1(fast_maxnorm(x), AP_COMM_MAX);
}

/* sqrt(sum over ranks of sum (x w)^2 / global length): one message for both sums */
static sunrealtype global_wrms(double local_sum, N_Vector x) {
    double v[2] = {local_sum, (double)NV_LENGTH_S(x)};
    if (ap_comm_reduce(v, 2, AP_COMM_SUM)) return NAN;
    return sqrt(v[0] / v[1]);
}

static sunrealtype global_wrmsnorm(N_Vector x, N_Vector w) {
    return global_wrms(fast_wsqrsum(x, w), x);
}

static sunrealtype global_wrmsnormmask(N_Vector x, N_Vector w, N_Vector id) {
    return global_wrms(N_VWSqrSumMaskLocal_Serial(x, w, id), x);
}

static sunrealtype global_wl2norm(N_Vector x, N_Vector w) {
    return sqrt(global1(fast_wsqrsum(x, w), AP_COMM_SUM));
}

static sunrealtype global_l1norm(N_Vector x) {
    return global1(N_VL1Norm_Serial(x), AP_COMM_SUM);
}

static sunrealtype global_min(N_Vector x) {
    return global1(N_VMin_Serial(x), AP_COMM_MIN);
}

static sunrealtype global_minquotient(N_Vector num, N_Vector denom) {
    return global1(N_VMinQuotient_Serial(num, denom), AP_COMM_MIN);
}

static sunbooleantype global_invtest(N_Vector x, N_Vector z) {
    return global1(N_VInvTest_Serial(x, z) ? 1.0 : 0.0, AP_COMM_MIN) == 1.0;
}

static sunbooleantype global_constrmask(N_Vector c, N_Vector x, N_Vector m) {
    return global1(N_VConstrMask_Serial(c, x, m) ? 1.0 : 0.0, AP_COMM_MIN) == 1.0;
}

/* the global length: CVODE's Krylov interface converts its WRMS tolerance to a 2-norm with it */
static sunindextype global_length(N_Vector x) {
    return (sunindextype)global1((double)NV_LENGTH_S(x), AP_COMM_SUM);
}

void apx_nvector_global(N_Vector v) {
    if (ap_comm_size() == 1) return;
    struct _generic_N_Vector_Ops *o = v->ops;
    o->nvdotprod = global_dotprod;
    o->nvmaxnorm = global_maxnorm;
    o->nvwrmsnorm = global_wrmsnorm;
    o->nvwrmsnormmask = global_wrmsnormmask;
    o->nvwl2norm = global_wl2norm;
    o->nvl1norm = global_l1norm;
    o->nvmin = global_min;
    o->nvminquotient = global_minquotient;
    o->nvinvtest = global_invtest;
    o->nvconstrmask = global_constrmask;
    o->nvgetlength = global_length;
    /* the fused reductions fall back to the ones above, one vector at a time */
    o->nvdotprodmulti = NULL;
    o->nvwrmsnormvectorarray = NULL;
    o->nvwrmsnormmaskvectorarray = NULL;
    o->nvdotprodmultilocal = NULL;
    o->nvdotprodmultiallreduce = NULL;
}
