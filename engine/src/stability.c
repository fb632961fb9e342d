/* stability.c — the fixed-step stability guard. Before a run: power iteration on the Jacobian
 * of the scheme's own one-step map at the start state, with finite-difference products (so
 * that the declared-order sweep, whose amplification is not plain Euler's, is measured as it
 * is), and, when a step amplifies a mode along which the circuit's dynamics decay, a search for
 * the largest stable step. During a run: a watch for explosive growth of the state. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "stability.h"

/* an amplification above 1 + APX_GUARD_TOL counts as growth (below: finite-difference noise) */
#define APX_GUARD_TOL 1e-5
#define APX_GUARD_ITERS 60       /* power iterations at the run's dt */
#define APX_GUARD_ITERS_BOUND 30 /* per trial step of the bound's search */
/* a verdict of instability is confirmed by iterating on, up to this many more iterations or
 * until the ratios settle: a short run of the power iteration can catch a transient (growth
 * of a non-normal start vector, or a direction not yet the dominant one) */
#define APX_GUARD_ITERS_CONFIRM 1000

static void add_segment(apx_guard *g, double *p, size_t len) {
    if (!p || !len) return;
    for (int i = 0; i < g->n_seg; i++)
        if (g->seg[i] == p) return;
    g->seg[g->n_seg] = p;
    g->seg_len[g->n_seg++] = len;
    g->n += len;
}

/* The state, and for a sweep the latched signals: a sweep reads a component's outputs as the
 * previous sweep left them until it steps that component (the controller's output, stepped
 * first, depends on the rates before the sweep), so they are part of what one step maps. */
static int collect_segments(apx_guard *g, int ordered) {
    ap_sim *s = g->s;
    int cap = 1;
    for (int p = 0; ordered && p < s->plan.n_pops; p++)
        cap += s->plan.pops[p].n_comp + 1;
    for (int b = 0; ordered && b < s->plan.n_blocks; b++)
        cap += s->plan.blocks[b].n_out;
    g->seg = malloc((size_t)cap * sizeof *g->seg);
    g->seg_len = malloc((size_t)cap * sizeof *g->seg_len);
    if (!g->seg || !g->seg_len) return ap_error(AP_ENOMEM, "out of memory");
    const size_t B = (size_t)s->plan.B;
    add_segment(g, s->run.x, s->plan.n_state);
    for (int p = 0; ordered && p < s->plan.n_pops; p++) {
        sim_pop *sp = &s->plan.pops[p];
        for (int c = 0; c < sp->n_comp; c++)
            if (!sp->comp[c].dynamic) add_segment(g, sp->comp[c].value, B * (size_t)sp->n);
        add_segment(g, sp->rate, B * (size_t)sp->n);
    }
    for (int b = 0; ordered && b < s->plan.n_blocks; b++)
        for (int k = 0; k < s->plan.blocks[b].n_out; k++)
            add_segment(g, s->plan.blocks[b].out[k], B * (size_t)s->plan.blocks[b].out_size[k]);
    return AP_OK;
}

int apx_guard_init(apx_guard *g, ap_sim *s, int check, int ordered, const char *scheme,
                   apx_step_fn step, void *ctx, double dt, long n_steps) {
    memset(g, 0, sizeof *g);
    g->s = s;
    g->step = step;
    g->ctx = ctx;
    g->scheme = scheme;
    g->dt = dt;
    g->n_steps = n_steps;
    g->watch = check == AP_STABILITY_FULL || check == AP_STABILITY_WATCH;
    g->estimate = check == AP_STABILITY_FULL;
    if (check == AP_STABILITY_OFF || s->plan.n_state == 0) return AP_OK;
    int rc = collect_segments(g, ordered);
    if (rc) {
        apx_guard_free(g);
        return rc;
    }
    const size_t n = g->n;
    double **vecs[] = {&g->x0, &g->y0, &g->v, &g->w, &g->f0, &g->vd};
    for (size_t i = 0; i < sizeof vecs / sizeof *vecs; i++)
        if (!(*vecs[i] = malloc(n * sizeof(double)))) {
            apx_guard_free(g);
            return ap_error(AP_ENOMEM, "out of memory for the stability guard (6 x %zu values)", n);
        }
    return AP_OK;
}

