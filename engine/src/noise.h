/* noise.h — Gaussian white noise for the stochastic solvers (internal half of
 * apical/noise.h). */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_NOISE_IMPL_H
#define APICAL_NOISE_IMPL_H

#include <stddef.h>

#include "apical/noise.h"

/* x[i] += scale * z[i] for i < n, z the stream's next n draws (as ap_noise_normal). */
void apx_noise_add(ap_noise *g, double *x, size_t n, double scale);

#endif
