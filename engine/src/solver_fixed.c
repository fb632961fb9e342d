/* solver_fixed.c — fixed-step solvers: euler, rk4 and euler-maruyama, simultaneous or in
 * declared order (Gauss-Seidel sweeps that reproduce step-by-step reference schemes).
 *
 * Each scheme is a stepper (in the manner of GSL's odeiv2 step types): a function that takes
 * the state in s->run.x one step of size dt further, and a few facts the driver needs about it.
 * One loop (integrate) drives every stepper through the run's points: the signals at the
 * point, settling, recording and accumulation, the step, the finiteness of the new state and
 * the stability guard's watch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "noise.h"
#include "sim_impl.h"
#include "stability.h"

/* Resolves the update order into population (>= 0) and block (-1 - index) entries. Every
 * population and block must appear exactly once. */
static int build_order(const ap_sim *s, const ap_run_opts *o, int *order) {
    const ap_model *m = s->plan.m;
    int n = s->plan.n_pops + s->plan.n_blocks;
    if (!o->order || o->n_order == 0) {
        int k = 0;
        for (int i = 0; i < m->n_objects; i++) {
            if (m->objects[i].kind == APX_OBJ_POPULATION) order[k++] = m->objects[i].index;
            if (m->objects[i].kind == APX_OBJ_BLOCK) order[k++] = -1 - m->objects[i].index;
        }
        return AP_OK;
    }
    if (o->n_order != n)
        return ap_error(AP_EINVAL,
                        "run: 'order' lists %d components, the model has %d populations and "
                        "blocks; list each once",
                        o->n_order, n);
    for (int k = 0; k < o->n_order; k++) {
        int found = 0;
        for (int p = 0; p < s->plan.n_pops && !found; p++)
            if (!strcmp(m->pops[p].name, o->order[k])) order[k] = p, found = 1;
        for (int b = 0; b < s->plan.n_blocks && !found; b++)
            if (!strcmp(m->blocks[b].name, o->order[k])) order[k] = -1 - b, found = 1;
        if (!found)
            return ap_error(AP_ENOTFOUND, "run: 'order' entry \"%s\" is not a population or block",
                            o->order[k]);
        for (int j = 0; j < k; j++)
            if (order[j] == order[k])
                return ap_error(AP_EINVAL, "run: 'order' lists \"%s\" twice", o->order[k]);
    }
    return AP_OK;
}

typedef struct fixed_run fixed_run;

/* A fixed-step scheme. step takes s->run.x from time t to t + dt (noise from rng, when the scheme
 * has noise and rng is non-NULL; the stability guard steps without it) and returns 0, >0 when
 * the right-hand side or a component failed recoverably (s->diag.bad_index set), <0 on a fatal
 * failure. */
typedef struct fixed_stepper {
    const char *name; /* in messages: "euler", "rk4", "euler (declared order)", ... */
    /* 0: the step starts from the derivative at (t, s->run.x) in s->run.ydot, which the driver
     * evaluates at every point; 1: the declared-order sweep, which reads the signals latched
     * by the last sweep and checks each component's new state as it writes it */
    int sweep;
    int n_work; /* work vectors of s->plan.n_state values the step needs (fixed_run.work) */
    int (*step)(fixed_run *r, double t, double dt, ap_noise *rng);
    const char *failed; /* what a step that returns >0 failed to keep finite */
} fixed_stepper;

/* What a fixed-step run needs besides the simulation. */
struct fixed_run {
    ap_sim *s;
    const ap_run_opts *o;
    const fixed_stepper *stepper;
    long n;     /* steps */
    int *order; /* the declared order (build_order), for the sweep */
    double *work[4];
    double *x_prev; /* the state at the last point: settling of the sweep */
    long *tidx;     /* the points of o->times */
    int ti;         /* the next entry of tidx */
    ap_noise *rng;  /* euler-maruyama */
    apx_guard guard;
};

/* ---- the steppers ---- */

/* x += dt f(t, x), f in s->run.ydot */
static int euler_step(fixed_run *r, double t, double dt, ap_noise *rng) {
    ap_sim *s = r->s;
    double *x = s->run.x;
    const double *k1 = s->run.ydot;
    (void)t, (void)rng;
    for (size_t i = 0; i < s->plan.n_state; i++)
        x[i] += dt * k1[i];
    return 0;
}

/* Noise scale per state variable for one step: sigma sqrt(dt)/tau (compartments), sigma
 * sqrt(dt) (block states). */
