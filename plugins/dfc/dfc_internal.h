/* dfc_internal.h — what the files of the DFC plugin share: the registration functions of each
 * part, the compartment indices of dfc.pyramidal, and the layered network found in a model by
 * the naming convention of docs/dfc.md (inputs "x", "target"; populations "h1".."hL";
 * projections "W1".."WL" onto h<i>.basal and "Q1".."QL" from ctl.u onto h<i>.apical). */
#ifndef APICAL_DFC_INTERNAL_H
#define APICAL_DFC_INTERNAL_H

#include <stddef.h>

#include "apical/model.h"
#include "apical/registry.h"

/* dfc.pyramidal: compartments in declared order (basal and apical feed the soma). */
enum { DFC_C_BASAL, DFC_C_APICAL, DFC_C_SOMA, DFC_N_COMPARTMENTS };

int dfc_register_pyramidal(ap_registry *r);
int dfc_register_controllers(ap_registry *r);
int dfc_register_rules(ap_registry *r);
int dfc_register_kernels_basic(ap_registry *r);
int dfc_register_kernel_ssa(ap_registry *r);
int dfc_register_kernels_baselines(ap_registry *r);
int dfc_register_kernels_feedback(ap_registry *r);
int dfc_register_kernels_conditions(ap_registry *r);
int dfc_register_kernels_measures(ap_registry *r);  /* kernels_measures.c */
int dfc_register_kernels_alignment(ap_registry *r); /* kernels_alignment.c */
int dfc_register_kernel_pathway(ap_registry *r);    /* pathway.c */
int dfc_register_precond(ap_registry *r);           /* precond_layered.c */

/* ---- the layered network ----------------------------------------------------------------- */
#define DFC_MAX_LAYERS 64

typedef struct dfc_net {
    int L;                         /* number of layers (populations h1..hL) */
    int n[DFC_MAX_LAYERS + 1];     /* n[0] = size of "x", n[i] = size of h<i> */
    int w_id[DFC_MAX_LAYERS + 1];  /* projection W<i>, i = 1..L */
    double *W[DFC_MAX_LAYERS + 1]; /* n[i] x n[i-1], row-major (live model arrays) */
    double *b[DFC_MAX_LAYERS + 1]; /* n[i], or NULL without a bias */
    int q_id[DFC_MAX_LAYERS + 1];  /* projection Q<i> (-1 when not loaded) */
    double *Q[DFC_MAX_LAYERS + 1]; /* n[i] x n[L] */
    const ap_activation *act[DFC_MAX_LAYERS + 1];
} dfc_net;

/* Finds the network of model m by its names and checks every shape. need_q: also the feedback
 * projections Q1..QL. Errors name the kernel and the object at fault. */
int dfc_net_load(ap_model *m, const char *kernel, int need_q, dfc_net *net);

/* Offsets of per-layer B x n[i] blocks (i = 0..L) in one buffer; returns the total length. */
size_t dfc_layer_offsets(const dfc_net *net, int batch, size_t *off);

/* out (B x n_out) = in (B x n_in) W^T + b (b may be NULL). */
void dfc_dense(int batch, int n_in, int n_out, const double *in, const double *W, const double *b,
               double *out);

/* The feedforward pass (2) from r[0] = x: v[i] = W_i r[i-1] + b_i, r[i] = phi_i(v[i]) for
 * i = 1..L. v[0] is unused; r[0] must hold x. */
void dfc_forward(const dfc_net *net, int batch, double *const *v, double *const *r);

/* ---- the Jacobian of the feedforward output (jacobian.c) ----------------------------------- */
/* col[i] = first column of layer i in J = [J_1 ... J_L] (and first row in Q = [Q_1; ...; Q_L]),
 * i = 1..L; returns N = sum n_i. */
int dfc_net_columns(const dfc_net *net, int *col);

/* phi_i'(v_i^-) at the feedforward state of x (batch x n0): d[i] (batch x n_i) for i = 1..L, in
 * one buffer *buf that the caller frees. AP_ENOMEM (naming the kernel) on failure. */
