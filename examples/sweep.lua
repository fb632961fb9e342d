-- sweep.lua — a hyperparameter search over a model file's --set parameters, as a task farm:
--   build/bin/apical run examples/sweep.lua --set spec=examples/sweeps/small.lua
--   mpirun -np 8 build/bin/apical run examples/sweep.lua --set spec=examples/sweeps/small.lua [--set out=DIR]
-- The spec is a Lua table (examples/sweeps/small.lua): the model file, fixed values (`set`),
-- a grid (every combination of the listed values) and/or random draws (`random`: trials,
-- seed, and per parameter { low, high } uniform or { low, high, "log" } log-uniform), the
-- log.csv column to rank by (`metric`, lowest best) and the output directory. Every trial is
-- `apical run MODEL --set ...` in a process of its own, trial i on rank (i - 1) % N of an MPI
-- run (one at a time per rank), its run directory OUT/trial-<i>/; a finished trial leaves
-- OUT/trial-<i>.done (its result line), so a sweep run again skips what is done. Rank 0
-- collects the results into OUT/results.csv, best first. The spec is read as data: a table
-- constructor without access to any function.
--
-- Successive halving (the spec's `halving = { budget = "epochs", min = 1, eta = 3 }`; the full
-- budget is set[budget]): every trial first runs with budget `min`, then only the best 1/eta
-- (by the metric, at least one) go on to eta times the budget, and so on up to the full budget
-- (rungs min, min eta, min eta^2, ..., full). With budget = "epochs" a trial going on resumes
-- its run directory (`--set resume=`), otherwise it runs again from the start with the larger
-- budget (OUT/trial-<i>/rung-<k>/). Each rung's result is OUT/trial-<i>.rung-<k>.done, so a
-- sweep run again takes the same decisions and runs only what is missing; results.csv lists
-- the trials that reached the full budget first, then the others by the budget they reached.
local apical = require "apical"
local mpi = require "apical.plugins.dfc.mpi"

local p = apical.params { spec = "", apical = "build/bin/apical", out = "" }
if p.spec == "" then error("sweep: give the spec: --set spec=FILE (examples/sweeps/small.lua)", 0) end

local function read_spec(path)
  local f = io.open(path)
  if not f then error("sweep: cannot read the spec " .. path, 0) end
  local text = f:read("a")
  f:close()
  local chunk, err = load(text, "@" .. path, "t", {})
  if not chunk then error("sweep: " .. err, 0) end
  local ok, s = pcall(chunk)
  if not ok then error("sweep: " .. tostring(s), 0) end
  if type(s) ~= "table" then error("sweep: " .. path .. " must return a table", 0) end
  local known = { model = true, set = true, grid = true, random = true, metric = true, out = true,
    halving = true }
  for k in pairs(s) do
    if not known[k] then error(string.format("sweep: %s: unknown key %q (model, set, grid, random, metric, out, halving)", path, tostring(k)), 0) end
  end
  if type(s.model) ~= "string" then error("sweep: " .. path .. ": model must be a file name", 0) end
  s.set, s.grid, s.metric, s.out = s.set or {}, s.grid or {}, s.metric or "valid_loss", s.out or "runs/sweep"
  return s
end

