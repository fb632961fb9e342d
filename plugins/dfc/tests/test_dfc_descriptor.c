/* test_dfc_descriptor.c — the network descriptor (docs/dfc.md, "The network descriptor"): a
 * network whose objects have names of the user's choosing, given to the kernels by its
 * descriptor { L, ids of W_1..W_L, ids of Q_1..Q_L }, gives bit for bit the results of the same
 * network under the convention's names found without one (every kernel that reads a network);
 * a network deeper than the former limit of 64 layers works, by name and by descriptor, and
 * its feedforward pass matches a hand computation; malformed descriptors fail naming the fault. */
#include <math.h>

#include "dfc_test.h"

enum { B = 4, L3 = 3 };
static const int sizes[L3 + 1] = {5, 6, 4, 3};

/* The network of sizes[] with the naming scheme `conv` (1: x, h<i>, W<i>, Q<i>; 0: the user's
 * names "pixels", "stage_<i>", "ff_<i>", "fb_<i>"), the same weights for both (the generator
 * restarts at the same state). ids[1..L] receive the W ids, ids[L+1..2L] the Q ids. */
static ap_model *build(int conv, int L, const int *n, const char *hidden_act, double *ids) {
    ap_model *m = NULL;
    char name[32], src[32], tgt[48];
    rng_state = 88172645463325252ull;
    CHECK_OK(ap_model_new(&m, reg, B));
    CHECK_OK(ap_model_add_input(m, conv ? "x" : "pixels", n[0]));
    CHECK_OK(ap_model_add_input(m, "target", n[L]));
    ap_param pp[2] = {{"tau_v", 0.2}, {"tau_A", 0.0}};
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, conv ? "h%d" : "stage_%d", i);
        CHECK_OK(ap_model_add_population(m, name, n[i], "dfc.pyramidal",
                                         i == L ? "linear" : hidden_act, pp, 2));
    }
    ap_param cp[2] = {{"k_p", 1.5}, {"alpha", 0.1}};
    const char *ports[] = {"rate", "target"};
    snprintf(src, sizeof src, conv ? "h%d" : "stage_%d", L);
    const char *sigs[] = {src, "target"};
    CHECK_OK(ap_model_add_block(m, "ctl", "dfc.pi", cp, 2, ports, sigs, 2));
    for (int i = 1; i <= L; i++) {
        int id = -1;
        ap_connect_spec cs = {0};
        snprintf(name, sizeof name, conv ? "W%d" : "ff_%d", i);
        cs.name = name;
        cs.bias = 1;
        cs.plastic = 1;
        if (i == 1)
            snprintf(src, sizeof src, conv ? "x" : "pixels");
        else
            snprintf(src, sizeof src, conv ? "h%d" : "stage_%d", i - 1);
        snprintf(tgt, sizeof tgt, conv ? "h%d.basal" : "stage_%d.basal", i);
        CHECK_OK(ap_model_connect(m, src, tgt, &cs, &id));
        fill(ap_model_weights(m, id), (size_t)n[i] * n[i - 1], 0.8);
        fill(ap_model_bias(m, id), (size_t)n[i], 0.2);
        ids[i] = id;
    }
    for (int i = 1; i <= L; i++) {
        int id = -1;
        ap_connect_spec cs = {0};
        snprintf(name, sizeof name, conv ? "Q%d" : "fb_%d", i);
        cs.name = name;
        cs.plastic = 1;
        snprintf(tgt, sizeof tgt, conv ? "h%d.apical" : "stage_%d.apical", i);
        CHECK_OK(ap_model_connect(m, "ctl.u", tgt, &cs, &id));
        fill(ap_model_weights(m, id), (size_t)n[i] * n[L], 0.6);
        ids[L + i] = id;
    }
    ids[0] = L;
    return m;
}

static ap_optim *all_params(ap_model *m) {
    ap_optim *o = NULL;
    const int np = ap_model_n_projections(m);
    int *ids = malloc((size_t)np * sizeof *ids);
    for (int k = 0; k < np; k++)
        ids[k] = k;
    ap_optim_opts oo;
    ap_optim_opts_default(&oo);
    CHECK_OK(ap_optim_new(&o, m, ids, np, &oo));
    free(ids);
    return o;
}

