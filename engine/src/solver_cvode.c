/* solver_cvode.c — adaptive BDF and Adams integration with SUNDIALS CVODES, plasticity rules
 * integrated as CVODES quadratures, recording at requested times or internal steps.
 *
 * A run has three phases: setup (the CVODE workspace, linear solver and preconditioner),
 * integrate (one internal step at a time: recordings from the interpolant, one step budget
 * for the whole run, a collapsing step size caught) and finish (the final state, the
 * accumulated updates, the statistics). */
#include <cvodes/cvodes.h>
#include <float.h>
#include <math.h>
#include <nvector/nvector_serial.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sundials/sundials_context.h>
#include <sunlinsol/sunlinsol_dense.h>
#include <sunlinsol/sunlinsol_spgmr.h>
#include <sunmatrix/sunmatrix_dense.h>
#include <sunnonlinsol/sunnonlinsol_fixedpoint.h>

#include "apical/comm.h"
#include "apical/error.h"
#include "cvode_precond.h"
#include "cvode_stiffness.h"
#include "linsol_exact.h"
#include "nvector_fast.h"
#include "sim_impl.h"

/* Beyond this many state variables a dense Newton matrix is refused (N^2 doubles). */
#define APX_DENSE_MAX 4000
/* A step below this many units in the last place of t is a collapse: the solution is blowing
 * up (or the problem is discontinuous), and the run stops. */
#define APX_COLLAPSE_ULPS 100.0
/* Krylov vectors of unpreconditioned GMRES (preconditioned: CVODE's default, 5) */
#define APX_PLAIN_GMRES_MAXL 20

typedef struct cv_run {
    ap_sim *s;
    const ap_run_opts *o;
    const char *sname;
    double settle_tol;
    long extra_evals; /* evaluations CVODE does not count: quadrature misses, root function */
    char msg[512];    /* CVODE's own last message */
    SUNContext ctx;
    void *mem;
    N_Vector y, yq, tmp;
    SUNLinearSolver ls;
    SUNMatrix A;
    SUNNonlinearSolver nls;
    apx_precond *pre;
    int krylov, use_quad;
    long max_steps;
    long pre_evals0; /* the preconditioner's evaluations before this run */
    int root_armed;
    /* what the workspace was built for: a run that differs in any of these builds a new one */
    ap_solver_kind solver;
    ap_linsol_kind linsol;
    ap_precond_kind precond;
    char precond_type[64];
    int max_order, quad_on, across_ranks;
    size_t n_state, quad_size;
} cv_run;

/* across_ranks: a failure CVODE would recover from on this rank alone (a smaller step) would
 * leave the ranks' steps apart, so it stops the run instead */
#define CV_RECOVERABLE(r, rc) ((rc) < 0 || ((rc) > 0 && (r)->o->across_ranks) ? -1 : (rc))

static int rhs(sunrealtype t, N_Vector y, N_Vector ydot, void *ud) {
    cv_run *r = ud;
    int rc = apx_sim_eval(r->s, t, N_VGetArrayPointer(y), N_VGetArrayPointer(ydot));
    return CV_RECOVERABLE(r, rc);
}

static int quad(sunrealtype t, N_Vector y, N_Vector yQdot, void *ud) {
    cv_run *r = ud;
    ap_sim *s = r->s;
    const double *yd = N_VGetArrayPointer(y);
    /* CVODES usually asks for the quadrature right after the right-hand side at the same
     * point: reuse that evaluation when it is the same state. */
    if (!(s->run.eval_valid && s->run.eval_t == t &&
          memcmp(yd, s->run.x, s->plan.n_state * sizeof *yd) == 0)) {
        r->extra_evals++;
        int rc = apx_sim_eval(s, t, yd, s->run.ydot);
        if (rc) return CV_RECOVERABLE(r, rc);
    }
    int rc = apx_sim_accumulate(s, 1.0, N_VGetArrayPointer(yQdot));
    return CV_RECOVERABLE(r, rc);
}

