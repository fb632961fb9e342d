/* lapi_optim.c — apical.Optim: an optimiser (apical/optim.h) as a Lua object, kept alive with
 * its model (user value 1, and one of the model's users, so m:close() cannot free the weights
 * under it). Like lapi_model.c, these functions return nil and a message on failure for the Lua
 * half (apical/optim.lua) to raise at the user's line. */
#include <math.h>
#include <string.h>

#include "apical/error.h"
#include "apical/optim.h"
#include "lapi.h"

static int optim_gc(lua_State *L) {
    lapi_optim *op = luaL_checkudata(L, 1, LAPI_OPTIM);
    if (!op->o) return 0;
    ap_optim_free(&op->o);
    lapi_model_release(L, 1);
    return 0;
}

ap_optim *lapi_optim_check(lua_State *L, int idx) {
    lapi_optim *op = luaL_checkudata(L, idx, LAPI_OPTIM);
    if (!op->o) luaL_error(L, "the optimiser is closed");
    return op->o;
}

/* core.optim_new(m, kind, ids, opts) -> Optim, or nil and a message. kind: "sgd" or "adam";
 * ids: a list of projection indices (0-based); opts: {lr, momentum, beta1, beta2, eps,
 * weight_decay, clip, clip_mode = "none" | "per_tensor" | "global"}, checked by the Lua half. */
static int l_optim_new(lua_State *L) {
    lapi_model *mod = luaL_checkudata(L, 1, LAPI_MODEL);
    static const char *const kinds[] = {"sgd", "adam", NULL};
    int kind = luaL_checkoption(L, 2, NULL, kinds);
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_checktype(L, 4, LUA_TTABLE);
    if (mod->closed || !mod->m) return lapi_failf(L, "the model is closed");
    ap_optim_opts o;
    ap_optim_opts_default(&o);
    o.kind = kind == 0 ? AP_OPTIM_SGD : AP_OPTIM_ADAM;
    static const char *const keys[] = {"lr",  "momentum",     "beta1", "beta2",
                                       "eps", "weight_decay", "clip"};
    double *dst[] = {&o.lr, &o.momentum, &o.beta1, &o.beta2, &o.eps, &o.weight_decay, &o.clip};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        if (lua_getfield(L, 4, keys[k]) != LUA_TNIL) *dst[k] = luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    if (lua_getfield(L, 4, "clip_mode") != LUA_TNIL) {
        static const char *const modes[] = {"none", "per_tensor", "global", NULL};
        int m = luaL_checkoption(L, -1, NULL, modes);
        o.clip_mode = m == 0 ? AP_CLIP_NONE : m == 1 ? AP_CLIP_PER_TENSOR : AP_CLIP_GLOBAL;
    }
    lua_pop(L, 1);
    int n = (int)lua_rawlen(L, 3);
    int *ids = lapi_scratch(L, (size_t)(n + 1) * sizeof *ids);
    for (int k = 0; k < n; k++) {
        lua_rawgeti(L, 3, k + 1);
        ids[k] = (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    lapi_optim *op = lua_newuserdatauv(L, sizeof *op, 1);
    memset(op, 0, sizeof *op);
    luaL_setmetatable(L, LAPI_OPTIM);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    int rc = ap_optim_new(&op->o, mod->m, ids, n, &o);
    if (rc) return lapi_fail(L, rc);
    mod->users++;
    op->kind = kind;
    op->lr = o.lr;
    return 1;
}

static int l_is_optim(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, LAPI_OPTIM) != NULL);
    return 1;
}

static int l_optim_closed(lua_State *L) {
    lapi_optim *op = luaL_testudata(L, 1, LAPI_OPTIM);
    lua_pushboolean(L, !op || !op->o);
    return 1;
}

static int l_optim_close(lua_State *L) {
    luaL_checkudata(L, 1, LAPI_OPTIM);
    return optim_gc(L);
}

static int l_optim_model(lua_State *L) {
    luaL_checkudata(L, 1, LAPI_OPTIM);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

/* core.optim_field(o, key): "steps", "lr" or "kind"; nil for other keys. */
static int l_optim_field(lua_State *L) {
    lapi_optim *op = luaL_checkudata(L, 1, LAPI_OPTIM);
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "kind") == 0) {
        lua_pushstring(L, op->kind == 0 ? "sgd" : "adam");
    } else if (strcmp(key, "steps") == 0) {
        lua_pushinteger(L, ap_optim_steps(lapi_optim_check(L, 1)));
    } else if (strcmp(key, "lr") == 0) {
        lua_pushnumber(L, op->lr);
    } else {
        lua_pushnil(L);
    }
    return 1;
}

