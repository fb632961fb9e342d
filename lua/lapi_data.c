/* lapi_data.c — apical.Dataset and its minibatch iterator: datasets from IDX files or arrays,
 * splits and subsets (views), samples, and batches { batch =, seed =, shuffle =, drop_last =,
 * epoch = }. Users call these directly, so errors are raised at the caller's line. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "apical/error.h"
#include "apical/idx.h"
#include "lapi.h"

typedef struct lapi_dataset {
    ap_dataset *ds;
} lapi_dataset;

typedef struct lapi_batcher {
    ap_batcher *bt;
    int batch;
    size_t d, k;
    int labels;
} lapi_batcher;

static int dataset_gc(lua_State *L) {
    lapi_dataset *d = luaL_checkudata(L, 1, LAPI_DATASET);
    ap_dataset_free(&d->ds);
    return 0;
}

static int batcher_gc(lua_State *L) {
    lapi_batcher *b = luaL_checkudata(L, 1, LAPI_BATCHER);
    ap_batcher_free(&b->bt);
    return 0;
}

/* Pushes an empty dataset userdata; fill ->ds afterwards (the __gc copes with NULL). */
static lapi_dataset *push_dataset(lua_State *L) {
    lapi_dataset *d = lua_newuserdatauv(L, sizeof *d, 0);
    d->ds = NULL;
    luaL_setmetatable(L, LAPI_DATASET);
    return d;
}

static ap_dataset *check_dataset(lua_State *L, int idx) {
    lapi_dataset *d = luaL_checkudata(L, idx, LAPI_DATASET);
    if (!d->ds) luaL_error(L, "the dataset is closed");
    return d->ds;
}

/* The number of classes of an IDX labels file when none is given: the largest label + 1, which
 * must not exceed max(samples, LAPI_MAX_INFERRED_CLASSES): one stray label of 1e8 would
 * otherwise make a one-hot target of 1e8 columns per sample. Labels are not renumbered (label
 * 9 stays class 10 of the one-hot target), so a sparse set of labels is taken as it is. */
#define LAPI_MAX_INFERRED_CLASSES 1000

static int infer_classes(lua_State *L, const char *labels, lua_Integer *classes) {
    ap_idx lab;
    int rc = ap_idx_read(labels, &lab);
    if (rc) return lapi_raise(L, rc);
    double mx = -1;
    size_t at = 0;
    for (size_t i = 0; i < lab.count; i++)
        if (lab.data[i] > mx) mx = lab.data[i], at = i;
    size_t n = lab.count;
    ap_idx_free(&lab);
    if (!(mx >= 0) || mx > 0x7ffffffe)
        return lapi_errorf(L, "file %s: no usable labels (largest %g)", labels, mx);
    double bound = n > LAPI_MAX_INFERRED_CLASSES ? (double)n : LAPI_MAX_INFERRED_CLASSES;
    if (mx + 1 > bound)
        return lapi_errorf(
            L,
            "file %s: label %.0f (sample %zu) would make %.0f classes for %zu "
            "samples (at most max(samples, %d) are inferred); give classes "
            "explicitly, apical.dataset.idx(images, labels, classes), if it is meant",
            labels, mx, at + 1, mx + 1, n, LAPI_MAX_INFERRED_CLASSES);
    *classes = (lua_Integer)mx + 1;
    return 0;
}

/* core.dataset_idx(images, labels [, classes [, mean, std]]): classes defaults to the largest
 * label + 1; with mean and std the inputs are standardised as they are loaded (apical/data.lua
 * takes them as the option standardize = { mean, std }). */
static int l_dataset_idx(lua_State *L) {
    const char *images = luaL_checkstring(L, 1);
    const char *labels = luaL_checkstring(L, 2);
    lua_Integer classes = 0;
    if (!lua_isnoneornil(L, 3)) {
        classes = luaL_checkinteger(L, 3);
        luaL_argcheck(L, classes >= 1 && classes <= 0x7fffffff, 3, "classes must be >= 1");
    } else {
        infer_classes(L, labels, &classes);
    }
    const int standardize = !lua_isnoneornil(L, 4);
    const double mean = standardize ? luaL_checknumber(L, 4) : 0.0;
    const double std = standardize ? luaL_checknumber(L, 5) : 1.0;
    lapi_dataset *d = push_dataset(L);
    int rc = standardize
                 ? ap_dataset_from_idx_standardized(images, labels, (int)classes, mean, std, &d->ds)
                 : ap_dataset_from_idx(images, labels, (int)classes, &d->ds);
    if (rc) return lapi_raise(L, rc);
    return 1;
}