/* max |dx/dt| over the state (across_ranks: over every rank's part) */
static int max_rate(cv_run *r, double *m) {
    *m = apx_max_abs(r->s->run.ydot, r->s->plan.n_state);
    return r->o->across_ranks ? ap_comm_reduce(m, 1, AP_COMM_MAX) : 0;
}

/* Root of max |dx/dt| - settle_tol: the state has settled. */
static int settle_root(sunrealtype t, N_Vector y, sunrealtype *g, void *ud) {
    cv_run *r = ud;
    ap_sim *s = r->s;
    r->extra_evals++;
    int rc = apx_sim_eval(s, t, N_VGetArrayPointer(y), s->run.ydot);
    if (rc) return rc < 0 ? -1 : 1;
    if (max_rate(r, &g[0])) return -1;
    g[0] -= r->settle_tol;
    return 0;
}

static int prec_setup(sunrealtype t, N_Vector y, N_Vector fy, sunbooleantype jok,
                      sunbooleantype *jcur, sunrealtype gamma, void *ud) {
    cv_run *r = ud;
    int cur = 0;
    int rc = apx_precond_setup(r->pre, t, N_VGetArrayPointer(y), N_VGetArrayPointer(fy), jok, &cur,
                               gamma);
    *jcur = cur ? SUNTRUE : SUNFALSE;
    return rc < 0 ? -1 : rc > 0 ? 1 : 0;
}

static int prec_solve(sunrealtype t, N_Vector y, N_Vector fy, N_Vector rv, N_Vector z,
                      sunrealtype gamma, sunrealtype delta, int lr, void *ud) {
    cv_run *r = ud;
    (void)t, (void)y, (void)fy, (void)delta, (void)lr;
    int rc = apx_precond_solve(r->pre, gamma, N_VGetArrayPointer(rv), N_VGetArrayPointer(z));
    return rc < 0 ? -1 : rc > 0 ? 1 : 0;
}

/* GMRES that did not reach its tolerance is a failure. SPGMR reports a partial solve as
 * SUNLS_RES_REDUCED, which CVODE accepts on the first Newton iteration; with a stiff system
 * and too few Krylov vectors that iteration then passes CVODE's convergence test with an
 * inaccurate correction the error test does not see, and the run misses its tolerance. As a
 * convergence failure CVODE instead updates the preconditioner or reduces the step. */
static int strict_spgmr_solve(SUNLinearSolver S, SUNMatrix A, N_Vector x, N_Vector b,
                              sunrealtype tol) {
    int rc = SUNLinSolSolve_SPGMR(S, A, x, b, tol);
    return rc == SUNLS_RES_REDUCED ? SUNLS_CONV_FAIL : rc;
}

static void err_handler(int code, const char *module, const char *function, char *msg, void *ud) {
    cv_run *r = ud;
    (void)code;
    snprintf(r->msg, sizeof r->msg, "%s/%s: %s", module, function, msg);
}

static int rhs_flag(int flag) {
    return flag == CV_RHSFUNC_FAIL || flag == CV_REPTD_RHSFUNC_ERR ||
           flag == CV_UNREC_RHSFUNC_ERR || flag == CV_FIRST_RHSFUNC_ERR ||
           flag == CV_CONV_FAILURE || flag == CV_ERR_FAILURE || flag == CV_QRHSFUNC_FAIL ||
           flag == CV_REPTD_QRHSFUNC_ERR || flag == CV_FIRST_QRHSFUNC_ERR ||
           flag == CV_UNREC_QRHSFUNC_ERR;
}

