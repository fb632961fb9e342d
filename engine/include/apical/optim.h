/* apical/optim.h — optimisers over a model's projections: gradient buffers, clipping, SGD and
 * Adam, and their state for checkpoints. */
#ifndef APICAL_OPTIM_H
#define APICAL_OPTIM_H

#include <stddef.h>

#include "apical/export.h"
#include "apical/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ap_optim ap_optim;

typedef enum { AP_OPTIM_SGD = 0, AP_OPTIM_ADAM } ap_optim_kind;

typedef enum {
    AP_CLIP_NONE = 0,
    AP_CLIP_PER_TENSOR, /* each W and each b scaled to norm <= clip on its own */
    AP_CLIP_GLOBAL,     /* one norm over every tensor of the optimiser */
} ap_clip_mode;

typedef struct ap_optim_opts {
    ap_optim_kind kind;
    double lr;
    double momentum;     /* SGD (0: plain SGD) */
    double beta1, beta2; /* Adam */
    double eps;          /* Adam */
    double weight_decay; /* L2: adds weight_decay * p to the gradient before anything else */
    ap_clip_mode clip_mode;
    double clip; /* norm bound; as torch.nn.utils.clip_grad_norm_: g *= clip / (norm + 1e-6)
                    when norm > clip */
} ap_optim_opts;

/* Fills defaults: SGD, lr 0.01, momentum 0, beta1 0.9, beta2 0.999, eps 1e-8, no decay, no
 * clipping. */
AP_API void ap_optim_opts_default(ap_optim_opts *o);

/* An optimiser over projections ids[0..n-1] of m (their weights, and their biases if any): one
 * gradient buffer per tensor, zeroed. The model must outlive it. AP_EINVAL for a bad option
 * (named, with its value), AP_EDUP for a projection given twice. */
AP_API int ap_optim_new(ap_optim **out, ap_model *m, const int *ids, int n,
                        const ap_optim_opts *opts);
AP_API void ap_optim_free(ap_optim **o);

/* Gradient buffers (rows x cols, and rows for the bias; NULL for a projection it does not
 * hold or a bias that does not exist). Callers add descent directions into them. */
AP_API double *ap_optim_grad_w(ap_optim *o, int id);
AP_API double *ap_optim_grad_b(ap_optim *o, int id);
AP_API int ap_optim_zero(ap_optim *o);
/* The number of gradient values (every tensor's), and all of them copied out to or in from one
 * vector, tensors in the optimiser's order (for a sum over processes: apical/comm.h). */
AP_API size_t ap_optim_grad_count(const ap_optim *o);
AP_API int ap_optim_grad_pack(const ap_optim *o, double *out);
AP_API int ap_optim_grad_unpack(ap_optim *o, const double *in);

struct ap_sim;
/* grad += scale * (the last run's accumulated update) for every projection of o that has a
 * rule in s (see ap_sim_accumulator); projections without one are left alone. s is a
 * simulation of o's model or of a replica of it (every projection of o under the same id,
 * name and shape, with a rule where o's has one: e.g. the same network built for part of the
 * batch, which is how a minibatch split over threads adds its parts); AP_EINVAL otherwise,
 * naming the first projection without a counterpart. */
AP_API int ap_optim_add_from_sim(ap_optim *o, const struct ap_sim *s, double scale);

/* Clips (per clip_mode) and applies one update to the model's weights: p -= lr * direction.
 * Non-finite gradients are refused before anything changes (AP_ENONFINITE, naming the
 * projection and entry). Increments the step count. */
AP_API int ap_optim_step(ap_optim *o);
AP_API int ap_optim_set_lr(ap_optim *o, double lr);
AP_API long ap_optim_steps(const ap_optim *o);

/* The norm of each tensor's gradient before clipping at the last step (for logging). */
AP_API int ap_optim_last_norms(const ap_optim *o, int id, double *norm_w, double *norm_b);

/* Saves and restores the optimiser state (step count, moments) as .npy files named
 * <prefix><projection>.<m|v|mb|vb>.npy plus <prefix>steps.npy, written atomically. Loading
 * checks every shape before changing anything. */
AP_API int ap_optim_save(const ap_optim *o, const char *prefix);
AP_API int ap_optim_load(ap_optim *o, const char *prefix);

#ifdef __cplusplus
}
#endif
#endif
