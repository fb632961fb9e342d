/* rules.c — the plasticity rules of DFC, in the engine's outer-product form
 * dW/dt = sum_b post_b^T pre_b:
 *     dfc.forward_rule   (5)   post = scale (phi(v) - phi(vB)),   pre = r_prev (the source)
 *     dfc.feedback_rule  (13)  post = -scale vA / s^2, s = max(sigma, 0.01),   pre = u
 *                        (200) with highpass = 1: pre = u - u_lp, u_lp the rule's auxiliary
 *                              signal (a low-pass filtered copy of u: App. C.3, single phase)
 * The reference's descent "gradients" are these times -2/B (forward) and -1/B (feedback, plus
 * the weight decay beta Q that the optimiser adds); the trainer applies those factors when it
 * adds the accumulated update to an optimiser. */
#include <float.h>
#include <math.h>

#include "apical/error.h"
#include "dfc_internal.h"

/* The rules read the compartments of dfc.pyramidal by index; refuse anything else. */
static int check_target(const ap_rule_ctx *c, const char *rule, int compartment) {
    if (c->n_compartments != DFC_N_COMPARTMENTS)
        return ap_error(AP_EINVAL,
                        "%s: the target population has %d compartments, not the 3 of "
                        "dfc.pyramidal",
                        rule, c->n_compartments);
    if (c->target_compartment != compartment)
        return ap_error(AP_EINVAL, "%s: the projection must end on the %s compartment", rule,
                        compartment == DFC_C_BASAL ? "basal" : "apical");
    return AP_OK;
}

static int all_finite(const double *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* ---- dfc.forward_rule (5) ---------------------------------------------------------------- */
enum { FW_SCALE, FW_N };
static const ap_param_desc forward_params[FW_N] = {
    [FW_SCALE] = {"scale", 1.0, -DBL_MAX, DBL_MAX, "factor on the postsynaptic term"},
};

static int forward_factors(const ap_rule_ctx *c, double *post, double *pre) {
    (void)pre; /* the presynaptic rate, as preset */
    int rc = check_target(c, "dfc.forward_rule", DFC_C_BASAL);
    if (rc) return rc;
    const size_t n = (size_t)c->batch * (size_t)c->n_post;
    const double scale = c->params[FW_SCALE];
    double *phi_b = c->scratch;
    /* phi(v) is the population's rate, already computed: only phi(vB) is new */
    c->activation->f(n, c->value[DFC_C_BASAL], phi_b);
    for (size_t i = 0; i < n; i++)
        post[i] = scale * (c->rate[i] - phi_b[i]);
    return all_finite(post, n) ? 0 : 1;
}

static const ap_rule_type forward_rule = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_rule_type),
    .name = "dfc.forward_rule",
    .doc = "forward plasticity (5): dW/dt = (phi(v) - phi(vB)) r_prev^T, db/dt = phi(v) - phi(vB) "
           "(times scale)",
    .n_params = FW_N,
    .params = forward_params,
    .factors = forward_factors,
};

/* ---- dfc.feedback_rule (13) -------------------------------------------------------------- */
enum { FB_SIGMA, FB_SCALE, FB_HIGHPASS, FB_N };
static const ap_param_desc feedback_params[FB_N] = {
    [FB_SIGMA] = {"sigma", 0.01, 0.0, DBL_MAX,
                  "noise amplitude of the sleep phase; the rule divides by max(sigma, 0.01)^2"},
    [FB_SCALE] = {"scale", 1.0, -DBL_MAX, DBL_MAX, "factor on the postsynaptic term"},
    [FB_HIGHPASS] = {"highpass", 0.0, 0.0, 1.0,
                     "1: the presynaptic factor is u - aux, aux a low-pass filtered copy of u "
                     "named with the projection's auxiliary signal (App. C.3); 0: u"},
};

static int feedback_factors(const ap_rule_ctx *c, double *post, double *pre) {
    int rc = check_target(c, "dfc.feedback_rule", DFC_C_APICAL);
    if (rc) return rc;
    if (c->params[FB_HIGHPASS] != 0.0) {
        /* (200): the high-pass filtered control signal u - u_lp as the presynaptic factor */
        if (!c->aux)
            return ap_error(AP_EINVAL,
                            "dfc.feedback_rule: highpass = 1 needs an auxiliary signal (the "
                            "low-pass filtered u; m:connect(..., { aux = \"lp.output\" }) or "
                            "m:set_rule_aux)");
        if (c->n_aux != c->n_pre)
            return ap_error(AP_ESIZE,
                            "dfc.feedback_rule: the auxiliary signal has %d values per sample, the "
                            "presynaptic signal %d",
                            c->n_aux, c->n_pre);
        const size_t m = (size_t)c->batch * (size_t)c->n_pre;
        for (size_t i = 0; i < m; i++)
            pre[i] -= c->aux[i];
    }
    const size_t n = (size_t)c->batch * (size_t)c->n_post;
    const double s = fmax(c->params[FB_SIGMA], 0.01);
    const double k = -c->params[FB_SCALE] / (s * s);
    const double *va = c->value[DFC_C_APICAL];
    for (size_t i = 0; i < n; i++)
        post[i] = k * va[i];
    return all_finite(post, n) ? 0 : 1;
}

static const ap_rule_type feedback_rule = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_rule_type),
    .name = "dfc.feedback_rule",
    .doc = "feedback plasticity (13): dQ/dt = -(1/s^2) vA u^T with s = max(sigma, 0.01) (times "
           "scale; the weight decay beta belongs to the optimiser); highpass = 1: u - aux in place "
           "of u (200), aux the low-pass filtered u",
    .n_params = FB_N,
    .params = feedback_params,
    .factors = feedback_factors,
};

int dfc_register_rules(ap_registry *r) {
    int rc = ap_registry_add_rule(r, &forward_rule, "dfc");
    if (!rc) rc = ap_registry_add_rule(r, &feedback_rule, "dfc");
    return rc;
}
