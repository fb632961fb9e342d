-- test_sim.lua — compiling and running: solvers against closed forms, recordings, start modes,
-- keep_state and write_state, accumulated plasticity against a hand computation, noise, run
-- options and their errors.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

local B, TAU = 2, 0.5
local X = { { 1.0, -2.0 }, { 0.5, 3.0 } }

-- x -> h.soma (identity weights), h is a leaky rate neuron: tau v' = -v + x, so
-- v(t) = x (1 - exp(-t / tau)); f low-pass filters x: 2 y' = x - y.
local m = apical.model { batch = B }
local x = m:input { name = "x", size = 2 }
local h = m:population { name = "h", size = 2, neuron = apical.rate { tau = TAU } }
local f = m:block { name = "f", type = apical.lowpass { tau = 2 }, inputs = { input = x } }
m:connect(x, h.soma, { init = "identity" })
local sim = m:compile()
sim:set_input(x, X)

local function exact_v(t, b, i) return X[b][i] * (1 - math.exp(-t / TAU)) end
local function exact_y(t, b, i) return X[b][i] * (1 - math.exp(-t / 2)) end

-- CVODE BDF (Krylov and dense) and Adams at tight tolerances
for _, o in ipairs {
    { solver = "cvode-bdf" },
    { solver = "cvode-bdf", linear_solver = "dense" },
    { solver = "cvode-bdf", linear_solver = "krylov", max_order = 3, max_step = 0.1 },
    { solver = "cvode-bdf", linear_solver = "krylov", preconditioner = "none" },
    { solver = "cvode-bdf", linear_solver = "krylov", preconditioner = "diagonal" },
    { solver = "cvode-bdf", linear_solver = "krylov", preconditioner = "block" },
    { solver = "cvode-adams", init_step = 1e-4 },
} do
    o.t_end, o.rtol, o.atol = 1.0, 1e-10, 1e-12
    o.record, o.times = { h.soma, f.output }, { 0.25, 0.5, 1.0 }
    local out = sim:run(o)
    check.truthy(out.stats.steps > 0 and out.stats.rhs_evals > 0, o.solver .. " stats")
    check.near(out.stats.t_reached, 1.0, 1e-12, "t_reached")
    check.shape(out.times, { 3 })
    local v, y = out:get(h.soma), out:get("f.output")
    check.shape(v, { 3, B, 2 })
    for k, t in ipairs { 0.25, 0.5, 1.0 } do
        for b = 1, B do
            for i = 1, 2 do
                check.near(v:at(k, b, i), exact_v(t, b, i), 1e-7, o.solver .. " v")
                check.near(y:at(k, b, i), exact_y(t, b, i), 1e-7, o.solver .. " y")
            end
        end
    end
    -- sim:read gives the end state
    check.near(sim:read(h.soma):at(2, 2), exact_v(1, 2, 2), 1e-7, "read")
end

-- Euler: v_n = x (1 - (1 - dt/tau)^n) exactly; every = 10 records the initial state too
local dt = 0.01
local out = sim:run { solver = "euler", dt = dt, steps = 100, record = { h.soma, h }, every = 10 }
check.eq(out.stats.steps, 100)
check.shape(out.times, { 11 })
check.near(out.times[11], 1.0, 1e-12, "last time")
local v = out:get(h.soma)
for k = 1, 11 do
    local n = (k - 1) * 10
    check.near(v:at(k, 1, 2), X[1][2] * (1 - (1 - dt / TAU) ^ n), 1e-12, "euler")
end
check.array_near(out:get("h.rate"), v, 0, "rate = soma (linear)")
check.array_near(out.h, v, 0, "out[name]")

-- copy_recordings = false: the same run, its recordings left in the simulation
local nc = sim:run { solver = "euler", dt = dt, steps = 100, record = { h.soma, h }, every = 10,
    copy_recordings = false }
check.eq(nc.stats.steps, 100)
check.fails(function() nc:get(h.soma) end, "copy_recordings = false: its recordings (h.soma, h)")
check.fails(function() sim:run { solver = "euler", dt = dt, steps = 1, copy_recordings = 1 } end,
    "copy_recordings")

