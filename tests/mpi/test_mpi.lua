-- tests/mpi/test_mpi.lua — data-parallel training under MPI (plugins/dfc/lua/dfc/mpi.lua):
--   apical run test_mpi.lua -- APICAL MPIEXEC NP
-- runs tests/mpi/train.lua under `MPIEXEC --oversubscribe -np NP` and in one process and
-- checks: every log.csv column but the timings equal to 1e-9 relative (Euler DFC, DFC-SS,
-- DFC-SSA, BP, DFA; CVODE against the one-process threads = NP split, whose parts are the
-- ranks' shards; trained feedback against fb_threads = NP, whose noise streams the ranks
-- draw; drop_last = false, its short minibatch split over the ranks, also with fewer samples
-- than ranks; the measures), NP ranks x 2 threads against one process, two MPI runs bitwise
-- equal (checkpoint weights), config.lua's ranks, a run resumed under MPI equal to one that
-- never stopped, and a resume with another number of ranks refused. The checks are counted
-- (tests/lua/check.lua): a failed one ends the test with an error, check.done reports the count.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/../lua/?.lua;" .. package.path
local check = require "check" -- tests/lua/check.lua: counted checks, check.done ends the test
local apical_bin, mpiexec, np = arg[1], arg[2], tonumber(arg[3])
assert(apical_bin and mpiexec and np, "usage: test_mpi.lua -- APICAL MPIEXEC NP")
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local script = here .. "/train.lua"

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))

