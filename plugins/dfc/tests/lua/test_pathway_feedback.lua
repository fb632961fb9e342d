-- test_pathway_feedback.lua — trained feedback through feedback pathways (sleep.lua, the kernel
-- dfc.feedback_grad with pre/lag): the generalised rule (13) against a hand sum over one short
-- sleep-phase run of a layerwise pathway (presynaptic factors g_i and u, lags 2 and 1); the time
-- convention of the recorded presynaptic signals; Theorem 6 for the layerwise and multilayer
-- (shared and per layer) pathways on a linear network with frozen forward weights (Condition 2 of
-- the effective feedback >= 0.99, within 10 degrees of J^T (J J^T + gamma I)^{-1} for the best
-- gamma) with orthonormal weights inside the pathway, and what random ones give; dfc.condition2
-- and dfc.jq_eigen with the argument Q; the trainer with feedback = "trained" through pathways.
local apical = require "apical"
local dfc = apical.plugin "dfc"

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert, test = fx.check, fx.check.assert, fx.check.test
local weights_of = fx.weights_of

-- ---- the generalised rule (13), by hand ---------------------------------------------------
test("rule (13) through a layerwise pathway: hand sum over one run", function()
  local B, sizes = 2, { 3, 4, 3, 2 }
  local net = dfc.network { sizes = sizes, batch = B, feedback_pathway = "layerwise",
    plastic_feedback = true, seed = 7, k_p = 0.3, alpha = 0.1 }
  -- tmax_fb = 5: 4 steps, so the lag-2 layers have pairs with vA[t] != 0 (vA[0] = 0)
  for _, sigma in ipairs { 0.3, 0.004 } do
    local sleep = dfc.sleep(net, { tmax_fb = 5, sigma = sigma, tau_A = 0.05, tau_v_fb = 0.02,
      dt_fb = 0.01 })
    -- Q3 reads ctl.u (recording 0, lag 1), Q2 g2 and Q1 g1 (recorded after h1..h3.apical, lag 2)
    assert(sleep.pre[3] == 0 and sleep.lag[3] == 1, "Q3: pre/lag")
    assert(sleep.lag[1] == 2 and sleep.lag[2] == 2 and sleep.pre[1] > 3 and sleep.pre[2] > 3)
    local X = apical.zeros { B, 3 }
    for k = 1, #X do X[k] = math.sin(3.7 * k) end
    local out = sleep:run(X, 11)
    local u = out:get("ctl.u")
    local g2, g1 = out:get("g2.rate"), out:get("g1.rate")
    local P = 5
    -- the time convention: g2 reads u[k] (previous = {"ctl.u"}), g1 reads g2's new value
    local F2, F1 = weights_of(sleep.snet.model:projection("F2")), weights_of(sleep.snet.model:projection("F1"))
    -- each a sum of 2 or 3 products through a dgemm: within 4 DBL_EPSILON of the terms' size
    for k = 0, P - 2 do
      for b = 0, B - 1 do
        for r = 0, 2 do
          local s, size = 0, 0
          for c = 0, 1 do
            local t = F2[r * 2 + c + 1] * u[(k * B + b) * 2 + c + 1]
            s, size = s + t, size + math.abs(t)
          end
          check.close(g2[((k + 1) * B + b) * 3 + r + 1], s, 4 * check.eps, 0, size, "g2[k+1] = F2 u[k]")
        end
        for r = 0, 3 do
          local s, size = 0, 0
          for c = 0, 2 do
            local t = F1[r * 3 + c + 1] * g2[((k + 1) * B + b) * 3 + c + 1]
            s, size = s + t, size + math.abs(t)
          end
          check.close(g1[((k + 1) * B + b) * 4 + r + 1], s, 4 * check.eps, 0, size, "g1[k+1] = F1 g2[k+1]")
        end
      end
    end
    local opt = apical.optim.sgd { model = net.model, projections = net.Q, lr = 1 }
    opt:zero()
    dfc.feedback_grad { model = net.model, sim = sleep.sim, optim = opt, sigma = sigma,
      pre = sleep.pre, lag = sleep.lag, scale = 0.75 }
    local s = math.max(sigma, 0.01)
    local pres = { { g1, 4, 2 }, { g2, 3, 2 }, { u, 2, 1 } }
    local rel = 0
    for i = 1, 3 do
      local vA = out:get("h" .. i .. ".apical")
      local ni, pr, nc, lag = sizes[i + 1], pres[i][1], pres[i][2], pres[i][3]
      local T = P - lag
      local g = opt:grad(net.Q[i])
      local big, diff = 0, 0
      for r = 0, ni - 1 do
        for c = 0, nc - 1 do
          local sum = 0
          for t = 0, T - 1 do
            for b = 0, B - 1 do
              sum = sum + vA[(t * B + b) * ni + r + 1] * pr[((t + lag) * B + b) * nc + c + 1]
            end
          end
          local want = 0.75 * sum / (s * s * T * B)
          big = math.max(big, math.abs(want))
          diff = math.max(diff, math.abs(g[r * nc + c + 1] - want))
        end
      end
      assert(big > 0, "Q" .. i .. ": a zero update cannot test anything")
      rel = math.max(rel, diff / big)
    end
    print(string.format("  sigma %g: largest relative difference from the hand sum %.2g", sigma, rel))
    assert(rel < 1e-14, "relative difference " .. rel)
    -- the arguments' errors
    local function fails(extra, needle)
      local a = { model = net.model, sim = sleep.sim, optim = opt, sigma = sigma }
      for k, v in pairs(extra) do a[k] = v end
      local ok, err = pcall(dfc.feedback_grad, a)
      assert(not ok and tostring(err):find(needle, 1, true), tostring(err) .. " lacks " .. needle)
    end
    fails({ lag = sleep.lag }, "lag needs pre")
    fails({ pre = apical.zeros { 2 } }, "pre has 2 entries, the network has 3 layers")
    local bad = sleep.pre:copy()
    bad[1] = 2
    fails({ pre = bad }, "pre[1] = 2 must be 0 (ctl.u) or a recording index > 3")
    bad[1] = 0 -- Q1 reads g1 (4 wide), ctl.u is 2 wide
    fails({ pre = bad, lag = sleep.lag }, "recording 0 (the presynaptic signal of Q1) is 4 values wide, Q1 has 4 columns")
    -- without pre: direct feedback's shapes, which the pathway's Q1 (4 x 4) lacks
    fails({}, "projection Q1 is 4 x 4, the network needs 4 x 2")
  end
end)

