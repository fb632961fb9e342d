/* kernels_feedback.c — the sleep phase (12), (13) of feedback learning: dfc.copy_weights keeps a
 * second network (the noisy sleep-phase simulation) in step with the trained one, and
 * dfc.feedback_grad turns the recordings of a sleep-phase run into the reference's descent
 * direction for the synapses that end on the apical compartments, Q<i>, one dgemm per layer:
 * with direct feedback (Q_i: ctl.u -> h<i>.apical) the presynaptic factor is u, with a feedback
 * pathway (plugins/dfc/lua/dfc/pathways.lua) it is the recorded output of the population that
 * Q<i> reads (docs/dfc.md, "Trained feedback through a pathway"). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "apical/error.h"
#include "apical/optim.h"
#include "apical/sim.h"
#include "dfc_internal.h"

/* ---- dfc.copy_weights -------------------------------------------------------------------- */
/* The two networks must have the same sizes (and, with cw, the same biases). */
static int copy_check(const char *K, int cw, const dfc_net *nf, const dfc_net *nt) {
    if (nf->L != nt->L)
        return ap_error(AP_ESIZE, "kernel %s: from has %d layers, to has %d", K, nf->L, nt->L);
    for (int i = 0; i <= nf->L; i++)
        if (nf->n[i] != nt->n[i])
            return ap_error(AP_ESIZE, "kernel %s: %s has %d units in from, %d in to", K,
                            nf->name[i], nf->n[i], nt->n[i]);
    if (cw)
        for (int i = 1; i <= nf->L; i++)
            if (!nf->b[i] != !nt->b[i])
                return ap_error(AP_EINVAL, "kernel %s: W%d has a bias in %s only", K, i,
                                nf->b[i] ? "from" : "to");
    return AP_OK;
}

static void copy_layers(int cw, int cq, const dfc_net *nf, const dfc_net *nt) {
    for (int i = 1; i <= nf->L; i++) {
        if (cw) {
            memcpy(nt->W[i], nf->W[i], (size_t)nf->n[i] * nf->n[i - 1] * sizeof(double));
            if (nf->b[i]) memcpy(nt->b[i], nf->b[i], (size_t)nf->n[i] * sizeof(double));
        }
        if (cq) memcpy(nt->Q[i], nf->Q[i], (size_t)nf->n[i] * nf->n[nf->L] * sizeof(double));
    }
}

static int k_copy_weights(const ap_kernel_args *a) {
    static const char *const K = "dfc.copy_weights";
    static const char *const known[] = {"from", "to", "which", "from_net", "to_net"};
    int rc = ap_args_check(a, K, known, 5);
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
    dfc_net nf, nt = {0};
    if ((rc = dfc_net_arg(a, K, "from_net", from, cq, &nf))) return rc;
    if (!(rc = dfc_net_arg(a, K, "to_net", to, cq, &nt))) rc = copy_check(K, cw, &nf, &nt);
    if (!rc && from != to) copy_layers(cw, cq, &nf, &nt);
    dfc_net_free(&nf);
    dfc_net_free(&nt);
    return rc;
}

/* ---- dfc.feedback_grad (13) -------------------------------------------------------------- */
/* The synapses that rule (13) trains: Q_i of `m` (the descriptor's, or "Q<i>" by name), dense,
 * n_i rows, ending on layer i's apical compartment; with direct feedback n_L columns, otherwise
 * any number (the width of its presynaptic signal, checked against the recording). */
