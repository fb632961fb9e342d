-- test_measures.lua — the measures module (measures.lua): dfc.angle (0 and 180 degrees exactly,
-- 90, NaN for a zero vector); dfc.measures on a small network against the kernels it calls
-- (Condition 1, 2, 3, stability); the angles of an update with itself are 0 (DFC-SSA and BP
-- written into the update), and the BP angle from the target alone equals the one from labels
-- and loss; the trainer's DFC-SSA update measured before its step; a bare model gives the same
-- as its dfc.network; a pathway network uses its effective feedback; the errors.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local test = check.test

local fails = fx.fails -- the message starts with the line of the call

local near = check.near

local function inputs(B, n, phase)
  local X = apical.zeros { B, n }
  for k = 1, #X do X[k] = 1.5 * math.sin(12.9898 * k + (phase or 0)) end
  return X
end

test("angle", function()
  local a = { 0.3, -1.2, 2.5, 1e-3 }
  local neg, orth = {}, { 1.2, 0.3, 0, 0 }
  for k = 1, #a do neg[k] = -a[k] end
  assert(dfc.angle(a, a) == 0, "angle(a, a) = " .. dfc.angle(a, a))
  assert(dfc.angle(a, neg) == 180, "angle(a, -a) = " .. dfc.angle(a, neg))
  near(dfc.angle(a, orth), 90, 1e-12, "orthogonal")
  local scaled = {}
  for k = 1, #a do scaled[k] = 7 * a[k] end
  assert(dfc.angle(a, scaled) < 1e-12, "scaled")
  near(dfc.angle({ 1, 0 }, { 1, 1 }), 45, 1e-12, "45 degrees")
  local z = dfc.angle(a, { 0, 0, 0, 0 })
  assert(z ~= z, "zero vector: NaN")
  -- arrays as well as lists
  local A = apical.array(a)
  assert(dfc.angle(A, a) == 0)
  fails(function() dfc.angle(a, { 1, 2 }) end, "4 and 2 elements")
end)

local function small_net(opts)
  local o = { sizes = { 4, 6, 5, 3 }, batch = 8, activation = "tanh", output_activation = "linear",
    k_p = 1.5, alpha = 0.05, tau_v = 0.2, seed = 7, feedback_init = "xavier_normal" }
  for k, v in pairs(opts or {}) do o[k] = v end
  local net = dfc.network(o)
  -- a Q near J^T (J J^T)^{-1} for stability: the weight product
  if o.feedback_pathway == nil then dfc.weight_product { model = net.model } end
  return net
end

