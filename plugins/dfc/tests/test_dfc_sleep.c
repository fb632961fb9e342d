/* test_dfc_sleep.c — the sleep phase (12), (13) of direct feedback learning, number for number:
 * the engine's euler-maruyama in declared order against a direct implementation of the
 * reference's noisy scheme (Algorithm 1 with noise on the apical compartments, u[k] in the
 * apical update, instantaneous transmission) that draws the same normals (the engine's stream
 * of the run's seed, apical/noise.h, in the engine's order); dfc.feedback_grad against the
 * hand-computed shifted sum of the same trajectory; dfc.copy_weights. */
#include <math.h>

#include "apical/noise.h"

#include "dfc_test.h"

enum { B = 2, L = 2, STEPS = 3 };
static const int N[L + 1] = {3, 4, 2};
static const double DT = 0.01, RHO = 0.05, TAU_A = 0.3, K_P = 0.4, ALPHA = 0.25, SIGMA = 0.7;
static const unsigned long SEED = 20211206;

/* ---- the reference's sleep phase, written out from docs/equations.md -------------------- */
typedef struct ref {
    double W[L + 1][12], b[L + 1][4], Q[L + 1][8];
    double x[B * 3], rstar[B * 2];
    double v[L + 1][B * 4], vA[L + 1][B * 4], vB[L + 1][B * 4], r[L + 1][B * 4];
    double u[B * 2], u_int[B * 2];
    /* the trajectory: u[t] and vA_i[t] at the points t = 0..STEPS */
    double u_t[STEPS + 1][B * 2], vA_t[STEPS + 1][L + 1][B * 4];
} ref;

static double phi(int i, double v) {
    return i == L ? v : tanh(v);
}

static void basal(const ref *R, int i, int s, const double *rprev, double *out) {
    for (int j = 0; j < N[i]; j++) {
        double acc = R->b[i][j];
        for (int k = 0; k < N[i - 1]; k++)
            acc += R->W[i][j * N[i - 1] + k] * rprev[s * N[i - 1] + k];
        out[s * N[i] + j] = acc;
    }
}

static void save_point(ref *R, int t) {
    memcpy(R->u_t[t], R->u, sizeof R->u);
    for (int i = 1; i <= L; i++)
        memcpy(R->vA_t[t][i], R->vA[i], sizeof R->vA[i]);
}

/* v[0] = vB[0] = v^-, vA[0] = 0, u[0] = u_int[0] = 0; the target is the feedforward output */
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
    memcpy(R->rstar, R->r[L], sizeof R->rstar);
    memset(R->u, 0, sizeof R->u);
    memset(R->u_int, 0, sizeof R->u_int);
    save_point(R, 0);
}

/* One step k -> k+1. The normals of layer i are drawn as the engine draws them: B x n_i values
 * in index order (sample-major) when layer i is stepped. */
static void ref_step(ref *R, ap_noise *rng, int k) {
    const int nL = N[L];
    double u_new[B * 2];
    for (int q = 0; q < B * nL; q++) {
        double e = R->rstar[q] - R->r[L][q];
        R->u_int[q] = R->u_int[q] + DT * (e - ALPHA * R->u[q]);
        u_new[q] = R->u_int[q] + K_P * e;
    }
    for (int i = 1; i <= L; i++) {
        double xi[B * 4];
        ap_noise_normal(rng, xi, (size_t)B * N[i]);
        for (int s = 0; s < B; s++) {
            basal(R, i, s, i == 1 ? R->x : R->r[i - 1], R->vB[i]);
            for (int j = 0; j < N[i]; j++) {
                const int q = s * N[i] + j;
                double qu = 0;
                for (int c = 0; c < nL; c++) /* not proactive: u[k] */
                    qu += R->Q[i][j * nL + c] * R->u[s * nL + c];
                R->vA[i][q] = R->vA[i][q] + DT / TAU_A * (-R->vA[i][q] + qu) +
                              SIGMA * sqrt(DT) / TAU_A * xi[q];
                R->v[i][q] = R->v[i][q] + DT / RHO * (R->vA[i][q] + R->vB[i][q] - R->v[i][q]);
                R->r[i][q] = phi(i, R->v[i][q]);
            }
        }
    }
    memcpy(R->u, u_new, sizeof u_new);
    save_point(R, k + 1);
}

