/* builtin_models.c — the engine's generic model types: the leaky "rate" neuron, the "lowpass"
 * and "hold" blocks and the Hebbian "hebb" rule. Richer types come from plugins. */
#include <float.h>
#include <string.h>

#include "apical/error.h"
#include "builtin.h"

/* rate: one compartment, tau dv/dt = -v + drive, rate = activation(v); tau = 0 makes it
 * instantaneous (v = drive). */
static const ap_param_desc rate_params[] = {
    {"tau", 1.0, 0.0, DBL_MAX, "time constant of the soma (0: instantaneous)"},
};
static const ap_compartment_desc rate_comps[] = {{"soma", "tau", NULL}};
static const ap_neuron_type rate_neuron = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_neuron_type),
    .name = "rate",
    .doc = "leaky rate neuron: tau dv/dt = -v + drive, rate = activation(v)",
    .n_compartments = 1,
    .compartments = rate_comps,
    .rate_of = 0,
    .n_params = 1,
    .params = rate_params,
};

/* lowpass: tau dy/dt = in - y, out = y. */
static const char *const lowpass_in[] = {"input"};
static const char *const lowpass_state[] = {"y"};
static const char *const lowpass_out[] = {"output"};
static const ap_param_desc lowpass_params[] = {
    {"tau", 1.0, 1e-300, DBL_MAX, "time constant"},
};

static int lowpass_output(const ap_block_ctx *c) {
    size_t n = (size_t)c->batch * (size_t)c->out_size[0];
    memcpy(c->out[0], c->state[0], n * sizeof(double));
    return 0;
}

static int lowpass_deriv(const ap_block_ctx *c, double *const *d) {
    size_t n = (size_t)c->batch * (size_t)c->state_size[0];
    const double inv = 1.0 / c->params[0];
    const double *x = c->in[0], *y = c->state[0];
    for (size_t i = 0; i < n; i++)
        d[0][i] = (x[i] - y[i]) * inv;
    return 0;
}

static const ap_block_type lowpass_block = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_block_type),
    .name = "lowpass",
    .doc = "first-order low-pass filter: tau dy/dt = input - y, output = y",
    .n_inputs = 1,
    .inputs = lowpass_in,
    .n_states = 1,
    .states = lowpass_state,
    .n_outputs = 1,
    .outputs = lowpass_out,
    .n_params = 1,
    .params = lowpass_params,
    .feedthrough = 0,
    .output = lowpass_output,
    .deriv = lowpass_deriv,
};

/* hold: y(0) = the input at the start of the run, dy/dt = 0, out = y — a signal's value at
 * the start (e.g. a network's own feedforward output as its controller's target). */
static const char *const hold_in[] = {"input"};
static const char *const hold_state[] = {"y"};
static const char *const hold_out[] = {"output"};

static int hold_init(const ap_block_ctx *c, double *const *state) {
    memcpy(state[0], c->in[0], (size_t)c->batch * (size_t)c->state_size[0] * sizeof(double));
    return 0;
}

static int hold_deriv(const ap_block_ctx *c, double *const *d) {
    memset(d[0], 0, (size_t)c->batch * (size_t)c->state_size[0] * sizeof(double));
    return 0;
}

static const ap_block_type hold_block = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_block_type),
    .name = "hold",
    .doc = "sample and hold: output = the input's value at the start of the run (y(0) = input, "
           "dy/dt = 0)",
    .n_inputs = 1,
    .inputs = hold_in,
    .n_states = 1,
    .states = hold_state,
    .n_outputs = 1,
    .outputs = hold_out,
    .feedthrough = 0,
    .init_state = hold_init,
    .output = lowpass_output, /* out = y */
    .deriv = hold_deriv,
};

/* hebb: dW/dt = eta * post_rate^T pre, db/dt = eta * post_rate (summed over the batch). */
static const ap_param_desc hebb_params[] = {{"eta", 1.0, -DBL_MAX, DBL_MAX, "learning rate"}};

static int hebb_factors(const ap_rule_ctx *c, double *post, double *pre) {
    (void)pre;
    size_t n = (size_t)c->batch * (size_t)c->n_post;
    const double eta = c->params[0];
    for (size_t i = 0; i < n; i++)
        post[i] = eta * c->rate[i];
    return 0;
}

static const ap_rule_type hebb_rule = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_rule_type),
    .name = "hebb",
    .doc = "Hebbian rule: dW/dt = eta * post rate x pre signal",
    .n_params = 1,
    .params = hebb_params,
    .factors = hebb_factors,
};

int apx_builtin_models_register(ap_registry *r) {
    int rc = ap_registry_add_neuron(r, &rate_neuron, "engine");
    if (!rc) rc = ap_registry_add_block(r, &lowpass_block, "engine");
    if (!rc) rc = ap_registry_add_block(r, &hold_block, "engine");
    if (!rc) rc = ap_registry_add_rule(r, &hebb_rule, "engine");
    return rc;
}
