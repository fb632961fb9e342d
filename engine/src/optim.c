/* optim.c — optimisers over a model's projections (apical/optim.h): gradient buffers, clipping
 * as torch.nn.utils.clip_grad_norm_, SGD with momentum and Adam with PyTorch's semantics and
 * order of operations, and their state as .npy checkpoints. docs/optimisers.md has the
 * equations. */
#include "apical/optim.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/npy.h"
#include "apical/sim.h"

/* One tensor: the weights or the bias of a projection. The parameters themselves live in the
 * model and are looked up at every step (ap_model_weights / ap_model_bias). */
typedef struct opt_tensor {
    int id;   /* projection index */
    int bias; /* 0: weights (rows x cols), 1: bias (rows) */
    size_t n;
    double *g;           /* gradient (descent direction) */
    double *m;           /* SGD: momentum buffer (NULL without momentum); Adam: first moment */
    double *v;           /* Adam: second moment (NULL for SGD) */
    double norm;         /* gradient norm before clipping at the last step */
    double norm_pending; /* the same, for the step in progress */
    double scale;        /* the clipping factor of the step in progress (1: none) */
} opt_tensor;

typedef struct opt_proj {
    int id;
    int rows, cols;
    const char *name; /* the model's string (lives with the model) */
    opt_tensor *w, *b;
} opt_proj;

struct ap_optim {
    ap_model *m;
    ap_optim_opts o;
    long steps;
    int n_proj;
    opt_proj *proj;
    int n_tensors;
    opt_tensor *t;
};

/* ---- options ----------------------------------------------------------------------------- */

void ap_optim_opts_default(ap_optim_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->kind = AP_OPTIM_SGD;
    o->lr = 0.01;
    o->momentum = 0.0;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->weight_decay = 0.0;
    o->clip_mode = AP_CLIP_NONE;
    o->clip = 0.0;
}

static int check_lr(double lr) {
    if (!(isfinite(lr) && lr >= 0))
        return ap_error(AP_EINVAL, "optimiser: lr = %g, must be finite and >= 0", lr);
    return AP_OK;
}