static int fail(cv_run *r, int flag, const char *call) {
    ap_sim *s = r->s;
    double t = 0, h = 0;
    if (r->mem) {
        CVodeGetCurrentTime(r->mem, &t);
        CVodeGetLastStep(r->mem, &h);
        if (h == 0.0) CVodeGetCurrentStep(r->mem, &h);
    }
    char *fname = CVodeGetReturnFlagName(flag);
    char what[400] = "";
    if (s->diag.bad_index >= 0 && rhs_flag(flag)) {
        char nm[256];
        apx_sim_describe(s, (size_t)s->diag.bad_index, nm, sizeof nm);
        snprintf(what, sizeof what, "; non-finite derivative of %s = %g", nm, s->diag.bad_value);
    }
    int rc =
        ap_error(flag == CV_RHSFUNC_FAIL && *ap_last_error() && s->diag.bad_index < 0 ? AP_EPLUGIN
                                                                                      : AP_ESOLVER,
                 "%s: %s returned %s at t = %.10g (last step size %.3g)%s%s%s", r->sname, call,
                 fname ? fname : "unknown flag", t, h, what, *r->msg ? ": " : "", r->msg);
    free(fname);
    return s->diag.bad_index >= 0 ? AP_ENONFINITE : rc;
}

/* The variable CVODE's error test finds hardest: the largest weighted local error estimate of
 * the last step, named with its value and derivative (for the messages of a stopped run). */
static void hardest_variable(cv_run *r, char *buf, size_t n) {
    ap_sim *s = r->s;
    *buf = 0;
    if (CVodeGetEstLocalErrors(r->mem, r->tmp) != CV_SUCCESS) return;
    double *ele = N_VGetArrayPointer(r->tmp);
    const double *y = N_VGetArrayPointer(r->y);
    size_t best = 0;
    double worst = -1;
    for (size_t i = 0; i < s->plan.n_state; i++) {
        double w = fabs(ele[i]) / (r->o->rtol * fabs(y[i]) + r->o->atol);
        if (w > worst || isnan(w)) worst = w, best = i;
        if (isnan(w)) break;
    }
    char nm[256];
    apx_sim_describe(s, best, nm, sizeof nm);
    double t;
    CVodeGetCurrentTime(r->mem, &t);
    double d = NAN;
    if (apx_sim_eval(s, t, y, s->run.ydot) == 0) d = s->run.ydot[best];
    snprintf(buf, n, "; the fastest-changing variable is %s = %.6g (d/dt = %.6g)", nm, y[best], d);
}

/* Stops a run whose step budget is spent or whose step size collapsed. */
static int check_progress(cv_run *r, double t, long *steps) {
    long nst = 0;
    double h = 0;
    CVodeGetNumSteps(r->mem, &nst);
    CVodeGetLastStep(r->mem, &h);
    *steps = nst;
    char who[400];
    if (t < r->o->t_end && fabs(h) < APX_COLLAPSE_ULPS * DBL_EPSILON * fabs(t)) {
        hardest_variable(r, who, sizeof who);
        return ap_error(AP_ESOLVER,
                        "%s: the step size collapsed to %.3g at t = %.10g (below %g units in the "
                        "last place of t): the solution is blowing up or not smooth%s",
                        r->sname, h, t, APX_COLLAPSE_ULPS, who);
    }
    if (t < r->o->t_end && nst >= r->max_steps) {
        hardest_variable(r, who, sizeof who);
        return ap_error(AP_ESOLVER,
                        "%s: CV_TOO_MUCH_WORK: max_steps = %ld steps taken, the run is at t = "
                        "%.10g of %g (last step size %.3g)%s",
                        r->sname, r->max_steps, t, r->o->t_end, h, who);
    }
    return 0;
}

