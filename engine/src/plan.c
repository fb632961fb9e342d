/* plan.c — compiling a model into a simulation: state layout, buffers, signal resolution and
 * the order of instantaneous signals (with algebraic-loop detection); ap_sim_free releases
 * what the compiler allocated. The accessors of a compiled simulation are in sim_access.c, its
 * run buffers in run_buffers.c, the solvers' vector helpers in vec_check.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "sim_impl.h"

static const char *origin_of(const char *o) {
    static _Thread_local char buf[512];
    if (!o || !*o) return "";
    snprintf(buf, sizeof buf, "%s: ", o);
    return buf;
}

/* Index of compartment `name` in type t, or -1. */
static int comp_index(const ap_neuron_type *t, const char *name, size_t len) {
    for (int c = 0; c < t->n_compartments; c++)
        if (strlen(t->compartments[c].name) == len &&
            strncmp(t->compartments[c].name, name, len) == 0)
            return c;
    return -1;
}

static int param_index(const ap_neuron_type *t, const char *name) {
    for (int k = 0; k < t->n_params; k++)
        if (strcmp(t->params[k].name, name) == 0) return k;
    return -1;
}

/* Pointer to the buffer behind a resolved signal. */
const double *apx_sim_signal_ptr(const ap_sim *s, const apx_sigref *r) {
    switch (r->kind) {
    case APX_SIG_INPUT:
        return s->run.input[r->obj];
    case APX_SIG_COMPARTMENT:
        return s->plan.pops[r->obj].comp[r->port].value;
    case APX_SIG_RATE:
        return s->plan.pops[r->obj].rate;
    case APX_SIG_BLOCK_OUTPUT:
        return s->plan.blocks[r->obj].out[r->port];
    case APX_SIG_BLOCK_STATE:
        return s->plan.blocks[r->obj].state[r->port];
    }
    return NULL;
}

/* ---- the dependency graph of instantaneous signals --------------------------------------- */

typedef struct graph {
    int n;
    sim_node *nodes;
    int *id_comp; /* [pop][comp] -> node or -1 (flattened by comp_base) */
    int *comp_base;
    int *id_rate;  /* per pop */
    int *id_block; /* per block, or -1 */
    int *n_deps, **deps;
} graph;

static void graph_free(graph *g) {
    if (g->deps)
        for (int i = 0; i < g->n; i++)
            free(g->deps[i]);
    free(g->deps);
    free(g->n_deps);
    free(g->nodes);
    free(g->id_comp);
    free(g->comp_base);
    free(g->id_rate);
    free(g->id_block);
}

static int add_dep(graph *g, int node, int dep) {
    if (dep < 0) return AP_OK;
    int *d = realloc(g->deps[node], (size_t)(g->n_deps[node] + 1) * sizeof *d);
    if (!d) return ap_error(AP_ENOMEM, "out of memory");
    d[g->n_deps[node]++] = dep;
    g->deps[node] = d;
    return AP_OK;
}

/* Node that computes signal r, or -1 if it needs none (inputs, state). */
static int node_of(const graph *g, const apx_sigref *r) {
    switch (r->kind) {
    case APX_SIG_COMPARTMENT:
        return g->id_comp[g->comp_base[r->obj] + r->port];
    case APX_SIG_RATE:
        return g->id_rate[r->obj];
    case APX_SIG_BLOCK_OUTPUT:
        return g->id_block[r->obj];
    default:
        return -1;
    }
}

static void node_name(const ap_sim *s, const sim_node *nd, char *buf, size_t n) {
    if (nd->kind == NODE_BLOCK)
        snprintf(buf, n, "%s", s->plan.blocks[nd->obj].obj->name);
    else if (nd->kind == NODE_RATE)
        snprintf(buf, n, "%s.rate", s->plan.pops[nd->obj].obj->name);
    else
        snprintf(buf, n, "%s.%s", s->plan.pops[nd->obj].obj->name,
                 s->plan.pops[nd->obj].obj->type->compartments[nd->comp].name);
}

static const char *node_origin(const ap_sim *s, const sim_node *nd) {
    return nd->kind == NODE_BLOCK ? s->plan.blocks[nd->obj].obj->origin
                                  : s->plan.pops[nd->obj].obj->origin;
}