test("measures against the kernels", function()
  local B = 8
  local net = small_net()
  local m = net.model
  local X = inputs(B, 4)
  local rl, T = apical.zeros { B, 3 }, apical.zeros { B, 3 }
  dfc.forward { model = m, x = X, out = rl }
  for k = 1, #T do T[k] = rl[k] + 0.05 * math.cos(3.1 * k) end
  local ms = dfc.measures_new(net, { gamma = 1e-3 })
  local r = ms:compute { x = X, target = T }
  assert(next(r.errors) == nil, "errors: " .. tostring(next(r.errors)))
  local c1, c2, st = apical.zeros { B }, apical.zeros { B }, apical.zeros { B }
  dfc.condition1 { model = m, x = X, out = c1 }
  dfc.condition2 { model = m, x = X, out = c2 }
  near(r.condition1, c1:sum() / B, 1e-15, "condition1")
  near(r.condition2, c2:sum() / B, 1e-15, "condition2")
  local re, im = apical.zeros { B, 3 }, apical.zeros { B, 3 }
  dfc.jq_eigen { model = m, x = X, out_re = re, out_im = im }
  local lo = math.huge
  for k = 1, #re do lo = math.min(lo, re[k]) end
  near(r.condition3, lo + 0.05, 1e-15, "condition3")
  dfc.stability { model = m, x = X, target = T, alpha = 0.05, k_p = 1.5, tau_v = 0.2, out = st }
  local hi = -math.huge
  for k = 1, #st do hi = math.max(hi, st[k]) end
  near(r.stability, hi, 0, "stability")
  print(string.format("  Condition 1 %.3f, Condition 2 %.3f, Condition 3 %.3f, stability %.3f",
    r.condition1, r.condition2, r.condition3, r.stability))
  assert(r.condition1 > 0 and r.condition2 > 0 and r.condition2 <= 1 + 1e-12)
  assert(r.angles == nil, "no update, no angles")

  -- an update equal to the DFC-SSA update: 0 degrees with the SSA reference, per layer too
  local upd = apical.optim.sgd { model = m, projections = net.W, lr = 1 }
  dfc.ssa { model = m, x = X, target = T, alpha = 0.05, optim = upd }
  r = ms:compute { x = X, target = T, update = upd }
  for i = 1, 3 do assert(r.angles.ssa[i] < 1e-6, "ssa layer " .. i .. ": " .. r.angles.ssa[i]) end
  assert(r.angles.ssa.all < 1e-6, "ssa all " .. r.angles.ssa.all)
  print(string.format("  DFC-SSA update: angles with BP %.2f, MN %.2f, GN %.2f, SSA %.2g degrees",
    r.angles.bp.all, r.angles.mn.all, r.angles.gn.all, r.angles.ssa.all))
  for _, k in ipairs { "bp", "mn", "gn" } do
    local a = r.angles[k].all
    assert(a > 0 and a < 90, k .. " angle " .. a)
  end
  -- the same object again with another update (scratch buffers reused, zeroed each time)
  upd:zero()
  dfc.bp { model = m, x = X, y = T, loss = "mse", optim = upd }
  local r2 = ms:compute { x = X, target = T, update = upd }
  assert(r2.angles.bp.all < 1e-6, "bp with itself " .. r2.angles.bp.all)
  near(r2.angles.ssa.all, r.angles.bp.all, 1e-9, "angle(bp, ssa) both ways")
  -- BP from labels and loss: parallel to the MSE gradient towards r* = r - lambda dL/dr
  local Y = apical.zeros { B, 3 }
  for k = 1, #Y do Y[k] = math.sin(0.7 * k) end
  local lam = 0.1
  local rt = ms:compute { x = X, y = Y, loss = "mse", lambda = lam, update = upd,
    skip = { "condition2", "condition3", "stability" } }
  local rb = ms:compute { x = X, target = ms:buffers(B).target:copy(), update = upd,
    skip = { "condition2", "condition3", "stability" } }
  near(rt.angles.bp.all, rb.angles.bp.all, 1e-9, "BP from y/loss vs from the target")
  near(rt.angles.mn.all, rb.angles.mn.all, 1e-9, "MN with the target formed either way")
  assert(rt.condition2 == nil and rt.stability == nil, "skipped measures are absent")
  -- a smaller damping moves the MN update; gamma overrides per call
  local r3 = ms:compute { x = X, target = T, update = upd, gamma = 10, skip = { "gn" } }
  assert(math.abs(r3.angles.mn.all - r2.angles.mn.all) > 1e-3, "gamma has no effect")
  assert(r3.angles.gn == nil)
end)

test("a bare model, and the one-shot form", function()
  local B = 8
  local net = small_net()
  local X = inputs(B, 4, 1)
  local rl, T = apical.zeros { B, 3 }, apical.zeros { B, 3 }
  dfc.forward { model = net.model, x = X, out = rl }
  for k = 1, #T do T[k] = rl[k] + 0.05 * math.sin(k) end
  local a = dfc.measures(net, { x = X, target = T })
  local b = dfc.measures(net.model, { x = X, target = T, alpha = 0.05, k_p = 1.5, tau_v = 0.2 })
  for _, k in ipairs { "condition1", "condition2", "condition3", "stability" } do
    assert(a[k] == b[k], k .. ": " .. tostring(a[k]) .. " vs " .. tostring(b[k]))
  end
  -- without the controller's settings, a bare model has no Condition 3 nor stability
  local c = dfc.measures(net.model, { x = X, target = T })
  assert(c.condition3 == nil and c.stability == nil and c.condition1 == a.condition1)
  assert(c.errors.stability:find("needs alpha", 1, true), c.errors.stability)
end)