/* ---- the engine -------------------------------------------------------------------------- */
static ap_model *sleep_model(ref *R) {
    net_spec sp = {.B = B,
                   .L = L,
                   .n = {3, 4, 2},
                   .act = {NULL, "tanh", "linear"},
                   .tau_v = RHO,
                   .tau_A = TAU_A,
                   .ctl = "dfc.pi",
                   .k_p = K_P,
                   .alpha = ALPHA,
                   .w_scale = 0.9,
                   .q_scale = 0.9,
                   .q_plastic = 1};
    rng_state = 777;
    ap_model *m = net_build(&sp);
    memset(R, 0, sizeof *R);
    char name[16];
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "W%d", i);
        memcpy(R->W[i], proj_w(m, name), (size_t)N[i] * N[i - 1] * sizeof(double));
        memcpy(R->b[i], proj_b(m, name), (size_t)N[i] * sizeof(double));
        snprintf(name, sizeof name, "Q%d", i);
        memcpy(R->Q[i], proj_w(m, name), (size_t)N[i] * N[L] * sizeof(double));
    }
    fill(R->x, B * 3, 1.0);
    return m;
}

static const char *const ORDER[] = {"ctl", "h1", "h2"};
static const char *const PREV[] = {"ctl.u"};
static const char *const NOISE[] = {"h1.apical", "h2.apical"};
static const double SIGMAS[] = {SIGMA, SIGMA};
static const char *const RECORD[] = {"ctl.u", "h1.apical", "h2.apical"};

static void sleep_opts(ap_run_opts *o, int steps) {
    ap_run_opts_default(o);
    o->solver = AP_SOLVER_EULER_MARUYAMA;
    o->dt = DT;
    o->steps = steps;
    o->ordered = 1;
    o->order = ORDER;
    o->n_order = 3;
    o->previous = PREV;
    o->n_previous = 1;
    o->noise = NOISE;
    o->sigma = SIGMAS;
    o->n_noise = 2;
    o->seed = SEED;
    o->record = RECORD;
    o->n_record = 3;
    o->every = 1;
    o->accumulate = 0;
}

/* The reference trajectory of `steps` steps. */
static void ref_run(ref *R, int steps) {
    ap_noise *rng;
    CHECK_OK(ap_noise_new(&rng, SEED));
    ref_init(R);
    for (int k = 0; k < steps; k++)
        ref_step(R, rng, k);
    ap_noise_free(&rng);
}

static double rel(double got, double want) {
    return fabs(got - want) / fmax(1.0, fabs(want));
}

static void test_sleep_step_matches_reference(void) {
    ref R;
    ap_model *m = sleep_model(&R);
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    CHECK_OK(ap_sim_set_input(s, "x", R.x, B * 3));
    double worst = 0;
    for (int steps = 2; steps <= STEPS; steps++) {
        ref_run(&R, steps);
        CHECK_OK(ap_sim_set_input(s, "target", R.rstar, B * 2));
        ap_run_opts o;
        sleep_opts(&o, steps);
        CHECK_OK(ap_sim_run(s, &o, NULL));
        /* the final state, every compartment */
        double got[B * 4];
        char name[32];
        for (int i = 1; i <= L; i++) {
            const char *comp[] = {"soma", "apical", "basal", "rate"};
            const double *want[] = {R.v[i], R.vA[i], R.vB[i], R.r[i]};
            for (int c = 0; c < 4; c++) {
                snprintf(name, sizeof name, "h%d.%s", i, comp[c]);
                CHECK_OK(ap_sim_read(s, name, got, (size_t)B * N[i]));
                for (int q = 0; q < B * N[i]; q++) {
                    double d = rel(got[q], want[c][q]);
                    if (!(d <= 1e-14))
                        fprintf(stderr, "steps %d: %s[%d] = %.17g, reference %.17g\n", steps, name,
                                q, got[q], want[c][q]);
                    CHECK(d <= 1e-14);
                    worst = fmax(worst, d);
                }
            }
        }
        CHECK_OK(ap_sim_read(s, "ctl.u", got, B * 2));
        for (int q = 0; q < B * 2; q++) {
            CHECK(rel(got[q], R.u[q]) <= 1e-14);
            worst = fmax(worst, rel(got[q], R.u[q]));
        }
        /* the recordings: every point */
        for (int k = 0; k <= L; k++) {
            const double *data;
            size_t nt;
            int width;
            CHECK_OK(ap_sim_recording(s, k, &data, NULL, &nt, &width));
            CHECK(nt == (size_t)steps + 1);
            CHECK(width == B * (k == 0 ? N[L] : N[k]));
            for (size_t t = 0; t < nt && t <= (size_t)steps; t++)
                for (int q = 0; q < width; q++) {
                    double want = k == 0 ? R.u_t[t][q] : R.vA_t[t][k][q];
                    double d = rel(data[t * (size_t)width + q], want);
                    CHECK(d <= 1e-14);
                    worst = fmax(worst, d);
                }
        }
    }
    /* the noise matters: the apical compartments moved by more than their drive alone would */
    CHECK(fabs(R.vA[1][0]) > 1e-3);
    printf("sleep phase: largest relative difference from the reference scheme %.3g\n", worst);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* g_Q_i = scale / (s^2 T B) sum_{t<T} sum_b vA_i[t] u[t+1]^T, s = max(sigma, 0.01) */
static void hand_grad(const ref *R, int i, double sigma, double scale, double *g) {
    const int nL = N[L], ni = N[i], T = STEPS;
    const double s = fmax(sigma, 0.01), c = scale / (s * s * T * B);
    for (int j = 0; j < ni; j++)
        for (int l = 0; l < nL; l++) {
            double acc = 0;
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++)
                    acc += R->vA_t[t][i][b * ni + j] * R->u_t[t + 1][b * nL + l];
            g[j * nL + l] = c * acc;
        }
}

