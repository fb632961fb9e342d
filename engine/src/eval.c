/* eval.c — the right-hand side: instantaneous signals in plan order, derivatives, declared-order
 * (Gauss-Seidel) steps, the start state, and the evaluation of plasticity rules. No allocation
 * happens here: every buffer belongs to the compiled simulation. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "noise.h"
#include "sim_impl.h"

/* The contribution of every dense projection from an input, for the whole run. */
static void fill_input_caches(ap_sim *s) {
    const int B = s->plan.B;
    for (int i = 0; i < s->plan.n_projs; i++) {
        sim_proj *pr = &s->plan.projs[i];
        if (!pr->cache) continue;
        const apx_proj_obj *po = pr->obj;
        const int n = pr->n_tgt;
        if (po->b)
            for (int b = 0; b < B; b++)
                memcpy(pr->cache + (size_t)b * n, po->b, (size_t)n * sizeof(double));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n, pr->n_src, 1.0, pr->src,
                    pr->n_src, po->W, pr->n_src, po->b ? 1.0 : 0.0, pr->cache, n);
    }
    s->run.input_cache_valid = 1;
}

/* d (B x n) = or += the bias b broadcast over the batch. */
static inline void drive_bias(double *d, const double *bias, int B, int n, int first) {
    if (first) {
        for (int b = 0; b < B; b++)
            memcpy(d + (size_t)b * n, bias, (size_t)n * sizeof *d);
        return;
    }
    for (int b = 0; b < B; b++) {
        double *row = d + (size_t)b * n;
        for (int j = 0; j < n; j++)
            row[j] += bias[j];
    }
}

/* d (B x n) = or += w * src elementwise: a one-to-one projection. */
static inline void drive_one_to_one(double *d, const double *w, const double *src, int B, int n,
                                    int first) {
    for (int b = 0; b < B; b++) {
        double *row = d + (size_t)b * n;
        const double *srow = src + (size_t)b * n;
        if (first)
            for (int j = 0; j < n; j++)
                row[j] = w[j] * srow[j];
        else
            for (int j = 0; j < n; j++)
                row[j] += w[j] * srow[j];
    }
}

