/* kernels_alignment.c — the reference updates of the alignment measures of App. F.1, written
 * into an optimiser's buffers like dfc.bp and dfc.ssa: the damped minimum-norm update
 * (dfc.mn_update, (217)) per sample and the (damped) Gauss-Newton update of the whole minibatch
 * (dfc.gn_update, (128), (218)-(219)).
 *
 * J_W^b = d r_L / d (W_1, b_1, ..., W_L, b_L) of sample b at the feedforward state. A weight
 * W_i[j, k] acts on r_L through v_i[j] only, with dv_i[j] / dW_i[j, k] = r_{i-1}[k] (and 1 for
 * b_i[j]), so J_W^b = [J_1^b (x) r_0^{bT}, J_1^b, ..., J_L^b (x) r_{L-1}^{bT}, J_L^b] with
 * J_i = d r_L / d v_i (jacobian.c). Hence
 *     J_W^b J_W^{b'T} = sum_i (r_{i-1}^b . r_{i-1}^{b'} + beta_i) J_i^b J_i^{b'T}
 *     J_W^{bT} c      = (J_i^{bT} c) r_{i-1}^{bT} for W_i, J_i^{bT} c for b_i,
 * with beta_i = 1 when layer i has a bias (0 otherwise). dfc.mn_update solves an n_L x n_L
 * system per sample by Cholesky (LAPACK's dposv) without forming J_W. dfc.gn_update solves the
 * smaller of the dual (B n_L) and primal (P, the number of parameters) systems, and for
 * gamma = 0 falls back to the SVD of the explicit stacked J_W (dgelsd); see k_gn_update.
 *
 * Sign and scaling: both kernels add scale * (-2/B) * sum_b dW^b — the convention of dfc.ssa,
 * whose buffers hold the reference's descent "gradient" -2/B sum_b (phi(v_i) - phi(vB_i))
 * r_{i-1}^T. An optimiser step (p -= lr g) then moves the weights along dW, towards the target,
 * and the buffers point the same way as dfc.bp's dLoss/dW up to a positive factor (dfc.bp adds
 * J_W^T dLoss/dr_L = -J_W^T (r* - r_L^-) / lambda for targets from dfc.targets). With
 * lambda -> 0, alpha -> 0, gamma -> 0, Q = J^T (J J^T)^{-1} (Condition 2), linear layers and
 * Condition 1 (equal ||r_{i-1}||^2 + beta_i), dfc.ssa adds kappa (-2/B) sum_b dW_MN^b with
 * kappa = ||r_{i-1}||^2 + beta_i: the two directions coincide (the known-answer test in
 * tests/test_dfc_measures.c). Without Condition 1 or with nonlinear layers (the factor
 * phi_i' of the rule (5), App. A.6 (131)) they differ, as in the paper.
 */
#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/optim.h"
#include "dfc_internal.h"

/* dfc.gn_update's limits, in values of 8 bytes. The Gram matrix of the smaller system,
 * min(B n_L, P)^2, is refused beyond GN_GRAM_LIMIT (1 GiB). The SVD of the explicit stacked J_W
 * (gamma = 0) is used up to GN_SVD_LIMIT = B n_L P (32 MiB; beyond it an SVD costs minutes).
 * J_bar^T J_bar is accumulated from GN_CHUNK values of J_bar rows at a time (8 MiB). */
#define GN_GRAM_LIMIT ((size_t)1 << 27)
#define GN_SVD_LIMIT ((size_t)1 << 22)
#define GN_CHUNK ((size_t)1 << 20)
/* A Cholesky solve is trusted when LAPACK's estimate of the reciprocal condition number of the
 * (damped) Gram matrix is at least this (relative error of the solve about eps / rcond, 1e-6). */
#define GN_RCOND 1e-10

