/* apical/registry.h — named types the engine and plugins register: activations, initialisers,
 * neuron models, blocks and plasticity rules. The only thing engine and plugins share. */
#ifndef APICAL_REGISTRY_H
#define APICAL_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "apical/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ABI: a plugin built against a different major version is refused. Minor versions only add
 * fields at the end of descriptors and contexts; the host reads a descriptor only as far as its
 * struct_size. History: 1.1 appended aux and n_aux to ap_rule_ctx (a plugin that reads them
 * should check that the host's minor version, passed to ap_plugin_init, is >= 1). */
#define AP_ABI_MAJOR 1u
#define AP_ABI_MINOR 1u
#define AP_ABI_VERSION ((AP_ABI_MAJOR << 16) | AP_ABI_MINOR)

typedef struct ap_registry ap_registry;

/* A scalar parameter of a registered type, with its default and inclusive bounds. */
typedef struct ap_param_desc {
    const char *name;
    double def;
    double min, max;
    const char *doc;
} ap_param_desc;

/* ---- activations ------------------------------------------------------------------------- */
/* y = f(x) and d = f'(x), elementwise over n values. */
typedef struct ap_activation {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *doc;
    void (*f)(size_t n, const double *x, double *y);
    void (*df)(size_t n, const double *x, double *d);
} ap_activation;

/* ---- initialisers ------------------------------------------------------------------------ */
/* Fills a rows x cols matrix (row-major; rows = targets, cols = sources). Returns 0 or an
 * AP_E* code with ap_error() set. params are in the order of `params`. */
typedef struct ap_initializer {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *doc;
    int n_params;
    const ap_param_desc *params;
    int (*fill)(const double *params, uint64_t seed, int rows, int cols, double *w);
} ap_initializer;

/* ---- neuron models ----------------------------------------------------------------------- */
/* A neuron is a list of compartments computed in declared order. Compartment c has a drive:
 * the sum of the projections ending on it, the population's bias-free inputs, plus the values
 * of the compartments listed in `feeds` (earlier compartments, or any dynamic one). A
 * compartment whose time constant (parameter `tau_param`) is > 0 is dynamic:
 *     tau dx/dt = -x + drive            (default), or dx/dt = dynamics(...) if given;
 * with tau == 0 (or tau_param NULL) it is instantaneous: x = drive, or x = dynamics(...).
 * The population's rate is activation(x[rate_of]). */
typedef struct ap_compartment_desc {
    const char *name;
    const char *tau_param; /* NULL: always instantaneous */
    const char *feeds;     /* comma-separated compartment names, or NULL */
} ap_compartment_desc;

typedef struct ap_neuron_ctx {
    int batch, size; /* each compartment is a batch x size row-major block */
    double t;
    const double *params;       /* the population's parameter values, in descriptor order */
    const double *tau;          /* per compartment: its time constant (0 = instantaneous) */
    double *const *value;       /* per compartment: current values */
    const double *const *drive; /* per compartment: drive (projections + feeds) */
} ap_neuron_ctx;

typedef struct ap_neuron_type {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *doc;
    int n_compartments;
    const ap_compartment_desc *compartments;
    int rate_of; /* index of the compartment whose activation is the rate */
    int n_params;
    const ap_param_desc *params;
    /* Optional. For dynamic compartment c, writes dx/dt into out; for an instantaneous one,
     * writes its value. Returns 0, >0 recoverable (CVODE retries a smaller step), <0 fatal.
     * NULL: the leaky default above. */
    int (*dynamics)(const ap_neuron_ctx *ctx, int c, double *out);
} ap_neuron_type;

/* ---- blocks ------------------------------------------------------------------------------ */
/* A small dynamical system with named input ports (connected to signals), states and outputs,
 * all batch x n blocks. Sizes: `shape` sets them from the input sizes; without it every state
 * and output has the size of input 0. */
typedef struct ap_block_ctx {
    int batch;
    double t;
    const double *params;
    void *data; /* what init_data returned */
    const double *const *in;
    const int *in_size;
    const double *const *state;
    const int *state_size;
    double *const *out; /* current outputs (read them in deriv: they are up to date) */
    const int *out_size;
    int initial; /* 1 when outputs are computed for the initial state */
} ap_block_ctx;

typedef struct ap_block_type {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *doc;
    int n_inputs;
    const char *const *inputs;
    int n_states;
    const char *const *states;
    int n_outputs;
    const char *const *outputs;
    int n_params;
    const ap_param_desc *params;
    int feedthrough; /* 1 if outputs depend instantly on inputs (for algebraic-loop detection) */
    /* Optional: sizes of states and outputs from those of the inputs. */
    int (*shape)(const double *params, const int *in_size, int *state_size, int *out_size);
    /* Optional: per-block workspace; destroy_data frees it. */
    int (*init_data)(const double *params, int batch, const int *in_size, void **data);
    void (*destroy_data)(void *data);
    /* Optional: initial state (default zeros), called once the start state's signals are
     * computed, so inputs are valid; outputs are then recomputed with initial = 1. */
    int (*init_state)(const ap_block_ctx *ctx, double *const *state);
    /* Required: outputs from state and inputs. 0 / >0 recoverable / <0 fatal. */
    int (*output)(const ap_block_ctx *ctx);
    /* Required when n_states > 0: state derivatives. */
    int (*deriv)(const ap_block_ctx *ctx, double *const *dstate);
} ap_block_type;

/* ---- plasticity rules -------------------------------------------------------------------- */
/* A rule in outer-product form: dW/dt = sum over the batch of post^T pre (n_post x n_pre) and
 * db/dt = sum over the batch of post. The rule writes `post` (batch x n_post) and may replace
 * the presynaptic factor (batch x n_pre, preset to the projection's source signal).
 * A rule may read one auxiliary signal besides its source, named per projection with
 * ap_model_set_rule_aux (for example a low-pass filtered copy of the source, so that the rule
 * can use the high-pass factor pre - aux): `aux` is its current value (batch x n_aux, the same
 * evaluation point as pre and the compartments), NULL and n_aux = 0 when none is set. */
typedef struct ap_rule_ctx {
    int batch;
    double t;
    const double *params;
    int n_pre, n_post;
    const double *pre; /* source signal of the projection */
    /* the target population */
    int n_compartments;
    const double *const *value; /* compartment values */
    const double *const *drive; /* compartment drives */
    const double *rate;         /* activation(value[rate_of]) */
    const ap_activation *activation;
    int target_compartment; /* the compartment the projection ends on */
    double *scratch;        /* batch x n_post scratch, free to use */
    /* ABI 1.1: the projection's auxiliary signal (ap_model_set_rule_aux), or NULL / 0 */
    const double *aux;
    int n_aux;
} ap_rule_ctx;

typedef struct ap_rule_type {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *doc;
    int n_params;
    const ap_param_desc *params;
    int (*factors)(const ap_rule_ctx *ctx, double *post, double *pre);
} ap_rule_type;

/* ---- kernels ----------------------------------------------------------------------------- */
/* A named C function a plugin offers its callers (trainers, analyses, Lua scripts): it takes
 * named arguments — numbers, strings, arrays (preallocated by the caller, outputs included),
 * a model, a simulation, an optimiser — and returns 0 or an AP_E* code with ap_error() set.
 * From Lua: dfc.forward { model = m, x = X, out = R } (see docs/plugin-api.md). */
typedef enum {
    AP_ARG_NUMBER = 0,
    AP_ARG_STRING,
    AP_ARG_ARRAY,
    AP_ARG_MODEL,
    AP_ARG_SIM,
    AP_ARG_OPTIM,
} ap_arg_kind;

typedef struct ap_arg {
    const char *name;
    ap_arg_kind kind;
    double number;      /* AP_ARG_NUMBER */
    const char *string; /* AP_ARG_STRING */
    double *data;       /* AP_ARG_ARRAY: row-major, shape[0..ndim-1] */
    int ndim;
    size_t shape[4];
    void *object; /* AP_ARG_MODEL: ap_model *, AP_ARG_SIM: ap_sim *, AP_ARG_OPTIM: ap_optim * */
} ap_arg;

typedef struct ap_kernel_args {
    int n;
    const ap_arg *args;
} ap_kernel_args;

typedef struct ap_kernel {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *doc;
    const char *usage; /* the arguments, e.g. "model, x[B,n0], out[B,nL]" */
    int (*call)(const ap_kernel_args *args);
} ap_kernel;

/* Calls kernel k with args (NULL: none). On failure the last error is the kernel's message,
 * made to begin with "kernel NAME" when it does not already ("kernel NAME: ..."; "kernel NAME
 * failed: <code>" when it left none). Returns the kernel's code. */
AP_API int ap_kernel_invoke(const ap_kernel *k, const ap_kernel_args *args);

/* Argument accessors for kernel authors. Each finds the argument `name`; when it is absent,
 * a required one fails with AP_EINVAL ("kernel dfc.forward: missing argument x"), an optional
 * one leaves *out unchanged and returns AP_OK. A wrong kind fails with AP_EINVAL naming it. */
AP_API int ap_arg_number(const ap_kernel_args *a, const char *kernel, const char *name,
                         int required, double *out);
AP_API int ap_arg_string(const ap_kernel_args *a, const char *kernel, const char *name,
                         int required, const char **out);
/* An array of ndim dimensions whose shape matches `shape` where shape[k] != 0 (AP_ESIZE with
 * both shapes otherwise); its actual shape goes to shape_out (may be NULL). */
AP_API int ap_arg_array(const ap_kernel_args *a, const char *kernel, const char *name, int required,
                        int ndim, const size_t *shape, double **data, size_t *shape_out);
AP_API int ap_arg_object(const ap_kernel_args *a, const char *kernel, const char *name,
                         ap_arg_kind kind, int required, void **out);
/* Fails (AP_EINVAL) on an argument whose name is not among known[0..n-1]. */
AP_API int ap_args_check(const ap_kernel_args *a, const char *kernel, const char *const *known,
                         int n);

/* ---- the registry ------------------------------------------------------------------------ */
/* Creates a registry holding the engine's built-in types (linear, tanh, ... activations;
 * zeros, constant, normal, uniform, xavier_normal, xavier_uniform, identity initialisers;
 * the "rate" neuron; the "lowpass" block; the "hebb" rule). */
AP_API int ap_registry_new(ap_registry **out);
AP_API void ap_registry_free(ap_registry **r);

/* Registration copies nothing: descriptors must outlive the registry (static storage).
 * Fails with AP_EDUP for a name already taken, AP_EABI for a descriptor of another major
 * version or too small, AP_ESTATE once the registry is closed, AP_EINVAL for an incomplete
 * descriptor. `owner` names who registers (a plugin name, "engine"). */
AP_API int ap_registry_add_activation(ap_registry *r, const ap_activation *d, const char *owner);
AP_API int ap_registry_add_initializer(ap_registry *r, const ap_initializer *d, const char *owner);
AP_API int ap_registry_add_neuron(ap_registry *r, const ap_neuron_type *d, const char *owner);
AP_API int ap_registry_add_block(ap_registry *r, const ap_block_type *d, const char *owner);
AP_API int ap_registry_add_rule(ap_registry *r, const ap_rule_type *d, const char *owner);
AP_API int ap_registry_add_kernel(ap_registry *r, const ap_kernel *d, const char *owner);

/* Look-ups return NULL when the name is unknown (ap_error is then set, listing the names). */
AP_API const ap_activation *ap_registry_activation(const ap_registry *r, const char *name);
AP_API const ap_initializer *ap_registry_initializer(const ap_registry *r, const char *name);
AP_API const ap_neuron_type *ap_registry_neuron(const ap_registry *r, const char *name);
AP_API const ap_block_type *ap_registry_block(const ap_registry *r, const char *name);
AP_API const ap_rule_type *ap_registry_rule(const ap_registry *r, const char *name);
AP_API const ap_kernel *ap_registry_kernel(const ap_registry *r, const char *name);

/* Enumerates every registered type: kind is "activation", "initializer", "neuron", "block",
 * "rule", "kernel", "preconditioner" (apical/precond.h). Stops early if fn returns non-zero. */
AP_API void ap_registry_each(const ap_registry *r,
                             int (*fn)(void *ud, const char *kind, const char *name,
                                       const char *owner, const char *doc),
                             void *ud);

/* After closing, registration fails with AP_ESTATE (models compiled against it stay valid). */
AP_API void ap_registry_close(ap_registry *r);
AP_API int ap_registry_is_closed(const ap_registry *r);

/* ---- plugins ----------------------------------------------------------------------------- */
/* A plugin is a shared module exporting
 *     const ap_plugin_info ap_plugin_info_v1;   (checked before anything is called)
 *     int ap_plugin_init(ap_registry *r, uint32_t host_abi);
 * init registers the plugin's types and returns 0, or an AP_E* code with ap_error() set. */
typedef struct ap_plugin_info {
    uint32_t abi_version; /* AP_ABI_VERSION the plugin was built with */
    uint32_t struct_size;
    const char *name;
    const char *version;
    const char *doc;
} ap_plugin_info;

#define AP_PLUGIN_INFO_SYMBOL "ap_plugin_info_v1"
#define AP_PLUGIN_INIT_SYMBOL "ap_plugin_init"
typedef int (*ap_plugin_init_fn)(ap_registry *r, uint32_t host_abi);

#ifdef __cplusplus
}
#endif
#endif