-- RK4, t_end given instead of steps
out = sim:run { solver = "rk4", dt = 0.05, t_end = 1, record = { h.soma }, times = { 1 } }
check.near(out:get(h.soma):at(1, 2, 1), exact_v(1, 2, 1), 1e-6, "rk4")

-- start values and settled starts
local m2 = apical.model { batch = 1 }
local u = m2:input { name = "u", size = 1 }
local a = m2:population { name = "a", size = 1, neuron = apical.rate { tau = 1 },
    start_values = { soma = 0.5 } }
local s = m2:population { name = "s", size = 1, neuron = apical.rate { tau = 1 }, start = "settled" }
m2:connect(u, s.soma, { init = apical.init.constant { value = 2 } })
local sim2 = m2:compile()
sim2:set_input(u, { 0.75 })
out = sim2:run { solver = "cvode-bdf", t_end = 2, rtol = 1e-10, atol = 1e-12,
    record = { a.soma, s.soma }, times = { 0, 2 } }
check.near(out:get(a.soma)[1], 0.5, 1e-12, "start value")
check.near(out:get(a.soma)[2], 0.5 * math.exp(-2), 1e-8, "decay")
check.near(out:get(s.soma)[1], 1.5, 1e-12, "settled start")
check.near(out:get(s.soma)[2], 1.5, 1e-8, "settled stays")

-- keep_state continues where the last run ended; write_state changes the state
out = sim2:run { solver = "euler", dt = 0.01, steps = 100, keep_state = true, record = { a.soma }, times = { 0 } }
check.near(out:get(a.soma)[1], 0.5 * math.exp(-2), 1e-8, "keep_state")
sim2:write_state(a.soma, { { 3 } })
out = sim2:run { solver = "euler", dt = 0.01, steps = 1, keep_state = true, record = { a.soma }, times = { 0 } }
check.near(out:get(a.soma)[1], 3, 0, "write_state")
check.fails(function() sim2:write_state(a.rate, { { 1 } }) end, '"a.rate" is not a dynamic variable')

-- accumulated Hebbian update against the recorded trajectory: dW = eta * mean_k post_k^T pre
local m3 = apical.model { batch = B }
local x3 = m3:input { name = "x", size = 2 }
local h3 = m3:population { name = "h", size = 3, neuron = apical.rate { tau = 0.3 } }
local p3 = m3:connect(x3, h3.soma, { init = apical.init.uniform { low = -1, high = 1, seed = 7 },
    bias = true, plastic = apical.hebb { eta = 0.5 } })
local frozen = m3:connect(x3, h3.soma, { name = "frozen" })
local sim3 = m3:compile()
sim3:set_input("x", apical.array(X))
for _, mode in ipairs { "all", "left", "right" } do
    out = sim3:run { solver = "euler", dt = 0.01, steps = 20, record = { h3.rate }, every = 1,
        accumulation = mode }
    local r = out:get(h3)
    local first = mode == "right" and 2 or 1
    local last = mode == "left" and 20 or 21
    local npts = last - first + 1
    local dW, db = out:update(p3)
    check.shape(dW, { 3, 2 })
    check.shape(db, { 3 })
    for i = 1, 3 do
        local bsum = 0
        for j = 1, 2 do
            local acc = 0
            for k = first, last do
                for b = 1, B do acc = acc + r:at(k, b, i) * X[b][j] end
            end
            check.near(dW:at(i, j), 0.5 * acc / npts, 1e-12, "dW " .. mode)
        end
        for k = first, last do
            for b = 1, B do bsum = bsum + r:at(k, b, i) end
        end
        check.near(db[i], 0.5 * bsum / npts, 1e-12, "db " .. mode)
    end
    check.fails(function() out:update(frozen) end, "projection frozen has no plasticity rule")
    check.fails(function() out:update("nope") end, 'update: no projection "nope"')
end
local old = out
out = sim3:run { solver = "euler", dt = 0.01, steps = 2, accumulate = false }
check.fails(function() old:update(p3) end, "this result is from an earlier run")
out = sim3:run { solver = "cvode-bdf", t_end = 0.2, quad_errcon = true }
check.truthy(out:update(p3):max_abs() > 0, "cvode accumulates")