/* What both kernels share: the arguments, the feedforward state and the Jacobians. */
typedef struct align {
    dfc_net net;
    ap_optim *opt;
    int B, N, nL;
    int *col;   /* L + 1 entries: dfc_net_columns */
    size_t P;   /* parameters: sum_i n_i (n_{i-1} + beta_i) */
    size_t *pc; /* L + 1 entries: first parameter of W_i (b_i follows it) in J_W's columns */
    double gamma, scale;
    int weighted;  /* dfc.mn_update: the weighted MN update of Theorem 3 */
    int nonlinear; /* with weighted: dv_i mapped through phi_i (the reference code's MN) */
    double *x, *target;
    double **v, **r, **d; /* L + 1 entries each: the feedforward state and phi' there */
    double *beta;         /* beta[i] = 1 with a bias, else 0 (i = 1..L) */
    double *J;     /* B x n_L x N: sample b's J at J + b n_L N (rows of one B n_L x N matrix) */
    double *post;  /* B x N: J^{bT} c_b, the postsynaptic factor of every layer */
    double *delta; /* B x n_L: r* - r_L^- (becomes c after the dual solve) */
    double *mem;
    void *ptrs; /* v, r, d, pc and col */
} align;

static void align_free(align *w) {
    free(w->mem);
    free(w->ptrs);
    w->mem = NULL;
    w->ptrs = NULL;
    dfc_net_free(&w->net);
}

/* The per-layer arrays of w (after the network is loaded). */
static int align_ptrs(const char *K, align *w) {
    const size_t k = (size_t)w->net.L + 1;
    w->ptrs = malloc(k * (3 * sizeof(double *) + sizeof(size_t) + sizeof(int)));
    if (!w->ptrs) return ap_error(AP_ENOMEM, "kernel %s: out of memory", K);
    w->v = w->ptrs;
    w->r = w->v + k;
    w->d = w->r + k;
    w->pc = (size_t *)(w->d + k);
    w->col = (int *)(w->pc + k);
    return AP_OK;
}

/* Reads the arguments and the network's shape; nothing is allocated yet. */
static int align_parse(const ap_kernel_args *a, const char *K, align *w) {
    static const char *const known[] = {"model", "x",        "target",    "gamma", "optim",
                                        "scale", "weighted", "nonlinear", "net"};
    memset(w, 0, sizeof *w);
    int rc = ap_args_check(a, K, known, 9);
    ap_model *m = NULL;
    if (!rc) rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m);
    if (!rc) rc = ap_arg_object(a, K, "optim", AP_ARG_OPTIM, 1, (void **)&w->opt);
    if (!rc) rc = dfc_net_arg(a, K, "net", m, 0, &w->net);
    if (!rc) rc = align_ptrs(K, w);
    if (rc) return rc;
    const dfc_net *net = &w->net;
    const int L = net->L;
    w->nL = net->n[L];
    w->N = dfc_net_columns(net, w->col);
    w->scale = 1;
    if ((rc = dfc_arg_matrix(a, K, "x", 1, net->n[0], &w->B, &w->x))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "target", 1, w->nL, &w->B, &w->target))) return rc;
    if ((rc = ap_arg_number(a, K, "gamma", 1, &w->gamma))) return rc;
    if ((rc = ap_arg_number(a, K, "scale", 0, &w->scale))) return rc;
    double weighted = 0;
    if ((rc = ap_arg_number(a, K, "weighted", 0, &weighted))) return rc;
    if (weighted != 0 && weighted != 1)
        return ap_error(AP_EINVAL, "kernel %s: weighted = %g, must be 0 or 1", K, weighted);
    w->weighted = weighted == 1;
    double nonlinear = 0;
    if ((rc = ap_arg_number(a, K, "nonlinear", 0, &nonlinear))) return rc;
    if (nonlinear != 0 && nonlinear != 1)
        return ap_error(AP_EINVAL, "kernel %s: nonlinear = %g, must be 0 or 1", K, nonlinear);
    if (nonlinear == 1 && !w->weighted)
        return ap_error(AP_EINVAL,
                        "kernel %s: nonlinear = 1 maps dv through phi and needs "
                        "weighted = 1",
                        K);
    w->nonlinear = nonlinear == 1;
    if (!(w->gamma >= 0) || !isfinite(w->gamma))
        return ap_error(AP_EINVAL, "kernel %s: gamma = %g, must be finite and >= 0", K, w->gamma);
    if (!isfinite(w->scale)) return ap_error(AP_EINVAL, "kernel %s: scale = %g", K, w->scale);
    w->P = 0;
    for (int i = 1; i <= L; i++) {
        w->pc[i] = w->P;
        w->P += (size_t)net->n[i] * ((size_t)net->n[i - 1] + (net->b[i] ? 1 : 0));
    }
    return AP_OK;
}

