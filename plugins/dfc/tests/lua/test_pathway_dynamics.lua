-- test_pathway_dynamics.lua — a relay feedback pathway (ctl.u -> r -> every apical compartment)
-- whose population has a time constant tau_fb: where the theory covers it, it works (tau_fb = 0:
-- the sleep phase, dfc.stability); where it does not (tau_fb > 0: the sleep phase's rule (13)
-- with its time shift, and the linearised stability), it is refused, naming the population, its
-- time constant and why, at the user's line (docs/dfc.md, "Pathways with their own dynamics").
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

dfc.pathways.register("relay", function(net, opts)
  local nL = net.sizes[net.L + 1]
  local r = dfc.pathways.population(net, { name = "r", size = nL, tau = opts.tau or 0 })
  dfc.pathways.connect(net, net.ctl.u, r.soma, { name = "S", init = "identity" })
  for i = 1, net.L do dfc.pathways.connect(net, r, net.h[i].apical, { name = "Q" .. i }) end
end)

local function relay(tau_fb)
  return dfc.network { sizes = { 4, 5, 3 }, batch = 4, k_p = 1.5, alpha = 0.01, seed = 2,
    feedback_pathway = "relay", pathway_opts = { tau = tau_fb }, plastic_feedback = true }
end
local X = apical.array { { 1, -0.5, 0.2, 0.3 }, { 0, 1, -1, 0.5 }, { 0.3, 0.3, 0.3, -2 }, { 0.1, 0.2, -0.3, 0.4 } }
local T = apical.zeros { 4, 3 }
local out = apical.zeros { 4 }

-- covered: an instantaneous relay
local n0 = relay(0)
assert(#dfc.pathways.dynamics(n0) == 0)
dfc.sleep(n0, { tmax_fb = 5 })
dfc.forward { model = n0.model, x = X, out = T }
dfc.stability { model = n0.model, x = X, target = T, alpha = 0.01, k_p = 1.5, tau_v = 0.2, out = out, Q = n0:ssa_feedback() }
assert(out[1] == out[1])

-- not covered: a relay with its own time constant
local n5 = relay(0.5)
local dyn = dfc.pathways.dynamics(n5)
assert(#dyn == 1 and dyn[1] == "r (tau = 0.5)", dyn[1])
local function fails(f, needles)
  local line = debug.getinfo(2, "l").currentline
  local ok, err = pcall(f)
  assert(not ok, "expected a refusal")
  local where = "test_pathway_dynamics.lua:" .. line .. ": "
  assert(err:find(where, 1, true) and not err:find("pathways.lua", 1, true), err)
  for _, n in ipairs(needles) do assert(err:find(n, 1, true), string.format("%q lacks %q", err, n)) end
end
fails(function() dfc.sleep(n5, { tmax_fb = 5 }) end, { "dfc.sleep: the feedback pathway relay has populations with dynamics of their own (r (tau = 0.5))", "rule (13)" })
fails(function() dfc.stability { model = n5.model, x = X, target = T, alpha = 0.01, k_p = 1.5, tau_v = 0.2, out = out, Q = n5:ssa_feedback() } end, { "dfc.stability: the feedback pathway relay", "linearised system" })
local tmp = fx.tmpdir()
fails(function() dfc.train { feedback = "trained", feedback_pathway = "relay", pathway_opts = { tau = 0.5 }, epochs = 1, progress = false, out_dir = tmp, task_opts = { n_train = 256, n_valid = 64, n_test = 64 } } end, { "the feedback pathway relay has populations with dynamics" })
-- the measures report the stability as not computed (NaN), saying why
local ms = dfc.measures_new(n5, { alpha = 0.01, k_p = 1.5, tau_v = 0.2 })
local r = ms:compute { x = X, target = T, skip = { "bp", "mn", "wmn", "gn", "ssa" } }
assert(r.stability == nil or r.stability ~= r.stability, "stability computed for a dynamic pathway")
assert(r.errors.stability and r.errors.stability:find("dynamics of their own", 1, true), tostring(r.errors.stability))
-- fixed feedback through the same pathway still trains (Lemma 1 holds at a steady state)
local res = dfc.train { method = "dfc", feedback = "given", feedback_pathway = "relay", pathway_opts = { tau = 0.5 }, epochs = 1, tmax = 100, dt = 0.05, solver = "cvode-bdf", progress = false, out_dir = tmp, task_opts = { n_train = 256, n_valid = 64, n_test = 64 } }
assert(res.log[2].train_loss == res.log[2].train_loss)
check.done("test_pathway_dynamics")
