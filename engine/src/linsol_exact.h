/* linsol_exact.h — a SUNDIALS linear solver that applies CVODE's preconditioner solve once:
 * for a preconditioner that solves the Newton system exactly (for the last setup's Jacobian),
 * GMRES around it would only add a Jacobian-vector product per Newton iteration (internal to
 * libapical). */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_LINSOL_EXACT_H
#define APICAL_LINSOL_EXACT_H

#include <sundials/sundials_linearsolver.h>

/* NULL when out of memory. Free with SUNLinSolFree. */
SUNLinearSolver apx_linsol_exact(SUNContext ctx);

#endif
