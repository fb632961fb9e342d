/* cvode_stiffness.c — the stiffness check after long cvode-adams runs. On a stiff circuit
 * Adams (fixed-point or Newton) cannot step over the fast mode: its steps stay near the
 * stability limit h |lambda| ~ 1, thousands of them, and the local error estimates there do
 * not bound the global error (the stiff example in docs/solvers.md ends 36 x rtol off). The
 * check estimates |lambda|max at the final state (power iteration, 30 difference-quotient
 * products) and warns when the mean step was that close to it. */
#include "cvode_stiffness.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define POWER_ITERS 30

static double norm2(const double *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

/* |lambda|max of the Jacobian at y (fy = f(t, y)) by power iteration; -1 on a failure. */
static double largest_eigen(ap_sim *s, double t, const double *y, const double *fy, double *v,
                            double *yp) {
    const size_t n = s->plan.n_state;
    unsigned u = 12345u;
    for (size_t i = 0; i < n; i++) {
        u = u * 1103515245u + 12345u;
        v[i] = ((u >> 8) & 0xffff) / 32768.0 - 1.0;
    }
    double nv = norm2(v, n), rho = 0;
    const double eps = sqrt(DBL_EPSILON) * (1.0 + norm2(y, n));
    for (int it = 0; it < POWER_ITERS && nv > 0; it++) {
        for (size_t i = 0; i < n; i++)
            yp[i] = y[i] + eps * v[i] / nv;
        if (apx_sim_eval(s, t, yp, s->run.ydot)) return -1;
        for (size_t i = 0; i < n; i++)
            v[i] = (s->run.ydot[i] - fy[i]) / eps;
        nv = norm2(v, n);
        rho = nv;
    }
    return rho;
}

long apx_adams_stiffness(ap_sim *s, double t, const double *y, long steps, ap_run_stats *st) {
    const size_t n = s->plan.n_state;
    if (steps < APX_ADAMS_CHECK_STEPS || t <= 0) return 0;
    double *buf = malloc(3 * n * sizeof *buf);
    if (!buf) return -1;
    double *fy = buf, *v = buf + n, *yp = buf + 2 * n;
    double rho = -1;
    if (apx_sim_eval(s, t, y, fy) == 0) rho = largest_eigen(s, t, y, fy, v, yp);
    free(buf);
    if (apx_sim_eval(s, t, y, s->run.ydot) < 0) return -1; /* the signals back at y */
    if (rho < 0) return -1;
    const double h = t / (double)steps;
    if (h * rho > APX_ADAMS_STIFF_HRHO)
        snprintf(st->stab_warning, sizeof st->stab_warning,
                 "cvode-adams took %ld steps of %.3g on average, at the stability limit of the "
                 "fastest mode (|lambda| ~ %.3g, h |lambda| = %.2f): the circuit is stiff, and "
                 "Adams' error control is unreliable there (the result may miss rtol); use "
                 "cvode-bdf",
                 steps, h, rho, h * rho);
    return POWER_ITERS + 2;
}
