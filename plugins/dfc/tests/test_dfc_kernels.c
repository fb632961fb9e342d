/* test_dfc_kernels.c — the plugin's kernels, rules and controllers by hand: the feedforward
 * pass, targets and losses (both losses, both modes), backpropagation against central finite
 * differences of dfc.loss, DFA and the weight-product feedback against their formulas, the
 * convergence mask on constructed cases, the two rules' factors, the controllers' steps, and
 * the argument checks. */
#include <float.h>
#include <math.h>

#include "dfc_test.h"

enum { B = 3 };

static ap_model *small_net(int L, const int *n, const char *out_act) {
    net_spec sp = {.B = B,
                   .L = L,
                   .tau_v = 0.2,
                   .tau_A = 0.0,
                   .ctl = "dfc.pi",
                   .k_p = 1.0,
                   .alpha = 0.1,
                   .w_scale = 0.9,
                   .q_scale = 0.7};
    for (int i = 0; i <= L; i++) {
        sp.n[i] = n[i];
        sp.act[i] = i == L ? out_act : "tanh";
    }
    return net_build(&sp);
}

/* The tolerance for a BLAS result against its hand loop (check.h): each side of a sum of k
 * terms is off by at most k * DBL_EPSILON/2 times the size of the terms (sum of their absolute
 * values); with k <= 5 terms a layer and at most three layers that is under 8 DBL_EPSILON a
 * side. 16 DBL_EPSILON (3.6e-15) of the terms' size covers both; what the tests see with
 * OpenBLAS is at most about 1 DBL_EPSILON. A wrong term changes a result by 1e-2 or more. */
#define BLAS_REL (16 * DBL_EPSILON)

/* forward pass by hand, for sample s: v[i], r[i] of every layer (max width 8), and the size of
 * the terms summed into v[L] (|b_j| + sum_k |W_jk r_k|) in size[j] */
static void hand_forward_sized(ap_model *m, int L, const int *n, const char *out_act,
                               const double *x, double v[][8], double r[][8], double *size) {
    for (int j = 0; j < n[0]; j++)
        r[0][j] = x[j];
    for (int i = 1; i <= L; i++) {
        char name[16];
        snprintf(name, sizeof name, "W%d", i);
        const double *W = proj_w(m, name), *b = proj_b(m, name);
        for (int j = 0; j < n[i]; j++) {
            double acc = b[j], sz = fabs(b[j]);
            for (int k = 0; k < n[i - 1]; k++) {
                acc += W[j * n[i - 1] + k] * r[i - 1][k];
                sz += fabs(W[j * n[i - 1] + k] * r[i - 1][k]);
            }
            if (i == L && size) size[j] = sz;
            v[i][j] = acc;
            r[i][j] = i == L && !strcmp(out_act, "linear") ? acc : tanh(acc);
        }
    }
}

static void hand_forward(ap_model *m, int L, const int *n, const char *out_act, const double *x,
                         double v[][8], double r[][8]) {
    hand_forward_sized(m, L, n, out_act, x, v, r, NULL);
}

static void test_forward(void) {
    const int n[] = {3, 5, 4, 2};
    ap_model *m = small_net(3, n, "linear");
    double x[B * 3], out[B * 2], v[4][8], r[4][8], sz[8];
    fill(x, B * 3, 1.0);
    CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                   a_mat("out", out, B, 2)));
    for (int s = 0; s < B; s++) {
        hand_forward_sized(m, 3, n, "linear", x + s * 3, v, r, sz);
        for (int j = 0; j < 2; j++)
            CHECK_CLOSE_SCALED(out[s * 2 + j], r[3][j], sz[j], BLAS_REL, 0);
    }
    /* any number of rows, not only the model's batch */
    double x1[3] = {0.1, -0.2, 0.3}, o1[2];
    CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x1, 1, 3),
                   a_mat("out", o1, 1, 2)));
    hand_forward_sized(m, 3, n, "linear", x1, v, r, sz);
    CHECK_CLOSE_SCALED(o1[0], r[3][0], sz[0], BLAS_REL, 0);
    CHECK_CLOSE_SCALED(o1[1], r[3][1], sz[1], BLAS_REL, 0);
    /* errors */
    CHECK_FAILS(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                      a_mat("out", out, B - 1, 2)),
                AP_ESIZE, "out has shape [2, 2], expected [3, 2]");
    CHECK_FAILS(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                      a_mat("out", out, B, 2), a_num("lambda", 1)),
                AP_EINVAL, "unknown argument \"lambda\"");
    CHECK_FAILS(KCALL("dfc.forward", a_mat("x", x, B, 3), a_mat("out", out, B, 2)), AP_EINVAL,
                "missing argument model");
    CHECK_FAILS(KCALL("dfc.weight_product", a_num("model", 1)), AP_EINVAL, "must be a model");
    ap_model_free(&m);
    /* a model without the convention's names */
    CHECK_OK(ap_model_new(&m, reg, B));
    CHECK_OK(ap_model_add_input(m, "x", 3));
    CHECK_FAILS(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                      a_mat("out", out, B, 2)),
                AP_ENOTFOUND, "no population \"h1\"");
    CHECK_OK(ap_model_add_population(m, "h1", 2, "dfc.pyramidal", "linear", NULL, 0));
    CHECK_FAILS(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                      a_mat("out", out, B, 2)),
                AP_ENOTFOUND, "W1");
    ap_model_free(&m);
}