void apx_guard_free(apx_guard *g) {
    free(g->x0);
    free(g->y0);
    free(g->v);
    free(g->w);
    free(g->f0);
    free(g->vd);
    free(g->seg);
    free(g->seg_len);
    g->x0 = g->y0 = g->v = g->w = g->f0 = g->vd = NULL;
    g->seg = NULL;
    g->seg_len = NULL;
}

static double norm2(const double *v, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

/* A fixed pseudo-random unit vector (splitmix64 of the index): the same estimate every run. */
static void start_vector(double *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        v[i] = (double)(z >> 11) * 0x1p-53 - 0.5;
    }
    double r = norm2(v, n);
    for (size_t i = 0; i < n; i++)
        v[i] /= r;
}

static void scatter(apx_guard *g, const double *v) {
    for (int i = 0; i < g->n_seg; i++) {
        memcpy(g->seg[i], v, g->seg_len[i] * sizeof *v);
        v += g->seg_len[i];
    }
}

static void gather(const apx_guard *g, double *v) {
    for (int i = 0; i < g->n_seg; i++) {
        memcpy(v, g->seg[i], g->seg_len[i] * sizeof *v);
        v += g->seg_len[i];
    }
}

/* out = the scheme's step of size h from x (both of the guard's n values; out may be x). */
static int step_from(apx_guard *g, const double *x, double h, double *out) {
    scatter(g, x);
    int rc = g->step(g->ctx, 0.0, h);
    if (rc) return rc;
    gather(g, out);
    return 0;
}

/* The finite-difference increment for a unit direction: about sqrt(eps) per entry, relative to
 * the state's root-mean-square size. */
static double fd_increment(const double *x0, size_t n) {
    double r = norm2(x0, n), floor = sqrt((double)n);
    return sqrt(DBL_EPSILON) * (r > floor ? r : floor);
}

/* Power iteration on the Jacobian of the step of size h at g->x0, from the unit vector g->v
 * (left holding the dominant direction). *rho: the amplification per step, the geometric mean
 * of the norm ratios over the last half of the iterations (a complex pair's ratios oscillate). */
static int power_iteration(apx_guard *g, double h, int iters, double *rho) {
    const size_t n = g->n;
    const double eps = fd_increment(g->x0, n);
    int rc = step_from(g, g->x0, h, g->y0);
    if (rc) return rc;
    double log_sum = 0.0, prev = 0.0, prev2 = 0.0;
    int counted = 0;
    for (int it = 0; it < iters; it++) {
        for (size_t i = 0; i < n; i++)
            g->w[i] = g->x0[i] + eps * g->v[i];
        if ((rc = step_from(g, g->w, h, g->w))) return rc;
        for (size_t i = 0; i < n; i++)
            g->w[i] = (g->w[i] - g->y0[i]) / eps;
        const double r = norm2(g->w, n);
        if (!(r > 0.0) || !isfinite(r)) {
            *rho = r;
            return 0;
        }
        for (size_t i = 0; i < n; i++)
            g->v[i] = g->w[i] / r;
        const double lr = log(r);
        if (it >= iters / 2) log_sum += lr, counted++;
        /* converged: three equal ratios in a row (a real dominant eigenvalue) */
        if (it >= 8 && fabs(lr - prev) < 1e-6 && fabs(prev - prev2) < 1e-6) {
            *rho = r;
            return 0;
        }
        prev2 = prev;
        prev = lr;
    }
    *rho = exp(log_sum / (counted ? counted : 1));
    return 0;
}

