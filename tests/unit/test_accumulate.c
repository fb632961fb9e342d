/* test_accumulate.c — the plasticity accumulators of the fixed-step solvers (factors stacked
 * over time points, one dgemm per stack) against the point-by-point sum computed here from
 * recordings: every accumulation mode, sample weights, step counts on and off the stack
 * depth, early stops, declared-order Euler, rk4, euler-maruyama. */
#include <stdlib.h>

#include "apical/error.h"
#include "apical/model.h"
#include "apical/registry.h"
#include "apical/sim.h"
#include "check.h"

static ap_registry *reg;

static unsigned rng_state = 2024u;
static double urand(void) { /* uniform in [-0.5, 0.5) */
    rng_state = rng_state * 1103515245u + 12345u;
    return ((rng_state >> 8) & 0xffff) / 65536.0 - 0.5;
}

/* ---- fixed-step: stacked accumulation equals the point-by-point sum ---------------------- */

/* x (NX) -> h1 (N1, tanh) -> h2 (N2, tanh), h2 -> h1 recurrent; hebb rules on all three
 * projections (biases on the first two), random weights. */
enum { NX = 5, N1 = 7, N2 = 4, NPROJ = 3 };
static const char *const proj_src[NPROJ] = {"x", "h1.rate", "h2.rate"};
static const char *const proj_tgt_rate[NPROJ] = {"h1.rate", "h2.rate", "h1.rate"};
static const int proj_rows[NPROJ] = {N1, N2, N1}, proj_cols[NPROJ] = {NX, N1, N2};
static const int proj_bias[NPROJ] = {1, 1, 0};
static const double proj_eta[NPROJ] = {0.7, 1.0, -0.5};

static ap_model *tanh_net(int B, ap_sim **s, double *x) {
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, B));
    CHECK_OK(ap_model_add_input(m, "x", NX));
    ap_param p1 = {"tau", 0.5}, p2 = {"tau", 0.3};
    CHECK_OK(ap_model_add_population(m, "h1", N1, "rate", "tanh", &p1, 1));
    CHECK_OK(ap_model_add_population(m, "h2", N2, "rate", "tanh", &p2, 1));
    const char *tgt[NPROJ] = {"h1.soma", "h2.soma", "h1.soma"};
    for (int k = 0; k < NPROJ; k++) {
        ap_connect_spec spec = {0};
        spec.bias = proj_bias[k];
        spec.plastic = 1;
        int id;
        CHECK_OK(ap_model_connect(m, proj_src[k], tgt[k], &spec, &id));
        CHECK(id == k);
        double *W = ap_model_weights(m, id);
        for (int i = 0; i < proj_rows[k] * proj_cols[k]; i++)
            W[i] = 1.6 * urand();
        if (proj_bias[k]) {
            double *b = ap_model_bias(m, id);
            for (int i = 0; i < proj_rows[k]; i++)
                b[i] = urand();
        }
        ap_param eta = {"eta", proj_eta[k]};
        CHECK_OK(ap_model_add_rule(m, id, "hebb", &eta, 1));
    }
    CHECK_OK(ap_model_compile(m, s));
    for (int i = 0; i < B * NX; i++)
        x[i] = 2.0 * urand();
    CHECK_OK(ap_sim_set_input(*s, "x", x, (size_t)B * NX));
    return m;
}

/* index of a recorded signal in rec[] */
static int rec_index(const char *const *rec, int n, const char *name) {
    for (int k = 0; k < n; k++)
        if (!strcmp(rec[k], name)) return k;
    return -1;
}

/* Runs o (recording x, h1.rate, h2.rate at every point) and compares every accumulated update
 * with the mean of the rule over the mode's points, summed point by point in long double. */
static double stacked_vs_pointwise(ap_sim *s, int B, ap_run_opts *o, ap_acc_points mode,
                                   const double *sw, long *points) {
    static const char *const rec[] = {"x", "h1.rate", "h2.rate"};
    o->record = rec;
    o->n_record = 3;
    o->every = 1;
    CHECK_OK(ap_sim_set_accumulation(s, mode));
    CHECK_OK(ap_sim_set_sample_weights(s, sw));
    ap_run_stats st;
    CHECK_OK(ap_sim_run(s, o, &st));
    const double *data[3];
    size_t nt = 0;
    for (int k = 0; k < 3; k++)
        CHECK_OK(ap_sim_recording(s, k, &data[k], NULL, &nt, NULL));
    CHECK((long)nt == st.steps + 1);
    const long first = mode == AP_ACC_RIGHT ? 1 : 0;
    const long last = mode == AP_ACC_LEFT ? (long)nt - 2 : (long)nt - 1;
    *points = last - first + 1;
    double num = 0.0, den = 0.0;
    for (int p = 0; p < NPROJ; p++) {
        const int rows = proj_rows[p], cols = proj_cols[p];
        const int si = rec_index(rec, 3, proj_src[p]), ti = rec_index(rec, 3, proj_tgt_rate[p]);
        long double *W = calloc((size_t)rows * cols, sizeof *W), *bb = calloc(rows, sizeof *bb);
        for (long k = first; k <= last; k++) {
            const double *pre = data[si] + (size_t)k * B * cols;
            const double *post = data[ti] + (size_t)k * B * rows;
            for (int b = 0; b < B; b++) {
                const long double wb = (long double)proj_eta[p] * (sw ? sw[b] : 1.0);
                for (int j = 0; j < rows; j++) {
                    const long double f = wb * post[b * rows + j];
                    bb[j] += f;
                    for (int i = 0; i < cols; i++)
                        W[j * cols + i] += f * pre[b * cols + i];
                }
            }
        }
        const double *dW, *db;
        double weight;
        CHECK_OK(ap_sim_accumulator(s, p, &dW, &db, &weight));
        CHECK(weight == (double)*points);
        CHECK((db != NULL) == proj_bias[p]);
        for (int i = 0; i < rows * cols; i++) {
            const double want = (double)(W[i] / *points);
            num += (dW[i] - want) * (dW[i] - want);
            den += want * want;
        }
        for (int j = 0; db && j < rows; j++) {
            const double want = (double)(bb[j] / *points);
            num += (db[j] - want) * (db[j] - want);
            den += want * want;
        }
        free(W);
        free(bb);
    }
    return den > 0 ? sqrt(num / den) : sqrt(num); /* at rest every rate is 0 */
}

