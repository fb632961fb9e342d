/* model.c — building the model graph: inputs, populations, blocks, projections, rules. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "model_impl.h"

static char *dupstr(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Grows an array of `size`-byte elements so that index n fits. */
static int grow(void **arr, int *cap, int n, size_t size) {
    if (n < *cap) return AP_OK;
    int nc = *cap ? 2 * *cap : 8;
    while (nc <= n)
        nc *= 2;
    void *p = realloc(*arr, (size_t)nc * size);
    if (!p) return ap_error(AP_ENOMEM, "out of memory growing the model");
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(nc - *cap) * size);
    *arr = p;
    *cap = nc;
    return AP_OK;
}

/* Prefix of error messages: "origin: " or "". */
static const char *where(const char *origin) {
    static _Thread_local char buf[512];
    if (!origin || !*origin) return "";
    snprintf(buf, sizeof buf, "%s: ", origin);
    return buf;
}

int ap_model_new(ap_model **out, ap_registry *r, int batch) {
    *out = NULL;
    if (!r) return ap_error(AP_EINVAL, "ap_model_new: registry is NULL");
    if (batch < 1) return ap_error(AP_EINVAL, "model: batch = %d, must be >= 1", batch);
    ap_model *m = calloc(1, sizeof *m);
    if (!m) return ap_error(AP_ENOMEM, "out of memory creating a model");
    m->reg = r;
    m->batch = batch;
    *out = m;
    return AP_OK;
}

/* Frees what population p holds and zeroes it. */
static void clear_pop(apx_pop_obj *p) {
    free(p->params);
    free(p->start_value);
    free(p->name);
    free(p->origin);
    memset(p, 0, sizeof *p);
}

/* Frees what projection p holds (its rule's parameters and auxiliary signal included) and zeroes
 * it. */
static void proj_obj_free(apx_proj_obj *p) {
    free(p->W);
    free(p->b);
    free(p->name);
    free(p->origin);
    free(p->source);
    free(p->target);
    free(p->rule_params);
    free(p->aux);
    free(p->aux_origin);
    memset(p, 0, sizeof *p);
}

/* Frees what block b (of type t) holds and zeroes it. */
static void clear_block(apx_block_obj *b, const ap_block_type *t) {
    if (b->inputs)
        for (int j = 0; j < t->n_inputs; j++)
            free(b->inputs[j]);
    free(b->inputs);
    free(b->params);
    free(b->name);
    free(b->origin);
    memset(b, 0, sizeof *b);
}

void ap_model_free(ap_model **pm) {
    if (!pm || !*pm) return;
    ap_model *m = *pm;
    for (int i = 0; i < m->n_inputs; i++) {
        free(m->inputs[i].name);
        free(m->inputs[i].origin);
    }
    for (int i = 0; i < m->n_pops; i++)
        clear_pop(&m->pops[i]);
    for (int i = 0; i < m->n_blocks; i++)
        clear_block(&m->blocks[i], m->blocks[i].type);
    for (int i = 0; i < m->n_projs; i++)
        proj_obj_free(&m->projs[i]);
    free(m->inputs);
    free(m->pops);
    free(m->blocks);
    free(m->projs);
    free(m->objects);
    free(m->origin);
    free(m);
    *pm = NULL;
}

int ap_model_batch(const ap_model *m) {
    return m->batch;
}

ap_registry *ap_model_registry(const ap_model *m) {
    return m->reg;
}

int ap_model_set_origin(ap_model *m, const char *w) {
    char *d = NULL;
    if (w && !(d = dupstr(w))) return ap_error(AP_ENOMEM, "out of memory");
    free(m->origin);
    m->origin = d;
    return AP_OK;
}

static int valid_name(const char *s) {
    if (!s || !*s) return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return 0;
    return !(s[0] >= '0' && s[0] <= '9');
}

static int find_object(const ap_model *m, const char *name, apx_obj_ref *ref) {
    for (int k = 0; k < m->n_objects; k++) {
        const apx_obj_ref *o = &m->objects[k];
        const char *n = o->kind == APX_OBJ_INPUT        ? m->inputs[o->index].name
                        : o->kind == APX_OBJ_POPULATION ? m->pops[o->index].name
                                                        : m->blocks[o->index].name;
        if (strcmp(n, name) == 0) {
            if (ref) *ref = *o;
            return 1;
        }
    }
    return 0;
}

