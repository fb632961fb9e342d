/* lapi.h — what the files of the Lua binding (the C module apical.core) share: the userdata
 * kinds, their metatable names, and the error conventions. Internal to lua/; not installed.
 *
 * Error conventions. Functions the Lua half (apical.lua) calls return `nil, message` when the
 * engine refuses something (lapi_fail), so the Lua half can raise the message at the user's
 * line. Functions and methods a user calls directly (Array methods, datasets) raise with
 * luaL_error, whose position is the caller's: the user's line. Before anything can raise, every
 * C resource has an owner (a userdata with __gc, or a GC-managed scratch buffer), so a longjmp
 * leaks nothing. */
#ifndef APICAL_LAPI_H
#define APICAL_LAPI_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>

#include "apical/dataset.h"
#include "apical/model.h"
#include "apical/npy.h"
#include "apical/optim.h"
#include "apical/registry.h"
#include "apical/sim.h"

#define LAPI_EXPORT __attribute__((visibility("default")))

#define LAPI_ARRAY "apical.Array"
#define LAPI_REGISTRY "apical.Registry"
#define LAPI_MODEL "apical.Model"
#define LAPI_SIM "apical.Sim"
#define LAPI_DATASET "apical.Dataset"
#define LAPI_BATCHER "apical.Batcher"
#define LAPI_OPTIM "apical.Optim"

/* ---- errors (lapi_util.c) ---------------------------------------------------------------- */
/* Pushes nil and the engine's last message (or ap_strerror(code)); returns 2. */
int lapi_fail(lua_State *L, int code);
/* Pushes nil and a formatted message; returns 2. */
int lapi_failf(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* luaL_error with C's printf formats (%zu, %g, ...), at the caller's position. */
int lapi_errorf(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Raises the engine's last message (or ap_strerror(code)) at the caller's position. */
int lapi_raise(lua_State *L, int code);
/* A GC-managed scratch buffer of n bytes (pushed on the stack): freed by the collector, so it
 * cannot leak when something raises. */
void *lapi_scratch(lua_State *L, size_t n);
/* Creates metatable `name` with `methods` in its __index table and `meta` as metamethods; the
 * metatable stays on the stack. */
void lapi_newclass(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta);

/* ---- arrays (lapi_array.c) --------------------------------------------------------------- */
/* A dense C-order array of doubles stored inside its userdata (so the collector knows its
 * size). ndim 0..AP_ARRAY_MAX_DIMS; ndim 0 is a scalar of size 1. */
typedef struct lapi_array {
    int ndim;
    size_t shape[AP_ARRAY_MAX_DIMS];
    size_t size;
    double data[];
} lapi_array;

/* Pushes a new zero-filled array; raises on an impossible size. */
lapi_array *lapi_array_new(lua_State *L, int ndim, const size_t *shape);
lapi_array *lapi_array_check(lua_State *L, int idx);
lapi_array *lapi_array_test(lua_State *L, int idx);
/* Converts the value at idx (an Array: used as is; a nested table of numbers) to an array
 * pushed on the stack. On failure pushes nothing, writes a message into err and returns NULL. */
lapi_array *lapi_to_array(lua_State *L, int idx, char *err, size_t n);
/* "{2, 3}" */
void lapi_shape_str(const lapi_array *a, char *buf, size_t n);
/* Does array a fit a rows x cols matrix? 2-D: the same shape; 1-D: rows == 1 (a one-to-one
 * projection's weights) or cols == 1 (a bias). (lapi_model.c) */
int lapi_fits_matrix(const lapi_array *a, size_t rows, size_t cols);
int lapi_open_array(lua_State *L);

/* ---- registry, models, simulations, datasets --------------------------------------------- */
/* The registry of this Lua state: created on first use, kept in the Lua registry. */
typedef struct lapi_registry {
    ap_registry *r;
    int users;  /* models that still need r */
    int closed; /* __gc/__close ran; r is freed with its last user */
} lapi_registry;

typedef struct lapi_model {
    ap_model *m;
    int users; /* simulations that still need m */
    int closed;
} lapi_model;

typedef struct lapi_sim {
    ap_sim *s;
    lua_Integer run_id; /* incremented by every run: results know whether they are current */
} lapi_sim;

/* An optimiser; user value 1 is its model, which counts it among its users. */
typedef struct lapi_optim {
    ap_optim *o;
    int kind;  /* 0: sgd, 1: adam */
    double lr; /* the current learning rate (the engine has no getter) */
} lapi_optim;

/* The registry's userdata (pushed), creating it on first use. */
lapi_registry *lapi_registry_get(lua_State *L);
/* Drops one user of the registry (uv 1 of a model at index idx). */
void lapi_registry_release(lua_State *L, int model_idx);
/* Drops one user of the model behind a simulation at index idx. */
void lapi_model_release(lua_State *L, int sim_idx);

int lapi_open_registry(lua_State *L);
int lapi_open_model(lua_State *L);
int lapi_open_sim(lua_State *L);
int lapi_open_data(lua_State *L);
int lapi_open_optim(lua_State *L);
int lapi_open_kernel(lua_State *L);
int lapi_mkdir(lua_State *L); /* lapi_fs.c */
int lapi_open_comm(lua_State *L);

/* The kernel `name` and its arguments from the table at idx (named values, as core.kernel_call
 * takes them) in *ka, whose storage is a scratch value pushed on the stack: keep it and the
 * table there while ka is in use. NULL after writing a message into err (nothing pushed). */
const ap_kernel *lapi_kernel_prepare(lua_State *L, const char *name, int idx, ap_kernel_args *ka,
                                     char *err, size_t err_size);

/* The open optimiser at idx; raises if it is closed. */
ap_optim *lapi_optim_check(lua_State *L, int idx);

/* core.fs: checksums, durable writes, directories, locks (lapi_fs.c). */
int lapi_open_fs(lua_State *L);

#endif
