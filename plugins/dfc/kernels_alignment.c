/* kernels_alignment.c — the reference updates of the alignment measures of App. F.1, written
 * into an optimiser's buffers like dfc.bp and dfc.ssa: the damped minimum-norm update
 * (dfc.mn_update, (217)) per sample and the damped Gauss-Newton update of the whole minibatch
 * (dfc.gn_update, (128), (219)).
 *
 * J_W^b = d r_L / d (W_1, b_1, ..., W_L, b_L) of sample b at the feedforward state is never
 * formed. A weight W_i[j, k] acts on r_L through v_i[j] only, with dv_i[j] / dW_i[j, k] =
 * r_{i-1}[k] (and 1 for b_i[j]), so J_W^b = [J_1^b (x) r_0^{bT}, J_1^b, ..., J_L^b (x)
 * r_{L-1}^{bT}, J_L^b] with J_i = d r_L / d v_i (jacobian.c). Hence
 *     J_W^b J_W^{b'T} = sum_i (r_{i-1}^b . r_{i-1}^{b'} + beta_i) J_i^b J_i^{b'T}
 *     J_W^{bT} c      = (J_i^{bT} c) r_{i-1}^{bT} for W_i, J_i^{bT} c for b_i,
 * with beta_i = 1 when layer i has a bias (0 otherwise): only n_L x n_L (MN) or B n_L x B n_L
 * (GN) systems are solved, by Cholesky (LAPACK's dposv).
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
 *
 * This file uses OpenBLAS's cblas.h and LAPACKE, and no GSL header. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/optim.h"
#include "dfc_internal.h"

/* The B n_L x B n_L Gram matrix of dfc.gn_update is refused beyond this many values (1 GiB). */
#define GN_GRAM_LIMIT ((size_t)1 << 27)

/* What both kernels share: the arguments, the feedforward state and the Jacobians. */
typedef struct align {
    dfc_net net;
    ap_optim *opt;
    int B, N, nL;
    int col[DFC_MAX_LAYERS + 1];
    double gamma, scale;
    double *x, *target;
    double *v[DFC_MAX_LAYERS + 1], *r[DFC_MAX_LAYERS + 1], *d[DFC_MAX_LAYERS + 1];
    double *beta;  /* beta[i] = 1 with a bias, else 0 (i = 1..L) */
    double *J;     /* B x n_L x N: sample b's J at J + b n_L N (rows of one B n_L x N matrix) */
    double *P;     /* B x N: J^{bT} c_b, the postsynaptic factor of every layer */
    double *delta; /* B x n_L: r* - r_L^- (becomes c after the solve) */
    double *mem;
} align;

static void align_free(align *w) {
    free(w->mem);
    w->mem = NULL;
}

/* Reads the arguments, runs the forward pass and builds every sample's J. */
static int align_setup(const ap_kernel_args *a, const char *K, align *w) {
    static const char *const known[] = {"model", "x", "target", "gamma", "optim", "scale"};
    memset(w, 0, sizeof *w);
    int rc = ap_args_check(a, K, known, 6);
    ap_model *m = NULL;
    if (!rc) rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m);
    if (!rc) rc = ap_arg_object(a, K, "optim", AP_ARG_OPTIM, 1, (void **)&w->opt);
    if (!rc) rc = dfc_net_load(m, K, 0, &w->net);
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
    if (!(w->gamma >= 0) || !isfinite(w->gamma))
        return ap_error(AP_EINVAL, "kernel %s: gamma = %g, must be finite and >= 0", K, w->gamma);
    if (!isfinite(w->scale)) return ap_error(AP_EINVAL, "kernel %s: scale = %g", K, w->scale);

    const int B = w->B, N = w->N, nL = w->nL;
    size_t off[DFC_MAX_LAYERS + 1];
    const size_t total = dfc_layer_offsets(net, B, off);
    const size_t nJ = (size_t)B * nL * N, nP = (size_t)B * N, nd = (size_t)B * nL;
    const size_t n_mem = 3 * total + nJ + nP + nd + (size_t)L + 1;
    w->mem = malloc(n_mem * sizeof *w->mem);
    if (!w->mem) return ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", K, n_mem);
    for (int i = 0; i <= L; i++) {
        w->v[i] = w->mem + off[i];
        w->r[i] = w->mem + total + off[i];
        w->d[i] = w->mem + 2 * total + off[i];
    }
    w->J = w->mem + 3 * total;
    w->P = w->J + nJ;
    w->delta = w->P + nP;
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

/* P[b] = J^{bT} c_b (c in w->delta), then grad W_i += s P_i^T r_{i-1}, grad b_i += s sum_b P_i
 * with s = scale (-2/B), for the projections the optimiser holds. */