static int check_opts(const ap_optim_opts *o) {
    if (o->kind != AP_OPTIM_SGD && o->kind != AP_OPTIM_ADAM)
        return ap_error(AP_EINVAL, "optimiser: kind = %d, must be AP_OPTIM_SGD or AP_OPTIM_ADAM",
                        (int)o->kind);
    int rc = check_lr(o->lr);
    if (rc) return rc;
    if (!(isfinite(o->momentum) && o->momentum >= 0))
        return ap_error(AP_EINVAL, "optimiser: momentum = %g, must be finite and >= 0",
                        o->momentum);
    if (!(o->beta1 >= 0 && o->beta1 < 1))
        return ap_error(AP_EINVAL, "optimiser: beta1 = %g, must be in [0, 1)", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
        return ap_error(AP_EINVAL, "optimiser: beta2 = %g, must be in [0, 1)", o->beta2);
    if (!(isfinite(o->eps) && o->eps > 0))
        return ap_error(AP_EINVAL, "optimiser: eps = %g, must be finite and > 0", o->eps);
    if (!(isfinite(o->weight_decay) && o->weight_decay >= 0))
        return ap_error(AP_EINVAL, "optimiser: weight_decay = %g, must be finite and >= 0",
                        o->weight_decay);
    if (o->clip_mode != AP_CLIP_NONE && o->clip_mode != AP_CLIP_PER_TENSOR &&
        o->clip_mode != AP_CLIP_GLOBAL)
        return ap_error(AP_EINVAL,
                        "optimiser: clip_mode = %d, must be AP_CLIP_NONE, AP_CLIP_PER_TENSOR or "
                        "AP_CLIP_GLOBAL",
                        (int)o->clip_mode);
    if (o->clip_mode != AP_CLIP_NONE && !(o->clip > 0))
        return ap_error(AP_EINVAL, "optimiser: clip = %g, must be > 0 when clipping", o->clip);
    return AP_OK;
}

/* ---- creation ---------------------------------------------------------------------------- */

void ap_optim_free(ap_optim **po) {
    if (!po || !*po) return;
    ap_optim *o = *po;
    if (o->t)
        for (int i = 0; i < o->n_tensors; i++) {
            free(o->t[i].g);
            free(o->t[i].m);
            free(o->t[i].v);
        }
    free(o->t);
    free(o->proj);
    free(o);
    *po = NULL;
}

/* Allocates the buffers of tensor t (n values). */
static int tensor_init(opt_tensor *t, const ap_optim_opts *opts, int id, int bias, size_t n) {
    t->id = id;
    t->bias = bias;
    t->n = n;
    t->scale = 1.0;
    size_t count = n ? n : 1;
    t->g = calloc(count, sizeof(double));
    int moments = opts->kind == AP_OPTIM_ADAM || opts->momentum != 0;
    if (moments) t->m = calloc(count, sizeof(double));
    if (opts->kind == AP_OPTIM_ADAM) t->v = calloc(count, sizeof(double));
    if (!t->g || (moments && !t->m) || (opts->kind == AP_OPTIM_ADAM && !t->v))
        return ap_error(AP_ENOMEM, "optimiser: out of memory for %zu gradient values", n);
    return AP_OK;
}

/* Checks the n projection indices ids of model m: each exists, is given once and is plastic. */
static int check_ids(ap_model *m, const int *ids, int n) {
    int rc, n_proj_model = ap_model_n_projections(m);
    for (int k = 0; k < n; k++) {
        if (ids[k] < 0 || ids[k] >= n_proj_model)
            return ap_error(AP_EINVAL, "optimiser: no projection with index %d (the model has %d)",
                            ids[k], n_proj_model);
        ap_projection_info info;
        if ((rc = ap_model_projection_info(m, ids[k], &info))) return rc;
        for (int j = 0; j < k; j++)
            if (ids[j] == ids[k])
                return ap_error(AP_EDUP, "optimiser: projection \"%s\" is given twice", info.name);
        if (!info.plastic)
            return ap_error(AP_EINVAL,
                            "optimiser: projection \"%s\" is frozen (connect it with plastic = "
                            "true, or a rule, to train it)",
                            info.name);
    }
    return AP_OK;
}

/* The k-th projection of o (model projection id) and its weight and bias tensors. */
static int add_proj(ap_optim *o, int k, int id, const ap_optim_opts *opts) {
    ap_projection_info info;
    ap_model_projection_info(o->m, id, &info);
    opt_proj *p = &o->proj[k];
    p->id = id;
    p->rows = info.rows;
    p->cols = info.cols;
    p->name = info.name;
    p->w = &o->t[o->n_tensors];
    int rc = tensor_init(&o->t[o->n_tensors++], opts, id, 0, (size_t)info.rows * (size_t)info.cols);
    if (!rc && info.has_bias) {
        p->b = &o->t[o->n_tensors];
        rc = tensor_init(&o->t[o->n_tensors++], opts, id, 1, (size_t)info.rows);
    }
    return rc;
}

int ap_optim_new(ap_optim **out, ap_model *m, const int *ids, int n, const ap_optim_opts *opts) {
    if (!out) return ap_error(AP_EINVAL, "ap_optim_new: out is NULL");
    *out = NULL;
    if (!m) return ap_error(AP_EINVAL, "ap_optim_new: model is NULL");
    if (n < 1 || !ids)
        return ap_error(AP_EINVAL, "ap_optim_new: no projections to optimise (n = %d)", n);
    ap_optim_opts def;
    if (!opts) {
        ap_optim_opts_default(&def);
        opts = &def;
    }
    int rc = check_opts(opts);
    if (!rc) rc = check_ids(m, ids, n);
    if (rc) return rc;
    ap_optim *o = calloc(1, sizeof *o);
    if (!o) return ap_error(AP_ENOMEM, "optimiser: out of memory");
    o->m = m;
    o->o = *opts;
    o->n_proj = n;
    o->proj = calloc((size_t)n, sizeof *o->proj);
    o->t = calloc(2 * (size_t)n, sizeof *o->t);
    if (!o->proj || !o->t) {
        ap_optim_free(&o);
        return ap_error(AP_ENOMEM, "optimiser: out of memory");
    }
    for (int k = 0; k < n; k++)
        if ((rc = add_proj(o, k, ids[k], opts))) {
            ap_optim_free(&o);
            return rc;
        }
    *out = o;
    return AP_OK;
}

static opt_proj *find_proj(const ap_optim *o, int id) {
    if (!o) return NULL;
    for (int k = 0; k < o->n_proj; k++)
        if (o->proj[k].id == id) return &o->proj[k];
    return NULL;
}

double *ap_optim_grad_w(ap_optim *o, int id) {
    opt_proj *p = find_proj(o, id);
    return p ? p->w->g : NULL;
}

double *ap_optim_grad_b(ap_optim *o, int id) {
    opt_proj *p = find_proj(o, id);
    return p && p->b ? p->b->g : NULL;
}

int ap_optim_zero(ap_optim *o) {
    if (!o) return ap_error(AP_EINVAL, "ap_optim_zero: optimiser is NULL");
    for (int i = 0; i < o->n_tensors; i++)
        memset(o->t[i].g, 0, o->t[i].n * sizeof(double));
    return AP_OK;
}

size_t ap_optim_grad_count(const ap_optim *o) {
    size_t n = 0;
    for (int i = 0; o && i < o->n_tensors; i++)
        n += o->t[i].n;
    return n;
}

int ap_optim_grad_pack(const ap_optim *o, double *out) {
    if (!o || !out) return ap_error(AP_EINVAL, "ap_optim_grad_pack: optimiser or vector is NULL");
    for (int i = 0; i < o->n_tensors; i++) {
        memcpy(out, o->t[i].g, o->t[i].n * sizeof *out);
        out += o->t[i].n;
    }
    return AP_OK;
}

int ap_optim_grad_unpack(ap_optim *o, const double *in) {
    if (!o || !in) return ap_error(AP_EINVAL, "ap_optim_grad_unpack: optimiser or vector is NULL");
    for (int i = 0; i < o->n_tensors; i++) {
        memcpy(o->t[i].g, in, o->t[i].n * sizeof *in);
        in += o->t[i].n;
    }
    return AP_OK;
}

int ap_optim_add_from_sim(ap_optim *o, const ap_sim *s, double scale) {
    if (!o || !s) return ap_error(AP_EINVAL, "ap_optim_add_from_sim: optimiser or sim is NULL");
    const ap_model *sm = ap_sim_model(s);
    /* another model must be a replica (e.g. the same network built for part of the batch):
     * every projection of the optimiser there under the same id, name and shape, with a rule */
    for (int k = 0; sm != o->m && k < o->n_proj; k++) {
        ap_projection_info a, b;
        int rc = ap_model_projection_info(o->m, o->proj[k].id, &a);
        if (rc) return rc;
        if (ap_model_projection_info(sm, o->proj[k].id, &b) != AP_OK || strcmp(a.name, b.name) ||
            a.rows != b.rows || a.cols != b.cols || a.has_bias != b.has_bias ||
            (a.rule == NULL) != (b.rule == NULL)) {
            ap_error_clear();
            return ap_error(AP_EINVAL,
                            "optimiser: add_from_sim: the simulation's model is not a replica of "
                            "the optimiser's: projection \"%s\" (%d x %d%s) has no counterpart "
                            "with that id, name, shape and rule",
                            a.name, a.rows, a.cols, a.has_bias ? ", bias" : "");
        }
    }
    if (!isfinite(scale))
        return ap_error(AP_EINVAL, "optimiser: add_from_sim: scale = %g is not finite", scale);
    for (int k = 0; k < o->n_proj; k++) {
        opt_proj *p = &o->proj[k];
        ap_projection_info info;
        int rc = ap_model_projection_info(o->m, p->id, &info);
        if (rc) return rc;
        if (!info.rule) continue; /* no rule: nothing accumulated, left alone */
        const double *dW = NULL, *db = NULL;
        rc = ap_sim_accumulator(s, p->id, &dW, &db, NULL);
        if (rc == AP_ENOTFOUND) {
            ap_error_clear();
            continue;
        }
        if (rc) return rc;
        for (size_t i = 0; i < p->w->n; i++)
            p->w->g[i] += scale * dW[i];
        if (p->b && db)
            for (size_t i = 0; i < p->b->n; i++)
                p->b->g[i] += scale * db[i];
    }
    return AP_OK;
}

/* ---- the step ---------------------------------------------------------------------------- */

/* The Euclidean norm of x[0..n-1], without overflow or underflow for extreme values (the
 * plain sum of squares, as torch computes it, whenever that is safe). */
static double norm2(const double *x, size_t n) {
    double amax = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(x[i]);
        if (a > amax) amax = a;
    }
    if (amax == 0.0) return 0.0;
    double sum = 0.0;
    if (amax > 1e-140 && amax < 1e140) {
        for (size_t i = 0; i < n; i++)
            sum += x[i] * x[i];
        return sqrt(sum);
    }
    for (size_t i = 0; i < n; i++) {
        double r = x[i] / amax;
        sum += r * r;
    }
    return amax * sqrt(sum);
}

