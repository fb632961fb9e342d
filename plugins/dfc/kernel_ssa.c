/* kernel_ssa.c — dfc.ssa: the linearised steady state of Lemma 1 (6) (DFC-SSA) and its forward
 * update (5), for a whole batch.
 *
 * Lemma 1 needs, per sample, the n_L x n_L matrix JQ = sum_i J_i Q_i with J_i = d r_L / d v_i at
 * the feedforward state. It is computed forward ("push Q through the network") rather than
 * from the J_i: a perturbation dv_i = Q_i u of every layer propagates as
 *     Z_1 = D_1 Q_1,   Z_i = D_i (W_i Z_{i-1} + Q_i),   JQ = Z_L,     D_i = diag(phi_i'(v_i^-)),
 * which equals sum_i J_i Q_i (J_L = D_L, J_i = J_{i+1} W_{i+1} D_i). Each Z_i of a chunk of
 * samples is stored n_i x (samples * n_L), so one dgemm per layer serves the whole chunk. The
 * chunk is bounded so that the workspace stays modest for wide outputs (an autoencoder). */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/optim.h"
#include "dfc_internal.h"

/* values in the two Z buffers together, at most */
#define SSA_Z_LIMIT ((size_t)1 << 23)

/* JQ for samples [s0, s0 + bc): writes bc blocks of n_L x n_L (row-major) to jq. d[i] holds
 * phi_i'(v_i^-) (B x n_i); z0, z1 hold max_n x bc n_L values each. */
static void push_q(const dfc_net *net, int s0, int bc, double *const *d, double *z0, double *z1,
                   double *jq) {
    const int L = net->L, nL = net->n[L];
    const size_t w = (size_t)bc * nL; /* row width of Z */
    double *z = z0, *zn = z1;
    for (int i = 1; i <= L; i++) {
        const int ni = net->n[i];
        /* zn = W_i z (n_i x n_{i-1} . n_{i-1} x w), then + Q_i per sample block */
        if (i > 1)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, (int)w, net->n[i - 1], 1.0,
                        net->W[i], net->n[i - 1], z, (int)w, 0.0, zn, (int)w);
        for (int j = 0; j < ni; j++) {
            double *row = zn + (size_t)j * w;
            const double *q = net->Q[i] + (size_t)j * nL;
            for (int b = 0; b < bc; b++) {
                const double dj = d[i][(size_t)(s0 + b) * ni + j];
                double *blk = row + (size_t)b * nL;
                for (int k = 0; k < nL; k++)
                    blk[k] = dj * ((i > 1 ? blk[k] : 0.0) + q[k]);
            }
        }
        double *t = z;
        z = zn;
        zn = t;
    }
    /* z is Z_L: n_L x (bc n_L); sample b's JQ is the column block b */
    for (int b = 0; b < bc; b++)
        for (int j = 0; j < nL; j++)
            memcpy(jq + ((size_t)b * nL + j) * nL, z + (size_t)j * w + (size_t)b * nL,
                   (size_t)nL * sizeof *jq);
}

/* Lemma 1 for a batch (docs: the file's head): allocates and fills *s (see dfc_internal.h).
 * Errors name the kernel K and the sample at fault; on error nothing stays allocated. */
