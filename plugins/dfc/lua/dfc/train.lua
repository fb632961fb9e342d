-- apical.plugins.dfc.train — the trainers: DFC (continuous update), DFC-SS (last state),
-- DFC-SSA (Lemma 1), with fixed (weight-product) or given feedback, and the DFA and BP
-- baselines; SGD or Adam with per-tensor clipping; validation, test at the best validation
-- epoch, a run directory (config.lua, log.csv, checkpoint/) and resuming from it.
local apical = require "apical"
local tasks = require "apical.plugins.dfc.tasks"
local rundir = require "apical.plugins.dfc.rundir"
local progress = require "apical.plugins.dfc.progress"
local sleep = require "apical.plugins.dfc.sleep"
local divergence = require "apical.plugins.dfc.divergence"
local pathways = require "apical.plugins.dfc.pathways"
local unused = require "apical.plugins.dfc.unused"
local mpi = require "apical.plugins.dfc.mpi"

local M = {}

-- Every option with its default. A config may name nothing else (and `defaults`, a table of
-- fallback options under its own: M.merge_defaults).
M.defaults = {
  task = "student_teacher",      -- student_teacher, mnist, fashion_mnist, mnist_autoencoder
  task_opts = {},
  method = "dfc",                -- dfc, dfc-ss, dfc-ssa, bp, dfa
  feedback = "weight_product",   -- weight_product (Q_i = W_{i+1}^T..W_L^T at initialisation, then fixed: the
                                 -- paper's fixed variants), weight_product_tracking (recomputed before every
                                 -- minibatch), given (Q as initialised or loaded), trained (sleep phase)
  feedback_pathway = "direct",   -- direct, layerwise, multilayer or a name given to dfc.pathways.register (pathways.lua)
  pathway_opts = {},             -- the pathway's options (docs/dfc.md, "Feedback pathways")
  hidden = { 10, 10 },           -- hidden layer sizes (input and output sizes come from the task)
  activation = "tanh",
  output_activation = "linear",
  activations = {},              -- one per layer, overriding the two above (e.g. the autoencoder's)
  init = "xavier_normal",
  batch = 128,
  drop_last = true,              -- the short last minibatch of an epoch (n mod batch samples): true
                                 -- skips it; false trains on it too, as a minibatch of its own (its
                                 -- loss, targets and update means over its samples: the PyTorch
                                 -- reference's DataLoader; docs/training.md, "The short last minibatch")
  epochs = 10,
  optimizer = "sgd",             -- sgd, adam
  lr = 0.05,
  momentum = 0,
  beta1 = 0.9, beta2 = 0.999, eps = 1e-8,
  clip = 1.0,                    -- per-tensor gradient norm bound (0: none)
  normalize_lr = false,          -- the reference's lr / lambda
  lambda = 0.05,                 -- target stepsize (3)
  target_mode = "mean",          -- mean: the reference's minibatch-mean targets; sample: per sample
  k_p = 1.5, alpha = 0.0015, tau_v = 0.2, tau_u = 1, controller = "pi",
  solver = "euler",              -- euler (reference-compatible, declared order), cvode-bdf, cvode-adams
  dt = 0.005, tmax = 1000,       -- euler: tmax - 1 steps of dt; CVODE integrates over the same time
  inst_transmission = true, proactive = true,
  rtol = 1e-6, atol = 1e-8, settle_tol = 0,
  linear_solver = "default",     -- CVODE: krylov or dense (docs/solvers.md, "Stiff circuits")
  preconditioner = "default",    -- none, diagonal, block or dfc.layered
  stability_check = true,        -- euler: the fixed-step stability guard (docs/solvers.md), its
                                 -- estimate with the first minibatch (one warning per run), the
                                 -- growth watch in every simulation; false: off
  convergence_test = false,      -- drop samples whose simulation has not settled (MNIST configs)
  seed = 42,
  out_dir = "runs", name = "",
  checkpoint = true,
  resume = "",                   -- a run directory to continue
  progress = true,
  eval_batch = 0,                -- 0: batch
  -- the measures of App. F.1 (measures.lua) on the training minibatch, before the optimiser's
  -- step, every measures_every minibatches (0: never): rows in measures.csv, epoch means in
  -- log.csv
  measures_every = 0,
  measures_gamma = 0,            -- damping of the minimum-norm reference update
  measures_gamma_gn = 0,         -- damping of the Gauss-Newton reference update (0: pseudoinverse)
  measures_gamma_ref = 0.1,      -- damping of the reference code's MN and GN updates (angle_mn_ref, angle_gn_ref)
  -- trained feedback (feedback = "trained"): the sleep phase (12), (13) of sleep.lua; the
  -- defaults are the paper's student-teacher configuration
  k_p_fb = 0.1, alpha_fb = 0.25, tau_v_fb = 0.01, dt_fb = 0.002, tmax_fb = 50, tau_A = 0.3,
  sigma = 0.01,                  -- noise on the apical compartments
  optimizer_fb = "sgd",          -- sgd, adam (with beta1, beta2 and eps_fb)
  lr_fb = 0.002,                 -- feedback epochs after forward epochs
  lr_fb_init = 0.1,              -- pre-training epochs (an optimiser of their own)
  eps_fb = 1e-8,
  beta = 0.025,                  -- weight decay of the feedback optimisers
  clip_fb = 1.0,                 -- one norm bound over all Q_i together (0: none)
  epochs_fb = 10,                -- feedback pre-training epochs, before the first forward epoch
  extra_fb_epochs = 1,           -- feedback epochs after each forward epoch
  freeze_QL = false,             -- Q_L = I, left out of the feedback optimisers, no noise on hL
  threads = 1,                   -- dfc, dfc-ss: each minibatch's simulation split into this many
                                 -- parts run at once, one thread each (direct feedback; euler
                                 -- gives the one-simulation update up to rounding, CVODE steps
                                 -- each part on its own, within its tolerances)
  fb_threads = 1,                -- the sleep phase's minibatch split into this many parts run at
                                 -- once, one thread each (each part its own noise stream, so
                                 -- results are reproducible per value; 2 uses both cores)
  -- single-phase learning (App. C.3; needs method dfc, feedback trained, solver euler, direct
  -- feedback): every forward-phase simulation is noisy (sigma on the apical compartments, which
  -- become dynamic with tau_A; euler-maruyama in the published order) and accumulates both the
  -- forward rule (5) and the feedback rule (200) with the high-pass factor u - u_lp (u_lp: u
  -- low-pass filtered with tau_hp); both optimisers step after every minibatch (the feedback
  -- one is opt_fb: lr_fb, beta, clip_fb). The epochs_fb pre-training epochs stay (sleep phase);
  -- there are no feedback epochs after forward epochs (extra_fb_epochs must be 0 or unset)
  single_phase = false,
  tau_hp = 1.0,                  -- time constant of the low-pass filter of u (ratio to tau_u)
  ranks = 1,                     -- MPI ranks (mpirun -np N): set by the launcher, recorded in
                                 -- config.lua; each minibatch split over them (mpi.lua)
  mpi_cvode = "local",           -- CVODE over MPI ranks: "local" (each rank its shard, its own
                                 -- steps) or "global" (one integration, one process's steps)
}

local methods = { dfc = true, ["dfc-ss"] = true, ["dfc-ssa"] = true, bp = true, dfa = true }
local solvers = { euler = true, ["cvode-bdf"] = true, ["cvode-adams"] = true }
local feedbacks = { weight_product = true, weight_product_tracking = true, given = true, trained = true }

-- linear_solver and preconditioner: known names, and only where the solver uses them.
function M.check_linear_solver(c, level)
  local ls, pc = c.linear_solver, c.preconditioner
  if ls ~= "default" and ls ~= "krylov" and ls ~= "dense" then
    error(string.format("dfc.train: unknown linear_solver %q (krylov, dense)", ls), level)
  end
  if pc ~= "default" and pc ~= "none" and pc ~= "diagonal" and pc ~= "block" and pc ~= "dfc.layered" then
    error(string.format("dfc.train: unknown preconditioner %q (none, diagonal, block, dfc.layered)", pc), level)
  end
  if c.solver == "euler" and (ls ~= "default" or pc ~= "default") then
    error(string.format("dfc.train: linear_solver and preconditioner are for cvode-bdf and cvode-adams; " ..
      "solver %q solves no linear system", c.solver), level)
  end
  if ls == "dense" and pc ~= "default" then
    error("dfc.train: preconditioner is for linear_solver = \"krylov\"; the dense solver uses none", level)
  end
  if c.solver == "cvode-adams" and ls == "default" and pc ~= "default" then
    error("dfc.train: cvode-adams without linear_solver uses functional iteration and no preconditioner; " ..
      "set linear_solver = \"krylov\" too", level)
  end
end

-- Fills defaults, refuses unknown keys and bad values (naming them).
function M.resolve(cfg, level)
  level = (level or 1) + 1
  local c = {}
  for k, v in pairs(M.defaults) do c[k] = v end
  local given
  cfg, given = M.merge_defaults(cfg or {}, level + 1)
  for k, v in pairs(cfg) do
    if M.defaults[k] == nil then
      local names = {}
      for n in pairs(M.defaults) do names[#names + 1] = n end
      table.sort(names)
      error(string.format("dfc.train: unknown option %q (options: %s)", tostring(k), table.concat(names, ", ")), level)
    end
    if type(v) ~= type(M.defaults[k]) and not (k == "task" and tasks.is_dataset(v)) then
      error(string.format("dfc.train: option %s must be a %s%s, got %s", k, type(M.defaults[k]),
        k == "task" and " or an apical dataset" or "", type(v)), level)
    end
    if type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then
      error(string.format("dfc.train: %s = %s must be a finite number", k, tostring(v)), level)
    end
    c[k] = v
  end
  local known_pathway = false
  for _, n in ipairs(pathways.names()) do known_pathway = known_pathway or n == c.feedback_pathway end
  if not known_pathway then
    error(string.format("dfc.train: unknown feedback_pathway %q (%s, or a name given to dfc.pathways.register)",
      c.feedback_pathway, table.concat(pathways.names(), ", ")), level)
  end
  if not methods[c.method] then error(string.format("dfc.train: unknown method %q (dfc, dfc-ss, dfc-ssa, bp, dfa)", c.method), level) end
  if not solvers[c.solver] then error(string.format("dfc.train: unknown solver %q (euler, cvode-bdf, cvode-adams)", c.solver), level) end
  M.check_linear_solver(c, level + 1)
  if not feedbacks[c.feedback] then
    error(string.format("dfc.train: unknown feedback %q (weight_product, weight_product_tracking, given, trained)", c.feedback), level)
  end
  M.check_feedback(c, level + 1)
  if c.method == "dfa" and c.feedback_pathway ~= "direct" then
    error(string.format("dfc.train: method dfa uses Q1..QL as direct feedback; feedback_pathway %q is not direct", c.feedback_pathway), level)
  end
  if c.optimizer ~= "sgd" and c.optimizer ~= "adam" then
    error(string.format("dfc.train: unknown optimizer %q (sgd, adam)", c.optimizer), level)
  end
  for _, k in ipairs { "lr", "lambda", "dt", "tau_v", "tau_u", "rtol", "atol" } do
    if not (c[k] > 0) then error(string.format("dfc.train: %s = %s must be > 0", k, tostring(c[k])), level) end
  end
  if c.tmax < 2 or c.tmax % 1 ~= 0 then error(string.format("dfc.train: tmax = %s must be an integer >= 2", tostring(c.tmax)), level) end
  if c.measures_every < 0 or c.measures_every % 1 ~= 0 then
    error(string.format("dfc.train: measures_every = %s must be an integer >= 0", tostring(c.measures_every)), level)
  end
  for _, k in ipairs { "measures_gamma", "measures_gamma_gn", "measures_gamma_ref" } do
    if not (c[k] >= 0) then error(string.format("dfc.train: %s = %s must be >= 0", k, tostring(c[k])), level) end
  end
  if c.batch < 1 or c.batch % 1 ~= 0 then error(string.format("dfc.train: batch = %s must be a positive integer", tostring(c.batch)), level) end
  for k, least in pairs(M.counts) do
    if not (c[k] >= least and c[k] % 1 == 0) then
      error(string.format("dfc.train: %s = %s must be an integer >= %d", k, tostring(c[k]), least), level)
    end
  end
  M.check_task(c, level + 1)
  local user = {}
  for k in pairs(given) do user[k] = cfg[k] end
  if c.single_phase then M.check_single_phase(c, user, level + 1) end
  local _, why = unused.first(c, given)
  if why then error(why, level) end
  -- a feedback the method does not use, from the defaults: no sleep phase for it
  if not given.feedback and c.method:sub(1, 3) ~= "dfc" then c.feedback = M.defaults.feedback end
  for _, k in ipairs { "threads", "fb_threads" } do
    local v = c[k]
    if math.type(v) ~= "integer" or v < 1 or v > 64 or c.batch % v ~= 0 then
      error(string.format("dfc.train: %s = %s must be an integer from 1 to 64 that divides batch = %d",
        k, tostring(v), c.batch), level)
    end
  end
  mpi.check(c, (cfg or {}).ranks, level)
  M.check_drop_last(c, level + 1)
  if c.threads > 1 then
    if c.single_phase then
      error("dfc.train: threads > 1 is not available with single_phase (one noise stream per minibatch)", level)
    end
    if c.feedback_pathway ~= "direct" then
      error(string.format("dfc.train: threads > 1 needs direct feedback (feedback_pathway is %q)", c.feedback_pathway), level)
    end
  end
  return c
end

-- cfg with its `defaults` (a table of fallback options: a dfc.paper configuration, a script's
-- apical.params table) merged underneath, and the set of the options the user gave: cfg's own
-- keys and, when defaults is an apical.params table, those of its values given with --set.
-- The rest are defaults: those the run does not read are not refused (unused.lua).
function M.merge_defaults(cfg, level)
  local d = cfg.defaults
  if d == nil then d = {} end
  if type(d) ~= "table" then
    error(string.format("dfc.train: option defaults must be a table of options, got %s", type(d)), level)
  end
  local merged, given, set = {}, {}, apical.params_given(d)
  for k, v in pairs(d) do
    merged[k] = v
    if set[k] then given[k] = true end
  end
  for k, v in pairs(cfg) do
    if k ~= "defaults" then merged[k], given[k] = v, true end
  end
  return merged, given
end

-- drop_last = false: the combinations whose short minibatch has a simulation of its own.
function M.check_drop_last(c, level)
  if c.drop_last then return end
  if c.single_phase then
    error("dfc.train: drop_last = false is not available with single_phase (one noise stream and " ..
      "one filtered simulation per minibatch of the full size)", level + 1)
  end
end

-- Counts and their least values (a one-line change adds one).
M.counts = { epochs = 0, seed = 0, eval_batch = 0 }

-- The task: a built-in name or an apical dataset, and task_opts naming only what that task
-- takes (tasks.options).
function M.check_task(c, level)
  level = level + 1
  local kind = tasks.is_dataset(c.task) and "dataset" or c.task
  local known = tasks.options[kind]
  if not known or kind == "dataset" and type(c.task) == "string" then
    error(string.format("dfc.train: unknown task %q (student_teacher, mnist, fashion_mnist, " ..
      "mnist_autoencoder, or an apical dataset: apical.dataset.arrays { inputs =, targets = })",
      tostring(c.task)), level)
  end
  local set = {}
  for _, k in ipairs(known) do set[k] = true end
  for k in pairs(c.task_opts) do
    if not set[k] then
      error(string.format("dfc.train: task_opts.%s: task %s has no option %s (it has: %s)", tostring(k),
        kind, tostring(k), table.concat(known, ", ")), level)
    end
  end
end

-- single_phase: the combinations it makes sense with (App. C.3 merges the sleep phase into the
-- continuous forward phase: the feedback rule needs the whole noisy trajectory).
function M.check_single_phase(c, cfg, level)
  level = level + 1
  local function refuse(msg, ...) error("dfc.train: single_phase = true " .. string.format(msg, ...), level) end
  if c.method ~= "dfc" then
    refuse("needs method = \"dfc\" (the feedback rule is integrated over the noisy forward " ..
      "simulation); method %q has %s", c.method,
      c.method == "dfc-ss" and "a forward update from the last state only" or "no such simulation")
  end
  if c.feedback ~= "trained" then
    refuse("needs feedback = \"trained\" (it trains Q during forward learning); feedback is %q", c.feedback)
  end
  if c.solver ~= "euler" then
    refuse("needs solver = \"euler\" (the noise needs euler-maruyama in the published order); " ..
      "solver %q cannot simulate noise", c.solver)
  end
  if c.feedback_pathway ~= "direct" then
    refuse("needs feedback_pathway = \"direct\" (the high-pass filter acts on u, the " ..
      "presynaptic signal of direct feedback); feedback_pathway is %q", c.feedback_pathway)
  end
  if c.convergence_test then
    refuse("cannot use convergence_test: a noisy simulation never settles to the tolerance of the test")
  end
  if cfg.extra_fb_epochs and cfg.extra_fb_epochs ~= 0 then
    refuse("trains Q during forward learning, so it has no feedback epochs after forward epochs: " ..
      "extra_fb_epochs = %s must be 0 (or unset)", tostring(cfg.extra_fb_epochs))
  end
  c.extra_fb_epochs = 0
  if not (c.tau_hp > 0) then refuse("needs tau_hp > 0, got %s", tostring(c.tau_hp)) end
  if not (c.sigma > 0) then refuse("needs noise: sigma = %s must be > 0", tostring(c.sigma)) end
end

-- The noise seed of a single-phase forward simulation (epoch, minibatch number over the run):
-- a stream apart from the sleep phase's.
function M.forward_noise_seed(seed, epoch, iteration)
  return sleep.noise_seed(seed ~ 0x51A6E5, epoch, iteration)
end

local Trainer = {}
Trainer.__index = Trainer

-- A trainer: the network, its simulation, the optimiser, the data, the scratch arrays.
function M.trainer(dfc, cfg, level)
  local c = M.resolve(cfg, (level or 1) + 1)
  local task
  if tasks.is_dataset(c.task) then
    -- a user's dataset: the run directory records what it was (config.lua holds data only)
    local ok, t, summary = pcall(tasks.from_dataset, c.task, c.task_opts, c.batch)
    if not ok then error("dfc.train: " .. tostring(t), (level or 1) + 1) end
    task, c.task, c.task_opts = t, "dataset", summary
  elseif c.task == "student_teacher" then
    local o = {}
    for k, v in pairs(c.task_opts) do o[k] = v end
    o.seed = o.seed or c.seed
    task = tasks.student_teacher(dfc, o)
  elseif tasks[c.task] then
    task = tasks[c.task](c.task_opts)
    -- the run directory records the pixel standardisation the task applied (a default can
    -- change between versions; a resumed run must see the same inputs)
    local o = {}
    for k, v in pairs(c.task_opts) do o[k] = v end
    o.normalize = task.normalize or false
    c.task_opts = o
  else
    error(string.format("dfc.train: unknown task %q (student_teacher, mnist, fashion_mnist, mnist_autoencoder)", c.task), (level or 1) + 1)
  end
  local sizes = { task.n_in }
  for _, h in ipairs(c.hidden) do sizes[#sizes + 1] = h end
  sizes[#sizes + 1] = task.n_out
  local net_args = { sizes = sizes, batch = c.batch, activation = c.activation,
    output_activation = c.output_activation, activations = #c.activations > 0 and c.activations or nil, tau_v = c.tau_v, tau_u = c.tau_u, k_p = c.k_p,
    alpha = c.alpha, controller = c.controller, init = c.init, seed = c.seed,
    plastic_feedback = c.feedback == "trained",
    feedback_pathway = c.feedback_pathway, pathway_opts = c.pathway_opts,
    -- single phase: the apical compartments are dynamic (they carry the noise)
    tau_A = c.single_phase and c.tau_A or nil }
  -- the network's errors about pathway options read as dfc.train's options were written
  local ok, net = pcall(dfc.network, net_args)
  if not ok then
    local msg = tostring(net)
    msg = msg:gsub("dfc%.network: feedback_pathway [%w_]+: option ", "dfc.train: pathway_opts.", 1)
    msg = msg:gsub("dfc%.network: feedback_pathway ([%w_]+): unknown option ",
      "dfc.train: pathway_opts: feedback_pathway %1 has no option ", 1)
    error(msg, 0)
  end
  if c.single_phase then
    -- rule (200) on the trained Q_i (not on a frozen Q_L), u_lp = ctl_lp.output
    local layers = {}
    for i = 1, net.L do
      if not (c.freeze_QL and i == net.L) then layers[#layers + 1] = i end
    end
    net:add_highpass(c.tau_hp, c.sigma, layers)
  end
  local wp = c.feedback:sub(1, 14) == "weight_product"
  if wp and not net.pathway:has_weight_product() then
    error(string.format("dfc.train: feedback = \"%s\" needs a pathway with a weight_product hook; %s has none (use feedback = \"given\")",
      c.feedback, c.feedback_pathway), (level or 1) + 1)
  end
  -- the paper's fixed variants (App. F.2): Q set from the initial forward weights, then
  -- frozen (DFA keeps its random Q; a resumed run loads Q from the checkpoint)
  if c.feedback == "weight_product" and c.method:sub(1, 3) == "dfc" then net:set_weight_product() end
  local t = setmetatable({ cfg = c, dfc = dfc, task = task, net = net, L = net.L, B = c.batch,
    blas_default = apical.blas_threads(), net_args = net_args,
    n_out = task.n_out, defaults = M.defaults }, Trainer)
  local lr = c.normalize_lr and c.lr / c.lambda or c.lr
  local oo = { model = net.model, projections = net.W, lr = lr,
    clip = c.clip > 0 and c.clip or nil, clip_mode = c.clip > 0 and "per_tensor" or "none" }
  if c.optimizer == "adam" then
    oo.beta1, oo.beta2, oo.eps = c.beta1, c.beta2, c.eps
  else
    oo.momentum = c.momentum
  end
  t.opt = apical.optim[c.optimizer](oo)
  if c.feedback == "trained" or c.freeze_QL then t:setup_feedback() end
  t.rminus = apical.zeros { c.batch, task.n_out }
  t.rstar = apical.zeros { c.batch, task.n_out }
  t.mask = apical.zeros { c.batch }
  if c.method == "dfc" or c.method == "dfc-ss" then t.sim = net.model:compile() end
  t.run_opts = t:solver_options()
  if t.sim then
    -- the simulated parts of each minibatch: the network itself for the whole batch, or (with
    -- threads > 1) replicas of it for 1/threads of the batch each, their weights copied from
    -- the network before every minibatch, with their own inputs, targets and masks
    t.parts = { { net = net, sim = t.sim, rstar = t.rstar, rminus = t.rminus, mask = t.mask,
      b = c.batch, whole = true } }
    -- (with MPI ranks, this rank's rows: mpi.lua)
    local pieces = mpi.pieces(c.batch, c.threads)
    for k, p in ipairs(pieces[1].b < c.batch and pieces or {}) do
      local a, b = {}, p.b
      for key, v in pairs(net_args) do a[key] = v end
      a.batch = b
      local pn = dfc.network(a)
      t.parts[k] = { net = pn, sim = pn.model:compile(), X = apical.zeros { b, task.n_in },
        Y = apical.zeros { b, task.n_out }, rstar = apical.zeros { b, task.n_out },
        rminus = apical.zeros { b, task.n_out }, mask = apical.zeros { b }, first = p.first, b = b }
    end
  end
  if c.measures_every > 0 then
    t.ms = dfc.measures_new(net, { alpha = c.alpha, k_p = c.k_p, tau_v = c.tau_v, tau_u = c.tau_u,
      gamma = c.measures_gamma, gamma_gn = c.measures_gamma_gn, gamma_ref = c.measures_gamma_ref })
    t.measure_rows = {}
  end
  return mpi.attach(t, (level or 1) + 1)
end

-- The options of one simulation: the published scheme (declared-order Euler) or CVODE over
-- the same time.
function Trainer:solver_options()
  local c = self.cfg
  local o = { accumulate = self.cfg.method == "dfc" }
  if c.solver == "euler" then
    o.solver, o.dt, o.steps, o.ordered = "euler", c.dt, c.tmax - 1, true
    -- instant transmission: layers in increasing order, each reading the new rate below;
    -- otherwise decreasing order, each reading the rate below from the previous step
    -- (the feedback pathway's populations, if any, right after the controller: pathways.lua)
    o.order = self.net:update_order(not c.inst_transmission)
    -- proactive controller: the apical compartments read u[k+1]; otherwise u[k]
    if not c.proactive then o.previous = { "ctl.u" } end
    o.accumulation = "all" -- the reference averages over all tmax points
    o.stability_check = c.stability_check
    if c.single_phase then
      -- App. C.3: white noise on every apical compartment whose Q is trained (not on hL with
      -- freeze_QL, as in the sleep phase), the seed set per minibatch (Trainer:step)
      o.solver, o.seed, o.noise = "euler-maruyama", 0, {}
      for i = 1, self.L do
        if not (c.freeze_QL and i == self.L) then o.noise[#o.noise + 1] = { "h" .. i .. ".apical", c.sigma } end
      end
    end
  else
    o.solver, o.t_end, o.rtol, o.atol = c.solver, (c.tmax - 1) * c.dt, c.rtol, c.atol
    if c.settle_tol > 0 then o.settle_tol = c.settle_tol end
    if c.linear_solver ~= "default" then o.linear_solver = c.linear_solver end
    if c.preconditioner ~= "default" then o.preconditioner = c.preconditioner end
  end
  return o
end

-- Feedforward output and output targets (3) of a minibatch.
function Trainer:targets(X, Y)
  local dfc, c = self.dfc, self.cfg
  dfc.forward { model = self.net.model, x = X, out = self.rminus }
  dfc.targets { rL = self.rminus, y = Y, loss = self.task.loss, lambda = c.lambda,
    mode = c.target_mode, out = self.rstar }
end

-- The same for each part of a split minibatch (threads > 1, MPI ranks, a short minibatch) from
-- its own rows only, into its own arrays: in mode "mean" with the whole minibatch's 1/B
-- (dfc.targets' batch), so they are those rows' targets of the whole minibatch (the forward
-- pass of fewer rows to rounding) at the cost of the part's rows.
function Trainer:part_targets(X, Y)
  local dfc, c = self.dfc, self.cfg
  local batch = c.target_mode == "mean" and self.B or nil
  for _, part in ipairs(self.parts) do
    dfc.forward { model = self.net.model, x = X:rows(part.first, part.b, part.X), out = part.rminus }
    dfc.targets { rL = part.rminus, y = Y:rows(part.first, part.b, part.Y), loss = self.task.loss,
      lambda = c.lambda, mode = c.target_mode, batch = batch, out = part.rstar }
  end
end

-- Runs { {sim, opts}, ... }: one with sim:run (BLAS as it is), several at once with
-- apical.run_parallel; returns their results.
local function run_all(runs)
  if #runs == 0 then return {} end
  if #runs == 1 then return { runs[1][1]:run(runs[1][2]) } end
  return apical.run_parallel(runs)
end

-- Adds the method's descent direction for minibatch (X, Y) into the optimiser's buffers and
-- returns the simulation's statistics (or nil).
function Trainer:gradient(X, Y)
  local dfc, c, net, opt = self.dfc, self.cfg, self.net, self.opt
  local m = net.model
  -- one simulation or kernel: BLAS at its thread count; a split minibatch runs its parts on
  -- the cores itself, with BLAS single-threaded (after a multi-threaded product an idle BLAS
  -- worker spins for a while and would take a core from the parts)
  apical.blas_threads(self.parts and #self.parts > 1 and 1 or self.blas_default)
  if c.method == "bp" then
    dfc.bp { model = m, x = X, y = Y, loss = self.task.loss, optim = opt }
    return nil
  elseif c.method == "dfa" then
    dfc.dfa { model = m, x = X, y = Y, loss = self.task.loss, optim = opt }
    return nil
  end
  -- dfc.weight_product for direct feedback, the pathway's hook otherwise
  if c.feedback == "weight_product_tracking" then net:set_weight_product() end
  if c.method == "dfc-ssa" then
    -- the targets from the kernel's own feedforward pass (the same values as self:targets,
    -- one forward pass fewer; r* kept for the measures); Qeff: the effective feedback of a
    -- pathway other than direct (nil for direct feedback)
    dfc.ssa { model = m, x = X, y = Y, loss = self.task.loss, lambda = c.lambda,
      mode = c.target_mode, target_out = self.rstar, alpha = c.alpha, optim = opt,
      Qeff = net:ssa_feedback() }
    return nil
  end
  local parts = self.parts
  if parts[1].whole then self:targets(X, Y) else self:part_targets(X, Y) end
  local outs = self:run_parts(X)
  local stats = outs[1].stats
  if #parts > 1 then
    -- steps and right-hand-side evaluations: the mean over the parts; t_reached the earliest
    stats = {}
    for key, v in pairs(outs[1].stats) do stats[key] = v end
    for key, v in pairs(stats) do
      if key ~= "t_reached" and key ~= "last_step" and type(v) == "number" then
        local sum = 0
        for _, o in ipairs(outs) do sum = sum + (o.stats[key] or 0) end
        stats[key] = sum / #parts
      end
    end
    for _, o in ipairs(outs) do stats.t_reached = math.min(stats.t_reached, o.stats.t_reached) end
  end
  if c.convergence_test then
    -- the update without the samples that did not settle: their weight 0, DFC's run again
    local again, dropped = {}, 0
    for _, part in ipairs(parts) do
      dfc.convergence { model = part.net.model, sim = part.sim, rminus = part.rminus, alpha = c.alpha, out = part.mask }
      local kept = part.mask:sum()
      dropped = dropped + part.b - kept
      -- (mpi_cvode = "global": every rank runs again when any sample of the minibatch did not settle)
      local again_part = kept < part.b
      if self.any_dropped then again_part = self:any_dropped(part.b - kept) end
      if again_part then
        part.sim:set_sample_weights(part.mask)
        if c.method == "dfc" then again[#again + 1] = { part.sim, self.run_opts } end
      end
    end
    stats.dropped = dropped
    run_all(again)
  end
  -- the parts' accumulators sum over their samples: the whole batch's -2/B scales each
  local T = (c.tmax - 1) * c.dt
  for k, part in ipairs(parts) do
    local sim, ts = part.sim, outs[k].stats.t_reached
    if c.method == "dfc" and c.solver ~= "euler" and ts < T * (1 - 1e-12) then
      -- stopped early once settled: the rest of the window contributes the settled state's rule
      opt:add_from_sim(sim, -2 / self.B * ts / T)
      sim:accumulate_state()
      opt:add_from_sim(sim, -2 / self.B * (T - ts) / T)
    else
      if c.method == "dfc-ss" then sim:accumulate_state() end
      opt:add_from_sim(sim, -2 / self.B)
    end
    if c.convergence_test then sim:set_sample_weights(nil) end
  end
  if c.single_phase then
    -- (200) accumulated over the same run: the engine's time average of -(1/s^2) vA (u - u_lp)^T
    -- summed over the batch; the descent direction is -1/B times it (the sleep phase's
    -- 1/(s^2 T B) scaling), beta is the optimiser's weight decay (single_phase: one part)
    self.opt_fb:add_from_sim(parts[1].sim, -1 / self.B)
  end
  return stats
end

-- The minibatch's simulation: the whole batch in one run, or (threads > 1) each part with its
-- rows of the inputs and targets (Trainer:part_targets put them in the part's arrays), all at
-- once (apical.run_parallel). Returns the runs' results.
function Trainer:run_parts(X)
  local runs = {}
  for k, part in ipairs(self.parts) do
    local x, target = X, part.rstar
    if not part.whole then
      self.dfc.copy_weights { from = self.net.model, to = part.net.model, which = "WQ" }
      x = part.X
    end
    part.sim:set_input("x", x)
    part.sim:set_input("target", target)
    runs[k] = { part.sim, self.run_opts }
  end
  local outs = run_all(runs)
  self:stability_estimated(outs)
  return outs
end

-- The stability guard estimates with the first minibatch only (one warning per run, kept in
-- the result's warnings too); the growth watch stays on.
function Trainer:stability_estimated(outs)
  if self.run_opts.stability_check ~= true then return end
  self.run_opts.stability_check = "watch"
  for _, o in ipairs(outs) do
    if o.stats.stability_warning then
      self.warnings = self.warnings or {}
      self.warnings[#self.warnings + 1] = o.stats.stability_warning
      return
    end
  end
end

-- The trainer as a short last minibatch of `count` samples sees it (drop_last = false): the
-- minibatch's rows (X, Y), its own scratch arrays and, for the simulated methods and the sleep
-- phase, networks of `count` rows (the trainer's weights copied in before every run); so its
-- loss, targets and update are means over its own samples, as for a minibatch of that size.
-- Everything else is the trainer's, and what a method writes goes to the trainer. Built once.
function Trainer:short(count)
  self.shorts = self.shorts or {}
  if self.shorts[count] then return self.shorts[count] end
  local n_in, n_out = self.task.n_in, self.n_out
  local v = { B = count, short_batch = true, X = apical.zeros { count, n_in }, Y = apical.zeros { count, n_out },
    rminus = apical.zeros { count, n_out }, rstar = apical.zeros { count, n_out }, mask = apical.zeros { count } }
  if self.sim then
    -- one part (threads need not divide count), not the whole: weights copied before each run;
    -- with MPI ranks this rank's rows of the short minibatch (mpi.short_pieces)
    v.parts = {}
    for k, p in ipairs(mpi.size > 1 and mpi.short_pieces(count, self.cfg.threads) or { { first = 1, b = count } }) do
      local a = {}
      for key, val in pairs(self.net_args) do a[key] = val end
      a.batch = p.b
      local pn = self.dfc.network(a)
      v.parts[k] = { net = pn, sim = pn.model:compile(), X = apical.zeros { p.b, n_in },
        Y = apical.zeros { p.b, n_out }, rstar = apical.zeros { p.b, n_out },
        rminus = apical.zeros { p.b, n_out }, mask = apical.zeros { p.b }, first = p.first, b = p.b }
    end
  end
  if self.sleep then
    -- the sleep phase on rows 1..count of the padded minibatch, split as a full one is (fb_threads
    -- parts over the ranks, the same noise streams; pieces of the full batch's sleep network's
    -- size: Trainer:feedback_epoch scales their gradient to the mean over the count samples).
    -- A rank with no rows of it (count < ranks x fb_threads) gets mpi.attach_short's stand-in.
    local o = {}
    for key, val in pairs(self.sleep_opts) do o[key] = val end
    o.threads, o.pieces = 1, mpi.short_pieces(count, self.cfg.fb_threads)
    v.sleep = #o.pieces > 0 and sleep.new(self.dfc, self.net, o, "dfc.train") or nil
    -- the stability estimate was made with the epoch's first minibatch: the growth watch only
    for _, part in ipairs(v.sleep and v.sleep.parts or {}) do
      if part.run_opts.stability_check == true then part.run_opts.stability_check = "watch" end
    end
  end
  mpi.attach_short(self, v, count)
  v = setmetatable(v, { __index = self, __newindex = self })
  self.shorts[count] = v
  return v
end

-- The minibatch of `count` samples (X, Y from ds:batches, padded to the batch size) and the
-- trainer that trains on it: itself, or (a short last minibatch) its view Trainer:short(count)
-- with the rows copied into arrays of that size.
function Trainer:minibatch(X, Y, count)
  if count == self.B then return self, X, Y end
  local v = self:short(count)
  return v, X:rows(1, count, v.X), Y and Y:rows(1, count, v.Y)
end

-- Minibatches per epoch (the short last one counted when it is trained).
function Trainer:batches_per_epoch()
  local n = self.task.train:size()
  return self.cfg.drop_last and n // self.B or (n + self.B - 1) // self.B
end

-- One optimiser step on a minibatch; `iteration` (counting minibatches from 1 over the whole
-- run) decides whether the measures are taken first (never on a short last minibatch).
function Trainer:step(X, Y, iteration, epoch)
  local c = self.cfg
  self.opt:zero()
  if c.single_phase then
    self.opt_fb:zero()
    self.run_opts.seed = M.forward_noise_seed(c.seed, epoch or 0, iteration or 0)
  end
  local stats = self:gradient(X, Y)
  if self.ms and not self.short_batch and iteration and (iteration - 1) % self.cfg.measures_every == 0 then
    self:measure(X, Y, iteration, epoch)
  end
  self.opt:step()
  if c.single_phase then
    self.opt_fb:step()
    local sq = 0
    for _, p in ipairs(self.fb_proj) do sq = sq + self.opt_fb:norms(p) ^ 2 end
    self.sp_norm_sum, self.sp_batches = (self.sp_norm_sum or 0) + math.sqrt(sq), (self.sp_batches or 0) + 1
  end
  return stats
end

-- The measures' columns (measures.csv): the conditions, the stability and the angles of the
-- update with each reference, all layers together and per layer.
local measure_kinds = { "bp", "mn", "wmn", "gn", "ssa", "mn_ref", "gn_ref" }
local measure_main = { "condition1", "condition2", "condition3", "stability",
  "angle_bp", "angle_mn", "angle_wmn", "angle_gn", "angle_ssa",
  "condition1_ref", "stability_mean", "angle_mn_ref", "angle_gn_ref" }
M.measure_kinds, M.measure_main = measure_kinds, measure_main

function Trainer:measure_columns()
  local cols = { "iteration", "epoch" }
  for _, k in ipairs(measure_main) do cols[#cols + 1] = k end
  for _, k in ipairs(measure_kinds) do
    for i = 1, self.L do cols[#cols + 1] = string.format("angle_%s_%d", k, i) end
  end
  return cols
end

-- Measures the update the optimiser holds (before its step) on minibatch (X, Y): a row of
-- measures.csv (NaN for a measure that failed numerically).
function Trainer:measure(X, Y, iteration, epoch)
  local c = self.cfg
  -- the whole minibatch's targets: bp and dfa make none, split parts and MPI shards their rows'
  if c.method == "bp" or c.method == "dfa" or self.shard or (self.parts and not self.parts[1].whole) then
    self:targets(X, Y)
  end
  local r = self.ms:compute { x = X, target = self.rstar, y = Y, loss = self.task.loss, update = self.opt }
  local nan = 0 / 0
  local row = { iteration = iteration, epoch = epoch, condition1 = r.condition1 or nan,
    condition2 = r.condition2 or nan, condition3 = r.condition3 or nan, stability = r.stability or nan,
    condition1_ref = r.condition1_ref or nan, stability_mean = r.stability_mean or nan }
  for _, k in ipairs(measure_kinds) do
    local a = r.angles and r.angles[k]
    row["angle_" .. k] = a and a.all or nan
    for i = 1, self.L do row[string.format("angle_%s_%d", k, i)] = a and a[i] or nan end
  end
  self.measure_rows[#self.measure_rows + 1] = row
end

-- Epoch means of the measures (over the rows of `epoch`, NaNs left out) into a log row.
function Trainer:measure_means(row, epoch)
  for _, k in ipairs(measure_main) do
    local sum, n = 0, 0
    for _, m in ipairs(self.measure_rows) do
      if m.epoch == epoch and m[k] == m[k] then sum, n = sum + m[k], n + 1 end
    end
    row[k] = n > 0 and sum / n or 0 / 0
  end
end

-- Loss and error (classification: fraction misclassified) of the feedforward network over a
-- dataset.
function Trainer:evaluate(ds)
  if ds == nil then -- no test set: NaN
    return 0 / 0, self.task.loss == "ce" and 0 / 0 or nil
  end
  local B = self.cfg.eval_batch > 0 and self.cfg.eval_batch or self.B
  local out = self.eval_out
  if not out or out.shape[1] ~= B then
    out = apical.zeros { B, self.n_out }
    self.eval_out = out
  end
  local n, loss, wrong = 0, 0, 0
  local k = self.n_out
  local ce = self.task.loss == "ce"
  for X, Y, labels, count in ds:batches { batch = B } do
    self.dfc.forward { model = self.net.model, x = X, out = out }
    for b = 0, count - 1 do
      if ce then
        local mx, arg = -math.huge, 0
        for j = 1, k do
          local v = out[b * k + j]
          if v > mx then mx, arg = v, j end
        end
        local s = 0
        for j = 1, k do s = s + math.exp(out[b * k + j] - mx) end
        local lse = mx + math.log(s)
        local label = labels and labels[b + 1] or nil
        if label then
          loss = loss + lse - out[b * k + label + 1]
          if arg ~= label + 1 then wrong = wrong + 1 end
        else
          for j = 1, k do loss = loss - Y[b * k + j] * (out[b * k + j] - lse) end
        end
      else
        for j = 1, k do
          local d = out[b * k + j] - Y[b * k + j]
          loss = loss + d * d
        end
      end
    end
    n = n + count
  end
  if ce then return loss / n, wrong / n end
  return loss / (n * k), nil
end

-- The minibatch-mean training loss of the feedforward output (before the update).
function Trainer:batch_loss(X, Y)
  self.dfc.forward { model = self.net.model, x = X, out = self.rminus }
  local k, B, loss = self.n_out, self.B, 0
  if self.task.loss == "ce" then
    for b = 0, B - 1 do
      local mx = -math.huge
      for j = 1, k do mx = math.max(mx, self.rminus[b * k + j]) end
      local s = 0
      for j = 1, k do s = s + math.exp(self.rminus[b * k + j] - mx) end
      local lse = mx + math.log(s)
      for j = 1, k do loss = loss - Y[b * k + j] * (self.rminus[b * k + j] - lse) end
    end
    return loss / B
  end
  for i = 1, B * k do
    local d = self.rminus[i] - Y[i]
    loss = loss + d * d
  end
  return loss / (B * k)
end

local log_columns = { "epoch", "train_loss", "valid_loss", "valid_error", "test_loss", "test_error",
  "wall_seconds", "samples_per_second", "mean_steps", "mean_rhs_evals", "dropped_samples",
  "mean_sim_time" }

-- Trains for cfg.epochs epochs; returns { log = rows, best = row, run_dir = path, trainer = t }.
function Trainer:fit()
  local c = self.cfg
  local rd = mpi.open_dir(rundir, c, self)
  local log, start = rd.log, rd.epoch + 1
  local best = rd.best
  if start == 1 and #log == 0 then
    -- trained feedback: the pre-training epochs (forward weights untouched)
    local fb = self:feedback_phase(0)
    if fb then rd.wall = (rd.wall or 0) + fb.wall end
    -- too little pre-training leaves the feedback far from Condition 2 and the controlled
    -- dynamics often unstable: say so (results.md, "Table 1 at a small budget")
    if fb and fb.condition2 >= 0 and fb.condition2 < 0.5 and self.c2_x then
      self.warnings = self.warnings or {}
      local w = string.format("after %d feedback pre-training epoch(s) Condition 2 is %.2f (1 is " ..
        "ideal); the feedback may not yet stabilise the controlled dynamics (more epochs_fb?)",
        fb.epochs, fb.condition2)
      self.warnings[#self.warnings + 1] = w
      io.stderr:write("dfc.train: warning: ", w, "\n")
    end
    local vl, ve = self:evaluate(self.task.valid)
    local tl, te = self:evaluate(self.task.test)
    local row = { epoch = 0, train_loss = self:evaluate(self.task.train), valid_loss = vl,
      valid_error = ve or 0, test_loss = tl, test_error = te or 0, wall_seconds = 0,
      samples_per_second = 0, mean_steps = 0, mean_rhs_evals = 0, dropped_samples = 0,
      mean_sim_time = 0 }
    self:feedback_columns(row, fb)
    if self.ms then self:measure_means(row, 0) end -- none yet: NaN
    log[#log + 1] = row
    best = row
    rd:write_log(self:log_columns(), log)
    if fb and c.checkpoint then rd:save(self, 0, log, best, rd.wall) end
  end
  local n_batches = self:batches_per_epoch()
  local total_wall = rd.wall or 0
  local div = divergence.new(c, log[1] and log[1].train_loss)
  for epoch = start, c.epochs do
    local bar = c.progress and progress.new(string.format("epoch %d/%d", epoch, c.epochs), n_batches, self.B) or nil
    local t0 = apical.clock()
    local loss_sum, steps, evals, dropped, nb, simt, samples = 0, 0, 0, 0, 0, 0, 0
    for Xb, Yb, _, count in self.task.train:batches { batch = self.B, shuffle = true, seed = c.seed,
        epoch = epoch, drop_last = c.drop_last } do
      local t, X, Y = self:minibatch(Xb, Yb, count)
      local l = t:batch_loss(X, Y)
      div:check_loss(epoch, nb + 1, l)
      local st = t:step(X, Y, (epoch - 1) * n_batches + nb + 1, epoch)
      nb, samples = nb + 1, samples + count
      loss_sum = loss_sum + l
      self:warn(div:check_steps(epoch, nb, st and c.solver ~= "euler" and st.steps))
      if st then
        steps, evals, simt = steps + st.steps, evals + st.rhs_evals, simt + st.t_reached
        dropped = dropped + (st.dropped or 0)
      end
      if bar then bar:update(nb, loss_sum / nb) end
    end
    local wall = apical.clock() - t0
    total_wall = total_wall + wall
    if bar then bar:finish(loss_sum / math.max(nb, 1)) end
    local fb = self:feedback_phase(epoch) -- trained feedback: extra_fb_epochs feedback epochs
    if fb then total_wall = total_wall + fb.wall end
    local vl, ve = self:evaluate(self.task.valid)
    local tl, te = self:evaluate(self.task.test)
    local row = { epoch = epoch, train_loss = loss_sum / math.max(nb, 1), valid_loss = vl,
      valid_error = ve or 0, test_loss = tl, test_error = te or 0, wall_seconds = wall,
      samples_per_second = samples / wall, mean_steps = steps / math.max(nb, 1),
      mean_rhs_evals = evals / math.max(nb, 1), dropped_samples = dropped,
      mean_sim_time = simt / math.max(nb, 1) }
    self:feedback_columns(row, fb)
    if self.ms then
      self:measure_means(row, epoch)
      rd:write_csv("measures.csv", self:measure_columns(), self.measure_rows)
    end
    log[#log + 1] = row
    local better = ve and (ve < best.valid_error) or (not ve and vl < best.valid_loss)
    if better or best.epoch == 0 then best = row end
    rd:write_log(self:log_columns(), log)
    if c.checkpoint then rd:save(self, epoch, log, best, total_wall) end
  end
  if self.task.image then self:write_reconstructions(rd) end
  rd.total_wall = total_wall
  rd:close()
  return { log = log, best = best, run_dir = rd.path, trainer = self, wall = total_wall,
    warnings = self.warnings or {} }
end

-- A warning (nil: none) on stderr and in the result's warnings.
function Trainer:warn(w)
  if not w then return end
  self.warnings = self.warnings or {}
  self.warnings[#self.warnings + 1] = w
  io.stderr:write("dfc.train: warning: ", w, "\n")
end

-- An image task (the autoencoder): the first `n` test images (top row) and the network's
-- feedforward outputs (bottom row) side by side, one pixel per matrix entry, written to
-- reconstructions.csv for `apical plot` (reconstructions.png).
function Trainer:write_reconstructions(rd, n)
  local h, w = self.task.image[1], self.task.image[2]
  local test = self.task.test
  n = math.min(n or 8, test:size())
  local out = apical.zeros { n, self.n_out }
  local X
  for Xb in test:subset(1, n):batches { batch = n } do X = apical.array(Xb) end
  self.dfc.forward { model = self.net.model, x = X, out = out }
  local rows = {}
  for part, src in ipairs { X, out } do
    for y = 1, h do
      local row = {}
      for k = 0, n - 1 do
        for x = 1, w do row[#row + 1] = src[k * h * w + (y - 1) * w + x] end
      end
      rows[(part - 1) * h + y] = row
    end
  end
  rd:write_matrix("reconstructions.csv", rows)
end

-- ---- trained feedback: the sleep phase (sleep.lua) ------------------------------------------

-- Checks the feedback-phase options (with feedback = "trained", or freeze_QL).
function M.check_feedback(c, level)
  level = level + 1
  local function bad(k, what)
    error(string.format("dfc.train: %s = %s must be %s", k, tostring(c[k]), what), level)
  end
  for _, k in ipairs { "k_p_fb", "sigma", "beta", "clip_fb", "eps_fb" } do
    if not (c[k] >= 0) then bad(k, ">= 0") end
  end
  for _, k in ipairs { "alpha_fb", "tau_v_fb", "dt_fb", "tau_A", "lr_fb", "lr_fb_init" } do
    if not (c[k] > 0) then bad(k, "> 0") end
  end
  if c.tmax_fb < 2 or c.tmax_fb % 1 ~= 0 then bad("tmax_fb", "an integer >= 2") end
  for _, k in ipairs { "epochs_fb", "extra_fb_epochs" } do
    if c[k] < 0 or c[k] % 1 ~= 0 then bad(k, "an integer >= 0") end
  end
  if c.optimizer_fb ~= "sgd" and c.optimizer_fb ~= "adam" then
    error(string.format("dfc.train: unknown optimizer_fb %q (sgd, adam)", c.optimizer_fb), level)
  end
  -- trained feedback works through any pathway (sleep.lua trains the Q<i> onto the apical
  -- compartments); freeze_QL sets Q_L = I, which only direct feedback's n_L x n_L Q_L can hold
  if c.freeze_QL and (c.feedback_pathway or "direct") ~= "direct" then
    error(string.format("dfc.train: freeze_QL acts on direct feedback (Q_L = I); feedback_pathway " ..
      "%q is not direct", c.feedback_pathway), level)
  end
end

-- Q_L = I for freeze_QL; with trained feedback the sleep network and the two feedback
-- optimisers (pre-training with lr_fb_init, later epochs with lr_fb), over Q_1..Q_L (Q_L left
-- out with freeze_QL), weight decay beta, one clipping norm over all Q_i.
function Trainer:setup_feedback()
  local c, net, L = self.cfg, self.net, self.L
  if c.freeze_QL then
    local n = net.sizes[L + 1]
    local I = apical.zeros { n, n }
    for j = 1, n do I[(j - 1) * n + j] = 1 end
    net.Q[L]:set_weights(I)
  end
  if c.feedback ~= "trained" then return end
  self.sleep_opts = { k_p_fb = c.k_p_fb, alpha_fb = c.alpha_fb,
    tau_v_fb = c.tau_v_fb, dt_fb = c.dt_fb, tmax_fb = c.tmax_fb, tau_A = c.tau_A,
    sigma = c.sigma, freeze_QL = c.freeze_QL, threads = c.fb_threads,
    stability_check = c.stability_check,
    pieces = mpi.size > 1 and mpi.pieces(c.batch, c.fb_threads) or nil }
  self.sleep = sleep.new(self.dfc, net, self.sleep_opts, "dfc.train")
  local proj = {}
  for i = 1, L do
    if not (c.freeze_QL and i == L) then proj[#proj + 1] = net.Q[i] end
  end
  if #proj == 0 then error("dfc.train: freeze_QL leaves no feedback weights to train (one layer)", 0) end
  self.fb_proj = proj
  local function make(lr)
    local o = { model = net.model, projections = proj, lr = lr, weight_decay = c.beta,
      clip = c.clip_fb > 0 and c.clip_fb or nil, clip_mode = c.clip_fb > 0 and "global" or "none" }
    if c.optimizer_fb == "adam" then
      o.beta1, o.beta2, o.eps = c.beta1, c.beta2, c.eps_fb
    end
    return apical.optim[c.optimizer_fb](o)
  end
  self.opt_fb_init = make(c.lr_fb_init)
  self.opt_fb = make(c.lr_fb)
  -- the run directory saves these next to the forward optimiser (rundir.lua)
  self.extra_optimisers = { { "opt_fb_init.", self.opt_fb_init }, { "opt_fb.", self.opt_fb } }
  -- Condition 2 for the log: on the first validation samples (fewer for wide outputs, whose
  -- Jacobians are large)
  local valid = self.task.valid
  local n = math.min(valid:size(), net.sizes[L + 1] > 100 and 4 or 32)
  if n > 0 then
    for X in valid:subset(1, n):batches { batch = n } do self.c2_x = apical.array(X) end
    self.c2_out = apical.zeros { n }
  end
end

-- One feedback epoch (number k, which fixes the shuffling and the noise seeds): every training
-- minibatch, a sleep-phase run, the feedback update (13), a step of the pre-training (init) or
-- the later optimiser. Returns { grad_norm = mean over minibatches of the norm of the Q update
-- before clipping and weight decay, batches = count }.
function Trainer:feedback_epoch(k, init, label)
  local c = self.cfg
  local opt = init and self.opt_fb_init or self.opt_fb
  local n_batches = self:batches_per_epoch()
  local bar = c.progress and label and progress.new(label, n_batches, self.B) or nil
  local nb, norm_sum = 0, 0
  for X, _, _, count in self.task.train:batches { batch = self.B, shuffle = true,
      seed = sleep.shuffle_seed(c.seed), epoch = k, drop_last = c.drop_last } do
    nb = nb + 1
    opt:zero()
    if count == self.B then
      self.sleep:gradient(X, opt, sleep.noise_seed(c.seed, k, nb))
    else -- a short last minibatch: its piece's gradient scaled to the mean over its samples
      self:short(count).sleep:gradient(X, opt, sleep.noise_seed(c.seed, k, nb), self.B / count)
    end
    opt:step()
    local sq = 0
    for _, p in ipairs(self.fb_proj) do sq = sq + opt:norms(p) ^ 2 end
    norm_sum = norm_sum + math.sqrt(sq)
    if bar then bar:update(nb, norm_sum / nb) end
  end
  if bar then bar:finish(norm_sum / math.max(nb, 1)) end
  return { grad_norm = norm_sum / math.max(nb, 1), batches = nb }
end

-- Mean Condition 2 over the logging samples (-1 when J J^T is singular for one of them: the
-- log and the checkpoint's state.lua hold finite numbers only); a pathway other than direct is
-- measured by its effective feedback.
function Trainer:condition2()
  if not self.c2_x then return 0 end
  local ok = pcall(self.dfc.condition2, { model = self.net.model, x = self.c2_x, out = self.c2_out,
    Q = self.net:ssa_feedback() })
  if not ok then return -1 end
  return self.c2_out:sum() / #self.c2_out
end

-- The feedback epochs that follow forward epoch `epoch` (0: the pre-training); nil unless the
-- feedback is trained. Feedback epochs are numbered 1..epochs_fb (pre-training), then
-- epochs_fb + (epoch - 1) extra_fb_epochs + 1, ...: a resumed run repeats the same ones.
function Trainer:feedback_phase(epoch)
  local c = self.cfg
  if c.feedback ~= "trained" then return nil end
  local t0 = apical.clock()
  local n = epoch == 0 and c.epochs_fb or c.extra_fb_epochs
  local first = epoch == 0 and 1 or c.epochs_fb + (epoch - 1) * c.extra_fb_epochs + 1
  local sum = 0
  for j = 1, n do
    local label = epoch == 0 and string.format("feedback pre-training %d/%d", j, n)
      or string.format("feedback %d/%d after epoch %d", j, n, epoch)
    sum = sum + self:feedback_epoch(first + j - 1, epoch == 0, label).grad_norm
  end
  local norm = n > 0 and sum / n or 0
  if c.single_phase and epoch > 0 then
    -- Q learnt during the forward epoch: the mean norm of its minibatch updates
    norm = (self.sp_norm_sum or 0) / math.max(self.sp_batches or 0, 1)
    self.sp_norm_sum, self.sp_batches = 0, 0
  end
  return { epochs = n, grad_norm = norm, condition2 = self:condition2(),
    wall = apical.clock() - t0 }
end

local fb_columns = { "fb_epochs", "fb_grad_norm", "fb_condition2", "fb_wall_seconds" }

function Trainer:log_columns()
  local cols = {}
  for _, k in ipairs(log_columns) do cols[#cols + 1] = k end
  if self.cfg.feedback == "trained" then
    for _, k in ipairs(fb_columns) do cols[#cols + 1] = k end
  end
  if self.ms then
    for _, k in ipairs(measure_main) do cols[#cols + 1] = k end
  end
  return cols
end

function Trainer:feedback_columns(row, fb)
  if not fb then return end
  row.fb_epochs, row.fb_grad_norm, row.fb_condition2, row.fb_wall_seconds =
    fb.epochs, fb.grad_norm, fb.condition2, fb.wall
end

function M.install(dfc)
  function dfc.trainer(cfg) return M.trainer(dfc, cfg, 2) end
  function dfc.train(cfg)
    -- a --set that no parameter took is refused now, not after a long run
    apical.check_params()
    local t = M.trainer(dfc, cfg, 2)
    local r = t:fit()
    M.summary(r)
    return r
  end
  dfc.train_defaults = M.defaults
end

-- A short summary of a finished run.
function M.summary(r)
  local c, best, last = r.trainer.cfg, r.best, r.log[#r.log]
  local cls = r.trainer.task.loss == "ce"
  print(string.format("%s, %s (%s%s), %d epochs in %.1f s", r.trainer.task.name, c.method,
    c.method:sub(1, 3) == "dfc" and c.method ~= "dfc-ssa" and c.solver or "analytic",
    c.method:sub(1, 3) == "dfc" and (", feedback " .. c.feedback) or "", last.epoch, r.wall))
  print(string.format("  final train loss %.6g, valid loss %.6g%s", last.train_loss, last.valid_loss,
    cls and string.format(", valid error %.2f %%", 100 * last.valid_error) or ""))
  if not r.trainer.task.test then
    print(string.format("  best valid epoch %d (no test set)", best.epoch))
  else
    print(string.format("  best valid epoch %d: test loss %.6g%s", best.epoch, best.test_loss,
      cls and string.format(", test error %.2f %%", 100 * best.test_error) or ""))
  end
  print("  run directory: " .. r.run_dir)
end

M.Trainer = Trainer
return M