-- noise: reproducible with a seed, both forms of the noise table
local function noisy(seed, noise)
    local o = sim3:run { solver = "euler-maruyama", dt = 0.01, steps = 50, seed = seed,
        noise = noise, record = { h3.soma }, times = { 0.5 } }
    return o:get(h3.soma)
end
local n1 = noisy(1, { [h3.soma] = 0.1 })
local n2 = noisy(1, { { "h.soma", 0.1 } })
local n3 = noisy(2, { [h3.soma] = 0.1 })
check.array_near(n1, n2, 0, "same seed, same path")
check.truthy(math.abs(n1[1] - n3[1]) > 1e-9, "another seed, another path")

-- declared-order Euler
out = sim:run { solver = "euler", dt = 0.01, steps = 10, ordered = true, order = { "f", h },
    previous = { x }, record = { h.soma }, times = { 0.1 } }
check.shape(out:get(h.soma), { 1, B, 2 })

-- results: names, CSV
check.eq(out.names[1], "h.soma")
local csv = check.tmpname(".csv")
out:save_csv(h.soma, csv)
local fh = assert(io.open(csv))
check.eq(fh:read("l"), "t,sample,h.soma[1],h.soma[2]")
check.truthy(fh:read("l"):find("^0%.10*1?,1,"), "csv row")
fh:close()

-- errors of run and of the simulation's methods
check.fails(function() sim:run { solver = "euler", dt = 0.01, steps = 10, recrod = {} } end, "run: unknown field recrod (fields: solver,")
check.fails(function() sim:run { solver = "leapfrog", t_end = 1 } end, 'unknown solver "leapfrog"')
check.fails(function() sim:run { solver = "euler", dt = 0.3, t_end = 1 } end, "is not a whole number of steps")
check.fails(function() sim:run { solver = "euler", dt = "small", t_end = 1 } end, 'field dt must be a number, got "small"')
check.fails(function() sim:run { solver = "euler", steps = 2.5 } end, "field steps must be a positive integer, got 2.5")
check.fails(function() sim:run { solver = "cvode-bdf", t_end = 1, ordered = true } end, "option ordered = true is not used by solver cvode-bdf")
check.fails(function() sim:run { solver = "euler", steps = 1, record = { h } } end, "record needs times")
check.fails(function() sim:run { solver = "euler", steps = 1, record = { "h.dend" }, every = 1 } end, 'no signal "h.dend"')
check.fails(function() sim:run { solver = "euler", steps = 1, record = h, every = 1 } end, "field record must be a list of signals")
check.fails(function() sim:run { solver = "euler", steps = 1, noise = { [h.soma] = 0.1 } } end, "option noise = a table is not used by solver euler (only by solver euler-maruyama)")
check.fails(function() sim:run { solver = "euler-maruyama", steps = 1, noise = { [h.soma] = "x" } } end, 'run: noise on h.soma: sigma must be a number, got "x"')
check.fails(function() sim:run { solver = "euler", steps = 1, linear_solver = "lu" } end, 'field linear_solver must be one of "krylov", "dense", got "lu"')
check.fails(function() sim:run { solver = "cvode-bdf", t_end = 1, preconditioner = "ilu" } end, 'test_sim.lua:185: cvode-bdf: unknown preconditioner "ilu" (known: default, none, diagonal, block)')
check.fails(function() sim:run { solver = "cvode-bdf", t_end = 1, preconditioner = 3 } end, "field preconditioner must be a string")
check.fails(function() sim:run { solver = "euler", steps = 1, dt = 0.1, preconditioner = "block" } end, 'option preconditioner = "block" is not used by solver euler')
check.fails(function() sim:run { solver = "cvode-bdf", t_end = 1, linear_solver = "dense", preconditioner = "block" } end, "the dense linear solver uses no preconditioner")
check.fails(function() sim:run { solver = "cvode-bdf", t_end = 100, max_steps = 2 } end, "CV_TOO_MUCH_WORK")
check.fails(function() sim:run "euler" end, "run: expected a table of options")
check.fails(function() sim.run { solver = "euler" } end, "call it with a colon on a simulation")
check.fails(function() sim:set_input(x, { { 1, 2, 3 } }) end, "set_input x: got an array of shape {1, 3}, expected {2, 2} (batch x size)")
check.fails(function() sim:set_input(x, { { 1, 0 / 0 }, { 1, 1 } }) end, "input x: value [sample 1, unit 2] = ")
check.fails(function() sim:set_input(h.soma, { { 1, 1 }, { 1, 1 } }) end, '"h.soma" is not an input')
check.fails(function() sim:set_input("nope", { { 1, 1 }, { 1, 1 } }) end, 'no signal "nope"')
check.fails(function() sim:read("h.nope") end, 'no signal "h.nope"')
check.fails(function() out:get(f.y) end, "get: f.y was not recorded (recorded: h.soma)")

