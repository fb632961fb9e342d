/* run.c — ap_sim_run: checks the options, prepares recorders, accumulators, snapshots and
 * noise, starts the state, hands over to a solver, and exposes the results. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apical/error.h"
#include "sim_impl.h"

static const struct {
    const char *name;
    ap_solver_kind kind;
} solver_names[] = {
    {"euler", AP_SOLVER_EULER},
    {"rk4", AP_SOLVER_RK4},
    {"euler-maruyama", AP_SOLVER_EULER_MARUYAMA},
    {"cvode-bdf", AP_SOLVER_CVODE_BDF},
    {"cvode-adams", AP_SOLVER_CVODE_ADAMS},
};

int ap_solver_from_name(const char *name, ap_solver_kind *kind) {
    for (size_t i = 0; i < sizeof solver_names / sizeof *solver_names; i++)
        if (name && strcmp(name, solver_names[i].name) == 0) {
            *kind = solver_names[i].kind;
            return AP_OK;
        }
    return ap_error(AP_ENOTFOUND,
                    "unknown solver \"%s\" (known: euler, rk4, euler-maruyama, cvode-bdf, "
                    "cvode-adams)",
                    name ? name : "(null)");
}

const char *ap_solver_name(ap_solver_kind kind) {
    for (size_t i = 0; i < sizeof solver_names / sizeof *solver_names; i++)
        if (solver_names[i].kind == kind) return solver_names[i].name;
    return "unknown";
}

void ap_run_opts_default(ap_run_opts *o) {
    memset(o, 0, sizeof *o);
    o->solver = AP_SOLVER_EULER;
    o->dt = 0.01;
    o->rtol = 1e-6;
    o->atol = 1e-8;
    o->accumulate = 1;
}

int ap_sim_set_accumulation(ap_sim *s, ap_acc_points points) {
    if (points != AP_ACC_ALL && points != AP_ACC_LEFT && points != AP_ACC_RIGHT)
        return ap_error(AP_EINVAL, "unknown accumulation mode %d", (int)points);
    s->acc.points = points;
    return AP_OK;
}

static int is_fixed(ap_solver_kind k) {
    return k == AP_SOLVER_EULER || k == AP_SOLVER_RK4 || k == AP_SOLVER_EULER_MARUYAMA;
}

/* A fixed-step run's step and length: steps, or t_end a whole number of steps dt. */
static int check_fixed(const ap_run_opts *o, const char *sn, double *t_end, long *n_steps) {
    if (!(o->dt > 0.0) || !isfinite(o->dt))
        return ap_error(AP_EINVAL, "run (%s): dt = %g, must be > 0", sn, o->dt);
    if (o->steps > 0) {
        *n_steps = o->steps;
        *t_end = (double)o->steps * o->dt;
    } else {
        if (!(o->t_end > 0.0) || !isfinite(o->t_end))
            return ap_error(AP_EINVAL, "run (%s): t_end = %g, must be > 0 (or give steps)", sn,
                            o->t_end);
        double r = o->t_end / o->dt;
        long n = lround(r);
        if (n < 1 || fabs(r - (double)n) > 1e-9 * fmax(1.0, r))
            return ap_error(AP_EINVAL,
                            "run (%s): t_end = %g is not a whole number of steps dt = %g "
                            "(%.12g steps)",
                            sn, o->t_end, o->dt, r);
        *n_steps = n;
        *t_end = (double)n * o->dt;
    }
    if (o->ordered && o->solver == AP_SOLVER_RK4)
        return ap_error(AP_EINVAL, "run (rk4): the declared-order option is for euler and "
                                   "euler-maruyama only");
    return AP_OK;
}

