/* apical/sim.h — compiled simulations: the plan, solvers, recorders and accumulators. */
#ifndef APICAL_SIM_H
#define APICAL_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "apical/export.h"
#include "apical/model.h"
#include "apical/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ap_sim ap_sim;

/* Compiles the model into a simulation: lays out one state vector for the batch (each dynamic
 * variable a contiguous batch x n block), orders the instantaneous signals, resolves every
 * name. Fails with a message quoting the origin of the object at fault: unknown names
 * (AP_ENOTFOUND), size mismatches (AP_ESIZE), algebraic loops of instantaneous links
 * (AP_ELOOP, the loop listed), negative time constants (AP_EINVAL). Closes the registry.
 * The model must outlive the simulation; its structure must not change afterwards (its
 * weights may: they are read live). */
AP_API int ap_model_compile(ap_model *m, ap_sim **out);
AP_API void ap_sim_free(ap_sim **s);
AP_API ap_model *ap_sim_model(const ap_sim *s);

/* Sets input `name` (batch x n values, row-major); inputs are held during a run. */
AP_API int ap_sim_set_input(ap_sim *s, const char *name, const double *data, size_t count);

/* Copies the current values of a signal (batch x n) into dst (count must be batch x n). After
 * a run these are the values at its end. */
AP_API int ap_sim_read(ap_sim *s, const char *signal, double *dst, size_t count);

/* Overwrites a dynamic variable (a dynamic compartment or a block state) for a run started
 * with keep_state. */
AP_API int ap_sim_write_state(ap_sim *s, const char *signal, const double *src, size_t count);

/* Total number of state variables (batch x sum of dynamic sizes). */
AP_API size_t ap_sim_state_size(const ap_sim *s);

/* Sets the start state (as a run would: start values, settled populations, block init) and
 * computes every signal there, without integrating. ap_sim_read then gives the start state's
 * signals (for a feedforward network started settled: its feedforward pass). */
AP_API int ap_sim_reset(ap_sim *s);

/* Copies the current state vector (ap_sim_state_size values) into y. */
AP_API int ap_sim_get_state(const ap_sim *s, double *y);

/* The right-hand side f(t, y) of the whole batch, as the solvers see it: evaluates every
 * signal at state y and writes dy/dt into ydot (both ap_sim_state_size values). The signals
 * are left at y. Returns AP_ENONFINITE naming the variable if a derivative is not finite. For
 * benchmarks, Jacobian checks and external integrators. */
AP_API int ap_sim_rhs(ap_sim *s, double t, const double *y, double *ydot);

typedef enum {
    AP_SOLVER_EULER = 0,
    AP_SOLVER_RK4,
    AP_SOLVER_EULER_MARUYAMA,
    AP_SOLVER_CVODE_BDF,
    AP_SOLVER_CVODE_ADAMS,
} ap_solver_kind;

/* Parses "euler", "rk4", "euler-maruyama", "cvode-bdf", "cvode-adams". */
AP_API int ap_solver_from_name(const char *name, ap_solver_kind *kind);
AP_API const char *ap_solver_name(ap_solver_kind kind);

typedef enum {
    AP_LINSOL_DEFAULT = 0, /* BDF: Krylov (SPGMR, matrix-free) */
    AP_LINSOL_KRYLOV,
    AP_LINSOL_DENSE, /* difference-quotient dense Jacobian: small systems only */
} ap_linsol_kind;

/* Preconditioner of the Krylov solver. The batch's Jacobian is block-diagonal over samples. */
typedef enum {
    AP_PREC_DEFAULT = 0, /* the first registered type that applies (apical/precond.h), else
                          * block when a sample has at most 128 state variables, else none */
    AP_PREC_NONE,        /* plain GMRES */
    AP_PREC_DIAGONAL,    /* per variable: -1/tau for leaky compartments, finite differences else */
    AP_PREC_BLOCK,       /* per sample: its dense Jacobian by finite differences, LU, exact solve */
    AP_PREC_TYPE,        /* a registered preconditioner type: ap_run_opts.precond_type names it
                          * (apical/precond.h) */
} ap_precond_kind;

/* The fixed-step stability guard (euler, rk4, euler-maruyama; docs/solvers.md, "Fixed-step
 * stability"). FULL: before the run, the amplification of one step of the scheme at the start
 * state is estimated (power iteration with finite-difference products of the step map), and a
 * warning naming dt, the estimated stable bound and the scheme goes into the statistics when
 * it exceeds 1 along a decaying direction; during the run, a state whose largest magnitude
 * grows explosively (at least 2-fold every 8 steps, 1e6-fold in all, along a direction in
 * which the circuit's dynamics decay) stops it with
 * AP_ENONFINITE naming the variable and the time. WATCH: the growth watch only. OFF: neither
 * (non-finite states still stop a run). */
