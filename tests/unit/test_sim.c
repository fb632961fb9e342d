/* test_sim.c — the solvers against closed-form solutions: a linear circuit against expm(A t),
 * convergence orders, Ornstein-Uhlenbeck moments, a stiff circuit, declared-order Euler by
 * hand, accumulators against closed-form integrals. */
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <stdlib.h>

#include "apical/error.h"
#include "apical/model.h"
#include "apical/noise.h"
#include "apical/registry.h"
#include "apical/sim.h"
#include "check.h"

static ap_registry *reg;

/* ---- a linear circuit: population h (identity activation) with recurrent weights W ------ */

enum { LN = 6, LB = 2 };
static double lin_W[LN * LN], lin_tau[LN], lin_x0[LB * LN];

static void lin_setup(void) {
    unsigned s = 12345;
    for (int i = 0; i < LN * LN; i++) {
        s = s * 1103515245u + 12345u;
        lin_W[i] = 0.6 * (((s >> 8) & 0xffff) / 65535.0 - 0.5);
    }
    for (int b = 0; b < LB * LN; b++) {
        s = s * 1103515245u + 12345u;
        lin_x0[b] = ((s >> 8) & 0xffff) / 65535.0 - 0.5;
    }
    for (int i = 0; i < LN; i++)
        lin_tau[i] = 1.0;
}

/* Builds the circuit with soma time constant tau (all units). */
static ap_model *lin_model(double tau) {
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, LB));
    ap_param p = {"tau", tau};
    CHECK_OK(ap_model_add_population(m, "h", LN, "rate", "linear", &p, 1));
    int id;
    CHECK_OK(ap_model_connect(m, "h", "h.soma", NULL, &id));
    memcpy(ap_model_weights(m, id), lin_W, sizeof lin_W);
    return m;
}

/* exact x(t) = expm(A t) x0 with A = (W - I) / tau, per sample */
static void lin_exact(double tau, double t, double *out) {
    gsl_matrix *A = gsl_matrix_alloc(LN, LN), *E = gsl_matrix_alloc(LN, LN);
    for (int i = 0; i < LN; i++)
        for (int j = 0; j < LN; j++)
            gsl_matrix_set(A, i, j, (lin_W[i * LN + j] - (i == j)) * t / tau);
    gsl_linalg_exponential_ss(A, E, GSL_PREC_DOUBLE);
    for (int b = 0; b < LB; b++)
        for (int i = 0; i < LN; i++) {
            double acc = 0;
            for (int j = 0; j < LN; j++)
                acc += gsl_matrix_get(E, i, j) * lin_x0[b * LN + j];
            out[b * LN + i] = acc;
        }
    gsl_matrix_free(A);
    gsl_matrix_free(E);
}

static double rel_err(const double *a, const double *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / den);
}

static double lin_run(ap_solver_kind kind, double dt, ap_linsol_kind ls, double t_end,
                      ap_run_stats *st) {
    ap_model *m = lin_model(1.0);
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    CHECK_OK(ap_sim_write_state(s, "h.soma", lin_x0, LB * LN));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = kind;
    o.t_end = t_end;
    o.dt = dt;
    o.rtol = 1e-10;
    o.atol = 1e-12;
    o.linsol = ls;
    o.keep_state = 1;
    CHECK_OK(ap_sim_run(s, &o, st));
    double got[LB * LN], want[LB * LN];
    CHECK_OK(ap_sim_read(s, "h.soma", got, LB * LN));
    lin_exact(1.0, t_end, want);
    ap_sim_free(&s);
    ap_model_free(&m);
    return rel_err(got, want, LB * LN);
}

static void test_linear_cvode_exact(void) {
    ap_run_stats st;
    double e;
    e = lin_run(AP_SOLVER_CVODE_BDF, 0, AP_LINSOL_DEFAULT, 3.0, &st);
    CHECK(e < 1e-8);
    CHECK(st.steps > 0 && st.rhs_evals >= st.steps);
    e = lin_run(AP_SOLVER_CVODE_BDF, 0, AP_LINSOL_DENSE, 3.0, &st);
    CHECK(e < 1e-8);
    CHECK(st.jac_evals > 0);
    e = lin_run(AP_SOLVER_CVODE_ADAMS, 0, AP_LINSOL_DEFAULT, 3.0, &st);
    CHECK(e < 1e-8);
    /* the error must be real: a loose tolerance must not meet it */
    e = lin_run(AP_SOLVER_EULER, 0.01, AP_LINSOL_DEFAULT, 3.0, &st);
    CHECK(e > 1e-4);
}

static void test_convergence_orders(void) {
    ap_run_stats st;
    double e1 = lin_run(AP_SOLVER_EULER, 0.01, 0, 2.0, &st);
    double e2 = lin_run(AP_SOLVER_EULER, 0.005, 0, 2.0, &st);
    CHECK(st.steps == 400);
    double order = log2(e1 / e2);
    CHECK_NEAR(order, 1.0, 0.1);
    double r1 = lin_run(AP_SOLVER_RK4, 0.1, 0, 2.0, &st);
    double r2 = lin_run(AP_SOLVER_RK4, 0.05, 0, 2.0, &st);
    CHECK(st.rhs_evals == 4 * 40 + 1);
    CHECK_NEAR(log2(r1 / r2), 4.0, 0.2);
}

