/* controller.c — the feedback controllers (4), as blocks with inputs rate (r_L) and target
 * (r_L*) and output u, the error being e = target - rate:
 *     dfc.pi   u = u_int + k_p e,                 tau_u du_int/dt = e - alpha u
 *     dfc.i    u = u_int,                         tau_u du_int/dt = e - alpha u
 *     dfc.p    u = k_p e                          (no state)
 *     dfc.pid  u = u_int + k_p e + k_d (e - e_f)/tau_d,
 *              tau_u du_int/dt = e - alpha u,     tau_d de_f/dt = e - e_f
 * The leak acts on u, not on u_int (the implemented form (208) of the paper), so alpha is the
 * damping of Lemma 1 whatever k_p. (e - e_f)/tau_d is a first-order filtered estimate of
 * de/dt; e_f starts at 0, like every state.
 *
 * On the start state (ctx->initial) every controller outputs u = 0: the reference starts at
 * u[0] = 0 with the network in its feedforward state. The first evaluation of a run
 * recomputes u from the inputs.
 *
 * Declared-order Euler with the controller stepped first reproduces step 2 of Algorithm 1:
 * the engine takes the derivative from the current inputs (e from r_L[k]) and the latched
 * output u[k], so u_int[k+1] = u_int[k] + dt (e - alpha u[k]) / tau_u, then recomputes
 * u[k+1] = u_int[k+1] + k_p e with the same e. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "apical/error.h"
#include "dfc_internal.h"

static const char *const ctl_inputs[] = {"rate", "target"};
static const char *const ctl_outputs[] = {"u"};
static const char *const pi_states[] = {"u_int"};
static const char *const pid_states[] = {"u_int", "e_f"};

enum { IN_RATE, IN_TARGET };

#define KP_DOC "proportional gain k_p"
#define ALPHA_DOC "leak of the integrator on u (the damping alpha of Lemma 1)"
#define TAU_U_DOC "time constant of the integrator (every other time constant is in its units)"

/* rate and target must have the same size; u_int, e_f and u have it too (the default). */
static int ctl_shape(const double *params, const int *in_size, int *state_size, int *out_size) {
    (void)params;
    (void)state_size;
    (void)out_size;
    if (in_size[IN_RATE] != in_size[IN_TARGET])
        return ap_error(AP_ESIZE, "input rate has %d values but target has %d", in_size[IN_RATE],
                        in_size[IN_TARGET]);
    return AP_OK;
}

/* u = u_int + k_p e (+ k_d (e - e_f) / tau_d); u_int and e_f may be NULL. */
static int ctl_output(const ap_block_ctx *c, double k_p, const double *u_int, double k_d,
                      double tau_d, const double *e_f) {
    const size_t n = (size_t)c->batch * (size_t)c->out_size[0];
    double *u = c->out[0];
    if (c->initial) {
        memset(u, 0, n * sizeof *u);
        return 0;
    }
    const double *rate = c->in[IN_RATE], *target = c->in[IN_TARGET];
    for (size_t i = 0; i < n; i++) {
        const double e = target[i] - rate[i];
        double ui = (u_int ? u_int[i] : 0.0) + k_p * e;
        if (e_f) ui += k_d * (e - e_f[i]) / tau_d;
        u[i] = ui;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(u[i])) return 1;
    return 0;
}

/* tau_u du_int/dt = e - alpha u, with u the current (latched) output. */
static void integrator_deriv(const ap_block_ctx *c, double alpha, double tau_u, double *d) {
    const size_t n = (size_t)c->batch * (size_t)c->state_size[0];
    const double *rate = c->in[IN_RATE], *target = c->in[IN_TARGET], *u = c->out[0];
    for (size_t i = 0; i < n; i++)
        d[i] = (target[i] - rate[i] - alpha * u[i]) / tau_u;
}

static int finite_all(const double *d, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(d[i])) return 0;
    return 1;
}

/* The deriv of dfc.pi and dfc.i (their one state u_int): 0, or 1 (recoverable) when not finite. */
static int integrator_block_deriv(const ap_block_ctx *c, double alpha, double tau_u, double *d) {
    integrator_deriv(c, alpha, tau_u, d);
    return finite_all(d, (size_t)c->batch * (size_t)c->state_size[0]) ? 0 : 1;
}

/* The descriptor fields every controller shares: inputs rate and target, output u, the shape
 * check. */
#define CTL_BLOCK_COMMON                                                                           \
    .abi_version = AP_ABI_VERSION, .struct_size = sizeof(ap_block_type), .n_inputs = 2,            \
    .inputs = ctl_inputs, .n_outputs = 1, .outputs = ctl_outputs, .shape = ctl_shape

/* ---- dfc.pi ------------------------------------------------------------------------------ */
enum { PI_K_P, PI_ALPHA, PI_TAU_U, PI_N };
static const ap_param_desc pi_params[PI_N] = {
    [PI_K_P] = {"k_p", 0.0, 0.0, DBL_MAX, KP_DOC},
    [PI_ALPHA] = {"alpha", 0.0, 0.0, DBL_MAX, ALPHA_DOC},
    [PI_TAU_U] = {"tau_u", 1.0, DBL_MIN, DBL_MAX, TAU_U_DOC},
};

static int pi_output(const ap_block_ctx *c) {
    return ctl_output(c, c->params[PI_K_P], c->state[0], 0.0, 1.0, NULL);
}