-- The budgets of successive halving's rungs (nil without halving): min, min eta, ... below the
-- full budget set[budget], then the full budget.
local function rungs_of(s, path)
  local h = s.halving
  if h == nil then return nil end
  local function bad(what) error(string.format("sweep: %s: halving.%s", path, what), 0) end
  if type(h) ~= "table" then bad("must be a table { budget = NAME, min = N, eta = N }") end
  for k in pairs(h) do
    if k ~= "budget" and k ~= "min" and k ~= "eta" then bad(string.format("%s is unknown (budget, min, eta)", tostring(k))) end
  end
  local b = h.budget or "epochs"
  if type(b) ~= "string" then bad("budget must be the name of a --set parameter") end
  local full = s.set[b]
  if math.type(full) ~= "integer" or full < 1 then
    bad(string.format("budget is %q: set.%s must give the full budget, a positive integer (it is %s)", b, b, tostring(full)))
  end
  if s.grid[b] ~= nil or (s.random and s.random[b] ~= nil) then bad("budget " .. b .. " is swept: it must be fixed in set") end
  local min, eta = h.min or 1, h.eta or 3
  if math.type(min) ~= "integer" or min < 1 or min > full then bad(string.format("min = %s must be an integer from 1 to set.%s = %d", tostring(min), b, full)) end
  if math.type(eta) ~= "integer" or eta < 2 then bad(string.format("eta = %s must be an integer >= 2", tostring(eta))) end
  local r = {}
  local x = min
  while x < full do
    r[#r + 1] = x
    x = x * eta
  end
  r[#r + 1] = full
  s.budget, s.eta = b, eta
  return r
end

local function sorted(t)
  local k = {}
  for key in pairs(t) do k[#k + 1] = key end
  table.sort(k)
  return k
end

-- splitmix64: the random draws, the same on every rank
local function rng(seed)
  local z = seed
  return function()
    z = z + 0x9E3779B97F4A7C15
    local x = z
    x = (x ~ (x >> 30)) * 0xBF58476D1CE4E5B9
    x = (x ~ (x >> 27)) * 0x94D049BB133111EB
    x = x ~ (x >> 31)
    return ((x >> 11) & ((1 << 53) - 1)) / (1 << 53)
  end
end

-- the trials: every grid combination, each with every random draw (a list of { name = value })
local function trials(s)
  local list = { {} }
  for _, k in ipairs(sorted(s.grid)) do
    local vals, next = s.grid[k], {}
    if type(vals) ~= "table" or #vals == 0 then error("sweep: grid." .. k .. " must be a list of values", 0) end
    for _, t in ipairs(list) do
      for _, v in ipairs(vals) do
        local c = {}
        for a, b in pairs(t) do c[a] = b end
        c[k] = v
        next[#next + 1] = c
      end
    end
    list = next
  end
  local r = s.random
  if not r then return list end
  local n, u = r.trials or 0, rng(r.seed or 1)
  if math.type(n) ~= "integer" or n < 1 then error("sweep: random.trials must be a positive integer", 0) end
  local out = {}
  for _, t in ipairs(list) do
    for _ = 1, n do
      local c = {}
      for a, b in pairs(t) do c[a] = b end
      for _, k in ipairs(sorted(r)) do
        local d = r[k]
        if k ~= "trials" and k ~= "seed" then
          if type(d) ~= "table" or type(d[1]) ~= "number" or type(d[2]) ~= "number" or not (d[1] < d[2]) then
            error("sweep: random." .. k .. " must be { low, high } or { low, high, \"log\" }", 0)
          end
          local x = u()
          c[k] = d[3] == "log" and math.exp(math.log(d[1]) + x * (math.log(d[2]) - math.log(d[1])))
            or d[1] + x * (d[2] - d[1])
        end
      end
      out[#out + 1] = c
    end
  end
  return out
end

-- a word for the shell: single-quoted, its own single quotes escaped (nothing in it is expanded)
local function q(word)
  return "'" .. tostring(word):gsub("'", "'\\''") .. "'"
end

-- a value as given to --set and in the results (a float to all its digits)
local function show(v)
  if v == nil then return "" end
  return math.type(v) == "float" and string.format("%.17g", v) or tostring(v)
end

local function sets(t)
  local s = {}
  for _, k in ipairs(sorted(t)) do
    s[#s + 1] = "--set " .. q(k .. "=" .. show(t[k]))
  end
  return table.concat(s, " ")
end

-- the best row of a run's log.csv by the metric (lowest; epoch 0 left out when there are more)
local function best_row(dir, metric)
  local cols, best
  for line in io.lines(dir .. "/log.csv") do
    local f = {}
    for x in line:gmatch("[^,]+") do f[#f + 1] = x end
    if not cols then
      cols = f
    else
      local row = {}
      for j, c in ipairs(cols) do row[c] = tonumber(f[j]) end
      if row[metric] == nil then error("sweep: log.csv has no column " .. metric, 0) end
      if not best or best.epoch == 0 or row[metric] < best[metric] then best = row end
    end
  end
  return best
end

local s = read_spec(p.spec)
if p.out ~= "" then s.out = p.out end -- instead of the spec's
local rungs = rungs_of(s, p.spec)
local list = trials(s)
local params = {}
for _, t in ipairs(list) do
  for k in pairs(t) do params[k] = true end
end
params = sorted(params)
apical.mkdir(s.out)

-- a result line: trial, the parameters, [budget,] best_epoch, metric, test_loss, test_error, run_dir
local METRIC = #params + (rungs and 4 or 3)
local function done_file(i, k)
  return k and string.format("%s/trial-%d.rung-%d.done", s.out, i, k) or string.format("%s/trial-%d.done", s.out, i)
end
local function read_done(i, k)
  local f = io.open(done_file(i, k))
  if not f then return nil end
  local line = f:read("l")
  f:close()
  local fields = {}
  for x in line:gmatch("[^,]+") do fields[#fields + 1] = x end
  return { line = line, metric = tonumber(fields[METRIC]), run = fields[#fields] }
end

-- trial i (at rung k of successive halving, or with the spec's budget): run, its result line
-- written; a trial done before is read back. Returns { metric }.
local function run_trial(i, k)
  local d = read_done(i, k)
  if d then return { d.metric } end
  local dir = string.format("%s/trial-%d", s.out, i)
  local cfg = {}
  for key, v in pairs(s.set) do cfg[key] = v end
  for key, v in pairs(list[i]) do cfg[key] = v end
  cfg.progress = false
  local resume
  if k then
    cfg[s.budget] = rungs[k]
    if k > 1 and s.budget == "epochs" then resume = read_done(i, k - 1).run end
    if k > 1 and not resume then dir = string.format("%s/rung-%d", dir, k) end
  end
  if resume then cfg.resume = resume else cfg.out_dir = dir end
  local log = k and string.format("%s.rung-%d.txt", dir, k) or dir .. ".txt"
  -- a process of its own, outside the MPI job (the launcher's variables removed)
  local cmd = string.format("env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE -u PMIX_RANK %s run %s %s > %s 2>&1",
    q(p.apical), q(s.model), sets(cfg), q(log))
  if not os.execute(cmd) then error("sweep: trial " .. i .. " failed (" .. log .. "): " .. cmd, 0) end
  local run = resume
  if not run then
    local ls = io.popen("ls -d " .. q(dir) .. "/*/")
    run = ls:read("l"):gsub("/$", "")
    ls:close()
  end
  local b = best_row(run, s.metric)
  local vals = {}
  for _, key in ipairs(params) do vals[#vals + 1] = show(list[i][key]) end
  if k then vals[#vals + 1] = tostring(rungs[k]) end
  local line = string.format("%d,%s,%d,%.10g,%.10g,%.10g,%s", i, table.concat(vals, ","), b.epoch,
    b[s.metric], b.test_loss or 0, b.test_error or 0, run)
  local tmp = done_file(i, k) .. ".tmp"
  local w = assert(io.open(tmp, "w"))
  w:write(line, "\n")
  w:close()
  assert(os.rename(tmp, done_file(i, k)))
  print(string.format("trial %d%s: %s = %.6g", i, k and string.format(" (%s = %d)", s.budget, rungs[k]) or "",
    s.metric, b[s.metric]))
  return { b[s.metric] }
end

-- the metric for ranking: lowest best, a diverged run (NaN) last
local function key(x) return x ~= x and math.huge or x end

local rows = {}
if not rungs then
  mpi.farm(#list, 1, function(i) return run_trial(i) end)
  for i = 1, #list do
    local d = read_done(i)
    if d then rows[#rows + 1] = { line = d.line, metric = key(d.metric), reached = 0, i = i } end
  end
else
  -- successive halving: each rung a farm over the trials still in; every rank gets every
  -- result (mpi.farm) and so takes the same decision
  local alive = {}
  for i = 1, #list do alive[i] = i end
  for k = 1, #rungs do
    local res = mpi.farm(#alive, 1, function(j) return run_trial(alive[j], k) end)
    for j, i in ipairs(alive) do
      local d = read_done(i, k) or { line = "", metric = res[j] and res[j][1] or 0 / 0 }
      rows[i] = { line = d.line, metric = key(d.metric), reached = k, i = i }
    end
    if k < #rungs then
      table.sort(alive, function(a, b)
        if rows[a].metric ~= rows[b].metric then return rows[a].metric < rows[b].metric end
        return a < b
      end)
      for j = #alive, math.max(1, #alive // s.eta) + 1, -1 do alive[j] = nil end
      table.sort(alive)
    end
  end
end

if mpi.rank > 0 then return end
local out = {}
for _, r in pairs(rows) do out[#out + 1] = r end
rows = out
table.sort(rows, function(a, b)
  if a.reached ~= b.reached then return a.reached > b.reached end
  if a.metric ~= b.metric then return a.metric < b.metric end
  return a.i < b.i
end)
local lines = { "trial," .. table.concat(params, ",") .. (rungs and "," .. s.budget or "") .. ",best_epoch," ..
  s.metric .. ",test_loss,test_error,run_dir" }
for _, r in ipairs(rows) do lines[#lines + 1] = r.line end
local w = assert(io.open(s.out .. "/results.csv.tmp", "w"))
w:write(table.concat(lines, "\n"), "\n")
w:close()
assert(os.rename(s.out .. "/results.csv.tmp", s.out .. "/results.csv"))
print(string.format("%d of %d trials done%s; best first in %s/results.csv:", #rows, #list,
  rungs and string.format(" (successive halving over %s = %s)", s.budget, table.concat(rungs, ", ")) or "", s.out))
for k = 1, math.min(#rows, 5) do print("  " .. rows[k].line) end
