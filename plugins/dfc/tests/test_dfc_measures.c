/* test_dfc_measures.c — the measures of App. F.1 in kernels_measures.c and kernels_alignment.c
 * on known answers: Condition 1 by hand (norms 3 and 4 give 1/7), the stability of the
 * linearised system against the closed form of a scalar 2 x 2 case (real, complex, unstable;
 * linear and tanh) and against the trace, the trace of the square and the determinant of the
 * matrix written out by hand on a 3-layer network, at the DFC-SSA point and at a given v;
 * dfc.mn_update and dfc.gn_update against J_W built by central differences and an explicit
 * solve; the issue's case (Q = J^T (J J^T)^{-1}, Condition 1: the DFC-SSA and MN updates align
 * as lambda, alpha, gamma -> 0); every error of the new kernels. */
#include <math.h>

#include "dfc_test.h"

#define M(k) a_obj("model", AP_ARG_MODEL, (k))
#define OPT(o) a_obj("optim", AP_ARG_OPTIM, (o))

static net_spec spec3(int B) {
    net_spec sp = NET_STD(B, "tanh", "linear", 0.9, 3, 4, 3, 2);
    return sp;
}

static ap_optim *optim_over_w(ap_model *m, int L) {
    int ids[NET_MAX];
    char name[16];
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "W%d", i);
        ids[i - 1] = proj_id(m, name);
    }
    ap_optim_opts oo;
    ap_optim_opts_default(&oo);
    ap_optim *o = NULL;
    CHECK_OK(ap_optim_new(&o, m, ids, L, &oo));
    return o;
}

/* W_1, b_1, ..., W_L, b_L of an optimiser's buffers, concatenated; returns the length */
static int read_grads(ap_optim *o, ap_model *m, const net_spec *sp, double *out) {
    int k = 0;
    char name[16];
    for (int i = 1; i <= sp->L; i++) {
        snprintf(name, sizeof name, "W%d", i);
        const int id = proj_id(m, name);
        const double *gw = ap_optim_grad_w(o, id), *gb = ap_optim_grad_b(o, id);
        for (int j = 0; j < sp->n[i] * sp->n[i - 1]; j++)
            out[k++] = gw[j];
        for (int j = 0; j < sp->n[i]; j++)
            out[k++] = gb[j];
    }
    return k;
}

static double angle_deg(const double *a, const double *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < n; k++) {
        ab += a[k] * b[k];
        aa += a[k] * a[k];
        bb += b[k] * b[k];
    }
    double c = ab / sqrt(aa * bb);
    c = c > 1 ? 1 : (c < -1 ? -1 : c);
    return acos(c) * 180.0 / 3.14159265358979323846;
}

/* Solves A x = b in place (n x n, Gaussian elimination with partial pivoting; A destroyed). */
static void solve(double *A, double *b, int n) {
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
        for (int k = 0; k < n; k++) {
            double t = A[c * n + k];
            A[c * n + k] = A[p * n + k];
            A[p * n + k] = t;
        }
        double t = b[c];
        b[c] = b[p];
        b[p] = t;
        for (int r = c + 1; r < n; r++) {
            const double f = A[r * n + c] / A[c * n + c];
            for (int k = c; k < n; k++)
                A[r * n + k] -= f * A[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < n; k++)
            s -= A[r * n + k] * b[k];
        b[r] = s / A[r * n + r];
    }
}

/* ---- Condition 1 ------------------------------------------------------------------------- */
static void test_condition1_hand(void) {
    ap_model *m = net_condition1_hand();
    double x[4] = {3, 0, 0, 0}, out[2];
    CHECK_OK(KCALL("dfc.condition1", M(m), a_mat("x", x, 2, 2), a_vec("out", out, 2)));
    /* norms (3, 4): mean 3.5, population std 0.5; norms (0, 4): mean 2, std 2 */
    printf("condition1: norms (3, 4) -> %.15g (1/7), (0, 4) -> %.15g\n", out[0], out[1]);
    CHECK_NEAR(out[0], 1.0 / 7.0, 1e-15);
    CHECK_NEAR(out[1], 1.0, 1e-15);
    /* errors */
    CHECK_FAILS(KCALL("dfc.condition1", M(m), a_mat("x", x, 2, 2), a_vec("out", out, 1)), AP_ESIZE,
                "out");
    CHECK_FAILS(KCALL("dfc.condition1", M(m), a_mat("x", x, 1, 4), a_vec("out", out, 1)), AP_ESIZE,
                "x");
    CHECK_FAILS(KCALL("dfc.condition1", M(m), a_mat("x", x, 2, 2)), AP_EINVAL,
                "missing argument out");
    CHECK_FAILS(
        KCALL("dfc.condition1", M(m), a_mat("x", x, 2, 2), a_vec("out", out, 2), a_num("alpha", 1)),
        AP_EINVAL, "alpha");
    proj_b(m, "W1")[1] = 0; /* all-zero activity in sample 1 */
    CHECK_FAILS(KCALL("dfc.condition1", M(m), a_mat("x", x, 2, 2), a_vec("out", out, 2)), AP_EINVAL,
                "mean layer norm is 0 for sample 2");
    ap_model_free(&m);

    /* a tanh network against the norms computed here */
    net_spec s3 = spec3(2);
    rng_state = 17;
    m = net_build(&s3);
    double x3[6], c1[2];
    fill(x3, 6, 1.2);
    CHECK_OK(KCALL("dfc.condition1", M(m), a_mat("x", x3, 2, 3), a_vec("out", c1, 2)));
    for (int b = 0; b < 2; b++) {
        double r0[3], r1[4], r2[3], s[3] = {0};
        memcpy(r0, x3 + 3 * b, sizeof r0);
        const double *w1 = proj_w(m, "W1"), *bb1 = proj_b(m, "W1");
        const double *w2 = proj_w(m, "W2"), *bb2 = proj_b(m, "W2");
        for (int j = 0; j < 4; j++) {
            double v = bb1[j];
            for (int k = 0; k < 3; k++)
                v += w1[j * 3 + k] * r0[k];
            r1[j] = tanh(v);
        }
        for (int j = 0; j < 3; j++) {
            double v = bb2[j];
            for (int k = 0; k < 4; k++)
                v += w2[j * 4 + k] * r1[k];
            r2[j] = tanh(v);
        }
        for (int k = 0; k < 3; k++)
            s[0] += r0[k] * r0[k], s[2] += r2[k] * r2[k];
        for (int k = 0; k < 4; k++)
            s[1] += r1[k] * r1[k];
        double mean = 0, var = 0;
        for (int i = 0; i < 3; i++)
            mean += sqrt(s[i]) / 3;
        for (int i = 0; i < 3; i++)
            var += (sqrt(s[i]) - mean) * (sqrt(s[i]) - mean) / 3;
        CHECK_NEAR(c1[b], sqrt(var) / mean, 1e-14);
        CHECK(c1[b] > 0.05);
    }
    ap_model_free(&m);
}

/* ---- stability --------------------------------------------------------------------------- */
/* eigenvalues of [[a, b], [c, d]]: the largest real part, and both sorted */
static double eig2(double a, double b, double c, double d, double *re, double *im) {
    const double tr = a + d, det = a * d - b * c, disc = tr * tr / 4 - det;
    if (disc >= 0) {
        re[0] = tr / 2 - sqrt(disc), re[1] = tr / 2 + sqrt(disc);
        im[0] = im[1] = 0;
    } else {
        re[0] = re[1] = tr / 2;
        im[0] = -sqrt(-disc), im[1] = sqrt(-disc);
    }
    return re[1];
}

