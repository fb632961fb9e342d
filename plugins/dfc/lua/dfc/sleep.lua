-- apical.plugins.dfc.sleep — the sleep phase of DFC (12), (13) for direct feedback weights
-- (Q_i: ctl.u -> h<i>.apical): a second network of the same sizes, sharing nothing but copied
-- weights, with the feedback-phase settings (k_p_fb, alpha_fb, tau_v_fb, a dynamic apical
-- compartment tau_A > 0), driven to the feedforward output r_L^- (so the controller only
-- fights noise) while white noise sigma enters every apical compartment. Simulated with the
-- reference's scheme: euler-maruyama in declared order {ctl, h1..hL} (instantaneous
-- transmission), the apical compartments reading u[k] (previous = {"ctl.u"}), tmax_fb - 1
-- steps of dt_fb, ctl.u and every h<i>.apical recorded at every step; dfc.feedback_grad turns
-- the recordings into the reference's descent direction for the Q_i.
local M = {}

local Sleep = {}
Sleep.__index = Sleep

M.defaults = {
  k_p_fb = 0.1, alpha_fb = 0.25, tau_v_fb = 0.01, dt_fb = 0.002, tmax_fb = 50, tau_A = 0.3,
  sigma = 0.01,
  freeze_QL = false, -- Q_L stays fixed: no noise on hL.apical (App. F: the autoencoder)
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

-- The noise seed of one sleep-phase minibatch, from (seed, epoch, minibatch): 31 bits, as
-- GSL's mt19937 uses the low 32 bits of its seed.
function M.noise_seed(seed, epoch, minibatch)
  return mix(mix(mix(seed) ~ epoch) ~ minibatch) & 0x7fffffff
end

-- The shuffling seed of feedback epochs: a stream of its own, apart from the forward epochs'.
function M.shuffle_seed(seed)
  return mix(seed ~ 0x51EE9) & 0x7fffffff
end

local function check(o, what)
  for k in pairs(o) do
    if M.defaults[k] == nil and k ~= "controller" and k ~= "tau_u" then
      error(string.format("%s: unknown option %q (options: k_p_fb, alpha_fb, tau_v_fb, dt_fb, " ..
        "tmax_fb, tau_A, sigma, freeze_QL, controller, tau_u)", what, tostring(k)), 3)
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
  return c
end

-- dfc.sleep(net, opts): the sleep phase of the dfc.network `net` (whose Q_i are trained).
function M.new(dfc, net, o, what)
  what = what or "dfc.sleep"
  local c = check(o or {}, what)
  local L = net.L
  local sn = dfc.network { sizes = net.sizes, batch = net.opts.batch, activations = net.activations,
    tau_v = c.tau_v_fb, tau_A = c.tau_A, controller = c.controller or net.opts.controller,
    k_p = c.k_p_fb, alpha = c.alpha_fb, tau_u = c.tau_u or net.opts.tau_u, init = "zeros",
    feedback_init = "zeros", k_d = net.opts.k_d, tau_d = net.opts.tau_d }
  local s = setmetatable({ dfc = dfc, net = net, snet = sn, cfg = c, L = L, B = net.opts.batch,
    sigma = c.sigma }, Sleep)
  s.sim = sn.model:compile()
  s.rminus = require("apical").zeros { s.B, net.sizes[L + 1] }
  local order, noise, record = { "ctl" }, {}, { "ctl.u" }
  for i = 1, L do
    order[#order + 1] = "h" .. i
    record[#record + 1] = "h" .. i .. ".apical"
    -- a frozen Q_L is not learned, and the output layer gets no noise (App. F)
    if not (c.freeze_QL and i == L) then noise[#noise + 1] = { "h" .. i .. ".apical", c.sigma } end
  end
  s.run_opts = { solver = "euler-maruyama", dt = c.dt_fb, steps = c.tmax_fb - 1, ordered = true,
    order = order, previous = { "ctl.u" }, noise = noise, seed = 0, record = record, every = 1,
    accumulate = false }
  return s
end

-- One noisy run for the inputs X (batch x n0) with the trained network's current weights;
-- returns the run's result (recordings ctl.u, h1.apical, ..., hL.apical at every step).
function Sleep:run(X, seed)
  local dfc, m = self.dfc, self.net.model
  dfc.copy_weights { from = m, to = self.snet.model, which = "WQ" }
  -- the output target is the feedforward output: the controller only fights the noise
  dfc.forward { model = m, x = X, out = self.rminus }
  self.sim:set_input("x", X)
  self.sim:set_input("target", self.rminus)
  self.run_opts.seed = seed or 0
  return self.sim:run(self.run_opts)
end

-- Adds the sleep phase's descent direction for the Q_i of the trained network (13) into the
-- optimiser `opt` (an optimiser over some of its Q_i); returns the run's statistics.
function Sleep:gradient(X, opt, seed, scale)
  local out = self:run(X, seed)
  self.dfc.feedback_grad { model = self.net.model, sim = self.sim, optim = opt,
    sigma = self.sigma, scale = scale or 1 }
  return out.stats
end

function M.install(dfc)
  function dfc.sleep(net, o) return M.new(dfc, net, o, "dfc.sleep") end
end

M.Sleep = Sleep
return M