static int check_new_name(const ap_model *m, const char *what, const char *name) {
    if (!valid_name(name))
        return ap_error(AP_EINVAL,
                        "%s%s name \"%s\" is not valid (letters, digits and '_', not starting "
                        "with a digit)",
                        where(m->origin), what, name ? name : "(null)");
    if (find_object(m, name, NULL))
        return ap_error(AP_EDUP, "%s%s \"%s\": the name is already taken", where(m->origin), what,
                        name);
    return AP_OK;
}

static int add_object(ap_model *m, apx_obj_kind kind, int index) {
    int rc = grow((void **)&m->objects, &m->cap_objects, m->n_objects, sizeof *m->objects);
    if (rc) return rc;
    m->objects[m->n_objects++] = (apx_obj_ref){kind, index};
    return AP_OK;
}

int ap_model_add_input(ap_model *m, const char *name, int size) {
    int rc = check_new_name(m, "input", name);
    if (rc) return rc;
    if (size < 1)
        return ap_error(AP_EINVAL, "%sinput \"%s\": size = %d, must be >= 1", where(m->origin),
                        name, size);
    if ((rc = grow((void **)&m->inputs, &m->cap_inputs, m->n_inputs, sizeof *m->inputs))) return rc;
    apx_input_obj *in = &m->inputs[m->n_inputs];
    in->name = dupstr(name);
    in->origin = dupstr(m->origin);
    in->size = size;
    if (!in->name) return ap_error(AP_ENOMEM, "out of memory");
    m->n_inputs++;
    return add_object(m, APX_OBJ_INPUT, m->n_inputs - 1);
}

/* A parameter bound for messages: DBL_MAX reads as inf. */
/* What a parameter must be, as a user reads it: "finite and > 0" for v = inf under [DBL_MIN,
 * DBL_MAX], ">= 0", "<= 1", "in [0, 1]" (never a bound of +-DBL_MAX shown as "inf"). */
static void fmt_allowed(char *buf, size_t n, double v, double lo, double hi) {
    const char *fin = isfinite(v) ? "" : "finite";
    int has_lo = lo > -DBL_MAX, has_hi = hi < DBL_MAX;
    if (has_lo && has_hi)
        snprintf(buf, n, "%s%sin [%g, %g]", fin, *fin ? " and " : "", lo, hi);
    else if (has_lo && lo == DBL_MIN)
        snprintf(buf, n, "%s%s> 0", fin, *fin ? " and " : "");
    else if (has_lo)
        snprintf(buf, n, "%s%s>= %g", fin, *fin ? " and " : "", lo);
    else if (has_hi)
        snprintf(buf, n, "%s%s<= %g", fin, *fin ? " and " : "", hi);
    else
        snprintf(buf, n, "finite");
}

/* Fills vals (n_desc) with defaults, then the given params; validates names and bounds. */
static int set_params(const ap_model *m, const char *what, const char *objname,
                      const ap_param_desc *desc, int n_desc, const ap_param *given, int n_given,
                      double *vals) {
    for (int i = 0; i < n_desc; i++)
        vals[i] = desc[i].def;
    for (int k = 0; k < n_given; k++) {
        int found = -1;
        for (int i = 0; i < n_desc; i++)
            if (strcmp(desc[i].name, given[k].name) == 0) found = i;
        if (found < 0) {
            char known[512] = "";
            size_t len = 0;
            for (int i = 0; i < n_desc && len < sizeof known; i++)
                len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "",
                                        desc[i].name);
            return ap_error(AP_EINVAL, "%s%s \"%s\": unknown parameter \"%s\" (known: %s)",
                            where(m->origin), what, objname, given[k].name,
                            n_desc ? known : "none");
        }
        double v = given[k].value;
        if (!isfinite(v) || v < desc[found].min || v > desc[found].max) {
            char allowed[96];
            fmt_allowed(allowed, sizeof allowed, v, desc[found].min, desc[found].max);
            return ap_error(AP_EINVAL, "%s%s \"%s\": %s = %g must be %s", where(m->origin), what,
                            objname, given[k].name, v, allowed);
        }
        vals[found] = v;
    }
    return AP_OK;
}

