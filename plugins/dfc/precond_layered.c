/* precond_layered.c — the preconditioner type dfc.layered: the exact solve of CVODE's Newton
 * systems (I - gamma J) z = r on a DFC network (docs/solvers.md, "Structured
 * preconditioners"), from the network's structure instead of finite differences.
 *
 * Per sample, with somas v_i (tau_i, i = 1..L), D_i = diag(phi_i'(v_i)), the controller's
 * output u (m = n_L values) and its integrator state w (dfc.pi and dfc.i; dfc.p has none):
 *     tau_i dv_i/dt = -v_i + W_i phi_{i-1}(v_{i-1}) + b_i + Q_i u     (phi_0(v_0) = x, fixed)
 *     u = w + k_p (r* - phi_L(v_L)),   tau_u dw/dt = r* - phi_L(v_L) - alpha u.
 * With c_i = gamma / tau_i, a_i = 1 + c_i, rho_i = c_i / a_i and mu = du at the solution, the
 * somas' rows read z_i = r_i / a_i + rho_i (W_i D_{i-1} z_{i-1} + Q_i mu): a forward sweep
 * once mu is known. Unrolled, z_L = y_L + K mu with
 *     y_L = sum_k pi_k / a_k M_k r_k,   K = sum_k pi_k rho_k M_k Q_k,
 *     M_k = W_L D_{L-1} ... W_{k+1} D_k (M_L = I),   pi_k = rho_{k+1} ... rho_L,
 * and the controller's rows, with g = gamma / tau_u, give the m x m Schur system
 *     ((1 + g alpha) I + (g + k_p) D_L K) mu = r_w - (g + k_p) D_L y_L
 * (dfc.p: g = 0, r_w = 0). Then z by the forward sweep and z_w = r_w - g D_L z_L - g alpha mu.
 *
 * Setup (a new Jacobian): D_i, and M_k (n_L x n_k per sample) by a backward sweep, one GEMM per
 * layer over the whole batch (the n_L rows of every sample stacked), and P_k = M_k Q_k, one
 * GEMM each. These do not depend on gamma, so a new gamma costs only K and the per-sample LU
 * of the Schur matrix; the solve refactors whenever CVODE's current gamma differs from the
 * factored one, so every solve is exact for the Jacobian of the last setup. A solve is two
 * GEMMs per layer (as one evaluation of the right-hand side), and small per-sample products.
 *
 * The type binds only to a network it describes completely: populations h1..hL of
 * dfc.pyramidal with tau_v > 0 and an instantaneous apical compartment, W<i> and Q<i> the only
 * projections onto them, the Q<i> all from the output u of one dfc.pi, dfc.i or dfc.p reading
 * hL's rate, and no other state variable; otherwise it says which of these fails. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/precond.h"
#include "dfc_internal.h"

#define K "dfc.layered"

typedef enum { CTL_PI, CTL_I, CTL_P } ctl_kind;

typedef struct layered {
    dfc_net net;
    int B, L, m; /* samples, layers, controller size (= n_L) */
    ctl_kind ctl;
    double k_p, alpha, tau_u;
    /* per layer, indexed 1..L (one allocation, `layers`) */
    double *tau;
    size_t *off; /* somas in the state vector */
    double **d;  /* D_i: B x n_i */
    double **M;  /* M_k, k < L: B x (n_L x n_k) */
    double **P;  /* P_k = M_k Q_k, k < L: B x (n_L x m) */
    double *w;   /* scratch of factor: pi_k rho_k */
    void *layers;
    size_t off_w;                /* the integrator state (dfc.pi, dfc.i) */
    double *S;                   /* Schur factors: B x (m x m) */
    int *piv;                    /* B x m */
    double *yl, *mu, *tmp, *acc; /* B x m, B x m, B x max n, B x max n */
    double *mem;
    double gamma_f; /* gamma of the factors in S (NAN: none) */
    int have_jac;
} layered;

/* ---- binding ------------------------------------------------------------------------------ */

static int decline(const char *why, const char *what) {
    return ap_error(AP_EINVAL, "%s%s", why, what ? what : "");
}

static double param(const ap_param_desc *desc, int n, const double *values, const char *name,
                    double def) {
    for (int k = 0; k < n; k++)
        if (!strcmp(desc[k].name, name)) return values[k];
    return def;
}

