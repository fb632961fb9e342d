/* run_parallel.c — several simulations integrated at once, one thread each: what lets a
 * minibatch split into halves use both cores for everything (products, activations, noise,
 * the solver's vector work) instead of the products alone; optionally each run followed, in
 * its thread, by a kernel call on its results. */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "apical/error.h"
#include "apical/sim.h"

typedef struct job {
    ap_sim *s;
    const ap_run_opts *o;
    ap_kernel_call then;
    ap_run_stats st;
    int rc;
    char msg[1024]; /* the engine's last error is per thread: copied out here */
} job;

static void run_job(job *j) {
    j->msg[0] = '\0';
    j->rc = ap_sim_run(j->s, j->o, &j->st);
    if (j->rc) {
        snprintf(j->msg, sizeof j->msg, "%s", ap_last_error());
        return;
    }
    if (!j->then.kernel) return;
    j->rc = ap_kernel_invoke(j->then.kernel, j->then.args);
    if (j->rc) snprintf(j->msg, sizeof j->msg, "%s", ap_last_error());
}

static void *thread_main(void *arg) {
    run_job(arg);
    return NULL;
}

int ap_sim_run_parallel(ap_sim *const *sims, const ap_run_opts *const *opts, ap_run_stats *stats,
                        int *rcs, char *msgs, size_t msg_size, int n) {
    return ap_sim_run_parallel_then(sims, opts, NULL, stats, rcs, msgs, msg_size, n);
}

int ap_sim_run_parallel_then(ap_sim *const *sims, const ap_run_opts *const *opts,
                             const ap_kernel_call *then, ap_run_stats *stats, int *rcs, char *msgs,
                             size_t msg_size, int n) {
    enum { MAX_RUNS = 64 };
    if (n < 1 || n > MAX_RUNS)
        return ap_error(AP_EINVAL, "ap_sim_run_parallel: n = %d runs, must be 1..%d", n, MAX_RUNS);
    if (!sims || !opts) return ap_error(AP_EINVAL, "ap_sim_run_parallel: sims or opts is NULL");
    for (int i = 0; i < n; i++) {
        if (!sims[i] || !opts[i])
            return ap_error(AP_EINVAL, "ap_sim_run_parallel: run %d has no %s", i + 1,
                            sims[i] ? "options" : "simulation");
        if (opts[i]->across_ranks && n > 1)
            return ap_error(AP_EINVAL,
                            "ap_sim_run_parallel: run %d has across_ranks (one integration "
                            "across the MPI ranks calls MPI, which only the main thread does); "
                            "run it alone with ap_sim_run",
                            i + 1);
        for (int k = 0; k < i; k++)
            if (sims[k] == sims[i])
                return ap_error(AP_EINVAL,
                                "ap_sim_run_parallel: runs %d and %d are the same simulation",
                                k + 1, i + 1);
    }
    job jobs[MAX_RUNS];
    pthread_t th[MAX_RUNS];
    int started[MAX_RUNS] = {0};
    for (int i = 0; i < n; i++) {
        memset(&jobs[i].st, 0, sizeof jobs[i].st);
        jobs[i].s = sims[i];
        jobs[i].o = opts[i];
        jobs[i].then = then ? then[i] : (ap_kernel_call){NULL, NULL};
    }
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    for (int i = 1; i < n; i++)
        started[i] = pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0;
    run_job(&jobs[0]);
    for (int i = 1; i < n; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            run_job(&jobs[i]); /* no thread to be had: run it here, after the others */
    }
    openblas_set_num_threads(blas_threads);
    int first = -1;
    for (int i = 0; i < n; i++) {
        if (stats) stats[i] = jobs[i].st;
        if (rcs) rcs[i] = jobs[i].rc;
        if (msgs && msg_size) snprintf(msgs + (size_t)i * msg_size, msg_size, "%s", jobs[i].msg);
        if (jobs[i].rc && first < 0) first = i;
    }
    if (first < 0) return AP_OK;
    return ap_error(jobs[first].rc, "run %d: %s", first + 1, jobs[first].msg);
}

const char *ap_blas_core(void) {
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
}

int ap_blas_threads(int n) {
    int before = openblas_get_num_threads();
    if (n > 0) openblas_set_num_threads(n);
    return before;
}
