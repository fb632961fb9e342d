/* test_registry.c — the registry (look-ups, duplicates, descriptor validation, closing) and the
 * built-in activations and initialisers. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/registry.h"
#include "check.h"

/* ---- descriptors for the tests ------------------------------------------------------------- */

static void ident_f(size_t n, const double *x, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

static void ident_df(size_t n, const double *x, double *d) {
    (void)x;
    for (size_t i = 0; i < n; i++)
        d[i] = 1.0;
}

static int fill_ones(const double *p, uint64_t seed, int rows, int cols, double *w) {
    (void)p;
    (void)seed;
    for (int i = 0; i < rows * cols; i++)
        w[i] = 1.0;
    return 0;
}

static int block_output(const ap_block_ctx *ctx) {
    (void)ctx;
    return 0;
}

static int block_deriv(const ap_block_ctx *ctx, double *const *dstate) {
    (void)ctx;
    (void)dstate;
    return 0;
}

static int rule_factors(const ap_rule_ctx *ctx, double *post, double *pre) {
    (void)ctx;
    (void)post;
    (void)pre;
    return 0;
}

static const ap_param_desc two_params[] = {
    {"tau_s", 1.0, 0.0, 100.0, "soma time constant"},
    {"tau_d", 2.0, 0.0, 100.0, "dendrite time constant"},
};

static const ap_compartment_desc two_comps[] = {
    {"dend", "tau_d", NULL},
    {"soma", "tau_s", "dend"},
};

static ap_activation act_desc(const char *name) {
    return (ap_activation){AP_ABI_VERSION, sizeof(ap_activation), name, "test", ident_f, ident_df};
}

static ap_neuron_type neuron_desc(const char *name) {
    return (ap_neuron_type){.abi_version = AP_ABI_VERSION,
                            .struct_size = sizeof(ap_neuron_type),
                            .name = name,
                            .doc = "two compartments",
                            .n_compartments = 2,
                            .compartments = two_comps,
                            .rate_of = 1,
                            .n_params = 2,
                            .params = two_params,
                            .dynamics = NULL};
}

static const char *const block_in[] = {"u"};
static const char *const block_states[] = {"s"};
static const char *const block_out[] = {"y"};

static ap_block_type block_desc(const char *name) {
    return (ap_block_type){.abi_version = AP_ABI_VERSION,
                           .struct_size = sizeof(ap_block_type),
                           .name = name,
                           .n_inputs = 1,
                           .inputs = block_in,
                           .n_states = 1,
                           .states = block_states,
                           .n_outputs = 1,
                           .outputs = block_out,
                           .output = block_output,
                           .deriv = block_deriv};
}

static ap_rule_type rule_desc(const char *name) {
    return (ap_rule_type){.abi_version = AP_ABI_VERSION,
                          .struct_size = sizeof(ap_rule_type),
                          .name = name,
                          .factors = rule_factors};
}

/* ---- creation, built-ins, look-ups ---------------------------------------------------------- */

static void test_new_free(void) {
    ap_registry *r = NULL;
    CHECK_OK(ap_registry_new(&r));
    CHECK(r != NULL);
    CHECK(!ap_registry_is_closed(r));
    ap_registry_free(&r);
    CHECK(r == NULL);
    ap_registry_free(&r); /* freeing twice is harmless */
    ap_registry_free(NULL);
    CHECK_FAILS(ap_registry_new(NULL), AP_EINVAL, "out");
}

static void test_builtins(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    const char *acts[] = {"linear", "identity", "tanh", "logistic", "sigmoid", "relu", "softplus"};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        const ap_activation *a = ap_registry_activation(r, acts[i]);
        CHECK(a != NULL);
        if (a) CHECK(strcmp(a->name, acts[i]) == 0);
    }
    const char *inits[] = {"zeros",         "constant",       "normal",  "uniform",
                           "xavier_normal", "xavier_uniform", "identity"};
    for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++) {
        const ap_initializer *d = ap_registry_initializer(r, inits[i]);
        CHECK(d != NULL);
        if (d) CHECK(strcmp(d->name, inits[i]) == 0);
    }
    /* aliases are descriptors of their own, computing the same function */
    const ap_activation *lin = ap_registry_activation(r, "linear");
    const ap_activation *id = ap_registry_activation(r, "identity");
    CHECK(lin && id && lin != id && lin->f == id->f);
    ap_registry_free(&r);
}

