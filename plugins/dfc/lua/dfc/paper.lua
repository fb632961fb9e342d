-- apical.plugins.dfc.paper — the published per-method configurations of the paper's image
-- tasks (MNIST, Fashion-MNIST, MNIST autoencoder), as dfc.train options. Each method was tuned
-- separately (learning rate, Adam's eps, the target stepsize lambda and, for DFC, the
-- controller leak alpha and the simulated time); the fixed-feedback variants (weight-product
-- Q) have their own values, and so does trained feedback's sleep phase. The values are the
-- configs' own, to every digit given. dfc.paper.config(task, method, feedback) returns a fresh
-- table; dfc.paper.params(task, run) is what the models/ files call (every value --set-able).
local M = {}

-- Options shared by every method of a task.
local common = {
  mnist = { hidden = { 256, 256, 256 }, activation = "tanh", output_activation = "linear" },
  fashion_mnist = { hidden = { 256, 256, 256 }, activation = "tanh", output_activation = "linear" },
  mnist_autoencoder = { hidden = { 256, 32, 256 }, activations = { "tanh", "linear", "tanh", "linear" } },
}

-- The reference's BP trainer does not clip its gradients (clip = 0); every other method clips
-- each parameter tensor's gradient at 1.
-- Per task: bp, dfa, trained (the DFC, DFC-SS, DFC-SSA configs, which share their values) and
-- fixed (the fixed-feedback configs; their simulation settings differ per variant).
local configs = {
  mnist = {
    bp = { lr = 2.97764587844326e-07, lambda = 0.001, eps = 5.770311627459478e-08, clip = 0 },
    dfa = { lr = 2.6298517958226435e-07, lambda = 0.001, eps = 2.483437226361463e-08 },
    trained = {
      lr = 9.265965477237583e-05, lambda = 0.07794471150634391, eps = 9.446010081075931e-08,
      alpha = 0.0013890445062125412, k_p = 2.0, dt = 0.02, tmax = 1000, proactive = true,
      k_p_fb = 0.1565387776131571, alpha_fb = 0.6133635688698066, tau_v_fb = 0.00630250312119787,
      dt_fb = 0.0020299480251123815, tmax_fb = 48, tau_A = 0.32469417320648936,
      sigma = 0.001524181852173024, lr_fb = 0.0005265408146208675,
      lr_fb_init = 0.0003170276937521561, eps_fb = 1.5611352228965008e-06, beta = 0.001,
      epochs_fb = 10, extra_fb_epochs = 2, freeze_QL = false,
    },
    fixed = {
      lr = 6.043454783083358e-05, lambda = 0.1, eps = 1.3326841152257578e-08,
      alpha = 0.00024658638831547176, k_p = 2.0, proactive = true,
      variant = { dfc = { dt = 0.02, tmax = 500 }, ["dfc-ss"] = { dt = 0.02, tmax = 500 },
        ["dfc-ssa"] = { dt = 0.02, tmax = 500 } },
    },
  },
  fashion_mnist = {
    bp = { lr = 5.442490245182536e-07, lambda = 0.001, eps = 2.7090253686612157e-08, clip = 0 },
    dfa = { lr = 7.67552163131779e-06, lambda = 0.001, eps = 3.251744567222374e-07 },
    trained = {
      lr = 4.406433064602529e-05, lambda = 0.056066652694809475, eps = 3.661367432183572e-08,
      alpha = 0.00020607985040655872, k_p = 2.0, dt = 0.02, tmax = 300, proactive = false,
      k_p_fb = 0.006426940850583915, alpha_fb = 0.23370420882566645,
      tau_v_fb = 0.00547324603685296, dt_fb = 0.003097349374603956, tmax_fb = 34,
      tau_A = 0.13465111151646356, sigma = 0.002451309464861252,
      lr_fb = 0.00023725294281298016, lr_fb_init = 0.00045372617633919964,
      eps_fb = 3.561070445920531e-08, beta = 0.1, epochs_fb = 10, extra_fb_epochs = 2,
      freeze_QL = true,
    },
    fixed = {
      lr = 5.423883572845198e-05, lambda = 0.1, eps = 1.4648080760625163e-10,
      alpha = 0.7985041176538932, k_p = 2.0, proactive = true,
      -- these two configs include the samples that have not settled (no convergence test)
      variant = { dfc = { dt = 0.001, tmax = 1500, convergence_test = false },
        ["dfc-ss"] = { dt = 0.0005, tmax = 3000, convergence_test = false },
        ["dfc-ssa"] = { dt = 0.001, tmax = 500 } },
    },
  },
  mnist_autoencoder = {
    bp = { lr = 1.3674117423775684e-06, lambda = 0.001, eps = 9.190510113850847e-07, clip = 0 },
    dfa = { lr = 3.150803077207525e-07, lambda = 0.001, eps = 5.150023297495683e-08 },
    trained = {
      lr = 0.0001867134052079835, lambda = 0.02027700334158571, eps = 2.7788915666203028e-08,
      alpha = 0.036883035536535616, k_p = 2.0, dt = 0.02, tmax = 1000, proactive = true,
      k_p_fb = 0.006322358048692642, alpha_fb = 0.7332531549909285,
      tau_v_fb = 0.006487346213972566, dt_fb = 0.0032644966090448454, tmax_fb = 60,
      tau_A = 0.2725371146036905, sigma = 0.0018360352597175634,
      lr_fb = 1.2260433974696165e-05, lr_fb_init = 0.00016397270803247601,
      eps_fb = 5.849519739358543e-07, beta = 0.1, epochs_fb = 15, extra_fb_epochs = 2,
      freeze_QL = true,
    },
    fixed = {
      lr = 5.519455735010572e-06, lambda = 0.1, eps = 1.0634245994198083e-07,
      alpha = 0.00018844333984677306, k_p = 2.0, proactive = true, freeze_QL = true,
      variant = { dfc = { dt = 0.0005, tmax = 2000 }, ["dfc-ss"] = { dt = 0.001, tmax = 1000 },
        ["dfc-ssa"] = { dt = 0.001, tmax = 300 } },
    },
  },
}

