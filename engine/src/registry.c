/* registry.c — the registry of named types: validation of descriptors on registration, look-up
 * by name, enumeration, closing, and ownership of the plugin modules loaded into it. */
#include "apical/registry.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/precond.h"
#include "builtin.h"
#include "registry_impl.h"

/* How a kind is named in messages: `unknown neuron type "x"`, `activation "y": f is NULL`. */
static const char *const kind_noun[APX_KIND_COUNT] = {
    "activation", "initializer", "neuron type", "block type", "rule", "kernel", "preconditioner"};
static const char *const kind_name[APX_KIND_COUNT] = {
    "activation", "initializer", "neuron", "block", "rule", "kernel", "preconditioner"};

const char *apx_kind_name(apx_kind k) {
    return (k >= 0 && k < APX_KIND_COUNT) ? kind_name[k] : "?";
}

static const char *show(const char *s) {
    return s ? s : "(null)";
}

/* ---- creation and destruction ------------------------------------------------------------ */

int ap_registry_new(ap_registry **out) {
    if (!out) return ap_error(AP_EINVAL, "ap_registry_new: out is NULL");
    *out = NULL;
    ap_registry *r = calloc(1, sizeof *r);
    if (!r) return ap_error(AP_ENOMEM, "ap_registry_new: out of memory");
    int rc = apx_builtin_activations_register(r);
    if (rc == AP_OK) rc = apx_builtin_initializers_register(r);
    if (rc == AP_OK) rc = apx_builtin_models_register(r);
    if (rc == AP_OK) rc = apx_builtin_kernels_register(r);
    if (rc != AP_OK) {
        ap_error_prefix(rc, "registering the built-in types: ");
        ap_registry_free(&r);
        return rc;
    }
    *out = r;
    return AP_OK;
}

void ap_registry_free(ap_registry **pr) {
    if (!pr || !*pr) return;
    ap_registry *r = *pr;
    for (int k = 0; k < APX_KIND_COUNT; k++) {
        for (int i = 0; i < r->count[k]; i++)
            free(r->entries[k][i].owner);
        free(r->entries[k]);
    }
    /* Descriptors point into the modules: forget them first (done above), then unload the
     * modules in the reverse order of loading. */
    for (int i = r->n_modules - 1; i >= 0; i--) {
        dlclose(r->modules[i].handle);
        free(r->modules[i].name);
        free(r->modules[i].path);
    }
    free(r->modules);
    free(r);
    *pr = NULL;
}

/* ---- internal API (registry_impl.h) -------------------------------------------------------- */

const apx_registry_entry *apx_registry_find(const ap_registry *r, apx_kind k, const char *name) {
    if (!r || !name || k < 0 || k >= APX_KIND_COUNT) return NULL;
    for (int i = 0; i < r->count[k]; i++)
        if (strcmp(r->entries[k][i].name, name) == 0) return &r->entries[k][i];
    return NULL;
}

const apx_registry_module *apx_registry_module_find(const ap_registry *r, const char *name) {
    if (!r || !name) return NULL;
    for (int i = 0; i < r->n_modules; i++)
        if (strcmp(r->modules[i].name, name) == 0) return &r->modules[i];
    return NULL;
}

int apx_registry_module_add(ap_registry *r, void *handle, const char *name, const char *path,
                            const ap_plugin_info *info) {
    if (r->n_modules == r->cap_modules) {
        int cap = r->cap_modules ? 2 * r->cap_modules : 4;
        apx_registry_module *m = realloc(r->modules, (size_t)cap * sizeof *m);
        if (!m) return ap_error(AP_ENOMEM, "plugin \"%s\": out of memory", name);
        r->modules = m;
        r->cap_modules = cap;
    }
    char *name_copy = strdup(name), *path_copy = strdup(path);
    if (!name_copy || !path_copy) {
        free(name_copy);
        free(path_copy);
        return ap_error(AP_ENOMEM, "plugin \"%s\": out of memory", name);
    }
    r->modules[r->n_modules++] =
        (apx_registry_module){.handle = handle, .name = name_copy, .path = path_copy, .info = info};
    return AP_OK;
}

