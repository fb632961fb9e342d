/* lapi_array.c — apical.Array: dense C-order arrays of doubles (weights, inputs, recordings),
 * their conversion from and to nested Lua tables, and their .npy / CSV files. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/csv.h"
#include "apical/error.h"
#include "apical/npy.h"
#include "lapi.h"

lapi_array *lapi_array_new(lua_State *L, int ndim, const size_t *shape) {
    if (ndim < 0 || ndim > AP_ARRAY_MAX_DIMS)
        lapi_errorf(L, "array: %d dimensions (at most %d)", ndim, AP_ARRAY_MAX_DIMS);
    size_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] && size > (SIZE_MAX / sizeof(double) - sizeof(lapi_array)) / shape[i])
            lapi_errorf(L, "array: shape too large");
        size *= shape[i];
    }
    lapi_array *a = lua_newuserdatauv(L, sizeof(lapi_array) + size * sizeof(double), 0);
    memset(a, 0, sizeof *a);
    a->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        a->shape[i] = shape[i];
    a->size = size;
    memset(a->data, 0, size * sizeof(double));
    luaL_setmetatable(L, LAPI_ARRAY);
    return a;
}

lapi_array *lapi_array_check(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, LAPI_ARRAY);
}

lapi_array *lapi_array_test(lua_State *L, int idx) {
    return luaL_testudata(L, idx, LAPI_ARRAY);
}

void lapi_shape_str(const lapi_array *a, char *buf, size_t n) {
    size_t len = (size_t)snprintf(buf, n, "{");
    for (int i = 0; i < a->ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%zu", i ? ", " : "", a->shape[i]);
    if (len < n) snprintf(buf + len, n - len, "}");
}

/* ---- nested tables ----------------------------------------------------------------------- */

/* Writes "[i][j]..." for the first `depth` indices into buf. */
static void index_str(const size_t *index, int depth, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < depth && len < n; k++)
        len += (size_t)snprintf(buf + len, n - len, "[%zu]", index[k] + 1);
}

/* Fills a->data from the nested table at the top of the stack, at nesting `depth`. */
static int fill_nested(lua_State *L, lapi_array *a, int depth, size_t *index, size_t *pos,
                       char *err, size_t n) {
    char where[160];
    size_t len = lua_rawlen(L, -1);
    if (len != a->shape[depth]) {
        index_str(index, depth, where, sizeof where);
        snprintf(err, n, "array: row %s has %zu elements, expected %zu (the rows must be equal)",
                 depth ? where : "(top level)", len, a->shape[depth]);
        return 0;
    }
    luaL_checkstack(L, 4, "array nesting");
    for (size_t i = 0; i < len; i++) {
        index[depth] = i;
        int t = lua_rawgeti(L, -1, (lua_Integer)i + 1);
        if (depth + 1 < a->ndim) {
            if (t != LUA_TTABLE) {
                index_str(index, depth + 1, where, sizeof where);
                snprintf(err, n, "array: element %s is %s, expected a table (a row)", where,
                         t == LUA_TNIL ? "nil" : lua_typename(L, t));
                lua_pop(L, 1);
                return 0;
            }
            int ok = fill_nested(L, a, depth + 1, index, pos, err, n);
            lua_pop(L, 1);
            if (!ok) return 0;
        } else {
            int isnum = 0;
            double v = lua_tonumberx(L, -1, &isnum);
            if (!isnum || t == LUA_TSTRING) {
                index_str(index, depth + 1, where, sizeof where);
                snprintf(err, n, "array: element %s is %s, expected a number", where,
                         t == LUA_TNIL ? "nil" : lua_typename(L, t));
                lua_pop(L, 1);
                return 0;
            }
            a->data[(*pos)++] = v;
            lua_pop(L, 1);
        }
    }
    return 1;
}

