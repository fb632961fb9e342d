/* bench_rhs.c — the right-hand side of a 784-256-256-256-10 tanh rate network (batch 128)
 * against cblas_dgemm on the same shapes, and full solves over t in [0, 20] with euler and
 * CVODE. Every figure is a ratio measured in this run; medians of several repetitions. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apical/error.h"
#include "apical/model.h"
#include "apical/registry.h"
#include "apical/sim.h"

#define REPS 7

static const int sizes[] = {784, 256, 256, 256, 10};
enum { NL = 4, BATCH = 128 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what) {
    fprintf(stderr, "bench_rhs: %s: %s\n", what, ap_last_error());
    exit(1);
}

int main(int argc, char **argv) {
    int evals = argc > 1 ? atoi(argv[1]) : 200;
    ap_registry *reg;
    ap_model *m;
    if (ap_registry_new(&reg) || ap_model_new(&m, reg, BATCH)) die("setup");
    if (ap_model_add_input(m, "x", sizes[0])) die("input");
    const char *names[] = {"x", "h1", "h2", "h3", "out"};
    for (int l = 1; l <= NL; l++) {
        if (ap_model_add_population(
                m, names[l], sizes[l], "rate",
                getenv("BENCH_ACT") ? getenv("BENCH_ACT") : (l < NL ? "tanh" : "linear"), NULL, 0))
            die("population");
        char tgt[32];
        snprintf(tgt, sizeof tgt, "%s.soma", names[l]);
        ap_connect_spec sp = {.bias = 1, .init = "xavier_normal", .seed = (uint64_t)l};
        if (ap_model_connect(m, names[l - 1], tgt, &sp, NULL)) die("connect");
    }
    ap_sim *s;
    if (ap_model_compile(m, &s)) die("compile");
    double *x = malloc(sizeof(double) * BATCH * sizes[0]);
    srand(1);
    for (int i = 0; i < BATCH * sizes[0]; i++)
        x[i] = rand() / (double)RAND_MAX;
    if (ap_sim_set_input(s, "x", x, (size_t)BATCH * sizes[0])) die("set_input");
    size_t N = ap_sim_state_size(s);
    double *y = malloc(N * sizeof *y), *yd = malloc(N * sizeof *yd);
    for (size_t i = 0; i < N; i++)
        y[i] = 0.1 * sin((double)i);

    /* the dense products of one evaluation, as bare dgemm calls on the same shapes */
    double flops = 0;
    double *A[NL + 1], *W[NL + 1], *C[NL + 1];
    for (int l = 1; l <= NL; l++) {
        flops += 2.0 * BATCH * sizes[l - 1] * sizes[l];
        A[l] = calloc((size_t)BATCH * sizes[l - 1], sizeof(double));
        W[l] = calloc((size_t)sizes[l] * sizes[l - 1], sizeof(double));
        C[l] = calloc((size_t)BATCH * sizes[l], sizeof(double));
        for (int i = 0; i < BATCH * sizes[l - 1]; i++)
            A[l][i] = 0.01 * (i % 17);
        for (int i = 0; i < sizes[l] * sizes[l - 1]; i++)
            W[l][i] = 0.01 * (i % 13);
    }
    double t_rhs[REPS], t_gemm[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        for (int k = 0; k < evals; k++)
            if (ap_sim_rhs(s, 0.0, y, yd)) die("rhs");
        t_rhs[r] = (now() - t0) / evals;
        t0 = now();
        for (int k = 0; k < evals; k++)
            for (int l = 1; l <= NL; l++)
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BATCH, sizes[l], sizes[l - 1],
                            1.0, A[l], sizes[l - 1], W[l], sizes[l - 1], 0.0, C[l], sizes[l]);
        t_gemm[r] = (now() - t0) / evals;
    }
    double tr = median(t_rhs, REPS), tg = median(t_gemm, REPS);
    printf(
        "## Right-hand side, 784-256-256-256-10 tanh, batch %d (median of %d x %d evaluations)\n\n",
        BATCH, REPS, evals);
    printf("| measure | value |\n|---|---|\n");
    printf("| state size | %zu |\n", N);
    printf("| dense flops per evaluation | %.3g |\n", flops);
    printf("| apical rhs: evaluations/s | %.1f |\n", 1.0 / tr);
    printf("| apical rhs: GFlop/s | %.2f |\n", flops / tr * 1e-9);
    printf("| bare cblas_dgemm, same shapes: GFlop/s | %.2f |\n", flops / tg * 1e-9);
    printf("| **ratio rhs / dgemm** | **%.3f** |\n\n", tg / tr);

    if (argc > 2 && strcmp(argv[2], "--rhs-only") == 0) return 0;
    /* full solves over [0, 20] from the zero state */
    struct {
        ap_solver_kind kind;
        const char *label;
    } runs[] = {{AP_SOLVER_EULER, "euler dt 0.02"},
                {AP_SOLVER_CVODE_BDF, "cvode-bdf rtol 1e-6"},
                {AP_SOLVER_CVODE_ADAMS, "cvode-adams rtol 1e-6"}};
    double wall[3];
    ap_run_stats st[3];
    double final[3][10 * BATCH];
    const char *only = getenv("BENCH_ONLY");
    for (int k = 0; k < 3; k++) {
        double w[REPS];
        if (only && atoi(only) != k) {
            memset(&st[k], 0, sizeof st[k]);
            wall[k] = 1;
            continue;
        }
        for (int r = 0; r < REPS; r++) {
            ap_run_opts o;
            ap_run_opts_default(&o);
            o.solver = runs[k].kind;
            o.t_end = 20.0;
            o.dt = 0.02;
            o.rtol = 1e-6;
            o.atol = 1e-8;
            if (ap_sim_run(s, &o, &st[k])) die(runs[k].label);
            w[r] = st[k].wall_seconds;
        }
        wall[k] = median(w, REPS);
        if (ap_sim_read(s, "out", final[k], 10 * BATCH)) die("read");
    }
    /* reference: cvode-bdf at rtol 1e-10 */
    ap_run_opts o;
    ap_run_opts_default(&o);
    o.solver = AP_SOLVER_CVODE_BDF;
    o.t_end = 20.0;
    o.rtol = 1e-10;
    o.atol = 1e-12;
    if (ap_sim_run(s, &o, NULL)) die("reference");
    double ref[10 * BATCH];
    if (ap_sim_read(s, "out", ref, 10 * BATCH)) die("read");
    printf("## Full solve over t in [0, 20], same network (median of %d runs)\n\n", REPS);
    printf("| solver | steps | rhs evals | lin iters | wall s | time / euler | rel. error of "
           "output at t=20 |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < 3; k++) {
        double num = 0, den = 0;
        for (int i = 0; i < 10 * BATCH; i++) {
            num += (final[k][i] - ref[i]) * (final[k][i] - ref[i]);
            den += ref[i] * ref[i];
        }
        printf("| %s | %ld | %ld | %ld | %.4f | %.3f | %.2e |\n", runs[k].label, st[k].steps,
               st[k].rhs_evals, st[k].lin_iters, wall[k], wall[k] / wall[0], sqrt(num / den));
    }
    for (int l = 1; l <= NL; l++) {
        free(A[l]);
        free(W[l]);
        free(C[l]);
    }
    free(x);
    free(y);
    free(yd);
    ap_sim_free(&s);
    ap_model_free(&m);
    ap_registry_free(&reg);
    return 0;
}