-- hold: the input's value at the start of each run, held. q starts settled at x - p(0) = x
-- and decays to 0 as p (from 0) relaxes to x; the hold keeps x. Euler, euler-maruyama's
-- ordered sweep and CVODE
do
    local mh = apical.model { batch = B }
    local xh = mh:input { name = "x", size = 2 }
    local p = mh:population { name = "p", size = 2, neuron = apical.rate { tau = 0.5 } }
    local q = mh:population { name = "q", size = 2, neuron = apical.rate { tau = 0.1 }, start = "settled" }
    local hb = mh:block { name = "hb", type = apical.hold {}, inputs = { input = q } }
    mh:connect(xh, p.soma, { init = "identity" })
    mh:connect(xh, q.soma, { init = "identity" })
    mh:connect(p, q.soma, { init = apical.init.constant { value = 0 } }):set_weights { { -1, 0 }, { 0, -1 } }
    local sh = mh:compile()
    sh:set_input(xh, X)
    for _, o in ipairs {
        { solver = "euler", dt = 0.01, steps = 50 },
        { solver = "euler-maruyama", dt = 0.01, steps = 50, ordered = true, order = { "hb", "p", "q" } },
        { solver = "cvode-bdf", t_end = 0.5, rtol = 1e-8, atol = 1e-10 },
    } do
        o.record, o.every = { "hb.output", "q" }, 1
        if o.solver == "cvode-bdf" then o.every, o.times = nil, { 0.25, 0.5 } end
        local out = sh:run(o)
        local y, r = out:get("hb.output"), out:get("q")
        local n = #out.times
        for b = 1, B do
            for i = 1, 2 do
                for k = 1, n do check.eq(y:at(k, b, i), X[b][i], o.solver .. ": held start value") end
                check.truthy(math.abs(r:at(n, b, i) - X[b][i]) > 0.3 * math.abs(X[b][i]), o.solver .. ": q moved")
            end
        end
    end
end

-- a single variable going non-finite deep inside a longer state (not at a multiple of the
-- finiteness check's vector width) is found and named, by every fixed-step path
do
    local mb = apical.model { batch = 3 }
    local xb = mb:input { name = "x", size = 37 }
    local hb = mb:population { name = "hb", size = 37, neuron = apical.rate { tau = 0.1 } }
    local w = mb:connect(xb, hb.soma, { init = "identity" })
    local W = apical.zeros { 37, 37 }
    for j = 1, 37 do W[(j - 1) * 37 + j] = 10 end
    w:set_weights(W)
    local sb = mb:compile()
    local xin = apical.zeros { 3, 37 }
    xin[2 * 37 + 30] = 1e308 -- sample 3, unit 30: its drive 1e309 overflows
    sb:set_input(xb, xin)
    for _, o in ipairs {
        { solver = "euler", dt = 0.05, steps = 40 },
        { solver = "euler", dt = 0.05, steps = 40, ordered = true },
        { solver = "euler-maruyama", dt = 0.05, steps = 40, ordered = true, noise = { { "hb.soma", 0.1 } } },
    } do
        local ok, err = pcall(sb.run, sb, o)
        check.truthy(not ok and tostring(err):find("hb.soma[sample 3, unit 30]", 1, true) ~= nil,
            o.solver .. (o.ordered and " ordered" or "") .. ": " .. tostring(err))
    end
end

check.done("test_sim")