int ap_model_add_population(ap_model *m, const char *name, int size, const char *neuron,
                            const char *activation, const ap_param *params, int n_params) {
    int rc = check_new_name(m, "population", name);
    if (rc) return rc;
    if (size < 1)
        return ap_error(AP_EINVAL, "%spopulation \"%s\": size = %d, must be >= 1", where(m->origin),
                        name, size);
    const ap_neuron_type *t = ap_registry_neuron(m->reg, neuron ? neuron : "rate");
    if (!t) return ap_error_prefix(AP_ENOTFOUND, "%spopulation \"%s\": ", where(m->origin), name);
    const ap_activation *a = ap_registry_activation(m->reg, activation ? activation : "linear");
    if (!a) return ap_error_prefix(AP_ENOTFOUND, "%spopulation \"%s\": ", where(m->origin), name);
    if ((rc = grow((void **)&m->pops, &m->cap_pops, m->n_pops, sizeof *m->pops))) return rc;
    apx_pop_obj *p = &m->pops[m->n_pops];
    memset(p, 0, sizeof *p);
    p->params = calloc((size_t)t->n_params + 1, sizeof *p->params);
    p->start_value = calloc((size_t)t->n_compartments, sizeof *p->start_value);
    p->name = dupstr(name);
    p->origin = dupstr(m->origin);
    if (!p->params || !p->start_value || !p->name) {
        clear_pop(p);
        return ap_error(AP_ENOMEM, "out of memory");
    }
    p->size = size;
    p->type = t;
    p->act = a;
    if ((rc = set_params(m, "population", name, t->params, t->n_params, params, n_params,
                         p->params))) {
        clear_pop(p);
        return rc;
    }
    m->n_pops++;
    return add_object(m, APX_OBJ_POPULATION, m->n_pops - 1);
}

static int find_pop(const ap_model *m, const char *name) {
    for (int i = 0; i < m->n_pops; i++)
        if (strcmp(m->pops[i].name, name) == 0) return i;
    return -1;
}

int ap_model_set_start(ap_model *m, const char *population, ap_start_mode mode) {
    int i = find_pop(m, population);
    if (i < 0)
        return ap_error(AP_ENOTFOUND, "%sno population \"%s\"", where(m->origin), population);
    if (mode != AP_START_ZERO && mode != AP_START_SETTLED)
        return ap_error(AP_EINVAL, "%spopulation \"%s\": unknown start mode %d", where(m->origin),
                        population, (int)mode);
    apx_pop_obj *p = &m->pops[i];
    if (mode == AP_START_SETTLED)
        for (int c = 0; c < p->type->n_compartments; c++)
            if (p->start_value[c] != 0.0)
                return ap_error(AP_EINVAL,
                                "%spopulation \"%s\": it has a start value for %s, which a "
                                "settled start would ignore",
                                where(m->origin), population, p->type->compartments[c].name);
    p->start = mode;
    return AP_OK;
}

/* Time constant of compartment c of population p (0: instantaneous). */
static double comp_tau(const apx_pop_obj *p, int c) {
    const char *tp = p->type->compartments[c].tau_param;
    if (!tp) return 0.0;
    for (int k = 0; k < p->type->n_params; k++)
        if (strcmp(p->type->params[k].name, tp) == 0) return p->params[k];
    return 0.0;
}

int ap_model_set_start_value(ap_model *m, const char *compartment, double value) {
    apx_sigref ref;
    int rc = apx_model_resolve(m, compartment, &ref);
    if (rc) return ap_error_prefix(rc, "%s", where(m->origin));
    if (ref.kind != APX_SIG_COMPARTMENT)
        return ap_error(AP_EINVAL, "%s\"%s\" is not a compartment", where(m->origin), compartment);
    apx_pop_obj *p = &m->pops[ref.obj];
    if (!isfinite(value))
        return ap_error(AP_EINVAL, "%sstart value of %s = %g is not finite", where(m->origin),
                        compartment, value);
    if (!(comp_tau(p, ref.port) > 0.0))
        return ap_error(AP_EINVAL,
                        "%sstart value of %s: the compartment is instantaneous (time constant "
                        "0), its value follows its drive",
                        where(m->origin), compartment);
    if (p->start == AP_START_SETTLED)
        return ap_error(AP_EINVAL,
                        "%sstart value of %s: population \"%s\" starts settled, which sets "
                        "every dynamic compartment to its drive",
                        where(m->origin), compartment, p->name);
    p->start_value[ref.port] = value;
    return AP_OK;
}

/* Connects block b (name, type t) input ports[k] to signals[k] for each k < n_inputs and checks
 * that every input is connected once. */