/* every gradient of both optimisers, bit for bit */
static void check_same_grads(ap_optim *a, ap_optim *b, const char *what) {
    const size_t n = ap_optim_grad_count(a);
    CHECK(n == ap_optim_grad_count(b) && n > 0);
    double *ga = calloc(n, sizeof *ga), *gb = calloc(n, sizeof *gb);
    CHECK_OK(ap_optim_grad_pack(a, ga));
    CHECK_OK(ap_optim_grad_pack(b, gb));
    if (memcmp(ga, gb, n * sizeof *ga)) {
        fprintf(stderr, "%s: gradients differ (max %g)\n", what, max_abs_diff(ga, gb, n));
        CHECK(0);
    }
    CHECK(max_abs(ga, n) > 0);
    free(ga);
    free(gb);
    CHECK_OK(ap_optim_zero(a));
    CHECK_OK(ap_optim_zero(b));
}

#define SAME(a, b, n, what)                                                                        \
    do {                                                                                           \
        if (memcmp((a), (b), (n) * sizeof *(a))) {                                                 \
            fprintf(stderr, "%s: results differ (max %g)\n", what, max_abs_diff(a, b, n));         \
            CHECK(0);                                                                              \
        }                                                                                          \
    } while (0)

static void test_user_names(void) {
    double dc[2 * L3 + 1], du[2 * L3 + 1];
    ap_model *mc = build(1, L3, sizes, "tanh", dc), *mu = build(0, L3, sizes, "tanh", du);
    ap_arg nu = a_vec("net", du, 2 * L3 + 1);
    const int n0 = sizes[0], nL = sizes[L3], N = 6 + 4 + 3;
    double x[B * 5], tgt[B * 3], outc[B * 3 * 13], outu[B * 3 * 13];
    double imc[B * 16], imu[B * 16];
    fill(x, B * n0, 1.0);
    fill(tgt, B * nL, 0.5);
    /* without the descriptor, the user's names are not the convention's */
    CHECK_FAILS(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, n0),
                      a_mat("out", outu, B, nL)),
                AP_ENOTFOUND, "no input \"x\"");