test("the trainer's DFC-SSA update before its step", function()
  local t = dfc.trainer { task = "student_teacher", method = "dfc-ssa", hidden = { 6, 5 },
    progress = false, seed = 3, batch = 16, lambda = 0.01, alpha = 0.001,
    task_opts = { variant = "small", n_in = 4, n_out = 3, n_train = 64, n_valid = 16, n_test = 16 } }
  local X, Y
  for x, y in t.task.train:batches { batch = 16 } do X, Y = x, y break end
  t.opt:zero()
  t:gradient(X, Y)
  local ms = dfc.measures_new(t.net, { gamma = 1e-4 })
  local r = ms:compute { x = X, target = t.rstar, y = Y, loss = t.task.loss, update = t.opt }
  print(string.format("  trainer: Condition 1 %.3f, Condition 2 %.3f, Condition 3 %.3g, stability %.3g",
    r.condition1, r.condition2, r.condition3, r.stability))
  print(string.format("  angles (all layers): BP %.2f, MN %.2f, GN %.2f, SSA %.2g degrees; per layer MN %.1f %.1f %.1f",
    r.angles.bp.all, r.angles.mn.all, r.angles.gn.all, r.angles.ssa.all, r.angles.mn[1],
    r.angles.mn[2], r.angles.mn[3]))
  assert(r.angles.ssa.all < 1e-6, "the trainer's update is DFC-SSA")
  assert(r.stability < 0, "the weight-product feedback is stable at initialisation")
  assert(r.condition3 > 0)
  t.opt:step()
end)

test("a feedback pathway: the effective feedback", function()
  local B = 4
  local net = small_net { feedback_pathway = "layerwise" }
  local X = inputs(B, 4, 2)
  local rl, T = apical.zeros { B, 3 }, apical.zeros { B, 3 }
  dfc.forward { model = net.model, x = X, out = rl }
  for k = 1, #T do T[k] = rl[k] + 0.05 * math.sin(k) end
  local r = dfc.measures(net, { x = X, target = T })
  for k, msg in pairs(r.errors) do error("pathway measure " .. k .. ": " .. msg) end
  assert(r.condition2 and r.condition3 and r.stability and r.angles == nil)
  local c2 = apical.zeros { B }
  dfc.condition2 { model = net.model, x = X, out = c2, Q = net:ssa_feedback() }
  near(r.condition2, c2:sum() / B, 1e-15, "pathway condition2")
end)

test("errors", function()
  local net = small_net()
  local ms = dfc.measures_new(net)
  local X = inputs(8, 4)
  fails(function() ms:compute { target = apical.zeros { 8, 3 } } end, "x must be an array [B, 4]")
  fails(function() ms:compute { x = inputs(8, 5), target = apical.zeros { 8, 3 } } end, "x must be")
  fails(function() ms:compute { x = X } end, "give target = r_L* or y, loss and lambda")
  fails(function() ms:compute { x = X, target = apical.zeros { 8, 2 } } end, "target must be an array [8, 3]")
  fails(function() ms:compute { x = X, target = apical.zeros { 8, 3 }, bogus = 1 } end, 'unknown option "bogus"')
  fails(function() ms:compute { x = X, target = apical.zeros { 8, 3 }, skip = { "c4" } } end, 'unknown measure "c4"')
  fails(function() ms:compute { x = X, target = apical.zeros { 8, 3 }, update = {} } end, "update must be an optimiser")
  fails(function() ms:compute { x = X, target = apical.zeros { 8, 3 }, gamma = -1 } end, "gamma = -1")
  fails(function() dfc.measures_new(net, { lambda = 1 }) end, 'unknown option "lambda"')
  fails(function() dfc.measures_new(42) end, "expected a dfc.network or a model")
  -- numerical failures are reported in errors, the other measures are still computed: Q = 0
  -- has no Condition 2, and with alpha = 0 no DFC-SSA steady state
  for i = 1, net.L do
    local w = net.Q[i]:weights()
    net.Q[i]:set_weights(apical.zeros(w.shape))
  end
  local r = ms:compute { x = X, target = apical.zeros { 8, 3 }, alpha = 0, skip = { "gn" } }
  assert(r.condition1 and r.angles == nil and r.updates.mn and r.updates.bp)
  assert(r.condition2 == nil and r.errors.condition2:find("nonzero Q", 1, true), tostring(r.errors.condition2))
  assert(r.stability == nil and r.errors.stability:find("JQ + alpha I is singular", 1, true))
  assert(r.updates.ssa == nil and r.errors.ssa:find("singular", 1, true))
  near(r.condition3, 0, 0, "eig(J 0) = 0, alpha = 0")
  -- kernels' own errors reach errors[name] with their message
  local bad = dfc.measures(net, { x = X, target = apical.zeros { 8, 3 }, tau_v = -1 })
  assert(bad.errors.stability:find("tau_v = -1", 1, true), tostring(bad.errors.stability))
end)

