-- bench/bench_mpi_shard.lua — where a small shard loses (docs/scaling.md, "A cluster model"):
-- one DFC forward-phase simulation of the paper's MNIST network (784-256-256-256-10, Euler,
-- 500 steps of 0.02, the published update order, the forward rule accumulated over all points)
-- on one core (one OpenBLAS thread) for shards of b samples; the time per minibatch and per
-- step, with and without the accumulation, and the compute efficiency of splitting 128 samples
-- into 128 / b shards, t(128) / ((128 / b) t(b)), which bounds the parallel efficiency at
-- 128 / b ranks whatever the interconnect.
--   OPENBLAS_NUM_THREADS=1 flock /tmp/apical-bench.lock build/bin/apical run bench/bench_mpi_shard.lua [--set reps=5]
local apical = require "apical"
local dfc = apical.plugin "dfc"
local p = apical.params { reps = 5 }
apical.blas_threads(1)
local c = dfc.paper.config("mnist", "dfc", "weight_product")
local ds = dfc.tasks.mnist { n_train = 128 }
local X, Y
for bx, by in ds.train:batches { batch = 128 } do X, Y = bx, by break end

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- seconds of one simulation of the first b samples, accumulation on or off (median of reps)
local function t_sim(b, acc)
  local net = dfc.network { sizes = { 784, 256, 256, 256, 10 }, batch = b, k_p = c.k_p, alpha = c.alpha,
    tau_v = c.tau_v, activation = c.activation, output_activation = c.output_activation, seed = 1 }
  dfc.weight_product { model = net.model }
  local sim = net.model:compile()
  local x, R, RS = X:rows(1, b), apical.zeros { b, 10 }, apical.zeros { b, 10 }
  dfc.forward { model = net.model, x = x, out = R }
  dfc.targets { rL = R, y = Y:rows(1, b), loss = "ce", lambda = c.lambda, mode = "mean", out = RS }
  sim:set_input("x", x)
  sim:set_input("target", RS)
  local o = { solver = "euler", dt = c.dt, steps = c.tmax - 1, ordered = true,
    order = net:update_order(false), accumulation = "all", accumulate = acc, stability_check = false }
  sim:run(o) -- warm-up
  local ts = {}
  for _ = 1, p.reps do
    local t0 = apical.clock()
    sim:run(o)
    ts[#ts + 1] = apical.clock() - t0
  end
  sim:close()
  return median(ts)
end

print(string.format("one core, %d repetitions (medians), %d steps", p.reps, c.tmax - 1))
print("| b (ranks for 128) | t(b) ms | per step us | without accumulation ms | accumulation share | t(128)/(128/b)/t(b) |")
print("|---|---|---|---|---|---|")
local t128
for _, b in ipairs { 128, 64, 32, 16, 8, 4 } do
  local on, off = t_sim(b, true), t_sim(b, false)
  t128 = t128 or on
  print(string.format("| %d (%d) | %.1f | %.1f | %.1f | %.0f %% | %.0f %% |", b, 128 // b, on * 1e3,
    on / (c.tmax - 1) * 1e6, off * 1e3, 100 * (on - off) / on, 100 * t128 / ((128 / b) * on)))
end