/* Allocates the graph's arrays for the simulation's populations and blocks. */
static int graph_alloc(const ap_sim *s, graph *g) {
    int total_comp = 0;
    memset(g, 0, sizeof *g);
    g->comp_base = calloc((size_t)s->plan.n_pops + 1, sizeof *g->comp_base);
    for (int p = 0; p < s->plan.n_pops && g->comp_base; p++) {
        g->comp_base[p] = total_comp;
        total_comp += s->plan.pops[p].n_comp;
    }
    int max_nodes = total_comp + s->plan.n_pops + s->plan.n_blocks;
    g->nodes = calloc((size_t)max_nodes + 1, sizeof *g->nodes);
    g->id_comp = malloc(((size_t)total_comp + 1) * sizeof *g->id_comp);
    g->id_rate = malloc(((size_t)s->plan.n_pops + 1) * sizeof *g->id_rate);
    g->id_block = malloc(((size_t)s->plan.n_blocks + 1) * sizeof *g->id_block);
    g->n_deps = calloc((size_t)max_nodes + 1, sizeof *g->n_deps);
    g->deps = calloc((size_t)max_nodes + 1, sizeof *g->deps);
    if (!g->comp_base || !g->nodes || !g->id_comp || !g->id_rate || !g->id_block || !g->n_deps ||
        !g->deps)
        return ap_error(AP_ENOMEM, "out of memory compiling");
    return AP_OK;
}

/* The nodes in declaration order, so that the sort is deterministic and intuitive: each
 * population's instantaneous compartments and its rate, each block (none when init). */
static void graph_nodes(const ap_sim *s, graph *g, int init) {
    const ap_model *m = s->plan.m;
    for (int k = 0; k < m->n_objects; k++) {
        const apx_obj_ref *o = &m->objects[k];
        if (o->kind == APX_OBJ_POPULATION) {
            int p = o->index;
            const sim_pop *sp = &s->plan.pops[p];
            for (int c = 0; c < sp->n_comp; c++) {
                int inst = !sp->comp[c].dynamic || (init && sp->obj->start == AP_START_SETTLED);
                if (inst) {
                    g->nodes[g->n] = (sim_node){NODE_COMP, p, c};
                    g->id_comp[g->comp_base[p] + c] = g->n++;
                } else {
                    g->id_comp[g->comp_base[p] + c] = -1;
                }
            }
            g->nodes[g->n] = (sim_node){NODE_RATE, p, 0};
            g->id_rate[p] = g->n++;
        } else if (o->kind == APX_OBJ_BLOCK) {
            if (init) {
                g->id_block[o->index] = -1;
            } else {
                g->nodes[g->n] = (sim_node){NODE_BLOCK, o->index, 0};
                g->id_block[o->index] = g->n++;
            }
        }
    }
}

/* The dependencies of population p's instantaneous compartments (the sources of their
 * projections, their feeds, with a dynamics callback every earlier compartment) and of its
 * rate. */
static int pop_deps(const ap_sim *s, graph *g, int p) {
    const sim_pop *sp = &s->plan.pops[p];
    const ap_neuron_type *t = sp->obj->type;
    int rc;
    for (int c = 0; c < sp->n_comp; c++) {
        int me = g->id_comp[g->comp_base[p] + c];
        if (me < 0) continue;
        for (int k = 0; k < sp->comp[c].n_projs; k++) {
            apx_sigref r;
            const apx_proj_obj *pr = s->plan.projs[sp->comp[c].projs[k]].obj;
            if ((rc = apx_model_resolve(s->plan.m, pr->source, &r))) return rc;
            if ((rc = add_dep(g, me, node_of(g, &r)))) return rc;
        }
        for (int f = 0; f < sp->comp[c].n_feeds; f++)
            if ((rc = add_dep(g, me, g->id_comp[g->comp_base[p] + sp->comp[c].feeds[f]])))
                return rc;
        if (t->dynamics) /* a callback may read any earlier compartment */
            for (int e = 0; e < c; e++)
                if ((rc = add_dep(g, me, g->id_comp[g->comp_base[p] + e]))) return rc;
    }
    return add_dep(g, g->id_rate[p], g->id_comp[g->comp_base[p] + t->rate_of]);
}