/* The growth rate of the circuit's own dynamics along the state part u of g->v at g->x0:
 * u . J u / u . u (the Rayleigh quotient of the right-hand side's Jacobian, by a finite
 * difference). -1 when g->v has no state part (the growth is the latched signals' alone). */
static int decay_rate(apx_guard *g, double *rq) {
    ap_sim *s = g->s;
    const size_t n = s->plan.n_state; /* the state comes first in the guard's vectors */
    const double un = norm2(g->v, n);
    *rq = -1.0;
    if (!(un > 1e-6)) return 0;
    const double eps = fd_increment(g->x0, n) / un;
    int rc = apx_sim_eval(s, 0.0, g->x0, g->f0);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++)
        g->w[i] = g->x0[i] + eps * g->v[i];
    if ((rc = apx_sim_eval(s, 0.0, g->w, g->y0))) return rc;
    double q = 0.0;
    for (size_t i = 0; i < n; i++)
        q += g->v[i] * (g->y0[i] - g->f0[i]) / eps;
    *rq = q / (un * un);
    return 0;
}

/* Whether a step of size h is unstable at x0: it amplifies a mode (by *rho > 1) along which
 * the dynamics decay (a mode the circuit itself amplifies is no fault of the scheme). */
static int unstable_at(apx_guard *g, double h, int iters, double *rho, int *unstable) {
    int rc = power_iteration(g, h, iters, rho);
    *unstable = 0;
    if (rc || !(*rho > 1.0 + APX_GUARD_TOL)) return rc;
    double rq = 0.0;
    if ((rc = decay_rate(g, &rq))) return rc;
    *unstable = rq < 0.0;
    return 0;
}

/* One probe of the bound's search at step h from the start vector v_dt: h becomes the new
 * lower (stable) or upper (unstable) end of the bracket. */
static int probe(apx_guard *g, const double *v_dt, double h, double *lo, double *hi) {
    double rho = 0.0;
    int unstable = 1, rc;
    memcpy(g->v, v_dt, g->n * sizeof *v_dt);
    if ((rc = unstable_at(g, h, APX_GUARD_ITERS_BOUND, &rho, &unstable))) return rc;
    if (unstable)
        *hi = h;
    else
        *lo = h;
    return 0;
}

/* The largest stable step below g->dt: halving until stable, then 8 geometric bisections
 * (0.3 % apart). 0 if no step down to dt / 2^30 is stable. */
static int stable_bound(apx_guard *g, const double *v_dt, double *bound) {
    double lo = 0.0, hi = g->dt;
    int rc;
    for (int j = 0; j < 30 && lo == 0.0; j++)
        if ((rc = probe(g, v_dt, hi / 2, &lo, &hi))) return rc;
    for (int j = 0; j < 8 && lo > 0.0; j++)
        if ((rc = probe(g, v_dt, sqrt(lo * hi), &lo, &hi))) return rc;
    *bound = lo;
    return 0;
}

/* The growth with the digits that tell it from 1 (1.0004-fold, not 1-fold). */
static void write_warning(apx_guard *g, ap_run_stats *st) {
    char bound[96] = "";
    if (g->dt_stable > 0)
        snprintf(bound, sizeof bound, "; estimated stable for dt < %.3g", g->dt_stable);
    snprintf(st->stab_warning, sizeof st->stab_warning,
             "%s with dt = %g is unstable at the start state: one step amplifies a decaying mode "
             "%.*g-fold%s (docs/solvers.md, \"Fixed-step stability\": a smaller dt, or a CVODE "
             "solver for a stiff circuit; stability_check = false silences this)",
             g->scheme, g->dt, g->growth < 1.01 ? 6 : 3, g->growth, bound);
}