static void test_lookup_unknown(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    ap_neuron_type a = neuron_desc("t.pyramidal"), b = neuron_desc("t.interneuron");
    CHECK_OK(ap_registry_add_neuron(r, &a, "test"));
    CHECK_OK(ap_registry_add_neuron(r, &b, "test"));
    CHECK(ap_registry_neuron(r, "t.pyramidal") == &a);

    CHECK(ap_registry_neuron(r, "t.pyrmidal") == NULL);
    CHECK(strstr(ap_last_error(), "unknown neuron type \"t.pyrmidal\" (known: "));
    CHECK(strstr(ap_last_error(), "t.pyramidal, t.interneuron)"));

    CHECK(ap_registry_activation(r, "tanhh") == NULL);
    CHECK(strstr(ap_last_error(), "unknown activation \"tanhh\""));
    CHECK(strstr(ap_last_error(), "linear, identity, tanh"));
    CHECK(ap_registry_initializer(r, "xavier") == NULL);
    CHECK(strstr(ap_last_error(), "xavier_normal"));
    CHECK(ap_registry_block(r, "nosuchblock") == NULL);
    CHECK(strstr(ap_last_error(), "unknown block type \"nosuchblock\""));
    CHECK(ap_registry_rule(r, "nosuchrule") == NULL);
    CHECK(strstr(ap_last_error(), "unknown rule \"nosuchrule\""));
    CHECK(ap_registry_neuron(r, NULL) == NULL);
    CHECK(ap_registry_neuron(NULL, "x") == NULL);
    ap_registry_free(&r);
}

/* ap_registry_each: counts per kind, owners, early stop. */
typedef struct each_tally {
    int n, activations, neurons, blocks, rules, stop_after;
    int found_owner; /* "t.n" reported with owner "someone" */
} each_tally;

static int tally(void *ud, const char *kind, const char *name, const char *owner, const char *doc) {
    each_tally *t = ud;
    CHECK(doc != NULL);
    t->n++;
    if (!strcmp(kind, "activation")) t->activations++;
    if (!strcmp(kind, "neuron")) t->neurons++;
    if (!strcmp(kind, "block")) t->blocks++;
    if (!strcmp(kind, "rule")) t->rules++;
    if (!strcmp(name, "t.n") && !strcmp(owner, "someone")) t->found_owner = 1;
    return t->stop_after && t->n >= t->stop_after;
}

static void test_each(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    ap_neuron_type n = neuron_desc("t.n");
    ap_block_type b = block_desc("t.b");
    ap_rule_type u = rule_desc("t.r");
    CHECK_OK(ap_registry_add_neuron(r, &n, "someone"));
    CHECK_OK(ap_registry_add_block(r, &b, NULL)); /* owner defaults to "engine" */
    CHECK_OK(ap_registry_add_rule(r, &u, "test"));
    each_tally t = {0};
    ap_registry_each(r, tally, &t);
    CHECK(t.activations == 7);
    CHECK(t.neurons >= 1 && t.blocks >= 1 && t.rules >= 1);
    CHECK(t.found_owner);
    each_tally s = {.stop_after = 3};
    ap_registry_each(r, tally, &s);
    CHECK(s.n == 3);
    ap_registry_free(&r);
}

/* ---- failures of registration ---------------------------------------------------------------- */