/* Builds the graph. init: settled compartments count as instantaneous and blocks as sources
 * (their initial outputs depend on their state only). */
static int build_graph(ap_sim *s, graph *g, int init) {
    int rc = graph_alloc(s, g);
    if (rc) return rc;
    graph_nodes(s, g, init);
    for (int p = 0; p < s->plan.n_pops; p++)
        if ((rc = pop_deps(s, g, p))) return rc;
    for (int b = 0; b < s->plan.n_blocks && !init; b++) {
        const apx_block_obj *bo = s->plan.blocks[b].obj;
        if (!bo->type->feedthrough) continue;
        for (int k = 0; k < bo->type->n_inputs; k++) {
            apx_sigref r;
            if ((rc = apx_model_resolve(s->plan.m, bo->inputs[k], &r))) return rc;
            if ((rc = add_dep(g, g->id_block[b], node_of(g, &r)))) return rc;
        }
    }
    return AP_OK;
}

/* Kahn's sort into order, declaration order among ready nodes; marks each placed node in
 * state (0 pending, 1 done). Returns how many nodes it placed (fewer than g->n on a cycle). */
static int kahn_order(const graph *g, int *state, sim_node *order) {
    int n = g->n, done = 0, progress = 1;
    while (done < n && progress) {
        progress = 0;
        for (int i = 0; i < n; i++) {
            if (state[i]) continue;
            int ready = 1;
            for (int k = 0; k < g->n_deps[i] && ready; k++)
                if (!state[g->deps[i][k]]) ready = 0;
            if (ready) {
                state[i] = 1;
                order[done++] = g->nodes[i];
                progress = 1;
                break; /* restart: keeps declaration order among ready nodes */
            }
        }
    }
    return done;
}

/* Writes the cycle among the pending nodes into msg, dependency first ("a -> b -> a"), and
 * points *org at the origin of its first object. Writes nothing when out of memory. */
static void describe_cycle(const ap_sim *s, const graph *g, const int *state, char *msg,
                           size_t size, const char **org) {
    int n = g->n;
    /* walk pending dependencies from a pending node until one repeats */
    int start = -1;
    for (int i = 0; i < n && start < 0; i++)
        if (!state[i]) start = i;
    int *seen = calloc((size_t)n + 1, sizeof *seen);
    int *path = malloc(((size_t)n + 1) * sizeof *path);
    int len = 0, cur = start;
    while (seen && path && !seen[cur]) {
        seen[cur] = len + 1;
        path[len++] = cur;
        int next = -1;
        for (int k = 0; k < g->n_deps[cur] && next < 0; k++)
            if (!state[g->deps[cur][k]]) next = g->deps[cur][k];
        cur = next;
    }
    size_t l = 0;
    int first = seen && path ? seen[cur] - 1 : 0;
    /* print in the direction of signal flow: dependency first */
    for (int k = len - 1; seen && path && k >= first && l < size; k--) {
        char nm[200];
        node_name(s, &g->nodes[path[k]], nm, sizeof nm);
        l += (size_t)snprintf(msg + l, size - l, "%s -> ", nm);
        if (!**org) *org = origin_of(node_origin(s, &g->nodes[path[k]]));
    }
    if (seen && path && l < size) {
        char nm[200];
        node_name(s, &g->nodes[path[len - 1]], nm, sizeof nm);
        snprintf(msg + l, size - l, "%s", nm);
    }
    free(seen);
    free(path);
}

