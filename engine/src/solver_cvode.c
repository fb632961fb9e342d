/* solver_cvode.c — adaptive BDF and Adams integration with SUNDIALS CVODES, plasticity rules
 * integrated as CVODES quadratures, recording at requested times or internal steps. */
#include <cvodes/cvodes.h>
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

#include "apical/error.h"
#include "nvector_fast.h"
#include "sim_impl.h"

/* Beyond this many state variables a dense Newton matrix is refused (N^2 doubles). */
#define AP_DENSE_MAX 4000

typedef struct cv_run {
    ap_sim *s;
    double settle_tol;
    long extra_evals; /* evaluations CVODE does not count: quadrature misses, root function */
    char msg[512];    /* CVODE's own last message */
} cv_run;

static int rhs(sunrealtype t, N_Vector y, N_Vector ydot, void *ud) {
    cv_run *r = ud;
    int rc = ap_sim_eval(r->s, t, N_VGetArrayPointer(y), N_VGetArrayPointer(ydot));
    return rc < 0 ? -1 : rc;
}

static int quad(sunrealtype t, N_Vector y, N_Vector yQdot, void *ud) {
    cv_run *r = ud;
    ap_sim *s = r->s;
    const double *yd = N_VGetArrayPointer(y);
    /* CVODES usually asks for the quadrature right after the right-hand side at the same
     * point: reuse that evaluation when it is the same state. */
    if (!(s->eval_valid && s->eval_t == t && memcmp(yd, s->x, s->n_state * sizeof *yd) == 0)) {
        r->extra_evals++;
        int rc = ap_sim_eval(s, t, yd, s->ydot);
        if (rc) return rc < 0 ? -1 : rc;
    }
    int rc = ap_sim_accumulate(s, 1.0, N_VGetArrayPointer(yQdot));
    return rc < 0 ? -1 : rc;
}

/* Root of max |dx/dt| - settle_tol: the state has settled. */
static int settle_root(sunrealtype t, N_Vector y, sunrealtype *g, void *ud) {
    cv_run *r = ud;
    ap_sim *s = r->s;
    r->extra_evals++;
    int rc = ap_sim_eval(s, t, N_VGetArrayPointer(y), s->ydot);
    if (rc) return rc < 0 ? -1 : 1;
    g[0] = ap_max_abs(s->ydot, s->n_state) - r->settle_tol;
    return 0;
}

static void err_handler(int code, const char *module, const char *function, char *msg, void *ud) {
    cv_run *r = ud;
    (void)code;
    snprintf(r->msg, sizeof r->msg, "%s/%s: %s", module, function, msg);
}

static int fail(cv_run *r, void *mem, int flag, const char *solver, const char *call) {
    ap_sim *s = r->s;
    double t = 0, h = 0;
    if (mem) {
        CVodeGetCurrentTime(mem, &t);
        CVodeGetLastStep(mem, &h);
        if (h == 0.0) CVodeGetCurrentStep(mem, &h);
    }
    char *fname = CVodeGetReturnFlagName(flag);
    char what[400] = "";
    if (s->bad_index >= 0 &&
        (flag == CV_RHSFUNC_FAIL || flag == CV_REPTD_RHSFUNC_ERR || flag == CV_UNREC_RHSFUNC_ERR ||
         flag == CV_FIRST_RHSFUNC_ERR || flag == CV_CONV_FAILURE || flag == CV_ERR_FAILURE ||
         flag == CV_QRHSFUNC_FAIL || flag == CV_REPTD_QRHSFUNC_ERR ||
         flag == CV_FIRST_QRHSFUNC_ERR || flag == CV_UNREC_QRHSFUNC_ERR)) {
        char nm[256];
        ap_sim_describe(s, (size_t)s->bad_index, nm, sizeof nm);
        snprintf(what, sizeof what, "; non-finite derivative of %s = %g", nm, s->bad_value);
    }
    int rc = ap_error(flag == CV_RHSFUNC_FAIL && *ap_last_error() && s->bad_index < 0 ? AP_EPLUGIN
                                                                                      : AP_ESOLVER,
                      "%s: %s returned %s at t = %.10g (last step size %.3g)%s%s%s", solver, call,
                      fname ? fname : "unknown flag", t, h, what, *r->msg ? ": " : "", r->msg);
    free(fname);
    return s->bad_index >= 0 ? AP_ENONFINITE : rc;
}