/* d = or += projection pr's contribution (from the snapshots when use_prev). */
static inline void drive_proj(ap_sim *s, const sim_proj *pr, double *d, int n, int use_prev,
                              int first) {
    const int B = s->plan.B;
    const size_t len = (size_t)B * (size_t)n;
    const apx_proj_obj *po = pr->obj;
    const double *src = use_prev && pr->src_prev ? pr->src_prev : pr->src;
    if (pr->cache) {
        /* inputs do not change during a run: their products are computed once */
        if (!s->run.input_cache_valid) fill_input_caches(s);
        if (first)
            memcpy(d, pr->cache, len * sizeof *d);
        else
            for (size_t i = 0; i < len; i++)
                d[i] += pr->cache[i];
    } else if (po->kind == AP_DENSE) {
        if (po->b) {
            drive_bias(d, po->b, B, n, first);
            first = 0;
        }
        /* (B x n_src) . W^T (n_src x n) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n, pr->n_src, 1.0, src, pr->n_src,
                    po->W, pr->n_src, first ? 0.0 : 1.0, d, n);
    } else {
        drive_one_to_one(d, po->W, src, B, n, first);
    }
}

/* The drive of compartment c of population sp: bias + projections + feeds (from the
 * snapshots when use_prev). */
static void compute_drive(ap_sim *s, sim_pop *sp, int c, int use_prev) {
    sim_comp *sc = &sp->comp[c];
    const size_t len = (size_t)s->plan.B * (size_t)sp->n;
    double *d = sc->drive;
    for (int k = 0; k < sc->n_projs; k++)
        drive_proj(s, &s->plan.projs[sc->projs[k]], d, sp->n, use_prev, k == 0);
    int f = 0;
    if (sc->n_projs == 0 && sc->n_feeds > 0) /* fed only by others (a soma): copy the first */
        memcpy(d, sp->comp[sc->feeds[f++]].value, len * sizeof *d);
    else if (sc->n_projs == 0)
        memset(d, 0, len * sizeof *d);
    for (; f < sc->n_feeds; f++) {
        const double *v = sp->comp[sc->feeds[f]].value;
        for (size_t i = 0; i < len; i++)
            d[i] += v[i];
    }
}

static int neuron_fail(ap_sim *s, const sim_pop *sp, int c, int rc) {
    if (rc > 0) {
        s->diag.bad_index = APX_BAD_COMPONENT;
        ap_error(AP_ENONFINITE, "population %s: neuron %s could not compute compartment %s",
                 sp->obj->name, sp->obj->type->name, sp->obj->type->compartments[c].name);
        /* recoverable; never APX_SWEEP_NONFINITE, whose location is in s->diag.bad_index */
        return 1;
    }
    return ap_error(AP_EPLUGIN, "population %s: neuron %s failed on compartment %s (code %d)",
                    sp->obj->name, sp->obj->type->name, sp->obj->type->compartments[c].name, rc);
}

/* value of instantaneous compartment c (its drive must be up to date) */
static int instant_value(ap_sim *s, sim_pop *sp, int c) {
    const ap_neuron_type *t = sp->obj->type;
    if (!t->dynamics) return 0; /* value aliases the drive */
    int rc = t->dynamics(&sp->ctx, c, sp->comp[c].value);
    return rc ? neuron_fail(s, sp, c, rc) : 0;
}

static void compute_rate(sim_pop *sp) {
    sp->obj->act->f((size_t)sp->ctx.batch * (size_t)sp->n, sp->comp[sp->obj->type->rate_of].value,
                    sp->rate);
}

/* "k_p = 1e+06, alpha = 0" into buf: the parameters of block sb. */
static void block_params(const sim_block *sb, char *buf, size_t n) {
    const ap_block_type *ty = sb->obj->type;
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < ty->n_params && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s = %g", i ? ", " : "", ty->params[i].name,
                              sb->obj->params[i]);
}

/* The message of a block whose output or derivative failed recoverably (rc > 0): its name,
 * type and parameters, and the first non-finite value among its outputs (1-based sample and
 * unit). Returns 1 (recoverable: CVODE retries a smaller step). */
static int block_trouble(ap_sim *s, const sim_block *sb, const char *what) {
    char params[256], where[192] = "";
    block_params(sb, params, sizeof params);
    for (int k = 0; k < sb->n_out && !where[0]; k++) {
        const size_t len = (size_t)s->plan.B * (size_t)sb->out_size[k];
        const long bad = apx_first_nonfinite(sb->out[k], len);
        if (bad < 0 || sb->out_size[k] <= 0) continue;
        snprintf(where, sizeof where, "output %s[sample %ld, unit %ld] = %g is not finite",
                 sb->obj->type->outputs ? sb->obj->type->outputs[k] : "?",
                 bad / sb->out_size[k] + 1, bad % sb->out_size[k] + 1, sb->out[k][bad]);
    }
    s->diag.bad_index = APX_BAD_COMPONENT;
    ap_error(AP_ENONFINITE, "block %s (%s%s%s): %s%s", sb->obj->name, sb->obj->type->name,
             params[0] ? ", " : "", params, where[0] ? "" : what,
             where[0] ? where : " failed (no output is non-finite)");
    return 1;
}

static int block_output(ap_sim *s, sim_block *sb, double t, int initial) {
    sb->ctx.t = t;
    sb->ctx.initial = initial;
    if (!sb->obj->type->output) return 0;
    int rc = sb->obj->type->output(&sb->ctx);
    if (rc < 0)
        return ap_error(AP_EPLUGIN, "block %s (%s): output failed (code %d)%s%s", sb->obj->name,
                        sb->obj->type->name, rc, *ap_last_error() ? ": " : "", ap_last_error());
    return rc > 0 ? block_trouble(s, sb, "output") : rc;
}

/* Evaluates the nodes of an order (instantaneous signals). */
static int eval_nodes(ap_sim *s, const sim_node *order, int n, double t, int init) {
    for (int k = 0; k < n; k++) {
        const sim_node *nd = &order[k];
        int rc = 0;
        if (nd->kind == NODE_BLOCK) {
            rc = block_output(s, &s->plan.blocks[nd->obj], t, 0);
        } else {
            sim_pop *sp = &s->plan.pops[nd->obj];
            sp->ctx.t = t;
            if (nd->kind == NODE_RATE) {
                compute_rate(sp);
            } else {
                sim_comp *sc = &sp->comp[nd->comp];
                compute_drive(s, sp, nd->comp, 0);
                if (sc->dynamic) { /* settling a dynamic compartment at the start */
                    if (init)
                        memcpy(sc->value, sc->drive, (size_t)s->plan.B * sp->n * sizeof(double));
                } else {
                    rc = instant_value(s, sp, nd->comp);
                }
            }
        }
        if (rc) return rc;
    }
    return 0;
}

static int pop_derivs(ap_sim *s, sim_pop *sp, double *ydot) {
    const size_t len = (size_t)s->plan.B * (size_t)sp->n;
    for (int c = 0; c < sp->n_comp; c++)
        if (sp->comp[c].dynamic) compute_drive(s, sp, c, 0);
    for (int c = 0; c < sp->n_comp; c++) {
        sim_comp *sc = &sp->comp[c];
        if (!sc->dynamic) continue;
        double *d = ydot + sc->off;
        if (sp->obj->type->dynamics) {
            int rc = sp->obj->type->dynamics(&sp->ctx, c, d);
            if (rc) return neuron_fail(s, sp, c, rc);
        } else {
            const double inv = 1.0 / sc->tau;
            const double *x = sc->value, *dr = sc->drive;
            for (size_t i = 0; i < len; i++)
                d[i] = (dr[i] - x[i]) * inv;
        }
    }
    return 0;
}

static int block_deriv(ap_sim *s, sim_block *sb, double *const *dst) {
    if (!sb->n_state) return 0;
    int rc = sb->obj->type->deriv(&sb->ctx, dst);
    if (rc < 0)
        return ap_error(AP_EPLUGIN, "block %s (%s): derivative failed (code %d)%s%s", sb->obj->name,
                        sb->obj->type->name, rc, *ap_last_error() ? ": " : "", ap_last_error());
    return rc > 0 ? block_trouble(s, sb, "derivative") : rc;
}

int apx_sim_eval(ap_sim *s, double t, const double *y, double *ydot) {
    if (y != s->run.x) memcpy(s->run.x, y, s->plan.n_state * sizeof *y);
    s->run.eval_valid = 0;
    s->diag.rhs_evals++;
    int rc = eval_nodes(s, s->plan.run_order, s->plan.n_run, t, 0);
    if (rc) return rc;
    s->run.eval_t = t;
    s->run.eval_valid = 1;
    if (!ydot) return 0;
    for (int p = 0; p < s->plan.n_pops; p++)
        if ((rc = pop_derivs(s, &s->plan.pops[p], ydot))) return rc;
    for (int b = 0; b < s->plan.n_blocks; b++) {
        sim_block *sb = &s->plan.blocks[b];
        for (int k = 0; k < sb->n_state; k++)
            sb->dstate[k] = ydot + sb->state_off[k];
        rc = block_deriv(s, sb, sb->dstate);
        /* restore the scratch pointers used by ordered steps */
        size_t o = 0;
        for (int k = 0; k < sb->n_state; k++) {
            sb->dstate[k] = sb->dstate_buf + o;
            o += (size_t)s->plan.B * (size_t)sb->state_size[k];
        }
        if (rc) return rc;
    }
    long bad = apx_first_nonfinite(ydot, s->plan.n_state);
    if (bad >= 0) {
        s->diag.bad_index = bad;
        s->diag.bad_value = ydot[bad];
        return 1;
    }
    return 0;
}

int apx_sim_start(ap_sim *s, int keep_state) {
    s->run.input_cache_valid = 0; /* weights may have changed since the last run */
    const size_t B = (size_t)s->plan.B;
    int rc;
    if (!keep_state) {
        for (int p = 0; p < s->plan.n_pops; p++) {
            sim_pop *sp = &s->plan.pops[p];
            for (int c = 0; c < sp->n_comp; c++) {
                sim_comp *sc = &sp->comp[c];
                if (!sc->dynamic) continue;
                size_t len = B * (size_t)sp->n;
                double v = sp->obj->start_value[c];
                for (size_t i = 0; i < len; i++)
                    sc->value[i] = v;
            }
        }
        for (int b = 0; b < s->plan.n_blocks; b++) {
            sim_block *sb = &s->plan.blocks[b];
            for (int k = 0; k < sb->n_state; k++)
                memset(sb->state[k], 0, B * (size_t)sb->state_size[k] * sizeof(double));
        }
    }
    /* Initial outputs of blocks depend on their state only; then the start state's signals;
     * then the blocks' own initial states, which may read their (now valid) inputs, and the
     * signals again if any block set one. */
    int passes = 1;
    if (!keep_state)
        for (int b = 0; b < s->plan.n_blocks; b++)
            if (s->plan.blocks[b].obj->type->init_state) passes = 2;
    for (int pass = 0; pass < passes; pass++) {
        if (pass == 1)
            for (int b = 0; b < s->plan.n_blocks; b++) {
                sim_block *sb = &s->plan.blocks[b];
                if (!sb->obj->type->init_state) continue;
                sb->ctx.t = 0.0;
                sb->ctx.initial = 1;
                rc = sb->obj->type->init_state(&sb->ctx, sb->state);
                if (rc)
                    return ap_error(AP_EPLUGIN, "block %s (%s): init_state failed (code %d)",
                                    sb->obj->name, sb->obj->type->name, rc);
            }
        for (int b = 0; b < s->plan.n_blocks; b++)
            if ((rc = block_output(s, &s->plan.blocks[b], 0.0, 1)) != 0)
                return rc < 0 ? rc
                              : ap_error(AP_ENONFINITE, "block %s: initial output failed (%d)",
                                         s->plan.blocks[b].obj->name, rc);
        if ((rc = eval_nodes(s, keep_state ? s->plan.run_order : s->plan.init_order,
                             keep_state ? s->plan.n_run : s->plan.n_init, 0.0, !keep_state)))
            return rc < 0 ? rc : ap_error(AP_ENONFINITE, "initial evaluation failed (%d)", rc);
    }
    long bad = apx_first_nonfinite(s->run.x, s->plan.n_state);
    if (bad >= 0) {
        char nm[256];
        apx_sim_describe(s, (size_t)bad, nm, sizeof nm);
        return ap_error(AP_ENONFINITE, "start state: %s = %g", nm, s->run.x[bad]);
    }
    s->run.eval_valid = 0;
    return 0;
}

/* ---- declared-order sweep ---------------------------------------------------------------- */

/* After a component's state x (len values of s->run.x) was written: APX_SWEEP_NONFINITE with the
 * first non-finite value recorded, or 0. */
static int check_written(ap_sim *s, const double *x, size_t len) {
    const long bad = apx_first_nonfinite(x, len);
    if (bad < 0) return 0;
    s->diag.bad_index = (long)(x - s->run.x) + bad;
    s->diag.bad_value = x[bad];
    return APX_SWEEP_NONFINITE;
}

static int step_pop(ap_sim *s, sim_pop *sp, double t, double dt, ap_noise *rng) {
    const size_t len = (size_t)s->plan.B * (size_t)sp->n;
    sp->ctx.t = t;
    for (int c = 0; c < sp->n_comp; c++) {
        sim_comp *sc = &sp->comp[c];
        compute_drive(s, sp, c, 1);
        if (!sc->dynamic) {
            int rc = instant_value(s, sp, c);
            if (rc) return rc;
            continue;
        }
        double *x = sc->value;
        if (sp->obj->type->dynamics) {
            /* the population's scratch: its rate buffer is rewritten below anyway */
            double *d = sp->rate;
            int rc = sp->obj->type->dynamics(&sp->ctx, c, d);
            if (rc) return neuron_fail(s, sp, c, rc);
            for (size_t i = 0; i < len; i++)
                x[i] += dt * d[i];
        } else {
            const double a = dt / sc->tau;
            const double *dr = sc->drive;
            for (size_t i = 0; i < len; i++)
                x[i] += a * (dr[i] - x[i]);
        }
        if (rng && sc->sigma != 0.0) apx_noise_add(rng, x, len, sc->sigma * sqrt(dt) / sc->tau);
        int rc = check_written(s, x, len);
        if (rc) return rc;
    }
    compute_rate(sp);
    return 0;
}

static int step_block(ap_sim *s, sim_block *sb, double t, double dt, ap_noise *rng) {
    sb->ctx.t = t;
    sb->ctx.initial = 0;
    int rc = block_deriv(s, sb, sb->dstate);
    if (rc) return rc;
    for (int k = 0; k < sb->n_state; k++) {
        size_t len = (size_t)s->plan.B * (size_t)sb->state_size[k];
        double *x = sb->state[k];
        const double *d = sb->dstate[k];
        for (size_t i = 0; i < len; i++)
            x[i] += dt * d[i];
        if (rng && sb->state_sigma[k] != 0.0)
            apx_noise_add(rng, x, len, sb->state_sigma[k] * sqrt(dt));
        if ((rc = check_written(s, x, len))) return rc;
    }
    return block_output(s, sb, t + dt, 0);
}

/* order[k] >= 0: population index; < 0: block -1 - index */
int apx_sim_ordered_step(ap_sim *s, const int *order, int n_order, double t, double dt,
                         ap_noise *rng) {
    s->diag.rhs_evals++; /* one sweep evaluates every component once */
    for (int k = 0; k < s->run.n_snap; k++)
        memcpy(s->run.snap[k].copy, s->run.snap[k].src, s->run.snap[k].count * sizeof(double));
    for (int k = 0; k < n_order; k++) {
        int rc = order[k] >= 0 ? step_pop(s, &s->plan.pops[order[k]], t, dt, rng)
                               : step_block(s, &s->plan.blocks[-1 - order[k]], t, dt, rng);
        if (rc) return rc;
    }
    return 0;
}

/* ---- plasticity rules -------------------------------------------------------------------- */

/* The rule's factors of projection pr at the current signals: pre (batch x cols) preset to the
 * source, post (batch x rows) from the rule, each sample's row of post multiplied by
 * w * sample weight. */
static int rule_factors(ap_sim *s, sim_proj *pr, double *post, double *pre, double w) {
    const int B = s->plan.B;
    sim_acc *a = pr->acc;
    const apx_proj_obj *po = pr->obj;
    const int rows = po->rows;
    memcpy(pre, pr->src, (size_t)B * (size_t)po->cols * sizeof(double));
    a->ctx.t = s->run.eval_t;
    ap_error_clear();
    int rc = po->rule->factors(&a->ctx, post, pre);
    if (rc > 0) return rc;
    if (rc) {
        /* keep the rule's own message (ap_error) when it left one */
        if (*ap_last_error())
            return ap_error_prefix(rc, "projection %s: rule %s: ", po->name, po->rule->name);
        return ap_error(AP_EPLUGIN, "projection %s: rule %s failed (code %d)", po->name,
                        po->rule->name, rc);
    }
    if (s->acc.sample_w || w != 1.0)
        for (int b = 0; b < B; b++) {
            double *row = post + (size_t)b * rows;
            const double wb = s->acc.sample_w ? w * s->acc.sample_w[b] : w;
            for (int j = 0; j < rows; j++)
                row[j] *= wb;
        }
    return 0;
}

int apx_sim_accumulate(ap_sim *s, double w, double *quad) {
    const int B = s->plan.B;
    for (int i = 0; i < s->plan.n_projs; i++) {
        sim_proj *pr = &s->plan.projs[i];
        sim_acc *a = pr->acc;
        if (!a) continue;
        const apx_proj_obj *po = pr->obj;
        const int rows = po->rows, cols = po->cols;
        int rc = rule_factors(s, pr, a->post, a->pre, 1.0);
        if (rc) return rc;
        double *dW = quad ? quad + a->quad_off : a->dW;
        double *db = quad ? dW + (size_t)rows * cols : a->db;
        /* dW (rows x cols) += w * post^T (rows x B) . pre (B x cols) */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, cols, B, w, a->post, rows,
                    a->pre, cols, quad ? 0.0 : 1.0, dW, cols);
        if (po->b) {
            if (quad) memset(db, 0, (size_t)rows * sizeof *db);
            for (int b = 0; b < B; b++) {
                const double *row = a->post + (size_t)b * rows;
                for (int j = 0; j < rows; j++)
                    db[j] += w * row[j];
            }
        }
    }
    return 0;
}