typedef enum {
    AP_STABILITY_FULL = 0,
    AP_STABILITY_WATCH,
    AP_STABILITY_OFF,
} ap_stability_check;

typedef struct ap_run_opts {
    ap_solver_kind solver;
    double t_end; /* runs over [0, t_end] */

    /* fixed-step solvers (euler, rk4, euler-maruyama) */
    double dt;
    long steps; /* > 0: t_end = steps * dt */
    /* Declared-order update (euler and euler-maruyama): components (populations and blocks)
     * are stepped one after another in `order` (NULL: declaration order); each reads the
     * newest values of what it reads, except the signals in `previous`, read as they were at
     * the start of the step. A component's outputs are recomputed only when it is stepped. */
    int ordered;
    const char *const *order;
    int n_order;
    const char *const *previous;
    int n_previous;
    /* euler-maruyama: white noise on dynamic compartments, tau dx = (...) dt + sigma dW
     * (block states: dx = f dt + sigma dW) */
    const char *const *noise;
    const double *sigma;
    int n_noise;
    uint64_t seed;
    ap_stability_check stability_check; /* default (0): AP_STABILITY_FULL */

    /* CVODE */
    double rtol, atol;
    long max_steps;   /* per run; 0: 500 000 */
    double max_step;  /* 0: unlimited */
    double init_step; /* 0: CVODE's estimate */
    int max_order;    /* 0: CVODE's default (5 for BDF, 12 for Adams) */
    ap_linsol_kind linsol;
    ap_precond_kind precond;  /* Krylov only (an error with the dense solver) */
    const char *precond_type; /* AP_PREC_TYPE: the registered type's name */
    int quad_errcon;          /* include accumulators in the error test */
    /* 1: one integration across the MPI ranks (apical/comm.h): each rank's state is its part
     * of one state whose norms, error test, Krylov products and steps are global, so that all
     * ranks take the steps one process would take for the whole state. Every rank must run at
     * once; the accumulators stay each rank's part (their sum over the ranks is the whole).
     * Not with quad_errcon or a dense linear solver. One process: no effect. */
    int across_ranks;

    /* recording: signals at times (fixed-step: must lie on the step grid), or every k-th
     * step (CVODE: internal steps), or both */
    const char *const *record;
    int n_record;
    const double *times;
    int n_times;
    long every; /* 0: only `times`; the initial state is recorded when every > 0 */

    /* Stop early once settled: when the largest |dx/dt| over the state falls below settle_tol
     * (0: never). CVODE finds the time by root finding; fixed-step solvers test every step.
     * stats.t_reached tells when; accumulators average over [0, t_reached]. */
    double settle_tol;

    int keep_state; /* 1: start from the current state instead of the models' start values */
    int accumulate; /* 1: integrate the attached plasticity rules (default 1) */
} ap_run_opts;

/* Fills defaults: euler, dt 0.01, rtol 1e-6, atol 1e-8, accumulate 1, every 0. */
AP_API void ap_run_opts_default(ap_run_opts *o);

typedef struct ap_run_stats {
    long steps;
    long rhs_evals;
    long lin_iters;
    long nonlin_iters;
    long err_test_fails;
    long conv_fails;
    long jac_evals;
    double t_reached;
    /* the stability guard's estimate (AP_STABILITY_FULL): the amplification per step of the
     * dominant mode at the start state (0: not estimated), the largest stable dt found when dt
     * is above it (0 otherwise), the right-hand-side evaluations it took (not in rhs_evals), and
     * the warning ("" when none) */
    double stab_growth, stab_dt;
    long stab_evals;
    char stab_warning[512];
    double last_step;
    double wall_seconds;
} ap_run_stats;

/* Integrates the simulation from its start state over [0, t_end]. Recordings and
 * accumulators of the previous run are replaced. On failure the message names: for CVODE the
 * flag (e.g. CV_TOO_MUCH_WORK), the time and the last step size; for a non-finite state the
 * variable ("h1.soma[sample 3, unit 17]") and the time. stats may be NULL; it is filled even
 * on failure, up to where the run stopped. */
AP_API int ap_sim_run(ap_sim *s, const ap_run_opts *o, ap_run_stats *stats);