/* Runs the forward pass and builds every sample's J (after align_parse). */
static int align_alloc(const char *K, align *w) {
    const dfc_net *net = &w->net;
    const int L = net->L, B = w->B, N = w->N, nL = w->nL;
    const size_t nJ = (size_t)B * nL * N, nP = (size_t)B * N, nd = (size_t)B * nL;
    double **const sets[3] = {w->v, w->r, w->d};
    int rc = dfc_layer_buffers(net, K, B, 3, sets, nJ + nP + nd + (size_t)L + 1, &w->mem, &w->J);
    if (rc) return rc;
    w->post = w->J + nJ;
    w->delta = w->post + nP;
    w->beta = w->delta + nd;
    w->r[0] = w->x; /* read only */
    /* (2) and phi' at the feedforward state */
    dfc_forward(net, B, w->v, w->r);
    for (int i = 1; i <= L; i++) {
        net->act[i]->df((size_t)B * (size_t)net->n[i], w->v[i], w->d[i]);
        w->beta[i] = net->b[i] ? 1.0 : 0.0;
    }
    for (size_t k = 0; k < nd; k++)
        w->delta[k] = w->target[k] - w->r[L][k];
    for (int b = 0; b < B; b++)
        dfc_jacobian_sample(net, w->d, b, w->J + (size_t)b * nL * N);
    return AP_OK;
}

static int align_setup(const ap_kernel_args *a, const char *K, align *w) {
    int rc = align_parse(a, K, w);
    return rc ? rc : align_alloc(K, w);
}

/* nonlinear: P_i[b] (= dv_i) becomes phi_i(v_i + dv_i) - phi_i(v_i), in every layer (w->d, the
 * derivatives, no longer needed, is the scratch). */
static void align_map_nonlinear(align *w) {
    const dfc_net *net = &w->net;
    for (int i = 1; i <= net->L; i++) {
        const int ni = net->n[i];
        for (int b = 0; b < w->B; b++) {
            double *P = w->post + (size_t)b * w->N + w->col[i], *t = w->d[i] + (size_t)b * ni;
            const double *v = w->v[i] + (size_t)b * ni, *r = w->r[i] + (size_t)b * ni;
            for (int j = 0; j < ni; j++)
                t[j] = v[j] + P[j];
            net->act[i]->f((size_t)ni, t, t);
            for (int j = 0; j < ni; j++)
                P[j] = t[j] - r[j];
        }
    }
}

/* P[b] = J^{bT} c_b (c in w->delta; with nonlinear mapped through phi), then grad W_i +=
 * s P_i^T r_{i-1}, grad b_i += s sum_b P_i with s = scale (-2/B), for the projections the
 * optimiser holds. */
static void align_write(align *w) {
    const dfc_net *net = &w->net;
    const int B = w->B, N = w->N, nL = w->nL;
    for (int b = 0; b < B; b++)
        cblas_dgemv(CblasRowMajor, CblasTrans, nL, N, 1.0, w->J + (size_t)b * nL * N, N,
                    w->delta + (size_t)b * nL, 1, 0.0, w->post + (size_t)b * N, 1);
    if (w->nonlinear) align_map_nonlinear(w);
    const double s = -2.0 * w->scale / B;
    for (int i = 1; i <= net->L; i++) {
        double *gw = ap_optim_grad_w(w->opt, net->w_id[i]);
        double *gb = ap_optim_grad_b(w->opt, net->w_id[i]);
        const int ni = net->n[i], np = net->n[i - 1];
        const double *Pi = w->post + w->col[i]; /* B x n_i, leading dimension N */
        if (gw)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, np, B, s, Pi, N, w->r[i - 1],
                        np, 1.0, gw, np);
        if (gb)
            for (int b = 0; b < B; b++)
                for (int j = 0; j < ni; j++)
                    gb[j] += s * Pi[(size_t)b * N + j];
    }
}

/* grad W_i, b_i += scale (-2/B) y for a whole parameter vector y (J_W's column order). */
static void align_write_params(align *w, const double *y) {
    const dfc_net *net = &w->net;
    const double s = -2.0 * w->scale / w->B;
    for (int i = 1; i <= net->L; i++) {
        double *gw = ap_optim_grad_w(w->opt, net->w_id[i]);
        double *gb = ap_optim_grad_b(w->opt, net->w_id[i]);
        const int ni = net->n[i], np = net->n[i - 1];
        if (gw) cblas_daxpy(ni * np, s, y + w->pc[i], 1, gw, 1);
        if (gb && net->b[i]) cblas_daxpy(ni, s, y + w->pc[i] + (size_t)ni * np, 1, gb, 1);
    }
}

