-- tests/mpi/test_sweep.lua — examples/sweep.lua as a task farm:
--   apical run test_sweep.lua -- APICAL MPIEXEC NP REPO
-- the spec examples/sweeps/small.lua (4 trials of models/small.lua) in one process and under
-- `MPIEXEC -np NP`: the same results (every trial is a process of its own); run again, the
-- farm skips every finished trial; with one .done file removed, it runs that trial only.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/../lua/?.lua;" .. package.path
local check = require "check" -- tests/lua/check.lua: counted checks, check.done ends the test
local apical_bin, mpiexec, np, repo = arg[1], arg[2], tonumber(arg[3]), arg[4]
assert(repo, "usage: test_sweep.lua -- APICAL MPIEXEC NP REPO")
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))

local function sweep(launch, out)
  local cmd = string.format("cd '%s' && %s%s run examples/sweep.lua --set spec=examples/sweeps/small.lua " ..
    "--set apical=%s --set out=%s > %s.txt 2>&1", repo, launch, apical_bin, apical_bin, out, out)
  if not os.execute(cmd) then error("failed: " .. cmd .. "\n" .. io.open(out .. ".txt"):read("a")) end
  local rows, n = {}, 0
  for line in io.lines(out .. "/results.csv") do
    n = n + 1
    if n > 1 then rows[#rows + 1] = line:gsub(",[^,]*$", "") end -- without the run directory
  end
  return rows
end

local function dirs(out)
  local p = io.popen("ls -d " .. out .. "/trial-*/*/ | wc -l")
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

local mpi = string.format("%s --oversubscribe -np %d ", mpiexec, np)
local one = sweep("", tmp .. "/one")
local farm = sweep(mpi, tmp .. "/farm")
check.assert(#one == 4 and #farm == 4, #one .. " and " .. #farm .. " results")
for i = 1, 4 do check.assert(one[i] == farm[i], "row " .. i .. ": " .. one[i] .. " vs " .. farm[i]) end
print(string.format("sweep over %d ranks: the 4 trials' results equal the one-process sweep's", np))
local again = sweep(mpi, tmp .. "/farm")
check.assert(dirs(tmp .. "/farm") == 4, "finished trials ran again")
for i = 1, 4 do check.assert(again[i] == farm[i]) end
os.remove(tmp .. "/farm/trial-3.done")
again = sweep(mpi, tmp .. "/farm")
check.assert(dirs(tmp .. "/farm") == 5, "the unfinished trial did not run (or more did)")
for i = 1, 4 do check.assert(again[i] == farm[i]) end
print("run again: finished trials skipped, the unfinished one run")
os.execute("rm -rf '" .. tmp .. "'")
check.done("test_sweep")