static void test_record_times_cvode(void) {
    ap_model *m = lin_model(1.0);
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    CHECK_OK(ap_sim_write_state(s, "h.soma", lin_x0, LB * LN));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = 2.0;
    o.rtol = 1e-10;
    o.atol = 1e-12;
    o.keep_state = 1;
    const char *rec[] = {"h.soma", "h.rate"};
    double times[] = {0.0, 0.5, 1.25, 2.0};
    o.record = rec;
    o.n_record = 2;
    o.times = times;
    o.n_times = 4;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    const double *data, *tt;
    size_t n;
    int width;
    CHECK_OK(ap_sim_recording(s, 0, &data, &tt, &n, &width));
    CHECK(n == 4 && width == LB * LN);
    for (size_t k = 0; k < n && k < 4; k++) {
        double want[LB * LN];
        lin_exact(1.0, times[k], want);
        CHECK_NEAR(tt[k], times[k], 0);
        CHECK(rel_err(data + k * (size_t)width, want, LB * LN) < 1e-8);
    }
    /* every-k-th internal step */
    o.n_times = 0;
    o.every = 1;
    ap_run_stats st;
    CHECK_OK(ap_sim_run(s, &o, &st));
    CHECK_OK(ap_sim_recording(s, 1, &data, &tt, &n, &width));
    CHECK((long)n == st.steps + 1);
    CHECK_NEAR(tt[n - 1], 2.0, 1e-12);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ---- Euler-Maruyama on an Ornstein-Uhlenbeck population --------------------------------- */

static void ou_run(uint64_t seed, double *mean, double *var, double *first) {
    enum { OB = 50, ON = 400 };
    const double tau = 0.5, sigma = 0.4, t = 1.0;
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, OB));
    ap_param p = {"tau", tau};
    CHECK_OK(ap_model_add_population(m, "o", ON, "rate", "linear", &p, 1));
    CHECK_OK(ap_model_set_start_value(m, "o.soma", 1.0));
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_EULER_MARUYAMA;
    o.dt = 0.001;
    o.t_end = t;
    const char *noise[] = {"o.soma"};
    double sg[] = {sigma};
    o.noise = noise;
    o.sigma = sg;
    o.n_noise = 1;
    o.seed = seed;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    static double x[OB * ON];
    CHECK_OK(ap_sim_read(s, "o.soma", x, OB * ON));
    double sum = 0, sq = 0;
    for (int i = 0; i < OB * ON; i++)
        sum += x[i];
    *mean = sum / (OB * ON);
    for (int i = 0; i < OB * ON; i++)
        sq += (x[i] - *mean) * (x[i] - *mean);
    *var = sq / (OB * ON - 1);
    *first = x[0];
    ap_sim_free(&s);
    ap_model_free(&m);
}

static void test_ornstein_uhlenbeck(void) {
    const double tau = 0.5, sigma = 0.4, t = 1.0, N = 50 * 400;
    double mean, var, first, mean2, var2, first2, mean3, var3, first3;
    ou_run(7, &mean, &var, &first);
    double m_th = exp(-t / tau);
    double v_th = sigma * sigma / (2 * tau) * (1 - exp(-2 * t / tau));
    CHECK_NEAR(mean, m_th, 4 * sqrt(v_th / N) + 1e-3);
    CHECK_NEAR(var, v_th, 4 * v_th * sqrt(2 / N) + 2e-3 * v_th);
    ou_run(7, &mean2, &var2, &first2);
    CHECK(first == first2 && mean == mean2 && var == var2);
    ou_run(8, &mean3, &var3, &first3);
    CHECK(first != first3);
}

/* Two steps by hand: x += dt / tau (0 - x) + sigma sqrt(dt) / tau z, z the seed's stream
 * (apical/noise.h) in state order, sample-major, one step after another. */
static void test_euler_maruyama_draws(void) {
    enum { EB = 3, EN = 5 };
    const double tau = 0.5, sigma = 0.4, dt = 0.01;
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, EB));
    ap_param p = {"tau", tau};
    CHECK_OK(ap_model_add_population(m, "o", EN, "rate", "linear", &p, 1));
    CHECK_OK(ap_model_set_start_value(m, "o.soma", 1.0));
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_EULER_MARUYAMA;
    o.dt = dt;
    o.steps = 2;
    const char *noise[] = {"o.soma"};
    double sg[] = {sigma};
    o.noise = noise;
    o.sigma = sg;
    o.n_noise = 1;
    o.seed = 0x123456789ABCDEFu;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    double got[EB * EN], want[EB * EN], z[EB * EN];
    CHECK_OK(ap_sim_read(s, "o.soma", got, EB * EN));
    ap_noise *g;
    CHECK_OK(ap_noise_new(&g, o.seed));
    for (int i = 0; i < EB * EN; i++)
        want[i] = 1.0;
    for (int k = 0; k < 2; k++) {
        ap_noise_normal(g, z, EB * EN);
        for (int i = 0; i < EB * EN; i++) {
            want[i] += dt / tau * (0.0 - want[i]);
            want[i] += sigma * sqrt(dt) / tau * z[i];
        }
    }
    ap_noise_free(&g);
    for (int i = 0; i < EB * EN; i++)
        CHECK(fabs(got[i] - want[i]) <= 1e-15);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ---- a stiff linear circuit: time constants 1e-4 and 1 ---------------------------------- */