/* The rows (b, k) of the stacked J_W for samples b0 .. b0 + nb - 1: row (b - b0) n_L + k,
 * parameter p at out[row rs + p ps] (rs = P, ps = 1: row-major; rs = 1, ps = rows:
 * column-major). */
static void align_jw_rows(const align *w, int b0, int nb, double *out, size_t rs, size_t ps) {
    const dfc_net *net = &w->net;
    const int N = w->N, nL = w->nL;
    for (int b = b0; b < b0 + nb; b++)
        for (int k = 0; k < nL; k++) {
            const size_t row = (size_t)(b - b0) * nL + k;
            const double *Jrow = w->J + ((size_t)b * nL + k) * N;
            for (int i = 1; i <= net->L; i++) {
                const int ni = net->n[i], np = net->n[i - 1];
                const double *Ji = Jrow + w->col[i], *rp = w->r[i - 1] + (size_t)b * np;
                double *o = out + row * rs + w->pc[i] * ps;
                for (int j = 0; j < ni; j++) {
                    for (int c = 0; c < np; c++)
                        o[((size_t)j * np + c) * ps] = Ji[j] * rp[c];
                    if (net->b[i]) o[((size_t)ni * np + j) * ps] = Ji[j];
                }
            }
        }
}

/* Solves the SPD system A y = rhs (n x n, lower triangle of row-major A; A is overwritten) by
 * Cholesky, as dposv does, with LAPACK's estimate of the reciprocal condition number of A in
 * *rcond. Returns LAPACK's info: > 0 when A is not positive definite (rhs untouched then). */
static lapack_int chol_solve(size_t n, double *A, double *rhs, double *rcond) {
    const lapack_int nn = (lapack_int)n;
    const double anorm = LAPACKE_dlansy(LAPACK_ROW_MAJOR, '1', 'L', nn, A, nn);
    *rcond = 0;
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', nn, A, nn);
    if (info) return info;
    info = LAPACKE_dpocon(LAPACK_ROW_MAJOR, 'L', nn, A, nn, anorm, rcond);
    if (info) return info;
    return LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', nn, 1, A, nn, rhs, 1);
}

/* ---- dfc.mn_update ----------------------------------------------------------------------- */
/* Per sample: M = sum_i (||r_{i-1}||^2 + beta_i) J_i J_i^T + gamma I = J_W J_W^T + gamma I,
 * c = M^{-1} delta_L, dW^b = J_W^T c. */
static int k_mn_update(const ap_kernel_args *a) {
    static const char *const K = "dfc.mn_update";
    align w;
    int rc = align_setup(a, K, &w);
    if (rc) {
        align_free(&w);
        return rc;
    }
    const dfc_net *net = &w.net;
    const int B = w.B, N = w.N, nL = w.nL;
    double *M = malloc((size_t)nL * nL * sizeof *M);
    if (!M) {
        align_free(&w);
        return ap_error(AP_ENOMEM, "kernel %s: out of memory", K);
    }
    for (int b = 0; b < B && !rc; b++) {
        const double *J = w.J + (size_t)b * nL * N;
        memset(M, 0, (size_t)nL * nL * sizeof *M);
        for (int i = 1; i <= net->L; i++) {
            const int np = net->n[i - 1];
            const double *rp = w.r[i - 1] + (size_t)b * np;
            /* weighted (Theorem 3): dv = J^T (J J^T + gamma I)^{-1} delta, dW_i = dv_i r_{i-1}^T,
             * i.e. every layer's share with weight 1 (the weight-space MN update weights layer
             * i by ||r_{i-1}||^2 + 1[bias]; the two agree when Condition 1 holds) */
            const double kappa = w.weighted ? 1.0 : cblas_ddot(np, rp, 1, rp, 1) + w.beta[i];
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, nL, net->n[i], kappa, J + w.col[i],
                        N, 1.0, M, nL);
        }
        for (int k = 0; k < nL; k++)
            M[(size_t)k * nL + k] += w.gamma;
        lapack_int info =
            LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', nL, 1, M, nL, w.delta + (size_t)b * nL, 1);
        if (info != 0)
            rc = ap_error(info > 0 ? AP_EINVAL : AP_EPLUGIN,
                          "kernel %s: J_W J_W^T + gamma I is singular for sample %d (LAPACK "
                          "info %d); gamma = %g",
                          K, b + 1, (int)info, w.gamma);
    }
    if (!rc) align_write(&w);
    free(M);
    align_free(&w);
    return rc;
}