lapi_array *lapi_to_array(lua_State *L, int idx, char *err, size_t n) {
    idx = lua_absindex(L, idx);
    if (lapi_array_test(L, idx)) {
        lua_pushvalue(L, idx);
        return lua_touserdata(L, -1);
    }
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lapi_array *a = lapi_array_new(L, 0, NULL);
        a->data[0] = lua_tonumber(L, idx);
        return a;
    }
    if (lua_type(L, idx) != LUA_TTABLE) {
        snprintf(err, n, "expected an array or a nested table of numbers, got %s",
                 luaL_typename(L, idx));
        return NULL;
    }
    /* the shape from the first element at each depth */
    size_t shape[AP_ARRAY_MAX_DIMS];
    int ndim = 0;
    lua_pushvalue(L, idx);
    for (;;) {
        if (ndim == AP_ARRAY_MAX_DIMS) {
            lua_pop(L, ndim + 1);
            snprintf(err, n, "array: more than %d levels of nesting", AP_ARRAY_MAX_DIMS);
            return NULL;
        }
        shape[ndim++] = lua_rawlen(L, -1);
        if (shape[ndim - 1] == 0) break;
        if (lua_rawgeti(L, -1, 1) != LUA_TTABLE) {
            lua_pop(L, 1);
            break;
        }
    }
    lua_pop(L, ndim);
    lapi_array *a = lapi_array_new(L, ndim, shape);
    lua_pushvalue(L, idx);
    size_t index[AP_ARRAY_MAX_DIMS] = {0}, pos = 0;
    int ok = fill_nested(L, a, 0, index, &pos, err, n);
    lua_pop(L, 1);
    if (!ok) {
        lua_pop(L, 1);
        return NULL;
    }
    return a;
}

/* Reads a shape table {d1, d2, ...} at idx into shape; returns ndim or -1 with err set. */
static int read_shape(lua_State *L, int idx, size_t *shape, char *err, size_t n) {
    if (lua_type(L, idx) != LUA_TTABLE) {
        snprintf(err, n, "a shape must be a table of sizes like {2, 3}, got %s",
                 luaL_typename(L, idx));
        return -1;
    }
    size_t len = lua_rawlen(L, idx);
    if (len > AP_ARRAY_MAX_DIMS) {
        snprintf(err, n, "a shape has at most %d dimensions, got %zu", AP_ARRAY_MAX_DIMS, len);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        lua_pop(L, 1);
        if (!isint || v < -1) {
            snprintf(err, n, "shape entry %zu must be a size >= 0", i + 1);
            return -1;
        }
        shape[i] = v < 0 ? SIZE_MAX : (size_t)v; /* -1: inferred by reshape */
    }
    return (int)len;
}

/* ---- constructors ------------------------------------------------------------------------ */

/* apical.array(nested_table) or apical.array(flat_table, shape): raises at the caller. */
static int l_array(lua_State *L) {
    char err[256];
    if (!lua_isnoneornil(L, 2)) {
        size_t shape[AP_ARRAY_MAX_DIMS];
        int ndim = read_shape(L, 2, shape, err, sizeof err);
        if (ndim < 0) return lapi_errorf(L, "%s", err);
        lapi_array *flat = lapi_to_array(L, 1, err, sizeof err);
        if (!flat) return lapi_errorf(L, "%s", err);
        size_t size = 1;
        for (int i = 0; i < ndim; i++) {
            if (shape[i] == SIZE_MAX) return lapi_errorf(L, "array: shape entry -1 not allowed");
            size *= shape[i];
        }
        if (size != flat->size)
            return lapi_errorf(L, "array: %zu values do not fill a shape of %zu", flat->size, size);
        lapi_array *a = lapi_array_new(L, ndim, shape);
        memcpy(a->data, flat->data, size * sizeof(double));
        return 1;
    }
    lapi_array *src = lapi_array_test(L, 1);
    lapi_array *a = lapi_to_array(L, 1, err, sizeof err);
    if (!a) return lapi_errorf(L, "%s", err);
    if (src) { /* apical.array(an_array) copies */
        lapi_array *c = lapi_array_new(L, a->ndim, a->shape);
        memcpy(c->data, a->data, a->size * sizeof(double));
    }
    return 1;
}

/* core.try_array(v): the array, or nil and a message. */
static int l_try_array(lua_State *L) {
    char err[256];
    if (!lapi_to_array(L, 1, err, sizeof err)) return lapi_failf(L, "%s", err);
    return 1;
}

static int l_zeros(lua_State *L) {
    char err[256];
    size_t shape[AP_ARRAY_MAX_DIMS];
    int ndim;
    int has_value = !lua_isnoneornil(L, 2);
    double value = has_value ? luaL_checknumber(L, 2) : 0.0;
    if (lua_type(L, 1) == LUA_TNUMBER) { /* zeros(n) */
        lua_Integer n = luaL_checkinteger(L, 1);
        luaL_argcheck(L, n >= 0, 1, "a size must be >= 0");
        shape[0] = (size_t)n;
        ndim = 1;
    } else {
        ndim = read_shape(L, 1, shape, err, sizeof err);
        if (ndim < 0) return luaL_argerror(L, 1, err);
        for (int i = 0; i < ndim; i++)
            if (shape[i] == SIZE_MAX) return luaL_argerror(L, 1, "-1 is only for reshape");
    }
    lapi_array *a = lapi_array_new(L, ndim, shape);
    if (has_value)
        for (size_t i = 0; i < a->size; i++)
            a->data[i] = value;
    return 1;
}