int dfc_ssa_solve(const dfc_net *net, const char *K, int B, const double *x, const double *target,
                  const dfc_target_spec *spec, double alpha, dfc_ssa_state *s) {
    const int L = net->L, nL = net->n[L];
    int rc = AP_OK;
    memset(s, 0, sizeof *s);
    int max_n = 1;
    for (int i = 1; i <= L; i++)
        if (net->n[i] > max_n) max_n = net->n[i];
    size_t per_sample = 2 * (size_t)max_n * (size_t)nL;
    int bc = (int)(SSA_Z_LIMIT / per_sample);
    if (bc < 1) bc = 1;
    if (bc > B) bc = B;
    size_t off[DFC_MAX_LAYERS + 1];
    const size_t total = dfc_layer_offsets(net, B, off);
    const size_t bn = (size_t)B * (size_t)nL;
    /* v, r (feedforward, then steady state), d = phi', vb (steady basal) per layer; the Z
     * buffers; JQ of a chunk; u; the targets when made here; the pivots */
    const int own_target = !target && !(spec && spec->out);
    const size_t n_buf =
        4 * total + (size_t)bc * per_sample + (size_t)bc * nL * nL + bn + (own_target ? bn : 0);
    double *buf = malloc(n_buf * sizeof *buf);
    lapack_int *ipiv = malloc((size_t)nL * sizeof *ipiv);
    if (!buf || !ipiv) {
        free(buf);
        free(ipiv);
        return ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", K, n_buf);
    }
    double **v = s->v, **r = s->r, **d = s->d, **vb = s->vb;
    for (int i = 0; i <= L; i++) {
        v[i] = buf + off[i];
        r[i] = buf + total + off[i];
        d[i] = buf + 2 * total + off[i];
        vb[i] = buf + 3 * total + off[i];
    }
    double *z0 = buf + 4 * total, *z1 = z0 + (size_t)bc * max_n * nL;
    double *jq = z0 + (size_t)bc * per_sample, *u = jq + (size_t)bc * nL * nL;
    r[0] = (double *)x; /* read only */
    /* (2): the feedforward state, and phi' there */
    dfc_forward(net, B, v, r);
    for (int i = 1; i <= L; i++)
        net->act[i]->df((size_t)B * (size_t)net->n[i], v[i], d[i]);
    if (!target) {
        /* (3) from the labels, as dfc.targets: r* = r_L^- - lambda g, g = dLoss/dr_L (in u) */
        double *t = own_target ? u + bn : spec->out;
        dfc_make_targets(spec, B, nL, r[L], u, t);
        target = t;
    }
    /* delta_L = r* - r_L^- */
    for (size_t k = 0; k < bn; k++)
        u[k] = target[k] - r[L][k];
    /* (6): u_ss = (JQ + alpha I)^{-1} delta_L, per sample */
    for (int s0 = 0; s0 < B && !rc; s0 += bc) {
        const int nb = B - s0 < bc ? B - s0 : bc;
        push_q(net, s0, nb, d, z0, z1, jq);
        for (int b = 0; b < nb && !rc; b++) {
            double *A = jq + (size_t)b * nL * nL;
            for (int j = 0; j < nL; j++)
                A[(size_t)j * nL + j] += alpha;
            lapack_int info =
                LAPACKE_dgesv(LAPACK_ROW_MAJOR, nL, 1, A, nL, ipiv, u + (size_t)(s0 + b) * nL, 1);
            if (info != 0)
                rc = ap_error(info > 0 ? AP_EINVAL : AP_EPLUGIN,
                              "kernel %s: JQ + alpha I is singular for sample %d (LAPACK info "
                              "%d); alpha = %g",
                              K, s0 + b + 1, (int)info, alpha);
        }
    }
    free(ipiv);
    if (rc) {
        free(buf);
        return rc;
    }
    /* the steady state, layer by layer: v_i = W_i r_{i-1} + b_i + Q_i u_ss */
    for (int i = 1; i <= L; i++) {
        const int ni = net->n[i];
        const size_t len = (size_t)B * (size_t)ni;
        dfc_dense(B, net->n[i - 1], ni, r[i - 1], net->W[i], net->b[i], vb[i]);
        memcpy(v[i], vb[i], len * sizeof *v[i]);
        /* v += u Q_i^T: (B x n_L) . (n_L x n_i) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, ni, nL, 1.0, u, nL, net->Q[i], nL,
                    1.0, v[i], ni);
        net->act[i]->f(len, v[i], r[i]);
    }
    for (size_t k = 0; k < bn; k++)
        if (!isfinite(r[L][k]) || !isfinite(u[k])) {
            free(buf);
            return ap_error(AP_ENONFINITE, "kernel %s: non-finite steady state (sample %zu)", K,
                            k / (size_t)nL + 1);
        }
    s->u = u;
    s->mem = buf;
    return AP_OK;
}

void dfc_ssa_free(dfc_ssa_state *s) {
    free(s->mem);
    s->mem = NULL;
}

static int k_ssa(const ap_kernel_args *a) {
    static const char *const K = "dfc.ssa";
    static const char *const known[] = {"model", "x",      "target", "alpha",     "optim",
                                        "scale", "rL_out", "u_out",  "Qeff",      "y",
                                        "loss",  "lambda", "mode",   "target_out"};
    int rc = ap_args_check(a, K, known, 14);
    ap_model *m = NULL;
    ap_optim *opt = NULL;
    double *qeff = NULL;
    size_t qshape[4] = {0};
    const size_t any2[2] = {0, 0};
    if (!rc) rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m);
    if (!rc) rc = ap_arg_object(a, K, "optim", AP_ARG_OPTIM, 0, (void **)&opt);
    /* Qeff: the stacked effective feedback [Q_1; ...; Q_L] of a feedback pathway other than
     * direct (docs/dfc.md, "Feedback pathways"); the model's Q1..QL are then not read */
    if (!rc) rc = ap_arg_array(a, K, "Qeff", 0, 2, any2, &qeff, qshape);
    dfc_net net;
    if (!rc) rc = dfc_net_load(m, K, qeff == NULL, &net);
    if (rc) return rc;
    const int L = net.L, nL = net.n[L];
    if (qeff) {
        size_t rows = 0;
        for (int i = 1; i <= L; i++)
            rows += (size_t)net.n[i];
        if (qshape[0] != rows || qshape[1] != (size_t)nL)
            return ap_error(AP_ESIZE,
                            "kernel %s: Qeff has shape [%zu, %zu], the network needs [%zu, %d] "
                            "(Q_1..Q_L stacked, n_1 + ... + n_L rows)",
                            K, qshape[0], qshape[1], rows, nL);
        /* read only, like the model's weights */
        double *q = qeff;
        for (int i = 1; i <= L; i++) {
            net.Q[i] = q;
            q += (size_t)net.n[i] * (size_t)nL;
        }
    }
    int B = 0;
    double *x = NULL, *target = NULL, *rL_out = NULL, *u_out = NULL, alpha = 0, scale = 1;
    if ((rc = dfc_arg_matrix(a, K, "x", 1, net.n[0], &B, &x))) return rc;
    /* the output targets, or the labels to make them from (with loss, lambda, mode) */
    double *y = NULL, *target_out = NULL;
    if ((rc = dfc_arg_matrix(a, K, "target", 0, nL, &B, &target))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "y", 0, nL, &B, &y))) return rc;
    if (!target == !y)
        return ap_error(AP_EINVAL,
                        "kernel %s: give either target (the output targets) or y (labels, with "
                        "loss, lambda and mode), %s",
                        K, target ? "not both" : "got neither");
    dfc_target_spec spec = {DFC_LOSS_MSE, y, 0.0, 0, NULL};
    if (y) {
        if ((rc = dfc_arg_target_spec(a, K, &spec))) return rc;
        if ((rc = dfc_arg_matrix(a, K, "target_out", 0, nL, &B, &target_out))) return rc;
        spec.out = target_out;
    } else {
        for (int k = 0; k < a->n; k++)
            if (!strcmp(a->args[k].name, "loss") || !strcmp(a->args[k].name, "lambda") ||
                !strcmp(a->args[k].name, "mode") || !strcmp(a->args[k].name, "target_out"))
                return ap_error(AP_EINVAL, "kernel %s: %s goes with y, not with target", K,
                                a->args[k].name);
    }
    if ((rc = dfc_arg_matrix(a, K, "rL_out", 0, nL, &B, &rL_out))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "u_out", 0, nL, &B, &u_out))) return rc;
    if ((rc = ap_arg_number(a, K, "alpha", 1, &alpha))) return rc;
    if ((rc = ap_arg_number(a, K, "scale", 0, &scale))) return rc;
    if (!isfinite(alpha) || !isfinite(scale))
        return ap_error(AP_EINVAL, "kernel %s: alpha = %g, scale = %g", K, alpha, scale);
    dfc_ssa_state st;
    if ((rc = dfc_ssa_solve(&net, K, B, x, target, y ? &spec : NULL, alpha, &st))) return rc;
    const size_t bn = (size_t)B * (size_t)nL;
    double *const *r = st.r, *const *vb = st.vb, *const *d = st.d; /* d: reused for post */
    const double *u = st.u;
    if (rL_out) memcpy(rL_out, r[L], bn * sizeof *rL_out);
    if (u_out) memcpy(u_out, u, bn * sizeof *u_out);

    /* (5) at the steady state, as the reference's descent direction:
     * g_W_i += scale (-2/B) sum_b (phi(v_i) - phi(vB_i)) r_{i-1}^T, g_b_i likewise */
    if (opt) {
        const double c = -2.0 * scale / B;
        for (int i = 1; i <= L; i++) {
            double *gw = ap_optim_grad_w(opt, net.w_id[i]);
            double *gb = ap_optim_grad_b(opt, net.w_id[i]);
            if (!gw && !gb) continue; /* not trained by this optimiser */
            const int ni = net.n[i];
            const size_t len = (size_t)B * (size_t)ni;
            double *post = d[i]; /* phi' is no longer needed */
            net.act[i]->f(len, vb[i], post);
            for (size_t k = 0; k < len; k++)
                post[k] = r[i][k] - post[k];
            if (gw)
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, net.n[i - 1], B, c, post,
                            ni, r[i - 1], net.n[i - 1], 1.0, gw, net.n[i - 1]);
            if (gb)
                for (int b = 0; b < B; b++)
                    for (int j = 0; j < ni; j++)
                        gb[j] += c * post[(size_t)b * ni + j];
        }
    }
    dfc_ssa_free(&st);
    return AP_OK;
}