/* The norm of the vector of the tensors' norms (the global norm of clip_grad_norm_), with the
 * same care. */
static double norm_of_norms(const ap_optim *o) {
    double amax = 0.0, sum = 0.0;
    for (int i = 0; i < o->n_tensors; i++)
        if (o->t[i].norm_pending > amax) amax = o->t[i].norm_pending;
    if (amax == 0.0) return 0.0;
    int plain = amax > 1e-140 && amax < 1e140;
    for (int i = 0; i < o->n_tensors; i++) {
        double r = plain ? o->t[i].norm_pending : o->t[i].norm_pending / amax;
        sum += r * r;
    }
    return plain ? sqrt(sum) : amax * sqrt(sum);
}

/* Refuses a non-finite gradient, naming the projection and the entry (0-based). */
static int check_gradients(const ap_optim *o) {
    for (int k = 0; k < o->n_proj; k++) {
        const opt_proj *p = &o->proj[k];
        for (size_t i = 0; i < p->w->n; i++)
            if (!isfinite(p->w->g[i]))
                return ap_error(AP_ENONFINITE,
                                "optimiser step: projection \"%s\": the gradient of weight[%zu, "
                                "%zu] is %g (nothing changed)",
                                p->name, i / (size_t)p->cols + 1, i % (size_t)p->cols + 1,
                                p->w->g[i]);
        if (p->b)
            for (size_t i = 0; i < p->b->n; i++)
                if (!isfinite(p->b->g[i]))
                    return ap_error(AP_ENONFINITE,
                                    "optimiser step: projection \"%s\": the gradient of bias[%zu] "
                                    "is %g (nothing changed)",
                                    p->name, i + 1, p->b->g[i]);
    }
    return AP_OK;
}

