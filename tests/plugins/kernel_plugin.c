/* kernel_plugin.c — the test plugin "ktest": kernels that exercise what the Lua binding passes
 * to kernels (models, simulations, optimisers, every argument kind) and how it reports their
 * failures. Not a tutorial: see example_plugin.c for that. */
#include <string.h>

#include "apical/error.h"
#include "apical/model.h"
#include "apical/optim.h"
#include "apical/registry.h"
#include "apical/sim.h"

/* ktest.inspect { model =, sim =, opt =, out = A[6] }: writes what it received:
 * out = {batch of model, state size of sim, steps of opt, n (number), #s (string), flag} */
static int inspect_call(const ap_kernel_args *args) {
    static const char *const known[] = {"model", "sim", "opt", "n", "s", "flag", "out"};
    int rc = ap_args_check(args, "ktest.inspect", known, 7);
    if (rc) return rc;
    void *m = NULL, *s = NULL, *o = NULL;
    double n = -1, flag = -1;
    const char *str = "";
    double *out;
    size_t six[1] = {6};
    if ((rc = ap_arg_object(args, "ktest.inspect", "model", AP_ARG_MODEL, 0, &m)) ||
        (rc = ap_arg_object(args, "ktest.inspect", "sim", AP_ARG_SIM, 0, &s)) ||
        (rc = ap_arg_object(args, "ktest.inspect", "opt", AP_ARG_OPTIM, 0, &o)) ||
        (rc = ap_arg_number(args, "ktest.inspect", "n", 0, &n)) ||
        (rc = ap_arg_string(args, "ktest.inspect", "s", 0, &str)) ||
        (rc = ap_arg_number(args, "ktest.inspect", "flag", 0, &flag)) ||
        (rc = ap_arg_array(args, "ktest.inspect", "out", 1, 1, six, &out, NULL)))
        return rc;
    out[0] = m ? ap_model_batch(m) : -1;
    out[1] = s ? (double)ap_sim_state_size(s) : -1;
    out[2] = o ? (double)ap_optim_steps(o) : -1;
    out[3] = n;
    out[4] = (double)strlen(str);
    out[5] = flag;
    return 0;
}

/* ktest.fail { how = "message" | "silent" | "prefixed" }: fails in three ways */
static int fail_call(const ap_kernel_args *args) {
    const char *how = "message";
    int rc = ap_arg_string(args, "ktest.fail", "how", 0, &how);
    if (rc) return rc;
    if (strcmp(how, "silent") == 0) return AP_ESOLVER; /* no message set */
    if (strcmp(how, "prefixed") == 0)
        return ap_error(AP_EINVAL, "kernel ktest.fail: it says so itself");
    return ap_error(AP_EINVAL, "something went wrong on purpose");
}

static const ap_kernel inspect = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_kernel),
    .name = "ktest.inspect",
    .doc = "reports its arguments",
    .usage = "model, sim, opt, n, s, flag, out[6]",
    .call = inspect_call,
};

static const ap_kernel fail = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_kernel),
    .name = "ktest.fail",
    .doc = "always fails",
    .usage = "how",
    .call = fail_call,
};

AP_API const ap_plugin_info ap_plugin_info_v1 = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_plugin_info),
    .name = "ktest",
    .version = "0.1",
    .doc = "kernels for the binding's tests",
};

AP_API int ap_plugin_init(ap_registry *r, uint32_t host_abi) {
    (void)host_abi;
    int rc = ap_registry_add_kernel(r, &inspect, NULL);
    if (!rc) rc = ap_registry_add_kernel(r, &fail, NULL);
    return rc;
}