static int connect_block_inputs(ap_model *m, const char *name, const ap_block_type *t,
                                apx_block_obj *b, const char *const *ports,
                                const char *const *signals, int n_inputs) {
    int rc;
    for (int k = 0; k < n_inputs; k++) {
        int port = -1;
        for (int j = 0; j < t->n_inputs; j++)
            if (strcmp(t->inputs[j], ports[k]) == 0) port = j;
        if (port < 0)
            return ap_error(AP_EINVAL, "%sblock \"%s\" (%s) has no input \"%s\"", where(m->origin),
                            name, t->name, ports[k]);
        if (b->inputs[port])
            return ap_error(AP_EINVAL, "%sblock \"%s\": input \"%s\" connected twice",
                            where(m->origin), name, ports[k]);
        apx_sigref ref;
        if ((rc = apx_model_resolve(m, signals[k], &ref)))
            return ap_error_prefix(rc, "%sblock \"%s\", input \"%s\": ", where(m->origin), name,
                                   ports[k]);
        if (!(b->inputs[port] = dupstr(signals[k]))) return ap_error(AP_ENOMEM, "out of memory");
    }
    for (int j = 0; j < t->n_inputs; j++)
        if (!b->inputs[j])
            return ap_error(AP_EINVAL, "%sblock \"%s\" (%s): input \"%s\" is not connected",
                            where(m->origin), name, t->name, t->inputs[j]);
    return AP_OK;
}

int ap_model_add_block(ap_model *m, const char *name, const char *type, const ap_param *params,
                       int n_params, const char *const *ports, const char *const *signals,
                       int n_inputs) {
    int rc = check_new_name(m, "block", name);
    if (rc) return rc;
    const ap_block_type *t = ap_registry_block(m->reg, type);
    if (!t) return ap_error_prefix(AP_ENOTFOUND, "%sblock \"%s\": ", where(m->origin), name);
    if ((rc = grow((void **)&m->blocks, &m->cap_blocks, m->n_blocks, sizeof *m->blocks))) return rc;
    apx_block_obj *b = &m->blocks[m->n_blocks];
    memset(b, 0, sizeof *b);
    b->type = t;
    b->params = calloc((size_t)t->n_params + 1, sizeof *b->params);
    b->inputs = calloc((size_t)t->n_inputs + 1, sizeof *b->inputs);
    b->name = dupstr(name);
    b->origin = dupstr(m->origin);
    if (!b->params || !b->inputs || !b->name)
        rc = ap_error(AP_ENOMEM, "out of memory");
    else if (!(rc = set_params(m, "block", name, t->params, t->n_params, params, n_params,
                               b->params)))
        rc = connect_block_inputs(m, name, t, b, ports, signals, n_inputs);
    if (rc) {
        clear_block(b, t);
        return rc;
    }
    m->n_blocks++;
    return add_object(m, APX_OBJ_BLOCK, m->n_blocks - 1);
}

static int sizes_rec(const ap_model *m, int bi, int *in_size, int *state_size, int *out_size,
                     int depth);

/* Port (NULL or "rate": the rate) of population p, for the signal called name. */
static int resolve_pop_port(const apx_pop_obj *p, const char *name, const char *obj,
                            const char *port, apx_sigref *ref) {
    ref->size = p->size;
    if (!port || strcmp(port, "rate") == 0) {
        ref->kind = APX_SIG_RATE;
        return AP_OK;
    }
    for (int c = 0; c < p->type->n_compartments; c++)
        if (strcmp(p->type->compartments[c].name, port) == 0) {
            ref->kind = APX_SIG_COMPARTMENT;
            ref->port = c;
            return AP_OK;
        }
    char known[512] = "rate";
    size_t l = 4;
    for (int c = 0; c < p->type->n_compartments && l < sizeof known; c++)
        l += (size_t)snprintf(known + l, sizeof known - l, ", %s", p->type->compartments[c].name);
    return ap_error(AP_ENOTFOUND, "no signal \"%s\": population \"%s\" (%s) has %s", name, obj,
                    p->type->name, known);
}

/* Port (an output, a state, or NULL for a block's only output) of block bi, for the signal
 * called name; its size needs the block's sizes (depth: how deep the size recursion is). */
