-- bench_fig3.lua — one epoch of each Fig. 3 method on the reference's student-teacher task
-- (examples/fig3.lua's settings: 15-10-10-5 tanh student, batch 128, 39 minibatches, DFC and
-- DFC-SS with 1000 Euler steps of 0.005, trained feedback's sleep phase with 50 steps per
-- minibatch) against a baseline timed in the same run: a BP epoch (dfc.bp on the same
-- minibatches). Per method: a forward epoch (the update computed and applied, no measures) and,
-- for trained feedback, a feedback epoch; medians over `reps` epochs, and the ratio to BP's.
--   flock /tmp/apical-bench.lock build/bin/apical run bench/bench_fig3.lua [--set reps=3]
local apical = require "apical"
local dfc = apical.plugin "dfc"
local sleep = require "apical.plugins.dfc.sleep"
local p = apical.params { reps = 3, methods = "bp,dfa,dfc-ssa,dfc-ss,dfc" }

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or 0.5 * (t[n // 2] + t[n // 2 + 1])
end

local base = { task = "student_teacher", hidden = { 10, 10 }, batch = 128, optimizer = "sgd", clip = 1.0,
  lr = 0.05, lambda = 0.05, normalize_lr = true, target_mode = "mean", k_p = 1.5, alpha = 0.0015,
  tau_v = 0.2, dt = 0.005, tmax = 1000, progress = false, checkpoint = false, epochs_fb = 0,
  extra_fb_epochs = 0, feedback = "trained" }

local function forward_epoch(t, e)
  local t0 = apical.clock()
  for X, Y in t.task.train:batches { batch = t.B, shuffle = true, seed = 1, epoch = e, drop_last = true } do
    t.opt:zero()
    t:gradient(X, Y)
    t.opt:step()
  end
  return apical.clock() - t0
end

local function feedback_epoch(t, k)
  local t0 = apical.clock()
  local nb = 0
  for X in t.task.train:batches { batch = t.B, shuffle = true, seed = 2, epoch = k, drop_last = true } do
    nb = nb + 1
    t.opt_fb:zero()
    t.sleep:gradient(X, t.opt_fb, sleep.noise_seed(1, k, nb))
    t.opt_fb:step()
  end
  return apical.clock() - t0
end

local rows, bp = {}, nil
for m in tostring(p.methods):gmatch("[^,]+") do
  local cfg = {}
  for k, v in pairs(base) do cfg[k] = v end
  cfg.method = m
  if m == "bp" or m == "dfa" then cfg.feedback = "given" end
  local t = dfc.trainer(cfg)
  local fw, fb = {}, {}
  for r = 1, p.reps do
    fw[r] = forward_epoch(t, r)
    if t.sleep then fb[r] = feedback_epoch(t, r) end
  end
  local row = { m, median(fw), #fb > 0 and median(fb) or nil }
  if m == "bp" then bp = row[2] end
  rows[#rows + 1] = row
end
print(string.format("| method | forward epoch (s) | x BP | feedback epoch (s) |"))
print("|---|---|---|---|")
for _, r in ipairs(rows) do
  print(string.format("| %s | %.3f | %s | %s |", r[1], r[2], bp and string.format("%.0f", r[2] / bp) or "-",
    r[3] and string.format("%.3f", r[3]) or "-"))
end
