-- bench_forward.lua — the forward simulation alone (no weight update) of the MNIST DFC network
-- under CVODE: the accuracy of the controlled output at t = 20 against a tight reference, and
-- the time per sample, for several tolerances, with the minibatch in one simulation and split
-- into two halves integrated at once (apical.run_parallel, each half its own CVODE run).
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
-- the halves: replicas of the network for 64 samples each
local halves = {}
for k = 1, 2 do
  local hn = dfc.network { sizes = { 784, 256, 256, 256, 10 }, batch = 64, k_p = 2, alpha = 0.00139, tau_v = 0.2 }
  dfc.copy_weights { from = net.model, to = hn.model, which = "WQ" }
  local hs = hn.model:compile()
  hs:set_input("x", X:rows((k - 1) * 64 + 1, 64))
  hs:set_input("target", RS:rows((k - 1) * 64 + 1, 64))
  halves[k] = { net = hn, sim = hs }
end
local function median(t) table.sort(t) return t[(#t + 1) // 2] end
local blas_default = apical.blas_threads()
local function solve(rtol, split)
  local ts, stats = {}, nil
  local o = { solver = "cvode-bdf", t_end = 19.98, rtol = rtol, atol = rtol * 1e-2, accumulate = false }
  -- one simulation: BLAS with its default threads; the halves: BLAS single-threaded
  apical.blas_threads(split and 1 or blas_default)
  for _ = 1, p.reps do
    local t0 = apical.clock()
    if split then
      local outs = apical.run_parallel { { halves[1].sim, o }, { halves[2].sim, o } }
      stats = outs[1].stats
    else
      stats = sim:run(o).stats
    end
    ts[#ts + 1] = apical.clock() - t0
  end
  if not split then return sim:read(net.h[4].rate), median(ts), stats end
  -- the two halves' controlled outputs, stacked
  local r = apical.zeros { 128, 10 }
  for k = 1, 2 do
    local h = halves[k].sim:read(halves[k].net.h[4].rate)
    for i = 1, #h do r[(k - 1) * 640 + i] = h[i] end
  end
  return r, median(ts), stats
end
local ref = solve(1e-12)
print("| rtol | simulations | rel. error of r_L(T) | s per minibatch | s per sample | steps | rhs evals |")
print("|---|---|---|---|---|---|---|")
for _, rt in ipairs { 1e-5, 3e-6, 1e-6, 1e-7, 1e-8 } do
  for _, split in ipairs { false, true } do
    local r, t, st = solve(rt, split)
    local num, den = 0, 0
    for i = 1, #r do num, den = num + (r[i] - ref[i]) ^ 2, den + ref[i] ^ 2 end
    print(string.format("| %g | %s | %.2e | %.4f | %.2e | %d | %d |", rt, split and "2 halves at once" or "1", math.sqrt(num / den), t,
      t / 128, st.steps, st.rhs_evals))
  end
end
