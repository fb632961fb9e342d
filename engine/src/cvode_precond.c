/* cvode_precond.c — the diagonal and per-sample block preconditioners of CVODE's Newton
 * systems (I - gamma J) x = r.
 *
 * The state vector holds each dynamic variable as a batch x n block, so sample b's variables
 * are spread over the vector: local variable k of a sample (the variables of every segment,
 * one after another) lies at base[k] + b * stride[k]. Samples never interact, so J is block-
 * diagonal over samples, and one evaluation of the right-hand side with local variable k
 * perturbed in every sample at once gives column k of every sample's block: a sample's state
 * size of evaluations gives the whole batch Jacobian.
 *
 * diagonal: J_ii = -1/tau for a compartment with the engine's leaky default (tau dx/dt =
 *   -x + drive; the drive's dependence on x itself is left out), finite differences for every
 *   other variable (compartments with their own dynamics, block states).
 * block: every sample's block by finite differences, I - gamma J_b factorised by LU with
 *   partial pivoting, solved exactly.
 * type: a registered ap_precond_type (apical/precond.h), built from what its plugin knows of
 *   the model's structure; the default where the block one is too large and the type applies. */
#include "cvode_precond.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/precond.h"
#include "registry_impl.h"
#include "sim_impl.h"

/* A sample's block is dense: above this many variables per sample its B n^2 storage and n
 * evaluations per setup are refused (block) or not the default. */
#define APX_BLOCK_MAX 2000
#define APX_BLOCK_DEFAULT_MAX 128
/* Bytes of the blocks (Jacobian and factors of every sample): refused above the first, not
 * the default above the second. */
#define APX_BLOCK_BYTES_MAX ((double)(4ull << 30))
#define APX_BLOCK_BYTES_DEFAULT ((double)(256ull << 20))

struct apx_precond {
    ap_sim *s;
    ap_precond_kind kind;
    int B;
    size_t n, N;     /* variables per sample, in the batch */
    size_t *base;    /* per local variable: index of sample 0 */
    size_t *stride;  /* per local variable: distance between samples */
    double *known;   /* per local variable: analytic J_kk (leaky compartments), else NAN */
    double *d;       /* diagonal: J_ii over the batch */
    double *jac;     /* block: per sample, n x n column-major */
    double *lu;      /* block: per sample, the factors of I - gamma J_b */
    int *piv;        /* block: per sample, n row swaps */
    double *yp, *fp; /* scratch: perturbed state and its derivative */
    double *w;       /* scratch: one sample's right-hand side */
    double gamma;
    long evals;
    const ap_precond_type *type; /* type: the registered type and its data */
    void *tdata;
};

static int add_segment(apx_precond *p, size_t *k, size_t off, size_t n, double known) {
    for (size_t u = 0; u < n; u++, (*k)++) {
        p->base[*k] = off + u;
        p->stride[*k] = n;
        p->known[*k] = known;
    }
    return 0;
}

size_t apx_precond_sample_size(const ap_sim *s) {
    return s->plan.B > 0 ? s->plan.n_state / (size_t)s->plan.B : 0;
}

static double block_bytes(const ap_sim *s) {
    double n = (double)apx_precond_sample_size(s);
    return 2.0 * (double)s->plan.B * n * n * sizeof(double);
}

ap_precond_kind apx_precond_default(const ap_sim *s) {
    return apx_precond_sample_size(s) <= APX_BLOCK_DEFAULT_MAX &&
                   block_bytes(s) <= APX_BLOCK_BYTES_DEFAULT
               ? AP_PREC_BLOCK
               : AP_PREC_NONE;
}

/* A registered type bound to s: AP_EINVAL (with the type's reason) when it does not apply. */
static int new_typed(ap_sim *s, const ap_precond_type *t, const char *who, apx_precond **out) {
    apx_precond *p = calloc(1, sizeof *p);
    if (!p) return ap_error(AP_ENOMEM, "%s: out of memory for the preconditioner", who);
    p->s = s, p->kind = AP_PREC_TYPE, p->B = s->plan.B, p->type = t;
    p->n = apx_precond_sample_size(s), p->N = s->plan.n_state;
    int rc = t->create(s, &p->tdata);
    if (rc) {
        free(p);
        return ap_error_prefix(rc, "%s: preconditioner \"%s\": ", who, t->name);
    }
    *out = p;
    return 0;
}

