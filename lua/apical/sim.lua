-- apical/sim.lua — compiled simulations: sim:set_input, sim:run { ... } and its results
-- (statistics, recordings, accumulated updates), sim:read and sim:write_state.
local core = require "apical.core"
local errors = require "apical.errors"
local model = require "apical.model"
errors.internal(debug.getinfo(1, "S").source)

local M = {}
local show, raise = errors.show, errors.raise

local Sim = {}

local function open_sim(self, method)
    if not core.is_sim(self) then
        raise(string.format("%s: call it with a colon on a simulation (sim:%s ...), got %s as " ..
            "self", method, method, show(self)))
    end
    if core.sim_closed(self) then raise(method .. ": the simulation is closed") end
end

local function to_array(v, what)
    local a, err = core.try_array(v)
    if not a then raise(what .. ": " .. err) end
    return a
end

-- sim:set_input(x, values): values batch x n (an array or nested table).
function Sim:set_input(input, values)
    open_sim(self, "set_input")
    local name = errors.signal(input, "set_input: the input (argument 1)")
    local ok, err = core.sim_set_input(self, name, to_array(values, "set_input " .. name))
    if not ok then raise(err) end
    return self
end

-- sim:write_state(signal, values): overwrites a dynamic variable (for keep_state runs).
function Sim:write_state(sig, values)
    open_sim(self, "write_state")
    local name = errors.signal(sig, "write_state: the signal (argument 1)")
    local ok, err = core.sim_write_state(self, name, to_array(values, "write_state " .. name))
    if not ok then raise(err) end
    return self
end

-- sim:read(signal) -> array batch x n of the current values
function Sim:read(sig)
    open_sim(self, "read")
    local name = errors.signal(sig, "read: the signal (argument 1)")
    local a, err = core.sim_read(self, name)
    if not a then raise(err) end
    return a
end

local function is_sim(self, method)
    if not core.is_sim(self) then
        raise(string.format("%s: call it with a colon on a simulation (sim:%s())", method, method))
    end
end

function Sim:model()
    is_sim(self, "model")
    return core.sim_model(self)
end

function Sim:state_size()
    open_sim(self, "state_size")
    return core.sim_state_size(self)
end

function Sim:close()
    is_sim(self, "close")
    core.sim_close(self)
end

-- ---- run options ----------------------------------------------------------------------------

local RUN_OPTIONS = { "solver", "t_end", "dt", "steps", "rtol", "atol", "max_steps", "max_step",
    "init_step", "max_order", "linear_solver", "preconditioner", "ordered", "order", "previous", "noise", "seed",
    "record", "times", "every", "settle_tol", "keep_state", "accumulate", "quad_errcon",
    "across_ranks",
    "accumulation", "copy_recordings", "stability_check" }

local function signal_list(v, what, field)
    if v == nil then return nil end
    if type(v) ~= "table" or getmetatable(v) ~= nil then
        raise(string.format("%s: field %s must be a list of signals like { h1.rate, \"f.output\" }, " ..
            "got %s", what, field, show(v)))
    end
    local list = {}
    for k in pairs(v) do
        if math.type(k) ~= "integer" or k < 1 or k > #v then
            raise(string.format("%s: field %s must be a list, it has the key %s", what, field,
                show(k)))
        end
    end
    for i = 1, #v do
        list[i] = errors.signal(v[i], string.format("%s: %s[%d]", what, field, i))
    end
    return list
end

-- stability_check (docs/solvers.md, "Fixed-step stability"): true (the default: the estimate
-- before the run and the growth watch during it), "watch" (the watch only) or false (neither),
-- for the fixed-step solvers only; the binding's name for it.
function M.stability_check(v, solver)
    if v == nil then return nil end
    if v ~= true and v ~= false and v ~= "watch" then
        raise("run: field stability_check must be true, false or \"watch\", got " .. show(v))
    end
    if solver and solver:sub(1, 6) == "cvode-" then
        raise(string.format("run: stability_check is for the fixed-step solvers (euler, rk4, " ..
            "euler-maruyama), not %s", solver))
    end
    return v == true and "full" or v == false and "off" or "watch"
