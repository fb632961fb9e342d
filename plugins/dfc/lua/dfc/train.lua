-- apical.plugins.dfc.train — the trainers: DFC (continuous update), DFC-SS (last state),
-- DFC-SSA (Lemma 1), with fixed (weight-product) or given feedback, and the DFA and BP
-- baselines; SGD or Adam with per-tensor clipping; validation, test at the best validation
-- epoch, a run directory (config.lua, log.csv, checkpoint/) and resuming from it.
local apical = require "apical"
local tasks = require "apical.plugins.dfc.tasks"
local rundir = require "apical.plugins.dfc.rundir"
local progress = require "apical.plugins.dfc.progress"

local M = {}

-- Every option with its default. A config may name nothing else.
M.defaults = {
  task = "student_teacher",      -- student_teacher, mnist, fashion_mnist, mnist_autoencoder
  task_opts = {},
  method = "dfc",                -- dfc, dfc-ss, dfc-ssa, bp, dfa
  feedback = "weight_product",   -- weight_product (Q_i = W_{i+1}^T..W_L^T, recomputed), given (Q as initialised)
  hidden = { 10, 10 },           -- hidden layer sizes (input and output sizes come from the task)
  activation = "tanh",
  output_activation = "linear",
  activations = {},              -- one per layer, overriding the two above (e.g. the autoencoder's)
  init = "xavier_normal",
  batch = 128,
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
  convergence_test = false,      -- drop samples whose simulation has not settled (MNIST configs)
  seed = 42,
  out_dir = "runs", name = "",
  checkpoint = true,
  resume = "",                   -- a run directory to continue
  progress = true,
  eval_batch = 0,                -- 0: batch
}

local methods = { dfc = true, ["dfc-ss"] = true, ["dfc-ssa"] = true, bp = true, dfa = true }
local solvers = { euler = true, ["cvode-bdf"] = true, ["cvode-adams"] = true }

-- Fills defaults, refuses unknown keys and bad values (naming them).
function M.resolve(cfg, level)
  level = (level or 1) + 1
  local c = {}
  for k, v in pairs(M.defaults) do c[k] = v end
  for k, v in pairs(cfg or {}) do
    if M.defaults[k] == nil then
      local names = {}
      for n in pairs(M.defaults) do names[#names + 1] = n end
      table.sort(names)
      error(string.format("dfc.train: unknown option %q (options: %s)", tostring(k), table.concat(names, ", ")), level)
    end
    if type(v) ~= type(M.defaults[k]) then
      error(string.format("dfc.train: option %s must be a %s, got %s", k, type(M.defaults[k]), type(v)), level)
    end
    c[k] = v
  end
  if not methods[c.method] then error(string.format("dfc.train: unknown method %q (dfc, dfc-ss, dfc-ssa, bp, dfa)", c.method), level) end
  if not solvers[c.solver] then error(string.format("dfc.train: unknown solver %q (euler, cvode-bdf, cvode-adams)", c.solver), level) end
  if c.feedback ~= "weight_product" and c.feedback ~= "given" then
    error(string.format("dfc.train: unknown feedback %q (weight_product, given)", c.feedback), level)
  end
  if c.optimizer ~= "sgd" and c.optimizer ~= "adam" then
    error(string.format("dfc.train: unknown optimizer %q (sgd, adam)", c.optimizer), level)
  end
  for _, k in ipairs { "lr", "lambda", "dt", "tau_v", "tau_u", "rtol", "atol" } do
    if not (c[k] > 0) then error(string.format("dfc.train: %s = %s must be > 0", k, tostring(c[k])), level) end
  end
  if c.tmax < 2 or c.tmax % 1 ~= 0 then error(string.format("dfc.train: tmax = %s must be an integer >= 2", tostring(c.tmax)), level) end
  if c.batch < 1 or c.batch % 1 ~= 0 then error(string.format("dfc.train: batch = %s must be a positive integer", tostring(c.batch)), level) end
  return c
end

local Trainer = {}
Trainer.__index = Trainer

-- A trainer: the network, its simulation, the optimiser, the data, the scratch arrays.
function M.trainer(dfc, cfg, level)
  local c = M.resolve(cfg, (level or 1) + 1)
  local task
  if c.task == "student_teacher" then
    local o = {}
    for k, v in pairs(c.task_opts) do o[k] = v end
    o.seed = o.seed or c.seed
    task = tasks.student_teacher(dfc, o)
  elseif tasks[c.task] then
    task = tasks[c.task](c.task_opts)
  else
    error(string.format("dfc.train: unknown task %q (student_teacher, mnist, fashion_mnist, mnist_autoencoder)", c.task), (level or 1) + 1)
  end
  local sizes = { task.n_in }
  for _, h in ipairs(c.hidden) do sizes[#sizes + 1] = h end
  sizes[#sizes + 1] = task.n_out
  local net = dfc.network { sizes = sizes, batch = c.batch, activation = c.activation,
    output_activation = c.output_activation, activations = #c.activations > 0 and c.activations or nil, tau_v = c.tau_v, tau_u = c.tau_u, k_p = c.k_p,
    alpha = c.alpha, controller = c.controller, init = c.init, seed = c.seed }
  local t = setmetatable({ cfg = c, dfc = dfc, task = task, net = net, L = net.L, B = c.batch,
    n_out = task.n_out }, Trainer)
  local lr = c.normalize_lr and c.lr / c.lambda or c.lr
  local oo = { model = net.model, projections = net.W, lr = lr,
    clip = c.clip > 0 and c.clip or nil, clip_mode = c.clip > 0 and "per_tensor" or "none" }
  if c.optimizer == "adam" then
    oo.beta1, oo.beta2, oo.eps = c.beta1, c.beta2, c.eps
  else
    oo.momentum = c.momentum
  end
  t.opt = apical.optim[c.optimizer](oo)
  t.rminus = apical.zeros { c.batch, task.n_out }
  t.rstar = apical.zeros { c.batch, task.n_out }
  t.mask = apical.zeros { c.batch }
  if c.method == "dfc" or c.method == "dfc-ss" then t.sim = net.model:compile() end
  t.run_opts = t:solver_options()
  return t
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
    local order = { "ctl" }
    for _, n in ipairs(self.net:layer_names(not c.inst_transmission)) do order[#order + 1] = n end
    o.order = order
    -- proactive controller: the apical compartments read u[k+1]; otherwise u[k]
    if not c.proactive then o.previous = { "ctl.u" } end
    o.accumulation = "all" -- the reference averages over all tmax points
  else
    o.solver, o.t_end, o.rtol, o.atol = c.solver, (c.tmax - 1) * c.dt, c.rtol, c.atol
    if c.settle_tol > 0 then o.settle_tol = c.settle_tol end
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

-- Adds the method's descent direction for minibatch (X, Y) into the optimiser's buffers and
-- returns the simulation's statistics (or nil).
function Trainer:gradient(X, Y)
  local dfc, c, net, opt = self.dfc, self.cfg, self.net, self.opt
  local m = net.model
  if c.method == "bp" then
    dfc.bp { model = m, x = X, y = Y, loss = self.task.loss, optim = opt }
    return nil
  elseif c.method == "dfa" then
    dfc.dfa { model = m, x = X, y = Y, loss = self.task.loss, optim = opt }
    return nil
  end
  if c.feedback == "weight_product" then dfc.weight_product { model = m } end
  self:targets(X, Y)
  if c.method == "dfc-ssa" then
    dfc.ssa { model = m, x = X, target = self.rstar, alpha = c.alpha, optim = opt }
    return nil
  end
  local sim = self.sim
  sim:set_input("x", X)
  sim:set_input("target", self.rstar)
  local out = sim:run(self.run_opts)
  local stats = out.stats
  if c.convergence_test then
    dfc.convergence { model = m, sim = sim, rminus = self.rminus, alpha = c.alpha, out = self.mask }
    local kept = self.mask:sum()
    stats.dropped = self.B - kept
    if kept < self.B then
      -- the update without the samples that did not settle
      sim:set_sample_weights(self.mask)
      if c.method == "dfc" then sim:run(self.run_opts) end
    end
  end
  local T = (c.tmax - 1) * c.dt
  if c.method == "dfc" and c.solver ~= "euler" and stats.t_reached < T * (1 - 1e-12) then
    -- stopped early once settled: the rest of the window contributes the settled state's rule
    local ts = stats.t_reached
    opt:add_from_sim(sim, -2 / self.B * ts / T)
    sim:accumulate_state()
    opt:add_from_sim(sim, -2 / self.B * (T - ts) / T)
  else
    if c.method == "dfc-ss" then sim:accumulate_state() end
    opt:add_from_sim(sim, -2 / self.B)
  end
  if c.convergence_test then sim:set_sample_weights(nil) end
  return stats
end

-- One optimiser step on a minibatch.
function Trainer:step(X, Y)
  self.opt:zero()
  local stats = self:gradient(X, Y)
  self.opt:step()
  return stats
end

-- Loss and error (classification: fraction misclassified) of the feedforward network over a
-- dataset.
function Trainer:evaluate(ds)
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
  local rd = rundir.open(c, self)
  local log, start = rd.log, rd.epoch + 1
  local best = rd.best
  if start == 1 then
    local vl, ve = self:evaluate(self.task.valid)
    local tl, te = self:evaluate(self.task.test)
    local row = { epoch = 0, train_loss = self:evaluate(self.task.train), valid_loss = vl,
      valid_error = ve or 0, test_loss = tl, test_error = te or 0, wall_seconds = 0,
      samples_per_second = 0, mean_steps = 0, mean_rhs_evals = 0, dropped_samples = 0,
      mean_sim_time = 0 }
    log[#log + 1] = row
    best = row
    rd:write_log(log_columns, log)
  end
  local n_batches = self.task.train:size() // self.B
  local total_wall = rd.wall or 0
  for epoch = start, c.epochs do
    local bar = c.progress and progress.new(string.format("epoch %d/%d", epoch, c.epochs), n_batches, self.B) or nil
    local t0 = apical.clock()
    local loss_sum, steps, evals, dropped, nb, simt = 0, 0, 0, 0, 0, 0
    for X, Y in self.task.train:batches { batch = self.B, shuffle = true, seed = c.seed, epoch = epoch, drop_last = true } do
      local l = self:batch_loss(X, Y)
      local st = self:step(X, Y)
      nb = nb + 1
      loss_sum = loss_sum + l
      if st then
        steps, evals, simt = steps + st.steps, evals + st.rhs_evals, simt + st.t_reached
        dropped = dropped + (st.dropped or 0)
      end
      if bar then bar:update(nb, loss_sum / nb) end
    end
    local wall = apical.clock() - t0
    total_wall = total_wall + wall
    if bar then bar:finish(loss_sum / math.max(nb, 1)) end
    local vl, ve = self:evaluate(self.task.valid)
    local tl, te = self:evaluate(self.task.test)
    local row = { epoch = epoch, train_loss = loss_sum / math.max(nb, 1), valid_loss = vl,
      valid_error = ve or 0, test_loss = tl, test_error = te or 0, wall_seconds = wall,
      samples_per_second = nb * self.B / wall, mean_steps = steps / math.max(nb, 1),
      mean_rhs_evals = evals / math.max(nb, 1), dropped_samples = dropped,
      mean_sim_time = simt / math.max(nb, 1) }
    log[#log + 1] = row
    local better = ve and (ve < best.valid_error) or (not ve and vl < best.valid_loss)
    if better or best.epoch == 0 then best = row end
    rd:write_log(log_columns, log)
    if c.checkpoint then rd:save(self, epoch, log, best, total_wall) end
  end
  rd.total_wall = total_wall
  return { log = log, best = best, run_dir = rd.path, trainer = self, wall = total_wall }
end

function M.install(dfc)
  function dfc.trainer(cfg) return M.trainer(dfc, cfg, 2) end
  function dfc.train(cfg)
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
  print(string.format("  best valid epoch %d: test loss %.6g%s", best.epoch, best.test_loss,
    cls and string.format(", test error %.2f %%", 100 * best.test_error) or ""))
  print("  run directory: " .. r.run_dir)
end

M.Trainer = Trainer
return M
