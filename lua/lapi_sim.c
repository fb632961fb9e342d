/* lapi_sim.c — apical.Sim: compiled simulations as Lua objects: inputs, runs (options table in,
 * statistics and recordings out), reading and writing signals, accumulated updates. Like
 * lapi_model.c, these return nil and the engine's message for the Lua half to raise. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "apical/error.h"
#include "lapi.h"

static int sim_gc(lua_State *L) {
    lapi_sim *sim = luaL_checkudata(L, 1, LAPI_SIM);
    if (!sim->s) return 0;
    ap_sim_free(&sim->s);
    lapi_model_release(L, 1);
    return 0;
}

static ap_sim *check_sim(lua_State *L, int idx) {
    lapi_sim *sim = luaL_checkudata(L, idx, LAPI_SIM);
    if (!sim->s) luaL_error(L, "the simulation is closed");
    return sim->s;
}

/* core.compile(m): a simulation of model m, or nil and a message. */
static int l_compile(lua_State *L) {
    lapi_model *mod = luaL_checkudata(L, 1, LAPI_MODEL);
    if (mod->closed || !mod->m) return lapi_failf(L, "the model is closed");
    lapi_sim *sim = lua_newuserdatauv(L, sizeof *sim, 2);
    memset(sim, 0, sizeof *sim);
    luaL_setmetatable(L, LAPI_SIM);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 2);
    int rc = ap_model_compile(mod->m, &sim->s);
    if (rc) return lapi_fail(L, rc);
    mod->users++;
    return 1;
}

static int l_sim_close(lua_State *L) {
    luaL_checkudata(L, 1, LAPI_SIM);
    return sim_gc(L);
}

static int l_sim_closed(lua_State *L) {
    lapi_sim *sim = luaL_testudata(L, 1, LAPI_SIM);
    lua_pushboolean(L, !sim || !sim->s);
    return 1;
}

static int l_is_sim(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, LAPI_SIM) != NULL);
    return 1;
}

static int l_sim_data(lua_State *L) {
    luaL_checkudata(L, 1, LAPI_SIM);
    lua_getiuservalue(L, 1, 2);
    return 1;
}

static int l_sim_model(lua_State *L) {
    luaL_checkudata(L, 1, LAPI_SIM);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

static int l_sim_tostring(lua_State *L) {
    lapi_sim *sim = luaL_checkudata(L, 1, LAPI_SIM);
    if (!sim->s) {
        lua_pushliteral(L, "apical.Sim (closed)");
    } else {
        lua_pushfstring(L, "apical.Sim (batch %d, %I state variables)",
                        ap_model_batch(ap_sim_model(sim->s)),
                        (lua_Integer)ap_sim_state_size(sim->s));
    }
    return 1;
}

static int l_sim_state_size(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)ap_sim_state_size(check_sim(L, 1)));
    return 1;
}

static int l_sim_run_id(lua_State *L) {
    lapi_sim *sim = luaL_checkudata(L, 1, LAPI_SIM);
    lua_pushinteger(L, sim->run_id);
    return 1;
}

/* Checks that array a can hold signal `name` of a batch: batch x n values; a 2-D array must
 * have exactly that shape. Returns n, or -1 after pushing nil and a message. */
static int signal_fit(lua_State *L, ap_sim *s, const char *what, const char *name,
                      const lapi_array *a) {
    int n = 0;
    int rc = ap_model_signal_size(ap_sim_model(s), name, &n);
    if (rc) {
        lapi_fail(L, rc);
        return -1;
    }
    size_t batch = (size_t)ap_model_batch(ap_sim_model(s));
    int ok = a->ndim == 2 ? a->shape[0] == batch && a->shape[1] == (size_t)n
                          : a->size == batch * (size_t)n && a->ndim <= 1;
    if (!ok) {
        char got[200];
        lapi_shape_str(a, got, sizeof got);
        lapi_failf(L, "%s %s: got an array of shape %s, expected {%zu, %d} (batch x size)", what,
                   name, got, batch, n);
        return -1;
    }
    return n;
}

