/* dfc_test.h — shared helpers of the DFC plugin's tests: a registry with the plugin loaded, a
 * layered network built by the naming convention of docs/dfc.md with reproducible random
 * weights, and calls of the plugin's kernels with named arguments. */
#ifndef DFC_TEST_H
#define DFC_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/model.h"
#include "apical/optim.h"
#include "apical/plugin.h"
#include "apical/registry.h"
#include "apical/sim.h"
#include "check.h"

static ap_registry *reg;

static inline int dfc_setup(void) {
    if (ap_registry_new(&reg)) {
        fprintf(stderr, "registry: %s\n", ap_last_error());
        return 1;
    }
    if (ap_plugin_load(reg, "dfc", NULL)) {
        fprintf(stderr, "cannot load the dfc plugin: %s\n", ap_last_error());
        return 1;
    }
    return 0;
}

/* ---- reproducible numbers ----------------------------------------------------------------- */
static unsigned long long rng_state = 88172645463325252ull;
static inline double urand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 4503599627370496.0 - 1.0;
}
static inline void fill(double *x, size_t n, double a) {
    for (size_t i = 0; i < n; i++)
        x[i] = a * urand();
}

/* ---- the layered network ------------------------------------------------------------------ */
#define NET_MAX 6
typedef struct net_spec {
    int B, L;
    int n[NET_MAX + 1];
    const char *act[NET_MAX + 1]; /* act[1..L] */
    double tau_v, tau_A;
    const char *ctl; /* "dfc.pi", "dfc.i", "dfc.p", "dfc.pid" */
    double k_p, alpha;
    double w_scale, q_scale; /* uniform weights in [-w_scale, w_scale), Q likewise */
    int q_plastic;           /* 1: Q1..QL plastic (trainable by an optimiser) */
} net_spec;

/* The tests' usual network: hidden layers of activation `hidden`, the output `out`, tau_v = 0.2,
 * a PI controller with k_p = 1 and alpha = 0.1, weights and Q uniform in [-scale, scale); the
 * sizes n[0], ..., n[L] follow: NET_STD(3, "tanh", "linear", 0.9, 3, 4, 3, 2). */
static inline net_spec net_std_(int B, const char *hidden, const char *out, double scale,
                                const int *n, int count) {
    net_spec sp = {.B = B,
                   .L = count - 1,
                   .tau_v = 0.2,
                   .ctl = "dfc.pi",
                   .k_p = 1,
                   .alpha = 0.1,
                   .w_scale = scale,
                   .q_scale = scale};
    for (int i = 0; i < count && i <= NET_MAX; i++) {
        sp.n[i] = n[i];
        sp.act[i] = i == 0 ? NULL : i == count - 1 ? out : hidden;
    }
    return sp;
}
#define NET_STD(B, hidden, out, scale, ...)                                                        \
    net_std_((B), (hidden), (out), (scale), (const int[]){__VA_ARGS__},                            \
             (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)))

/* Builds x -> h1 -> ... -> hL with W1..WL (bias, forward_rule) and ctl reading hL and target:
 * everything but the feedback. */
static inline ap_model *net_build_forward(const net_spec *sp) {
    ap_model *m = NULL;
    char name[32], src[32], tgt[32];
    CHECK_OK(ap_model_new(&m, reg, sp->B));
    if (!m) return NULL;
    const int L = sp->L;
    CHECK_OK(ap_model_add_input(m, "x", sp->n[0]));
    CHECK_OK(ap_model_add_input(m, "target", sp->n[L]));
    ap_param pp[2] = {{"tau_v", sp->tau_v}, {"tau_A", sp->tau_A}};
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "h%d", i);
        CHECK_OK(ap_model_add_population(m, name, sp->n[i], "dfc.pyramidal", sp->act[i], pp, 2));
        CHECK_OK(ap_model_set_start(m, name, AP_START_SETTLED));
    }
    ap_param cp[2];
    int ncp = 0;
    if (strcmp(sp->ctl, "dfc.i")) cp[ncp++] = (ap_param){"k_p", sp->k_p};
    if (strcmp(sp->ctl, "dfc.p")) cp[ncp++] = (ap_param){"alpha", sp->alpha};
    const char *ports[] = {"rate", "target"};
    snprintf(src, sizeof src, "h%d", L);
    const char *sigs[] = {src, "target"};
    CHECK_OK(ap_model_add_block(m, "ctl", sp->ctl, cp, ncp, ports, sigs, 2));
    for (int i = 1; i <= L; i++) {
        int id;
        ap_connect_spec cs = {0};
        snprintf(name, sizeof name, "W%d", i);
        cs.name = name;
        cs.kind = AP_DENSE;
        cs.bias = 1;
        cs.plastic = 1;
        if (i == 1)
            snprintf(src, sizeof src, "x");
        else
            snprintf(src, sizeof src, "h%d", i - 1);
        snprintf(tgt, sizeof tgt, "h%d.basal", i);
        CHECK_OK(ap_model_connect(m, src, tgt, &cs, &id));
        CHECK_OK(ap_model_add_rule(m, id, "dfc.forward_rule", NULL, 0));
        fill(ap_model_weights(m, id), (size_t)sp->n[i] * sp->n[i - 1], sp->w_scale);
        fill(ap_model_bias(m, id), (size_t)sp->n[i], 0.3 * sp->w_scale);
    }
    return m;
}