static int pi_deriv(const ap_block_ctx *c, double *const *d) {
    return integrator_block_deriv(c, c->params[PI_ALPHA], c->params[PI_TAU_U], d[0]);
}

static const ap_block_type pi_block = {
    CTL_BLOCK_COMMON,
    .name = "dfc.pi",
    .doc = "PI controller (4): e = target - rate, u = u_int + k_p e, tau_u du_int/dt = e - alpha u",
    .n_states = 1,
    .states = pi_states,
    .n_params = PI_N,
    .params = pi_params,
    .feedthrough = 1,
    .output = pi_output,
    .deriv = pi_deriv,
};

/* ---- dfc.i ------------------------------------------------------------------------------- */
enum { I_ALPHA, I_TAU_U, I_N };
static const ap_param_desc i_params[I_N] = {
    [I_ALPHA] = {"alpha", 0.0, 0.0, DBL_MAX, ALPHA_DOC},
    [I_TAU_U] = {"tau_u", 1.0, DBL_MIN, DBL_MAX, TAU_U_DOC},
};

static int i_output(const ap_block_ctx *c) {
    return ctl_output(c, 0.0, c->state[0], 0.0, 1.0, NULL);
}

static int i_deriv(const ap_block_ctx *c, double *const *d) {
    return integrator_block_deriv(c, c->params[I_ALPHA], c->params[I_TAU_U], d[0]);
}

static const ap_block_type i_block = {
    CTL_BLOCK_COMMON,
    .name = "dfc.i",
    .doc = "integral controller (4) with k_p = 0: u = u_int, tau_u du_int/dt = e - alpha u",
    .n_states = 1,
    .states = pi_states,
    .n_params = I_N,
    .params = i_params,
    .feedthrough = 0, /* u = u_int: the inputs act through the state only */
    .output = i_output,
    .deriv = i_deriv,
};

/* ---- dfc.p ------------------------------------------------------------------------------- */
enum { P_K_P, P_N };
static const ap_param_desc p_params[P_N] = {
    [P_K_P] = {"k_p", 1.0, 0.0, DBL_MAX, KP_DOC},
};

static int p_output(const ap_block_ctx *c) {
    return ctl_output(c, c->params[P_K_P], NULL, 0.0, 1.0, NULL);
}

static const ap_block_type p_block = {
    CTL_BLOCK_COMMON,
    .name = "dfc.p",
    .doc = "proportional controller: u = k_p (target - rate)",
    .n_params = P_N,
    .params = p_params,
    .feedthrough = 1,
    .output = p_output,
};

/* ---- dfc.pid ----------------------------------------------------------------------------- */
enum { PID_K_P, PID_K_D, PID_ALPHA, PID_TAU_U, PID_TAU_D, PID_N };
enum { S_U_INT, S_E_F };
static const ap_param_desc pid_params[PID_N] = {
    [PID_K_P] = {"k_p", 0.0, 0.0, DBL_MAX, KP_DOC},
    [PID_K_D] = {"k_d", 0.0, 0.0, DBL_MAX, "derivative gain k_d"},
    [PID_ALPHA] = {"alpha", 0.0, 0.0, DBL_MAX, ALPHA_DOC},
    [PID_TAU_U] = {"tau_u", 1.0, DBL_MIN, DBL_MAX, TAU_U_DOC},
    [PID_TAU_D] = {"tau_d", 0.1, DBL_MIN, DBL_MAX,
                   "time constant of the derivative filter: de/dt ~ (e - e_f)/tau_d"},
};

static int pid_output(const ap_block_ctx *c) {
    const double *p = c->params;
    return ctl_output(c, p[PID_K_P], c->state[S_U_INT], p[PID_K_D], p[PID_TAU_D], c->state[S_E_F]);
}

static int pid_deriv(const ap_block_ctx *c, double *const *d) {
    const double *p = c->params;
    const size_t n = (size_t)c->batch * (size_t)c->state_size[0];
    integrator_deriv(c, p[PID_ALPHA], p[PID_TAU_U], d[S_U_INT]);
    const double *rate = c->in[IN_RATE], *target = c->in[IN_TARGET], *e_f = c->state[S_E_F];
    const double tau_d = p[PID_TAU_D];
    for (size_t i = 0; i < n; i++)
        d[S_E_F][i] = (target[i] - rate[i] - e_f[i]) / tau_d;
    return finite_all(d[S_U_INT], n) && finite_all(d[S_E_F], n) ? 0 : 1;
}

static const ap_block_type pid_block = {
    CTL_BLOCK_COMMON,
    .name = "dfc.pid",
    .doc = "PID controller (App. A.8): u = u_int + k_p e + k_d (e - e_f)/tau_d, tau_u du_int/dt "
           "= e - alpha u, tau_d de_f/dt = e - e_f",
    .n_states = 2,
    .states = pid_states,
    .n_params = PID_N,
    .params = pid_params,
    .feedthrough = 1,
    .output = pid_output,
    .deriv = pid_deriv,
};

int dfc_register_controllers(ap_registry *r) {
    int rc = ap_registry_add_block(r, &pi_block, "dfc");
    if (!rc) rc = ap_registry_add_block(r, &i_block, "dfc");
    if (!rc) rc = ap_registry_add_block(r, &p_block, "dfc");
    if (!rc) rc = ap_registry_add_block(r, &pid_block, "dfc");
    return rc;
}