static void get_stats(cv_run *r, ap_run_stats *st) {
    void *mem = r->mem;
    long v;
    if (CVodeGetNumSteps(mem, &v) == CV_SUCCESS) st->steps = v;
    if (CVodeGetNumRhsEvals(mem, &v) == CV_SUCCESS) st->rhs_evals = v;
    if (CVodeGetNumErrTestFails(mem, &v) == CV_SUCCESS) st->err_test_fails = v;
    if (CVodeGetNumNonlinSolvIters(mem, &v) == CV_SUCCESS) st->nonlin_iters = v;
    if (CVodeGetNumNonlinSolvConvFails(mem, &v) == CV_SUCCESS) st->conv_fails = v;
    if (CVodeGetNumLinIters(mem, &v) == CV_SUCCESS) st->lin_iters = v;
    if (r->ls) {
        long fe = 0;
        if (CVodeGetNumLinRhsEvals(mem, &fe) == CV_SUCCESS) st->rhs_evals += fe;
        if (r->pre) {
            if (CVodeGetNumPrecEvals(mem, &v) == CV_SUCCESS) st->jac_evals = v;
        } else if (r->krylov) {
            if (CVodeGetNumJtimesEvals(mem, &v) == CV_SUCCESS) st->jac_evals = v;
        } else if (CVodeGetNumJacEvals(mem, &v) == CV_SUCCESS) {
            st->jac_evals = v;
        }
    }
    if (r->pre) st->rhs_evals += apx_precond_evals(r->pre) - r->pre_evals0;
    double h;
    if (CVodeGetLastStep(mem, &h) == CV_SUCCESS) st->last_step = h;
    double t;
    if (CVodeGetCurrentTime(mem, &t) == CV_SUCCESS) st->t_reached = t;
}

/* Evaluates the signals at the solver's (interpolated) state and records them. */
static int record_at(ap_sim *s, double t, const double *y) {
    int rc = apx_sim_eval(s, t, y, NULL);
    if (rc) return rc < 0 ? rc : ap_error(AP_ENONFINITE, "evaluation failed at t = %g", t);
    return apx_sim_record(s, t);
}