static int load_q(ap_model *m, const char *K, const dfc_net *net, int i, int direct, int *id,
                  int *cols) {
    char name[32];
    snprintf(name, sizeof name, "Q%d", i);
    int rc = AP_OK;
    if (net->q_id[i] >= 0)
        *id = net->q_id[i];
    else if ((rc = ap_model_find_projection(m, name, id)))
        return ap_error_prefix(rc, "kernel %s: ", K);
    ap_projection_info pi;
    if ((rc = ap_model_projection_info(m, *id, &pi))) return rc;
    const char *pop = net->name[i];
    const size_t lp = strlen(pop);
    if (pi.kind != AP_DENSE)
        return ap_error(AP_EINVAL, "kernel %s: projection %s must be dense", K, pi.name);
    if (strncmp(pi.target, pop, lp) || strcmp(pi.target + lp, ".apical"))
        return ap_error(AP_EINVAL, "kernel %s: projection %s ends on %s, not on %s.apical", K,
                        pi.name, pi.target, pop);
    if (pi.rows != net->n[i] || (direct && pi.cols != net->n[net->L]))
        return ap_error(AP_ESIZE, "kernel %s: projection %s is %d x %d, %s needs %d x %s", K,
                        pi.name, pi.rows, pi.cols, pop, net->n[i], direct ? "n_L" : "(any)");
    *cols = pi.cols;
    return AP_OK;
}

/* The arguments of dfc.feedback_grad besides the networks. */
typedef struct fb_args {
    ap_model *m;
    ap_sim *s;
    ap_optim *opt;
    double sigma, scale, *pre, *lag;
    size_t n_pre, n_lag;
} fb_args;

static int feedback_args(const ap_kernel_args *a, const char *K, fb_args *p) {
    size_t pre_shape[4] = {0}, lag_shape[4] = {0};
    const size_t any1[1] = {0};
    memset(p, 0, sizeof *p);
    p->scale = 1;
    int rc = ap_arg_object(a, K, "sim", AP_ARG_SIM, 1, (void **)&p->s);
    if (!rc) rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 0, (void **)&p->m);
    if (!rc) rc = ap_arg_object(a, K, "optim", AP_ARG_OPTIM, 1, (void **)&p->opt);
    if (!rc) rc = ap_arg_number(a, K, "sigma", 1, &p->sigma);
    if (!rc) rc = ap_arg_number(a, K, "scale", 0, &p->scale);
    /* pre, lag: a feedback pathway (docs/dfc.md, "Trained feedback through a pathway") */
    if (!rc) rc = ap_arg_array(a, K, "pre", 0, 1, any1, &p->pre, pre_shape);
    if (!rc) rc = ap_arg_array(a, K, "lag", 0, 1, any1, &p->lag, lag_shape);
    if (rc) return rc;
    p->n_pre = pre_shape[0], p->n_lag = lag_shape[0];
    if (!(p->sigma >= 0) || !isfinite(p->sigma) || !isfinite(p->scale))
        return ap_error(AP_EINVAL, "kernel %s: sigma = %g, scale = %g", K, p->sigma, p->scale);
    if (p->lag && !p->pre)
        return ap_error(AP_EINVAL, "kernel %s: lag needs pre (the presynaptic recordings)", K);
    if (!p->m) p->m = ap_sim_model(p->s);
    return AP_OK;
}

/* The simulation may run a copy of the network (the sleep network): the same sizes. */
static int feedback_sim_net(const ap_kernel_args *a, const char *K, const fb_args *p,
                            const dfc_net *net) {
    ap_model *ms = ap_sim_model(p->s);
    if (ms == p->m) return AP_OK;
    dfc_net snet;
    int rc = dfc_net_arg(a, K, "sim_net", ms, 0, &snet);
    if (rc) return rc;
    if (snet.L != net->L)
        rc = ap_error(AP_ESIZE, "kernel %s: the sim's model has %d layers, model has %d", K, snet.L,
                      net->L);
    for (int i = 1; i <= net->L && !rc; i++)
        if (snet.n[i] != net->n[i])
            rc = ap_error(AP_ESIZE, "kernel %s: %s has %d units in the sim's model, %d in model", K,
                          net->name[i], snet.n[i], net->n[i]);
    dfc_net_free(&snet);
    return rc;
}

