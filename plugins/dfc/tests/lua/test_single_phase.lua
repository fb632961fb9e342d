-- test_single_phase.lua — single-phase learning (App. C.3): the feedback rule (200) with the
-- high-pass factor u - u_lp accumulated by the engine during a noisy forward simulation.
--   (b) tau_hp huge (u_lp ~ 0), target = feedforward output: the engine's accumulation equals
--       the sleep phase's rule (13) computed by dfc.feedback_grad from the recordings of the
--       same run (same noise, same trajectory), to ~1e-12;
--   (c) a two-step case computed here by hand, step by step, with the run's own noise draw;
--   (d) a short seeded student-teacher run with single_phase = true lowers the training loss at
--       least 3x and keeps Condition 2 above 0.5;
--   and the refused combinations.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local function rel(a, b)
  local num, den = 0, 0
  for k = 1, #a do
    num, den = num + (a[k] - b[k]) ^ 2, den + b[k] ^ 2
  end
  return math.sqrt(num / den)
end

-- ---- (b) tau_hp -> infinity: rule (200) = the sleep phase's rule (13) ---------------------
do
  local B, sigma, dt, steps = 8, 0.02, 0.01, 60
  local net = dfc.network { sizes = { 4, 3, 2 }, batch = B, tau_v = 0.05, tau_A = 0.3, k_p = 0.3,
    alpha = 0.2, plastic_feedback = true, seed = 5, feedback_init = "normal", feedback_std = 0.5 }
  local m = net.model
  net:add_highpass(1e15, sigma)
  -- feedback_grad pairs vA_i[t] with u[t+1]; the engine pairs values of the same point. A one-step
  -- delay line d (a lowpass with tau = dt stepped before ctl: d[k+1] = u[k]) makes the sleep
  -- rule's pairing vA_i[t] d[t+1] = vA_i[t] u[t], over the points t = 0..steps-1 ("left")
  m:block { name = "d", type = apical.lowpass { tau = dt }, inputs = { input = net.ctl.u } }
  local sim = m:compile()
  local X = apical.zeros { B, 4 }
  for k = 1, #X do X[k] = math.sin(1.3 * k) end
  local rminus = apical.zeros { B, 2 }
  dfc.forward { model = m, x = X, out = rminus }
  sim:set_input("x", X)
  sim:set_input("target", rminus)
  local order = net:update_order(false)
  table.insert(order, 1, "d")
  local out = sim:run { solver = "euler-maruyama", dt = dt, steps = steps, ordered = true,
    order = order, previous = { "ctl.u" }, noise = { { "h1.apical", sigma }, { "h2.apical", sigma } },
    seed = 77, record = { "ctl.u", "h1.apical", "h2.apical", "d.output", "ctl_lp.output" }, every = 1,
    accumulation = "left" }
  local lp = out:get("ctl_lp.output")
  assert(lp:max_abs() < 1e-12 * out:get("ctl.u"):max_abs(), "u_lp ~ 0")
  local engine = apical.optim.sgd { model = m, projections = net.Q, lr = 1 }
  local sleep = apical.optim.sgd { model = m, projections = net.Q, lr = 1 }
  engine:add_from_sim(sim, -1 / B)
  dfc.feedback_grad { model = m, sim = sim, optim = sleep, sigma = sigma, pre = apical.array { 3, 3 }, lag = apical.array { 1, 1 } }
  for i = 1, 2 do
    local a, b = engine:grad(net.Q[i]), sleep:grad(net.Q[i])
    local e = rel(a, b)
    print(string.format("(b) Q%d: engine (200) vs sleep rule (13): |g| = %.6g, rel. diff %.2e", i,
      b:max_abs(), e))
    assert(b:max_abs() > 1e-3, "the sleep-rule gradient is not trivial")
    assert(e < 1e-11, "rule (200) with tau_hp -> inf differs from rule (13)")
  end
end

