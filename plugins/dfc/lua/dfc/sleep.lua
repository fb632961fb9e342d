-- apical.plugins.dfc.sleep — the sleep phase of DFC (12), (13): a second network of the same
-- sizes and the same feedback pathway, sharing nothing but copied weights, with the
-- feedback-phase settings (k_p_fb, alpha_fb, tau_v_fb, a dynamic apical compartment tau_A > 0),
-- driven to the feedforward output r_L^- (so the controller only fights noise) while white noise
-- sigma enters every apical compartment. The target r_L^- is the sleep network's own output at
-- the start of each run (its start state is the feedforward state of the same weights), held
-- by a "hold" block (dfc.network's target = "hold"): no separate forward pass, and the
-- controller's error is exactly 0 at t = 0. Simulated with the reference's scheme: euler-maruyama
-- in the order {ctl, the pathway's populations, h1..hL} (instantaneous transmission), ctl.u read
-- as u[k] (previous = {"ctl.u"}), tmax_fb - 1 steps of dt_fb, ctl.u, every h<i>.apical and the
-- presynaptic signals of the Q<i> recorded at every step; dfc.feedback_grad turns the
-- recordings into the reference's descent direction for the Q<i>.
--
-- Which synapses learn. Rule (13) trains the synapses that end on the apical compartments, Q<i>
-- (for direct feedback Q_i: ctl.u -> h<i>.apical), with dQ_i = -(1/s^2) vA_i p_i^T - beta Q_i
-- and p_i the presynaptic rate of Q<i>: u for direct feedback (and for a pathway's Q<i> fed by
-- ctl.u, such as layerwise Q_L), the output of the feedback population Q<i> reads otherwise
-- (layerwise g_i, multilayer fbK / fb<i>_K). The pathway's other weights (layerwise F_i, a
-- multilayer network's hidden weights F...) stay as they are: App. H extends the feedback
-- learning results "by learning the synaptic strengths connecting the feedback path to the
-- network layers according to the proposed feedback learning rule (13)", and (13) needs the
-- apical compartment's noisy potential as its postsynaptic factor, which only synapses onto an
-- apical compartment see. For a linear pathway, Q_eff_i = Q_i G_i with G_i = d p_i / d u, the
-- update of Q_i is the direct rule's update of Q_eff_i times G_i^T (the chain rule through the
-- fixed G_i), so Q_eff_i moves by that update times G_i^T G_i.
--
-- Time shifts. The reference pairs vA_i[t] with u[t+1]: the controller output that the apical
-- update of step t+2 reads (vA[k+1] reads u[k]). The analogue for a pathway is the presynaptic
-- value that the apical update of step t+2 reads: for a signal in `previous` (ctl.u) p[t+1], for
-- a pathway population (stepped after the controller, before the layers, reading u[k]) p[t+2],
-- which carries u[t+1] as well (a linear instantaneous pathway has p[k+1] = G u[k]). So each
-- layer pairs vA_i[t] with p_i[t + lag_i], lag_i = 1 or 2, over its T_i = tmax_fb - lag_i pairs,
-- scaled by 1/(s^2 T_i B); direct feedback keeps lag 1 and T = tmax_fb - 1, the reference's
-- numbers.
local apical = require "apical"

local M = {}

local Sleep = {}
Sleep.__index = Sleep

M.defaults = {
  k_p_fb = 0.1, alpha_fb = 0.25, tau_v_fb = 0.01, dt_fb = 0.002, tmax_fb = 50, tau_A = 0.3,
  sigma = 0.01,
  freeze_QL = false, -- Q_L stays fixed: no noise on hL.apical (App. F: the autoencoder)
  -- the minibatch split into this many equal parts, simulated at once on that many threads
  -- (apical.run_parallel), each part with its own noise stream (seed + part - 1); the gradient
  -- is the mean over the parts of their gradients, i.e. the whole minibatch's. 1: one run.
  -- The noise differs with the number of parts, so results are reproducible per thread count.
  threads = 1,
  -- the fixed-step stability guard (docs/solvers.md, "Fixed-step stability"): its estimate with
  -- the first run only (one warning per sleep phase), the growth watch in every run; false: off
  stability_check = true,
  -- instead of threads: the parts as dfc.mpi.pieces gives them ({ first = row, b = rows,
  -- index = noise stream number }), the rows of this MPI rank (mpi.lua)
  pieces = nil,
  controller = nil,  -- default: the trained network's
  tau_u = nil,       -- default: the trained network's
}

-- splitmix64 step (Lua integers wrap around at 64 bits).
local function mix(z)
  z = z + 0x9E3779B97F4A7C15
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return z ~ (z >> 31)
end

-- The noise seed of one sleep-phase minibatch, from (seed, epoch, minibatch): 31 bits (the
-- engine's stream takes 64, but the seeds stay what they were when it took 32).
function M.noise_seed(seed, epoch, minibatch)
  return mix(mix(mix(seed) ~ epoch) ~ minibatch) & 0x7fffffff
end

-- The shuffling seed of feedback epochs: a stream of its own, apart from the forward epochs'.
function M.shuffle_seed(seed)
  return mix(seed ~ 0x51EE9) & 0x7fffffff
end

local function check(o, what)
  for k in pairs(o) do
    if M.defaults[k] == nil and k ~= "controller" and k ~= "tau_u" and k ~= "pieces" then
      error(string.format("%s: unknown option %q (options: k_p_fb, alpha_fb, tau_v_fb, dt_fb, " ..
        "tmax_fb, tau_A, sigma, freeze_QL, threads, stability_check, controller, tau_u)", what, tostring(k)), 3)
    end
  end
  local c = {}
  for k, v in pairs(M.defaults) do c[k] = v end
  for k, v in pairs(o) do c[k] = v end
  for _, k in ipairs { "tau_v_fb", "dt_fb", "tau_A" } do
    if type(c[k]) ~= "number" or not (c[k] > 0) then
      error(string.format("%s: %s = %s must be > 0 (the sleep phase needs a dynamic apical " ..
        "compartment)", what, k, tostring(c[k])), 3)
    end
  end
  if type(c.tmax_fb) ~= "number" or c.tmax_fb < 2 or c.tmax_fb % 1 ~= 0 then
    error(string.format("%s: tmax_fb = %s must be an integer >= 2", what, tostring(c.tmax_fb)), 3)
  end
  if type(c.sigma) ~= "number" or not (c.sigma >= 0) then
    error(string.format("%s: sigma = %s must be >= 0", what, tostring(c.sigma)), 3)
  end
  if type(c.stability_check) ~= "boolean" then
    error(string.format("%s: stability_check = %s must be true or false", what, tostring(c.stability_check)), 3)
  end
  if math.type(c.threads) ~= "integer" or c.threads < 1 or c.threads > 64 then
    error(string.format("%s: threads = %s must be an integer from 1 to 64", what, tostring(c.threads)), 3)
  end
  return c
end

-- The presynaptic signal of the sleep network's Q<i> as a recordable name and its lag (above):
-- ctl.u (lag 1) or a signal of a pathway population or block (lag 2).
local function presynaptic(sn, i, what)
  local q = sn.Q[i]
  local src = q.source
  if src == "ctl" or src == "ctl.u" then return "ctl.u", 1 end
  local obj, part = src:match("^([^.]+)%.?(.*)$")
  local pw = sn.pathway
  local inside = false
  for _, n in ipairs(pw.populations) do
    if n == obj then
      inside = true
      if part == "" then part = "rate" end
    end
  end
  for _, n in ipairs(pw.blocks) do if n == obj then inside = true end end
  if not inside or part == "" then
    error(string.format("%s: Q%d reads %s; the sleep phase trains synapses onto h%d.apical fed by " ..
      "ctl.u or by a population of the feedback pathway %s", what, i, src, i, pw.name), 3)
  end
  return obj .. "." .. part, 2
end

-- dfc.sleep(net, opts): the sleep phase of the dfc.network `net` (whose Q<i> are trained).
function M.new(dfc, net, o, what)
  what = what or "dfc.sleep"
  local c = check(o or {}, what)
  require("apical.plugins.dfc.pathways").refuse_dynamics(net, what, "the sleep phase's rule (13) pairs " ..
    "vA[k] with u[k+1] and its scaling and the limit it converges to (Theorem 6) are derived for " ..
    "instantaneous feedback")
  local L = net.L
  local direct = net.pathway.name == "direct"
  local B, n = net.opts.batch, c.threads
  if not c.pieces and B % n ~= 0 then
    error(string.format("%s: threads = %d does not divide the batch of %d samples", what, n, B), 3)
  end
  local function part_network(batch)
    return dfc.network { sizes = net.sizes, batch = batch, activations = net.activations,
      tau_v = c.tau_v_fb, tau_A = c.tau_A, controller = c.controller or net.opts.controller,
      k_p = c.k_p_fb, alpha = c.alpha_fb, tau_u = c.tau_u or net.opts.tau_u, init = "zeros",
      feedback_init = "zeros", k_d = net.opts.k_d, tau_d = net.opts.tau_d,
      feedback_pathway = net.opts.feedback_pathway, pathway_opts = net.opts.pathway_opts,
      target = "hold" }
  end
  local pieces = c.pieces
  if pieces then
    n = #pieces
  else
    pieces = {}
    for k = 1, n do pieces[k] = { first = (k - 1) * (B // n) + 1, b = B // n, index = k } end
  end
  local s = setmetatable({ dfc = dfc, net = net, cfg = c, L = L, B = B, sigma = c.sigma,
    direct = direct, threads = n, split = n > 1 or c.pieces ~= nil, parts = {},
    blas_default = apical.blas_threads() }, Sleep)
  -- part k simulates samples (k-1) B/n + 1 .. k B/n; one part is the whole minibatch
  for k, p in ipairs(pieces) do
    local sn = part_network(p.b)
    s.parts[k] = { snet = sn, sim = sn.model:compile(), X = apical.zeros { p.b, net.sizes[1] },
      first = p.first, b = p.b, index = p.index }
  end
  s.snet, s.sim = s.parts[1].snet, s.parts[1].sim
  local sn = s.snet
  local order, noise, record = sn:update_order(false), {}, { "ctl.u" }
  for i = 1, L do
    record[#record + 1] = "h" .. i .. ".apical"
    -- a frozen Q_L is not learned, and the output layer gets no noise (App. F)
    if not (c.freeze_QL and i == L) then noise[#noise + 1] = { "h" .. i .. ".apical", c.sigma } end
  end
  if not direct then
    -- the presynaptic signals of the Q<i>, recorded after h1.apical..hL.apical (pre: their
    -- recording indices, 0 for ctl.u), and the pathway's weights to copy before every run
    s.pre, s.lag = apical.zeros { L }, apical.zeros { L }
    local index = {}
    for i = 1, L do
      local sig, lag = presynaptic(sn, i, what)
      if sig ~= "ctl.u" and not index[sig] then
        record[#record + 1] = sig
        index[sig] = #record - 1
      end
      s.pre[i], s.lag[i] = index[sig] or 0, lag
    end
    for _, part in ipairs(s.parts) do
      part.copy = {}
      for _, p in ipairs(net.pathway.projections) do
        part.copy[#part.copy + 1] = { p, part.snet.model:projection(p.name) }
      end
    end
  end
  s.run_opts = { solver = "euler-maruyama", dt = c.dt_fb, steps = c.tmax_fb - 1, ordered = true,
    order = order, previous = { "ctl.u" }, noise = noise, seed = 0, record = record, every = 1,
    accumulate = false, stability_check = c.stability_check }
  for k, part in ipairs(s.parts) do
    part.run_opts = {}
    for key, v in pairs(s.run_opts) do part.run_opts[key] = v end
    if s.split then
      -- the part's gradient of the Q<i>, computed in its thread right after its run: a buffer
      -- of its own (an optimiser never stepped), since the parts' kernels run at the same time
      part.grad = apical.optim.sgd { model = net.model, projections = net.Q, lr = 1 }
      part.after = { "dfc.feedback_grad", { model = net.model, sim = part.sim, optim = part.grad,
        sigma = c.sigma, scale = 1, pre = s.pre, lag = s.lag } }
    end
  end
  return s
end

-- The trained network's current weights into part k's sleep network.
function Sleep:copy_weights(part)
  local dfc, m = self.dfc, self.net.model
  if self.direct then
    dfc.copy_weights { from = m, to = part.snet.model, which = "WQ" }
  else
    dfc.copy_weights { from = m, to = part.snet.model, which = "W" }
    for _, pq in ipairs(part.copy) do
      pq[2]:set_weights(pq[1]:weights())
      if pq[1].has_bias then pq[2]:set_bias(pq[1]:bias()) end
    end
  end
end

-- After a run with these options: the stability guard's estimate is made once (stability_check).
local function estimated(opts)
  if opts.stability_check == true then opts.stability_check = "watch" end
end

function Sleep:run(X, seed, copy)
  if self.split then
    error("sleep:run runs the whole minibatch in one simulation; this sleep phase has threads = " ..
      self.threads .. " (use sleep:gradient, or threads = 1)", 2)
  end
  local part = self.parts[1]
  self:copy_weights(part)
  -- the output target is the feedforward output (held from the start): the controller only
  -- fights the noise
  self.sim:set_input("x", X)
  self.run_opts.seed = seed or 0
  self.run_opts.copy_recordings = copy ~= false
  local out = self.sim:run(self.run_opts)
  estimated(self.run_opts)
  return out
end

-- Adds the sleep phase's descent direction for the Q<i> of the trained network (13) into the
-- optimiser `opt` (an optimiser over some of its Q<i>); returns the run's statistics (the first
-- part's with threads > 1).
function Sleep:gradient(X, opt, seed, scale)
  -- one simulation: BLAS at its thread count; parts: BLAS single-threaded (Trainer:gradient)
  apical.blas_threads(self.split and 1 or self.blas_default)
  if not self.split then
    local out = self:run(X, seed, false)
    self.dfc.feedback_grad { model = self.net.model, sim = self.sim, optim = opt,
      sigma = self.sigma, scale = scale or 1, pre = self.pre, lag = self.lag }
    return out.stats
  end
  local runs = {}
  for k, part in ipairs(self.parts) do
    self:copy_weights(part)
    X:rows(part.first, part.b, part.X)
    part.sim:set_input("x", part.X)
    part.run_opts.seed = (seed or 0) + part.index - 1
    part.run_opts.copy_recordings = false
    -- each part's gradient is a mean over its b samples: b/B of each makes the minibatch's mean
    -- (B / b = n for n equal parts)
    part.grad:zero()
    part.after[2].scale = (scale or 1) / (self.B / part.b)
    runs[k] = { part.sim, part.run_opts, after = part.after }
  end
  local outs = apical.run_parallel(runs)
  for _, part in ipairs(self.parts) do estimated(part.run_opts) end
  -- the parts' gradients into opt, part 1 first, for the Q<i> that opt trains
  for _, q in ipairs(self.net.Q) do
    if opt:has(q) then
      for _, part in ipairs(self.parts) do opt:add_grad(q, (part.grad:grad(q))) end
    end
  end
  return outs[1].stats
end

function M.install(dfc)
  function dfc.sleep(net, o) return M.new(dfc, net, o, "dfc.sleep") end
end

M.Sleep = Sleep
return M
