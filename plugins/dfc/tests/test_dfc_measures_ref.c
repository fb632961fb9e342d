/* test_dfc_measures_ref.c — the PyTorch reference code's measures of Fig. 3 (docs/dfc.md,
 * "Measures"): Condition 1 with power = 1 (the code divides by m, the paper's text by m^2) on
 * the hand case of test_dfc_measures.c, and dfc.mn_update's nonlinear = 1 (the damped MN update
 * mapped through the nonlinearity) against an independent computation: J_bar = d r_L / d v by
 * central differences in the biases (v_i moves with b_i one for one), an explicit solve per
 * sample, the forward pass written out here. Plus the new arguments' errors. */
#include <math.h>

#include "dfc_test.h"

#define M(k) a_obj("model", AP_ARG_MODEL, (k))
#define OPT(o) a_obj("optim", AP_ARG_OPTIM, (o))

/* ---- Condition 1, power 1 and 2 ---------------------------------------------------------- */
static void test_condition1_power(void) {
    ap_model *m = net_condition1_hand();
    double x[4] = {3, 0, 0, 0}, p1[2], p2[2], dflt[2];
    CHECK_OK(
        KCALL("dfc.condition1", M(m), a_mat("x", x, 2, 2), a_vec("out", p1, 2), a_num("power", 1)));
    CHECK_OK(
        KCALL("dfc.condition1", M(m), a_mat("x", x, 2, 2), a_vec("out", p2, 2), a_num("power", 2)));
    CHECK_OK(KCALL("dfc.condition1", M(m), a_mat("x", x, 2, 2), a_vec("out", dflt, 2)));
    /* norms (3, 4): m = 3.5, sum of squared deviations 0.5, L = 2: sqrt(0.5 / (2 m)) = 1/sqrt(14)
     * and sqrt(0.5 / (2 m^2)) = 1/7; norms (0, 4): m = 2, sum 8: sqrt(2) and 1 */
    printf("condition1 power 1: %.15g (1/sqrt(14)), %.15g (sqrt(2)); power 2: %.15g, %.15g\n",
           p1[0], p1[1], p2[0], p2[1]);
    CHECK_NEAR(p1[0], 1.0 / sqrt(14.0), 1e-15);
    CHECK_NEAR(p1[1], sqrt(2.0), 1e-15);
    CHECK_NEAR(p2[0], 1.0 / 7.0, 1e-15);
    CHECK_NEAR(p2[1], 1.0, 1e-15);
    CHECK(dflt[0] == p2[0] && dflt[1] == p2[1]);
    CHECK_FAILS(
        KCALL("dfc.condition1", M(m), a_mat("x", x, 2, 2), a_vec("out", p1, 2), a_num("power", 3)),
        AP_EINVAL, "power = 3");
    ap_model_free(&m);
}

/* ---- the nonlinear MN update ------------------------------------------------------------- */
enum { B = 3, L = 3, NL = 2, NV = 4 + 3 + 2 };
static const int SZ[L + 1] = {3, 4, 3, 2};

/* the forward pass written out: v_i, r_i (layer i from offset OFF[i] of a sample's NV values) */
static const int OFF[L + 1] = {0, 0, 4, 7};
static double act(int i, double v) {
    return i < L ? tanh(v) : v;
}

static void forward_one(ap_model *m, const double *x, double *v, double *r) {
    const double *prev = x;
    for (int i = 1; i <= L; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "W%d", i);
        const double *w = proj_w(m, nm), *bb = proj_b(m, nm);
        for (int j = 0; j < SZ[i]; j++) {
            double s = bb[j];
            for (int k = 0; k < SZ[i - 1]; k++)
                s += w[j * SZ[i - 1] + k] * prev[k];
            v[OFF[i] + j] = s;
            r[OFF[i] + j] = act(i, s);
        }
        prev = r + OFF[i];
    }
}

/* J_bar (B x NL x NV) by central differences in the biases */
static void fd_jbar(ap_model *m, const double *x, double *J) {
    const double h = 1e-6;
    double rp[B * NL], rm[B * NL];
    for (int i = 1; i <= L; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "W%d", i);
        double *bb = proj_b(m, nm);
        for (int j = 0; j < SZ[i]; j++) {
            const double b0 = bb[j];
            bb[j] = b0 + h;
            CHECK_OK(
                KCALL("dfc.forward", M(m), a_mat("x", (double *)x, B, 3), a_mat("out", rp, B, NL)));
            bb[j] = b0 - h;
            CHECK_OK(
                KCALL("dfc.forward", M(m), a_mat("x", (double *)x, B, 3), a_mat("out", rm, B, NL)));
            bb[j] = b0;
            for (int b = 0; b < B; b++)
                for (int k = 0; k < NL; k++)
                    J[(b * NL + k) * NV + OFF[i] + j] = (rp[b * NL + k] - rm[b * NL + k]) / (2 * h);
        }
    }
}

/* dv = J^T (J J^T + gamma I)^{-1} delta for one sample (NL = 2: the 2 x 2 inverse by hand) */
static void damped_dv(const double *J, const double *delta, double gamma, double *dv) {
    double A[4] = {gamma, 0, 0, gamma};
    for (int p = 0; p < NL; p++)
        for (int q = 0; q < NL; q++)
            for (int k = 0; k < NV; k++)
                A[p * NL + q] += J[p * NV + k] * J[q * NV + k];
    const double det = A[0] * A[3] - A[1] * A[2];
    const double c[2] = {(A[3] * delta[0] - A[1] * delta[1]) / det,
                         (A[0] * delta[1] - A[2] * delta[0]) / det};
    for (int k = 0; k < NV; k++)
        dv[k] = J[k] * c[0] + J[NV + k] * c[1];
}

