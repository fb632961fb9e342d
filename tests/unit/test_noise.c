/* test_noise.c — the normal stream of euler-maruyama (apical/noise.h): reproducible from its
 * seed, independent of how it is split into calls, and normal: its first four moments, a
 * chi-square test over 82 bins and a Kolmogorov-Smirnov test on 1e6 draws, with tolerances
 * that GSL's mt19937 + ziggurat (the engine's previous generator) passes too and uniform noise
 * of the same variance fails. */
#define _POSIX_C_SOURCE 200809L
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/noise.h"
#include "check.h"

enum { NDRAW = 1000000 };

typedef struct verdict {
    int moments, chi2, ks;
    double mean, var, skew, kurt, chi2_stat, ks_stat;
} verdict;

static double normal_cdf(double x) {
    return 0.5 * erfc(-x / sqrt(2.0));
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Tolerances: about 5 standard errors for n = 1e6 (mean 1e-3, variance 1.4e-3, skewness
 * 2.4e-3, excess kurtosis 4.9e-3); chi-square with 81 degrees of freedom (mean 81, sd 12.7)
 * below 160; sqrt(n) D below 1.95 (p = 0.001). */
static verdict judge(double *z, size_t n) {
    verdict v = {0};
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    for (size_t i = 0; i < n; i++)
        s1 += z[i];
    v.mean = s1 / (double)n;
    for (size_t i = 0; i < n; i++) {
        double d = z[i] - v.mean, d2 = d * d;
        s2 += d2;
        s3 += d2 * d;
        s4 += d2 * d2;
    }
    v.var = s2 / (double)n;
    v.skew = s3 / (double)n / pow(v.var, 1.5);
    v.kurt = s4 / (double)n / (v.var * v.var) - 3.0;
    v.moments = fabs(v.mean) < 5e-3 && fabs(v.var - 1.0) < 7e-3 && fabs(v.skew) < 1.2e-2 &&
                fabs(v.kurt) < 2.5e-2;
    /* bins of width 0.1 over [-4, 4] and the two tails: 82 bins, >= 31 expected in each */
    enum { NB = 82 };
    double count[NB] = {0};
    for (size_t i = 0; i < n; i++) {
        int b = z[i] < -4.0 ? 0 : z[i] >= 4.0 ? NB - 1 : 1 + (int)floor((z[i] + 4.0) * 10.0);
        if (b > NB - 2 && z[i] < 4.0) b = NB - 2; /* rounding at the upper edge */
        count[b] += 1;
    }
    for (int b = 0; b < NB; b++) {
        double lo = b == 0 ? -INFINITY : -4.0 + 0.1 * (b - 1);
        double hi = b == NB - 1 ? INFINITY : -4.0 + 0.1 * b;
        double e = (double)n * (normal_cdf(hi) - normal_cdf(lo));
        v.chi2_stat += (count[b] - e) * (count[b] - e) / e;
    }
    v.chi2 = v.chi2_stat < 160.0;
    qsort(z, n, sizeof *z, cmp_double);
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double f = normal_cdf(z[i]);
        d = fmax(d, fmax(fabs((double)(i + 1) / (double)n - f), fabs(f - (double)i / (double)n)));
    }
    v.ks_stat = sqrt((double)n) * d;
    v.ks = v.ks_stat < 1.95;
    return v;
}

static void report(const char *what, const verdict *v) {
    printf("%-28s mean %+.2e var-1 %+.2e skew %+.2e kurt %+.2e chi2 %.1f KS %.3f\n", what, v->mean,
           v->var - 1.0, v->skew, v->kurt, v->chi2_stat, v->ks_stat);
}

static double *draws(void) {
    double *z = malloc(NDRAW * sizeof *z);
    CHECK(z != NULL);
    return z;
}

static void test_ours_is_normal(void) {
    static const uint64_t seeds[] = {1, 20211206, 0xFFFFFFFFFFFFFFFFu};
    for (int k = 0; k < 3; k++) {
        double *z = draws();
        ap_noise *g;
        CHECK_OK(ap_noise_new(&g, seeds[k]));
        ap_noise_normal(g, z, NDRAW);
        ap_noise_free(&g);
        CHECK(g == NULL);
        verdict v = judge(z, NDRAW);
        report("apical", &v);
        CHECK(v.moments && v.chi2 && v.ks);
        free(z);
    }
}

