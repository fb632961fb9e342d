/* kernels_conditions.c — the measures of App. F.1 that the feedback tests need, per sample at
 * the feedforward state: the Jacobian J = [J_1 ... J_L] (dfc.jacobian), Condition 2
 * ||P Q||_F / ||Q||_F with P = J^T (J J^T)^{-1} J (dfc.condition2), and the eigenvalues of J Q
 * (dfc.jq_eigen; Condition 3 asks for real parts > -alpha). Both take the stacked Q from the
 * model's Q1..QL or, for a feedback pathway, from the optional argument Q (its effective feedback).
 * The Jacobian itself is computed in jacobian.c, the eigenvalues in eigen.c. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "dfc_internal.h"

/* ---- dfc.jacobian ------------------------------------------------------------------------ */
static int jacobian_run(const ap_kernel_args *a, const char *K, const dfc_net *net) {
    int B = 0, col[net->L + 1], rc;
    double *x = NULL, *buf = NULL, *d[net->L + 1], *out = NULL;
    if ((rc = dfc_arg_matrix(a, K, "x", 1, net->n[0], &B, &x))) return rc;
    const int N = dfc_net_columns(net, col), nL = net->n[net->L];
    size_t shape[3] = {(size_t)B, (size_t)nL, (size_t)N};
    if ((rc = ap_arg_array(a, K, "out", 1, 3, shape, &out, NULL))) return rc;
    if ((rc = dfc_ff_derivs(net, K, B, x, &buf, d))) return rc;
    for (int b = 0; b < B; b++)
        dfc_jacobian_sample(net, d, b, out + (size_t)b * nL * N);
    free(buf);
    return AP_OK;
}

static int k_jacobian(const ap_kernel_args *a) {
    static const char *const K = "dfc.jacobian";
    static const char *const known[] = {"model", "x", "out", "net"};
    int rc = ap_args_check(a, K, known, 4);
    if (rc) return rc;
    dfc_net net;
    ap_model *m = NULL;
    if ((rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m))) return rc;
    if ((rc = dfc_net_arg(a, K, "net", m, 0, &net))) return rc;
    rc = jacobian_run(a, K, &net);
    dfc_net_free(&net);
    return rc;
}

/* Per-sample workspace: J (nL x N), the stacked Q (N x nL), A = J Q and M (nL x nL). */
typedef struct work {
    int N, nL;
    double *J, *Q, *A, *M;
    double *mem;
} work;

/* Q: the stacked feedback N x nL to use (a pathway's effective feedback), or NULL for the
 * model's Q1..QL. */
static int work_new(const dfc_net *net, const char *K, const double *Q, work *w) {
    int col[net->L + 1];
    w->N = dfc_net_columns(net, col);
    w->nL = net->n[net->L];
    const size_t nJ = (size_t)w->nL * w->N, nA = (size_t)w->nL * w->nL;
    w->mem = malloc((2 * nJ + 2 * nA) * sizeof(double));
    if (!w->mem)
        return ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", K, 2 * nJ + 2 * nA);
    w->J = w->mem;
    w->Q = w->J + nJ;
    w->A = w->Q + nJ;
    w->M = w->A + nA;
    if (Q)
        memcpy(w->Q, Q, nJ * sizeof(double));
    else
        dfc_stack_q(net, w->Q);
    return AP_OK;
}

/* The optional argument Q: the stacked effective feedback [Q_1; ...; Q_L] (N x n_L) of a
 * feedback pathway (dfc.effective_feedback), read instead of the model's Q1..QL, which then need
 * not exist nor be n_i x n_L. *q stays NULL without it. */
static int arg_q(const ap_kernel_args *a, const char *K, double **q) {
    const size_t any2[2] = {0, 0};
    return ap_arg_array(a, K, "Q", 0, 2, any2, q, NULL);
}

static int check_q(const dfc_net *net, const ap_kernel_args *a, const char *K) {
    size_t shape[4] = {0};
    double *q = NULL;
    const size_t any2[2] = {0, 0};
    int rc = ap_arg_array(a, K, "Q", 0, 2, any2, &q, shape);
    if (rc || !q) return rc;
    int col[net->L + 1];
    const int N = dfc_net_columns(net, col), nL = net->n[net->L];
    if (shape[0] != (size_t)N || shape[1] != (size_t)nL)
        return ap_error(AP_ESIZE,
                        "kernel %s: Q has shape [%zu, %zu], the network needs [%d, %d] (Q_1..Q_L "
                        "stacked, n_1 + ... + n_L rows)",
                        K, shape[0], shape[1], N, nL);
    return AP_OK;
}

