/* example_plugin.c — the plugin-API tutorial (docs/plugin-api.md walks through it): a plugin
 * "example" that registers the neuron type "example.adaptive", a rate neuron with
 * spike-frequency adaptation, the activation "example.cube" and the kernel "example.scale".
 *
 * A plugin is a shared module that exports two symbols and nothing else:
 *     const ap_plugin_info ap_plugin_info_v1;                   who it is, which ABI it uses
 *     int ap_plugin_init(ap_registry *r, uint32_t host_abi);    registers its types
 * It includes only apical's public headers and links against libapical (for ap_error and
 * ap_registry_add_*). Build it with hidden visibility and mark the two symbols AP_API. */
#include <float.h>
#include <math.h>
#include <stddef.h>

#include "apical/error.h"
#include "apical/registry.h"

/* ---- the neuron type "example.adaptive" ----------------------------------------------------
 *
 * Two compartments, computed in this order:
 *     soma   tau_m dx/dt = -x + drive_soma - g a     (drive_soma: the projections onto soma)
 *     adapt  tau_a da/dt = -a + drive_adapt          (drive_adapt: x, through feeds = "soma",
 *                                                     plus any projection onto adapt)
 * and the rate is activation(x). A strong input raises x, which slowly raises a, which pulls x
 * back down: the rate adapts to a step of input.
 *
 * Name the indices of the compartments and of the parameters, so the callbacks read like the
 * equations; they must match the order of the arrays below. */
enum { C_SOMA, C_ADAPT, N_COMPARTMENTS };
enum { P_TAU_M, P_TAU_A, P_G, N_PARAMS };

/* Parameters: name, default, min, max (inclusive bounds, checked when a model sets them), doc.
 * tau_m may be 0, which makes the soma instantaneous (x = drive - g a). tau_a must stay > 0:
 * the soma reads a before adapt is computed, so a has to be a state. */
static const ap_param_desc adaptive_params[N_PARAMS] = {
    [P_TAU_M] = {"tau_m", 1.0, 0.0, DBL_MAX, "membrane time constant of the soma"},
    [P_TAU_A] = {"tau_a", 10.0, 1e-9, DBL_MAX, "time constant of the adaptation"},
    [P_G] = {"g", 0.5, 0.0, DBL_MAX, "strength of the adaptation"},
};

/* Compartments: name, the parameter holding its time constant, the compartments it is fed.
 * "adapt" is fed the soma's value: the engine adds x to adapt's drive. */
static const ap_compartment_desc adaptive_compartments[N_COMPARTMENTS] = {
    [C_SOMA] = {"soma", "tau_m", NULL},
    [C_ADAPT] = {"adapt", "tau_a", "soma"},
};

/* The dynamics of compartment c over the whole batch x size block. For a dynamic compartment
 * (tau > 0) it writes dx/dt into out, for an instantaneous one (tau == 0) the value itself.
 * It runs inside the solver's right-hand side, so it must not allocate, and it returns like a
 * CVODE callback: 0 ok, > 0 recoverable (the solver retries with a smaller step), < 0 fatal.
 * A non-finite result is reported as recoverable rather than handed on. */
static int adaptive_dynamics(const ap_neuron_ctx *ctx, int c, double *out) {
    const size_t n = (size_t)ctx->batch * (size_t)ctx->size;
    const double *drive = ctx->drive[c];
    const double tau = ctx->tau[c];
    if (c == C_SOMA) {
        const double g = ctx->params[P_G];
        const double *x = ctx->value[C_SOMA], *a = ctx->value[C_ADAPT];
        for (size_t i = 0; i < n; i++) {
            double target = drive[i] - g * a[i];
            out[i] = tau > 0 ? (target - x[i]) / tau : target;
        }
    } else { /* C_ADAPT: the leaky default; its drive already holds x (feeds = "soma") */
        const double *a = ctx->value[C_ADAPT];
        for (size_t i = 0; i < n; i++)
            out[i] = tau > 0 ? (drive[i] - a[i]) / tau : drive[i];
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(out[i])) return 1;
    return 0;
}