static void test_targets_and_loss(void) {
    enum { n = 4 };
    double r[B * n], y[B * n], out[B * n], loss[2];
    fill(r, B * n, 2.0);
    memset(y, 0, sizeof y);
    for (int s = 0; s < B; s++)
        y[s * n + (s + 1) % n] = 1.0;
    /* sample 1 classified right */
    r[1 * n + 2] = 5.0;
    const double lambda = 0.3;
    for (int mode = 0; mode < 2; mode++) {
        const double db = mode ? 1.0 : 1.0 / B;
        CHECK_OK(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n),
                       a_str("loss", "mse"), a_num("lambda", lambda),
                       a_str("mode", mode ? "sample" : "mean"), a_mat("out", out, B, n)));
        for (int q = 0; q < B * n; q++)
            CHECK_NEAR(out[q], r[q] - lambda * 2 * (r[q] - y[q]) * db / n, 1e-15);
        CHECK_OK(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n),
                       a_str("loss", "ce"), a_num("lambda", lambda),
                       a_str("mode", mode ? "sample" : "mean"), a_mat("out", out, B, n)));
        for (int s = 0; s < B; s++) {
            double z = 0;
            for (int j = 0; j < n; j++)
                z += exp(r[s * n + j]);
            for (int j = 0; j < n; j++) {
                int q = s * n + j;
                CHECK_NEAR(out[q], r[q] - lambda * (exp(r[q]) / z - y[q]) * db, 1e-15);
            }
        }
    }
    /* the default mode is the minibatch mean */
    double out2[B * n];
    CHECK_OK(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n), a_str("loss", "ce"),
                   a_num("lambda", lambda), a_mat("out", out2, B, n)));
    CHECK_OK(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n), a_str("loss", "ce"),
                   a_num("lambda", lambda), a_str("mode", "mean"), a_mat("out", out, B, n)));
    CHECK(max_abs_diff(out, out2, B * n) == 0);
    CHECK_FAILS(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n), a_str("loss", "ce"),
                      a_num("lambda", lambda), a_str("mode", "batch"), a_mat("out", out, B, n)),
                AP_EINVAL, "mode = \"batch\"");
    /* batch: rows 2..3 of the minibatch given alone with batch = B make exactly (bitwise) the
     * whole call's rows, for both losses; by hand, mse's r - lambda 2 (r - y)/(B n) */
    for (int ce = 0; ce < 2; ce++) {
        const char *loss_name = ce ? "ce" : "mse";
        double part[(B - 1) * n];
        CHECK_OK(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n),
                       a_str("loss", loss_name), a_num("lambda", lambda), a_mat("out", out, B, n)));
        CHECK_OK(KCALL("dfc.targets", a_mat("rL", r + n, B - 1, n), a_mat("y", y + n, B - 1, n),
                       a_str("loss", loss_name), a_num("lambda", lambda), a_num("batch", B),
                       a_mat("out", part, B - 1, n)));
        for (int q = 0; q < (B - 1) * n; q++) {
            CHECK(part[q] == out[n + q]);
            if (!ce)
                CHECK_NEAR(part[q], r[n + q] - lambda * 2 * (r[n + q] - y[n + q]) / (B * n), 1e-15);
        }
        /* batch = the rows: the call without it */
        CHECK_OK(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n),
                       a_str("loss", loss_name), a_num("lambda", lambda), a_num("batch", B),
                       a_mat("out", out2, B, n)));
        CHECK(max_abs_diff(out, out2, B * n) == 0);
    }
    CHECK_FAILS(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n),
                      a_str("loss", "mse"), a_num("lambda", lambda), a_num("batch", B - 1),
                      a_mat("out", out, B, n)),
                AP_EINVAL, "kernel dfc.targets: batch = 2 must be an integer >= the 3 rows of rL");
    CHECK_FAILS(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n),
                      a_str("loss", "mse"), a_num("lambda", lambda), a_num("batch", 7.5),
                      a_mat("out", out, B, n)),
                AP_EINVAL, "batch = 7.5 must be an integer");
    CHECK_FAILS(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n),
                      a_str("loss", "mse"), a_num("lambda", lambda), a_num("batch", NAN),
                      a_mat("out", out, B, n)),
                AP_EINVAL, "batch = nan must be an integer");
    CHECK_FAILS(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n),
                      a_str("loss", "mse"), a_num("lambda", lambda), a_str("mode", "sample"),
                      a_num("batch", 8), a_mat("out", out, B, n)),
                AP_EINVAL, "batch = 8 is for mode = \"mean\"");
    CHECK_FAILS(KCALL("dfc.targets", a_mat("rL", r, B, n), a_mat("y", y, B, n), a_str("loss", "l1"),
                      a_num("lambda", lambda), a_mat("out", out, B, n)),
                AP_EINVAL, "loss = \"l1\"");

    /* losses */
    double mse = 0, ce = 0;
    int correct = 0;
    for (int s = 0; s < B; s++) {
        double z = 0;
        int best = 0;
        for (int j = 0; j < n; j++) {
            mse += (r[s * n + j] - y[s * n + j]) * (r[s * n + j] - y[s * n + j]);
            z += exp(r[s * n + j]);
            if (r[s * n + j] > r[s * n + best]) best = j;
        }
        for (int j = 0; j < n; j++)
            ce -= y[s * n + j] * log(exp(r[s * n + j]) / z);
        correct += y[s * n + best] == 1.0;
    }
    CHECK(correct >= 1);
    CHECK_OK(KCALL("dfc.loss", a_mat("rL", r, B, n), a_mat("y", y, B, n), a_str("loss", "mse"),
                   a_vec("out", loss, 2)));
    CHECK_NEAR(loss[0], mse / (B * n), 1e-15);
    CHECK_NEAR(loss[1], 0, 0);
    CHECK_OK(KCALL("dfc.loss", a_mat("rL", r, B, n), a_mat("y", y, B, n), a_str("loss", "ce"),
                   a_vec("out", loss, 2)));
    CHECK_NEAR(loss[0], ce / B, 1e-14);
    CHECK_NEAR(loss[1], correct, 0);
    /* numerically stable for huge logits */
    double big[2] = {1000.0, 0.0}, yb[2] = {0.0, 1.0};
    CHECK_OK(KCALL("dfc.loss", a_mat("rL", big, 1, 2), a_mat("y", yb, 1, 2), a_str("loss", "ce"),
                   a_vec("out", loss, 2)));
    CHECK_NEAR(loss[0], 1000.0, 1e-12);
    CHECK_NEAR(loss[1], 0, 0);
    CHECK_FAILS(KCALL("dfc.loss", a_mat("rL", r, B, n), a_mat("y", y, B, n), a_str("loss", "ce"),
                      a_vec("out", loss, 3)),
                AP_ESIZE, "out has shape [3]");
}