/* Topological sort (Kahn, declaration order among ready nodes). On a cycle, lists it. */
static int sort_graph(ap_sim *s, graph *g, sim_node **out, int *n_out, int init) {
    int n = g->n;
    int *state = calloc((size_t)n + 1, sizeof *state); /* 0 pending, 1 done */
    sim_node *order = malloc(((size_t)n + 1) * sizeof *order);
    if (!state || !order) {
        free(state);
        free(order);
        return ap_error(AP_ENOMEM, "out of memory compiling");
    }
    if (kahn_order(g, state, order) < n) {
        char msg[900] = "";
        const char *org = "";
        describe_cycle(s, g, state, msg, sizeof msg, &org);
        free(state);
        free(order);
        return ap_error(AP_ELOOP,
                        init ? "%scannot settle the start state: instantaneous loop %s (start "
                               "one of these populations at zero, or give the loop a dynamic "
                               "compartment)"
                             : "%salgebraic loop of instantaneous links: %s (give one of them a "
                               "time constant > 0)",
                        org, msg);
    }
    free(state);
    *out = order;
    *n_out = n;
    return AP_OK;
}

static int compile_order(ap_sim *s) {
    graph g;
    int rc = build_graph(s, &g, 0);
    if (!rc) rc = sort_graph(s, &g, &s->plan.run_order, &s->plan.n_run, 0);
    graph_free(&g);
    if (rc) return rc;
    rc = build_graph(s, &g, 1);
    if (!rc) rc = sort_graph(s, &g, &s->plan.init_order, &s->plan.n_init, 1);
    graph_free(&g);
    return rc;
}

/* ---- compile ----------------------------------------------------------------------------- */

static void *xcalloc(size_t n, size_t size, int *fail) {
    void *p = calloc(n ? n : 1, size);
    if (!p) *fail = 1;
    return p;
}

/* The time constant of compartment c of population po (0 when its type names none), checked. */
static int comp_tau(const apx_pop_obj *po, int c, double *tau) {
    const ap_neuron_type *t = po->type;
    const ap_compartment_desc *cd = &t->compartments[c];
    *tau = 0.0;
    if (cd->tau_param) {
        int k = param_index(t, cd->tau_param);
        if (k < 0)
            return ap_error(AP_EINVAL,
                            "neuron type %s: compartment %s names unknown "
                            "parameter %s",
                            t->name, cd->name, cd->tau_param);
        *tau = po->params[k];
    }
    if (!(*tau >= 0.0) || !isfinite(*tau))
        return ap_error(AP_EINVAL,
                        "%spopulation \"%s\": %s = %g, a time constant must be >= 0 (0 "
                        "= instantaneous)",
                        origin_of(po->origin), po->name, cd->tau_param, *tau);
    return AP_OK;
}

/* The compartments compartment c of type t feeds from (its comma-separated `feeds`), appended to
 * sc->feeds. */
static int comp_feeds(const ap_neuron_type *t, int c, sim_comp *sc) {
    const ap_compartment_desc *cd = &t->compartments[c];
    if (!cd->feeds) return AP_OK;
    const char *q = cd->feeds;
    while (*q) {
        const char *e = strchr(q, ',');
        size_t len = e ? (size_t)(e - q) : strlen(q);
        while (len && *q == ' ')
            q++, len--;
        int f = comp_index(t, q, len);
        if (f < 0 || f == c)
            return ap_error(AP_EINVAL,
                            "neuron type %s: compartment %s feeds from "
                            "unknown compartment \"%.*s\"",
                            t->name, cd->name, (int)len, q);
        int *nf = realloc(sc->feeds, (size_t)(sc->n_feeds + 1) * sizeof *nf);
        if (!nf) return ap_error(AP_ENOMEM, "out of memory");
        sc->feeds = nf;
        sc->feeds[sc->n_feeds++] = f;
        q = e ? e + 1 : q + len;
    }
    return AP_OK;
}

/* Compartment c of population sp: its time constant, drive, value (in the state vector from
 * *state_off when dynamic) and feeds. */
static int setup_comp(ap_sim *s, sim_pop *sp, int c, size_t *state_off) {
    const apx_pop_obj *po = sp->obj;
    const ap_neuron_type *t = po->type;
    const size_t B = (size_t)s->plan.B;
    sim_comp *sc = &sp->comp[c];
    int fail = 0, rc;
    double tau;
    if ((rc = comp_tau(po, c, &tau))) return rc;
    sc->tau = tau;
    sc->dynamic = tau > 0.0;
    sp->taus[c] = tau;
    sc->drive = xcalloc(B * (size_t)sp->n, sizeof(double), &fail);
    if (sc->dynamic) {
        sc->off = *state_off;
        *state_off += B * (size_t)sp->n;
    } else if (t->dynamics) {
        sc->value = xcalloc(B * (size_t)sp->n, sizeof(double), &fail);
    } else {
        sc->value = sc->drive; /* x = drive: no copy */
    }
    if ((rc = comp_feeds(t, c, sc))) return rc;
    if (fail) return ap_error(AP_ENOMEM, "out of memory compiling population %s", po->name);
    return AP_OK;
}