/* A = J Q for sample b (J is left in w->J). */
static void jq(const dfc_net *net, double *const *d, int b, work *w) {
    dfc_jacobian_sample(net, d, b, w->J);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, w->nL, w->nL, w->N, 1.0, w->J, w->N,
                w->Q, w->nL, 0.0, w->A, w->nL);
}

/* The network of dfc.condition2 and dfc.jq_eigen: the model's, with its Q1..QL unless the
 * argument Q (*q) gives the stacked feedback. */
static int conditions_net(const ap_kernel_args *a, const char *K, double **q, dfc_net *net) {
    ap_model *m = NULL;
    int rc = ap_arg_object(a, K, "model", AP_ARG_MODEL, 1, (void **)&m);
    if (!rc) rc = arg_q(a, K, q);
    if (!rc) rc = dfc_net_arg(a, K, "net", m, *q == NULL, net);
    if (rc) return rc;
    if ((rc = check_q(net, a, K))) dfc_net_free(net);
    return rc;
}

/* ---- dfc.condition2 ---------------------------------------------------------------------- */
/* ||P Q||_F^2 = tr(Q^T J^T M^{-1} J J^T M^{-1} J Q) = tr(A^T M^{-1} A) with A = J Q and
 * M = J J^T = C C^T (Cholesky): ||P Q||_F = ||C^{-1} A||_F. Only n_L x n_L matrices beyond J. */

/* Cholesky M = C C^T in place (lower triangle of the n x n M); AP_EINVAL naming sample b (0-based)
 * and the pivot when M is not positive definite. */
static int cholesky_lower(double *C, int n, const char *K, int b) {
    for (int j = 0; j < n; j++) {
        double s = C[(size_t)j * n + j];
        for (int k = 0; k < j; k++)
            s -= C[(size_t)j * n + k] * C[(size_t)j * n + k];
        if (!(s > 0))
            return ap_error(AP_EINVAL,
                            "kernel %s: J J^T is singular for sample %d (J has not full row "
                            "rank: pivot %d = %g)",
                            K, b + 1, j + 1, s);
        const double cjj = sqrt(s);
        C[(size_t)j * n + j] = cjj;
        for (int i = j + 1; i < n; i++) {
            double t = C[(size_t)i * n + j];
            for (int k = 0; k < j; k++)
                t -= C[(size_t)i * n + k] * C[(size_t)j * n + k];
            C[(size_t)i * n + j] = t / cjj;
        }
    }
    return AP_OK;
}

/* ||C^{-1} Y||_F^2, with Y (n x n) overwritten by C^{-1} Y: forward substitution, row by row
 * (all columns at once). */
static double forward_subst_norm2(const double *C, double *Y, int n) {
    double pq2 = 0;
    for (int i = 0; i < n; i++) {
        double *yi = Y + (size_t)i * n;
        for (int k = 0; k < i; k++) {
            const double cik = C[(size_t)i * n + k];
            const double *yk = Y + (size_t)k * n;
            for (int c = 0; c < n; c++)
                yi[c] -= cik * yk[c];
        }
        const double cii = C[(size_t)i * n + i];
        for (int c = 0; c < n; c++) {
            yi[c] /= cii;
            pq2 += yi[c] * yi[c];
        }
    }
    return pq2;
}

/* out[b] for every sample, from phi' (d) at the feedforward state. */
static int condition2_samples(const dfc_net *net, const char *K, int B, double *const *d, work *w,
                              double *out) {
    const int nL = w->nL, N = w->N;
    double qn2 = 0;
    for (size_t k = 0; k < (size_t)N * nL; k++)
        qn2 += w->Q[k] * w->Q[k];
    if (!(qn2 > 0) || !isfinite(qn2))
        return ap_error(AP_EINVAL, "kernel %s: ||Q||_F = %g; Condition 2 needs a nonzero Q", K,
                        sqrt(qn2));
    for (int b = 0; b < B; b++) {
        jq(net, d, b, w);
        /* M = J J^T */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nL, nL, N, 1.0, w->J, N, w->J, N, 0.0,
                    w->M, nL);
        int rc = cholesky_lower(w->M, nL, K, b);
        if (rc) return rc;
        out[b] = sqrt(forward_subst_norm2(w->M, w->A, nL) / qn2);
        if (!isfinite(out[b]))
            return ap_error(AP_ENONFINITE, "kernel %s: non-finite Condition 2 for sample %d", K,
                            b + 1);
    }
    return AP_OK;
}

