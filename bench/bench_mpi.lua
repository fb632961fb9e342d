-- bench/bench_mpi.lua — data-parallel throughput on this machine (docs/scaling.md): MNIST
-- (models/mnist.lua, the paper's configurations) on a subset of the training set, one forward
-- epoch, each configuration run as 1 rank x 1 thread, 1 rank x 2 threads and 2 MPI ranks x 1
-- thread, interleaved, `reps` times; prints the median training throughput of each and the
-- ratios, and the largest relative difference of the epoch's log.csv numbers from 1 x 1.
--   flock /tmp/apical-bench.lock build/bin/apical run bench/bench_mpi.lua [--set reps=3]
-- Needs an MPI build (APICAL_MPI) and the MNIST data (scripts/get-data.sh). As root, OpenMPI
-- needs OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 in the environment.
local apical = require "apical"

local p = apical.params { reps = 3, mpiexec = "mpirun", only = "", out = "" }
local exe = "build/bin/apical"
local tmp = p.out ~= "" and p.out or os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))

-- name, --set options, the throughput measured (fwd: the forward epoch's samples_per_second;
-- fb: the feedback epoch's samples per fb_wall_seconds), n_train
local configs = {
  { "DFC, Euler (500 steps)", "--set method=dfc --set solver=euler", "fwd", 1280 },
  { "DFC, CVODE-BDF", "--set method=dfc --set solver=cvode-bdf", "fwd", 1280 },
  { "DFC, CVODE-BDF, mpi_cvode=global", "--set method=dfc --set solver=cvode-bdf --set mpi_cvode=global",
    "fwd", 1280 },
  { "DFC-SSA, trained feedback (sleep phase)",
    "--set method=dfc-ssa --set feedback=trained --set epochs_fb=0 --set extra_fb_epochs=1", "fb", 2560 },
  { "BP", "--set method=bp", "fwd", 25600 },
}
-- the three ways to use the two cores: a prefix (environment, launcher) and options
local modes = {
  { "1x1", "OPENBLAS_NUM_THREADS=1 ", "" },
  { "1x2", "", "--set threads=2" }, -- fb_threads = 2 for the sleep phase (run)
  { "2x1", p.mpiexec .. " --bind-to none -np 2 ", "" },
}

local n = 0
local function run(cfg, mode)
  n = n + 1
  local out = string.format("%s/%d", tmp, n)
  local cmd = string.format("%s%s run models/mnist.lua %s %s --set epochs=1 --set n_train=%d " ..
    "--set progress=false --set out_dir=%s > %s.txt 2>&1", mode[2], exe, cfg[2],
    cfg[3] == "fb" and mode[3]:gsub("threads", "fb_threads") or mode[3], cfg[4], out, out)
  if not os.execute(cmd) then error("failed: " .. cmd .. "\n" .. io.open(out .. ".txt"):read("a")) end
  local pp = io.popen("ls -d " .. out .. "/*/")
  local dir = pp:read("l"):gsub("/$", "")
  pp:close()
  local cols, rows = nil, {}
  for line in io.lines(dir .. "/log.csv") do
    local f = {}
    for x in line:gmatch("[^,]+") do f[#f + 1] = x end
    if not cols then cols = f else rows[#rows + 1] = f end
  end
  local row = {}
  for j, c in ipairs(cols) do row[c] = tonumber(rows[#rows][j]) end
  local rate = cfg[3] == "fwd" and row.samples_per_second or cfg[4] / row.fb_wall_seconds
  return rate, row
end

local timing = { wall_seconds = true, samples_per_second = true, fb_wall_seconds = true }
local function diff(a, b)
  local worst = 0
  for k, x in pairs(a) do
    if not timing[k] then
      local y = b[k]
      if x ~= y then worst = math.max(worst, math.abs(x - y) / math.max(math.abs(x), math.abs(y))) end
    end
  end
  return worst
end

local function median(t)
  table.sort(t)
  local m = #t
  return m % 2 == 1 and t[(m + 1) // 2] or (t[m // 2] + t[m // 2 + 1]) / 2
end

print(string.format("%d repetitions, n_train as given, one forward epoch (medians)", p.reps))
print("| configuration | n_train | 1x1 samples/s | 1x2 samples/s | 2x1 samples/s | 2x1 / 1x2 | 2x1 / 1x1 | diff 1x2 vs 1x1 | diff 2x1 vs 1x1 | diff 2x1 vs 1x2 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for _, cfg in ipairs(configs) do
  if p.only == "" or cfg[1]:find(p.only, 1, true) then
    local rates, rows = {}, {}
    for _, m in ipairs(modes) do rates[m[1]] = {} end
    for _ = 1, p.reps do
      for _, m in ipairs(modes) do
        local r, row = run(cfg, m)
        table.insert(rates[m[1]], r)
        rows[m[1]] = row
      end
    end
    local a, b, c = median(rates["1x1"]), median(rates["1x2"]), median(rates["2x1"])
    print(string.format("| %s | %d | %.1f | %.1f | %.1f | %.3f | %.3f | %.2g | %.2g | %.2g |", cfg[1],
      cfg[4], a, b, c, c / b, c / a, diff(rows["1x1"], rows["1x2"]), diff(rows["1x1"], rows["2x1"]),
      diff(rows["1x2"], rows["2x1"])))
    io.stdout:flush()
  end
end
if p.out == "" then os.execute("rm -rf '" .. tmp .. "'") end
