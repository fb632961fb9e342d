/* noise.h — seeded Gaussian white noise for the stochastic solvers (internal). Kept apart
 * from the BLAS code because GSL's randist header drags in GSL's own CBLAS declarations. */
#ifndef APICAL_NOISE_H
#define APICAL_NOISE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ap_noise ap_noise;

/* Mersenne twister (GSL mt19937) seeded with seed; NULL when out of memory. */
ap_noise *ap_noise_new(uint64_t seed);
void ap_noise_free(ap_noise *g);
/* x[i] += scale * N(0, 1) for i < n, drawn in index order. */
void ap_noise_add(ap_noise *g, double *x, size_t n, double scale);

#endif