/* The engine's reader allocates with malloc; until its data are copied into an Array, they are
 * owned by a guard userdata whose __gc frees them, so nothing leaks if Lua raises meanwhile. */
#define ARRAY_GUARD "apical.ArrayGuard"

static int guard_gc(lua_State *L) {
    ap_array_free(luaL_checkudata(L, 1, ARRAY_GUARD));
    return 0;
}

/* Reads path into a new Array pushed on the stack; 0, or the engine's code with nothing
 * pushed. */
static int read_npy(lua_State *L, const char *path) {
    ap_array *tmp = lua_newuserdatauv(L, sizeof *tmp, 0);
    memset(tmp, 0, sizeof *tmp);
    luaL_setmetatable(L, ARRAY_GUARD);
    int rc = ap_npy_read(path, tmp);
    if (rc) {
        lua_pop(L, 1);
        return rc;
    }
    lapi_array *a = lapi_array_new(L, tmp->ndim, tmp->shape);
    if (a->size) memcpy(a->data, tmp->data, a->size * sizeof(double));
    ap_array_free(tmp);
    lua_remove(L, -2); /* the guard */
    return 0;
}

static int l_load_npy(lua_State *L) {
    int rc = read_npy(L, luaL_checkstring(L, 1));
    if (rc) return lapi_raise(L, rc);
    return 1;
}

static int l_try_load_npy(lua_State *L) {
    int rc = read_npy(L, luaL_checkstring(L, 1));
    if (rc) return lapi_fail(L, rc);
    return 1;
}

/* ---- indexing ---------------------------------------------------------------------------- */

static size_t flat_index(lua_State *L, const lapi_array *a, int idx) {
    int isint = 0;
    lua_Integer i = lua_tointegerx(L, idx, &isint);
    if (!isint) lapi_errorf(L, "array index must be an integer, got %s", luaL_typename(L, idx));
    if (i < 1 || (size_t)i > a->size)
        lapi_errorf(L, "array index %lld out of range 1..%lld", (long long)i, (long long)a->size);
    return (size_t)(i - 1);
}

/* Flat offset of the indices at stack positions first..first+ndim-1 (1-based). */
static size_t multi_index(lua_State *L, const lapi_array *a, int first, const char *fn) {
    size_t off = 0;
    for (int k = 0; k < a->ndim; k++) {
        int isint = 0;
        lua_Integer i = lua_tointegerx(L, first + k, &isint);
        if (!isint)
            lapi_errorf(L, "%s: index %d must be an integer, got %s (the array is %d-D)", fn, k + 1,
                        luaL_typename(L, first + k), a->ndim);
        if (i < 1 || (size_t)i > a->shape[k])
            lapi_errorf(L, "%s: index %d = %lld is out of range 1..%lld", fn, k + 1, (long long)i,
                        (long long)a->shape[k]);
        off = off * a->shape[k] + (size_t)(i - 1);
    }
    return off;
}

static int push_shape(lua_State *L, const lapi_array *a) {
    lua_createtable(L, a->ndim, 0);
    for (int i = 0; i < a->ndim; i++) {
        lua_pushinteger(L, (lua_Integer)a->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int a_index(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        if (strcmp(k, "shape") == 0) return push_shape(L, a);
        if (strcmp(k, "ndim") == 0) {
            lua_pushinteger(L, a->ndim);
            return 1;
        }
        lua_getmetatable(L, 1);
        lua_getfield(L, -1, "methods");
        lua_getfield(L, -1, k);
        return 1; /* nil for unknown names, as a table would */
    }
    lua_pushnumber(L, a->data[flat_index(L, a, 2)]);
    return 1;
}

static int a_newindex(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING)
        return lapi_errorf(L,
                           "apical.Array: cannot set field \"%s\" (elements are a[i] or "
                           "a:set(i, j, ..., v))",
                           lua_tostring(L, 2));
    size_t i = flat_index(L, a, 2);
    a->data[i] = luaL_checknumber(L, 3);
    return 0;
}

static int a_len(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)lapi_array_check(L, 1)->size);
    return 1;
}

static int a_tostring(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    char shape[200];
    lapi_shape_str(a, shape, sizeof shape);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "apical.Array%s [", shape);
    luaL_addvalue(&b);
    size_t show = a->size < 6 ? a->size : 6;
    for (size_t i = 0; i < show; i++) {
        char num[40];
        snprintf(num, sizeof num, "%s%.6g", i ? ", " : "", a->data[i]);
        luaL_addstring(&b, num);
    }
    luaL_addstring(&b, a->size > show ? ", ...]" : "]");
    luaL_pushresult(&b);
    return 1;
}

