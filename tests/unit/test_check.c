/* test_check.c — the test harness's own comparisons (check.h): the spacing of doubles, and
 * CHECK_CLOSE at zero, subnormals, binade edges, the largest doubles, infinities and NaN. */
#include <float.h>
#include <math.h>

#include "apical/error.h"
#include "check.h"

static void test_ulp(void) {
    CHECK(check_ulp_(1.0) == DBL_EPSILON);
    CHECK(check_ulp_(-1.0) == DBL_EPSILON);
    CHECK(check_ulp_(nextafter(1.0, 0.0)) == DBL_EPSILON / 2); /* the binade below 1 */
    CHECK(check_ulp_(1.5) == DBL_EPSILON);
    CHECK(check_ulp_(2.0) == 2 * DBL_EPSILON);
    CHECK(check_ulp_(DBL_MAX) == DBL_MAX - nextafter(DBL_MAX, 0.0));
    const double tiny = nextafter(0.0, 1.0); /* the smallest subnormal, 2^-1074 */
    CHECK(check_ulp_(0.0) == tiny);
    CHECK(check_ulp_(-0.0) == tiny);
    CHECK(check_ulp_(tiny) == tiny);
    CHECK(check_ulp_(DBL_MIN / 3) == tiny); /* subnormals are evenly spaced */
    CHECK(check_ulp_(DBL_MIN) == tiny);     /* and so are the smallest normals */
    CHECK(check_ulp_(2 * DBL_MIN) == 2 * tiny);
    /* against nextafter over a spread of magnitudes */
    for (double x = 1e-300; x < 1e300; x *= 7.3)
        CHECK(check_ulp_(x) == nextafter(x, INFINITY) - x);
}

static void test_close_relative(void) {
    CHECK(check_close_(1.0, 1.0, 0, 0, 0));
    CHECK(check_close_(1e10, 1e10 * (1 + 1e-13), 0, 1e-12, 0));
    CHECK(!check_close_(1e10, 1e10 * (1 + 1e-13), 0, 1e-14, 0));
    CHECK(check_close_(-1e-200, -1e-200 * (1 + 1e-13), 0, 1e-12, 0)); /* scale-free */
    CHECK(!check_close_(-1e-200, -1e-200 * (1 + 1e-11), 0, 1e-12, 0));
    CHECK(check_close_(1e-200 * (1 + 1e-13), 1e-200, 0, 1e-12, 0)); /* symmetric */
    /* opposite signs are never relatively close */
    CHECK(!check_close_(1e-300, -1e-300, 0, 0.5, 4));
    /* relative to the larger value: 1 and 2 are 50 % apart, not 100 % */
    CHECK(check_close_(1.0, 2.0, 0, 0.5, 0));
    CHECK(!check_close_(1.0, 2.0, 0, 0.49, 0));
}

static void test_close_ulps(void) {
    const double up = nextafter(1.0, 2.0), down = nextafter(1.0, 0.0);
    CHECK(check_close_(1.0, up, 0, 0, 1));
    CHECK(!check_close_(1.0, up, 0, 0, 0.5));
    CHECK(!check_close_(1.0, nextafter(up, 2.0), 0, 0, 1));
    CHECK(check_close_(1.0, nextafter(up, 2.0), 0, 0, 2));
    /* across the binade edge the gap below 1 is half an ulp of 1 */
    CHECK(check_close_(down, 1.0, 0, 0, 0.5));
    CHECK(check_close_(DBL_MAX, nextafter(DBL_MAX, 0.0), 0, 0, 1));
    CHECK(!check_close_(DBL_MAX, -DBL_MAX, 0, 1.0, 4)); /* the difference overflows: not close */
}