/* Norms before clipping and the clipping factor of every tensor, as
 * torch.nn.utils.clip_grad_norm_: coef = clip / (norm + 1e-6), applied when coef < 1. */
static void clip_factors(ap_optim *o) {
    for (int i = 0; i < o->n_tensors; i++) {
        opt_tensor *t = &o->t[i];
        t->norm_pending = norm2(t->g, t->n);
        t->scale = 1.0;
    }
    if (o->o.clip_mode == AP_CLIP_PER_TENSOR) {
        for (int i = 0; i < o->n_tensors; i++) {
            double coef = o->o.clip / (o->t[i].norm_pending + 1e-6);
            if (coef < 1) o->t[i].scale = coef;
        }
    } else if (o->o.clip_mode == AP_CLIP_GLOBAL) {
        /* torch: the norm of the vector of the tensors' norms */
        double total = norm_of_norms(o);
        double coef = o->o.clip / (total + 1e-6);
        if (coef < 1)
            for (int i = 0; i < o->n_tensors; i++)
                o->t[i].scale = coef;
    }
}

/* The SGD half of tensor_pass (torch.optim.SGD's order); returns the "not finite" flags of the
 * dry pass (0 when write). Inlined into each of tensor_pass's clones. */
static inline __attribute__((always_inline)) int sgd_pass(const ap_optim_opts *op, opt_tensor *t,
                                                          double *p, int write) {
    const double lr = op->lr, wd = op->weight_decay, s = t->scale, mu = op->momentum;
    const size_t n = t->n;
    double *restrict g = t->g, *restrict m1 = t->m;
    int probe = 0;
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] * s;
        double d = gi + wd * p[i];              /* torch: d_p.add(p, alpha=weight_decay) */
        double buf = m1 ? mu * m1[i] + d : 0.0; /* torch: buf.mul_(momentum).add_(d_p) */
        if (m1) d = buf;
        double np = p[i] - lr * d; /* torch: p.add_(d_p, alpha=-lr) */
        if (!write) {
            probe |= !(fabs(np) <= DBL_MAX) | !(fabs(buf) <= DBL_MAX);
            continue;
        }
        g[i] = gi;
        if (m1) m1[i] = buf;
        p[i] = np;
    }
    return probe;
}

