/* kernels_measures.c — the per-sample measures of App. F.1 beyond those of
 * kernels_conditions.c: Condition 1 at the feedforward state (dfc.condition1) and the
 * stability of the linearised network + controller system (dfc.stability). The reference
 * updates of the alignment angles are in kernels_alignment.c, the eigenvalues in eigen.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "dfc_internal.h"

/* ---- dfc.condition1 ---------------------------------------------------------------------- */
/* (214)-(215): with the layer norms s_i = ||r_i^-|| of layers i = 0..L-1 (the input r_0 = x
 * included, the output excluded) and m = mean_i s_i,
 *     out = sqrt(sum_i (s_i - m)^2 / (L m^p)),
 * p = 2 (the default, the paper's text: std_i s_i / m with the population standard deviation)
 * or p = 1 (the reference code's dev_r, which divides by m). 0: every layer has the same norm. */
static int condition1_power(const ap_kernel_args *a, const char *K, double *p) {
    *p = 2;
    int rc = ap_arg_number(a, K, "power", 0, p);
    if (!rc && *p != 1 && *p != 2)
        rc = ap_error(AP_EINVAL, "kernel %s: power = %g, must be 1 (divide by m) or 2 (by m^2)", K,
                      *p);
    return rc;
}

/* out[b] for every sample, from the layers' rates r[0..L-1] at the feedforward state */
static int condition1_samples(const dfc_net *net, const char *K, int B, double power,
                              double *const *r, double *out) {
    const int L = net->L;
    for (int b = 0; b < B; b++) {
        double s[L], mean = 0, var = 0;
        for (int i = 0; i < L; i++) {
            const double *ri = r[i] + (size_t)b * net->n[i];
            double n2 = 0;
            for (int j = 0; j < net->n[i]; j++)
                n2 += ri[j] * ri[j];
            s[i] = sqrt(n2);
            mean += s[i] / L;
        }
        for (int i = 0; i < L; i++)
            var += (s[i] - mean) * (s[i] - mean) / L;
        if (!(mean > 0) || !isfinite(mean))
            return ap_error(AP_EINVAL,
                            "kernel %s: the mean layer norm is %g for sample %d (Condition 1 "
                            "needs a nonzero activity)",
                            K, mean, b + 1);
        out[b] = sqrt(var / (power == 2 ? mean * mean : mean));
    }
    return AP_OK;
}

static int condition1_run(const ap_kernel_args *a, const char *K, const dfc_net *net,
                          double power) {
    int B = 0, rc;
    double *x = NULL, *out = NULL;
    if ((rc = dfc_arg_matrix(a, K, "x", 1, net->n[0], &B, &x))) return rc;
    size_t shape[1] = {(size_t)B};
    if ((rc = ap_arg_array(a, K, "out", 1, 1, shape, &out, NULL))) return rc;
    const int L = net->L;
    double *v[L + 1], *r[L + 1], *buf;
    if ((rc = dfc_forward_new(net, K, B, x, NULL, v, r, &buf))) return rc;
    rc = condition1_samples(net, K, B, power, r, out);
    free(buf);
    return rc;
}

static int k_condition1(const ap_kernel_args *a) {
    static const char *const K = "dfc.condition1";
    static const char *const known[] = {"model", "x", "out", "power", "net"};
    int rc = ap_args_check(a, K, known, 5);
    if (rc) return rc;
    double power = 2;
    if ((rc = condition1_power(a, K, &power))) return rc;
    dfc_net net;
    ap_model *m = NULL;
    if ((rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m))) return rc;
    if ((rc = dfc_net_arg(a, K, "net", m, 0, &net))) return rc;
    rc = condition1_run(a, K, &net, power);
    dfc_net_free(&net);
    return rc;
}

/* ---- dfc.stability ----------------------------------------------------------------------- */
/* The network and controller of the forward phase, with instantaneous basal and apical
 * compartments (1), (4)/(208):
 *     tau_v dv_i/dt    = -v_i + W_i phi_{i-1}(v_{i-1}) + b_i + Q_i u   (phi_0(v_0) = x, fixed)
 *     tau_u du_int/dt  = e - alpha u,   u = u_int + k_p e,   e = r* - phi_L(v_L).
 * State s = (v_1, ..., v_L, u_int), N + n_L values (v_i from row col[i] = n_1 + ... + n_{i-1},
 * u_int from row N). Its Jacobian at a point with D_i = diag(phi_i'(v_i)):
 *     d(dv_i)/dv_i     = -I / tau_v
 *     d(dv_i)/dv_{i-1} = W_i D_{i-1} / tau_v                  (i >= 2)
 *     d(dv_i)/dv_L    += -k_p Q_i D_L / tau_v                 (u depends on v_L through k_p e)
 *     d(dv_i)/du_int   = Q_i / tau_v
 *     d(du_int)/dv_L   = -(1 - alpha k_p) D_L / tau_u         (e - alpha u = (1 - alpha k_p) e
 *     d(du_int)/du_int = -alpha I / tau_u                      - alpha u_int)
 * The target r* does not enter the matrix: it only moves the point (the steady state). */