static int resolve_block_port(const ap_model *m, int bi, const char *name, const char *obj,
                              const char *port, apx_sigref *ref, int depth) {
    const ap_block_type *t = m->blocks[bi].type;
    int found = -1;
    apx_sig_kind kind = APX_SIG_BLOCK_OUTPUT;
    if (!port && t->n_outputs == 1) found = 0;
    for (int k = 0; port && k < t->n_outputs; k++)
        if (strcmp(t->outputs[k], port) == 0) found = k;
    for (int k = 0; port && found < 0 && k < t->n_states; k++)
        if (strcmp(t->states[k], port) == 0) {
            found = k;
            kind = APX_SIG_BLOCK_STATE;
        }
    if (found < 0) {
        char known[512] = "";
        size_t l = 0;
        for (int k = 0; k < t->n_outputs && l < sizeof known; k++)
            l +=
                (size_t)snprintf(known + l, sizeof known - l, "%s%s", l ? ", " : "", t->outputs[k]);
        for (int k = 0; k < t->n_states && l < sizeof known; k++)
            l += (size_t)snprintf(known + l, sizeof known - l, "%s%s", l ? ", " : "", t->states[k]);
        return ap_error(AP_ENOTFOUND, "no signal \"%s\": block \"%s\" (%s) has %s", name, obj,
                        t->name, known);
    }
    ref->kind = kind;
    ref->port = found;
    int in_size[32], st_size[32], out_size[32];
    int rc = sizes_rec(m, bi, in_size, st_size, out_size, depth + 1);
    if (rc) return rc;
    ref->size = kind == APX_SIG_BLOCK_OUTPUT ? out_size[found] : st_size[found];
    return AP_OK;
}

static int resolve_rec(const ap_model *m, const char *name, apx_sigref *ref, int depth) {
    char obj[256];
    const char *dot = strchr(name, '.');
    size_t len = dot ? (size_t)(dot - name) : strlen(name);
    if (len >= sizeof obj) return ap_error(AP_ENOTFOUND, "no signal \"%s\"", name);
    memcpy(obj, name, len);
    obj[len] = '\0';
    const char *port = dot ? dot + 1 : NULL;
    apx_obj_ref o;
    if (!find_object(m, obj, &o))
        return ap_error(AP_ENOTFOUND, "no signal \"%s\": no object \"%s\"", name, obj);
    ref->obj = o.index;
    ref->port = 0;
    if (o.kind == APX_OBJ_INPUT) {
        if (port)
            return ap_error(AP_ENOTFOUND, "no signal \"%s\": input \"%s\" has no parts", name, obj);
        ref->kind = APX_SIG_INPUT;
        ref->size = m->inputs[o.index].size;
        return AP_OK;
    }
    if (o.kind == APX_OBJ_POPULATION)
        return resolve_pop_port(&m->pops[o.index], name, obj, port, ref);
    return resolve_block_port(m, o.index, name, obj, port, ref, depth);
}

static int sizes_rec(const ap_model *m, int bi, int *in_size, int *state_size, int *out_size,
                     int depth) {
    const apx_block_obj *b = &m->blocks[bi];
    const ap_block_type *t = b->type;
    if (depth > m->n_blocks + 1)
        return ap_error(AP_ESIZE,
                        "block \"%s\": its size depends on itself through other blocks; give "
                        "the cycle an input of known size",
                        b->name);
    if (t->n_inputs > 32 || t->n_states > 32 || t->n_outputs > 32)
        return ap_error(AP_EINVAL, "block type %s: more than 32 ports", t->name);
    for (int k = 0; k < t->n_inputs; k++) {
        apx_sigref r;
        int rc = resolve_rec(m, b->inputs[k], &r, depth);
        if (rc) return rc;
        in_size[k] = r.size;
    }
    int def = t->n_inputs > 0 ? in_size[0] : 1;
    for (int k = 0; k < t->n_states; k++)
        state_size[k] = def;
    for (int k = 0; k < t->n_outputs; k++)
        out_size[k] = def;
    if (t->shape) {
        int rc = t->shape(b->params, in_size, state_size, out_size);
        if (rc) return ap_error_prefix(AP_ESIZE, "block \"%s\" (%s): ", b->name, t->name);
    }
    for (int k = 0; k < t->n_states; k++)
        if (state_size[k] < 1)
            return ap_error(AP_ESIZE, "block \"%s\": state %s has size %d", b->name, t->states[k],
                            state_size[k]);
    for (int k = 0; k < t->n_outputs; k++)
        if (out_size[k] < 1)
            return ap_error(AP_ESIZE, "block \"%s\": output %s has size %d", b->name, t->outputs[k],
                            out_size[k]);
    return AP_OK;
}

int apx_model_resolve(const ap_model *m, const char *name, apx_sigref *ref) {
    if (!name) return ap_error(AP_EINVAL, "signal name is NULL");
    return resolve_rec(m, name, ref, 0);
}

int apx_block_sizes(const ap_model *m, int block, int *in_size, int *state_size, int *out_size) {
    return sizes_rec(m, block, in_size, state_size, out_size, 0);
}