/* Layers: dfc.pyramidal, tau_v > 0, an instantaneous apical compartment, a derivative. */
static int bind_layers(layered *p, ap_sim *s) {
    ap_model *m = ap_sim_model(s);
    for (int i = 1; i <= p->L; i++) {
        char name[32];
        snprintf(name, sizeof name, "h%d", i);
        ap_population_info pi;
        int rc = ap_model_population_info(m, name, &pi);
        if (rc) return rc;
        if (strcmp(pi.neuron->name, "dfc.pyramidal")) return decline(name, " is not dfc.pyramidal");
        const ap_param_desc *pd = pi.neuron->params;
        const int np = pi.neuron->n_params;
        p->tau[i] = param(pd, np, pi.params, "tau_v", 0.0);
        if (!(p->tau[i] > 0)) return decline(name, " has an instantaneous soma (tau_v = 0)");
        if (param(pd, np, pi.params, "tau_A", 0.0) != 0.0)
            return decline(name, " has a dynamic apical compartment (tau_A > 0)");
        if (!pi.activation->df) return decline(name, "'s activation has no derivative");
        snprintf(name, sizeof name, "h%d.soma", i);
        int size;
        if ((rc = ap_sim_state_offset(s, name, &p->off[i], &size))) return rc;
    }
    return AP_OK;
}

/* Projections: onto h<i> only W<i> (basal) and Q<i> (apical), every Q<i> from one block's u. */
static int bind_projections(layered *p, ap_model *m, char *ctl, size_t n_ctl) {
    ctl[0] = 0;
    for (int id = 0; id < ap_model_n_projections(m); id++) {
        ap_projection_info pi;
        int rc = ap_model_projection_info(m, id, &pi);
        if (rc) return rc;
        int layer = 0;
        char part[16] = "";
        if (sscanf(pi.target, "h%d.%15s", &layer, part) != 2 || layer < 1 || layer > p->L) continue;
        int ok = (!strcmp(part, "basal") && id == p->net.w_id[layer]) ||
                 (!strcmp(part, "apical") && id == p->net.q_id[layer]);
        if (!ok) return decline("another projection ends on the network: ", pi.name);
        if (id != p->net.q_id[layer]) continue;
        const char *dot = strrchr(pi.source, '.');
        if (!dot || strcmp(dot, ".u") || (size_t)(dot - pi.source) >= n_ctl)
            return decline("the feedback does not come from a controller's u: ", pi.name);
        char src[64];
        snprintf(src, sizeof src, "%.*s", (int)(dot - pi.source), pi.source);
        if (ctl[0] && strcmp(ctl, src)) return decline("the feedback comes from two blocks", NULL);
        snprintf(ctl, n_ctl, "%s", src);
    }
    return AP_OK;
}

/* The controller: dfc.pi, dfc.i or dfc.p, reading hL's rate. */
static int bind_controller(layered *p, ap_sim *s, const char *ctl) {
    ap_block_info bi;
    int rc = ap_model_block_info(ap_sim_model(s), ctl, &bi);
    if (rc) return rc;
    const ap_block_type *t = bi.type;
    if (!strcmp(t->name, "dfc.pi"))
        p->ctl = CTL_PI;
    else if (!strcmp(t->name, "dfc.i"))
        p->ctl = CTL_I;
    else if (!strcmp(t->name, "dfc.p"))
        p->ctl = CTL_P;
    else
        return decline("the controller is not dfc.pi, dfc.i or dfc.p: ", t->name);
    p->k_p = param(t->params, t->n_params, bi.params, "k_p", 0.0);
    p->alpha = param(t->params, t->n_params, bi.params, "alpha", 0.0);
    p->tau_u = param(t->params, t->n_params, bi.params, "tau_u", 1.0);
    char rate[40], rate2[48];
    snprintf(rate, sizeof rate, "h%d", p->L);
    snprintf(rate2, sizeof rate2, "h%d.rate", p->L);
    for (int k = 0; k < t->n_inputs; k++)
        if (!strcmp(t->inputs[k], "rate") && strcmp(bi.inputs[k], rate) &&
            strcmp(bi.inputs[k], rate2))
            return decline("the controller does not read the output layer's rate: ", bi.inputs[k]);
    if (p->ctl == CTL_P) return AP_OK;
    char name[80];
    snprintf(name, sizeof name, "%s.u_int", ctl);
    int size;
    return ap_sim_state_offset(s, name, &p->off_w, &size);
}