apx_registry_mark apx_registry_mark_now(const ap_registry *r) {
    apx_registry_mark m;
    for (int k = 0; k < APX_KIND_COUNT; k++)
        m.count[k] = r->count[k];
    m.n_modules = r->n_modules;
    return m;
}

void apx_registry_rollback(ap_registry *r, const apx_registry_mark *m) {
    for (int k = 0; k < APX_KIND_COUNT; k++) {
        while (r->count[k] > m->count[k])
            free(r->entries[k][--r->count[k]].owner);
    }
    while (r->n_modules > m->n_modules) {
        apx_registry_module *mod = &r->modules[--r->n_modules];
        dlclose(mod->handle);
        free(mod->name);
        free(mod->path);
    }
}

/* ---- validation helpers ------------------------------------------------------------------- */

/* The common header: abi_version, struct_size, name. Every descriptor of every ABI version
 * starts with these three fields, so reading them is safe before the version is known. */
static int check_header(apx_kind k, uint32_t abi, uint32_t size, size_t v1_size, const char *name) {
    const char *noun = kind_noun[k];
    if ((abi >> 16) != AP_ABI_MAJOR)
        return ap_error(AP_EABI,
                        "%s \"%s\": descriptor built for ABI %u.%u, this host has ABI %u.%u", noun,
                        show(name), (unsigned)(abi >> 16), (unsigned)(abi & 0xffffu),
                        (unsigned)AP_ABI_MAJOR, (unsigned)AP_ABI_MINOR);
    if (size < v1_size)
        return ap_error(AP_EABI, "%s \"%s\": struct_size %u is smaller than the %zu bytes of ABI 1",
                        noun, show(name), (unsigned)size, v1_size);
    if (!name || !name[0]) return ap_error(AP_EINVAL, "%s descriptor with an empty name", noun);
    return AP_OK;
}

/* A list of n parameters: named, names unique, min <= def <= max (none NaN). */
static int check_params(apx_kind k, const char *name, int n, const ap_param_desc *p) {
    const char *noun = kind_noun[k];
    if (n < 0) return ap_error(AP_EINVAL, "%s \"%s\": n_params = %d < 0", noun, name, n);
    if (n > 0 && !p)
        return ap_error(AP_EINVAL, "%s \"%s\": n_params = %d but params is NULL", noun, name, n);
    for (int i = 0; i < n; i++) {
        if (!p[i].name || !p[i].name[0])
            return ap_error(AP_EINVAL, "%s \"%s\": parameter %d has an empty name", noun, name, i);
        for (int j = 0; j < i; j++)
            if (strcmp(p[i].name, p[j].name) == 0)
                return ap_error(AP_EDUP, "%s \"%s\": parameter \"%s\" declared twice", noun, name,
                                p[i].name);
        if (isnan(p[i].def) || isnan(p[i].min) || isnan(p[i].max))
            return ap_error(AP_EINVAL, "%s \"%s\": parameter \"%s\" has a NaN default or bound",
                            noun, name, p[i].name);
        if (!(p[i].min <= p[i].max))
            return ap_error(AP_EINVAL, "%s \"%s\": parameter \"%s\" has min %g > max %g", noun,
                            name, p[i].name, p[i].min, p[i].max);
        if (!(p[i].min <= p[i].def && p[i].def <= p[i].max))
            return ap_error(AP_EINVAL,
                            "%s \"%s\": parameter \"%s\" has default %g outside [%g, %g]", noun,
                            name, p[i].name, p[i].def, p[i].min, p[i].max);
    }
    return AP_OK;
}