-- ---- (c) two steps by hand ---------------------------------------------------------------
do
  local sigma, dt, tau_A, tau_v, tau_hp, k_p, alpha, q = 0.05, 0.01, 0.3, 0.2, 0.04, 1.5, 0.1, 0.8
  local net = dfc.network { sizes = { 1, 1 }, batch = 1, tau_v = tau_v, tau_A = tau_A, k_p = k_p,
    alpha = alpha, plastic_feedback = true, output_activation = "linear" }
  local m = net.model
  net.W[1]:set_weights { { 0.7 } }
  net.W[1]:set_bias { 0.1 }
  net.Q[1]:set_weights { { q } }
  net:add_highpass(tau_hp, sigma)
  local sim = m:compile()
  local x, rstar = 0.5, 0.9
  sim:set_input("x", { { x } })
  sim:set_input("target", { { rstar } })
  local out = sim:run { solver = "euler-maruyama", dt = dt, steps = 2, ordered = true,
    order = net:update_order(false), noise = { { "h1.apical", sigma } }, seed = 3,
    record = { "ctl.u", "ctl_lp.output", "h1.apical", "h1.soma" }, every = 1 }
  local U, LP, VA, V = out:get("ctl.u"), out:get("ctl_lp.output"), out:get("h1.apical"), out:get("h1.soma")
  -- the published order (proactive): controller, then the filter, then the layer
  local vB = 0.7 * x + 0.1
  local u, uint, ulp, va, v = { 0 }, 0, { 0 }, { 0 }, { vB }
  local a = sigma * math.sqrt(dt) / tau_A
  for k = 1, 2 do
    local e = rstar - v[k]
    uint = uint + dt * (e - alpha * u[k])
    u[k + 1] = uint + k_p * e
    ulp[k + 1] = ulp[k] + dt / tau_hp * (u[k + 1] - ulp[k])
    local det = va[k] + dt / tau_A * (-va[k] + q * u[k + 1])
    local xi = (VA[k + 1] - det) / a -- the run's noise draw
    assert(xi == xi and math.abs(xi) < 6 and xi ~= 0, "noise draw")
    va[k + 1] = det + a * xi
    v[k + 1] = v[k] + dt / tau_v * (va[k + 1] + vB - v[k])
  end
  for k = 1, 3 do
    assert(math.abs(U[k] - u[k]) < 1e-15, "u by hand")
    assert(math.abs(LP[k] - ulp[k]) < 1e-15, "u_lp by hand")
    assert(math.abs(V[k] - v[k]) < 1e-15, "v by hand")
  end
  -- (200) over the 3 points: dQ = -(1/3) sum_k vA[k] (u[k] - u_lp[k]) / max(sigma, 0.01)^2
  local want = 0
  for k = 1, 3 do want = want - va[k] * (u[k] - ulp[k]) / sigma ^ 2 / 3 end
  local dQ = out:update(net.Q[1])
  print(string.format("(c) dQ = %.15g, by hand %.15g (u - u_lp at t = 2 dt: %.6g)", dQ[1], want, u[3] - ulp[3]))
  assert(math.abs(dQ[1] - want) <= 1e-13 * math.abs(want), "rule (200) by hand")
  assert(math.abs(u[3] - ulp[3]) < math.abs(u[3]), "the filter removed part of u")
end

-- ---- refused combinations -----------------------------------------------------------------
local base = { task = "student_teacher", feedback = "trained", single_phase = true, progress = false,
  task_opts = { variant = "small", n_train = 256, n_valid = 32, n_test = 32 } }
local with = fx.config(base)
local function refused(extra, text)
  local ok, err = pcall(dfc.trainer, with(extra))
  assert(not ok, "accepted: " .. text)
  assert(tostring(err):find(text, 1, true), "message: " .. tostring(err))
end
refused({ method = "dfc-ssa" }, 'single_phase = true needs method = "dfc"')
refused({ method = "bp" }, 'method "bp" has no such simulation')
refused({ method = "dfa" }, 'single_phase = true needs method = "dfc"')
refused({ method = "dfc-ss" }, 'method "dfc-ss" has a forward update from the last state only')
refused({ solver = "cvode-bdf" }, 'needs solver = "euler" (the noise needs euler-maruyama')
refused({ feedback = "weight_product" }, 'needs feedback = "trained"')
refused({ extra_fb_epochs = 2 }, "extra_fb_epochs = 2 must be 0 (or unset)")
refused({ feedback_pathway = "layerwise" }, 'needs feedback_pathway = "direct"')
refused({ convergence_test = true }, "cannot use convergence_test")
refused({ tau_hp = 0 }, "needs tau_hp > 0")

-- ---- (d) a short student-teacher run --------------------------------------------------------
do
  local tmp = fx.tmpdir()
  local r = dfc.train { task = "student_teacher", method = "dfc", optimizer = "adam", lr = 0.01,
    epochs = 10, tmax = 100, dt = 0.05, out_dir = tmp, progress = false, seed = 3,
    target_mode = "sample", feedback = "trained", single_phase = true, epochs_fb = 10,
    task_opts = { variant = "small", n_train = 1280, n_valid = 256, n_test = 256 } }
  for _, row in ipairs(r.log) do
    print(string.format("(d) epoch %2d: train loss %.4g, Condition 2 %.3f, |dQ| %.3g", row.epoch,
      row.train_loss, row.fb_condition2, row.fb_grad_norm))
  end
  local first, last = r.log[1].train_loss, r.log[#r.log].train_loss
  print(string.format("(d) loss %.4g -> %.4g (%.1fx)", first, last, first / last))
  assert(first / last >= 3, "single-phase learning did not lower the loss 3x")
  for _, row in ipairs(r.log) do
    assert(row.fb_condition2 > 0.5, "Condition 2 collapsed")
    assert(row.epoch == 0 or row.fb_epochs == 0, "no feedback epochs after forward epochs")
  end
end

check.done("test_single_phase")
