/* check.h — the tiny assertion kit of the C unit tests. Each test is a function; main runs
 * them with RUN() and returns non-zero if any check failed. Prints "N passed, N failed".
 * CHECK_NEAR compares to an absolute tolerance (exact arithmetic, closed forms of O(1) values);
 * CHECK_CLOSE to a relative-plus-ULP one (results through BLAS); tests/unit/test_check.c tests
 * both. */
#ifndef APICAL_TEST_CHECK_H
#define APICAL_TEST_CHECK_H

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_failed_ = 0, check_passed_ = 0, check_test_failed_ = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);               \
            check_test_failed_ = 1;                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, rc_,         \
                    ap_last_error());                                                              \
            check_test_failed_ = 1;                                                                \
        }                                                                                          \
    } while (0)

/* expr must fail with `code` and its message must contain `needle`. */
#define CHECK_FAILS(expr, code, needle)                                                            \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != (code)) {                                                                       \
            fprintf(stderr, "%s:%d: %s returned %d, expected %d (%s)\n", __FILE__, __LINE__,       \
                    #expr, rc_, (int)(code), ap_last_error());                                     \
            check_test_failed_ = 1;                                                                \
        } else if (!strstr(ap_last_error(), (needle))) {                                           \
            fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__,            \
                    ap_last_error(), (needle));                                                    \
            check_test_failed_ = 1;                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (a), b_ = (b), t_ = (tol);                                                     \
        if (!(fabs(a_ - b_) <= t_)) {                                                              \
            fprintf(stderr, "%s:%d: |%s - %s| = |%.17g - %.17g| = %.3g > %.3g\n", __FILE__,        \
                    __LINE__, #a, #b, a_, b_, fabs(a_ - b_), t_);                                  \
            check_test_failed_ = 1;                                                                \
        }                                                                                          \
    } while (0)

/* The spacing of doubles at |x|: the gap from |x| to the next double away from zero. Zero and
 * the subnormals share one spacing, 2^-1074 (the smallest subnormal); from DBL_MIN up it is
 * 2^(e-53) for |x| in [2^(e-1), 2^e). Defined for finite x. */
static inline double check_ulp_(double x) {
    x = fabs(x);
    if (x < DBL_MIN) return ldexp(1.0, -1074);
    int e;
    (void)frexp(x, &e);
    return ldexp(1.0, e - 53);
}

/* 1 when a and b agree to a relative tolerance `rel` or to `ulps` units in the last place, both
 * measured at the magnitude m = max(|a|, |b|, |scale|):
 *     |a - b| <= max(rel * m, ulps * ulp(m)).
 * Equal values pass (also +0 against -0 and an infinity against itself); a NaN never passes, nor
 * an infinity against anything but itself. Near zero the ULP term is the floor: 0 against the
 * smallest subnormal passes with ulps >= 1, 0 against 1e-300 fails at any sensible ulps.
 * `scale` (0: none) is for sums that cancel: a BLAS sum of terms t_i is off by at most about
 * k * DBL_EPSILON/2 * sum |t_i|, which can be far more than its result's own ulps; pass
 * sum |t_i| (or a norm of the whole result) as the scale. */
static inline int check_close_(double a, double b, double scale, double rel, double ulps) {
    if (a == b) return 1;
    if (!isfinite(a) || !isfinite(b)) return 0;
    const double m = fmax(fmax(fabs(a), fabs(b)), fabs(scale));
    return fabs(a - b) <= fmax(rel * m, ulps * check_ulp_(m));
}

#define CHECK_CLOSE_REPORT_(a, b, sa, sb, scale, rel, ulps)                                        \
    do {                                                                                           \
        double m_ = fmax(fmax(fabs(a), fabs(b)), fabs(scale));                                     \
        fprintf(stderr,                                                                            \
                "%s:%d: %s !~ %s: %.17g vs %.17g differ by %.3g (%.3g relative to %.3g, %.3g "     \
                "ulps) > rel %.3g or %.3g ulps\n",                                                 \
                __FILE__, __LINE__, sa, sb, a, b, fabs(a - b), m_ > 0 ? fabs(a - b) / m_ : 0.0,    \
                m_, isfinite(m_) ? fabs(a - b) / check_ulp_(m_) : INFINITY, rel, ulps);            \
        check_test_failed_ = 1;                                                                    \
    } while (0)

/* For results that go through BLAS (or any other change of summation order) compared with a
 * hand loop: the kernel family OpenBLAS picks (and the thread count) changes the rounding, so
 * the tolerance scales with the values. Write tolerances in DBL_EPSILON (2^-52) and say where
 * the factor comes from. */
#define CHECK_CLOSE(a, b, rel, ulps) CHECK_CLOSE_SCALED(a, b, 0.0, rel, ulps)

/* CHECK_CLOSE measured at max(|a|, |b|, |scale|): scale is the size of the summed terms. */
#define CHECK_CLOSE_SCALED(a, b, scale, rel, ulps)                                                 \
    do {                                                                                           \
        double a_ = (a), b_ = (b), s_ = (scale), r_ = (rel), u_ = (ulps);                          \
        if (!check_close_(a_, b_, s_, r_, u_)) CHECK_CLOSE_REPORT_(a_, b_, #a, #b, s_, r_, u_);    \
    } while (0)

#define RUN(test)                                                                                  \
    do {                                                                                           \
        check_test_failed_ = 0;                                                                    \
        test();                                                                                    \
        if (check_test_failed_) {                                                                  \
            check_failed_++;                                                                       \
            fprintf(stderr, "FAIL %s\n", #test);                                                   \
        } else {                                                                                   \
            check_passed_++;                                                                       \
            printf("ok   %s\n", #test);                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_DONE()                                                                               \
    (printf("%d passed, %d failed\n", check_passed_, check_failed_), check_failed_ ? 1 : 0)

#endif