static void test_stability_scalar(void) {
    /* one layer, one neuron: tau_v dv/dt = -v + w x + b + q u, u = u_int + k_p e,
     * tau_u du_int/dt = (1 - alpha k_p) e - alpha u_int, e = r* - phi(v):
     * A = [[-(1 + k_p q d)/tau_v, q/tau_v], [-(1 - alpha k_p) d/tau_u, -alpha/tau_u]],
     * d = phi'(v); det = d (q + alpha/d) / (tau_v tau_u) for d = 1: (q + alpha) / (tau_v tau_u) */
    net_spec sp = {.B = 1,
                   .L = 1,
                   .n = {1, 1},
                   .act = {NULL, "linear"},
                   .tau_v = 1,
                   .ctl = "dfc.pi",
                   .w_scale = 1,
                   .q_scale = 1};
    ap_model *m = net_build(&sp);
    double *q = proj_w(m, "Q1");
    proj_w(m, "W1")[0] = 0.7;
    proj_b(m, "W1")[0] = -0.2;
    double x[1] = {0.5}, t[1] = {0.9}, out[1], re[2], im[2], hre[2], him[2];
    struct {
        double q, alpha, k_p, tau_v, tau_u;
        int stable;
    } cases[] = {
        {1.0, 0.1, 1.5, 0.2, 1.0, 1},  /* real, stable */
        {5.0, 0.0, 0.0, 0.2, 1.0, 1},  /* complex: -2.5 -+ i sqrt(18.75) */
        {-0.5, 0.1, 1.5, 0.2, 1.0, 0}, /* q < -alpha: det < 0, one eigenvalue > 0 */
        {2.0, 0.3, 0.5, 0.5, 2.0, 1},  /* tau_u != 1 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        q[0] = cases[c].q;
        const double al = cases[c].alpha, kp = cases[c].k_p, tv = cases[c].tau_v,
                     tu = cases[c].tau_u;
        CHECK_OK(KCALL("dfc.stability", M(m), a_mat("x", x, 1, 1), a_mat("target", t, 1, 1),
                       a_num("alpha", al), a_num("k_p", kp), a_num("tau_v", tv), a_num("tau_u", tu),
                       a_vec("out", out, 1), a_mat("out_re", re, 1, 2), a_mat("out_im", im, 1, 2)));
        const double mx =
            eig2(-(1 + kp * q[0]) / tv, q[0] / tv, -(1 - al * kp) / tu, -al / tu, hre, him);
        printf("stability: q %g alpha %g k_p %g: %.15g (closed form %.15g)\n", q[0], al, kp, out[0],
               mx);
        CHECK_NEAR(out[0], mx, 1e-12);
        for (int k = 0; k < 2; k++) {
            CHECK_NEAR(re[k], hre[k], 1e-12);
            CHECK_NEAR(im[k], him[k], 1e-12);
        }
        CHECK(cases[c].stable ? out[0] < 0 : out[0] > 0);
    }
    ap_model_free(&m);

    /* tanh: d = phi'(v) at the given v, and at the DFC-SSA point by default */
    sp.act[1] = "tanh";
    m = net_build(&sp);
    const double w = 0.7, bias = -0.2, qq = 1.3, al = 0.2, kp = 1.0, tv = 0.3;
    proj_w(m, "W1")[0] = w;
    proj_b(m, "W1")[0] = bias;
    proj_w(m, "Q1")[0] = qq;
    double v[1] = {0.9};
    CHECK_OK(KCALL("dfc.stability", M(m), a_mat("v", v, 1, 1), a_num("alpha", al), a_num("k_p", kp),
                   a_num("tau_v", tv), a_vec("out", out, 1)));
    double d = 1 - tanh(v[0]) * tanh(v[0]);
    double mx = eig2(-(1 + kp * qq * d) / tv, qq / tv, -(1 - al * kp) * d, -al, hre, him);
    CHECK_NEAR(out[0], mx, 1e-12);
    /* Lemma 1: v^- = w x + b, u = (phi'(v^-) q + alpha)^{-1} (r* - tanh(v^-)), v = v^- + q u */
    const double vm = w * x[0] + bias, dm = 1 - tanh(vm) * tanh(vm);
    const double u = (t[0] - tanh(vm)) / (dm * qq + al), vss = vm + qq * u;
    d = 1 - tanh(vss) * tanh(vss);
    mx = eig2(-(1 + kp * qq * d) / tv, qq / tv, -(1 - al * kp) * d, -al, hre, him);
    CHECK_OK(KCALL("dfc.stability", M(m), a_mat("x", x, 1, 1), a_mat("target", t, 1, 1),
                   a_num("alpha", al), a_num("k_p", kp), a_num("tau_v", tv), a_vec("out", out, 1)));
    printf("stability: tanh at the DFC-SSA point v = %.6f: %.15g (closed form %.15g)\n", vss,
           out[0], mx);
    CHECK_NEAR(out[0], mx, 1e-12);
    ap_model_free(&m);
}

/* the system matrix written out entry by entry (state v_1..v_L, u_int) for spec3 */
static void hand_matrix(ap_model *m, const net_spec *sp, const double *v, double alpha, double k_p,
                        double tau_v, double tau_u, double *S, int n) {
    const int L = sp->L, nL = sp->n[L];
    int col[NET_MAX + 2] = {0};
    for (int i = 1; i <= L; i++)
        col[i + 1] = col[i] + sp->n[i];
    const int N = col[L + 1];
    double D[64];
    for (int i = 1; i <= L; i++)
        for (int j = 0; j < sp->n[i]; j++) {
            const double z = v[col[i] + j];
            D[col[i] + j] = strcmp(sp->act[i], "tanh") ? 1.0 : 1 - tanh(z) * tanh(z);
        }
    memset(S, 0, (size_t)n * n * sizeof *S);
    for (int i = 1; i <= L; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "W%d", i);
        const double *W = proj_w(m, nm);
        snprintf(nm, sizeof nm, "Q%d", i);
        const double *Q = proj_w(m, nm);
        for (int j = 0; j < sp->n[i]; j++) {
            const int row = col[i] + j;
            S[row * n + row] = -1 / tau_v;
            if (i > 1)
                for (int k = 0; k < sp->n[i - 1]; k++)
                    S[row * n + col[i - 1] + k] =
                        W[j * sp->n[i - 1] + k] * D[col[i - 1] + k] / tau_v;
            for (int k = 0; k < nL; k++) {
                /* d(Q_i u)/dv_L = Q_i k_p (-D_L) */
                S[row * n + col[L] + k] += Q[j * nL + k] * k_p * (-D[col[L] + k]) / tau_v;
                S[row * n + N + k] = Q[j * nL + k] / tau_v;
            }
        }
    }
    for (int k = 0; k < nL; k++) {
        S[(N + k) * n + col[L] + k] = (1 - alpha * k_p) * (-D[col[L] + k]) / tau_u;
        S[(N + k) * n + N + k] = -alpha / tau_u;
    }
}

