/* test_dfc_pathway_ssa.c — dfc.ssa's optional argument Qeff (the stacked effective feedback of a
 * feedback pathway, docs/dfc.md "Feedback pathways"): with Qeff equal to the model's Q1..QL the
 * results are bitwise those without it; with other matrices they are bitwise those of a model
 * whose Q_i are those matrices; a model whose Q_i start at a feedback population (a layerwise-like
 * pathway, Q_i not n_i x n_L) is refused without Qeff and runs with it; a Qeff of the wrong shape
 * is refused. */
#include <math.h>

#include "dfc_test.h"

enum { B = 4, L = 3, N0 = 4, N1 = 5, N2 = 4, NL = 3, NQ = N1 + N2 + NL, NG = 7 };
static const int sizes[L + 1] = {N0, N1, N2, NL};

static net_spec spec(void) {
    net_spec sp = {.B = B,
                   .L = L,
                   .n = {N0, N1, N2, NL},
                   .act = {NULL, "tanh", "tanh", "linear"},
                   .tau_v = 0.2,
                   .tau_A = 0.0,
                   .ctl = "dfc.pi",
                   .k_p = 1.0,
                   .alpha = 0.1,
                   .w_scale = 0.9,
                   .q_scale = 0.5};
    return sp;
}

static ap_model *build(void) {
    net_spec sp = spec();
    rng_state = 4242;
    return net_build(&sp);
}

/* The same network (weights copied from m) whose feedback goes through an instantaneous linear
 * population g of NG units: F (NG x NL): ctl.u -> g.soma, Q_i (n_i x NG): g -> h_i.apical. */
static ap_model *build_pathway(ap_model *m) {
    net_spec sp = spec();
    ap_model *p = net_build_forward(&sp);
    char name[32], tgt[32];
    if (!p) return NULL;
    ap_param gp[1] = {{"tau", 0.0}};
    CHECK_OK(ap_model_add_population(p, "g", NG, "rate", "linear", gp, 1));
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "W%d", i);
        memcpy(proj_w(p, name), proj_w(m, name), (size_t)sizes[i] * sizes[i - 1] * sizeof(double));
        memcpy(proj_b(p, name), proj_b(m, name), (size_t)sizes[i] * sizeof(double));
    }
    int id;
    ap_connect_spec cf = {0};
    cf.name = "F";
    CHECK_OK(ap_model_connect(p, "ctl.u", "g.soma", &cf, &id));
    fill(ap_model_weights(p, id), (size_t)NG * NL, 0.5);
    for (int i = 1; i <= L; i++) {
        ap_connect_spec cs = {0};
        snprintf(name, sizeof name, "Q%d", i);
        cs.name = name;
        snprintf(tgt, sizeof tgt, "h%d.apical", i);
        CHECK_OK(ap_model_connect(p, "g", tgt, &cs, &id));
        fill(ap_model_weights(p, id), (size_t)sizes[i] * NG, 0.5);
    }
    return p;
}

/* Q1..QL of a model, stacked */
static void stack_q(ap_model *m, double *q) {
    char name[16];
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "Q%d", i);
        size_t n = (size_t)sizes[i] * NL;
        memcpy(q, proj_w(m, name), n * sizeof *q);
        q += n;
    }
}

/* the gradients of W1..W3, b1..b3 in one vector */
enum { NUPD = N1 * N0 + N1 + N2 * N1 + N2 + NL * N2 + NL };
static void read_grads(ap_optim *o, ap_model *m, double *out) {
    size_t k = 0;
    char name[16];
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "W%d", i);
        int id = proj_id(m, name);
        const double *gw = ap_optim_grad_w(o, id), *gb = ap_optim_grad_b(o, id);
        CHECK(gw && gb);
        if (!gw || !gb) return;
        memcpy(out + k, gw, (size_t)sizes[i] * sizes[i - 1] * sizeof *out);
        k += (size_t)sizes[i] * sizes[i - 1];
        memcpy(out + k, gb, (size_t)sizes[i] * sizeof *out);
        k += (size_t)sizes[i];
    }
}

static ap_optim *new_optim(ap_model *m) {
    int ids[3] = {proj_id(m, "W1"), proj_id(m, "W2"), proj_id(m, "W3")};
    ap_optim_opts oo;
    ap_optim_opts_default(&oo);
    ap_optim *o = NULL;
    CHECK_OK(ap_optim_new(&o, m, ids, 3, &oo));
    return o;
}

typedef struct result {
    double r[B * NL], u[B * NL], g[NUPD];
} result;

static double x[B * N0], rstar[B * NL];

/* dfc.ssa on m, with Qeff when q is not NULL */
static int ssa(ap_model *m, const double *q, result *res) {
    ap_optim *o = new_optim(m);
    if (!o) return -1;
    int rc;
    if (q)
        rc = KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0),
                   a_mat("target", rstar, B, NL), a_num("alpha", 0.1),
                   a_obj("optim", AP_ARG_OPTIM, o), a_mat("rL_out", res->r, B, NL),
                   a_mat("u_out", res->u, B, NL), a_mat("Qeff", (double *)q, NQ, NL));
    else
        rc = KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0),
                   a_mat("target", rstar, B, NL), a_num("alpha", 0.1),
                   a_obj("optim", AP_ARG_OPTIM, o), a_mat("rL_out", res->r, B, NL),
                   a_mat("u_out", res->u, B, NL));
    if (!rc) read_grads(o, m, res->g);
    ap_optim_free(&o);
    return rc;
}