/* The (N + n_L)^2 matrix above (row-major) from D (N values, layers stacked). */
static void system_matrix(const dfc_net *net, const double *D, double alpha, double k_p,
                          double tau_v, double tau_u, double *S) {
    const int L = net->L, nL = net->n[L];
    int col[L + 1];
    const int N = dfc_net_columns(net, col), n = N + nL;
    memset(S, 0, (size_t)n * n * sizeof *S);
    const double *DL = D + col[L];
    for (int i = 1; i <= L; i++) {
        const int ni = net->n[i], np = net->n[i - 1];
        for (int j = 0; j < ni; j++) {
            double *row = S + (size_t)(col[i] + j) * n;
            row[col[i] + j] -= 1.0 / tau_v;
            if (i >= 2)
                for (int k = 0; k < np; k++)
                    row[col[i - 1] + k] +=
                        net->W[i][(size_t)j * np + k] * D[col[i - 1] + k] / tau_v;
            const double *q = net->Q[i] + (size_t)j * nL;
            for (int k = 0; k < nL; k++) {
                row[col[L] + k] -= k_p * q[k] * DL[k] / tau_v;
                row[N + k] += q[k] / tau_v;
            }
        }
    }
    for (int k = 0; k < nL; k++) {
        double *row = S + (size_t)(N + k) * n;
        row[col[L] + k] = -(1.0 - alpha * k_p) * DL[k] / tau_u;
        row[N + k] = -alpha / tau_u;
    }
}

/* The stability kernel's numbers and arrays (what k_stability reads besides the network). */
typedef struct stab_args {
    int B;
    double *x, *target, *vin, *out, *re, *im;
    double alpha, k_p, tau_v, tau_u;
} stab_args;

static int stability_args(const ap_kernel_args *a, const char *K, const dfc_net *net, int N,
                          stab_args *p) {
    const int nL = net->n[net->L], n = N + nL;
    int rc;
    memset(p, 0, sizeof *p);
    p->tau_u = 1;
    /* with v, the point is given: x and target are not read (and may be left out) */
    if ((rc = dfc_arg_matrix(a, K, "v", 0, N, &p->B, &p->vin))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "x", p->vin == NULL, net->n[0], &p->B, &p->x))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "target", p->vin == NULL, nL, &p->B, &p->target))) return rc;
    if ((rc = ap_arg_number(a, K, "alpha", 1, &p->alpha))) return rc;
    if ((rc = ap_arg_number(a, K, "k_p", 1, &p->k_p))) return rc;
    if ((rc = ap_arg_number(a, K, "tau_v", 1, &p->tau_v))) return rc;
    if ((rc = ap_arg_number(a, K, "tau_u", 0, &p->tau_u))) return rc;
    if (!isfinite(p->alpha)) return ap_error(AP_EINVAL, "kernel %s: alpha = %g", K, p->alpha);
    if (!isfinite(p->k_p)) return ap_error(AP_EINVAL, "kernel %s: k_p = %g", K, p->k_p);
    if (!(p->tau_v > 0) || !isfinite(p->tau_v))
        return ap_error(AP_EINVAL, "kernel %s: tau_v = %g, must be > 0", K, p->tau_v);
    if (!(p->tau_u > 0) || !isfinite(p->tau_u))
        return ap_error(AP_EINVAL, "kernel %s: tau_u = %g, must be > 0", K, p->tau_u);
    size_t shape[1] = {(size_t)p->B};
    if ((rc = ap_arg_array(a, K, "out", 1, 1, shape, &p->out, NULL))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "out_re", 0, n, &p->B, &p->re))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "out_im", 0, n, &p->B, &p->im))) return rc;
    if ((p->re == NULL) != (p->im == NULL))
        return ap_error(AP_EINVAL, "kernel %s: give out_re and out_im together", K);
    return AP_OK;
}