/* A CVODE run's length, tolerances and limits. */
static int check_cvode(const ap_run_opts *o, const char *sn, double *t_end, long *n_steps) {
    if (!(o->t_end > 0.0) || !isfinite(o->t_end))
        return ap_error(AP_EINVAL, "run (%s): t_end = %g, must be > 0", sn, o->t_end);
    if (!(o->rtol > 0.0) || !(o->atol > 0.0))
        return ap_error(AP_EINVAL, "run (%s): rtol = %g and atol = %g must be > 0", sn, o->rtol,
                        o->atol);
    if (o->max_step < 0 || o->init_step < 0 || o->max_steps < 0 || o->max_order < 0)
        return ap_error(AP_EINVAL,
                        "run (%s): negative max_step, init_step, max_steps or "
                        "max_order",
                        sn);
    if (o->ordered) return ap_error(AP_EINVAL, "run (%s): 'ordered' is for euler only", sn);
    *t_end = o->t_end;
    *n_steps = 0;
    return AP_OK;
}

/* The record times: in [0, t_end], increasing, on a fixed-step run's grid. */
static int check_times(const ap_run_opts *o, const char *sn, double t_end) {
    for (int k = 0; k < o->n_times; k++) {
        if (!(o->times[k] >= 0.0) || o->times[k] > t_end * (1 + 1e-12))
            return ap_error(AP_EINVAL, "run: record time %g is outside [0, %g]", o->times[k],
                            t_end);
        if (k && !(o->times[k] > o->times[k - 1]))
            return ap_error(AP_EINVAL, "run: record times must increase (%g after %g)", o->times[k],
                            o->times[k - 1]);
        if (is_fixed(o->solver)) {
            double r = o->times[k] / o->dt;
            if (fabs(r - (double)lround(r)) > 1e-9 * fmax(1.0, r))
                return ap_error(AP_EINVAL,
                                "run (%s): record time %g is not on the step grid (dt = %g)", sn,
                                o->times[k], o->dt);
        }
    }
    return AP_OK;
}

static int check_opts(const ap_sim *s, const ap_run_opts *o, double *t_end, long *n_steps) {
    const char *sn = ap_solver_name(o->solver);
    int rc;
    if (!strcmp(sn, "unknown"))
        return ap_error(AP_EINVAL, "run: unknown solver %d", (int)o->solver);
    rc = is_fixed(o->solver) ? check_fixed(o, sn, t_end, n_steps)
                             : check_cvode(o, sn, t_end, n_steps);
    if (rc) return rc;
    if ((rc = apx_cvode_check_linear(o, sn))) return rc;
    if (o->n_noise > 0 && o->solver != AP_SOLVER_EULER_MARUYAMA)
        return ap_error(AP_EINVAL, "run (%s): noise needs the euler-maruyama solver", sn);
    if (o->every < 0) return ap_error(AP_EINVAL, "run: every = %ld, must be >= 0", o->every);
    if (!(o->settle_tol >= 0.0) || !isfinite(o->settle_tol))
        return ap_error(AP_EINVAL, "run: settle_tol = %g, must be >= 0", o->settle_tol);
    if (o->n_record > 0 && o->every == 0 && o->n_times == 0)
        return ap_error(AP_EINVAL, "run: %d signals to record but neither times nor every",
                        o->n_record);
    (void)s;
    return check_times(o, sn, *t_end);
}

/* Makes sure *buf holds at least need elements of size sz (contents not kept). */
static int reserve(void **buf, size_t *alloc, size_t need, size_t sz) {
    if (need <= *alloc) return 0;
    free(*buf);
    *alloc = 0;
    if (!(*buf = malloc(need * sz))) return -1;
    *alloc = need;
    return 0;
}

