/* test_optim.c — the optimisers against hand-computed steps: SGD (with momentum and weight
 * decay) and Adam over three steps, clipping per tensor and global as clip_grad_norm_, refusal
 * of non-finite gradients and updates, checkpoints that resume exactly, gradients from a
 * simulation's accumulators, option checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apical/error.h"
#include "apical/model.h"
#include "apical/npy.h"
#include "apical/optim.h"
#include "apical/registry.h"
#include "apical/sim.h"
#include "check.h"

static ap_registry *reg;

/* ---- a model with three projections: a (x -> h.soma, 2 x 3, bias), c (z -> h.soma, 2 x 2, no
 * bias), and a frozen one, f (z -> k.soma) --------------------------------------------------- */

enum { NA_W = 6, NA_B = 2, NC_W = 4, NP = NA_W + NA_B + NC_W };
static int id_a, id_c, id_f;

static ap_model *make_model(void) {
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, 1));
    CHECK_OK(ap_model_add_input(m, "x", 3));
    CHECK_OK(ap_model_add_input(m, "z", 2));
    CHECK_OK(ap_model_add_population(m, "h", 2, "rate", "linear", NULL, 0));
    CHECK_OK(ap_model_add_population(m, "k", 2, "rate", "linear", NULL, 0));
    ap_connect_spec spec = {0};
    spec.name = "a";
    spec.bias = 1;
    spec.plastic = 1;
    CHECK_OK(ap_model_connect(m, "x", "h.soma", &spec, &id_a));
    spec.name = "c";
    spec.bias = 0;
    CHECK_OK(ap_model_connect(m, "z", "h.soma", &spec, &id_c));
    spec.name = "f";
    spec.plastic = 0;
    CHECK_OK(ap_model_connect(m, "z", "k.soma", &spec, &id_f));
    double *w = ap_model_weights(m, id_a), *b = ap_model_bias(m, id_a);
    for (int i = 0; i < NA_W; i++)
        w[i] = 0.3 * (i + 1) - 1.0;
    for (int i = 0; i < NA_B; i++)
        b[i] = 0.25 - 0.5 * i;
    double *wc = ap_model_weights(m, id_c);
    for (int i = 0; i < NC_W; i++)
        wc[i] = 0.1 * (i % 3) - 0.2 * i;
    return m;
}

/* The parameters of a and c as one flat vector: Wa, ba, Wc. */
static void get_params(ap_model *m, double *p) {
    memcpy(p, ap_model_weights(m, id_a), NA_W * sizeof(double));
    memcpy(p + NA_W, ap_model_bias(m, id_a), NA_B * sizeof(double));
    memcpy(p + NA_W + NA_B, ap_model_weights(m, id_c), NC_W * sizeof(double));
}

/* The gradient of step k, entry i (varied signs and sizes). */
static double grad_value(int k, int i) {
    return (0.1 * (i + 1) - 0.45) * (k % 2 ? -1.3 : 1.0) + 0.05 * k;
}

static void set_grads(ap_optim *o, int k) {
    double *gw = ap_optim_grad_w(o, id_a), *gb = ap_optim_grad_b(o, id_a);
    double *gc = ap_optim_grad_w(o, id_c);
    for (int i = 0; i < NA_W; i++)
        gw[i] = grad_value(k, i);
    for (int i = 0; i < NA_B; i++)
        gb[i] = grad_value(k, NA_W + i);
    for (int i = 0; i < NC_W; i++)
        gc[i] = grad_value(k, NA_W + NA_B + i);
}

static ap_optim *make_optim(ap_model *m, const ap_optim_opts *o) {
    int ids[2] = {id_a, id_c};
    ap_optim *opt = NULL;
    CHECK_OK(ap_optim_new(&opt, m, ids, 2, o));
    return opt;
}

/* ---- hand-computed references (written from the equations, element by element) ----------- */

static void ref_sgd(double *p, double *buf, int k, double lr, double mu, double wd) {
    for (int i = 0; i < NP; i++) {
        double g = grad_value(k, i) + wd * p[i];
        buf[i] = k == 0 ? g : mu * buf[i] + g;
        p[i] -= lr * (mu != 0 ? buf[i] : g);
    }
}