-- Theorem 3: with Condition 2 exact (Q = J^T (J J^T)^{-1}) and lambda, alpha, gamma -> 0, the
-- DFC-SSA update is the weighted MN update (each layer weighted by 1 / (||r_{i-1}||^2 + 1)),
-- whatever Condition 1: on a linear network whose layer norms differ, the angle to the
-- weighted MN update shrinks with lambda while the one to the plain MN update does not.
test("weighted MN update (Theorem 3)", function()
  local net = dfc.network { sizes = { 3, 4, 3, 2 }, batch = 1, activation = "linear",
    output_activation = "linear", k_p = 1.5, alpha = 1e-9, tau_v = 0.2, seed = 11 }
  local X = apical.array({ 2.0, -1.0, 0.5 }, { 1, 3 })
  -- layer norms far apart (Condition 1 violated): W2 scaled up
  local W2 = net.W[2]:weights()
  for k = 1, #W2 do W2[k] = 5 * W2[k] end
  net.W[2]:set_weights(W2)
  -- J (1 x 2 x N) and Q = J^T (J J^T)^{-1} (N x 2) into Q1..Q3
  local N = 4 + 3 + 2
  local J = apical.zeros { 1, 2, N }
  dfc.jacobian { model = net.model, x = X, out = J }
  local a, b, c = 0, 0, 0 -- J J^T = [a b; b c]
  for k = 1, N do
    a, b, c = a + J[k] ^ 2, b + J[k] * J[N + k], c + J[N + k] ^ 2
  end
  local det = a * c - b * b
  local inv = { c / det, -b / det, -b / det, a / det }
  local row = 0
  for i, n in ipairs { 4, 3, 2 } do
    local q = apical.zeros { n, 2 }
    for r = 1, n do
      local j1, j2 = J[row + r], J[N + row + r]
      q[(r - 1) * 2 + 1] = j1 * inv[1] + j2 * inv[3]
      q[(r - 1) * 2 + 2] = j1 * inv[2] + j2 * inv[4]
    end
    net.Q[i]:set_weights(q)
    row = row + n
  end
  local ms = dfc.measures_new(net, { gamma = 1e-12 })
  local rminus = apical.zeros { 1, 2 }
  dfc.forward { model = net.model, x = X, out = rminus }
  local c1 = apical.zeros { 1 }
  dfc.condition1 { model = net.model, x = X, out = c1 }
  assert(c1[1] > 0.2, "Condition 1 is far from satisfied: " .. c1[1])
  local prev
  for _, lambda in ipairs { 1e-2, 1e-4, 1e-6 } do
    local T = apical.array({ rminus[1] + lambda * 0.7, rminus[2] - lambda * 0.4 }, { 1, 2 })
    local r = ms:compute { x = X, target = T, skip = { "stability", "condition3" } }
    local u = ms.scratch.ssa
    local upd = ms:compute { x = X, target = T, update = u, alpha = 1e-9, skip = { "stability", "condition3" } }
    assert(math.abs(r.condition2 - 1) < 1e-9, "Condition 2 = " .. r.condition2)
    local w, m = upd.angles.wmn.all, upd.angles.mn.all
    print(string.format("   lambda %g: angle to weighted MN %.3g deg, to MN %.3g deg", lambda, w, m))
    assert(m > 5, "the plain MN update differs when Condition 1 fails")
    if prev then assert(w < prev / 10 or w < 1e-6, "weighted MN angle shrinks with lambda") end
    prev = w
  end
  assert(prev < 1e-3, "weighted MN angle at lambda 1e-6: " .. prev)
  local T = apical.zeros { 1, 2 }
  local o = apical.optim.sgd { model = net.model, projections = net.W, lr = 1 }
  fails(function() dfc.mn_update { model = net.model, x = X, target = T, gamma = 0, optim = o, weighted = 2 } end,
    "weighted = 2, must be 0 or 1")
  fails(function() dfc.gn_update { model = net.model, x = X, target = T, gamma = 0, optim = o, weighted = 1 } end,
    "weighted applies to dfc.mn_update only")
end)

