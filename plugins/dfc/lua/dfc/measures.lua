-- apical.plugins.dfc.measures — the measures of App. F.1 on a minibatch (docs/dfc.md,
-- "Measures"): Conditions 1, 2, 3, the stability of the linearised network + controller, and
-- the alignment angles of a DFC update with the BP gradient, the damped minimum-norm and
-- Gauss-Newton updates and the DFC-SSA update. Installs dfc.measures_new, dfc.measures and
-- dfc.angle.
--
--   local ms = dfc.measures_new(net, { gamma = 1e-3 })   -- scratch optimisers made once
--   local r = ms:compute { x = X, target = t.rstar, y = Y, loss = "mse", update = t.opt }
--   r.condition1, r.condition2, r.condition3, r.stability, r.angles.mn.all, r.angles.bp[2]
--   (and the reference code's: r.condition1_ref, r.stability_mean, r.angles.mn_ref, r.angles.gn_ref)
local apical = require "apical"
local core = require "apical.core"

local M = {}

-- The angle between two vectors (arrays or lists of numbers, the same length) in degrees:
-- 2 atan2(|a/|a| - b/|b||, |a/|a| + b/|b||), exact at 0 and 180 degrees (acos of the cosine
-- loses half the digits near 0). NaN when either vector is zero.
function M.angle(a, b)
  local n = #a
  if #b ~= n then
    error(string.format("dfc.angle: the vectors have %d and %d elements", n, #b), 2)
  end
  local na, nb = 0, 0
  for k = 1, n do na, nb = na + a[k] * a[k], nb + b[k] * b[k] end
  if na == 0 or nb == 0 then return 0 / 0 end
  na, nb = math.sqrt(na), math.sqrt(nb)
  local dm, dp = 0, 0
  for k = 1, n do
    local u, v = a[k] / na, b[k] / nb
    dm, dp = dm + (u - v) ^ 2, dp + (u + v) ^ 2
  end
  return math.deg(2 * math.atan(math.sqrt(dm), math.sqrt(dp)))
end

local Measures = {}
Measures.__index = Measures

-- the references: BP gradient, damped MN update, weighted MN update (Theorem 3: each layer's
-- share weighted by 1 / ||r_{i-1}||^2, the ideal of Fig. 3B), damped GN update, DFC-SSA update,
-- and the PyTorch reference code's two references of Fig. 3 (damping gamma_ref): mn_ref, its
-- "MN" update dv = J^T (J J^T + gamma_ref I)^{-1} delta per sample mapped through the
-- nonlinearity, dW_i = mean_b [phi(v_i + dv_i) - phi(v_i)] r_{i-1}^T; gn_ref, its "GN" update
-- mean_b J_W^T (J_W J_W^T + gamma_ref I)^{-1} delta with J_W over all weights and biases (per
-- sample, as the code computes it: our mn kind with gamma_ref)
local KINDS = { "bp", "mn", "wmn", "gn", "ssa", "mn_ref", "gn_ref" }
local SKIPPABLE = { condition1 = true, condition2 = true, condition3 = true, stability = true,
  bp = true, mn = true, wmn = true, gn = true, ssa = true, mn_ref = true, gn_ref = true,
  condition1_ref = true }
local NEW_OPTS = { alpha = true, k_p = true, tau_v = true, tau_u = true, gamma = true,
  gamma_gn = true, gamma_ref = true }
local COMPUTE_ARGS = { x = true, target = true, y = true, loss = true, lambda = true,
  target_mode = true, update = true, skip = true, alpha = true, k_p = true, tau_v = true,
  tau_u = true, gamma = true, gamma_gn = true, gamma_ref = true }

local function check_keys(t, known, what)
  for k in pairs(t) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(string.format("%s: unknown option %q (options: %s)", what, tostring(k),
        table.concat(names, ", ")), 3)
    end
  end
end

local function number_opt(v, name, what, lo)
  if v == nil then return nil end
  if type(v) ~= "number" or v ~= v or (lo and v < lo) then
    error(string.format("%s: %s = %s, must be a number%s", what, name, tostring(v),
      lo and (" >= " .. lo) or ""), 3)
  end
  return v
end

-- dfc.measures_new(net_or_model, opts): a measures object over a dfc.network (its controller
-- settings are the defaults) or a model built by the naming convention of docs/dfc.md.
-- opts: alpha, k_p, tau_v, tau_u (controller and soma, for Condition 3 and the stability;
-- required with a bare model unless given to compute), gamma (damping of the MN update, default
-- 0), gamma_gn (damping of the GN update, default gamma), gamma_ref (damping of the reference
-- code's mn_ref and gn_ref updates, default 0.1 as in its Fig. 3; 0 for its DFA).
function M.new(dfc, target, opts)
  local what = "dfc.measures_new"
  opts = opts or {}
  if type(opts) ~= "table" then error(what .. ": opts must be a table", 2) end
  check_keys(opts, NEW_OPTS, what)
  local self = setmetatable({ dfc = dfc, scratch = {}, out = {} }, Measures)
  if type(target) == "table" and target.model and target.W then
    local net = target
    self.net, self.model, self.L = net, net.model, net.L
    self.W = net.W
    self.sizes = net.sizes
    local c = net.opts or {}
    self.alpha, self.tau_v, self.tau_u = c.alpha, c.tau_v, c.tau_u or 1
    self.k_p = c.controller == "i" and 0 or c.k_p
    self.controller = c.controller
  elseif core.is_model(target) then
    local m = target
    self.model, self.W, self.sizes = m, {}, {}
    local L = 0
    while pcall(m.projection, m, "W" .. (L + 1)) do L = L + 1 end
    if L == 0 then error(what .. ": the model has no projection W1 (see docs/dfc.md)", 2) end
    for i = 1, L do
      self.W[i] = m:projection("W" .. i)
      local s = self.W[i]:weights().shape
      if i == 1 then self.sizes[1] = s[2] end
      self.sizes[i + 1] = s[1]
    end
    self.L = L
    self.tau_u = 1
  else
    error(what .. ": expected a dfc.network or a model, got " .. tostring(target), 2)
  end
  self.alpha = number_opt(opts.alpha, "alpha", what) or self.alpha
  self.k_p = number_opt(opts.k_p, "k_p", what) or self.k_p
  self.tau_v = number_opt(opts.tau_v, "tau_v", what) or self.tau_v
  self.tau_u = number_opt(opts.tau_u, "tau_u", what) or self.tau_u
  self.gamma = number_opt(opts.gamma, "gamma", what, 0) or 0
  self.gamma_gn = number_opt(opts.gamma_gn, "gamma_gn", what, 0)
  self.gamma_ref = number_opt(opts.gamma_ref, "gamma_ref", what, 0) or 0.1
  -- scratch optimisers over the forward projections: their buffers receive the reference
  -- updates (never stepped)
  for _, k in ipairs(KINDS) do
    self.scratch[k] = apical.optim.sgd { model = self.model, projections = self.W, lr = 1 }
  end
  return self
end

-- Output arrays of the kernels for a batch of B rows (made once per B).
function Measures:buffers(B)
  local o = self.out[B]
  if not o then
    local nL, N = self.sizes[self.L + 1], 0
    for i = 1, self.L do N = N + self.sizes[i + 1] end
    o = { c1 = apical.zeros { B }, c2 = apical.zeros { B }, re = apical.zeros { B, nL },
      im = apical.zeros { B, nL }, st = apical.zeros { B }, rminus = apical.zeros { B, nL },
      target = apical.zeros { B, nL }, N = N }
    self.out[B] = o
  end
  return o
end

-- The per-layer vectors (dW_i then db_i, flattened) of an optimiser; nil for a layer it does
-- not hold.
function Measures:layers(opt)
  local t = {}
  for i = 1, self.L do
    local ok, dW, db = pcall(opt.grad, opt, self.W[i])
    if ok then
      local v = {}
      for k = 1, #dW do v[k] = dW[k] end
      if db then for k = 1, #db do v[#v + 1] = db[k] end end
      t[i] = v
    end
  end
  return t
end

local function mean(a)
  return a:sum() / #a
end

-- ms:compute(args) -> a table of measures (see the file's head and docs/dfc.md). args:
--   x [B, n0] (required);
--   target [B, nL], the output target r_L* (e.g. the trainer's rstar), or y, loss, lambda
--     (and target_mode, "mean" by default) to form it with dfc.forward and dfc.targets;
--   y, loss: the labels for the BP gradient (dfc.bp); without them the BP direction is
--     dfc.bp's MSE gradient towards the target, parallel to the true one whenever the target
--     came from dfc.targets (r* = r_L^- - lambda dLoss/dr_L);
--   update: an optimiser holding the DFC update to compare (e.g. the trainer's optimiser
--     before its step); without it, no angles;
--   skip: a list of measures not to compute ("condition1", ..., "stability", "bp", "mn",
--     "gn", "ssa");
--   alpha, k_p, tau_v, tau_u, gamma, gamma_gn: override the object's.
-- Measures that fail numerically (a singular J J^T, ...) are left out and their message is in
-- result.errors[name].
function Measures:compute(a)
  local what = "measures:compute"
  if type(a) ~= "table" then error(what .. ": expected a table of arguments", 2) end
  check_keys(a, COMPUTE_ARGS, what)
  local dfc, m, L = self.dfc, self.model, self.L
  local n0, nL = self.sizes[1], self.sizes[L + 1]
  local X = a.x
  if not apical.is_array(X) or X.ndim ~= 2 or X.shape[2] ~= n0 then
    error(string.format("%s: x must be an array [B, %d]", what, n0), 2)
  end
  local B = X.shape[1]
  local o = self:buffers(B)
  local skip = {}
  for _, s in ipairs(a.skip or {}) do
    if not SKIPPABLE[s] then error(string.format("%s: skip: unknown measure %q", what, tostring(s)), 2) end
    skip[s] = true
  end
  local alpha = number_opt(a.alpha, "alpha", what) or self.alpha
  local k_p = number_opt(a.k_p, "k_p", what) or self.k_p
  local tau_v = number_opt(a.tau_v, "tau_v", what) or self.tau_v
  local tau_u = number_opt(a.tau_u, "tau_u", what) or self.tau_u
  local gamma = number_opt(a.gamma, "gamma", what, 0) or self.gamma
  local gamma_gn = number_opt(a.gamma_gn, "gamma_gn", what, 0) or self.gamma_gn or gamma
  local gamma_ref = number_opt(a.gamma_ref, "gamma_ref", what, 0) or self.gamma_ref
  -- the output target
  local T = a.target
  if T == nil then
    if a.y == nil or a.loss == nil or a.lambda == nil then
      error(what .. ": give target = r_L* or y, loss and lambda to form it", 2)
    end
    dfc.forward { model = m, x = X, out = o.rminus }
    dfc.targets { rL = o.rminus, y = a.y, loss = a.loss, lambda = a.lambda,
      mode = a.target_mode or "mean", out = o.target }
    T = o.target
  elseif not apical.is_array(T) or T.ndim ~= 2 or T.shape[1] ~= B or T.shape[2] ~= nL then
    error(string.format("%s: target must be an array [%d, %d]", what, B, nL), 2)
  end

  local r = { errors = {}, samples = B }
  local function try(name, fn)
    if skip[name] then return end
    local ok, err = pcall(fn)
    if not ok then r.errors[name] = tostring(err) end
  end
  -- the feedback: the model's Q1..QL, or a pathway's stacked effective feedback
  local qeff = self.net and self.net.ssa_feedback and self.net:ssa_feedback() or nil
  local function need(name, ...)
    for _, p in ipairs { ... } do
      if p[2] == nil then error(string.format("%s needs %s (give it to measures_new or compute)", name, p[1])) end
    end
  end

  try("condition1", function()
    dfc.condition1 { model = m, x = X, out = o.c1 }
    r.condition1 = mean(o.c1)
  end)
  try("condition1_ref", function()
    dfc.condition1 { model = m, x = X, out = o.c1, power = 1 }
    r.condition1_ref = mean(o.c1)
  end)
  try("condition2", function()
    dfc.condition2 { model = m, x = X, out = o.c2, Q = qeff }
    r.condition2 = mean(o.c2)
  end)
  try("condition3", function()
    need("condition3", { "alpha", alpha })
    dfc.jq_eigen { model = m, x = X, out_re = o.re, out_im = o.im, Q = qeff }
    local lo = math.huge
    for k = 1, #o.re do lo = math.min(lo, o.re[k]) end
    -- > 0: every eigenvalue of J Q has a real part above -alpha
    r.condition3 = lo + alpha
  end)
  try("stability", function()
    if self.controller == "p" or self.controller == "pid" then
      error("stability: the linearised system covers the PI and I controllers only")
    end
    need("stability", { "alpha", alpha }, { "k_p", k_p }, { "tau_v", tau_v })
    dfc.stability { model = m, x = X, target = T, alpha = alpha, k_p = k_p, tau_v = tau_v,
      tau_u = tau_u, out = o.st, Q = qeff }
    local hi = -math.huge
    for k = 1, #o.st do hi = math.max(hi, o.st[k]) end
    r.stability = hi
    -- the reference code's: the batch mean of the per-sample largest real part
    r.stability_mean = mean(o.st)
  end)

  -- the reference updates into the scratch optimisers
  local refs = {}
  local S = self.scratch
  try("bp", function()
    S.bp:zero()
    if a.y ~= nil and a.loss ~= nil then
      dfc.bp { model = m, x = X, y = a.y, loss = a.loss, optim = S.bp }
    else
      dfc.bp { model = m, x = X, y = T, loss = "mse", optim = S.bp }
    end
    refs.bp = self:layers(S.bp)
  end)
  -- a reference update of the minimum-norm family into the scratch optimiser S[name]
  local function ref_update(name, kernel, args)
    try(name, function()
      S[name]:zero()
      args.model, args.x, args.target, args.optim = m, X, T, S[name]
      kernel(args)
      refs[name] = self:layers(S[name])
    end)
  end
  ref_update("mn", dfc.mn_update, { gamma = gamma })
  ref_update("wmn", dfc.mn_update, { gamma = gamma, weighted = 1 })
  ref_update("gn", dfc.gn_update, { gamma = gamma_gn })
  -- the reference code's: damped MN through the nonlinearity, and its per-sample damped GN
  -- (the MN kernel over all weights and biases)
  ref_update("mn_ref", dfc.mn_update, { gamma = gamma_ref, weighted = 1, nonlinear = 1 })
  ref_update("gn_ref", dfc.mn_update, { gamma = gamma_ref })
  try("ssa", function()
    need("ssa", { "alpha", alpha })
    S.ssa:zero()
    dfc.ssa { model = m, x = X, target = T, alpha = alpha, optim = S.ssa, Qeff = qeff }
    refs.ssa = self:layers(S.ssa)
  end)
  r.updates = refs

  -- angles of the given update with each reference: per layer and all layers concatenated
  -- (the layers the update's optimiser holds)
  if a.update ~= nil then
    if not core.is_optim(a.update) then
      error(what .. ": update must be an optimiser (holding the DFC update)", 2)
    end
    local u = self:layers(a.update)
    r.angles = {}
    for _, k in ipairs(KINDS) do
      local ref = refs[k]
      if ref then
        local t, ua, ra = {}, {}, {}
        for i = 1, L do
          if u[i] and ref[i] then
            t[i] = M.angle(u[i], ref[i])
            for q = 1, #u[i] do ua[#ua + 1], ra[#ra + 1] = u[i][q], ref[i][q] end
          end
        end
        t.all = M.angle(ua, ra)
        r.angles[k] = t
      end
    end
  end
  return r
end

function M.install(dfc)
  function dfc.measures_new(target, opts)
    return M.new(dfc, target, opts)
  end
  -- one-shot: a new measures object (scratch optimisers included), then compute(args), whose
  -- alpha, k_p, tau_v, tau_u, gamma and gamma_gn override the network's
  function dfc.measures(target, args)
    return M.new(dfc, target):compute(args)
  end
  dfc.angle = M.angle
  -- the pictures `apical plot` draws of a run's measures.csv (dfc.train's measures_every): the
  -- panels of the paper's Fig. 3, in its order (apical.plot knows no measure by name)
  require("apical.plot").register_panels("measures.csv", M.PANELS)
end

-- measures.csv's panels: Condition 2, the angle with the weighted MN update (Theorem 3),
-- Condition 1, the angle with the GN update, the stability and the angle with the DFC-SSA update.
M.PANELS = { x = "iteration", layout = { 3, 2 }, panels = {
  { "condition2", "Condition 2 (||PQ||_F / ||Q||_F)" }, { "angle_wmn", "angle with weighted MN update (deg)" },
  { "condition1", "Condition 1 (std/mean of layer norms)" }, { "angle_gn", "angle with GN update (deg)" },
  { "stability", "max Re eig, linearised system" }, { "angle_ssa", "angle with DFC-SSA update (deg)" },
} }

M.Measures = Measures
return M
