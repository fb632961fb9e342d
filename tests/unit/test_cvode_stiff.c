/* test_cvode_stiff.c — CVODE's preconditioners against direct solves of the same systems, the
 * linear-solver options, and runs that cannot finish: a step budget that holds across solver
 * calls (recording every step) and a collapsing step size stopped with the variable named. */
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <stdlib.h>

#include "apical/error.h"
#include "apical/model.h"
#include "apical/registry.h"
#include "apical/sim.h"
#include "check.h"

static ap_registry *reg;

enum { B = 3 };

/* x (2) -> h1 (4, tau 0.01) -> h2 (3, tau 1) -> lowpass f (tau 0.5); with `loops`, h1 and f
 * feed h1 back, so a sample's Jacobian block is full rather than triangular. */
static ap_model *circuit(int loops) {
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, B));
    CHECK_OK(ap_model_add_input(m, "x", 2));
    ap_param fast = {"tau", 0.01}, slow = {"tau", 1.0}, lp = {"tau", 0.5};
    CHECK_OK(ap_model_add_population(m, "h1", 4, "rate", "tanh", &fast, 1));
    CHECK_OK(ap_model_add_population(m, "h2", 3, "rate", "tanh", &slow, 1));
    const char *ports[] = {"input"}, *sigs[] = {"h2"};
    CHECK_OK(ap_model_add_block(m, "f", "lowpass", &lp, 1, ports, sigs, 1));
    const char *links[][2] = {
        {"x", "h1.soma"}, {"h1", "h2.soma"}, {"h1", "h1.soma"}, {"f.output", "h1.soma"}};
    unsigned seed = 7;
    for (int l = 0; l < (loops ? 4 : 2); l++) {
        int id;
        CHECK_OK(ap_model_connect(m, links[l][0], links[l][1], NULL, &id));
        double *w = ap_model_weights(m, id);
        int n = l == 0 ? 8 : l == 1 ? 12 : l == 2 ? 16 : 12;
        for (int i = 0; i < n && w; i++) {
            seed = seed * 1103515245u + 12345u;
            w[i] = 1.6 * (((seed >> 8) & 0xffff) / 65535.0 - 0.5);
        }
    }
    return m;
}

static void fill(double *v, size_t n, unsigned seed, double scale) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = scale * (((seed >> 8) & 0xffff) / 65535.0 - 0.5);
    }
}

/* The full N x N Jacobian of the batch by central differences (independent of the
 * preconditioners' one-sided, coloured differences). */
