-- test_feedback.lua — feedback learning in the sleep phase (12), (13), direct feedback:
-- Theorem 6 on a linear network with frozen forward weights (Q is driven into the row space of
-- J, Condition 2 >= 0.99, and within 10 degrees of J^T (J J^T + gamma I)^{-1} for the best gamma
-- of a log-spaced sweep); stability (Condition 3) restored by the trainer's pre-training from a
-- destabilising Q (eigenvalues of J Q with real parts below -alpha); the trainer's options.
local apical = require "apical"
local dfc = apical.plugin "dfc"

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert, test = fx.check, fx.check.assert, fx.check.test

local function stacked_q(net)
  local q = {}
  for i = 1, net.L do
    local w = net.Q[i]:weights()
    for k = 1, #w do q[#q + 1] = w[k] end
  end
  return q
end

-- ---- Theorem 6 ---------------------------------------------------------------------------
-- the theorem's separation of timescales: a soma much faster than the apical compartment
-- (tau_v_fb = dt_fb, in fx.theorem6); with the toy configuration's tau_v_fb = 0.01 the somatic
-- lag of each layer biases Q slightly off the row space of J (Condition 2 settles near 0.989)
test("theorem 6: linear network, Q -> J^T (J J^T + gamma I)^{-1}", function()
  local c0, a0, c, a, g, net, X = fx.theorem6(nil, function(net) return stacked_q(net) end)
  print(string.format("  initial Q: Condition 2 %.4f, angle %.1f deg", c0, a0))
  assert(c0 < 0.9 and a0 > 30, "the initial Q is already aligned: the test cannot fail")
  print(string.format("  after 600 sleep-phase steps: Condition 2 %.5f, angle %.2f deg (gamma %.3g)", c, a, g))
  assert(c >= 0.99, "Condition 2 = " .. c)
  assert(a <= 10, "angle " .. a)
  -- linear: the same J for every input
  local c2b = apical.zeros { X.shape[1] }
  dfc.condition2 { model = net.model, x = X, out = c2b }
  for b = 1, #c2b do assert(math.abs(c2b[b] - c) < 1e-9) end
end)

-- ---- stability (Condition 3) ------------------------------------------------------------
test("stability: pre-training moves the eigenvalues of J Q above -alpha", function()
  local alpha = 0.0015
  local t = dfc.trainer { task = "student_teacher", feedback = "trained", hidden = { 6, 5 },
    alpha = alpha, epochs_fb = 40, progress = false, seed = 5,
    task_opts = { variant = "small", n_in = 4, n_out = 3, n_train = 1280, n_valid = 64, n_test = 64 } }
  local net = t.net
  -- a destabilising start: Q = -(W_{i+1}^T ... W_L^T), so J Q ~ -J J^T
  dfc.weight_product { model = net.model }
  for i = 1, net.L do
    local w = net.Q[i]:weights()
    for k = 1, #w do w[k] = -w[k] end
    net.Q[i]:set_weights(w)
  end
  local X
  for x in t.task.valid:batches { batch = 64 } do X = apical.array(x) end
  local re, im = apical.zeros { 64, 3 }, apical.zeros { 64, 3 }
  local function range()
    dfc.jq_eigen { model = net.model, x = X, out_re = re, out_im = im }
    local lo, hi = math.huge, -math.huge
    for k = 1, #re do lo, hi = math.min(lo, re[k]), math.max(hi, re[k]) end
    return lo, hi
  end
  local lo0, hi0 = range()
  print(string.format("  before: real parts of eig(J Q) in [%.3g, %.3g]", lo0, hi0))
  assert(hi0 < -alpha, "the initial Q is not destabilising: the test cannot fail")
  local fb = t:feedback_phase(0)
  local lo, hi = range()
  print(string.format("  after %d pre-training epochs (%.2f s): real parts in [%.3g, %.3g], Condition 2 %.3f",
    fb.epochs, fb.wall, lo, hi, fb.condition2))
  assert(lo > -alpha, "smallest real part " .. lo)
end)