/* The per-layer arrays, 1..L, in one block. */
static int allocate_layers(layered *p) {
    const size_t n = (size_t)p->L + 1;
    char *q = calloc(n, 2 * sizeof(double) + sizeof(size_t) + 3 * sizeof(double *));
    if (!q) return ap_error(AP_ENOMEM, "out of memory (%zu layers)", n);
    p->layers = q;
    p->d = (double **)q, q += n * sizeof(double *);
    p->M = (double **)q, q += n * sizeof(double *);
    p->P = (double **)q, q += n * sizeof(double *);
    p->tau = (double *)q, q += n * sizeof(double);
    p->w = (double *)q, q += n * sizeof(double);
    p->off = (size_t *)q;
    return AP_OK;
}

static int allocate(layered *p) {
    const size_t B = (size_t)p->B, m = (size_t)p->m;
    size_t total = 0, nmax = 0;
    for (int i = 1; i <= p->L; i++) {
        const size_t n = (size_t)p->net.n[i];
        total += B * n + (i < p->L ? B * m * n + B * m * m : 0);
        if (n > nmax) nmax = n;
    }
    total += B * m * m + 2 * B * m + 2 * B * nmax;
    p->mem = malloc(total * sizeof *p->mem);
    p->piv = malloc(B * m * sizeof *p->piv);
    if (!p->mem || !p->piv) return ap_error(AP_ENOMEM, "out of memory (%zu values)", total);
    double *q = p->mem;
    for (int i = 1; i <= p->L; i++) {
        const size_t n = (size_t)p->net.n[i];
        p->d[i] = q, q += B * n;
        if (i == p->L) continue;
        p->M[i] = q, q += B * m * n;
        p->P[i] = q, q += B * m * m;
    }
    p->S = q, q += B * m * m;
    p->yl = q, q += B * m;
    p->mu = q, q += B * m;
    p->tmp = q, q += B * nmax;
    p->acc = q;
    return AP_OK;
}

static void destroy(void *data) {
    layered *p = data;
    if (!p) return;
    free(p->mem);
    free(p->piv);
    free(p->layers);
    dfc_net_free(&p->net);
    free(p);
}

static int bind(layered *p, ap_sim *s) {
    ap_model *m = ap_sim_model(s);
    int rc = dfc_net_load(m, K, 1, &p->net);
    if (rc) return rc;
    p->L = p->net.L, p->m = p->net.n[p->L], p->B = ap_model_batch(m);
    if ((rc = allocate_layers(p))) return rc;
    char ctl[64];
    if ((rc = bind_layers(p, s)) || (rc = bind_projections(p, m, ctl, sizeof ctl))) return rc;
    if (!ctl[0]) return decline("the network has no feedback projection", NULL);
    if ((rc = bind_controller(p, s, ctl))) return rc;
    size_t known = p->ctl == CTL_P ? 0 : (size_t)p->m;
    for (int i = 1; i <= p->L; i++)
        known += (size_t)p->net.n[i];
    const size_t per_sample = ap_sim_state_size(s) / (size_t)p->B;
    if (per_sample != known)
        return ap_error(AP_EINVAL,
                        "a sample has %zu state variables, the network's somas "
                        "and controller %zu (another dynamic part)",
                        per_sample, known);
    return allocate(p);
}

/* AP_EINVAL when the model is not a network this type describes (the message says why). */
static int create(ap_sim *s, void **data) {
    *data = NULL;
    layered *p = calloc(1, sizeof *p);
    if (!p) return ap_error(AP_ENOMEM, "out of memory");
    int rc = bind(p, s);
    if (rc) {
        destroy(p);
        return rc == AP_ENOMEM ? rc : ap_error_prefix(AP_EINVAL, "does not apply: ");
    }
    p->gamma_f = NAN;
    *data = p;
    return AP_OK;
}

/* ---- setup -------------------------------------------------------------------------------- */

/* Scales the columns of each sample's rows x n block of a by that sample's d (B x n). */
static void scale_columns(double *a, const double *d, int B, int rows, int n) {
    for (int b = 0; b < B; b++)
        for (int r = 0; r < rows; r++) {
            double *row = a + ((size_t)b * rows + r) * n;
            const double *db = d + (size_t)b * n;
            for (int k = 0; k < n; k++)
                row[k] *= db[k];
        }
}