static void test_stiff(void) {
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, 1));
    ap_param pf = {"tau", 1e-4}, ps = {"tau", 1.0};
    CHECK_OK(ap_model_add_input(m, "x", 2));
    CHECK_OK(ap_model_add_population(m, "fast", 2, "rate", "linear", &pf, 1));
    CHECK_OK(ap_model_add_population(m, "slow", 2, "rate", "linear", &ps, 1));
    int a, b;
    ap_connect_spec one = {0};
    one.kind = AP_ONE_TO_ONE;
    CHECK_OK(ap_model_connect(m, "x", "slow.soma", &one, NULL));
    CHECK_OK(ap_model_connect(m, "slow", "fast.soma", NULL, &a));
    CHECK_OK(ap_model_connect(m, "fast", "slow.soma", NULL, &b));
    double Wa[4] = {1.0, 0.5, -0.3, 0.8}, Wb[4] = {-0.5, 0.2, 0.1, -0.4}, x[2] = {0.5, -1.0};
    memcpy(ap_model_weights(m, a), Wa, sizeof Wa);
    memcpy(ap_model_weights(m, b), Wb, sizeof Wb);
    CHECK_OK(ap_model_set_start_value(m, "slow.soma", 1.0));
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    CHECK_OK(ap_sim_set_input(s, "x", x, 2));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = 20.0;
    o.rtol = 1e-8;
    o.atol = 1e-10;
    ap_run_stats st;
    CHECK_OK(ap_sim_run(s, &o, &st));
    double got[4], ref[4];
    CHECK_OK(ap_sim_read(s, "fast.soma", got, 2));
    CHECK_OK(ap_sim_read(s, "slow.soma", got + 2, 2));
    /* exact: z = (fast, slow, 1), z' = M z with M = [[-1/tf, Wa/tf, 0], [Wb/ts, -1/ts, x/ts],
     * [0, 0, 0]] */
    gsl_matrix *A = gsl_matrix_calloc(5, 5), *E = gsl_matrix_alloc(5, 5);
    for (int i = 0; i < 2; i++) {
        gsl_matrix_set(A, i, i, -1e4 * o.t_end);
        gsl_matrix_set(A, 2 + i, 2 + i, -1.0 * o.t_end);
        gsl_matrix_set(A, 2 + i, 4, x[i] * o.t_end);
        for (int j = 0; j < 2; j++) {
            gsl_matrix_set(A, i, 2 + j, 1e4 * Wa[i * 2 + j] * o.t_end);
            gsl_matrix_set(A, 2 + i, j, Wb[i * 2 + j] * o.t_end);
        }
    }
    gsl_linalg_exponential_ss(A, E, GSL_PREC_DOUBLE);
    double z0[5] = {0, 0, 1, 1, 1};
    for (int i = 0; i < 4; i++) {
        ref[i] = 0;
        for (int j = 0; j < 5; j++)
            ref[i] += gsl_matrix_get(E, i, j) * z0[j];
    }
    gsl_matrix_free(A);
    gsl_matrix_free(E);
    CHECK(rel_err(got, ref, 4) < 1e-6);
    /* explicit Euler needs dt < 2e-4 to stay stable */
    long euler_steps = (long)(o.t_end / 2e-4);
    CHECK(st.steps * 100 <= euler_steps);
    /* and it really is unstable above that */
    o.solver = AP_SOLVER_EULER;
    o.dt = 2.5e-4;
    CHECK_FAILS(ap_sim_run(s, &o, NULL), AP_ENONFINITE, "fast.soma[sample 1");
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ---- declared-order Euler on a two-population chain, by hand ---------------------------- */

/* Euler steps through the engine against the same steps by hand: the projection is a 1 x 1 dgemm
 * (exact), but the engine may order the update's few operations (w x - a, / tau, * dt, +)
 * differently from the hand loop, and BLAS may fuse a multiply-add: a few roundings over two
 * steps of O(0.1) values, 4 ulps. (Today's build agrees to the last bit.) */
#define SIM_ULPS 4