local function copy_into(dst, src)
  for k, v in pairs(src) do
    if k ~= "variant" then
      if type(v) == "table" then
        local t = {}
        for i, x in ipairs(v) do t[i] = x end
        v = t
      end
      dst[k] = v
    end
  end
end

-- Why (task, method) has no configuration, or nil.
local function problem(task, method)
  if not configs[task] then
    return string.format("dfc.paper: no published configuration for task %q (mnist, fashion_mnist, mnist_autoencoder)",
      tostring(task))
  end
  if not (method == "bp" or method == "dfa" or method == "dfc" or method == "dfc-ss" or method == "dfc-ssa") then
    return string.format("dfc.paper: unknown method %q (bp, dfa, dfc, dfc-ss, dfc-ssa)", tostring(method))
  end
end

-- The configuration of `method` (bp, dfa, dfc, dfc-ss, dfc-ssa) on `task` with `feedback`
-- ("trained" selects the trained-feedback configs, anything else the fixed ones for the DFC
-- methods): a table of dfc.train options, with the settings common to every method (Adam with
-- beta1 = beta2 = 0.99, clip 1, normalize_lr, batch 128, tau_v/tau_u = 0.2, the convergence
-- test). Options a method does not use (BP's controller, a fixed variant's sleep phase) carry
-- the trained-feedback values, so that `--set feedback=trained` has what it needs.
function M.config(task, method, feedback)
  local msg = problem(task, method)
  if msg then error(msg, 2) end
  local c = configs[task]
  local out = { task = task, method = method, feedback = feedback or "weight_product", batch = 128,
    optimizer = "adam", beta1 = 0.99, beta2 = 0.99, clip = 1.0, normalize_lr = true, tau_v = 0.2,
    convergence_test = true, optimizer_fb = "adam", clip_fb = 1.0 }
  copy_into(out, common[task])
  copy_into(out, c.trained)
  if method == "bp" or method == "dfa" then
    copy_into(out, c[method])
  elseif feedback ~= "trained" then
    copy_into(out, c.fixed)
    copy_into(out, c.fixed.variant[method])
  end
  return out
end

-- For models/ files: the configuration of the method and feedback given on the command line
-- (--set method=, --set feedback=; defaults in `run`), with the run settings of `run`
-- (epochs, solver, ...; n_train goes to the task), every scalar option declared through
-- apical.params so that --set can change it. Returns the dfc.train options: task and task_opts,
-- everything else as `defaults` (a --set value is the user's, and refused if the run does not
-- read it).
function M.params(task, run)
  local apical = require "apical"
  local m = apical.params { method = run.method or "dfc", feedback = run.feedback or "weight_product" }
  local msg = problem(task, m.method)
  if msg then error(msg, 2) end -- at the model file's line
  local c = M.config(task, m.method, m.feedback)
  for k, v in pairs(run) do
    if k ~= "method" and k ~= "feedback" then c[k] = v end
  end
  local scalars = {}
  for k, v in pairs(c) do
    local t = type(v)
    if (t == "number" or t == "string" or t == "boolean") and k ~= "method" and k ~= "feedback" and k ~= "task" then
      scalars[k] = v
    end
  end
  local p = apical.params(scalars)
  for k, v in pairs(p) do c[k] = v end
  local n_train = c.n_train
  c.n_train, c.task = nil, nil
  -- the configuration as dfc.train's defaults: the options this method and feedback do not
  -- read (the sleep phase's for fixed feedback, the tolerances under Euler) are not refused;
  -- the values given with --set are the user's, and refused if the run does not read them
  -- (docs/training.md, "Options a run does not read")
  local out = { task = task, task_opts = { n_train = n_train }, defaults = c }
  local set = apical.params_given(m)
  for k in pairs(apical.params_given(p)) do set[k] = true end
  for k in pairs(set) do
    if k ~= "n_train" then out[k] = c[k] end
  end
  return out
end

return M