static void get_stats(void *mem, ap_run_stats *st, ap_sim *s, int krylov) {
    long v;
    if (CVodeGetNumSteps(mem, &v) == CV_SUCCESS) st->steps = v;
    if (CVodeGetNumRhsEvals(mem, &v) == CV_SUCCESS) st->rhs_evals = v;
    if (CVodeGetNumErrTestFails(mem, &v) == CV_SUCCESS) st->err_test_fails = v;
    if (CVodeGetNumNonlinSolvIters(mem, &v) == CV_SUCCESS) st->nonlin_iters = v;
    if (CVodeGetNumNonlinSolvConvFails(mem, &v) == CV_SUCCESS) st->conv_fails = v;
    if (CVodeGetNumLinIters(mem, &v) == CV_SUCCESS) st->lin_iters = v;
    if (krylov) {
        if (CVodeGetNumJtimesEvals(mem, &v) == CV_SUCCESS) st->jac_evals = v;
        long fe = 0;
        if (CVodeGetNumLinRhsEvals(mem, &fe) == CV_SUCCESS) st->rhs_evals += fe;
    } else {
        if (CVodeGetNumJacEvals(mem, &v) == CV_SUCCESS) st->jac_evals = v;
        long fe = 0;
        if (CVodeGetNumLinRhsEvals(mem, &fe) == CV_SUCCESS) st->rhs_evals += fe;
    }
    double h;
    if (CVodeGetLastStep(mem, &h) == CV_SUCCESS) st->last_step = h;
    double t;
    if (CVodeGetCurrentTime(mem, &t) == CV_SUCCESS) st->t_reached = t;
    (void)s;
}

/* Evaluates the signals at the solver's (interpolated) state and records them. */
static int record_at(ap_sim *s, double t, const double *y) {
    int rc = ap_sim_eval(s, t, y, NULL);
    if (rc) return rc < 0 ? rc : ap_error(AP_ENONFINITE, "evaluation failed at t = %g", t);
    return ap_sim_record(s, t);
}