static void add_noise_all(ap_sim *s, double dt, ap_noise *rng) {
    const size_t B = (size_t)s->plan.B;
    for (int p = 0; p < s->plan.n_pops; p++)
        for (int c = 0; c < s->plan.pops[p].n_comp; c++) {
            sim_comp *sc = &s->plan.pops[p].comp[c];
            if (!sc->dynamic || sc->sigma == 0.0) continue;
            double a = sc->sigma * sqrt(dt) / sc->tau;
            size_t len = B * (size_t)s->plan.pops[p].n;
            apx_noise_add(rng, sc->value, len, a);
        }
    for (int b = 0; b < s->plan.n_blocks; b++)
        for (int k = 0; k < s->plan.blocks[b].n_state; k++) {
            if (s->plan.blocks[b].state_sigma[k] == 0.0) continue;
            double a = s->plan.blocks[b].state_sigma[k] * sqrt(dt);
            size_t len = B * (size_t)s->plan.blocks[b].state_size[k];
            apx_noise_add(rng, s->plan.blocks[b].state[k], len, a);
        }
}

/* The Euler step, then Gaussian increments: sigma sqrt(dt) / tau per compartment. */
static int euler_maruyama_step(fixed_run *r, double t, double dt, ap_noise *rng) {
    euler_step(r, t, dt, NULL);
    if (rng) add_noise_all(r->s, dt, rng);
    return 0;
}

/* The classical fourth-order Runge-Kutta step; k1 is s->run.ydot, the other stages and the start
 * state are the run's work vectors. */