/* Per layer: Q_i's id and width, the recording of its presynaptic signal (src, 0 = ctl.u) and
 * the lag (shift) with which vA_i[t] pairs with it. */
static int feedback_layers(const char *K, const fb_args *p, const dfc_net *net, int *q_id,
                           int *cols, int *src, int *shift) {
    const int L = net->L, nL = net->n[L];
    if (p->pre && p->n_pre != (size_t)L)
        return ap_error(AP_ESIZE, "kernel %s: pre has %zu entries, the network has %d layers", K,
                        p->n_pre, L);
    if (p->lag && p->n_lag != (size_t)L)
        return ap_error(AP_ESIZE, "kernel %s: lag has %zu entries, the network has %d layers", K,
                        p->n_lag, L);
    for (int i = 1; i <= L; i++) {
        q_id[i] = net->q_id[i], cols[i] = nL, src[i] = 0, shift[i] = 1;
        if (!p->pre) continue;
        int rc = load_q(p->m, K, net, i, 0, &q_id[i], &cols[i]);
        if (rc) return rc;
        const double pr = p->pre[i - 1], l = p->lag ? p->lag[i - 1] : 1;
        if (!(pr == 0 || (pr > L && pr <= 1024)) || pr != floor(pr))
            return ap_error(AP_EINVAL,
                            "kernel %s: pre[%d] = %g must be 0 (ctl.u) or a recording index > %d "
                            "(after %s.apical..%s.apical)",
                            K, i, pr, L, net->name[1], net->name[L]);
        if (l != 1 && l != 2)
            return ap_error(AP_EINVAL, "kernel %s: lag[%d] = %g must be 1 or 2", K, i, l);
        src[i] = (int)pr, shift[i] = (int)l;
    }
    return AP_OK;
}

/* The recordings: 0 is ctl.u, i is layer i's apical compartment, every step of one run; a
 * pathway adds the presynaptic signals after them. rec[k], width[k] for k < n_rec. */
static int feedback_recordings(const char *K, const fb_args *p, const dfc_net *net, int B,
                               int n_rec, const int *cols, const int *src, const double **rec,
                               size_t *n_times) {
    const int L = net->L, nL = net->n[L];
    int width[n_rec];
    for (int k = 0; k < n_rec; k++) {
        const double *data;
        size_t nt;
        int rc = ap_sim_recording(p->s, k, &data, NULL, &nt, &width[k]);
        if (rc)
            return ap_error(rc,
                            "kernel %s: the sim has no recording %d; record {\"ctl.u\", "
                            "\"%s.apical\", ..., \"%s.apical\"%s} in this order, every step",
                            K, k, net->name[1], net->name[L],
                            p->pre ? ", the presynaptic signals of pre" : "");
        if (k == 0) *n_times = nt;
        if (nt != *n_times)
            return ap_error(AP_ESIZE, "kernel %s: recording %d has %zu points, recording 0 has %zu",
                            K, k, nt, *n_times);
        rec[k] = data;
    }
    for (int k = 0; k <= L; k++) {
        const int want = B * (k == 0 ? nL : net->n[k]);
        if (width[k] != want)
            return ap_error(AP_ESIZE,
                            "kernel %s: recording %d is %d values wide, %s needs %d (record "
                            "{\"ctl.u\", \"%s.apical\", ..., \"%s.apical\"} in this order)",
                            K, k, width[k], k == 0 ? "ctl.u" : "h<i>.apical", want, net->name[1],
                            net->name[L]);
    }
    for (int i = 1; i <= L; i++)
        if (width[src[i]] != B * cols[i])
            return ap_error(AP_ESIZE,
                            "kernel %s: recording %d (the presynaptic signal of Q%d) is %d "
                            "values wide, Q%d has %d columns (%d values for a batch of %d)",
                            K, src[i], i, width[src[i]], i, cols[i], B * cols[i], B);
    return AP_OK;
}

