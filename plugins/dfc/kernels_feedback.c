/* kernels_feedback.c — the sleep phase (12), (13) of direct feedback learning (Q_i: ctl.u ->
 * h<i>.apical): dfc.copy_weights keeps a second network (the noisy sleep-phase simulation) in
 * step with the trained one, and dfc.feedback_grad turns the recordings of a sleep-phase run
 * into the reference's descent direction for every Q_i, one dgemm per layer. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "apical/error.h"
#include "apical/optim.h"
#include "apical/sim.h"
#include "dfc_internal.h"

/* ---- dfc.copy_weights -------------------------------------------------------------------- */
static int k_copy_weights(const ap_kernel_args *a) {
    static const char *const K = "dfc.copy_weights";
    static const char *const known[] = {"from", "to", "which"};
    int rc = ap_args_check(a, K, known, 3);
    ap_model *from = NULL, *to = NULL;
    const char *which = "WQ";
    if (!rc) rc = ap_arg_object(a, K, "from", AP_ARG_MODEL, 1, (void **)&from);
    if (!rc) rc = ap_arg_object(a, K, "to", AP_ARG_MODEL, 1, (void **)&to);
    if (!rc) rc = ap_arg_string(a, K, "which", 0, &which);
    if (rc) return rc;
    int cw, cq;
    if (!strcmp(which, "W")) {
        cw = 1, cq = 0;
    } else if (!strcmp(which, "Q")) {
        cw = 0, cq = 1;
    } else if (!strcmp(which, "WQ")) {
        cw = 1, cq = 1;
    } else {
        return ap_error(AP_EINVAL, "kernel %s: which = \"%s\" (known: \"W\", \"Q\", \"WQ\")", K,
                        which);
    }
    dfc_net nf, nt;
    if ((rc = dfc_net_load(from, K, cq, &nf))) return rc;
    if ((rc = dfc_net_load(to, K, cq, &nt))) return rc;
    if (nf.L != nt.L)
        return ap_error(AP_ESIZE, "kernel %s: from has %d layers, to has %d", K, nf.L, nt.L);
    for (int i = 0; i <= nf.L; i++)
        if (nf.n[i] != nt.n[i])
            return ap_error(AP_ESIZE, "kernel %s: %s%.0d has %d units in from, %d in to", K,
                            i == 0 ? "x" : "h", i, nf.n[i], nt.n[i]);
    if (cw)
        for (int i = 1; i <= nf.L; i++)
            if (!nf.b[i] != !nt.b[i])
                return ap_error(AP_EINVAL, "kernel %s: W%d has a bias in %s only", K, i,
                                nf.b[i] ? "from" : "to");
    if (from == to) return AP_OK;
    for (int i = 1; i <= nf.L; i++) {
        if (cw) {
            memcpy(nt.W[i], nf.W[i], (size_t)nf.n[i] * nf.n[i - 1] * sizeof(double));
            if (nf.b[i]) memcpy(nt.b[i], nf.b[i], (size_t)nf.n[i] * sizeof(double));
        }
        if (cq) memcpy(nt.Q[i], nf.Q[i], (size_t)nf.n[i] * nf.n[nf.L] * sizeof(double));
    }
    return AP_OK;
}

