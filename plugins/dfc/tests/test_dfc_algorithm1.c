/* test_dfc_algorithm1.c — the engine's declared-order Euler on a DFC network against a direct
 * implementation of the published fixed-step scheme (Algorithm 1 of
 * docs/equations.md), number for number: instant transmission on/off,
 * proactive controller on/off, k_p > 0 and k_p = 0, instantaneous and dynamic apical
 * compartments. */
#include <math.h>

#include "dfc_test.h"

enum { B = 2, L = 3 };
static const int N[L + 1] = {3, 4, 3, 2};

/* ---- Algorithm 1, written out from docs/equations.md ------------------------------------ */
typedef struct ref {
    double W[L + 1][16], b[L + 1][4], Q[L + 1][8];
    double x[B * 3], rstar[B * 2];
    double v[L + 1][B * 4], vA[L + 1][B * 4], vB[L + 1][B * 4], r[L + 1][B * 4];
    double u[B * 2], u_int[B * 2];
    double dt, rho, tau_A, k_p, alpha; /* tau_A = -1: vA[k+1] = Q u exactly */
    int inst, proactive;
} ref;

static double phi(int i, double v) {
    return i == L ? v : tanh(v);
}

/* vB_i = W_i r_{i-1} + b_i for sample s */
static void basal(const ref *R, int i, int s, const double *rprev, double *out) {
    for (int j = 0; j < N[i]; j++) {
        double acc = R->b[i][j];
        for (int k = 0; k < N[i - 1]; k++)
            acc += R->W[i][j * N[i - 1] + k] * rprev[s * N[i - 1] + k];
        out[s * N[i] + j] = acc;
    }
}

static void ref_init(ref *R) {
    for (int s = 0; s < B; s++)
        for (int i = 1; i <= L; i++) {
            basal(R, i, s, i == 1 ? R->x : R->r[i - 1], R->v[i]);
            for (int j = 0; j < N[i]; j++) {
                R->vB[i][s * N[i] + j] = R->v[i][s * N[i] + j];
                R->vA[i][s * N[i] + j] = 0;
                R->r[i][s * N[i] + j] = phi(i, R->v[i][s * N[i] + j]);
            }
        }
    memset(R->u, 0, sizeof R->u);
    memset(R->u_int, 0, sizeof R->u_int);
}

static void ref_step(ref *R) {
    const int nL = N[L];
    double u_new[B * 2];
    /* 1-2: the controller, from r_L[k] */
    for (int q = 0; q < B * nL; q++) {
        double e = R->rstar[q] - R->r[L][q];
        if (R->k_p > 0) {
            R->u_int[q] = R->u_int[q] + R->dt * (e - R->alpha * R->u[q]);
            u_new[q] = R->u_int[q] + R->k_p * e;
        } else {
            u_new[q] = R->u[q] + R->dt * (e - R->alpha * R->u[q]);
        }
    }
    const double *uu = R->proactive ? u_new : R->u;
    /* 3: the layers, increasing (instant transmission) or decreasing */
    for (int k = 0; k < L; k++) {
        int i = R->inst ? k + 1 : L - k;
        for (int s = 0; s < B; s++) {
            basal(R, i, s, i == 1 ? R->x : R->r[i - 1], R->vB[i]);
            for (int j = 0; j < N[i]; j++) {
                const int q = s * N[i] + j;
                double qu = 0;
                for (int c = 0; c < nL; c++)
                    qu += R->Q[i][j * nL + c] * uu[s * nL + c];
                if (R->tau_A == -1)
                    R->vA[i][q] = qu;
                else
                    R->vA[i][q] = R->vA[i][q] + R->dt / R->tau_A * (-R->vA[i][q] + qu);
                R->v[i][q] = R->v[i][q] + R->dt / R->rho * (R->vA[i][q] + R->vB[i][q] - R->v[i][q]);
                R->r[i][q] = phi(i, R->v[i][q]);
            }
        }
    }
    memcpy(R->u, u_new, sizeof u_new);
}

/* ---- the engine -------------------------------------------------------------------------- */
static double worst; /* the largest difference seen, for the log */

static void compare(ap_sim *s, const ref *R, const char *what) {
    char name[32];
    double got[B * 4];
    double err = 0;
    for (int i = 1; i <= L; i++) {
        const char *comp[] = {"soma", "apical", "basal", "rate"};
        const double *want[] = {R->v[i], R->vA[i], R->vB[i], R->r[i]};
        for (int c = 0; c < 4; c++) {
            snprintf(name, sizeof name, "h%d.%s", i, comp[c]);
            CHECK_OK(ap_sim_read(s, name, got, (size_t)B * N[i]));
            for (int q = 0; q < B * N[i]; q++) {
                double d = fabs(got[q] - want[c][q]) / fmax(1.0, fabs(want[c][q]));
                if (!(d <= 1e-14)) {
                    fprintf(stderr, "%s: %s[%d] = %.17g, reference %.17g\n", what, name, q, got[q],
                            want[c][q]);
                    check_test_failed_ = 1;
                }
                if (d > err) err = d;
            }
        }
    }
    CHECK_OK(ap_sim_read(s, "ctl.u", got, (size_t)B * N[L]));
    for (int q = 0; q < B * N[L]; q++) {
        double d = fabs(got[q] - R->u[q]) / fmax(1.0, fabs(R->u[q]));
        if (!(d <= 1e-14)) {
            fprintf(stderr, "%s: ctl.u[%d] = %.17g, reference %.17g\n", what, q, got[q], R->u[q]);
            check_test_failed_ = 1;
        }
        if (d > err) err = d;
    }
    if (err > worst) worst = err;
}

