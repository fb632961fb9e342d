/* test_dfc_conditions.c — the measures of App. F.1 on hand cases: dfc.jacobian against finite
 * differences (a bias perturbation is a perturbation of v_i), dfc.condition2 for Q in, against
 * and partly in the row space of J (Q = J^T (J J^T)^{-1} gives 1 and J Q = I), dfc.jq_eigen on
 * matrices with known (complex) eigenvalues, and the errors. */
#include <math.h>

#include "dfc_test.h"

static net_spec spec3(void) {
    net_spec sp = NET_STD(3, "tanh", "linear", 0.9, 3, 4, 3, 2);
    return sp;
}

static void test_jacobian_finite_differences(void) {
    net_spec sp = spec3();
    rng_state = 99;
    ap_model *m = net_build(&sp);
    enum { B = 3, NL = 2, N = 9 };
    double x[B * 3], J[B * NL * N], rp[B * NL], rm[B * NL];
    fill(x, B * 3, 1.5);
    size_t sh[3] = {B, NL, N};
    ap_arg out = {.name = "out", .kind = AP_ARG_ARRAY, .data = J, .ndim = 3};
    memcpy(out.shape, sh, sizeof sh);
    CHECK_OK(KCALL("dfc.jacobian", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3), out));
    /* J_i[:, j] = d r_L / d v_i[j]: perturb the bias b_i[j] */
    const double h = 1e-6;
    double worst = 0;
    int col = 0;
    for (int i = 1; i <= 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "W%d", i);
        double *b = proj_b(m, name);
        for (int j = 0; j < sp.n[i]; j++, col++) {
            const double b0 = b[j];
            b[j] = b0 + h;
            CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                           a_mat("out", rp, B, NL)));
            b[j] = b0 - h;
            CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                           a_mat("out", rm, B, NL)));
            b[j] = b0;
            for (int s = 0; s < B; s++)
                for (int k = 0; k < NL; k++) {
                    double fd = (rp[s * NL + k] - rm[s * NL + k]) / (2 * h);
                    double d = fabs(J[(s * NL + k) * N + col] - fd);
                    worst = fmax(worst, d);
                }
        }
    }
    printf("jacobian: largest difference from central differences %.3g\n", worst);
    CHECK(worst < 1e-8);
    CHECK(max_abs(J, B * NL * N) > 0.1);
    /* the wrong shape of out */
    CHECK_FAILS(KCALL("dfc.jacobian", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                      a_mat("out", J, B, NL * N)),
                AP_ESIZE, "out");
    ap_model_free(&m);
}

/* (J J^T)^{-1} of a 2 x N J (row-major) */
static void inv_jjt(const double *J, int n, double *Mi) {
    double a = 0, bb = 0, d = 0;
    for (int k = 0; k < n; k++) {
        a += J[k] * J[k];
        bb += J[k] * J[n + k];
        d += J[n + k] * J[n + k];
    }
    const double det = a * d - bb * bb;
    Mi[0] = d / det;
    Mi[1] = -bb / det;
    Mi[2] = -bb / det;
    Mi[3] = a / det;
}

/* writes the stacked Q (N x 2) into Q1..Q3 */
static void set_q(ap_model *m, const int *n, const double *Q) {
    int row = 0;
    for (int i = 1; i <= 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "Q%d", i);
        memcpy(proj_w(m, name), Q + (size_t)row * 2, (size_t)n[i] * 2 * sizeof(double));
        row += n[i];
    }
}

static void test_condition2_and_eigen_hand_cases(void) {
    net_spec sp = spec3();
    sp.B = 1;
    rng_state = 4242;
    ap_model *m = net_build(&sp);
    enum { NL = 2, N = 9 };
    double x[3], J[NL * N], Mi[4], Qd[N * NL], c2[1], re[NL], im[NL];
    fill(x, 3, 1.0);
    size_t sh[3] = {1, NL, N};
    ap_arg out = {.name = "out", .kind = AP_ARG_ARRAY, .data = J, .ndim = 3};
    memcpy(out.shape, sh, sizeof sh);
    CHECK_OK(KCALL("dfc.jacobian", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, 1, 3), out));
    inv_jjt(J, N, Mi);
    /* Q = J^T (J J^T)^{-1}: Condition 2 holds exactly and J Q = I */
    for (int r = 0; r < N; r++)
        for (int c = 0; c < NL; c++)
            Qd[r * NL + c] = J[r] * Mi[c] + J[N + r] * Mi[2 + c];
    set_q(m, sp.n, Qd);
    CHECK_OK(KCALL("dfc.condition2", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, 1, 3),
                   a_vec("out", c2, 1)));
    CHECK_NEAR(c2[0], 1.0, 1e-12);
    CHECK_OK(KCALL("dfc.jq_eigen", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, 1, 3),
                   a_mat("out_re", re, 1, NL), a_mat("out_im", im, 1, NL)));
    CHECK_NEAR(re[0], 1.0, 1e-12);
    CHECK_NEAR(re[1], 1.0, 1e-12);
    CHECK_NEAR(im[0], 0.0, 1e-12);
    CHECK_NEAR(im[1], 0.0, 1e-12);

    /* Q_perp = (I - P) R is orthogonal to the row space of J: Condition 2 = 0; and
     * Q = Q_par + Q_perp gives ||Q_par|| / sqrt(||Q_par||^2 + ||Q_perp||^2) */
    double R[N * NL], Qp[N * NL], JR[NL * NL] = {0};
    fill(R, N * NL, 1.0);
    for (int a = 0; a < NL; a++)
        for (int c = 0; c < NL; c++)
            for (int k = 0; k < N; k++)
                JR[a * NL + c] += J[a * N + k] * R[k * NL + c];
    /* P R = J^T (J J^T)^{-1} J R = Qd (J R) */
    double n_par = 0, n_perp = 0;
    for (int r = 0; r < N; r++)
        for (int c = 0; c < NL; c++) {
            double pr = Qd[r * NL] * JR[c] + Qd[r * NL + 1] * JR[NL + c];
            Qp[r * NL + c] = R[r * NL + c] - pr;
            n_perp += Qp[r * NL + c] * Qp[r * NL + c];
            n_par += Qd[r * NL + c] * Qd[r * NL + c];
        }
    set_q(m, sp.n, Qp);
    CHECK_OK(KCALL("dfc.condition2", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, 1, 3),
                   a_vec("out", c2, 1)));
    CHECK(c2[0] < 1e-12);
    for (int k = 0; k < N * NL; k++)
        Qp[k] += Qd[k];
    set_q(m, sp.n, Qp);
    CHECK_OK(KCALL("dfc.condition2", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, 1, 3),
                   a_vec("out", c2, 1)));
    CHECK_NEAR(c2[0], sqrt(n_par / (n_par + n_perp)), 1e-12);
    CHECK(c2[0] > 0.05 && c2[0] < 0.95);

    /* Q = 0 has no Condition 2 */
    memset(Qp, 0, sizeof Qp);
    set_q(m, sp.n, Qp);
    CHECK_FAILS(KCALL("dfc.condition2", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, 1, 3),
                      a_vec("out", c2, 1)),
                AP_EINVAL, "nonzero Q");
    ap_model_free(&m);
}

