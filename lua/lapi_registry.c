/* lapi_registry.c — the Lua state's one registry (apical.Registry): plugins, the list of
 * registered types and what each type declares (parameters, compartments, ports). */
#include <string.h>

#include "apical/error.h"
#include "apical/plugin.h"
#include "lapi.h"

#define REGISTRY_KEY "apical.registry.instance"

static void registry_free_now(lapi_registry *reg) {
    ap_registry_free(&reg->r);
}

lapi_registry *lapi_registry_get(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY) == LUA_TUSERDATA)
        return lua_touserdata(L, -1);
    lua_pop(L, 1);
    lapi_registry *reg = lua_newuserdatauv(L, sizeof *reg, 0);
    memset(reg, 0, sizeof *reg);
    luaL_setmetatable(L, LAPI_REGISTRY);
    int rc = ap_registry_new(&reg->r);
    if (rc) return lapi_raise(L, rc), NULL;
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
    return reg;
}

/* __gc and __close: the registry goes when its last model has gone. Safe to run twice. */
static int reg_gc(lua_State *L) {
    lapi_registry *reg = luaL_checkudata(L, 1, LAPI_REGISTRY);
    if (reg->closed) return 0;
    reg->closed = 1;
    if (reg->users == 0) registry_free_now(reg);
    return 0;
}

void lapi_registry_release(lua_State *L, int model_idx) {
    lua_getiuservalue(L, model_idx, 1);
    lapi_registry *reg = luaL_testudata(L, -1, LAPI_REGISTRY);
    if (reg && reg->users > 0) {
        reg->users--;
        if (reg->closed && reg->users == 0) registry_free_now(reg);
    }
    lua_pop(L, 1);
}

static ap_registry *the_registry(lua_State *L) {
    lapi_registry *reg = lapi_registry_get(L);
    lua_pop(L, 1);
    if (!reg->r) luaL_error(L, "the registry is closed (the Lua state is shutting down)");
    return reg->r;
}

/* core.registry(): the registry userdata. */
static int l_registry(lua_State *L) {
    lapi_registry_get(L);
    return 1;
}

static void push_info(lua_State *L, const ap_plugin_info *info) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, info->name ? info->name : "");
    lua_setfield(L, -2, "name");
    lua_pushstring(L, info->version ? info->version : "");
    lua_setfield(L, -2, "version");
    lua_pushstring(L, info->doc ? info->doc : "");
    lua_setfield(L, -2, "doc");
}

/* core.plugin_load(name): info table {name, version, doc}, or nil and a message. */
static int l_plugin_load(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    ap_registry *r = the_registry(L);
    const ap_plugin_info *info = NULL;
    int rc = ap_plugin_load(r, name, &info);
    if (rc) return lapi_fail(L, rc);
    push_info(L, info);
    return 1;
}

typedef struct each_ctx {
    lua_State *L;
    int n;
} each_ctx;

/* ap_plugin_scan's callback: the name of every plugin that would load, into the table on top. */
static void each_plugin(void *ud, const char *path, const ap_plugin_info *info, const char *err) {
    each_ctx *c = ud;
    (void)path;
    (void)err;
    if (!info || !info->name) return;
    lua_pushstring(c->L, info->name);
    lua_rawseti(c->L, -2, ++c->n);
}

/* core.plugin_names(): the names of the plugins in the search path (ap_plugin_scan), in the
 * order found; those that cannot be loaded are left out. */
static int l_plugin_names(lua_State *L) {
    each_ctx c = {L, 0};
    lua_newtable(L);
    ap_plugin_scan(each_plugin, &c);
    return 1;
}

static int each_type(void *ud, const char *kind, const char *name, const char *owner,
                     const char *doc) {
    each_ctx *c = ud;
    lua_State *L = c->L;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, owner ? owner : "");
    lua_setfield(L, -2, "owner");
    lua_pushstring(L, doc ? doc : "");
    lua_setfield(L, -2, "doc");
    lua_rawseti(L, -2, ++c->n);
    return 0;
}

/* core.types(): list of {kind, name, owner, doc}. */
static int l_types(lua_State *L) {
    ap_registry *r = the_registry(L);
    lua_newtable(L);
    each_ctx c = {L, 0};
    luaL_checkstack(L, 8, "types");
    ap_registry_each(r, each_type, &c);
    return 1;
}

static void push_params(lua_State *L, const ap_param_desc *p, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 5);
        lua_pushstring(L, p[i].name);
        lua_setfield(L, -2, "name");
        lua_pushnumber(L, p[i].def);
        lua_setfield(L, -2, "default");
        lua_pushnumber(L, p[i].min);
        lua_setfield(L, -2, "min");
        lua_pushnumber(L, p[i].max);
        lua_setfield(L, -2, "max");
        lua_pushstring(L, p[i].doc ? p[i].doc : "");
        lua_setfield(L, -2, "doc");
        lua_rawseti(L, -2, i + 1);
    }
}

