-- test_sim_state.lua — sim:reset, per-sample accumulator weights, the rule at the last state
-- (sim:accumulate_state), early stop with run option settle_tol, m:population_info; values
-- against closed forms, errors at the caller's line.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

-- x -> h.soma (weight W) with the hebb rule; h is leaky: v(t) = W x (1 - exp(-t / tau))
local TAU, W = 0.3, 1.5
local X = { 0.8, -0.4 }
local m = apical.model { batch = 2 }
local x = m:input { name = "x", size = 1 }
local h = m:population { name = "h", size = 1, neuron = apical.rate { tau = TAU } }
local s = m:population { name = "s", size = 1, neuron = apical.rate { tau = 0.5 },
    activation = "tanh", start = "settled" }
local p = m:connect(x, h.soma, { init = apical.init.constant { value = W },
    plastic = apical.hebb { eta = 1 } })
m:connect(x, s.soma, { init = apical.init.constant { value = 2 } })

-- population_info
local info = m:population_info(h)
check.eq(info.name, "h")
check.eq(info.size, 1)
check.eq(info.neuron, "rate")
check.eq(info.activation, "linear")
check.eq(info.params.tau, TAU)
check.eq(info.start, "zero")
info = m:population_info "s"
check.eq(info.activation, "tanh")
check.eq(info.start, "settled")
check.eq(info.params.tau, 0.5)
check.fails(function() m:population_info "nope" end, 'population_info: no population "nope"')
check.fails(function() m:population_info(42) end, "population_info: expected a population")

local sim = m:compile()
sim:set_input(x, { { X[1] }, { X[2] } })

-- settle_tol: |dv/dt| = |W x| exp(-t / tau) / tau falls below tol at t* (the larger sample last)
local tol = 1e-3
local t_star = TAU * math.log(W * 0.8 / (TAU * tol))
local out = sim:run { solver = "cvode-bdf", t_end = 10, rtol = 1e-10, atol = 1e-12,
    settle_tol = tol }
check.near(out.stats.t_reached, t_star, 1e-6, "settled at t*")
local dW_all = out:update(p)

-- sample weights: each sample alone, and both add up to the whole
sim:set_sample_weights { 1, 0 }
local o1 = sim:run { solver = "cvode-bdf", t_end = 10, rtol = 1e-10, atol = 1e-12, settle_tol = tol }
local dW1 = o1:update(p)
local mean_v = W * X[1] * (1 - TAU / t_star * (1 - math.exp(-t_star / TAU)))
check.near(dW1[1], mean_v * X[1], 1e-6 * math.abs(mean_v * X[1]), "sample 1 alone")
sim:set_sample_weights(apical.array { 0, 1 })
local dW2 = sim:run { solver = "cvode-bdf", t_end = 10, rtol = 1e-10, atol = 1e-12,
    settle_tol = tol }:update(p)
check.near(dW1[1] + dW2[1], dW_all[1], 1e-9, "the weights split the sum")
check.fails(function() sim:set_sample_weights { 1, 2, 3 } end,
    "set_sample_weights: got shape {3}, expected {2} (one weight per sample of the batch)")
check.fails(function() sim:set_sample_weights { 1, 0 / 0 } end,
    "set_sample_weights: weight[2] = ")
check.fails(function() sim:set_sample_weights "abc" end, "set_sample_weights: expected an array")

-- the rule at the last state: once, with weight 1
sim:set_sample_weights { 1, 0 }
local last = sim:accumulate_state()
local v_end = W * X[1] * (1 - math.exp(-t_star / TAU))
check.near(last:update(p)[1], v_end * X[1], 1e-7, "the rule at the last state")
check.fails(function() o1:update(p) end, "update: this result is from an earlier run")
check.fails(function() last:get(h.soma) end, "get: h.soma was not recorded")
sim:set_sample_weights(nil)

-- euler stops at the first point whose derivative is below tol
out = sim:run { solver = "euler", dt = 0.01, t_end = 10, settle_tol = tol }
local v, k = 0, 0
while math.abs((W * 0.8 - v) / TAU) >= tol do
    v = v + 0.01 / TAU * (W * 0.8 - v)
    k = k + 1
end
check.eq(out.stats.steps, k, "euler steps")
check.near(out.stats.t_reached, 0.01 * k, 1e-12)
check.fails(function() sim:run { solver = "euler", t_end = 1, settle_tol = -1 } end,
    "run: field settle_tol must be a number >= 0, got -1")

-- reset: the start state without a run (zero for h, settled at the drive for s)
local before = out
sim:reset()
check.array_near(sim:read(h.soma), { 0, 0 }, 0, "h starts at zero")
check.array_near(sim:read(s.soma), { 1.6, -0.8 }, 1e-15, "s starts settled at its drive")
check.array_near(sim:read(s), { math.tanh(1.6), math.tanh(-0.8) }, 1e-15, "its rate")
check.fails(function() before:update(p) end, "update: this result is from an earlier run")
check.eq(sim:reset(), sim, "reset returns the simulation")

-- the rule at the start state
check.near(sim:accumulate_state():update(p)[1], 0.0, 0, "h = 0 at the start: no update")

-- a model without rules
local m2 = apical.model { batch = 1 }
m2:input { name = "x", size = 1 }
local sim2 = m2:compile()
check.fails(function() sim2:accumulate_state() end, "accumulate_state: no projection has a rule")
sim2:close()
check.fails(function() sim2:reset() end, "reset: the simulation is closed")

check.done("test_sim_state")