int apx_precond_new_default(ap_sim *s, const char *who, apx_precond **out) {
    *out = NULL;
    const ap_registry *r = ap_model_registry(s->plan.m);
    for (int i = 0; r && i < r->count[APX_KIND_PRECOND]; i++) {
        int rc = new_typed(s, r->entries[APX_KIND_PRECOND][i].desc, who, out);
        if (rc != AP_EINVAL) return rc;
        ap_error_clear();
    }
    ap_precond_kind k = apx_precond_default(s);
    return k != AP_PREC_NONE ? apx_precond_new(s, k, who, out) : 0;
}

int apx_precond_new_named(ap_sim *s, const char *name, const char *who, apx_precond **out) {
    *out = NULL;
    if (!name) return ap_error(AP_EINVAL, "%s: preconditioner type without a name", who);
    if (!strcmp(name, "diagonal")) return apx_precond_new(s, AP_PREC_DIAGONAL, who, out);
    if (!strcmp(name, "block")) return apx_precond_new(s, AP_PREC_BLOCK, who, out);
    const ap_registry *r = ap_model_registry(s->plan.m);
    const apx_registry_entry *e = r ? apx_registry_find(r, APX_KIND_PRECOND, name) : NULL;
    if (e) return new_typed(s, e->desc, who, out);
    char known[512] = "";
    for (int i = 0; r && i < r->count[APX_KIND_PRECOND]; i++) {
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, ", %s", r->entries[APX_KIND_PRECOND][i].name);
    }
    return ap_error(AP_ENOTFOUND,
                    "%s: unknown preconditioner \"%s\" (known: default, none, diagonal, block%s)",
                    who, name, known);
}

int apx_precond_exact(const apx_precond *p) {
    return p && p->type && p->type->exact;
}

/* The local layout: every dynamic compartment, then every block state. */
static int layout(apx_precond *p, const char *who) {
    ap_sim *s = p->s;
    size_t k = 0;
    for (int i = 0; i < s->plan.n_pops; i++) {
        const sim_pop *sp = &s->plan.pops[i];
        for (int c = 0; c < sp->n_comp; c++) {
            const sim_comp *sc = &sp->comp[c];
            if (!sc->dynamic) continue;
            double known = sp->obj->type->dynamics ? NAN : -1.0 / sc->tau;
            add_segment(p, &k, sc->off, (size_t)sp->n, known);
        }
    }
    for (int i = 0; i < s->plan.n_blocks; i++) {
        const sim_block *sb = &s->plan.blocks[i];
        for (int j = 0; j < sb->n_state; j++)
            add_segment(p, &k, sb->state_off[j], (size_t)sb->state_size[j], NAN);
    }
    if (k != p->n)
        return ap_error(AP_EINVAL,
                        "%s: the state layout has %zu variables per sample, expected %zu", who, k,
                        p->n);
    return 0;
}