/* The eigenvalues of every sample's system matrix, at the given v or the DFC-SSA steady state. */
static int stability_samples(const dfc_net *net, const char *K, const stab_args *p, int N) {
    const int L = net->L, nL = net->n[L], n = N + nL;
    int col[L + 1];
    dfc_net_columns(net, col);
    /* the system matrix, D and the point v (N each), its sorted eigenvalues (n each) */
    const size_t n_ws = (size_t)n * n + 2 * (size_t)N + 2 * (size_t)n;
    double *ws_mem = malloc(n_ws * sizeof *ws_mem);
    dfc_eigen ew = {0};
    dfc_ssa_state ssa = {0};
    int rc = AP_OK;
    if (!ws_mem) {
        rc = ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", K, n_ws);
        goto done;
    }
    if ((rc = dfc_eigen_new(n, K, &ew))) goto done;
    double *S = ws_mem, *D = S + (size_t)n * n, *vp = D + N, *ere = vp + N, *eim = ere + n;
    /* without v: the DFC-SSA steady state of Lemma 1 (6) of the whole batch, as dfc.ssa
     * computes it */
    if (!p->vin && (rc = dfc_ssa_solve(net, K, p->B, p->x, p->target, NULL, p->alpha, &ssa)))
        goto done;
    for (int b = 0; b < p->B && !rc; b++) {
        if (p->vin)
            memcpy(vp, p->vin + (size_t)b * N, (size_t)N * sizeof *vp);
        else
            for (int i = 1; i <= L; i++)
                memcpy(vp + col[i], ssa.v[i] + (size_t)b * net->n[i],
                       (size_t)net->n[i] * sizeof *vp);
        for (int i = 1; i <= L; i++)
            net->act[i]->df((size_t)net->n[i], vp + col[i], D + col[i]);
        system_matrix(net, D, p->alpha, p->k_p, p->tau_v, p->tau_u, S);
        if ((rc = dfc_eigen_solve(&ew, S, K, "the system matrix", b + 1, ere, eim))) break;
        p->out[b] = ere[n - 1];
        if (!isfinite(p->out[b])) {
            rc =
                ap_error(AP_ENONFINITE, "kernel %s: non-finite eigenvalue for sample %d", K, b + 1);
            break;
        }
        if (p->re) {
            memcpy(p->re + (size_t)b * n, ere, (size_t)n * sizeof *p->re);
            memcpy(p->im + (size_t)b * n, eim, (size_t)n * sizeof *p->im);
        }
    }
done:
    dfc_eigen_free(&ew);
    dfc_ssa_free(&ssa);
    free(ws_mem);
    return rc;
}

/* Q: the stacked effective feedback of a feedback pathway (as dfc.condition2 takes it), read
 * instead of the model's Q1..QL; the pathway is then taken as instantaneous. */
static int stability_q(const char *K, double *qeff, const size_t *qshape, int N, dfc_net *net) {
    const int L = net->L, nL = net->n[L];
    if (qshape[0] != (size_t)N || qshape[1] != (size_t)nL)
        return ap_error(AP_ESIZE,
                        "kernel %s: Q has shape [%zu, %zu], the network needs [%d, %d] (Q_1..Q_L "
                        "stacked, n_1 + ... + n_L rows)",
                        K, qshape[0], qshape[1], N, nL);
    size_t row = 0;
    for (int i = 1; i <= L; i++) {
        net->Q[i] = qeff + row * nL; /* read only */
        row += (size_t)net->n[i];
    }
    return AP_OK;
}

static int k_stability(const ap_kernel_args *a) {
    static const char *const K = "dfc.stability";
    static const char *const known[] = {"model", "x",   "target", "alpha",  "k_p", "tau_v", "tau_u",
                                        "v",     "out", "out_re", "out_im", "Q",   "net"};
    int rc = ap_args_check(a, K, known, 13);
    if (rc) return rc;
    dfc_net net;
    ap_model *m = NULL;
    double *qeff = NULL;
    size_t qshape[4] = {0};
    const size_t any2[2] = {0, 0};
    if ((rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m))) return rc;
    if ((rc = ap_arg_array(a, K, "Q", 0, 2, any2, &qeff, qshape))) return rc;
    if ((rc = dfc_net_arg(a, K, "net", m, qeff == NULL, &net))) return rc;
    int col[net.L + 1];
    const int N = dfc_net_columns(&net, col);
    stab_args p;
    if (qeff) rc = stability_q(K, qeff, qshape, N, &net);
    if (!rc) rc = stability_args(a, K, &net, N, &p);
    if (!rc) rc = stability_samples(&net, K, &p, N);
    dfc_net_free(&net);
    return rc;
}

static const ap_kernel kernels[] = {
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.condition1",
     "Condition 1 per sample at the feedforward state: sqrt(sum_i (||r_i|| - m)^2 / (L m^p)), "
     "m = mean_i ||r_i||, over the layers i = 0..L-1 (the input included, the output excluded); "
     "p = 2: std / mean (the paper's text), p = 1: the reference code's; 0: equal norms",
     "model, x[B,n0], out[B] (written), power (1 or 2, default 2)", k_condition1},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.stability",
     "the largest real part of the eigenvalues of the linearised network + controller system "
     "(state v_1..v_L, u_int; instantaneous basal and apical compartments) per sample, at the "
     "DFC-SSA steady state of Lemma 1 or at the given somatic potentials v; < 0: stable",
     "model, x[B,n0], target[B,nL] (x and target not needed with v), alpha, k_p, tau_v, tau_u "
     "(default 1), v[B,N] (optional: the point, layers 1..L stacked), out[B] (written), "
     "out_re[B,N+nL], out_im[B,N+nL] (optional: every eigenvalue, ascending real part), "
     "Q[N,nL] (optional: the stacked feedback to use instead of the model's Q1..QL)",
     k_stability},
};

int dfc_register_kernels_measures(ap_registry *r) {
    return dfc_add_kernels(r, kernels, sizeof kernels / sizeof kernels[0]);
}
