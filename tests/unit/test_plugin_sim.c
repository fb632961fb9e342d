/* test_plugin_sim.c — a neuron type from a plugin, simulated: the example plugin's adapting
 * neuron (a `dynamics` callback with a dynamic and an instantaneous soma) against closed
 * forms. */
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>

#include "apical/error.h"
#include "apical/model.h"
#include "apical/plugin.h"
#include "apical/registry.h"
#include "apical/sim.h"
#include "check.h"

static ap_registry *reg;

static ap_sim *build(ap_model **m, double tau_m, double tau_a, double g, double I) {
    CHECK_OK(ap_model_new(m, reg, 1));
    CHECK_OK(ap_model_add_input(*m, "x", 1));
    ap_param p[3] = {{"tau_m", tau_m}, {"tau_a", tau_a}, {"g", g}};
    CHECK_OK(ap_model_add_population(*m, "n", 1, "example.adaptive", "linear", p, 3));
    int id;
    CHECK_OK(ap_model_connect(*m, "x", "n.soma", NULL, &id));
    ap_model_weights(*m, id)[0] = 1.0;
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(*m, &s));
    CHECK_OK(ap_sim_set_input(s, "x", &I, 1));
    return s;
}

static void test_dynamic_soma_exact(void) {
    const double tau_m = 0.5, tau_a = 2.0, g = 0.8, I = 1.0, T = 3.0;
    ap_model *m;
    ap_sim *s = build(&m, tau_m, tau_a, g, I);
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = T;
    o.rtol = 1e-10;
    o.atol = 1e-12;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    double x, a;
    CHECK_OK(ap_sim_read(s, "n.soma", &x, 1));
    CHECK_OK(ap_sim_read(s, "n.adapt", &a, 1));
    /* z = (x, a, 1): x' = (-x - g a + I)/tau_m, a' = (x - a)/tau_a */
    gsl_matrix *A = gsl_matrix_calloc(3, 3), *E = gsl_matrix_alloc(3, 3);
    gsl_matrix_set(A, 0, 0, -T / tau_m);
    gsl_matrix_set(A, 0, 1, -g * T / tau_m);
    gsl_matrix_set(A, 0, 2, I * T / tau_m);
    gsl_matrix_set(A, 1, 0, T / tau_a);
    gsl_matrix_set(A, 1, 1, -T / tau_a);
    gsl_linalg_exponential_ss(A, E, GSL_PREC_DOUBLE);
    CHECK_NEAR(x, gsl_matrix_get(E, 0, 2), 1e-8);
    CHECK_NEAR(a, gsl_matrix_get(E, 1, 2), 1e-8);
    gsl_matrix_free(A);
    gsl_matrix_free(E);
    /* declared-order Euler, one step by hand: soma first, then adapt reads the new soma */
    o.solver = AP_SOLVER_EULER;
    o.ordered = 1;
    o.dt = 0.1;
    o.steps = 1;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(ap_sim_read(s, "n.soma", &x, 1));
    CHECK_OK(ap_sim_read(s, "n.adapt", &a, 1));
    double x1 = 0.1 / tau_m * I, a1 = 0.1 / tau_a * x1;
    CHECK_CLOSE(x, x1, 0, 4); /* see test_sim.c SIM_ULPS */
    CHECK_CLOSE(a, a1, 0, 4);
    ap_sim_free(&s);
    ap_model_free(&m);
}

static void test_instant_soma_exact(void) {
    const double tau_a = 2.0, g = 0.8, I = 1.0, T = 3.0;
    ap_model *m;
    ap_sim *s = build(&m, 0.0, tau_a, g, I);
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_ADAMS;
    o.t_end = T;
    o.rtol = 1e-10;
    o.atol = 1e-12;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    double x, a, r;
    CHECK_OK(ap_sim_read(s, "n.adapt", &a, 1));
    CHECK_OK(ap_sim_read(s, "n.soma", &x, 1));
    CHECK_OK(ap_sim_read(s, "n.rate", &r, 1));
    /* x = I - g a, a' = (I - (1 + g) a)/tau_a */
    double a_exact = I / (1 + g) * (1 - exp(-T * (1 + g) / tau_a));
    CHECK_NEAR(a, a_exact, 1e-8);
    CHECK_NEAR(x, I - g * a, 1e-14);
    CHECK_NEAR(r, x, 0);
    ap_sim_free(&s);
    ap_model_free(&m);
}

int main(void) {
    if (ap_registry_new(&reg)) return 1;
    if (ap_plugin_load(reg, "example", NULL)) {
        fprintf(stderr, "cannot load the example plugin: %s\n", ap_last_error());
        return 1;
    }
    RUN(test_dynamic_soma_exact);
    RUN(test_instant_soma_exact);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
