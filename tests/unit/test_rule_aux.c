/* test_rule_aux.c — a plasticity rule's auxiliary signal (ap_model_set_rule_aux): a test rule
 * whose presynaptic factor is pre - aux (the source minus its low-pass filtered copy) on a
 * linear circuit, against the closed-form integral (CVODE quadrature, Euler) and against the
 * point-by-point sum from recordings (stacked euler-maruyama accumulation in declared order);
 * the error paths (unknown signal, no rule, no aux set). */
#include <float.h>
#include <stdlib.h>

#include "apical/error.h"
#include "apical/model.h"
#include "apical/registry.h"
#include "apical/sim.h"
#include "check.h"

/* test.highpass: post_j = eta (j + 1), pre = source - aux (needs aux of the source's size). */
static const ap_param_desc hp_params[] = {{"eta", 1.0, -DBL_MAX, DBL_MAX, "learning rate"}};

static int hp_factors(const ap_rule_ctx *c, double *post, double *pre) {
    if (!c->aux || c->n_aux != c->n_pre)
        return ap_error(AP_EINVAL, "test.highpass: needs an auxiliary signal of %d values",
                        c->n_pre);
    for (int b = 0; b < c->batch; b++) {
        for (int j = 0; j < c->n_post; j++)
            post[b * c->n_post + j] = c->params[0] * (j + 1);
        for (int k = 0; k < c->n_pre; k++)
            pre[b * c->n_pre + k] -= c->aux[b * c->n_pre + k];
    }
    return 0;
}

static const ap_rule_type hp_rule = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_rule_type),
    .name = "test.highpass",
    .doc = "post_j = eta (j + 1), pre = source - aux",
    .n_params = 1,
    .params = hp_params,
    .factors = hp_factors,
};

/* x (B x 2) -> h (linear rate neurons, tau 1, start 0) with W = I; lp = lowpass(h.rate, tau_l);
 * g (3 linear rate neurons) <- h.rate through the plastic projection P (bias, rule
 * test.highpass, aux lp.output). Per sample and unit, with a = x:
 *     v(t) = a (1 - e^-t),   y(t) = a (1 - (tau_l e^(-t/tau_l) - e^-t) / (tau_l - 1)),
 * and tau_l dy/dt = v - y gives int_0^T (v - y) dt = tau_l y(T). */
enum { B = 2, NX = 2, NG = 3 };
static const double TAU_L = 0.5, ETA = 0.7;
static const double X[B * NX] = {1.0, -2.0, 0.5, 3.0};

static ap_registry *new_registry(void) {
    ap_registry *r = NULL;
    CHECK_OK(ap_registry_new(&r));
    CHECK_OK(ap_registry_add_rule(r, &hp_rule, "test"));
    return r;
}

/* The circuit; aux: the auxiliary signal's name (NULL: none). P's id goes to *pid. */
static ap_model *circuit(ap_registry *r, const char *aux, int *pid) {
    ap_model *m = NULL;
    CHECK_OK(ap_model_new(&m, r, B));
    CHECK_OK(ap_model_add_input(m, "x", NX));
    ap_param tau1 = {"tau", 1.0};
    CHECK_OK(ap_model_add_population(m, "h", NX, "rate", "linear", &tau1, 1));
    CHECK_OK(ap_model_add_population(m, "g", NG, "rate", "linear", &tau1, 1));
    ap_connect_spec spec = {0};
    int id;
    CHECK_OK(ap_model_connect(m, "x", "h.soma", &spec, &id));
    double *W = ap_model_weights(m, id);
    W[0] = W[3] = 1.0;
    spec.bias = 1;
    spec.plastic = 1;
    CHECK_OK(ap_model_connect(m, "h.rate", "g.soma", &spec, pid));
    ap_param eta = {"eta", ETA};
    CHECK_OK(ap_model_add_rule(m, *pid, "test.highpass", &eta, 1));
    /* the auxiliary signal is named before its block exists: resolved at compile time */
    if (aux) CHECK_OK(ap_model_set_rule_aux(m, *pid, aux));
    ap_param taul = {"tau", TAU_L};
    const char *port = "input", *sig = "h.rate";
    CHECK_OK(ap_model_add_block(m, "lp", "lowpass", &taul, 1, &port, &sig, 1));
    return m;
}