test("dfc.ssa makes the targets from the labels exactly as dfc.targets does", function()
  for _, case in ipairs { { loss = "ce", mode = "mean" }, { loss = "mse", mode = "sample" } } do
    local net = dfc.network { sizes = { 6, 7, 5, 4 }, batch = 5, seed = 21, alpha = 0.01 }
    local m = net.model
    local X, Y = apical.zeros { 5, 6 }, apical.zeros { 5, 4 }
    for k = 1, #X do X[k] = math.sin(0.9 * k) end
    for b = 0, 4 do Y[b * 4 + (b % 4) + 1] = 1 end
    local rm, rs = apical.zeros { 5, 4 }, apical.zeros { 5, 4 }
    dfc.forward { model = m, x = X, out = rm }
    dfc.targets { rL = rm, y = Y, loss = case.loss, lambda = 0.3, mode = case.mode, out = rs }
    local o1 = apical.optim.sgd { model = m, projections = net.W, lr = 1 }
    local o2 = apical.optim.sgd { model = m, projections = net.W, lr = 1 }
    local u1, u2, tout = apical.zeros { 5, 4 }, apical.zeros { 5, 4 }, apical.zeros { 5, 4 }
    dfc.ssa { model = m, x = X, target = rs, alpha = 0.01, optim = o1, u_out = u1 }
    dfc.ssa { model = m, x = X, y = Y, loss = case.loss, lambda = 0.3, mode = case.mode,
      target_out = tout, alpha = 0.01, optim = o2, u_out = u2 }
    for k = 1, #rs do
      assert(tout[k] == rs[k], case.loss .. ": target_out differs from dfc.targets")
      assert(u1[k] == u2[k], case.loss .. ": u_ss differs")
    end
    for i = 1, net.L do
      local g1, g2 = o1:grad(net.W[i]), o2:grad(net.W[i])
      for k = 1, #g1 do assert(g1[k] == g2[k], case.loss .. ": the update differs") end
    end
    -- without target_out too
    local o3 = apical.optim.sgd { model = m, projections = net.W, lr = 1 }
    dfc.ssa { model = m, x = X, y = Y, loss = case.loss, lambda = 0.3, mode = case.mode, alpha = 0.01, optim = o3 }
    local g1, g3 = o1:grad(net.W[1]), o3:grad(net.W[1])
    for k = 1, #g1 do assert(g1[k] == g3[k], "without target_out") end
    fails(function() dfc.ssa { model = m, x = X, y = Y, target = rs, loss = "ce", lambda = 1, alpha = 0.01 } end,
      "give either target")
    fails(function() dfc.ssa { model = m, x = X, alpha = 0.01 } end, "got neither")
    fails(function() dfc.ssa { model = m, x = X, target = rs, lambda = 1, alpha = 0.01 } end,
      "lambda goes with y")
    fails(function() dfc.ssa { model = m, x = X, y = Y, loss = "ce", lambda = 1, mode = "sum", alpha = 0.01 } end,
      'mode = "sum"')
  end
end)

check.done("test_measures")