/* The recorders of this run, in the buffers of earlier runs where they are large enough. */
static int setup_recording(ap_sim *s, const ap_run_opts *o, long n_steps) {
    if (o->n_record == 0) return AP_OK;
    if (o->n_record > s->run.rec_slots) {
        sim_rec *r = realloc(s->run.rec, (size_t)o->n_record * sizeof *r);
        if (!r) return ap_error(AP_ENOMEM, "out of memory");
        memset(r + s->run.rec_slots, 0, (size_t)(o->n_record - s->run.rec_slots) * sizeof *r);
        s->run.rec = r;
        s->run.rec_slots = o->n_record;
    }
    size_t cap = (size_t)o->n_times;
    if (is_fixed(o->solver) && o->every > 0) cap += (size_t)(n_steps / o->every) + 1;
    if (!is_fixed(o->solver) && o->every > 0) cap += 64;
    for (int k = 0; k < o->n_record; k++) {
        apx_sigref r;
        int rc = apx_model_resolve(s->plan.m, o->record[k], &r);
        if (rc) return ap_error_prefix(rc, "record: ");
        sim_rec *sr = &s->run.rec[k];
        size_t nm = strlen(o->record[k]) + 1;
        if (reserve((void **)&sr->name, &sr->name_alloc, nm, 1))
            return ap_error(AP_ENOMEM, "out of memory");
        memcpy(sr->name, o->record[k], nm);
        sr->src = apx_sim_signal_ptr(s, &r);
        sr->width = s->plan.B * r.size;
        sr->n = 0;
        s->run.n_rec = k + 1; /* counted as it is set up: an error leaves every earlier one valid */
        if (reserve((void **)&sr->data, &sr->data_alloc, cap * (size_t)sr->width, sizeof(double)) ||
            reserve((void **)&sr->times, &sr->times_alloc, cap, sizeof(double)))
            return ap_error(AP_ENOMEM, "out of memory: recording %s needs %zu x %d values",
                            sr->name, cap, sr->width);
        /* what the buffers hold, perhaps more than this run asked for */
        size_t fit = sr->width > 0 ? sr->data_alloc / (size_t)sr->width : sr->times_alloc;
        sr->cap = fit < sr->times_alloc ? fit : sr->times_alloc;
    }
    return AP_OK;
}

/* Snapshot buffers for `previous` signals; projections and block inputs read them. */
void apx_sim_live_inputs(ap_sim *s) {
    for (int i = 0; i < s->plan.n_projs; i++)
        s->plan.projs[i].src_prev = NULL;
    for (int b = 0; b < s->plan.n_blocks; b++)
        for (int k = 0; k < s->plan.blocks[b].n_in; k++) {
            s->plan.blocks[b].in_prev[k] = NULL;
            s->plan.blocks[b].in[k] = s->plan.blocks[b].in_live[k];
        }
}

int apx_acc_stack_points(int B) {
    int k = (APX_ACC_STACK_ROWS + B / 2) / (B > 0 ? B : 1);
    return k > 1 ? k : 1;
}

void apx_sim_acc_stacks_idle(ap_sim *s) {
    for (int i = 0; i < s->plan.n_projs; i++)
        if (s->plan.projs[i].acc) s->plan.projs[i].acc->n_slots = 0;
    s->acc.cap = 0;
}

void apx_sim_acc_stacks_free(ap_sim *s) {
    for (int i = 0; i < s->plan.n_projs; i++) {
        sim_acc *a = s->plan.projs[i].acc;
        if (!a) continue;
        free(a->stack_post);
        free(a->stack_pre);
        a->stack_post = a->stack_pre = NULL;
        a->n_slots = 0;
    }
    s->acc.cap = 0;
    s->acc.stack_points = 0;
}

int apx_sim_acc_stacks(ap_sim *s, int points) {
    apx_sim_acc_stacks_idle(s);
    if (s->acc.stack_points == points) {
        s->acc.cap = points;
        return AP_OK;
    }
    apx_sim_acc_stacks_free(s);
    const size_t rows = (size_t)points * (size_t)s->plan.B;
    for (int i = 0; i < s->plan.n_projs; i++) {
        sim_acc *a = s->plan.projs[i].acc;
        if (!a) continue;
        const apx_proj_obj *po = s->plan.projs[i].obj;
        a->stack_post = malloc(rows * (size_t)po->rows * sizeof(double));
        a->stack_pre = malloc(rows * (size_t)po->cols * sizeof(double));
        if (!a->stack_post || !a->stack_pre) {
            apx_sim_acc_stacks_free(s);
            return ap_error(AP_ENOMEM,
                            "out of memory for the accumulation stacks of %s (%zu x (%d + %d) "
                            "values)",
                            po->name, rows, po->rows, po->cols);
        }
    }
    s->acc.cap = s->acc.stack_points = points;
    return AP_OK;
}

