/* pyramidal.c — the neuron type dfc.pyramidal (1): basal, apical and somatic compartments.
 *     basal   vB = W r_prev + b                      instantaneous (no time constant)
 *     apical  tau_A dvA/dt = -vA + Q u               tau_A = 0 (default): vA = Q u
 *     soma    tau_v dv/dt  = -v + vB + vA            rate r = phi(v)
 * The engine's leaky default computes all three, so there is no dynamics callback: the soma's
 * drive is its feeds, basal + apical. The apical compartment is dynamic only in the sleep
 * phase (12), where euler-maruyama adds sigma dW to it. */
#include <float.h>

#include "apical/error.h"
#include "dfc_internal.h"

enum { P_TAU_V, P_TAU_A, N_PARAMS };

static const ap_param_desc pyramidal_params[N_PARAMS] = {
    [P_TAU_V] = {"tau_v", 1.0, 0.0, DBL_MAX,
                 "time constant of the soma, in units of tau_u (the reference's "
                 "time_constant_ratio); 0 makes the soma instantaneous"},
    [P_TAU_A] = {"tau_A", 0.0, 0.0, DBL_MAX,
                 "time constant of the apical compartment (0: instantaneous, vA = Q u; > 0 in "
                 "the noisy sleep phase (12))"},
};

static const ap_compartment_desc pyramidal_compartments[DFC_N_COMPARTMENTS] = {
    [DFC_C_BASAL] = {"basal", NULL, NULL},
    [DFC_C_APICAL] = {"apical", "tau_A", NULL},
    [DFC_C_SOMA] = {"soma", "tau_v", "basal,apical"},
};

static const ap_neuron_type pyramidal = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_neuron_type),
    .name = "dfc.pyramidal",
    .doc = "three-compartment DFC neuron (1): basal vB (instantaneous), apical vA (tau_A, 0 = "
           "instantaneous), soma tau_v dv/dt = -v + vB + vA, rate = phi(v)",
    .n_compartments = DFC_N_COMPARTMENTS,
    .compartments = pyramidal_compartments,
    .rate_of = DFC_C_SOMA,
    .n_params = N_PARAMS,
    .params = pyramidal_params,
    .dynamics = NULL,
};

int dfc_register_pyramidal(ap_registry *r) {
    return ap_registry_add_neuron(r, &pyramidal, "dfc");
}
