/* noise.h — Gaussian white noise for the stochastic solvers (internal half of
 * apical/noise.h). */
#ifndef APICAL_NOISE_IMPL_H
#define APICAL_NOISE_IMPL_H

#include <stddef.h>

#include "apical/noise.h"

/* x[i] += scale * z[i] for i < n, z the stream's next n draws (as ap_noise_normal). */
void ap_noise_add(ap_noise *g, double *x, size_t n, double scale);

#endif