int ap_solve_cvode(ap_sim *s, const ap_run_opts *o, ap_run_stats *st) {
    const char *sname = ap_solver_name(o->solver);
    const sunindextype N = (sunindextype)s->n_state;
    cv_run r = {.s = s, .settle_tol = o->settle_tol};
    SUNContext ctx = NULL;
    void *mem = NULL;
    N_Vector y = NULL, yq = NULL, tmp = NULL;
    SUNLinearSolver ls = NULL;
    SUNMatrix A = NULL;
    SUNNonlinearSolver nls = NULL;
    int rc = AP_OK, flag;
    int krylov = 0;
    double t = 0.0;
    int ti = 0, settled = 0;
    const int bdf = o->solver == AP_SOLVER_CVODE_BDF;
    const int use_quad = s->acc_on && s->quad_size > 0;

    if (N == 0) return ap_error(AP_EINVAL, "%s: the model has no dynamic variable", sname);
    if (SUNContext_Create(NULL, &ctx))
        return ap_error(AP_ENOMEM, "%s: SUNContext_Create failed", sname);
    y = N_VNew_Serial(N, ctx);
    if (!y) {
        rc = ap_error(AP_ENOMEM, "%s: out of memory for %ld state values", sname, (long)N);
        goto done;
    }
    memcpy(N_VGetArrayPointer(y), s->x, (size_t)N * sizeof(double));
    /* fused vector operations: the Nordsieck prediction and the corrector sums take one pass
     * over memory instead of one per term, which matters for batch-sized states */
    N_VEnableFusedOps_Serial(y, SUNTRUE);
    ap_nvector_speedup(y);
    if (o->every > 0 && o->n_times > 0 && !(tmp = N_VClone(y))) {
        rc = ap_error(AP_ENOMEM, "%s: out of memory", sname);
        goto done;
    }
    mem = CVodeCreate(bdf ? CV_BDF : CV_ADAMS, ctx);
    if (!mem) {
        rc = ap_error(AP_ENOMEM, "%s: CVodeCreate failed", sname);
        goto done;
    }
    CVodeSetErrHandlerFn(mem, err_handler, &r);
#define CHECK_CV(call)                                                                             \
    do {                                                                                           \
        flag = (call);                                                                             \
        if (flag < 0) {                                                                            \
            rc = fail(&r, mem, flag, sname, #call);                                                \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)
    CHECK_CV(CVodeInit(mem, rhs, 0.0, y));
    CHECK_CV(CVodeSetUserData(mem, &r));
    CHECK_CV(CVodeSStolerances(mem, o->rtol, o->atol));
    CHECK_CV(CVodeSetMaxNumSteps(mem, o->max_steps > 0 ? o->max_steps : 500000));
    CHECK_CV(CVodeSetStopTime(mem, o->t_end));
    if (o->max_step > 0) CHECK_CV(CVodeSetMaxStep(mem, o->max_step));
    if (o->init_step > 0) CHECK_CV(CVodeSetInitStep(mem, o->init_step));
    if (o->max_order > 0) CHECK_CV(CVodeSetMaxOrd(mem, o->max_order));
    ap_linsol_kind lk = o->linsol;
    if (bdf || lk != AP_LINSOL_DEFAULT) {
        if (lk == AP_LINSOL_DENSE) {
            if (N > AP_DENSE_MAX) {
                rc = ap_error(AP_EINVAL,
                              "%s: the dense linear solver needs an N x N matrix and N = %ld > "
                              "%d; use linear_solver = \"krylov\"",
                              sname, (long)N, AP_DENSE_MAX);
                goto done;
            }
            A = SUNDenseMatrix(N, N, ctx);
            ls = A ? SUNLinSol_Dense(y, A, ctx) : NULL;
        } else {
            ls = SUNLinSol_SPGMR(y, SUN_PREC_NONE, 0, ctx);
            krylov = 1;
        }
        if (!ls) {
            rc = ap_error(AP_ENOMEM, "%s: cannot create the linear solver", sname);
            goto done;
        }
        CHECK_CV(CVodeSetLinearSolver(mem, ls, A));
    } else {
        /* Adams on non-stiff problems: functional iteration, no Jacobian */
        nls = SUNNonlinSol_FixedPoint(y, 0, ctx);
        if (!nls) {
            rc = ap_error(AP_ENOMEM, "%s: cannot create the fixed-point solver", sname);
            goto done;
        }
        CHECK_CV(CVodeSetNonlinearSolver(mem, nls));
    }
    if (use_quad) {
        yq = N_VNew_Serial((sunindextype)s->quad_size, ctx);
        if (!yq) {
            rc = ap_error(AP_ENOMEM, "%s: out of memory for %zu accumulator values", sname,
                          s->quad_size);
            goto done;
        }
        N_VConst(0.0, yq);
        N_VEnableFusedOps_Serial(yq, SUNTRUE);
        ap_nvector_speedup(yq);
        CHECK_CV(CVodeQuadInit(mem, quad, yq));
        CHECK_CV(CVodeQuadSStolerances(mem, o->rtol, o->atol));
        CHECK_CV(CVodeSetQuadErrCon(mem, o->quad_errcon ? SUNTRUE : SUNFALSE));
    }

    if (o->settle_tol > 0) {
        /* settled from the start: nothing to integrate */
        if ((rc = ap_sim_eval(s, 0.0, N_VGetArrayPointer(y), s->ydot))) {
            rc = rc < 0 ? rc : fail(&r, NULL, CV_FIRST_RHSFUNC_ERR, sname, "the right-hand side");
            goto done;
        }
        if (ap_max_abs(s->ydot, s->n_state) < o->settle_tol)
            settled = 1;
        else
            CHECK_CV(CVodeRootInit(mem, 1, settle_root));
    }
    /* the initial point */
    if (o->every > 0 || (o->n_times > 0 && o->times[0] == 0.0)) {
        if ((rc = record_at(s, 0.0, N_VGetArrayPointer(y)))) goto done;
        if (o->n_times > 0 && o->times[0] == 0.0) ti = 1;
    }
    if (o->every > 0) {
        long step = 0;
        while (!settled && t < o->t_end) {
            flag = CVode(mem, o->t_end, y, &t, CV_ONE_STEP);
            if (flag < 0) {
                rc = fail(&r, mem, flag, sname, "CVode");
                goto done;
            }
            if (flag == CV_ROOT_RETURN) settled = 1;
            step++;
            /* requested times passed by this step, from the interpolant */
            while (ti < o->n_times && o->times[ti] <= t) {
                CHECK_CV(CVodeGetDky(mem, o->times[ti], 0, tmp));
                if ((rc = record_at(s, o->times[ti], N_VGetArrayPointer(tmp)))) goto done;
                ti++;
            }
            if (step % o->every == 0 || t >= o->t_end || settled)
                if ((rc = record_at(s, t, N_VGetArrayPointer(y)))) goto done;
        }
    } else {
        for (; !settled && ti < o->n_times; ti++) {
            flag = CVode(mem, o->times[ti], y, &t, CV_NORMAL);
            if (flag < 0) {
                rc = fail(&r, mem, flag, sname, "CVode");
                goto done;
            }
            if (flag == CV_ROOT_RETURN) {
                settled = 1;
                break;
            }
            if ((rc = record_at(s, o->times[ti], N_VGetArrayPointer(y)))) goto done;
        }
        if (!settled && t < o->t_end) {
            flag = CVode(mem, o->t_end, y, &t, CV_NORMAL);
            if (flag < 0) {
                rc = fail(&r, mem, flag, sname, "CVode");
                goto done;
            }
        }
    }
    /* leave the final state and its signals (drives included) in the simulation */
    if ((rc = ap_sim_eval(s, t, N_VGetArrayPointer(y), s->ydot)) > 0) rc = 0;
    if (rc) rc = rc < 0 ? rc : ap_error(AP_ENONFINITE, "final evaluation failed");
    if (!rc && use_quad && t == 0.0) {
        /* settled at the start: the update is the rule at the start state */
        if ((rc = ap_sim_accumulate(s, 1.0, NULL)) > 0)
            rc = ap_error(AP_ENONFINITE, "%s: a rule failed at t = 0", sname);
        s->acc_weight = 0.0;
    } else if (!rc && use_quad) {
        double tq;
        CHECK_CV(CVodeGetQuad(mem, &tq, yq));
        const double *q = N_VGetArrayPointer(yq);
        for (int i = 0; i < s->n_projs; i++) {
            sim_acc *a = s->projs[i].acc;
            if (!a) continue;
            size_t nw = (size_t)s->projs[i].obj->rows * (size_t)s->projs[i].obj->cols;
            for (size_t k = 0; k < nw; k++)
                a->dW[k] = q[a->quad_off + k] / tq;
            if (s->projs[i].obj->b)
                for (int k = 0; k < s->projs[i].obj->rows; k++)
                    a->db[k] = q[a->quad_off + nw + (size_t)k] / tq;
        }
        s->acc_weight = tq;
    }
done:
    if (mem) get_stats(mem, st, s, krylov);
    st->rhs_evals += r.extra_evals;
    if (!rc) st->t_reached = t; /* the solution's time, not CVODE's internal one */
    if (mem) CVodeFree(&mem);
    if (ls) SUNLinSolFree(ls);
    if (A) SUNMatDestroy(A);
    if (nls) SUNNonlinSolFree(nls);
    if (y) N_VDestroy(y);
    if (yq) N_VDestroy(yq);
    if (tmp) N_VDestroy(tmp);
    if (ctx) SUNContext_Free(&ctx);
    return rc;
#undef CHECK_CV
}
