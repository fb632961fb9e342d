/* net.c — the layered network of a model found by its names (docs/dfc.md), the feedforward
 * pass (2), the losses' gradients (3) and the argument helpers shared by the kernels. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "apical/error.h"
#include "dfc_internal.h"

/* Projection `name` must be dense, rows x cols, end on `target` and (when src is not NULL)
 * start at src or src.rate. */
static int load_proj(ap_model *m, const char *kernel, const char *name, int rows, int cols,
                     const char *src, const char *target, int *id, ap_projection_info *pi) {
    int rc = ap_model_find_projection(m, name, id);
    if (rc) return ap_error_prefix(rc, "kernel %s: ", kernel);
    if ((rc = ap_model_projection_info(m, *id, pi))) return rc;
    if (pi->kind != AP_DENSE)
        return ap_error(AP_EINVAL, "kernel %s: projection %s must be dense", kernel, name);
    if (strcmp(pi->target, target))
        return ap_error(AP_EINVAL, "kernel %s: projection %s ends on %s, the network needs %s",
                        kernel, name, pi->target, target);
    if (src) {
        size_t ls = strlen(src);
        int ok = !strcmp(pi->source, src) ||
                 (!strncmp(pi->source, src, ls) && !strcmp(pi->source + ls, ".rate"));
        if (!ok)
            return ap_error(AP_EINVAL,
                            "kernel %s: projection %s starts at %s, the network needs %s", kernel,
                            name, pi->source, src);
    }
    if (pi->rows != rows || pi->cols != cols)
        return ap_error(AP_ESIZE, "kernel %s: projection %s is %d x %d, the network needs %d x %d",
                        kernel, name, pi->rows, pi->cols, rows, cols);
    return AP_OK;
}

int dfc_net_load(ap_model *m, const char *kernel, int need_q, dfc_net *net) {
    memset(net, 0, sizeof *net);
    if (!m) return ap_error(AP_EINVAL, "kernel %s: model is NULL", kernel);
    int rc = ap_model_signal_size(m, "x", &net->n[0]);
    if (rc)
        return ap_error(AP_ENOTFOUND, "kernel %s: the model has no input \"x\" (see docs/dfc.md)",
                        kernel);
    for (int i = 1;; i++) {
        char name[32];
        snprintf(name, sizeof name, "h%d", i);
        ap_population_info info;
        /* look the name up among the objects first, so a missing layer sets no message */
        int found = 0;
        for (int k = 0; k < ap_model_n_objects(m) && !found; k++) {
            const char *kind, *nm;
            int size;
            if (ap_model_object(m, k, &kind, &nm, &size) == AP_OK && !strcmp(kind, "population") &&
                !strcmp(nm, name))
                found = 1;
        }
        if (!found) break;
        if (i > DFC_MAX_LAYERS)
            return ap_error(AP_EINVAL, "kernel %s: more than %d layers", kernel, DFC_MAX_LAYERS);
        if ((rc = ap_model_population_info(m, name, &info))) return rc;
        net->L = i;
        net->n[i] = info.size;
        net->act[i] = info.activation;
    }
    if (net->L == 0)
        return ap_error(AP_ENOTFOUND,
                        "kernel %s: the model has no population \"h1\" (layers are h1..hL, see "
                        "docs/dfc.md)",
                        kernel);
    const int L = net->L;
    for (int i = 1; i <= L; i++) {
        char name[32], src[32], tgt[48];
        ap_projection_info pi;
        snprintf(name, sizeof name, "W%d", i);
        if (i == 1)
            snprintf(src, sizeof src, "x");
        else
            snprintf(src, sizeof src, "h%d", i - 1);
        snprintf(tgt, sizeof tgt, "h%d.basal", i);
        if ((rc = load_proj(m, kernel, name, net->n[i], net->n[i - 1], src, tgt, &net->w_id[i],
                            &pi)))
            return rc;
        net->W[i] = ap_model_weights(m, net->w_id[i]);
        net->b[i] = pi.has_bias ? ap_model_bias(m, net->w_id[i]) : NULL;
        net->q_id[i] = -1;
        if (!need_q) continue;
        snprintf(name, sizeof name, "Q%d", i);
        snprintf(tgt, sizeof tgt, "h%d.apical", i);
        if ((rc = load_proj(m, kernel, name, net->n[i], net->n[L], NULL, tgt, &net->q_id[i], &pi)))
            return rc;
        net->Q[i] = ap_model_weights(m, net->q_id[i]);
    }
    return AP_OK;
}

size_t dfc_layer_offsets(const dfc_net *net, int batch, size_t *off) {
    size_t total = 0;
    for (int i = 0; i <= net->L; i++) {
        off[i] = total;
        total += (size_t)batch * (size_t)net->n[i];
    }
    return total;
}

