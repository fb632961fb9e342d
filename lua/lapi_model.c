/* lapi_model.c — apical.Model: the model graph as a Lua object (inputs, populations, blocks,
 * projections, rules, weights). The Lua half (apical/model.lua) checks the arguments and
 * raises at the user's line; these functions return nil and the engine's message on failure.
 * Every building call takes the caller's position ("model.lua:12"), which the engine keeps as
 * the object's origin and quotes in compile errors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "apical/error.h"
#include "lapi.h"

static void model_free_now(lua_State *L, lapi_model *mod, int idx) {
    if (!mod->m) return;
    ap_model_free(&mod->m);
    lapi_registry_release(L, idx);
}

/* __gc and __close: frees the model, or, while simulations still use it, marks it closed and
 * leaves the freeing to the last of them. Safe to run twice. */
static int model_gc(lua_State *L) {
    lapi_model *mod = luaL_checkudata(L, 1, LAPI_MODEL);
    if (mod->closed) return 0;
    mod->closed = 1;
    if (mod->users == 0) model_free_now(L, mod, 1);
    return 0;
}

void lapi_model_release(lua_State *L, int sim_idx) {
    lua_getiuservalue(L, sim_idx, 1);
    lapi_model *mod = luaL_testudata(L, -1, LAPI_MODEL);
    if (mod && mod->users > 0) {
        mod->users--;
        if (mod->closed && mod->users == 0) model_free_now(L, mod, lua_gettop(L));
    }
    lua_pop(L, 1);
}

/* The open model at idx; raises if it is closed (the Lua half checks before calling). */
static ap_model *check_model(lua_State *L, int idx) {
    lapi_model *mod = luaL_checkudata(L, idx, LAPI_MODEL);
    if (mod->closed || !mod->m) luaL_error(L, "the model is closed");
    return mod->m;
}

/* Sets the origin from argument idx (a string, or nil to clear). */
static ap_model *model_at(lua_State *L, int idx, int where_idx) {
    ap_model *m = check_model(L, idx);
    if (ap_model_set_origin(m, luaL_optstring(L, where_idx, NULL))) lapi_raise(L, AP_ENOMEM);
    return m;
}

/* core.model_new(batch): a model over the state's registry, or nil and a message. */
static int l_model_new(lua_State *L) {
    lua_Integer batch = luaL_checkinteger(L, 1);
    lapi_registry *reg = lapi_registry_get(L);
    int ireg = lua_gettop(L);
    if (!reg->r) return lapi_failf(L, "the registry is closed");
    lapi_model *mod = lua_newuserdatauv(L, sizeof *mod, 2);
    memset(mod, 0, sizeof *mod);
    luaL_setmetatable(L, LAPI_MODEL);
    lua_pushvalue(L, ireg);
    lua_setiuservalue(L, -2, 1);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 2);
    if (batch < 1 || batch > 0x7fffffff)
        return lapi_failf(L, "model: batch = %lld, must be >= 1", (long long)batch);
    int rc = ap_model_new(&mod->m, reg->r, (int)batch);
    if (rc) return lapi_fail(L, rc);
    reg->users++;
    return 1;
}

static int l_model_close(lua_State *L) {
    luaL_checkudata(L, 1, LAPI_MODEL);
    return model_gc(L);
}

/* core.model_closed(m): true after close (or for anything that is not a model). */
static int l_model_closed(lua_State *L) {
    lapi_model *mod = luaL_testudata(L, 1, LAPI_MODEL);
    lua_pushboolean(L, !mod || mod->closed || !mod->m);
    return 1;
}

static int l_is_model(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, LAPI_MODEL) != NULL);
    return 1;
}

/* core.model_data(m): the table the Lua half keeps its bookkeeping in. */
static int l_model_data(lua_State *L) {
    luaL_checkudata(L, 1, LAPI_MODEL);
    lua_getiuservalue(L, 1, 2);
    return 1;
}

static int l_model_batch(lua_State *L) {
    lua_pushinteger(L, ap_model_batch(check_model(L, 1)));
    return 1;
}

