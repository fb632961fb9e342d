/* linsol_exact.c — the "exact" linear solver: x = P^-1 b with the preconditioner CVODE hands
 * it (SUNLinSolSetPreconditioner), no iteration. It declares itself iterative so that CVODE's
 * linear-solver interface passes it the preconditioner's setup (with its jok/jcur reuse) and
 * solve (with the current gamma); it never multiplies by the Jacobian. */
#include "linsol_exact.h"

#include <stdlib.h>

typedef struct exact_content {
    void *p_data;
    SUNPSetupFn pset;
    SUNPSolveFn psol;
    int last_flag;
} exact_content;

#define EXACT(S) ((exact_content *)(S)->content)

static SUNLinearSolver_Type exact_type(SUNLinearSolver S) {
    (void)S;
    return SUNLINEARSOLVER_ITERATIVE;
}

static SUNLinearSolver_ID exact_id(SUNLinearSolver S) {
    (void)S;
    return SUNLINEARSOLVER_CUSTOM;
}

static int exact_set_atimes(SUNLinearSolver S, void *a_data, SUNATimesFn atimes) {
    (void)S, (void)a_data, (void)atimes; /* never multiplies by the Jacobian */
    return SUNLS_SUCCESS;
}

static int exact_set_precond(SUNLinearSolver S, void *p_data, SUNPSetupFn pset, SUNPSolveFn psol) {
    EXACT(S)->p_data = p_data;
    EXACT(S)->pset = pset;
    EXACT(S)->psol = psol;
    return SUNLS_SUCCESS;
}

static int exact_set_scaling(SUNLinearSolver S, N_Vector s1, N_Vector s2) {
    (void)S, (void)s1, (void)s2; /* an exact solve needs no scaling */
    return SUNLS_SUCCESS;
}

static int exact_initialize(SUNLinearSolver S) {
    EXACT(S)->last_flag = SUNLS_SUCCESS;
    return EXACT(S)->psol ? SUNLS_SUCCESS : SUNLS_PSET_FAIL_UNREC;
}

/* A failed setup: > 0 recoverable (CVODE retries with a smaller step), < 0 fatal. */
static int exact_setup(SUNLinearSolver S, SUNMatrix A) {
    (void)A;
    exact_content *c = EXACT(S);
    int rc = c->pset ? c->pset(c->p_data) : 0;
    c->last_flag = rc == 0 ? SUNLS_SUCCESS : rc > 0 ? SUNLS_PSET_FAIL_REC : SUNLS_PSET_FAIL_UNREC;
    return c->last_flag;
}

static int exact_solve(SUNLinearSolver S, SUNMatrix A, N_Vector x, N_Vector b, sunrealtype tol) {
    (void)A;
    exact_content *c = EXACT(S);
    int rc = c->psol(c->p_data, b, x, tol, SUN_PREC_LEFT);
    c->last_flag = rc == 0  ? SUNLS_SUCCESS
                   : rc > 0 ? SUNLS_PSOLVE_FAIL_REC
                            : SUNLS_PSOLVE_FAIL_UNREC;
    return c->last_flag;
}

static int exact_iters(SUNLinearSolver S) {
    (void)S;
    return 1;
}

static sunrealtype exact_resnorm(SUNLinearSolver S) {
    (void)S;
    return 0.0;
}

static sunindextype exact_last_flag(SUNLinearSolver S) {
    return EXACT(S)->last_flag;
}

static int exact_free(SUNLinearSolver S) {
    if (!S) return SUNLS_SUCCESS;
    free(S->content);
    S->content = NULL;
    SUNLinSolFreeEmpty(S);
    return SUNLS_SUCCESS;
}

SUNLinearSolver apx_linsol_exact(SUNContext ctx) {
    SUNLinearSolver S = SUNLinSolNewEmpty(ctx);
    if (!S) return NULL;
    S->content = calloc(1, sizeof(exact_content));
    if (!S->content) {
        SUNLinSolFreeEmpty(S);
        return NULL;
    }
    S->ops->gettype = exact_type;
    S->ops->getid = exact_id;
    S->ops->setatimes = exact_set_atimes;
    S->ops->setpreconditioner = exact_set_precond;
    S->ops->setscalingvectors = exact_set_scaling;
    S->ops->initialize = exact_initialize;
    S->ops->setup = exact_setup;
    S->ops->solve = exact_solve;
    S->ops->numiters = exact_iters;
    S->ops->resnorm = exact_resnorm;
    S->ops->lastflag = exact_last_flag;
    S->ops->free = exact_free;
    return S;
}