/* A list of n port or state names (what = "input", "state", "output"): named and unique. */
static int check_names(const char *name, const char *what, int n, const char *const *names) {
    if (n < 0) return ap_error(AP_EINVAL, "block type \"%s\": n_%ss = %d < 0", name, what, n);
    if (n > 0 && !names)
        return ap_error(AP_EINVAL, "block type \"%s\": n_%ss = %d but %ss is NULL", name, what, n,
                        what);
    for (int i = 0; i < n; i++) {
        if (!names[i] || !names[i][0])
            return ap_error(AP_EINVAL, "block type \"%s\": %s %d has an empty name", name, what, i);
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return ap_error(AP_EDUP, "block type \"%s\": %s \"%s\" declared twice", name, what,
                                names[i]);
    }
    return AP_OK;
}

static int param_index(int n, const ap_param_desc *p, const char *pname) {
    for (int i = 0; i < n; i++)
        if (strcmp(p[i].name, pname) == 0) return i;
    return -1;
}

/* The index of the compartment named by the len characters at s, or -1. */
static int compartment_index(const ap_neuron_type *d, const char *s, size_t len) {
    for (int c = 0; c < d->n_compartments; c++) {
        const char *cn = d->compartments[c].name;
        if (strlen(cn) == len && strncmp(cn, s, len) == 0) return c;
    }
    return -1;
}

/* Compartment c's feeds: a comma-separated list of compartment names (blanks around names are
 * ignored). Each fed value must be known when c is computed: an earlier compartment, or one
 * that may be dynamic (has a tau_param), whose value is part of the state. Whether a dynamic
 * one actually is (tau > 0) is only known when a model is built, which checks it again. */
static int check_feeds(const ap_neuron_type *d, int c) {
    const char *feeds = d->compartments[c].feeds, *cname = d->compartments[c].name;
    if (!feeds) return AP_OK;
    const char *s = feeds;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        const char *e = s;
        while (*e && *e != ',')
            e++;
        const char *end = e;
        while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t len = (size_t)(end - s);
        if (len == 0) {
            /* "" means no feeds; an empty item inside a list is a typo */
            if (s == feeds && !*e) break;
            return ap_error(AP_EINVAL,
                            "neuron type \"%s\": compartment \"%s\" has an empty name in feeds "
                            "\"%s\"",
                            d->name, cname, feeds);
        }
        int f = compartment_index(d, s, len);
        if (f < 0)
            return ap_error(AP_EINVAL,
                            "neuron type \"%s\": compartment \"%s\" feeds \"%.*s\", which is not "
                            "one of its compartments",
                            d->name, cname, (int)len, s);
        if (f >= c && !d->compartments[f].tau_param)
            return ap_error(AP_EINVAL,
                            "neuron type \"%s\": compartment \"%s\" feeds \"%s\", which is %s and "
                            "always instantaneous (no tau_param)",
                            d->name, cname, d->compartments[f].name,
                            f == c ? "itself" : "computed later");
        s = *e ? e + 1 : e;
    }
    return AP_OK;
}

static int check_activation(const ap_activation *d) {
    int rc = check_header(APX_KIND_ACTIVATION, d->abi_version, d->struct_size,
                          APX_V1_SIZE(ap_activation, df), d->name);
    if (rc) return rc;
    if (!d->f) return ap_error(AP_EINVAL, "activation \"%s\": f is NULL", d->name);
    if (!d->df) return ap_error(AP_EINVAL, "activation \"%s\": df is NULL", d->name);
    return AP_OK;
}

static int check_initializer(const ap_initializer *d) {
    int rc = check_header(APX_KIND_INITIALIZER, d->abi_version, d->struct_size,
                          APX_V1_SIZE(ap_initializer, fill), d->name);
    if (rc) return rc;
    if (!d->fill) return ap_error(AP_EINVAL, "initializer \"%s\": fill is NULL", d->name);
    return check_params(APX_KIND_INITIALIZER, d->name, d->n_params, d->params);
}

