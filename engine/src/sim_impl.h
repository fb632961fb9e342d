/* sim_impl.h — the compiled plan and its buffers, shared by the plan compiler, the evaluator,
 * the solvers, recorders and accumulators (internal to libapical). */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_SIM_IMPL_H
#define APICAL_SIM_IMPL_H

#include <stddef.h>

#include "apical/sim.h"
#include "model_impl.h"
#include "noise.h"

typedef struct sim_comp {
    int dynamic;
    double tau;
    double *value; /* dynamic: inside s->run.x; instantaneous: its own buffer or the drive */
    double *drive;
    size_t off; /* dynamic: offset of its block in the state vector */
    int n_feeds;
    int *feeds;
    int n_projs;
    int *projs;   /* projections ending here */
    double sigma; /* noise amplitude of the current run (euler-maruyama) */
} sim_comp;

typedef struct sim_pop {
    const apx_pop_obj *obj;
    int n;
    int n_comp;
    sim_comp *comp;
    double *rate;
    double **values; /* per compartment, for the neuron callback */
    const double **drives;
    double *taus;
    ap_neuron_ctx ctx;
} sim_pop;

typedef struct sim_block {
    const apx_block_obj *obj;
    int n_in, n_state, n_out;
    int in_size[32], state_size[32], out_size[32];
    const double **in; /* current input pointers (live or snapshot) */
    const double **in_live;
    const double **in_prev; /* snapshot pointers, NULL when not read from the snapshot */
    double **state;         /* inside s->run.x */
    size_t state_off[32];
    double **out;
    double **dstate; /* scratch for ordered steps and for pointing into ydot */
    double *dstate_buf;
    double *state_sigma; /* per state: noise of the current run */
    void *data;
    ap_block_ctx ctx;
} sim_block;

typedef struct sim_acc {
    double *dW, *db;    /* accumulated (then averaged) update */
    double *post, *pre; /* factors: batch x rows, batch x cols */
    double *scratch;
    size_t quad_off; /* offset in the CVODE quadrature vector */
    ap_rule_ctx ctx;
    /* the fixed-step runs' stacks (apx_sim_acc_stacks; kept from run to run, freed with the
     * sim): the factors of up to s->acc.cap points, stacked as (slots x batch) x rows and
     * (slots x batch) x cols, weights already applied to post; a point whose pre equals the
     * last slot's adds its post to that slot */
    double *stack_post, *stack_pre;
    int n_slots; /* slots in use, not yet added to dW and db */
} sim_acc;

typedef struct sim_proj {
    const apx_proj_obj *obj;
    int n_src, n_tgt;
    const double *src;      /* live source */
    const double *src_prev; /* snapshot source (ordered mode), or NULL */
    int tgt_pop, tgt_comp;
    sim_acc *acc;      /* NULL without a rule */
    const double *aux; /* the rule's auxiliary signal (live), or NULL */
    int n_aux;
    /* dense projections from an input: source . W^T + b, computed once per run (inputs are
     * held during a run), batch x n_tgt; NULL for other projections */
    double *cache;
} sim_proj;

typedef enum { NODE_COMP, NODE_RATE, NODE_BLOCK } node_kind;
typedef struct sim_node {
    node_kind kind;
    int obj;  /* pop or block */
    int comp; /* NODE_COMP */
} sim_node;

typedef struct sim_rec {
    char *name;
    const double *src;
    int width; /* batch x n */
    double *data;
    double *times;
    size_t n, cap; /* points recorded, points data and times hold */
    /* allocated sizes (values in data, in times, bytes of name): the buffers outlive a run
     * and are reused by the next, which grows them only when it needs more */
    size_t data_alloc, times_alloc, name_alloc;
} sim_rec;

typedef struct sim_snapshot {
    const double *src;
    double *copy;
    size_t count;
} sim_snapshot;

/* What the compiler built from the model (fixed for the simulation's life): sizes, the
 * populations', blocks' and projections' buffers, the order of instantaneous signals. */
typedef struct sim_plan {
    ap_model *m;
    int B;
    size_t n_state;
    int n_pops, n_blocks, n_projs;
    sim_pop *pops;
    sim_block *blocks;
    sim_proj *projs;
    int n_run, n_init;
    sim_node *run_order;  /* instantaneous signals, state -> signals */
    sim_node *init_order; /* the same with settled compartments treated as instantaneous */
} sim_plan;

/* The state, the inputs and what a run keeps: snapshots, recorders, the last evaluation. */
typedef struct sim_run_state {
    double *x;             /* the current state */
    double *ydot;          /* scratch derivative */
    double **input;        /* per model input */
    int input_cache_valid; /* the projections' caches match the inputs and weights */
    int ordered;           /* the run steps in declared order */
    /* last evaluation, for reuse by the quadrature */
    double eval_t;
    int eval_valid;
    int n_snap;
    sim_snapshot *snap;
    int n_rec;
    sim_rec *rec;
    int rec_slots;  /* recorders allocated in rec (kept across runs, >= n_rec) */
    void *cvode_ws; /* the CVODE workspace kept between runs (solver_cvode.c), or NULL */
} sim_run_state;

/* How the run accumulates the rules' updates (the sums themselves are per projection, in
 * sim_acc). */
typedef struct sim_accum {
    int on; /* the run accumulates */
    int n;  /* projections with a rule (the compiler counts them) */
    size_t quad_size;
    ap_acc_points points;
    double weight;    /* sum of the points' weights so far */
    double *sample_w; /* per-sample weights of the accumulators, or NULL (all 1) */
    int cap;          /* slots a stack holds in this run (0: none, every point its own dgemm) */
    int stack_points; /* slots the allocated stacks hold (0: none allocated) */
} sim_accum;