/* the previous generator passes the same tolerances (they are not tuned to ours) */
static void test_gsl_passes_too(void) {
    double *z = draws();
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 20211206);
    for (size_t i = 0; i < NDRAW; i++)
        z[i] = gsl_ran_gaussian_ziggurat(r, 1.0);
    gsl_rng_free(r);
    verdict v = judge(z, NDRAW);
    report("gsl mt19937 + ziggurat", &v);
    CHECK(v.moments && v.chi2 && v.ks);
    free(z);
}

/* uniform noise of variance 1 fails every one of the three tests on its own */
static void test_uniform_fails(void) {
    double *z = draws();
    ap_noise *g;
    CHECK_OK(ap_noise_new(&g, 5));
    ap_noise_normal(g, z, NDRAW);
    ap_noise_free(&g);
    for (size_t i = 0; i < NDRAW; i++)
        z[i] = sqrt(3.0) * (2.0 * normal_cdf(z[i]) - 1.0);
    verdict v = judge(z, NDRAW);
    report("uniform, variance 1", &v);
    CHECK(!v.moments && !v.chi2 && !v.ks);
    free(z);
}

static void test_reproducible_and_split_free(void) {
    enum { N = 5000 };
    static double a[N], b[N], c[N];
    ap_noise *g, *h, *k;
    CHECK_OK(ap_noise_new(&g, 42));
    CHECK_OK(ap_noise_new(&h, 42));
    CHECK_OK(ap_noise_new(&k, 43));
    ap_noise_normal(g, a, N);
    /* pieces of 1, 7, 1000, ... cross the generator's blocks at other places */
    static const size_t piece[] = {1, 7, 1000, 17, 1024, 1023, 1};
    size_t at = 0;
    for (int p = 0; at < N; p = (p + 1) % 7) {
        size_t m = piece[p] < N - at ? piece[p] : N - at;
        ap_noise_normal(h, b + at, m);
        at += m;
    }
    ap_noise_normal(k, c, N);
    int same = 1, differ = 0;
    for (int i = 0; i < N; i++) {
        same = same && a[i] == b[i];
        differ += a[i] != c[i];
        CHECK(isfinite(a[i]));
    }
    CHECK(same);
    CHECK(differ == N);
    ap_noise_free(&g);
    ap_noise_free(&h);
    ap_noise_free(&k);
    ap_noise_free(&g); /* twice is fine */
    ap_noise_free(NULL);
}

/* The AVX2 rectangle test and the portable C one give the same draws, bit for bit (on a
 * machine without AVX2 both streams take the portable path and the test is trivially met). */
static void test_avx2_equals_portable(void) {
    enum { N = 300000 }; /* about 3,000 draws through the slow path, tail ones included */
    static double a[N], b[N];
    ap_noise *g, *h;
    unsetenv("APICAL_NOISE_PORTABLE");
    CHECK_OK(ap_noise_new(&g, 7));
    setenv("APICAL_NOISE_PORTABLE", "1", 1);
    CHECK_OK(ap_noise_new(&h, 7));
    unsetenv("APICAL_NOISE_PORTABLE");
    ap_noise_normal(g, a, N);
    ap_noise_normal(h, b, N);
    CHECK(memcmp(a, b, sizeof a) == 0);
    int tail = 0;
    for (int i = 0; i < N; i++)
        tail += fabs(a[i]) > 3.65; /* beyond the ziggurat's base layer */
    CHECK(tail > 10);
    ap_noise_free(&g);
    ap_noise_free(&h);
}

int main(void) {
    RUN(test_reproducible_and_split_free);
    RUN(test_avx2_equals_portable);
    RUN(test_ours_is_normal);
    RUN(test_gsl_passes_too);
    RUN(test_uniform_fails);
    return CHECK_DONE();
}