#define BOTH(call_c, call_u, len, what)                                                            \
    do {                                                                                           \
        memset(outc, 0, sizeof outc);                                                              \
        memset(outu, 0, sizeof outu);                                                              \
        CHECK_OK(call_c);                                                                          \
        CHECK_OK(call_u);                                                                          \
        SAME(outc, outu, len, what);                                                               \
    } while (0)
    BOTH(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, n0),
               a_mat("out", outc, B, nL)),
         KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, n0),
               a_mat("out", outu, B, nL), nu),
         B * nL, "dfc.forward");
    ap_arg sh3 = {.name = "out", .kind = AP_ARG_ARRAY, .ndim = 3, .shape = {B, 3, 13}};
    ap_arg shc = sh3, shu = sh3;
    shc.data = outc, shu.data = outu;
    BOTH(KCALL("dfc.jacobian", a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, n0), shc),
         KCALL("dfc.jacobian", a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, n0), shu, nu),
         B * nL * N, "dfc.jacobian");
    BOTH(KCALL("dfc.condition1", a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, n0),
               a_vec("out", outc, B)),
         KCALL("dfc.condition1", a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, n0),
               a_vec("out", outu, B), nu),
         B, "dfc.condition1");
    BOTH(KCALL("dfc.condition2", a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, n0),
               a_vec("out", outc, B)),
         KCALL("dfc.condition2", a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, n0),
               a_vec("out", outu, B), nu),
         B, "dfc.condition2");
    BOTH(KCALL("dfc.jq_eigen", a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, n0),
               a_mat("out_re", outc, B, nL), a_mat("out_im", imc, B, nL)),
         KCALL("dfc.jq_eigen", a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, n0),
               a_mat("out_re", outu, B, nL), a_mat("out_im", imu, B, nL), nu),
         B * nL, "dfc.jq_eigen");
    SAME(imc, imu, B * nL, "dfc.jq_eigen (imaginary parts)");
    BOTH(KCALL("dfc.stability", a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, n0),
               a_mat("target", tgt, B, nL), a_num("alpha", 0.1), a_num("k_p", 1.5),
               a_num("tau_v", 0.2), a_vec("out", outc, B), a_mat("out_re", outc + B, B, N + nL),
               a_mat("out_im", imc, B, N + nL)),
         KCALL("dfc.stability", a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, n0),
               a_mat("target", tgt, B, nL), a_num("alpha", 0.1), a_num("k_p", 1.5),
               a_num("tau_v", 0.2), a_vec("out", outu, B), a_mat("out_re", outu + B, B, N + nL),
               a_mat("out_im", imu, B, N + nL), nu),
         B + B * (N + nL), "dfc.stability");
    SAME(imc, imu, B * (N + nL), "dfc.stability (imaginary parts)");

    /* the gradient kernels, through an optimiser over every projection */
    ap_optim *oc = all_params(mc), *ou = all_params(mu);
    BOTH(KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, n0),
               a_mat("target", tgt, B, nL), a_num("alpha", 0.1), a_obj("optim", AP_ARG_OPTIM, oc),
               a_mat("u_out", outc, B, nL)),
         KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, n0),
               a_mat("target", tgt, B, nL), a_num("alpha", 0.1), a_obj("optim", AP_ARG_OPTIM, ou),
               a_mat("u_out", outu, B, nL), nu),
         B * nL, "dfc.ssa (u)");
    check_same_grads(oc, ou, "dfc.ssa");
    const char *grad_kernels[] = {"dfc.bp", "dfc.dfa"};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(KCALL(grad_kernels[k], a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, n0),
                       a_mat("y", tgt, B, nL), a_str("loss", "mse"),
                       a_obj("optim", AP_ARG_OPTIM, oc)));
        CHECK_OK(KCALL(grad_kernels[k], a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, n0),
                       a_mat("y", tgt, B, nL), a_str("loss", "mse"),
                       a_obj("optim", AP_ARG_OPTIM, ou), nu));
        check_same_grads(oc, ou, grad_kernels[k]);
    }
    const char *align_kernels[] = {"dfc.mn_update", "dfc.gn_update"};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(KCALL(align_kernels[k], a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, n0),
                       a_mat("target", tgt, B, nL), a_num("gamma", 0.1),
                       a_obj("optim", AP_ARG_OPTIM, oc)));
        CHECK_OK(KCALL(align_kernels[k], a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, n0),
                       a_mat("target", tgt, B, nL), a_num("gamma", 0.1),
                       a_obj("optim", AP_ARG_OPTIM, ou), nu));
        check_same_grads(oc, ou, align_kernels[k]);
    }
    ap_optim_free(&oc);
    ap_optim_free(&ou);

    /* weight_product writes Q in place; copy_weights between a named and a described network */
    CHECK_OK(KCALL("dfc.weight_product", a_obj("model", AP_ARG_MODEL, mc)));
    CHECK_OK(KCALL("dfc.weight_product", a_obj("model", AP_ARG_MODEL, mu), nu));
    for (int i = 1; i <= L3; i++)
        SAME(ap_model_weights(mc, (int)dc[L3 + i]), ap_model_weights(mu, (int)du[L3 + i]),
             (size_t)sizes[i] * nL, "dfc.weight_product");
    double dc2[2 * L3 + 1];
    ap_model *mc2 = build(1, L3, sizes, "tanh", dc2);
    fill(ap_model_weights(mu, (int)du[2]), (size_t)sizes[2] * sizes[1], 0.5);
    CHECK_OK(KCALL("dfc.copy_weights", a_obj("from", AP_ARG_MODEL, mu),
                   a_obj("to", AP_ARG_MODEL, mc2), a_vec("from_net", du, 2 * L3 + 1)));
    SAME(ap_model_weights(mc2, (int)dc2[2]), ap_model_weights(mu, (int)du[2]),
         (size_t)sizes[2] * sizes[1], "dfc.copy_weights");
    ap_model_free(&mc2);
    ap_model_free(&mc);
    ap_model_free(&mu);
}

/* Malformed descriptors: the wrong length, an id that is no projection, a forward id that is a
 * feedback projection, a W_1 that does not read the input of W_2's chain. */
