-- custom_pathway.lua — a feedback pathway of one's own, written only in Lua: feedback that skips
-- a layer. The controller's output ctl.u drives an instantaneous tanh feedback population s,
-- which feeds the apical compartments of the odd layers (h1 and h3), while the even layer h2
-- gets direct feedback from ctl.u:
--
--     ctl.u --S--> s --Q1--> h1.apical
--                    --Q3--> h3.apical
--     ctl.u --Q2---------->  h2.apical
--
-- The builder is registered under a name, so dfc.network and dfc.train (whose configuration
-- must stay serialisable) both find it; its weight_product hook sets the weights so that the
-- pathway's effective feedback d vA / d u at u = 0 is the weight product W_{i+1}^T..W_L^T, which
-- the trainer sets from the initial weights (feedback = "weight_product"; recomputed before
-- every minibatch with "weight_product_tracking"). The script prints
-- the pathway, its effective feedback (analytic and by central differences on a probe model),
-- trains the student-teacher task end to end and simulates a few samples of the trained
-- network with CVODE. A second part trains the pathway's feedback weights instead (feedback =
-- "trained": the sleep phase's rule (13) on the synapses that end on the apical compartments,
-- Q1..Q3, with presynaptic rates s and u; S stays fixed) and prints Condition 2 of the
-- pathway's effective feedback before and after.
--   build/bin/apical run examples/custom_pathway.lua [--set method=dfc] [--set epochs=20]
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params { method = "dfc-ssa", epochs = 10, n_train = 2560, n_valid = 256,
  n_test = 256, batch = 128, lr = 0.01, solver = "euler", tmax = 100, dt = 0.05, seed = 3,
  samples = 4, out_dir = "runs", progress = false, feedback = "weight_product", epochs_fb = 10 }

-- ---- the pathway -------------------------------------------------------------------------------
dfc.pathways.register("skip", function(net, opts)
  local L, n, u = net.L, net.sizes, net.ctl.u
  local nL = n[L + 1]
  -- the feedback population: n_L instantaneous rate neurons (tau = 0), tanh by default
  local s = dfc.pathways.population(net, { name = "s", size = nL, activation = opts.activation or "tanh" })
  dfc.pathways.connect(net, u, s.soma, { name = "S" })
  for i = 1, L do
    -- the synapses ending on apical compartments are Q1..QL, whatever their source
    dfc.pathways.connect(net, i % 2 == 1 and s or u, net.h[i].apical, { name = "Q" .. i })
  end
  return {
    -- S = I and Q_i = W_{i+1}^T..W_L^T: tanh'(0) = 1, so Q_eff is the weight product
    weight_product = function(nt)
      local P = dfc.pathways.weight_products(nt)
      local I = apical.zeros { nL, nL }
      for k = 1, nL do I[(k - 1) * nL + k] = 1 end
      nt.model:projection("S"):set_weights(I)
      for i = 1, nt.L do nt.Q[i]:set_weights(P[i]) end
    end,
  }
end)

-- ---- what it builds ----------------------------------------------------------------------------
local net = dfc.network { sizes = { 15, 10, 10, 5 }, batch = p.samples, feedback_pathway = "skip",
  k_p = 1.5, alpha = 0.0015, seed = p.seed }
net.model:compile() -- no algebraic loop: u is feedthrough from h3's rate, whose soma is dynamic
print("feedback pathway " .. net.pathway.name .. ": populations " .. table.concat(net.pathway.populations, ", "))
for _, pr in ipairs(net.pathway.projections) do
  print(string.format("  %-3s %-8s -> %-10s %2d x %d", pr.name, pr.source, pr.target, pr.rows, pr.cols))
end
local Qa = dfc.effective_feedback(net, { method = "analytic" })
local Qn = dfc.effective_feedback(net, { method = "numeric" })
local diff = 0
for i = 1, net.L do
  for k = 1, #Qa[i] do diff = math.max(diff, math.abs(Qa[i][k] - Qn[i][k])) end
  print(string.format("  effective Q%d: %d x %d", i, Qa[i].shape[1], Qa[i].shape[2]))
end
print(string.format("  max |analytic - central differences| = %.1e", diff))
assert(diff < 1e-7, "effective feedback: analytic and numeric disagree")