static int setup_pops(ap_sim *s, size_t *state_off) {
    const ap_model *m = s->plan.m;
    const size_t B = (size_t)s->plan.B;
    int fail = 0, rc;
    for (int p = 0; p < s->plan.n_pops; p++) {
        sim_pop *sp = &s->plan.pops[p];
        const apx_pop_obj *po = &m->pops[p];
        sp->obj = po;
        sp->n = po->size;
        sp->n_comp = po->type->n_compartments;
        sp->comp = xcalloc((size_t)sp->n_comp, sizeof *sp->comp, &fail);
        sp->values = xcalloc((size_t)sp->n_comp, sizeof *sp->values, &fail);
        sp->drives = xcalloc((size_t)sp->n_comp, sizeof *sp->drives, &fail);
        sp->taus = xcalloc((size_t)sp->n_comp, sizeof *sp->taus, &fail);
        sp->rate = xcalloc(B * (size_t)sp->n, sizeof *sp->rate, &fail);
        if (fail) return ap_error(AP_ENOMEM, "out of memory compiling population %s", po->name);
        for (int c = 0; c < sp->n_comp; c++)
            if ((rc = setup_comp(s, sp, c, state_off))) return rc;
    }
    return AP_OK;
}

static int setup_blocks(ap_sim *s, size_t *state_off) {
    const ap_model *m = s->plan.m;
    const size_t B = (size_t)s->plan.B;
    int fail = 0, rc;
    for (int b = 0; b < s->plan.n_blocks; b++) {
        sim_block *sb = &s->plan.blocks[b];
        const apx_block_obj *bo = &m->blocks[b];
        const ap_block_type *t = bo->type;
        sb->obj = bo;
        sb->n_in = t->n_inputs;
        sb->n_state = t->n_states;
        sb->n_out = t->n_outputs;
        if ((rc = apx_block_sizes(m, b, sb->in_size, sb->state_size, sb->out_size)))
            return ap_error_prefix(rc, "%s", origin_of(bo->origin));
        sb->in = xcalloc((size_t)sb->n_in, sizeof *sb->in, &fail);
        sb->in_live = xcalloc((size_t)sb->n_in, sizeof *sb->in_live, &fail);
        sb->in_prev = xcalloc((size_t)sb->n_in, sizeof *sb->in_prev, &fail);
        sb->state = xcalloc((size_t)sb->n_state, sizeof *sb->state, &fail);
        sb->dstate = xcalloc((size_t)sb->n_state, sizeof *sb->dstate, &fail);
        sb->state_sigma = xcalloc((size_t)sb->n_state, sizeof *sb->state_sigma, &fail);
        sb->out = xcalloc((size_t)sb->n_out, sizeof *sb->out, &fail);
        size_t nst = 0;
        for (int k = 0; k < sb->n_state; k++) {
            sb->state_off[k] = *state_off + nst;
            nst += B * (size_t)sb->state_size[k];
        }
        *state_off += nst;
        sb->dstate_buf = xcalloc(nst, sizeof(double), &fail);
        for (int k = 0; k < sb->n_out && !fail; k++)
            sb->out[k] = xcalloc(B * (size_t)sb->out_size[k], sizeof(double), &fail);
        if (fail) return ap_error(AP_ENOMEM, "out of memory compiling block %s", bo->name);
        if (t->init_data && (rc = t->init_data(bo->params, s->plan.B, sb->in_size, &sb->data)))
            return ap_error_prefix(rc < 0 ? rc : AP_EPLUGIN,
                                   "%sblock \"%s\" (%s): ", origin_of(bo->origin), bo->name,
                                   t->name);
    }
    return AP_OK;
}