-- ---- Theorem 6 ---------------------------------------------------------------------------
-- A linear 6-5-4-3 network with frozen forward weights, feedback training only (as the direct
-- test in test_feedback.lua): 600 sleep-phase steps, Condition 2 and the best angle of the
-- stacked effective feedback before and after.
local function theorem6(pathway, popts)
  local fixed = {}
  local c0, a0, c, a, g = fx.theorem6({ feedback_pathway = pathway, pathway_opts = popts },
    function(n)
      if #fixed == 0 then -- before training: the pathway's inner weights
        for _, p in ipairs(n.pathway.projections) do
          if not p.name:match("^Q%d+$") then fixed[#fixed + 1] = { p, weights_of(p) } end
        end
        assert(#fixed > 0, "the pathway has no inner weights")
      end
      local Q = n:ssa_feedback()
      local q = {}
      for k = 1, #Q do q[k] = Q[k] end
      return q, Q
    end)
  -- the weights inside the pathway are not trained
  for _, f in ipairs(fixed) do
    local w = f[1]:weights()
    for k = 1, #w do assert(w[k] == f[2][k], f[1].name .. " changed") end
  end
  return c0, a0, c, a, g
end

for _, case in ipairs {
  { "layerwise", {} },
  { "multilayer", { shared = true } },
  { "multilayer", { shared = false } },
} do
  local label = case[1] .. (case[2].shared == nil and "" or (case[2].shared and " (shared)" or " (per layer)"))
  test("theorem 6, " .. label .. ", orthonormal inner weights", function()
    local o = { inner_init = "orthogonal" }
    for k, v in pairs(case[2]) do o[k] = v end
    local c0, a0, c, a, g = theorem6(case[1], o)
    print(string.format("  Condition 2 %.4f -> %.5f, angle %.1f -> %.2f deg (gamma %.3g)", c0, c, a0, a, g))
    assert(c0 < 0.9 and a0 > 30, "the initial Q is already aligned: the test cannot fail")
    assert(c >= 0.99, "Condition 2 = " .. c)
    assert(a <= 10, "angle " .. a)
  end)
end

-- Random (xavier) inner weights: Q_eff_i moves by the direct update times G_i^T G_i, a different
-- matrix per layer, so the theorem holds only approximately (docs/dfc.md); measured, with a
-- loose bound that still fails if the rule does not train at all.
test("theorem 6 approximately, layerwise and multilayer with random inner weights", function()
  for _, case in ipairs { { "layerwise", {} }, { "multilayer", { shared = true } } } do
    local c0, a0, c, a, g = theorem6(case[1], case[2])
    print(string.format("  %s: Condition 2 %.4f -> %.5f, angle %.1f -> %.2f deg (gamma %.3g)", case[1],
      c0, c, a0, a, g))
    assert(c0 < 0.9 and c > 0.95, case[1] .. ": Condition 2 " .. c0 .. " -> " .. c)
  end
end)

-- ---- dfc.condition2 / dfc.jq_eigen with Q ------------------------------------------------
test("dfc.condition2 and dfc.jq_eigen take the effective feedback Q", function()
  local B = 4
  local X = apical.zeros { B, 5 }
  for k = 1, #X do X[k] = math.cos(1.3 * k) end
  local d = dfc.network { sizes = { 5, 4, 3 }, batch = B, seed = 2 }
  local _, Qd = dfc.effective_feedback(d)
  local a, b = apical.zeros { B }, apical.zeros { B }
  dfc.condition2 { model = d.model, x = X, out = a }
  dfc.condition2 { model = d.model, x = X, out = b, Q = Qd }
  for k = 1, B do assert(a[k] == b[k], "direct: Q = the model's Q1..QL must give the same numbers") end
  local re1, im1, re2, im2 = apical.zeros { B, 3 }, apical.zeros { B, 3 }, apical.zeros { B, 3 }, apical.zeros { B, 3 }
  dfc.jq_eigen { model = d.model, x = X, out_re = re1, out_im = im1 }
  dfc.jq_eigen { model = d.model, x = X, out_re = re2, out_im = im2, Q = Qd }
  for k = 1, #re1 do assert(re1[k] == re2[k] and im1[k] == im2[k]) end
  -- a layerwise pathway with g sizes != n_L: the model's Q<i> are not n_i x n_L, only Q works
  local lw = dfc.network { sizes = { 5, 4, 3 }, batch = B, seed = 2, feedback_pathway = "layerwise",
    pathway_opts = { sizes = { 6 } } }
  assert(not pcall(dfc.condition2, { model = lw.model, x = X, out = a }))
  local _, Q = dfc.effective_feedback(lw)
  dfc.condition2 { model = lw.model, x = X, out = a, Q = Q }
  -- the same Q as direct feedback's Q1..QL gives the same Condition 2
  local Q1, Q2 = apical.zeros { 4, 3 }, apical.zeros { 3, 3 }
  for k = 1, 12 do Q1[k] = Q[k] end
  for k = 1, 9 do Q2[k] = Q[12 + k] end
  d.Q[1]:set_weights(Q1)
  d.Q[2]:set_weights(Q2)
  dfc.condition2 { model = d.model, x = X, out = b }
  for k = 1, B do assert(math.abs(a[k] - b[k]) < 1e-15, "pathway vs direct with the same Q") end
  local ok, err = pcall(dfc.condition2, { model = lw.model, x = X, out = a, Q = apical.zeros { 6, 3 } })
  assert(not ok and tostring(err):find("Q has shape [6, 3], the network needs [7, 3]", 1, true), tostring(err))
end)

-- ---- the trainer -------------------------------------------------------------------------
test("dfc.train, feedback = \"trained\" through layerwise and multilayer pathways", function()
  local small = { variant = "small", n_train = 256, n_valid = 64, n_test = 64 }
  for _, pw in ipairs { "layerwise", "multilayer" } do
    local t = dfc.trainer { feedback = "trained", feedback_pathway = pw, epochs_fb = 2,
      progress = false, task_opts = small, hidden = { 8, 6 } }
    local before = {}
    for _, p in ipairs(t.net.pathway.projections) do before[p.name] = weights_of(p) end
    local fb = t:feedback_phase(0)
    -- Condition 2 of the log: of the effective feedback
    local n = #t.c2_out
    local c2 = apical.zeros { n }
    dfc.condition2 { model = t.net.model, x = t.c2_x, out = c2, Q = t.net:ssa_feedback() }
    assert(math.abs(fb.condition2 - c2:sum() / n) < 1e-12, "the log's Condition 2")
    for _, p in ipairs(t.net.pathway.projections) do
      local w, changed = p:weights(), false
      for k = 1, #w do changed = changed or w[k] ~= before[p.name][k] end
      assert(changed == (p.name:match("^Q%d+$") ~= nil), p.name .. (changed and " changed" or " did not change"))
    end
    print(string.format("  %s: 2 pre-training epochs, Condition 2 %.4f", pw, fb.condition2))
  end
  local ok, err = pcall(dfc.trainer, { feedback = "trained", feedback_pathway = "layerwise",
    freeze_QL = true, task_opts = small })
  assert(not ok and tostring(err):find("freeze_QL acts on direct feedback", 1, true), tostring(err))
end)

test("fb threads = 2 through a pathway: the halves' gradients, exactly", function()
  for _, pw in ipairs { "layerwise", "multilayer" } do
    local net = dfc.network { sizes = { 5, 6, 4, 3 }, batch = 8, plastic_feedback = true, seed = 2, feedback_pathway = pw }
    local half = dfc.network { sizes = { 5, 6, 4, 3 }, batch = 4, plastic_feedback = true, seed = 9, feedback_pathway = pw }
    dfc.copy_weights { from = net.model, to = half.model, which = "W" }
    for _, p in ipairs(net.pathway.projections) do
      local q = half.model:projection(p.name)
      q:set_weights(p:weights())
      if p.has_bias then q:set_bias(p:bias()) end
    end
    local split = dfc.sleep(net, { threads = 2, sigma = 0.05 })
    local alone = dfc.sleep(half, { sigma = 0.05 })
    local X = apical.zeros { 8, 5 }
    for k = 1, #X do X[k] = math.cos(1.3 * k) end
    local o1 = apical.optim.sgd { model = net.model, projections = net.Q, lr = 1 }
    local o2 = apical.optim.sgd { model = half.model, projections = half.Q, lr = 1 }
    o1:zero()
    o2:zero()
    split:gradient(X, o1, 5)
    alone:gradient(X:rows(1, 4), o2, 5, 0.5)
    alone:gradient(X:rows(5, 4), o2, 6, 0.5)
    local worst, size = 0, 0
    for i = 1, net.L do
      local a, b = o1:grad(net.Q[i]), o2:grad(half.Q[i])
      for k = 1, #a do
        worst = math.max(worst, math.abs(a[k] - b[k]))
        size = math.max(size, math.abs(b[k]))
      end
    end
    print(string.format("  %s: split vs halves max difference %g (largest entry %.3g)", pw, worst, size))
    assert(size > 0 and worst == 0, pw .. ": the split gradient is the halves' mean")
  end
end)

check.done("test_pathway_feedback")