static int check_neuron(const ap_neuron_type *d) {
    int rc = check_header(APX_KIND_NEURON, d->abi_version, d->struct_size,
                          APX_V1_SIZE(ap_neuron_type, dynamics), d->name);
    if (rc) return rc;
    rc = check_params(APX_KIND_NEURON, d->name, d->n_params, d->params);
    if (rc) return rc;
    int n = d->n_compartments;
    if (n < 1)
        return ap_error(AP_EINVAL, "neuron type \"%s\": n_compartments = %d < 1", d->name, n);
    if (!d->compartments)
        return ap_error(AP_EINVAL,
                        "neuron type \"%s\": n_compartments = %d but compartments is NULL", d->name,
                        n);
    for (int c = 0; c < n; c++) {
        const ap_compartment_desc *cd = &d->compartments[c];
        if (!cd->name || !cd->name[0])
            return ap_error(AP_EINVAL, "neuron type \"%s\": compartment %d has an empty name",
                            d->name, c);
        for (int j = 0; j < c; j++)
            if (strcmp(cd->name, d->compartments[j].name) == 0)
                return ap_error(AP_EDUP, "neuron type \"%s\": compartment \"%s\" declared twice",
                                d->name, cd->name);
        if (cd->tau_param && param_index(d->n_params, d->params, cd->tau_param) < 0)
            return ap_error(AP_EINVAL,
                            "neuron type \"%s\": compartment \"%s\" has tau_param \"%s\", which is "
                            "not one of its parameters",
                            d->name, cd->name, cd->tau_param);
    }
    /* feeds may name later compartments, so check them once every name is known */
    for (int c = 0; c < n; c++) {
        rc = check_feeds(d, c);
        if (rc) return rc;
    }
    if (d->rate_of < 0 || d->rate_of >= n)
        return ap_error(AP_EINVAL,
                        "neuron type \"%s\": rate_of = %d is not a compartment index (0..%d)",
                        d->name, d->rate_of, n - 1);
    return AP_OK;
}

static int check_block(const ap_block_type *d) {
    int rc = check_header(APX_KIND_BLOCK, d->abi_version, d->struct_size,
                          APX_V1_SIZE(ap_block_type, deriv), d->name);
    if (rc) return rc;
    if ((rc = check_names(d->name, "input", d->n_inputs, d->inputs)) ||
        (rc = check_names(d->name, "state", d->n_states, d->states)) ||
        (rc = check_names(d->name, "output", d->n_outputs, d->outputs)))
        return rc;
    rc = check_params(APX_KIND_BLOCK, d->name, d->n_params, d->params);
    if (rc) return rc;
    if (!d->output) return ap_error(AP_EINVAL, "block type \"%s\": output is NULL", d->name);
    if (d->n_states > 0 && !d->deriv)
        return ap_error(AP_EINVAL, "block type \"%s\": deriv is NULL but it has %d state(s)",
                        d->name, d->n_states);
    /* without shape, states and outputs take the size of input 0 */
    if (!d->shape && d->n_inputs == 0 && (d->n_states > 0 || d->n_outputs > 0))
        return ap_error(AP_EINVAL,
                        "block type \"%s\": no inputs and no shape callback, so the sizes of its "
                        "states and outputs are undefined",
                        d->name);
    return AP_OK;
}

static int check_rule(const ap_rule_type *d) {
    int rc = check_header(APX_KIND_RULE, d->abi_version, d->struct_size,
                          APX_V1_SIZE(ap_rule_type, factors), d->name);
    if (rc) return rc;
    if (!d->factors) return ap_error(AP_EINVAL, "rule \"%s\": factors is NULL", d->name);
    return check_params(APX_KIND_RULE, d->name, d->n_params, d->params);
}