/* Adds the slots of accumulator a (projection pr) to dW and db, and empties them. */
static void flush_acc(ap_sim *s, sim_proj *pr) {
    sim_acc *a = pr->acc;
    if (a->n_slots <= 0) return;
    /* every slot's samples act as one batch of n_slots * B samples */
    const int K = a->n_slots * s->plan.B;
    const int rows = pr->obj->rows, cols = pr->obj->cols;
    /* dW (rows x cols) += post^T (rows x K) . pre (K x cols) */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, cols, K, 1.0, a->stack_post, rows,
                a->stack_pre, cols, 1.0, a->dW, cols);
    if (pr->obj->b)
        for (int k = 0; k < K; k++) {
            const double *row = a->stack_post + (size_t)k * rows;
            for (int j = 0; j < rows; j++)
                a->db[j] += row[j];
        }
    a->n_slots = 0;
}

int apx_sim_acc_push(ap_sim *s, double w) {
    if (s->acc.cap <= 0) return apx_sim_accumulate(s, w, NULL);
    const size_t B = (size_t)s->plan.B;
    for (int i = 0; i < s->plan.n_projs; i++) {
        sim_proj *pr = &s->plan.projs[i];
        sim_acc *a = pr->acc;
        if (!a) continue;
        const size_t rows = (size_t)pr->obj->rows, cols = (size_t)pr->obj->cols;
        const size_t slot = (size_t)a->n_slots * B;
        double *post = a->stack_post + slot * rows, *pre = a->stack_pre + slot * cols;
        int rc = rule_factors(s, pr, post, pre, w);
        if (rc) return rc;
        if (a->n_slots > 0 && memcmp(pre, pre - B * cols, B * cols * sizeof *pre) == 0) {
            /* same presynaptic factor as the last slot (a held input, for one) */
            double *last = post - B * rows;
            for (size_t k = 0; k < B * rows; k++)
                last[k] += post[k];
        } else if (++a->n_slots == s->acc.cap) {
            flush_acc(s, pr);
        }
    }
    return 0;
}

