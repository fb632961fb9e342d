-- apical.plugins.dfc.pathways — feedback pathways of dfc.network: how the controller's output
-- ctl.u reaches the apical compartments of h1..hL. "direct" (Q_i: ctl.u -> h_i.apical, built by
-- network.lua), "layerwise" (a chain of feedback populations g_{L-1} .. g_1), "multilayer" (a
-- separate feedback network with hidden layers, shared or one per layer, Fig. S15A/B) and
-- user-defined ones (a Lua function that builds ordinary engine objects); the effective linear
-- feedback matrix of any pathway at u = 0, Q_eff = d vA / d u (analytic for pathways of rate
-- neurons, by central differences on a probe model otherwise), which Lemma 1 / DFC-SSA uses.
--
-- Whatever the pathway, the projections ending on h<i>.apical are named Q<i>, so the feedback
-- rule (13) and the optimisers treat them as with direct feedback; the other projections of a
-- pathway have other names (F<i>, ...).
local apical = require "apical"

local M = {}

-- ---- dense helpers -------------------------------------------------------------------------------

-- The plugin's table (set by M.install): the kernels dfc.pathway_product, dfc.weight_product.
M.dfc = nil

-- out (+)= op(a) b through the kernel dfc.pathway_product (pathway.c)
local function product(a, b, out, trans, acc)
  M.dfc.pathway_product { a = a, b = b, out = out, trans_a = trans and 1 or 0, accumulate = acc and 1 or 0 }
  return out
end

local function identity(n)
  local I = apical.zeros { n, n }
  for k = 0, n - 1 do I[k * n + k + 1] = 1 end
  return I
end

-- ---- activations: value and derivative, as the engine computes them (engine/src/activation.c)

local function logistic(x)
  if x >= 0 then return 1 / (1 + math.exp(-x)) end
  local e = math.exp(x)
  return e / (1 + e)
end

local activations = {
  linear = { function(x) return x end, function() return 1.0 end },
  tanh = { math.tanh, function(x) local t = math.tanh(x) return 1 - t * t end },
  logistic = { logistic, function(x) local s = logistic(x) return s * (1 - s) end },
  relu = { function(x) return x > 0 and x or 0.0 end, function(x) return x > 0 and 1.0 or 0.0 end },
  softplus = { function(x) return math.max(x, 0) + math.log(1 + math.exp(-math.abs(x))) end, logistic },
}
activations.identity = activations.linear
activations.sigmoid = activations.logistic
M.activations = activations

-- ---- the pathway object ----------------------------------------------------------------------

local Pathway = {}
Pathway.__index = Pathway
M.Pathway = Pathway

local builders = {} -- name -> function(net, opts) [-> hooks]

-- Registers a pathway builder under a name, so that dfc.network { feedback_pathway = name } and
-- dfc.train { feedback_pathway = name } (whose configuration must stay serialisable) find it.
function M.register(name, build)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    error("dfc.pathways.register: the name must be an identifier, got " .. tostring(name), 2)
  end
  if type(build) ~= "function" then
    error("dfc.pathways.register: the builder must be a function(net, opts), got " .. type(build), 2)
  end
  if name == "direct" or name == "layerwise" or name == "multilayer" then
    error(string.format("dfc.pathways.register: %q is a built-in pathway", name), 2)
  end
  builders[name] = build
end