static void test_duplicates(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    ap_activation t = act_desc("tanh");
    CHECK_FAILS(ap_registry_add_activation(r, &t, "test"), AP_EDUP, "activation \"tanh\"");
    CHECK(strstr(ap_last_error(), "engine"));
    ap_neuron_type n = neuron_desc("t.n");
    CHECK_OK(ap_registry_add_neuron(r, &n, "test"));
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "other"), AP_EDUP, "neuron type \"t.n\"");
    /* the same name in another kind is no conflict */
    ap_block_type b = block_desc("t.n");
    CHECK_OK(ap_registry_add_block(r, &b, "test"));
    ap_registry_free(&r);
}

static void test_bad_headers(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    CHECK_FAILS(ap_registry_add_activation(r, NULL, "t"), AP_EINVAL, "descriptor is NULL");
    CHECK_FAILS(ap_registry_add_activation(NULL, NULL, "t"), AP_EINVAL, "registry is NULL");

    ap_activation a = act_desc("t.act");
    a.abi_version = ((AP_ABI_MAJOR + 1) << 16) | 2;
    CHECK_FAILS(ap_registry_add_activation(r, &a, "t"), AP_EABI, "ABI 2.2");
    CHECK(strstr(ap_last_error(), "t.act"));
    CHECK(strstr(ap_last_error(), "ABI 1.1"));

    a = act_desc("t.act");
    a.abi_version = AP_ABI_VERSION + 7; /* a newer minor version is accepted */
    CHECK_OK(ap_registry_add_activation(r, &a, "t"));

    a = act_desc("t.small");
    a.struct_size = 16;
    CHECK_FAILS(ap_registry_add_activation(r, &a, "t"), AP_EABI, "struct_size 16");

    a = act_desc("");
    CHECK_FAILS(ap_registry_add_activation(r, &a, "t"), AP_EINVAL, "empty name");
    a = act_desc(NULL);
    CHECK_FAILS(ap_registry_add_activation(r, &a, "t"), AP_EINVAL, "empty name");

    a = act_desc("t.nof");
    a.f = NULL;
    CHECK_FAILS(ap_registry_add_activation(r, &a, "t"), AP_EINVAL, "\"t.nof\": f is NULL");
    a = act_desc("t.nodf");
    a.df = NULL;
    CHECK_FAILS(ap_registry_add_activation(r, &a, "t"), AP_EINVAL, "\"t.nodf\": df is NULL");

    ap_initializer in = {AP_ABI_VERSION, sizeof(ap_initializer), "t.init", "", 0, NULL, NULL};
    CHECK_FAILS(ap_registry_add_initializer(r, &in, "t"), AP_EINVAL, "fill is NULL");
    in.fill = fill_ones;
    in.n_params = 1;
    CHECK_FAILS(ap_registry_add_initializer(r, &in, "t"), AP_EINVAL, "params is NULL");
    in.n_params = 0;
    CHECK_OK(ap_registry_add_initializer(r, &in, "t"));
    ap_registry_free(&r);
}

static void test_bad_params(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    ap_param_desc p[2] = {{"a", 5.0, 0.0, 1.0, ""}, {"b", 0.0, 0.0, 1.0, ""}};
    ap_rule_type u = rule_desc("t.rule");
    u.n_params = 2;
    u.params = p;
    CHECK_FAILS(ap_registry_add_rule(r, &u, "t"), AP_EINVAL,
                "parameter \"a\" has default 5 outside [0, 1]");
    p[0] = (ap_param_desc){"a", 0.5, 2.0, 1.0, ""};
    CHECK_FAILS(ap_registry_add_rule(r, &u, "t"), AP_EINVAL, "min 2 > max 1");
    p[0] = (ap_param_desc){"a", NAN, 0.0, 1.0, ""};
    CHECK_FAILS(ap_registry_add_rule(r, &u, "t"), AP_EINVAL, "NaN");
    p[0] = (ap_param_desc){"b", 0.5, 0.0, 1.0, ""};
    CHECK_FAILS(ap_registry_add_rule(r, &u, "t"), AP_EDUP, "parameter \"b\" declared twice");
    p[0] = (ap_param_desc){"", 0.5, 0.0, 1.0, ""};
    CHECK_FAILS(ap_registry_add_rule(r, &u, "t"), AP_EINVAL, "parameter 0 has an empty name");
    p[0] = (ap_param_desc){"a", 1.0, 0.0, 1.0, ""}; /* bounds are inclusive */
    CHECK_OK(ap_registry_add_rule(r, &u, "t"));

    ap_rule_type v = rule_desc("t.nofactors");
    v.factors = NULL;
    CHECK_FAILS(ap_registry_add_rule(r, &v, "t"), AP_EINVAL, "factors is NULL");
    ap_registry_free(&r);
}