int apx_guard_estimate(apx_guard *g, ap_run_stats *st) {
    if (!g->x0 || !g->estimate) return AP_OK;
    ap_sim *s = g->s;
    const size_t n = g->n;
    const long evals0 = s->diag.rhs_evals;
    gather(g, g->x0);
    start_vector(g->v, n);
    double rho = 0.0;
    int unstable = 0;
    /* at most about 5 % of the run's steps (at least 20 iterations) */
    long iters = g->n_steps / 20;
    iters = iters < 20 ? 20 : iters > APX_GUARD_ITERS ? APX_GUARD_ITERS : iters;
    int rc = unstable_at(g, g->dt, (int)iters, &rho, &unstable);
    /* confirmed from the direction reached: the converged dominant mode, or the one the
     * circuit itself amplifies, decides (the warning path only; a stable verdict costs nothing
     * more) */
    if (!rc && unstable) rc = unstable_at(g, g->dt, APX_GUARD_ITERS_CONFIRM, &rho, &unstable);
    if (!rc && unstable) {
        g->unstable = 1;
        /* the dominant direction at dt starts every trial of the search */
        memcpy(g->vd, g->v, n * sizeof *g->vd);
        rc = stable_bound(g, g->vd, &g->dt_stable);
    }
    scatter(g, g->x0);
    g->evals = s->diag.rhs_evals - evals0;
    s->diag.rhs_evals = evals0;
    s->diag.bad_index = -1;
    if (rc) {
        /* a perturbed state the circuit cannot evaluate: no estimate (the run itself will say
         * what fails) */
        ap_error_clear();
        g->unstable = 0;
        return AP_OK;
    }
    g->growth = rho;
    st->stab_growth = rho;
    st->stab_dt = g->unstable ? g->dt_stable : 0.0;
    st->stab_evals = g->evals;
    if (g->unstable) write_warning(g, st);
    return AP_OK;
}

void apx_guard_note(const apx_guard *g, char *buf, size_t n) {
    if (!g->unstable) {
        if (n) buf[0] = 0;
        return;
    }
    char bound[64] = "";
    if (g->dt_stable > 0) snprintf(bound, sizeof bound, ", stable for dt < %.3g", g->dt_stable);
    snprintf(buf, n, " (the stability guard estimated %s unstable at dt = %g%s)", g->scheme, g->dt,
             bound);
}

int apx_guard_watch(apx_guard *g, long k, double t) {
    if (!g->watch || k % APX_GUARD_EVERY) return AP_OK;
    ap_sim *s = g->s;
    const double m = apx_max_abs(s->run.x, s->plan.n_state);
    if (g->m_prev > 0.0 && m >= 2.0 * g->m_prev) {
        if (g->streak++ == 0) g->m_base = g->m_prev;
    } else {
        g->streak = 0;
    }
    g->m_prev = m;
    if (g->streak < 2 || m < 1e6 * g->m_base) return AP_OK;
    if (g->x0) {
        /* growth the circuit's own dynamics make (along x, now mostly the growing mode) is
         * no fault of the scheme: the rate there decides; the state and the latched signals
         * are put back as they were, so that the run goes on unchanged */
        double rq = -1.0;
        gather(g, g->x0);
        memcpy(g->v, s->run.x, s->plan.n_state * sizeof *g->v);
        int rc = decay_rate(g, &rq);
        scatter(g, g->x0);
        if (rc) ap_error_clear();
        if (!rc && rq >= 0.0) {
            g->streak = 0;
            return AP_OK;
        }
    }
    size_t at = 0;
    for (size_t i = 0; i < s->plan.n_state; i++)
        if (fabs(s->run.x[i]) == m) {
            at = i;
            break;
        }
    char nm[256], note[256];
    apx_sim_describe(s, at, nm, sizeof nm);
    apx_guard_note(g, note, sizeof note);
    return ap_error(AP_ENONFINITE,
                    "explosive growth: %s = %g at t = %g: the state's largest magnitude grew "
                    "%.3g-fold in %d steps, at least 2-fold every %d; %s with dt = %g is likely "
                    "unstable%s (stability_check = false turns this check off)",
                    nm, s->run.x[at], t, m / g->m_base, g->streak * APX_GUARD_EVERY,
                    APX_GUARD_EVERY, g->scheme, g->dt, note);
}
