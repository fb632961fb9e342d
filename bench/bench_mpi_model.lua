-- bench/bench_mpi_model.lua — the cluster model of docs/scaling.md: per-minibatch time of DFC
-- (continuous, Euler, the paper's MNIST configuration) at N ranks,
--     T(N) = t_shard(ceil(128 / N)) + t_whole + t_sum(N),
-- t_shard(b): one core's time for a minibatch of b samples (measured here: models/mnist.lua
-- with batch = b, one thread; it includes the optimiser's step, which every rank takes),
-- t_whole: the work every rank does on the whole minibatch of 128 (the feedforward pass of the
-- targets; measured here as the difference of a batch-128 forward pass),
-- t_sum(N): the sum over ranks of the 2.7 MB update as comm.c does it (reduce-scatter, then
-- allgather): 2 (N - 1) latency + 2 (N - 1) / N * bytes / bandwidth, at the interconnects below.
-- Parallel efficiency E(N) = T(1) / (N T(N)).
--   flock /tmp/apical-bench.lock build/bin/apical run bench/bench_mpi_model.lua [--set reps=3]
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params { reps = 3, n_train = 512, solver = "euler" }
local exe = "build/bin/apical"
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))

local function median(t)
  table.sort(t)
  local m = #t
  return m % 2 == 1 and t[(m + 1) // 2] or (t[m // 2] + t[m // 2 + 1]) / 2
end

local n = 0
-- seconds per minibatch of b samples on one core
local function t_shard(b)
  local ts = {}
  for _ = 1, p.reps do
    n = n + 1
    local out = string.format("%s/%d", tmp, n)
    local cmd = string.format("OPENBLAS_NUM_THREADS=1 %s run models/mnist.lua --set method=dfc " ..
      "--set solver=%s --set epochs=1 --set n_train=%d --set batch=%d --set progress=false " ..
      "--set out_dir=%s > %s.txt 2>&1", exe, p.solver, math.max(p.n_train, 4 * b), b, out, out)
    assert(os.execute(cmd), cmd)
    local pp = io.popen("ls -d " .. out .. "/*/")
    local dir = pp:read("l"):gsub("/$", "")
    pp:close()
    local cols, last
    for line in io.lines(dir .. "/log.csv") do
      local f = {}
      for x in line:gmatch("[^,]+") do f[#f + 1] = x end
      if not cols then cols = f else last = f end
    end
    for j, c in ipairs(cols) do
      if c == "samples_per_second" then ts[#ts + 1] = b / tonumber(last[j]) end
    end
  end
  return median(ts)
end

-- the whole-minibatch feedforward pass every rank repeats (targets), one core
local function t_whole()
  apical.blas_threads(1)
  local net = dfc.network { sizes = { 784, 256, 256, 256, 10 }, batch = 128, seed = 1 }
  local x, out = apical.zeros { 128, 784 }, apical.zeros { 128, 10 }
  for i = 1, #x do x[i] = math.sin(i) end
  local ts = {}
  for _ = 1, 7 do
    local t0 = apical.clock()
    for _ = 1, 20 do dfc.forward { model = net.model, x = x, out = out } end
    ts[#ts + 1] = (apical.clock() - t0) / 20
  end
  return median(ts)
end

local bytes = 8 * (784 * 256 + 256 * 256 * 2 + 256 * 10 + 256 * 3 + 10)
local nets = {
  { "InfiniBand HDR (1.5 us, 12.5 GB/s)", 1.5e-6, 12.5e9 },
  { "100 GbE RoCE (5 us, 11 GB/s)", 5e-6, 11e9 },
  { "10 GbE TCP (50 us, 1.1 GB/s)", 50e-6, 1.1e9 },
}
local shards, tb = {}, {}
for _, N in ipairs { 1, 2, 4, 8, 16, 32, 64, 128 } do
  local b = (128 + N - 1) // N
  if not tb[b] then tb[b] = t_shard(b) end
  shards[#shards + 1] = { N = N, b = b }
end
local tw = t_whole()
print(string.format("update: %d bytes; t_whole (batch-128 forward pass, one core) = %.2f ms", bytes, 1e3 * tw))
print("| N | samples/rank | t_shard ms |" .. (function()
  local s = {}
  for _, net in ipairs(nets) do s[#s + 1] = " " .. net[1] .. ": t_sum ms, T ms, E |" end
  return table.concat(s)
end)())
print("|---|---|---|" .. string.rep("---|", #nets))
local T1 = tb[128]
for _, s in ipairs(shards) do
  local line = string.format("| %d | %d | %.1f |", s.N, s.b, 1e3 * tb[s.b])
  for _, net in ipairs(nets) do
    local ts = s.N == 1 and 0 or 2 * (s.N - 1) * net[2] + 2 * (s.N - 1) / s.N * bytes / net[3]
    local T = tb[s.b] + (s.N == 1 and 0 or tw) + ts
    line = line .. string.format(" %.2f, %.1f, %.0f %% |", 1e3 * ts, 1e3 * T, 100 * T1 / (s.N * T))
  end
  print(line)
  io.stdout:flush()
end
os.execute("rm -rf '" .. tmp .. "'")