static void full_jacobian(ap_sim *s, const double *y, double *J) {
    size_t N = ap_sim_state_size(s);
    double *yp = malloc(N * sizeof *yp), *fp = malloc(N * sizeof *fp), *fm = malloc(N * sizeof *fm);
    memcpy(yp, y, N * sizeof *y);
    for (size_t k = 0; k < N; k++) {
        double h = 1e-6 * (fabs(y[k]) + 1.0);
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

static double rel_diff(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / den);
}

/* The block preconditioner solves (I - gamma J) z = r exactly: the batch Jacobian is block-
 * diagonal over samples, so its per-sample solves equal one dense solve of the whole system. */
static void test_block_is_direct_solve(void) {
    ap_model *m = circuit(1);
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    size_t N = ap_sim_state_size(s);
    CHECK(N == B * (4 + 3 + 3));
    double *y = malloc(N * sizeof *y), *r = malloc(N * sizeof *r), *z = malloc(N * sizeof *z);
    double *zd = malloc(N * sizeof *zd), *J = malloc(N * N * sizeof *J);
    fill(y, N, 11, 1.5);
    fill(r, N, 23, 2.0);
    double x[B * 2];
    fill(x, B * 2, 5, 2.0);
    CHECK_OK(ap_sim_set_input(s, "x", x, B * 2));
    full_jacobian(s, y, J);
    const double gammas[] = {1e-3, 0.05, 0.5, 3.0};
    for (int g = 0; g < 4; g++) {
        gsl_matrix *M = gsl_matrix_alloc(N, N);
        for (size_t i = 0; i < N; i++)
            for (size_t k = 0; k < N; k++)
                gsl_matrix_set(M, i, k, (i == k) - gammas[g] * J[i * N + k]);
        gsl_permutation *perm = gsl_permutation_alloc(N);
        int sign;
        gsl_linalg_LU_decomp(M, perm, &sign);
        gsl_vector_const_view rv = gsl_vector_const_view_array(r, N);
        gsl_vector_view zv = gsl_vector_view_array(zd, N);
        gsl_linalg_LU_solve(M, perm, &rv.vector, &zv.vector);
        gsl_matrix_free(M);
        gsl_permutation_free(perm);
        CHECK_OK(ap_sim_precond_solve(s, AP_PREC_BLOCK, 0.0, y, gammas[g], r, z));
        double e = rel_diff(z, zd, N);
        if (!(e < 1e-6)) fprintf(stderr, "gamma %g: block solve off by %g\n", gammas[g], e);
        CHECK(e < 1e-6);
        /* the diagonal one is not the direct solve here (the blocks are full) */
        CHECK_OK(ap_sim_precond_solve(s, AP_PREC_DIAGONAL, 0.0, y, gammas[g], r, z));
        CHECK(rel_diff(z, zd, N) > 1e-3);
    }
    free(y), free(r), free(z), free(zd), free(J);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* The diagonal preconditioner solves (I - gamma diag J) z = r: -1/tau for the leaky
 * compartments, finite differences for the lowpass state; without self-coupling that is the
 * diagonal of the full Jacobian. */
static void test_diagonal_is_diagonal_solve(void) {
    ap_model *m = circuit(0);
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    size_t N = ap_sim_state_size(s);
    double *y = malloc(N * sizeof *y), *r = malloc(N * sizeof *r), *z = malloc(N * sizeof *z);
    double *zd = malloc(N * sizeof *zd), *J = malloc(N * N * sizeof *J);
    fill(y, N, 3, 1.0);
    fill(r, N, 9, 1.0);
    double x[B * 2];
    fill(x, B * 2, 4, 2.0);
    CHECK_OK(ap_sim_set_input(s, "x", x, B * 2));
    full_jacobian(s, y, J);
    const double gamma = 0.03;
    for (size_t i = 0; i < N; i++)
        zd[i] = r[i] / (1.0 - gamma * J[i * N + i]);
    CHECK_OK(ap_sim_precond_solve(s, AP_PREC_DIAGONAL, 0.0, y, gamma, r, z));
    CHECK(rel_diff(z, zd, N) < 1e-7);
    /* h1's leak: 1 + gamma / 0.01 = 4 */
    CHECK_NEAR(z[0], r[0] / 4.0, 1e-12);
    CHECK_FAILS(ap_sim_precond_solve(s, AP_PREC_NONE, 0.0, y, gamma, r, z), AP_EINVAL,
                "is not diagonal or block");
    free(y), free(r), free(z), free(zd), free(J);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* Every linear solver and preconditioner meets the tolerance on a stiff circuit (tau 0.01
 * against 1, with loops) against a tight dense run; options a solver would not use are
 * errors. */
static void test_every_choice_meets_rtol(void) {
    ap_model *m = circuit(1);
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    double x[B * 2];
    fill(x, B * 2, 5, 3.0);
    CHECK_OK(ap_sim_set_input(s, "x", x, B * 2));
    size_t N = ap_sim_state_size(s);
    double ref[64], got[64];
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = 3.0;
    o.rtol = 1e-12;
    o.atol = 1e-14;
    o.linsol = AP_LINSOL_DENSE;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(ap_sim_get_state(s, ref));
    const struct {
        ap_linsol_kind ls;
        ap_precond_kind pc;
    } cases[] = {{AP_LINSOL_DEFAULT, AP_PREC_DEFAULT},
                 {AP_LINSOL_KRYLOV, AP_PREC_NONE},
                 {AP_LINSOL_KRYLOV, AP_PREC_DIAGONAL},
                 {AP_LINSOL_KRYLOV, AP_PREC_BLOCK},
                 {AP_LINSOL_DENSE, AP_PREC_DEFAULT}};
    for (int rt = 0; rt < 2; rt++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            o.rtol = rt ? 1e-8 : 1e-6;
            o.atol = o.rtol * 1e-2;
            o.linsol = cases[c].ls;
            o.precond = cases[c].pc;
            ap_run_stats st;
            CHECK_OK(ap_sim_run(s, &o, &st));
            CHECK_OK(ap_sim_get_state(s, got));
            double e = rel_diff(got, ref, N);
            if (!(e < 10 * o.rtol))
                fprintf(stderr, "rtol %g linsol %d precond %d: error %g\n", o.rtol, cases[c].ls,
                        cases[c].pc, e);
            CHECK(e < 10 * o.rtol);
        }
    o.linsol = AP_LINSOL_DENSE;
    o.precond = AP_PREC_BLOCK;
    CHECK_FAILS(ap_sim_run(s, &o, NULL), AP_EINVAL, "the dense linear solver uses no precond");
    o.linsol = AP_LINSOL_DEFAULT;
    o.solver = AP_SOLVER_CVODE_ADAMS;
    CHECK_FAILS(ap_sim_run(s, &o, NULL), AP_EINVAL, "functional iteration");
    o.solver = AP_SOLVER_EULER;
    o.dt = 0.001;
    CHECK_FAILS(ap_sim_run(s, &o, NULL), AP_EINVAL, "solves no linear system");
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* max_steps bounds the whole run, also when every step is recorded (each solver call then
 * takes one step) and when many times are recorded. */
static void test_step_budget_across_calls(void) {
    ap_model *m = circuit(1);
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    double x[B * 2];
    fill(x, B * 2, 5, 3.0);
    CHECK_OK(ap_sim_set_input(s, "x", x, B * 2));
    const char *rec[] = {"h2"};
    double times[30];
    for (int k = 0; k < 30; k++)
        times[k] = 0.1 * (k + 1);
    for (int mode = 0; mode < 2; mode++)
        for (int solver = 0; solver < 2; solver++) {
            ap_run_opts o;
            ap_run_opts_default(&o);
            o.solver = solver ? AP_SOLVER_CVODE_ADAMS : AP_SOLVER_CVODE_BDF;
            o.t_end = 3.0;
            o.max_steps = 10;
            o.record = rec;
            o.n_record = 1;
            if (mode == 0)
                o.every = 1;
            else
                o.times = times, o.n_times = 30;
            ap_run_stats st;
            CHECK_FAILS(ap_sim_run(s, &o, &st), AP_ESOLVER, "max_steps = 10");
            CHECK(strstr(ap_last_error(), "CV_TOO_MUCH_WORK") != NULL);
            CHECK(st.steps <= 10);
            CHECK(st.t_reached < 3.0);
        }
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* dx/dt = x^2 / tau: from x = 1 it blows up at t = tau. */
static const ap_param_desc sq_params[] = {{"tau", 1.0, 0.0, 1e300, "time constant"}};
static const ap_compartment_desc sq_comps[] = {{"soma", "tau", NULL}};
static int sq_dynamics(const ap_neuron_ctx *c, int comp, double *out) {
    size_t n = (size_t)c->batch * (size_t)c->size;
    const double *x = c->value[comp];
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] * x[i] / c->tau[comp];
    return 0;
}
static const ap_neuron_type sq_type = {.abi_version = AP_ABI_VERSION,
                                       .struct_size = sizeof(ap_neuron_type),
                                       .name = "test.square",
                                       .doc = "dx/dt = x^2 / tau",
                                       .n_compartments = 1,
                                       .compartments = sq_comps,
                                       .rate_of = 0,
                                       .n_params = 1,
                                       .params = sq_params,
                                       .dynamics = sq_dynamics};

/* A solution that blows up in finite time stops in bounded time (max_steps left at its
 * default of 500,000), naming the variable that grows, whichever solver and recording. */
static void test_blow_up_stops(void) {
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, 2));
    CHECK_OK(ap_model_add_population(m, "g", 2, "test.square", "linear", NULL, 0));
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    const double x0[4] = {0.1, 0.2, 1.0, 0.3}; /* sample 2, unit 1 blows up at t = 1 */
    const char *rec[] = {"g"};
    for (int c = 0; c < 4; c++) {
        CHECK_OK(ap_sim_write_state(s, "g.soma", x0, 4));
        ap_run_opts o;
        ap_run_opts_default(&o);
        o.solver = c % 2 ? AP_SOLVER_CVODE_ADAMS : AP_SOLVER_CVODE_BDF;
        o.t_end = 2.0;
        o.keep_state = 1;
        if (c >= 2) o.record = rec, o.n_record = 1, o.every = 1;
        ap_run_stats st;
        int rc = ap_sim_run(s, &o, &st);
        CHECK(rc != AP_OK);
        const char *msg = ap_last_error();
        if (!strstr(msg, "g.soma[sample 1, unit 0]") && !strstr(msg, "g.soma[sample 2, unit 1]"))
            fprintf(stderr, "case %d: %s\n", c, msg);
        CHECK(strstr(msg, "g.soma[sample 1, unit 0]") || strstr(msg, "g.soma[sample 2, unit 1]"));
        CHECK(st.t_reached > 0.99 && st.t_reached < 1.0 + 1e-6);
        CHECK(st.steps < 500000);
    }
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* cvode-adams on the stiff circuit (tau 0.01 against 1) is held at its stability limit for
 * thousands of steps: the run warns that the circuit is stiff. The same circuit with tau 1
 * everywhere (x -> a -> b, no loop) runs 1,000 steps (max_step 0.2) without the warning. */
static void test_adams_stiff_warning(void) {
    ap_model *m = circuit(0);
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    double x[B * 2];
    fill(x, B * 2, 7, 2.0);
    CHECK_OK(ap_sim_set_input(s, "x", x, B * 2));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_ADAMS, o.t_end = 20.0, o.rtol = 1e-6, o.atol = 1e-8;
    ap_run_stats st;
    CHECK_OK(ap_sim_run(s, &o, &st));
    printf("adams, stiff: %ld steps; warning: %s\n", st.steps, st.stab_warning);
    CHECK(st.steps >= 500);
    CHECK(strstr(st.stab_warning, "the circuit is stiff") != NULL);
    ap_sim_free(&s);
    ap_model_free(&m);

    CHECK_OK(ap_model_new(&m, reg, B));
    ap_param slow = {"tau", 1.0};
    CHECK_OK(ap_model_add_input(m, "x", 2));
    CHECK_OK(ap_model_add_population(m, "a", 2, "rate", "tanh", &slow, 1));
    CHECK_OK(ap_model_add_population(m, "b", 2, "rate", "tanh", &slow, 1));
    CHECK_OK(ap_model_connect(m, "x", "a.soma", NULL, NULL));
    CHECK_OK(ap_model_connect(m, "a", "b.soma", NULL, NULL));
    fill(ap_model_weights(m, 0), 4, 3, 2.0);
    fill(ap_model_weights(m, 1), 4, 5, 2.0);
    CHECK_OK(ap_model_compile(m, &s));
    CHECK_OK(ap_sim_set_input(s, "x", x, B * 2));
    o.t_end = 200.0, o.rtol = 1e-9, o.atol = 1e-11, o.max_step = 0.2;
    CHECK_OK(ap_sim_run(s, &o, &st));
    printf("adams, not stiff: %ld steps; warning: \"%s\"\n", st.steps, st.stab_warning);
    CHECK(st.steps >= 500); /* long enough to be checked */
    CHECK(st.stab_warning[0] == 0);
    ap_sim_free(&s);
    ap_model_free(&m);
}

int main(void) {
    if (ap_registry_new(&reg)) {
        fprintf(stderr, "registry: %s\n", ap_last_error());
        return 1;
    }
    CHECK_OK(ap_registry_add_neuron(reg, &sq_type, "test"));
    RUN(test_block_is_direct_solve);
    RUN(test_diagonal_is_diagonal_solve);
    RUN(test_every_choice_meets_rtol);
    RUN(test_step_budget_across_calls);
    RUN(test_blow_up_stops);
    RUN(test_adams_stiff_warning);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