static void test_stability_network(void) {
    net_spec sp = spec3(2);
    rng_state = 321;
    ap_model *m = net_build(&sp);
    enum { B = 2, N = 9, NL = 2, n = 11 };
    double x[B * 3], t[B * NL], u[B * NL], rl[B * NL];
    fill(x, B * 3, 1.0);
    CHECK_OK(KCALL("dfc.forward", M(m), a_mat("x", x, B, 3), a_mat("out", rl, B, NL)));
    for (int k = 0; k < B * NL; k++)
        t[k] = rl[k] + 0.3 * urand();
    const double alpha = 0.15, k_p = 1.2, tau_v = 0.2, tau_u = 1.0;
    /* the DFC-SSA point from dfc.ssa's u: v_i = W_i r_{i-1} + b_i + Q_i u */
    CHECK_OK(KCALL("dfc.ssa", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                   a_num("alpha", alpha), a_mat("u_out", u, B, NL)));
    double vss[B * N];
    for (int b = 0; b < B; b++) {
        const double *rp = x + 3 * b;
        double rbuf[2][4];
        int c0 = 0;
        for (int i = 1; i <= 3; i++) {
            char nm[16];
            snprintf(nm, sizeof nm, "W%d", i);
            const double *W = proj_w(m, nm), *bb = proj_b(m, nm);
            snprintf(nm, sizeof nm, "Q%d", i);
            const double *Q = proj_w(m, nm);
            double *ri = rbuf[i % 2];
            for (int j = 0; j < sp.n[i]; j++) {
                double s = bb[j];
                for (int k = 0; k < sp.n[i - 1]; k++)
                    s += W[j * sp.n[i - 1] + k] * rp[k];
                for (int k = 0; k < NL; k++)
                    s += Q[j * NL + k] * u[b * NL + k];
                vss[b * N + c0 + j] = s;
                ri[j] = strcmp(sp.act[i], "tanh") ? s : tanh(s);
            }
            rp = ri;
            c0 += sp.n[i];
        }
    }
    double out_d[B], out_v[B], re[B * n], im[B * n];
    CHECK_OK(KCALL("dfc.stability", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                   a_num("alpha", alpha), a_num("k_p", k_p), a_num("tau_v", tau_v),
                   a_vec("out", out_d, B)));
    CHECK_OK(KCALL("dfc.stability", M(m), a_mat("v", vss, B, N), a_num("alpha", alpha),
                   a_num("k_p", k_p), a_num("tau_v", tau_v), a_num("tau_u", tau_u),
                   a_vec("out", out_v, B), a_mat("out_re", re, B, n), a_mat("out_im", im, B, n)));
    for (int b = 0; b < B; b++) {
        printf("stability: 3-4-3-2 sample %d: %.15g (default point), %.15g (v given)\n", b,
               out_d[b], out_v[b]);
        CHECK_NEAR(out_d[b], out_v[b], 1e-12);
        CHECK_NEAR(out_v[b], re[b * n + n - 1], 0);
        /* the eigenvalues' sum, sum of squares and product against the hand matrix */
        double S[n * n], S2tr = 0, tr = 0;
        hand_matrix(m, &sp, vss + b * N, alpha, k_p, tau_v, tau_u, S, n);
        for (int p = 0; p < n; p++) {
            tr += S[p * n + p];
            for (int q = 0; q < n; q++)
                S2tr += S[p * n + q] * S[q * n + p];
        }
        double sre = 0, s2 = 0, pre = 1, pim = 0;
        for (int k = 0; k < n; k++) {
            const double a = re[b * n + k], c = im[b * n + k];
            sre += a;
            s2 += a * a - c * c;
            const double t0 = pre * a - pim * c;
            pim = pre * c + pim * a;
            pre = t0;
        }
        /* det by elimination (the solve's forward sweep): sign of the permutation kept */
        double A[n * n], det = 1;
        memcpy(A, S, sizeof A);
        for (int c = 0; c < n; c++) {
            int p = c;
            for (int r = c + 1; r < n; r++)
                if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
            if (p != c) {
                for (int k = 0; k < n; k++) {
                    double tmp = A[c * n + k];
                    A[c * n + k] = A[p * n + k];
                    A[p * n + k] = tmp;
                }
                det = -det;
            }
            det *= A[c * n + c];
            for (int r = c + 1; r < n; r++) {
                const double f = A[r * n + c] / A[c * n + c];
                for (int k = c; k < n; k++)
                    A[r * n + k] -= f * A[c * n + k];
            }
        }
        CHECK_NEAR(sre, tr, 1e-10 * fabs(tr));
        CHECK_NEAR(s2, S2tr, 1e-10 * fabs(S2tr));
        CHECK_NEAR(pre, det, 1e-9 * fabs(det));
        CHECK(fabs(pim) < 1e-9 * fabs(det));
    }
    /* the stacked feedback as the argument Q, on the same network without Q1..QL */
    double Qs[N * NL], out_q[B];
    int row = 0;
    for (int i = 1; i <= 3; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "Q%d", i);
        memcpy(Qs + row * NL, proj_w(m, nm), (size_t)sp.n[i] * NL * sizeof(double));
        row += sp.n[i];
    }
    rng_state = 321;
    ap_model *mf = net_build_forward(&sp);
    CHECK(max_abs_diff(proj_w(mf, "W2"), proj_w(m, "W2"), 12) == 0);
    CHECK_OK(KCALL("dfc.stability", M(mf), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                   a_num("alpha", alpha), a_num("k_p", k_p), a_num("tau_v", tau_v),
                   a_vec("out", out_q, B), a_mat("Q", Qs, N, NL)));
    for (int b = 0; b < B; b++)
        CHECK_NEAR(out_q[b], out_d[b], 1e-13);
    CHECK_FAILS(KCALL("dfc.stability", M(mf), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                      a_num("alpha", alpha), a_num("k_p", k_p), a_num("tau_v", tau_v),
                      a_vec("out", out_q, B), a_mat("Q", Qs, N - 1, NL)),
                AP_ESIZE, "Q has shape [8, 2]");
    ap_model_free(&mf);
    ap_model_free(&m);
}

/* ---- the reference updates against J_W by central differences ----------------------------- */
/* J_W (B x nL x P) by central differences, parameters in the order W_1, b_1, ..., W_L, b_L */
static int fd_jw(ap_model *m, const net_spec *sp, const double *x, int B, double *JW) {
    const int L = sp->L, nL = sp->n[L];
    int P = 0;
    for (int i = 1; i <= L; i++)
        P += sp->n[i] * (sp->n[i - 1] + 1);
    double rp[64], rm[64];
    const double h = 1e-6;
    int p = 0;
    for (int i = 1; i <= L; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "W%d", i);
        double *tensors[2] = {proj_w(m, nm), proj_b(m, nm)};
        const int len[2] = {sp->n[i] * sp->n[i - 1], sp->n[i]};
        for (int t = 0; t < 2; t++)
            for (int j = 0; j < len[t]; j++, p++) {
                double *w = tensors[t] + j, w0 = *w;
                *w = w0 + h;
                CHECK_OK(KCALL("dfc.forward", M(m), a_mat("x", (double *)x, B, sp->n[0]),
                               a_mat("out", rp, B, nL)));
                *w = w0 - h;
                CHECK_OK(KCALL("dfc.forward", M(m), a_mat("x", (double *)x, B, sp->n[0]),
                               a_mat("out", rm, B, nL)));
                *w = w0;
                for (int b = 0; b < B; b++)
                    for (int k = 0; k < nL; k++)
                        JW[((size_t)b * nL + k) * P + p] =
                            (rp[b * nL + k] - rm[b * nL + k]) / (2 * h);
            }
    }
    return P;
}

static void test_mn_gn_brute_force(void) {
    enum { B = 3, NL = 2 };
    net_spec sp = spec3(B);
    rng_state = 2024;
    ap_model *m = net_build(&sp);
    double x[B * 3], t[B * NL], rl[B * NL], JW[B * NL * 64];
    fill(x, B * 3, 1.3);
    CHECK_OK(KCALL("dfc.forward", M(m), a_mat("x", x, B, 3), a_mat("out", rl, B, NL)));
    for (int k = 0; k < B * NL; k++)
        t[k] = rl[k] + 0.2 * urand();
    const int P = fd_jw(m, &sp, x, B, JW);
    CHECK(P == 39);
    const double gamma = 0.05, scale = 0.7;
    ap_optim *o = optim_over_w(m, 3);
    double got[64], want[64];

    /* MN: per sample c = (J_W J_W^T + gamma I)^{-1} delta, g = scale (-2/B) sum_b J_W^T c */
    memset(want, 0, sizeof want);
    for (int b = 0; b < B; b++) {
        const double *J = JW + (size_t)b * NL * P;
        double A[NL * NL], c[NL];
        for (int p = 0; p < NL; p++) {
            c[p] = t[b * NL + p] - rl[b * NL + p];
            for (int q = 0; q < NL; q++) {
                double s = p == q ? gamma : 0;
                for (int k = 0; k < P; k++)
                    s += J[p * P + k] * J[q * P + k];
                A[p * NL + q] = s;
            }
        }
        solve(A, c, NL);
        for (int k = 0; k < P; k++)
            for (int p = 0; p < NL; p++)
                want[k] += scale * (-2.0 / B) * J[p * P + k] * c[p];
    }
    CHECK_OK(ap_optim_zero(o));
    CHECK_OK(KCALL("dfc.mn_update", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                   a_num("gamma", gamma), OPT(o), a_num("scale", scale)));
    CHECK(read_grads(o, m, &sp, got) == P);
    double err = max_abs_diff(got, want, P);
    printf("mn_update: largest difference from J_W by central differences %.3g (max |g| %.3g)\n",
           err, max_abs(want, P));
    CHECK(err < 1e-8);
    CHECK(max_abs(want, P) > 1e-2);

    /* GN: c_bar = (J_bar J_bar^T + gamma I)^{-1} delta_bar over the B NL stacked rows */
    enum { R = B * NL };
    double G[R * R], c[R];
    for (int p = 0; p < R; p++) {
        c[p] = t[p] - rl[p];
        for (int q = 0; q < R; q++) {
            double s = p == q ? gamma : 0;
            for (int k = 0; k < P; k++)
                s += JW[p * P + k] * JW[q * P + k];
            G[p * R + q] = s;
        }
    }
    solve(G, c, R);
    memset(want, 0, sizeof want);
    for (int k = 0; k < P; k++)
        for (int p = 0; p < R; p++)
            want[k] += scale * (-2.0 / B) * JW[p * P + k] * c[p];
    CHECK_OK(ap_optim_zero(o));
    CHECK_OK(KCALL("dfc.gn_update", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                   a_num("gamma", gamma), OPT(o), a_num("scale", scale)));
    read_grads(o, m, &sp, got);
    err = max_abs_diff(got, want, P);
    printf("gn_update: largest difference from J_bar by central differences %.3g\n", err);
    CHECK(err < 1e-8);
    /* the minibatch GN is not the mean of the per-sample MN updates (cross terms) */
    double mn[64];
    CHECK_OK(ap_optim_zero(o));
    CHECK_OK(KCALL("dfc.mn_update", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                   a_num("gamma", gamma), OPT(o), a_num("scale", scale)));
    read_grads(o, m, &sp, mn);
    printf("gn_update vs mn_update, B = 3: %.3g degrees apart\n", angle_deg(got, mn, P));
    CHECK(angle_deg(got, mn, P) > 1);
    /* B = 1: GN with a minibatch of one is the MN update; gamma = 0 is allowed */
    double g1[64], m1[64];
    for (int b = 0; b < B; b++) {
        CHECK_OK(ap_optim_zero(o));
        CHECK_OK(KCALL("dfc.gn_update", M(m), a_mat("x", x + 3 * b, 1, 3),
                       a_mat("target", t + NL * b, 1, NL), a_num("gamma", 0), OPT(o)));
        read_grads(o, m, &sp, g1);
        CHECK_OK(ap_optim_zero(o));
        CHECK_OK(KCALL("dfc.mn_update", M(m), a_mat("x", x + 3 * b, 1, 3),
                       a_mat("target", t + NL * b, 1, NL), a_num("gamma", 0), OPT(o)));
        read_grads(o, m, &sp, m1);
        CHECK(max_abs_diff(g1, m1, P) < 1e-12 * max_abs(m1, P));
    }
    /* the sign: the same half-space as dfc.bp's gradient (MSE towards the target) */
    double bp[64];
    CHECK_OK(ap_optim_zero(o));
    CHECK_OK(KCALL("dfc.bp", M(m), a_mat("x", x, B, 3), a_mat("y", t, B, NL), a_str("loss", "mse"),
                   OPT(o)));
    read_grads(o, m, &sp, bp);
    printf("angles with BP: mn %.2f, gn %.2f degrees\n", angle_deg(mn, bp, P),
           angle_deg(got, bp, P));
    CHECK(angle_deg(mn, bp, P) < 90 && angle_deg(got, bp, P) < 90);
    ap_optim_free(&o);
    ap_model_free(&m);
}