int apx_precond_new(ap_sim *s, ap_precond_kind kind, const char *who, apx_precond **out) {
    *out = NULL;
    const size_t n = apx_precond_sample_size(s), N = s->plan.n_state, B = (size_t)s->plan.B;
    if (kind == AP_PREC_BLOCK && n > APX_BLOCK_MAX)
        return ap_error(AP_EINVAL,
                        "%s: preconditioner \"block\" needs a dense %zu x %zu matrix per sample "
                        "(%zu samples) and %zu evaluations per setup; at most %d variables per "
                        "sample: use preconditioner = \"diagonal\"",
                        who, n, n, B, n, APX_BLOCK_MAX);
    if (kind == AP_PREC_BLOCK && block_bytes(s) > APX_BLOCK_BYTES_MAX)
        return ap_error(AP_EINVAL,
                        "%s: preconditioner \"block\" needs %.3g GB for %zu samples of %zu "
                        "variables (at most %.3g GB): use preconditioner = \"diagonal\" or a "
                        "smaller batch",
                        who, block_bytes(s) / 1e9, B, n, APX_BLOCK_BYTES_MAX / 1e9);
    apx_precond *p = calloc(1, sizeof *p);
    if (!p) return ap_error(AP_ENOMEM, "%s: out of memory for the preconditioner", who);
    p->s = s, p->kind = kind, p->B = s->plan.B, p->n = n, p->N = N;
    int ok = (p->base = malloc(n * sizeof *p->base)) &&
             (p->stride = malloc(n * sizeof *p->stride)) &&
             (p->known = malloc(n * sizeof *p->known)) && (p->yp = malloc(N * sizeof *p->yp)) &&
             (p->fp = malloc(N * sizeof *p->fp)) && (p->w = malloc(n * sizeof *p->w));
    if (ok && kind == AP_PREC_DIAGONAL) ok = (p->d = malloc(N * sizeof *p->d)) != NULL;
    if (ok && kind == AP_PREC_BLOCK)
        ok = (p->jac = malloc(B * n * n * sizeof *p->jac)) &&
             (p->lu = malloc(B * n * n * sizeof *p->lu)) &&
             (p->piv = malloc(B * n * sizeof *p->piv));
    if (!ok) {
        apx_precond_free(&p);
        return ap_error(AP_ENOMEM,
                        "%s: out of memory for the %s preconditioner (%zu samples of %zu)", who,
                        kind == AP_PREC_BLOCK ? "block" : "diagonal", B, n);
    }
    int rc = layout(p, who);
    if (rc) {
        apx_precond_free(&p);
        return rc;
    }
    *out = p;
    return 0;
}

void apx_precond_free(apx_precond **pp) {
    apx_precond *p = *pp;
    if (!p) return;
    if (p->type && p->tdata) p->type->destroy(p->tdata);
    free(p->base), free(p->stride), free(p->known), free(p->d), free(p->jac), free(p->lu);
    free(p->piv), free(p->yp), free(p->fp), free(p->w);
    free(p);
    *pp = NULL;
}

long apx_precond_evals(const apx_precond *p) {
    return p->evals;
}

/* Increment of a variable at y: a relative one, absolute near zero; the difference y + h - y
 * as the machine represents it. */
static double increment(double y) {
    volatile double yh = y + sqrt(DBL_EPSILON) * (fabs(y) + 1.0);
    return yh - y;
}

/* f at y with local variable k perturbed in every sample, into p->fp (p->yp holds y; restore
 * puts variable k back). */
static int perturbed_eval(apx_precond *p, double t, size_t k) {
    const size_t base = p->base[k], stride = p->stride[k];
    for (int b = 0; b < p->B; b++) {
        size_t i = base + (size_t)b * stride;
        p->yp[i] += increment(p->yp[i]);
    }
    p->evals++;
    return apx_sim_eval(p->s, t, p->yp, p->fp);
}

static void restore(apx_precond *p, const double *y, size_t k) {
    for (int b = 0; b < p->B; b++) {
        size_t i = p->base[k] + (size_t)b * p->stride[k];
        p->yp[i] = y[i];
    }
}

static int diagonal_jacobian(apx_precond *p, double t, const double *y, const double *fy) {
    memcpy(p->yp, y, p->N * sizeof *y);
    for (size_t k = 0; k < p->n; k++) {
        const size_t base = p->base[k], stride = p->stride[k];
        if (!isnan(p->known[k])) {
            for (int b = 0; b < p->B; b++)
                p->d[base + (size_t)b * stride] = p->known[k];
            continue;
        }
        int rc = perturbed_eval(p, t, k);
        restore(p, y, k);
        if (rc) return rc;
        for (int b = 0; b < p->B; b++) {
            size_t i = base + (size_t)b * stride;
            p->d[i] = (p->fp[i] - fy[i]) / increment(y[i]);
        }
    }
    return 0;
}