-- ---- training ------------------------------------------------------------------------------------
-- (the simulation's settings only for the methods that simulate: DFC-SSA would refuse them)
local simulated = p.method == "dfc" or p.method == "dfc-ss"
local r = dfc.train { task = "student_teacher", feedback_pathway = "skip", method = p.method,
  feedback = p.feedback, optimizer = "adam", lr = p.lr, epochs = p.epochs, batch = p.batch,
  solver = simulated and p.solver or nil, tmax = simulated and p.tmax or nil,
  dt = simulated and p.dt or nil, seed = p.seed, out_dir = p.out_dir,
  progress = p.progress, name = "custom-pathway-" .. p.method,
  task_opts = { variant = "small", n_train = p.n_train, n_valid = p.n_valid, n_test = p.n_test } }
local first, last = r.log[1], r.log[#r.log]
print(string.format("trained with the skip pathway (%s, feedback %s): train loss %.4g -> %.4g, test loss %.4g -> %.4g",
  p.method, p.feedback, first.train_loss, last.train_loss, first.test_loss, last.test_loss))
assert(last.train_loss < first.train_loss, "training did not lower the loss")

-- ---- simulating the trained network --------------------------------------------------------------
local t = r.trainer
local tn = t.net
local sim = tn.model:compile()
local B, nL = t.B, t.n_out
local X, Y
for bx, by in t.task.test:batches { batch = B } do X, Y = bx, by break end
local rminus, rstar = apical.zeros { B, nL }, apical.zeros { B, nL }
dfc.forward { model = tn.model, x = X, out = rminus }
dfc.targets { rL = rminus, y = Y, loss = "mse", lambda = 0.1, mode = "sample", out = rstar }
-- (the tracking variant recomputes Q from the current weights, as before each minibatch)
if p.feedback == "weight_product_tracking" then tn:set_weight_product() end
sim:set_input(tn.x, X)
sim:set_input(tn.target, rstar)
local out = sim:run { solver = "cvode-bdf", t_end = 20, rtol = 1e-8, atol = 1e-10, accumulate = false,
  record = { tn.h[tn.L].rate }, times = { 0, 1, 5, 20 } }
local rec = out:get(tn.h[tn.L].rate)
local e0 = 0
for k = 1, math.min(p.samples, B) * nL do e0 = e0 + (rstar[k] - rminus[k]) ^ 2 end
print(string.format("CVODE, %d test samples, target r* = r^- - 0.1 dLoss/dr (per sample):", math.min(p.samples, B)))
for ti = 1, #out.times do
  local e = 0
  for k = 1, math.min(p.samples, B) * nL do e = e + (rstar[k] - rec[(ti - 1) * B * nL + k]) ^ 2 end
  print(string.format("  t = %4g: |r* - r_L| / |r* - r_L^-| = %.2e", out.times[ti], math.sqrt(e / e0)))
end

-- ---- trained feedback through the pathway ------------------------------------------------------
-- The sleep phase (docs/dfc.md, "Trained feedback through a pathway"): Q1 and Q3 learn with the
-- rate of s as their presynaptic factor, Q2 with u; S is not trained. Condition 2 is that of the
-- effective feedback (dfc.condition2's argument Q), on the trainer's logging samples.
local tf = dfc.trainer { task = "student_teacher", feedback_pathway = "skip", method = "dfc-ssa",
  feedback = "trained", optimizer = "adam", lr = p.lr, epochs = p.epochs, batch = p.batch,
  epochs_fb = p.epochs_fb, seed = p.seed, out_dir = p.out_dir, progress = p.progress,
  name = "custom-pathway-trained-feedback",
  task_opts = { variant = "small", n_train = p.n_train, n_valid = p.n_valid, n_test = p.n_test } }
local c0 = tf:condition2()
local S0 = tf.net.model:projection("S"):weights()
local rf = tf:fit()
local S1 = tf.net.model:projection("S"):weights()
for k = 1, #S0 do assert(S0[k] == S1[k], "S is inside the pathway: the sleep phase leaves it alone") end
print(string.format("trained feedback through the skip pathway: Condition 2 %.4f (initial) -> %.4f " ..
  "(after %d pre-training epochs) -> %.4f (after %d epochs); test loss %.4g",
  c0, rf.log[1].fb_condition2, p.epochs_fb, rf.log[#rf.log].fb_condition2, p.epochs,
  rf.log[#rf.log].test_loss))
assert(rf.log[1].fb_condition2 > c0, "feedback training did not raise Condition 2")
