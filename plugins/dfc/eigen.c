/* eigen.c — the eigenvalues of a dense nonsymmetric matrix, sorted, for the measures that need
 * them (dfc.jq_eigen: J Q; dfc.stability: the linearised network + controller). One workspace
 * per kernel call, reused for every sample: LAPACK's dgeev (balancing, Hessenberg reduction,
 * Francis QR; eigenvalues only) through LAPACKE's work interface, so the loop over the samples
 * allocates nothing. LAPACK rather than GSL's gsl_eigen_nonsymm: as fast at the sizes the
 * trainers use (n = 5..30; bench/bench_eigen.c, docs/benchmarks.md, "Dense eigenvalues"), and
 * the plugin's other dense solves (dgesv, dposv, dgelsd) are LAPACK's, so the plugin needs no
 * GSL. */
#include <lapacke.h>
#include <stdlib.h>

#include "apical/error.h"
#include "dfc_internal.h"

typedef struct eig {
    double re, im;
} eig;

/* ascending real part, then imaginary part (a conjugate pair: -im first) */
static int eig_cmp(const void *pa, const void *pb) {
    const eig *x = pa, *y = pb;
    if (x->re != y->re) return x->re < y->re ? -1 : 1;
    if (x->im != y->im) return x->im < y->im ? -1 : 1;
    return 0;
}

int dfc_eigen_new(int n, const char *kernel, dfc_eigen *w) {
    w->n = n;
    w->lwork = 0;
    w->mem = NULL;
    w->work = NULL;
    /* dgeev's optimal workspace for n, asked once */
    double q = 0, vl = 0, vr = 0, a = 0, wr = 0, wi = 0;
    lapack_int info =
        LAPACKE_dgeev_work(LAPACK_ROW_MAJOR, 'N', 'N', n, &a, n, &wr, &wi, &vl, 1, &vr, 1, &q, -1);
    if (info) return ap_error(AP_EPLUGIN, "kernel %s: LAPACK dgeev workspace query failed", kernel);
    w->lwork = (int)q;
    if (w->lwork < 1) w->lwork = 1;
    /* wr, wi (n each), the sorted pairs (2 n), dgeev's workspace */
    w->mem = malloc((4 * (size_t)n + (size_t)w->lwork) * sizeof(double));
    if (!w->mem)
        return ap_error(AP_ENOMEM, "kernel %s: out of memory (eigenvalue workspace, n = %d)",
                        kernel, n);
    w->work = w->mem + 4 * (size_t)n;
    return AP_OK;
}

int dfc_eigen_solve(dfc_eigen *w, double *A, const char *kernel, const char *what, int sample,
                    double *re, double *im) {
    const int n = w->n;
    double *wr = w->mem, *wi = wr + n, vl = 0, vr = 0;
    lapack_int info = LAPACKE_dgeev_work(LAPACK_ROW_MAJOR, 'N', 'N', n, A, n, wr, wi, &vl, 1, &vr,
                                         1, w->work, w->lwork);
    if (info)
        return ap_error(info > 0 ? AP_EINVAL : AP_EPLUGIN,
                        "kernel %s: the eigenvalues of %s did not converge for sample %d (LAPACK "
                        "dgeev info %d)",
                        kernel, what, sample, (int)info);
    /* dgeev returns them in the order of the Schur form: sorted here */
    eig *e = (eig *)(wi + n);
    for (int k = 0; k < n; k++) {
        e[k].re = wr[k];
        e[k].im = wi[k];
    }
    qsort(e, (size_t)n, sizeof *e, eig_cmp);
    for (int k = 0; k < n; k++) {
        re[k] = e[k].re;
        if (im) im[k] = e[k].im;
    }
    return AP_OK;
}

void dfc_eigen_free(dfc_eigen *w) {
    free(w->mem);
    w->mem = NULL;
    w->work = NULL;
}