/* ---- dfc.gn_update ----------------------------------------------------------------------- */
/* The GN step of the minibatch, (128) / (218)-(219), with J_bar = [J_W^1; ...; J_W^B] (R = B n_L
 * rows, P columns) and delta_bar likewise:
 *     gamma > 0: dW = (J_bar^T J_bar + gamma I)^{-1} J_bar^T delta_bar
 *                   = J_bar^T (J_bar J_bar^T + gamma I)^{-1} delta_bar,
 *     gamma = 0: dW = J_bar^+ delta_bar, the minimum-norm least-squares solution (218),
 * the curvature accumulated over all samples before the inverse, as App. A.5 stresses.
 * Which system is solved:
 *  - by Cholesky, the smaller Gram matrix: the dual R x R one (from the J_i J_i^T and the Gram
 *    matrices of r_{i-1}; J_bar is never formed) when R <= P, else the primal P x P one
 *    (J_bar^T J_bar accumulated from GN_CHUNK values of explicit rows at a time). With
 *    gamma = 0 they give J_bar^+ only for a J_bar of full rank (rows for the dual, columns for
 *    the primal); for R > P, J_bar J_bar^T is singular, so the dual is never used then.
 *  - with gamma = 0 and R P <= GN_SVD_LIMIT, the SVD of the explicit J_bar (dgelsd; singular
 *    values below max(R, P) eps times the largest count as zero, the default of NumPy's
 *    lstsq): at once when R > P (the primal normal equations would square J_bar's condition
 *    number), and for R <= P when the dual Cholesky (tried first: R^2 N work against the SVD's
 *    R^2 P) fails or its rcond is below GN_RCOND. It handles any rank.
 * A Cholesky solve with rcond below GN_RCOND and no SVD to fall back on is an error.
 * Decision: one damping gamma (the paper's (219) splits it into the leak alpha and an implicit
 * damping; pass their sum), and the same -2/B factor as dfc.mn_update, so that the two
 * kernels agree exactly for B = 1 (GN with a minibatch of 1 is the MN update, App. A.5) and
 * whenever the samples do not interact (J_W^b J_W^{b'T} = 0 for b != b'). */

/* Dual: c = (J_bar J_bar^T + gamma I)^{-1} delta_bar (R values); *info and *rcond from
 * chol_solve. Returns AP_OK or AP_ENOMEM. */
static int gn_dual(const align *w, const char *K, double *c, double *rcond, lapack_int *info) {
    const dfc_net *net = &w->net;
    const int B = w->B, N = w->N, nL = w->nL, R = B * nL;
    const size_t nG = (size_t)R * (size_t)R;
    /* G, one layer's J_i J_i^T (T), the B x B Gram matrix of r_{i-1} (Kr) */
    double *G = malloc((2 * nG + (size_t)B * B) * sizeof *G);
    if (!G) return ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", K, 2 * nG);
    double *T = G + nG, *Kr = T + nG;
    memset(G, 0, nG * sizeof *G);
    for (int i = 1; i <= net->L; i++) {
        const int np = net->n[i - 1];
        /* T = J_i J_i^T over all rows (b, k) of the stacked J: lower triangle */
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, R, net->n[i], 1.0, w->J + w->col[i], N,
                    0.0, T, R);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, B, np, 1.0, w->r[i - 1], np,
                    w->r[i - 1], np, 0.0, Kr, B);
        for (int p = 0; p < R; p++) {
            const double *kr = Kr + (size_t)(p / nL) * B;
            for (int q = 0; q <= p; q++)
                G[(size_t)p * R + q] += (kr[q / nL] + w->beta[i]) * T[(size_t)p * R + q];
        }
    }
    for (int p = 0; p < R; p++)
        G[(size_t)p * R + p] += w->gamma;
    memcpy(c, w->delta, (size_t)R * sizeof *c);
    *info = chol_solve((size_t)R, G, c, rcond);
    free(G);
    return AP_OK;
}