/* ---- dfc.gn_update with more rows than parameters (B n_L > P) ------------------------------ */
/* A layered network read once from the model for the hand computations below. */
typedef struct hand_net {
    int L, n[NET_MAX + 1], P, pc[NET_MAX + 1];
    int tanh_act[NET_MAX + 1];
    const double *W[NET_MAX + 1], *b[NET_MAX + 1];
} hand_net;

static hand_net hand_load(ap_model *m, const net_spec *sp) {
    hand_net h = {.L = sp->L};
    for (int i = 0; i <= sp->L; i++)
        h.n[i] = sp->n[i];
    for (int i = 1; i <= sp->L; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "W%d", i);
        h.W[i] = proj_w(m, nm);
        h.b[i] = proj_b(m, nm);
        h.tanh_act[i] = !strcmp(sp->act[i], "tanh");
        h.pc[i] = h.P;
        h.P += sp->n[i] * (sp->n[i - 1] + 1);
    }
    return h;
}

/* J_W of one sample (n_L x P, row-major, columns W_1, b_1, ..., W_L, b_L as fd_jw) by the chain
 * rule written out here, from a forward pass of its own; r_L into rL. Layers of <= 64. */
static void jw_sample(const hand_net *h, const double *x, double *JW, double *rL) {
    double r[NET_MAX + 1][64], dv[NET_MAX + 1][64], g[64], gp[64];
    const int L = h->L, nL = h->n[L], P = h->P;
    memcpy(r[0], x, (size_t)h->n[0] * sizeof(double));
    for (int i = 1; i <= L; i++)
        for (int j = 0; j < h->n[i]; j++) {
            double v = h->b[i][j];
            for (int a = 0; a < h->n[i - 1]; a++)
                v += h->W[i][j * h->n[i - 1] + a] * r[i - 1][a];
            r[i][j] = h->tanh_act[i] ? tanh(v) : v;
            dv[i][j] = h->tanh_act[i] ? 1 - r[i][j] * r[i][j] : 1;
        }
    memcpy(rL, r[L], (size_t)nL * sizeof(double));
    for (int k = 0; k < nL; k++) {
        for (int j = 0; j < nL; j++)
            g[j] = j == k ? dv[L][j] : 0; /* d r_L[k] / d v_L */
        for (int i = L; i >= 1; i--) {
            const int ni = h->n[i], np = h->n[i - 1];
            double *row = JW + (size_t)k * P + h->pc[i];
            for (int j = 0; j < ni; j++) {
                for (int a = 0; a < np; a++)
                    row[j * np + a] = g[j] * r[i - 1][a];
                row[ni * np + j] = g[j];
            }
            if (i == 1) break;
            for (int a = 0; a < np; a++) {
                double s = 0;
                for (int j = 0; j < ni; j++)
                    s += h->W[i][j * np + a] * g[j];
                gp[a] = s * dv[i - 1][a];
            }
            memcpy(g, gp, (size_t)np * sizeof(double));
        }
    }
}

/* y = J^+ d for J (R x P, row-major) by a one-sided Jacobi SVD written out here: columns of
 * A = J V rotated until orthogonal, then y = sum_j V_j (A_j . d) / s_j^2 over the s_j = |A_j|
 * above max(R, P) eps s_max (dgelsd's cut in the kernel). Returns the rank. */
static int pinv_apply(const double *J, int R, int P, const double *d, double *y) {
    double *A = malloc((size_t)R * P * sizeof *A), *V = calloc((size_t)P * P, sizeof *V);
    memcpy(A, J, (size_t)R * P * sizeof *A);
    for (int p = 0; p < P; p++)
        V[p * P + p] = 1;
    for (int sweep = 0, rotated = 1; rotated && sweep < 100; sweep++) {
        rotated = 0;
        for (int p = 0; p < P; p++)
            for (int q = p + 1; q < P; q++) {
                double al = 0, be = 0, ga = 0;
                for (int r = 0; r < R; r++) {
                    const double ap = A[r * P + p], aq = A[r * P + q];
                    al += ap * ap, be += aq * aq, ga += ap * aq;
                }
                if (ga == 0 || fabs(ga) <= 1e-15 * sqrt(al * be)) continue;
                rotated = 1;
                const double zeta = (be - al) / (2 * ga);
                const double t = (zeta >= 0 ? 1 : -1) / (fabs(zeta) + sqrt(1 + zeta * zeta));
                const double c = 1 / sqrt(1 + t * t), s = c * t;
                for (int r = 0; r < R; r++) {
                    const double ap = A[r * P + p], aq = A[r * P + q];
                    A[r * P + p] = c * ap - s * aq, A[r * P + q] = s * ap + c * aq;
                }
                for (int r = 0; r < P; r++) {
                    const double vp = V[r * P + p], vq = V[r * P + q];
                    V[r * P + p] = c * vp - s * vq, V[r * P + q] = s * vp + c * vq;
                }
            }
    }
    double smax = 0;
    for (int j = 0; j < P; j++) {
        double s2 = 0;
        for (int r = 0; r < R; r++)
            s2 += A[r * P + j] * A[r * P + j];
        smax = fmax(smax, sqrt(s2));
    }
    const double tol = (R > P ? R : P) * 2.220446049250313e-16 * smax;
    int rank = 0;
    memset(y, 0, (size_t)P * sizeof *y);
    for (int j = 0; j < P; j++) {
        double s2 = 0, ad = 0;
        for (int r = 0; r < R; r++)
            s2 += A[r * P + j] * A[r * P + j], ad += A[r * P + j] * d[r];
        if (sqrt(s2) <= tol) continue;
        rank++;
        for (int k = 0; k < P; k++)
            y[k] += V[k * P + j] * ad / s2;
    }
    free(A);
    free(V);
    return rank;
}