static void test_feedback_grad(void) {
    ref R;
    ap_model *m = sleep_model(&R);
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    ref_run(&R, STEPS);
    CHECK_OK(ap_sim_set_input(s, "x", R.x, B * 3));
    CHECK_OK(ap_sim_set_input(s, "target", R.rstar, B * 2));
    ap_run_opts o;
    sleep_opts(&o, STEPS);
    CHECK_OK(ap_sim_run(s, &o, NULL));

    int ids[2] = {proj_id(m, "Q1"), proj_id(m, "Q2")};
    ap_optim *opt = NULL;
    CHECK_OK(ap_optim_new(&opt, m, ids, 2, NULL));
    double want[8], worst = 0;
    /* sigma above and below the 0.01 floor, two scales; the kernel adds to the buffers */
    const double sigmas[] = {0.7, 0.004}, scales[] = {1.0, -2.5};
    for (int c = 0; c < 2; c++) {
        CHECK_OK(ap_optim_zero(opt));
        CHECK_OK(KCALL("dfc.feedback_grad", a_obj("model", AP_ARG_MODEL, m),
                       a_obj("sim", AP_ARG_SIM, s), a_obj("optim", AP_ARG_OPTIM, opt),
                       a_num("sigma", sigmas[c]), a_num("scale", scales[c])));
        if (c == 1) /* once more: the kernel adds */
            CHECK_OK(KCALL("dfc.feedback_grad", a_obj("sim", AP_ARG_SIM, s),
                           a_obj("optim", AP_ARG_OPTIM, opt), a_num("sigma", sigmas[c]),
                           a_num("scale", scales[c])));
        for (int i = 1; i <= L; i++) {
            hand_grad(&R, i, sigmas[c], scales[c] * (c == 1 ? 2 : 1), want);
            const double *g = ap_optim_grad_w(opt, ids[i - 1]);
            for (int k = 0; k < N[i] * N[L]; k++) {
                double d = fabs(g[k] - want[k]) / fmax(1e-300, max_abs(want, (size_t)N[i] * N[L]));
                CHECK(d <= 1e-13);
                worst = fmax(worst, d);
            }
            CHECK(max_abs(want, (size_t)N[i] * N[L]) > 0);
        }
    }
    printf("feedback_grad: largest relative difference from the hand sum %.3g\n", worst);
    ap_optim_free(&opt);

    /* an optimiser without Q2 (a frozen Q_L): Q2 is skipped, Q1 as before */
    CHECK_OK(ap_optim_new(&opt, m, ids, 1, NULL));
    CHECK_OK(KCALL("dfc.feedback_grad", a_obj("sim", AP_ARG_SIM, s),
                   a_obj("optim", AP_ARG_OPTIM, opt), a_num("sigma", 0.7)));
    hand_grad(&R, 1, 0.7, 1.0, want);
    CHECK(max_abs_diff(ap_optim_grad_w(opt, ids[0]), want, 8) <= 1e-13 * max_abs(want, 8));
    CHECK(ap_optim_grad_w(opt, ids[1]) == NULL);

    /* recordings in another order, or missing */
    static const char *const wrong[] = {"h1.apical", "ctl.u", "h2.apical"};
    o.record = wrong;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_FAILS(KCALL("dfc.feedback_grad", a_obj("sim", AP_ARG_SIM, s),
                      a_obj("optim", AP_ARG_OPTIM, opt), a_num("sigma", 0.7)),
                AP_ESIZE, "recording 0 is 8 values wide, ctl.u needs 4");
    o.record = RECORD;
    o.n_record = 2;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_FAILS(KCALL("dfc.feedback_grad", a_obj("sim", AP_ARG_SIM, s),
                      a_obj("optim", AP_ARG_OPTIM, opt), a_num("sigma", 0.7)),
                AP_EINVAL, "the sim has no recording 2");
    CHECK_FAILS(KCALL("dfc.feedback_grad", a_obj("sim", AP_ARG_SIM, s),
                      a_obj("optim", AP_ARG_OPTIM, opt), a_num("sigma", -1)),
                AP_EINVAL, "sigma = -1");
    ap_optim_free(&opt);
    ap_sim_free(&s);
    ap_model_free(&m);
}