/* One configuration: engine tau_A (0 = instantaneous) against reference tau_A (-1 = exact). */
static void run_case(const char *ctl, double k_p, double tau_A_engine, double tau_A_ref, int inst,
                     int proactive) {
    const double dt = 0.05, rho = 0.2, alpha = 0.1;
    net_spec sp = {.B = B,
                   .L = L,
                   .n = {3, 4, 3, 2},
                   .act = {NULL, "tanh", "tanh", "linear"},
                   .tau_v = rho,
                   .tau_A = tau_A_engine,
                   .ctl = ctl,
                   .k_p = k_p,
                   .alpha = alpha,
                   .w_scale = 0.8,
                   .q_scale = 0.8};
    rng_state = 12345;
    ap_model *m = net_build(&sp);
    ref R;
    memset(&R, 0, sizeof R);
    char name[16];
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "W%d", i);
        memcpy(R.W[i], proj_w(m, name), (size_t)N[i] * N[i - 1] * sizeof(double));
        memcpy(R.b[i], proj_b(m, name), (size_t)N[i] * sizeof(double));
        snprintf(name, sizeof name, "Q%d", i);
        memcpy(R.Q[i], proj_w(m, name), (size_t)N[i] * N[L] * sizeof(double));
    }
    fill(R.x, B * 3, 1.0);
    fill(R.rstar, B * 2, 1.0);
    R.dt = dt;
    R.rho = rho;
    R.tau_A = tau_A_ref;
    R.k_p = k_p;
    R.alpha = alpha;
    R.inst = inst;
    R.proactive = proactive;

    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    CHECK_OK(ap_sim_set_input(s, "x", R.x, B * 3));
    CHECK_OK(ap_sim_set_input(s, "target", R.rstar, B * 2));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_EULER;
    o.ordered = 1;
    o.dt = dt;
    const char *up[] = {"ctl", "h1", "h2", "h3"}, *down[] = {"ctl", "h3", "h2", "h1"};
    const char *prev[] = {"ctl.u"};
    o.order = inst ? up : down;
    o.n_order = 4;
    o.previous = proactive ? NULL : prev;
    o.n_previous = proactive ? 0 : 1;
    char what[160];
    for (int steps = 2; steps <= 5; steps += 3) {
        o.steps = steps;
        CHECK_OK(ap_sim_run(s, &o, NULL));
        ref_init(&R);
        for (int k = 0; k < steps; k++)
            ref_step(&R);
        snprintf(what, sizeof what, "%s k_p=%g tau_A=%g/%g inst=%d proactive=%d steps=%d", ctl, k_p,
                 tau_A_engine, tau_A_ref, inst, proactive, steps);
        compare(s, &R, what);
    }
    ap_sim_free(&s);
    ap_model_free(&m);
}

static void test_algorithm1_instantaneous_apical(void) {
    for (int inst = 0; inst <= 1; inst++)
        for (int pro = 0; pro <= 1; pro++) {
            run_case("dfc.pi", 1.5, 0.0, -1, inst, pro);
            run_case("dfc.pi", 0.0, 0.0, -1, inst, pro);
            run_case("dfc.i", 0.0, 0.0, -1, inst, pro);
        }
}

/* The reference's tau_A = -1 means tau_A = dt: vA[k+1] = vA[k] + (Q u - vA[k]) = Q u; the
 * engine's tau_A = 0 computes vA = Q u directly. */
static void test_algorithm1_tau_A_dt(void) {
    for (int inst = 0; inst <= 1; inst++)
        for (int pro = 0; pro <= 1; pro++) {
            run_case("dfc.pi", 1.5, 0.0, 0.05, inst, pro);
            run_case("dfc.pi", 1.5, 0.05, -1, inst, pro);
            run_case("dfc.pi", 0.0, 0.05, 0.05, inst, pro);
        }
}

static void test_algorithm1_dynamic_apical(void) {
    for (int inst = 0; inst <= 1; inst++)
        for (int pro = 0; pro <= 1; pro++) {
            run_case("dfc.pi", 1.5, 0.3, 0.3, inst, pro);
            run_case("dfc.pi", 0.0, 0.3, 0.3, inst, pro);
        }
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_algorithm1_instantaneous_apical);
    RUN(test_algorithm1_tau_A_dt);
    RUN(test_algorithm1_dynamic_apical);
    printf("largest relative difference from Algorithm 1: %.3g\n", worst);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