local function sets(t)
  local keys, s = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do s[#s + 1] = "--set " .. k .. "=" .. tostring(t[k]) end
  return table.concat(s, " ")
end

-- runs train.lua (under mpirun with n ranks, or in one process for n = nil); returns the run
-- directory (the only one in its out_dir) or nil, stderr when it failed
local count = 0
local function run(n, opts)
  count = count + 1
  local out = string.format("%s/r%d", tmp, count)
  local o = { out_dir = out }
  for k, v in pairs(opts) do o[k] = v end
  if o.resume then o.out_dir = nil end
  local launch = n and string.format("%s --oversubscribe -np %d ", mpiexec, n) or ""
  local cmd = string.format("%s%s run %s %s > %s/log%d.txt 2>&1", launch, apical_bin, script,
    sets(o), tmp, count)
  local ok = os.execute(cmd)
  local f = io.open(string.format("%s/log%d.txt", tmp, count))
  local text = f:read("a")
  f:close()
  if not ok then return nil, text end
  if o.resume then return o.resume end
  local p = io.popen("ls -d " .. out .. "/*/")
  local dir = p:read("l")
  p:close()
  return (dir:gsub("/$", ""))
end

local function read_log(dir)
  local rows, cols = {}, nil
  for line in io.lines(dir .. "/log.csv") do
    local f = {}
    for x in line:gmatch("[^,]+") do f[#f + 1] = x end
    if not cols then cols = f else rows[#rows + 1] = f end
  end
  return cols, rows
end

local timing = { wall_seconds = true, samples_per_second = true, fb_wall_seconds = true }

-- the largest relative difference of two runs' log.csv (timings left out)
local function log_diff(a, b)
  local ca, ra = read_log(a)
  local cb, rb = read_log(b)
  check.assert(#ca == #cb and #ra == #rb, "logs of different shapes: " .. a .. ", " .. b)
  local worst, where = 0, ""
  for i, row in ipairs(ra) do
    for j, col in ipairs(ca) do
      check.assert(cb[j] == col, "columns differ")
      if not timing[col] then
        local x, y = tonumber(row[j]), tonumber(rb[i][j])
        local d = x == y and 0 or math.abs(x - y) / math.max(math.abs(x), math.abs(y))
        if d > worst then worst, where = d, string.format("%s, epoch row %d", col, i) end
      end
    end
  end
  return worst, where
end

local function same_bytes(a, b)
  local fa, fb = assert(io.open(a, "rb")), assert(io.open(b, "rb"))
  local x, y = fa:read("a"), fb:read("a")
  fa:close()
  fb:close()
  return x == y
end

-- the largest difference of the final forward weights, relative to their largest entry
local function weight_diff(a, b)
  local worst = 0
  for _, f in ipairs { "W1.npy", "W2.npy", "W3.npy" } do
    local x = apical.load_npy(a .. "/checkpoint/" .. f)
    local y = apical.load_npy(b .. "/checkpoint/" .. f)
    local d, m = 0, 0
    for i = 1, #x do
      d, m = math.max(d, math.abs(x[i] - y[i])), math.max(m, math.abs(x[i]))
    end
    worst = math.max(worst, d / m)
  end
  return worst
end

local function check_equal(label, a, b, tol)
  local d, where = log_diff(a, b)
  local w = weight_diff(a, b)
  print(string.format("%-44s log.csv %.3g%s, weights %.3g", label, d,
    d > 0 and (" (" .. where .. ")") or "", w))
  check.assert(d <= (tol or 1e-9), label .. ": log.csv differs by " .. d .. " at " .. where)
  check.assert(w <= (tol or 1e-9), label .. ": the weights differ by " .. w)
end

local function must(dir, err)
  if not dir then error("run failed:\n" .. tostring(err), 2) end
  return dir
end

local cases = {
  { "dfc, euler", { method = "dfc" } },
  { "dfc-ss, euler", { method = "dfc-ss" } },
  { "dfc-ssa", { method = "dfc-ssa" } },
  { "bp", { method = "bp" } },
  { "dfa", { method = "dfa" } },
  { "dfc, euler, convergence_test", { method = "dfc", convergence_test = true } },
}
for _, case in ipairs(cases) do
  local one = must(run(nil, case[2]))
  local many = must(run(np, case[2]))
  check_equal(string.format("%s: %d ranks vs 1", case[1], np), one, many)
end

-- the split of threads = np: CVODE integrates each part with its own steps, as the ranks do;
-- trained feedback: fb_threads = np draws the ranks' noise (np must divide the batch)
if 32 % np == 0 then
  local cv = { method = "dfc", solver = "cvode-bdf" }
  local one = must(run(nil, { method = "dfc", solver = "cvode-bdf", threads = np }))
  check_equal(string.format("dfc, cvode-bdf: %d ranks vs threads = %d", np, np), one, must(run(np, cv)))
  local tr = { method = "dfc-ssa", feedback = "trained" }
  one = must(run(nil, { method = "dfc-ssa", feedback = "trained", fb_threads = np }))
  check_equal(string.format("dfc-ssa, trained: %d ranks vs fb_threads = %d", np, np), one, must(run(np, tr)))
  tr.method = "dfc"
  one = must(run(nil, { method = "dfc", feedback = "trained", fb_threads = np }))
  check_equal(string.format("dfc, trained: %d ranks vs fb_threads = %d", np, np), one, must(run(np, tr)))
end

-- mpi_cvode = "global": one CVODE integration across the ranks, the one process's steps (the
-- log's mean_steps and mean_rhs_evals columns included) and numbers; "local" (each rank its
-- own steps) is not that close to one process (it matches threads = np, above)
for _, case in ipairs {
  { "dfc, cvode-bdf, global", { method = "dfc", solver = "cvode-bdf" } },
  { "dfc-ss, cvode-bdf, global", { method = "dfc-ss", solver = "cvode-bdf" } },
  { "dfc, cvode-adams, global", { method = "dfc", solver = "cvode-adams" } },
} do
  local one = must(run(nil, case[2]))
  case[2].mpi_cvode = "global"
  check_equal(string.format("%s: %d ranks vs 1", case[1], np), one, must(run(np, case[2])))
  case[2].mpi_cvode = nil
  if case[1]:find("^dfc, cvode%-bdf") then
    local d = log_diff(one, must(run(np, case[2])))
    print(string.format("%-44s log.csv %.3g (own steps per rank)", "dfc, cvode-bdf, local: " .. np .. " ranks vs 1", d))
    check.assert(d > 1e-9, "the local mode matched one process: the global test would not see a difference")
  end
end
do
  -- stopped once settled (the root function's maximum over all ranks): the same steps, times
  -- and numbers; the root search's right-hand-side evaluations may differ by rounding
  local o = { method = "dfc", solver = "cvode-bdf", settle_tol = 1e-3 }
  local one = must(run(nil, o))
  o.mpi_cvode = "global"
  local many = must(run(np, o))
  timing.mean_rhs_evals = true
  check_equal(string.format("dfc, cvode-bdf, global, settle_tol: %d ranks vs 1", np), one, many)
  timing.mean_rhs_evals = nil
  -- what the global mode cannot serve: refused, naming the option
  local dir, err = run(np, { method = "dfc", solver = "cvode-bdf", mpi_cvode = "global", threads = 2 })
  check.assert(not dir and err:find("threads = 2 would split it further", 1, true), err)
  dir, err = run(np, { method = "dfc", solver = "cvode-bdf", mpi_cvode = "everywhere" })
  check.assert(not dir and err:find('unknown mpi_cvode "everywhere"', 1, true), err)
  print("mpi_cvode = \"global\" with threads = 2, an unknown mode: refused")
end

-- drop_last = false: the short last minibatch (n_train mod batch samples) split over the ranks
-- as a full one is: 250 samples leave 26 (np 3: 9, 9, 8 rows); 256 + np - 1 leave np - 1, fewer
-- than the ranks (the last rank has no rows and adds zero). Trained feedback against fb_threads =
-- np, whose noise streams the ranks draw (np 3: batch 30, which 3 divides; 250 and 242 leave 10
-- (4, 3, 3) and 2)
for _, short in ipairs { "long", "fewer than the ranks" } do
  for _, case in ipairs {
    { "dfc, euler", { method = "dfc" } },
    { "dfc-ssa", { method = "dfc-ssa" } },
    { "dfc, trained feedback", { method = "dfc", feedback = "trained" }, fb = true },
  } do
    local o = { drop_last = false }
    for k, v in pairs(case[2]) do o[k] = v end
    o.batch = (case.fb and 32 % np ~= 0) and 30 or 32
    o.n_train = short == "long" and 250 or 8 * o.batch + np - 1
    local one = {}
    for k, v in pairs(o) do one[k] = v end
    if case.fb then one.fb_threads = np end
    check_equal(string.format("%s, drop_last = false (%d of batch %d): %d ranks vs 1", case[1],
      o.n_train % o.batch, o.batch, np), must(run(nil, one)), must(run(np, o)))
  end
end
do
  -- one CVODE integration across the ranks needs rows on every rank
  local dir, err = run(np, { method = "dfc", solver = "cvode-bdf", mpi_cvode = "global",
    drop_last = false, n_train = 256 + np - 1 })
  check.assert(not dir and err:find("train.lua:%d+: dfc.train: mpi_cvode") and
    err:find(string.format("the short last minibatch (drop_last = false) has %d " ..
    "sample%s for %d ranks", np - 1, np == 2 and "" or "s", np), 1, true), err)
end

-- the measures (measures_every): every rank measures the whole minibatch's summed update, with
-- the whole minibatch's targets made for them (the ranks' own are their rows'). DFC-SSA's
-- update is its reference's direction: angle_ssa is 0 in one process and rounding (1e-12
-- degrees) over ranks, left out
for _, method in ipairs { "dfc", "dfc-ssa" } do
  local o = { method = method, measures_every = 3 }
  timing.angle_ssa = method == "dfc-ssa" or nil
  check_equal(string.format("%s, measures_every = 3: %d ranks vs 1", method, np), must(run(nil, o)),
    must(run(np, o)))
  timing.angle_ssa = nil
end

-- hybrid: np ranks x 2 threads (x 2 fb_threads)
do
  local one = must(run(nil, { method = "dfc" }))
  check_equal(string.format("dfc, euler: %d ranks x 2 threads vs 1", np), one,
    must(run(np, { method = "dfc", threads = 2 })))
end

-- two MPI runs: the same bits (the sum over ranks is in rank order); config.lua has ranks = np
do
  local a = must(run(np, { method = "dfc", feedback = "trained" }))
  local b = must(run(np, { method = "dfc", feedback = "trained" }))
  for _, f in ipairs { "W1.npy", "W2.npy", "W3.npy", "Q1.npy", "Q3.npy", "W1.bias.npy" } do
    check.assert(same_bytes(a .. "/checkpoint/" .. f, b .. "/checkpoint/" .. f), "two runs differ in " .. f)
  end
  local cfg = dofile(a .. "/config.lua")
  check.assert(cfg.ranks == np, "config.lua has ranks = " .. tostring(cfg.ranks))
  print(string.format("two %d-rank runs: bitwise equal checkpoints; config.lua ranks = %d", np, cfg.ranks))
end

-- resume under MPI: 1 epoch, then resumed to 2, equals 2 at once (bitwise weights)
do
  local o = { method = "dfc", feedback = "trained", name = "resumed" }
  local full = must(run(np, { method = "dfc", feedback = "trained" }))
  o.epochs = 1
  local part = must(run(np, o))
  o.epochs, o.resume, o.name = 2, part, nil
  must(run(np, o))
  check_equal(string.format("resumed under %d ranks vs not stopped", np), full, part, 0)
  check.assert(same_bytes(full .. "/checkpoint/W2.npy", part .. "/checkpoint/W2.npy"))
  -- another number of ranks: refused, naming the option and both values
  local other = np == 2 and 3 or 2
  local dir, err = run(other, { method = "dfc", feedback = "trained", epochs = 3, resume = part })
  check.assert(not dir, "a resume with another number of ranks was accepted")
  check.assert(err:find(string.format("option ranks is %d here but %d", other, np), 1, true), err)
  print(string.format("resume with %d ranks of a %d-rank run: refused", other, np))
end

-- a rank count given that is not the one started: refused
do
  local dir, err = run(np, { method = "bp", ranks = np + 1 })
  check.assert(not dir and err:find(string.format("ranks = %d, but %d processes were started", np + 1, np), 1, true), err)
end
os.execute("rm -rf '" .. tmp .. "'")
check.done("test_mpi")