/* A linear two-layer network 2-2-2: J = [W_2, I], J Q = W_2 Q_1 + Q_2, for every sample. */
static void test_eigen_known(void) {
    net_spec sp = NET_STD(2, "linear", "linear", 1, 2, 2, 2);
    ap_model *m = net_build(&sp);
    double x[4] = {0.3, -1, 2, 0.5}, re[4], im[4];
    /* Q_1 = 0, Q_2 = [[0.5, -2], [2, 0.5]]: eigenvalues 0.5 -+ 2i */
    memset(proj_w(m, "Q1"), 0, 4 * sizeof(double));
    double *q2 = proj_w(m, "Q2");
    q2[0] = 0.5, q2[1] = -2, q2[2] = 2, q2[3] = 0.5;
    CHECK_OK(KCALL("dfc.jq_eigen", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, 2, 2),
                   a_mat("out_re", re, 2, 2), a_mat("out_im", im, 2, 2)));
    for (int s = 0; s < 2; s++) {
        CHECK_NEAR(re[2 * s], 0.5, 1e-13);
        CHECK_NEAR(re[2 * s + 1], 0.5, 1e-13);
        CHECK_NEAR(im[2 * s], -2.0, 1e-13); /* sorted: imaginary part ascending */
        CHECK_NEAR(im[2 * s + 1], 2.0, 1e-13);
    }
    /* Q_2 = 0, Q_1 = W_2^{-1} diag(3, -1): J Q = diag(3, -1), sorted -1, 3 */
    double *w2 = proj_w(m, "W2"), *q1 = proj_w(m, "Q1");
    const double det = w2[0] * w2[3] - w2[1] * w2[2];
    const double wi[4] = {w2[3] / det, -w2[1] / det, -w2[2] / det, w2[0] / det};
    q1[0] = 3 * wi[0], q1[1] = -wi[1], q1[2] = 3 * wi[2], q1[3] = -wi[3];
    memset(q2, 0, 4 * sizeof(double));
    CHECK_OK(KCALL("dfc.jq_eigen", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, 2, 2),
                   a_mat("out_re", re, 2, 2), a_mat("out_im", im, 2, 2)));
    CHECK_NEAR(re[0], -1.0, 1e-12);
    CHECK_NEAR(re[1], 3.0, 1e-12);
    CHECK_NEAR(re[2], -1.0, 1e-12);
    CHECK_NEAR(re[3], 3.0, 1e-12);
    CHECK(fabs(im[0]) + fabs(im[1]) < 1e-12);
    CHECK_FAILS(KCALL("dfc.jq_eigen", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, 2, 2),
                      a_mat("out_re", re, 2, 2), a_mat("out_im", im, 1, 2)),
                AP_ESIZE, "out_im");
    ap_model_free(&m);
}

/* A saturated tanh output layer: phi' = 0 exactly, J = 0, J J^T singular. */
static void test_singular(void) {
    net_spec sp = spec3();
    sp.B = 2;
    sp.act[3] = "tanh";
    ap_model *m = net_build(&sp);
    double *b = proj_b(m, "W3");
    b[0] = b[1] = 100;
    double x[6] = {0}, c2[2];
    CHECK_FAILS(KCALL("dfc.condition2", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, 2, 3),
                      a_vec("out", c2, 2)),
                AP_EINVAL, "J J^T is singular for sample 1");
    ap_model_free(&m);
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_jacobian_finite_differences);
    RUN(test_condition2_and_eigen_hand_cases);
    RUN(test_eigen_known);
    RUN(test_singular);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