void apx_sim_acc_flush(ap_sim *s) {
    for (int i = 0; i < s->plan.n_projs; i++)
        if (s->plan.projs[i].acc) flush_acc(s, &s->plan.projs[i]);
}

/* ---- recording --------------------------------------------------------------------------- */

int apx_sim_record(ap_sim *s, double t) {
    for (int k = 0; k < s->run.n_rec; k++) {
        sim_rec *r = &s->run.rec[k];
        if (r->n >= r->cap) {
            /* only CVODE's step-driven recording cannot know its count in advance */
            size_t nc = r->cap ? 2 * r->cap : 64;
            double *d = realloc(r->data, nc * (size_t)r->width * sizeof *d);
            if (!d) return ap_error(AP_ENOMEM, "out of memory recording %s", r->name);
            r->data = d;
            r->data_alloc = nc * (size_t)r->width;
            double *tt = realloc(r->times, nc * sizeof *tt);
            if (!tt) return ap_error(AP_ENOMEM, "out of memory recording %s", r->name);
            r->times = tt;
            r->times_alloc = nc;
            r->cap = nc;
        }
        memcpy(r->data + r->n * (size_t)r->width, r->src, (size_t)r->width * sizeof(double));
        r->times[r->n++] = t;
    }
    return 0;
}