static void test_bad_descriptors(void) {
    double d[2 * L3 + 1];
    ap_model *m = build(0, L3, sizes, "tanh", d);
    double x[B * 5], out[B * 3];
    fill(x, B * 5, 1.0);
#define FWD(desc, len)                                                                             \
    KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, 5),                     \
          a_mat("out", out, B, 3), a_vec("net", desc, len))
    CHECK_FAILS(FWD(d, 2 * L3), AP_ESIZE, "net has 6 entries");
    double bad[2 * L3 + 1];
    memcpy(bad, d, sizeof bad);
    bad[2] = 99;
    CHECK_FAILS(FWD(bad, 2 * L3 + 1), AP_EINVAL, "net[3] = 99 is not a projection id");
    memcpy(bad, d, sizeof bad);
    bad[1] = d[L3 + 1]; /* fb_1 ends on stage_1.apical */
    CHECK_FAILS(FWD(bad, 2 * L3 + 1), AP_EINVAL, "ends on stage_1.apical");
    memcpy(bad, d, sizeof bad);
    bad[2] = d[3]; /* layer 2's forward projection is ff_3: stage_3 does not follow stage_1 */
    CHECK_FAILS(FWD(bad, 2 * L3 + 1), AP_EINVAL, "projection ff_3 starts at stage_2");
    memcpy(bad, d, sizeof bad);
    bad[L3 + 2] = -1; /* no feedback projection for layer 2: fine without Q, refused with it */
    CHECK_OK(FWD(bad, 2 * L3 + 1));
    CHECK_FAILS(
        KCALL("dfc.weight_product", a_obj("model", AP_ARG_MODEL, m), a_vec("net", bad, 2 * L3 + 1)),
        AP_ENOTFOUND, "layer 2 (stage_2) has no feedback projection");
    ap_model_free(&m);
}

/* 70 layers of width 2 (more than the former DFC_MAX_LAYERS = 64): by name and by descriptor
 * alike, and the feedforward pass against a hand loop. */
static void test_deep(void) {
    enum { LD = 70 };
    int n[LD + 1];
    for (int i = 0; i <= LD; i++)
        n[i] = 2;
    double d[2 * LD + 1], du[2 * LD + 1];
    ap_model *mc = build(1, LD, n, "tanh", d), *mu = build(0, LD, n, "tanh", du);
    double x[B * 2], outc[B * 2], outu[B * 2], tgt[B * 2];
    fill(x, B * 2, 1.0);
    fill(tgt, B * 2, 0.5);
    CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, 2),
                   a_mat("out", outc, B, 2)));
    CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, 2),
                   a_mat("out", outu, B, 2), a_vec("net", du, 2 * LD + 1)));
    SAME(outc, outu, B * 2, "dfc.forward, 70 layers");
    for (int s = 0; s < B; s++) {
        double r[2] = {x[s * 2], x[s * 2 + 1]};
        for (int i = 1; i <= LD; i++) {
            const double *W = ap_model_weights(mc, (int)d[i]), *b = ap_model_bias(mc, (int)d[i]);
            double v[2];
            for (int j = 0; j < 2; j++)
                v[j] = b[j] + W[j * 2] * r[0] + W[j * 2 + 1] * r[1];
            for (int j = 0; j < 2; j++)
                r[j] = i == LD ? v[j] : tanh(v[j]);
        }
        for (int j = 0; j < 2; j++)
            CHECK_NEAR(outc[s * 2 + j], r[j], 1e-12);
    }
    ap_optim *oc = all_params(mc), *ou = all_params(mu);
    CHECK_OK(KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, mc), a_mat("x", x, B, 2),
                   a_mat("target", tgt, B, 2), a_num("alpha", 0.1),
                   a_obj("optim", AP_ARG_OPTIM, oc)));
    CHECK_OK(KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, mu), a_mat("x", x, B, 2),
                   a_mat("target", tgt, B, 2), a_num("alpha", 0.1),
                   a_obj("optim", AP_ARG_OPTIM, ou), a_vec("net", du, 2 * LD + 1)));
    check_same_grads(oc, ou, "dfc.ssa, 70 layers");
    ap_optim_free(&oc);
    ap_optim_free(&ou);
    ap_model_free(&mc);
    ap_model_free(&mu);
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_user_names);
    RUN(test_bad_descriptors);
    RUN(test_deep);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
