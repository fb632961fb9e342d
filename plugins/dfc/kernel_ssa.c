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

/* The state's memory: v, r, d, vb per layer (`total` values each, dfc_layer_buffers), the two
 * Z buffers, JQ of a chunk of bc samples, u, and the targets when made here (own_target). */
static int ssa_alloc(const dfc_net *net, const char *K, int B, int bc, size_t per_sample,
                     int own_target, size_t total, dfc_ssa_state *s) {
    const int L = net->L, nL = net->n[L];
    const size_t bn = (size_t)B * (size_t)nL;
    const size_t extra =
        (size_t)bc * per_sample + (size_t)bc * nL * nL + bn + (own_target ? bn : 0);
    s->ptrs = malloc(4 * ((size_t)L + 1) * sizeof(double *));
    if (!s->ptrs)
        return ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", K, 4 * total + extra);
    s->v = s->ptrs;
    s->r = s->v + L + 1;
    s->d = s->r + L + 1;
    s->vb = s->d + L + 1;
    double **const sets[4] = {s->v, s->r, s->d, s->vb};
    int rc = dfc_layer_buffers(net, K, B, 4, sets, extra, &s->mem, NULL);
    if (rc) dfc_ssa_free(s);
    return rc;
}

/* (6): u_ss = (JQ + alpha I)^{-1} delta_L per sample, in place in u (which holds delta_L), JQ
 * pushed through the network a chunk of bc samples at a time (z0, z1, jq: the chunk's buffers). */
static int ssa_control(const dfc_net *net, const char *K, int B, int bc, double alpha,
                       double *const *d, double *z0, double *z1, double *jq, double *u) {
    const int nL = net->n[net->L];
    lapack_int *ipiv = malloc((size_t)nL * sizeof *ipiv);
    if (!ipiv) return ap_error(AP_ENOMEM, "kernel %s: out of memory", K);
    int rc = AP_OK;
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
    return rc;
}

/* The steady state, layer by layer: vb_i = W_i r_{i-1} + b_i, v_i = vb_i + Q_i u_ss,
 * r_i = phi_i(v_i); then AP_ENONFINITE naming the first sample whose r_L or u is not finite. */