void apx_sim_clear_acc(ap_sim *s) {
    for (int i = 0; i < s->plan.n_projs; i++) {
        sim_acc *a = s->plan.projs[i].acc;
        if (!a) continue;
        memset(a->dW, 0,
               (size_t)s->plan.projs[i].obj->rows * s->plan.projs[i].obj->cols * sizeof(double));
        memset(a->db, 0, (size_t)s->plan.projs[i].obj->rows * sizeof(double));
    }
    s->acc.weight = 0.0;
}

static int setup_snapshots(ap_sim *s, const ap_run_opts *o) {
    apx_sim_live_inputs(s);
    if (o->n_previous == 0) return AP_OK;
    if (!o->ordered)
        return ap_error(AP_EINVAL, "run: 'previous' only has a meaning with ordered = true");
    s->run.snap = calloc((size_t)o->n_previous, sizeof *s->run.snap);
    if (!s->run.snap) return ap_error(AP_ENOMEM, "out of memory");
    s->run.n_snap = o->n_previous;
    for (int k = 0; k < o->n_previous; k++) {
        apx_sigref r;
        int rc = apx_model_resolve(s->plan.m, o->previous[k], &r);
        if (rc) return ap_error_prefix(rc, "previous: ");
        const double *src = apx_sim_signal_ptr(s, &r);
        sim_snapshot *sn = &s->run.snap[k];
        sn->src = src;
        sn->count = (size_t)s->plan.B * (size_t)r.size;
        sn->copy = malloc(sn->count * sizeof(double));
        if (!sn->copy) return ap_error(AP_ENOMEM, "out of memory");
        for (int i = 0; i < s->plan.n_projs; i++)
            if (s->plan.projs[i].src == src) s->plan.projs[i].src_prev = sn->copy;
        for (int b = 0; b < s->plan.n_blocks; b++)
            for (int j = 0; j < s->plan.blocks[b].n_in; j++)
                if (s->plan.blocks[b].in_live[j] == src)
                    s->plan.blocks[b].in[j] = s->plan.blocks[b].in_prev[j] = sn->copy;
    }
    return AP_OK;
}

static int setup_noise(ap_sim *s, const ap_run_opts *o) {
    for (int p = 0; p < s->plan.n_pops; p++)
        for (int c = 0; c < s->plan.pops[p].n_comp; c++)
            s->plan.pops[p].comp[c].sigma = 0.0;
    for (int b = 0; b < s->plan.n_blocks; b++)
        for (int k = 0; k < s->plan.blocks[b].n_state; k++)
            s->plan.blocks[b].state_sigma[k] = 0.0;
    for (int k = 0; k < o->n_noise; k++) {
        apx_sigref r;
        int rc = apx_model_resolve(s->plan.m, o->noise[k], &r);
        if (rc) return ap_error_prefix(rc, "noise: ");
        double sg = o->sigma[k];
        if (!isfinite(sg) || sg < 0)
            return ap_error(AP_EINVAL, "noise on %s: sigma = %g, must be >= 0", o->noise[k], sg);
        if (r.kind == APX_SIG_COMPARTMENT && s->plan.pops[r.obj].comp[r.port].dynamic)
            s->plan.pops[r.obj].comp[r.port].sigma = sg;
        else if (r.kind == APX_SIG_BLOCK_STATE)
            s->plan.blocks[r.obj].state_sigma[r.port] = sg;
        else
            return ap_error(AP_EINVAL,
                            "noise on %s: noise enters dynamic variables only (a compartment "
                            "with a time constant > 0, or a block state)",
                            o->noise[k]);
    }
    return AP_OK;
}

