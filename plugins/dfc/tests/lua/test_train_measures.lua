-- test_train_measures.lua — what the trainer records beside its updates: the measures of
-- App. F.1 every measures_every minibatches (measures.csv, epoch means in log.csv, kept across
-- a resume), and the fixed feedback variants: weight_product sets Q once from the initial
-- forward weights, weight_product_tracking recomputes it before every minibatch.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local tmp = fx.tmpdir()

local function cfg(method, extra)
  local c = { task = "student_teacher", method = method, optimizer = "sgd", lr = 0.05,
    epochs = 2, defaults = { tmax = 100, dt = 0.05 }, out_dir = tmp, progress = false, seed = 3,
    task_opts = { variant = "small", n_train = 640, n_valid = 64, n_test = 64 }, batch = 64, measures_every = 3 }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local function read_csv(path)
  local rows, header = {}, nil
  for line in io.lines(path) do
    local f = {}
    for v in line:gmatch("[^,]+") do f[#f + 1] = v end
    if not header then
      header = f
    else
      local r = {}
      for i, name in ipairs(header) do r[name] = tonumber(f[i]) or (f[i] == "nan" and 0 / 0) end
      rows[#rows + 1] = r
    end
  end
  return rows, header
end

local function ok(what) print("ok", what) end

-- rows at iterations 1, 4, 7, 10 (10 minibatches per epoch), then 11, 14, 17, 20
for _, method in ipairs { "dfc", "dfc-ssa", "bp", "dfa" } do
  local r = dfc.train(cfg(method))
  local rows = read_csv(r.run_dir .. "/measures.csv")
  assert(#rows == 7, method .. ": " .. #rows .. " measure rows")
  local want = { 1, 4, 7, 10, 13, 16, 19 }
  for k, row in ipairs(rows) do
    assert(row.iteration == want[k], method .. ": iteration " .. row.iteration)
    assert(row.epoch == (want[k] <= 10 and 1 or 2))
    for _, name in ipairs { "condition1", "condition2", "stability", "angle_bp", "angle_mn", "angle_ssa",
        "angle_bp_1", "angle_mn_3" } do
      assert(row[name] == row[name], method .. ": " .. name .. " is NaN")
    end
    assert(row.condition2 > 0 and row.condition2 <= 1 + 1e-12)
    for _, k2 in ipairs { "bp", "mn", "ssa" } do
      assert(row["angle_" .. k2] >= 0 and row["angle_" .. k2] <= 180)
    end
  end
  -- each method's own reference: zero angle
  if method == "bp" then assert(rows[1].angle_bp < 1e-6, "bp vs bp") end
  if method == "dfc-ssa" then assert(rows[1].angle_ssa < 1e-6, "ssa vs ssa") end
  -- DFC with weight-product feedback on this small task: close to its analytic steady state
  if method == "dfc" then
    assert(rows[1].angle_ssa < 10, "dfc vs ssa: " .. rows[1].angle_ssa)
    assert(rows[1].stability < 0, "weight-product feedback is stable at the start")
  end
  -- DFA's random feedback is far from BP
  if method == "dfa" then assert(rows[1].angle_bp > 30, "dfa vs bp: " .. rows[1].angle_bp) end
  -- log.csv: epoch means of the rows (NaN for epoch 0)
  local log = read_csv(r.run_dir .. "/log.csv")
  assert(log[1].condition2 ~= log[1].condition2, "no measures before training")
  local m = (rows[1].condition2 + rows[2].condition2 + rows[3].condition2 + rows[4].condition2) / 4
  assert(math.abs(log[2].condition2 - m) <= 1e-9 * m, "epoch mean of Condition 2")
  ok(method .. " measures")
end

-- resume keeps the rows of the finished epochs and adds the same later ones
local straight = dfc.train(cfg("dfc", { name = "straight" }))
local part = dfc.train(cfg("dfc", { epochs = 1, name = "part" }))
local resumed = dfc.train(cfg("dfc", { resume = part.run_dir }))
local a, b = read_csv(straight.run_dir .. "/measures.csv"), read_csv(resumed.run_dir .. "/measures.csv")
assert(#a == #b, "resumed measures rows")
for k = 1, #a do
  for name, v in pairs(a[k]) do assert(b[k][name] == v, "resumed " .. name) end
end
ok("measures across a resume")

-- a resumed run keeps its configuration: a changed option is refused, naming it
local okr, errr = pcall(dfc.train, cfg("dfc", { resume = part.run_dir, lr = 0.1 }))
assert(not okr and errr:find("resume: option lr is 0.1 here but 0.05 in", 1, true), errr)
okr, errr = pcall(dfc.train, cfg("dfc", { resume = part.run_dir, task_opts = { variant = "small", n_train = 320, n_valid = 64, n_test = 64 } }))
assert(not okr and errr:find("option task_opts is", 1, true), errr)
ok("resume refuses a changed configuration")

-- bad values are refused
local okc, err = pcall(dfc.train, cfg("dfc", { measures_every = -1 }))
assert(not okc and err:find("measures_every = %-1 must be an integer >= 0"), err)
okc, err = pcall(dfc.train, cfg("dfc", { measures_gamma = -1 }))
assert(not okc and err:find("measures_gamma = %-1 must be >= 0"), err)
ok("bad measure options")

-- weight_product: Q fixed at the initial product; tracking: the product of the final weights
local function products(W)
  -- Q_i = W_{i+1}^T ... W_L^T (n_i x n_L), Q_L = I
  local L = #W
  local n = {}
  for i = 1, L do n[i] = W[i].shape[1] end
  local Q = {}
  local nL = n[L]
  local I = apical.zeros { nL, nL }
  for j = 1, nL do I[(j - 1) * nL + j] = 1 end
  Q[L] = I
  for i = L - 1, 1, -1 do
    -- Q_i = W_{i+1}^T Q_{i+1}: (n_i x n_{i+1}) (n_{i+1} x nL)
    local q = apical.zeros { n[i], nL }
    local Wn, Qn = W[i + 1], Q[i + 1]
    for r = 1, n[i] do
      for c = 1, nL do
        local s = 0
        for k = 1, n[i + 1] do s = s + Wn[(k - 1) * n[i] + r] * Qn[(k - 1) * nL + c] end
        q[(r - 1) * nL + c] = s
      end
    end
    Q[i] = q
  end
  return Q
end
local function weights(net)
  local W = {}
  for i = 1, net.L do W[i] = net.W[i]:weights() end
  return W
end
local init = dfc.trainer(cfg("dfc-ssa", { measures_every = 0, epochs = 0 }))
local P0 = products(weights(init.net))
local fixed = dfc.train(cfg("dfc-ssa", { measures_every = 0, feedback = "weight_product", name = "fixed" }))
local tracking = dfc.train(cfg("dfc-ssa", { measures_every = 0, feedback = "weight_product_tracking", name = "tracking" }))
local P1 = products(weights(tracking.trainer.net))
-- tracking's Q was set before the last minibatch's update: compare with the weights before it
-- only loosely, and exactly with fixed's initial product
local moved = 0
for i = 1, fixed.trainer.L do
  local q = fixed.trainer.net.Q[i]:weights()
  for k = 1, #q do assert(math.abs(q[k] - P0[i][k]) <= 1e-12 * (1 + math.abs(P0[i][k])), "fixed Q" .. i) end
  local qt = tracking.trainer.net.Q[i]:weights()
  for k = 1, #qt do
    assert(math.abs(qt[k] - P1[i][k]) <= 0.05 * (1 + math.abs(P1[i][k])), "tracking Q" .. i)
    moved = math.max(moved, math.abs(qt[k] - P0[i][k]))
  end
end
assert(moved > 1e-6, "tracking Q moved with the weights")
ok("weight_product fixed vs tracking")

-- too little feedback pre-training is reported (Condition 2 below 0.5), enough is not
local short = dfc.train(cfg("dfc-ssa", { measures_every = 0, feedback = "trained", epochs = 0,
  epochs_fb = 1, lr_fb_init = 1e-6, hidden = { 40, 40 }, name = "short" }))
assert(#short.warnings == 1 and short.warnings[1]:find("Condition 2 is 0.", 1, true), tostring(short.warnings[1]))
local long = dfc.train(cfg("dfc-ssa", { measures_every = 0, feedback = "trained", epochs = 0,
  epochs_fb = 20, lr_fb_init = 0.3, hidden = { 40, 40 }, name = "long" }))
assert(#long.warnings == 0, "no warning after pre-training: " .. tostring(long.warnings[1]))
print(string.format("   Condition 2 after pre-training: %.2f (1 epoch, tiny lr), %.2f (20 epochs)",
  short.log[1].fb_condition2, long.log[1].fb_condition2))
ok("warning after too little pre-training")

check.done("test_train_measures")