/* What went wrong where, and how much work was done. */
typedef struct sim_diag {
    /* first non-finite derivative found by the right-hand side; APX_BAD_COMPONENT when a
     * component failed recoverably and ap_last_error names it */
    long bad_index;
    double bad_value;
    long rhs_evals;
} sim_diag;

struct ap_sim {
    sim_plan plan;
    sim_run_state run;
    sim_accum acc;
    sim_diag diag;
};

/* ---- eval.c: the right-hand side, declared-order sweeps, recording, accumulation ---- */

/* Evaluates every instantaneous signal at (t, y) (y is copied into s->run.x unless it is s->run.x)
 * and, if ydot is non-NULL, the derivatives. Returns 0, >0 if a derivative is non-finite
 * (s->diag.bad_index set), <0 on a fatal callback failure. */
int apx_sim_eval(ap_sim *s, double t, const double *y, double *ydot);
/* Sets the start state and computes the signals (initial evaluation). */
int apx_sim_start(ap_sim *s, int keep_state);
/* One declared-order (Gauss-Seidel) sweep of size dt, with noise if rng is non-NULL. Each
 * component's new state is checked for finiteness as soon as it is written (while it is still
 * in cache); returns APX_SWEEP_NONFINITE with s->diag.bad_index and s->diag.bad_value set at the
 * first non-finite value (in sweep order), >0 if a component's callback failed, <0 on a fatal
 * failure. Every state variable belongs to a component of the sweep, so a sweep that returns
 * 0 leaves a finite state. */
enum { APX_SWEEP_NONFINITE = 2 };
enum { APX_BAD_COMPONENT = -2 };
int apx_sim_ordered_step(ap_sim *s, const int *order, int n_order, double t, double dt,
                         ap_noise *rng);
/* Records every recorded signal at time t (capacity is reserved by the run). */
int apx_sim_record(ap_sim *s, double t);
/* Accumulates every rule at the current signals with weight w (dW += w * post^T pre). With
 * quad != NULL, writes the integrands into quad instead (CVODE quadrature). */
int apx_sim_accumulate(ap_sim *s, double w, double *quad);
/* Like apx_sim_accumulate(s, w, NULL), but the factors go to the stacks, which are added to
 * the accumulators (one dgemm each) when full; without stacks, accumulates at once. A point
 * whose presynaptic factor equals (bitwise) that of the last slot, as when the source is a
 * model input, only adds its post to that slot: post1^T pre + post2^T pre = (post1 + post2)^T
 * pre. The sum equals the point-by-point one up to rounding. */
int apx_sim_acc_push(ap_sim *s, double w);
/* Adds what the stacks hold to dW and db and empties them; call before reading the sums. */
void apx_sim_acc_flush(ap_sim *s);

/* ---- run.c: a run's set-up around the solvers ---- */

/* Stack depth for batch B: K points with K * B about APX_ACC_STACK_ROWS (at least 1), so
 * that the accumulation is one dgemm with inner dimension K * B instead of K with B. */
#define APX_ACC_STACK_ROWS 1024
int apx_acc_stack_points(int B);
/* Readies the stacks of every accumulator for `points` points (run.c, when a fixed-step run
 * starts): allocated by the first run, kept for the next ones (a minibatch's run would
 * otherwise map ~18 MB of fresh pages, a page fault per 4 KB: 10-20 % of a run of 8 samples);
 * apx_sim_acc_stacks_idle empties them when the run ends, apx_sim_acc_stacks_free releases
 * them (with the sim). */
int apx_sim_acc_stacks(ap_sim *s, int points);
void apx_sim_acc_stacks_idle(ap_sim *s);
void apx_sim_acc_stacks_free(ap_sim *s);
/* Points every projection and block input back at live signals (no snapshots). */
void apx_sim_live_inputs(ap_sim *s);
/* Zeroes every accumulator. */
void apx_sim_clear_acc(ap_sim *s);

/* ---- run_buffers.c ---- */

/* Forgets the last run's recordings and snapshots (the recorders' buffers stay for the next
 * run; ap_sim_free releases them). */
void apx_sim_free_run_buffers(ap_sim *s);

/* ---- plan.c, sim_access.c ---- */

/* The buffer behind a resolved signal (batch x size values). */
const double *apx_sim_signal_ptr(const ap_sim *s, const apx_sigref *r);
/* Names state variable i: "h1.soma[sample 3, unit 17]". */
void apx_sim_describe(const ap_sim *s, size_t i, char *buf, size_t n);

/* ---- vec_check.c ---- */

/* Index of the first non-finite entry of v (n values), or -1. */
long apx_first_nonfinite(const double *v, size_t n);
/* Largest |v[i]| over n values. */
double apx_max_abs(const double *v, size_t n);

/* ---- the solvers (solver_fixed.c, solver_cvode.c) ---- */

int apx_solve_fixed(ap_sim *s, const ap_run_opts *o, ap_run_stats *st);
int apx_solve_cvode(ap_sim *s, const ap_run_opts *o, ap_run_stats *st);
/* Refuses a linear solver or preconditioner the solver would not use (solver_cvode.c). */
int apx_cvode_check_linear(const ap_run_opts *o, const char *sname);
/* Frees the CVODE workspace kept between runs (ap_sim_free). */
void apx_cvode_ws_free(ap_sim *s);

#endif