-- ---- options -----------------------------------------------------------------------------
test("trainer options", function()
  local function fails(cfg, needle)
    local ok, err = pcall(dfc.trainer, cfg)
    assert(not ok, "expected an error with " .. needle)
    assert(tostring(err):find(needle, 1, true), tostring(err) .. " lacks " .. needle)
  end
  local small = { variant = "small", n_train = 256, n_valid = 64, n_test = 64 }
  fails({ feedback = "learned", task_opts = small }, 'unknown feedback "learned"')
  fails({ feedback = "trained", tau_A = 0, task_opts = small }, "tau_A = 0 must be > 0")
  fails({ feedback = "trained", tmax_fb = 1.5, task_opts = small }, "tmax_fb = 1.5")
  fails({ feedback = "trained", optimizer_fb = "rmsprop", task_opts = small }, 'unknown optimizer_fb "rmsprop"')
  -- trained feedback works through any pathway (test_pathway_feedback.lua); Q_L = I needs direct
  fails({ feedback = "trained", feedback_pathway = "layerwise", freeze_QL = true, task_opts = small },
    'freeze_QL acts on direct feedback (Q_L = I); feedback_pathway "layerwise" is not direct')
  -- freeze_QL: Q_L = I stays, the optimisers hold Q_1..Q_{L-1} only
  local t = dfc.trainer { feedback = "trained", freeze_QL = true, epochs_fb = 1, progress = false,
    optimizer_fb = "adam", task_opts = small }
  t:feedback_phase(0)
  local q = t.net.Q[t.L]:weights()
  local n = t.net.sizes[t.L + 1]
  for r = 1, n do
    for c = 1, n do assert(q[(r - 1) * n + c] == (r == c and 1 or 0), "Q_L changed") end
  end
  assert(#t.fb_proj == t.L - 1)
  assert(t.opt_fb_init.steps == 256 // 128 and t.opt_fb.steps == 0)
end)

-- ---- the minibatch split over threads ------------------------------------------------------
test("threads = 2: the mean of the halves' gradients, each half its own noise stream", function()
  local B, sizes = 8, { 5, 6, 4, 3 }
  local net = dfc.network { sizes = sizes, batch = B, plastic_feedback = true, seed = 11 }
  local half = dfc.network { sizes = sizes, batch = B // 2, plastic_feedback = true, seed = 99 }
  dfc.copy_weights { from = net.model, to = half.model, which = "WQ" }
  local fb = { tau_v_fb = 0.01, sigma = 0.05, tmax_fb = 30 }
  fb.threads = 2
  local split = dfc.sleep(net, fb)
  fb.threads = 1
  local alone = dfc.sleep(half, fb)
  local X = apical.zeros { B, 5 }
  for k = 1, #X do X[k] = math.sin(3.7 * k) end
  local opt = apical.optim.sgd { model = net.model, projections = net.Q, lr = 1 }
  local opt_h = apical.optim.sgd { model = half.model, projections = half.Q, lr = 1 }
  opt:zero()
  split:gradient(X, opt, 77)
  -- the same thing by hand: the halves one after the other, seeds 77 and 78, half weight each
  opt_h:zero()
  alone:gradient(X:rows(1, B // 2), opt_h, 77, 0.5)
  alone:gradient(X:rows(B // 2 + 1, B // 2), opt_h, 78, 0.5)
  local worst, size = 0, 0
  for i = 1, net.L do
    local g, h = opt:grad(net.Q[i]), opt_h:grad(half.Q[i])
    for k = 1, #g do
      worst = math.max(worst, math.abs(g[k] - h[k]))
      size = math.max(size, math.abs(h[k]))
    end
  end
  print(string.format("  split vs halves by hand: max difference %.3g (largest entry %.3g)", worst, size))
  assert(size > 0 and worst == 0, "the split gradient is the halves' mean, exactly")
  -- and not the one-simulation gradient (other noise): the test can tell them apart
  local one = dfc.sleep(net, fb)
  local opt1 = apical.optim.sgd { model = net.model, projections = net.Q, lr = 1 }
  opt1:zero()
  one:gradient(X, opt1, 77)
  local g1, g2 = opt1:grad(net.Q[1]), opt:grad(net.Q[1])
  local differ = false
  for k = 1, #g1 do differ = differ or g1[k] ~= g2[k] end
  assert(differ, "the split draws other noise than one simulation")
  -- a batch the threads do not divide, and sleep:run, are refused
  local ok, err = pcall(dfc.sleep, net, { threads = 3 })
  assert(not ok and err:find("threads = 3 does not divide the batch of 8", 1, true), err)
  ok, err = pcall(split.run, split, X, 1)
  assert(not ok and err:find("threads = 2", 1, true), err)
end)

-- ---- the sleep phase's target ------------------------------------------------------------
test("the sleep phase's target is the feedforward output, held: without noise nothing moves", function()
  local net = dfc.network { sizes = { 5, 6, 4, 3 }, batch = 4, plastic_feedback = true, seed = 5 }
  local sl = dfc.sleep(net, { tau_v_fb = 0.01, sigma = 0, tmax_fb = 20 })
  local X = apical.zeros { 4, 5 }
  for k = 1, #X do X[k] = math.cos(1.3 * k) end
  local out = sl:run(X, 1)
  -- u(0) = k_p (r_L^- - r_L(0)) = 0 exactly, so the state stays at the feedforward fixed point
  local u, vA = out:get("ctl.u"), out:get("h1.apical")
  assert(u:max_abs() == 0 and vA:max_abs() == 0, "u and the apical potentials stay exactly 0")
  -- and the held target is the trained network's feedforward output
  local rminus = apical.zeros { 4, 3 }
  dfc.forward { model = net.model, x = X, out = rminus }
  local held = sl.sim:read("ctl_target.output")
  for k = 1, #rminus do
    assert(math.abs(held[k] - rminus[k]) <= 1e-15 * math.max(1, math.abs(rminus[k])),
      string.format("held target %d: %.17g, dfc.forward %.17g", k, held[k], rminus[k]))
  end
  -- with noise the controller does act
  local sn = dfc.sleep(net, { tau_v_fb = 0.01, sigma = 0.05, tmax_fb = 20 })
  assert(sn:run(X, 1):get("ctl.u"):max_abs() > 0, "noise moves u")
end)

check.done("test_feedback")