/* D_i at y; M_k backwards (M_{L-1} = W_L D_{L-1}, M_k = M_{k+1} W_{k+1} D_k); P_k = M_k Q_k. */
static void jacobian(layered *p, const double *y) {
    const int B = p->B, L = p->L, m = p->m;
    const int *n = p->net.n;
    for (int i = 1; i <= L; i++)
        p->net.act[i]->df((size_t)B * n[i], y + p->off[i], p->d[i]);
    for (int k = L - 1; k >= 1; k--) {
        if (k == L - 1) {
            for (int b = 0; b < B; b++)
                memcpy(p->M[k] + (size_t)b * m * n[k], p->net.W[L],
                       (size_t)m * n[k] * sizeof(double));
        } else {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B * m, n[k], n[k + 1], 1.0,
                        p->M[k + 1], n[k + 1], p->net.W[k + 1], n[k], 0.0, p->M[k], n[k]);
        }
        scale_columns(p->M[k], p->d[k], B, m, n[k]);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B * m, m, n[k], 1.0, p->M[k], n[k],
                    p->net.Q[k], m, 0.0, p->P[k], m);
    }
    p->have_jac = 1;
}

/* LU with partial pivoting of the row-major m x m matrix a; 1 if singular. */
static int lu(double *a, int m, int *piv) {
    for (int c = 0; c < m; c++) {
        int pr = c;
        for (int r = c + 1; r < m; r++)
            if (fabs(a[r * m + c]) > fabs(a[pr * m + c])) pr = r;
        piv[c] = pr;
        if (a[pr * m + c] == 0.0) return 1;
        if (pr != c)
            for (int j = 0; j < m; j++) {
                double t = a[c * m + j];
                a[c * m + j] = a[pr * m + j], a[pr * m + j] = t;
            }
        for (int r = c + 1; r < m; r++) {
            const double f = (a[r * m + c] /= a[c * m + c]);
            for (int j = c + 1; j < m; j++)
                a[r * m + j] -= f * a[c * m + j];
        }
    }
    return 0;
}

static void lu_solve(const double *a, int m, const int *piv, double *x) {
    for (int c = 0; c < m; c++)
        if (piv[c] != c) {
            double t = x[c];
            x[c] = x[piv[c]], x[piv[c]] = t;
        }
    for (int r = 1; r < m; r++)
        for (int j = 0; j < r; j++)
            x[r] -= a[r * m + j] * x[j];
    for (int r = m - 1; r >= 0; r--) {
        for (int j = r + 1; j < m; j++)
            x[r] -= a[r * m + j] * x[j];
        x[r] /= a[r * m + r];
    }
}

/* Controller coefficients for gamma: g = gamma / tau_u (0 for dfc.p). */
static double ctl_g(const layered *p, double gamma) {
    return p->ctl == CTL_P ? 0.0 : gamma / p->tau_u;
}

/* The Schur matrices (1 + g alpha) I + (g + k_p) D_L K for gamma, factored; 1 if singular. */
static int factor(layered *p, double gamma) {
    const int B = p->B, L = p->L, m = p->m;
    const double g = ctl_g(p, gamma), kp = p->ctl == CTL_I ? 0.0 : p->k_p;
    double *w = p->w; /* pi_k rho_k */
    double pi = 1.0;
    for (int k = L; k >= 1; k--) {
        const double c = gamma / p->tau[k], rho = c / (1.0 + c);
        w[k] = pi * rho;
        pi *= rho;
    }
    for (int b = 0; b < B; b++) {
        double *S = p->S + (size_t)b * m * m;
        const double *dl = p->d[L] + (size_t)b * m;
        for (int r = 0; r < m; r++)
            for (int j = 0; j < m; j++) {
                double kk = w[L] * p->net.Q[L][r * m + j];
                for (int k = 1; k < L; k++)
                    kk += w[k] * p->P[k][(size_t)b * m * m + (size_t)r * m + j];
                S[r * m + j] = (g + kp) * dl[r] * kk + (r == j ? 1.0 + g * p->alpha : 0.0);
            }
        if (lu(S, m, p->piv + (size_t)b * m)) return 1;
    }
    p->gamma_f = gamma;
    return 0;
}

