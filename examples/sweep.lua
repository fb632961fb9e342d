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
  local known = { model = true, set = true, grid = true, random = true, metric = true, out = true }
  for k in pairs(s) do
    if not known[k] then error(string.format("sweep: %s: unknown key %q (model, set, grid, random, metric, out)", path, tostring(k)), 0) end
  end
  if type(s.model) ~= "string" then error("sweep: " .. path .. ": model must be a file name", 0) end
  s.set, s.grid, s.metric, s.out = s.set or {}, s.grid or {}, s.metric or "valid_loss", s.out or "runs/sweep"
  return s
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

local function sets(t)
  local s = {}
  for _, k in ipairs(sorted(t)) do
    local v = t[k]
    s[#s + 1] = "--set " .. q(k .. "=" .. (math.type(v) == "float" and string.format("%.17g", v) or tostring(v)))
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
local list = trials(s)
local params = {}
for _, t in ipairs(list) do
  for k in pairs(t) do params[k] = true end
end
params = sorted(params)
apical.mkdir(s.out)

local function done_file(i) return string.format("%s/trial-%d.done", s.out, i) end

mpi.farm(#list, 0, function(i)
  local f = io.open(done_file(i))
  if f then
    f:close()
    return nil
  end
  local dir = string.format("%s/trial-%d", s.out, i)
  local cfg = {}
  for k, v in pairs(s.set) do cfg[k] = v end
  for k, v in pairs(list[i]) do cfg[k] = v end
  cfg.out_dir, cfg.progress = dir, false
  -- a process of its own, outside the MPI job (the launcher's variables removed)
  local cmd = string.format("env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE -u PMIX_RANK %s run %s %s > %s 2>&1",
    q(p.apical), q(s.model), sets(cfg), q(dir .. ".txt"))
  if not os.execute(cmd) then error("sweep: trial " .. i .. " failed (" .. dir .. ".txt): " .. cmd, 0) end
  local ls = io.popen("ls -d " .. q(dir) .. "/*/")
  local run = ls:read("l"):gsub("/$", "")
  ls:close()
  local b = best_row(run, s.metric)
  local vals = {}
  for _, k in ipairs(params) do vals[#vals + 1] = tostring(list[i][k] or "") end
  local line = string.format("%d,%s,%d,%.10g,%.10g,%.10g,%s", i, table.concat(vals, ","), b.epoch,
    b[s.metric], b.test_loss or 0, b.test_error or 0, run)
  local tmp = done_file(i) .. ".tmp"
  local w = assert(io.open(tmp, "w"))
  w:write(line, "\n")
  w:close()
  assert(os.rename(tmp, done_file(i)))
  print(string.format("trial %d: %s = %.6g", i, s.metric, b[s.metric]))
end)

if mpi.rank > 0 then return end
local rows = {}
for i = 1, #list do
  local f = io.open(done_file(i))
  if f then
    local line = f:read("l")
    f:close()
    local fields = {}
    for x in line:gmatch("[^,]+") do fields[#fields + 1] = x end
    rows[#rows + 1] = { line = line, metric = tonumber(fields[#params + 3]) }
  end
end
table.sort(rows, function(a, b) return a.metric < b.metric end)
local lines = { "trial," .. table.concat(params, ",") .. ",best_epoch," .. s.metric .. ",test_loss,test_error,run_dir" }
for _, r in ipairs(rows) do lines[#lines + 1] = r.line end
local w = assert(io.open(s.out .. "/results.csv.tmp", "w"))
w:write(table.concat(lines, "\n"), "\n")
w:close()
assert(os.rename(s.out .. "/results.csv.tmp", s.out .. "/results.csv"))
print(string.format("%d of %d trials done; best first in %s/results.csv:", #rows, #list, s.out))
for k = 1, math.min(#rows, 5) do print("  " .. rows[k].line) end