/* core.dataset_arrays(X, Y or nil, labels or nil, classes or nil): X and Y are 2-D arrays,
 * labels a table of integers 0..classes-1. Returns the dataset, or nil and a message. */
static int l_dataset_arrays(lua_State *L) {
    lapi_array *X = lapi_array_check(L, 1);
    lapi_array *Y = lua_isnoneornil(L, 2) ? NULL : lapi_array_check(L, 2);
    int has_labels = !lua_isnoneornil(L, 3);
    if (X->ndim != 2)
        return lapi_failf(L, "dataset: inputs must be a 2-D array (samples x inputs), got %d-D",
                          X->ndim);
    size_t n = X->shape[0], d = X->shape[1], k = 0;
    if (Y) {
        if (Y->ndim != 2 || Y->shape[0] != n)
            return lapi_failf(L, "dataset: targets must be a 2-D array with %zu rows", n);
        k = Y->shape[1];
    }
    int *labels = NULL;
    if (has_labels) {
        luaL_checktype(L, 3, LUA_TTABLE);
        if (lua_rawlen(L, 3) != n)
            return lapi_failf(L, "dataset: %zu labels for %zu samples", (size_t)lua_rawlen(L, 3),
                              n);
        labels = lapi_scratch(L, (n + 1) * sizeof *labels);
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, 3, (lua_Integer)i + 1);
            int isint = 0;
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            lua_pop(L, 1);
            if (!isint || v < 0 || v > 0x7fffffff)
                return lapi_failf(L, "dataset: label %zu is not an integer >= 0", i + 1);
            labels[i] = (int)v;
        }
        if (!Y) {
            lua_Integer classes = luaL_optinteger(L, 4, 0);
            if (classes < 1) {
                for (size_t i = 0; i < n; i++)
                    if ((lua_Integer)labels[i] + 1 > classes) classes = labels[i] + 1;
            }
            k = (size_t)classes;
        }
    }
    lapi_dataset *ds = push_dataset(L);
    int rc = ap_dataset_from_arrays(n, d, X->data, k, Y ? Y->data : NULL, labels, &ds->ds);
    if (rc) return lapi_fail(L, rc);
    return 1;
}

static int l_size(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)ap_dataset_size(check_dataset(L, 1)));
    return 1;
}

static int l_input_dim(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)ap_dataset_input_dim(check_dataset(L, 1)));
    return 1;
}

static int l_target_dim(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)ap_dataset_target_dim(check_dataset(L, 1)));
    return 1;
}