static int l_optim_tostring(lua_State *L) {
    lapi_optim *op = luaL_checkudata(L, 1, LAPI_OPTIM);
    if (!op->o)
        lua_pushliteral(L, "apical.Optim (closed)");
    else
        lua_pushfstring(L, "apical.Optim (%s, lr %f, %I steps)", op->kind == 0 ? "sgd" : "adam",
                        op->lr, (lua_Integer)ap_optim_steps(op->o));
    return 1;
}

/* The projection's info for an optimiser at index 1 and a projection id at idx; pushes nil and
 * a message (returning 0) if the optimiser does not hold it. */
static int held_info(lua_State *L, int idx, ap_projection_info *info, int *id) {
    ap_optim *o = lapi_optim_check(L, 1);
    *id = (int)luaL_checkinteger(L, idx);
    lua_getiuservalue(L, 1, 1);
    lapi_model *mod = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!mod || !mod->m) return lapi_failf(L, "the model is closed"), 0;
    int rc = ap_model_projection_info(mod->m, *id, info);
    if (rc) return lapi_fail(L, rc), 0;
    if (!ap_optim_grad_w(o, *id))
        return lapi_failf(L, "projection \"%s\" is not one of the optimiser's", info->name), 0;
    return 1;
}

/* core.optim_has(o, id) -> whether the optimiser holds projection id (no copy) */
static int l_optim_has(lua_State *L) {
    ap_optim *o = lapi_optim_check(L, 1);
    lua_pushboolean(L, ap_optim_grad_w(o, (int)luaL_checkinteger(L, 2)) != NULL);
    return 1;
}

/* core.optim_grad(o, id) -> dW (rows x cols, a copy), db ({rows}) or false */
static int l_optim_grad(lua_State *L) {
    ap_projection_info info;
    int id;
    if (!held_info(L, 2, &info, &id)) return 2;
    ap_optim *o = lapi_optim_check(L, 1);
    size_t shape[2] = {(size_t)info.rows, (size_t)info.cols};
    lapi_array *w = lapi_array_new(L, 2, shape);
    if (w->size) memcpy(w->data, ap_optim_grad_w(o, id), w->size * sizeof(double));
    const double *gb = ap_optim_grad_b(o, id);
    if (gb) {
        lapi_array *b = lapi_array_new(L, 1, shape);
        memcpy(b->data, gb, b->size * sizeof(double));
    } else {
        lua_pushboolean(L, 0);
    }
    return 2;
}

/* Checks array a (at stack index idx, or none) for a gradient of rows x cols values; pushes
 * nil and a message and returns 0 if it does not fit or holds a non-finite value. */
static int grad_fits(lua_State *L, const lapi_array *a, const ap_projection_info *info, int bias,
                     const char *method) {
    size_t rows = (size_t)info->rows, cols = bias ? 1 : (size_t)info->cols;
    if (!lapi_fits_matrix(a, rows, cols)) {
        char got[200];
        lapi_shape_str(a, got, sizeof got);
        if (bias)
            lapi_failf(L, "%s: projection \"%s\": db has shape %s, the bias needs {%d}", method,
                       info->name, got, info->rows);
        else
            lapi_failf(L, "%s: projection \"%s\": dW has shape %s, the weights are {%d, %d}",
                       method, info->name, got, info->rows, info->cols);
        return 0;
    }
    for (size_t k = 0; k < a->size; k++)
        if (!isfinite(a->data[k])) {
            if (bias)
                lapi_failf(L, "%s: projection \"%s\": db[%zu] = %g is not finite", method,
                           info->name, k + 1, a->data[k]);
            else
                lapi_failf(L, "%s: projection \"%s\": dW[%zu, %zu] = %g is not finite", method,
                           info->name, k / cols + 1, k % cols + 1, a->data[k]);
            return 0;
        }
    return 1;
}

/* core.optim_set_grad(o, id, dW, db or nil, scale or nil): with scale nil, the gradient becomes
 * (dW, db), a missing db meaning zero; with a scale, grad += scale * (dW, db), a missing db
 * adding nothing. Both arrays are checked before anything changes. true, or nil and a
 * message. */
