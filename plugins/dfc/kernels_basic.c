/* kernels_basic.c — the plain kernels: the feedforward pass (2), output targets (3), the loss,
 * the weight-product feedback matrices and the reference's per-sample convergence test. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/sim.h"
#include "dfc_internal.h"

/* ---- dfc.forward ------------------------------------------------------------------------- */
static int forward_run(const ap_kernel_args *a, const char *K, const dfc_net *net) {
    const int L = net->L;
    int B = 0;
    double *x = NULL, *out = NULL;
    int rc = dfc_arg_matrix(a, K, "x", 1, net->n[0], &B, &x);
    if (!rc) rc = dfc_arg_matrix(a, K, "out", 1, net->n[L], &B, &out);
    if (rc) return rc;
    double *v[L + 1], *r[L + 1], *buf;
    if ((rc = dfc_forward_new(net, K, B, x, out, v, r, &buf))) return rc;
    free(buf);
    return AP_OK;
}

static int k_forward(const ap_kernel_args *a) {
    static const char *const K = "dfc.forward";
    static const char *const known[] = {"model", "x", "out", "net"};
    int rc = ap_args_check(a, K, known, 4);
    ap_model *m = NULL;
    if (!rc) rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m);
    dfc_net net;
    if (!rc) rc = dfc_net_arg(a, K, "net", m, 0, &net);
    if (rc) return rc;
    rc = forward_run(a, K, &net);
    dfc_net_free(&net);
    return rc;
}

/* ---- dfc.targets (3) --------------------------------------------------------------------- */
/* The model is optional (it only fixes n_L); rL, y and out are B x n_L. */
static int output_arrays(const ap_kernel_args *a, const char *K, int *B, int *n, double **rL,
                         double **y) {
    ap_model *m = NULL;
    int rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 0, (void **)&m);
    if (rc) return rc;
    *n = 0;
    if (m) {
        dfc_net net;
        if ((rc = dfc_net_arg(a, K, "net", m, 0, &net))) return rc;
        *n = net.n[net.L];
        dfc_net_free(&net);
    }
    size_t want[2] = {0, (size_t)*n}, got[4] = {0};
    if ((rc = ap_arg_array(a, K, "rL", 1, 2, want, rL, got))) return rc;
    if (got[0] < 1 || got[1] < 1 || got[0] > INT32_MAX || got[1] > INT32_MAX)
        return ap_error(AP_ESIZE, "kernel %s: rL is %zu x %zu", K, got[0], got[1]);
    *B = (int)got[0];
    *n = (int)got[1];
    return dfc_arg_matrix(a, K, "y", 1, *n, B, y);
}

static int k_targets(const ap_kernel_args *a) {
    static const char *const K = "dfc.targets";
    static const char *const known[] = {"model", "rL",  "y",   "loss", "lambda",
                                        "mode",  "out", "net", "batch"};
    int rc = ap_args_check(a, K, known, 9);
    int B = 0, n = 0;
    double *rL = NULL, *y = NULL, *out = NULL;
    dfc_target_spec spec = {DFC_LOSS_MSE, NULL, 0.0, 0, NULL, 0};
    if (!rc) rc = output_arrays(a, K, &B, &n, &rL, &y);
    if (!rc) rc = dfc_arg_matrix(a, K, "out", 1, n, &B, &out);
    if (!rc) rc = dfc_arg_target_spec(a, K, B, "rL", &spec);
    if (rc) return rc;
    spec.y = y;
    double *g = malloc((size_t)B * (size_t)n * sizeof *g);
    if (!g) return ap_error(AP_ENOMEM, "kernel %s: out of memory", K);
    /* (3): r* = r - lambda dLoss/dr at the feedforward output (with batch, the mean over the
     * whole minibatch: these rows' values of a call on all of it) */
    dfc_make_targets(&spec, B, n, rL, g, out);
    free(g);
    return AP_OK;
}

/* ---- dfc.loss ---------------------------------------------------------------------------- */
static int argmax(const double *x, int n) {
    int k = 0;
    for (int j = 1; j < n; j++)
        if (x[j] > x[k]) k = j;
    return k;
}