static int setup_projs(ap_sim *s) {
    const ap_model *m = s->plan.m;
    int fail = 0;
    for (int i = 0; i < s->plan.n_projs; i++) {
        sim_proj *sp = &s->plan.projs[i];
        const apx_proj_obj *po = &m->projs[i];
        apx_sigref src, tgt;
        int rc = apx_model_resolve(m, po->source, &src);
        if (!rc) rc = apx_model_resolve(m, po->target, &tgt);
        if (rc) return ap_error_prefix(rc, "%sprojection %s: ", origin_of(po->origin), po->name);
        sp->obj = po;
        sp->n_src = src.size;
        sp->n_tgt = tgt.size;
        if (po->kind == AP_DENSE && (po->cols != src.size || po->rows != tgt.size))
            return ap_error(
                AP_ESIZE, "%sprojection %s: weights are %d x %d, the signals need %d x %d",
                origin_of(po->origin), po->name, po->rows, po->cols, tgt.size, src.size);
        sp->src = apx_sim_signal_ptr(s, &src);
        if (src.kind == APX_SIG_INPUT && po->kind == AP_DENSE &&
            !(sp->cache = xcalloc((size_t)s->plan.B * (size_t)tgt.size, sizeof(double), &fail)))
            return ap_error(AP_ENOMEM, "out of memory for projection %s", po->name);
        sp->tgt_pop = tgt.obj;
        sp->tgt_comp = tgt.port;
        sim_comp *sc = &s->plan.pops[tgt.obj].comp[tgt.port];
        int *np = realloc(sc->projs, (size_t)(sc->n_projs + 1) * sizeof *np);
        if (!np) return ap_error(AP_ENOMEM, "out of memory");
        sc->projs = np;
        sc->projs[sc->n_projs++] = i;
        if (po->rule) {
            const size_t B = (size_t)s->plan.B;
            sim_acc *a = sp->acc = xcalloc(1, sizeof *a, &fail);
            if (fail) return ap_error(AP_ENOMEM, "out of memory");
            a->dW = xcalloc((size_t)po->rows * (size_t)po->cols, sizeof(double), &fail);
            a->db = xcalloc((size_t)po->rows, sizeof(double), &fail);
            a->post = xcalloc(B * (size_t)po->rows, sizeof(double), &fail);
            a->pre = xcalloc(B * (size_t)po->cols, sizeof(double), &fail);
            a->scratch = xcalloc(B * (size_t)po->rows, sizeof(double), &fail);
            if (fail)
                return ap_error(AP_ENOMEM, "out of memory for the accumulator of %s", po->name);
            if (po->aux) {
                /* the rule's auxiliary signal: any signal of the model, resolved now that
                 * every object exists (it may be declared after the projection) */
                apx_sigref ar;
                if ((rc = apx_model_resolve(m, po->aux, &ar)))
                    return ap_error_prefix(
                        rc, "%sprojection %s: rule %s: auxiliary signal \"%s\": ",
                        origin_of(po->aux_origin), po->name, po->rule->name, po->aux);
                sp->n_aux = ar.size;
            }
            a->quad_off = s->acc.quad_size;
            s->acc.quad_size +=
                (size_t)po->rows * (size_t)po->cols + (po->b ? (size_t)po->rows : 0);
            s->acc.n++;
        }
    }
    return AP_OK;
}

/* Each population's compartment values (dynamic ones in s->run.x) and its neuron context. */
static void wire_pops(ap_sim *s) {
    for (int p = 0; p < s->plan.n_pops; p++) {
        sim_pop *sp = &s->plan.pops[p];
        for (int c = 0; c < sp->n_comp; c++) {
            sim_comp *sc = &sp->comp[c];
            if (sc->dynamic) sc->value = s->run.x + sc->off;
            sp->values[c] = sc->value;
            sp->drives[c] = sc->drive;
        }
        sp->ctx = (ap_neuron_ctx){.batch = s->plan.B,
                                  .size = sp->n,
                                  .params = sp->obj->params,
                                  .tau = sp->taus,
                                  .value = sp->values,
                                  .drive = sp->drives};
    }
}

