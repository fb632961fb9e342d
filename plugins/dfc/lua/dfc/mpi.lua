-- apical.plugins.dfc.mpi — data-parallel training over MPI ranks (docs/scaling.md). Under
-- `mpirun -np N build/bin/apical run MODEL` every rank builds the same trainer, reads the same
-- data and shuffles it identically; each minibatch is cut into N contiguous shards of rows
-- (B // N each, the first B % N ranks one more), each rank simulates its own shard (forward
-- phase, sleep phase; split further over `threads` / `fb_threads`), the gradient buffers are
-- summed over the ranks in rank order (apical.core.comm_sum_grad: the same bits on every rank)
-- and every rank takes the same optimiser step. Each rank makes the feedforward output and
-- targets of its rows only; a short last minibatch (drop_last = false) is cut over the ranks
-- like a full one. The training loss of each minibatch comes from the shards too; validation and test batches are shared out in contiguous blocks. Only rank 0 writes the run directory and draws progress bars.
--
-- The split reuses the one of threads = N: a part of the batch is a replica of the network
-- for its rows, its accumulators summing over its samples; the parts' sums add up to the
-- whole batch's, so N ranks give the one-process result up to the rounding of the sums.
-- The sleep phase's parts keep their noise streams numbered over all ranks (rank r's part k
-- of fb_threads is part r * fb_threads + k), so N ranks x fb_threads T draw the noise of one
-- process with fb_threads = N T when N T divides the batch.
local core = require "apical.core"

local M = {}

M.rank = core.comm_rank() -- 0-based
M.size = core.comm_size()

-- The rows of a minibatch of B samples that rank `rank` of `ranks` simulates, cut into
-- `threads` parts: { { first = row (1-based), b = rows, index = part number over all ranks } }.
function M.pieces(B, threads, ranks, rank)
  ranks, rank = ranks or M.size, rank or M.rank
  local q, e = B // ranks, B % ranks
  local first = rank * q + math.min(rank, e) + 1
  local b = q + (rank < e and 1 or 0)
  local tq, te = b // threads, b % threads
  local out = {}
  for k = 0, threads - 1 do
    out[k + 1] = { first = first + k * tq + math.min(k, te), b = tq + (k < te and 1 or 0),
      index = rank * threads + k + 1 }
  end
  return out
end

-- The pieces of a short last minibatch of `count` samples (drop_last = false) that this rank
-- simulates: its rows cut into `threads` parts as a full minibatch's are (the same part numbers,
-- so the sleep phase draws the same noise streams), the empty ones left out. With count < ranks
-- x threads some parts have no rows: a rank with none simulates nothing and adds zero.
function M.short_pieces(count, threads)
  local out = {}
  for _, p in ipairs(M.pieces(count, threads)) do
    if p.b > 0 then out[#out + 1] = p end
  end
  return out
end

-- The configuration's checks that depend on the number of ranks (dfc.train's resolve): ranks
-- given must be the number started; every part needs a sample; the options the split cannot
-- serve are refused. Sets c.ranks (config.lua records it; a resumed run must keep it).
function M.check(c, given, level)
  level = level + 1
  local n = M.size
  if given ~= nil and given ~= n then
    error(string.format("dfc.train: ranks = %s, but %d process%s started (ranks is set by the MPI " ..
      "launcher: mpirun -np N)", tostring(given), n, n == 1 and " was" or "es were"), level)
  end
  c.ranks = n
  if c.mpi_cvode ~= "local" and c.mpi_cvode ~= "global" then
    error(string.format("dfc.train: unknown mpi_cvode %q (local: each rank integrates its shard " ..
      "with its own steps; global: one integration across the ranks)", tostring(c.mpi_cvode)), level)
  end
  if n == 1 then return end
  if M.global_cvode(c) then
    if c.threads > 1 then
      error(string.format("dfc.train: mpi_cvode = \"global\" integrates each rank's shard as one " ..
        "part of one state; threads = %d would split it further (use threads = 1, or mpi_cvode = " ..
        "\"local\")", c.threads), level)
    end
    if c.linear_solver == "dense" then
      error("dfc.train: mpi_cvode = \"global\" needs linear_solver = \"krylov\" or the default " ..
        "(a dense Newton matrix would need the whole state on every rank)", level)
    end
  end
  for _, k in ipairs { "threads", "fb_threads" } do
    if n * c[k] > c.batch then
      error(string.format("dfc.train: %d ranks x %s = %d leaves a part of the batch of %d samples " ..
        "empty", n, k, c[k], c.batch), level)
    end
  end
  if c.single_phase then
    error("dfc.train: single_phase runs in one process (one noise stream per minibatch); " ..
      string.format("%d MPI ranks were started", n), level)
  end
  if (c.method == "dfc" or c.method == "dfc-ss") and c.feedback_pathway ~= "direct" then
    error(string.format("dfc.train: %d MPI ranks split each simulation, which needs direct feedback " ..
      "(feedback_pathway is %q)", n, c.feedback_pathway), level)
  end
