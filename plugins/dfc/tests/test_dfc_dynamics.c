/* test_dfc_dynamics.c — the DFC network in continuous time: the declared-order Euler schemes of
 * the reference converge to a tight cvode-bdf solution at first order as dt -> 0, and the
 * forward update (5) accumulated by CVODE's quadrature (a time average) agrees with
 * Richardson-extrapolated Euler updates. */
#include <math.h>

#include "dfc_test.h"

enum { B = 2, L = 3, NL = 2 };
static const double T = 1.0;

static ap_model *build(void) {
    net_spec sp = {.B = B,
                   .L = L,
                   .n = {3, 4, 3, 2},
                   .act = {NULL, "tanh", "tanh", "linear"},
                   .tau_v = 0.2,
                   .tau_A = 0.0,
                   .ctl = "dfc.pi",
                   .k_p = 1.5,
                   .alpha = 0.1,
                   .w_scale = 0.8,
                   .q_scale = 0.8};
    rng_state = 777;
    return net_build(&sp);
}

static void set_inputs(ap_sim *s) {
    double x[B * 3], t[B * NL];
    rng_state = 4242;
    fill(x, B * 3, 1.0);
    fill(t, B * NL, 1.0);
    CHECK_OK(ap_sim_set_input(s, "x", x, B * 3));
    CHECK_OK(ap_sim_set_input(s, "target", t, B * NL));
}

/* every soma and u at the end of the last run */
enum { NSTATE = B * (4 + 3 + 2) + B * NL };
static void read_state(ap_sim *s, double *out) {
    CHECK_OK(ap_sim_read(s, "h1.soma", out, B * 4));
    CHECK_OK(ap_sim_read(s, "h2.soma", out + B * 4, B * 3));
    CHECK_OK(ap_sim_read(s, "h3.soma", out + B * 7, B * 2));
    CHECK_OK(ap_sim_read(s, "ctl.u", out + B * 9, B * NL));
}

/* the accumulated forward updates of W1..W3 and b1..b3, concatenated */
enum { NUPD = 4 * 3 + 4 + 3 * 4 + 3 + 2 * 3 + 2 };
static void read_update(ap_sim *s, ap_model *m, double *out) {
    const int rows[] = {0, 4, 3, 2}, cols[] = {0, 3, 4, 3};
    size_t k = 0;
    char name[16];
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "W%d", i);
        const double *dW = NULL, *db = NULL;
        double w;
        CHECK_OK(ap_sim_accumulator(s, proj_id(m, name), &dW, &db, &w));
        if (!dW || !db) return;
        for (int q = 0; q < rows[i] * cols[i]; q++)
            out[k++] = dW[q];
        for (int q = 0; q < rows[i]; q++)
            out[k++] = db[q];
    }
}

static double norm_diff(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}
static double norm(const double *a, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * a[i];
    return sqrt(s);
}

static void cvode_run(ap_sim *s) {
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = T;
    o.rtol = 1e-12;
    o.atol = 1e-14;
    o.linsol = AP_LINSOL_DENSE;
    o.quad_errcon = 1;
    CHECK_OK(ap_sim_run(s, &o, NULL));
}

static void euler_run(ap_sim *s, double dt, int inst, int proactive) {
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_EULER;
    o.dt = dt;
    o.t_end = T;
    o.ordered = 1;
    static const char *up[] = {"ctl", "h1", "h2", "h3"}, *down[] = {"ctl", "h3", "h2", "h1"};
    static const char *prev[] = {"ctl.u"};
    o.order = inst ? up : down;
    o.n_order = 4;
    o.previous = proactive ? NULL : prev;
    o.n_previous = proactive ? 0 : 1;
    CHECK_OK(ap_sim_run(s, &o, NULL));
}

static void test_euler_first_order(void) {
    ap_model *m = build();
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    set_inputs(s);
    double exact[NSTATE], got[NSTATE];
    cvode_run(s);
    read_state(s, exact);
    for (int inst = 0; inst <= 1; inst++)
        for (int pro = 0; pro <= 1; pro++) {
            double err[3];
            for (int k = 0; k < 3; k++) {
                euler_run(s, 0.01 / (1 << k), inst, pro);
                read_state(s, got);
                err[k] = norm_diff(got, exact, NSTATE) / norm(exact, NSTATE);
            }
            double p1 = log2(err[0] / err[1]), p2 = log2(err[1] / err[2]);
            printf("inst=%d proactive=%d: errors %.3g %.3g %.3g, orders %.3f %.3f\n", inst, pro,
                   err[0], err[1], err[2], p1, p2);
            CHECK(err[0] > 1e-6); /* the error is real, not rounding */
            CHECK_NEAR(p1, 1.0, 0.1);
            CHECK_NEAR(p2, 1.0, 0.1);
        }
    ap_sim_free(&s);
    ap_model_free(&m);
}

static void test_update_richardson(void) {
    ap_model *m = build();
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    set_inputs(s);
    double ucv[NUPD], u1[NUPD], u2[NUPD], rich[NUPD];
    cvode_run(s);
    read_update(s, m, ucv);
    /* left Riemann sum: the mean of points 0..N-1 is (1/T) sum dt f(t_k), a first-order
     * quadrature of the time average */
    CHECK_OK(ap_sim_set_accumulation(s, AP_ACC_LEFT));
    for (int inst = 0; inst <= 1; inst++)
        for (int pro = 0; pro <= 1; pro++) {
            /* Richardson at dt and at 2 dt: second order, so its error drops by ~4 */
            double er[2], e1 = 0, e2 = 0;
            for (int k = 0; k < 2; k++) {
                const double dt = k == 0 ? 2e-4 : 1e-4;
                euler_run(s, dt, inst, pro);
                read_update(s, m, u1);
                euler_run(s, dt / 2, inst, pro);
                read_update(s, m, u2);
                for (int q = 0; q < NUPD; q++)
                    rich[q] = 2 * u2[q] - u1[q];
                e1 = norm_diff(u1, ucv, NUPD) / norm(ucv, NUPD);
                e2 = norm_diff(u2, ucv, NUPD) / norm(ucv, NUPD);
                er[k] = norm_diff(rich, ucv, NUPD) / norm(ucv, NUPD);
            }
            printf("inst=%d proactive=%d: update errors U(1e-4) %.3g, U(5e-5) %.3g, Richardson "
                   "%.3g (from 2e-4: %.3g, order %.2f)\n",
                   inst, pro, e1, e2, er[1], er[0], log2(er[0] / er[1]));
            CHECK_NEAR(log2(e1 / e2), 1.0, 0.1);
            CHECK(er[1] < 1e-6);
            CHECK(er[1] < 0.01 * e2);
            CHECK_NEAR(log2(er[0] / er[1]), 2.0, 0.3);
        }
    ap_sim_free(&s);
    ap_model_free(&m);
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_euler_first_order);
    RUN(test_update_richardson);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
