-- test_divergence.lua — a diverging run stops at once with a message saying what to do
-- (docs/training.md, "Divergence"): lr = 1e6 under cvode-bdf and cvode-adams (which, unnoticed,
-- made training 500 times slower) and under euler; the detector's step-count warning, once;
-- a sane run is not stopped.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert
local divergence = require "apical.plugins.dfc.divergence"

local tmp = os.tmpname()
os.remove(tmp)
assert(apical.fs.mkdir(tmp, true))

local function cfg(extra)
  local c = { task = "student_teacher", method = "dfc", hidden = { 6 }, batch = 32, tmax = 30,
    dt = 0.05, seed = 5, epochs = 3, out_dir = tmp, progress = false,
    task_opts = { n_train = 256, n_valid = 64, n_test = 64 } }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

for _, solver in ipairs { "cvode-bdf", "cvode-adams", "euler" } do
  local ok, err = pcall(dfc.train, cfg { solver = solver, lr = 1e6 })
  assert(not ok, solver .. ": lr = 1e6 was not stopped")
  print(solver .. ": " .. err)
  -- the first update blows the weights up: the next minibatch's loss stops the run before its
  -- simulation
  local nb = tonumber(err:match("dfc%.train: training diverged at epoch 1, minibatch (%d+): "))
  assert(nb == 2, solver .. ": " .. err)
  assert(err:find("lower lr (now 1e+06)", 1, true), err)
  assert(err:find("The run directory keeps the checkpoint of the last completed epoch, if any", 1, true), err)
end

-- a sane learning rate trains on without a warning
do
  local r = dfc.train(cfg { solver = "cvode-bdf", lr = 0.05 })
  assert(#r.warnings == 0, "a sane run warned: " .. tostring(r.warnings[1]))
end

-- the detector: a non-finite loss stops at once; with patience 3, a loss spike of 2
-- minibatches does not stop; exploding step counts warn once
do
  local c = { lr = 0.5, clip = 0, solver = "cvode-adams" }
  local d = divergence.new(c, 2.0)
  local ok, err = pcall(d.check_loss, d, 2, 7, 0 / 0)
  assert(not ok and err:find("at epoch 2, minibatch 7: the minibatch loss is", 1, true), err)
  assert(err:find("lower lr (now 0.5) or bound the updates with clip", 1, true), err)
  local patience = divergence.patience
  divergence.patience = 3
  d = divergence.new(c, 2.0)
  for k = 1, 2 do d:check_loss(1, k, 3e4 * 2) end
  d:check_loss(1, 9, 1.0) -- back to normal: the count starts again
  for k = 1, 2 do d:check_loss(1, 9 + k, 3e4 * 2) end
  ok, err = pcall(d.check_loss, d, 1, 20, 3e4 * 2)
  assert(not ok and err:find("the minibatch loss 6e+04 is 3e+04 times the initial training loss 2 (the " ..
    "limit is 10000 times, 3 minibatches in a row)", 1, true), err)
  divergence.patience = patience
  d = divergence.new(c, 2.0)
  d:check_loss(1, 1, 1e4 * 2 * 0.99) -- below the factor
  ok = pcall(d.check_loss, d, 1, 2, 1e4 * 2 * 1.01)
  assert(not ok, "above the factor: stopped")
  d = divergence.new(c, 2.0)
  for k = 1, divergence.early do assert(d:check_steps(1, k, 30 + k % 5) == nil) end
  assert(d:check_steps(1, 17, 50 * 32) == nil, "50 times the median (32) is not yet too many")
  local w = d:check_steps(2, 3, 50 * 32 + 1)
  assert(w and w:find("at epoch 2, minibatch 3 the solver took 1601 steps, 50 times the median 32 " ..
    "of the run's first 16 minibatches", 1, true), tostring(w))
  assert(w:find("cvode-adams slow; lower lr (now 0.5) or bound the updates with clip, or use " ..
    "solver = \"euler\"", 1, true), w)
  assert(d:check_steps(2, 4, 1e6) == nil, "the warning is given once")
end

assert(apical.fs.remove_tree(tmp))
check.done("test_divergence")
