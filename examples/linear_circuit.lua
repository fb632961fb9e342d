-- linear_circuit.lua — leaky linear rate units with random recurrent coupling,
--   dv/dt = (-v + W v) / tau,
-- whose exact solution is v(t) = expm(A t) v0 with A = (W - I) / tau. Every solver is compared
-- with it; the fixed-step ones at two step sizes show their convergence order.
--   build/bin/apical run examples/linear_circuit.lua [--set n=8] [--set t_end=3]
local apical = require "apical"
local p = apical.params { n = 6, batch = 2, t_end = 3, tau = 1, seed = 7 }

local m = apical.model { batch = p.batch }
local h = m:population { name = "h", size = p.n, neuron = apical.rate { tau = p.tau }, activation = "linear" }
local rec = m:connect(h, h.soma, { name = "recurrent", init = apical.init.normal { std = 0.3, seed = p.seed } })
local W = rec:weights()

-- start values, one row per sample
local v0 = {}
for b = 1, p.batch do
  v0[b] = {}
  for i = 1, p.n do v0[b][i] = math.sin(b * 7 + i * 3) end
end

-- expm(A t) by scaling and squaring with a Taylor series
local function matmul(X, Y)
  local n, Z = #X, {}
  for i = 1, n do
    Z[i] = {}
    for j = 1, n do
      local s = 0
      for k = 1, n do s = s + X[i][k] * Y[k][j] end
      Z[i][j] = s
    end
  end
  return Z
end
local function expm(A)
  local n, norm = #A, 0
  for i = 1, n do
    local row = 0
    for j = 1, n do row = row + math.abs(A[i][j]) end
    norm = math.max(norm, row)
  end
  local s = math.max(0, math.ceil(math.log(norm, 2)) + 1)
  local S, E, T = {}, {}, {}
  for i = 1, n do
    S[i], E[i], T[i] = {}, {}, {}
    for j = 1, n do
      S[i][j] = A[i][j] / 2 ^ s
      E[i][j] = i == j and 1 or 0
      T[i][j] = E[i][j]
    end
  end
  for k = 1, 30 do
    T = matmul(T, S)
    for i = 1, n do
      for j = 1, n do
        T[i][j] = T[i][j] / k
        E[i][j] = E[i][j] + T[i][j]
      end
    end
  end
  for _ = 1, s do E = matmul(E, E) end
  return E
end

local A = {}
for i = 1, p.n do
  A[i] = {}
  for j = 1, p.n do A[i][j] = (W:at(i, j) - (i == j and 1 or 0)) / p.tau * p.t_end end
end
local E = expm(A)
local exact = {}
for b = 1, p.batch do
  for i = 1, p.n do
    local s = 0
    for j = 1, p.n do s = s + E[i][j] * v0[b][j] end
    exact[#exact + 1] = s
  end
end

local sim = m:compile()
local function solve(opts)
  sim:write_state(h.soma, v0)
  opts.keep_state = true
  opts.t_end = p.t_end
  local out = sim:run(opts)
  local v = sim:read(h.soma)
  local num, den = 0, 0
  for i = 1, #exact do
    num = num + (v[i] - exact[i]) ^ 2
    den = den + exact[i] ^ 2
  end
  return math.sqrt(num / den), out.stats
end

print(string.format("linear circuit, %d units, batch %d, t = %g: relative error against expm(A t) v0",
  p.n, p.batch, p.t_end))
print(string.format("%-28s %8s %10s %10s %8s", "solver", "steps", "rhs evals", "rel error", "order"))
local last
for _, r in ipairs {
  { "euler dt 0.01", { solver = "euler", dt = 0.01 } },
  { "euler dt 0.005", { solver = "euler", dt = 0.005 }, true },
  { "rk4 dt 0.1", { solver = "rk4", dt = 0.1 } },
  { "rk4 dt 0.05", { solver = "rk4", dt = 0.05 }, true },
  { "cvode-adams rtol 1e-10", { solver = "cvode-adams", rtol = 1e-10, atol = 1e-12 } },
  { "cvode-bdf rtol 1e-10", { solver = "cvode-bdf", rtol = 1e-10, atol = 1e-12 } },
  { "cvode-bdf dense rtol 1e-10", { solver = "cvode-bdf", rtol = 1e-10, atol = 1e-12, linear_solver = "dense" } },
} do
  local err, st = solve(r[2])
  local order = r[3] and string.format("%8.2f", math.log(last / err, 2)) or ""
  print(string.format("%-28s %8d %10d %10.2e %8s", r[1], st.steps, st.rhs_evals, err, order))
  last = err
end
