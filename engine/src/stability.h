/* stability.h — the fixed-step stability guard (internal to libapical): before a run, an
 * estimate of how much one step of the scheme actually used amplifies perturbations of the
 * start state; during the run, a watch for explosive growth of the state. */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_STABILITY_H
#define APICAL_STABILITY_H

#include <stddef.h>

#include "sim_impl.h"

/* One step of the scheme, without noise, from the state in s->run.x (overwritten by the new
 * state) at time t: schemes that evaluate the right-hand side compute the signals from s->run.x
 * first, the declared-order sweep reads them as they are (latched). 0, or the failing call's
 * code. */
typedef int (*apx_step_fn)(void *ctx, double t, double dt);

/* The watch samples the state's largest magnitude every APX_GUARD_EVERY steps. */
#define APX_GUARD_EVERY 8

typedef struct apx_guard {
    ap_sim *s;
    apx_step_fn step;
    void *ctx;
    const char *scheme; /* "euler", "euler (declared order)", "rk4", ... */
    double dt;
    long n_steps;
    int estimate, watch; /* estimate before the run, watch the growth during it */
    /* what one step maps: the state, and for the declared-order sweep also every signal a
     * sweep reads before it rewrites it (rates, instantaneous compartments, block outputs),
     * as n_seg segments of n values in all */
    int n_seg;
    double **seg;
    size_t *seg_len, n;
    double *x0, *y0, *v, *w, *f0, *vd; /* n each, allocated once per run */
    /* the estimate: amplification per step of the dominant mode of the step's Jacobian at the
     * start state (0: not estimated); unstable: > 1 along a direction in which the circuit's
     * own dynamics decay, dt_stable then the largest step found stable */
    double growth, dt_stable;
    int unstable;
    long evals;
    /* the watch: the last sampled magnitude, the one where the run of growing samples began,
     * and how many samples that run has had */
    double m_prev, m_base;
    int streak;
} apx_guard;

/* Allocates the guard's vectors for a run of s (check: the run's stability_check). */
int apx_guard_init(apx_guard *g, ap_sim *s, int check, int ordered, const char *scheme,
                   apx_step_fn step, void *ctx, double dt, long n_steps);
void apx_guard_free(apx_guard *g);

/* The estimate at the start state (s->run.x and its signals). Leaves s->run.x as it found it, but
 * not the signals: the caller starts the run again. Fills stats->stab_* (the warning when dt is
 * unstable). */
int apx_guard_estimate(apx_guard *g, ap_run_stats *st);

/* After step k (the state at time t): every APX_GUARD_EVERY steps, the growth test. Returns
 * AP_ENONFINITE with a message naming the largest variable and the time once the state's
 * largest magnitude has grown explosively. */
int apx_guard_watch(apx_guard *g, long k, double t);

/* Appends to buf (size n) a note on the estimate for a non-finite state's message ("" when
 * the estimate found the step stable). */
void apx_guard_note(const apx_guard *g, char *buf, size_t n);

#endif
