-- stiff_circuit.lua — a fast population (tau = 1e-4) slaved to a slow one (tau = 1), with tanh
-- units: explicit solvers must take steps below the fast time constant to stay stable, while
-- cvode-bdf steps over it. Prints each solver's work and its error against a tight reference.
-- cvode-adams (non-stiff, fixed-point iteration) is held back by stability like the explicit
-- solvers.
--   build/bin/apical run examples/stiff_circuit.lua [--set t_end=5] [--set rtol=1e-6]
local apical = require "apical"
local p = apical.params { t_end = 2, rtol = 1e-8 }

local m = apical.model { batch = 1 }
local x = m:input { name = "x", size = 2 }
local fast = m:population { name = "fast", size = 2, neuron = apical.rate { tau = 1e-4 }, activation = "tanh" }
local slow = m:population { name = "slow", size = 2, neuron = apical.rate { tau = 1 }, activation = "tanh" }
m:connect(x, slow.soma, { kind = "one_to_one" })
m:connect(slow, fast.soma, { name = "slow_to_fast" }):set_weights { { 1.0, 0.5 }, { -0.3, 0.8 } }
m:connect(fast, slow.soma, { name = "fast_to_slow" }):set_weights { { -0.5, 0.2 }, { 0.1, -0.4 } }

local sim = m:compile()
sim:set_input(x, { { 0.5, -1.0 } })

-- reference: BDF far tighter than anything compared below
sim:run { solver = "cvode-bdf", t_end = p.t_end, rtol = 1e-12, atol = 1e-14 }
local ref = sim:read(slow.soma)

local function rel_error(a, b)
  local num, den = 0, 0
  for i = 1, #b do
    num = num + (a[i] - b[i]) ^ 2
    den = den + b[i] ^ 2
  end
  return math.sqrt(num / den)
end

local runs = {
  { label = "euler dt 1.6e-4", opts = { solver = "euler", dt = 1.6e-4 } },
  { label = "rk4 dt 2.5e-4", opts = { solver = "rk4", dt = 2.5e-4 } },
  { label = "cvode-adams", opts = { solver = "cvode-adams", rtol = p.rtol, atol = p.rtol * 1e-2 } },
  { label = "cvode-bdf (krylov)", opts = { solver = "cvode-bdf", rtol = p.rtol, atol = p.rtol * 1e-2 } },
  { label = "cvode-bdf (dense)", opts = { solver = "cvode-bdf", rtol = p.rtol, atol = p.rtol * 1e-2, linear_solver = "dense" } },
}

print(string.format("stiff circuit, t in [0, %g], error of slow.soma at the end", p.t_end))
print(string.format("%-20s %9s %10s %9s %10s", "solver", "steps", "rhs evals", "wall s", "rel error"))
for _, r in ipairs(runs) do
  r.opts.t_end = p.t_end
  local ok, out = pcall(sim.run, sim, r.opts)
  if ok then
    local st = out.stats
    print(string.format("%-20s %9d %10d %9.4f %10.2e", r.label, st.steps, st.rhs_evals,
      st.wall_seconds, rel_error(sim:read(slow.soma), ref)))
  else
    print(string.format("%-20s failed: %s", r.label, out))
  end
end
