/* dfc_internal.h — what the files of the DFC plugin share: the registration functions of each
 * part, the compartment indices of dfc.pyramidal, and the layered network found in a model by
 * its descriptor or by the naming convention of docs/dfc.md (inputs "x", "target"; populations
 * "h1".."hL"; projections "W1".."WL" onto h<i>.basal and "Q1".."QL" from ctl.u onto h<i>.apical).
 * Kernel-local arrays with one entry per layer are variable-length arrays of L + 1 entries (a
 * few bytes a layer on the stack): the network has no fixed limit on its depth. */
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

/* Registers the n kernels of a kernels_*.c file under the owner "dfc" (dfc.c); stops at the first
 * the registry refuses and returns its code. */
int dfc_add_kernels(ap_registry *r, const ap_kernel *kernels, size_t n);

/* ---- the layered network (net.c) --------------------------------------------------------- */
/* A network of L layers, any L >= 1: layer i (1..L) is a population of n[i] units driven, on its
 * basal compartment, by the forward projection W_i from layer i-1 (layer 0: the input) and, on
 * its apical compartment, by the feedback projection Q_i. Arrays are indexed 0..L (entry 0 of
 * the per-layer ones unused); all of them live in one allocation, freed by dfc_net_free. The
 * weight pointers are the model's live arrays (the kernels read or update them in place). */
typedef struct dfc_net {
    int L;
    int *n;                    /* n[0] = the input's size, n[i] = layer i's */
    int *w_id;                 /* projection id of W_i */
    double **W;                /* n[i] x n[i-1], row-major */
    double **b;                /* n[i], or NULL without a bias */
    int *q_id;                 /* projection id of Q_i (-1 when not known) */
    double **Q;                /* n[i] x n[L] (NULL when not loaded) */
    const ap_activation **act; /* layer i's activation */
    const char **name;         /* name[0]: the input signal, name[i]: layer i's population */
    void *mem;
} dfc_net;

/* The network a kernel works on, from its optional array argument `arg` (the descriptor that
 * dfc.network builds once, docs/dfc.md "The network descriptor": { L, id of W_1, ..., id of W_L,
 * id of Q_1 (or -1), ..., id of Q_L }) or, without it, found in m by the names of the convention
 * (dfc_net_load). need_q: the feedback projections Q_1..Q_L too, each n_i x n_L. Every shape is
 * checked; errors name the kernel, the projection or layer at fault. Free with dfc_net_free. */
int dfc_net_arg(const ap_kernel_args *a, const char *kernel, const char *arg, ap_model *m,
                int need_q, dfc_net *net);

/* The network described by desc[0..len-1] (the descriptor above). */
int dfc_net_describe(ap_model *m, const char *kernel, const double *desc, size_t len, int need_q,
                     dfc_net *net);

/* The network found by its names (docs/dfc.md, "The network convention": input "x", populations
 * "h1".."hL", projections "W1".."WL" and "Q1".."QL"); for C callers that build the convention's
 * names and for kernels called without a descriptor. */
int dfc_net_load(ap_model *m, const char *kernel, int need_q, dfc_net *net);

/* Frees what dfc_net_arg/describe/load allocated (safe on a zeroed or freed net). */
void dfc_net_free(dfc_net *net);

/* Offsets of per-layer B x n[i] blocks (i = 0..L) in one buffer; returns the total length. */
size_t dfc_layer_offsets(const dfc_net *net, int batch, size_t *off);

/* out (B x n_out) = in (B x n_in) W^T + b (b may be NULL). */
void dfc_dense(int batch, int n_in, int n_out, const double *in, const double *W, const double *b,
               double *out);

/* The feedforward pass (2) from r[0] = x: v[i] = W_i r[i-1] + b_i, r[i] = phi_i(v[i]) for
 * i = 1..L. v[0] is unused; r[0] must hold x. */
void dfc_forward(const dfc_net *net, int batch, double *const *v, double *const *r);

/* ---- the feedforward pass's buffers (layer_buffers.c) ------------------------------------- */
/* n_sets per-layer sets of B x n_i blocks (i = 0..L) in one buffer *mem that the caller frees:
 * sets[k][i] points at set k's layer i; extra values follow the sets, at *rest (when rest is not
 * NULL). AP_ENOMEM (naming the kernel and the number of values) on failure, *mem then NULL. */
int dfc_layer_buffers(const dfc_net *net, const char *kernel, int batch, int n_sets,
                      double **const *sets, size_t extra, double **mem, double **rest);

/* The feedforward pass (2) of x (batch x n_0) into fresh buffers: v[i], r[i] for i = 0..L in *mem
 * (the caller frees it), r[0] = x (read only); with out not NULL, r[L] = out, so the output goes
 * straight there. AP_ENOMEM (naming the kernel) on failure. */
int dfc_forward_new(const dfc_net *net, const char *kernel, int batch, const double *x, double *out,
                    double **v, double **r, double **mem);

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
 * r[0] points at x. The values in one allocation, mem; the per-layer pointers in ptrs. */
typedef struct dfc_ssa_state {
    double **v, **r, **d, **vb; /* L + 1 entries each */
    double *u;
    double *mem;
    void *ptrs; /* the four arrays of pointers */
} dfc_ssa_state;

/* ---- eigenvalues (eigen.c) ------------------------------------------------------------------ */
/* A workspace for the eigenvalues of n x n nonsymmetric matrices (LAPACK dgeev), allocated once
 * per kernel call: nothing is allocated per sample. */
typedef struct dfc_eigen {
    int n, lwork;
    double *work; /* dgeev's workspace (in mem) */
    double *mem;
} dfc_eigen;

/* AP_ENOMEM naming the kernel on failure (then nothing stays allocated). */
int dfc_eigen_new(int n, const char *kernel, dfc_eigen *w);

/* The eigenvalues of A (n x n, row-major; overwritten), sorted by ascending real part, then
 * imaginary part, into re[0..n-1] and im[0..n-1] (im may be NULL). When they do not converge:
 * AP_EINVAL naming the kernel, `what` (the matrix) and the sample (1-based). */
int dfc_eigen_solve(dfc_eigen *w, double *A, const char *kernel, const char *what, int sample,
                    double *re, double *im);
void dfc_eigen_free(dfc_eigen *w);

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
    double *out;   /* B x n_L: where r* goes (NULL: a buffer of the state's own) */
    int mean_over; /* mode "mean": the minibatch's size when the B rows are some of its rows (the
                    * mean's 1/mean_over, so each row's target is the whole minibatch's); 0: B */
} dfc_target_spec;

/* Reads a kernel's target arguments into spec: loss (required), lambda (required, finite),
 * mode ("mean", the default, or "sample") and batch (optional, mode "mean" only: an integer
 * >= the `rows` rows of the array named rows_of, into spec->mean_over); spec->y and spec->out
 * are left to the caller. */
int dfc_arg_target_spec(const ap_kernel_args *a, const char *kernel, int rows, const char *rows_of,
                        dfc_target_spec *spec);

/* (3): out = r - lambda g with g = dLoss/dr at r (B x n), g a B x n scratch buffer; the mean
 * over spec->mean_over samples when it is set. */
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
