/* net.c — the layered network of a model, from its descriptor or found by its names
 * (docs/dfc.md), the feedforward pass (2), the losses' gradients (3) and the argument helpers
 * shared by the kernels. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "dfc_internal.h"

/* ---- the network's description ----------------------------------------------------------- */
/* The per-layer arrays of a network of L layers, in one allocation. */
static int net_alloc(int L, const char *kernel, dfc_net *net) {
    memset(net, 0, sizeof *net);
    const size_t k = (size_t)L + 1;
    /* pointers first (their alignment), then the ints */
    net->mem = calloc(1, k * (4 * sizeof(double *) + sizeof(const ap_activation *) +
                              sizeof(const char *) + 3 * sizeof(int)));
    if (!net->mem)
        return ap_error(AP_ENOMEM, "kernel %s: out of memory (a network of %d layers)", kernel, L);
    net->L = L;
    net->W = net->mem;
    net->b = net->W + k;
    net->Q = net->b + k;
    net->act = (const ap_activation **)(net->Q + k);
    net->name = (const char **)(net->act + k);
    net->n = (int *)(net->name + k);
    net->w_id = net->n + k;
    net->q_id = net->w_id + k;
    for (size_t i = 0; i < k; i++)
        net->q_id[i] = -1;
    return AP_OK;
}

void dfc_net_free(dfc_net *net) {
    free(net->mem);
    memset(net, 0, sizeof *net);
}

/* Projection `id` must be dense, rows x cols, end on compartment comp of population pop and
 * (when src is not NULL) start at src or src.rate. */