static double rel_diff(const double *got, const double *want, int n) {
    return max_abs_diff(got, want, n) / max_abs(want, n);
}

/* A 2-3-2 network (P = 17) and B = 12 samples: 24 stacked rows. tanh hidden layer: J_bar of
 * full column rank; all linear: rank 6 (the symmetry W_2 A^{-1}, A W_1, A b_1), J_bar^T J_bar
 * singular too. gamma = 0 against the Jacobi pseudoinverse, gamma > 0 against the dual system
 * solved by elimination; J_W by the chain rule, itself checked against central differences. */
static void test_gn_more_rows_than_params(void) {
    enum { B = 12, NL = 2, R = B * NL, P = 17 };
    net_spec sp = NET_STD(B, "tanh", "linear", 0.9, 2, 3, 2);
    for (int lin = 0; lin < 2; lin++) {
        sp.act[1] = lin ? "linear" : "tanh";
        rng_state = 99;
        ap_model *m = net_build(&sp);
        const hand_net h = hand_load(m, &sp);
        CHECK(h.P == P);
        double x[B * 2], rl[R], t[R], dl[R], JW[R * P], fd[R * P], y[P], want[P], got[P];
        fill(x, B * 2, 1.5);
        for (int b = 0; b < B; b++)
            jw_sample(&h, x + 2 * b, JW + b * NL * P, rl + b * NL);
        CHECK(fd_jw(m, &sp, x, B, fd) == P);
        const double efd = max_abs_diff(JW, fd, R * P);
        CHECK(efd < 1e-8);
        for (int k = 0; k < R; k++) {
            t[k] = rl[k] + 0.3 * urand();
            dl[k] = t[k] - rl[k];
        }
        ap_optim *o = optim_over_w(m, 2);
        const double scale = 0.7, s = scale * (-2.0 / B);
        /* gamma = 0: J_bar^+ delta_bar */
        const int rank = pinv_apply(JW, R, P, dl, y);
        for (int k = 0; k < P; k++)
            want[k] = s * y[k];
        CHECK_OK(ap_optim_zero(o));
        CHECK_OK(KCALL("dfc.gn_update", M(m), a_mat("x", x, B, 2), a_mat("target", t, B, NL),
                       a_num("gamma", 0), OPT(o), a_num("scale", scale)));
        CHECK(read_grads(o, m, &sp, got) == P);
        double err = rel_diff(got, want, P);
        printf("gn_update, %s 2-3-2, %d rows, P = %d (rank %d; J_W vs central differences %.2g): "
               "gamma = 0 vs Jacobi pseudoinverse %.3g relative\n",
               lin ? "linear" : "tanh", R, P, rank, efd, err);
        CHECK(rank == (lin ? 6 : P));
        CHECK(err < 1e-8);
        /* the least-squares residual is orthogonal to J_bar's columns */
        double res[R], nres = 0, nd = 0;
        for (int r = 0; r < R; r++) {
            res[r] = -dl[r];
            for (int k = 0; k < P; k++)
                res[r] += JW[r * P + k] * got[k] / s;
        }
        for (int k = 0; k < P; k++) {
            double a = 0, bd = 0;
            for (int r = 0; r < R; r++)
                a += JW[r * P + k] * res[r], bd += JW[r * P + k] * dl[r];
            nres = fmax(nres, fabs(a)), nd = fmax(nd, fabs(bd));
        }
        CHECK(nres < 1e-10 * nd);
        /* gamma > 0: J_bar^T (J_bar J_bar^T + gamma I)^{-1} delta_bar by elimination */
        const double gammas[] = {0.05, 1e-3};
        for (int gi = 0; gi < 2; gi++) {
            double G[R * R], c[R];
            for (int p = 0; p < R; p++) {
                c[p] = dl[p];
                for (int q = 0; q < R; q++) {
                    double sum = p == q ? gammas[gi] : 0;
                    for (int k = 0; k < P; k++)
                        sum += JW[p * P + k] * JW[q * P + k];
                    G[p * R + q] = sum;
                }
            }
            solve(G, c, R);
            for (int k = 0; k < P; k++) {
                want[k] = 0;
                for (int r = 0; r < R; r++)
                    want[k] += s * JW[r * P + k] * c[r];
            }
            CHECK_OK(ap_optim_zero(o));
            CHECK_OK(KCALL("dfc.gn_update", M(m), a_mat("x", x, B, 2), a_mat("target", t, B, NL),
                           a_num("gamma", gammas[gi]), OPT(o), a_num("scale", scale)));
            read_grads(o, m, &sp, got);
            err = rel_diff(got, want, P);
            printf("  gamma = %g (primal P x P) vs the dual solved by elimination: %.3g relative\n",
                   gammas[gi], err);
            CHECK(err < 1e-8);
        }
        ap_optim_free(&o);
        ap_model_free(&m);
    }
}

/* Where both forms apply: B = 3 samples of the 3-4-3-2 network (6 rows <= 39 parameters: the
 * dual system) against the same samples repeated K = 16 times (96 rows: the primal system for
 * gamma > 0, the SVD for gamma = 0, J_bar of rank 6). Repeating the rows scales J_bar^T J_bar
 * and J_bar^T delta_bar by K, so with gamma K the update is the same, and J_bar^+ delta_bar is
 * unchanged; the buffers differ by the -2/B factor only (1/K). */
static void test_gn_regimes_agree(void) {
    enum { B = 3, K = 16, NL = 2, BK = B * K };
    net_spec sp = spec3(B);
    rng_state = 4242;
    ap_model *m = net_build(&sp);
    double x[B * 3], t[B * NL], rl[B * NL], xk[BK * 3], tk[BK * NL], g1[64], gk[64];
    fill(x, B * 3, 1.2);
    CHECK_OK(KCALL("dfc.forward", M(m), a_mat("x", x, B, 3), a_mat("out", rl, B, NL)));
    for (int k = 0; k < B * NL; k++)
        t[k] = rl[k] + 0.2 * urand();
    for (int r = 0; r < K; r++) {
        memcpy(xk + r * B * 3, x, sizeof x);
        memcpy(tk + r * B * NL, t, sizeof t);
    }
    ap_optim *o = optim_over_w(m, 3);
    const double gammas[] = {0, 0.05, 1e-3};
    for (int gi = 0; gi < 3; gi++) {
        CHECK_OK(ap_optim_zero(o));
        CHECK_OK(KCALL("dfc.gn_update", M(m), a_mat("x", x, B, 3), a_mat("target", t, B, NL),
                       a_num("gamma", gammas[gi]), OPT(o)));
        const int P = read_grads(o, m, &sp, g1);
        CHECK_OK(ap_optim_zero(o));
        CHECK_OK(KCALL("dfc.gn_update", M(m), a_mat("x", xk, BK, 3), a_mat("target", tk, BK, NL),
                       a_num("gamma", gammas[gi] * K), OPT(o)));
        read_grads(o, m, &sp, gk);
        for (int k = 0; k < P; k++)
            gk[k] *= K;
        const double err = rel_diff(gk, g1, P);
        printf("gn_update, gamma = %g: %d rows (dual) vs %d rows (%s): %.3g relative\n", gammas[gi],
               B * NL, BK * NL, gammas[gi] > 0 ? "primal" : "SVD", err);
        CHECK(err < 1e-9);
        CHECK(max_abs(g1, P) > 1e-3);
    }
    ap_optim_free(&o);
    ap_model_free(&m);
}

/* The paper's student-teacher student, 15-10-10-5 (P = 325), with a minibatch of 128 (640 rows):
 * the case where the dual J_bar J_bar^T is singular. gamma = 0 satisfies the normal equations
 * J_bar^T (J_bar dW - delta_bar) = 0 and is the limit of the damped (primal) updates. The
 * angle with the MN update is printed, not checked: the least-squares fit is dominated by
 * J_bar's small singular directions (30 degrees from the gamma = 1e-2 update). */