/* Each block's states (in s->run.x) and their derivatives (in its dstate_buf). */
static void wire_block_states(ap_sim *s) {
    for (int b = 0; b < s->plan.n_blocks; b++) {
        sim_block *sb = &s->plan.blocks[b];
        size_t o = 0;
        for (int k = 0; k < sb->n_state; k++) {
            sb->state[k] = s->run.x + sb->state_off[k];
            sb->dstate[k] = sb->dstate_buf + o;
            o += (size_t)s->plan.B * (size_t)sb->state_size[k];
        }
    }
}

/* Projection sources and rules' auxiliary signals: they may point at compartments now placed in
 * s->run.x. */
static int wire_proj_sources(ap_sim *s) {
    const ap_model *m = s->plan.m;
    for (int i = 0; i < s->plan.n_projs; i++) {
        apx_sigref src;
        apx_model_resolve(m, s->plan.projs[i].obj->source, &src);
        s->plan.projs[i].src = apx_sim_signal_ptr(s, &src);
        if (s->plan.projs[i].acc && s->plan.projs[i].obj->aux) {
            apx_sigref ar;
            int rc = apx_model_resolve(m, s->plan.projs[i].obj->aux, &ar);
            if (rc) return rc;
            s->plan.projs[i].aux = apx_sim_signal_ptr(s, &ar);
        }
    }
    return AP_OK;
}

/* Each block's inputs and its block context. */
static int wire_blocks(ap_sim *s) {
    const ap_model *m = s->plan.m;
    for (int b = 0; b < s->plan.n_blocks; b++) {
        sim_block *sb = &s->plan.blocks[b];
        for (int k = 0; k < sb->n_in; k++) {
            apx_sigref r;
            int rc = apx_model_resolve(m, sb->obj->inputs[k], &r);
            if (rc) return rc;
            sb->in_live[k] = sb->in[k] = apx_sim_signal_ptr(s, &r);
        }
        sb->ctx = (ap_block_ctx){.batch = s->plan.B,
                                 .params = sb->obj->params,
                                 .data = sb->data,
                                 .in = sb->in,
                                 .in_size = sb->in_size,
                                 .state = (const double *const *)sb->state,
                                 .state_size = sb->state_size,
                                 .out = sb->out,
                                 .out_size = sb->out_size};
    }
    return AP_OK;
}

/* The context of each projection's plasticity rule. */
static void wire_rules(ap_sim *s) {
    for (int i = 0; i < s->plan.n_projs; i++) {
        sim_proj *pr = &s->plan.projs[i];
        if (!pr->acc) continue;
        sim_pop *tp = &s->plan.pops[pr->tgt_pop];
        pr->acc->ctx = (ap_rule_ctx){.batch = s->plan.B,
                                     .params = pr->obj->rule_params,
                                     .n_pre = pr->n_src,
                                     .n_post = pr->n_tgt,
                                     .pre = pr->src,
                                     .n_compartments = tp->n_comp,
                                     .value = (const double *const *)tp->values,
                                     .drive = tp->drives,
                                     .rate = tp->rate,
                                     .activation = tp->obj->act,
                                     .target_compartment = pr->tgt_comp,
                                     .scratch = pr->acc->scratch,
                                     .aux = pr->aux,
                                     .n_aux = pr->aux ? pr->n_aux : 0};
    }
}

/* Block inputs, the rule contexts and the neuron contexts, once every buffer exists. */
static int wire(ap_sim *s) {
    int rc;
    wire_pops(s);
    wire_block_states(s);
    if ((rc = wire_proj_sources(s))) return rc;
    if ((rc = wire_blocks(s))) return rc;
    wire_rules(s);
    return AP_OK;
}