/* ---- dfc.feedback_grad (13) -------------------------------------------------------------- */
static int k_feedback_grad(const ap_kernel_args *a) {
    static const char *const K = "dfc.feedback_grad";
    static const char *const known[] = {"model", "sim", "optim", "sigma", "scale"};
    int rc = ap_args_check(a, K, known, 5);
    ap_model *m = NULL;
    ap_sim *s = NULL;
    ap_optim *opt = NULL;
    double sigma = 0, scale = 1;
    if (!rc) rc = ap_arg_object(a, K, "sim", AP_ARG_SIM, 1, (void **)&s);
    if (!rc) rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 0, (void **)&m);
    if (!rc) rc = ap_arg_object(a, K, "optim", AP_ARG_OPTIM, 1, (void **)&opt);
    if (!rc) rc = ap_arg_number(a, K, "sigma", 1, &sigma);
    if (!rc) rc = ap_arg_number(a, K, "scale", 0, &scale);
    if (rc) return rc;
    if (!(sigma >= 0) || !isfinite(sigma) || !isfinite(scale))
        return ap_error(AP_EINVAL, "kernel %s: sigma = %g, scale = %g", K, sigma, scale);
    ap_model *ms = ap_sim_model(s);
    if (!m) m = ms;
    dfc_net net, snet;
    if ((rc = dfc_net_load(m, K, 1, &net))) return rc;
    if (ms != m) {
        /* the simulation may run a copy of the network (the sleep network): same sizes */
        if ((rc = dfc_net_load(ms, K, 0, &snet))) return rc;
        if (snet.L != net.L)
            return ap_error(AP_ESIZE, "kernel %s: the sim's model has %d layers, model has %d", K,
                            snet.L, net.L);
        for (int i = 1; i <= net.L; i++)
            if (snet.n[i] != net.n[i])
                return ap_error(AP_ESIZE,
                                "kernel %s: h%d has %d units in the sim's model, %d in "
                                "model",
                                K, i, snet.n[i], net.n[i]);
    }
    const int L = net.L, nL = net.n[L], B = ap_model_batch(ms);

    /* recording 0 is ctl.u, recording i is h<i>.apical, every step of one run */
    const double *rec[DFC_MAX_LAYERS + 1];
    size_t n_times = 0;
    for (int k = 0; k <= L; k++) {
        const double *data;
        size_t nt;
        int width;
        if ((rc = ap_sim_recording(s, k, &data, NULL, &nt, &width)))
            return ap_error(rc,
                            "kernel %s: the sim has no recording %d; record {\"ctl.u\", "
                            "\"h1.apical\", ..., \"h%d.apical\"} in this order, every step",
                            K, k, L);
        const int want = B * (k == 0 ? nL : net.n[k]);
        if (width != want)
            return ap_error(AP_ESIZE,
                            "kernel %s: recording %d is %d values wide, %s needs %d (record "
                            "{\"ctl.u\", \"h1.apical\", ..., \"h%d.apical\"} in this order)",
                            K, k, width, k == 0 ? "ctl.u" : "h<i>.apical", want, L);
        if (k == 0) n_times = nt;
        if (nt != n_times)
            return ap_error(AP_ESIZE, "kernel %s: recording %d has %zu points, recording 0 has %zu",
                            K, k, nt, n_times);
        rec[k] = data;
    }
    if (n_times < 2)
        return ap_error(AP_EINVAL, "kernel %s: the recordings have %zu points; at least 2 needed",
                        K, n_times);
    const size_t T = n_times - 1;
    if (T * (size_t)B > (size_t)1 << 30)
        return ap_error(AP_ESIZE, "kernel %s: %zu points x %d samples are too many", K, T, B);
    const int TB = (int)(T * (size_t)B);
    const double s_eff = fmax(sigma, 0.01);
    /* (13), the reference's accumulation: g_Q_i = 1/(s^2 T B) sum_t sum_b vA_i[t] u[t+1]^T;
     * the points t = 0..T-1 of vA_i and t = 1..T of u are contiguous (T B) x n blocks */
    const double c = scale / (s_eff * s_eff * (double)T * (double)B);
    const double *U = rec[0] + (size_t)B * nL; /* u[1..T] */
    for (int i = 1; i <= L; i++) {
        double *g = ap_optim_grad_w(opt, net.q_id[i]);
        if (!g) continue; /* Q_i is not trained by this optimiser (e.g. a frozen Q_L) */
        const int ni = net.n[i];
        /* g (n_i x n_L) += c VA^T (n_i x TB) . U (TB x n_L) */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, nL, TB, c, rec[i], ni, U, nL, 1.0,
                    g, nL);
    }
    return AP_OK;
}

static const ap_kernel kernels[] = {
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.copy_weights",
     "copies the forward weights and biases W1..WL (which = \"W\"), the feedback weights Q1..QL "
     "(\"Q\") or both (\"WQ\", default) from one DFC network to another of the same sizes",
     "from (model), to (model), which = \"W\"|\"Q\"|\"WQ\" (default \"WQ\")", k_copy_weights},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.feedback_grad",
     "sleep phase (13), the reference's feedback descent direction: adds scale/(s^2 T B) sum_t "
     "sum_b vA_i[t] u[t+1]^T (s = max(sigma, 0.01), T = points - 1) to the optimiser's Q_i "
     "gradients, from the recordings {ctl.u, h1.apical, ..., hL.apical} of the sim's last run",
     "model (optional: the sim's model; the network whose Q_i the optimiser trains), sim, optim, "
     "sigma, scale (default 1)",
     k_feedback_grad},
};

int dfc_register_kernels_feedback(ap_registry *r) {
    for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
        int rc = ap_registry_add_kernel(r, &kernels[k], "dfc");
        if (rc) return rc;
    }
    return AP_OK;
}