static int block_jacobian(apx_precond *p, double t, const double *y, const double *fy) {
    const size_t n = p->n;
    memcpy(p->yp, y, p->N * sizeof *y);
    for (size_t k = 0; k < n; k++) {
        int rc = perturbed_eval(p, t, k);
        restore(p, y, k);
        if (rc) return rc;
        for (int b = 0; b < p->B; b++) {
            const double inv = 1.0 / increment(y[p->base[k] + (size_t)b * p->stride[k]]);
            double *col = p->jac + (size_t)b * n * n + k * n;
            for (size_t r = 0; r < n; r++) {
                size_t i = p->base[r] + (size_t)b * p->stride[r];
                col[r] = (p->fp[i] - fy[i]) * inv;
            }
        }
    }
    return 0;
}

/* LU with partial pivoting of the column-major n x n matrix a; 1 if singular. */
static int lu_factor(double *a, size_t n, int *piv) {
    for (size_t c = 0; c < n; c++) {
        size_t pr = c;
        for (size_t r = c + 1; r < n; r++)
            if (fabs(a[c * n + r]) > fabs(a[c * n + pr])) pr = r;
        piv[c] = (int)pr;
        if (a[c * n + pr] == 0.0) return 1;
        if (pr != c)
            for (size_t j = 0; j < n; j++) {
                double tmp = a[j * n + c];
                a[j * n + c] = a[j * n + pr];
                a[j * n + pr] = tmp;
            }
        const double inv = 1.0 / a[c * n + c];
        for (size_t r = c + 1; r < n; r++)
            a[c * n + r] *= inv;
        for (size_t j = c + 1; j < n; j++) {
            const double f = a[j * n + c];
            if (f == 0.0) continue;
            for (size_t r = c + 1; r < n; r++)
                a[j * n + r] -= f * a[c * n + r];
        }
    }
    return 0;
}

static void lu_solve(const double *a, size_t n, const int *piv, double *x) {
    /* the row swaps first (the factors' rows were swapped by every later step too) */
    for (size_t c = 0; c < n; c++) {
        size_t pr = (size_t)piv[c];
        if (pr != c) {
            double tmp = x[c];
            x[c] = x[pr];
            x[pr] = tmp;
        }
    }
    for (size_t c = 0; c < n; c++)
        for (size_t r = c + 1; r < n; r++)
            x[r] -= a[c * n + r] * x[c];
    for (size_t c = n; c-- > 0;) {
        x[c] /= a[c * n + c];
        for (size_t r = 0; r < c; r++)
            x[r] -= a[c * n + r] * x[c];
    }
}

static int block_factor(apx_precond *p, double gamma) {
    const size_t n = p->n, nn = n * n;
    for (int b = 0; b < p->B; b++) {
        double *lu = p->lu + (size_t)b * nn;
        const double *j = p->jac + (size_t)b * nn;
        for (size_t e = 0; e < nn; e++)
            lu[e] = -gamma * j[e];
        for (size_t k = 0; k < n; k++)
            lu[k * n + k] += 1.0;
        if (lu_factor(lu, n, p->piv + (size_t)b * n)) return 1;
    }
    return 0;
}

int apx_precond_setup(apx_precond *p, double t, const double *y, const double *fy, int jok,
                      int *jcur, double gamma) {
    int rc = 0;
    *jcur = 0;
    if (p->type) return p->type->setup(p->tdata, t, y, fy, jok, jcur, gamma);
    if (!jok) {
        rc =
            p->kind == AP_PREC_BLOCK ? block_jacobian(p, t, y, fy) : diagonal_jacobian(p, t, y, fy);
        if (rc) return rc;
        *jcur = 1;
    }
    p->gamma = gamma;
    if (p->kind == AP_PREC_BLOCK) return block_factor(p, gamma);
    return 0;
}

int apx_precond_solve(const apx_precond *p, double gamma, const double *r, double *z) {
    if (p->type) return p->type->solve(p->tdata, gamma, r, z);
    if (p->kind == AP_PREC_DIAGONAL) {
        for (size_t i = 0; i < p->N; i++)
            z[i] = r[i] / (1.0 - p->gamma * p->d[i]);
        return 0;
    }
    const size_t n = p->n;
    for (int b = 0; b < p->B; b++) {
        for (size_t k = 0; k < n; k++)
            p->w[k] = r[p->base[k] + (size_t)b * p->stride[k]];
        lu_solve(p->lu + (size_t)b * n * n, n, p->piv + (size_t)b * n, p->w);
        for (size_t k = 0; k < n; k++)
            z[p->base[k] + (size_t)b * p->stride[k]] = p->w[k];
    }
    return 0;
}