const char *apx_sigref_object(const ap_model *m, const apx_sigref *ref) {
    switch (ref->kind) {
    case APX_SIG_INPUT:
        return m->inputs[ref->obj].name;
    case APX_SIG_COMPARTMENT:
    case APX_SIG_RATE:
        return m->pops[ref->obj].name;
    default:
        return m->blocks[ref->obj].name;
    }
}

/* The canonical name of a signal: "x", "h1" (a rate), "h1.soma", "ctl.u". */
static void canonical(const ap_model *m, const apx_sigref *r, char *buf, size_t n) {
    switch (r->kind) {
    case APX_SIG_INPUT:
        snprintf(buf, n, "%s", m->inputs[r->obj].name);
        break;
    case APX_SIG_RATE:
        snprintf(buf, n, "%s", m->pops[r->obj].name);
        break;
    case APX_SIG_COMPARTMENT:
        snprintf(buf, n, "%s.%s", m->pops[r->obj].name,
                 m->pops[r->obj].type->compartments[r->port].name);
        break;
    case APX_SIG_BLOCK_OUTPUT:
        snprintf(buf, n, "%s.%s", m->blocks[r->obj].name, m->blocks[r->obj].type->outputs[r->port]);
        break;
    case APX_SIG_BLOCK_STATE:
        snprintf(buf, n, "%s.%s", m->blocks[r->obj].name, m->blocks[r->obj].type->states[r->port]);
        break;
    }
}

/* What a projection from src to tgt may be: it ends on a compartment; dense or one-to-one
 * (equal sizes, no bias). */
static int check_connect(const ap_model *m, const char *source, const char *target,
                         const apx_sigref *src, const apx_sigref *tgt,
                         const ap_connect_spec *spec) {
    if (tgt->kind != APX_SIG_COMPARTMENT)
        return ap_error(AP_EINVAL,
                        "%sconnect %s -> %s: a projection must end on a compartment (e.g. "
                        "\"%s.%s\")",
                        where(m->origin), source, target, apx_sigref_object(m, tgt),
                        tgt->kind == APX_SIG_RATE ? m->pops[tgt->obj].type->compartments[0].name
                                                  : "soma");
    if (spec->kind != AP_DENSE && spec->kind != AP_ONE_TO_ONE)
        return ap_error(AP_EINVAL, "%sconnect %s -> %s: unknown kind %d", where(m->origin), source,
                        target, (int)spec->kind);
    if (spec->kind == AP_ONE_TO_ONE && src->size != tgt->size)
        return ap_error(AP_ESIZE, "%sconnect %s -> %s: one-to-one needs equal sizes, got %d and %d",
                        where(m->origin), source, target, src->size, tgt->size);
    if (spec->kind == AP_ONE_TO_ONE && spec->bias)
        return ap_error(AP_EINVAL, "%sconnect %s -> %s: one-to-one projections have no bias",
                        where(m->origin), source, target);
    return AP_OK;
}

/* The projection's name: the spec's, or "source->target" with the source spelled canonically
 * (so that "h1" and "h1.rate" name the same projection); unique in m. */
static int projection_name(ap_model *m, const char *target, const apx_sigref *src,
                           const ap_connect_spec *spec, char *buf, size_t n, const char **name) {
    *name = spec->name;
    if (!*name) {
        char sn[256];
        canonical(m, src, sn, sizeof sn);
        snprintf(buf, n, "%s->%s", sn, target);
        *name = buf;
    }
    for (int i = 0; i < m->n_projs; i++)
        if (strcmp(m->projs[i].name, *name) == 0)
            return ap_error(AP_EDUP, "%sprojection \"%s\" exists already", where(m->origin), *name);
    return AP_OK;
}

/* The initializer's parameters (at most 64): the spec's over the defaults; a one-to-one
 * projection's default initializer is the constant 1. */
static int init_params(ap_model *m, const ap_initializer *init, const char *iname,
                       const ap_connect_spec *spec, double *iparams) {
    if (init->n_params > 64)
        return ap_error(AP_EINVAL, "initializer %s: too many parameters", iname);
    int rc = set_params(m, "initializer", iname, init->params, init->n_params, spec->init_params,
                        spec->n_init_params, iparams);
    if (rc) return rc;
    if (!spec->init && spec->kind == AP_ONE_TO_ONE)
        for (int k = 0; k < init->n_params; k++)
            if (strcmp(init->params[k].name, "value") == 0) iparams[k] = 1.0;
    return AP_OK;
}