/* Primal: y = (J_bar^T J_bar + gamma I)^{-1} J_bar^T delta_bar (P values); *info and *rcond
 * from chol_solve. Returns AP_OK or AP_ENOMEM. */
static int gn_primal(const align *w, const char *K, double *y, double *rcond, lapack_int *info) {
    const int B = w->B, nL = w->nL;
    const size_t P = w->P;
    size_t per = GN_CHUNK / ((size_t)nL * P); /* samples per chunk of rows */
    const int nb = per < 1 ? 1 : (per > (size_t)B ? B : (int)per);
    const size_t n = P * P + (size_t)nb * nL * P;
    double *A = malloc(n * sizeof *A);
    if (!A) return ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", K, n);
    double *C = A + P * P;
    memset(A, 0, P * P * sizeof *A);
    memset(y, 0, P * sizeof *y);
    for (int b0 = 0; b0 < B; b0 += nb) {
        const int rows = (b0 + nb <= B ? nb : B - b0) * nL;
        align_jw_rows(w, b0, rows / nL, C, P, 1);
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)P, rows, 1.0, C, (int)P, 1.0, A,
                    (int)P);
        cblas_dgemv(CblasRowMajor, CblasTrans, rows, (int)P, 1.0, C, (int)P,
                    w->delta + (size_t)b0 * nL, 1, 1.0, y, 1);
    }
    for (size_t p = 0; p < P; p++)
        A[p * P + p] += w->gamma;
    *info = chol_solve(P, A, y, rcond);
    free(A);
    return AP_OK;
}

/* gamma = 0 by the SVD of the explicit J_bar (column-major R x P): y = J_bar^+ delta_bar. */
static int gn_svd(const align *w, const char *K, double *y) {
    const size_t R = (size_t)w->B * w->nL, P = w->P;
    const size_t ld = R > P ? R : P, mn = R < P ? R : P, n = R * P + ld + mn;
    double *Jc = malloc(n * sizeof *Jc);
    if (!Jc) return ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", K, n);
    double *bv = Jc + R * P, *sv = bv + ld;
    align_jw_rows(w, 0, w->B, Jc, 1, R);
    memcpy(bv, w->delta, R * sizeof *bv);
    memset(bv + R, 0, (ld - R) * sizeof *bv);
    lapack_int rank = 0;
    const lapack_int info =
        LAPACKE_dgelsd(LAPACK_COL_MAJOR, (lapack_int)R, (lapack_int)P, 1, Jc, (lapack_int)R, bv,
                       (lapack_int)ld, sv, (double)ld * DBL_EPSILON, &rank);
    int rc = AP_OK;
    if (info != 0)
        rc = ap_error(info == LAPACK_WORK_MEMORY_ERROR ? AP_ENOMEM : AP_EPLUGIN,
                      "kernel %s: the SVD of J_bar (%zu x %zu) failed (LAPACK dgelsd info %d)", K,
                      R, P, (int)info);
    else
        memcpy(y, bv, P * sizeof *y);
    free(Jc);
    return rc;
}

/* The GN step of w (after align_alloc) into w's optimiser: the Cholesky solve of the smaller
 * system (m x m, primal when P < R), the SVD where allowed (svd) when that fails or is
 * ill-conditioned, or an error naming the system and what to change. */