static int check_proj(ap_model *m, const char *kernel, int id, int rows, int cols, const char *src,
                      const char *pop, const char *comp, ap_projection_info *pi) {
    int rc = ap_model_projection_info(m, id, pi);
    if (rc) return rc;
    const char *name = pi->name;
    const size_t lp = strlen(pop);
    if (pi->kind != AP_DENSE)
        return ap_error(AP_EINVAL, "kernel %s: projection %s must be dense", kernel, name);
    if (strncmp(pi->target, pop, lp) || pi->target[lp] != '.' || strcmp(pi->target + lp + 1, comp))
        return ap_error(AP_EINVAL, "kernel %s: projection %s ends on %s, the network needs %s.%s",
                        kernel, name, pi->target, pop, comp);
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

/* With n[], name[] and act[] of every layer known: W_i (id w_id[i]) from layer i-1 onto layer
 * i's basal compartment and, with need_q, Q_i (q_id[i]) onto its apical one, n_i x n_L; layer
 * by layer, W_i before Q_i. by_name: the ids are those of the projections named "W<i>" and
 * "Q<i>", looked up here. */
static int net_projections(ap_model *m, const char *kernel, int need_q, int by_name, dfc_net *net) {
    const int L = net->L;
    for (int i = 1; i <= L; i++) {
        ap_projection_info pi;
        char name[32];
        int rc = AP_OK;
        snprintf(name, sizeof name, "W%d", i);
        if (by_name && (rc = ap_model_find_projection(m, name, &net->w_id[i])))
            return ap_error_prefix(rc, "kernel %s: ", kernel);
        rc = check_proj(m, kernel, net->w_id[i], net->n[i], net->n[i - 1], net->name[i - 1],
                        net->name[i], "basal", &pi);
        if (rc) return rc;
        net->W[i] = ap_model_weights(m, net->w_id[i]);
        net->b[i] = pi.has_bias ? ap_model_bias(m, net->w_id[i]) : NULL;
        if (!need_q) continue;
        if (by_name) {
            snprintf(name, sizeof name, "Q%d", i);
            if ((rc = ap_model_find_projection(m, name, &net->q_id[i])))
                return ap_error_prefix(rc, "kernel %s: ", kernel);
        }
        if (net->q_id[i] < 0)
            return ap_error(AP_ENOTFOUND, "kernel %s: layer %d (%s) has no feedback projection",
                            kernel, i, net->name[i]);
        if ((rc = check_proj(m, kernel, net->q_id[i], net->n[i], net->n[L], NULL, net->name[i],
                             "apical", &pi)))
            return rc;
        net->Q[i] = ap_model_weights(m, net->q_id[i]);
    }
    return AP_OK;
}

/* Layer i's population: its name, size and activation. */
static int net_layer(ap_model *m, const char *pop, int i, dfc_net *net) {
    ap_population_info info;
    int rc = ap_model_population_info(m, pop, &info);
    if (rc) return rc;
    net->name[i] = info.name;
    net->n[i] = info.size;
    net->act[i] = info.activation;
    return AP_OK;
}

/* The population a projection ends on, from its target "<population>.<compartment>": the
 * population's own name string (valid while the model lives). */
static int target_population(ap_model *m, const char *kernel, const ap_projection_info *pi,
                             const char *compartment, int i, dfc_net *net) {
    const char *dot = strrchr(pi->target, '.');
    if (!dot || strcmp(dot + 1, compartment))
        return ap_error(AP_EINVAL,
                        "kernel %s: the forward projection of layer %d, %s, ends on %s, not on a "
                        "population's %s compartment",
                        kernel, i, pi->name, pi->target, compartment);
    const size_t len = (size_t)(dot - pi->target);
    char *pop = malloc(len + 1);
    if (!pop) return ap_error(AP_ENOMEM, "kernel %s: out of memory", kernel);
    memcpy(pop, pi->target, len);
    pop[len] = '\0';
    int rc = net_layer(m, pop, i, net);
    free(pop);
    return rc;
}

/* A projection id of the descriptor: an integer in 0..n_projections-1, or -1 where allowed. */
static int desc_id(ap_model *m, const char *kernel, const double *desc, size_t k, int may_lack,
                   int *id) {
    const double v = desc[k];
    if (v != floor(v) || v < (may_lack ? -1 : 0) || v >= ap_model_n_projections(m))
        return ap_error(AP_EINVAL,
                        "kernel %s: net[%zu] = %g is not a projection id of the model (0..%d%s)",
                        kernel, k + 1, v, ap_model_n_projections(m) - 1, may_lack ? ", or -1" : "");
    *id = (int)v;
    return AP_OK;
}

int dfc_net_describe(ap_model *m, const char *kernel, const double *desc, size_t len, int need_q,
                     dfc_net *net) {
    memset(net, 0, sizeof *net);
    if (!m) return ap_error(AP_EINVAL, "kernel %s: model is NULL", kernel);
    if (len < 3 || desc[0] != floor(desc[0]) || desc[0] < 1 || 2 * desc[0] + 1 != (double)len)
        return ap_error(AP_ESIZE,
                        "kernel %s: net has %zu entries (net[1] = %g); a network of L layers is "
                        "described by 2 L + 1: L, the ids of W_1..W_L, those of Q_1..Q_L",
                        kernel, len, len ? desc[0] : 0.0);
    const int L = (int)desc[0];
    int rc = net_alloc(L, kernel, net);
    for (int i = 1; i <= L && !rc; i++) {
        ap_projection_info pi;
        rc = desc_id(m, kernel, desc, (size_t)i, 0, &net->w_id[i]);
        if (!rc) rc = desc_id(m, kernel, desc, (size_t)(L + i), 1, &net->q_id[i]);
        if (!rc) rc = ap_model_projection_info(m, net->w_id[i], &pi);
        if (!rc) rc = target_population(m, kernel, &pi, "basal", i, net);
        /* the input: what W_1 reads */
        if (!rc && i == 1) {
            net->name[0] = pi.source;
            rc = ap_model_signal_size(m, pi.source, &net->n[0]);
        }
    }
    if (!rc) rc = net_projections(m, kernel, need_q, 0, net);
    if (rc) dfc_net_free(net);
    return rc;
}

/* The number of layers of the convention: populations h1, h2, ... without a gap. */
static int count_named_layers(const ap_model *m) {
    int L = 0;
    for (;; L++) {
        char name[32];
        snprintf(name, sizeof name, "h%d", L + 1);
        int found = 0;
        for (int k = 0; k < ap_model_n_objects(m) && !found; k++) {
            const char *kind, *nm;
            int size;
            if (ap_model_object(m, k, &kind, &nm, &size) == AP_OK && !strcmp(kind, "population") &&
                !strcmp(nm, name))
                found = 1;
        }
        if (!found) return L;
    }
}

int dfc_net_load(ap_model *m, const char *kernel, int need_q, dfc_net *net) {
    memset(net, 0, sizeof *net);
    if (!m) return ap_error(AP_EINVAL, "kernel %s: model is NULL", kernel);
    int n0 = 0;
    if (ap_model_signal_size(m, "x", &n0))
        return ap_error(AP_ENOTFOUND, "kernel %s: the model has no input \"x\" (see docs/dfc.md)",
                        kernel);
    /* look the layers up among the objects first, so a missing one sets no message */
    const int L = count_named_layers(m);
    if (L == 0)
        return ap_error(AP_ENOTFOUND,
                        "kernel %s: the model has no population \"h1\" (layers are h1..hL, see "
                        "docs/dfc.md)",
                        kernel);
    int rc = net_alloc(L, kernel, net);
    if (rc) return rc;
    net->name[0] = "x";
    net->n[0] = n0;
    for (int i = 1; i <= L && !rc; i++) {
        char name[32];
        snprintf(name, sizeof name, "h%d", i);
        rc = net_layer(m, name, i, net);
    }
    if (!rc) rc = net_projections(m, kernel, need_q, 1, net);
    if (rc) dfc_net_free(net);
    return rc;
}

int dfc_net_arg(const ap_kernel_args *a, const char *kernel, const char *arg, ap_model *m,
                int need_q, dfc_net *net) {
    memset(net, 0, sizeof *net);
    double *desc = NULL;
    size_t want[1] = {0}, got[4] = {0};
    int rc = ap_arg_array(a, kernel, arg, 0, 1, want, &desc, got);
    if (rc) return rc;
    return desc ? dfc_net_describe(m, kernel, desc, got[0], need_q, net)
                : dfc_net_load(m, kernel, need_q, net);
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

/* dfc_loss_grad for `rows` rows of a minibatch of mean_over >= rows samples (the mean's
 * 1/mean_over, computed as for a whole minibatch): each row's g is bitwise the whole one's. */
static void loss_grad_over(dfc_loss_kind kind, int rows, int mean_over, int n, const double *r,
                           const double *y, int per_sample, double *g) {
    const double inv_b = per_sample ? 1.0 : 1.0 / mean_over;
    for (int s = 0; s < rows; s++) {
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

void dfc_loss_grad(dfc_loss_kind kind, int batch, int n, const double *r, const double *y,
                   int per_sample, double *g) {
    loss_grad_over(kind, batch, batch, n, r, y, per_sample, g);
}

/* The optional argument batch (mode "mean"): the number of samples the mean is over, an integer
 * from the rows given up; spec->mean_over is left as it is without it. */
static int target_batch(const ap_kernel_args *a, const char *kernel, int rows, const char *rows_of,
                        dfc_target_spec *spec) {
    int given = 0;
    for (int k = 0; k < a->n; k++)
        given |= !strcmp(a->args[k].name, "batch");
    double v = 0;
    int rc = ap_arg_number(a, kernel, "batch", 0, &v);
    if (rc || !given) return rc;
    if (spec->per_sample)
        return ap_error(AP_EINVAL,
                        "kernel %s: batch = %g is for mode = \"mean\" (mode \"sample\" divides by "
                        "no batch size)",
                        kernel, v);
    if (!(v >= rows && v <= INT32_MAX) || v != floor(v))
        return ap_error(AP_EINVAL,
                        "kernel %s: batch = %g must be an integer >= the %d rows of %s (the "
                        "number of samples the minibatch mean is over)",
                        kernel, v, rows, rows_of);
    spec->mean_over = (int)v;
    return AP_OK;
}

int dfc_arg_target_spec(const ap_kernel_args *a, const char *kernel, int rows, const char *rows_of,
                        dfc_target_spec *spec) {
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
    return target_batch(a, kernel, rows, rows_of, spec);
}

void dfc_make_targets(const dfc_target_spec *spec, int batch, int n, const double *r, double *g,
                      double *out) {
    const int mean_over = spec->mean_over > 0 ? spec->mean_over : batch;
    loss_grad_over(spec->loss, batch, mean_over, n, r, spec->y, spec->per_sample, g);
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
