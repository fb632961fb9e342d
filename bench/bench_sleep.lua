-- bench_sleep.lua — one sleep-phase (feedback) minibatch of the MNIST network (784-256-256-256-10,
-- batch 128, the paper's feedback settings: 48 euler-maruyama steps, recordings, rule (13), Adam)
-- against a baseline timed in the same run on the same minibatches: 48 feedforward passes of the
-- network (dfc.forward: the layers' dgemm and tanh, no engine run, so untouched by the solver,
-- noise and recording code). The sleep phase is timed with the minibatch in one simulation
-- (threads = 1, BLAS at its default thread count) and split into two halves run at once
-- (threads = 2, apical.run_parallel, BLAS single-threaded). Medians over `reps` minibatches.
--   build/bin/apical run bench/bench_sleep.lua [--set reps=15]
local apical = require "apical"
local dfc = apical.plugin "dfc"
local p = apical.params { reps = 15 }

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or 0.5 * (t[n // 2] + t[n // 2 + 1])
end

local fb = { k_p_fb = 0.157, alpha_fb = 0.613, tau_v_fb = 0.0063, dt_fb = 0.00203, tmax_fb = 48,
  tau_A = 0.325, sigma = 0.00152 }
local t = dfc.trainer { task = "mnist", task_opts = { n_train = 128 * (p.reps + 1) },
  hidden = { 256, 256, 256 }, method = "dfc-ssa", feedback = "trained", optimizer_fb = "adam",
  k_p_fb = fb.k_p_fb, alpha_fb = fb.alpha_fb, tau_v_fb = fb.tau_v_fb, dt_fb = fb.dt_fb,
  tmax_fb = fb.tmax_fb, tau_A = fb.tau_A, sigma = fb.sigma, progress = false, checkpoint = false }
fb.threads = 2
local split = dfc.sleep(t.net, fb)
local blas_default = apical.blas_threads()
local out = apical.zeros { 128, 10 }
local one, two, ffw = {}, {}, {}
-- the same minibatches three ways: one simulation and the baseline with BLAS at its default
-- threads, then the halves with BLAS single-threaded (not interleaved: after a multi-threaded
-- product an idle BLAS worker spins for a while and would take a core from the halves)
local function pass(fn)
  local k = 0
  for X in t.task.train:batches { batch = 128 } do
    fn(X, k)
    k = k + 1
    if k > p.reps then break end
  end
end
pass(function(X, k)
  local t0 = apical.clock()
  t.opt_fb:zero()
  t.sleep:gradient(X, t.opt_fb, 1000 + k)
  t.opt_fb:step()
  local t1 = apical.clock()
  for _ = 1, 48 do dfc.forward { model = t.net.model, x = X, out = out } end
  local t2 = apical.clock()
  if k > 0 then one[#one + 1], ffw[#ffw + 1] = t1 - t0, t2 - t1 end -- the first warms up
end)
apical.blas_threads(1)
pass(function(X, k)
  local t0 = apical.clock()
  t.opt_fb:zero()
  split:gradient(X, t.opt_fb, 1000 + k)
  t.opt_fb:step()
  if k > 0 then two[#two + 1] = apical.clock() - t0 end
end)
apical.blas_threads(blas_default)
local m1, m2, mf = median(one), median(two), median(ffw)
print("| measure | value |")
print("|---|---|")
print(string.format("| sleep-phase minibatch, one simulation, s (median of %d) | %.4f |", #one, m1))
print(string.format("| sleep-phase minibatch, two halves at once, s | %.4f |", m2))
print(string.format("| 48 feedforward passes, s (baseline) | %.4f |", mf))
print(string.format("| ratio one simulation / 48 feedforward passes | %.2f |", m1 / mf))
print(string.format("| **ratio two halves / one simulation** | **%.2f** |", m2 / m1))