static int rk4_step(fixed_run *r, double t, double dt, ap_noise *rng) {
    ap_sim *s = r->s;
    const size_t N = s->plan.n_state;
    double *x = s->run.x, *k1 = s->run.ydot;
    double *k2 = r->work[0], *k3 = r->work[1], *k4 = r->work[2], *y0 = r->work[3];
    int rc;
    (void)rng;
    memcpy(y0, x, N * sizeof *y0);
    for (size_t i = 0; i < N; i++)
        x[i] = y0[i] + 0.5 * dt * k1[i];
    if ((rc = apx_sim_eval(s, t + 0.5 * dt, x, k2))) return rc;
    for (size_t i = 0; i < N; i++)
        x[i] = y0[i] + 0.5 * dt * k2[i];
    if ((rc = apx_sim_eval(s, t + 0.5 * dt, x, k3))) return rc;
    for (size_t i = 0; i < N; i++)
        x[i] = y0[i] + dt * k3[i];
    if ((rc = apx_sim_eval(s, t + dt, x, k4))) return rc;
    for (size_t i = 0; i < N; i++)
        x[i] = y0[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
    return 0;
}

/* One Gauss-Seidel sweep in the declared order (noise with euler-maruyama): APX_SWEEP_NONFINITE
 * at the first non-finite new state. */
static int sweep_step(fixed_run *r, double t, double dt, ap_noise *rng) {
    ap_sim *s = r->s;
    return apx_sim_ordered_step(s, r->order, s->plan.n_pops + s->plan.n_blocks, t, dt, rng);
}

static const fixed_stepper step_euler = {"euler", 0, 0, euler_step, NULL};
static const fixed_stepper step_euler_maruyama = {"euler-maruyama", 0, 0, euler_maruyama_step,
                                                  NULL};
static const fixed_stepper step_rk4 = {"rk4", 0, 4, rk4_step, "derivative (rk4 stage)"};
static const fixed_stepper step_sweep = {"euler (declared order)", 1, 0, sweep_step, "state"};
static const fixed_stepper step_sweep_maruyama = {"euler-maruyama (declared order)", 1, 0,
                                                  sweep_step, "state"};

/* The stepper of the run's solver (rk4 with ordered = true is refused before a run). */
static const fixed_stepper *stepper_for(const ap_run_opts *o) {
    int noise = o->solver == AP_SOLVER_EULER_MARUYAMA;
    if (o->ordered) return noise ? &step_sweep_maruyama : &step_sweep;
    if (o->solver == AP_SOLVER_RK4) return &step_rk4;
    return noise ? &step_euler_maruyama : &step_euler;
}

/* One step of the run's scheme without noise, for the stability guard (apx_step_fn). */
static int guard_step(void *ctx, double t, double dt) {
    fixed_run *r = ctx;
    if (!r->stepper->sweep) {
        int rc = apx_sim_eval(r->s, t, r->s->run.x, r->s->run.ydot);
        if (rc) return rc;
    }
    return r->stepper->step(r, t, dt, NULL);
}

/* ---- the driver ---- */

static int nonfinite_error(const ap_sim *s, long i, double v, double t, const char *what,
                           const apx_guard *g) {
    if (i == APX_BAD_COMPONENT) return ap_error_prefix(AP_ENONFINITE, "at t = %g: ", t);
    char nm[256], note[256];
    apx_sim_describe(s, (size_t)i, nm, sizeof nm);
    apx_guard_note(g, note, sizeof note);
    return ap_error(AP_ENONFINITE, "non-finite %s: %s = %g at t = %g%s", what, nm, v, t, note);
}

static double *alloc_values(size_t n) {
    return malloc((n ? n : 1) * sizeof(double));
}

/* Allocates what the run needs: the points of o->times, the noise, the stepper's work
 * vectors, the declared order, the previous state for settling, the guard. On failure the
 * caller still calls fixed_free. */
static int fixed_setup(fixed_run *r, ap_sim *s, const ap_run_opts *o) {
    const size_t N = s->plan.n_state;
    int rc;
    memset(r, 0, sizeof *r);
    r->s = s, r->o = o, r->stepper = stepper_for(o);
    r->n = o->steps > 0 ? o->steps : lround(o->t_end / o->dt);
    r->tidx = calloc((size_t)o->n_times + 1, sizeof *r->tidx);
    r->order = calloc((size_t)(s->plan.n_pops + s->plan.n_blocks) + 1, sizeof *r->order);
    if (!r->tidx || !r->order) return ap_error(AP_ENOMEM, "out of memory");
    for (int k = 0; k < o->n_times; k++)
        r->tidx[k] = lround(o->times[k] / o->dt);
    if (o->solver == AP_SOLVER_EULER_MARUYAMA && (rc = ap_noise_new(&r->rng, o->seed))) return rc;
    for (int i = 0; i < r->stepper->n_work; i++)
        if (!(r->work[i] = alloc_values(N)))
            return ap_error(AP_ENOMEM, "out of memory for %s stages (%zu values)", r->stepper->name,
                            N);
    if (o->ordered && (rc = build_order(s, o, r->order))) return rc;
    if (o->settle_tol > 0 && o->ordered && !(r->x_prev = alloc_values(N)))
        return ap_error(AP_ENOMEM, "out of memory");
    return apx_guard_init(&r->guard, s, (int)o->stability_check, o->ordered, r->stepper->name,
                          guard_step, r, o->dt, r->n);
}

static void fixed_free(fixed_run *r) {
    ap_noise_free(&r->rng);
    apx_guard_free(&r->guard);
    free(r->tidx);
    free(r->order);
    for (int i = 0; i < 4; i++)
        free(r->work[i]);
    free(r->x_prev);
}

/* The guard's estimate at the start state, after which the run starts again (the estimate
 * leaves the state as it was, but not the signals). */
static int guard_start(apx_guard *g, ap_sim *s, const ap_run_opts *o, ap_run_stats *st) {
    if (!g->x0 || !g->estimate) return AP_OK;
    int rc = apx_guard_estimate(g, st);
    if (rc) return rc;
    return apx_sim_start(s, o->keep_state);
}

/* The signals at point k (time t) and whether the run has settled there: the sweep's are
 * those it latched, its settling is the state's change over the last step; the other schemes
 * evaluate the derivative (at the last point too, so that every drive is current) and settle
 * on its size. */
static int at_point(fixed_run *r, long k, double t, int *settled) {
    ap_sim *s = r->s;
    const size_t N = s->plan.n_state;
    const double tol = r->o->settle_tol, dt = r->o->dt;
    if (r->stepper->sweep) {
        s->run.eval_t = t;
        if (r->x_prev && k > 0) {
            double m = 0.0;
            for (size_t i = 0; i < N; i++) {
                double d = fabs(s->run.x[i] - r->x_prev[i]);
                m = d > m ? d : m;
            }
            *settled = m / dt < tol;
        }
        return AP_OK;
    }
    int rc = apx_sim_eval(s, t, s->run.x, s->run.ydot);
    if (rc > 0)
        return nonfinite_error(s, s->diag.bad_index, s->diag.bad_value, t, "derivative", &r->guard);
    if (rc) return rc;
    *settled = tol > 0 && apx_max_abs(s->run.ydot, N) < tol;
    return AP_OK;
}

/* Record and accumulate at point k of n (the signals are current). */
static int observe(ap_sim *s, const ap_run_opts *o, long k, long n, double t, const long *tidx,
                   int *ti) {
    int rc;
    int rec = o->every > 0 && k % o->every == 0;
    if (*ti < o->n_times && tidx[*ti] == k) {
        rec = 1;
        (*ti)++;
    }
    if (rec && (rc = apx_sim_record(s, t))) return rc;
    if (s->acc.on) {
        int use = s->acc.points == AP_ACC_ALL || (s->acc.points == AP_ACC_LEFT && k < n) ||
                  (s->acc.points == AP_ACC_RIGHT && k > 0);
        if (use) {
            s->run.eval_t = t;
            /* stacked: the dgemm runs once every few points (and at the end of the run) */
            if ((rc = apx_sim_acc_push(s, 1.0)))
                return rc < 0 ? rc : ap_error(AP_ENONFINITE, "rule failed at t = %g", t);
            s->acc.weight += 1.0;
        }
    }
    return AP_OK;
}

static void finish_acc(ap_sim *s) {
    if (!s->acc.on) return;
    apx_sim_acc_flush(s); /* the points still stacked, also after an early stop */
    if (s->acc.weight <= 0) return;
    for (int i = 0; i < s->plan.n_projs; i++) {
        sim_acc *a = s->plan.projs[i].acc;
        if (!a) continue;
        size_t n = (size_t)s->plan.projs[i].obj->rows * (size_t)s->plan.projs[i].obj->cols;
        for (size_t k = 0; k < n; k++)
            a->dW[k] /= s->acc.weight;
        for (int k = 0; k < s->plan.projs[i].obj->rows; k++)
            a->db[k] /= s->acc.weight;
    }
}

/* The step from point t to t + dt, its failure named. */
static int step_once(fixed_run *r, double t) {
    ap_sim *s = r->s;
    const double dt = r->o->dt;
    if (r->x_prev) memcpy(r->x_prev, s->run.x, s->plan.n_state * sizeof *r->x_prev);
    int rc = r->stepper->step(r, t, dt, r->rng);
    if (r->stepper->sweep && rc == APX_SWEEP_NONFINITE)
        return nonfinite_error(s, s->diag.bad_index, s->diag.bad_value, t + dt, "state", &r->guard);
    if (rc > 0)
        return nonfinite_error(s, s->diag.bad_index, s->diag.bad_value, t, r->stepper->failed,
                               &r->guard);
    return rc;
}

/* The new state at time t must be finite (the sweep checked it as it wrote it). */
static int check_state(const fixed_run *r, double t) {
    const ap_sim *s = r->s;
    if (r->stepper->sweep) return AP_OK;
    long bad = apx_first_nonfinite(s->run.x, s->plan.n_state);
    if (bad >= 0) return nonfinite_error(s, bad, s->run.x[bad], t, "state", &r->guard);
    return AP_OK;
}

/* The run's points k = 0 .. n (or until settled): at each, the signals, recording and
 * accumulation, then the step to the next point and the guard's watch. */
static int integrate(fixed_run *r, ap_run_stats *st) {
    ap_sim *s = r->s;
    const ap_run_opts *o = r->o;
    const double dt = o->dt;
    int rc;
    for (long k = 0;; k++) {
        double t = (double)k * dt;
        int settled = 0;
        st->t_reached = t;
        if ((rc = at_point(r, k, t, &settled))) return rc;
        int stop = k == r->n || settled;
        if ((rc = observe(s, o, k, stop ? k : r->n, t, r->tidx, &r->ti))) return rc;
        if (stop) return AP_OK;
        if ((rc = step_once(r, t))) return rc;
        st->steps++;
        if ((rc = check_state(r, t + dt))) return rc;
        if ((rc = apx_guard_watch(&r->guard, k + 1, t + dt))) return rc;
    }
}

int apx_solve_fixed(ap_sim *s, const ap_run_opts *o, ap_run_stats *st) {
    fixed_run r;
    int rc = fixed_setup(&r, s, o);
    if (!rc) rc = guard_start(&r.guard, s, o, st);
    if (!rc) rc = integrate(&r, st);
    if (!rc) finish_acc(s);
    st->rhs_evals = s->diag.rhs_evals;
    st->last_step = o->dt;
    fixed_free(&r);
    return rc;
}
