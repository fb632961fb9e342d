/* test_dfc_precond.c — the preconditioner dfc.layered (plugins/dfc/precond_layered.c) solves
 * CVODE's Newton system (I - gamma J) z = r exactly: against a dense LU solve of the same
 * matrix, with J from central differences of the right-hand side, on networks of different
 * depths, layer sizes and controllers; a run chooses it by default; models it does not
 * describe are refused with the reason. */
#include <gsl/gsl_linalg.h>
#include <math.h>

#include "apical/precond.h"
#include "dfc_test.h"

/* The full N x N Jacobian of the batch by central differences. */
static void full_jacobian(ap_sim *s, const double *y, double *J) {
    size_t N = ap_sim_state_size(s);
    double *yp = malloc(N * sizeof *yp), *fp = malloc(N * sizeof *fp), *fm = malloc(N * sizeof *fm);
    memcpy(yp, y, N * sizeof *y);
    for (size_t k = 0; k < N; k++) {
        double h = 1e-5 * (fabs(y[k]) + 1.0);
        yp[k] = y[k] + h;
        CHECK_OK(ap_sim_rhs(s, 0.0, yp, fp));
        yp[k] = y[k] - h;
        CHECK_OK(ap_sim_rhs(s, 0.0, yp, fm));
        yp[k] = y[k];
        for (size_t i = 0; i < N; i++)
            J[i * N + k] = (fp[i] - fm[i]) / (2 * h);
    }
    free(yp), free(fp), free(fm);
}

/* z = (I - gamma J)^-1 r by LU. */
static void dense_solve(const double *J, size_t N, double gamma, const double *r, double *z) {
    gsl_matrix *M = gsl_matrix_alloc(N, N);
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < N; k++)
            gsl_matrix_set(M, i, k, (i == k) - gamma * J[i * N + k]);
    gsl_permutation *perm = gsl_permutation_alloc(N);
    int sign;
    gsl_linalg_LU_decomp(M, perm, &sign);
    gsl_vector_const_view rv = gsl_vector_const_view_array(r, N);
    gsl_vector_view zv = gsl_vector_view_array(z, N);
    gsl_linalg_LU_solve(M, perm, &rv.vector, &zv.vector);
    gsl_matrix_free(M);
    gsl_permutation_free(perm);
}

static double rel_diff(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / den);
}

static void set_inputs(ap_sim *s, const net_spec *sp) {
    double x[64], t[64];
    fill(x, (size_t)sp->B * sp->n[0], 1.0);
    fill(t, (size_t)sp->B * sp->n[sp->L], 1.0);
    CHECK_OK(ap_sim_set_input(s, "x", x, (size_t)sp->B * sp->n[0]));
    CHECK_OK(ap_sim_set_input(s, "target", t, (size_t)sp->B * sp->n[sp->L]));
}

/* dfc.layered against the dense solve at several gammas (from non-stiff to very stiff). */
static void check_exact(const net_spec *sp, const char *label) {
    rng_state = 2024;
    ap_model *m = net_build(sp);
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    set_inputs(s, sp);
    size_t N = ap_sim_state_size(s);
    double *y = malloc(N * sizeof *y), *r = malloc(N * sizeof *r), *z = malloc(N * sizeof *z);
    double *zd = malloc(N * sizeof *zd), *J = malloc(N * N * sizeof *J);
    fill(y, N, 1.2);
    fill(r, N, 1.0);
    full_jacobian(s, y, J);
    const double gammas[] = {1e-3, 0.05, 0.7, 20.0};
    for (int g = 0; g < 4; g++) {
        dense_solve(J, N, gammas[g], r, zd);
        CHECK_OK(ap_sim_precond_solve_named(s, "dfc.layered", 0.0, y, gammas[g], r, z));
        double e = rel_diff(z, zd, N);
        printf("%s, gamma %g: dfc.layered vs dense solve %.2e\n", label, gammas[g], e);
        CHECK(e < 1e-7);
    }
    free(y), free(r), free(z), free(zd), free(J);
    ap_sim_free(&s);
    ap_model_free(&m);
}

static net_spec base(void) {
    net_spec sp = {.B = 3,
                   .L = 3,
                   .n = {3, 4, 3, 2},
                   .act = {NULL, "tanh", "tanh", "linear"},
                   .tau_v = 0.05,
                   .ctl = "dfc.pi",
                   .k_p = 1.5,
                   .alpha = 0.1,
                   .w_scale = 0.9,
                   .q_scale = 0.9};
    return sp;
}