/* net_build_forward plus Q1..QL from ctl.u onto the apical compartments. */
static inline ap_model *net_build(const net_spec *sp) {
    ap_model *m = net_build_forward(sp);
    if (!m) return NULL;
    char name[32], tgt[32];
    const int L = sp->L;
    for (int i = 1; i <= L; i++) {
        int id;
        ap_connect_spec cs = {0};
        snprintf(name, sizeof name, "Q%d", i);
        cs.name = name;
        cs.plastic = sp->q_plastic;
        snprintf(tgt, sizeof tgt, "h%d.apical", i);
        CHECK_OK(ap_model_connect(m, "ctl.u", tgt, &cs, &id));
        fill(ap_model_weights(m, id), (size_t)sp->n[i] * sp->n[L], sp->q_scale);
    }
    return m;
}

static inline double *proj_w(ap_model *m, const char *name);
static inline double *proj_b(ap_model *m, const char *name);

/* The hand case of Condition 1 (test_dfc_measures.c, test_dfc_measures_ref.c): 2-2-1, linear,
 * batch 2, W1 = 0 and b1 = (0, 4), so ||r_1|| = 4 whatever x; with x = (3, 0; 0, 0) the two
 * samples' layer norms are (3, 4) and (0, 4). */
static inline ap_model *net_condition1_hand(void) {
    net_spec sp = {.B = 2,
                   .L = 2,
                   .n = {2, 2, 1},
                   .act = {NULL, "linear", "linear"},
                   .tau_v = 1,
                   .ctl = "dfc.pi",
                   .w_scale = 1,
                   .q_scale = 1};
    ap_model *m = net_build(&sp);
    if (!m) return NULL;
    memset(proj_w(m, "W1"), 0, 4 * sizeof(double));
    proj_b(m, "W1")[0] = 0;
    proj_b(m, "W1")[1] = 4;
    return m;
}

static inline double *proj_w(ap_model *m, const char *name) {
    int id = -1;
    CHECK_OK(ap_model_find_projection(m, name, &id));
    return id >= 0 ? ap_model_weights(m, id) : NULL;
}
static inline double *proj_b(ap_model *m, const char *name) {
    int id = -1;
    CHECK_OK(ap_model_find_projection(m, name, &id));
    return id >= 0 ? ap_model_bias(m, id) : NULL;
}
static inline int proj_id(ap_model *m, const char *name) {
    int id = -1;
    CHECK_OK(ap_model_find_projection(m, name, &id));
    return id;
}

/* ---- kernel calls ------------------------------------------------------------------------- */
static inline ap_arg a_num(const char *name, double v) {
    ap_arg a = {0};
    a.name = name;
    a.kind = AP_ARG_NUMBER;
    a.number = v;
    return a;
}
static inline ap_arg a_str(const char *name, const char *s) {
    ap_arg a = {0};
    a.name = name;
    a.kind = AP_ARG_STRING;
    a.string = s;
    return a;
}
static inline ap_arg a_mat(const char *name, double *data, size_t rows, size_t cols) {
    ap_arg a = {0};
    a.name = name;
    a.kind = AP_ARG_ARRAY;
    a.data = data;
    a.ndim = 2;
    a.shape[0] = rows;
    a.shape[1] = cols;
    return a;
}
static inline ap_arg a_vec(const char *name, double *data, size_t n) {
    ap_arg a = {0};
    a.name = name;
    a.kind = AP_ARG_ARRAY;
    a.data = data;
    a.ndim = 1;
    a.shape[0] = n;
    return a;
}
static inline ap_arg a_obj(const char *name, ap_arg_kind kind, void *obj) {
    ap_arg a = {0};
    a.name = name;
    a.kind = kind;
    a.object = obj;
    return a;
}
static inline int kcall(const char *kernel, const ap_arg *args, int n) {
    const ap_kernel *k = ap_registry_kernel(reg, kernel);
    if (!k) return AP_ENOTFOUND;
    ap_kernel_args ka = {n, args};
    return k->call(&ka);
}
#define KCALL(kernel, ...)                                                                         \
    kcall(kernel, (const ap_arg[]){__VA_ARGS__},                                                   \
          (int)(sizeof((const ap_arg[]){__VA_ARGS__}) / sizeof(ap_arg)))

static inline double max_abs_diff(const double *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i] - b[i]) > m || a[i] != a[i] || b[i] != b[i])
            m = a[i] == a[i] && b[i] == b[i] ? fabs(a[i] - b[i]) : INFINITY;
    return m;
}
static inline double max_abs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

#endif