/* ---- backpropagation against central differences ---------------------------------------- */
static double loss_of(ap_model *m, double *x, double *y, const char *loss, int n0, int nL) {
    double out[B * 8], l[2];
    CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, n0),
                   a_mat("out", out, B, nL)));
    CHECK_OK(KCALL("dfc.loss", a_mat("rL", out, B, nL), a_mat("y", y, B, nL), a_str("loss", loss),
                   a_vec("out", l, 2)));
    return l[0];
}

static void bp_case(const char *loss, const char *out_act) {
    const int n[] = {3, 5, 4, 3}, L = 3;
    ap_model *m = small_net(L, n, out_act);
    int ids[3] = {proj_id(m, "W1"), proj_id(m, "W2"), proj_id(m, "W3")};
    ap_optim_opts oo;
    ap_optim_opts_default(&oo);
    ap_optim *opt = NULL;
    CHECK_OK(ap_optim_new(&opt, m, ids, 3, &oo));
    if (!opt) return;
    double x[B * 3], y[B * 3];
    fill(x, B * 3, 1.0);
    if (!strcmp(loss, "ce")) {
        memset(y, 0, sizeof y);
        for (int s = 0; s < B; s++)
            y[s * 3 + s % 3] = 1.0;
    } else {
        fill(y, B * 3, 1.0);
    }
    CHECK_OK(KCALL("dfc.bp", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                   a_mat("y", y, B, 3), a_str("loss", loss), a_obj("optim", AP_ARG_OPTIM, opt),
                   a_num("scale", 2.0)));
    const double h = 1e-5;
    double num = 0, den = 0, worst = 0, gmax = 0;
    for (int i = 1; i <= L; i++) {
        double *W = ap_model_weights(m, ids[i - 1]), *b = ap_model_bias(m, ids[i - 1]);
        const double *gw = ap_optim_grad_w(opt, ids[i - 1]), *gb = ap_optim_grad_b(opt, ids[i - 1]);
        const int nw = n[i] * n[i - 1];
        for (int q = 0; q < nw + n[i]; q++) {
            double *p = q < nw ? &W[q] : &b[q - nw];
            const double g = (q < nw ? gw[q] : gb[q - nw]) / 2.0; /* scale = 2 */
            const double keep = *p;
            *p = keep + h;
            double lp = loss_of(m, x, y, loss, 3, 3);
            *p = keep - h;
            double lm = loss_of(m, x, y, loss, 3, 3);
            *p = keep;
            double fd = (lp - lm) / (2 * h);
            num += (g - fd) * (g - fd);
            den += fd * fd;
            if (fabs(g - fd) > worst) worst = fabs(g - fd);
            if (fabs(fd) > gmax) gmax = fabs(fd);
        }
    }
    printf("bp %s/%s: relative error against finite differences %.3g (largest entry %.3g of "
           "%.3g)\n",
           loss, out_act, sqrt(num / den), worst, gmax);
    CHECK(sqrt(num / den) < 1e-7);
    CHECK(worst < 1e-7 * gmax);
    ap_optim_free(&opt);
    ap_model_free(&m);
}

static void test_bp_finite_differences(void) {
    bp_case("mse", "linear");
    bp_case("ce", "linear");
    bp_case("mse", "tanh");
}