static void test_bad_neurons(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    ap_neuron_type n = neuron_desc("t.n");
    n.n_compartments = 0;
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EINVAL, "n_compartments = 0 < 1");
    n = neuron_desc("t.n");
    n.compartments = NULL;
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EINVAL, "compartments is NULL");
    n = neuron_desc("t.n");
    n.rate_of = 2;
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EINVAL, "rate_of = 2");
    n.rate_of = -1;
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EINVAL, "rate_of = -1");

    ap_compartment_desc c[3];
    n = neuron_desc("t.n");
    n.compartments = c;
    c[0] = (ap_compartment_desc){"dend", "tau_d", NULL};
    c[1] = (ap_compartment_desc){"soma", "tau_x", NULL};
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EINVAL, "tau_param \"tau_x\"");
    c[1] = (ap_compartment_desc){"soma", "tau_s", "dend, bsal"};
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EINVAL,
                "compartment \"soma\" feeds \"bsal\", which is not");
    c[1] = (ap_compartment_desc){"soma", "tau_s", "dend,,dend"};
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EINVAL, "empty name in feeds");
    c[1] = (ap_compartment_desc){"dend", "tau_s", NULL};
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EDUP, "compartment \"dend\" declared twice");
    c[1] = (ap_compartment_desc){"", "tau_s", NULL};
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EINVAL, "compartment 1 has an empty name");
    /* feeding a later compartment needs it to have a state, i.e. a tau_param */
    c[0] = (ap_compartment_desc){"dend", "tau_d", "soma"};
    c[1] = (ap_compartment_desc){"soma", NULL, NULL};
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EINVAL, "computed later");
    c[0] = (ap_compartment_desc){"dend", NULL, "dend"};
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_EINVAL, "itself");
    /* ... and is fine when it has one; blanks around names are ignored */
    n.n_compartments = 3;
    n.rate_of = 2;
    c[0] = (ap_compartment_desc){"dend", "tau_d", " soma "};
    c[1] = (ap_compartment_desc){"soma", "tau_s", "dend"};
    c[2] = (ap_compartment_desc){"out", NULL, "soma,dend"};
    CHECK_OK(ap_registry_add_neuron(r, &n, "t"));
    CHECK(ap_registry_neuron(r, "t.n") == &n);
    ap_registry_free(&r);
}

static void test_bad_blocks(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    ap_block_type b = block_desc("t.b");
    b.output = NULL;
    CHECK_FAILS(ap_registry_add_block(r, &b, "t"), AP_EINVAL, "block type \"t.b\": output is NULL");
    b = block_desc("t.b");
    b.deriv = NULL;
    CHECK_FAILS(ap_registry_add_block(r, &b, "t"), AP_EINVAL, "deriv is NULL but it has 1 state");
    b.n_states = 0; /* a stateless block needs no deriv */
    CHECK_OK(ap_registry_add_block(r, &b, "t"));

    b = block_desc("t.b2");
    b.inputs = NULL;
    CHECK_FAILS(ap_registry_add_block(r, &b, "t"), AP_EINVAL, "inputs is NULL");
    const char *const two[] = {"y", "y"};
    b = block_desc("t.b2");
    b.n_outputs = 2;
    b.outputs = two;
    CHECK_FAILS(ap_registry_add_block(r, &b, "t"), AP_EDUP, "output \"y\" declared twice");
    b = block_desc("t.b2");
    b.n_inputs = 0;
    b.inputs = NULL;
    CHECK_FAILS(ap_registry_add_block(r, &b, "t"), AP_EINVAL, "no inputs and no shape");
    ap_registry_free(&r);
}