int ap_model_connect(ap_model *m, const char *source, const char *target,
                     const ap_connect_spec *spec, int *id) {
    ap_connect_spec def = {0};
    if (!spec) spec = &def;
    apx_sigref src, tgt;
    int rc = apx_model_resolve(m, source, &src);
    if (rc) return ap_error_prefix(rc, "%sconnect source: ", where(m->origin));
    if ((rc = apx_model_resolve(m, target, &tgt)))
        return ap_error_prefix(rc, "%sconnect target: ", where(m->origin));
    if ((rc = check_connect(m, source, target, &src, &tgt, spec))) return rc;
    char autoname[512];
    const char *name;
    if ((rc = projection_name(m, target, &src, spec, autoname, sizeof autoname, &name))) return rc;
    const char *iname = spec->init ? spec->init : (spec->kind == AP_DENSE ? "zeros" : "constant");
    const ap_initializer *init = ap_registry_initializer(m->reg, iname);
    if (!init)
        return ap_error_prefix(AP_ENOTFOUND, "%sprojection \"%s\": ", where(m->origin), name);
    int rows = spec->kind == AP_DENSE ? tgt.size : 1;
    int cols = src.size;
    double iparams[64];
    if ((rc = init_params(m, init, iname, spec, iparams))) return rc;
    if ((rc = grow((void **)&m->projs, &m->cap_projs, m->n_projs, sizeof *m->projs))) return rc;
    apx_proj_obj *p = &m->projs[m->n_projs];
    memset(p, 0, sizeof *p);
    p->W = calloc((size_t)rows * (size_t)cols, sizeof *p->W);
    p->b = spec->bias ? calloc((size_t)rows, sizeof *p->b) : NULL;
    p->name = dupstr(name);
    p->origin = dupstr(m->origin);
    p->source = dupstr(source);
    p->target = dupstr(target);
    if (!p->W || (spec->bias && !p->b) || !p->name || !p->source || !p->target) {
        proj_obj_free(p);
        return ap_error(AP_ENOMEM, "out of memory allocating projection %s (%d x %d)", name, rows,
                        cols);
    }
    if ((rc = init->fill(iparams, spec->seed, rows, cols, p->W))) {
        ap_error_prefix(rc, "%sprojection \"%s\", initializer %s: ", where(m->origin), name, iname);
        proj_obj_free(p);
        return rc;
    }
    p->kind = spec->kind;
    p->rows = rows;
    p->cols = cols;
    p->plastic = spec->plastic;
    m->n_projs++;
    if (id) *id = m->n_projs - 1;
    return AP_OK;
}

int ap_model_add_rule(ap_model *m, int id, const char *rule, const ap_param *params, int n_params) {
    if (id < 0 || id >= m->n_projs)
        return ap_error(AP_EINVAL, "%sno projection with index %d", where(m->origin), id);
    apx_proj_obj *p = &m->projs[id];
    if (p->rule)
        return ap_error(AP_EINVAL, "%sprojection \"%s\" has a rule (%s) already", where(m->origin),
                        p->name, p->rule->name);
    apx_sigref tgt;
    int rc = apx_model_resolve(m, p->target, &tgt);
    if (rc) return rc;
    if (p->kind != AP_DENSE)
        return ap_error(AP_EINVAL, "%sprojection \"%s\": rules need a dense projection",
                        where(m->origin), p->name);
    const ap_rule_type *t = ap_registry_rule(m->reg, rule);
    if (!t)
        return ap_error_prefix(AP_ENOTFOUND, "%sprojection \"%s\": ", where(m->origin), p->name);
    double *vals = calloc((size_t)t->n_params + 1, sizeof *vals);
    if (!vals) return ap_error(AP_ENOMEM, "out of memory");
    if ((rc = set_params(m, "rule", rule, t->params, t->n_params, params, n_params, vals))) {
        free(vals);
        return rc;
    }
    p->rule = t;
    p->rule_params = vals;
    return AP_OK;
}

int ap_model_set_rule_aux(ap_model *m, int id, const char *signal) {
    if (id < 0 || id >= m->n_projs)
        return ap_error(AP_EINVAL, "%sno projection with index %d", where(m->origin), id);
    apx_proj_obj *p = &m->projs[id];
    if (!p->rule)
        return ap_error(AP_EINVAL,
                        "%sprojection \"%s\": an auxiliary rule signal needs a rule (add the rule "
                        "first)",
                        where(m->origin), p->name);
    char *aux = NULL, *org = NULL;
    if (signal) {
        aux = dupstr(signal);
        org = dupstr(m->origin);
        if (!aux || (m->origin && !org)) {
            free(aux);
            free(org);
            return ap_error(AP_ENOMEM, "out of memory");
        }
    }
    free(p->aux);
    free(p->aux_origin);
    p->aux = aux;
    p->aux_origin = org;
    return AP_OK;
}