static int check_kernel(const ap_kernel *d) {
    int rc = check_header(APX_KIND_KERNEL, d->abi_version, d->struct_size,
                          APX_V1_SIZE(ap_kernel, call), d->name);
    if (rc) return rc;
    if (!d->call) return ap_error(AP_EINVAL, "kernel \"%s\": call is NULL", d->name);
    return AP_OK;
}

static int check_precond(const ap_precond_type *d) {
    int rc = check_header(APX_KIND_PRECOND, d->abi_version, d->struct_size,
                          APX_V1_SIZE(ap_precond_type, destroy), d->name);
    if (rc) return rc;
    if (!d->create || !d->setup || !d->solve || !d->destroy)
        return ap_error(AP_EINVAL,
                        "preconditioner \"%s\": create, setup, solve and destroy are needed",
                        d->name);
    return AP_OK;
}

/* ---- registration ------------------------------------------------------------------------- */

/* The shared tail of every ap_registry_add_*: state, validation, uniqueness, storage. */
static int add_entry(ap_registry *r, apx_kind k, const void *desc, const char *name,
                     const char *doc, const char *owner, int (*check)(const void *)) {
    const char *noun = kind_noun[k];
    if (!r) return ap_error(AP_EINVAL, "registering a %s: registry is NULL", noun);
    if (!desc) return ap_error(AP_EINVAL, "registering a %s: descriptor is NULL", noun);
    if (r->closed)
        return ap_error(AP_ESTATE, "%s \"%s\": the registry is closed (a model was compiled)", noun,
                        show(name));
    int rc = check(desc);
    if (rc) return rc;
    if (!owner || !owner[0]) owner = r->loading ? r->loading : "engine";
    const apx_registry_entry *old = apx_registry_find(r, k, name);
    if (old)
        return ap_error(AP_EDUP, "%s \"%s\" (from %s) is already registered (by %s)", noun, name,
                        owner, old->owner);
    if (r->count[k] == r->cap[k]) {
        int cap = r->cap[k] ? 2 * r->cap[k] : 8;
        apx_registry_entry *e = realloc(r->entries[k], (size_t)cap * sizeof *e);
        if (!e) return ap_error(AP_ENOMEM, "%s \"%s\": out of memory", noun, name);
        r->entries[k] = e;
        r->cap[k] = cap;
    }
    char *owner_copy = strdup(owner);
    if (!owner_copy) return ap_error(AP_ENOMEM, "%s \"%s\": out of memory", noun, name);
    r->entries[k][r->count[k]++] = (apx_registry_entry){
        .desc = desc, .name = name, .doc = doc ? doc : "", .owner = owner_copy};
    return AP_OK;
}

/* Adapters from the generic checker signature to the typed ones. */
static int check_activation_v(const void *d) {
    return check_activation(d);
}
static int check_initializer_v(const void *d) {
    return check_initializer(d);
}
static int check_neuron_v(const void *d) {
    return check_neuron(d);
}
static int check_block_v(const void *d) {
    return check_block(d);
}
static int check_rule_v(const void *d) {
    return check_rule(d);
}
static int check_kernel_v(const void *d) {
    return check_kernel(d);
}

static int check_precond_v(const void *d) {
    return check_precond(d);
}

int ap_registry_add_activation(ap_registry *r, const ap_activation *d, const char *owner) {
    return add_entry(r, APX_KIND_ACTIVATION, d, d ? d->name : NULL, d ? d->doc : NULL, owner,
                     check_activation_v);
}

int ap_registry_add_initializer(ap_registry *r, const ap_initializer *d, const char *owner) {
    return add_entry(r, APX_KIND_INITIALIZER, d, d ? d->name : NULL, d ? d->doc : NULL, owner,
                     check_initializer_v);
}

int ap_registry_add_neuron(ap_registry *r, const ap_neuron_type *d, const char *owner) {
    return add_entry(r, APX_KIND_NEURON, d, d ? d->name : NULL, d ? d->doc : NULL, owner,
                     check_neuron_v);
}