static void test_gn_student_teacher(void) {
    enum { B = 128, NL = 5, R = B * NL, P = 325 };
    net_spec sp = NET_STD(B, "tanh", "linear", 0.5, 15, 10, 10, 5);
    rng_state = 31337;
    ap_model *m = net_build(&sp);
    const hand_net h = hand_load(m, &sp);
    CHECK(h.P == P);
    double *JW = malloc((size_t)R * P * sizeof *JW), x[B * 15], rl[R], t[R], dl[R];
    fill(x, B * 15, 1.0);
    for (int b = 0; b < B; b++)
        jw_sample(&h, x + 15 * b, JW + (size_t)b * NL * P, rl + b * NL);
    for (int k = 0; k < R; k++) {
        t[k] = rl[k] + 0.1 * urand();
        dl[k] = t[k] - rl[k];
    }
    ap_optim *o = optim_over_w(m, 3);
    double g0[P], gd[P], mn[P], y[P], res[R];
    CHECK_OK(ap_optim_zero(o));
    CHECK_OK(KCALL("dfc.gn_update", M(m), a_mat("x", x, B, 15), a_mat("target", t, B, NL),
                   a_num("gamma", 0), OPT(o)));
    CHECK(read_grads(o, m, &sp, g0) == P);
    for (int k = 0; k < P; k++)
        y[k] = g0[k] / (-2.0 / B);
    double nres = 0, nd = 0;
    for (int r = 0; r < R; r++) {
        res[r] = -dl[r];
        for (int k = 0; k < P; k++)
            res[r] += JW[(size_t)r * P + k] * y[k];
    }
    for (int k = 0; k < P; k++) {
        double a = 0, bd = 0;
        for (int r = 0; r < R; r++)
            a += JW[(size_t)r * P + k] * res[r], bd += JW[(size_t)r * P + k] * dl[r];
        nres = fmax(nres, fabs(a)), nd = fmax(nd, fabs(bd));
    }
    CHECK_OK(ap_optim_zero(o));
    CHECK_OK(KCALL("dfc.mn_update", M(m), a_mat("x", x, B, 15), a_mat("target", t, B, NL),
                   a_num("gamma", 0), OPT(o)));
    read_grads(o, m, &sp, mn);
    printf("gn_update, 15-10-10-5, B = 128: normal equations |J^T (J dW - delta)| = %.3g of "
           "|J^T delta| %.3g; angle with MN %.2f degrees\n",
           nres, nd, angle_deg(g0, mn, P));
    CHECK(nres < 1e-10 * nd);
    /* the damped updates tend to it as gamma -> 0 */
    double prev = 180;
    for (int e = 2; e <= 8; e += 2) {
        CHECK_OK(ap_optim_zero(o));
        CHECK_OK(KCALL("dfc.gn_update", M(m), a_mat("x", x, B, 15), a_mat("target", t, B, NL),
                       a_num("gamma", pow(10.0, -e)), OPT(o)));
        read_grads(o, m, &sp, gd);
        const double ang = angle_deg(gd, g0, P), err = rel_diff(gd, g0, P);
        printf("  gamma = 1e-%d: %.3g degrees, %.3g relative from gamma = 0\n", e, ang, err);
        CHECK(ang < prev);
        prev = ang;
        if (e == 8) CHECK(err < 1e-3);
    }
    free(JW);
    ap_optim_free(&o);
    ap_model_free(&m);
}

/* The primal system beyond the SVD's size, J_bar^T J_bar accumulated over chunks of rows: one
 * tanh layer 4 -> 3 (P = 15, n_L = 3) and 94000 samples (B n_L P = 4.2e6 > 2^22), gamma = 0
 * (full column rank: Cholesky of J_bar^T J_bar) and gamma > 0, against the normal equations
 * summed and solved (Gauss-Jordan) here in long double. (A deeper tanh network's J_bar^T J_bar
 * is too ill-conditioned for a 1e-8 check of a Cholesky solve.) */
static void test_gn_primal_chunked(void) {
    enum { B = 94000, N0 = 4, NL = 3, P = 15 };
    net_spec sp = NET_STD(1, "tanh", "tanh", 0.5, N0, NL);
    sp.q_scale = 1;
    rng_state = 2718;
    ap_model *m = net_build(&sp);
    const hand_net h = hand_load(m, &sp);
    CHECK(h.P == P);
    double *x = malloc((size_t)B * N0 * sizeof *x), *t = malloc((size_t)B * NL * sizeof *t);
    fill(x, (size_t)B * N0, 1.5);
    long double A[P * P] = {0}, g[P] = {0};
    for (int b = 0; b < B; b++) {
        double J[NL * P], rl[NL];
        jw_sample(&h, x + (size_t)b * N0, J, rl);
        for (int k = 0; k < NL; k++) {
            double *tk = t + (size_t)b * NL + k;
            *tk = rl[k] + 0.2 * urand();
            for (int p = 0; p < P; p++) {
                g[p] += (long double)J[k * P + p] * (*tk - rl[k]);
                for (int q = 0; q < P; q++)
                    A[p * P + q] += (long double)J[k * P + p] * J[k * P + q];
            }
        }
    }
    ap_optim *o = optim_over_w(m, 1);
    const double gammas[] = {0, 0.5};
    for (int gi = 0; gi < 2; gi++) {
        long double Ag[P * P], yl[P];
        double want[P], got[P];
        for (int p = 0; p < P; p++) {
            yl[p] = g[p];
            for (int q = 0; q < P; q++)
                Ag[p * P + q] = A[p * P + q] + (p == q ? gammas[gi] : 0);
        }
        /* Gauss-Jordan in long double, pivots on the diagonal (A is positive definite) */
        for (int c = 0; c < P; c++)
            for (int r = 0; r < P; r++) {
                if (r == c) continue;
                const long double f = Ag[r * P + c] / Ag[c * P + c];
                for (int k = c; k < P; k++)
                    Ag[r * P + k] -= f * Ag[c * P + k];
                yl[r] -= f * yl[c];
            }
        for (int p = 0; p < P; p++)
            want[p] = (double)(yl[p] / Ag[p * P + p]) * (-2.0 / B);
        CHECK_OK(ap_optim_zero(o));
        CHECK_OK(KCALL("dfc.gn_update", M(m), a_mat("x", x, B, N0), a_mat("target", t, B, NL),
                       a_num("gamma", gammas[gi]), OPT(o)));
        CHECK(read_grads(o, m, &sp, got) == P);
        const double err = rel_diff(got, want, P);
        printf("gn_update, 4-3, B = %d (chunked J^T J), gamma = %g: %.3g relative\n", B, gammas[gi],
               err);
        CHECK(err < 1e-8);
    }
    free(x);
    free(t);
    ap_optim_free(&o);
    ap_model_free(&m);
}

/* ---- the issue's known-answer case --------------------------------------------------------- */
/* A linear 3-4-3-2 network rescaled so that ||r_0|| = ||r_1|| = ||r_2|| for the sample
 * (Condition 1), Q = J^T (J J^T)^{-1} (Condition 2, J Q = I): the DFC-SSA update and the MN
 * update align as lambda = alpha = gamma -> 0. Without Condition 1 they do not. */