static int ssa_propagate(const dfc_net *net, const char *K, int B, const double *u,
                         dfc_ssa_state *s) {
    const int L = net->L, nL = net->n[L];
    for (int i = 1; i <= L; i++) {
        const int ni = net->n[i];
        const size_t len = (size_t)B * (size_t)ni;
        dfc_dense(B, net->n[i - 1], ni, s->r[i - 1], net->W[i], net->b[i], s->vb[i]);
        memcpy(s->v[i], s->vb[i], len * sizeof *s->v[i]);
        /* v += u Q_i^T: (B x n_L) . (n_L x n_i) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, ni, nL, 1.0, u, nL, net->Q[i], nL,
                    1.0, s->v[i], ni);
        net->act[i]->f(len, s->v[i], s->r[i]);
    }
    const size_t bn = (size_t)B * (size_t)nL;
    for (size_t k = 0; k < bn; k++)
        if (!isfinite(s->r[L][k]) || !isfinite(u[k]))
            return ap_error(AP_ENONFINITE, "kernel %s: non-finite steady state (sample %zu)", K,
                            k / (size_t)nL + 1);
    return AP_OK;
}

/* Lemma 1 for a batch (docs: the file's head): allocates and fills *s (see dfc_internal.h).
 * Errors name the kernel K and the sample at fault; on error nothing stays allocated. */
int dfc_ssa_solve(const dfc_net *net, const char *K, int B, const double *x, const double *target,
                  const dfc_target_spec *spec, double alpha, dfc_ssa_state *s) {
    const int L = net->L, nL = net->n[L];
    memset(s, 0, sizeof *s);
    /* the chunk of samples whose Z buffers stay within SSA_Z_LIMIT values */
    int max_n = 1;
    for (int i = 1; i <= L; i++)
        if (net->n[i] > max_n) max_n = net->n[i];
    size_t per_sample = 2 * (size_t)max_n * (size_t)nL;
    int bc = (int)(SSA_Z_LIMIT / per_sample);
    if (bc < 1) bc = 1;
    if (bc > B) bc = B;
    size_t off[L + 1];
    const size_t total = dfc_layer_offsets(net, B, off);
    const size_t bn = (size_t)B * (size_t)nL;
    const int own_target = !target && !(spec && spec->out);
    int rc = ssa_alloc(net, K, B, bc, per_sample, own_target, total, s);
    if (rc) return rc;
    double *z0 = s->mem + 4 * total, *z1 = z0 + (size_t)bc * max_n * nL;
    double *jq = z0 + (size_t)bc * per_sample, *u = jq + (size_t)bc * nL * nL;
    s->r[0] = (double *)x; /* read only */
    /* (2): the feedforward state, and phi' there */
    dfc_forward(net, B, s->v, s->r);
    for (int i = 1; i <= L; i++)
        net->act[i]->df((size_t)B * (size_t)net->n[i], s->v[i], s->d[i]);
    if (!target) {
        /* (3) from the labels, as dfc.targets: r* = r_L^- - lambda g, g = dLoss/dr_L (in u) */
        double *t = own_target ? u + bn : spec->out;
        dfc_make_targets(spec, B, nL, s->r[L], u, t);
        target = t;
    }
    /* delta_L = r* - r_L^- */
    for (size_t k = 0; k < bn; k++)
        u[k] = target[k] - s->r[L][k];
    rc = ssa_control(net, K, B, bc, alpha, s->d, z0, z1, jq, u);
    if (!rc) rc = ssa_propagate(net, K, B, u, s);
    if (rc) {
        dfc_ssa_free(s);
        return rc;
    }
    s->u = u;
    return AP_OK;
}

void dfc_ssa_free(dfc_ssa_state *s) {
    free(s->mem);
    free(s->ptrs);
    s->mem = NULL;
    s->ptrs = NULL;
}

/* Qeff: the stacked effective feedback [Q_1; ...; Q_L] of a feedback pathway other than direct
 * (docs/dfc.md, "Feedback pathways"), n_1 + ... + n_L rows of n_L, read instead of the model's
 * Q1..QL (read only, like the model's weights). */
static int ssa_qeff(const char *K, double *qeff, const size_t *qshape, dfc_net *net) {
    const int L = net->L, nL = net->n[L];
    size_t rows = 0;
    for (int i = 1; i <= L; i++)
        rows += (size_t)net->n[i];
    if (qshape[0] != rows || qshape[1] != (size_t)nL)
        return ap_error(AP_ESIZE,
                        "kernel %s: Qeff has shape [%zu, %zu], the network needs [%zu, %d] "
                        "(Q_1..Q_L stacked, n_1 + ... + n_L rows)",
                        K, qshape[0], qshape[1], rows, nL);
    double *q = qeff;
    for (int i = 1; i <= L; i++) {
        net->Q[i] = q;
        q += (size_t)net->n[i] * (size_t)nL;
    }
    return AP_OK;
}

/* The output targets, or the labels to make them from (with loss, lambda, mode and the optional
 * target_out): exactly one of *target and spec->y is set on return. */
static int ssa_targets(const ap_kernel_args *a, const char *K, int nL, int *B, double **target,
                       dfc_target_spec *spec) {
    double *y = NULL, *target_out = NULL;
    int rc;
    if ((rc = dfc_arg_matrix(a, K, "target", 0, nL, B, target))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "y", 0, nL, B, &y))) return rc;
    if (!*target == !y)
        return ap_error(AP_EINVAL,
                        "kernel %s: give either target (the output targets) or y (labels, with "
                        "loss, lambda and mode), %s",
                        K, *target ? "not both" : "got neither");
    spec->y = y;
    if (y) {
        if ((rc = dfc_arg_target_spec(a, K, *B, "y", spec))) return rc;
        if ((rc = dfc_arg_matrix(a, K, "target_out", 0, nL, B, &target_out))) return rc;
        spec->out = target_out;
        return AP_OK;
    }
    for (int k = 0; k < a->n; k++)
        if (!strcmp(a->args[k].name, "loss") || !strcmp(a->args[k].name, "lambda") ||
            !strcmp(a->args[k].name, "mode") || !strcmp(a->args[k].name, "target_out") ||
            !strcmp(a->args[k].name, "batch"))
            return ap_error(AP_EINVAL, "kernel %s: %s goes with y, not with target", K,
                            a->args[k].name);
    return AP_OK;
}

/* (5) at the steady state, as the reference's descent direction:
 * g_W_i += scale (-2/B) sum_b (phi(v_i) - phi(vB_i)) r_{i-1}^T, g_b_i likewise. Overwrites
 * st->d (phi' is no longer needed) with the postsynaptic factor. */