int dfc_ff_derivs(const dfc_net *net, const char *kernel, int batch, const double *x, double **buf,
                  double **d);

/* J (nL x N, row-major) of sample b: J_L = diag(phi_L'), J_i = J_{i+1} W_{i+1} diag(phi_i'). */
void dfc_jacobian_sample(const dfc_net *net, double *const *d, int b, double *J);

/* Q (N x nL, row-major) = [Q_1; ...; Q_L] (the net must be loaded with its Q). */
void dfc_stack_q(const dfc_net *net, double *Q);

/* ---- DFC-SSA, Lemma 1 (kernel_ssa.c) ----------------------------------------------------- */
/* The linearised steady state of a batch: u (B x n_L) = (JQ + alpha I)^{-1} (target - r_L^-) per
 * sample, v[i], r[i] (B x n_i) the steady state propagated layer by layer, vb[i] its basal
 * potentials W_i r_{i-1} + b_i, d[i] phi_i'(v_i^-) at the feedforward state (free to reuse);
 * r[0] points at x. All in one allocation, mem. */
typedef struct dfc_ssa_state {
    double *v[DFC_MAX_LAYERS + 1], *r[DFC_MAX_LAYERS + 1], *d[DFC_MAX_LAYERS + 1],
        *vb[DFC_MAX_LAYERS + 1];
    double *u;
    double *mem;
} dfc_ssa_state;

/* ---- losses ------------------------------------------------------------------------------ */
typedef enum { DFC_LOSS_MSE = 0, DFC_LOSS_CE } dfc_loss_kind;

/* Reads the string argument `loss` ("mse" or "ce"; required). */
int dfc_arg_loss(const ap_kernel_args *a, const char *kernel, dfc_loss_kind *kind);

/* g (B x n) = d Loss / d r of the minibatch-mean loss (mse: mean over B n elements of
 * (r - y)^2; ce: mean over B of -sum y log softmax(r)). per_sample = 1 drops the 1/B. */
void dfc_loss_grad(dfc_loss_kind kind, int batch, int n, const double *r, const double *y,
                   int per_sample, double *g);

/* Output targets (3) from the loss at the feedforward output, for a kernel given the labels y
 * rather than the targets: r* = r_L^- - lambda dLoss/dr_L (as dfc.targets computes them). */
typedef struct dfc_target_spec {
    dfc_loss_kind loss;
    const double *y; /* B x n_L */
    double lambda;
    int per_sample;
    double *out; /* B x n_L: where r* goes (NULL: a buffer of the state's own) */
} dfc_target_spec;

/* Reads a kernel's target arguments into spec: loss (required), lambda (required, finite) and
 * mode ("mean", the default, or "sample"); spec->y and spec->out are left to the caller. */
int dfc_arg_target_spec(const ap_kernel_args *a, const char *kernel, dfc_target_spec *spec);

/* (3): out = r - lambda g with g = dLoss/dr at r (B x n), g a B x n scratch buffer. */
void dfc_make_targets(const dfc_target_spec *spec, int batch, int n, const double *r, double *g,
                      double *out);

/* Fills *s for inputs x (B x n0) and output targets (B x n_L), or, with target = NULL, the
 * targets that spec makes of the feedforward output; errors (a singular JQ + alpha I, a
 * non-finite state, no memory) name the kernel K and the sample, and leave nothing allocated.
 * Free with dfc_ssa_free. */
int dfc_ssa_solve(const dfc_net *net, const char *K, int B, const double *x, const double *target,
                  const dfc_target_spec *spec, double alpha, dfc_ssa_state *s);
void dfc_ssa_free(dfc_ssa_state *s);

/* ---- arguments --------------------------------------------------------------------------- */
/* A B x n array argument: n must match (n > 0); *batch receives B, or must equal it when
 * *batch > 0 on entry. */
int dfc_arg_matrix(const ap_kernel_args *a, const char *kernel, const char *name, int required,
                   int n, int *batch, double **data);

#endif