/* Runs n distinct simulations at once, one thread each (the first in the calling thread),
 * with OpenBLAS single-threaded for the duration (each run's products on its own core rather
 * than two runs fighting over one BLAS thread pool); the previous thread count is restored.
 * opts[i] and stats[i] (stats may be NULL) as for ap_sim_run; rcs[i] (may be NULL) receives
 * each run's code and, when msgs is not NULL, msgs + i * msg_size its message ("" on
 * success). Returns AP_OK when every run succeeded, else the first failing run's code, whose
 * message (prefixed with "run i: ") is then the caller's last error. AP_EINVAL for n < 1, a
 * NULL simulation, or one simulation given twice (a simulation's buffers are its own, so
 * distinct simulations share nothing a run writes). */
AP_API int ap_sim_run_parallel(ap_sim *const *sims, const ap_run_opts *const *opts,
                               ap_run_stats *stats, int *rcs, char *msgs, size_t msg_size, int n);

/* A kernel call made in a run's own thread right after the run succeeded: per-run work on the
 * run's results (a gradient from its recordings, say) that then runs on both cores too. */
typedef struct ap_kernel_call {
    const ap_kernel *kernel;    /* NULL: nothing to call */
    const ap_kernel_args *args; /* as for kernel->call; kept alive by the caller */
} ap_kernel_call;

/* ap_sim_run_parallel, then, in run i's thread once run i succeeded, then[i].kernel (then may
 * be NULL, as may any then[i].kernel). The kernels run concurrently: they must not write the
 * same memory (give each its own optimiser or output array) and may read what the others
 * only read. A failing call makes its run fail with the kernel's message, "kernel NAME: ...".
 * OpenBLAS is single-threaded during the calls too. */
AP_API int ap_sim_run_parallel_then(ap_sim *const *sims, const ap_run_opts *const *opts,
                                    const ap_kernel_call *then, ap_run_stats *stats, int *rcs,
                                    char *msgs, size_t msg_size, int n);

/* OpenBLAS's thread count: n > 0 sets it (for the whole process); returns the count before.
 * A minibatch split over threads runs best with single-threaded BLAS everywhere: an idle
 * BLAS worker spins for a while after each multi-threaded product, taking a core from the
 * runs. */
AP_API int ap_blas_threads(int n);

/* OpenBLAS's kernel family in use (its core name, e.g. "Haswell", "Cooperlake"): its own
 * choice for the processor, or the one OPENBLAS_CORETYPE names. */
AP_API const char *ap_blas_core(void);

/* Solves (I - gamma J~) z = r with preconditioner `kind` (diagonal or block) built at state y
 * (ap_sim_state_size values) and time t, as the Krylov solver uses it: J~ approximates the
 * Jacobian of ap_sim_rhs. For tests and external integrators; the signals are left at y. */
AP_API int ap_sim_precond_solve(ap_sim *s, ap_precond_kind kind, double t, const double *y,
                                double gamma, const double *r, double *z);

/* Recording k (order of opts.record) of the last run: n_times rows of width batch x n.
 * Pointers stay valid until the next run or ap_sim_free. */
AP_API int ap_sim_recording(const ap_sim *s, int k, const double **data, const double **times,
                            size_t *n_times, int *width);

/* How an accumulator combines the trajectory (fixed-step solvers; CVODE always integrates). */
typedef enum {
    AP_ACC_ALL = 0, /* every point of the trajectory, initial one included */
    AP_ACC_LEFT,    /* points 0..N-1 (left Riemann sum) */
    AP_ACC_RIGHT,   /* points 1..N */
} ap_acc_points;
AP_API int ap_sim_set_accumulation(ap_sim *s, ap_acc_points points);

/* Per-sample weights of the accumulators (batch values; NULL: all 1): sample b's contribution
 * to every accumulated update is multiplied by w[b] (0 drops it). Kept until changed. */
AP_API int ap_sim_set_sample_weights(ap_sim *s, const double *w);

/* Replaces every accumulator by its rule evaluated once at the current signals (weight 1):
 * the update of the last state only (after a run or ap_sim_reset). */
AP_API int ap_sim_accumulate_state(ap_sim *s);

/* The accumulated update of projection `id` over the last run, as a time average:
 * fixed-step: the mean of the rule over the chosen points; CVODE: (1/t_end) * integral over
 * [0, t_end] (quadrature). dW: rows x cols, db: rows (NULL without a bias). weight receives
 * the number of points (fixed-step) or t_end (CVODE). AP_ENOTFOUND if no rule is attached. */
AP_API int ap_sim_accumulator(const ap_sim *s, int id, const double **dW, const double **db,
                              double *weight);

#ifdef __cplusplus
}
#endif
#endif