/* The time-averaged update over [0, T] in closed form. */
static void closed_form(double T, double *dW, double *db) {
    for (int j = 0; j < NG; j++) {
        db[j] = B * ETA * (j + 1);
        for (int k = 0; k < NX; k++) {
            double s = 0.0;
            for (int b = 0; b < B; b++) {
                const double a = X[b * NX + k];
                const double y = a * (1.0 - (TAU_L * exp(-T / TAU_L) - exp(-T)) / (TAU_L - 1.0));
                s += TAU_L * y;
            }
            dW[j * NX + k] = ETA * (j + 1) * s / T;
        }
    }
}

static double rel_diff(const double *a, const double *b, int n) {
    double num = 0.0, den = 0.0;
    for (int i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / den);
}

static void test_closed_form(void) {
    ap_registry *r = new_registry();
    int pid;
    ap_model *m = circuit(r, "lp.output", &pid);
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    if (!s) goto done;
    CHECK_OK(ap_sim_set_input(s, "x", X, B * NX));
    const double T = 2.0;
    double want_W[NG * NX], want_b[NG];
    closed_form(T, want_W, want_b);
    /* CVODE: the rule integrated as a quadrature */
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = T;
    o.rtol = 1e-11;
    o.atol = 1e-13;
    o.quad_errcon = 1;
    ap_run_stats st;
    CHECK_OK(ap_sim_run(s, &o, &st));
    const double *dW, *db;
    CHECK_OK(ap_sim_accumulator(s, pid, &dW, &db, NULL));
    double e = rel_diff(dW, want_W, NG * NX);
    printf("cvode-bdf: dW[0][0] = %.12g (closed form %.12g), rel. diff %.2g\n", dW[0], want_W[0],
           e);
    CHECK(e < 1e-7);
    CHECK(rel_diff(db, want_b, NG) < 1e-12);
    /* the aux factor matters: without it, int v dt = a (T - 1 + e^-T) */
    double plain = 0.0;
    for (int b = 0; b < B; b++)
        plain += ETA * X[b * NX] * (T - 1.0 + exp(-T)) / T;
    CHECK(fabs(dW[0] - plain) > 0.1 * fabs(plain));
    /* Euler, every point (the stacked path without noise): O(dt) from the integral */
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_EULER;
    o.dt = 1e-4;
    o.steps = 20000;
    CHECK_OK(ap_sim_set_accumulation(s, AP_ACC_LEFT));
    CHECK_OK(ap_sim_run(s, &o, &st));
    CHECK_OK(ap_sim_accumulator(s, pid, &dW, &db, NULL));
    e = rel_diff(dW, want_W, NG * NX);
    printf("euler dt 1e-4: rel. diff %.2g\n", e);
    CHECK(e < 1e-3 && e > 1e-7);
    ap_sim_free(&s);
done:
    ap_model_free(&m);
    ap_registry_free(&r);
}

/* Declared-order euler-maruyama with noise on h.soma, stacked accumulation: the update equals
 * sum_k post (h.rate[k] - lp.output[k]) / points from the recordings, to rounding. */