static void push_names(lua_State *L, const char *const *names, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static void set_doc(lua_State *L, const char *doc) {
    lua_pushstring(L, doc ? doc : "");
    lua_setfield(L, -2, "doc");
}

static void set_params(lua_State *L, const ap_param_desc *p, int n) {
    push_params(L, p, n);
    lua_setfield(L, -2, "params");
}

/* The fillers of core.type_info: each looks up a type of its kind and sets what it declares
 * in the table on top of the stack; 0 when no such type is registered (ap_last_error then
 * lists the known names). */

static void push_compartments(lua_State *L, const ap_neuron_type *t) {
    lua_createtable(L, t->n_compartments, 0);
    for (int c = 0; c < t->n_compartments; c++) {
        const ap_compartment_desc *cd = &t->compartments[c];
        lua_createtable(L, 0, 3);
        lua_pushstring(L, cd->name);
        lua_setfield(L, -2, "name");
        if (cd->tau_param) {
            lua_pushstring(L, cd->tau_param);
            lua_setfield(L, -2, "tau_param");
        }
        if (cd->feeds) {
            lua_pushstring(L, cd->feeds);
            lua_setfield(L, -2, "feeds");
        }
        lua_rawseti(L, -2, c + 1);
    }
}

static int info_neuron(lua_State *L, ap_registry *r, const char *name) {
    const ap_neuron_type *t = ap_registry_neuron(r, name);
    if (!t) return 0;
    set_doc(L, t->doc);
    set_params(L, t->params, t->n_params);
    push_compartments(L, t);
    lua_setfield(L, -2, "compartments");
    if (t->rate_of >= 0 && t->rate_of < t->n_compartments) {
        lua_pushstring(L, t->compartments[t->rate_of].name);
        lua_setfield(L, -2, "rate_of");
    }
    return 1;
}

static int info_block(lua_State *L, ap_registry *r, const char *name) {
    const ap_block_type *t = ap_registry_block(r, name);
    if (!t) return 0;
    set_doc(L, t->doc);
    set_params(L, t->params, t->n_params);
    push_names(L, t->inputs, t->n_inputs);
    lua_setfield(L, -2, "inputs");
    push_names(L, t->states, t->n_states);
    lua_setfield(L, -2, "states");
    push_names(L, t->outputs, t->n_outputs);
    lua_setfield(L, -2, "outputs");
    lua_pushboolean(L, t->feedthrough);
    lua_setfield(L, -2, "feedthrough");
    return 1;
}

static int info_rule(lua_State *L, ap_registry *r, const char *name) {
    const ap_rule_type *t = ap_registry_rule(r, name);
    if (!t) return 0;
    set_doc(L, t->doc);
    set_params(L, t->params, t->n_params);
    return 1;
}

static int info_init(lua_State *L, ap_registry *r, const char *name) {
    const ap_initializer *t = ap_registry_initializer(r, name);
    if (!t) return 0;
    set_doc(L, t->doc);
    set_params(L, t->params, t->n_params);
    return 1;
}

static int info_activation(lua_State *L, ap_registry *r, const char *name) {
    const ap_activation *t = ap_registry_activation(r, name);
    if (!t) return 0;
    set_doc(L, t->doc);
    lua_newtable(L);
    lua_setfield(L, -2, "params");
    return 1;
}

static int info_kernel(lua_State *L, ap_registry *r, const char *name) {
    const ap_kernel *t = ap_registry_kernel(r, name);
    if (!t) return 0;
    set_doc(L, t->doc);
    lua_pushstring(L, t->usage ? t->usage : "");
    lua_setfield(L, -2, "usage");
    return 1;
}

static const struct {
    const char *kind;
    int (*fill)(lua_State *L, ap_registry *r, const char *name);
} type_kinds[] = {
    {"neuron", info_neuron}, {"block", info_block},      {"rule", info_rule},
    {"init", info_init},     {"initializer", info_init}, {"activation", info_activation},
    {"kernel", info_kernel},
};

/* core.type_info(kind, name): what a registered type declares, or nil and a message (which
 * lists the known names). kind: "neuron", "block", "rule", "init" (or "initializer"),
 * "activation", "kernel" (doc and usage). */
static int l_type_info(lua_State *L) {
    const char *kind = luaL_checkstring(L, 1);
    const char *name = luaL_checkstring(L, 2);
    ap_registry *r = the_registry(L);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    for (size_t k = 0; k < sizeof type_kinds / sizeof type_kinds[0]; k++) {
        if (strcmp(kind, type_kinds[k].kind) != 0) continue;
        if (!type_kinds[k].fill(L, r, name)) return lapi_fail(L, AP_ENOTFOUND);
        lua_pushstring(L, kind);
        lua_setfield(L, -2, "kind");
        return 1;
    }
    return lapi_failf(L,
                      "unknown kind of type \"%s\" (known: neuron, block, rule, init, "
                      "activation, kernel)",
                      kind);
}

/* core.registry_closed(): true once a model was compiled (no more plugins then). */
static int l_registry_closed(lua_State *L) {
    lua_pushboolean(L, ap_registry_is_closed(the_registry(L)));
    return 1;
}

int lapi_open_registry(lua_State *L) {
    static const luaL_Reg meta[] = {{"__gc", reg_gc}, {"__close", reg_gc}, {NULL, NULL}};
    lapi_newclass(L, LAPI_REGISTRY, NULL, meta);
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"registry", l_registry},
                                   {"plugin_load", l_plugin_load},
                                   {"types", l_types},
                                   {"type_info", l_type_info},
                                   {"registry_closed", l_registry_closed},
                                   {"plugin_names", l_plugin_names},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    return 0;
}