static int l_model_tostring(lua_State *L) {
    lapi_model *mod = luaL_checkudata(L, 1, LAPI_MODEL);
    if (mod->closed || !mod->m) {
        lua_pushliteral(L, "apical.Model (closed)");
    } else {
        lua_pushfstring(L, "apical.Model (batch %d, %d objects, %d projections)",
                        ap_model_batch(mod->m), ap_model_n_objects(mod->m),
                        ap_model_n_projections(mod->m));
    }
    return 1;
}

/* Reads the table at idx {name = number, ...} into a GC-managed ap_param array (pushed). */
static ap_param *read_params(lua_State *L, int idx, int *n, char *err, size_t errlen) {
    *n = 0;
    if (lua_isnoneornil(L, idx)) return lapi_scratch(L, sizeof(ap_param));
    luaL_checktype(L, idx, LUA_TTABLE);
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        lua_pop(L, 1);
    }
    ap_param *p = lapi_scratch(L, (size_t)(count + 1) * sizeof *p);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TNUMBER) {
            snprintf(err, errlen, "parameter %s%s%s must be a number, got %s",
                     lua_type(L, -2) == LUA_TSTRING ? "\"" : "",
                     lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "(non-string key)",
                     lua_type(L, -2) == LUA_TSTRING ? "\"" : "", luaL_typename(L, -1));
            lua_pop(L, 2);
            return NULL;
        }
        p[*n].name = lua_tostring(L, -2); /* the key stays alive in the table */
        p[*n].value = lua_tonumber(L, -1);
        (*n)++;
        lua_pop(L, 1);
    }
    return p;
}