/* core.sim_set_input(s, name, array) -> true, or nil and a message. */
static int l_set_input(lua_State *L) {
    ap_sim *s = check_sim(L, 1);
    const char *name = luaL_checkstring(L, 2);
    lapi_array *a = lapi_array_check(L, 3);
    if (signal_fit(L, s, "set_input", name, a) < 0) return 2;
    int rc = ap_sim_set_input(s, name, a->data, a->size);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.sim_write_state(s, name, array) -> true, or nil and a message. */
static int l_write_state(lua_State *L) {
    ap_sim *s = check_sim(L, 1);
    const char *name = luaL_checkstring(L, 2);
    lapi_array *a = lapi_array_check(L, 3);
    if (signal_fit(L, s, "write_state", name, a) < 0) return 2;
    int rc = ap_sim_write_state(s, name, a->data, a->size);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.sim_read(s, name) -> Array batch x n, or nil and a message. */
static int l_read(lua_State *L) {
    ap_sim *s = check_sim(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int n = 0;
    int rc = ap_model_signal_size(ap_sim_model(s), name, &n);
    if (rc) return lapi_fail(L, rc);
    size_t shape[2] = {(size_t)ap_model_batch(ap_sim_model(s)), (size_t)n};
    lapi_array *a = lapi_array_new(L, 2, shape);
    rc = ap_sim_read(s, name, a->data, a->size);
    if (rc) return lapi_fail(L, rc);
    return 1;
}

/* ---- run --------------------------------------------------------------------------------- */

/* Optional fields of the (normalised) options table at (absolute) index t. The Lua half has
 * checked their types; a wrong type here is a bug of the binding and raises. */
static void opt_number(lua_State *L, int t, const char *key, double *dst) {
    if (lua_getfield(L, t, key) != LUA_TNIL) *dst = luaL_checknumber(L, -1);
    lua_pop(L, 1);
}

static void opt_long(lua_State *L, int t, const char *key, long *dst) {
    if (lua_getfield(L, t, key) != LUA_TNIL) *dst = (long)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
}

static void opt_int(lua_State *L, int t, const char *key, int *dst) {
    if (lua_getfield(L, t, key) != LUA_TNIL) *dst = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
}

static void opt_bool(lua_State *L, int t, const char *key, int *dst) {
    if (lua_getfield(L, t, key) != LUA_TNIL) *dst = lua_toboolean(L, -1);
    lua_pop(L, 1);
}

/* A list of strings: pointers into the strings of the options table, which stays on the stack
 * for the whole call. The pointer array is a GC-managed scratch buffer left on the stack. */
static const char *const *opt_strings(lua_State *L, int t, const char *key, int *n) {
    *n = 0;
    if (lua_getfield(L, t, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    luaL_checktype(L, -1, LUA_TTABLE);
    int len = (int)lua_rawlen(L, -1);
    const char **v = lapi_scratch(L, (size_t)(len + 1) * sizeof *v);
    for (int i = 0; i < len; i++) {
        lua_rawgeti(L, -2, i + 1);
        v[i] = luaL_checkstring(L, -1);
        lua_pop(L, 1);
    }
    lua_remove(L, -2); /* the list (its strings stay in the options table) */
    *n = len;
    return v;
}

static const double *opt_doubles(lua_State *L, int t, const char *key, int *n) {
    *n = 0;
    if (lua_getfield(L, t, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    luaL_checktype(L, -1, LUA_TTABLE);
    int len = (int)lua_rawlen(L, -1);
    double *v = lapi_scratch(L, (size_t)(len + 1) * sizeof *v);
    for (int i = 0; i < len; i++) {
        lua_rawgeti(L, -2, i + 1);
        v[i] = luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    lua_remove(L, -2);
    *n = len;
    return v;
}

static void push_stats(lua_State *L, const ap_run_stats *st) {
    lua_createtable(L, 0, 10);
    lua_pushinteger(L, st->steps);
    lua_setfield(L, -2, "steps");
    lua_pushinteger(L, st->rhs_evals);
    lua_setfield(L, -2, "rhs_evals");
    lua_pushinteger(L, st->lin_iters);
    lua_setfield(L, -2, "lin_iters");
    lua_pushinteger(L, st->nonlin_iters);
    lua_setfield(L, -2, "nonlin_iters");
    lua_pushinteger(L, st->err_test_fails);
    lua_setfield(L, -2, "err_test_fails");
    lua_pushinteger(L, st->conv_fails);
    lua_setfield(L, -2, "conv_fails");
    lua_pushinteger(L, st->jac_evals);
    lua_setfield(L, -2, "jac_evals");
    lua_pushnumber(L, st->t_reached);
    lua_setfield(L, -2, "t_reached");
    lua_pushnumber(L, st->last_step);
    lua_setfield(L, -2, "last_step");
    lua_pushnumber(L, st->wall_seconds);
    lua_setfield(L, -2, "wall_seconds");
    if (st->stab_growth > 0) { /* the stability guard's estimate (fixed-step runs) */
        lua_pushnumber(L, st->stab_growth);
        lua_setfield(L, -2, "stability_growth");
        lua_pushnumber(L, st->stab_dt);
        lua_setfield(L, -2, "stability_dt");
        lua_pushinteger(L, st->stab_evals);
        lua_setfield(L, -2, "stability_evals");
    }
    if (st->stab_warning[0]) {
        lua_pushstring(L, st->stab_warning);
        lua_setfield(L, -2, "stability_warning");
    }
}

/* One run request: the options parsed from a Lua table (their strings and lists stay alive on
 * the Lua stack), then the run's outcome. */
typedef struct run_req {
    lapi_sim *sim;
    ap_sim *s;
    ap_run_opts o;
    int copy;
    ap_acc_points points;
    ap_run_stats st;
    int rc;
    char err[1024]; /* the message of a failed run (the engine's last error is per thread) */
} run_req;

/* The solver and its step and tolerance options of the table at t. Returns 0, or the engine's
 * code for a solver name it does not know. */
static int parse_solver(lua_State *L, int t, ap_run_opts *o) {
    if (lua_getfield(L, t, "solver") != LUA_TNIL) {
        int rc = ap_solver_from_name(luaL_checkstring(L, -1), &o->solver);
        if (rc) return rc;
    }
    lua_pop(L, 1);
    opt_number(L, t, "t_end", &o->t_end);
    opt_number(L, t, "dt", &o->dt);
    opt_long(L, t, "steps", &o->steps);
    opt_number(L, t, "rtol", &o->rtol);
    opt_number(L, t, "atol", &o->atol);
    opt_long(L, t, "max_steps", &o->max_steps);
    opt_number(L, t, "max_step", &o->max_step);
    opt_number(L, t, "init_step", &o->init_step);
    opt_int(L, t, "max_order", &o->max_order);
    return 0;
}

/* CVODE's linear solver and preconditioner options of the table at t. */
static void parse_linear(lua_State *L, int t, ap_run_opts *o) {
    if (lua_getfield(L, t, "linsol") != LUA_TNIL) {
        static const char *const kinds[] = {"default", "krylov", "dense", NULL};
        int k = luaL_checkoption(L, -1, NULL, kinds);
        o->linsol = k == 0 ? AP_LINSOL_DEFAULT : k == 1 ? AP_LINSOL_KRYLOV : AP_LINSOL_DENSE;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, t, "precond") != LUA_TNIL) {
        static const char *const kinds[] = {"default", "none", "diagonal", "block", NULL};
        const char *name = luaL_checkstring(L, -1);
        o->precond = AP_PREC_TYPE; /* a registered type (apical/precond.h), else a kind */
        o->precond_type = name;    /* kept alive by the options table */
        for (int k = 0; kinds[k]; k++)
            if (!strcmp(name, kinds[k])) o->precond = (ap_precond_kind)k, o->precond_type = NULL;
    }
    lua_pop(L, 1);
}

/* The signal options of the table at t: evaluation order, noise, recording. */
static void parse_signals(lua_State *L, int t, ap_run_opts *o) {
    opt_bool(L, t, "ordered", &o->ordered);
    o->order = opt_strings(L, t, "order", &o->n_order);
    o->previous = opt_strings(L, t, "previous", &o->n_previous);
    o->noise = opt_strings(L, t, "noise", &o->n_noise);
    int n_sigma = 0;
    o->sigma = opt_doubles(L, t, "sigma", &n_sigma);
    if (n_sigma != o->n_noise)
        luaL_error(L, "run: %d noise signals, %d sigmas", o->n_noise, n_sigma);
    if (lua_getfield(L, t, "seed") != LUA_TNIL) o->seed = (uint64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    o->record = opt_strings(L, t, "record", &o->n_record);
    o->times = opt_doubles(L, t, "times", &o->n_times);
    opt_long(L, t, "every", &o->every);
}

/* The start-state, accumulation and stability options of the table at t. */
static void parse_checks(lua_State *L, int t, ap_run_opts *o) {
    opt_number(L, t, "settle_tol", &o->settle_tol);
    opt_bool(L, t, "keep_state", &o->keep_state);
    opt_bool(L, t, "accumulate", &o->accumulate);
    opt_bool(L, t, "quad_errcon", &o->quad_errcon);
    opt_bool(L, t, "across_ranks", &o->across_ranks);
    if (lua_getfield(L, t, "stability_check") != LUA_TNIL) {
        static const char *const checks[] = {"full", "watch", "off", NULL};
        int k = luaL_checkoption(L, -1, NULL, checks);
        o->stability_check = k == 0   ? AP_STABILITY_FULL
                             : k == 1 ? AP_STABILITY_WATCH
                                      : AP_STABILITY_OFF;
    }
    lua_pop(L, 1);
}

/* Parses the options table at index idx for the simulation at index sim_idx; returns 0, or
 * the engine's code for an option it refuses (its message is the last error). */
static int parse_run(lua_State *L, int sim_idx, int idx, run_req *r) {
    memset(r, 0, sizeof *r);
    r->sim = luaL_checkudata(L, sim_idx, LAPI_SIM);
    r->s = check_sim(L, sim_idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    const int t = lua_absindex(L, idx);
    ap_run_opts *o = &r->o;
    ap_run_opts_default(o);
    int rc = parse_solver(L, t, o);
    if (rc) return rc;
    parse_linear(L, t, o);
    parse_signals(L, t, o);
    parse_checks(L, t, o);
    r->copy = 1;
    opt_bool(L, t, "copy_recordings", &r->copy);
    r->points = AP_ACC_ALL;
    if (lua_getfield(L, t, "accumulation") != LUA_TNIL) {
        static const char *const modes[] = {"all", "left", "right", NULL};
        int k = luaL_checkoption(L, -1, NULL, modes);
        r->points = k == 0 ? AP_ACC_ALL : k == 1 ? AP_ACC_LEFT : AP_ACC_RIGHT;
    }
    lua_pop(L, 1);
    return 0;
}

/* Runs a parsed request. */
static void exec_run(run_req *r) {
    r->rc = ap_sim_set_accumulation(r->s, r->points);
    if (!r->rc) r->rc = ap_sim_run(r->s, &r->o, &r->st);
    if (r->rc) snprintf(r->err, sizeof r->err, "%s", ap_last_error());
}

/* Pushes what sim_run returns for a finished request: the result table, or nil, the message
 * and the statistics (3 values). */
static int push_run(lua_State *L, run_req *r) {
    if (r->rc) {
        ap_error(r->rc, "%s", r->err); /* the message into this thread's last error */
        lapi_fail(L, r->rc);
        push_stats(L, &r->st);
        return 3;
    }
    const ap_run_opts *o = &r->o;
    ap_sim *s = r->s;
    lua_createtable(L, 0, 2);
    push_stats(L, &r->st);
    lua_setfield(L, -2, "stats");
    int batch = ap_model_batch(ap_sim_model(s));
    lua_createtable(L, o->n_record, 0);
    for (int k = 0; r->copy && k < o->n_record; k++) {
        const double *data, *times;
        size_t nt;
        int width;
        int rc = ap_sim_recording(s, k, &data, &times, &nt, &width);
        if (rc) return lapi_fail(L, rc);
        lua_createtable(L, 0, 3);
        lua_pushstring(L, o->record[k]);
        lua_setfield(L, -2, "name");
        size_t shape[3] = {nt, (size_t)batch, (size_t)(width / batch)};
        lapi_array *a = lapi_array_new(L, 3, shape);
        if (a->size) memcpy(a->data, data, a->size * sizeof(double));
        lua_setfield(L, -2, "data");
        lapi_array *t = lapi_array_new(L, 1, &nt);
        if (nt) memcpy(t->data, times, nt * sizeof(double));
        lua_setfield(L, -2, "times");
        lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "recordings");
    lua_pushinteger(L, r->sim->run_id);
    lua_setfield(L, -2, "run_id");
    return 1;
}

/* core.sim_run(s, opts) -> {stats = {...}, recordings = {{name=, data=, times=}, ...}}, or
 * nil, message, stats. opts is the Lua half's normalised table: solver (string), t_end, dt,
 * steps, rtol, atol, max_steps, max_step, init_step, max_order, linsol ("default", "krylov",
 * "dense"), ordered, order {names}, previous {names}, noise {names}, sigma {numbers}, seed,
 * record {names}, times {numbers}, every, settle_tol, keep_state, accumulate, quad_errcon,
 * stability_check ("full", "watch", "off"), accumulation ("all", "left", "right"), copy_recordings
 * (default true; false: the recordings stay in the simulation, for kernels that read them, and the
 * result's list is empty). precond: "default", "none", "diagonal", "block" or a registered type's
 * name ("dfc.layered"). */
static int l_run(lua_State *L) {
    run_req r;
    int rc = parse_run(L, 1, 2, &r);
    if (rc) return lapi_fail(L, rc);
    r.sim->run_id++;
    exec_run(&r);
    return push_run(L, &r);
}

/* The kernels to call after each of the n runs, from the list at index 2 (absent: none). Returns
 * 0, or the number of values of a failure pushed (nil, message). */
static int prepare_then(lua_State *L, int n, ap_kernel_call *then, ap_kernel_args *then_args) {
    for (int i = 0; i < n; i++) {
        then[i] = (ap_kernel_call){NULL, NULL};
        if (lua_isnoneornil(L, 2)) continue;
        lua_rawgeti(L, 2, i + 1);
        if (lua_toboolean(L, -1)) {
            /* {name, args}: the Lua side has checked the shape */
            lua_rawgeti(L, -1, 1);
            lua_rawgeti(L, -2, 2);
            const char *name = lua_tostring(L, -2);
            char err[512];
            if (!name)
                return lapi_failf(L, "run %d: the kernel to call after it has no name", i + 1);
            then[i].kernel = lapi_kernel_prepare(L, name, -1, &then_args[i], err, sizeof err);
            if (!then[i].kernel) return lapi_failf(L, "run %d: %s", i + 1, err);
            then[i].args = &then_args[i];
            /* the name, the args table (held by argument 2) and the scratch stay on the stack */
        }
    }
    return 0;
}

/* Pushes the list of the n finished runs' results, each the list of what sim_run returns. */
static void push_parallel(lua_State *L, int n, run_req *req, const ap_run_stats *stats,
                          const int *rcs, const char *msgs) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        req[i].st = stats[i];
        req[i].rc = rcs[i];
        snprintf(req[i].err, sizeof req[i].err, "%s", msgs + (size_t)i * sizeof req[0].err);
        int k = push_run(L, &req[i]);
        lua_createtable(L, k, 0);
        lua_insert(L, -k - 1);
        for (int j = k; j >= 1; j--)
            lua_rawseti(L, -j - 1, j);
        lua_rawseti(L, -2, i + 1);
    }
}

/* core.sim_run_parallel({sim1, opts1, sim2, opts2, ...} [, {after1, after2, ...}]): the runs
 * at once, one thread each (ap_sim_run_parallel_then); after_i, when a table {name, args} and
 * not false, is the kernel called in run i's thread once it succeeded. Returns a list with,
 * per run, the list of what sim_run returns ({result} or {nil, message, stats}). */
static int l_run_parallel(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)lua_rawlen(L, 1) / 2;
    if (n < 1 || n > 64)
        return luaL_error(L, "run_parallel: 1 to 64 (simulation, options) pairs, got %d", n);
    run_req *req = lapi_scratch(L, (size_t)n * sizeof *req);
    ap_sim **sims = lapi_scratch(L, (size_t)n * sizeof *sims);
    const ap_run_opts **opts = lapi_scratch(L, (size_t)n * sizeof *opts);
    ap_run_stats *stats = lapi_scratch(L, (size_t)n * sizeof *stats);
    int *rcs = lapi_scratch(L, (size_t)n * sizeof *rcs);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, 2 * i + 1);
        lua_rawgeti(L, 1, 2 * i + 2);
        int top = lua_gettop(L);
        int rc = parse_run(L, top - 1, top, &req[i]);
        if (rc) return lapi_fail(L, rc);
        sims[i] = req[i].s;
        opts[i] = &req[i].o;
    }
    luaL_checkstack(L, 4 * n + 8, "run_parallel: too many runs");
    ap_kernel_call *then = lapi_scratch(L, (size_t)n * sizeof *then);
    ap_kernel_args *then_args = lapi_scratch(L, (size_t)n * sizeof *then_args);
    int k = prepare_then(L, n, then, then_args);
    if (k) return k;
    /* only now that every request is accepted do the simulations change */
    for (int i = 0; i < n; i++) {
        int rc = ap_sim_set_accumulation(req[i].s, req[i].points);
        if (rc) return lapi_fail(L, rc);
        req[i].sim->run_id++;
    }
    char *msgs = lapi_scratch(L, (size_t)n * sizeof req[0].err);
    ap_sim_run_parallel_then(sims, opts, then, stats, rcs, msgs, sizeof req[0].err, n);
    push_parallel(L, n, req, stats, rcs, msgs);
    return 1;
}

/* core.blas_core(): OpenBLAS's kernel family (ap_blas_core). */
static int l_blas_core(lua_State *L) {
    lua_pushstring(L, ap_blas_core());
    return 1;
}

/* core.blas_threads([n]): OpenBLAS's thread count before; n > 0 sets it. */
static int l_blas_threads(lua_State *L) {
    lua_Integer n = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, n >= 0 && n <= 1024, 1, "a thread count from 1 to 1024 (or none)");
    lua_pushinteger(L, ap_blas_threads((int)n));
    return 1;
}

/* core.sim_accumulator(s, id) -> dW (rows x cols), db ({rows}) or false, weight; or nil and a
 * message (no rule attached). */
static int l_accumulator(lua_State *L) {
    ap_sim *s = check_sim(L, 1);
    int id = (int)luaL_checkinteger(L, 2);
    const double *dW = NULL, *db = NULL;
    double weight = 0.0;
    int rc = ap_sim_accumulator(s, id, &dW, &db, &weight);
    if (rc) return lapi_fail(L, rc);
    ap_projection_info info;
    rc = ap_model_projection_info(ap_sim_model(s), id, &info);
    if (rc) return lapi_fail(L, rc);
    size_t shape[2] = {(size_t)info.rows, (size_t)info.cols};
    lapi_array *w = lapi_array_new(L, 2, shape);
    if (w->size) memcpy(w->data, dW, w->size * sizeof(double));
    if (db) {
        lapi_array *b = lapi_array_new(L, 1, shape);
        memcpy(b->data, db, b->size * sizeof(double));
    } else {
        lua_pushboolean(L, 0);
    }
    lua_pushnumber(L, weight);
    return 3;
}

/* core.sim_reset(s) -> true, or nil and a message. Counts as a run: results of earlier runs can
 * no longer read the accumulators. */
static int l_reset(lua_State *L) {
    lapi_sim *sim = luaL_checkudata(L, 1, LAPI_SIM);
    ap_sim *s = check_sim(L, 1);
    sim->run_id++;
    int rc = ap_sim_reset(s);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.sim_set_sample_weights(s, array or nil) -> true, or nil and a message. The array holds
 * one finite value per sample (shape {batch}, or {batch, 1}). */
static int l_set_sample_weights(lua_State *L) {
    ap_sim *s = check_sim(L, 1);
    if (lua_isnoneornil(L, 2)) {
        int rc = ap_sim_set_sample_weights(s, NULL);
        if (rc) return lapi_fail(L, rc);
        lua_pushboolean(L, 1);
        return 1;
    }
    lapi_array *a = lapi_array_check(L, 2);
    size_t batch = (size_t)ap_model_batch(ap_sim_model(s));
    if (!lapi_fits_matrix(a, batch, 1)) {
        char got[200];
        lapi_shape_str(a, got, sizeof got);
        return lapi_failf(L,
                          "set_sample_weights: got shape %s, expected {%zu} (one weight per "
                          "sample of the batch)",
                          got, batch);
    }
    for (size_t b = 0; b < a->size; b++)
        if (!isfinite(a->data[b]))
            return lapi_failf(L, "set_sample_weights: weight[%zu] = %g is not finite", b + 1,
                              a->data[b]);
    int rc = ap_sim_set_sample_weights(s, a->data);
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.sim_accumulate_state(s) -> the new run id, or nil and a message. */
static int l_accumulate_state(lua_State *L) {
    lapi_sim *sim = luaL_checkudata(L, 1, LAPI_SIM);
    ap_sim *s = check_sim(L, 1);
    sim->run_id++;
    int rc = ap_sim_accumulate_state(s);
    if (rc) return lapi_fail(L, rc);
    lua_pushinteger(L, sim->run_id);
    return 1;
}

int lapi_open_sim(lua_State *L) {
    static const luaL_Reg meta[] = {
        {"__gc", sim_gc}, {"__close", sim_gc}, {"__tostring", l_sim_tostring}, {NULL, NULL}};
    lapi_newclass(L, LAPI_SIM, NULL, meta);
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"compile", l_compile},
                                   {"sim_close", l_sim_close},
                                   {"sim_closed", l_sim_closed},
                                   {"is_sim", l_is_sim},
                                   {"sim_data", l_sim_data},
                                   {"sim_model", l_sim_model},
                                   {"sim_state_size", l_sim_state_size},
                                   {"sim_run_id", l_sim_run_id},
                                   {"sim_set_input", l_set_input},
                                   {"sim_write_state", l_write_state},
                                   {"sim_read", l_read},
                                   {"sim_run", l_run},
                                   {"sim_run_parallel", l_run_parallel},
                                   {"blas_threads", l_blas_threads},
                                   {"blas_core", l_blas_core},
                                   {"sim_accumulator", l_accumulator},
                                   {"sim_reset", l_reset},
                                   {"sim_set_sample_weights", l_set_sample_weights},
                                   {"sim_accumulate_state", l_accumulate_state},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    return 0;
}
