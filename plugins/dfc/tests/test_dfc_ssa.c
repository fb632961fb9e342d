/* test_dfc_ssa.c — dfc.ssa against the simulated steady state: Lemma 1 linearises the network
 * around its feedforward state, so the steady state of a long cvode-bdf run and the analytic
 * one differ by O(lambda^2) (a log-log slope of 2 over three target stepsizes), and so do the
 * DFC-SS and DFC-SSA forward updates. */
#include <math.h>

#include "dfc_test.h"

enum { B = 3, L = 3, N0 = 4, NL = 3 };

static ap_model *build(void) {
    net_spec sp = {.B = B,
                   .L = L,
                   .n = {N0, 5, 4, NL},
                   .act = {NULL, "tanh", "tanh", "linear"},
                   .tau_v = 0.2,
                   .tau_A = 0.0,
                   .ctl = "dfc.pi",
                   .k_p = 1.0,
                   .alpha = 0.1,
                   .w_scale = 0.9,
                   .q_scale = 0.5};
    rng_state = 99;
    return net_build(&sp);
}

/* the forward weights W1..W3, b1..b3 of an optimiser's buffers, concatenated */
enum { NUPD = 5 * N0 + 5 + 4 * 5 + 4 + NL * 4 + NL };
static void read_grads(ap_optim *o, ap_model *m, double *out) {
    const int rows[] = {0, 5, 4, NL}, cols[] = {0, N0, 5, 4};
    size_t k = 0;
    char name[16];
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "W%d", i);
        int id = proj_id(m, name);
        const double *gw = ap_optim_grad_w(o, id), *gb = ap_optim_grad_b(o, id);
        CHECK(gw && gb);
        if (!gw || !gb) return;
        for (int q = 0; q < rows[i] * cols[i]; q++)
            out[k++] = gw[q];
        for (int q = 0; q < rows[i]; q++)
            out[k++] = gb[q];
    }
}

static double norm(const double *a, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * a[i];
    return sqrt(s);
}