end

-- The options table of sim:run, checked and turned into what core.sim_run reads.
local function normalise(opts)
    local what = "run"
    if opts == nil then opts = {} end
    if type(opts) ~= "table" then
        raise("run: expected a table of options like { solver = \"euler\", t_end = 1 }, got " ..
            show(opts))
    end
    errors.fields(opts, RUN_OPTIONS, what)
    local o = {}
    o.solver = errors.check(opts.solver, "string", what, "solver")
    o.t_end = errors.check(opts.t_end, "number", what, "t_end")
    o.dt = errors.check(opts.dt, "number", what, "dt")
    o.steps = errors.check(opts.steps, "positive integer", what, "steps")
    o.rtol = errors.check(opts.rtol, "number", what, "rtol")
    o.atol = errors.check(opts.atol, "number", what, "atol")
    o.max_steps = errors.check(opts.max_steps, "integer >= 0", what, "max_steps")
    o.max_step = errors.check(opts.max_step, "number >= 0", what, "max_step")
    o.init_step = errors.check(opts.init_step, "number >= 0", what, "init_step")
    o.max_order = errors.check(opts.max_order, "integer >= 0", what, "max_order")
    o.linsol = errors.choice(opts.linear_solver, { "krylov", "dense" }, what, "linear_solver")
    -- none, diagonal, block, or a registered type ("dfc.layered"; the engine names the known)
    o.precond = errors.check(opts.preconditioner, "string", what, "preconditioner")
    o.ordered = errors.check(opts.ordered, "boolean", what, "ordered")
    o.order = signal_list(opts.order, what, "order")
    o.previous = signal_list(opts.previous, what, "previous")
    if opts.noise ~= nil then
        errors.check(opts.noise, "table", what, "noise")
        local entries = {}
        for k, v in pairs(opts.noise) do
            local sig, sigma
            if math.type(k) == "integer" and type(v) == "table" and getmetatable(v) == nil then
                sig, sigma = v[1], v[2]
            else
                sig, sigma = k, v
            end
            local name = errors.signal(sig, "run: noise: the signal")
            if type(sigma) ~= "number" then
                raise(string.format("run: noise on %s: sigma must be a number, got %s", name,
                    show(sigma)))
            end
            entries[#entries + 1] = { name, sigma }
        end
        table.sort(entries, function(a, b) return a[1] < b[1] end)
        o.noise, o.sigma = {}, {}
        for i, e in ipairs(entries) do o.noise[i], o.sigma[i] = e[1], e[2] end
    end
    o.seed = errors.check(opts.seed, "integer >= 0", what, "seed")
    o.record = signal_list(opts.record, what, "record")
    if opts.times ~= nil then
        local t = opts.times
        if getmetatable(t) and getmetatable(t).__name == "apical.Array" then t = t:totable() end
        if type(t) ~= "table" then
            raise("run: field times must be a list of numbers, got " .. show(opts.times))
        end
        o.times = {}
        for i = 1, #t do
            if type(t[i]) ~= "number" then
                raise(string.format("run: times[%d] must be a number, got %s", i, show(t[i])))
            end
            o.times[i] = t[i]
        end
    end
    o.every = errors.check(opts.every, "integer >= 0", what, "every")
    o.settle_tol = errors.check(opts.settle_tol, "number >= 0", what, "settle_tol")
    o.keep_state = errors.check(opts.keep_state, "boolean", what, "keep_state")
    o.accumulate = errors.check(opts.accumulate, "boolean", what, "accumulate")
    o.quad_errcon = errors.check(opts.quad_errcon, "boolean", what, "quad_errcon")
    o.across_ranks = errors.check(opts.across_ranks, "boolean", what, "across_ranks")
    o.copy_recordings = errors.check(opts.copy_recordings, "boolean", what, "copy_recordings")
    o.accumulation = errors.choice(opts.accumulation, { "all", "left", "right" }, what,
        "accumulation")
    o.stability_check = M.stability_check(opts.stability_check, o.solver)
    if (o.record and #o.record > 0) and not o.times and not o.every then
        raise("run: record needs times = { ... } or every = k (which points to record)")
    end
    require("apical.run_checks").check(opts, what) -- options the solver does not use
    return o
end

-- ---- results --------------------------------------------------------------------------------

local Result = {}
local result_private = setmetatable({}, { __mode = "k" })

-- The recording of a signal name as recorded, or under the other spelling of a population's
-- rate ("h1" / "h1.rate").
local function find_recording(rec, name)
    if rec[name] then return rec[name] end
    local base = name:match("^(.-)%.rate$")
    if base and rec[base] then return rec[base] end
    if not name:find(".", 1, true) then return rec[name .. ".rate"] end
    return nil
end

local function result_of(self, method)
    local p = type(self) == "table" and result_private[self]
    if not p then raise(method .. ": call it with a colon on a run's result (out:" .. method .. " ...)") end
    return p
end

-- out:get(signal) -> array n_times x batch x n
function Result:get(sig)
    local p = result_of(self, "get")
    local name = errors.signal(sig, "get: the signal")
    local r = find_recording(p.rec, name)
    if not r and p.not_copied then
        raise(string.format("get: the run was made with copy_recordings = false: its recordings " ..
            "(%s) stay in the simulation for kernels to read and are not in the result",
            table.concat(p.not_copied, ", ")))
    end
    if not r then
        raise(string.format("get: %s was not recorded (recorded: %s)", name,
            #p.names > 0 and table.concat(p.names, ", ") or "nothing"))
    end
    return r
end

-- out:update(projection) -> dW (rows x cols), db ({rows} or nil): the accumulated update of the
-- projection's plasticity rule over this run (a time average).
function Result:update(proj)
    local p = result_of(self, "update")
    local m = core.sim_model(p.sim)
    local id, name = model.projection_id(m, proj, "update")
    if core.sim_closed(p.sim) then raise("update: the simulation is closed") end
    if core.sim_run_id(p.sim) ~= p.run_id then
        raise("update: this result is from an earlier run; the accumulators hold the latest " ..
            "run's updates (read them before running again)")
    end
    local dW, db = core.sim_accumulator(p.sim, id)
    if not dW then raise(string.format("update: %s", db)) end
    if db == false then db = nil end
    return dW, db
end

-- out:save_csv(signal, path [, colnames]): columns t, sample, then the signal's units.
function Result:save_csv(sig, path, colnames)
    local r = Result.get(self, sig)
    local name = errors.signal(sig, "save_csv: the signal")
    if type(path) ~= "string" then raise("save_csv: expected a file name, got " .. show(path)) end
    if colnames == nil then
        colnames = {}
        for i = 1, r.shape[3] do colnames[i] = string.format("%s[%d]", name, i) end
    end
    errors.call(r.save_csv, r, path, colnames, self.times)
end

local result_mt = {
    __name = "apical.Result",
    __index = function(self, key)
        local method = Result[key]
        if method then return method end
        local p = result_private[self]
        if p and type(key) == "string" then return find_recording(p.rec, key) end
        return nil
    end,
}

-- sim:run { ... } -> result
local function wrap(self, res, o)
    local out = { stats = res.stats, names = {} }
    local rec = {}
    for i, r in ipairs(res.recordings) do
        rec[r.name] = r.data
        out.names[i] = r.name
        if i == 1 then out.times = r.times end
    end
    if not out.times then out.times = core.zeros({ 0 }) end
    result_private[out] = { sim = self, run_id = res.run_id, rec = rec, names = out.names,
        not_copied = o.copy_recordings == false and o.record or nil }
    return setmetatable(out, result_mt)
end

-- The stability guard's warning of a run, on stderr.
local function warn_stability(res)
    local w = res.stats.stability_warning
    if w then io.stderr:write("apical: warning: ", w, "\n") end
    return w ~= nil
end

function Sim:run(opts)
    open_sim(self, "run")
    local o = normalise(opts)
    local res, err = core.sim_run(self, o)
    if not res then raise(err) end
    warn_stability(res)
    return wrap(self, res, o)
end

-- apical.run_parallel { { sim1, opts1 }, { sim2, opts2 }, ... } -> { result1, result2, ... }:
-- distinct simulations run at once, one thread each, BLAS single-threaded inside each; each
-- result is what sim:run returns. A failed run raises its message ("run i: ...") after all
-- have finished. An entry may add after = { "kernel.name", { args } }: that kernel is called
-- in the run's thread once the run succeeded (per-run work on its results, e.g. a gradient
-- from its recordings, on both cores too); the calls run concurrently, so they must not write
-- the same arrays or optimisers.
function M.run_parallel(runs)
    local what = "apical.run_parallel"
    if type(runs) ~= "table" or #runs < 1 then
        raise(what .. ": expected a list of { sim, options } pairs, got " .. show(runs))
    end
    local flat, opts, seen, after, any = {}, {}, {}, {}, false
    for i, r in ipairs(runs) do
        if type(r) ~= "table" then raise(string.format("%s: entry %d is %s, not { sim, options }", what, i, show(r))) end
        local sim = r[1]
        if not core.is_sim(sim) then raise(string.format("%s: entry %d: %s is not a simulation", what, i, show(sim))) end
        if core.sim_closed(sim) then raise(string.format("%s: entry %d: the simulation is closed", what, i)) end
        if seen[sim] then raise(string.format("%s: entries %d and %d are the same simulation", what, seen[sim], i)) end
        seen[sim] = i
        opts[i] = normalise(r[2] or {})
        flat[2 * i - 1], flat[2 * i] = sim, opts[i]
        after[i] = false
        if r.after ~= nil then
            local a = r.after
            if type(a) ~= "table" or type(a[1]) ~= "string" or type(a[2]) ~= "table" then
                raise(string.format("%s: entry %d: after = %s; expected { \"kernel.name\", { args } }", what, i, show(a)))
            end
            after[i], any = a, true
        end
    end
    local res, err = core.sim_run_parallel(flat, any and after or nil)
    if not res then raise(err) end
    local out, warned = {}, false
    for i, r in ipairs(res) do
        if not r[1] then raise(string.format("run %d: %s", i, r[2])) end
        -- one warning per call (the parts of a split minibatch would repeat it)
        if not warned then warned = warn_stability(r[1]) end
        out[i] = wrap(runs[i][1], r[1], opts[i])
    end
    return out
end

-- sim:reset(): the start state (as a run begins) and every signal there, without integrating
function Sim:reset()
    open_sim(self, "reset")
    local ok, err = core.sim_reset(self)
    if not ok then raise(err) end
    return self
end

-- sim:set_sample_weights(w): the weight of each sample in the accumulators (an array or list
-- of batch numbers; nil: all 1)
function Sim:set_sample_weights(w)
    open_sim(self, "set_sample_weights")
    local a
    if w ~= nil then a = to_array(w, "set_sample_weights") end
    local ok, err = core.sim_set_sample_weights(self, a)
    if not ok then raise(err) end
    return self
end

-- sim:accumulate_state() -> a result whose :update(p) is each rule evaluated once at the current
-- signals (the update of the last state only)
function Sim:accumulate_state()
    open_sim(self, "accumulate_state")
    local run_id, err = core.sim_accumulate_state(self)
    if not run_id then raise(err) end
    local out = { names = {}, times = core.zeros({ 0 }) }
    result_private[out] = { sim = self, run_id = run_id, rec = {}, names = out.names }
    return setmetatable(out, result_mt)
end

local sim_mt = core.metatable("apical.Sim")
sim_mt.__index = Sim

M.Sim = Sim
return M