static int setup(void *data, double t, const double *y, const double *fy, int jok, int *jcur,
                 double gamma) {
    layered *p = data;
    (void)t, (void)fy;
    *jcur = 0;
    if (!jok || !p->have_jac) {
        jacobian(p, y);
        *jcur = 1;
    }
    return factor(p, gamma);
}

/* ---- solve -------------------------------------------------------------------------------- */

/* y_L = sum_k pi_k / a_k M_k r_k (B x m). */
static void output_part(layered *p, double gamma, const double *r) {
    const int B = p->B, L = p->L, m = p->m;
    const int *n = p->net.n;
    double pi = 1.0 / (1.0 + gamma / p->tau[L]);
    for (size_t e = 0; e < (size_t)B * m; e++)
        p->yl[e] = pi * r[p->off[L] + e];
    for (int k = L - 1; k >= 1; k--) {
        const double c = gamma / p->tau[k + 1];
        pi *= c; /* pi_k / a_k from pi_{k+1} / a_{k+1}: times c_{k+1} / a_k */
        pi /= 1.0 + gamma / p->tau[k];
        for (int b = 0; b < B; b++)
            cblas_dgemv(CblasRowMajor, CblasNoTrans, m, n[k], pi, p->M[k] + (size_t)b * m * n[k],
                        n[k], r + p->off[k] + (size_t)b * n[k], 1, 1.0, p->yl + (size_t)b * m, 1);
    }
}

static int solve(void *data, double gamma, const double *r, double *z) {
    layered *p = data;
    const int B = p->B, L = p->L, m = p->m;
    const int *n = p->net.n;
    if (gamma != p->gamma_f && factor(p, gamma)) return 1;
    const double g = ctl_g(p, gamma), kp = p->ctl == CTL_I ? 0.0 : p->k_p;
    output_part(p, gamma, r);
    /* mu from the Schur systems */
    for (int b = 0; b < B; b++) {
        double *mu = p->mu + (size_t)b * m;
        const double *dl = p->d[L] + (size_t)b * m, *yl = p->yl + (size_t)b * m;
        for (int j = 0; j < m; j++)
            mu[j] = (p->ctl == CTL_P ? 0.0 : r[p->off_w + (size_t)b * m + j]) -
                    (g + kp) * dl[j] * yl[j];
        lu_solve(p->S + (size_t)b * m * m, m, p->piv + (size_t)b * m, mu);
    }
    /* the forward sweep: z_i = (r_i + c_i (W_i D_{i-1} z_{i-1} + Q_i mu)) / a_i */
    for (int i = 1; i <= L; i++) {
        const size_t len = (size_t)B * n[i];
        const double c = gamma / p->tau[i], a = 1.0 + c;
        double beta = 0.0;
        if (i > 1) {
            const double *zp = z + p->off[i - 1], *dp = p->d[i - 1];
            for (size_t e = 0; e < (size_t)B * n[i - 1]; e++)
                p->tmp[e] = dp[e] * zp[e];
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n[i], n[i - 1], 1.0, p->tmp,
                        n[i - 1], p->net.W[i], n[i - 1], 0.0, p->acc, n[i]);
            beta = 1.0;
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n[i], m, 1.0, p->mu, m, p->net.Q[i],
                    m, beta, p->acc, n[i]);
        double *zi = z + p->off[i];
        const double *ri = r + p->off[i];
        for (size_t e = 0; e < len; e++)
            zi[e] = (ri[e] + c * p->acc[e]) / a;
    }
    if (p->ctl == CTL_P) return 0;
    /* z_w = r_w - g D_L z_L - g alpha mu */
    const double *zl = z + p->off[L];
    for (size_t e = 0; e < (size_t)B * m; e++)
        z[p->off_w + e] = r[p->off_w + e] - g * p->d[L][e] * zl[e] - g * p->alpha * p->mu[e];
    return 0;
}

static const ap_precond_type layered_type = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_precond_type),
    .name = K,
    .doc = "exact solve of CVODE's Newton systems on a DFC network (h1..hL, W<i>, Q<i> from a "
           "dfc.pi/i/p controller): a forward sweep over the layers and a Schur complement on "
           "the controller's u",
    .exact = 1,
    .create = create,
    .setup = setup,
    .solve = solve,
    .destroy = destroy,
};

int dfc_register_precond(ap_registry *r) {
    return ap_registry_add_precond(r, &layered_type, "dfc");
}