static void test_ssa_matches_steady_state(void) {
    ap_model *m = build();
    CHECK_OK(KCALL("dfc.weight_product", a_obj("model", AP_ARG_MODEL, m)));
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    int ids[3] = {proj_id(m, "W1"), proj_id(m, "W2"), proj_id(m, "W3")};
    ap_optim_opts oo;
    ap_optim_opts_default(&oo);
    ap_optim *opt_ssa = NULL, *opt_ss = NULL;
    CHECK_OK(ap_optim_new(&opt_ssa, m, ids, 3, &oo));
    CHECK_OK(ap_optim_new(&opt_ss, m, ids, 3, &oo));
    if (!s || !opt_ssa || !opt_ss) return;

    double x[B * N0], y[B * NL], rminus[B * NL], rstar[B * NL];
    rng_state = 5;
    fill(x, B * N0, 1.0);
    fill(y, B * NL, 1.0);
    CHECK_OK(ap_sim_set_input(s, "x", x, B * N0));
    CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0),
                   a_mat("out", rminus, B, NL)));
    /* the start state of the simulation is the feedforward pass */
    double r0[B * NL];
    CHECK_OK(ap_sim_set_input(s, "target", rminus, B * NL));
    CHECK_OK(ap_sim_reset(s));
    CHECK_OK(ap_sim_read(s, "h3.rate", r0, B * NL));
    CHECK(max_abs_diff(r0, rminus, B * NL) < 1e-14);

    const double alpha = 0.1, lambdas[3] = {0.4, 0.2, 0.1};
    double err_r[3], err_u[3], err_g[3];
    for (int k = 0; k < 3; k++) {
        CHECK_OK(KCALL("dfc.targets", a_mat("rL", rminus, B, NL), a_mat("y", y, B, NL),
                       a_str("loss", "mse"), a_num("lambda", lambdas[k]), a_str("mode", "sample"),
                       a_mat("out", rstar, B, NL)));
        double r_ssa[B * NL], u_ssa[B * NL], r_sim[B * NL], u_sim[B * NL], r_prev[B * NL];
        CHECK_OK(ap_optim_zero(opt_ssa));
        CHECK_OK(ap_optim_zero(opt_ss));
        CHECK_OK(KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0),
                       a_mat("target", rstar, B, NL), a_num("alpha", alpha),
                       a_obj("optim", AP_ARG_OPTIM, opt_ssa), a_mat("rL_out", r_ssa, B, NL),
                       a_mat("u_out", u_ssa, B, NL)));
        /* the simulated steady state */
        CHECK_OK(ap_sim_set_input(s, "target", rstar, B * NL));
        ap_run_opts o;
        ap_run_opts_default(&o);
        o.solver = AP_SOLVER_CVODE_BDF;
        o.rtol = 1e-12;
        o.atol = 1e-14;
        o.linsol = AP_LINSOL_DENSE;
        o.t_end = 280;
        o.accumulate = 0;
        CHECK_OK(ap_sim_run(s, &o, NULL));
        CHECK_OK(ap_sim_read(s, "h3.rate", r_prev, B * NL));
        o.t_end = 300;
        CHECK_OK(ap_sim_run(s, &o, NULL));
        CHECK_OK(ap_sim_read(s, "h3.rate", r_sim, B * NL));
        CHECK_OK(ap_sim_read(s, "ctl.u", u_sim, B * NL));
        /* settled: nothing moves any more, and e = alpha u */
        CHECK(max_abs_diff(r_prev, r_sim, B * NL) < 1e-11);
        for (int q = 0; q < B * NL; q++)
            CHECK_NEAR(rstar[q] - r_sim[q], alpha * u_sim[q], 1e-10);
        /* DFC-SS: the forward rule at the last state, as the reference's descent direction */
        CHECK_OK(ap_sim_accumulate_state(s));
        CHECK_OK(ap_optim_add_from_sim(opt_ss, s, -2.0 / B));
        double g_ssa[NUPD], g_ss[NUPD], d[NUPD];
        read_grads(opt_ssa, m, g_ssa);
        read_grads(opt_ss, m, g_ss);
        for (int q = 0; q < NUPD; q++)
            d[q] = g_ssa[q] - g_ss[q];
        err_r[k] = max_abs_diff(r_ssa, r_sim, B * NL);
        err_u[k] = max_abs_diff(u_ssa, u_sim, B * NL);
        err_g[k] = norm(d, NUPD);
        printf("lambda %.3g: |dr_L| %.3g, r_L error %.3g, u error %.3g, |update| %.3g, update "
               "error %.3g\n",
               lambdas[k], max_abs_diff(rstar, rminus, B * NL), err_r[k], err_u[k],
               norm(g_ss, NUPD), err_g[k]);
        CHECK(err_g[k] < 0.5 * lambdas[k] * norm(g_ss, NUPD));
    }
    double slope_r = log(err_r[0] / err_r[2]) / log(lambdas[0] / lambdas[2]);
    double slope_u = log(err_u[0] / err_u[2]) / log(lambdas[0] / lambdas[2]);
    double slope_g = log(err_g[0] / err_g[2]) / log(lambdas[0] / lambdas[2]);
    printf("slopes of the error against lambda: r_L %.3f, u %.3f, update %.3f\n", slope_r, slope_u,
           slope_g);
    CHECK_NEAR(slope_r, 2.0, 0.3);
    CHECK_NEAR(slope_u, 2.0, 0.3);
    CHECK_NEAR(slope_g, 2.0, 0.3);
    ap_optim_free(&opt_ssa);
    ap_optim_free(&opt_ss);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* alpha = 0 with JQ singular is refused, naming the sample */
static void test_ssa_singular(void) {
    ap_model *m = build();
    for (int i = 1; i <= L; i++) {
        char name[16];
        snprintf(name, sizeof name, "Q%d", i);
        int rows = i == 1 ? 5 : i == 2 ? 4 : NL;
        memset(proj_w(m, name), 0, (size_t)rows * NL * sizeof(double));
    }
    double x[B * N0] = {0}, t[B * NL] = {0};
    CHECK_FAILS(KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0),
                      a_mat("target", t, B, NL), a_num("alpha", 0.0)),
                AP_EINVAL, "singular for sample 1");
    CHECK_FAILS(KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0 + 1),
                      a_mat("target", t, B, NL), a_num("alpha", 0.1)),
                AP_ESIZE, "x has shape");
    CHECK_FAILS(KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0),
                      a_mat("target", t, B, NL)),
                AP_EINVAL, "missing argument alpha");
    ap_model_free(&m);
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_ssa_matches_steady_state);
    RUN(test_ssa_singular);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
