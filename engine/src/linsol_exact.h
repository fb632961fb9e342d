/* linsol_exact.h — a SUNDIALS linear solver that applies CVODE's preconditioner solve once:
 * for a preconditioner that solves the Newton system exactly (for the last setup's Jacobian),
 * GMRES around it would only add a Jacobian-vector product per Newton iteration (internal to
 * libapical). */
#ifndef APICAL_LINSOL_EXACT_H
#define APICAL_LINSOL_EXACT_H

#include <sundials/sundials_linearsolver.h>

/* NULL when out of memory. Free with SUNLinSolFree. */
SUNLinearSolver ap_linsol_exact(SUNContext ctx);

#endif