static int k_loss(const ap_kernel_args *a) {
    static const char *const K = "dfc.loss";
    static const char *const known[] = {"model", "rL", "y", "loss", "out", "net"};
    int rc = ap_args_check(a, K, known, 6);
    int B = 0, n = 0;
    double *rL = NULL, *y = NULL, *out = NULL;
    dfc_loss_kind loss;
    size_t two[1] = {2};
    if (!rc) rc = output_arrays(a, K, &B, &n, &rL, &y);
    if (!rc) rc = dfc_arg_loss(a, K, &loss);
    if (!rc) rc = ap_arg_array(a, K, "out", 1, 1, two, &out, NULL);
    if (rc) return rc;
    double sum = 0, correct = 0;
    for (int s = 0; s < B; s++) {
        const double *r = rL + (size_t)s * n, *ys = y + (size_t)s * n;
        if (loss == DFC_LOSS_MSE) {
            for (int j = 0; j < n; j++)
                sum += (r[j] - ys[j]) * (r[j] - ys[j]);
        } else {
            /* -sum y log softmax(r) = sum y (log z - (r - max)), z = sum exp(r - max) */
            const double mx = r[argmax(r, n)];
            double z = 0;
            for (int j = 0; j < n; j++)
                z += exp(r[j] - mx);
            const double lz = log(z);
            for (int j = 0; j < n; j++)
                sum += ys[j] * (lz - (r[j] - mx));
            correct += argmax(r, n) == argmax(ys, n);
        }
    }
    out[0] = loss == DFC_LOSS_MSE ? sum / ((double)B * n) : sum / B;
    out[1] = correct;
    return AP_OK;
}

/* ---- dfc.weight_product ------------------------------------------------------------------ */
static int k_weight_product(const ap_kernel_args *a) {
    static const char *const K = "dfc.weight_product";
    static const char *const known[] = {"model", "net"};
    int rc = ap_args_check(a, K, known, 2);
    ap_model *m = NULL;
    if (!rc) rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m);
    dfc_net net;
    if (!rc) rc = dfc_net_arg(a, K, "net", m, 1, &net);
    if (rc) return rc;
    const int L = net.L, nL = net.n[L];
    memset(net.Q[L], 0, (size_t)nL * nL * sizeof(double));
    for (int j = 0; j < nL; j++)
        net.Q[L][(size_t)j * nL + j] = 1.0;
    /* Q_i = W_{i+1}^T Q_{i+1}: (n_i x n_{i+1}) . (n_{i+1} x n_L) */
    for (int i = L - 1; i >= 1; i--)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, net.n[i], nL, net.n[i + 1], 1.0,
                    net.W[i + 1], net.n[i], net.Q[i + 1], nL, 0.0, net.Q[i], nL);
    dfc_net_free(&net);
    return AP_OK;
}

/* ---- dfc.convergence --------------------------------------------------------------------- */
/* out[b] = 1 where sample b passed the reference's test (rT, u, tgt, rminus: B x n) */
static void convergence_test(int B, int n, const double *rT, const double *u, const double *tgt,
                             const double *rminus, double alpha, double tol, double *out) {
    for (int b = 0; b < B; b++) {
        const size_t o = (size_t)b * n;
        double res = 0, norm_rm = 0, err_T = 0, err_0 = 0;
        for (int j = 0; j < n; j++) {
            /* the steady state satisfies e = alpha u, i.e. r_L = r* - alpha u */
            double d = rT[o + j] - (tgt[o + j] - alpha * u[o + j]);
            res += d * d;
            norm_rm += rminus[o + j] * rminus[o + j];
            err_T += (tgt[o + j] - rT[o + j]) * (tgt[o + j] - rT[o + j]);
            err_0 += (tgt[o + j] - rminus[o + j]) * (tgt[o + j] - rminus[o + j]);
        }
        int settled = sqrt(res) < tol * sqrt(norm_rm);
        int improved = sqrt(err_T) < 0.25 * sqrt(err_0);
        out[b] = settled && improved ? 1.0 : 0.0;
    }
}