static void test_ordered_euler_by_hand(void) {
    const double ta = 0.5, tb = 0.25, dt = 0.1, w1 = 2.0, w2 = -1.5, x = 0.7;
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, 1));
    CHECK_OK(ap_model_add_input(m, "x", 1));
    ap_param pa = {"tau", ta}, pb = {"tau", tb};
    CHECK_OK(ap_model_add_population(m, "a", 1, "rate", "tanh", &pa, 1));
    CHECK_OK(ap_model_add_population(m, "b", 1, "rate", "linear", &pb, 1));
    int i1, i2;
    CHECK_OK(ap_model_connect(m, "x", "a.soma", NULL, &i1));
    CHECK_OK(ap_model_connect(m, "a", "b.soma", NULL, &i2));
    ap_model_weights(m, i1)[0] = w1;
    ap_model_weights(m, i2)[0] = w2;
    CHECK_OK(ap_model_set_start_value(m, "a.soma", 0.1));
    CHECK_OK(ap_model_set_start_value(m, "b.soma", -0.2));
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    CHECK_OK(ap_sim_set_input(s, "x", &x, 1));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.dt = dt;
    o.steps = 2;
    double a = 0.1, b = -0.2, got;
    /* ordered: b uses a's new rate */
    for (int k = 0; k < 2; k++) {
        a = a + dt / ta * (w1 * x - a);
        b = b + dt / tb * (w2 * tanh(a) - b);
    }
    o.ordered = 1;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(ap_sim_read(s, "b.soma", &got, 1));
    CHECK_CLOSE(got, b, 0, SIM_ULPS);
    /* reversed order: b uses the old rate, as simultaneous Euler does */
    a = 0.1, b = -0.2;
    for (int k = 0; k < 2; k++) {
        double an = a + dt / ta * (w1 * x - a);
        b = b + dt / tb * (w2 * tanh(a) - b);
        a = an;
    }
    const char *rev[] = {"b", "a"};
    o.order = rev;
    o.n_order = 2;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(ap_sim_read(s, "b.soma", &got, 1));
    CHECK_CLOSE(got, b, 0, SIM_ULPS);
    /* declared order, but a's rate read from the start of the step: the same numbers */
    const char *prev[] = {"a.rate"};
    o.order = NULL;
    o.n_order = 0;
    o.previous = prev;
    o.n_previous = 1;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(ap_sim_read(s, "b.soma", &got, 1));
    CHECK_CLOSE(got, b, 0, SIM_ULPS);
    o.ordered = 0;
    o.previous = NULL;
    o.n_previous = 0;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(ap_sim_read(s, "b.soma", &got, 1));
    CHECK_CLOSE(got, b, 0, SIM_ULPS);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ---- accumulators: Hebbian rule against a closed-form time average ---------------------- */

static void test_accumulator_hebb(void) {
    const double tau = 0.3, w = 1.5, x = 0.8, T = 2.0;
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, 1));
    CHECK_OK(ap_model_add_input(m, "x", 1));
    ap_param p = {"tau", tau};
    CHECK_OK(ap_model_add_population(m, "h", 1, "rate", "linear", &p, 1));
    ap_connect_spec spec = {0};
    spec.bias = 1;
    spec.plastic = 1;
    int id;
    CHECK_OK(ap_model_connect(m, "x", "h.soma", &spec, &id));
    ap_model_weights(m, id)[0] = w;
    CHECK_OK(ap_model_add_rule(m, id, "hebb", NULL, 0));
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    CHECK_OK(ap_sim_set_input(s, "x", &x, 1));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = T;
    o.rtol = 1e-10;
    o.atol = 1e-12;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    /* v(t) = w x (1 - exp(-t/tau)); mean of v x over [0, T] */
    double mean_v = w * x * (1 - tau / T * (1 - exp(-T / tau)));
    const double *dW, *db;
    double weight;
    CHECK_OK(ap_sim_accumulator(s, id, &dW, &db, &weight));
    CHECK_NEAR(weight, T, 1e-12);
    CHECK_NEAR(dW[0], mean_v * x, 1e-7 * fabs(mean_v * x));
    CHECK_NEAR(db[0], mean_v, 1e-7 * fabs(mean_v));
    /* euler: the mean over all points 0..N of the Euler trajectory */
    o.solver = AP_SOLVER_EULER;
    o.dt = 0.1;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    double v = 0, sum = 0;
    for (int k = 0; k <= 20; k++) {
        sum += v * x;
        v += 0.1 / tau * (w * x - v);
    }
    CHECK_OK(ap_sim_accumulator(s, id, &dW, &db, &weight));
    CHECK_NEAR(weight, 21, 0);
    CHECK_NEAR(dW[0], sum / 21, 1e-14);
    CHECK_OK(ap_sim_set_accumulation(s, AP_ACC_RIGHT));
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(ap_sim_accumulator(s, id, &dW, &db, &weight));
    CHECK_NEAR(dW[0], sum / 20, 1e-14); /* point 0 contributes v = 0 */
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ---- early stop, sample weights, the rule at the last state ------------------------------ */

