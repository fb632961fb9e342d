/* dfc.c — the plugin "dfc" (Deep Feedback Control): its info symbol and entry point, which
 * register the neuron type dfc.pyramidal, the controllers dfc.pi/.i/.p/.pid, the rules
 * dfc.forward_rule and dfc.feedback_rule, and the kernels (docs/dfc.md), and the
 * preconditioner dfc.layered (docs/solvers.md). */
#include "apical/error.h"
#include "apical/export.h"
#include "apical/registry.h"
#include "dfc_internal.h"

AP_API const ap_plugin_info ap_plugin_info_v1 = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_plugin_info),
    .name = "dfc",
    .version = "0.1",
    .doc = "Deep Feedback Control: pyramidal neurons, feedback controllers, plasticity rules and "
           "the kernels of the DFC trainers (feedforward pass, targets, SSA, BP and DFA baselines) "
           "and of the measures of App. F.1",
};

int dfc_add_kernels(ap_registry *r, const ap_kernel *kernels, size_t n) {
    for (size_t k = 0; k < n; k++) {
        int rc = ap_registry_add_kernel(r, &kernels[k], "dfc");
        if (rc) return rc;
    }
    return AP_OK;
}

AP_API int ap_plugin_init(ap_registry *r, uint32_t host_abi) {
    /* 1.1: the rule context's aux signal (dfc.feedback_rule's high-pass factor) */
    if ((host_abi >> 16) != AP_ABI_MAJOR || (host_abi & 0xffffu) < 1u)
        return ap_error(AP_EABI, "dfc: host ABI %u.%u, plugin needs %u.1 or later",
                        (unsigned)(host_abi >> 16), (unsigned)(host_abi & 0xffffu),
                        (unsigned)AP_ABI_MAJOR);
    int rc = dfc_register_pyramidal(r);
    if (!rc) rc = dfc_register_controllers(r);
    if (!rc) rc = dfc_register_rules(r);
    if (!rc) rc = dfc_register_kernels_basic(r);
    if (!rc) rc = dfc_register_kernel_ssa(r);
    if (!rc) rc = dfc_register_kernels_baselines(r);
    if (!rc) rc = dfc_register_kernels_feedback(r);
    if (!rc) rc = dfc_register_kernels_conditions(r);
    if (!rc) rc = dfc_register_kernels_measures(r);
    if (!rc) rc = dfc_register_kernels_alignment(r);
    if (!rc) rc = dfc_register_kernel_pathway(r);
    if (!rc) rc = dfc_register_precond(r);
    return rc;
}
