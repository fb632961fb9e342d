-- bench/bench_mpi_model.lua — the cluster model of docs/scaling.md ("A cluster model"): the
-- parallel efficiency of DFC continuous (Euler, the paper's fixed-feedback MNIST configuration,
-- 784-256-256-256-10, batch 128) at N ranks with one core each,
--     T(N) = t_rank(N) + t_sum(N),      E(N) = T(1) / (N T(N)).
-- t_rank(N): one minibatch as rank 0 of N does it (the rank with the most rows), MEASURED here
--   in one process: the trainer is built as rank 0 of N sees it (dfc.mpi's size and rank set
--   before dfc.trainer), so it runs that rank's own code path — its training loss and output
--   targets, the copy of the weights into its shard's network, its shard's simulation, the
--   accumulated update, the optimiser's step on all 335k parameters — with every sum over the
--   ranks a no-op (one process). Median over `blocks` blocks of `batches` consecutive
--   minibatches after a warm-up one (a rank's data stay warm in the caches from minibatch to
--   minibatch), the blocks of the N in rising, then falling order (the machine's speed
--   drifts), one core, one OpenBLAS thread.
-- t_sum(N): the sum of the 2.7 MB update over the ranks as engine/src/comm.c does it (a
--   reduce-scatter, then an allgather): the local work (packing, adding, unpacking) as measured
--   at 2 ranks on this machine (`mpirun -np 2`, shared memory; its transfer included, so an
--   upper bound), plus the network: 2 (N - 1) latencies + 2 (N - 1) / N x bytes / bandwidth at
--   the interconnects' ASSUMED latency and bandwidth (typical MPI point-to-point figures).
-- Not modelled: the convergence test's second simulation (convergence_test = false here: one
--   process reruns when any of the 128 samples did not settle, N ranks wait for the slowest,
--   which reruns on the same condition, so the fraction of reruns is the same for every N),
--   the evaluation (split over the ranks as well), load imbalance (none: Euler takes the same
--   steps for every sample, and N divides 128).
--   OPENBLAS_NUM_THREADS=1 flock /tmp/apical-bench.lock build/bin/apical run bench/bench_mpi_model.lua [--set batches=5]
local apical = require "apical"
local dfc = apical.plugin "dfc"
local core = require "apical.core"
local mpi = require "apical.plugins.dfc.mpi"

local p = apical.params { batches = 5, blocks = 2, ranks = "1,2,4,8,16,32", sum_reps = 21, role = "model",
  exe = "build/bin/apical" }

local function median(t)
  table.sort(t)
  local m = #t
  return m % 2 == 1 and t[(m + 1) // 2] or (t[m // 2] + t[m // 2 + 1]) / 2
end

-- The trainer of the paper's fixed-feedback DFC configuration on MNIST, Euler, as rank 0 of N.
local function trainer(N)
  mpi.size, mpi.rank = N, 0
  local c = dfc.paper.config("mnist", "dfc", "weight_product")
  c.solver, c.epochs, c.progress, c.convergence_test = "euler", 1, false, false
  -- the paper's settings as defaults: the sleep phase's are not read with fixed feedback
  local ok, t = pcall(dfc.trainer, { task = "mnist", task_opts = { n_train = 128 * (p.batches + 1) },
    defaults = c })
  mpi.size, mpi.rank = core.comm_size(), core.comm_rank()
  if not ok then error(t, 0) end
  return t
end

-- Seconds of one minibatch (training loss, then the step) on rank 0 of each N in `Ns`:
-- medians over `blocks` blocks per N of `batches` consecutive minibatches each (a rank runs its
-- shard minibatch after minibatch, its weights and state warm in the caches; the first
-- minibatch of a block is a warm-up, untimed), the blocks in rising and then falling order of N
-- (the machine's speed drifts: every N sees the same stretches of time).
local function t_ranks(Ns)
  apical.blas_threads(1)
  local ts, batches = {}, {}
  for k, N in ipairs(Ns) do
    ts[k] = { t = trainer(N), times = {} }
  end
  for X, Y in ts[1].t.task.train:batches { batch = 128, shuffle = true, seed = 42, epoch = 1 } do
    batches[#batches + 1] = { X, Y }
  end
  for blk = 1, p.blocks do
    for j = 1, #ts do
      local r = ts[blk % 2 == 1 and j or #ts + 1 - j]
      for i, b in ipairs(batches) do
        local t0 = apical.clock()
        r.t:batch_loss(b[1], b[2])
        r.t:step(b[1], b[2])
        if i > 1 then r.times[#r.times + 1] = apical.clock() - t0 end
      end
    end
  end
  local out = {}
  for k, r in ipairs(ts) do out[k] = median(r.times) end
  return out
end

-- Run under `mpirun -np 2` with role=sum: the sum of the MNIST update over the 2 ranks.
local function sum_role()
  local t = trainer(1)
  local ts = {}
  for i = 1, p.sum_reps do
    local t0 = apical.clock()
    assert(core.comm_sum_grad(t.opt))
    if i > 1 then ts[#ts + 1] = apical.clock() - t0 end
  end
  if core.comm_rank() == 0 then print(string.format("t_sum2 %.6f", median(ts))) end
end

if p.role == "sum" then return sum_role() end

local exe = p.exe
local t_local, why = nil, "not measured (apical built without MPI)"
if core.comm_has_mpi() then
  why = "not measured (mpirun -np 2 failed)"
  local script = debug.getinfo(1, "S").source:sub(2)
  local f = io.popen(string.format("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " ..
    "OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -np 2 %s run %s --set role=sum --set sum_reps=%d " ..
    "2>/dev/null", exe, script, p.sum_reps))
  for line in f:lines() do t_local = tonumber(line:match("^t_sum2 (%S+)")) or t_local end
  f:close()
end
local bytes = 8 * (784 * 256 + 256 * 256 * 2 + 256 * 10 + 256 * 3 + 10)
print(string.format("update: %d bytes; sum over 2 ranks on this machine (shared memory): %s", bytes,
  t_local and string.format("%.2f ms", 1e3 * t_local) or why))
t_local = t_local or 0

local nets = {
  { "InfiniBand HDR (1.5 us, 12.5 GB/s)", 1.5e-6, 12.5e9 },
  { "100 GbE RoCE (5 us, 11 GB/s)", 5e-6, 11e9 },
  { "10 GbE TCP (50 us, 1.1 GB/s)", 50e-6, 1.1e9 },
}
local head = "| N | rows/rank | t_rank ms |"
for _, net in ipairs(nets) do head = head .. " " .. net[1] .. ": t_sum ms, T ms, E |" end
print(head)
print("|---|---|---|" .. string.rep("---|", #nets))
local Ns = {}
for N in p.ranks:gmatch("[^,]+") do Ns[#Ns + 1] = tonumber(N) end
if Ns[1] ~= 1 then error("bench_mpi_model: ranks must start with 1 (the baseline)", 0) end
local tr = t_ranks(Ns)
for k, N in ipairs(Ns) do
  local line = string.format("| %d | %d | %.1f |", N, (128 + N - 1) // N, 1e3 * tr[k])
  for _, net in ipairs(nets) do
    local ts = N == 1 and 0 or t_local + 2 * (N - 1) * net[2] + 2 * (N - 1) / N * bytes / net[3]
    local T = tr[k] + ts
    line = line .. string.format(" %.2f, %.1f, %.0f %% |", 1e3 * ts, 1e3 * T, 100 * tr[1] / (N * T))
  end
  print(line)
end