static void test_exact_solve(void) {
    net_spec sp = base();
    check_exact(&sp, "3 layers, dfc.pi");
    /* a wider middle layer, a tanh output, an integral controller */
    net_spec wide = base();
    wide.n[2] = 7, wide.n[3] = 3, wide.act[3] = "tanh", wide.ctl = "dfc.i";
    check_exact(&wide, "4-7-3, dfc.i");
    /* one layer, a proportional controller (no controller state) */
    net_spec one = base();
    one.L = 1, one.n[1] = 4, one.act[1] = "tanh", one.ctl = "dfc.p";
    check_exact(&one, "one layer, dfc.p");
    /* four layers, stiff somas */
    net_spec deep = base();
    deep.L = 4, deep.n[3] = 5, deep.n[4] = 2, deep.act[3] = "tanh", deep.act[4] = "linear";
    deep.tau_v = 1e-3;
    check_exact(&deep, "4 layers, tau_v 1e-3");
}

/* A run that sets nothing uses dfc.layered (same steps and evaluations as naming it), and its
 * final state matches a tight dense run. Run again, it restarts the kept CVODE workspace
 * (CVodeReInit) and gives the same numbers bit for bit, accumulated update included. */
static void test_default_run(void) {
    net_spec sp = base();
    rng_state = 99;
    ap_model *m = net_build(&sp);
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    set_inputs(s, &sp);
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF, o.t_end = 3.0;
    /* default, default again (reused workspace), named, dense and tight */
    ap_run_stats st[4];
    size_t N = ap_sim_state_size(s);
    double *y[4], dw[2][12];
    for (int k = 0; k < 4; k++) {
        o.precond = k == 2 ? AP_PREC_TYPE : AP_PREC_DEFAULT;
        o.precond_type = k == 2 ? "dfc.layered" : NULL;
        o.linsol = k == 3 ? AP_LINSOL_DENSE : AP_LINSOL_DEFAULT;
        o.rtol = k == 3 ? 1e-12 : 1e-8, o.atol = k == 3 ? 1e-14 : 1e-10;
        CHECK_OK(ap_sim_run(s, &o, &st[k]));
        y[k] = malloc(N * sizeof *y[k]);
        CHECK_OK(ap_sim_get_state(s, y[k]));
        const double *dW, *db;
        double w;
        CHECK_OK(ap_sim_accumulator(s, proj_id(m, "W1"), &dW, &db, &w));
        if (k < 2) memcpy(dw[k], dW, sizeof dw[0]);
    }
    CHECK(st[0].steps == st[2].steps && st[0].rhs_evals == st[2].rhs_evals);
    CHECK(st[0].jac_evals < st[0].steps / 4); /* the Jacobian is reused */
    CHECK(st[1].steps == st[0].steps && st[1].rhs_evals == st[0].rhs_evals);
    CHECK(memcmp(y[1], y[0], N * sizeof *y[0]) == 0);
    CHECK(memcmp(dw[1], dw[0], sizeof dw[0]) == 0);
    double e = rel_diff(y[0], y[3], N);
    printf("default run: %ld steps, %ld evaluations, %ld setups; state vs dense %.2e\n",
           st[0].steps, st[0].rhs_evals, st[0].jac_evals, e);
    CHECK(e < 1e-6);
    for (int k = 0; k < 4; k++)
        free(y[k]);
    ap_sim_free(&s);
    ap_model_free(&m);
}

static void refused(ap_model *m, const char *needle) {
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    size_t N = ap_sim_state_size(s);
    double *v = calloc(N, sizeof *v);
    CHECK_FAILS(ap_sim_precond_solve_named(s, "dfc.layered", 0.0, v, 0.1, v, v), AP_EINVAL, needle);
    free(v);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* Models the type does not describe completely are refused, naming the reason. */
static void test_refusals(void) {
    net_spec sp = base();
    sp.ctl = "dfc.pid";
    refused(net_build(&sp), "the controller is not dfc.pi, dfc.i or dfc.p: dfc.pid");
    sp = base();
    sp.tau_A = 0.3;
    refused(net_build(&sp), "h1 has a dynamic apical compartment");
    sp = base();
    ap_model *m = net_build(&sp);
    ap_connect_spec cs = {.name = "lateral", .kind = AP_DENSE};
    CHECK_OK(ap_model_connect(m, "h1", "h2.soma", &cs, NULL));
    refused(m, "another projection ends on the network: lateral");
    sp = base();
    refused(net_build_forward(&sp), "does not apply");
    sp = base();
    m = net_build(&sp);
    ap_param lp = {"tau", 0.5};
    const char *ports[] = {"input"}, *sigs[] = {"h2"};
    CHECK_OK(ap_model_add_block(m, "f", "lowpass", &lp, 1, ports, sigs, 1));
    refused(m, "another dynamic part");
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_exact_solve);
    RUN(test_default_run);
    RUN(test_refusals);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
