/* test_activation.c — the vectorised tanh against the C library's, and its special values. */
#include <stdint.h>
#include <stdlib.h>

#include "apical/error.h"
#include "apical/registry.h"
#include "check.h"

static const ap_activation *act;

static double ulps(double got, double want) {
    if (got == want) return 0;
    double a = fabs(want);
    double ulp = nextafter(a, INFINITY) - a;
    return fabs(got - want) / ulp;
}

/* max error in ulp over n points spread over [lo, hi] (odd n, so lengths not a multiple of 4
 * exercise the tail) */
static double max_ulps(double lo, double hi, size_t n) {
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), worst = 0;
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = lo + (hi - lo) * ((double)(s >> 11) / 9007199254740992.0);
    }
    act->f(n, x, y);
    for (size_t i = 0; i < n; i++) {
        double u = ulps(y[i], tanh(x[i]));
        if (u > worst) worst = u;
    }
    free(x);
    free(y);
    return worst;
}

static void test_tanh_accuracy(void) {
    CHECK(max_ulps(-1e-8, 1e-8, 10001) <= 4);
    CHECK(max_ulps(-0.5, 0.5, 100001) <= 4);
    CHECK(max_ulps(-5, 5, 100001) <= 4);
    CHECK(max_ulps(-30, 30, 100001) <= 4);
}

static void test_tanh_special(void) {
    double x[7] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-310, 19.5}, y[7];
    act->f(7, x, y);
    CHECK(y[0] == 0.0 && !signbit(y[0]));
    CHECK(y[1] == 0.0 && signbit(y[1]));
    CHECK(y[2] == 1.0 && y[3] == -1.0);
    CHECK(isnan(y[4]));
    CHECK_NEAR(y[5], 1e-310, 1e-320);
    CHECK(y[6] == tanh(19.5));
    /* derivative 1 - tanh^2 */
    double d[3], xd[3] = {0.3, -2.0, 0.0};
    act->df(3, xd, d);
    for (int i = 0; i < 3; i++)
        CHECK_NEAR(d[i], 1 - tanh(xd[i]) * tanh(xd[i]), 1e-15);
    /* in place */
    double z[5] = {0.1, 0.2, 0.3, 0.4, 0.5};
    act->f(5, z, z);
    CHECK(ulps(z[4], tanh(0.5)) <= 4);
}

int main(void) {
    ap_registry *r;
    if (ap_registry_new(&r)) return 1;
    act = ap_registry_activation(r, "tanh");
    if (!act) return 1;
    RUN(test_tanh_accuracy);
    RUN(test_tanh_special);
    ap_registry_free(&r);
    return CHECK_DONE();
}