int ap_sim_run(ap_sim *s, const ap_run_opts *o, ap_run_stats *stats) {
    ap_run_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double t_end = 0.0;
    long n_steps = 0;
    apx_sim_free_run_buffers(s);
    int rc = check_opts(s, o, &t_end, &n_steps);
    if (!rc) rc = ap_model_check_weights(s->plan.m);
    if (!rc) rc = setup_recording(s, o, n_steps);
    if (!rc) rc = setup_snapshots(s, o);
    if (!rc) rc = setup_noise(s, o);
    if (rc) return rc;
    s->acc.on = o->accumulate && s->acc.n > 0;
    apx_sim_clear_acc(s);
    s->diag.bad_index = -1;
    s->diag.rhs_evals = 0;
    s->run.ordered = o->ordered;
    /* Fixed-step solvers accumulate at every point: the factors of K points are stacked and
     * added in one dgemm per projection. The stacks are allocated by the first such run (never
     * in the time loop) and kept for the next; CVODE's quadrature does not use them. */
    if (s->acc.on && is_fixed(o->solver) &&
        (rc = apx_sim_acc_stacks(s, apx_acc_stack_points(s->plan.B))))
        return rc;
    if ((rc = apx_sim_start(s, o->keep_state))) {
        apx_sim_acc_stacks_idle(s);
        return rc;
    }
    rc = is_fixed(o->solver) ? apx_solve_fixed(s, o, stats) : apx_solve_cvode(s, o, stats);
    apx_sim_acc_stacks_idle(s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats->wall_seconds =
        (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return rc;
}

int ap_sim_reset(ap_sim *s) {
    apx_sim_free_run_buffers(s);
    apx_sim_live_inputs(s);
    s->run.ordered = 0;
    int rc = ap_model_check_weights(s->plan.m);
    if (rc) return rc;
    return apx_sim_start(s, 0);
}

int ap_sim_set_sample_weights(ap_sim *s, const double *w) {
    if (!w) {
        free(s->acc.sample_w);
        s->acc.sample_w = NULL;
        return AP_OK;
    }
    for (int b = 0; b < s->plan.B; b++)
        if (!isfinite(w[b]))
            return ap_error(AP_ENONFINITE, "sample weights: w[%d] = %g is not finite", b + 1, w[b]);
    if (!s->acc.sample_w &&
        !(s->acc.sample_w = malloc((size_t)s->plan.B * sizeof *s->acc.sample_w)))
        return ap_error(AP_ENOMEM, "out of memory");
    memcpy(s->acc.sample_w, w, (size_t)s->plan.B * sizeof *w);
    return AP_OK;
}

int ap_sim_accumulate_state(ap_sim *s) {
    if (s->acc.n == 0) return ap_error(AP_ENOTFOUND, "accumulate_state: no projection has a rule");
    apx_sim_clear_acc(s);
    int rc = apx_sim_accumulate(s, 1.0, NULL);
    if (rc) return rc < 0 ? rc : ap_error(AP_ENONFINITE, "accumulate_state: a rule failed");
    s->acc.weight = 1.0;
    return AP_OK;
}

int ap_sim_recording(const ap_sim *s, int k, const double **data, const double **times,
                     size_t *n_times, int *width) {
    if (k < 0 || k >= s->run.n_rec)
        return ap_error(AP_EINVAL, "no recording %d (the last run recorded %d signals)", k,
                        s->run.n_rec);
    const sim_rec *r = &s->run.rec[k];
    if (data) *data = r->data;
    if (times) *times = r->times;
    if (n_times) *n_times = r->n;
    if (width) *width = r->width;
    return AP_OK;
}

int ap_sim_accumulator(const ap_sim *s, int id, const double **dW, const double **db,
                       double *weight) {
    if (id < 0 || id >= s->plan.n_projs)
        return ap_error(AP_EINVAL, "no projection with index %d", id);
    const sim_acc *a = s->plan.projs[id].acc;
    if (!a)
        return ap_error(AP_ENOTFOUND, "projection %s has no plasticity rule",
                        s->plan.projs[id].obj->name);
    if (dW) *dW = a->dW;
    if (db) *db = s->plan.projs[id].obj->b ? a->db : NULL;
    if (weight) *weight = s->acc.weight;
    return AP_OK;
}