static const ap_kernel ssa_kernel = {
    AP_ABI_VERSION,
    sizeof(ap_kernel),
    "dfc.ssa",
    "DFC-SSA: the linearised steady state of Lemma 1 (6), u_ss = (JQ + alpha I)^{-1} (r* - "
    "r_L^-), propagated layer by layer (v_i = W_i r_{i-1} + b_i + Q_i u_ss); adds scale (-2/B) "
    "sum_b (phi(v_i) - phi(vB_i)) r_{i-1}^T to the optimiser's gradients; Qeff replaces Q (the "
    "effective feedback of a feedback pathway)",
    "model, x[B,n0], target[B,nL] or y[B,nL] with loss (\"mse\", \"ce\"), lambda, mode "
    "(\"mean\", \"sample\") and target_out[B,nL] (optional): the targets made from the labels "
    "at the kernel's own feedforward pass, as dfc.targets makes them; alpha, optim (optional), "
    "scale (default 1), rL_out[B,nL] (optional), u_out[B,nL] (optional), Qeff[n1+..+nL,nL] "
    "(optional: the feedback matrices to use instead of the model's Q1..QL)",
    k_ssa,
};

int dfc_register_kernel_ssa(ap_registry *r) {
    return ap_registry_add_kernel(r, &ssa_kernel, "dfc");
}