/* core.model_add_input(m, where, name, size) */
static int l_add_input(lua_State *L) {
    ap_model *m = model_at(L, 1, 2);
    const char *name = luaL_checkstring(L, 3);
    lua_Integer size = luaL_checkinteger(L, 4);
    if (size < 1 || size > 0x7fffffff)
        return lapi_failf(L, "input \"%s\": size = %lld, must be >= 1", name, (long long)size);
    int rc = ap_model_add_input(m, name, (int)size);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.model_add_population(m, where, name, size, neuron, activation, params) */
static int l_add_population(lua_State *L) {
    ap_model *m = model_at(L, 1, 2);
    const char *name = luaL_checkstring(L, 3);
    lua_Integer size = luaL_checkinteger(L, 4);
    const char *neuron = luaL_checkstring(L, 5);
    const char *act = luaL_checkstring(L, 6);
    char err[300];
    int n;
    ap_param *p = read_params(L, 7, &n, err, sizeof err);
    if (!p) return lapi_failf(L, "population \"%s\": %s", name, err);
    if (size < 1 || size > 0x7fffffff)
        return lapi_failf(L, "population \"%s\": size = %lld, must be >= 1", name, (long long)size);
    int rc = ap_model_add_population(m, name, (int)size, neuron, act, p, n);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.model_set_start(m, where, population, "zero" | "settled") */
static int l_set_start(lua_State *L) {
    ap_model *m = model_at(L, 1, 2);
    const char *pop = luaL_checkstring(L, 3);
    static const char *const modes[] = {"zero", "settled", NULL};
    int mode = luaL_checkoption(L, 4, NULL, modes);
    int rc = ap_model_set_start(m, pop, mode == 0 ? AP_START_ZERO : AP_START_SETTLED);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.model_set_start_value(m, where, compartment, value) */
static int l_set_start_value(lua_State *L) {
    ap_model *m = model_at(L, 1, 2);
    int rc = ap_model_set_start_value(m, luaL_checkstring(L, 3), luaL_checknumber(L, 4));
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.model_add_block(m, where, name, type, params, {port = signal, ...}) */
static int l_add_block(lua_State *L) {
    ap_model *m = model_at(L, 1, 2);
    const char *name = luaL_checkstring(L, 3);
    const char *type = luaL_checkstring(L, 4);
    char err[300];
    int n;
    ap_param *p = read_params(L, 5, &n, err, sizeof err);
    if (!p) return lapi_failf(L, "block \"%s\": %s", name, err);
    luaL_checktype(L, 6, LUA_TTABLE);
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, 6)) {
        count++;
        lua_pop(L, 1);
    }
    const char **ports = lapi_scratch(L, (size_t)(count + 1) * sizeof *ports);
    const char **sigs = lapi_scratch(L, (size_t)(count + 1) * sizeof *sigs);
    int k = 0;
    lua_pushnil(L);
    while (lua_next(L, 6)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 2);
            return lapi_failf(L, "block \"%s\": inputs must map port names to signal names", name);
        }
        ports[k] = lua_tostring(L, -2);
        sigs[k] = lua_tostring(L, -1);
        k++;
        lua_pop(L, 1);
    }
    int rc = ap_model_add_block(m, name, type, p, n, ports, sigs, k);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.model_connect(m, where, source, target, spec) -> projection index (0-based).
 * spec: {name=, kind="dense"|"one_to_one", bias=, init=, init_params={}, seed=, plastic=} */
static int l_connect(lua_State *L) {
    ap_model *m = model_at(L, 1, 2);
    const char *source = luaL_checkstring(L, 3);
    const char *target = luaL_checkstring(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    ap_connect_spec spec = {0};
    lua_getfield(L, 5, "name");
    spec.name = lua_tostring(L, -1);
    lua_getfield(L, 5, "kind");
    const char *kind = luaL_optstring(L, -1, "dense");
    if (strcmp(kind, "dense") == 0)
        spec.kind = AP_DENSE;
    else if (strcmp(kind, "one_to_one") == 0)
        spec.kind = AP_ONE_TO_ONE;
    else
        return lapi_failf(L, "connect: unknown kind \"%s\" (dense, one_to_one)", kind);
    lua_getfield(L, 5, "bias");
    spec.bias = lua_toboolean(L, -1);
    lua_getfield(L, 5, "plastic");
    spec.plastic = lua_toboolean(L, -1);
    lua_getfield(L, 5, "init");
    spec.init = lua_tostring(L, -1);
    lua_getfield(L, 5, "seed");
    spec.seed = (uint64_t)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 5, "init_params");
    int ip = lua_gettop(L);
    char err[300];
    int n;
    ap_param *p = read_params(L, ip, &n, err, sizeof err);
    if (!p) return lapi_failf(L, "connect %s -> %s: initializer %s", source, target, err);
    spec.init_params = p;
    spec.n_init_params = n;
    int id = -1;
    int rc = ap_model_connect(m, source, target, &spec, &id);
    if (rc) return lapi_fail(L, rc);
    lua_pushinteger(L, id);
    return 1;
}

/* core.model_add_rule(m, where, id, rule, params) */
static int l_add_rule(lua_State *L) {
    ap_model *m = model_at(L, 1, 2);
    int id = (int)luaL_checkinteger(L, 3);
    const char *rule = luaL_checkstring(L, 4);
    char err[300];
    int n;
    ap_param *p = read_params(L, 5, &n, err, sizeof err);
    if (!p) return lapi_failf(L, "rule %s: %s", rule, err);
    int rc = ap_model_add_rule(m, id, rule, p, n);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.model_set_rule_aux(m, where, id, signal or nil) */
static int l_set_rule_aux(lua_State *L) {
    ap_model *m = model_at(L, 1, 2);
    int id = (int)luaL_checkinteger(L, 3);
    const char *sig = luaL_optstring(L, 4, NULL);
    int rc = ap_model_set_rule_aux(m, id, sig);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.model_signal_size(m, name) -> n, or nil and a message. */
static int l_signal_size(lua_State *L) {
    ap_model *m = check_model(L, 1);
    int n = 0;
    int rc = ap_model_signal_size(m, luaL_checkstring(L, 2), &n);
    if (rc) return lapi_fail(L, rc);
    lua_pushinteger(L, n);
    return 1;
}

static int l_n_projections(lua_State *L) {
    lua_pushinteger(L, ap_model_n_projections(check_model(L, 1)));
    return 1;
}

static int l_find_projection(lua_State *L) {
    ap_model *m = check_model(L, 1);
    int id = -1;
    int rc = ap_model_find_projection(m, luaL_checkstring(L, 2), &id);
    if (rc) return lapi_fail(L, rc);
    lua_pushinteger(L, id);
    return 1;
}

/* core.model_projection_info(m, id) -> {name, source, target, kind, rows, cols, bias, plastic,
 * rule} */
static int l_projection_info(lua_State *L) {
    ap_model *m = check_model(L, 1);
    ap_projection_info info;
    int rc = ap_model_projection_info(m, (int)luaL_checkinteger(L, 2), &info);
    if (rc) return lapi_fail(L, rc);
    lua_createtable(L, 0, 9);
    lua_pushstring(L, info.name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, info.source);
    lua_setfield(L, -2, "source");
    lua_pushstring(L, info.target);
    lua_setfield(L, -2, "target");
    lua_pushstring(L, info.kind == AP_ONE_TO_ONE ? "one_to_one" : "dense");
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, info.rows);
    lua_setfield(L, -2, "rows");
    lua_pushinteger(L, info.cols);
    lua_setfield(L, -2, "cols");
    lua_pushboolean(L, info.has_bias);
    lua_setfield(L, -2, "bias");
    lua_pushboolean(L, info.plastic);
    lua_setfield(L, -2, "plastic");
    if (info.rule) {
        lua_pushstring(L, info.rule);
        lua_setfield(L, -2, "rule");
    }
    return 1;
}

/* core.model_weights(m, id) -> Array rows x cols (a copy). */
static int l_weights(lua_State *L) {
    ap_model *m = check_model(L, 1);
    int id = (int)luaL_checkinteger(L, 2);
    ap_projection_info info;
    int rc = ap_model_projection_info(m, id, &info);
    if (rc) return lapi_fail(L, rc);
    size_t shape[2] = {(size_t)info.rows, (size_t)info.cols};
    lapi_array *a = lapi_array_new(L, 2, shape);
    const double *w = ap_model_weights(m, id);
    if (a->size) memcpy(a->data, w, a->size * sizeof(double));
    return 1;
}

/* core.model_bias(m, id) -> Array {rows} (a copy), or false without a bias. */
static int l_bias(lua_State *L) {
    ap_model *m = check_model(L, 1);
    int id = (int)luaL_checkinteger(L, 2);
    ap_projection_info info;
    int rc = ap_model_projection_info(m, id, &info);
    if (rc) return lapi_fail(L, rc);
    const double *b = ap_model_bias(m, id);
    if (!info.has_bias || !b) {
        lua_pushboolean(L, 0);
        return 1;
    }
    size_t shape[1] = {(size_t)info.rows};
    lapi_array *a = lapi_array_new(L, 1, shape);
    memcpy(a->data, b, a->size * sizeof(double));
    return 1;
}

int lapi_fits_matrix(const lapi_array *a, size_t rows, size_t cols) {
    if (a->ndim == 2) return a->shape[0] == rows && a->shape[1] == cols;
    if (a->ndim == 1) return a->shape[0] == rows * cols && (rows == 1 || cols == 1);
    return 0;
}

/* core.model_set_weights(m, id, array, label, dry) / core.model_set_bias(...): copies the values
 * in after checking the shape and that every value is finite; label names the source of the
 * values in messages ("set_weights", "file w.npy"); with dry, only checks. true, or nil and a
 * message. */
static int set_params_common(lua_State *L, int bias) {
    ap_model *m = check_model(L, 1);
    int id = (int)luaL_checkinteger(L, 2);
    lapi_array *a = lapi_array_check(L, 3);
    const char *label = luaL_optstring(L, 4, bias ? "set_bias" : "set_weights");
    ap_projection_info info;
    int rc = ap_model_projection_info(m, id, &info);
    if (rc) return lapi_fail(L, rc);
    char got[200];
    lapi_shape_str(a, got, sizeof got);
    double *dst;
    if (bias) {
        if (!info.has_bias)
            return lapi_failf(L,
                              "projection \"%s\": %s: the projection has no bias (connect it "
                              "with bias = true)",
                              info.name, label);
        if (!lapi_fits_matrix(a, (size_t)info.rows, 1))
            return lapi_failf(L, "projection \"%s\": %s: got shape %s, the bias needs {%d}",
                              info.name, label, got, info.rows);
        dst = ap_model_bias(m, id);
    } else {
        if (!lapi_fits_matrix(a, (size_t)info.rows, (size_t)info.cols))
            return lapi_failf(L,
                              "projection \"%s\": %s: got shape %s, the weights are {%d, %d} "
                              "(rows = target size, columns = source size)",
                              info.name, label, got, info.rows, info.cols);
        dst = ap_model_weights(m, id);
    }
    size_t cols = bias ? 1 : (size_t)info.cols;
    for (size_t k = 0; k < a->size; k++)
        if (!isfinite(a->data[k])) {
            const char *v = isnan(a->data[k]) ? "nan" : a->data[k] > 0 ? "inf" : "-inf";
            if (bias)
                return lapi_failf(L, "projection \"%s\": %s: bias[%zu] = %s is not finite",
                                  info.name, label, k + 1, v);
            return lapi_failf(L, "projection \"%s\": %s: weight[%zu, %zu] = %s is not finite",
                              info.name, label, k / cols + 1, k % cols + 1, v);
        }
    if (a->size && !lua_toboolean(L, 5)) memcpy(dst, a->data, a->size * sizeof(double));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_set_weights(lua_State *L) {
    return set_params_common(L, 0);
}

static int l_set_bias(lua_State *L) {
    return set_params_common(L, 1);
}

/* core.model_objects(m) -> list of {kind, name, size} in declaration order. */
static int l_objects(lua_State *L) {
    ap_model *m = check_model(L, 1);
    int n = ap_model_n_objects(m);
    lua_createtable(L, n, 0);
    for (int k = 0; k < n; k++) {
        const char *kind, *name;
        int size = 0;
        if (ap_model_object(m, k, &kind, &name, &size)) return lapi_fail(L, AP_EINVAL);
        lua_createtable(L, 0, 3);
        lua_pushstring(L, kind);
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, name);
        lua_setfield(L, -2, "name");
        lua_pushinteger(L, size);
        lua_setfield(L, -2, "size");
        lua_rawseti(L, -2, k + 1);
    }
    return 1;
}

/* core.model_population_info(m, name) -> {name, size, neuron, activation, params = {name =
 * value}, start = "zero" | "settled"}, or nil and a message. */
static int l_population_info(lua_State *L) {
    ap_model *m = check_model(L, 1);
    ap_population_info info;
    int rc = ap_model_population_info(m, luaL_checkstring(L, 2), &info);
    if (rc) return lapi_fail(L, rc);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, info.name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, info.size);
    lua_setfield(L, -2, "size");
    lua_pushstring(L, info.neuron->name);
    lua_setfield(L, -2, "neuron");
    lua_pushstring(L, info.activation->name);
    lua_setfield(L, -2, "activation");
    lua_createtable(L, 0, info.neuron->n_params);
    for (int k = 0; k < info.neuron->n_params; k++) {
        lua_pushnumber(L, info.params[k]);
        lua_setfield(L, -2, info.neuron->params[k].name);
    }
    lua_setfield(L, -2, "params");
    lua_pushstring(L, info.start == AP_START_SETTLED ? "settled" : "zero");
    lua_setfield(L, -2, "start");
    return 1;
}

int lapi_open_model(lua_State *L) {
    static const luaL_Reg meta[] = {
        {"__gc", model_gc}, {"__close", model_gc}, {"__tostring", l_model_tostring}, {NULL, NULL}};
    lapi_newclass(L, LAPI_MODEL, NULL, meta);
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"model_new", l_model_new},
                                   {"model_close", l_model_close},
                                   {"model_closed", l_model_closed},
                                   {"is_model", l_is_model},
                                   {"model_data", l_model_data},
                                   {"model_batch", l_model_batch},
                                   {"model_add_input", l_add_input},
                                   {"model_add_population", l_add_population},
                                   {"model_set_start", l_set_start},
                                   {"model_set_start_value", l_set_start_value},
                                   {"model_add_block", l_add_block},
                                   {"model_connect", l_connect},
                                   {"model_add_rule", l_add_rule},
                                   {"model_set_rule_aux", l_set_rule_aux},
                                   {"model_signal_size", l_signal_size},
                                   {"model_n_projections", l_n_projections},
                                   {"model_find_projection", l_find_projection},
                                   {"model_projection_info", l_projection_info},
                                   {"model_weights", l_weights},
                                   {"model_bias", l_bias},
                                   {"model_set_weights", l_set_weights},
                                   {"model_set_bias", l_set_bias},
                                   {"model_objects", l_objects},
                                   {"model_population_info", l_population_info},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    return 0;
}