static void ref_adam(double *p, double *m, double *v, int k, double lr, double b1, double b2,
                     double eps, double wd) {
    int t = k + 1;
    for (int i = 0; i < NP; i++) {
        double g = grad_value(k, i) + wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        double mhat = m[i] / (1 - pow(b1, t)), vhat = v[i] / (1 - pow(b2, t));
        p[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}

static void compare_params(ap_model *m, const double *want, double tol) {
    double got[NP];
    get_params(m, got);
    for (int i = 0; i < NP; i++)
        CHECK_NEAR(got[i], want[i], tol);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_defaults_and_options(void) {
    ap_optim_opts o;
    ap_optim_opts_default(&o);
    CHECK(o.kind == AP_OPTIM_SGD && o.lr == 0.01 && o.momentum == 0 && o.beta1 == 0.9 &&
          o.beta2 == 0.999 && o.eps == 1e-8 && o.weight_decay == 0 && o.clip_mode == AP_CLIP_NONE);
    ap_model *m = make_model();
    int ids[3] = {id_a, id_c, id_a};
    ap_optim *opt = NULL;
#define BAD(field, value, text)                                                                    \
    do {                                                                                           \
        ap_optim_opts_default(&o);                                                                 \
        o.field = value;                                                                           \
        CHECK_FAILS(ap_optim_new(&opt, m, ids, 2, &o), AP_EINVAL, text);                           \
        CHECK(opt == NULL);                                                                        \
    } while (0)
    BAD(lr, -0.1, "lr = -0.1");
    BAD(lr, INFINITY, "lr = inf");
    BAD(lr, NAN, "lr = nan");
    BAD(momentum, -1, "momentum = -1");
    BAD(beta1, 1.0, "beta1 = 1, must be in [0, 1)");
    BAD(beta1, -0.5, "beta1 = -0.5");
    BAD(beta2, 1.5, "beta2 = 1.5");
    BAD(eps, 0, "eps = 0");
    BAD(weight_decay, -1e-3, "weight_decay = -0.001");
    BAD(kind, (ap_optim_kind)7, "kind = 7");
    BAD(clip_mode, (ap_clip_mode)9, "clip_mode = 9");
    ap_optim_opts_default(&o);
    o.clip_mode = AP_CLIP_GLOBAL;
    CHECK_FAILS(ap_optim_new(&opt, m, ids, 2, &o), AP_EINVAL, "clip = 0, must be > 0");
#undef BAD
    ap_optim_opts_default(&o);
    CHECK_FAILS(ap_optim_new(&opt, m, ids, 3, &o), AP_EDUP, "projection \"a\" is given twice");
    CHECK_FAILS(ap_optim_new(&opt, m, ids, 0, &o), AP_EINVAL, "no projections");
    int bad_id = 17;
    CHECK_FAILS(ap_optim_new(&opt, m, &bad_id, 1, &o), AP_EINVAL, "no projection with index 17");
    CHECK_FAILS(ap_optim_new(&opt, m, &id_f, 1, &o), AP_EINVAL, "projection \"f\" is frozen");
    CHECK(opt == NULL);

    /* NULL options: the defaults */
    CHECK_OK(ap_optim_new(&opt, m, ids, 2, NULL));
    CHECK(ap_optim_grad_w(opt, id_a) && ap_optim_grad_b(opt, id_a) && ap_optim_grad_w(opt, id_c));
    CHECK(ap_optim_grad_b(opt, id_c) == NULL); /* c has no bias */
    CHECK(ap_optim_grad_w(opt, id_f) == NULL); /* not held */
    CHECK(ap_optim_steps(opt) == 0);
    CHECK_FAILS(ap_optim_set_lr(opt, -1), AP_EINVAL, "lr = -1");
    CHECK_OK(ap_optim_set_lr(opt, 0.5));
    double nw = -1, nb = -1;
    CHECK_OK(ap_optim_last_norms(opt, id_a, &nw, &nb));
    CHECK(nw == 0 && nb == 0);
    CHECK_FAILS(ap_optim_last_norms(opt, id_f, &nw, &nb), AP_ENOTFOUND, "not one of its");
    ap_optim_free(&opt);
    ap_optim_free(&opt); /* twice: a no-op */
    CHECK(opt == NULL);
    ap_model_free(&m);
}

static void test_sgd(void) {
    const struct {
        double lr, mu, wd;
    } cases[] = {{0.1, 0, 0}, {0.05, 0.9, 0}, {0.2, 0.5, 0.01}, {0.1, 0, 0.1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ap_model *m = make_model();
        ap_optim_opts o;
        ap_optim_opts_default(&o);
        o.lr = cases[c].lr;
        o.momentum = cases[c].mu;
        o.weight_decay = cases[c].wd;
        ap_optim *opt = make_optim(m, &o);
        double p[NP], buf[NP] = {0};
        get_params(m, p);
        for (int k = 0; k < 3; k++) {
            set_grads(opt, k);
            CHECK_OK(ap_optim_step(opt));
            ref_sgd(p, buf, k, cases[c].lr, cases[c].mu, cases[c].wd);
            compare_params(m, p, 1e-15);
        }
        CHECK(ap_optim_steps(opt) == 3);
        /* the frozen projection is untouched */
        for (int i = 0; i < 4; i++)
            CHECK(ap_model_weights(m, id_f)[i] == 0.0);
        ap_optim_free(&opt);
        ap_model_free(&m);
    }
}

static void test_adam(void) {
    const struct {
        double lr, b1, b2, eps, wd;
    } cases[] = {{0.01, 0.9, 0.999, 1e-8, 0}, {0.1, 0.5, 0.9, 1e-3, 0.05}, {0.3, 0, 0, 1e-8, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ap_model *m = make_model();
        ap_optim_opts o;
        ap_optim_opts_default(&o);
        o.kind = AP_OPTIM_ADAM;
        o.lr = cases[c].lr;
        o.beta1 = cases[c].b1;
        o.beta2 = cases[c].b2;
        o.eps = cases[c].eps;
        o.weight_decay = cases[c].wd;
        ap_optim *opt = make_optim(m, &o);
        double p[NP], mm[NP] = {0}, vv[NP] = {0};
        get_params(m, p);
        for (int k = 0; k < 3; k++) {
            set_grads(opt, k);
            CHECK_OK(ap_optim_step(opt));
            ref_adam(p, mm, vv, k, cases[c].lr, cases[c].b1, cases[c].b2, cases[c].eps,
                     cases[c].wd);
            compare_params(m, p, 1e-15);
        }
        ap_optim_free(&opt);
        ap_model_free(&m);
    }
    /* the first Adam step moves every parameter by about lr against the sign of its gradient */
    ap_model *m = make_model();
    ap_optim_opts o;
    ap_optim_opts_default(&o);
    o.kind = AP_OPTIM_ADAM;
    o.lr = 0.001;
    ap_optim *opt = make_optim(m, &o);
    double before[NP], after[NP];
    get_params(m, before);
    set_grads(opt, 0);
    CHECK_OK(ap_optim_step(opt));
    get_params(m, after);
    for (int i = 0; i < NP; i++)
        CHECK_NEAR(after[i] - before[i], grad_value(0, i) > 0 ? -0.001 : 0.001, 1e-9);
    ap_optim_free(&opt);
    ap_model_free(&m);
}

/* Gradients with known norms: Wa = (3, 4, 0, ...) norm 5, ba = (0.3, 0.4) norm 0.5,
 * Wc = (0, 0, 1.2, 0) norm 1.2. */
static void set_known_grads(ap_optim *o) {
    CHECK_OK(ap_optim_zero(o));
    double *gw = ap_optim_grad_w(o, id_a), *gb = ap_optim_grad_b(o, id_a);
    double *gc = ap_optim_grad_w(o, id_c);
    gw[0] = 3;
    gw[1] = 4;
    gb[0] = 0.3;
    gb[1] = 0.4;
    gc[2] = 1.2;
}

static void test_clip_per_tensor(void) {
    ap_model *m = make_model();
    ap_optim_opts o;
    ap_optim_opts_default(&o);
    o.lr = 1.0;
    o.clip_mode = AP_CLIP_PER_TENSOR;
    o.clip = 1.0;
    ap_optim *opt = make_optim(m, &o);
    double before[NP], after[NP];
    get_params(m, before);
    set_known_grads(opt);
    CHECK_OK(ap_optim_step(opt));
    get_params(m, after);
    const double sa = 1.0 / (5.0 + 1e-6), sc = 1.0 / (1.2 + 1e-6);
    CHECK_NEAR(after[0] - before[0], -3 * sa, 1e-15);
    CHECK_NEAR(after[1] - before[1], -4 * sa, 1e-15);
    CHECK_NEAR(after[NA_W] - before[NA_W], -0.3, 1e-15); /* norm 0.5 < 1: not clipped */
    CHECK_NEAR(after[NA_W + 1] - before[NA_W + 1], -0.4, 1e-15);
    CHECK_NEAR(after[NA_W + NA_B + 2] - before[NA_W + NA_B + 2], -1.2 * sc, 1e-15);
    CHECK(after[2] == before[2]);
    /* as after clip_grad_norm_, the buffers hold the clipped gradient */
    CHECK_NEAR(ap_optim_grad_w(opt, id_a)[1], 4 * sa, 1e-16);
    double nw, nb, nc;
    CHECK_OK(ap_optim_last_norms(opt, id_a, &nw, &nb));
    CHECK_OK(ap_optim_last_norms(opt, id_c, &nc, NULL));
    CHECK_NEAR(nw, 5.0, 1e-15);
    CHECK_NEAR(nb, 0.5, 1e-15);
    CHECK_NEAR(nc, 1.2, 1e-15);

    /* a norm equal to clip is still scaled by clip / (clip + 1e-6), as torch does */
    CHECK_OK(ap_optim_zero(opt));
    ap_optim_grad_b(opt, id_a)[0] = 1.0;
    get_params(m, before);
    CHECK_OK(ap_optim_step(opt));
    get_params(m, after);
    CHECK_NEAR(after[NA_W] - before[NA_W], -1.0 / (1.0 + 1e-6), 1e-15);
    CHECK(after[NA_W] - before[NA_W] != -1.0);
    ap_optim_free(&opt);
    ap_model_free(&m);
}

static void test_clip_global(void) {
    ap_model *m = make_model();
    ap_optim_opts o;
    ap_optim_opts_default(&o);
    o.lr = 0.5;
    o.clip_mode = AP_CLIP_GLOBAL;
    o.clip = 2.0;
    o.weight_decay = 0.1; /* added after clipping, not clipped */
    ap_optim *opt = make_optim(m, &o);
    double before[NP], after[NP];
    get_params(m, before);
    set_known_grads(opt);
    CHECK_OK(ap_optim_step(opt));
    get_params(m, after);
    const double total = sqrt(25.0 + 0.25 + 1.44), s = 2.0 / (total + 1e-6);
    const double g[NP] = {3, 4, 0, 0, 0, 0, 0.3, 0.4, 0, 0, 1.2, 0};
    for (int i = 0; i < NP; i++)
        CHECK_NEAR(after[i], before[i] - 0.5 * (g[i] * s + 0.1 * before[i]), 1e-15);
    /* below the bound: no scaling at all */
    CHECK_OK(ap_optim_zero(opt));
    ap_optim_grad_w(opt, id_c)[0] = 1.5;
    get_params(m, before);
    CHECK_OK(ap_optim_step(opt));
    get_params(m, after);
    CHECK(after[NA_W + NA_B] == before[NA_W + NA_B] - 0.5 * (1.5 + 0.1 * before[NA_W + NA_B]));
    ap_optim_free(&opt);
    ap_model_free(&m);
}

static void test_weight_decay_alone(void) {
    /* zero gradient: decay alone shrinks every parameter by lr * wd (SGD) */
    ap_model *m = make_model();
    ap_optim_opts o;
    ap_optim_opts_default(&o);
    o.lr = 0.1;
    o.weight_decay = 0.5;
    ap_optim *opt = make_optim(m, &o);
    double before[NP], after[NP];
    get_params(m, before);
    CHECK_OK(ap_optim_step(opt));
    get_params(m, after);
    for (int i = 0; i < NP; i++)
        CHECK_NEAR(after[i], before[i] * (1 - 0.05), 1e-15);
    ap_optim_free(&opt);
    ap_model_free(&m);
}

static void test_nonfinite(void) {
    ap_model *m = make_model();
    ap_optim_opts o;
    ap_optim_opts_default(&o);
    o.kind = AP_OPTIM_ADAM;
    ap_optim *opt = make_optim(m, &o);
    set_grads(opt, 0);
    CHECK_OK(ap_optim_step(opt));
    double before[NP], after[NP];
    get_params(m, before);
    set_grads(opt, 1);
    ap_optim_grad_b(opt, id_a)[1] = NAN;
    CHECK_FAILS(ap_optim_step(opt), AP_ENONFINITE, "projection \"a\": the gradient of bias[2]");
    ap_optim_grad_b(opt, id_a)[1] = 0;
    ap_optim_grad_w(opt, id_c)[3] = -INFINITY;
    CHECK_FAILS(ap_optim_step(opt), AP_ENONFINITE,
                "projection \"c\": the gradient of weight[2, 2]");
    CHECK(ap_optim_steps(opt) == 1);
    get_params(m, after);
    CHECK(memcmp(before, after, sizeof before) == 0);
    /* the state is untouched too: the next good step equals the reference */
    ap_model *m2 = make_model();
    ap_optim *ref = make_optim(m2, &o);
    set_grads(ref, 0);
    CHECK_OK(ap_optim_step(ref));
    set_grads(ref, 1);
    CHECK_OK(ap_optim_step(ref));
    set_grads(opt, 1);
    CHECK_OK(ap_optim_step(opt));
    double p1[NP], p2[NP];
    get_params(m, p1);
    get_params(m2, p2);
    CHECK(memcmp(p1, p2, sizeof p1) == 0);
    ap_optim_free(&ref);
    ap_model_free(&m2);
    ap_optim_free(&opt);

    /* finite gradients whose update overflows are refused as well, before anything changes */
    ap_optim_opts_default(&o);
    o.lr = 1e300;
    opt = make_optim(m, &o);
    get_params(m, before);
    set_grads(opt, 0);
    ap_optim_grad_w(opt, id_a)[4] = 1e10; /* lr * g = 1e310 */
    CHECK_FAILS(ap_optim_step(opt), AP_ENONFINITE, "the update makes weight[2, 2]");
    get_params(m, after);
    CHECK(memcmp(before, after, sizeof before) == 0);
    CHECK(ap_optim_steps(opt) == 0);
    ap_optim_free(&opt);
    ap_model_free(&m);
}

static char tmpdir[] = "/tmp/apical_optim_XXXXXX";

static void copy_params(ap_model *dst, ap_model *src) {
    memcpy(ap_model_weights(dst, id_a), ap_model_weights(src, id_a), NA_W * sizeof(double));
    memcpy(ap_model_bias(dst, id_a), ap_model_bias(src, id_a), NA_B * sizeof(double));
    memcpy(ap_model_weights(dst, id_c), ap_model_weights(src, id_c), NC_W * sizeof(double));
}

/* Five steps in one go equal two steps, a checkpoint, a fresh optimiser loading it, three
 * more steps: bit for bit. */
static void resume_case(const ap_optim_opts *o, const char *prefix) {
    ap_model *full = make_model();
    ap_optim *of = make_optim(full, o);
    for (int k = 0; k < 5; k++) {
        set_grads(of, k);
        CHECK_OK(ap_optim_step(of));
    }
    ap_model *part = make_model();
    ap_optim *op = make_optim(part, o);
    for (int k = 0; k < 2; k++) {
        set_grads(op, k);
        CHECK_OK(ap_optim_step(op));
    }
    CHECK_OK(ap_optim_save(op, prefix));
    ap_model *resumed = make_model();
    copy_params(resumed, part); /* the weights travel separately (p:save / p:load) */
    ap_optim *orr = make_optim(resumed, o);
    CHECK_OK(ap_optim_load(orr, prefix));
    CHECK(ap_optim_steps(orr) == 2);
    for (int k = 2; k < 5; k++) {
        set_grads(orr, k);
        CHECK_OK(ap_optim_step(orr));
    }
    double a[NP], b[NP];
    get_params(full, a);
    get_params(resumed, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(ap_optim_steps(orr) == 5);
    ap_optim_free(&of);
    ap_optim_free(&op);
    ap_optim_free(&orr);
    ap_model_free(&full);
    ap_model_free(&part);
    ap_model_free(&resumed);
}

static void test_checkpoint(void) {
    CHECK(mkdtemp(tmpdir) != NULL);
    char prefix[256];
    ap_optim_opts o;
    ap_optim_opts_default(&o);
    o.kind = AP_OPTIM_ADAM;
    o.weight_decay = 0.01;
    snprintf(prefix, sizeof prefix, "%s/adam_", tmpdir);
    resume_case(&o, prefix);
    /* the files, named as the header says */
    const char *files[] = {"a.m.npy", "a.v.npy", "a.mb.npy", "a.vb.npy",
                           "c.m.npy", "c.v.npy", "steps.npy"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", prefix, files[i]);
        CHECK(access(path, R_OK) == 0);
    }
    char path[512];
    snprintf(path, sizeof path, "%sc.mb.npy", prefix);
    CHECK(access(path, F_OK) != 0); /* c has no bias */
    ap_array a = {0};
    snprintf(path, sizeof path, "%sa.m.npy", prefix);
    CHECK_OK(ap_npy_read(path, &a));
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3);
    ap_array_free(&a);
    snprintf(path, sizeof path, "%ssteps.npy", prefix);
    CHECK_OK(ap_npy_read(path, &a));
    CHECK(a.ndim == 0 && a.data[0] == 2);
    ap_array_free(&a);

    ap_optim_opts_default(&o);
    o.momentum = 0.9;
    o.clip_mode = AP_CLIP_GLOBAL;
    o.clip = 0.5;
    snprintf(prefix, sizeof prefix, "%s/sgd_", tmpdir);
    resume_case(&o, prefix);
    ap_optim_opts_default(&o); /* plain SGD: only the step count */
    snprintf(prefix, sizeof prefix, "%s/plain_", tmpdir);
    resume_case(&o, prefix);

    /* loading checks everything before changing anything */
    ap_model *m = make_model();
    ap_optim_opts_default(&o);
    o.kind = AP_OPTIM_ADAM;
    ap_optim *opt = make_optim(m, &o);
    set_grads(opt, 0);
    CHECK_OK(ap_optim_step(opt));
    snprintf(prefix, sizeof prefix, "%s/bad_", tmpdir);
    CHECK_OK(ap_optim_save(opt, prefix));
    ap_optim *fresh = make_optim(m, &o);
    snprintf(path, sizeof path, "%s/bad_c.v.npy", tmpdir);
    double wrong[3] = {1, 2, 3};
    size_t shape3[1] = {3};
    CHECK_OK(ap_npy_write(path, wrong, 1, shape3));
    CHECK_FAILS(ap_optim_load(fresh, prefix), AP_ESIZE, "has shape [3], expected [2, 2]");
    CHECK(ap_optim_steps(fresh) == 0);
    /* a negative second moment */
    double neg[4] = {0, -1, 0, 0};
    size_t shape22[2] = {2, 2};
    CHECK_OK(ap_npy_write(path, neg, 2, shape22));
    CHECK_FAILS(ap_optim_load(fresh, prefix), AP_EFORMAT, "must be >= 0");
    unlink(path);
    CHECK_FAILS(ap_optim_load(fresh, prefix), AP_EIO, "bad_c.v.npy");
    CHECK(ap_optim_steps(fresh) == 0);
    /* a malformed step count */
    CHECK_OK(ap_optim_save(opt, prefix));
    snprintf(path, sizeof path, "%s/bad_steps.npy", tmpdir);
    double half = 1.5;
    CHECK_OK(ap_npy_write(path, &half, 0, NULL));
    CHECK_FAILS(ap_optim_load(fresh, prefix), AP_EFORMAT, "not an integer");
    CHECK(ap_optim_steps(fresh) == 0);
    ap_optim_free(&fresh);
    ap_optim_free(&opt);
    ap_model_free(&m);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0);
}

static void test_add_from_sim(void) {
    /* x -> h.soma with the hebb rule (eta 1), and a plastic projection without a rule */
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, 2));
    CHECK_OK(ap_model_add_input(m, "x", 2));
    ap_param tau = {"tau", 0.5};
    CHECK_OK(ap_model_add_population(m, "h", 2, "rate", "linear", &tau, 1));
    ap_connect_spec spec = {0};
    spec.bias = 1;
    spec.plastic = 1;
    int id, id2;
    CHECK_OK(ap_model_connect(m, "x", "h.soma", &spec, &id));
    spec.bias = 0;
    spec.name = "norule";
    CHECK_OK(ap_model_connect(m, "x", "h.soma", &spec, &id2));
    double *w = ap_model_weights(m, id);
    w[0] = 1.0;
    w[3] = 0.5;
    ap_param eta = {"eta", 1.0};
    CHECK_OK(ap_model_add_rule(m, id, "hebb", &eta, 1));
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    const double x[4] = {1.0, -0.5, 0.25, 2.0};
    CHECK_OK(ap_sim_set_input(s, "x", x, 4));
    ap_run_opts ro;
    ap_run_opts_default(&ro);
    ro.dt = 0.1;
    ro.steps = 10;
    CHECK_OK(ap_sim_run(s, &ro, NULL));
    const double *dW, *db;
    CHECK_OK(ap_sim_accumulator(s, id, &dW, &db, NULL));

    ap_optim_opts o;
    ap_optim_opts_default(&o);
    int ids[2] = {id, id2};
    ap_optim *opt;
    CHECK_OK(ap_optim_new(&opt, m, ids, 2, &o));
    ap_optim_grad_w(opt, id)[0] = 0.5;
    ap_optim_grad_w(opt, id2)[1] = 7.0;
    CHECK_OK(ap_optim_add_from_sim(opt, s, -2.0));
    CHECK_OK(ap_optim_add_from_sim(opt, s, 1.0)); /* twice: grad += (-2 + 1) * update */
    const double *g = ap_optim_grad_w(opt, id), *gb = ap_optim_grad_b(opt, id);
    CHECK_NEAR(g[0], 0.5 - dW[0], 1e-15);
    for (int i = 1; i < 4; i++)
        CHECK_NEAR(g[i], -dW[i], 1e-15);
    for (int i = 0; i < 2; i++)
        CHECK_NEAR(gb[i], -db[i], 1e-15);
    CHECK(fabs(dW[0]) > 0.01 && fabs(db[1]) > 0.01); /* the run did accumulate something */
    /* the projection without a rule is left alone */
    const double *g2 = ap_optim_grad_w(opt, id2);
    CHECK(g2[0] == 0 && g2[1] == 7.0 && g2[2] == 0 && g2[3] == 0);
    CHECK_FAILS(ap_optim_add_from_sim(opt, s, NAN), AP_EINVAL, "scale = nan");

    /* a simulation of another model */
    ap_model *other;
    CHECK_OK(ap_model_new(&other, reg, 1));
    CHECK_OK(ap_model_add_input(other, "x", 1));
    ap_sim *so;
    CHECK_OK(ap_model_compile(other, &so));
    CHECK_FAILS(ap_optim_add_from_sim(opt, so, 1.0), AP_EINVAL, "not a replica");
    ap_sim_free(&so);
    ap_model_free(&other);
    ap_optim_free(&opt);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* The gradients as one vector (for the sum over MPI ranks): a's W, a's b, c's W, in that
 * order; unpacking writes them back; a NULL vector is refused. */
static void test_grad_pack(void) {
    ap_model *m = make_model();
    ap_optim_opts oo;
    ap_optim_opts_default(&oo);
    ap_optim *o = make_optim(m, &oo);
    CHECK(ap_optim_grad_count(o) == NP);
    set_grads(o, 3);
    double v[NP], w[NP];
    CHECK_OK(ap_optim_grad_pack(o, v));
    for (int i = 0; i < NP; i++)
        CHECK(v[i] == grad_value(3, i));
    for (int i = 0; i < NP; i++)
        w[i] = 2.0 * i - 5.0;
    CHECK_OK(ap_optim_grad_unpack(o, w));
    CHECK(ap_optim_grad_w(o, id_a)[NA_W - 1] == w[NA_W - 1]);
    CHECK(ap_optim_grad_b(o, id_a)[1] == w[NA_W + 1]);
    CHECK(ap_optim_grad_w(o, id_c)[NC_W - 1] == w[NP - 1]);
    CHECK_FAILS(ap_optim_grad_pack(o, NULL), AP_EINVAL, "NULL");
    CHECK_FAILS(ap_optim_grad_unpack(NULL, w), AP_EINVAL, "NULL");
    ap_optim_free(&o);
    ap_model_free(&m);
}

int main(void) {
    CHECK_OK(ap_registry_new(&reg));
    RUN(test_grad_pack);
    RUN(test_defaults_and_options);
    RUN(test_sgd);
    RUN(test_adam);
    RUN(test_clip_per_tensor);
    RUN(test_clip_global);
    RUN(test_weight_decay_alone);
    RUN(test_nonfinite);
    RUN(test_checkpoint);
    RUN(test_add_from_sim);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
