/* bench_eigen.c — the plugin's dense nonsymmetric eigenvalue problem (dfc.jq_eigen: J Q, n_L x n_L;
 * dfc.stability: the linearised network + controller, (N + n_L) x (N + n_L)) solved by GSL's
 * gsl_eigen_nonsymm (Francis QR, no balancing) and by LAPACK's dgeev (balancing, Hessenberg
 * reduction, QR; eigenvalues only), with their workspaces allocated once, as the kernels do.
 * Matrices: a fixed-seed random matrix minus 2 I (a stable, nonsymmetric spectrum), copied
 * before every solve (both solvers overwrite it). Prints, per size, the median over `reps`
 * repetitions of the time per solve and the ratio GSL / LAPACK, and the largest difference of
 * the sorted real parts between the two (a check that both solve the same problem).
 *   build/bench/bench_eigen [reps]  */
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 7;
    /* n_L of Fig. 3 (5) and MNIST (10); N + n_L of Fig. 3's 15-10-10-5 (30), a wider net (100),
     * MNIST 784-256-256-256-10 (778) */
    const int sizes[] = {5, 10, 30, 100, 778};
    printf("%6s %8s %14s %14s %8s %10s\n", "n", "solves", "gsl (us)", "lapack (us)", "gsl/lap",
           "max |dre|");
    gsl_set_error_handler_off();
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        const int n = sizes[z];
        const int inner = n <= 10 ? 20000 : n <= 30 ? 2000 : n <= 100 ? 100 : 2;
        double *A0 = malloc((size_t)n * n * sizeof *A0), *A = malloc((size_t)n * n * sizeof *A);
        double *wr = malloc((size_t)n * sizeof *wr), *wi = malloc((size_t)n * sizeof *wi);
        double *gre = malloc((size_t)n * sizeof *gre), *tg = malloc((size_t)reps * sizeof *tg);
        double *tl = malloc((size_t)reps * sizeof *tl);
        uint64_t s = 0x9e3779b97f4a7c15ull + (uint64_t)n;
        for (size_t k = 0; k < (size_t)n * n; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            A0[k] = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 2.0 / sqrt((double)n);
        }
        for (int k = 0; k < n; k++)
            A0[(size_t)k * n + k] -= 2.0;
        gsl_vector_complex *ev = gsl_vector_complex_alloc((size_t)n);
        gsl_eigen_nonsymm_workspace *ws = gsl_eigen_nonsymm_alloc((size_t)n);
        /* dgeev's workspace query, once */
        double lwork_q = 0, vl = 0, vr = 0;
        LAPACKE_dgeev_work(LAPACK_ROW_MAJOR, 'N', 'N', n, A, n, wr, wi, &vl, 1, &vr, 1, &lwork_q,
                           -1);
        const lapack_int lwork = (lapack_int)lwork_q;
        double *work = malloc((size_t)lwork * sizeof *work);
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            for (int it = 0; it < inner; it++) {
                memcpy(A, A0, (size_t)n * n * sizeof *A);
                gsl_matrix_view Av = gsl_matrix_view_array(A, (size_t)n, (size_t)n);
                if (gsl_eigen_nonsymm(&Av.matrix, ev, ws)) return 1;
            }
            tg[r] = (now() - t0) / inner;
            t0 = now();
            for (int it = 0; it < inner; it++) {
                memcpy(A, A0, (size_t)n * n * sizeof *A);
                if (LAPACKE_dgeev_work(LAPACK_ROW_MAJOR, 'N', 'N', n, A, n, wr, wi, &vl, 1, &vr, 1,
                                       work, lwork))
                    return 1;
            }
            tl[r] = (now() - t0) / inner;
        }
        for (int k = 0; k < n; k++)
            gre[k] = GSL_REAL(gsl_vector_complex_get(ev, (size_t)k));
        qsort(gre, (size_t)n, sizeof *gre, cmp_double);
        qsort(wr, (size_t)n, sizeof *wr, cmp_double);
        double dmax = 0;
        for (int k = 0; k < n; k++)
            dmax = fmax(dmax, fabs(gre[k] - wr[k]));
        const double mg = median(tg, reps), ml = median(tl, reps);
        printf("%6d %8d %14.2f %14.2f %8.2f %10.1e\n", n, inner, 1e6 * mg, 1e6 * ml, mg / ml, dmax);
        gsl_eigen_nonsymm_free(ws);
        gsl_vector_complex_free(ev);
        free(A0), free(A), free(wr), free(wi), free(gre), free(tg), free(tl), free(work);
    }
    return 0;
}