/* The Adam half of tensor_pass, in the order of torch.optim.Adam (1.x):
 *   grad = grad.add(p, alpha=weight_decay)
 *   exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
 *   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
 *   denom = (exp_avg_sq.sqrt() / sqrt(bias_correction2)).add_(eps)
 *   p.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)
 * Returns the "not finite" flags of the dry pass (0 when write). */
static inline __attribute__((always_inline)) int adam_pass(const ap_optim_opts *op, opt_tensor *t,
                                                           double *p, double bc1, double bc2_sqrt,
                                                           int write) {
    const double lr = op->lr, wd = op->weight_decay, s = t->scale;
    const double b1 = op->beta1, b2 = op->beta2, c1 = 1 - b1, c2 = 1 - b2, eps = op->eps;
    const double step_size = lr / bc1;
    const size_t n = t->n;
    double *restrict g = t->g, *restrict m1 = t->m, *restrict v1 = t->v;
    int probe = 0;
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] * s;
        double d = gi + wd * p[i];
        double m = m1[i] * b1 + c1 * d;
        double v = v1[i] * b2 + c2 * d * d;
        double denom = sqrt(v) / bc2_sqrt + eps;
        double np = p[i] - step_size * m / denom;
        if (!write) {
            probe |= !(fabs(np) <= DBL_MAX) | !(fabs(m) <= DBL_MAX) | !(fabs(v) <= DBL_MAX);
            continue;
        }
        g[i] = gi;
        m1[i] = m;
        v1[i] = v;
        p[i] = np;
    }
    return probe;
}

/* The index of the first entry of tensor t whose step is not finite, or -1: the slow way, once
 * the dry pass found one. */
static long first_nonfinite(const ap_optim_opts *op, const opt_tensor *t, const double *p,
                            double bc1, double bc2_sqrt) {
    const double lr = op->lr, wd = op->weight_decay, s = t->scale;
    const double *g = t->g, *m1 = t->m, *v1 = t->v;
    for (size_t i = 0; i < t->n; i++) {
        double gi = g[i] * s, d = gi + wd * p[i];
        if (op->kind == AP_OPTIM_SGD) {
            double buf = m1 ? op->momentum * m1[i] + d : 0.0;
            if (m1) d = buf;
            if (!isfinite(p[i] - lr * d) || !isfinite(buf)) return (long)i;
        } else {
            double m = m1[i] * op->beta1 + (1 - op->beta1) * d;
            double v = v1[i] * op->beta2 + (1 - op->beta2) * d * d;
            double np = p[i] - lr / bc1 * m / (sqrt(v) / bc2_sqrt + op->eps);
            if (!isfinite(np) || !isfinite(m) || !isfinite(v)) return (long)i;
        }
    }
    return -1;
}

/* One pass over tensor t with parameters p. With write == 0 it only checks that the new
 * parameters and moments are finite; with write == 1 it applies the step (then the gradient
 * buffer holds the clipped gradient, as after clip_grad_norm_). Returns the index of the first
 * non-finite result, or -1. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static long
tensor_pass(const ap_optim *o, opt_tensor *t, double *p, double bc1, double bc2_sqrt, int write) {
    const ap_optim_opts *op = &o->o;
    /* The dry pass only ORs "not finite" flags (written as !(|x| <= DBL_MAX), which is true for
     * NaN and infinities): a branch-free loop the compiler vectorises; the index is searched
     * only when a flag is set. */
    int probe = op->kind == AP_OPTIM_SGD ? sgd_pass(op, t, p, write)
                                         : adam_pass(op, t, p, bc1, bc2_sqrt, write);
    if (write || !probe) return -1;
    return first_nonfinite(op, t, p, bc1, bc2_sqrt);
}

static double *tensor_params(const ap_optim *o, const opt_tensor *t) {
    return t->bias ? ap_model_bias(o->m, t->id) : ap_model_weights(o->m, t->id);
}