static int condition2_run(const ap_kernel_args *a, const char *K, const dfc_net *net,
                          const double *q) {
    int B = 0, rc;
    double *x = NULL, *buf = NULL, *d[net->L + 1], *out = NULL;
    if ((rc = dfc_arg_matrix(a, K, "x", 1, net->n[0], &B, &x))) return rc;
    size_t shape[1] = {(size_t)B};
    if ((rc = ap_arg_array(a, K, "out", 1, 1, shape, &out, NULL))) return rc;
    work w;
    if ((rc = work_new(net, K, q, &w))) return rc;
    if (!(rc = dfc_ff_derivs(net, K, B, x, &buf, d)))
        rc = condition2_samples(net, K, B, d, &w, out);
    free(buf);
    free(w.mem);
    return rc;
}

static int k_condition2(const ap_kernel_args *a) {
    static const char *const K = "dfc.condition2";
    static const char *const known[] = {"model", "x", "out", "Q", "net"};
    int rc = ap_args_check(a, K, known, 5);
    if (rc) return rc;
    dfc_net net;
    double *q = NULL;
    if ((rc = conditions_net(a, K, &q, &net))) return rc;
    rc = condition2_run(a, K, &net, q);
    dfc_net_free(&net);
    return rc;
}

/* ---- dfc.jq_eigen ------------------------------------------------------------------------ */
static int jq_eigen_run(const ap_kernel_args *a, const char *K, const dfc_net *net,
                        const double *q) {
    int B = 0, rc;
    double *x = NULL, *buf = NULL, *d[net->L + 1], *re = NULL, *im = NULL;
    if ((rc = dfc_arg_matrix(a, K, "x", 1, net->n[0], &B, &x))) return rc;
    const int nL = net->n[net->L];
    if ((rc = dfc_arg_matrix(a, K, "out_re", 1, nL, &B, &re))) return rc;
    if ((rc = dfc_arg_matrix(a, K, "out_im", 1, nL, &B, &im))) return rc;
    work w;
    if ((rc = work_new(net, K, q, &w))) return rc;
    dfc_eigen ew = {0};
    if (!(rc = dfc_eigen_new(nL, K, &ew)) && !(rc = dfc_ff_derivs(net, K, B, x, &buf, d)))
        for (int b = 0; b < B && !rc; b++) {
            jq(net, d, b, &w);
            rc = dfc_eigen_solve(&ew, w.A, K, "J Q", b + 1, re + (size_t)b * nL,
                                 im + (size_t)b * nL);
        }
    dfc_eigen_free(&ew);
    free(buf);
    free(w.mem);
    return rc;
}

static int k_jq_eigen(const ap_kernel_args *a) {
    static const char *const K = "dfc.jq_eigen";
    static const char *const known[] = {"model", "x", "out_re", "out_im", "Q", "net"};
    int rc = ap_args_check(a, K, known, 6);
    if (rc) return rc;
    dfc_net net;
    double *q = NULL;
    if ((rc = conditions_net(a, K, &q, &net))) return rc;
    rc = jq_eigen_run(a, K, &net, q);
    dfc_net_free(&net);
    return rc;
}

static const ap_kernel kernels[] = {
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.jacobian",
     "the Jacobian J = [J_1 ... J_L], J_i = d r_L / d v_i at the feedforward state, per sample "
     "(N = n_1 + ... + n_L columns, layer i's block from column n_1 + ... + n_{i-1})",
     "model, x[B,n0], out[B,nL,N] (written)", k_jacobian},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.condition2",
     "Condition 2 per sample: ||P Q||_F / ||Q||_F with P = J^T (J J^T)^{-1} J and Q = [Q_1; ...; "
     "Q_L] (1: the columns of Q lie in the row space of J)",
     "model, x[B,n0], out[B] (written), Q[N,nL] (optional: the stacked effective feedback of a "
     "feedback pathway, used instead of the model's Q1..QL)",
     k_condition2},
    {AP_ABI_VERSION, sizeof(ap_kernel), "dfc.jq_eigen",
     "the eigenvalues of J Q per sample (LAPACK's dgeev), sorted by ascending "
     "real part, then imaginary part; Condition 3 asks for real parts > -alpha",
     "model, x[B,n0], out_re[B,nL], out_im[B,nL] (written), Q[N,nL] (optional: the stacked "
     "effective feedback of a feedback pathway, used instead of the model's Q1..QL)",
     k_jq_eigen},
};

int dfc_register_kernels_conditions(ap_registry *r) {
    return dfc_add_kernels(r, kernels, sizeof kernels / sizeof kernels[0]);
}