static ap_sim *leaky_hebb(ap_model **m, int batch, double tau, double w) {
    CHECK_OK(ap_model_new(m, reg, batch));
    CHECK_OK(ap_model_add_input(*m, "x", 1));
    ap_param p = {"tau", tau};
    CHECK_OK(ap_model_add_population(*m, "h", 1, "rate", "linear", &p, 1));
    int id;
    CHECK_OK(ap_model_connect(*m, "x", "h.soma", NULL, &id));
    ap_model_weights(*m, id)[0] = w;
    CHECK_OK(ap_model_add_rule(*m, id, "hebb", NULL, 0));
    ap_sim *s;
    CHECK_OK(ap_model_compile(*m, &s));
    return s;
}

static void test_settle_and_weights(void) {
    const double tau = 0.3, w = 1.5, tol = 1e-3;
    double x[2] = {0.8, -0.4};
    ap_model *m;
    ap_sim *s = leaky_hebb(&m, 2, tau, w);
    CHECK_OK(ap_sim_set_input(s, "x", x, 2));
    /* |dv/dt| = |w x| exp(-t/tau)/tau: the larger sample settles last */
    double t_star = tau * log(w * 0.8 / (tau * tol));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = 10.0;
    o.rtol = 1e-10;
    o.atol = 1e-12;
    o.settle_tol = tol;
    ap_run_stats st;
    CHECK_OK(ap_sim_run(s, &o, &st));
    CHECK_NEAR(st.t_reached, t_star, 1e-6);
    /* sample weights: only sample 0 counts; the mean is over [0, t*] */
    double sw[2] = {1.0, 0.0};
    CHECK_OK(ap_sim_set_sample_weights(s, sw));
    CHECK_OK(ap_sim_run(s, &o, &st));
    const double *dW, *db;
    double weight;
    CHECK_OK(ap_sim_accumulator(s, 0, &dW, &db, &weight));
    double mean_v = w * x[0] * (1 - tau / t_star * (1 - exp(-t_star / tau)));
    CHECK_NEAR(weight, t_star, 1e-6);
    CHECK_NEAR(dW[0], mean_v * x[0], 1e-6 * fabs(mean_v * x[0]));
    /* the rule at the last state */
    CHECK_OK(ap_sim_accumulate_state(s));
    CHECK_OK(ap_sim_accumulator(s, 0, &dW, &db, &weight));
    double v_end = w * x[0] * (1 - exp(-t_star / tau));
    CHECK_NEAR(dW[0], v_end * x[0], 1e-7);
    CHECK_OK(ap_sim_set_sample_weights(s, NULL));
    /* euler stops at the first point whose derivative is below tol */
    o.solver = AP_SOLVER_EULER;
    o.dt = 0.01;
    CHECK_OK(ap_sim_run(s, &o, &st));
    double v = 0;
    long k = 0;
    while (fabs((w * 0.8 - v) / tau) >= tol) {
        v += 0.01 / tau * (w * 0.8 - v);
        k++;
    }
    CHECK(st.steps == k);
    CHECK_NEAR(st.t_reached, 0.01 * k, 1e-12);
    /* reset: the start state without a run */
    CHECK_OK(ap_sim_reset(s));
    double h[2];
    CHECK_OK(ap_sim_read(s, "h.soma", h, 2));
    CHECK(h[0] == 0.0 && h[1] == 0.0);
    double bad[2] = {1.0, NAN};
    CHECK_FAILS(ap_sim_set_sample_weights(s, bad), AP_ENONFINITE, "w[2]");
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ---- lowpass block against its closed form ---------------------------------------------- */

static void test_lowpass_block(void) {
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, 1));
    CHECK_OK(ap_model_add_input(m, "x", 2));
    ap_param p = {"tau", 0.7};
    const char *ports[] = {"input"}, *sigs[] = {"x"};
    CHECK_OK(ap_model_add_block(m, "f", "lowpass", &p, 1, ports, sigs, 1));
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    double x[2] = {1.0, -2.0}, y[2];
    CHECK_OK(ap_sim_set_input(s, "x", x, 2));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_ADAMS;
    o.t_end = 1.5;
    o.rtol = 1e-10;
    o.atol = 1e-12;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(ap_sim_read(s, "f.output", y, 2));
    for (int i = 0; i < 2; i++)
        CHECK_NEAR(y[i], x[i] * (1 - exp(-1.5 / 0.7)), 1e-8);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ---- settled start: dynamic compartments start at their drive ---------------------------- */