int ap_optim_step(ap_optim *o) {
    if (!o) return ap_error(AP_EINVAL, "ap_optim_step: optimiser is NULL");
    int rc = check_gradients(o);
    if (rc) return rc;
    clip_factors(o);
    const double t_next = (double)(o->steps + 1);
    double bc1 = 1.0, bc2_sqrt = 1.0;
    if (o->o.kind == AP_OPTIM_ADAM) {
        bc1 = 1 - pow(o->o.beta1, t_next);
        bc2_sqrt = sqrt(1 - pow(o->o.beta2, t_next));
    }
    /* first a dry pass, so that a step that would make anything non-finite changes nothing */
    for (int i = 0; i < o->n_tensors; i++) {
        opt_tensor *t = &o->t[i];
        double *p = tensor_params(o, t);
        if (!p)
            return ap_error(AP_ESTATE, "optimiser step: projection %d has no parameters", t->id);
        long bad = tensor_pass(o, t, p, bc1, bc2_sqrt, 0);
        if (bad >= 0) {
            const opt_proj *pr = find_proj(o, t->id);
            if (t->bias)
                return ap_error(AP_ENONFINITE,
                                "optimiser step: projection \"%s\": the update makes bias[%ld] or "
                                "its optimiser state non-finite (lr = %g; nothing changed)",
                                pr->name, bad + 1, o->o.lr);
            return ap_error(AP_ENONFINITE,
                            "optimiser step: projection \"%s\": the update makes weight[%ld, %ld] "
                            "or its optimiser state non-finite (lr = %g; nothing changed)",
                            pr->name, bad / pr->cols + 1, bad % pr->cols + 1, o->o.lr);
        }
    }
    for (int i = 0; i < o->n_tensors; i++) {
        opt_tensor *t = &o->t[i];
        tensor_pass(o, t, tensor_params(o, t), bc1, bc2_sqrt, 1);
        t->norm = t->norm_pending;
    }
    o->steps++;
    return AP_OK;
}

int ap_optim_set_lr(ap_optim *o, double lr) {
    if (!o) return ap_error(AP_EINVAL, "ap_optim_set_lr: optimiser is NULL");
    int rc = check_lr(lr);
    if (rc) return rc;
    o->o.lr = lr;
    return AP_OK;
}

long ap_optim_steps(const ap_optim *o) {
    return o ? o->steps : 0;
}