void dfc_dense(int batch, int n_in, int n_out, const double *in, const double *W, const double *b,
               double *out) {
    if (b) {
        for (int s = 0; s < batch; s++)
            memcpy(out + (size_t)s * n_out, b, (size_t)n_out * sizeof *out);
    }
    /* (B x n_in) . W^T (n_in x n_out) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, n_out, n_in, 1.0, in, n_in, W, n_in,
                b ? 1.0 : 0.0, out, n_out);
}

void dfc_forward(const dfc_net *net, int batch, double *const *v, double *const *r) {
    for (int i = 1; i <= net->L; i++) {
        dfc_dense(batch, net->n[i - 1], net->n[i], r[i - 1], net->W[i], net->b[i], v[i]);
        net->act[i]->f((size_t)batch * (size_t)net->n[i], v[i], r[i]);
    }
}

int dfc_arg_loss(const ap_kernel_args *a, const char *kernel, dfc_loss_kind *kind) {
    const char *s = NULL;
    int rc = ap_arg_string(a, kernel, "loss", 1, &s);
    if (rc) return rc;
    if (!strcmp(s, "mse")) {
        *kind = DFC_LOSS_MSE;
    } else if (!strcmp(s, "ce")) {
        *kind = DFC_LOSS_CE;
    } else {
        return ap_error(AP_EINVAL, "kernel %s: loss = \"%s\" (known: \"mse\", \"ce\")", kernel, s);
    }
    return AP_OK;
}

void dfc_loss_grad(dfc_loss_kind kind, int batch, int n, const double *r, const double *y,
                   int per_sample, double *g) {
    const double inv_b = per_sample ? 1.0 : 1.0 / batch;
    for (int s = 0; s < batch; s++) {
        const double *rs = r + (size_t)s * n, *ys = y + (size_t)s * n;
        double *gs = g + (size_t)s * n;
        if (kind == DFC_LOSS_MSE) {
            /* d/dr of (1/(B n)) sum (r - y)^2 */
            const double c = 2.0 * inv_b / n;
            for (int j = 0; j < n; j++)
                gs[j] = c * (rs[j] - ys[j]);
        } else {
            /* d/dr of -(1/B) sum y log softmax(r) = (softmax(r) sum(y) - y) / B; with one-hot
             * (or any normalised) y this is (softmax(r) - y) / B */
            double mx = rs[0];
            for (int j = 1; j < n; j++)
                if (rs[j] > mx) mx = rs[j];
            double z = 0, ysum = 0;
            for (int j = 0; j < n; j++) {
                gs[j] = exp(rs[j] - mx);
                z += gs[j];
                ysum += ys[j];
            }
            for (int j = 0; j < n; j++)
                gs[j] = inv_b * (gs[j] / z * ysum - ys[j]);
        }
    }
}

int dfc_arg_target_spec(const ap_kernel_args *a, const char *kernel, dfc_target_spec *spec) {
    const char *mode = "mean";
    int rc = dfc_arg_loss(a, kernel, &spec->loss);
    if (!rc) rc = ap_arg_number(a, kernel, "lambda", 1, &spec->lambda);
    if (!rc) rc = ap_arg_string(a, kernel, "mode", 0, &mode);
    if (rc) return rc;
    if (!isfinite(spec->lambda))
        return ap_error(AP_EINVAL, "kernel %s: lambda = %g", kernel, spec->lambda);
    if (strcmp(mode, "mean") != 0 && strcmp(mode, "sample") != 0)
        return ap_error(AP_EINVAL, "kernel %s: mode = \"%s\" (known: \"mean\", \"sample\")", kernel,
                        mode);
    spec->per_sample = strcmp(mode, "sample") == 0;
    return AP_OK;
}

void dfc_make_targets(const dfc_target_spec *spec, int batch, int n, const double *r, double *g,
                      double *out) {
    dfc_loss_grad(spec->loss, batch, n, r, spec->y, spec->per_sample, g);
    const size_t len = (size_t)batch * (size_t)n;
    for (size_t i = 0; i < len; i++)
        out[i] = r[i] - spec->lambda * g[i];
}

int dfc_arg_matrix(const ap_kernel_args *a, const char *kernel, const char *name, int required,
                   int n, int *batch, double **data) {
    size_t want[2] = {*batch > 0 ? (size_t)*batch : 0, (size_t)n}, got[4] = {0};
    int rc = ap_arg_array(a, kernel, name, required, 2, want, data, got);
    if (rc) return rc;
    if (!*data) return AP_OK; /* optional and absent */
    if (got[0] < 1 || got[0] > (size_t)1 << 30)
        return ap_error(AP_ESIZE, "kernel %s: %s has %zu rows", kernel, name, got[0]);
    if (*batch <= 0) *batch = (int)got[0];
    return AP_OK;
}
