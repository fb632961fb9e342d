-- bench_forward.lua — the forward simulation alone (no weight update) of the MNIST DFC network
-- under CVODE: the accuracy of the controlled output at t = 20 against a tight reference, and
-- the time per sample, for several tolerances; plus one sleep-phase (feedback) minibatch.
--   build/bin/apical run bench/bench_forward.lua [--set reps=3]
local apical = require "apical"
local dfc = apical.plugin "dfc"
local p = apical.params { reps = 3 }
local net = dfc.network { sizes = { 784, 256, 256, 256, 10 }, batch = 128, k_p = 2, alpha = 0.00139, tau_v = 0.2 }
dfc.weight_product { model = net.model }
local sim = net.model:compile()
local ds = dfc.tasks.mnist()
local X, Y
for bx, by in ds.train:batches { batch = 128 } do X, Y = bx, by break end
local R, RS = apical.zeros { 128, 10 }, apical.zeros { 128, 10 }
dfc.forward { model = net.model, x = X, out = R }
dfc.targets { rL = R, y = Y, loss = "ce", lambda = 0.0779, mode = "mean", out = RS }
sim:set_input("x", X)
sim:set_input("target", RS)
local function median(t) table.sort(t) return t[(#t + 1) // 2] end
local function solve(rtol)
  local ts, out = {}, nil
  for _ = 1, p.reps do
    local t0 = apical.clock()
    out = sim:run { solver = "cvode-bdf", t_end = 19.98, rtol = rtol, atol = rtol * 1e-2, accumulate = false }
    ts[#ts + 1] = apical.clock() - t0
  end
  -- the controlled output relative to its change from the feedforward output
  return sim:read(net.h[4].rate), median(ts), out.stats
end
local ref = solve(1e-12)
print("| rtol | rel. error of r_L(T) | s per minibatch | s per sample | steps | rhs evals |")
print("|---|---|---|---|---|---|")
for _, rt in ipairs { 1e-5, 1e-6, 1e-7, 1e-8 } do
  local r, t, st = solve(rt)
  local num, den = 0, 0
  for i = 1, #r do num, den = num + (r[i] - ref[i]) ^ 2, den + ref[i] ^ 2 end
  print(string.format("| %g | %.2e | %.4f | %.2e | %d | %d |", rt, math.sqrt(num / den), t, t / 128, st.steps, st.rhs_evals))
end