static void test_copy_weights(void) {
    net_spec sp = NET_STD(2, "tanh", "linear", 1, 3, 4, 2);
    ap_model *a = net_build(&sp), *b = net_build(&sp);
    double q_b[8];
    memcpy(q_b, proj_w(b, "Q1"), sizeof q_b);
    CHECK(max_abs_diff(proj_w(a, "W1"), proj_w(b, "W1"), 12) > 0);
    CHECK_OK(KCALL("dfc.copy_weights", a_obj("from", AP_ARG_MODEL, a), a_obj("to", AP_ARG_MODEL, b),
                   a_str("which", "W")));
    CHECK(max_abs_diff(proj_w(a, "W1"), proj_w(b, "W1"), 12) == 0);
    CHECK(max_abs_diff(proj_b(a, "W2"), proj_b(b, "W2"), 2) == 0);
    CHECK(max_abs_diff(proj_w(a, "W2"), proj_w(b, "W2"), 8) == 0);
    CHECK(max_abs_diff(proj_w(b, "Q1"), q_b, 8) == 0); /* Q untouched */
    CHECK_OK(KCALL("dfc.copy_weights", a_obj("from", AP_ARG_MODEL, a), a_obj("to", AP_ARG_MODEL, b),
                   a_str("which", "Q")));
    CHECK(max_abs_diff(proj_w(a, "Q1"), proj_w(b, "Q1"), 8) == 0);
    CHECK(max_abs_diff(proj_w(a, "Q2"), proj_w(b, "Q2"), 4) == 0);
    CHECK_FAILS(KCALL("dfc.copy_weights", a_obj("from", AP_ARG_MODEL, a),
                      a_obj("to", AP_ARG_MODEL, b), a_str("which", "B")),
                AP_EINVAL, "which = \"B\"");
    sp.n[1] = 5;
    ap_model *c = net_build(&sp);
    CHECK_FAILS(
        KCALL("dfc.copy_weights", a_obj("from", AP_ARG_MODEL, a), a_obj("to", AP_ARG_MODEL, c)),
        AP_ESIZE, "h1 has 4 units in from, 5 in to");
    sp.L = 1;
    sp.n[1] = 2;
    sp.act[1] = "linear";
    ap_model *d = net_build(&sp);
    CHECK_FAILS(
        KCALL("dfc.copy_weights", a_obj("from", AP_ARG_MODEL, a), a_obj("to", AP_ARG_MODEL, d)),
        AP_ESIZE, "from has 2 layers, to has 1");
    ap_model_free(&a);
    ap_model_free(&b);
    ap_model_free(&c);
    ap_model_free(&d);
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_sleep_step_matches_reference);
    RUN(test_feedback_grad);
    RUN(test_copy_weights);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