static void ssa_update(const dfc_net *net, ap_optim *opt, int B, double scale, dfc_ssa_state *st) {
    const double c = -2.0 * scale / B;
    for (int i = 1; i <= net->L; i++) {
        double *gw = ap_optim_grad_w(opt, net->w_id[i]);
        double *gb = ap_optim_grad_b(opt, net->w_id[i]);
        if (!gw && !gb) continue; /* not trained by this optimiser */
        const int ni = net->n[i], np = net->n[i - 1];
        const size_t len = (size_t)B * (size_t)ni;
        double *post = st->d[i];
        net->act[i]->f(len, st->vb[i], post);
        for (size_t k = 0; k < len; k++)
            post[k] = st->r[i][k] - post[k];
        if (gw)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, np, B, c, post, ni,
                        st->r[i - 1], np, 1.0, gw, np);
        if (gb)
            for (int b = 0; b < B; b++)
                for (int j = 0; j < ni; j++)
                    gb[j] += c * post[(size_t)b * ni + j];
    }
}

static int ssa_run(const ap_kernel_args *a, const char *K, dfc_net *net, ap_optim *opt) {
    const int L = net->L, nL = net->n[L];
    int B = 0, rc;
    double *x = NULL, *target = NULL, *rL_out = NULL, *u_out = NULL, alpha = 0, scale = 1;
    dfc_target_spec spec = {DFC_LOSS_MSE, NULL, 0.0, 0, NULL, 0};
    if ((rc = dfc_arg_matrix(a, K, "x", 1, net->n[0], &B, &x))) return rc;
    if ((rc = ssa_targets(a, K, nL, &B, &target, &spec))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "rL_out", 0, nL, &B, &rL_out))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "u_out", 0, nL, &B, &u_out))) return rc;
    if ((rc = ap_arg_number(a, K, "alpha", 1, &alpha))) return rc;
    if ((rc = ap_arg_number(a, K, "scale", 0, &scale))) return rc;
    if (!isfinite(alpha) || !isfinite(scale))
        return ap_error(AP_EINVAL, "kernel %s: alpha = %g, scale = %g", K, alpha, scale);
    dfc_ssa_state st;
    if ((rc = dfc_ssa_solve(net, K, B, x, target, spec.y ? &spec : NULL, alpha, &st))) return rc;
    const size_t bn = (size_t)B * (size_t)nL;
    if (rL_out) memcpy(rL_out, st.r[L], bn * sizeof *rL_out);
    if (u_out) memcpy(u_out, st.u, bn * sizeof *u_out);
    if (opt) ssa_update(net, opt, B, scale, &st);
    dfc_ssa_free(&st);
    return AP_OK;
}

static int k_ssa(const ap_kernel_args *a) {
    static const char *const K = "dfc.ssa";
    static const char *const known[] = {
        "model", "x", "target", "alpha",  "optim", "scale",      "rL_out", "u_out",
        "Qeff",  "y", "loss",   "lambda", "mode",  "target_out", "net",    "batch"};
    int rc = ap_args_check(a, K, known, 16);
    ap_model *m = NULL;
    ap_optim *opt = NULL;
    double *qeff = NULL;
    size_t qshape[4] = {0};
    const size_t any2[2] = {0, 0};
    if (!rc) rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m);
    if (!rc) rc = ap_arg_object(a, K, "optim", AP_ARG_OPTIM, 0, (void **)&opt);
    if (!rc) rc = ap_arg_array(a, K, "Qeff", 0, 2, any2, &qeff, qshape);
    dfc_net net;
    /* with Qeff the model's Q1..QL are not read */
    if (!rc) rc = dfc_net_arg(a, K, "net", m, qeff == NULL, &net);
    if (rc) return rc;
    if (qeff) rc = ssa_qeff(K, qeff, qshape, &net);
    if (!rc) rc = ssa_run(a, K, &net, opt);
    dfc_net_free(&net);
    return rc;
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
    "(\"mean\", \"sample\"), batch (optional, mode \"mean\": the minibatch's size when x holds "
    "some of its rows) and target_out[B,nL] (optional): the targets made from the labels at the "
    "kernel's own feedforward pass, as dfc.targets makes them; alpha, optim (optional), "
    "scale (default 1), rL_out[B,nL] (optional), u_out[B,nL] (optional), Qeff[n1+..+nL,nL] "
    "(optional: the feedback matrices to use instead of the model's Q1..QL)",
    k_ssa,
};

int dfc_register_kernel_ssa(ap_registry *r) {
    return ap_registry_add_kernel(r, &ssa_kernel, "dfc");
}
