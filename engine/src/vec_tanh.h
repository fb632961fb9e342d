/* vec_tanh.h — vectorised tanh used by the built-in tanh activation (internal). */
#ifndef APICAL_VEC_TANH_H
#define APICAL_VEC_TANH_H

#include <stddef.h>

/* y[i] = tanh(x[i]) within 4 ulp; x and y may be the same array. */
void ap_vec_tanh(size_t n, const double *x, double *y);

#endif
