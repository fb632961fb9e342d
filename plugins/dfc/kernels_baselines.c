/* kernels_baselines.c — the comparison methods' gradients of the minibatch-mean loss, added to
 * an optimiser's buffers: backpropagation (dfc.bp) and direct feedback alignment (dfc.dfa,
 * with the model's Q_i as the fixed random feedback matrices). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/optim.h"
#include "dfc_internal.h"

/* grad W_i += scale delta^T r_{i-1}, grad b_i += scale sum_b delta (a projection the optimiser
 * does not hold is skipped). */
static void add_grad(const dfc_net *net, ap_optim *opt, int i, int B, double scale,
                     const double *delta, const double *rprev) {
    double *gw = ap_optim_grad_w(opt, net->w_id[i]);
    double *gb = ap_optim_grad_b(opt, net->w_id[i]);
    const int ni = net->n[i], np = net->n[i - 1];
    if (gw)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, np, B, scale, delta, ni, rprev, np,
                    1.0, gw, np);
    if (gb)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < ni; j++)
                gb[j] += scale * delta[(size_t)b * ni + j];
}

/* The deltas, output layer first: delta_L = e (.) phi_L', delta_i = (W_{i+1}^T delta_{i+1})
 * (.) phi_i' (backpropagation) or (Q_i e) (.) phi_i' (DFA); v holds the feedforward state. */
static void deltas(const dfc_net *net, int dfa, int B, const double *e, double *const *v,
                   double *const *dphi, double *const *delta) {
    const int L = net->L, nL = net->n[L];
    for (int i = L; i >= 1; i--) {
        const int ni = net->n[i];
        const size_t len = (size_t)B * (size_t)ni;
        double *dl = delta[i];
        if (i == L) {
            memcpy(dl, e, (size_t)B * nL * sizeof *dl);
        } else if (dfa) {
            /* Q_i e: (B x n_L) . Q_i^T (n_L x n_i) */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, ni, nL, 1.0, e, nL, net->Q[i],
                        nL, 0.0, dl, ni);
        } else {
            /* W_{i+1}^T delta_{i+1}: (B x n_{i+1}) . W_{i+1} (n_{i+1} x n_i) */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, ni, net->n[i + 1], 1.0,
                        delta[i + 1], net->n[i + 1], net->W[i + 1], ni, 0.0, dl, ni);
        }
        net->act[i]->df(len, v[i], dphi[i]);
        for (size_t k = 0; k < len; k++)
            dl[k] *= dphi[i][k];
    }
}

static int baseline_run(const ap_kernel_args *a, const char *K, int dfa, const dfc_net *net,
                        ap_optim *opt, dfc_loss_kind loss) {
    const int L = net->L, nL = net->n[L];
    int B = 0, rc;
    double *x = NULL, *y = NULL, scale = 1;
    if ((rc = dfc_arg_matrix(a, K, "x", 1, net->n[0], &B, &x))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "y", 1, nL, &B, &y))) return rc;
    if ((rc = ap_arg_number(a, K, "scale", 0, &scale))) return rc;
    if (!isfinite(scale)) return ap_error(AP_EINVAL, "kernel %s: scale = %g", K, scale);

    size_t off[L + 1];
    const size_t total = dfc_layer_offsets(net, B, off);
    const size_t bn = (size_t)B * (size_t)nL;
    /* v, r, phi', delta per layer; the output error e */
    double *buf = malloc((4 * total + bn) * sizeof *buf);
    if (!buf) return ap_error(AP_ENOMEM, "kernel %s: out of memory", K);
    double *v[L + 1], *r[L + 1], *dphi[L + 1], *delta[L + 1];
    for (int i = 0; i <= L; i++) {
        v[i] = buf + off[i];
        r[i] = buf + total + off[i];
        dphi[i] = buf + 2 * total + off[i];
        delta[i] = buf + 3 * total + off[i];
    }
    double *e = buf + 4 * total;
    r[0] = x; /* read only */
    dfc_forward(net, B, v, r);
    /* e = dLoss/dr_L of the minibatch-mean loss */
    dfc_loss_grad(loss, B, nL, r[L], y, 0, e);
    deltas(net, dfa, B, e, v, dphi, delta);
    for (int i = 1; i <= L; i++)
        add_grad(net, opt, i, B, scale, delta[i], r[i - 1]);
    free(buf);
    return AP_OK;
}

/* dfa = 0: backpropagation; dfa = 1: direct feedback alignment. */
static int baseline(const ap_kernel_args *a, const char *K, int dfa) {
    static const char *const known[] = {"model", "x", "y", "loss", "optim", "scale", "net"};
    int rc = ap_args_check(a, K, known, 7);
    ap_model *m = NULL;
    ap_optim *opt = NULL;
    dfc_loss_kind loss;
    if (!rc) rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m);
    if (!rc) rc = ap_arg_object(a, K, "optim", AP_ARG_OPTIM, 1, (void **)&opt);
    if (!rc) rc = dfc_arg_loss(a, K, &loss);
    dfc_net net;
    if (!rc) rc = dfc_net_arg(a, K, "net", m, dfa, &net);
    if (rc) return rc;
    rc = baseline_run(a, K, dfa, &net, opt, loss);
    dfc_net_free(&net);
    return rc;
}

static int k_bp(const ap_kernel_args *a) {
    return baseline(a, "dfc.bp", 0);
}

static int k_dfa(const ap_kernel_args *a) {
    return baseline(a, "dfc.dfa", 1);
}

static const ap_kernel kernels[] = {
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.bp",
     "backpropagation: adds scale * dLoss/dW_i (and dLoss/db_i) of the minibatch-mean loss to the "
     "optimiser's gradients",
     "model, x[B,n0], y[B,nL], loss = \"mse\"|\"ce\", optim, scale (default 1)", k_bp},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.dfa",
     "direct feedback alignment: delta_L = e (.) phi_L', delta_i = (Q_i e) (.) phi_i' with e = "
     "dLoss/dr_L; adds scale * delta_i^T r_{i-1} (and sum_b delta_i) to the optimiser's gradients",
     "model, x[B,n0], y[B,nL], loss = \"mse\"|\"ce\", optim, scale (default 1)", k_dfa},
};

int dfc_register_kernels_baselines(ap_registry *r) {
    return dfc_add_kernels(r, kernels, sizeof kernels / sizeof kernels[0]);
}