static int l_optim_set_grad(lua_State *L) {
    ap_projection_info info;
    int id;
    int add = !lua_isnoneornil(L, 5);
    const char *method = add ? "add_grad" : "set_grad";
    if (!held_info(L, 2, &info, &id)) return 2;
    ap_optim *o = lapi_optim_check(L, 1);
    lapi_array *w = lapi_array_check(L, 3);
    lapi_array *b = lua_isnoneornil(L, 4) ? NULL : lapi_array_check(L, 4);
    double scale = add ? luaL_checknumber(L, 5) : 1.0;
    if (add && !isfinite(scale)) return lapi_failf(L, "add_grad: scale = %g is not finite", scale);
    if (!grad_fits(L, w, &info, 0, method)) return 2;
    if (b && !info.has_bias)
        return lapi_failf(L, "%s: projection \"%s\" has no bias, but db was given", method,
                          info.name);
    if (b && !grad_fits(L, b, &info, 1, method)) return 2;
    double *gw = ap_optim_grad_w(o, id), *gb = ap_optim_grad_b(o, id);
    for (size_t k = 0; k < w->size; k++)
        gw[k] = add ? gw[k] + scale * w->data[k] : w->data[k];
    if (gb) {
        if (b)
            for (size_t k = 0; k < b->size; k++)
                gb[k] = add ? gb[k] + scale * b->data[k] : b->data[k];
        else if (!add)
            memset(gb, 0, (size_t)info.rows * sizeof(double));
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_optim_zero(lua_State *L) {
    int rc = ap_optim_zero(lapi_optim_check(L, 1));
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.optim_add_from_sim(o, sim, scale) */
static int l_optim_add_from_sim(lua_State *L) {
    ap_optim *o = lapi_optim_check(L, 1);
    lapi_sim *sim = luaL_checkudata(L, 2, LAPI_SIM);
    double scale = luaL_checknumber(L, 3);
    if (!sim->s) return lapi_failf(L, "add_from_sim: the simulation is closed");
    int rc = ap_optim_add_from_sim(o, sim->s, scale);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_optim_step(lua_State *L) {
    int rc = ap_optim_step(lapi_optim_check(L, 1));
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_optim_set_lr(lua_State *L) {
    lapi_optim *op = luaL_checkudata(L, 1, LAPI_OPTIM);
    double lr = luaL_checknumber(L, 2);
    int rc = ap_optim_set_lr(lapi_optim_check(L, 1), lr);
    if (rc) return lapi_fail(L, rc);
    op->lr = lr;
    lua_pushboolean(L, 1);
    return 1;
}

/* core.optim_norms(o, id) -> norm of dW, norm of db or false (before clipping, last step) */
static int l_optim_norms(lua_State *L) {
    ap_projection_info info;
    int id;
    if (!held_info(L, 2, &info, &id)) return 2;
    double nw = 0, nb = 0;
    int rc = ap_optim_last_norms(lapi_optim_check(L, 1), id, &nw, &nb);
    if (rc) return lapi_fail(L, rc);
    lua_pushnumber(L, nw);
    if (info.has_bias)
        lua_pushnumber(L, nb);
    else
        lua_pushboolean(L, 0);
    return 2;
}

static int l_optim_save(lua_State *L) {
    ap_optim *o = lapi_optim_check(L, 1);
    int rc = ap_optim_save(o, luaL_checkstring(L, 2));
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_optim_load(lua_State *L) {
    ap_optim *o = lapi_optim_check(L, 1);
    int rc = ap_optim_load(o, luaL_checkstring(L, 2));
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

int lapi_open_optim(lua_State *L) {
    static const luaL_Reg meta[] = {
        {"__gc", optim_gc}, {"__close", optim_gc}, {"__tostring", l_optim_tostring}, {NULL, NULL}};
    lapi_newclass(L, LAPI_OPTIM, NULL, meta);
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"optim_new", l_optim_new},
                                   {"is_optim", l_is_optim},
                                   {"optim_closed", l_optim_closed},
                                   {"optim_close", l_optim_close},
                                   {"optim_model", l_optim_model},
                                   {"optim_field", l_optim_field},
                                   {"optim_grad", l_optim_grad},
                                   {"optim_has", l_optim_has},
                                   {"optim_set_grad", l_optim_set_grad},
                                   {"optim_zero", l_optim_zero},
                                   {"optim_add_from_sim", l_optim_add_from_sim},
                                   {"optim_step", l_optim_step},
                                   {"optim_set_lr", l_optim_set_lr},
                                   {"optim_norms", l_optim_norms},
                                   {"optim_save", l_optim_save},
                                   {"optim_load", l_optim_load},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    return 0;
}