static void test_closed(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    ap_registry_close(r);
    CHECK(ap_registry_is_closed(r));
    ap_activation a = act_desc("t.late");
    CHECK_FAILS(ap_registry_add_activation(r, &a, "t"), AP_ESTATE, "\"t.late\"");
    CHECK(strstr(ap_last_error(), "closed"));
    ap_neuron_type n = neuron_desc("t.late");
    CHECK_FAILS(ap_registry_add_neuron(r, &n, "t"), AP_ESTATE, "closed");
    /* look-ups still work */
    CHECK(ap_registry_activation(r, "tanh") != NULL);
    ap_registry_free(&r);
}

/* ---- activations ---------------------------------------------------------------------------- */

static void test_activation_derivatives(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    const char *names[] = {"linear", "identity", "tanh", "logistic", "sigmoid", "relu", "softplus"};
    /* away from relu's kink at 0 */
    const double x[] = {-4.0, -1.3, -0.2, 0.3, 0.9, 2.2, 5.0};
    enum { NX = sizeof x / sizeof x[0] };
    const double h = 1e-6;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const ap_activation *a = ap_registry_activation(r, names[k]);
        CHECK(a != NULL);
        if (!a) continue;
        double xp[NX], xm[NX], yp[NX], ym[NX], d[NX];
        for (int i = 0; i < NX; i++) {
            xp[i] = x[i] + h;
            xm[i] = x[i] - h;
        }
        a->f(NX, xp, yp);
        a->f(NX, xm, ym);
        a->df(NX, x, d);
        for (int i = 0; i < NX; i++)
            CHECK_NEAR(d[i], (yp[i] - ym[i]) / (2 * h), 1e-7);
    }
    ap_registry_free(&r);
}

static void test_activation_values(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    const double x[] = {-1000.0, -1.0, 0.0, 1.0, 1000.0};
    double y[5], d[5];
    const ap_activation *sp = ap_registry_activation(r, "softplus");
    sp->f(5, x, y);
    sp->df(5, x, d);
    CHECK_NEAR(y[0], 0.0, 1e-300);
    CHECK_NEAR(y[1], log1p(exp(-1.0)), 1e-15);
    CHECK_NEAR(y[2], log(2.0), 1e-15);
    CHECK_NEAR(y[3], 1.0 + log1p(exp(-1.0)), 1e-15);
    CHECK_NEAR(y[4], 1000.0, 1e-12); /* log(1 + e^1000) without overflow */
    CHECK_NEAR(d[0], 0.0, 1e-300);
    CHECK_NEAR(d[4], 1.0, 1e-15);

    const ap_activation *lg = ap_registry_activation(r, "logistic");
    lg->f(5, x, y);
    CHECK_NEAR(y[0], 0.0, 1e-300);
    CHECK_NEAR(y[2], 0.5, 0);
    CHECK_NEAR(y[4], 1.0, 0);
    CHECK_NEAR(y[3] + y[1], 1.0, 1e-15);

    const ap_activation *re = ap_registry_activation(r, "relu");
    re->f(5, x, y);
    re->df(5, x, d);
    CHECK(y[0] == 0.0 && y[2] == 0.0 && y[3] == 1.0 && y[4] == 1000.0);
    CHECK(d[0] == 0.0 && d[2] == 0.0 && d[3] == 1.0);

    /* NaN is passed on, never hidden */
    const double nan_in[1] = {NAN};
    const char *names[] = {"linear", "tanh", "logistic", "relu", "softplus"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const ap_activation *a = ap_registry_activation(r, names[k]);
        a->f(1, nan_in, y);
        a->df(1, nan_in, d);
        CHECK(isnan(y[0]));
        CHECK(isnan(d[0]));
    }
    ap_registry_free(&r);
}