static void test_settled_start(void) {
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, 1));
    CHECK_OK(ap_model_add_input(m, "x", 1));
    CHECK_OK(ap_model_add_population(m, "a", 1, "rate", "tanh", NULL, 0));
    CHECK_OK(ap_model_add_population(m, "b", 1, "rate", "linear", NULL, 0));
    int i1, i2;
    ap_connect_spec sp = {0};
    sp.bias = 1;
    CHECK_OK(ap_model_connect(m, "x", "a.soma", &sp, &i1));
    CHECK_OK(ap_model_connect(m, "a", "b.soma", NULL, &i2));
    ap_model_weights(m, i1)[0] = 2.0;
    ap_model_bias(m, i1)[0] = 0.1;
    ap_model_weights(m, i2)[0] = -3.0;
    CHECK_OK(ap_model_set_start(m, "a", AP_START_SETTLED));
    CHECK_OK(ap_model_set_start(m, "b", AP_START_SETTLED));
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    double x = 0.4, b;
    CHECK_OK(ap_sim_set_input(s, "x", &x, 1));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = 3.0;
    CHECK_OK(ap_sim_run(s, &o, NULL));
    CHECK_OK(ap_sim_read(s, "b.soma", &b, 1));
    /* a fixed point from the start: nothing moves */
    CHECK_NEAR(b, -3.0 * tanh(2.0 * 0.4 + 0.1), 1e-12);
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_compile_errors(void) {
    ap_model *m;
    CHECK_OK(ap_model_new(&m, reg, 2));
    CHECK_OK(ap_model_set_origin(m, "loop.lua:3"));
    ap_param inst = {"tau", 0.0};
    CHECK_OK(ap_model_add_population(m, "p", 3, "rate", "tanh", &inst, 1));
    CHECK_OK(ap_model_set_origin(m, "loop.lua:4"));
    CHECK_OK(ap_model_add_population(m, "q", 3, "rate", "tanh", &inst, 1));
    CHECK_OK(ap_model_connect(m, "p", "q.soma", NULL, NULL));
    CHECK_OK(ap_model_connect(m, "q", "p.soma", NULL, NULL));
    ap_sim *s = NULL;
    CHECK_FAILS(ap_model_compile(m, &s), AP_ELOOP, "algebraic loop");
    CHECK(strstr(ap_last_error(), "loop.lua:3") && strstr(ap_last_error(), "q.soma"));
    CHECK(s == NULL);
    /* bad declarations */
    CHECK_FAILS(ap_model_add_population(m, "p", 3, "rate", "tanh", NULL, 0), AP_EDUP, "\"p\"");
    CHECK_FAILS(ap_model_add_population(m, "r", 3, "pyrmidal", "tanh", NULL, 0), AP_ENOTFOUND,
                "pyrmidal");
    CHECK_FAILS(ap_model_add_population(m, "r", 3, "rate", "tahn", NULL, 0), AP_ENOTFOUND, "tahn");
    ap_param neg = {"tau", -1.0};
    CHECK_FAILS(ap_model_add_population(m, "r", 3, "rate", "tanh", &neg, 1), AP_EINVAL, "tau = -1");
    ap_param typo = {"tua", 1.0};
    CHECK_FAILS(ap_model_add_population(m, "r", 3, "rate", "tanh", &typo, 1), AP_EINVAL,
                "unknown parameter \"tua\"");
    CHECK_FAILS(ap_model_add_population(m, "r", 0, "rate", "tanh", NULL, 0), AP_EINVAL, "size");
    CHECK_FAILS(ap_model_add_input(m, "9x", 3), AP_EINVAL, "9x");
    CHECK_OK(ap_model_add_input(m, "x", 4));
    ap_connect_spec one = {0};
    one.kind = AP_ONE_TO_ONE;
    CHECK_FAILS(ap_model_connect(m, "x", "p.soma", &one, NULL), AP_ESIZE, "4 and 3");
    CHECK_FAILS(ap_model_connect(m, "x", "p.dendrite", NULL, NULL), AP_ENOTFOUND, "dendrite");
    CHECK_FAILS(ap_model_connect(m, "y", "p.soma", NULL, NULL), AP_ENOTFOUND, "\"y\"");
    CHECK_FAILS(ap_model_connect(m, "x", "p", NULL, NULL), AP_EINVAL, "compartment");
    /* start values only for dynamic compartments of populations that do not start settled */
    CHECK_FAILS(ap_model_set_start_value(m, "p.soma", 1.0), AP_EINVAL, "instantaneous");
    CHECK_OK(ap_model_add_population(m, "d", 2, "rate", "tanh", NULL, 0));
    CHECK_OK(ap_model_set_start_value(m, "d.soma", 1.0));
    CHECK_FAILS(ap_model_set_start(m, "d", AP_START_SETTLED), AP_EINVAL, "start value");
    CHECK_OK(ap_model_set_start_value(m, "d.soma", 0.0));
    CHECK_OK(ap_model_set_start(m, "d", AP_START_SETTLED));
    CHECK_FAILS(ap_model_set_start_value(m, "d.soma", 1.0), AP_EINVAL, "starts settled");
    /* bounds read as a user reads them: DBL_MAX is no bound */
    ap_param big = {"tau", -2.0};
    CHECK_FAILS(ap_model_add_population(m, "e", 3, "rate", "tanh", &big, 1), AP_EINVAL,
                "tau = -2 must be >= 0");
    /* canonical default names: a rate named with or without ".rate" */
    int id1, id2;
    CHECK_OK(ap_model_connect(m, "d.rate", "p.soma", NULL, &id1));
    CHECK_FAILS(ap_model_connect(m, "d", "p.soma", NULL, &id2), AP_EDUP, "d->p.soma");
    ap_model_free(&m);
}