#define CHECK_CV(call)                                                                             \
    do {                                                                                           \
        int flag_ = (call);                                                                        \
        if (flag_ < 0) return fail(r, flag_, #call);                                               \
    } while (0)

/* The Newton iteration's linear solver: dense, or GMRES with a preconditioner. */
static int setup_linear_solver(cv_run *r) {
    const ap_run_opts *o = r->o;
    const sunindextype N = (sunindextype)r->s->plan.n_state;
    if (o->linsol == AP_LINSOL_DENSE) {
        if (N > APX_DENSE_MAX)
            return ap_error(AP_EINVAL,
                            "%s: the dense linear solver needs an N x N matrix and N = %ld > %d; "
                            "use linear_solver = \"krylov\"",
                            r->sname, (long)N, APX_DENSE_MAX);
        r->A = SUNDenseMatrix(N, N, r->ctx);
        r->ls = r->A ? SUNLinSol_Dense(r->y, r->A, r->ctx) : NULL;
    } else {
        int rc = o->precond == AP_PREC_DEFAULT ? apx_precond_new_default(r->s, r->sname, &r->pre)
                 : o->precond == AP_PREC_TYPE
                     ? apx_precond_new_named(r->s, o->precond_type, r->sname, &r->pre)
                 : o->precond != AP_PREC_NONE ? apx_precond_new(r->s, o->precond, r->sname, &r->pre)
                                              : 0;
        if (rc) return rc;
        if (apx_precond_exact(r->pre) && o->linsol == AP_LINSOL_DEFAULT) {
            /* an exact solve needs no GMRES around it */
            r->ls = apx_linsol_exact(r->ctx);
        } else {
            /* plain GMRES on a stiff system needs more Krylov vectors than CVODE's 5 */
            int maxl = r->pre ? 0 : APX_PLAIN_GMRES_MAXL;
            r->ls = SUNLinSol_SPGMR(r->y, r->pre ? SUN_PREC_LEFT : SUN_PREC_NONE, maxl, r->ctx);
            if (r->ls) r->ls->ops->solve = strict_spgmr_solve;
        }
        r->krylov = 1;
    }
    if (!r->ls) return ap_error(AP_ENOMEM, "%s: cannot create the linear solver", r->sname);
    CHECK_CV(CVodeSetLinearSolver(r->mem, r->ls, r->A));
    if (r->pre) CHECK_CV(CVodeSetPreconditioner(r->mem, prec_setup, prec_solve));
    return 0;
}

static int setup_nonlinear_solver(cv_run *r) {
    const int bdf = r->o->solver == AP_SOLVER_CVODE_BDF;
    if (bdf || r->o->linsol != AP_LINSOL_DEFAULT) return setup_linear_solver(r);
    /* Adams on non-stiff problems: functional iteration, no Jacobian */
    r->nls = SUNNonlinSol_FixedPoint(r->y, 0, r->ctx);
    if (!r->nls) return ap_error(AP_ENOMEM, "%s: cannot create the fixed-point solver", r->sname);
    CHECK_CV(CVodeSetNonlinearSolver(r->mem, r->nls));
    return 0;
}

static int setup_quadrature(cv_run *r) {
    ap_sim *s = r->s;
    r->yq = N_VNew_Serial((sunindextype)s->acc.quad_size, r->ctx);
    if (!r->yq)
        return ap_error(AP_ENOMEM, "%s: out of memory for %zu accumulator values", r->sname,
                        s->acc.quad_size);
    N_VConst(0.0, r->yq);
    N_VEnableFusedOps_Serial(r->yq, SUNTRUE);
    apx_nvector_speedup(r->yq);
    CHECK_CV(CVodeQuadInit(r->mem, quad, r->yq));
    return 0;
}

/* The options of this run (also on a reused workspace: step 0 and an unlimited step reset
 * CVODE's defaults). */
static int set_options(cv_run *r) {
    const ap_run_opts *o = r->o;
    CHECK_CV(CVodeSStolerances(r->mem, o->rtol, o->atol));
    /* the budget is the run's (check_progress); CVODE's own counts per call */
    CHECK_CV(CVodeSetMaxNumSteps(r->mem, r->max_steps));
    CHECK_CV(CVodeSetStopTime(r->mem, o->t_end));
    CHECK_CV(CVodeSetMaxStep(r->mem, o->max_step > 0 ? o->max_step : 0.0));
    CHECK_CV(CVodeSetInitStep(r->mem, o->init_step > 0 ? o->init_step : 0.0));
    if (!r->use_quad) return 0;
    CHECK_CV(CVodeQuadSStolerances(r->mem, o->rtol, o->atol));
    CHECK_CV(CVodeSetQuadErrCon(r->mem, o->quad_errcon ? SUNTRUE : SUNFALSE));
    return 0;
}

/* The CVODE workspace for this run, from the simulation's current state. */
static int setup(cv_run *r) {
    ap_sim *s = r->s;
    const ap_run_opts *o = r->o;
    const sunindextype N = (sunindextype)s->plan.n_state;
    if (N == 0) return ap_error(AP_EINVAL, "%s: the model has no dynamic variable", r->sname);
    if (SUNContext_Create(NULL, &r->ctx))
        return ap_error(AP_ENOMEM, "%s: SUNContext_Create failed", r->sname);
    r->y = N_VNew_Serial(N, r->ctx);
    if (!r->y)
        return ap_error(AP_ENOMEM, "%s: out of memory for %ld state values", r->sname, (long)N);
    memcpy(N_VGetArrayPointer(r->y), s->run.x, (size_t)N * sizeof(double));
    /* fused vector operations: the Nordsieck prediction and the corrector sums take one pass
     * over memory instead of one per term, which matters for batch-sized states */
    N_VEnableFusedOps_Serial(r->y, SUNTRUE);
    apx_nvector_speedup(r->y);
    if (o->across_ranks) apx_nvector_global(r->y); /* one state across the MPI ranks */
    if (!(r->tmp = N_VClone(r->y))) return ap_error(AP_ENOMEM, "%s: out of memory", r->sname);
    r->mem = CVodeCreate(o->solver == AP_SOLVER_CVODE_BDF ? CV_BDF : CV_ADAMS, r->ctx);
    if (!r->mem) return ap_error(AP_ENOMEM, "%s: CVodeCreate failed", r->sname);
    CVodeSetErrHandlerFn(r->mem, err_handler, r);
    CHECK_CV(CVodeInit(r->mem, rhs, 0.0, r->y));
    CHECK_CV(CVodeSetUserData(r->mem, r));
    if (o->max_order > 0) CHECK_CV(CVodeSetMaxOrd(r->mem, o->max_order));
    int rc = setup_nonlinear_solver(r);
    if (!rc && r->use_quad) rc = setup_quadrature(r);
    return rc ? rc : set_options(r);
}

/* A workspace built for another kind of run (or none) cannot be reused. */
static int reusable(const cv_run *r, const ap_sim *s, const ap_run_opts *o, int use_quad) {
    const char *pt = o->precond == AP_PREC_TYPE && o->precond_type ? o->precond_type : "";
    return r && r->solver == o->solver && r->linsol == o->linsol && r->precond == o->precond &&
           !strcmp(r->precond_type, pt) && r->max_order == o->max_order && r->quad_on == use_quad &&
           r->across_ranks == o->across_ranks && r->n_state == s->plan.n_state &&
           r->quad_size == s->acc.quad_size;
}

static void remember_key(cv_run *r) {
    const ap_run_opts *o = r->o;
    r->solver = o->solver, r->linsol = o->linsol, r->precond = o->precond;
    snprintf(r->precond_type, sizeof r->precond_type, "%s",
             o->precond == AP_PREC_TYPE && o->precond_type ? o->precond_type : "");
    r->max_order = o->max_order, r->quad_on = r->use_quad, r->across_ranks = o->across_ranks;
    r->n_state = r->s->plan.n_state, r->quad_size = r->s->acc.quad_size;
}

/* The kept workspace restarted at the simulation's current state (CVodeReInit keeps every
 * vector, the linear solver and the preconditioner's buffers: nothing is allocated). */
static int reinit(cv_run *r) {
    memcpy(N_VGetArrayPointer(r->y), r->s->run.x, r->s->plan.n_state * sizeof(double));
    CHECK_CV(CVodeReInit(r->mem, 0.0, r->y));
    if (r->use_quad) {
        N_VConst(0.0, r->yq);
        CHECK_CV(CVodeQuadReInit(r->mem, r->yq));
    }
    return set_options(r);
}

/* Settled at the start (1), or the root function armed (0). */
static int setup_settle(cv_run *r, int *settled) {
    ap_sim *s = r->s;
    *settled = 0;
    if (r->root_armed) CHECK_CV(CVodeRootInit(r->mem, 0, NULL));
    r->root_armed = 0;
    if (r->o->settle_tol <= 0) return 0;
    int rc = apx_sim_eval(s, 0.0, N_VGetArrayPointer(r->y), s->run.ydot);
    if (rc) return rc < 0 ? rc : fail(r, CV_FIRST_RHSFUNC_ERR, "the right-hand side");
    double m;
    if ((rc = max_rate(r, &m))) return rc;
    if (m < r->o->settle_tol)
        *settled = 1;
    else
        CHECK_CV(CVodeRootInit(r->mem, 1, settle_root));
    r->root_armed = !*settled;
    return 0;
}

/* Steps to t_end (or until settled), one internal step at a time; the requested times are
 * recorded from the interpolant, every k-th step at the step. Leaves the reached time in *t. */
static int integrate(cv_run *r, int settled, double *t) {
    ap_sim *s = r->s;
    const ap_run_opts *o = r->o;
    int ti = 0, rc;
    *t = 0.0;
    if (o->every > 0 || (o->n_times > 0 && o->times[0] == 0.0)) {
        if ((rc = record_at(s, 0.0, N_VGetArrayPointer(r->y)))) return rc;
        if (o->n_times > 0 && o->times[0] == 0.0) ti = 1;
    }
    long steps = 0;
    while (!settled && *t < o->t_end) {
        int flag = CVode(r->mem, o->t_end, r->y, t, CV_ONE_STEP);
        if (flag < 0) return fail(r, flag, "CVode");
        if (flag == CV_ROOT_RETURN) settled = 1;
        /* requested times passed by this step, from the interpolant */
        while (ti < o->n_times && o->times[ti] <= *t) {
            CHECK_CV(CVodeGetDky(r->mem, o->times[ti], 0, r->tmp));
            if ((rc = record_at(s, o->times[ti], N_VGetArrayPointer(r->tmp)))) return rc;
            ti++;
        }
        if ((rc = check_progress(r, *t, &steps))) return rc;
        if (o->every > 0 && (steps % o->every == 0 || *t >= o->t_end || settled))
            if ((rc = record_at(s, *t, N_VGetArrayPointer(r->y)))) return rc;
    }
    return 0;
}

/* The accumulated updates: the quadrature over [0, t] divided by t. */
static int finish_quadrature(cv_run *r, double t) {
    ap_sim *s = r->s;
    if (t == 0.0) {
        /* settled at the start: the update is the rule at the start state */
        int rc = apx_sim_accumulate(s, 1.0, NULL);
        if (rc > 0) return ap_error(AP_ENONFINITE, "%s: a rule failed at t = 0", r->sname);
        s->acc.weight = 0.0;
        return rc;
    }
    double tq;
    CHECK_CV(CVodeGetQuad(r->mem, &tq, r->yq));
    const double *q = N_VGetArrayPointer(r->yq);
    for (int i = 0; i < s->plan.n_projs; i++) {
        sim_acc *a = s->plan.projs[i].acc;
        if (!a) continue;
        size_t nw = (size_t)s->plan.projs[i].obj->rows * (size_t)s->plan.projs[i].obj->cols;
        for (size_t k = 0; k < nw; k++)
            a->dW[k] = q[a->quad_off + k] / tq;
        if (s->plan.projs[i].obj->b)
            for (int k = 0; k < s->plan.projs[i].obj->rows; k++)
                a->db[k] = q[a->quad_off + nw + (size_t)k] / tq;
    }
    s->acc.weight = tq;
    return 0;
}

/* Leaves the final state and its signals (drives included) in the simulation. */
static int finish(cv_run *r, double t) {
    int rc = apx_sim_eval(r->s, t, N_VGetArrayPointer(r->y), r->s->run.ydot);
    if (rc > 0) rc = 0;
    if (rc) return rc < 0 ? rc : ap_error(AP_ENONFINITE, "final evaluation failed");
    return r->use_quad ? finish_quadrature(r, t) : 0;
}

#undef CHECK_CV

static void release(cv_run *r) {
    if (r->mem) CVodeFree(&r->mem);
    if (r->ls) SUNLinSolFree(r->ls);
    if (r->A) SUNMatDestroy(r->A);
    if (r->nls) SUNNonlinSolFree(r->nls);
    if (r->y) N_VDestroy(r->y);
    if (r->yq) N_VDestroy(r->yq);
    if (r->tmp) N_VDestroy(r->tmp);
    apx_precond_free(&r->pre);
    if (r->ctx) SUNContext_Free(&r->ctx);
}

void apx_cvode_ws_free(ap_sim *s) {
    cv_run *r = s->run.cvode_ws;
    if (!r) return;
    release(r);
    free(r);
    s->run.cvode_ws = NULL;
}

/* The workspace of s for this run: the kept one restarted when it was built for the same kind
 * of run, else a new one (kept for the next run). */
static int workspace(ap_sim *s, const ap_run_opts *o, cv_run **out) {
    const int use_quad = s->acc.on && s->acc.quad_size > 0;
    cv_run *r = s->run.cvode_ws;
    *out = NULL;
    if (r && !reusable(r, s, o, use_quad)) apx_cvode_ws_free(s), r = NULL;
    const int reuse = r != NULL;
    if (!r && !(r = s->run.cvode_ws = calloc(1, sizeof *r)))
        return ap_error(AP_ENOMEM, "%s: out of memory", ap_solver_name(o->solver));
    r->s = s, r->o = o, r->sname = ap_solver_name(o->solver), r->settle_tol = o->settle_tol;
    r->use_quad = use_quad, r->extra_evals = 0, r->msg[0] = 0;
    r->max_steps = o->max_steps > 0 ? o->max_steps : 500000;
    r->pre_evals0 = r->pre ? apx_precond_evals(r->pre) : 0;
    *out = r;
    if (reuse) return reinit(r);
    remember_key(r);
    return setup(r);
}

int apx_solve_cvode(ap_sim *s, const ap_run_opts *o, ap_run_stats *st) {
    cv_run *r;
    double t = 0.0;
    int settled = 0;
    int rc = workspace(s, o, &r);
    if (!rc) rc = setup_settle(r, &settled);
    if (!rc) rc = integrate(r, settled, &t);
    if (!rc) rc = finish(r, t);
    if (r && r->mem) get_stats(r, st);
    if (!rc && o->solver == AP_SOLVER_CVODE_ADAMS) {
        long ev = apx_adams_stiffness(s, t, N_VGetArrayPointer(r->y), st->steps, st);
        if (ev > 0) r->extra_evals += ev;
    }
    if (r) st->rhs_evals += r->extra_evals;
    if (!rc) st->t_reached = t;   /* the solution's time, not CVODE's internal one */
    if (rc) apx_cvode_ws_free(s); /* a failed run leaves nothing to resume from */
    return rc;
}

int apx_cvode_check_linear(const ap_run_opts *o, const char *sname) {
    const int cvode = o->solver == AP_SOLVER_CVODE_BDF || o->solver == AP_SOLVER_CVODE_ADAMS;
    if (!cvode && (o->linsol != AP_LINSOL_DEFAULT || o->precond != AP_PREC_DEFAULT))
        return ap_error(AP_EINVAL,
                        "run (%s): linear_solver and preconditioner are for cvode-bdf and "
                        "cvode-adams (a fixed-step solver solves no linear system)",
                        sname);
    if (o->linsol == AP_LINSOL_DENSE && o->precond != AP_PREC_DEFAULT)
        return ap_error(AP_EINVAL,
                        "run (%s): the dense linear solver uses no preconditioner; a "
                        "preconditioner is for linear_solver = \"krylov\"",
                        sname);
    if (o->solver == AP_SOLVER_CVODE_ADAMS && o->linsol == AP_LINSOL_DEFAULT &&
        o->precond != AP_PREC_DEFAULT)
        return ap_error(AP_EINVAL,
                        "run (cvode-adams): without linear_solver cvode-adams uses functional "
                        "iteration and no preconditioner; set linear_solver = \"krylov\" too");
    if (o->precond == AP_PREC_TYPE && !o->precond_type)
        return ap_error(AP_EINVAL, "run (%s): preconditioner type without a name", sname);
    if (o->across_ranks && (!cvode || o->quad_errcon || o->linsol == AP_LINSOL_DENSE))
        return ap_error(AP_EINVAL,
                        "run (%s): across_ranks (one integration across the MPI ranks) is for "
                        "cvode-bdf and cvode-adams without quad_errcon (each rank holds a part "
                        "of the accumulators' sum) and without the dense linear solver",
                        sname);
    if ((unsigned)o->precond > AP_PREC_TYPE || (unsigned)o->linsol > AP_LINSOL_DENSE)
        return ap_error(AP_EINVAL, "run (%s): unknown linear_solver %d or preconditioner %d", sname,
                        (int)o->linsol, (int)o->precond);
    return 0;
}
