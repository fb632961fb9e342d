-- stiff_circuit.lua — the same circuit stiff and not, side by side: a fast population slaved to
-- a slow one (tau = 1), with tanh units; the fast one has tau = 1e-4 (stiff: explicit solvers
-- must take steps below it to stay stable, cvode-bdf steps over it) or tau = 0.1 (not stiff).
-- Prints each solver's work and its error against a tight reference, for every linear solver
-- and preconditioner of cvode-bdf (docs/solvers.md, "Stiff circuits"). cvode-adams (non-stiff,
-- fixed-point iteration) is held back by stability like the explicit solvers.
--   build/bin/apical run examples/stiff_circuit.lua [--set t_end=5] [--set rtol=1e-6] [--set batch=64]
local apical = require "apical"
local p = apical.params { t_end = 2.0, rtol = 1e-8, batch = 4, tau_fast = 1e-4, tau_slow_fast = 0.1 }

-- the circuit with fast time constant tau; each sample its own input
local function circuit(tau)
  local m = apical.model { batch = p.batch }
  local x = m:input { name = "x", size = 2 }
  local fast = m:population { name = "fast", size = 2, neuron = apical.rate { tau = tau }, activation = "tanh" }
  local slow = m:population { name = "slow", size = 2, neuron = apical.rate { tau = 1 }, activation = "tanh" }
  m:connect(x, slow.soma, { kind = "one_to_one" })
  m:connect(slow, fast.soma, { name = "slow_to_fast" }):set_weights { { 1.0, 0.5 }, { -0.3, 0.8 } }
  m:connect(fast, slow.soma, { name = "fast_to_slow" }):set_weights { { -0.5, 0.2 }, { 0.1, -0.4 } }
  local sim = m:compile()
  local input = {}
  for b = 1, p.batch do input[b] = { 0.5 + 0.1 * b, -1.0 + 0.05 * b } end
  sim:set_input(x, input)
  -- reference: BDF with a dense Newton matrix, far tighter than anything compared below
  sim:run { solver = "cvode-bdf", t_end = p.t_end, rtol = 1e-12, atol = 1e-14, linear_solver = "dense" }
  return { sim = sim, slow = slow, ref = sim:read(slow.soma) }
end

local function rel_error(a, b)
  local num, den = 0, 0
  for i = 1, #b do
    num = num + (a[i] - b[i]) ^ 2
    den = den + b[i] ^ 2
  end
  return math.sqrt(num / den)
end

local tol = { rtol = p.rtol, atol = p.rtol * 1e-2 }
local function bdf(extra)
  local o = { solver = "cvode-bdf", rtol = tol.rtol, atol = tol.atol }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end
local runs = {
  { label = "euler dt 1.6e-4", opts = { solver = "euler", dt = 1.6e-4 } },
  { label = "rk4 dt 2.5e-4", opts = { solver = "rk4", dt = 2.5e-4 } },
  { label = "cvode-adams", opts = { solver = "cvode-adams", rtol = tol.rtol, atol = tol.atol } },
  { label = "bdf (default)", opts = bdf() },
  { label = "bdf krylov, none", opts = bdf { linear_solver = "krylov", preconditioner = "none" } },
  { label = "bdf krylov, diagonal", opts = bdf { linear_solver = "krylov", preconditioner = "diagonal" } },
  { label = "bdf krylov, block", opts = bdf { linear_solver = "krylov", preconditioner = "block" } },
  { label = "bdf dense", opts = bdf { linear_solver = "dense" } },
}

local circuits = { stiff = circuit(p.tau_fast), mild = circuit(p.tau_slow_fast) }
local function cell(c, opts)
  opts.t_end = p.t_end
  local ok, out = pcall(c.sim.run, c.sim, opts)
  if not ok then return string.format("%-28s", "failed: " .. (tostring(out):match("CV_[%u_]+") or "error")) end
  local st = out.stats
  return string.format("%8d %9d %8.2e%s", st.steps, st.rhs_evals, rel_error(c.sim:read(c.slow.soma), c.ref),
    rel_error(c.sim:read(c.slow.soma), c.ref) > 10 * p.rtol and opts.rtol and "!" or " ")
end

print(string.format("t in [0, %g], batch %d, rtol %g; error of slow.soma at the end (! = over 10 x rtol)",
  p.t_end, p.batch, p.rtol))
print(string.format("%-22s | %-28s | %-28s", "", "stiff (tau_fast " .. p.tau_fast .. ")",
  "not stiff (tau_fast " .. p.tau_slow_fast .. ")"))
print(string.format("%-22s | %8s %9s %8s  | %8s %9s %8s", "solver", "steps", "rhs", "error", "steps", "rhs", "error"))
for _, r in ipairs(runs) do
  local a = cell(circuits.stiff, r.opts)
  local b = cell(circuits.mild, r.opts)
  print(string.format("%-22s | %s | %s", r.label, a, b))
end