/* The descriptor. abi_version and struct_size let the host check that it reads the layout
 * this plugin was compiled with; always fill them with AP_ABI_VERSION and sizeof. It must have
 * static storage: the registry keeps a pointer to it, not a copy. */
static const ap_neuron_type adaptive = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_neuron_type),
    .name = "example.adaptive", /* prefix the names of a plugin's types with the plugin's */
    .doc = "rate neuron with spike-frequency adaptation: tau_m x' = -x + I - g a, "
           "tau_a a' = -a + x",
    .n_compartments = N_COMPARTMENTS,
    .compartments = adaptive_compartments,
    .rate_of = C_SOMA,
    .n_params = N_PARAMS,
    .params = adaptive_params,
    .dynamics = adaptive_dynamics,
};

/* ---- the activation "example.cube" ---------------------------------------------------------- */
/* Activations are elementwise and cannot fail; NaN in gives NaN out. */
static void cube_f(size_t n, const double *x, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * x[i] * x[i];
}

static void cube_df(size_t n, const double *x, double *d) {
    for (size_t i = 0; i < n; i++)
        d[i] = 3.0 * x[i] * x[i];
}

static const ap_activation cube = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_activation),
    .name = "example.cube",
    .doc = "f(x) = x^3",
    .f = cube_f,
    .df = cube_df,
};

/* ---- the kernel "example.scale" ------------------------------------------------------------ */
/* A kernel is a C function that callers (Lua scripts, trainers) call by name with named
 * arguments: example.scale { a = 2, x = X, y = Y } from Lua writes y = a x. Outputs go into
 * arrays the caller allocated; the kernel allocates nothing. The accessors of registry.h find
 * the arguments, check their kinds and shapes, and set messages that name the kernel. */
static int scale_call(const ap_kernel_args *args) {
    static const char *const known[] = {"a", "x", "y"};
    int rc = ap_args_check(args, "example.scale", known, 3); /* refuses a misspelt name */
    if (rc) return rc;
    double a;
    if ((rc = ap_arg_number(args, "example.scale", "a", 1, &a))) return rc;
    /* x: any rows x cols (a 0 in the expected shape means "any size"); y: the same shape */
    double *x, *y;
    size_t shape[2];
    if ((rc = ap_arg_array(args, "example.scale", "x", 1, 2, NULL, &x, shape))) return rc;
    if ((rc = ap_arg_array(args, "example.scale", "y", 1, 2, shape, &y, NULL))) return rc;
    for (size_t i = 0; i < shape[0] * shape[1]; i++)
        y[i] = a * x[i];
    return 0;
}

static const ap_kernel scale = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_kernel),
    .name = "example.scale",
    .doc = "y = a x",
    .usage = "a, x[n, m], y[n, m] (written)",
    .call = scale_call,
};

/* ---- the two exported symbols --------------------------------------------------------------- */

/* Read by the host before anything else runs: a plugin built for another major ABI version is
 * refused here. The name must be the one in the file name (apical_example.so). */
AP_API const ap_plugin_info ap_plugin_info_v1 = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_plugin_info),
    .name = "example",
    .version = "1.0",
    .doc = "the plugin-API tutorial: an adapting rate neuron, a cubic activation and a kernel",
};

/* Registers the plugin's types. On failure return the AP_E* code with ap_error() set; the host
 * then forgets whatever was registered already and unloads the module. */
AP_API int ap_plugin_init(ap_registry *r, uint32_t host_abi) {
    /* The host has checked our major version; a plugin that needs fields added in a later
     * minor version would also check (host_abi & 0xffff) here. */
    if ((host_abi >> 16) != AP_ABI_MAJOR)
        return ap_error(AP_EABI, "example: host ABI %u.%u, plugin needs %u.x",
                        (unsigned)(host_abi >> 16), (unsigned)(host_abi & 0xffffu),
                        (unsigned)AP_ABI_MAJOR);
    int rc = ap_registry_add_neuron(r, &adaptive, "example");
    if (rc) return rc; /* the registry has set the message */
    rc = ap_registry_add_activation(r, &cube, "example");
    if (rc) return rc;
    return ap_registry_add_kernel(r, &scale, "example");
}