static int a_at(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    int nargs = lua_gettop(L) - 1;
    if (nargs != a->ndim) return lapi_errorf(L, "at: %d indices for a %d-D array", nargs, a->ndim);
    lua_pushnumber(L, a->data[multi_index(L, a, 2, "at")]);
    return 1;
}

static int a_set(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    int nargs = lua_gettop(L) - 1;
    if (nargs != a->ndim + 1)
        return lapi_errorf(L, "set: a %d-D array takes %d indices and a value, got %d arguments",
                           a->ndim, a->ndim, nargs);
    size_t off = multi_index(L, a, 2, "set");
    a->data[off] = luaL_checknumber(L, 2 + a->ndim);
    return 0;
}

static void push_nested(lua_State *L, const lapi_array *a, int depth, size_t *pos) {
    if (depth == a->ndim) {
        lua_pushnumber(L, a->data[(*pos)++]);
        return;
    }
    luaL_checkstack(L, 3, "totable");
    lua_createtable(L, (int)a->shape[depth], 0);
    for (size_t i = 0; i < a->shape[depth]; i++) {
        push_nested(L, a, depth + 1, pos);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static int a_totable(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    size_t pos = 0;
    push_nested(L, a, 0, &pos);
    return 1;
}

static int a_reshape(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    char err[200];
    size_t shape[AP_ARRAY_MAX_DIMS];
    int ndim = read_shape(L, 2, shape, err, sizeof err);
    if (ndim < 0) return lapi_errorf(L, "reshape: %s", err);
    int infer = -1;
    size_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == SIZE_MAX) {
            if (infer >= 0) return lapi_errorf(L, "reshape: only one size may be -1");
            infer = i;
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || a->size % known)
            return lapi_errorf(L, "reshape: %zu elements cannot be divided by %zu", a->size, known);
        shape[infer] = a->size / known;
        known = a->size;
    }
    if (known != a->size) {
        char from[200];
        lapi_shape_str(a, from, sizeof from);
        return lapi_errorf(L,
                           "reshape: an array of shape %s has %zu elements, the new shape "
                           "has %zu",
                           from, a->size, known);
    }
    lapi_array *c = lapi_array_new(L, ndim, shape);
    if (a->size) memcpy(c->data, a->data, a->size * sizeof(double));
    return 1;
}

static int a_copy(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    lapi_array *c = lapi_array_new(L, a->ndim, a->shape);
    if (a->size) memcpy(c->data, a->data, a->size * sizeof(double));
    return 1;
}

/* a:rows(first, count [, out]): rows first .. first + count - 1 (1-based) of an array of two
 * or more dimensions, copied into out (an array of that shape, returned) or a new array. */
static int a_rows(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    lua_Integer first = luaL_checkinteger(L, 2);
    lua_Integer count = luaL_checkinteger(L, 3);
    if (a->ndim < 1) return luaL_error(L, "rows: the array has no rows");
    size_t n = a->shape[0];
    if (first < 1 || count < 0 || (size_t)(first - 1) > n ||
        (size_t)count > n - (size_t)(first - 1))
        return luaL_error(L, "rows(%I, %I): the array has rows 1..%I", first, count,
                          (lua_Integer)n);
    size_t shape[AP_ARRAY_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++)
        shape[d] = a->shape[d];
    shape[0] = (size_t)count;
    size_t row = n ? a->size / n : 0;
    lapi_array *c;
    if (!lua_isnoneornil(L, 4)) {
        c = lapi_array_check(L, 4);
        int same = c->ndim == a->ndim;
        for (int d = 0; same && d < a->ndim; d++)
            same = c->shape[d] == shape[d];
        if (!same) return luaL_error(L, "rows: out does not have the shape of %I rows", count);
        lua_settop(L, 4);
    } else {
        c = lapi_array_new(L, a->ndim, shape);
    }
    if (row && count)
        memmove(c->data, a->data + (size_t)(first - 1) * row, (size_t)count * row * sizeof(double));
    return 1;
}

static int a_fill(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    double v = luaL_checknumber(L, 2);
    for (size_t i = 0; i < a->size; i++)
        a->data[i] = v;
    lua_settop(L, 1);
    return 1;
}

static int a_sum(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    double s = 0.0;
    for (size_t i = 0; i < a->size; i++)
        s += a->data[i];
    lua_pushnumber(L, s);
    return 1;
}