/* reads r_L(T) (the output layer's rate), u(T) (ctl.u) and r* (target) from the sim */
static int convergence_run(const ap_kernel_args *a, const char *K, ap_sim *s, const dfc_net *net) {
    const int n = net->n[net->L];
    int B = ap_model_batch(ap_sim_model(s)), rc;
    double *rminus = NULL, *out = NULL, alpha = 0, tol = 1e-5;
    size_t shape_b[1] = {(size_t)B};
    if ((rc = dfc_arg_matrix(a, K, "rminus", 1, n, &B, &rminus))) return rc;
    if ((rc = ap_arg_array(a, K, "out", 1, 1, shape_b, &out, NULL))) return rc;
    if ((rc = ap_arg_number(a, K, "alpha", 1, &alpha))) return rc;
    if ((rc = ap_arg_number(a, K, "tol", 0, &tol))) return rc;
    const size_t len = (size_t)B * (size_t)n;
    double *buf = malloc(3 * len * sizeof *buf);
    if (!buf) return ap_error(AP_ENOMEM, "kernel %s: out of memory", K);
    double *rT = buf, *u = buf + len, *tgt = buf + 2 * len;
    const size_t ln = strlen(net->name[net->L]) + sizeof ".rate";
    char *name = malloc(ln);
    if (!name) rc = ap_error(AP_ENOMEM, "kernel %s: out of memory", K);
    if (!rc) snprintf(name, ln, "%s.rate", net->name[net->L]);
    if (!rc) rc = ap_sim_read(s, name, rT, len);
    if (!rc) rc = ap_sim_read(s, "ctl.u", u, len);
    if (!rc) rc = ap_sim_read(s, "target", tgt, len);
    free(name);
    if (rc) {
        free(buf);
        return rc == AP_ENOMEM ? rc : ap_error_prefix(rc, "kernel %s: ", K);
    }
    convergence_test(B, n, rT, u, tgt, rminus, alpha, tol, out);
    free(buf);
    return AP_OK;
}

static int k_convergence(const ap_kernel_args *a) {
    static const char *const K = "dfc.convergence";
    static const char *const known[] = {"model", "sim", "rminus", "alpha", "tol", "out", "net"};
    int rc = ap_args_check(a, K, known, 7);
    ap_model *m = NULL;
    ap_sim *s = NULL;
    if (!rc) rc = ap_arg_object(a, K, "sim", AP_ARG_SIM, 1, (void **)&s);
    if (!rc) rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 0, (void **)&m);
    if (rc) return rc;
    if (m && m != ap_sim_model(s))
        return ap_error(AP_EINVAL, "kernel %s: sim was not compiled from model", K);
    dfc_net net;
    if ((rc = dfc_net_arg(a, K, "net", ap_sim_model(s), 0, &net))) return rc;
    rc = convergence_run(a, K, s, &net);
    dfc_net_free(&net);
    return rc;
}

static const ap_kernel kernels[] = {
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.forward",
     "feedforward pass (2): v_i = W_i r_{i-1} + b_i, r_i = phi_i(v_i) from r_0 = x; writes r_L",
     "model, x[B,n0], out[B,nL]", k_forward},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.targets",
     "output targets (3): r* = rL - lambda dLoss/drL; mode \"mean\" (reference: gradient of the "
     "minibatch-mean loss) or \"sample\" (1/B dropped); batch: the minibatch's size when rL holds "
     "some of its rows (their values of the whole minibatch's call)",
     "model (optional), rL[B,nL], y[B,nL], loss = \"mse\"|\"ce\", lambda, mode = "
     "\"mean\"|\"sample\" (default \"mean\"), batch (mode \"mean\": an integer >= B, "
     "default B), out[B,nL]",
     k_targets},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.loss",
     "minibatch-mean loss (mse: mean of (r-y)^2 over B nL; ce: mean over B of -y.log "
     "softmax(r)) and the number of correct argmax predictions (ce; 0 for mse)",
     "model (optional), rL[B,nL], y[B,nL], loss = \"mse\"|\"ce\", out[2]", k_loss},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.weight_product",
     "fixed feedback weights: Q_L = I, Q_i = W_{i+1}^T ... W_L^T (in place)", "model",
     k_weight_product},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.convergence",
     "the reference's per-sample convergence test after a run: 1 where ||rL(T) - (r* - alpha "
     "u(T))|| < tol ||rminus|| and ||r* - rL(T)|| < 0.25 ||r* - rminus||, else 0",
     "model (optional), sim, rminus[B,nL], alpha, tol (default 1e-5), out[B]", k_convergence},
};

int dfc_register_kernels_basic(ap_registry *r) {
    return dfc_add_kernels(r, kernels, sizeof kernels / sizeof kernels[0]);
}