static int gn_solve(align *w, const char *K, int primal, int svd) {
    const size_t R = (size_t)w->B * w->nL, P = w->P, m = primal ? P : R;
    double *y = malloc((P + R) * sizeof *y); /* y: P parameters (primal, SVD); c: R (dual) */
    if (!y) return ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", K, P + R);
    double *c = y + P, rcond = 0;
    lapack_int info = 0;
    int solved = 0, rc = AP_OK;
    if (!(svd && primal)) {
        rc = primal ? gn_primal(w, K, y, &rcond, &info) : gn_dual(w, K, c, &rcond, &info);
        if (!rc && info < 0)
            rc = ap_error(AP_EPLUGIN, "kernel %s: LAPACK info %d in the Cholesky solve", K,
                          (int)info);
        solved = !rc && info == 0 && rcond >= GN_RCOND;
    }
    if (!rc && !solved && svd) {
        rc = gn_svd(w, K, y);
        solved = !rc;
        primal = 1; /* the result is in y */
    }
    const char *sys = primal ? "J_bar^T J_bar" : "J_bar J_bar^T";
    if (!rc && !solved && w->gamma > 0)
        rc = ap_error(AP_EINVAL,
                      "kernel %s: %s + gamma I (%zu x %zu, all samples) is singular or "
                      "ill-conditioned (LAPACK info %d, reciprocal condition %.3g < %g); "
                      "gamma = %g is negligible against the curvature: pass a larger gamma",
                      K, sys, m, m, (int)info, rcond, GN_RCOND, w->gamma);
    else if (!rc && !solved)
        rc = ap_error(AP_EINVAL,
                      "kernel %s: %s (%zu x %zu, all samples) is singular or ill-conditioned "
                      "(LAPACK info %d, reciprocal condition %.3g < %g) with gamma = 0, and the "
                      "pseudoinverse by SVD needs B n_L P = %zu values of J_bar (limit %zu); "
                      "pass gamma > 0 or fewer samples",
                      K, sys, m, m, (int)info, rcond, GN_RCOND, R * P, GN_SVD_LIMIT);
    if (!rc && primal) {
        align_write_params(w, y);
    } else if (!rc) {
        memcpy(w->delta, c, R * sizeof *c);
        align_write(w);
    }
    free(y);
    return rc;
}

static int k_gn_update(const ap_kernel_args *a) {
    static const char *const K = "dfc.gn_update";
    align w;
    int rc = align_parse(a, K, &w);
    if (!rc && w.weighted)
        rc = ap_error(AP_EINVAL, "kernel %s: weighted applies to dfc.mn_update only", K);
    if (rc) {
        align_free(&w);
        return rc;
    }
    const size_t R = (size_t)w.B * w.nL, P = w.P;
    const int primal = P < R;
    const size_t m = primal ? P : R, nG = m * m;
    const int svd = w.gamma == 0 && R * P <= GN_SVD_LIMIT;
    if (nG > GN_GRAM_LIMIT)
        rc = ap_error(AP_EINVAL,
                      "kernel %s: the Gauss-Newton system is %zu x %zu (the smaller of B n_L = "
                      "%zu rows and P = %zu parameters; %zu values, limit %zu); use fewer "
                      "samples",
                      K, m, m, R, P, nG, GN_GRAM_LIMIT);
    if (!rc) rc = align_alloc(K, &w);
    if (!rc) rc = gn_solve(&w, K, primal, svd);
    align_free(&w);
    return rc;
}

static const ap_kernel kernels[] = {
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.mn_update",
     "the damped minimum-norm update (217) per sample, dW^b = J_W^T (J_W J_W^T + gamma I)^{-1} "
     "(r* - r_L^-) with J_W = d r_L / d(all W_i, b_i) at the feedforward state; adds scale "
     "(-2/B) sum_b dW^b to the optimiser's gradients (dfc.ssa's sign and scaling)",
     "model, x[B,n0], target[B,nL], gamma (>= 0), optim, scale (default 1), weighted (0 or 1, "
     "default 0: with 1 the weighted MN update of Theorem 3, dv = J^T (J J^T + gamma I)^{-1} "
     "delta_L, dW_i = dv_i r_{i-1}^T, db_i = dv_i: the weight-space MN update when Condition 1 "
     "holds), nonlinear (0 or 1, default 0; with weighted = 1: dv_i replaced by phi_i(v_i + "
     "dv_i) - phi_i(v_i), the reference code's MN update of Fig. 3)",
     k_mn_update},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.gn_update",
     "the damped Gauss-Newton update (128) of the minibatch, dW = (J_bar^T J_bar + gamma I)^{-1} "
     "J_bar^T delta_bar = J_bar^T (J_bar J_bar^T + gamma I)^{-1} delta_bar with J_bar the "
     "per-sample J_W stacked (B n_L rows, P columns; the smaller system is solved), and "
     "J_bar^+ delta_bar for gamma = 0 (SVD when B n_L P <= 2^22); adds scale (-2/B) dW to the "
     "optimiser's gradients (equals dfc.mn_update for B = 1)",
     "model, x[B,n0], target[B,nL], gamma (>= 0), optim, scale (default 1)", k_gn_update},
};

int dfc_register_kernels_alignment(ap_registry *r) {
    return dfc_add_kernels(r, kernels, sizeof kernels / sizeof kernels[0]);
}