end

-- One CVODE integration across the ranks (mpi_cvode = "global" for a simulated method): each
-- rank's simulation is its shard's part of one state whose norms, error test, Krylov products
-- and steps are global (the run option across_ranks: engine/src/nvector_fast.c), so that the
-- ranks take the steps one process takes for the whole minibatch.
function M.global_cvode(c)
  return M.size > 1 and c.mpi_cvode == "global" and c.solver ~= "euler" and
    (c.method == "dfc" or c.method == "dfc-ss")
end

-- The sum over ranks of the numbers in the list `v` (in rank order); returns a new list.
function M.sum(v)
  local apical = require "apical"
  local a = apical.zeros { math.max(#v, 1) }
  for i, x in ipairs(v) do a[i] = x end
  core.comm_sum(a)
  local out = {}
  for i = 1, #v do out[i] = a[i] end
  return out
end

local function sum_grad(opt)
  local ok, err = core.comm_sum_grad(opt)
  if not ok then error("dfc.train: summing the gradients over the MPI ranks: " .. tostring(err), 0) end
end

-- The simulation statistics of all ranks' parts: means of the counts over every part, the
-- earliest t_reached, the total of dropped samples. stats is nil on a rank with no rows (of a
-- short last minibatch): it adds nothing, but takes part in the sum as every rank must.
local counted = { "steps", "rhs_evals", "lin_iters", "nonlin_iters", "err_test_fails",
  "conv_fails", "jac_evals", "wall_seconds" }
local function reduce_stats(stats, parts)
  local own = stats or {}
  local v = { parts, own.dropped or 0 }
  for _, k in ipairs(counted) do v[#v + 1] = (own[k] or 0) * parts end
  for r = 0, M.size - 1 do v[#v + 1] = r == M.rank and (own.t_reached or math.huge) or 0 end
  v = M.sum(v)
  local out = {}
  for k, x in pairs(own) do out[k] = x end
  for i, k in ipairs(counted) do out[k] = v[2 + i] / v[1] end
  out.dropped = v[2]
  out.t_reached = math.huge
  for r = 1, M.size do out.t_reached = math.min(out.t_reached, v[2 + #counted + r]) end
  return out
end

-- bp, dfa, dfc-ssa on this rank's rows: the kernels take the minibatch-mean over the rows they
-- get, so scale b / B makes the shards' sum the whole minibatch's. dfc-ssa makes the targets (3)
-- of the shard's rows from its own feedforward pass with the minibatch's 1/B (the kernel's
-- batch: in mode "mean" they depend on the minibatch's size), as one process makes them from
-- the labels. A rank with no rows (of a short minibatch) adds nothing.
local function analytic_gradient(t, X, Y)
  local dfc, c, sh = t.dfc, t.cfg, t.shard
  local m = t.net.model
  if c.feedback == "weight_product_tracking" and c.method == "dfc-ssa" then t.net:set_weight_product() end
  if sh.b == 0 then return end
  local x, y, scale = X:rows(sh.first, sh.b, sh.X), Y:rows(sh.first, sh.b, sh.Y), sh.b / t.B
  if c.method == "bp" or c.method == "dfa" then
    dfc[c.method] { model = m, x = x, y = y, loss = t.task.loss, optim = t.opt, scale = scale }
    return
  end
  dfc.ssa { model = m, x = x, y = y, loss = t.task.loss, lambda = c.lambda, mode = c.target_mode,
    batch = c.target_mode == "mean" and t.B or nil, alpha = c.alpha, optim = t.opt,
    Qeff = t.net:ssa_feedback(), scale = scale }
end

-- The minibatch's training loss (before the update) from this rank's rows: the trainer's own
-- batch_loss on a view of the trainer whose batch is the shard, its mean weighted by b / B.
local function shared_batch_loss(t, batch_loss, X, Y)
  local sh, l = t.shard, 0
  if sh.b > 0 then
    local view = setmetatable({ B = sh.b, rminus = sh.R }, { __index = t })
    l = batch_loss(view, X:rows(sh.first, sh.b, sh.X), Y:rows(sh.first, sh.b, sh.Y))
  end
  return M.sum { l * sh.b }[1] / t.B
end

-- Evaluation over a dataset shared out in contiguous blocks of whole batches.
local function shared_evaluate(t, evaluate, ds)
  local c = t.cfg
  local B = c.eval_batch > 0 and c.eval_batch or t.B
  local n = ds:size()
  local batches = (n + B - 1) // B
  local q, e = batches // M.size, batches % M.size
  local first = (M.rank * q + math.min(M.rank, e)) * B
  local count = math.max(0, math.min(n - first, (q + (M.rank < e and 1 or 0)) * B))
  local loss, err = 0, nil
  if count > 0 then loss, err = evaluate(t, ds:subset(first + 1, count)) end
  local v = M.sum { loss * count, (err or 0) * count, count }
  if v[3] == 0 then return evaluate(t, ds) end
  return v[1] / v[3], (t.task.loss == "ce") and v[2] / v[3] or nil
end

-- A sleep phase whose gradient is summed over the ranks: the feedback epochs zero the optimiser
-- before each minibatch, so the sum of what each rank added is the minibatch's gradient.
local function summed_sleep(s)
  local sg = s.gradient
  function s.gradient(self, X, opt, seed, scale)
    local st = sg(self, X, opt, seed, scale)
    sum_grad(opt)
    return st
  end
end

-- Makes trainer t data-parallel over the ranks (nothing with one process): its gradient,
-- evaluation and sleep phase act on this rank's rows and sum over the ranks. level: the
-- caller's error level (the user's line).
function M.attach(t, level)
  if M.size == 1 then return t end
  local c = t.cfg
  local apical = require "apical"
  t.shard = M.shard(t, c.batch)
  local short = c.drop_last and 0 or t.task.train:size() % c.batch
  if M.global_cvode(c) and short > 0 and short < M.size then
    error(string.format("dfc.train: mpi_cvode = \"global\" integrates every rank's rows as one " ..
      "state, but the short last minibatch (drop_last = false) has %d sample%s for %d ranks (use " ..
      "drop_last = true, fewer ranks, or mpi_cvode = \"local\")", short, short == 1 and "" or "s",
      M.size), (level or 1) + 1)
  end
  -- one BLAS thread per rank unless OPENBLAS_NUM_THREADS says otherwise (ranks share the cores)
  if not os.getenv("OPENBLAS_NUM_THREADS") then
    t.blas_default = 1
    apical.blas_threads(1)
    if t.sleep then t.sleep.blas_default = 1 end
  end
  if t.run_opts and M.global_cvode(c) then
    t.run_opts.across_ranks = true
    -- the convergence test's second simulation is one integration across the ranks too: every
    -- rank runs it when a sample of any rank did not settle (one part per rank: threads = 1)
    function t.any_dropped(_, n) return M.sum { n }[1] > 0 end
  end
  local gradient, evaluate, batch_loss = t.gradient, t.evaluate, t.batch_loss
  function t.gradient(self, X, Y)
    local stats
    if c.method == "dfc" or c.method == "dfc-ss" then
      if #self.parts > 0 then
        stats = gradient(self, X, Y)
      elseif c.feedback == "weight_product_tracking" then
        self.net:set_weight_product() -- (no rows of a short minibatch: Q as the other ranks have it)
      end
      stats = reduce_stats(stats, #self.parts)
    else
      analytic_gradient(self, X, Y)
    end
    sum_grad(self.opt)
    return stats
  end
  function t.evaluate(self, ds) return shared_evaluate(self, evaluate, ds) end
  function t.batch_loss(self, X, Y) return shared_batch_loss(self, batch_loss, X, Y) end
  if t.sleep then summed_sleep(t.sleep) end
  return t
end

-- The rows of a minibatch of B samples this rank holds: { first, b, and arrays of b rows for
-- its inputs X, labels Y and feedforward output R } (no arrays when b = 0).
function M.shard(t, B)
  local apical = require "apical"
  local p = M.pieces(B, 1)[1]
  local sh = { first = p.first, b = p.b }
  if p.b > 0 then
    sh.X, sh.Y = apical.zeros { p.b, t.task.n_in }, apical.zeros { p.b, t.n_out }
    sh.R = apical.zeros { p.b, t.n_out }
  end
  return sh
end

-- Trainer:short's view v of a short last minibatch of `count` samples (before its metatable is
-- set): this rank's shard of it, and its sleep phase summed over the ranks; a rank with no rows
-- of it gets a sleep phase that adds nothing but takes part in the sum.
function M.attach_short(t, v, count)
  if M.size == 1 then return end
  v.shard = M.shard(t, count)
  if t.sleep then
    v.sleep = v.sleep or { gradient = function() end }
    summed_sleep(v.sleep)
  end
end

-- A task farm: trials 1..n spread over the ranks, trial i on rank (i - 1) % N, one at a time,
-- each run as one process (a dfc.train inside it splits nothing and writes its own run
-- directory). run(i) returns a list of K numbers (or nil). Returns, on every rank, results[i]
-- (nil for a trial that returned nothing). With one process: the trials in order.
function M.farm(n, K, run)
  local size, rank = M.size, M.rank
  local mine = {}
  for i = 1, n do
    if (i - 1) % size == rank then
      M.size, M.rank = 1, 0
      local ok, r = pcall(run, i)
      M.size, M.rank = size, rank
      if not ok then error(r, 0) end
      mine[i] = r
    end
  end
  if size == 1 then return mine end
  -- every trial's numbers from the rank that ran it (the others add zeros)
  local v = {}
  for i = 1, n do
    local r = mine[i]
    v[#v + 1] = r and 1 or 0
    for k = 1, K do v[#v + 1] = r and r[k] or 0 end
  end
  v = M.sum(v)
  local out = {}
  for i = 1, n do
    local base = (i - 1) * (K + 1)
    if v[base + 1] == 1 then
      local r = {}
      for k = 1, K do r[k] = v[base + 1 + k] end
      out[i] = r
    end
  end
  return out
end

-- Waits until every rank gets here.
function M.barrier()
  if M.size > 1 then M.sum { 0 } end
end

-- The run directory: rank 0's (it holds the lock and, resuming, puts the newest complete
-- checkpoint in place); the other ranks then read a resumed run's checkpoint and write nothing.
function M.open_dir(rundir, c, t)
  if M.rank == 0 then
    local d = rundir.open(c, t)
    if c.resume ~= "" then M.barrier() end
    return d
  end
  local d
  if c.resume ~= "" then
    M.barrier()
    d = rundir.open(c, t, true)
  else
    d = { log = {}, epoch = 0, wall = 0, path = "(rank 0's run directory)" }
  end
  local function nothing() end
  d.write_csv, d.write_log, d.write_matrix, d.save, d.close = nothing, nothing, nothing, nothing, nothing
  return d
end

return M
