/* solver_fixed.c — fixed-step solvers: euler, rk4 and euler-maruyama, simultaneous or in
 * declared order (Gauss-Seidel sweeps that reproduce step-by-step reference schemes). */
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
    const ap_model *m = s->m;
    int n = s->n_pops + s->n_blocks;
    if (!o->order || o->n_order == 0) {
        int k = 0;
        for (int i = 0; i < m->n_objects; i++) {
            if (m->objects[i].kind == AP_OBJ_POPULATION) order[k++] = m->objects[i].index;
            if (m->objects[i].kind == AP_OBJ_BLOCK) order[k++] = -1 - m->objects[i].index;
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
        for (int p = 0; p < s->n_pops && !found; p++)
            if (!strcmp(m->pops[p].name, o->order[k])) order[k] = p, found = 1;
        for (int b = 0; b < s->n_blocks && !found; b++)
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

static int nonfinite_error(const ap_sim *s, long i, double v, double t, const char *what,
                           const ap_guard *g) {
    if (i == AP_BAD_COMPONENT) return ap_error_prefix(AP_ENONFINITE, "at t = %g: ", t);
    char nm[256], note[256];
    ap_sim_describe(s, (size_t)i, nm, sizeof nm);
    ap_guard_note(g, note, sizeof note);
    return ap_error(AP_ENONFINITE, "non-finite %s: %s = %g at t = %g%s", what, nm, v, t, note);
}

/* What a fixed-step run needs besides the simulation: the declared order, the rk4 stages. */
typedef struct fixed_run {
    ap_sim *s;
    const ap_run_opts *o;
    int *order;
    double *k2, *k3, *k4, *y0;
} fixed_run;

/* The rk4 step from s->x, whose derivative s->ydot holds. */
static int rk4_step(fixed_run *r, double t, double dt) {
    ap_sim *s = r->s;
    const size_t N = s->n_state;
    double *x = s->x, *k1 = s->ydot, *y0 = r->y0;
    int rc;
    memcpy(y0, x, N * sizeof *y0);
    for (size_t i = 0; i < N; i++)
        x[i] = y0[i] + 0.5 * dt * k1[i];
    if ((rc = ap_sim_eval(s, t + 0.5 * dt, x, r->k2))) return rc;
    for (size_t i = 0; i < N; i++)
        x[i] = y0[i] + 0.5 * dt * r->k2[i];
    if ((rc = ap_sim_eval(s, t + 0.5 * dt, x, r->k3))) return rc;
    for (size_t i = 0; i < N; i++)
        x[i] = y0[i] + dt * r->k3[i];
    if ((rc = ap_sim_eval(s, t + dt, x, r->k4))) return rc;
    for (size_t i = 0; i < N; i++)
        x[i] = y0[i] + dt / 6.0 * (k1[i] + 2.0 * r->k2[i] + 2.0 * r->k3[i] + r->k4[i]);
    return 0;
}

/* One step of the run's scheme without noise, for the stability guard (ap_step_fn). */
static int guard_step(void *ctx, double t, double dt) {
    fixed_run *r = ctx;
    ap_sim *s = r->s;
    int rc;
    if (r->o->ordered)
        return ap_sim_ordered_step(s, r->order, s->n_pops + s->n_blocks, t, dt, NULL);
    if ((rc = ap_sim_eval(s, t, s->x, s->ydot))) return rc;
    if (r->o->solver == AP_SOLVER_RK4) return rk4_step(r, t, dt);
    for (size_t i = 0; i < s->n_state; i++)
        s->x[i] += dt * s->ydot[i];
    return 0;
}

static const char *scheme_name(const ap_run_opts *o) {
    if (o->solver == AP_SOLVER_RK4) return "rk4";
    if (o->solver == AP_SOLVER_EULER_MARUYAMA)
        return o->ordered ? "euler-maruyama (declared order)" : "euler-maruyama";
    return o->ordered ? "euler (declared order)" : "euler";
}

/* The guard's estimate at the start state, after which the run starts again (the estimate
 * leaves the state as it was, but not the signals). */
static int guard_start(ap_guard *g, ap_sim *s, const ap_run_opts *o, ap_run_stats *st) {
    if (!g->x0 || !g->estimate) return AP_OK;
    int rc = ap_guard_estimate(g, st);
    if (rc) return rc;
    return ap_sim_start(s, o->keep_state);
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
    if (rec && (rc = ap_sim_record(s, t))) return rc;
    if (s->acc_on) {
        int use = s->acc_points == AP_ACC_ALL || (s->acc_points == AP_ACC_LEFT && k < n) ||
                  (s->acc_points == AP_ACC_RIGHT && k > 0);
        if (use) {
            s->eval_t = t;
            /* stacked: the dgemm runs once every few points (and at the end of the run) */
            if ((rc = ap_sim_acc_push(s, 1.0)))
                return rc < 0 ? rc : ap_error(AP_ENONFINITE, "rule failed at t = %g", t);
            s->acc_weight += 1.0;
        }
    }
    return AP_OK;
}

static void finish_acc(ap_sim *s) {
    if (!s->acc_on) return;
    ap_sim_acc_flush(s); /* the points still stacked, also after an early stop */
    if (s->acc_weight <= 0) return;
    for (int i = 0; i < s->n_projs; i++) {
        sim_acc *a = s->projs[i].acc;
        if (!a) continue;
        size_t n = (size_t)s->projs[i].obj->rows * (size_t)s->projs[i].obj->cols;
        for (size_t k = 0; k < n; k++)
            a->dW[k] /= s->acc_weight;
        for (int k = 0; k < s->projs[i].obj->rows; k++)
            a->db[k] /= s->acc_weight;
    }
}

/* Noise scale per state variable for one step: sigma sqrt(dt)/tau (compartments), sigma
 * sqrt(dt) (block states). */
static void add_noise_all(ap_sim *s, double dt, ap_noise *rng) {
    const size_t B = (size_t)s->B;
    for (int p = 0; p < s->n_pops; p++)
        for (int c = 0; c < s->pops[p].n_comp; c++) {
            sim_comp *sc = &s->pops[p].comp[c];
            if (!sc->dynamic || sc->sigma == 0.0) continue;
            double a = sc->sigma * sqrt(dt) / sc->tau;
            size_t len = B * (size_t)s->pops[p].n;
            ap_noise_add(rng, sc->value, len, a);
        }
    for (int b = 0; b < s->n_blocks; b++)
        for (int k = 0; k < s->blocks[b].n_state; k++) {
            if (s->blocks[b].state_sigma[k] == 0.0) continue;
            double a = s->blocks[b].state_sigma[k] * sqrt(dt);
            size_t len = B * (size_t)s->blocks[b].state_size[k];
            ap_noise_add(rng, s->blocks[b].state[k], len, a);
        }
}

int ap_solve_fixed(ap_sim *s, const ap_run_opts *o, ap_run_stats *st) {
    long n = o->steps > 0 ? o->steps : lround(o->t_end / o->dt);
    const double dt = o->dt;
    const size_t N = s->n_state;
    int rc = AP_OK, ti = 0;
    ap_noise *rng = NULL;
    ap_guard g;
    memset(&g, 0, sizeof g);
    long *tidx = calloc((size_t)o->n_times + 1, sizeof *tidx);
    int *order = calloc((size_t)(s->n_pops + s->n_blocks) + 1, sizeof *order);
    double *k1 = s->ydot, *x_prev = NULL;
    fixed_run fr = {s, o, order, NULL, NULL, NULL, NULL};
    if (!tidx || !order) {
        rc = ap_error(AP_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < o->n_times; k++)
        tidx[k] = lround(o->times[k] / dt);
    if (o->solver == AP_SOLVER_EULER_MARUYAMA) {
        if ((rc = ap_noise_new(&rng, o->seed))) goto done;
    }
    if (o->solver == AP_SOLVER_RK4) {
        fr.k2 = malloc((N ? N : 1) * sizeof *fr.k2);
        fr.k3 = malloc((N ? N : 1) * sizeof *fr.k3);
        fr.k4 = malloc((N ? N : 1) * sizeof *fr.k4);
        fr.y0 = malloc((N ? N : 1) * sizeof *fr.y0);
        if (!fr.k2 || !fr.k3 || !fr.k4 || !fr.y0) {
            rc = ap_error(AP_ENOMEM, "out of memory for rk4 stages (%zu values)", N);
            goto done;
        }
    }
    if (o->ordered && (rc = build_order(s, o, order))) goto done;

    if (o->settle_tol > 0 && o->ordered && !(x_prev = malloc((N ? N : 1) * sizeof *x_prev))) {
        rc = ap_error(AP_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = ap_guard_init(&g, s, (int)o->stability_check, o->ordered, scheme_name(o), guard_step,
                            &fr, dt, n)))
        goto done;
    if ((rc = guard_start(&g, s, o, st))) goto done;
    for (long k = 0;; k++) {
        double t = (double)k * dt;
        int stop = k == n;
        st->t_reached = t;
        if (o->ordered) {
            /* the buffers hold this point's values (latched by the last sweep) */
            s->eval_t = t;
            if (x_prev && k > 0) {
                double m = 0.0;
                for (size_t i = 0; i < N; i++) {
                    double d = fabs(s->x[i] - x_prev[i]);
                    m = d > m ? d : m;
                }
                stop = stop || m / dt < o->settle_tol;
            }
        } else {
            /* the derivative at the last point too, so that every drive is current */
            rc = ap_sim_eval(s, t, s->x, k1);
            if (rc > 0) {
                rc = nonfinite_error(s, s->bad_index, s->bad_value, t, "derivative", &g);
                goto done;
            }
            if (rc) goto done;
            stop = stop || (o->settle_tol > 0 && ap_max_abs(k1, N) < o->settle_tol);
        }
        if ((rc = observe(s, o, k, stop ? k : n, t, tidx, &ti))) goto done;
        if (stop) break;
        if (o->ordered) {
            if (x_prev) memcpy(x_prev, s->x, N * sizeof *x_prev);
            rc = ap_sim_ordered_step(s, order, s->n_pops + s->n_blocks, t, dt, rng);
            if (rc == AP_SWEEP_NONFINITE) {
                rc = nonfinite_error(s, s->bad_index, s->bad_value, t + dt, "state", &g);
                goto done;
            }
            if (rc > 0) rc = nonfinite_error(s, s->bad_index, s->bad_value, t, "state", &g);
            if (rc) goto done;
            /* the sweep checked each component's new state as it wrote it */
        } else if (o->solver == AP_SOLVER_RK4) {
            if ((rc = rk4_step(&fr, t, dt))) {
                if (rc > 0)
                    rc = nonfinite_error(s, s->bad_index, s->bad_value, t, "derivative (rk4 stage)",
                                         &g);
                goto done;
            }
        } else {
            double *x = s->x;
            for (size_t i = 0; i < N; i++)
                x[i] += dt * k1[i];
            if (rng) add_noise_all(s, dt, rng);
        }
        st->steps++;
        if (!o->ordered) {
            long bad = ap_first_nonfinite(s->x, N);
            if (bad >= 0) {
                rc = nonfinite_error(s, bad, s->x[bad], t + dt, "state", &g);
                goto done;
            }
        }
        if ((rc = ap_guard_watch(&g, k + 1, t + dt))) goto done;
    }
    finish_acc(s);
done:
    st->rhs_evals = s->rhs_evals;
    st->last_step = dt;
    ap_noise_free(&rng);
    ap_guard_free(&g);
    free(tidx);
    free(order);
    free(fr.k2);
    free(fr.k3);
    free(fr.k4);
    free(fr.y0);
    free(x_prev);
    return rc;
}