/* ---- DFA and the weight product by hand -------------------------------------------------- */
static void test_dfa_by_hand(void) {
    const int n[] = {3, 4, 2}, L = 2;
    ap_model *m = small_net(L, n, "linear");
    int ids[2] = {proj_id(m, "W1"), proj_id(m, "W2")};
    ap_optim_opts oo;
    ap_optim_opts_default(&oo);
    ap_optim *opt = NULL;
    CHECK_OK(ap_optim_new(&opt, m, ids, 2, &oo));
    if (!opt) return;
    double x[B * 3], y[B * 2];
    fill(x, B * 3, 1.0);
    fill(y, B * 2, 1.0);
    /* twice: the gradients add up */
    for (int k = 0; k < 2; k++)
        CHECK_OK(KCALL("dfc.dfa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                       a_mat("y", y, B, 2), a_str("loss", "mse"),
                       a_obj("optim", AP_ARG_OPTIM, opt)));
    double gW1[4 * 3] = {0}, gb1[4] = {0}, gW2[2 * 4] = {0}, gb2[2] = {0};
    double sW1[4 * 3] = {0}, sb1[4] = {0}, sW2[2 * 4] = {0}, sb2[2] = {0}; /* sizes of terms */
    const double *Q1 = proj_w(m, "Q1");
    for (int s = 0; s < B; s++) {
        double v[3][8], r[3][8], e[2], d1[4], d2[2];
        hand_forward(m, L, n, "linear", x + s * 3, v, r);
        for (int j = 0; j < 2; j++) {
            e[j] = 2.0 * (r[2][j] - y[s * 2 + j]) / (B * 2);
            d2[j] = e[j]; /* linear output: phi' = 1 */
        }
        for (int j = 0; j < 4; j++) {
            double qe = Q1[j * 2] * e[0] + Q1[j * 2 + 1] * e[1];
            d1[j] = qe * (1 - tanh(v[1][j]) * tanh(v[1][j]));
        }
        for (int j = 0; j < 4; j++) {
            gb1[j] += d1[j];
            sb1[j] += fabs(d1[j]);
            for (int k = 0; k < 3; k++) {
                gW1[j * 3 + k] += d1[j] * r[0][k];
                sW1[j * 3 + k] += fabs(d1[j] * r[0][k]);
            }
        }
        for (int j = 0; j < 2; j++) {
            gb2[j] += d2[j];
            sb2[j] += fabs(d2[j]);
            for (int k = 0; k < 4; k++) {
                gW2[j * 4 + k] += d2[j] * r[1][k];
                sW2[j * 4 + k] += fabs(d2[j] * r[1][k]);
            }
        }
    }
    const double *g;
    g = ap_optim_grad_w(opt, ids[0]);
    for (int q = 0; q < 12; q++)
        CHECK_CLOSE_SCALED(g[q], 2 * gW1[q], 2 * sW1[q], BLAS_REL, 0);
    g = ap_optim_grad_b(opt, ids[0]);
    for (int q = 0; q < 4; q++)
        CHECK_CLOSE_SCALED(g[q], 2 * gb1[q], 2 * sb1[q], BLAS_REL, 0);
    g = ap_optim_grad_w(opt, ids[1]);
    for (int q = 0; q < 8; q++)
        CHECK_CLOSE_SCALED(g[q], 2 * gW2[q], 2 * sW2[q], BLAS_REL, 0);
    g = ap_optim_grad_b(opt, ids[1]);
    for (int q = 0; q < 2; q++)
        CHECK_CLOSE_SCALED(g[q], 2 * gb2[q], 2 * sb2[q], BLAS_REL, 0);
    CHECK_FAILS(KCALL("dfc.dfa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                      a_mat("y", y, B, 2), a_str("loss", "mse")),
                AP_EINVAL, "missing argument optim");
    ap_optim_free(&opt);
    ap_model_free(&m);
}

static void test_weight_product(void) {
    const int n[] = {2, 4, 3, 2}, L = 3;
    ap_model *m = small_net(L, n, "linear");
    CHECK_OK(KCALL("dfc.weight_product", a_obj("model", AP_ARG_MODEL, m)));
    const double *W2 = proj_w(m, "W2"), *W3 = proj_w(m, "W3");
    const double *Q1 = proj_w(m, "Q1"), *Q2 = proj_w(m, "Q2"), *Q3 = proj_w(m, "Q3");
    /* Q3 = I (2 x 2), Q2 = W3^T (3 x 2), Q1 = W2^T W3^T (4 x 2) */
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < 2; k++)
            CHECK_NEAR(Q3[j * 2 + k], j == k ? 1.0 : 0.0, 0);
    for (int j = 0; j < 3; j++)
        for (int k = 0; k < 2; k++)
            CHECK_CLOSE(Q2[j * 2 + k], W3[k * 3 + j], 0, 0); /* products with I: exact */
    for (int j = 0; j < 4; j++)
        for (int k = 0; k < 2; k++) {
            double acc = 0, sz = 0;
            for (int c = 0; c < 3; c++) {
                acc += W2[c * 4 + j] * W3[k * 3 + c];
                sz += fabs(W2[c * 4 + j] * W3[k * 3 + c]);
            }
            CHECK_CLOSE_SCALED(Q1[j * 2 + k], acc, sz, BLAS_REL, 0);
        }
    ap_model_free(&m);
    /* a missing feedback projection is named */
    ap_model *m2;
    CHECK_OK(ap_model_new(&m2, reg, B));
    CHECK_OK(ap_model_add_input(m2, "x", 2));
    CHECK_OK(ap_model_add_population(m2, "h1", 2, "dfc.pyramidal", "linear", NULL, 0));
    ap_connect_spec cs = {0};
    cs.name = "W1";
    CHECK_OK(ap_model_connect(m2, "x", "h1.basal", &cs, NULL));
    CHECK_FAILS(KCALL("dfc.weight_product", a_obj("model", AP_ARG_MODEL, m2)), AP_ENOTFOUND, "Q1");
    cs.name = "Q1";
    CHECK_OK(ap_model_connect(m2, "x", "h1.apical", &cs, NULL));
    /* x has 2 values, as h1: Q1 is 2 x 2 as it should be; a wrong shape is refused */
    CHECK_OK(KCALL("dfc.weight_product", a_obj("model", AP_ARG_MODEL, m2)));
    ap_model_free(&m2);
    CHECK_OK(ap_model_new(&m2, reg, B));
    CHECK_OK(ap_model_add_input(m2, "x", 3));
    CHECK_OK(ap_model_add_population(m2, "h1", 2, "dfc.pyramidal", "linear", NULL, 0));
    cs.name = "W1";
    CHECK_OK(ap_model_connect(m2, "x", "h1.basal", &cs, NULL));
    cs.name = "Q1";
    CHECK_OK(ap_model_connect(m2, "x", "h1.apical", &cs, NULL));
    CHECK_FAILS(KCALL("dfc.weight_product", a_obj("model", AP_ARG_MODEL, m2)), AP_ESIZE,
                "Q1 is 2 x 3, the network needs 2 x 2");
    ap_model_free(&m2);
    /* a projection named W1 that is not the first layer's */
    CHECK_OK(ap_model_new(&m2, reg, B));
    CHECK_OK(ap_model_add_input(m2, "x", 2));
    CHECK_OK(ap_model_add_population(m2, "h1", 2, "dfc.pyramidal", "linear", NULL, 0));
    cs.name = "W1";
    CHECK_OK(ap_model_connect(m2, "x", "h1.soma", &cs, NULL));
    CHECK_FAILS(KCALL("dfc.weight_product", a_obj("model", AP_ARG_MODEL, m2)), AP_EINVAL,
                "W1 ends on h1.soma, the network needs h1.basal");
    ap_model_free(&m2);
}