static void test_stacked_noise(void) {
    ap_registry *r = new_registry();
    int pid;
    ap_model *m = circuit(r, "lp.output", &pid);
    ap_sim *s = NULL;
    CHECK_OK(ap_model_compile(m, &s));
    if (!s) goto done;
    CHECK_OK(ap_sim_set_input(s, "x", X, B * NX));
    static const char *const rec[] = {"h.rate", "lp.output"};
    static const char *const order[] = {"h", "lp", "g"};
    const char *noise[] = {"h.soma"};
    const double sigma[] = {0.4};
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_EULER_MARUYAMA;
    o.dt = 0.01;
    o.steps = 700; /* several stacks of 512 points (K B = 1024) */
    o.ordered = 1;
    o.order = order;
    o.n_order = 3;
    o.noise = noise;
    o.sigma = sigma;
    o.n_noise = 1;
    o.seed = 11;
    o.record = rec;
    o.n_record = 2;
    o.every = 1;
    ap_run_stats st;
    CHECK_OK(ap_sim_run(s, &o, &st));
    const double *hr, *lo;
    size_t nt = 0, nt2 = 0;
    CHECK_OK(ap_sim_recording(s, 0, &hr, NULL, &nt, NULL));
    CHECK_OK(ap_sim_recording(s, 1, &lo, NULL, &nt2, NULL));
    CHECK(nt == 701 && nt2 == nt);
    double want[NG * NX] = {0};
    for (size_t k = 0; k < nt; k++)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < NG; j++)
                for (int i = 0; i < NX; i++) {
                    const size_t q = k * B * NX + (size_t)b * NX + (size_t)i;
                    want[j * NX + i] += ETA * (j + 1) * (hr[q] - lo[q]) / (double)nt;
                }
    const double *dW, *db;
    CHECK_OK(ap_sim_accumulator(s, pid, &dW, &db, NULL));
    const double e = rel_diff(dW, want, NG * NX);
    printf("euler-maruyama, ordered, stacked: rel. diff %.2g\n", e);
    CHECK(e < 1e-12);
    /* the state rule (ap_sim_accumulate_state) sees the aux signal too */
    CHECK_OK(ap_sim_accumulate_state(s));
    CHECK_OK(ap_sim_accumulator(s, pid, &dW, &db, NULL));
    const size_t last = (nt - 1) * B * NX;
    double w0 = 0.0;
    for (int b = 0; b < B; b++)
        w0 += ETA * (hr[last + (size_t)b * NX] - lo[last + (size_t)b * NX]);
    CHECK(fabs(dW[0] - w0) < 1e-12 * (1.0 + fabs(w0)));
    ap_sim_free(&s);
done:
    ap_model_free(&m);
    ap_registry_free(&r);
}

static void test_errors(void) {
    ap_registry *r = new_registry();
    int pid;
    /* an unknown signal fails the compilation, naming the projection and the signal, with the
     * origin of the call that set it */
    ap_model *m = circuit(r, NULL, &pid);
    CHECK_OK(ap_model_set_origin(m, "model.lua:12"));
    CHECK_OK(ap_model_set_rule_aux(m, pid, "nope.output"));
    CHECK_OK(ap_model_set_origin(m, NULL));
    ap_sim *s = NULL;
    CHECK_FAILS(ap_model_compile(m, &s), AP_ENOTFOUND, "model.lua:12: projection h->g.soma");
    CHECK(strstr(ap_last_error(), "\"nope.output\"") != NULL);
    CHECK(s == NULL);
    /* NULL removes it; the rule then sees aux = NULL, n_aux = 0 and refuses to run */
    CHECK_OK(ap_model_set_rule_aux(m, pid, NULL));
    CHECK_OK(ap_model_compile(m, &s));
    if (s) {
        CHECK_OK(ap_sim_set_input(s, "x", X, B * NX));
        ap_run_opts o;
        ap_run_opts_default(&o);
        o.solver = AP_SOLVER_EULER;
        o.dt = 0.1;
        o.steps = 2;
        ap_run_stats st;
        CHECK_FAILS(ap_sim_run(s, &o, &st), AP_EINVAL,
                    "projection h->g.soma: rule test.highpass: test.highpass: needs an auxiliary");
        ap_sim_free(&s);
    }
    ap_model_free(&m);
    /* a projection without a rule, or no such projection */
    CHECK_OK(ap_model_new(&m, r, B));
    CHECK_OK(ap_model_add_input(m, "x", NX));
    ap_param tau1 = {"tau", 1.0};
    CHECK_OK(ap_model_add_population(m, "h", NX, "rate", "linear", &tau1, 1));
    ap_connect_spec spec = {0};
    CHECK_OK(ap_model_connect(m, "x", "h.soma", &spec, &pid));
    CHECK_FAILS(ap_model_set_rule_aux(m, pid, "x"), AP_EINVAL, "needs a rule");
    CHECK_FAILS(ap_model_set_rule_aux(m, 5, "x"), AP_EINVAL, "no projection with index 5");
    ap_model_free(&m);
    ap_registry_free(&r);
}

int main(void) {
    RUN(test_closed_form);
    RUN(test_stacked_noise);
    RUN(test_errors);
    return CHECK_DONE();
}
