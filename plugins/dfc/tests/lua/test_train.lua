-- test_train.lua — the DFC trainers end to end on the student-teacher task: each variant
-- lowers the training loss at least tenfold in a short seeded run; a run resumed from its
-- checkpoint gives the same numbers as one that never stopped; bad configurations are refused.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local tmp = fx.tmpdir()

local function cfg(method, extra)
  local c = { task = "student_teacher", method = method, optimizer = "adam", lr = 0.01,
    epochs = 12, defaults = { tmax = 100, dt = 0.05 }, out_dir = tmp, progress = false, seed = 3,
    task_opts = { variant = "small", n_train = 2560, n_valid = 256, n_test = 256 } }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

for _, method in ipairs { "dfc", "dfc-ss", "dfc-ssa" } do
  for _, solver in ipairs(method == "dfc-ssa" and { "euler" } or { "euler", "cvode-bdf" }) do
    local r = dfc.train(cfg(method, { solver = method ~= "dfc-ssa" and solver or nil }))
    local first, last = r.log[1].train_loss, r.log[#r.log].train_loss
    print(string.format("%-8s %-10s loss %.4g -> %.4g (%.1fx)", method, solver, first, last, first / last))
    assert(first / last >= 10, method .. " with " .. solver .. " did not lower the loss tenfold")
  end
end

-- a new run never shares a directory: one of its name that exists, even empty (another run
-- started in the same second that has not written its config.lua yet), is left alone. The
-- names of this second and the next five minutes are taken beforehand, twice (the bare and the
-- "-2"): the run may start seconds later on a loaded machine, and must still land on a taken name.
do
  local name, now, taken, dirs = "claim", os.time(), {}, {}
  for k = 0, 300 do
    local stamp = os.date("%Y%m%d-%H%M%S", now + k)
    taken[stamp] = true
    for _, sfx in ipairs { "", "-2" } do dirs[#dirs + 1] = "'" .. tmp .. "/" .. name .. "-" .. stamp .. sfx .. "'" end
  end
  assert(os.execute("mkdir -p " .. table.concat(dirs, " ")))
  local r = dfc.train(cfg("dfc-ssa", { epochs = 1, name = name }))
  local stamp = r.run_dir:match(name .. "%-(%d+%-%d+)")
  assert(taken[stamp], "the run started within the names taken: " .. r.run_dir)
  assert(r.run_dir == tmp .. "/" .. name .. "-" .. stamp .. "-3", r.run_dir)
  local f = io.open(tmp .. "/" .. name .. "-" .. stamp .. "/config.lua")
  assert(f == nil, "an existing directory without config.lua was reused")
end

-- resume: 4 epochs in one go == 2 epochs, then 2 more from the checkpoint
local straight = dfc.train(cfg("dfc", { epochs = 4, name = "straight" }))
local part = dfc.train(cfg("dfc", { epochs = 2, name = "part" }))
local resumed = dfc.train(cfg("dfc", { epochs = 4, resume = part.run_dir }))
assert(#resumed.log == #straight.log, "resumed log length")
for e = 1, #straight.log do
  for _, k in ipairs { "train_loss", "valid_loss", "test_loss" } do
    assert(straight.log[e][k] == resumed.log[e][k],
      string.format("epoch %d %s: %.17g vs %.17g", e - 1, k, straight.log[e][k], resumed.log[e][k]))
  end
end
for i = 1, straight.trainer.L do
  local a, b = straight.trainer.net.W[i]:weights(), resumed.trainer.net.W[i]:weights()
  for k = 1, #a do assert(a[k] == b[k], "W" .. i .. " differs after resuming") end
end

-- resume with trained feedback (1 pre-training epoch, then 1 feedback epoch after each forward
-- epoch): the feedback optimisers' state, the feedback shuffling and the sleep-phase noise seeds
-- are restored too; from the checkpoint after a forward epoch and from the one written right
-- after the pre-training (epochs = 0)
local function same_run(a, b, what)
  assert(#a.log == #b.log, what .. ": log length")
  for e = 1, #a.log do
    for _, k in ipairs { "train_loss", "valid_loss", "test_loss", "fb_grad_norm", "fb_condition2" } do
      assert(a.log[e][k] == b.log[e][k],
        string.format("%s: epoch %d %s: %.17g vs %.17g", what, e - 1, k, a.log[e][k], b.log[e][k]))
    end
  end
  for i = 1, a.trainer.L do
    for _, p in ipairs { "W", "Q" } do
      local x, y = a.trainer.net[p][i]:weights(), b.trainer.net[p][i]:weights()
      for k = 1, #x do assert(x[k] == y[k], what .. ": " .. p .. i .. " differs after resuming") end
    end
  end
end
local fb = { feedback = "trained", epochs_fb = 1 }
local function fbcfg(extra)
  local e = {}
  for k, v in pairs(fb) do e[k] = v end
  for k, v in pairs(extra) do e[k] = v end
  return cfg("dfc", e)
end
local fb_straight = dfc.train(fbcfg { epochs = 2, name = "fb-straight" })
assert(fb_straight.log[1].fb_epochs == 1 and fb_straight.log[2].fb_epochs == 1)
assert(fb_straight.log[1].fb_grad_norm > 0 and fb_straight.log[3].fb_condition2 > 0)
local fb_part = dfc.train(fbcfg { epochs = 1, name = "fb-part" })
same_run(fb_straight, dfc.train(fbcfg { epochs = 2, resume = fb_part.run_dir }), "trained feedback")
local fb_pre = dfc.train(fbcfg { epochs = 0, name = "fb-pre" })
same_run(fb_straight, dfc.train(fbcfg { epochs = 2, resume = fb_pre.run_dir }), "trained feedback from epoch 0")
local fh = assert(io.open(fb_straight.run_dir .. "/log.csv"))
local fb_header = fh:read("l")
fh:close()
assert(fb_header:match(",fb_epochs,fb_grad_norm,fb_condition2,fb_wall_seconds$"), fb_header)
assert(io.open(fb_straight.run_dir .. "/checkpoint/opt_fb.Q1.m.npy") == nil) -- SGD: no moments
assert(io.open(fb_straight.run_dir .. "/checkpoint/opt_fb.steps.npy")):close()
assert(io.open(fb_straight.run_dir .. "/checkpoint/opt_fb_init.steps.npy")):close()

-- the run directory
local f = assert(io.open(straight.run_dir .. "/log.csv"))
local header = f:read("l")
f:close()
assert(header:match("^epoch,train_loss,valid_loss"), header)
assert(assert(loadfile(straight.run_dir .. "/config.lua"))().method == "dfc")

-- threads = 2: the minibatch's simulation in two halves run at once. Euler gives the
-- one-simulation update up to rounding; CVODE steps each half on its own, so its update agrees
-- to the tolerances; with the convergence test the same samples are dropped.
local function gradient_of(extra)
  local t = dfc.trainer(cfg("dfc", extra))
  local X, Y = nil, nil
  for x, y in t.task.train:batches { batch = 128 } do X, Y = x, y break end
  t.opt:zero()
  local st = t:gradient(X, Y)
  local g = {}
  for i = 1, t.L do
    local dW = t.opt:grad(t.net.W[i])
    for k = 1, #dW do g[#g + 1] = dW[k] end
  end
  return g, st
end
local function rel_diff(a, b)
  local d, n = 0, 0
  for k = 1, #a do d, n = d + (a[k] - b[k]) ^ 2, n + b[k] ^ 2 end
  return math.sqrt(d / n)
end
for _, case in ipairs {
  { { solver = "euler" }, 1e-13 },
  -- tmax = 40: the short simulation leaves some samples unsettled, which the test drops
  { { solver = "euler", convergence_test = true, tmax = 40 }, 1e-13 },
  { { solver = "cvode-bdf", rtol = 1e-9, atol = 1e-11 }, 1e-6 },
} do
  local extra, tol = case[1], case[2]
  local g1, s1 = gradient_of(extra)
  extra.threads = 2
  local g2, s2 = gradient_of(extra)
  local d = rel_diff(g2, g1)
  print(string.format("threads = 2, %s%s: relative difference of the update %.3g (%d samples dropped)",
    extra.solver, extra.convergence_test and " with the convergence test" or "", d, s2.dropped or 0))
  assert(d <= tol and d == d, "the split update differs from the one-simulation update")
  assert((s1.dropped or 0) == (s2.dropped or 0), "the same samples dropped")
  if extra.convergence_test then assert(s2.dropped > 0 and s2.dropped < 128, "some samples dropped") end
end
-- and a run with it trains as well
do
  local r = dfc.train(cfg("dfc", { threads = 2, epochs = 4, name = "threads" }))
  assert(r.log[1].train_loss / r.log[#r.log].train_loss >= 3, "threads = 2 trains")
end

-- bad configurations
local fails = fx.fails -- the message starts with the line of the call
fails(function() dfc.train { methd = "dfc" } end, 'unknown option "methd"')
fails(function() dfc.train { method = "dfx" } end, 'unknown method "dfx"')
fails(function() dfc.train { lr = "fast" } end, "option lr must be a number")
fails(function() dfc.train { resume = tmp .. "/nothing" } end, "no checkpoint")
fails(function() dfc.train { threads = 3 } end, "threads = 3 must be an integer from 1 to 64 that divides batch = 128")
fails(function() dfc.train { threads = 2, feedback_pathway = "layerwise" } end, "threads > 1 needs direct feedback")

check.done("test_train")