int ap_registry_add_block(ap_registry *r, const ap_block_type *d, const char *owner) {
    return add_entry(r, APX_KIND_BLOCK, d, d ? d->name : NULL, d ? d->doc : NULL, owner,
                     check_block_v);
}

int ap_registry_add_rule(ap_registry *r, const ap_rule_type *d, const char *owner) {
    return add_entry(r, APX_KIND_RULE, d, d ? d->name : NULL, d ? d->doc : NULL, owner,
                     check_rule_v);
}

int ap_registry_add_kernel(ap_registry *r, const ap_kernel *d, const char *owner) {
    return add_entry(r, APX_KIND_KERNEL, d, d ? d->name : NULL, d ? d->doc : NULL, owner,
                     check_kernel_v);
}

int ap_registry_add_precond(ap_registry *r, const ap_precond_type *d, const char *owner) {
    return add_entry(r, APX_KIND_PRECOND, d, d ? d->name : NULL, d ? d->doc : NULL, owner,
                     check_precond_v);
}

/* ---- look-ups ----------------------------------------------------------------------------- */

/* Finds name, or sets `unknown <noun> "name" (known: a, b, c)` and returns NULL. */
static const void *lookup(const ap_registry *r, apx_kind k, const char *name) {
    const char *noun = kind_noun[k];
    if (!r) {
        ap_error(AP_EINVAL, "looking up %s \"%s\": registry is NULL", noun, show(name));
        return NULL;
    }
    if (!name) {
        ap_error(AP_EINVAL, "looking up a %s: name is NULL", noun);
        return NULL;
    }
    const apx_registry_entry *e = apx_registry_find(r, k, name);
    if (e) return e->desc;
    char known[768];
    size_t used = 0;
    known[0] = '\0';
    for (int i = 0; i < r->count[k] && used < sizeof known; i++) {
        int w = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                         r->entries[k][i].name);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (used >= sizeof known) strcpy(known + sizeof known - 5, "...");
    ap_error(AP_ENOTFOUND, "unknown %s \"%s\" (known: %s)", noun, name,
             r->count[k] ? known : "none");
    return NULL;
}

const ap_activation *ap_registry_activation(const ap_registry *r, const char *name) {
    return lookup(r, APX_KIND_ACTIVATION, name);
}

const ap_initializer *ap_registry_initializer(const ap_registry *r, const char *name) {
    return lookup(r, APX_KIND_INITIALIZER, name);
}

const ap_neuron_type *ap_registry_neuron(const ap_registry *r, const char *name) {
    return lookup(r, APX_KIND_NEURON, name);
}

const ap_block_type *ap_registry_block(const ap_registry *r, const char *name) {
    return lookup(r, APX_KIND_BLOCK, name);
}

const ap_rule_type *ap_registry_rule(const ap_registry *r, const char *name) {
    return lookup(r, APX_KIND_RULE, name);
}

const ap_kernel *ap_registry_kernel(const ap_registry *r, const char *name) {
    return lookup(r, APX_KIND_KERNEL, name);
}

const ap_precond_type *ap_registry_precond(const ap_registry *r, const char *name) {
    return lookup(r, APX_KIND_PRECOND, name);
}

void ap_registry_each(const ap_registry *r,
                      int (*fn)(void *ud, const char *kind, const char *name, const char *owner,
                                const char *doc),
                      void *ud) {
    if (!r || !fn) return;
    for (int k = 0; k < APX_KIND_COUNT; k++)
        for (int i = 0; i < r->count[k]; i++) {
            const apx_registry_entry *e = &r->entries[k][i];
            if (fn(ud, kind_name[k], e->name, e->owner, e->doc)) return;
        }
}

/* ---- closing ------------------------------------------------------------------------------ */

void ap_registry_close(ap_registry *r) {
    if (r) r->closed = 1;
}

int ap_registry_is_closed(const ap_registry *r) {
    return r ? r->closed : 0;
}
