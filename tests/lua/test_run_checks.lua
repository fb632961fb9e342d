-- test_run_checks.lua — sim:run refuses options its solver does not use and options that
-- contradict each other (lua/apical/run_checks.lua), naming the option, at the caller's line;
-- the options each solver does use are accepted.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

local m = apical.model { batch = 1 }
local x = m:input { name = "x", size = 1 }
local h = m:population { name = "h", size = 1, neuron = apical.rate { tau = 0.5 } }
m:connect(x, h.soma, { init = "identity" })
local sim = m:compile()
sim:set_input(x, { { 1 } })

-- used: accepted (and the run does what they say)
local out = sim:run { solver = "euler", dt = 0.01, t_end = 1 }
check.eq(out.stats.steps, 100, "euler dt t_end")
out = sim:run { solver = "euler", dt = 0.01, steps = 50 }
check.eq(out.stats.steps, 50, "euler dt steps")
sim:run { solver = "cvode-bdf", t_end = 1, rtol = 1e-8, atol = 1e-10, max_order = 3 }
sim:run { solver = "euler-maruyama", dt = 0.01, t_end = 1, seed = 3, noise = { { h.soma, 0.1 } } }

-- not used by the solver
check.fails(function() sim:run { solver = "cvode-bdf", t_end = 1, dt = 0.01 } end, "option dt = 0.01 is not used by solver cvode-bdf (only by fixed-step solvers")
check.fails(function() sim:run { solver = "cvode-adams", steps = 10 } end, "option steps = 10 is not used by solver cvode-adams")
check.fails(function() sim:run { solver = "euler", t_end = 1, rtol = 1e-8 } end, "option rtol = 1e-08 is not used by solver euler (only by CVODE")
check.fails(function() sim:run { t_end = 1, atol = 1e-8 } end, "(no solver given: euler)")
check.fails(function() sim:run { solver = "rk4", t_end = 1, ordered = true } end, "option ordered = true is not used by solver rk4")
check.fails(function() sim:run { solver = "euler", t_end = 1, seed = 1 } end, "option seed = 1 is not used by solver euler (only by solver euler-maruyama)")
check.fails(function() sim:run { solver = "cvode-bdf", t_end = 1, accumulation = "left" } end, 'option accumulation = "left" is not used by solver cvode-bdf')
-- contradictory
check.fails(function() sim:run { solver = "euler", dt = 0.01, t_end = 1, steps = 100 } end, "steps = 100 and t_end = 1 both given")
check.fails(function() sim:run { solver = "euler", dt = 0.01, t_end = 1, order = { "h" } } end, "option order needs ordered = true")
check.done("test_run_checks")