static void test_close_zero_subnormal(void) {
    const double tiny = nextafter(0.0, 1.0);
    CHECK(check_close_(0.0, -0.0, 0, 0, 0));
    CHECK(check_close_(0.0, tiny, 0, 0, 1));
    CHECK(!check_close_(0.0, tiny, 0, 0, 0));
    CHECK(check_close_(-tiny, tiny, 0, 0, 2));
    CHECK(!check_close_(0.0, 1e-300, 0, 0.1, 1e6)); /* an expected zero is not near 1e-300 */
    CHECK(!check_close_(0.0, 1e-300, 0, 0.99, 0));  /* and no relative tolerance below 1 makes it */
    CHECK(check_close_(DBL_MIN / 4, DBL_MIN / 4 + 3 * tiny, 0, 0, 3));
    CHECK(!check_close_(DBL_MIN / 4, DBL_MIN / 4 + 3 * tiny, 0, 0, 2));
    /* a relative tolerance below the subnormal spacing leaves the ULP term in charge */
    CHECK(!check_close_(3 * tiny, 4 * tiny, 0, 1e-3, 0));
    CHECK(check_close_(3 * tiny, 4 * tiny, 0, 1e-3, 1));
}

static void test_close_nonfinite(void) {
    CHECK(check_close_(INFINITY, INFINITY, 0, 0, 0));
    CHECK(check_close_(-INFINITY, -INFINITY, 0, 0, 0));
    CHECK(!check_close_(INFINITY, -INFINITY, 0, 1e300, 1e300));
    CHECK(!check_close_(INFINITY, DBL_MAX, 0, 1, 1e300));
    CHECK(!check_close_(DBL_MAX, INFINITY, 0, 1, 1e300));
    CHECK(!check_close_(NAN, NAN, 0, 1, 1));
    CHECK(!check_close_(NAN, 1.0, 0, 1e300, 1e300));
    CHECK(!check_close_(0.0, NAN, 0, 1e300, 1e300));
    CHECK(!check_close_(1.0, nextafter(1.0, 2.0), 0, NAN,
                        NAN)); /* a NaN tolerance passes nothing unequal */
}

/* A sum that cancels is measured against the size of its terms. */
static void test_close_scaled(void) {
    const double t[3] = {0.1, 0.2, -0.3}; /* 0.1 + 0.2 - 0.3 is 5.55e-17 in doubles, not 0 */
    const double sum = t[0] + t[1] + t[2], size = fabs(t[0]) + fabs(t[1]) + fabs(t[2]);
    CHECK(sum != 0);
    CHECK(!check_close_(sum, 0.0, 0, 4 * DBL_EPSILON, 4)); /* relative to itself: far off */
    CHECK(check_close_(sum, 0.0, size, 4 * DBL_EPSILON, 0));
    CHECK(check_close_(sum, 0.0, -size, 4 * DBL_EPSILON, 0)); /* the scale's sign is ignored */
    CHECK(!check_close_(sum, 0.0, size, DBL_EPSILON / 16, 0));
    CHECK(!check_close_(0.1, 0.2, size, 4 * DBL_EPSILON, 4)); /* a real error still fails */
    CHECK(!check_close_(NAN, 0.0, 1e300, 1, 1));
    CHECK(!check_close_(1.0, 1.0 + 1e-9, INFINITY, 0, 0)); /* an infinite scale with rel 0 */
    int before = check_test_failed_;
    CHECK_CLOSE_SCALED(sum, 0.0, size, 4 * DBL_EPSILON, 0);
    CHECK(check_test_failed_ == before);
}

/* The macro itself: it must mark the running test failed exactly when check_close_ says no. */
static void test_macro(void) {
    int before = check_test_failed_;
    CHECK_CLOSE(1.0, nextafter(1.0, 2.0), 0, 1);
    CHECK_CLOSE(2.0 / 3.0, 0.6666666666666666, 4 * DBL_EPSILON, 0);
    int passed_clean = check_test_failed_ == before;
    fprintf(stderr, "(the next line is an expected failure message)\n");
    CHECK_CLOSE(1.0, 1.0 + 1e-12, 4 * DBL_EPSILON, 4);
    int caught = check_test_failed_ == 1;
    check_test_failed_ = before; /* undo the planted failure */
    CHECK(passed_clean);
    CHECK(caught);
}

int main(void) {
    RUN(test_ulp);
    RUN(test_close_relative);
    RUN(test_close_ulps);
    RUN(test_close_zero_subnormal);
    RUN(test_close_nonfinite);
    RUN(test_close_scaled);
    RUN(test_macro);
    return CHECK_DONE();
}
