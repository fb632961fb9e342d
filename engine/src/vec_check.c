/* vec_check.c — vector helpers of the solvers: the largest magnitude (settling, the stability
 * guard) and the first non-finite entry (finiteness checks after each step and evaluation). */
#include <math.h>
#include <string.h>

#include "sim_impl.h"

double apx_max_abs(const double *v, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(v[i]);
        m = a > m ? a : m;
    }
    return m;
}

/* 1 when every v[i] is finite: the sum of v[i] * 0 (0 when finite, NaN otherwise) in two
 * vectors of four partial sums, so that it runs at a few values per cycle (the verdict does
 * not depend on the order of the sum). */
typedef double v4d __attribute__((vector_size(32)));
__attribute__((target_clones("avx2", "default"))) static int all_finite(const double *v, size_t n) {
    v4d a0 = {0, 0, 0, 0}, a1 = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4d x0, x1;
        memcpy(&x0, v + i, sizeof x0);
        memcpy(&x1, v + i + 4, sizeof x1);
        a0 += x0 * 0.0;
        a1 += x1 * 0.0;
    }
    const v4d a = a0 + a1;
    double acc = (a[0] + a[1]) + (a[2] + a[3]);
    for (; i < n; i++)
        acc += v[i] * 0.0;
    return acc == 0.0;
}

long apx_first_nonfinite(const double *v, size_t n) {
    if (all_finite(v, n)) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return (long)i;
    return -1;
}