static int a_max_abs(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    double m = 0.0;
    for (size_t i = 0; i < a->size; i++) {
        double v = fabs(a->data[i]);
        if (v > m || isnan(v)) m = v;
        if (isnan(m)) break;
    }
    lua_pushnumber(L, m);
    return 1;
}

static int a_save_npy(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    const char *path = luaL_checkstring(L, 2);
    int rc = ap_npy_write(path, a->data, a->ndim, a->shape);
    if (rc) return lapi_raise(L, rc);
    return 0;
}

/* a:save_csv(path [, colnames [, times]]): 1-D one column, 2-D rows x cols; 3-D (a recording,
 * times x batch x n): one row per (time, sample) with leading columns "step" (or "t" when the
 * times are given) and "sample", then the n values. colnames name the value columns. */
static int a_save_csv(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    const char *path = luaL_checkstring(L, 2);
    int has_names = !lua_isnoneornil(L, 3);
    if (has_names) luaL_checktype(L, 3, LUA_TTABLE);
    lapi_array *times = lua_isnoneornil(L, 4) ? NULL : lapi_array_check(L, 4);
    if (a->ndim < 1 || a->ndim > 3)
        return lapi_errorf(L, "save_csv: needs a 1-D, 2-D or 3-D array, this one is %d-D", a->ndim);
    size_t nvals = a->ndim == 1 ? 1 : a->shape[a->ndim - 1];
    size_t nrows = a->ndim == 1   ? a->shape[0]
                   : a->ndim == 2 ? a->shape[0]
                                  : a->shape[0] * a->shape[1];
    int lead = a->ndim == 3 ? 2 : 0;
    if (times && (a->ndim != 3 || times->size != a->shape[0]))
        return lapi_errorf(L, "save_csv: %zu times for %zu rows of a recording", times->size,
                           a->ndim == 3 ? a->shape[0] : 0);
    if (nvals + (size_t)lead > 100000) return lapi_errorf(L, "save_csv: too many columns");
    int ncols = (int)nvals + lead;
    if (has_names && lua_rawlen(L, 3) != nvals)
        return lapi_errorf(L, "save_csv: %d column names for %d value columns",
                           (int)lua_rawlen(L, 3), (int)nvals);
    const char **names = lapi_scratch(L, (size_t)ncols * sizeof *names);
    lua_newtable(L); /* keeps generated names alive */
    int keep = lua_gettop(L);
    if (lead) {
        names[0] = times ? "t" : "step";
        names[1] = "sample";
    }
    for (size_t j = 0; j < nvals; j++) {
        if (has_names) {
            lua_rawgeti(L, 3, (lua_Integer)j + 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                return lapi_errorf(L, "save_csv: column name %d is %s, expected a string",
                                   (int)j + 1, luaL_typename(L, -1));
        } else {
            lua_pushfstring(L, "c%d", (int)j + 1);
        }
        names[lead + (int)j] = lua_tostring(L, -1);
        lua_rawseti(L, keep, (lua_Integer)j + 1);
    }
    const double *data = a->data;
    if (lead) {
        double *buf = lapi_scratch(L, nrows * (size_t)ncols * sizeof(double));
        size_t batch = a->shape[1];
        for (size_t r = 0; r < nrows; r++) {
            size_t t = r / batch, b = r % batch;
            buf[r * (size_t)ncols] = times ? times->data[t] : (double)(t + 1);
            buf[r * (size_t)ncols + 1] = (double)(b + 1);
            memcpy(buf + r * (size_t)ncols + 2, a->data + r * nvals, nvals * sizeof(double));
        }
        data = buf;
    }
    int rc = ap_csv_write(path, names, ncols, data, nrows);
    if (rc) return lapi_raise(L, rc);
    return 0;
}

int lapi_open_array(lua_State *L) {
    static const luaL_Reg methods[] = {{"at", a_at},
                                       {"set", a_set},
                                       {"totable", a_totable},
                                       {"reshape", a_reshape},
                                       {"copy", a_copy},
                                       {"rows", a_rows},
                                       {"fill", a_fill},
                                       {"sum", a_sum},
                                       {"max_abs", a_max_abs},
                                       {"save_npy", a_save_npy},
                                       {"save_csv", a_save_csv},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__index", a_index},
                                    {"__newindex", a_newindex},
                                    {"__len", a_len},
                                    {"__tostring", a_tostring},
                                    {NULL, NULL}};
    luaL_newmetatable(L, ARRAY_GUARD);
    lua_pushcfunction(L, guard_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, LAPI_ARRAY);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"array", l_array},       {"try_array", l_try_array},       {"zeros", l_zeros},
        {"load_npy", l_load_npy}, {"try_load_npy", l_try_load_npy}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    return 0;
}