static int same(const result *a, const result *b) {
    return !memcmp(a->r, b->r, sizeof a->r) && !memcmp(a->u, b->u, sizeof a->u) &&
           !memcmp(a->g, b->g, sizeof a->g);
}

static void inputs(ap_model *m) {
    double rminus[B * NL], y[B * NL];
    rng_state = 17;
    fill(x, B * N0, 1.0);
    fill(y, B * NL, 1.0);
    CHECK_OK(KCALL("dfc.forward", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0),
                   a_mat("out", rminus, B, NL)));
    CHECK_OK(KCALL("dfc.targets", a_mat("rL", rminus, B, NL), a_mat("y", y, B, NL),
                   a_str("loss", "mse"), a_num("lambda", 0.3), a_str("mode", "sample"),
                   a_mat("out", rstar, B, NL)));
}

/* Qeff = the model's own Q: bitwise the same results */
static void test_qeff_of_model(void) {
    ap_model *m = build();
    if (!m) return;
    inputs(m);
    double q[NQ * NL];
    stack_q(m, q);
    result a, b;
    CHECK_OK(ssa(m, NULL, &a));
    CHECK_OK(ssa(m, q, &b));
    CHECK(same(&a, &b));
    CHECK(max_abs(a.u, B * NL) > 0.01);
    ap_model_free(&m);
}

/* Qeff = other matrices: the results of a model whose Q_i are those matrices; the model's own
 * Q_i are neither read nor changed */
static void test_qeff_replaces_q(void) {
    ap_model *m = build();
    if (!m) return;
    inputs(m);
    double q_model[NQ * NL], q_other[NQ * NL], q_after[NQ * NL];
    stack_q(m, q_model);
    rng_state = 777;
    fill(q_other, NQ * NL, 0.6);
    result with_arg, with_model, own;
    CHECK_OK(ssa(m, NULL, &own));
    CHECK_OK(ssa(m, q_other, &with_arg));
    stack_q(m, q_after);
    CHECK(!memcmp(q_model, q_after, sizeof q_model));
    CHECK(!same(&own, &with_arg));
    /* write q_other into the model's Q1..QL */
    const double *q = q_other;
    char name[16];
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "Q%d", i);
        memcpy(proj_w(m, name), q, (size_t)sizes[i] * NL * sizeof *q);
        q += (size_t)sizes[i] * NL;
    }
    CHECK_OK(ssa(m, NULL, &with_model));
    CHECK(same(&with_arg, &with_model));
    ap_model_free(&m);
}

/* A pathway through a population g: refused without Qeff (Q1 is n_1 x NG); with Qeff = Q_i F it
 * equals the direct network whose Q_i are Q_i F */
static void test_pathway_model(void) {
    ap_model *m = build();
    if (!m) return;
    ap_model *p = build_pathway(m);
    if (!p) return;
    inputs(m);
    result a, b;
    CHECK_FAILS(ssa(p, NULL, &a), AP_ESIZE, "projection Q1 is 5 x 7, the network needs 5 x 3");
    double qeff[NQ * NL] = {0};
    const double *F = proj_w(p, "F");
    double *row = qeff;
    char name[16];
    for (int i = 1; i <= L; i++) {
        snprintf(name, sizeof name, "Q%d", i);
        const double *Q = proj_w(p, name);
        for (int r = 0; r < sizes[i]; r++)
            for (int k = 0; k < NL; k++) {
                double s = 0;
                for (int j = 0; j < NG; j++)
                    s += Q[r * NG + j] * F[j * NL + k];
                row[r * NL + k] = s;
            }
        memcpy(proj_w(m, name), row, (size_t)sizes[i] * NL * sizeof *row);
        row += (size_t)sizes[i] * NL;
    }
    CHECK_OK(ssa(p, qeff, &a));
    CHECK_OK(ssa(m, NULL, &b));
    CHECK(same(&a, &b));
    ap_model_free(&p);
    ap_model_free(&m);
}

static void test_qeff_shape(void) {
    ap_model *m = build();
    if (!m) return;
    inputs(m);
    double q[(NQ + 1) * NL] = {0}, r[B * NL];
    CHECK_FAILS(KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0),
                      a_mat("target", rstar, B, NL), a_num("alpha", 0.1), a_mat("rL_out", r, B, NL),
                      a_mat("Qeff", q, NQ + 1, NL)),
                AP_ESIZE, "Qeff has shape [13, 3], the network needs [12, 3]");
    CHECK_FAILS(KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0),
                      a_mat("target", rstar, B, NL), a_num("alpha", 0.1),
                      a_mat("Qeff", q, NQ, NL + 1)),
                AP_ESIZE, "Qeff has shape [12, 4]");
    CHECK_FAILS(KCALL("dfc.ssa", a_obj("model", AP_ARG_MODEL, m), a_mat("x", x, B, N0),
                      a_mat("target", rstar, B, NL), a_num("alpha", 0.1),
                      a_vec("Qeff", q, NQ * NL)),
                AP_ESIZE, "Qeff has shape");
    ap_model_free(&m);
}

int main(void) {
    if (dfc_setup()) return 1;
    RUN(test_qeff_of_model);
    RUN(test_qeff_replaces_q);
    RUN(test_pathway_model);
    RUN(test_qeff_shape);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
