-- apical.plugins.dfc.network — dfc.network: the layered DFC network of the paper as ordinary
-- engine objects (populations h1..hL of dfc.pyramidal neurons, forward projections W1..WL with
-- biases and the forward rule, the controller block "ctl", feedback projections Q1..QL from the
-- controller to the apical compartments). Every object can be changed afterwards through
-- net.model, which is an ordinary apical model.
local apical = require "apical"
local model = require "apical.model"
local pathways = require "apical.plugins.dfc.pathways"

local M = {}

local Net = {}
Net.__index = Net

local defaults = {
  sizes = nil,            -- { n0, n1, ..., nL } (required)
  batch = 128,
  activation = "tanh",    -- hidden layers
  output_activation = "linear",
  activations = nil,      -- or one per layer, overriding the two above
  tau_v = 0.2,            -- soma time constant, as a ratio to tau_u (the reference's time_constant_ratio)
  tau_A = 0,              -- apical time constant (0: instantaneous)
  controller = "pi",      -- "pi", "p", "i", "pid"
  k_p = 0, alpha = 0, tau_u = 1, k_d = 0, tau_d = 1,
  init = "xavier_normal", -- forward weights (biases start at 0)
  feedback_init = "xavier_normal", -- Q; the trainers may overwrite it (weight_product)
  feedback_std = 0.1,     -- std of Q for feedback_init = "normal"
  plastic_feedback = false, -- Q1..QL plastic (trainable by an optimiser: the sleep phase)
  seed = 1,
  feedback_pathway = "direct", -- "direct", "layerwise", "multilayer", a registered name or a function(net, opts) (pathways.lua)
  pathway_opts = {},      -- options of the feedback pathway (see docs/dfc.md, "Feedback pathways")
  target = "input",       -- the controller's target: "input" (the model input "target") or "hold"
                          -- (the network's own output at the start of each run, held by a "hold"
                          -- block ctl_target: the sleep phase's r_L* = r_L^-)
}

local function check_keys(o, known, what)
  for k in pairs(o) do
    if known[k] == nil and k ~= "sizes" and k ~= "activations" then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(string.format("%s: unknown option %q (options: sizes, activations, %s)", what, tostring(k),
        table.concat(names, ", ")), 3)
    end
  end
end

-- The numeric options' ranges (a one-line change adds one): each must be a finite number in
-- its range; the errors read as the option was written (dfc.network: tau_u = -1 must be > 0).
local ranges = { tau_v = "> 0", tau_u = "> 0", tau_A = ">= 0", k_p = ">= 0", alpha = ">= 0",
  k_d = ">= 0", tau_d = "> 0", feedback_std = ">= 0", batch = "integer >= 1", seed = "integer >= 0" }
local why = { tau_v = " (the somas carry the network's dynamics; tau_v = 0 makes an algebraic " ..
  "loop through the controller)" }

local function check_values(c)
  for k, range in pairs(ranges) do
    local v = c[k]
    local least, strict = tonumber(range:match("[%d.]+$")), range:find(">", 1, true) and not range:find("=", 1, true)
    local ok = type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge and
      (strict and v > least or not strict and v >= least) and (not range:find("integer") or v % 1 == 0)
    if not ok then
      error(string.format("dfc.network: %s = %s must be %s%s", k, tostring(v),
        range:find("integer") and ("an " .. range) or range, why[k] or ""), 0)
    end
  end
  local sizes = c.sizes
  if type(sizes) ~= "table" or #sizes < 2 then
    error("dfc.network: sizes must list at least an input and an output size, e.g. { 15, 10, 10, 5 }", 0)
  end
  for i, n in ipairs(sizes) do
    if math.type(n) ~= "integer" and not (type(n) == "number" and n % 1 == 0) or n < 1 then
      error(string.format("dfc.network: sizes[%d] = %s must be a positive integer (sizes = { %s })", i,
        tostring(n), table.concat(sizes, ", ")), 0)
    end
  end
end

-- model -> its dfc.network (kernels that take a model find the network's pathway)
local nets = setmetatable({}, { __mode = "k" })
M.nets = nets

-- The network's descriptor (docs/dfc.md, "The network descriptor"), built once when the network
-- is: { L, id of W_1, ..., id of W_L, id of Q_1, ..., id of Q_L }, the projection ids of the
-- forward and feedback synapses of every layer. The C kernels take it as their argument `net`
-- and find the layers from it (population, sizes, activation, weights) instead of by name.
local function descriptor(net)
  local d = { net.L }
  for i = 1, net.L do d[1 + i] = model.projection_id(net.model, net.W[i], "dfc.network") end
  for i = 1, net.L do
    d[1 + net.L + i] = net.Q[i] and model.projection_id(net.model, net.Q[i], "dfc.network") or -1
  end
  return apical.array(d, { #d })
end

-- The kernels that take a network, and the arguments that name its model: each gets the
-- descriptor of a model made by dfc.network (unless the caller gives one), as `net` (`from_net`,
-- `to_net`, `sim_net` for the other models of copy_weights and feedback_grad).
local takes_net = { "forward", "targets", "loss", "ssa", "bp", "dfa", "weight_product", "jacobian",
  "condition1", "condition2", "jq_eigen", "stability", "mn_update", "gn_update", "convergence",
  "copy_weights", "feedback_grad" }
local model_args = { net = "model", from_net = "from", to_net = "to" }

local function with_descriptors(kernel)
  return function(args)
    if type(args) ~= "table" then return kernel(args) end
    local extra
    for key, arg in pairs(model_args) do
      local net = args[key] == nil and args[arg] ~= nil and nets[args[arg]]
      if net then extra = extra or {}; extra[key] = net.descriptor end
    end
    -- a simulation's model: dfc.convergence's (its model is optional), feedback_grad's sleep network
    local sim = args.sim
    if type(sim) == "userdata" then
      local ok, ms = pcall(function() return sim:model() end) -- a sim, or the kernel says what is wrong
      local net = ok and nets[ms]
      if net and args.model == nil and args.net == nil then
        extra = extra or {}; extra.net = net.descriptor
      elseif net and ms ~= args.model and args.sim_net == nil then
        extra = extra or {}; extra.sim_net = net.descriptor
      end
    end
    if not extra then return kernel(args) end
    local a = {}
    for k, v in pairs(args) do a[k] = v end
    for k, v in pairs(extra) do a[k] = v end
    return kernel(a)
  end
end

function M.install(dfc)
  M.dfc = dfc
  for _, name in ipairs(takes_net) do dfc[name] = with_descriptors(dfc[name]) end
  -- dfc.stability linearises the layers and the controller with the pathway's static gain:
  -- refused for a pathway with dynamics of its own, whose linearisation it leaves out
  local stability = dfc.stability
  function dfc.stability(args)
    local net = type(args) == "table" and nets[args.model]
    if net then
      pathways.refuse_dynamics(net, "dfc.stability", "the linearised system holds the layers and " ..
        "the controller only, with the pathway's static gain as Q")
    end
    return stability(args)
  end
  pathways.install(dfc, Net)
  -- the high-pass filter's block (Net:add_highpass) is stepped right after the controller
  local base_order = Net.update_order
  function Net:update_order(reverse)
    local t = base_order(self, reverse)
    if self.highpass then table.insert(t, 2, self.highpass.name) end
    -- the held target never changes: first, anywhere would do
    if self.hold then table.insert(t, 1, "ctl_target") end
    return t
  end
  function dfc.network(o)
    o = o or {}
    check_keys(o, defaults, "dfc.network")
    local c = {}
    for k, v in pairs(defaults) do c[k] = v end
    for k, v in pairs(o) do c[k] = v end
    check_values(c)
    local sizes = c.sizes
    local L = #sizes - 1
    local acts = c.activations or {}
    if c.activations and #acts ~= L then
      error(string.format("dfc.network: activations lists %d entries for %d layers", #acts, L), 2)
    end
    for i = 1, L do acts[i] = acts[i] or (i < L and c.activation or c.output_activation) end

    local m = apical.model { batch = c.batch }
    local net = setmetatable({ model = m, L = L, sizes = sizes, opts = c, h = {}, W = {}, Q = {},
      activations = acts }, Net)
    net.x = m:input { name = "x", size = sizes[1] }
    if c.target ~= "input" and c.target ~= "hold" then
      error(string.format("dfc.network: target = %s must be \"input\" or \"hold\"", tostring(c.target)), 2)
    end
    if c.target == "input" then net.target = m:input { name = "target", size = sizes[L + 1] } end
    local function init(kind, seed, std)
      if kind == "normal" then return apical.init.normal { std = std, seed = seed } end
      if kind == "zeros" then return "zeros" end
      return apical.init[kind] { seed = seed }
    end
    for i = 1, L do
      net.h[i] = m:population { name = "h" .. i, size = sizes[i + 1],
        neuron = dfc.pyramidal { tau_v = c.tau_v, tau_A = c.tau_A }, activation = acts[i],
        start = "settled" }
      net.W[i] = m:connect(i == 1 and net.x or net.h[i - 1], net.h[i].basal,
        { name = "W" .. i, bias = true, init = init(c.init, c.seed * 1000 + i),
          plastic = dfc.forward_rule {} })
    end
    local ctype = ({ pi = dfc.pi, p = dfc.p, i = dfc.i, pid = dfc.pid })[c.controller]
    if not ctype then
      error(string.format("dfc.network: unknown controller %q (pi, p, i, pid)", tostring(c.controller)), 2)
    end
    local cparams = { alpha = c.alpha, tau_u = c.tau_u }
    if c.controller ~= "i" then cparams.k_p = c.k_p end
    if c.controller == "p" then cparams.tau_u, cparams.alpha = nil, nil end
    if c.controller == "pid" then cparams.k_d, cparams.tau_d = c.k_d, c.tau_d end
    if c.target == "hold" then
      -- created before ctl, so that its start value is set before ctl's initial output reads it
      net.hold = m:block { name = "ctl_target", type = apical.hold {}, inputs = { input = net.h[L] } }
    end
    net.ctl = m:block { name = "ctl", type = ctype(cparams),
      inputs = { rate = net.h[L], target = net.hold and net.hold.output or net.target } }
    if c.feedback_pathway == "direct" then
      for i = 1, L do
        net.Q[i] = m:connect(net.ctl.u, net.h[i].apical,
          { name = "Q" .. i, init = init(c.feedback_init, c.seed * 1000 + 100 + i, c.feedback_std),
          plastic = c.plastic_feedback })
      end
      pathways.direct(dfc, net)
    else
      -- another feedback pathway (pathways.lua): errors without a position point at this call
      local ok, err = pcall(pathways.build, dfc, net, c.feedback_pathway, c.pathway_opts)
      if not ok then
        error(err, (type(err) == "string" and not err:match("^[^:\n]+:%d+: ")) and 2 or 0)
      end
    end
    net.descriptor = descriptor(net)
    nets[m] = net
    return net
  end
end

-- Single-phase learning (App. C.3): a "lowpass" block ctl_lp (tau_hp dy/dt = u - y, y(0) = 0)
-- fed by ctl.u, and the rule (200) on the feedback weights Q<i> of `layers` (default 1..L):
-- dfc.feedback_rule { sigma = sigma, highpass = 1 } with the block's output u_lp as its
-- auxiliary signal, so its presynaptic factor is the high-pass filtered u - u_lp. Direct
-- feedback only; call before the model is compiled. The block comes right after ctl in
-- net:update_order (it reads this step's u). Returns the block's handle (net.highpass).
function Net:add_highpass(tau_hp, sigma, layers)
  if self.pathway.name ~= "direct" then
    error(string.format("add_highpass: single-phase feedback learning needs direct feedback (Q_i: " ..
      "ctl.u -> h<i>.apical); the network's pathway is %s", self.pathway.name), 2)
  end
  if type(tau_hp) ~= "number" or not (tau_hp > 0) then
    error(string.format("add_highpass: tau_hp = %s must be > 0", tostring(tau_hp)), 2)
  end
  if self.highpass then error("add_highpass: the network has its high-pass filter already", 2) end
  local dfc = M.dfc
  local m = self.model
  self.highpass = m:block { name = "ctl_lp", type = apical.lowpass { tau = tau_hp },
    inputs = { input = self.ctl.u } }
  local rule = dfc.feedback_rule { sigma = sigma, highpass = 1 }
  for _, i in ipairs(layers or {}) do
    m:add_rule(self.Q[i], rule, { aux = self.highpass.output })
  end
  if not layers then
    for i = 1, self.L do m:add_rule(self.Q[i], rule, { aux = self.highpass.output }) end
  end
  return self.highpass
end

-- Names of the forward populations in the order the published scheme updates them.
function Net:layer_names(reverse)
  local t = {}
  for i = 1, self.L do t[#t + 1] = "h" .. (reverse and self.L + 1 - i or i) end
  return t
end

M.Net = Net
return M