/* ---- initialisers --------------------------------------------------------------------------- */

/* Fills with the descriptor's default parameters, except p0 for the first when given. */
static int fill(const ap_initializer *d, const double *params, uint64_t seed, int rows, int cols,
                double *w) {
    double def[8];
    for (int i = 0; i < d->n_params && i < 8; i++)
        def[i] = d->params[i].def;
    return d->fill(params ? params : def, seed, rows, cols, w);
}

static void mean_std(const double *w, size_t n, double *mean, double *std) {
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        s += w[i];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (w[i] - *mean) * (w[i] - *mean);
    *std = sqrt(ss / (double)(n - 1));
}

static void test_init_determinism(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    const char *names[] = {"normal", "uniform", "xavier_normal", "xavier_uniform"};
    enum { ROWS = 7, COLS = 5, N = ROWS * COLS };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const ap_initializer *d = ap_registry_initializer(r, names[k]);
        double a[N], b[N], c[N], e[N];
        CHECK_OK(fill(d, NULL, 42, ROWS, COLS, a));
        CHECK_OK(fill(d, NULL, 42, ROWS, COLS, b));
        CHECK_OK(fill(d, NULL, 43, ROWS, COLS, c));
        CHECK_OK(fill(d, NULL, 42 + (1ull << 32), ROWS, COLS, e)); /* high bits count too */
        CHECK(memcmp(a, b, sizeof a) == 0);
        int differ = 0, differ_high = 0;
        for (int i = 0; i < N; i++) {
            differ += a[i] != c[i];
            differ_high += a[i] != e[i];
        }
        CHECK(differ == N);
        CHECK(differ_high == N);
    }
    ap_registry_free(&r);
}

static void test_init_statistics(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    enum { ROWS = 200, COLS = 300 };
    const size_t n = (size_t)ROWS * COLS;
    double *w = malloc(n * sizeof *w);
    double mean, std;

    /* xavier_normal: std = gain sqrt(2 / (fan_in + fan_out)); the sample std's relative error
     * is about 1 / sqrt(2n) = 0.3 %, so 2 % is far outside chance */
    const ap_initializer *xn = ap_registry_initializer(r, "xavier_normal");
    double gain = 1.5;
    CHECK_OK(fill(xn, &gain, 7, ROWS, COLS, w));
    mean_std(w, n, &mean, &std);
    double expect = gain * sqrt(2.0 / (ROWS + COLS));
    CHECK_NEAR(std, expect, 0.02 * expect);
    CHECK_NEAR(mean, 0.0, 5 * expect / sqrt((double)n));

    /* xavier_uniform: inside (-a, a), std a / sqrt(3) */
    const ap_initializer *xu = ap_registry_initializer(r, "xavier_uniform");
    CHECK_OK(fill(xu, NULL, 7, ROWS, COLS, w));
    double a = sqrt(6.0 / (ROWS + COLS)), lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, w[i]);
        hi = fmax(hi, w[i]);
    }
    CHECK(lo >= -a && hi < a);
    CHECK(lo < -0.99 * a && hi > 0.99 * a);
    mean_std(w, n, &mean, &std);
    CHECK_NEAR(std, a / sqrt(3.0), 0.02 * a / sqrt(3.0));

    /* normal {mean, std} and uniform {low, high} */
    const ap_initializer *no = ap_registry_initializer(r, "normal");
    double np[2] = {3.0, 0.25};
    CHECK_OK(fill(no, np, 1, ROWS, COLS, w));
    mean_std(w, n, &mean, &std);
    CHECK_NEAR(mean, 3.0, 5 * 0.25 / sqrt((double)n));
    CHECK_NEAR(std, 0.25, 0.02 * 0.25);

    const ap_initializer *un = ap_registry_initializer(r, "uniform");
    double up[2] = {2.0, 4.0};
    CHECK_OK(fill(un, up, 1, ROWS, COLS, w));
    lo = INFINITY;
    hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, w[i]);
        hi = fmax(hi, w[i]);
    }
    CHECK(lo >= 2.0 && hi < 4.0);
    mean_std(w, n, &mean, &std);
    CHECK_NEAR(mean, 3.0, 0.01);
    free(w);
    ap_registry_free(&r);
}

