/* vec_tanh.h — vectorised tanh used by the built-in tanh activation (internal). */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_VEC_TANH_H
#define APICAL_VEC_TANH_H

#include <stddef.h>

/* y[i] = tanh(x[i]) within 4 ulp; x and y may be the same array. */
void apx_vec_tanh(size_t n, const double *x, double *y);

#endif
