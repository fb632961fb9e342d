-- apical.plugins.dfc.unused — the options of dfc.train that the chosen method, solver,
-- optimiser or feedback does not read, refused when the user gave them (nothing a user gives is
-- silently ignored). Table-driven: each rule names its options, when they are read, and says
-- both. An option the user gave is an explicit key of the dfc.train table or a value given on
-- the command line (--set, APICAL_SET); the values of `defaults` (a dfc.paper configuration, a
-- model's run settings) are fallbacks, and those the run does not read are simply not read.
local M = {}

local function simulated(c) return c.method == "dfc" or c.method == "dfc-ss" end
local function dfc_method(c) return c.method:sub(1, 3) == "dfc" end
local function measured(c) return c.measures_every > 0 end
local function trained(c) return dfc_method(c) and c.feedback == "trained" end

local function method_is(c) return string.format("method is %q", c.method) end
local function method_and_measures(c)
  return string.format("method is %q and measures_every = 0", c.method)
end

-- { options, read = predicate on the resolved options, only = where they are read, now = the
-- run's settings that leave them unread }
M.rules = {
  { { "solver", "dt", "tmax", "convergence_test", "threads" }, read = simulated,
    only = "by the methods that simulate the network (dfc, dfc-ss)", now = method_is },
  { { "rtol", "atol", "settle_tol", "linear_solver", "preconditioner", "mpi_cvode" },
    read = function(c) return simulated(c) and c.solver ~= "euler" end,
    only = "by a CVODE solver (cvode-bdf, cvode-adams) simulating dfc or dfc-ss",
    now = function(c)
      return simulated(c) and string.format("solver is %q (fixed steps of dt)", c.solver) or method_is(c)
    end },
  { { "inst_transmission", "proactive" },
    read = function(c) return simulated(c) and c.solver == "euler" end,
    only = "by the published Euler scheme (solver = \"euler\", the order of its updates) simulating dfc or dfc-ss",
    now = function(c)
      return simulated(c) and string.format("solver is %q (continuous time)", c.solver) or method_is(c)
    end },
  { { "stability_check" },
    read = function(c) return simulated(c) and c.solver == "euler" or trained(c) end,
    only = "by the fixed-step simulations (solver = \"euler\" for dfc or dfc-ss, the sleep phase of trained feedback)",
    now = function(c)
      return simulated(c) and string.format("solver is %q and feedback is %q", c.solver, c.feedback) or method_is(c)
    end },
  { { "controller", "tau_v", "tau_u" }, read = function(c) return simulated(c) or measured(c) end,
    only = "by the simulated methods (dfc, dfc-ss) and the measures (measures_every > 0)",
    now = method_and_measures },
  { { "k_p" }, read = function(c) return (simulated(c) or measured(c)) and c.controller ~= "i" end,
    only = "by a controller with a proportional part (pi, p, pid) in the simulated methods (dfc, dfc-ss) or the measures",
    now = function(c)
      return c.controller == "i" and "controller is \"i\"" or method_and_measures(c)
    end },
  { { "alpha", "target_mode" }, read = function(c) return dfc_method(c) or measured(c) end,
    only = "by the DFC methods (dfc, dfc-ss, dfc-ssa) and the measures (measures_every > 0)",
    now = method_and_measures },
  { { "lambda" }, read = function(c) return dfc_method(c) or measured(c) or c.normalize_lr end,
    only = "by the DFC methods' targets, the measures and normalize_lr (lr / lambda)",
    now = function(c) return method_and_measures(c) .. " and normalize_lr = false" end },
  { { "feedback" }, read = dfc_method,
    only = "by the DFC methods (bp uses no feedback; dfa its fixed random Q)", now = method_is },
  { { "feedback_pathway", "pathway_opts", "freeze_QL" }, read = function(c) return c.method ~= "bp" end,
    only = "by the methods with feedback (dfc, dfc-ss, dfc-ssa, dfa)", now = method_is },
  { { "momentum" }, read = function(c) return c.optimizer == "sgd" end,
    only = "by optimizer = \"sgd\"", now = function(c) return string.format("optimizer is %q", c.optimizer) end },
  { { "eps" }, read = function(c) return c.optimizer == "adam" end,
    only = "by optimizer = \"adam\"", now = function(c) return string.format("optimizer is %q", c.optimizer) end },
  { { "beta1", "beta2" },
    read = function(c) return c.optimizer == "adam" or trained(c) and c.optimizer_fb == "adam" end,
    only = "by Adam (optimizer = \"adam\", or optimizer_fb = \"adam\" with trained feedback)",
    now = function(c) return string.format("optimizer is %q", c.optimizer) end },
  { { "k_p_fb", "alpha_fb", "tau_v_fb", "dt_fb", "tmax_fb", "tau_A", "sigma", "optimizer_fb", "lr_fb",
      "lr_fb_init", "beta", "clip_fb", "epochs_fb", "extra_fb_epochs", "fb_threads" }, read = trained,
    only = "by trained feedback (feedback = \"trained\" with a DFC method: the sleep phase)",
    now = function(c)
      return dfc_method(c) and string.format("feedback is %q", c.feedback) or method_is(c)
    end },
  { { "eps_fb" }, read = function(c) return trained(c) and c.optimizer_fb == "adam" end,
    only = "by trained feedback with optimizer_fb = \"adam\"",
    now = function(c)
      return trained(c) and string.format("optimizer_fb is %q", c.optimizer_fb)
        or string.format("feedback is %q, method %q", c.feedback, c.method)
    end },
  { { "tau_hp" }, read = function(c) return c.single_phase end,
    only = "by single_phase = true", now = function() return "single_phase is false" end },
  { { "measures_gamma", "measures_gamma_gn" }, read = measured,
    only = "by the measures (measures_every > 0)", now = function() return "measures_every = 0" end },
}

-- option -> its rule
M.rule_of = {}
for _, r in ipairs(M.rules) do
  for _, k in ipairs(r[1]) do M.rule_of[k] = r end
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then return "{...}" end
  return tostring(v)
end

-- Why option k (value v) is not read by the run with resolved options c, or nil if it is.
function M.why(c, k, v)
  local r = M.rule_of[k]
  if not r or r.read(c) then return nil end
  return string.format("dfc.train: option %s = %s is not used by this run: it is read only %s, and %s",
    k, show(v), r.only, r.now(c))
end

-- The first option (in name order) among `given` (a set) that c does not read, with why.
function M.first(c, given)
  local names = {}
  for k in pairs(given) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local msg = M.why(c, k, c[k])
    if msg then return k, msg end
  end
end

return M