static void test_run_errors(void) {
    ap_model *m = lin_model(1.0);
    ap_sim *s;
    CHECK_OK(ap_model_compile(m, &s));
    CHECK_OK(ap_sim_write_state(s, "h.soma", lin_x0, LB * LN));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.keep_state = 1;
    o.dt = 0.03;
    o.t_end = 1.0;
    CHECK_FAILS(ap_sim_run(s, &o, NULL), AP_EINVAL, "whole number of steps");
    const char *rec[] = {"h.rate"};
    o.dt = 0.01;
    o.record = rec;
    o.n_record = 1;
    CHECK_FAILS(ap_sim_run(s, &o, NULL), AP_EINVAL, "neither times nor every");
    o.n_record = 0;
    o.solver = AP_SOLVER_CVODE_BDF;
    o.max_steps = 3;
    o.rtol = 1e-12;
    ap_run_stats st;
    CHECK_FAILS(ap_sim_run(s, &o, &st), AP_ESOLVER, "CV_TOO_MUCH_WORK");
    CHECK(strstr(ap_last_error(), "at t = ") && strstr(ap_last_error(), "last step size"));
    CHECK(st.steps == 3);
    /* NaN weights are refused, naming the entry */
    ap_model_weights(m, 0)[7] = NAN;
    o.max_steps = 0;
    CHECK_FAILS(ap_sim_run(s, &o, NULL), AP_ENONFINITE, "weight[2, 2]");
    /* a state that blows up names the variable */
    for (int i = 0; i < LN * LN; i++)
        ap_model_weights(m, 0)[i] = i % (LN + 1) == 0 ? 1e300 : 0;
    o.solver = AP_SOLVER_EULER;
    o.dt = 0.1;
    CHECK_FAILS(ap_sim_run(s, &o, NULL), AP_ENONFINITE, "h.soma[sample 1, unit 1]");
    /* the declared-order sweep checks each component as it writes it: same report */
    o.ordered = 1;
    CHECK_FAILS(ap_sim_run(s, &o, NULL), AP_ENONFINITE,
                "non-finite state: h.soma[sample 1, unit 1] = ");
    CHECK(strstr(ap_last_error(), " at t = 0.1") != NULL);
    o.ordered = 0;
    o.solver = AP_SOLVER_CVODE_BDF;
    CHECK_FAILS(ap_sim_run(s, &o, NULL), AP_ENONFINITE, "h.soma[sample");
    ap_sim_free(&s);
    ap_model_free(&m);
}

/* ap_sim_run_parallel: two simulations (different time constants) at once equal the same runs
 * one after the other, each against the closed form; errors for a repeated simulation, n out
 * of range and a failing run, whose message is prefixed with its number. */
/* A kernel for ap_sim_run_parallel_then: reads the run's end state (sim) into out, fails
 * when asked to (fail = 1). */
static int k_read_soma(const ap_kernel_args *a) {
    ap_sim *s = NULL;
    double *out = NULL, fail = 0;
    const size_t shape[1] = {LB * LN};
    int rc = ap_arg_object(a, "test.read", "sim", AP_ARG_SIM, 1, (void **)&s);
    if (!rc) rc = ap_arg_array(a, "test.read", "out", 1, 1, shape, &out, NULL);
    if (!rc) rc = ap_arg_number(a, "test.read", "fail", 0, &fail);
    if (rc) return rc;
    if (fail) return ap_error(AP_EINVAL, "kernel test.read: asked to fail");
    return ap_sim_read(s, "h.soma", out, LB * LN);
}