static int feedback_run(const char *K, const fb_args *p, const dfc_net *net) {
    const int L = net->L, B = ap_model_batch(ap_sim_model(p->s));
    int q_id[L + 1], cols[L + 1], src[L + 1], shift[L + 1];
    int rc = feedback_layers(K, p, net, q_id, cols, src, shift);
    if (rc) return rc;
    int n_rec = L + 1;
    for (int i = 1; i <= L; i++)
        if (src[i] + 1 > n_rec) n_rec = src[i] + 1;
    const double *rec[n_rec];
    size_t n_times = 0;
    if ((rc = feedback_recordings(K, p, net, B, n_rec, cols, src, rec, &n_times))) return rc;
    if (n_times < 2)
        return ap_error(AP_EINVAL, "kernel %s: the recordings have %zu points; at least 2 needed",
                        K, n_times);
    for (int i = 1; i <= L; i++)
        if (n_times < (size_t)shift[i] + 1)
            return ap_error(AP_EINVAL,
                            "kernel %s: the recordings have %zu points; lag %d needs at least %d",
                            K, n_times, shift[i], shift[i] + 1);
    if ((n_times - 1) * (size_t)B > (size_t)1 << 30)
        return ap_error(AP_ESIZE, "kernel %s: %zu points x %d samples are too many", K, n_times - 1,
                        B);
    const double s_eff = fmax(p->sigma, 0.01);
    for (int i = 1; i <= L; i++) {
        double *g = ap_optim_grad_w(p->opt, q_id[i]);
        if (!g) continue; /* Q_i is not trained by this optimiser (e.g. a frozen Q_L) */
        /* (13), the reference's accumulation: g_Q_i = 1/(s^2 T B) sum_t sum_b vA_i[t] p[t+lag]^T
         * over the T = points - lag pairs; direct feedback: p = u, lag 1. The points t = 0..T-1
         * of vA_i and t = lag..lag+T-1 of p are contiguous (T B) x n blocks */
        const size_t T = n_times - (size_t)shift[i];
        const int TB = (int)(T * (size_t)B), ni = net->n[i], ci = cols[i];
        const double c = p->scale / (s_eff * s_eff * (double)T * (double)B);
        const double *P = rec[src[i]] + (size_t)shift[i] * B * ci;
        /* g (n_i x c_i) += c VA^T (n_i x TB) . P (TB x c_i) */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, ci, TB, c, rec[i], ni, P, ci, 1.0,
                    g, ci);
    }
    return AP_OK;
}

static int k_feedback_grad(const ap_kernel_args *a) {
    static const char *const K = "dfc.feedback_grad";
    static const char *const known[] = {"model", "sim", "optim", "sigma",  "scale",
                                        "pre",   "lag", "net",   "sim_net"};
    int rc = ap_args_check(a, K, known, 9);
    fb_args p;
    if (!rc) rc = feedback_args(a, K, &p);
    if (rc) return rc;
    dfc_net net;
    /* direct feedback: Q1..QL are n_i x n_L (checked on loading); a pathway's Q<i> have the
     * width of their presynaptic signal */
    if ((rc = dfc_net_arg(a, K, "net", p.m, p.pre == NULL, &net))) return rc;
    rc = feedback_sim_net(a, K, &p, &net);
    if (!rc) rc = feedback_run(K, &p, &net);
    dfc_net_free(&net);
    return rc;
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
     "sigma, scale (default 1), pre[L] (optional, a feedback pathway: the recording index of "
     "Q_i's presynaptic signal p, 0 = ctl.u or > L), lag[L] (optional, 1 or 2: vA_i[t] pairs "
     "with p[t+lag], default 1; T = points - lag)",
     k_feedback_grad},
};

int dfc_register_kernels_feedback(ap_registry *r) {
    return dfc_add_kernels(r, kernels, sizeof kernels / sizeof kernels[0]);
}