static void test_init_fixed(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    double w[15];
    const ap_initializer *id = ap_registry_initializer(r, "identity");
    CHECK_OK(fill(id, NULL, 0, 3, 5, w)); /* rectangular: ones on the main diagonal */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++)
            CHECK(w[i * 5 + j] == (i == j ? 1.0 : 0.0));
    CHECK_OK(fill(id, NULL, 0, 5, 3, w));
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++)
            CHECK(w[i * 3 + j] == (i == j ? 1.0 : 0.0));

    const ap_initializer *z = ap_registry_initializer(r, "zeros");
    for (int i = 0; i < 15; i++)
        w[i] = 9;
    CHECK_OK(fill(z, NULL, 0, 3, 5, w));
    for (int i = 0; i < 15; i++)
        CHECK(w[i] == 0.0);

    const ap_initializer *c = ap_registry_initializer(r, "constant");
    CHECK(c->n_params == 1 && strcmp(c->params[0].name, "value") == 0);
    double v = -2.5;
    CHECK_OK(fill(c, &v, 0, 3, 5, w));
    for (int i = 0; i < 15; i++)
        CHECK(w[i] == -2.5);

    /* empty matrices are fine, NULL is then allowed */
    CHECK_OK(fill(ap_registry_initializer(r, "xavier_normal"), NULL, 1, 0, 4, NULL));
    ap_registry_free(&r);
}

static void test_init_errors(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    double w[4];
    const ap_initializer *un = ap_registry_initializer(r, "uniform");
    double bad[2] = {1.0, -1.0};
    CHECK_FAILS(un->fill(bad, 1, 2, 2, w), AP_EINVAL, "low = 1 > high = -1");
    const ap_initializer *no = ap_registry_initializer(r, "normal");
    double nanp[2] = {NAN, 1.0};
    CHECK_FAILS(no->fill(nanp, 1, 2, 2, w), AP_EINVAL, "mean = nan is not finite");
    CHECK_FAILS(no->fill(NULL, 1, 2, 2, w), AP_EINVAL, "parameter values are NULL");
    CHECK_FAILS(fill(no, NULL, 1, -1, 2, w), AP_EINVAL, "negative shape -1 x 2");
    CHECK_FAILS(fill(no, NULL, 1, 2, 2, NULL), AP_EINVAL, "is NULL");
    const ap_initializer *xn = ap_registry_initializer(r, "xavier_normal");
    double g = -1.0;
    CHECK_FAILS(xn->fill(&g, 1, 2, 2, w), AP_EINVAL, "gain = -1 < 0");
    ap_registry_free(&r);
}

int main(void) {
    RUN(test_new_free);
    RUN(test_builtins);
    RUN(test_lookup_unknown);
    RUN(test_each);
    RUN(test_duplicates);
    RUN(test_bad_headers);
    RUN(test_bad_params);
    RUN(test_bad_neurons);
    RUN(test_bad_blocks);
    RUN(test_closed);
    RUN(test_activation_derivatives);
    RUN(test_activation_values);
    RUN(test_init_determinism);
    RUN(test_init_statistics);
    RUN(test_init_fixed);
    RUN(test_init_errors);
    return CHECK_DONE();
}
