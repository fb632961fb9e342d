/* cvode_stiffness.h — after a cvode-adams run that took many steps: whether its steps were
 * held at the stability limit of the circuit's fastest mode (a stiff problem, on which the
 * Adams error control is unreliable), as a warning in the run's statistics (internal to
 * libapical). */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_CVODE_STIFFNESS_H
#define APICAL_CVODE_STIFFNESS_H

#include "sim_impl.h"

/* Adams runs of at least this many steps are checked. */
#define APX_ADAMS_CHECK_STEPS 500
/* Mean step times the largest |eigenvalue| above this: the steps were stability-limited. */
#define APX_ADAMS_STIFF_HRHO 0.5

/* At the final state y (time t) of a run of `steps` steps over [0, t]: estimates the largest
 * |eigenvalue| of the Jacobian by power iteration with difference quotients and, when the mean
 * step times it exceeds APX_ADAMS_STIFF_HRHO, writes the warning into st->stab_warning. Leaves
 * the signals at y. Returns the evaluations it made, or -1 on a failure (out of memory, a
 * failed evaluation: no warning then). */
long apx_adams_stiffness(ap_sim *s, double t, const double *y, long steps, ap_run_stats *st);

#endif