/* Builds p at (t, y) and solves (I - gamma J~) z = r with it, as a run would. */
static int solve_once(ap_sim *s, apx_precond *p, const char *who, double t, const double *y,
                      double gamma, const double *r, double *z) {
    int rc = 0;
    s->run.input_cache_valid = 0; /* outside a run: the weights may have changed */
    double *fy = malloc(s->plan.n_state * sizeof *fy);
    if (!fy) rc = ap_error(AP_ENOMEM, "%s: out of memory", who);
    if (!rc) rc = ap_sim_rhs(s, t, y, fy);
    int jcur;
    if (!rc && (rc = apx_precond_setup(p, t, y, fy, 0, &jcur, gamma)) != 0)
        rc = rc < 0 ? rc
                    : ap_error(AP_ESOLVER,
                               "%s: the setup failed (a singular block or a "
                               "failed evaluation)",
                               who);
    if (!rc && (rc = apx_precond_solve(p, gamma, r, z)) > 0)
        rc = ap_error(AP_ESOLVER, "%s: the solve failed", who);
    if (!rc) rc = apx_sim_eval(s, t, y, NULL) < 0 ? AP_EPLUGIN : 0;
    free(fy);
    return rc;
}

int ap_sim_precond_solve(ap_sim *s, ap_precond_kind kind, double t, const double *y, double gamma,
                         const double *r, double *z) {
    const char *who = "precond_solve";
    if (!s || !y || !r || !z) return ap_error(AP_EINVAL, "%s: NULL argument", who);
    if (kind != AP_PREC_DIAGONAL && kind != AP_PREC_BLOCK)
        return ap_error(AP_EINVAL, "%s: kind %d is not diagonal or block", who, (int)kind);
    apx_precond *p;
    int rc = apx_precond_new(s, kind, who, &p);
    if (rc) return rc;
    rc = solve_once(s, p, who, t, y, gamma, r, z);
    apx_precond_free(&p);
    return rc;
}

int ap_sim_precond_solve_named(ap_sim *s, const char *name, double t, const double *y, double gamma,
                               const double *r, double *z) {
    const char *who = "precond_solve";
    if (!s || !y || !r || !z) return ap_error(AP_EINVAL, "%s: NULL argument", who);
    apx_precond *p;
    int rc = apx_precond_new_named(s, name, who, &p);
    if (rc) return rc;
    rc = solve_once(s, p, who, t, y, gamma, r, z);
    apx_precond_free(&p);
    return rc;
}

int ap_sim_state_offset(const ap_sim *s, const char *name, size_t *off, int *size) {
    const char *dot = name ? strchr(name, '.') : NULL;
    if (!s || !dot || !off || !size)
        return ap_error(AP_EINVAL, "state_offset: \"%s\" is not object.part",
                        name ? name : "(null)");
    const size_t len = (size_t)(dot - name);
    for (int i = 0; i < s->plan.n_pops; i++) {
        const sim_pop *sp = &s->plan.pops[i];
        if (strlen(sp->obj->name) != len || strncmp(sp->obj->name, name, len)) continue;
        for (int c = 0; c < sp->n_comp; c++)
            if (sp->comp[c].dynamic && !strcmp(sp->obj->type->compartments[c].name, dot + 1)) {
                *off = sp->comp[c].off, *size = sp->n;
                return AP_OK;
            }
    }
    for (int i = 0; i < s->plan.n_blocks; i++) {
        const sim_block *sb = &s->plan.blocks[i];
        if (strlen(sb->obj->name) != len || strncmp(sb->obj->name, name, len)) continue;
        for (int j = 0; j < sb->n_state; j++)
            if (!strcmp(sb->obj->type->states[j], dot + 1)) {
                *off = sb->state_off[j], *size = sb->state_size[j];
                return AP_OK;
            }
    }
    return ap_error(AP_ENOTFOUND, "state_offset: \"%s\" is not a dynamic variable", name);
}
