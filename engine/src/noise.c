/* noise.c — Gaussian increments for euler-maruyama, from GSL's mt19937 and ziggurat. */
#include "noise.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

ap_noise *ap_noise_new(uint64_t seed) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) return NULL;
    gsl_rng_set(r, (unsigned long)seed);
    return (ap_noise *)r; /* the handle is the generator itself */
}

void ap_noise_free(ap_noise *g) {
    if (g) gsl_rng_free((gsl_rng *)g);
}

void ap_noise_add(ap_noise *g, double *x, size_t n, double scale) {
    gsl_rng *r = (gsl_rng *)g;
    for (size_t i = 0; i < n; i++)
        x[i] += scale * gsl_ran_gaussian_ziggurat(r, 1.0);
}