static void test_issue_case(void) {
    net_spec sp = spec3(1);
    sp.act[1] = sp.act[2] = "linear";
    rng_state = 777;
    ap_model *m = net_build(&sp);
    enum { NL = 2, N = 9 };
    double x[3], rl[NL], t[NL], dir[NL], J[NL * N], Qd[N * NL], c1[1], c2[1];
    fill(x, 3, 1.0);
    fill(dir, NL, 1.0);
    /* layer 2 much louder than the input: Condition 1 clearly violated as drawn */
    for (int k = 0; k < 12; k++)
        proj_w(m, "W2")[k] *= 4;
    for (int j = 0; j < 3; j++)
        proj_b(m, "W2")[j] *= 4;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            /* Condition 1: scale W_i, b_i so that ||r_i|| = ||x|| (linear layers) */
            for (int i = 1; i <= 2; i++) {
                char nm[16];
                snprintf(nm, sizeof nm, "W%d", i);
                double *W = proj_w(m, nm), *bb = proj_b(m, nm);
                double r[4] = {0}, rp[4] = {0}, nx = 0, nr = 0;
                /* r_{i-1} from the (already scaled) layers below */
                memcpy(rp, x, sizeof x);
                for (int l = 1; l <= i; l++) {
                    char nl[16];
                    snprintf(nl, sizeof nl, "W%d", l);
                    const double *Wl = proj_w(m, nl), *bl = proj_b(m, nl);
                    for (int j = 0; j < sp.n[l]; j++) {
                        r[j] = bl[j];
                        for (int k = 0; k < sp.n[l - 1]; k++)
                            r[j] += Wl[j * sp.n[l - 1] + k] * rp[k];
                    }
                    if (l < i) memcpy(rp, r, sizeof r);
                }
                for (int k = 0; k < 3; k++)
                    nx += x[k] * x[k];
                for (int j = 0; j < sp.n[i]; j++)
                    nr += r[j] * r[j];
                const double s = sqrt(nx / nr);
                for (int k = 0; k < sp.n[i] * sp.n[i - 1]; k++)
                    W[k] *= s;
                for (int j = 0; j < sp.n[i]; j++)
                    bb[j] *= s;
            }
        }
        CHECK_OK(KCALL("dfc.condition1", M(m), a_mat("x", x, 1, 3), a_vec("out", c1, 1)));
        size_t sh[3] = {1, NL, N};
        ap_arg out = {.name = "out", .kind = AP_ARG_ARRAY, .data = J, .ndim = 3};
        memcpy(out.shape, sh, sizeof sh);
        CHECK_OK(KCALL("dfc.jacobian", M(m), a_mat("x", x, 1, 3), out));
        /* Q = J^T (J J^T)^{-1} */
        double A[4] = {0};
        for (int p = 0; p < NL; p++)
            for (int q = 0; q < NL; q++)
                for (int k = 0; k < N; k++)
                    A[p * NL + q] += J[p * N + k] * J[q * N + k];
        const double det = A[0] * A[3] - A[1] * A[2];
        const double Ai[4] = {A[3] / det, -A[1] / det, -A[2] / det, A[0] / det};
        for (int r = 0; r < N; r++)
            for (int c = 0; c < NL; c++)
                Qd[r * NL + c] = J[r] * Ai[c] + J[N + r] * Ai[2 + c];
        int row = 0;
        for (int i = 1; i <= 3; i++) {
            char nm[16];
            snprintf(nm, sizeof nm, "Q%d", i);
            memcpy(proj_w(m, nm), Qd + row * NL, (size_t)sp.n[i] * NL * sizeof(double));
            row += sp.n[i];
        }
        CHECK_OK(KCALL("dfc.condition2", M(m), a_mat("x", x, 1, 3), a_vec("out", c2, 1)));
        CHECK_NEAR(c2[0], 1.0, 1e-12);
        printf("issue case, %s: Condition 1 = %.3g, Condition 2 = %.15f\n",
               pass ? "rescaled" : "as drawn", c1[0], c2[0]);
        CHECK(pass ? c1[0] < 1e-12 : c1[0] > 0.05);

        CHECK_OK(KCALL("dfc.forward", M(m), a_mat("x", x, 1, 3), a_mat("out", rl, 1, NL)));
        ap_optim *o_ssa = optim_over_w(m, 3), *o_mn = optim_over_w(m, 3);
        double gs[64], gm[64], prev = 180;
        for (int e = 1; e <= 5; e++) {
            const double lam = pow(10.0, -e);
            for (int k = 0; k < NL; k++)
                t[k] = rl[k] + lam * dir[k];
            CHECK_OK(ap_optim_zero(o_ssa));
            CHECK_OK(ap_optim_zero(o_mn));
            CHECK_OK(KCALL("dfc.ssa", M(m), a_mat("x", x, 1, 3), a_mat("target", t, 1, NL),
                           a_num("alpha", lam), OPT(o_ssa)));
            CHECK_OK(KCALL("dfc.mn_update", M(m), a_mat("x", x, 1, 3), a_mat("target", t, 1, NL),
                           a_num("gamma", lam), OPT(o_mn)));
            const int P = read_grads(o_ssa, m, &sp, gs);
            read_grads(o_mn, m, &sp, gm);
            const double ang = angle_deg(gs, gm, P);
            printf("  lambda = alpha = gamma = 1e-%d: angle(DFC-SSA, MN) = %.3g degrees\n", e, ang);
            if (pass == 1) {
                CHECK(ang < prev * 0.5); /* shrinks with lambda */
                prev = ang;
            } else {
                CHECK(ang > 5); /* Condition 1 violated: no alignment in the limit */
            }
        }
        if (pass == 1) CHECK(prev < 1e-3);
        /* stability of this network: J Q = I is stable; -Q makes J Q = -I, unstable */
        double st[1];
        CHECK_OK(KCALL("dfc.stability", M(m), a_mat("x", x, 1, 3), a_mat("target", t, 1, NL),
                       a_num("alpha", 0.01), a_num("k_p", 1.5), a_num("tau_v", 0.2),
                       a_vec("out", st, 1)));
        CHECK(st[0] < 0);
        const double st_good = st[0];
        for (int i = 1; i <= 3; i++) {
            char nm[16];
            snprintf(nm, sizeof nm, "Q%d", i);
            double *q = proj_w(m, nm);
            for (int k = 0; k < sp.n[i] * NL; k++)
                q[k] = -q[k];
        }
        CHECK_OK(KCALL("dfc.stability", M(m), a_mat("x", x, 1, 3), a_mat("target", t, 1, NL),
                       a_num("alpha", 0.01), a_num("k_p", 1.5), a_num("tau_v", 0.2),
                       a_vec("out", st, 1)));
        printf("  stability: Q = J^+ %.4g, Q = -J^+ %.4g\n", st_good, st[0]);
        CHECK(st[0] > 0);
        ap_optim_free(&o_ssa);
        ap_optim_free(&o_mn);
    }
    ap_model_free(&m);
}