/* the expected buffers: scale (-2/B) sum_b [phi(v + dv) - phi(v)] r_{i-1}^T (W_i, b_i order) */
static int expected(ap_model *m, const double *x, const double *t, double gamma, double scale,
                    double *want) {
    double J[B * NL * NV];
    fd_jbar(m, x, J);
    int P = 0;
    for (int i = 1; i <= L; i++)
        P += SZ[i] * (SZ[i - 1] + 1);
    memset(want, 0, (size_t)P * sizeof *want);
    for (int b = 0; b < B; b++) {
        double v[NV], r[NV], dv[NV], delta[NL];
        forward_one(m, x + 3 * b, v, r);
        for (int k = 0; k < NL; k++)
            delta[k] = t[b * NL + k] - r[OFF[L] + k];
        damped_dv(J + b * NL * NV, delta, gamma, dv);
        int p = 0;
        for (int i = 1; i <= L; i++) {
            const double *prev = i == 1 ? x + 3 * b : r + OFF[i - 1];
            double post[4];
            for (int j = 0; j < SZ[i]; j++)
                post[j] = act(i, v[OFF[i] + j] + dv[OFF[i] + j]) - act(i, v[OFF[i] + j]);
            for (int j = 0; j < SZ[i]; j++)
                for (int k = 0; k < SZ[i - 1]; k++)
                    want[p++] += scale * (-2.0 / B) * post[j] * prev[k];
            for (int j = 0; j < SZ[i]; j++)
                want[p++] += scale * (-2.0 / B) * post[j];
        }
    }
    return P;
}

static void read_all(ap_optim *o, ap_model *m, double *out) {
    int k = 0;
    for (int i = 1; i <= L; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "W%d", i);
        const int id = proj_id(m, nm);
        const double *gw = ap_optim_grad_w(o, id), *gb = ap_optim_grad_b(o, id);
        for (int j = 0; j < SZ[i] * SZ[i - 1]; j++)
            out[k++] = gw[j];
        for (int j = 0; j < SZ[i]; j++)
            out[k++] = gb[j];
    }
}

static ap_optim *optim_all(ap_model *m) {
    int ids[L];
    for (int i = 1; i <= L; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "W%d", i);
        ids[i - 1] = proj_id(m, nm);
    }
    ap_optim_opts oo;
    ap_optim_opts_default(&oo);
    ap_optim *o = NULL;
    CHECK_OK(ap_optim_new(&o, m, ids, L, &oo));
    return o;
}

static void test_mn_nonlinear(void) {
    net_spec sp = NET_STD(B, "tanh", "linear", 0.9, 3, 4, 3, 2);
    rng_state = 4242;
    ap_model *m = net_build(&sp);
    double x[B * 3], t[B * NL], rl[B * NL], got[64], want[64], lin[64];
    fill(x, B * 3, 1.3);
    CHECK_OK(KCALL("dfc.forward", M(m), a_mat("x", x, B, 3), a_mat("out", rl, B, NL)));
    /* a large step, so that phi(v + dv) - phi(v) differs visibly from phi'(v) dv */
    for (int k = 0; k < B * NL; k++)
        t[k] = rl[k] + 1.5 * urand();
    ap_optim *o = optim_all(m);
    const double gammas[2] = {0.1, 0};
    for (int g = 0; g < 2; g++) {
        const double scale = 0.7;
        const int P = expected(m, x, t, gammas[g], scale, want);
        CHECK(P == 39);
        CHECK_OK(ap_optim_zero(o));
        CHECK_OK(KCALL("dfc.mn_update", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                       a_num("gamma", gammas[g]), OPT(o), a_num("scale", scale),
                       a_num("weighted", 1), a_num("nonlinear", 1)));
        read_all(o, m, got);
        const double err = max_abs_diff(got, want, P);
        printf("mn_update nonlinear, gamma %g: largest difference %.3g (max |g| %.3g)\n", gammas[g],
               err, max_abs(want, P));
        CHECK(err < 1e-7 * max_abs(want, P));
        CHECK(max_abs(want, P) > 1e-2);
        /* the mapping matters here: the weighted (linear) update is another vector */
        CHECK_OK(ap_optim_zero(o));
        CHECK_OK(KCALL("dfc.mn_update", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                       a_num("gamma", gammas[g]), OPT(o), a_num("scale", scale),
                       a_num("weighted", 1)));
        read_all(o, m, lin);
        CHECK(max_abs_diff(lin, want, P) > 1e-3 * max_abs(want, P));
    }
    /* errors */
    CHECK_FAILS(KCALL("dfc.mn_update", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                      a_num("gamma", 0.1), OPT(o), a_num("nonlinear", 1)),
                AP_EINVAL, "needs weighted = 1");
    CHECK_FAILS(KCALL("dfc.mn_update", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                      a_num("gamma", 0.1), OPT(o), a_num("weighted", 1), a_num("nonlinear", 2)),
                AP_EINVAL, "nonlinear = 2");
    CHECK_FAILS(KCALL("dfc.gn_update", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                      a_num("gamma", 0.1), OPT(o), a_num("nonlinear", 1)),
                AP_EINVAL, "nonlinear");
    ap_optim_free(&o);
    ap_model_free(&m);
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_condition1_power);
    RUN(test_mn_nonlinear);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
