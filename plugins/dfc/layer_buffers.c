/* layer_buffers.c — the per-layer buffers of a feedforward pass (2): several B x n_i sets (v, r,
 * phi', ...) for i = 0..L in one allocation, and the pass itself into fresh buffers. Shared by the
 * kernels that start from the feedforward state. */
#include <stdlib.h>

#include "apical/error.h"
#include "dfc_internal.h"

int dfc_layer_buffers(const dfc_net *net, const char *kernel, int batch, int n_sets,
                      double **const *sets, size_t extra, double **mem, double **rest) {
    size_t off[net->L + 1];
    const size_t total = dfc_layer_offsets(net, batch, off);
    const size_t n_mem = (size_t)n_sets * total + extra;
    double *b = malloc(n_mem * sizeof *b);
    *mem = b;
    if (!b) return ap_error(AP_ENOMEM, "kernel %s: out of memory (%zu values)", kernel, n_mem);
    for (int k = 0; k < n_sets; k++)
        for (int i = 0; i <= net->L; i++)
            sets[k][i] = b + (size_t)k * total + off[i];
    if (rest) *rest = b + (size_t)n_sets * total;
    return AP_OK;
}

int dfc_forward_new(const dfc_net *net, const char *kernel, int batch, const double *x, double *out,
                    double **v, double **r, double **mem) {
    double **const sets[2] = {v, r};
    int rc = dfc_layer_buffers(net, kernel, batch, 2, sets, 0, mem, NULL);
    if (rc) return rc;
    r[0] = (double *)x;       /* read only */
    if (out) r[net->L] = out; /* the output goes straight to the caller's array */
    dfc_forward(net, batch, v, r);
    return AP_OK;
}