/* ds:split(n) -> the first n samples and the rest, as two datasets. */
static int l_split(lua_State *L) {
    ap_dataset *ds = check_dataset(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    if (n < 0 || (size_t)n > ap_dataset_size(ds))
        return lapi_errorf(L, "split: %lld is outside 0..%zu (the dataset's size)", (long long)n,
                           ap_dataset_size(ds));
    lapi_dataset *a = push_dataset(L);
    lapi_dataset *b = push_dataset(L);
    int rc = ap_dataset_split(ds, (size_t)n, &a->ds, &b->ds);
    if (rc) return lapi_raise(L, rc);
    return 2;
}

/* ds:subset(start, count): samples start .. start + count - 1 (1-based). */
static int l_subset(lua_State *L) {
    ap_dataset *ds = check_dataset(L, 1);
    lua_Integer start = luaL_checkinteger(L, 2);
    lua_Integer count = luaL_checkinteger(L, 3);
    size_t n = ap_dataset_size(ds);
    if (start < 1 || count < 0 || (size_t)(start - 1) > n ||
        (size_t)count > n - (size_t)(start - 1))
        return lapi_errorf(L, "subset(%lld, %lld): the dataset has samples 1..%zu",
                           (long long)start, (long long)count, n);
    lapi_dataset *d = push_dataset(L);
    int rc = ap_dataset_subset(ds, (size_t)(start - 1), (size_t)count, &d->ds);
    if (rc) return lapi_raise(L, rc);
    return 1;
}

/* ds:sample(i) -> x {d}, y {k}, label (or nil): sample i (1-based). */
static int l_sample(lua_State *L) {
    ap_dataset *ds = check_dataset(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    size_t n = ap_dataset_size(ds);
    if (i < 1 || (size_t)i > n)
        return lapi_errorf(L, "sample %lld: the dataset has samples 1..%zu", (long long)i, n);
    size_t d = ap_dataset_input_dim(ds), k = ap_dataset_target_dim(ds);
    lapi_array *x = lapi_array_new(L, 1, &d);
    memcpy(x->data, ap_dataset_inputs(ds) + (size_t)(i - 1) * d, d * sizeof(double));
    lapi_array *y = lapi_array_new(L, 1, &k);
    memcpy(y->data, ap_dataset_targets(ds) + (size_t)(i - 1) * k, k * sizeof(double));
    const int *labels = ap_dataset_labels(ds);
    if (labels)
        lua_pushinteger(L, labels[i - 1]);
    else
        lua_pushnil(L);
    return 3;
}

/* ds:standardize(mean, std): a new dataset with inputs (x - mean) / std. */
static int l_standardize(lua_State *L) {
    ap_dataset *ds = check_dataset(L, 1);
    double mean = luaL_checknumber(L, 2);
    double std = luaL_checknumber(L, 3);
    lapi_dataset *d = push_dataset(L);
    int rc = ap_dataset_standardize(ds, mean, std, &d->ds);
    if (rc) return lapi_raise(L, rc);
    return 1;
}

/* ds:inputs(), ds:targets(): copies of the whole n x d (n x k) arrays. */
static int push_matrix(lua_State *L, const double *src, size_t n, size_t d) {
    size_t shape[2] = {n, d};
    lapi_array *a = lapi_array_new(L, 2, shape);
    if (n && d) memcpy(a->data, src, n * d * sizeof(double));
    return 1;
}

static int l_inputs(lua_State *L) {
    ap_dataset *ds = check_dataset(L, 1);
    return push_matrix(L, ap_dataset_inputs(ds), ap_dataset_size(ds), ap_dataset_input_dim(ds));
}

static int l_targets(lua_State *L) {
    ap_dataset *ds = check_dataset(L, 1);
    return push_matrix(L, ap_dataset_targets(ds), ap_dataset_size(ds), ap_dataset_target_dim(ds));
}

static int l_ds_tostring(lua_State *L) {
    lapi_dataset *d = luaL_checkudata(L, 1, LAPI_DATASET);
    if (!d->ds) {
        lua_pushliteral(L, "apical.Dataset (closed)");
        return 1;
    }
    char buf[200];
    snprintf(buf, sizeof buf, "apical.Dataset (%zu samples, %zu inputs, %zu targets%s)",
             ap_dataset_size(d->ds), ap_dataset_input_dim(d->ds), ap_dataset_target_dim(d->ds),
             ap_dataset_labels(d->ds) ? ", labels" : "");
    lua_pushstring(L, buf);
    return 1;
}

/* The iterator of ds:batches: X (batch x d), Y (batch x k), labels (a table of count labels, or
 * nil), count. Rows past count (the short last batch) are zero. nil when the epoch is over. */
static int batches_next(lua_State *L) {
    lapi_batcher *b = luaL_checkudata(L, lua_upvalueindex(1), LAPI_BATCHER);
    if (!b->bt) return 0;
    size_t shx[2] = {(size_t)b->batch, b->d}, shy[2] = {(size_t)b->batch, b->k};
    lapi_array *X = lapi_array_new(L, 2, shx);
    lapi_array *Y = lapi_array_new(L, 2, shy);
    int *labels = b->labels ? lapi_scratch(L, (size_t)b->batch * sizeof *labels) : NULL;
    int count = 0;
    int rc = ap_batcher_next(b->bt, X->data, Y->data, labels, &count);
    if (rc < 0) return lapi_raise(L, rc);
    if (rc == 0) return 0;
    if (labels) {
        lua_createtable(L, count, 0);
        for (int i = 0; i < count; i++) {
            lua_pushinteger(L, labels[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_remove(L, -2); /* the scratch buffer */
    } else {
        lua_pushnil(L);
    }
    lua_pushinteger(L, count);
    return 4;
}

/* ds:batches { batch = 128, seed = 0, shuffle = false, drop_last = false, epoch = 0 } */
static int l_batches(lua_State *L) {
    ap_dataset *ds = check_dataset(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    static const char *const known[] = {"batch", "seed", "shuffle", "drop_last", "epoch", NULL};
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        int ok = 0;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (int i = 0; known[i]; i++)
                if (strcmp(known[i], lua_tostring(L, -2)) == 0) ok = 1;
        if (!ok)
            return lapi_errorf(L,
                               "batches: unknown option %s%s%s (options: batch, seed, "
                               "shuffle, drop_last, epoch)",
                               lua_type(L, -2) == LUA_TSTRING ? "\"" : "",
                               lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                              : "(not a name)",
                               lua_type(L, -2) == LUA_TSTRING ? "\"" : "");
        lua_pop(L, 1);
    }
    lua_Integer batch = 0, seed = 0, epoch = 0;
    int shuffle = 0, drop_last = 0, isint = 0;
    if (lua_getfield(L, 2, "batch") == LUA_TNIL)
        return lapi_errorf(L, "batches: option batch (the number of samples per batch) is "
                              "required");
    batch = lua_tointegerx(L, -1, &isint);
    if (!isint || batch < 1 || batch > 0x7fffffff)
        return lapi_errorf(L, "batches: batch must be a positive integer");
    if (lua_getfield(L, 2, "seed") != LUA_TNIL) {
        seed = lua_tointegerx(L, -1, &isint);
        if (!isint || seed < 0) return lapi_errorf(L, "batches: seed must be an integer >= 0");
    }
    if (lua_getfield(L, 2, "epoch") != LUA_TNIL) {
        epoch = lua_tointegerx(L, -1, &isint);
        if (!isint || epoch < 0) return lapi_errorf(L, "batches: epoch must be an integer >= 0");
    }
    if (lua_getfield(L, 2, "shuffle") != LUA_TNIL) {
        if (!lua_isboolean(L, -1)) return lapi_errorf(L, "batches: shuffle must be a boolean");
        shuffle = lua_toboolean(L, -1);
    }
    if (lua_getfield(L, 2, "drop_last") != LUA_TNIL) {
        if (!lua_isboolean(L, -1)) return lapi_errorf(L, "batches: drop_last must be a boolean");
        drop_last = lua_toboolean(L, -1);
    }
    lapi_batcher *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, LAPI_BATCHER);
    b->batch = (int)batch;
    b->d = ap_dataset_input_dim(ds);
    b->k = ap_dataset_target_dim(ds);
    b->labels = ap_dataset_labels(ds) != NULL;
    int rc = ap_batcher_new(ds, (int)batch, (uint64_t)seed, shuffle, drop_last, &b->bt);
    if (rc) return lapi_raise(L, rc);
    if (epoch && (rc = ap_batcher_reset(b->bt, (uint64_t)epoch))) return lapi_raise(L, rc);
    lua_pushcclosure(L, batches_next, 1);
    return 1;
}

int lapi_open_data(lua_State *L) {
    static const luaL_Reg methods[] = {{"size", l_size},
                                       {"input_dim", l_input_dim},
                                       {"target_dim", l_target_dim},
                                       {"split", l_split},
                                       {"subset", l_subset},
                                       {"sample", l_sample},
                                       {"inputs", l_inputs},
                                       {"targets", l_targets},
                                       {"batches", l_batches},
                                       {"standardize", l_standardize},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", dataset_gc},
                                    {"__close", dataset_gc},
                                    {"__tostring", l_ds_tostring},
                                    {"__len", l_size},
                                    {NULL, NULL}};
    lapi_newclass(L, LAPI_DATASET, methods, meta);
    lua_pop(L, 1);
    static const luaL_Reg bmeta[] = {{"__gc", batcher_gc}, {"__close", batcher_gc}, {NULL, NULL}};
    lapi_newclass(L, LAPI_BATCHER, NULL, bmeta);
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"dataset_idx", l_dataset_idx}, {"dataset_arrays", l_dataset_arrays}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    return 0;
}