int ap_model_compile(ap_model *m, ap_sim **out) {
    *out = NULL;
    ap_sim *s = calloc(1, sizeof *s);
    if (!s) return ap_error(AP_ENOMEM, "out of memory compiling");
    s->plan.m = m;
    s->plan.B = m->batch;
    s->plan.n_pops = m->n_pops;
    s->plan.n_blocks = m->n_blocks;
    s->plan.n_projs = m->n_projs;
    s->diag.bad_index = -1;
    int fail = 0, rc;
    s->plan.pops = xcalloc((size_t)s->plan.n_pops, sizeof *s->plan.pops, &fail);
    s->plan.blocks = xcalloc((size_t)s->plan.n_blocks, sizeof *s->plan.blocks, &fail);
    s->plan.projs = xcalloc((size_t)s->plan.n_projs, sizeof *s->plan.projs, &fail);
    s->run.input = xcalloc((size_t)m->n_inputs, sizeof *s->run.input, &fail);
    for (int i = 0; i < m->n_inputs && !fail; i++)
        s->run.input[i] =
            xcalloc((size_t)s->plan.B * (size_t)m->inputs[i].size, sizeof(double), &fail);
    if (fail) {
        rc = ap_error(AP_ENOMEM, "out of memory compiling");
        goto fail;
    }
    size_t off = 0;
    if ((rc = setup_pops(s, &off))) goto fail;
    if ((rc = setup_blocks(s, &off))) goto fail;
    s->plan.n_state = off;
    s->run.x = xcalloc(off, sizeof(double), &fail);
    s->run.ydot = xcalloc(off, sizeof(double), &fail);
    if (fail) {
        rc = ap_error(AP_ENOMEM, "out of memory for a state of %zu values", off);
        goto fail;
    }
    if ((rc = setup_projs(s))) goto fail;
    if ((rc = wire(s))) goto fail;
    if ((rc = compile_order(s))) goto fail;
    if ((rc = ap_model_check_weights(m))) goto fail;
    ap_registry_close(m->reg);
    *out = s;
    return AP_OK;
fail:
    ap_sim_free(&s);
    return rc;
}

static void pop_free(sim_pop *sp) {
    for (int c = 0; c < sp->n_comp && sp->comp; c++) {
        sim_comp *sc = &sp->comp[c];
        if (!sc->dynamic && sc->value != sc->drive) free(sc->value);
        free(sc->drive);
        free(sc->feeds);
        free(sc->projs);
    }
    free(sp->comp);
    free(sp->values);
    free(sp->drives);
    free(sp->taus);
    free(sp->rate);
}

static void block_free(sim_block *sb) {
    if (sb->data && sb->obj->type->destroy_data) sb->obj->type->destroy_data(sb->data);
    for (int k = 0; k < sb->n_out && sb->out; k++)
        free(sb->out[k]);
    free(sb->out);
    free(sb->in);
    free(sb->in_live);
    free(sb->in_prev);
    free(sb->state);
    free(sb->dstate);
    free(sb->dstate_buf);
    free(sb->state_sigma);
}

static void proj_free(sim_proj *pr) {
    free(pr->cache);
    sim_acc *a = pr->acc;
    if (!a) return;
    free(a->dW);
    free(a->db);
    free(a->post);
    free(a->pre);
    free(a->scratch);
    free(a);
}

void ap_sim_free(ap_sim **ps) {
    if (!ps || !*ps) return;
    ap_sim *s = *ps;
    apx_cvode_ws_free(s);
    apx_sim_acc_stacks_free(s);
    apx_sim_free_run_buffers(s);
    for (int k = 0; k < s->run.rec_slots; k++) {
        free(s->run.rec[k].name);
        free(s->run.rec[k].data);
        free(s->run.rec[k].times);
    }
    free(s->run.rec);
    for (int p = 0; p < s->plan.n_pops && s->plan.pops; p++)
        pop_free(&s->plan.pops[p]);
    for (int b = 0; b < s->plan.n_blocks && s->plan.blocks; b++)
        block_free(&s->plan.blocks[b]);
    for (int i = 0; i < s->plan.n_projs && s->plan.projs; i++)
        proj_free(&s->plan.projs[i]);
    if (s->run.input)
        for (int i = 0; i < s->plan.m->n_inputs; i++)
            free(s->run.input[i]);
    free(s->run.input);
    free(s->plan.pops);
    free(s->plan.blocks);
    free(s->plan.projs);
    free(s->plan.run_order);
    free(s->plan.init_order);
    free(s->run.x);
    free(s->run.ydot);
    free(s->acc.sample_w);
    free(s);
    *ps = NULL;
}