static void align_write(align *w) {
    const dfc_net *net = &w->net;
    const int B = w->B, N = w->N, nL = w->nL;
    for (int b = 0; b < B; b++)
        cblas_dgemv(CblasRowMajor, CblasTrans, nL, N, 1.0, w->J + (size_t)b * nL * N, N,
                    w->delta + (size_t)b * nL, 1, 0.0, w->P + (size_t)b * N, 1);
    const double s = -2.0 * w->scale / B;
    for (int i = 1; i <= net->L; i++) {
        double *gw = ap_optim_grad_w(w->opt, net->w_id[i]);
        double *gb = ap_optim_grad_b(w->opt, net->w_id[i]);
        const int ni = net->n[i], np = net->n[i - 1];
        const double *Pi = w->P + w->col[i]; /* B x n_i, leading dimension N */
        if (gw)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, np, B, s, Pi, N, w->r[i - 1],
                        np, 1.0, gw, np);
        if (gb)
            for (int b = 0; b < B; b++)
                for (int j = 0; j < ni; j++)
                    gb[j] += s * Pi[(size_t)b * N + j];
    }
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
            const double kappa = cblas_ddot(np, rp, 1, rp, 1) + w.beta[i];
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
                          K, b, (int)info, w.gamma);
    }
    if (!rc) align_write(&w);
    free(M);
    align_free(&w);
    return rc;
}

/* ---- dfc.gn_update ----------------------------------------------------------------------- */
/* The damped GN step of the minibatch, (128) / (218)-(219): J_bar = [J_W^1; ...; J_W^B]
 * (B n_L rows), delta_bar likewise, dW = J_bar^T (J_bar J_bar^T + gamma I)^{-1} delta_bar —
 * the curvature accumulated over all samples before the inverse, as App. A.5 stresses, in the
 * dual (B n_L) form that equals (J_bar^T J_bar + gamma I)^{-1} J_bar^T delta_bar for gamma > 0.
 * Decision: one damping gamma (the paper's (219) splits it into the leak alpha and an implicit
 * damping; pass their sum), and the same -2/B factor as dfc.mn_update, so that the two
 * kernels agree exactly for B = 1 (GN with a minibatch of 1 is the MN update, App. A.5) and
 * whenever the samples do not interact (J_W^b J_W^{b'T} = 0 for b != b'). */
static int k_gn_update(const ap_kernel_args *a) {
    static const char *const K = "dfc.gn_update";
    align w;
    int rc = align_setup(a, K, &w);
    if (rc) {
        align_free(&w);
        return rc;
    }
    const dfc_net *net = &w.net;
    const int B = w.B, N = w.N, nL = w.nL, R = B * nL;
    const size_t nG = (size_t)R * (size_t)R;
    if (nG > GN_GRAM_LIMIT) {
        align_free(&w);
        return ap_error(AP_EINVAL,
                        "kernel %s: the Gauss-Newton system has B n_L = %d rows (%zu values, limit "
                        "%zu); use fewer samples",
                        K, R, nG, GN_GRAM_LIMIT);
    }
    /* G, one layer's J_i J_i^T (T), the B x B Gram matrix of r_{i-1} (Kr) */
    double *G = malloc((2 * nG + (size_t)B * B) * sizeof *G);
    if (!G) {
        align_free(&w);
        return ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", K, 2 * nG);
    }
    double *T = G + nG, *Kr = T + nG;
    memset(G, 0, nG * sizeof *G);
    for (int i = 1; i <= net->L; i++) {
        const int np = net->n[i - 1];
        /* T = J_i J_i^T over all rows (b, k) of the stacked J: lower triangle */
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, R, net->n[i], 1.0, w.J + w.col[i], N,
                    0.0, T, R);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, B, np, 1.0, w.r[i - 1], np,
                    w.r[i - 1], np, 0.0, Kr, B);
        for (int p = 0; p < R; p++) {
            const double *kr = Kr + (size_t)(p / nL) * B;
            for (int q = 0; q <= p; q++)
                G[(size_t)p * R + q] += (kr[q / nL] + w.beta[i]) * T[(size_t)p * R + q];
        }
    }
    for (int p = 0; p < R; p++)
        G[(size_t)p * R + p] += w.gamma;
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', R, 1, G, R, w.delta, 1);
    if (info != 0)
        rc = ap_error(info > 0 ? AP_EINVAL : AP_EPLUGIN,
                      "kernel %s: J_bar J_bar^T + gamma I (%d x %d, all samples) is singular "
                      "(LAPACK info %d); gamma = %g",
                      K, R, R, (int)info, w.gamma);
    if (!rc) align_write(&w);
    free(G);
    align_free(&w);
    return rc;
}

static const ap_kernel kernels[] = {
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.mn_update",
     "the damped minimum-norm update (217) per sample, dW^b = J_W^T (J_W J_W^T + gamma I)^{-1} "
     "(r* - r_L^-) with J_W = d r_L / d(all W_i, b_i) at the feedforward state; adds scale "
     "(-2/B) sum_b dW^b to the optimiser's gradients (dfc.ssa's sign and scaling)",
     "model, x[B,n0], target[B,nL], gamma (>= 0), optim, scale (default 1)", k_mn_update},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.gn_update",
     "the damped Gauss-Newton update (128) of the minibatch, dW = J_bar^T (J_bar J_bar^T + gamma "
     "I)^{-1} delta_bar with J_bar the per-sample J_W stacked (B n_L rows); adds scale (-2/B) dW "
     "to the optimiser's gradients (equals dfc.mn_update for B = 1)",
     "model, x[B,n0], target[B,nL], gamma (>= 0), optim, scale (default 1)", k_gn_update},
};

int dfc_register_kernels_alignment(ap_registry *r) {
    for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
        int rc = ap_registry_add_kernel(r, &kernels[k], "dfc");
        if (rc) return rc;
    }
    return AP_OK;
}