/* ---- errors ------------------------------------------------------------------------------ */
static void test_errors(void) {
    net_spec sp = spec3(2);
    rng_state = 5;
    ap_model *m = net_build(&sp);
    ap_optim *o = optim_over_w(m, 3);
    double x[6], t[4], out[2], v[18], re[22], im[22];
    fill(x, 6, 1);
    fill(t, 4, 1);
    fill(v, 18, 1);
    const char *ks[] = {"dfc.mn_update", "dfc.gn_update"};
    for (int k = 0; k < 2; k++) {
        const char *K = ks[k];
        CHECK_FAILS(KCALL(K, M(m), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2), OPT(o)),
                    AP_EINVAL, "missing argument gamma");
        CHECK_FAILS(
            KCALL(K, M(m), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2), a_num("gamma", 0.1)),
            AP_EINVAL, "missing argument optim");
        CHECK_FAILS(
            KCALL(K, a_mat("x", x, 2, 3), a_mat("target", t, 2, 2), a_num("gamma", 0.1), OPT(o)),
            AP_EINVAL, "missing argument model");
        CHECK_FAILS(KCALL(K, M(m), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2),
                          a_num("gamma", -1), OPT(o)),
                    AP_EINVAL, "gamma = -1");
        CHECK_FAILS(KCALL(K, M(m), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2),
                          a_num("gamma", NAN), OPT(o)),
                    AP_EINVAL, "gamma = nan");
        CHECK_FAILS(KCALL(K, M(m), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2),
                          a_num("gamma", 0.1), OPT(o), a_num("scale", INFINITY)),
                    AP_EINVAL, "scale = inf");
        CHECK_FAILS(KCALL(K, M(m), a_mat("x", x, 2, 3), a_mat("target", t, 1, 2),
                          a_num("gamma", 0.1), OPT(o)),
                    AP_ESIZE, "target");
        CHECK_FAILS(KCALL(K, M(m), a_mat("x", x, 3, 2), a_mat("target", t, 2, 2),
                          a_num("gamma", 0.1), OPT(o)),
                    AP_ESIZE, "x");
        CHECK_FAILS(KCALL(K, M(m), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2),
                          a_num("gamma", 0.1), OPT(o), a_num("alpha", 0)),
                    AP_EINVAL, "unknown argument");
        CHECK_FAILS(KCALL(K, M(m), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2),
                          a_num("gamma", 0.1), a_obj("optim", AP_ARG_MODEL, m)),
                    AP_EINVAL, "optim");
    }
    /* a saturated tanh output: J = 0, J_W J_W^T = 0, singular without damping */
    net_spec ss = spec3(2);
    ss.act[3] = "tanh";
    ap_model *ms = net_build(&ss);
    ap_optim *os = optim_over_w(ms, 3);
    double *b3 = proj_b(ms, "W3");
    b3[0] = b3[1] = 100;
    CHECK_FAILS(KCALL("dfc.mn_update", M(ms), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2),
                      a_num("gamma", 0), OPT(os)),
                AP_EINVAL, "singular for sample 1");
    /* GN with gamma = 0 is J_bar^+ delta_bar, defined for any J_bar: 0 here (the SVD, after the
     * dual Cholesky fails); with damping it is 0 too */
    double gz[64];
    for (int k = 0; k < 2; k++) {
        CHECK_OK(ap_optim_zero(os));
        CHECK_OK(KCALL("dfc.gn_update", M(ms), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2),
                       a_num("gamma", k ? 1e-3 : 0), OPT(os)));
        CHECK(max_abs(gz, read_grads(os, ms, &ss, gz)) == 0);
    }
    ap_optim_free(&os);
    ap_model_free(&ms);
    /* the GN system's size limit: min(B n_L, P) = min(12000, 24002) rows, refused before any
     * allocation of the stacked Jacobians */
    net_spec sw = NET_STD(2, "tanh", "linear", 0.1, 1, 6000, 2);
    ap_model *mw = net_build(&sw);
    ap_optim *ow = optim_over_w(mw, 2);
    double *xb = calloc(6000, sizeof(double)), *tb = calloc(6000 * 2, sizeof(double));
    CHECK_FAILS(KCALL("dfc.gn_update", M(mw), a_mat("x", xb, 6000, 1), a_mat("target", tb, 6000, 2),
                      a_num("gamma", 0.1), OPT(ow)),
                AP_EINVAL, "12000 x 12000 (the smaller of B n_L = 12000 rows and P = 24002");
    /* gamma = 0, a singular dual system (saturated output) and J_bar too large for the SVD:
     * B n_L P = 400 x 12002 values */
    ap_optim_free(&ow);
    ap_model_free(&mw);
    sw.n[1] = 2000;
    sw.n[0] = 3;
    sw.act[2] = "tanh";
    mw = net_build(&sw);
    ow = optim_over_w(mw, 2);
    proj_b(mw, "W2")[0] = proj_b(mw, "W2")[1] = 100;
    CHECK_FAILS(KCALL("dfc.gn_update", M(mw), a_mat("x", xb, 200, 3), a_mat("target", tb, 200, 2),
                      a_num("gamma", 0), OPT(ow)),
                AP_EINVAL, "needs B n_L P = 4800800 values of J_bar");
    free(xb);
    free(tb);
    ap_optim_free(&ow);
    ap_model_free(&mw);
    /* gamma > 0 negligible against the curvature of a rank-deficient J_bar (a linear 2-3-2
     * network, 24 rows, 17 parameters, rank 6): refused, not garbage */
    net_spec sl = {.B = 12,
                   .L = 2,
                   .n = {2, 3, 2},
                   .act = {NULL, "linear", "linear"},
                   .tau_v = 0.2,
                   .ctl = "dfc.pi",
                   .w_scale = 0.9,
                   .q_scale = 0.9};
    ap_model *ml = net_build(&sl);
    ap_optim *ol = optim_over_w(ml, 2);
    double xl[24], tl[24];
    fill(xl, 24, 1);
    fill(tl, 24, 1);
    CHECK_FAILS(KCALL("dfc.gn_update", M(ml), a_mat("x", xl, 12, 2), a_mat("target", tl, 12, 2),
                      a_num("gamma", 1e-20), OPT(ol)),
                AP_EINVAL, "J_bar^T J_bar + gamma I (17 x 17, all samples) is singular or");
    CHECK_OK(KCALL("dfc.gn_update", M(ml), a_mat("x", xl, 12, 2), a_mat("target", tl, 12, 2),
                   a_num("gamma", 0), OPT(ol)));
    ap_optim_free(&ol);
    ap_model_free(&ml);

    /* dfc.stability */
    const char *K = "dfc.stability";
#define STAB(...)                                                                                  \
    KCALL(K, M(m), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2), a_vec("out", out, 2), __VA_ARGS__)
    CHECK_FAILS(STAB(a_num("k_p", 1), a_num("tau_v", 0.2)), AP_EINVAL, "missing argument alpha");
    CHECK_FAILS(STAB(a_num("alpha", 0.1), a_num("tau_v", 0.2)), AP_EINVAL, "missing argument k_p");
    CHECK_FAILS(STAB(a_num("alpha", 0.1), a_num("k_p", 1)), AP_EINVAL, "missing argument tau_v");
    CHECK_FAILS(STAB(a_num("alpha", 0.1), a_num("k_p", 1), a_num("tau_v", 0)), AP_EINVAL,
                "tau_v = 0");
    CHECK_FAILS(STAB(a_num("alpha", 0.1), a_num("k_p", 1), a_num("tau_v", 0.2), a_num("tau_u", -1)),
                AP_EINVAL, "tau_u = -1");
    CHECK_FAILS(STAB(a_num("alpha", NAN), a_num("k_p", 1), a_num("tau_v", 0.2)), AP_EINVAL,
                "alpha = nan");
    CHECK_FAILS(STAB(a_num("alpha", 0.1), a_num("k_p", INFINITY), a_num("tau_v", 0.2)), AP_EINVAL,
                "k_p = inf");
    CHECK_FAILS(
        STAB(a_num("alpha", 0.1), a_num("k_p", 1), a_num("tau_v", 0.2), a_mat("v", v, 2, 8)),
        AP_ESIZE, "v");
    CHECK_FAILS(
        STAB(a_num("alpha", 0.1), a_num("k_p", 1), a_num("tau_v", 0.2), a_mat("out_re", re, 2, 11)),
        AP_EINVAL, "out_re and out_im together");
    CHECK_FAILS(STAB(a_num("alpha", 0.1), a_num("k_p", 1), a_num("tau_v", 0.2),
                     a_mat("out_re", re, 2, 10), a_mat("out_im", im, 2, 10)),
                AP_ESIZE, "out_re");
    CHECK_FAILS(STAB(a_num("alpha", 0.1), a_num("k_p", 1), a_num("tau_v", 0.2), a_num("lambda", 1)),
                AP_EINVAL, "unknown argument");
#undef STAB
    CHECK_FAILS(KCALL(K, M(m), a_mat("target", t, 2, 2), a_vec("out", out, 2), a_num("alpha", 0.1),
                      a_num("k_p", 1), a_num("tau_v", 0.2)),
                AP_EINVAL, "missing argument x");
    CHECK_FAILS(KCALL(K, M(m), a_mat("x", x, 2, 3), a_vec("out", out, 2), a_num("alpha", 0.1),
                      a_num("k_p", 1), a_num("tau_v", 0.2)),
                AP_EINVAL, "missing argument target");
    CHECK_FAILS(KCALL(K, M(m), a_mat("v", v, 2, 9), a_vec("out", out, 1), a_num("alpha", 0.1),
                      a_num("k_p", 1), a_num("tau_v", 0.2)),
                AP_ESIZE, "out");
    /* with v, neither x nor target is needed */
    CHECK_OK(KCALL(K, M(m), a_mat("v", v, 2, 9), a_vec("out", out, 2), a_num("alpha", 0.1),
                   a_num("k_p", 1), a_num("tau_v", 0.2)));
    /* Q = 0 and alpha = 0: J Q + alpha I is singular, no DFC-SSA point */
    for (int i = 1; i <= 3; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "Q%d", i);
        memset(proj_w(m, nm), 0, (size_t)sp.n[i] * 2 * sizeof(double));
    }
    CHECK_FAILS(KCALL(K, M(m), a_mat("x", x, 2, 3), a_mat("target", t, 2, 2), a_vec("out", out, 2),
                      a_num("alpha", 0), a_num("k_p", 1), a_num("tau_v", 0.2)),
                AP_EINVAL, "JQ + alpha I is singular for sample 1");
    ap_optim_free(&o);
    ap_model_free(&m);
    /* a network without Q1..QL */
    ap_model *mf = net_build_forward(&sp);
    CHECK_FAILS(KCALL(K, M(mf), a_mat("v", v, 2, 9), a_vec("out", out, 2), a_num("alpha", 0.1),
                      a_num("k_p", 1), a_num("tau_v", 0.2)),
                AP_ENOTFOUND, "Q1");
    ap_model_free(&mf);
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_condition1_hand);
    RUN(test_stability_scalar);
    RUN(test_stability_network);
    RUN(test_mn_gn_brute_force);
    RUN(test_gn_more_rows_than_params);
    RUN(test_gn_regimes_agree);
    RUN(test_gn_student_teacher);
    RUN(test_gn_primal_chunked);
    RUN(test_issue_case);
    RUN(test_errors);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