int ap_model_n_projections(const ap_model *m) {
    return m->n_projs;
}

int ap_model_find_projection(const ap_model *m, const char *name, int *id) {
    for (int i = 0; i < m->n_projs; i++)
        if (strcmp(m->projs[i].name, name) == 0) {
            *id = i;
            return AP_OK;
        }
    return ap_error(AP_ENOTFOUND, "no projection \"%s\"", name);
}

int ap_model_projection_info(const ap_model *m, int id, ap_projection_info *info) {
    if (id < 0 || id >= m->n_projs) return ap_error(AP_EINVAL, "no projection with index %d", id);
    const apx_proj_obj *p = &m->projs[id];
    info->name = p->name;
    info->source = p->source;
    info->target = p->target;
    info->kind = p->kind;
    info->rows = p->rows;
    info->cols = p->cols;
    info->has_bias = p->b != NULL;
    info->plastic = p->plastic;
    info->rule = p->rule ? p->rule->name : NULL;
    return AP_OK;
}

double *ap_model_weights(ap_model *m, int id) {
    return id >= 0 && id < m->n_projs ? m->projs[id].W : NULL;
}

double *ap_model_bias(ap_model *m, int id) {
    return id >= 0 && id < m->n_projs ? m->projs[id].b : NULL;
}

int ap_model_check_weights(const ap_model *m) {
    for (int i = 0; i < m->n_projs; i++) {
        const apx_proj_obj *p = &m->projs[i];
        size_t n = (size_t)p->rows * (size_t)p->cols;
        for (size_t k = 0; k < n; k++)
            if (!isfinite(p->W[k]))
                return ap_error(AP_ENONFINITE, "%sprojection \"%s\": weight[%zu, %zu] = %g",
                                where(p->origin), p->name, k / (size_t)p->cols + 1,
                                k % (size_t)p->cols + 1, p->W[k]);
        if (p->b)
            for (int k = 0; k < p->rows; k++)
                if (!isfinite(p->b[k]))
                    return ap_error(AP_ENONFINITE, "%sprojection \"%s\": bias[%d] = %g",
                                    where(p->origin), p->name, k + 1, p->b[k]);
    }
    return AP_OK;
}

int ap_model_population_info(const ap_model *m, const char *name, ap_population_info *info) {
    int i = find_pop(m, name);
    if (i < 0) return ap_error(AP_ENOTFOUND, "no population \"%s\"", name);
    const apx_pop_obj *p = &m->pops[i];
    info->name = p->name;
    info->size = p->size;
    info->neuron = p->type;
    info->activation = p->act;
    info->params = p->params;
    info->start = p->start;
    return AP_OK;
}

int ap_model_block_info(const ap_model *m, const char *name, ap_block_info *info) {
    for (int i = 0; m && name && i < m->n_blocks; i++) {
        const apx_block_obj *b = &m->blocks[i];
        if (strcmp(b->name, name)) continue;
        info->name = b->name;
        info->type = b->type;
        info->params = b->params;
        info->inputs = (const char *const *)b->inputs;
        return AP_OK;
    }
    return ap_error(AP_ENOTFOUND, "no block \"%s\"", name ? name : "(null)");
}

int ap_model_signal_size(const ap_model *m, const char *signal, int *n) {
    apx_sigref r;
    int rc = apx_model_resolve(m, signal, &r);
    if (rc) return rc;
    *n = r.size;
    return AP_OK;
}

int ap_model_n_objects(const ap_model *m) {
    return m->n_objects;
}

int ap_model_object(const ap_model *m, int k, const char **kind, const char **name, int *size) {
    if (k < 0 || k >= m->n_objects) return ap_error(AP_EINVAL, "no object with index %d", k);
    const apx_obj_ref *o = &m->objects[k];
    switch (o->kind) {
    case APX_OBJ_INPUT:
        *kind = "input";
        *name = m->inputs[o->index].name;
        *size = m->inputs[o->index].size;
        break;
    case APX_OBJ_POPULATION:
        *kind = "population";
        *name = m->pops[o->index].name;
        *size = m->pops[o->index].size;
        break;
    default: {
        *kind = "block";
        *name = m->blocks[o->index].name;
        int in[32], st[32], out[32];
        *size = apx_block_sizes(m, o->index, in, st, out) == AP_OK &&
                        m->blocks[o->index].type->n_outputs
                    ? out[0]
                    : 0;
    }
    }
    return AP_OK;
}