static void check_fixed(int B, ap_solver_kind solver, int ordered) {
    double *x = malloc((size_t)B * NX * sizeof *x), *sw = malloc((size_t)B * sizeof *sw);
    ap_sim *s;
    ap_model *m = tanh_net(B, &s, x);
    for (int b = 0; b < B; b++)
        sw[b] = b % 5 == 3 ? 0.0 : 0.5 + urand();
    /* the stack depth the engine uses: K points with K * B about 1024 */
    const long K = (1024 + B / 2) / B > 1 ? (1024 + B / 2) / B : 1;
    const long steps[] = {1, K - 1, K, 2 * K - 1, 2 * K + 3};
    const ap_acc_points modes[] = {AP_ACC_ALL, AP_ACC_LEFT, AP_ACC_RIGHT};
    const char *noise[] = {"h1.soma"};
    const double sigma[] = {0.3};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        if (steps[i] < 1) continue;
        for (int md = 0; md < 3; md++) {
            ap_run_opts o;
            ap_run_opts_default(&o);
            o.solver = solver;
            o.dt = 0.05;
            o.steps = steps[i];
            o.ordered = ordered;
            if (solver == AP_SOLVER_EULER_MARUYAMA) {
                o.noise = noise;
                o.sigma = sigma;
                o.n_noise = 1;
                o.seed = 7;
            }
            long points;
            double e = stacked_vs_pointwise(s, B, &o, modes[md], md == 1 ? NULL : sw, &points);
            if (!(e < 1e-13))
                fprintf(stderr, "B %d solver %d ordered %d steps %ld mode %d: rel. diff %.3g\n", B,
                        (int)solver, ordered, steps[i], md, e);
            CHECK(e < 1e-13);
            CHECK(points == steps[i] + (md == 0 ? 1 : 0));
        }
    }
    /* an early stop (settle_tol) between two stack flushes (not with noise: it never settles;
     * not with one point a stack: nothing is stacked) */
    if (solver == AP_SOLVER_EULER_MARUYAMA || K == 1) goto done;
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = solver;
    o.dt = 0.01;
    o.steps = 5000;
    o.ordered = ordered;
    o.settle_tol = 1e-3;
    long points;
    double e = stacked_vs_pointwise(s, B, &o, AP_ACC_ALL, sw, &points);
    if (!(e < 1e-13)) fprintf(stderr, "B %d: early stop: rel. diff %.3g\n", B, e);
    CHECK(e < 1e-13);
    if (!(points > 2 * K && points < 5000 && points % K != 0))
        fprintf(stderr, "B %d: early stop after %ld points, K = %ld\n", B, points, K);
    CHECK(points > 2 * K && points < 5000 && points % K != 0);
    e = stacked_vs_pointwise(s, B, &o, AP_ACC_LEFT, sw, &points);
    CHECK(e < 1e-13);
done:
    ap_sim_free(&s);
    ap_model_free(&m);
    free(x);
    free(sw);
}

static void test_stacked_euler(void) {
    check_fixed(64, AP_SOLVER_EULER, 0);   /* 16 points a stack */
    check_fixed(5, AP_SOLVER_EULER, 0);    /* 205 points a stack */
    check_fixed(1500, AP_SOLVER_EULER, 0); /* one point a stack */
}

static void test_stacked_ordered_rk4_noise(void) {
    check_fixed(64, AP_SOLVER_EULER, 1);
    check_fixed(100, AP_SOLVER_RK4, 0);
    check_fixed(64, AP_SOLVER_EULER_MARUYAMA, 1);
}

int main(void) {
    if (ap_registry_new(&reg)) {
        fprintf(stderr, "registry: %s\n", ap_last_error());
        return 1;
    }
    RUN(test_stacked_euler);
    RUN(test_stacked_ordered_rk4_noise);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
