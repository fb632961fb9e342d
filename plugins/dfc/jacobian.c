/* jacobian.c — the network Jacobian J = [J_1 ... J_L], J_i = d r_L^- / d v_i at the feedforward
 * state (Lemma 1), one sample at a time, the derivatives phi_i' it needs, and the stacked
 * feedback matrix Q = [Q_1; ...; Q_L]; shared by the measures' kernels (kernels_conditions.c,
 * kernels_alignment.c). */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "dfc_internal.h"

int dfc_net_columns(const dfc_net *net, int *col) {
    int total = 0;
    for (int i = 1; i <= net->L; i++) {
        col[i] = total;
        total += net->n[i];
    }
    return total;
}

int dfc_ff_derivs(const dfc_net *net, const char *kernel, int batch, const double *x, double **buf,
                  double **d) {
    /* v and r of the feedforward pass, then phi' (which keeps the buffer) */
    double *v[net->L + 1], *r[net->L + 1], *b;
    double **const sets[3] = {v, r, d};
    int rc = dfc_layer_buffers(net, kernel, batch, 3, sets, 0, &b, NULL);
    if (rc) return rc;
    r[0] = (double *)x; /* read only */
    dfc_forward(net, batch, v, r);
    for (int i = 1; i <= net->L; i++)
        net->act[i]->df((size_t)batch * (size_t)net->n[i], v[i], d[i]);
    *buf = b;
    return AP_OK;
}

void dfc_jacobian_sample(const dfc_net *net, double *const *d, int b, double *J) {
    const int L = net->L, nL = net->n[L];
    int col[L + 1];
    memset(col, 0, sizeof col);
    const int N = dfc_net_columns(net, col);
    /* J_L = diag(phi_L') */
    double *JL = J + col[L];
    for (int k = 0; k < nL; k++) {
        memset(J + (size_t)k * N + col[L], 0, (size_t)nL * sizeof *J);
        JL[(size_t)k * N + k] = d[L][(size_t)b * nL + k];
    }
    /* J_i = J_{i+1} W_{i+1} diag(phi_i'): (nL x n_{i+1}) . (n_{i+1} x n_i), in place in J's
     * column blocks (leading dimension N) */
    for (int i = L - 1; i >= 1; i--) {
        const int ni = net->n[i], nn = net->n[i + 1];
        double *Ji = J + col[i];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nL, ni, nn, 1.0, J + col[i + 1], N,
                    net->W[i + 1], ni, 0.0, Ji, N);
        const double *di = d[i] + (size_t)b * ni;
        for (int k = 0; k < nL; k++)
            for (int j = 0; j < ni; j++)
                Ji[(size_t)k * N + j] *= di[j];
    }
}

void dfc_stack_q(const dfc_net *net, double *Q) {
    const int nL = net->n[net->L];
    size_t row = 0;
    for (int i = 1; i <= net->L; i++) {
        memcpy(Q + row * nL, net->Q[i], (size_t)net->n[i] * nL * sizeof *Q);
        row += (size_t)net->n[i];
    }
}