static void test_run_parallel(void) {
    ap_model *m1 = lin_model(1.0), *m2 = lin_model(0.5);
    ap_sim *s1, *s2;
    CHECK_OK(ap_model_compile(m1, &s1));
    CHECK_OK(ap_model_compile(m2, &s2));
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = 1.0;
    o.rtol = 1e-10;
    o.atol = 1e-12;
    o.keep_state = 1;
    double alone[2][LB * LN], par[2][LB * LN], want[LB * LN];
    ap_sim *sims[2] = {s1, s2};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(ap_sim_write_state(sims[k], "h.soma", lin_x0, LB * LN));
        CHECK_OK(ap_sim_run(sims[k], &o, NULL));
        CHECK_OK(ap_sim_read(sims[k], "h.soma", alone[k], LB * LN));
        CHECK_OK(ap_sim_write_state(sims[k], "h.soma", lin_x0, LB * LN));
    }
    const ap_run_opts *opts[2] = {&o, &o};
    ap_run_stats st[2];
    int rcs[2] = {-1, -1};
    char msgs[2][64];
    CHECK_OK(ap_sim_run_parallel(sims, opts, st, rcs, &msgs[0][0], sizeof msgs[0], 2));
    CHECK(rcs[0] == 0 && rcs[1] == 0 && msgs[0][0] == 0 && msgs[1][0] == 0);
    CHECK(st[0].steps > 0 && st[1].steps > 0);
    for (int k = 0; k < 2; k++) {
        CHECK_OK(ap_sim_read(sims[k], "h.soma", par[k], LB * LN));
        CHECK(memcmp(par[k], alone[k], sizeof par[k]) == 0); /* bit for bit */
    }
    lin_exact(1.0, 1.0, want);
    CHECK(rel_err(par[0], want, LB * LN) < 1e-8);
    lin_exact(0.5, 1.0, want);
    CHECK(rel_err(par[1], want, LB * LN) < 1e-8);

    /* then: each run's kernel, in its thread, after its run */
    static const ap_kernel read_k = {AP_ABI_VERSION, sizeof(ap_kernel), "test.read", "", "",
                                     k_read_soma};
    double got[2][LB * LN];
    ap_arg args[2][3];
    ap_kernel_args ka[2];
    ap_kernel_call then[2];
    for (int k = 0; k < 2; k++) {
        CHECK_OK(ap_sim_write_state(sims[k], "h.soma", lin_x0, LB * LN));
        memset(got[k], 0, sizeof got[k]);
        memset(args[k], 0, sizeof args[k]);
        args[k][0] = (ap_arg){.name = "sim", .kind = AP_ARG_SIM, .object = sims[k]};
        args[k][1] = (ap_arg){
            .name = "out", .kind = AP_ARG_ARRAY, .data = got[k], .ndim = 1, .shape = {LB * LN}};
        args[k][2] = (ap_arg){.name = "fail", .kind = AP_ARG_NUMBER, .number = k == 1};
        ka[k] = (ap_kernel_args){3, args[k]};
        then[k] = (ap_kernel_call){&read_k, &ka[k]};
    }
    CHECK(ap_sim_run_parallel_then(sims, opts, then, st, rcs, &msgs[0][0], sizeof msgs[0], 2) !=
          AP_OK);
    CHECK(rcs[0] == 0 && memcmp(got[0], alone[0], sizeof got[0]) == 0);
    CHECK(rcs[1] != 0 && strstr(msgs[1], "kernel test.read: asked to fail") == msgs[1]);
    CHECK(strstr(ap_last_error(), "run 2: kernel test.read") == ap_last_error());
    args[1][2].number = 0;
    for (int k = 0; k < 2; k++)
        CHECK_OK(ap_sim_write_state(sims[k], "h.soma", lin_x0, LB * LN));
    CHECK_OK(ap_sim_run_parallel_then(sims, opts, then, st, rcs, NULL, 0, 2));
    for (int k = 0; k < 2; k++)
        CHECK(memcmp(got[k], alone[k], sizeof got[k]) == 0);

    ap_sim *twice[2] = {s1, s1};
    CHECK_FAILS(ap_sim_run_parallel(twice, opts, NULL, NULL, NULL, 0, 2), AP_EINVAL,
                "runs 1 and 2 are the same simulation");
    CHECK_FAILS(ap_sim_run_parallel(sims, opts, NULL, NULL, NULL, 0, 0), AP_EINVAL, "n = 0 runs");
    /* run 2 fails (a negative step); run 1 still completes */
    ap_run_opts bad = o;
    bad.solver = AP_SOLVER_EULER;
    bad.dt = -1;
    const ap_run_opts *mixed[2] = {&o, &bad};
    CHECK_OK(ap_sim_write_state(s1, "h.soma", lin_x0, LB * LN));
    CHECK(ap_sim_run_parallel(sims, mixed, st, rcs, &msgs[0][0], sizeof msgs[0], 2) != AP_OK);
    CHECK(strstr(ap_last_error(), "run 2: ") == ap_last_error());
    CHECK(rcs[0] == 0 && rcs[1] != 0 && msgs[1][0] != 0);
    ap_sim_free(&s1);
    ap_sim_free(&s2);
    ap_model_free(&m1);
    ap_model_free(&m2);
}

int main(void) {
    if (ap_registry_new(&reg)) {
        fprintf(stderr, "registry: %s\n", ap_last_error());
        return 1;
    }
    lin_setup();
    (void)lin_tau;
    RUN(test_linear_cvode_exact);
    RUN(test_convergence_orders);
    RUN(test_record_times_cvode);
    RUN(test_ornstein_uhlenbeck);
    RUN(test_euler_maruyama_draws);
    RUN(test_stiff);
    RUN(test_ordered_euler_by_hand);
    RUN(test_accumulator_hebb);
    RUN(test_settle_and_weights);
    RUN(test_lowpass_block);
    RUN(test_settled_start);
    RUN(test_compile_errors);
    RUN(test_run_errors);
    RUN(test_run_parallel);
    ap_registry_free(&reg);
    return CHECK_DONE();
}