/* ---- the convergence mask ---------------------------------------------------------------- */
static void test_convergence_mask(void) {
    const int n[] = {3, 4, 2}, L = 2;
    ap_model *m = small_net(L, n, "linear");
    CHECK_OK(KCALL("dfc.weight_product", a_obj("model", AP_ARG_MODEL, m)));
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    if (!s) return;
    double x[B * 3], rminus[B * 2], rstar[B * 2], mask[B];
    fill(x, B * 3, 1.0);
    CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                   a_mat("out", rminus, B, 2)));
    for (int q = 0; q < B * 2; q++)
        rstar[q] = rminus[q] + 0.05 * urand();
    CHECK_OK(ap_sim_set_input(s, "x", x, B * 3));
    CHECK_OK(ap_sim_set_input(s, "target", rstar, B * 2));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.rtol = 1e-12;
    o.atol = 1e-14;
    o.t_end = 400;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    const double alpha = 0.1;
    /* long run: every sample has settled */
    CHECK_OK(KCALL("dfc.convergence", a_obj("sim", AP_ARG_SIM, s), a_mat("rminus", rminus, B, 2),
                   a_num("alpha", alpha), a_vec("out", mask, B)));
    for (int b = 0; b < B; b++)
        CHECK_NEAR(mask[b], 1.0, 0);
    /* a wrong alpha breaks the steady-state identity r = r* - alpha u */
    CHECK_OK(KCALL("dfc.convergence", a_obj("sim", AP_ARG_SIM, s), a_mat("rminus", rminus, B, 2),
                   a_num("alpha", 2 * alpha), a_vec("out", mask, B)));
    for (int b = 0; b < B; b++)
        CHECK_NEAR(mask[b], 0.0, 0);
    /* sample 1 "started" where it ended: its error did not shrink to a quarter */
    double rT[B * 2], fake[B * 2];
    CHECK_OK(ap_sim_read(s, "h2.rate", rT, B * 2));
    memcpy(fake, rminus, sizeof fake);
    fake[2] = rT[2];
    fake[3] = rT[3];
    CHECK_OK(KCALL("dfc.convergence", a_obj("model", AP_ARG_MODEL, m), a_obj("sim", AP_ARG_SIM, s),
                   a_mat("rminus", fake, B, 2), a_num("alpha", alpha), a_vec("out", mask, B)));
    CHECK(mask[0] == 1.0 && mask[1] == 0.0 && mask[2] == 1.0);
    /* a short run has not settled (unless the tolerance is huge) */
    o.t_end = 0.5;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(KCALL("dfc.convergence", a_obj("sim", AP_ARG_SIM, s), a_mat("rminus", rminus, B, 2),
                   a_num("alpha", alpha), a_vec("out", mask, B)));
    for (int b = 0; b < B; b++)
        CHECK_NEAR(mask[b], 0.0, 0);
    /* by hand, with tol = 1e3: condition 1 holds, condition 2 decides */
    double u[B * 2];
    CHECK_OK(ap_sim_read(s, "h2.rate", rT, B * 2));
    CHECK_OK(ap_sim_read(s, "ctl.u", u, B * 2));
    CHECK_OK(KCALL("dfc.convergence", a_obj("sim", AP_ARG_SIM, s), a_mat("rminus", rminus, B, 2),
                   a_num("alpha", alpha), a_num("tol", 1e3), a_vec("out", mask, B)));
    for (int b = 0; b < B; b++) {
        double eT = hypot(rstar[2 * b] - rT[2 * b], rstar[2 * b + 1] - rT[2 * b + 1]);
        double e0 = hypot(rstar[2 * b] - rminus[2 * b], rstar[2 * b + 1] - rminus[2 * b + 1]);
        CHECK_NEAR(mask[b], eT < 0.25 * e0 ? 1.0 : 0.0, 0);
    }
    CHECK_FAILS(KCALL("dfc.convergence", a_obj("sim", AP_ARG_SIM, s),
                      a_mat("rminus", rminus, B - 1, 2), a_num("alpha", alpha),
                      a_vec("out", mask, B)),
                AP_ESIZE, "rminus");
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ---- the rules' factors ------------------------------------------------------------------ */
static void test_rules(void) {
    enum { RB = 2, NP = 3 };
    double basal[RB * NP], apical[RB * NP], soma[RB * NP], post[RB * NP], pre[RB * 2],
        scratch[RB * NP], rate[RB * NP];
    fill(basal, RB * NP, 1.0);
    fill(apical, RB * NP, 1.0);
    fill(soma, RB * NP, 1.0);
    fill(pre, RB * 2, 1.0);
    const double *values[3] = {basal, apical, soma};
    const ap_activation *act = ap_registry_activation(reg, "tanh");
    if (act) act->f(RB * NP, soma, rate); /* the population's rate, as the engine provides it */
    ap_rule_ctx c = {.batch = RB,
                     .n_pre = 2,
                     .n_post = NP,
                     .pre = pre,
                     .n_compartments = 3,
                     .value = values,
                     .drive = values,
                     .rate = rate,
                     .activation = act,
                     .target_compartment = 0,
                     .scratch = scratch};
    const ap_rule_type *fw = ap_registry_rule(reg, "dfc.forward_rule");
    const ap_rule_type *fb = ap_registry_rule(reg, "dfc.feedback_rule");
    CHECK(fw && fb && act);
    if (!fw || !fb || !act) return;
    double p_fw[1] = {0.5};
    c.params = p_fw;
    CHECK_OK(fw->factors(&c, post, pre));
    for (int q = 0; q < RB * NP; q++)
        CHECK_NEAR(post[q], 0.5 * (tanh(soma[q]) - tanh(basal[q])), 1e-16);
    /* the feedback rule: sigma below 0.01 counts as 0.01 */
    c.target_compartment = 1;
    double p_fb[3] = {0.001, 1.0, 0.0}; /* sigma, scale, highpass */
    c.params = p_fb;
    CHECK_OK(fb->factors(&c, post, pre));
    for (int q = 0; q < RB * NP; q++)
        CHECK_NEAR(post[q], -apical[q] / (0.01 * 0.01), 1e-10);
    p_fb[0] = 0.2;
    p_fb[1] = 3.0;
    CHECK_OK(fb->factors(&c, post, pre));
    for (int q = 0; q < RB * NP; q++)
        CHECK_NEAR(post[q], -3.0 * apical[q] / (0.2 * 0.2), 1e-13);
    /* highpass = 1 (App. C.3): the presynaptic factor is u - aux; it needs an aux of u's size */
    p_fb[2] = 1.0;
    double u[RB * 2], u_lp[RB * 2];
    fill(u, RB * 2, 1.0);
    fill(u_lp, RB * 2, 1.0);
    memcpy(pre, u, sizeof pre);
    CHECK_FAILS(fb->factors(&c, post, pre), AP_EINVAL, "highpass = 1 needs an auxiliary signal");
    c.aux = u_lp;
    c.n_aux = 3;
    CHECK_FAILS(fb->factors(&c, post, pre), AP_ESIZE, "auxiliary signal has 3 values");
    c.n_aux = 2;
    CHECK_OK(fb->factors(&c, post, pre));
    for (int q = 0; q < RB * 2; q++)
        CHECK_NEAR(pre[q], u[q] - u_lp[q], 0);
    for (int q = 0; q < RB * NP; q++)
        CHECK_NEAR(post[q], -3.0 * apical[q] / (0.2 * 0.2), 1e-13);
    c.aux = NULL;
    c.n_aux = 0;
    p_fb[2] = 0.0;
    /* the rules refuse a projection onto the wrong compartment */
    c.target_compartment = 2;
    CHECK_FAILS(fb->factors(&c, post, pre), AP_EINVAL, "apical compartment");
    c.params = p_fw;
    CHECK_FAILS(fw->factors(&c, post, pre), AP_EINVAL, "basal compartment");
    /* in a simulation: the feedforward start state gives no forward update */
    const int n[] = {3, 4, 2};
    ap_model *m = small_net(2, n, "linear");
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    double x[B * 3];
    fill(x, B * 3, 1.0);
    CHECK_OK(ap_sim_set_input(s, "x", x, B * 3));
    CHECK_OK(ap_sim_reset(s));
    CHECK_OK(ap_sim_accumulate_state(s));
    const double *dW, *db;
    double w;
    CHECK_OK(ap_sim_accumulator(s, proj_id(m, "W1"), &dW, &db, &w));
    CHECK(max_abs(dW, 12) == 0 && max_abs(db, 4) == 0);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ---- the controllers, stepped by hand ---------------------------------------------------- */
static ap_model *ctl_model(const char *type, const ap_param *p, int np) {
    ap_model *m = NULL;
    CHECK_OK(ap_model_new(&m, reg, 1));
    CHECK_OK(ap_model_add_input(m, "r", 2));
    CHECK_OK(ap_model_add_input(m, "t", 2));
    const char *ports[] = {"rate", "target"}, *sigs[] = {"r", "t"};
    CHECK_OK(ap_model_add_block(m, "c", type, p, np, ports, sigs, 2));
    return m;
}

static void run_ctl(const char *type, const ap_param *p, int np, int steps, double dt, double *u) {
    ap_model *m = ctl_model(type, p, np);
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    double r[2] = {0.3, -0.1}, t[2] = {0.5, 0.4};
    CHECK_OK(ap_sim_set_input(s, "r", r, 2));
    CHECK_OK(ap_sim_set_input(s, "t", t, 2));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.ordered = 1;
    o.dt = dt;
    o.steps = steps;
    if (steps > 0)
        CHECK_OK(ap_sim_run(s, &o, NULL));
    else
        CHECK_OK(ap_sim_reset(s)); /* the start state */
    CHECK_OK(ap_sim_read(s, "c.u", u, 2));
    ap_sim_free(&s);
    ap_model_free(&m);
}

static void test_controllers(void) {
    const double e[2] = {0.2, 0.5}, dt = 0.1;
    double u[2];
    /* dfc.p: u = k_p e once stepped, 0 at the start */
    ap_param pp[] = {{"k_p", 1.7}};
    run_ctl("dfc.p", pp, 1, 0, dt, u);
    CHECK(u[0] == 0 && u[1] == 0);
    run_ctl("dfc.p", pp, 1, 3, dt, u);
    for (int j = 0; j < 2; j++)
        CHECK_NEAR(u[j], 1.7 * e[j], 1e-15);
    /* dfc.i and dfc.pid, three steps by hand */
    const double k_p = 0.7, k_d = 0.3, alpha = 0.2, tau_u = 2.0, tau_d = 0.5;
    ap_param pi[] = {{"alpha", alpha}, {"tau_u", tau_u}};
    ap_param pid[] = {
        {"k_p", k_p}, {"k_d", k_d}, {"alpha", alpha}, {"tau_u", tau_u}, {"tau_d", tau_d}};
    double ui[2], upid[2];
    run_ctl("dfc.i", pi, 2, 3, dt, ui);
    run_ctl("dfc.pid", pid, 5, 3, dt, upid);
    for (int j = 0; j < 2; j++) {
        double u_int = 0, uu = 0, v_int = 0, e_f = 0, vv = 0;
        for (int k = 0; k < 3; k++) {
            u_int += dt * (e[j] - alpha * uu) / tau_u;
            uu = u_int;
            v_int += dt * (e[j] - alpha * vv) / tau_u;
            e_f += dt * (e[j] - e_f) / tau_d;
            vv = v_int + k_p * e[j] + k_d * (e[j] - e_f) / tau_d;
        }
        CHECK_NEAR(ui[j], uu, 1e-15);
        CHECK_NEAR(upid[j], vv, 1e-15);
    }
    /* the PI controller in continuous time: u_int(t) = (e - alpha k_p e)(1 - exp(-alpha t /
     * tau_u)) / alpha, u = u_int + k_p e */
    ap_param ppi[] = {{"k_p", k_p}, {"alpha", alpha}, {"tau_u", tau_u}};
    ap_model *m = ctl_model("dfc.pi", ppi, 3);
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    double r[2] = {0.3, -0.1}, t[2] = {0.5, 0.4};
    CHECK_OK(ap_sim_set_input(s, "r", r, 2));
    CHECK_OK(ap_sim_set_input(s, "t", t, 2));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_ADAMS;
    o.rtol = 1e-11;
    o.atol = 1e-13;
    o.t_end = 3.0;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(ap_sim_read(s, "c.u", u, 2));
    for (int j = 0; j < 2; j++) {
        double ui_exact = e[j] * (1 - alpha * k_p) * (1 - exp(-alpha * 3.0 / tau_u)) / alpha;
        CHECK_NEAR(u[j], ui_exact + k_p * e[j], 1e-9);
    }
    ap_sim_free(&s);
    ap_model_free(&m);
    /* rate and target must have one size; parameters are bounded */
    CHECK_OK(ap_model_new(&m, reg, 1));
    CHECK_OK(ap_model_add_input(m, "r", 2));
    CHECK_OK(ap_model_add_input(m, "t", 3));
    const char *ports[] = {"rate", "target"}, *sigs[] = {"r", "t"};
    CHECK_OK(ap_model_add_block(m, "c", "dfc.pi", NULL, 0, ports, sigs, 2));
    CHECK_FAILS(ap_model_compile(m, &s), AP_ESIZE, "rate has 2 values but target has 3");
    ap_model_free(&m);
    CHECK_OK(ap_model_new(&m, reg, 1));
    CHECK_OK(ap_model_add_input(m, "r", 2));
    ap_param bad[] = {{"tau_u", 0.0}};
    const char *sigs2[] = {"r", "r"};
    CHECK(ap_model_add_block(m, "c", "dfc.pi", bad, 1, ports, sigs2, 2) == AP_EINVAL);
    ap_param badk[] = {{"k_p", 1.0}};
    CHECK(ap_model_add_block(m, "c", "dfc.i", badk, 1, ports, sigs2, 2) == AP_EINVAL);
    ap_model_free(&m);
}

/* ---- the sleep phase: noisy apical compartments and the feedback rule -------------------- */
static void test_sleep_phase(void) {
    const int n[] = {3, 4, 2}, L = 2, T = 20;
    const double dt = 0.01, sigma = 0.05, tau_A = 0.3;
    net_spec sp = {.B = B,
                   .L = L,
                   .n = {3, 4, 2},
                   .act = {NULL, "tanh", "linear"},
                   .tau_v = 0.2,
                   .tau_A = tau_A,
                   .ctl = "dfc.pi",
                   .k_p = 0.1,
                   .alpha = 0.25,
                   .w_scale = 0.9,
                   .q_scale = 0.7};
    ap_model *m = net_build(&sp);
    ap_param fp[] = {{"sigma", sigma}};
    CHECK_OK(ap_model_add_rule(m, proj_id(m, "Q1"), "dfc.feedback_rule", fp, 1));
    CHECK_OK(ap_model_add_rule(m, proj_id(m, "Q2"), "dfc.feedback_rule", fp, 1));
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    if (!s) return;
    /* the output target is the feedforward output itself */
    double x[B * 3], rminus[B * 2];
    fill(x, B * 3, 1.0);
    CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 3),
                   a_mat("out", rminus, B, 2)));
    CHECK_OK(ap_sim_set_input(s, "x", x, B * 3));
    CHECK_OK(ap_sim_set_input(s, "target", rminus, B * 2));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_EULER_MARUYAMA;
    o.ordered = 1;
    o.dt = dt;
    o.steps = T;
    o.seed = 11;
    const char *order[] = {"ctl", "h1", "h2"}, *prev[] = {"ctl.u"};
    const char *noise[] = {"h1.apical", "h2.apical"};
    const double sg[] = {sigma, sigma};
    o.order = order;
    o.n_order = 3;
    o.previous = prev;
    o.n_previous = 1;
    o.noise = noise;
    o.sigma = sg;
    o.n_noise = 2;
    const char *rec[] = {"h1.apical", "h2.apical", "ctl.u"};
    o.record = rec;
    o.n_record = 3;
    o.every = 1;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    const double *va[2], *u, *tt;
    size_t nt;
    int w;
    CHECK_OK(ap_sim_recording(s, 0, &va[0], &tt, &nt, &w));
    CHECK_OK(ap_sim_recording(s, 1, &va[1], &tt, &nt, &w));
    CHECK_OK(ap_sim_recording(s, 2, &u, &tt, &nt, &w));
    CHECK(nt == (size_t)T + 1);
    /* noise moved the apical compartments (without it, nothing would: r* = r^-) */
    CHECK(max_abs(va[0] + (size_t)T * B * 4, B * 4) > 1e-3);
    /* the accumulated update: the mean over the T + 1 points of -(1/sigma^2) vA u^T */
    for (int i = 1; i <= L; i++) {
        char name[16];
        snprintf(name, sizeof name, "Q%d", i);
        const double *dQ, *db;
        double weight;
        CHECK_OK(ap_sim_accumulator(s, proj_id(m, name), &dQ, &db, &weight));
        CHECK(db == NULL && weight == T + 1);
        const int ni = n[i];
        for (int j = 0; j < ni; j++)
            for (int k = 0; k < 2; k++) {
                double acc = 0;
                for (size_t t = 0; t < nt; t++)
                    for (int b = 0; b < B; b++)
                        acc += va[i - 1][t * B * ni + b * ni + j] * u[t * B * 2 + b * 2 + k];
                acc *= -1.0 / (sigma * sigma) / (double)nt;
                CHECK_NEAR(dQ[j * 2 + k], acc, 1e-12 * fmax(1.0, fabs(acc)));
            }
    }
    ap_sim_free(&s);
    ap_model_free(&m);
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_forward);
    RUN(test_targets_and_loss);
    RUN(test_bp_finite_differences);
    RUN(test_dfa_by_hand);
    RUN(test_weight_product);
    RUN(test_convergence_mask);
    RUN(test_rules);
    RUN(test_controllers);
    RUN(test_sleep_phase);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
