/* check.h — the tiny assertion kit of the C unit tests. Each test is a function; main runs
 * them with RUN() and returns non-zero if any check failed. Prints "N passed, N failed". */
#ifndef APICAL_TEST_CHECK_H
#define APICAL_TEST_CHECK_H

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
