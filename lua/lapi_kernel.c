/* lapi_kernel.c — calling registered kernels from Lua: core.kernel_call(name, {args}) turns a
 * table of named arguments into ap_arg values (numbers, booleans as 0/1, strings, arrays by
 * pointer, models, simulations, optimisers) and calls the kernel. Arrays are not copied: what a
 * kernel writes into them is what Lua sees. */
#include <string.h>

#include "apical/error.h"
#include "lapi.h"

/* Numbers, booleans (as 0/1) and strings. Returns 1 when the value is one of these, else 0. */
static int scalar_arg(lua_State *L, int t, ap_arg *arg) {
    if (t == LUA_TNUMBER) {
        arg->kind = AP_ARG_NUMBER;
        arg->number = lua_tonumber(L, -1);
        return 1;
    }
    if (t == LUA_TBOOLEAN) {
        arg->kind = AP_ARG_NUMBER;
        arg->number = lua_toboolean(L, -1) ? 1.0 : 0.0;
        return 1;
    }
    if (t == LUA_TSTRING) {
        arg->kind = AP_ARG_STRING;
        arg->string = lua_tostring(L, -1); /* the string stays in the argument table */
        return 1;
    }
    return 0;
}

/* An array, by pointer. Returns 1 (filled), 0 (message in err) or -1 (not an array). */
static int array_arg(lua_State *L, const char *kernel, const char *name, ap_arg *arg, char *err,
                     size_t n) {
    lapi_array *a = lapi_array_test(L, -1);
    if (!a) return -1;
    int max = (int)(sizeof arg->shape / sizeof arg->shape[0]);
    if (a->ndim > max) {
        snprintf(err, n, "kernel %s: argument %s has %d dimensions, kernels take at most %d",
                 kernel, name, a->ndim, max);
        return 0;
    }
    arg->kind = AP_ARG_ARRAY;
    arg->data = a->data;
    arg->ndim = a->ndim;
    for (int k = 0; k < a->ndim; k++)
        arg->shape[k] = a->shape[k];
    return 1;
}

/* Sets arg to the open object, or writes that it is closed. Returns 1 or 0. */
static int object_or_closed(const char *kernel, const char *name, ap_arg *arg, int kind,
                            void *object, const char *what, char *err, size_t n) {
    if (!object) {
        snprintf(err, n, "kernel %s: argument %s: the %s is closed", kernel, name, what);
        return 0;
    }
    arg->kind = kind;
    arg->object = object;
    return 1;
}

/* A model, simulation or optimiser. Returns 1 (filled), 0 (message in err) or -1 (none of
 * these). */
static int object_arg(lua_State *L, const char *kernel, const char *name, ap_arg *arg, char *err,
                      size_t n) {
    lapi_model *mod = luaL_testudata(L, -1, LAPI_MODEL);
    if (mod)
        return object_or_closed(kernel, name, arg, AP_ARG_MODEL, mod->closed ? NULL : mod->m,
                                "model", err, n);
    lapi_sim *sim = luaL_testudata(L, -1, LAPI_SIM);
    if (sim) return object_or_closed(kernel, name, arg, AP_ARG_SIM, sim->s, "simulation", err, n);
    lapi_optim *op = luaL_testudata(L, -1, LAPI_OPTIM);
    if (op) return object_or_closed(kernel, name, arg, AP_ARG_OPTIM, op->o, "optimiser", err, n);
    return -1;
}

/* The message for a value no kernel argument can be. Returns 0. */
static int refuse_arg(lua_State *L, int t, const char *kernel, const char *name, char *err,
                      size_t n) {
    if (t == LUA_TTABLE && !lua_getmetatable(L, -1)) {
        snprintf(err, n,
                 "kernel %s: argument %s is a table; pass numbers, strings, booleans, arrays "
                 "(apical.array { ... }), models, simulations or optimisers",
                 kernel, name);
        return 0;
    }
    if (t == LUA_TTABLE) lua_pop(L, 1); /* its metatable */
    snprintf(err, n,
             "kernel %s: argument %s cannot be passed to a kernel (got %s; pass numbers, strings, "
             "booleans, arrays, models, simulations or optimisers)",
             kernel, name, luaL_typename(L, -1));
    return 0;
}

/* Fills *arg from the value on top of the stack (key name). Returns 1, or 0 after writing a
 * message into err. */
static int to_arg(lua_State *L, const char *kernel, const char *name, ap_arg *arg, char *err,
                  size_t n) {
    memset(arg, 0, sizeof *arg);
    arg->name = name;
    int t = lua_type(L, -1);
    if (scalar_arg(L, t, arg)) return 1;
    int rc = array_arg(L, kernel, name, arg, err, n);
    if (rc < 0) rc = object_arg(L, kernel, name, arg, err, n);
    if (rc < 0) rc = refuse_arg(L, t, kernel, name, err, n);
    return rc;
}

const ap_kernel *lapi_kernel_prepare(lua_State *L, const char *name, int idx, ap_kernel_args *ka,
                                     char *err, size_t err_size) {
    idx = lua_absindex(L, idx);
    lapi_registry *reg = lapi_registry_get(L);
    lua_pop(L, 1);
    if (!reg->r) {
        snprintf(err, err_size, "the registry is closed");
        return NULL;
    }
    const ap_kernel *k = ap_registry_kernel(reg->r, name);
    if (!k) {
        snprintf(err, err_size, "%s", ap_last_error());
        return NULL;
    }
    if (lua_type(L, idx) != LUA_TTABLE) {
        snprintf(err, err_size, "kernel %s: its arguments are a table, got %s", name,
                 luaL_typename(L, idx));
        return NULL;
    }
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        lua_pop(L, 1);
    }
    ap_arg *args = lapi_scratch(L, (size_t)(count + 1) * sizeof *args);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            snprintf(err, err_size,
                     "kernel %s: arguments are named (a table like { x = X }), got a positional "
                     "value (key of type %s)",
                     name, luaL_typename(L, -2));
            lua_pop(L, 3);
            return NULL;
        }
        if (!to_arg(L, name, lua_tostring(L, -2), &args[n], err, err_size)) {
            lua_pop(L, 3);
            return NULL;
        }
        n++;
        lua_pop(L, 1);
    }
    ka->n = n;
    ka->args = args;
    return k;
}

/* core.kernel_call(name, args) -> true, or nil and a message (the kernel's, which names it). */
static int l_kernel_call(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    char err[512];
    ap_kernel_args ka;
    const ap_kernel *k = lapi_kernel_prepare(L, name, 2, &ka, err, sizeof err);
    if (!k) return lapi_failf(L, "%s", err);
    int rc = ap_kernel_invoke(k, &ka);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

int lapi_open_kernel(lua_State *L) {
    static const luaL_Reg fns[] = {{"kernel_call", l_kernel_call}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    return 0;
}