function M.names()
  local t = { "direct", "layerwise", "multilayer" }
  local extra = {}
  for n in pairs(builders) do
    if n ~= "layerwise" and n ~= "multilayer" then extra[#extra + 1] = n end
  end
  table.sort(extra)
  for _, n in ipairs(extra) do t[#t + 1] = n end
  return t
end

-- The initialiser of a pathway projection: the network's feedback_init with a seed derived from
-- the network's seed, Q<i> with the seeds direct feedback uses.
local function pathway_init(net, name, kind)
  local c = net.opts
  local i = name:match("^Q(%d+)$")
  local seed
  if i then
    seed = c.seed * 1000 + 100 + tonumber(i)
  else
    net._pw_seeds = (net._pw_seeds or 0) + 1
    seed = c.seed * 1000 + 500 + net._pw_seeds
  end
  kind = kind or c.feedback_init
  if kind == "normal" then return apical.init.normal { std = c.feedback_std, seed = seed } end
  if kind == "zeros" or kind == "identity" then return kind end
  return apical.init[kind] { seed = seed }
end

-- Helpers for pathway builders (dfc.pathways.population / .connect):
-- a feedback population of rate neurons, instantaneous (tau = 0) and linear by default, started
-- at its drive (so that a dynamic one, tau > 0, begins at rest like the layers).
function M.population(net, o)
  o = o or {}
  for k in pairs(o) do
    if k ~= "name" and k ~= "size" and k ~= "activation" and k ~= "tau" then
      error(string.format("dfc.pathways.population: unknown option %q (name, size, activation, tau)",
        tostring(k)), 2)
    end
  end
  local tau = o.tau or 0
  if type(tau) ~= "number" or not (tau >= 0 and tau < math.huge) then
    error(string.format("dfc.pathways.population: tau = %s must be a finite number >= 0 (0: instantaneous)",
      tostring(tau)), 0)
  end
  return net.model:population { name = o.name, size = o.size, neuron = apical.rate { tau = tau },
    activation = o.activation or "linear", start = "settled" }
end

-- The populations of net's feedback pathway that have dynamics of their own (a time constant
-- > 0): a list of "name (tau = value)", empty for direct feedback and instantaneous pathways.
function M.dynamics(net)
  local list = {}
  for _, name in ipairs(net.pathway and net.pathway.populations or {}) do
    local info = net.model:population_info(name)
    local p = info and info.params or {}
    local tau = (p.tau or 0) > 0 and p.tau or (p.tau_v or 0) > 0 and p.tau_v or (p.tau_A or 0) > 0 and p.tau_A or nil
    if tau then list[#list + 1] = string.format("%s (tau = %g)", name, tau) end
  end
  return list
end

-- The refusal where the theory does not cover a pathway with dynamics (docs/dfc.md, "Pathways
-- with their own dynamics"): what (the caller's name) and why (the part of the theory).
function M.refuse_dynamics(net, what, why)
  local dyn = M.dynamics(net)
  if #dyn == 0 then return end
  error(string.format("%s: the feedback pathway %s has populations with dynamics of their own (%s); " ..
    "%s, which assumes the pathway passes u on at once. Make its populations instantaneous " ..
    "(tau = 0) or use fixed feedback (docs/dfc.md, \"Pathways with their own dynamics\")", what,
    net.pathway.name, table.concat(dyn, ", "), why), 0)
end

-- a dense projection without bias (unless bias = true) initialised like the network's feedback
-- (feedback_init, feedback_std, seeded from the network's seed; Q<i> with the seeds of direct
-- feedback), or by `init` (an initialiser spec or name).
function M.connect(net, source, target, o)
  o = o or {}
  for k in pairs(o) do
    if k ~= "name" and k ~= "init" and k ~= "bias" then
      error(string.format("dfc.pathways.connect: unknown option %q (name, init, bias)", tostring(k)), 2)
    end
  end
  if type(o.name) ~= "string" then error("dfc.pathways.connect: a name is required", 2) end
  local init = o.init
  if init == nil or type(init) == "string" then init = pathway_init(net, o.name, init) end
  -- Q<i> are plastic like direct feedback when the network has plastic_feedback (an optimiser
  -- can then hold them)
  local plastic = (o.name:match("^Q%d+$") and net.opts.plastic_feedback) and true or false
  return net.model:connect(source, target, { name = o.name, init = init, bias = o.bias or false,
    plastic = plastic })
end

-- ---- the built-in pathways ---------------------------------------------------------------------

local function check_opts(o, known, what)
  for k in pairs(o) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(string.format("dfc.network: feedback_pathway %s: unknown option %q (options: %s)", what,
        tostring(k), table.concat(names, ", ")), 0)
    end
  end
end

-- Common option checks: activation a name, tau >= 0, sizes positive integers.
local function check_common(o, what)
  local function bad(k, want)
    error(string.format("dfc.network: feedback_pathway %s: option %s = %s must be %s", what, k,
      tostring(o[k]), want), 0)
  end
  if o.activation ~= nil and type(o.activation) ~= "string" then bad("activation", "an activation name") end
  if o.tau ~= nil and not (type(o.tau) == "number" and o.tau >= 0) then bad("tau", "a number >= 0") end
  for _, k in ipairs { "sizes", "hidden" } do
    local v = o[k]
    if v ~= nil then
      local list = type(v) == "table" and v or { v }
      if (type(v) ~= "table" and k == "sizes") or #list == 0 then bad(k, "a list of positive integers") end
      for _, n in ipairs(list) do
        if math.type(n) ~= "integer" or n < 1 then bad(k, "a positive integer or a list of them") end
      end
    end
  end
  if o.shared ~= nil and type(o.shared) ~= "boolean" then bad("shared", "true or false") end
  if o.inner_init ~= nil and o.inner_init ~= "orthogonal" then
    bad("inner_init", "\"orthogonal\" or nil (the network's feedback_init)")
  end
end

-- Products W_{i+1}^T ... W_L^T (arrays n_i x n_L), the weight-product feedback, for i = 1..L.
function M.weight_products(net)
  local L, n = net.L, net.sizes
  local P = { [L] = identity(n[L + 1]) }
  for i = L - 1, 1, -1 do
    P[i] = product(net.W[i + 1]:weights(), P[i + 1], apical.zeros { n[i + 1], n[L + 1] }, true)
  end
  return P
end

-- the top-left corner of a (rows x cols) array of zeros
local function padded(a, rows, cols)
  if a.shape[1] == rows and a.shape[2] == cols then return a end
  local t = apical.zeros { rows, cols }
  for r = 0, math.min(rows, a.shape[1]) - 1 do
    for c = 0, math.min(cols, a.shape[2]) - 1 do t[r * cols + c + 1] = a[r * a.shape[2] + c + 1] end
  end
  return t
end

local function identity_pad(rows, cols)
  return padded(identity(math.min(rows, cols)), rows, cols)
end

-- Orthonormalises the weights of projection p in place (modified Gram-Schmidt): orthonormal
-- columns when it has at least as many rows as columns (W^T W = I), orthonormal rows otherwise.
-- The pathway option inner_init = "orthogonal" uses it on the weights inside a pathway (F...):
-- with W^T W = I along the chain, G_i = d p_i / d u has G_i^T G_i = I and trained feedback
-- (sleep.lua) then moves the effective feedback exactly as it moves direct feedback (Theorem 6).
local function orthonormalise(p)
  local W = p:weights()
  local rows, cols = p.rows, p.cols
  local tall = rows >= cols
  local nv, len = tall and cols or rows, tall and rows or cols
  local function at(v, k) -- entry k of vector v (a column when tall, a row otherwise)
    return tall and ((k - 1) * cols + v) or ((v - 1) * cols + k)
  end
  for v = 1, nv do
    for w = 1, v - 1 do
      local d = 0
      for k = 1, len do d = d + W[at(v, k)] * W[at(w, k)] end
      for k = 1, len do W[at(v, k)] = W[at(v, k)] - d * W[at(w, k)] end
    end
    local nrm = 0
    for k = 1, len do nrm = nrm + W[at(v, k)] ^ 2 end
    nrm = math.sqrt(nrm)
    if not (nrm > 1e-12) then error("dfc.network: inner_init = \"orthogonal\": degenerate draw for " .. p.name, 0) end
    for k = 1, len do W[at(v, k)] = W[at(v, k)] / nrm end
  end
  p:set_weights(W)
end

-- A projection inside a pathway (not onto an apical compartment): initialised like the
-- network's feedback, or orthonormalised (inner_init = "orthogonal").
local function inner(net, o, source, target, name)
  local orth = o.inner_init == "orthogonal"
  local p = M.connect(net, source, target, { name = name, init = orth and "normal" or nil })
  if orth then orthonormalise(p) end
  return p
end

-- layerwise: ctl.u -> h_L.apical (Q_L) and ctl.u -> g_{L-1} (F_{L-1}); g_i -> g_{i-1} (F_{i-1})
-- and g_i -> h_i.apical (Q_i). Options: activation ("linear"), tau (0), sizes (of g_1..g_{L-1},
-- default n_1..n_{L-1}), inner_init (nil: the F_i as the network's feedback_init; "orthogonal").
builders.layerwise = function(net, o)
  check_opts(o, { activation = true, tau = true, sizes = true, inner_init = true }, "layerwise")
  check_common(o, "layerwise")
  if o.sizes and #o.sizes ~= net.L - 1 then
    error(string.format("dfc.network: feedback_pathway layerwise: sizes lists %d entries for the %d feedback populations g1..g%d",
      #o.sizes, net.L - 1, net.L - 1), 0)
  end
  local L, n = net.L, net.sizes
  local u = net.ctl.u
  net.g = {}
  local prev = u
  for i = L - 1, 1, -1 do
    local size = (o.sizes and o.sizes[i]) or n[i + 1]
    net.g[i] = M.population(net, { name = "g" .. i, size = size, activation = o.activation, tau = o.tau })
    inner(net, o, prev, net.g[i].soma, "F" .. i)
    prev = net.g[i]
  end
  net.Q[L] = M.connect(net, u, net.h[L].apical, { name = "Q" .. L })
  for i = L - 1, 1, -1 do
    net.Q[i] = M.connect(net, net.g[i], net.h[i].apical, { name = "Q" .. i })
  end
  return {
    -- Q_L = I, F_{L-1} = W_L^T, F_{i-1} = W_i^T, Q_i = I: the effective feedback is the weight
    -- product W_{i+1}^T..W_L^T when g_i has n_i linear units (padded otherwise).
    weight_product = function(nt)
      local sz = nt.sizes
      nt.Q[nt.L]:set_weights(identity_pad(sz[nt.L + 1], sz[nt.L + 1]))
      for i = nt.L - 1, 1, -1 do
        local F = nt.model:projection("F" .. i)
        local Wt = product(nt.W[i + 1]:weights(), nil, apical.zeros { sz[i + 1], sz[i + 2] }, true)
        F:set_weights(padded(Wt, F.rows, F.cols))
        nt.Q[i]:set_weights(identity_pad(nt.Q[i].rows, nt.Q[i].cols))
      end
    end,
  }
end

-- multilayer: a separate feedback network (Fig. S15A/B). shared = true: one chain of hidden
-- feedback populations fb1..fbK (sizes `hidden`) from ctl.u, the last feeding every h_i.apical;
-- shared = false: one chain fb<i>_1..fb<i>_K per layer. Options: shared (true), hidden (a size or
-- a list; default the largest n_i when shared, n_i per layer), activation ("linear"; "tanh" for
-- the nonlinear variant), tau (0), inner_init (nil or "orthogonal", for the F...).
builders.multilayer = function(net, o)
  check_opts(o, { shared = true, hidden = true, activation = true, tau = true, inner_init = true },
    "multilayer")
  check_common(o, "multilayer")
  local L, n = net.L, net.sizes
  local u = net.ctl.u
  local shared = o.shared ~= false
  local function hidden_sizes(default)
    if o.hidden == nil then return { default } end
    if type(o.hidden) == "number" then return { o.hidden } end
    return o.hidden
  end
  local function chain(prefix, fprefix, sizes)
    local prev = u
    for k, size in ipairs(sizes) do
      local pop = M.population(net, { name = prefix .. k, size = size, activation = o.activation, tau = o.tau })
      inner(net, o, prev, pop.soma, fprefix .. k)
      prev = pop
    end
    return prev
  end
  net.fb = {}
  if shared then
    local widest = 0
    for i = 1, L do widest = math.max(widest, n[i + 1]) end
    local last = chain("fb", "F", hidden_sizes(widest))
    for i = 1, L do
      net.fb[i] = last
      net.Q[i] = M.connect(net, last, net.h[i].apical, { name = "Q" .. i })
    end
  else
    for i = 1, L do
      local last = chain("fb" .. i .. "_", "F" .. i .. "_", hidden_sizes(n[i + 1]))
      net.fb[i] = last
      net.Q[i] = M.connect(net, last, net.h[i].apical, { name = "Q" .. i })
    end
  end
  return {
    -- the hidden layers pass u through (identity, padded), Q_i = the weight product (padded):
    -- exact for linear pathways whose hidden layers have at least n_L units, and to first order
    -- (the effective feedback) for activations with phi(0) = 0, phi'(0) = 1 such as tanh
    weight_product = function(nt)
      local P = M.weight_products(nt)
      for _, p in ipairs(nt.pathway.projections) do
        if p.name:match("^F") then p:set_weights(identity_pad(p.rows, p.cols)) end
      end
      for i = 1, nt.L do nt.Q[i]:set_weights(padded(P[i], nt.Q[i].rows, nt.Q[i].cols)) end
    end,
  }
end

-- Builds the pathway named (or given as a function) `spec` on net (called by dfc.network after
-- the controller). Records the objects and projections it added in net.pathway.
function M.build(dfc, net, spec, opts)
  local m = net.model
  local name, build
  if type(spec) == "function" then
    name, build = "custom", spec
  elseif type(spec) == "string" then
    name, build = spec, builders[spec]
    if not build then
      error(string.format("dfc.network: unknown feedback_pathway %q (%s, or a function(net, opts))",
        spec, table.concat(M.names(), ", ")), 0)
    end
  else
    error("dfc.network: feedback_pathway must be a name (" .. table.concat(M.names(), ", ") ..
      ") or a function(net, opts), got " .. type(spec), 0)
  end
  opts = opts or {}
  local n_obj, n_proj = #m:objects(), #m:projections()
  local hooks = build(net, opts) or {}
  if type(hooks) ~= "table" then
    error(string.format("dfc.network: feedback_pathway %s: the builder must return nil or a table of hooks, got %s",
      name, type(hooks)), 0)
  end
  local pw = setmetatable({ name = name, opts = opts, hooks = hooks, populations = {}, blocks = {},
    order = {}, projections = {}, dfc = dfc }, Pathway)
  local objs = m:objects()
  for k = n_obj + 1, #objs do
    local o = objs[k]
    if o.kind == "population" then
      pw.populations[#pw.populations + 1] = o.name
    elseif o.kind == "block" then
      pw.blocks[#pw.blocks + 1] = o.name
    else
      error(string.format("dfc.network: feedback_pathway %s added the %s %q; pathways add populations, blocks and projections",
        name, o.kind, o.name), 0)
    end
    pw.order[#pw.order + 1] = o.name
  end
  local projs = m:projections()
  for k = n_proj + 1, #projs do pw.projections[#pw.projections + 1] = projs[k] end
  M.finish(net, pw)
  return pw
end

-- Checks the naming convention (Q<i> onto h<i>.apical for every layer) and sets net.Q.
function M.finish(net, pw)
  local m = net.model
  for i = 1, net.L do
    local ok, q = pcall(m.projection, m, "Q" .. i)
    if not ok then
      error(string.format("dfc.network: feedback_pathway %s built no projection Q%d (the synapses ending on h%d.apical must be named Q1..QL)",
        pw.name, i, i), 0)
    end
    if q.target ~= "h" .. i .. ".apical" then
      error(string.format("dfc.network: feedback_pathway %s: Q%d ends on %s, not on h%d.apical",
        pw.name, i, q.target, i), 0)
    end
    net.Q[i] = q
  end
  net.pathway = pw
end

-- The pathway record of direct feedback (built by network.lua itself).
function M.direct(dfc, net)
  local pw = setmetatable({ name = "direct", opts = {}, hooks = {}, populations = {}, blocks = {},
    order = {}, projections = {}, dfc = dfc }, Pathway)
  for i = 1, net.L do pw.projections[i] = net.Q[i] end
  M.finish(net, pw)
  return pw
end

-- Sets the pathway's weights so that its effective feedback is the weight product
-- W_{i+1}^T..W_L^T (Q_L = I): direct feedback through the kernel dfc.weight_product, the others
-- through their builder's weight_product hook.
function Pathway:weight_product(net)
  if self.name == "direct" then
    self.dfc.weight_product { model = net.model }
  elseif self.hooks.weight_product then
    self.hooks.weight_product(net)
  else
    error(string.format("feedback pathway %s has no weight_product (its builder returns no weight_product hook)",
      self.name), 2)
  end
end

function Pathway:has_weight_product()
  return self.name == "direct" or self.hooks.weight_product ~= nil
end

-- ---- the effective feedback matrix -------------------------------------------------------------

-- Every projection of the model ending on a pathway population or on an apical compartment.
local function pathway_inputs(net)
  local pw, m = net.pathway, net.model
  local inside = {}
  for _, p in ipairs(pw.populations) do inside[p] = true end
  for _, b in ipairs(pw.blocks) do inside[b] = true end
  local apical_of = {}
  for i = 1, net.L do apical_of["h" .. i .. ".apical"] = i end
  local list = {}
  for _, p in ipairs(m:projections()) do
    local obj = p.target:match("^([^.]+)")
    if inside[obj] or apical_of[p.target] then list[#list + 1] = p end
  end
  return list, inside, apical_of
end

-- The source of a pathway projection as a canonical signal name ("ctl.u", "g1.rate", "g1.soma"),
-- or nil and the reason when the pathway reads something else.
local function pathway_source(p, inside)
  local s = p.source
  if s == "ctl.u" or s == "ctl" then return "ctl.u" end
  local obj, part = s:match("^([^.]+)%.?(.*)$")
  if not inside[obj] then
    return nil, string.format("projection %s reads %s: effective_feedback needs a pathway driven by ctl.u alone", p.name, s)
  end
  if part == "" then part = "rate" end
  return obj .. "." .. part
end

-- Analytic Jacobian at u = 0 by forward propagation through the pathway: needs rate neurons with
-- a known activation, fed in declaration order. Returns per-layer arrays n_i x n_L, or nil and
-- the reason. The dense products go through dfc.pathway_product.
local function analytic(net)
  local pw, m, L = net.pathway, net.model, net.L
  local nL = net.sizes[L + 1]
  if #pw.blocks > 0 then return nil, "the pathway has blocks (" .. table.concat(pw.blocks, ", ") .. ")" end
  local list, inside = pathway_inputs(net)
  local by_target = {}
  for _, p in ipairs(list) do
    by_target[p.target] = by_target[p.target] or {}
    table.insert(by_target[p.target], p)
  end
  local sig = {} -- signal -> { J = n x nL, val = n x 1 (the value at u = 0) }
  -- adds projection p's share to J and val
  local function add(p, J, val)
    local src, why = pathway_source(p, inside)
    if not src then return why end
    local W = p:weights()
    local dense = p.kind == "dense"
    local rows = dense and p.rows or p.cols -- one-to-one weights are 1 x n
    if src == "ctl.u" then
      -- d u / d u = I; u = 0 adds no value
      if dense then
        apical.call("axpy", { a = 1, x = W, y = J })
      else
        for r = 0, rows - 1 do J[r * nL + r + 1] = J[r * nL + r + 1] + W[r + 1] end
      end
    else
      local s = sig[src]
      if not s then
        return string.format("projection %s reads %s before it is computed (not a feedforward pathway)", p.name, src)
      end
      if dense then
        product(W, s.J, J, false, true)
        product(W, s.val, val, false, true)
      else
        for r = 0, rows - 1 do
          local w = W[r + 1]
          for j = r * nL + 1, r * nL + nL do J[j] = J[j] + w * s.J[j] end
          val[r + 1] = val[r + 1] + w * s.val[r + 1]
        end
      end
    end
    if p.has_bias then
      local b = p:bias()
      for r = 1, rows do val[r] = val[r] + b[r] end
    end
    return nil
  end
  for _, name in ipairs(pw.populations) do
    local info = m:population_info(name)
    local act = activations[info.activation]
    if info.neuron ~= "rate" then return nil, string.format("population %s is %s, not rate", name, info.neuron) end
    if not act then return nil, string.format("population %s has the activation %s", name, info.activation) end
    local n = info.size
    local J, val = apical.zeros { n, nL }, apical.zeros { n, 1 }
    for _, p in ipairs(by_target[name .. ".soma"] or {}) do
      local why = add(p, J, val)
      if why then return nil, why end
    end
    sig[name .. ".soma"] = { J = J, val = val }
    -- the rate: phi(v), d/du = diag(phi'(v(0))) dv/du
    local rJ, rval = J:copy(), apical.zeros { n, 1 }
    for r = 0, n - 1 do
      local v = val[r + 1]
      local d = act[2](v)
      rval[r + 1] = act[1](v)
      if d ~= 1 then
        for j = r * nL + 1, r * nL + nL do rJ[j] = d * J[j] end
      end
    end
    sig[name .. ".rate"] = { J = rJ, val = rval }
  end
  local out = {}
  for i = 1, L do
    local ni = net.sizes[i + 1]
    local J, val = apical.zeros { ni, nL }, apical.zeros { ni, 1 }
    for _, p in ipairs(by_target["h" .. i .. ".apical"] or {}) do
      local why = add(p, J, val)
      if why then return nil, why end
    end
    out[i] = J
  end
  return out
end

-- The probe model: the pathway copied with ctl.u as an input (probe_u) and each apical
-- compartment replaced by an instantaneous linear population probe_h<i>; batch n_L. Built once
-- per network; its weights are copied from the network at every evaluation.
local function probe(net)
  local pw, m = net.pathway, net.model
  local n_proj = #m:projections()
  -- rebuilt when projections were added to the model since (before it was compiled)
  if pw._probe and pw._probe.n_proj == n_proj then return pw._probe end
  local L = net.L
  local nL = net.sizes[L + 1]
  if #pw.blocks > 0 then
    error(string.format("dfc.effective_feedback: the pathway %s has blocks (%s); the probe copies populations and projections only",
      pw.name, table.concat(pw.blocks, ", ")), 0)
  end
  local list, inside, apical_of = pathway_inputs(net)
  local pm = apical.model { batch = nL }
  for _, name in ipairs(pw.populations) do
    if name == "probe_u" or name:match("^probe_h%d+$") then
      error("dfc.effective_feedback: a pathway population is named " .. name .. ", which the probe uses", 0)
    end
  end
  pm:input { name = "probe_u", size = nL }
  for _, name in ipairs(pw.populations) do
    local info = m:population_info(name)
    pm:population { name = name, size = info.size, neuron = apical.neuron(info.neuron, info.params),
      activation = info.activation, start = "settled" }
  end
  for i = 1, L do
    pm:population { name = "probe_h" .. i, size = net.sizes[i + 1], neuron = apical.rate { tau = 0 } }
  end
  local pairs_ = {}
  for _, p in ipairs(list) do
    local src, why = pathway_source(p, inside)
    if not src then error("dfc.effective_feedback: " .. why, 0) end
    if src == "ctl.u" then src = "probe_u" end
    local tgt = apical_of[p.target] and ("probe_h" .. apical_of[p.target] .. ".soma") or p.target
    local pp = pm:connect(src, tgt, { name = p.name, kind = p.kind, bias = p.has_bias })
    pairs_[#pairs_ + 1] = { p, pp }
  end
  local sim = pm:compile()
  pw._probe = { model = pm, sim = sim, pairs = pairs_, nL = nL, n_proj = n_proj }
  return pw._probe
end

-- Central differences d vA_i / d u at u = 0 on the probe: inputs +-eps e_k (row k of the batch).
local function numeric(net, eps)
  local pr = probe(net)
  for _, pp in ipairs(pr.pairs) do
    local p, q = pp[1], pp[2]
    q:set_weights(p:weights())
    if p.has_bias then q:set_bias(p:bias()) end
  end
  local nL, L, sim = pr.nL, net.L, pr.sim
  local function at(s)
    local U = apical.zeros { nL, nL }
    for k = 0, nL - 1 do U[k * nL + k + 1] = s * eps end
    sim:set_input("probe_u", U)
    sim:reset()
    local r = {}
    for i = 1, L do r[i] = sim:read("probe_h" .. i .. ".soma") end
    return r
  end
  local plus, minus = at(1), at(-1)
  local out = {}
  for i = 1, L do
    local ni = net.sizes[i + 1]
    local J, P, Mi = apical.zeros { ni, nL }, plus[i], minus[i]
    for k = 0, nL - 1 do
      for j = 0, ni - 1 do
        J[j * nL + k + 1] = (P[k * ni + j + 1] - Mi[k * ni + j + 1]) / (2 * eps)
      end
    end
    out[i] = J
  end
  return out
end

-- dfc.effective_feedback(net [, { method = "auto" | "analytic" | "numeric", eps = 1e-5 }]) ->
-- per-layer arrays Q_eff_i (n_i x n_L), and the stacked array [Q_1; ...; Q_L] (sum n_i x n_L):
-- the Jacobian d vA / d u of the pathway at u = 0. "auto": analytic when the pathway is made of
-- rate neurons with built-in activations fed in declaration order, otherwise numeric.
function M.effective_feedback(net, o)
  o = o or {}
  for k in pairs(o) do
    if k ~= "method" and k ~= "eps" then
      error(string.format("dfc.effective_feedback: unknown option %q (method, eps)", tostring(k)), 2)
    end
  end
  if type(net) ~= "table" or not net.pathway then
    error("dfc.effective_feedback: expected a network built by dfc.network", 2)
  end
  local method, eps = o.method or "auto", o.eps or 1e-5
  if type(eps) ~= "number" or not (eps > 0) then error("dfc.effective_feedback: eps must be > 0", 2) end
  local per
  if method == "auto" or method == "analytic" then
    local why
    per, why = analytic(net)
    if not per and method == "analytic" then
      error("dfc.effective_feedback: no analytic Jacobian for pathway " .. net.pathway.name .. ": " .. why, 2)
    end
  elseif method ~= "numeric" then
    error(string.format("dfc.effective_feedback: unknown method %q (auto, analytic, numeric)", tostring(method)), 2)
  end
  if not per then per = numeric(net, eps) end
  local L, nL = net.L, net.sizes[net.L + 1]
  local rows = 0
  for i = 1, L do rows = rows + net.sizes[i + 1] end
  local stacked, k = apical.zeros { rows, nL }, 0
  for i = 1, L do
    local q = per[i]
    for j = 1, #q do stacked[k + j] = q[j] end
    k = k + #q
  end
  return per, stacked
end

-- Adds dfc.pathways and dfc.effective_feedback to the plugin's table, and the network methods
-- the trainers use.
function M.install(dfc, Net)
  M.dfc = dfc
  dfc.pathways = {
    register = M.register,
    names = M.names,
    population = M.population,
    connect = M.connect,
    weight_products = M.weight_products,
    dynamics = M.dynamics,
  }
  dfc.effective_feedback = M.effective_feedback
  -- The components in the order the published scheme steps them: the controller, the pathway's
  -- populations and blocks (in declaration order), then the layers (reversed without instant
  -- transmission).
  function Net:update_order(reverse)
    local t = { "ctl" }
    for _, n in ipairs(self.pathway.order) do t[#t + 1] = n end
    for _, n in ipairs(self:layer_names(reverse)) do t[#t + 1] = n end
    return t
  end
  -- The feedback matrices DFC-SSA needs besides the model's own Q_i: nil for direct feedback,
  -- else the stacked effective feedback (dfc.ssa's optional argument Qeff).
  function Net:ssa_feedback()
    if self.pathway.name == "direct" then return nil end
    local _, stacked = M.effective_feedback(self)
    return stacked
  end
  -- Weight-product feedback through whatever pathway the network has.
  function Net:set_weight_product()
    self.pathway:weight_product(self)
  end
end

return M
