/* apical/model.h — the model graph: inputs, populations, blocks and projections. */
#ifndef APICAL_MODEL_H
#define APICAL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "apical/export.h"
#include "apical/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ap_model ap_model;

/* A named scalar given by the user (a type's parameter, an initialiser's argument). */
typedef struct ap_param {
    const char *name;
    double value;
} ap_param;

/* Signals are named by strings:
 *   "x"            an input
 *   "h1" or "h1.rate"  a population's rate (activation of its rate compartment)
 *   "h1.soma"      a compartment's value ("h1.basal", "h1.apical", ...)
 *   "ctl.u"        a block's output or state
 * Projections end on a compartment ("h2.basal"). Every signal is a batch x n block. */

/* Creates an empty model for batches of `batch` samples over registry r (which must outlive
 * the model). */
AP_API int ap_model_new(ap_model **out, ap_registry *r, int batch);
AP_API void ap_model_free(ap_model **m);
AP_API int ap_model_batch(const ap_model *m);
AP_API ap_registry *ap_model_registry(const ap_model *m);

/* Where the next objects are declared ("model.lua:12"); compile errors quote it. NULL clears. */
AP_API int ap_model_set_origin(ap_model *m, const char *where);

/* Names: letters, digits and '_' ("h1", "x_in"); unique over inputs, populations and blocks. */
AP_API int ap_model_add_input(ap_model *m, const char *name, int size);

/* Adds a population of `size` neurons of registered type `neuron` with `activation`.
 * Parameters not given take the type's defaults; unknown names and out-of-bounds values are
 * errors (AP_EINVAL naming the parameter, value and bounds). */
AP_API int ap_model_add_population(ap_model *m, const char *name, int size, const char *neuron,
                                   const char *activation, const ap_param *params, int n_params);

/* How a population's dynamic compartments start a run. */
typedef enum {
    AP_START_ZERO = 0, /* every dynamic compartment at 0 (or its set value) */
    AP_START_SETTLED,  /* each dynamic compartment at its drive, as if it were instantaneous */
} ap_start_mode;
AP_API int ap_model_set_start(ap_model *m, const char *population, ap_start_mode mode);
/* Start value of one dynamic compartment (mode AP_START_ZERO); default 0. */
AP_API int ap_model_set_start_value(ap_model *m, const char *compartment, double value);

/* Adds a block of registered type `type`; input port ports[k] reads signal signals[k]. Every
 * input port must be connected. */
AP_API int ap_model_add_block(ap_model *m, const char *name, const char *type,
                              const ap_param *params, int n_params, const char *const *ports,
                              const char *const *signals, int n_inputs);

typedef enum {
    AP_DENSE = 0,      /* target += source W^T (+ b): W is n_target x n_source */
    AP_ONE_TO_ONE = 1, /* target += w .* source: w has n entries (sizes must match) */
} ap_projection_kind;

typedef struct ap_connect_spec {
    const char *name; /* NULL: "<source>-><target>" */
    ap_projection_kind kind;
    int bias;         /* dense only: a bias vector (initialised to zero) */
    const char *init; /* initialiser; NULL: "zeros" (dense), "constant" 1 (1:1) */
    const ap_param *init_params;
    int n_init_params;
    uint64_t seed;
    int plastic; /* 0: frozen (optimisers skip it) */
} ap_connect_spec;

/* Connects signal `source` to compartment `target`. id (may be NULL) receives the
 * projection's index. */
AP_API int ap_model_connect(ap_model *m, const char *source, const char *target,
                            const ap_connect_spec *spec, int *id);

/* Attaches a registered plasticity rule to projection `id`: during each run its update is
 * accumulated (see ap_sim_accumulator). One rule per projection. */
AP_API int ap_model_add_rule(ap_model *m, int id, const char *rule, const ap_param *params,
                             int n_params);

/* Gives the rule of projection `id` an auxiliary signal: any signal name (a compartment, a
 * rate, a block output or state, an input) whose current value the rule reads as ctx->aux
 * (batch x size) at every point where it is evaluated (CVODE quadrature, fixed-step and
 * stacked accumulation, ap_sim_accumulate_state). A rule that needs a presynaptic factor other
 * than the projection's source uses it, e.g. pre - aux with aux a "lowpass" block of the source
 * (a high-pass filtered source). The name is resolved when the model is compiled, so the signal
 * may be declared later; an unknown name fails the compilation with AP_ENOTFOUND naming the
 * projection and the signal. NULL removes the auxiliary signal. Fails with AP_EINVAL when the
 * projection does not exist or has no rule yet (call ap_model_add_rule first), AP_ENOMEM. */
AP_API int ap_model_set_rule_aux(ap_model *m, int id, const char *signal);

/* ---- inspection and parameters ----------------------------------------------------------- */
typedef struct ap_projection_info {
    const char *name, *source, *target;
    ap_projection_kind kind;
    int rows, cols; /* weights: rows x cols (one-to-one: 1 x n) */
    int has_bias;
    int plastic;
    const char *rule; /* NULL if none */
} ap_projection_info;

AP_API int ap_model_n_projections(const ap_model *m);
AP_API int ap_model_find_projection(const ap_model *m, const char *name, int *id);
AP_API int ap_model_projection_info(const ap_model *m, int id, ap_projection_info *info);
/* Live parameter arrays (row-major); a compiled simulation reads them at every step, so a
 * trainer updates them in place between runs. Bias is NULL without one. */
AP_API double *ap_model_weights(ap_model *m, int id);
AP_API double *ap_model_bias(ap_model *m, int id);
/* Rejects non-finite weights, naming the projection and the entry (AP_ENONFINITE). */
AP_API int ap_model_check_weights(const ap_model *m);

typedef struct ap_population_info {
    const char *name;
    int size;
    const ap_neuron_type *neuron;
    const ap_activation *activation;
    const double *params; /* neuron->n_params values, in descriptor order */
    ap_start_mode start;
} ap_population_info;

/* What population `name` is (pointers valid while the model lives). AP_ENOTFOUND if none. */
AP_API int ap_model_population_info(const ap_model *m, const char *name, ap_population_info *info);

typedef struct ap_block_info {
    const char *name;
    const ap_block_type *type;
    const double *params;      /* type->n_params values, in descriptor order */
    const char *const *inputs; /* per input port: the signal it reads */
} ap_block_info;

/* What block `name` is (pointers valid while the model lives). AP_ENOTFOUND if none. */
AP_API int ap_model_block_info(const ap_model *m, const char *name, ap_block_info *info);

/* Size of a signal (n, per sample); AP_ENOTFOUND if the name resolves to nothing. */
AP_API int ap_model_signal_size(const ap_model *m, const char *signal, int *n);

/* Objects in declaration order: kind is "input", "population" or "block". */
AP_API int ap_model_n_objects(const ap_model *m);
AP_API int ap_model_object(const ap_model *m, int k, const char **kind, const char **name,
                           int *size);

#ifdef __cplusplus
}
#endif
#endif