int ap_optim_last_norms(const ap_optim *o, int id, double *norm_w, double *norm_b) {
    const opt_proj *p = find_proj(o, id);
    if (!p)
        return ap_error(AP_ENOTFOUND, "optimiser: projection %d is not one of its projections", id);
    if (norm_w) *norm_w = p->w->norm;
    if (norm_b) *norm_b = p->b ? p->b->norm : 0.0;
    return AP_OK;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

/* The state files of one tensor: which = 0 for the first buffer (m), 1 for the second (v). */
static const char *state_suffix(const opt_tensor *t, int which) {
    static const char *const names[2][2] = {{"m", "v"}, {"mb", "vb"}};
    return names[t->bias][which];
}

static double *state_buffer(const opt_tensor *t, int which) {
    return which == 0 ? t->m : t->v;
}

static int file_name(char *buf, size_t n, const char *prefix, const char *proj,
                     const char *suffix) {
    if (proj && strchr(proj, '/'))
        return ap_error(AP_EINVAL,
                        "optimiser checkpoint: projection name \"%s\" contains '/', which a file "
                        "name cannot",
                        proj);
    int w = proj ? snprintf(buf, n, "%s%s.%s.npy", prefix, proj, suffix)
                 : snprintf(buf, n, "%s%s.npy", prefix, suffix);
    if (w < 0 || (size_t)w >= n)
        return ap_error(AP_EINVAL, "optimiser checkpoint: file name too long (prefix \"%s\")",
                        prefix);
    return AP_OK;
}

int ap_optim_save(const ap_optim *o, const char *prefix) {
    if (!o || !prefix) return ap_error(AP_EINVAL, "ap_optim_save: optimiser or prefix is NULL");
    char path[4096];
    int rc;
    for (int i = 0; i < o->n_tensors; i++) {
        const opt_tensor *t = &o->t[i];
        const opt_proj *p = find_proj(o, t->id);
        size_t shape[2] = {(size_t)p->rows, (size_t)p->cols};
        for (int which = 0; which < 2; which++) {
            const double *buf = state_buffer(t, which);
            if (!buf) continue;
            if ((rc = file_name(path, sizeof path, prefix, p->name, state_suffix(t, which))))
                return rc;
            if ((rc = ap_npy_write(path, buf, t->bias ? 1 : 2, shape)))
                return ap_error_prefix(rc, "optimiser checkpoint: ");
        }
    }
    /* the step count last: a checkpoint is complete once it is there */
    double steps = (double)o->steps;
    if ((rc = file_name(path, sizeof path, prefix, NULL, "steps"))) return rc;
    if ((rc = ap_npy_write(path, &steps, 0, NULL)))
        return ap_error_prefix(rc, "optimiser checkpoint: ");
    return AP_OK;
}

/* Reads every file of a checkpoint into arrays[2 * n_tensors] (NULL-data entries for buffers
 * the optimiser does not have) and checks them; changes nothing in o. */
static int load_all(const ap_optim *o, const char *prefix, ap_array *arrays, long *steps) {
    char path[4096];
    int rc;
    for (int i = 0; i < o->n_tensors; i++) {
        const opt_tensor *t = &o->t[i];
        const opt_proj *p = find_proj(o, t->id);
        for (int which = 0; which < 2; which++) {
            if (!state_buffer(t, which)) continue;
            ap_array *a = &arrays[2 * i + which];
            if ((rc = file_name(path, sizeof path, prefix, p->name, state_suffix(t, which))))
                return rc;
            if ((rc = ap_npy_read(path, a))) return ap_error_prefix(rc, "optimiser checkpoint: ");
            int ok = t->bias ? a->ndim == 1 && a->shape[0] == (size_t)p->rows
                             : a->ndim == 2 && a->shape[0] == (size_t)p->rows &&
                                   a->shape[1] == (size_t)p->cols;
            if (!ok) {
                char got[128];
                size_t len = (size_t)snprintf(got, sizeof got, "[");
                for (int k = 0; k < a->ndim && len < sizeof got; k++)
                    len += (size_t)snprintf(got + len, sizeof got - len, "%s%zu", k ? ", " : "",
                                            a->shape[k]);
                if (len < sizeof got) snprintf(got + len, sizeof got - len, "]");
                if (t->bias)
                    return ap_error(AP_ESIZE,
                                    "optimiser checkpoint: %s has shape %s, expected [%d]", path,
                                    got, p->rows);
                return ap_error(AP_ESIZE,
                                "optimiser checkpoint: %s has shape %s, expected [%d, %d]", path,
                                got, p->rows, p->cols);
            }
            for (size_t k = 0; k < a->size; k++) {
                if (!isfinite(a->data[k]))
                    return ap_error(AP_EFORMAT,
                                    "optimiser checkpoint: %s: value %zu is %g, not finite", path,
                                    k, a->data[k]);
                if (which == 1 && a->data[k] < 0)
                    return ap_error(AP_EFORMAT,
                                    "optimiser checkpoint: %s: value %zu is %g, a second moment "
                                    "must be >= 0",
                                    path, k, a->data[k]);
            }
        }
    }
    ap_array s = {0};
    if ((rc = file_name(path, sizeof path, prefix, NULL, "steps"))) return rc;
    if ((rc = ap_npy_read(path, &s))) return ap_error_prefix(rc, "optimiser checkpoint: ");
    double v = s.size == 1 && s.ndim <= 1 ? s.data[0] : -1;
    int scalar = s.size == 1 && s.ndim <= 1;
    ap_array_free(&s);
    if (!scalar)
        return ap_error(AP_ESIZE, "optimiser checkpoint: %s must hold one number (the step count)",
                        path);
    if (!(v >= 0 && v <= 9e15 && v == floor(v)))
        return ap_error(AP_EFORMAT,
                        "optimiser checkpoint: %s: the step count %g is not an integer >= 0", path,
                        v);
    *steps = (long)v;
    return AP_OK;
}

int ap_optim_load(ap_optim *o, const char *prefix) {
    if (!o || !prefix) return ap_error(AP_EINVAL, "ap_optim_load: optimiser or prefix is NULL");
    ap_array *arrays = calloc(2 * (size_t)o->n_tensors, sizeof *arrays);
    if (!arrays) return ap_error(AP_ENOMEM, "optimiser checkpoint: out of memory");
    long steps = 0;
    int rc = load_all(o, prefix, arrays, &steps);
    if (rc == AP_OK) {
        for (int i = 0; i < o->n_tensors; i++)
            for (int which = 0; which < 2; which++) {
                double *buf = state_buffer(&o->t[i], which);
                const ap_array *a = &arrays[2 * i + which];
                if (buf && a->size) memcpy(buf, a->data, a->size * sizeof(double));
            }
        o->steps = steps;
    }
    for (int i = 0; i < 2 * o->n_tensors; i++)
        ap_array_free(&arrays[i]);
    free(arrays);
    return rc;
}
