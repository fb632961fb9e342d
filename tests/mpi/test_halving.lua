-- tests/mpi/test_halving.lua — successive halving in examples/sweep.lua:
--   apical run test_halving.lua -- APICAL MPIEXEC NP REPO     (MPIEXEC "-": one process only)
-- the spec examples/sweeps/halving.lua (4 trials of models/small.lua; rungs of 1, 2 and 4
-- epochs, eta = 2): rung 2 runs exactly the 2 best trials of rung 1 by valid_loss, rung 3 the
-- best of rung 2; the trial that went through every rung (resumed from 1 to 2 to 4 epochs) has
-- the log.csv of a straight 4-epoch run with its parameters; the sweep run again runs nothing;
-- under `MPIEXEC -np NP` the results equal the one-process sweep's.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/../lua/?.lua;" .. package.path
local check = require "check" -- tests/lua/check.lua: counted checks, check.done ends the test
local apical_bin, mpiexec, np, repo = arg[1], arg[2], tonumber(arg[3]), arg[4]
assert(repo, "usage: test_halving.lua -- APICAL MPIEXEC NP REPO")
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))

local function sh(cmd, log)
  if not os.execute(string.format("cd '%s' && %s > %s 2>&1", repo, cmd, log)) then
    error("failed: " .. cmd .. "\n" .. io.open(log):read("a"))
  end
end

local function sweep(launch, out)
  sh(string.format("%s%s run examples/sweep.lua --set spec=examples/sweeps/halving.lua --set apical=%s " ..
    "--set out=%s", launch, apical_bin, apical_bin, out), out .. ".txt")
  local rows, n = {}, 0
  for line in io.lines(out .. "/results.csv") do
    n = n + 1
    if n > 1 then rows[#rows + 1] = line end
  end
  return rows
end

local function fields(line)
  local f = {}
  for x in line:gmatch("[^,]+") do f[#f + 1] = x end
  return f
end

-- trial -> valid_loss at rung k, from the .done files (nil: the trial did not run at rung k)
local function rung(out, k)
  local r = {}
  for i = 1, 4 do
    local f = io.open(string.format("%s/trial-%d.rung-%d.done", out, i, k))
    if f then
      r[i] = tonumber(fields(f:read("l"))[6]) -- trial, alpha, lr, epochs, best_epoch, valid_loss
      f:close()
    end
  end
  return r
end

local function best(r, n)
  local ids = {}
  for i in pairs(r) do ids[#ids + 1] = i end
  table.sort(ids, function(a, b) return r[a] < r[b] end)
  local set = {}
  for j = 1, n do set[ids[j]] = true end
  return set
end

local function same_set(r, set)
  local n = 0
  for i in pairs(r) do
    check.assert(set[i], "trial " .. i .. " ran at the next rung but was not among the best")
    n = n + 1
  end
  for i in pairs(set) do check.assert(r[i], "trial " .. i .. " was among the best but did not go on") end
  return n
end

local function count_runs(out)
  local p = io.popen("ls -d " .. out .. "/trial-*/*/ | wc -l")
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

local out = tmp .. "/one"
local one = sweep("", out)
local r1, r2, r3 = rung(out, 1), rung(out, 2), rung(out, 3)
local n1 = 0
for _ in pairs(r1) do n1 = n1 + 1 end
check.assert(n1 == 4, n1 .. " trials at rung 1")
check.assert(same_set(r2, best(r1, 2)) == 2 and same_set(r3, best(r2, 1)) == 1)
print("rungs: 4 trials at 1 epoch, the best 2 at 2 epochs, the best of those at 4")

-- the winner: first in results.csv, at 4 epochs, and equal to a straight 4-epoch run
local w = fields(one[1])
check.assert(w[4] == "4", "the first result has " .. w[4] .. " epochs")
for j = 2, #one do check.assert(fields(one[j])[4] ~= "4", "two trials reached 4 epochs") end
sh(string.format("%s run models/small.lua --set alpha=%s --set lr=%s --set epochs=4 --set progress=false " ..
  "--set out_dir=%s/straight", apical_bin, w[2], w[3], tmp), tmp .. "/straight.txt")
local p = io.popen("ls -d " .. tmp .. "/straight/*/")
local straight = p:read("l"):gsub("/$", "")
p:close()
local function log_rows(dir)
  local rows = {}
  for line in io.lines(dir .. "/log.csv") do rows[#rows + 1] = fields(line) end
  return rows
end
local a, b = log_rows(w[#w]), log_rows(straight)
check.assert(#a == #b and #a == 6, "log.csv rows " .. #a .. " and " .. #b)
local timing = { wall_seconds = true, samples_per_second = true, fb_wall_seconds = true }
for i = 2, #a do
  for j, col in ipairs(a[1]) do
    if not timing[col] then
      local x, y = tonumber(a[i][j]), tonumber(b[i][j])
      check.assert(x == y or math.abs(x - y) <= 1e-12 * math.max(math.abs(x), math.abs(y)),
        string.format("%s, row %d: %s (halving, resumed) vs %s (straight)", col, i - 1, a[i][j], b[i][j]))
    end
  end
end
print("the winner, resumed from 1 to 2 to 4 epochs, equals a straight 4-epoch run")

local runs = count_runs(out)
local again = sweep("", out)
check.assert(count_runs(out) == runs, "the sweep run again started new runs")
for i = 1, #one do check.assert(again[i] == one[i], "run again: row " .. i .. " differs") end
print("run again: nothing run, the same results")

if mpiexec ~= "-" then
  local farm = sweep(string.format("%s --oversubscribe -np %d ", mpiexec, np), tmp .. "/farm")
  check.assert(#farm == #one)
  for i = 1, #one do
    local x, y = one[i]:gsub(",[^,]*$", ""), farm[i]:gsub(",[^,]*$", "")
    check.assert(x == y, "row " .. i .. ": " .. x .. " vs " .. y)
  end
  print(string.format("under %d ranks: the one-process results", np))
end
os.execute("rm -rf '" .. tmp .. "'")
check.done("test_halving")
